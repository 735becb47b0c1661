//! Host trees are untrusted input: links out of the root, FIFOs, device nodes and huge
//! files never make aplaunch read or write outside the root, hang, or allocate without
//! bound. Every case runs with both resolutions: `openat2(RESOLVE_IN_ROOT)` and the
//! component walk of kernels (and emulators) without it.

use host::{HostRoot, Resolution};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

const SECRET: &str = "root:x:0:0:root:/root:/bin/bash\n";

struct Hostile {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

impl Hostile {
    /// A tree next to an `outside` directory holding a secret file.
    fn new() -> Hostile {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("passwd"), SECRET).unwrap();
        for d in [
            "sys/bus/ap",
            "sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough",
            "proc",
            "etc",
            "run",
            "dev",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        Hostile {
            _dir: dir,
            root,
            outside,
        }
    }

    fn link(&self, at: &str, target: impl AsRef<Path>) {
        let p = self.root.join(at);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
    }

    fn secret(&self) -> PathBuf {
        self.outside.join("passwd")
    }

    /// `../` enough times to leave the root from `at`'s directory, then the secret.
    fn escaping(&self, at: &str) -> PathBuf {
        let ups = Path::new(at).components().count() + 3;
        let mut p = PathBuf::new();
        for _ in 0..ups {
            p.push("..");
        }
        p.join(self.secret().strip_prefix("/").unwrap())
    }

    fn open(&self, how: Resolution) -> HostRoot {
        HostRoot::open(&self.root).unwrap().with_resolution(how)
    }

