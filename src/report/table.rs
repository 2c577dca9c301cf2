//! The verdict table for the terminal: one row per connection, sorted by start time, fitting
//! the given width (long cells wrap; the table never breaks).

use comfy_table::{
    Cell, ColumnConstraint, ContentArrangement, Table,
    presets::{UTF8_FULL_CONDENSED, UTF8_HORIZONTAL_ONLY},
};

use super::ladder::ended_by;
use super::{ConnectionReport, Report};
use crate::correlate::{Agreement, Clock, ClockSource};
use crate::types::Timestamp;

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

pub fn render(report: &Report, width: u16) -> String {
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
    for clock in &report.clocks {
        out.push_str(&super::wrap(
            &clock_line(clock, report.clocks.len() > 1),
            width_chars,
        ));
    }
    if report.connections.is_empty() {
        out.push_str("no SMTP connection found\n");
    } else {
        out.push_str(&verdict_table(report, width));
        out.push('\n');
    }
    let layers: Vec<String> = report
        .summary
        .by_layer
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    if !layers.is_empty() {
        out.push_str(&format!("layers: {}\n", layers.join(", ")));
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

/// Below this width the table stacks cells (time over client, layer over ended-by and phase)
/// and drops milliseconds.
const WIDE: u16 = 120;

fn verdict_table(report: &Report, width: u16) -> String {
    let servers: std::collections::BTreeSet<&str> = report
        .connections
        .iter()
        .map(|c| c.server.as_str())
        .collect();
    let wide = width >= WIDE;
    let show_server = servers.len() > 1;
    let with_log = report.clock.is_some();
    let mut table = Table::new();
    table
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width);
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
                row.push(Cell::new(log_cell(c)));
            }
            row.extend([
                Cell::new(messages(c)),
                Cell::new(ended_by(c)),
                Cell::new(c.verdict.phase.as_str()),
                Cell::new(c.verdict.layer),
            ]);
        } else {
            let mut conn = format!("{}\n{}", start.format("%H:%M:%S"), c.client);
            if show_server {
                conn.push_str(&format!("\n→ {}", c.server));
            }
            row.push(Cell::new(conn));
            if with_log {
                row.push(Cell::new(log_cell(c)));
            }
            row.push(Cell::new(format!(
                "{}\n{}\nin {}\n{} msgs",
                c.verdict.layer,
                ended_by(c),
                c.verdict.phase.as_str(),
                messages(c)
            )));
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
