//! The flow table: TCP connections keyed by their 4-tuple.
//!
//! Contract: [`FlowTable::process`] takes each decoded [`Packet`] in capture order, finds or
//! creates its connection (a new SYN after a close, or with another ISN, starts a new one: port
//! reuse), records the TCP facts of each side (SYN, first FIN and first RST with TTL and IP ID,
//! retransmissions, zero windows, bytes the capture lost), and hands the reassembled payload of
//! each side to the connection's [`StreamSink`] in the order it became contiguous. It does not
//! interpret payload. Connections that are closed and quiet, or idle for long, are finished
//! early so memory follows the number of open connections; [`FlowTable::finish_all`] finishes
//! the rest at the end of the capture.
//!
//! Limits, so that a hostile or odd capture (a scan, a flood, endless out-of-order data) cannot
//! exhaust memory: at most [`FlowConfig::max_open_flows`] connections are open at once (past
//! that the least recently active ones are finished early, closed ones first, and counted in
//! [`FlowTable::evicted_flows`]); out-of-order bytes are held up to
//! [`FlowConfig::max_pending_bytes`] per direction and [`FlowConfig::max_total_pending_bytes`]
//! over all connections (what does not fit is dropped and reported as
//! [`TcpAnomaly::BufferFull`]); each connection keeps at most [`MAX_TCP_ANOMALIES`] anomalies.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::assembler::Assembler;
use super::seq::SeqNumber;
use crate::capture::{FrameRef, Packet};
use crate::types::{Side, Timestamp};

/// Receives one connection's reassembled byte streams.
pub trait StreamSink {
    /// Bytes of `side`, contiguous with what came before (or after a [`StreamSink::gap`]).
    fn data(&mut self, side: Side, at: Timestamp, bytes: &[u8]);
    /// `bytes` of `side` were sent but are not in the capture.
    fn gap(&mut self, side: Side, at: Timestamp, bytes: u64);
}

#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Ports a server listens on for SMTP; used to tell client from server when no SYN is seen.
    pub server_ports: Vec<u16>,
    /// Out-of-order bytes held per direction before new ones are dropped (and reported).
    pub max_pending_bytes: usize,
    /// Out-of-order bytes held over all open connections before new ones are dropped (and
    /// reported, as for `max_pending_bytes`).
    pub max_total_pending_bytes: usize,
    /// Connections open at once. Past this, the least recently active ones (closed ones first)
    /// are finished early, a quarter of the table at a time (attempts first, then closed ones),
    /// and the open ones among them counted.
    pub max_open_flows: usize,
    /// A closed connection is finished once quiet this long (capture time): long enough for
    /// the last ACKs and the first retransmissions of an endpoint that did not see the close.
    pub closed_linger: Timestamp,
    /// A half-closed connection (a FIN from one side only) is finished once quiet this long:
    /// the other side had its chance to close too.
    pub half_closed_linger: Timestamp,
    /// After a closed connection is finished, its later packets (retransmissions of an endpoint
    /// that never saw the close, RSTs answering them) are recognised this long and counted in
    /// [`FlowTable::late_packets`] instead of opening a connection joined mid-stream.
    pub closed_remembered: Timestamp,
    /// An open connection is finished once idle this long (capture time).
    pub idle_timeout: Timestamp,
    /// A connection attempt (no payload either way, and no SYN-ACK or already reset: a scan,
    /// a SYN flood, a refused or unanswered connect) is finished once quiet this long, so that
    /// millions of them do not fill the table.
    pub attempt_linger: Timestamp,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            server_ports: vec![25, 587, 2525, 465],
            max_pending_bytes: 4 << 20,
            max_total_pending_bytes: 512 << 20,
            max_open_flows: 65_536,
            closed_linger: Timestamp::from_secs(2),
            closed_remembered: Timestamp::from_secs(300),
            half_closed_linger: Timestamp::from_secs(15),
            idle_timeout: Timestamp::from_secs(2 * 3600),
            // Longer than a SYN's first retransmissions (1, 3, 7, 15 s), which keep it alive.
            attempt_linger: Timestamp::from_secs(30),
        }
    }
}

/// A FIN or RST as it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CloseEvent {
    pub at: Timestamp,
    pub frame: FrameRef,
    pub ttl: u8,
    pub ip_id: Option<u16>,
    pub seq: u32,
}

