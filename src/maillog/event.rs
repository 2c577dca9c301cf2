//! Typed events: the message part of one mail-log record (the text after `Level: `) turned into
//! an [`Event`].
//!
//! Contract: [`classify`] is a pure, total function of the message text. It never fails: text
//! that matches none of the templates of `docs/esa-mail-logs.md` section 5 is
//! [`Event::Unknown`]. Matching is hand-written prefix matching (no regex, no allocation for
//! lines that carry no kept value). Lines of the delivery side (DCID, RCID, quarantine) are
//! recognised as [`Event::Delivery`] and otherwise ignored; any other `MID {mid} …` line is
//! post-reception noise ([`Event::MidNote`]), except when it starts with a keyword of a lifecycle
//! template (`ICID`, `ready`, `queued`, `Message-ID`, `Subject`, `RID`) but does not parse: then it
//! is `Unknown`, so that a broken lifecycle line is never silently swallowed as noise.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Serialize, Serializer};

/// An address as printed in the log: an IP when it parses as one, the raw text otherwise
/// (documentation examples print `y.y.y.y`). Serialized as a string either way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostAddr {
    Ip(IpAddr),
    Text(String),
}

impl HostAddr {
    /// Parses `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]` and `IPv6:2001:db8::1`; keeps anything
    /// else as text.
    pub fn parse(s: &str) -> HostAddr {
        let t = s.trim_fast();
        let inner = t
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(t);
        let inner = strip_prefix_ci(inner, "IPv6:").unwrap_or(inner);
        if let Some(v4) = dotted_quad(inner) {
            return HostAddr::Ip(IpAddr::V4(v4));
        }
        match inner.parse::<IpAddr>() {
            Ok(ip) => HostAddr::Ip(ip),
            Err(_) => HostAddr::Text(t.to_string()),
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            HostAddr::Ip(ip) => Some(*ip),
            HostAddr::Text(_) => None,
        }
    }
}

/// The common IPv4 form, `a.b.c.d` with each part 0 to 255 and no leading zero, read
/// directly; anything else (`None`) is left to the standard parser, which reads these the same.
fn dotted_quad(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let mut o = [0u8; 4];
    let mut i = 0;
    for (k, part) in o.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while i < b.len() && i - start < 3 && b[i].is_ascii_digit() {
            v = v * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        let n = i - start;
        if n == 0 || v > 255 || (n > 1 && b[start] == b'0') {
            return None;
        }
        *part = v as u8;
    }
    (i == b.len()).then(|| Ipv4Addr::from(o))
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddr::Ip(ip) => write!(f, "{ip}"),
            HostAddr::Text(t) => f.write_str(t),
        }
    }
}

impl Serialize for HostAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The HAT action of a connection (`ICID … ACCEPT SG …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HatPolicy {
    Accept,
    Relay,
    Reject,
    TcpRefuse,
    Continue,
    /// Another upper-case word in the action position.
    Other(String),
}

impl HatPolicy {
    fn parse(word: &str) -> Option<HatPolicy> {
        Some(match word {
            "ACCEPT" => HatPolicy::Accept,
            "RELAY" => HatPolicy::Relay,
            "REJECT" => HatPolicy::Reject,
            "TCPREFUSE" | "TCP-REFUSE" | "TCP_REFUSE" => HatPolicy::TcpRefuse,
            "CONTINUE" => HatPolicy::Continue,
            w if !w.is_empty()
                && w.bytes()
                    .all(|c| c.is_ascii_uppercase() || c == b'_' || c == b'-') =>
            {
                HatPolicy::Other(w.to_string())
            }
            _ => return None,
        })
    }

    /// REJECT and TCPREFUSE: the connection was refused by policy.
    pub fn is_reject(&self) -> bool {
        matches!(self, HatPolicy::Reject | HatPolicy::TcpRefuse)
    }
}

/// A SenderBase reputation score as logged.
#[derive(Debug, Clone, PartialEq)]
pub enum Sbrs {
    Score(f64),
    /// `SBRS None`: no score available.
    None,
    /// `SBRS not enabled`.
    NotEnabled,
    /// Anything else, verbatim (e.g. `rfc1918`).
    Other(String),
}

impl Sbrs {
    fn parse(s: &str) -> Sbrs {
        let s = s.trim_fast();
        if s.eq_ignore_ascii_case("none") {
            Sbrs::None
        } else if s.eq_ignore_ascii_case("not enabled") {
            Sbrs::NotEnabled
        } else if let Some(v) = simple_decimal(s).or_else(|| s.parse::<f64>().ok()) {
            Sbrs::Score(v)
        } else {
            Sbrs::Other(s.to_string())
        }
    }
}

/// A short decimal (`-7.5`, `10.0`, `3`) read as `str::parse::<f64>` reads it: an integer
/// of at most 15 digits divided by an exact power of ten is correctly rounded by the one
/// division. Anything else is `None` (and left to `parse`).
fn simple_decimal(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let mut n: u64 = 0;
    let mut count = 0;
    let mut frac: Option<usize> = None;
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                n = n * 10 + u64::from(c - b'0');
                count += 1;
                if let Some(f) = &mut frac {
                    *f += 1;
                }
            }
            b'.' if frac.is_none() => frac = Some(0),
            _ => return None,
        }
        if count > 15 {
            return None;
        }
    }
    // Digits on both sides of a point, or an integer.
    if count == 0 || frac == Some(0) || (frac.is_some() && digits.first() == Some(&b'.')) {
        return None;
    }
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let v = n as f64 / POW10[frac.unwrap_or(0)];
    Some(if neg { -v } else { v })
}

/// A number for a score, `"none"` / `"not_enabled"` / the raw text otherwise.
impl Serialize for Sbrs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Sbrs::Score(v) => s.serialize_f64(*v),
            Sbrs::None => s.serialize_str("none"),
            Sbrs::NotEnabled => s.serialize_str("not_enabled"),
            Sbrs::Other(t) => s.serialize_str(t),
        }
    }
}

/// Why a message was aborted (`Message aborted MID {mid} {reason}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortReason {
    /// `Receiving aborted`: the connection went away or the listener timed out.
    ReceivingAborted,
    /// `Receiving aborted by sender`: the client ended the transaction at SMTP level.
    ReceivingAbortedBySender,
    /// Any other reason, verbatim (`Dropped by CASE`, `Injection aborted`, …).
    Other(String),
}

impl AbortReason {
    fn parse(s: &str) -> AbortReason {
        let s = s.trim_fast();
        if s.eq_ignore_ascii_case("Receiving aborted by sender") {
            AbortReason::ReceivingAbortedBySender
        } else if s.eq_ignore_ascii_case("Receiving aborted") {
            AbortReason::ReceivingAborted
        } else {
            AbortReason::Other(s.to_string())
        }
    }

    /// The two reception aborts (as opposed to policy drops after `ready`).
    pub fn is_receiving(&self) -> bool {
        matches!(
            self,
            AbortReason::ReceivingAborted | AbortReason::ReceivingAbortedBySender
        )
    }
}

/// The terminal word of `Message finished MID {mid} …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    Done,
    Aborted,
    Other(String),
}

