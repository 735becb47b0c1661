//! A real s390x Linux guest booted through aplaunch under TCG, which reports on its console
//! what it sees: Debian's s390x kernel with a busybox initramfs built here (busybox-static
//! and the kernel's virtio modules, unpacked by scripts/guest-kernel.sh). The guest lists
//! its virtio devices with their bus ids and the VIRTIO_F_ACCESS_PLATFORM bit, reads the
//! marker written at the start of each disk, takes a DHCP lease on its NIC and sends a line
//! to a listener on the host, reads its hardware RNG, and then `aplaunch qmp powerdown`
//! must end QEMU cleanly. Once with the sclp console and plain virtio, once with the virtio
//! console and `--iommu-platform`. Runs against `APLAUNCH_TEST_QEMU` (default Debian's
//! 7.2; CI runs it again with QEMU 10.0). Fails when a peer is missing and CI=true; skips
//! locally.

#[path = "support/launch.rs"]
mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::*;

const GUEST: &str = "/opt/aplaunch/guest";
/// In load order (virtio_net needs net_failover, which needs failover).
const MODULES: [&str; 6] = [
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_blk",
    "virtio_console",
    "virtio-rng",
];
/// VIRTIO_F_ACCESS_PLATFORM, the feature bit QEMU offers for iommu_platform=on (virtio
/// spec 1.1, 6 "Reserved Feature Bits"); Linux shows the negotiated bits as a string of
/// 0/1 in /sys/bus/virtio/devices/*/features, bit 0 first.
const ACCESS_PLATFORM_BIT: usize = 33;

fn required<T>(what: &str, found: Option<T>) -> Option<T> {
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{what} is missing, and CI=true forbids skipping (scripts/ci-setup.sh installs it)"
        );
        eprintln!("SKIPPED: {what} is missing (scripts/ci-setup.sh installs it)");
    }
    found
}

/// The kernel and the initramfs parts from scripts/guest-kernel.sh.
struct GuestFiles {
    kernel: PathBuf,
    busybox: PathBuf,
    modules: Vec<(String, PathBuf)>,
}

fn guest_files() -> Option<GuestFiles> {
    let dir = Path::new(GUEST);
    let kernel = std::fs::read_dir(dir.join("boot")).ok().and_then(|d| {
        d.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
    });
    let busybox = Some(dir.join("bin/busybox")).filter(|p| p.is_file());
    let modules: Option<Vec<_>> = MODULES
        .iter()
        .map(|m| {
            let p = dir.join(format!("modules/{m}.ko"));
            p.is_file().then(|| (m.to_string(), p))
        })
        .collect();
    let found = match (kernel, busybox, modules) {
        (Some(kernel), Some(busybox), Some(modules)) => Some(GuestFiles {
            kernel,
            busybox,
            modules,
        }),
        _ => None,
    };
    required(
        "Debian's s390x kernel, its virtio modules and busybox-static in /opt/aplaunch/guest",
        found,
    )
}

