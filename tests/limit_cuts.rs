//! Connections cut at a limit of an SMTP-inspecting firewall (command line length, recipient
//! count, header and body line length, header size), built packet by packet: the finding must
//! come with its numbers when the cut follows the offending unit at once and is not the client's
//! own, and must not come for the same bytes without such a cut.

// Shared with built_packets.rs; this file uses part of it.
#[allow(dead_code)]
mod common;

use common::*;
use serde_json::Value;

const TEN_SECONDS_US: i64 = 10_000_000;

fn kinds(c: &Value) -> Vec<String> {
    c["verdict"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["kind"].as_str().expect("kind").to_string())
        .collect()
}

fn finding<'a>(c: &'a Value, kind: &str) -> &'a Value {
    c["verdict"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {}", c["verdict"]["findings"]))
}

const LIMITS: [&str; 4] = [
    "line_length_limit",
    "recipient_limit",
    "header_length_limit",
    "body_line_length_limit",
];

fn no_limit(c: &Value) {
    let k = kinds(c);
    assert!(
        !k.iter().any(|k| LIMITS.contains(&k.as_str())),
        "{k:?}: {}",
        c["verdict"]
    );
}

/// A firewall's RST in the client's name: its own TTL, an IP ID out of the client's sequence.
fn forged_client_rst(s: &mut Script) {
    let i = s.client_rst("forged-RST");
    s.segs[i].ttl = 255;
    s.segs[i].ip_id = 0;
}

fn server_rst(s: &mut Script) {
    let i = s.server_ack("server-RST");
    s.segs[i].rst = true;
}

fn long_rcpt(octets: usize) -> Vec<u8> {
    let local = "r".repeat(octets - b"RCPT TO:<@example.com>\r\n".len());
    format!("RCPT TO:<{local}@example.com>\r\n").into_bytes()
}

fn up_to_mail() -> Script {
    let mut s = Script::new(START_US);
    s.handshake(1000, 5000);
    greeting(&mut s);
    s.client("MAIL", MAIL);
    s.server("MAIL-reply", MAIL_REPLY);
    s
}

fn run(s: &Script) -> Value {
    let report = analyze_segs(&Net::V4, &s.segs);
    only_connection(&report).clone()
}

#[test]
fn forged_rst_right_after_an_over_long_command_line() {
    let mut s = up_to_mail();
    s.client("RCPT", &long_rcpt(2049));
    forged_client_rst(&mut s);
    let c = run(&s);
    let v = &c["verdict"];
    assert_eq!(v["initiator"], "middlebox", "{v}");
    assert_eq!(v["cause"], "forged_rst");
    let detail = finding(&c, "line_length_limit")["detail"].as_str().unwrap();
    assert!(
        detail.contains("10 ms after the client's 2,049-octet RCPT line, unanswered")
            && detail.contains("at most 31 octets"),
        "{detail}"
    );
    assert!(
        v["next_steps"]
            .as_str()
            .unwrap()
            .contains("match cmd line length gt 512")
    );
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("command line over 512")
    );
    assert!(
        v["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["fact"].as_str() == Some(detail))
    );
}

#[test]
fn the_line_limit_is_512_octets_with_the_crlf() {
    for (octets, flagged) in [(512, false), (513, true)] {
        let mut s = up_to_mail();
        s.client("RCPT", &long_rcpt(octets));
        forged_client_rst(&mut s);
        let c = run(&s);
        assert_eq!(
            kinds(&c).contains(&"line_length_limit".to_string()),
            flagged,
            "{octets}: {:?}",
            kinds(&c)
        );
    }
}

#[test]
fn a_line_cut_before_its_end_is_measured_as_far_as_it_came() {
    let mut s = up_to_mail();
    s.client("RCPT-part", &long_rcpt(2049)[..1448]);
    forged_client_rst(&mut s);
    let c = run(&s);
    let detail = finding(&c, "line_length_limit")["detail"].as_str().unwrap();
    assert!(
        detail.contains("reached 1,448 octets without its line end"),
        "{detail}"
    );
}

#[test]
fn no_limit_when_the_client_resets_itself_or_the_cut_comes_late_or_the_line_was_answered() {
    // The client's own RST (its TTL, its IP ID sequence).
    let mut s = up_to_mail();
    s.client("RCPT", &long_rcpt(2049));
    s.client_rst("RST");
    let c = run(&s);
    assert_eq!(c["verdict"]["cause"], "client_rst");
    no_limit(&c);

    // Ten seconds later: something else cut it.
    let mut s = up_to_mail();
    s.client("RCPT", &long_rcpt(2049));
    forged_client_rst(&mut s);
    s.segs.last_mut().unwrap().ts_us += TEN_SECONDS_US;
    no_limit(&run(&s));

    // The server answered the long line: whatever cut it, the line got through.
    let mut s = up_to_mail();
    s.client("RCPT", &long_rcpt(2049));
    s.server("RCPT-reply", b"501 line too long\r\n");
    forged_client_rst(&mut s);
    no_limit(&run(&s));

    // After QUIT the close is the normal end.
    let mut s = up_to_mail();
    s.client("RCPT", &long_rcpt(2049));
    s.server("RCPT-reply", b"501 line too long\r\n");
    s.client("QUIT", QUIT);
    s.client("NOOP", &long_rcpt(2049));
    forged_client_rst(&mut s);
    no_limit(&run(&s));
}

