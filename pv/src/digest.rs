//! SHA-512 and SHA-256, computed by the system's OpenSSL libcrypto, loaded on first use.
//!
//! Every digest in aplaunch goes through here: the image integrity pass (PLD, ALD, TLD)
//! and host key hashes. libcrypto picks its fastest implementation at run time: on s390x
//! the CPACF message-security-assist instructions (KIMD), on x86-64 its AVX2/SHA-NI
//! assembly. The digests themselves are byte strings, so there is no byte-order question.
//!
//! libcrypto is opened with `dlopen` the first time something is hashed rather than linked:
//! loading and relocating it (and libssl) cost every command about a millisecond at start,
//! although only the image checks hash anything. Only the six EVP calls below are used,
//! all present with the same signatures in OpenSSL 1.1 and 3.
//!
//! A missing or broken libcrypto, or an allocation failure inside it, is reported as
//! [`Error::Digest`] rather than panicking.

use crate::error::{Error, Result};
use std::ffi::{c_int, c_uint, c_void, CStr};
use std::sync::OnceLock;

/// Size of a SHA-512 digest in bytes.
pub const SHA512_LEN: usize = 64;
/// Size of a SHA-256 digest in bytes.
pub const SHA256_LEN: usize = 32;

/// The sonames tried, newest first (OpenSSL 3, then 1.1 on older distributions).
const LIBCRYPTO: [&CStr; 2] = [c"libcrypto.so.3", c"libcrypto.so.1.1"];

type EvpMdFn = unsafe extern "C" fn() -> *const c_void;

/// The EVP entry points aplaunch uses.
struct Evp {
    ctx_new: unsafe extern "C" fn() -> *mut c_void,
    ctx_free: unsafe extern "C" fn(*mut c_void),
    init: unsafe extern "C" fn(*mut c_void, *const c_void, *mut c_void) -> c_int,
    update: unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> c_int,
    finish: unsafe extern "C" fn(*mut c_void, *mut u8, *mut c_uint) -> c_int,
    sha512: EvpMdFn,
    sha256: EvpMdFn,
}

/// libcrypto's EVP calls, loaded once per process; the error says why they are missing.
fn evp() -> std::result::Result<&'static Evp, &'static str> {
    static EVP: OnceLock<std::result::Result<Evp, String>> = OnceLock::new();
    EVP.get_or_init(load).as_ref().map_err(String::as_str)
}

fn load() -> std::result::Result<Evp, String> {
    // SAFETY: dlopen/dlsym with NUL-terminated names; the handle is never closed, so the
    // symbols stay valid for the life of the process. Each symbol is cast to the C
    // signature OpenSSL declares for it (openssl/evp.h).
    unsafe {
        let handle = LIBCRYPTO
            .iter()
            .map(|name| libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL))
            .find(|h| !h.is_null())
            .ok_or_else(|| {
                let why = libc::dlerror();
                let why = if why.is_null() {
                    String::new()
                } else {
                    format!(" ({})", CStr::from_ptr(why).to_string_lossy())
                };
                format!("the system OpenSSL libcrypto (libcrypto.so.3 or .so.1.1) cannot be loaded{why}")
            })?;
        let sym = |name: &CStr| {
            let p = libc::dlsym(handle, name.as_ptr());
            if p.is_null() {
                Err(format!("libcrypto has no {}", name.to_string_lossy()))
            } else {
                Ok(p)
            }
        };
        Ok(Evp {
            ctx_new: std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> *mut c_void>(
                sym(c"EVP_MD_CTX_new")?,
            ),
            ctx_free: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void)>(sym(
                c"EVP_MD_CTX_free",
            )?),
            init: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void, *const c_void, *mut c_void) -> c_int,
            >(sym(c"EVP_DigestInit_ex")?),
            update: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> c_int,
            >(sym(c"EVP_DigestUpdate")?),
            finish: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void, *mut u8, *mut c_uint) -> c_int,
            >(sym(c"EVP_DigestFinal_ex")?),
            sha512: std::mem::transmute::<*mut c_void, EvpMdFn>(sym(c"EVP_sha512")?),
            sha256: std::mem::transmute::<*mut c_void, EvpMdFn>(sym(c"EVP_sha256")?),
        })
    }
}

/// One running EVP digest of `N` bytes.
struct Digest<const N: usize> {
    evp: &'static Evp,
    ctx: *mut c_void,
    algorithm: &'static str,
}

// SAFETY: an EVP_MD_CTX is plain memory owned by this value; OpenSSL allows using it from
// any thread, one at a time.
unsafe impl<const N: usize> Send for Digest<N> {}

impl<const N: usize> Digest<N> {
    fn new(algorithm: &'static str, md: fn(&Evp) -> EvpMdFn) -> Result<Self> {
        let evp = evp().map_err(|reason| failed(algorithm, reason))?;
        // SAFETY: EVP calls on a context we own; EVP_sha512/EVP_sha256 return static tables.
        unsafe {
            let ctx = (evp.ctx_new)();
            if ctx.is_null() {
                return Err(failed(algorithm, "EVP_MD_CTX_new failed (out of memory)"));
            }
            let digest = Digest {
                evp,
                ctx,
                algorithm,
            };
            if (evp.init)(ctx, md(evp)(), std::ptr::null_mut()) != 1 {
                return Err(failed(algorithm, "EVP_DigestInit_ex failed"));
            }
            Ok(digest)
        }
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        // SAFETY: `data` is valid for its length; the context is initialised.
        let ok = unsafe { (self.evp.update)(self.ctx, data.as_ptr().cast(), data.len()) };
        if ok == 1 {
            Ok(())
        } else {
            Err(failed(self.algorithm, "EVP_DigestUpdate failed"))
        }
    }

    fn finish(self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        let mut len: c_uint = 0;
        // SAFETY: `out` has room for the algorithm's digest (N is its size).
        let ok = unsafe { (self.evp.finish)(self.ctx, out.as_mut_ptr(), &mut len) };
        if ok == 1 && len as usize == N {
            Ok(out)
        } else {
            Err(failed(self.algorithm, "EVP_DigestFinal_ex failed"))
        }
    }
}

impl<const N: usize> Drop for Digest<N> {
    fn drop(&mut self) {
        // SAFETY: the context was made by EVP_MD_CTX_new and is freed once.
        unsafe { (self.evp.ctx_free)(self.ctx) }
    }
}

/// An incremental SHA-512 computation.
pub struct Sha512(Digest<SHA512_LEN>);

impl std::fmt::Debug for Sha512 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha512")
    }
}

impl Sha512 {
    /// Starts a SHA-512 computation.
    pub fn new() -> Result<Self> {
        Digest::new("SHA-512", |e| e.sha512).map(Sha512)
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.0.update(data)
    }

    /// The digest of everything absorbed.
    pub fn finish(self) -> Result<[u8; SHA512_LEN]> {
        self.0.finish()
    }
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> Result<[u8; SHA256_LEN]> {
    let mut h = Digest::<SHA256_LEN>::new("SHA-256", |e| e.sha256)?;
    for p in parts {
        h.update(p)?;
    }
    h.finish()
}

/// SHA-512 of the concatenation of `parts`.
pub fn sha512(parts: &[&[u8]]) -> Result<[u8; SHA512_LEN]> {
    let mut h = Sha512::new()?;
    for p in parts {
        h.update(p)?;
    }
    h.finish()
}

fn failed(algorithm: &'static str, reason: &str) -> Error {
    Error::Digest {
        algorithm,
        reason: reason.to_string(),
    }
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
