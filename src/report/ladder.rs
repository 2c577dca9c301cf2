//! The ladder diagram of one connection, and the words around it, shared by the Markdown and
//! HTML printers.
//!
//! Contract: [`ladder`] turns a [`ConnectionReport`] into the rows of its ladder diagram — the
//! TCP handshake and closes (FIN/RST of each side) merged in time order with the SMTP timeline
//! (commands, replies, end of message data) — with long silences marked and the number of
//! drawn events bounded. It reads the report model only and decides nothing: the verdict is
//! already there. The printers draw the rows (text in Markdown, SVG in HTML). The small word
//! helpers below (relative times, "ended by", the verdict in plain words) keep both formats
//! saying the same thing.

use super::{ConnectionReport, Report};
use crate::correlate::{Agreement, ClockSource};
use crate::maillog::excerpt::LogLine;
use crate::smtp::{EVENTS_KEPT, Phase, SmtpEvent};
use crate::types::{Side, Timestamp};
use crate::verdict::{Cause, Initiator, Layer};

/// A column of the diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Client,
    /// Only drawn when the verdict says a middlebox ended the connection.
    Middlebox,
    Server,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Client => "client",
            Lane::Middlebox => "middlebox",
            Lane::Server => "server",
        }
    }
}

/// What an arrow stands for (the printers colour by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SYN, SYN-ACK.
    Syn,
    Command,
    /// A 2xx/3xx reply.
    Reply,
    /// A 4xx/5xx reply, or a line without a reply code.
    ErrorReply,
    /// A reply that answered no command (an idle timeout's 421).
    Unprompted,
    /// Message data (its end, or what was sent of it).
    Data,
    /// TLS records after STARTTLS.
    Tls,
    Fin,
    Rst,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Syn => "syn",
            Kind::Command => "command",
            Kind::Reply => "reply",
            Kind::ErrorReply => "error",
            Kind::Unprompted => "unprompted",
            Kind::Data => "data",
            Kind::Tls => "tls",
            Kind::Fin => "fin",
            Kind::Rst => "rst",
        }
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrow {
    pub at: Timestamp,
    /// Seconds since the connection's first packet.
    pub seconds: f64,
    pub from: Lane,
    pub to: Lane,
    pub kind: Kind,
    /// Short, at most [`LABEL_MAX`] characters (cut with `…`).
    pub label: String,
    /// The whole label (for a tooltip).
    pub detail: String,
    /// This is the step that ended the session, as the verdict tells it (the QUIT or RSET of
    /// an abandoned message, the unprompted reply of a timeout, the FIN or RST of the side
    /// that ended it).
    pub key: bool,
}

/// One row of the diagram.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Arrow(Arrow),
    /// Nothing for `seconds` between the arrows around it; drawn `rows` units high (1 to
    /// [`SILENCE_ROWS_MAX`], growing with the logarithm of the length).
    Silence {
        seconds: f64,
        rows: u32,
    },
    /// `seconds` between two arrows while the session was encrypted (after STARTTLS): TLS
    /// records went back and forth, but their times are not kept; drawn like a silence.
    Encrypted {
        seconds: f64,
        rows: u32,
    },
    /// Events left out here (to keep the diagram bounded, or not kept by the analysis).
    Elided {
        events: u64,
    },
}

/// Labels are cut to this many characters.
pub const LABEL_MAX: usize = 52;
/// Arrows drawn at each end of a long conversation.
pub const ARROWS_EACH_END: usize = 40;
/// A gap between two consecutive arrows longer than this (seconds) is drawn as a silence.
pub const SILENCE_SECONDS: f64 = 2.0;
pub const SILENCE_ROWS_MAX: u32 = 6;

/// The columns of the diagram of `c`, left to right.
pub fn lanes(c: &ConnectionReport) -> Vec<Lane> {
    if c.verdict.initiator == Initiator::Middlebox {
        vec![Lane::Client, Lane::Middlebox, Lane::Server]
    } else {
        vec![Lane::Client, Lane::Server]
    }
}

/// How high a silence of `seconds` is drawn: one row up to 2 s, then growing with the
/// logarithm (10 s: 2 rows, 60 s: 4, 300 s: 5, an hour and more: 6).
pub fn silence_rows(seconds: f64) -> u32 {
    if seconds <= SILENCE_SECONDS {
        return 1;
    }
    let r = 1.0 + (2.0 * (seconds / SILENCE_SECONDS).log10()).round();
    (r as u32).clamp(1, SILENCE_ROWS_MAX)
}

/// Cuts `s` to `max` characters, ending with `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An unsorted entry: time, order class at equal times, sequence, what.
struct Entry {
    at: Timestamp,
    rank: u8,
    seq: usize,
    what: Option<Arrow>,
    /// For an elision marker (`what` is None): events left out.
    elided: u64,
}

fn arrow(
    c: &ConnectionReport,
    at: Timestamp,
    from: Lane,
    to: Lane,
    kind: Kind,
    text: String,
) -> Arrow {
    Arrow {
        at,
        seconds: at.seconds_since(c.first_seen),
        from,
        to,
        kind,
        label: cut(&text, LABEL_MAX),
        detail: text,
        key: false,
    }
}

fn lanes_of(side: Side) -> (Lane, Lane) {
    match side {
        Side::Client => (Lane::Client, Lane::Server),
        Side::Server => (Lane::Server, Lane::Client),
    }
}

