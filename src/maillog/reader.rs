//! Reading mail-log files: opening, gzip, rotation order, streaming, and the summary.
//!
//! Contract: [`read_logs`] reads every given file in rotation order ([`order_paths`]: saved
//! `.@stamp.s` files by stamp, then the `.c` / `.current` one, per subscription base name),
//! in large reads into one reused buffer whose lines are parsed in place, each line capped at
//! [`LogOptions::max_line_len`] bytes (the rest skipped and counted). A large file is folded
//! into lifecycles on a second thread while it is parsed (same records, same order). Gzip is detected by its magic bytes, not by the name.
//! The only errors ([`MailLogError`]) are I/O errors: a file that cannot be opened, is a
//! directory, or fails to read. A damaged gzip stream is content damage: the file stops there,
//! the damage is noted in its [`FileSummary`], and reading goes on. Every content problem is a
//! counter. The result, [`MailLog`], holds the ICID and MID records and a [`LogSummary`].
//!
//! Appliance keys: `sn:{serial}` for lines of a file that has a `Version: … SN: …` header,
//! `host:{name}` for syslog lines that carry a host, `file:{path}` (rotation suffix removed)
//! otherwise.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Utc};
use flate2::read::MultiGzDecoder;
use serde::Serialize;

use super::event::EVENT_KINDS;
use super::lifecycle::{IcidRecord, LifecycleBuilder, LifecycleOptions, MidRecord, SourceKey};
use super::line::{
    LineCounters, LineParser, LineSample, LogRecord, ParserOptions, SampleReason, YearHint,
};

/// Options of the mail-log stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Year of the first year-less (syslog) line ([`YearHint::Start`]). `None` (and no
    /// `year_hint`): each file's modification time, as [`YearHint::End`] (the log ends at or
    /// before it), which is wrong for a copy made much later.
    pub syslog_year: Option<i32>,
    /// Overrides `syslog_year` with any [`YearHint`]; [`YearHint::Near`] the capture's date is
    /// the most robust (the log may start before or after the capture's year turns).
    pub year_hint: Option<YearHint>,
    /// Longest line kept; the rest of a longer line is skipped and counted.
    pub max_line_len: usize,
    /// How many unknown / unparsed lines to keep as samples (over all files).
    pub max_samples: usize,
    /// The listener's idle timeout, for telling a timeout from a network abort.
    pub idle_timeout_secs: i64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            syslog_year: None,
            year_hint: None,
            max_line_len: 64 * 1024,
            max_samples: 50,
            idle_timeout_secs: 300,
        }
    }
}

/// What went wrong reading a file (I/O only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailLogErrorKind {
    Open,
    IsDirectory,
    Read,
}

/// An I/O error of this stage, with the file and (for read errors) the line being read.
#[derive(Debug)]
pub struct MailLogError {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub kind: MailLogErrorKind,
    pub source: Option<io::Error>,
}

impl fmt::Display for MailLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match (self.kind, self.line) {
            (MailLogErrorKind::IsDirectory, _) => write!(f, "{p}: is a directory, not a log file")?,
            (MailLogErrorKind::Open, _) => write!(f, "{p}: cannot open")?,
            (MailLogErrorKind::Read, Some(l)) => write!(f, "{p}:{l}: read error")?,
            (MailLogErrorKind::Read, None) => write!(f, "{p}: read error")?,
        }
        if let Some(e) = &self.source {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MailLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Rotation state of a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationStatus {
    /// `.s`: saved, complete.
    Saved,
    /// `.c` or `.current`: being written.
    Current,
}

/// A file name of the form `{base}.@{stamp}.{s|c}` or `{base}.current` (optionally followed by
/// `.gz` or another extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedName {
    /// Directory plus base name: the subscription's files share it.
    pub base: PathBuf,
    pub stamp: Option<String>,
    pub status: RotationStatus,
}

