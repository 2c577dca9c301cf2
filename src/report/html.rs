//! HTML report: one self-contained file (inline CSS and SVG ladder diagrams, no external
//! requests) for a support case.
//!
//! The page works without JavaScript (a small inline script only adds sorting and filtering to
//! the verdict table), prints on white with each connection on a new page, and fits a phone
//! (wide tables and diagrams scroll inside their own box). Every text that comes from the
//! capture or the log is HTML-escaped: reply texts and log lines are the sender's words.

use super::ladder::{self, Arrow, Grid, Kind, Lane, Step};
use super::{ConnectionReport, Report};
use crate::verdict::Layer;

/// Escapes text for HTML content and attribute values (control characters neutralised).
fn esc(s: &str) -> String {
    let s = ladder::clean(s);
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1b1b1b; background: #fff; margin: 0 auto; max-width: 1280px; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: .2rem 0 .3rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05rem; margin: 1.3rem 0 .4rem; }
h4 { font-size: .95rem; margin: 1rem 0 .3rem; }
p, dl, ul { margin: .4rem 0 .8rem; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
code { font-size: .9em; background: #f3f3f3; padding: 0 .2em; border-radius: 3px; }
.sub { color: #555; margin-top: 0; }
nav.toc { font-size: .9rem; color: #444; }
nav.toc a { margin-right: .35rem; }
a { color: #0b57a4; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; margin: .3rem 0 .8rem; }
table { border-collapse: collapse; font-size: .88rem; }
th, td { border: 1px solid #cfcfcf; padding: .25rem .5rem; text-align: left; vertical-align: top; }
thead th { background: #eef1f4; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
td.reason { min-width: 12rem; }
table.verdicts td.nowrap { white-space: nowrap; }
tr.aborted td:first-child { border-left: 4px solid #c62828; }
.counts { display: flex; flex-wrap: wrap; gap: .5rem 2rem; align-items: flex-start; }
.counts h4 { margin-top: .3rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
ul.problems li { color: #8a1c1c; }
.layer { display: inline-block; padding: 0 .45em; border-radius: 3px; font-weight: 600; font-size: .85em; border: 1px solid transparent; }
.layer-none { background: #e8f5e9; color: #1b5e20; border-color: #a5d6a7; }
.layer-application { background: #fff8e1; color: #7a5200; border-color: #ffd54f; }
.layer-network { background: #ffebee; color: #a31515; border-color: #ef9a9a; }
.layer-timeout { background: #fff3e0; color: #8a3b00; border-color: #ffb74d; }
.layer-server { background: #ede7f6; color: #4a2a8a; border-color: #b39ddb; }
.layer-unknown { background: #eceff1; color: #37474f; border-color: #b0bec5; }
.mark-disagrees { color: #c62828; font-weight: 700; }
.mark-agrees { color: #2e7d32; }
section.conn { margin-top: 2.5rem; border-top: 3px solid #888; padding-top: .2rem; }
section.conn h2 { border-bottom: none; margin-top: .8rem; }
p.meta { color: #444; font-size: .92rem; }
dl.words dt { font-weight: 700; margin-top: .4rem; }
dl.words dd { margin: .1rem 0 .3rem 0; }
dd.disagrees { color: #8a1c1c; }
pre { background: #f7f7f7; border: 1px solid #ddd; border-radius: 4px; padding: .5rem .7rem; font-size: .8rem;
  line-height: 1.35; overflow-x: auto; white-space: pre; margin: .3rem 0 .8rem; }
pre .ln { color: #888; user-select: none; }
ul.evidence { padding-left: 1.2rem; }
ul.evidence .t { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; color: #444; white-space: nowrap; }
svg.ladder { display: block; max-width: 100%; min-width: 36rem; height: auto; background: #fff; }
.legend { font-size: .85rem; color: #444; }
.legend span { display: inline-block; margin-right: 1rem; }
.legend i { display: inline-block; width: 1.6em; height: 0; border-top: 3px solid; vertical-align: middle; margin-right: .3em; }
.tools { margin: .4rem 0; display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; font-size: .9rem; }
.tools input[type=search] { font: inherit; padding: .2rem .4rem; min-width: 16rem; max-width: 100%; }
th.sortable { cursor: pointer; }
th.sortable::after { content: " \2195"; color: #999; font-weight: normal; }
@media (max-width: 640px) {
  body { padding: .6rem .6rem 2rem; font-size: 14px; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: .4rem; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; color: #000; background: #fff; }
  a { color: inherit; text-decoration: none; }
  .tools, .back, nav.toc { display: none; }
  .scroll { overflow: visible; }
  section.conn { break-before: page; page-break-before: always; border-top: none; }
  svg.ladder { min-width: 0; break-inside: avoid; page-break-inside: avoid; }
  pre { white-space: pre-wrap; word-break: break-all; background: #fff; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  table { font-size: 8.5pt; }
  code { background: none; }
}
"#;

/// Sorting and filtering of the verdict table; the page is complete without it.
const SCRIPT: &str = r#"
(function () {
  var table = document.getElementById('verdict-table');
  if (!table || !table.tBodies.length) return;
  var body = table.tBodies[0];
  var tools = document.createElement('div');
  tools.className = 'tools';
  var filter = document.createElement('input');
  filter.type = 'search';
  filter.placeholder = 'Filter rows (IP, layer, ICID, reason…)';
  filter.setAttribute('aria-label', 'Filter the verdict table');
  var label = document.createElement('label');
  var only = document.createElement('input');
  only.type = 'checkbox';
  label.appendChild(only);
  label.appendChild(document.createTextNode(' only aborted or disagreeing'));
  var count = document.createElement('span');
  tools.appendChild(filter);
  tools.appendChild(label);
  tools.appendChild(count);
  var box = table.parentNode;
  box.parentNode.insertBefore(tools, box);
  function apply() {
    var q = filter.value.toLowerCase(), shown = 0;
    for (var i = 0; i < body.rows.length; i++) {
      var r = body.rows[i];
      var hide = (q && r.textContent.toLowerCase().indexOf(q) < 0) ||
        (only.checked && r.getAttribute('data-section') !== '1');
      r.hidden = !!hide;
      if (!hide) shown++;
    }
    count.textContent = shown + ' of ' + body.rows.length + ' rows';
  }
  filter.addEventListener('input', apply);
  only.addEventListener('change', apply);
  var heads = table.tHead.rows[0].cells;
  for (var i = 0; i < heads.length; i++) {
    (function (th, col) {
      th.className += ' sortable';
      th.title = 'Sort by this column';
      th.addEventListener('click', function () {
        var asc = th.getAttribute('data-dir') !== 'asc';
        for (var j = 0; j < heads.length; j++) heads[j].removeAttribute('data-dir');
        th.setAttribute('data-dir', asc ? 'asc' : 'desc');
        var num = th.classList.contains('num');
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent, y = b.cells[col].textContent, d;
          if (num) { d = (parseFloat(x) || 0) - (parseFloat(y) || 0); }
          else { d = x.localeCompare(y); }
          if (d === 0) d = parseInt(a.cells[0].textContent, 10) - parseInt(b.cells[0].textContent, 10);
          return asc ? d : -d;
        });
        for (var k = 0; k < rows.length; k++) body.appendChild(rows[k]);
      });
    })(heads[i], i);
  }
  apply();
})();
"#;

fn grid(g: &Grid, class: &str, id: Option<&str>) -> String {
    let mut out = String::from("<div class=\"scroll\"><table");
    if let Some(id) = id {
        out.push_str(&format!(" id=\"{id}\""));
    }
    if !class.is_empty() {
        out.push_str(&format!(" class=\"{class}\""));
    }
    out.push_str("><thead><tr>");
    for (h, num) in g.head.iter().zip(&g.numeric) {
        if *num {
            out.push_str(&format!("<th class=\"num\">{}</th>", esc(h)));
        } else {
            out.push_str(&format!("<th>{}</th>", esc(h)));
        }
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in &g.rows {
        out.push_str("<tr>");
        for (c, num) in r.iter().zip(&g.numeric) {
            if *num {
                out.push_str(&format!("<td class=\"num\">{}</td>", esc(c)));
            } else {
                out.push_str(&format!("<td>{}</td>", esc(c)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

fn layer_badge(l: Layer) -> String {
    format!("<span class=\"layer layer-{0}\">{0}</span>", l.as_str())
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let names: Vec<&str> = report
        .captures
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"color-scheme\" content=\"light\">\n");
    out.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    out.push_str(&format!(
        "<meta name=\"generator\" content=\"{} {}\">\n",
        esc(report.tool.name),
        esc(report.tool.version)
    ));
    out.push_str(&format!(
        "<title>icidtrace report: {}</title>\n",
        esc(&names.join(", "))
    ));
    out.push_str("<style>");
    out.push_str(CSS);
    out.push_str("</style>\n</head>\n<body>\n");

    out.push_str("<header>\n<h1>icidtrace report</h1>\n<p class=\"sub\">");
    out.push_str(&format!(
        "{} {} · capture ",
        esc(report.tool.name),
        esc(report.tool.version)
    ));
    let caps: Vec<String> = names
        .iter()
        .map(|n| format!("<code>{}</code>", esc(n)))
        .collect();
    out.push_str(&caps.join(", "));
    if let Some(logs) = &report.logs {
        let l: Vec<String> = logs
            .files
            .iter()
            .map(|f| format!("<code>{}</code>", esc(&f.path)))
            .collect();
        out.push_str(" · mail log ");
        out.push_str(&l.join(", "));
    }
    out.push_str("</p>\n");
    let detailed: Vec<&ConnectionReport> = report
        .connections
        .iter()
        .filter(|c| ladder::has_section(c))
        .collect();
    out.push_str(
        "<nav class=\"toc\"><a href=\"#summary\">Summary</a> · <a href=\"#verdicts\">Verdicts</a>",
    );
    if !detailed.is_empty() {
        out.push_str(" · Aborted or disagreeing:");
        for c in &detailed {
            out.push_str(&format!(" <a href=\"#conn-{0}\">#{0}</a>", c.id));
        }
    }
    out.push_str("</nav>\n</header>\n<main>\n");

    summary(report, &mut out);
    verdicts(report, &mut out);
    for c in detailed {
        section(report, c, &mut out);
    }
    out.push_str("</main>\n<script>");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

fn summary(report: &Report, out: &mut String) {
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<dl class=\"facts\">\n");
    for (label, t) in ladder::facts(report) {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(label), esc(&t)));
    }
    out.push_str("</dl>\n<h3>Problems</h3>\n");
    let problems = ladder::problems(report);
    if problems.is_empty() {
        out.push_str("<p>None: every input was read to its end.</p>\n");
    } else {
        out.push_str("<ul class=\"problems\">\n");
        for p in problems {
            out.push_str(&format!("<li>{}</li>\n", esc(&p)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h3>Capture files</h3>\n");
    out.push_str(&grid(&ladder::capture_files(report), "", None));
    if let Some(g) = ladder::log_files(report) {
        out.push_str("<h3>Mail logs</h3>\n");
        out.push_str(&grid(&g, "", None));
    }
    if let Some(g) = ladder::clocks(report) {
        out.push_str("<h3>Log clock</h3>\n");
        out.push_str(&grid(&g, "", None));
        out.push_str(
            "<p class=\"sub\">The offset is log time minus UTC: the appliance's zone plus its clock's skew.</p>\n",
        );
    }
    out.push_str("<h3>Counts</h3>\n<div class=\"counts\">\n");
    for (title, g) in ladder::counts(report) {
        if g.rows.is_empty() {
            continue;
        }
        out.push_str(&format!("<div><h4>{}</h4>\n", esc(title)));
        out.push_str(&grid(&g, "", None));
        out.push_str("</div>\n");
    }
    let top = ladder::top_ips(report);
    out.push_str("<div><h4>Remote IPs by aborted connections</h4>\n");
    if top.rows.is_empty() {
        out.push_str("<p>No connection was aborted.</p>\n");
    } else {
        out.push_str(&grid(&top, "", None));
    }
    out.push_str("</div>\n</div>\n");
    if !report.unmatched_icids.is_empty() {
        out.push_str("<h3>ICIDs without a connection</h3>\n");
        out.push_str(&grid(&ladder::unmatched(report), "", None));
    }
    out.push_str("</section>\n");
}

fn verdicts(report: &Report, out: &mut String) {
    out.push_str("<section id=\"verdicts\">\n<h2>Verdicts</h2>\n");
    if report.connections.is_empty() {
        out.push_str("<p>No SMTP connection found.</p>\n</section>\n");
        return;
    }
    let g = ladder::verdict_table(report);
    let layer_col = g.column("Layer");
    let log_col = g.column("Log");
    let reason_col = g.column("Reason");
    let icid_col = g.column("ICID");
    let nowrap: Vec<usize> = [
        "Start (UTC)",
        "Client",
        "Server",
        "ICID",
        "Ended by",
        "Phase",
        "Layer",
    ]
    .iter()
    .filter_map(|h| g.column(h))
    .collect();
    out.push_str(
        "<div class=\"scroll\"><table id=\"verdict-table\" class=\"verdicts\"><thead><tr>",
    );
    for (h, num) in g.head.iter().zip(&g.numeric) {
        let class = if *num { " class=\"num\"" } else { "" };
        out.push_str(&format!("<th{class}>{}</th>", esc(h)));
    }
    out.push_str("</tr></thead><tbody>\n");
    for (c, row) in report.connections.iter().zip(&g.rows) {
        let detailed = ladder::has_section(c);
        let mut class = format!("layer-row-{}", c.verdict.layer.as_str());
        if c.verdict.layer != Layer::None {
            class.push_str(" aborted");
        }
        out.push_str(&format!(
            "<tr id=\"row-{}\" class=\"{class}\" data-section=\"{}\">",
            c.id,
            if detailed { 1 } else { 0 }
        ));
        for (i, (cell, num)) in row.iter().zip(&g.numeric).enumerate() {
            let content = if i == 0 && detailed {
                format!("<a href=\"#conn-{0}\">{0}</a>", c.id)
            } else if Some(i) == icid_col {
                // The MID under the ICID keeps the column narrow.
                esc(cell).replacen(" (", "<br>(", 1)
            } else if Some(i) == layer_col {
                layer_badge(c.verdict.layer)
            } else if Some(i) == log_col {
                match &c.log_match {
                    Some(m) => format!(
                        "{}&nbsp;<span class=\"mark-{}\" title=\"{}\">{}</span>",
                        esc(&c.log_outcome.as_deref().unwrap_or("?").replace('_', " ")),
                        match m.agreement {
                            crate::correlate::Agreement::Agrees => "agrees",
                            crate::correlate::Agreement::Disagrees => "disagrees",
                            crate::correlate::Agreement::Unknown => "unknown",
                        },
                        match m.agreement {
                            crate::correlate::Agreement::Agrees => "the wire agrees",
                            crate::correlate::Agreement::Disagrees => "the wire disagrees",
                            crate::correlate::Agreement::Unknown => "cannot be told",
                        },
                        ladder::agreement_mark(m.agreement)
                    ),
                    None => esc(cell),
                }
            } else {
                esc(cell)
            };
            let class = if *num {
                " class=\"num\""
            } else if Some(i) == reason_col {
                " class=\"reason\""
            } else if nowrap.contains(&i) {
                " class=\"nowrap\""
            } else {
                ""
            };
            out.push_str(&format!("<td{class}>{content}</td>"));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out.push_str(
        "<p class=\"sub\">Log: the mail log's outcome for the ICID, ✓ the wire agrees, ✗ it does not, ? one side cannot tell. Msgs: messages completed/started. Rows with a link have a section below.</p>\n",
    );
    out.push_str("</section>\n");
}

fn section(report: &Report, c: &ConnectionReport, out: &mut String) {
    let v = &c.verdict;
    out.push_str(&format!(
        "<section class=\"conn\" id=\"conn-{}\">\n<h2>#{} {} → {} {} <small>{}</small></h2>\n",
        c.id,
        c.id,
        esc(&c.client),
        esc(&c.server),
        layer_badge(v.layer),
        esc(&ladder::ended_by(c))
    ));
    let mut meta = format!(
        "{} – {} UTC ({}) · cause <code>{}</code> · phase <code>{}</code>",
        esc(&ladder::utc(c.first_seen)),
        c.last_seen.to_datetime().format("%H:%M:%S%.6f"),
        esc(&ladder::duration(c.duration_seconds)),
        esc(v.cause.as_str()),
        esc(v.phase.as_str())
    );
    if let Some(icid) = c.icid {
        meta.push_str(&format!(" · ICID {icid}"));
        if !c.mids.is_empty() {
            let mids: Vec<String> = c.mids.iter().map(u64::to_string).collect();
            meta.push_str(&format!(", MID {}", mids.join(", ")));
        }
    }
    out.push_str(&format!(
        "<p class=\"meta\">{meta}</p>\n<dl class=\"words\">\n"
    ));
    let disagrees = c
        .log_match
        .as_ref()
        .is_some_and(|m| m.agreement == crate::correlate::Agreement::Disagrees);
    for (label, words) in ladder::plain_words(c, report.logs.is_some()) {
        let class = if label == "Mail log" && disagrees {
            " class=\"disagrees\""
        } else {
            ""
        };
        out.push_str(&format!(
            "<dt>{}</dt><dd{class}>{}</dd>\n",
            esc(label),
            esc(&words)
        ));
    }
    out.push_str("</dl>\n<h3>Ladder</h3>\n");
    out.push_str(
        "<p class=\"legend\"><span><i style=\"border-color:#1f4e9c\"></i>client command / data</span><span><i style=\"border-color:#2e7d32\"></i>server reply</span><span><i style=\"border-color:#b35900\"></i>error reply</span><span><i style=\"border-color:#c62828\"></i>FIN, RST, unprompted reply</span>",
    );
    if c.smtp.session.tls.is_some() {
        out.push_str("<span><i style=\"border-color:#6a1b9a;border-top-style:dashed\"></i>TLS records</span>");
    }
    out.push_str(" Times are seconds since the first packet; hover an arrow for its exact time and full text.</p>\n");
    out.push_str("<div class=\"scroll\">");
    out.push_str(&svg_ladder(c));
    out.push_str("</div>\n");

    let files = ladder::log_lines_by_file(c);
    if !files.is_empty() {
        out.push_str("<h3>Mail log lines</h3>\n");
        for (file, lines) in files {
            out.push_str(&format!(
                "<h4><code>{}</code></h4>\n<pre class=\"log\">",
                esc(file)
            ));
            let width = lines.last().map_or(1, |l| l.line.to_string().len());
            for l in lines {
                out.push_str(&format!(
                    "<span class=\"ln\">{:>width$}  </span>{}\n",
                    l.line,
                    esc(&l.text)
                ));
            }
            out.push_str("</pre>\n");
        }
    } else if c.log_match.is_some() {
        out.push_str("<h3>Mail log lines</h3>\n<p>Not in this report.</p>\n");
    }

    out.push_str("<h3>Evidence</h3>\n<ul class=\"evidence\">\n");
    for (rel, at, fact) in ladder::evidence(c) {
        if at.is_empty() {
            out.push_str(&format!("<li>{}</li>\n", esc(&fact)));
        } else {
            out.push_str(&format!(
                "<li><span class=\"t\">{} · {}</span> {}</li>\n",
                esc(&rel),
                esc(&at),
                esc(&fact)
            ));
        }
    }
    out.push_str("</ul>\n");
    out.push_str(&format!(
        "<p><strong>TCP:</strong> {}</p>\n",
        esc(&ladder::tcp_words(c))
    ));
    out.push_str(&format!(
        "<h3>Wireshark display filter</h3>\n<pre class=\"filter\"><code>{}</code></pre>\n",
        esc(&c.wireshark_filter)
    ));
    out.push_str("<p class=\"back\"><a href=\"#verdicts\">↑ verdict table</a></p>\n</section>\n");
}

// ---------------------------------------------------------------------------------------------
// The SVG ladder.

const W: u32 = 960;
/// Right edge of the time column.
const TIME_X: u32 = 84;
const CLIENT_X: u32 = 180;
const SERVER_X: u32 = 770;
const HEAD_H: u32 = 50;
const ROW_H: u32 = 26;
const SILENCE_UNIT: u32 = 14;
const ELIDED_H: u32 = 26;

fn lane_x(l: Lane) -> u32 {
    match l {
        Lane::Client => CLIENT_X,
        Lane::Middlebox => (CLIENT_X + SERVER_X) / 2,
        Lane::Server => SERVER_X,
    }
}

/// Colour, line width, dash pattern and bold label of an arrow kind.
fn style(k: Kind) -> (&'static str, f32, Option<&'static str>, bool) {
    match k {
        Kind::Syn => ("#777777", 1.2, None, false),
        Kind::Command => ("#1f4e9c", 1.5, None, false),
        Kind::Reply => ("#2e7d32", 1.5, None, false),
        Kind::ErrorReply => ("#b35900", 1.8, None, false),
        Kind::Unprompted => ("#c62828", 2.5, None, true),
        Kind::Data => ("#1f4e9c", 3.0, None, true),
        Kind::Tls => ("#6a1b9a", 1.5, Some("6 3"), false),
        Kind::Fin => ("#c62828", 2.0, None, true),
        Kind::Rst => ("#c62828", 3.0, None, true),
    }
}

fn svg_arrow(a: &Arrow, y: u32, out: &mut String) {
    let (color, mut width, dash, mut bold) = style(a.kind);
    if a.key {
        width += 1.0;
        bold = true;
    }
    let (x1, x2) = (lane_x(a.from) as i64, lane_x(a.to) as i64);
    let dir = if x2 > x1 { 1 } else { -1 };
    let line_y = y + 19;
    let head = 9;
    let start = x1 + dir * 2;
    let end = x2 - dir * head;
    out.push_str(&format!(
        "<g class=\"step k-{}{}\"><title>{} · {} UTC · {} → {}: {}</title>",
        a.kind.as_str(),
        if a.key { " key" } else { "" },
        esc(&ladder::rel(a.seconds)),
        a.at.to_datetime().format("%H:%M:%S%.6f"),
        a.from.as_str(),
        a.to.as_str(),
        esc(&a.detail)
    ));
    out.push_str(&format!(
        "<text x=\"{TIME_X}\" y=\"{}\" class=\"time\" text-anchor=\"end\" font-size=\"11\" fill=\"#555\" font-family=\"ui-monospace, Menlo, Consolas, monospace\">{}</text>",
        line_y + 4,
        esc(&ladder::rel(a.seconds))
    ));
    out.push_str(&format!(
        "<line x1=\"{start}\" y1=\"{line_y}\" x2=\"{end}\" y2=\"{line_y}\" stroke=\"{color}\" stroke-width=\"{width}\"{}/>",
        dash.map(|d| format!(" stroke-dasharray=\"{d}\"")).unwrap_or_default()
    ));
    out.push_str(&format!(
        "<polygon points=\"{},{line_y} {},{} {},{}\" fill=\"{color}\"/>",
        x2 - dir * 2,
        end,
        line_y - 5,
        end,
        line_y + 5
    ));
    if a.from == Lane::Middlebox {
        out.push_str(&format!(
            "<circle cx=\"{x1}\" cy=\"{line_y}\" r=\"4\" fill=\"{color}\"/>"
        ));
    }
    if a.key {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" font-weight=\"700\" fill=\"#c62828\">◀ ended the session</text>",
            SERVER_X + 10,
            line_y + 4
        ));
    }
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\"{}>{}</text></g>\n",
        (x1 + x2) / 2,
        line_y - 5,
        if a.kind == Kind::Syn { "#555" } else { "#111" },
        if bold { " font-weight=\"700\"" } else { "" },
        esc(&a.label)
    ));
}

/// The ladder of `c` as an inline SVG (no external references; colours inline so that it
/// reads the same printed).
fn svg_ladder(c: &ConnectionReport) -> String {
    let lanes = ladder::lanes(c);
    let steps = ladder::ladder(c);
    let height_of = |s: &Step| match s {
        Step::Arrow(_) => ROW_H,
        Step::Silence { rows, .. } | Step::Encrypted { rows, .. } => rows * SILENCE_UNIT + 14,
        Step::Elided { .. } => ELIDED_H,
    };
    let body: u32 = steps.iter().map(height_of).sum::<u32>().max(ROW_H);
    let h = HEAD_H + body + 12;
    let mut out = format!(
        "<svg class=\"ladder\" data-connection=\"{}\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" role=\"img\" aria-label=\"Ladder diagram of connection {}\" font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif\">\n",
        c.id, c.id
    );
    out.push_str(&format!(
        "<title>Connection {}: {} → {}</title>\n",
        c.id,
        esc(&c.client),
        esc(&c.server)
    ));
    out.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{h}\" fill=\"#ffffff\"/>\n"
    ));
    // Lane headings.
    for l in &lanes {
        let x = lane_x(*l);
        let addr = match l {
            Lane::Client => ladder::cut(&c.client, 34),
            Lane::Server => ladder::cut(&c.server, 34),
            Lane::Middlebox => "(in the path)".into(),
        };
        out.push_str(&format!(
            "<text x=\"{x}\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"700\" fill=\"#111\">{}</text>",
            l.as_str()
        ));
        out.push_str(&format!(
            "<text x=\"{x}\" y=\"32\" text-anchor=\"middle\" font-size=\"11.5\" fill=\"#444\">{}</text>\n",
            esc(&addr)
        ));
    }
    out.push_str(&format!(
        "<text x=\"{TIME_X}\" y=\"32\" text-anchor=\"end\" font-size=\"11\" fill=\"#777\">time</text>\n"
    ));
    // Lanes (the middlebox lane dashed).
    for l in &lanes {
        let x = lane_x(*l);
        out.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#444\" stroke-width=\"{}\"{}/>\n",
            HEAD_H - 8,
            h - 6,
            if *l == Lane::Middlebox { 1.2 } else { 2.0 },
            if *l == Lane::Middlebox {
                " stroke-dasharray=\"4 4\""
            } else {
                ""
            }
        ));
    }
    let mut y = HEAD_H;
    for s in &steps {
        let sh = height_of(s);
        match s {
            Step::Arrow(a) => svg_arrow(a, y, &mut out),
            Step::Silence { seconds, .. } | Step::Encrypted { seconds, .. } => {
                // A band across the lanes, the lanes broken (dotted) through it.
                let (x0, x1) = (CLIENT_X - 40, SERVER_X + 40);
                let (class, fill, words) = if matches!(s, Step::Encrypted { .. }) {
                    ("encrypted", "#f3eef8", ladder::encrypted_words(*seconds))
                } else {
                    ("silence", "#f1f1f1", ladder::silence_words(*seconds))
                };
                out.push_str(&format!(
                    "<g class=\"{class}\"><rect x=\"{x0}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" rx=\"3\"/>",
                    y + 3,
                    x1 - x0,
                    sh - 6
                ));
                for l in &lanes {
                    let x = lane_x(*l);
                    out.push_str(&format!(
                        "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#888\" stroke-width=\"2\" stroke-dasharray=\"2 4\"/>",
                        y + 3,
                        y + sh - 3
                    ));
                }
                out.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12.5\" font-style=\"italic\" font-weight=\"600\" fill=\"#444\">{}</text></g>\n",
                    (CLIENT_X + SERVER_X) / 2,
                    y + sh / 2 + 4,
                    esc(&words)
                ));
            }
            Step::Elided { events } => {
                out.push_str(&format!(
                    "<g class=\"elided\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#666\">{}</text></g>\n",
                    CLIENT_X + 3,
                    y + 2,
                    SERVER_X - CLIENT_X - 6,
                    sh - 4,
                    (CLIENT_X + SERVER_X) / 2,
                    y + sh / 2 + 4,
                    esc(&ladder::elided_words(*events))
                ));
            }
        }
        y += sh;
    }
    if steps.is_empty() {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#666\">(no packets with a time)</text>\n",
            (CLIENT_X + SERVER_X) / 2,
            HEAD_H + 16
        ));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_everything_that_could_be_markup() {
        assert_eq!(
            esc("<img src=x onerror='a'>&\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;"
        );
        assert_eq!(esc("a\u{1b}[31m"), "a\u{fffd}[31m");
    }
}
