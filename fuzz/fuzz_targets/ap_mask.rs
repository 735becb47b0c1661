//! The AP mask and id parsers on arbitrary input: they never panic, and what they accept
//! formats back to the same mask.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vfio::mask::{Mask, MaskSpec};

fuzz_target!(|data: &[u8]| {
    // the first 32 bytes (when there are that many) are the current mask
    let (base, input) = if data.len() >= 32 {
        let mut words = [0u64; 4];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u64::from_be_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
        }
        (Mask::from_words(words), &data[32..])
    } else {
        (Mask::EMPTY, data)
    };
    if let Ok(m) = base.kernel_write(input) {
        assert_eq!(Mask::parse_kernel_absolute(m.to_kernel_hex().as_bytes()), Ok(m));
        assert_eq!(base.apply_kernel_relative(m.to_relative().as_bytes()), Ok(m));
    }
    let text = String::from_utf8_lossy(input);
    if let Ok(m) = Mask::parse_chzdev(&text, &base) {
        // an empty mask has no list spelling (a list needs an entry); clearing every bit is it
        let spelled = if m == Mask::EMPTY {
            "-0-255".to_string()
        } else {
            m.to_ranges()
        };
        assert_eq!(Mask::parse_chzdev(&spelled, &base), Ok(m));
    }
    if let Ok(spec) = MaskSpec::parse(&text) {
        let m = spec.apply(&base);
        assert_eq!(Mask::parse_sysfs(&m.to_kernel_hex()), Ok(m));
    }
    let _ = Mask::parse_sysfs(&text);
    let _ = vfio::mdev::ApConfig::parse(&text);
    let _ = vfio::mdev::parse_matrix(&text);
    let _ = vfio::mdev::parse_control_domains(&text);
    let _ = vfio::number::kstrtoul(&text);
    let _ = vfio::number::strtol_u8_prefix(&text);
    let _ = vfio::number::atoi(text.as_bytes());
    let _ = vfio::mdev_uuid::normalize(&text);
    let _ = text.parse::<vfio::Apqn>();
    let _ = text.parse::<vfio::Apid>();
    let _ = vfio::mdevctl::Definition::parse("00000000-0000-4000-8000-000000000000", &text);
});
