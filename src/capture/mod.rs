//! Stage 1: capture files to decoded TCP/IP packets.
//!
//! Contract: reads pcap and pcapng (plain, gzip, stdin), several files merged in time order,
//! optionally through a BPF filter, and hands each TCP segment to the caller as a borrowed
//! [`Packet`] view that lives only for the callback. It knows nothing of flows or SMTP. Damage in
//! a file stops that file only; everything decoded before it has been delivered, and the damage
//! is returned as data ([`FileSummary::damage`]).

use std::net::IpAddr;

use serde::Serialize;

use crate::types::Timestamp;

/// Where a packet came from: which input file (index into the inputs) and which record in it
/// (1-based, as Wireshark numbers frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FrameRef {
    pub file: u16,
    pub number: u64,
}

/// TCP header flags that matter to the flow stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

/// A TCP segment as seen on the wire, borrowed from the record it was decoded from.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub frame: FrameRef,
    pub ts: Timestamp,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification; `None` for IPv6.
    pub ip_id: Option<u16>,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// Payload bytes the IP header says were sent but the snaplen cut off.
    pub payload_missing: u32,
}
