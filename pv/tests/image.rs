//! SE image parsing and verification against images from the test writer and the real
//! s390-tools header.

use host::{HostRoot, Status};
use pv::image::{self, checks_for, Integrity, Layout, NoProgress, SeImage, VerifyOptions};
use pv::{Error, HostKeyHash, UvInfo};
use std::path::{Path, PathBuf};
use testkit::hosttree::HostTree;
use testkit::image::{
    broken, build, Defect, ImageSpec, EXAMPLE_BACKUP_KEY, EXAMPLE_HOST_KEY, OTHER_HOST_KEY,
};

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets")
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn no_cache() -> VerifyOptions {
    VerifyOptions {
        use_cache: false,
        ..VerifyOptions::default()
    }
}

fn example_uv() -> (HostTree, UvInfo) {
    let tree = HostTree::from_example("z16-se");
    let uv = UvInfo::read(&HostRoot::open(tree.path()).unwrap());
    (tree, uv)
}

fn uv_of(tree: &HostTree) -> UvInfo {
    UvInfo::read(&HostRoot::open(tree.path()).unwrap())
}

fn statuses(c: &[host::Check]) -> Vec<(String, Status)> {
    c.iter().map(|c| (c.id.to_string(), c.status)).collect()
}

#[test]
fn a_valid_pvimg_image_parses_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let img = testkit::image::valid();
    let path = write(&dir, "ok.img", &img.bytes);
    let se = SeImage::open(&path).unwrap();
    assert_eq!(
        se.layout,
        Layout::Pvimg {
            metadata_version: 1,
            hdr_off: 0x14000,
            ipib_off: 0x18000
        }
    );
    assert_eq!(se.header.version, 0x100);
    assert_eq!(
        (se.header.sehs, se.header.nks, se.header.sea, se.header.nep),
        (0x280, 1, 128, 3)
    );
    assert_eq!(se.header.key_slots[0].phkh, HostKeyHash(EXAMPLE_HOST_KEY));
    let names: Vec<_> = se.header.pcf.flags().iter().map(|f| f.name).collect();
    assert_eq!(names, ["pckmo-dea-tdea", "pckmo-aes", "pckmo-ecc"]);
    assert_eq!(se.findings, vec![]);
    let ipib = se.ipib.as_ref().unwrap();
    assert_eq!(ipib.components.len(), 3);
    assert_eq!(
        ipib.components[2].id(),
        60,
        "pvimg numbers kernel, ramdisk, cmdline 40, 50, 60"
    );
    assert_eq!(
        se.verify_integrity(None, &mut NoProgress).unwrap(),
        Integrity::Verified {
            nep: 3,
            cached: false
        }
    );
    let (_t, uv) = example_uv();
    let c = checks_for(&uv, &se, &no_cache());
    assert!(c.iter().all(|c| c.status == Status::Pass), "{c:#?}");
    let ids: Vec<_> = c.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "image-format",
            "image-version",
            "image-pcf",
            "image-host-key",
            "image-integrity"
        ]
    );
    let json = serde_json::to_value(&se).unwrap();
    assert_eq!(json["layout"]["kind"], "pvimg");
    assert_eq!(
        json["header"]["key_slots"][0]["phkh"],
        "415c25a5d19c381e619733e1c1b7fbd88bdd1c31d882d5ade04b97043c5010f0"
    );
    assert_eq!(json["header"]["pcf"]["value"], "0xe0");
}

