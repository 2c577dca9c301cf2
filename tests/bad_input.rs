//! Bad input through the command line, beyond what `tests/cli.rs` covers (missing, empty,
//! directory, text, unreadable and cut-header captures, a damaged record, a cut gzip stream,
//! a capture given as the log, a closed stdout for JSON/CSV/table, a full disk).
//!
//! Each case checks the exit code (0 ran, 2 unusable input, 3 ran but an input was damaged or
//! the results are incomplete) and the message: it names the file, the position (record number
//! and byte offset, or line number) and the problem. Inputs are made from the bundled captures
//! and logs, edited byte by byte.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn case(name: &str, file: &str) -> PathBuf {
    root().join("captures").join(name).join(file)
}

fn capture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(case(name, "capture.pcap")).expect("bundled capture")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The binary, with a stable environment and a deadline: no input may make it hang.
fn icidtrace() -> Command {
    let mut cmd = Command::cargo_bin("icidtrace").expect("the icidtrace binary is built");
    cmd.env_remove("COLUMNS");
    cmd.timeout(Duration::from_secs(120));
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

fn run_cmd(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("icidtrace runs");
    let run = Run {
        code: out
            .status
            .code()
            .expect("exited (not killed by a signal or the deadline)"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "icidtrace panicked:\n{}",
        run.stderr
    );
    run
}

fn run_expect(args: &[&str], code: i32) -> Run {
    let r = run_cmd(icidtrace().args(args));
    assert_eq!(
        r.code, code,
        "icidtrace {args:?}: exit code\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

/// Exit code 2, nothing on stdout, one line on stderr containing every one of `words`.
fn expect_bad_input(args: &[&str], words: &[&str]) -> String {
    let r = run_expect(args, 2);
    assert_eq!(r.stdout, "", "{args:?}: nothing on stdout");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: one line on stderr:\n{}",
        r.stderr
    );
    for w in words {
        assert!(
            lines[0].contains(w),
            "{args:?}: stderr should say {w:?}: {}",
            lines[0]
        );
    }
    lines[0].to_string()
}

/// Offsets of the records of a little-endian pcap (after the 24-byte file header).
fn records(pcap: &[u8]) -> Vec<usize> {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        out.push(off);
        let incl = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + incl;
    }
    out
}

/// Where the IP header of record `n` (1-based) of an Ethernet pcap starts.
fn ip_at(pcap: &[u8], n: usize) -> usize {
    records(pcap)[n - 1] + 16 + 14
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write a test input");
    p
}

fn json_of(args: &[&str], code: i32) -> (Value, String) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let r = run_expect(&all, code);
    (r.json(), r.stderr)
}

/// The facts of every connection that do not depend on which file they came from.
fn facts(v: &Value) -> Vec<Value> {
    v["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| {
            serde_json::json!({
                "client": c["client"], "server": c["server"], "verdict": c["verdict"]["cause"],
                "layer": c["verdict"]["layer"], "smtp": [c["smtp"]["quit"], c["smtp"]["transactions"],
                c["smtp"]["completed"]], "tcp_anomalies": c["tcp"]["anomalies"],
                "smtp_anomalies": c["smtp"]["session"]["anomalies"],
            })
        })
        .collect()
}

