//! Writes a large, protocol-valid, deterministic capture of concurrent inbound SMTP sessions
//! with the appliance's `mail_logs` for it and the truth about every connection.
//!
//! ```sh
//! cargo run --release --example gen_capture -- --size 1G --concurrent 10000 --seed 1 -o DIR
//! cargo run --release --example gen_capture -- --sessions 500 -o DIR
//! ```
//!
//! Writes `DIR/capture.pcap` (Ethernet, microseconds, through libpcap's savefile),
//! `DIR/mail_logs` (on-box format, the appliance clock `--clock-offset` seconds off the
//! capture's) and `DIR/truth.json` (each connection's client, ICID, MIDs, intended outcome and
//! the verdict icidtrace should give with the log; the count of each outcome).
//! `benches/support/synth_capture.rs` says what the traffic is made of. The same options give
//! the same bytes.

#[path = "../benches/support/synth_capture.rs"]
mod synth_capture;

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use synth_capture::{CaptureGenOptions, PacketSink};

const USAGE: &str =
    "usage: gen_capture (--size N[K|M|G] | --sessions N) [--concurrent N] [--seed N] \
[--clock-offset SECONDS] [--idle-timeout SECONDS] [--even-mix] -o DIR

  --size N[K|M|G]        stop starting sessions once the capture reaches about N bytes
                         (powers of 1024), then finish the open ones
  --sessions N           stop after starting N sessions
  --concurrent N         sessions open at once (default 1000)
  --seed N               the seed (default 1); the same options give the same files
  --clock-offset SECONDS the appliance clock minus UTC (default 3603: UTC+01:00 and 3 s skew)
  --idle-timeout SECONDS the listener's idle timeout (default 300)
  --even-mix             every outcome equally often (default: a realistic mix)
  -o, --output DIR       where capture.pcap, mail_logs and truth.json go (created if missing)";

fn size_arg(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let v = num.parse::<f64>().ok()?;
    (v.is_finite() && v > 0.0).then_some((v * mul as f64) as u64)
}

/// libpcap's savefile as the generator's packet sink.
struct Savefile {
    file: pcap::Savefile,
    _dead: pcap::Capture<pcap::Dead>,
}

impl Savefile {
    fn create(path: &Path) -> Result<Savefile, String> {
        let dead =
            pcap::Capture::dead_with_precision(pcap::Linktype::ETHERNET, pcap::Precision::Micro)
                .map_err(|e| e.to_string())?;
        let file = dead.savefile(path).map_err(|e| e.to_string())?;
        Ok(Savefile { file, _dead: dead })
    }
}

impl PacketSink for Savefile {
    fn packet(&mut self, ts_us: i64, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u32;
        let header = pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: ts_us.div_euclid(1_000_000) as libc::time_t,
                tv_usec: ts_us.rem_euclid(1_000_000) as libc::suseconds_t,
            },
            caplen: len,
            len,
        };
        self.file.write(&pcap::Packet::new(&header, frame));
        Ok(())
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("gen_capture: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut o = CaptureGenOptions::default();
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if matches!(a.as_str(), "-h" | "--help") {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        if a == "--even-mix" {
            o.even_mix = true;
            continue;
        }
        const VALUED: [&str; 8] = [
            "--size",
            "--sessions",
            "--concurrent",
            "--seed",
            "--clock-offset",
            "--idle-timeout",
            "-o",
            "--output",
        ];
        if !VALUED.contains(&a.as_str()) {
            return usage_error(&format!("unknown argument {a}"));
        }
        let Some(v) = args.next() else {
            return usage_error(&format!("{a} needs a value"));
        };
        let bad = || usage_error(&format!("bad value for {a}: {v}"));
        match a.as_str() {
            "--size" => match size_arg(&v) {
                Some(n) => o.size = Some(n),
                None => return bad(),
            },
            "--sessions" => match v.parse::<u64>() {
                Ok(n) if n > 0 => o.sessions = Some(n),
                _ => return bad(),
            },
            "--concurrent" => match v.parse::<u32>() {
                Ok(n) if (1..=1_000_000).contains(&n) => o.concurrent = n,
                _ => return bad(),
            },
            "--seed" => match v.parse() {
                Ok(n) => o.seed = n,
                Err(_) => return bad(),
            },
            "--clock-offset" => match v.parse::<i64>() {
                Ok(n) if n.abs() <= 2 * 86_400 => o.clock_offset = n,
                _ => return bad(),
            },
            "--idle-timeout" => match v.parse::<u32>() {
                Ok(n) if (1..=86_400).contains(&n) => o.idle_timeout_secs = n,
                _ => return bad(),
            },
            "-o" | "--output" => out = Some(PathBuf::from(v)),
            other => return usage_error(&format!("unknown argument {other}")),
        }
    }
    if o.size.is_none() && o.sessions.is_none() {
        return usage_error("--size or --sessions is needed");
    }
    let Some(dir) = out else {
        return usage_error("-o DIR is needed");
    };
    match run(&o, &dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_capture: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(o: &CaptureGenOptions, dir: &Path) -> Result<(), String> {
    let ctx = |what: &str, p: &Path, e: io::Error| format!("{what} {}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| ctx("cannot create", dir, e))?;
    let pcap_path = dir.join("capture.pcap");
    let log_path = dir.join("mail_logs");
    let truth_path = dir.join("truth.json");
    if pcap_path.to_str().is_none() {
        return Err(format!("{}: the path is not UTF-8", pcap_path.display()));
    }
    let mut pcap = Savefile::create(&pcap_path)?;
    let mut log = BufWriter::with_capacity(
        1 << 20,
        File::create(&log_path).map_err(|e| ctx("cannot create", &log_path, e))?,
    );
    let mut truth = BufWriter::with_capacity(
        1 << 16,
        File::create(&truth_path).map_err(|e| ctx("cannot create", &truth_path, e))?,
    );
    let started = std::time::Instant::now();
    let stats = synth_capture::generate(o, &mut pcap, &mut log, &mut truth)
        .map_err(|e| format!("writing {}: {e}", dir.display()))?;
    pcap.file
        .flush()
        .map_err(|e| format!("writing {}: {e}", pcap_path.display()))?;
    drop(pcap);
    let secs = started.elapsed().as_secs_f64();
    let on_disk = std::fs::metadata(&pcap_path).map_or(0, |m| m.len());
    eprintln!(
        "gen_capture: {} bytes, {} packets, {} sessions (at most {} open at once), {:.1} s of traffic; \
         mail_logs {} lines; written in {secs:.1} s ({:.0} MB/s)",
        on_disk,
        stats.packets,
        stats.sessions,
        stats.max_open,
        (stats.last_us - stats.first_us) as f64 / 1e6,
        stats.log_lines,
        on_disk as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(())
}