/// The connect line (`New SMTP ICID …`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connect {
    pub icid: u64,
    /// Listener interface name; may contain spaces.
    pub interface: String,
    /// Listener interface IP; absent in the very old form.
    pub interface_ip: Option<HostAddr>,
    pub remote_ip: HostAddr,
    /// Reverse DNS name; `None` for `unknown` or the old form.
    pub rdns: Option<String>,
    /// `verified yes|no`.
    pub verified: Option<bool>,
}

/// The HAT verdict line (`ICID … ACCEPT SG … match … SBRS …`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hat {
    pub icid: u64,
    pub policy: HatPolicy,
    pub sender_group: String,
    /// What matched (may be empty).
    pub matched: String,
    pub sbrs: Option<Sbrs>,
    /// `None` when absent or `not enabled`.
    pub country: Option<String>,
}

/// Old-release ICID lines that are parsed if present (section 5, "historic").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IcidNoteKind {
    ReceivingFailed,
    Disconnected,
    UnknownCommand,
    SmtpAuth,
}

/// Delivery-side lines: recognised, not interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    NewDcid,
    DeliveryStart,
    MessageDone,
    Response,
    Delayed,
    Bounced,
    Pending,
    /// Any other `DCID {dcid} …` line (TLS, close, …).
    Dcid,
    /// `RPC Delivery start RCID …`, `RPC Message done RCID …`.
    Rpc,
    /// `EUQ: Quarantined MID …`, `ISQ: Tagging MID …`.
    Quarantine,
}

/// One mail-log record, typed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// `Begin Logfile` / `End Logfile`.
    LogfileMarker,
    /// `Version: {ver} SN: {serial}`.
    Version {
        version: String,
        serial: Option<String>,
    },
    /// `Time offset from UTC: {n} seconds` (local = UTC + n).
    TimeOffset {
        seconds: i64,
    },
    Connect(Box<Connect>),
    Hat(Box<Hat>),
    /// Old releases: `ICID {icid} SBRS {score}` without a HAT verdict.
    Sbrs {
        icid: u64,
        sbrs: Sbrs,
    },
    Tls {
        icid: u64,
        success: bool,
        protocol: Option<String>,
        cipher: Option<String>,
    },
    DelayedReject {
        icid: u64,
        detail: String,
    },
    SenderRejected {
        icid: u64,
        address: String,
        reason: String,
    },
    Lost {
        icid: u64,
    },
    Close {
        icid: u64,
    },
    IcidNote {
        icid: u64,
        note: IcidNoteKind,
        text: String,
    },
    Start {
        mid: u64,
        icid: u64,
    },
    From {
        mid: u64,
        icid: u64,
        address: String,
    },
    To {
        mid: u64,
        icid: u64,
        rid: u32,
        /// `None` when the line stops after `To:`.
        address: Option<String>,
    },
    ToRejected {
        mid: u64,
        icid: u64,
        address: String,
        by: String,
    },
    MessageId {
        mid: u64,
        id: String,
    },
    Subject {
        mid: u64,
        subject: String,
    },
    Ready {
        mid: u64,
        bytes: u64,
        from: Option<String>,
    },
    Queued {
        mid: u64,
    },
    Aborted {
        mid: u64,
        reason: AbortReason,
    },
    Finished {
        mid: u64,
        finish: Finish,
    },
    /// Any other `MID {mid} …` line: post-reception noise attached to the MID.
    MidNote {
        mid: u64,
    },
    Delivery {
        delivery: DeliveryKind,
        mid: Option<u64>,
        dcid: Option<u64>,
    },
    /// A record of another log subscription received on the same stream (status, system,
    /// gui_logs, injection debug, …): counted and ignored.
    OtherSubscription,
    /// A mail-log record that matches no known template: counted, sampled, ignored.
    Unknown,
}

/// Stable snake_case names of the event kinds, indexed by [`Event::kind_index`].
pub const EVENT_KINDS: [&str; 26] = [
    "logfile_marker",
    "version",
    "time_offset",
    "connect",
    "hat",
    "sbrs",
    "tls",
    "delayed_reject",
    "sender_rejected",
    "lost",
    "close",
    "icid_note",
    "start",
    "from",
    "to",
    "to_rejected",
    "message_id",
    "subject",
    "ready",
    "queued",
    "aborted",
    "finished",
    "mid_note",
    "delivery",
    "other_subscription",
    "unknown",
];

