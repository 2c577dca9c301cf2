//! Property tests across stages, through the public API, for what the stages' own tests leave
//! out:
//!
//! - sequence numbers crossing 2^32 anywhere in a connection, in both directions, through the
//!   flow table with generated packets (cut anywhere, reordered, resent): the two byte streams
//!   come out whole, with no gap and no anomaly (`tests/built_packets.rs` has one fixed case);
//! - a mail log's lifecycles do not depend on the order of its records when whole records
//!   (a framed line with its continuation lines) are shuffled, for syslog framing, wrapped
//!   copies and several appliances in one stream (`src/maillog/tests.rs` shuffles single lines
//!   of on-box files).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use icidtrace::capture::{FrameRef, Packet, TcpFlags};
use icidtrace::maillog::{
    IcidRecord, LineParser, LineRef, LogOptions, MailLog, MidRecord, ParserOptions, YearHint,
    parse_bytes,
};
use icidtrace::tcp::{FlowConfig, FlowTable, StreamSink};
use icidtrace::types::{Side, Timestamp};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Sequence numbers crossing 2^32

#[derive(Default)]
struct Collect {
    client: Vec<u8>,
    server: Vec<u8>,
    gaps: u64,
}

impl StreamSink for Collect {
    fn data(&mut self, side: Side, _at: Timestamp, bytes: &[u8]) {
        match side {
            Side::Client => self.client.extend_from_slice(bytes),
            Side::Server => self.server.extend_from_slice(bytes),
        }
    }

    fn gap(&mut self, _side: Side, _at: Timestamp, bytes: u64) {
        self.gaps += bytes;
    }
}

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 40000);
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25)), 25);

/// One packet to be built: direction, flags, sequence number, payload range of its stream.
#[derive(Debug, Clone)]
struct Seg {
    from_client: bool,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    data: std::ops::Range<usize>,
}

/// Cuts `len` bytes into segments of the given sizes (cycled), each at its sequence number.
fn cut(len: usize, sizes: &[usize], isn: u32) -> Vec<(u32, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < len {
        let n = sizes[i % sizes.len()].min(len - at);
        out.push((isn.wrapping_add(1).wrapping_add(at as u32), at..at + n));
        at += n;
        i += 1;
    }
    out
}

fn flags(syn: bool, ack: bool, fin: bool) -> TcpFlags {
    TcpFlags {
        syn,
        ack,
        fin,
        psh: false,
        rst: false,
    }
}

/// Feeds the segments through a flow table; returns the one connection's streams and facts.
fn run_flow(
    segs: &[Seg],
    client: &[u8],
    server: &[u8],
) -> (icidtrace::tcp::TcpConnection, Collect) {
    let mut table: FlowTable<Collect> = FlowTable::new(FlowConfig::default());
    let mut sink = |_: SocketAddr, _: SocketAddr| Collect::default();
    for (i, s) in segs.iter().enumerate() {
        let (src, dst, bytes) = if s.from_client {
            (CLIENT, SERVER, client)
        } else {
            (SERVER, CLIENT, server)
        };
        let p = Packet {
            frame: FrameRef {
                file: 0,
                number: i as u64 + 1,
            },
            ts: Timestamp(1_700_000_000_000_000_000 + i as i64 * 1_000_000),
            src: src.ip(),
            dst: dst.ip(),
            ttl: 64,
            ip_id: Some(i as u16),
            src_port: src.port(),
            dst_port: dst.port(),
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            window: 65_535,
            payload: &bytes[s.data.clone()],
            payload_missing: 0,
        };
        table.process(&p, &mut sink);
    }
    let mut done = table.finish_all();
    assert_eq!(done.len(), 1, "one connection");
    done.pop().expect("one connection")
}

