//! Writes a generated AP host tree: `gen-ap-host DIR ADAPTERS DOMAINS MDEVS`.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: gen-ap-host DIR ADAPTERS DOMAINS MDEVS");
        std::process::exit(2);
    }
    let num = |i: usize| -> u16 {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("{} is not a number", args[i]);
            std::process::exit(2)
        })
    };
    let spec = testkit::ap::ApHostSpec {
        adapters: num(2),
        domains: num(3),
        mdevs: num(4) as usize,
    };
    let dir = std::path::Path::new(&args[1]);
    spec.generate(dir);
    println!(
        "{}: {} adapters x {} domains = {} queues, {} mdevs",
        dir.display(),
        spec.adapters,
        spec.domains,
        spec.adapters as usize * spec.domains as usize,
        spec.mdevs
    );
}