/// The guest's /init: mounts, loads the virtio modules, reports every device as
/// `APL <what> ...` lines on the console it is given, then waits for the power-down.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in MODULES; do insmod /lib/modules/$m.ko || echo "APL error insmod $m"; done
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^aplaunch\.$1=//p"; }
out=/dev/console
if [ "$(arg console)" = virtio ]; then
    # the virtio console's port appears once virtio_console has probed it
    i=0; while [ ! -e /dev/hvc0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    out=/dev/hvc0
fi
exec >"$out" 2>&1
# devices probe asynchronously after insmod: wait for every one the host announced
want=$(arg devices)
i=0; while [ "$(ls /sys/bus/virtio/devices | wc -l)" -lt "$want" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "APL begin"
for d in /sys/bus/virtio/devices/*; do
    bus=$(basename "$(readlink -f "$d/..")")
    echo "APL device $bus id=$(cat "$d/device") features=$(cat "$d/features") driver=$(basename "$(readlink "$d/driver")")"
done
for b in /sys/block/vd*; do
    name=$(basename "$b")
    bus=$(basename "$(readlink -f "$b/device/..")")
    echo "APL disk $bus $name $(dd if=/dev/$name bs=32 count=1 2>/dev/null | tr -dc 'A-Za-z0-9-')"
done
for n in /sys/class/net/eth*; do
    bus=$(basename "$(readlink -f "$n/device/..")")
    echo "APL nic $bus $(basename "$n") $(cat "$n/address")"
done
printf '#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/$mask" dev "$interface" && echo "APL lease $interface $ip" >>/tmp/lease\nexit 0\n' >/tmp/dhcp
chmod +x /tmp/dhcp
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -T 2 -s /tmp/dhcp >/dev/null 2>&1 || echo "APL error no lease"
cat /tmp/lease
ip addr show eth0 | sed -n 's/.*inet \([0-9.]*\).*/APL address \1/p'
echo "hello-from-the-guest" | nc -w 5 10.0.2.2 "$(arg port)" || echo "APL error nc"
echo "APL rng $(cat /sys/class/misc/hw_random/rng_current) $(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | wc -c)"
echo "APL done"
while true; do sleep 1; done
"#;

/// A cpio archive in the "newc" format the kernel unpacks as its initramfs.
struct Cpio {
    data: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Self {
        Cpio {
            data: Vec::new(),
            ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, content: &[u8]) {
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            content.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.ino += 1;
        self.data.extend_from_slice(header.as_bytes());
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(content);
        self.pad();
    }

    fn pad(&mut self) {
        while self.data.len() % 4 != 0 {
            self.data.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, b"");
        self.data
    }
}

fn initramfs(files: &GuestFiles, path: &Path) {
    let mut cpio = Cpio::new();
    for dir in ["bin", "lib", "lib/modules"] {
        cpio.entry(dir, 0o040755, b"");
    }
    cpio.entry(
        "bin/busybox",
        0o100755,
        &std::fs::read(&files.busybox).unwrap(),
    );
    for (name, p) in &files.modules {
        cpio.entry(
            &format!("lib/modules/{name}.ko"),
            0o100644,
            &std::fs::read(p).unwrap(),
        );
    }
    let init = INIT.replace("MODULES", &MODULES.join(" "));
    cpio.entry("init", 0o100755, init.as_bytes());
    std::fs::write(path, cpio.finish()).unwrap();
}

/// `(id, devno, mac)` of every `-device` with a devno, from aplaunch's JSON argv.
fn devices_in(argv: &[String]) -> Vec<(String, String, Option<String>)> {
    argv.windows(2)
        .filter(|w| w[0] == "-device")
        .filter_map(|w| {
            let opts = launcher::spec::split_qemu_opts(&w[1]);
            let get = |k: &str| {
                opts.iter()
                    .find_map(|o| o.strip_prefix(&format!("{k}=")).map(str::to_string))
            };
            Some((get("id")?, get("devno")?, get("mac")))
        })
        .collect()
}

/// What a guest Linux calls the device QEMU has at `fe.0.XXXX`: QEMU presents its virtual
/// channel subsystem (css id 0xfe) as css 0 to a guest that has not enabled MCSS-E, which
/// Linux does not (hw/s390x/css.c, `css_do_stsch`/the `m` bit handling of the subchannel
/// id), so the bus id is 0.0.XXXX.
fn guest_bus_id(devno: &str) -> String {
    let parts: Vec<&str> = devno.split('.').collect();
    assert_eq!(parts.len(), 3, "{devno}");
    assert_eq!(parts[0], "fe", "{devno}");
    format!("0.{}.{}", parts[1], parts[2])
}

struct Run {
    console: &'static str,
    iommu: bool,
}

fn boot(qemu: &Path, files: &GuestFiles, run: &Run) {
    let what = format!(
        "{} with the {} console{}",
        qemu.display(),
        run.console,
        if run.iommu {
            " and --iommu-platform"
        } else {
            ""
        }
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host = d.join("host");
    std::fs::create_dir_all(&host).unwrap();
    let initrd = d.join("initrd.cpio");
    initramfs(files, &initrd);
    let mut markers = Vec::new();
    let mut disk_args = Vec::new();
    for (i, name) in ["root, 1.img", "data.img"].iter().enumerate() {
        let marker = format!("aplaunch-disk-{i}-marker");
        let mut image = marker.clone().into_bytes();
        image.resize(1 << 20, 0);
        let path = d.join(name);
        std::fs::write(&path, image).unwrap();
        disk_args.push("--disk".to_string());
        disk_args.push(format!(
            "{},format=raw",
            path.display().to_string().replace(',', ",,")
        ));
        markers.push(marker);
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // the guest's line, taken on a thread: the connection is closed after one line so
    // that the guest's nc finishes
    let (heard_tx, heard) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((conn, _)) = listener.accept() {
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut line = String::new();
            let _ = BufReader::new(conn).read_line(&mut line);
            let _ = heard_tx.send(line);
        }
    });
    let sock = d.join("qmp.sock");
    let mut args: Vec<String> = vec![
        "--no-pv".into(),
        "--accel".into(),
        "tcg".into(),
        "--name".into(),
        "guest1".into(),
        "--memory".into(),
        "512M".into(),
        "--qemu".into(),
        qemu.display().to_string(),
        "--qmp".into(),
        sock.display().to_string(),
        "--kernel".into(),
        files.kernel.display().to_string(),
        "--initrd".into(),
        initrd.display().to_string(),
        "--net".into(),
        "user".into(),
        "--rng".into(),
        "--console".into(),
        run.console.into(),
    ];
    args.extend(disk_args);
    if run.iommu {
        args.push("--iommu-platform".into());
    }
    // the device count is known only from the plan: ask for it first
    let mut dry = aplaunch(&d.join("cache"));
    dry.arg("--host-root")
        .arg(&host)
        .args(&args)
        .args(["--append", "x", "--json", "--dry-run"]);
    let out = dry.output().unwrap();
    assert!(out.status.success(), "{what}: dry run {out:?}");
    let argv: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let planned = devices_in(&argv);
    // the virtconsole port has no devno of its own: it sits on vserial0, which has one
    let expected_devices = planned.len();
    let append = format!(
        "console={} panic=-1 aplaunch.console={} aplaunch.port={port} aplaunch.devices={expected_devices}",
        if run.console == "virtio" { "hvc0" } else { "ttysclp0" },
        run.console
    );
    let mut cmd = aplaunch(&d.join("cache"));
    cmd.arg("--host-root")
        .arg(&host)
        .arg("--exec-on-host-root")
        .args(&args)
        .arg("--append")
        .arg(&append)
        .arg("-q")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let report = read_report(&mut child, &what);

    // the guest's report, keyed by what it describes
    let lines: Vec<&str> = report
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("APL "))
        .collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error")).collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{report}");
    let mut devices: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for l in lines.iter().filter_map(|l| l.strip_prefix("device ")) {
        let mut w = l.split_whitespace();
        let bus = w.next().unwrap().to_string();
        let field = |w: &mut std::str::SplitWhitespace, k: &str| {
            w.next()
                .and_then(|v| v.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{what}: no {k} in {l}"))
                .to_string()
        };
        let id = field(&mut w, "id");
        let features = field(&mut w, "features");
        let driver = field(&mut w, "driver");
        devices.insert(bus, (id, features, driver));
    }
    // every device aplaunch planned is in the guest at the bus id of its pinned devno,
    // with the access-platform bit exactly as asked
    for (id, devno, _) in &planned {
        let bus = guest_bus_id(devno);
        let (virtio_id, features, driver) = devices.get(&bus).unwrap_or_else(|| {
            panic!("{what}: {id} ({devno}) not in the guest: {devices:?}\n{report}")
        });
        let (want_id, want_driver) = match id.as_str() {
            i if i.starts_with("disk") => ("0x0002", "virtio_blk"),
            i if i.starts_with("nic") => ("0x0001", "virtio_net"),
            i if i.starts_with("vserial") => ("0x0003", "virtio_console"),
            i if i.starts_with("virtio-rng") => ("0x0004", "virtio_rng"),
            other => panic!("{what}: unexpected device {other}"),
        };
        assert_eq!(
            (virtio_id.as_str(), driver.as_str()),
            (want_id, want_driver),
            "{what}: {id} at {bus}"
        );
        let bit = features.as_bytes().get(ACCESS_PLATFORM_BIT).copied();
        assert_eq!(
            bit,
            Some(if run.iommu { b'1' } else { b'0' }),
            "{what}: {id}'s VIRTIO_F_ACCESS_PLATFORM in {features}"
        );
    }
    assert_eq!(devices.len(), expected_devices, "{what}: {devices:?}");
    // each disk holds its own marker, at its own bus id
    let disks: Vec<(&String, &String)> = planned
        .iter()
        .filter(|(id, _, _)| id.starts_with("disk"))
        .map(|(id, devno, _)| (id, devno))
        .collect();
    assert_eq!(disks.len(), 2);
    for (i, (_, devno)) in disks.iter().enumerate() {
        let bus = guest_bus_id(devno);
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("disk {bus} ")))
            .unwrap_or_else(|| panic!("{what}: no disk at {bus}\n{report}"));
        assert!(
            line.ends_with(&format!(" {}", markers[i])),
            "{what}: {line}"
        );
    }
    // the NIC at its devno with the MAC aplaunch derived, and working: a DHCP lease from
    // QEMU's user network and a line that reached this host
    let (_, nic_devno, nic_mac) = planned.iter().find(|(id, _, _)| id == "nic0").unwrap();
    let nic = lines
        .iter()
        .find(|l| l.starts_with("nic "))
        .unwrap_or_else(|| panic!("{what}: no NIC\n{report}"));
    assert_eq!(
        *nic,
        format!(
            "nic {} eth0 {}",
            guest_bus_id(nic_devno),
            nic_mac.as_ref().unwrap()
        ),
        "{what}"
    );
    assert!(lines.contains(&"lease eth0 10.0.2.15"), "{what}\n{report}");
    assert!(lines.contains(&"address 10.0.2.15"), "{what}\n{report}");
    let got = heard
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what}: the guest never connected to the host"));
    assert_eq!(got.trim(), "hello-from-the-guest", "{what}");
    // the virtio RNG feeds the guest's hwrng
    let rng = lines.iter().find(|l| l.starts_with("rng ")).unwrap();
    assert!(rng.starts_with("rng virtio_rng."), "{what}: {rng}");
    assert!(rng.ends_with(" 16"), "{what}: {rng}");

    powerdown(&sock, &mut child, &what);
}

