//! A stand-in for qemu-system-s390x in exec and probe tests.
//!
//! - With `-qmp stdio` in its arguments it answers a probe's QMP conversation on stdin and
//!   stdout as the QEMU version in `FAKE_QEMU_VERSION` (default 9.1.0) would, refuses
//!   `-accel kvm` when `FAKE_QEMU_NO_KVM` is set, and appends one line per probe to the
//!   file named by `FAKE_QEMU_PROBE_LOG`.
//! - Otherwise it writes a JSON record of its argv and its open descriptors (number and
//!   link target) to the file named by `FAKE_QEMU_RECORD`, if set, and exits with
//!   `FAKE_QEMU_EXIT` (default 0) at once.

use serde_json::{json, Value};
use std::io::{BufRead, Write};

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.windows(2).any(|w| w[0] == "-qmp" && w[1] == "stdio") {
        probe(&args);
        return;
    }
    if let Some(path) = std::env::var_os("FAKE_QEMU_RECORD") {
        let fds = open_fds();
        let record = json!({ "argv": args, "fds": fds, "pid": std::process::id() });
        std::fs::write(path, record.to_string()).expect("write the record");
    }
    let code = std::env::var("FAKE_QEMU_EXIT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    std::process::exit(code);
}

/// Every open descriptor with its link target, read before anything else is opened.
fn open_fds() -> Vec<Value> {
    let names: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut fds: Vec<(i32, String)> = names
        .iter()
        .filter_map(|n| {
            let fd: i32 = n.parse().ok()?;
            // The listing's own descriptor is closed by now: its link is gone.
            let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    fds.into_iter()
        .map(|(fd, target)| json!({ "fd": fd, "target": target }))
        .collect()
}

fn version() -> (u64, u64, u64) {
    let v = std::env::var("FAKE_QEMU_VERSION").unwrap_or_else(|_| "9.1.0".into());
    let mut it = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        it.next().unwrap_or(9),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

fn probe(args: &[String]) {
    let accel = args
        .windows(2)
        .find(|w| w[0] == "-accel")
        .map(|w| w[1].clone())
        .unwrap_or_else(|| "tcg".into());
    if accel == "kvm" && std::env::var_os("FAKE_QEMU_NO_KVM").is_some() {
        eprintln!("fake-qemu: -accel kvm: invalid accelerator kvm");
        std::process::exit(1);
    }
    if let Some(log) = std::env::var_os("FAKE_QEMU_PROBE_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("probe log");
        let _ = writeln!(f, "probe accel={accel}");
    }
    let (major, minor, micro) = version();
    let at_least = |a: u64, b: u64| (major, minor) >= (a, b);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut send = |v: Value| {
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    };
    send(
        json!({"QMP": {"version": {"qemu": {"major": major, "minor": minor, "micro": micro},
        "package": "fake-qemu"}, "capabilities": ["oob"]}}),
    );
    // An event before any reply, as real QEMU may send.
    let mut negotiated = false;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let id = msg.get("id").cloned();
        let cmd = msg.get("execute").and_then(Value::as_str).unwrap_or("");
        let arg = |k: &str| {
            msg.pointer(&format!("/arguments/{k}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let reply: Result<Value, (&str, String)> = if !negotiated && cmd != "qmp_capabilities" {
            Err((
                "CommandNotFound",
                "Expecting capabilities negotiation with 'qmp_capabilities'".into(),
            ))
        } else {
            match cmd {
                "qmp_capabilities" => {
                    negotiated = true;
                    Ok(json!({}))
                }
                "qom-list-types" => {
                    let mut types = vec![
                        "vfio-ap",
                        "virtio-blk-ccw",
                        "virtio-net-ccw",
                        "virtio-serial-ccw",
                        "virtio-rng-ccw",
                        "virtconsole",
                        "sclpconsole",
                        "rng-random",
                        "memory-backend-file",
                        "virtio-balloon-ccw",
                    ];
                    if at_least(6, 0) {
                        types.push("s390-pv-guest");
                    }
                    if at_least(8, 2) {
                        types.push("iommufd");
                    }
                    Ok(Value::Array(
                        types
                            .into_iter()
                            .map(|t| json!({"name": t, "parent": "x"}))
                            .collect(),
                    ))
                }
                "device-list-properties" => {
                    let t = arg("typename");
                    let props: Vec<&str> = match t.as_str() {
                        "vfio-ap" if at_least(9, 0) => vec!["sysfsdev", "iommufd", "fd"],
                        "vfio-ap" => vec!["sysfsdev"],
                        "sclpconsole" | "virtconsole" => vec!["chardev"],
                        _ => vec!["iommu_platform", "devno"],
                    };
                    Ok(Value::Array(
                        props
                            .into_iter()
                            .map(|p| json!({"name": p, "type": "str"}))
                            .collect(),
                    ))
                }
                "qom-list-properties" => Ok(json!([{"name": "type", "type": "string"}])),
                "query-cpu-model-expansion" => {
                    if accel == "kvm" {
                        Ok(json!({"model": {"name": "gen16a-base", "props": {
                            "unpack": true, "ap": true, "apqci": true, "apft": true, "apqi": true,
                            "appv": at_least(8, 2), "appvi": at_least(8, 2), "els": true}}}))
                    } else {
                        Err((
                            "GenericError",
                            "The CPU definition 'host' is unknown.".into(),
                        ))
                    }
                }
                "quit" => {
                    send(with_id(json!({"return": {}}), &id));
                    send(
                        json!({"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"},
                        "timestamp": {"seconds": 0, "microseconds": 0}}),
                    );
                    return;
                }
                other => Err((
                    "CommandNotFound",
                    format!("The command {other} has not been found"),
                )),
            }
        };
        let msg = match reply {
            Ok(v) => json!({"return": v}),
            Err((class, desc)) => json!({"error": {"class": class, "desc": desc}}),
        };
        send(with_id(msg, &id));
    }
}

fn with_id(mut v: Value, id: &Option<Value>) -> Value {
    if let Some(id) = id {
        v["id"] = id.clone();
    }
    v
}
