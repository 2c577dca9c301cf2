//! The verdict table for the terminal: one row per connection, in the report's order (by
//! start time unless `--sort` chose another), fitting the given width (long cells wrap; the
//! table never breaks).
//!
//! With [`TableOptions::color`] the verdict's layer is coloured (ANSI; the caller decides: only
//! on a terminal, never with `NO_COLOR`); with [`TableOptions::verbose`] the evidence of each
//! aborted or disagreeing connection (every connection at 2) follows the table.

use comfy_table::{
    Cell, Color, ColumnConstraint, ContentArrangement, Table,
    presets::{UTF8_FULL_CONDENSED, UTF8_HORIZONTAL_ONLY},
};

use super::ladder::{self, ended_by};
use super::{ConnectionReport, Report};
use crate::correlate::{Agreement, Clock, ClockSource};
use crate::types::Timestamp;
use crate::verdict::Layer;

/// How to draw the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Columns the output may use (at least 40).
    pub width: u16,
    /// Colour the verdicts with ANSI escapes.
    pub color: bool,
    /// 0: the table; 1: and the evidence of each aborted or disagreeing connection under it;
    /// 2: the evidence of every connection.
    pub verbose: u8,
}

impl TableOptions {
    /// Plain text, the table alone.
    pub fn plain(width: u16) -> Self {
        TableOptions {
            width,
            color: false,
            verbose: 0,
        }
    }
}

/// The colour of a layer: green nothing aborted, red the network, yellow a timeout, magenta
/// the sender's QUIT, cyan the server; unknown stays plain.
fn layer_color(l: Layer) -> Option<Color> {
    match l {
        Layer::None => Some(Color::Green),
        Layer::Network => Some(Color::Red),
        Layer::Timeout => Some(Color::Yellow),
        Layer::Application => Some(Color::Magenta),
        Layer::Server => Some(Color::Cyan),
        Layer::Unknown => None,
    }
}

/// The same colours as ANSI SGR codes (as comfy-table writes them), for the text under the
/// table.
fn layer_sgr(l: Layer) -> Option<&'static str> {
    match l {
        Layer::None => Some("38;5;10"),
        Layer::Network => Some("38;5;9"),
        Layer::Timeout => Some("38;5;11"),
        Layer::Application => Some("38;5;13"),
        Layer::Server => Some("38;5;14"),
        Layer::Unknown => None,
    }
}

fn paint(text: &str, sgr: Option<&str>, color: bool) -> String {
    match sgr {
        Some(code) if color => format!("\x1b[{code}m{text}\x1b[39m"),
        _ => text.to_string(),
    }
}

/// A cell coloured (foreground) when colour is on.
fn colored(cell: Cell, c: Option<Color>, color: bool) -> Cell {
    match c {
        Some(c) if color => cell.fg(c),
        _ => cell,
    }
}

fn messages(c: &ConnectionReport) -> String {
    format!("{}/{}", c.smtp.completed, c.smtp.transactions)
}

/// The ICID cell: the ICID, its (first) MID and the log's outcome with a mark for agreement.
fn log_cell(c: &ConnectionReport) -> String {
    match (&c.icid, &c.log_match) {
        (Some(icid), Some(m)) => {
            let mark = match m.agreement {
                Agreement::Agrees => "✓",
                Agreement::Disagrees => "✗",
                Agreement::Unknown => "?",
            };
            let outcome = c.log_outcome.as_deref().unwrap_or("?");
            // Folded by hand so the column stays narrow.
            let outcome = match outcome {
                "aborted_by_sender" => "aborted by\nsender".to_string(),
                o => o.replace('_', " "),
            };
            let mids = match c.mids.as_slice() {
                [] => String::new(),
                [m] => format!("\nMID {m}"),
                [m, rest @ ..] => format!("\nMID {m} +{}", rest.len()),
            };
            format!("{icid}{mids}\n{outcome} {mark}")
        }
        _ => "—".into(),
    }
}

/// The reason, with the findings and the disagreement with the log when there are any.
fn reason_cell(c: &ConnectionReport) -> String {
    let mut kinds: Vec<&str> = c.verdict.findings.iter().map(|f| f.kind.as_str()).collect();
    kinds.dedup();
    let reason = if kinds.is_empty() {
        c.verdict.reason.clone()
    } else {
        format!("{} [{}]", c.verdict.reason, kinds.join(", "))
    };
    match &c.log_match {
        Some(m) if m.filled_in.is_some() => {
            let f = m.filled_in.as_ref().map_or("", |f| f.reason.as_str());
            format!("{reason}; with the log: {f}")
        }
        Some(m) if m.agreement == Agreement::Disagrees => {
            format!(
                "{}; ✗ {}",
                reason,
                m.agreement_reason
                    .as_deref()
                    .unwrap_or("disagrees with the log")
            )
        }
        _ => reason,
    }
}