#[test]
fn genprotimg_layouts_are_verified_and_only_a_bare_header_skips_integrity() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, uv) = example_uv();
    let spec = ImageSpec {
        layout: testkit::image::Layout::Genprotimg,
        ..ImageSpec::default()
    };
    let img = build(&spec);
    let path = write(&dir, "g.img", &img.bytes);
    let se = SeImage::open(&path).unwrap();
    assert_eq!(se.layout, Layout::Genprotimg);
    assert_eq!(se.ipib.as_ref().unwrap().offset, 0x13000);
    assert_eq!(se.loader_args.unwrap().offset, 0x126a0);
    assert_eq!(se.findings, vec![]);
    assert!(checks_for(&uv, &se, &no_cache())
        .iter()
        .all(|c| c.status == Status::Pass));

    // Without stage3a's argument block the image has no component list: it cannot boot,
    // and integrity fails instead of being skipped.
    let mut damaged = img.clone();
    let args = img.at.loader_args_offset.unwrap() as usize;
    damaged.bytes[args..args + 24].fill(0);
    let path = write(&dir, "n.img", &damaged.bytes);
    let se = SeImage::open(&path).unwrap();
    assert!(se.ipib.is_none());
    assert!(matches!(
        se.verify_integrity(None, &mut NoProgress).unwrap(),
        Integrity::NotPossible(_)
    ));
    let c = checks_for(&uv, &se, &no_cache());
    assert_eq!(c[0].status, Status::Fail);
    assert_eq!(c[4].status, Status::Fail);
    assert!(
        c[4].message
            .contains("no stage3a argument block names the SE header at 0x14000"),
        "{}",
        c[4].message
    );

    // A file that is nothing but a header: the one layout without a component list.
    let bare = build(&ImageSpec {
        layout: testkit::image::Layout::BareHeader,
        ..ImageSpec::default()
    });
    let path = write(&dir, "bare.hdr", &bare.bytes);
    let se = SeImage::open(&path).unwrap();
    assert_eq!(se.layout, Layout::BareHeader);
    let c = checks_for(&uv, &se, &no_cache());
    assert_eq!(c[0].status, Status::Pass, "{c:?}");
    assert_eq!(c[4].status, Status::Skip);
    assert!(
        c[4].message
            .contains("carries no loader, no IPIB and no component list"),
        "{}",
        c[4].message
    );
}

