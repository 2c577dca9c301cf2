//! Link layers: from a record's bytes and its link type to the IP packet inside.
//!
//! Contract: knows the link types a Cisco appliance capture (or a capture made elsewhere in the
//! path) can have — Ethernet with any number of 802.1Q / 802.1ad / QinQ tags, Linux cooked SLL
//! and SLL2, raw IP (101, and the legacy 12 and 14), IPV4 (228), IPV6 (229), BSD loopback NULL
//! (0) and LOOP (108) with the address family in either byte order — and names link types the
//! way libpcap does ("EN10MB", "LINUX_SLL2"). It returns a borrowed slice of the record, never
//! copies, and never panics on short or odd input: anything it cannot follow is an
//! [`Unsupported`] answer the caller counts.

/// Link type numbers (LINKTYPE_* values as stored in pcap and pcapng files).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const EN10MB: u32 = 1;
    pub const RAW_LEGACY_12: u32 = 12;
    pub const RAW_LEGACY_14: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// True when [`network_layer`] can decode this link type.
pub fn is_supported(link_type: u32) -> bool {
    use linktype::*;
    matches!(
        link_type,
        NULL | EN10MB
            | RAW_LEGACY_12
            | RAW_LEGACY_14
            | RAW
            | LOOP
            | LINUX_SLL
            | IPV4
            | IPV6
            | LINUX_SLL2
    )
}

/// libpcap's name of a link type (`pcap_datalink_val_to_name`), or `LINKTYPE_<n>`.
pub fn name(link_type: u32) -> String {
    let known = match link_type {
        0 => "NULL",
        1 => "EN10MB",
        6 => "IEEE802",
        9 => "PPP",
        10 => "FDDI",
        12 | 14 | 101 => "RAW",
        50 => "PPP_HDLC",
        51 => "PPP_ETHER",
        104 => "C_HDLC",
        105 => "IEEE802_11",
        108 => "LOOP",
        113 => "LINUX_SLL",
        119 => "PRISM_HEADER",
        127 => "IEEE802_11_RADIO",
        147..=162 => return format!("USER{}", link_type - 147),
        163 => "IEEE802_11_RADIO_AVS",
        189 => "USB_LINUX",
        192 => "PPI",
        220 => "USB_LINUX_MMAPPED",
        228 => "IPV4",
        229 => "IPV6",
        239 => "NFLOG",
        249 => "USBPCAP",
        252 => "WIRESHARK_UPPER_PDU",
        253 => "NETLINK",
        276 => "LINUX_SLL2",
        _ => return format!("LINKTYPE_{link_type}"),
    };
    known.to_string()
}

/// The IP version the link layer announced for the bytes it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    V6,
}

/// Why a record holds no IP packet this stage can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// The link type is not one [`is_supported`] accepts.
    LinkType,
    /// A supported link layer carrying something other than IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// The link header itself is cut short.
    Truncated,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_QINQ_OLD2: u16 = 0x9200;
/// More stacked tags than this is not a real frame.
const MAX_VLAN_TAGS: usize = 8;

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Strips the link layer of `data` (a record of link type `link_type`) and returns the IP
/// packet it carries, borrowed from `data`.
pub fn network_layer(link_type: u32, data: &[u8]) -> Result<(IpVersion, &[u8]), Unsupported> {
    use linktype::*;
    match link_type {
        EN10MB => {
            let ethertype = be16(data, 12).ok_or(Unsupported::Truncated)?;
            let rest = data.get(14..).ok_or(Unsupported::Truncated)?;
            by_ethertype(ethertype, rest)
        }
        LINUX_SLL => {
            // packet type (2), ARPHRD (2), address length (2), address (8), protocol (2)
            let proto = be16(data, 14).ok_or(Unsupported::Truncated)?;
            let rest = data.get(16..).ok_or(Unsupported::Truncated)?;
            by_ethertype(proto, rest)
        }
        LINUX_SLL2 => {
            // protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
            // address length (1), address (8)
            let proto = be16(data, 0).ok_or(Unsupported::Truncated)?;
            let rest = data.get(20..).ok_or(Unsupported::Truncated)?;
            by_ethertype(proto, rest)
        }
        RAW | RAW_LEGACY_12 | RAW_LEGACY_14 => by_version_nibble(data),
        IPV4 => Ok((IpVersion::V4, data)),
        IPV6 => Ok((IpVersion::V6, data)),
        NULL | LOOP => {
            let fam = data.get(..4).ok_or(Unsupported::Truncated)?;
            let fam: [u8; 4] = [fam[0], fam[1], fam[2], fam[3]];
            let rest = data.get(4..).ok_or(Unsupported::Truncated)?;
            // The family is in the writer's host byte order for NULL (network order for
            // LOOP, by the book, but writers disagree): accept either.
            let version = family(u32::from_le_bytes(fam)).or(family(u32::from_be_bytes(fam)));
            match version {
                Some(v) => Ok((v, rest)),
                None => Err(Unsupported::NotIp),
            }
        }
        _ => Err(Unsupported::LinkType),
    }
}

