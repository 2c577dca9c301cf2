//! End-to-end tests on captures built packet by packet: what real TCP stacks will not do on
//! demand (reordering, retransmission with other bytes, segments lost before the capture point,
//! sequence numbers crossing 2^32, port reuse, snaplen cuts, damaged files, VLAN tags).
//!
//! Each test starts from one scripted SMTP session (client 198.51.100.7:40000, server
//! 192.0.2.25:25; see `common`), edits its segments, writes them to a pcap file in a temporary
//! directory and checks what `icidtrace::analyze::analyze` reports.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::Value;

fn gap_anomalies(conn: &Value, side: &str) -> Vec<u64> {
    anomalies(conn, "gap")
        .into_iter()
        .filter(|a| a["side"] == side)
        .map(|a| a["bytes"].as_u64().expect("gap bytes"))
        .collect()
}

fn assert_clean_tcp(conn: &Value) {
    assert_eq!(
        conn["tcp"]["anomalies"],
        serde_json::json!([]),
        "no TCP anomaly expected"
    );
    for side in ["from_client", "from_server"] {
        for c in [
            "retransmissions",
            "gap_bytes",
            "snaplen_cut_bytes",
            "zero_windows",
        ] {
            assert_eq!(counter(conn, side, c), 0, "tcp.{side}.{c}");
        }
    }
}

/// Case 1: a plain, healthy delivery — the reference every other case is compared with.
#[test]
fn baseline_clean_session() {
    let segs = baseline();
    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    assert_eq!(facts(conn), baseline_facts());
    assert_eq!(conn["client"], Net::V4.client());
    assert_eq!(conn["server"], Net::V4.server());
    assert_eq!(conn["tcp"]["handshake_seen"], true);
    assert_clean_tcp(conn);
    assert_eq!(conn["close"]["first_fin"]["side"], "client");
    assert_eq!(conn["close"]["first_fin"]["ttl"], CLIENT_TTL);
    assert_eq!(conn["close"]["first_rst"], Value::Null);
    assert_eq!(
        conn["tcp"]["from_client"]["packets"],
        segs.iter().filter(|s| s.dir == Dir::C2S).count()
    );
    let payload: usize = segs
        .iter()
        .filter(|s| s.dir == Dir::C2S)
        .map(|s| s.payload.len())
        .sum();
    assert_eq!(conn["tcp"]["from_client"]["payload_bytes"], payload);
    assert_eq!(conn["smtp"]["session"]["anomalies"], serde_json::json!([]));
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["captures"]["tcp_packets"], segs.len());
}

/// Case 2: multipath or load-balanced links deliver the client's segments out of order.
#[test]
fn reordered_client_segments_give_the_same_facts() {
    let mut segs = baseline();
    split(&mut segs, "MAIL", &[5, 14, 22]);
    split(&mut segs, "RCPT", &[3]);
    split(&mut segs, "body1", &[30, 60]);
    split(&mut segs, "body3", &[1, 41]);
    split(&mut segs, "end-of-data", &[1]);
    // Within each flight, the client's segments arrive in another order.
    reorder(&mut segs, &["MAIL#3", "MAIL#1", "MAIL#0", "MAIL#2"]);
    reorder(&mut segs, &["RCPT#1", "RCPT#0"]);
    reorder(
        &mut segs,
        &[
            "body3#2",
            "body1#1",
            "body4",
            "body1#0",
            "body2",
            "end-of-data#1",
            "body3#0",
            "body1#2",
            "body3#1",
            "end-of-data#0",
        ],
    );
    retime(&mut segs, START_US);
    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    assert_eq!(facts(conn), baseline_facts());
    assert_clean_tcp(conn);
}

/// Case 3: lost ACKs make both ends resend segments that the capture already holds.
#[test]
fn duplicated_segments_count_as_retransmissions() {
    let mut segs = baseline();
    let dup = |segs: &mut Vec<Seg>, label: &str, after: &str| {
        let copy = segs[find(segs, label)].clone();
        let at = find(segs, after) + 1;
        segs.insert(at, copy);
    };
    dup(&mut segs, "SYN", "SYN"); // SYN retransmitted (same ISN) before the SYN-ACK
    dup(&mut segs, "EHLO", "EHLO");
    dup(&mut segs, "body2", "body3"); // late retransmission
    dup(&mut segs, "body4", "end-of-data");
    dup(&mut segs, "DATA-reply", "DATA-reply");
    dup(&mut segs, "QUIT", "QUIT-reply");
    retime(&mut segs, START_US);
    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    assert_eq!(facts(conn), baseline_facts());
    assert_eq!(counter(conn, "from_client", "retransmissions"), 4);
    assert_eq!(counter(conn, "from_server", "retransmissions"), 1);
    assert_eq!(counter(conn, "from_client", "gap_bytes"), 0);
    assert_eq!(conn["tcp"]["anomalies"], serde_json::json!([]));
}

