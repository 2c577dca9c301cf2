//! Tests of the capture stage: synthetic captures written by [`super::testutil`] (every link
//! type, pcap and pcapng variants, gzip, merging, damage, fatal errors) and the public
//! captures in `shared/captures/public`, whose expected numbers come from tshark 4.0 and
//! tcpdump (libpcap 1.10) run on the same files.

use std::io::Write;
use std::net::IpAddr;

use super::testutil::*;
use super::*;

/// A packet as delivered, owned, for assertions.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    frame: FrameRef,
    ts: Timestamp,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ttl: u8,
    ip_id: Option<u16>,
    flags: TcpFlags,
    payload: Vec<u8>,
    payload_missing: u32,
}

fn collect(
    inputs: &[String],
    filter: Option<&str>,
) -> Result<(CaptureSummary, Vec<Got>), CaptureError> {
    let mut got = Vec::new();
    let opts = ReadOptions {
        filter: filter.map(str::to_string),
    };
    let summary = read_captures(inputs, &opts, &mut |p| {
        got.push(Got {
            frame: p.frame,
            ts: p.ts,
            src: p.src,
            dst: p.dst,
            src_port: p.src_port,
            dst_port: p.dst_port,
            seq: p.seq,
            ttl: p.ttl,
            ip_id: p.ip_id,
            flags: p.flags,
            payload: p.payload.to_vec(),
            payload_missing: p.payload_missing,
        })
    })?;
    Ok((summary, got))
}

/// Writes `bytes` to a temporary file and returns it (kept alive by the caller).
fn temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".pcap")
        .tempfile()
        .expect("temp file");
    f.write_all(bytes).expect("write temp");
    f.flush().expect("flush");
    f
}

fn path(f: &tempfile::NamedTempFile) -> String {
    f.path().to_string_lossy().into_owned()
}

fn read_one(bytes: &[u8]) -> (CaptureSummary, Vec<Got>) {
    let f = temp(bytes);
    collect(&[path(&f)], None).expect("read")
}

fn read_err(bytes: &[u8]) -> CaptureError {
    let f = temp(bytes);
    collect(&[path(&f)], None).expect_err("should fail")
}

fn public(name: &str) -> String {
    format!(
        "{}/../shared/captures/public/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip finish")
}

// ---------------------------------------------------------------------------------------------
// pcap variants and link types

#[test]
fn pcap_little_endian_ethernet_fields_and_numbers() {
    let mut w = PcapWriter::new(1, 65535);
    w.packet(
        1_700_000_000,
        250_000,
        &eth_ipv4_tcp(&[], 40000, 25, 7, b""),
    );
    w.packet(
        1_700_000_001,
        999_999,
        &eth_ipv4_tcp(&[], 25, 40000, 9, b"220 hi\r\n"),
    );
    let (s, got) = read_one(&w.buf);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].frame, FrameRef { file: 0, number: 1 });
    assert_eq!(got[1].frame, FrameRef { file: 0, number: 2 });
    assert_eq!(
        got[0].ts,
        Timestamp::from_secs_nanos(1_700_000_000, 250_000_000)
    );
    assert_eq!(
        got[1].ts,
        Timestamp::from_secs_nanos(1_700_000_001, 999_999_000)
    );
    assert_eq!(got[0].src, "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!(got[0].dst, "192.0.2.25".parse::<IpAddr>().unwrap());
    assert_eq!(
        (got[0].src_port, got[0].dst_port, got[0].seq),
        (40000, 25, 7)
    );
    assert_eq!(got[0].ttl, 64);
    assert!(got[0].ip_id.is_some());
    assert!(got[0].flags.ack);
    assert_eq!(got[1].payload, b"220 hi\r\n");
    assert_eq!(s.records, 2);
    assert_eq!(s.tcp_packets, 2);
    assert_eq!(s.other_packets, 0);
    let f = &s.files[0];
    assert_eq!(f.format, "pcap");
    assert!(!f.gzip);
    assert_eq!(f.link_types, vec!["EN10MB".to_string()]);
    assert_eq!(f.snaplen, Some(65535));
    assert_eq!(f.records, 2);
    assert_eq!(f.bytes, w.buf.len() as u64);
    assert_eq!(f.first_ts, Some(got[0].ts));
    assert_eq!(f.last_ts, Some(got[1].ts));
    assert_eq!(s.first_ts, Some(got[0].ts));
    assert_eq!(s.last_ts, Some(got[1].ts));
    assert!(f.damage.is_none());
}

#[test]
fn pcap_big_endian_nanosecond() {
    let mut w = PcapWriter::with(1, 65535, true, true);
    w.packet(
        1_600_000_000,
        123_456_789,
        &eth_ipv4_tcp(&[], 1, 25, 1, b"x"),
    );
    let (_, got) = read_one(&w.buf);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].ts,
        Timestamp::from_secs_nanos(1_600_000_000, 123_456_789)
    );
    assert_eq!(got[0].payload, b"x");
}

#[test]
fn pcap_little_endian_nanosecond_and_big_endian_micro() {
    for (be, nanos, frac, want) in [(false, true, 5u32, 5u32), (true, false, 5, 5_000)] {
        let mut w = PcapWriter::with(1, 65535, be, nanos);
        w.packet(10, frac, &eth_ipv4_tcp(&[], 1, 25, 1, b""));
        let (_, got) = read_one(&w.buf);
        assert_eq!(got[0].ts, Timestamp::from_secs_nanos(10, want));
    }
}

#[test]
fn vlan_and_qinq_tags() {
    let mut w = PcapWriter::new(1, 65535);
    w.packet(1, 0, &eth_ipv4_tcp(&[100], 1000, 25, 1, b"one"));
    w.packet(2, 0, &eth_ipv4_tcp(&[200, 300], 1000, 25, 2, b"two"));
    // QinQ with the old 0x9100 outer tag, built by hand from the 802.1Q frame.
    let mut old = eth_ipv4_tcp(&[100], 1000, 25, 3, b"three");
    let inner = old.split_off(12);
    old.extend_from_slice(&[0x91, 0x00, 0x00, 0x07]);
    old.extend_from_slice(&inner);
    w.packet(3, 0, &old);
    let (s, got) = read_one(&w.buf);
    assert_eq!(s.tcp_packets, 3, "{s:?}");
    let payloads: Vec<&[u8]> = got.iter().map(|g| g.payload.as_slice()).collect();
    assert_eq!(payloads, vec![&b"one"[..], b"two", b"three"]);
}

