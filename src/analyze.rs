//! Wiring of the stages for `icidtrace analyze`: capture → tcp → smtp → verdict → report.
//!
//! Contract: [`analyze`] reads the captures once, streaming, and returns the [`Report`]. It
//! holds no protocol rules of its own: it decides only which TCP connections are SMTP (by port,
//! or by the first bytes the server sends, as the smtp stage judges them) and assembles the
//! stages' outputs into the report model.

use std::net::SocketAddr;

use crate::capture::{self, CaptureError, CaptureSummary, ReadOptions};
use crate::report::{Close, CloseFact, ConnectionReport, Report, SmtpFacts, Summary, ToolInfo};
use crate::smtp::Session;
use crate::tcp::{CloseEvent, FlowConfig, FlowTable, StreamSink, TcpConnection};
use crate::types::{Side, Timestamp};
use crate::verdict::{self, Layer};

/// What to analyse.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// Capture files; `-` is standard input.
    pub captures: Vec<String>,
    /// A BPF filter applied to every packet before decoding.
    pub filter: Option<String>,
    /// Ports to treat as SMTP besides 25, 587 and 2525.
    pub extra_ports: Vec<u16>,
}

/// Ports where a server is taken to speak SMTP without looking at its bytes.
pub const SMTP_PORTS: [u16; 3] = [25, 587, 2525];

/// Client bytes kept while waiting to see whether a connection on another port is SMTP.
const UNDECIDED_CLIENT_BYTES: usize = 4096;

enum Kind {
    Smtp,
    /// Not on an SMTP port: waiting for the server's first bytes.
    Undecided(Vec<(Timestamp, Vec<u8>)>, usize),
    NotSmtp,
}

/// Feeds a connection's streams to its SMTP session once it is known to be SMTP.
struct SmtpSink {
    kind: Kind,
    session: Session,
}

impl StreamSink for SmtpSink {
    fn data(&mut self, side: Side, at: Timestamp, bytes: &[u8]) {
        match &mut self.kind {
            Kind::Smtp => self.session.on_data(side, at, bytes),
            Kind::NotSmtp => {}
            Kind::Undecided(held, held_len) => match side {
                Side::Server => {
                    if looks_like_banner(bytes) {
                        let held = std::mem::take(held);
                        for (t, b) in held {
                            self.session.on_data(Side::Client, t, &b);
                        }
                        self.kind = Kind::Smtp;
                        self.session.on_data(side, at, bytes);
                    } else {
                        self.kind = Kind::NotSmtp;
                    }
                }
                Side::Client => {
                    *held_len += bytes.len();
                    if *held_len > UNDECIDED_CLIENT_BYTES {
                        self.kind = Kind::NotSmtp;
                    } else {
                        held.push((at, bytes.to_vec()));
                    }
                }
            },
        }
    }

    fn gap(&mut self, side: Side, at: Timestamp, bytes: u64) {
        if let Kind::Smtp = self.kind {
            self.session.on_gap(side, at, bytes);
        }
    }
}

/// Reads the captures and builds the report.
pub fn analyze(opts: &AnalyzeOptions) -> Result<Report, CaptureError> {
    let mut ports: Vec<u16> = SMTP_PORTS.to_vec();
    ports.extend(&opts.extra_ports);
    let mut server_ports = ports.clone();
    server_ports.push(465);
    let config = FlowConfig { server_ports, ..FlowConfig::default() };
    let mut table: FlowTable<SmtpSink> = FlowTable::new(config);
    let mut done: Vec<(TcpConnection, SmtpSink)> = Vec::new();
    let mut new_sink = |_client: SocketAddr, server: SocketAddr| SmtpSink {
        kind: if ports.contains(&server.port()) { Kind::Smtp } else { Kind::Undecided(Vec::new(), 0) },
        session: Session::new(),
    };
    let read_opts = ReadOptions { filter: opts.filter.clone(), ..ReadOptions::default() };
    let captures = capture::read_captures(&opts.captures, &read_opts, &mut |pkt| {
        table.process(pkt, &mut new_sink);
        done.extend(table.drain_finished());
    })?;
    done.extend(table.finish_all());
    Ok(build_report(done, captures))
}