/// A clean power-down through aplaunch's QMP command, which must end QEMU.
fn powerdown(sock: &Path, child: &mut Child, what: &str) {
    let out = testkit::cli::aplaunch()
        .args(["--json", "qmp", "powerdown", "--timeout", "60", "--qmp"])
        .arg(sock)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{what}: {doc}");
    assert_eq!(doc["shutdown"], true, "{what}: {doc}");
    let status = child.wait().unwrap();
    assert!(status.success(), "{what}: QEMU exit {status:?}");
}

/// Boots the guest from a config file with these disks (and one NIC, the rng) and returns
/// what the guest reports about its NIC: `nic BUSID IFNAME MAC`.
fn nic_from_config(qemu: &Path, files: &GuestFiles, dir: &Path, disks: &[&str]) -> String {
    let what = format!("{} with disks {disks:?} in the config", qemu.display());
    let initrd = dir.join("initrd.cpio");
    if !initrd.exists() {
        initramfs(files, &initrd);
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((conn, _)) = listener.accept() {
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let _ = BufReader::new(conn).read_line(&mut String::new());
        }
    });
    let mut config = format!(
        "name = \"keeper\"\npv = false\naccel = \"tcg\"\nmemory = \"512M\"\nrng = true\n\
         qemu = {:?}\nkernel = {:?}\ninitrd = \"initrd.cpio\"\nqmp = \"qmp.sock\"\n\
         append = \"console=ttysclp0 panic=-1 aplaunch.port={port} aplaunch.devices={}\"\n",
        qemu.display().to_string(),
        files.kernel.display().to_string(),
        disks.len() + 2
    );
    for disk in disks {
        let path = dir.join(disk);
        if !path.exists() {
            let mut image = format!("marker-{disk}").into_bytes();
            image.resize(1 << 20, 0);
            std::fs::write(&path, image).unwrap();
        }
        config.push_str(&format!("\n[[disk]]\npath = {disk:?}\n"));
    }
    config.push_str("\n[[net]]\ntype = \"user\"\n");
    let file = dir.join("vm.toml");
    std::fs::write(&file, config).unwrap();
    let host = dir.join("host");
    std::fs::create_dir_all(&host).unwrap();
    let mut child = aplaunch(&dir.join("cache"))
        .arg("--host-root")
        .arg(&host)
        .arg("--exec-on-host-root")
        .arg("--config")
        .arg(&file)
        .arg("-q")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let report = read_report(&mut child, &what);
    let nic = report
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("APL "))
        .find(|l| l.starts_with("nic "))
        .unwrap_or_else(|| panic!("{what}: no NIC\n{report}"))
        .to_string();
    let disks_seen = report
        .lines()
        .filter(|l| l.starts_with("APL disk "))
        .count();
    assert_eq!(disks_seen, disks.len(), "{what}\n{report}");
    powerdown(&dir.join("qmp.sock"), &mut child, &what);
    nic
}

