//! Timed runs for `scripts/bench-logs.sh` (the figures of docs/performance.md).
//!
//! ```sh
//! cargo run --release --example perf -- parse FILE      # line framing + classification only
//! cargo run --release --example perf -- read FILE       # read_logs: file, records, lifecycles
//! cargo run --release --example perf -- correlate 1000000 [--seed N]
//! ```
//!
//! `parse` holds the file in memory (reading it is not timed) and feeds it to the
//! [`LineParser`] line by line; `read` is what `icidtrace log` does before printing;
//! `correlate` generates a lean log of N ICIDs, parses it, makes one synthetic connection per
//! ICID (as the capture would show it, with the log's clock an hour ahead) and times
//! `correlate` alone, then checks that every connection got its own ICID.

#[path = "../benches/support/synth.rs"]
mod synth;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use icidtrace::correlate::{ClockHint, correlate};
use icidtrace::maillog::{
    LineParser, LogOptions, MailLogBuilder, ParserOptions, YearHint, parse_bytes,
};

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

/// CPU time of this process so far (user + system), seconds; 0 where /proc is missing.
fn cpu_secs() -> f64 {
    // /proc/self/stat: fields 14 and 15 are utime and stime in clock ticks (100 Hz here).
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = s.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn parse(path: &str) -> ExitCode {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("perf: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let c0 = cpu_secs();
    let t = Instant::now();
    let mut p = LineParser::new(
        0,
        ParserOptions {
            year: YearHint::Start(2024),
            ..ParserOptions::default()
        },
    );
    let mut n = 0u64;
    let mut lifecycle = 0u64;
    p.push_bytes(&data, 1, |r| {
        n += 1;
        lifecycle += u64::from(r.event.is_lifecycle());
    });
    if let Some(r) = p.finish() {
        n += 1;
        lifecycle += u64::from(r.event.is_lifecycle());
    }
    let s = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - c0;
    println!(
        "parse: {} bytes, {} records ({} lifecycle) in {:.3} s = {:.0} MB/s (cpu {:.2} s)",
        data.len(),
        n,
        lifecycle,
        s,
        mbps(data.len() as u64, s),
        cpu
    );
    ExitCode::SUCCESS
}

fn read(path: &str) -> ExitCode {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let c0 = cpu_secs();
    let t = Instant::now();
    let mut b = MailLogBuilder::new(LogOptions::default());
    if let Err(e) = b.add_file(&PathBuf::from(path)) {
        eprintln!("perf: {e}");
        return ExitCode::from(2);
    }
    let lines_done = t.elapsed().as_secs_f64();
    let lines_cpu = cpu_secs() - c0;
    let log = b.finish();
    let s = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - c0;
    println!(
        "read: {} bytes, {} records, {} ICIDs, {} MIDs in {:.3} s = {:.0} MB/s (cpu {:.2} s; lines {:.2} s, cpu {:.2} s; fold {:.2} s, cpu {:.2} s)",
        size,
        log.summary.counts.records,
        log.icids.len(),
        log.mids.len(),
        s,
        mbps(size, s),
        cpu,
        lines_done,
        lines_cpu,
        s - lines_done,
        cpu - lines_cpu
    );
    ExitCode::SUCCESS
}

fn correlate_n(n: u64, seed: u64) -> ExitCode {
    let t = Instant::now();
    let o = synth::LogGenOptions {
        seed,
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
    drop(bytes);
    let conns = synth::connections_for(&log, o.time_offset, seed);
    let views: Vec<_> = conns.iter().map(|c| c.view()).collect();
    let setup = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let corr = correlate(&views, &log, ClockHint::Auto);
    let s = t.elapsed().as_secs_f64();
    let right = corr
        .matches
        .iter()
        .zip(&conns)
        .filter(|(m, c)| m.as_ref().is_some_and(|m| m.icid == c.icid))
        .count();
    let matched = corr.matches.iter().filter(|m| m.is_some()).count();
    println!(
        "correlate: {} connections, {} ICIDs in {:.3} s (setup {:.1} s); matched {}, right {} ({:.3}%), offset {} from {} pairs",
        conns.len(),
        log.icids.len(),
        s,
        setup,
        matched,
        right,
        100.0 * right as f64 / conns.len().max(1) as f64,
        corr.clock.offset,
        corr.clock.supporting_pairs
    );
    // Freeing gigabytes of records is not part of the figure: leave that to the OS.
    std::process::exit(0)
}

const USAGE: &str = "usage: perf parse FILE | perf read FILE | perf correlate N [--seed S]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["parse", f] => parse(f),
        ["read", f] => read(f),
        ["correlate", n, rest @ ..] => {
            let Ok(n) = n.parse::<u64>() else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            let seed = match rest {
                [] => 1,
                ["--seed", s] => s.parse().unwrap_or(1),
                _ => {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                }
            };
            correlate_n(n, seed)
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
