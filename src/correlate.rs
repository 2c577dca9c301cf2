//! Stage: line connections up with the mail log's ICIDs.
//!
//! Contract: [`correlate`] takes the connections (their TCP facts, SMTP summary and wire
//! verdict) and the parsed [`MailLog`], and returns the clock alignment it found, the ICID each
//! connection most likely is (with a confidence and what supports it), whether the wire verdict
//! agrees with the log's outcome, and the ICIDs no connection matched. It formats nothing.
//!
//! The log has no client port, one-second times in the appliance's local zone and often a
//! clock a few seconds off, so:
//! 0. a SYN the appliance never accepted (no SYN-ACK, no payload) has no ICID: it takes no part;
//! 1. the clock offset is the one that lines up the most connection starts with `New SMTP ICID`
//!    lines of the same remote IP and listener IP (each pair votes for an interval of offsets,
//!    because the log truncates to whole seconds); the log's `Time offset from UTC` header
//!    breaks ties; `--log-tz` / `--clock-offset` override the search;
//! 2. within each IP pair, connections and ICIDs are paired by the lowest cost — start time,
//!    close time, envelope senders, message count, and the clues both sides know (banner
//!    refusal against the HAT verdict, STARTTLS against `TLS success`/`failed`, MAIL FROM
//!    against a MID, a close without QUIT against `ICID lost`) — with the order of arrival
//!    breaking ties, which is how a burst of connections in one second is told apart.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use chrono::{Offset, TimeZone};
use serde::Serialize;

use crate::maillog::{HatPolicy, IcidRecord, LocalTime, LogOutcome, LogZone, MailLog};
use crate::smtp::Phase;
use crate::smtp::SessionSummary;
use crate::tcp::TcpConnection;
use crate::types::{Side, Timestamp};
use crate::verdict::{Cause, Initiator, Layer, Verdict};

const NS: i64 = Timestamp::NANOS_PER_SEC;

/// Pairs (connection, ICID of the same IP pair) the clock vote looks at, about, at most: past
/// it, busy IPs vote with a sample of their connections (all pairs would be quadratic).
const PAIR_BUDGET: usize = 2_000_000;

/// How the log's clock was aligned with the capture's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    /// Found by lining up connection starts with `New SMTP ICID` lines.
    Auto,
    /// No pair could be lined up: the log's `Time offset from UTC` header was used as is.
    Header,
    /// `--log-tz`, with the skew found automatically.
    LogTz,
    /// `--clock-offset`.
    Given,
    /// Nothing to go by: the log is taken to be in UTC.
    None,
}

/// The clock alignment between the log and the capture.
#[derive(Debug, Clone, Serialize)]
pub struct Clock {
    /// The appliance whose log this is (its serial, syslog host or file).
    pub appliance: String,
    /// Log time minus capture time (UTC), in seconds, like the log header's
    /// `Time offset from UTC` (which it includes, with the appliance clock's skew). With
    /// `--log-tz` it is the zone's offset at the capture's start plus the skew found.
    pub offset_seconds: f64,
    /// The same, readable: `+02:00:03.4`.
    pub offset: String,
    pub source: ClockSource,
    /// The zone given with `--log-tz`, when it was.
    pub zone: Option<String>,
    /// With `--log-tz`: the clock's skew, seconds, once the zone's offset is taken off.
    pub skew_seconds: Option<f64>,
    /// Connections whose start lines up with an ICID of the same IP pair at this offset.
    pub supporting_pairs: u32,
    /// The log's `Time offset from UTC` header value, when it had one.
    pub header_offset_seconds: Option<i64>,
}

/// What the user said about the log's clock.
#[derive(Debug, Clone, Copy, Default)]
pub enum ClockHint {
    #[default]
    Auto,
    /// `--log-tz`: a zone; only the skew is searched.
    Zone(chrono_tz::Tz),
    /// `--clock-offset`: log minus UTC, seconds.
    Offset(i64),
}

/// How sure a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

/// Whether the wire's verdict and the log's outcome tell the same story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Agreement {
    Agrees,
    Disagrees,
    /// One side cannot tell (encrypted session, the log has no end for this ICID, ...).
    Unknown,
}

/// One connection's ICID.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    pub appliance: String,
    pub icid: u64,
    pub mids: Vec<u64>,
    pub log_outcome: LogOutcome,
    pub confidence: Confidence,
    /// Log connect time (aligned) minus the connection's first packet, seconds.
    pub start_delta_seconds: f64,
    /// Log `close`/`lost` time (aligned) minus the connection's first close, seconds.
    pub close_delta_seconds: Option<f64>,
    /// The envelope senders seen on the wire and in the log agree (None: not comparable).
    pub envelope_agrees: Option<bool>,
    pub agreement: Agreement,
    /// Why they disagree (or why it cannot be told), in words.
    pub agreement_reason: Option<String>,
    /// Where the wire cannot tell how the session ended (encrypted after STARTTLS), the verdict
    /// the log's outcome gives, with the wire's close.
    pub filled_in: Option<FilledIn>,
    /// Index of the ICID in [`MailLog::icids`].
    #[serde(skip)]
    pub icid_index: usize,
}

/// An ICID in the capture's time span that no connection matched.
#[derive(Debug, Clone, Serialize)]
pub struct UnmatchedIcid {
    pub appliance: String,
    pub icid: u64,
    pub remote_ip: Option<String>,
    pub interface_ip: Option<String>,
    /// The connect time, aligned to UTC.
    pub connect: Option<Timestamp>,
    pub log_outcome: LogOutcome,
    pub mids: Vec<u64>,
    /// Why it may be missing from the capture.
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Correlation {
    /// The clock of the appliance that lined up the most connections.
    pub clock: Clock,
    /// Every appliance's clock (several logs from several appliances can be given together).
    pub clocks: Vec<Clock>,
    /// Per connection (same order as the input), its ICID if one was found.
    pub matches: Vec<Option<Match>>,
    pub unmatched_icids: Vec<UnmatchedIcid>,
}

/// The facts of one connection that correlation uses.
#[derive(Debug, Clone, Copy)]
pub struct WireView<'a> {
    pub tcp: &'a TcpConnection,
    pub smtp: &'a SessionSummary,
    pub verdict: &'a Verdict,
}

