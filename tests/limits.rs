//! The limits that keep a hostile or odd capture from exhausting memory: each one holds, and
//! hitting it is counted or reported, not silent.
//!
//! - open connections: `FlowConfig::max_open_flows`, the least recently active finished early
//!   and counted (`FlowTable::evicted_flows`); through `analyze`, a line in `problems`;
//! - out-of-order bytes: per direction (`max_pending_bytes`) and over the whole table
//!   (`max_total_pending_bytes`), the excess dropped and reported as `buffer_full`;
//! - TCP anomalies per connection: at most `MAX_TCP_ANOMALIES`;
//! - SMTP line length, held bytes and the other session caps are tested in `src/smtp/tests.rs`;
//!   mail-log line length in `src/maillog/tests.rs`; a capture record longer than the reader's
//!   buffer limit in `src/capture/tests.rs`;
//! - pcapng interfaces kept per section (`MAX_INTERFACES`) and link types listed per file: a
//!   file of millions of interface blocks stays fast and its summary short.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use icidtrace::capture::{FrameRef, Packet, TcpFlags};
use icidtrace::tcp::flow::MAX_TCP_ANOMALIES;
use icidtrace::tcp::{FlowConfig, FlowTable, StreamSink, TcpAnomaly, TcpConnection};
use icidtrace::types::{Side, Timestamp};

#[derive(Default)]
struct Count {
    bytes: u64,
}

impl StreamSink for Count {
    fn data(&mut self, _side: Side, _at: Timestamp, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
    }
    fn gap(&mut self, _side: Side, _at: Timestamp, _bytes: u64) {}
}

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25));

fn client(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xc633_6400 + n))
}

#[allow(clippy::too_many_arguments)]
fn packet<'a>(
    n: u64,
    ms: i64,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    syn: bool,
    ack: bool,
    payload: &'a [u8],
) -> Packet<'a> {
    Packet {
        frame: FrameRef { file: 0, number: n },
        ts: Timestamp(1_700_000_000_000_000_000 + ms * 1_000_000),
        src: src.ip(),
        dst: dst.ip(),
        ttl: 64,
        ip_id: Some(n as u16),
        src_port: src.port(),
        dst_port: dst.port(),
        seq,
        ack: 0,
        flags: TcpFlags {
            syn,
            ack,
            ..TcpFlags::default()
        },
        window: 1000,
        payload,
        payload_missing: 0,
    }
}

fn table(config: FlowConfig) -> FlowTable<Count> {
    FlowTable::new(config)
}

fn new_sink(_: SocketAddr, _: SocketAddr) -> Count {
    Count::default()
}

#[test]
fn open_connections_are_capped_and_the_oldest_are_finished_early() {
    let mut t = table(FlowConfig {
        max_open_flows: 64,
        ..FlowConfig::default()
    });
    let server = SocketAddr::new(SERVER, 25);
    // 1,000 connections under way (a SYN and a first byte) that never close, one a millisecond.
    for i in 0..1000u32 {
        let c = SocketAddr::new(client(i % 200), 10_000 + i as u16);
        let frame = 2 * u64::from(i);
        let syn = packet(frame + 1, i64::from(i), c, server, i, true, false, b"");
        t.process(&syn, &mut new_sink);
        let data = packet(frame + 2, i64::from(i), c, server, i + 1, false, true, b"x");
        t.process(&data, &mut new_sink);
        assert!(t.open_connections() <= 64, "{}", t.open_connections());
    }
    assert!(t.evicted_flows() >= 1000 - 64, "{}", t.evicted_flows());
    let evicted = t.evicted_flows() as usize;
    let done = t.finish_all();
    assert_eq!(done.len(), 1000, "every connection is finished once");
    // The ones finished early (they come first) are the least recently active.
    let (early, rest) = done.split_at(evicted);
    let latest_early = early.iter().map(|(c, _)| c.last_seen).max();
    let earliest_rest = rest.iter().map(|(c, _)| c.last_seen).min();
    assert!(latest_early < earliest_rest);
}

#[test]
fn attempts_and_closed_connections_are_evicted_before_open_ones() {
    let mut t = table(FlowConfig {
        max_open_flows: 16,
        ..FlowConfig::default()
    });
    let server = SocketAddr::new(SERVER, 25);
    let mut n = 0;
    // One old connection that stays open and talks, then many that are reset at once.
    let old = SocketAddr::new(client(1), 40_000);
    n += 1;
    t.process(
        &packet(n, 0, old, server, 100, true, false, b""),
        &mut new_sink,
    );
    n += 1;
    t.process(
        &packet(n, 1, old, server, 101, false, true, b"EHLO x\r\n"),
        &mut new_sink,
    );
    for i in 0..100u32 {
        let c = SocketAddr::new(client(2), 20_000 + i as u16);
        n += 1;
        t.process(
            &packet(n, 10 + i64::from(i), c, server, i, true, false, b""),
            &mut new_sink,
        );
        let mut rst = packet(n, 10 + i64::from(i), c, server, i + 1, false, false, b"");
        rst.flags.rst = true;
        n += 1;
        rst.frame.number = n;
        t.process(&rst, &mut new_sink);
    }
    // The old connection goes on: had it been finished early, this would start another one.
    n += 1;
    t.process(
        &packet(
            n,
            500,
            old,
            server,
            109,
            false,
            true,
            b"MAIL FROM:<a@example.org>\r\n",
        ),
        &mut new_sink,
    );
    assert!(t.open_connections() <= 16);
    assert_eq!(
        t.evicted_flows(),
        0,
        "only attempts were finished early: nothing lost"
    );
    let done = t.finish_all();
    let old_conn: Vec<&TcpConnection> = done
        .iter()
        .map(|(c, _)| c)
        .filter(|c| c.client == old)
        .collect();
    assert_eq!(
        old_conn.len(),
        1,
        "the open connection was never cut in two"
    );
}