/// Case 4: a retransmission (or a rewriting middlebox) carries bytes other than the first copy.
#[test]
fn overlap_with_different_bytes_keeps_the_first_copy() {
    // (a) Already delivered: the RCPT line comes again naming another recipient.
    let mut segs = baseline();
    let i = find(&segs, "RCPT");
    let mut evil = segs[i].clone();
    evil.label = "RCPT-evil".into();
    evil.payload = b"RCPT TO:<eve@example.com>\r\n".to_vec();
    assert_eq!(evil.payload.len(), RCPT.len());
    segs.insert(i + 1, evil);
    // (b) Still waiting behind a hole: body3 arrives early, then a copy of it whose bytes
    // would end the message at once, then body2 fills the hole.
    let j = find(&segs, "body3");
    let mut evil3 = segs[j].clone();
    evil3.label = "body3-evil".into();
    let mut bytes = b".\r\nRSET\r\n".to_vec();
    bytes.resize(BODY[2].len(), b'X');
    evil3.payload = bytes;
    segs.insert(j + 1, evil3);
    reorder(&mut segs, &["body3", "body3-evil", "body2"]);
    retime(&mut segs, START_US);

    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    assert_eq!(facts(conn), baseline_facts());
    let conflicts = anomalies(conn, "overlap_conflict");
    assert_eq!(conflicts.len(), 2, "{:#}", conn["tcp"]["anomalies"]);
    assert!(conflicts.iter().all(|a| a["side"] == "client"));
    // Frames are numbered from 1 in capture order.
    let frame_of = |label: &str| find(&segs, label) as u64 + 1;
    assert_eq!(conflicts[0]["frame"]["number"], frame_of("RCPT-evil"));
    assert_eq!(conflicts[1]["frame"]["number"], frame_of("body3-evil"));
    assert_eq!(counter(conn, "from_client", "retransmissions"), 2);
    assert_eq!(counter(conn, "from_client", "gap_bytes"), 0);
}

/// Case 5: the capture point dropped a body segment that the server received (its ACK says so).
#[test]
fn gap_in_the_body_is_measured_and_the_message_still_completes() {
    let mut segs = full_session(0x1000_0000, 0x7000_0000, START_US, true).segs;
    let lost = remove(&mut segs, "body2");
    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    let lost_len = lost.payload.len() as u64;
    assert_eq!(gap_anomalies(conn, "client"), vec![lost_len]);
    assert_eq!(counter(conn, "from_client", "gap_bytes"), lost_len);
    assert_eq!(counter(conn, "from_server", "gap_bytes"), 0);
    // Bytes lost inside the body still count as message bytes; the end mark and the 250 are
    // found after the gap.
    assert_eq!(facts(conn), baseline_facts());
    let smtp_gaps: Vec<&Value> = conn["smtp"]["session"]["anomalies"]
        .as_array()
        .expect("smtp anomalies")
        .iter()
        .filter(|a| a["kind"] == "gap")
        .collect();
    assert_eq!(smtp_gaps.len(), 1);
    assert_eq!(smtp_gaps[0]["bytes"], lost_len);
}