/// What one side of a connection sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SideStats {
    pub packets: u64,
    /// Payload bytes as the IP headers state them (captured or not).
    pub payload_bytes: u64,
    pub syn_at: Option<Timestamp>,
    pub first_fin: Option<CloseEvent>,
    pub first_rst: Option<CloseEvent>,
    pub rst_packets: u32,
    /// Segments that carried bytes already received.
    pub retransmissions: u64,
    pub zero_windows: u64,
    pub ttl_min: Option<u8>,
    pub ttl_max: Option<u8>,
    /// Bytes of the stream that are not in the capture (lost before the capture point).
    pub gap_bytes: u64,
    /// Payload bytes cut off by the capture's snapshot length.
    pub snaplen_cut_bytes: u64,
    pub first_at: Option<Timestamp>,
    pub last_at: Option<Timestamp>,
    pub last_payload_at: Option<Timestamp>,
    /// Packets other than RSTs this side sent after its own first RST (a real endpoint sends
    /// nothing after resetting; a forged RST leaves the endpoint talking).
    pub packets_after_rst: u32,
    /// Payload bytes among those.
    pub payload_after_rst: u64,
    /// TTL range of this side's packets that carry neither RST nor FIN: what the endpoint's
    /// own packets look like at the capture point.
    pub ttl_plain_min: Option<u8>,
    pub ttl_plain_max: Option<u8>,
    /// IP ID of this side's last packet before its first RST (IPv4).
    pub ip_id_before_rst: Option<u16>,
    /// Sequence numbers of this side's RSTs (the first few), to spot racing resets.
    pub rst_seqs: Vec<u32>,
    /// Segments carrying exactly one payload byte (keystrokes, or an inspecting device).
    pub one_byte_segments: u64,
    /// The largest payload seen in one segment, and how many segments of that size were
    /// retransmissions (a path that drops full-size packets retransmits them again and again).
    pub largest_segment: u32,
    pub largest_segment_retransmissions: u64,
    /// ICMP "fragmentation needed" / "packet too big" about this side's packets, and the
    /// smallest MTU they announced.
    pub icmp_too_big: u32,
    pub icmp_mtu: Option<u32>,
    pub icmp_first: Option<(Timestamp, FrameRef)>,
}

/// Anomalies kept per connection; later ones are not recorded (their bytes are still counted
/// in the side stats).
pub const MAX_TCP_ANOMALIES: usize = 64;

/// Something odd on the TCP level, with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TcpAnomaly {
    /// The capture starts after the handshake: the first bytes may be mid-line.
    MidstreamStart { frame: FrameRef, at: Timestamp },
    /// Bytes of `side` missing from the capture.
    Gap {
        side: Side,
        frame: FrameRef,
        at: Timestamp,
        bytes: u64,
    },
    /// A retransmission or overlap carried bytes different from the first copy.
    OverlapConflict {
        side: Side,
        frame: FrameRef,
        at: Timestamp,
    },
    /// The out-of-order buffer was full; bytes were dropped.
    BufferFull {
        side: Side,
        frame: FrameRef,
        at: Timestamp,
        dropped_bytes: u64,
    },
    /// Payload cut by the snapshot length (first packet only; the total is in the side stats).
    SnaplenCut {
        side: Side,
        frame: FrameRef,
        at: Timestamp,
    },
}

/// The TCP facts of one finished connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpConnection {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub first_frame: FrameRef,
    pub last_frame: FrameRef,
    /// The three-way handshake was seen (SYN, SYN-ACK).
    pub handshake_seen: bool,
    /// The client's first ACK after the server's SYN-ACK: when the server's TCP accepted the
    /// connection (and the appliance gave it its ICID), which can be later than `first_seen`
    /// by a round trip, or much later when SYNs were retransmitted.
    pub handshake_done_at: Option<Timestamp>,
    pub from_client: SideStats,
    pub from_server: SideStats,
    /// The capture ended (or the connection went idle) before either side closed.
    pub open_at_end: bool,
    pub anomalies: Vec<TcpAnomaly>,
}

impl TcpConnection {
    /// When the connection was accepted, as far as the capture shows: the handshake's last ACK,
    /// else the first packet.
    pub fn accepted_at(&self) -> Timestamp {
        self.handshake_done_at.unwrap_or(self.first_seen)
    }

    /// A connection that never got going: no payload either way, and no SYN-ACK or already
    /// reset (a scan, a SYN flood, a refused or unanswered connect).
    pub fn is_attempt(&self) -> bool {
        self.from_client.payload_bytes == 0
            && self.from_server.payload_bytes == 0
            && (!self.handshake_seen
                || self.from_client.first_rst.is_some()
                || self.from_server.first_rst.is_some())
    }

    /// The client's SYN was seen and no SYN-ACK came back, and nothing was sent either way: the
    /// server's TCP never accepted it (so the appliance logged no ICID for it).
    pub fn never_accepted(&self) -> bool {
        self.from_client.syn_at.is_some()
            && !self.handshake_seen
            && self.from_client.payload_bytes == 0
            && self.from_server.payload_bytes == 0
    }

    pub fn side(&self, side: Side) -> &SideStats {
        match side {
            Side::Client => &self.from_client,
            Side::Server => &self.from_server,
        }
    }

    /// The first FIN of the connection and the side that sent it.
    pub fn first_fin(&self) -> Option<(Side, CloseEvent)> {
        earliest(self.from_client.first_fin, self.from_server.first_fin)
    }

    /// The first RST of the connection and the side that sent it.
    pub fn first_rst(&self) -> Option<(Side, CloseEvent)> {
        earliest(self.from_client.first_rst, self.from_server.first_rst)
    }
}

