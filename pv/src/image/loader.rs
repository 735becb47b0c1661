//! The stage3a loader's argument block: where the loader finds the SE header and the IPIB
//! at boot.
//!
//! Both s390-tools builders load stage3a at 0x10000 and overwrite its last 24 bytes with
//! three big-endian u64: the header's offset, the header's size, and the IPIB's offset,
//! the offsets relative to the block's own address (genprotimg 2.35:
//! `genprotimg/src/pv/pv_stage3.c` and `genprotimg/boot/stage3a.c`; pvimg 2.43:
//! `rust/pvimg/src/se_img_comps/bootloader.rs`). What follows the loader up to the next
//! page boundary is zero (the builders page-align the next part), and the header and the
//! IPIB lie after the loader. At boot stage3a computes both addresses from this block,
//! stores the header's address and size into the IPIB and hands the IPIB to the
//! ultravisor: the block, not the IPIB's own fields, decides what boots.

use super::be::u64_at;
use super::ipib::PAGE;
use super::locate::{Source, STAGE3A};
use serde::Serialize;
use std::io;

/// Size of the argument block.
pub const ARGS_SIZE: u64 = 24;
/// How far past 0x10000 the block is searched (stage3a is a few pages).
pub const SEARCH_LIMIT: u64 = 0x10000;

/// A stage3a argument block found in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoaderArgs {
    /// File offset of the block (= its guest address).
    pub offset: u64,
    /// The SE header's address (the block's offset plus its `hdr_offs`).
    pub hdr_addr: u64,
    /// The header size the loader hands on.
    pub hdr_size: u64,
    /// The IPIB's address (the block's offset plus its `ipib_offs`).
    pub ipib_addr: u64,
}

fn page_up(v: u64) -> u64 {
    v.div_ceil(PAGE) * PAGE
}

/// Finds the argument block: the highest 8-byte aligned 24 bytes between 0x10000 and
/// `limit` that are followed only by zeros up to the next page boundary and whose header
/// and IPIB addresses lie after the loader, that `accept` takes. `None` when there is
/// none (no loader, or a damaged one).
pub fn find<S: Source + ?Sized>(
    src: &S,
    limit: u64,
    accept: impl Fn(&LoaderArgs) -> bool,
) -> io::Result<Option<LoaderArgs>> {
    let end = limit.min(STAGE3A + SEARCH_LIMIT);
    if end < STAGE3A + ARGS_SIZE {
        return Ok(None);
    }
    // Whole pages, so that the zero tail after each candidate can be checked.
    let region = src.read_at_most(STAGE3A, (page_up(end) - STAGE3A) as usize)?;
    let mut candidate = (end - ARGS_SIZE - STAGE3A) & !7;
    loop {
        let at = candidate as usize;
        let tail_end = (page_up(STAGE3A + candidate + ARGS_SIZE) - STAGE3A) as usize;
        if at + ARGS_SIZE as usize <= region.len() {
            let tail = &region[at + ARGS_SIZE as usize..tail_end.min(region.len())];
            if tail.iter().all(|&b| b == 0) {
                let offset = STAGE3A + candidate;
                let loader_end = page_up(offset + ARGS_SIZE);
                let args = LoaderArgs {
                    offset,
                    hdr_addr: offset.wrapping_add(u64_at(&region, at)),
                    hdr_size: u64_at(&region, at + 8),
                    ipib_addr: offset.wrapping_add(u64_at(&region, at + 16)),
                };
                if args.hdr_addr >= loader_end && args.ipib_addr >= loader_end && accept(&args) {
                    return Ok(Some(args));
                }
            }
        }
        if candidate < 8 {
            return Ok(None);
        }
        candidate -= 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with_args(at: u64, hdr: u64, size: u64, ipib: u64) -> Vec<u8> {
        let mut b = vec![0u8; 0x15000];
        b[0x10000..at as usize].fill(0x5a);
        let a = at as usize;
        b[a..a + 8].copy_from_slice(&hdr.wrapping_sub(at).to_be_bytes());
        b[a + 8..a + 16].copy_from_slice(&size.to_be_bytes());
        b[a + 16..a + 24].copy_from_slice(&ipib.wrapping_sub(at).to_be_bytes());
        b
    }

    #[test]
    fn the_block_at_the_loaders_end_is_found() {
        // Where genprotimg 2.35 put it in a real image.
        let b = image_with_args(0x126a0, 0x14000, 0x2d0, 0x13000);
        let this_header = |a: &LoaderArgs| a.hdr_addr == 0x14000 && a.hdr_size == 0x2d0;
        let found = find(b.as_slice(), 0x14000, this_header).unwrap().unwrap();
        assert_eq!(
            found,
            LoaderArgs {
                offset: 0x126a0,
                hdr_addr: 0x14000,
                hdr_size: 0x2d0,
                ipib_addr: 0x13000
            }
        );
        // Something after it in the same page: not the loader's end.
        let mut c = b.clone();
        c[0x12f00] = 1;
        assert_eq!(find(c.as_slice(), 0x14000, this_header).unwrap(), None);
        // Addresses pointing back into the loader are not a block.
        let d = image_with_args(0x126a0, 0x11000, 0x2d0, 0x13000);
        assert_eq!(
            find(d.as_slice(), 0x14000, |a| a.hdr_addr == 0x11000).unwrap(),
            None
        );
        // The caller's condition decides.
        assert_eq!(
            find(b.as_slice(), 0x14000, |a| a.hdr_size == 0x280).unwrap(),
            None
        );
        // A file too short for a loader has none.
        assert_eq!(find(&b[..0x1000], 0x14000, this_header).unwrap(), None);
    }
}
