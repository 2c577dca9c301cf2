//! Every public capture in `../shared/captures/public/` (see its SOURCES.md) analysed through
//! the library, with the facts checked against answers established independently with tshark
//! 4.0 (`-z conv,tcp`, the SYN/FIN/RST frames with `ip.ttl` and `frame.time_epoch`,
//! `-z follow,tcp,ascii,N` for the payloads). Frame numbers are tshark's (1-based records).
//!
//! Checked per file: which SMTP connections are listed, in first-seen order; how many other TCP
//! connections were counted; that `problems` names the damaged record and only it. Per
//! connection: `server`, `close.first_fin` / `close.first_rst` (side, frame, time, TTL), and
//! `smtp.quit`, `starttls`, `transactions` (MAIL FROM commands sent, accepted or not),
//! `completed` (messages whose data got a 2xx final reply) and `banner`. The verdict itself is
//! left to its own tests; `verdict.layer` is checked only where docs/design.md leaves no
//! doubt: `none` (QUIT, every message finished) and `unknown` (no QUIT, no FIN, no RST: the
//! capture stopped first).

use std::path::PathBuf;

use icidtrace::analyze::{AnalyzeOptions, analyze};
use serde_json::{Value, json};

const CLIENT: &str = "client";
const SERVER: &str = "server";

/// The first FIN or first RST of a connection, as tshark shows it.
struct Close {
    side: &'static str,
    frame: u64,
    /// `frame.time_epoch`, to the microsecond.
    epoch: &'static str,
    /// IPv4 TTL (IPv6 hop limit).
    ttl: u64,
}

const fn close(side: &'static str, frame: u64, epoch: &'static str, ttl: u64) -> Close {
    Close {
        side,
        frame,
        epoch,
        ttl,
    }
}

/// The expected facts of one SMTP connection.
struct Conn {
    client: &'static str,
    server: &'static str,
    first_fin: Option<Close>,
    first_rst: Option<Close>,
    quit: bool,
    starttls: bool,
    transactions: u64,
    /// `None`: deliberately not asserted (the test's comment says why).
    completed: Option<u64>,
    banner: Option<u64>,
    /// `None`: not asserted (see the module comment).
    layer: Option<&'static str>,
}

enum Damaged {
    No,
    /// The file's record with this number (1-based) is damaged; the ones before it are fine.
    AtRecord(u64),
}

fn captures_dir() -> PathBuf {
    match std::env::var_os("ICIDTRACE_PUBLIC_CAPTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/captures/public"),
    }
}

fn report_for(file: &str) -> Value {
    let path = captures_dir().join(file);
    assert!(path.is_file(), "{} is missing", path.display());
    // No filter, no extra ports, no logs.
    let options = AnalyzeOptions {
        captures: vec![path.to_string_lossy().into_owned()],
        ..AnalyzeOptions::default()
    };
    let report = analyze(&options).unwrap_or_else(|e| panic!("{file}: analyze failed: {e}"));
    serde_json::to_value(&report).expect("the report serializes")
}

fn clients(report: &Value) -> Vec<&str> {
    report["connections"]
        .as_array()
        .expect("`connections` is an array")
        .iter()
        .map(|c| c["client"].as_str().expect("`client` is a string"))
        .collect()
}

/// The connection whose client is `client` ("ip:port", IPv6 as "[addr]:port").
fn conn<'a>(report: &'a Value, client: &str) -> &'a Value {
    report["connections"]
        .as_array()
        .expect("`connections` is an array")
        .iter()
        .find(|c| c["client"] == client)
        .unwrap_or_else(|| {
            panic!(
                "no connection with client {client}; clients: {:?}",
                clients(report)
            )
        })
}

fn epoch_micros(epoch: &str) -> i64 {
    let (secs, frac) = epoch.split_once('.').expect("epoch has a fraction");
    let frac = format!("{frac:0<6}");
    secs.parse::<i64>().expect("epoch seconds") * 1_000_000
        + frac[..6].parse::<i64>().expect("epoch microseconds")
}

fn rfc3339_micros(v: &Value) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    Some(t.timestamp_micros())
}

/// Compares one field and records a mismatch.
fn expect_eq(errs: &mut Vec<String>, what: String, got: &Value, want: Value) {
    if *got != want {
        errs.push(format!("{what}: expected {want}, got {got}"));
    }
}