#[test]
fn ipv6_over_ethernet() {
    let mut w = PcapWriter::new(1, 65535);
    w.packet(1, 0, &eth_ipv6_tcp(50000, 25, 11, b"EHLO a\r\n"));
    let (_, got) = read_one(&w.buf);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].src, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!(got[0].ip_id, None);
    assert_eq!(got[0].payload, b"EHLO a\r\n");
}

#[test]
fn linux_cooked_sll_and_sll2() {
    let ip4 = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1025, 25, 5, b"QUIT\r\n");
    let ip6 = ipv6_tcp([0xfe; 16], [0xfd; 16], 1025, 25, 6, b"RSET\r\n");
    for (lt, name, wrap) in [
        (113u32, "LINUX_SLL", sll as fn(u16, &[u8]) -> Vec<u8>),
        (276, "LINUX_SLL2", sll2),
    ] {
        let mut w = PcapWriter::new(lt, 262_144);
        w.packet(1, 0, &wrap(0x0800, &ip4));
        w.packet(2, 0, &wrap(0x86dd, &ip6));
        w.packet(3, 0, &wrap(0x0806, &[0u8; 28])); // ARP
        let (s, got) = read_one(&w.buf);
        assert_eq!(s.files[0].link_types, vec![name.to_string()]);
        assert_eq!(got.len(), 2, "{name}");
        assert_eq!(got[0].payload, b"QUIT\r\n");
        assert_eq!(got[1].payload, b"RSET\r\n");
        assert_eq!(s.ignored.non_ip, 1);
        assert_eq!(s.other_packets, 1);
    }
}

#[test]
fn bsd_loopback_null_and_loop() {
    let ip4 = ipv4_tcp([127, 0, 0, 1], [127, 0, 0, 1], 1025, 25, 5, b"a");
    let ip6 = ipv6_tcp([0; 16], [0; 16], 1025, 25, 6, b"b");
    for lt in [0u32, 108] {
        let mut w = PcapWriter::new(lt, 65535);
        w.packet(1, 0, &null(2, false, &ip4));
        w.packet(2, 0, &null(2, true, &ip4));
        for fam in [10u32, 24, 28, 30] {
            w.packet(3, 0, &null(fam, false, &ip6));
            w.packet(4, 0, &null(fam, true, &ip6));
        }
        w.packet(5, 0, &null(99, false, &ip4));
        let (s, got) = read_one(&w.buf);
        assert_eq!(got.len(), 10, "link type {lt}");
        assert_eq!(s.ignored.non_ip, 1);
    }
}

#[test]
fn raw_ip_link_types() {
    let ip4 = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1025, 25, 5, b"v4");
    let ip6 = ipv6_tcp([1; 16], [2; 16], 1025, 25, 6, b"v6");
    for lt in [101u32, 12, 14] {
        let mut w = PcapWriter::new(lt, 65535);
        w.packet(1, 0, &ip4);
        w.packet(2, 0, &ip6);
        let (s, got) = read_one(&w.buf);
        assert_eq!(got.len(), 2, "link type {lt}");
        assert_eq!(s.files[0].link_types, vec!["RAW".to_string()]);
    }
    let mut w = PcapWriter::new(228, 65535);
    w.packet(1, 0, &ip4);
    assert_eq!(read_one(&w.buf).1[0].payload, b"v4");
    let mut w = PcapWriter::new(229, 65535);
    w.packet(1, 0, &ip6);
    assert_eq!(read_one(&w.buf).1[0].payload, b"v6");
}

#[test]
fn snaplen_cut_packets_report_missing_payload() {
    let mut w = PcapWriter::new(1, 80);
    let frame = eth_ipv4_tcp(&[], 25, 1000, 1, &[b'y'; 200]);
    w.packet(1, 0, &frame); // 14 + 20 + 20 = 54 header bytes, 26 payload bytes kept
    w.packet(2, 0, &eth_ipv4_tcp(&[], 25, 1000, 201, b"short"));
    let (s, got) = read_one(&w.buf);
    assert_eq!(got[0].payload.len(), 26);
    assert_eq!(got[0].payload_missing, 174);
    assert_eq!(got[1].payload_missing, 0);
    assert_eq!(s.truncated_packets, 1);
}

#[test]
fn non_tcp_and_fragments_are_counted_not_delivered() {
    let mut w = PcapWriter::new(101, 65535);
    let mut udp = Vec::new();
    etherparse::PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9)
        .udp(53, 53)
        .write(&mut udp, b"q")
        .unwrap();
    w.packet(1, 0, &udp);
    let mut frag = ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 25, 1, b"zz");
    frag[6] = 0x20; // MF
    w.packet(2, 0, &frag);
    w.packet(3, 0, &[0x45, 0, 0]); // cut IPv4 header
    w.packet(4, 0, &ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 25, 1, b"ok"));
    let (s, got) = read_one(&w.buf);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].frame.number, 4);
    assert_eq!(s.ignored.non_tcp, 1);
    assert_eq!(s.ignored.fragments, 1);
    assert_eq!(s.ignored.undecodable, 1);
    assert_eq!(s.other_packets, 3);
    assert_eq!(s.records, 4);
}

#[test]
fn a_record_bigger_than_the_buffer_grows_it() {
    // A 64 KiB IP packet followed by 600 KB of trailer in one record (snaplen 1 MB).
    let mut w = PcapWriter::new(1, 1_000_000);
    let mut big = eth_ipv4_tcp(&[], 25, 1000, 1, &vec![b'b'; 65_000]);
    big.extend(std::iter::repeat_n(0u8, 600_000));
    w.packet(1, 0, &eth_ipv4_tcp(&[], 25, 1000, 0, b"a"));
    w.packet(2, 0, &big);
    w.packet(3, 0, &eth_ipv4_tcp(&[], 25, 1000, 65_001, b"c"));
    let (s, got) = read_one(&w.buf);
    assert!(s.files[0].damage.is_none(), "{:?}", s.files[0].damage);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].payload.len(), 65_000);
    assert_eq!(got[2].payload, b"c");
}

// ---------------------------------------------------------------------------------------------
// pcapng

