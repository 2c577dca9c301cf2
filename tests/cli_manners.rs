//! The command line's manners: selection (`--client`, `--server`, `--since`, `--until`,
//! `--only`, `--sort`) in every output format, colour (`--color`, `NO_COLOR`), `-v`,
//! `--fail-on` and the exit codes, the pure-Rust build's `--filter`, `--version`, `--help`, and
//! the README's (and the user guide's) examples run as written.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use clap::Parser;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn case(name: &str, file: &str) -> String {
    root()
        .join("captures")
        .join(name)
        .join(file)
        .to_string_lossy()
        .into_owned()
}

fn cap(name: &str) -> String {
    case(name, "capture.pcap")
}

fn log(name: &str) -> String {
    case(name, "mail_logs")
}

/// The binary, with a stable environment: no `COLUMNS`, no `NO_COLOR`.
fn icidtrace() -> Command {
    let mut cmd = Command::cargo_bin("icidtrace").expect("the icidtrace binary is built");
    cmd.env_remove("COLUMNS").env_remove("NO_COLOR");
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
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

fn run_cmd(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("icidtrace runs");
    let r = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    };
    assert!(!r.stderr.contains("panicked"), "panic:\n{}", r.stderr);
    r
}

fn run(args: &[&str]) -> Run {
    run_cmd(icidtrace().args(args))
}

