//! Every `aplaunch ap` command on host trees of a 5.15-, a 6.1- and a 6.13-era kernel
//! (testkit::kernels): the answers that must not differ do not, and those the kernels
//! dictate (live changes, ap_config, how a running guest shows) follow each generation.

use serde_json::Value;
use std::path::Path;
use testkit::cli::aplaunch;
use testkit::hosttree::HostTree;
use testkit::kernels::{Kernel, EXAMPLE_MDEV as U};
use testkit::qmp::{Script, ScriptedPeer};

const V: &str = "11111111-2222-4333-8444-555555555555";

fn json(root: &Path, args: &[&str]) -> (i32, Value) {
    let out = aplaunch()
        .arg("--host-root")
        .arg(root)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not one JSON document ({e}): {stdout} / {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), doc)
}

fn mdev_file(uuid: &str, f: &str) -> String {
    format!("sys/devices/vfio_ap/matrix/{uuid}/{f}")
}

/// The files the kernel gives a new mdev of this generation (the tree has no kernel to
/// make them when `create` is written).
fn kernel_made_mdev(tree: &HostTree, kernel: Kernel, uuid: &str) {
    let mut files = vec![
        "assign_adapter",
        "assign_domain",
        "assign_control_domain",
        "unassign_adapter",
        "unassign_domain",
        "unassign_control_domain",
        "remove",
    ];
    if kernel.ap_config() {
        files.push("ap_config");
    }
    for f in files {
        tree.write(&mdev_file(uuid, f), "");
    }
}

/// A QEMU in /proc holding the example mdev's VFIO group, with its QMP socket.
fn running_guest(tree: &HostTree) {
    tree.write("proc/4242/comm", "qemu-system-s39\n")
        .write(
            "proc/4242/cmdline",
            "qemu-system-s390x\0-name\0guest=web1\0-chardev\0socket,id=qmp0,path=/run/web1.qmp,server=on,wait=off\0-mon\0chardev=qmp0,mode=control\0",
        )
        .link("proc/4242/fd/17", "/dev/vfio/0");
    // kernels with queue status say it there too
    for q in ["05.0004", "05.00ab"] {
        let status = format!("sys/devices/ap/card05/{q}/status");
        if tree.at(&status).exists() {
            tree.write(&status, "in use\n");
        }
    }
}

#[test]
fn reading_commands_work_on_every_generation() {
    for kernel in Kernel::ALL {
        let tree = kernel.host_tree();
        let k = kernel.name();
        let (code, doc) = json(tree.path(), &["ap", "list"]);
        assert_eq!(code, 0, "{k}: {doc}");
        let (code, doc) = json(tree.path(), &["ap", "matrix"]);
        assert_eq!(code, 0, "{k}: {doc}");
        assert_eq!(doc["matrix"]["cells"][2]["owners"][0], U, "{k}");
        let (code, doc) = json(tree.path(), &["ap", "masks"]);
        assert_eq!(code, 0, "{k}: {doc}");
        let (code, doc) = json(tree.path(), &["ap", "check"]);
        assert_eq!(code, 0, "{k}: {doc}");
        let (code, doc) = json(tree.path(), &["ap", "check", U]);
        assert_eq!(code, 0, "{k}: {doc}");
        let (code, doc) = json(tree.path(), &["ap", "mdev", "show", U]);
        assert_eq!(code, 0, "{k}: {doc}");
        let m = &doc["mdev"]["active"];
        assert_eq!(m["guest_matrix"].is_null(), !kernel.guest_matrix(), "{k}");
        assert_eq!(m["ap_config"].is_null(), !kernel.ap_config(), "{k}");
        // a malformed UUID is malformed input on every kernel
        let (code, _) = json(tree.path(), &["ap", "mdev", "show", "not-a-uuid"]);
        assert_eq!(code, 2, "{k}");
    }
}

#[test]
fn create_and_masks_work_on_every_generation() {
    for kernel in Kernel::ALL {
        let tree = kernel.host_tree();
        let k = kernel.name();
        kernel_made_mdev(&tree, kernel, V);
        let (code, doc) = json(
            tree.path(),
            &[
                "ap",
                "mdev",
                "create",
                "--uuid",
                V,
                "--adapter",
                "3",
                "--domain",
                "171",
            ],
        );
        assert_eq!(code, 0, "{k}: {doc}");
        assert_eq!(tree.read(&mdev_file(V, "assign_adapter")), "3", "{k}");
        assert_eq!(tree.read(&mdev_file(V, "assign_domain")), "171", "{k}");
        let (code, doc) = json(tree.path(), &["ap", "masks", "--aqmask", "-16"]);
        assert_eq!(code, 0, "{k}: {doc}");
        assert!(tree.read("sys/bus/ap/aqmask").starts_with("0x"), "{k}");
    }
}

