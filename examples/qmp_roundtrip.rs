//! In-process QMP round trip: aplaunch's client against a minimal raw-socket client on
//! the same QEMU monitor (used by scripts/bench-qmp.sh).
//!
//!   cargo run --release --example qmp_roundtrip -- QMP_SOCKET [ITERATIONS]
//!
//! Prints one JSON line: medians in microseconds of one `qom-list /machine/peripheral`
//! round trip for each client, and their ratio.

use launcher::qmp::Qmp;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const COMMAND: &str = "qom-list";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The least a client can do: write the command line, read lines until the reply.
fn raw(path: &str, n: usize) -> Vec<f64> {
    let stream = UnixStream::connect(path).expect("connect");
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    let request =
        b"{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/machine/peripheral\"},\"id\":1}\n";
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        w.write_all(request).unwrap();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line.starts_with("{\"return\"") {
                break;
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times
}

fn client(path: &str, n: usize) -> Vec<f64> {
    let mut qmp = Qmp::connect(path, Duration::from_secs(10)).expect("connect");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let v = qmp
            .execute(COMMAND, json!({"path": "/machine/peripheral"}))
            .expect("qom-list");
        std::hint::black_box(v);
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: qmp_roundtrip QMP_SOCKET [ITERATIONS]");
    let n: usize = args
        .next()
        .map_or(20_000, |s| s.parse().expect("iterations"));
    // Warm up both, then alternate rounds so that drift hits both alike.
    raw(&path, 500);
    client(&path, 500);
    let (mut r, mut c) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        r.extend(raw(&path, n / 5));
        c.extend(client(&path, n / 5));
    }
    let (mr, mc) = (median(r), median(c));
    println!(
        "{}",
        json!({"iterations": n, "raw_median_us": mr, "client_median_us": mc, "client_over_raw": mc / mr})
    );
}
