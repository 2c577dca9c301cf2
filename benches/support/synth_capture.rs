//! Synthetic appliance-scale inputs: a packet capture of many concurrent inbound SMTP sessions
//! as an ESA listener sees them, the on-box `mail_logs` the appliance writes for them, and the
//! truth about every connection (shared by `examples/gen_capture.rs` and `tests/generated.rs`,
//! included with `#[path]`).
//!
//! Contract of [`generate`]:
//!
//! - **Capture**: Ethernet/IPv4/TCP frames with microsecond timestamps that never go backwards,
//!   handed one at a time to a [`PacketSink`] ([`PcapWriter`] writes the classic pcap format;
//!   the example uses libpcap's savefile). Server 192.0.2.25:25; clients from 198.51.100.0/24
//!   and 203.0.113.0/24 with ephemeral ports, never a 4-tuple that is still open. Every frame
//!   is valid: IPv4 header and TCP checksums, SYN / SYN-ACK / ACK with MSS, SACK-permitted,
//!   timestamps and window scale, sequence and acknowledgement numbers consistent throughout
//!   (random ISNs, one in ten close enough to 2^32 to wrap), 1448-byte segments (MSS 1460 less
//!   the timestamp option), the server acknowledging every second data segment.
//! - **Sessions**: the SMTP dialogue of each [`Outcome`] (banner, EHLO, MAIL, RCPTs, DATA, a
//!   dot-stuffed MIME body of a log-normal size between 2 KB and 9 MB, `.`, QUIT, the closes;
//!   STARTTLS sessions continue with TLS 1.2 records), in realistic proportions. About 1.5 % of
//!   the body segments are re-sent later (the server answers with a D-SACK duplicate ACK) and
//!   about 1 % of adjacent pairs arrive swapped (a duplicate ACK with SACK, then the full ACK).
//! - **Concurrency**: `concurrent` sessions are kept open at once; packets of all of them are
//!   interleaved in time order by a priority queue on each session's next packet. Memory is
//!   bounded by the open sessions: message bodies are generated as they are sent, never held.
//! - **Log**: what the appliance logs for each outcome (`New SMTP ICID`, HAT verdict, `TLS
//!   success`, `Start MID`, `From`, `RID … To`, `ready`, `ICID lost`, `Receiving aborted`,
//!   `Receiving aborted by sender`, `Delayed HAT REJECT`, `ICID close`, …), each line at the time
//!   of the packet it belongs to plus `clock_offset` seconds, truncated to the second.
//! - **Truth**: one JSON object with every connection's client `ip:port`, ICID (null for the
//!   half-open SYNs, which the appliance never accepted), MIDs, intended outcome and the verdict
//!   icidtrace should give with the log, and the count of each outcome.
//! - **Deterministic**: the same options give the same bytes in all three files.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fmt;
use std::io::{self, Write};
use std::net::Ipv4Addr;

// ---------------------------------------------------------------------------------------------
// Randomness: the shared splitmix64 (rng.rs), salted for this generator.

#[path = "rng.rs"]
mod rng;
pub use rng::Rng;

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng::salted(seed, 0x243f_6a88_85a3_08d3)
    }
}

// ---------------------------------------------------------------------------------------------
// What to generate and what came out.

/// Options of [`generate`].
#[derive(Debug, Clone)]
pub struct CaptureGenOptions {
    pub seed: u64,
    /// Stop starting sessions once the capture (with what the open sessions will still send)
    /// reaches about this many bytes; the open ones are finished.
    pub size: Option<u64>,
    /// Stop after starting this many sessions.
    pub sessions: Option<u64>,
    /// Sessions open at once (a session that ends is replaced by a new one).
    pub concurrent: u32,
    /// The appliance clock minus the capture's (UTC), in seconds. The log header states the
    /// whole quarter hours of it as the zone; the rest is an unstated skew.
    pub clock_offset: i64,
    /// The listener's idle timeout: a silent client gets `421` after this many seconds.
    pub idle_timeout_secs: u32,
    /// Time of the first packet, microseconds since the epoch (UTC).
    pub start_us: i64,
    /// Median message size in bytes (sizes are log-normal around it, 2 KB to 9 MB).
    pub median_message: u64,
    /// Every outcome equally often instead of the realistic mix (for tests that want each).
    pub even_mix: bool,
}