/// A whole connection: handshake, the client's stream cut and partly reordered and resent, the
/// server's stream cut, acknowledgments of what the receiver has in order, FIN both ways.
#[allow(clippy::too_many_arguments)]
fn connection(
    client: &[u8],
    server: &[u8],
    client_isn: u32,
    server_isn: u32,
    client_sizes: &[usize],
    server_sizes: &[usize],
    swaps: &[(usize, usize)],
    resend: &[usize],
) -> Vec<Seg> {
    let mut segs = vec![
        Seg {
            from_client: true,
            flags: flags(true, false, false),
            seq: client_isn,
            ack: 0,
            data: 0..0,
        },
        Seg {
            from_client: false,
            flags: flags(true, true, false),
            seq: server_isn,
            ack: client_isn.wrapping_add(1),
            data: 0..0,
        },
    ];
    let mut c: Vec<(u32, std::ops::Range<usize>)> = cut(client.len(), client_sizes, client_isn);
    // Reorder within a window of four segments, and resend some (after the original).
    for &(a, b) in swaps {
        if c.is_empty() {
            break;
        }
        let a = a % c.len();
        let b = (a + b % 4).min(c.len() - 1);
        c.swap(a, b);
    }
    for &r in resend {
        if !c.is_empty() {
            let r = r % c.len();
            let copy = c[r].clone();
            c.insert((r + 2).min(c.len()), copy);
        }
    }
    let s = cut(server.len(), server_sizes, server_isn);
    // The server's segments go between the client's, acknowledging what has arrived in order.
    let mut have = vec![false; client.len()];
    let mut in_order = 0usize;
    let mut si = 0;
    for (i, (seq, range)) in c.iter().enumerate() {
        segs.push(Seg {
            from_client: true,
            flags: flags(false, true, false),
            seq: *seq,
            ack: server_isn
                .wrapping_add(1)
                .wrapping_add(s.iter().take(si).map(|x| x.1.len()).sum::<usize>() as u32),
            data: range.clone(),
        });
        for k in range.clone() {
            have[k] = true;
        }
        while in_order < have.len() && have[in_order] {
            in_order += 1;
        }
        if i % 3 == 2 && si < s.len() {
            let (sseq, srange) = s[si].clone();
            si += 1;
            segs.push(Seg {
                from_client: false,
                flags: flags(false, true, false),
                seq: sseq,
                ack: client_isn.wrapping_add(1).wrapping_add(in_order as u32),
                data: srange,
            });
        }
    }
    let client_end = client_isn.wrapping_add(1).wrapping_add(client.len() as u32);
    for (sseq, srange) in s.iter().skip(si).cloned() {
        segs.push(Seg {
            from_client: false,
            flags: flags(false, true, false),
            seq: sseq,
            ack: client_end,
            data: srange,
        });
    }
    let server_end = server_isn.wrapping_add(1).wrapping_add(server.len() as u32);
    segs.push(Seg {
        from_client: true,
        flags: flags(false, true, true),
        seq: client_end,
        ack: server_end,
        data: 0..0,
    });
    segs.push(Seg {
        from_client: false,
        flags: flags(false, true, true),
        seq: server_end,
        ack: client_end.wrapping_add(1),
        data: 0..0,
    });
    segs
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// 2^32 falls anywhere in either stream (or just before or after it).
    #[test]
    fn sequence_numbers_crossing_2_32_lose_nothing(
        client in proptest::collection::vec(any::<u8>(), 1..3000),
        server in proptest::collection::vec(any::<u8>(), 1..600),
        client_wrap in 0usize..3002,
        server_wrap in 0usize..602,
        client_sizes in proptest::collection::vec(1usize..700, 1..8),
        server_sizes in proptest::collection::vec(1usize..200, 1..4),
        swaps in proptest::collection::vec((0usize..64, 0usize..4), 0..6),
        resend in proptest::collection::vec(0usize..64, 0..3),
    ) {
        // The ISN puts 2^32 `wrap` bytes into the stream (the SYN takes one number).
        let client_isn = 0u32.wrapping_sub(client_wrap.min(client.len() + 1) as u32 + 1);
        let server_isn = 0u32.wrapping_sub(server_wrap.min(server.len() + 1) as u32 + 1);
        let segs = connection(
            &client, &server, client_isn, server_isn, &client_sizes, &server_sizes, &swaps, &resend,
        );
        let (tcp, got) = run_flow(&segs, &client, &server);
        prop_assert_eq!((tcp.client, tcp.server), (CLIENT, SERVER));
        prop_assert!(tcp.handshake_seen);
        prop_assert!(got.client == client, "the client's stream comes out whole");
        prop_assert!(got.server == server, "the server's stream comes out whole");
        prop_assert_eq!(got.gaps, 0);
        prop_assert_eq!(tcp.from_client.gap_bytes, 0);
        prop_assert!(tcp.anomalies.is_empty(), "{:?}", tcp.anomalies);
        prop_assert!(tcp.from_client.first_fin.is_some() && tcp.from_server.first_fin.is_some());
        prop_assert!(!tcp.open_at_end);
        prop_assert_eq!(tcp.from_client.retransmissions > 0, !resend.is_empty());
    }
}

