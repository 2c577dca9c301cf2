//! ICMP messages that speak about a TCP connection's path: IPv4 "fragmentation needed" (type 3
//! code 4) and ICMPv6 "packet too big" (type 2).
//!
//! Contract: [`path_mtu_signal`] reads a raw record and, when it is such a message, returns the
//! router that sent it, the MTU it announces, and the TCP endpoints of the packet it quotes (the
//! quoted IP header plus the first 8 bytes of TCP). It knows nothing of flows; the flow stage
//! attributes the signal to a connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::link::{self, IpVersion};
use super::{FrameRef, RawRecord};
use crate::types::Timestamp;

/// A router saying a packet was too big for the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathMtuSignal {
    pub frame: FrameRef,
    pub ts: Timestamp,
    /// The router that sent the ICMP message.
    pub router: IpAddr,
    /// The next-hop MTU it announces (0 when the router left it out).
    pub mtu: u32,
    /// Source and destination of the quoted (too big) TCP packet.
    pub quoted_src: SocketAddr,
    pub quoted_dst: SocketAddr,
}

const IPPROTO_TCP: u8 = 6;

/// The signal in `rec`, if it is one.
pub fn path_mtu_signal(rec: &RawRecord<'_>) -> Option<PathMtuSignal> {
    let (version, ip) = link::network_layer(rec.link_type, rec.data).ok()?;
    let (router, icmp, mtu) = match version {
        IpVersion::V4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ip.get(9) != Some(&1) || ihl < 20 {
                return None;
            }
            let src = Ipv4Addr::new(*ip.get(12)?, *ip.get(13)?, *ip.get(14)?, *ip.get(15)?);
            let icmp = ip.get(ihl..)?;
            if icmp.first() != Some(&3) || icmp.get(1) != Some(&4) {
                return None;
            }
            let mtu = u32::from(u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]));
            (IpAddr::V4(src), icmp.get(8..)?, mtu)
        }
        IpVersion::V6 => {
            // Only ICMPv6 right after the fixed header (no extension headers before it).
            if ip.get(6) != Some(&58) {
                return None;
            }
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let icmp = ip.get(40..)?;
            if icmp.first() != Some(&2) {
                return None;
            }
            let mtu = u32::from_be_bytes(icmp.get(4..8)?.try_into().ok()?);
            (IpAddr::V6(Ipv6Addr::from(src)), icmp.get(8..)?, mtu)
        }
    };
    let (quoted_src, quoted_dst) = quoted_tcp(icmp)?;
    Some(PathMtuSignal {
        frame: rec.frame,
        ts: rec.ts,
        router,
        mtu,
        quoted_src,
        quoted_dst,
    })
}

/// The TCP endpoints of the packet an ICMP error quotes.
fn quoted_tcp(q: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let (src, dst, tcp) = match q.first()? >> 4 {
        4 => {
            let ihl = usize::from(q.first()? & 0x0f) * 4;
            if q.get(9) != Some(&IPPROTO_TCP) || ihl < 20 {
                return None;
            }
            let s: [u8; 4] = q.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = q.get(16..20)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), q.get(ihl..)?)
        }
        6 => {
            if q.get(6) != Some(&IPPROTO_TCP) {
                return None;
            }
            let s: [u8; 16] = q.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = q.get(24..40)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), q.get(40..)?)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]);
    let dport = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    Some((SocketAddr::new(src, sport), SocketAddr::new(dst, dport)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: &[u8]) -> RawRecord<'_> {
        RawRecord {
            frame: FrameRef { file: 0, number: 7 },
            ts: Timestamp::from_secs(1),
            link_type: 101, // raw IP
            data,
            orig_len: data.len() as u32,
            packet: None,
        }
    }

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        v.extend(src);
        v.extend(dst);
        v.extend(payload);
        v
    }

    #[test]
    fn fragmentation_needed_names_the_quoted_connection() {
        let mut tcp = vec![0x9c, 0x40, 0, 25]; // 40000 -> 25
        tcp.extend([0, 0, 0, 1]);
        let quoted = ipv4(6, [198, 51, 100, 10], [192, 0, 2, 25], &tcp);
        let mut icmp = vec![3, 4, 0, 0, 0, 0, 0x03, 0xe8]; // MTU 1000
        icmp.extend(&quoted);
        let pkt = ipv4(1, [198, 51, 100, 1], [198, 51, 100, 10], &icmp);
        let s = path_mtu_signal(&record(&pkt)).unwrap();
        assert_eq!(s.mtu, 1000);
        assert_eq!(s.router.to_string(), "198.51.100.1");
        assert_eq!(s.quoted_src.to_string(), "198.51.100.10:40000");
        assert_eq!(s.quoted_dst.to_string(), "192.0.2.25:25");
    }

    #[test]
    fn other_icmp_and_cut_messages_are_not_signals() {
        let echo = ipv4(
            1,
            [198, 51, 100, 1],
            [198, 51, 100, 10],
            &[8, 0, 0, 0, 0, 0, 0, 0],
        );
        assert!(path_mtu_signal(&record(&echo)).is_none());
        let cut = ipv4(
            1,
            [198, 51, 100, 1],
            [198, 51, 100, 10],
            &[3, 4, 0, 0, 0, 0, 3],
        );
        assert!(path_mtu_signal(&record(&cut)).is_none());
        for n in 0..cut.len() {
            let _ = path_mtu_signal(&record(&cut[..n]));
        }
    }
}