fn addr(a: SocketAddr) -> String {
    a.to_string()
}

fn close_fact(x: Option<(Side, CloseEvent)>) -> Option<CloseFact> {
    x.map(|(side, e)| CloseFact { side, at: e.at, frame: e.frame.number, ttl: e.ttl, ip_id: e.ip_id })
}

/// A Wireshark display filter for exactly this connection's packets.
fn wireshark_filter(tcp: &TcpConnection) -> String {
    let (c, s) = (tcp.client, tcp.server);
    let ip = if c.is_ipv4() { "ip" } else { "ipv6" };
    format!(
        "{ip}.addr == {} && {ip}.addr == {} && tcp.port == {} && tcp.port == {}",
        c.ip(),
        s.ip(),
        c.port(),
        s.port()
    )
}

fn build_report(done: Vec<(TcpConnection, SmtpSink)>, captures: CaptureSummary) -> Report {
    let mut other = 0u32;
    let mut conns: Vec<ConnectionReport> = Vec::new();
    for (tcp, sink) in done {
        if !matches!(sink.kind, Kind::Smtp) {
            other += 1;
            continue;
        }
        let session = sink.session.summary();
        let verdict = verdict::decide(&tcp, &session);
        let smtp = SmtpFacts {
            quit: session.quit.is_some(),
            starttls: session.starttls.is_some(),
            transactions: session.transactions.len() as u32,
            completed: session.transactions.iter().filter(|t| t.completed()).count() as u32,
            banner: session.banner.as_ref().and_then(|b| b.code),
            phase: session.phase,
            session,
        };
        conns.push(ConnectionReport {
            id: 0,
            client: addr(tcp.client),
            server: addr(tcp.server),
            first_seen: tcp.first_seen,
            last_seen: tcp.last_seen,
            duration_seconds: tcp.last_seen.seconds_since(tcp.first_seen),
            icid: None,
            mids: Vec::new(),
            log_outcome: None,
            verdict,
            close: Close { first_fin: close_fact(tcp.first_fin()), first_rst: close_fact(tcp.first_rst()) },
            smtp,
            wireshark_filter: wireshark_filter(&tcp),
            tcp,
        });
    }
    conns.sort_by(|a, b| (a.first_seen, a.tcp.first_frame).cmp(&(b.first_seen, b.tcp.first_frame)));
    let mut summary = Summary { other_tcp_connections: other, ..Summary::default() };
    for (i, c) in conns.iter_mut().enumerate() {
        c.id = i as u32 + 1;
        summary.connections += 1;
        *summary.by_layer.entry(c.verdict.layer.to_string()).or_default() += 1;
        *summary.by_initiator.entry(c.verdict.initiator.to_string()).or_default() += 1;
        *summary.by_cause.entry(c.verdict.cause.to_string()).or_default() += 1;
        if c.verdict.layer != Layer::None {
            summary.aborted += 1;
        }
        summary.first_seen = Some(summary.first_seen.map_or(c.first_seen, |t| t.min(c.first_seen)));
        summary.last_seen = Some(summary.last_seen.map_or(c.last_seen, |t| t.max(c.last_seen)));
    }
    let problems = captures
        .files
        .iter()
        .filter_map(|f| f.damage.as_ref().map(|d| CaptureError::damaged(&f.name, d, f.records, f.gzip).to_string()))
        .collect();
    Report {
        tool: ToolInfo::default(),
        clock: None,
        connections: conns,
        unmatched_icids: Vec::new(),
        summary,
        captures,
        problems,
    }
}

/// Whether a server's first bytes look like an SMTP banner (`220` then space or hyphen).
fn looks_like_banner(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && &bytes[..3] == b"220" && matches!(bytes[3], b' ' | b'-' | b'\r')
}
