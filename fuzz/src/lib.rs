//! The bodies of icidtrace's fuzz targets, one public function per target.
//!
//! Each function takes arbitrary bytes, runs them through one stage of the library (or the whole
//! analysis) and panics when the library panics or when a result breaks an invariant the stage
//! promises (bytes delivered at most once, counts that add up, the same answer however the input
//! was cut). They depend on nothing but `icidtrace` and the standard library, so the crate's own
//! tests (`tests/fuzz_corpus.rs`, `tests/fuzz_regressions.rs`) include this file with `#[path]`
//! and run the committed corpus and every crash input through exactly the same code as the
//! fuzzer (`fuzz/fuzz_targets/*.rs`).
//!
//! Structured inputs (packets, SMTP chunks, assembler operations) are read from the bytes with
//! [`Input`], which returns zeros once the bytes run out, so every input is valid and every run
//! ends.

#![forbid(unsafe_code)]
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use icidtrace::analyze::{AnalyzeOptions, analyze as run_analysis};
use icidtrace::capture::reader::{NO_LINK_TYPE, Source};
use icidtrace::capture::{self, FrameRef, Packet, ReadOptions, TcpFlags};
use icidtrace::correlate::ClockHint;
use icidtrace::maillog::{self, LineParser, LogOptions, MailLogBuilder, ParserOptions, YearHint};
use icidtrace::report;
use icidtrace::smtp::Session;
use icidtrace::tcp::assembler::Assembler;
use icidtrace::tcp::{FlowConfig, FlowTable, StreamSink};
use icidtrace::types::{Side, Timestamp};

/// The body of one fuzz target.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name, for the corpus and regression tests.
pub const TARGETS: &[(&str, Target)] = &[
    ("capture_read", capture_read),
    ("capture_decode", capture_decode),
    ("tcp_assembler", tcp_assembler),
    ("tcp_flows", tcp_flows),
    ("smtp_session", smtp_session),
    ("maillog_parse", maillog_parse),
    ("analyze", analyze),
];

/// Reads structured values from fuzz bytes; zeros once they run out.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

/// A file name of this process in the temporary directory, new for each call (tests run the
/// bodies in parallel threads), removed again by [`Scratch`].
fn scratch(name: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("icidtrace-fuzz-{}-{n}-{name}", std::process::id()))
}

struct Scratch(PathBuf);

