//! Test helpers: a minimal pcap and pcapng writer and packet builders, so the capture tests
//! can make exactly the bytes they need (and other stages' tests can make captures too).
//!
//! Contract: test-only; writes well-formed files unless told to damage them; never used by the
//! program itself.

use etherparse::PacketBuilder;

/// Writes a classic pcap file in memory.
pub struct PcapWriter {
    pub buf: Vec<u8>,
    big_endian: bool,
    pub snaplen: u32,
}

impl PcapWriter {
    /// Little-endian, microsecond pcap.
    pub fn new(link_type: u32, snaplen: u32) -> Self {
        Self::with(link_type, snaplen, false, false)
    }

    pub fn with(link_type: u32, snaplen: u32, big_endian: bool, nanos: bool) -> Self {
        let mut w = PcapWriter {
            buf: Vec::new(),
            big_endian,
            snaplen,
        };
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        w.u32(magic);
        w.u16(2);
        w.u16(4);
        w.u32(0);
        w.u32(0);
        w.u32(snaplen);
        w.u32(link_type);
        w
    }

    fn u16(&mut self, v: u16) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }

    fn u32(&mut self, v: u32) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }

    /// A record with an explicit header (for damaged files); `data` is written as given.
    pub fn raw_record(&mut self, secs: u32, frac: u32, caplen: u32, orig_len: u32, data: &[u8]) {
        self.u32(secs);
        self.u32(frac);
        self.u32(caplen);
        self.u32(orig_len);
        self.buf.extend_from_slice(data);
    }

    /// A packet, cut at the snaplen like libpcap does.
    pub fn packet(&mut self, secs: u32, frac: u32, frame: &[u8]) {
        let cap = frame.len().min(self.snaplen as usize);
        self.raw_record(secs, frac, cap as u32, frame.len() as u32, &frame[..cap]);
    }
}

/// Writes a pcapng file in memory.
pub struct PcapNgWriter {
    pub buf: Vec<u8>,
    big_endian: bool,
}

impl PcapNgWriter {
    pub fn new(big_endian: bool) -> Self {
        let mut w = PcapNgWriter {
            buf: Vec::new(),
            big_endian,
        };
        w.section();
        w
    }

    fn e32(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn e16(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A block with the given type and body (padded to 32 bits here).
    pub fn block(&mut self, block_type: u32, body: &[u8]) {
        let pad = (4 - body.len() % 4) % 4;
        let total = (12 + body.len() + pad) as u32;
        let (t, l) = (self.e32(block_type), self.e32(total));
        self.buf.extend_from_slice(&t);
        self.buf.extend_from_slice(&l);
        self.buf.extend_from_slice(body);
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self.buf.extend_from_slice(&l);
    }

    /// A new section header block (interfaces start again from 0).
    pub fn section(&mut self) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.e32(0x1a2b_3c4d));
        body.extend_from_slice(&self.e16(1));
        body.extend_from_slice(&self.e16(0));
        body.extend_from_slice(&[0xff; 8]); // section length unknown
        self.block(0x0a0d_0d0a, &body);
    }

    /// An interface description; `tsresol` is the raw if_tsresol option byte, `tsoffset` the
    /// if_tsoffset option (seconds).
    pub fn interface(
        &mut self,
        link_type: u16,
        snaplen: u32,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.e16(link_type));
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.e32(snaplen));
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.e16(9));
            body.extend_from_slice(&self.e16(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            body.extend_from_slice(&self.e16(14));
            body.extend_from_slice(&self.e16(8));
            let b = if self.big_endian {
                o.to_be_bytes()
            } else {
                o.to_le_bytes()
            };
            body.extend_from_slice(&b);
        }
        if tsresol.is_some() || tsoffset.is_some() {
            body.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        }
        self.block(1, &body);
    }

    /// An enhanced packet block with `ticks` in the interface's resolution, cut to `caplen`.
    pub fn epb(&mut self, if_id: u32, ticks: u64, frame: &[u8], caplen: usize) {
        let cap = caplen.min(frame.len());
        let mut body = Vec::new();
        body.extend_from_slice(&self.e32(if_id));
        body.extend_from_slice(&self.e32((ticks >> 32) as u32));
        body.extend_from_slice(&self.e32(ticks as u32));
        body.extend_from_slice(&self.e32(cap as u32));
        body.extend_from_slice(&self.e32(frame.len() as u32));
        body.extend_from_slice(&frame[..cap]);
        self.block(6, &body);
    }

    /// A simple packet block (interface 0, no timestamp).
    pub fn spb(&mut self, frame: &[u8]) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.e32(frame.len() as u32));
        body.extend_from_slice(frame);
        self.block(3, &body);
    }
}

/// An IPv4 TCP packet (no link header).
pub fn ipv4_tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65535)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("build ipv4");
    v
}

/// An IPv6 TCP packet (no link header).
pub fn ipv6_tcp(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ipv6(src, dst, 64)
        .tcp(sport, dport, seq, 65535)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("build ipv6");
    v
}

/// An Ethernet frame carrying IPv4 TCP, with 0, 1 or 2 VLAN tags (PacketBuilder).
pub fn eth_ipv4_tcp(vlans: &[u16], sport: u16, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    use etherparse::VlanId;
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let (src, dst) = ([192, 0, 2, 1], [192, 0, 2, 25]);
    let mut v = Vec::new();
    match vlans {
        [] => eth
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, 65535)
            .ack(1)
            .write(&mut v, payload),
        [a] => eth
            .single_vlan(VlanId::try_new(*a).expect("vlan"))
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, 65535)
            .ack(1)
            .write(&mut v, payload),
        [a, b, ..] => eth
            .double_vlan(
                VlanId::try_new(*a).expect("vlan"),
                VlanId::try_new(*b).expect("vlan"),
            )
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, 65535)
            .ack(1)
            .write(&mut v, payload),
    }
    .expect("build ethernet");
    v
}

/// An Ethernet frame carrying IPv6 TCP.
pub fn eth_ipv6_tcp(sport: u16, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25],
            64,
        )
        .tcp(sport, dport, seq, 65535)
        .ack(1)
        .write(&mut v, payload)
        .expect("build ethernet ipv6");
    v
}

/// A Linux cooked (SLL, 16 bytes) header in front of an IP packet.
pub fn sll(ethertype: u16, ip: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

/// A Linux cooked v2 (SLL2, 20 bytes) header in front of an IP packet.
pub fn sll2(ethertype: u16, ip: &[u8]) -> Vec<u8> {
    let mut v = ethertype.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0]); // reserved
    v.extend_from_slice(&3u32.to_be_bytes()); // ifindex
    v.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    v.push(0); // packet type: to us
    v.push(6); // address length
    v.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
    v.extend_from_slice(ip);
    v
}

/// A BSD loopback header (address family) in front of an IP packet.
pub fn null(family: u32, big_endian: bool, ip: &[u8]) -> Vec<u8> {
    let mut v = if big_endian {
        family.to_be_bytes().to_vec()
    } else {
        family.to_le_bytes().to_vec()
    };
    v.extend_from_slice(ip);
    v
}