impl WireView<'_> {
    fn close_at(&self) -> Option<Timestamp> {
        [
            self.tcp.first_fin().map(|(_, e)| e.at),
            self.tcp.first_rst().map(|(_, e)| e.at),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Whether the appliance can have given this connection an ICID. It logs `New SMTP ICID` only
/// for a TCP connection it accepted, so a SYN it never answered with a SYN-ACK (unanswered, or
/// refused with a RST) that carried no payload either way has none, and must neither take an
/// ICID nor vote on the clock. A connection whose SYN the capture never saw (it started before
/// the capture) is matchable: nothing says it was not accepted.
fn may_have_icid(tcp: &TcpConnection) -> bool {
    !tcp.never_accepted()
}

/// How TLS went, as the wire shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WireTls {
    /// The session was seen from its banner to its end without STARTTLS.
    Plain,
    /// STARTTLS sent, and the session went on in TLS.
    Negotiated,
    /// STARTTLS sent, but no TLS followed (refused, or the handshake failed).
    Failed,
}

/// What the wire tells of a session that the log records too; `None` where the wire cannot
/// tell (encrypted, or the capture missed its start or its end). Compared with an ICID in
/// [`clue_cost`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct WireClues {
    /// The banner refused the session (4xx/5xx: a HAT REJECT) or accepted it (2xx).
    refused: Option<bool>,
    tls: Option<WireTls>,
    /// MAIL FROM was accepted at least once (the log starts a MID for it).
    mail: Option<bool>,
    /// Some RCPT TO got a 2xx (a delayed HAT reject answers every one with 554).
    rcpt_accepted: bool,
    /// The client closed first without QUIT (the log's `ICID lost`), or not.
    lost: Option<bool>,
}

impl WireClues {
    fn of(c: &WireView<'_>) -> WireClues {
        let s = c.smtp;
        let refused = s
            .banner
            .as_ref()
            .and_then(|b| b.code)
            .and_then(|code| match code {
                200..=299 => Some(false),
                400..=599 => Some(true),
                _ => None,
            });
        // The client's side is known from the banner on; "never did X" also needs the end.
        let start_seen = s.banner.is_some();
        let ended = !c.tcp.open_at_end && c.close_at().is_some();
        let tls = if s.tls.is_some() {
            Some(WireTls::Negotiated)
        } else if s.starttls.is_some() {
            Some(WireTls::Failed)
        } else if start_seen && ended {
            Some(WireTls::Plain)
        } else {
            None
        };
        let plain = s.tls.is_none();
        let mail = if !plain {
            None
        } else if s.transactions.iter().any(|t| t.started()) {
            Some(true)
        } else if start_seen && ended {
            Some(false)
        } else {
            None
        };
        let rcpt_accepted = s.transactions.iter().any(|t| {
            t.rcpt_to.iter().any(|r| {
                r.reply
                    .as_ref()
                    .and_then(|r| r.code)
                    .is_some_and(|c| (200..300).contains(&c))
            })
        });
        // Who closed first; a refused session is closed by the appliance whatever the client does.
        let client_first = [c.tcp.first_fin(), c.tcp.first_rst()]
            .into_iter()
            .flatten()
            .min_by_key(|(_, e)| (e.at, e.frame))
            .map(|(side, _)| side == Side::Client);
        let lost = match client_first {
            Some(first) if plain && ended && refused != Some(true) => {
                Some(first && s.quit.is_none())
            }
            _ => None,
        };
        WireClues {
            refused,
            tls,
            mail,
            rcpt_accepted,
            lost,
        }
    }
}

/// Costs of the clues where wire and log disagree. Each stands for a fact that cannot differ
/// between a connection and its own ICID, short of lines missing from the log, so each weighs
/// about as much as a start a second off.
const REFUSED_COST: f64 = 4.0;
const TLS_COST: f64 = 3.0;
const MAIL_COST: f64 = 3.0;
const DELAYED_REJECT_COST: f64 = 2.0;
const LOST_COST: f64 = 1.5;

/// What the clues of a connection cost against an ICID. `tls_logged`: this appliance's log
/// has `TLS` lines at all (a log setting), so an ICID without one did not negotiate TLS.
fn clue_cost(w: &WireClues, rec: &IcidRecord, tls_logged: bool) -> f64 {
    let mut cost = 0.0;
    // HAT verdict: REJECT/TCPREFUSE answers the banner 554 (421), unless the reject is delayed
    // to RCPT time; an ICID with a MID was accepted whatever its policy line says.
    let log_refused = match &rec.policy {
        Some(p) if p.is_reject() => Some(!rec.delayed_reject),
        Some(HatPolicy::Accept | HatPolicy::Relay) => Some(false),
        _ if !rec.mids.is_empty() => Some(false),
        _ => None,
    };
    if matches!((w.refused, log_refused), (Some(a), Some(b)) if a != b) {
        cost += REFUSED_COST;
    }
    let tls_mismatch = match (w.tls, rec.tls) {
        (Some(WireTls::Negotiated), Some(ok)) => !ok,
        (Some(WireTls::Negotiated), None) => tls_logged,
        (Some(WireTls::Plain), Some(_)) => true,
        (Some(WireTls::Failed), Some(true)) => true,
        _ => false,
    };
    if tls_mismatch {
        cost += TLS_COST;
    }
    // MAIL FROM starts a MID, except under a delayed HAT reject, which logs the envelope
    // without one and refuses every recipient.
    match w.mail {
        Some(true) if rec.mids.is_empty() && !rec.delayed_reject => cost += MAIL_COST,
        Some(false) if !rec.mids.is_empty() => cost += MAIL_COST,
        _ => {}
    }
    if rec.delayed_reject && w.rcpt_accepted {
        cost += DELAYED_REJECT_COST;
    }
    let log_ended = rec.close.is_some() || rec.lost.is_some();
    if w.lost
        .is_some_and(|lost| log_ended && lost != rec.lost.is_some())
    {
        cost += LOST_COST;
    }
    cost
}

/// A log time read as if it were UTC (the offset is applied separately).
fn naive(t: LocalTime) -> Timestamp {
    t.to_utc(&LogZone::Fixed(0))
}

fn ip_of(h: &Option<crate::maillog::HostAddr>) -> Option<IpAddr> {
    h.as_ref().and_then(|h| h.ip())
}

/// Log time of an ICID's start for matching, converted by the zone when one was given.
fn icid_start(rec: &IcidRecord, zone: Option<chrono_tz::Tz>) -> Option<Timestamp> {
    let t = rec.connect?;
    Some(match zone {
        Some(tz) => t.to_utc(&LogZone::Named(tz)),
        None => naive(t),
    })
}

