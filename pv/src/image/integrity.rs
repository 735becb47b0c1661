//! Integrity: PLD, ALD, TLD and nep recomputed from the file in one streaming pass.
//!
//! For each component in IPIB order and each 4 KiB page of it, PLD absorbs the page's
//! bytes, ALD the page's address (u64 BE) and TLD its 16-byte XTS tweak (the component's
//! tweak prefix followed by the page's byte offset in the component as u64 BE). Memory
//! is one reused read buffer whatever the image size.

use super::ipib::{Component, PAGE};
use sha2::{Digest, Sha512};
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Size of the one read buffer (a multiple of the page size).
pub const BUFFER_SIZE: usize = 2 << 20;

/// Digests recomputed from an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Page list digest.
    pub pld: [u8; 64],
    /// Address list digest.
    pub ald: [u8; 64],
    /// Tweak list digest.
    pub tld: [u8; 64],
    /// Number of pages hashed.
    pub nep: u64,
}

/// Receives progress of a long verification.
pub trait Progress {
    /// `done` of `total` bytes have been hashed.
    fn advance(&mut self, _done: u64, _total: u64) {}
    /// The pass ended (successfully or not).
    fn finish(&mut self) {}
}

/// No progress display.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Images smaller than this get no progress bar.
pub const PROGRESS_MIN_BYTES: u64 = 64 << 20;

/// A progress bar on stderr, drawn only when stderr is a terminal.
#[derive(Debug)]
pub struct StderrProgress {
    label: String,
    enabled: bool,
    drawn: bool,
    last: Option<Instant>,
}

impl StderrProgress {
    /// A bar labelled `label` for `total` bytes: enabled when stderr is a terminal and
    /// the image is large enough for the wait to be noticeable.
    pub fn auto(label: impl Into<String>, total: u64) -> Self {
        StderrProgress {
            label: label.into(),
            enabled: total >= PROGRESS_MIN_BYTES && io::stderr().is_terminal(),
            drawn: false,
            last: None,
        }
    }
}

impl Progress for StderrProgress {
    fn advance(&mut self, done: u64, total: u64) {
        if !self.enabled || total == 0 {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
            && done < total
        {
            return;
        }
        self.last = Some(now);
        let pct = done.saturating_mul(100) / total;
        let filled = (pct / 4) as usize;
        let _ = write!(
            io::stderr().lock(),
            "\r{}: [{}{}] {pct:3}% {}/{} MiB",
            self.label,
            "#".repeat(filled),
            "-".repeat(25 - filled.min(25)),
            done >> 20,
            total >> 20
        );
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.drawn {
            let _ = write!(io::stderr().lock(), "\r\x1b[K");
            self.drawn = false;
        }
    }
}

/// Number of read buffers in flight: one being filled, one being hashed, one spare.
pub const BUFFERS: usize = 3;

/// Recomputes the digests over `components` of `file` in one streaming pass.
///
/// A reader thread fills a few reused buffers ([`BUFFERS`] x [`BUFFER_SIZE`]) while this
/// thread hashes, so reading and hashing overlap; memory stays constant whatever the
/// image size. The components must be page aligned and inside the file (the caller
/// checks); a file that shrinks meanwhile gives an `UnexpectedEof` error.
pub fn compute(
    file: &File,
    components: &[Component],
    progress: &mut dyn Progress,
) -> io::Result<Digests> {
    use std::sync::mpsc::sync_channel;
    let total: u64 = components.iter().map(|c| c.len).sum();
    let mut pld = Sha512::new();
    let mut ald = Sha512::new();
    let mut tld = Sha512::new();
    let pages_per_buf = BUFFER_SIZE / PAGE as usize;
    let mut addrs = Vec::with_capacity(pages_per_buf * 8);
    let mut tweaks = Vec::with_capacity(pages_per_buf * 16);
    let mut done = 0u64;
    let mut nep = 0u64;
    // Full buffers travel reader -> hasher, empty ones back.
    let (full_tx, full_rx) = sync_channel::<io::Result<(Vec<u8>, usize)>>(BUFFERS);
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        free_tx
            .send(vec![0u8; BUFFER_SIZE])
            .expect("channel has room");
    }
    let result = std::thread::scope(|scope| -> io::Result<()> {
        scope.spawn(move || {
            for c in components {
                let mut pos = 0u64;
                while pos < c.len {
                    let Ok(mut buf) = free_rx.recv() else { return };
                    let want = usize::try_from(c.len - pos)
                        .unwrap_or(usize::MAX)
                        .min(BUFFER_SIZE);
                    let read =
                        read_exact_at(file, &mut buf[..want], c.addr + pos).map(|()| (buf, want));
                    let failed = read.is_err();
                    if full_tx.send(read).is_err() || failed {
                        return;
                    }
                    pos += want as u64;
                }
            }
        });
        for c in components {
            let mut pos = 0u64;
            while pos < c.len {
                let (buf, want) = full_rx
                    .recv()
                    .map_err(|_| io::Error::other("the image reader stopped"))??;
                pld.update(&buf[..want]);
                let _ = free_tx.send(buf);
                addrs.clear();
                tweaks.clear();
                for p in 0..(want as u64 / PAGE) {
                    let offset = pos + p * PAGE;
                    addrs.extend_from_slice(&(c.addr + offset).to_be_bytes());
                    tweaks.extend_from_slice(&c.tweak_prefix);
                    tweaks.extend_from_slice(&offset.to_be_bytes());
                }
                ald.update(&addrs);
                tld.update(&tweaks);
                nep += want as u64 / PAGE;
                pos += want as u64;
                done += want as u64;
                progress.advance(done, total);
            }
        }
        Ok(())
    });
    progress.finish();
    result?;
    Ok(Digests {
        pld: pld.finalize().into(),
        ald: ald.finalize().into(),
        tld: tld.finalize().into(),
        nep,
    })
}

fn read_exact_at(file: &File, mut buf: &mut [u8], mut off: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, off) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file ends at {off:#x}, inside a component (was it truncated while being read?)"),
                ))
            }
            Ok(n) => {
                buf = &mut buf[n..];
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_follow_the_rules_page_by_page() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..5 * PAGE as usize).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let comps = [
            Component {
                tweak_prefix: [0, 1, 2, 3, 4, 5, 6, 7],
                addr: 0x1000,
                len: 0x2000,
            },
            Component {
                tweak_prefix: [0, 2, 9, 9, 9, 9, 9, 9],
                addr: 0x3000,
                len: 0x1000,
            },
        ];
        let d = compute(&f, &comps, &mut NoProgress).unwrap();
        let mut pld = Sha512::new();
        let mut ald = Sha512::new();
        let mut tld = Sha512::new();
        for c in &comps {
            for i in 0..c.len / PAGE {
                let a = (c.addr + i * PAGE) as usize;
                pld.update(&data[a..a + PAGE as usize]);
                ald.update((c.addr + i * PAGE).to_be_bytes());
                tld.update(c.tweak_prefix);
                tld.update((i * PAGE).to_be_bytes());
            }
        }
        assert_eq!(d.nep, 3);
        assert_eq!(d.pld, <[u8; 64]>::from(pld.finalize()));
        assert_eq!(d.ald, <[u8; 64]>::from(ald.finalize()));
        assert_eq!(d.tld, <[u8; 64]>::from(tld.finalize()));
        let past = [Component {
            tweak_prefix: [0; 8],
            addr: 0x4000,
            len: 0x2000,
        }];
        let e = compute(&f, &past, &mut NoProgress).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
