//! `aplaunch qmp hotplug|unplug|list`: crypto hot plug for running guests.

use super::output::{AppError, Exit, Output};
use super::GlobalArgs;
use clap::{Args, Subcommand};
use host::ErrorKind;
use launcher::hotplug::{self, HotplugRequest, UnplugTarget, VfioApDevice};
use launcher::qmp::{self, Qmp};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// QMP commands for a running guest.
#[derive(Debug, Clone, Subcommand)]
pub enum QmpCommand {
    /// Hot plug a vfio_ap mdev into a running guest as its vfio-ap device
    Hotplug(HotplugArgs),
    /// Unplug the guest's vfio-ap device (by id or by mdev UUID)
    Unplug(UnplugArgs),
    /// List the guest's vfio-ap devices with their mdevs' matrices
    List(ListArgs),
    /// Ask the guest to shut down cleanly and wait until it has (a service's stop command)
    Powerdown(PowerdownArgs),
}

/// Arguments of `aplaunch qmp hotplug`.
#[derive(Debug, Clone, Args)]
pub struct HotplugArgs {
    /// The guest's QMP unix socket
    #[arg(long, value_name = "SOCK")]
    pub qmp: PathBuf,
    /// The mdev to plug
    #[arg(long, value_name = "UUID")]
    pub mdev: String,
    /// The device id in QEMU (default: ap-<first 8 digits of the UUID>)
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Seconds allowed for each QMP step
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    pub timeout: Duration,
}

/// Arguments of `aplaunch qmp unplug`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["id", "mdev"])))]
pub struct UnplugArgs {
    /// The guest's QMP unix socket
    #[arg(long, value_name = "SOCK")]
    pub qmp: PathBuf,
    /// The device id (or QOM path) to unplug
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Unplug the device whose sysfsdev names this mdev
    #[arg(long, value_name = "UUID")]
    pub mdev: Option<String>,
    /// Seconds to wait for QEMU's DEVICE_DELETED (also bounds each QMP step)
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub timeout: Duration,
}

/// Arguments of `aplaunch qmp list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The guest's QMP unix socket
    #[arg(long, value_name = "SOCK")]
    pub qmp: PathBuf,
    /// Seconds allowed for each QMP step
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    pub timeout: Duration,
}

/// Arguments of `aplaunch qmp powerdown`.
#[derive(Debug, Clone, Args)]
pub struct PowerdownArgs {
    /// The guest's QMP unix socket
    #[arg(long, value_name = "SOCK")]
    pub qmp: PathBuf,
    /// Seconds to wait for the guest to shut down
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub timeout: Duration,
}

pub(super) fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{s:?} must be between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs a qmp command.
pub fn run(global: &GlobalArgs, command: QmpCommand, out: &Output) -> Result<Exit, AppError> {
    match command {
        QmpCommand::Hotplug(args) => run_hotplug(global, args, out),
        QmpCommand::Unplug(args) => run_unplug(args, out),
        QmpCommand::List(args) => run_list(global, args, out),
        QmpCommand::Powerdown(args) => run_powerdown(args, out),
    }
}

pub(super) fn connect(sock: &Path, timeout: Duration) -> Result<Qmp, AppError> {
    // Keep only the events these commands wait for: a peer's other events cost nothing.
    let mut options = qmp::Options::with_timeout(timeout);
    options.keep_events = Some(vec!["DEVICE_DELETED".into(), "SHUTDOWN".into()]);
    Qmp::connect_with(sock, &options).map_err(|e| qmp_error(e, Some(sock)))
}

/// Maps a QMP client error to the contract: every one is exit 3 (QMP unreachable, timed
/// out or misbehaving).
pub fn qmp_error(e: qmp::Error, sock: Option<&Path>) -> AppError {
    let hint = match &e {
        qmp::Error::Connect { .. } | qmp::Error::ConnectTimeout { .. } => match sock {
            Some(s) => format!(
                "check that {} is the guest's QMP socket (QEMU's -qmp unix:{},server=on,wait=off) and that the guest is running",
                s.display(),
                s.display()
            ),
            None => "check the path of the guest's QMP socket (QEMU's -qmp unix:<path>,server=on,wait=off) and that the guest is running".to_string(),
        },
        qmp::Error::NoGreeting { .. } => "QEMU serves one QMP client per monitor: close other clients, or give QEMU another -qmp socket".into(),
        qmp::Error::Timeout { .. } => "QEMU did not answer in time; raise --timeout, or check that QEMU is not stopped in a debugger or overloaded".into(),
        qmp::Error::Disconnected { .. } => "QEMU closed the monitor; check that the guest is still running".into(),
        qmp::Error::Command { .. } => "see QEMU's message".into(),
        qmp::Error::Flood { .. } => "QEMU sent events faster than they were taken; check what floods its monitor (a guest stuck in a loop, a broken QEMU)".into(),
        _ => format!(
            "{} does not speak QMP correctly; make sure it is QEMU's -qmp socket",
            sock.map_or_else(|| "the peer".to_string(), |s| s.display().to_string())
        ),
    };
    AppError::failed(e.kind(), e.to_string()).with_hint(hint)
}

