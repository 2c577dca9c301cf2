//! The report model: what an analysis found, ready to print in any format.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::CaptureSummary;
use crate::smtp::{Phase, SessionSummary};
use crate::tcp::TcpConnection;
use crate::types::{Side, Timestamp};
use crate::verdict::Verdict;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: ToolInfo,
    /// Clock alignment between capture and mail log; null without a log.
    pub clock: Option<Clock>,
    pub connections: Vec<ConnectionReport>,
    /// ICIDs of the log with no connection in the capture; empty without a log.
    pub unmatched_icids: Vec<u64>,
    pub summary: Summary,
    pub captures: CaptureSummary,
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
        ToolInfo { name: env!("CARGO_PKG_NAME"), version: env!("CARGO_PKG_VERSION") }
    }
}

/// The offset found between the log's clock and the capture's.
#[derive(Debug, Clone, Serialize)]
pub struct Clock {
    /// Seconds to add to a log time to get UTC.
    pub offset_seconds: i64,
    pub source: String,
    pub supporting_pairs: u32,
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
    pub log_outcome: Option<String>,
    pub verdict: Verdict,
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
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
}
