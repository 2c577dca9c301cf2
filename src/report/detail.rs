//! One connection's story, for the terminal (`--connection CLIENT:PORT`, `--icid N`): who,
//! when, the verdict with its reasoning, a timeline of the TCP and SMTP steps with relative
//! times and the silences between them, the mail log's lines, and the raw TCP facts.
//!
//! Contract: a pure function of the [`Report`] and the chosen connections; it computes nothing
//! new (the timeline only merges and orders what the report holds).

use super::{ConnectionReport, Report};
use crate::capture::FrameRef;
use crate::correlate::{Agreement, Confidence};
use crate::smtp::{SmtpAnomaly, SmtpEvent};
use crate::tcp::{CloseEvent, SideStats, TcpAnomaly};
use crate::types::{Side, Timestamp};

/// A silence at least this long between two timeline steps gets a line of its own.
pub const SILENCE_SECS: f64 = 1.0;

/// The stories of the connections at `indices` (into `report.connections`), one after the
/// other, folded to `width` columns.
pub fn render(report: &Report, indices: &[usize], width: u16) -> String {
    let width = usize::from(width).max(40);
    let mut out = String::new();
    if indices.len() > 1 {
        out.push_str(&format!(
            "{} connections match (the same client port used again, or an ICID in the logs of \
             several appliances); each in turn.\n\n",
            indices.len()
        ));
    }
    for (k, &i) in indices.iter().enumerate() {
        let Some(c) = report.connections.get(i) else {
            continue;
        };
        if k > 0 {
            out.push('\n');
            out.push_str(&"═".repeat(width));
            out.push_str("\n\n");
        }
        connection(&mut out, report, c, width);
    }
    out
}