fn notes(v: &Value) -> Vec<String> {
    v["captures"]["files"][0]["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| n.as_str().expect("a note is text").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Captures that cannot be used (exit 2)

#[test]
fn wrong_magic_is_named_with_its_first_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = capture_bytes("rst-during-data");
    bytes[..4].copy_from_slice(&[0x00, 0x01, 0x02, 0x03]);
    let p = write(dir.path(), "wrong-magic.pcap", &bytes);
    expect_bad_input(
        &["analyze", s(&p)],
        &[
            s(&p),
            "not a pcap or pcapng capture",
            "starts with 00 01 02 03",
        ],
    );
    // A byte-swapped magic of the wrong width, and a zip archive, with a hint.
    let z = write(dir.path(), "capture.zip", b"PK\x03\x04\x14\x00\x00\x00rest");
    expect_bad_input(&["analyze", s(&z)], &[s(&z), "zip archive"]);
}

#[test]
fn unsupported_link_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = capture_bytes("rst-during-data");
    bytes[20..24].copy_from_slice(&105u32.to_le_bytes()); // IEEE 802.11
    let p = write(dir.path(), "wifi.pcap", &bytes);
    expect_bad_input(
        &["analyze", s(&p)],
        &[
            s(&p),
            "unsupported link type IEEE802_11 (105)",
            "supported: EN10MB",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Damaged captures (exit 3: the results cover what came before the damage)

#[test]
fn truncated_last_record_exits_3_with_record_offset_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = capture_bytes("rst-during-data");
    let last = records(&bytes).len();
    let last_at = *records(&bytes).last().unwrap();
    let p = write(dir.path(), "cut.pcap", &bytes[..bytes.len() - 10]);
    let (v, stderr) = json_of(&["analyze", s(&p)], 3);
    let want = format!("record {last} at byte offset {last_at}: the file ends inside the record");
    assert!(stderr.contains(s(&p)) && stderr.contains(&want), "{stderr}");
    let incl = u32::from_le_bytes(bytes[last_at + 8..last_at + 12].try_into().unwrap());
    let sizes = format!("its header says {incl} bytes, {} are present", incl - 10);
    assert!(stderr.contains(&sizes), "{stderr}");
    assert_eq!(
        v["connections"].as_array().unwrap().len(),
        1,
        "what came before"
    );
    assert_eq!(v["captures"]["records"], last as u64 - 1);
}

#[test]
fn corrupt_pcapng_block_length_exits_3_with_record_and_offset() {
    // A pcapng file: section header, interface (Ethernet), then enhanced packet blocks copied
    // from the bundled pcap; the third packet block's length is corrupted.
    let pcap = capture_bytes("rst-during-data");
    let mut ng = Vec::new();
    let block = |ng: &mut Vec<u8>, t: u32, body: &[u8]| {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        ng.extend_from_slice(&t.to_le_bytes());
        ng.extend_from_slice(&len.to_le_bytes());
        ng.extend_from_slice(body);
        ng.extend_from_slice(&vec![0; pad]);
        ng.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut ng, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&262_144u32.to_le_bytes());
    block(&mut ng, 1, &idb);
    let mut starts = Vec::new();
    for off in records(&pcap).into_iter().take(6) {
        let sec = u32::from_le_bytes(pcap[off..off + 4].try_into().unwrap());
        let usec = u32::from_le_bytes(pcap[off + 4..off + 8].try_into().unwrap());
        let incl = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap());
        let ts = u64::from(sec) * 1_000_000 + u64::from(usec);
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&incl.to_le_bytes());
        epb.extend_from_slice(&incl.to_le_bytes());
        epb.extend_from_slice(&pcap[off + 16..off + 16 + incl as usize]);
        starts.push(ng.len());
        block(&mut ng, 6, &epb);
    }
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.pcapng", &ng);
    let (v, _) = json_of(&["analyze", s(&good)], 0);
    assert_eq!(v["captures"]["records"], 6);
    let bad_at = starts[2];
    ng[bad_at + 4..bad_at + 8].copy_from_slice(&7u32.to_le_bytes());
    let bad = write(dir.path(), "bad.pcapng", &ng);
    let (v, stderr) = json_of(&["analyze", s(&bad)], 3);
    let want = format!("record 3 at byte offset {bad_at}");
    assert!(
        stderr.contains(s(&bad)) && stderr.contains(&want),
        "{stderr}"
    );
    assert!(stderr.contains("block length 7"), "{stderr}");
    assert_eq!(v["captures"]["records"], 2, "the records before the damage");
}

// ---------------------------------------------------------------------------------------------
// Odd but usable captures (exit 0, the oddity said where it is)

