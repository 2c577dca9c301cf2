//! The reports meant to be attached to a support case: `--format markdown` and `--format html`.
//!
//! - Markdown: golden files (insta) of real captures with their mail log, and the table and
//!   escaping rules of GitHub-flavoured Markdown. Accept a deliberate change with
//!   `INSTA_UPDATE=always cargo test --test report_formats` and review the diff.
//! - HTML: the file is loaded in a real headless Chromium with the network disabled: the
//!   screenshot must show a page with content, the DOM must hold a ladder diagram for every
//!   aborted connection, and the browser's net log must show no request made by the page (the
//!   browser's own background requests, which carry no page as their origin, are not the
//!   report's). Needs Debian's `chromium` (`apt-get install -y chromium`; CI installs it); set
//!   `ICIDTRACE_CHROMIUM` to use another binary and `ICIDTRACE_REPORT_KEEP=DIR` to keep the
//!   pages and screenshots for a look.
//! - The ladder: events in time order, silences marked, long conversations bounded.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use icidtrace::analyze::{AnalyzeOptions, analyze};
use icidtrace::report::ladder::{self, Kind, Lane, Step};
use icidtrace::report::{self, ConnectionReport, Report};
use icidtrace::smtp::SmtpEvent;
use icidtrace::types::Timestamp;
use icidtrace::verdict::{Initiator, Layer};

fn report(capture: &str, log: Option<&str>) -> Report {
    // Relative to the package root, where cargo runs integration tests.
    let opts = AnalyzeOptions {
        captures: vec![capture.to_string()],
        logs: log.map(|l| vec![l.into()]).unwrap_or_default(),
        log_lines: true,
        ..Default::default()
    };
    analyze(&opts).unwrap()
}

fn burst() -> Report {
    report(
        "captures/burst/capture.pcap",
        Some("captures/burst/mail_logs"),
    )
}

/// The version changes with every release; the golden files should not.
fn stable(text: String) -> String {
    text.replace(
        &format!("icidtrace {}", env!("CARGO_PKG_VERSION")),
        "icidtrace [version]",
    )
}

// ---------------------------------------------------------------------------------------------
// Markdown

#[test]
fn markdown_idle_timeout_with_log() {
    let r = report(
        "captures/idle-timeout/capture.pcap",
        Some("captures/idle-timeout/mail_logs"),
    );
    let md = report::markdown::render(&r);
    check_markdown(&r, &md);
    insta::assert_snapshot!(stable(md));
}

#[test]
fn markdown_burst_with_log() {
    let r = burst();
    let md = report::markdown::render(&r);
    check_markdown(&r, &md);
    insta::assert_snapshot!(stable(md));
}

#[test]
fn markdown_public_captures_are_well_formed() {
    for name in [
        "sv-smtp-errors.pcap",
        "zeek-smtp-starttls.pcap",
        "sv-firewall-131-smtp-quit-after-mail.pcap",
        "zeek-smtp-bdat-cmd-invalid.pcapng",
    ] {
        let r = report(&format!("../shared/captures/public/{name}"), None);
        let md = report::markdown::render(&r);
        check_markdown(&r, &md);
    }
}

/// Pipes in a Markdown table row that are not escaped.
fn cells(line: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for ch in line.chars() {
        match ch {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => n += 1,
            _ => escaped = false,
        }
    }
    n
}