/// The same connection starting far from 2^32 and near it gives the same streams and facts
/// (apart from the sequence numbers themselves).
#[test]
fn wrap_point_does_not_change_the_facts() {
    let client: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let server: Vec<u8> = b"220 ok\r\n250 ok\r\n".repeat(20);
    let run = |c_isn: u32, s_isn: u32| {
        let segs = connection(
            &client,
            &server,
            c_isn,
            s_isn,
            &[1448, 512, 7],
            &[16],
            &[(3, 2), (9, 1)],
            &[5],
        );
        run_flow(&segs, &client, &server)
    };
    let (far, far_got) = run(1_000, 2_000_000);
    for wrap in [0u32, 1, 2, 7, 1448, 2500, 4999, 5000, 5001] {
        let (near, got) = run(0u32.wrapping_sub(wrap + 1), u32::MAX - 3);
        assert_eq!(got.client, far_got.client, "wrap {wrap}");
        assert_eq!(got.server, far_got.server, "wrap {wrap}");
        assert_eq!(got.gaps, 0);
        for (a, b) in [
            (&near.from_client, &far.from_client),
            (&near.from_server, &far.from_server),
        ] {
            assert_eq!(a.retransmissions, b.retransmissions, "wrap {wrap}");
            assert_eq!(a.payload_bytes, b.payload_bytes);
            assert_eq!(a.packets, b.packets);
            assert_eq!(a.gap_bytes, 0);
        }
        assert_eq!(near.anomalies, far.anomalies);
    }
}

// ---------------------------------------------------------------------------------------------
// Mail logs: whole records in any order

const MAILLOGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/maillogs/");

