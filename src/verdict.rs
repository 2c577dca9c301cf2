//! Stage: the verdict of one connection, from the wire alone.
//!
//! Contract: [`decide`] takes a connection's TCP facts and SMTP summary and returns its
//! [`Verdict`] — `layer`, `initiator`, `cause`, `phase` — with the timestamped [`Evidence`] that
//! decided it, following the rules of the design (docs/verdicts.md explains them for users). It
//! reads no logs and formats nothing; the correlation stage checks verdicts against the log.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::smtp::{DataKind, Phase, Reply, SessionSummary, SmtpAnomaly, Transaction};
use crate::tcp::{CloseEvent, TcpConnection};
use crate::types::{Side, Timestamp};

/// How the SMTP session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Nothing was aborted: every message started was finished and the client said QUIT.
    None,
    /// The client ended the session with QUIT (or RSET) while a message was open.
    Application,
    /// TCP FIN or RST without QUIT.
    Network,
    /// The server gave up waiting for the client.
    Timeout,
    /// The server ended the session for another reason.
    Server,
    /// The capture does not show how it ended.
    Unknown,
}

impl Layer {
    pub const ALL: [Layer; 6] = [
        Layer::None,
        Layer::Application,
        Layer::Network,
        Layer::Timeout,
        Layer::Server,
        Layer::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::None => "none",
            Layer::Application => "application",
            Layer::Network => "network",
            Layer::Timeout => "timeout",
            Layer::Server => "server",
            Layer::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who ended the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Initiator {
    Client,
    Server,
    Middlebox,
    None,
}

impl Initiator {
    pub fn as_str(self) -> &'static str {
        match self {
            Initiator::Client => "client",
            Initiator::Server => "server",
            Initiator::Middlebox => "middlebox",
            Initiator::None => "none",
        }
    }
}

impl From<Side> for Initiator {
    fn from(s: Side) -> Self {
        match s {
            Side::Client => Initiator::Client,
            Side::Server => Initiator::Server,
        }
    }
}

impl fmt::Display for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The machine-readable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// QUIT with nothing open.
    Quit,
    /// QUIT after MAIL FROM was accepted, before DATA.
    QuitBeforeData,
    /// QUIT after DATA began, before the final reply to the message.
    QuitDuringData,
    /// RSET abandoned an accepted MAIL FROM, then the session ended.
    RsetBeforeData,
    ClientFinNoQuit,
    ClientRst,
    FinDuringData,
    RstDuringData,
    IdleTimeout,
    ServerRejectClose,
    ServerClose,
    ServerRst,
    /// After STARTTLS: the side closed TLS properly (alert) and then TCP; QUIT is hidden.
    TlsClose,
    /// After STARTTLS: a FIN without a TLS alert; QUIT is hidden.
    TlsFin,
    /// An RST that the endpoint it claims to come from did not send (a firewall or IPS).
    ForgedRst,
    /// A FIN that the endpoint it claims to come from did not send.
    ForgedFin,
    /// The snapshot length cut the payload: the SMTP conversation is not in the capture.
    PayloadNotCaptured,
    CaptureEnded,
    /// The client's SYN got no answer at all: no TCP connection was made (nothing listening
    /// and dropping, a filter in the path, a scan, a SYN flood).
    SynUnanswered,
    /// The server answered the SYN with an RST: nothing listening, or a refusal below SMTP.
    ConnectionRefused,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Quit => "quit",
            Cause::QuitBeforeData => "quit_before_data",
            Cause::QuitDuringData => "quit_during_data",
            Cause::RsetBeforeData => "rset_before_data",
            Cause::ClientFinNoQuit => "client_fin_no_quit",
            Cause::ClientRst => "client_rst",
            Cause::FinDuringData => "fin_during_data",
            Cause::RstDuringData => "rst_during_data",
            Cause::IdleTimeout => "idle_timeout",
            Cause::ServerRejectClose => "server_reject_close",
            Cause::ServerClose => "server_close",
            Cause::ServerRst => "server_rst",
            Cause::TlsClose => "tls_close",
            Cause::TlsFin => "tls_fin",
            Cause::ForgedRst => "forged_rst",
            Cause::ForgedFin => "forged_fin",
            Cause::PayloadNotCaptured => "payload_not_captured",
            Cause::CaptureEnded => "capture_ended",
            Cause::SynUnanswered => "syn_unanswered",
            Cause::ConnectionRefused => "connection_refused",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One timestamped fact that the verdict rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub at: Option<Timestamp>,
    pub fact: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub layer: Layer,
    pub initiator: Initiator,
    pub cause: Cause,
    pub phase: Phase,
    /// One line for the table: what happened, in words.
    pub reason: String,
    pub evidence: Vec<Evidence>,
    /// What to check next, for the person reading the report.
    pub next_steps: String,
    /// Signs of a device in the path or of path trouble, whatever the verdict.
    pub findings: Vec<Finding>,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    ForgedRst,
    ForgedFin,
    RstRace,
    DataAfterRst,
    BannerMasked,
    EsmtpKeywordMasked,
    CommandMasked,
    CharPerSegment,
    MtuBlackHole,
    IcmpFragNeeded,
    DataStall,
    ZeroWindow,
    TlsAlertBeforeClose,
    TlsHandshakeFailed,
    /// Cut right after a client command line over RFC 5321's 512 octets, unanswered.
    LineLengthLimit,
    /// Cut right after the client's Nth RCPT, unanswered, the ones before it answered.
    RecipientLimit,
    /// Cut right after a header line over RFC 5322's 998 octets, or a header section far
    /// larger than ordinary mail's, before the final reply.
    HeaderLengthLimit,
    /// Cut right after a body line over RFC 5322's 998 octets, before the final reply.
    BodyLineLengthLimit,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::ForgedRst => "forged_rst",
            FindingKind::ForgedFin => "forged_fin",
            FindingKind::RstRace => "rst_race",
            FindingKind::DataAfterRst => "data_after_rst",
            FindingKind::BannerMasked => "banner_masked",
            FindingKind::EsmtpKeywordMasked => "esmtp_keyword_masked",
            FindingKind::CommandMasked => "command_masked",
            FindingKind::CharPerSegment => "char_per_segment",
            FindingKind::MtuBlackHole => "mtu_black_hole",
            FindingKind::IcmpFragNeeded => "icmp_frag_needed",
            FindingKind::DataStall => "data_stall",
            FindingKind::ZeroWindow => "zero_window",
            FindingKind::TlsAlertBeforeClose => "tls_alert_before_close",
            FindingKind::TlsHandshakeFailed => "tls_handshake_failed",
            FindingKind::LineLengthLimit => "line_length_limit",
            FindingKind::RecipientLimit => "recipient_limit",
            FindingKind::HeaderLengthLimit => "header_length_limit",
            FindingKind::BodyLineLengthLimit => "body_line_length_limit",
        }
    }

    /// A cut at a limit of an SMTP-inspecting device (what the client sent crossed it).
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            FindingKind::LineLengthLimit
                | FindingKind::RecipientLimit
                | FindingKind::HeaderLengthLimit
                | FindingKind::BodyLineLengthLimit
        )
    }
}