/// What every Markdown report must have: a section with a ladder, the log lines and a
/// Wireshark filter for every aborted connection; tables whose rows all have the header's cell
/// count; code fences that close.
fn check_markdown(r: &Report, md: &str) {
    // Tables: every row of a table has as many cells as its header.
    let mut header: Option<usize> = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let n = cells(line);
            match header {
                None => header = Some(n),
                Some(h) => assert_eq!(n, h, "table row with another cell count: {line}"),
            }
        } else {
            header = None;
        }
    }
    // Fences: balanced.
    let fences = md.lines().filter(|l| l.starts_with("```")).count();
    assert_eq!(fences % 2, 0, "unbalanced code fences");
    // One verdict table row per connection.
    for c in &r.connections {
        assert!(
            md.lines().any(|l| l.starts_with(&format!("| {} | ", c.id))),
            "no verdict table row for connection {}",
            c.id
        );
    }
    for c in r.connections.iter().filter(|c| ladder::has_section(c)) {
        let head = format!("### #{} ", c.id);
        let start = md
            .find(&head)
            .unwrap_or_else(|| panic!("no section for connection {}", c.id));
        let rest = &md[start + head.len()..];
        let section = &rest[..rest.find("\n### #").unwrap_or(rest.len())];
        assert!(section.contains("```text\n"), "no ladder for #{}", c.id);
        assert!(
            section.contains("client"),
            "ladder without lanes, #{}",
            c.id
        );
        assert!(
            section.contains(&c.wireshark_filter),
            "no Wireshark filter for #{}",
            c.id
        );
        assert!(section.contains("**Next:**"), "no next steps for #{}", c.id);
        if let Some(m) = &c.log_match {
            for l in m
                .log_lines
                .iter()
                .filter(|l| !l.text.contains(char::is_control))
            {
                assert!(
                    section.contains(&l.text),
                    "log line {} missing from #{}",
                    l.line,
                    c.id
                );
            }
        }
    }
    for c in r
        .connections
        .iter()
        .filter(|c| c.verdict.layer != Layer::None)
    {
        assert!(ladder::has_section(c), "aborted #{} has no section", c.id);
    }
}

#[test]
fn markdown_escapes_what_the_sender_wrote() {
    let mut r = burst();
    let c = r
        .connections
        .iter_mut()
        .find(|c| c.verdict.layer == Layer::Network)
        .unwrap();
    c.verdict.reason = "a | b <b>bold</b> *x* [link](javascript:alert(1))".into();
    c.verdict.evidence[0].fact = "reply `code` | pipe <script>alert(1)</script>".into();
    if let Some(m) = c.log_match.as_mut() {
        m.log_lines[0].text = "```\n# not a heading".into();
    }
    let md = report::markdown::render(&r);
    check_markdown(&r, &md);
    assert!(!md.contains("<b>bold</b>"));
    assert!(!md.contains("<script>"));
    assert!(md.contains(r"a \| b \<b\>bold\</b\> \*x\* \[link\](javascript:alert(1))"));
    // A log line with a fence in it does not close the block around it, and its line end
    // does not start a new line.
    assert!(md.contains("````text\n"));
    assert!(md.contains("```\u{fffd}# not a heading"));
}

// ---------------------------------------------------------------------------------------------
// The ladder

#[test]
fn ladder_merges_tcp_and_smtp_in_time_order_and_marks_the_silence() {
    let r = report(
        "captures/idle-timeout/capture.pcap",
        Some("captures/idle-timeout/mail_logs"),
    );
    let c = &r.connections[0];
    let steps = ladder::ladder(c);
    let arrows: Vec<&ladder::Arrow> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Arrow(a) => Some(a),
            _ => None,
        })
        .collect();
    let labels: Vec<&str> = arrows.iter().map(|a| a.label.as_str()).collect();
    assert_eq!(labels[0], "SYN");
    assert_eq!(labels[1], "SYN, ACK");
    assert!(labels[2].starts_with("220 "));
    assert_eq!(labels[3], "EHLO mta1.example.net");
    assert!(
        arrows
            .windows(2)
            .all(|w| w[0].at <= w[1].at && w[0].seconds <= w[1].seconds)
    );
    assert_eq!(arrows[0].seconds, 0.0);
    // Client events go right, server events left.
    for a in &arrows {
        match a.kind {
            Kind::Command | Kind::Data => assert_eq!((a.from, a.to), (Lane::Client, Lane::Server)),
            Kind::Reply | Kind::ErrorReply | Kind::Unprompted => {
                assert_eq!((a.from, a.to), (Lane::Server, Lane::Client))
            }
            _ => {}
        }
    }
    // The 421 after the silence, then the server's FIN, then the client's.
    let silence = steps
        .iter()
        .position(|s| matches!(s, Step::Silence { .. }))
        .expect("the 3 s of silence is marked");
    let Step::Silence { seconds, rows } = steps[silence] else {
        unreachable!()
    };
    assert!((3.0..3.1).contains(&seconds), "{seconds}");
    assert!(rows >= 1);
    let Step::Arrow(after) = &steps[silence + 1] else {
        panic!("an arrow follows the silence")
    };
    assert_eq!(after.kind, Kind::Unprompted);
    assert!(after.label.starts_with("421 Timed out"));
    let tail: Vec<(Lane, Kind)> = arrows
        .iter()
        .rev()
        .take(2)
        .map(|a| (a.from, a.kind))
        .collect();
    assert_eq!(
        tail,
        vec![(Lane::Client, Kind::Fin), (Lane::Server, Kind::Fin)]
    );
}