/// Case 6: the capture point dropped a command line (whole, or its first half) the server got.
#[test]
fn gap_in_a_command_line_resynchronises_at_the_next_line() {
    // (a) The whole RCPT segment is missing; the server's reply acknowledges it.
    let mut segs = baseline();
    remove(&mut segs, "RCPT");
    // (b) The RCPT line came in two segments and the first is missing: the tail that arrives
    // ("b@example.com>") must not be read as a line of its own.
    let mut segs_b = baseline();
    split(&mut segs_b, "RCPT", &[11]);
    remove(&mut segs_b, "RCPT#0");

    for (case, segs, lost) in [("whole", segs, RCPT.len()), ("half", segs_b, 11)] {
        let report = analyze_segs(&Net::V4, &segs);
        let conn = only_connection(&report);
        assert_eq!(
            gap_anomalies(conn, "client"),
            vec![lost as u64],
            "{case}: {:#}",
            conn["tcp"]["anomalies"]
        );
        assert_eq!(
            counter(conn, "from_client", "gap_bytes"),
            lost as u64,
            "{case}"
        );
        let f = facts(conn);
        let want = Facts {
            // The recipient was in the lost bytes.
            rcpt_to: vec![vec![]],
            ..baseline_facts()
        };
        assert_eq!(f, want, "{case}");
        let session = &conn["smtp"]["session"];
        let tx = &session["transactions"][0];
        assert_eq!(tx["data"]["go_ahead"]["code"], 354, "{case}");
        assert_eq!(tx["data"]["final_reply"]["code"], 250, "{case}");
        // Nothing of the lost line was taken for a command: MAIL, DATA and QUIT after EHLO.
        assert_eq!(session["commands"], 4, "{case}: {session:#}");
        assert!(
            !session["anomalies"]
                .as_array()
                .expect("anomalies")
                .iter()
                .any(|a| a["kind"] == "unknown_command"),
            "{case}: {:#}",
            session["anomalies"]
        );
    }
}

/// Case 7: tcpdump started on a busy appliance, with the connection already open.
#[test]
fn capture_started_mid_connection() {
    // (a) The first packet is the client's MAIL FROM.
    let mut a = baseline();
    a.drain(..find(&a, "MAIL"));
    // (b) The first packet is a server window update (from port 25) just before the MAIL.
    let mut b = baseline();
    let i = find(&b, "MAIL");
    let mut update = b[i - 1].clone(); // the server's 250 to EHLO
    update.label = "window-update".into();
    update.seq = update.end_seq();
    update.payload.clear();
    update.ip_id += 1;
    b.insert(i, update);
    b.drain(..i);
    for (case, mut segs) in [("client first", a), ("server first", b)] {
        retime(&mut segs, START_US);
        let report = analyze_segs(&Net::V4, &segs);
        let conn = only_connection(&report);
        assert_eq!(conn["client"], Net::V4.client(), "{case}");
        assert_eq!(conn["server"], Net::V4.server(), "{case}");
        assert_eq!(conn["tcp"]["handshake_seen"], false, "{case}");
        assert_eq!(anomalies(conn, "midstream_start").len(), 1, "{case}");
        assert!(gap_anomalies(conn, "client").is_empty(), "{case}");
        assert!(gap_anomalies(conn, "server").is_empty(), "{case}");
        let f = facts(conn);
        assert_eq!(f.transactions, 1, "{case}");
        assert_eq!(f.completed, 1, "{case}");
        assert!(f.quit, "{case}");
        assert_eq!(
            (f.layer.as_str(), f.cause.as_str()),
            ("none", "quit"),
            "{case}"
        );
        assert_eq!(f.data, baseline_facts().data, "{case}");
        // No banner was captured: the 250 to MAIL is not one.
        assert_eq!(f.banner, None, "{case}");
    }
}

/// Case 8: a busy sender reuses its source port — two connections on the same 4-tuple.
#[test]
fn port_reuse_gives_two_connections() {
    let mut first = full_session(0x1000_0000, 0x7000_0000, START_US, false);
    let mut segs = std::mem::take(&mut first.segs);
    // Five seconds later: new ISNs, greeting and envelope, then the client resets.
    let mut second = Script::new(segs.last().expect("segments").ts_us + 5_000_000);
    second.handshake(0x2345_6789, 0x0abc_def0);
    greeting(&mut second);
    envelope(&mut second);
    second.client_rst("RST");
    segs.extend(second.segs);

    let report = analyze_segs(&Net::V4, &segs);
    let conns = connections(&report);
    assert_eq!(conns.len(), 2, "{:#}", report["connections"]);
    for c in conns {
        assert_eq!(c["client"], Net::V4.client());
        assert_eq!(c["server"], Net::V4.server());
        assert_eq!(c["tcp"]["handshake_seen"], true);
    }
    assert_eq!(facts(&conns[0]), baseline_facts());
    assert_eq!(conns[0]["close"]["first_rst"], Value::Null);
    let second = facts(&conns[1]);
    assert_eq!(
        (
            second.layer.as_str(),
            second.initiator.as_str(),
            second.cause.as_str(),
            second.phase.as_str()
        ),
        ("network", "client", "client_rst", "envelope")
    );
    assert_eq!((second.transactions, second.completed), (1, 0));
    assert!(!second.quit);
    assert_eq!(conns[1]["close"]["first_rst"]["side"], "client");
    assert_eq!(conns[1]["close"]["first_fin"], Value::Null);
    assert!(conns[0]["first_seen"].as_str() < conns[1]["first_seen"].as_str());
    for c in conns {
        assert_clean_tcp(c);
    }
}

