//! Inputs that crashed icidtrace (found by the fuzz targets in `fuzz/`, or while building
//! inputs for them), kept so they never crash it again. Each runs through the same target body
//! the fuzzer runs (`fuzz/src/lib.rs`: no panic, the target's invariants hold) and then through
//! the library with a check that the result makes sense.
//!
//! The crash inputs themselves are in `fuzz/regressions/<target>/`; every file there is run by
//! [`every_kept_crash_input_passes_its_target`].
//!
//! 1. A mail log line dated in the year 4052 (found by `analyze` after about 5,000 runs): the
//!    log time saturates at the end of `i64` nanoseconds, and aligning it with the log's clock
//!    offset overflowed (`correlate.rs`, `attempt to subtract with overflow`; garbage offsets in
//!    a release build). Years 1, 1600 and 9999 and `--clock-offset` at the ends of `i64` did the
//!    same in other places of the clock search. Fixed with saturating arithmetic there and an
//!    exact `Timestamp::seconds_since`.
//! 2. pcapng timestamps at the ends of the range (interfaces with `if_tsoffset` of ±2^62 s, a
//!    binary `if_tsresol`): the same kind of overflow in the flow table's wait for acknowledged
//!    holes (`flow.rs`). Fixed with a saturating difference.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_bodies;

use std::path::PathBuf;

use icidtrace::analyze::{AnalyzeOptions, analyze};
use icidtrace::correlate::ClockHint;
use icidtrace::report::Report;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target(name: &str) -> fuzz_bodies::Target {
    fuzz_bodies::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a fuzz target of that name")
}

/// The `analyze` target's input: a little-endian length, the capture, the log.
fn analyze_input(capture: &[u8], log: &[u8]) -> Vec<u8> {
    let mut v = (capture.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(capture);
    v.extend_from_slice(log);
    v
}

/// Runs the library on a capture and a log written to a temporary directory.
fn run(capture: &[u8], log: Option<&[u8]>, clock: ClockHint) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("capture.pcap");
    std::fs::write(&cap, capture).unwrap();
    let mut logs = Vec::new();
    if let Some(l) = log {
        let p = dir.path().join("mail_logs");
        std::fs::write(&p, l).unwrap();
        logs.push(p);
    }
    let opts = AnalyzeOptions {
        captures: vec![cap.display().to_string()],
        logs,
        clock,
        log_lines: true,
        ..AnalyzeOptions::default()
    };
    analyze(&opts).unwrap_or_else(|e| panic!("{e}"))
}

fn case(name: &str, file: &str) -> Vec<u8> {
    std::fs::read(root().join("captures").join(name).join(file)).expect("bundled case")
}

#[test]
fn every_kept_crash_input_passes_its_target() {
    let dir = root().join("fuzz/regressions");
    let mut n = 0;
    for t in std::fs::read_dir(&dir).expect("fuzz/regressions") {
        let t = t.unwrap().path();
        let name = t.file_name().unwrap().to_str().unwrap().to_string();
        let body = target(&name);
        for f in std::fs::read_dir(&t).unwrap() {
            let f = f.unwrap().path();
            let bytes = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| body(&bytes));
            assert!(r.is_ok(), "{name}: {} fails", f.display());
            n += 1;
        }
    }
    assert!(n > 0, "no kept input found in {}", dir.display());
}

#[test]
fn log_year_4052_found_by_the_fuzzer() {
    let input = std::fs::read(root().join("fuzz/regressions/analyze/log-year-4052-overflow"))
        .expect("the kept input");
    let n = u32::from_le_bytes(input[..4].try_into().unwrap()) as usize;
    let (capture, log) = (&input[4..4 + n], &input[4 + n..]);
    let r = run(capture, Some(log), ClockHint::Auto);
    // The capture is damaged at its second record (the fuzzer cut it): no connection, and the
    // damage is a problem of the report; the log's ICID stays unmatched; the clock is the
    // header's, as nothing lined up.
    assert!(r.connections.is_empty());
    assert_eq!(
        r.captures.files[0].damage.as_ref().map(|d| d.record),
        Some(2)
    );
    assert!(r.problems.iter().any(|p| p.contains("record 2")));
    let clock = r.clock.expect("a clock with a log");
    assert_eq!(clock.supporting_pairs, 0);
    assert!(clock.offset_seconds.is_finite());
}