fn earliest(c: Option<CloseEvent>, s: Option<CloseEvent>) -> Option<(Side, CloseEvent)> {
    match (c, s) {
        (Some(c), Some(s)) if (s.at, s.frame) < (c.at, c.frame) => Some((Side::Server, s)),
        (Some(c), _) => Some((Side::Client, c)),
        (None, Some(s)) => Some((Side::Server, s)),
        (None, None) => None,
    }
}

/// Reassembly state of one direction.
#[derive(Debug)]
struct Stream {
    /// Sequence number of stream offset 0 (the byte after the SYN); None until known.
    origin: Option<SeqNumber>,
    assembler: Assembler,
    /// Stream offset where the FIN sits, once seen.
    fin_offset: Option<u64>,
    /// Bytes the peer acknowledged that have not arrived: a hole that may yet fill.
    acked_hole: Option<AckedHole>,
    /// Byte ranges the snapshot length cut from packets that came out of order: skipped as
    /// cuts (not reported as capture gaps) once they are next in line. Bounded.
    cuts: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, Copy)]
struct AckedHole {
    /// Stream offset the peer acknowledged.
    upto: u64,
    since: Timestamp,
    /// Packets of the connection seen since.
    packets: u32,
}

impl Stream {
    fn new(cap: usize) -> Self {
        Stream {
            origin: None,
            assembler: Assembler::new(cap),
            fin_offset: None,
            acked_hole: None,
            cuts: Vec::new(),
        }
    }

    /// Stream offset of `seq`, once the stream's origin is known. Measured from the next byte
    /// expected, so a stream longer than 4 GiB (sequence numbers wrapping) still places
    /// segments near it correctly; negative means before the origin.
    fn offset(&self, seq: SeqNumber) -> Option<i64> {
        let origin = self.origin?;
        let next = self.assembler.next_offset();
        let next_seq = origin + next as u32;
        Some(next as i64 + (seq - next_seq) as i64)
    }
}

struct Conn<S> {
    facts: TcpConnection,
    streams: [Stream; 2],
    client_isn: Option<SeqNumber>,
    sink: S,
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// A connection's two ends in a canonical order (lower end first), addresses as 16 bytes
/// (IPv4 mapped) so that hashing and comparing a key is a few word operations: this lookup is
/// done for every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FlowKey {
    lo: ([u8; 16], u16),
    hi: ([u8; 16], u16),
}

fn end_of(a: SocketAddr) -> ([u8; 16], u16) {
    let ip = match a.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    (ip, a.port())
}

fn key_of(a: SocketAddr, b: SocketAddr) -> FlowKey {
    let (a, b) = (end_of(a), end_of(b));
    if a <= b {
        FlowKey { lo: a, hi: b }
    } else {
        FlowKey { lo: b, hi: a }
    }
}

/// Seeded per run, so that a capture crafted to collide keys cannot slow the table down.
type FlowHasher = foldhash::fast::RandomState;

/// The open connections: a small index from key to slot, and the connections in one dense
/// vector. The index a lookup walks stays a few hundred KiB for ten thousand connections (it
/// sits in cache), where a map holding the connections themselves would spread the keys over
/// tens of MiB and miss the cache on every packet. Each connection is boxed, so that the
/// vector's spare capacity costs a pointer a slot and a removal moves a pointer.
struct Open<S> {
    index: HashMap<FlowKey, u32, FlowHasher>,
    conns: Vec<(FlowKey, Box<Conn<S>>)>,
}

impl<S> Open<S> {
    fn new() -> Self {
        Open {
            index: HashMap::with_hasher(FlowHasher::default()),
            conns: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.conns.len()
    }

    fn contains_key(&self, key: &FlowKey) -> bool {
        self.index.contains_key(key)
    }

    fn get(&self, key: &FlowKey) -> Option<&Conn<S>> {
        let i = *self.index.get(key)?;
        Some(&self.conns[i as usize].1)
    }

    fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Conn<S>> {
        let i = *self.index.get(key)?;
        Some(&mut self.conns[i as usize].1)
    }

    fn get_or_insert_with(&mut self, key: FlowKey, new: impl FnOnce() -> Conn<S>) -> &mut Conn<S> {
        let next = self.conns.len() as u32;
        let i = *self.index.entry(key).or_insert(next);
        if i == next {
            self.conns.push((key, Box::new(new())));
        }
        &mut self.conns[i as usize].1
    }

    fn remove(&mut self, key: &FlowKey) -> Option<Conn<S>> {
        let i = self.index.remove(key)? as usize;
        let (_, conn) = self.conns.swap_remove(i);
        if let Some((moved, _)) = self.conns.get(i) {
            self.index.insert(*moved, i as u32);
        }
        Some(*conn)
    }

    fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Conn<S>)> {
        self.conns.iter().map(|(k, c)| (k, &**c))
    }

    fn keys(&self) -> impl Iterator<Item = &FlowKey> {
        self.conns.iter().map(|(k, _)| k)
    }
}