/// Case 9: sequence numbers wrap past 2^32 in the middle of the message (and of the banner).
#[test]
fn sequence_numbers_wrap_during_data() {
    // Client ISN such that 2^32 falls 10 bytes into body3; server ISN 16 below 2^32.
    let probe = full_session(0, 0, START_US, false).segs;
    let body3 = &probe[find(&probe, "body3")];
    let client_isn = 0u32.wrapping_sub(body3.seq + 10);
    assert!(client_isn >= 0xFFFF_FF00, "ISN {client_isn:#x}");
    let segs = full_session(client_isn, 0xFFFF_FFF0, START_US, false).segs;
    let straddles = |s: &Seg| s.seq > s.end_seq() && !s.payload.is_empty() && s.end_seq() != 0;
    assert_eq!(segs[find(&segs, "body3")].seq, 0xFFFF_FFF6);
    assert!(straddles(&segs[find(&segs, "body3")]));
    assert!(segs.iter().any(|s| s.dir == Dir::S2C && straddles(s)));

    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    assert_eq!(facts(conn), baseline_facts());
    assert_clean_tcp(conn);
    let d = &conn["smtp"]["session"]["transactions"][0]["data"];
    assert_eq!(d["bytes"], body_bytes());
    // And the same with reordering across the wrap point: body3 split at it, pieces swapped.
    let mut segs = segs;
    split(&mut segs, "body3", &[10]);
    reorder(&mut segs, &["body4", "body3#1", "body3#0"]);
    retime(&mut segs, START_US);
    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    assert_eq!(facts(conn), baseline_facts());
    assert_clean_tcp(conn);
}

/// Case 11a: some data packets cut by a small snaplen (part of a merge of differently taken captures).
#[test]
fn snaplen_cut_data_packets_are_counted() {
    let mut segs = baseline();
    let cut = 54 + 10;
    let mut missing = 0;
    for label in ["body2", "body3"] {
        let i = find(&segs, label);
        segs[i].caplen = Some(cut);
        missing += segs[i].payload.len() as u64 - 10;
    }
    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    assert_eq!(counter(conn, "from_client", "snaplen_cut_bytes"), missing);
    assert_eq!(counter(conn, "from_server", "snaplen_cut_bytes"), 0);
    let cuts = anomalies(conn, "snaplen_cut");
    assert_eq!(cuts.len(), 1, "{:#}", conn["tcp"]["anomalies"]);
    assert_eq!(cuts[0]["side"], "client");
    assert_eq!(cuts[0]["frame"]["number"], find(&segs, "body2") as u64 + 1);
    assert_eq!(report["captures"]["truncated_packets"], 2);
    // The cut bytes were sent, so they are message bytes; the message still completes.
    assert_eq!(facts(conn), baseline_facts());
}

/// Case 11b: `tcpdump -s 54` — headers only, every payload cut.
#[test]
fn snaplen_cut_every_payload_is_payload_not_captured() {
    let mut segs = baseline();
    for s in &mut segs {
        s.caplen = Some(54);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "s54.pcap", &pcap(&Net::V4, &segs, 54));
    let report = analyze_path(&path);
    let conn = only_connection(&report);
    let total: u64 = segs.iter().map(|s| s.payload.len() as u64).sum();
    let cut = counter(conn, "from_client", "snaplen_cut_bytes")
        + counter(conn, "from_server", "snaplen_cut_bytes");
    assert_eq!(cut, total);
    let v = &conn["verdict"];
    assert_eq!(v["cause"], "payload_not_captured", "{v:#}");
    assert_eq!(v["layer"], "unknown");
    // Who closed first is still known.
    assert_eq!(v["initiator"], "client");
    assert_eq!(conn["close"]["first_fin"]["side"], "client");
    assert_eq!(conn["smtp"]["transactions"], 0);
    assert_eq!(conn["smtp"]["quit"], false);
}

