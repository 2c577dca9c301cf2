//! Built packets for the end-to-end tests of `tests/built_packets.rs`: a scripted SMTP
//! conversation as TCP segments with exact sequence and acknowledgment numbers, Ethernet (with
//! optional 802.1Q / QinQ tags) and IPv4 or IPv6 frames built with etherparse's
//! `PacketBuilder`, and a classic pcap writer (written by hand, so that tests can also cut
//! records and damage the file on purpose).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use etherparse::{IpHeaders, IpNumber, Ipv4Header, PacketBuilder, PacketBuilderStep, VlanId};
use icidtrace::analyze::{AnalyzeOptions, analyze};
use serde_json::Value;

pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 25);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x25);
pub const CLIENT_PORT: u16 = 40000;
pub const SERVER_PORT: u16 = 25;
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x07];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x25];
/// The client is a few routers away, the server is local (as seen on the appliance).
pub const CLIENT_TTL: u8 = 53;
pub const SERVER_TTL: u8 = 64;
/// 2024-03-05T10:00:00Z, in microseconds.
pub const START_US: i64 = 1_709_632_800_000_000;
/// Time between two consecutive segments of a script.
pub const STEP_US: i64 = 10_000;

pub const BANNER: &[u8] = b"220 esa.example.com ESMTP\r\n";
pub const EHLO: &[u8] = b"EHLO mail.example.org\r\n";
pub const EHLO_REPLY: &[u8] = b"250-esa.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
pub const MAIL: &[u8] = b"MAIL FROM:<alice@example.org>\r\n";
pub const MAIL_REPLY: &[u8] = b"250 sender <alice@example.org> ok\r\n";
pub const RCPT: &[u8] = b"RCPT TO:<bob@example.com>\r\n";
pub const RCPT_REPLY: &[u8] = b"250 recipient <bob@example.com> ok\r\n";
pub const DATA: &[u8] = b"DATA\r\n";
pub const DATA_REPLY: &[u8] = b"354 go ahead\r\n";
/// The message, as the client sends it in four segments (dot-stuffing included).
pub const BODY: [&[u8]; 4] = [
    b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.com>\r\nSubject: built packets\r\n\r\n",
    b"Hello Bob,\r\n..this line starts with a dot, stuffed\r\n",
    b"this message was built packet by packet\r\nand written to a pcap file.\r\n",
    b"-- \r\nAlice\r\n",
];
pub const END_OF_DATA: &[u8] = b".\r\n";
pub const DATA_END_REPLY: &[u8] = b"250 ok: queued as 4711\r\n";
pub const QUIT: &[u8] = b"QUIT\r\n";
pub const QUIT_REPLY: &[u8] = b"221 esa.example.com closing connection\r\n";