/// Closed connections recently finished, by key, oldest first: a few dozen bytes each where the
/// connection itself was kilobytes. Bounded by [`MAX_REMEMBERED`].
#[derive(Default)]
struct Remembered {
    order: std::collections::VecDeque<(FlowKey, Timestamp)>,
    at: HashMap<FlowKey, Timestamp, FlowHasher>,
}

/// Finished closed connections remembered at once (the oldest are forgotten first).
const MAX_REMEMBERED: usize = 65_536;

impl Remembered {
    fn insert(&mut self, key: FlowKey, at: Timestamp) {
        self.at.insert(key, at);
        self.order.push_back((key, at));
        while self.order.len() > MAX_REMEMBERED {
            self.pop_oldest();
        }
    }

    fn contains(&self, key: &FlowKey) -> bool {
        self.at.contains_key(key)
    }

    fn forget(&mut self, key: &FlowKey) {
        self.at.remove(key);
    }

    /// Forgets those finished before `before`.
    fn expire(&mut self, before: Timestamp) {
        while self.order.front().is_some_and(|(_, at)| *at < before) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((key, at)) = self.order.pop_front() {
            // The key may have been forgotten, or finished again since (port reuse).
            if self.at.get(&key) == Some(&at) {
                self.at.remove(&key);
            }
        }
    }
}

pub struct FlowTable<S> {
    config: FlowConfig,
    flows: Open<S>,
    finished: Vec<(TcpConnection, S)>,
    last_sweep: Timestamp,
    /// Out-of-order bytes held by all open connections.
    pending_total: usize,
    /// Connections finished early because the table was full.
    evicted: u64,
    /// Closed connections finished, remembered for their late packets.
    remembered: Remembered,
    late_packets: u64,
}

/// Out-of-order bytes a connection holds.
fn pending_of<S>(conn: &Conn<S>) -> usize {
    conn.streams[0].assembler.pending_bytes() + conn.streams[1].assembler.pending_bytes()
}

/// How often (capture time) the table looks for connections to finish: often enough that a
/// closed connection does not outstay its linger by much (at thousands of new connections a
/// second, every second of overstay is thousands of connections held), rarely enough that the
/// walk over the table costs nothing per packet.
const SWEEP_EVERY: i64 = Timestamp::NANOS_PER_SEC;

/// A FIN from either side.
fn has_fin(f: &TcpConnection) -> bool {
    f.from_client.first_fin.is_some() || f.from_server.first_fin.is_some()
}

/// RST seen on either side, or FIN from both.
fn is_closed(f: &TcpConnection) -> bool {
    f.from_client.first_rst.is_some()
        || f.from_server.first_rst.is_some()
        || (f.from_client.first_fin.is_some() && f.from_server.first_fin.is_some())
}

impl<S: StreamSink> FlowTable<S> {
    pub fn new(config: FlowConfig) -> Self {
        FlowTable {
            config,
            flows: Open::new(),
            finished: Vec::new(),
            last_sweep: Timestamp(i64::MIN),
            pending_total: 0,
            evicted: 0,
            remembered: Remembered::default(),
            late_packets: 0,
        }
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.flows.len()
    }

    /// Open connections (not attempts, not closed) finished early because more than
    /// [`FlowConfig::max_open_flows`] were open at once. Their later packets, if any, start a new
    /// connection (joined mid-stream).
    pub fn evicted_flows(&self) -> u64 {
        self.evicted
    }

    /// Out-of-order bytes held by all open connections.
    pub fn pending_bytes(&self) -> usize {
        self.pending_total
    }

    /// Packets of closed connections that came after the connection was finished (see
    /// [`FlowConfig::closed_remembered`]); they are not analysed.
    pub fn late_packets(&self) -> u64 {
        self.late_packets
    }

    /// Finishes the open connection `key` (its waiting bytes are delivered after their holes).
    fn finish_flow(&mut self, key: &FlowKey) {
        if let Some(conn) = self.flows.remove(key) {
            self.pending_total = self.pending_total.saturating_sub(pending_of(&conn));
            if is_closed(&conn.facts) || has_fin(&conn.facts) {
                self.remembered.insert(*key, conn.facts.last_seen);
            }
            self.finished.push(finish(conn));
        }
    }

    /// Makes room for a new connection: finishes the least recently active quarter of the
    /// table, attempts first (they would be finished soon anyway), then closed connections, then
    /// open ones. Only open connections count as evicted: the others lose nothing.
    fn evict(&mut self) {
        // A quarter: choosing them walks the whole table, so that walk must be rare in a flood.
        let n = (self.config.max_open_flows / 4).max(1);
        let class = |f: &TcpConnection| {
            if f.is_attempt() {
                0u8
            } else if is_closed(f) {
                1
            } else {
                2
            }
        };
        let mut by_age: Vec<(u8, Timestamp, FlowKey)> = self
            .flows
            .iter()
            .map(|(k, c)| (class(&c.facts), c.facts.last_seen, *k))
            .collect();
        if by_age.len() > n {
            by_age.select_nth_unstable(n - 1);
            by_age.truncate(n);
        }
        for (class, _, k) in by_age {
            self.finish_flow(&k);
            if class == 2 {
                self.evicted += 1;
            }
        }
    }

