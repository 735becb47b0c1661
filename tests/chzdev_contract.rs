//! Persistent AP masks against the real chzdev (built from s390-tools 2.43.0 by
//! scripts/build-s390-tools.sh): chzdev has no root override, so it runs in a private mount
//! namespace with a host tree's `sys/`, `etc/udev/rules.d`, `etc/mdevctl.d` and `run/lock`
//! bind-mounted over the machine's (testkit::namespace). For each mask syntax, `chzdev -t
//! ap apmask=SPEC aqmask=SPEC -p` on one copy of the example host and `aplaunch ap masks
//! --persistent --apmask=SPEC --aqmask=SPEC` on another must write the same udev rule byte
//! for byte, and what chzdev refuses aplaunch refuses. Skips with a printed reason where a
//! peer or a mount namespace is missing, fails instead with CI=true.

use std::process::Output;
use testkit::hosttree::HostTree;

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn host() -> HostTree {
    let tree = HostTree::from_example("z16-se");
    tree.mkdir("etc/udev/rules.d");
    tree
}

const RULE: &str = "etc/udev/rules.d/41-ap.rules";

#[test]
fn chzdev_and_aplaunch_write_the_same_persistent_rule() {
    let test = "chzdev_and_aplaunch_write_the_same_persistent_rule";
    let Some(chzdev) = testkit::s390_tools::tool(test, "chzdev") else {
        return;
    };
    if !testkit::namespace::available(test) {
        return;
    }
    // (spec, accepted by chzdev); a change is applied to the masks at boot (here the
    // active ones: the example host has no rule yet). `+5` would take adapter 5 from the
    // autostart definition of the example's mdev: both refuse it.
    let cases = [
        ("0-4,0x7,010", true),
        ("-4-8", true),
        ("+0x10,-010", true),
        ("1,,2", true),
        ("-0-255", true),
        ("+255", true),
        ("+5", false),
        ("08", false),
        ("256", false),
        ("0x100", false),
    ];
    for (spec, accepted) in cases {
        let theirs = host();
        let ours = host();
        let apmask = format!("apmask={spec}");
        let aqmask = format!("aqmask={spec}");
        let out = testkit::namespace::run(
            theirs.path(),
            &chzdev,
            &["-t", "ap", &apmask, &aqmask, "-p", "--yes"],
            b"",
        );
        assert_eq!(
            out.status.success(),
            accepted,
            "chzdev {spec}: {}",
            text(&out)
        );
        let out = testkit::cli::command_with_cache(&ours.at("cache"))
            .arg("--host-root")
            .arg(ours.path())
            .args(["ap", "masks", "--persistent"])
            .arg(format!("--apmask={spec}"))
            .arg(format!("--aqmask={spec}"))
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            accepted,
            "aplaunch {spec}: {}",
            text(&out)
        );
        if accepted {
            assert_eq!(ours.read(RULE), theirs.read(RULE), "{spec}");
        } else {
            assert!(!ours.at(RULE).exists(), "{spec}: aplaunch wrote a rule");
            assert_ne!(out.status.code(), Some(0));
        }
    }
}

#[test]
fn aplaunch_changes_a_rule_chzdev_wrote_as_chzdev_does() {
    let test = "aplaunch_changes_a_rule_chzdev_wrote_as_chzdev_does";
    let Some(chzdev) = testkit::s390_tools::tool(test, "chzdev") else {
        return;
    };
    if !testkit::namespace::available(test) {
        return;
    }
    let theirs = host();
    let ours = host();
    // both start from the rule chzdev writes, then change it again: a change applies to the
    // rule's masks, not to the active ones
    for t in [&theirs, &ours] {
        let out = testkit::namespace::run(
            t.path(),
            &chzdev,
            &["-t", "ap", "apmask=0-3", "aqmask=0-3,4", "-p", "--yes"],
            b"",
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = testkit::namespace::run(
        theirs.path(),
        &chzdev,
        &["-t", "ap", "apmask=+7,-0", "-p", "--yes"],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = testkit::cli::command_with_cache(&ours.at("cache"))
        .arg("--host-root")
        .arg(ours.path())
        .args(["ap", "masks", "--persistent", "--apmask=+7,-0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(ours.read(RULE), theirs.read(RULE));
}