impl Event {
    /// Index of this kind in [`EVENT_KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            Event::LogfileMarker => 0,
            Event::Version { .. } => 1,
            Event::TimeOffset { .. } => 2,
            Event::Connect(_) => 3,
            Event::Hat(_) => 4,
            Event::Sbrs { .. } => 5,
            Event::Tls { .. } => 6,
            Event::DelayedReject { .. } => 7,
            Event::SenderRejected { .. } => 8,
            Event::Lost { .. } => 9,
            Event::Close { .. } => 10,
            Event::IcidNote { .. } => 11,
            Event::Start { .. } => 12,
            Event::From { .. } => 13,
            Event::To { .. } => 14,
            Event::ToRejected { .. } => 15,
            Event::MessageId { .. } => 16,
            Event::Subject { .. } => 17,
            Event::Ready { .. } => 18,
            Event::Queued { .. } => 19,
            Event::Aborted { .. } => 20,
            Event::Finished { .. } => 21,
            Event::MidNote { .. } => 22,
            Event::Delivery { .. } => 23,
            Event::OtherSubscription => 24,
            Event::Unknown => 25,
        }
    }

    /// The snake_case kind name.
    pub fn kind(&self) -> &'static str {
        EVENT_KINDS[self.kind_index()]
    }

    /// The ICID a connection-scoped event belongs to.
    pub fn icid(&self) -> Option<u64> {
        match self {
            Event::Connect(c) => Some(c.icid),
            Event::Hat(h) => Some(h.icid),
            Event::Sbrs { icid, .. }
            | Event::Tls { icid, .. }
            | Event::DelayedReject { icid, .. }
            | Event::SenderRejected { icid, .. }
            | Event::Lost { icid }
            | Event::Close { icid }
            | Event::IcidNote { icid, .. } => Some(*icid),
            Event::Start { icid, .. }
            | Event::From { icid, .. }
            | Event::To { icid, .. }
            | Event::ToRejected { icid, .. } => Some(*icid),
            _ => None,
        }
    }

    /// The MID a message-scoped event belongs to.
    pub fn mid(&self) -> Option<u64> {
        match self {
            Event::Start { mid, .. }
            | Event::From { mid, .. }
            | Event::To { mid, .. }
            | Event::ToRejected { mid, .. }
            | Event::MessageId { mid, .. }
            | Event::Subject { mid, .. }
            | Event::Ready { mid, .. }
            | Event::Queued { mid }
            | Event::Aborted { mid, .. }
            | Event::Finished { mid, .. }
            | Event::MidNote { mid } => Some(*mid),
            Event::Delivery { mid, .. } => *mid,
            _ => None,
        }
    }

    /// How strictly the text matched, for choosing between ways of joining a wrapped line:
    /// 0 unknown, 1 matched only through a free-text fallback (an abort reason or finish word
    /// that is not one of the known ones, an unknown HAT action or score, an address with a
    /// space in it, a noise line), 2 a strict match.
    pub fn parse_quality(&self) -> u8 {
        let spaced = |a: &str| a.contains(char::is_whitespace);
        match self {
            Event::Unknown | Event::OtherSubscription => 0,
            Event::MidNote { .. } | Event::Delivery { .. } => 1,
            Event::Aborted {
                reason: AbortReason::Other(_),
                ..
            }
            | Event::Finished {
                finish: Finish::Other(_),
                ..
            } => 1,
            Event::Hat(h)
                if matches!(h.policy, HatPolicy::Other(_))
                    || matches!(h.sbrs, Some(Sbrs::Other(_))) =>
            {
                1
            }
            Event::Connect(c)
                if c.rdns.as_deref().is_some_and(spaced)
                    || matches!(&c.interface_ip, Some(HostAddr::Text(t)) if spaced(t)) =>
            {
                1
            }
            Event::From { address, .. }
            | Event::ToRejected { address, .. }
            | Event::SenderRejected { address, .. }
                if spaced(address) =>
            {
                1
            }
            Event::To {
                address: Some(a), ..
            } if spaced(a) => 1,
            Event::Ready { from: Some(a), .. } if spaced(a) => 1,
            _ => 2,
        }
    }

    /// True for events that are part of a connection or message lifecycle.
    pub fn is_lifecycle(&self) -> bool {
        self.icid().is_some() || self.mid().is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Small hand-written matchers.

/// `str::trim` that returns at once when the text starts and ends with a visible ASCII
/// character (the usual case).
trait TrimFast {
    fn trim_fast(&self) -> &str;
}

impl TrimFast for str {
    #[inline]
    fn trim_fast(&self) -> &str {
        let b = self.as_bytes();
        let mut i = 0;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let mut j = b.len();
        while j > i && b[j - 1] == b' ' {
            j -= 1;
        }
        // Spaces are whitespace, so trimming them first changes nothing.
        let t = &self[i..j];
        let b = t.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => t,
            _ => t.trim(),
        }
    }
}

/// `str::split_once(' ')`, searching with memchr.
fn split_space(s: &str) -> Option<(&str, &str)> {
    let p = memchr::memchr(b' ', s.as_bytes())?;
    Some((&s[..p], &s[p + 1..]))
}

/// `s` without the ASCII-case-insensitive prefix `p`.
pub(crate) fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    let n = p.len();
    if s.len() >= n && s.as_bytes()[..n].eq_ignore_ascii_case(p.as_bytes()) {
        // `p` is ASCII, so `n` is a char boundary of `s` when the bytes match.
        Some(&s[n..])
    } else {
        None
    }
}

/// A run of ASCII digits at the start of `s` as a number, and the rest.
fn take_u64(s: &str) -> Option<(u64, &str)> {
    let b = s.as_bytes();
    let (mut v, mut i) = leading_digits8(b);
    // Nineteen digits cannot overflow.
    while i < b.len() && i < 19 && b[i].is_ascii_digit() {
        v = v * 10 + u64::from(b[i] - b'0');
        i += 1;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
        i += 1;
    }
    if i == 0 { None } else { Some((v, &s[i..])) }
}

/// The value and count of the digits that start `b`, up to eight of them, read eight bytes at
/// a time (IDs are mostly seven or eight digits long); `(0, 0)` when fewer than eight bytes
/// are left, for the byte loop to do.
#[inline]
fn leading_digits8(b: &[u8]) -> (u64, usize) {
    let Some(w) = b.first_chunk::<8>() else {
        return (0, 0);
    };
    let t = u64::from_le_bytes(*w) ^ 0x3030_3030_3030_3030;
    // A byte is a digit when its high nibble is clear and adding 6 does not carry into it; a
    // carry out of a byte only reaches later bytes, after the first non-digit.
    let flags = (t | t.wrapping_add(0x0606_0606_0606_0606)) & 0xf0f0_f0f0_f0f0_f0f0;
    let n = (flags.trailing_zeros() / 8) as usize;
    if n == 0 {
        return (0, 0);
    }
    // The n digits moved to the top bytes (leading zeros below), then combined pairwise.
    let v = t << (8 * (8 - n));
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v = ((v & 0x0000_00ff_0000_00ff).wrapping_mul(0x000f_4240_0000_0064))
        .wrapping_add(((v >> 16) & 0x0000_00ff_0000_00ff).wrapping_mul(0x0000_2710_0000_0001))
        >> 32;
    (v, n)
}

/// A number followed by a single space (or the end), and the rest after the space.
fn take_id(s: &str) -> Option<(u64, &str)> {
    let (v, rest) = take_u64(s)?;
    if rest.is_empty() {
        Some((v, rest))
    } else {
        rest.strip_prefix(' ').map(|r| (v, r))
    }
}

/// The number that is the whole of `s`.
fn whole_u64(s: &str) -> Option<u64> {
    match take_u64(s.trim_fast()) {
        Some((v, "")) => Some(v),
        _ => None,
    }
}

/// Byte position of `needle` in `hay` (short needles on short lines: candidates by their
/// first byte, then a compare; cheaper than setting up a substring searcher).
fn find_str(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return None;
    }
    let last_start = h.len().checked_sub(n.len())?;
    // Candidates by the needle's first byte that is not a space (spaces are everywhere).
    let k = n.iter().position(|&c| c != b' ').unwrap_or(0);
    memchr::memchr_iter(n[k], &h[k..=last_start + k]).find(|&at| &h[at..at + n.len()] == n)
}

/// Last byte position of `needle` in `hay`.
fn rfind_str(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = n.split_first() else {
        return Some(h.len());
    };
    let last_start = h.len().checked_sub(n.len())?;
    memchr::memrchr_iter(first, &h[..=last_start]).find(|&at| &h[at + 1..at + n.len()] == rest)
}