#[test]
fn snaplen_zero_or_huge_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let orig = case("rst-during-data", "capture.pcap");
    let (want, _) = json_of(&["analyze", s(&orig)], 0);
    for snaplen in [0u32, u32::MAX, 64] {
        let mut bytes = capture_bytes("rst-during-data");
        bytes[16..20].copy_from_slice(&snaplen.to_le_bytes());
        let p = write(dir.path(), &format!("snaplen-{snaplen}.pcap"), &bytes);
        if snaplen == 64 {
            // A header snaplen smaller than the records: the records are read as they are.
            let (v, _) = json_of(&["analyze", s(&p)], 0);
            assert_eq!(facts(&v), facts(&want), "snaplen {snaplen}");
            continue;
        }
        let (v, stderr) = json_of(&["analyze", s(&p)], 0);
        assert_eq!(stderr, "");
        assert_eq!(facts(&v), facts(&want), "snaplen {snaplen}");
        assert_eq!(v["captures"]["files"][0]["snaplen"], snaplen);
    }
}

#[test]
fn timestamps_going_backwards_are_noted_with_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = capture_bytes("rst-during-data");
    let at = records(&bytes)[5];
    let sec = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    bytes[at..at + 4].copy_from_slice(&(sec - 3600).to_le_bytes());
    let p = write(dir.path(), "backwards.pcap", &bytes);
    let (v, stderr) = json_of(&["analyze", s(&p)], 0);
    assert_eq!(stderr, "", "not damage: exit 0 and no warning");
    assert_eq!(v["captures"]["files"][0]["backwards_timestamps"], 1);
    let n = notes(&v);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].contains("record 6") && n[0].contains("earlier"),
        "{n:?}"
    );
    assert!(n[0].contains("3599.9"), "how far back: {n:?}");
    // The reports meant for a case say it with the file's name.
    let md = run_expect(&["analyze", s(&p), "--format", "markdown"], 0).stdout;
    assert!(
        md.contains(&format!("{}: 1 record has a timestamp earlier", s(&p))),
        "{md}"
    );
}

#[test]
fn ipv4_lengths_that_lie() {
    let dir = tempfile::tempdir().unwrap();
    let orig = case("rst-during-data", "capture.pcap");
    let (want, _) = json_of(&["analyze", s(&orig)], 0);
    let bytes = capture_bytes("rst-during-data");
    // Record 8 is the client's EHLO (98 bytes of payload).
    let ip = ip_at(&bytes, 8);

    // A total length past the end of the packet (the record is whole): not a snaplen cut, no
    // bytes taken as lost; the connection reads as before.
    let mut long = bytes.clone();
    long[ip + 2..ip + 4].copy_from_slice(&1500u16.to_be_bytes());
    let p = write(dir.path(), "ip-total-long.pcap", &long);
    let (v, _) = json_of(&["analyze", s(&p)], 0);
    assert_eq!(facts(&v), facts(&want));
    assert_eq!(v["captures"]["truncated_packets"], 0);

    // A total length shorter than the headers, and a header length (IHL) that runs into the
    // TCP header: the record is left out, counted, and the note says which and why.
    for (name, edit) in [
        ("ip-total-short", (2usize, vec![0u8, 30])),
        ("ip-ihl-15", (0usize, vec![0x4f])),
        ("ip-ihl-3", (0usize, vec![0x43])),
    ] {
        let mut b = bytes.clone();
        b[ip + edit.0..ip + edit.0 + edit.1.len()].copy_from_slice(&edit.1);
        let p = write(dir.path(), &format!("{name}.pcap"), &b);
        let (v, stderr) = json_of(&["analyze", s(&p)], 0);
        assert_eq!(stderr, "", "{name}");
        assert_eq!(v["captures"]["ignored"]["undecodable"], 1, "{name}");
        let n = notes(&v);
        assert!(
            n.iter()
                .any(|n| n.contains("1 record could not be decoded")
                    && n.contains("record 8: invalid")),
            "{name}: {n:?}"
        );
        // The EHLO is missing from the client's stream: a gap, not a wrong command.
        let c = &v["connections"][0];
        assert_eq!(c["tcp"]["anomalies"][0]["kind"], "gap", "{name}");
        assert_eq!(
            c["verdict"]["cause"],
            want["connections"][0]["verdict"]["cause"]
        );
    }
}