fn check_close(errs: &mut Vec<String>, client: &str, c: &Value, field: &str, want: &Option<Close>) {
    let what = format!("{client}: close.{field}");
    let Some(got) = c["close"].get(field) else {
        errs.push(format!("{what}: field missing"));
        return;
    };
    let Some(want) = want else {
        expect_eq(errs, what, got, Value::Null);
        return;
    };
    if got.is_null() {
        errs.push(format!(
            "{what}: expected {} at frame {}, got null",
            want.side, want.frame
        ));
        return;
    }
    expect_eq(errs, format!("{what}.side"), &got["side"], json!(want.side));
    expect_eq(
        errs,
        format!("{what}.frame"),
        &got["frame"],
        json!(want.frame),
    );
    expect_eq(errs, format!("{what}.ttl"), &got["ttl"], json!(want.ttl));
    if rfc3339_micros(&got["at"]) != Some(epoch_micros(want.epoch)) {
        errs.push(format!(
            "{what}.at: expected epoch {}, got {}",
            want.epoch, got["at"]
        ));
    }
}

/// Analyses `file` and checks it against `want` (every SMTP connection, in first-seen order);
/// reports every mismatch at once.
fn check(file: &str, damaged: Damaged, other_tcp: u64, want: &[Conn]) {
    let report = report_for(file);
    let mut errs = Vec::new();

    let got_clients = clients(&report);
    let want_clients: Vec<&str> = want.iter().map(|w| w.client).collect();
    if got_clients != want_clients {
        errs.push(format!(
            "SMTP connections in first-seen order: expected {want_clients:?}, got {got_clients:?}"
        ));
    }
    expect_eq(
        &mut errs,
        "summary.other_tcp_connections".into(),
        &report["summary"]["other_tcp_connections"],
        json!(other_tcp),
    );
    let problems: Vec<&str> = report["problems"]
        .as_array()
        .expect("`problems` is an array")
        .iter()
        .map(|p| p.as_str().expect("a problem is a string"))
        .collect();
    match damaged {
        Damaged::No => {
            if !problems.is_empty() {
                errs.push(format!("problems: expected none, got {problems:?}"));
            }
        }
        Damaged::AtRecord(record) => {
            let record = record.to_string();
            let names_record = |p: &&str| {
                p.split(|ch: char| !ch.is_ascii_digit())
                    .any(|n| n == record)
            };
            if !problems.iter().any(names_record) {
                errs.push(format!(
                    "problems: expected one naming record {record}, got {problems:?}"
                ));
            }
        }
    }

    for w in want.iter().filter(|w| got_clients.contains(&w.client)) {
        let c = conn(&report, w.client);
        let at = |field: &str| format!("{}: {field}", w.client);
        expect_eq(&mut errs, at("server"), &c["server"], json!(w.server));
        check_close(&mut errs, w.client, c, "first_fin", &w.first_fin);
        check_close(&mut errs, w.client, c, "first_rst", &w.first_rst);
        let smtp = &c["smtp"];
        for field in ["quit", "starttls", "transactions", "completed", "banner"] {
            if smtp.get(field).is_none() {
                errs.push(at(&format!("smtp.{field} missing")));
            }
        }
        expect_eq(&mut errs, at("smtp.quit"), &smtp["quit"], json!(w.quit));
        expect_eq(
            &mut errs,
            at("smtp.starttls"),
            &smtp["starttls"],
            json!(w.starttls),
        );
        expect_eq(
            &mut errs,
            at("smtp.transactions"),
            &smtp["transactions"],
            json!(w.transactions),
        );
        if let Some(completed) = w.completed {
            expect_eq(
                &mut errs,
                at("smtp.completed"),
                &smtp["completed"],
                json!(completed),
            );
        }
        expect_eq(
            &mut errs,
            at("smtp.banner"),
            &smtp["banner"],
            json!(w.banner),
        );
        if let Some(layer) = w.layer {
            expect_eq(
                &mut errs,
                at("verdict.layer"),
                &c["verdict"]["layer"],
                json!(layer),
            );
        }
    }

    assert!(
        errs.is_empty(),
        "{file}: {} mismatch(es) with tshark's facts:\n  {}",
        errs.len(),
        errs.join("\n  ")
    );
}

