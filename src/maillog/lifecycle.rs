//! ICID and MID lifecycles: typed records folded into one [`IcidRecord`] per
//! (appliance, ICID) and one [`MidRecord`] per (appliance, MID).
//!
//! Contract: [`LifecycleBuilder::add`] takes records in any order; [`LifecycleBuilder::finish`]
//! groups them by key, sorts each group by time then (file, line), drops duplicates (same time
//! and same message text), and folds them. The result does not depend on the order in which
//! lines arrived (except for the line references kept as provenance). Only lifecycle events
//! are kept; header, unknown and other-subscription records are ignored here. ICID 0 marks
//! internally generated messages: it never gets an [`IcidRecord`], its MIDs are `internal`.
//! Every non-zero ICID that is referenced (by a connection line or by a MID's `Start`/`From`/
//! `To` line) gets a record, so an excerpt that starts after the connect still yields one.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use serde::Serialize;

use super::event::{AbortReason, Event, Finish, HatPolicy, HostAddr, IcidNoteKind, Sbrs};
use super::line::{LocalTime, LogRecord};

/// Where a record came from: the input file (index into the summary's file list) and the
/// 1-based line number of its framed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LineRef {
    pub file: u32,
    pub line: u64,
}

/// How the log says a connection ended, for comparison with the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogOutcome {
    /// It had messages and every one reached `ready` (DATA accepted).
    Delivered,
    /// A message ended with `Receiving aborted` (network end, usually with `ICID lost`).
    Aborted,
    /// A message ended with `Receiving aborted by sender` (the client's QUIT/RSET).
    AbortedBySender,
    /// `Receiving aborted` without `ICID lost`, after a silence of at least the listener's
    /// idle timeout ([`LifecycleOptions::idle_timeout_secs`]).
    Timeout,
    /// HAT REJECT or TCPREFUSE, no message.
    Rejected,
    /// Closed without any message.
    NoMessage,
    /// `ICID lost` and no message reached `ready` (or none was started).
    Lost,
    /// Closed, but a message neither reached `ready` nor was aborted while receiving (lines
    /// missing from the excerpt, or another abort reason).
    Incomplete,
    /// No `close` (and no `lost`) in the log.
    Open,
}

impl LogOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LogOutcome::Delivered => "delivered",
            LogOutcome::Aborted => "aborted",
            LogOutcome::AbortedBySender => "aborted_by_sender",
            LogOutcome::Timeout => "timeout",
            LogOutcome::Rejected => "rejected",
            LogOutcome::NoMessage => "no_message",
            LogOutcome::Lost => "lost",
            LogOutcome::Incomplete => "incomplete",
            LogOutcome::Open => "open",
        }
    }
}

/// An accepted recipient (`RID n To: <addr>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Recipient {
    pub rid: u32,
    /// `None` when the log line stops after `To:`.
    pub address: Option<String>,
}

/// A refused recipient (`To: <addr> Rejected by …`, bounce verification).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RejectedRecipient {
    pub address: String,
    pub by: String,
}

/// A historic ICID line (Receiving Failed, disconnected, Unknown command, SMTP Auth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IcidNote {
    pub at: LocalTime,
    pub kind: IcidNoteKind,
    pub text: String,
}

/// One inbound connection as the log tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IcidRecord {
    pub appliance: String,
    pub icid: u64,
    /// `New SMTP ICID` time; `None` when the log starts after it.
    pub connect: Option<LocalTime>,
    pub interface: Option<String>,
    pub interface_ip: Option<HostAddr>,
    pub remote_ip: Option<HostAddr>,
    pub rdns: Option<String>,
    pub rdns_verified: Option<bool>,
    /// HAT action.
    pub policy: Option<HatPolicy>,
    pub sender_group: Option<String>,
    pub sg_match: Option<String>,
    pub sbrs: Option<Sbrs>,
    pub country: Option<String>,
    /// `Some(true)` after `TLS success`, `Some(false)` after only `TLS failed`.
    pub tls: Option<bool>,
    pub delayed_reject: bool,
    /// Envelope senders refused by sender verification.
    pub sender_rejected: Vec<String>,
    pub notes: Vec<IcidNote>,
    pub lost: Option<LocalTime>,
    pub close: Option<LocalTime>,
    pub first_seen: LocalTime,
    pub last_seen: LocalTime,
    /// MIDs received on this connection, ascending.
    pub mids: Vec<u64>,
    pub outcome: LogOutcome,
    /// The connect line, or else the first line of this ICID.
    pub first_line: LineRef,
    pub close_line: Option<LineRef>,
}

