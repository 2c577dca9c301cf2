//! Wiring of the stages for `icidtrace analyze`: capture → tcp → smtp → verdict → report.
//!
//! Contract: [`analyze`] reads the captures once, streaming, and returns the [`Report`]. It
//! holds no protocol rules of its own: it decides only which TCP connections are SMTP (by port,
//! or by the first bytes the server sends, as the smtp stage judges them) and assembles the
//! stages' outputs into the report model.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Datelike;

use crate::capture::{self, CaptureError, CaptureSummary, Progress, ReadOptions};
use crate::correlate::{self, Agreement, ClockHint, ClockSource, WireView};
use crate::maillog::{self, LogOptions, MailLogError, YearHint};
use crate::report::{
    Close, CloseFact, ConnectionReport, FoldedAttempts, LISTED_ATTEMPTS, LogMatch, Report,
    SmtpFacts, Summary, ToolInfo,
};
use crate::smtp::{self, Session, SessionSummary};
use crate::tcp::{CloseEvent, FlowConfig, FlowTable, StreamSink, TcpConnection};
use crate::types::{Side, Timestamp};
use crate::verdict::{self, Layer, Verdict};

/// What to analyse.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// Capture files; `-` is standard input.
    pub captures: Vec<String>,
    /// A BPF filter applied to every packet before decoding.
    pub filter: Option<String>,
    /// Ports to treat as SMTP besides 25, 587 and 2525.
    pub extra_ports: Vec<u16>,
    /// The appliance's mail logs, if any.
    pub logs: Vec<PathBuf>,
    /// What the user said about the log's clock.
    pub clock: ClockHint,
    /// Read the matched ICIDs' log lines again to put their text in the report (for reports
    /// meant to be attached to a case).
    pub log_lines: bool,
    /// Called as the inputs are read (every few MiB of a capture, before and after the logs),
    /// for a progress bar; `None` reports nothing.
    pub progress: Option<ProgressHook>,
    /// Hand each connection's row to this as soon as the connection is finished, and keep only
    /// the summary's counts: memory then follows the open connections alone, however large the
    /// capture (`--format jsonl`). Rows come in the order connections end, numbered so; the
    /// report's `connections` stays empty. Not with logs: lining connections up with ICIDs
    /// needs all of them at once.
    pub rows: Option<RowHook>,
}

/// A callback the analysis calls as it goes; cheap to clone, shareable across the stages of
/// one run.
pub struct Hook<T>(Arc<dyn Fn(&T) + Send + Sync>);

impl<T> Hook<T> {
    pub fn new(f: impl Fn(&T) + Send + Sync + 'static) -> Self {
        Hook(Arc::new(f))
    }

    pub fn report(&self, x: &T) {
        (self.0)(x);
    }
}

impl<T> Clone for Hook<T> {
    fn clone(&self) -> Self {
        Hook(Arc::clone(&self.0))
    }
}

impl<T> std::fmt::Debug for Hook<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

/// Receives finished connections' rows ([`AnalyzeOptions::rows`]).
pub type RowHook = Hook<ConnectionReport>;

/// Which part of the work a [`ProgressEvent`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStage {
    /// Reading the captures (the analysis).
    Captures,
    /// Reading the mail logs.
    Logs,
    /// Reading the captures again to cut out connections (`--export`).
    Export,
}

/// How far a stage is: bytes of its inputs read so far (compressed bytes for gzip), against
/// their size on disk when every input has one (not standard input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressEvent {
    pub stage: ProgressStage,
    /// The input being read (0-based) and how many inputs the stage reads.
    pub file: usize,
    pub files: usize,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    /// The stage is over.
    pub finished: bool,
}

/// A progress callback.
pub type ProgressHook = Hook<ProgressEvent>;

/// Turns the capture stage's per-input [`Progress`] into [`ProgressEvent`]s over all inputs.
#[derive(Debug, Clone)]
pub struct CaptureProgress {
    stage: ProgressStage,
    sizes: Vec<Option<u64>>,
    done: Vec<u64>,
}

impl CaptureProgress {
    /// `inputs` as given to the capture stage (`-` is standard input, of unknown size).
    pub fn new(stage: ProgressStage, inputs: &[String]) -> Self {
        CaptureProgress {
            stage,
            sizes: inputs.iter().map(|i| file_size(i)).collect(),
            done: vec![0; inputs.len()],
        }
    }

