//! An orchestrator that drives QEMU itself and uses aplaunch as a library.
//!
//! 1. It describes a secure guest with crypto ([`launcher::Launch`]), lets aplaunch run
//!    every check and build the exact command line (a dry run: nothing is started) and
//!    prints the argv as JSON for its own process supervisor.
//! 2. Given the QMP socket of a running guest, it hot plugs the crypto mdev through
//!    aplaunch's QMP client (`launcher::hotplug`) and prints what the guest now sees.
//!
//! ```sh
//! cargo run --example orchestrator -- examples/hosts/z16-se examples/images/demo-se.img
//! cargo run --example orchestrator -- / /var/lib/se/boot.img /run/aplaunch/tenant-42.qmp
//! ```

use launcher::spec::{Disk, SpecErrorKind};
use launcher::{hotplug, launch, qmp::Qmp, Launch};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const MDEV: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let host_root = args.next().map(PathBuf::from).unwrap_or_else(|| "/".into());
    let image = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| "examples/images/demo-se.img".into());
    let qmp_socket = args.next().map(PathBuf::from);

    let root = match host::HostRoot::open(&host_root) {
        Ok(root) => root,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };

    // 1. The VM as the orchestrator sees it. force: on a development machine the
    // orchestrator still wants the command line; the report says what a real host would
    // refuse.
    let mdev = uuid::Uuid::parse_str(MDEV).expect("a UUID");
    let launch = Launch::secure(image)
        .name("tenant-42")
        .mdev(mdev)
        .memory("4G")
        .smp(2)
        .rng(true)
        .disk(
            Disk::new("/var/lib/tenants/42/root.qcow2")
                .format("qcow2")
                .cache("none"),
        )
        .qmp("/run/tenants/42/qmp.sock")
        .force(true);
    let planned = match launch.plan(&root) {
        Ok(planned) => planned,
        Err(e) => {
            // The error names the setter at fault (`Launch::smp`) and its hint speaks of
            // setters; the kind is for matching.
            eprintln!("invalid VM spec: {e}");
            if let Some(hint) = e.spec_error().and_then(|s| s.hint.as_ref()) {
                eprintln!("  hint: {hint}");
            }
            if let Some(SpecErrorKind::SmpOutOfRange { max }) = e.kind() {
                eprintln!("  (this host's QEMU machine takes at most {max} vCPUs)");
            }
            return ExitCode::from(2);
        }
    };
    eprint!("{}", planned.report.render(false));
    for fd in &planned.plan.fds {
        eprintln!(
            "pass /{} as descriptor {} (launch::exec does this itself)",
            launch::fd_host_path(&fd.source),
            fd.target
        );
    }
    let argv: Vec<String> = planned
        .plan
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&argv).expect("argv as JSON")
    );
    // To run it instead: `launch::exec(&root, &planned)` replaces this process with QEMU
    // (it returns only on failure).

    // 2. Hot plug the crypto device into a running guest.
    let Some(socket) = qmp_socket else {
        return ExitCode::SUCCESS;
    };
    let mut qmp = match Qmp::connect(&socket, Duration::from_secs(5)) {
        Ok(qmp) => qmp,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    };
    let request = hotplug::HotplugRequest::new(MDEV);
    match hotplug::hotplug(&mut qmp, &root, &request) {
        Ok(plugged) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&plugged).expect("plugged as JSON")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hot plug refused: {e}");
            ExitCode::from(1)
        }
    }
}