impl Default for CaptureGenOptions {
    fn default() -> Self {
        CaptureGenOptions {
            seed: 1,
            size: None,
            sessions: None,
            concurrent: 1000,
            clock_offset: 3603,
            idle_timeout_secs: 300,
            // Mon 2026-03-02 09:00:00 UTC
            start_us: 1_772_442_000_000_000,
            median_message: 14_000,
            even_mix: false,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct CaptureGenStats {
    pub packets: u64,
    /// Bytes of the pcap file (file header included).
    pub capture_bytes: u64,
    pub log_bytes: u64,
    pub log_lines: u64,
    pub sessions: u64,
    /// The most TCP connections open at once (first SYN to last packet).
    pub max_open: u64,
    pub counts: [u64; Outcome::ALL.len()],
    pub first_us: i64,
    pub last_us: i64,
}

/// Where the frames go: one call per frame, in time order.
pub trait PacketSink {
    fn packet(&mut self, ts_us: i64, frame: &[u8]) -> io::Result<()>;
}

/// The classic pcap format (microseconds, link type Ethernet), written to any `Write`.
pub struct PcapWriter<W: Write> {
    out: W,
    started: bool,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(out: W) -> Self {
        PcapWriter {
            out,
            started: false,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn header(&mut self) -> io::Result<()> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&65535u32.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        self.out.write_all(&h)
    }

    /// Writes the file header if no packet came (an empty capture is still a pcap) and flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            self.header()?;
        }
        self.out.flush()
    }
}

impl<W: Write> PacketSink for PcapWriter<W> {
    fn packet(&mut self, ts_us: i64, frame: &[u8]) -> io::Result<()> {
        if !self.started {
            self.started = true;
            self.header()?;
        }
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(ts_us.div_euclid(1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(ts_us.rem_euclid(1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)
    }
}

// ---------------------------------------------------------------------------------------------
// Outcomes.

/// How a session ends, as the sender and the appliance play it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// One or more messages received, then QUIT.
    Delivered,
    /// STARTTLS, then (encrypted) messages received and QUIT, TLS close alerts, FINs.
    TlsDelivered,
    /// EHLO, QUIT: no message.
    NoMessage,
    /// The HAT rejects the sender: `554` banner, the appliance closes.
    HatReject,
    /// Delayed HAT reject: MAIL accepted for logging, every RCPT answered `554`, QUIT.
    RejectAtRcpt,
    /// MAIL, RCPT, QUIT before DATA: "Receiving aborted by sender".
    QuitBeforeData,
    /// MAIL, RCPT, RSET, QUIT: "Receiving aborted by sender" at the RSET.
    RsetQuit,
    /// RST after the envelope, no QUIT.
    RstBeforeData,
    /// FIN after the envelope, no QUIT.
    FinNoQuit,
    /// Part of the body after 354, a pause, RST.
    RstDuringData,
    /// Part of the body after 354, a pause, FIN.
    FinDuringData,
    /// EHLO, then FIN without a message: `ICID lost`.
    LostAfterEhlo,
    /// Envelope, then silence: the listener's `421` after the idle timeout, the appliance
    /// closes.
    IdleTimeout,
    /// STARTTLS, part of the encrypted body, RST without a TLS alert.
    TlsRst,
    /// SYNs nobody answers (no ICID).
    HalfOpen,
}

impl Outcome {
    pub const ALL: [Outcome; 15] = [
        Outcome::Delivered,
        Outcome::TlsDelivered,
        Outcome::NoMessage,
        Outcome::HatReject,
        Outcome::RejectAtRcpt,
        Outcome::QuitBeforeData,
        Outcome::RsetQuit,
        Outcome::RstBeforeData,
        Outcome::FinNoQuit,
        Outcome::RstDuringData,
        Outcome::FinDuringData,
        Outcome::LostAfterEhlo,
        Outcome::IdleTimeout,
        Outcome::TlsRst,
        Outcome::HalfOpen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::TlsDelivered => "tls_delivered",
            Outcome::NoMessage => "no_message",
            Outcome::HatReject => "hat_reject",
            Outcome::RejectAtRcpt => "reject_at_rcpt",
            Outcome::QuitBeforeData => "quit_before_data",
            Outcome::RsetQuit => "rset_quit",
            Outcome::RstBeforeData => "rst_before_data",
            Outcome::FinNoQuit => "fin_no_quit",
            Outcome::RstDuringData => "rst_during_data",
            Outcome::FinDuringData => "fin_during_data",
            Outcome::LostAfterEhlo => "lost_after_ehlo",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::TlsRst => "tls_rst",
            Outcome::HalfOpen => "half_open",
        }
    }

    /// Share of new connections, per mille.
    fn weight(self) -> u64 {
        match self {
            Outcome::Delivered => 560,
            Outcome::TlsDelivered => 130,
            Outcome::NoMessage => 25,
            Outcome::HatReject => 200,
            Outcome::RejectAtRcpt => 10,
            Outcome::QuitBeforeData => 15,
            Outcome::RsetQuit => 5,
            Outcome::RstBeforeData => 8,
            Outcome::FinNoQuit => 7,
            Outcome::RstDuringData => 10,
            Outcome::FinDuringData => 5,
            Outcome::LostAfterEhlo => 10,
            Outcome::IdleTimeout => 7,
            Outcome::TlsRst => 4,
            Outcome::HalfOpen => 4,
        }
    }

    /// The verdict icidtrace should give with the log: `(layer, cause)`. For the STARTTLS
    /// sessions that end gracefully the wire alone cannot tell (`unknown`); this is the verdict
    /// the log fills in (`log_match.filled_in`).
    pub fn expected(self) -> (&'static str, &'static str) {
        match self {
            Outcome::Delivered | Outcome::TlsDelivered | Outcome::NoMessage => ("none", "quit"),
            Outcome::HatReject => ("server", "server_reject_close"),
            // The MAIL FROM was accepted (only the recipients were refused), so the QUIT leaves
            // an envelope open: the design's application layer, and the log says rejected.
            Outcome::RejectAtRcpt | Outcome::QuitBeforeData => ("application", "quit_before_data"),
            Outcome::RsetQuit => ("application", "rset_before_data"),
            Outcome::RstBeforeData | Outcome::TlsRst => ("network", "client_rst"),
            Outcome::FinNoQuit | Outcome::LostAfterEhlo => ("network", "client_fin_no_quit"),
            Outcome::RstDuringData => ("network", "rst_during_data"),
            Outcome::FinDuringData => ("network", "fin_during_data"),
            Outcome::IdleTimeout => ("timeout", "idle_timeout"),
            Outcome::HalfOpen => ("network", "syn_unanswered"),
        }
    }

    fn index(self) -> usize {
        Outcome::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }

    fn draw(rng: &mut Rng, even: bool) -> Outcome {
        if even {
            return *rng.pick(&Outcome::ALL);
        }
        let mut x = rng.below(1000);
        for o in Outcome::ALL {
            if x < o.weight() {
                return o;
            }
            x -= o.weight();
        }
        Outcome::Delivered
    }

    fn tls(self) -> bool {
        matches!(self, Outcome::TlsDelivered | Outcome::TlsRst)
    }
}

// ---------------------------------------------------------------------------------------------
// Constants of the network and the dialogue.

pub const SERVER_IP: [u8; 4] = [192, 0, 2, 25];
pub const SERVER_PORT: u16 = 25;
const SERVER_MAC: [u8; 6] = [0x00, 0x50, 0x56, 0x8a, 0x19, 0x25];
const ROUTER_MAC: [u8; 6] = [0x00, 0x00, 0x0c, 0x9f, 0xf0, 0x01];
const MSS: usize = 1448;
const US: i64 = 1_000_000;
/// Delayed-ACK timer of both stacks.
const DELACK: i64 = 40_000;
const HOSTNAME: &str = "esa1.example.com";
const BANNER: &str = "220 esa1.example.com ESMTP\r\n";
const EHLO_REPLY: &str =
    "250-esa1.example.com\r\n250-8BITMIME\r\n250-SIZE 10485760\r\n250-STARTTLS\r\n250 OK\r\n";
const EHLO_REPLY_TLS: &str =
    "250-esa1.example.com\r\n250-8BITMIME\r\n250-SIZE 10485760\r\n250 OK\r\n";
const REJECT_TEXT: &str = "554 Your access to this mail system has been rejected due to the sending MTA's poor reputation. If you believe that this failure is in error, please contact the intended recipient via alternate means.\r\n";

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

const DOMAINS: [&str; 12] = [
    "example.com",
    "example.net",
    "example.org",
    "mail.example.co.uk",
    "news.example.de",
    "billing.example.io",
    "shop.example.fr",
    "lists.example.edu",
    "notify.example.app",
    "bank.example.ch",
    "travel.example.es",
    "partners.example.at",
];
const LOCAL_DOMAINS: [&str; 2] = ["mycompany.example", "subsidiary.example"];
const USERS: [&str; 12] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "olivia",
    "peggy",
];
const SUBJECTS: [&str; 8] = [
    "Invoice for your order",
    "Re: meeting notes",
    "Your weekly report",
    "FW: project update",
    "Quarterly results",
    "Shipping confirmation",
    "Newsletter - March edition",
    "Lunch on Friday?",
];
const WORDS: [&str; 32] = [
    "the", "report", "meeting", "please", "find", "attached", "invoice", "for", "your", "order",
    "we", "will", "send", "update", "project", "schedule", "thanks", "regards", "and", "a",
    "review", "draft", "contract", "next", "week", "team", "budget", "numbers", "as", "agreed",
    "today", "details",
];
const ATTACHMENTS: [(&str, &str); 4] = [
    ("application/pdf", "invoice.pdf"),
    ("image/png", "image001.png"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "report.xlsx",
    ),
    ("application/zip", "documents.zip"),
];
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The client addresses: 198.51.100.1–254 and 203.0.113.1–254.
const CLIENTS: usize = 508;

fn client_ip(i: usize) -> [u8; 4] {
    if i < 254 {
        [198, 51, 100, (i + 1) as u8]
    } else {
        [203, 0, 113, (i - 254 + 1) as u8]
    }
}

fn ip_str(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

// ---------------------------------------------------------------------------------------------
// Frames.

/// One TCP segment to put on the wire.
struct Seg {
    from_client: bool,
    cip: [u8; 4],
    cport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
    ttl: u8,
    ip_id: u16,
    opts: Opts,
}

#[derive(Clone, Copy)]
enum Opts {
    None,
    /// SYN and SYN-ACK: MSS, SACK permitted, timestamps, window scale (Linux's order).
    Syn {
        tsval: u32,
        tsecr: u32,
        wscale: u8,
    },
    Ts {
        tsval: u32,
        tsecr: u32,
    },
    /// Timestamps and one SACK block (a duplicate ACK).
    TsSack {
        tsval: u32,
        tsecr: u32,
        l: u32,
        r: u32,
    },
}

impl Opts {
    fn len(self) -> usize {
        match self {
            Opts::None => 0,
            Opts::Syn { .. } => 20,
            Opts::Ts { .. } => 12,
            Opts::TsSack { .. } => 24,
        }
    }
}

const ETH: usize = 14;
const IP: usize = 20;

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Ones'-complement sum of `data` as big-endian 16-bit words (odd length padded), unfolded.
fn sum16(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Two 32-bit halves: 2^16 ≡ 1 (mod 2^16 − 1), so folding later gives the 16-bit sum.
        acc += (v >> 32) + (v & 0xffff_ffff);
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Lays out the headers of `s` in `buf` for `payload` bytes and returns where the payload goes.
fn frame_start(buf: &mut Vec<u8>, s: &Seg, payload: usize) -> usize {
    let hlen = ETH + IP + 20 + s.opts.len();
    buf.clear();
    buf.resize(hlen + payload, 0);
    hlen
}

/// Writes the headers and checksums of `s` around the payload already in `buf`.
fn frame_finish(buf: &mut [u8], s: &Seg) {
    let tcp_len = buf.len() - ETH - IP;
    let (src, dst, sport, dport) = if s.from_client {
        (s.cip, SERVER_IP, s.cport, SERVER_PORT)
    } else {
        (SERVER_IP, s.cip, SERVER_PORT, s.cport)
    };
    let (dmac, smac) = if s.from_client {
        (SERVER_MAC, ROUTER_MAC)
    } else {
        (ROUTER_MAC, SERVER_MAC)
    };
    buf[0..6].copy_from_slice(&dmac);
    buf[6..12].copy_from_slice(&smac);
    put16(buf, 12, 0x0800);
    // IPv4.
    let ip = &mut buf[ETH..ETH + IP];
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip, 2, (IP + tcp_len) as u16);
    put16(ip, 4, s.ip_id);
    put16(ip, 6, 0x4000); // DF
    ip[8] = s.ttl;
    ip[9] = 6;
    put16(ip, 10, 0);
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = fold(sum16(ip, 0));
    put16(ip, 10, c);
    // TCP.
    let t = &mut buf[ETH + IP..];
    put16(t, 0, sport);
    put16(t, 2, dport);
    put32(t, 4, s.seq);
    put32(t, 8, s.ack);
    let hl = 20 + s.opts.len();
    t[12] = ((hl / 4) as u8) << 4;
    t[13] = s.flags;
    put16(t, 14, s.win);
    put16(t, 16, 0);
    put16(t, 18, 0);
    let o = &mut t[20..hl];
    match s.opts {
        Opts::None => {}
        Opts::Syn {
            tsval,
            tsecr,
            wscale,
        } => {
            o[0] = 2;
            o[1] = 4;
            put16(o, 2, 1460);
            o[4] = 4;
            o[5] = 2;
            o[6] = 8;
            o[7] = 10;
            put32(o, 8, tsval);
            put32(o, 12, tsecr);
            o[16] = 1;
            o[17] = 3;
            o[18] = 3;
            o[19] = wscale;
        }
        Opts::Ts { tsval, tsecr } => {
            o[0] = 1;
            o[1] = 1;
            o[2] = 8;
            o[3] = 10;
            put32(o, 4, tsval);
            put32(o, 8, tsecr);
        }
        Opts::TsSack { tsval, tsecr, l, r } => {
            o[0] = 1;
            o[1] = 1;
            o[2] = 8;
            o[3] = 10;
            put32(o, 4, tsval);
            put32(o, 8, tsecr);
            o[12] = 1;
            o[13] = 1;
            o[14] = 5;
            o[15] = 10;
            put32(o, 16, l);
            put32(o, 20, r);
        }
    }
    let mut acc = sum16(&src, 0);
    acc = sum16(&dst, acc);
    acc += 6 + tcp_len as u64;
    acc = sum16(t, acc);
    let c = fold(acc);
    put16(t, 16, c);
}

// ---------------------------------------------------------------------------------------------
// Message bodies, generated as they are sent.

/// A MIME message of an exact wire length (dot-stuffing and the final `.` line included):
/// headers, a text part (some of its lines start with a dot and are stuffed), a base64
/// attachment whose last line takes up the rest, the closing boundary and `.`.
#[derive(Default)]
struct BodyGen {
    rng: Rng,
    /// Wire bytes still to come.
    left: u64,
    line: Vec<u8>,
    pos: usize,
    phase: BodyPhase,
    text_left: i64,
    b64_full: u64,
    b64_last: usize,
    boundary: u64,
    /// Dot-stuffed lines so far (message bytes = wire bytes − 3 − stuffed).
    stuffed: u64,
    wire: u64,
    attachment: usize,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum BodyPhase {
    #[default]
    Text,
    AttachHead,
    Base64,
    Tail,
    Done,
}

/// `--b1_<16 hex>--\r\n.\r\n`
const TAIL_LEN: usize = 2 + 19 + 4 + 3;

impl BodyGen {
    /// Starts a message of about `size` bytes; the header block is built here (it is the first
    /// "line"). Returns the exact wire length.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        rng: Rng,
        size: u64,
        from: &str,
        to: &str,
        subject: &str,
        msgid: &str,
        date: &str,
        client: Ipv4Addr,
    ) -> u64 {
        self.rng = rng;
        self.boundary = self.rng.next_u64();
        self.attachment = self.rng.below(ATTACHMENTS.len() as u64) as usize;
        self.line.clear();
        self.pos = 0;
        self.stuffed = 0;
        let b = self.boundary;
        let _ = write!(
            self.line,
            "Received: from {client} ([{client}])\r\n\tby mx.example.net with ESMTP id {:012x}\r\n\tfor <{to}>; {date}\r\n\
From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {msgid}\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1_{b:016x}\"\r\n\r\n\
This is a multi-part message in MIME format.\r\n\r\n--b1_{b:016x}\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            self.rng.next_u64() >> 16
        );
        let head = self.line.len() as u64;
        // Room for the attachment header, the last base64 line and the tail.
        let wire = size.max(head + 700);
        let room = wire - head - 400;
        self.text_left = (room / 3).min(self.rng.range(800, 12_000)) as i64;
        self.phase = BodyPhase::Text;
        self.left = wire;
        self.wire = wire;
        wire
    }

    fn next_line(&mut self) {
        self.line.clear();
        self.pos = 0;
        match self.phase {
            BodyPhase::Text => {
                if self.text_left <= 0 {
                    self.phase = BodyPhase::AttachHead;
                    return self.next_line();
                }
                if self.rng.chance(0.12) {
                    self.line.extend_from_slice(b"\r\n");
                } else {
                    // Some lines start with a dot (a signature rule, an ellipsis): stuffed.
                    if self.rng.chance(0.03) {
                        self.line.extend_from_slice(b"..");
                        self.stuffed += 1;
                    }
                    let n = self.rng.range(3, 12);
                    for i in 0..n {
                        if i > 0 {
                            self.line.push(b' ');
                        }
                        let w = WORDS[self.rng.below(WORDS.len() as u64) as usize];
                        self.line.extend_from_slice(w.as_bytes());
                    }
                    self.line.extend_from_slice(b".\r\n");
                }
                self.text_left -= self.line.len() as i64;
            }
            BodyPhase::AttachHead => {
                let (ct, name) = ATTACHMENTS[self.attachment];
                let b = self.boundary;
                let _ = write!(
                    self.line,
                    "\r\n--b1_{b:016x}\r\nContent-Type: {ct}; name=\"{name}\"\r\n\
Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
                );
                // What is left after this header and the tail is base64: full 78-byte lines and
                // one last line of 4 to 81 bytes, so the total is exact.
                let b64 = self
                    .left
                    .saturating_sub((self.line.len() + TAIL_LEN) as u64)
                    .max(4);
                self.b64_full = (b64 - 4) / 78;
                self.b64_last = (b64 - self.b64_full * 78) as usize;
                self.phase = BodyPhase::Base64;
            }
            BodyPhase::Base64 => {
                let n = if self.b64_full > 0 {
                    self.b64_full -= 1;
                    76
                } else {
                    self.phase = BodyPhase::Tail;
                    self.b64_last - 2
                };
                let mut bits = 0u64;
                for i in 0..n {
                    if i % 10 == 0 {
                        bits = self.rng.next_u64();
                    }
                    self.line.push(B64[(bits & 63) as usize]);
                    bits >>= 6;
                }
                self.line.extend_from_slice(b"\r\n");
            }
            BodyPhase::Tail => {
                let b = self.boundary;
                let _ = write!(self.line, "--b1_{b:016x}--\r\n.\r\n");
                self.phase = BodyPhase::Done;
            }
            BodyPhase::Done => {}
        }
    }

    /// Fills `out` with the next bytes (never more than are left).
    fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            if self.pos == self.line.len() {
                if self.phase == BodyPhase::Done {
                    break;
                }
                self.next_line();
                continue;
            }
            let n = (self.line.len() - self.pos).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.line[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
            // Kept exact as it goes: the attachment's length is computed from it.
            self.left = self.left.saturating_sub(n as u64);
        }
    }

    /// The message size as the appliance counts it (`ready N bytes`).
    fn message_bytes(&self) -> u64 {
        self.wire.saturating_sub(3 + self.stuffed)
    }
}

/// TLS 1.2 application-data records (AES-GCM: 24 bytes of overhead) carrying `plain` bytes.
#[derive(Default)]
struct TlsGen {
    rng: Rng,
    plain_left: u64,
    hdr: [u8; 5],
    hdr_pos: usize,
    body_left: usize,
}

const TLS_OVERHEAD: u64 = 24;

fn tls_wire_len(plain: u64) -> u64 {
    let full = plain / 16384;
    let rem = plain % 16384;
    full * (16384 + TLS_OVERHEAD + 5) + if rem > 0 { rem + TLS_OVERHEAD + 5 } else { 0 }
}

impl TlsGen {
    fn start(&mut self, rng: Rng, plain: u64) {
        self.rng = rng;
        self.plain_left = plain;
        self.hdr_pos = 5;
        self.body_left = 0;
    }

    fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            if self.hdr_pos < 5 {
                out[done] = self.hdr[self.hdr_pos];
                self.hdr_pos += 1;
                done += 1;
            } else if self.body_left > 0 {
                let n = self.body_left.min(out.len() - done);
                fill_random(&mut self.rng, &mut out[done..done + n]);
                self.body_left -= n;
                done += n;
            } else if self.plain_left > 0 {
                let p = self.plain_left.min(16384);
                self.plain_left -= p;
                let len = (p + TLS_OVERHEAD) as u16;
                self.hdr = [0x17, 3, 3, (len >> 8) as u8, len as u8];
                self.hdr_pos = 0;
                self.body_left = len as usize;
            } else {
                break;
            }
        }
    }
}

