//! `--export DIR`: everything to attach to a support case, in one directory.
//!
//! Contract: a pipeline step after the report. It writes files and computes no verdicts: the
//! report in Markdown, HTML and JSON (rendered by the caller, redacted or not), and for every
//! connection that was aborted (`verdict.layer` other than `none`) or that disagrees with the
//! log, a pcap of only that connection's packets and a text file of its log lines, plus a
//! `README.txt` listing every file. The packets come from a second pass over the captures
//! ([`crate::capture::read_records`], with the same BPF filter), chosen by the connection's
//! addresses and ports *and* its time span (first to last packet), so that a client port used
//! again later does not mix two connections. Pcaps are written through libpcap (cargo feature
//! `libpcap`); without it the report files are still written and the README says why the
//! pcaps are missing.
//!
//! In the pcaps, AUTH credentials are always blanked (the report never holds them either).
//! With a [`Redactor`], payload bytes are redacted in place with tokens of the same length
//! (sequence numbers stay valid; a name split across two segments of the same direction is
//! caught by scanning each segment together with the one before it), and with `--redact-ips`
//! the IP headers' addresses are rewritten; IPv4 header and TCP checksums are then recomputed
//! where the whole segment was captured.
//!
//! Layout of the directory (names sort in report order and say what they are):
//!
//! ```text
//! README.txt
//! report.md  report.html  report.json
//! conn-003-198.51.100.10_50542-network-rst_during_data.pcap
//! conn-003-198.51.100.10_50542-network-rst_during_data.log.txt
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::analyze::{CaptureProgress, ProgressHook, ProgressStage};
use crate::capture::{self, CaptureError, RawRecord, ReadOptions};
use crate::correlate::Agreement;
use crate::redact::{AuthMask, Redactor};
use crate::report::{ConnectionReport, Report};
use crate::types::{Side, Timestamp};
use crate::verdict::Layer;

/// Per-connection pcaps open at once; more connections take more passes over the captures.
pub const MAX_OPEN_PCAPS: usize = 128;

/// Whether this build can write pcaps (the `libpcap` feature).
pub const PCAP_AVAILABLE: bool = pcapout::AVAILABLE;

/// The files of the report itself, rendered by the caller (after redaction, if any).
#[derive(Debug, Clone, Default)]
pub struct ReportFiles {
    pub markdown: String,
    pub html: String,
    pub json: String,
}

/// Where and how to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub dir: PathBuf,
    /// The captures as analysed (read again for the per-connection pcaps; not `-`).
    pub captures: Vec<String>,
    /// The BPF filter of the analysis, applied again.
    pub filter: Option<String>,
    /// The mail logs given (named in the README).
    pub logs: Vec<PathBuf>,
    pub progress: Option<ProgressHook>,
}

/// One file written, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    pub name: String,
    pub what: String,
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct Exported {
    pub dir: PathBuf,
    pub files: Vec<ExportedFile>,
    /// Things the user should know (pcaps that could not be written, ...).
    pub notes: Vec<String>,
}

#[derive(Debug)]
pub enum ExportError {
    /// The directory cannot be used (exists as a file, not empty without `--force`, ...).
    Dir { dir: PathBuf, why: String },
    /// A file could not be written.
    Write { path: PathBuf, why: String },
    /// The captures could not be read again.
    Capture(CaptureError),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Dir { dir, why } => write!(f, "{}: {why}", dir.display()),
            ExportError::Write { path, why } => {
                write!(f, "{}: cannot write: {why}", path.display())
            }
            ExportError::Capture(e) => write!(f, "reading the captures again for --export: {e}"),
        }
    }
}

impl std::error::Error for ExportError {}

/// Whether a file name is one an export writes (and `--force` may replace).
fn is_export_file(name: &str) -> bool {
    matches!(
        name,
        "README.txt" | "report.md" | "report.html" | "report.json"
    ) || (name.starts_with("conn-") && (name.ends_with(".pcap") || name.ends_with(".log.txt")))
}