impl Scratch {
    fn write(name: &str, bytes: &[u8]) -> Scratch {
        let p = scratch(name);
        std::fs::write(&p, bytes).expect("write a scratch file");
        Scratch(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn name(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

/// A reader that hands out its bytes in small pieces of varying size (as a pipe does).
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl<'a> Trickle<'a> {
    fn new(data: &'a [u8]) -> Self {
        Trickle { data, step: 0 }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.step = self.step.wrapping_mul(31).wrapping_add(7);
        let n = (1 + self.step % 13).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// [`Trickle`] over bytes it owns (a capture [`Source`] takes a `'static` reader).
struct OwnedTrickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl OwnedTrickle {
    fn boxed(data: &[u8]) -> Box<dyn Read> {
        Box::new(OwnedTrickle {
            data: data.to_vec(),
            at: 0,
            step: 0,
        })
    }
}

impl Read for OwnedTrickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut t = Trickle {
            data: &self.data[self.at..],
            step: self.step,
        };
        let n = t.read(buf)?;
        self.step = t.step;
        self.at += n;
        Ok(n)
    }
}

/// The link types the capture stage decodes, and two it does not.
pub const LINK_TYPES: [u32; 12] = [
    0,
    1,
    12,
    14,
    101,
    108,
    113,
    228,
    229,
    276,
    127,
    NO_LINK_TYPE,
];

// ---------------------------------------------------------------------------------------------
// capture

/// `capture_read`: a capture file of arbitrary bytes through [`capture::read_captures`] (as a
/// file, optionally gzip-compressed, optionally twice for the merge), and through
/// [`Source::from_reader`] fed in small pieces.
///
/// Input: one mode byte (bits 0-3: link type to write into a pcap header, 0 keeps it; bit 4:
/// gzip; bit 5: read two copies merged), then the file.
pub fn capture_read(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let mut bytes = input.rest().to_vec();
    let lt_pick = usize::from(mode & 0x0f);
    if lt_pick > 0 && bytes.len() >= 24 {
        let lt = LINK_TYPES[(lt_pick - 1) % LINK_TYPES.len()];
        match bytes[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] | [0x34, 0xcd, 0xb2, 0xa1] => {
                bytes[20..24].copy_from_slice(&lt.to_le_bytes())
            }
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => {
                bytes[20..24].copy_from_slice(&lt.to_be_bytes())
            }
            _ => {}
        }
    }
    let file_bytes = if mode & 0x10 != 0 {
        gzip(&bytes)
    } else {
        bytes.clone()
    };
    let file = Scratch::write("capture.pcap", &file_bytes);
    let name = file.name();

    let one = read_checked(std::slice::from_ref(&name));
    let Ok(one) = one else {
        // Refused before any packet: the reader over a trickling stream refuses it too (at
        // the header, or for its link types once the first record is read).
        if let Ok(mut s) = Source::from_reader(0, "fuzz", OwnedTrickle::boxed(&file_bytes)) {
            s.advance();
            assert!(
                s.check_link_types().is_err(),
                "the file was refused, the same bytes as a stream were not"
            );
        }
        return;
    };

    // The same bytes as a stream read in small pieces: the same records, the same damage.
    let mut src = Source::from_reader(0, "fuzz", OwnedTrickle::boxed(&file_bytes))
        .expect("the file was read, the same bytes as a stream must be too");
    let mut records = 0u64;
    while src.advance() {
        let rec = src.current().expect("a record after advance");
        records += 1;
        assert_eq!(rec.frame.number, records);
        let _ = capture::decode::decode(rec.link_type, rec.data, rec.frame, rec.ts);
    }
    let streamed = src.into_summary();
    let f = &one.files[0];
    assert_eq!(streamed.records, f.records, "records, file vs stream");
    assert_eq!(streamed.damage, f.damage, "damage, file vs stream");
    assert_eq!(streamed.backwards_timestamps, f.backwards_timestamps);
    assert_eq!(
        (streamed.first_ts, streamed.last_ts),
        (f.first_ts, f.last_ts)
    );

    if mode & 0x20 != 0 {
        // Two copies merged in time order: twice of everything, each file's damage its own.
        let two = read_checked(&[name.clone(), name.clone()]).expect("read twice");
        assert_eq!(two.records, 2 * one.records);
        assert_eq!(two.tcp_packets, 2 * one.tcp_packets);
        assert_eq!(two.files[1].damage, one.files[0].damage);
    }
}

/// Reads `inputs` and checks what the capture stage promises of the packets and the summary.
fn read_checked(inputs: &[String]) -> Result<capture::CaptureSummary, capture::CaptureError> {
    let mut delivered = 0u64;
    let mut last_number: HashMap<u16, u64> = HashMap::new();
    let mut records = 0u64;
    let result = capture::read_records(
        inputs,
        &ReadOptions::default(),
        &mut |r| {
            records += 1;
            let last = last_number.entry(r.frame.file).or_insert(0);
            assert!(r.frame.number > *last, "record numbers increase per file");
            *last = r.frame.number;
            assert!((usize::from(r.frame.file)) < inputs.len());
            let _ = r.ip_offset();
            if let Some(p) = &r.packet {
                delivered += 1;
                check_packet(p, r.data);
            }
        },
        &mut |_| {},
    );
    match &result {
        Ok(s) => {
            assert_eq!(s.tcp_packets, delivered);
            assert_eq!(s.records, records, "every record was handed over");
            assert_eq!(
                s.records,
                s.tcp_packets + s.ignored.total() + s.filtered_out,
                "records are packets, ignored or filtered: {s:?}"
            );
            assert_eq!(s.files.len(), inputs.len());
            for f in &s.files {
                if let Some(e) = f.damage_error() {
                    let msg = e.to_string();
                    assert!(msg.contains(&f.name), "{msg}");
                    assert!(msg.contains("record "), "{msg}");
                }
            }
        }
        Err(e) => {
            assert_eq!(delivered, 0, "an error comes before any packet");
            let msg = e.to_string();
            assert!(!msg.is_empty());
            if let Some(file) = e.file() {
                assert!(msg.starts_with(file), "{msg}");
            }
        }
    }
    result
}

fn check_packet(p: &Packet<'_>, record: &[u8]) {
    let start = p.payload.as_ptr() as usize;
    let rec = record.as_ptr() as usize;
    assert!(
        p.payload.is_empty() || (start >= rec && start + p.payload.len() <= rec + record.len()),
        "the payload lies inside the record"
    );
    // IP lengths are 16 bits: nothing can claim more (IPv6 adds its 40-byte header).
    assert!(p.payload.len() as u64 + u64::from(p.payload_missing) <= 65_535 + 40);
}

/// `capture_decode`: one record of arbitrary bytes through [`capture::decode::decode`].
///
/// Input: one byte choosing the link type ([`LINK_TYPES`]), then the record.
pub fn capture_decode(data: &[u8]) {
    let mut input = Input::new(data);
    let lt = LINK_TYPES[usize::from(input.u8()) % LINK_TYPES.len()];
    let record = input.rest();
    let frame = FrameRef { file: 0, number: 1 };
    let _ = capture::link::network_layer(lt, record);
    if let Ok(p) = capture::decode::decode(lt, record, frame, Timestamp(0)) {
        check_packet(&p, record);
        assert!(capture::link::is_supported(lt));
    }
}

// ---------------------------------------------------------------------------------------------
// tcp

/// `tcp_assembler`: insertions and hole skips on one [`Assembler`], checked against a model
/// that keeps one slot per byte (first copy wins, delivered exactly once, in order).
///
/// Input: one byte for the cap (small caps drop bytes; the model is then checked only for
/// what the assembler promises regardless: order, no byte twice), then operations.
pub fn tcp_assembler(data: &[u8]) {
    let mut input = Input::new(data);
    let small_cap = input.u8() & 1 == 1;
    let cap = if small_cap { 64 } else { 1 << 20 };
    let mut a = Assembler::new(cap);
    let mut out: Vec<u8> = Vec::new();
    let mut skipped_total = 0u64;
    // The model: the delivered prefix, and waiting bytes.
    let mut m_next = 0u64;
    let mut m_pending: std::collections::BTreeMap<u64, u8> = std::collections::BTreeMap::new();
    let mut m_out: Vec<u8> = Vec::new();
    let mut ops = 0;
    while !input.is_empty() && ops < 4096 {
        ops += 1;
        let op = input.u8();
        if op % 8 == 7 {
            // Skip the hole before the first waiting byte (or up to a limit).
            let upto = if op & 0x80 != 0 {
                Some(u64::from(input.u16()))
            } else {
                None
            };
            let n = a.skip_hole(upto, &mut |b| out.extend_from_slice(b));
            skipped_total += n;
            if !small_cap {
                let first = m_pending.keys().next().copied();
                let target = match (first, upto) {
                    (Some(p), Some(u)) => Some(p.min(u)),
                    (Some(p), None) => Some(p),
                    (None, u) => u,
                };
                let want = match target {
                    Some(t) if t > m_next => {
                        let n = t - m_next;
                        m_next = t;
                        m_drain(&mut m_next, &mut m_pending, &mut m_out);
                        n
                    }
                    _ => 0,
                };
                assert_eq!(n, want, "skip_hole");
            }
        } else {
            let offset = u64::from(input.u16()) % 2048;
            let len = usize::from(input.u8() % 128);
            let fill = input.u8();
            let bytes: Vec<u8> = (0..len)
                .map(|i| fill.wrapping_add((offset as usize + i) as u8))
                .collect();
            let r = a.insert(offset, &bytes, &mut |b| out.extend_from_slice(b));
            assert!(a.pending_bytes() <= cap);
            if !small_cap {
                assert_eq!(r.dropped_bytes, 0);
                for (i, b) in bytes.iter().enumerate() {
                    let k = offset + i as u64;
                    if k >= m_next {
                        m_pending.entry(k).or_insert(*b);
                    }
                }
                m_drain(&mut m_next, &mut m_pending, &mut m_out);
            }
        }
        assert_eq!(
            out.len() as u64 + skipped_total,
            a.next_offset(),
            "every offset before next was delivered or skipped"
        );
        if !small_cap {
            assert_eq!(a.next_offset(), m_next);
            assert_eq!(out, m_out, "delivered bytes match the model");
            assert_eq!(a.first_pending(), m_pending.keys().next().copied());
        }
    }
}

fn m_drain(next: &mut u64, pending: &mut std::collections::BTreeMap<u64, u8>, out: &mut Vec<u8>) {
    // Waiting bytes before `next` were skipped over.
    while let Some((&k, _)) = pending.first_key_value() {
        if k < *next {
            pending.remove(&k);
        } else {
            break;
        }
    }
    while let Some(b) = pending.remove(next) {
        out.push(b);
        *next += 1;
    }
}

/// Counts what a connection's sink was given.
struct CountingSink {
    client: SocketAddr,
    server: SocketAddr,
    data: [u64; 2],
    gaps: [u64; 2],
    session: Option<Session>,
}

impl StreamSink for CountingSink {
    fn data(&mut self, side: Side, at: Timestamp, bytes: &[u8]) {
        self.data[side_idx(side)] += bytes.len() as u64;
        if let Some(s) = &mut self.session {
            s.on_data(side, at, bytes);
        }
    }

    fn gap(&mut self, side: Side, at: Timestamp, bytes: u64) {
        self.gaps[side_idx(side)] = self.gaps[side_idx(side)].saturating_add(bytes);
        if let Some(s) = &mut self.session {
            s.on_gap(side, at, bytes);
        }
    }
}

fn side_idx(s: Side) -> usize {
    match s {
        Side::Client => 0,
        Side::Server => 1,
    }
}

const HOSTS: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x25)),
];
const PORTS: [u16; 4] = [25, 50_000, 587, 10_025];