#[test]
fn pcapng_interfaces_with_link_types_and_resolutions() {
    let mut w = PcapNgWriter::new(false);
    w.interface(1, 65535, None, None); // 0: Ethernet, microseconds
    w.interface(101, 65535, Some(9), None); // 1: raw IP, nanoseconds
    w.interface(276, 0, Some(0x80 | 10), Some(100)); // 2: SLL2, 2^-10 s, offset 100 s
    let ip = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1025, 25, 1, b"raw");
    w.epb(
        0,
        1_000_000_500_000,
        &eth_ipv4_tcp(&[], 1, 25, 1, b"eth"),
        65535,
    );
    w.epb(1, 1_000_000_000_000_000_123, &ip, 65535);
    w.epb(2, (5 << 10) | 512, &sll2(0x0800, &ip), 65535);
    w.spb(&eth_ipv4_tcp(&[], 1, 25, 1, b"spb"));
    let (s, got) = read_one(&w.buf);
    assert_eq!(got.len(), 4);
    assert_eq!(
        got[0].ts,
        Timestamp::from_secs_nanos(1_000_000, 500_000_000)
    );
    assert_eq!(got[1].ts, Timestamp::from_secs_nanos(1_000_000_000, 123));
    assert_eq!(got[2].ts, Timestamp::from_secs_nanos(105, 500_000_000));
    // A simple packet block has no time: it keeps the previous one.
    assert_eq!(got[3].ts, got[2].ts);
    assert_eq!(got[3].payload, b"spb");
    assert_eq!(got[2].frame.number, 3);
    let f = &s.files[0];
    assert_eq!(f.format, "pcapng");
    assert_eq!(
        f.link_types,
        vec![
            "EN10MB".to_string(),
            "RAW".to_string(),
            "LINUX_SLL2".to_string()
        ]
    );
    assert_eq!(f.backwards_timestamps, 1);
    assert_eq!(f.first_ts, Some(got[2].ts));
    assert_eq!(f.last_ts, Some(got[1].ts));
}

#[test]
fn pcapng_big_endian_and_several_sections() {
    let mut w = PcapNgWriter::new(true);
    w.interface(1, 65535, Some(6), Some(0));
    w.epb(0, 2_000_000, &eth_ipv4_tcp(&[], 1, 25, 1, b"be"), 65535);
    let mut le = PcapNgWriter::new(false);
    le.interface(228, 65535, None, None);
    le.epb(
        0,
        3_000_000,
        &ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 25, 1, b"le"),
        65535,
    );
    w.buf.extend_from_slice(&le.buf);
    let (s, got) = read_one(&w.buf);
    assert_eq!(got.len(), 2, "{s:?}");
    assert_eq!(got[0].payload, b"be");
    assert_eq!(got[0].ts, Timestamp::from_secs(2));
    assert_eq!(got[1].payload, b"le");
    assert_eq!(got[1].frame.number, 2);
}

#[test]
fn pcapng_unsupported_interface_is_noted_and_skipped() {
    let mut w = PcapNgWriter::new(false);
    w.interface(127, 65535, None, None); // radiotap
    w.interface(1, 65535, None, None);
    w.epb(0, 1, &[0u8; 40], 65535);
    w.epb(1, 2, &eth_ipv4_tcp(&[], 1, 25, 1, b"ok"), 65535);
    w.epb(7, 3, &eth_ipv4_tcp(&[], 1, 25, 1, b"orphan"), 65535);
    let (s, got) = read_one(&w.buf);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].frame.number, 2);
    assert_eq!(s.ignored.unsupported_link, 2);
    let notes = &s.files[0].notes;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("IEEE802_11_RADIO"), "{notes:?}");
    assert!(notes[1].contains("interface 7"), "{notes:?}");
}

#[test]
fn only_unsupported_link_types_is_an_error() {
    let mut w = PcapNgWriter::new(false);
    w.interface(127, 65535, None, None);
    w.epb(0, 1, &[0u8; 40], 65535);
    let e = read_err(&w.buf);
    assert!(matches!(
        e.kind(),
        CaptureErrorKind::UnsupportedLinkType { .. }
    ));
    assert!(e.to_string().contains("IEEE802_11_RADIO (127)"), "{e}");

    let mut p = PcapWriter::new(105, 65535);
    p.packet(1, 0, &[0u8; 30]);
    let e = read_err(&p.buf);
    assert!(
        e.to_string()
            .contains("unsupported link type IEEE802_11 (105)"),
        "{e}"
    );
}

#[test]
fn pcapng_truncated_and_invalid_blocks_are_damage() {
    let mut w = PcapNgWriter::new(false);
    w.interface(1, 65535, None, None);
    w.epb(0, 1, &eth_ipv4_tcp(&[], 1, 25, 1, b"a"), 65535);
    let good_len = w.buf.len();
    w.epb(0, 2, &eth_ipv4_tcp(&[], 1, 25, 2, b"b"), 65535);
    // Cut inside the second packet block.
    let (s, got) = read_one(&w.buf[..w.buf.len() - 10]);
    assert_eq!(got.len(), 1);
    let d = s.files[0].damage.clone().expect("damage");
    assert_eq!(d.record, 2);
    assert_eq!(d.offset, good_len as u64);
    assert!(d.message.contains("ends inside a block"), "{}", d.message);

    // Trailing block length different from the leading one.
    let mut bad = w.buf.clone();
    let n = bad.len();
    bad[n - 4] ^= 0x40;
    let (s, got) = read_one(&bad);
    assert_eq!(got.len(), 1);
    let d = s.files[0].damage.clone().expect("damage");
    assert_eq!(d.record, 2);
    assert!(d.message.contains("invalid pcapng block"), "{}", d.message);

    // An absurd block length.
    let mut huge = w.buf[..good_len].to_vec();
    huge.extend_from_slice(&6u32.to_le_bytes());
    huge.extend_from_slice(&0xfff0_0000u32.to_le_bytes());
    huge.extend_from_slice(&[0u8; 64]);
    let (s, got) = read_one(&huge);
    assert_eq!(got.len(), 1);
    let d = s.files[0].damage.clone().expect("damage");
    assert!(d.message.contains("exceeds"), "{}", d.message);
}

// ---------------------------------------------------------------------------------------------
// gzip, merging, damage, fatal errors

