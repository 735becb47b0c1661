//! Who holds an mdev: the processes (QEMU) that have its VFIO group `/dev/vfio/N` or its
//! iommufd cdev `/dev/vfio/devices/vfioN` open, or whose command line names it as a
//! `vfio-ap` device, found through the host's `/proc`, with the guest name and the QMP
//! socket their command lines give.
//!
//! On kernels since 5.15 the write to an mdev's `remove` does not return while such a
//! process holds the device (vfio_unregister_group_dev waits for the release), so a
//! removal first says who holds it and how to let go (QMP `device_del`).
//!
//! Everything read here is untrusted: the number of processes, of fds per process and the
//! size of a command line are bounded, and nothing is followed out of the host root.

use crate::mdev::MdevInfo;
use host::HostRoot;
use serde::Serialize;

/// At most this many processes are looked at.
const MAX_PROCESSES: usize = 1 << 16;
/// At most this many fds of one process are looked at.
const MAX_FDS: usize = 1 << 16;
/// A command line longer than this is cut (QEMU's are a few KiB).
const MAX_CMDLINE: usize = 256 * 1024;

/// One process holding an mdev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The process id.
    pub pid: u32,
    /// Its `comm` (`qemu-system-s39`), when readable.
    pub command: Option<String>,
    /// The node it has open (`/dev/vfio/0`), when an fd was found.
    pub node: Option<String>,
    /// The guest name of its `-name` option.
    pub guest: Option<String>,
    /// Its QMP socket: `-qmp unix:PATH` or a socket chardev used by `-mon mode=control`.
    pub qmp: Option<String>,
}

impl Holder {
    /// `QEMU process 4242 (qemu-system-s39, guest web1) holding /dev/vfio/0`.
    pub fn describe(&self) -> String {
        let mut about = Vec::new();
        if let Some(c) = &self.command {
            about.push(c.clone());
        }
        if let Some(g) = &self.guest {
            about.push(format!("guest {g}"));
        }
        let mut s = format!("process {}", self.pid);
        if !about.is_empty() {
            s.push_str(&format!(" ({})", about.join(", ")));
        }
        match &self.node {
            Some(n) => s.push_str(&format!(" holding {n}")),
            None => s.push_str(" naming it in its command line"),
        }
        if let Some(q) = &self.qmp {
            s.push_str(&format!(", QMP socket {q}"));
        }
        s
    }
}

/// The host paths (with a leading `/`) of the mdev's VFIO nodes.
fn nodes(mdev: &MdevInfo) -> Vec<String> {
    crate::device::group_node(mdev)
        .into_iter()
        .chain(crate::device::cdev_node(mdev))
        .map(|p| format!("/{}", p.display()))
        .collect()
}

/// Every process that holds the mdev, by pid. Unreadable entries are skipped (a process
/// may exit while it is looked at).
pub fn find(root: &HostRoot, mdev: &MdevInfo) -> Vec<Holder> {
    find_each(root, std::slice::from_ref(mdev))
        .pop()
        .unwrap_or_default()
}

/// [`find`] for each of `mdevs` (in their order), with one walk of /proc for all of them.
pub fn find_each(root: &HostRoot, mdevs: &[MdevInfo]) -> Vec<Vec<Holder>> {
    let mut out = vec![Vec::new(); mdevs.len()];
    if mdevs.is_empty() {
        return out;
    }
    let wanted: Vec<Vec<String>> = mdevs.iter().map(nodes).collect();
    let sysfsdevs: Vec<[String; 2]> = mdevs
        .iter()
        .map(|m| {
            [
                format!("sysfsdev=/sys/devices/vfio_ap/matrix/{}", m.uuid),
                format!("sysfsdev={}", crate::mdev_uuid::sysfsdev(&m.uuid)),
            ]
        })
        .collect();
    let any_node = wanted.iter().any(|w| !w.is_empty());
    let Ok(entries) = root.read_dir("proc") else {
        return out;
    };
    for name in entries.iter().take(MAX_PROCESSES) {
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        let open = if any_node {
            open_nodes(root, pid)
        } else {
            Vec::new()
        };
        let argv = cmdline(root, pid);
        let mut about: Option<(Option<String>, Option<String>, Option<String>)> = None;
        for (i, holders) in out.iter_mut().enumerate() {
            // the first of the mdev's nodes the process has open, in fd order
            let node = open.iter().find(|t| wanted[i].contains(t)).cloned();
            let named = argv
                .iter()
                .any(|a| sysfsdevs[i].iter().any(|s| a.contains(s.as_str())));
            if node.is_none() && !named {
                continue;
            }
            let (command, guest, qmp) = about
                .get_or_insert_with(|| {
                    let options = QemuOptions::new(&argv);
                    (
                        root.read_attribute(format!("proc/{pid}/comm"))
                            .ok()
                            .flatten()
                            .map(|c| host::sysfs::value(&c).to_string()),
                        options.guest_name(),
                        options.qmp_socket(),
                    )
                })
                .clone();
            holders.push(Holder {
                pid,
                command,
                node,
                guest,
                qmp,
            });
        }
    }
    out
}