fn span_words(a: Timestamp, b: Timestamp) -> String {
    let (a, b) = (a.to_datetime(), b.to_datetime());
    let end = if a.date_naive() == b.date_naive() {
        b.format("%H:%M:%S")
    } else {
        b.format("%Y-%m-%d %H:%M:%S")
    };
    format!("{} – {end} UTC", a.format("%Y-%m-%d %H:%M:%S"))
}

/// The table, plain, at `width` columns.
pub fn render(report: &Report, width: u16) -> String {
    render_with(report, &TableOptions::plain(width))
}

/// The table as `opts` say.
pub fn render_with(report: &Report, opts: &TableOptions) -> String {
    let width = opts.width;
    let mut out = String::new();
    let files: Vec<&str> = report
        .captures
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let n = report.summary.connections;
    let width_chars = usize::from(width);
    out.push_str(&super::wrap(&files.join(", "), width_chars));
    out.push_str(&format!(
        "{n} SMTP connection{}",
        if n == 1 { "" } else { "s" }
    ));
    if let (Some(a), Some(b)) = (report.summary.first_seen, report.summary.last_seen) {
        out.push_str(&format!(", {}", span_words(a, b)));
    }
    out.push('\n');
    if let Some(sel) = &report.summary.selection {
        out.push_str(&super::wrap(&shown_line(report, sel), width_chars));
    }
    for clock in &report.clocks {
        out.push_str(&super::wrap(
            &clock_line(clock, report.clocks.len() > 1),
            width_chars,
        ));
    }
    if report.connections.is_empty() {
        if report.summary.selection.is_some() && report.summary.connections > 0 {
            out.push_str("no connection matches the selection\n");
        } else {
            out.push_str("no SMTP connection found\n");
        }
    } else {
        out.push_str(&verdict_table(report, width, opts.color));
        out.push('\n');
    }
    if opts.verbose > 0 {
        out.push_str(&evidence_blocks(report, opts));
    }
    let layers: Vec<String> = report
        .summary
        .by_layer
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    if !layers.is_empty() {
        // The counts are of every connection read, also when fewer are shown.
        let of_all = if report.summary.selection.is_some() {
            format!(" (all {})", report.summary.connections)
        } else {
            String::new()
        };
        out.push_str(&super::wrap(
            &format!("layers{of_all}: {}", layers.join(", ")),
            width_chars,
        ));
    }
    if let Some(f) = &report.summary.folded_attempts {
        out.push_str(&super::wrap(&super::folded_attempts_text(f), width_chars));
    }
    let findings: Vec<String> = report
        .summary
        .by_finding
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    if !findings.is_empty() {
        out.push_str(&super::wrap(
            &format!("findings: {}", findings.join(", ")),
            width_chars,
        ));
    }
    if report.clock.is_some() {
        let s = &report.summary;
        out.push_str(&format!(
            "log: {} of {} connections matched to an ICID, {} disagree with the log\n",
            s.matched, s.connections, s.disagreements
        ));
        if !report.unmatched_icids.is_empty() {
            out.push_str(&format!(
                "ICIDs in the capture's time span with no connection ({}):\n",
                report.unmatched_icids.len()
            ));
            for u in report.unmatched_icids.iter().take(20) {
                out.push_str(&super::wrap(
                    &format!(
                        "- ICID {} from {} at {}: {}; {}",
                        u.icid,
                        u.remote_ip.as_deref().unwrap_or("?"),
                        u.connect
                            .map(|t| t.to_datetime().format("%H:%M:%S").to_string())
                            .unwrap_or_else(|| "?".into()),
                        u.log_outcome.as_str(),
                        u.reason
                    ),
                    width_chars,
                ));
            }
            if report.unmatched_icids.len() > 20 {
                out.push_str(&format!(
                    "  … and {} more (see --format json)\n",
                    report.unmatched_icids.len() - 20
                ));
            }
        }
    }
    for p in &report.problems {
        out.push_str(&super::wrap(&format!("warning: {p}"), width_chars));
    }
    out
}