/// Out-of-order data of one direction beyond a hole that never fills.
fn hole_then(t: &mut FlowTable<Count>, c: SocketAddr, n: &mut u64, segments: u32) {
    let server = SocketAddr::new(SERVER, 25);
    *n += 1;
    t.process(
        &packet(*n, 0, c, server, 999, true, false, b""),
        &mut new_sink,
    );
    let data = [b'x'; 1000];
    for k in 0..segments {
        *n += 1;
        // Byte 0 (seq 1000) never comes; everything from seq 2000 on waits behind it.
        t.process(
            &packet(*n, 1, c, server, 2000 + k * 1000, false, false, &data),
            &mut new_sink,
        );
    }
}

fn buffer_full(c: &TcpConnection) -> u64 {
    c.anomalies
        .iter()
        .map(|a| match a {
            TcpAnomaly::BufferFull { dropped_bytes, .. } => *dropped_bytes,
            _ => 0,
        })
        .sum()
}

#[test]
fn out_of_order_bytes_are_capped_per_direction_and_reported() {
    let mut t = table(FlowConfig {
        max_pending_bytes: 10_000,
        ..FlowConfig::default()
    });
    let mut n = 0;
    hole_then(&mut t, SocketAddr::new(client(1), 40_000), &mut n, 50);
    assert!(t.pending_bytes() <= 10_000, "{}", t.pending_bytes());
    let done = t.finish_all();
    let c = &done[0].0;
    assert!(buffer_full(c) > 0, "{:?}", c.anomalies);
}

#[test]
fn out_of_order_bytes_are_capped_over_all_connections_and_reported() {
    let mut t = table(FlowConfig {
        max_pending_bytes: 100_000,
        max_total_pending_bytes: 25_000,
        ..FlowConfig::default()
    });
    let mut n = 0;
    for i in 0..10 {
        hole_then(&mut t, SocketAddr::new(client(i), 40_000), &mut n, 10);
        assert!(t.pending_bytes() <= 25_000, "{}", t.pending_bytes());
    }
    let done = t.finish_all();
    let dropped: u64 = done.iter().map(|(c, _)| buffer_full(c)).sum();
    // 10 connections × 10,000 bytes waiting, 25,000 kept.
    assert_eq!(dropped, 100_000 - 25_000);
    // What was kept was delivered at the end (after the hole), none of it twice.
    let delivered: u64 = done.iter().map(|(_, s)| s.bytes).sum();
    assert_eq!(delivered, 25_000);
}

#[test]
fn anomalies_per_connection_are_capped() {
    let mut t = table(FlowConfig::default());
    let server = SocketAddr::new(SERVER, 25);
    let c = SocketAddr::new(client(1), 40_000);
    let mut n = 1;
    t.process(
        &packet(n, 0, c, server, 999, true, false, b""),
        &mut new_sink,
    );
    n += 1;
    t.process(
        &packet(n, 1, c, server, 1000, false, false, b"MAIL FROM:<a@b>\r\n"),
        &mut new_sink,
    );
    // 10,000 retransmissions of those bytes, each with other content: one conflict each.
    for k in 0..10_000u64 {
        n += 1;
        let other = [b'A' + (k % 26) as u8; 17];
        t.process(
            &packet(n, 2 + k as i64, c, server, 1000, false, false, &other),
            &mut new_sink,
        );
    }
    let done = t.finish_all();
    let conn = &done[0].0;
    assert_eq!(conn.anomalies.len(), MAX_TCP_ANOMALIES);
    assert!(
        conn.anomalies
            .iter()
            .all(|a| matches!(a, TcpAnomaly::OverlapConflict { .. }))
    );
    // The count is still whole.
    assert_eq!(conn.from_client.retransmissions, 10_000);
}

/// A pcapng block.
fn ng_block(out: &mut Vec<u8>, t: u32, body: &[u8]) {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    out.extend_from_slice(&t.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&vec![0; pad]);
    out.extend_from_slice(&len.to_le_bytes());
}