#[test]
fn zeek_smtp() {
    // 6 TCP streams; 2 SMTP. The other 4 (443 twice, 5050, 5223) never get a "220" from
    // the server and must not be listed. Frames 26 and 28-30 are ICMP "fragmentation needed"
    // quoting the SMTP flow's TCP header: not packets of the flow.
    // 10.10.1.4:1470: EHLO, AUTH LOGIN, 1 message (250 at frame 52), QUIT (54), client FIN (55)
    // then 221 and server FIN (57). No RST.
    // 192.168.133.100:49648: 1 MAIL, 3 RCPT, DATA, "." answered 250 (frame 88); then nothing:
    // no QUIT, no FIN, no RST (capture ends).
    check(
        "zeek-smtp.pcap",
        Damaged::No,
        4,
        &[
            Conn {
                client: "10.10.1.4:1470",
                server: "74.53.140.153:25",
                first_fin: Some(close(CLIENT, 55, "1254722774.764576", 128)),
                first_rst: None,
                quit: true,
                starttls: false,
                transactions: 1,
                completed: Some(1),
                banner: Some(220),
                layer: Some("none"),
            },
            Conn {
                client: "192.168.133.100:49648",
                server: "192.168.133.102:25",
                first_fin: None,
                first_rst: None,
                quit: false,
                starttls: false,
                transactions: 1,
                completed: Some(1),
                banner: Some(220),
                layer: Some("unknown"),
            },
        ],
    );
}

#[test]
fn derived_sll_zeek_smtp() {
    // zeek-smtp.pcap with Linux cooked (SLL) headers: same packets, same frame numbers, same
    // facts (tshark shows the same FIN at frame 55 and nothing closing the second session).
    check(
        "derived-sll-zeek-smtp.pcap",
        Damaged::No,
        4,
        &[
            Conn {
                client: "10.10.1.4:1470",
                server: "74.53.140.153:25",
                first_fin: Some(close(CLIENT, 55, "1254722774.764576", 128)),
                first_rst: None,
                quit: true,
                starttls: false,
                transactions: 1,
                completed: Some(1),
                banner: Some(220),
                layer: Some("none"),
            },
            Conn {
                client: "192.168.133.100:49648",
                server: "192.168.133.102:25",
                first_fin: None,
                first_rst: None,
                quit: false,
                starttls: false,
                transactions: 1,
                completed: Some(1),
                banner: Some(220),
                layer: Some("unknown"),
            },
        ],
    );
}

#[test]
fn zeek_smtp_starttls() {
    // EHLO, STARTTLS, "220 2.0.0 Ready to start TLS" (frame 11), TLS handshake, 3 encrypted
    // records each way. Server FIN (31) first, client alert + FIN (34, 35), server RSTs (36, 37).
    // QUIT, if any, is inside TLS: not visible, so quit is false and no MAIL FROM is seen.
    check(
        "zeek-smtp-starttls.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "192.168.4.149:54170",
            server: "74.125.142.26:25",
            first_fin: Some(close(SERVER, 31, "1400168404.423822", 43)),
            first_rst: Some(close(SERVER, 36, "1400168404.468435", 43)),
            quit: false,
            starttls: true,
            transactions: 0,
            completed: Some(0),
            banner: Some(220),
            layer: None,
        }],
    );
}

#[test]
fn zeek_smtp_one_side_only() {
    // Only client->server packets: SYN, "ehlo", 2 x (mail/rcpt/data/body), "quit" (17), FIN
    // (18). No server byte: no banner, no reply code, so no transaction can be known completed.
    check(
        "zeek-smtp-one-side-only.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "192.150.187.22:57722",
            server: "192.150.186.11:25",
            first_fin: Some(close(CLIENT, 18, "1402446190.051509", 64)),
            first_rst: None,
            quit: true,
            starttls: false,
            transactions: 2,
            completed: Some(0),
            banner: None,
            layer: None,
        }],
    );
}

#[test]
fn zeek_smtp_bdat_gap() {
    // MAIL, RCPT, "BDAT 200", 100 bytes, then 1000 client bytes missing (seq 201..1201), then
    // "DATA" / 354 / message / "250 OK: message queued" (frame 32) / QUIT / 221; client FIN (38)
    // then server FIN (39). One MAIL FROM; its message got a 2xx final reply (Zeek agrees:
    // trans_depth 1, last_reply "250 OK: message queued").
    check(
        "zeek-smtp-bdat-gap.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "10.0.0.1:12345",
            server: "10.0.0.2:25",
            first_fin: Some(close(CLIENT, 38, "1776224521.184513", 64)),
            first_rst: None,
            quit: true,
            starttls: false,
            transactions: 1,
            completed: Some(1),
            banner: Some(220),
            layer: None,
        }],
    );
}