/// `shown: 3 of 25 connections (only aborted, client 198.51.100.0/24)`.
fn shown_line(report: &Report, sel: &super::select::SelectionSummary) -> String {
    let mut words = Vec::new();
    if !sel.only.is_empty() {
        words.push(format!("only {}", sel.only.join(" or ")));
    }
    if !sel.client.is_empty() {
        words.push(format!("client {}", sel.client.join(" or ")));
    }
    if !sel.server.is_empty() {
        words.push(format!("server {}", sel.server.join(" or ")));
    }
    let at = |t: Timestamp| {
        t.to_datetime()
            .format("%Y-%m-%d %H:%M:%S%.f UTC")
            .to_string()
    };
    if let Some(t) = sel.since {
        words.push(format!("since {}", at(t)));
    }
    if let Some(t) = sel.until {
        words.push(format!("until {}", at(t)));
    }
    if sel.sort != "start" {
        words.push(format!("sorted by {}", sel.sort));
    }
    let mut line = format!(
        "shown: {} of {} connection{}",
        sel.shown,
        sel.of,
        if sel.of == 1 { "" } else { "s" }
    );
    if !words.is_empty() {
        line.push_str(&format!(" ({})", words.join(", ")));
    }
    if report.clock.is_some() && sel.unmatched_icids_shown != sel.unmatched_icids_of {
        line.push_str(&format!(
            "; {} of {} ICIDs without a connection",
            sel.unmatched_icids_shown, sel.unmatched_icids_of
        ));
    }
    line
}

/// `-v`: under the table, for each aborted or disagreeing connection (each connection with
/// `-vv`), the verdict's evidence with times, what to check, and a Wireshark filter.
fn evidence_blocks(report: &Report, opts: &TableOptions) -> String {
    let width = usize::from(opts.width).max(40);
    let chosen: Vec<&ConnectionReport> = report
        .connections
        .iter()
        .filter(|c| opts.verbose >= 2 || ladder::has_section(c))
        .collect();
    let mut out = String::new();
    if chosen.is_empty() {
        if !report.connections.is_empty() {
            out.push_str("evidence: no connection was aborted or disagrees with the log (-vv: every connection)\n");
        }
        return out;
    }
    for c in chosen {
        out.push('\n');
        let v = &c.verdict;
        let mut head = format!(
            "#{} {} {} → {}: {}, {} in {}",
            c.id,
            c.first_seen.to_datetime().format("%H:%M:%S%.3f"),
            c.client,
            c.server,
            v.layer,
            ended_by(c),
            v.phase.as_str()
        );
        if let (Some(icid), Some(m)) = (c.icid, &c.log_match) {
            head.push_str(&format!(
                " (ICID {icid}, log: {} {})",
                c.log_outcome.as_deref().unwrap_or("?").replace('_', " "),
                ladder::agreement_mark(m.agreement)
            ));
        }
        // Coloured after folding, so the escapes do not count as width.
        let folded = super::wrap(&head, width);
        let layer = v.layer.as_str();
        out.push_str(&folded.replacen(
            &format!(": {layer},"),
            &format!(": {},", paint(layer, layer_sgr(v.layer), opts.color)),
            1,
        ));
        for (rel, at, fact) in ladder::evidence(c) {
            let lead = if at.is_empty() {
                format!("  {rel:>11}  ")
            } else {
                format!("  {rel:>11}  {at}  ")
            };
            out.push_str(&hang(&lead, &fact, width));
        }
        out.push_str(&hang("  reason: ", &ladder::reason(c), width));
        if !v.next_steps.is_empty() {
            out.push_str(&hang("  check: ", &v.next_steps, width));
        }
        // Whole, to be copied: a filter folded in two would not paste.
        out.push_str(&format!("  Wireshark: {}\n", c.wireshark_filter));
    }
    out.push('\n');
    out
}