#[test]
fn pcapng_interfaces_and_link_types_listed_are_capped() {
    use icidtrace::capture::reader::MAX_INTERFACES;
    // A section with 50,000 interface blocks of 20,000 link types (Ethernet first), then one
    // packet on interface 0 and one on an interface past the cap.
    let mut ng = Vec::new();
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    ng_block(&mut ng, 0x0a0d_0d0a, &shb);
    for i in 0..50_000u32 {
        let lt = if i == 0 { 1 } else { 2 + i % 20_000 } as u16;
        let mut idb = lt.to_le_bytes().to_vec();
        idb.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        ng_block(&mut ng, 1, &idb);
    }
    for iface in [0u32, MAX_INTERFACES as u32 + 10] {
        let mut epb = iface.to_le_bytes().to_vec();
        epb.extend_from_slice(&[0; 8]);
        epb.extend_from_slice(&14u32.to_le_bytes());
        epb.extend_from_slice(&14u32.to_le_bytes());
        epb.extend_from_slice(&[0; 14]);
        ng_block(&mut ng, 6, &epb);
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("many.pcapng");
    std::fs::write(&p, &ng).unwrap();
    let started = std::time::Instant::now();
    let s = icidtrace::capture::read_captures(
        &[p.display().to_string()],
        &Default::default(),
        &mut |_| {},
    )
    .expect("readable");
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    let f = &s.files[0];
    assert_eq!(f.records, 2);
    assert_eq!(s.ignored.unsupported_link, 1, "the packet past the cap");
    assert!(f.link_types.len() <= 64, "{}", f.link_types.len());
    // At most 64 unsupported link types named, plus one note each for the caps and for the
    // packet of an interface not kept.
    assert!(f.notes.len() <= 64 + 3, "{}", f.notes.len());
    assert!(
        f.notes
            .iter()
            .any(|n| n.contains("more than 4096 interface description blocks")),
        "{:?}",
        f.notes.last()
    );
    assert!(
        f.notes
            .iter()
            .any(|n| n.contains("more than 64 link types"))
    );
}

/// The peak resident memory of this process, from /proc (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_record_claiming_more_than_the_file_holds_costs_no_memory() {
    // A pcap with one good record, then a record header that claims 200 MB (allowed: snaplen
    // 0 means "no limit") followed by 100 bytes. The reader grows its buffer step by step as
    // data arrives, so it finds the file cut without allocating what the record claims.
    let pcap = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/captures/rst-during-data/capture.pcap"
    ))
    .unwrap();
    let mut b = pcap[..16].to_vec();
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&pcap[20..24]);
    let incl = u32::from_le_bytes(pcap[32..36].try_into().unwrap()) as usize;
    b.extend_from_slice(&pcap[24..24 + 16 + incl]);
    b.extend_from_slice(&pcap[24..32]);
    b.extend_from_slice(&200_000_000u32.to_le_bytes());
    b.extend_from_slice(&200_000_000u32.to_le_bytes());
    b.extend_from_slice(&[b'x'; 100]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("claim.pcap");
    std::fs::write(&p, &b).unwrap();
    let s = icidtrace::capture::read_captures(
        &[p.display().to_string()],
        &Default::default(),
        &mut |_| {},
    )
    .expect("readable");
    let d = s.files[0].damage.as_ref().expect("damaged");
    assert_eq!(d.record, 2);
    assert!(
        d.message.contains("its header says 200000000 bytes"),
        "{}",
        d.message
    );
    if let Some(kib) = peak_rss_kib() {
        assert!(kib < 150 * 1024, "peak memory {kib} KiB");
    }
}

/// A closed connection is finished after a short linger; its packets that come later (an
/// endpoint that never saw the RST, retransmitting) are counted as late, not taken for a new
/// connection joined mid-stream; a new SYN on the same ports is a new connection.
#[test]
fn late_packets_of_a_finished_connection_are_counted_not_a_new_connection() {
    let mut t = table(FlowConfig::default());
    let server = SocketAddr::new(SERVER, 25);
    let c = SocketAddr::new(client(1), 40_000);
    let mut rst = packet(3, 20, server, c, 5000, false, false, b"");
    rst.flags.rst = true;
    let steps = [
        packet(1, 0, c, server, 100, true, false, b""),
        packet(2, 10, c, server, 101, false, true, b"EHLO x\r\n"),
        rst,
        // Another connection's packets move capture time on (the table sweeps as time passes).
        packet(
            4,
            30_000,
            SocketAddr::new(client(2), 1),
            server,
            1,
            true,
            false,
            b"",
        ),
        // The client never saw the RST: it retransmits a minute later.
        packet(5, 60_000, c, server, 101, false, true, b"EHLO x\r\n"),
        packet(6, 61_000, c, server, 101, false, true, b"EHLO x\r\n"),
    ];
    for p in &steps {
        t.process(p, &mut new_sink);
    }
    assert_eq!(t.late_packets(), 2);
    // The same ports, a new SYN: port reuse, a connection of its own.
    t.process(
        &packet(7, 62_000, c, server, 9000, true, false, b""),
        &mut new_sink,
    );
    let done = t.finish_all();
    let of_client: Vec<_> = done.iter().filter(|(f, _)| f.client == c).collect();
    assert_eq!(of_client.len(), 2, "the first connection and the reuse");
    assert_eq!(
        of_client[0].0.from_client.packets, 2,
        "late packets not added"
    );
    assert_eq!(done.len(), 3);
}