/// What each defect must produce: an open error, a format finding, or an integrity failure.
enum Expect {
    NotSe(&'static str),
    Invalid(&'static str),
    Finding(&'static str),
    Integrity(&'static str),
}

fn expectation(d: Defect) -> Expect {
    use Defect::*;
    use Expect::*;
    match d {
        Empty => NotSe("the file is empty"),
        PlainKernel => NotSe("it is an ELF file"),
        MetadataPointsNowhere => Invalid("no IBMSecEx magic there"),
        TruncatedHeaderFixed => {
            Invalid("truncated in the SE header: the header at 0x14000 needs at least 416")
        }
        TruncatedHeaderTail => Invalid("truncated in the SE header: it needs 640 bytes"),
        TruncatedComponent => Finding("component-truncated"),
        TruncatedIpib => Finding("ipib"),
        UnknownVersion => Finding("version"),
        ReservedNonZero => Finding("reserved"),
        SehsMismatch => Finding("sehs"),
        SeaWrong => Finding("sea"),
        NoKeySlots => Finding("nks"),
        AbsurdNks => Finding("sehs"),
        AbsurdSehs => Invalid("is absurd: more than 1 MiB"),
        KeyPadding => Finding("customer-key"),
        IpibPbt => Finding("ipib-pbt"),
        IpibHdrAddr => Finding("ipib-hdr-addr"),
        IpibHdrSize => Finding("ipib-hdr-size"),
        AbsurdNumComp => Finding("ipib"),
        ComponentOutside => Finding("component-truncated"),
        ComponentUnaligned => Finding("component-alignment"),
        ComponentOverlap => Finding("component-overlap"),
        ComponentOverlapsHeader => Finding("component-overlap"),
        NepMismatch => Finding("nep"),
        PldMismatch => Integrity("PLD (page contents) differs"),
        AldMismatch => Integrity("ALD (page addresses) differs"),
        TldMismatch => Integrity("TLD (page tweaks) differs"),
    }
}

#[test]
fn every_broken_variant_is_rejected_with_its_own_message() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, uv) = example_uv();
    let mut messages = std::collections::BTreeSet::new();
    for d in Defect::ALL {
        let path = write(&dir, &format!("{d:?}.img"), &broken(d).bytes);
        let checks = image::checks(&uv, &path, &no_cache());
        assert!(
            checks.iter().any(|c| c.status == Status::Fail),
            "{d:?} passed: {checks:#?}"
        );
        let failed: Vec<_> = checks.iter().filter(|c| c.status == Status::Fail).collect();
        let message = failed
            .iter()
            .map(|c| c.message.clone())
            .collect::<Vec<_>>()
            .join(" | ");
        match (expectation(d), SeImage::open(&path)) {
            (Expect::NotSe(text), Err(e @ Error::NotSeImage { .. })) => {
                assert!(e.to_string().contains(text), "{d:?}: {e}");
                assert!(
                    e.to_string().contains("not a Secure Execution image"),
                    "{d:?}: {e}"
                );
            }
            (Expect::Invalid(text), Err(e @ Error::InvalidImage { .. })) => {
                assert!(e.to_string().contains(text), "{d:?}: {e}")
            }
            (Expect::Finding(code), Ok(se)) => {
                assert!(
                    se.findings.iter().any(|f| f.code == code),
                    "{d:?}: {:#?}",
                    se.findings
                );
                assert_eq!(checks[0].status, Status::Fail, "{d:?}");
            }
            (Expect::Integrity(text), Ok(se)) => {
                assert_eq!(se.findings, vec![], "{d:?}");
                assert_eq!(checks[4].status, Status::Fail, "{d:?}");
                assert!(
                    checks[4].message.contains(text),
                    "{d:?}: {}",
                    checks[4].message
                );
                assert_eq!(
                    statuses(&checks[..4])
                        .iter()
                        .filter(|s| s.1 == Status::Pass)
                        .count(),
                    4
                );
            }
            (_, other) => panic!("{d:?}: unexpected {other:?}"),
        }
        assert!(
            messages.insert(message.clone()),
            "{d:?} repeats a message: {message}"
        );
    }
}

#[test]
fn truncated_pvimg_components_are_reported_as_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = testkit::image::valid();
    img.bytes.truncate(0x16800);
    let path = write(&dir, "t.img", &img.bytes);
    let se = SeImage::open(&path).unwrap();
    let f = se.findings.iter().find(|f| f.code == "ipib").unwrap();
    assert!(f.message.contains("truncated"), "{}", f.message);
    let (_t, uv) = example_uv();
    let c = checks_for(&uv, &se, &no_cache());
    assert_eq!(c[4].status, Status::Fail);
}

#[test]
fn paths_that_are_not_image_files_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let problem = |p: &Path| match SeImage::open(p) {
        Err(Error::ImagePath { problem, .. }) => problem,
        other => panic!("{}: {other:?}", p.display()),
    };
    assert!(problem(dir.path()).contains("is a directory"));
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert!(problem(&fifo).contains("FIFO"));
    assert!(problem(Path::new("/dev/null")).contains("character device"));
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path().join("gone"), &link).unwrap();
    assert!(problem(&link).contains("dangling symbolic link"));
    assert!(problem(&dir.path().join("missing")).contains("does not exist"));
    let file = write(&dir, "file", b"x");
    match SeImage::open(file.join("below")) {
        Err(e @ Error::ImageRead { .. }) => assert!(e.to_string().starts_with("cannot read")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unreadable_file_is_an_io_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "secret.img", &testkit::image::valid().bytes);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    match SeImage::open(&path) {
        // root reads everything: then the file simply opens.
        Ok(_) => assert!(nix::unistd::geteuid().is_root()),
        Err(e @ Error::ImageRead { .. }) => {
            assert!(e.to_string().contains("Permission denied"), "{e}")
        }
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn the_real_s390_tools_header_parses() {
    let hdr = std::fs::read(assets().join("secure_guest.hdr")).unwrap();
    let se = SeImage::parse_bytes(&hdr, "secure_guest.hdr").unwrap();
    assert_eq!(se.layout, Layout::BareHeader);
    assert_eq!(se.header_offset, 0);
    let h = &se.header;
    assert_eq!(
        (h.version, h.sehs, h.nks, h.sea, h.nep, h.pcf.0),
        (0x100, 0x280, 1, 128, 0xfc25, 0)
    );
    assert_eq!(
        h.key_slots[0].phkh.to_string(),
        "782966a6298f6f5968780c3134ca4c55958d2dbca5292f59e9f5d2670befaf2f"
    );
    assert_eq!(
        se.findings,
        vec![],
        "a real header has no structural finding"
    );
    assert!(se.ipib.is_none());
    assert_eq!(hex(&h.iv), "4dc42a795fd9d2e4a40fcb33");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn the_real_key_slot_matches_the_real_host_key_document() {
    let slot = std::fs::read(assets().join("keyslot.bin")).unwrap();
    let keys = image::read_host_keys(&assets().join("host.pem.crt")).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].hash.0[..], slot[..32]);
    assert_eq!(
        keys[0].hash.to_string(),
        "415c25a5d19c381e619733e1c1b7fbd88bdd1c31d882d5ade04b97043c5010f0"
    );
    // A real header with the real key slot put in: it matches the document and the example host.
    let mut hdr = std::fs::read(assets().join("secure_guest.hdr")).unwrap();
    hdr[0x1A0..0x1A0 + 80].copy_from_slice(&slot);
    let se = SeImage::parse_bytes(&hdr, "hdr").unwrap();
    let (_t, uv) = example_uv();
    let opts = VerifyOptions {
        host_keys: Some(assets().join("host.pem.crt")),
        ..no_cache()
    };
    let c = image::compat::host_key(&uv, &se, opts.host_keys.as_deref());
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert!(c.message.contains("host-key document 1"));
    assert_eq!(image::compat::host_key(&uv, &se, None).status, Status::Pass);
}

#[test]
fn host_key_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let open = |keys: Vec<[u8; 32]>, pcf: u64, name: &str| {
        let spec = ImageSpec {
            key_hashes: keys,
            pcf,
            ..ImageSpec::default()
        };
        SeImage::open(write(&dir, name, &build(&spec).bytes)).unwrap()
    };
    let (tree, uv) = example_uv();
    let other = open(vec![OTHER_HOST_KEY], 0xE0, "other.img");
    let c = image::compat::host_key(&uv, &other, None);
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.message
            .contains("this image was built for other host keys; this host's key hash is 415c25a5"),
        "{}",
        c.message
    );
    assert!(c.message.contains(&"11".repeat(32)));

    // Only the backup host key matches: the verdict follows what the ultravisor does
    // with pcf bit 62 (image) and bit 62 of supp_se_hdr_pcf (host; 300050e3 has it).
    let backup = open(vec![OTHER_HOST_KEY, EXAMPLE_BACKUP_KEY], 0xE0, "backup.img");
    let c = image::compat::host_key(&uv, &backup, None);
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(
        c.message.contains("does not allow backup host keys (pcf 0xe0 lacks bit 62): the ultravisor would refuse it (RC 0x108 RRC 0x34)"),
        "{}",
        c.message
    );
    let backup62 = open(vec![EXAMPLE_BACKUP_KEY], 0xE2, "backup62.img");
    let c = image::compat::host_key(&uv, &backup62, None);
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.message.contains("so it would accept the image"),
        "{}",
        c.message
    );
    tree.write("sys/firmware/uv/query/supp_se_hdr_pcf", "300050e1\n");
    let c = image::compat::host_key(&uv_of(&tree), &backup62, None);
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.message
            .contains("lacks bit 62): it would refuse the image (RC 0x106)"),
        "{}",
        c.message
    );
    tree.remove("sys/firmware/uv/query/supp_se_hdr_pcf");
    let c = image::compat::host_key(&uv_of(&tree), &backup62, None);
    assert_eq!(c.status, Status::Warn);
    assert!(c.message.contains("cannot be decided"), "{}", c.message);
    // The primary key wins over the backup key whatever the flags.
    let both = open(vec![EXAMPLE_BACKUP_KEY, EXAMPLE_HOST_KEY], 0xE0, "both.img");
    assert_eq!(
        image::compat::host_key(&uv, &both, None).status,
        Status::Pass
    );

    tree.remove("sys/firmware/uv/keys");
    let c = image::compat::host_key(&uv_of(&tree), &other, None);
    assert_eq!(c.status, Status::Skip);
    assert!(c.message.contains("keys does not exist"));

    // --host-keys in the keys/all format.
    let all = write(
        &dir,
        "all",
        format!("{}\n{}\n", "0".repeat(64), hex(&OTHER_HOST_KEY)).as_bytes(),
    );
    let c = image::compat::host_key(&uv, &other, Some(&all));
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert!(c.message.contains("line 2"));
    let c = image::compat::host_key(&uv, &backup62, Some(&all));
    assert_eq!(c.status, Status::Fail);
    let bad = write(&dir, "bad", b"not a key\n");
    let c = image::compat::host_key(&uv, &other, Some(&bad));
    assert_eq!(c.status, Status::Fail);
    assert!(c.message.contains("line 1"), "{}", c.message);
}