#[test]
fn changes_without_a_running_guest_follow_the_attributes_each_kernel_has() {
    for kernel in Kernel::ALL {
        let tree = kernel.host_tree();
        let k = kernel.name();
        let (code, doc) = json(
            tree.path(),
            &["ap", "mdev", "assign", U, "--control-domain", "4"],
        );
        assert_eq!(code, 0, "{k}: {doc}");
        let writes = doc["result"]["writes"].to_string();
        if kernel.ap_config() {
            // one atomic write of all three masks
            assert!(writes.contains("/ap_config=0x04"), "{k}: {writes}");
        } else {
            assert_eq!(
                tree.read(&mdev_file(U, "assign_control_domain")),
                "4",
                "{k}"
            );
        }
        let (code, doc) = json(tree.path(), &["ap", "mdev", "unassign", U, "--domain", "4"]);
        assert_eq!(code, 0, "{k}: {doc}");
        assert_eq!(doc["result"]["live"], false, "{k}");
    }
}

#[test]
fn a_live_assign_works_from_6_0_on_and_is_refused_on_5_15() {
    for kernel in Kernel::ALL {
        let tree = kernel.host_tree();
        let k = kernel.name();
        running_guest(&tree);
        let (code, doc) = json(
            tree.path(),
            &["ap", "mdev", "assign", U, "--domain", "0x10"],
        );
        if kernel.guest_matrix() {
            // 6.1 has no `features`: guest_matrix is what proves the live update
            assert_eq!(code, 0, "{k}: {doc}");
            assert_eq!(doc["result"]["live"], true, "{k}");
        } else {
            assert_eq!(code, 1, "{k}: {doc}");
            let msg = doc["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains("process 4242 (qemu-system-s39, guest web1) holding /dev/vfio/0")
                    && msg.contains("vfio_ap before Linux 6.0"),
                "{k}: {msg}"
            );
            assert!(doc["error"]["hint"].as_str().unwrap().contains(U), "{k}");
            // --force lets the kernel answer (a host tree's attribute takes the write)
            let (code, doc) = json(
                tree.path(),
                &["ap", "mdev", "assign", U, "--domain", "0x10", "--force"],
            );
            assert_eq!(code, 0, "{k}: {doc}");
            assert_eq!(tree.read(&mdev_file(U, "assign_domain")), "16", "{k}");
        }
    }
}

#[test]
fn remove_names_the_guest_holding_the_mdev_on_every_generation() {
    for kernel in Kernel::ALL {
        let tree = kernel.host_tree();
        let k = kernel.name();
        running_guest(&tree);
        let (code, doc) = json(tree.path(), &["ap", "mdev", "remove", U]);
        assert_eq!(code, 1, "{k}: {doc}");
        assert_eq!(doc["error"]["kind"], "in-use", "{k}");
        let msg = doc["error"]["message"].as_str().unwrap();
        assert!(msg.contains("QMP socket /run/web1.qmp"), "{k}: {msg}");
        let hint = doc["error"]["hint"].as_str().unwrap();
        assert!(
            hint.contains(&format!("aplaunch ap mdev remove {U} --unplug")),
            "{k}: {hint}"
        );
        // --unplug with the QMP socket of the command line: nobody listens there (connecting
        // is retried until --timeout)
        let (code, doc) = json(
            tree.path(),
            &["ap", "mdev", "remove", U, "--unplug", "--timeout", "2"],
        );
        assert_eq!(code, 3, "{k}: {doc}");
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/run/web1.qmp"),
            "{k}: {doc}"
        );
        // forced: a host tree's `remove` takes the write at once
        let (code, doc) = json(
            tree.path(),
            &["ap", "mdev", "remove", U, "--force", "--timeout", "5"],
        );
        assert_eq!(code, 0, "{k}: {doc}");
        assert_eq!(doc["result"]["live"], true, "{k}");
        assert_eq!(tree.read(&mdev_file(U, "remove")), "1", "{k}");
    }
}