fn icid_end(rec: &IcidRecord, zone: Option<chrono_tz::Tz>) -> Option<Timestamp> {
    let t = match (rec.lost, rec.close) {
        (Some(l), Some(c)) => l.min(c),
        (l, c) => l.or(c)?,
    };
    Some(match zone {
        Some(tz) => t.to_utc(&LogZone::Named(tz)),
        None => naive(t),
    })
}

fn fmt_offset(secs: f64) -> String {
    let sign = if secs < 0.0 { '-' } else { '+' };
    let a = secs.abs();
    let h = (a / 3600.0).floor();
    let m = ((a - h * 3600.0) / 60.0).floor();
    let s = a - h * 3600.0 - m * 60.0;
    format!("{sign}{:02}:{:02}:{:04.1}", h as i64, m as i64, s)
}

/// Searches the offset (log − UTC, ns) that the most connection starts agree with. Each pair
/// (connection, ICID of the same IP pair) allows the interval of offsets under which the log's
/// truncated second is consistent with the connection's first packet, with some slack for the
/// accept latency. Returns (offset, supporting connections).
fn vote(pairs: &[(usize, i64)], hint: Option<i64>, bound: i64) -> Option<(i64, u32)> {
    // log_second = floor(first_seen + latency + offset), latency in [0, 0.5 s]
    // → offset ∈ [d − 0.5 s, d + 1 s) where d = log_second − first_seen.
    let mut events: Vec<(i64, i32, usize)> = Vec::with_capacity(pairs.len() * 2);
    for &(conn, d) in pairs {
        if d.unsigned_abs() > bound.unsigned_abs() {
            continue;
        }
        events.push((d - NS / 2, 1, conn));
        events.push((d + NS, -1, conn));
    }
    if events.is_empty() {
        return None;
    }
    // Ties in arrival order, which is by connection (the pairs come connection by connection).
    events.sort_unstable_by_key(|e| (e.0, -e.1, e.2));
    // Count distinct connections in the overlap: a connection with two ICIDs in range votes once.
    let conns = events.iter().map(|e| e.2).max().map_or(0, |m| m + 1);
    let mut active: Vec<u32> = vec![0; conns];
    let mut live = 0u32;
    let mut best: Option<(u32, i64, i64)> = None; // (count, start, end of region)
    for (i, &(x, kind, conn)) in events.iter().enumerate() {
        if kind == 1 {
            live += u32::from(active[conn] == 0);
            active[conn] += 1;
        } else if active[conn] > 0 {
            active[conn] -= 1;
            live -= u32::from(active[conn] == 0);
        }
        let count = live;
        let end = events.get(i + 1).map_or(x, |e| e.0);
        if kind == 1 && count > 0 {
            let better = match best {
                None => true,
                Some((c, s, e)) => {
                    count > c
                        || (count == c && {
                            // Tie: closer to the header's hint, else closer to zero skew.
                            let target = hint.unwrap_or(0);
                            let mid_new = (x + end) / 2;
                            let mid_old = (s + e) / 2;
                            mid_new.abs_diff(target) < mid_old.abs_diff(target)
                        })
                }
            };
            if better {
                best = Some((count, x, end));
            }
        }
    }
    best.map(|(c, s, e)| {
        // Inside the region, take the point nearest the hint's whole-second offset when it is
        // there (a clock without skew), else the middle.
        let mid = (s + e) / 2;
        let pick = match hint {
            Some(h) if h >= s && h <= e => h,
            _ => mid,
        };
        (pick, c)
    })
}

