//! Host key hashes from a `--host-keys` file: lines in the `keys/all` format, or host-key
//! documents (X.509 PEM certificates, or PEM public keys, with a P-521 key), whose hash
//! is SHA-256(X || Y) with each coordinate left-padded to 80 bytes.
//!
//! The DER walk is deliberately minimal: certificate, TBS, skip to the
//! SubjectPublicKeyInfo, require id-ecPublicKey on secp521r1 and an uncompressed point.
//! No signature is checked here; this only answers "which host is this image for".

use super::header::COORD_SIZE;
use crate::hostkey::HostKeyHash;
use sha2::{Digest, Sha256};

/// One hash from a host-keys file, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledHash {
    /// The hash.
    pub hash: HostKeyHash,
    /// `line 2`, `host-key document 1`, ...
    pub label: String,
}

/// P-521 coordinate size.
pub const P521_COORD: usize = 66;
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_SECP521R1: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x23];

/// The host key hash of a P-521 public key's coordinates.
pub fn phkh(x: &[u8; P521_COORD], y: &[u8; P521_COORD]) -> HostKeyHash {
    let mut h = Sha256::new();
    let pad = [0u8; COORD_SIZE - P521_COORD];
    h.update(pad);
    h.update(x);
    h.update(pad);
    h.update(y);
    HostKeyHash(h.finalize().into())
}

/// Parses a host-keys file's contents.
pub fn parse(text: &[u8]) -> Result<Vec<LabeledHash>, String> {
    let text = std::str::from_utf8(text).map_err(|_| {
        "neither hash lines nor a PEM host-key document (the file is not text)".to_string()
    })?;
    let out = if text.contains("-----BEGIN ") {
        parse_pem(text)?
    } else {
        parse_lines(text)?
    };
    if out.is_empty() {
        return Err("holds no host key hash (only empty or all-zero lines)".to_string());
    }
    Ok(out)
}

fn parse_lines(text: &str) -> Result<Vec<LabeledHash>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hash = HostKeyHash::parse(line).map_err(|_| {
            format!(
                "line {}: {:?} is not a host key hash (64 hex digits as in /sys/firmware/uv/keys/all)",
                i + 1,
                host::sysfs::excerpt(line)
            )
        })?;
        if !hash.is_zero() {
            out.push(LabeledHash {
                hash,
                label: format!("line {}", i + 1),
            });
        }
    }
    Ok(out)
}

fn parse_pem(text: &str) -> Result<Vec<LabeledHash>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    let mut n = 0;
    while let Some(line) = lines.next() {
        let Some(kind) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        n += 1;
        let end = format!("-----END {kind}-----");
        let mut b64 = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            if l.trim() == end {
                closed = true;
                break;
            }
            b64.push_str(l.trim());
        }
        if !closed {
            return Err(format!("PEM block {n} ({kind}) has no END line"));
        }
        let der = base64_decode(&b64)
            .ok_or_else(|| format!("PEM block {n} ({kind}) is not valid base64"))?;
        let (x, y) = match kind {
            "CERTIFICATE" => certificate_key(&der),
            "PUBLIC KEY" => spki_key(&der),
            _ => continue,
        }
        .map_err(|e| format!("PEM block {n} ({kind}): {e}"))?;
        out.push(LabeledHash {
            hash: phkh(&x, &y),
            label: format!("host-key document {n}"),
        });
    }
    if out.is_empty() {
        return Err("no CERTIFICATE or PUBLIC KEY PEM block".to_string());
    }
    Ok(out)
}

/// Decodes standard base64 (padding optional, no whitespace).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let t = text.trim_end_matches('=').as_bytes();
    if t.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(t.len() * 3 / 4);
    for chunk in t.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// A DER element: tag and contents.
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
}

