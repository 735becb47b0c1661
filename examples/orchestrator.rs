//! An orchestrator that drives QEMU itself and uses aplaunch as a library.
//!
//! 1. It describes a secure guest with crypto, lets aplaunch run every check and build the
//!    exact command line (a dry run: nothing is started) and prints the argv as JSON for its
//!    own process supervisor.
//! 2. Given the QMP socket of a running guest, it hot plugs the crypto mdev through
//!    aplaunch's QMP client (`launcher::hotplug`) and prints what the guest now sees.
//!
//! ```sh
//! cargo run --example orchestrator -- examples/hosts/z16-se examples/images/demo-se.img
//! cargo run --example orchestrator -- / /var/lib/se/boot.img /run/aplaunch/tenant-42.qmp
//! ```

use launcher::launch::{self, LaunchOptions};
use launcher::spec::{self, Origins, SpecInput};
use launcher::{hotplug, qmp::Qmp};
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

    // 1. The VM as the orchestrator sees it; the same keys as a TOML config file.
    let input = SpecInput {
        name: Some("tenant-42".into()),
        memory: Some("4G".into()),
        smp: Some(2),
        pv_image: Some(image),
        mdev: Some(MDEV.into()),
        rng: Some(true),
        disks: Some(vec![spec::parse_disk_flag(
            "/var/lib/tenants/42/root.qcow2,format=qcow2,cache=none",
        )
        .expect("valid disk")]),
        qmp: Some("/run/tenants/42/qmp.sock".into()),
        ..SpecInput::default()
    };
    let origins = Origins {
        from_flags: input.clone(),
        ..Origins::default()
    };
    let spec = match spec::validate(input, &origins, &launch::default_qmp_dir()) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("invalid VM spec: {e}");
            return ExitCode::from(2);
        }
    };
    // force: on a development machine the orchestrator still wants the command line; the
    // report says what a real host would refuse.
    let options = LaunchOptions {
        force: true,
        no_cache: false,
        exec_on_tree: false,
    };
    let planned = launch::plan(&root, spec, &options);
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
