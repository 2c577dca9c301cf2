//! `--export DIR` and `--redact` / `--redact-ips` as a user runs them: the directory holds the
//! report files, a README and, per aborted or disagreeing connection, a pcap that icidtrace
//! reads back to the same verdict and a file of its log lines; redacted outputs (table, JSON,
//! Markdown, HTML, the pcaps' bytes) hold none of the capture's e-mail local parts, host names
//! or (with --redact-ips) IP addresses, and the same original maps to the same token
//! everywhere.
// Without libpcap the tests that check the pcaps are compiled out, and their helpers unused.
#![cfg_attr(not(feature = "libpcap"), allow(dead_code, unused_imports))]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use icidtrace::analyze::{AnalyzeOptions, analyze};
use serde_json::Value;

mod cli_support;
use cli_support::*;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

/// (layer, initiator, cause, phase) of a connection object.
fn verdict(c: &Value) -> (String, String, String, String) {
    let v = &c["verdict"];
    let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    (s("layer"), s("initiator"), s("cause"), s("phase"))
}

fn exported_for_export(c: &Value) -> bool {
    c["verdict"]["layer"] != "none" || c["match"]["agreement"] == "disagrees"
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("the export directory exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The connections of a capture as the library reports them, as JSON.
fn analyse_file(path: &Path) -> Vec<Value> {
    let opts = AnalyzeOptions {
        captures: vec![path.to_string_lossy().into_owned()],
        ..Default::default()
    };
    let report = analyze(&opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v = serde_json::to_value(&report).unwrap();
    v["connections"].as_array().cloned().unwrap_or_default()
}

/// The exported file of connection `id` with this suffix.
fn conn_file(dir: &Path, id: u64, suffix: &str) -> Option<PathBuf> {
    let prefix = format!("conn-{id:03}-");
    files(dir)
        .into_iter()
        .find(|f| f.starts_with(&prefix) && f.ends_with(suffix))
        .map(|f| dir.join(f))
}

/// Checks an export directory against the report of the same run: report files, README, one
/// pcap per selected connection that reads back to the same verdict, log files.
fn check_export(dir: &Path, report: &Value, with_log: bool) {
    let names = files(dir);
    for f in ["README.txt", "report.md", "report.html", "report.json"] {
        assert!(names.contains(f), "{f} missing from {names:?}");
    }
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    for f in &names {
        assert!(readme.contains(f.as_str()), "README.txt does not list {f}");
    }
    let in_json = json(&std::fs::read_to_string(dir.join("report.json")).unwrap());
    assert_eq!(in_json["connections"], report["connections"]);

    let conns = report["connections"].as_array().unwrap();
    let chosen: Vec<&Value> = conns.iter().filter(|c| exported_for_export(c)).collect();
    assert!(!chosen.is_empty());
    let pcaps = names.iter().filter(|n| n.ends_with(".pcap")).count();
    assert_eq!(
        pcaps,
        chosen.len(),
        "one pcap per aborted connection: {names:?}"
    );
    for c in chosen {
        let id = c["id"].as_u64().unwrap();
        let pcap = conn_file(dir, id, ".pcap").unwrap_or_else(|| panic!("no pcap for #{id}"));
        let name = pcap.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.contains(c["verdict"]["layer"].as_str().unwrap())
                && name.contains(c["verdict"]["cause"].as_str().unwrap()),
            "{name} says what it is"
        );
        let back = analyse_file(&pcap);
        assert_eq!(back.len(), 1, "{name}: exactly one connection");
        assert_eq!(back[0]["client"], c["client"], "{name}");
        assert_eq!(back[0]["server"], c["server"], "{name}");
        assert_eq!(verdict(&back[0]), verdict(c), "{name}: the same verdict");
        assert_eq!(back[0]["first_seen"], c["first_seen"], "{name}");
        assert_eq!(back[0]["last_seen"], c["last_seen"], "{name}");
        let log = conn_file(dir, id, ".log.txt");
        if with_log {
            let text = std::fs::read_to_string(log.expect("a log file")).unwrap();
            let icid = c["icid"].as_u64().unwrap();
            assert!(text.contains(&format!("ICID {icid}")), "{text}");
            assert!(text.lines().count() > 3, "{text}");
        } else {
            assert!(log.is_none());
        }
    }
}

// Checks the exported pcaps: needs libpcap (the default feature).
#[cfg(feature = "libpcap")]
#[test]
fn export_of_burst_with_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("case-1234");
    let cap = case("burst", "capture.pcap");
    let log = case("burst", "mail_logs");
    let r = ok(&[
        "analyze",
        &cap,
        "--log",
        &log,
        "--export",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(r.stderr.contains("exported"), "{}", r.stderr);
    let report = json(&r.stdout);
    check_export(&dir, &report, true);
    // 3 quit-after-rcpt and 3 rst-before-data.
    let pcaps: Vec<String> = files(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    assert_eq!(pcaps.len(), 6, "{pcaps:?}");
    assert!(
        pcaps
            .iter()
            .any(|p| p == "conn-009-198.51.100.10_39888-network-client_rst.pcap"),
        "{pcaps:?}"
    );
}

// Checks the exported pcaps: needs libpcap (the default feature).
#[cfg(feature = "libpcap")]
#[test]
fn export_of_a_public_capture_without_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let cap = public("sv-smtp-errors.pcap");
    let r = ok(&[
        "analyze",
        &cap,
        "--export",
        dir.to_str().unwrap(),
        "--format",
        "json",
        "-q",
    ]);
    assert_eq!(r.stderr, "", "-q: no summary line");
    let report = json(&r.stdout);
    check_export(&dir, &report, false);
}

#[test]
fn export_refuses_a_directory_that_is_not_empty_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let cap = case("rst-during-data", "capture.pcap");
    let r = run(&["analyze", &cap, "--export", dir.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("not empty") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "refused before the analysis");
    ok(&[
        "analyze",
        &cap,
        "--export",
        dir.to_str().unwrap(),
        "--force",
    ]);
    let names = files(dir);
    assert!(names.contains("notes.txt"), "other files are kept");
    assert!(names.contains("README.txt"));
    // A second forced export replaces the first one's files.
    ok(&[
        "analyze",
        &cap,
        "--export",
        dir.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(files(dir), names);
}

#[test]
fn export_refuses_standard_input() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = std::fs::read(case("rst-during-data", "capture.pcap")).unwrap();
    let out = Command::cargo_bin("icidtrace")
        .unwrap()
        .args(["analyze", "-", "--export", tmp.path().to_str().unwrap()])
        .write_stdin(cap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard input"));
}

/// The local parts and host names of a run's JSON: envelope addresses, EHLO names, the banner
/// host and the names in the server's replies.
fn originals(report: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut locals = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for c in report["connections"].as_array().unwrap() {
        let s = &c["smtp"]["session"];
        let mut addresses = Vec::new();
        for t in s["transactions"].as_array().unwrap() {
            addresses.push(t["mail_from"].as_str().unwrap());
            for r in t["rcpt_to"].as_array().unwrap() {
                addresses.push(r["address"].as_str().unwrap());
            }
        }
        for a in addresses {
            if let Some((l, d)) = a.rsplit_once('@') {
                locals.insert(l.to_lowercase());
                hosts.insert(d.to_lowercase());
            }
        }
        if let Some(h) = s["greeting"][1].as_str() {
            hosts.insert(h.to_lowercase());
        }
        if let Some(b) = s["banner"]["text"].as_str() {
            if let Some(h) = b.split(' ').next().filter(|h| h.contains('.')) {
                hosts.insert(h.to_lowercase());
            }
        }
    }
    (locals, hosts)
}

fn assert_clean(what: &str, text: &[u8], forbidden: &BTreeSet<String>) {
    let lower = String::from_utf8_lossy(text).to_lowercase();
    for f in forbidden {
        assert!(!lower.contains(f.as_str()), "{what} still contains {f:?}");
    }
}

// Checks the exported pcaps: needs libpcap (the default feature).
#[cfg(feature = "libpcap")]
#[test]
fn redaction_covers_every_output_and_the_pcaps() {
    let cap = case("burst", "capture.pcap");
    let log = case("burst", "mail_logs");
    let plain = json(&ok(&["analyze", &cap, "--log", &log, "--format", "json"]).stdout);
    let (locals, hosts) = originals(&plain);
    assert!(
        locals.contains("alice") && locals.contains("bob"),
        "{locals:?}"
    );
    assert!(
        hosts.contains("example.net") && hosts.contains("mta1.example.net"),
        "{hosts:?}"
    );
    assert!(hosts.contains("esa.example.com"), "{hosts:?}");
    let forbidden: BTreeSet<String> = locals.union(&hosts).cloned().collect();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let d = dir.to_str().unwrap();
    let red_json = ok(&[
        "analyze", &cap, "--log", &log, "--redact", "--export", d, "--format", "json",
    ]);
    assert_clean("JSON", red_json.stdout.as_bytes(), &forbidden);
    let table = ok(&["analyze", &cap, "--log", &log, "--redact"]);
    assert_clean("table", table.stdout.as_bytes(), &forbidden);
    let md = ok(&[
        "analyze", &cap, "--log", &log, "--redact", "--format", "markdown",
    ]);
    assert_clean("Markdown", md.stdout.as_bytes(), &forbidden);
    let html = ok(&[
        "analyze", &cap, "--log", &log, "--redact", "--format", "html",
    ]);
    assert_clean("HTML", html.stdout.as_bytes(), &forbidden);
    let story = ok(&[
        "analyze", &cap, "--log", &log, "--redact", "--icid", "55009",
    ]);
    assert_clean("--icid story", story.stdout.as_bytes(), &forbidden);
    for f in files(&dir) {
        let bytes = std::fs::read(dir.join(&f)).unwrap();
        assert_clean(&f, &bytes, &forbidden);
        assert_clean(&f, f.as_bytes(), &forbidden);
    }

    // The same address, the same token, wherever it stands.
    let red = json(&red_json.stdout);
    let conns = red["connections"].as_array().unwrap();
    let sender = conns[0]["smtp"]["session"]["transactions"][0]["mail_from"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sender.starts_with("user-") && sender.ends_with(".example"),
        "{sender}"
    );
    for c in conns {
        assert_eq!(
            c["smtp"]["session"]["transactions"][0]["mail_from"].as_str(),
            Some(sender.as_str())
        );
    }
    let facts: Vec<&str> = conns[0]["verdict"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["fact"].as_str())
        .collect();
    assert!(
        facts
            .iter()
            .any(|f| f.contains(&format!("MAIL FROM:<{sender}>"))),
        "{facts:?}"
    );
    let log_lines = conns[0]["match"]["log_lines"].as_array().unwrap();
    assert!(
        log_lines.iter().any(|l| l["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("From: <{sender}>")))),
        "{log_lines:?}"
    );
    assert!(
        table.stdout.contains("198.51.100.10"),
        "IPs stay without --redact-ips"
    );

    // Verdicts do not change, and the redacted pcaps read back to them, packet for packet the
    // same lengths as the plain export.
    let plain_dir = tmp.path().join("plain");
    ok(&[
        "analyze",
        &cap,
        "--log",
        &log,
        "--export",
        plain_dir.to_str().unwrap(),
    ]);
    for (p, r) in plain["connections"].as_array().unwrap().iter().zip(conns) {
        assert_eq!(verdict(p), verdict(r));
    }
    check_export(&dir, &red, true);
    for c in conns.iter().filter(|c| exported_for_export(c)) {
        let id = c["id"].as_u64().unwrap();
        let a = std::fs::metadata(conn_file(&plain_dir, id, ".pcap").unwrap()).unwrap();
        let b = std::fs::metadata(conn_file(&dir, id, ".pcap").unwrap()).unwrap();
        assert_eq!(a.len(), b.len(), "same-length tokens in #{id}");
    }
}

// Checks the exported pcaps: needs libpcap (the default feature).
#[cfg(feature = "libpcap")]
#[test]
fn redact_ips_removes_the_addresses_too() {
    let cap = case("burst", "capture.pcap");
    let log = case("burst", "mail_logs");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let d = dir.to_str().unwrap();
    let r = ok(&[
        "analyze",
        &cap,
        "--log",
        &log,
        "--redact-ips",
        "--export",
        d,
        "--format",
        "json",
    ]);
    let ips: BTreeSet<String> = ["198.51.100.10", "192.0.2.25"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let plain = json(&ok(&["analyze", &cap, "--log", &log, "--format", "json"]).stdout);
    let (locals, hosts) = originals(&plain);
    let names: BTreeSet<String> = locals.union(&hosts).cloned().collect();
    assert_clean("JSON", r.stdout.as_bytes(), &ips);
    assert_clean("JSON", r.stdout.as_bytes(), &names);
    let table = ok(&["analyze", &cap, "--log", &log, "--redact-ips"]);
    assert_clean("table", table.stdout.as_bytes(), &ips);
    for f in files(&dir) {
        assert_clean(&f, f.as_bytes(), &ips);
        assert_clean(&f, &std::fs::read(dir.join(&f)).unwrap(), &ips);
    }
    let red = json(&r.stdout);
    let client = red["connections"][0]["client"]
        .as_str()
        .unwrap()
        .to_string();
    // One client address, one token, in every connection.
    for c in red["connections"].as_array().unwrap() {
        let cl = c["client"].as_str().unwrap();
        assert_eq!(
            cl.rsplit_once(':').unwrap().0,
            client.rsplit_once(':').unwrap().0
        );
    }
    // The pcaps' IP headers carry the tokens, and still read back to the same verdicts.
    check_export(&dir, &red, true);
    for f in files(&dir).iter().filter(|f| f.ends_with(".pcap")) {
        for c in analyse_file(&dir.join(f)) {
            assert!(!ips.contains(c["client"].as_str().unwrap().rsplit_once(':').unwrap().0));
            assert!(!ips.contains(c["server"].as_str().unwrap().rsplit_once(':').unwrap().0));
        }
    }
}

/// Built without libpcap, the report files are still written and the pcaps' absence is said.
#[cfg(not(feature = "libpcap"))]
#[test]
fn without_libpcap_the_export_says_why_there_are_no_pcaps() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let cap = case("rst-during-data", "capture.pcap");
    let r = ok(&["analyze", &cap, "--export", dir.to_str().unwrap()]);
    assert!(r.stderr.contains("libpcap feature"), "{}", r.stderr);
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains("libpcap feature"), "{readme}");
    assert!(!files(&dir).iter().any(|f| f.ends_with(".pcap")));
}