/// Makes `dir` ready before the analysis starts: creates it if missing; refuses a file, and a
/// directory that is not empty unless `force` — then the files of an earlier export in it
/// (`README.txt`, `report.*`, `conn-*.pcap`, `conn-*.log.txt`) are removed and anything else
/// is left alone.
pub fn prepare_dir(dir: &Path, force: bool) -> Result<(), ExportError> {
    let err = |why: String| ExportError::Dir {
        dir: dir.to_path_buf(),
        why,
    };
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(err("exists and is not a directory".into())),
        Ok(_) => {
            let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
                .map_err(|e| err(format!("cannot read the directory: {e}")))?
                .filter_map(Result::ok)
                .collect();
            if entries.is_empty() {
                return Ok(());
            }
            if !force {
                return Err(err(format!(
                    "the directory is not empty ({} entries): give an empty or new directory, \
                     or --force to write into it (the files of an earlier export are replaced, \
                     other files are kept)",
                    entries.len()
                )));
            }
            for e in entries {
                let name = e.file_name().to_string_lossy().into_owned();
                if is_export_file(&name) && e.file_type().is_ok_and(|t| t.is_file()) {
                    std::fs::remove_file(e.path())
                        .map_err(|x| err(format!("cannot remove {name}: {x}")))?;
                }
            }
            Ok(())
        }
        Err(_) => std::fs::create_dir_all(dir)
            .map_err(|e| err(format!("cannot create the directory: {e}"))),
    }
}

/// Whether a connection gets its own files: aborted, or the log disagrees.
pub fn selected(c: &ConnectionReport) -> bool {
    c.verdict.layer != Layer::None
        || c.log_match
            .as_ref()
            .is_some_and(|m| m.agreement == Agreement::Disagrees)
}

/// The file name stem of a connection: `conn-003-198.51.100.10_50542-network-rst_during_data`
/// (`-disagrees` appended when the log disagrees). `digits` is the width of the number.
pub fn stem(c: &ConnectionReport, digits: usize) -> String {
    let client = match c.client.parse::<SocketAddr>() {
        Ok(sa) => format!("{}_{}", sa.ip().to_string().replace(':', "-"), sa.port()),
        Err(_) => c
            .client
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '.' {
                    ch
                } else {
                    '_'
                }
            })
            .collect(),
    };
    let disagrees = c
        .log_match
        .as_ref()
        .is_some_and(|m| m.agreement == Agreement::Disagrees);
    format!(
        "conn-{:0digits$}-{client}-{}-{}{}",
        c.id,
        c.verdict.layer.as_str(),
        c.verdict.cause.as_str(),
        if disagrees { "-disagrees" } else { "" }
    )
}