#[test]
fn gzip_is_detected_by_magic_not_by_name() {
    let mut w = PcapWriter::new(1, 65535);
    for i in 0..50u32 {
        w.packet(i, 0, &eth_ipv4_tcp(&[], 1, 25, i, b"gz"));
    }
    let gz = gzip(&w.buf);
    let (s, got) = read_one(&gz); // the temp file is named *.pcap
    assert_eq!(got.len(), 50);
    assert!(s.files[0].gzip);
    assert_eq!(s.files[0].bytes, w.buf.len() as u64);

    let mut ng = PcapNgWriter::new(false);
    ng.interface(1, 65535, None, None);
    ng.epb(0, 1, &eth_ipv4_tcp(&[], 1, 25, 1, b"ng"), 65535);
    let (s, got) = read_one(&gzip(&ng.buf));
    assert_eq!(got.len(), 1);
    assert_eq!(s.files[0].format, "pcapng");
    assert!(s.files[0].gzip);
}

#[test]
fn corrupt_gzip_keeps_what_came_before() {
    let mut w = PcapWriter::new(1, 65535);
    for i in 0..2000u32 {
        // Varied payloads so the deflate stream is long.
        let payload = format!("{i:08} {}", i.wrapping_mul(2_654_435_761));
        w.packet(i, 0, &eth_ipv4_tcp(&[], 1, 25, i, payload.as_bytes()));
    }
    let mut gz = gzip(&w.buf);
    let n = gz.len();
    for b in &mut gz[n / 2..n / 2 + 64] {
        *b ^= 0x5a;
    }
    let (s, got) = read_one(&gz);
    // Deflate may decode garbage before it notices (or only the CRC does): either way the
    // file is damaged from some record on, and what came before was delivered.
    assert!(s.files[0].damage.is_some());
    assert!(!got.is_empty() && got.len() < 2000, "{}", got.len());
    assert!(s.files[0].records as usize >= got.len());
    // Cut gzip input: damage, not an error.
    let (s, got) = read_one(&gzip(&w.buf)[..n / 3]);
    assert!(s.files[0].damage.is_some());
    assert!(!got.is_empty());
}

#[test]
fn two_files_are_merged_in_time_order() {
    let mut a = PcapWriter::new(1, 65535);
    let mut b = PcapNgWriter::new(false);
    b.interface(113, 65535, Some(9), None);
    for i in 0..5u32 {
        a.packet(10 + 2 * i, 0, &eth_ipv4_tcp(&[], 1, 25, i, b"a"));
        let ip = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 2, 25, i, b"b");
        b.epb(
            0,
            u64::from(11 + 2 * i) * 1_000_000_000,
            &sll(0x0800, &ip),
            65535,
        );
    }
    // Equal timestamps: the first input comes first.
    a.packet(30, 0, &eth_ipv4_tcp(&[], 1, 25, 9, b"a"));
    let ip = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 2, 25, 9, b"b");
    b.epb(0, 30_000_000_000, &sll(0x0800, &ip), 65535);
    let (fa, fb) = (temp(&a.buf), temp(&b.buf));
    let (s, got) = collect(&[path(&fa), path(&fb)], None).unwrap();
    assert_eq!(got.len(), 12);
    let order: Vec<(u16, u64)> = got.iter().map(|g| (g.frame.file, g.frame.number)).collect();
    assert_eq!(
        order,
        vec![
            (0, 1),
            (1, 1),
            (0, 2),
            (1, 2),
            (0, 3),
            (1, 3),
            (0, 4),
            (1, 4),
            (0, 5),
            (1, 5),
            (0, 6),
            (1, 6)
        ]
    );
    assert!(got.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert_eq!(s.files.len(), 2);
    assert_eq!(s.files[1].format, "pcapng");
    assert_eq!(s.files[0].tcp_packets, 6);
    assert_eq!(s.first_ts, Some(Timestamp::from_secs(10)));
    assert_eq!(s.last_ts, Some(Timestamp::from_secs(30)));
}

#[test]
fn backwards_timestamps_are_counted() {
    let mut w = PcapWriter::new(1, 65535);
    for t in [5u32, 6, 4, 7, 3] {
        w.packet(t, 0, &eth_ipv4_tcp(&[], 1, 25, t, b""));
    }
    let (s, got) = read_one(&w.buf);
    assert_eq!(got.len(), 5);
    assert_eq!(s.files[0].backwards_timestamps, 2);
    assert_eq!(s.files[0].first_ts, Some(Timestamp::from_secs(3)));
    assert_eq!(s.files[0].last_ts, Some(Timestamp::from_secs(7)));
}

#[test]
fn truncated_last_record_keeps_earlier_packets() {
    let mut w = PcapWriter::new(1, 65535);
    for i in 0..3u32 {
        w.packet(i, 0, &eth_ipv4_tcp(&[], 1, 25, i, b"data"));
    }
    let offset = w.buf.len();
    w.packet(9, 0, &eth_ipv4_tcp(&[], 1, 25, 9, b"lost"));
    let cut = &w.buf[..w.buf.len() - 5];
    let (s, got) = read_one(cut);
    assert_eq!(got.len(), 3);
    let d = s.files[0].damage.clone().expect("damage");
    assert_eq!(d.record, 4);
    assert_eq!(d.offset, offset as u64);
    assert!(
        d.message.contains("header says 58 bytes, 53 are present"),
        "{}",
        d.message
    );
    let e = s.files[0].damage_error().expect("error").to_string();
    assert!(e.contains("record 4 at byte offset"), "{e}");
    assert!(
        e.ends_with("the file is damaged from here on (3 records read)"),
        "{e}"
    );

    // Cut inside the record header.
    let (s, got) = read_one(&w.buf[..offset + 7]);
    assert_eq!(got.len(), 3);
    let d = s.files[0].damage.clone().expect("damage");
    assert!(
        d.message
            .contains("16-byte record header (7 bytes present)"),
        "{}",
        d.message
    );
}