/// A sign, with its provenance, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The side the packets concerned claim to come from.
    pub side: Option<Side>,
    pub at: Option<Timestamp>,
    pub frame: Option<u64>,
    pub detail: String,
}

/// Silence (seconds) after which a server's unprompted close counts as an idle timeout.
const IDLE_SILENCE_SECS: f64 = 30.0;

/// Octets of a command line, CRLF included, that RFC 5321 (4.5.3.1.4) allows; a Cisco ASA's
/// default ESMTP policy drops the connection past it (`match cmd line length gt 512`).
const COMMAND_LINE_MAX: u64 = 512;
/// Octets of a header or body line, line end excluded, that RFC 5322 (2.1.1) allows (the ASA's
/// `match header line length gt 998`, `match body line length gt 998`).
const TEXT_LINE_MAX: u64 = 998;
/// A header section larger than this is past what ordinary mail carries (a few KB, even with
/// long Received and authentication chains). There is no standard limit, so a cut after a
/// smaller one is not blamed on a header-size rule.
const HEADER_SECTION_SUSPECT: u64 = 8 * 1024;
/// A device that enforces a limit acts on the packet that crosses it: the cut follows the
/// offending unit within a round trip. Seconds allowed between the two.
const LIMIT_CUT_SECS: f64 = 2.0;

/// How the TCP connection first ended.
#[derive(Debug, Clone, Copy)]
struct End {
    side: Side,
    rst: bool,
    ev: CloseEvent,
}

fn first_end(tcp: &TcpConnection) -> Option<End> {
    let fin = tcp.first_fin().map(|(side, ev)| End {
        side,
        rst: false,
        ev,
    });
    let rst = tcp.first_rst().map(|(side, ev)| End {
        side,
        rst: true,
        ev,
    });
    match (fin, rst) {
        (Some(f), Some(r)) => Some(if (r.ev.at, r.ev.frame) < (f.ev.at, f.ev.frame) {
            r
        } else {
            f
        }),
        (f, r) => f.or(r),
    }
}

fn describe_end(e: &End) -> String {
    format!(
        "{} {} (frame {}, TTL {}{})",
        e.side,
        if e.rst { "RST" } else { "FIN" },
        e.ev.frame.number,
        e.ev.ttl,
        e.ev.ip_id
            .map(|id| format!(", IP ID {id}"))
            .unwrap_or_default()
    )
}

/// A 421 whose text says the server timed out: the listener's idle timeout.
fn says_timed_out(r: &Reply) -> bool {
    r.code == Some(421) && {
        let t = r.text.to_ascii_lowercase();
        t.contains("timed out") || t.contains("timeout")
    }
}

fn reply_words(r: &Reply) -> String {
    match r.code {
        Some(c) => format!("{c} {}", r.text).trim_end().to_string(),
        None => format!("(no code) {}", r.text),
    }
}

/// The transaction that was open at the end, if any: MAIL FROM accepted, not abandoned, and no
/// final reply to its data (a message refused after its data is finished, not open).
fn open_transaction(smtp: &SessionSummary) -> Option<&Transaction> {
    smtp.transactions.last().filter(|t| {
        t.started()
            && t.ended_by.is_none()
            && t.data
                .as_ref()
                .is_none_or(|d| d.final_reply.is_none() && d.refused.is_none())
    })
}

fn transaction_phase(t: &Transaction) -> Phase {
    if t.data.is_some() {
        Phase::Data
    } else {
        Phase::Envelope
    }
}

/// The last time the client sent a command before `before`.
fn client_activity_before(smtp: &SessionSummary, before: Timestamp) -> Option<Timestamp> {
    let mut times: Vec<Timestamp> = Vec::new();
    times.extend(smtp.first_command.as_ref().map(|c| c.at));
    times.extend(smtp.last_command.as_ref().map(|c| c.at));
    for t in &smtp.transactions {
        times.push(t.mail_at);
        if let Some(d) = &t.data {
            times.push(d.command_at);
            times.extend(d.end_at);
        }
    }
    times.extend(smtp.client_last_at);
    times.into_iter().filter(|t| *t < before).max()
}

/// The last time the server said anything before `before`.
fn server_reply_before(smtp: &SessionSummary, before: Timestamp) -> Option<Timestamp> {
    let mut times: Vec<Timestamp> = Vec::new();
    times.extend(smtp.banner.as_ref().map(|r| r.at));
    times.extend(smtp.last_reply.as_ref().map(|r| r.at));
    for t in &smtp.transactions {
        times.extend(t.mail_reply.as_ref().map(|r| r.at));
        times.extend(
            t.rcpt_to
                .iter()
                .filter_map(|r| r.reply.as_ref().map(|r| r.at)),
        );
        if let Some(d) = &t.data {
            times.extend(d.go_ahead.as_ref().map(|r| r.at));
            times.extend(d.final_reply.as_ref().map(|r| r.at));
        }
    }
    times.into_iter().filter(|t| *t < before).max()
}

/// Facts about the SMTP conversation worth stating in any verdict.
fn smtp_evidence(smtp: &SessionSummary, ev: &mut Vec<Evidence>) {
    if let Some(b) = &smtp.banner {
        ev.push(Evidence {
            at: Some(b.at),
            fact: format!("server banner: {}", reply_words(b)),
        });
    }
    for (i, t) in smtp.transactions.iter().enumerate() {
        let mail = match &t.mail_reply {
            Some(r) => format!(
                "MAIL FROM:<{}> answered {}",
                t.mail_from,
                r.code.map_or("?".into(), |c| c.to_string())
            ),
            None => format!("MAIL FROM:<{}> (no reply seen)", t.mail_from),
        };
        let accepted = t
            .rcpt_to
            .iter()
            .filter(|r| {
                r.reply
                    .as_ref()
                    .and_then(|r| r.code)
                    .is_some_and(|c| c < 300)
            })
            .count();
        let mut fact = format!(
            "message {}: {mail}, {} RCPT ({accepted} accepted)",
            i + 1,
            t.rcpt_to.len()
        );
        if let Some(d) = &t.data {
            match &d.go_ahead {
                Some(r) => fact.push_str(&format!(
                    ", DATA answered {}",
                    r.code.map_or("?".into(), |c| c.to_string())
                )),
                None => fact.push_str(
                    &format!(", {:?} sent", d.kind)
                        .to_uppercase()
                        .replace("DATA SENT", "DATA sent"),
                ),
            }
            fact.push_str(&format!(", {} body bytes", d.bytes));
            match (&d.end_at, &d.final_reply) {
                (Some(_), Some(r)) => fact.push_str(&format!(", final reply {}", reply_words(r))),
                (Some(_), None) => fact.push_str(", end of data sent, no final reply"),
                (None, _) => fact.push_str(", end of data never sent"),
            }
        }
        if let Some(by) = &t.ended_by {
            fact.push_str(&format!(", abandoned by {by}"));
        }
        ev.push(Evidence {
            at: Some(t.mail_at),
            fact,
        });
    }
}