    fn secret_untouched(&self) {
        assert_eq!(fs::read_to_string(self.secret()).unwrap(), SECRET);
    }
}

fn both(test: impl Fn(Resolution)) {
    test(Resolution::Auto);
    test(Resolution::Walk);
}

#[test]
fn openat2_is_used_where_the_kernel_has_it() {
    let t = Hostile::new();
    fs::write(t.root.join("proc/cmdline"), "x\n").unwrap();
    t.open(Resolution::Auto).read("proc/cmdline").unwrap();
    let used = host::resolve::openat2_available();
    println!("openat2 available: {used:?}");
    assert!(used.is_some());
    // The x86_64 suite runs natively on kernels >= 5.6; the s390x suite runs under
    // qemu-user, which may lack the system call (then the walk serves both variants).
    if cfg!(target_arch = "x86_64") {
        assert_eq!(used, Some(true));
    }
}

#[test]
fn reads_through_links_out_of_the_root_stay_inside_it() {
    both(|how| {
        let t = Hostile::new();
        // every file kind aplaunch reads: sysfs attributes (whole, page, number), procfs
        // files, mdevctl definitions, links, directory listings
        let paths = [
            "sys/bus/ap/apmask",
            "sys/bus/ap/ap_max_domain_id",
            "sys/firmware/uv/prot_virt_host",
            "proc/cpuinfo",
            "proc/cmdline",
            "proc/locks",
            "etc/mdevctl.d/matrix/62177883-f1bb-47f0-914d-32a22e3a8804",
        ];
        for (i, p) in paths.iter().enumerate() {
            if i % 2 == 0 {
                t.link(p, t.secret());
            } else {
                t.link(p, t.escaping(p));
            }
        }
        let root = t.open(how);
        for p in paths {
            let e = root.read(p).unwrap_err();
            assert!(e.is_not_found(), "{how:?} {p}: {e}");
            assert!(
                e.to_string().contains(&*root.path(p).to_string_lossy()),
                "{e}"
            );
            assert_eq!(root.read_attribute(p).unwrap(), None, "{how:?} {p}");
            assert_eq!(root.read_optional(p).unwrap(), None, "{how:?} {p}");
            assert!(host::sysfs::read_dec(&root, p).is_err());
            assert!(!root.exists(p));
        }
        // a directory link out of the root: listing and reading below it
        t.link("sys/devices/ap", &t.outside);
        assert!(root.read_dir("sys/devices/ap").unwrap_err().is_not_found());
        assert!(root
            .read("sys/devices/ap/passwd")
            .unwrap_err()
            .is_not_found());
        assert!(root.open_dir("sys/devices/ap").is_err());
        assert!(!root.is_dir("sys/devices/ap"));
        // ..and where the same target exists inside the tree, that one is read
        let inside = t.root.join(t.secret().strip_prefix("/").unwrap());
        fs::create_dir_all(inside.parent().unwrap()).unwrap();
        fs::write(&inside, "inside\n").unwrap();
        assert_eq!(root.read_string("sys/bus/ap/apmask").unwrap(), "inside\n");
        assert_eq!(
            root.read_string("sys/bus/ap/ap_max_domain_id").unwrap(),
            "inside\n"
        );
        // links are read as stored, never followed: a link below a directory link
        t.link("sys/bus/mdev", &t.outside);
        symlink("x", t.outside.join("driver")).unwrap();
        assert!(root.link_name("sys/bus/mdev/driver").unwrap().is_none());
        t.secret_untouched();
    });
}

#[test]
fn links_inside_the_tree_still_resolve() {
    both(|how| {
        let t = Hostile::new();
        fs::create_dir_all(t.root.join("sys/devices/ap/card05/05.0004")).unwrap();
        fs::write(t.root.join("sys/devices/ap/card05/05.0004/online"), "1\n").unwrap();
        fs::create_dir_all(t.root.join("sys/bus/ap/devices")).unwrap();
        t.link("sys/bus/ap/devices/card05", "../../../devices/ap/card05");
        t.link("sys/bus/ap/abs", "/sys/devices/ap/card05");
        let root = t.open(how);
        assert_eq!(
            root.read_string("sys/bus/ap/devices/card05/05.0004/online")
                .unwrap(),
            "1\n"
        );
        assert_eq!(
            root.read_attribute("sys/bus/ap/abs/05.0004/online")
                .unwrap(),
            Some("1\n".into())
        );
        let d = root.open_dir("sys/bus/ap/devices").unwrap();
        assert_eq!(
            d.read_attribute("card05/05.0004/online").unwrap(),
            Some("1\n".into())
        );
        assert_eq!(root.read_dir("sys/bus/ap/abs").unwrap(), vec!["05.0004"]);
        // a loop of links ends with ELOOP, not a hang
        t.link("sys/a", "b");
        t.link("sys/b", "a");
        assert_eq!(root.read("sys/a").unwrap_err().errno(), Some(libc::ELOOP));
    });
}

#[test]
fn magic_links_are_never_followed() {
    both(|how| {
        // /proc/self as a host root: its `root` and `cwd` are magic links to the real `/`
        let root = HostRoot::open("/proc/self").unwrap().with_resolution(how);
        assert!(root.read("root/etc/hostname").is_err(), "{how:?}");
        assert!(root.read_dir("root/etc").is_err(), "{how:?}");
        assert!(root.read("cwd/Cargo.toml").is_err(), "{how:?}");
    });
}

#[test]
fn fifos_devices_and_huge_files_are_refused_without_hanging() {
    both(|how| {
        let t = Hostile::new();
        nix::unistd::mkfifo(&t.root.join("proc/cpuinfo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        nix::unistd::mkfifo(
            &t.root.join("sys/bus/ap/apmask"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        // a sparse 1 GiB file costs no disk
        let huge = fs::File::create(t.root.join("proc/locks")).unwrap();
        huge.set_len(1 << 30).unwrap();
        fs::write(t.root.join("sys/bus/ap/aqmask"), "0".repeat(5000)).unwrap();
        let root = t.open(how);
        for p in ["proc/cpuinfo", "sys/bus/ap/apmask"] {
            let e = root.read(p).unwrap_err().to_string();
            assert!(e.contains(&*root.path(p).to_string_lossy()), "{e}");
            assert!(e.contains("a FIFO, not a regular file"), "{e}");
            let e = root.read_attribute(p).unwrap_err().to_string();
            assert!(e.contains("a FIFO"), "{e}");
            let e = root.write(p, b"1").unwrap_err().to_string();
            assert!(
                e.contains("a FIFO") || e.contains("not a sysfs attribute"),
                "{e}"
            );
        }
        let e = root.read("proc/locks").unwrap_err().to_string();
        assert!(e.contains("larger than 1048576 bytes"), "{e}");
        let e = root.read("sys/bus/ap/aqmask").unwrap_err().to_string();
        assert!(e.contains("larger than 4096 bytes"), "{e}");
        let e = host::sysfs::read_hex(&root, "sys/bus/ap/aqmask")
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than 4096 bytes"), "{e}");
        // a directory where a file should be
        let e = root.read("sys/bus").unwrap_err().to_string();
        assert!(e.contains("a directory, not a regular file"), "{e}");
    });
}

#[test]
fn device_nodes_are_never_opened_for_reads_or_writes() {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var_os("CI").is_some() {
            panic!("CI runs as root: device nodes must be tested");
        }
        println!("skipped: making device nodes needs root");
        return;
    }
    both(|how| {
        let t = Hostile::new();
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        // /dev/zero's numbers (1:5) at a procfs and a sysfs path
        for p in ["proc/cpuinfo", "sys/bus/ap/apmask"] {
            mknod(
                &t.root.join(p),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(1, 5),
            )
            .unwrap();
        }
        // and a link to the real /dev/zero, which resolves inside the tree
        t.link("proc/cmdline", "/dev/zero");
        let root = t.open(how);
        for p in ["proc/cpuinfo", "sys/bus/ap/apmask"] {
            let e = root.read(p).unwrap_err().to_string();
            assert!(e.contains("a character device, not a regular file"), "{e}");
            let e = root.write(p, b"1").unwrap_err().to_string();
            assert!(
                e.contains("character device") || e.contains("not a sysfs"),
                "{e}"
            );
        }
        assert!(root.read("proc/cmdline").unwrap_err().is_not_found());
    });
}

#[test]
fn writes_never_leave_the_root() {
    both(|how| {
        let t = Hostile::new();
        let create = "sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create";
        t.link(create, t.secret());
        t.link("sys/bus/ap/apmask", t.escaping("sys/bus/ap/apmask"));
        t.link("sys/devices/vfio_ap/matrix/x", &t.outside);
        let root = t.open(how);
        let uuid = b"62177883-f1bb-47f0-914d-32a22e3a8804";
        let e = root.write(create, uuid).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
        assert!(root.write("sys/bus/ap/apmask", b"0x0").is_err());
        assert!(root
            .write("sys/devices/vfio_ap/matrix/x/passwd", b"0x0")
            .is_err());
        // only sysfs attributes are written, and only existing ones
        fs::write(t.root.join("etc/passwd"), "x").unwrap();
        let e = root.write("etc/passwd", b"y").unwrap_err().to_string();
        assert!(e.contains("not a sysfs attribute"), "{e}");
        assert_eq!(fs::read_to_string(t.root.join("etc/passwd")).unwrap(), "x");
        assert!(root.write("sys/bus/ap/new", b"1").is_err());
        assert!(!t.root.join("sys/bus/ap/new").exists());
        t.secret_untouched();
        assert_eq!(fs::read_dir(&t.outside).unwrap().count(), 1);
    });
}

#[test]
fn files_aplaunch_creates_are_created_inside_the_root() {
    both(|how| {
        let t = Hostile::new();
        let root = t.open(how);
        // a definitions directory that is a link out of the root
        t.link("etc/mdevctl.d", &t.outside);
        assert!(root.create_dir_all("etc/mdevctl.d/matrix", 0o755).is_err());
        assert!(!t.outside.join("matrix").exists());
        // a definition that is a link to the secret: replaced (with force) or refused,
        // never written through
        fs::remove_file(t.root.join("etc/mdevctl.d")).unwrap();
        root.create_dir_all("etc/mdevctl.d/matrix", 0o755).unwrap();
        let def = "etc/mdevctl.d/matrix/62177883-f1bb-47f0-914d-32a22e3a8804";
        t.link(def, t.secret());
        assert!(root.entry_exists(def));
        let e = root
            .write_file_atomic(def, b"{}", 0o644, false)
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::EEXIST), "{e}");
        t.secret_untouched();
        root.write_file_atomic(def, b"{}", 0o644, true).unwrap();
        t.secret_untouched();
        assert_eq!(fs::read_to_string(t.root.join(def)).unwrap(), "{}");
        assert!(!fs::symlink_metadata(t.root.join(def))
            .unwrap()
            .file_type()
            .is_symlink());
        // no temporary file left behind
        assert_eq!(
            fs::read_dir(t.root.join("etc/mdevctl.d/matrix"))
                .unwrap()
                .count(),
            1
        );
        // removing a link removes the link only
        t.link("etc/mdevctl.d/matrix/other", t.secret());
        assert!(root.remove_file("etc/mdevctl.d/matrix/other").unwrap());
        assert!(!root.remove_file("etc/mdevctl.d/matrix/other").unwrap());
        t.secret_untouched();
        t.secret_untouched();
        assert_eq!(fs::read_dir(&t.outside).unwrap().count(), 1);
    });
}