fn command_text(verb: &str, arg: Option<&str>) -> String {
    match (verb, arg) {
        ("?", _) => "? (not a command)".into(),
        ("MAIL", Some(a)) => format!("MAIL FROM:<{a}>"),
        ("RCPT", Some(a)) => format!("RCPT TO:<{a}>"),
        (v, Some(a)) => format!("{v} {a}"),
        (v, None) => v.to_string(),
    }
}

fn reply_text(code: Option<u16>, text: &str) -> String {
    match code {
        Some(c) => format!("{c} {text}").trim_end().to_string(),
        None => format!("(no code) {text}").trim_end().to_string(),
    }
}

/// The rows of the ladder diagram of `c`: its TCP and SMTP events in time order (relative to
/// the first packet), the first and last [`ARROWS_EACH_END`] of them with the rest elided,
/// silences longer than [`SILENCE_SECONDS`] between consecutive arrows marked.
pub fn ladder(c: &ConnectionReport) -> Vec<Step> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut seq = 0usize;
    let mut push =
        |entries: &mut Vec<Entry>, at: Timestamp, rank: u8, what: Option<Arrow>, elided: u64| {
            entries.push(Entry {
                at,
                rank,
                seq,
                what,
                elided,
            });
            seq += 1;
        };

    // TCP: handshake.
    if let Some(at) = c.tcp.from_client.syn_at {
        let a = arrow(c, at, Lane::Client, Lane::Server, Kind::Syn, "SYN".into());
        push(&mut entries, at, 0, Some(a), 0);
    }
    if let Some(at) = c.tcp.from_server.syn_at {
        let a = arrow(
            c,
            at,
            Lane::Server,
            Lane::Client,
            Kind::Syn,
            "SYN, ACK".into(),
        );
        push(&mut entries, at, 0, Some(a), 0);
    }

    // SMTP: the timeline, with a marker where the analysis kept no events.
    let session = &c.smtp.session;
    for (i, e) in session.events.iter().enumerate() {
        if session.events_dropped > 0 && i == EVENTS_KEPT {
            push(&mut entries, e.at(), 1, None, session.events_dropped);
        }
        let a = match e {
            SmtpEvent::Command { at, verb, arg } => arrow(
                c,
                *at,
                Lane::Client,
                Lane::Server,
                Kind::Command,
                command_text(verb, arg.as_deref()),
            ),
            SmtpEvent::Reply { at, code, text } => {
                let unprompted = session
                    .unprompted_replies
                    .iter()
                    .any(|r| r.at == *at && r.code == *code);
                let kind = if unprompted {
                    Kind::Unprompted
                } else if code.is_none_or(|c| c >= 400) {
                    Kind::ErrorReply
                } else {
                    Kind::Reply
                };
                let t = reply_text(*code, text);
                if unprompted {
                    // The mark survives when the text is cut.
                    const MARK: &str = " (unprompted)";
                    let mut a = arrow(
                        c,
                        *at,
                        Lane::Server,
                        Lane::Client,
                        kind,
                        format!("{t}{MARK}"),
                    );
                    a.label = format!("{}{MARK}", cut(&t, LABEL_MAX - MARK.len()));
                    a
                } else {
                    arrow(c, *at, Lane::Server, Lane::Client, kind, t)
                }
            }
            SmtpEvent::EndOfData { at, bytes } => arrow(
                c,
                *at,
                Lane::Client,
                Lane::Server,
                Kind::Data,
                format!("{} bytes of message data, end", thousands(*bytes)),
            ),
        };
        push(&mut entries, a.at, 1, Some(a), 0);
    }

    // Message data that was being sent when the connection ended (no end of data).
    if let (Some(d), Some(last)) = (
        session.transactions.last().and_then(|t| t.data.as_ref()),
        session.client_last_at,
    ) {
        if d.end_at.is_none() && d.bytes > 0 && last >= d.command_at {
            let a = arrow(
                c,
                last,
                Lane::Client,
                Lane::Server,
                Kind::Data,
                format!("{} bytes of message data, no end", thousands(d.bytes)),
            );
            push(&mut entries, last, 1, Some(a), 0);
        }
    }

    // TLS after STARTTLS: the records are opaque; show where each side's ended and its alert.
    if let Some(tls) = &session.tls {
        for (side, dir) in [(Side::Client, &tls.client), (Side::Server, &tls.server)] {
            let (from, to) = lanes_of(side);
            let records = dir.handshake_records
                + dir.change_cipher_spec_records
                + dir.application_data_records
                + dir.alert_records;
            if let Some(at) = dir.last_record_at {
                let a = arrow(
                    c,
                    at,
                    from,
                    to,
                    Kind::Tls,
                    format!(
                        "last of {records} TLS records ({} bytes encrypted)",
                        thousands(dir.application_data_bytes)
                    ),
                );
                push(&mut entries, at, 1, Some(a), 0);
            }
            if let Some(at) = dir.first_alert_at {
                let a = arrow(c, at, from, to, Kind::Tls, "TLS alert (encrypted)".into());
                push(&mut entries, at, 1, Some(a), 0);
            }
        }
    }

    // TCP: the first FIN and RST of each side. With a middlebox verdict, the first close of
    // the connection is drawn from the middlebox column, towards the side that received it.
    let first_close = [
        c.tcp.from_client.first_fin.map(|e| (e.at, e.frame)),
        c.tcp.from_client.first_rst.map(|e| (e.at, e.frame)),
        c.tcp.from_server.first_fin.map(|e| (e.at, e.frame)),
        c.tcp.from_server.first_rst.map(|e| (e.at, e.frame)),
    ]
    .into_iter()
    .flatten()
    .min();
    for side in [Side::Client, Side::Server] {
        let stats = c.tcp.side(side);
        for (ev, kind, name, rank) in [
            (stats.first_fin, Kind::Fin, "FIN", 2),
            (stats.first_rst, Kind::Rst, "RST", 3),
        ] {
            let Some(ev) = ev else { continue };
            let (mut from, to) = lanes_of(side);
            let mut a = arrow(c, ev.at, from, to, kind, format!("{name} (TTL {})", ev.ttl));
            if c.verdict.initiator == Initiator::Middlebox && Some((ev.at, ev.frame)) == first_close
            {
                // Short: the arrow spans half the width.
                from = Lane::Middlebox;
                a = arrow(
                    c,
                    ev.at,
                    from,
                    to,
                    kind,
                    format!("{name} sent in the {side}'s name (TTL {})", ev.ttl),
                );
                a.label = format!("{name} as {side}, TTL {}", ev.ttl);
            }
            push(&mut entries, ev.at, rank, Some(a), 0);
        }
    }

    entries.sort_by_key(|e| (e.at, e.rank, e.seq));
    mark_key_step(c, &mut entries);
    bound_and_mark_silences(entries, encrypted_span(c))
}

