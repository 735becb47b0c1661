//! QEMU discovery and the probe: what the chosen qemu-system-s390x can do.
//!
//! The probe starts the binary with `-machine none -nodefaults -display none`, KVM when
//! `/dev/kvm` is usable (else TCG), and a QMP channel on its stdio (a socket pair), then
//! asks for the version, the QOM types, the properties of the devices the builder emits
//! and, under KVM, the host CPU model. Results are cached (namespace `qemu-probe`) keyed by
//! the binary's path, size, mtime and ctime, the kernel release and whether KVM was usable.
//!
//! The QMP use is behind [`QmpExchange`] (implemented by the project's [`crate::qmp::Qmp`]),
//! so the probe's questions do not depend on a client and are tested with scripted replies.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Cache namespace of probe results.
pub const CACHE_NAMESPACE: &str = "qemu-probe-2";
/// Bumped when [`QemuCaps`] changes shape, which invalidates older cache records.
const PROBE_FORMAT: u32 = 1;
/// The binary looked up on PATH.
pub const QEMU_NAME: &str = "qemu-system-s390x";
/// RHEL's QEMU, used when no qemu-system-s390x is on PATH.
pub const RHEL_QEMU: &str = "/usr/libexec/qemu-kvm";
/// How long one QMP answer may take before the probe gives up.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Devices whose properties the probe records (everything the builder can emit).
pub const PROBED_DEVICES: &[&str] = &[
    "vfio-ap",
    "virtio-blk-ccw",
    "virtio-net-ccw",
    "virtio-serial-ccw",
    "virtio-rng-ccw",
    "virtconsole",
    "sclpconsole",
];
/// Objects whose properties the probe records.
pub const PROBED_OBJECTS: &[&str] = &[
    "s390-pv-guest",
    "iommufd",
    "rng-random",
    "memory-backend-file",
];
/// CPU model features the checks and the builder care about.
pub const CPU_FEATURES: &[&str] = &["unpack", "ap", "apqci", "apft", "apqi", "appv", "appvi"];

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// No binary was found.
    #[error("no QEMU found: {QEMU_NAME} is not on PATH and {RHEL_QEMU} does not exist")]
    NotFound,
    /// The named binary does not exist or is not executable.
    #[error("{path} is not an executable file")]
    NotExecutable {
        /// The path given.
        path: PathBuf,
    },
    /// Starting it failed.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// It started but the QMP conversation failed.
    #[error("{path} did not answer the probe over QMP: {reason}")]
    Qmp {
        /// The binary.
        path: PathBuf,
        /// What went wrong, with QEMU's own stderr when it said something.
        reason: String,
    },
}

/// `major.minor.micro`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QemuVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Micro.
    pub micro: u32,
}

impl QemuVersion {
    /// A version.
    pub const fn new(major: u32, minor: u32, micro: u32) -> Self {
        QemuVersion {
            major,
            minor,
            micro,
        }
    }

    /// Whether this is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl std::fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// What the probe learned about one QEMU binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuCaps {
    /// The binary.
    pub binary: PathBuf,
    /// Its version.
    pub version: QemuVersion,
    /// The distribution's package string (may be empty).
    pub package: String,
    /// The accelerator the probe ran with (`kvm` or `tcg`).
    pub accel: String,
    /// Why KVM was not used, when it was not.
    pub kvm_unavailable: Option<String>,
    /// QOM type names of interest that exist ([`PROBED_DEVICES`], [`PROBED_OBJECTS`]).
    pub types: BTreeSet<String>,
    /// Property names per probed device or object type.
    pub properties: BTreeMap<String, BTreeSet<String>>,
    /// The host CPU model expansion's feature flags (only under KVM).
    pub cpu: Option<BTreeMap<String, bool>>,
    /// Why the CPU model is unknown, when it is.
    pub cpu_unknown: Option<String>,
    /// Parameters of the command-line options of interest ([`PROBED_OPTIONS`]) that this
    /// binary has (`query-command-line-options`); an option missing here does not exist
    /// (`-sandbox` in a QEMU built without seccomp, `-run-with` in older QEMU).
    #[serde(default)]
    pub command_line_options: BTreeMap<String, BTreeSet<String>>,
}