#[test]
fn zeek_rfc3030_bdat_multipart_chunked() {
    // One MAIL FROM, 26 x "BDAT 129" each answered 250, then "BDAT 106 LAST" answered
    // "250 2.0.0 Ok: 3462 bytes queued"; QUIT (178), 221, server FIN (181), client FIN (183).
    check(
        "zeek-rfc3030-bdat-multipart-chunked.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "127.0.0.1:38718",
            server: "127.0.0.1:25",
            first_fin: Some(close(SERVER, 181, "1702400714.609412", 64)),
            first_rst: None,
            quit: true,
            starttls: false,
            transactions: 1,
            completed: Some(1),
            banner: Some(220),
            layer: Some("none"),
        }],
    );
}

#[test]
fn zeek_smtp_bdat_pipeline_8bitmime() {
    // Pipelined MAIL/RCPT/"BDAT 4404 LAST" then MAIL/RCPT/"BDAT 8757 LAST", both answered
    // "250 OK id=..."; QUIT (30), client FIN (31) *before* the server's 221 + FIN (32), then
    // client RST (33). A normal close after QUIT.
    check(
        "zeek-smtp-bdat-pipeline-8bitmime.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "23.128.96.18:56074",
            server: "217.146.107.83:25",
            first_fin: Some(close(CLIENT, 31, "1614850928.361800", 52)),
            first_rst: Some(close(CLIENT, 33, "1614850928.503628", 52)),
            quit: true,
            starttls: false,
            transactions: 2,
            completed: Some(2),
            banner: Some(220),
            layer: Some("none"),
        }],
    );
}

#[test]
fn zeek_smtp_bdat_cmd_invalid() {
    // pcapng, 3 connections: MAIL, RCPT, then an invalid BDAT ("BDAT", "BDAT 1234 SCRAMBLE",
    // "BDAT SCRAMBLE") answered "521 5.5.4 Syntax"; the server FINs (19, 41, 63) and the client's
    // "QUIT\r\n" arrives after that FIN in all three (Zeek logs QUIT for all three; Wireshark
    // wrongly shows two of them as "DATA fragment"). An invalid BDAT opens no chunk, so the QUIT
    // is a command, not chunk data. Client FIN last; no RST.
    check(
        "zeek-smtp-bdat-cmd-invalid.pcapng",
        Damaged::No,
        0,
        &[
            Conn {
                client: "127.0.0.1:33472",
                server: "127.0.0.1:25",
                first_fin: Some(close(SERVER, 19, "1705333298.584066", 64)),
                first_rst: None,
                quit: true,
                starttls: false,
                transactions: 1,
                completed: Some(0),
                banner: Some(220),
                layer: None,
            },
            Conn {
                client: "127.0.0.1:52364",
                server: "127.0.0.1:25",
                first_fin: Some(close(SERVER, 41, "1705333378.990097", 64)),
                first_rst: None,
                quit: true,
                starttls: false,
                transactions: 1,
                completed: Some(0),
                banner: Some(220),
                layer: None,
            },
            Conn {
                client: "127.0.0.1:46862",
                server: "127.0.0.1:25",
                first_fin: Some(close(SERVER, 63, "1705333415.079762", 64)),
                first_rst: None,
                quit: true,
                starttls: false,
                transactions: 1,
                completed: Some(0),
                banner: Some(220),
                layer: None,
            },
        ],
    );
}

#[test]
fn zeek_communityid_ipv6_smtp() {
    // IPv6. 220 banner; "ehlo\r\n" typed one segment per character; 250 EHLO reply; then the
    // capture ends: no QUIT, no FIN, no RST.
    check(
        "zeek-communityid-ipv6-smtp.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "[2001:470:e5bf:dead:4957:2174:e82c:4887]:63943",
            server: "[2607:f8b0:400c:c03::1a]:25",
            first_fin: None,
            first_rst: None,
            quit: false,
            starttls: false,
            transactions: 0,
            completed: Some(0),
            banner: Some(220),
            layer: Some("unknown"),
        }],
    );
}