/// When the session was encrypted: from the reply that accepted STARTTLS (or the first packet,
/// for TLS from the start) to the last TLS record of either side.
fn encrypted_span(c: &ConnectionReport) -> Option<(Timestamp, Timestamp)> {
    let session = &c.smtp.session;
    let tls = session.tls.as_ref()?;
    let start = match &session.starttls {
        Some(cmd) => cmd.reply.as_ref().map_or(cmd.at, |r| r.at),
        None => c.first_seen,
    };
    let end = [tls.client.last_record_at, tls.server.last_record_at]
        .into_iter()
        .flatten()
        .max()?;
    Some((start, end))
}

/// Marks the arrow that ended the session, as the verdict tells it.
fn mark_key_step(c: &ConnectionReport, entries: &mut [Entry]) {
    let v = &c.verdict;
    let arrows = || entries.iter().filter_map(|e| e.what.as_ref());
    let pick: Option<usize> = match (v.layer, v.cause) {
        (Layer::None, _) => None,
        (Layer::Application, Cause::RsetBeforeData) => arrows()
            .enumerate()
            .filter(|(_, a)| a.kind == Kind::Command && a.label.starts_with("RSET"))
            .map(|(i, _)| i)
            .last(),
        (Layer::Application, _) => arrows()
            .enumerate()
            .filter(|(_, a)| a.kind == Kind::Command && a.label == "QUIT")
            .map(|(i, _)| i)
            .last(),
        (Layer::Timeout, _) => arrows()
            .position(|a| a.kind == Kind::Unprompted)
            .or_else(|| arrows().position(|a| a.from == Lane::Server && a.kind == Kind::Fin)),
        _ => {
            let side = match v.initiator {
                Initiator::Client => Some(Lane::Client),
                Initiator::Server => Some(Lane::Server),
                Initiator::Middlebox => Some(Lane::Middlebox),
                Initiator::None => None,
            };
            side.and_then(|side| {
                arrows().position(|a| a.from == side && matches!(a.kind, Kind::Fin | Kind::Rst))
            })
        }
    };
    if let Some(i) = pick {
        if let Some(a) = entries.iter_mut().filter_map(|e| e.what.as_mut()).nth(i) {
            a.key = true;
        }
    }
}

/// Keeps the first and last [`ARROWS_EACH_END`] arrows (one elision marker for the rest, model
/// elisions merged into it) and inserts the silences between consecutive arrows.
fn bound_and_mark_silences(
    entries: Vec<Entry>,
    encrypted: Option<(Timestamp, Timestamp)>,
) -> Vec<Step> {
    let arrows = entries.iter().filter(|e| e.what.is_some()).count();
    let (keep_head, keep_tail_from) = if arrows > 2 * ARROWS_EACH_END {
        (ARROWS_EACH_END, arrows - ARROWS_EACH_END)
    } else {
        (arrows, arrows)
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut n = 0usize;
    let mut last: Option<Timestamp> = None;
    let elide = |steps: &mut Vec<Step>, count: u64| {
        if let Some(Step::Elided { events }) = steps.last_mut() {
            *events += count;
        } else {
            steps.push(Step::Elided { events: count });
        }
    };
    for e in entries {
        match e.what {
            None => {
                elide(&mut steps, e.elided);
                last = None;
            }
            Some(a) => {
                let i = n;
                n += 1;
                if i >= keep_head && i < keep_tail_from {
                    elide(&mut steps, 1);
                    last = None;
                    continue;
                }
                if let Some(prev) = last {
                    let gap = a.at.seconds_since(prev);
                    if gap > SILENCE_SECONDS {
                        let rows = silence_rows(gap);
                        let opaque = encrypted.is_some_and(|(from, to)| prev < to && a.at > from);
                        steps.push(if opaque {
                            Step::Encrypted { seconds: gap, rows }
                        } else {
                            Step::Silence { seconds: gap, rows }
                        });
                    }
                }
                last = Some(a.at);
                steps.push(Step::Arrow(a));
            }
        }
    }
    steps
}

// ---------------------------------------------------------------------------------------------
// Words shared by both printers.

/// `+1.234 s`: seconds since the first packet.
pub fn rel(seconds: f64) -> String {
    format!("{seconds:+.3} s")
}

/// `⋮ 300.0 s of silence ⋮`
pub fn silence_words(seconds: f64) -> String {
    format!("⋮ {seconds:.1} s of silence ⋮")
}

/// `⋮ 7.4 s of encrypted TLS (record times not kept) ⋮`
pub fn encrypted_words(seconds: f64) -> String {
    format!("⋮ {seconds:.1} s of encrypted TLS (record times not kept) ⋮")
}

/// `… 12 events not shown …`
pub fn elided_words(events: u64) -> String {
    format!(
        "… {} event{} not shown …",
        thousands(events),
        if events == 1 { "" } else { "s" }
    )
}

/// `102418` → `102,418`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A byte count for people: `1,234 bytes`, `12.3 KiB`, `4.5 MiB`.
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 10_000 {
        format!("{} bytes", thousands(bytes))
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / KIB / KIB)
    } else {
        format!("{:.2} GiB", b / KIB / KIB / KIB)
    }
}