/// Byte position of `needle` in `hay`, ASCII-case-insensitively (candidates by the first
/// letter of the needle in either case).
fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    // The first byte that has two cases (or the last byte), searched for in both.
    let k = n
        .iter()
        .position(u8::is_ascii_alphabetic)
        .unwrap_or(n.len() - 1);
    let c = n[k];
    let last_start = h.len() - n.len();
    memchr::memchr2_iter(
        c.to_ascii_lowercase(),
        c.to_ascii_uppercase(),
        &h[k..=last_start + k],
    )
    .find(|&at| h[at..at + n.len()].eq_ignore_ascii_case(n))
}

/// `<addr>` at the start of `s`: the address and what follows the `>`.
fn angle(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('<')?;
    let end = memchr::memchr(b'>', inner.as_bytes())?;
    Some((&inner[..end], &inner[end + 1..]))
}

/// An address given as `<addr>` or bare.
fn address(s: &str) -> String {
    let s = s.trim_fast();
    match angle(s) {
        Some((a, _)) => a.to_string(),
        None => s.to_string(),
    }
}

/// Strips one pair of matching `'…'` or `"…"` quotes.
fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// The number after the first ` MID ` (or a leading `MID `) in `s`.
fn mid_in(s: &str) -> Option<u64> {
    let rest = if let Some(r) = s.strip_prefix("MID ") {
        r
    } else {
        let p = find_str(s, " MID ")?;
        &s[p + 5..]
    };
    take_u64(rest).map(|(v, _)| v)
}

/// The number after the first `DCID ` in `s`.
fn dcid_in(s: &str) -> Option<u64> {
    let p = find_str(s, "DCID ")?;
    take_u64(&s[p + 5..]).map(|(v, _)| v)
}

/// [`delivery`] for a line whose first `DCID ` ends at `at` (nothing before it can hold
/// ` MID `): the MID is read right after the DCID when it follows it.
fn delivery_after(kind: DeliveryKind, s: &str, at: usize) -> Event {
    let Some((dcid, rest)) = take_u64(&s[at..]) else {
        return delivery(kind, s);
    };
    let mid = match rest.strip_prefix(" MID ") {
        Some(r) => take_u64(r).map(|(v, _)| v),
        None => mid_in(s),
    };
    Event::Delivery {
        delivery: kind,
        mid,
        dcid: Some(dcid),
    }
}

fn delivery(kind: DeliveryKind, s: &str) -> Event {
    Event::Delivery {
        delivery: kind,
        mid: mid_in(s),
        dcid: dcid_in(s),
    }
}

// ---------------------------------------------------------------------------------------------
// The classifier.

/// Turns the message part of a record (after `Level: `, trailing spaces already trimmed) into
/// an event. Never fails.
pub fn classify(msg: &str) -> Event {
    classify_inner(msg).unwrap_or(Event::Unknown)
}

fn classify_inner(msg: &str) -> Option<Event> {
    let first = *msg.as_bytes().first()?;
    match first {
        b'I' => {
            if let Some(r) = msg.strip_prefix("ICID ") {
                icid_line(r)
            } else if msg.starts_with("ISQ: ") && mid_in(msg).is_some() {
                Some(delivery(DeliveryKind::Quarantine, msg))
            } else {
                None
            }
        }
        b'M' => {
            if let Some(r) = msg.strip_prefix("MID ") {
                mid_line(r)
            } else if let Some(r) = msg.strip_prefix("Message ") {
                message_line(r)
            } else {
                None
            }
        }
        b'S' => {
            if let Some(r) = msg.strip_prefix("Start MID ") {
                let (mid, r) = take_u64(r)?;
                let icid = whole_u64(r.strip_prefix(" ICID ")?)?;
                Some(Event::Start { mid, icid })
            } else if let Some(r) = msg.strip_prefix("SMTP Auth (ICID ") {
                let (icid, _) = take_u64(r)?;
                Some(Event::IcidNote {
                    icid,
                    note: IcidNoteKind::SmtpAuth,
                    text: msg.to_string(),
                })
            } else {
                None
            }
        }
        b'N' | b'n' => {
            let r = strip_prefix_ci(msg, "New SMTP ")?;
            if let Some(r) = r.strip_prefix("ICID ") {
                connect(r)
            } else if r.starts_with("DCID ") {
                Some(delivery(DeliveryKind::NewDcid, msg))
            } else {
                None
            }
        }
        b'D' => {
            if msg.starts_with("Delivery start DCID ") {
                Some(delivery_after(DeliveryKind::DeliveryStart, msg, 20))
            } else if let Some(r) = msg.strip_prefix("DCID ") {
                // The number right after is the first `DCID ` one.
                take_u64(r)?;
                Some(delivery_after(DeliveryKind::Dcid, msg, 5))
            } else if msg.starts_with("Delayed: DCID ") {
                Some(delivery_after(DeliveryKind::Delayed, msg, 14))
            } else {
                None
            }
        }
        b'B' => {
            if msg.starts_with("Bounced: DCID ") {
                Some(delivery_after(DeliveryKind::Bounced, msg, 14))
            } else if msg == "Begin Logfile" {
                Some(Event::LogfileMarker)
            } else {
                None
            }
        }
        b'E' => {
            if msg == "End Logfile" {
                Some(Event::LogfileMarker)
            } else if msg.starts_with("EUQ: ") && mid_in(msg).is_some() {
                Some(delivery(DeliveryKind::Quarantine, msg))
            } else {
                None
            }
        }
        b'R' => {
            if msg.starts_with("RPC ") && find_str(msg, "RCID ").is_some() {
                Some(delivery(DeliveryKind::Rpc, msg))
            } else {
                None
            }
        }
        b'V' => {
            let r = msg.strip_prefix("Version: ")?;
            Some(match find_str(r, " SN: ") {
                Some(p) => Event::Version {
                    version: r[..p].trim_fast().to_string(),
                    serial: Some(r[p + 5..].trim_fast().to_string()).filter(|s| !s.is_empty()),
                },
                None => Event::Version {
                    version: r.trim_fast().to_string(),
                    serial: None,
                },
            })
        }
        b'T' => {
            let r = msg.strip_prefix("Time offset from UTC: ")?;
            let r = r.strip_suffix("seconds").unwrap_or(r).trim_fast();
            let seconds = r.parse::<i64>().ok()?;
            Some(Event::TimeOffset { seconds })
        }
        _ => None,
    }
}

