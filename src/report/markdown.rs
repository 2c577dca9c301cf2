//! Markdown report: summary, verdict table, and the story of each aborted or disagreeing
//! connection, for pasting into or attaching to a support case.
//!
//! GitHub-flavoured: pipe tables (with `|` escaped inside cells), text from the capture and the
//! log escaped so it cannot turn into markup, ladder diagrams and log lines in code fences.

use super::ladder::{self, Grid, Lane, Step};
use super::{ConnectionReport, Report};

/// Width of the ladder between the outer lanes, in characters.
const SPAN: usize = 60;

/// Escapes text for Markdown prose and table cells: every character that could start markup
/// (emphasis, links, HTML, code, table cells) is backslash-escaped; control characters and
/// line ends are neutralised.
fn text(s: &str) -> String {
    let s = ladder::clean(s);
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            '\t' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

/// Inline code: a backtick fence longer than any run of backticks inside.
fn code(s: &str) -> String {
    let s = ladder::clean(s).replace('\t', " ");
    let fence = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        if ch == '`' {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// A fenced code block around `body` (which ends with a newline), with a fence longer than any
/// backtick run inside.
fn fenced(info: &str, body: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(body) + 1).max(3));
    format!("{fence}{info}\n{body}{fence}\n")
}

fn grid(g: &Grid) -> String {
    let mut out = String::new();
    let row = |cells: &mut dyn Iterator<Item = String>| {
        let mut line = String::from("|");
        for c in cells {
            line.push(' ');
            line.push_str(&c);
            line.push_str(" |");
        }
        line.push('\n');
        line
    };
    out.push_str(&row(&mut g.head.iter().map(|h| text(h))));
    out.push_str(&row(&mut g.numeric.iter().map(|n| {
        if *n {
            "--:".to_string()
        } else {
            "---".to_string()
        }
    })));
    for r in &g.rows {
        out.push_str(&row(&mut r.iter().map(|c| text(c))));
    }
    out
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str("# icidtrace report\n\n");
    let captures: Vec<String> = report
        .captures
        .files
        .iter()
        .map(|f| code(&f.name))
        .collect();
    let logs: Vec<String> = report
        .logs
        .iter()
        .flat_map(|l| l.files.iter().map(|f| code(&f.path)))
        .collect();
    out.push_str(&format!(
        "{} {} of {}{}.\n\n",
        text(report.tool.name),
        text(report.tool.version),
        captures.join(", "),
        if logs.is_empty() {
            String::new()
        } else {
            format!(" with the mail log {}", logs.join(", "))
        }
    ));

    summary(report, &mut out);

    out.push_str("## Verdicts\n\n");
    if report.connections.is_empty() {
        out.push_str("No SMTP connection found.\n\n");
    } else {
        out.push_str(&grid(&ladder::verdict_table(report)));
        out.push_str(
            "\nLog: the mail log's outcome for the ICID, ✓ the wire agrees, ✗ it does not, ? one \
             side cannot tell. Msgs: messages completed/started.\n\n",
        );
    }

    let detailed: Vec<&ConnectionReport> = report
        .connections
        .iter()
        .filter(|c| ladder::has_section(c))
        .collect();
    if !detailed.is_empty() {
        out.push_str("## Aborted and disagreeing connections\n\n");
        for c in detailed {
            section(report, c, &mut out);
        }
    }
    out
}

fn summary(report: &Report, out: &mut String) {
    out.push_str("## Summary\n\n");
    for (label, t) in ladder::facts(report) {
        out.push_str(&format!("- **{label}:** {}\n", text(&t)));
    }
    out.push('\n');

    let problems = ladder::problems(report);
    out.push_str("### Problems\n\n");
    if problems.is_empty() {
        out.push_str("None: every input was read to its end.\n\n");
    } else {
        for p in problems {
            out.push_str(&format!("- {}\n", text(&p)));
        }
        out.push('\n');
    }

    out.push_str("### Capture files\n\n");
    out.push_str(&grid(&ladder::capture_files(report)));
    out.push('\n');
    if let Some(g) = ladder::log_files(report) {
        out.push_str("### Mail logs\n\n");
        out.push_str(&grid(&g));
        out.push('\n');
    }
    if let Some(g) = ladder::clocks(report) {
        out.push_str("### Log clock\n\n");
        out.push_str(&grid(&g));
        out.push_str(
            "\nThe offset is log time minus UTC: the appliance's zone plus its clock's skew.\n\n",
        );
    }

    out.push_str("### Counts\n\n");
    for (title, g) in ladder::counts(report) {
        if g.rows.is_empty() {
            continue;
        }
        out.push_str(&format!("**{title}**\n\n"));
        out.push_str(&grid(&g));
        out.push('\n');
    }
    let top = ladder::top_ips(report);
    out.push_str("**Remote IPs by aborted connections**\n\n");
    if top.rows.is_empty() {
        out.push_str("No connection was aborted.\n\n");
    } else {
        out.push_str(&grid(&top));
        out.push('\n');
    }
    if !report.unmatched_icids.is_empty() {
        out.push_str("### ICIDs without a connection\n\n");
        out.push_str(&grid(&ladder::unmatched(report)));
        out.push('\n');
    }
}

fn section(report: &Report, c: &ConnectionReport, out: &mut String) {
    let v = &c.verdict;
    out.push_str(&format!(
        "### #{} {} → {}: {}, {}\n\n",
        c.id,
        text(&c.client),
        text(&c.server),
        v.layer,
        text(&ladder::ended_by(c))
    ));
    let mut facts = format!(
        "{} – {} UTC ({}); cause {}, phase {}",
        ladder::utc(c.first_seen),
        c.last_seen.to_datetime().format("%H:%M:%S%.6f"),
        ladder::duration(c.duration_seconds),
        code(v.cause.as_str()),
        code(v.phase.as_str()),
    );
    if let Some(icid) = c.icid {
        facts.push_str(&format!("; ICID {icid}"));
        if !c.mids.is_empty() {
            let mids: Vec<String> = c.mids.iter().map(u64::to_string).collect();
            facts.push_str(&format!(", MID {}", mids.join(", ")));
        }
    }
    out.push_str(&facts);
    out.push_str(".\n\n");

    for (label, words) in ladder::plain_words(c, report.logs.is_some()) {
        out.push_str(&format!("**{label}:** {}\n\n", text(&words)));
    }

    out.push_str("Ladder (time since the first packet):\n\n");
    out.push_str(&fenced("text", &text_ladder(c)));
    out.push('\n');

    let files = ladder::log_lines_by_file(c);
    if !files.is_empty() {
        for (file, lines) in files {
            out.push_str(&format!("Mail log lines, {}:\n\n", code(file)));
            let width = lines.last().map_or(1, |l| l.line.to_string().len());
            let mut body = String::new();
            for l in lines {
                body.push_str(&format!(
                    "{:>width$}  {}\n",
                    l.line,
                    ladder::clean(&l.text).replace('\t', " ")
                ));
            }
            out.push_str(&fenced("text", &body));
            out.push('\n');
        }
    } else if c.log_match.is_some() {
        out.push_str("Mail log lines: not in this report.\n\n");
    }

    out.push_str("Evidence:\n\n");
    for (rel, at, fact) in ladder::evidence(c) {
        if at.is_empty() {
            out.push_str(&format!("- {}\n", text(&fact)));
        } else {
            out.push_str(&format!("- {} {at} — {}\n", code(&rel), text(&fact)));
        }
    }
    out.push('\n');
    out.push_str(&format!("TCP: {}\n\n", text(&ladder::tcp_words(c))));
    out.push_str("Wireshark display filter:\n\n");
    out.push_str(&fenced("text", &format!("{}\n", c.wireshark_filter)));
    out.push('\n');
}

/// Column of each lane on the canvas.
fn lane_col(lane: Lane) -> usize {
    match lane {
        Lane::Client => 0,
        Lane::Middlebox => SPAN / 2,
        Lane::Server => SPAN,
    }
}

/// The ladder as text: a time column, then the lanes as `|` with arrows between them.
fn text_ladder(c: &ConnectionReport) -> String {
    let lanes = ladder::lanes(c);
    let steps = ladder::ladder(c);
    let time_w = steps
        .iter()
        .filter_map(|s| match s {
            Step::Arrow(a) => Some(ladder::rel(a.seconds).chars().count()),
            _ => None,
        })
        .max()
        .unwrap_or(8);
    let indent = " ".repeat(time_w + 2);
    let mut out = String::new();

    // Headings: lane names and addresses.
    let mut names = vec![' '; SPAN + 1];
    let mut addrs = vec![' '; SPAN + 1];
    let put_left = |row: &mut Vec<char>, at: usize, s: &str| {
        for (i, ch) in s.chars().enumerate() {
            if at + i < row.len() {
                row[at + i] = ch;
            } else {
                row.push(ch);
            }
        }
    };
    let put_right = |row: &mut Vec<char>, end: usize, s: &str| {
        let n = s.chars().count();
        let start = (end + 1).saturating_sub(n);
        for (i, ch) in s.chars().enumerate() {
            row[start + i] = ch;
        }
    };
    put_left(&mut names, 0, "client");
    put_left(&mut addrs, 0, &ladder::cut(&c.client, SPAN / 2 - 1));
    put_right(&mut names, SPAN, "server");
    put_right(&mut addrs, SPAN, &ladder::cut(&c.server, SPAN / 2 - 1));
    if lanes.contains(&Lane::Middlebox) {
        let m = "middlebox";
        put_left(&mut names, SPAN / 2 - m.len() / 2, m);
    }
    for row in [names, addrs] {
        let line: String = row.into_iter().collect();
        out.push_str(&format!("{indent}{}\n", line.trim_end()));
    }

    let base = |mark: char| {
        let mut row = vec![' '; SPAN + 1];
        for l in &lanes {
            row[lane_col(*l)] = mark;
        }
        row
    };
    let centred = |mut row: Vec<char>, s: &str| {
        let n = s.chars().count().min(SPAN - 3);
        let start = (SPAN + 1 - n) / 2;
        for (i, ch) in s.chars().take(n).enumerate() {
            row[start + i] = ch;
        }
        row
    };
    for step in &steps {
        match step {
            Step::Arrow(a) => {
                let mut row = base('|');
                let (pa, pb) = (lane_col(a.from), lane_col(a.to));
                let inner = pa.abs_diff(pb) - 1;
                let label = ladder::cut(&ladder::clean(&a.label), inner.saturating_sub(6));
                let n = label.chars().count();
                if pa < pb {
                    for cell in row.iter_mut().take(pb).skip(pa + 1) {
                        *cell = '-';
                    }
                    row[pb - 1] = '>';
                    row[pa + 3] = ' ';
                    for (i, ch) in label.chars().enumerate() {
                        row[pa + 4 + i] = ch;
                    }
                    row[pa + 4 + n] = ' ';
                } else {
                    for cell in row.iter_mut().take(pa).skip(pb + 1) {
                        *cell = '-';
                    }
                    row[pb + 1] = '<';
                    let start = pa - 3 - n;
                    row[start - 1] = ' ';
                    for (i, ch) in label.chars().enumerate() {
                        row[start + i] = ch;
                    }
                    row[pa - 3] = ' ';
                }
                if a.from == Lane::Middlebox {
                    row[pa] = '*';
                }
                let mut line: String = row.into_iter().collect();
                if a.key {
                    line.push_str("  ← ended the session");
                }
                out.push_str(&format!(
                    "{:>time_w$}  {}\n",
                    ladder::rel(a.seconds),
                    line.trim_end()
                ));
            }
            Step::Silence { seconds, rows } | Step::Encrypted { seconds, rows } => {
                let rows = (*rows).max(1) as usize;
                let words = if matches!(step, Step::Encrypted { .. }) {
                    ladder::encrypted_words(*seconds)
                } else {
                    ladder::silence_words(*seconds)
                };
                for r in 0..rows {
                    let row = if r == rows / 2 {
                        centred(base(':'), &words)
                    } else {
                        base(':')
                    };
                    let line: String = row.into_iter().collect();
                    out.push_str(&format!("{indent}{}\n", line.trim_end()));
                }
            }
            Step::Elided { events } => {
                let row = centred(base('|'), &ladder::elided_words(*events));
                let line: String = row.into_iter().collect();
                out.push_str(&format!("{indent}{}\n", line.trim_end()));
            }
        }
    }
    if steps.is_empty() {
        out.push_str(&format!("{indent}(no packets with a time)\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(text("a|b"), "a\\|b");
        assert_eq!(text("<script>"), "\\<script\\>");
        assert_eq!(text("*x* _y_ [l](u)"), "\\*x\\* \\_y\\_ \\[l\\](u)");
        assert_eq!(text("line\nbreak"), "line\u{fffd}break");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(fenced("", "```\n"), "````\n```\n````\n");
    }
}
