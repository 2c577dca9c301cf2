//! JSON Lines output, for captures too large to hold a report of: one line per connection,
//! written as each connection ends (`{"connection": {...}}`, the same object as in the JSON
//! report's `connections`), then one closing line with what is known only at the end
//! (`{"summary": ..., "captures": ..., "problems": [...]}`). Field names are the JSON report's.

use serde::Serialize;

use super::{ConnectionReport, Report};

#[derive(Serialize)]
struct ConnectionLine<'a> {
    connection: &'a ConnectionReport,
}

#[derive(Serialize)]
struct ClosingLine<'a> {
    tool: &'a super::ToolInfo,
    summary: &'a super::Summary,
    captures: &'a crate::capture::CaptureSummary,
    problems: &'a [String],
}

/// One connection's line, with its line end.
pub fn connection_line(c: &ConnectionReport) -> String {
    line(&ConnectionLine { connection: c })
}

/// The closing line of a run (the report's `connections` are not in it).
pub fn closing_line(report: &Report) -> String {
    line(&ClosingLine {
        tool: &report.tool,
        summary: &report.summary,
        captures: &report.captures,
        problems: &report.problems,
    })
}

fn line(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// A whole report as JSON Lines: the same lines a streaming run writes, from a report in hand.
pub fn render(report: &Report) -> String {
    let mut s: String = report.connections.iter().map(connection_line).collect();
    s.push_str(&closing_line(report));
    s
}