/// A duration: `0.245 s`, `3.2 s`, `5 min 2 s`, `2 h 3 min`.
pub fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.3} s")
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        let s = seconds.round() as u64;
        format!("{} min {} s", s / 60, s % 60)
    } else {
        let m = (seconds / 60.0).round() as u64;
        format!("{} h {} min", m / 60, m % 60)
    }
}

/// `2026-11-23 16:30:31.123456` (UTC).
pub fn utc(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// How the connection was ended, in a couple of words ("client RST", "server 421").
pub fn ended_by(c: &ConnectionReport) -> String {
    let v = &c.verdict;
    match v.cause {
        Cause::Quit | Cause::QuitBeforeData | Cause::QuitDuringData | Cause::RsetBeforeData => {
            "client QUIT".into()
        }
        Cause::IdleTimeout => match c
            .smtp
            .session
            .unprompted_replies
            .first()
            .and_then(|r| r.code)
        {
            Some(code) => format!("server {code}"),
            None => "server FIN".into(),
        },
        Cause::CaptureEnded | Cause::PayloadNotCaptured if v.initiator == Initiator::None => {
            "—".into()
        }
        _ if v.initiator == Initiator::Middlebox => {
            let kind = match (c.close.first_fin, c.close.first_rst) {
                (Some(f), Some(r)) if r.at < f.at => "RST",
                (Some(_), _) => "FIN",
                (None, Some(_)) => "RST",
                (None, None) => "close",
            };
            format!("middlebox {kind}")
        }
        _ => {
            let fin = c
                .close
                .first_fin
                .filter(|f| f.side.as_str() == v.initiator.as_str());
            let rst = c
                .close
                .first_rst
                .filter(|f| f.side.as_str() == v.initiator.as_str());
            let kind = match (fin, rst) {
                (Some(f), Some(r)) if r.at < f.at => "RST",
                (Some(_), _) => "FIN",
                (None, Some(_)) => "RST",
                (None, None) => "close",
            };
            format!("{} {kind}", v.initiator)
        }
    }
}

/// Messages completed/started.
pub fn messages(c: &ConnectionReport) -> String {
    format!("{}/{}", c.smtp.completed, c.smtp.transactions)
}

/// ✓, ✗ or ? for a matched connection.
pub fn agreement_mark(a: Agreement) -> &'static str {
    match a {
        Agreement::Agrees => "✓",
        Agreement::Disagrees => "✗",
        Agreement::Unknown => "?",
    }
}

/// Whether the connection gets a section of its own: aborted, or disagreeing with the log.
pub fn has_section(c: &ConnectionReport) -> bool {
    c.verdict.layer != Layer::None
        || c.log_match
            .as_ref()
            .is_some_and(|m| m.agreement == Agreement::Disagrees)
}

/// The reason, with the disagreement with the log when there is one.
pub fn reason(c: &ConnectionReport) -> String {
    match &c.log_match {
        Some(m) if m.agreement == Agreement::Disagrees => format!(
            "{}; ✗ {}",
            c.verdict.reason,
            m.agreement_reason
                .as_deref()
                .unwrap_or("disagrees with the log")
        ),
        _ => c.verdict.reason.clone(),
    }
}

/// What the log's outcome means, in the appliance's words.
pub fn log_outcome_words(outcome: &str) -> String {
    match outcome {
        "delivered" => "every message was received (\"ready\")".into(),
        "aborted" => "\"Receiving aborted\"".into(),
        "aborted_by_sender" => "\"Receiving aborted by sender\"".into(),
        "timeout" => "\"Receiving aborted\" after the listener's idle timeout".into(),
        "rejected" => "the connection or its messages were rejected".into(),
        "no_message" => "the connection closed without a message".into(),
        "lost" => "\"ICID lost\", no message received".into(),
        "incomplete" => "nothing conclusive (the log does not show the end of this ICID)".into(),
        "open" => "the ICID was still open when the log ends".into(),
        other => format!("\"{other}\""),
    }
}