#[test]
fn zeek_tcp_truncated_header() {
    // Snaplen 68: no TCP payload captured at all (the SYN's TCP options are cut too). The client
    // 201.186.157.67 sends the SYN to port 25; the server FINs first (22), client FIN (23), no RST.
    // Payload lengths exist but no byte of SMTP can be read: no banner, no QUIT, no MAIL FROM.
    check(
        "zeek-tcp-truncated-header.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "201.186.157.67:60827",
            server: "128.3.26.249:25",
            first_fin: Some(close(SERVER, 22, "1103139822.934214", 64)),
            first_rst: None,
            quit: false,
            starttls: false,
            transactions: 0,
            completed: Some(0),
            banner: None,
            layer: None,
        }],
    );
}

#[test]
fn zeek_smtp_mail_transactions_invalid() {
    // EHLO sent before the banner; MAIL/RCPT/DATA/354/"."/250 (frame 22); RCPT -> 503; DATA ->
    // 503 and the body lines are answered 500; MAIL -> 250 (frame 37); DATA -> 503 twice; MAIL ->
    // 503 "sender already given"; RCPT -> 250; DATA -> 354; "." -> 250 (frame 71); QUIT; 221 with
    // the server's FIN (74); client FIN (75). 3 MAIL FROM sent, 2 messages got 250 after "."
    // (Wireshark counts 5 end-of-data marks). Both messages finished before QUIT: layer none.
    check(
        "zeek-smtp-mail-transactions-invalid.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "127.0.0.1:44478",
            server: "127.0.0.1:25",
            first_fin: Some(close(SERVER, 74, "1679930261.492338", 64)),
            first_rst: None,
            quit: true,
            starttls: false,
            transactions: 3,
            completed: Some(2),
            banner: Some(220),
            layer: Some("none"),
        }],
    );
}

#[test]
fn sv_smtp_quit() {
    // Handshake, then the server FINs (4) without any banner; the client ACKs and sends
    // "QUIT\r\n" (6); the server answers with a bare RST (7).
    check(
        "sv-smtp-quit.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "10.127.0.202:58121",
            server: "41.225.70.195:25",
            first_fin: Some(close(SERVER, 4, "1692745385.428392", 48)),
            first_rst: Some(close(SERVER, 7, "1692745385.512254", 48)),
            quit: true,
            starttls: false,
            transactions: 0,
            completed: Some(0),
            banner: None,
            layer: None,
        }],
    );
}

#[test]
fn sv_smtp_data_rejected() {
    // Pipelined MAIL/RCPT/DATA answered 553/503/503, RSET/250, then MAIL/RCPT/DATA answered
    // 250/250/354, 114 kB of message, final reply "554 5.7.1 Message contains virus" (195);
    // client FIN (196) without QUIT, server FIN (198). 2 MAIL FROM sent, 0 completed.
    check(
        "sv-smtp-data-rejected.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "10.7.29.101:49898",
            server: "178.63.41.150:25",
            first_fin: Some(close(CLIENT, 196, "1564419707.908666", 128)),
            first_rst: None,
            quit: false,
            starttls: false,
            transactions: 2,
            completed: Some(0),
            banner: Some(220),
            layer: None,
        }],
    );
}

#[test]
fn derived_vlan100_sv_smtp_data_rejected() {
    // sv-smtp-data-rejected.pcap with an 802.1Q tag (VLAN 100): same frames, same facts.
    check(
        "derived-vlan100-sv-smtp-data-rejected.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "10.7.29.101:49898",
            server: "178.63.41.150:25",
            first_fin: Some(close(CLIENT, 196, "1564419707.908666", 128)),
            first_rst: None,
            quit: false,
            starttls: false,
            transactions: 2,
            completed: Some(0),
            banner: Some(220),
            layer: None,
        }],
    );
}

#[test]
fn sv_smtp_to_comma_damaged() {
    // Damaged: records 1-18 are readable (tshark/capinfos stop there); record 19, at byte
    // offset 3695, claims a 3,925,868,813-byte packet. The readable part: 220, EHLO, pipelined
    // MAIL/RCPT/DATA rejected 553/503/503, RSET/250, MAIL/RCPT/DATA answered 250/250/354, first
    // 1460 bytes of the message (18). No close, no QUIT in what can be read.
    check(
        "sv-smtp-to-comma-damaged.pcap",
        Damaged::AtRecord(19),
        0,
        &[Conn {
            client: "10.7.29.101:49898",
            server: "178.63.41.150:25",
            first_fin: None,
            first_rst: None,
            quit: false,
            starttls: false,
            transactions: 2,
            completed: Some(0),
            banner: Some(220),
            layer: Some("unknown"),
        }],
    );
}