/// `New SMTP ICID {icid} interface {ifname} ({ifip}) address {ip} reverse dns host {rdns}
/// verified {yes|no}`, anchored on ` address {ip} reverse dns host ` because the interface name
/// may contain spaces; the old form has neither `({ifip})` nor the rdns part.
fn connect(r: &str) -> Option<Event> {
    let (icid, r) = take_u64(r)?;
    let r = strip_prefix_ci(r, " interface ")?;
    let (before, after) = match find_ci(r, " reverse dns host ") {
        Some(p) => (&r[..p], Some(&r[p + " reverse dns host ".len()..])),
        None => (r, None),
    };
    let apos = rfind_str(before, " address ")?;
    let ifpart = &before[..apos];
    let ip_text = before[apos + " address ".len()..].trim_fast();
    // Without the rdns part (the old form) the IP is the last word.
    if ip_text.is_empty() || ip_text.contains(' ') {
        return None;
    }
    let (interface, interface_ip) = match ifpart.strip_suffix(')').and_then(|x| {
        let p = rfind_str(x, " (")?;
        Some((&x[..p], &x[p + 2..]))
    }) {
        Some((name, ip)) => (name, Some(HostAddr::parse(ip))),
        None => (ifpart, None),
    };
    let (rdns, verified) = match after {
        None => (None, None),
        Some(a) => {
            let (host, ver) = match rfind_str(a, " verified ") {
                Some(p) => (&a[..p], Some(a[p + " verified ".len()..].trim_fast())),
                None => (a, None),
            };
            let host = host.trim_fast();
            let rdns = if host.is_empty() || host.eq_ignore_ascii_case("unknown") {
                None
            } else {
                Some(host.to_string())
            };
            let verified = match ver {
                Some(v) if v.eq_ignore_ascii_case("yes") => Some(true),
                Some(v) if v.eq_ignore_ascii_case("no") => Some(false),
                _ => None,
            };
            (rdns, verified)
        }
    };
    Some(Event::Connect(Box::new(Connect {
        icid,
        interface: interface.trim_fast().to_string(),
        interface_ip,
        remote_ip: HostAddr::parse(ip_text),
        rdns,
        verified,
    })))
}

/// Everything after `ICID `.
fn icid_line(r: &str) -> Option<Event> {
    let (icid, r) = take_u64(r)?;
    let r = r.strip_prefix(' ')?;
    if r.eq_ignore_ascii_case("lost") {
        return Some(Event::Lost { icid });
    }
    if r.eq_ignore_ascii_case("close") {
        return Some(Event::Close { icid });
    }
    if let Some(t) = r.strip_prefix("TLS ") {
        let (success, rest) = if let Some(x) = t.strip_prefix("success") {
            (true, x)
        } else if let Some(x) = t.strip_prefix("failed") {
            (false, x)
        } else {
            return None;
        };
        let (mut protocol, mut cipher) = (None, None);
        if let Some(p) = rest.strip_prefix(" protocol ") {
            let (proto, more) = split_space(p).unwrap_or((p, ""));
            protocol = Some(proto.to_string());
            if let Some(c) = more.strip_prefix("cipher ") {
                cipher = Some(c.trim_fast().to_string());
            }
        }
        return Some(Event::Tls {
            icid,
            success,
            protocol,
            cipher,
        });
    }
    if let Some(d) = r.strip_prefix("Delayed HAT REJECT") {
        return Some(Event::DelayedReject {
            icid,
            detail: d.trim_fast().to_string(),
        });
    }
    if let Some(a) = r.strip_prefix("Address: ") {
        let p = find_str(a, " sender rejected")?;
        let reason = a[p + " sender rejected".len()..]
            .trim_start_matches(',')
            .trim_fast();
        return Some(Event::SenderRejected {
            icid,
            address: address(&a[..p]),
            reason: reason.to_string(),
        });
    }
    if let Some(s) = strip_prefix_ci(r, "SBRS ") {
        return Some(Event::Sbrs {
            icid,
            sbrs: Sbrs::parse(s),
        });
    }
    for (prefix, note) in [
        ("Receiving Failed", IcidNoteKind::ReceivingFailed),
        ("disconnected address ", IcidNoteKind::Disconnected),
        ("Unknown command", IcidNoteKind::UnknownCommand),
    ] {
        if let Some(t) = strip_prefix_ci(r, prefix) {
            return Some(Event::IcidNote {
                icid,
                note,
                text: t.trim_start_matches(':').trim_fast().to_string(),
            });
        }
    }
    hat(icid, r)
}

/// `{ACTION} SG {sg} match {match} SBRS {score}[ country {c}]`; `match` may be empty, `SBRS`
/// may be missing (old releases) or spelled in another case.
fn hat(icid: u64, r: &str) -> Option<Event> {
    let (action, r) = split_space(r)?;
    let policy = HatPolicy::parse(action)?;
    let r = r.strip_prefix("SG ")?;
    let (sender_group, mut r) = match memchr::memchr(b' ', r.as_bytes()) {
        Some(p) => (&r[..p], &r[p..]),
        None => (r, ""),
    };
    if let Some(x) = r.strip_prefix(" match") {
        r = x.strip_prefix(' ').unwrap_or(x);
    } else {
        r = r.trim_start();
    }
    // The SBRS keyword is a whole word: `match sbrs[-1.0:10.0] SBRS 0.0` has `sbrs[` first.
    let b = r.as_bytes();
    let kw = memchr::memchr2_iter(b'S', b's', b).find(|&i| {
        i + 4 <= b.len()
            && b[i..i + 4].eq_ignore_ascii_case(b"SBRS")
            && (i == 0 || b[i - 1] == b' ')
            && (i + 4 == b.len() || b[i + 4] == b' ')
    });
    let (matched, sbrs, country) = match kw {
        None => (r.trim_fast(), None, None),
        Some(p) => {
            let s = r[p + 4..].trim_fast();
            let (score, country) = match find_str(s, " country ") {
                Some(c) => (&s[..c], Some(s[c + " country ".len()..].trim_fast())),
                None => (s, None),
            };
            let country = country
                .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("not enabled"))
                .map(str::to_string);
            (r[..p].trim_fast(), Some(Sbrs::parse(score)), country)
        }
    };
    Some(Event::Hat(Box::new(Hat {
        icid,
        policy,
        sender_group: sender_group.to_string(),
        matched: matched.to_string(),
        sbrs,
        country,
    })))
}