    /// Takes the connections finished so far.
    pub fn drain_finished(&mut self) -> std::vec::Drain<'_, (TcpConnection, S)> {
        self.finished.drain(..)
    }

    /// Finishes every connection still open (end of capture) and returns all finished ones.
    pub fn finish_all(mut self) -> Vec<(TcpConnection, S)> {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for k in keys {
            self.finish_flow(&k);
        }
        self.finished
    }

    /// Processes one packet; `new_sink` makes the sink of a new connection from its client and
    /// server addresses.
    pub fn process(
        &mut self,
        pkt: &Packet<'_>,
        new_sink: &mut dyn FnMut(SocketAddr, SocketAddr) -> S,
    ) {
        let src = SocketAddr::new(pkt.src, pkt.src_port);
        let dst = SocketAddr::new(pkt.dst, pkt.dst_port);
        let key = key_of(src, dst);
        let pure_syn = pkt.flags.syn && !pkt.flags.ack;

        if pure_syn {
            if let Some(conn) = self.flows.get(&key) {
                let same_isn =
                    conn.client_isn == Some(SeqNumber(pkt.seq)) && conn.facts.client == src;
                let closed = is_closed(&conn.facts);
                // A SYN on a connection the capture joined midway (client bytes, no SYN seen)
                // opens a new connection too.
                let isn_changed = (conn.client_isn.is_some() && !same_isn)
                    || (conn.client_isn.is_none() && conn.streams[0].origin.is_some());
                if closed && !same_isn || isn_changed {
                    // Port reuse: the old connection is over; this SYN opens a new one.
                    self.finish_flow(&key);
                }
            }
        }
        let open = self.flows.contains_key(&key);
        if !open && self.remembered.contains(&key) {
            if pure_syn {
                // Port reuse after a finished connection: a new one.
                self.remembered.forget(&key);
            } else {
                self.late_packets += 1;
                return;
            }
        }
        if !open && self.flows.len() >= self.config.max_open_flows.max(1) {
            self.evict();
        }

        let config = &self.config;
        let conn = self.flows.get_or_insert_with(key, || {
            let (client, server) = orient(pkt, src, dst, &config.server_ports);
            Conn {
                facts: TcpConnection {
                    client,
                    server,
                    first_seen: pkt.ts,
                    last_seen: pkt.ts,
                    first_frame: pkt.frame,
                    last_frame: pkt.frame,
                    handshake_seen: false,
                    handshake_done_at: None,
                    from_client: SideStats::default(),
                    from_server: SideStats::default(),
                    open_at_end: false,
                    anomalies: Vec::new(),
                },
                streams: [
                    Stream::new(config.max_pending_bytes),
                    Stream::new(config.max_pending_bytes),
                ],
                client_isn: None,
                sink: new_sink(client, server),
            }
        });
        // What this connection may hold out of order, within the budget of the whole table.
        let before = pending_of(conn);
        let others = self.pending_total.saturating_sub(before);
        let budget = config.max_total_pending_bytes.saturating_sub(others);
        on_packet(conn, pkt, src, config.max_pending_bytes, budget);
        expire_acked_holes(conn, pkt.frame, pkt.ts, false);
        self.pending_total = others + pending_of(conn);

        if pkt.ts.0.saturating_sub(self.last_sweep.0) >= SWEEP_EVERY {
            self.last_sweep = pkt.ts;
            self.sweep(pkt.ts);
        }
    }

    /// A router said a packet from `quoted_src` to `quoted_dst` was too big for its next hop:
    /// counted on the connection and side that sent it, if the connection is open.
    pub fn path_mtu(
        &mut self,
        quoted_src: SocketAddr,
        quoted_dst: SocketAddr,
        mtu: u32,
        at: Timestamp,
        frame: FrameRef,
    ) {
        let Some(conn) = self.flows.get_mut(&key_of(quoted_src, quoted_dst)) else {
            return;
        };
        let stats = if quoted_src == conn.facts.client {
            &mut conn.facts.from_client
        } else {
            &mut conn.facts.from_server
        };
        stats.icmp_too_big += 1;
        if mtu > 0 {
            stats.icmp_mtu = Some(stats.icmp_mtu.map_or(mtu, |m| m.min(mtu)));
        }
        stats.icmp_first.get_or_insert((at, frame));
    }

    /// Finishes connections that are closed and quiet, attempts that are quiet, and
    /// connections idle too long.
    fn sweep(&mut self, now: Timestamp) {
        let linger = self.config.closed_linger.0;
        let idle = self.config.idle_timeout.0;
        let attempt_linger = self.config.attempt_linger.0;
        let half_closed_linger = self.config.half_closed_linger.0;
        self.remembered.expire(Timestamp(
            now.0.saturating_sub(self.config.closed_remembered.0),
        ));
        let done: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, c)| {
                let f = &c.facts;
                let quiet = now.0.saturating_sub(f.last_seen.0);
                (is_closed(f) && quiet >= linger)
                    || (f.is_attempt() && quiet >= attempt_linger)
                    || (has_fin(f) && quiet >= half_closed_linger)
                    || quiet >= idle
            })
            .map(|(k, _)| *k)
            .collect();
        for k in done {
            self.finish_flow(&k);
        }
    }
}

