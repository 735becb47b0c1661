//! The QMP message reader on arbitrary bytes: line splitting with a length bound, JSON
//! parsing and message classification must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a small line bound so that the bound is exercised too.
    let (bound, rest) = match data.split_first() {
        Some((b, rest)) => (usize::from(*b) * 8, rest),
        None => (0, data),
    };
    launcher::qmp::reader::fuzz_stream(rest, bound);
    launcher::qmp::reader::fuzz_stream(rest, launcher::qmp::DEFAULT_MAX_LINE);
    for line in rest.split(|&b| b == b'\n') {
        let _ = launcher::qmp::reader::parse_message(line);
    }
});