/// One message as the log tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MidRecord {
    pub appliance: String,
    pub mid: u64,
    pub icid: Option<u64>,
    /// ICID 0: generated inside the appliance, no connection.
    pub internal: bool,
    pub start: Option<LocalTime>,
    pub from: Option<String>,
    /// Ascending by RID.
    pub recipients: Vec<Recipient>,
    pub rejected_recipients: Vec<RejectedRecipient>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// `ready N bytes`: the DATA was accepted.
    pub ready: Option<LocalTime>,
    pub ready_bytes: Option<u64>,
    pub queued: Option<LocalTime>,
    pub abort: Option<AbortReason>,
    pub aborted_at: Option<LocalTime>,
    /// For a reception abort: seconds since the message's previous line.
    pub abort_silence_secs: Option<i64>,
    pub finished: Option<Finish>,
    pub finished_at: Option<LocalTime>,
    pub first_seen: LocalTime,
    pub last_seen: LocalTime,
    /// Post-reception lines (policy, scanning verdicts, …).
    pub other_lines: u32,
    /// Delivery-side lines that name this MID.
    pub delivery_lines: u32,
    /// The `Start MID` line, or else the first line of this MID.
    pub first_line: LineRef,
}

/// Options of the lifecycle stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleOptions {
    /// The listener's "timeout for unsuccessful inbound connections" (default 300 s).
    pub idle_timeout_secs: i64,
}

impl Default for LifecycleOptions {
    fn default() -> Self {
        LifecycleOptions {
            idle_timeout_secs: 300,
        }
    }
}

/// Which appliance a record belongs to before appliance keys are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKey {
    /// Lines of this input file (key: its serial from the `Version:` header, or its name).
    File(u32),
    /// Syslog lines from this host (index into [`LifecycleBuilder::hosts`]).
    Host(u32),
}

#[derive(Debug, Clone)]
struct Ev {
    time: NaiveDateTime,
    at: LineRef,
    hash: u64,
    event: Event,
}

/// What [`LifecycleBuilder::finish`] returns.
#[derive(Debug, Clone, Default)]
pub struct Lifecycles {
    /// Sorted by connect time (or first line), then appliance, then ICID.
    pub icids: Vec<IcidRecord>,
    /// Sorted by appliance, then MID.
    pub mids: Vec<MidRecord>,
    /// Lifecycle lines dropped as duplicates.
    pub duplicates: u64,
    /// Lines about ICID 0 (not a connection), ignored.
    pub internal_icid_lines: u64,
}

/// Collects lifecycle events; see the module doc.
#[derive(Debug, Default)]
pub struct LifecycleBuilder {
    hosts: Vec<String>,
    host_index: HashMap<String, u32>,
    icids: HashMap<(SourceKey, u64), Vec<Ev>>,
    mids: HashMap<(SourceKey, u64), Vec<Ev>>,
    internal_icid_lines: u64,
}