pub(super) fn hotplug_error(e: hotplug::Error) -> AppError {
    use hotplug::Error as E;
    let message = e.to_string();
    match e {
        E::InvalidUuid { .. } => AppError::usage(message)
            .with_hint("give the mdev's UUID, as `aplaunch ap list` or `mdevctl list` shows it"),
        E::InvalidId { .. } => AppError::usage(message),
        E::HostChecks { uuid, .. } => AppError::refused(ErrorKind::HostChecks, message).with_hint(
            format!("fix the failed checks (`aplaunch ap check {uuid}` shows them all), then retry"),
        ),
        E::AlreadyPlugged { existing } => {
            let live = match existing.uuid.as_deref() {
                Some(u) => format!(", or change mdev {u}'s matrix live (`aplaunch ap mdev assign {u}` with the ids to add)"),
                None => String::new(),
            };
            AppError::refused(ErrorKind::AlreadyPlugged, message).with_hint(format!(
                "QEMU allows one vfio-ap device per guest: unplug it first (`aplaunch qmp unplug --id {}`){live}",
                existing.handle(),
            ))
        }
        E::IdInUse { .. } => AppError::refused(ErrorKind::IdInUse, message).with_hint("choose another --id"),
        E::NoApFeature { uuid, kvm: Some(false), .. } => AppError::refused(ErrorKind::NoApFeature, message).with_hint(format!(
            "a guest under TCG cannot have a crypto device: start it under KVM on an IBM Z host with `aplaunch launch --mdev {uuid} ...`, which gives it the AP CPU features",
        )),
        E::ApBusFull { .. } => AppError::refused(ErrorKind::AlreadyPlugged, message).with_hint(
            "QEMU allows one vfio-ap device per guest: `aplaunch qmp list` shows it; unplug it first (`aplaunch qmp unplug --id ID`)",
        ),
        E::NoApFeature { uuid, .. } => AppError::refused(ErrorKind::NoApFeature, message).with_hint(format!(
            "restart the guest with AP instructions in its CPU model, e.g. `-cpu host,ap=on,apqci=on,apft=on,apqi=on` (`aplaunch launch --mdev {uuid}` does this); the AP feature cannot be added to a running guest",
        )),
        E::AddRefused { .. } => AppError::failed(ErrorKind::DeviceAddRefused, message).with_hint(
            "QEMU could not open the mdev: check that it exists on this host and is not used by another guest",
        ),
        E::NotConfirmed { .. } => AppError::failed(ErrorKind::NotConfirmed, message)
            .with_hint("look at QEMU's log; `aplaunch qmp list` shows what the guest has"),
        E::NotFound { .. } => AppError::refused(ErrorKind::NotFound, message)
            .with_hint("`aplaunch qmp list` shows the guest's vfio-ap devices"),
        E::Gone { .. } => AppError::refused(ErrorKind::NotFound, message)
            .with_hint("nothing to do: the device is no longer in the guest"),
        E::DeleteTimeout { .. } => AppError::failed(ErrorKind::UnplugTimeout, message).with_hint(
            "raise --timeout; `aplaunch qmp list` shows whether the device is still there",
        ),
        E::Qmp(e) => qmp_error(e, None),
        _ => AppError::failed(ErrorKind::Hotplug, message),
    }
}

fn run_hotplug(global: &GlobalArgs, args: HotplugArgs, out: &Output) -> Result<Exit, AppError> {
    let root = super::host_root(global)?;
    // Malformed input is refused before touching the guest.
    let uuid = hotplug::normalize_uuid(&args.mdev).map_err(hotplug_error)?;
    if let Some(id) = &args.id {
        if !hotplug::valid_id(id) {
            return Err(hotplug_error(hotplug::Error::InvalidId {
                given: id.clone(),
            }));
        }
    }
    let request = HotplugRequest {
        uuid,
        id: args.id,
        host_checks: true,
    };
    let mut qmp = connect(&args.qmp, args.timeout)?;
    let plugged = match hotplug::hotplug(&mut qmp, &root, &request) {
        Ok(p) => p,
        Err(hotplug::Error::HostChecks { uuid, failed }) => {
            let err = hotplug_error(hotplug::Error::HostChecks {
                uuid,
                failed: failed.clone(),
            });
            if out.json {
                out.json_document(&json!({ "ok": false, "error": err, "checks": failed }));
                return Ok(err.exit);
            }
            let mut report = host::Report::new();
            report.extend(failed);
            eprint!("{}", report.render(out.colour_stderr));
            return Err(err);
        }
        Err(e) => return Err(hotplug_error(e)),
    };
    if out.json {
        out.json_document(&json!({
            "ok": true,
            "device": { "id": plugged.id, "uuid": plugged.uuid, "sysfsdev": plugged.sysfsdev },
            "guest_matrix": plugged.guest_matrix,
            "qemu": plugged.qemu.to_string(),
            "checks": plugged.checks,
        }));
    } else {
        let mut text = format!(
            "plugged vfio-ap device '{}' (mdev {}, sysfsdev {}) into the guest (QEMU {})\n",
            plugged.id, plugged.uuid, plugged.sysfsdev, plugged.qemu
        );
        let _ = writeln!(
            text,
            "the guest will see {} APQN(s): {}",
            plugged.guest_matrix.len(),
            plugged.guest_matrix.join(" ")
        );
        text.push_str("a guest without AP config-change support notices them at its next AP bus scan (Linux: every /sys/bus/ap/config_time seconds); `lszcrypt` in the guest lists them\n");
        out.human(&text);
    }
    Ok(Exit::Ok)
}

