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
//!
//! Storage: lines are kept in arrival order, 40 bytes each (the event itself aside only when
//! folding reads its data), grouped at the end by a counting sort; a large log is folded in two
//! halves (odd and even MID / ICID numbers) on two threads.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem::{replace, take};

use chrono::NaiveDateTime;
use serde::Serialize;

use super::event::{
    AbortReason, DeliveryKind, Event, Finish, HatPolicy, HostAddr, IcidNoteKind, Sbrs,
};
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

/// A kept lifecycle line, 40 bytes: its group (a MID or ICID of one source), time,
/// provenance, text hash, and what it said — an index into the builder's events for those that
/// carry more than their kind, else a tag (`TAG_*`) that says it all.
#[derive(Debug, Clone, Copy)]
struct Ev {
    time: NaiveDateTime,
    file: u32,
    line: u64,
    hash: u64,
    group: u32,
    data: u32,
}

impl Ev {
    fn at(&self) -> LineRef {
        LineRef {
            file: self.file,
            line: self.line,
        }
    }
}

// Events told by their kind alone (their MID or ICID is the group's).
const TAG_NOTE: u32 = u32::MAX;
const TAG_DELIVERY: u32 = u32::MAX - 1;
const TAG_QUEUED: u32 = u32::MAX - 2;
const TAG_CLOSE: u32 = u32::MAX - 3;
const TAG_LOST: u32 = u32::MAX - 4;
const TAG_DONE: u32 = u32::MAX - 5;
const TAG_FINISHED_ABORTED: u32 = u32::MAX - 6;
const TAG_RECEIVING_ABORTED: u32 = u32::MAX - 7;
const TAG_ABORTED_BY_SENDER: u32 = u32::MAX - 8;
const TAG_TLS_SUCCESS: u32 = u32::MAX - 9;
const TAG_TLS_FAILED: u32 = u32::MAX - 10;
const TAG_DELAYED_REJECT: u32 = u32::MAX - 11;
/// Indexes into the stored events stay below this.
const FIRST_TAG: u32 = u32::MAX - 11;

fn tag_of(e: &Event) -> Option<u32> {
    Some(match e {
        Event::MidNote { .. } => TAG_NOTE,
        Event::Delivery { .. } => TAG_DELIVERY,
        Event::Queued { .. } => TAG_QUEUED,
        Event::Close { .. } => TAG_CLOSE,
        Event::Lost { .. } => TAG_LOST,
        Event::Finished {
            finish: Finish::Done,
            ..
        } => TAG_DONE,
        Event::Finished {
            finish: Finish::Aborted,
            ..
        } => TAG_FINISHED_ABORTED,
        Event::Aborted {
            reason: AbortReason::ReceivingAborted,
            ..
        } => TAG_RECEIVING_ABORTED,
        Event::Aborted {
            reason: AbortReason::ReceivingAbortedBySender,
            ..
        } => TAG_ABORTED_BY_SENDER,
        // Folding keeps only whether TLS succeeded, and that a delayed reject happened.
        Event::Tls { success: true, .. } => TAG_TLS_SUCCESS,
        Event::Tls { success: false, .. } => TAG_TLS_FAILED,
        Event::DelayedReject { .. } => TAG_DELAYED_REJECT,
        _ => return None,
    })
}

