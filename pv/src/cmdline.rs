//! The kernel command line's `prot_virt=` parameter, parsed the kernel's way.

/// What the command line says about `prot_virt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtVirtParam {
    /// Not given (or only as a bare `prot_virt`, which the kernel ignores).
    Absent,
    /// Given with a value kstrtobool reads as true; holds the value as written.
    Enabled(String),
    /// Given with a value kstrtobool reads as false.
    Disabled(String),
    /// Given with a value kstrtobool rejects (the kernel ignores it).
    Invalid(String),
}

/// The kernel's `kstrtobool`: `Some(true/false)` or `None` for -EINVAL.
pub fn kstrtobool(value: &str) -> Option<bool> {
    let mut bytes = value.bytes();
    match bytes.next()? {
        b'1' | b'y' | b'Y' | b't' | b'T' | b'e' | b'E' => Some(true),
        b'0' | b'n' | b'N' | b'f' | b'F' | b'd' | b'D' => Some(false),
        b'o' | b'O' => match bytes.next()? {
            b'n' | b'N' => Some(true),
            b'f' | b'F' => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Splits a command line into parameters like the kernel's `next_arg`: spaces separate,
/// double quotes group (and are dropped).
pub fn params(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_ascii_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(current);
    }
    out
}

/// Finds `prot_virt=` (exact name) and answers what the kernel makes of it.
///
/// The kernel only ever SETS `prot_virt_host` from the command line: each `prot_virt=`
/// value is read with kstrtobool, and only a true one stores 1; nothing there stores 0.
/// Every release with PV host support has this rule: 5.7 introduced it as an
/// `early_param` in arch/s390/kernel/uv.c (`prot_virt_setup`), and the decompressor's
/// `parse_boot_command_line` in arch/s390/boot/ipl_parm.c keeps it (read in Debian's
/// linux-source 6.1.192 and 6.12.118). So once one occurrence reads true, a later
/// `prot_virt=0` does not clear it; the flag is cleared only by the kernel itself
/// (arch/s390/kernel/uv.c: a guest, no facility 158, no memory for the ultravisor). So the answer is `Enabled` with the first true
/// value if there is one, else `Disabled` with the last false value, else `Invalid` with
/// the first value kstrtobool rejects, else `Absent`.
pub fn prot_virt(cmdline: &str) -> ProtVirtParam {
    let mut disabled = None;
    let mut invalid = None;
    for param in params(cmdline) {
        let Some(value) = param.strip_prefix("prot_virt=") else {
            continue;
        };
        match kstrtobool(value) {
            Some(true) => return ProtVirtParam::Enabled(value.to_string()),
            Some(false) => disabled = Some(value.to_string()),
            None => {
                invalid.get_or_insert_with(|| value.to_string());
            }
        }
    }
    match (disabled, invalid) {
        (Some(v), _) => ProtVirtParam::Disabled(v),
        (None, Some(v)) => ProtVirtParam::Invalid(v),
        (None, None) => ProtVirtParam::Absent,
    }
}

/// The `prot_virt=` values that read false but come after a true one: the kernel ignores
/// them (the flag is set once), which is worth saying to someone who wrote them.
pub fn ignored_disables(cmdline: &str) -> Vec<String> {
    let mut enabled = false;
    let mut out = Vec::new();
    for param in params(cmdline) {
        let Some(value) = param.strip_prefix("prot_virt=") else {
            continue;
        };
        match kstrtobool(value) {
            Some(true) => enabled = true,
            Some(false) if enabled => out.push(value.to_string()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kstrtobool_matches_the_kernel() {
        for v in ["1", "y", "Yes", "t", "True", "on", "ON", "e", "enable"] {
            assert_eq!(kstrtobool(v), Some(true), "{v}");
        }
        for v in ["0", "n", "No", "f", "off", "OFF", "d"] {
            assert_eq!(kstrtobool(v), Some(false), "{v}");
        }
        for v in ["", "o", "ok", "2", "x", " 1"] {
            assert_eq!(kstrtobool(v), None, "{v:?}");
        }
    }

    #[test]
    fn exact_name_bare_and_set_once() {
        assert_eq!(
            prot_virt("root=/dev/dasda1 prot_virt=1"),
            ProtVirtParam::Enabled("1".into())
        );
        assert_eq!(prot_virt("prot_virt"), ProtVirtParam::Absent);
        assert_eq!(
            prot_virt("prot_virtual=1 xprot_virt=1"),
            ProtVirtParam::Absent
        );
        // the boot parser only sets the flag: a later 0 does not clear an earlier 1
        assert_eq!(
            prot_virt("prot_virt=1 prot_virt=0"),
            ProtVirtParam::Enabled("1".into())
        );
        assert_eq!(
            prot_virt("prot_virt=0 prot_virt=yes prot_virt=off"),
            ProtVirtParam::Enabled("yes".into())
        );
        assert_eq!(
            prot_virt("prot_virt=0 prot_virt=n"),
            ProtVirtParam::Disabled("n".into())
        );
        assert_eq!(
            ignored_disables("prot_virt=0 prot_virt=1 prot_virt=off"),
            ["off"]
        );
        assert!(ignored_disables("prot_virt=0 prot_virt=1").is_empty());
        assert_eq!(
            prot_virt("prot_virt=bogus prot_virt=0"),
            ProtVirtParam::Disabled("0".into())
        );
        assert_eq!(
            prot_virt("prot_virt=1 prot_virt=bogus"),
            ProtVirtParam::Enabled("1".into())
        );
        assert_eq!(
            prot_virt("prot_virt=bogus"),
            ProtVirtParam::Invalid("bogus".into())
        );
        assert_eq!(prot_virt("prot_virt="), ProtVirtParam::Invalid("".into()));
        assert_eq!(
            prot_virt("a=\"x y\" \"prot_virt=on\"\n"),
            ProtVirtParam::Enabled("on".into())
        );
    }
}