fn fill_random(rng: &mut Rng, out: &mut [u8]) {
    let mut chunks = out.chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let v = rng.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&v[..n]);
    }
}

/// Appends a TLS record of `kind` with `len` random body bytes.
fn tls_record(text: &mut Vec<u8>, rng: &mut Rng, kind: u8, len: usize) {
    text.extend_from_slice(&[kind, 3, 3, (len >> 8) as u8, len as u8]);
    let at = text.len();
    text.resize(at + len, 0);
    fill_random(rng, &mut text[at..]);
}

/// A self-signed certificate for esa1.example.com (P-256), sent in the clear in the TLS 1.2
/// handshake so that dissectors see a well-formed one.
const CERT_DER: &[u8] = b"\
\x30\x82\x01\xb0\x30\x82\x01\x55\xa0\x03\x02\x01\x02\x02\x14\x31\x24\xdc\x5e\xbf\x2b\x21\xd2\x5d\
\x62\x69\x81\x36\x0a\x8d\x54\x43\x7c\xff\x14\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02\x30\
\x2d\x31\x19\x30\x17\x06\x03\x55\x04\x03\x0c\x10\x65\x73\x61\x31\x2e\x65\x78\x61\x6d\x70\x6c\x65\
\x2e\x63\x6f\x6d\x31\x10\x30\x0e\x06\x03\x55\x04\x0a\x0c\x07\x45\x78\x61\x6d\x70\x6c\x65\x30\x1e\
\x17\x0d\x32\x36\x31\x31\x32\x33\x31\x39\x30\x31\x33\x31\x5a\x17\x0d\x33\x36\x31\x31\x32\x30\x31\
\x39\x30\x31\x33\x31\x5a\x30\x2d\x31\x19\x30\x17\x06\x03\x55\x04\x03\x0c\x10\x65\x73\x61\x31\x2e\
\x65\x78\x61\x6d\x70\x6c\x65\x2e\x63\x6f\x6d\x31\x10\x30\x0e\x06\x03\x55\x04\x0a\x0c\x07\x45\x78\
\x61\x6d\x70\x6c\x65\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce\
\x3d\x03\x01\x07\x03\x42\x00\x04\xd6\x9a\xf4\x6e\xeb\xe0\x96\x86\xbb\x5c\x2a\x0a\xe3\xe3\x4c\xd4\
\x74\x88\xc1\xc9\x6a\x65\xfd\xe7\x90\x02\xa8\x95\x1c\x92\x8d\x60\x4f\x20\xc8\x75\xed\xc5\x69\x2b\
\x15\x0d\x01\x11\x9b\xb2\x69\xf7\x98\x68\xde\xfb\x35\x81\x2e\xac\x01\xb8\x4e\x9c\x46\xb0\x3e\xf2\
\xa3\x53\x30\x51\x30\x1d\x06\x03\x55\x1d\x0e\x04\x16\x04\x14\xd4\x21\x57\xe2\xea\x6a\x6e\x7e\x55\
\x9d\xfe\xce\x78\xbc\x1c\x80\xed\x40\x41\x01\x30\x1f\x06\x03\x55\x1d\x23\x04\x18\x30\x16\x80\x14\
\xd4\x21\x57\xe2\xea\x6a\x6e\x7e\x55\x9d\xfe\xce\x78\xbc\x1c\x80\xed\x40\x41\x01\x30\x0f\x06\x03\
\x55\x1d\x13\x01\x01\xff\x04\x05\x30\x03\x01\x01\xff\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\
\x02\x03\x49\x00\x30\x46\x02\x21\x00\xd0\x95\x33\x15\x6b\x5c\x9c\x8d\x91\x68\x9e\x52\x97\x24\xea\
\xcc\x62\x83\xed\x10\x7e\x07\x81\x41\x1a\xb3\xc6\xe6\xb2\x6e\x25\x88\x02\x21\x00\xc0\xad\xbc\xe4\
\x84\xcf\x57\x95\xec\x5d\x95\x06\x78\x4d\x58\x22\xad\xef\x28\x09\xda\x40\xa1\x91\xcd\x32\xc0\x9d\
\x79\xfb\x0d\x3d";

/// Appends a handshake record (record version 3.`minor`) holding one message of `msg_type`
/// whose body `body` appends; the record and message lengths are filled in.
fn tls_handshake(text: &mut Vec<u8>, minor: u8, msg_type: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let rec = text.len();
    text.extend_from_slice(&[0x16, 3, minor, 0, 0, msg_type, 0, 0, 0]);
    body(text);
    let blen = text.len() - rec - 9;
    let rlen = blen + 4;
    text[rec + 3] = (rlen >> 8) as u8;
    text[rec + 4] = rlen as u8;
    text[rec + 6] = (blen >> 16) as u8;
    text[rec + 7] = (blen >> 8) as u8;
    text[rec + 8] = blen as u8;
}

fn random_bytes(text: &mut Vec<u8>, rng: &mut Rng, n: usize) {
    let at = text.len();
    text.resize(at + n, 0);
    fill_random(rng, &mut text[at..]);
}

/// The client's first flight: a ClientHello offering ECDHE-ECDSA/RSA AES-GCM.
fn client_hello(text: &mut Vec<u8>, rng: &mut Rng) {
    let pad = rng.range(60, 300) as usize;
    tls_handshake(text, 1, 1, |t| {
        t.extend_from_slice(&[3, 3]);
        random_bytes(t, rng, 32);
        t.push(32);
        random_bytes(t, rng, 32);
        t.extend_from_slice(&[0, 4, 0xc0, 0x2b, 0xc0, 0x2f, 1, 0]);
        let ext = 4 + pad;
        t.extend_from_slice(&[
            (ext >> 8) as u8,
            ext as u8,
            0,
            0x15,
            (pad >> 8) as u8,
            pad as u8,
        ]);
        t.resize(t.len() + pad, 0);
    });
}

/// ServerHello, Certificate, ServerKeyExchange (ECDHE, P-256, ECDSA), ServerHelloDone.
fn server_hello(text: &mut Vec<u8>, rng: &mut Rng) {
    tls_handshake(text, 3, 2, |t| {
        t.extend_from_slice(&[3, 3]);
        random_bytes(t, rng, 32);
        t.push(32);
        random_bytes(t, rng, 32);
        t.extend_from_slice(&[0xc0, 0x2b, 0, 0, 9, 0xff, 1, 0, 1, 0, 0, 0x17, 0, 0]);
    });
    tls_handshake(text, 3, 11, |t| {
        let l = CERT_DER.len();
        let all = l + 3;
        t.extend_from_slice(&[(all >> 16) as u8, (all >> 8) as u8, all as u8]);
        t.extend_from_slice(&[(l >> 16) as u8, (l >> 8) as u8, l as u8]);
        t.extend_from_slice(CERT_DER);
    });
    tls_handshake(text, 3, 12, |t| {
        t.extend_from_slice(&[3, 0, 0x17, 65, 4]);
        random_bytes(t, rng, 64);
        t.extend_from_slice(&[4, 3, 0, 71, 0x30, 0x45, 2, 0x20, 0x11]);
        random_bytes(t, rng, 31);
        t.extend_from_slice(&[2, 0x21, 0, 0x91]);
        random_bytes(t, rng, 31);
    });
    tls_handshake(text, 3, 14, |_| {});
}