fn read_log(rel: &str) -> String {
    std::fs::read_to_string(format!("{MAILLOGS}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The lines of `text` grouped into whole records: each framed line with the lines after it
/// up to the next framed line (its continuations, and any blank or unparsed line). Lines
/// before the first record come first, as a group of their own.
fn records(text: &str, year: YearHint) -> (Vec<String>, Vec<Vec<String>>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut p = LineParser::new(
        0,
        ParserOptions {
            year,
            ..ParserOptions::default()
        },
    );
    let mut starts = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        starts.extend(p.push_line(l.as_bytes(), i as u64 + 1).map(|r| r.line));
    }
    starts.extend(p.finish().map(|r| r.line));
    let starts: std::collections::BTreeSet<usize> =
        starts.into_iter().map(|l| l as usize - 1).collect();
    let mut pre = Vec::new();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if starts.contains(&i) {
            groups.push(vec![l.to_string()]);
        } else if let Some(g) = groups.last_mut() {
            g.push(l.to_string());
        } else {
            pre.push(l.to_string());
        }
    }
    (pre, groups)
}

/// ICID and MID records without their line provenance.
fn lifecycles(log: &MailLog) -> (Vec<IcidRecord>, Vec<MidRecord>) {
    let mut l = log.clone();
    for r in &mut l.icids {
        r.first_line = LineRef { file: 0, line: 0 };
        r.close_line = None;
    }
    for m in &mut l.mids {
        m.first_line = LineRef { file: 0, line: 0 };
    }
    let mut icids = l.icids;
    icids.sort_by(|a, b| (&a.appliance, a.icid).cmp(&(&b.appliance, b.icid)));
    (icids, l.mids)
}

/// A stream mixing syslog lines of two appliances (hosts), wrapped copies with continuation
/// lines, and on-box lines.
fn mixed_corpus() -> String {
    let mut out = String::new();
    // Two appliances over syslog: the same technote conversations under two host names.
    for (host, pri) in [("esa1.example.com", 22), ("esa2.example.com", 166)] {
        for f in [
            "technote/receiving-aborted-fin-rst.log",
            "technote/receiving-aborted-by-sender.log",
        ] {
            for l in read_log(f).lines() {
                // `Www Mmm dd HH:MM:SS YYYY Info: msg` → `<PRI>Mmm dd HH:MM:SS host mail_logs: Info: msg`
                if l.len() > 25 && l.as_bytes()[3] == b' ' {
                    let (stamp, rest) = l.split_at(24);
                    let mmm_dd_hms = &stamp[4..19];
                    out.push_str(&format!("<{pri}>{mmm_dd_hms} {host} mail_logs:{rest}\n"));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Syslog lines of two appliances, shuffled as whole records.
    #[test]
    fn shuffled_syslog_records_of_two_appliances(seed in any::<u64>()) {
        check_shuffled(&mixed_corpus(), seed)?;
    }

    /// A copy wrapped by a document (continuation lines), shuffled as whole records.
    #[test]
    fn shuffled_wrapped_records(seed in any::<u64>()) {
        let text = read_log("technote/receiving-aborted-idle-timeout-split-copy.log")
            + &read_log("technote/receiving-aborted-fin-rst.log");
        check_shuffled(&text, seed)?;
    }

    /// Syslog without host names next to on-box lines with years (the capture cases').
    ///
    /// Not shuffled: year-less syslog lines whose months go back (Nov, then Mar): the year of
    /// such a line is inferred from the order (a month that goes back is the next year), so
    /// their order matters by design.
    #[test]
    fn shuffled_syslog_without_hosts_and_on_box_cases(seed in any::<u64>()) {
        let mut text = String::new();
        for l in read_log("technote/receiving-aborted-idle-timeout.log").lines() {
            if l.len() > 25 && l.as_bytes()[3] == b' ' {
                let (stamp, rest) = l.split_at(24);
                text.push_str(&format!("<166>{} mail_logs:{rest}\n", &stamp[4..19]));
            }
        }
        text.push_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/captures/burst/mail_logs"
            ))
            .expect("burst log"),
        );
        check_shuffled(&text, seed)?;
    }
}

fn check_shuffled(text: &str, seed: u64) -> Result<(), TestCaseError> {
    let year = YearHint::Start(2022);
    let opts = LogOptions {
        syslog_year: Some(2022),
        ..LogOptions::default()
    };
    let reference = parse_bytes("mem", text.as_bytes(), year, &opts);
    prop_assert!(!reference.icids.is_empty(), "the corpus has ICIDs");
    let (pre, mut groups) = records(text, year);
    // Fisher-Yates with a small generator seeded by proptest.
    let mut x = seed | 1;
    for i in (1..groups.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        groups.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let mut shuffled = pre.join("\n");
    for g in &groups {
        if !shuffled.is_empty() {
            shuffled.push('\n');
        }
        shuffled.push_str(&g.join("\n"));
    }
    shuffled.push('\n');
    let got = parse_bytes("mem", shuffled.as_bytes(), year, &opts);
    prop_assert_eq!(lifecycles(&got), lifecycles(&reference));
    prop_assert_eq!(&got.summary.outcomes, &reference.summary.outcomes);
    prop_assert_eq!(got.summary.counts.records, reference.summary.counts.records);
    Ok(())
}