/// Case 12: a capture copied while tcpdump was still writing it, and one corrupted in the middle.
#[test]
fn damaged_files_report_the_record_and_keep_what_came_before() {
    let segs = baseline();
    let file = pcap(&Net::V4, &segs, 262_144);
    assert_eq!(file.records[0], PCAP_HEADER_LEN);
    let n = file.records.len();
    let last = file.records[n - 1];
    let dir = tempfile::tempdir().expect("tempdir");

    // The last record cut in its data, and cut in its header.
    for (name, keep) in [
        ("cut-data.pcap", last + RECORD_HEADER_LEN + 20),
        ("cut-header.pcap", last + 7),
    ] {
        let mut cut = file.clone();
        cut.bytes.truncate(keep);
        let path = write(dir.path(), name, &cut);
        let report = analyze_path(&path);
        let problems = report["problems"].as_array().expect("problems[]");
        assert_eq!(problems.len(), 1, "{name}: {problems:#?}");
        let p = problems[0].as_str().expect("problem text");
        assert!(p.contains(&*path.to_string_lossy()), "{name}: {p}");
        assert!(p.contains(&format!("record {n}")), "{name}: {p}");
        let damage = &report["captures"]["files"][0]["damage"];
        assert_eq!(damage["record"], n, "{name}");
        assert_eq!(damage["offset"], last, "{name}");
        // Only the final ACK is missing: the session is all there.
        let conn = only_connection(&report);
        assert_eq!(facts(conn), baseline_facts(), "{name}");
        assert_eq!(report["captures"]["tcp_packets"], n - 1, "{name}");
    }

    // An absurd record length at the DATA command.
    let k = find(&segs, "DATA") + 1; // record number
    let mut bad = file.clone();
    let at = bad.records[k - 1] + 8;
    bad.bytes[at..at + 4].copy_from_slice(&0xF000_0000u32.to_le_bytes());
    let path = write(dir.path(), "absurd.pcap", &bad);
    let report = analyze_path(&path);
    let problems = report["problems"].as_array().expect("problems[]");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problems[0].as_str().expect("problem text");
    assert!(p.contains(&*path.to_string_lossy()), "{p}");
    assert!(p.contains(&format!("record {k}")), "{p}");
    assert!(p.contains(&0xF000_0000u32.to_string()), "{p}");
    assert_eq!(report["captures"]["files"][0]["damage"]["record"], k);
    assert_eq!(report["captures"]["tcp_packets"], k - 1);
    let conn = only_connection(&report);
    let f = facts(conn);
    assert_eq!((f.transactions, f.completed, f.quit), (1, 0, false));
    assert_eq!(
        (f.layer.as_str(), f.cause.as_str(), f.phase.as_str()),
        ("unknown", "capture_ended", "envelope")
    );
    assert_eq!(f.rcpt_to, baseline_facts().rcpt_to);
}

/// Case 13: an appliance on a trunk port (802.1Q, QinQ) and IPv6 senders.
#[test]
fn ipv6_and_vlan_variants_give_the_baseline_facts() {
    let segs = baseline();
    for family in [Family::V4, Family::V6] {
        for link in [Link::Plain, Link::Vlan(120), Link::QinQ(300, 120)] {
            let net = Net { link, family };
            let report = analyze_segs(&net, &segs);
            let conn = only_connection(&report);
            assert_eq!(facts(conn), baseline_facts(), "{net:?}");
            assert_eq!(conn["client"], net.client(), "{net:?}");
            assert_eq!(conn["server"], net.server(), "{net:?}");
            assert_clean_tcp(conn);
            assert_eq!(report["captures"]["tcp_packets"], segs.len(), "{net:?}");
            let ip_id = &conn["close"]["first_fin"]["ip_id"];
            match family {
                Family::V4 => assert!(ip_id.is_u64(), "{net:?}"),
                Family::V6 => assert!(ip_id.is_null(), "{net:?}"),
            }
        }
    }
    let net = Net {
        link: Link::Plain,
        family: Family::V6,
    };
    assert_eq!(net.client(), "[2001:db8::7]:40000");
}