#[test]
fn sv_smtp_errors() {
    // 4 connections (sorted by time: 2014, 2018, 2019, 2020).
    // 172.16.2.159:49274: binary garbage sent before the banner, 220 + 500s; client FIN (9) then
    // client RST (12). No MAIL FROM.
    // 10.6.8.101:49448: HELO, MAIL, RCPT, DATA, 354, message and "." ; the server answers with
    // text that has no reply code ("4.7.0 [IPTS04] ... deferred") in the same segment as its FIN
    // (122); then the client sends "QUIT" without CRLF (124) and FINs (125). The message got no
    // 2xx reply.
    // 10.7.29.101:49740: pipelined MAIL/RCPT/DATA answered 472/501/501; client FIN (142), no QUIT.
    // 10.4.16.101:50649: port 465 (not 25, despite SOURCES.md), but the server greets in plain
    // text "220 v02.kerne.org ESMTP Postfix" so it is SMTP; the client sends a TLS ClientHello
    // (answered 402/400), client FIN (155, retransmitted 156), server FIN (157).
    check(
        "sv-smtp-errors.pcap",
        Damaged::No,
        0,
        &[
            Conn {
                client: "172.16.2.159:49274",
                server: "219.94.162.217:25",
                first_fin: Some(close(CLIENT, 9, "1392836565.511359", 128)),
                first_rst: Some(close(CLIENT, 12, "1392836565.695377", 128)),
                quit: false,
                starttls: false,
                transactions: 0,
                completed: Some(0),
                banner: Some(220),
                layer: None,
            },
            Conn {
                client: "10.6.8.101:49448",
                server: "98.137.159.25:25",
                first_fin: Some(close(SERVER, 122, "1528475456.148926", 128)),
                first_rst: None,
                quit: true,
                starttls: false,
                transactions: 1,
                completed: Some(0),
                banner: Some(220),
                layer: None,
            },
            Conn {
                client: "10.7.29.101:49740",
                server: "197.26.11.151:25",
                first_fin: Some(close(CLIENT, 142, "1564419697.370640", 128)),
                first_rst: None,
                quit: false,
                starttls: false,
                transactions: 1,
                completed: Some(0),
                banner: Some(220),
                layer: None,
            },
            Conn {
                client: "10.4.16.101:50649",
                server: "104.131.33.237:465",
                first_fin: Some(close(CLIENT, 155, "1587067620.378645", 128)),
                first_rst: None,
                quit: false,
                starttls: false,
                transactions: 0,
                completed: Some(0),
                banner: Some(220),
                layer: None,
            },
        ],
    );
}

#[test]
fn sv_smtp_pipelining_null() {
    // BSD loopback (DLT_NULL). EHLO, then "MAIL/RCPT/DATA/body/." in one segment, answered
    // 250/250/354/250 in one segment (13); client FIN (15) without QUIT, server FIN (17).
    check(
        "sv-smtp-pipelining-null.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "127.0.0.1:50287",
            server: "127.0.0.1:25",
            first_fin: Some(close(CLIENT, 15, "1544773457.774964", 64)),
            first_rst: None,
            quit: false,
            starttls: false,
            transactions: 1,
            completed: Some(1),
            banner: Some(220),
            layer: None,
        }],
    );
}

#[test]
fn sv_smtp_ehlo_reset_after_rejected_data() {
    // helo; "data" -> 503 (no 354, so no data mode: Wireshark's dissector goes wrong here);
    // ehlo; mail -> 250; rcpt -> 250; data -> 354; message "." -> 250 (20); QUIT (21); 221;
    // server FIN (23), client FIN (24).
    check(
        "sv-smtp-ehlo-reset-after-rejected-data.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "172.19.0.1:45264",
            server: "172.19.0.3:25",
            first_fin: Some(close(SERVER, 23, "1784929865.549395", 64)),
            first_rst: None,
            quit: true,
            starttls: false,
            transactions: 1,
            completed: Some(1),
            banner: Some(220),
            layer: Some("none"),
        }],
    );
}

#[test]
fn sv_firewall_131_smtp_quit_after_mail() {
    // helo, "mail from" -> 250, QUIT (11) before any RCPT/DATA, 221, server FIN (13),
    // client FIN (14).
    check(
        "sv-firewall-131-smtp-quit-after-mail.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "172.22.0.1:53984",
            server: "172.22.0.2:25",
            first_fin: Some(close(SERVER, 13, "1782923933.759339", 64)),
            first_rst: None,
            quit: true,
            starttls: false,
            transactions: 1,
            completed: Some(0),
            banner: Some(220),
            layer: None,
        }],
    );
}