#[test]
fn ladder_does_not_call_encrypted_traffic_a_silence() {
    let r = report("../shared/captures/public/zeek-smtp-starttls.pcap", None);
    let steps = ladder::ladder(&r.connections[0]);
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Encrypted { seconds, .. } if *seconds > 7.0)),
        "the 7.4 s of TLS after STARTTLS is drawn as encrypted traffic"
    );
    assert!(!steps.iter().any(|s| matches!(s, Step::Silence { .. })));
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Arrow(a) if a.kind == Kind::Tls))
    );
}

#[test]
fn ladder_of_a_long_conversation_is_bounded() {
    let r = burst();
    let mut c: ConnectionReport = r.connections[0].clone();
    let start = c.first_seen;
    let session = &mut c.smtp.session;
    session.events.clear();
    for i in 0..500i64 {
        session.events.push(SmtpEvent::Command {
            at: Timestamp(start.0 + 1_000_000 * (i + 1)),
            verb: "NOOP".into(),
            arg: None,
        });
    }
    // A long silence in the middle (elided) and one at the end (drawn).
    session.events.push(SmtpEvent::Command {
        at: Timestamp(start.0 + 1_000_000 * 600 + 300 * 1_000_000_000),
        verb: "QUIT".into(),
        arg: None,
    });
    session.events_dropped = 1234;
    c.tcp.from_client.first_fin = None;
    c.tcp.from_server.first_fin = None;
    c.tcp.from_client.first_rst = None;
    c.tcp.from_server.first_rst = None;
    let steps = ladder::ladder(&c);
    let arrows = steps.iter().filter(|s| matches!(s, Step::Arrow(_))).count();
    assert_eq!(arrows, 2 * ladder::ARROWS_EACH_END);
    let elided: Vec<u64> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Elided { events } => Some(*events),
            _ => None,
        })
        .collect();
    // 2 SYNs + 501 events - 80 drawn, plus the 1234 the analysis did not keep.
    assert_eq!(elided, vec![503 - 80 + 1234]);
    assert!(matches!(
        steps[steps.len() - 2],
        Step::Silence { seconds, rows: 5 } if seconds > 299.0
    ));
    // Both printers draw it.
    let mut r2 = r.clone();
    c.verdict.layer = Layer::Network;
    r2.connections = vec![c];
    assert!(report::markdown::render(&r2).contains("events not shown"));
    assert!(report::html::render(&r2).contains("events not shown"));
}

#[test]
fn ladder_draws_a_middlebox_column_when_the_verdict_blames_one() {
    let mut r = burst();
    let c = r
        .connections
        .iter_mut()
        .find(|c| c.verdict.layer == Layer::Network)
        .unwrap();
    c.verdict.initiator = Initiator::Middlebox;
    let c = c.clone();
    assert_eq!(
        ladder::lanes(&c),
        vec![Lane::Client, Lane::Middlebox, Lane::Server]
    );
    let steps = ladder::ladder(&c);
    let rst = steps
        .iter()
        .find_map(|s| match s {
            Step::Arrow(a) if a.kind == Kind::Rst => Some(a),
            _ => None,
        })
        .unwrap();
    assert_eq!((rst.from, rst.to), (Lane::Middlebox, Lane::Server));
    let md = report::markdown::render(&r);
    assert!(md.contains("middlebox"));
    let html = report::html::render(&r);
    assert!(html.contains(">middlebox</text>"));
}