/// Correlates connections with the log.
pub fn correlate(conns: &[WireView<'_>], log: &MailLog, hint: ClockHint) -> Correlation {
    let zone = match hint {
        ClockHint::Zone(tz) => Some(tz),
        _ => None,
    };
    // Each appliance has its own ICID counter and its own clock.
    let mut appliances: Vec<&str> = Vec::new();
    let mut appliance_of: HashMap<&str, usize> = HashMap::new();
    for rec in &log.icids {
        if !appliance_of.contains_key(rec.appliance.as_str()) {
            appliance_of.insert(rec.appliance.as_str(), appliances.len());
            appliances.push(rec.appliance.as_str());
        }
    }
    // ICIDs by appliance and remote IP; the listener IP is checked per pair (old logs lack it).
    let mut by_remote: HashMap<(usize, IpAddr), Vec<usize>> = HashMap::new();
    for (i, rec) in log.icids.iter().enumerate() {
        if let (Some(ip), Some(_)) = (ip_of(&rec.remote_ip), rec.connect) {
            by_remote
                .entry((appliance_of[rec.appliance.as_str()], ip))
                .or_default()
                .push(i);
        }
    }
    // Each ICID's listener address, read once (the pair loops ask for it many times).
    let interface: Vec<Option<IpAddr>> = log.icids.iter().map(|r| ip_of(&r.interface_ip)).collect();
    let listener_ok =
        |ii: usize, c: &WireView<'_>| interface[ii].is_none_or(|ip| ip == c.tcp.server.ip());

    // Connections the appliance cannot have logged take no part in what follows.
    let matchable: Vec<bool> = conns.iter().map(|c| may_have_icid(c.tcp)).collect();

    // Each ICID's start in the log (converted by the zone, if one was given), once.
    let log_starts: Vec<Option<Timestamp>> =
        log.icids.iter().map(|rec| icid_start(rec, zone)).collect();

    // 1. The clock of each appliance.
    let clocks: Vec<Clock> = (0..appliances.len())
        .map(|a| {
            let header = log.time_offset_hint(appliances[a]);
            let mut pairs: Vec<(usize, i64)> = Vec::new();
            // Bound the work for an IP with very many connections and ICIDs; and past a budget
            // of pairs in all, only every `stride`-th connection of a busy IP votes.
            let sampled = |ci: usize, len: usize| len > 2000 && ci % 16 != 0;
            let total: usize = conns
                .iter()
                .enumerate()
                .filter(|&(ci, _)| matchable[ci])
                .filter_map(|(ci, c)| {
                    let len = by_remote.get(&(a, c.tcp.client.ip()))?.len();
                    (!sampled(ci, len)).then_some(len)
                })
                .sum();
            let stride = total.div_ceil(PAIR_BUDGET).max(1);
            for (ci, c) in conns.iter().enumerate() {
                if !matchable[ci] {
                    continue;
                }
                let Some(list) = by_remote.get(&(a, c.tcp.client.ip())) else {
                    continue;
                };
                if sampled(ci, list.len()) || (list.len() > 64 && ci % stride != 0) {
                    continue;
                }
                for &ii in list {
                    if !listener_ok(ii, c) {
                        continue;
                    }
                    if let Some(start) = log_starts[ii] {
                        pairs.push((ci, start.0.saturating_sub(c.tcp.accepted_at().0)));
                    }
                }
            }
            let first = conns.iter().map(|c| c.tcp.accepted_at()).min();
            find_clock(&pairs, hint, header, appliances[a], first)
        })
        .collect();
    // What is applied to a log time already read through the zone (if any): the skew alone.
    let offsets: Vec<i64> = clocks
        .iter()
        .map(|c| (c.skew_seconds.unwrap_or(c.offset_seconds) * NS as f64) as i64)
        .collect();
    let offset_of = |rec: &IcidRecord| offsets[appliance_of[rec.appliance.as_str()]];

    // 2. Candidate pairs with their costs.
    /// Candidate ICIDs kept per connection, the cheapest.
    const MAX_CANDIDATES: usize = 64;
    struct Cand {
        conn: usize,
        icid: usize,
        cost: f64,
        start_delta: f64,
        close_delta: Option<f64>,
        envelope: Option<bool>,
        rank_gap: usize,
    }
    let mut cands: Vec<Cand> = Vec::new();
    // Ranks within each remote IP, by time, for tie-breaking in bursts.
    let mut conn_rank: Vec<usize> = vec![0; conns.len()];
    {
        let mut by_ip: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        for (i, c) in conns.iter().enumerate() {
            if matchable[i] {
                by_ip.entry(c.tcp.client.ip()).or_default().push(i);
            }
        }
        for list in by_ip.values_mut() {
            list.sort_by_key(|&i| (conns[i].tcp.accepted_at(), conns[i].tcp.client.port()));
            for (r, &i) in list.iter().enumerate() {
                conn_rank[i] = r;
            }
        }
    }
    let mut icid_rank: Vec<usize> = vec![0; log.icids.len()];
    for list in by_remote.values_mut() {
        list.sort_by_key(|&i| (log.icids[i].connect, log.icids[i].icid));
        for (r, &i) in list.iter().enumerate() {
            icid_rank[i] = r;
        }
    }
    // Saturating: a log line of year 1 or 9999 is nonsense, not a reason to overflow.
    let aligned = |rec: &IcidRecord, t: Timestamp| Timestamp(t.0.saturating_sub(offset_of(rec)));
    // Each ICID's aligned start, once (the window search probes them many times).
    let starts: Vec<Option<Timestamp>> = log
        .icids
        .iter()
        .zip(&log_starts)
        .map(|(rec, t)| t.map(|t| aligned(rec, t)))
        .collect();
    // Whether each appliance's log has TLS lines at all (they are a log setting).
    let mut tls_logged = vec![false; appliances.len()];
    for rec in &log.icids {
        if rec.tls.is_some() {
            tls_logged[appliance_of[rec.appliance.as_str()]] = true;
        }
    }
    // Each ICID's aligned end, once.
    let ends: Vec<Option<Timestamp>> = log
        .icids
        .iter()
        .map(|rec| icid_end(rec, zone).map(|t| aligned(rec, t)))
        .collect();
    // Each ICID's senders (lower case), once: the envelope is compared for every candidate pair.
    let log_from: Vec<Vec<String>> = log
        .icids
        .iter()
        .map(|rec| {
            rec.mids
                .iter()
                .filter_map(|m| log.mid(&rec.appliance, *m))
                .filter_map(|m| m.from.as_deref())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .collect();
    for (ci, c) in conns.iter().enumerate() {
        if !matchable[ci] {
            continue;
        }
        // The appliance logs the ICID when its TCP accepts the connection.
        let first = c.tcp.accepted_at();
        // The senders the wire shows (none when encrypted), once per connection.
        // A few addresses at most: a list compares faster than a hash set.
        let wire_from: Option<Vec<String>> =
            if c.smtp.transactions.is_empty() || c.smtp.tls.is_some() {
                None
            } else {
                Some(
                    c.smtp
                        .transactions
                        .iter()
                        .map(|t| t.mail_from.to_ascii_lowercase())
                        .collect(),
                )
            };
        let started = c.smtp.transactions.iter().filter(|t| t.started()).count();
        let before = cands.len();
        let clues = WireClues::of(c);
        for (a, &tls_logged) in tls_logged.iter().enumerate() {
            let Some(list) = by_remote.get(&(a, c.tcp.client.ip())) else {
                continue;
            };
            // ICIDs sorted by connect time: only those within a window of the start can match.
            let lo = list.partition_point(|&i| {
                starts[i].is_some_and(|t| t.0 < first.0.saturating_sub(5 * NS))
            });
            for &ii in &list[lo..] {
                let rec = &log.icids[ii];
                let Some(start) = starts[ii] else {
                    continue;
                };
                if start.0 > first.0.saturating_add(5 * NS) {
                    break;
                }
                if !listener_ok(ii, c) {
                    continue;
                }
                // Expected: start ∈ (first − 1 s, first + latency]; cost is the distance outside.
                let e = start.seconds_since(first);
                let start_cost = (e - 0.5).max(0.0) + (-1.3 - e).max(0.0);
                if start_cost > 3.0 {
                    continue;
                }
                let mut cost = start_cost * 4.0;
                let close_delta = match (ends[ii], c.close_at()) {
                    (Some(lc), Some(wc)) => {
                        let d = lc.seconds_since(wc);
                        cost += ((d - 2.0).max(0.0) + (-1.5 - d).max(0.0)).min(30.0);
                        Some(d)
                    }
                    _ => None,
                };
                let envelope = match (&wire_from, log_from[ii].as_slice()) {
                    (Some(wire), log_from) if !log_from.is_empty() => {
                        Some(log_from.iter().all(|f| wire.iter().any(|w| w == f)))
                    }
                    _ => None,
                };
                match envelope {
                    Some(true) => cost -= 1.0,
                    Some(false) => cost += 6.0,
                    None => {}
                }
                // A delayed HAT reject logs no MID for the transactions it lets through.
                if c.smtp.tls.is_none() && !c.smtp.transactions.is_empty() && !rec.delayed_reject {
                    cost += (started as f64 - rec.mids.len() as f64).abs().min(5.0) * 0.5;
                }
                cost += clue_cost(&clues, rec, tls_logged);
                let rank_gap = conn_rank[ci].abs_diff(icid_rank[ii]);
                cands.push(Cand {
                    conn: ci,
                    icid: ii,
                    cost,
                    start_delta: e,
                    close_delta,
                    envelope,
                    rank_gap,
                });
            }
        }
        // A connection from a busy sender can lie within seconds of thousands of that
        // sender's ICIDs: only its cheapest few can be its match (the rest would cost the
        // assignment's sort and rival counts without ever winning).
        let mine = &mut cands[before..];
        if mine.len() > MAX_CANDIDATES {
            mine.select_nth_unstable_by(MAX_CANDIDATES - 1, |x, y| {
                x.cost
                    .total_cmp(&y.cost)
                    .then(x.rank_gap.cmp(&y.rank_gap))
                    .then(x.icid.cmp(&y.icid))
            });
            cands.truncate(before + MAX_CANDIDATES);
        }
    }

    // 3. Greedy assignment by cost; the order of arrival breaks ties.
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&cands[a], &cands[b]);
        x.cost
            .total_cmp(&y.cost)
            .then(x.rank_gap.cmp(&y.rank_gap))
            .then(conn_rank[x.conn].cmp(&conn_rank[y.conn]))
            .then(icid_rank[x.icid].cmp(&icid_rank[y.icid]))
            .then(x.conn.cmp(&y.conn))
    });
    // Each side's candidates, to judge how clear a match is without scanning them all.
    let mut by_conn: Vec<Vec<usize>> = vec![Vec::new(); conns.len()];
    let mut by_icid: Vec<Vec<usize>> = vec![Vec::new(); log.icids.len()];
    for (k, c) in cands.iter().enumerate() {
        by_conn[c.conn].push(k);
        by_icid[c.icid].push(k);
    }
    let by_icid = |i: usize| by_icid[i].as_slice();
    // The pair each connection took, and the connection each ICID went to.
    let mut chosen: Vec<Option<usize>> = vec![None; conns.len()];
    let mut owner: Vec<Option<usize>> = vec![None; log.icids.len()];
    for &k in &order {
        let cd = &cands[k];
        if chosen[cd.conn].is_some() || owner[cd.icid].is_some() {
            continue;
        }
        chosen[cd.conn] = Some(k);
        owner[cd.icid] = Some(cd.conn);
    }
    // Greedy takes a cheap pair even where that leaves its neighbour a dear one: a connection
    // that no clue ties to either of two ICIDs takes the one a clue ties to the other
    // connection. Swapping the ICIDs of two connections where that lowers their total cost
    // undoes it (strictly lower: ties keep the order of arrival).
    let cost_of = |conn: usize, icid: usize| {
        by_conn[conn]
            .iter()
            .find(|&&o| cands[o].icid == icid)
            .copied()
    };
    for _pass in 0..2 {
        let mut swapped = false;
        for a in 0..conns.len() {
            let Some(ka) = chosen[a] else { continue };
            for &kj in &by_conn[a] {
                let j = cands[kj].icid;
                let Some(b) = owner[j] else { continue };
                let (Some(kb), i) = (chosen[b], cands[ka].icid) else {
                    continue;
                };
                if b == a || cands[kj].cost >= cands[ka].cost {
                    continue;
                }
                let Some(kbi) = cost_of(b, i) else { continue };
                if cands[kj].cost + cands[kbi].cost < cands[ka].cost + cands[kb].cost - 1e-9 {
                    chosen[a] = Some(kj);
                    chosen[b] = Some(kbi);
                    owner[j] = Some(a);
                    owner[i] = Some(b);
                    swapped = true;
                    break;
                }
            }
        }
        if !swapped {
            break;
        }
    }
    let icid_taken: Vec<bool> = owner.iter().map(Option::is_some).collect();
    let mut matches: Vec<Option<Match>> = vec![None; conns.len()];
    for &k in chosen.iter().flatten() {
        let cd = &cands[k];
        // Confidence: how many other still-plausible pairings were nearly as good.
        let rivals = by_conn[cd.conn]
            .iter()
            .chain(by_icid(cd.icid))
            .filter(|&&o| o != k && cands[o].cost < cd.cost + 1.0)
            .count();
        let confidence = if cd.cost < 1.0 && rivals == 0 {
            Confidence::High
        } else if cd.cost < 3.0
            && (rivals == 0
                || cd.envelope == Some(true)
                || cd.close_delta.is_some_and(|d| d.abs() < 2.0))
        {
            Confidence::Medium
        } else {
            Confidence::Low
        };
        let rec = &log.icids[cd.icid];
        let c = &conns[cd.conn];
        let (agreement, agreement_reason) = agree(c, rec, log);
        matches[cd.conn] = Some(Match {
            appliance: rec.appliance.clone(),
            icid: rec.icid,
            mids: rec.mids.clone(),
            log_outcome: rec.outcome,
            confidence,
            start_delta_seconds: (cd.start_delta * 1000.0).round() / 1000.0,
            close_delta_seconds: cd.close_delta.map(|d| (d * 1000.0).round() / 1000.0),
            envelope_agrees: cd.envelope,
            agreement,
            agreement_reason,
            filled_in: fill_in(c, rec),
            icid_index: cd.icid,
        });
    }

    // 4. ICIDs in the capture's span that nothing matched.
    let span = conns
        .iter()
        .map(|c| (c.tcp.first_seen, c.tcp.last_seen))
        .fold(None, |acc: Option<(Timestamp, Timestamp)>, (a, b)| {
            Some(acc.map_or((a, b), |(x, y)| (x.min(a), y.max(b))))
        });
    let client_ips: HashSet<IpAddr> = conns.iter().map(|c| c.tcp.client.ip()).collect();
    let server_ips: HashSet<IpAddr> = conns.iter().map(|c| c.tcp.server.ip()).collect();
    let mut unmatched_icids = Vec::new();
    if let Some((first, last)) = span {
        for (i, rec) in log.icids.iter().enumerate() {
            if icid_taken[i] {
                continue;
            }
            let Some(start) = icid_start(rec, zone).map(|t| aligned(rec, t)) else {
                continue;
            };
            if start.0 < first.0.saturating_sub(2 * NS) || start.0 > last.0.saturating_add(2 * NS) {
                continue;
            }
            let remote = ip_of(&rec.remote_ip);
            let iface = ip_of(&rec.interface_ip);
            let reason = if iface.is_some_and(|ip| !server_ips.contains(&ip)) {
                "its listener IP is not in the capture (taken on another interface?)".to_string()
            } else if remote.is_some_and(|ip| !client_ips.contains(&ip)) {
                "no connection from its remote IP in the capture (capture filter or interface?)"
                    .to_string()
            } else {
                "connections from its remote IP matched other ICIDs better".to_string()
            };
            unmatched_icids.push(UnmatchedIcid {
                appliance: rec.appliance.clone(),
                icid: rec.icid,
                remote_ip: remote.map(|ip| ip.to_string()),
                interface_ip: iface.map(|ip| ip.to_string()),
                connect: Some(start),
                log_outcome: rec.outcome,
                mids: rec.mids.clone(),
                reason,
            });
        }
    }

    // The clock shown first is the one that lined up the most connections.
    let clock = clocks
        .iter()
        .max_by_key(|c| c.supporting_pairs)
        .cloned()
        .unwrap_or_else(|| find_clock(&[], hint, None, "", None));
    Correlation {
        clock,
        clocks,
        matches,
        unmatched_icids,
    }
}

