//! The host-tree readers (the ultravisor's attributes, the PV readiness checks, the AP scan,
//! the mdev checks, mdevctl definitions) on arbitrary trees: every file aplaunch reads may be
//! any bytes, a link (absolute, escaping with `..`, or looping), a FIFO or a directory. They
//! never panic or hang, with both resolutions, and never show a byte of a file outside the
//! root.
#![no_main]

use host::{HostRoot, Resolution};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const UUID: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";
const SECRET: &str = "SECRET-OUTSIDE-THE-ROOT";

const FILES: &[&str] = &[
    "proc/cpuinfo",
    "proc/cmdline",
    "sys/firmware/uv/prot_virt_host",
    "sys/firmware/uv/query/max_cpus",
    "sys/firmware/uv/query/supp_se_hdr_ver",
    "sys/firmware/uv/query/feature_indications",
    "sys/firmware/uv/keys/all",
    "sys/bus/ap/apmask",
    "sys/bus/ap/aqmask",
    "sys/bus/ap/ap_max_domain_id",
    "sys/bus/ap/devices/card05",
    "sys/devices/ap/card05/05.0004/online",
    "sys/devices/vfio_ap/matrix/62177883-f1bb-47f0-914d-32a22e3a8804/matrix",
    "sys/devices/vfio_ap/matrix/62177883-f1bb-47f0-914d-32a22e3a8804/guest_matrix",
    "sys/devices/vfio_ap/matrix/62177883-f1bb-47f0-914d-32a22e3a8804/mdev_type",
    "etc/mdevctl.d/matrix/62177883-f1bb-47f0-914d-32a22e3a8804",
];

fn plant(root: &Path, outside: &Path, rel: &str, kind: u8, content: &[u8]) {
    let p = root.join(rel);
    let _ = std::fs::create_dir_all(p.parent().unwrap());
    let _ = match kind % 6 {
        0 | 1 => std::fs::write(&p, content),
        2 => std::os::unix::fs::symlink(outside.join("secret"), &p),
        3 => std::os::unix::fs::symlink("../../../../../../../../../../secret", &p),
        4 => std::os::unix::fs::symlink(rel.rsplit('/').next().unwrap(), &p),
        _ => nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).map_err(Into::into),
    };
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), SECRET).unwrap();
    let mut rest = data;
    for rel in FILES {
        let (kind, len) = match rest {
            [k, l, tail @ ..] => {
                rest = tail;
                (*k, usize::from(*l))
            }
            _ => (0, 0),
        };
        let take = len.min(rest.len());
        plant(&root, &outside, rel, kind, &rest[..take]);
        rest = &rest[take..];
    }
    for how in [Resolution::Auto, Resolution::Walk] {
        let host = HostRoot::open(&root).unwrap().with_resolution(how);
        let uv = pv::UvInfo::read(&host);
        let ready = pv::readiness::checks(&host, &uv, &pv::readiness::Options::default());
        let scan = vfio::ApScan::read(&host);
        let mdevs = vfio::checks::all_mdev_checks(&host, &scan);
        let def = vfio::mdevctl::read_definition(&host, UUID);
        let seen = format!("{uv:?}{ready:?}{scan:?}{mdevs:?}{def:?}");
        assert!(!seen.contains(SECRET), "read outside the root");
    }
});