/// The SMTP step, in words.
pub fn phase_words(p: Phase) -> &'static str {
    match p {
        Phase::Banner => "before the server's banner",
        Phase::Greeting => "in the greeting step (EHLO/HELO, before MAIL FROM)",
        Phase::Tls => "inside TLS, after STARTTLS (the commands are encrypted)",
        Phase::Envelope => "in the envelope step (MAIL FROM / RCPT TO, before the message data)",
        Phase::Data => "in the message data step (sending it, or waiting for its final reply)",
        Phase::AfterData => "after the last message got its final reply",
        Phase::Quit => "at QUIT",
    }
}

/// What the layer means, in words.
pub fn layer_words(l: Layer) -> &'static str {
    match l {
        Layer::None => {
            "nothing was aborted: every message started was finished and the client said QUIT"
        }
        Layer::Application => {
            "the sender abandoned the message at the SMTP layer (QUIT or RSET with a message open) — the log's \"Receiving aborted by sender\""
        }
        Layer::Network => {
            "the connection ended by TCP FIN or RST without QUIT — the log's \"Receiving aborted\""
        }
        Layer::Timeout => {
            "the server gave up waiting for the client (idle timeout) — the log's \"Receiving aborted\""
        }
        Layer::Server => "the server ended the session for another reason",
        Layer::Unknown => "the capture does not show how the session ended",
    }
}