/// Decides which end is the client of a connection first seen with `pkt`.
fn orient(
    pkt: &Packet<'_>,
    src: SocketAddr,
    dst: SocketAddr,
    server_ports: &[u16],
) -> (SocketAddr, SocketAddr) {
    if pkt.flags.syn {
        return if pkt.flags.ack {
            (dst, src)
        } else {
            (src, dst)
        };
    }
    let dst_is_server = server_ports.contains(&dst.port());
    let src_is_server = server_ports.contains(&src.port());
    match (src_is_server, dst_is_server) {
        (false, true) => (src, dst),
        (true, false) => (dst, src),
        // Neither or both: the lower port is usually the listener.
        _ if src.port() < dst.port() => (dst, src),
        _ => (src, dst),
    }
}

/// Records one packet of `conn`. Out-of-order bytes are held up to `stream_cap` per direction
/// and `budget` for the connection as a whole.
fn on_packet<S: StreamSink>(
    conn: &mut Conn<S>,
    pkt: &Packet<'_>,
    src: SocketAddr,
    stream_cap: usize,
    budget: usize,
) {
    let side = if src == conn.facts.client {
        Side::Client
    } else {
        Side::Server
    };
    let facts = &mut conn.facts;
    facts.last_seen = facts.last_seen.max(pkt.ts);
    facts.last_frame = pkt.frame;
    let stats = match side {
        Side::Client => &mut facts.from_client,
        Side::Server => &mut facts.from_server,
    };
    stats.packets += 1;
    stats.first_at.get_or_insert(pkt.ts);
    stats.last_at = Some(pkt.ts);
    stats.ttl_min = Some(stats.ttl_min.map_or(pkt.ttl, |t| t.min(pkt.ttl)));
    stats.ttl_max = Some(stats.ttl_max.map_or(pkt.ttl, |t| t.max(pkt.ttl)));
    if stats.first_rst.is_some() && !pkt.flags.rst {
        stats.packets_after_rst += 1;
        stats.payload_after_rst += pkt.payload.len() as u64 + u64::from(pkt.payload_missing);
    }
    if !pkt.flags.rst && !pkt.flags.fin {
        stats.ttl_plain_min = Some(stats.ttl_plain_min.map_or(pkt.ttl, |t| t.min(pkt.ttl)));
        stats.ttl_plain_max = Some(stats.ttl_plain_max.map_or(pkt.ttl, |t| t.max(pkt.ttl)));
        if stats.first_rst.is_none() {
            stats.ip_id_before_rst = pkt.ip_id.or(stats.ip_id_before_rst);
        }
    }
    if pkt.flags.rst && stats.rst_seqs.len() < 8 && !stats.rst_seqs.contains(&pkt.seq) {
        stats.rst_seqs.push(pkt.seq);
    }
    let seg_len = pkt.payload.len() as u32 + pkt.payload_missing;
    if seg_len == 1 && !pkt.flags.syn {
        stats.one_byte_segments += 1;
    }
    if seg_len > stats.largest_segment {
        stats.largest_segment = seg_len;
        stats.largest_segment_retransmissions = 0;
    }
    if pkt.window == 0 && !pkt.flags.rst && !pkt.flags.syn && !pkt.flags.fin {
        stats.zero_windows += 1;
    }
    let event = CloseEvent {
        at: pkt.ts,
        frame: pkt.frame,
        ttl: pkt.ttl,
        ip_id: pkt.ip_id,
        seq: pkt.seq,
    };

    let seq = SeqNumber(pkt.seq);
    let payload_len = pkt.payload.len() as u32 + pkt.payload_missing;
    stats.payload_bytes += payload_len as u64;

    if pkt.flags.syn {
        stats.syn_at.get_or_insert(pkt.ts);
        if side == Side::Client && !pkt.flags.ack {
            conn.client_isn = Some(seq);
        }
        if side == Side::Server && pkt.flags.ack {
            facts.handshake_seen = true;
        }
        let stream = &mut conn.streams[idx(side)];
        if stream.origin.is_none() {
            stream.origin = Some(seq + 1);
        }
    }
    if side == Side::Client
        && facts.handshake_seen
        && facts.handshake_done_at.is_none()
        && pkt.flags.ack
        && !pkt.flags.syn
        && !pkt.flags.rst
    {
        facts.handshake_done_at = Some(pkt.ts);
    }
    if pkt.flags.rst {
        stats.rst_packets += 1;
        stats.first_rst.get_or_insert(event);
    }

    // The peer's ACK tells how far this side's stream really went: what it acknowledges but the
    // capture never had was lost before the capture point.
    if pkt.flags.ack && !pkt.flags.rst {
        let other = side.other();
        note_acked_hole(conn, other, SeqNumber(pkt.ack), pkt);
        // Data that answers bytes the capture lacks: those bytes are not coming (the peer
        // has them already), and the gap must reach the SMTP stage before this reply.
        if payload_len > 0 && conn.streams[idx(other)].acked_hole.is_some() {
            expire_side(conn, other, pkt.frame, pkt.ts, true);
        }
    }
    // New data from beyond an acknowledged hole: the sender has moved on, the hole's bytes went
    // by before the capture point and will not come.
    if payload_len > 0 {
        let stream = &conn.streams[idx(side)];
        if let (Some(hole), Some(off)) = (stream.acked_hole, stream.offset(seq)) {
            if off >= hole.upto as i64 {
                expire_side(conn, side, pkt.frame, pkt.ts, true);
            }
        }
    }

    let facts = &mut conn.facts;
    let stats = match side {
        Side::Client => &mut facts.from_client,
        Side::Server => &mut facts.from_server,
    };
    // The other direction's waiting bytes count against this connection's budget.
    let theirs = conn.streams[idx(side.other())].assembler.pending_bytes();
    let stream = &mut conn.streams[idx(side)];
    if payload_len > 0 && !pkt.flags.syn {
        if stream.origin.is_none() {
            stream.origin = Some(seq);
            // The first bytes may be the middle of a line: let the consumer resynchronise.
            conn.sink.gap(side, pkt.ts, 0);
            if !facts
                .anomalies
                .iter()
                .any(|a| matches!(a, TcpAnomaly::MidstreamStart { .. }))
            {
                facts.anomalies.push(TcpAnomaly::MidstreamStart {
                    frame: pkt.frame,
                    at: pkt.ts,
                });
            }
        }
        stats.last_payload_at = Some(pkt.ts);
        if let Some(offset) = stream.offset(seq) {
            let (offset, data) = if offset < 0 {
                // Bytes before the stream's origin (e.g. a retransmission of the SYN's data).
                let skip = (-offset) as usize;
                (0u64, pkt.payload.get(skip..).unwrap_or(&[]))
            } else {
                (offset as u64, pkt.payload)
            };
            let sink = &mut conn.sink;
            let at = pkt.ts;
            stream
                .assembler
                .set_cap(stream_cap.min(budget.saturating_sub(theirs)));
            let r = stream
                .assembler
                .insert(offset, data, &mut |b| sink.data(side, at, b));
            if r.duplicate_bytes > 0 {
                stats.retransmissions += 1;
                if seg_len == stats.largest_segment {
                    stats.largest_segment_retransmissions += 1;
                }
            }
            if r.conflict && facts.anomalies.len() < MAX_TCP_ANOMALIES {
                facts.anomalies.push(TcpAnomaly::OverlapConflict {
                    side,
                    frame: pkt.frame,
                    at: pkt.ts,
                });
            }
            if r.dropped_bytes > 0 && facts.anomalies.len() < MAX_TCP_ANOMALIES {
                facts.anomalies.push(TcpAnomaly::BufferFull {
                    side,
                    frame: pkt.frame,
                    at: pkt.ts,
                    dropped_bytes: r.dropped_bytes,
                });
            }
            if pkt.payload_missing > 0 {
                stats.snaplen_cut_bytes += pkt.payload_missing as u64;
                if stats.snaplen_cut_bytes == pkt.payload_missing as u64 {
                    facts.anomalies.push(TcpAnomaly::SnaplenCut {
                        side,
                        frame: pkt.frame,
                        at: pkt.ts,
                    });
                }
                // The cut bytes will never be seen: skip them now if they are next in line.
                let cut_end = offset + pkt.payload.len() as u64 + pkt.payload_missing as u64;
                if stream.assembler.next_offset() == offset + data.len() as u64 {
                    let skipped = cut_end - stream.assembler.next_offset();
                    sink.gap(side, at, skipped);
                    stream
                        .assembler
                        .skip_hole(Some(cut_end), &mut |b| sink.data(side, at, b));
                } else if stream.cuts.len() < 64 {
                    stream.cuts.push((offset + data.len() as u64, cut_end));
                }
            }
            // Cuts that became next in line are skipped as cuts, not capture gaps.
            while !stream.cuts.is_empty() {
                let next = stream.assembler.next_offset();
                stream.cuts.retain(|c| c.1 > next);
                let Some(&(_, e)) = stream.cuts.iter().find(|c| c.0 <= next) else {
                    break;
                };
                sink.gap(side, at, e - next);
                stream
                    .assembler
                    .skip_hole(Some(e), &mut |b| sink.data(side, at, b));
            }
        }
    }
    if pkt.flags.fin {
        stats.first_fin.get_or_insert(event);
        if stream.fin_offset.is_none() {
            stream.fin_offset = stream
                .offset(seq + payload_len)
                .and_then(|o| u64::try_from(o).ok());
        }
    }
}