/// ClientKeyExchange, ChangeCipherSpec and the (encrypted) Finished.
fn client_keys(text: &mut Vec<u8>, rng: &mut Rng) {
    tls_handshake(text, 3, 16, |t| {
        t.extend_from_slice(&[65, 4]);
        random_bytes(t, rng, 64);
    });
    text.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
    tls_record(text, rng, 0x16, 40);
}

/// The server's ChangeCipherSpec and (encrypted) Finished.
fn server_finished(text: &mut Vec<u8>, rng: &mut Rng) {
    text.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
    tls_record(text, rng, 0x16, 40);
}

// ---------------------------------------------------------------------------------------------
// Sessions.

/// A log entry to write when an action's packet goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Note {
    None,
    Connect,
    Hat,
    TlsSuccess,
    Mail,
    Rcpt {
        ok: bool,
    },
    Ready,
    SenderAbort,
    /// `ICID lost` (and the open message's abort), `ICID close`.
    Lost,
    /// The idle timeout: the open message's abort, `ICID close`.
    Timeout,
    Close,
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Syn,
    SynAck,
    /// Client data from the text arena.
    CText {
        off: u32,
        len: u16,
    },
    /// Server data from the text arena.
    SText {
        off: u32,
        len: u16,
    },
    /// The next `len` bytes of the client's stream (body or TLS records); `save` keeps a copy
    /// to be re-sent.
    CStream {
        len: u16,
        psh: bool,
        save: bool,
    },
    /// Two segments of the stream: the second goes out now, the first later.
    CPairSecond {
        len1: u16,
        len2: u16,
    },
    CSavedFirst,
    CResend,
    CAck,
    SAck,
    /// Duplicate ACK with one SACK block.
    SDupAck {
        l: u32,
        r: u32,
    },
    CFin,
    SFin,
    CRst,
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Action {
    t: i64,
    act: Act,
    note: Note,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Step {
    Banner,
    Ehlo,
    StartTls,
    TlsHello,
    TlsKeys,
    Mail,
    Rcpt,
    AfterRcpt,
    Data,
    Body,
    Quit,
    #[default]
    Finished,
}

#[derive(Default)]
struct Sess {
    outcome: Option<Outcome>,
    rng: Rng,
    client: usize,
    cip: [u8; 4],
    cport: u16,
    start: i64,
    clock: i64,
    icid: Option<u64>,
    mids: Vec<u64>,
    open_mid: Option<u64>,
    // TCP.
    c_isn: u32,
    s_isn: u32,
    c_nxt: u32,
    s_nxt: u32,
    /// What the server has received in order (its ACK number).
    c_rcv: u32,
    /// End of a segment that arrived ahead of the one before it.
    ooo_end: Option<u32>,
    /// The last acknowledgement number the server sent.
    s_acked: u32,
    c_ipid: u16,
    s_ipid: u16,
    c_ttl: u8,
    c_win: u16,
    s_win: u16,
    c_wscale: u8,
    c_ts0: u32,
    s_ts0: u32,
    c_tsval: u32,
    s_tsval: u32,
    rtt: i64,
    /// Client sending rate, bytes per microsecond.
    rate: f64,
    segs_unacked: u8,
    // Plan.
    queue: Vec<Action>,
    text: Vec<u8>,
    saved: Vec<u8>,
    saved_seq: u32,
    saved_len1: u16,
    saved_busy: bool,
    step: Step,
    msgs_full: u32,
    msgs_done: u32,
    rcpts: u32,
    rcpt_i: u32,
    rid: u32,
    tls: bool,
    body: BodyGen,
    tlsgen: TlsGen,
    /// Client stream bytes still to plan.
    stream_left: u64,
    /// Segments to send before the connection is cut (the during-data aborts).
    cut_after: Option<u64>,
    segs_planned: u64,
    from: String,
    to: String,
    subject: &'static str,
    msgid: String,
    ready_bytes: u64,
    /// The sizes of the session's messages, drawn when it starts (for the size budget).
    sizes: Vec<u64>,
    text_ehlo_after_tls: bool,
    cmd_buf: Vec<u8>,
    reply_buf: Vec<u8>,
    body_at: i64,
    est_bytes: u64,
    bytes: u64,
    opened: bool,
}

/// Everything but the sessions: counters, outputs, the packet buffer.
struct World<'a, P: PacketSink, L: Write, T: Write> {
    o: CaptureGenOptions,
    rng: Rng,
    pcap: &'a mut P,
    log: &'a mut L,
    truth: &'a mut T,
    buf: Vec<u8>,
    stats: CaptureGenStats,
    last_us: i64,
    next_icid: u64,
    next_mid: u64,
    next_dcid: u64,
    dcid_left: u32,
    next_port: Vec<u16>,
    open_ports: HashSet<(u16, u16)>,
    open: u64,
    log_sec: i64,
    log_prefix: String,
    log_buf: Vec<u8>,
    truth_first: bool,
    /// Bytes the started sessions will have written (estimates for the open ones).
    committed: u64,
    client_cdf: Vec<u64>,
}

impl<P: PacketSink, L: Write, T: Write> World<'_, P, L, T> {
    fn write_frame(&mut self, t: i64, sess_bytes: &mut u64) -> io::Result<()> {
        // Timestamps never go back: a session's action is never planned before the present.
        let t = t.max(self.last_us);
        self.last_us = t;
        self.pcap.packet(t, &self.buf)?;
        let n = 16 + self.buf.len() as u64;
        self.stats.packets += 1;
        self.stats.capture_bytes += n;
        *sess_bytes += n;
        if self.stats.first_us == 0 {
            self.stats.first_us = t;
        }
        self.stats.last_us = t;
        Ok(())
    }

    fn log_line(&mut self, t_us: i64, args: fmt::Arguments<'_>) -> io::Result<()> {
        let sec = t_us.div_euclid(US) + self.o.clock_offset;
        if sec != self.log_sec {
            self.log_sec = sec;
            self.log_prefix = ctime(sec);
        }
        let line = &mut self.log_buf;
        line.clear();
        line.extend_from_slice(self.log_prefix.as_bytes());
        line.extend_from_slice(b" Info: ");
        line.write_fmt(args)?;
        line.push(b'\n');
        self.log.write_all(line)?;
        self.stats.log_bytes += line.len() as u64;
        self.stats.log_lines += 1;
        Ok(())
    }

    fn pick_client(&mut self) -> usize {
        // A few busy senders and a long tail.
        let total = *self.client_cdf.last().unwrap_or(&1);
        let x = self.rng.below(total);
        self.client_cdf
            .partition_point(|&c| c <= x)
            .min(CLIENTS - 1)
    }
}

/// `Www Mmm D HH:MM:SS YYYY` of seconds since the epoch (read as the appliance's local time).
fn ctime(sec: i64) -> String {
    match chrono::DateTime::from_timestamp(sec, 0) {
        Some(t) => t.format("%a %b %e %H:%M:%S %Y").to_string(),
        None => "Thu Jan  1 00:00:00 1970".to_string(),
    }
}

fn rfc2822(us: i64) -> String {
    match chrono::DateTime::from_timestamp(us.div_euclid(US), 0) {
        Some(t) => t.format("%a, %d %b %Y %H:%M:%S +0000").to_string(),
        None => "Thu, 01 Jan 1970 00:00:00 +0000".to_string(),
    }
}

fn rfc3339(us: i64) -> String {
    match chrono::DateTime::from_timestamp(us.div_euclid(US), (us.rem_euclid(US) * 1000) as u32) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => String::new(),
    }
}

impl Sess {
    fn push(&mut self, t: i64, act: Act, note: Note) {
        let a = Action { t, act, note };
        // Kept sorted by time; equal times keep their planning order.
        let at = self.queue.partition_point(|x| x.t <= t);
        self.queue.insert(at, a);
    }

    fn c_ts(&self, t: i64) -> u32 {
        self.c_ts0.wrapping_add(((t - self.start) / 1000) as u32)
    }

    fn s_ts(&self, t: i64) -> u32 {
        self.s_ts0.wrapping_add(((t - self.start) / 1000) as u32)
    }

    fn seg(&mut self, t: i64, from_client: bool, seq: u32, flags: u8, opts: Option<Opts>) -> Seg {
        let opts = match opts {
            Some(o) => o,
            None if from_client => {
                self.c_tsval = self.c_ts(t);
                Opts::Ts {
                    tsval: self.c_tsval,
                    tsecr: self.s_tsval,
                }
            }
            None => {
                self.s_tsval = self.s_ts(t);
                Opts::Ts {
                    tsval: self.s_tsval,
                    tsecr: self.c_tsval,
                }
            }
        };
        if from_client {
            self.c_ipid = self.c_ipid.wrapping_add(1);
            Seg {
                from_client,
                cip: self.cip,
                cport: self.cport,
                seq,
                ack: if flags & ACK != 0 { self.s_nxt } else { 0 },
                flags,
                win: self.c_win,
                ttl: self.c_ttl,
                ip_id: self.c_ipid,
                opts,
            }
        } else {
            self.s_ipid = self.s_ipid.wrapping_add(1);
            self.s_acked = self.c_rcv;
            Seg {
                from_client,
                cip: self.cip,
                cport: self.cport,
                seq,
                ack: self.c_rcv,
                flags,
                win: self.s_win,
                ttl: 64,
                ip_id: self.s_ipid,
                opts,
            }
        }
    }

    /// The client's delay before its next command after hearing from the server: a round
    /// trip and some thinking.
    fn think(&mut self) -> i64 {
        let t = if self.rng.chance(0.05) {
            self.rng.range(50_000, 1_500_000)
        } else {
            self.rng.range(50, 3_000)
        };
        self.rtt + t as i64
    }

    fn add_text(&mut self, s: &[u8]) -> (u32, usize) {
        let off = self.text.len() as u32;
        if self.tls {
            // Encrypted: a record of the same plaintext length.
            tls_record(
                &mut self.text,
                &mut self.rng,
                0x17,
                s.len() + TLS_OVERHEAD as usize,
            );
        } else {
            self.text.extend_from_slice(s);
        }
        (off, self.text.len() - off as usize)
    }

    /// Client data `s` at `t` (one segment: commands are short).
    fn client_says(&mut self, t: i64, s: &[u8], note: Note) {
        let (off, len) = self.add_text(s);
        self.push(
            t,
            Act::CText {
                off,
                len: len as u16,
            },
            note,
        );
    }