/// Recognises rotation names.
pub fn rotated_name(path: &Path) -> Option<RotatedName> {
    let name = path.file_name()?.to_str()?;
    let dir = path.parent().unwrap_or(Path::new(""));
    if let Some(p) = name.find(".@") {
        let base = &name[..p];
        let mut parts = name[p + 2..].split('.');
        let stamp = parts.next()?;
        let status = match parts.next()? {
            "s" => RotationStatus::Saved,
            "c" | "current" => RotationStatus::Current,
            _ => return None,
        };
        if base.is_empty() || stamp.is_empty() {
            return None;
        }
        return Some(RotatedName {
            base: dir.join(base),
            stamp: Some(stamp.to_string()),
            status,
        });
    }
    let p = name.find(".current")?;
    let rest = &name[p + ".current".len()..];
    if p == 0 || !(rest.is_empty() || rest.starts_with('.')) {
        return None;
    }
    Some(RotatedName {
        base: dir.join(&name[..p]),
        stamp: None,
        status: RotationStatus::Current,
    })
}

/// Reading order: files of one rotation base together (at the place of the first of them),
/// saved ones by stamp, the current one last; other files keep their given order.
pub fn order_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    type Member = (Option<RotatedName>, PathBuf);
    let mut groups: Vec<(Option<PathBuf>, Vec<Member>)> = Vec::new();
    for p in paths {
        let r = rotated_name(p);
        let base = r.as_ref().map(|r| r.base.clone());
        match base
            .as_ref()
            .and_then(|b| groups.iter_mut().find(|(gb, _)| gb.as_ref() == Some(b)))
        {
            Some((_, members)) => members.push((r, p.clone())),
            None => groups.push((base, vec![(r, p.clone())])),
        }
    }
    let mut out = Vec::with_capacity(paths.len());
    for (_, mut members) in groups {
        members.sort_by(|(a, _), (b, _)| {
            let key = |r: &Option<RotatedName>| r.as_ref().map(|r| (r.status, r.stamp.clone()));
            key(a).cmp(&key(b))
        });
        out.extend(members.into_iter().map(|(_, p)| p));
    }
    out
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileSummary {
    pub path: String,
    /// Size on disk (compressed size for gzip).
    pub size: Option<u64>,
    pub gzip: bool,
    pub rotation: Option<RotationStatus>,
    pub stamp: Option<String>,
    /// Appliance key of the lines of this file that carry no syslog host.
    pub appliance: String,
    pub version: Option<String>,
    pub serial: Option<String>,
    /// Values of its `Time offset from UTC` lines (those without a syslog host).
    pub time_offsets: Vec<i64>,
    /// Syslog hosts seen in it.
    pub hosts: Vec<String>,
    pub year_hint: YearHint,
    #[serde(flatten)]
    pub counts: LineCounters,
    /// Why reading stopped early (damaged gzip), if it did.
    pub damage: Option<String>,
}

/// An unknown or unparsed line kept as an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownLine {
    pub file: String,
    pub line: u64,
    pub reason: SampleReason,
    pub text: String,
}

/// A `Time offset from UTC` header value and where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeOffsetHint {
    pub appliance: String,
    pub file: u32,
    pub line: u64,
    pub seconds: i64,
}

/// What was read, in numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogSummary {
    pub files: Vec<FileSummary>,
    /// Totals over all files (`first_time` / `last_time` give the time span).
    #[serde(flatten)]
    pub counts: LineCounters,
    /// Records by event kind (snake_case names), duplicates included.
    pub records_by_kind: BTreeMap<&'static str, u64>,
    /// Lifecycle lines dropped as repeats.
    pub duplicates: u64,
    /// Lines about ICID 0 (internal, not a connection).
    pub internal_icid_lines: u64,
    pub icids: usize,
    pub mids: usize,
    /// ICIDs by outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    pub appliances: Vec<String>,
    pub time_offsets: Vec<TimeOffsetHint>,
    pub samples: Vec<UnknownLine>,
}

/// The mail-log stage's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailLog {
    /// Sorted by connect time (or first line), then appliance, then ICID.
    pub icids: Vec<IcidRecord>,
    /// Sorted by appliance, then MID.
    pub mids: Vec<MidRecord>,
    pub summary: LogSummary,
}