    pub fn event(&mut self, p: Progress, finished: bool) -> ProgressEvent {
        if let Some(d) = self.done.get_mut(usize::from(p.file)) {
            *d = p.bytes_read;
        }
        ProgressEvent {
            stage: self.stage,
            file: usize::from(p.file),
            files: self.sizes.len(),
            bytes_done: self.done.iter().sum(),
            bytes_total: self.sizes.iter().copied().sum(),
            finished,
        }
    }

    /// The event that closes the stage: every input read.
    pub fn finished(&mut self) -> ProgressEvent {
        for (d, s) in self.done.iter_mut().zip(&self.sizes) {
            if let Some(s) = s {
                *d = (*d).max(*s);
            }
        }
        let files = self.sizes.len();
        ProgressEvent {
            stage: self.stage,
            file: files.saturating_sub(1),
            files,
            bytes_done: self.done.iter().sum(),
            bytes_total: self.sizes.iter().copied().sum(),
            finished: true,
        }
    }
}

fn file_size(input: &str) -> Option<u64> {
    if input == "-" {
        return None;
    }
    std::fs::metadata(input).ok().map(|m| m.len())
}

/// What stopped an analysis before it produced a report.
#[derive(Debug)]
pub enum AnalyzeError {
    Capture(CaptureError),
    MailLog(MailLogError),
}

impl std::fmt::Display for AnalyzeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalyzeError::Capture(e) => e.fmt(f),
            AnalyzeError::MailLog(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AnalyzeError {}

impl From<CaptureError> for AnalyzeError {
    fn from(e: CaptureError) -> Self {
        AnalyzeError::Capture(e)
    }
}

impl From<MailLogError> for AnalyzeError {
    fn from(e: MailLogError) -> Self {
        AnalyzeError::MailLog(e)
    }
}

/// Ports where a server is taken to speak SMTP without looking at its bytes.
/// (465 is SMTP over implicit TLS: the client speaks TLS first, the server sends no banner in
/// clear.)
pub const SMTP_PORTS: [u16; 4] = [25, 465, 587, 2525];

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
    /// Made at the first byte: a scan or a flood of SYNs carries none, and an open connection
    /// without a session costs a fraction of one with it.
    session: Option<Box<Session>>,
}

impl SmtpSink {
    fn session(&mut self) -> &mut Session {
        self.session.get_or_insert_with(|| Box::new(Session::new()))
    }
}