/// Command-line options whose parameters the probe records.
pub const PROBED_OPTIONS: &[&str] = &["sandbox", "run-with"];

/// The seccomp sandbox aplaunch asks for, as libvirt does.
pub const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// The `-sandbox` parameters [`SANDBOX`] uses (QEMU's name of `on` is `enable`).
const SANDBOX_PARAMETERS: [&str; 5] = [
    "enable",
    "obsolete",
    "elevateprivileges",
    "spawn",
    "resourcecontrol",
];

impl QemuCaps {
    /// Whether a QOM type exists.
    pub fn has_type(&self, name: &str) -> bool {
        self.types.contains(name)
    }

    /// Whether a device or object type has a property.
    pub fn has_property(&self, type_name: &str, prop: &str) -> bool {
        self.properties
            .get(type_name)
            .is_some_and(|p| p.contains(prop))
    }

    /// Whether `-sandbox` takes every parameter of [`SANDBOX`] (QEMU built with seccomp).
    pub fn sandbox(&self) -> bool {
        self.command_line_options
            .get("sandbox")
            .is_some_and(|p| SANDBOX_PARAMETERS.iter().all(|k| p.contains(*k)))
    }

    /// Whether `-run-with user=` exists (QEMU 9.1+); older QEMU drops privileges with `-runas`.
    pub fn run_with_user(&self) -> bool {
        self.command_line_options
            .get("run-with")
            .is_some_and(|p| p.contains("user"))
    }

    /// A host CPU model feature: `None` when the model could not be asked.
    pub fn cpu_feature(&self, name: &str) -> Option<bool> {
        self.cpu
            .as_ref()
            .map(|c| c.get(name).copied().unwrap_or(false))
    }

    /// Whether this QEMU can take a vfio-ap device over iommufd with passed descriptors.
    pub fn vfio_ap_iommufd(&self) -> bool {
        self.has_type("iommufd")
            && self.has_property("vfio-ap", "iommufd")
            && self.has_property("vfio-ap", "fd")
    }