/// Notes that `side`'s peer acknowledged bytes of `side` that the capture does not have (yet).
///
/// The hole is not given up at once: a capture point often sees an ACK before the data it
/// acknowledges (mirror ports, `-i any`, multi-queue NICs). It is skipped, and reported as a
/// gap, only once it has stayed open for a while ([`expire_acked_holes`]) or the connection ends.
fn note_acked_hole<S: StreamSink>(
    conn: &mut Conn<S>,
    side: Side,
    ack: SeqNumber,
    pkt: &Packet<'_>,
) {
    let stream = &mut conn.streams[idx(side)];
    let Some(ack_offset) = stream.offset(ack) else {
        return;
    };
    let next = stream.assembler.next_offset() as i64;
    // Ignore nonsense (an ACK from before the origin, or implausibly far ahead).
    if ack_offset <= next || ack_offset - next > (1 << 30) {
        return;
    }
    let mut upto = ack_offset as u64;
    if let Some(fin) = stream.fin_offset {
        upto = upto.min(fin);
    }
    match &mut stream.acked_hole {
        Some(h) => h.upto = h.upto.max(upto),
        None => {
            stream.acked_hole = Some(AckedHole {
                upto,
                since: pkt.ts,
                packets: 0,
            })
        }
    }
}

/// A hole acknowledged but not filled after this much capture time is taken as lost.
const ACKED_HOLE_WAIT: i64 = Timestamp::NANOS_PER_SEC / 2;
/// ... or after this many further packets of the connection.
const ACKED_HOLE_PACKETS: u32 = 32;