/// The clock of one appliance from its (connection, log − capture start) pairs.
fn find_clock(
    pairs: &[(usize, i64)],
    hint: ClockHint,
    header: Option<i64>,
    appliance: &str,
    capture_start: Option<Timestamp>,
) -> Clock {
    let header_ns = header.map(|h| h.saturating_mul(NS));
    let (zone, (offset_ns, support, source)) = match hint {
        ClockHint::Offset(s) => (None, (s.saturating_mul(NS), 0, ClockSource::Given)),
        ClockHint::Zone(tz) => (
            Some(tz.name().to_string()),
            match vote(pairs, Some(0), 3600 * NS) {
                Some((o, n)) => (o, n, ClockSource::LogTz),
                None => (0, 0, ClockSource::LogTz),
            },
        ),
        ClockHint::Auto => (
            None,
            match vote(pairs, header_ns, 27 * 3600 * NS) {
                Some((o, n)) => (o, n, ClockSource::Auto),
                None => match header_ns {
                    Some(h) => (h, 0, ClockSource::Header),
                    None => (0, 0, ClockSource::None),
                },
            },
        ),
    };
    let round = |ns: i64| (ns as f64 / NS as f64 * 10.0).round() / 10.0;
    // With a zone the search found the skew; the offset adds the zone's own at the capture.
    let (offset_seconds, skew_seconds) = match hint {
        ClockHint::Zone(tz) => {
            let at = capture_start.unwrap_or_default().to_datetime().naive_utc();
            let zone_ns = i64::from(tz.offset_from_utc_datetime(&at).fix().local_minus_utc()) * NS;
            (
                round(zone_ns.saturating_add(offset_ns)),
                Some(round(offset_ns)),
            )
        }
        _ => (round(offset_ns), None),
    };
    Clock {
        appliance: appliance.to_string(),
        offset_seconds,
        offset: fmt_offset(offset_seconds),
        source,
        zone,
        skew_seconds,
        supporting_pairs: support,
        header_offset_seconds: header,
    }
}