impl MailLog {
    /// The record of one MID.
    pub fn mid(&self, appliance: &str, mid: u64) -> Option<&MidRecord> {
        // The MIDs of one appliance are a run of the list (all of it, usually): find the run
        // by name (two comparisons when it is all of it), then the MID by number.
        let (first, last) = (self.mids.first()?, self.mids.last()?);
        let run = if first.appliance == appliance && last.appliance == appliance {
            &self.mids[..]
        } else {
            let lo = self
                .mids
                .partition_point(|m| m.appliance.as_str() < appliance);
            let hi = lo + self.mids[lo..].partition_point(|m| m.appliance == appliance);
            &self.mids[lo..hi]
        };
        run.binary_search_by_key(&mid, |m| m.mid)
            .ok()
            .map(|i| &run[i])
    }

    /// The MID records of a connection, in MID order.
    pub fn mids_of<'a>(&'a self, icid: &'a IcidRecord) -> impl Iterator<Item = &'a MidRecord> {
        icid.mids
            .iter()
            .filter_map(|&m| self.mid(&icid.appliance, m))
    }

    /// The first `Time offset from UTC` value seen for an appliance.
    pub fn time_offset_hint(&self, appliance: &str) -> Option<i64> {
        self.summary
            .time_offsets
            .iter()
            .find(|t| t.appliance == appliance)
            .map(|t| t.seconds)
    }
}

/// Reads line after line into `buf` (cleared first), keeping at most `cap` bytes of a line
/// (newline included) and skipping the rest. `Ok(None)` at the end of input, else whether the
/// line was cut.
pub fn read_capped_line<R: BufRead + ?Sized>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut truncated = false;
    let mut any = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(any.then_some(truncated));
        }
        any = true;
        let (n, found) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        if n <= room {
            buf.extend_from_slice(&avail[..n]);
        } else {
            buf.extend_from_slice(&avail[..room]);
            truncated = true;
        }
        r.consume(n);
        if found {
            return Ok(Some(truncated));
        }
    }
}

/// Bytes read from the input at a time.
const READ_SIZE: usize = 256 * 1024;

