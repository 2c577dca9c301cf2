//! The command line as a user runs it: `icidtrace analyze` and `icidtrace log` on the bundled
//! captures and logs, checking the answers printed (table, JSON, CSV), the exit codes
//! (0 ran, 2 unusable input or arguments, 3 damaged input) and the one-line error messages.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `captures/<case>/<file>` of this crate.
fn case(name: &str, file: &str) -> PathBuf {
    root().join("captures").join(name).join(file)
}

fn case_capture(name: &str) -> PathBuf {
    case(name, "capture.pcap")
}

/// A file of the shared public captures (read-only).
fn public(name: &str) -> PathBuf {
    root().join("../shared/captures/public").join(name)
}

/// A file of the shared mail logs (read-only).
fn maillog(rel: &str) -> PathBuf {
    root().join("../shared/maillogs").join(rel)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The binary, with a stable environment: no `COLUMNS` (it sets the table width).
fn icidtrace() -> Command {
    let mut cmd = Command::cargo_bin("icidtrace").expect("the icidtrace binary is built");
    cmd.env_remove("COLUMNS");
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

fn run_cmd(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("icidtrace runs");
    let run = Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "icidtrace panicked:\n{}",
        run.stderr
    );
    run
}

fn run(args: &[&str]) -> Run {
    run_cmd(icidtrace().args(args))
}

/// Runs and requires exit code `code`.
fn run_expect(args: &[&str], code: i32) -> Run {
    let r = run(args);
    assert_eq!(
        r.code, code,
        "icidtrace {args:?}: exit code\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

/// Runs, requires exit code 2, no output, and exactly one line on stderr that contains every
/// one of `words`.
fn expect_bad_input(args: &[&str], words: &[&str]) -> String {
    let r = run_expect(args, 2);
    assert_eq!(r.stdout, "", "{args:?}: nothing on stdout");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: one line on stderr, got:\n{}",
        r.stderr
    );
    for w in words {
        assert!(
            lines[0].contains(w),
            "{args:?}: stderr should name {w:?}: {}",
            lines[0]
        );
    }
    lines[0].to_string()
}

/// The expected.json of a case.
fn expected(name: &str) -> Value {
    let text = std::fs::read_to_string(case(name, "expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

fn connections(v: &Value) -> &Vec<Value> {
    v["connections"]
        .as_array()
        .expect("connections is an array")
}

// Used by the BPF filter test only, which needs libpcap.
#[cfg_attr(not(feature = "libpcap"), allow(dead_code))]
fn clients(v: &Value) -> Vec<String> {
    connections(v)
        .iter()
        .map(|c| c["client"].as_str().expect("client").to_string())
        .collect()
}

fn is_rfc3339_utc(v: &Value) -> bool {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t.offset().local_minus_utc() == 0)
}

/// Rewrites TCP port `from` to `to` in a little-endian, Ethernet, IPv4 pcap, fixing the TCP
/// checksum incrementally (RFC 1624): the same connections on another server port.
fn rewrite_port(pcap: &[u8], from: u16, to: u16) -> Vec<u8> {
    let mut d = pcap.to_vec();
    assert_eq!(
        &d[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond pcap"
    );
    assert_eq!(
        u32::from_le_bytes(d[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let fix_sum = |d: &mut [u8], at: usize, old: u16, new: u16| {
        let hc = u16::from_be_bytes([d[at], d[at + 1]]);
        let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        d[at..at + 2].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    };
    let mut off = 24;
    let mut rewritten = 0;
    while off + 16 <= d.len() {
        let incl = u32::from_le_bytes(d[off + 8..off + 12].try_into().unwrap()) as usize;
        let frame = off + 16;
        off = frame + incl;
        let ethertype = u16::from_be_bytes([d[frame + 12], d[frame + 13]]);
        let ip = frame + 14;
        if ethertype != 0x0800 || d[ip + 9] != 6 {
            continue;
        }
        let tcp = ip + usize::from(d[ip] & 0x0f) * 4;
        for k in [0, 2] {
            let port = u16::from_be_bytes([d[tcp + k], d[tcp + k + 1]]);
            if port == from {
                d[tcp + k..tcp + k + 2].copy_from_slice(&to.to_be_bytes());
                fix_sum(&mut d, tcp + 16, from, to);
                rewritten += 1;
            }
        }
    }
    assert!(rewritten > 0, "port {from} not found");
    d
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// analyze: the three formats and -o

#[test]
fn table_shows_the_connection_and_its_verdict() {
    let r = run_expect(&["analyze", s(&case_capture("rst-during-data"))], 0);
    assert_eq!(r.stderr, "");
    let want = &expected("rst-during-data")["connections"][0];
    let out = &r.stdout;
    assert!(out.contains("1 SMTP connection"), "{out}");
    assert!(out.contains(want["client"].as_str().unwrap()), "{out}");
    assert!(out.contains("192.0.2.25:25"), "{out}");
    // The layer, who and how, the phase, and the reason in words.
    assert!(out.contains("network"), "{out}");
    assert!(out.contains("client RST"), "{out}");
    assert!(out.contains("in data"), "{out}");
    assert!(out.contains("RST during DATA"), "{out}");
    assert!(out.contains("no QUIT"), "{out}");
    assert!(out.contains("layers: 1 network"), "{out}");
}

#[test]
fn json_has_the_stable_fields_of_the_design() {
    let r = run_expect(
        &[
            "analyze",
            s(&case_capture("rst-during-data")),
            "--format",
            "json",
        ],
        0,
    );
    assert_eq!(r.stderr, "");
    let v = r.json();
    for key in ["clock", "connections", "unmatched_icids", "summary"] {
        assert!(v.get(key).is_some(), "top-level {key} missing");
    }
    assert!(v["clock"].is_null(), "no log, no clock");
    assert_eq!(v["unmatched_icids"], serde_json::json!([]));
    assert_eq!(v["summary"]["connections"], 1);

    let exp = expected("rst-during-data");
    let want = &exp["connections"][0];
    let conns = connections(&v);
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(c["client"], want["client"]);
    assert_eq!(c["server"], want["server"]);
    assert_eq!(c["first_seen"], want["first_seen"]);
    assert_eq!(c["last_seen"], want["last_seen"]);
    assert!(is_rfc3339_utc(&c["first_seen"]) && is_rfc3339_utc(&c["last_seen"]));
    assert!(c["icid"].is_null(), "no log, no ICID");
    assert_eq!(c["mids"], serde_json::json!([]));
    assert!(c["log_outcome"].is_null());

    let verdict = &c["verdict"];
    for f in ["layer", "initiator", "cause", "phase"] {
        assert_eq!(verdict[f], want["verdict"][f], "verdict.{f}");
    }
    assert_eq!(verdict["layer"], "network");
    assert_eq!(verdict["cause"], "rst_during_data");
    let evidence = verdict["evidence"].as_array().expect("evidence is a list");
    assert!(!evidence.is_empty());
    assert!(
        evidence
            .iter()
            .all(|e| is_rfc3339_utc(&e["at"]) && e["fact"].is_string())
    );

    assert!(c["close"]["first_fin"].is_null());
    assert_eq!(c["close"]["first_rst"]["side"], "client");
    assert_eq!(c["close"]["first_rst"]["at"], want["close"]["first_rst_at"]);

    for f in ["quit", "starttls", "transactions", "completed"] {
        assert_eq!(c["smtp"][f], want["smtp"][f], "smtp.{f}");
    }
}

#[test]
fn csv_has_a_header_and_one_row_per_connection() {
    let cap = case_capture("burst");
    let json = run_expect(&["analyze", s(&cap), "--format", "json"], 0).json();
    let r = run_expect(&["analyze", s(&cap), "--format", "csv"], 0);
    assert_eq!(r.stderr, "");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    for col in [
        "client",
        "server",
        "first_seen",
        "icid",
        "layer",
        "initiator",
        "cause",
        "phase",
    ] {
        assert!(
            header.contains(&col),
            "CSV header lacks {col}: {}",
            lines[0]
        );
    }
    let conns = connections(&json);
    assert_eq!(conns.len(), 25, "burst has 25 connections");
    assert_eq!(lines.len(), 1 + conns.len(), "one row per connection");
    let client_col = header.iter().position(|h| *h == "client").unwrap();
    let layer_col = header.iter().position(|h| *h == "layer").unwrap();
    for (row, c) in lines[1..].iter().zip(conns) {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[client_col], c["client"].as_str().unwrap(), "{row}");
        assert_eq!(
            cells[layer_col],
            c["verdict"]["layer"].as_str().unwrap(),
            "{row}"
        );
    }
}

#[test]
fn output_file_gets_the_report_and_stdout_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cap = case_capture("rst-during-data");
    let stdout_json = run_expect(&["analyze", s(&cap), "--format", "json"], 0).stdout;
    for (format, name) in [
        ("json", "out.json"),
        ("csv", "out.csv"),
        ("table", "out.txt"),
    ] {
        let path = dir.path().join(name);
        let r = run_expect(&["analyze", s(&cap), "--format", format, "-o", s(&path)], 0);
        assert_eq!(r.stdout, "", "{format}: nothing on stdout with -o");
        assert_eq!(r.stderr, "", "{format}");
        let written = std::fs::read_to_string(&path).expect("-o wrote the file");
        assert!(
            written.contains("198.51.100.10:50542"),
            "{format}: {written}"
        );
        if format == "json" {
            assert_eq!(written, stdout_json, "-o and stdout give the same JSON");
        }
    }
    // `-o -` is standard output.
    let r = run_expect(&["analyze", s(&cap), "--format", "json", "-o", "-"], 0);
    assert_eq!(r.stdout, stdout_json);
    assert!(!root().join("-").exists(), "no file named -");
}

#[test]
fn output_file_that_cannot_be_written_or_is_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let cap = case_capture("rst-during-data");
    let missing_dir = dir.path().join("no/such/dir/out.json");
    expect_bad_input(
        &["analyze", s(&cap), "-o", s(&missing_dir)],
        &[s(&missing_dir), "cannot write"],
    );
    // -o naming the capture would destroy it.
    let copy = dir.path().join("copy.pcap");
    std::fs::copy(&cap, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    expect_bad_input(&["analyze", s(&copy), "-o", s(&copy)], &[s(&copy), "input"]);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "the capture is untouched"
    );
}

// ---------------------------------------------------------------------------------------------
// analyze: inputs (several files, stdin, gzip)

#[test]
fn several_files_are_merged_in_time_order() {
    // Given in reverse time order: rst-during-data (16:29:58) before delivered-quit (16:29:49).
    let late = case_capture("rst-during-data");
    let early = case_capture("delivered-quit");
    let v = run_expect(&["analyze", s(&late), s(&early), "--format", "json"], 0).json();
    let want = [
        expected("delivered-quit")["connections"][0].clone(),
        expected("rst-during-data")["connections"][0].clone(),
    ];
    let conns = connections(&v);
    assert_eq!(conns.len(), 2);
    for (c, w) in conns.iter().zip(&want) {
        assert_eq!(c["client"], w["client"]);
        assert_eq!(c["first_seen"], w["first_seen"]);
        assert_eq!(c["verdict"]["cause"], w["verdict"]["cause"]);
    }
    assert_eq!(v["summary"]["connections"], 2);

    let table = run_expect(&["analyze", s(&late), s(&early)], 0).stdout;
    assert!(table.contains("2 SMTP connections"), "{table}");
    let quit = table.find("clean QUIT").expect("delivered-quit row");
    let rst = table.find("RST during DATA").expect("rst-during-data row");
    assert!(quit < rst, "rows in time order:\n{table}");
}

#[test]
fn standard_input_gives_the_same_connections_as_the_file() {
    let cap = case_capture("burst");
    let from_file = run_expect(&["analyze", s(&cap), "--format", "json"], 0).json();
    let bytes = std::fs::read(&cap).unwrap();
    let r = run_cmd(
        icidtrace()
            .args(["analyze", "-", "--format", "json"])
            .write_stdin(bytes),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let from_stdin = r.json();
    assert_eq!(connections(&from_stdin).len(), 25);
    assert_eq!(from_stdin["connections"], from_file["connections"]);

    // `-` twice cannot work.
    let r = run_cmd(
        icidtrace()
            .args(["analyze", "-", "-"])
            .write_stdin(std::fs::read(&cap).unwrap()),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("standard input"), "{}", r.stderr);
}

#[test]
fn gzip_capture_gives_the_same_connections_as_the_plain_one() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["burst", "starttls-rst", "ipv6-delivered"] {
        let cap = case_capture(name);
        let gz = dir.path().join(format!("{name}.pcap.gz"));
        std::fs::write(&gz, gzip(&std::fs::read(&cap).unwrap())).unwrap();
        let plain = run_expect(&["analyze", s(&cap), "--format", "json"], 0).json();
        let packed = run_expect(&["analyze", s(&gz), "--format", "json"], 0).json();
        assert!(!connections(&plain).is_empty(), "{name}");
        assert_eq!(packed["connections"], plain["connections"], "{name}");
        assert_eq!(packed["captures"]["files"][0]["gzip"], true, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// analyze: --filter and --port

// BPF filters need libpcap (the default feature); tests/cli_manners.rs checks the message
// of a build without it.
#[cfg(feature = "libpcap")]
#[test]
fn bpf_filter_keeps_or_drops_connections() {
    let cap = case_capture("burst");
    let all = run_expect(&["analyze", s(&cap), "--format", "json"], 0).json();
    let kept = run_expect(
        &[
            "analyze",
            s(&cap),
            "--filter",
            "host 198.51.100.10",
            "--format",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(clients(&kept), clients(&all));
    assert_eq!(kept["connections"], all["connections"]);

    let none = run_expect(
        &["analyze", s(&cap), "--filter", "port 9", "--format", "json"],
        0,
    )
    .json();
    assert_eq!(connections(&none).len(), 0);
    assert_eq!(none["summary"]["connections"], 0);
    let table = run_expect(&["analyze", s(&cap), "--filter", "port 9"], 0).stdout;
    assert!(table.contains("no SMTP connection found"), "{table}");
}

// BPF filters need libpcap (the default feature); tests/cli_manners.rs checks the message
// of a build without it.
#[cfg(feature = "libpcap")]
#[test]
fn bad_bpf_filter_is_refused_with_its_text() {
    let cap = case_capture("rst-during-data");
    expect_bad_input(
        &["analyze", s(&cap), "--filter", "hst 198.51.100.10"],
        &["hst 198.51.100.10", "filter"],
    );
}

#[test]
fn port_2525_is_smtp_by_default() {
    let v = run_expect(
        &[
            "analyze",
            s(&public("ark-smtp-decrypted.pcap")),
            "--format",
            "json",
        ],
        0,
    )
    .json();
    let conns = connections(&v);
    assert_eq!(conns.len(), 4);
    let on_2525: Vec<&Value> = conns
        .iter()
        .filter(|c| c["server"].as_str().unwrap().ends_with(":2525"))
        .collect();
    assert_eq!(on_2525.len(), 2, "{conns:#?}");
    for c in on_2525 {
        assert_eq!(c["server"], "45.0.0.15:2525");
        assert_eq!(c["verdict"]["layer"], "none");
        assert_eq!(c["smtp"]["completed"], 1);
        assert_eq!(c["smtp"]["quit"], true);
    }
}

#[test]
fn server_greeting_220_on_an_unknown_port_is_smtp() {
    // delivered-quit with the server's port 25 rewritten to 10025.
    let dir = tempfile::tempdir().unwrap();
    let moved = dir.path().join("delivered-10025.pcap");
    let bytes = std::fs::read(case_capture("delivered-quit")).unwrap();
    std::fs::write(&moved, rewrite_port(&bytes, 25, 10025)).unwrap();
    let want = &expected("delivered-quit")["connections"][0];
    for extra in [&[][..], &["--port", "10025"][..]] {
        let mut args = vec!["analyze", s(&moved), "--format", "json"];
        args.extend_from_slice(extra);
        let v = run_expect(&args, 0).json();
        let conns = connections(&v);
        assert_eq!(conns.len(), 1, "{extra:?}");
        assert_eq!(conns[0]["server"], "192.0.2.25:10025");
        assert_eq!(conns[0]["client"], want["client"]);
        for f in ["layer", "initiator", "cause", "phase"] {
            assert_eq!(conns[0]["verdict"][f], want["verdict"][f], "{extra:?} {f}");
        }
    }
}

#[test]
fn port_flag_finds_smtp_without_a_greeting() {
    // Only the client's side was captured: no 220 to recognise SMTP by on a port not known.
    let dir = tempfile::tempdir().unwrap();
    let moved = dir.path().join("one-side-10025.pcap");
    let bytes = std::fs::read(public("zeek-smtp-one-side-only.pcap")).unwrap();
    std::fs::write(&moved, rewrite_port(&bytes, 25, 10025)).unwrap();

    let without = run_expect(&["analyze", s(&moved), "--format", "json"], 0).json();
    assert_eq!(connections(&without).len(), 0);
    assert_eq!(without["summary"]["other_tcp_connections"], 1);

    let with = run_expect(
        &["analyze", s(&moved), "--port", "10025", "--format", "json"],
        0,
    )
    .json();
    let conns = connections(&with);
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["server"], "192.150.186.11:10025");
    assert_eq!(conns[0]["smtp"]["quit"], true);

    // Port 0 is not a port.
    let r = run_expect(&["analyze", s(&moved), "--port", "0"], 2);
    assert!(r.stderr.contains("--port"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// analyze: unusable and damaged input

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pcap");
    expect_bad_input(&["analyze", s(&missing)], &[s(&missing), "no such file"]);
    // Also when another, good file comes first.
    expect_bad_input(
        &["analyze", s(&case_capture("rst-during-data")), s(&missing)],
        &[s(&missing)],
    );
}

#[test]
fn directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    expect_bad_input(&["analyze", s(dir.path())], &[s(dir.path()), "directory"]);
}

#[test]
fn empty_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    expect_bad_input(&["analyze", s(&empty)], &[s(&empty), "empty"]);
}

#[test]
fn text_file_is_not_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("mail_logs.pcap");
    std::fs::copy(case("rst-during-data", "mail_logs"), &text).unwrap();
    expect_bad_input(&["analyze", s(&text)], &[s(&text), "not a pcap"]);
    // A log given as the capture by mistake, as the user would.
    let log = case("rst-during-data", "mail_logs");
    expect_bad_input(&["analyze", s(&log)], &[s(&log), "text"]);
}

#[test]
fn unreadable_file_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked.pcap");
    std::fs::copy(case_capture("rst-during-data"), &locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&locked).is_ok() {
        // Running as root (or with CAP_DAC_OVERRIDE): permissions do not block reading.
        eprintln!("skipped: permissions do not stop this user from reading");
        return;
    }
    expect_bad_input(&["analyze", s(&locked)], &[s(&locked), "ermission"]);
}

#[test]
fn truncated_header_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.pcap");
    let bytes = std::fs::read(case_capture("rst-during-data")).unwrap();
    std::fs::write(&tiny, &bytes[..10]).unwrap();
    expect_bad_input(&["analyze", s(&tiny)], &[s(&tiny), "header"]);
}

#[test]
fn damaged_capture_exits_3_with_the_table_and_the_record() {
    let cap = public("sv-smtp-to-comma-damaged.pcap");
    let r = run_expect(&["analyze", s(&cap)], 3);
    // The results cover what could be read: the one connection, still open at the damage.
    assert!(r.stdout.contains("1 SMTP connection"), "{}", r.stdout);
    assert!(r.stdout.contains("10.7.29.101:49898"), "{}", r.stdout);
    assert!(r.stdout.contains("unknown"), "{}", r.stdout);
    // The warning is folded to the table's width: compare with the whitespace folded too.
    let said = format!("{}{}", r.stdout, r.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(said.contains("record 19"), "{said}");
    assert!(said.contains("byte offset 3695"), "{said}");

    // With JSON on stdout, the warning goes to stderr (and into the report's problems).
    let r = run_expect(&["analyze", s(&cap), "--format", "json"], 3);
    let v = r.json();
    assert_eq!(connections(&v).len(), 1);
    assert!(r.stderr.contains("record 19"), "{}", r.stderr);
    assert!(r.stderr.contains(s(&cap)), "{}", r.stderr);
    assert!(
        v["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("record 19"))
    );
}

#[test]
fn truncated_gzip_capture_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let gz = gzip(&std::fs::read(case_capture("rst-during-data")).unwrap());
    let cut = dir.path().join("cut.pcap.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let r = run_expect(&["analyze", s(&cut), "--format", "csv"], 3);
    assert!(r.stderr.contains(s(&cut)), "{}", r.stderr);
    assert!(r.stderr.contains("gzip"), "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "the connection read so far");
}

// ---------------------------------------------------------------------------------------------
// Broken pipe: `icidtrace ... | head` ends quietly

/// Spawns icidtrace with stdout to a pipe, reads `read` bytes, closes the pipe, and returns
/// the exit code and stderr.
fn run_with_closed_stdout(args: &[&str], read: usize) -> (i32, String) {
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
fn closed_stdout_ends_quietly() {
    let burst = case_capture("burst");
    let big = public("sv-mime-stream-depth.pcap");
    // The burst's JSON (about 170 kB) is more than a pipe holds: the write meets the closed pipe.
    for (args, read) in [
        (vec!["analyze", s(&burst), "--format", "json"], 16),
        (vec!["analyze", s(&burst), "--format", "json"], 0),
        (vec!["analyze", s(&burst), "--format", "csv"], 0),
        (vec!["analyze", s(&burst)], 0),
        (vec!["analyze", s(&big), s(&burst), "--format", "json"], 100),
        (
            vec![
                "log",
                s(&maillog("public/cribl-cisco-esa-mailtext-sample.log")),
                "--format",
                "json",
            ],
            10,
        ),
    ] {
        let (code, stderr) = run_with_closed_stdout(&args, read);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}: nothing on stderr");
    }
}

// ---------------------------------------------------------------------------------------------
// analyze --log

#[test]
fn log_matches_the_connection_to_its_icid() {
    let exp = expected("rst-during-data");
    let want = &exp["connections"][0]["log"];
    let cap = case_capture("rst-during-data");
    let log = case("rst-during-data", "mail_logs");
    let r = run_expect(
        &["analyze", s(&cap), "--log", s(&log), "--format", "json"],
        0,
    );
    assert_eq!(r.stderr, "");
    let v = r.json();
    let c = &connections(&v)[0];
    assert_eq!(c["icid"], want["icid"]);
    assert_eq!(c["mids"], want["mids"]);
    assert_eq!(c["log_outcome"], "aborted");
    assert_eq!(c["log_outcome"], want["log_outcome"]);
    assert!(v["clock"]["supporting_pairs"].as_u64().unwrap() >= 1);
    // The log clock: -18000 s header plus a few seconds of skew.
    let offset = v["clock"]["offset_seconds"].as_f64().unwrap();
    let truth = exp["clock"]["log_minus_utc_seconds"].as_f64().unwrap();
    assert!(
        (offset - truth).abs() < 1.5,
        "clock offset {offset}, truth {truth}"
    );
    assert_eq!(v["summary"]["matched"], 1);

    let table = run_expect(&["analyze", s(&cap), "--log", s(&log)], 0).stdout;
    assert!(table.contains(&want["icid"].to_string()), "{table}");
    assert!(table.contains("aborted"), "{table}");
    assert!(table.contains("log clock"), "{table}");
}

#[test]
fn clock_offset_and_log_tz_are_accepted() {
    let exp = expected("rst-during-data");
    let icid = &exp["connections"][0]["log"]["icid"];
    let cap = case_capture("rst-during-data");
    let log = case("rst-during-data", "mail_logs");
    let v = run_expect(
        &[
            "analyze",
            s(&cap),
            "--log",
            s(&log),
            "--clock-offset",
            "-17997",
            "--format",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(connections(&v)[0]["icid"], *icid);
    assert_eq!(v["clock"]["source"], "given");
    assert_eq!(v["clock"]["offset_seconds"].as_f64(), Some(-17997.0));

    let v = run_expect(
        &[
            "analyze",
            s(&cap),
            "--log",
            s(&log),
            "--log-tz",
            "America/New_York",
            "--format",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(connections(&v)[0]["icid"], *icid);
    assert_eq!(connections(&v)[0]["log_outcome"], "aborted");
    assert_eq!(v["clock"]["zone"], "America/New_York");
}

#[test]
fn log_tz_must_be_a_zone_and_needs_a_log() {
    let cap = case_capture("rst-during-data");
    let log = case("rst-during-data", "mail_logs");
    let r = run_expect(
        &[
            "analyze",
            s(&cap),
            "--log",
            s(&log),
            "--log-tz",
            "Not/AZone",
        ],
        2,
    );
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("Not/AZone"), "{}", r.stderr);
    assert!(r.stderr.contains("time zone"), "{}", r.stderr);

    let r = run_expect(&["analyze", s(&cap), "--log-tz", "UTC"], 2);
    assert!(r.stderr.contains("--log"), "{}", r.stderr);
    let r = run_expect(&["analyze", s(&cap), "--clock-offset", "3600"], 2);
    assert!(r.stderr.contains("--log"), "{}", r.stderr);
    let r = run_expect(
        &[
            "analyze",
            s(&cap),
            "--log",
            s(&log),
            "--log-tz",
            "UTC",
            "--clock-offset",
            "0",
        ],
        2,
    );
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
}

#[test]
fn missing_log_with_a_capture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("mail.current");
    expect_bad_input(
        &[
            "analyze",
            s(&case_capture("rst-during-data")),
            "--log",
            s(&missing),
        ],
        &[s(&missing)],
    );
}

// ---------------------------------------------------------------------------------------------
// icidtrace log

#[test]
fn log_command_shows_the_icid_and_its_outcome() {
    let log = maillog("technote/receiving-aborted-fin-rst.log");
    let r = run_expect(&["log", s(&log)], 0);
    assert_eq!(r.stderr, "");
    assert!(r.stdout.contains("10293"), "{}", r.stdout);
    assert!(r.stdout.contains("aborted"), "{}", r.stdout);
    assert!(r.stdout.contains("192.168.0.200"), "{}", r.stdout);

    let v = run_expect(&["log", s(&log), "--format", "json"], 0).json();
    let icids = v["icids"].as_array().expect("icids");
    assert_eq!(icids.len(), 1);
    assert_eq!(icids[0]["icid"], 10293);
    assert_eq!(icids[0]["log_outcome"], "aborted");
    assert_eq!(icids[0]["mids"], serde_json::json!([1404]));
    assert_eq!(icids[0]["lost"], true);

    let csv = run_expect(&["log", s(&log), "--format", "csv"], 0).stdout;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains("10293"), "{csv}");
}

#[test]
fn log_command_tells_aborted_by_sender() {
    let log = maillog("technote/receiving-aborted-by-sender.log");
    let v = run_expect(&["log", s(&log), "--format", "json"], 0).json();
    let outcomes: Vec<&str> = v["icids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["log_outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"aborted_by_sender"), "{outcomes:?}");
}

#[test]
fn log_command_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("mail.current");
    expect_bad_input(&["log", s(&missing)], &[s(&missing)]);
    expect_bad_input(&["log", s(dir.path())], &[s(dir.path()), "directory"]);
}

#[test]
fn log_command_damaged_gzip_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(maillog("public/cribl-cisco-esa-mailtext-sample.log")).unwrap();
    let gz = gzip(&text);
    let cut = dir.path().join("mail.current.gz");
    std::fs::write(&cut, &gz[..gz.len() * 3 / 4]).unwrap();
    let r = run_expect(&["log", s(&cut), "--format", "json"], 3);
    let v = r.json();
    assert!(!v["icids"].as_array().unwrap().is_empty(), "what was read");
    assert!(r.stderr.contains(s(&cut)), "{}", r.stderr);
    assert!(r.stderr.contains("gzip"), "{}", r.stderr);
}

#[test]
fn analyze_with_a_damaged_log_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(case("burst", "mail_logs")).unwrap();
    let gz = gzip(&text);
    let cut = dir.path().join("mail_logs.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let r = run_expect(
        &[
            "analyze",
            s(&case_capture("burst")),
            "--log",
            s(&cut),
            "--format",
            "json",
        ],
        3,
    );
    assert_eq!(connections(&r.json()).len(), 25);
    assert!(r.stderr.contains(s(&cut)), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// Help, version, arguments

#[test]
fn help_mentions_exit_codes_and_examples() {
    for args in [&["--help"][..], &["analyze", "--help"], &["log", "--help"]] {
        let r = run_expect(args, 0);
        let h = &r.stdout;
        assert!(h.contains("Exit codes"), "{args:?}: {h}");
        assert!(h.contains("Examples"), "{args:?}: {h}");
        assert!(h.contains("  2  "), "{args:?}: {h}");
        assert!(h.contains("  3  "), "{args:?}: {h}");
    }
    let h = run_expect(&["analyze", "--help"], 0).stdout;
    for flag in [
        "--filter",
        "--port",
        "--format",
        "--output",
        "--width",
        "--log",
        "--log-tz",
        "--clock-offset",
    ] {
        assert!(h.contains(flag), "{flag}: {h}");
    }
    assert!(h.contains("icidtrace analyze -"), "stdin example: {h}");
    // The default width when stdout is not a terminal.
    assert!(h.contains("100"), "{h}");
    assert!(h.contains("not a terminal"), "{h}");
}

#[test]
fn version_prints_the_version() {
    // The version, and what the build can do (the libpcap feature or not).
    let r = run_expect(&["--version"], 0);
    let features = if cfg!(feature = "libpcap") {
        "(libpcap)"
    } else {
        "(pure Rust, no libpcap)"
    };
    assert_eq!(
        r.stdout.trim(),
        format!("icidtrace {} {features}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_arguments_exit_2() {
    let cap = case_capture("rst-during-data");
    for args in [
        &[][..],
        &["analyze"],
        &["analyze", s(&cap), "--format", "xml"],
        &["analyze", s(&cap), "--width", "0"],
        &["analyze", s(&cap), "--width", "wide"],
        &["analyze", s(&cap), "--no-such-flag"],
        &["frobnicate"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stdout, "", "{args:?}");
        assert!(!r.stderr.is_empty(), "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Width

fn longest_line(text: &str) -> (usize, String) {
    text.lines()
        .map(|l| (l.chars().count(), l.to_string()))
        .max()
        .unwrap_or_default()
}

/// Runs with `--width 80` and requires every line of stdout to fit in 80 characters.
fn assert_fits_80(args: &[&str]) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--width", "80"]);
    let r = run(&all);
    assert!(r.code == 0 || r.code == 3, "{all:?}: {}", r.stderr);
    let (n, line) = longest_line(&r.stdout);
    assert!(n <= 80, "{all:?}: a line of {n} characters:\n{line}");
}

#[test]
fn width_80_verdict_table_fits() {
    let dir = tempfile::tempdir().unwrap();
    let long_name = dir
        .path()
        .join("a-capture-file-with-a-rather-long-name-taken-on-the-esa.pcap");
    std::fs::copy(case_capture("rst-during-data"), &long_name).unwrap();
    for cap in [
        case_capture("rst-during-data"),
        case_capture("ipv6-delivered"),
        case_capture("starttls-rst"),
        long_name,
        public("ark-smtp-decrypted.pcap"),
        public("sv-smtp-errors.pcap"),
        public("zeek-communityid-ipv6-smtp.pcap"),
    ] {
        assert_fits_80(&["analyze", s(&cap)]);
    }
    // Several files, and with the log (ICID column, clock line).
    assert_fits_80(&[
        "analyze",
        s(&case_capture("rst-during-data")),
        s(&case_capture("delivered-quit")),
        s(&case_capture("idle-timeout")),
    ]);
    assert_fits_80(&[
        "analyze",
        s(&case_capture("burst")),
        "--log",
        s(&case("burst", "mail_logs")),
    ]);
}

#[test]
fn width_80_warning_lines_fit() {
    // The damage warning under the table names the file, record and offset.
    assert_fits_80(&["analyze", s(&public("sv-smtp-to-comma-damaged.pcap"))]);
}

#[test]
fn width_80_log_table_fits() {
    for log in [
        "technote/receiving-aborted-fin-rst.log",
        "public/cribl-cisco-esa-mailtext-sample.log",
        "public/returnpath-ironportParser-doc-examples.log",
    ] {
        assert_fits_80(&["log", s(&maillog(log))]);
    }
}

#[test]
fn default_width_without_a_terminal_is_100_and_columns_is_honoured() {
    let cap = public("sv-smtp-errors.pcap");
    // The table rule spans the whole width.
    let rule = |out: &str| {
        out.lines()
            .filter(|l| l.starts_with('─'))
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
    };
    let r = run_expect(&["analyze", s(&cap)], 0);
    let default = rule(&r.stdout);
    assert!(default <= 100, "{}", r.stdout);
    let r = run_expect(&["analyze", s(&cap), "--width", "100"], 0);
    assert_eq!(rule(&r.stdout), default, "default is --width 100");

    let r = run_cmd(icidtrace().args(["analyze", s(&cap)]).env("COLUMNS", "72"));
    assert_eq!(r.code, 0);
    assert!(rule(&r.stdout) <= 72, "{}", r.stdout);
    // --width wins over COLUMNS.
    let r = run_cmd(
        icidtrace()
            .args(["analyze", s(&cap), "--width", "100"])
            .env("COLUMNS", "72"),
    );
    assert_eq!(rule(&r.stdout), default);
}

#[test]
fn a_capture_given_as_the_log_is_refused() {
    // Arguments swapped by mistake: the "log" has no mail_logs line at all.
    let cap = case_capture("rst-during-data");
    expect_bad_input(
        &["analyze", s(&cap), "--log", s(&cap), "--format", "json"],
        &[s(&cap), "not a mail log"],
    );
    expect_bad_input(&["log", s(&cap)], &[s(&cap), "not a mail log"]);
    // An empty log is only empty (a log just rotated): not an error.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("mail.current");
    std::fs::write(&empty, b"").unwrap();
    let v = run_expect(&["log", s(&empty), "--format", "json"], 0).json();
    assert_eq!(v["icids"], serde_json::json!([]));
}

#[test]
fn full_disk_is_an_error_not_a_panic() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    let cap = case_capture("burst");
    let f = std::fs::OpenOptions::new().write(true).open(full).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_icidtrace"))
        .args(["analyze", s(&cap)])
        .stdout(f)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("icidtrace: standard output: cannot write"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    expect_bad_input(
        &["analyze", s(&cap), "-o", "/dev/full"],
        &["/dev/full", "cannot write"],
    );
}

#[test]
fn log_tz_clock_is_log_time_minus_utc_like_the_others() {
    // `clock.offset_seconds` is "log time minus UTC" (the zone plus the skew) whatever set it:
    // found automatically, given with --clock-offset, or from --log-tz's zone plus the skew.
    let exp = expected("rst-during-data");
    let truth = exp["clock"]["log_minus_utc_seconds"].as_f64().unwrap();
    let cap = case_capture("rst-during-data");
    let log = case("rst-during-data", "mail_logs");
    let v = run_expect(
        &[
            "analyze",
            s(&cap),
            "--log",
            s(&log),
            "--log-tz",
            "America/New_York",
            "--format",
            "json",
        ],
        0,
    )
    .json();
    let offset = v["clock"]["offset_seconds"].as_f64().unwrap();
    assert!(
        (offset - truth).abs() < 1.5,
        "--log-tz America/New_York: clock.offset_seconds {offset}, log minus UTC is {truth}"
    );
}

// ---------------------------------------------------------------------------------------------
// --format jsonl

/// The lines of a streaming run: the connections, then the closing line.
fn jsonl(args: &[&str], code: i32) -> (Vec<Value>, Value) {
    let r = run_expect(args, code);
    let mut lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let closing = lines.pop().expect("a closing line");
    (lines, closing)
}

/// Each connection's line is the JSON report's object for it (numbered in the order the
/// connections ended), and the closing line has the report's summary.
#[test]
fn jsonl_lines_are_the_reports_connections_and_summary() {
    for name in ["burst", "rst-during-data", "pipelining", "fw-injected-rst"] {
        let cap = case_capture(name);
        let report = run_expect(&["analyze", s(&cap), "--format", "json"], 0).json();
        let (lines, closing) = jsonl(&["analyze", s(&cap), "--format", "jsonl"], 0);
        let conns = report["connections"].as_array().expect("connections");
        assert_eq!(lines.len(), conns.len(), "{name}");
        let key = |c: &Value| (c["client"].to_string(), c["first_seen"].to_string());
        for line in &lines {
            let mut c = line["connection"].clone();
            let mut same = conns
                .iter()
                .find(|r| key(r) == key(&c))
                .unwrap_or_else(|| panic!("{name}: {c} not in the report"))
                .clone();
            // Only the numbering differs (order of ending, not of starting).
            c["id"] = Value::Null;
            same["id"] = Value::Null;
            assert_eq!(c, same, "{name}");
        }
        assert_eq!(closing["summary"], report["summary"], "{name}");
        assert_eq!(closing["captures"], report["captures"], "{name}");
    }
}

/// Filters apply line by line; --fail-on sees the connections written.
#[test]
fn jsonl_filters_and_fail_on() {
    let cap = case_capture("burst");
    let (all, _) = jsonl(&["analyze", s(&cap), "--format", "jsonl"], 0);
    let aborted = all
        .iter()
        .filter(|l| l["connection"]["verdict"]["layer"] != "none")
        .count();
    assert!(aborted > 0 && aborted < all.len(), "burst has both kinds");
    let (some, closing) = jsonl(
        &["analyze", s(&cap), "--format", "jsonl", "--only", "aborted"],
        0,
    );
    assert_eq!(some.len(), aborted);
    assert_eq!(
        closing["summary"]["connections"],
        all.len(),
        "counts are of all"
    );
    let (_, _) = jsonl(
        &[
            "analyze",
            s(&cap),
            "--format",
            "jsonl",
            "--fail-on",
            "aborted",
        ],
        1,
    );
}

#[test]
fn jsonl_refuses_what_needs_the_whole_report() {
    let cap = case_capture("rst-during-data");
    let log = case("rst-during-data", "mail_logs");
    expect_bad_input(
        &["analyze", s(&cap), "--format", "jsonl", "--log", s(&log)],
        &["jsonl", "--log"],
    );
    expect_bad_input(
        &["analyze", s(&cap), "--format", "jsonl", "--redact"],
        &["jsonl", "redact"],
    );
    expect_bad_input(
        &["analyze", s(&cap), "--format", "jsonl", "--sort", "verdict"],
        &["jsonl", "--sort"],
    );
}