fn clock_time(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

fn rel(t: Timestamp, origin: Timestamp) -> String {
    format!("+{:.6}", t.seconds_since(origin))
}

/// `text` folded to `width`, the first line after `first`, the others indented by `indent`.
fn folded(out: &mut String, first: &str, text: &str, indent: usize, width: usize) {
    let rest_avail = width.saturating_sub(indent).max(20);
    let first_avail = width.saturating_sub(first.chars().count()).max(20);
    let mut line = String::new();
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        let len = line.chars().count();
        let avail = if lines.is_empty() {
            first_avail
        } else {
            rest_avail
        };
        if len > 0 && len + 1 + word.chars().count() > avail {
            lines.push(std::mem::take(&mut line));
        } else if len > 0 {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    for (n, l) in lines.iter().enumerate() {
        if n == 0 {
            out.push_str(first);
        } else {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(l);
        out.push('\n');
    }
}

fn heading(out: &mut String, title: &str) {
    out.push('\n');
    out.push_str(title);
    out.push('\n');
}

fn frame_words(f: FrameRef, report: &Report) -> String {
    if report.captures.files.len() > 1 {
        let name = report
            .captures
            .files
            .get(usize::from(f.file))
            .map_or("?", |x| x.name.as_str());
        format!("frame {} of {name}", f.number)
    } else {
        format!("frame {}", f.number)
    }
}

fn frames_words(first: FrameRef, last: FrameRef, report: &Report) -> String {
    if first.file == last.file && report.captures.files.len() <= 1 {
        format!("frames {}–{}", first.number, last.number)
    } else {
        format!(
            "{} to {}",
            frame_words(first, report),
            frame_words(last, report)
        )
    }
}

fn close_words(kind: &str, e: &CloseEvent, report: &Report) -> String {
    format!(
        "{kind} ({}, TTL {}{})",
        frame_words(e.frame, report),
        e.ttl,
        e.ip_id.map(|i| format!(", IP ID {i}")).unwrap_or_default()
    )
}

fn connection(out: &mut String, report: &Report, c: &ConnectionReport, width: usize) {
    let origin = c.first_seen;
    folded(
        out,
        "",
        &format!(
            "Connection {} of {}: {} → {}",
            c.id,
            // Of every connection read: ids number them all, also when a selection shows fewer.
            report.summary.connections,
            c.client,
            c.server
        ),
        2,
        width,
    );
    let last = if c.first_seen.to_datetime().date_naive() == c.last_seen.to_datetime().date_naive()
    {
        c.last_seen.to_datetime().format("%H:%M:%S%.6f").to_string()
    } else {
        clock_time(c.last_seen)
    };
    folded(
        out,
        "  ",
        &format!(
            "{} – {last} UTC ({:.3} s), {}",
            clock_time(c.first_seen),
            c.duration_seconds,
            frames_words(c.tcp.first_frame, c.tcp.last_frame, report)
        ),
        4,
        width,
    );
    match (&c.icid, &c.log_match) {
        (Some(icid), Some(m)) => {
            let mids = match c.mids.as_slice() {
                [] => "no MID".to_string(),
                [one] => format!("MID {one}"),
                many => format!(
                    "MIDs {}",
                    many.iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let close = m
                .close_delta_seconds
                .map(|d| format!(", close Δ {d:+.1} s"))
                .unwrap_or_default();
            folded(
                out,
                "  ",
                &format!(
                    "ICID {icid}, {mids} ({}; match confidence {}, start Δ {:+.1} s{close})",
                    m.appliance,
                    confidence_words(m.confidence),
                    m.start_delta_seconds
                ),
                4,
                width,
            );
        }
        _ if report.logs.is_some() => out.push_str("  no ICID in the mail log matched\n"),
        _ => {}
    }

    // The verdict and why.
    heading(out, "Verdict");
    let v = &c.verdict;
    let rows = [
        ("layer", v.layer.as_str().to_string()),
        ("initiator", v.initiator.as_str().to_string()),
        ("cause", v.cause.as_str().to_string()),
        ("phase", v.phase.as_str().to_string()),
        (
            "messages",
            format!(
                "{} completed of {} started",
                c.smtp.completed, c.smtp.transactions
            ),
        ),
        ("reason", v.reason.clone()),
    ];
    for (k, val) in rows {
        folded(out, &format!("  {k:<10} "), &val, 13, width);
    }
    let log_words = match (&c.log_outcome, &c.log_match) {
        (Some(outcome), Some(m)) => {
            let (mark, word) = match m.agreement {
                Agreement::Agrees => ("✓", "agrees with the wire"),
                Agreement::Disagrees => ("✗", "disagrees with the wire"),
                Agreement::Unknown => ("?", "one side cannot tell"),
            };
            let why = m
                .agreement_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            Some(format!(
                "{} {mark} — the log {word}{why}",
                outcome.replace('_', " ")
            ))
        }
        _ if report.logs.is_some() => Some("no matching ICID".to_string()),
        _ => None,
    };
    if let Some(w) = log_words {
        folded(out, &format!("  {:<10} ", "log"), &w, 13, width);
    }
    if let Some(f) = c.log_match.as_ref().and_then(|m| m.filled_in.as_ref()) {
        folded(
            out,
            &format!("  {:<10} ", "from log"),
            &format!(
                "{} / {} / {} / {}: {}",
                f.layer.as_str(),
                f.initiator.as_str(),
                f.cause.as_str(),
                f.phase.as_str(),
                f.reason
            ),
            13,
            width,
        );
    }

    if !v.evidence.is_empty() {
        heading(out, "Evidence");
        for e in &v.evidence {
            let at = e.at.map_or_else(|| "—".to_string(), |t| rel(t, origin));
            folded(out, &format!("  {at:>12}  "), &e.fact, 16, width);
        }
    }
    if !v.findings.is_empty() {
        heading(out, "Findings");
        for f in &v.findings {
            let at = f.at.map_or_else(|| "—".to_string(), |t| rel(t, origin));
            let side = f.side.map(|s| format!("{s} ")).unwrap_or_default();
            folded(
                out,
                &format!("  {at:>12}  "),
                &format!("{side}{}: {}", f.kind.as_str(), f.detail),
                16,
                width,
            );
        }
    }
    if !v.next_steps.is_empty() {
        heading(out, "Next steps");
        folded(out, "  ", &v.next_steps, 2, width);
    }

    heading(
        out,
        &format!(
            "Timeline (seconds after the first packet, {} UTC)",
            clock_time(origin)
        ),
    );
    timeline(out, report, c, width);

    if let Some(m) = &c.log_match {
        heading(out, &format!("Mail log ({})", m.appliance));
        if m.log_lines.is_empty() {
            out.push_str("  (no lines kept)\n");
        }
        let place = |l: &crate::maillog::excerpt::LogLine| {
            let file = std::path::Path::new(&l.file)
                .file_name()
                .map_or(l.file.clone(), |f| f.to_string_lossy().into_owned());
            format!("{file}:{}", l.line)
        };
        let col = m
            .log_lines
            .iter()
            .map(|l| place(l).chars().count())
            .max()
            .unwrap_or(0);
        for l in &m.log_lines {
            folded(
                out,
                &format!("  {:<col$}  ", place(l)),
                &l.text,
                col + 6,
                width,
            );
        }
    }

    heading(out, "TCP");
    for side in [Side::Client, Side::Server] {
        folded(
            out,
            &format!("  {:<7} ", side.as_str()),
            &side_words(c.tcp.side(side)),
            10,
            width,
        );
    }
    if !c.tcp.handshake_seen {
        out.push_str("  the handshake is not in the capture (it started before the capture)\n");
    }
    folded(out, "  filter  ", &c.wireshark_filter, 10, width);
}

fn confidence_words(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "high",
        Confidence::Medium => "medium",
        Confidence::Low => "low",
    }
}

fn side_words(s: &SideStats) -> String {
    let mut w = vec![
        format!("{} packets", s.packets),
        format!("{} payload bytes", s.payload_bytes),
    ];
    match (s.ttl_min, s.ttl_max) {
        (Some(a), Some(b)) if a == b => w.push(format!("TTL {a}")),
        (Some(a), Some(b)) => w.push(format!("TTL {a}–{b}")),
        _ => {}
    }
    if s.retransmissions > 0 {
        w.push(format!("{} retransmissions", s.retransmissions));
    }
    if s.zero_windows > 0 {
        w.push(format!("{} zero windows", s.zero_windows));
    }
    if s.rst_packets > 0 {
        w.push(format!("{} RST", s.rst_packets));
    }
    if s.gap_bytes > 0 {
        w.push(format!("{} bytes missing from the capture", s.gap_bytes));
    }
    if s.snaplen_cut_bytes > 0 {
        w.push(format!(
            "{} bytes cut by the snapshot length",
            s.snaplen_cut_bytes
        ));
    }
    if s.packets_after_rst > 0 {
        w.push(format!("{} packets after its own RST", s.packets_after_rst));
    }
    w.join(", ")
}

/// One line of the timeline.
struct Step {
    at: Timestamp,
    side: Option<Side>,
    text: String,
}

fn timeline(out: &mut String, report: &Report, c: &ConnectionReport, width: usize) {
    let tcp = &c.tcp;
    let session = &c.smtp.session;
    let mut steps: Vec<Step> = Vec::new();
    if let Some(t) = tcp.from_client.syn_at {
        steps.push(Step {
            at: t,
            side: Some(Side::Client),
            text: "SYN".into(),
        });
    }
    if let Some(t) = tcp.from_server.syn_at {
        steps.push(Step {
            at: t,
            side: Some(Side::Server),
            text: "SYN-ACK".into(),
        });
    }
    if tcp.from_client.syn_at.is_none() && tcp.from_server.syn_at.is_none() {
        steps.push(Step {
            at: tcp.first_seen,
            side: None,
            text: "first packet (the capture starts inside the connection)".into(),
        });
    }
    // The conversation, with a marker where the middle was not kept.
    let kept_head = if session.events_dropped > 0 {
        crate::smtp::EVENTS_KEPT.min(session.events.len())
    } else {
        usize::MAX
    };
    for (n, e) in session.events.iter().enumerate() {
        if n == kept_head {
            steps.push(Step {
                at: e.at(),
                side: None,
                text: format!("… {} SMTP steps not kept …", session.events_dropped),
            });
        }
        let (side, text) = match e {
            SmtpEvent::Command { verb, arg, .. } => (Some(Side::Client), command_words(verb, arg)),
            SmtpEvent::Reply { code, text, .. } => (
                Some(Side::Server),
                match code {
                    Some(c) => format!("{c} {text}").trim_end().to_string(),
                    None => format!("(no reply code) {text}"),
                },
            ),
            SmtpEvent::EndOfData { bytes, .. } => (
                Some(Side::Client),
                format!("end of message data ({bytes} bytes)"),
            ),
        };
        steps.push(Step {
            at: e.at(),
            side,
            text,
        });
    }
    if let Some(tls) = &session.tls {
        for (side, d) in [(Side::Client, &tls.client), (Side::Server, &tls.server)] {
            if let Some(t) = d.last_record_at {
                steps.push(Step {
                    at: t,
                    side: Some(side),
                    text: format!(
                        "last TLS record (encrypted: {} handshake, {} application data records, \
                         {} bytes{})",
                        d.handshake_records,
                        d.application_data_records,
                        d.application_data_bytes,
                        if d.alert_records > 0 {
                            format!(", {} alerts", d.alert_records)
                        } else {
                            String::new()
                        }
                    ),
                });
            }
            if let Some(t) = d.first_alert_at {
                steps.push(Step {
                    at: t,
                    side: Some(side),
                    text: "TLS alert (a close_notify ends TLS properly)".into(),
                });
            }
        }
    }
    for a in &tcp.anomalies {
        let (at, side, text) = match a {
            TcpAnomaly::MidstreamStart { at, .. } => {
                (*at, None, "capture starts mid-stream".to_string())
            }
            TcpAnomaly::Gap {
                side, at, bytes, ..
            } => (
                *at,
                Some(*side),
                format!("{bytes} bytes missing from the capture"),
            ),
            TcpAnomaly::OverlapConflict { side, at, .. } => (
                *at,
                Some(*side),
                "a retransmission carried different bytes".to_string(),
            ),
            TcpAnomaly::BufferFull {
                side,
                at,
                dropped_bytes,
                ..
            } => (
                *at,
                Some(*side),
                format!("{dropped_bytes} out-of-order bytes dropped"),
            ),
            TcpAnomaly::SnaplenCut { side, at, .. } => (
                *at,
                Some(*side),
                "payload cut by the snapshot length".to_string(),
            ),
        };
        steps.push(Step { at, side, text });
    }
    for a in &session.anomalies {
        let s = match a {
            SmtpAnomaly::LineTooLong { side, at } => {
                Some((*at, Some(*side), "line too long (rest skipped)".to_string()))
            }
            SmtpAnomaly::CommandBeforeBanner { at } => Some((
                *at,
                Some(Side::Client),
                "command sent before the banner".to_string(),
            )),
            SmtpAnomaly::PlaintextAfterStarttls { at } => Some((
                *at,
                None,
                "plaintext after STARTTLS (TLS terminated before the capture point)".to_string(),
            )),
            SmtpAnomaly::TlsWithoutStarttls { at } => Some((
                *at,
                Some(Side::Client),
                "TLS handshake without STARTTLS".to_string(),
            )),
            SmtpAnomaly::ReplyAssumed { at, verb } => Some((
                *at,
                None,
                format!("no reply to {verb} seen; read as accepted"),
            )),
            SmtpAnomaly::UnterminatedLine { side, at } => {
                Some((*at, Some(*side), "last line without line end".to_string()))
            }
            SmtpAnomaly::MaskedReplyLine { at, text } => Some((
                *at,
                Some(Side::Server),
                format!("reply line X'd out by a device in the path: {text}"),
            )),
            SmtpAnomaly::MaskedCommand { at, len } => Some((
                *at,
                Some(Side::Client),
                format!("command of {len} X's: replaced by a device in the path"),
            )),
            // Gaps come from the TCP facts; replies are in the conversation already.
            SmtpAnomaly::Gap { .. }
            | SmtpAnomaly::ReplyWithoutCode { .. }
            | SmtpAnomaly::UnpromptedReply { .. }
            | SmtpAnomaly::UnknownCommand { .. } => None,
        };
        if let Some((at, side, text)) = s {
            steps.push(Step { at, side, text });
        }
    }
    for side in [Side::Client, Side::Server] {
        let st = tcp.side(side);
        if let Some(e) = &st.first_fin {
            steps.push(Step {
                at: e.at,
                side: Some(side),
                text: close_words("FIN", e, report),
            });
        }
        if let Some(e) = &st.first_rst {
            let more = if st.rst_packets > 1 {
                format!(", {} RSTs in all", st.rst_packets)
            } else {
                String::new()
            };
            steps.push(Step {
                at: e.at,
                side: Some(side),
                text: format!("{}{more}", close_words("RST", e, report)),
            });
        }
    }
    steps.sort_by_key(|s| s.at);
    if tcp.open_at_end {
        steps.push(Step {
            at: tcp.last_seen,
            side: None,
            text: "last packet: the capture ends with the connection still open".into(),
        });
    }

    let origin = c.first_seen;
    let col = steps
        .iter()
        .map(|s| rel(s.at, origin).len())
        .max()
        .unwrap_or(9);
    let mut prev: Option<Timestamp> = None;
    for s in &steps {
        if let Some(p) = prev {
            let gap = s.at.seconds_since(p);
            if gap >= SILENCE_SECS {
                out.push_str(&format!(
                    "  {:>col$}  {:<6}  ··· {gap:.1} s of silence ···\n",
                    "", ""
                ));
            }
        }
        prev = Some(s.at);
        let side = s.side.map_or("", Side::as_str);
        folded(
            out,
            &format!("  {:>col$}  {side:<6}  ", rel(s.at, origin)),
            &s.text,
            col + 12,
            width,
        );
    }
}

fn command_words(verb: &str, arg: &Option<String>) -> String {
    match (verb, arg) {
        ("MAIL", Some(a)) => format!("MAIL FROM:<{a}>"),
        ("RCPT", Some(a)) => format!("RCPT TO:<{a}>"),
        ("AUTH", Some(a)) => format!("AUTH {a} (credentials not shown)"),
        ("AUTH", None) => "AUTH (credentials not shown)".to_string(),
        (v, Some(a)) => format!("{v} {a}"),
        (v, None) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_indents_continuations() {
        let mut s = String::new();
        folded(
            &mut s,
            "  key  ",
            "one two three four five six seven eight nine ten eleven twelve thirteen fourteen",
            7,
            40,
        );
        for l in s.lines().skip(1) {
            assert!(l.starts_with("       "), "{l:?}");
        }
        assert!(s.lines().all(|l| l.chars().count() <= 40), "{s}");
    }

    #[test]
    fn commands_read_as_typed() {
        assert_eq!(
            command_words("MAIL", &Some("a@b.example".into())),
            "MAIL FROM:<a@b.example>"
        );
        assert_eq!(command_words("QUIT", &None), "QUIT");
        assert_eq!(
            command_words("AUTH", &Some("PLAIN".into())),
            "AUTH PLAIN (credentials not shown)"
        );
    }
}