/// The event a tag stands for, in group `id` (the details folding does not read — a delivery
/// line's, TLS protocol and cipher, a delayed reject's text — are not kept).
fn tagged(tag: u32, id: u64) -> Event {
    match tag {
        TAG_NOTE => Event::MidNote { mid: id },
        TAG_DELIVERY => Event::Delivery {
            delivery: DeliveryKind::Dcid,
            mid: Some(id),
            dcid: None,
        },
        TAG_QUEUED => Event::Queued { mid: id },
        TAG_CLOSE => Event::Close { icid: id },
        TAG_LOST => Event::Lost { icid: id },
        TAG_DONE => Event::Finished {
            mid: id,
            finish: Finish::Done,
        },
        TAG_FINISHED_ABORTED => Event::Finished {
            mid: id,
            finish: Finish::Aborted,
        },
        TAG_RECEIVING_ABORTED => Event::Aborted {
            mid: id,
            reason: AbortReason::ReceivingAborted,
        },
        TAG_TLS_SUCCESS | TAG_TLS_FAILED => Event::Tls {
            icid: id,
            success: tag == TAG_TLS_SUCCESS,
            protocol: None,
            cipher: None,
        },
        TAG_DELAYED_REJECT => Event::DelayedReject {
            icid: id,
            detail: String::new(),
        },
        _ => Event::Aborted {
            mid: id,
            reason: AbortReason::ReceivingAbortedBySender,
        },
    }
}

/// One line of a group, as folding reads it (its event moved out of the builder).
#[derive(Debug, Clone)]
struct View {
    time: NaiveDateTime,
    at: LineRef,
    event: Event,
}

/// A MID or an ICID of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey {
    src: SourceKey,
    mid: bool,
    id: u64,
}