/// `tcp_flows`: arbitrary packets through a [`FlowTable`] whose sinks feed SMTP sessions.
///
/// Input: one configuration byte, then packets: endpoints (two hosts, two ports out of four),
/// flags, sequence and acknowledgment numbers (absolute, or near the last ones of that
/// direction, which is what makes reassembly happen), payload, bytes cut by the snaplen, and
/// a time step that may go backwards or jump hours.
///
/// Checked: no byte is delivered that was not sent (per direction, over all connections),
/// every connection is finished at the end, and the facts are consistent.
pub fn tcp_flows(data: &[u8]) {
    let mut input = Input::new(data);
    let conf = input.u8();
    let config = FlowConfig {
        server_ports: vec![25, 587],
        max_pending_bytes: if conf & 1 == 1 { 256 } else { 1 << 20 },
        closed_linger: Timestamp::from_secs(if conf & 2 == 2 { 1 } else { 120 }),
        idle_timeout: Timestamp::from_secs(if conf & 4 == 4 { 5 } else { 7200 }),
        ..FlowConfig::default()
    };
    let mut table: FlowTable<CountingSink> = FlowTable::new(config);
    let mut new_sink = |client: SocketAddr, server: SocketAddr| CountingSink {
        client,
        server,
        data: [0; 2],
        gaps: [0; 2],
        session: Some(Session::new()),
    };
    let mut sent: HashMap<(SocketAddr, SocketAddr), u64> = HashMap::new();
    let mut last_seq: HashMap<(SocketAddr, SocketAddr), (u32, u32)> = HashMap::new();
    let mut ts: i64 = 1_700_000_000 * Timestamp::NANOS_PER_SEC;
    let mut finished = Vec::new();
    let mut packets = 0u64;
    while !input.is_empty() && packets < 2048 {
        packets += 1;
        let ends = input.u8();
        let src_host = HOSTS[usize::from(ends & 3)];
        let dst_host = HOSTS[usize::from((ends >> 2) & 3)];
        let src_port = PORTS[usize::from((ends >> 4) & 3)];
        let dst_port = PORTS[usize::from((ends >> 6) & 3)];
        let src = SocketAddr::new(src_host, src_port);
        let dst = SocketAddr::new(dst_host, dst_port);
        let f = input.u8();
        let flags = TcpFlags {
            fin: f & 1 != 0,
            syn: f & 2 != 0,
            rst: f & 4 != 0,
            psh: f & 8 != 0,
            ack: f & 16 != 0,
        };
        let absolute = f & 0x20 != 0;
        let (prev_seq, prev_ack) = last_seq.get(&(src, dst)).copied().unwrap_or((0, 0));
        let (seq, ack) = if absolute {
            (input.u32(), input.u32())
        } else {
            let ds = input.u16() as i16;
            let da = input.u16() as i16;
            (
                prev_seq.wrapping_add(ds as i32 as u32),
                prev_ack.wrapping_add(da as i32 as u32),
            )
        };
        let len = usize::from(input.u8());
        let payload: Vec<u8> = if f & 0x40 != 0 {
            input.bytes(len).to_vec()
        } else {
            (0..len).map(|i| b"MAIL FROM:<a@b>\r\n"[i % 17]).collect()
        };
        let payload_missing = if f & 0x80 != 0 {
            u32::from(input.u8())
        } else {
            0
        };
        let step = input.u16() as i16;
        ts = ts.saturating_add(match step {
            // Hours: idle timeouts and linger.
            i16::MIN..=-30_000 => -Timestamp::NANOS_PER_SEC,
            30_000.. => i64::from(step) * Timestamp::NANOS_PER_SEC,
            _ => i64::from(step) * 1_000_000,
        });
        let seg_end = seq
            .wrapping_add(payload.len() as u32)
            .wrapping_add(payload_missing)
            .wrapping_add(u32::from(flags.syn) + u32::from(flags.fin));
        last_seq.insert((src, dst), (seg_end, ack));
        *sent.entry((src, dst)).or_insert(0) += payload.len() as u64;
        let pkt = Packet {
            frame: FrameRef {
                file: 0,
                number: packets,
            },
            ts: Timestamp(ts),
            src: src_host,
            dst: dst_host,
            ttl: input.u8(),
            ip_id: if src_host.is_ipv4() {
                Some(packets as u16)
            } else {
                None
            },
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window: if f & 0x40 != 0 { 0 } else { 65_535 },
            payload: &payload,
            payload_missing,
        };
        table.process(&pkt, &mut new_sink);
        finished.extend(table.drain_finished());
    }
    finished.extend(table.finish_all());
    let mut got: HashMap<(SocketAddr, SocketAddr), u64> = HashMap::new();
    for (tcp, sink) in &finished {
        assert_eq!((tcp.client, tcp.server), (sink.client, sink.server));
        assert!(tcp.first_seen <= tcp.last_seen);
        *got.entry((tcp.client, tcp.server)).or_insert(0) += sink.data[0];
        *got.entry((tcp.server, tcp.client)).or_insert(0) += sink.data[1];
        if let Some(s) = &sink.session {
            let sum = s.summary();
            assert_eq!(sum.client_bytes, sink.data[0]);
            assert_eq!(sum.server_bytes, sink.data[1]);
            let _ = icidtrace::verdict::decide(tcp, &sum);
        }
    }
    for (dir, n) in got {
        let s = sent.get(&dir).copied().unwrap_or(0);
        assert!(n <= s, "{dir:?}: {n} bytes delivered, {s} sent");
    }
}

