//! Redaction, for reports and captures that leave the customer's hands (`--redact`,
//! `--redact-ips`).
//!
//! Contract: a [`Redactor`] maps e-mail local parts, host and domain names and (with
//! `--redact-ips`) IP addresses to tokens, deterministically: the same input (names compared
//! without regard to case) always gets the same token within one run, in every output — the
//! report formats, the terminal and the exported pcaps — so that "the same sender in two
//! connections" stays visible. Tokens: `user-1@domain-1.example`, `host-3.example`, IPv4
//! addresses from the documentation ranges (192.0.2.0/24, then 198.51.100.0/24,
//! 203.0.113.0/24, then 10.0.0.0/8), IPv6 addresses from 2001:db8::/32; addresses that occur in
//! the input are never handed out as tokens.
//!
//! How: [`redact_report`] walks the typed [`Report`] (a copy) and rewrites every string by what
//! it is: envelope addresses and EHLO names as such, IP fields as addresses, and free text
//! (replies, log lines, evidence, anomaly text) through a scanner that finds e-mail addresses,
//! dotted host names and IP literals. The walk destructures every struct that holds a string
//! without `..`, so a field added to the model later does not compile until it is handled here:
//! nothing new leaks silently. The printers then render the redacted report, so table widths and
//! HTML escaping stay right. [`Redactor::scrub`] is a last check on each rendered output that
//! replaces any original the walk already mapped, should a printer quote something from
//! elsewhere.
//!
//! [`redact_payload`] does the same to raw packet bytes with tokens of the same length (so TCP
//! sequence numbers stay valid); [`AuthMask`] blanks AUTH credentials in a client stream, always
//! (the report never holds them; exported pcaps must not either).
//!
//! Limits: the scanner recognises host names by shape (two or more dot-separated labels ending
//! in an alphabetic top-level label); a single-label host name is replaced only where it is known
//! as one (an EHLO argument, a syslog host). File names of the inputs are kept. Message bodies in
//! exported pcaps keep their text apart from the addresses, names and IP literals found in them
//! (and, in pcaps, the words equal to a known local part, as in display names); encoded parts
//! (base64) are not decoded. Subjects and Message-IDs' left parts in log lines are not names and
//! stay (a Message-ID looks like an address and is masked as one). MAC addresses in link headers
//! are kept.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

use crate::capture::{CaptureSummary, FileSummary as CaptureFile};
use crate::correlate::{Clock, FilledIn, UnmatchedIcid};
use crate::maillog::excerpt::LogLine;
use crate::maillog::{FileSummary as LogFile, LogSummary, TimeOffsetHint, UnknownLine};
use crate::report::{ConnectionReport, LogMatch, Report, SmtpFacts};
use crate::smtp::{
    Command, MessageData, Recipient, Reply, SessionSummary, SmtpAnomaly, SmtpEvent, Transaction,
};
use crate::tcp::TcpConnection;
use crate::verdict::{Evidence, Finding, Verdict};

/// What kind of name a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameKind {
    Host,
    Domain,
}

impl NameKind {
    fn prefix(self) -> &'static str {
        match self {
            NameKind::Host => "host",
            NameKind::Domain => "domain",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct NameToken {
    kind: NameKind,
    id: u32,
}

/// The deterministic mapping of one run.
#[derive(Debug, Clone)]
pub struct Redactor {
    ips: bool,
    /// Lower-cased local part → user number.
    users: HashMap<String, u32>,
    /// The local parts that are words (3 or more letters and digits): in payloads, the same
    /// word elsewhere (a display name, a greeting) is masked too.
    local_words: HashSet<String>,
    /// Lower-cased host or domain name → token.
    names: HashMap<String, NameToken>,
    hosts: u32,
    domains: u32,
    /// Names without a dot known as host names (EHLO, syslog host), as written.
    words: HashSet<String>,
    ip_map: HashMap<IpAddr, IpAddr>,
    /// Addresses seen in the input: never handed out as tokens.
    reserved: HashSet<IpAddr>,
    next_v4: u32,
    next_v6: u32,
    /// The first pass of [`redact_report`]: addresses are only noted, no IP token handed out.
    learning: bool,
}

impl Redactor {
    /// A redactor for names and addresses; with `ips`, IP addresses too.
    pub fn new(ips: bool) -> Self {
        Redactor {
            ips,
            users: HashMap::new(),
            local_words: HashSet::new(),
            names: HashMap::new(),
            hosts: 0,
            domains: 0,
            words: HashSet::new(),
            ip_map: HashMap::new(),
            reserved: HashSet::new(),
            next_v4: 0,
            next_v6: 0,
            learning: false,
        }
    }

    /// Whether IP addresses are redacted.
    pub fn redacts_ips(&self) -> bool {
        self.ips
    }

    /// How many distinct local parts, names and IP addresses were mapped so far.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.users.len(), self.names.len(), self.ip_map.len())
    }

    fn user_id(&mut self, local: &str) -> u32 {
        let key = local.to_ascii_lowercase();
        if let Some(n) = self.users.get(&key) {
            return *n;
        }
        let n = self.users.len() as u32 + 1;
        if key.len() >= 3 && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            self.local_words.insert(key.clone());
        }
        self.users.insert(key, n);
        n
    }

    fn name_token(&mut self, name: &str, kind: NameKind) -> NameToken {
        let key = name.to_ascii_lowercase();
        if let Some(t) = self.names.get(&key) {
            return *t;
        }
        let id = match kind {
            NameKind::Host => {
                self.hosts += 1;
                self.hosts
            }
            NameKind::Domain => {
                self.domains += 1;
                self.domains
            }
        };
        let t = NameToken { kind, id };
        self.names.insert(key, t);
        t
    }

    fn name_text(t: NameToken) -> String {
        format!("{}-{}.example", t.kind.prefix(), t.id)
    }

    /// Remembers a single-label host name (an EHLO argument, a syslog host) so that it is also
    /// replaced where it stands in free text.
    fn learn_word(&mut self, name: &str) {
        if !name.contains('.') && name.len() >= 2 && name.bytes().all(is_label_byte) {
            self.words.insert(name.to_string());
        }
    }

    /// Marks an address that occurs in the input, so that no token equals it.
    pub fn reserve_ip(&mut self, ip: IpAddr) {
        self.reserved.insert(ip);
    }

    /// The token of a host name (EHLO argument, reverse DNS name, banner host, syslog host).
    /// An address literal (`[192.0.2.1]`) is an address, not a name.
    pub fn host(&mut self, name: &str) -> String {
        if name.is_empty() {
            return String::new();
        }
        if name.starts_with('[') || name.parse::<IpAddr>().is_ok() || name.contains(' ') {
            return self.text(name);
        }
        let t = self.name_token(name, NameKind::Host);
        Self::name_text(t)
    }