// ---------------------------------------------------------------------------------------------
// HTML: static checks

/// The values of `src`, `href` and similar attributes in the tags of `html` (the contents of
/// `<script>` and `<style>` are skipped: they are checked on their own).
fn url_attributes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while let Some(off) = lower[i..].find('<') {
        let start = i + off;
        let Some(len) = lower[start..].find('>') else {
            break;
        };
        let tag = &lower[start..start + len + 1];
        for name in [
            " src=",
            " href=",
            " xlink:href=",
            " srcset=",
            " action=",
            " formaction=",
            " poster=",
            " data=",
            " background=",
        ] {
            let mut from = 0;
            while let Some(p) = tag[from..].find(name) {
                let v = &tag[from + p + name.len()..];
                let value = match v.chars().next() {
                    Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or(""),
                    _ => v.split([' ', '>']).next().unwrap_or(""),
                };
                out.push(value.to_string());
                from += p + name.len();
            }
        }
        i = start + len + 1;
        for raw in ["<script", "<style"] {
            if tag.starts_with(raw) {
                let close = format!("</{}", &raw[1..]);
                i = lower[i..].find(&close).map_or(lower.len(), |p| i + p);
            }
        }
    }
    out
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(a) = rest.find(open) {
        let after = &rest[a + open.len()..];
        let b = after.find(close).unwrap_or(after.len());
        out.push(&after[..b]);
        rest = &after[b..];
    }
    out
}

/// A self-contained page: no URL attribute leaves the page, no CSS or script fetches.
fn check_html_static(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(html.contains("<link rel=\"icon\" href=\"data:,\">"));
    assert!(html.contains("@media print"));
    for v in url_attributes(html) {
        assert!(
            v.starts_with('#') || v.starts_with("data:"),
            "an attribute points outside the page: {v:?}"
        );
        assert!(!v.contains("//"), "an attribute holds a URL: {v:?}");
    }
    for css in between(html, "<style>", "</style>") {
        assert!(!css.contains("url("), "CSS with url()");
        assert!(!css.contains("@import"), "CSS with @import");
        assert!(!css.contains("@font-face"), "CSS with a web font");
    }
    for js in between(html, "<script>", "</script>") {
        for bad in [
            "fetch",
            "XMLHttpRequest",
            "import(",
            "http",
            "//",
            ".src",
            "WebSocket",
        ] {
            assert!(!js.contains(bad), "script with {bad}");
        }
    }
    assert!(!html.contains("<img"), "an image element");
    assert!(!html.contains("<iframe"), "an iframe");
    assert!(!html.contains("<script src"), "an external script");
    // The verdict table and the ladders are in the file itself (JavaScript off is fine).
    assert!(html.contains("<table id=\"verdict-table\""));
}

#[test]
fn html_escapes_what_the_sender_wrote() {
    let mut r = burst();
    let evil_reply = "<img src=\"http://evil.example/x.png\" onerror=\"alert(1)\">";
    let evil_log = "</pre><script src=\"https://evil.example/x.js\"></script>";
    let c = r
        .connections
        .iter_mut()
        .find(|c| c.verdict.layer == Layer::Network)
        .unwrap();
    c.smtp.session.events.push(SmtpEvent::Reply {
        at: c.last_seen,
        code: Some(554),
        text: evil_reply.into(),
    });
    c.verdict.reason = format!("reason {evil_reply}");
    c.verdict.evidence[0].fact = format!("fact {evil_reply}");
    c.log_match.as_mut().unwrap().log_lines[0].text = evil_log.into();
    let html = report::html::render(&r);
    check_html_static(&html);
    assert!(!html.contains(evil_reply));
    assert!(!html.contains(evil_log));
    assert!(html.contains("&lt;img src=&quot;http://evil.example/x.png&quot;"));
    assert!(html.contains("&lt;/pre&gt;&lt;script src=&quot;https://evil.example/x.js"));
    // Even so, the browser fetches nothing and builds no image or script from it.
    let page = Chromium::get().load(&html, "escaping");
    assert!(!page.dom.contains("<img"));
    assert!(!page.dom.contains("evil.example/x.js\"></script>"));
    page.assert_no_page_requests();
}