/// BSD address families: AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (OpenBSD,
/// NetBSD), 28 (FreeBSD), 30 (macOS).
fn family(af: u32) -> Option<IpVersion> {
    match af {
        2 => Some(IpVersion::V4),
        10 | 24 | 28 | 30 => Some(IpVersion::V6),
        _ => None,
    }
}

fn by_version_nibble(data: &[u8]) -> Result<(IpVersion, &[u8]), Unsupported> {
    match data.first().map(|b| b >> 4) {
        Some(4) => Ok((IpVersion::V4, data)),
        Some(6) => Ok((IpVersion::V6, data)),
        Some(_) => Err(Unsupported::NotIp),
        None => Err(Unsupported::Truncated),
    }
}

fn by_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Result<(IpVersion, &[u8]), Unsupported> {
    for _ in 0..=MAX_VLAN_TAGS {
        match ethertype {
            ETHERTYPE_IPV4 => return Ok((IpVersion::V4, rest)),
            ETHERTYPE_IPV6 => return Ok((IpVersion::V6, rest)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD | ETHERTYPE_QINQ_OLD2 => {
                // tag control information (2), then the next ethertype (2)
                ethertype = be16(rest, 2).ok_or(Unsupported::Truncated)?;
                rest = rest.get(4..).ok_or(Unsupported::Truncated)?;
            }
            _ => return Err(Unsupported::NotIp),
        }
    }
    Err(Unsupported::NotIp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: u16, tags: &[u16], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        let mut types: Vec<u16> = tags.to_vec();
        types.push(ethertype);
        for (i, t) in types.iter().enumerate() {
            v.extend_from_slice(&t.to_be_bytes());
            if i + 1 < types.len() {
                v.extend_from_slice(&[0x00, 0x64]); // TCI: VLAN 100
            }
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn ethernet_with_and_without_tags() {
        let ip = [0x45u8, 0, 0, 20];
        let f = eth(0x0800, &[], &ip);
        assert_eq!(network_layer(1, &f), Ok((IpVersion::V4, &ip[..])));
        let f = eth(0x86dd, &[0x8100], &ip);
        assert_eq!(network_layer(1, &f), Ok((IpVersion::V6, &ip[..])));
        let f = eth(0x0800, &[0x88a8, 0x8100], &ip);
        assert_eq!(network_layer(1, &f), Ok((IpVersion::V4, &ip[..])));
        let f = eth(0x0800, &[0x9100, 0x8100], &ip);
        assert_eq!(network_layer(1, &f), Ok((IpVersion::V4, &ip[..])));
        let f = eth(0x0806, &[], &ip);
        assert_eq!(network_layer(1, &f), Err(Unsupported::NotIp));
        let tags = [0x8100u16; 12];
        let f = eth(0x0800, &tags, &ip);
        assert_eq!(network_layer(1, &f), Err(Unsupported::NotIp));
    }

    #[test]
    fn short_inputs_never_panic() {
        for lt in [0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276, 127] {
            for len in 0..40 {
                let data = vec![0x81u8; len];
                let _ = network_layer(lt, &data);
            }
        }
        let f = eth(0x8100, &[], &[0x00]);
        assert_eq!(network_layer(1, &f), Err(Unsupported::Truncated));
        assert_eq!(network_layer(1, &[0; 13]), Err(Unsupported::Truncated));
    }

    #[test]
    fn loopback_family_in_either_byte_order() {
        let ip = [0x60u8, 0, 0, 0];
        for fam in [2u32, 10, 24, 28, 30] {
            for bytes in [fam.to_le_bytes(), fam.to_be_bytes()] {
                let mut f = bytes.to_vec();
                f.extend_from_slice(&ip);
                let want = if fam == 2 {
                    IpVersion::V4
                } else {
                    IpVersion::V6
                };
                assert_eq!(network_layer(0, &f), Ok((want, &ip[..])));
                assert_eq!(network_layer(108, &f), Ok((want, &ip[..])));
            }
        }
        let mut f = 7u32.to_le_bytes().to_vec();
        f.extend_from_slice(&ip);
        assert_eq!(network_layer(0, &f), Err(Unsupported::NotIp));
    }

    #[test]
    fn raw_ip_by_version_nibble() {
        assert_eq!(
            network_layer(101, &[0x45, 1]),
            Ok((IpVersion::V4, &[0x45u8, 1][..]))
        );
        assert_eq!(
            network_layer(12, &[0x60, 1]),
            Ok((IpVersion::V6, &[0x60u8, 1][..]))
        );
        assert_eq!(network_layer(14, &[0x10]), Err(Unsupported::NotIp));
        assert_eq!(network_layer(101, &[]), Err(Unsupported::Truncated));
    }

    #[test]
    fn names_as_libpcap_spells_them() {
        assert_eq!(name(1), "EN10MB");
        assert_eq!(name(276), "LINUX_SLL2");
        assert_eq!(name(113), "LINUX_SLL");
        assert_eq!(name(101), "RAW");
        assert_eq!(name(150), "USER3");
        assert_eq!(name(4000), "LINKTYPE_4000");
        assert!(is_supported(276) && is_supported(0) && !is_supported(127));
    }
}