    /// The token of an envelope address (`local@domain`, or a bare local part).
    pub fn address(&mut self, addr: &str) -> String {
        if addr.is_empty() {
            return String::new();
        }
        match addr.rsplit_once('@') {
            Some((local, domain)) => {
                let user = if local.is_empty() {
                    String::new()
                } else {
                    format!("user-{}", self.user_id(local))
                };
                format!("{user}@{}", self.domain(domain))
            }
            None if addr.contains(' ') => self.text(addr),
            None => format!("user-{}", self.user_id(addr)),
        }
    }

    fn domain(&mut self, domain: &str) -> String {
        if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            return format!("[{}]", self.literal(inner));
        }
        if domain.is_empty() {
            return String::new();
        }
        let t = self.name_token(domain, NameKind::Domain);
        Self::name_text(t)
    }

    /// An address literal's inside (`192.0.2.1`, `IPv6:2001:db8::1`).
    fn literal(&mut self, inner: &str) -> String {
        let (tag, addr) = match inner.get(..5) {
            Some(t) if t.eq_ignore_ascii_case("ipv6:") => (&inner[..5], &inner[5..]),
            _ => ("", inner),
        };
        match addr.parse::<IpAddr>() {
            Ok(ip) => format!("{tag}{}", self.ip(ip)),
            Err(_) => inner.to_string(),
        }
    }

    /// The token of an IP address (the address itself without `--redact-ips`).
    pub fn ip(&mut self, ip: IpAddr) -> IpAddr {
        if !self.ips {
            return ip;
        }
        if self.learning {
            self.reserved.insert(ip);
            return ip;
        }
        if let Some(t) = self.ip_map.get(&ip) {
            return *t;
        }
        self.reserved.insert(ip);
        let used: HashSet<IpAddr> = self.ip_map.values().copied().collect();
        let token = loop {
            let candidate = match ip {
                IpAddr::V4(_) => {
                    let c = IpAddr::V4(v4_token(self.next_v4));
                    self.next_v4 += 1;
                    c
                }
                IpAddr::V6(_) => {
                    self.next_v6 += 1;
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        0,
                        0,
                        0,
                        0,
                        (self.next_v6 >> 16) as u16,
                        self.next_v6 as u16,
                    ))
                }
            };
            if !self.reserved.contains(&candidate) && !used.contains(&candidate) {
                break candidate;
            }
        };
        self.ip_map.insert(ip, token);
        token
    }

    pub fn socket(&mut self, sa: SocketAddr) -> SocketAddr {
        SocketAddr::new(self.ip(sa.ip()), sa.port())
    }

    /// An `ip:port` (or `[v6]:port`) or a bare IP as text; anything else as free text.
    pub fn addr_text(&mut self, s: &str) -> String {
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return self.socket(sa).to_string();
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return self.ip(ip).to_string();
        }
        self.prose(s)
    }

    /// Free text from the wire or the log (replies, log lines): addresses, dotted names, IP
    /// literals, and the single-label host names known from EHLO and syslog.
    pub fn text(&mut self, s: &str) -> String {
        self.rewrite(s, true)
    }

    /// Text written by icidtrace that quotes the wire (evidence, reasons): addresses, dotted
    /// names and IP literals.
    pub fn prose(&mut self, s: &str) -> String {
        self.rewrite(s, false)
    }

    fn rewrite(&mut self, s: &str, words: bool) -> String {
        let spans = scan(s.as_bytes(), self.ips, words.then_some(&self.words), None);
        if spans.is_empty() {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len() + 16);
        let mut at = 0;
        for sp in spans {
            out.push_str(&s[at..sp.range.start]);
            let orig = &s[sp.range.clone()];
            let token = match sp.kind {
                Kind::Email { at: a } => {
                    let (local, domain) =
                        (&orig[..a - sp.range.start], &orig[a - sp.range.start + 1..]);
                    format!("user-{}@{}", self.user_id(local), self.domain(domain))
                }
                Kind::Host => self.host(orig),
                Kind::Word => {
                    let t = self.name_token(orig, NameKind::Host);
                    Self::name_text(t)
                }
                Kind::Local => format!("user-{}", self.user_id(orig)),
                Kind::Ip(ip) => self.ip(ip).to_string(),
            };
            out.push_str(&token);
            at = sp.range.end;
        }
        out.push_str(&s[at..]);
        out
    }

    /// A last check on rendered output: replaces every original this redactor has mapped
    /// (addresses, names, IPs) that is still in `rendered`. Finds nothing when the report was
    /// redacted first; it guards against a printer quoting text from outside the model.
    pub fn scrub(&self, rendered: &str) -> String {
        let spans = scan(rendered.as_bytes(), self.ips, Some(&self.words), None);
        let mut out = String::with_capacity(rendered.len());
        let mut at = 0;
        for sp in spans {
            let orig = &rendered[sp.range.clone()];
            let token = match sp.kind {
                Kind::Email { at: a } => {
                    let local = &orig[..a - sp.range.start];
                    let domain = &orig[a - sp.range.start + 1..];
                    let user = self.users.get(&local.to_ascii_lowercase());
                    let dom = self.names.get(&domain.to_ascii_lowercase());
                    match (user, dom) {
                        (Some(u), Some(d)) => Some(format!("user-{u}@{}", Self::name_text(*d))),
                        (Some(u), None) => Some(format!("user-{u}@{domain}")),
                        (None, Some(d)) => Some(format!("{local}@{}", Self::name_text(*d))),
                        (None, None) => None,
                    }
                }
                Kind::Host | Kind::Word => self
                    .names
                    .get(&orig.to_ascii_lowercase())
                    .map(|t| Self::name_text(*t)),
                Kind::Local => None,
                // A token is an address too: only originals that are not tokens are replaced.
                Kind::Ip(ip) => {
                    let is_token = self.ip_map.values().any(|t| *t == ip);
                    self.ip_map
                        .get(&ip)
                        .filter(|_| !is_token)
                        .map(|t| t.to_string())
                }
            };
            if let Some(token) = token {
                out.push_str(&rendered[at..sp.range.start]);
                out.push_str(&token);
                at = sp.range.end;
            }
        }
        out.push_str(&rendered[at..]);
        out
    }

    /// The replacements for raw bytes (a packet's payload, or a few joined), each of the same
    /// length as what it replaces: (range in `bytes`, new bytes).
    pub fn payload_spans(&mut self, bytes: &[u8]) -> Vec<(Range<usize>, Vec<u8>)> {
        let spans = scan(bytes, self.ips, Some(&self.words), Some(&self.local_words));
        // In binary data (TLS records, certificates) only what is known already is replaced:
        // random bytes that happen to look like a name are left alone.
        let binary = looks_binary(bytes);
        let mut out = Vec::with_capacity(spans.len());
        for sp in spans {
            let orig = &bytes[sp.range.clone()];
            let n = orig.len();
            // Every span is ASCII by construction.
            let text = String::from_utf8_lossy(orig).into_owned();
            if binary && !self.knows(&text, sp.kind) {
                continue;
            }
            let token = match sp.kind {
                Kind::Email { at: a } => {
                    let split = a - sp.range.start;
                    let (local, domain) = (&text[..split], &text[split + 1..]);
                    let user = fit("user", self.user_id(local), local.len());
                    let dom = self.fit_domain(domain);
                    format!("{user}@{dom}")
                }
                Kind::Host | Kind::Word => {
                    let t = self.name_token(&text, NameKind::Host);
                    fit_name(t, n)
                }
                Kind::Local => fit("user", self.user_id(&text), n),
                Kind::Ip(ip) => {
                    let t = self.ip(ip);
                    fit_ip(t, n).unwrap_or_else(|| mask(&text))
                }
            };
            debug_assert_eq!(token.len(), n);
            if token.len() == n {
                out.push((sp.range, token.into_bytes()));
            }
        }
        out
    }

    /// Whether the original `text` of a span of `kind` was mapped already.
    fn knows(&self, text: &str, kind: Kind) -> bool {
        match kind {
            Kind::Email { .. } => text.rsplit_once('@').is_some_and(|(l, d)| {
                self.users.contains_key(&l.to_ascii_lowercase())
                    && self.names.contains_key(&d.to_ascii_lowercase())
            }),
            Kind::Host | Kind::Word => self.names.contains_key(&text.to_ascii_lowercase()),
            Kind::Local => false,
            Kind::Ip(ip) => self.ip_map.contains_key(&ip),
        }
    }

    fn fit_domain(&mut self, domain: &str) -> String {
        if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            if let Ok(ip) = inner.parse::<IpAddr>() {
                let t = self.ip(ip);
                return format!(
                    "[{}]",
                    fit_ip(t, inner.len()).unwrap_or_else(|| mask(inner))
                );
            }
            return domain.to_string();
        }
        let t = self.name_token(domain, NameKind::Domain);
        fit_name(t, domain.len())
    }
}

