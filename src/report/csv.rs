//! CSV output: one row per connection with the stable verdict fields (RFC 4180 quoting).

use super::Report;

const HEADER: [&str; 16] = [
    "id",
    "first_seen",
    "last_seen",
    "client",
    "server",
    "icid",
    "mids",
    "log_outcome",
    "layer",
    "initiator",
    "cause",
    "phase",
    "quit",
    "transactions",
    "completed",
    "reason",
];

pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn render(report: &Report) -> String {
    let mut out = HEADER.join(",");
    out.push_str("\r\n");
    for c in &report.connections {
        let mids: Vec<String> = c.mids.iter().map(|m| m.to_string()).collect();
        let row = [
            c.id.to_string(),
            c.first_seen.to_rfc3339(),
            c.last_seen.to_rfc3339(),
            c.client.clone(),
            c.server.clone(),
            c.icid.map(|i| i.to_string()).unwrap_or_default(),
            mids.join(" "),
            c.log_outcome.clone().unwrap_or_default(),
            c.verdict.layer.to_string(),
            c.verdict.initiator.to_string(),
            c.verdict.cause.to_string(),
            c.verdict.phase.as_str().to_string(),
            c.smtp.quit.to_string(),
            c.smtp.transactions.to_string(),
            c.smtp.completed.to_string(),
            c.verdict.reason.clone(),
        ];
        let cells: Vec<String> = row.iter().map(|s| field(s)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
