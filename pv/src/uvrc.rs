//! Ultravisor return codes that users meet when a secure guest boots, with what they mean
//! and how to fix them. QEMU prints them in hex without `0x`:
//! `KVM PV command 2 (KVM_PV_SET_SEC_PARMS) failed: header rc 108 rrc 5 IOCTL rc: -22`.

/// What an ultravisor rc (and, where known, rrc) means.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UvCode {
    /// The return code.
    pub rc: u16,
    /// The return reason code, when given.
    pub rrc: Option<u16>,
    /// One line: what the ultravisor refused.
    pub title: &'static str,
    /// Why, in terms of the image and the host.
    pub meaning: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

const VERIFY: &str = "run `aplaunch image verify IMG`: it recomputes the digests from the file and names the one that differs; \
copy the image again or rebuild it with genprotimg/pvimg";
const REBUILD_KEYS: &str =
    "rebuild the image with genprotimg/pvimg and this host's host-key document (`-k HKD.crt`); \
`aplaunch image verify IMG` compares the image's key slots with /sys/firmware/uv/keys/host_key";

/// Looks up an rc/rrc pair; `None` when the rc is not one users see at boot.
pub fn describe(rc: u16, rrc: Option<u16>) -> Option<UvCode> {
    let (title, meaning, fix): (&str, &str, &str) = match (rc, rrc) {
        (0x102, Some(0x1a)) => (
            "integrity check failed: the address list digest (ALD) does not match",
            "the pages of the image are not at the addresses the SE header was sealed with",
            VERIFY,
        ),
        (0x102, Some(0x1b)) => (
            "integrity check failed: the page list digest (PLD) does not match",
            "the encrypted contents of the image differ from what the SE header was sealed with (a corrupted or truncated copy)",
            VERIFY,
        ),
        (0x102, Some(0x1c)) => (
            "integrity check failed: the tweak list digest (TLD) does not match",
            "the XTS tweaks of the image's pages differ from the sealed ones",
            VERIFY,
        ),
        (0x102, Some(0x1d)) => (
            "integrity check failed: the number of encrypted pages (nep) does not match",
            "the image has more or fewer encrypted pages than its SE header says (truncated or padded)",
            VERIFY,
        ),
        (0x102, _) => (
            "integrity check failed (digest mismatch)",
            "the image's contents do not match the digests sealed in its SE header",
            VERIFY,
        ),
        (0x104, _) => (
            "unsupported SE header version",
            "the ultravisor of this machine does not support the image's SE header version",
            "check `aplaunch check` (uv-se-hdr) and build the image with a header version listed in \
             /sys/firmware/uv/query/supp_se_hdr_ver",
        ),
        (0x106, _) => (
            "unsupported plaintext control flags",
            "the image's plaintext control flags (pcf) ask for something this ultravisor does not offer",
            "`aplaunch image verify IMG` names the flags missing from /sys/firmware/uv/query/supp_se_hdr_pcf; \
             rebuild the image without them",
        ),
        (0x108, Some(0x05)) => (
            "host key mismatch: the image was not built for this machine",
            "none of the image's key slots was made for this host's host key",
            REBUILD_KEYS,
        ),
        (0x108, Some(0x0b)) => (
            "invalid customer public key in the SE header",
            "the ECDH public key in the header is not a valid P-521 point, so no key slot can be unwrapped",
            "rebuild the image with genprotimg/pvimg; the header was damaged or built by a faulty tool",
        ),
        (0x108, Some(0x34)) => (
            "backup host key mismatch or not allowed",
            "the image matched only through the backup host key, and either that key does not match or the image \
             does not allow backup key use (pcf bit 62)",
            "rebuild with this host's primary host-key document, or allow backup keys when building the image",
        ),
        (0x108, _) => (
            "host key hash problem",
            "the ultravisor could not unwrap the image's key with this machine's host keys",
            REBUILD_KEYS,
        ),
        (0x109, _) => (
            "unsupported secret control flags (scf)",
            "the encrypted part of the header asks for control flags this ultravisor does not support",
            "rebuild the image without those flags, or run it on newer firmware",
        ),
        (0x10a, Some(0x31)) => (
            "corrupt SE header: wrong length",
            "the header's size field does not match its contents (sehs)",
            "`aplaunch image verify IMG` shows the header fields; rebuild the image",
        ),
        (0x10a, Some(0x39)) => (
            "corrupt SE header: wrong size of the encrypted area",
            "the header's encrypted area size (sea) is not valid",
            "`aplaunch image verify IMG` shows the header fields; rebuild the image",
        ),
        (0x10a, Some(0x40)) => (
            "corrupt SE header: no key slot",
            "the header has no key slot, so no host can open it",
            "rebuild the image with at least one host-key document",
        ),
        (0x10a, _) => (
            "corrupt SE header",
            "the ultravisor found the SE header inconsistent",
            "`aplaunch image verify IMG` shows the header fields; rebuild the image",
        ),
        _ => return None,
    };
    Some(UvCode {
        rc,
        rrc,
        title,
        meaning,
        fix,
    })
}

/// The name of a `KVM_PV_*` command number as QEMU prints it.
pub fn kvm_pv_command(cmd: u32) -> Option<&'static str> {
    Some(match cmd {
        0 => "KVM_PV_ENABLE",
        1 => "KVM_PV_DISABLE",
        2 => "KVM_PV_SET_SEC_PARMS (the SE header is checked)",
        3 => "KVM_PV_UNPACK (the encrypted pages are unpacked)",
        4 => "KVM_PV_VERIFY (the digests are compared)",
        5 => "KVM_PV_PREP_RESET",
        6 => "KVM_PV_UNSHARE_ALL",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_pairs_and_fallbacks() {
        assert!(describe(0x108, Some(5))
            .unwrap()
            .title
            .contains("not built for this machine"));
        assert!(describe(0x102, Some(0x1b)).unwrap().title.contains("PLD"));
        assert_eq!(
            describe(0x102, Some(0x77)).unwrap().title,
            "integrity check failed (digest mismatch)"
        );
        assert!(describe(0x10a, Some(0x40))
            .unwrap()
            .title
            .contains("no key slot"));
        assert!(describe(0x1, None).is_none());
        assert_eq!(kvm_pv_command(7), None);
    }
}