impl LifecycleBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Host names interned so far, indexed by [`SourceKey::Host`].
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Adds one record of input file `file`; `host` is its syslog host, if any.
    pub fn add(&mut self, file: u32, host: Option<&str>, rec: LogRecord) {
        let mid = rec.event.mid();
        let icid = rec.event.icid();
        if mid.is_none() && icid.is_none() {
            return;
        }
        let src = match host {
            Some(h) => {
                let id = match self.host_index.get(h) {
                    Some(&id) => id,
                    None => {
                        let id = self.hosts.len() as u32;
                        self.hosts.push(h.to_string());
                        self.host_index.insert(h.to_string(), id);
                        id
                    }
                };
                SourceKey::Host(id)
            }
            None => SourceKey::File(file),
        };
        let ev = Ev {
            time: rec.time.0,
            at: LineRef {
                file,
                line: rec.line,
            },
            hash: rec.hash,
            event: rec.event,
        };
        if let Some(mid) = mid {
            self.mids.entry((src, mid)).or_default().push(ev);
        } else if let Some(icid) = icid {
            if icid == 0 {
                self.internal_icid_lines += 1;
            } else {
                self.icids.entry((src, icid)).or_default().push(ev);
            }
        }
    }

    /// Resolves appliance keys (`appliance_of(source)`), folds, and sorts.
    pub fn finish(
        self,
        appliance_of: &dyn Fn(SourceKey) -> String,
        opts: &LifecycleOptions,
    ) -> Lifecycles {
        let mut names: HashMap<SourceKey, String> = HashMap::new();
        let mut name = |k: SourceKey| names.entry(k).or_insert_with(|| appliance_of(k)).clone();
        let mut mid_groups: BTreeMap<(String, u64), Vec<Ev>> = BTreeMap::new();
        for ((src, mid), evs) in self.mids {
            mid_groups.entry((name(src), mid)).or_default().extend(evs);
        }
        let mut icid_groups: BTreeMap<(String, u64), Vec<Ev>> = BTreeMap::new();
        for ((src, icid), evs) in self.icids {
            icid_groups
                .entry((name(src), icid))
                .or_default()
                .extend(evs);
        }
        let mut duplicates = 0;
        let mut mids = Vec::with_capacity(mid_groups.len());
        for ((app, mid), mut evs) in mid_groups {
            duplicates += sort_dedup(&mut evs);
            mids.push(fold_mid(app, mid, &evs));
        }
        // MIDs of each ICID (mids is sorted by (appliance, mid)).
        let mut members: BTreeMap<(String, u64), Vec<usize>> = BTreeMap::new();
        for (i, m) in mids.iter().enumerate() {
            if let Some(icid) = m.icid.filter(|&i| i != 0) {
                members
                    .entry((m.appliance.clone(), icid))
                    .or_default()
                    .push(i);
                icid_groups.entry((m.appliance.clone(), icid)).or_default();
            }
        }
        let mut icids = Vec::with_capacity(icid_groups.len());
        for ((app, icid), mut evs) in icid_groups {
            duplicates += sort_dedup(&mut evs);
            let of: Vec<&MidRecord> = members
                .get(&(app.clone(), icid))
                .map(|v| v.iter().map(|&i| &mids[i]).collect())
                .unwrap_or_default();
            icids.push(fold_icid(app, icid, &evs, &of, opts));
        }
        icids.sort_by(|a, b| {
            (a.connect.unwrap_or(a.first_seen), &a.appliance, a.icid).cmp(&(
                b.connect.unwrap_or(b.first_seen),
                &b.appliance,
                b.icid,
            ))
        });
        Lifecycles {
            icids,
            mids,
            duplicates,
            internal_icid_lines: self.internal_icid_lines,
        }
    }
}

/// Sorts by time then provenance and drops repeats of the same line (same time, same text).
/// Returns how many were dropped.
fn sort_dedup(evs: &mut Vec<Ev>) -> u64 {
    evs.sort_by_key(|e| (e.time, e.at));
    let before = evs.len();
    let mut kept: Vec<Ev> = Vec::with_capacity(evs.len());
    for e in evs.drain(..) {
        let dup = kept
            .iter()
            .rev()
            .take_while(|k| k.time == e.time)
            .any(|k| k.hash == e.hash);
        if !dup {
            kept.push(e);
        }
    }
    *evs = kept;
    (before - evs.len()) as u64
}