fn run_unplug(args: UnplugArgs, out: &Output) -> Result<Exit, AppError> {
    let target = match (args.id, args.mdev) {
        (Some(id), _) => UnplugTarget::Id(id),
        (None, Some(u)) => UnplugTarget::Mdev(hotplug::normalize_uuid(&u).map_err(hotplug_error)?),
        (None, None) => return Err(AppError::usage("give --id ID or --mdev UUID")),
    };
    let mut qmp = connect(&args.qmp, args.timeout)?;
    let done = hotplug::unplug(&mut qmp, &target, args.timeout).map_err(hotplug_error)?;
    if out.json {
        out.json_document(&json!({ "ok": true, "unplugged": device_json(&done.device) }));
    } else {
        out.human(&format!(
            "unplugged vfio-ap device {} (QEMU sent DEVICE_DELETED)\n",
            done.device.describe()
        ));
    }
    Ok(Exit::Ok)
}

fn device_json(d: &VfioApDevice) -> serde_json::Value {
    json!({
        "id": d.id,
        "qom_path": d.qom_path,
        "sysfsdev": d.sysfsdev,
        "uuid": d.uuid,
        "matrix": d.matrix,
    })
}

fn run_list(global: &GlobalArgs, args: ListArgs, out: &Output) -> Result<Exit, AppError> {
    let root = super::host_root(global)?;
    let mut qmp = connect(&args.qmp, args.timeout)?;
    let devices = hotplug::list(&mut qmp, Some(&root)).map_err(hotplug_error)?;
    if out.json {
        let list: Vec<_> = devices.iter().map(device_json).collect();
        out.json_document(
            &json!({ "ok": true, "qemu": qmp.version().to_string(), "devices": list }),
        );
        return Ok(Exit::Ok);
    }
    if devices.is_empty() {
        out.human(&format!(
            "no vfio-ap device in the guest (QEMU {})\n",
            qmp.version()
        ));
        return Ok(Exit::Ok);
    }
    let rows: Vec<[String; 3]> = devices
        .iter()
        .map(|d| {
            [
                d.id.clone().unwrap_or_else(|| d.qom_path.clone()),
                d.sysfsdev.clone().unwrap_or_else(|| "?".into()),
                d.matrix
                    .as_ref()
                    .map_or_else(|| "(mdev not on this host)".into(), |m| m.join(" ")),
            ]
        })
        .collect();
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0).max(2);
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0).max(8);
    let mut text = format!("{:<w0$}  {:<w1$}  MATRIX\n", "ID", "SYSFSDEV");
    for r in rows {
        let _ = writeln!(text, "{:<w0$}  {:<w1$}  {}", r[0], r[1], r[2]);
    }
    out.human(&text);
    Ok(Exit::Ok)
}

fn run_powerdown(args: PowerdownArgs, out: &Output) -> Result<Exit, AppError> {
    let mut qmp = connect(&args.qmp, args.timeout)?;
    let done = launcher::power::powerdown(&mut qmp, args.timeout).map_err(|e| {
        if e.is_timeout() {
            AppError::failed(
                ErrorKind::PowerdownTimeout,
                format!(
                    "the guest did not shut down within {} s of the power-down request",
                    args.timeout.as_secs_f64()
                ),
            )
            .with_hint(
                "the guest may still be shutting down (raise --timeout), or ignores the request \
                 (no ACPI-like handling: Linux guests shut down on the SCLP quiesce signal); \
                 as a last resort stop QEMU itself with SIGTERM (`kill -TERM` its process, or \
                 `systemctl stop` its unit), which ends the guest without a shutdown",
            )
        } else {
            qmp_error(e, Some(&args.qmp))
        }
    })?;
    let reason = done
        .shutdown
        .as_ref()
        .and_then(|e| e.data_str("reason"))
        .map(str::to_string);
    if out.json {
        out.json_document(&json!({
            "ok": true,
            "shutdown": done.shutdown.is_some(),
            "reason": reason,
            "qemu_exited": done.qemu_exited,
        }));
    } else {
        let how = match (&reason, done.qemu_exited) {
            (Some(r), true) => format!("the guest shut down ({r}) and QEMU exited\n"),
            (Some(r), false) => {
                format!("the guest shut down ({r}); QEMU is still running (-no-shutdown?)\n")
            }
            (None, _) => "QEMU exited\n".to_string(),
        };
        out.human(&how);
    }
    Ok(Exit::Ok)
}