    /// What a QEMU of this version is known to have, for tests and examples: an s390x
    /// KVM build on a z16 with AP and AP-for-secure-guests support.
    pub fn assumed(version: QemuVersion) -> Self {
        let v = version;
        let mut types: BTreeSet<String> = PROBED_DEVICES
            .iter()
            .chain(["rng-random", "memory-backend-file"].iter())
            .map(|s| s.to_string())
            .collect();
        if v.at_least(6, 0) {
            types.insert("s390-pv-guest".into());
        }
        if v.at_least(8, 2) {
            types.insert("iommufd".into());
        }
        let mut properties = BTreeMap::new();
        let mut vfio_ap: BTreeSet<String> = ["sysfsdev"].iter().map(|s| s.to_string()).collect();
        if v.at_least(9, 0) {
            vfio_ap.insert("iommufd".into());
            vfio_ap.insert("fd".into());
        }
        properties.insert("vfio-ap".to_string(), vfio_ap);
        let virtio: BTreeSet<String> = ["iommu_platform", "devno", "max_revision"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for d in [
            "virtio-blk-ccw",
            "virtio-net-ccw",
            "virtio-serial-ccw",
            "virtio-rng-ccw",
        ] {
            properties.insert(d.to_string(), virtio.clone());
        }
        let mut cpu: BTreeMap<String, bool> = ["unpack", "ap", "apqci", "apft", "apqi"]
            .iter()
            .map(|f| (f.to_string(), true))
            .collect();
        if v.at_least(8, 2) {
            cpu.insert("appv".into(), true);
            cpu.insert("appvi".into(), true);
        }
        let mut command_line_options = BTreeMap::new();
        command_line_options.insert(
            "sandbox".to_string(),
            SANDBOX_PARAMETERS.iter().map(|s| s.to_string()).collect(),
        );
        if v.at_least(8, 1) {
            let mut run_with: BTreeSet<String> = ["async-teardown", "chroot"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if v.at_least(9, 1) {
                run_with.insert("user".into());
            }
            command_line_options.insert("run-with".to_string(), run_with);
        }
        QemuCaps {
            binary: PathBuf::from("/usr/bin/qemu-system-s390x"),
            version,
            package: String::new(),
            accel: "kvm".into(),
            kvm_unavailable: None,
            types,
            properties,
            cpu: Some(cpu),
            cpu_unknown: None,
            command_line_options,
        }
    }
}

/// A QMP command's error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpErrorReply {
    /// `error.class`.
    pub class: String,
    /// `error.desc`.
    pub desc: String,
}

/// The one thing the probe needs from a QMP client: run a command after the capabilities
/// negotiation and return its `return` value or its error reply.
pub trait QmpExchange {
    /// Runs one command. `Err` is a transport failure; `Ok(Err)` is QEMU's error reply.
    fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> std::io::Result<Result<Value, QmpErrorReply>>;
}

/// Asks a running QEMU everything the probe records (the greeting is already read).
pub fn ask(
    qmp: &mut dyn QmpExchange,
    binary: &Path,
    version: QemuVersion,
    package: String,
    accel: &str,
) -> std::io::Result<QemuCaps> {
    let interesting: BTreeSet<&str> = PROBED_DEVICES
        .iter()
        .chain(PROBED_OBJECTS.iter())
        .copied()
        .collect();
    let mut types = BTreeSet::new();
    if let Ok(Value::Array(list)) = qmp.execute("qom-list-types", None)? {
        for t in list {
            if let Some(name) = t.get("name").and_then(Value::as_str) {
                if interesting.contains(name) {
                    types.insert(name.to_string());
                }
            }
        }
    }
    let mut properties = BTreeMap::new();
    for dev in PROBED_DEVICES.iter().filter(|d| types.contains(**d)) {
        let reply = qmp.execute("device-list-properties", Some(json!({ "typename": dev })))?;
        properties.insert(dev.to_string(), prop_names(reply));
    }
    for obj in PROBED_OBJECTS.iter().filter(|d| types.contains(**d)) {
        let reply = qmp.execute("qom-list-properties", Some(json!({ "typename": obj })))?;
        properties.insert(obj.to_string(), prop_names(reply));
    }
    let mut command_line_options = BTreeMap::new();
    for option in PROBED_OPTIONS {
        // An option QEMU lacks is an error reply ("invalid option name").
        if let Ok(Value::Array(list)) = qmp.execute(
            "query-command-line-options",
            Some(json!({ "option": option })),
        )? {
            let params: BTreeSet<String> = list
                .iter()
                .filter_map(|o| o.get("parameters").and_then(Value::as_array))
                .flatten()
                .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
            command_line_options.insert(option.to_string(), params);
        }
    }
    let (cpu, cpu_unknown) = if accel == "kvm" {
        let reply = qmp.execute(
            "query-cpu-model-expansion",
            Some(json!({"type": "full", "model": {"name": "host"}})),
        )?;
        match reply {
            Ok(v) => {
                let props = v.pointer("/model/props").and_then(Value::as_object);
                let map: BTreeMap<String, bool> = props
                    .map(|p| {
                        p.iter()
                            .filter(|(k, _)| CPU_FEATURES.contains(&k.as_str()))
                            .filter_map(|(k, v)| v.as_bool().map(|b| (k.clone(), b)))
                            .collect()
                    })
                    .unwrap_or_default();
                (Some(map), None)
            }
            Err(e) => (
                None,
                Some(format!(
                    "the host CPU model could not be expanded: {}",
                    e.desc
                )),
            ),
        }
    } else {
        (
            None,
            Some("KVM is not available to ask for the host CPU model (probed under tcg)".into()),
        )
    };
    Ok(QemuCaps {
        binary: binary.to_path_buf(),
        version,
        package,
        accel: accel.to_string(),
        kvm_unavailable: None,
        types,
        properties,
        cpu,
        cpu_unknown,
        command_line_options,
    })
}

fn prop_names(reply: Result<Value, QmpErrorReply>) -> BTreeSet<String> {
    match reply {
        Ok(Value::Array(list)) => list
            .iter()
            .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Finds the QEMU binary: `explicit`, else `qemu-system-s390x` on PATH, else RHEL's
/// `/usr/libexec/qemu-kvm`.
pub fn discover(explicit: Option<&Path>) -> Result<PathBuf, ProbeError> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if let Some(path) = explicit {
        // A bare name is looked up on PATH like a shell would.
        let resolved = if path.components().count() == 1 && !path.as_os_str().is_empty() {
            find_on_path(path.as_os_str()).unwrap_or_else(|| path.to_path_buf())
        } else {
            path.to_path_buf()
        };
        if executable(&resolved) {
            return Ok(resolved);
        }
        return Err(ProbeError::NotExecutable {
            path: path.to_path_buf(),
        });
    }
    if let Some(p) = find_on_path(QEMU_NAME.as_ref()) {
        return Ok(p);
    }
    if executable(Path::new(RHEL_QEMU)) {
        return Ok(PathBuf::from(RHEL_QEMU));
    }
    Err(ProbeError::NotFound)
}

fn find_on_path(name: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether QEMU can use KVM on this host: the host root is the real host and its
/// `/dev/kvm` opens read-write.
pub fn kvm_usable(root: &host::HostRoot) -> bool {
    use nix::fcntl::OFlag;
    root.is_system()
        && root
            .open_node(pv::kvm::KVM_NODE, OFlag::O_RDWR | OFlag::O_NONBLOCK)
            .is_ok()
}

/// A QEMU started for probing (`-machine none`), with its QMP channel negotiated.
pub struct ProbeSession {
    /// The process.
    pub child: std::process::Child,
    /// Its QMP channel (on its stdio), negotiated.
    pub qmp: crate::qmp::Qmp,
    /// The version from the greeting.
    pub version: QemuVersion,
    /// The package string from the greeting.
    pub package: String,
}

impl ProbeSession {
    /// Starts `binary -machine none -nodefaults -display none -accel ACCEL -qmp stdio` and
    /// negotiates QMP.
    pub fn start(binary: &Path, accel: &str) -> Result<Self, ProbeError> {
        let spawn_err = |source| ProbeError::Spawn {
            path: binary.to_path_buf(),
            source,
        };
        let (ours, theirs) = UnixStream::pair().map_err(spawn_err)?;
        let theirs_out = theirs.try_clone().map_err(spawn_err)?;
        let mut child = Command::new(binary)
            .args([
                "-machine",
                "none",
                "-nodefaults",
                "-display",
                "none",
                "-accel",
                accel,
                "-qmp",
                "stdio",
            ])
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        let options = crate::qmp::Options::with_timeout(PROBE_TIMEOUT);
        match crate::qmp::Qmp::from_stream(ours, &options) {
            Ok(qmp) => {
                let v = qmp.version();
                let num = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
                let version = QemuVersion::new(num(v.major), num(v.minor), num(v.micro));
                let package = qmp.greeting().package.trim().to_string();
                Ok(ProbeSession {
                    child,
                    qmp,
                    version,
                    package,
                })
            }
            Err(e) => Err(fail(binary, &mut child, e.to_string())),
        }
    }

    /// Sends `quit` and reaps the process.
    pub fn quit(mut self) {
        let _ = QmpExchange::execute(&mut self.qmp, "quit", None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills a probe QEMU and turns what went wrong (with its stderr) into an error.
fn fail(binary: &Path, child: &mut std::process::Child, reason: String) -> ProbeError {
    let _ = child.kill();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(4096).read_to_string(&mut stderr);
    }
    let _ = child.wait();
    let stderr = stderr.trim();
    ProbeError::Qmp {
        path: binary.to_path_buf(),
        reason: if stderr.is_empty() {
            reason
        } else {
            format!("{reason}; QEMU said: {stderr}")
        },
    }
}

/// Runs the probe with one accelerator.
fn probe_with(binary: &Path, accel: &str) -> Result<QemuCaps, ProbeError> {
    let mut session = ProbeSession::start(binary, accel)?;
    let asked = ask(
        &mut session.qmp,
        binary,
        session.version,
        session.package.clone(),
        accel,
    );
    match asked {
        Ok(caps) => {
            session.quit();
            Ok(caps)
        }
        Err(e) => Err(fail(binary, &mut session.child, e.to_string())),
    }
}

/// Probes a binary: under KVM when `kvm` is true (falling back to TCG when QEMU cannot
/// use it, which is recorded in [`QemuCaps::kvm_unavailable`]), else under TCG.
pub fn probe(binary: &Path, kvm: bool) -> Result<QemuCaps, ProbeError> {
    if !kvm {
        let mut caps = probe_with(binary, "tcg")?;
        caps.kvm_unavailable = Some("/dev/kvm is not usable here".into());
        return Ok(caps);
    }
    match probe_with(binary, "kvm") {
        Ok(caps) => Ok(caps),
        Err(kvm_err) => {
            let mut caps = probe_with(binary, "tcg")?;
            caps.kvm_unavailable = Some(kvm_err.to_string());
            caps.cpu_unknown = Some(format!(
                "KVM is not available to ask for the host CPU model: {kvm_err}"
            ));
            Ok(caps)
        }
    }
}

/// The cache key of a binary: its path, size, mtime, ctime, the kernel release and
/// whether KVM is usable; `None` when the binary cannot be stat'ed.
pub fn cache_key(binary: &Path, kvm: bool) -> Option<String> {
    let meta = std::fs::metadata(binary).ok()?;
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    Some(format!(
        "v{PROBE_FORMAT}\0{}\0{}\0{}.{}\0{}.{}\0{release}\0kvm={kvm}",
        binary.display(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    ))
}

/// A probe result and where it came from.
#[derive(Debug, Clone)]
pub struct Probed {
    /// The capabilities.
    pub caps: QemuCaps,
    /// True when read from the cache.
    pub cached: bool,
}

/// Probes `binary`, reading and filling `cache` unless it is `None` (`--no-cache`).
pub fn probe_cached(
    binary: &Path,
    kvm: bool,
    cache: Option<&host::cache::Cache>,
) -> Result<Probed, ProbeError> {
    let key = cache_key(binary, kvm);
    if let (Some(cache), Some(key)) = (cache, key.as_deref()) {
        if let Some(caps) = cache.get::<QemuCaps>(CACHE_NAMESPACE, key) {
            tracing::debug!(binary = %binary.display(), "QEMU probe from cache");
            return Ok(Probed { caps, cached: true });
        }
    }
    let caps = probe(binary, kvm)?;
    if let (Some(cache), Some(key)) = (cache, key.as_deref()) {
        cache.put(CACHE_NAMESPACE, key, &caps);
    }
    Ok(Probed {
        caps,
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies by command and arguments (compared as JSON values, whatever the key order).
    struct Scripted(Vec<(String, Result<Value, QmpErrorReply>)>);

    impl QmpExchange for Scripted {
        fn execute(
            &mut self,
            command: &str,
            arguments: Option<Value>,
        ) -> std::io::Result<Result<Value, QmpErrorReply>> {
            let matches = |key: &str| {
                let (cmd, args) = key.split_once(' ').unwrap_or((key, ""));
                let args: Option<Value> =
                    (!args.is_empty()).then(|| serde_json::from_str(args).unwrap());
                cmd == command && args == arguments
            };
            match self.0.iter().position(|(k, _)| matches(k)) {
                Some(i) => Ok(self.0.remove(i).1),
                None => Ok(Err(QmpErrorReply {
                    class: "CommandNotFound".into(),
                    desc: command.to_string(),
                })),
            }
        }
    }

    #[test]
    fn ask_reads_types_properties_and_the_cpu_model() {
        let mut qmp = Scripted(vec![
            (
                "qom-list-types".into(),
                Ok(json!([{"name":"vfio-ap"},{"name":"s390-pv-guest"},{"name":"x"}])),
            ),
            (
                r#"device-list-properties {"typename":"vfio-ap"}"#.into(),
                Ok(json!([{"name":"sysfsdev"},{"name":"fd"},{"name":"iommufd"}])),
            ),
            (
                r#"qom-list-properties {"typename":"s390-pv-guest"}"#.into(),
                Ok(json!([{"name":"type"}])),
            ),
            (
                r#"query-cpu-model-expansion {"model":{"name":"host"},"type":"full"}"#.into(),
                Ok(
                    json!({"model":{"name":"gen16a-base","props":{"unpack":true,"ap":true,"appv":false,"zz":true,"n":1}}}),
                ),
            ),
        ]);
        let caps = ask(
            &mut qmp,
            Path::new("/q"),
            QemuVersion::new(9, 1, 0),
            "p".into(),
            "kvm",
        )
        .unwrap();
        assert!(caps.has_type("vfio-ap") && caps.has_type("s390-pv-guest"));
        assert!(!caps.has_type("x"));
        assert!(caps.has_property("vfio-ap", "fd"));
        assert!(!caps.vfio_ap_iommufd(), "no iommufd object type");
        assert_eq!(caps.cpu_feature("unpack"), Some(true));
        assert_eq!(caps.cpu_feature("appv"), Some(false));
        assert_eq!(caps.cpu_feature("apqci"), Some(false));
        assert!(!caps.cpu.as_ref().unwrap().contains_key("zz"));
        assert!(qmp.0.is_empty(), "every scripted command was asked");
    }

    #[test]
    fn tcg_probe_does_not_ask_for_the_host_model() {
        let mut qmp = Scripted(vec![("qom-list-types".into(), Ok(json!([])))]);
        let caps = ask(
            &mut qmp,
            Path::new("/q"),
            QemuVersion::new(7, 2, 0),
            String::new(),
            "tcg",
        )
        .unwrap();
        assert_eq!(caps.cpu_feature("unpack"), None);
        assert!(caps.cpu_unknown.unwrap().contains("tcg"));
    }

    #[test]
    fn versions_compare() {
        let v = QemuVersion::new(8, 2, 1);
        assert!(v.at_least(8, 2) && v.at_least(6, 0) && !v.at_least(9, 0));
        assert_eq!(v.to_string(), "8.2.1");
        assert!(QemuCaps::assumed(QemuVersion::new(9, 0, 0)).vfio_ap_iommufd());
        assert!(!QemuCaps::assumed(QemuVersion::new(8, 2, 0)).vfio_ap_iommufd());
    }

    #[test]
    fn discover_rejects_non_executables() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("q");
        std::fs::write(&f, "").unwrap();
        assert!(matches!(
            discover(Some(&f)),
            Err(ProbeError::NotExecutable { .. })
        ));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(discover(Some(&f)).unwrap(), f);
    }

    #[test]
    fn cache_key_changes_with_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("q");
        std::fs::write(&f, "a").unwrap();
        let k1 = cache_key(&f, true).unwrap();
        assert_ne!(k1, cache_key(&f, false).unwrap());
        std::fs::write(&f, "ab").unwrap();
        assert_ne!(k1, cache_key(&f, true).unwrap());
        assert!(cache_key(&dir.path().join("none"), true).is_none());
    }
}