fn fold_mid(appliance: String, mid: u64, evs: &[Ev]) -> MidRecord {
    let first = &evs[0];
    let mut r = MidRecord {
        appliance,
        mid,
        icid: None,
        internal: false,
        start: None,
        from: None,
        recipients: Vec::new(),
        rejected_recipients: Vec::new(),
        message_id: None,
        subject: None,
        ready: None,
        ready_bytes: None,
        queued: None,
        abort: None,
        aborted_at: None,
        abort_silence_secs: None,
        finished: None,
        finished_at: None,
        first_seen: LocalTime(first.time),
        last_seen: LocalTime(evs[evs.len() - 1].time),
        other_lines: 0,
        delivery_lines: 0,
        first_line: first.at,
    };
    let mut start_icid = None;
    let mut other_icid = None;
    let mut ready_from: Option<String> = None;
    for e in evs {
        let t = LocalTime(e.time);
        match &e.event {
            Event::Start { icid, .. } => {
                if r.start.is_none() {
                    r.start = Some(t);
                    r.first_line = e.at;
                }
                start_icid.get_or_insert(*icid);
            }
            Event::From { icid, address, .. } => {
                r.from.get_or_insert_with(|| address.clone());
                other_icid.get_or_insert(*icid);
            }
            Event::To {
                icid, rid, address, ..
            } => {
                match r.recipients.iter_mut().find(|x| x.rid == *rid) {
                    Some(x) => {
                        if x.address.is_none() {
                            x.address.clone_from(address);
                        }
                    }
                    None => r.recipients.push(Recipient {
                        rid: *rid,
                        address: address.clone(),
                    }),
                }
                other_icid.get_or_insert(*icid);
            }
            Event::ToRejected {
                icid, address, by, ..
            } => {
                let rr = RejectedRecipient {
                    address: address.clone(),
                    by: by.clone(),
                };
                if !r.rejected_recipients.contains(&rr) {
                    r.rejected_recipients.push(rr);
                }
                other_icid.get_or_insert(*icid);
            }
            Event::MessageId { id, .. } => {
                r.message_id.get_or_insert_with(|| id.clone());
            }
            Event::Subject { subject, .. } => {
                r.subject.get_or_insert_with(|| subject.clone());
            }
            Event::Ready { bytes, from, .. } => {
                if r.ready.is_none() {
                    r.ready = Some(t);
                    r.ready_bytes = Some(*bytes);
                }
                if ready_from.is_none() {
                    ready_from.clone_from(from);
                }
            }
            Event::Queued { .. } => {
                r.queued.get_or_insert(t);
            }
            Event::Aborted { reason, .. } if r.abort.is_none() => {
                r.abort = Some(reason.clone());
                r.aborted_at = Some(t);
                if reason.is_receiving() {
                    // Order-independent: the latest other reception line not after it.
                    r.abort_silence_secs = evs
                        .iter()
                        .filter(|o| {
                            o.time <= e.time
                                && !matches!(
                                    o.event,
                                    Event::Aborted { .. }
                                        | Event::Finished { .. }
                                        | Event::Delivery { .. }
                                )
                        })
                        .map(|o| o.time)
                        .max()
                        .map(|p| (e.time - p).num_seconds());
                }
            }
            Event::Finished { finish, .. } if r.finished.is_none() => {
                r.finished = Some(finish.clone());
                r.finished_at = Some(t);
            }
            Event::MidNote { .. } => r.other_lines += 1,
            Event::Delivery { .. } => r.delivery_lines += 1,
            _ => {}
        }
    }
    if r.from.is_none() {
        r.from = ready_from;
    }
    r.icid = start_icid.or(other_icid);
    r.internal = r.icid == Some(0);
    r.recipients.sort();
    r.rejected_recipients.sort();
    r
}