impl StreamSink for SmtpSink {
    fn data(&mut self, side: Side, at: Timestamp, bytes: &[u8]) {
        match &mut self.kind {
            Kind::Smtp => self.session().on_data(side, at, bytes),
            Kind::NotSmtp => {}
            Kind::Undecided(held, held_len) => match side {
                Side::Server => {
                    if smtp::looks_like_banner(bytes) {
                        let held = std::mem::take(held);
                        for (t, b) in held {
                            self.session().on_data(Side::Client, t, &b);
                        }
                        self.kind = Kind::Smtp;
                        self.session().on_data(side, at, bytes);
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
            self.session().on_gap(side, at, bytes);
        }
    }
}

/// Distinct client addresses counted among the folded attempts.
const FOLDED_CLIENTS_CAP: usize = 100_000;

/// A finished SMTP connection's stage outputs. Boxed in the lists below: a row is a few KiB,
/// and a list of boxes neither doubles that by its spare capacity nor holds it twice while the
/// report's rows are made from it (each box is freed as its row is made).
type Row = Box<(TcpConnection, SessionSummary, Verdict)>;

/// Finished connections, as the report will list or count them.
#[derive(Default)]
struct Settled {
    conns: Vec<Row>,
    /// Connections that were not SMTP.
    other: u32,
    attempts_listed: usize,
    /// With [`AnalyzeOptions::rows`]: where rows go, and the counts kept of them.
    rows: Option<RowHook>,
    streamed: Summary,
    folded: FoldedAttempts,
    folded_clients: std::collections::HashSet<std::net::IpAddr>,
}

/// A finished connection's stage outputs: its SMTP summary and verdict, or only a count when it
/// is not SMTP or one attempt too many. Done as each connection finishes, so that its session's
/// buffers (lines, bytes held for a reply) are freed then and memory follows the open
/// connections, not all of them.
fn settle(tcp: TcpConnection, sink: SmtpSink, out: &mut Settled) {
    if !matches!(sink.kind, Kind::Smtp) {
        out.other = out.other.saturating_add(1);
        return;
    }
    if tcp.is_attempt() {
        if out.attempts_listed >= LISTED_ATTEMPTS {
            let f = &mut out.folded;
            f.count += 1;
            if tcp.from_server.first_rst.is_some() {
                f.refused += 1;
            } else if tcp.from_server.packets == 0 {
                f.unanswered += 1;
            }
            if out.folded_clients.len() < FOLDED_CLIENTS_CAP {
                out.folded_clients.insert(tcp.client.ip());
            }
            f.first_seen = Some(
                f.first_seen
                    .map_or(tcp.first_seen, |t| t.min(tcp.first_seen)),
            );
            f.last_seen = Some(f.last_seen.map_or(tcp.last_seen, |t| t.max(tcp.last_seen)));
            return;
        }
        out.attempts_listed += 1;
    }
    let session = match sink.session {
        Some(s) => s.summary(),
        None => Session::new().summary(),
    };
    let verdict = verdict::decide(&tcp, &session);
    match &out.rows {
        Some(hook) => {
            let id = out.streamed.connections + 1;
            let row = connection_report(id, Box::new((tcp, session, verdict)), None);
            count(&mut out.streamed, &row);
            hook.report(&row);
        }
        None => out.conns.push(Box::new((tcp, session, verdict))),
    }
}

/// Reads the captures and builds the report.
pub fn analyze(opts: &AnalyzeOptions) -> Result<Report, AnalyzeError> {
    let mut ports: Vec<u16> = SMTP_PORTS.to_vec();
    ports.extend(&opts.extra_ports);
    let server_ports = ports.clone();
    let config = FlowConfig {
        server_ports,
        ..FlowConfig::default()
    };
    let mut table: FlowTable<SmtpSink> = FlowTable::new(config);
    // Each connection becomes its stage outputs as soon as it is finished (see `settle`).
    let mut settled = Settled {
        rows: opts.rows.clone(),
        ..Settled::default()
    };
    let mut new_sink = |_client: SocketAddr, server: SocketAddr| SmtpSink {
        kind: if ports.contains(&server.port()) {
            Kind::Smtp
        } else {
            Kind::Undecided(Vec::new(), 0)
        },
        session: None,
    };
    let read_opts = ReadOptions {
        filter: opts.filter.clone(),
    };
    let mut progress = CaptureProgress::new(ProgressStage::Captures, &opts.captures);
    let captures = capture::read_records(
        &opts.captures,
        &read_opts,
        &mut |rec| match &rec.packet {
            Some(pkt) => {
                table.process(pkt, &mut new_sink);
                for (tcp, sink) in table.drain_finished() {
                    settle(tcp, sink, &mut settled);
                }
            }
            // ICMP about a connection's path (too big for the next hop) goes to that connection.
            None => {
                if let Some(sig) = capture::icmp::path_mtu_signal(rec) {
                    table.path_mtu(sig.quoted_src, sig.quoted_dst, sig.mtu, sig.ts, sig.frame);
                }
            }
        },
        &mut |p| {
            if let Some(h) = &opts.progress {
                h.report(&progress.event(p, false));
            }
        },
    )?;
    if let Some(h) = &opts.progress {
        h.report(&progress.finished());
    }
    let evicted = table.evicted_flows();
    let late_packets = table.late_packets();
    for (tcp, sink) in table.finish_all() {
        settle(tcp, sink, &mut settled);
    }
    let Settled {
        mut conns,
        other,
        mut folded,
        folded_clients,
        rows,
        streamed,
        ..
    } = settled;
    folded.clients = folded_clients.len() as u64;
    folded.clients_cap = FOLDED_CLIENTS_CAP as u64;
    let folded = (folded.count > 0).then_some(folded);

    // Stage outputs per SMTP connection, in time order.
    conns.sort_by_key(|c| (c.0.first_seen, c.0.first_frame));

    let log = if opts.logs.is_empty() {
        None
    } else {
        // Syslog lines carry no year: the capture's tells it.
        let year_hint = captures.first_ts.map(|t| {
            let d = t.to_datetime();
            YearHint::Near {
                year: d.year(),
                month: d.month(),
            }
        });
        let log_opts = LogOptions {
            year_hint,
            ..LogOptions::default()
        };
        // The log stage has no progress hook of its own: the bar says when it starts and ends.
        let total: Option<u64> = opts
            .logs
            .iter()
            .map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
            .sum();
        let event = |finished: bool| ProgressEvent {
            stage: ProgressStage::Logs,
            file: 0,
            files: opts.logs.len(),
            bytes_done: if finished { total.unwrap_or(0) } else { 0 },
            bytes_total: total,
            finished,
        };
        if let Some(h) = &opts.progress {
            h.report(&event(false));
        }
        let log = maillog::read_logs(&opts.logs, &log_opts)?;
        if let Some(h) = &opts.progress {
            h.report(&event(true));
        }
        Some(log)
    };
    let correlation = log.as_ref().map(|log| {
        let views: Vec<WireView<'_>> = conns
            .iter()
            .map(|row| {
                let (tcp, smtp, verdict) = &**row;
                WireView { tcp, smtp, verdict }
            })
            .collect();
        correlate::correlate(&views, log, opts.clock)
    });
    let log_lines = match (&correlation, &log) {
        (Some(c), Some(log)) if opts.log_lines => excerpts(c, log),
        _ => HashMap::new(),
    };
    let mut report = build_report(conns, other, captures, log.map(|l| l.summary), correlation);
    if rows.is_some() {
        report.summary = Summary {
            other_tcp_connections: other,
            ..streamed
        };
    }
    report.summary.folded_attempts = folded;
    report.summary.late_packets = late_packets;
    if evicted > 0 {
        report.problems.push(format!(
            "{evicted} connections were finished early because more than {} were open at once \
             (a scan or a flood in the capture?); one that went on afterwards shows again as \
             joined mid-stream",
            FlowConfig::default().max_open_flows
        ));
    }
    for (i, lines) in log_lines {
        if let Some(m) = report
            .connections
            .get_mut(i)
            .and_then(|c| c.log_match.as_mut())
        {
            m.log_lines = lines;
        }
    }
    Ok(report)
}

/// The text of every matched ICID's lines (and its MIDs'), by connection index.
fn excerpts(
    c: &correlate::Correlation,
    log: &maillog::MailLog,
) -> HashMap<usize, Vec<maillog::excerpt::LogLine>> {
    let mut req = maillog::excerpt::ExcerptRequest::default();
    for (i, m) in c.matches.iter().enumerate() {
        if let Some(m) = m {
            req.icids.insert(m.icid, i);
            for mid in &m.mids {
                req.mids.insert(*mid, i);
            }
        }
    }
    let files: Vec<&std::path::Path> = log
        .summary
        .files
        .iter()
        .map(|f| std::path::Path::new(f.path.as_str()))
        .collect();
    maillog::excerpt::collect(&files, &req)
}

fn addr(a: SocketAddr) -> String {
    a.to_string()
}

fn close_fact(x: Option<(Side, CloseEvent)>) -> Option<CloseFact> {
    x.map(|(side, e)| CloseFact {
        side,
        at: e.at,
        frame: e.frame.number,
        ttl: e.ttl,
        ip_id: e.ip_id,
    })
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

/// One connection's row of the report: its stage outputs, and its ICID match if any.
fn connection_report(id: u32, row: Row, m: Option<correlate::Match>) -> ConnectionReport {
    let (tcp, session, verdict) = *row;
    let smtp = SmtpFacts {
        quit: session.quit.is_some(),
        starttls: session.starttls.is_some(),
        transactions: session.transactions.len() as u32,
        completed: session
            .transactions
            .iter()
            .filter(|t| t.completed())
            .count() as u32,
        banner: session.banner.as_ref().and_then(|b| b.code),
        phase: session.phase,
        session,
    };
    ConnectionReport {
        id,
        client: addr(tcp.client),
        server: addr(tcp.server),
        first_seen: tcp.first_seen,
        last_seen: tcp.last_seen,
        duration_seconds: tcp.last_seen.seconds_since(tcp.first_seen),
        icid: m.as_ref().map(|m| m.icid),
        mids: m.as_ref().map(|m| m.mids.clone()).unwrap_or_default(),
        log_outcome: m.as_ref().map(|m| m.log_outcome.as_str().to_string()),
        verdict,
        log_match: m.map(|m| LogMatch {
            appliance: m.appliance,
            confidence: m.confidence,
            start_delta_seconds: m.start_delta_seconds,
            close_delta_seconds: m.close_delta_seconds,
            envelope_agrees: m.envelope_agrees,
            agreement: m.agreement,
            agreement_reason: m.agreement_reason,
            filled_in: m.filled_in,
            log_lines: Vec::new(),
        }),
        close: Close {
            first_fin: close_fact(tcp.first_fin()),
            first_rst: close_fact(tcp.first_rst()),
        },
        smtp,
        wireshark_filter: wireshark_filter(&tcp),
        tcp,
    }
}

/// Counts one row into the summary.
fn count(summary: &mut Summary, c: &ConnectionReport) {
    let verdict = &c.verdict;
    summary.connections += 1;
    *summary
        .by_layer
        .entry(verdict.layer.to_string())
        .or_default() += 1;
    *summary
        .by_initiator
        .entry(verdict.initiator.to_string())
        .or_default() += 1;
    *summary
        .by_cause
        .entry(verdict.cause.to_string())
        .or_default() += 1;
    if verdict.layer != Layer::None {
        summary.aborted += 1;
    }
    let kinds: std::collections::BTreeSet<&str> =
        verdict.findings.iter().map(|f| f.kind.as_str()).collect();
    for k in kinds {
        *summary.by_finding.entry(k.to_string()).or_default() += 1;
    }
    summary.first_seen = Some(
        summary
            .first_seen
            .map_or(c.first_seen, |t| t.min(c.first_seen)),
    );
    summary.last_seen = Some(
        summary
            .last_seen
            .map_or(c.last_seen, |t| t.max(c.last_seen)),
    );
    if let Some(m) = &c.log_match {
        summary.matched += 1;
        if m.agreement == Agreement::Disagrees {
            summary.disagreements += 1;
        }
    }
    if let Some(o) = &c.log_outcome {
        *summary.by_log_outcome.entry(o.clone()).or_default() += 1;
    }
}

fn build_report(
    conns: Vec<Row>,
    other: u32,
    captures: CaptureSummary,
    logs: Option<maillog::LogSummary>,
    correlation: Option<correlate::Correlation>,
) -> Report {
    let (clock, clocks, mut matches, unmatched_icids) = match correlation {
        Some(c) => (Some(c.clock), c.clocks, c.matches, c.unmatched_icids),
        None => (None, Vec::new(), Vec::new(), Vec::new()),
    };
    matches.resize(conns.len(), None);
    let mut summary = Summary {
        other_tcp_connections: other,
        ..Summary::default()
    };
    let mut reports = Vec::with_capacity(conns.len());
    for (i, (row, m)) in conns.into_iter().zip(matches).enumerate() {
        let c = connection_report(i as u32 + 1, row, m);
        count(&mut summary, &c);
        reports.push(c);
    }
    let mut problems: Vec<String> = captures
        .files
        .iter()
        .filter_map(|f| {
            f.damage
                .as_ref()
                .map(|d| CaptureError::damaged(&f.name, d, f.records, f.gzip).to_string())
        })
        .collect();
    if let Some(logs) = &logs {
        problems.extend(
            logs.files
                .iter()
                .filter_map(|f| f.damage.as_ref().map(|d| format!("{}: {d}", f.path))),
        );
    }
    // A clock nothing lined up with (a wrong --log-tz, or a log of another time) is worth saying.
    for c in &clocks {
        if c.supporting_pairs == 0 && !matches!(c.source, ClockSource::Given) && !reports.is_empty()
        {
            problems.push(format!(
                "no connection start lines up with the ICIDs of {} ({}): is it the log of this capture's time{}?",
                c.appliance,
                c.offset,
                if c.zone.is_some() { ", and the right --log-tz" } else { "" }
            ));
        }
    }
    Report {
        tool: ToolInfo::default(),
        clock,
        clocks,
        connections: reports,
        unmatched_icids,
        summary,
        captures,
        logs,
        problems,
    }
}