// ---------------------------------------------------------------------------------------------
// HTML in a real browser

struct Chromium {
    bin: PathBuf,
}

/// What Chromium made of a page.
struct Loaded {
    dom: String,
    png: Vec<u8>,
    /// Net logs of the screenshot run and of the DOM run.
    net_logs: Vec<serde_json::Value>,
    name: String,
}

const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

impl Chromium {
    fn get() -> &'static Chromium {
        static C: OnceLock<Chromium> = OnceLock::new();
        C.get_or_init(|| {
            let bin = std::env::var_os("ICIDTRACE_CHROMIUM")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
            if !bin.exists() {
                panic!(
                    "the HTML report tests load the report in a real headless Chromium, and there \
                     is none at {}: install it with `apt-get install -y chromium` (CI's .ci/run \
                     does), or set ICIDTRACE_CHROMIUM to a Chromium binary{}",
                    bin.display(),
                    if std::env::var_os("CI").is_some() {
                        " (CI is set: this run should have installed it)"
                    } else {
                        ""
                    }
                );
            }
            Chromium { bin }
        })
    }

    /// Runs Chromium headless with the network disabled on `url`, with `extra` flags; returns
    /// its standard output.
    fn run(&self, dir: &Path, extra: &[String], url: &str) -> String {
        let profile = tempfile::tempdir_in(dir).unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            stdout.read_to_string(&mut s).ok();
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            stderr.read_to_string(&mut s).ok();
            s
        });
        let started = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if started.elapsed() > CHROMIUM_TIMEOUT {
                child.kill().ok();
                child.wait().ok();
                panic!("Chromium did not finish within {CHROMIUM_TIMEOUT:?} on {url}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = out_reader.join().unwrap();
        let err = err_reader.join().unwrap();
        assert!(
            status.success(),
            "Chromium failed ({status}) on {url}:\n{err}"
        );
        out
    }

    /// Writes `html` to a file and loads it twice: a 1200×3000 screenshot, and the DOM after
    /// scripts ran; both runs with a net log.
    fn load(&self, html: &str, name: &str) -> Loaded {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("report.html");
        std::fs::write(&page, html).unwrap();
        let url = format!("file://{}", page.display());
        let png = dir.path().join("shot.png");
        let net1 = dir.path().join("net-shot.json");
        let net2 = dir.path().join("net-dom.json");
        self.run(
            dir.path(),
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1200,3000".into(),
                format!("--log-net-log={}", net1.display()),
            ],
            &url,
        );
        let dom = self.run(
            dir.path(),
            &[
                "--dump-dom".into(),
                format!("--log-net-log={}", net2.display()),
            ],
            &url,
        );
        let png_bytes = std::fs::read(&png)
            .unwrap_or_else(|e| panic!("no screenshot of {name} ({}): {e}", png.display()));
        let net_logs = [net1, net2]
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p)
                    .unwrap_or_else(|e| panic!("no net log {}: {e}", p.display()));
                serde_json::from_str(text.trim_end().trim_end_matches(','))
                    .unwrap_or_else(|e| panic!("net log {} is not JSON: {e}", p.display()))
            })
            .collect();
        if let Some(keep) = std::env::var_os("ICIDTRACE_REPORT_KEEP") {
            let keep = PathBuf::from(keep);
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::write(keep.join(format!("{name}.html")), html).unwrap();
            std::fs::write(keep.join(format!("{name}.png")), &png_bytes).unwrap();
        }
        Loaded {
            dom,
            png: png_bytes,
            net_logs,
            name: name.into(),
        }
    }

    /// The screenshot of an empty page, for comparison: its PNG size and pixels.
    fn blank() -> &'static (usize, Png) {
        static B: OnceLock<(usize, Png)> = OnceLock::new();
        B.get_or_init(|| {
            let page = Chromium::get().load("<!DOCTYPE html><title>blank</title>", "blank");
            (page.png.len(), Png::decode(&page.png))
        })
    }
}

