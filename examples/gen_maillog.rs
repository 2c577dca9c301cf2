//! Writes a large, realistic, deterministic on-box `mail_logs` for benchmarks.
//!
//! ```sh
//! cargo run --release --example gen_maillog -- --size 1G --seed 1 -o /tmp/big.log
//! cargo run --release --example gen_maillog -- --icids 1000000 --lean -o /tmp/icids.log
//! ```
//!
//! `--size` stops starting connections once that many bytes are out (K, M, G suffixes, powers
//! of 1024) and finishes the open ones; `--icids` stops after that many connections. `--lean`
//! leaves out the post-reception noise and delivery lines (only the reception lifecycles, as
//! the correlation benchmark needs). The same options and seed give the same bytes.

#[path = "../benches/support/synth.rs"]
mod synth;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

fn size_arg(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<f64>().ok().map(|v| (v * mul as f64) as u64)
}

const USAGE: &str = "usage: gen_maillog (--size N[K|M|G] | --icids N) [--seed N] [--rate CONN_PER_S] \
[--offset SECONDS] [--lean] [-o FILE]";

fn main() -> ExitCode {
    let mut o = synth::LogGenOptions::default();
    let mut out: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("gen_maillog: {name} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        let bad = |name: &str| -> ! {
            eprintln!("gen_maillog: bad value for {name}\n{USAGE}");
            std::process::exit(2)
        };
        match a.as_str() {
            "--size" => o.size = Some(size_arg(&val("--size")).unwrap_or_else(|| bad("--size"))),
            "--icids" => o.icids = Some(val("--icids").parse().unwrap_or_else(|_| bad("--icids"))),
            "--seed" => o.seed = val("--seed").parse().unwrap_or_else(|_| bad("--seed")),
            "--rate" => o.rate = val("--rate").parse().unwrap_or_else(|_| bad("--rate")),
            "--offset" => {
                o.time_offset = val("--offset").parse().unwrap_or_else(|_| bad("--offset"))
            }
            "--lean" => o.noise = false,
            "-o" | "--output" => out = Some(val("-o")),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("gen_maillog: unknown argument {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if o.size.is_none() && o.icids.is_none() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let started = std::time::Instant::now();
    let res = match out.as_deref() {
        None | Some("-") => {
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
            synth::generate_log(&o, &mut w).and_then(|s| w.flush().map(|_| s))
        }
        Some(path) => File::create(path).and_then(|f| {
            let mut w = BufWriter::with_capacity(1 << 20, f);
            synth::generate_log(&o, &mut w).and_then(|s| w.flush().map(|_| s))
        }),
    };
    match res {
        Ok(s) => {
            eprintln!(
                "gen_maillog: {} bytes, {} lines, {} ICIDs, {} MIDs in {:.1} s",
                s.bytes,
                s.lines,
                s.icids,
                s.mids,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_maillog: {e}");
            ExitCode::from(1)
        }
    }
}
