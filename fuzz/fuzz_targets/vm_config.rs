//! The VM config file and launch flags: arbitrary TOML and flag values must never panic,
//! and whatever validates must build a command line whose escaped values split back into
//! exactly what was given.

#![no_main]

use launcher::builder::{build, HostFacts};
use launcher::probe::{QemuCaps, QemuVersion};
use launcher::spec::{self, split_qemu_opts, Origins, SpecInput};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Flag parsers see the same bytes.
    let _ = spec::parse_disk_flag(text);
    let _ = spec::parse_net_flag(text);
    let _ = spec::parse_memory(text);
    let Ok(input) = spec::parse_config(text, "fuzz.toml", Path::new("/cfg")) else {
        return;
    };
    let origins = Origins {
        config: Some("fuzz.toml".into()),
        from_config: input.clone(),
        from_flags: SpecInput::default(),
    };
    let Ok(vm) = spec::validate(input, &origins, Path::new("/run/aplaunch")) else {
        return;
    };
    let caps = QemuCaps::assumed(QemuVersion::new(9, 1, 0));
    let plan = build(&vm, Path::new("/usr/bin/qemu-system-s390x"), Some(&caps), &HostFacts::default());
    // Every disk path comes back intact out of its -drive option list.
    let drives: Vec<String> = plan
        .argv
        .windows(2)
        .filter(|w| w[0] == "-drive")
        .map(|w| w[1].to_string_lossy().into_owned())
        .collect();
    assert_eq!(drives.len(), vm.disks.len());
    for (drive, disk) in drives.iter().zip(&vm.disks) {
        let parts = split_qemu_opts(drive);
        assert_eq!(parts[0], format!("file={}", disk.path.display()));
    }
});
