//! `--connection CLIENT:PORT` and `--icid N`: one connection's story in the terminal (header,
//! verdict and reasoning, timeline with relative times and silences, log lines, TCP facts),
//! the errors that say how to find the right connection, and a standard error that stays empty
//! when it is not a terminal (no progress bar).

use serde_json::Value;

mod cli_support;
use cli_support::*;

fn contains_all(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "missing {p:?} in:\n{text}");
    }
}

#[test]
fn connection_tells_the_idle_timeout_story() {
    let cap = case("idle-timeout", "capture.pcap");
    let log = case("idle-timeout", "mail_logs");
    let r = ok(&[
        "analyze",
        &cap,
        "--log",
        &log,
        "--connection",
        "198.51.100.10:34994",
    ]);
    assert_eq!(r.stderr, "", "nothing on standard error");
    let out = &r.stdout;
    contains_all(
        out,
        &[
            "Connection 1 of 1: 198.51.100.10:34994 → 192.0.2.25:25",
            "ICID 46001, MID 76001",
            "layer      timeout",
            "initiator  server",
            "cause      idle_timeout",
            "phase      envelope",
            "aborted ✓",
            "Evidence",
            "Next steps",
            "Timeline",
            "client  SYN",
            "server  SYN-ACK",
            "client  MAIL FROM:<alice@example.net>",
            "server  421 Timed out waiting for successful message injection",
            "··· 3.0 s of silence ···",
            "server  FIN (frame 18, TTL 64",
            "Mail log",
            "Receiving aborted",
            "ICID 46001 close",
        ],
    );
    // The timeline is in time order: the silence comes before the 421, the 421 before the FIN.
    let silence = out.find("of silence").unwrap();
    let t421 = out.find("server  421").unwrap();
    let fin = out.find("server  FIN").unwrap();
    assert!(silence < t421 && t421 < fin);
    // Times are relative to the first packet.
    assert!(out.contains("+0.000000  client  SYN"), "{out}");
    assert!(out.contains("+3.158196  server  421"), "{out}");
}

#[test]
fn icid_selects_the_same_story() {
    let cap = case("idle-timeout", "capture.pcap");
    let log = case("idle-timeout", "mail_logs");
    let by_icid = ok(&["analyze", &cap, "--log", &log, "--icid", "46001"]);
    let by_conn = ok(&[
        "analyze",
        &cap,
        "--log",
        &log,
        "--connection",
        "198.51.100.10:34994",
    ]);
    assert_eq!(by_icid.stdout, by_conn.stdout);
}

#[test]
fn icid_picks_the_right_connection_of_a_burst() {
    let cap = case("burst", "capture.pcap");
    let log = case("burst", "mail_logs");
    let r = ok(&["analyze", &cap, "--log", &log, "--icid", "55009"]);
    contains_all(
        &r.stdout,
        &[
            "Connection 9 of 25: 198.51.100.10:39888",
            "ICID 55009",
            "layer      network",
            "cause      client_rst",
            "client  RST (frame",
            "ICID 55009 lost",
        ],
    );
    assert!(!r.stdout.contains("ICID 55010"), "only this ICID's lines");
    let j = ok(&[
        "analyze", &cap, "--log", &log, "--icid", "55009", "--format", "json",
    ]);
    let v: Value = serde_json::from_str(&j.stdout).unwrap();
    let a = v.as_array().expect("an array of the selected connections");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["icid"], 55009);
    assert_eq!(a[0]["client"], "198.51.100.10:39888");
    assert_eq!(a[0]["verdict"]["cause"], "client_rst");
}

#[test]
fn ipv6_clients_are_given_in_brackets() {
    let cap = case("ipv6-delivered", "capture.pcap");
    let all = ok(&["analyze", &cap, "--format", "json"]);
    let v: Value = serde_json::from_str(&all.stdout).unwrap();
    let client = v["connections"][0]["client"].as_str().unwrap().to_string();
    assert!(client.starts_with('['), "{client}");
    let r = ok(&["analyze", &cap, "--connection", &client]);
    contains_all(&r.stdout, &[&client, "layer      none", "QUIT"]);
}

#[test]
fn a_selector_that_matches_nothing_says_how_to_find_one() {
    let cap = case("burst", "capture.pcap");
    let log = case("burst", "mail_logs");
    let r = run(&["analyze", &cap, "--connection", "198.51.100.10:1"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    contains_all(
        &r.stderr,
        &[
            "no SMTP connection from 198.51.100.10:1",
            "25 connection(s)",
            "39888",
            "Connection column",
        ],
    );
    let r = run(&["analyze", &cap, "--connection", "203.0.113.9:4000"]);
    assert_eq!(r.code, 2);
    contains_all(&r.stderr, &["clients in the capture: 198.51.100.10"]);
    let r = run(&["analyze", &cap, "--connection", "192.0.2.25:25"]);
    assert_eq!(r.code, 2);
    contains_all(&r.stderr, &["server's address"]);
    let r = run(&["analyze", &cap, "--log", &log, "--icid", "99"]);
    assert_eq!(r.code, 2);
    contains_all(
        &r.stderr,
        &["ICID 99", "ICIDs matched: 55001", "icidtrace log"],
    );
    // Bad selectors and combinations are refused by the argument parser.
    let r = run(&["analyze", &cap, "--connection", "not-an-address"]);
    assert_eq!(r.code, 2);
    contains_all(&r.stderr, &["CLIENT:PORT", "[2001:db8::7]:40000"]);
    let r = run(&["analyze", &cap, "--icid", "55009"]);
    assert_eq!(r.code, 2, "--icid needs --log");
    let r = run(&[
        "analyze", &cap, "--log", &log, "--icid", "55009", "--format", "markdown",
    ]);
    assert_eq!(r.code, 2);
    contains_all(&r.stderr, &["--export"]);
}

#[test]
fn no_progress_bar_when_standard_error_is_not_a_terminal() {
    let cap = case("burst", "capture.pcap");
    let log = case("burst", "mail_logs");
    for args in [
        vec!["analyze", cap.as_str()],
        vec!["analyze", cap.as_str(), "--log", log.as_str()],
        vec![
            "analyze",
            cap.as_str(),
            "--log",
            log.as_str(),
            "--format",
            "json",
        ],
        vec!["analyze", cap.as_str(), "--log", log.as_str(), "--redact"],
    ] {
        let r = ok(&args);
        assert_eq!(r.stderr, "", "{args:?}: standard error stays empty");
        assert!(!r.stdout.contains('\r'), "{args:?}: no carriage returns");
    }
}

#[test]
fn redacted_story() {
    let cap = case("idle-timeout", "capture.pcap");
    let log = case("idle-timeout", "mail_logs");
    let r = ok(&[
        "analyze",
        &cap,
        "--log",
        &log,
        "--connection",
        "198.51.100.10:34994",
        "--redact-ips",
    ]);
    for gone in [
        "alice",
        "bob",
        "example.net",
        "example.com",
        "198.51.100.10",
        "192.0.2.25",
    ] {
        assert!(!r.stdout.contains(gone), "{gone} in:\n{}", r.stdout);
    }
    contains_all(
        &r.stdout,
        &[
            "ICID 46001",
            "idle_timeout",
            "MAIL FROM:<user-1@domain-1.example>",
            "From: <user-1@domain-1.example>",
            "421 Timed out",
        ],
    );
}