#[test]
fn remove_unplug_first_deletes_the_device_through_qmp_then_removes() {
    let sysfsdev = format!("/sys/bus/mdev/devices/{U}");
    for kernel in Kernel::ALL {
        let tree = kernel.host_tree();
        let k = kernel.name();
        running_guest(&tree);
        let peer = ScriptedPeer::start(
            Script::qemu()
                .qom_list("/machine/peripheral", &[("ap0", "child<vfio-ap>")])
                .sysfsdev("/machine/peripheral/ap0", &sysfsdev)
                .qom_list("/machine/peripheral-anon", &[])
                .expect_args("device_del", serde_json::json!({"id": "ap0"}))
                .reply(serde_json::json!({}))
                .event(
                    "DEVICE_DELETED",
                    serde_json::json!({"device": "ap0", "path": "/machine/peripheral/ap0"}),
                ),
        );
        let sock = peer.socket().to_str().unwrap().to_string();
        let (code, doc) = json(
            tree.path(),
            &[
                "ap",
                "mdev",
                "remove",
                U,
                "--unplug",
                "--qmp",
                &sock,
                "--force",
                "--timeout",
                "5",
            ],
        );
        assert_eq!(code, 0, "{k}: {doc}");
        assert!(
            doc["unplugged"]
                .as_str()
                .unwrap_or_default()
                .contains("unplugged ap0"),
            "{k}: {doc}"
        );
        assert_eq!(tree.read(&mdev_file(U, "remove")), "1", "{k}");
        peer.assert_followed();
    }
}

#[test]
fn definitions_and_persistent_masks_work_on_every_generation() {
    for kernel in Kernel::ALL {
        let tree = kernel.host_tree();
        let k = kernel.name();
        kernel_made_mdev(&tree, kernel, V);
        let (code, doc) = json(
            tree.path(),
            &[
                "ap",
                "mdev",
                "create",
                "--uuid",
                V,
                "--adapter",
                "3",
                "--domain",
                "171",
                "--define",
            ],
        );
        assert_eq!(code, 0, "{k}: {doc}");
        let definition = format!("etc/mdevctl.d/matrix/{V}");
        assert!(tree.read(&definition).contains("\"assign_adapter\""), "{k}");
        let (code, doc) = json(
            tree.path(),
            &[
                "ap",
                "mdev",
                "assign",
                U,
                "--control-domain",
                "4",
                "--define",
            ],
        );
        assert_eq!(code, 0, "{k}: {doc}");
        let (code, doc) = json(
            tree.path(),
            &["ap", "masks", "--persistent", "--aqmask=+16"],
        );
        assert_eq!(code, 0, "{k}: {doc}");
        assert!(tree.at("etc/udev/rules.d/41-ap.rules").exists(), "{k}");
        // no guest holds V: removed at once, definition and all
        let (code, doc) = json(tree.path(), &["ap", "mdev", "remove", V, "--undefine"]);
        assert_eq!(code, 0, "{k}: {doc}");
        assert_eq!(doc["result"]["live"], false, "{k}");
        assert!(!tree.at(&definition).exists(), "{k}");
    }
}

#[test]
fn a_running_guest_shows_on_every_generation_even_without_queue_status() {
    for kernel in Kernel::ALL {
        let tree = kernel.host_tree();
        let k = kernel.name();
        let (_, doc) = json(tree.path(), &["ap", "mdev", "show", U]);
        assert_eq!(doc["mdev"]["in_use"], false, "{k}: {doc}");
        running_guest(&tree);
        // 5.15 has no queue status: the QEMU in /proc holding the group is the sign
        let (code, doc) = json(tree.path(), &["ap", "mdev", "show", U]);
        assert_eq!(code, 0, "{k}: {doc}");
        assert_eq!(doc["mdev"]["in_use"], true, "{k}: {doc}");
        assert_eq!(doc["mdev"]["holders"][0]["pid"], 4242, "{k}: {doc}");
        assert_eq!(
            doc["mdev"]["holders"][0]["qmp"], "/run/web1.qmp",
            "{k}: {doc}"
        );
        let (code, doc) = json(tree.path(), &["ap", "list"]);
        assert_eq!(code, 0, "{k}: {doc}");
        assert_eq!(doc["mdevs"][0]["in_use"], true, "{k}: {doc}");
        let out = aplaunch()
            .arg("--host-root")
            .arg(tree.path())
            .args(["ap", "mdev", "show", U])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("active, in use by a guest"), "{k}: {text}");
        assert!(text.contains("held by       process 4242"), "{k}: {text}");
    }
}
