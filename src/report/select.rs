//! Which connections a report shows, and in which order: `--client`, `--server`, `--since`,
//! `--until`, `--only` and `--sort` of `icidtrace analyze`.
//!
//! Contract: [`select`] is a pure function over the [`Report`]. It keeps the connections that
//! match, keeps each one's `id` (so `#7` names the same connection in the table, the JSON, the
//! Markdown and HTML reports and the `--export` file names, filtered or not), changes their
//! order only, and recomputes no count: `summary` still describes everything that was read;
//! `summary.selection` says how many connections of how many are shown, and why. Every output
//! format is rendered from the selected report, so the filters apply to all of them alike.
//!
//! The ICIDs of the log that no connection matched (`unmatched_icids`) are kept when their
//! remote IP matches `--client` and their connect time falls in `--since`/`--until`; the other
//! criteria are about connections and leave them alone.

use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;

use super::{ConnectionReport, Report};
use crate::correlate::{Agreement, UnmatchedIcid};
use crate::types::Timestamp;
use crate::verdict::Layer;

/// An IP address with an optional prefix length: `198.51.100.7`, `198.51.100.0/24`,
/// `2001:db8::/32`. IPv4 addresses written as IPv4-mapped IPv6 (`::ffff:198.51.100.7`) in a
/// capture match IPv4 prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length (32 or 128 for one address).
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` lies in this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask32(u32::from(ip), self.len) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask128(u128::from(ip), self.len) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(x: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        x & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask128(x: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        x & (u128::MAX << (128 - u32::from(len)))
    }
}

impl FromStr for IpPrefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        // `[2001:db8::1]` as in the table's client column.
        let ip = ip
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(ip);
        let addr: IpAddr = ip.parse().map_err(|_| {
            format!(
                "'{s}' is not an IP address or prefix: give an address (198.51.100.7, \
                 2001:db8::7) or an address and a prefix length (198.51.100.0/24, 2001:db8::/32)"
            )
        })?;
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(format!(
                        "'{s}': the prefix length must be a number from 0 to {max} for an {} \
                         address",
                        if addr.is_ipv4() { "IPv4" } else { "IPv6" }
                    ));
                }
            },
        };
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(mask32(u32::from(a), len).into()),
            IpAddr::V6(a) => IpAddr::V6(mask128(u128::from(a), len).into()),
        };
        Ok(IpPrefix { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.len == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// A kind of connection worth attention: what `--only` keeps and what `--fail-on` fails on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Concern {
    /// Ended without a clean QUIT: every verdict layer but `none`.
    Aborted,
    /// Matched to an ICID whose log outcome tells another story than the wire (✗).
    Disagreeing,
    /// With findings: signs of a device in the path, path trouble (the table's `[...]`).
    Findings,
}

impl Concern {
    pub fn as_str(self) -> &'static str {
        match self {
            Concern::Aborted => "aborted",
            Concern::Disagreeing => "disagreeing",
            Concern::Findings => "findings",
        }
    }

    /// Whether the connection is of this kind.
    pub fn matches(self, c: &ConnectionReport) -> bool {
        match self {
            Concern::Aborted => c.verdict.layer != Layer::None,
            Concern::Disagreeing => c
                .log_match
                .as_ref()
                .is_some_and(|m| m.agreement == Agreement::Disagrees),
            Concern::Findings => !c.verdict.findings.is_empty(),
        }
    }
}

/// The order of the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// By first packet time (the report's own order).
    #[default]
    Start,
    /// Longest first (first to last packet), then by start.
    Duration,
    /// By layer — application, network, timeout, server, unknown, then none — then by cause,
    /// then by start: the aborted connections first, alike ones together.
    Verdict,
}

impl SortKey {
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Start => "start",
            SortKey::Duration => "duration",
            SortKey::Verdict => "verdict",
        }
    }
}

/// What to show. The default shows everything in the report's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Keep connections whose client address is in one of these (none: any client).
    pub clients: Vec<IpPrefix>,
    /// Keep connections whose server address is in one of these (none: any server).
    pub servers: Vec<IpPrefix>,
    /// Keep connections still open at or after this time (last packet at or after it).
    pub since: Option<Timestamp>,
    /// Keep connections already open at or before this time (first packet at or before it).
    pub until: Option<Timestamp>,
    /// Keep connections of any of these kinds (none: every connection).
    pub only: Vec<Concern>,
    pub sort: SortKey,
}

impl Selection {
    /// Whether this selection keeps everything in the report's order.
    pub fn is_everything(&self) -> bool {
        *self == Selection::default()
    }

    /// Whether `c` is kept.
    pub fn keeps(&self, c: &ConnectionReport) -> bool {
        (self.clients.is_empty() || self.clients.iter().any(|p| p.contains(c.tcp.client.ip())))
            && (self.servers.is_empty()
                || self.servers.iter().any(|p| p.contains(c.tcp.server.ip())))
            && self.since.is_none_or(|t| c.last_seen >= t)
            && self.until.is_none_or(|t| c.first_seen <= t)
            && (self.only.is_empty() || self.only.iter().any(|k| k.matches(c)))
    }

    fn keeps_unmatched(&self, u: &UnmatchedIcid) -> bool {
        let ip = u
            .remote_ip
            .as_deref()
            .and_then(|s| s.parse::<IpAddr>().ok());
        let client_ok = self.clients.is_empty()
            || ip.is_some_and(|ip| self.clients.iter().any(|p| p.contains(ip)));
        let time_ok = match u.connect {
            Some(t) => self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|x| t <= x),
            None => true,
        };
        client_ok && time_ok
    }

    /// The selection in words, for the table's `shown:` line: `only aborted, client
    /// 198.51.100.0/24, since 2026-11-23 16:30:00 UTC, by duration`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.only.is_empty() {
            let kinds: Vec<&str> = self.only.iter().map(|k| k.as_str()).collect();
            parts.push(format!("only {}", kinds.join(" or ")));
        }
        let list = |v: &[IpPrefix]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        if !self.clients.is_empty() {
            parts.push(format!("client {}", list(&self.clients).join(" or ")));
        }
        if !self.servers.is_empty() {
            parts.push(format!("server {}", list(&self.servers).join(" or ")));
        }
        let at = |t: Timestamp| {
            t.to_datetime()
                .format("%Y-%m-%d %H:%M:%S%.f UTC")
                .to_string()
        };
        if let Some(t) = self.since {
            parts.push(format!("since {}", at(t)));
        }
        if let Some(t) = self.until {
            parts.push(format!("until {}", at(t)));
        }
        if self.sort != SortKey::Start {
            parts.push(format!("by {}", self.sort.as_str()));
        }
        parts.join(", ")
    }
}