/// Reads the console (QEMU's stdout) until the guest's `APL done`, on a thread so that a
/// guest that hangs fails the test instead of the suite.
fn read_report(child: &mut Child, what: &str) -> String {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut reader = BufReader::new(out);
        let mut line = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut line) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            // the console in the test's output, for a guest that goes wrong
            eprint!("console: {text}");
            seen.push_str(&text);
            line.clear();
            if seen.contains("APL done") {
                break;
            }
        }
        let _ = tx.send(seen);
    });
    match rx.recv_timeout(Duration::from_secs(240)) {
        Ok(seen) if seen.contains("APL done") => seen,
        other => {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what}: the guest did not finish its report: {other:?}\nQEMU: {err}");
        }
    }
}

#[test]
fn a_real_guest_sees_every_device_at_its_devno_and_powers_down() {
    let Some(qemu) = testkit::qemu::real_qemu("a_real_guest_sees_every_device") else {
        return;
    };
    let Some(files) = guest_files() else {
        return;
    };
    for run in [
        Run {
            console: "sclp",
            iommu: false,
        },
        Run {
            console: "virtio",
            iommu: true,
        },
    ] {
        boot(&qemu, &files, &run);
    }
    let _ = std::io::stderr().flush();
}

#[test]
fn adding_a_disk_to_a_config_keeps_the_nics_bus_id_name_and_mac_in_the_guest() {
    let Some(qemu) = testkit::qemu::real_qemu("adding_a_disk_keeps_the_nic") else {
        return;
    };
    let Some(files) = guest_files() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let before = nic_from_config(&qemu, &files, dir.path(), &["root.img"]);
    // the user adds a data disk to the config of the same guest and restarts it
    let after = nic_from_config(&qemu, &files, dir.path(), &["root.img", "data.img"]);
    assert_eq!(
        before, after,
        "the guest's NIC changed when a disk was added"
    );
    // the NIC's number from the NIC range, whatever the disks: Linux on Z names it enc1000
    assert!(before.starts_with("nic 0.0.1000 eth0 "), "{before}");
}