    /// Server data `s` at `t`, cut into segments.
    fn server_says(&mut self, t: i64, s: &[u8], note: Note) -> i64 {
        let (off, len) = self.add_text(s);
        self.server_segments(t, off, len, note)
    }

    fn server_segments(&mut self, mut t: i64, off: u32, len: usize, note: Note) -> i64 {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MSS);
            let last = done + n == len;
            self.push(
                t,
                Act::SText {
                    off: off + done as u32,
                    len: n as u16,
                },
                if last { note } else { Note::None },
            );
            done += n;
            if !last {
                t += 12;
            }
        }
        t
    }

    /// A command and its reply: returns the reply's time.
    fn exchange(&mut self, cmd: &[u8], proc_us: i64, reply: &[u8], note: Note) -> i64 {
        let now = self.clock;
        let gap = self.think();
        if gap > self.rtt + DELACK {
            self.push(now + self.rtt + DELACK, Act::CAck, Note::None);
        }
        let t1 = now + gap;
        self.client_says(t1, cmd, Note::None);
        if proc_us > DELACK {
            self.push(t1 + DELACK, Act::SAck, Note::None);
        }
        self.server_says(t1 + proc_us.max(30), reply, note)
    }

    fn proc_short(&mut self) -> i64 {
        self.rng.range(80, 4_000) as i64
    }

    /// The orderly end after QUIT: 221, the appliance's FIN, the client's FIN, the last ACK.
    fn quit(&mut self, note_quit: Note) {
        let p = self.proc_short();
        let t = self.exchange_fmt(
            format_args!("QUIT\r\n"),
            p,
            format_args!("221 {HOSTNAME} closing connection\r\n"),
            note_quit,
        );
        self.server_close(t + 25);
    }

    /// The appliance closes (FIN, `ICID close`); the client acknowledges and closes too.
    fn server_close(&mut self, t: i64) {
        let d = self.rng.range(20, 400) as i64;
        if self.tls {
            // close_notify alerts both ways, the appliance's first (a graceful TLS close).
            let off = self.text.len() as u32;
            tls_record(&mut self.text, &mut self.rng, 0x15, 26);
            self.push(t - 15, Act::SText { off, len: 31 }, Note::None);
            let off = self.text.len() as u32;
            tls_record(&mut self.text, &mut self.rng, 0x15, 26);
            self.push(
                t + self.rtt + d - 10,
                Act::CText { off, len: 31 },
                Note::None,
            );
        }
        self.push(t, Act::SFin, Note::Close);
        self.push(t + self.rtt, Act::CAck, Note::None);
        self.push(t + self.rtt + d, Act::CFin, Note::None);
        self.push(t + self.rtt + d + 40, Act::SAck, Note::None);
        self.push(t + self.rtt + d + 41, Act::Done, Note::None);
        self.step = Step::Finished;
    }

    /// The client ends without QUIT: a FIN (the appliance answers and closes) or an RST.
    fn client_cut(&mut self, t: i64, rst: bool) {
        if rst {
            self.push(t, Act::CRst, Note::Lost);
            self.push(t + 1, Act::Done, Note::None);
        } else {
            self.push(t, Act::CFin, Note::Lost);
            self.push(t + 45, Act::SAck, Note::None);
            let d = self.rng.range(200, 3_000) as i64;
            self.push(t + d, Act::SFin, Note::None);
            self.push(t + d + self.rtt, Act::CAck, Note::None);
            self.push(t + d + self.rtt + 1, Act::Done, Note::None);
        }
        self.step = Step::Finished;
    }

    /// A new envelope address into `self.from` or (`local`) `self.to`.
    fn new_addr(&mut self, local: bool) {
        let u = *self.rng.pick(&USERS);
        let n = self.rng.below(100);
        let (d, out) = if local {
            (*self.rng.pick(&LOCAL_DOMAINS), &mut self.to)
        } else {
            (*self.rng.pick(&DOMAINS), &mut self.from)
        };
        out.clear();
        let _ = fmt::Write::write_fmt(out, format_args!("{u}{n}@{d}"));
    }

    /// [`Sess::exchange`] with formatted texts, built in buffers the session keeps.
    fn exchange_fmt(
        &mut self,
        cmd: fmt::Arguments<'_>,
        proc_us: i64,
        reply: fmt::Arguments<'_>,
        note: Note,
    ) -> i64 {
        let mut c = std::mem::take(&mut self.cmd_buf);
        let mut r = std::mem::take(&mut self.reply_buf);
        c.clear();
        r.clear();
        let _ = c.write_fmt(cmd);
        let _ = r.write_fmt(reply);
        let t = self.exchange(&c, proc_us, &r, note);
        self.cmd_buf = c;
        self.reply_buf = r;
        t
    }

    /// Whether the message being sent now is the one the outcome aborts.
    /// A Message-ID and a subject for the next message.
    fn new_message_id(&mut self) {
        self.msgid.clear();
        let id = self.rng.next_u64();
        let _ = fmt::Write::write_fmt(
            &mut self.msgid,
            format_args!("<{id:016x}@{}>", DOMAINS[self.client % DOMAINS.len()]),
        );
        self.subject = *self.rng.pick(&SUBJECTS);
    }

    fn aborting(&self) -> bool {
        self.msgs_done >= self.msgs_full
    }

    /// Plans the next exchange; called when every planned packet has gone out.
    fn plan_next(&mut self, idle_timeout_us: i64) {
        self.text.clear();
        let Some(outcome) = self.outcome else {
            self.push(self.clock, Act::Done, Note::None);
            return;
        };
        let now = self.clock;
        match self.step {
            Step::Banner => {
                let delay = if self.rng.chance(0.3) {
                    self.rng.range(200_000, 4_000_000)
                } else {
                    self.rng.range(300, 20_000)
                } as i64;
                let t = now + delay;
                if outcome == Outcome::HatReject {
                    self.server_says(t, REJECT_TEXT.as_bytes(), Note::Hat);
                    self.server_close(t + 30);
                } else {
                    self.server_says(t, BANNER.as_bytes(), Note::Hat);
                    self.step = Step::Ehlo;
                }
            }
            Step::Ehlo => {
                let p = self.proc_short();
                let client = self.client;
                self.exchange_fmt(
                    format_args!("EHLO mail{client}.example.net\r\n"),
                    p,
                    format_args!("{EHLO_REPLY}"),
                    Note::None,
                );
                self.step = match outcome {
                    Outcome::NoMessage => Step::Quit,
                    Outcome::LostAfterEhlo => {
                        let t = self.clock_after_queue() + self.think();
                        self.client_cut(t, false);
                        return;
                    }
                    o if o.tls() => Step::StartTls,
                    _ => Step::Mail,
                };
            }
            Step::StartTls => {
                let p = self.proc_short();
                self.exchange(
                    b"STARTTLS\r\n",
                    p,
                    b"220 2.0.0 Ready to start TLS\r\n",
                    Note::None,
                );
                self.step = Step::TlsHello;
            }
            Step::TlsHello => {
                // ClientHello, then the server's Hello, Certificate, ServerKeyExchange, Done.
                let t1 = now + self.think();
                let off = self.text.len() as u32;
                client_hello(&mut self.text, &mut self.rng);
                let len = self.text.len() - off as usize;
                self.push(
                    t1,
                    Act::CText {
                        off,
                        len: len as u16,
                    },
                    Note::None,
                );
                let off = self.text.len() as u32;
                server_hello(&mut self.text, &mut self.rng);
                let len = self.text.len() - off as usize;
                let p = self.rng.range(500, 6_000) as i64;
                self.server_segments(t1 + p, off, len, Note::None);
                self.step = Step::TlsKeys;
            }
            Step::TlsKeys => {
                // ClientKeyExchange, ChangeCipherSpec, Finished; the server's CCS and Finished.
                let t1 = now + self.think();
                let off = self.text.len() as u32;
                client_keys(&mut self.text, &mut self.rng);
                let len = self.text.len() - off as usize;
                self.push(
                    t1,
                    Act::CText {
                        off,
                        len: len as u16,
                    },
                    Note::None,
                );
                let off = self.text.len() as u32;
                server_finished(&mut self.text, &mut self.rng);
                let len = self.text.len() - off as usize;
                let p = self.rng.range(300, 3_000) as i64;
                self.server_segments(t1 + p, off, len, Note::TlsSuccess);
                self.tls = true;
                // Encrypted EHLO again.
                self.step = Step::Mail;
                self.text_ehlo_after_tls = true;
            }
            Step::Mail => {
                if self.text_ehlo_after_tls {
                    self.text_ehlo_after_tls = false;
                    let p = self.proc_short();
                    let client = self.client;
                    self.exchange_fmt(
                        format_args!("EHLO mail{client}.example.net\r\n"),
                        p,
                        format_args!("{EHLO_REPLY_TLS}"),
                        Note::None,
                    );
                    return;
                }
                self.new_addr(false);
                let size = self
                    .sizes
                    .get(self.msgs_done as usize)
                    .copied()
                    .unwrap_or(2_000);
                self.ready_bytes = size;
                let p = self.proc_short();
                let from = std::mem::take(&mut self.from);
                self.exchange_fmt(
                    format_args!("MAIL FROM:<{from}> SIZE={size}\r\n"),
                    p,
                    format_args!("250 sender <{from}> ok\r\n"),
                    Note::Mail,
                );
                self.from = from;
                self.rcpts = if self.rng.chance(0.8) {
                    1
                } else {
                    self.rng.range(2, 5) as u32
                };
                self.rcpt_i = 0;
                self.rid = 0;
                self.step = Step::Rcpt;
            }
            Step::Rcpt => {
                self.new_addr(true);
                let last = self.rcpt_i + 1 == self.rcpts;
                let to = std::mem::take(&mut self.to);
                let p = self.rng.range(200, 30_000) as i64;
                let cmd = format_args!("RCPT TO:<{to}>\r\n");
                // Some recipients are refused (never the last, so a message always has one).
                if outcome == Outcome::RejectAtRcpt {
                    self.exchange_fmt(
                        cmd,
                        p,
                        format_args!("{REJECT_TEXT}"),
                        Note::Rcpt { ok: false },
                    );
                } else if !last && self.rng.chance(0.05) {
                    self.exchange_fmt(
                        cmd,
                        p,
                        format_args!("550 #5.1.0 Address rejected {to}\r\n"),
                        Note::Rcpt { ok: false },
                    );
                } else {
                    self.exchange_fmt(
                        cmd,
                        p,
                        format_args!("250 recipient <{to}> ok\r\n"),
                        Note::Rcpt { ok: true },
                    );
                }
                self.to = to;
                self.rcpt_i += 1;
                if last {
                    self.step = Step::AfterRcpt;
                }
            }
            Step::AfterRcpt => {
                if !self.aborting() {
                    self.step = Step::Data;
                    return self.plan_next(idle_timeout_us);
                }
                match outcome {
                    Outcome::QuitBeforeData | Outcome::RejectAtRcpt => self.quit(Note::SenderAbort),
                    Outcome::RsetQuit => {
                        let p = self.proc_short();
                        self.exchange(b"RSET\r\n", p, b"250 reset\r\n", Note::SenderAbort);
                        self.step = Step::Quit;
                    }
                    Outcome::RstBeforeData | Outcome::FinNoQuit => {
                        let t = now + self.rtt + self.rng.range(1_000, 3_000_000) as i64;
                        self.client_cut(t, outcome == Outcome::RstBeforeData);
                    }
                    Outcome::IdleTimeout => {
                        let t = now + idle_timeout_us + self.rng.range(0, 900_000) as i64;
                        self.server_says(
                            t,
                            b"421 Timed out waiting for successful message injection, disconnecting.\r\n",
                            Note::Timeout,
                        );
                        self.server_close_quiet(t + 30);
                    }
                    _ => {
                        self.step = Step::Data;
                        self.plan_next(idle_timeout_us)
                    }
                }
            }
            Step::Data => {
                let p = self.proc_short();
                self.exchange(b"DATA\r\n", p, b"354 go ahead\r\n", Note::None);
                self.start_body();
                self.step = Step::Body;
            }
            Step::Body => self.plan_body(outcome),
            Step::Quit => self.quit(Note::None),
            Step::Finished => self.push(now, Act::Done, Note::None),
        }
    }

    /// The idle timeout's close: the appliance's FIN after its 421 (no `ICID close` here: the
    /// 421's note writes it).
    fn server_close_quiet(&mut self, t: i64) {
        self.push(t, Act::SFin, Note::None);
        self.push(t + self.rtt, Act::CAck, Note::None);
        let d = self.rng.range(20, 400) as i64;
        self.push(t + self.rtt + d, Act::CFin, Note::None);
        self.push(t + self.rtt + d + 40, Act::SAck, Note::None);
        self.push(t + self.rtt + d + 41, Act::Done, Note::None);
        self.step = Step::Finished;
    }

    fn clock_after_queue(&self) -> i64 {
        self.queue.last().map_or(self.clock, |a| a.t)
    }

    /// A message size: log-normal around `median`, from 2 KB to 9 MB (under the listener's
    /// 10 MB limit).
    fn message_size(&mut self, median: u64) -> u64 {
        let x = ((median.max(1) as f64).ln() + 1.6 * self.rng.normal()).exp();
        x.clamp(2_000.0, 9_000_000.0) as u64
    }

    fn start_body(&mut self) {
        let size = self.ready_bytes;
        let rng = Rng::new(self.rng.next_u64());
        if self.tls {
            self.tlsgen.start(rng, size + 3);
            self.stream_left = tls_wire_len(size + 3);
        } else {
            self.new_message_id();
            let date = rfc2822(self.clock);
            let client = Ipv4Addr::from(self.cip);
            self.stream_left = self.body.start(
                rng,
                size,
                &self.from,
                &self.to,
                self.subject,
                &self.msgid,
                &date,
                client,
            );
        }
        let segs = self.stream_left.div_ceil(MSS as u64);
        self.cut_after = if self.aborting()
            && matches!(
                self.outcome,
                Some(Outcome::RstDuringData | Outcome::FinDuringData | Outcome::TlsRst)
            ) {
            Some(
                (segs * self.rng.range(10, 90) / 100)
                    .max(1)
                    .min(segs.saturating_sub(1).max(1)),
            )
        } else {
            None
        };
        self.segs_planned = 0;
        self.segs_unacked = 0;
        // The client starts sending a round trip after the 354.
        self.body_at = self.clock_after_queue() + self.think();
    }

    /// Plans the next batch of body segments (and what follows the last one).
    fn plan_body(&mut self, outcome: Outcome) {
        let interval = (MSS as f64 / self.rate) as i64;
        let limit = self
            .cut_after
            .unwrap_or(u64::MAX)
            .saturating_sub(self.segs_planned);
        let mut t = self.body_at.max(self.clock);
        let mut n = 0;
        let mut lens = [0u16; 32];
        while n < 32 && (n as u64) < limit && self.stream_left > 0 {
            let len = (self.stream_left as usize).min(MSS);
            self.stream_left -= len as u64;
            lens[n] = len as u16;
            n += 1;
        }
        let finished = self.stream_left == 0;
        let mut times = [0i64; 32];
        for slot in times.iter_mut().take(n) {
            *slot = t;
            let j = self.rng.range(80, 120) as i64;
            t += (interval * j / 100).max(8);
        }
        let mut i = 0;
        while i < n {
            let psh = (finished && i + 1 == n) || (self.segs_planned + i as u64) % 16 == 15;
            if !self.saved_busy && i + 1 < n && !(finished && i + 2 == n) && self.rng.chance(0.01) {
                // Two adjacent segments swapped on the way.
                self.saved_busy = true;
                self.push(
                    times[i],
                    Act::CPairSecond {
                        len1: lens[i],
                        len2: lens[i + 1],
                    },
                    Note::None,
                );
                self.push(times[i + 1], Act::CSavedFirst, Note::None);
                i += 2;
                continue;
            }
            let save = !self.saved_busy && i + 3 < n && self.rng.chance(0.015);
            if save {
                // Sent again later (its ACK was lost on the way back).
                self.saved_busy = true;
                self.push(times[i + 2] + 7, Act::CResend, Note::None);
            }
            self.push(
                times[i],
                Act::CStream {
                    len: lens[i],
                    psh,
                    save,
                },
                Note::None,
            );
            i += 1;
        }
        self.segs_planned += n as u64;
        self.body_at = t;
        let last = times[n.saturating_sub(1)];
        if finished {
            // End of data: the 250 once the message is queued.
            let p = self.rng.range(5_000, 900_000) as i64;
            if p > DELACK {
                self.push(last + DELACK, Act::SAck, Note::None);
            }
            let mid = self.open_mid.unwrap_or(0);
            let mut r = std::mem::take(&mut self.reply_buf);
            r.clear();
            let _ = write!(r, "250 ok:  Message {mid} accepted\r\n");
            self.server_says(last + p, &r, Note::Ready);
            self.reply_buf = r;
            self.msgs_done += 1;
            // More full messages, or the one the outcome aborts, or QUIT.
            self.step = if self.msgs_done < self.msgs_full
                || !matches!(outcome, Outcome::Delivered | Outcome::TlsDelivered)
            {
                Step::Mail
            } else {
                Step::Quit
            };
        } else if self.cut_after.is_some_and(|c| self.segs_planned >= c) {
            let pause = self.rng.range(50_000, 2_000_000) as i64;
            let rst = matches!(outcome, Outcome::RstDuringData | Outcome::TlsRst);
            self.client_cut(last + pause, rst);
        }
    }
}