/// What `summary.selection` of the JSON says: the criteria, and how many connections of how
/// many are shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SelectionSummary {
    /// Connections shown.
    pub shown: u32,
    /// Connections in the captures (`summary.connections`).
    pub of: u32,
    /// `--client` prefixes (any of them), as `198.51.100.0/24`; empty: any client.
    pub client: Vec<String>,
    /// `--server` prefixes; empty: any server.
    pub server: Vec<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// `--only` kinds (any of them): `aborted`, `disagreeing`, `findings`; empty: all.
    pub only: Vec<String>,
    /// `start`, `duration` or `verdict`.
    pub sort: String,
    /// ICIDs without a connection shown, of how many.
    pub unmatched_icids_shown: u32,
    pub unmatched_icids_of: u32,
}

/// Rank of a layer for `--sort verdict`.
fn layer_rank(l: Layer) -> u8 {
    match l {
        Layer::Application => 0,
        Layer::Network => 1,
        Layer::Timeout => 2,
        Layer::Server => 3,
        Layer::Unknown => 4,
        Layer::None => 5,
    }
}

fn compare(key: SortKey, a: &ConnectionReport, b: &ConnectionReport) -> Ordering {
    let by_start = (a.first_seen, a.id).cmp(&(b.first_seen, b.id));
    match key {
        SortKey::Start => by_start,
        SortKey::Duration => b
            .duration_seconds
            .total_cmp(&a.duration_seconds)
            .then(by_start),
        SortKey::Verdict => layer_rank(a.verdict.layer)
            .cmp(&layer_rank(b.verdict.layer))
            .then_with(|| a.verdict.cause.as_str().cmp(b.verdict.cause.as_str()))
            .then(by_start),
    }
}

/// The report with only the connections `sel` keeps, in its order; ids, counts and everything
/// else unchanged. With the default selection the report is returned as it was (no
/// `summary.selection`).
pub fn select(mut report: Report, sel: &Selection) -> Report {
    if sel.is_everything() {
        return report;
    }
    let of = report.connections.len() as u32;
    let unmatched_of = report.unmatched_icids.len() as u32;
    report.connections.retain(|c| sel.keeps(c));
    report.connections.sort_by(|a, b| compare(sel.sort, a, b));
    report.unmatched_icids.retain(|u| sel.keeps_unmatched(u));
    let list = |v: &[IpPrefix]| v.iter().map(ToString::to_string).collect();
    report.summary.selection = Some(SelectionSummary {
        shown: report.connections.len() as u32,
        of,
        client: list(&sel.clients),
        server: list(&sel.servers),
        since: sel.since,
        until: sel.until,
        only: sel.only.iter().map(|k| k.as_str().to_string()).collect(),
        sort: sel.sort.as_str().to_string(),
        unmatched_icids_shown: report.unmatched_icids.len() as u32,
        unmatched_icids_of: unmatched_of,
    });
    report
}

