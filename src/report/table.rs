//! The verdict table for the terminal: one row per connection, sorted by start time, fitting
//! the given width (long cells wrap; the table never breaks).

use comfy_table::{
    Cell, ColumnConstraint, ContentArrangement, Table,
    presets::{UTF8_FULL_CONDENSED, UTF8_HORIZONTAL_ONLY},
};

use super::{ConnectionReport, Report};
use crate::verdict::Cause;

/// How the connection was ended, in a couple of words ("client RST", "server 421").
fn ended_by(c: &ConnectionReport) -> String {
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
        Cause::CaptureEnded | Cause::PayloadNotCaptured if v.initiator.as_str() == "none" => {
            "—".into()
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

fn messages(c: &ConnectionReport) -> String {
    format!("{}/{}", c.smtp.completed, c.smtp.transactions)
}

pub fn render(report: &Report, width: u16) -> String {
    let mut out = String::new();
    let files: Vec<String> = report
        .captures
        .files
        .iter()
        .map(|f| f.name.clone())
        .collect();
    let span = match (report.summary.first_seen, report.summary.last_seen) {
        (Some(a), Some(b)) => format!(
            ", {} – {} UTC",
            a.to_datetime().format("%Y-%m-%d %H:%M:%S"),
            if a.to_datetime().date_naive() == b.to_datetime().date_naive() {
                b.to_datetime().format("%H:%M:%S").to_string()
            } else {
                b.to_datetime().format("%Y-%m-%d %H:%M:%S").to_string()
            }
        ),
        _ => String::new(),
    };
    out.push_str(&format!(
        "{}: {} SMTP connection{}{span}\n",
        files.join(", "),
        report.summary.connections,
        if report.summary.connections == 1 {
            ""
        } else {
            "s"
        }
    ));
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
    for p in &report.problems {
        out.push_str(&format!("warning: {p}\n"));
    }
    out
}

/// Below this width the table stacks cells (layer, ended by, phase) and drops milliseconds.
const WIDE: u16 = 120;

fn verdict_table(report: &Report, width: u16) -> String {
    let servers: std::collections::BTreeSet<&str> = report
        .connections
        .iter()
        .map(|c| c.server.as_str())
        .collect();
    let wide = width >= WIDE;
    let show_server = servers.len() > 1;
    let mut table = Table::new();
    table
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width);
    if wide {
        table.load_style(UTF8_FULL_CONDENSED);
        let mut header = vec!["#", "Start (UTC)", "Client"];
        if show_server {
            header.push("Server");
        }
        header.extend(["Msgs", "Ended by", "Phase", "Layer", "Reason"]);
        table.set_header(header);
    } else {
        // Narrow terminals: fewer, stacked cells and no vertical rules, so the reason keeps room.
        table.load_style(UTF8_HORIZONTAL_ONLY);
        let conn = if show_server {
            "Client → Server"
        } else {
            "Client"
        };
        table.set_header(vec!["#", "Start", conn, "Msgs", "Verdict", "Reason"]);
    }
    for c in &report.connections {
        let start = c.first_seen.to_datetime();
        let row = if wide {
            let mut row = vec![
                Cell::new(c.id),
                Cell::new(start.format("%H:%M:%S%.3f")),
                Cell::new(&c.client),
            ];
            if show_server {
                row.push(Cell::new(&c.server));
            }
            row.extend([
                Cell::new(messages(c)),
                Cell::new(ended_by(c)),
                Cell::new(c.verdict.phase.as_str()),
                Cell::new(c.verdict.layer),
                Cell::new(&c.verdict.reason),
            ]);
            row
        } else {
            let conn = if show_server {
                format!("{}\n→ {}", c.client, c.server)
            } else {
                c.client.clone()
            };
            vec![
                Cell::new(c.id),
                Cell::new(start.format("%H:%M:%S")),
                Cell::new(conn),
                Cell::new(messages(c)),
                Cell::new(format!(
                    "{}\n{}\nin {}",
                    c.verdict.layer,
                    ended_by(c),
                    c.verdict.phase.as_str()
                )),
                Cell::new(&c.verdict.reason),
            ]
        };
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
