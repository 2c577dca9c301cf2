//! Mail-log benchmarks on generated logs (`benches/support/synth.rs`): the line parser alone
//! over a buffer, the classifier per line kind, and the whole `read_logs` of a file.
//!
//! ```sh
//! cargo bench --bench maillog                  # 8 MiB logs
//! ICIDTRACE_BENCH_MB=256 cargo bench --bench maillog
//! ```
//!
//! The 1 GB figures of docs/performance.md come from `scripts/bench-logs.sh`.

#[path = "support/synth.rs"]
mod synth;

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use icidtrace::maillog::{LineParser, LogOptions, ParserOptions, YearHint, classify, read_logs};

fn main() {
    divan::main();
}

/// Size of the generated log, MiB (`ICIDTRACE_BENCH_MB`, default 8).
fn size() -> u64 {
    std::env::var("ICIDTRACE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
        << 20
}

/// The generated log, once.
fn log() -> &'static [u8] {
    static LOG: OnceLock<Vec<u8>> = OnceLock::new();
    LOG.get_or_init(|| {
        synth::log_bytes(&synth::LogGenOptions {
            seed: 1,
            size: Some(size()),
            ..synth::LogGenOptions::default()
        })
    })
}

/// The generated log in a file, once.
fn log_file() -> &'static PathBuf {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("mail.current");
            let mut f = std::fs::File::create(&path).expect("create");
            f.write_all(log()).expect("write");
            (dir, path)
        })
        .1
}

/// Framing and classification of every line, records dropped (`LineParser::push_bytes`).
#[divan::bench]
fn parse_lines(bencher: Bencher) {
    let data = log();
    bencher.counter(BytesCount::new(data.len())).bench(|| {
        let mut p = LineParser::new(
            0,
            ParserOptions {
                year: YearHint::Start(2024),
                ..ParserOptions::default()
            },
        );
        let mut n = 0u64;
        p.push_bytes(divan::black_box(data), 1, |r| {
            n += u64::from(r.event.is_lifecycle());
        });
        n + u64::from(p.finish().is_some())
    });
}

/// The same, line by line through `push_line` (the path for callers with their own lines).
#[divan::bench]
fn parse_line_by_line(bencher: Bencher) {
    let data = log();
    bencher.counter(BytesCount::new(data.len())).bench(|| {
        let mut p = LineParser::new(0, ParserOptions::default());
        let mut n = 0u64;
        for (i, l) in data.split_inclusive(|&b| b == b'\n').enumerate() {
            n += u64::from(p.push_line(l, i as u64 + 1).is_some());
        }
        n
    });
}

/// `read_logs` on a file: reading, parsing, lifecycles, summary.
#[divan::bench(sample_count = 10)]
fn read_file(bencher: Bencher) {
    let path = log_file();
    let len = log().len();
    bencher
        .counter(BytesCount::new(len))
        .bench(|| read_logs(std::slice::from_ref(path), &LogOptions::default()).expect("read"));
}

/// One message of each common kind, by name.
const KINDS: [(&str, &str); 12] = [
    (
        "connect",
        "New SMTP ICID 51709676 interface Data 2 (192.0.2.26) address 185.11.137.229 reverse dns host host-185-11-137-229.dyn.example.com verified no",
    ),
    (
        "hat",
        "ICID 51709676 ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS 1.8 country Germany",
    ),
    (
        "tls",
        "ICID 51709684 TLS success protocol TLSv1.2 cipher ECDHE-RSA-AES128-GCM-SHA256",
    ),
    ("close", "ICID 51709676 close"),
    ("start", "Start MID 1923191 ICID 51709683"),
    (
        "from",
        "MID 1923191 ICID 51709683 From: <sybil91@mail.example.co.uk>",
    ),
    (
        "to",
        "MID 1923191 ICID 51709683 RID 0 To: <bob32@mycompany.com>",
    ),
    (
        "ready",
        "MID 1923191 ready 23456 bytes from <sybil91@mail.example.co.uk>",
    ),
    (
        "noise",
        "MID 1923191 interim verdict using engine: CASE spam negative",
    ),
    (
        "delivery_start",
        "Delivery start DCID 123456 MID 1923191 to RID [0]",
    ),
    (
        "message_done",
        "Message done DCID 123456 MID 1923191 to RID [0] [('X-IronPort-AV', 'E=Sophos')]",
    ),
    (
        "aborted_by_sender",
        "Message aborted MID 1923191 Receiving aborted by sender",
    ),
];

/// The classifier on one message of each common kind.
#[divan::bench(args = KINDS.map(|k| k.0))]
fn classify_kind(bencher: Bencher, kind: &str) {
    let msg = KINDS.iter().find(|k| k.0 == kind).map_or("", |k| k.1);
    bencher
        .counter(ItemsCount::new(1usize))
        .bench(|| classify(divan::black_box(msg)));
}