/// Writes the export. `report` is the analysis as it came out (its addresses select the
/// packets); `shown` is the report as the user sees it (redacted or the same), used for names
/// and texts. With `redactor`, pcap payloads (and with `--redact-ips` IP headers) are redacted
/// with the same mapping. The directory must have been prepared with [`prepare_dir`].
pub fn export(
    report: &Report,
    shown: &Report,
    files: &ReportFiles,
    opts: &ExportOptions,
    mut redactor: Option<&mut Redactor>,
) -> Result<Exported, ExportError> {
    let dir = &opts.dir;
    let mut out = Exported {
        dir: dir.clone(),
        ..Exported::default()
    };
    let write = |name: &str, text: &[u8]| -> Result<(), ExportError> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| ExportError::Write {
            path,
            why: e.to_string(),
        })
    };
    for (name, text, what) in [
        (
            "report.md",
            &files.markdown,
            "the report (Markdown): summary, verdicts, the story of each aborted connection",
        ),
        (
            "report.html",
            &files.html,
            "the report (HTML, one self-contained file): opens in any browser, offline",
        ),
        (
            "report.json",
            &files.json,
            "the report (JSON): every fact, stable field names, for scripts",
        ),
    ] {
        write(name, text.as_bytes())?;
        out.files.push(ExportedFile {
            name: name.into(),
            what: what.into(),
        });
    }

    let chosen: Vec<usize> = report
        .connections
        .iter()
        .enumerate()
        .filter(|(_, c)| selected(c))
        .map(|(i, _)| i)
        .collect();
    let digits = report.connections.len().to_string().len().max(3);
    let stems: HashMap<usize, String> = chosen
        .iter()
        .map(|&i| {
            (
                i,
                stem(
                    shown.connections.get(i).unwrap_or(&report.connections[i]),
                    digits,
                ),
            )
        })
        .collect();

    // Log lines, one file per connection that has an ICID.
    for &i in &chosen {
        let c = shown.connections.get(i).unwrap_or(&report.connections[i]);
        let Some(m) = &c.log_match else {
            continue;
        };
        let name = format!("{}.log.txt", stems[&i]);
        write(&name, log_text(c).as_bytes())?;
        out.files.push(ExportedFile {
            name,
            what: format!(
                "connection {}: the mail log lines of ICID {} ({} lines)",
                c.id,
                c.icid.map_or("?".to_string(), |x| x.to_string()),
                m.log_lines.len()
            ),
        });
    }

    // The pcaps.
    let mut pcap_notes = Vec::new();
    if !chosen.is_empty() {
        if !PCAP_AVAILABLE {
            pcap_notes.push(
                "no per-connection pcaps: pcap export needs the libpcap feature \
                 (build with `cargo build --features libpcap`, the default, and libpcap-dev)"
                    .to_string(),
            );
        } else if opts.captures.iter().any(|c| c == "-") {
            pcap_notes.push(
                "no per-connection pcaps: standard input cannot be read a second time".to_string(),
            );
        } else {
            let written = cut_pcaps(
                report,
                &chosen,
                &stems,
                opts,
                redactor.as_deref_mut(),
                &mut pcap_notes,
            )?;
            for (i, name, packets) in written {
                let c = shown.connections.get(i).unwrap_or(&report.connections[i]);
                let v = &c.verdict;
                out.files.push(ExportedFile {
                    name,
                    what: format!(
                        "connection {}: {} → {}, {}/{}/{} in {}; {packets} packets",
                        c.id,
                        c.client,
                        c.server,
                        v.layer.as_str(),
                        v.initiator.as_str(),
                        v.cause.as_str(),
                        v.phase.as_str()
                    ),
                });
            }
        }
    }
    out.notes.extend(pcap_notes);

    out.files
        .sort_by(|a, b| order_key(&a.name).cmp(&order_key(b.name.as_str())));
    let readme = readme(shown, &out, opts, redactor.as_deref(), chosen.len());
    write("README.txt", readme.as_bytes())?;
    out.files.insert(
        0,
        ExportedFile {
            name: "README.txt".into(),
            what: "this list".into(),
        },
    );
    Ok(out)
}

/// Report files first, then the connections' files by name.
fn order_key(name: &str) -> (u8, &str) {
    (u8::from(name.starts_with("conn-")), name)
}