impl Loaded {
    /// Requests the page made (as opposed to the browser's own background traffic): URL
    /// requests whose network isolation key or site is the page's `file://` origin, to anything
    /// but `file:` or `data:`.
    fn page_requests(&self) -> Vec<String> {
        let mut out = Vec::new();
        for log in &self.net_logs {
            for e in log["events"].as_array().into_iter().flatten() {
                let p = &e["params"];
                let Some(url) = p["url"].as_str() else {
                    continue;
                };
                if url.starts_with("file:") || url.starts_with("data:") {
                    continue;
                }
                let from_page = ["network_isolation_key", "site_for_cookies", "initiator"]
                    .iter()
                    .any(|k| p[*k].as_str().is_some_and(|v| v.contains("file://")));
                if from_page {
                    out.push(url.to_string());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn assert_no_page_requests(&self) {
        let requests = self.page_requests();
        assert!(
            requests.is_empty(),
            "the {} report made network requests: {requests:?}",
            self.name
        );
    }

    /// The screenshot is a PNG with content: much more ink than an empty page.
    fn assert_screenshot_has_content(&self) -> Png {
        assert!(
            self.png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "the screenshot of {} is not a PNG",
            self.name
        );
        let png = Png::decode(&self.png);
        assert_eq!((png.width, png.height), (1200, 3000), "screenshot size");
        let (blank_size, blank) = Chromium::blank();
        assert!(blank.ink < 0.001, "the blank page has ink: {}", blank.ink);
        assert!(
            self.png.len() > 4 * blank_size,
            "the screenshot of {} ({} bytes) is hardly bigger than a blank page's",
            self.name,
            self.png.len()
        );
        assert!(
            png.ink > 0.02,
            "the screenshot of {} is nearly empty ({:.3} of the pixels not white)",
            self.name,
            png.ink
        );
        png
    }

    /// Every aborted (or disagreeing) connection has its section and its ladder diagram, with
    /// an arrow in it, in the DOM the browser built.
    fn assert_ladders(&self, r: &Report) {
        assert!(self.dom.contains("<h2>Verdicts</h2>"), "not the report");
        // The inline script ran (it adds the table's filter) without breaking the page.
        assert!(
            self.dom.contains("class=\"tools\""),
            "the script did not run"
        );
        let svgs = self.dom.matches("<svg class=\"ladder\"").count();
        let sections: Vec<&ConnectionReport> = r
            .connections
            .iter()
            .filter(|c| ladder::has_section(c))
            .collect();
        assert_eq!(svgs, sections.len(), "one ladder per section");
        for c in &r.connections {
            if c.verdict.layer == Layer::None && !ladder::has_section(c) {
                continue;
            }
            let sec = format!("<section class=\"conn\" id=\"conn-{}\">", c.id);
            let start = self
                .dom
                .find(&sec)
                .unwrap_or_else(|| panic!("no section for #{} in the DOM", c.id));
            let rest = &self.dom[start..];
            let end = rest.find("</section>").unwrap();
            let section = &rest[..end];
            let svg = format!("<svg class=\"ladder\" data-connection=\"{}\"", c.id);
            assert!(
                section.contains(&svg),
                "no svg.ladder for aborted connection #{}",
                c.id
            );
            assert!(
                section.contains("<line") && section.contains("<polygon"),
                "the ladder of #{} has no arrows",
                c.id
            );
        }
    }
}

/// Just enough of PNG to count pixels: 8-bit RGB or RGBA, not interlaced (what Chromium
/// writes).
struct Png {
    width: u32,
    height: u32,
    /// Share of pixels that are not (nearly) white.
    ink: f64,
    /// Pixels close to the ladders' arrow blue (#1f4e9c).
    arrow_blue: u64,
}

impl Png {
    fn decode(bytes: &[u8]) -> Png {
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        let mut pos = 8;
        let (mut width, mut height, mut channels) = (0u32, 0u32, 0usize);
        let mut idat = Vec::new();
        while pos + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            let kind = &bytes[pos + 4..pos + 8];
            let data = &bytes[pos + 8..pos + 8 + len];
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                    height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                    assert_eq!(data[8], 8, "bit depth");
                    channels = match data[9] {
                        2 => 3,
                        6 => 4,
                        t => panic!("PNG colour type {t}"),
                    };
                    assert_eq!(data[12], 0, "interlaced PNG");
                }
                b"IDAT" => idat.extend_from_slice(data),
                b"IEND" => break,
                _ => {}
            }
            pos += 12 + len;
        }
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..])
            .read_to_end(&mut raw)
            .expect("PNG data inflates");
        let stride = width as usize * channels;
        assert_eq!(raw.len(), (stride + 1) * height as usize, "PNG data size");
        let mut prev = vec![0u8; stride];
        let mut line = vec![0u8; stride];
        let (mut ink, mut blue) = (0u64, 0u64);
        for y in 0..height as usize {
            let row = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
            let filter = row[0];
            for x in 0..stride {
                let a = if x >= channels { line[x - channels] } else { 0 };
                let b = prev[x];
                let c = if x >= channels { prev[x - channels] } else { 0 };
                let v = row[1 + x];
                line[x] = match filter {
                    0 => v,
                    1 => v.wrapping_add(a),
                    2 => v.wrapping_add(b),
                    3 => v.wrapping_add(((a as u16 + b as u16) / 2) as u8),
                    4 => {
                        let p = a as i16 + b as i16 - c as i16;
                        let (pa, pb, pc) = (
                            (p - a as i16).abs(),
                            (p - b as i16).abs(),
                            (p - c as i16).abs(),
                        );
                        let pred = if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        };
                        v.wrapping_add(pred)
                    }
                    f => panic!("PNG filter {f}"),
                };
            }
            for px in line.chunks(channels) {
                if px[..3].iter().any(|&v| v < 235) {
                    ink += 1;
                }
                let near = |v: u8, t: u8| v.abs_diff(t) <= 28;
                if near(px[0], 0x1f) && near(px[1], 0x4e) && near(px[2], 0x9c) {
                    blue += 1;
                }
            }
            std::mem::swap(&mut prev, &mut line);
        }
        Png {
            width,
            height,
            ink: ink as f64 / (width as f64 * height as f64),
            arrow_blue: blue,
        }
    }
}

