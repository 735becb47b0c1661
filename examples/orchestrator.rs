//! An orchestrator that drives QEMU itself and uses aplaunch as a library: it describes a
//! secure guest with crypto, lets aplaunch run every check and build the exact command
//! line (a dry run: nothing is started), and prints the argv as JSON for its own process
//! supervisor.
//!
//! ```sh
//! cargo run --example orchestrator -- examples/hosts/z16-se examples/images/demo-se.img
//! ```

use launcher::launch::{self, LaunchOptions};
use launcher::spec::{self, Origins, SpecInput};
use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let host_root = args.next().map(PathBuf::from).unwrap_or_else(|| "/".into());
    let image = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| "examples/images/demo-se.img".into());

    // The VM as the orchestrator sees it; the same keys as a TOML config file.
    let input = SpecInput {
        name: Some("tenant-42".into()),
        memory: Some("4G".into()),
        smp: Some(2),
        pv_image: Some(image),
        mdev: Some("62177883-f1bb-47f0-914d-32a22e3a8804".into()),
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
            return std::process::ExitCode::from(2);
        }
    };

    let root = match host::HostRoot::open(&host_root) {
        Ok(root) => root,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    // force: an orchestrator on a development machine still wants the command line; the
    // report says what a real host would refuse.
    let planned = launch::plan(
        &root,
        spec,
        &LaunchOptions {
            force: true,
            no_cache: false,
        },
    );
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
    // To run it instead: `launch::exec(&root, &planned.spec, &planned.plan)` replaces this
    // process with QEMU (it returns only on failure).
    std::process::ExitCode::SUCCESS
}
