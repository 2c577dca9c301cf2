//! The report model: what an analysis found, ready to print in any format.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::CaptureSummary;
use crate::correlate::{Agreement, Clock, Confidence, FilledIn, UnmatchedIcid};
use crate::maillog::LogSummary;
use crate::maillog::excerpt::LogLine;
use crate::smtp::{Phase, SessionSummary};
use crate::tcp::TcpConnection;
use crate::types::{Side, Timestamp};
use crate::verdict::Verdict;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: ToolInfo,
    /// Clock alignment between capture and mail log; null without a log.
    pub clock: Option<Clock>,
    /// With logs of several appliances, each one's clock (`clock` is the best supported).
    pub clocks: Vec<Clock>,
    pub connections: Vec<ConnectionReport>,
    /// ICIDs of the log, in the capture's time span, that no connection matched; empty
    /// without a log.
    pub unmatched_icids: Vec<UnmatchedIcid>,
    pub summary: Summary,
    pub captures: CaptureSummary,
    /// What was read from the mail logs; null without a log.
    pub logs: Option<LogSummary>,
    /// Problems with the input that did not stop the analysis (damaged files, ...).
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub version: &'static str,
}

impl Default for ToolInfo {
    fn default() -> Self {
        ToolInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// The first FIN or RST of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CloseFact {
    pub side: Side,
    pub at: Timestamp,
    pub frame: u64,
    pub ttl: u8,
    pub ip_id: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Close {
    pub first_fin: Option<CloseFact>,
    pub first_rst: Option<CloseFact>,
}

/// The SMTP facts a verdict is drawn from (stable field names), plus the full session detail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpFacts {
    /// The client sent QUIT.
    pub quit: bool,
    /// The client sent STARTTLS (whatever the reply).
    pub starttls: bool,
    /// Transactions started: MAIL FROM commands sent, accepted or not.
    pub transactions: u32,
    /// Transactions whose message data got a 2xx final reply.
    pub completed: u32,
    pub banner: Option<u16>,
    pub phase: Phase,
    pub session: SessionSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionReport {
    /// 1-based position in the report (by first packet time).
    pub id: u32,
    /// `ip:port`, IPv6 as `[addr]:port`.
    pub client: String,
    pub server: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub duration_seconds: f64,
    pub icid: Option<u64>,
    pub mids: Vec<u64>,
    /// The log's outcome for the ICID: `delivered`, `aborted`, `aborted_by_sender`, `timeout`,
    /// `rejected`, `no_message`, `lost`, `incomplete`, `open`.
    pub log_outcome: Option<String>,
    pub verdict: Verdict,
    /// How the connection was matched to its ICID; null without a log or without a match.
    #[serde(rename = "match")]
    pub log_match: Option<LogMatch>,
    pub close: Close,
    pub smtp: SmtpFacts,
    pub tcp: TcpConnection,
    /// A Wireshark display filter that isolates this connection.
    pub wireshark_filter: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub connections: u32,
    pub by_layer: BTreeMap<String, u32>,
    pub by_initiator: BTreeMap<String, u32>,
    pub by_cause: BTreeMap<String, u32>,
    /// Connections that ended without a clean QUIT (every layer but `none`).
    pub aborted: u32,
    /// TCP connections that were not SMTP (left out of the table).
    pub other_tcp_connections: u32,
    /// Connection attempts past the first [`LISTED_ATTEMPTS`] (no payload either way, and no
    /// handshake or a reset: a scan or a SYN flood), counted here instead of listed one by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded_attempts: Option<FoldedAttempts>,
    /// Packets of closed connections that came minutes after the close (an endpoint that never
    /// saw the close retransmitting, RSTs answering it): counted, not analysed.
    pub late_packets: u64,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    /// With a log: connections matched to an ICID, and how many of them disagree with it.
    pub matched: u32,
    pub disagreements: u32,
    pub by_log_outcome: BTreeMap<String, u32>,
    /// Connections with each kind of finding (signs of a device in the path, path trouble).
    pub by_finding: BTreeMap<String, u32>,
    /// Present when `--client`, `--server`, `--since`, `--until`, `--only` or `--sort` chose
    /// what is shown: the criteria, and how many connections of how many are shown. The
    /// counts above always describe every connection that was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<super::select::SelectionSummary>,
}

/// Connection attempts listed one by one; past this many they are only counted
/// ([`Summary::folded_attempts`]), so that a flood of SYNs cannot grow the report without bound.
pub const LISTED_ATTEMPTS: usize = 1000;

/// Connection attempts that were counted, not listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FoldedAttempts {
    pub count: u64,
    /// Neither a SYN-ACK nor an RST came back.
    pub unanswered: u64,
    /// The server answered with an RST (nothing listening, or refused).
    pub refused: u64,
    /// Client addresses among them; counted up to `clients_cap`, past which the figure is a
    /// lower bound.
    pub clients: u64,
    pub clients_cap: u64,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
}

/// How a connection was lined up with its ICID, and whether wire and log agree.
#[derive(Debug, Clone, Serialize)]
pub struct LogMatch {
    pub appliance: String,
    pub confidence: Confidence,
    pub start_delta_seconds: f64,
    pub close_delta_seconds: Option<f64>,
    pub envelope_agrees: Option<bool>,
    pub agreement: Agreement,
    pub agreement_reason: Option<String>,
    /// Where TLS hid the end from the wire: the verdict the log's outcome gives.
    pub filled_in: Option<FilledIn>,
    /// The log lines of the ICID and its MIDs, when asked for (reports for a support case).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_lines: Vec<LogLine>,
}