/// A verdict the log completes where TLS hid the end of the session from the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilledIn {
    pub layer: Layer,
    pub initiator: Initiator,
    pub cause: Cause,
    pub phase: Phase,
    pub reason: String,
}

/// What the log tells of a session whose end TLS hid: its MIDs' outcome and `ICID lost`.
fn fill_in(c: &WireView<'_>, rec: &IcidRecord) -> Option<FilledIn> {
    let v = c.verdict;
    if c.smtp.tls.is_none()
        || v.layer != Layer::Unknown
        || !matches!(v.cause, Cause::TlsClose | Cause::TlsFin)
    {
        return None;
    }
    let closer = v.initiator;
    let (layer, initiator, cause, phase, reason) = match rec.outcome {
        LogOutcome::Delivered | LogOutcome::NoMessage if rec.lost.is_none() => (
            Layer::None,
            Initiator::Client,
            Cause::Quit,
            Phase::Quit,
            "the log shows every message received and no ICID lost: the client said QUIT inside TLS",
        ),
        LogOutcome::AbortedBySender => (
            Layer::Application,
            Initiator::Client,
            Cause::QuitBeforeData,
            Phase::Quit,
            "the log says aborted by sender: the client said QUIT inside TLS with a message open",
        ),
        LogOutcome::Aborted | LogOutcome::Lost if closer == Initiator::Client => (
            Layer::Network,
            Initiator::Client,
            Cause::ClientFinNoQuit,
            Phase::Tls,
            "the log says receiving aborted (ICID lost): the client closed inside TLS without QUIT",
        ),
        LogOutcome::Aborted | LogOutcome::Lost => (
            Layer::Server,
            Initiator::Server,
            Cause::ServerClose,
            Phase::Tls,
            "the log says receiving aborted: the appliance closed inside TLS",
        ),
        LogOutcome::Timeout => (
            Layer::Timeout,
            Initiator::Server,
            Cause::IdleTimeout,
            Phase::Tls,
            "the log says receiving aborted after the idle timeout",
        ),
        _ => return None,
    };
    Some(FilledIn {
        layer,
        initiator,
        cause,
        phase,
        reason: reason.to_string(),
    })
}