fn rcpts(s: &mut Script, answered: usize) {
    for i in 0..answered {
        s.client(
            &format!("RCPT{i}"),
            format!("RCPT TO:<u{i}@example.com>\r\n").as_bytes(),
        );
        s.server(&format!("RCPT{i}-reply"), RCPT_REPLY);
    }
}

#[test]
fn the_server_side_resets_right_after_one_more_rcpt() {
    let mut s = up_to_mail();
    rcpts(&mut s, 3);
    s.client("RCPT3", b"RCPT TO:<u3@example.com>\r\n");
    server_rst(&mut s);
    let c = run(&s);
    let detail = finding(&c, "recipient_limit")["detail"].as_str().unwrap();
    assert!(
        detail.contains("RST from the server 10 ms after the client's RCPT number 4, unanswered, where the 3 before it were answered"),
        "{detail}"
    );
    assert!(
        c["verdict"]["next_steps"]
            .as_str()
            .unwrap()
            .contains("match cmd RCPT count gt N")
    );
}

#[test]
fn no_recipient_limit_for_a_first_rcpt_or_pipelined_ones() {
    let mut s = up_to_mail();
    s.client("RCPT0", b"RCPT TO:<u0@example.com>\r\n");
    server_rst(&mut s);
    no_limit(&run(&s));

    let mut s = up_to_mail();
    s.client(
        "RCPTs",
        b"RCPT TO:<u0@example.com>\r\nRCPT TO:<u1@example.com>\r\n",
    );
    server_rst(&mut s);
    no_limit(&run(&s));
}

fn into_data(s: &mut Script) {
    s.client("RCPT", RCPT);
    s.server("RCPT-reply", RCPT_REPLY);
    s.client("DATA", DATA);
    s.server("DATA-reply", DATA_REPLY);
}

fn headers(n: usize, line: usize) -> Vec<u8> {
    let mut h = Vec::new();
    for i in 0..n {
        h.extend_from_slice(format!("X-H{i:04}: {}\r\n", "h".repeat(line - 9)).as_bytes());
    }
    h
}

#[test]
fn cut_inside_a_header_line_over_998_octets() {
    let mut s = up_to_mail();
    into_data(&mut s);
    let mut h = b"Subject: hello\r\nX-Long: ".to_vec();
    h.extend(std::iter::repeat_n(b'x', 1400));
    s.client("headers", &h);
    forged_client_rst(&mut s);
    let c = run(&s);
    assert_eq!(c["verdict"]["phase"], "data");
    let detail = finding(&c, "header_length_limit")["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail
            .contains("a header line of the message had reached 1,408 octets without its line end")
            && detail.contains("1,424 octets into the header section"),
        "{detail}"
    );
}

#[test]
fn cut_after_a_large_header_section_but_not_after_an_ordinary_one() {
    let mut s = up_to_mail();
    into_data(&mut s);
    s.client("headers", &headers(100, 100)); // 10,200 octets, no empty line yet
    forged_client_rst(&mut s);
    let c = run(&s);
    let detail = finding(&c, "header_length_limit")["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.contains("still without its empty line, had reached 10,200 octets")
            && detail.contains("longest header line was 100 octets"),
        "{detail}"
    );

    let mut s = up_to_mail();
    into_data(&mut s);
    s.client("headers", &headers(40, 100)); // 4,080 octets
    forged_client_rst(&mut s);
    let c = run(&s);
    assert_eq!(c["verdict"]["cause"], "forged_rst");
    no_limit(&c);
}

#[test]
fn cut_after_a_body_line_over_998_octets() {
    let mut s = up_to_mail();
    into_data(&mut s);
    let mut m = b"Subject: hello\r\n\r\nfirst line\r\n".to_vec();
    m.extend(std::iter::repeat_n(b'b', 1200));
    m.extend_from_slice(b"\r\n");
    s.client("message", &m);
    forged_client_rst(&mut s);
    let c = run(&s);
    let detail = finding(&c, "body_line_length_limit")["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("after a 1,200-octet body line"), "{detail}");

    // The same message answered: delivered, nothing cut.
    let mut s = up_to_mail();
    into_data(&mut s);
    s.client("message", &m);
    s.client("end", END_OF_DATA);
    s.server("end-reply", DATA_END_REPLY);
    quit_and_close(&mut s);
    let c = run(&s);
    assert_eq!(c["verdict"]["layer"], "none");
    no_limit(&c);
}