#[test]
fn ipv6_payload_length_that_lies() {
    let dir = tempfile::tempdir().unwrap();
    let orig = case("ipv6-delivered", "capture.pcap");
    let (want, _) = json_of(&["analyze", s(&orig)], 0);
    let bytes = capture_bytes("ipv6-delivered");
    // Record 8: the client's EHLO, 98 bytes of payload after a 32-byte TCP header.
    let ip = ip_at(&bytes, 8);
    assert_eq!(bytes[ip] >> 4, 6);
    let mut long = bytes.clone();
    long[ip + 4..ip + 6].copy_from_slice(&1400u16.to_be_bytes());
    let p = write(dir.path(), "ip6-long.pcap", &long);
    let (v, _) = json_of(&["analyze", s(&p)], 0);
    assert_eq!(facts(&v), facts(&want));
    assert_eq!(v["captures"]["truncated_packets"], 0);

    let mut short = bytes.clone();
    short[ip + 4..ip + 6].copy_from_slice(&10u16.to_be_bytes());
    let p = write(dir.path(), "ip6-short.pcap", &short);
    let (v, _) = json_of(&["analyze", s(&p)], 0);
    assert_eq!(v["captures"]["ignored"]["undecodable"], 1);
    let n = notes(&v);
    assert!(
        n.iter().any(|n| n.contains("record 8: invalid TCP header")),
        "{n:?}"
    );
}

#[test]
fn tcp_options_that_overrun_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = capture_bytes("rst-during-data");
    // Record 1 is the client's SYN: a 40-byte TCP header. Say 60 (data offset 15).
    let tcp = ip_at(&bytes, 1) + 20;
    let mut b = bytes.clone();
    b[tcp + 12] = 0xf0 | (b[tcp + 12] & 0x0f);
    let p = write(dir.path(), "tcp-doff.pcap", &b);
    let (v, stderr) = json_of(&["analyze", s(&p)], 0);
    assert_eq!(stderr, "");
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|n| n.contains("record 1: invalid TCP header") && n.contains("60 byte(s)")),
        "{n:?}"
    );
    // The connection is still there, seen from its SYN-ACK on.
    assert_eq!(v["connections"].as_array().unwrap().len(), 1);

    // An option whose length runs past the header: options are not needed, the segment is.
    let mut b = bytes.clone();
    b[tcp + 20..tcp + 22].copy_from_slice(&[2, 200]);
    let p = write(dir.path(), "tcp-option-len.pcap", &b);
    let (v, _) = json_of(&["analyze", s(&p)], 0);
    let (want, _) = json_of(&["analyze", s(&case("rst-during-data", "capture.pcap"))], 0);
    assert_eq!(facts(&v), facts(&want));
}

/// An Ethernet/IPv4 pcap of `n` SYNs from distinct client ports to port 8080, 1 ms apart.
/// A pcap (Ethernet, microseconds) of `frames`: (time in µs after 1,700,000,000 s, frame).
fn pcap_of(frames: impl IntoIterator<Item = (u64, Vec<u8>)>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (us, f) in frames {
        out.extend_from_slice(&(1_700_000_000 + (us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    out
}

/// An Ethernet/IPv4/TCP frame (checksums left zero: icidtrace does not check them).
struct Tcp<'a> {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &'a [u8],
}

impl Tcp<'_> {
    fn frame(&self) -> Vec<u8> {
        let mut f = vec![0u8; 54 + self.payload.len()];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((40 + self.payload.len()) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&self.src);
        ip[16..20].copy_from_slice(&self.dst);
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&self.sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&self.dport.to_be_bytes());
        tcp[4..8].copy_from_slice(&self.seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&self.ack.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = self.flags;
        f[54..].copy_from_slice(self.payload);
        f
    }
}

/// `n` connections from distinct clients to `port`, one a millisecond: each a SYN, and with
/// `data` also one byte of payload after it (a connection under way, never closed).
fn flood(n: u32, port: u16, data: bool) -> Vec<u8> {
    pcap_of((0..n).flat_map(|i| {
        let conn = |seq: u32, flags: u8, payload: &'static [u8]| Tcp {
            src: [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
            dst: [192, 0, 2, 80],
            sport: 1024 + (i % 60_000) as u16,
            dport: port,
            seq,
            ack: 0,
            flags,
            payload,
        };
        let us = u64::from(i) * 1000;
        let syn = (us, conn(i, 0x02, b"").frame());
        let first_byte = data.then(|| (us + 1, conn(i.wrapping_add(1), 0x18, b"x").frame()));
        std::iter::once(syn).chain(first_byte)
    }))
}

#[test]
fn more_open_connections_than_the_cap_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "flood.pcap", &flood(70_000, 8080, true));
    let (v, stderr) = json_of(&["analyze", s(&p)], 3);
    assert!(
        stderr.contains("connections were finished early because more than 65536 were open"),
        "{stderr}"
    );
    assert_eq!(v["summary"]["other_tcp_connections"], 70_000, "none lost");
    assert!(
        v["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("finished early"))
    );
}

/// Attempts (SYN only) lose nothing when finished early: no problem, every one counted.
#[test]
fn a_syn_flood_past_the_cap_is_not_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "flood.pcap", &flood(70_000, 8080, false));
    let (v, stderr) = json_of(&["analyze", s(&p)], 0);
    assert!(!stderr.contains("finished early"), "{stderr}");
    assert_eq!(v["summary"]["other_tcp_connections"], 70_000, "none lost");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0));
}