/// Message bytes of [`BODY`] (the closing `.` line not counted).
pub fn body_bytes() -> u64 {
    BODY.iter().map(|b| b.len() as u64).sum()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Plain,
    /// One 802.1Q tag.
    Vlan(u16),
    /// Two tags (802.1ad outer, 802.1Q inner).
    QinQ(u16, u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// How the frames of a script are encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub link: Link,
    pub family: Family,
}

impl Net {
    pub const V4: Net = Net {
        link: Link::Plain,
        family: Family::V4,
    };

    /// The client as the report prints it (`ip:port`, IPv6 as `[addr]:port`).
    pub fn client(&self) -> String {
        match self.family {
            Family::V4 => format!("{CLIENT_V4}:{CLIENT_PORT}"),
            Family::V6 => format!("[{CLIENT_V6}]:{CLIENT_PORT}"),
        }
    }

    pub fn server(&self) -> String {
        match self.family {
            Family::V4 => format!("{SERVER_V4}:{SERVER_PORT}"),
            Family::V6 => format!("[{SERVER_V6}]:{SERVER_PORT}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    C2S,
    /// Server to client.
    S2C,
}

/// One TCP segment of a script.
#[derive(Debug, Clone, PartialEq)]
pub struct Seg {
    /// What it is in the conversation (`"SYN"`, `"MAIL"`, `"body2"`, `"ack"`, ...).
    pub label: String,
    pub dir: Dir,
    pub ts_us: i64,
    pub seq: u32,
    /// The ACK flag and its number.
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: Vec<u8>,
    pub ttl: u8,
    pub ip_id: u16,
    /// Bytes of the frame kept in the capture (a snaplen cut); `None` keeps the whole frame.
    pub caplen: Option<usize>,
}

impl Seg {
    /// Sequence space the segment occupies (payload, plus one for SYN and FIN).
    pub fn seq_len(&self) -> u32 {
        self.payload.len() as u32 + u32::from(self.syn) + u32::from(self.fin)
    }

    /// Sequence number right after the segment.
    pub fn end_seq(&self) -> u32 {
        self.seq.wrapping_add(self.seq_len())
    }
}

/// Writes a conversation segment by segment, keeping both sides' sequence numbers, their
/// acknowledgment of each other, IP IDs and a clock that advances [`STEP_US`] per segment.
#[derive(Debug, Clone)]
pub struct Script {
    pub segs: Vec<Seg>,
    /// Next sequence number each side sends.
    c_next: u32,
    s_next: u32,
    c_ip_id: u16,
    s_ip_id: u16,
    now_us: i64,
}

impl Script {
    pub fn new(start_us: i64) -> Script {
        Script {
            segs: Vec::new(),
            c_next: 0,
            s_next: 0,
            c_ip_id: 0x3a10,
            s_ip_id: 0x8800,
            now_us: start_us,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        label: &str,
        dir: Dir,
        ack: bool,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: &[u8],
    ) -> usize {
        let (seq, ack_no, ttl, ip_id) = match dir {
            Dir::C2S => {
                self.c_ip_id = self.c_ip_id.wrapping_add(1);
                (self.c_next, self.s_next, CLIENT_TTL, self.c_ip_id)
            }
            Dir::S2C => {
                self.s_ip_id = self.s_ip_id.wrapping_add(1);
                (self.s_next, self.c_next, SERVER_TTL, self.s_ip_id)
            }
        };
        let seg = Seg {
            label: label.to_string(),
            dir,
            ts_us: self.now_us,
            seq,
            ack: ack.then_some(ack_no),
            syn,
            fin,
            rst,
            payload: payload.to_vec(),
            ttl,
            ip_id,
            caplen: None,
        };
        let end = seg.end_seq();
        match dir {
            Dir::C2S => self.c_next = end,
            Dir::S2C => self.s_next = end,
        }
        self.now_us += STEP_US;
        self.segs.push(seg);
        self.segs.len() - 1
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self, client_isn: u32, server_isn: u32) {
        self.c_next = client_isn;
        self.s_next = server_isn;
        self.push("SYN", Dir::C2S, false, true, false, false, b"");
        self.push("SYN-ACK", Dir::S2C, true, true, false, false, b"");
        self.push("ACK", Dir::C2S, true, false, false, false, b"");
    }

    /// A client data segment (ACK, PSH) acknowledging everything the server sent.
    pub fn client(&mut self, label: &str, payload: &[u8]) -> usize {
        self.push(label, Dir::C2S, true, false, false, false, payload)
    }

    pub fn server(&mut self, label: &str, payload: &[u8]) -> usize {
        self.push(label, Dir::S2C, true, false, false, false, payload)
    }

    pub fn client_ack(&mut self, label: &str) -> usize {
        self.client(label, b"")
    }

    pub fn server_ack(&mut self, label: &str) -> usize {
        self.server(label, b"")
    }

    pub fn client_fin(&mut self, label: &str) -> usize {
        self.push(label, Dir::C2S, true, false, true, false, b"")
    }

    pub fn server_fin(&mut self, label: &str) -> usize {
        self.push(label, Dir::S2C, true, false, true, false, b"")
    }

    pub fn client_rst(&mut self, label: &str) -> usize {
        self.push(label, Dir::C2S, true, false, false, true, b"")
    }
}

/// Banner, EHLO and its reply.
pub fn greeting(s: &mut Script) {
    s.server("banner", BANNER);
    s.client("EHLO", EHLO);
    s.server("EHLO-reply", EHLO_REPLY);
}

/// MAIL FROM and RCPT TO, both accepted.
pub fn envelope(s: &mut Script) {
    s.client("MAIL", MAIL);
    s.server("MAIL-reply", MAIL_REPLY);
    s.client("RCPT", RCPT);
    s.server("RCPT-reply", RCPT_REPLY);
}

/// DATA, 354, the four body segments `body1`..`body4` (with a server ACK, labelled
/// `ack-body`, after `body3` when `server_acks` is set), the `.` line and the 250.
pub fn data(s: &mut Script, server_acks: bool) {
    s.client("DATA", DATA);
    s.server("DATA-reply", DATA_REPLY);
    for (i, part) in BODY.iter().enumerate() {
        s.client(&format!("body{}", i + 1), part);
        if server_acks && i == 2 {
            s.server_ack("ack-body");
        }
    }
    s.client("end-of-data", END_OF_DATA);
    s.server("end-of-data-reply", DATA_END_REPLY);
}

/// QUIT, 221, then the client closes: FIN, FIN-ACK, ACK.
pub fn quit_and_close(s: &mut Script) {
    s.client("QUIT", QUIT);
    s.server("QUIT-reply", QUIT_REPLY);
    s.client_fin("FIN");
    s.server_fin("FIN-ACK");
    s.client_ack("last-ACK");
}

/// The baseline: one message delivered and a clean QUIT, from the SYN to the last ACK.
pub fn full_session(client_isn: u32, server_isn: u32, start_us: i64, server_acks: bool) -> Script {
    let mut s = Script::new(start_us);
    s.handshake(client_isn, server_isn);
    greeting(&mut s);
    envelope(&mut s);
    data(&mut s, server_acks);
    quit_and_close(&mut s);
    s
}

/// The baseline with the ISNs most tests use.
pub fn baseline() -> Vec<Seg> {
    full_session(0x1000_0000, 0x7000_0000, START_US, false).segs
}

// ------------------------------------------------------------------ editing segment lists

/// Index of the segment labelled `label`.
pub fn find(segs: &[Seg], label: &str) -> usize {
    segs.iter()
        .position(|s| s.label == label)
        .unwrap_or_else(|| panic!("no segment labelled {label}"))
}

/// Replaces the data segment labelled `label` with pieces cut at the payload offsets `cuts`
/// (labelled `label#0`, `label#1`, ...), in order, same timestamp.
pub fn split(segs: &mut Vec<Seg>, label: &str, cuts: &[usize]) {
    let i = find(segs, label);
    let seg = segs.remove(i);
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(seg.payload.len());
    for (k, w) in bounds.windows(2).enumerate() {
        let mut piece = seg.clone();
        piece.label = format!("{label}#{k}");
        piece.seq = seg.seq.wrapping_add(w[0] as u32);
        piece.payload = seg.payload[w[0]..w[1]].to_vec();
        piece.ip_id = seg.ip_id.wrapping_add(k as u16 * 0x100);
        segs.insert(i + k, piece);
    }
}

/// Removes the segment labelled `label` and returns it.
pub fn remove(segs: &mut Vec<Seg>, label: &str) -> Seg {
    let i = find(segs, label);
    segs.remove(i)
}

/// Puts the segments labelled `order` (all present, consecutive or not) in that order, in the
/// positions they held.
pub fn reorder(segs: &mut [Seg], order: &[&str]) {
    let mut positions: Vec<usize> = order.iter().map(|l| find(segs, l)).collect();
    let moved: Vec<Seg> = positions.iter().map(|&p| segs[p].clone()).collect();
    positions.sort_unstable();
    for (p, seg) in positions.into_iter().zip(moved) {
        segs[p] = seg;
    }
}

/// Sets timestamps from the capture order: `START_US` plus [`STEP_US`] per segment, so that
/// a permuted list still reads as a capture with increasing times.
pub fn retime(segs: &mut [Seg], start_us: i64) {
    for (i, s) in segs.iter_mut().enumerate() {
        s.ts_us = start_us + i as i64 * STEP_US;
    }
}

/// The client's payload bytes in sequence order, and the sequence number of the first one:
/// what the server's application reads.
pub fn client_stream(segs: &[Seg]) -> (u32, Vec<u8>) {
    let mut first = None;
    let mut out = Vec::new();
    for s in segs
        .iter()
        .filter(|s| s.dir == Dir::C2S && !s.payload.is_empty())
    {
        first.get_or_insert(s.seq);
        out.extend_from_slice(&s.payload);
    }
    (first.unwrap_or_default(), out)
}

// ------------------------------------------------------------------ frames and pcap files

fn link_step(
    link: Link,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    ip: IpHeaders,
) -> PacketBuilderStep<IpHeaders> {
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let vid = |v: u16| VlanId::try_new(v).expect("VLAN id below 4096");
    match link {
        Link::Plain => eth.ip(ip),
        Link::Vlan(v) => eth.single_vlan(vid(v)).ip(ip),
        Link::QinQ(outer, inner) => eth.double_vlan(vid(outer), vid(inner)).ip(ip),
    }
}

/// The Ethernet frame of one segment, as it was on the wire (never cut).
pub fn frame(net: &Net, seg: &Seg) -> Vec<u8> {
    let (src_mac, dst_mac, src_port, dst_port) = match seg.dir {
        Dir::C2S => (CLIENT_MAC, SERVER_MAC, CLIENT_PORT, SERVER_PORT),
        Dir::S2C => (SERVER_MAC, CLIENT_MAC, SERVER_PORT, CLIENT_PORT),
    };
    let ip = match net.family {
        Family::V4 => {
            let (src, dst) = match seg.dir {
                Dir::C2S => (CLIENT_V4, SERVER_V4),
                Dir::S2C => (SERVER_V4, CLIENT_V4),
            };
            let mut h = Ipv4Header::new(0, seg.ttl, IpNumber::TCP, src.octets(), dst.octets())
                .expect("IPv4 header");
            h.identification = seg.ip_id;
            IpHeaders::Ipv4(h, Default::default())
        }
        Family::V6 => {
            let (src, dst) = match seg.dir {
                Dir::C2S => (CLIENT_V6, SERVER_V6),
                Dir::S2C => (SERVER_V6, CLIENT_V6),
            };
            IpHeaders::Ipv6(
                etherparse::Ipv6Header {
                    hop_limit: seg.ttl,
                    source: src.octets(),
                    destination: dst.octets(),
                    ..Default::default()
                },
                Default::default(),
            )
        }
    };
    let window = if seg.syn { 64240 } else { 501 };
    let mut b = link_step(net.link, src_mac, dst_mac, ip).tcp(src_port, dst_port, seg.seq, window);
    if let Some(a) = seg.ack {
        b = b.ack(a);
    }
    if seg.syn {
        b = b.syn();
    }
    if seg.fin {
        b = b.fin();
    }
    if seg.rst {
        b = b.rst();
    }
    if !seg.payload.is_empty() {
        b = b.psh();
    }
    let mut out = Vec::with_capacity(b.size(seg.payload.len()));
    b.write(&mut out, &seg.payload).expect("frame builds");
    out
}

/// A classic pcap file (little endian, microseconds, Ethernet) in memory, and where each
/// record starts, so that tests can damage it.
#[derive(Debug, Clone)]
pub struct PcapFile {
    pub bytes: Vec<u8>,
    /// Byte offset of each record header (record n is at `records[n - 1]`).
    pub records: Vec<usize>,
}

pub const PCAP_HEADER_LEN: usize = 24;
pub const RECORD_HEADER_LEN: usize = 16;
const LINKTYPE_ETHERNET: u32 = 1;

/// The pcap file of `segs`, in that order, with a file header stating `snaplen`.
pub fn pcap(net: &Net, segs: &[Seg], snaplen: u32) -> PcapFile {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&4u16.to_le_bytes());
    bytes.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    bytes.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    bytes.extend_from_slice(&snaplen.to_le_bytes());
    bytes.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    let mut records = Vec::with_capacity(segs.len());
    for seg in segs {
        let f = frame(net, seg);
        let caplen = seg
            .caplen
            .unwrap_or(f.len())
            .min(f.len())
            .min(snaplen as usize);
        records.push(bytes.len());
        let secs = seg.ts_us.div_euclid(1_000_000) as u32;
        let micros = seg.ts_us.rem_euclid(1_000_000) as u32;
        bytes.extend_from_slice(&secs.to_le_bytes());
        bytes.extend_from_slice(&micros.to_le_bytes());
        bytes.extend_from_slice(&(caplen as u32).to_le_bytes());
        bytes.extend_from_slice(&(f.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&f[..caplen]);
    }
    PcapFile { bytes, records }
}

/// Writes `file` as `name` in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, file: &PcapFile) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, &file.bytes).expect("pcap written");
    path
}

/// Runs the analysis on `path`, which must succeed, and returns the report as JSON.
pub fn analyze_path(path: &Path) -> Value {
    let opts = AnalyzeOptions {
        captures: vec![path.to_string_lossy().into_owned()],
        ..Default::default()
    };
    let report =
        analyze(&opts).unwrap_or_else(|e| panic!("analysis of {} failed: {e}", path.display()));
    serde_json::to_value(&report).expect("report serializes")
}

/// Writes `segs` as a pcap (snaplen 262144) in a fresh temporary directory and analyses it.
pub fn analyze_segs(net: &Net, segs: &[Seg]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "built.pcap", &pcap(net, segs, 262_144));
    analyze_path(&path)
}

/// The report's connections.
pub fn connections(report: &Value) -> &Vec<Value> {
    report["connections"].as_array().expect("connections[]")
}

/// The report's only connection (fails when there is not exactly one).
pub fn only_connection(report: &Value) -> &Value {
    let conns = connections(report);
    assert_eq!(
        conns.len(),
        1,
        "expected one connection, got {}: {:#}",
        conns.len(),
        report["connections"]
    );
    &conns[0]
}

/// The SMTP and verdict facts that do not depend on how the bytes travelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub layer: String,
    pub initiator: String,
    pub cause: String,
    pub phase: String,
    pub quit: bool,
    pub transactions: u64,
    pub completed: u64,
    pub banner: Option<u64>,
    pub mail_from: Vec<String>,
    pub rcpt_to: Vec<Vec<String>>,
    /// Per transaction: message bytes, whether the end of data was seen, final reply code.
    pub data: Vec<Option<(u64, bool, Option<u64>)>>,
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// The [`Facts`] of one connection of a report.
pub fn facts(conn: &Value) -> Facts {
    let v = &conn["verdict"];
    let smtp = &conn["smtp"];
    let txs = smtp["session"]["transactions"]
        .as_array()
        .expect("transactions[]");
    Facts {
        layer: s(&v["layer"]),
        initiator: s(&v["initiator"]),
        cause: s(&v["cause"]),
        phase: s(&v["phase"]),
        quit: smtp["quit"].as_bool().expect("quit"),
        transactions: smtp["transactions"].as_u64().expect("transactions"),
        completed: smtp["completed"].as_u64().expect("completed"),
        banner: smtp["banner"].as_u64(),
        mail_from: txs.iter().map(|t| s(&t["mail_from"])).collect(),
        rcpt_to: txs
            .iter()
            .map(|t| {
                t["rcpt_to"]
                    .as_array()
                    .expect("rcpt_to[]")
                    .iter()
                    .map(|r| s(&r["address"]))
                    .collect()
            })
            .collect(),
        data: txs
            .iter()
            .map(|t| {
                let d = &t["data"];
                (!d.is_null()).then(|| {
                    (
                        d["bytes"].as_u64().expect("bytes"),
                        !d["end_at"].is_null(),
                        d["final_reply"]["code"].as_u64(),
                    )
                })
            })
            .collect(),
    }
}

/// What the baseline session gives: one message delivered, clean QUIT.
pub fn baseline_facts() -> Facts {
    Facts {
        layer: "none".into(),
        initiator: "client".into(),
        cause: "quit".into(),
        phase: "quit".into(),
        quit: true,
        transactions: 1,
        completed: 1,
        banner: Some(220),
        mail_from: vec!["alice@example.org".into()],
        rcpt_to: vec![vec!["bob@example.com".into()]],
        data: vec![Some((body_bytes(), true, Some(250)))],
    }
}

/// The TCP anomalies of a connection of the given kind.
pub fn anomalies<'a>(conn: &'a Value, kind: &str) -> Vec<&'a Value> {
    conn["tcp"]["anomalies"]
        .as_array()
        .expect("anomalies[]")
        .iter()
        .filter(|a| a["kind"] == kind)
        .collect()
}

/// A side's TCP counter (`side` is `from_client` or `from_server`).
pub fn counter(conn: &Value, side: &str, name: &str) -> u64 {
    conn["tcp"][side][name]
        .as_u64()
        .unwrap_or_else(|| panic!("tcp.{side}.{name} missing: {:#}", conn["tcp"][side]))
}