/// Where a segment's payload comes from.
#[derive(Clone, Copy)]
enum Src {
    None,
    Text(u32, u16),
    Stream(u16),
    Saved(u16, u16),
}

impl Sess {
    fn emit<P: PacketSink, L: Write, T: Write>(
        &mut self,
        w: &mut World<'_, P, L, T>,
        t: i64,
        s: &Seg,
        src: Src,
    ) -> io::Result<()> {
        let len = match src {
            Src::None => 0,
            Src::Text(_, n) | Src::Stream(n) => n as usize,
            Src::Saved(a, b) => (b - a) as usize,
        };
        let at = frame_start(&mut w.buf, s, len);
        let dst = &mut w.buf[at..];
        match src {
            Src::None => {}
            Src::Text(off, n) => {
                dst.copy_from_slice(&self.text[off as usize..off as usize + n as usize])
            }
            Src::Stream(_) => {
                if self.tls {
                    self.tlsgen.fill(dst)
                } else {
                    self.body.fill(dst)
                }
            }
            Src::Saved(a, b) => dst.copy_from_slice(&self.saved[a as usize..b as usize]),
        }
        frame_finish(&mut w.buf, s);
        w.write_frame(t, &mut self.bytes)
    }

    /// The server acknowledges every second data segment.
    fn count_segment(&mut self, t: i64) {
        self.segs_unacked += 1;
        if self.segs_unacked >= 2 {
            self.segs_unacked = 0;
            let d = self.rng.range(15, 60) as i64;
            self.push(t + d, Act::SAck, Note::None);
        }
    }