fn fold_icid(
    appliance: String,
    icid: u64,
    evs: &[Ev],
    mids: &[&MidRecord],
    opts: &LifecycleOptions,
) -> IcidRecord {
    // Reception times of the MIDs count as activity of the connection.
    let mut times: Vec<(NaiveDateTime, LineRef)> = evs.iter().map(|e| (e.time, e.at)).collect();
    for m in mids {
        for t in [m.start, m.ready, m.aborted_at.filter(|_| m.ready.is_none())]
            .into_iter()
            .flatten()
        {
            times.push((t.0, m.first_line));
        }
        if m.start.is_none() {
            times.push((m.first_seen.0, m.first_line));
        }
    }
    times.sort();
    let (first_time, first_at) = times[0];
    let mut r = IcidRecord {
        appliance,
        icid,
        connect: None,
        interface: None,
        interface_ip: None,
        remote_ip: None,
        rdns: None,
        rdns_verified: None,
        policy: None,
        sender_group: None,
        sg_match: None,
        sbrs: None,
        country: None,
        tls: None,
        delayed_reject: false,
        sender_rejected: Vec::new(),
        notes: Vec::new(),
        lost: None,
        close: None,
        first_seen: LocalTime(first_time),
        last_seen: LocalTime(times[times.len() - 1].0),
        mids: mids.iter().map(|m| m.mid).collect(),
        outcome: LogOutcome::Open,
        first_line: evs.first().map_or(first_at, |e| e.at),
        close_line: None,
    };
    for e in evs {
        let t = LocalTime(e.time);
        match &e.event {
            Event::Connect(c) if r.connect.is_none() => {
                r.connect = Some(t);
                r.first_line = e.at;
                r.interface = Some(c.interface.clone());
                r.interface_ip.clone_from(&c.interface_ip);
                r.remote_ip = Some(c.remote_ip.clone());
                r.rdns.clone_from(&c.rdns);
                r.rdns_verified = c.verified;
            }
            Event::Hat(h) if r.policy.is_none() => {
                r.policy = Some(h.policy.clone());
                r.sender_group = Some(h.sender_group.clone());
                r.sg_match = Some(h.matched.clone());
                if h.sbrs.is_some() {
                    r.sbrs.clone_from(&h.sbrs);
                }
                r.country.clone_from(&h.country);
            }
            Event::Sbrs { sbrs, .. } => {
                r.sbrs.get_or_insert_with(|| sbrs.clone());
            }
            Event::Tls { success, .. } => r.tls = Some(r.tls.unwrap_or(false) || *success),
            Event::DelayedReject { .. } => r.delayed_reject = true,
            Event::SenderRejected { address, .. } if !r.sender_rejected.contains(address) => {
                r.sender_rejected.push(address.clone());
            }
            Event::Lost { .. } => {
                r.lost.get_or_insert(t);
            }
            Event::Close { .. } if r.close.is_none() => {
                r.close = Some(t);
                r.close_line = Some(e.at);
            }
            Event::IcidNote { note, text, .. } => r.notes.push(IcidNote {
                at: t,
                kind: *note,
                text: text.clone(),
            }),
            _ => {}
        }
    }
    r.sender_rejected.sort();
    r.outcome = outcome(&r, mids, opts);
    r
}