/// The `k`-th IPv4 token (0-based): 192.0.2.1–254, 198.51.100.1–254, 203.0.113.1–254, then
/// through 10.0.0.0/8.
fn v4_token(k: u32) -> Ipv4Addr {
    let block = k / 254;
    let host = (k % 254 + 1) as u8;
    match block {
        0 => Ipv4Addr::new(192, 0, 2, host),
        1 => Ipv4Addr::new(198, 51, 100, host),
        2 => Ipv4Addr::new(203, 0, 113, host),
        b => {
            let b = b - 3;
            Ipv4Addr::new(10, (b >> 8) as u8, b as u8, host)
        }
    }
}

/// `prefix-N` fitted to exactly `n` characters: `user-0001`, `u01`, or `x`s when even the
/// number does not fit.
fn fit(prefix: &str, id: u32, n: usize) -> String {
    let ids = id.to_string();
    let long = prefix.len() + 1 + ids.len();
    if long <= n {
        return format!("{prefix}-{}{ids}", "0".repeat(n - long));
    }
    if prefix.len() + ids.len() <= n {
        return format!("{prefix}{}{ids}", "0".repeat(n - prefix.len() - ids.len()));
    }
    let p0 = &prefix[..1];
    if ids.len() < n {
        return format!("{p0}{}{ids}", "0".repeat(n - 1 - ids.len()));
    }
    "x".repeat(n)
}

/// A name token fitted to `n` characters: `host-0003.example`, `d01.example`, `h3`.
fn fit_name(t: NameToken, n: usize) -> String {
    const SUFFIX: &str = ".example";
    if n >= SUFFIX.len() + 2 {
        format!("{}{SUFFIX}", fit(t.kind.prefix(), t.id, n - SUFFIX.len()))
    } else {
        fit(t.kind.prefix(), t.id, n)
    }
}

/// An address written in exactly `n` characters (octets or groups padded with zeros), if it
/// can be.
fn fit_ip(ip: IpAddr, n: usize) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => {
            let mut octets: Vec<String> = v4.octets().iter().map(|o| o.to_string()).collect();
            let mut len = octets.iter().map(String::len).sum::<usize>() + 3;
            for o in octets.iter_mut().rev() {
                while len < n && o.len() < 3 {
                    o.insert(0, '0');
                    len += 1;
                }
            }
            (len == n).then(|| octets.join("."))
        }
        IpAddr::V6(v6) => {
            let g = v6.segments();
            // Every way to write it: in full, or with one run of zero groups as `::`.
            let mut choices: Vec<(Vec<u16>, Option<Vec<u16>>)> = vec![(g.to_vec(), None)];
            for a in 0..8 {
                for b in a + 1..=8 {
                    if g[a..b].iter().all(|x| *x == 0) {
                        choices.push((g[..a].to_vec(), Some(g[b..].to_vec())));
                    }
                }
            }
            // Fewest characters first, so the natural form wins when it fits.
            let width = |v: &[u16]| v.iter().map(|x| format!("{x:x}").len()).sum::<usize>();
            let seps = |v: &[u16]| v.len().saturating_sub(1);
            let bounds = |(h, t): &(Vec<u16>, Option<Vec<u16>>)| match t {
                None => (width(h) + 7, 39),
                Some(t) => {
                    let s = seps(h) + 2 + seps(t);
                    (width(h) + width(t) + s, 4 * (h.len() + t.len()) + s)
                }
            };
            choices.sort_by_key(|c| bounds(c).0);
            let (head, tail) = choices.into_iter().find(|c| {
                let (lo, hi) = bounds(c);
                (lo..=hi).contains(&n)
            })?;
            let (lo, _) = bounds(&(head.clone(), tail.clone()));
            let mut extra = n - lo;
            let mut hs: Vec<String> = head.iter().map(|x| format!("{x:x}")).collect();
            let mut ts: Vec<String> = tail.iter().flatten().map(|x| format!("{x:x}")).collect();
            for p in ts.iter_mut().rev().chain(hs.iter_mut().rev()) {
                while extra > 0 && p.len() < 4 {
                    p.insert(0, '0');
                    extra -= 1;
                }
            }
            Some(match tail {
                None => hs.join(":"),
                Some(_) => format!("{}::{}", hs.join(":"), ts.join(":")),
            })
        }
    }
}