/// The targets of process `pid`'s fds, in fd order (bounded; unreadable ones skipped).
fn open_nodes(root: &HostRoot, pid: u32) -> Vec<String> {
    let Ok(fds) = root.read_dir(format!("proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.iter()
        .take(MAX_FDS)
        .filter_map(|fd| {
            let target = root.read_link(format!("proc/{pid}/fd/{fd}")).ok()?;
            Some(target.to_string_lossy().into_owned())
        })
        .collect()
}

/// The NUL-separated arguments of `/proc/PID/cmdline`, bounded.
fn cmdline(root: &HostRoot, pid: u32) -> Vec<String> {
    let Ok(bytes) = root.read(format!("proc/{pid}/cmdline")) else {
        return Vec::new();
    };
    let bytes = &bytes[..bytes.len().min(MAX_CMDLINE)];
    bytes
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// A QEMU command line's options, for the few this module reads.
struct QemuOptions<'a> {
    argv: &'a [String],
}

/// Splits a QEMU option value at single commas (`,,` is a literal comma).
fn split_opts(value: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                parts.last_mut().expect("never empty").push(',');
            } else {
                parts.push(String::new());
            }
        } else {
            parts.last_mut().expect("never empty").push(c);
        }
    }
    parts
}

impl<'a> QemuOptions<'a> {
    fn new(argv: &'a [String]) -> Self {
        QemuOptions { argv }
    }

    /// The values of option `name` (`-name x` and `--name x`).
    fn values(&self, name: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut it = self.argv.iter();
        while let Some(a) = it.next() {
            let bare = a.strip_prefix("--").or_else(|| a.strip_prefix('-'));
            if bare == Some(name) {
                if let Some(v) = it.next() {
                    out.push(v.as_str());
                }
            }
        }
        out
    }

    /// `-name guest=NAME,...` or `-name NAME`.
    fn guest_name(&self) -> Option<String> {
        let value = self.values("name").into_iter().next()?;
        let parts = split_opts(value);
        parts
            .iter()
            .find_map(|p| p.strip_prefix("guest=").map(str::to_string))
            .or_else(|| parts.first().filter(|p| !p.contains('=')).cloned())
            .filter(|n| !n.is_empty())
    }