/// A SYN flood to the SMTP port: the first attempts are listed, the rest counted, so the
/// report stays small whatever the flood's size.
#[test]
fn smtp_attempts_past_the_first_thousand_are_counted_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "flood.pcap", &flood(5_000, 25, false));
    let (v, _) = json_of(&["analyze", s(&p)], 0);
    assert_eq!(v["connections"].as_array().map(Vec::len), Some(1000));
    let f = &v["summary"]["folded_attempts"];
    assert_eq!(f["count"], 4_000, "{f}");
    assert_eq!(f["unanswered"], 4_000, "{f}");
    assert_eq!(f["refused"], 0, "{f}");
    assert_eq!(f["clients"], 4_000, "{f}");
    let first = &v["connections"][0]["verdict"];
    assert_eq!(
        (first["layer"].as_str(), first["cause"].as_str()),
        (Some("network"), Some("syn_unanswered")),
        "{first}"
    );
    assert_eq!(
        v["summary"]["connections"], 1000,
        "the summary's counts are of the listed connections"
    );
}

// ---------------------------------------------------------------------------------------------
// Mail logs

fn rst_log() -> String {
    std::fs::read_to_string(case("rst-during-data", "mail_logs")).expect("bundled log")
}

/// The `log` command's JSON for `path` (exit 0).
fn log_json(path: &Path) -> Value {
    run_expect(&["log", s(path), "--format", "json"], 0).json()
}

fn samples(v: &Value) -> Vec<(u64, String)> {
    v["summary"]["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|x| {
            (
                x["line"].as_u64().expect("line"),
                x["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect()
}

#[test]
fn log_with_binary_garbage_keeps_the_good_lines_and_names_the_bad() {
    let dir = tempfile::tempdir().unwrap();
    let good = rst_log();
    let good_lines = good.lines().count() as u64;
    let mut bytes = good.into_bytes();
    // 40 lines of binary junk (no line is a log line).
    let mut x = 0x9e37_79b9u32;
    for _ in 0..40 {
        for _ in 0..60 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            bytes.push(if (x as u8) == b'\n' { 0 } else { x as u8 });
        }
        bytes.push(b'\n');
    }
    let p = write(dir.path(), "mail.current", &bytes);
    let v = log_json(&p);
    let sum = &v["summary"];
    // Every junk line is counted: as unparsed, or (right after the last record) taken for the
    // wrapped rest of that record (at most 16 lines).
    let unparsed = sum["unparsed_lines"].as_u64().unwrap();
    let continued = sum["continuation_lines"].as_u64().unwrap();
    assert_eq!(unparsed + continued, 40, "{sum}");
    assert!(continued <= 16, "{sum}");
    assert!(sum["invalid_utf8_lines"].as_u64().unwrap() > 0, "{sum}");
    // The samples name the lines (in no particular order).
    let first = samples(&v).into_iter().min().expect("samples");
    assert_eq!(first, (good_lines + 1 + continued, "unparsed".to_string()));
    assert_eq!(v["summary"]["samples"][0]["file"], s(&p));
    assert_eq!(
        v["icids"].as_array().unwrap().len(),
        1,
        "the good lines are used"
    );

    // With a capture: the analysis uses the log; exit 0 (content problems are counted).
    let cap = case("rst-during-data", "capture.pcap");
    let (v, _) = json_of(&["analyze", s(&cap), "--log", s(&p)], 0);
    assert_eq!(v["connections"][0]["icid"], 45001);
    assert_eq!(v["logs"]["unparsed_lines"], unparsed);
}

#[test]
fn enormous_log_line_is_capped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = rst_log();
    let mut text = String::new();
    let mut lines = good.lines();
    text.push_str(lines.next().unwrap());
    text.push('\n');
    text.push_str(&"X".repeat(5 << 20));
    text.push('\n');
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    let p = write(dir.path(), "mail.current", text.as_bytes());
    let v = log_json(&p);
    assert_eq!(v["summary"]["long_lines"], 1);
    assert_eq!(
        samples(&v).into_iter().min(),
        Some((2, "unparsed".to_string()))
    );
    let kept = v["summary"]["samples"][0]["text"].as_str().unwrap().len();
    assert!(kept <= 512, "the sample is cut: {kept}");
    assert_eq!(v["icids"].as_array().unwrap().len(), 1);
}

#[test]
fn log_line_without_a_timestamp_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("continued from a previous file\n{}", rst_log());
    let p = write(dir.path(), "mail.current", text.as_bytes());
    let v = log_json(&p);
    assert_eq!(
        samples(&v).into_iter().min(),
        Some((1, "unparsed".to_string()))
    );
    assert_eq!(v["summary"]["unparsed_lines"], 1);
    assert_eq!(v["icids"][0]["log_outcome"], "aborted");
}