/// `text` after `lead`, folded at spaces to `width`, continuation lines aligned under the
/// text (or indented by four when the lead is wide).
fn hang(lead: &str, text: &str, width: usize) -> String {
    let lead_w = lead.chars().count();
    let indent = if lead_w + 20 <= width { lead_w } else { 4 };
    let mut out = String::new();
    let mut line = lead.to_string();
    let mut len = lead_w;
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let n = word.chars().count();
        if !empty && len + 1 + n > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            len = indent;
            empty = true;
        }
        if !empty {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += n;
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

fn clock_line(clock: &Clock, name_it: bool) -> String {
    let n = clock.supporting_pairs;
    let how = match clock.source {
        ClockSource::Auto => format!(
            "{n} connection start{}",
            if n == 1 { " agrees" } else { "s agree" }
        ),
        ClockSource::Header => "the log's header; no connection start lined up".into(),
        ClockSource::LogTz => format!(
            "{} and {:+.1} s skew; {n} starts agree",
            clock.zone.as_deref().unwrap_or("?"),
            clock.skew_seconds.unwrap_or(0.0)
        ),
        ClockSource::Given => "--clock-offset".into(),
        ClockSource::None => "nothing lined up: taken as UTC".into(),
    };
    let header = clock
        .header_offset_seconds
        .map(|h| format!("; header: {h} s"))
        .unwrap_or_default();
    let whose = if name_it {
        format!(" of {}", clock.appliance)
    } else {
        String::new()
    };
    format!("log clock{whose}: UTC{} ({how}{header})", clock.offset)
}

/// The ICID cell in red when the log disagrees with the wire.
fn disagree_color(c: &ConnectionReport) -> Option<Color> {
    c.log_match
        .as_ref()
        .is_some_and(|m| m.agreement == Agreement::Disagrees)
        .then_some(Color::Red)
}

/// Below this width the table stacks cells (time over client, layer over ended-by and phase)
/// and drops milliseconds.
const WIDE: u16 = 120;

fn verdict_table(report: &Report, width: u16, color: bool) -> String {
    let servers: std::collections::BTreeSet<&str> = report
        .connections
        .iter()
        .map(|c| c.server.as_str())
        .collect();
    let wide = width >= WIDE;
    let show_server = servers.len() > 1;
    let with_log = report.clock.is_some();
    let mut table = Table::new();
    // Width and colour are decided by the caller, never by looking at standard output.
    table
        .force_no_tty()
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width);
    if color {
        table.enforce_styling().style_text_only();
    }
    let mut header: Vec<&str> = vec!["#"];
    if wide {
        table.load_style(UTF8_FULL_CONDENSED);
        header.extend(["Start (UTC)", "Client"]);
        if show_server {
            header.push("Server");
        }
        if with_log {
            header.push("ICID / log");
        }
        header.extend(["Msgs", "Ended by", "Phase", "Layer", "Reason"]);
    } else {
        // Narrow terminals: stacked cells and no vertical rules, so the reason keeps room.
        table.load_style(UTF8_HORIZONTAL_ONLY);
        header.push("Connection");
        if with_log {
            header.push("ICID");
        }
        header.extend(["Verdict", "Reason"]);
    }
    table.set_header(header);
    for c in &report.connections {
        let start = c.first_seen.to_datetime();
        let mut row = vec![Cell::new(c.id)];
        if wide {
            row.extend([
                Cell::new(start.format("%H:%M:%S%.3f")),
                Cell::new(&c.client),
            ]);
            if show_server {
                row.push(Cell::new(&c.server));
            }
            if with_log {
                row.push(colored(Cell::new(log_cell(c)), disagree_color(c), color));
            }
            row.extend([
                Cell::new(messages(c)),
                Cell::new(ended_by(c)),
                Cell::new(c.verdict.phase.as_str()),
                colored(
                    Cell::new(c.verdict.layer),
                    layer_color(c.verdict.layer),
                    color,
                ),
            ]);
        } else {
            let mut conn = format!("{}\n{}", start.format("%H:%M:%S"), c.client);
            if show_server {
                conn.push_str(&format!("\n→ {}", c.server));
            }
            row.push(Cell::new(conn));
            if with_log {
                row.push(colored(Cell::new(log_cell(c)), disagree_color(c), color));
            }
            row.push(colored(
                Cell::new(format!(
                    "{}\n{}\nin {}\n{} msgs",
                    c.verdict.layer,
                    ended_by(c),
                    c.verdict.phase.as_str(),
                    messages(c)
                )),
                layer_color(c.verdict.layer),
                color,
            ));
        }
        row.push(Cell::new(reason_cell(c)));
        table.add_row(row);
    }
    // Only the reason wraps: times and addresses cut in two are hard to read and to copy.
    let last = table.column_count() - 1;
    for (i, col) in table.column_iter_mut().enumerate() {
        if i != last {
            col.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    let mut out = String::new();
    if !show_server {
        if let Some(s) = servers.first() {
            out.push_str(&format!("server {s}\n"));
        }
    }
    out.push_str(&table.to_string());
    out
}