/// A multiply-rotate hasher for small integer keys (the default SipHash costs more than the
/// rest of adding a line).
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl IdHasher {
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, x: u8) {
        self.add(u64::from(x));
    }
    fn write_u32(&mut self, x: u32) {
        self.add(u64::from(x));
    }
    fn write_u64(&mut self, x: u64) {
        self.add(x);
    }
    fn write_usize(&mut self, x: usize) {
        self.add(x as u64);
    }
    fn write_isize(&mut self, x: isize) {
        self.add(x as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Entries of the builder's cache of recent groups.
const RECENT: usize = 4096;

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

/// Collects lifecycle events; see the module doc. Lines are kept in arrival order in one
/// array (40 bytes each, the event itself aside only when it carries data), each with the
/// number of its group; [`LifecycleBuilder::finish`] groups them with a counting sort.
#[derive(Debug, Default)]
pub struct LifecycleBuilder {
    hosts: Vec<String>,
    host_index: HashMap<String, u32>,
    groups: HashMap<GroupKey, u32, BuildHasherDefault<IdHasher>>,
    /// Recently used groups, direct-mapped by id (lines of the MIDs and ICIDs in flight).
    recent: Vec<(GroupKey, u32)>,
    keys: Vec<GroupKey>,
    evs: Vec<Ev>,
    /// Events that carry data, apart by the parity of their MID or ICID number.
    rich: [Vec<Event>; 2],
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

    /// Makes room for about `lines` more lines (memory is only reserved, not touched).
    pub(crate) fn reserve(&mut self, lines: usize) {
        self.evs.reserve(lines);
        self.rich[0].reserve(lines / 4);
        self.rich[1].reserve(lines / 4);
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
        let key = match (mid, icid) {
            (Some(mid), _) => GroupKey {
                src,
                mid: true,
                id: mid,
            },
            (None, Some(0)) => {
                self.internal_icid_lines += 1;
                return;
            }
            (None, Some(icid)) => GroupKey {
                src,
                mid: false,
                id: icid,
            },
            (None, None) => return,
        };
        if self.recent.is_empty() {
            let none = GroupKey {
                src: SourceKey::File(u32::MAX),
                mid: false,
                id: u64::MAX,
            };
            self.recent = vec![(none, 0); RECENT];
        }
        let slot = (key.id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize % RECENT;
        let group = if self.recent[slot].0 == key {
            self.recent[slot].1
        } else {
            let next = self.keys.len() as u32;
            let g = *self.groups.entry(key).or_insert(next);
            if g == next {
                self.keys.push(key);
            }
            self.recent[slot] = (key, g);
            g
        };
        let data = match tag_of(&rec.event) {
            Some(t) => t,
            None => {
                let rich = &mut self.rich[(key.id & 1) as usize];
                let i = rich.len() as u32;
                assert!(i < FIRST_TAG, "too many mail-log events");
                rich.push(rec.event);
                i
            }
        };
        self.evs.push(Ev {
            time: rec.time.0,
            file,
            line: rec.line,
            hash: rec.hash,
            group,
            data,
        });
    }

    /// Resolves appliance keys (`appliance_of(source)`), folds, and sorts.
    pub fn finish(
        self,
        appliance_of: &dyn Fn(SourceKey) -> String,
        opts: &LifecycleOptions,
    ) -> Lifecycles {
        // Appliance names, and each source's rank among them (the order of the records).
        let mut src_names: Vec<(SourceKey, String)> = Vec::new();
        {
            let mut seen: HashMap<SourceKey, ()> = HashMap::new();
            for k in &self.keys {
                if seen.insert(k.src, ()).is_none() {
                    src_names.push((k.src, appliance_of(k.src)));
                }
            }
        }
        let mut names: Vec<String> = src_names.iter().map(|(_, n)| n.clone()).collect();
        names.sort();
        names.dedup();
        let rank: HashMap<SourceKey, u32> = src_names
            .iter()
            .map(|(k, n)| (*k, names.binary_search(n).unwrap_or(0) as u32))
            .collect();
        // Groups in record order: (appliance, id), MIDs and ICIDs apart.
        let mut mid_groups: Vec<(u32, u64, u32)> = Vec::new();
        let mut icid_groups: Vec<(u32, u64, u32)> = Vec::new();
        for (g, k) in self.keys.iter().enumerate() {
            let item = (rank[&k.src], k.id, g as u32);
            if k.mid {
                mid_groups.push(item);
            } else {
                icid_groups.push(item);
            }
        }
        mid_groups.sort_unstable();
        icid_groups.sort_unstable();
        // Lines by group (counting sort of their indices, arrival order kept).
        let mut start = vec![0usize; self.keys.len() + 1];
        for e in &self.evs {
            start[e.group as usize + 1] += 1;
        }
        for g in 0..self.keys.len() {
            start[g + 1] += start[g];
        }
        let mut order = vec![0u32; self.evs.len()];
        {
            let mut next = start.clone();
            for (i, e) in self.evs.iter().enumerate() {
                let slot = &mut next[e.group as usize];
                order[*slot] = i as u32;
                *slot += 1;
            }
        }
        let shared = Shared {
            evs: &self.evs,
            start: &start,
            order: &order,
            keys: &self.keys,
            names: &names,
        };
        // Two halves by the parity of the MID or ICID number (the lines of every source of one
        // appliance's MID or ICID are on the same side), folded on two threads when there is
        // enough to fold.
        let [rich0, rich1] = self.rich;
        let parallel = mid_groups.len() + icid_groups.len() >= PARALLEL_GROUPS
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let half = |groups: &[(u32, u64, u32)], parity: u64| -> Vec<(u32, u64, u32)> {
            groups
                .iter()
                .copied()
                .filter(|g| g.1 & 1 == parity)
                .collect()
        };
        let (mg0, mg1) = (half(&mid_groups, 0), half(&mid_groups, 1));
        drop(mid_groups);
        let mut parts = [
            Part {
                rich: rich0,
                dups: 0,
            },
            Part {
                rich: rich1,
                dups: 0,
            },
        ];
        let (p0, p1) = parts.split_at_mut(1);
        let (m0, m1) = both(
            parallel,
            || p0[0].fold_mids(&shared, &mg0),
            || p1[0].fold_mids(&shared, &mg1),
        );
        let mids = merge_sorted(m0, m1, |m| {
            (names.binary_search(&m.appliance).unwrap_or(0), m.mid)
        });
        // MIDs of each ICID, ascending (mids is sorted by (appliance, mid)).
        let mut members: Vec<(u32, u64, usize)> = mids
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let icid = m.icid.filter(|&i| i != 0)?;
                let r = names.binary_search(&m.appliance).unwrap_or(0) as u32;
                Some((r, icid, i))
            })
            .collect();
        members.sort_by_key(|&(r, icid, _)| (r, icid));
        let (ig0, ig1) = (half(&icid_groups, 0), half(&icid_groups, 1));
        drop(icid_groups);
        let member_half = |parity: u64| -> Vec<(u32, u64, usize)> {
            members
                .iter()
                .copied()
                .filter(|m| m.1 & 1 == parity)
                .collect()
        };
        let (mb0, mb1) = (member_half(0), member_half(1));
        let (i0, i1) = both(
            parallel,
            || p0[0].fold_icids(&shared, &ig0, &mb0, &mids, opts),
            || p1[0].fold_icids(&shared, &ig1, &mb1, &mids, opts),
        );
        let duplicates = parts[0].dups + parts[1].dups;
        let mut icids = i0;
        icids.extend(i1);
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

/// From this many MIDs and ICIDs on, the two halves are folded on two threads.
const PARALLEL_GROUPS: usize = 20_000;

/// Runs `a` and `b`, on two threads when `parallel`.
fn both<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|scope| {
        let hb = scope.spawn(b);
        let ra = a();
        match hb.join() {
            Ok(rb) => (ra, rb),
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// Merges two vectors sorted by `key` (no key is in both).
fn merge_sorted<T, K: Ord>(a: Vec<T>, b: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => key(x) < key(y),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

/// What both halves read.
struct Shared<'a> {
    evs: &'a [Ev],
    /// Lines of group g: `order[start[g]..start[g + 1]]`.
    start: &'a [usize],
    order: &'a [u32],
    keys: &'a [GroupKey],
    /// Appliance names, sorted.
    names: &'a [String],
}

/// One half: its stored events (taken out as their groups are folded), and the repeats it
/// dropped.
struct Part {
    rich: Vec<Event>,
    dups: u64,
}

impl Part {
    /// Folds MID groups (`(appliance, mid, group)`, sorted) into records, in that order.
    fn fold_mids(&mut self, sh: &Shared<'_>, groups: &[(u32, u64, u32)]) -> Vec<MidRecord> {
        let mut scratch: Vec<Ev> = Vec::new();
        let mut views: Vec<View> = Vec::new();
        let mut out = Vec::with_capacity(groups.len());
        for run in groups.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (r, mid, _) = run[0];
            self.dups += sh.collect(run, &mut scratch);
            self.views(sh, &scratch, &mut views);
            out.push(fold_mid(sh.names[r as usize].clone(), mid, &mut views));
        }
        out
    }

    /// Folds the ICIDs of ICID groups and of MIDs' member lists (`(appliance, icid, _)`, each
    /// sorted) into records, in (appliance, ICID) order.
    fn fold_icids(
        &mut self,
        sh: &Shared<'_>,
        groups: &[(u32, u64, u32)],
        members: &[(u32, u64, usize)],
        mids: &[MidRecord],
        opts: &LifecycleOptions,
    ) -> Vec<IcidRecord> {
        let mut scratch: Vec<Ev> = Vec::new();
        let mut views: Vec<View> = Vec::new();
        let mut out = Vec::with_capacity(groups.len());
        let (mut gi, mut mi) = (0, 0);
        let mut of: Vec<&MidRecord> = Vec::new();
        loop {
            let next_g = groups.get(gi).map(|g| (g.0, g.1));
            let next_m = members.get(mi).map(|m| (m.0, m.1));
            let key = match (next_g, next_m) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            let g0 = gi;
            while groups.get(gi).is_some_and(|g| (g.0, g.1) == key) {
                gi += 1;
            }
            of.clear();
            while members.get(mi).is_some_and(|m| (m.0, m.1) == key) {
                of.push(&mids[members[mi].2]);
                mi += 1;
            }
            self.dups += sh.collect(&groups[g0..gi], &mut scratch);
            self.views(sh, &scratch, &mut views);
            out.push(fold_icid(
                sh.names[key.0 as usize].clone(),
                key.1,
                &mut views,
                &of,
                opts,
            ));
        }
        out
    }

    /// The lines `evs` with their events (each group is viewed once: stored events move).
    fn views(&mut self, sh: &Shared<'_>, evs: &[Ev], out: &mut Vec<View>) {
        out.clear();
        out.extend(evs.iter().map(|e| View {
            time: e.time,
            at: e.at(),
            event: if e.data >= FIRST_TAG {
                tagged(e.data, sh.keys[e.group as usize].id)
            } else {
                replace(&mut self.rich[e.data as usize], Event::Unknown)
            },
        }));
    }
}

impl Shared<'_> {
    /// The lines of `groups` (`(appliance, id, group)`, one appliance and id) into `out`,
    /// sorted by time then provenance, without repeats of the same line (same time, same
    /// text); returns how many repeats were dropped.
    fn collect(&self, groups: &[(u32, u64, u32)], out: &mut Vec<Ev>) -> u64 {
        out.clear();
        for &(_, _, g) in groups {
            let g = g as usize;
            out.extend(
                self.order[self.start[g]..self.start[g + 1]]
                    .iter()
                    .map(|&i| self.evs[i as usize]),
            );
        }
        // One group's lines arrive in (file, line) order; with times that never go back,
        // that is the order already.
        if groups.len() > 1 || !out.is_sorted_by_key(|e| e.time) {
            out.sort_by_key(|e| (e.time, e.file, e.line));
        }
        // A line is a repeat when an earlier one of the same second has the same hash: the
        // first of each hash in a run of one second stays.
        let before = out.len();
        let mut kept = 0;
        let mut i = 0;
        while i < out.len() {
            let t = out[i].time;
            let mut j = i + 1;
            while j < out.len() && out[j].time == t {
                j += 1;
            }
            let run_kept = kept;
            if j - i == 1 {
                out[kept] = out[i];
                kept += 1;
            } else {
                // A 1024-bit filter of the hashes seen in this second: only a line whose bit
                // is already set is compared with the kept ones.
                let mut bits = [0u64; 16];
                for k in i..j {
                    let e = out[k];
                    let b = (e.hash >> 54) as usize;
                    let (w, m) = (b >> 6, 1u64 << (b & 63));
                    let maybe = bits[w] & m != 0;
                    bits[w] |= m;
                    if !maybe || !out[run_kept..kept].iter().any(|x| x.hash == e.hash) {
                        out[kept] = e;
                        kept += 1;
                    }
                }
            }
            i = j;
        }
        out.truncate(kept);
        (before - kept) as u64
    }
}

fn fold_mid(appliance: String, mid: u64, evs: &mut [View]) -> MidRecord {
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
    for i in 0..evs.len() {
        let (time, at) = (evs[i].time, evs[i].at);
        let t = LocalTime(time);
        if r.abort.is_none()
            && let Event::Aborted { reason, .. } = &evs[i].event
        {
            r.abort = Some(reason.clone());
            r.aborted_at = Some(t);
            if reason.is_receiving() {
                // Order-independent: the latest other reception line not after it.
                r.abort_silence_secs = evs
                    .iter()
                    .filter(|o| {
                        o.time <= time
                            && !matches!(
                                o.event,
                                Event::Aborted { .. }
                                    | Event::Finished { .. }
                                    | Event::Delivery { .. }
                            )
                    })
                    .map(|o| o.time)
                    .max()
                    .map(|p| (time - p).num_seconds());
            }
            continue;
        }
        match &mut evs[i].event {
            Event::Start { icid, .. } => {
                if r.start.is_none() {
                    r.start = Some(t);
                    r.first_line = at;
                }
                start_icid.get_or_insert(*icid);
            }
            Event::From { icid, address, .. } => {
                if r.from.is_none() {
                    r.from = Some(take(address));
                }
                other_icid.get_or_insert(*icid);
            }
            Event::To {
                icid, rid, address, ..
            } => {
                match r.recipients.iter_mut().find(|x| x.rid == *rid) {
                    Some(x) => {
                        if x.address.is_none() {
                            x.address = address.take();
                        }
                    }
                    None => r.recipients.push(Recipient {
                        rid: *rid,
                        address: address.take(),
                    }),
                }
                other_icid.get_or_insert(*icid);
            }
            Event::ToRejected {
                icid, address, by, ..
            } => {
                let rr = RejectedRecipient {
                    address: take(address),
                    by: take(by),
                };
                if !r.rejected_recipients.contains(&rr) {
                    r.rejected_recipients.push(rr);
                }
                other_icid.get_or_insert(*icid);
            }
            Event::MessageId { id, .. } if r.message_id.is_none() => {
                r.message_id = Some(take(id));
            }
            Event::Subject { subject, .. } if r.subject.is_none() => {
                r.subject = Some(take(subject));
            }
            Event::Ready { bytes, from, .. } => {
                if r.ready.is_none() {
                    r.ready = Some(t);
                    r.ready_bytes = Some(*bytes);
                }
                if ready_from.is_none() {
                    ready_from = from.take();
                }
            }
            Event::Queued { .. } => {
                r.queued.get_or_insert(t);
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
    evs: &mut [View],
    mids: &[&MidRecord],
    opts: &LifecycleOptions,
) -> IcidRecord {
    // Reception times of the MIDs count as activity of the connection.
    let mut first: Option<(NaiveDateTime, LineRef)> = None;
    let mut last: Option<NaiveDateTime> = None;
    let mut seen = |t: NaiveDateTime, at: LineRef| {
        first = Some(first.map_or((t, at), |f| f.min((t, at))));
        last = Some(last.map_or(t, |l| l.max(t)));
    };
    for e in evs.iter() {
        seen(e.time, e.at);
    }
    for m in mids {
        for t in [m.start, m.ready, m.aborted_at.filter(|_| m.ready.is_none())]
            .into_iter()
            .flatten()
        {
            seen(t.0, m.first_line);
        }
        if m.start.is_none() {
            seen(m.first_seen.0, m.first_line);
        }
    }
    let (first_time, first_at) = first.expect("an ICID has a line or a MID");
    let last_time = last.unwrap_or(first_time);
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
        last_seen: LocalTime(last_time),
        mids: mids.iter().map(|m| m.mid).collect(),
        outcome: LogOutcome::Open,
        first_line: evs.first().map_or(first_at, |e| e.at),
        close_line: None,
    };
    for e in evs.iter_mut() {
        let t = LocalTime(e.time);
        match &mut e.event {
            Event::Connect(c) if r.connect.is_none() => {
                r.connect = Some(t);
                r.first_line = e.at;
                r.interface = Some(take(&mut c.interface));
                r.interface_ip = c.interface_ip.take();
                r.remote_ip = Some(replace(&mut c.remote_ip, HostAddr::Text(String::new())));
                r.rdns = c.rdns.take();
                r.rdns_verified = c.verified;
            }
            Event::Hat(h) if r.policy.is_none() => {
                r.policy = Some(h.policy.clone());
                r.sender_group = Some(take(&mut h.sender_group));
                r.sg_match = Some(take(&mut h.matched));
                if h.sbrs.is_some() {
                    r.sbrs = h.sbrs.take();
                }
                r.country = h.country.take();
            }
            Event::Sbrs { sbrs, .. } => {
                r.sbrs.get_or_insert_with(|| sbrs.clone());
            }
            Event::Tls { success, .. } => r.tls = Some(r.tls.unwrap_or(false) || *success),
            Event::DelayedReject { .. } => r.delayed_reject = true,
            Event::SenderRejected { address, .. } if !r.sender_rejected.contains(address) => {
                r.sender_rejected.push(take(address));
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
                text: take(text),
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