/// Reads one DER element from the front of `b`, returning it and the rest.
fn tlv(b: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let short = || "truncated DER".to_string();
    let tag = *b.first().ok_or_else(short)?;
    let first = *b.get(1).ok_or_else(short)?;
    let (len, hdr) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return Err("unsupported DER length".to_string());
        }
        let bytes = b.get(2..2 + n).ok_or_else(short)?;
        (
            bytes.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x)),
            2 + n,
        )
    };
    let end = hdr.checked_add(len).ok_or_else(short)?;
    let body = b.get(hdr..end).ok_or_else(short)?;
    Ok((Tlv { tag, body }, &b[end..]))
}

fn expect<'a>(b: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let (t, rest) = tlv(b).map_err(|e| format!("{what}: {e}"))?;
    if t.tag != tag {
        return Err(format!(
            "expected {what} (tag {tag:#04x}), found tag {:#04x}",
            t.tag
        ));
    }
    Ok((t.body, rest))
}

fn certificate_key(der: &[u8]) -> Result<([u8; P521_COORD], [u8; P521_COORD]), String> {
    let (cert, _) = expect(der, 0x30, "Certificate SEQUENCE")?;
    let (mut tbs, _) = expect(cert, 0x30, "TBSCertificate SEQUENCE")?;
    if tbs.first() == Some(&0xA0) {
        tbs = tlv(tbs)?.1; // [0] version
    }
    for what in ["serialNumber", "signature", "issuer", "validity", "subject"] {
        tbs = tlv(tbs).map_err(|e| format!("{what}: {e}"))?.1;
    }
    let (spki, _) = tlv(tbs)?;
    if spki.tag != 0x30 {
        return Err("no SubjectPublicKeyInfo".to_string());
    }
    spki_body(spki.body)
}

fn spki_key(der: &[u8]) -> Result<([u8; P521_COORD], [u8; P521_COORD]), String> {
    let (spki, _) = expect(der, 0x30, "SubjectPublicKeyInfo SEQUENCE")?;
    spki_body(spki)
}

fn spki_body(spki: &[u8]) -> Result<([u8; P521_COORD], [u8; P521_COORD]), String> {
    let (alg, rest) = expect(spki, 0x30, "AlgorithmIdentifier")?;
    let (oid, params) = expect(alg, 0x06, "algorithm OID")?;
    if oid != OID_EC_PUBLIC_KEY {
        return Err("the public key is not an EC key (host keys are ECDH P-521)".to_string());
    }
    let (curve, _) = expect(params, 0x06, "curve OID")?;
    if curve != OID_SECP521R1 {
        return Err("the EC key is not on P-521 (secp521r1), so it is not a host key".to_string());
    }
    let (bits, _) = expect(rest, 0x03, "subjectPublicKey BIT STRING")?;
    match bits {
        [0, 0x04, point @ ..] if point.len() == 2 * P521_COORD => {
            let x = point[..P521_COORD].try_into().expect("66 bytes");
            let y = point[P521_COORD..].try_into().expect("66 bytes");
            Ok((x, y))
        }
        _ => Err("the P-521 key is not an uncompressed point 04||X||Y of 133 bytes".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert!(base64_decode("T").is_none());
        assert!(base64_decode("T*==").is_none());
    }

    #[test]
    fn lines_skip_zero_and_name_bad_lines() {
        let zero = "0".repeat(64);
        let one = format!("{}1", "0".repeat(63));
        let h = parse(format!("{one}\n{zero}\n").as_bytes()).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].label, "line 1");
        assert!(parse(format!("{zero}\n").as_bytes())
            .unwrap_err()
            .contains("no host key hash"));
        assert!(parse(b"hello\n").unwrap_err().contains("line 1"));
        assert!(parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn pem_errors_are_named() {
        assert!(parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n")
            .unwrap_err()
            .contains("no END"));
        assert!(
            parse(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
                .unwrap_err()
                .contains("base64")
        );
        assert!(
            parse(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")
                .unwrap_err()
                .contains("TBSCertificate")
        );
        assert!(parse(b"-----BEGIN OTHER-----\nMAA=\n-----END OTHER-----\n")
            .unwrap_err()
            .contains("no CERTIFICATE"));
    }
}