#[test]
fn corrupt_record_length_is_damage() {
    let mut w = PcapWriter::new(1, 65535);
    w.packet(1, 0, &eth_ipv4_tcp(&[], 1, 25, 1, b"ok"));
    let offset = w.buf.len();
    w.raw_record(2, 0, 3_925_868_813, 3_925_868_549, &[0u8; 100]);
    let (s, got) = read_one(&w.buf);
    assert_eq!(got.len(), 1);
    let d = s.files[0].damage.clone().expect("damage");
    assert_eq!(d.record, 2);
    assert_eq!(d.offset, offset as u64);
    assert_eq!(
        d.message,
        "record length 3925868813 exceeds the snapshot length (65535)"
    );
    // A length that fits in the buffer but is far above the snaplen is damage too.
    let mut w = PcapWriter::new(1, 1500);
    w.packet(1, 0, &eth_ipv4_tcp(&[], 1, 25, 1, b"ok"));
    w.raw_record(2, 0, 600_000, 600_000, &vec![0u8; 600_000]);
    let (s, got) = read_one(&w.buf);
    assert_eq!(got.len(), 1);
    assert!(s.files[0].damage.is_some());
}

#[test]
fn damage_in_one_file_does_not_stop_the_other() {
    let mut a = PcapWriter::new(1, 65535);
    let mut b = PcapWriter::new(1, 65535);
    for i in 0..4u32 {
        a.packet(i, 0, &eth_ipv4_tcp(&[], 1, 25, i, b"a"));
        b.packet(i, 500, &eth_ipv4_tcp(&[], 2, 25, i, b"b"));
    }
    let cut = a.buf.len() - 3;
    let (fa, fb) = (temp(&a.buf[..cut]), temp(&b.buf));
    let (s, got) = collect(&[path(&fa), path(&fb)], None).unwrap();
    assert_eq!(got.len(), 7);
    assert_eq!(s.files[0].damage.as_ref().map(|d| d.record), Some(4));
    assert!(s.files[1].damage.is_none());
    assert!(s.any_damage());
}