/// Decides the verdict of one connection.
pub fn decide(tcp: &TcpConnection, smtp: &SessionSummary) -> Verdict {
    let mut v = decide_unsorted(tcp, smtp);
    v.findings = findings(tcp, smtp);
    judge_middlebox(&mut v);
    v.next_steps = next_steps(v.cause).to_string();
    judge_limit(&mut v);
    // Evidence reads as a timeline; facts without a time (what is unknowable) come last.
    v.evidence.sort_by_key(|e| (e.at.is_none(), e.at));
    v
}

/// The verdict of a connection attempt: SYNs from the client, no payload either way, and no
/// SYN-ACK (or one the client never completed before an RST). None for anything else.
fn attempt(tcp: &TcpConnection, ev: &mut Vec<Evidence>) -> Option<Verdict> {
    let (c, s) = (&tcp.from_client, &tcp.from_server);
    if !tcp.never_accepted() {
        return None;
    }
    let span = tcp.last_seen.seconds_since(tcp.first_seen);
    ev.push(Evidence {
        at: c.syn_at,
        fact: format!(
            "client SYN{}: {} packet{} over {span:.1} s, no SYN-ACK",
            if c.packets > 1 { "s" } else { "" },
            c.packets,
            if c.packets == 1 { "" } else { "s" },
        ),
    });
    let (layer, initiator, cause, reason) = match s.first_rst {
        Some(rst) => {
            ev.push(Evidence {
                at: Some(rst.at),
                fact: format!("server RST (frame {}, TTL {})", rst.frame.number, rst.ttl),
            });
            (
                Layer::Server,
                Initiator::Server,
                Cause::ConnectionRefused,
                "connection refused: the SYN was answered with RST".to_string(),
            )
        }
        None => (
            Layer::Network,
            Initiator::None,
            Cause::SynUnanswered,
            "no TCP connection: the SYN was not answered".to_string(),
        ),
    };
    Some(Verdict {
        layer,
        initiator,
        cause,
        phase: Phase::Banner,
        reason,
        evidence: std::mem::take(ev),
        next_steps: String::new(),
        findings: Vec::new(),
    })
}