// ---------------------------------------------------------------------------------------------
// smtp

/// `smtp_session`: arbitrary client and server bytes, in arbitrary chunks, with gaps, through
/// [`Session`]; then the same streams cut differently (each chunk split at other places, same
/// times) must give the same summary, as the session promises.
///
/// Input: operations of one byte (bit 0: side; bits 1-2: data, data, gap, zero gap; bits 3-7:
/// time step) and a length byte, then the chunk.
pub fn smtp_session(data: &[u8]) {
    let mut input = Input::new(data);
    let mut ops: Vec<(Side, u8, Timestamp, &[u8], u64)> = Vec::new();
    let mut t = Timestamp::from_secs(1_700_000_000);
    while !input.is_empty() && ops.len() < 4096 {
        let op = input.u8();
        let side = if op & 1 == 0 {
            Side::Client
        } else {
            Side::Server
        };
        let kind = (op >> 1) & 3;
        t = Timestamp(t.0 + i64::from(op >> 3) * 100_000_000);
        let len = usize::from(input.u8());
        match kind {
            2 => ops.push((side, kind, t, &[], len as u64 * 97)),
            3 => ops.push((side, kind, t, &[], 0)),
            _ => ops.push((side, kind, t, input.bytes(len), 0)),
        }
    }
    let whole = feed(&ops, usize::MAX);
    let json = serde_json::to_string(&whole).expect("the summary serializes");
    assert!(!json.is_empty());
    for cut in [1, 3, 7] {
        let split = feed(&ops, cut);
        assert_eq!(split, whole, "cut every {cut} bytes");
    }
}