/// Case 14: asymmetric routing — the capture sees only what the client sent.
#[test]
fn client_direction_only() {
    let mut segs = baseline();
    segs.retain(|s| s.dir == Dir::C2S);
    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    assert_eq!(conn["client"], Net::V4.client());
    assert_eq!(conn["tcp"]["from_server"]["packets"], 0);
    let f = facts(conn);
    assert!(f.quit);
    assert_eq!(f.transactions, 1);
    assert_eq!(f.mail_from, baseline_facts().mail_from);
    assert_eq!(f.rcpt_to, baseline_facts().rcpt_to);
    // The whole message was sent; its reply is not in the capture.
    assert_eq!(f.data, vec![Some((body_bytes(), true, None))]);
    assert_eq!(f.completed, 0);
    assert_eq!(
        (f.layer.as_str(), f.initiator.as_str(), f.cause.as_str()),
        ("none", "client", "quit")
    );
    assert!(gap_anomalies(conn, "client").is_empty());
}

/// The writer's check: libpcap itself reads the hand-written pcap as intended (lengths, times).
#[cfg(feature = "libpcap")]
#[test]
fn libpcap_reads_the_built_files() {
    let mut segs = baseline();
    let i = find(&segs, "body1");
    segs[i].caplen = Some(60);
    let file = pcap(&Net::V4, &segs, 65_535);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "check.pcap", &file);
    let mut cap = pcap::Capture::from_file(&path).expect("libpcap opens the file");
    assert_eq!(cap.get_datalink(), pcap::Linktype::ETHERNET);
    for seg in &segs {
        let p = cap.next_packet().expect("one record per segment");
        let full = frame(&Net::V4, seg);
        assert_eq!(p.header.len as usize, full.len(), "{}", seg.label);
        assert_eq!(
            p.data,
            &full[..seg.caplen.unwrap_or(full.len())],
            "{}",
            seg.label
        );
        let ts = format!("{}.{:06}", p.header.ts.tv_sec, p.header.ts.tv_usec);
        let want = format!("{}.{:06}", seg.ts_us / 1_000_000, seg.ts_us % 1_000_000);
        assert_eq!(ts, want, "{}", seg.label);
    }
    assert!(matches!(cap.next_packet(), Err(pcap::Error::NoMorePackets)));
}

// ------------------------------------------------------------------ bugs found

/// The capture point dropped a client segment and the first packet acknowledging it is the
/// server's reply (no pure ACK in between), as when the lost segment is the last of the body.
#[test]
fn gap_acknowledged_only_by_the_reply() {
    for lost in ["body4", "end-of-data", "body2"] {
        let mut segs = baseline(); // no server ACK between the body segments
        let gone = remove(&mut segs, lost);
        let report = analyze_segs(&Net::V4, &segs);
        let conn = only_connection(&report);
        assert_eq!(
            gap_anomalies(conn, "client"),
            vec![gone.payload.len() as u64],
            "{lost}"
        );
        let f = facts(conn);
        assert_eq!(
            (f.layer.as_str(), f.cause.as_str(), f.quit),
            ("none", "quit", true),
            "{lost}: {f:?}"
        );
        assert_eq!((f.transactions, f.completed), (1, 1), "{lost}");
        let session = &conn["smtp"]["session"];
        // The 250 answers the end of data, the 221 answers QUIT.
        assert_eq!(
            session["transactions"][0]["data"]["final_reply"]["code"], 250,
            "{lost}"
        );
        assert_eq!(session["quit"]["reply"]["code"], 221, "{lost}");
        assert_eq!(
            session["unprompted_replies"],
            serde_json::json!([]),
            "{lost}"
        );
        if lost == "body2" {
            // The end mark was captured: everything is as in the baseline.
            assert_eq!(f, baseline_facts(), "{lost}");
        }
    }
}