#[test]
fn arbitrary_damage_never_panics() {
    let mut w = PcapWriter::new(1, 65535);
    for i in 0..20u32 {
        w.packet(
            i,
            0,
            &eth_ipv4_tcp(&[100], 1, 25, i, b"MAIL FROM:<a@b>\r\n"),
        );
    }
    let mut ng = PcapNgWriter::new(false);
    ng.interface(1, 65535, Some(9), None);
    for i in 0..20u64 {
        ng.epb(
            0,
            i,
            &eth_ipv4_tcp(&[], 1, 25, i as u32, b"RCPT TO:<c@d>\r\n"),
            65535,
        );
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for base in [&w.buf, &ng.buf] {
        for _ in 0..150 {
            let mut bytes = base.clone();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = 24 + (seed as usize % (bytes.len() - 24));
                bytes[at] = (seed >> 32) as u8;
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let cut = 28 + (seed as usize % (bytes.len() - 28));
            let f = temp(&bytes[..cut]);
            let _ = collect(&[path(&f)], None);
        }
    }
}

#[test]
fn empty_file_wrong_magic_directory_missing() {
    let e = read_err(b"");
    assert!(matches!(e.kind(), CaptureErrorKind::Empty { gzip: false }));
    assert!(e.to_string().contains("is empty"), "{e}");

    let e = read_err(b"<html><body>not a capture</body></html>");
    assert!(matches!(e.kind(), CaptureErrorKind::NotACapture { .. }));
    let msg = e.to_string();
    assert!(msg.contains("not a pcap or pcapng capture"), "{msg}");
    assert!(msg.contains("3c 68 74 6d 6c 3e"), "{msg}");

    let e = read_err(&gzip(b"hello world, plain text"));
    assert!(e.to_string().contains("after gzip decompression"), "{e}");

    let e = read_err(&gzip(b""));
    assert!(
        matches!(e.kind(), CaptureErrorKind::Empty { gzip: true }),
        "{e}"
    );

    let e = read_err(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
    assert!(e.to_string().contains("24-byte file header"), "{e}");

    let e = read_err(&[0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c]);
    assert!(e.to_string().contains("section header"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    let e = collect(std::slice::from_ref(&d), None).unwrap_err();
    assert!(matches!(e.kind(), CaptureErrorKind::IsDirectory));
    assert_eq!(
        e.to_string(),
        format!("{d}: is a directory, not a capture file")
    );

    let missing = format!("{d}/nope.pcap");
    let e = collect(std::slice::from_ref(&missing), None).unwrap_err();
    assert!(matches!(e.kind(), CaptureErrorKind::NotFound));
    assert!(e.to_string().starts_with(&missing));

    let e = collect(&["-".to_string(), "-".to_string()], None).unwrap_err();
    assert!(matches!(e.kind(), CaptureErrorKind::StdinTwice));
}

#[test]
fn a_bad_second_file_fails_before_any_packet() {
    let mut w = PcapWriter::new(1, 65535);
    w.packet(1, 0, &eth_ipv4_tcp(&[], 1, 25, 1, b""));
    let good = temp(&w.buf);
    let bad = temp(b"garbage!");
    let mut delivered = 0;
    let r = read_captures(
        &[path(&good), path(&bad)],
        &ReadOptions::default(),
        &mut |_| delivered += 1,
    );
    assert!(r.is_err());
    assert_eq!(delivered, 0);
    assert_eq!(r.unwrap_err().file(), Some(path(&bad).as_str()));
}

#[test]
fn progress_is_reported_per_file() {
    let mut w = PcapWriter::new(1, 65535);
    w.packet(1, 0, &eth_ipv4_tcp(&[], 1, 25, 1, b""));
    let f = temp(&w.buf);
    let mut reports = Vec::new();
    read_captures_with_progress(
        &[path(&f)],
        &ReadOptions::default(),
        &mut |_| {},
        &mut |p| reports.push(p),
    )
    .unwrap();
    assert_eq!(
        reports.last(),
        Some(&Progress {
            file: 0,
            bytes_read: w.buf.len() as u64
        })
    );
}

#[test]
fn raw_records_carry_bytes_link_type_and_the_decoded_packet() {
    let mut w = PcapWriter::new(1, 65535);
    let tcp = eth_ipv4_tcp(&[100], 40000, 25, 7, b"EHLO x\r\n");
    w.packet(1, 0, &tcp);
    // An ARP frame: not TCP/IP, delivered raw without a packet.
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    w.packet(2, 0, &arp);
    let f = temp(&w.buf);
    type Seen = (
        u64,
        u32,
        Vec<u8>,
        u32,
        Option<(u16, Vec<u8>)>,
        Option<usize>,
    );
    let mut seen: Vec<Seen> = Vec::new();
    let s = read_records(
        &[path(&f)],
        &ReadOptions::default(),
        &mut |r| {
            seen.push((
                r.frame.number,
                r.link_type,
                r.data.to_vec(),
                r.orig_len,
                r.packet.map(|p| (p.src_port, p.payload.to_vec())),
                r.ip_offset(),
            ));
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, 1);
    assert_eq!(seen[0].1, 1);
    assert_eq!(seen[0].2, tcp);
    assert_eq!(seen[0].3, tcp.len() as u32);
    assert_eq!(seen[0].4, Some((40000, b"EHLO x\r\n".to_vec())));
    // Ethernet (14) + one 802.1Q tag (4).
    assert_eq!(seen[0].5, Some(18));
    assert_eq!(tcp[18] >> 4, 4);
    assert_eq!(seen[1].2, arp);
    assert_eq!(seen[1].4, None);
    // The summary is the one read_captures gives.
    let (s2, _) = read_one(&w.buf);
    assert_eq!(s.tcp_packets, s2.tcp_packets);
    assert_eq!(s.other_packets, s2.other_packets);
}

#[test]
fn summary_serializes() {
    let mut w = PcapWriter::new(1, 65535);
    w.packet(1, 0, &eth_ipv4_tcp(&[], 1, 25, 1, b""));
    let (s, _) = read_one(&w.buf);
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["tcp_packets"], 1);
    assert_eq!(j["files"][0]["format"], "pcap");
    assert_eq!(j["files"][0]["link_types"][0], "EN10MB");
    assert_eq!(j["files"][0]["first_ts"], "1970-01-01T00:00:01.000000Z");
    assert!(j["files"][0]["damage"].is_null());
}

// ---------------------------------------------------------------------------------------------
// BPF filter

#[cfg(feature = "libpcap")]
#[test]
fn bpf_filter_on_synthetic_records() {
    let mut w = PcapWriter::new(1, 65535);
    w.packet(1, 0, &eth_ipv4_tcp(&[], 40000, 25, 1, b"a"));
    w.packet(2, 0, &eth_ipv4_tcp(&[], 40000, 587, 1, b"b"));
    let f = temp(&w.buf);
    let (s, got) = collect(&[path(&f)], Some("tcp port 25")).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(s.filtered_out, 1);
    assert_eq!(s.files[0].filtered_out, 1);
    assert_eq!(s.filter.as_deref(), Some("tcp port 25"));
    // A blank filter is no filter.
    let (s, got) = collect(&[path(&f)], Some("  ")).unwrap();
    assert_eq!((got.len(), s.filter), (2, None));
}

#[cfg(feature = "libpcap")]
#[test]
fn bad_filter_is_an_error_naming_it() {
    let mut w = PcapWriter::new(1, 65535);
    w.packet(1, 0, &eth_ipv4_tcp(&[], 40000, 25, 1, b"a"));
    let f = temp(&w.buf);
    let e = collect(&[path(&f)], Some("tcp port smtp and (")).unwrap_err();
    assert!(matches!(e.kind(), CaptureErrorKind::BadFilter { .. }));
    let msg = e.to_string();
    assert!(msg.contains("\"tcp port smtp and (\""), "{msg}");
    assert!(msg.contains("EN10MB"), "{msg}");
}

#[cfg(not(feature = "libpcap"))]
#[test]
fn filter_without_libpcap_is_an_error() {
    let e = collect(&["x.pcap".to_string()], Some("tcp")).unwrap_err();
    assert!(e.to_string().contains("built without libpcap"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The public captures. Numbers: `tshark -r FILE -Y 'tcp and not icmp' | wc -l` (TCP
// segments: tshark's plain `tcp` also matches the 4 ICMP errors in zeek-smtp.pcap that quote a
// TCP header, 122 instead of 118), `capinfos -c` (records), `tcpdump -r FILE 'tcp port 25' |
// wc -l` (filter).

fn read_public(name: &str, filter: Option<&str>) -> (CaptureSummary, Vec<Got>) {
    collect(&[public(name)], filter).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn public_tcp_counts_match_tshark() {
    for (name, tcp, records) in [
        ("ark-smtp-data-521.pcap", 38, 38),
        ("ark-smtp-decrypted.pcap", 110, 110),
        ("ark-smtp-moloch-bof.pcap", 26, 26),
        ("derived-sll-zeek-smtp.pcap", 118, 125),
        ("derived-vlan100-sv-smtp-data-rejected.pcap", 199, 199),
        ("sv-issue-4220-1flowB.pcap", 1358, 1358),
        ("sv-mime-stream-depth.pcap", 2500, 2500),
        ("sv-smtp-bug-5989-long-banner.pcap", 46, 47),
        ("sv-smtp-errors.pcap", 158, 158),
        ("sv-smtp-pipelining-null.pcap", 18, 18),
        ("sv-smtp-quit.pcap", 7, 7),
        ("zeek-communityid-ipv6-smtp.pcap", 17, 17),
        ("zeek-rfc3030-bdat-multipart-chunked.pcap", 184, 184),
        ("zeek-smtp-bdat-cmd-invalid.pcapng", 66, 66),
        ("zeek-smtp-starttls.pcap", 37, 37),
        ("zeek-smtp.pcap", 118, 125),
        ("sv-firewall-131-smtp-quit-after-mail.pcap", 15, 15),
        ("sv-smtp-data-rejected.pcap", 199, 199),
        ("sv-smtp-ehlo-reset-after-rejected-data.pcap", 25, 25),
        ("zeek-smtp-bdat-gap.pcap", 40, 40),
        ("zeek-smtp-bdat-pipeline-8bitmime.pcap", 33, 33),
        ("zeek-smtp-mail-transactions-invalid.pcap", 76, 76),
        ("zeek-smtp-one-side-only.pcap", 19, 19),
        ("zeek-tcp-truncated-header.pcap", 24, 24),
    ] {
        let (s, got) = read_public(name, None);
        assert_eq!(s.tcp_packets, tcp, "{name}");
        assert_eq!(got.len() as u64, tcp, "{name}");
        assert_eq!(s.records, records, "{name}");
        assert_eq!(s.files[0].backwards_timestamps, 0, "{name}");
        assert!(s.files[0].damage.is_none(), "{name}");
        let size = std::fs::metadata(public(name)).unwrap().len();
        assert_eq!(s.files[0].bytes, size, "{name}");
    }
}

#[test]
fn public_pcapng() {
    let (s, got) = read_public("zeek-smtp-bdat-cmd-invalid.pcapng", None);
    let f = &s.files[0];
    assert_eq!(f.format, "pcapng");
    assert_eq!(f.link_types, vec!["EN10MB".to_string()]);
    // tshark: first 1705333298.367948, last 1705333415.080240
    assert_eq!(
        got[0].ts,
        Timestamp::from_secs_nanos(1_705_333_298, 367_948_000)
    );
    assert_eq!(
        f.last_ts,
        Some(Timestamp::from_secs_nanos(1_705_333_415, 80_240_000))
    );
    assert!(got.iter().all(|g| g.src_port == 25 || g.dst_port == 25));
}

#[test]
fn public_sll_matches_its_ethernet_original() {
    let (s, sll) = read_public("derived-sll-zeek-smtp.pcap", None);
    assert_eq!(s.files[0].link_types, vec!["LINUX_SLL".to_string()]);
    // Two DNS, one NetBIOS browser datagram, four ICMP errors quoting TCP headers.
    assert_eq!(s.ignored.non_tcp, 7);
    let (_, eth) = read_public("zeek-smtp.pcap", None);
    assert_eq!(sll, eth);
}

#[test]
fn public_vlan_matches_its_untagged_original() {
    let (_, vlan) = read_public("derived-vlan100-sv-smtp-data-rejected.pcap", None);
    let (_, plain) = read_public("sv-smtp-data-rejected.pcap", None);
    assert_eq!(vlan.len(), 199);
    assert_eq!(vlan, plain);
}

#[test]
fn public_null_loopback() {
    let (s, got) = read_public("sv-smtp-pipelining-null.pcap", None);
    assert_eq!(s.files[0].link_types, vec!["NULL".to_string()]);
    assert_eq!(got.len(), 18);
    assert!(got.iter().any(|g| g.payload.starts_with(b"MAIL FROM")));
}

#[test]
fn public_ipv6() {
    let (_, got) = read_public("zeek-communityid-ipv6-smtp.pcap", None);
    assert_eq!(got.len(), 17);
    assert!(got.iter().all(|g| g.src.is_ipv6() && g.ip_id.is_none()));
    assert!(got.iter().any(|g| g.payload.starts_with(b"220")));
}

#[test]
fn public_snaplen_68_truncation() {
    // tshark: frames 4..21 with tcp.len > 0 are cut to 54 bytes; 11 of them, 605 bytes.
    let (s, got) = read_public("zeek-tcp-truncated-header.pcap", None);
    assert_eq!(s.files[0].snaplen, Some(68));
    assert_eq!(got.len(), 24);
    assert_eq!(s.truncated_packets, 11);
    assert_eq!(
        got.iter()
            .map(|g| u64::from(g.payload_missing))
            .sum::<u64>(),
        605
    );
    assert!(got.iter().all(|g| g.payload.is_empty()));
    // Frame 1 is a SYN whose 40-byte TCP header the snaplen cut; it is still a SYN.
    assert!(got[0].flags.syn && !got[0].flags.ack);
    assert_eq!(got[3].payload_missing, 84);
    assert_eq!(got.iter().filter(|g| g.flags.fin).count(), 2);
}

#[test]
fn public_damaged_file() {
    let (s, got) = read_public("sv-smtp-to-comma-damaged.pcap", None);
    assert_eq!(got.len(), 18);
    assert_eq!(s.records, 18);
    let f = &s.files[0];
    let d = f.damage.clone().expect("damage");
    assert_eq!(d.record, 19);
    assert_eq!(d.offset, 3695);
    assert_eq!(
        d.message,
        "record length 3925868813 exceeds the snapshot length (262144)"
    );
    let e = f.damage_error().unwrap().to_string();
    assert!(
        e.ends_with(
            "sv-smtp-to-comma-damaged.pcap: record 19 at byte offset 3695: record length \
             3925868813 exceeds the snapshot length (262144); the file is damaged from here on \
             (18 records read)"
        ),
        "{e}"
    );
    // tshark's last good frame: 1564419707.068972
    assert_eq!(
        f.last_ts,
        Some(Timestamp::from_secs_nanos(1_564_419_707, 68_972_000))
    );
}

#[test]
fn public_files_merge() {
    let inputs = [
        public("zeek-smtp.pcap"),
        public("sv-smtp-quit.pcap"),
        public("zeek-smtp-bdat-cmd-invalid.pcapng"),
        public("sv-smtp-to-comma-damaged.pcap"),
    ];
    let (s, got) = collect(&inputs, None).unwrap();
    assert_eq!(got.len(), 118 + 7 + 66 + 18);
    assert!(got.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert_eq!(s.files.len(), 4);
    assert!(s.files[3].damage.is_some());
    assert_eq!(
        s.first_ts,
        Some(Timestamp::from_secs_nanos(1_254_722_767, 492_060_000))
    );
}

#[test]
fn public_gzip_copy() {
    let bytes = std::fs::read(public("sv-smtp-data-rejected.pcap")).unwrap();
    let (s, got) = read_one(&gzip(&bytes));
    assert!(s.files[0].gzip);
    assert_eq!(got.len(), 199);
}

#[cfg(feature = "libpcap")]
#[test]
fn public_bpf_filters_match_tcpdump() {
    for (name, n) in [
        ("zeek-smtp.pcap", 80),
        ("derived-sll-zeek-smtp.pcap", 80),
        ("sv-smtp-errors.pcap", 145),
        ("ark-smtp-decrypted.pcap", 58),
        ("zeek-smtp-bdat-cmd-invalid.pcapng", 66),
        ("sv-smtp-pipelining-null.pcap", 18),
        ("derived-vlan100-sv-smtp-data-rejected.pcap", 0),
    ] {
        let (s, got) = read_public(name, Some("tcp port 25"));
        assert_eq!(got.len(), n, "{name}");
        assert_eq!(s.filtered_out, s.records - n as u64, "{name}");
    }
    let (_, got) = read_public(
        "derived-vlan100-sv-smtp-data-rejected.pcap",
        Some("vlan 100 and tcp port 25"),
    );
    assert_eq!(got.len(), 199);
    let (s, got) = read_public("zeek-smtp.pcap", Some("tcp port 1"));
    assert!(got.is_empty());
    assert_eq!(s.filtered_out, 125);
}

// ---------------------------------------------------------------------------------------------
// Streams: short reads (as from a pipe), an input that closes early, a read error.

/// A reader that hands out `chunk` bytes at a time and optionally fails at `fail_at`.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
    fail_at: Option<usize>,
}

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.fail_at.is_some_and(|f| self.pos >= f) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        let mut n = self.chunk.min(buf.len()).min(self.data.len() - self.pos);
        if let Some(f) = self.fail_at {
            n = n.min(f - self.pos);
        }
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn drain_stream(data: Vec<u8>, chunk: usize, fail_at: Option<usize>) -> (Vec<u64>, FileSummary) {
    let t = Trickle {
        data,
        pos: 0,
        chunk,
        fail_at,
    };
    let mut src = reader::Source::from_reader(0, "-", Box::new(t)).expect("open stream");
    let mut numbers = Vec::new();
    while src.advance() {
        let r = src.current().expect("record");
        assert!(decode::decode(r.link_type, r.data, r.frame, r.ts).is_ok());
        numbers.push(r.frame.number);
    }
    (numbers, src.into_summary())
}

#[test]
fn short_reads_from_a_pipe_are_reassembled() {
    let mut w = PcapWriter::new(1, 65535);
    for i in 0..40u32 {
        w.packet(
            i,
            0,
            &eth_ipv4_tcp(&[], 1, 25, i, &vec![b'p'; i as usize * 37]),
        );
    }
    let mut ng = PcapNgWriter::new(false);
    ng.interface(1, 65535, None, None);
    for i in 0..40u64 {
        ng.epb(0, i, &eth_ipv4_tcp(&[], 1, 25, i as u32, b"ng"), 65535);
    }
    for chunk in [1, 3, 7, 4096] {
        for bytes in [&w.buf, &ng.buf, &gzip(&w.buf)] {
            let (numbers, s) = drain_stream(bytes.clone(), chunk, None);
            assert_eq!(numbers, (1..=40).collect::<Vec<u64>>(), "chunk {chunk}");
            assert!(s.damage.is_none());
            assert_eq!(s.name, "stdin");
        }
    }
}

#[test]
fn stdin_closed_early_is_damage() {
    let mut w = PcapWriter::new(1, 65535);
    for i in 0..5u32 {
        w.packet(i, 0, &eth_ipv4_tcp(&[], 1, 25, i, b"0123456789"));
    }
    let n = w.buf.len();
    let (numbers, s) = drain_stream(w.buf[..n - 20].to_vec(), 5, None);
    assert_eq!(numbers, vec![1, 2, 3, 4]);
    let d = s.damage.clone().expect("damage");
    assert_eq!(d.record, 5);
    assert!(
        d.message.starts_with("the input ends inside the record"),
        "{}",
        d.message
    );
    let e = s.damage_error().unwrap().to_string();
    assert!(e.starts_with("stdin: record 5 at byte offset"), "{e}");
}

#[test]
fn a_read_error_keeps_what_came_before() {
    let mut w = PcapWriter::new(1, 65535);
    for i in 0..5u32 {
        w.packet(i, 0, &eth_ipv4_tcp(&[], 1, 25, i, b"0123456789"));
    }
    let fail_at = w.buf.len() - 30;
    let (numbers, s) = drain_stream(w.buf.clone(), 64, Some(fail_at));
    assert_eq!(numbers, vec![1, 2, 3, 4]);
    let d = s.damage.expect("damage");
    assert_eq!(d.record, 5);
    assert_eq!(d.message, "read error: connection reset");
}

#[cfg(feature = "libpcap")]
#[test]
fn a_filter_that_fails_for_a_later_link_type_is_noted() {
    // The raw-IP interface appears only after the first packet, so the filter is compiled for
    // it lazily; `ether host` cannot apply to raw IP.
    let mut w = PcapNgWriter::new(false);
    w.interface(1, 65535, None, None);
    w.epb(0, 1, &eth_ipv4_tcp(&[], 1, 25, 1, b"eth"), 65535);
    w.interface(101, 65535, None, None);
    w.epb(
        1,
        2,
        &ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 25, 2, b"raw"),
        65535,
    );
    let f = temp(&w.buf);
    let (s, got) = collect(&[path(&f)], Some("ether host 02:00:00:00:00:01")).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(s.filtered_out, 1);
    let notes = &s.files[0].notes;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("does not compile for link type RAW"),
        "{notes:?}"
    );
}

#[test]
fn modified_pcap_and_fcs_bits_in_the_link_type() {
    // Kuznetzov's "modified" pcap: 24-byte record headers.
    let mut buf = Vec::new();
    buf.extend_from_slice(&0xa1b2_cd34u32.to_le_bytes());
    buf.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    buf.extend_from_slice(&65535u32.to_le_bytes());
    buf.extend_from_slice(&1u32.to_le_bytes());
    let frame = eth_ipv4_tcp(&[], 1, 25, 1, b"mod");
    for secs in [1u32, 2] {
        for v in [secs, 0, frame.len() as u32, frame.len() as u32, 3] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.extend_from_slice(&[0x08, 0x00, 0, 0]);
        buf.extend_from_slice(&frame);
    }
    let (s, got) = read_one(&buf);
    assert_eq!(got.len(), 2, "{s:?}");
    assert_eq!(got[1].ts, Timestamp::from_secs(2));

    // The same, big-endian, is not supported and says so.
    let mut be = buf.clone();
    be[..4].copy_from_slice(&0xa1b2_cd34u32.to_be_bytes());
    let e = read_err(&be);
    assert!(e.to_string().contains("modified"), "{e}");

    // Ethernet with the "FCS present" bits set in the link type field.
    let mut w = PcapWriter::new(1 | (1 << 26) | (4 << 28), 65535);
    let mut frame = eth_ipv4_tcp(&[], 1, 25, 1, b"fcs");
    frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    w.packet(1, 0, &frame);
    let (s, got) = read_one(&w.buf);
    assert_eq!(s.files[0].link_types, vec!["EN10MB".to_string()]);
    assert_eq!(got[0].payload, b"fcs");
}
