//! IPv4 / IPv6 / TCP decoding of one record into a borrowed [`Packet`].
//!
//! Contract: given a record's bytes and link type, returns either a [`Packet`] that borrows the
//! record (its payload is the TCP payload that was captured, bounded by the IP length so link
//! padding is never payload) or the reason it is not a usable TCP segment. Uses etherparse's lax
//! slicing so packets cut by the snaplen are used as far as they go: `payload_missing` is what
//! the IP length says was sent but not captured. A TCP header cut inside its options still
//! yields a packet from its fixed 20 bytes (ports, sequence numbers, flags, window), because a
//! SYN cut by a small snaplen is still a SYN. Never allocates, never panics.

use etherparse::{IpNumber, LaxIpSlice, TcpSlice, err};

use super::link::{self, Unsupported};
use super::{FrameRef, Packet, TcpFlags};
use crate::types::Timestamp;

/// Why a record was not delivered as a TCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// The record's link type is not decoded.
    UnsupportedLink,
    /// Not IPv4/IPv6 (ARP, LLDP, spanning tree, ...).
    NonIp,
    /// IP but not TCP (UDP, ICMP, ...).
    NonTcp,
    /// An IP fragment (IPv4 MF/offset or an IPv6 fragment header).
    Fragment,
    /// A header that cannot be read: cut before the end of the IP or the fixed TCP header,
    /// a bad version or header length, a broken extension header.
    Undecodable,
}

/// Decodes one record. `frame` and `ts` are copied into the packet.
pub fn decode(
    link_type: u32,
    data: &[u8],
    frame: FrameRef,
    ts: Timestamp,
) -> Result<Packet<'_>, Ignored> {
    let (_version, ip_bytes) = link::network_layer(link_type, data).map_err(|e| match e {
        Unsupported::LinkType => Ignored::UnsupportedLink,
        Unsupported::NotIp => Ignored::NonIp,
        Unsupported::Truncated => Ignored::Undecodable,
    })?;
    let (ip, stop) = LaxIpSlice::from_slice(ip_bytes).map_err(|_| Ignored::Undecodable)?;
    if stop.is_some() {
        return Err(Ignored::Undecodable);
    }
    let ip_payload = ip.payload();
    if ip_payload.fragmented {
        return Err(Ignored::Fragment);
    }
    if ip_payload.ip_number != IpNumber::TCP {
        return Err(Ignored::NonTcp);
    }
    // Bytes of the IP packet its header declares but the capture does not hold.
    let (ttl, ip_id, declared_total) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                h.ttl(),
                Some(h.identification()),
                usize::from(h.total_len()),
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let payload_len = usize::from(h.payload_length());
            // 0 is a jumbogram or an offloaded segment: no length to trust.
            let declared = if payload_len == 0 {
                0
            } else {
                40 + payload_len
            };
            (h.hop_limit(), None, declared)
        }
    };
    let ip_missing = if ip_payload.incomplete {
        declared_total.saturating_sub(ip_bytes.len())
    } else {
        0
    };
    let src = ip.source_addr();
    let dst = ip.destination_addr();
    let segment = ip_payload.payload;

    match TcpSlice::from_slice(segment) {
        Ok(tcp) => Ok(Packet {
            frame,
            ts,
            src,
            dst,
            ttl,
            ip_id,
            src_port: tcp.source_port(),
            dst_port: tcp.destination_port(),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            flags: TcpFlags {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
                psh: tcp.psh(),
            },
            window: tcp.window_size(),
            payload: tcp.payload(),
            payload_missing: saturate_u32(ip_missing),
        }),
        // The snaplen cut the TCP options: the fixed header is still there.
        Err(err::tcp::HeaderSliceError::Len(_)) if ip_payload.incomplete => {
            fixed_tcp_header(segment, ip_missing).map(|fixed| Packet {
                frame,
                ts,
                src,
                dst,
                ttl,
                ip_id,
                src_port: fixed.src_port,
                dst_port: fixed.dst_port,
                seq: fixed.seq,
                ack: fixed.ack,
                flags: fixed.flags,
                window: fixed.window,
                payload: &[],
                payload_missing: fixed.payload_missing,
            })
        }
        Err(_) => Err(Ignored::Undecodable),
    }
}

/// Why [`decode`] found a record [`Ignored::Undecodable`], in words for a note: which header is
/// cut or invalid, as etherparse puts it.
pub fn why_undecodable(link_type: u32, data: &[u8]) -> String {
    let Ok((_, ip_bytes)) = link::network_layer(link_type, data) else {
        return format!(
            "the {} link-layer header is cut ({} bytes)",
            link::name(link_type),
            data.len()
        );
    };
    match LaxIpSlice::from_slice(ip_bytes) {
        Err(e) => format!("invalid IP header: {e}"),
        Ok((_, Some((e, _)))) => format!("invalid IPv6 extension header: {e}"),
        Ok((ip, None)) => match TcpSlice::from_slice(ip.payload().payload) {
            Err(e) => format!("invalid TCP header: {e}"),
            Ok(_) => "headers cut or invalid".to_string(),
        },
    }
}

fn saturate_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

struct FixedTcp {
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    payload_missing: u32,
}