/// A data packet cut by the snaplen arrives out of order (before the segment preceding it).
#[test]
fn snaplen_cut_packet_out_of_order_is_not_a_gap() {
    // The server ACKs after body3, so the replies are not the first to acknowledge anything.
    let mut segs = full_session(0x1000_0000, 0x7000_0000, START_US, true).segs;
    let i = find(&segs, "body2");
    segs[i].caplen = Some(54 + 10);
    let missing = segs[i].payload.len() as u64 - 10;
    reorder(&mut segs, &["body2", "body1"]);
    retime(&mut segs, START_US);
    let report = analyze_segs(&Net::V4, &segs);
    let conn = only_connection(&report);
    assert_eq!(facts(conn), baseline_facts());
    assert_eq!(counter(conn, "from_client", "snaplen_cut_bytes"), missing);
    assert_eq!(anomalies(conn, "snaplen_cut").len(), 1);
    // The bytes were cut by the snaplen, not lost before the capture point.
    assert_eq!(counter(conn, "from_client", "gap_bytes"), 0);
    assert!(
        gap_anomalies(conn, "client").is_empty(),
        "{:#}",
        conn["tcp"]["anomalies"]
    );
}

/// Port reuse after a connection the capture joined midway and whose close it only half saw.
#[test]
fn port_reuse_after_a_midstream_connection() {
    // The capture starts at MAIL; the server's FIN-ACK and the last ACK were dropped.
    let mut segs = baseline();
    segs.drain(..find(&segs, "MAIL"));
    segs.truncate(find(&segs, "FIN-ACK"));
    let mut second = Script::new(segs.last().expect("segments").ts_us + 5_000_000);
    second.handshake(0x2345_6789, 0x0abc_def0);
    greeting(&mut second);
    envelope(&mut second);
    second.client_rst("RST");
    segs.extend(second.segs);
    let report = analyze_segs(&Net::V4, &segs);
    let conns = connections(&report);
    assert_eq!(conns.len(), 2, "{:#}", report["connections"]);
    let first = facts(&conns[0]);
    assert_eq!(
        (first.transactions, first.completed, first.quit),
        (1, 1, true)
    );
    assert_eq!(conns[1]["tcp"]["handshake_seen"], true);
    let second = facts(&conns[1]);
    assert_eq!(
        (
            second.layer.as_str(),
            second.cause.as_str(),
            second.phase.as_str()
        ),
        ("network", "client_rst", "envelope")
    );
    for c in conns {
        assert!(
            gap_anomalies(c, "client").is_empty(),
            "{:#}",
            c["tcp"]["anomalies"]
        );
    }
}

// ------------------------------------------------------------------ case 10: property test

/// One random choice per piece: (piece size, bytes resent before it, duplicate?, delay).
type Choice = (usize, usize, u8, usize);

/// The baseline with each client flight (the client's data between two server replies) cut
/// into random pieces, some pieces reaching back over bytes already sent, some sent twice,
/// and the pieces of a flight shuffled within a window of four. Returns the segments and the
/// number of payload bytes the client sent in all.
fn mangle(choices: &[Choice]) -> (Vec<Seg>, u64) {
    let base = baseline();
    let (origin, stream) = client_stream(&base);
    let mut next_choice = choices.iter().cycle();
    let mut out: Vec<Seg> = Vec::new();
    let mut sent = 0u64;
    let mut flight: Vec<Seg> = Vec::new();
    let flush = |flight: &mut Vec<Seg>,
                 out: &mut Vec<Seg>,
                 sent: &mut u64,
                 next: &mut dyn FnMut() -> Choice| {
        let (Some(first), Some(last)) = (flight.first(), flight.last()) else {
            return;
        };
        let start = first.seq.wrapping_sub(origin) as usize;
        let end = last.end_seq().wrapping_sub(origin) as usize;
        let template = first.clone();
        let mut pieces: Vec<(usize, Seg)> = Vec::new();
        let mut at = start;
        while at < end {
            let (size, back, dup, delay) = next();
            let to = (at + 1 + size % 40).min(end);
            let from = at.saturating_sub(back % 8);
            let mut seg = template.clone();
            seg.label = format!("piece{}-{}", from, to);
            seg.seq = origin.wrapping_add(from as u32);
            seg.payload = stream[from..to].to_vec();
            let key = pieces.len() + delay % 4;
            if dup % 5 == 0 {
                pieces.push((key + 1, seg.clone()));
            }
            pieces.push((key, seg));
            at = to;
        }
        pieces.sort_by_key(|(k, _)| *k);
        for (_, p) in pieces {
            *sent += p.payload.len() as u64;
            out.push(p);
        }
        flight.clear();
    };
    let mut next = || *next_choice.next().expect("choices not empty");
    for seg in base {
        if seg.dir == Dir::C2S && !seg.payload.is_empty() {
            flight.push(seg);
            continue;
        }
        flush(&mut flight, &mut out, &mut sent, &mut next);
        out.push(seg);
    }
    flush(&mut flight, &mut out, &mut sent, &mut next);
    retime(&mut out, START_US);
    (out, sent)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Case 10: whatever the path does to the client's segments (cut, reorder, resend, overlap).
    #[test]
    fn resegmented_client_stream_gives_the_baseline_facts(
        choices in proptest::collection::vec((0usize..64, 0usize..16, 0u8..10, 0usize..8), 1..64)
    ) {
        let (segs, sent) = mangle(&choices);
        let (_, stream) = client_stream(&baseline());
        let report = analyze_segs(&Net::V4, &segs);
        let conn = only_connection(&report);
        prop_assert_eq!(facts(conn), baseline_facts());
        prop_assert!(anomalies(conn, "gap").is_empty(), "{:#}", conn["tcp"]["anomalies"]);
        prop_assert!(anomalies(conn, "overlap_conflict").is_empty());
        prop_assert_eq!(counter(conn, "from_client", "gap_bytes"), 0);
        let retrans = counter(conn, "from_client", "retransmissions");
        prop_assert_eq!(retrans > 0, sent > stream.len() as u64, "retransmissions {}, sent {} of {}", retrans, sent, stream.len());
    }
}

