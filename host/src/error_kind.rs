//! The kinds of error aplaunch reports: the `kind` of `{"ok":false,"error":{"kind":...}}`,
//! which scripts match on. Every crate names its refusals and failures with these.

use crate::names::string_enum;

string_enum! {
    /// A stable, machine-readable kind of error, serialized as its string (`usage`,
    /// `qmp-timeout`, ...). The exit code is chosen with it, not by it: the same kind may
    /// be a refusal in one command and a failure in another. New errors add variants,
    /// hence non-exhaustive.
    pub enum ErrorKind;
    /// A text that is no error kind.
    pub struct UnknownErrorKind("is not " "an error kind");

    /// The command line or a value in it is wrong.
    Usage = "usage",
    /// Input read from a file or the host is malformed.
    Malformed = "malformed",
    /// Reading or writing a file failed.
    Io = "io",
    /// The kernel refused a sysfs write.
    Kernel = "kernel",
    /// The AP configuration lock was not free in time.
    Lock = "lock",
    /// An id is above the host's AP limits.
    Limits = "limits",
    /// The vfio_ap module is not loaded.
    VfioApModule = "vfio-ap-module",
    /// No such mdev.
    NoMdev = "no-mdev",
    /// The AP bus is not there.
    NoApBus = "no-ap-bus",
    /// The mdev has no vfio cdev.
    NoCdev = "no-cdev",
    /// An APQN is also in another mdev or definition.
    Conflict = "conflict",
    /// The masks keep an APQN for the host drivers.
    Masks = "masks",
    /// The masks at boot would keep an APQN for the host drivers.
    PersistentMasks = "persistent-masks",
    /// The mdev or definition exists already.
    Exists = "exists",
    /// No more mdev instances are available.
    Instances = "instances",
    /// The mdev's matrix is empty or invalid.
    Matrix = "matrix",
    /// A running guest holds the mdev.
    InUse = "in-use",
    /// Writing the mdevctl definition failed.
    Define = "define",
    /// The mdevctl definition is refused.
    Definition = "definition",
    /// The host keys file is malformed.
    HostKeys = "host-keys",
    /// The file is not an SE image.
    NotSeImage = "not-se-image",
    /// The SE image breaks a structural rule.
    InvalidImage = "invalid-image",
    /// The output directory exists.
    OutputExists = "output-exists",
    /// Taking a host snapshot failed.
    Snapshot = "snapshot",
    /// No explanation is known for the text.
    UnknownText = "unknown-text",
    /// The launch's flags or config file are wrong.
    InvalidSpec = "invalid-spec",
    /// A host check failed before a launch.
    ChecksFailed = "checks-failed",
    /// The mdev did not appear in time.
    MdevTimeout = "mdev-timeout",
    /// A guest file (disk, kernel, image) cannot be used.
    GuestFile = "guest-file",
    /// The QMP socket is in use by a running QEMU.
    QmpInUse = "qmp-in-use",
    /// The console socket is in use.
    ConsoleInUse = "console-in-use",
    /// The QMP socket's directory is not private.
    QmpDirNotPrivate = "qmp-dir-not-private",
    /// QEMU could not be executed.
    Exec = "exec",
    /// The host checks for a hot plug failed.
    HostChecks = "host-checks",
    /// The mdev is plugged already, or the AP bus is full.
    AlreadyPlugged = "already-plugged",
    /// The device id is in use.
    IdInUse = "id-in-use",
    /// The guest runs without the AP CPU feature.
    NoApFeature = "no-ap-feature",
    /// QEMU refused the device_add.
    DeviceAddRefused = "device-add-refused",
    /// The plugged device did not show in the guest.
    NotConfirmed = "not-confirmed",
    /// No such device in the guest.
    NotFound = "not-found",
    /// The guest did not release the device in time.
    UnplugTimeout = "unplug-timeout",
    /// Another hot plug error.
    Hotplug = "hotplug",
    /// The guest did not power down in time.
    PowerdownTimeout = "powerdown-timeout",
    /// The QMP socket cannot be reached.
    QmpUnreachable = "qmp-unreachable",
    /// QEMU sent no QMP greeting.
    QmpNoGreeting = "qmp-no-greeting",
    /// QEMU sent what is not QMP.
    QmpGarbage = "qmp-garbage",
    /// A QMP line is too long.
    QmpLineTooLong = "qmp-line-too-long",
    /// QEMU sent too many events.
    QmpFlood = "qmp-flood",
    /// A QMP reply has an unknown id.
    QmpUnknownId = "qmp-unknown-id",
    /// QEMU closed the QMP connection.
    QmpDisconnected = "qmp-disconnected",
    /// QEMU did not reply in time.
    QmpTimeout = "qmp-timeout",
    /// QEMU refused a QMP command.
    QmpCommand = "qmp-command",
    /// Reading or writing the QMP socket failed.
    QmpIo = "qmp-io",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_string_and_the_strings_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for kind in ErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ErrorKind>(), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert!(seen.insert(kind.as_str()), "{kind} twice");
        }
        assert_eq!(
            "qmp-timout".parse::<ErrorKind>().unwrap_err().to_string(),
            "\"qmp-timout\" is not an error kind"
        );
    }
}