/// The 20-byte fixed TCP header of a segment whose options were cut by the snaplen.
fn fixed_tcp_header(segment: &[u8], ip_missing: usize) -> Result<FixedTcp, Ignored> {
    let h = segment.get(..20).ok_or(Ignored::Undecodable)?;
    let data_offset = usize::from(h[12] >> 4) * 4;
    if data_offset < 20 {
        return Err(Ignored::Undecodable);
    }
    let flags = h[13];
    let declared_segment = segment.len() + ip_missing;
    Ok(FixedTcp {
        src_port: u16::from_be_bytes([h[0], h[1]]),
        dst_port: u16::from_be_bytes([h[2], h[3]]),
        seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        flags: TcpFlags {
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            psh: flags & 0x08 != 0,
            ack: flags & 0x10 != 0,
        },
        window: u16::from_be_bytes([h[14], h[15]]),
        payload_missing: saturate_u32(declared_segment.saturating_sub(data_offset)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use std::net::IpAddr;

    const F: FrameRef = FrameRef { file: 0, number: 1 };

    fn v4_packet(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 61)
            .tcp(40000, 25, 1000, 65000)
            .ack(77)
            .psh();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn ipv4_tcp_fields() {
        let frame = v4_packet(b"EHLO x\r\n");
        let p = decode(1, &frame, F, Timestamp(5)).unwrap();
        assert_eq!(p.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.dst, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(
            (p.src_port, p.dst_port, p.seq, p.ack),
            (40000, 25, 1000, 77)
        );
        assert_eq!(p.ttl, 61);
        assert!(p.ip_id.is_some());
        assert!(p.flags.ack && p.flags.psh && !p.flags.syn && !p.flags.fin && !p.flags.rst);
        assert_eq!(p.window, 65000);
        assert_eq!(p.payload, b"EHLO x\r\n");
        assert_eq!(p.payload_missing, 0);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut frame = v4_packet(b"");
        frame.extend_from_slice(&[0u8; 6]);
        let p = decode(1, &frame, F, Timestamp(0)).unwrap();
        assert!(p.payload.is_empty());
        assert_eq!(p.payload_missing, 0);
    }

    #[test]
    fn snaplen_cut_payload_is_counted_missing() {
        let frame = v4_packet(&[b'x'; 100]);
        let cut = &frame[..frame.len() - 60];
        let p = decode(1, cut, F, Timestamp(0)).unwrap();
        assert_eq!(p.payload.len(), 40);
        assert_eq!(p.payload_missing, 60);
    }

    #[test]
    fn cut_tcp_options_still_give_the_fixed_header() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 25, 1000, 65000)
            .syn()
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460); 1])
            .unwrap();
        let mut frame = Vec::new();
        b.write(&mut frame, b"").unwrap();
        let cut = &frame[..14 + 20 + 21];
        let p = decode(1, cut, F, Timestamp(0)).unwrap();
        assert!(p.flags.syn);
        assert_eq!(p.seq, 1000);
        assert!(p.payload.is_empty());
        assert_eq!(p.payload_missing, 0);
        // A cut inside the fixed header is undecodable.
        assert_eq!(
            decode(1, &frame[..14 + 20 + 10], F, Timestamp(0)).unwrap_err(),
            Ignored::Undecodable
        );
    }

    #[test]
    fn udp_arp_and_fragments_are_ignored() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53);
        let mut udp = Vec::new();
        b.write(&mut udp, b"dns").unwrap();
        assert_eq!(
            decode(1, &udp, F, Timestamp(0)).unwrap_err(),
            Ignored::NonTcp
        );

        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        assert_eq!(
            decode(1, &arp, F, Timestamp(0)).unwrap_err(),
            Ignored::NonIp
        );

        let mut frag = v4_packet(b"data");
        frag[14 + 6] = 0x20; // more fragments
        assert_eq!(
            decode(1, &frag, F, Timestamp(0)).unwrap_err(),
            Ignored::Fragment
        );

        assert_eq!(
            decode(127, &frag, F, Timestamp(0)).unwrap_err(),
            Ignored::UnsupportedLink
        );
    }

    #[test]
    fn ipv6_with_extension_header() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([0x20; 16], [0x21; 16], 57)
            .tcp(25, 50000, 9, 100)
            .fin();
        let mut frame = Vec::new();
        b.write(&mut frame, b"221 bye\r\n").unwrap();
        let p = decode(1, &frame, F, Timestamp(0)).unwrap();
        assert_eq!(p.ttl, 57);
        assert_eq!(p.ip_id, None);
        assert!(p.flags.fin);
        assert_eq!(p.payload, b"221 bye\r\n");

        // Insert a hop-by-hop options header (8 bytes) between IPv6 and TCP.
        let mut with_ext = frame[..14].to_vec();
        let mut ip6 = frame[14..54].to_vec();
        let plen = u16::from_be_bytes([ip6[4], ip6[5]]) + 8;
        ip6[4..6].copy_from_slice(&plen.to_be_bytes());
        ip6[6] = 0; // next header: hop-by-hop
        with_ext.extend_from_slice(&ip6);
        with_ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next: TCP, len 0, PadN
        with_ext.extend_from_slice(&frame[54..]);
        let p = decode(1, &with_ext, F, Timestamp(0)).unwrap();
        assert_eq!(p.payload, b"221 bye\r\n");
        assert_eq!((p.src_port, p.dst_port), (25, 50000));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let frame = v4_packet(b"MAIL FROM:<a@b>\r\n");
        for lt in [0u32, 1, 101, 113, 276, 228, 229] {
            for cut in 0..frame.len() {
                let _ = decode(lt, &frame[..cut], F, Timestamp(0));
                let mut junk = frame[..cut].to_vec();
                for (i, b) in junk.iter_mut().enumerate() {
                    *b ^= (i as u8).wrapping_mul(37);
                }
                let _ = decode(lt, &junk, F, Timestamp(0));
            }
        }
    }
}