    /// Sends the action's packet and writes its log lines; true when the session is over.
    fn execute<P: PacketSink, L: Write, T: Write>(
        &mut self,
        a: Action,
        w: &mut World<'_, P, L, T>,
    ) -> io::Result<bool> {
        let t = a.t.max(self.clock);
        self.clock = t;
        match a.act {
            Act::Syn => {
                self.c_tsval = self.c_ts(t);
                let opts = Opts::Syn {
                    tsval: self.c_tsval,
                    tsecr: 0,
                    wscale: self.c_wscale,
                };
                let mut s = self.seg(t, true, self.c_isn, SYN, Some(opts));
                s.win = if self.c_wscale == 7 { 64240 } else { 65535 };
                self.emit(w, t, &s, Src::None)?;
                self.c_nxt = self.c_isn.wrapping_add(1);
                if !self.opened {
                    self.opened = true;
                    w.open += 1;
                    w.stats.max_open = w.stats.max_open.max(w.open);
                }
            }
            Act::SynAck => {
                self.c_rcv = self.c_isn.wrapping_add(1);
                self.s_tsval = self.s_ts(t);
                let opts = Opts::Syn {
                    tsval: self.s_tsval,
                    tsecr: self.c_tsval,
                    wscale: 7,
                };
                let mut s = self.seg(t, false, self.s_isn, SYN | ACK, Some(opts));
                s.win = 65160;
                self.emit(w, t, &s, Src::None)?;
                self.s_nxt = self.s_isn.wrapping_add(1);
            }
            Act::CText { off, len } => {
                let s = self.seg(t, true, self.c_nxt, PSH | ACK, None);
                self.emit(w, t, &s, Src::Text(off, len))?;
                self.c_nxt = self.c_nxt.wrapping_add(u32::from(len));
                self.c_rcv = self.c_nxt;
            }
            Act::SText { off, len } => {
                let s = self.seg(t, false, self.s_nxt, PSH | ACK, None);
                self.emit(w, t, &s, Src::Text(off, len))?;
                self.s_nxt = self.s_nxt.wrapping_add(u32::from(len));
            }
            Act::CStream { len, psh, save } => {
                let seq = self.c_nxt;
                let flags = if psh { PSH | ACK } else { ACK };
                let s = self.seg(t, true, seq, flags, None);
                self.emit(w, t, &s, Src::Stream(len))?;
                if save {
                    let at = w.buf.len() - len as usize;
                    self.saved.clear();
                    self.saved.extend_from_slice(&w.buf[at..]);
                    self.saved_seq = seq;
                    self.saved_len1 = len;
                }
                self.c_nxt = seq.wrapping_add(u32::from(len));
                if self.ooo_end.is_none() {
                    self.c_rcv = self.c_nxt;
                }
                self.count_segment(t);
            }
            Act::CPairSecond { len1, len2 } => {
                let total = (len1 + len2) as usize;
                self.saved.clear();
                self.saved.resize(total, 0);
                if self.tls {
                    self.tlsgen.fill(&mut self.saved)
                } else {
                    self.body.fill(&mut self.saved)
                }
                self.saved_seq = self.c_nxt;
                self.saved_len1 = len1;
                let seq2 = self.c_nxt.wrapping_add(u32::from(len1));
                let s = self.seg(t, true, seq2, ACK, None);
                self.emit(w, t, &s, Src::Saved(len1, len1 + len2))?;
                self.c_nxt = seq2.wrapping_add(u32::from(len2));
                self.ooo_end = Some(self.c_nxt);
                let (l, r) = (seq2, self.c_nxt);
                self.push(t + 30, Act::SDupAck { l, r }, Note::None);
            }
            Act::CSavedFirst => {
                let s = self.seg(t, true, self.saved_seq, ACK, None);
                self.emit(w, t, &s, Src::Saved(0, self.saved_len1))?;
                if let Some(e) = self.ooo_end.take() {
                    self.c_rcv = e;
                }
                self.saved_busy = false;
                self.segs_unacked = 0;
                self.push(t + 25, Act::SAck, Note::None);
            }
            Act::CResend => {
                let s = self.seg(t, true, self.saved_seq, ACK, None);
                self.emit(w, t, &s, Src::Saved(0, self.saved_len1))?;
                self.saved_busy = false;
                let l = self.saved_seq;
                let r = l.wrapping_add(u32::from(self.saved_len1));
                self.push(t + 30, Act::SDupAck { l, r }, Note::None);
            }
            Act::CAck => {
                let s = self.seg(t, true, self.c_nxt, ACK, None);
                self.emit(w, t, &s, Src::None)?;
            }
            // A planned ACK with nothing new to acknowledge is not sent (the timer found the
            // data already acknowledged by a reply or an earlier ACK).
            Act::SAck if self.c_rcv == self.s_acked => {}
            Act::SAck => {
                let s = self.seg(t, false, self.s_nxt, ACK, None);
                self.emit(w, t, &s, Src::None)?;
            }
            Act::SDupAck { l, r } => {
                self.s_tsval = self.s_ts(t);
                let opts = Opts::TsSack {
                    tsval: self.s_tsval,
                    tsecr: self.c_tsval,
                    l,
                    r,
                };
                let s = self.seg(t, false, self.s_nxt, ACK, Some(opts));
                self.emit(w, t, &s, Src::None)?;
            }
            Act::CFin => {
                let s = self.seg(t, true, self.c_nxt, FIN | ACK, None);
                self.emit(w, t, &s, Src::None)?;
                self.c_nxt = self.c_nxt.wrapping_add(1);
                if self.ooo_end.is_none() {
                    self.c_rcv = self.c_nxt;
                }
            }
            Act::SFin => {
                let s = self.seg(t, false, self.s_nxt, FIN | ACK, None);
                self.emit(w, t, &s, Src::None)?;
                self.s_nxt = self.s_nxt.wrapping_add(1);
            }
            Act::CRst => {
                let mut s = self.seg(t, true, self.c_nxt, RST | ACK, Some(Opts::None));
                s.win = 0;
                self.emit(w, t, &s, Src::None)?;
            }
            Act::Done => return Ok(true),
        }
        if a.note != Note::None {
            self.note(a.note, t, w)?;
        }
        Ok(false)
    }

