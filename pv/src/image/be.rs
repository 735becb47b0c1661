//! Big-endian fields at byte offsets: every number in an SE image (header, IPIB, stage3a's
//! argument block, the loader's PSW) is stored big-endian, whatever the host's order.
//! Callers check the length first; a short slice is a bug, hence the panic.

/// The big-endian `u16` at `off`.
pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes(b[off..off + 2].try_into().expect("2 bytes"))
}

/// The big-endian `u32` at `off`.
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// The big-endian `u64` at `off`.
pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_be_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_significant_byte_first_on_every_host() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(u16_at(&b, 1), 0x0203);
        assert_eq!(u32_at(&b, 0), 0x0102_0304);
        assert_eq!(u64_at(&b, 1), 0x0203_0405_0607_0809);
    }
}