/// A firewall resets the connection in the client's name during the envelope (e.g. SMTP
/// inspection refusing a recipient): the RST arrives with the firewall's TTL, out of the client's
/// IP ID sequence, and the client, which knows nothing of it, keeps sending.
#[test]
fn rst_in_the_clients_name_from_a_device_in_the_path_is_middlebox() {
    let mut s = Script::new(1_700_000_000_000_000);
    s.handshake(1000, 5000);
    greeting(&mut s);
    envelope(&mut s);
    let rst = s.client_rst("forged-RST");
    s.segs[rst].ttl = 255;
    s.segs[rst].ip_id = 0;
    // The client's own next command arrives after "its" RST.
    s.client("DATA", b"DATA\r\n");
    let report = analyze_segs(&Net::V4, &s.segs);
    let c = only_connection(&report);
    assert_eq!(c["verdict"]["initiator"], "middlebox", "{}", c["verdict"]);
    assert_eq!(c["verdict"]["cause"], "forged_rst");
    assert_eq!(c["verdict"]["layer"], "network");
    let kinds: Vec<&str> = c["verdict"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"forged_rst") && kinds.contains(&"data_after_rst"),
        "{kinds:?}"
    );
    let detail = c["verdict"]["findings"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("TTL 255"), "{detail}");
}

/// The client's own RST (same TTL as its other packets, nothing after it) stays the client's.
#[test]
fn the_clients_own_rst_is_not_flagged() {
    let mut s = Script::new(1_700_000_000_000_000);
    s.handshake(1000, 5000);
    greeting(&mut s);
    envelope(&mut s);
    s.client_rst("RST");
    let report = analyze_segs(&Net::V4, &s.segs);
    let c = only_connection(&report);
    assert_eq!(c["verdict"]["initiator"], "client");
    assert_eq!(c["verdict"]["cause"], "client_rst");
    assert!(
        c["verdict"]["findings"].as_array().unwrap().is_empty(),
        "{}",
        c["verdict"]["findings"]
    );
}

/// An RST after QUIT and 221 is how many clients close their socket: not a device's doing,
/// whatever its TTL.
#[test]
fn rst_after_quit_is_ordinary_teardown() {
    let mut s = Script::new(1_700_000_000_000_000);
    s.handshake(1000, 5000);
    greeting(&mut s);
    envelope(&mut s);
    data(&mut s, false);
    s.client("QUIT", b"QUIT\r\n");
    s.server("QUIT-reply", b"221 bye\r\n");
    let rst = s.client_rst("RST");
    s.segs[rst].ttl = 255;
    let report = analyze_segs(&Net::V4, &s.segs);
    let c = only_connection(&report);
    assert_eq!(c["verdict"]["layer"], "none");
    assert_eq!(c["verdict"]["cause"], "quit");
    assert!(
        c["verdict"]["findings"].as_array().unwrap().is_empty(),
        "{}",
        c["verdict"]["findings"]
    );
}