/// Everything after `MID `. The lifecycle keywords start with different letters, so the
/// first letter after the number picks the only template that can match; a line that starts
/// with a keyword but does not parse is not noise.
fn mid_line(r: &str) -> Option<Event> {
    let (mid, r) = take_id(r)?;
    let noise = Some(Event::MidNote { mid });
    match r.as_bytes().first() {
        Some(b'I') => match r.strip_prefix("ICID ") {
            Some(x) => mid_icid_line(mid, x),
            None if r.starts_with("ICID") => None,
            None => noise,
        },
        Some(b'r') => match r.strip_prefix("ready ") {
            Some(x) => {
                let (bytes, x) = take_u64(x)?;
                let x = x.strip_prefix(" bytes")?;
                let from = x.strip_prefix(" from ").map(address);
                Some(Event::Ready { mid, bytes, from })
            }
            None if r.starts_with("ready") => None,
            None => noise,
        },
        Some(b'q') => {
            if r == "queued for delivery" {
                Some(Event::Queued { mid })
            } else if r.starts_with("queued") {
                None
            } else {
                noise
            }
        }
        Some(b'M') => match r.strip_prefix("Message-ID ") {
            Some(x) => Some(Event::MessageId {
                mid,
                id: unquote(x.trim_fast()).to_string(),
            }),
            None if r.starts_with("Message-ID") => None,
            None => noise,
        },
        Some(b'S') => {
            if r == "Subject" {
                Some(Event::Subject {
                    mid,
                    subject: String::new(),
                })
            } else if let Some(x) = r.strip_prefix("Subject ") {
                Some(Event::Subject {
                    mid,
                    subject: unquote(x.trim_fast()).to_string(),
                })
            } else if r.starts_with("Subject") {
                None
            } else {
                noise
            }
        }
        Some(b'R') => match r.strip_prefix("RID") {
            Some(x) if x.trim_start().starts_with('[') => Some(Event::Delivery {
                delivery: DeliveryKind::Response,
                mid: Some(mid),
                dcid: None,
            }),
            Some(_) => None,
            None => noise,
        },
        _ => noise,
    }
}

/// Everything after `MID {mid} ICID `.
fn mid_icid_line(mid: u64, x: &str) -> Option<Event> {
    let (icid, x) = take_id(x)?;
    if let Some(a) = x.strip_prefix("From:") {
        return Some(Event::From {
            mid,
            icid,
            address: address(a),
        });
    }
    if let Some(t) = x.strip_prefix("RID ") {
        let (rid, t) = take_id(t)?;
        let a = t.strip_prefix("To:")?.trim_fast();
        let address = if a.is_empty() { None } else { Some(address(a)) };
        return Some(Event::To {
            mid,
            icid,
            rid: u32::try_from(rid).ok()?,
            address,
        });
    }
    if let Some(t) = x.strip_prefix("To: ") {
        let p = find_str(t, " Rejected by ")?;
        return Some(Event::ToRejected {
            mid,
            icid,
            address: address(&t[..p]),
            by: t[p + " Rejected by ".len()..].trim_fast().to_string(),
        });
    }
    if let Some(t) = x.strip_prefix("invalid bounce, rcpt address ") {
        let p = find_str(t, " rejected by ")?;
        return Some(Event::ToRejected {
            mid,
            icid,
            address: address(&t[..p]),
            by: t[p + " rejected by ".len()..]
                .trim_end_matches('.')
                .trim_fast()
                .to_string(),
        });
    }
    None
}

/// Everything after `Message `.
fn message_line(r: &str) -> Option<Event> {
    if let Some(x) = r.strip_prefix("aborted MID ") {
        let (mid, x) = take_u64(x)?;
        let reason = x.strip_prefix(' ').unwrap_or(x);
        return Some(Event::Aborted {
            mid,
            reason: AbortReason::parse(reason),
        });
    }
    if let Some(x) = r.strip_prefix("finished MID ") {
        let (mid, x) = take_id(x)?;
        let finish = match x.trim_fast() {
            "done" => Finish::Done,
            "aborted" => Finish::Aborted,
            "" => return None,
            other => Finish::Other(other.to_string()),
        };
        return Some(Event::Finished { mid, finish });
    }
    if r.starts_with("done DCID ") {
        return Some(delivery_after(DeliveryKind::MessageDone, r, 10));
    }
    // `Message {mid} to RID [..] pending till {ctime}`
    let (mid, x) = take_u64(r)?;
    if x.starts_with(" to RID") && find_str(x, " pending till ").is_some() {
        return Some(Event::Delivery {
            delivery: DeliveryKind::Pending,
            mid: Some(mid),
            dcid: None,
        });
    }
    None
}

/// Known non-mail log subscriptions that share a syslog stream with `mail_logs`.
const OTHER_SUBSCRIPTIONS: &[&str] = &[
    "amp",
    "amp_archive",
    "antispam",
    "antivirus",
    "asarchive",
    "authentication",
    "avarchive",
    "bounces",
    "cli_logs",
    "consolidated_event",
    "content_scanner",
    "dlp",
    "eaas",
    "encryption",
    "error_logs",
    "euq_logs",
    "euqgui_logs",
    "ftpd_logs",
    "gui_logs",
    "haystackd",
    "injection_debug",
    "ipr_client",
    "ldap",
    "ldap_debug",
    "reportd_logs",
    "reportqueryd_logs",
    "s3_client",
    "scanning",
    "sds_client",
    "service_logs",
    "smartlicense",
    "sntpd_logs",
    "status",
    "system",
    "threatfeeds",
    "trackerd_logs",
    "updater_logs",
    "upgrade_logs",
    "url_rep_client",
];