#[test]
fn version_and_pcf_against_the_ultravisor() {
    let dir = tempfile::tempdir().unwrap();
    let (tree, uv) = example_uv();
    let spec = ImageSpec {
        pcf: 0xE0 | 0x2000_0000 | 0x8000_0000_0000_0000,
        ..ImageSpec::default()
    };
    let se = SeImage::open(write(&dir, "pcf.img", &build(&spec).bytes)).unwrap();
    assert_eq!(image::compat::pcf(&uv, &se).status, Status::Fail);
    let c = image::compat::pcf(&uv, &se);
    assert!(
        c.message.contains("bit 0 (no known meaning)"),
        "{}",
        c.message
    );
    assert!(
        !c.message.contains("dump (bit 34"),
        "dumping is supported by 300050e3: {}",
        c.message
    );
    tree.write("sys/firmware/uv/query/supp_se_hdr_pcf", "e0\n");
    let c = image::compat::pcf(&uv_of(&tree), &se);
    assert!(
        c.message.contains("dump (bit 34, dumping allowed)"),
        "{}",
        c.message
    );

    let spec = ImageSpec {
        version: 0x200,
        ..ImageSpec::default()
    };
    let se = SeImage::open(write(&dir, "v2.img", &build(&spec).bytes)).unwrap();
    let c = image::compat::version(&uv, &se);
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.message
            .contains("0x200 is not in supp_se_hdr_ver 8000000000000000"),
        "{}",
        c.message
    );
    tree.write(
        "sys/firmware/uv/query/supp_se_hdr_ver",
        "c000000000000000\n",
    );
    assert_eq!(
        image::compat::version(&uv_of(&tree), &se).status,
        Status::Pass
    );
    tree.write("sys/firmware/uv/query/supp_se_hdr_ver", "zz\n");
    assert_eq!(
        image::compat::version(&uv_of(&tree), &se).status,
        Status::Fail
    );
    tree.remove("sys/firmware/uv");
    let c = checks_for(&uv_of(&tree), &se, &no_cache());
    assert_eq!(c[1].status, Status::Skip);
    assert_eq!(c[2].status, Status::Skip);
    assert_eq!(c[3].status, Status::Skip);
}

