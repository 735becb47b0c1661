//! Fuzzes the SE image parser: header location, header, key slots, IPIB and the
//! structural findings, on arbitrary bytes. Must never panic, hang or allocate wildly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pv::image::{header, ipib, loader, SeImage};

fuzz_target!(|data: &[u8]| {
    // The whole-image path, as `aplaunch image inspect` runs it (from memory).
    if let Ok(img) = SeImage::parse_bytes(data, "fuzz.img") {
        let _ = serde_json::to_string(&img);
        let _ = img.has_failures();
    }
    // The header parser on its own (a header at offset 0).
    let _ = header::parse(data);
    // The IPIB parser and its rules on their own, as either builder writes it.
    for style in [ipib::IpibStyle::Pvimg, ipib::IpibStyle::Genprotimg] {
        if let Some(i) = ipib::Ipib::parse(data, 0, style) {
            let _ = i.findings(0x14000, 0x280, 3, data.len() as u64);
            let _ = i.pages();
        }
    }
    // stage3a's argument block search, with the loosest condition.
    let _ = loader::find(data, data.len() as u64, |_| true);
});