/// Whether a record whose content is not mail-log content belongs to another subscription:
/// by content first (status lines, injection debug lines), then by a well-known tag.
pub fn is_other_subscription(msg: &str, tag: Option<&str>) -> bool {
    if msg.starts_with("Status: ") && find_str(msg, "CPULd ").is_some() {
        return true;
    }
    // Injection debug log: `{icid} Sent: '…'` / `{icid} Rcvd: '…'`.
    if let Some((_, r)) = take_u64(msg)
        && (r.starts_with(" Sent: ") || r.starts_with(" Rcvd: "))
    {
        return true;
    }
    match tag {
        Some(t) => OTHER_SUBSCRIPTIONS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(t)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_full_form_with_spaces_in_interface() {
        let e = classify(
            "New SMTP ICID 60140291 interface Data 1 (68.232.141.109) address 176.227.203.114 \
             reverse dns host h176-227-203-114.host.redstation.co.uk verified no",
        );
        let Event::Connect(c) = e else {
            panic!("{e:?}")
        };
        assert_eq!(c.icid, 60140291);
        assert_eq!(c.interface, "Data 1");
        assert_eq!(c.interface_ip, Some(HostAddr::parse("68.232.141.109")));
        assert_eq!(c.remote_ip.ip(), Some("176.227.203.114".parse().unwrap()));
        assert_eq!(
            c.rdns.as_deref(),
            Some("h176-227-203-114.host.redstation.co.uk")
        );
        assert_eq!(c.verified, Some(false));
    }

    #[test]
    fn connect_variants() {
        let Event::Connect(c) = classify(
            "New smtp ICID 1 interface Management (10.10.10.1) address 192.168.1.1 reverse dns host unknown verified no",
        ) else {
            panic!()
        };
        assert_eq!(c.rdns, None);
        let Event::Connect(c) = classify("New SMTP ICID 7 interface Incoming address 10.1.1.1")
        else {
            panic!()
        };
        assert_eq!(
            (c.interface.as_str(), c.interface_ip.clone()),
            ("Incoming", None)
        );
        assert_eq!(c.rdns, None);
        let Event::Connect(c) = classify(
            "New SMTP ICID 9 interface Public (2001:db8::25) address 2001:db8:1::7 reverse dns host mx.example verified yes",
        ) else {
            panic!()
        };
        assert!(c.remote_ip.ip().unwrap().is_ipv6());
        assert!(c.interface_ip.unwrap().ip().unwrap().is_ipv6());
        assert_eq!(c.verified, Some(true));
        // An address that is not an IP stays as text.
        let Event::Connect(c) = classify(
            "New SMTP ICID 4155 interface Management (x.x.x.x) address y.y.y.y reverse dns host unknown verified no",
        ) else {
            panic!()
        };
        assert_eq!(c.remote_ip, HostAddr::Text("y.y.y.y".into()));
    }

    #[test]
    fn hat_variants() {
        let Event::Hat(h) = classify(
            "ICID 28 ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS 0.0 country United States",
        ) else {
            panic!()
        };
        assert_eq!(h.policy, HatPolicy::Accept);
        assert_eq!(h.sender_group, "UNKNOWNLIST");
        assert_eq!(h.matched, "sbrs[-1.0:10.0]");
        assert_eq!(h.sbrs, Some(Sbrs::Score(0.0)));
        assert_eq!(h.country.as_deref(), Some("United States"));
        let Event::Hat(h) = classify("ICID 1 ACCEPT SG None match SBRS None") else {
            panic!()
        };
        assert_eq!((h.matched.as_str(), h.sbrs.clone()), ("", Some(Sbrs::None)));
        let Event::Hat(h) =
            classify("ICID 3160 ACCEPT SG None match ALL SBRS not enabled country not enabled")
        else {
            panic!()
        };
        assert_eq!(h.sbrs, Some(Sbrs::NotEnabled));
        assert_eq!(h.country, None);
        let Event::Hat(h) = classify("ICID 2106327021 REJECT SG TCP-REFUSE match") else {
            panic!()
        };
        assert_eq!(h.policy, HatPolicy::Reject);
        assert_eq!(h.sender_group, "TCP-REFUSE");
        let Event::Hat(h) =
            classify("ICID 10293 RELAY SG RELAY_SG match 192.168.0.200 SBRs not enabled")
        else {
            panic!()
        };
        assert_eq!(h.matched, "192.168.0.200");
        assert_eq!(h.sbrs, Some(Sbrs::NotEnabled));
        let Event::Hat(h) = classify("ICID 0 TCPREFUSE SG BLOCKED match 1.2.3.4 SBRS -9.5") else {
            panic!()
        };
        assert_eq!(h.policy, HatPolicy::TcpRefuse);
        assert_eq!(h.sbrs, Some(Sbrs::Score(-9.5)));
    }

    #[test]
    fn icid_lines() {
        assert_eq!(classify("ICID 5 close"), Event::Close { icid: 5 });
        assert_eq!(classify("ICID 5 Close"), Event::Close { icid: 5 });
        assert_eq!(classify("ICID 5 lost"), Event::Lost { icid: 5 });
        assert_eq!(
            classify("ICID 9 TLS success protocol TLSv1.2 cipher ECDHE-RSA-AES256-GCM-SHA384"),
            Event::Tls {
                icid: 9,
                success: true,
                protocol: Some("TLSv1.2".into()),
                cipher: Some("ECDHE-RSA-AES256-GCM-SHA384".into())
            }
        );
        assert!(matches!(
            classify("ICID 9 TLS failed: (336151570, 'error:14094412:SSL routines')"),
            Event::Tls { success: false, .. }
        ));
        assert!(matches!(
            classify("ICID 4160 Delayed HAT REJECT Message from: user1@example.com (y.y.y.y)"),
            Event::DelayedReject { icid: 4160, .. }
        ));
        assert_eq!(
            classify("ICID 3248 Address: <user> sender rejected, envelope sender domain missing"),
            Event::SenderRejected {
                icid: 3248,
                address: "user".into(),
                reason: "envelope sender domain missing".into()
            }
        );
        assert_eq!(
            classify("ICID 282204970 SBRS None"),
            Event::Sbrs {
                icid: 282204970,
                sbrs: Sbrs::None
            }
        );
        assert!(matches!(
            classify("ICID 12 Receiving Failed: Connection timed out"),
            Event::IcidNote {
                note: IcidNoteKind::ReceivingFailed,
                ..
            }
        ));
        assert!(matches!(
            classify("SMTP Auth (ICID 12) succeeded for user: bob"),
            Event::IcidNote {
                icid: 12,
                note: IcidNoteKind::SmtpAuth,
                ..
            }
        ));
        assert_eq!(classify("ICID 5 closed the door"), Event::Unknown);
        assert_eq!(classify("ICID x close"), Event::Unknown);
    }

    #[test]
    fn message_lines() {
        assert_eq!(
            classify("Start MID 6 ICID 5"),
            Event::Start { mid: 6, icid: 5 }
        );
        assert_eq!(
            classify("MID 26603 ICID 125192 From: <>"),
            Event::From {
                mid: 26603,
                icid: 125192,
                address: String::new()
            }
        );
        assert_eq!(
            classify("MID 1558778 ICID 3875465 RID 0 To:"),
            Event::To {
                mid: 1558778,
                icid: 3875465,
                rid: 0,
                address: None
            }
        );
        assert_eq!(
            classify("MID 7 ICID 3 To: <a@b> Rejected by Receiving Control"),
            Event::ToRejected {
                mid: 7,
                icid: 3,
                address: "a@b".into(),
                by: "Receiving Control".into()
            }
        );
        assert_eq!(
            classify(
                "MID 26603 ICID 125192 invalid bounce, rcpt address <bob@example.com> rejected by bounce verification."
            ),
            Event::ToRejected {
                mid: 26603,
                icid: 125192,
                address: "bob@example.com".into(),
                by: "bounce verification".into()
            }
        );
        assert_eq!(
            classify("MID 1 Message-ID \"<Lands'End.x@y>\""),
            Event::MessageId {
                mid: 1,
                id: "<Lands'End.x@y>".into()
            }
        );
        assert_eq!(
            classify("MID 2 Subject Re: [x] FW: y\\r\\n (PTY) LTD"),
            Event::Subject {
                mid: 2,
                subject: "Re: [x] FW: y\\r\\n (PTY) LTD".into()
            }
        );
        assert_eq!(
            classify("MID 6 ready 100 bytes from <sender@remotehost.com>"),
            Event::Ready {
                mid: 6,
                bytes: 100,
                from: Some("sender@remotehost.com".into())
            }
        );
        assert_eq!(
            classify("MID 6 queued for delivery"),
            Event::Queued { mid: 6 }
        );
        assert_eq!(
            classify("Message aborted MID 1412 Receiving aborted by sender"),
            Event::Aborted {
                mid: 1412,
                reason: AbortReason::ReceivingAbortedBySender
            }
        );
        assert_eq!(
            classify("Message aborted MID 1404 Receiving aborted"),
            Event::Aborted {
                mid: 1404,
                reason: AbortReason::ReceivingAborted
            }
        );
        assert_eq!(
            classify("Message aborted MID 9 Dropped by CASE"),
            Event::Aborted {
                mid: 9,
                reason: AbortReason::Other("Dropped by CASE".into())
            }
        );
        assert_eq!(
            classify("Message finished MID 9 done"),
            Event::Finished {
                mid: 9,
                finish: Finish::Done
            }
        );
        assert_eq!(
            classify("MID 44 attachment 'Banner.gif'"),
            Event::MidNote { mid: 44 }
        );
        // Broken lifecycle lines are not noise.
        assert_eq!(classify("MID 44 ready lots of bytes"), Event::Unknown);
        assert_eq!(classify("MID 44 ICID 3 Frm: <x>"), Event::Unknown);
    }

    #[test]
    fn delivery_lines() {
        for (line, mid) in [
            (
                "New SMTP DCID 8 interface 192.168.42.42 address 10.5.3.25 port 25",
                None,
            ),
            ("Delivery start DCID 8 MID 6 to RID [0]", Some(6)),
            (
                "Message done DCID 8 MID 6 to RID [0] [('X-SBRS', 'None')]",
                Some(6),
            ),
            (
                "MID 1416566008 RID  [0, 1, 2] Response 'CRR09734 Message accepted'",
                Some(1416566008),
            ),
            ("DCID 8 close", None),
            (
                "DCID 112095 TLS success protocol TLSv1 cipher AES128-SHA for x.com",
                None,
            ),
            (
                "Delayed: DCID 5 MID 4 to RID 0 - 4.1.0 - Unknown address error",
                Some(4),
            ),
            (
                "Bounced: DCID 3 MID 4 to RID 1 - 5.1.0 - Unknown address error",
                Some(4),
            ),
            (
                "Message 4 to RID [0] pending till Mon Mar 31 20:01:23 2003",
                Some(4),
            ),
            (
                "RPC Delivery start RCID 756814 MID 2317877 to local IronPort Spam Quarantine",
                Some(2317877),
            ),
            ("EUQ: Quarantined MID 2317877", Some(2317877)),
            ("ISQ: Tagging MID 24611417 for quarantine", Some(24611417)),
        ] {
            match classify(line) {
                Event::Delivery { mid: m, .. } => assert_eq!(m, mid, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn header_lines() {
        assert_eq!(classify("Begin Logfile"), Event::LogfileMarker);
        assert_eq!(
            classify("Version: 7.6.3-019 SN: 420D4FEA709365BFB3E3-0AF2EE5E700E"),
            Event::Version {
                version: "7.6.3-019".into(),
                serial: Some("420D4FEA709365BFB3E3-0AF2EE5E700E".into())
            }
        );
        assert_eq!(
            classify("Time offset from UTC: -21600 seconds"),
            Event::TimeOffset { seconds: -21600 }
        );
    }

    #[test]
    fn other_subscriptions() {
        assert!(is_other_subscription("102503993 Sent: 'DATA'", None));
        assert!(is_other_subscription(
            "Session x user:admin expired",
            Some("gui_logs")
        ));
        assert!(!is_other_subscription(
            "graymail [CONFIG] Starting",
            Some("mail_logs")
        ));
    }

    #[test]
    fn fast_number_and_address_readers_agree_with_std() {
        for t in [
            "-7.5",
            "10.0",
            "3",
            "0.0",
            "-0.0",
            "0.1",
            "-9.99",
            "123456789012345",
            "1.5e3",
            ".5",
            "5.",
            "-",
            "",
            "+1.0",
            "1.2.3",
            "007.25",
            "-10.0",
            "2.675",
            "9007199254740993",
        ] {
            let fast = simple_decimal(t);
            if let Some(v) = fast {
                assert_eq!(v.to_bits(), t.parse::<f64>().unwrap().to_bits(), "{t}");
            }
        }
        for t in [
            "1.2.3.4",
            "255.255.255.255",
            "0.0.0.0",
            "01.2.3.4",
            "1.2.3.256",
            "1.2.3",
            "1.2.3.4.5",
            "10.0.1.1",
            "1..2.3",
            "a.b.c.d",
            "1.2.3.04",
            "192.168.000.1",
        ] {
            let fast = dotted_quad(t).map(IpAddr::V4);
            if fast.is_some() {
                assert_eq!(fast, t.parse::<IpAddr>().ok(), "{t}");
            } else {
                assert!(
                    t.parse::<std::net::Ipv4Addr>().is_err() || t.len() > 15,
                    "{t}"
                );
            }
        }
    }

    #[test]
    fn eight_digits_at_a_time() {
        for t in [
            "12345678",
            "1234567 x",
            "0",
            "00000000",
            "99999999",
            "1",
            "12",
            "123 ",
            "87654321 close",
            "4294967296",
            "12345678901234567890",
            "18446744073709551615",
            "18446744073709551616",
            "1234567a",
            "a1234567",
            "",
            "9",
            "123456789",
            "01234567 ",
        ] {
            let naive = {
                let d = t.bytes().take_while(u8::is_ascii_digit).count();
                t[..d].parse::<u64>().ok().map(|v| (v, &t[d..]))
            };
            assert_eq!(take_u64(t), naive, "{t}");
        }
    }

    #[test]
    fn byte_search() {
        for (h, n) in [
            ("abc MID 5", " MID "),
            ("MID", " MID "),
            ("", "x"),
            ("aaab", "ab"),
            ("xx DCID 1 DCID 2", "DCID "),
            ("é MID 1", " MID "),
        ] {
            assert_eq!(find_str(h, n), h.find(n), "{h} {n}");
            assert_eq!(rfind_str(h, n), h.rfind(n), "{h} {n}");
        }
    }

    #[test]
    fn never_panics_on_odd_text() {
        for s in [
            "",
            "ICID",
            "ICID ",
            "MID",
            "MID 1",
            "MID 1 ",
            "Message ",
            "Message aborted MID ",
            "Start MID 1 ICID",
            "New SMTP ICID 1 interface",
            "ICID 1 ACCEPT SG",
            "ICID 1 X SG a match SBRS",
            "MID 99999999999999999999999 queued for delivery",
            "ICID 1 Address: <",
            "Message finished MID 1",
        ] {
            let _ = classify(s);
        }
    }
}