#[test]
fn a_large_header_warns() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ImageSpec {
        key_hashes: vec![EXAMPLE_HOST_KEY; 110],
        ..ImageSpec::default()
    };
    let se = SeImage::open(write(&dir, "big.img", &build(&spec).bytes)).unwrap();
    let (_t, uv) = example_uv();
    let c = checks_for(&uv, &se, &no_cache());
    assert_eq!(c[0].status, Status::Warn, "{:?}", c[0]);
    assert!(c[0].message.contains("above the 8 KiB"));
    assert_eq!(c[4].status, Status::Pass);
}

#[test]
fn the_cache_vouches_only_for_the_unchanged_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = host::cache::Cache::open(dir.path().join("cache")).unwrap();
    let path = write(&dir, "c.img", &testkit::image::valid().bytes);
    let verify = || {
        SeImage::open(&path)
            .unwrap()
            .verify_integrity(Some(&cache), &mut NoProgress)
            .unwrap()
    };
    assert_eq!(
        verify(),
        Integrity::Verified {
            nep: 3,
            cached: false
        }
    );
    assert_eq!(
        verify(),
        Integrity::Verified {
            nep: 3,
            cached: true
        }
    );
    // Rewriting the file (same bytes) changes mtime/ctime: verified again.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&path, testkit::image::valid().bytes).unwrap();
    assert_eq!(
        verify(),
        Integrity::Verified {
            nep: 3,
            cached: false
        }
    );
    // A corrupted file is never cached as good.
    let bad = write(&dir, "bad.img", &broken(Defect::PldMismatch).bytes);
    for _ in 0..2 {
        let r = SeImage::open(&bad)
            .unwrap()
            .verify_integrity(Some(&cache), &mut NoProgress)
            .unwrap();
        assert!(matches!(r, Integrity::Mismatch { ref differs, .. } if differs == &["pld"]));
    }
}