fn check_html_in_chromium(r: &Report, name: &str) -> Png {
    let html = report::html::render(r);
    check_html_static(&html);
    let page = Chromium::get().load(&html, name);
    page.assert_no_page_requests();
    page.assert_ladders(r);
    page.assert_screenshot_has_content()
}

#[test]
fn html_burst_with_log_in_chromium() {
    let r = burst();
    assert!(r.connections.iter().any(|c| c.verdict.layer != Layer::None));
    check_html_in_chromium(&r, "burst");
}

#[test]
fn html_public_sv_smtp_errors_in_chromium() {
    let r = report("../shared/captures/public/sv-smtp-errors.pcap", None);
    assert!(r.connections.iter().all(|c| c.verdict.layer != Layer::None));
    let png = check_html_in_chromium(&r, "sv-smtp-errors");
    // Every connection is aborted: the first ladders are within the first 3000 pixels, and
    // their client arrows are drawn.
    assert!(png.arrow_blue > 200, "no ladder arrows in the screenshot");
}

#[test]
fn html_public_starttls_and_bdat_in_chromium() {
    for name in [
        "zeek-smtp-starttls.pcap",
        "zeek-smtp-bdat-cmd-invalid.pcapng",
    ] {
        let r = report(&format!("../shared/captures/public/{name}"), None);
        check_html_in_chromium(&r, name);
    }
}

/// The network check itself: a page that does fetch things is caught.
#[test]
fn the_network_check_catches_a_page_that_fetches() {
    let page = Chromium::get().load(
        "<!DOCTYPE html><p>x</p><img src=\"http://example.invalid/x.png\">\
         <link rel=\"stylesheet\" href=\"https://cdn.example.invalid/a.css\">",
        "fetching",
    );
    let requests = page.page_requests();
    assert!(
        requests.contains(&"http://example.invalid/x.png".to_string()),
        "{requests:?}"
    );
    assert!(
        requests.contains(&"https://cdn.example.invalid/a.css".to_string()),
        "{requests:?}"
    );
}