#[test]
fn absurd_log_years_and_clock_offsets() {
    let capture = case("delivered-quit", "capture.pcap");
    let log = String::from_utf8(case("delivered-quit", "mail_logs")).unwrap();
    let year = log
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(4))
        .expect("an on-box timestamp")
        .to_string();
    for absurd in ["0001", "1600", "4052", "9999"] {
        let mangled = log.replace(&format!(" {year} "), &format!(" {absurd} "));
        fuzz_bodies::analyze(&analyze_input(&capture, mangled.as_bytes()));
        for clock in [
            ClockHint::Auto,
            ClockHint::Offset(i64::MAX),
            ClockHint::Offset(i64::MIN),
            ClockHint::Zone(chrono_tz::Europe::Berlin),
        ] {
            let r = run(&capture, Some(mangled.as_bytes()), clock);
            // The connection is there; no ICID of year `absurd` can match it.
            assert_eq!(r.connections.len(), 1, "year {absurd}, {clock:?}");
            assert_eq!(r.connections[0].icid, None, "year {absurd}, {clock:?}");
            assert!(r.clock.is_some_and(|c| c.offset_seconds.is_finite()));
        }
    }
    // The real year with an absurd given offset: nothing lines up, nothing overflows.
    for s in [i64::MAX, i64::MIN, i64::MAX / 1_000_000_000 + 1] {
        let r = run(&capture, Some(log.as_bytes()), ClockHint::Offset(s));
        assert_eq!(r.connections[0].icid, None, "offset {s}");
    }
    // And the real log still matches (the fix changed nothing for sane times).
    let r = run(&capture, Some(log.as_bytes()), ClockHint::Auto);
    assert!(r.connections[0].icid.is_some());
}

/// A pcapng of the bundled `rst-during-data` packets spread over three interfaces whose clocks
/// are at the ends of the range: `if_tsoffset` +2^62 s, −2^62 s, and 2^63 ticks of one second.
fn extreme_pcapng() -> Vec<u8> {
    let pcap = case("rst-during-data", "capture.pcap");
    let block = |out: &mut Vec<u8>, t: u32, body: &[u8]| {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&vec![0; pad]);
        out.extend_from_slice(&len.to_le_bytes());
    };
    let opt = |code: u16, val: &[u8]| {
        let mut o = code.to_le_bytes().to_vec();
        o.extend_from_slice(&(val.len() as u16).to_le_bytes());
        o.extend_from_slice(val);
        o.extend_from_slice(&vec![0; (4 - val.len() % 4) % 4]);
        o
    };
    let mut out = Vec::new();
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    for o in [
        opt(14, &(1i64 << 62).to_le_bytes()),
        opt(14, &(-(1i64 << 62)).to_le_bytes()),
        opt(9, &[0x80]),
    ] {
        let mut idb = vec![1, 0, 0, 0, 0, 0, 0, 0];
        idb.extend_from_slice(&o);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        block(&mut out, 1, &idb);
    }
    let mut off = 24;
    let mut i = 0u32;
    while off + 16 <= pcap.len() {
        let sec = u32::from_le_bytes(pcap[off..off + 4].try_into().unwrap());
        let usec = u32::from_le_bytes(pcap[off + 4..off + 8].try_into().unwrap());
        let incl = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap());
        let data = &pcap[off + 16..off + 16 + incl as usize];
        let iface = i % 3;
        let ts = if iface == 2 {
            (1u64 << 63) + u64::from(i)
        } else {
            u64::from(sec) * 1_000_000 + u64::from(usec)
        };
        let mut epb = iface.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&incl.to_le_bytes());
        epb.extend_from_slice(&incl.to_le_bytes());
        epb.extend_from_slice(data);
        block(&mut out, 6, &epb);
        off += 16 + incl as usize;
        i += 1;
    }
    out
}

#[test]
fn pcapng_timestamps_at_the_ends_of_the_range() {
    let ng = extreme_pcapng();
    let log = case("rst-during-data", "mail_logs");
    fuzz_bodies::capture_read(&[&[0u8][..], &ng].concat());
    fuzz_bodies::analyze(&analyze_input(&ng, &log));
    let r = run(&ng, Some(&log), ClockHint::Auto);
    // Every packet was read and the connection found; the clock jumps are said.
    assert_eq!(r.captures.records, 111);
    assert_eq!(r.connections.len(), 1);
    let notes = &r.captures.files[0].notes;
    assert!(
        notes.iter().any(|n| n.contains("timestamp earlier")),
        "{notes:?}"
    );
    for c in &r.connections {
        assert!(c.first_seen <= c.last_seen);
        assert!(c.duration_seconds.is_finite());
    }
    // Every printer copes.
    let _ = icidtrace::report::table::render(&r, 100);
    let _ = icidtrace::report::markdown::render(&r);
    let _ = icidtrace::report::html::render(&r);
    let _ = icidtrace::report::detail::render(&r, &[0], 80);
}

#[test]
fn kept_inputs_are_small() {
    // The committed corpus and crash inputs stay small (a few hundred KB in all).
    let mut total = 0u64;
    for dir in ["fuzz/corpus", "fuzz/regressions"] {
        for t in std::fs::read_dir(root().join(dir)).unwrap() {
            for f in std::fs::read_dir(t.unwrap().path()).unwrap() {
                total += f.unwrap().metadata().unwrap().len();
            }
        }
    }
    assert!(total < 1 << 20, "{total} bytes under fuzz/");
}
