//! The probe against the fake QEMU (every version, KVM refused) and the real one.
//! One test function: it sets the fake's environment, which child processes inherit.

use launcher::probe::{self, QemuVersion};

#[test]
fn probe_with_the_fake_qemu_across_versions_and_kvm_fallback() {
    let fake = testkit::qemu::fake_qemu();
    for (v, iommufd, appv) in [
        ("6.0.0", false, false),
        ("8.2.0", false, true),
        ("10.1.2", true, true),
    ] {
        std::env::set_var("FAKE_QEMU_VERSION", v);
        std::env::remove_var("FAKE_QEMU_NO_KVM");
        let caps = probe::probe(&fake, true).unwrap();
        assert_eq!(caps.accel, "kvm", "{v}");
        assert_eq!(caps.version.to_string(), v);
        assert_eq!(caps.package, "fake-qemu");
        assert!(caps.has_type("s390-pv-guest"));
        assert_eq!(caps.vfio_ap_iommufd(), iommufd, "{v}");
        assert_eq!(caps.cpu_feature("unpack"), Some(true));
        assert_eq!(caps.cpu_feature("appv"), Some(appv), "{v}");
        assert!(caps.kvm_unavailable.is_none());
    }
    // QEMU refuses KVM: the probe falls back to TCG and says why the CPU model is unknown.
    std::env::set_var("FAKE_QEMU_NO_KVM", "1");
    let caps = probe::probe(&fake, true).unwrap();
    assert_eq!(caps.accel, "tcg");
    assert_eq!(caps.cpu_feature("unpack"), None);
    assert!(
        caps.kvm_unavailable
            .as_deref()
            .unwrap()
            .contains("invalid accelerator kvm"),
        "{caps:?}"
    );
    assert!(caps
        .cpu_unknown
        .as_deref()
        .unwrap()
        .contains("KVM is not available"));
    std::env::remove_var("FAKE_QEMU_NO_KVM");
    std::env::remove_var("FAKE_QEMU_VERSION");

    // Something that is not QEMU at all fails with a reason.
    let e = probe::probe(std::path::Path::new("/bin/true"), false).unwrap_err();
    assert!(e.to_string().contains("did not answer the probe"), "{e}");
}

#[test]
fn probe_the_real_qemu() {
    let Some(qemu) = testkit::qemu::real_qemu("probe_the_real_qemu") else {
        return;
    };
    // Ask for KVM: on a host where this QEMU cannot use it (an x86 machine), the probe
    // falls back to TCG; on an s390x KVM host it gets the host CPU model.
    let caps = probe::probe(&qemu, true).unwrap();
    assert!(caps.version >= QemuVersion::new(6, 0, 0), "{caps:?}");
    for t in [
        "vfio-ap",
        "virtio-blk-ccw",
        "virtio-net-ccw",
        "virtio-serial-ccw",
        "virtio-rng-ccw",
        "sclpconsole",
        "virtconsole",
        "rng-random",
    ] {
        assert!(caps.has_type(t), "{t}");
    }
    assert!(caps.has_property("vfio-ap", "sysfsdev"));
    for d in [
        "virtio-blk-ccw",
        "virtio-net-ccw",
        "virtio-serial-ccw",
        "virtio-rng-ccw",
    ] {
        assert!(caps.has_property(d, "iommu_platform"), "{d}");
    }
    if caps.accel == "tcg" {
        assert!(caps.cpu.is_none() && caps.cpu_unknown.is_some());
    } else {
        assert!(caps.cpu.is_some());
    }
    // The cache round trip: a second probe through the cache does not start QEMU.
    let dir = tempfile::tempdir().unwrap();
    let cache = host::cache::Cache::open(dir.path().join("c")).unwrap();
    let first = probe::probe_cached(&qemu, false, Some(&cache)).unwrap();
    assert!(!first.cached);
    let second = probe::probe_cached(&qemu, false, Some(&cache)).unwrap();
    assert!(second.cached);
    assert_eq!(first.caps, second.caps);
}
