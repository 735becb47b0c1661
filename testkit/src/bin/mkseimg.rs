//! Writes a test Secure Execution image: `mkseimg OUT [SIZE]` (SIZE like 1G, 64M, 4096;
//! default: the small demo image). The image is valid, in the pvimg layout, for the
//! example host's key (415c25a5...10f0). For tests and benchmarks only.

use testkit::image::{write_file, ImageSpec, PAGE};

fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = args.get(1) else {
        eprintln!("usage: mkseimg OUT [SIZE]");
        std::process::exit(2);
    };
    let mut spec = ImageSpec::default();
    if let Some(size) = args.get(2) {
        let Some(total) = parse_size(size) else {
            eprintln!("mkseimg: bad size {size:?}");
            std::process::exit(2);
        };
        // kernel gets almost everything; parmline and stage3b one page each.
        let kernel = total.saturating_sub(0x18000).max(PAGE);
        spec.components = vec![kernel, PAGE, PAGE];
    }
    match write_file(&spec, std::path::Path::new(out)) {
        Ok(w) => println!("{out}: {} bytes, {} components", w.size, w.components.len()),
        Err(e) => {
            eprintln!("mkseimg: {out}: {e}");
            std::process::exit(3);
        }
    }
}