fn log_text(c: &ConnectionReport) -> String {
    let mut s = String::new();
    let Some(m) = &c.log_match else {
        return s;
    };
    s.push_str(&format!(
        "# connection {}: {} → {}, {} – {}\n",
        c.id, c.client, c.server, c.first_seen, c.last_seen
    ));
    s.push_str(&format!(
        "# ICID {}{} on {}; log outcome {}; wire verdict {}/{}/{}; {}\n",
        c.icid.map_or("?".to_string(), |x| x.to_string()),
        if c.mids.is_empty() {
            String::new()
        } else {
            format!(
                ", MID {}",
                c.mids
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        m.appliance,
        c.log_outcome.as_deref().unwrap_or("?"),
        c.verdict.layer.as_str(),
        c.verdict.initiator.as_str(),
        c.verdict.cause.as_str(),
        match m.agreement {
            Agreement::Agrees => "the log agrees".to_string(),
            Agreement::Disagrees => format!(
                "the log disagrees: {}",
                m.agreement_reason.as_deref().unwrap_or("")
            ),
            Agreement::Unknown => "one side cannot tell".to_string(),
        }
    ));
    if m.log_lines.is_empty() {
        s.push_str("# (no lines were kept for this ICID)\n");
    }
    for l in &m.log_lines {
        s.push_str(&format!("{}:{}: {}\n", l.file, l.line, l.text));
    }
    s
}

fn readme(
    shown: &Report,
    out: &Exported,
    opts: &ExportOptions,
    redactor: Option<&Redactor>,
    chosen: usize,
) -> String {
    let mut s = String::new();
    s.push_str(&format!("icidtrace {} export\n\n", shown.tool.version));
    s.push_str("Captures:\n");
    for f in &shown.captures.files {
        s.push_str(&format!("  {}\n", f.name));
    }
    if let Some(filter) = &shown.captures.filter {
        s.push_str(&format!("  BPF filter: {filter}\n"));
    }
    if !opts.logs.is_empty() {
        s.push_str("Mail logs:\n");
        for l in &opts.logs {
            s.push_str(&format!("  {}\n", l.display()));
        }
    }
    s.push_str(&format!(
        "Connections: {} SMTP, {} aborted, {} matched to an ICID, {} disagree with the log\n\n",
        shown.summary.connections,
        shown.summary.aborted,
        shown.summary.matched,
        shown.summary.disagreements
    ));
    s.push_str("Files:\n");
    s.push_str("  README.txt\n      this list\n");
    for f in &out.files {
        s.push_str(&format!("  {}\n", f.name));
        for line in crate::report::wrap(&f.what, 90).lines() {
            s.push_str(&format!("      {}\n", line.trim_start()));
        }
    }
    s.push_str("\nNotes:\n");
    let pcaps = out.files.iter().any(|f| f.name.ends_with(".pcap"));
    if chosen == 0 {
        s.push_str(
            "- No connection was aborted or disagrees with the log: there are no \
             per-connection files.\n",
        );
    } else {
        s.push_str(
            "- conn-NNN files are the connections that were aborted (verdict layer other than \
             \"none\") or whose log outcome disagrees with the wire; NNN is the connection's \
             number in the report.\n",
        );
    }
    if pcaps {
        s.push_str(
            "- Each .pcap holds only that connection's packets: its two addresses and ports, \
             from its first to its last packet, as they are in the captures (same BPF filter). \
             Open it in Wireshark, or run `icidtrace analyze` on it.\n\
             - AUTH credentials in the pcaps are replaced by x's.\n",
        );
    }
    match redactor {
        None => {
            s.push_str("- Not redacted: names and addresses are as in the capture and the log.\n")
        }
        Some(r) => {
            let (users, names, ips) = r.counts();
            s.push_str(&format!(
                "- Redacted (--redact{}): e-mail local parts, host and domain names{} are \
                 replaced by tokens ({users} local parts, {names} names{}). The same original \
                 always has the same token: user-1@domain-1.example, host-2.example{}. In the \
                 pcaps a token is written in the length of what it replaces (user-1 may read \
                 user1 or u0001, host-2.example host-002.example), so TCP sequence numbers stay \
                 valid{}. Kept as they are: file names, times, ICIDs, MIDs, message text other \
                 than addresses and names{}.\n",
                if r.redacts_ips() { "-ips" } else { "" },
                if r.redacts_ips() {
                    " and IP addresses"
                } else {
                    ""
                },
                if r.redacts_ips() {
                    format!(", {ips} IP addresses")
                } else {
                    String::new()
                },
                if r.redacts_ips() {
                    ", 192.0.2.1 (IP addresses from the documentation ranges)"
                } else {
                    ""
                },
                if r.redacts_ips() {
                    "; IP headers carry the token addresses and recomputed checksums"
                } else {
                    ""
                },
                if r.redacts_ips() {
                    ", MAC addresses"
                } else {
                    ", IP addresses"
                }
            ));
        }
    }
    for n in &out.notes {
        s.push_str(&format!("- {n}\n"));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Cutting the pcaps

/// One packet waiting to be written (redaction may still change its payload).
struct Pending {
    ts: Timestamp,
    link_type: u32,
    data: Vec<u8>,
    orig_len: u32,
    /// The TCP payload within `data`.
    payload: Range<usize>,
    /// The payload as captured (AUTH blanked), for scanning with the next segment.
    orig: Vec<u8>,
    ip_offset: Option<usize>,
    changed: bool,
    done: bool,
}

/// The output of one connection.
struct ConnOut {
    index: usize,
    stem: String,
    /// One writer per link type met (normally one).
    writers: Vec<(u32, pcapout::Writer, String)>,
    queue: VecDeque<Pending>,
    /// Absolute number of `queue[0]`.
    base: usize,
    /// Absolute number of each side's last payload segment, while it may still change.
    open_payload: [Option<usize>; 2],
    auth: AuthMask,
    packets: u64,
}

fn side_slot(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// Packets held back at most per connection while waiting for the next segment of a side.
const MAX_QUEUE: usize = 512;

#[allow(clippy::type_complexity)]
fn cut_pcaps(
    report: &Report,
    chosen: &[usize],
    stems: &HashMap<usize, String>,
    opts: &ExportOptions,
    mut redactor: Option<&mut Redactor>,
    notes: &mut Vec<String>,
) -> Result<Vec<(usize, String, u64)>, ExportError> {
    let mut written = Vec::new();
    let batches: Vec<&[usize]> = chosen.chunks(MAX_OPEN_PCAPS).collect();
    let passes = batches.len() as u64;
    for (pass, batch) in batches.into_iter().enumerate() {
        // Connections of this batch by (client, server).
        let mut by_pair: HashMap<(SocketAddr, SocketAddr), Vec<usize>> = HashMap::new();
        let mut outs: Vec<ConnOut> = Vec::with_capacity(batch.len());
        for (slot, &i) in batch.iter().enumerate() {
            let c = &report.connections[i];
            by_pair
                .entry((c.tcp.client, c.tcp.server))
                .or_default()
                .push(slot);
            outs.push(ConnOut {
                index: i,
                stem: stems[&i].clone(),
                writers: Vec::new(),
                queue: VecDeque::new(),
                base: 0,
                open_payload: [None, None],
                auth: AuthMask::new(),
                packets: 0,
            });
        }
        let mut failure: Option<ExportError> = None;
        let mut progress = CaptureProgress::new(ProgressStage::Export, &opts.captures);
        let read_opts = ReadOptions {
            filter: opts.filter.clone(),
        };
        let result = capture::read_records(
            &opts.captures,
            &read_opts,
            &mut |rec| {
                if failure.is_some() {
                    return;
                }
                let Some((slot, side)) = owner(rec, report, batch, &by_pair) else {
                    return;
                };
                if let Err(e) = take(
                    &mut outs[slot],
                    rec,
                    side,
                    &opts.dir,
                    redactor.as_deref_mut(),
                ) {
                    failure = Some(e);
                }
            },
            &mut |p| {
                if let Some(h) = &opts.progress {
                    let mut e = progress.event(p, false);
                    if let Some(t) = e.bytes_total {
                        e.bytes_done += t * pass as u64;
                        e.bytes_total = Some(t * passes);
                    }
                    h.report(&e);
                }
            },
        );
        if let Err(e) = result {
            return Err(ExportError::Capture(e));
        }
        if let Some(e) = failure {
            return Err(e);
        }
        for mut o in outs {
            for p in o.queue.iter_mut() {
                p.done = true;
            }
            flush(&mut o, &opts.dir, redactor.as_deref_mut())?;
            if o.writers.is_empty() {
                notes.push(format!(
                    "connection {}: no packet of it was found when reading the captures again",
                    report.connections[o.index].id
                ));
                continue;
            }
            for (_, w, name) in o.writers {
                w.finish().map_err(|why| ExportError::Write {
                    path: opts.dir.join(&name),
                    why,
                })?;
                written.push((o.index, name, o.packets));
            }
        }
    }
    if let Some(h) = &opts.progress {
        let mut p = CaptureProgress::new(ProgressStage::Export, &opts.captures);
        h.report(&p.finished());
    }
    Ok(written)
}

/// The connection of the batch a record belongs to, and the side that sent it.
fn owner(
    rec: &RawRecord<'_>,
    report: &Report,
    batch: &[usize],
    by_pair: &HashMap<(SocketAddr, SocketAddr), Vec<usize>>,
) -> Option<(usize, Side)> {
    let p = rec.packet.as_ref()?;
    let src = SocketAddr::new(p.src, p.src_port);
    let dst = SocketAddr::new(p.dst, p.dst_port);
    let (slots, side) = match by_pair.get(&(src, dst)) {
        Some(s) => (s, Side::Client),
        None => (by_pair.get(&(dst, src))?, Side::Server),
    };
    slots
        .iter()
        .copied()
        .find(|&slot| {
            let c = &report.connections[batch[slot]];
            c.first_seen <= p.ts && p.ts <= c.last_seen
        })
        .map(|slot| (slot, side))
}

/// Takes one record of a connection: blanks AUTH, redacts, queues, writes what is final.
fn take(
    o: &mut ConnOut,
    rec: &RawRecord<'_>,
    side: Side,
    dir: &Path,
    mut redactor: Option<&mut Redactor>,
) -> Result<(), ExportError> {
    let Some(p) = rec.packet.as_ref() else {
        return Ok(());
    };
    let mut data = rec.data.to_vec();
    let start = (p.payload.as_ptr() as usize).saturating_sub(rec.data.as_ptr() as usize);
    let payload = start..(start + p.payload.len()).min(data.len());
    let mut changed = false;
    if side == Side::Client && !payload.is_empty() {
        let before = data[payload.clone()].to_vec();
        o.auth.apply(&mut data[payload.clone()]);
        changed = before != data[payload.clone()];
    }
    let orig = data[payload.clone()].to_vec();
    let abs = o.base + o.queue.len();
    let mut entry = Pending {
        ts: rec.ts,
        link_type: rec.link_type,
        data,
        orig_len: rec.orig_len,
        payload: payload.clone(),
        orig,
        ip_offset: rec.ip_offset(),
        changed,
        done: true,
    };
    if let Some(r) = redactor.as_deref_mut() {
        if !payload.is_empty() {
            let slot = side_slot(side);
            // The segment before it of the same side, if still held: scanned together.
            let prev = o.open_payload[slot]
                .and_then(|a| a.checked_sub(o.base))
                .filter(|k| *k < o.queue.len());
            let prev_len = prev.map_or(0, |k| o.queue[k].orig.len());
            let mut joined = Vec::with_capacity(prev_len + entry.orig.len());
            if let Some(k) = prev {
                joined.extend_from_slice(&o.queue[k].orig);
            }
            joined.extend_from_slice(&entry.orig);
            for (range, token) in r.payload_spans(&joined) {
                if range.end <= prev_len {
                    continue; // inside the earlier segment: done when it was taken
                }
                for (pos, byte) in range.zip(token) {
                    if pos < prev_len {
                        if let Some(k) = prev {
                            let q = &mut o.queue[k];
                            let at = q.payload.start + pos;
                            if q.data[at] != byte {
                                q.data[at] = byte;
                                q.changed = true;
                            }
                        }
                    } else {
                        let at = entry.payload.start + pos - prev_len;
                        if entry.data[at] != byte {
                            entry.data[at] = byte;
                            entry.changed = true;
                        }
                    }
                }
            }
            if let Some(k) = prev {
                o.queue[k].done = true;
            }
            entry.done = false;
            o.open_payload[slot] = Some(abs);
        }
        if r.redacts_ips() {
            entry.changed = true;
        }
    }
    o.queue.push_back(entry);
    if o.queue.len() > MAX_QUEUE {
        if let Some(front) = o.queue.front_mut() {
            front.done = true;
        }
    }
    flush(o, dir, redactor)
}

/// Writes the packets at the front of the queue that can no longer change.
fn flush(
    o: &mut ConnOut,
    dir: &Path,
    mut redactor: Option<&mut Redactor>,
) -> Result<(), ExportError> {
    while o.queue.front().is_some_and(|p| p.done) {
        let Some(mut p) = o.queue.pop_front() else {
            break;
        };
        o.base += 1;
        if p.changed {
            if let (Some(r), Some(off)) = (redactor.as_deref_mut(), p.ip_offset) {
                if r.redacts_ips() {
                    rewrite_ips(&mut p.data[off..], r);
                }
            }
            if let Some(off) = p.ip_offset {
                fix_checksums(&mut p.data[off..]);
            }
        }
        write_packet(o, &p, dir)?;
    }
    Ok(())
}

fn write_packet(o: &mut ConnOut, p: &Pending, dir: &Path) -> Result<(), ExportError> {
    let k = match o.writers.iter().position(|(lt, _, _)| *lt == p.link_type) {
        Some(k) => k,
        None => {
            let name = if o.writers.is_empty() {
                format!("{}.pcap", o.stem)
            } else {
                format!(
                    "{}-{}.pcap",
                    o.stem,
                    capture::link::name(p.link_type).to_ascii_lowercase()
                )
            };
            let path = dir.join(&name);
            let w =
                pcapout::Writer::create(&path, p.link_type).map_err(|why| ExportError::Write {
                    path: path.clone(),
                    why,
                })?;
            o.writers.push((p.link_type, w, name));
            o.writers.len() - 1
        }
    };
    o.writers[k].1.write(p.ts, &p.data, p.orig_len);
    o.packets += 1;
    Ok(())
}

/// Rewrites the source and destination addresses of the IP packet at the start of `ip`.
fn rewrite_ips(ip: &mut [u8], r: &mut Redactor) {
    match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 20 => {
            for at in [12, 16] {
                let a: [u8; 4] = [ip[at], ip[at + 1], ip[at + 2], ip[at + 3]];
                if let IpAddr::V4(t) = r.ip(IpAddr::from(a)) {
                    ip[at..at + 4].copy_from_slice(&t.octets());
                }
            }
        }
        Some(6) if ip.len() >= 40 => {
            for at in [8, 24] {
                let mut a = [0u8; 16];
                a.copy_from_slice(&ip[at..at + 16]);
                if let IpAddr::V6(t) = r.ip(IpAddr::from(a)) {
                    ip[at..at + 16].copy_from_slice(&t.octets());
                }
            }
        }
        _ => {}
    }
}

/// One's complement sum of 16-bit big-endian words.
fn sum16(mut acc: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Recomputes the IPv4 header checksum and the TCP checksum of the packet at the start of
/// `ip`, where the whole of it was captured.
fn fix_checksums(ip: &mut [u8]) {
    match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 20 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            if ihl < 20 || ip.len() < ihl {
                return;
            }
            ip[10] = 0;
            ip[11] = 0;
            let c = fold(sum16(0, &ip[..ihl]));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if ip[9] != 6 || total < ihl + 20 || ip.len() < total {
                return;
            }
            let tcp_len = total - ihl;
            let mut acc = sum16(0, &ip[12..20]);
            acc += 6 + tcp_len as u32;
            tcp_checksum(&mut ip[ihl..total], acc);
        }
        Some(6) if ip.len() >= 40 => {
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if ip[6] != 6 || len < 20 || ip.len() < 40 + len {
                return;
            }
            let mut acc = sum16(0, &ip[8..40]);
            acc += 6 + len as u32;
            tcp_checksum(&mut ip[40..40 + len], acc);
        }
        _ => {}
    }
}

fn tcp_checksum(tcp: &mut [u8], pseudo: u32) {
    tcp[16] = 0;
    tcp[17] = 0;
    let c = fold(sum16(pseudo, tcp));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

#[cfg(feature = "libpcap")]
mod pcapout {
    use std::path::Path;

    use crate::types::Timestamp;

    pub const AVAILABLE: bool = true;

    /// LINKTYPE_* (file) values to the DLT_* values libpcap takes.
    fn dlt(link_type: u32) -> i32 {
        match link_type {
            // LINKTYPE_RAW and the legacy raw values are DLT_RAW (12 on Linux and most BSDs).
            12 | 14 | 101 => 12,
            other => i32::try_from(other).unwrap_or(i32::MAX),
        }
    }

    /// A pcap file being written by libpcap, nanosecond timestamps.
    pub struct Writer {
        file: pcap::Savefile,
        _dead: pcap::Capture<pcap::Dead>,
    }

    impl Writer {
        pub fn create(path: &Path, link_type: u32) -> Result<Writer, String> {
            if path.to_str().is_none() {
                return Err("the path is not UTF-8".into());
            }
            let dead = pcap::Capture::dead_with_precision(
                pcap::Linktype(dlt(link_type)),
                pcap::Precision::Nano,
            )
            .map_err(|e| e.to_string())?;
            let file = dead.savefile(path).map_err(|e| e.to_string())?;
            Ok(Writer { file, _dead: dead })
        }

        pub fn write(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) {
            let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let header = pcap::PacketHeader {
                ts: libc::timeval {
                    tv_sec: ts.secs() as libc::time_t,
                    tv_usec: ts.subsec_nanos() as libc::suseconds_t,
                },
                caplen,
                len: orig_len.max(caplen),
            };
            self.file.write(&pcap::Packet::new(&header, data));
        }

        pub fn finish(mut self) -> Result<(), String> {
            self.file.flush().map_err(|e| e.to_string())
        }
    }
}

#[cfg(not(feature = "libpcap"))]
mod pcapout {
    use std::path::Path;

    use crate::types::Timestamp;

    pub const AVAILABLE: bool = false;

    /// Stand-in without libpcap: it cannot be constructed.
    pub struct Writer {
        never: std::convert::Infallible,
    }

    impl Writer {
        pub fn create(_path: &Path, _link_type: u32) -> Result<Writer, String> {
            Err("pcap export needs the libpcap feature".into())
        }

        pub fn write(&mut self, _ts: Timestamp, _data: &[u8], _orig_len: u32) {
            match self.never {}
        }

        pub fn finish(self) -> Result<(), String> {
            match self.never {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_a_known_packet() {
        // IPv4 + TCP SYN built by etherparse, whose checksums are right.
        let b = etherparse::PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 25], 64)
            .tcp(40000, 25, 1, 65535);
        let mut v = Vec::new();
        b.write(&mut v, b"EHLO x\r\n").unwrap();
        let good = v.clone();
        v[10] ^= 0xff;
        v[20 + 16] ^= 0xff;
        fix_checksums(&mut v);
        assert_eq!(v, good);
        let b = etherparse::PacketBuilder::ipv6([1; 16], [2; 16], 64).tcp(40000, 25, 1, 65535);
        let mut v = Vec::new();
        b.write(&mut v, b"QUIT\r\n").unwrap();
        let good = v.clone();
        v[40 + 16] ^= 0x55;
        fix_checksums(&mut v);
        assert_eq!(v, good);
    }

    #[test]
    fn export_file_names() {
        assert!(is_export_file("conn-003-x-network-client_rst.pcap"));
        assert!(is_export_file("conn-003-x-network-client_rst.log.txt"));
        assert!(is_export_file("report.html"));
        assert!(!is_export_file("notes.txt"));
        assert!(!is_export_file("capture.pcap"));
    }

    #[test]
    fn the_directory_is_refused_when_not_empty() {
        let d = tempfile::tempdir().unwrap();
        assert!(prepare_dir(d.path(), false).is_ok());
        std::fs::write(d.path().join("mine.txt"), "x").unwrap();
        std::fs::write(d.path().join("report.md"), "old").unwrap();
        let e = prepare_dir(d.path(), false).unwrap_err().to_string();
        assert!(e.contains("not empty") && e.contains("--force"), "{e}");
        prepare_dir(d.path(), true).unwrap();
        assert!(d.path().join("mine.txt").exists());
        assert!(!d.path().join("report.md").exists());
        let f = d.path().join("mine.txt");
        assert!(prepare_dir(&f, true).is_err());
        let new = d.path().join("a/b");
        prepare_dir(&new, false).unwrap();
        assert!(new.is_dir());
    }
}