#[test]
fn checks_report_an_unopenable_image_as_format_failure() {
    let (_t, uv) = example_uv();
    let c = image::checks(
        &uv,
        Path::new("/nonexistent/x.img"),
        &VerifyOptions::default(),
    );
    assert_eq!(c.len(), 5);
    assert_eq!(c[0].status, Status::Fail);
    assert!(c[0].message.contains("does not exist"));
    assert!(c[1..].iter().all(|c| c.status == Status::Skip));
    let off = VerifyOptions {
        integrity: false,
        ..no_cache()
    };
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "x.img", &broken(Defect::PldMismatch).bytes);
    assert_eq!(image::checks(&uv, &p, &off)[4].status, Status::Skip);
}

#[test]
fn the_ipib_is_the_one_stage3a_names_never_a_guess() {
    // A pvimg image whose argument block names another IPIB than the metadata.
    let mut img = testkit::image::valid();
    let args = img.at.loader_args_offset.unwrap();
    let ipib = img.at.ipib_offset.unwrap();
    img.put_u64(args + 16, ipib + 0x1000 - args);
    let se = SeImage::parse_bytes(&img.bytes, "args.img").unwrap();
    let f = se
        .findings
        .iter()
        .find(|f| f.code == "loader-args")
        .unwrap();
    assert!(
        f.message
            .contains("names the IPIB at 0x19000, the pvimg metadata at 0x18000"),
        "{}",
        f.message
    );

    // A genprotimg image whose block names a header size other than sehs: no block.
    let mut g = build(&ImageSpec {
        layout: testkit::image::Layout::Genprotimg,
        ..ImageSpec::default()
    });
    let args = g.at.loader_args_offset.unwrap();
    g.put_u64(args + 8, 0x1000);
    let se = SeImage::parse_bytes(&g.bytes, "size.img").unwrap();
    assert!(se.ipib.is_none());
    assert!(se.findings.iter().any(|f| f.code == "loader-args"));
}

#[test]
fn remaining_rules_each_have_their_finding() {
    let codes = |img: &testkit::image::Image| -> Vec<(&'static str, image::Severity)> {
        SeImage::parse_bytes(&img.bytes, "x.img")
            .unwrap()
            .findings
            .iter()
            .map(|f| (f.code, f.severity))
            .collect()
    };
    let base = testkit::image::valid();
    let h = base.at.header_offset;
    let ipib = base.at.ipib_offset.unwrap();
    // sea 144 (a multiple of 16 above 128): older genprotimg accepted it -> warn (+ sehs).
    let mut img = base.clone();
    img.put_u64(h + 0x28, 144);
    let c = codes(&img);
    assert!(c.contains(&("sea", image::Severity::Warn)), "{c:?}");
    // IPIB length fields.
    let mut img = base.clone();
    img.put_u32(ipib, 0x99);
    assert!(codes(&img).contains(&("ipib-length", image::Severity::Fail)));
    // IPIB versions.
    let mut img = base.clone();
    img.bytes[(ipib + 0x6F) as usize] = 2;
    assert!(codes(&img).contains(&("ipib-version", image::Severity::Fail)));
    // No components at all.
    let mut img = base.clone();
    img.put_u32(ipib + 0x74, 0);
    let c = codes(&img);
    assert!(
        c.contains(&("ipib-components", image::Severity::Fail)),
        "{c:?}"
    );
    // Unknown metadata version -> warn.
    let mut img = base.clone();
    img.put_u32(0xC000 + 16, 2);
    assert!(codes(&img).contains(&("metadata-version", image::Severity::Warn)));
    // A component overlapping the IPIB.
    let mut img = base.clone();
    img.put_u64(ipib + 0x88 + 48 + 8, ipib & !0xFFF);
    let c = codes(&img);
    assert!(
        c.iter().any(|(code, _)| *code == "component-overlap"),
        "{c:?}"
    );
}
