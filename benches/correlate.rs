//! Correlation benchmark: N synthetic connections against a log of N ICIDs
//! (`benches/support/synth.rs`: a lean generated log, parsed, and one connection per ICID as
//! the capture would show it, the log's clock an hour ahead).
//!
//! ```sh
//! cargo bench --bench correlate                # 10k and 100k
//! ```
//!
//! The 1M figure of docs/performance.md comes from `scripts/bench-logs.sh`
//! (`cargo run --release --example perf -- correlate 1000000`).

#[path = "support/synth.rs"]
mod synth;

use divan::Bencher;
use icidtrace::correlate::{ClockHint, correlate};
use icidtrace::maillog::{LogOptions, MailLog, YearHint, parse_bytes};

fn main() {
    divan::main();
}

/// A log of `n` ICIDs and one connection per ICID.
fn inputs(n: u64) -> (MailLog, Vec<synth::SynthConn>) {
    let o = synth::LogGenOptions {
        seed: 7,
        icids: Some(n),
        noise: false,
        ..synth::LogGenOptions::default()
    };
    let bytes = synth::log_bytes(&o);
    let log = parse_bytes(
        "synthetic",
        &bytes,
        YearHint::Start(2024),
        &LogOptions::default(),
    );
    let conns = synth::connections_for(&log, o.time_offset, o.seed);
    (log, conns)
}

#[divan::bench(args = [10_000, 100_000], sample_count = 5, sample_size = 1)]
fn correlate_n(bencher: Bencher, n: u64) {
    let (log, conns) = inputs(n);
    let views: Vec<_> = conns.iter().map(|c| c.view()).collect();
    bencher
        .counter(divan::counter::ItemsCount::new(views.len()))
        .bench(|| correlate(&views, &log, ClockHint::Auto));
}