/// Gives up the acknowledged holes that stayed open too long (or all, with `force`).
fn expire_acked_holes<S: StreamSink>(
    conn: &mut Conn<S>,
    frame: FrameRef,
    now: Timestamp,
    force: bool,
) {
    for side in [Side::Client, Side::Server] {
        expire_side(conn, side, frame, now, force);
    }
}

fn expire_side<S: StreamSink>(
    conn: &mut Conn<S>,
    side: Side,
    frame: FrameRef,
    now: Timestamp,
    force: bool,
) {
    // A hole can be followed by data and another hole: skip them in turn up to the ACKed point.
    loop {
        let stream = &mut conn.streams[idx(side)];
        let Some(hole) = &mut stream.acked_hole else {
            return;
        };
        let next = stream.assembler.next_offset();
        if next >= hole.upto {
            stream.acked_hole = None;
            return;
        }
        hole.packets += 1;
        let waited = now.0.saturating_sub(hole.since.0);
        if !force && waited < ACKED_HOLE_WAIT && hole.packets < ACKED_HOLE_PACKETS {
            return;
        }
        let upto = hole.upto;
        // Data already waiting fills part of the hole: only skip to the first of it.
        let target = stream
            .assembler
            .first_pending()
            .map_or(upto, |p| p.min(upto));
        if target <= next {
            stream.acked_hole = None;
            return;
        }
        record_gap(conn, side, target - next, frame, now);
        let stream = &mut conn.streams[idx(side)];
        let sink = &mut conn.sink;
        stream
            .assembler
            .skip_hole(Some(target), &mut |b| sink.data(side, now, b));
    }
}

fn record_gap<S: StreamSink>(
    conn: &mut Conn<S>,
    side: Side,
    bytes: u64,
    frame: FrameRef,
    at: Timestamp,
) {
    conn.sink.gap(side, at, bytes);
    let stats = match side {
        Side::Client => &mut conn.facts.from_client,
        Side::Server => &mut conn.facts.from_server,
    };
    stats.gap_bytes += bytes;
    if conn.facts.anomalies.len() < MAX_TCP_ANOMALIES {
        conn.facts.anomalies.push(TcpAnomaly::Gap {
            side,
            frame,
            at,
            bytes,
        });
    }
}

/// Delivers what is still waiting behind holes and returns the connection's facts.
fn finish<S: StreamSink>(mut conn: Conn<S>) -> (TcpConnection, S) {
    let at = conn.facts.last_seen;
    let frame = conn.facts.last_frame;
    expire_acked_holes(&mut conn, frame, at, true);
    for side in [Side::Client, Side::Server] {
        while conn.streams[idx(side)].assembler.first_pending().is_some() {
            let stream = &conn.streams[idx(side)];
            let (Some(p), next) = (
                stream.assembler.first_pending(),
                stream.assembler.next_offset(),
            ) else {
                break;
            };
            record_gap(&mut conn, side, p - next, frame, at);
            let stream = &mut conn.streams[idx(side)];
            let sink = &mut conn.sink;
            stream
                .assembler
                .skip_hole(None, &mut |b| sink.data(side, at, b));
        }
    }
    let f = &mut conn.facts;
    f.open_at_end = f.from_client.first_fin.is_none()
        && f.from_server.first_fin.is_none()
        && f.from_client.first_rst.is_none()
        && f.from_server.first_rst.is_none();
    (conn.facts, conn.sink)
}