fn decide_unsorted(tcp: &TcpConnection, smtp: &SessionSummary) -> Verdict {
    let mut ev: Vec<Evidence> = Vec::new();
    smtp_evidence(smtp, &mut ev);
    let end = first_end(tcp);
    if let Some(e) = &end {
        ev.push(Evidence {
            at: Some(e.ev.at),
            fact: format!("first close: {}", describe_end(e)),
        });
    }
    let quit_at = smtp.quit.as_ref().map(|q| q.at);
    if let Some(q) = &smtp.quit {
        let reply = q
            .reply
            .as_ref()
            .map(|r| format!(", answered {}", reply_words(r)))
            .unwrap_or_default();
        ev.push(Evidence {
            at: Some(q.at),
            fact: format!("client sent QUIT{reply}"),
        });
    }

    // No handshake and no byte either way: a connection that never was.
    if let Some(v) = attempt(tcp, &mut ev) {
        return v;
    }

    // Without payload the conversation cannot be judged.
    let cut = tcp.from_client.snaplen_cut_bytes + tcp.from_server.snaplen_cut_bytes;
    if cut > 0 && smtp.commands == 0 && smtp.replies == 0 {
        ev.push(Evidence {
            at: None,
            fact: format!("{cut} payload bytes cut by the capture's snapshot length"),
        });
        let (initiator, reason) = match &end {
            Some(e) => (
                Initiator::from(e.side),
                format!(
                    "payload not captured (snaplen); {} closed first",
                    describe_end(e)
                ),
            ),
            None => (
                Initiator::None,
                "payload not captured (snaplen)".to_string(),
            ),
        };
        return Verdict {
            layer: Layer::Unknown,
            initiator,
            cause: Cause::PayloadNotCaptured,
            phase: smtp.phase,
            reason,
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    }

    // An unprompted 421 (or other reply) before the client closed: the server gave up waiting.
    let client_close_at = [
        tcp.from_client.first_fin.map(|e| e.at),
        tcp.from_client.first_rst.map(|e| e.at),
    ]
    .into_iter()
    .flatten()
    .min();
    // A 421 is the listener giving up; other unprompted replies (a 500 for each line of junk
    // the client sent) are not a timeout.
    if let Some(r) = smtp.unprompted_replies.iter().find(|r| {
        r.code == Some(421)
            && client_close_at.is_none_or(|c| r.at <= c)
            && quit_at.is_none_or(|q| r.at <= q)
    }) {
        let since = client_activity_before(smtp, r.at)
            .or(server_reply_before(smtp, r.at))
            .unwrap_or(tcp.first_seen);
        let silence = r.at.seconds_since(since);
        ev.push(Evidence {
            at: Some(r.at),
            fact: format!(
                "server sent {} unprompted after {silence:.1} s without a command from the client",
                reply_words(r)
            ),
        });
        let phase = open_transaction(smtp)
            .map(transaction_phase)
            .unwrap_or(phase_before_close(smtp));
        return Verdict {
            layer: Layer::Timeout,
            initiator: Initiator::Server,
            cause: Cause::IdleTimeout,
            phase,
            reason: format!(
                "server timed out after {silence:.0} s of client silence ({})",
                r.code.unwrap_or(421)
            ),
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    }

    // Inside TLS, QUIT and its 221 are invisible: a server closing first is the normal end.
    if smtp.tls.is_some() {
        return tls_end(smtp, end, ev);
    }

    // The server closed first, before any QUIT.
    if let Some(e) = end.filter(|e| e.side == Side::Server && quit_at.is_none_or(|q| e.ev.at < q)) {
        return server_end(tcp, smtp, e, ev);
    }

    // QUIT before the connection closed.
    if quit_at.is_some_and(|q| end.is_none_or(|e| q <= e.ev.at || e.side == Side::Server)) {
        if let Some(t) = smtp
            .transactions
            .iter()
            .rev()
            .find(|t| t.started() && !t.completed() && t.ended_by.is_some())
        {
            let rset = t.ended_by.as_deref() == Some("RSET");
            // The phase is where the session ended (QUIT); the cause says where the message was.
            let (cause, step) = match (rset, t.data.is_some()) {
                (true, _) => (Cause::RsetBeforeData, "before DATA"),
                (false, false) => (Cause::QuitBeforeData, "before DATA"),
                (false, true) => (Cause::QuitDuringData, "after DATA, before its final reply"),
            };
            let what = if rset { "RSET, then QUIT," } else { "QUIT" };
            let n = smtp.transactions.len();
            return Verdict {
                layer: Layer::Application,
                initiator: Initiator::Client,
                cause,
                phase: Phase::Quit,
                reason: format!("client sent {what} with message {n} open ({step})"),
                evidence: ev,
                next_steps: String::new(),
                findings: Vec::new(),
            };
        }
        let done = smtp.transactions.iter().filter(|t| t.completed()).count();
        let reason = if tcp.from_server.packets == 0 {
            let sent = smtp
                .transactions
                .iter()
                .filter(|t| t.data.as_ref().is_some_and(|d| d.end_at.is_some()))
                .count();
            format!("QUIT after {sent} message(s) sent; the server's side is not in the capture")
        } else {
            format!("clean QUIT after {done} message(s)")
        };
        return Verdict {
            layer: Layer::None,
            initiator: Initiator::Client,
            cause: Cause::Quit,
            phase: Phase::Quit,
            reason,
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    }

    let Some(e) = end else {
        if let Some(last) = [tcp.from_client.last_at, tcp.from_server.last_at]
            .into_iter()
            .flatten()
            .max()
        {
            ev.push(Evidence {
                at: Some(last),
                fact: "capture ends with the connection still open".into(),
            });
        }
        return Verdict {
            layer: Layer::Unknown,
            initiator: Initiator::None,
            cause: Cause::CaptureEnded,
            phase: smtp.phase,
            reason: format!(
                "still open when the capture ended ({})",
                smtp.phase.as_str()
            ),
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    };

    // The client (or something in its name) closed without QUIT.
    ev.push(Evidence {
        at: Some(e.ev.at),
        fact: "no QUIT before the close".into(),
    });
    let phase = phase_before_close(smtp);
    let in_data = phase == Phase::Data;
    let cause = match (e.rst, in_data) {
        (true, true) => Cause::RstDuringData,
        (true, false) => Cause::ClientRst,
        (false, true) => Cause::FinDuringData,
        (false, false) => Cause::ClientFinNoQuit,
    };
    let what = if e.rst { "RST" } else { "FIN" };
    let reason = match open_transaction(smtp) {
        Some(t) if in_data => {
            let bytes = t.data.as_ref().map_or(0, |d| d.bytes);
            format!("client {what} during DATA after {bytes} bytes, no QUIT")
        }
        Some(_) => format!("client {what} in the envelope, no QUIT"),
        None => format!("client {what} without QUIT ({})", phase.as_str()),
    };
    Verdict {
        layer: Layer::Network,
        initiator: Initiator::Client,
        cause,
        phase,
        reason,
        evidence: ev,
        next_steps: String::new(),
        findings: Vec::new(),
    }
}

/// The phase the session was in when it ended, QUIT aside.
fn phase_before_close(smtp: &SessionSummary) -> Phase {
    if smtp.phase == Phase::Quit {
        return open_transaction(smtp)
            .map(transaction_phase)
            .unwrap_or(Phase::Quit);
    }
    smtp.phase
}

fn server_end(
    tcp: &TcpConnection,
    smtp: &SessionSummary,
    e: End,
    mut ev: Vec<Evidence>,
) -> Verdict {
    // The client may have said QUIT after the server's close: the step is the one before it.
    let phase = match (smtp.phase, smtp.transactions.last()) {
        (Phase::Quit, Some(t)) if smtp.quit.as_ref().is_some_and(|q| q.at > e.ev.at) => {
            match &t.data {
                Some(d)
                    if d.final_reply
                        .as_ref()
                        .is_none_or(|r| r.at > e.ev.at || r.code.is_none()) =>
                {
                    Phase::Data
                }
                Some(_) => Phase::AfterData,
                None => Phase::Envelope,
            }
        }
        (Phase::Quit, None) if smtp.quit.as_ref().is_some_and(|q| q.at > e.ev.at) => {
            if smtp.banner.is_some() {
                Phase::Greeting
            } else {
                Phase::Banner
            }
        }
        _ => phase_before_close(smtp),
    };
    if e.rst {
        return Verdict {
            layer: Layer::Server,
            initiator: Initiator::Server,
            cause: Cause::ServerRst,
            phase,
            reason: format!("server RST ({})", phase.as_str()),
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    }
    // A 421 that says it timed out is the listener's idle timeout even where it seems to answer
    // a command (seen from the client's side, data the server never received looks answered).
    if let Some(r) = smtp
        .last_reply
        .as_ref()
        .filter(|r| r.at <= e.ev.at && says_timed_out(r))
    {
        let since = client_activity_before(smtp, r.at)
            .or(server_reply_before(smtp, r.at))
            .unwrap_or(tcp.first_seen);
        let silence = r.at.seconds_since(since);
        ev.push(Evidence {
            at: Some(r.at),
            fact: format!(
                "server sent {} ({silence:.1} s after the client's last command) and closed",
                reply_words(r)
            ),
        });
        return Verdict {
            layer: Layer::Timeout,
            initiator: Initiator::Server,
            cause: Cause::IdleTimeout,
            phase: if phase == Phase::AfterData {
                Phase::Data
            } else {
                phase
            },
            reason: format!("server timed out ({})", r.code.unwrap_or(421)),
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    }
    // A refusal (421 or 5xx) that answered the client's last command, then the close.
    if let Some(r) = smtp
        .last_reply
        .as_ref()
        .filter(|r| r.at <= e.ev.at && r.code.is_none_or(|c| c == 421 || c >= 500))
    {
        let what = match r.code {
            Some(c) => format!("server refused ({c}) and closed"),
            None => "server replied without a reply code and closed".to_string(),
        };
        ev.push(Evidence {
            at: Some(r.at),
            fact: format!("server replied {} and then closed", reply_words(r)),
        });
        return Verdict {
            layer: Layer::Server,
            initiator: Initiator::Server,
            cause: Cause::ServerRejectClose,
            phase,
            reason: what,
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    }
    // Closed while waiting for the client, after a long silence: an idle timeout without a 421.
    let since = client_activity_before(smtp, e.ev.at)
        .or(server_reply_before(smtp, e.ev.at))
        .unwrap_or(tcp.first_seen);
    let silence = e.ev.at.seconds_since(since);
    if smtp.unanswered == 0 && silence >= IDLE_SILENCE_SECS {
        ev.push(Evidence {
            at: Some(e.ev.at),
            fact: format!("server closed after {silence:.1} s without a command from the client"),
        });
        return Verdict {
            layer: Layer::Timeout,
            initiator: Initiator::Server,
            cause: Cause::IdleTimeout,
            phase,
            reason: format!("server closed after {silence:.0} s of client silence"),
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    }
    let reason = match &smtp.banner {
        None => "server closed before any banner".to_string(),
        Some(_) => format!("server closed ({})", phase.as_str()),
    };
    Verdict {
        layer: Layer::Server,
        initiator: Initiator::Server,
        cause: Cause::ServerClose,
        phase,
        reason,
        evidence: ev,
        next_steps: String::new(),
        findings: Vec::new(),
    }
}

fn tls_end(smtp: &SessionSummary, end: Option<End>, mut ev: Vec<Evidence>) -> Verdict {
    let tls = smtp.tls.clone().unwrap_or_default();
    ev.push(Evidence {
        at: smtp.starttls.as_ref().map(|c| c.at),
        fact: format!(
            "STARTTLS accepted; TLS records client/server: {}/{} application data, handshake {}",
            tls.client.application_data_records,
            tls.server.application_data_records,
            if tls.handshake_completed {
                "completed"
            } else {
                "not completed"
            }
        ),
    });
    let Some(e) = end else {
        return Verdict {
            layer: Layer::Unknown,
            initiator: Initiator::None,
            cause: Cause::CaptureEnded,
            phase: Phase::Tls,
            reason: "still open (encrypted) when the capture ended".into(),
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    };
    let dir = match e.side {
        Side::Client => &tls.client,
        Side::Server => &tls.server,
    };
    let alert_first = dir.first_alert_at.is_some_and(|a| a <= e.ev.at);
    if e.rst && !alert_first {
        ev.push(Evidence {
            at: Some(e.ev.at),
            fact: format!("{} RST without a TLS close alert", e.side),
        });
        let (layer, cause) = match e.side {
            Side::Client => (Layer::Network, Cause::ClientRst),
            Side::Server => (Layer::Server, Cause::ServerRst),
        };
        return Verdict {
            layer,
            initiator: e.side.into(),
            cause,
            phase: Phase::Tls,
            reason: format!("{} RST inside TLS, no TLS close", e.side),
            evidence: ev,
            next_steps: String::new(),
            findings: Vec::new(),
        };
    }
    ev.push(Evidence {
        at: None,
        fact: "QUIT and the message state are inside TLS: the mail log tells whether a message was open".into(),
    });
    let (cause, reason) = if alert_first {
        (
            Cause::TlsClose,
            format!("{} closed TLS (alert) then TCP; QUIT hidden by TLS", e.side),
        )
    } else {
        (
            Cause::TlsFin,
            format!("{} FIN without TLS close alert; QUIT hidden by TLS", e.side),
        )
    };
    Verdict {
        layer: Layer::Unknown,
        initiator: e.side.into(),
        cause,
        phase: Phase::Tls,
        reason,
        evidence: ev,
        next_steps: String::new(),
        findings: Vec::new(),
    }
}

/// What to check next after a verdict with this cause, in a support engineer's words.
pub fn next_steps(cause: Cause) -> &'static str {
    match cause {
        Cause::Quit => "Nothing to do: the session ended normally.",
        Cause::QuitBeforeData | Cause::QuitDuringData | Cause::RsetBeforeData => {
            "The sender gave the message up itself: check the sending server's logs (a policy or size \
             check on its side, a recipient it would not send to, a client that quits early)."
        }
        Cause::ClientFinNoQuit | Cause::ClientRst => {
            "Ask the sender's administrator why it closed the connection, and check any firewall or \
             SMTP-aware device in the path (SMTP inspection, connection limits): compare the TTL of the \
             FIN/RST with the client's other packets."
        }
        Cause::FinDuringData | Cause::RstDuringData => {
            "The message was cut off while it was being sent: look for a firewall or proxy in the path \
             with a message-size limit, SMTP inspection or an idle timer, and at the sender's logs."
        }
        Cause::IdleTimeout => {
            "The client went silent for longer than the listener's timeout: check the client side (slow \
             content scanning, a stalled DATA, zero windows or retransmissions in the capture, a path \
             MTU problem), or whether the timeout is too short for this sender."
        }
        Cause::ServerRejectClose => {
            "The appliance refused and closed: its reply says why (HAT policy, rate limit, size); check \
             the listener's policies for this sender."
        }
        Cause::ServerClose => {
            "The appliance closed without a reply that explains it: check its system logs around this time."
        }
        Cause::ServerRst => {
            "The appliance, or something in front of it, reset the connection: compare the RST's TTL \
             with the server's other packets and check the appliance's system logs."
        }
        Cause::TlsClose | Cause::TlsFin => {
            "The session was encrypted: give the mail log (--log) to see whether a message was open."
        }
        Cause::ForgedRst | Cause::ForgedFin => {
            "Something in the path ended the connection in an endpoint's name: look for a firewall, \
             IPS or SMTP-inspecting device between the sender and the appliance (its TTL distance is \
             in the evidence) and at its logs for this connection; its SMTP inspection or idle timer \
             is the usual cause."
        }
        Cause::PayloadNotCaptured => {
            "Capture again with whole packets (tcpdump -s 0) to see the SMTP conversation."
        }
        Cause::SynUnanswered => {
            "The appliance never answered: check that it listens on this address and port and \
             that nothing in front of it drops SYNs (a firewall rule, a rate limit). Many of them \
             from many addresses are a scan or a SYN flood."
        }
        Cause::ConnectionRefused => {
            "The appliance (or a device in front of it) refused the connection: check the \
             listener is enabled on this address and port, and any connection limit in front."
        }
        Cause::CaptureEnded => {
            "The capture stopped before the connection ended: capture for longer (the idle timeout is \
             five minutes by default)."
        }
    }
}

/// Whether `close` (an RST or FIN of `side`) is one the endpoint itself did not send, and why.
fn forged(
    tcp: &TcpConnection,
    smtp: &SessionSummary,
    side: Side,
    close: &CloseEvent,
    rst: bool,
) -> Option<String> {
    let stats = tcp.side(side);
    // After QUIT and its reply, or once both sides closed, an RST is ordinary socket teardown.
    let quit_done = smtp.quit.as_ref().is_some_and(|q| q.at <= close.at);
    let both_closed = [tcp.from_client.first_fin, tcp.from_server.first_fin]
        .iter()
        .all(|f| f.is_some_and(|f| f.at < close.at));
    if rst && (quit_done || both_closed) {
        return None;
    }
    let mut why: Vec<String> = Vec::new();
    if let (Some(lo), Some(hi)) = (stats.ttl_plain_min, stats.ttl_plain_max) {
        if close.ttl < lo || close.ttl > hi {
            let range = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            };
            why.push(format!(
                "TTL {} where the {side}'s own packets arrive with {range}",
                close.ttl
            ));
        }
    }
    if rst && stats.packets_after_rst > 0 {
        why.push(format!(
            "the {side} went on sending after it ({} packets, {} payload bytes): it did not know of the reset",
            stats.packets_after_rst, stats.payload_after_rst
        ));
    }
    if why.is_empty() {
        return None;
    }
    // The IP ID only supports what the TTL or the traffic already says (stacks differ).
    if let (Some(id), Some(before)) = (close.ip_id, stats.ip_id_before_rst) {
        let d = id.wrapping_sub(before).min(before.wrapping_sub(id));
        if rst && d > 1024 {
            why.push(format!(
                "IP ID {id} far from the {side}'s previous {before}"
            ));
        }
    }
    Some(why.join("; "))
}

/// Signs of a device in the path or of path trouble.
fn findings(tcp: &TcpConnection, smtp: &SessionSummary) -> Vec<Finding> {
    let mut f = Vec::new();
    let mut add = |kind, side, at, frame, detail: String| {
        f.push(Finding {
            kind,
            side,
            at,
            frame,
            detail,
        })
    };
    for side in [Side::Client, Side::Server] {
        let st = tcp.side(side);
        if let Some(r) = &st.first_rst {
            if let Some(why) = forged(tcp, smtp, side, r, true) {
                add(
                    FindingKind::ForgedRst,
                    Some(side),
                    Some(r.at),
                    Some(r.frame.number),
                    format!("RST in the {side}'s name: {why}"),
                );
            }
            if st.packets_after_rst > 0 {
                add(
                    FindingKind::DataAfterRst,
                    Some(side),
                    Some(r.at),
                    Some(r.frame.number),
                    format!(
                        "{} packets from the {side} after its RST",
                        st.packets_after_rst
                    ),
                );
            }
        }
        if let Some(fin) = &st.first_fin {
            if let Some(why) = forged(tcp, smtp, side, fin, false) {
                add(
                    FindingKind::ForgedFin,
                    Some(side),
                    Some(fin.at),
                    Some(fin.frame.number),
                    format!("FIN in the {side}'s name: {why}"),
                );
            }
        }
        if st.rst_seqs.len() >= 2 {
            add(
                FindingKind::RstRace,
                Some(side),
                st.first_rst.map(|r| r.at),
                st.first_rst.map(|r| r.frame.number),
                format!(
                    "{} RSTs from the {side} with different sequence numbers",
                    st.rst_seqs.len()
                ),
            );
        }
        if st.icmp_too_big > 0 {
            add(
                FindingKind::IcmpFragNeeded,
                Some(side),
                st.icmp_first.map(|(t, _)| t),
                st.icmp_first.map(|(_, f)| f.number),
                format!(
                    "{} ICMP \"fragmentation needed\" / \"packet too big\" about the {side}'s packets{}",
                    st.icmp_too_big,
                    st.icmp_mtu
                        .map(|m| format!(" (next-hop MTU {m})"))
                        .unwrap_or_default()
                ),
            );
        }
        if st.largest_segment >= 1000
            && st.largest_segment_retransmissions >= 3
            && st.icmp_too_big == 0
        {
            add(
                FindingKind::MtuBlackHole,
                Some(side),
                None,
                None,
                format!(
                    "{}-byte segments from the {side} retransmitted {} times and no ICMP \"fragmentation needed\" seen: full-size packets do not get through (path MTU black hole)",
                    st.largest_segment, st.largest_segment_retransmissions
                ),
            );
        }
        if st.zero_windows > 0 {
            add(
                FindingKind::ZeroWindow,
                Some(side),
                None,
                None,
                format!(
                    "the {side} advertised a zero window {} times",
                    st.zero_windows
                ),
            );
        }
    }
    // The client stopped in the middle of the message data and the server gave up later (the
    // end of the data, if it shows at all, comes only after the server's end: it was lost).
    let last_data = smtp.transactions.last().and_then(|t| t.data.as_ref());
    // Seen from the client, the server's idle-timeout 421 takes the place of the final reply:
    // the client had sent everything, the server says it waited in vain, so it never got it.
    let timed_out_reply = last_data
        .and_then(|d| d.final_reply.as_ref())
        .filter(|r| says_timed_out(r))
        .map(|r| r.at);
    let server_end = [
        tcp.from_server.first_fin.map(|e| e.at),
        tcp.from_server.first_rst.map(|e| e.at),
        timed_out_reply,
    ]
    .into_iter()
    .flatten()
    .chain(smtp.unprompted_replies.iter().map(|r| r.at))
    .min();
    if let (Some(d), Some(end)) = (last_data, server_end) {
        // Only data the server was taking (a 354, or BDAT), not a refused DATA.
        let accepted = d.refused.is_none()
            && (d.kind == DataKind::Bdat
                || d.go_ahead.as_ref().is_some_and(|r| r.code == Some(354)));
        let stalled = accepted
            && (timed_out_reply.is_some()
                || (d.end_at.is_none_or(|e| e >= end)
                    && d.final_reply.as_ref().is_none_or(|r| r.at >= end)));
        // Progress is new data: on the client's side retransmissions go on to the end, so the
        // stall starts at the last new byte there.
        let last = if timed_out_reply.is_some() {
            smtp.client_last_at
        } else {
            tcp.from_client.last_payload_at
        }
        .filter(|t| *t < end)
        .or(Some(d.command_at));
        if let (true, Some(last)) = (stalled, last) {
            let silence = end.seconds_since(last);
            if silence >= 2.0 {
                let sent = if timed_out_reply.is_some() && d.end_at.is_some() {
                    format!(
                        "all {} body bytes and the end of data sent, yet the server's 421 says it timed out waiting: they did not get through",
                        d.bytes
                    )
                } else {
                    format!("{} body bytes by then", d.bytes)
                };
                add(
                    FindingKind::DataStall,
                    Some(Side::Client),
                    Some(last),
                    None,
                    format!(
                        "the message data stalled {silence:.1} s before the server gave up ({sent}; client retransmissions: {}; server zero windows: {})",
                        tcp.from_client.retransmissions, tcp.from_server.zero_windows
                    ),
                );
            }
        }
    }
    if let Some(l) = limit_cut(tcp, smtp) {
        add(
            l.kind,
            Some(Side::Client),
            Some(l.cut_at),
            Some(l.cut_frame),
            l.detail,
        );
    }
    if tcp.from_client.one_byte_segments >= 5 {
        add(
            FindingKind::CharPerSegment,
            Some(Side::Client),
            None,
            None,
            format!(
                "{} one-byte segments from the client (typed, or split by a device in the path)",
                tcp.from_client.one_byte_segments
            ),
        );
    }
    if let Some(b) = &smtp.banner {
        if b.text.trim_start().starts_with("***")
            && b.text.trim().chars().all(|c| c == '*' || c == ' ')
        {
            add(
                FindingKind::BannerMasked,
                Some(Side::Server),
                Some(b.at),
                None,
                format!("banner masked with asterisks: {}", reply_words(b)),
            );
        }
    }
    for a in &smtp.anomalies {
        match a {
            SmtpAnomaly::MaskedReplyLine { at, text } => add(
                FindingKind::EsmtpKeywordMasked,
                Some(Side::Server),
                Some(*at),
                None,
                format!(
                    "reply line X'd out: {text} (an SMTP-inspecting firewall hiding an extension)"
                ),
            ),
            SmtpAnomaly::MaskedCommand { at, len } => add(
                FindingKind::CommandMasked,
                Some(Side::Client),
                Some(*at),
                None,
                format!("a {len}-character client command X'd out (replaced by a firewall)"),
            ),
            _ => {}
        }
    }
    if let Some(tls) = &smtp.tls {
        for (side, dir) in [(Side::Client, &tls.client), (Side::Server, &tls.server)] {
            let close = [
                tcp.side(side).first_fin.map(|e| e.at),
                tcp.side(side).first_rst.map(|e| e.at),
            ]
            .into_iter()
            .flatten()
            .min();
            if let (Some(alert), Some(close)) = (dir.first_alert_at, close) {
                if alert <= close {
                    add(
                        FindingKind::TlsAlertBeforeClose,
                        Some(side),
                        Some(alert),
                        None,
                        format!(
                            "the {side} sent a TLS alert before closing (a graceful TLS close)"
                        ),
                    );
                }
            }
        }
        if !tls.handshake_completed && (tls.client.alert_records + tls.server.alert_records) > 0 {
            add(
                FindingKind::TlsHandshakeFailed,
                None,
                None,
                None,
                "the TLS handshake did not complete and an alert was sent".into(),
            );
        }
    }
    f
}

/// A connection cut at a limit of an SMTP-inspecting device.
struct LimitCut {
    kind: FindingKind,
    cut_at: Timestamp,
    cut_frame: u64,
    detail: String,
}

/// `n` with thousands separators (`2,049`): octet counts are read, not parsed.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A short delay in words: milliseconds below a second.
fn delay_words(secs: f64) -> String {
    if secs < 0.01 {
        format!("{:.1} ms", secs * 1000.0)
    } else if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else {
        format!("{secs:.2} s")
    }
}

/// Whether the connection was cut, by something other than the client itself, right after the
/// client sent a unit over one of the limits an SMTP-inspecting firewall enforces, before the
/// server answered it; which limit, with the numbers.
///
/// The cut is the connection's first RST or FIN, before any QUIT (after QUIT and 221 a close is
/// the normal end). It must come from the server's side or be forged in the client's name: a
/// client that closes after its own long line is not cut by a limit. Only what the capture shows
/// of the unit counts, so a device that dropped the whole packet leaves nothing to see on the
/// appliance's side; the client's capture shows it.
fn limit_cut(tcp: &TcpConnection, smtp: &SessionSummary) -> Option<LimitCut> {
    let e = first_end(tcp)?;
    if smtp.quit.as_ref().is_some_and(|q| q.at <= e.ev.at) {
        return None;
    }
    let is_forged = forged(tcp, smtp, e.side, &e.ev, e.rst).is_some();
    if e.side == Side::Client && !is_forged {
        return None;
    }
    let cut = e.ev.at;
    let how = format!(
        "{} {} {}",
        if e.rst { "RST" } else { "FIN" },
        if is_forged { "in the" } else { "from the" },
        if is_forged {
            format!("{}'s name", e.side)
        } else {
            e.side.to_string()
        }
    );
    // The offending unit was sent at `at`, and the cut followed it at once.
    let soon = |at: Option<Timestamp>| {
        at.filter(|a| *a <= cut && cut.seconds_since(*a) <= LIMIT_CUT_SECS)
            .map(|a| delay_words(cut.seconds_since(a)))
    };
    let found = |kind, detail: String| {
        Some(LimitCut {
            kind,
            cut_at: cut,
            cut_frame: e.ev.frame.number,
            detail,
        })
    };
    let cl = &smtp.command_lines;
    let unanswered = |c: &crate::smtp::Command| c.reply.as_ref().is_none_or(|r| r.at > cut);

    // A command line under way: the rest of it never came.
    if cl.open_octets > COMMAND_LINE_MAX
        && let Some(after) = soon(cl.open_at)
    {
        let others = cl.longest_earlier_octets.max(cl.last_octets);
        return found(
            FindingKind::LineLengthLimit,
            format!(
                "{how} {after} after the client's command line had reached {} octets without its line end (RFC 5321 allows 512 with the CRLF); its other command lines were at most {} octets",
                thousands(cl.open_octets),
                thousands(others)
            ),
        );
    }
    if let Some(last) = smtp.last_command.as_ref().filter(|c| unanswered(c))
        && let Some(after) = soon(Some(last.at))
    {
        if cl.last_octets > COMMAND_LINE_MAX {
            return found(
                FindingKind::LineLengthLimit,
                format!(
                    "{how} {after} after the client's {}-octet {} line, unanswered (RFC 5321 allows 512 with the CRLF); its other command lines were at most {} octets",
                    thousands(cl.last_octets),
                    last.verb,
                    thousands(cl.longest_earlier_octets)
                ),
            );
        }
        // The last RCPT of several, the ones before it answered: a recipient count limit.
        if last.verb == "RCPT"
            && let Some(t) = smtp.transactions.last()
            && t.rcpt_dropped == 0
            && let Some((newest, earlier)) = t.rcpt_to.split_last()
            && !earlier.is_empty()
            && newest.reply.as_ref().is_none_or(|r| r.at > cut)
            && earlier
                .iter()
                .all(|r| r.reply.as_ref().is_some_and(|r| r.at <= cut))
        {
            return found(
                FindingKind::RecipientLimit,
                format!(
                    "{how} {after} after the client's RCPT number {}, unanswered, where the {} before it were answered",
                    t.rcpt_to.len(),
                    earlier.len()
                ),
            );
        }
    }

    // Message data the server was taking, not yet answered.
    let d = smtp.transactions.last()?.data.as_ref()?;
    let taking = d.kind == DataKind::Data
        && d.refused.is_none()
        && d.go_ahead.as_ref().is_some_and(|r| r.code == Some(354))
        && d.final_reply.as_ref().is_none_or(|r| r.at > cut);
    if !taking {
        return None;
    }
    let z = &d.lines;
    let last_bytes = smtp.client_last_at;
    if !z.header_ended
        && z.open_line > TEXT_LINE_MAX
        && let Some(after) = soon(last_bytes)
    {
        return found(
            FindingKind::HeaderLengthLimit,
            format!(
                "{how} {after} after a header line of the message had reached {} octets without its line end (RFC 5322 allows 998), {} octets into the header section; the final reply never came",
                thousands(z.open_line),
                thousands(z.header_octets + z.open_line)
            ),
        );
    }
    if z.longest_header_line > TEXT_LINE_MAX
        && let Some(after) = soon(z.longest_header_line_at)
    {
        return found(
            FindingKind::HeaderLengthLimit,
            format!(
                "{how} {after} after a {}-octet header line (RFC 5322 allows 998), before the final reply",
                thousands(z.longest_header_line)
            ),
        );
    }
    let section = z.header_octets + if z.header_ended { 0 } else { z.open_line };
    let section_at = if z.header_ended {
        z.header_ended_at
    } else {
        last_bytes
    };
    if section > HEADER_SECTION_SUSPECT
        && let Some(after) = soon(section_at)
    {
        let state = if z.header_ended {
            "a header section of"
        } else {
            "the header section, still without its empty line, had reached"
        };
        return found(
            FindingKind::HeaderLengthLimit,
            format!(
                "{how} {after} after {state} {} octets (ordinary mail carries a few KB), before the final reply; its longest header line was {} octets",
                thousands(section),
                thousands(z.longest_header_line)
            ),
        );
    }
    if z.header_ended {
        if z.open_line > TEXT_LINE_MAX
            && let Some(after) = soon(last_bytes)
        {
            return found(
                FindingKind::BodyLineLengthLimit,
                format!(
                    "{how} {after} after a body line of the message had reached {} octets without its line end (RFC 5322 allows 998); the final reply never came",
                    thousands(z.open_line)
                ),
            );
        }
        if z.longest_body_line > TEXT_LINE_MAX
            && let Some(after) = soon(z.longest_body_line_at)
        {
            return found(
                FindingKind::BodyLineLengthLimit,
                format!(
                    "{how} {after} after a {}-octet body line (RFC 5322 allows 998), before the final reply",
                    thousands(z.longest_body_line)
                ),
            );
        }
    }
    None
}

/// What to check after a cut at a limit, by the limit.
fn limit_next_steps(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::LineLengthLimit => {
            "The connection was cut right after a command line longer than RFC 5321's 512 octets: check the \
             firewall or SMTP-inspecting device between the sender and the appliance, its ESMTP inspection \
             policy map (Cisco ASA: `policy-map type inspect esmtp`, `match cmd line length gt 512` with \
             `drop-connection` or `reset`) and its log for this connection; the sender's over-long line \
             (often a very long address or EHLO name) breaks the RFC too."
        }
        FindingKind::RecipientLimit => {
            "The connection was cut right after one more recipient than the ones answered: check the \
             firewall or SMTP-inspecting device between the sender and the appliance, its ESMTP inspection \
             policy map (Cisco ASA: `match cmd RCPT count gt N`, 100 by default) and its log for this \
             connection; raise the limit, or have the sender split its recipients across messages."
        }
        FindingKind::HeaderLengthLimit => {
            "The connection was cut while the message's header section went through, right after a header \
             line or section over the limit: check the firewall or SMTP-inspecting device between the sender \
             and the appliance, its ESMTP inspection policy map (Cisco ASA: `match header line length gt \
             998`, `match header length gt N`) and its log for this connection."
        }
        FindingKind::BodyLineLengthLimit => {
            "The connection was cut right after a body line longer than RFC 5322's 998 octets: check the \
             firewall or SMTP-inspecting device between the sender and the appliance, its ESMTP inspection \
             policy map (Cisco ASA: `match body line length gt 998`) and its log for this connection; the \
             sender should encode long lines (quoted-printable or base64)."
        }
        _ => "",
    }
}

/// A cut at a limit explains the end: it goes into the evidence, the reason and what to check.
/// Who is blamed stays with the packets (a forged close makes it the middlebox).
fn judge_limit(v: &mut Verdict) {
    let Some(f) = v.findings.iter().find(|f| f.kind.is_limit()) else {
        return;
    };
    v.evidence.push(Evidence {
        at: f.at,
        fact: f.detail.clone(),
    });
    let limit = match f.kind {
        FindingKind::LineLengthLimit => "a command line over 512 octets",
        FindingKind::RecipientLimit => "one RCPT too many",
        FindingKind::HeaderLengthLimit => "a header over the limit",
        _ => "a body line over 998 octets",
    };
    v.reason = format!("{}; cut right after {limit}", v.reason);
    v.next_steps = limit_next_steps(f.kind).to_string();
}

/// Hands the end to a middlebox when the RST or FIN that ended the session was forged.
fn judge_middlebox(v: &mut Verdict) {
    let by_rst = matches!(
        v.cause,
        Cause::ClientRst | Cause::RstDuringData | Cause::ServerRst
    );
    let by_fin = matches!(
        v.cause,
        Cause::ClientFinNoQuit | Cause::FinDuringData | Cause::ServerClose | Cause::TlsFin
    );
    let kind = match (by_rst, by_fin) {
        (true, _) => FindingKind::ForgedRst,
        (_, true) => FindingKind::ForgedFin,
        _ => return,
    };
    let side = match v.initiator {
        Initiator::Client => Side::Client,
        Initiator::Server => Side::Server,
        _ => return,
    };
    let Some(f) = v
        .findings
        .iter()
        .find(|f| f.kind == kind && f.side == Some(side))
    else {
        return;
    };
    v.evidence.push(Evidence {
        at: f.at,
        fact: f.detail.clone(),
    });
    v.reason = format!("a device in the path ended it: {} ({})", f.detail, v.reason);
    v.layer = Layer::Network;
    v.initiator = Initiator::Middlebox;
    v.cause = if kind == FindingKind::ForgedRst {
        Cause::ForgedRst
    } else {
        Cause::ForgedFin
    };
}