    /// `-qmp unix:PATH[,...]` (or `unix:path=PATH`), or a `-chardev socket,id=X,path=PATH`
    /// that a `-mon chardev=X,mode=control` uses.
    fn qmp_socket(&self) -> Option<String> {
        for v in self.values("qmp") {
            let parts = split_opts(v);
            if let Some(path) = parts.first().and_then(|p| p.strip_prefix("unix:")) {
                let path = path.strip_prefix("path=").unwrap_or(path);
                if !path.is_empty() {
                    return Some(path.to_string());
                }
            }
        }
        let control: Vec<String> = self
            .values("mon")
            .into_iter()
            .filter_map(|v| {
                let parts = split_opts(v);
                let control = parts.iter().any(|p| p == "mode=control");
                let id = parts
                    .iter()
                    .find_map(|p| p.strip_prefix("chardev="))
                    .map(str::to_string);
                id.filter(|_| control)
            })
            .collect();
        self.values("chardev").into_iter().find_map(|v| {
            let parts = split_opts(v);
            if parts.first().map(String::as_str) != Some("socket") {
                return None;
            }
            let id = parts.iter().find_map(|p| p.strip_prefix("id="))?;
            if !control.iter().any(|c| c == id) {
                return None;
            }
            parts
                .iter()
                .find_map(|p| p.strip_prefix("path="))
                .map(str::to_string)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::hosttree::HostTree;

    const U: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

    fn qemu(tree: &HostTree, pid: u32, argv: &[&str]) {
        tree.write(&format!("proc/{pid}/comm"), "qemu-system-s39\n");
        tree.write(&format!("proc/{pid}/cmdline"), argv.join("\0") + "\0");
        tree.mkdir(&format!("proc/{pid}/fd"));
    }

    #[test]
    fn finds_the_qemu_holding_the_group_with_its_qmp_socket() {
        let tree = HostTree::from_example("z16-se");
        // the chardev form aplaunch itself writes, with an escaped comma in the path
        qemu(
            &tree,
            4242,
            &[
                "qemu-system-s390x",
                "-name",
                "guest=web1,debug-threads=on",
                "-chardev",
                "socket,id=qmp0,path=/run/a,,b.qmp,server=on,wait=off",
                "-mon",
                "chardev=qmp0,mode=control",
            ],
        );
        tree.link("proc/4242/fd/0", "/dev/null");
        tree.link("proc/4242/fd/23", "/dev/vfio/0");
        // another process with an unrelated group
        qemu(
            &tree,
            77,
            &["qemu-system-s390x", "-qmp", "unix:/run/other.qmp"],
        );
        tree.link("proc/77/fd/5", "/dev/vfio/9");
        tree.write("proc/self", "not a process");
        let root = HostRoot::open(tree.path()).unwrap();
        let m = MdevInfo::read(&root, U).unwrap();
        let found = find(&root, &m);
        assert_eq!(
            found,
            vec![Holder {
                pid: 4242,
                command: Some("qemu-system-s39".into()),
                node: Some("/dev/vfio/0".into()),
                guest: Some("web1".into()),
                qmp: Some("/run/a,b.qmp".into()),
            }]
        );
        assert_eq!(
            found[0].describe(),
            "process 4242 (qemu-system-s39, guest web1) holding /dev/vfio/0, QMP socket /run/a,b.qmp"
        );
    }

    #[test]
    fn the_cdev_or_the_command_line_also_count() {
        let tree = HostTree::from_example("z16-se");
        qemu(
            &tree,
            10,
            &["qemu-system-s390x", "-qmp", "unix:/run/g.qmp,server,nowait"],
        );
        tree.link("proc/10/fd/3", "/dev/vfio/devices/vfio0");
        qemu(
            &tree,
            11,
            &[
                "qemu-system-s390x",
                "-name",
                "g2",
                "-device",
                &format!("vfio-ap,sysfsdev=/sys/bus/mdev/devices/{U}"),
                // an HMP monitor is no QMP socket
                "-chardev",
                "socket,id=m,path=/run/hmp",
                "-mon",
                "chardev=m",
            ],
        );
        let root = HostRoot::open(tree.path()).unwrap();
        let m = MdevInfo::read(&root, U).unwrap();
        let found = find(&root, &m);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].node.as_deref(), Some("/dev/vfio/devices/vfio0"));
        assert_eq!(found[0].qmp.as_deref(), Some("/run/g.qmp"));
        assert_eq!(found[1].node, None);
        assert_eq!(found[1].guest.as_deref(), Some("g2"));
        assert_eq!(found[1].qmp, None);
        assert!(found[1]
            .describe()
            .contains("naming it in its command line"));
    }

    #[test]
    fn one_walk_finds_each_mdevs_holders_as_find_does() {
        let tree = HostTree::from_example("z16-se");
        qemu(&tree, 4242, &["qemu-system-s390x", "-name", "web1"]);
        tree.link("proc/4242/fd/23", "/dev/vfio/0");
        qemu(&tree, 77, &["qemu-system-s390x", "-name", "web2"]);
        tree.link("proc/77/fd/5", "/dev/vfio/9");
        let root = HostRoot::open(tree.path()).unwrap();
        let m = MdevInfo::read(&root, U).unwrap();
        let other = MdevInfo {
            uuid: "0f4c5e1a-8d2b-4c3e-9a7f-1b2c3d4e5f60".into(),
            iommu_group: Some(9),
            vfio_cdev: None,
            ..m.clone()
        };
        let unheld = MdevInfo {
            uuid: "11111111-2222-4333-8444-555555555555".into(),
            iommu_group: None,
            vfio_cdev: None,
            ..m.clone()
        };
        let mdevs = [m.clone(), other.clone(), unheld.clone()];
        let each = find_each(&root, &mdevs);
        assert_eq!(
            each,
            vec![find(&root, &m), find(&root, &other), find(&root, &unheld)]
        );
        assert_eq!(each[0][0].pid, 4242);
        assert_eq!(each[1][0].pid, 77);
        assert!(each[2].is_empty());
        assert!(find_each(&root, &[]).is_empty());
    }

    #[test]
    fn no_proc_means_no_holders() {
        let tree = HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let m = MdevInfo::read(&root, U).unwrap();
        assert!(find(&root, &m).is_empty());
    }
}