/// The outcome rules, in order: a reception abort decides (the latest one); then a reject
/// policy; then a missing close; then what the messages say.
fn outcome(r: &IcidRecord, mids: &[&MidRecord], opts: &LifecycleOptions) -> LogOutcome {
    let abort = mids
        .iter()
        .filter(|m| m.abort.as_ref().is_some_and(AbortReason::is_receiving))
        .max_by_key(|m| (m.aborted_at, m.mid));
    if let Some(m) = abort {
        return match m.abort {
            Some(AbortReason::ReceivingAbortedBySender) => LogOutcome::AbortedBySender,
            _ => {
                let idle = m
                    .abort_silence_secs
                    .is_some_and(|s| s + 1 >= opts.idle_timeout_secs);
                if r.lost.is_none() && idle {
                    LogOutcome::Timeout
                } else {
                    LogOutcome::Aborted
                }
            }
        };
    }
    if mids.is_empty() && r.policy.as_ref().is_some_and(HatPolicy::is_reject) {
        return LogOutcome::Rejected;
    }
    if r.close.is_none() && r.lost.is_none() {
        return LogOutcome::Open;
    }
    if mids.is_empty() {
        return if r.lost.is_some() {
            LogOutcome::Lost
        } else {
            LogOutcome::NoMessage
        };
    }
    if mids.iter().all(|m| m.ready.is_some()) {
        return LogOutcome::Delivered;
    }
    if r.lost.is_some() {
        return LogOutcome::Lost;
    }
    LogOutcome::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maillog::line::{LineParser, ParserOptions, YearHint};

    fn build(text: &str) -> Lifecycles {
        let mut p = LineParser::new(
            0,
            ParserOptions {
                year: YearHint::Start(2014),
                ..Default::default()
            },
        );
        let mut b = LifecycleBuilder::new();
        let mut recs = Vec::new();
        for (i, l) in text.lines().enumerate() {
            recs.extend(p.push_line(l.as_bytes(), i as u64 + 1));
        }
        recs.extend(p.finish());
        for r in recs {
            let host = r.host.map(|h| p.hosts()[h as usize].clone());
            b.add(0, host.as_deref(), r);
        }
        b.finish(&|k| format!("{k:?}"), &LifecycleOptions::default())
    }

    const T: &str = "Thu Aug 14 11:04:31 2014 Info: ";

    fn lines(ls: &[&str]) -> String {
        ls.iter().map(|l| format!("{T}{l}\n")).collect()
    }

    #[test]
    fn outcomes() {
        let cases: &[(&[&str], LogOutcome)] = &[
            (
                &[
                    "New SMTP ICID 1 interface A (1.1.1.1) address 2.2.2.2",
                    "ICID 1 close",
                ],
                LogOutcome::NoMessage,
            ),
            (
                &[
                    "New SMTP ICID 1 interface A (1.1.1.1) address 2.2.2.2",
                    "ICID 1 lost",
                    "ICID 1 close",
                ],
                LogOutcome::Lost,
            ),
            (
                &["ICID 1 REJECT SG BL match x SBRS -9.0", "ICID 1 close"],
                LogOutcome::Rejected,
            ),
            (
                &["ICID 1 TCPREFUSE SG BL match x SBRS -9.0"],
                LogOutcome::Rejected,
            ),
            (
                &["New SMTP ICID 1 interface A (1.1.1.1) address 2.2.2.2"],
                LogOutcome::Open,
            ),
            (
                &[
                    "Start MID 5 ICID 1",
                    "MID 5 ready 10 bytes from <a>",
                    "ICID 1 close",
                ],
                LogOutcome::Delivered,
            ),
            (
                &["Start MID 5 ICID 1", "ICID 1 close"],
                LogOutcome::Incomplete,
            ),
            (
                &["Start MID 5 ICID 1", "ICID 1 lost", "ICID 1 close"],
                LogOutcome::Lost,
            ),
            (
                &[
                    "Start MID 5 ICID 1",
                    "Message aborted MID 5 Receiving aborted",
                    "ICID 1 close",
                ],
                LogOutcome::Aborted,
            ),
            (
                &[
                    "Start MID 5 ICID 1",
                    "Message aborted MID 5 Receiving aborted by sender",
                ],
                LogOutcome::AbortedBySender,
            ),
        ];
        for (ls, want) in cases {
            let l = build(&lines(ls));
            assert_eq!(l.icids.len(), 1, "{ls:?}");
            assert_eq!(l.icids[0].outcome, *want, "{ls:?}");
        }
    }

    #[test]
    fn icid_zero_is_internal() {
        let l = build(&lines(&[
            "Start MID 9 ICID 0",
            "MID 9 ICID 0 From: <a@b>",
            "ICID 0 TCPREFUSE SG X match y SBRS None",
        ]));
        assert!(l.icids.is_empty());
        assert_eq!(l.mids.len(), 1);
        assert!(l.mids[0].internal);
        assert_eq!(l.internal_icid_lines, 1);
    }

    #[test]
    fn duplicates_and_disorder() {
        let text = "Thu Aug 14 11:05:36 2014 Info: ICID 7 close\n\
                    Thu Aug 14 11:04:31 2014 Info: New SMTP ICID 7 interface A (1.1.1.1) address 2.2.2.2\n\
                    Thu Aug 14 11:04:32 2014 Info: Start MID 3 ICID 7\n\
                    Thu Aug 14 11:04:33 2014 Info: MID 3 ready 5 bytes from <x@y>\n\
                    Thu Aug 14 11:04:32 2014 Info: Start MID 3 ICID 7\n\
                    Thu Aug 14 11:05:36 2014 Info: ICID 7 close\n\
                    Thu Aug 14 11:04:33 2014 Info: MID 3 ICID 7 RID 1 To: <b@y>\n\
                    Thu Aug 14 11:04:33 2014 Info: MID 3 ICID 7 RID 0 To: <a@y>\n";
        let l = build(text);
        assert_eq!(l.duplicates, 2);
        let r = &l.icids[0];
        assert_eq!(r.outcome, LogOutcome::Delivered);
        assert_eq!(r.connect.unwrap().0.to_string(), "2014-08-14 11:04:31");
        assert_eq!(r.close.unwrap().0.to_string(), "2014-08-14 11:05:36");
        assert_eq!(r.first_line.line, 2);
        assert_eq!(r.mids, vec![3]);
        assert_eq!(
            l.mids[0]
                .recipients
                .iter()
                .map(|x| x.rid)
                .collect::<Vec<_>>(),
            vec![0, 1]
        );
    }
}