#[test]
fn sv_smtp_bug_5989_long_banner() {
    // Crafted: a 5002-byte banner ("220 ... ESMTP\r\n" + 4966 'A's) spliced into a real session
    // without shifting the server's later sequence numbers, so every later server reply (EHLO
    // reply ... "250 ok" to the message at frame 40, 221 at 44) overlaps the banner in sequence
    // space; tshark's follow-stream shows only the banner for the server side. The client side
    // is intact: EHLO, AUTH LOGIN, MAIL, RCPT, DATA, message, QUIT (42), FIN (43), RST+ACK (45),
    // RST (47). Frame 37 is garbage (not IP). Whether the overlapped "250 ok" counts as the
    // message's final reply depends on the overlap policy (first copy: no; replayed copy: yes),
    // so `completed` is not asserted here.
    check(
        "sv-smtp-bug-5989-long-banner.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "192.168.1.4:3326",
            server: "217.12.11.66:587",
            first_fin: Some(close(CLIENT, 43, "1683372903.000042", 128)),
            first_rst: Some(close(CLIENT, 45, "1683372903.000044", 128)),
            quit: true,
            starttls: false,
            transactions: 1,
            completed: None,
            banner: Some(220),
            layer: None,
        }],
    );
}

#[test]
fn sv_issue_4220_1flowb() {
    // 1358 frames, ~1 MB message. Several server replies are captured after the client's ACK
    // for them (tshark: "ACKed segment that wasn't captured", then "spurious retransmission"):
    // nothing is actually missing. HELO, MAIL, RCPT, DATA, 354, "." -> "250 2.6.0 Queued" (1350),
    // QUIT (1352) answered "250 2.0.0 Service closing" (sic), server FIN (1356), client FIN (1358).
    // Ethernet frames carry non-zero trailers: the IP total length must bound the payload.
    check(
        "sv-issue-4220-1flowB.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "10.15.6.146:30709",
            server: "10.15.2.203:25",
            first_fin: Some(close(SERVER, 1356, "1594955845.446144", 64)),
            first_rst: None,
            quit: true,
            starttls: false,
            transactions: 1,
            completed: Some(1),
            banner: Some(220),
            layer: Some("none"),
        }],
    );
}

#[test]
fn sv_mime_stream_depth() {
    // Port 2525 (tshark needs -d tcp.port==2525,smtp). AUTH PLAIN, then 4 x MAIL/RCPT/DATA;
    // messages 1-3 answered "250 2.0.0 Ok: queued" (656, 1286, 1918); the 4th is still being sent
    // when the capture ends (frame 2500). No QUIT, no FIN, no RST.
    check(
        "sv-mime-stream-depth.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "10.9.18.101:49277",
            server: "207.246.115.231:2525",
            first_fin: None,
            first_rst: None,
            quit: false,
            starttls: false,
            transactions: 4,
            completed: Some(3),
            banner: Some(220),
            layer: Some("unknown"),
        }],
    );
}