#[test]
fn log_of_another_product_is_refused_with_a_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let cap = case("rst-during-data", "capture.pcap");
    let apache: String = (0..50)
        .map(|i| format!("2024-01-01 10:00:{i:02},123 INFO [main] Server startup in {i} ms\n"))
        .collect();
    let sshd: String = (0..50)
        .map(|i| {
            format!("Jan  1 10:00:{i:02} host sshd[{i}]: Accepted publickey for root port 22\n")
        })
        .collect();
    for (name, text, why) in [
        ("catalina.out", apache, "line 1: no log timestamp"),
        ("auth.log", sshd, "line 1: a line of another program"),
    ] {
        let p = write(dir.path(), name, text.as_bytes());
        for args in [vec!["log", s(&p)], vec!["analyze", s(&cap), "--log", s(&p)]] {
            expect_bad_input(&args, &[s(&p), "not a mail log", "50 lines", why]);
        }
    }
}

#[test]
fn directory_or_device_given_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cap = case("rst-during-data", "capture.pcap");
    expect_bad_input(
        &["analyze", s(&cap), "--log", s(dir.path())],
        &[s(dir.path()), "is a directory, not a log file"],
    );
    if !Path::new("/dev/zero").exists() {
        eprintln!("skipped the device cases: no /dev/zero");
        return;
    }
    // /dev/zero never ends: as a capture its first bytes are refused; as a log it is refused
    // for being a device (it would otherwise be read forever).
    expect_bad_input(
        &["analyze", "/dev/zero"],
        &["/dev/zero", "not a pcap or pcapng capture", "00 00 00 00"],
    );
    expect_bad_input(
        &["analyze", s(&cap), "--log", "/dev/zero"],
        &["/dev/zero", "a device, not a log file"],
    );
    expect_bad_input(&["log", "/dev/zero"], &["/dev/zero", "a device"]);
    // /dev/null is an empty capture (refused) and an empty log (nothing to say).
    expect_bad_input(&["analyze", "/dev/null"], &["/dev/null", "empty"]);
}

#[test]
fn unreadable_log_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = write(dir.path(), "mail.current", rst_log().as_bytes());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&locked).is_ok() {
        eprintln!("skipped: permissions do not stop this user (root) from reading");
        return;
    }
    expect_bad_input(&["log", s(&locked)], &[s(&locked), "ermission denied"]);
    let cap = case("rst-during-data", "capture.pcap");
    expect_bad_input(
        &["analyze", s(&cap), "--log", s(&locked)],
        &[s(&locked), "ermission denied"],
    );
}