/// Digits and hex letters blanked, separators kept: the shape without the value.
fn mask(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { 'x' } else { c })
        .collect()
}

/// More than 1% control bytes (other than tab, CR, LF): not text.
fn looks_binary(b: &[u8]) -> bool {
    let control = b
        .iter()
        .filter(|c| **c < 0x20 && !matches!(c, b'\t' | b'\r' | b'\n') || **c == 0x7f)
        .count();
    control * 100 > b.len()
}

/// Replaces, in `bytes`, e-mail addresses, host names and (with `--redact-ips`) IP literals by
/// tokens of the same length.
pub fn redact_payload(bytes: &[u8], r: &mut Redactor) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (range, token) in r.payload_spans(bytes) {
        out[range].copy_from_slice(&token);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The scanner

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `local@domain`; `at` is the index of the `@`.
    Email {
        at: usize,
    },
    /// A dotted host name.
    Host,
    /// A single-label host name known from a typed field.
    Word,
    /// A word equal to a known local part (payloads only: display names).
    Local,
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    range: Range<usize>,
    kind: Kind,
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&*+-=?^_`{|}~.".contains(&b)
}

/// File name extensions: `capture.pcap` is a file, not a host.
const FILE_EXTENSIONS: &[&str] = &[
    "pcap", "pcapng", "cap", "gz", "tgz", "zip", "bz2", "xz", "tar", "log", "txt", "json", "csv",
    "html", "htm", "md", "current", "eml", "pdf", "doc", "docx", "xls", "xlsx", "png", "jpg",
    "jpeg", "gif", "exe", "dll", "rs", "py", "sh",
];

/// A dotted name: two or more labels of letters, digits and hyphens, the last alphabetic.
fn looks_like_host(name: &[u8]) -> bool {
    let labels: Vec<&[u8]> = name.split(|b| *b == b'.').collect();
    if labels.len() < 2 {
        return false;
    }
    let ok_labels = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.iter().all(|b| is_label_byte(*b))
            && l.first() != Some(&b'-')
            && l.last() != Some(&b'-')
    });
    let Some(tld) = labels.last() else {
        return false;
    };
    let tld_ok = (2..=24).contains(&tld.len())
        && tld.iter().all(u8::is_ascii_alphabetic)
        && !FILE_EXTENSIONS
            .iter()
            .any(|e| e.as_bytes().eq_ignore_ascii_case(tld));
    ok_labels && tld_ok
}

/// The end of a domain that starts at `from` (labels and dots, no trailing dot or hyphen), or
/// an address literal `[...]`.
fn domain_end(b: &[u8], from: usize) -> usize {
    if b.get(from) == Some(&b'[') {
        if let Some(close) = b[from..].iter().take(64).position(|c| *c == b']') {
            return from + close + 1;
        }
        return from;
    }
    let mut end = from;
    while end < b.len() && (is_label_byte(b[end]) || b[end] == b'.') && end - from < 255 {
        if b[end] == b'.' && (end == from || b[end - 1] == b'.') {
            break;
        }
        end += 1;
    }
    while end > from && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    end
}

/// Finds what to redact in `b`, in order, without overlaps: e-mail addresses, IP literals
/// (when `ips`), dotted host names, the known single-label names `words` (whole words, exact
/// case; any case in payloads, i.e. when `locals` is given) and words equal to a known local
/// part (`locals`, any case).
fn scan(
    b: &[u8],
    ips: bool,
    words: Option<&HashSet<String>>,
    locals: Option<&HashSet<String>>,
) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let free = |spans: &[Span], r: &Range<usize>| {
        spans
            .iter()
            .all(|s| s.range.end <= r.start || r.end <= s.range.start)
    };

    // E-mail addresses, around each '@'.
    for (i, _) in b.iter().enumerate().filter(|(_, c)| **c == b'@') {
        let mut start = i;
        while start > 0 && is_local_byte(b[start - 1]) && i - start < 128 {
            start -= 1;
        }
        if reply_code_at(b, start) {
            start += 4;
        }
        while start < i && b[start] == b'.' {
            start += 1;
        }
        let end = domain_end(b, i + 1);
        // A domain is a literal, a dotted host name or one label (`user@localhost`); a local
        // part does not end with a dot. (`mail.@20140814T110431.s` is a log file's name.)
        let domain = &b[(i + 1).min(end)..end];
        let domain_ok = domain.first() == Some(&b'[')
            || looks_like_host(domain)
            || (!domain.is_empty() && domain.iter().all(|c| is_label_byte(*c)));
        if start < i && end > i + 1 && b[i - 1] != b'.' && domain_ok {
            let r = start..end;
            if free(&spans, &r) {
                spans.push(Span {
                    range: r,
                    kind: Kind::Email { at: i },
                });
            }
        }
    }

    if ips {
        // Runs of hex digits, colons and dots: IPv6 (two colons at least) or IPv4.
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let starts = (c.is_ascii_hexdigit() || c == b':')
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'));
            if !starts {
                i += 1;
                continue;
            }
            let mut end = i;
            while end < b.len() && (b[end].is_ascii_hexdigit() || b[end] == b':' || b[end] == b'.')
            {
                end += 1;
            }
            let next_alnum = b.get(end).is_some_and(|c| c.is_ascii_alphanumeric());
            let mut run_end = end;
            while run_end > i && matches!(b[run_end - 1], b'.' | b':') {
                run_end -= 1;
            }
            let run = &b[i..run_end];
            let colons = run.iter().filter(|c| **c == b':').count();
            let parsed = std::str::from_utf8(run).ok().and_then(|t| {
                if colons >= 2 {
                    t.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
                } else if colons <= 1 {
                    // `192.0.2.1` or `192.0.2.1:25`.
                    let addr = t.split(':').next().unwrap_or(t);
                    let digits = addr.bytes().all(|c| c.is_ascii_digit() || c == b'.');
                    digits.then(|| parse_v4(addr)).flatten().map(IpAddr::V4)
                } else {
                    None
                }
            });
            if let Some(ip) = parsed.filter(|_| !next_alnum) {
                let len = match ip {
                    IpAddr::V4(_) => run.iter().position(|c| *c == b':').unwrap_or(run.len()),
                    IpAddr::V6(_) => run.len(),
                };
                let r = i..i + len;
                if free(&spans, &r) {
                    spans.push(Span {
                        range: r,
                        kind: Kind::Ip(ip),
                    });
                }
            }
            i = end.max(i + 1);
        }
    }

    // Dotted host names: maximal runs of label bytes and dots, not part of a path.
    let in_run = |c: u8| is_label_byte(c) || c == b'.';
    let mut i = 0;
    while i < b.len() {
        if !in_run(b[i]) {
            i += 1;
            continue;
        }
        let before = if i > 0 { b[i - 1] } else { b' ' };
        let mut end = i;
        while end < b.len() && in_run(b[end]) {
            end += 1;
        }
        let (mut start, mut run_end) = (i, end);
        // A multi-line reply's code (`250-esa.example.com`) is not part of the name.
        if reply_code_at(b, start) {
            start += 4;
        }
        while start < run_end && matches!(b[start], b'.' | b'-') {
            start += 1;
        }
        while run_end > start && matches!(b[run_end - 1], b'.' | b'-') {
            run_end -= 1;
        }
        let path = matches!(before, b'/' | b'\\' | b'@' | b'_') || b.get(end) == Some(&b'_');
        let r = start..run_end;
        if !path
            && b[r.clone()].contains(&b'.')
            && looks_like_host(&b[r.clone()])
            && free(&spans, &r)
        {
            spans.push(Span {
                range: r,
                kind: Kind::Host,
            });
        }
        i = end;
    }

    // Whole words: known single-label names and local parts.
    let payload = locals.is_some();
    let has_words = words.is_some_and(|w| !w.is_empty()) || locals.is_some_and(|l| !l.is_empty());
    if has_words {
        // Lengths of the known words: most words of a text are skipped without a look-up.
        let mut lengths = [false; 256];
        for w in words
            .into_iter()
            .flatten()
            .chain(locals.into_iter().flatten())
        {
            if let Some(l) = lengths.get_mut(w.len()) {
                *l = true;
            }
        }
        let word_byte = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        let mut i = 0;
        while i < b.len() {
            if !word_byte(b[i]) {
                i += 1;
                continue;
            }
            let mut end = i;
            while end < b.len() && word_byte(b[end]) {
                end += 1;
            }
            let w = &b[i..end];
            let bounded = (i == 0 || b[i - 1] != b'.') && b.get(end) != Some(&b'.');
            let r = i..end;
            let candidate = lengths.get(w.len()).copied().unwrap_or(false);
            if candidate && bounded && free(&spans, &r) {
                let text = String::from_utf8_lossy(w);
                let known_word = words.is_some_and(|ws| {
                    if payload {
                        ws.iter().any(|x| x.eq_ignore_ascii_case(&text))
                    } else {
                        ws.contains(text.as_ref())
                    }
                });
                let known_local = locals.is_some_and(|ls| ls.contains(&text.to_ascii_lowercase()));
                if known_word {
                    spans.push(Span {
                        range: r,
                        kind: Kind::Word,
                    });
                } else if known_local {
                    spans.push(Span {
                        range: r,
                        kind: Kind::Local,
                    });
                }
            }
            i = end;
        }
    }

    spans.sort_by_key(|s| s.range.start);
    spans
}

/// A multi-line reply's `ddd-` at the start of a line at `i`.
fn reply_code_at(b: &[u8], i: usize) -> bool {
    (i == 0 || b[i - 1] == b'\n')
        && b.get(i..i + 4)
            .is_some_and(|p| p[..3].iter().all(u8::is_ascii_digit) && p[3] == b'-')
}

/// A dotted quad, each part 1–3 digits and at most 255.
fn parse_v4(t: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = t.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut o = [0u8; 4];
    for (k, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 {
            return None;
        }
        o[k] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(o))
}

// ---------------------------------------------------------------------------------------------
// AUTH credentials in a client stream

/// Blanks AUTH credentials in a client's byte stream, packet by packet: the initial response
/// after `AUTH <mechanism>` and the lines that answer the server's challenges (base64 lines,
/// or `*`), up to the next command. Same length; line ends kept. Lines seen masked once are
/// masked again when retransmitted.
#[derive(Debug, Clone, Default)]
pub struct AuthMask {
    /// Inside a line (its start has been seen and judged).
    mid_line: bool,
    /// Column in the current line.
    col: usize,
    /// From which column of the current line bytes are masked, if any.
    mask_from: Option<usize>,
    /// After an AUTH command: the next lines are credentials while they look like them.
    in_auth: bool,
    /// Credential lines already masked (a retransmission carries them again).
    masked: HashSet<Vec<u8>>,
}

const VERBS: &[&str] = &[
    "HELO", "EHLO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "EXPN",
    "HELP", "STARTTLS", "AUTH", "TURN", "ETRN", "XCLIENT", "XFORWARD",
];

impl AuthMask {
    pub fn new() -> Self {
        Self::default()
    }

    /// Masks credentials in one segment of the client's stream (in place).
    pub fn apply(&mut self, bytes: &mut [u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\n' {
                self.mid_line = false;
                self.mask_from = None;
                i += 1;
                continue;
            }
            if !self.mid_line {
                self.mid_line = true;
                self.col = 0;
                self.mask_from = self.judge(&bytes[i..]);
            }
            if self.mask_from.is_some_and(|from| self.col >= from) && bytes[i] != b'\r' {
                bytes[i] = b'x';
            }
            self.col += 1;
            i += 1;
        }
    }

    /// Judges a line from its start (as far as this segment holds it): the column from which
    /// it is masked, if it is.
    fn judge(&mut self, rest: &[u8]) -> Option<usize> {
        let line_end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let line = &rest[..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let word_end = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
        let verb = &line[..word_end];
        if verb.eq_ignore_ascii_case(b"AUTH") {
            self.in_auth = true;
            // `AUTH PLAIN <initial response>`: masked after the mechanism.
            let mech_end = line[word_end..]
                .iter()
                .skip(1)
                .position(|b| *b == b' ')
                .map(|p| word_end + 1 + p)?;
            let cred = &line[mech_end + 1..];
            if !cred.is_empty() {
                self.masked.insert(cred.to_vec());
            }
            return Some(mech_end + 1);
        }
        let is_verb = VERBS
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(verb));
        if self.in_auth && !is_verb && looks_like_credential(line) {
            self.masked.insert(line.to_vec());
            return Some(0);
        }
        self.in_auth = false;
        if !line.is_empty() && !self.masked.is_empty() && self.masked.contains(line) {
            return Some(0);
        }
        None
    }
}

fn looks_like_credential(line: &[u8]) -> bool {
    line == b"*"
        || (!line.is_empty()
            && line
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
}

// ---------------------------------------------------------------------------------------------
// The report walk

/// What to do with each kind of string of the report.
trait Visit {
    /// Free text from the wire or the log.
    fn text(&mut self, s: &mut String);
    /// Text written by icidtrace that quotes the wire.
    fn prose(&mut self, s: &mut String);
    fn address(&mut self, s: &mut String);
    fn host(&mut self, s: &mut String);
    /// `ip:port` or a bare IP, as text.
    fn addr_text(&mut self, s: &mut String);
    fn socket(&mut self, s: &mut SocketAddr);
}

/// First pass: learns the single-label host names and every IP address of the input (so that
/// no token equals one of them), and gives envelope addresses and host names their tokens
/// first, in report order (IP tokens are handed out in the second pass, once every input
/// address is known).
struct Learn<'a>(&'a mut Redactor);

impl Learn<'_> {
    fn ips_in(&mut self, s: &str) {
        for sp in scan(s.as_bytes(), true, None, None) {
            if let Kind::Ip(ip) = sp.kind {
                self.0.reserve_ip(ip);
            }
        }
    }
}

impl Visit for Learn<'_> {
    fn text(&mut self, s: &mut String) {
        self.ips_in(s);
    }
    fn prose(&mut self, s: &mut String) {
        self.ips_in(s);
    }
    fn address(&mut self, s: &mut String) {
        self.ips_in(s);
        // Envelope addresses get the first tokens, and their domains are domains.
        let _ = self.0.address(s);
    }
    fn host(&mut self, s: &mut String) {
        self.0.learn_word(s);
        self.ips_in(s);
        // Host names get host tokens even when a log line quotes them first as a domain.
        let _ = self.0.host(s);
    }
    fn addr_text(&mut self, s: &mut String) {
        self.ips_in(s);
    }
    fn socket(&mut self, s: &mut SocketAddr) {
        self.0.reserve_ip(s.ip());
    }
}

/// Second pass: rewrites.
struct Rewrite<'a>(&'a mut Redactor);

impl Visit for Rewrite<'_> {
    fn text(&mut self, s: &mut String) {
        *s = self.0.text(s);
    }
    fn prose(&mut self, s: &mut String) {
        *s = self.0.prose(s);
    }
    fn address(&mut self, s: &mut String) {
        *s = self.0.address(s);
    }
    fn host(&mut self, s: &mut String) {
        *s = self.0.host(s);
    }
    fn addr_text(&mut self, s: &mut String) {
        *s = self.0.addr_text(s);
    }
    fn socket(&mut self, s: &mut SocketAddr) {
        *s = self.0.socket(*s);
    }
}

/// A copy of `report` with names, addresses and (if the redactor says so) IP addresses
/// replaced by tokens. Verdicts, times, counts and numbers are unchanged.
pub fn redact_report(report: &Report, r: &mut Redactor) -> Report {
    let mut out = report.clone();
    r.learning = true;
    walk_report(&mut out.clone(), &mut Learn(r));
    r.learning = false;
    walk_report(&mut out, &mut Rewrite(r));
    out
}

fn opt<T>(x: &mut Option<T>, f: impl FnOnce(&mut T)) {
    if let Some(x) = x.as_mut() {
        f(x);
    }
}

fn walk_report(report: &mut Report, v: &mut dyn Visit) {
    let Report {
        tool: _,
        clock,
        clocks,
        connections,
        unmatched_icids,
        summary: _,
        captures,
        logs,
        problems,
    } = report;
    opt(clock, |c| walk_clock(c, v));
    clocks.iter_mut().for_each(|c| walk_clock(c, v));
    connections.iter_mut().for_each(|c| walk_connection(c, v));
    unmatched_icids
        .iter_mut()
        .for_each(|u| walk_unmatched(u, v));
    walk_captures(captures, v);
    opt(logs, |l| walk_logs(l, v));
    problems.iter_mut().for_each(|p| v.prose(p));
}

fn walk_clock(c: &mut Clock, v: &mut dyn Visit) {
    let Clock {
        appliance,
        offset_seconds: _,
        offset: _,
        source: _,
        zone: _,
        skew_seconds: _,
        supporting_pairs: _,
        header_offset_seconds: _,
    } = c;
    v.text(appliance);
}

fn walk_unmatched(u: &mut UnmatchedIcid, v: &mut dyn Visit) {
    let UnmatchedIcid {
        appliance,
        icid: _,
        remote_ip,
        interface_ip,
        connect: _,
        log_outcome: _,
        mids: _,
        reason,
    } = u;
    v.text(appliance);
    opt(remote_ip, |s| v.addr_text(s));
    opt(interface_ip, |s| v.addr_text(s));
    v.prose(reason);
}

fn walk_captures(c: &mut CaptureSummary, v: &mut dyn Visit) {
    let CaptureSummary {
        files,
        filter,
        records: _,
        tcp_packets: _,
        other_packets: _,
        ignored: _,
        filtered_out: _,
        truncated_packets: _,
        first_ts: _,
        last_ts: _,
    } = c;
    opt(filter, |f| v.prose(f));
    for f in files {
        let CaptureFile {
            name: _,
            format: _,
            gzip: _,
            link_types: _,
            snaplen: _,
            records: _,
            bytes: _,
            packet_bytes: _,
            tcp_packets: _,
            filtered_out: _,
            first_ts: _,
            last_ts: _,
            backwards_timestamps: _,
            damage: _,
            notes,
        } = f;
        notes.iter_mut().for_each(|n| v.prose(n));
    }
}

fn walk_logs(l: &mut LogSummary, v: &mut dyn Visit) {
    let LogSummary {
        files,
        counts: _,
        records_by_kind: _,
        duplicates: _,
        internal_icid_lines: _,
        icids: _,
        mids: _,
        outcomes: _,
        appliances,
        time_offsets,
        samples,
    } = l;
    // Syslog hosts first: appliance keys may be those names.
    for f in files.iter_mut() {
        f.hosts.iter_mut().for_each(|h| v.host(h));
    }
    for f in files {
        let LogFile {
            path: _,
            size: _,
            gzip: _,
            rotation: _,
            stamp: _,
            appliance,
            version: _,
            serial: _,
            time_offsets: _,
            hosts: _,
            year_hint: _,
            counts: _,
            damage,
        } = f;
        v.text(appliance);
        opt(damage, |d| v.prose(d));
    }
    appliances.iter_mut().for_each(|a| v.text(a));
    for t in time_offsets {
        let TimeOffsetHint {
            appliance,
            file: _,
            line: _,
            seconds: _,
        } = t;
        v.text(appliance);
    }
    for s in samples {
        let UnknownLine {
            file: _,
            line: _,
            reason: _,
            text,
        } = s;
        v.text(text);
    }
}

fn walk_connection(c: &mut ConnectionReport, v: &mut dyn Visit) {
    let ConnectionReport {
        id: _,
        client,
        server,
        first_seen: _,
        last_seen: _,
        duration_seconds: _,
        icid: _,
        mids: _,
        log_outcome: _,
        verdict,
        log_match,
        close: _,
        smtp,
        tcp,
        wireshark_filter,
    } = c;
    v.addr_text(client);
    v.addr_text(server);
    walk_verdict(verdict, v);
    opt(log_match, |m| walk_match(m, v));
    walk_smtp(smtp, v);
    walk_tcp(tcp, v);
    v.prose(wireshark_filter);
}

fn walk_verdict(verdict: &mut Verdict, v: &mut dyn Visit) {
    let Verdict {
        layer: _,
        initiator: _,
        cause: _,
        phase: _,
        reason,
        evidence,
        next_steps,
        findings,
    } = verdict;
    v.prose(reason);
    for e in evidence {
        let Evidence { at: _, fact } = e;
        v.prose(fact);
    }
    v.prose(next_steps);
    for f in findings {
        let Finding {
            kind: _,
            side: _,
            at: _,
            frame: _,
            detail,
        } = f;
        v.prose(detail);
    }
}

fn walk_match(m: &mut LogMatch, v: &mut dyn Visit) {
    let LogMatch {
        appliance,
        confidence: _,
        start_delta_seconds: _,
        close_delta_seconds: _,
        envelope_agrees: _,
        agreement: _,
        agreement_reason,
        filled_in,
        log_lines,
    } = m;
    v.text(appliance);
    opt(agreement_reason, |r| v.prose(r));
    opt(filled_in, |f| {
        let FilledIn {
            layer: _,
            initiator: _,
            cause: _,
            phase: _,
            reason,
        } = f;
        v.prose(reason);
    });
    for l in log_lines {
        let LogLine {
            file: _,
            line: _,
            text,
        } = l;
        v.text(text);
    }
}

fn walk_tcp(t: &mut TcpConnection, v: &mut dyn Visit) {
    // The other fields are numbers, times and frame references.
    v.socket(&mut t.client);
    v.socket(&mut t.server);
}

fn walk_smtp(s: &mut SmtpFacts, v: &mut dyn Visit) {
    let SmtpFacts {
        quit: _,
        starttls: _,
        transactions: _,
        completed: _,
        banner: _,
        phase: _,
        session,
    } = s;
    walk_session(session, v);
}

fn walk_reply(r: &mut Reply, v: &mut dyn Visit) {
    let Reply {
        code: _,
        at: _,
        text,
    } = r;
    v.text(text);
}

fn is_hello(verb: &str) -> bool {
    ["EHLO", "HELO", "LHLO"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(verb))
}

fn is_envelope(verb: &str) -> bool {
    verb.eq_ignore_ascii_case("MAIL") || verb.eq_ignore_ascii_case("RCPT")
}

fn walk_command(c: &mut Command, v: &mut dyn Visit) {
    let Command {
        verb,
        at: _,
        reply,
        arg,
    } = c;
    let verb_text = verb.clone();
    opt(arg, |a| {
        if is_hello(&verb_text) {
            v.host(a);
        } else if is_envelope(&verb_text) {
            v.address(a);
        } else {
            v.text(a);
        }
    });
    v.text(verb);
    opt(reply, |r| walk_reply(r, v));
}

fn walk_session(s: &mut SessionSummary, v: &mut dyn Visit) {
    let SessionSummary {
        banner,
        greeting,
        starttls,
        tls: _,
        auth,
        transactions,
        quit,
        first_command,
        last_command,
        last_reply,
        unprompted_replies,
        unanswered: _,
        commands: _,
        replies: _,
        command_lines: _,
        client_bytes: _,
        server_bytes: _,
        client_last_at: _,
        server_last_at: _,
        phase: _,
        anomalies,
        anomalies_dropped: _,
        transactions_dropped: _,
        unprompted_dropped: _,
        events,
        events_dropped: _,
    } = s;
    opt(banner, |r| walk_reply(r, v));
    opt(greeting, |(_, host)| v.host(host));
    opt(starttls, |c| walk_command(c, v));
    opt(auth, |c| walk_command(c, v));
    for t in transactions {
        walk_transaction(t, v);
    }
    opt(quit, |c| walk_command(c, v));
    opt(first_command, |c| walk_command(c, v));
    opt(last_command, |c| walk_command(c, v));
    opt(last_reply, |r| walk_reply(r, v));
    unprompted_replies.iter_mut().for_each(|r| walk_reply(r, v));
    for a in anomalies {
        match a {
            SmtpAnomaly::ReplyWithoutCode { at: _, text } => v.text(text),
            SmtpAnomaly::UnknownCommand { at: _, verb } => v.text(verb),
            SmtpAnomaly::ReplyAssumed { at: _, verb } => v.text(verb),
            SmtpAnomaly::MaskedReplyLine { at: _, text } => v.text(text),
            SmtpAnomaly::Gap { .. }
            | SmtpAnomaly::LineTooLong { .. }
            | SmtpAnomaly::CommandBeforeBanner { .. }
            | SmtpAnomaly::UnpromptedReply { .. }
            | SmtpAnomaly::PlaintextAfterStarttls { .. }
            | SmtpAnomaly::TlsWithoutStarttls { .. }
            | SmtpAnomaly::UnterminatedLine { .. }
            | SmtpAnomaly::MaskedCommand { .. } => {}
        }
    }
    for e in events {
        match e {
            SmtpEvent::Command { at: _, verb, arg } => {
                let verb_text = verb.clone();
                opt(arg, |a| {
                    if is_hello(&verb_text) {
                        v.host(a);
                    } else if is_envelope(&verb_text) {
                        v.address(a);
                    } else {
                        v.text(a);
                    }
                });
                v.text(verb);
            }
            SmtpEvent::Reply {
                at: _,
                code: _,
                text,
            } => v.text(text),
            SmtpEvent::EndOfData { .. } => {}
        }
    }
}

fn walk_transaction(t: &mut Transaction, v: &mut dyn Visit) {
    let Transaction {
        mail_at: _,
        mail_from,
        mail_reply,
        rcpt_to,
        data,
        ended_by,
        rcpt_dropped: _,
    } = t;
    v.address(mail_from);
    opt(mail_reply, |r| walk_reply(r, v));
    for rc in rcpt_to {
        let Recipient { address, reply } = rc;
        v.address(address);
        opt(reply, |r| walk_reply(r, v));
    }
    opt(data, |d| {
        let MessageData {
            kind: _,
            command_at: _,
            go_ahead,
            end_at: _,
            bytes: _,
            final_reply,
            refused,
            lines: _,
        } = d;
        opt(go_ahead, |r| walk_reply(r, v));
        opt(final_reply, |r| walk_reply(r, v));
        opt(refused, |r| walk_reply(r, v));
    });
    opt(ended_by, |e| v.text(e));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_address_gets_the_same_token() {
        let mut r = Redactor::new(false);
        let a = r.address("alice@example.net");
        let b = r.address("bob@example.com");
        assert_eq!(a, "user-1@domain-1.example");
        assert_eq!(b, "user-2@domain-2.example");
        assert_eq!(r.address("Alice@EXAMPLE.net"), a);
        assert_eq!(
            r.text("250 sender <alice@example.net> ok"),
            "250 sender <user-1@domain-1.example> ok"
        );
        assert_eq!(r.address(""), "");
        assert_eq!(r.address("postmaster"), "user-3");
    }

    #[test]
    fn host_names_in_text_and_typed() {
        let mut r = Redactor::new(false);
        assert_eq!(r.host("mta1.example.net"), "host-1.example");
        assert_eq!(
            r.text("220 esa.example.com ESMTP Sendmail 8.14.3/8.14.3; ready."),
            "220 host-2.example ESMTP Sendmail 8.14.3/8.14.3; ready."
        );
        // Paths and file names are not hosts; numbers are not hosts.
        assert_eq!(
            r.prose("captures/burst/capture.pcap: version 15.0.0-104, e.g. 3.0 s"),
            "captures/burst/capture.pcap: version 15.0.0-104, e.g. 3.0 s"
        );
        assert_eq!(r.text("mail.current"), "mail.current");
        assert_eq!(
            r.prose("mail.@20140814T110431.s: damaged"),
            "mail.@20140814T110431.s: damaged"
        );
        // IPs stay without --redact-ips.
        assert_eq!(
            r.text("address 198.51.100.10 reverse dns host mta1.example.net verified yes"),
            "address 198.51.100.10 reverse dns host host-1.example verified yes"
        );
    }

    #[test]
    fn single_label_ehlo_names_are_replaced_where_known() {
        let mut r = Redactor::new(false);
        let mut rep = String::from("WIN-ABC123");
        Learn(&mut r).host(&mut rep);
        assert_eq!(r.host("WIN-ABC123"), "host-1.example");
        assert_eq!(
            r.text("250-esa Hello WIN-ABC123 [10.1.2.3]"),
            "250-esa Hello host-1.example [10.1.2.3]"
        );
        // Not in icidtrace's own words.
        assert_eq!(r.prose("WIN-ABC123"), "WIN-ABC123");
    }

    #[test]
    fn ips_map_into_documentation_ranges_avoiding_inputs() {
        let mut r = Redactor::new(true);
        r.reserve_ip("192.0.2.1".parse().unwrap());
        let a = r.ip("198.51.100.10".parse().unwrap());
        assert_eq!(a.to_string(), "192.0.2.2");
        let b = r.ip("192.0.2.1".parse().unwrap());
        assert_eq!(b.to_string(), "192.0.2.3");
        assert_eq!(r.ip("198.51.100.10".parse().unwrap()), a);
        assert_eq!(
            r.addr_text("[2001:db8::7]:25"),
            "[2001:db8::1]:25".to_string()
        );
        assert_eq!(
            r.text("address 198.51.100.10 at 16:30:01.735662 and [2001:db8::7]"),
            "address 192.0.2.2 at 16:30:01.735662 and [2001:db8::1]"
        );
        assert_eq!(
            r.address("x@[198.51.100.10]"),
            "user-1@[192.0.2.2]".to_string()
        );
        assert_eq!(v4_token(254).to_string(), "198.51.100.1");
        assert_eq!(v4_token(254 * 3).to_string(), "10.0.0.1");
    }

    #[test]
    fn payload_tokens_keep_the_length() {
        let mut r = Redactor::new(true);
        let a = r.address("alice@example.net");
        assert_eq!(a, "user-1@domain-1.example");
        let p = b"MAIL FROM:<alice@example.net>\r\nEHLO mta1.example.net\r\nHello Alice, from [198.51.100.10] a@b.io\r\n";
        let out = redact_payload(p, &mut r);
        assert_eq!(out.len(), p.len());
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "MAIL FROM:<user1@d01.example>\r\nEHLO host-001.example\r\nHello user1, from [192.0.002.001] x@d002\r\n"
        );
        // Deterministic: the same bytes give the same result.
        assert_eq!(redact_payload(p, &mut r), s.as_bytes());
    }

    #[test]
    fn fitting() {
        assert_eq!(fit("user", 1, 9), "user-0001");
        assert_eq!(fit("user", 12, 3), "u12");
        assert_eq!(fit("user", 123, 2), "xx");
        assert_eq!(
            fit_ip("192.0.2.1".parse().unwrap(), 13).unwrap(),
            "192.0.002.001"
        );
        assert_eq!(fit_ip("192.0.2.1".parse().unwrap(), 7), None);
        for n in 11..=39 {
            let t = fit_ip("2001:db8::1".parse().unwrap(), n).unwrap();
            assert_eq!(t.len(), n);
            assert_eq!(
                t.parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse::<IpAddr>().unwrap()
            );
        }
        assert_eq!(fit_ip("2001:db8::1".parse().unwrap(), 10), None);
    }

    #[test]
    fn auth_credentials_are_blanked() {
        let mut m = AuthMask::new();
        let mut a = b"EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n".to_vec();
        m.apply(&mut a);
        assert_eq!(a, b"EHLO x\r\nAUTH PLAIN xxxxxxxxxxxxxxxxxxxx\r\n".to_vec());
        let mut b = b"AUTH LOGIN\r\n".to_vec();
        m.apply(&mut b);
        assert_eq!(b, b"AUTH LOGIN\r\n".to_vec());
        let mut c = b"YWxpY2U=\r\n".to_vec();
        m.apply(&mut c);
        assert_eq!(c, b"xxxxxxxx\r\n".to_vec());
        let mut d = b"MAIL FROM:<a@b>\r\n".to_vec();
        m.apply(&mut d);
        assert_eq!(d, b"MAIL FROM:<a@b>\r\n".to_vec());
        // An initial response split across two segments.
        let mut f = b"AUTH PLAIN AGFs".to_vec();
        m.apply(&mut f);
        assert_eq!(f, b"AUTH PLAIN xxxx".to_vec());
        let mut g = b"aWNl\r\nQUIT\r\n".to_vec();
        m.apply(&mut g);
        assert_eq!(g, b"xxxx\r\nQUIT\r\n".to_vec());
        // A retransmission of a credential line is masked again.
        let mut e = b"YWxpY2U=\r\n".to_vec();
        m.apply(&mut e);
        assert_eq!(e, b"xxxxxxxx\r\n".to_vec());
    }
}