fn feed(ops: &[(Side, u8, Timestamp, &[u8], u64)], cut: usize) -> icidtrace::smtp::SessionSummary {
    let mut s = Session::new();
    for (i, (side, kind, at, bytes, gap)) in ops.iter().enumerate() {
        if *kind >= 2 {
            s.on_gap(*side, *at, *gap);
        } else {
            for piece in bytes.chunks(cut.max(1)) {
                s.on_data(*side, *at, piece);
            }
        }
        if i % 16 == 15 {
            // Looking does not change anything.
            let _ = s.summary();
        }
    }
    s.summary()
}

// ---------------------------------------------------------------------------------------------
// maillog

/// `maillog_parse`: arbitrary text as a mail log.
///
/// Checked: [`maillog::parse_bytes`] gives the same log as the same bytes read in small pieces
/// (through [`MailLogBuilder::add_reader`]), and [`LineParser::push_bytes`] (the fast path)
/// gives the same records and counts as [`LineParser::push_line`] line by line.
///
/// Input: one mode byte (bit 0: a small line cap; bits 1-2: the year hint), then the log.
pub fn maillog_parse(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let text = input.rest();
    let year = match (mode >> 1) & 3 {
        0 => YearHint::Start(2024),
        1 => YearHint::End {
            year: 2024,
            month: 3,
        },
        2 => YearHint::Near {
            year: 2026,
            month: 1,
        },
        _ => YearHint::Start(1970),
    };
    let opts = LogOptions {
        max_line_len: if mode & 1 == 1 { 100 } else { 64 * 1024 },
        ..LogOptions::default()
    };
    let log = maillog::parse_bytes("fuzz.log", text, year, &opts);
    let _ = serde_json::to_string(&log).expect("the log serializes");
    let c = &log.summary.counts;
    assert!(c.records <= c.lines);
    assert!(c.unparsed_lines <= c.lines);

    let mut b = MailLogBuilder::new(opts.clone());
    b.add_reader(
        "fuzz.log",
        Some(text.len() as u64),
        Trickle::new(text),
        year,
    )
    .expect("reading from memory does not fail");
    let trickled = b.finish();
    assert_eq!(trickled, log, "the same log read in small pieces");

    // The fast path and the line-by-line path give the same records.
    let popts = ParserOptions {
        year,
        ..ParserOptions::default()
    };
    let mut fast = LineParser::new(0, popts.clone());
    let mut fast_recs = Vec::new();
    let end = fast.push_bytes(text, 1, |r| fast_recs.push(r));
    fast_recs.extend(fast.finish());
    let mut slow = LineParser::new(0, popts);
    let mut slow_recs = Vec::new();
    let mut no = 1;
    for line in text.split_inclusive(|&b| b == b'\n') {
        slow_recs.extend(slow.push_line(line, no));
        no += 1;
    }
    slow_recs.extend(slow.finish());
    assert_eq!(end, no, "line numbers");
    assert_eq!(fast_recs, slow_recs, "push_bytes vs push_line");
    assert_eq!(fast.counters(), slow.counters());
    assert_eq!(fast.samples(), slow.samples());
    assert_eq!(fast.hosts(), slow.hosts());
}