/// The verdict of `c` in plain words: what happened, where, who, what the log says, what next.
/// Each entry is one sentence or short paragraph, plain text (the printers escape it).
pub fn plain_words(c: &ConnectionReport, with_log: bool) -> Vec<(&'static str, String)> {
    let v = &c.verdict;
    let mut out = Vec::new();
    let mut what = v.reason.clone();
    if let Some(first) = what.get(..1) {
        what = format!("{}{}", first.to_uppercase(), &what[1..]);
    }
    out.push((
        "What happened",
        format!("{what}. Layer {}: {}.", v.layer, layer_words(v.layer)),
    ));
    let who = match v.initiator {
        Initiator::None => "The capture does not show who ended it.".to_string(),
        Initiator::Middlebox => format!(
            "A device in the path ended it ({}), not the endpoint the packet claims to come from.",
            ended_by(c)
        ),
        i => format!("The {i} ended it ({}).", ended_by(c)),
    };
    let messages = if c.smtp.session.tls.is_some() && c.smtp.transactions == 0 {
        "the messages sent inside TLS are not visible in the capture".to_string()
    } else {
        format!(
            "{} of {} message{} completed",
            c.smtp.completed,
            c.smtp.transactions,
            if c.smtp.transactions == 1 { "" } else { "s" }
        )
    };
    out.push((
        "Where",
        format!(
            "The session ended {}; {messages}. {who}",
            phase_words(v.phase)
        ),
    ));
    let log = match (&c.log_match, c.icid) {
        (Some(m), Some(icid)) => {
            let mids = match c.mids.as_slice() {
                [] => String::new(),
                ms => format!(
                    ", MID {}",
                    ms.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                ),
            };
            let says = c
                .log_outcome
                .as_deref()
                .map(log_outcome_words)
                .unwrap_or_else(|| "nothing about its outcome".into());
            let agreement = match m.agreement {
                Agreement::Agrees => "That agrees with the wire.".to_string(),
                Agreement::Disagrees => format!(
                    "That does NOT agree with the wire: {}.",
                    m.agreement_reason.as_deref().unwrap_or("see the evidence")
                ),
                Agreement::Unknown => format!(
                    "Whether that agrees with the wire cannot be told{}.",
                    m.agreement_reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            };
            format!(
                "ICID {icid}{mids} (match confidence {}): the log says {says}. {agreement}",
                match m.confidence {
                    crate::correlate::Confidence::High => "high",
                    crate::correlate::Confidence::Medium => "medium",
                    crate::correlate::Confidence::Low => "low",
                }
            )
        }
        _ if with_log => {
            "No ICID of the mail log matched this connection (the log may not cover its time, or the connection was refused before an ICID was given).".into()
        }
        _ => "No mail log was given: give it with --log to see what the appliance recorded.".into(),
    };
    out.push(("Mail log", log));
    out.push(("Next", v.next_steps.clone()));
    out
}

/// Remote (client) IPs by the number of their aborted connections (layer not `none`), most
/// first: (ip, aborted, connections).
pub fn top_aborting_ips(connections: &[ConnectionReport], max: usize) -> Vec<(String, u32, u32)> {
    let mut by_ip: std::collections::BTreeMap<std::net::IpAddr, (u32, u32)> =
        std::collections::BTreeMap::new();
    for c in connections {
        let e = by_ip.entry(c.tcp.client.ip()).or_default();
        e.1 += 1;
        if c.verdict.layer != Layer::None {
            e.0 += 1;
        }
    }
    let mut rows: Vec<(String, u32, u32)> = by_ip
        .into_iter()
        .filter(|(_, (aborted, _))| *aborted > 0)
        .map(|(ip, (a, n))| (ip.to_string(), a, n))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
    rows.truncate(max);
    rows
}

// ---------------------------------------------------------------------------------------------
// The summary and the verdict table as plain-text grids, drawn by both printers.

/// A table of plain text cells (the printers escape them).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub head: Vec<&'static str>,
    /// Right-aligned (numeric) columns.
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Grid {
    fn new(cols: &[(&'static str, bool)]) -> Self {
        Grid {
            head: cols.iter().map(|c| c.0).collect(),
            numeric: cols.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    /// The index of a column by its heading.
    pub fn column(&self, head: &str) -> Option<usize> {
        self.head.iter().position(|h| *h == head)
    }
}

fn span(a: Option<Timestamp>, b: Option<Timestamp>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => duration(b.seconds_since(a)),
        _ => "—".into(),
    }
}

fn opt_utc(t: Option<Timestamp>) -> String {
    t.map(utc).unwrap_or_else(|| "—".into())
}

/// The capture files: name, format, bytes, records, first and last packet, damage.
pub fn capture_files(report: &Report) -> Grid {
    let mut g = Grid::new(&[
        ("File", false),
        ("Format", false),
        ("Size", true),
        ("Records", true),
        ("First packet (UTC)", false),
        ("Last packet (UTC)", false),
        ("Span", true),
        ("Damage", false),
    ]);
    for f in &report.captures.files {
        let mut format = f.format.clone();
        if f.gzip {
            format.push_str(" (gzip)");
        }
        if !f.link_types.is_empty() {
            format.push_str(&format!(", {}", f.link_types.join(" ")));
        }
        if let Some(s) = f.snaplen {
            format.push_str(&format!(", snaplen {s}"));
        }
        let damage = match &f.damage {
            Some(d) => format!(
                "damaged at record {}, byte offset {}: {}",
                thousands(d.record),
                thousands(d.offset),
                d.message
            ),
            None => "none".into(),
        };
        g.rows.push(vec![
            f.name.clone(),
            format,
            size(f.bytes),
            thousands(f.records),
            opt_utc(f.first_ts),
            opt_utc(f.last_ts),
            span(f.first_ts, f.last_ts),
            damage,
        ]);
    }
    g
}

/// The mail log files: path, size, lines, first and last line (log time), damage.
pub fn log_files(report: &Report) -> Option<Grid> {
    let logs = report.logs.as_ref()?;
    let mut g = Grid::new(&[
        ("File", false),
        ("Size", true),
        ("Lines", true),
        ("First line (log time)", false),
        ("Last line (log time)", false),
        ("Appliance", false),
        ("Problems", false),
    ]);
    let local = |t: Option<&crate::maillog::LocalTime>| {
        t.map(|t| t.0.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "—".into())
    };
    for f in &logs.files {
        let mut problems: Vec<String> = Vec::new();
        if let Some(d) = &f.damage {
            problems.push(format!("damaged: {d}"));
        }
        if f.counts.unparsed_lines > 0 {
            problems.push(format!(
                "{} unparsed lines",
                thousands(f.counts.unparsed_lines)
            ));
        }
        g.rows.push(vec![
            f.path.clone(),
            f.size.map(size).unwrap_or_else(|| "—".into()),
            thousands(f.counts.lines),
            local(f.counts.first_time.as_ref()),
            local(f.counts.last_time.as_ref()),
            f.appliance.clone(),
            if problems.is_empty() {
                "none".into()
            } else {
                problems.join("; ")
            },
        ]);
    }
    Some(g)
}

/// The log clocks: appliance, offset, how it was found and how many connections support it.
pub fn clocks(report: &Report) -> Option<Grid> {
    if report.clocks.is_empty() && report.clock.is_none() {
        return None;
    }
    let mut g = Grid::new(&[
        ("Appliance", false),
        ("Log clock", false),
        ("Found by", false),
        ("Connection starts that agree", true),
        ("Log header offset", true),
    ]);
    let list: Vec<&crate::correlate::Clock> = if report.clocks.is_empty() {
        report.clock.iter().collect()
    } else {
        report.clocks.iter().collect()
    };
    for c in list {
        let how = match c.source {
            ClockSource::Auto => "lining up connection starts with New SMTP ICID lines".to_string(),
            ClockSource::Header => "the log header (no connection start lined up)".to_string(),
            ClockSource::LogTz => format!(
                "--log-tz {} and {:+.1} s skew found",
                c.zone.as_deref().unwrap_or("?"),
                c.skew_seconds.unwrap_or(0.0)
            ),
            ClockSource::Given => "--clock-offset".to_string(),
            ClockSource::None => "nothing lined up: taken as UTC".to_string(),
        };
        g.rows.push(vec![
            c.appliance.clone(),
            format!("UTC{} ({:+.1} s)", c.offset, c.offset_seconds),
            how,
            c.supporting_pairs.to_string(),
            c.header_offset_seconds
                .map(|h| format!("{h:+} s"))
                .unwrap_or_else(|| "—".into()),
        ]);
    }
    Some(g)
}

/// Counts by layer, by initiator and by log outcome (the last one only with a log).
pub fn counts(report: &Report) -> Vec<(&'static str, Grid)> {
    let s = &report.summary;
    let mut out = Vec::new();
    let mut layers = Grid::new(&[("Layer", false), ("Connections", true)]);
    for l in Layer::ALL {
        if let Some(n) = s.by_layer.get(l.as_str()) {
            layers.rows.push(vec![l.as_str().into(), n.to_string()]);
        }
    }
    for (k, n) in &s.by_layer {
        if !Layer::ALL.iter().any(|l| l.as_str() == k) {
            layers.rows.push(vec![k.clone(), n.to_string()]);
        }
    }
    out.push(("By layer", layers));
    let mut init = Grid::new(&[("Ended by", false), ("Connections", true)]);
    for (k, n) in &s.by_initiator {
        init.rows.push(vec![k.clone(), n.to_string()]);
    }
    out.push(("By initiator", init));
    let mut causes = Grid::new(&[("Cause", false), ("Connections", true)]);
    for (k, n) in &s.by_cause {
        causes.rows.push(vec![k.clone(), n.to_string()]);
    }
    out.push(("By cause", causes));
    if report.logs.is_some() {
        let mut outcomes = Grid::new(&[("Log outcome", false), ("Connections", true)]);
        for (k, n) in &s.by_log_outcome {
            outcomes.rows.push(vec![k.replace('_', " "), n.to_string()]);
        }
        out.push(("By log outcome", outcomes));
    }
    out
}

/// The remote IPs with the most aborted connections.
pub fn top_ips(report: &Report) -> Grid {
    let mut g = Grid::new(&[
        ("Remote IP", false),
        ("Aborted", true),
        ("Connections", true),
    ]);
    for (ip, a, n) in top_aborting_ips(&report.connections, 10) {
        g.rows.push(vec![ip, a.to_string(), n.to_string()]);
    }
    g
}

/// Key facts of the summary, one line each: (label, text).
pub fn facts(report: &Report) -> Vec<(&'static str, String)> {
    let s = &report.summary;
    let mut out = Vec::new();
    let mut conns = format!(
        "{} SMTP connection{}",
        s.connections,
        if s.connections == 1 { "" } else { "s" }
    );
    if let (Some(a), Some(b)) = (s.first_seen, s.last_seen) {
        let (da, db) = (a.to_datetime(), b.to_datetime());
        let end = if da.date_naive() == db.date_naive() {
            db.format("%H:%M:%S%.6f").to_string()
        } else {
            utc(b)
        };
        conns.push_str(&format!(
            ", {} – {end} UTC ({})",
            utc(a),
            duration(b.seconds_since(a))
        ));
    }
    if s.other_tcp_connections > 0 {
        conns.push_str(&format!(
            "; {} other TCP connection{} left out",
            s.other_tcp_connections,
            if s.other_tcp_connections == 1 {
                ""
            } else {
                "s"
            }
        ));
    }
    if let Some(f) = &s.folded_attempts {
        conns.push_str("; ");
        conns.push_str(&super::folded_attempts_text(f));
    }
    out.push(("Connections", conns));
    out.push((
        "Aborted",
        format!(
            "{} of {} ended without a clean QUIT (layer other than none)",
            s.aborted, s.connections
        ),
    ));
    let caps = &report.captures;
    let mut packets = format!(
        "{} records read, {} TCP packets",
        thousands(caps.records),
        thousands(caps.tcp_packets)
    );
    if caps.other_packets > 0 {
        packets.push_str(&format!(", {} other", thousands(caps.other_packets)));
    }
    if caps.truncated_packets > 0 {
        packets.push_str(&format!(
            ", {} cut by the snapshot length",
            thousands(caps.truncated_packets)
        ));
    }
    if let Some(f) = &caps.filter {
        packets.push_str(&format!("; filter: {f}"));
    }
    out.push(("Packets", packets));
    if report.logs.is_some() {
        out.push((
            "Wire and log",
            format!(
                "{} of {} connections matched to an ICID; {} disagree with the log; {} ICID{} of the capture's time span without a connection",
                s.matched,
                s.connections,
                s.disagreements,
                report.unmatched_icids.len(),
                if report.unmatched_icids.len() == 1 { "" } else { "s" }
            ),
        ));
    } else {
        out.push((
            "Wire and log",
            "no mail log given (--log): no ICIDs, no agreement check".into(),
        ));
    }
    out
}

/// Problems with the input: damaged files and the analysis' warnings.
pub fn problems(report: &Report) -> Vec<String> {
    let mut out: Vec<String> = report.problems.clone();
    for f in &report.captures.files {
        for n in &f.notes {
            out.push(format!("{}: {n}", f.name));
        }
        if let Some(d) = &f.damage {
            let line = format!(
                "{}: damaged at record {}, byte offset {}: {}; the results cover what came before",
                f.name, d.record, d.offset, d.message
            );
            if !out
                .iter()
                .any(|p| p.contains(&f.name) && p.contains(&d.message))
            {
                out.push(line);
            }
        }
    }
    out
}

/// The ICIDs of the log in the capture's time span that no connection matched.
pub fn unmatched(report: &Report) -> Grid {
    let mut g = Grid::new(&[
        ("ICID", true),
        ("Remote IP", false),
        ("Connect (UTC)", false),
        ("Log outcome", false),
        ("Why it may be missing", false),
    ]);
    for u in &report.unmatched_icids {
        g.rows.push(vec![
            u.icid.to_string(),
            u.remote_ip.clone().unwrap_or_else(|| "?".into()),
            opt_utc(u.connect),
            u.log_outcome.as_str().replace('_', " "),
            u.reason.clone(),
        ]);
    }
    g
}

/// The verdict table: one row per connection, in report order.
pub fn verdict_table(report: &Report) -> Grid {
    let with_log = report.logs.is_some();
    let mut cols: Vec<(&'static str, bool)> = vec![("#", true), ("Start (UTC)", false)];
    cols.extend([("Client", false), ("Server", false)]);
    if with_log {
        cols.extend([("ICID", false), ("Log", false)]);
    }
    cols.extend([
        ("Msgs", true),
        ("Ended by", false),
        ("Phase", false),
        ("Layer", false),
        ("Reason", false),
    ]);
    let mut g = Grid::new(&cols);
    let one_day = match (report.summary.first_seen, report.summary.last_seen) {
        (Some(a), Some(b)) => a.to_datetime().date_naive() == b.to_datetime().date_naive(),
        _ => true,
    };
    for c in &report.connections {
        let start = c.first_seen.to_datetime();
        let mut row = vec![
            c.id.to_string(),
            if one_day {
                start.format("%H:%M:%S%.3f").to_string()
            } else {
                start.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
            },
            c.client.clone(),
            c.server.clone(),
        ];
        if with_log {
            let icid = match (c.icid, c.mids.as_slice()) {
                (None, _) => "—".to_string(),
                (Some(i), []) => i.to_string(),
                (Some(i), [m]) => format!("{i} (MID {m})"),
                (Some(i), [m, rest @ ..]) => format!("{i} (MID {m} +{})", rest.len()),
            };
            let log = match &c.log_match {
                Some(m) => format!(
                    "{} {}",
                    c.log_outcome.as_deref().unwrap_or("?").replace('_', " "),
                    agreement_mark(m.agreement)
                ),
                None => "—".into(),
            };
            row.extend([icid, log]);
        }
        row.extend([
            messages(c),
            ended_by(c),
            c.verdict.phase.as_str().to_string(),
            c.verdict.layer.as_str().to_string(),
            reason(c),
        ]);
        g.rows.push(row);
    }
    g
}

/// One line of an evidence list: relative time, time of day, fact.
pub fn evidence(c: &ConnectionReport) -> Vec<(String, String, String)> {
    c.verdict
        .evidence
        .iter()
        .map(|e| match e.at {
            Some(t) => (
                rel(t.seconds_since(c.first_seen)),
                t.to_datetime().format("%H:%M:%S%.6f").to_string(),
                e.fact.clone(),
            ),
            None => ("—".into(), String::new(), e.fact.clone()),
        })
        .collect()
}

/// The TCP facts of each side worth a glance: packets, retransmissions, zero windows, bytes
/// missing from the capture, TTLs.
pub fn tcp_words(c: &ConnectionReport) -> String {
    let side = |name: &str, s: &crate::tcp::SideStats| {
        let mut t = format!(
            "{name} sent {} packets ({} payload bytes",
            thousands(s.packets),
            thousands(s.payload_bytes)
        );
        if s.retransmissions > 0 {
            t.push_str(&format!(", {} retransmitted", thousands(s.retransmissions)));
        }
        if s.zero_windows > 0 {
            t.push_str(&format!(", {} zero windows", thousands(s.zero_windows)));
        }
        if s.gap_bytes > 0 {
            t.push_str(&format!(", {} bytes not captured", thousands(s.gap_bytes)));
        }
        if s.snaplen_cut_bytes > 0 {
            t.push_str(&format!(
                ", {} bytes cut by the snapshot length",
                thousands(s.snaplen_cut_bytes)
            ));
        }
        match (s.ttl_min, s.ttl_max) {
            (Some(a), Some(b)) if a == b => t.push_str(&format!(", TTL {a}")),
            (Some(a), Some(b)) => t.push_str(&format!(", TTL {a}–{b}")),
            _ => {}
        }
        t.push(')');
        t
    };
    let mut out = format!(
        "{}; {}.",
        side("The client", &c.tcp.from_client),
        side("the server", &c.tcp.from_server)
    );
    if !c.tcp.handshake_seen {
        out.push_str(" The handshake is not in the capture.");
    }
    if c.smtp.session.events_dropped > 0 {
        out.push_str(&format!(
            " {} SMTP events in the middle of the session were not kept by the analysis.",
            thousands(c.smtp.session.events_dropped)
        ));
    }
    out
}

/// Groups the log lines of a match by file, in order: (file, lines).
pub fn log_lines_by_file(c: &ConnectionReport) -> Vec<(&str, Vec<&LogLine>)> {
    let mut out: Vec<(&str, Vec<&LogLine>)> = Vec::new();
    if let Some(m) = &c.log_match {
        for l in &m.log_lines {
            match out.last_mut() {
                Some((f, v)) if *f == l.file.as_str() => v.push(l),
                _ => out.push((l.file.as_str(), vec![l])),
            }
        }
    }
    out
}

/// Replaces control characters (but tab) with U+FFFD, so no text from the capture or the
/// log can move the cursor, end a line or hide in the output.
pub fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(|c| c != '\t' && c.is_control()) {
        s.chars()
            .map(|c| {
                if c != '\t' && c.is_control() {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_rows_grow_with_the_log_of_the_length() {
        assert_eq!(silence_rows(1.0), 1);
        assert_eq!(silence_rows(3.0), 1);
        assert_eq!(silence_rows(10.0), 2);
        assert_eq!(silence_rows(60.0), 4);
        assert_eq!(silence_rows(300.0), 5);
        assert_eq!(silence_rows(86_400.0), SILENCE_ROWS_MAX);
    }

    #[test]
    fn words() {
        assert_eq!(thousands(102_418), "102,418");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(rel(0.0), "+0.000 s");
        assert_eq!(rel(300.04), "+300.040 s");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(size(1_562), "1,562 bytes");
        assert_eq!(size(51_600), "50.4 KiB");
        assert_eq!(duration(3.158965), "3.159 s");
        assert_eq!(duration(302.0), "5 min 2 s");
        assert_eq!(elided_words(1), "… 1 event not shown …");
        assert_eq!(silence_words(300.0), "⋮ 300.0 s of silence ⋮");
    }
}
