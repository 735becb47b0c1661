//! SHA-512 and SHA-256, computed by the system's OpenSSL libcrypto (through the `openssl`
//! crate's EVP interface, linked against the distribution's libssl3).
//!
//! Every digest in aplaunch goes through here: the image integrity pass (PLD, ALD, TLD)
//! and host key hashes. libcrypto picks its fastest implementation at run time: on s390x
//! the CPACF message-security-assist instructions (KIMD), on x86-64 its AVX2/SHA-NI
//! assembly. The digests themselves are byte strings, so there is no byte-order question.
//!
//! libcrypto can only fail here on allocation failure or a broken OpenSSL installation;
//! such failures are reported as [`Error::Digest`] rather than panicking.

use crate::error::{Error, Result};
use openssl::hash::{Hasher, MessageDigest};

/// Size of a SHA-512 digest in bytes.
pub const SHA512_LEN: usize = 64;
/// Size of a SHA-256 digest in bytes.
pub const SHA256_LEN: usize = 32;

/// An incremental SHA-512 computation.
pub struct Sha512(Hasher);

impl std::fmt::Debug for Sha512 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha512")
    }
}

impl Sha512 {
    /// Starts a SHA-512 computation.
    pub fn new() -> Result<Self> {
        Hasher::new(MessageDigest::sha512())
            .map(Sha512)
            .map_err(failed("SHA-512"))
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.0.update(data).map_err(failed("SHA-512"))
    }

    /// The digest of everything absorbed.
    pub fn finish(mut self) -> Result<[u8; SHA512_LEN]> {
        let d = self.0.finish().map_err(failed("SHA-512"))?;
        copy_out(&d, "SHA-512")
    }
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> Result<[u8; SHA256_LEN]> {
    let mut h = Hasher::new(MessageDigest::sha256()).map_err(failed("SHA-256"))?;
    for p in parts {
        h.update(p).map_err(failed("SHA-256"))?;
    }
    let d = h.finish().map_err(failed("SHA-256"))?;
    copy_out(&d, "SHA-256")
}

/// SHA-512 of the concatenation of `parts`.
pub fn sha512(parts: &[&[u8]]) -> Result<[u8; SHA512_LEN]> {
    let mut h = Sha512::new()?;
    for p in parts {
        h.update(p)?;
    }
    h.finish()
}

fn failed(algorithm: &'static str) -> impl Fn(openssl::error::ErrorStack) -> Error {
    move |source| Error::Digest { algorithm, source }
}

fn copy_out<const N: usize>(d: &[u8], algorithm: &'static str) -> Result<[u8; N]> {
    d.try_into().map_err(|_| Error::Digest {
        algorithm,
        source: openssl::error::ErrorStack::get(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // FIPS 180-4 example vectors ("abc" and the empty message).
    #[test]
    fn known_answers() {
        assert_eq!(
            hex(&sha256(&[b"abc"]).unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(&[]).unwrap()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha512(&[b"abc"]).unwrap()),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            hex(&sha512(&[]).unwrap()),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
    }

    #[test]
    fn streaming_equals_one_shot_across_block_boundaries() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
        let whole = sha512(&[&data]).unwrap();
        for split in [0, 1, 111, 112, 127, 128, 129, 500, 999, 1000] {
            let mut h = Sha512::new().unwrap();
            h.update(&data[..split]).unwrap();
            h.update(&data[split..]).unwrap();
            assert_eq!(h.finish().unwrap(), whole, "split at {split}");
            assert_eq!(
                sha256(&[&data[..split], &data[split..]]).unwrap(),
                sha256(&[&data]).unwrap()
            );
        }
        assert_ne!(sha512(&[&data[1..]]).unwrap(), whole);
    }
}