// ---------------------------------------------------------------------------------------------
// analyze

/// `analyze`: a capture and a mail log (each arbitrary) through the whole analysis, and the
/// report through every printer.
///
/// Input: a little-endian u32 length, the capture (that many bytes), then the log.
pub fn analyze(data: &[u8]) {
    let mut input = Input::new(data);
    let n = input.u32() as usize;
    let cap_bytes = input.bytes(n);
    let log_bytes = input.rest();
    let cap = Scratch::write("capture.pcap", cap_bytes);
    let log = Scratch::write("mail_logs", log_bytes);
    let opts = AnalyzeOptions {
        captures: vec![cap.name()],
        logs: vec![log.path().to_path_buf()],
        clock: ClockHint::Auto,
        log_lines: true,
        ..AnalyzeOptions::default()
    };
    let r = match run_analysis(&opts) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&cap.name()) || msg.contains(&log.name()),
                "{msg}"
            );
            return;
        }
    };
    assert_eq!(r.connections.len() as u32, r.summary.connections);
    assert!(r.summary.matched <= r.summary.connections);
    for (i, c) in r.connections.iter().enumerate() {
        assert_eq!(c.id as usize, i + 1);
        assert!(c.first_seen <= c.last_seen);
    }
    let _ = report::table::render(&r, 100);
    let _ = report::table::render(&r, 40);
    let json = report::json::render(&r);
    let _: serde_json::Value = serde_json::from_str(&json).expect("the JSON report parses");
    let _ = report::csv::render(&r);
    let _ = report::markdown::render(&r);
    let _ = report::html::render(&r);
    let all: Vec<usize> = (0..r.connections.len().min(8)).collect();
    let _ = report::detail::render(&r, &all, 80);
    let mut red = icidtrace::redact::Redactor::new(true);
    let _ = icidtrace::redact::redact_report(&r, &mut red);
}
