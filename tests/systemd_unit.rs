//! The systemd template unit's commands are valid aplaunch command lines.

use std::path::PathBuf;

fn unit() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/systemd/aplaunch@.service");
    std::fs::read_to_string(path).unwrap()
}

fn command_lines(key: &str) -> Vec<Vec<String>> {
    unit()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|cmd| {
            cmd.replace("%i", "secure1")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn start_and_stop_commands_parse() {
    let starts = command_lines("ExecStart");
    let stops = command_lines("ExecStop");
    assert_eq!((starts.len(), stops.len()), (1, 1));
    for argv in starts.iter().chain(&stops) {
        assert_eq!(argv[0], "/usr/bin/aplaunch");
        let os: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
        launcher::cli::parse(os).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    assert!(
        starts[0].contains(&"--config".to_string())
            && starts[0].contains(&"/etc/aplaunch/secure1.toml".to_string())
    );
    // stop talks to the socket start told QEMU to open
    let qmp_of =
        |argv: &Vec<String>| argv[argv.iter().position(|a| a == "--qmp").unwrap() + 1].clone();
    assert_eq!(qmp_of(&starts[0]), qmp_of(&stops[0]));
    assert!(unit().contains("RestartPreventExitStatus=1 2"));
}