/// Parses a `--since`/`--until` time:
///
/// - RFC 3339: `2026-11-23T16:29:58Z`, `2026-11-23T11:29:58-05:00`, fractions allowed, `T` or
///   a space between date and time;
/// - `YYYY-MM-DD HH:MM[:SS[.fff]]`: UTC;
/// - the same followed by an offset (`+02:00`, `-0500`, `Z`) or an IANA time zone name
///   (`Europe/Berlin`, `UTC`), after a space;
/// - `YYYY-MM-DD`: midnight at the start of that day, UTC.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    let text = s.trim();
    let bad = || {
        format!(
            "'{s}' is not a time: give RFC 3339 (2026-11-23T16:29:58Z, \
             2026-11-23T17:29:58+01:00) or 'YYYY-MM-DD HH:MM:SS' in UTC, optionally followed by \
             an offset or a time zone ('2026-11-23 17:29:58 Europe/Berlin')"
        )
    };
    let ts =
        |d: DateTime<Utc>| Timestamp::from_secs_nanos(d.timestamp(), d.timestamp_subsec_nanos());
    // RFC 3339, with `T` or a space.
    for candidate in [text.to_string(), text.replacen(' ', "T", 1)] {
        if let Ok(d) = DateTime::parse_from_rfc3339(&candidate) {
            return Ok(ts(d.with_timezone(&Utc)));
        }
    }
    let naive = |t: &str| -> Option<NaiveDateTime> {
        let t = t.trim();
        [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
    };
    if let Some(n) = naive(text) {
        return Ok(ts(n.and_utc()));
    }
    // A naive time, then a zone or an offset.
    let Some((when, zone)) = text.rsplit_once(' ') else {
        return Err(bad());
    };
    let Some(n) = naive(when) else {
        return Err(bad());
    };
    if let Ok(tz) = zone.parse::<chrono_tz::Tz>() {
        return match tz.from_local_datetime(&n) {
            LocalResult::Single(d) => Ok(ts(d.with_timezone(&Utc))),
            // The hour a clock is set back: the earlier of the two.
            LocalResult::Ambiguous(a, _) => Ok(ts(a.with_timezone(&Utc))),
            LocalResult::None => Err(format!(
                "'{s}': {} does not exist in {zone} (the clock skips it): give a UTC time \
                 or an offset",
                n.format("%Y-%m-%d %H:%M:%S")
            )),
        };
    }
    let zone = if zone == "Z" { "+00:00" } else { zone };
    for f in ["%Y-%m-%d %H:%M:%S%.f %:z", "%Y-%m-%d %H:%M:%S%.f %z"] {
        let joined = format!("{} {zone}", n.format("%Y-%m-%d %H:%M:%S%.f"));
        if let Ok(d) = DateTime::parse_from_str(&joined, f) {
            return Ok(ts(d.with_timezone(&Utc)));
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        parse_time(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn prefixes_parse_and_match() {
        let p: IpPrefix = "198.51.100.7/24".parse().unwrap();
        assert_eq!(p.to_string(), "198.51.100.0/24");
        assert!(p.contains("198.51.100.200".parse().unwrap()));
        assert!(!p.contains("198.51.101.1".parse().unwrap()));
        assert!(p.contains("::ffff:198.51.100.9".parse().unwrap()));
        let one: IpPrefix = "198.51.100.7".parse().unwrap();
        assert_eq!(one.to_string(), "198.51.100.7");
        assert!(one.contains("198.51.100.7".parse().unwrap()));
        assert!(!one.contains("198.51.100.8".parse().unwrap()));
        let v6: IpPrefix = "[2001:db8::1]/32".parse().unwrap();
        assert_eq!(v6.to_string(), "2001:db8::/32");
        assert!(v6.contains("2001:db8:ffff::2".parse().unwrap()));
        assert!(!v6.contains("198.51.100.7".parse().unwrap()));
        let all: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        for bad in [
            "198.51.100.0/33",
            "2001:db8::/129",
            "198.51.100.0/x",
            "300.1.1.1",
            "",
            "a/8",
        ] {
            assert!(bad.parse::<IpPrefix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn times_in_every_accepted_form() {
        let want = t("2026-11-23T16:29:58Z");
        assert_eq!(want.to_rfc3339(), "2026-11-23T16:29:58.000000Z");
        for s in [
            "2026-11-23 16:29:58",
            "2026-11-23T16:29:58",
            "2026-11-23 16:29:58Z",
            "2026-11-23 16:29:58 UTC",
            "2026-11-23T17:29:58+01:00",
            "2026-11-23 17:29:58 +01:00",
            "2026-11-23 11:29:58 -0500",
            "2026-11-23 17:29:58 Europe/Berlin",
            "2026-11-23 11:29:58 America/New_York",
        ] {
            assert_eq!(t(s), want, "{s}");
        }
        assert_eq!(
            t("2026-11-23 16:29:58.25").to_rfc3339(),
            "2026-11-23T16:29:58.250000Z"
        );
        assert_eq!(t("2026-11-23").to_rfc3339(), "2026-11-23T00:00:00.000000Z");
        assert_eq!(
            t("2026-11-23 16:29").to_rfc3339(),
            "2026-11-23T16:29:00.000000Z"
        );
        for bad in [
            "yesterday",
            "16:29:58",
            "2026-13-01",
            "2026-11-23 16:29:58 Mars/Base",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        // The hour skipped when clocks go forward does not exist.
        assert!(parse_time("2026-03-29 02:30:00 Europe/Berlin").is_err());
    }
}
