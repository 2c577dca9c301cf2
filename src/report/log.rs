//! The report of `icidtrace log`: the mail log on its own, one row per ICID, and a summary of
//! aborts by kind and by remote IP. The model is built from the parsed log; the printers are
//! pure functions of it.

use std::collections::BTreeMap;

use comfy_table::{
    Cell, ColumnConstraint, ContentArrangement, Table,
    presets::{UTF8_FULL_CONDENSED, UTF8_HORIZONTAL_ONLY},
};
use serde::Serialize;

use crate::maillog::{AbortReason, LocalTime, LogSummary, MailLog};

#[derive(Debug, Clone, Serialize)]
pub struct LogRow {
    pub appliance: String,
    pub icid: u64,
    /// Appliance-local time of `New SMTP ICID` (or of the first line seen).
    pub time: LocalTime,
    pub remote_ip: Option<String>,
    pub interface_ip: Option<String>,
    pub log_outcome: String,
    pub mids: Vec<u64>,
    /// The abort reasons of its MIDs, as the log words them.
    pub aborts: Vec<String>,
    pub lost: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    pub icids: Vec<LogRow>,
    pub by_outcome: BTreeMap<String, u32>,
    /// Remote IPs with the most aborted connections, most first (at most 20).
    pub top_aborting_ips: Vec<(String, u32)>,
    pub summary: LogSummary,
}

impl LogReport {
    pub fn new(log: &MailLog) -> Self {
        let mut by_outcome: BTreeMap<String, u32> = BTreeMap::new();
        let mut by_ip: BTreeMap<String, u32> = BTreeMap::new();
        let mut icids = Vec::with_capacity(log.icids.len());
        for rec in &log.icids {
            let outcome = rec.outcome.as_str().to_string();
            *by_outcome.entry(outcome.clone()).or_default() += 1;
            let remote_ip = rec
                .remote_ip
                .as_ref()
                .and_then(|h| h.ip())
                .map(|ip| ip.to_string());
            let aborts: Vec<String> = log
                .mids_of(rec)
                .filter_map(|m| m.abort.as_ref().map(abort_words))
                .collect();
            if matches!(
                outcome.as_str(),
                "aborted" | "aborted_by_sender" | "timeout" | "lost"
            ) {
                if let Some(ip) = &remote_ip {
                    *by_ip.entry(ip.clone()).or_default() += 1;
                }
            }
            icids.push(LogRow {
                appliance: rec.appliance.clone(),
                icid: rec.icid,
                time: rec.connect.unwrap_or(rec.first_seen),
                remote_ip,
                interface_ip: rec
                    .interface_ip
                    .as_ref()
                    .and_then(|h| h.ip())
                    .map(|ip| ip.to_string()),
                log_outcome: outcome,
                mids: rec.mids.clone(),
                aborts,
                lost: rec.lost.is_some(),
            });
        }
        let mut top: Vec<(String, u32)> = by_ip.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(20);
        LogReport {
            icids,
            by_outcome,
            top_aborting_ips: top,
            summary: log.summary.clone(),
        }
    }
}

/// The abort reason as the log words it.
fn abort_words(a: &AbortReason) -> String {
    match a {
        AbortReason::ReceivingAborted => "Receiving aborted".into(),
        AbortReason::ReceivingAbortedBySender => "Receiving aborted by sender".into(),
        AbortReason::Other(s) => s.clone(),
    }
}

pub fn render_table(r: &LogReport, width: u16) -> String {
    let mut out = String::new();
    let mut table = Table::new();
    table
        // Narrow terminals: no vertical rules and a shorter time, so the reasons keep room.
        .load_style(if width >= 110 {
            UTF8_FULL_CONDENSED
        } else {
            UTF8_HORIZONTAL_ONLY
        })
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width)
        .set_header(vec![
            "ICID",
            "Time (log)",
            "Remote IP",
            "Outcome",
            "MIDs",
            "Abort",
        ]);
    for row in &r.icids {
        let mids: Vec<String> = row.mids.iter().map(|m| m.to_string()).collect();
        let mut abort = row.aborts.join("; ");
        if row.lost {
            abort = if abort.is_empty() {
                "ICID lost".into()
            } else {
                format!("{abort} (ICID lost)")
            };
        }
        table.add_row(vec![
            Cell::new(row.icid),
            Cell::new(row.time.0.format(if width >= 110 {
                "%Y-%m-%d %H:%M:%S"
            } else {
                "%m-%d %H:%M:%S"
            })),
            Cell::new(row.remote_ip.as_deref().unwrap_or("?")),
            Cell::new(&row.log_outcome),
            Cell::new(mids.join(" ")),
            Cell::new(abort),
        ]);
    }
    // ICID, time, IP and outcome stay whole; the MIDs and the abort reasons wrap.
    for (i, col) in table.column_iter_mut().enumerate() {
        if i < 4 {
            col.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    if r.icids.is_empty() {
        out.push_str("no ICID found in the log\n");
    } else {
        out.push_str(&table.to_string());
        out.push('\n');
    }
    let outcomes: Vec<String> = r
        .by_outcome
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let n = r.icids.len();
    let mut totals = format!("{n} ICID{}", if n == 1 { "" } else { "s" });
    if !outcomes.is_empty() {
        totals.push_str(&format!(": {}", outcomes.join(", ")));
    }
    out.push_str(&super::wrap(&totals, usize::from(width)));
    if !r.top_aborting_ips.is_empty() {
        let ips: Vec<String> = r
            .top_aborting_ips
            .iter()
            .take(10)
            .map(|(ip, n)| format!("{ip} ({n})"))
            .collect();
        out.push_str(&super::wrap(
            &format!("most aborts: {}", ips.join(", ")),
            usize::from(width),
        ));
    }
    for f in &r.summary.files {
        if let Some(d) = &f.damage {
            out.push_str(&super::wrap(
                &format!("warning: {}: {d}", f.path),
                usize::from(width),
            ));
        }
    }
    out
}

pub fn render_json(r: &LogReport) -> String {
    let mut s =
        serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

pub fn render_csv(r: &LogReport) -> String {
    let mut out = String::from("appliance,icid,time,remote_ip,log_outcome,mids,aborts\r\n");
    for row in &r.icids {
        let mids: Vec<String> = row.mids.iter().map(|m| m.to_string()).collect();
        let cells = [
            row.appliance.clone(),
            row.icid.to_string(),
            row.time.0.format("%Y-%m-%dT%H:%M:%S").to_string(),
            row.remote_ip.clone().unwrap_or_default(),
            row.log_outcome.clone(),
            mids.join(" "),
            row.aborts.join("; "),
        ];
        let cells: Vec<String> = cells.iter().map(|c| super::csv::field(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}