// ---------------------------------------------------------------------------------------------
// Standard input closed early, output closed early

fn with_stdin(args: &[&str], input: &[u8]) -> Run {
    run_cmd(icidtrace().args(args).write_stdin(input.to_vec()))
}

#[test]
fn stdin_closed_before_any_byte() {
    let r = with_stdin(&["analyze", "-"], b"");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .contains("stdin: standard input ended before its first byte"),
        "{}",
        r.stderr
    );
}

#[test]
fn stdin_closed_inside_the_file_header() {
    let bytes = capture_bytes("rst-during-data");
    let r = with_stdin(&["analyze", "-"], &bytes[..20]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("stdin: invalid pcap file header"),
        "{}",
        r.stderr
    );
}

#[test]
fn stdin_closed_inside_a_record() {
    let bytes = capture_bytes("rst-during-data");
    let at = records(&bytes)[40];
    let r = with_stdin(&["analyze", "-", "--format", "csv"], &bytes[..at + 30]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let want = format!("stdin: record 41 at byte offset {at}: the input ends inside the record");
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    assert!(r.stderr.contains("(40 records read)"), "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "the connection read so far");
}

/// Spawns icidtrace with stdout to a pipe that is closed after `read` bytes.
fn closed_stdout(args: &[&str], read: usize) -> (i32, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_icidtrace"))
        .args(args)
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn icidtrace");
    let mut stdout = child.stdout.take().unwrap();
    if read > 0 {
        let mut buf = vec![0u8; read];
        stdout.read_exact(&mut buf).expect("the first bytes arrive");
    }
    drop(stdout);
    let out = child.wait_with_output().expect("icidtrace ends");
    (
        out.status.code().expect("exited, not killed by SIGPIPE"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn broken_pipe_in_the_other_output_formats() {
    let burst = case("burst", "capture.pcap");
    let log = case("burst", "mail_logs");
    // Outputs larger than a pipe holds, so that the write meets the closed pipe.
    for (args, read) in [
        (
            vec![
                "analyze",
                s(&burst),
                "--log",
                s(&log),
                "--format",
                "markdown",
            ],
            0,
        ),
        (
            vec!["analyze", s(&burst), "--log", s(&log), "--format", "html"],
            64,
        ),
        (vec!["log", s(&log)], 0),
        (vec!["log", s(&log), "--format", "csv"], 0),
    ] {
        let (code, stderr) = closed_stdout(&args, read);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}: nothing on stderr");
    }
}

#[test]
fn output_to_a_closed_pipe_after_damage_still_exits_3() {
    // The damage warning goes to stderr whatever happens to stdout.
    let dir = tempfile::tempdir().unwrap();
    let bytes = capture_bytes("burst");
    let p = write(dir.path(), "cut.pcap", &bytes[..bytes.len() - 7]);
    let (code, stderr) = closed_stdout(&["analyze", s(&p), "--format", "json"], 0);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(s(&p)) && stderr.contains("record "),
        "{stderr}"
    );
    let _ = std::io::stderr().flush();
}

/// A SYN answered by the server's RST: refused below SMTP, the server's doing, never a session.
#[test]
fn a_syn_answered_with_rst_is_a_refused_connection() {
    let (client, server) = ([203, 0, 113, 6], [192, 0, 2, 25]);
    let syn = Tcp {
        src: client,
        dst: server,
        sport: 40001,
        dport: 25,
        seq: 200,
        ack: 0,
        flags: 0x02,
        payload: b"",
    };
    let rst_ack = Tcp {
        src: server,
        dst: client,
        sport: 25,
        dport: 40001,
        seq: 0,
        ack: 201,
        flags: 0x14,
        payload: b"",
    };
    let pcap = pcap_of([(0, syn.frame()), (300, rst_ack.frame())]);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "refused.pcap", &pcap);
    let (v, _) = json_of(&["analyze", s(&p)], 0);
    let verdict = &v["connections"][0]["verdict"];
    assert_eq!(verdict["layer"], "server", "{verdict}");
    assert_eq!(verdict["initiator"], "server", "{verdict}");
    assert_eq!(verdict["cause"], "connection_refused", "{verdict}");
}
