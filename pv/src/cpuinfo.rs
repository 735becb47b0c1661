//! The `facilities` line of `/proc/cpuinfo` on s390x.

/// STFLE facility: ultravisor call, required for a PV host.
pub const FACILITY_UV_CALL: u32 = 158;
/// STFLE facility: unpack (guest-side secure boot).
pub const FACILITY_UNPACK: u32 = 161;

/// The facility numbers listed in cpuinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Facilities {
    /// A `facilities` line was found; the installed facility numbers, sorted.
    Listed(Vec<u32>),
    /// No `facilities` line (not an s390x kernel); names the first-field keys seen instead.
    NoLine,
    /// The line has a token that is not a number.
    Malformed(String),
}

impl Facilities {
    /// Parses the text of `/proc/cpuinfo`.
    pub fn parse(cpuinfo: &str) -> Self {
        for line in cpuinfo.lines() {
            let Some((key, rest)) = line.split_once(':') else {
                continue;
            };
            if key.trim_end() != "facilities" {
                continue;
            }
            let mut numbers = Vec::new();
            for token in rest.split_ascii_whitespace() {
                match token.parse::<u32>() {
                    Ok(n) => numbers.push(n),
                    Err(_) => return Facilities::Malformed(token.chars().take(32).collect()),
                }
            }
            numbers.sort_unstable();
            numbers.dedup();
            return Facilities::Listed(numbers);
        }
        Facilities::NoLine
    }

    /// Whether facility `n` is installed (false when unknown).
    pub fn has(&self, n: u32) -> bool {
        matches!(self, Facilities::Listed(list) if list.binary_search(&n).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_s390x_line() {
        let text =
            "vendor_id       : IBM/S390\nfacilities      : 0 1 2 158 161 12\nprocessor 0: x\n";
        let f = Facilities::parse(text);
        assert!(f.has(158) && f.has(161) && f.has(12));
        assert!(!f.has(15));
    }

    #[test]
    fn other_lines_and_garbage() {
        assert_eq!(Facilities::parse("flags : fpu vme\n"), Facilities::NoLine);
        assert_eq!(
            Facilities::parse("facilities      : 1 x2 3\n"),
            Facilities::Malformed("x2".into())
        );
        assert_eq!(
            Facilities::parse("facilities      :\n"),
            Facilities::Listed(vec![])
        );
        // a key that merely starts with the word is not the line
        assert_eq!(
            Facilities::parse("facilities_ext : 158\n"),
            Facilities::NoLine
        );
    }
}