/// Whether the wire's verdict tells the log's story.
fn agree(c: &WireView<'_>, rec: &IcidRecord, log: &MailLog) -> (Agreement, Option<String>) {
    let v = c.verdict;
    let layer = v.layer;
    let completed = c.smtp.transactions.iter().filter(|t| t.completed()).count();
    let ready = rec
        .mids
        .iter()
        .filter_map(|m| log.mid(&rec.appliance, *m))
        .filter(|m| m.ready.is_some())
        .count();
    let encrypted = c.smtp.tls.is_some();
    if encrypted && layer == Layer::Unknown {
        return (
            Agreement::Unknown,
            Some(format!(
                "session encrypted; the log says {}",
                rec.outcome.as_str()
            )),
        );
    }
    use LogOutcome as O;
    let ok = match rec.outcome {
        O::AbortedBySender => layer == Layer::Application,
        O::Aborted => matches!(layer, Layer::Network | Layer::Timeout),
        O::Timeout => layer == Layer::Timeout,
        O::Lost => layer == Layer::Network,
        O::Delivered => {
            if !encrypted && completed < ready {
                return (
                    Agreement::Disagrees,
                    Some(format!(
                        "log says {ready} message(s) received, wire shows {completed} final 2xx"
                    )),
                );
            }
            true
        }
        O::Rejected | O::NoMessage => completed == 0,
        O::Incomplete | O::Open => {
            return (
                Agreement::Unknown,
                Some(format!("the log does not show how ICID {} ended", rec.icid)),
            );
        }
    };
    if layer == Layer::Unknown {
        return (
            Agreement::Unknown,
            Some(format!(
                "the capture does not show the end; the log says {}",
                rec.outcome.as_str()
            )),
        );
    }
    if ok {
        (Agreement::Agrees, None)
    } else {
        let log_words = match rec.outcome {
            O::AbortedBySender => "log says aborted by sender",
            O::Aborted => "log says receiving aborted",
            O::Timeout => "log says receiving aborted after the idle timeout",
            O::Lost => "log says ICID lost",
            O::Delivered => "log says delivered",
            O::Rejected => "log says rejected",
            O::NoMessage => "log says no message",
            O::Incomplete | O::Open => "log is incomplete",
        };
        let wire = format!("wire shows {} ({})", layer, v.reason);
        (Agreement::Disagrees, Some(format!("{log_words}, {wire}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::FrameRef;
    use crate::maillog::{LogOptions, YearHint, parse_bytes};
    use crate::smtp::{Command, Recipient, Reply, TlsSummary, Transaction};
    use crate::tcp::{CloseEvent, SideStats};
    use crate::verdict::decide;

    /// 2026-03-02 10:00:10 UTC, the second every connection below starts in.
    const T0: i64 = 1_772_445_610;
    const CLIENT: &str = "198.51.100.7";

    fn at(ms: i64) -> Timestamp {
        Timestamp(T0 * NS + ms * 1_000_000)
    }

    fn reply(code: u16, ms: i64) -> Option<Reply> {
        Some(Reply {
            code: Some(code),
            at: at(ms),
            text: String::new(),
        })
    }

    fn command(verb: &str, ms: i64, code: u16) -> Option<Command> {
        Some(Command {
            verb: verb.to_string(),
            at: at(ms),
            reply: reply(code, ms),
            arg: None,
        })
    }

    /// How a test connection ends.
    #[derive(Clone, Copy, PartialEq)]
    enum End {
        ClientFin,
        ServerFin,
        /// The capture stopped while it was open.
        Open,
    }

    struct Conn {
        tcp: TcpConnection,
        smtp: SessionSummary,
        verdict: Verdict,
    }

    impl Conn {
        fn view(&self) -> WireView<'_> {
            WireView {
                tcp: &self.tcp,
                smtp: &self.smtp,
                verdict: &self.verdict,
            }
        }
    }

    /// A connection from [`CLIENT`] whose SYN is at `start` ms and whose first close is at
    /// 500 ms; `syn_ack`: the appliance answered it.
    fn conn(port: u16, start: i64, syn_ack: bool, end: End, smtp: SessionSummary) -> Conn {
        let close = CloseEvent {
            at: at(500),
            frame: FrameRef {
                file: 0,
                number: u64::from(port),
            },
            ttl: 64,
            ip_id: None,
            seq: 1,
        };
        let payload = smtp.client_bytes + smtp.server_bytes;
        let mut client = SideStats {
            packets: 3,
            syn_at: Some(at(start)),
            first_at: Some(at(start)),
            payload_bytes: smtp.client_bytes,
            ..SideStats::default()
        };
        let mut server = SideStats {
            packets: if syn_ack { 3 } else { 0 },
            syn_at: syn_ack.then(|| at(start)),
            payload_bytes: smtp.server_bytes,
            ..SideStats::default()
        };
        match end {
            End::ClientFin => client.first_fin = Some(close),
            End::ServerFin => server.first_fin = Some(close),
            End::Open => {}
        }
        let tcp = TcpConnection {
            client: format!("{CLIENT}:{port}").parse().expect("socket address"),
            server: "192.0.2.25:25".parse().expect("socket address"),
            first_seen: at(start),
            last_seen: at(if payload > 0 { 600 } else { start + 10 }),
            first_frame: FrameRef { file: 0, number: 1 },
            last_frame: FrameRef { file: 0, number: 2 },
            handshake_seen: syn_ack,
            handshake_done_at: None,
            from_client: client,
            from_server: server,
            open_at_end: end == End::Open,
            anomalies: Vec::new(),
        };
        let verdict = decide(&tcp, &smtp);
        Conn { tcp, smtp, verdict }
    }

    /// A plaintext session: banner `banner`, EHLO, then what `more` adds, QUIT unless `quit`
    /// is false.
    fn session(banner: u16, quit: bool, more: impl FnOnce(&mut SessionSummary)) -> SessionSummary {
        let mut s = SessionSummary {
            banner: reply(banner, 100),
            client_bytes: 40,
            server_bytes: 200,
            ..SessionSummary::default()
        };
        if banner == 220 {
            s.greeting = Some(("EHLO".into(), "client.example".into()));
            s.first_command = command("EHLO", 110, 250);
        }
        more(&mut s);
        if quit {
            s.quit = command("QUIT", 400, 221);
        }
        s
    }

    fn mail(s: &mut SessionSummary) {
        s.transactions.push(Transaction {
            mail_at: at(200),
            mail_from: "a@example.org".into(),
            mail_reply: reply(250, 200),
            rcpt_to: vec![Recipient {
                address: "b@example.com".into(),
                reply: reply(250, 210),
            }],
            ..Transaction::default()
        });
    }

    fn starttls(s: &mut SessionSummary) {
        s.starttls = command("STARTTLS", 120, 220);
        s.tls = Some(TlsSummary {
            handshake_completed: true,
            ..TlsSummary::default()
        });
    }

    /// A log whose lines are all in the second of [`T0`]; each entry of `icids` is the lines
    /// of one ICID after its connect line, `{}` standing for its number.
    fn log(icids: &[&[&str]]) -> MailLog {
        let mut text =
            String::from("Mon Mar  2 10:00:00 2026 Info: Time offset from UTC: 0 seconds\n");
        for (k, lines) in icids.iter().enumerate() {
            let icid = 101 + k;
            text.push_str(&format!(
                "Mon Mar  2 10:00:10 2026 Info: New SMTP ICID {icid} interface Data 1 (192.0.2.25) address {CLIENT} reverse dns host unknown verified no\n"
            ));
            for l in *lines {
                let l = l.replace("{}", &icid.to_string());
                text.push_str(&format!("Mon Mar  2 10:00:10 2026 Info: {l}\n"));
            }
        }
        parse_bytes(
            "mail_logs",
            text.as_bytes(),
            YearHint::Start(2026),
            &LogOptions::default(),
        )
    }

    /// The ICID each connection got, in input order.
    fn icids(conns: &[Conn], log: &MailLog) -> Vec<Option<u64>> {
        let views: Vec<WireView<'_>> = conns.iter().map(Conn::view).collect();
        correlate(&views, log, ClockHint::Offset(0))
            .matches
            .iter()
            .map(|m| m.as_ref().map(|m| m.icid))
            .collect()
    }

    const ACCEPT: &str = "ICID {} ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS 1.0";
    const REJECT: &str = "ICID {} REJECT SG BLACKLIST match sbrs[-10.0:-3.0] SBRS -5.0";
    const CLOSE: &str = "ICID {} close";

    // Each pair below: two connections from one IP in one second, closing in the same second,
    // the first to arrive being the one the log numbered second. Only the clue tells them apart
    // (arrival order alone would pair them the other way round).

    #[test]
    fn a_refusing_banner_goes_with_the_hat_reject() {
        let conns = [
            conn(
                40001,
                100,
                true,
                End::ServerFin,
                session(554, false, |_| {}),
            ),
            conn(40002, 150, true, End::ClientFin, session(220, true, |_| {})),
        ];
        let log = log(&[&[ACCEPT, CLOSE], &[REJECT, CLOSE]]);
        assert_eq!(icids(&conns, &log), [Some(102), Some(101)]);
    }

    #[test]
    fn starttls_goes_with_tls_success() {
        // The first negotiated TLS; the second ICID's log line says so, the first has none
        // (and the log does write TLS lines).
        let conns = [
            conn(
                40001,
                100,
                true,
                End::ClientFin,
                session(220, true, starttls),
            ),
            conn(40002, 150, true, End::ClientFin, session(220, true, |_| {})),
        ];
        let tls = "ICID {} TLS success protocol TLSv1.2 cipher AES128-GCM-SHA256";
        let log = log(&[&[ACCEPT, CLOSE], &[ACCEPT, tls, CLOSE]]);
        assert_eq!(icids(&conns, &log), [Some(102), Some(101)]);
    }

    #[test]
    fn a_session_without_mail_from_has_no_mid() {
        // The first said EHLO and QUIT; the second was still open when the capture stopped,
        // and sent its MAIL FROM after that (the first ICID's MID).
        let conns = [
            conn(40001, 100, true, End::ClientFin, session(220, true, |_| {})),
            conn(40002, 150, true, End::Open, session(220, false, |_| {})),
        ];
        let with_mid: &[&str] = &[ACCEPT, "Start MID 900 ICID {}", CLOSE];
        let log = log(&[with_mid, &[ACCEPT, CLOSE]]);
        assert_eq!(icids(&conns, &log), [Some(102), Some(101)]);
    }

    #[test]
    fn a_delayed_hat_reject_accepts_no_recipient() {
        // Both sent MAIL FROM; the first had its recipient accepted (and the envelope cannot
        // be compared: the log has no From line), the second ICID is a delayed reject.
        let conns = [
            conn(40001, 100, true, End::ClientFin, session(220, true, mail)),
            conn(
                40002,
                150,
                true,
                End::ClientFin,
                session(220, true, |s| {
                    mail(s);
                    s.transactions[0].rcpt_to[0].reply = reply(554, 210);
                }),
            ),
        ];
        let delayed: &[&str] = &[
            REJECT,
            "ICID {} Delayed HAT REJECT continuing session for recipient logging (198.51.100.7)",
            CLOSE,
        ];
        let log = log(&[delayed, &[ACCEPT, "Start MID 900 ICID {}", CLOSE]]);
        assert_eq!(icids(&conns, &log), [Some(102), Some(101)]);
    }

    #[test]
    fn a_close_without_quit_goes_with_icid_lost() {
        let conns = [
            conn(
                40001,
                100,
                true,
                End::ClientFin,
                session(220, false, |_| {}),
            ),
            conn(40002, 150, true, End::ClientFin, session(220, true, |_| {})),
        ];
        let log = log(&[&[ACCEPT, CLOSE], &[ACCEPT, "ICID {} lost", CLOSE]]);
        assert_eq!(icids(&conns, &log), [Some(102), Some(101)]);
    }

    #[test]
    fn an_unanswered_syn_takes_no_icid_and_a_capture_started_mid_session_does() {
        // A SYN nobody answered, 5 ms before the accepted connection of the one ICID.
        let unanswered = conn(40001, 100, false, End::Open, SessionSummary::default());
        let accepted = conn(40002, 105, true, End::ClientFin, session(220, true, |_| {}));
        let log1 = log(&[&[ACCEPT, CLOSE]]);
        assert_eq!(icids(&[unanswered, accepted], &log1), [None, Some(101)]);

        // No SYN at all (the capture started after it), but a session: matchable.
        let mut mid = conn(
            40003,
            105,
            false,
            End::ClientFin,
            session(220, true, |_| {}),
        );
        mid.tcp.from_client.syn_at = None;
        mid.tcp.handshake_seen = false;
        assert_eq!(icids(&[mid], &log1), [Some(101)]);
    }

    #[test]
    fn vote_finds_offset_shared_by_most_pairs() {
        // Three connections whose log seconds sit 3600 s + 3.4 s after the first packet, one
        // stray pair far off.
        let pairs = vec![
            (0, 3603 * NS + 400_000_000),
            (1, 3603 * NS + 700_000_000),
            (2, 3603 * NS + 100_000_000),
            (3, 10 * NS),
        ];
        let (o, n) = vote(&pairs, None, 27 * 3600 * NS).unwrap();
        assert_eq!(n, 3);
        // Every pair's interval must hold the offset.
        for &(_, d) in &pairs[..3] {
            assert!(o >= d - NS / 2 && o <= d + NS, "{o} vs {d}");
        }
    }

    #[test]
    fn vote_prefers_the_header_hint_on_ties() {
        let pairs = vec![(0, 100 * NS), (1, 7200 * NS)];
        let (o, _) = vote(&pairs, Some(7200 * NS), 27 * 3600 * NS).unwrap();
        assert!((o - 7200 * NS).abs() <= 2 * NS);
    }

    #[test]
    fn offsets_read_well() {
        assert_eq!(fmt_offset(-18003.4), "-05:00:03.4");
        assert_eq!(fmt_offset(7200.0), "+02:00:00.0");
    }
}