    /// The appliance's log lines for what just happened on the wire.
    fn note<P: PacketSink, L: Write, T: Write>(
        &mut self,
        note: Note,
        t: i64,
        w: &mut World<'_, P, L, T>,
    ) -> io::Result<()> {
        let ip = Ipv4Addr::from(self.cip);
        let delayed = self.outcome == Some(Outcome::RejectAtRcpt);
        if note == Note::Connect {
            let icid = w.next_icid;
            w.next_icid += 1;
            self.icid = Some(icid);
            let rdns = if self.client % 10 < 7 {
                format!(
                    "mail{}.{}",
                    self.client,
                    DOMAINS[self.client % DOMAINS.len()]
                )
            } else {
                "unknown".to_string()
            };
            let verified = if rdns == "unknown" { "no" } else { "yes" };
            return w.log_line(
                t,
                format_args!(
                    "New SMTP ICID {icid} interface Data 1 (192.0.2.25) address {ip} reverse dns host {rdns} verified {verified}"
                ),
            );
        }
        let Some(icid) = self.icid else {
            return Ok(());
        };
        match note {
            Note::None | Note::Connect => {}
            Note::Hat => {
                if matches!(
                    self.outcome,
                    Some(Outcome::HatReject | Outcome::RejectAtRcpt)
                ) {
                    let sbrs = self.rng.range(30, 100) as f64 / 10.0;
                    w.log_line(
                        t,
                        format_args!(
                            "ICID {icid} REJECT SG BLACKLIST match sbrs[-10.0:-3.0] SBRS -{sbrs:.1} country not enabled"
                        ),
                    )?;
                    if delayed {
                        w.log_line(
                            t,
                            format_args!(
                                "ICID {icid} Delayed HAT REJECT continuing session for recipient logging ({ip})"
                            ),
                        )?;
                    }
                } else {
                    let sbrs = self.rng.range(0, 60) as f64 / 10.0 - 1.0;
                    w.log_line(
                        t,
                        format_args!(
                            "ICID {icid} ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS {sbrs:.1} country not enabled"
                        ),
                    )?;
                }
            }
            Note::TlsSuccess => w.log_line(
                t,
                format_args!(
                    "ICID {icid} TLS success protocol TLSv1.2 cipher ECDHE-ECDSA-AES128-GCM-SHA256"
                ),
            )?,
            Note::Mail => {
                if delayed {
                    let from = &self.from;
                    w.log_line(
                        t,
                        format_args!("ICID {icid} Delayed HAT REJECT Message from: {from} ({ip})"),
                    )?;
                } else {
                    let mid = w.next_mid;
                    w.next_mid += 1;
                    self.mids.push(mid);
                    self.open_mid = Some(mid);
                    self.rid = 0;
                    w.log_line(t, format_args!("Start MID {mid} ICID {icid}"))?;
                    let from = &self.from;
                    w.log_line(t, format_args!("MID {mid} ICID {icid} From: <{from}>"))?;
                }
            }
            Note::Rcpt { ok } => {
                let to = &self.to;
                if delayed {
                    w.log_line(
                        t,
                        format_args!(
                            "ICID {icid} Delayed HAT REJECT Message recipient: <{to}> ({ip})"
                        ),
                    )?;
                } else if let Some(mid) = self.open_mid {
                    if ok {
                        let rid = self.rid;
                        self.rid += 1;
                        w.log_line(
                            t,
                            format_args!("MID {mid} ICID {icid} RID {rid} To: <{to}>"),
                        )?;
                    } else {
                        w.log_line(
                            t,
                            format_args!("MID {mid} ICID {icid} To: <{to}> Rejected by RAT"),
                        )?;
                    }
                }
            }
            Note::Ready => {
                if let Some(mid) = self.open_mid.take() {
                    let bytes = if self.tls {
                        self.ready_bytes
                    } else {
                        self.body.message_bytes()
                    };
                    if self.tls {
                        self.new_message_id();
                    }
                    let (msgid, subject, from) = (&self.msgid, &self.subject, &self.from);
                    w.log_line(t, format_args!("MID {mid} Message-ID '{msgid}'"))?;
                    w.log_line(t, format_args!("MID {mid} Subject '{subject}'"))?;
                    w.log_line(
                        t,
                        format_args!("MID {mid} ready {bytes} bytes from <{from}>"),
                    )?;
                    for n in [
                        "matched all recipients for per-recipient policy DEFAULT in the inbound table",
                        "interim verdict using engine: CASE spam negative",
                        "using engine: CASE spam negative",
                        "antivirus negative",
                        "Outbreak Filters: verdict negative",
                        "queued for delivery",
                    ] {
                        w.log_line(t, format_args!("MID {mid} {n}"))?;
                    }
                    if w.dcid_left == 0 {
                        w.next_dcid += 1;
                        w.dcid_left = 50;
                        let d = w.next_dcid;
                        w.log_line(
                            t,
                            format_args!(
                                "New SMTP DCID {d} interface 192.0.2.25 address 192.0.2.80 port 25"
                            ),
                        )?;
                    }
                    w.dcid_left -= 1;
                    let d = w.next_dcid;
                    let rids = (0..self.rid.max(1))
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    w.log_line(
                        t,
                        format_args!("Delivery start DCID {d} MID {mid} to RID [{rids}]"),
                    )?;
                    w.log_line(
                        t,
                        format_args!("Message done DCID {d} MID {mid} to RID [{rids}]"),
                    )?;
                    w.log_line(t, format_args!("Message finished MID {mid} done"))?;
                }
            }
            Note::SenderAbort => {
                if let Some(mid) = self.open_mid.take() {
                    w.log_line(
                        t,
                        format_args!("Message aborted MID {mid} Receiving aborted by sender"),
                    )?;
                    w.log_line(t, format_args!("Message finished MID {mid} aborted"))?;
                }
            }
            Note::Lost | Note::Timeout => {
                if note == Note::Lost {
                    w.log_line(t, format_args!("ICID {icid} lost"))?;
                }
                if let Some(mid) = self.open_mid.take() {
                    w.log_line(
                        t,
                        format_args!("Message aborted MID {mid} Receiving aborted"),
                    )?;
                    w.log_line(t, format_args!("Message finished MID {mid} aborted"))?;
                }
                w.log_line(t, format_args!("ICID {icid} close"))?;
            }
            Note::Close => w.log_line(t, format_args!("ICID {icid} close"))?,
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

struct Gen<'a, P: PacketSink, L: Write, T: Write> {
    sessions: Vec<Sess>,
    free: Vec<usize>,
    heap: BinaryHeap<Reverse<(i64, u64, usize)>>,
    seq: u64,
    started: u64,
    w: World<'a, P, L, T>,
}

/// Writes a capture, its log and its truth; see the module documentation.
pub fn generate<P: PacketSink, L: Write, T: Write>(
    o: &CaptureGenOptions,
    pcap: &mut P,
    log: &mut L,
    truth: &mut T,
) -> io::Result<CaptureGenStats> {
    let mut rng = Rng::new(o.seed);
    let next_port = (0..CLIENTS)
        .map(|_| rng.range(32768, 60999) as u16)
        .collect();
    // Busy senders first: weight 1/(k+8) for client k, in a seeded order.
    let mut order: Vec<usize> = (0..CLIENTS).collect();
    for i in (1..CLIENTS).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let mut weights = vec![0u64; CLIENTS];
    for (k, &c) in order.iter().enumerate() {
        weights[c] = 1_000_000 / (k as u64 + 8);
    }
    let mut acc = 0;
    let client_cdf = weights
        .iter()
        .map(|w| {
            acc += w;
            acc
        })
        .collect();
    let next_icid = rng.range(100_000, 9_000_000);
    let next_mid = rng.range(100_000, 9_000_000);
    let next_dcid = rng.range(10_000, 900_000);
    let mut g = Gen {
        sessions: Vec::new(),
        free: Vec::new(),
        heap: BinaryHeap::new(),
        seq: 0,
        started: 0,
        w: World {
            o: o.clone(),
            rng,
            pcap,
            log,
            truth,
            buf: Vec::with_capacity(2048),
            stats: CaptureGenStats::default(),
            last_us: o.start_us,
            next_icid,
            next_mid,
            next_dcid,
            dcid_left: 0,
            next_port,
            open_ports: HashSet::new(),
            open: 0,
            log_sec: i64::MIN,
            log_prefix: String::new(),
            log_buf: Vec::with_capacity(256),
            truth_first: true,
            committed: 24,
            client_cdf,
        },
    };
    g.run()?;
    Ok(g.w.stats)
}

impl<P: PacketSink, L: Write, T: Write> Gen<'_, P, L, T> {
    fn run(&mut self) -> io::Result<()> {
        let o = self.w.o.clone();
        let t0 = o.start_us;
        let zone = (o.clock_offset as f64 / 900.0).round() as i64 * 900;
        let serial = format!(
            "Version: 15.0.1-030 SN: 4229{:012X}-{:07X}",
            self.w.rng.next_u64() >> 16,
            self.w.rng.next_u64() >> 36
        );
        self.w.log_line(t0, format_args!("Begin Logfile"))?;
        self.w.log_line(t0, format_args!("{serial}"))?;
        self.w
            .log_line(t0, format_args!("Time offset from UTC: {zone} seconds"))?;
        write!(
            self.w.truth,
            "{{\"generator\": \"gen_capture\", \"seed\": {}, \"clock_offset\": {}, \"idle_timeout\": {}, \"server\": \"192.0.2.25:25\",\n\"connections\": [",
            o.seed, o.clock_offset, o.idle_timeout_secs
        )?;
        // Ramp up: the first sessions' SYNs come within a fraction of a typical session's
        // length (50 µs apart, 2 s at most), so that they are all open at once.
        let n = o.concurrent.max(1);
        let ramp = (i64::from(n) * 50).min(2 * US);
        for i in 0..n {
            let t = t0 + ramp * i64::from(i) / i64::from(n);
            if !self.spawn(t) {
                break;
            }
        }
        let idle = i64::from(o.idle_timeout_secs) * US;
        while let Some(Reverse((_, _, slot))) = self.heap.pop() {
            let s = &mut self.sessions[slot];
            if s.queue.is_empty() {
                s.plan_next(idle);
            }
            // Every plan ends in `Done`, so an empty queue is only a session already over.
            let done = if s.queue.is_empty() {
                true
            } else {
                let a = s.queue.remove(0);
                s.execute(a, &mut self.w)?
            };
            if done {
                let now = s.clock;
                self.finish(slot)?;
                let gap = self.w.rng.exp(2_000.0) as i64;
                self.spawn(now + gap);
                continue;
            }
            if s.queue.is_empty() {
                s.plan_next(idle);
            }
            let next = s.queue.first().map_or(s.clock, |a| a.t);
            self.seq += 1;
            self.heap.push(Reverse((next, self.seq, slot)));
        }
        let mut counts = String::new();
        for o in Outcome::ALL {
            if !counts.is_empty() {
                counts.push_str(", ");
            }
            let n = self.w.stats.counts[o.index()];
            counts.push_str(&format!("\"{}\": {n}", o.name()));
        }
        let st = &self.w.stats;
        write!(
            self.w.truth,
            "\n],\n\"counts\": {{{counts}}},\n\"sessions\": {}, \"max_open\": {}, \"packets\": {}, \"capture_bytes\": {}, \"first_packet\": \"{}\", \"last_packet\": \"{}\"}}\n",
            st.sessions,
            st.max_open,
            st.packets,
            st.capture_bytes,
            rfc3339(st.first_us),
            rfc3339(st.last_us)
        )?;
        self.w.truth.flush()?;
        self.w.log.flush()
    }

    /// Starts a session whose SYN comes at `t`, unless the size or session budget is spent.
    fn spawn(&mut self, t: i64) -> bool {
        let o = &self.w.o;
        if o.sessions.is_some_and(|n| self.started >= n)
            || o.size.is_some_and(|n| self.w.committed >= n)
            || (o.sessions.is_none() && o.size.is_none())
        {
            return false;
        }
        self.started += 1;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.sessions.push(Sess::default());
                self.sessions.len() - 1
            }
        };
        let w = &mut self.w;
        let mut rng = Rng::new(w.rng.next_u64());
        let outcome = Outcome::draw(&mut rng, w.o.even_mix);
        let client = w.pick_client();
        let port = loop {
            let p = w.next_port[client];
            let step = 1 + rng.below(4) as u16;
            w.next_port[client] = if p >= 60999 - step { 32768 } else { p + step };
            if !w.open_ports.contains(&(client as u16, p)) {
                break p;
            }
        };
        w.open_ports.insert((client as u16, port));
        // Per client: one operating system, one path.
        let h = {
            let mut r = Rng::new(client as u64 ^ w.o.seed.rotate_left(29));
            r.next_u64()
        };
        let ttl0: u8 = match h % 20 {
            0 => 255,
            1..=7 => 128,
            _ => 64,
        };
        let hops = 4 + ((h >> 8) % 17) as u8;
        let base_rtt = {
            let mut r = Rng::new(h);
            r.log_uniform(5_000.0, 300_000.0)
        };
        let s = &mut self.sessions[slot];
        s.outcome = Some(outcome);
        s.client = client;
        s.cip = client_ip(client);
        s.cport = port;
        s.start = t;
        s.clock = t;
        s.icid = None;
        s.mids.clear();
        s.open_mid = None;
        let isn = |r: &mut Rng| {
            if r.chance(0.1) {
                (u32::MAX - r.below(4 << 20) as u32).wrapping_add(0)
            } else {
                r.next_u64() as u32
            }
        };
        s.c_isn = isn(&mut rng);
        s.s_isn = isn(&mut rng);
        s.c_nxt = s.c_isn;
        s.s_nxt = s.s_isn;
        s.c_rcv = s.c_isn;
        s.ooo_end = None;
        s.s_acked = s.c_isn;
        s.c_ipid = rng.next_u64() as u16;
        s.s_ipid = rng.next_u64() as u16;
        s.c_ttl = ttl0 - hops;
        s.c_wscale = if ttl0 == 128 { 8 } else { 7 };
        s.c_win = if ttl0 == 128 { 256 } else { 502 };
        s.s_win = rng.range(1024, 2047) as u16;
        s.c_ts0 = rng.next_u64() as u32;
        s.s_ts0 = rng.next_u64() as u32;
        s.c_tsval = 0;
        s.s_tsval = 0;
        s.rtt = (base_rtt * rng.range(90, 110) as f64 / 100.0) as i64;
        s.rate = rng.log_uniform(20_000.0, 5_000_000.0) / 1e6;
        s.segs_unacked = 0;
        s.queue.clear();
        s.text.clear();
        s.saved_busy = false;
        s.step = Step::Banner;
        s.msgs_full = match outcome {
            Outcome::Delivered | Outcome::TlsDelivered => {
                if rng.chance(0.85) {
                    1
                } else {
                    rng.range(2, 4) as u32
                }
            }
            Outcome::NoMessage
            | Outcome::HatReject
            | Outcome::RejectAtRcpt
            | Outcome::LostAfterEhlo
            | Outcome::HalfOpen => 0,
            _ => u32::from(rng.chance(0.1)),
        };
        s.msgs_done = 0;
        s.tls = false;
        s.text_ehlo_after_tls = false;
        s.cut_after = None;
        s.sizes.clear();
        s.rng = rng;
        for _ in 0..=s.msgs_full {
            let size = s.message_size(w.o.median_message);
            s.sizes.push(size);
        }
        s.bytes = 0;
        s.opened = false;
        // What the session will write: its full messages, half of an aborted one, and about
        // 3 KB of handshake, dialogue and closes (corrected when it ends).
        let full: u64 = s.sizes.iter().take(s.msgs_full as usize).sum();
        let aborted = match outcome {
            Outcome::Delivered | Outcome::TlsDelivered => 0,
            _ => s.sizes.get(s.msgs_full as usize).copied().unwrap_or(0) / 2,
        };
        s.est_bytes = 3_000 + (full + aborted) * 106 / 100;
        w.committed += s.est_bytes;
        // The handshake.
        s.push(t, Act::Syn, Note::None);
        if outcome == Outcome::HalfOpen {
            // Nobody answers: the SYN is sent again after 1, 2 and 4 s.
            s.push(t + US, Act::Syn, Note::None);
            s.push(t + 3 * US, Act::Syn, Note::None);
            s.push(t + 7 * US, Act::Syn, Note::None);
            s.push(t + 7 * US + 1, Act::Done, Note::None);
            s.step = Step::Finished;
        } else {
            s.push(t + 30, Act::SynAck, Note::None);
            s.push(t + 30 + s.rtt, Act::CAck, Note::Connect);
        }
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, slot)));
        true
    }

    /// A session is over: its truth, its budget, its slot.
    fn finish(&mut self, slot: usize) -> io::Result<()> {
        let w = &mut self.w;
        let s = &mut self.sessions[slot];
        let Some(outcome) = s.outcome.take() else {
            return Ok(());
        };
        w.open_ports.remove(&(s.client as u16, s.cport));
        if s.opened {
            w.open = w.open.saturating_sub(1);
        }
        w.committed = (w.committed + s.bytes).saturating_sub(s.est_bytes);
        w.stats.sessions += 1;
        w.stats.counts[outcome.index()] += 1;
        let (layer, cause) = outcome.expected();
        let icid = s.icid.map_or("null".to_string(), |i| i.to_string());
        let mids = s
            .mids
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let sep = if w.truth_first { "\n" } else { ",\n" };
        w.truth_first = false;
        write!(
            w.truth,
            "{sep}{{\"client\": \"{}:{}\", \"icid\": {icid}, \"mids\": [{mids}], \"outcome\": \"{}\", \"layer\": \"{layer}\", \"cause\": \"{cause}\", \"tls\": {}, \"first_packet\": \"{}\"}}",
            ip_str(s.cip),
            s.cport,
            outcome.name(),
            outcome.tls(),
            rfc3339(s.start)
        )?;
        s.queue.clear();
        self.free.push(slot);
        Ok(())
    }
}