/// What [`LineSplitter::run`] hands out.
enum Piece<'a> {
    /// Whole lines, each with its line end; those longer than the cap are still whole.
    Lines(&'a [u8]),
    /// One line (the head of a line longer than the cap, `true`, or a last line without a
    /// line end).
    Line(&'a [u8], bool),
}

/// Splits a stream into lines through one reused buffer: runs of whole lines are handed out
/// in place; a line that does not fit the cap is handed out alone, cut to the cap, and the
/// rest of it skipped (with the cuts of [`read_capped_line`] when the pieces are cut to the
/// cap too).
struct LineSplitter {
    buf: Vec<u8>,
    cap: usize,
}

impl LineSplitter {
    fn new(cap: usize) -> Self {
        LineSplitter {
            buf: vec![0; 2 * READ_SIZE],
            cap,
        }
    }

    /// Calls `f` for every run of lines of `r`. A read error ends the stream there (after
    /// every whole line before it was handed out).
    fn run<R: Read>(&mut self, r: &mut R, mut f: impl FnMut(Piece<'_>)) -> io::Result<()> {
        let cap = self.cap;
        let (mut pos, mut filled) = (0usize, 0usize);
        // Inside a line longer than the cap, whose head was handed out.
        let mut skipping = false;
        let mut eof = false;
        loop {
            let buf = &self.buf[..filled];
            if skipping && let Some(k) = memchr::memchr(b'\n', &buf[pos..]) {
                skipping = false;
                pos += k + 1;
            }
            if !skipping && let Some(k) = memchr::memrchr(b'\n', &buf[pos..]) {
                f(Piece::Lines(&buf[pos..pos + k + 1]));
                pos += k + 1;
            }
            if skipping {
                pos = filled;
            } else if filled - pos > cap {
                f(Piece::Line(&buf[pos..pos + cap], true));
                skipping = true;
                pos = filled;
            }
            if eof {
                if pos < filled {
                    f(Piece::Line(&buf[pos..filled], false));
                }
                return Ok(());
            }
            // Keep the start of the unfinished line and read more after it.
            self.buf.copy_within(pos..filled, 0);
            filled -= pos;
            pos = 0;
            if self.buf.len() - filled < READ_SIZE {
                self.buf.resize(filled + READ_SIZE, 0);
            }
            loop {
                match r.read(&mut self.buf[filled..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        filled += n;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// From about this many lines on, records are folded into lifecycles on a second thread while
/// the next lines are parsed.
const PIPELINE_LINES: usize = 100_000;

/// Records sent to the lifecycle thread at a time.
const BATCH: usize = 4096;

/// Where parsed records go, with the parser's host names so far.
type Sink<'a> = dyn FnMut(LogRecord, &[String]) + 'a;

/// A batch of records, with the syslog host names that appeared since the last one.
struct Batch {
    recs: Vec<LogRecord>,
    new_hosts: Vec<String>,
}

/// Runs `read` (the parsing of one file, which hands each record to its sink) on this thread
/// and adds the records to `lifecycle` on another, in the same order. Returns what `read`
/// returned.
fn pipelined<T>(
    index: u32,
    lifecycle: &mut LifecycleBuilder,
    read: &mut dyn FnMut(&mut Sink<'_>) -> T,
) -> T {
    use std::sync::mpsc;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Batch>(8);
        let (back_tx, back_rx) = mpsc::channel::<Vec<LogRecord>>();
        let worker = scope.spawn(move || {
            let mut hosts: Vec<String> = Vec::new();
            for mut batch in rx {
                hosts.append(&mut batch.new_hosts);
                for rec in batch.recs.drain(..) {
                    let host = rec.host.map(|h| hosts[h as usize].as_str());
                    lifecycle.add(index, host, rec);
                }
                // The parser may be gone already: then the buffer is not needed.
                let _ = back_tx.send(batch.recs);
            }
        });
        let mut cur: Vec<LogRecord> = Vec::with_capacity(BATCH);
        // The parser's host names so far, and how many of them the worker has.
        let mut hosts: Vec<String> = Vec::new();
        let mut hosts_sent = 0;
        let mut send = |cur: &mut Vec<LogRecord>, hosts: &[String]| {
            let next = back_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH));
            let recs = std::mem::replace(cur, next);
            let new_hosts = hosts[hosts_sent..].to_vec();
            hosts_sent = hosts.len();
            // A send fails only when the worker is gone (it panicked): the join reports it.
            let _ = tx.send(Batch { recs, new_hosts });
        };
        let out = read(&mut |rec: LogRecord, now: &[String]| {
            if now.len() > hosts.len() {
                hosts.extend_from_slice(&now[hosts.len()..]);
            }
            cur.push(rec);
            if cur.len() == BATCH {
                send(&mut cur, &hosts);
            }
        });
        if !cur.is_empty() {
            send(&mut cur, &hosts);
        }
        drop(tx);
        if let Err(p) = worker.join() {
            std::panic::resume_unwind(p);
        }
        out
    })
}

/// Accumulates files into a [`MailLog`].
#[derive(Debug)]
pub struct MailLogBuilder {
    opts: LogOptions,
    files: Vec<FileSummary>,
    samples: Vec<(u32, LineSample)>,
    lifecycle: LifecycleBuilder,
    time_offsets: Vec<(String, u32, u64, i64)>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl MailLogBuilder {
    pub fn new(opts: LogOptions) -> Self {
        MailLogBuilder {
            opts,
            files: Vec::new(),
            samples: Vec::new(),
            lifecycle: LifecycleBuilder::new(),
            time_offsets: Vec::new(),
        }
    }

    /// Reads one file (plain or gzip).
    pub fn add_file(&mut self, path: &Path) -> Result<(), MailLogError> {
        let err = |kind, source| MailLogError {
            path: path.to_path_buf(),
            line: None,
            kind,
            source,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(MailLogErrorKind::Open, Some(e)))?;
        if meta.is_dir() {
            return Err(err(MailLogErrorKind::IsDirectory, None));
        }
        // A device (/dev/zero, a terminal) never ends: refused, not read forever.
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            if t.is_char_device() || t.is_block_device() {
                let e = io::Error::other("a device, not a log file");
                return Err(err(MailLogErrorKind::Open, Some(e)));
            }
        }
        let file = File::open(path).map_err(|e| err(MailLogErrorKind::Open, Some(e)))?;
        let year = match (self.opts.year_hint, self.opts.syslog_year) {
            (Some(h), _) => h,
            (None, Some(y)) => YearHint::Start(y),
            (None, None) => {
                let t: DateTime<Utc> = meta
                    .modified()
                    .map(DateTime::from)
                    .unwrap_or_else(|_| Utc::now());
                YearHint::End {
                    year: t.year(),
                    month: t.month(),
                }
            }
        };
        self.add_reader(&path.display().to_string(), Some(meta.len()), file, year)
            .map_err(|mut e| {
                e.path = path.to_path_buf();
                e
            })
    }

    /// Reads one stream (plain or gzip) named `name`.
    pub fn add_reader<R: Read>(
        &mut self,
        name: &str,
        size: Option<u64>,
        reader: R,
        year: YearHint,
    ) -> Result<(), MailLogError> {
        let index = self.files.len() as u32;
        let mut plain = BufReader::with_capacity(256 * 1024, reader);
        let head = plain.fill_buf().map_err(|e| MailLogError {
            path: PathBuf::from(name),
            line: Some(1),
            kind: MailLogErrorKind::Read,
            source: Some(e),
        })?;
        let gzip = head.starts_with(&GZIP_MAGIC);
        let mut input: Box<dyn Read + '_> = if gzip {
            Box::new(MultiGzDecoder::new(plain))
        } else {
            Box::new(plain)
        };
        let mut parser = LineParser::new(
            index,
            ParserOptions {
                year,
                max_samples: self.opts.max_samples,
                ..ParserOptions::default()
            },
        );
        let mut line_no = 0u64;
        let mut damage = None;
        let mut splitter = LineSplitter::new(self.opts.max_line_len);
        let cap = self.opts.max_line_len;
        // About how many lines to expect (a gzip file holds several times its size).
        let expect = size.map_or(0, |n| if gzip { n / 10 } else { n / 100 }) as usize;
        self.lifecycle.reserve(expect);
        let mut read = |add: &mut Sink<'_>| {
            let res = splitter.run(&mut input, |piece| match piece {
                Piece::Lines(chunk) => {
                    line_no = parser.push_chunk(chunk, line_no + 1, cap, add) - 1;
                }
                Piece::Line(line, truncated) => {
                    line_no += 1;
                    if truncated {
                        parser.counters_mut().long_lines += 1;
                    }
                    if let Some(rec) = parser.push_line(line, line_no) {
                        add(rec, parser.hosts());
                    }
                }
            });
            if let Some(rec) = parser.finish() {
                add(rec, parser.hosts());
            }
            res
        };
        let lifecycle = &mut self.lifecycle;
        let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let res = if two_cores && expect >= PIPELINE_LINES {
            pipelined(index, lifecycle, &mut read)
        } else {
            read(&mut |rec: LogRecord, hosts: &[String]| {
                let host = rec.host.map(|h| hosts[h as usize].as_str());
                lifecycle.add(index, host, rec);
            })
        };
        match res {
            Ok(()) => {}
            Err(e) if gzip => {
                damage = Some(format!("gzip stream damaged after line {line_no}: {e}"));
            }
            Err(e) => {
                return Err(MailLogError {
                    path: PathBuf::from(name),
                    line: Some(line_no + 1),
                    kind: MailLogErrorKind::Read,
                    source: Some(e),
                });
            }
        }
        let header = parser.header().clone();
        let rot = rotated_name(Path::new(name));
        let appliance = match &header.serial {
            Some(sn) => format!("sn:{sn}"),
            None => match &rot {
                Some(r) => format!("file:{}", r.base.display()),
                None => format!("file:{name}"),
            },
        };
        for &(line, seconds, host) in &header.time_offsets {
            let key = match host {
                Some(h) => format!("host:{}", parser.hosts()[h as usize]),
                None => appliance.clone(),
            };
            self.time_offsets.push((key, index, line, seconds));
        }
        let room = self.opts.max_samples.saturating_sub(self.samples.len());
        self.samples.extend(
            parser
                .samples()
                .iter()
                .take(room)
                .map(|s| (index, s.clone())),
        );
        self.files.push(FileSummary {
            path: name.to_string(),
            size,
            gzip,
            rotation: rot.as_ref().map(|r| r.status),
            stamp: rot.and_then(|r| r.stamp),
            appliance,
            version: header.version,
            serial: header.serial,
            time_offsets: header
                .time_offsets
                .iter()
                .filter(|t| t.2.is_none())
                .map(|t| t.1)
                .collect(),
            hosts: parser.hosts().to_vec(),
            year_hint: year,
            counts: parser.counters().clone(),
            damage,
        });
        Ok(())
    }

    /// Folds the lifecycles and builds the summary.
    pub fn finish(self) -> MailLog {
        let files = self.files;
        let hosts = self.lifecycle.hosts().to_vec();
        let file_keys: Vec<String> = files.iter().map(|f| f.appliance.clone()).collect();
        let appliance_of = |k: SourceKey| match k {
            SourceKey::File(i) => file_keys[i as usize].clone(),
            SourceKey::Host(h) => format!("host:{}", hosts[h as usize]),
        };
        let lc = self.lifecycle.finish(
            &appliance_of,
            &LifecycleOptions {
                idle_timeout_secs: self.opts.idle_timeout_secs,
            },
        );
        let mut counts = LineCounters::default();
        for f in &files {
            counts.add(&f.counts);
        }
        let records_by_kind = EVENT_KINDS
            .iter()
            .zip(counts.by_kind.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (*k, *n))
            .collect();
        let mut outcomes = BTreeMap::new();
        for r in &lc.icids {
            *outcomes.entry(r.outcome.as_str()).or_insert(0) += 1;
        }
        let mut appliances: Vec<String> = lc
            .icids
            .iter()
            .map(|r| r.appliance.clone())
            .chain(lc.mids.iter().map(|m| m.appliance.clone()))
            .chain(
                files
                    .iter()
                    .filter(|f| f.serial.is_some())
                    .map(|f| f.appliance.clone()),
            )
            .collect();
        appliances.sort();
        appliances.dedup();
        let time_offsets = self
            .time_offsets
            .into_iter()
            .map(|(appliance, file, line, seconds)| TimeOffsetHint {
                appliance,
                file,
                line,
                seconds,
            })
            .collect();
        let samples = self
            .samples
            .into_iter()
            .map(|(i, s)| UnknownLine {
                file: files[i as usize].path.clone(),
                line: s.line,
                reason: s.reason,
                text: s.text,
            })
            .collect();
        let summary = LogSummary {
            counts,
            records_by_kind,
            duplicates: lc.duplicates,
            internal_icid_lines: lc.internal_icid_lines,
            icids: lc.icids.len(),
            mids: lc.mids.len(),
            outcomes,
            appliances,
            time_offsets,
            samples,
            files,
        };
        MailLog {
            icids: lc.icids,
            mids: lc.mids,
            summary,
        }
    }
}

/// Reads mail-log files (in [`order_paths`] order) into ICID and MID records.
pub fn read_logs(paths: &[PathBuf], opts: &LogOptions) -> Result<MailLog, MailLogError> {
    let mut b = MailLogBuilder::new(opts.clone());
    for p in order_paths(paths) {
        b.add_file(&p)?;
    }
    Ok(b.finish())
}

/// Parses log text held in memory (one stream named `name`).
pub fn parse_bytes(name: &str, bytes: &[u8], year: YearHint, opts: &LogOptions) -> MailLog {
    let mut b = MailLogBuilder::new(opts.clone());
    b.add_reader(name, Some(bytes.len() as u64), bytes, year)
        .expect("reading from memory does not fail");
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn mid_lookup_by_appliance_and_number() {
        let text = "<22>Feb  2 10:31:37 esa1 mail_logs: Info: Start MID 5 ICID 1\n\
                    <22>Feb  2 10:31:37 esa2 mail_logs: Info: Start MID 5 ICID 2\n\
                    <22>Feb  2 10:31:37 esa2 mail_logs: Info: Start MID 7 ICID 2\n\
                    <22>Feb  2 10:31:38 esa1 mail_logs: Info: Start MID 9 ICID 3\n";
        let log = parse_bytes(
            "mem",
            text.as_bytes(),
            YearHint::Start(2022),
            &LogOptions::default(),
        );
        assert_eq!(log.mids.len(), 4);
        for m in &log.mids {
            let found = log.mid(&m.appliance, m.mid).expect("found");
            assert_eq!(
                (found.appliance.as_str(), found.mid),
                (m.appliance.as_str(), m.mid)
            );
        }
        assert_eq!(log.mid("host:esa1", 7), None);
        assert_eq!(log.mid("host:esa3", 5), None);
        assert_eq!(log.mid("host:esa2", 7).and_then(|m| m.icid), Some(2));
        // One appliance only: the whole list is its run.
        let one = parse_bytes(
            "mem",
            b"Thu Aug 14 11:04:31 2014 Info: Start MID 3 ICID 1\n",
            YearHint::Start(2014),
            &LogOptions::default(),
        );
        assert_eq!(one.mid("file:mem", 3).map(|m| m.mid), Some(3));
        assert_eq!(one.mid("file:other", 3), None);
    }

    #[test]
    fn capped_lines() {
        let data = b"short\nxxxxxxxxxxxxxxxxxxxx\nlast";
        let mut r = BufReader::with_capacity(4, Cursor::new(&data[..]));
        let mut buf = Vec::new();
        assert_eq!(read_capped_line(&mut r, &mut buf, 8).unwrap(), Some(false));
        assert_eq!(buf, b"short\n");
        assert_eq!(read_capped_line(&mut r, &mut buf, 8).unwrap(), Some(true));
        assert_eq!(buf, b"xxxxxxxx");
        assert_eq!(read_capped_line(&mut r, &mut buf, 8).unwrap(), Some(false));
        assert_eq!(buf, b"last");
        assert_eq!(read_capped_line(&mut r, &mut buf, 8).unwrap(), None);
    }

    #[test]
    fn rotation_names_and_order() {
        let r = rotated_name(Path::new("/l/mail.@20140814T110431.s")).unwrap();
        assert_eq!(r.base, PathBuf::from("/l/mail"));
        assert_eq!(r.stamp.as_deref(), Some("20140814T110431"));
        assert_eq!(r.status, RotationStatus::Saved);
        let r = rotated_name(Path::new("mail_logs.@123456789.s.log")).unwrap();
        assert_eq!(r.base, PathBuf::from("mail_logs"));
        assert_eq!(
            rotated_name(Path::new("/l/mail.current")).unwrap().status,
            RotationStatus::Current
        );
        assert_eq!(
            rotated_name(Path::new("/l/mail.@20140815T000000.c.gz"))
                .unwrap()
                .status,
            RotationStatus::Current
        );
        assert_eq!(rotated_name(Path::new("/l/mail.log")), None);
        assert_eq!(rotated_name(Path::new("/l/mail.@x.q")), None);

        let given: Vec<PathBuf> = [
            "/l/mail.current",
            "/x/other.log",
            "/l/mail.@20140815T000000.s.gz",
            "/l/mail.@20140814T110431.s",
            "/m/mail.@20200101T000000.s",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let want: Vec<PathBuf> = [
            "/l/mail.@20140814T110431.s",
            "/l/mail.@20140815T000000.s.gz",
            "/l/mail.current",
            "/x/other.log",
            "/m/mail.@20200101T000000.s",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(order_paths(&given), want);
    }
}