#[test]
fn ark_smtp_decrypted() {
    // 4 connections, each EHLO, STARTTLS -> "220 2.0.0 SMTP server ready", then the session
    // continues in *plain text* (TLS terminated before the capture point).
    // 185.25.10.15:49475: pipelined MAIL/RCPT/DATA, message, ".\r\nQUIT\r\n" in one segment,
    // 250 + 221 (33); server FIN (34), server RST (36), client RST (37).
    // 45.0.10.15:28120 (port 2525): MAIL/RCPT, "BDAT 3135 LAST" + chunk, 250, QUIT (57), 221;
    // server FIN (59, again 60), client FIN (61, 62). No RST.
    // 45.0.10.15:28134 (port 2525): MAIL/RCPT, "BDAT 3956 LAST", 250, QUIT (84), 221 (86);
    // server FIN (87), client RST (88), server RST (89).
    // 185.25.10.15:41347: MAIL/RCPT/DATA, ".\r\nQUIT\r\n" (104), 250 + 221 (106); server FIN
    // (107), client RST (109, TTL 63 like its other packets), server RST (110).
    check(
        "ark-smtp-decrypted.pcap",
        Damaged::No,
        0,
        &[
            Conn {
                client: "185.25.10.15:49475",
                server: "45.0.0.15:25",
                first_fin: Some(close(SERVER, 34, "1733385184.823057", 126)),
                first_rst: Some(close(SERVER, 36, "1733385184.823949", 126)),
                quit: true,
                starttls: true,
                transactions: 1,
                completed: Some(1),
                banner: Some(220),
                layer: Some("none"),
            },
            Conn {
                client: "45.0.10.15:28120",
                server: "45.0.0.15:2525",
                first_fin: Some(close(SERVER, 59, "1733486380.295108", 126)),
                first_rst: None,
                quit: true,
                starttls: true,
                transactions: 1,
                completed: Some(1),
                banner: Some(220),
                layer: Some("none"),
            },
            Conn {
                client: "45.0.10.15:28134",
                server: "45.0.0.15:2525",
                first_fin: Some(close(SERVER, 87, "1733486381.366074", 126)),
                first_rst: Some(close(CLIENT, 88, "1733486381.366659", 126)),
                quit: true,
                starttls: true,
                transactions: 1,
                completed: Some(1),
                banner: Some(220),
                layer: Some("none"),
            },
            Conn {
                client: "185.25.10.15:41347",
                server: "45.0.0.15:25",
                first_fin: Some(close(SERVER, 107, "1733486838.672857", 126)),
                first_rst: Some(close(CLIENT, 109, "1733486838.673847", 63)),
                quit: true,
                starttls: true,
                transactions: 1,
                completed: Some(1),
                banner: Some(220),
                layer: Some("none"),
            },
        ],
    );
}

#[test]
fn ark_smtp_data_521() {
    // Port 587. EHLO, AUTH PLAIN -> 235, RSET, MAIL/RCPT/DATA/354, message, final reply
    // "521 5.2.1 MUST COMPLETE IMAGE PUZZLE" (33); server FIN (34); client RSET (36) and FIN (37);
    // server RST (38). No QUIT; 1 MAIL FROM, 0 completed.
    check(
        "ark-smtp-data-521.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "10.0.0.1:56558",
            server: "205.188.186.167:587",
            first_fin: Some(close(SERVER, 34, "1386251822.802520", 55)),
            first_rst: Some(close(SERVER, 38, "1386251823.511410", 55)),
            quit: false,
            starttls: false,
            transactions: 1,
            completed: Some(0),
            banner: Some(220),
            layer: None,
        }],
    );
}

#[test]
fn ark_smtp_moloch_bof() {
    // The client sends HELO/MAIL/RCPT/DATA and the start of the message (4) before the
    // banner; the server's 220/250/250/250/354 come in one segment (6); ".\r\nQUIT\r\n" ends
    // the client's data (22); "250 Message accepted" + "221" (24); server FIN (25); client RST (26).
    check(
        "ark-smtp-moloch-bof.pcap",
        Damaged::No,
        0,
        &[Conn {
            client: "127.0.0.1:50328",
            server: "127.0.0.1:25",
            first_fin: Some(close(SERVER, 25, "1446834929.706108", 64)),
            first_rst: Some(close(CLIENT, 26, "1446834929.714763", 64)),
            quit: true,
            starttls: false,
            transactions: 1,
            completed: Some(1),
            banner: Some(220),
            layer: Some("none"),
        }],
    );
}

/// None of the public captures went through a device that cut or forged anything (they are
/// ordinary sessions, damaged files and protocol oddities): no finding may blame one. Every file
/// in the directory is read, so a capture added later is held to it too.
#[test]
fn no_public_capture_blames_a_device_in_the_path() {
    const MIDDLEBOX: [&str; 6] = [
        "forged_rst",
        "forged_fin",
        "line_length_limit",
        "recipient_limit",
        "header_length_limit",
        "body_line_length_limit",
    ];
    let mut files: Vec<String> = std::fs::read_dir(captures_dir())
        .expect("the public captures directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "only {} public captures", files.len());
    let mut errs = Vec::new();
    for file in &files {
        let report = report_for(file);
        for c in report["connections"].as_array().expect("connections") {
            for f in c["verdict"]["findings"].as_array().expect("findings") {
                let kind = f["kind"].as_str().expect("kind");
                if MIDDLEBOX.contains(&kind) {
                    errs.push(format!("{file} {}: {kind}: {}", c["client"], f["detail"]));
                }
            }
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}