fn run_expect(args: &[&str], code: i32) -> Run {
    let r = run(args);
    assert_eq!(
        r.code, code,
        "icidtrace {args:?}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

/// Exit code 2, nothing on stdout, one line on stderr naming every one of `words`.
fn expect_bad(args: &[&str], words: &[&str]) -> String {
    let r = run_expect(args, 2);
    assert_eq!(r.stdout, "", "{args:?}");
    let first = r.stderr.lines().next().unwrap_or_default().to_string();
    for w in words {
        assert!(
            r.stderr.contains(w),
            "{args:?}: stderr should name {w:?}:\n{}",
            r.stderr
        );
    }
    first
}

fn conns(v: &Value) -> &Vec<Value> {
    v["connections"].as_array().expect("connections")
}

fn ids(v: &Value) -> Vec<u64> {
    conns(v).iter().map(|c| c["id"].as_u64().unwrap()).collect()
}

fn is_aborted(c: &Value) -> bool {
    c["verdict"]["layer"] != "none"
}

/// The whole burst with its log, as JSON.
fn burst() -> Value {
    run_expect(
        &[
            "analyze",
            &cap("burst"),
            "--log",
            &log("burst"),
            "--format",
            "json",
        ],
        0,
    )
    .json()
}

const ESC: &str = "\u{1b}[";

/// The text without ANSI escape sequences (CSI ... letter).
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A log for the rst-during-data capture that says the sender quit: wire and log disagree.
fn disagreeing_log(dir: &Path) -> String {
    let text = std::fs::read_to_string(log("rst-during-data")).unwrap();
    let changed: String = text
        .lines()
        .filter(|l| !l.ends_with("ICID 45001 lost"))
        .map(|l| {
            if l.ends_with("Receiving aborted") {
                format!("{l} by sender\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let path = dir.join("mail_logs");
    std::fs::write(&path, changed).unwrap();
    path.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------------
// Selection: what is kept

#[test]
fn only_aborted_keeps_the_aborted_connections_with_their_ids() {
    let all = burst();
    let want: Vec<u64> = conns(&all)
        .iter()
        .filter(|c| is_aborted(c))
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(want.len(), 6, "burst: 3 quit-after-rcpt, 3 rst-before-data");
    let v = run_expect(
        &[
            "analyze",
            &cap("burst"),
            "--log",
            &log("burst"),
            "--only",
            "aborted",
            "--format",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(ids(&v), want, "the same ids, in start order");
    // Each kept connection is the same object as in the whole report.
    for c in conns(&v) {
        let id = c["id"].as_u64().unwrap();
        assert_eq!(*c, conns(&all)[id as usize - 1], "#{id}");
    }
    // The counts stay those of everything read; the selection says what is shown.
    assert_eq!(v["summary"]["connections"], 25);
    assert_eq!(v["summary"]["by_layer"], all["summary"]["by_layer"]);
    let sel = &v["summary"]["selection"];
    assert_eq!(sel["shown"], 6);
    assert_eq!(sel["of"], 25);
    assert_eq!(sel["only"], serde_json::json!(["aborted"]));
    assert_eq!(sel["sort"], "start");
    // Without a selection, no selection object (the JSON is what it always was).
    assert!(all["summary"].get("selection").is_none());
}

#[test]
fn client_and_server_prefixes() {
    let c = cap("burst");
    let count = |extra: &[&str]| {
        let mut args = vec!["analyze", c.as_str(), "--format", "json"];
        args.extend_from_slice(extra);
        conns(&run_expect(&args, 0).json()).len()
    };
    assert_eq!(count(&["--client", "198.51.100.10"]), 25);
    assert_eq!(count(&["--client", "198.51.100.0/24"]), 25);
    assert_eq!(count(&["--client", "198.51.100.11"]), 0);
    assert_eq!(
        count(&["--client", "203.0.113.0/24", "--client", "198.51.0.0/16"]),
        25
    );
    assert_eq!(count(&["--server", "192.0.2.25/32"]), 25);
    assert_eq!(count(&["--server", "192.0.2.26"]), 0);
    assert_eq!(
        count(&["--client", "0.0.0.0/0", "--server", "192.0.2.0/24"]),
        25
    );
    assert_eq!(
        count(&["--client", "2001:db8::/32"]),
        0,
        "IPv6 prefix, IPv4 clients"
    );

    // IPv6, also written as in the table ([addr]).
    let v6 = cap("ipv6-delivered");
    for p in ["2001:db8:1::/48", "[2001:db8:1::10]", "2001:db8::/32"] {
        let v = run_expect(&["analyze", &v6, "--client", p, "--format", "json"], 0).json();
        assert_eq!(conns(&v).len(), 1, "{p}");
    }

    // Nothing kept: the table says so, not "no SMTP connection found".
    let r = run_expect(&["analyze", &c, "--client", "203.0.113.7"], 0);
    assert!(
        r.stdout.contains("shown: 0 of 25 connections"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("no connection matches the selection"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("client 203.0.113.7"), "{}", r.stdout);
}

#[test]
fn since_and_until_keep_the_connections_open_in_the_window() {
    let all = burst();
    let list = conns(&all);
    // The window is the start of #10 to the start of #14.
    let t0 = list[9]["first_seen"].as_str().unwrap().to_string();
    let t1 = list[13]["first_seen"].as_str().unwrap().to_string();
    let want: Vec<u64> = list
        .iter()
        .filter(|c| {
            c["last_seen"].as_str().unwrap() >= t0.as_str()
                && c["first_seen"].as_str().unwrap() <= t1.as_str()
        })
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert!(want.len() >= 5 && want.len() < 25, "{want:?}");
    let v = run_expect(
        &[
            "analyze",
            &cap("burst"),
            "--since",
            &t0,
            "--until",
            &t1,
            "--format",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(ids(&v), want);
    assert_eq!(
        v["summary"]["selection"]["since"],
        Value::String(t0.clone())
    );
    assert_eq!(
        v["summary"]["selection"]["until"],
        Value::String(t1.clone())
    );

    // The same instants written in other forms select the same connections.
    let t = chrono::DateTime::parse_from_rfc3339(&t0).unwrap();
    let utc_plain = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let berlin = t
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    let new_york = t
        .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap())
        .format("%Y-%m-%dT%H:%M:%S%.6f-05:00")
        .to_string();
    let since_ids = |since: &str| {
        ids(&run_expect(
            &[
                "analyze",
                &cap("burst"),
                "--since",
                since,
                "--format",
                "json",
            ],
            0,
        )
        .json())
    };
    let reference = since_ids(&t0);
    assert!(reference.len() < 25);
    for form in [
        utc_plain.clone(),
        format!("{utc_plain} UTC"),
        format!("{berlin} +01:00"),
        format!("{berlin} Europe/Berlin"),
        new_york,
    ] {
        assert_eq!(since_ids(&form), reference, "--since {form}");
    }
    // A window before the capture keeps nothing; one around it everything.
    let r = run_expect(
        &[
            "analyze",
            &cap("burst"),
            "--until",
            "2026-11-23",
            "--format",
            "json",
        ],
        0,
    );
    assert_eq!(conns(&r.json()).len(), 0);
    let r = run_expect(
        &[
            "analyze",
            &cap("burst"),
            "--since",
            "2026-11-23",
            "--until",
            "2026-11-24T00:00:00Z",
            "--format",
            "json",
        ],
        0,
    );
    assert_eq!(conns(&r.json()).len(), 25);
}

#[test]
fn only_disagreeing_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    let bad_log = disagreeing_log(dir.path());
    let c = cap("rst-during-data");
    let v = run_expect(
        &[
            "analyze",
            &c,
            "--log",
            &bad_log,
            "--only",
            "disagreeing",
            "--format",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(ids(&v), vec![1]);
    assert_eq!(conns(&v)[0]["match"]["agreement"], "disagrees");
    // With the appliance's own log, wire and log agree: nothing disagrees.
    let v = run_expect(
        &[
            "analyze",
            &c,
            "--log",
            &log("rst-during-data"),
            "--only",
            "disagreeing",
            "--format",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(ids(&v), Vec::<u64>::new());

    // Findings: the forged RST is one, a clean delivery none; kinds combine (any of them).
    let fw = cap("fw-injected-rst");
    let v = run_expect(
        &["analyze", &fw, "--only", "findings", "--format", "json"],
        0,
    )
    .json();
    assert_eq!(ids(&v), vec![1]);
    let dq = cap("delivered-quit");
    let v = run_expect(
        &["analyze", &dq, "--only", "findings", "--format", "json"],
        0,
    )
    .json();
    assert_eq!(ids(&v), Vec::<u64>::new());
    let v = run_expect(
        &[
            "analyze",
            &dq,
            &fw,
            "--only",
            "aborted,findings",
            "--format",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(conns(&v).len(), 1);
    assert_eq!(conns(&v)[0]["verdict"]["layer"], "network");
    let v = run_expect(
        &["analyze", &dq, &fw, "--only", "all", "--format", "json"],
        0,
    )
    .json();
    assert_eq!(conns(&v).len(), 2);
    assert!(
        v["summary"].get("selection").is_none(),
        "--only all is no selection"
    );
}

// ---------------------------------------------------------------------------------------------
// Selection: the order

#[test]
fn sort_by_start_duration_and_verdict() {
    let sorted = |key: &str| {
        run_expect(
            &["analyze", &cap("burst"), "--sort", key, "--format", "json"],
            0,
        )
        .json()
    };
    let start = sorted("start");
    assert_eq!(ids(&start), (1..=25).collect::<Vec<u64>>());
    assert!(
        start["summary"].get("selection").is_none(),
        "--sort start is the default"
    );

    let by_duration = sorted("duration");
    assert_eq!(by_duration["summary"]["selection"]["sort"], "duration");
    assert_eq!(by_duration["summary"]["selection"]["shown"], 25);
    let d: Vec<f64> = conns(&by_duration)
        .iter()
        .map(|c| c["duration_seconds"].as_f64().unwrap())
        .collect();
    assert!(d.windows(2).all(|w| w[0] >= w[1]), "longest first: {d:?}");
    let mut all_ids = ids(&by_duration);
    all_ids.sort();
    assert_eq!(
        all_ids,
        (1..=25).collect::<Vec<u64>>(),
        "nothing lost, ids kept"
    );

    let by_verdict = sorted("verdict");
    let rank = |l: &str| {
        [
            "application",
            "network",
            "timeout",
            "server",
            "unknown",
            "none",
        ]
        .iter()
        .position(|x| *x == l)
        .unwrap()
    };
    let ranks: Vec<usize> = conns(&by_verdict)
        .iter()
        .map(|c| rank(c["verdict"]["layer"].as_str().unwrap()))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    assert_ne!(ids(&by_verdict), ids(&start));

    // The table follows the same order.
    let table = run_expect(&["analyze", &cap("burst"), "--sort", "verdict"], 0).stdout;
    let first_app = table.find("application").unwrap();
    let first_none = table.find(" none ").unwrap();
    assert!(first_app < first_none, "{table}");
    assert!(table.contains("sorted by verdict"), "{table}");
}

// ---------------------------------------------------------------------------------------------
// Selection: every output format

#[test]
fn selection_applies_to_every_format() {
    let all = burst();
    let keep: BTreeSet<u64> = conns(&all)
        .iter()
        .filter(|c| is_aborted(c))
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    let client_of = |id: u64| {
        conns(&all)[id as usize - 1]["client"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (b, l) = (cap("burst"), log("burst"));
    for format in ["table", "csv", "markdown", "html"] {
        let r = run_expect(
            &[
                "analyze", &b, "--log", &l, "--only", "aborted", "--format", format, "--width",
                "140",
            ],
            0,
        );
        for id in 1..=25u64 {
            let shown = r.stdout.contains(&client_of(id));
            assert_eq!(
                shown,
                keep.contains(&id),
                "{format}: #{id} {} shown: {shown}",
                client_of(id)
            );
        }
        if format == "csv" {
            assert_eq!(r.stdout.lines().count(), 1 + keep.len());
            let csv_ids: BTreeSet<u64> = r
                .stdout
                .lines()
                .skip(1)
                .map(|row| row.split(',').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(csv_ids, keep, "the CSV's id column keeps the ids");
        }
    }

    // --export: the reports and the per-connection files cover the selection only.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("case");
    let cut = conns(&all)[12]["first_seen"].as_str().unwrap().to_string();
    let r = run_expect(
        &[
            "analyze",
            &b,
            "--log",
            &l,
            "--until",
            &cut,
            "--export",
            dir.to_str().unwrap(),
            "--format",
            "json",
            "-q",
        ],
        0,
    );
    let kept = ids(&r.json());
    assert!(!kept.is_empty() && kept.len() < 25, "{kept:?}");
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(ids(&exported), kept);
    assert_eq!(exported["summary"]["selection"]["of"], 25);
    let mut per_conn: BTreeSet<u64> = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix("conn-") {
            per_conn.insert(rest[..rest.find('-').unwrap()].parse().unwrap());
        }
    }
    let want: BTreeSet<u64> = kept
        .iter()
        .copied()
        .filter(|id| is_aborted(&conns(&all)[*id as usize - 1]))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        per_conn, want,
        "files for the kept aborted connections only"
    );
}

#[test]
fn redact_ips_covers_the_selection_too() {
    let b = cap("burst");
    for format in ["json", "table"] {
        let r = run_expect(
            &[
                "analyze",
                &b,
                "--redact-ips",
                "--client",
                "198.51.100.0/24",
                "--server",
                "192.0.2.25",
                "--format",
                format,
            ],
            0,
        );
        assert!(!r.stdout.contains("198.51.100."), "{format}: {}", r.stdout);
        assert!(!r.stdout.contains("192.0.2.25"), "{format}: {}", r.stdout);
        assert!(r.stdout.contains("redacted/24"), "{format}: {}", r.stdout);
    }
}

#[test]
fn connection_story_is_searched_among_the_selection() {
    let all = burst();
    let client = conns(&all)[0]["client"].as_str().unwrap().to_string();
    let b = cap("burst");
    // Kept: the story is told.
    let r = run_expect(
        &[
            "analyze",
            &b,
            "--connection",
            &client,
            "--client",
            "198.51.100.10",
        ],
        0,
    );
    assert!(r.stdout.contains(&client), "{}", r.stdout);
    // Not kept: the message says the selection was searched.
    let first = expect_bad(
        &[
            "analyze",
            &b,
            "--connection",
            &client,
            "--client",
            "203.0.113.1",
        ],
        &["--connection", "--client"],
    );
    assert!(first.contains(&client), "{first}");
}

// ---------------------------------------------------------------------------------------------
// Wrong combinations and values: exit 2, one line that says what is wrong

#[test]
fn wrong_selection_arguments_exit_2() {
    let b = cap("burst");
    expect_bad(
        &[
            "analyze",
            &b,
            "--since",
            "2026-11-23 17:00:00",
            "--until",
            "2026-11-23 16:00:00",
        ],
        &["--since", "--until", "after"],
    );
    expect_bad(
        &["analyze", &b, "--client", "198.51.100.0/33"],
        &["prefix length", "0 to 32"],
    );
    expect_bad(
        &["analyze", &b, "--client", "2001:db8::/129"],
        &["0 to 128"],
    );
    expect_bad(
        &["analyze", &b, "--server", "192.0.2.25/x"],
        &["192.0.2.25/x"],
    );
    expect_bad(
        &["analyze", &b, "--client", "mx.example.com"],
        &["not an IP address"],
    );
    expect_bad(
        &["analyze", &b, "--since", "yesterday"],
        &["yesterday", "not a time"],
    );
    expect_bad(
        &["analyze", &b, "--until", "16:30:00"],
        &["not a time", "RFC 3339"],
    );
    expect_bad(
        &[
            "analyze",
            &b,
            "--since",
            "2026-03-29 02:30:00 Europe/Berlin",
        ],
        &["does not exist"],
    );
    expect_bad(
        &["analyze", &b, "--only", "disagreeing"],
        &["--only disagreeing", "--log"],
    );
    expect_bad(
        &["analyze", &b, "--fail-on", "disagreeing"],
        &["--fail-on disagreeing", "--log"],
    );
    expect_bad(&["analyze", &b, "--only", "all,aborted"], &["--only all"]);
    expect_bad(&["analyze", &b, "--only", "broken"], &["broken"]);
    expect_bad(&["analyze", &b, "--sort", "size"], &["size"]);
    expect_bad(&["analyze", &b, "--color", "sometimes"], &["sometimes"]);
    expect_bad(&["analyze", &b, "--fail-on", "everything"], &["everything"]);
    expect_bad(&["analyze", &b, "-q", "-v"], &["--quiet", "--verbose"]);
    // The arguments are checked before the capture is read: a missing capture is not what
    // the message is about.
    expect_bad(
        &["analyze", "/no/such/capture.pcap", "--only", "disagreeing"],
        &["--log"],
    );
}

// ---------------------------------------------------------------------------------------------
// Colour

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let b = cap("burst");
    let l = log("burst");
    // Into a pipe (as here): no colour by default.
    let plain = run_expect(&["analyze", &b, "--log", &l], 0).stdout;
    assert!(!plain.contains(ESC), "{plain}");
    let never = run_expect(&["analyze", &b, "--log", &l, "--color", "never"], 0).stdout;
    assert_eq!(never, plain);
    let auto = run_expect(&["analyze", &b, "--log", &l, "--color", "auto"], 0).stdout;
    assert_eq!(auto, plain);

    // --color always: the layer words are coloured, and only the escapes differ.
    let always = run_expect(&["analyze", &b, "--log", &l, "--color", "always"], 0).stdout;
    assert!(always.contains(ESC), "{always}");
    assert_eq!(strip_ansi(&always), plain, "colour changes nothing else");
    assert!(
        always.contains("\u{1b}[38;5;9m"),
        "network in red:\n{always}"
    );
    assert!(
        always.contains("\u{1b}[38;5;10m"),
        "none in green:\n{always}"
    );
    let timeout = run_expect(&["analyze", &cap("idle-timeout"), "--color", "always"], 0).stdout;
    assert!(
        timeout.contains("\u{1b}[38;5;11mtimeout"),
        "timeout in yellow:\n{timeout}"
    );
    // The wide layout colours the Layer column.
    let wide = run_expect(&["analyze", &b, "--color", "always", "--width", "140"], 0).stdout;
    assert!(wide.contains("\u{1b}[38;5;9mnetwork\u{1b}[39m"), "{wide}");
    // Fits the width once the escapes are taken out.
    let narrow = run_expect(
        &[
            "analyze", &b, "--log", &l, "--color", "always", "--width", "80",
        ],
        0,
    );
    for line in strip_ansi(&narrow.stdout).lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }

    // NO_COLOR (any non-empty value) turns auto off; an explicit --color always still wins.
    let r = run_cmd(
        icidtrace()
            .args(["analyze", &b, "--log", &l])
            .env("NO_COLOR", "1"),
    );
    assert!(!r.stdout.contains(ESC));
    let r = run_cmd(
        icidtrace()
            .args(["analyze", &b, "--log", &l, "--color", "always"])
            .env("NO_COLOR", "1"),
    );
    assert!(r.stdout.contains(ESC));

    // Never in JSON, CSV, Markdown, HTML, or in a file.
    for format in ["json", "csv", "markdown", "html"] {
        let out = run_expect(
            &[
                "analyze", &b, "--log", &l, "--color", "always", "--format", format,
            ],
            0,
        )
        .stdout;
        assert!(!out.contains(ESC), "{format}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("table.txt");
    run_expect(
        &[
            "analyze",
            &b,
            "--color",
            "always",
            "-o",
            file.to_str().unwrap(),
        ],
        0,
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(!written.contains(ESC), "{written}");
    assert!(written.contains("25 SMTP connections"));
}

/// Runs `icidtrace ARGS` on a pseudo-terminal through `script` (util-linux), when there is one;
/// `None` when it cannot be done here.
fn on_a_terminal(args: &[&str], no_color: Option<&str>) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_icidtrace"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut cmd = std::process::Command::new(script);
    cmd.args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
        .env_remove("COLUMNS")
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    match no_color {
        Some(v) => cmd.env("NO_COLOR", v),
        None => cmd.env_remove("NO_COLOR"),
    };
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let b = cap("burst");
    let args = ["analyze", b.as_str(), "--width", "100"];
    let Some(tty) = on_a_terminal(&args, None) else {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    };
    assert!(tty.contains(ESC), "auto colours on a terminal:\n{tty}");
    let off = on_a_terminal(&args, Some("1")).unwrap();
    assert!(!off.contains(ESC), "NO_COLOR=1:\n{off}");
    // An empty NO_COLOR does not count.
    let empty = on_a_terminal(&args, Some("")).unwrap();
    assert!(empty.contains(ESC), "NO_COLOR empty:\n{empty}");
    let never = on_a_terminal(&["analyze", b.as_str(), "--color", "never"], None).unwrap();
    assert!(!never.contains(ESC), "--color never:\n{never}");
}

// ---------------------------------------------------------------------------------------------
// -v

#[test]
fn verbose_adds_the_evidence_of_aborted_connections() {
    let b = cap("burst");
    let l = log("burst");
    let plain = run_expect(&["analyze", &b, "--log", &l], 0).stdout;
    assert!(!plain.contains("Wireshark:"), "{plain}");
    let v = run_expect(&["analyze", &b, "--log", &l, "-v"], 0).stdout;
    assert!(
        v.starts_with(&plain[..plain.find("layers").unwrap() - 1]),
        "the table first"
    );
    assert_eq!(
        v.matches("Wireshark:").count(),
        6,
        "the six aborted connections:\n{v}"
    );
    let all = burst();
    for c in conns(&all).iter().filter(|c| is_aborted(c)) {
        let head = format!("#{} ", c["id"]);
        assert!(v.contains(&head), "{head}:\n{v}");
        assert!(
            v.contains(c["wireshark_filter"].as_str().unwrap()),
            "whole, to copy"
        );
        for e in c["verdict"]["evidence"].as_array().unwrap() {
            let first_word = e["fact"].as_str().unwrap().split(' ').next().unwrap();
            assert!(v.contains(first_word), "{first_word}");
        }
    }
    assert!(v.contains("first close: client RST"), "{v}");
    assert!(v.contains("check: "), "what to check: {v}");
    // -vv: every connection; and alongside a selection, of the connections shown.
    let vv = run_expect(&["analyze", &b, "--log", &l, "-vv"], 0).stdout;
    assert_eq!(vv.matches("Wireshark:").count(), 25);
    let sel = run_expect(
        &[
            "analyze",
            &b,
            "--log",
            &l,
            "-vv",
            "--only",
            "aborted",
            "--client",
            "198.51.100.10",
        ],
        0,
    )
    .stdout;
    assert_eq!(sel.matches("Wireshark:").count(), 6);
    // Nothing aborted: it says so.
    let dq = run_expect(&["analyze", &cap("delivered-quit"), "-v"], 0).stdout;
    assert!(dq.contains("no connection was aborted"), "{dq}");
    // -v lines fit the width, but for the Wireshark filter kept whole.
    let narrow = run_expect(&["analyze", &b, "--log", &l, "-v", "--width", "80"], 0).stdout;
    for line in narrow.lines().filter(|l| !l.contains("Wireshark:")) {
        assert!(line.chars().count() <= 80, "{line}");
    }
    // With colour, the layer of each story's heading is coloured too.
    let coloured = run_expect(&["analyze", &b, "--log", &l, "-v", "--color", "always"], 0).stdout;
    assert!(
        coloured.contains(": \u{1b}[38;5;9mnetwork\u{1b}[39m,"),
        "{coloured}"
    );
    assert_eq!(strip_ansi(&coloured), v);
    // JSON already has everything: -v changes nothing there.
    let j = run_expect(&["analyze", &b, "--log", &l, "-v", "--format", "json"], 0).stdout;
    assert_eq!(serde_json::from_str::<Value>(&j).unwrap(), all);
}

// ---------------------------------------------------------------------------------------------
// --fail-on and exit codes

#[test]
fn fail_on_exits_1_only_when_a_shown_connection_matches() {
    let b = cap("burst");
    let l = log("burst");
    // Not asked: 0 even with aborted connections.
    run_expect(&["analyze", &b, "--log", &l], 0);
    let r = run_expect(&["analyze", &b, "--log", &l, "--fail-on", "aborted"], 1);
    assert!(
        r.stdout.contains("25 SMTP connections"),
        "the output is complete"
    );
    assert_eq!(r.stderr, "", "exit 1 is not an error: nothing on stderr");
    run_expect(&["analyze", &b, "--fail-on", "findings"], 0);
    run_expect(&["analyze", &b, "--log", &l, "--fail-on", "disagreeing"], 0);
    // Only the connections shown count.
    run_expect(
        &[
            "analyze",
            &b,
            "--fail-on",
            "aborted",
            "--client",
            "203.0.113.1",
        ],
        0,
    );
    let all = burst();
    let ok_client = conns(&all).iter().find(|c| !is_aborted(c)).unwrap()["client"]
        .as_str()
        .unwrap()
        .to_string();
    let bad_client = conns(&all).iter().find(|c| is_aborted(c)).unwrap()["client"]
        .as_str()
        .unwrap()
        .to_string();
    run_expect(
        &[
            "analyze",
            &b,
            "--fail-on",
            "aborted",
            "--connection",
            &ok_client,
        ],
        0,
    );
    run_expect(
        &[
            "analyze",
            &b,
            "--fail-on",
            "aborted",
            "--connection",
            &bad_client,
        ],
        1,
    );
    // Kinds combine; findings; disagreeing with a log that disagrees.
    run_expect(
        &[
            "analyze",
            &cap("delivered-quit"),
            "--fail-on",
            "aborted,findings",
        ],
        0,
    );
    run_expect(
        &["analyze", &cap("fw-injected-rst"), "--fail-on", "findings"],
        1,
    );
    run_expect(
        &[
            "analyze",
            &cap("fw-injected-rst"),
            "--fail-on",
            "aborted",
            "--fail-on",
            "findings",
        ],
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let bad_log = disagreeing_log(dir.path());
    let r = run_expect(
        &[
            "analyze",
            &cap("rst-during-data"),
            "--log",
            &bad_log,
            "--fail-on",
            "disagreeing",
            "--format",
            "csv",
        ],
        1,
    );
    assert_eq!(r.stdout.lines().count(), 2);
    // Damaged input wins: 3.
    let damaged = root().join("../shared/captures/public/sv-smtp-to-comma-damaged.pcap");
    if damaged.exists() {
        run_expect(
            &["analyze", damaged.to_str().unwrap(), "--fail-on", "aborted"],
            3,
        );
    }
}

#[test]
fn closed_pipe_stays_quiet_with_colour_and_verbose() {
    let b = cap("burst");
    let l = log("burst");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_icidtrace"))
        .args([
            "analyze",
            &b,
            "--log",
            &l,
            "-vv",
            "--color",
            "always",
            "--fail-on",
            "aborted",
        ])
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    out.read_exact(&mut buf).unwrap();
    drop(out);
    let done = child.wait_with_output().unwrap();
    // The report was not all read, but the run itself is what the exit code says.
    assert!(
        matches!(done.status.code(), Some(0 | 1)),
        "{:?}",
        done.status
    );
    assert_eq!(String::from_utf8_lossy(&done.stderr), "");
}

// ---------------------------------------------------------------------------------------------
// Builds with and without libpcap

#[test]
fn version_names_the_build() {
    let r = run_expect(&["--version"], 0);
    let want = if cfg!(feature = "libpcap") {
        "(libpcap)"
    } else {
        "(pure Rust, no libpcap)"
    };
    assert!(r.stdout.trim().ends_with(want), "{}", r.stdout);
    assert_eq!(
        r.stdout.trim(),
        format!("icidtrace {}", icidtrace::cli::VERSION)
    );
}

#[cfg(not(feature = "libpcap"))]
#[test]
fn without_libpcap_filter_says_why_and_what_to_do() {
    let c = cap("rst-during-data");
    let line = expect_bad(&["analyze", &c, "--filter", "host 198.51.100.10"], &[]);
    assert_eq!(
        run(&["analyze", &c, "--filter", "host 198.51.100.10"])
            .stderr
            .lines()
            .count(),
        1
    );
    for w in ["--filter needs libpcap", "built without it", "--client"] {
        assert!(line.contains(w), "{w}: {line}");
    }
    // An empty filter is no filter: nothing to refuse.
    run_expect(&["analyze", &c, "--filter", "", "--format", "json"], 0);
    // --export: the reports, and why there are no pcaps.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("case");
    let r = run_expect(&["analyze", &c, "--export", dir.to_str().unwrap()], 0);
    assert!(r.stderr.contains("no per-connection pcaps"), "{}", r.stderr);
    assert!(r.stderr.contains("libpcap"), "{}", r.stderr);
    assert!(dir.join("report.html").exists());
}

#[cfg(feature = "libpcap")]
#[test]
fn with_libpcap_filter_and_selection_work_together() {
    let b = cap("burst");
    let all = burst();
    let client = conns(&all)[3]["client"].as_str().unwrap().to_string();
    let port = client.rsplit_once(':').unwrap().1;
    let v = run_expect(
        &[
            "analyze",
            &b,
            "--filter",
            &format!("port {port}"),
            "--client",
            "198.51.100.10",
            "--format",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(conns(&v).len(), 1);
    assert_eq!(conns(&v)[0]["client"], Value::String(client));
    // The filter made the report (its counts); the selection only chooses among them.
    assert_eq!(v["summary"]["connections"], 1);
}

// ---------------------------------------------------------------------------------------------
// Help

#[test]
fn help_shows_the_commands_flags_examples_and_exit_codes() {
    let main = run_expect(&["--help"], 0).stdout;
    for w in [
        "analyze",
        "log",
        "completions",
        "man",
        "Examples",
        "Exit codes",
        "  1  ",
        "NO_COLOR",
    ] {
        assert!(main.contains(w), "{w}: {main}");
    }
    let h = run_expect(&["analyze", "--help"], 0).stdout;
    for w in [
        "--client",
        "--server",
        "--since",
        "--until",
        "--only",
        "--sort",
        "--color",
        "--verbose",
        "--fail-on",
        "NO_COLOR",
        "  1  --fail-on",
        // The examples: capture alone, with the log, from tcpdump, for a support case.
        "icidtrace analyze capture.pcap ",
        "--log mail.current",
        "tcpdump -i eth0 -s 0 -w - port 25 | icidtrace analyze -",
        "--export case-1234",
        "--format html",
    ] {
        assert!(h.contains(w), "{w}: {h}");
    }
    for sub in ["completions", "man"] {
        let h = run_expect(&[sub, "--help"], 0).stdout;
        assert!(h.contains("Examples"), "{sub}: {h}");
        assert!(h.contains("Exit codes"), "{sub}: {h}");
    }
    // Every example of the help parses with the real definitions.
    for sub in ["analyze", "log", "completions", "man"] {
        let h = run_expect(&[sub, "--help"], 0).stdout;
        for line in h
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("icidtrace "))
        {
            check_parses(line);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The README's and the user guide's examples, run as written

/// The words of a shell command line up to the first `|`, `>`, `<`, `;`, `&` or comment,
/// with quotes removed (enough for the documentation's examples).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    word.push(d);
                }
            }
            '"' => {
                in_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(d),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '|' | '>' | '<' | ';' | '&' => break,
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The command line parses with icidtrace's own definitions; returns the files it reads.
fn check_parses(line: &str) -> Vec<String> {
    use icidtrace::cli::{Cli, Command as Sub};
    let words = shell_words(line);
    let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{line}\n{e}"));
    match cli.command {
        Sub::Analyze(a) => {
            // Combinations clap cannot see (--since after --until, ...) are refused too.
            if let Err(e) = a.selection() {
                panic!("{line}\n{e}");
            }
            a.captures
                .iter()
                .cloned()
                .chain(a.logs.iter().map(|p| p.to_string_lossy().into_owned()))
                .collect()
        }
        Sub::Log(l) => l
            .logs
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        Sub::Completions(_) | Sub::Man(_) => Vec::new(),
    }
}

/// The fenced blocks of `info` (`sh`, `console`) in a Markdown file.
fn fenced_blocks(text: &str, info: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None => {
                if line.trim_start() == format!("```{info}") {
                    current = Some(String::new());
                }
            }
            Some(body) => {
                if line.trim_start().starts_with("```") {
                    blocks.push(std::mem::take(body));
                    current = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    blocks
}

/// A directory to run documentation commands in: `captures` links to the bundled ones, and
/// whatever a command writes (`-o`, `--export`) stays in it.
fn doc_workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root().join("captures"), dir.path().join("captures")).unwrap();
    dir
}

/// Runs a documented command line through `sh` as written, with this build's icidtrace first
/// on PATH; returns (exit code, stdout, stderr).
fn run_documented(line: &str, cwd: &Path) -> (i32, String, String) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_icidtrace")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", line])
        .current_dir(cwd)
        .env("PATH", path)
        .env_remove("COLUMNS")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("sh runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs every `icidtrace` line of the `sh` blocks of `doc` whose inputs are files of this
/// repository (lines naming files that do not exist, like `capture.pcap`, only have to parse);
/// returns how many ran.
fn run_sh_examples(doc: &str) -> usize {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let work = doc_workdir();
    let mut ran = 0;
    for block in fenced_blocks(&text, "sh") {
        for line in block
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("icidtrace "))
        {
            let inputs = check_parses(line);
            let runnable = !inputs.is_empty()
                && inputs
                    .iter()
                    .all(|f| f != "-" && Path::new(f).is_relative() && root().join(f).is_file());
            if !runnable {
                continue;
            }
            let (code, stdout, stderr) = run_documented(line, work.path());
            let allowed: &[i32] = if line.contains("--fail-on") {
                &[0, 1]
            } else {
                &[0]
            };
            assert!(
                allowed.contains(&code),
                "{doc}: `{line}` exited {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{doc}: {line}: {stderr}");
            ran += 1;
        }
    }
    ran
}

/// Checks every `$ icidtrace ...` of the `console` blocks of `doc`: the output shown is the
/// output the command prints now (trailing spaces aside). Returns how many were checked.
fn check_console_examples(doc: &str) -> usize {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let work = doc_workdir();
    let mut checked = 0;
    for block in fenced_blocks(&text, "console") {
        let mut command: Option<String> = None;
        let mut shown: Vec<String> = Vec::new();
        let mut check = |command: &Option<String>, shown: &mut Vec<String>| {
            if let Some(line) = command {
                check_parses(line);
                let (code, stdout, stderr) = run_documented(line, work.path());
                assert!(
                    code == 0 || code == 1,
                    "{doc}: `{line}` exited {code}: {stderr}"
                );
                let got: Vec<String> = stdout.lines().map(|l| l.trim_end().to_string()).collect();
                assert_eq!(
                    got.join("\n"),
                    shown.join("\n"),
                    "{doc}: the output shown for `{line}` is not what it prints now"
                );
                checked += 1;
            }
            shown.clear();
        };
        for line in block.lines() {
            if let Some(cmd) = line.strip_prefix("$ ") {
                check(&command, &mut shown);
                command = cmd.starts_with("icidtrace ").then(|| cmd.to_string());
            } else {
                shown.push(line.trim_end().to_string());
            }
        }
        check(&command, &mut shown);
    }
    checked
}

#[test]
fn readme_examples_run_as_written() {
    let ran = run_sh_examples("README.md");
    assert!(
        ran >= 5,
        "only {ran} README examples ran: name bundled captures in a few"
    );
    let checked = check_console_examples("README.md");
    assert!(checked >= 1, "the README's console example");
}

#[test]
fn user_guide_examples_run_as_written() {
    let ran = run_sh_examples("docs/user-guide.md");
    let checked = check_console_examples("docs/user-guide.md");
    assert!(ran + checked >= 4, "{ran} run, {checked} checked");
}

#[test]
fn shell_words_split_like_sh() {
    assert_eq!(
        shell_words("icidtrace analyze 'a b.pcap' --filter \"host x\" > out.txt # note"),
        vec!["icidtrace", "analyze", "a b.pcap", "--filter", "host x"]
    );
    assert_eq!(
        shell_words("icidtrace analyze - | head"),
        vec!["icidtrace", "analyze", "-"]
    );
}
