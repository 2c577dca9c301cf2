//! Line framing and timestamps: raw lines of one input stream to [`LogRecord`]s.
//!
//! Contract: [`LineParser`] is fed physical lines one at a time ([`LineParser::push_line`], bytes
//! without or with their `\n` / `\r\n`) and hands back each logical record once it is complete
//! (a record is complete when the next framed line arrives, or at [`LineParser::finish`]). It
//! accepts the on-box form (`Www Mmm D HH:MM:SS YYYY Level: msg`, day padded or not), the BSD
//! syslog form (`<PRI>Mmm dd HH:MM:SS [host] TAG: Level: msg`, no year: the year comes from a
//! [`YearHint`], with the Dec→Jan wrap followed), and relay prefixes
//! (`Mmm dd HH:MM:SS YYYY host TAG: Level: msg`). A line that does not start with a timestamp
//! continues the record before it (the page-wrap case); the join is a single space unless only
//! joining without a space makes the record parse. Such a line at the start of a stream (or
//! after an unusable line) is counted as unparsed. Bytes that are not UTF-8 are replaced
//! (lossy) and counted; trailing spaces and CR are trimmed. Nothing here fails: every oddity is
//! a counter or a sample. Times stay naive appliance-local ([`LocalTime`]); [`LogZone`] and
//! [`local_to_utc`] convert when the caller knows the zone.
//!
//! Speed: [`LineParser::push_bytes`] (and the reader) feed whole buffers: UTF-8 is checked once
//! per buffer, a line whose timestamp bytes equal the previous line's reuses its time without
//! reading the digits, and a line followed by one with the same timestamp (which therefore
//! cannot be a continuation) is classified in place instead of being copied as the pending
//! record. The records are the same as line by line.

use std::borrow::Cow;
use std::ops::Range;

use chrono::{LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

use super::event::{EVENT_KINDS, Event, classify, is_other_subscription};
use crate::types::Timestamp;

// ---------------------------------------------------------------------------------------------
// Times.

/// An appliance-local time as printed in the log: naive, one-second resolution.
/// Serialized as `YYYY-MM-DDTHH:MM:SS` (no zone: it is not UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(pub NaiveDateTime);

impl LocalTime {
    /// This time in UTC, given the appliance's zone.
    pub fn to_utc(self, zone: &LogZone) -> Timestamp {
        local_to_utc(self.0, zone)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// The zone of an appliance's log times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogZone {
    /// Seconds east of UTC: local = UTC + offset (the sign of the `Time offset from UTC`
    /// header).
    Fixed(i32),
    /// A named zone (follows DST, which the header does not).
    Named(Tz),
}

impl LogZone {
    /// From the value of a `Time offset from UTC: N seconds` header.
    pub fn from_header_offset(seconds: i64) -> Option<LogZone> {
        i32::try_from(seconds)
            .ok()
            .filter(|s| s.abs() <= 26 * 3600)
            .map(LogZone::Fixed)
    }
}

/// Converts an appliance-local time to UTC. For a named zone an ambiguous local time (the
/// repeated hour when DST ends) takes the earlier instant; a time that does not exist (the
/// skipped hour when DST starts) is read with the offset in force just before the gap.
pub fn local_to_utc(t: NaiveDateTime, zone: &LogZone) -> Timestamp {
    let utc = match zone {
        LogZone::Fixed(off) => t - chrono::Duration::seconds(i64::from(*off)),
        LogZone::Named(tz) => match tz.from_local_datetime(&t) {
            LocalResult::Single(d) => d.naive_utc(),
            LocalResult::Ambiguous(a, _) => a.naive_utc(),
            LocalResult::None => {
                // Offset one day earlier is the offset before the gap.
                let before = t - chrono::Duration::days(1);
                match tz.from_local_datetime(&before) {
                    LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => {
                        d.naive_utc() + chrono::Duration::days(1)
                    }
                    LocalResult::None => t,
                }
            }
        },
    };
    let u = utc.and_utc();
    Timestamp::from_secs_nanos(u.timestamp(), u.timestamp_subsec_nanos())
}

/// Where the year of year-less (syslog) timestamps comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum YearHint {
    /// The first year-less line is in this year.
    Start(i32),
    /// The stream ends at or before this month of this year (e.g. the file's modification
    /// time): the first line's year is chosen so that it is not after it.
    End { year: i32, month: u32 },
    /// The first line is within six months of this month of this year (e.g. the capture's
    /// date): the nearest year is chosen.
    Near { year: i32, month: u32 },
}

impl YearHint {
    /// The year of a first line in `month`.
    pub fn first_year(self, month: u32) -> i32 {
        match self {
            YearHint::Start(y) => y,
            YearHint::End { year, month: m } => {
                if month > m {
                    year - 1
                } else {
                    year
                }
            }
            YearHint::Near { year, month: m } => {
                let target = i64::from(year) * 12 + i64::from(m);
                // On a tie (exactly six months) the reference year wins: it comes first.
                [year, year - 1, year + 1]
                    .into_iter()
                    .min_by_key(|y| (i64::from(*y) * 12 + i64::from(month) - target).abs())
                    .unwrap_or(year)
            }
        }
    }
}

/// Assigns years to year-less timestamps in stream order, following the Dec→Jan wrap.
#[derive(Debug, Clone)]
struct YearTracker {
    hint: YearHint,
    year: Option<i32>,
    last_month: u32,
}

impl YearTracker {
    fn new(hint: YearHint) -> Self {
        YearTracker {
            hint,
            year: None,
            last_month: 0,
        }
    }

    fn year_for(&mut self, month: u32) -> i32 {
        let Some(year) = self.year else {
            let y = self.hint.first_year(month);
            self.year = Some(y);
            self.last_month = month;
            return y;
        };
        if month + 6 < self.last_month {
            // Dec → Jan: a new year.
            self.year = Some(year + 1);
            self.last_month = month;
            year + 1
        } else if month > self.last_month + 6 {
            // A straggler from before the wrap: previous year, state unchanged.
            year - 1
        } else {
            self.last_month = month;
            year
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Framing.

/// How a record was framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// `Www Mmm D HH:MM:SS YYYY Level: msg` (the on-box file).
    OnBox,
    /// `<PRI>Mmm dd HH:MM:SS [host] TAG: Level: msg` (what a collector receives; no year).
    Syslog,
    /// A relay's written prefix with a year: `Mmm dd HH:MM:SS YYYY host TAG: Level: msg`.
    Relay,
}

/// The ESA level word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Critical,
    Debug,
    Trace,
}

const LEVELS: [(&str, Level); 5] = [
    ("Info", Level::Info),
    ("Warning", Level::Warning),
    ("Critical", Level::Critical),
    ("Debug", Level::Debug),
    ("Trace", Level::Trace),
];

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

/// The framing prefix of a line, as positions into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    pub framing: Framing,
    pub pri: Option<u16>,
    pub year: Option<i32>,
    pub month: u32,
    pub day: u32,
    pub hms: (u32, u32, u32),
    pub host: Option<Range<usize>>,
    pub tag: Option<Range<usize>>,
    pub level: Option<Level>,
    /// Where the message (after `Level: `) starts.
    pub msg_start: usize,
}

/// What the start of a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameResult {
    Framed(Prefix),
    /// Looks like a timestamp but is not a valid time (e.g. `25:61:00`).
    BadTime,
    /// Does not start with a timestamp: a continuation or garbage.
    NotFramed,
}

fn month_at(b: &[u8], i: usize) -> Option<u32> {
    let w = b.get(i..i + 3)?;
    MONTHS
        .iter()
        .position(|m| &m[..] == w)
        .map(|p| p as u32 + 1)
}

fn weekday_at(b: &[u8], i: usize) -> bool {
    b.get(i..i + 3)
        .is_some_and(|w| WEEKDAYS.iter().any(|d| &d[..] == w))
}

/// Skips one or more spaces; `None` when there is none.
fn spaces(b: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    (i > start).then_some(i)
}

/// 1 to `max` digits.
fn digits(b: &[u8], mut i: usize, max: usize) -> Option<(u32, usize)> {
    let start = i;
    let mut v = 0u32;
    while i < b.len() && i - start < max && b[i].is_ascii_digit() {
        v = v * 10 + u32::from(b[i] - b'0');
        i += 1;
    }
    (i > start).then_some((v, i))
}

fn two_digits(b: &[u8], i: usize) -> Option<u32> {
    let d = b.get(i..i + 2)?;
    (d[0].is_ascii_digit() && d[1].is_ascii_digit())
        .then(|| u32::from(d[0] - b'0') * 10 + u32::from(d[1] - b'0'))
}

/// `HH:MM:SS` at `i`.
fn hms(b: &[u8], i: usize) -> Option<(Hms, usize)> {
    let h = two_digits(b, i)?;
    (b.get(i + 2) == Some(&b':')).then_some(())?;
    let m = two_digits(b, i + 3)?;
    (b.get(i + 5) == Some(&b':')).then_some(())?;
    let s = two_digits(b, i + 6)?;
    Some(((h, m, s), i + 8))
}

/// Hours, minutes, seconds.
type Hms = (u32, u32, u32);

/// `Mmm D HH:MM:SS` at `i`: month, day, time, end.
fn month_day_time(b: &[u8], i: usize) -> Option<(u32, u32, Hms, usize)> {
    let month = month_at(b, i)?;
    let i = spaces(b, i + 3)?;
    let (day, i) = digits(b, i, 2)?;
    let i = spaces(b, i)?;
    let (t, i) = hms(b, i)?;
    Some((month, day, t, i))
}

/// A four-digit year at `i` followed by a space or the end.
fn year_at(b: &[u8], i: usize) -> Option<(i32, usize)> {
    let d = b.get(i..i + 4)?;
    if !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !(i + 4 == b.len() || b[i + 4] == b' ') {
        return None;
    }
    let y = d.iter().fold(0i32, |a, c| a * 10 + i32::from(c - b'0'));
    Some((y, i + 4))
}

fn level_at(s: &str, i: usize) -> Option<(Level, usize)> {
    let r = &s.as_bytes()[i..];
    for (name, level) in LEVELS {
        let n = name.len();
        if r.len() > n && &r[..n] == name.as_bytes() && r[n] == b':' {
            if r.len() == n + 1 {
                return Some((level, i + n + 1));
            }
            if r[n + 1] == b' ' {
                return Some((level, i + n + 2));
            }
        }
    }
    None
}

/// Recognises the framing prefix of a (trimmed) line.
pub fn parse_prefix(line: &str) -> FrameResult {
    frame(line).0
}

/// Where an on-box timestamp that starts a line ends (the byte after its year), when the line
/// has no `<PRI>`: a later line with the same bytes up to there frames the same way up to there.
type StampEnd = Option<usize>;

/// [`parse_prefix`], also telling where an on-box timestamp at the start of the line ends.
fn frame(line: &str) -> (FrameResult, StampEnd) {
    let b = line.as_bytes();
    let mut i = 0;
    let mut pri = None;
    if b.first() == Some(&b'<') {
        let Some((p, j)) = digits(b, 1, 3) else {
            return (FrameResult::NotFramed, None);
        };
        if b.get(j) != Some(&b'>') {
            return (FrameResult::NotFramed, None);
        }
        pri = Some(p as u16);
        i = j + 1;
    }
    let (ctime, month, day, t, i, year) = if weekday_at(b, i) && b.get(i + 3) == Some(&b' ') {
        // Www Mmm D HH:MM:SS YYYY
        let Some(j) = spaces(b, i + 3) else {
            return (FrameResult::NotFramed, None);
        };
        let Some((month, day, t, j)) = month_day_time(b, j) else {
            return (FrameResult::NotFramed, None);
        };
        let Some((year, j)) = spaces(b, j).and_then(|j| year_at(b, j)) else {
            return (FrameResult::NotFramed, None);
        };
        (true, month, day, t, j, Some(year))
    } else if let Some((month, day, t, j)) = month_day_time(b, i) {
        if !(j == b.len() || b[j] == b' ') {
            return (FrameResult::NotFramed, None);
        }
        match spaces(b, j).and_then(|k| year_at(b, k)) {
            Some((year, k)) => (false, month, day, t, k, Some(year)),
            None => (false, month, day, t, j, None),
        }
    } else {
        return (FrameResult::NotFramed, None);
    };
    if !(1..=31).contains(&day) || t.0 > 23 || t.1 > 59 || t.2 > 60 {
        return (FrameResult::BadTime, None);
    }
    let stamp_end = (ctime && pri.is_none()).then_some(i);
    let rest = frame_rest(line, i, ctime, year);
    let FrameResult::Framed(mut p) = rest else {
        return (rest, None);
    };
    p.pri = pri;
    p.month = month;
    p.day = day;
    p.hms = t;
    (FrameResult::Framed(p), stamp_end)
}

/// The part of a framed line after its timestamp (at `i`): `Level: msg`, or
/// `[host] TAG: Level: msg`. Month, day and time are left zero for the caller to fill in.
fn frame_rest(line: &str, mut i: usize, ctime: bool, year: Option<i32>) -> FrameResult {
    let b = line.as_bytes();
    // After the time: `Level: msg`, or `[host] TAG: Level: msg`.
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let mut host = None;
    let mut tag = None;
    let (level, msg_start) = match level_at(line, i) {
        Some((l, m)) => (Some(l), m),
        None => {
            let tok_end = |from: usize| {
                b[from..]
                    .iter()
                    .position(|&c| c == b' ')
                    .map_or(b.len(), |p| from + p)
            };
            let e1 = tok_end(i);
            let mut after_tag = None;
            if e1 > i + 1 && b[e1 - 1] == b':' {
                tag = Some(i..e1 - 1);
                after_tag = Some(e1);
            } else if e1 > i {
                let j = spaces(b, e1).unwrap_or(e1);
                let e2 = tok_end(j);
                if e2 > j + 1 && b[e2 - 1] == b':' {
                    host = Some(i..e1);
                    tag = Some(j..e2 - 1);
                    after_tag = Some(e2);
                }
            }
            match after_tag {
                Some(a) => {
                    let a = spaces(b, a).unwrap_or(a);
                    match level_at(line, a) {
                        Some((l, m)) => (Some(l), m),
                        None => (None, a),
                    }
                }
                None => (None, i),
            }
        }
    };
    let framing = match (ctime, year, &tag) {
        (true, _, None) => Framing::OnBox,
        (true, _, Some(_)) | (false, Some(_), _) => Framing::Relay,
        (false, None, _) => Framing::Syslog,
    };
    FrameResult::Framed(Prefix {
        framing,
        pri: None,
        year,
        month: 0,
        day: 0,
        hms: (0, 0, 0),
        host,
        tag,
        level,
        msg_start: msg_start.min(b.len()),
    })
}

// ---------------------------------------------------------------------------------------------
// The streaming parser.

/// One logical record (a framed line plus its continuation lines).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRecord {
    /// Line number (1-based) of the framed line in its stream.
    pub line: u64,
    pub time: LocalTime,
    pub framing: Framing,
    pub level: Option<Level>,
    /// The syslog host, as an index into [`LineParser::hosts`].
    pub host: Option<u32>,
    pub event: Event,
    /// Hash of the time and the message text (duplicate detection).
    pub hash: u64,
    /// Continuation lines joined into this record.
    pub continuation_lines: u32,
}

/// Why a line was sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleReason {
    /// Framed, but the message matches no known template.
    Unknown,
    /// No timestamp and no record to continue.
    Unparsed,
    /// A timestamp that is not a valid time.
    BadTimestamp,
}

/// A kept example of a line that was not understood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineSample {
    /// Index of the input stream.
    pub file: u32,
    pub line: u64,
    pub reason: SampleReason,
    /// The line (with its continuations), truncated to 512 bytes.
    pub text: String,
}

/// Counts of one stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LineCounters {
    /// Physical lines seen.
    pub lines: u64,
    pub blank_lines: u64,
    /// Logical records (framed lines).
    pub records: u64,
    /// Lines that continued a record (wrapped lines).
    pub continuation_lines: u64,
    /// Lines without a timestamp and without a record to continue (incl. bad timestamps).
    pub unparsed_lines: u64,
    pub bad_timestamps: u64,
    /// Records whose message matched no template.
    pub unknown_records: u64,
    /// Records of other log subscriptions (ignored).
    pub other_subscription: u64,
    /// Lines that contained bytes that are not UTF-8 (replaced).
    pub invalid_utf8_lines: u64,
    /// Lines longer than the cap (the rest was skipped); counted by the reader.
    pub long_lines: u64,
    /// Records by event kind ([`EVENT_KINDS`] order).
    #[serde(skip)]
    pub by_kind: [u64; EVENT_KINDS.len()],
    pub first_time: Option<LocalTime>,
    pub last_time: Option<LocalTime>,
}

impl LineCounters {
    /// Adds another stream's counts.
    pub fn add(&mut self, o: &LineCounters) {
        self.lines += o.lines;
        self.blank_lines += o.blank_lines;
        self.records += o.records;
        self.continuation_lines += o.continuation_lines;
        self.unparsed_lines += o.unparsed_lines;
        self.bad_timestamps += o.bad_timestamps;
        self.unknown_records += o.unknown_records;
        self.other_subscription += o.other_subscription;
        self.invalid_utf8_lines += o.invalid_utf8_lines;
        self.long_lines += o.long_lines;
        for (a, b) in self.by_kind.iter_mut().zip(o.by_kind.iter()) {
            *a += b;
        }
        self.first_time = min_opt(self.first_time, o.first_time);
        self.last_time = self.last_time.max(o.last_time);
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// What the `Version:` and `Time offset from UTC:` header lines of a stream said. Lines that
/// carry a syslog host describe that host, not the stream: they only count in `time_offsets`
/// (with the host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeaderInfo {
    pub version: Option<String>,
    pub serial: Option<String>,
    /// `(line, seconds, host)` of each `Time offset from UTC` line; `host` indexes
    /// [`LineParser::hosts`].
    pub time_offsets: Vec<(u64, i64, Option<u32>)>,
}

/// Options of the line parser.
#[derive(Debug, Clone, PartialEq)]
pub struct ParserOptions {
    pub year: YearHint,
    /// How many unknown / unparsed lines to keep as samples.
    pub max_samples: usize,
    /// How many continuation lines one record may take.
    pub max_continuations: usize,
    /// Cap of a record's length with its continuations.
    pub max_record_len: usize,
}

impl Default for ParserOptions {
    fn default() -> Self {
        ParserOptions {
            year: YearHint::Start(1970),
            max_samples: 20,
            max_continuations: 16,
            max_record_len: 64 * 1024,
        }
    }
}

/// One continuation line of the pending record.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// Start in `cont`.
    start: usize,
    /// The wrap was certainly at a space (the line began, or the line before ended, with one).
    certain: bool,
    /// Untrimmed length.
    raw_len: usize,
    ends_ws: bool,
}

/// One way of joining a wrapped record, framed and classified.
#[derive(Debug, Clone)]
struct Candidate {
    line: String,
    msg_start: usize,
    level: Option<Level>,
    host: Option<Range<usize>>,
    tag: Option<Range<usize>>,
    event: Event,
    quality: u8,
}

impl Candidate {
    /// Frames `line` again (falling back to the head's framing) and classifies its message.
    fn new(line: String, head: &Pending) -> Self {
        let (msg_start, level, host, tag) = match parse_prefix(&line) {
            FrameResult::Framed(f) => (f.msg_start, f.level, f.host, f.tag),
            _ => (
                head.msg_start,
                head.level,
                head.host.clone(),
                head.tag.clone(),
            ),
        };
        let event = classify(&line[msg_start..]);
        Candidate {
            quality: event.parse_quality(),
            line,
            msg_start,
            level,
            host,
            tag,
            event,
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    line: u64,
    /// Length of the framed line before trimming (for fixed-width wrap detection).
    raw_len: usize,
    ends_ws: bool,
    time: NaiveDateTime,
    /// `time` as seconds (read as UTC).
    secs: i64,
    framing: Framing,
    level: Option<Level>,
    host: Option<Range<usize>>,
    tag: Option<Range<usize>>,
    msg_start: usize,
}

/// Where a record's message sits in its (joined) line, and what framed it.
struct Framed<'a> {
    line: &'a str,
    msg_start: usize,
    level: Option<Level>,
    host: Option<Range<usize>>,
    tag: Option<Range<usize>>,
}

/// `line` starts with the `n` bytes of `stamp` and a space (`n` is 24 for the usual
/// `Www Mmm dd HH:MM:SS YYYY`, which is compared as three words).
#[inline]
fn starts_with_stamp(line: &[u8], stamp: &[u8; 40], n: usize) -> bool {
    if line.len() <= n || line[n] != b' ' {
        return false;
    }
    match (n, line.first_chunk::<24>(), stamp.first_chunk::<24>()) {
        (24, Some(a), Some(b)) => a == b,
        _ => line[..n] == stamp[..n],
    }
}

/// Finds line ends: memchr's AVX2 searcher called directly where the CPU has it (short lines
/// make the per-call dispatch of `memchr::memchr` show).
#[derive(Clone, Copy)]
struct Newlines {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::One>,
}

impl Newlines {
    fn new() -> Self {
        Newlines {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::One::new(b'\n'),
        }
    }

    #[inline]
    fn find(&self, h: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(one) = &self.avx2 {
            return one.find(h);
        }
        memchr::memchr(b'\n', h)
    }
}

/// The end of a line without its line end and trailing spaces, and its length without the
/// line end only.
fn trimmed_end(raw: &[u8]) -> (usize, usize) {
    let mut end = raw.len();
    while end > 0 && matches!(raw[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let raw_len = end;
    while end > 0 && matches!(raw[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    (end, raw_len)
}

/// Streaming parser of one input stream. See the module doc for the contract.
#[derive(Debug, Clone)]
pub struct LineParser {
    file: u32,
    opts: ParserOptions,
    years: YearTracker,
    pending: Option<Pending>,
    /// The framed line of the pending record.
    buf: String,
    /// Continuation text, pieces trimmed at the start.
    cont: String,
    /// The continuation pieces of the pending record.
    marks: Vec<Piece>,
    /// Width at which this stream appears to be hard-wrapped, once seen.
    wrap_width: Option<usize>,
    /// Untrimmed length of the last wrapped record's first line.
    last_wrapped_head: Option<usize>,
    counters: LineCounters,
    samples: Vec<LineSample>,
    hosts: Vec<String>,
    header: HeaderInfo,
    /// The on-box timestamp bytes (no `<PRI>`) that started the last line framed from scratch
    /// (`stamp_len` 0: none yet), with what they said and the valid time they make.
    stamp: [u8; 40],
    stamp_len: usize,
    stamp_prefix: StampFields,
    stamp_time: NaiveDateTime,
    /// `stamp_time` as seconds (read as UTC), the seed of the records' hashes.
    stamp_secs: i64,
    /// The time of the last record counted into `first_time` / `last_time`.
    span_time: Option<NaiveDateTime>,
    /// The last civil time converted, and the result.
    civil: Option<(CivilKey, Option<NaiveDateTime>)>,
}

/// The date and time fields of a cached timestamp.
#[derive(Debug, Clone, Copy, Default)]
struct StampFields {
    year: Option<i32>,
    month: u32,
    day: u32,
    hms: Hms,
}

/// Year, month, day, (hour, minute, second).
type CivilKey = (i32, u32, u32, Hms);

const SAMPLE_CAP: usize = 512;

fn truncate(s: &str, cap: usize) -> String {
    if s.len() <= cap {
        return s.to_string();
    }
    let mut end = cap;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A fast 64-bit hash (word at a time), for duplicate detection only.
pub(crate) fn hash_bytes(seed: u64, b: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = seed ^ (b.len() as u64).wrapping_mul(K);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let mut w = [0u8; 8];
    let rest = chunks.remainder();
    w[..rest.len()].copy_from_slice(rest);
    h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    // splitmix64 finaliser
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl LineParser {
    /// A parser for input stream number `file`.
    pub fn new(file: u32, opts: ParserOptions) -> Self {
        LineParser {
            file,
            years: YearTracker::new(opts.year),
            opts,
            pending: None,
            buf: String::new(),
            cont: String::new(),
            marks: Vec::new(),
            wrap_width: None,
            last_wrapped_head: None,
            counters: LineCounters::default(),
            samples: Vec::new(),
            hosts: Vec::new(),
            header: HeaderInfo::default(),
            stamp: [0; 40],
            stamp_len: 0,
            stamp_prefix: StampFields::default(),
            stamp_time: NaiveDateTime::default(),
            stamp_secs: 0,
            span_time: None,
            civil: None,
        }
    }

    pub fn counters(&self) -> &LineCounters {
        &self.counters
    }

    pub(crate) fn counters_mut(&mut self) -> &mut LineCounters {
        &mut self.counters
    }

    pub fn samples(&self) -> &[LineSample] {
        &self.samples
    }

    /// Syslog host names seen, indexed by [`LogRecord::host`].
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    pub fn header(&self) -> &HeaderInfo {
        &self.header
    }

    /// Feeds one physical line (line numbers are 1-based and increasing). Returns the record
    /// that this line completed, if any.
    pub fn push_line(&mut self, raw: &[u8], line_no: u64) -> Option<LogRecord> {
        self.counters.lines += 1;
        let (end, raw_len) = trimmed_end(raw);
        // The validator is much faster than the lossy decoder; decode lossily only if needed.
        let text = match std::str::from_utf8(&raw[..end]) {
            Ok(t) => Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(&raw[..end]),
        };
        if matches!(text, Cow::Owned(_)) {
            self.counters.invalid_utf8_lines += 1;
        }
        self.push_trimmed(&text, raw_len, end < raw_len, line_no)
    }

    /// [`LineParser::push_line`] after trimming and decoding (`lines` already counted):
    /// `raw_len` is the length without the line end, `ends_ws` whether spaces were trimmed.
    fn push_trimmed(
        &mut self,
        text: &str,
        raw_len: usize,
        ends_ws: bool,
        line_no: u64,
    ) -> Option<LogRecord> {
        if text.trim_start().is_empty() {
            self.counters.blank_lines += 1;
            return None;
        }
        // Most lines carry the same on-box timestamp as the line before: then only what
        // follows it needs reading, and the time is known.
        let b = text.as_bytes();
        let se = self.stamp_len;
        let same_stamp = se > 0
            && b.len() >= se
            && b[..se] == self.stamp[..se]
            && (b.len() == se || b[se] == b' ');
        let (framed, fresh) = if same_stamp {
            let mut f = frame_rest(text, se, true, Some(self.stamp_prefix.year.unwrap_or(0)));
            if let FrameResult::Framed(p) = &mut f {
                p.month = self.stamp_prefix.month;
                p.day = self.stamp_prefix.day;
                p.hms = self.stamp_prefix.hms;
            }
            (f, None)
        } else {
            frame(text)
        };
        match framed {
            FrameResult::Framed(p) => {
                let time = if same_stamp {
                    Some(self.stamp_time)
                } else {
                    let year = match p.year {
                        Some(y) => y,
                        None => self.years.year_for(p.month),
                    };
                    let key = (year, p.month, p.day, p.hms);
                    let t = match self.civil {
                        Some((k, t)) if k == key => t,
                        _ => {
                            let t = NaiveDate::from_ymd_opt(year, p.month, p.day)
                                .and_then(|d| d.and_hms_opt(p.hms.0, p.hms.1, p.hms.2.min(59)));
                            self.civil = Some((key, t));
                            t
                        }
                    };
                    if let (Some(end), Some(t)) = (fresh, t)
                        && end <= self.stamp.len()
                    {
                        self.stamp[..end].copy_from_slice(&b[..end]);
                        self.stamp_len = end;
                        self.stamp_time = t;
                        self.stamp_secs = t.and_utc().timestamp();
                        self.stamp_prefix = StampFields {
                            year: p.year,
                            month: p.month,
                            day: p.day,
                            hms: p.hms,
                        };
                    }
                    t
                };
                let out = self.finalize();
                let Some(time) = time else {
                    self.bad_time(text, line_no);
                    return out;
                };
                self.buf.clear();
                self.buf.push_str(text);
                self.cont.clear();
                self.marks.clear();
                self.pending = Some(Pending {
                    line: line_no,
                    raw_len,
                    ends_ws,
                    time,
                    secs: if same_stamp {
                        self.stamp_secs
                    } else {
                        time.and_utc().timestamp()
                    },
                    framing: p.framing,
                    level: p.level,
                    host: p.host,
                    tag: p.tag,
                    msg_start: p.msg_start,
                });
                out
            }
            FrameResult::BadTime => {
                let out = self.finalize();
                self.bad_time(text, line_no);
                out
            }
            FrameResult::NotFramed => {
                let fits = self.pending.is_some()
                    && self.marks.len() < self.opts.max_continuations
                    && self.buf.len() + self.cont.len() + text.len() < self.opts.max_record_len;
                if fits {
                    let prev_ws = match self.marks.last() {
                        Some(m) => m.ends_ws,
                        None => self.pending.as_ref().is_some_and(|p| p.ends_ws),
                    };
                    self.marks.push(Piece {
                        start: self.cont.len(),
                        certain: prev_ws || text.starts_with([' ', '\t']),
                        raw_len,
                        ends_ws,
                    });
                    self.cont.push_str(text.trim_start());
                    self.counters.continuation_lines += 1;
                } else {
                    self.unparsed(text, line_no, SampleReason::Unparsed);
                }
                None
            }
        }
    }

    /// Feeds every line of `buf` (lines end with `\n`; a last line without one counts too),
    /// numbering them from `first_line`; each completed record goes to `sink`. Returns the
    /// number of the line after the last one. The same records as [`LineParser::push_line`]
    /// line by line, faster.
    pub fn push_bytes(
        &mut self,
        buf: &[u8],
        first_line: u64,
        mut sink: impl FnMut(LogRecord),
    ) -> u64 {
        let whole = memchr::memrchr(b'\n', buf).map_or(0, |p| p + 1);
        let mut no = self.push_chunk(&buf[..whole], first_line, usize::MAX, &mut |r, _| sink(r));
        if whole < buf.len() {
            if let Some(r) = self.push_line(&buf[whole..], no) {
                sink(r);
            }
            no += 1;
        }
        no
    }

    /// Feeds the lines of `chunk`, which ends with a line end (or is empty), numbered from
    /// `first_line`; a line longer than `cap` bytes (line end included) is cut to `cap` and
    /// counted as long. Each completed record goes to `sink` with the host names so far.
    /// Returns the number of the line after the last one.
    ///
    /// The fast path: a line whose timestamp is the one cached from an earlier line, followed
    /// by a line that starts with the same timestamp (so it frames, and cannot be a
    /// continuation), is a record by itself; it is classified in place, without being copied
    /// as the pending record. UTF-8 is checked once over the rest of the chunk.
    pub(crate) fn push_chunk(
        &mut self,
        chunk: &[u8],
        first_line: u64,
        cap: usize,
        sink: &mut dyn FnMut(LogRecord, &[String]),
    ) -> u64 {
        let mut no = first_line;
        let mut start = 0;
        // Valid UTF-8 known: `seg` is `chunk[seg_start..seg_start + seg.len()]`.
        let mut seg: &str = "";
        let mut seg_start = 0;
        let nl = Newlines::new();
        let mut next_end = nl.find(chunk);
        while let Some(nl_at) = next_end {
            let end = nl_at + 1;
            next_end = nl.find(&chunk[end..]).map(|p| end + p);
            let line_start = start;
            start = end;
            let line_no = no;
            no += 1;
            let raw = &chunk[line_start..end];
            if raw.len() > cap {
                self.counters.long_lines += 1;
                if let Some(r) = self.push_line(&raw[..cap], line_no) {
                    sink(r, &self.hosts);
                }
                continue;
            }
            if end > seg_start + seg.len() {
                seg_start = line_start;
                seg = match std::str::from_utf8(&chunk[line_start..]) {
                    Ok(t) => t,
                    Err(_) => chunk[line_start..]
                        .utf8_chunks()
                        .next()
                        .map_or("", |c| c.valid()),
                };
                if end > seg_start + seg.len() {
                    // This line is not UTF-8: the general path decodes it lossily.
                    seg = "";
                    if let Some(r) = self.push_line(raw, line_no) {
                        sink(r, &self.hosts);
                    }
                    continue;
                }
            }
            let (tend, raw_len) = trimmed_end(raw);
            let text = &seg[line_start - seg_start..line_start - seg_start + tend];
            self.counters.lines += 1;
            let b = text.as_bytes();
            let se = self.stamp_len;
            let fast = se > 0
                && cap > se
                && starts_with_stamp(b, &self.stamp, se)
                && starts_with_stamp(&chunk[end..], &self.stamp, se);
            if !fast {
                if let Some(r) = self.push_trimmed(text, raw_len, tend < raw_len, line_no) {
                    sink(r, &self.hosts);
                }
                continue;
            }
            // A record by itself, with the cached time; it ends the pending one.
            if let Some(r) = self.finalize() {
                sink(r, &self.hosts);
            }
            let year = Some(self.stamp_prefix.year.unwrap_or(0));
            let (framing, level, host, tag, msg_start) = if b[se + 1..].starts_with(b"Info: ") {
                (Framing::OnBox, Some(Level::Info), None, None, se + 7)
            } else {
                match frame_rest(text, se, true, year) {
                    FrameResult::Framed(p) => (p.framing, p.level, p.host, p.tag, p.msg_start),
                    // `frame_rest` always frames.
                    _ => (Framing::OnBox, None, None, None, se),
                }
            };
            let head = Pending {
                line: line_no,
                raw_len,
                ends_ws: tend < raw_len,
                time: self.stamp_time,
                secs: self.stamp_secs,
                framing,
                level,
                host,
                tag,
                msg_start,
            };
            let event = classify(&text[msg_start..]);
            let f = Framed {
                line: text,
                msg_start,
                level,
                host: head.host.clone(),
                tag: head.tag.clone(),
            };
            let rec = self.emit(&head, f, 0, event);
            sink(rec, &self.hosts);
        }
        no
    }

    /// Ends the stream: returns the last pending record.
    pub fn finish(&mut self) -> Option<LogRecord> {
        self.finalize()
    }

    fn bad_time(&mut self, text: &str, line_no: u64) {
        self.counters.bad_timestamps += 1;
        self.unparsed(text, line_no, SampleReason::BadTimestamp);
    }

    fn unparsed(&mut self, text: &str, line_no: u64, reason: SampleReason) {
        self.counters.unparsed_lines += 1;
        self.sample(line_no, reason, text);
    }

    fn sample(&mut self, line: u64, reason: SampleReason, text: &str) {
        if self.samples.len() < self.opts.max_samples {
            self.samples.push(LineSample {
                file: self.file,
                line,
                reason,
                text: truncate(text, SAMPLE_CAP),
            });
        }
    }

    /// The continuation pieces joined to `head` (the framed line, or "" for the pieces alone);
    /// `nospace` has a bit set for each join made without a space.
    fn joined(&self, head: &str, nospace: u32) -> String {
        let mut s = String::with_capacity(head.len() + self.cont.len() + self.marks.len());
        s.push_str(head);
        for (k, piece) in self.marks.iter().enumerate() {
            let start = piece.start;
            let end = self.marks.get(k + 1).map_or(self.cont.len(), |n| n.start);
            if nospace & (1 << k) == 0 {
                s.push(' ');
            }
            s.push_str(&self.cont[start..end]);
        }
        s
    }

    fn finalize(&mut self) -> Option<LogRecord> {
        let p = self.pending.take()?;
        // Taken out so that `head` can be borrowed while counters and samples change.
        let buf = std::mem::take(&mut self.buf);
        let rec = self.finalize_with(p, &buf);
        self.buf = buf;
        Some(rec)
    }

    fn finalize_with(&mut self, p: Pending, buf: &str) -> LogRecord {
        let mut conts = self.marks.len() as u32;
        // The record's line: the framed line, or the chosen join of it with its continuation
        // lines (re-framed, since a wrap may have cut the level or the tag).
        let mut chosen: Option<Candidate> = None;
        let event = if self.marks.is_empty() {
            classify(&buf[p.msg_start..])
        } else {
            // A copy hard-wrapped at a fixed width cuts words (join without a space); a page
            // or word wrap eats the space (join with one). Fixed width shows as equal lengths
            // of all but the last piece, or as the same first-line length in two wrapped
            // records.
            let k = self.marks.len() as u32;
            let mut lens = vec![p.raw_len];
            lens.extend(self.marks.iter().map(|m| m.raw_len));
            let cut = &lens[..lens.len() - 1];
            let fixed = (cut.len() >= 2 && cut.iter().all(|&l| l == cut[0]))
                || self.wrap_width == Some(p.raw_len)
                || self.last_wrapped_head == Some(p.raw_len);
            if fixed {
                self.wrap_width = Some(p.raw_len);
            }
            self.last_wrapped_head = Some(p.raw_len);
            // Candidates: every combination of joins (up to four wrapped lines), never dropping
            // a space that was certainly there, in order of preference: fewest space-less
            // joins first, or most for a fixed-width wrap. The strictest parse wins; ties keep
            // the preferred candidate.
            let certain = self
                .marks
                .iter()
                .enumerate()
                .filter(|(_, piece)| piece.certain)
                .fold(0u32, |acc, (i, _)| acc | (1 << i));
            let mut masks: Vec<u32> = if k <= 4 {
                (0..(1u32 << k)).filter(|m| m & certain == 0).collect()
            } else {
                // Too many to try all: every join with a space, or every one without.
                let all = u32::MAX >> (32 - k.min(32));
                vec![0, all & !certain]
            };
            if fixed {
                masks.sort_by_key(|m| (std::cmp::Reverse(m.count_ones()), *m));
            } else {
                masks.sort_by_key(|m| (m.count_ones(), *m));
            }
            let mut best: Option<Candidate> = None;
            for m in masks {
                let c = Candidate::new(self.joined(buf, m), &p);
                let q = c.quality;
                if best.as_ref().is_none_or(|b| q > b.quality) {
                    best = Some(c);
                }
                if q == 2 {
                    break;
                }
            }
            let best = best.expect("at least one candidate");
            let alone = classify(&buf[p.msg_start..]);
            if alone.parse_quality() > best.quality {
                // The head is a record by itself: the extra lines were not its wrap.
                self.counters.continuation_lines -= u64::from(conts);
                self.counters.unparsed_lines += u64::from(conts);
                let extra = self.joined("", 0);
                self.sample(p.line + 1, SampleReason::Unparsed, extra.trim_start());
                conts = 0;
                alone
            } else {
                let e = best.event.clone();
                chosen = Some(best);
                e
            }
        };
        let f = match &chosen {
            Some(c) => Framed {
                line: c.line.as_str(),
                msg_start: c.msg_start,
                level: c.level,
                host: c.host.clone(),
                tag: c.tag.clone(),
            },
            None => Framed {
                line: buf,
                msg_start: p.msg_start,
                level: p.level,
                host: p.host.clone(),
                tag: p.tag.clone(),
            },
        };
        self.emit(&p, f, conts, event)
    }

    /// The record of pending head `p`, framed as `f`, classified as `event`; counts it.
    fn emit(&mut self, p: &Pending, f: Framed<'_>, conts: u32, event: Event) -> LogRecord {
        let Framed {
            line,
            msg_start,
            level,
            host: host_r,
            tag: tag_r,
        } = f;
        let msg = &line[msg_start..];
        let tag = tag_r.map(|r| &line[r]);
        let event = match event {
            Event::Unknown if is_other_subscription(msg, tag) => Event::OtherSubscription,
            e => e,
        };
        let hash = hash_bytes(p.secs as u64, msg.as_bytes());
        self.counters.records += 1;
        self.counters.by_kind[event.kind_index()] += 1;
        match &event {
            Event::Unknown => {
                self.counters.unknown_records += 1;
                self.sample(p.line, SampleReason::Unknown, line);
            }
            Event::OtherSubscription => self.counters.other_subscription += 1,
            _ => {}
        }
        let host = host_r.map(|r| {
            let name = &line[r];
            match self.hosts.iter().position(|h| h == name) {
                Some(i) => i as u32,
                None => {
                    self.hosts.push(name.to_string());
                    (self.hosts.len() - 1) as u32
                }
            }
        });
        match &event {
            Event::Version { version, serial } if host.is_none() => {
                self.header.version = Some(version.clone());
                if serial.is_some() {
                    self.header.serial.clone_from(serial);
                }
            }
            Event::TimeOffset { seconds } => {
                self.header.time_offsets.push((p.line, *seconds, host));
            }
            _ => {}
        }
        let time = LocalTime(p.time);
        // Most records have the time of the one before: nothing to compare then.
        if self.span_time != Some(p.time) {
            self.span_time = Some(p.time);
            self.counters.first_time = min_opt(self.counters.first_time, Some(time));
            self.counters.last_time = self.counters.last_time.max(Some(time));
        }
        LogRecord {
            line: p.line,
            time,
            framing: p.framing,
            level,
            host,
            event,
            hash,
            continuation_lines: conts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn framed(s: &str) -> Prefix {
        match parse_prefix(s) {
            FrameResult::Framed(p) => p,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn parse_all(text: &str, hint: YearHint) -> (Vec<LogRecord>, LineParser) {
        let mut p = LineParser::new(
            0,
            ParserOptions {
                year: hint,
                max_samples: 1000,
                ..Default::default()
            },
        );
        let mut out = Vec::new();
        for (i, l) in text.split_inclusive('\n').enumerate() {
            out.extend(p.push_line(l.as_bytes(), i as u64 + 1));
        }
        out.extend(p.finish());
        (out, p)
    }

    #[test]
    fn on_box_forms() {
        let s = "Thu Aug 14 11:04:31 2014 Info: ICID 10293 lost";
        let p = framed(s);
        assert_eq!(p.framing, Framing::OnBox);
        assert_eq!(
            (p.year, p.month, p.day, p.hms),
            (Some(2014), 8, 14, (11, 4, 31))
        );
        assert_eq!(p.level, Some(Level::Info));
        assert_eq!(&s[p.msg_start..], "ICID 10293 lost");
        let p = framed("Wed Aug  9 15:39:47 2006 Info: x");
        assert_eq!(p.day, 9);
        let p = framed("Mon Mar 5 14:21:04 2018 Warning: y");
        assert_eq!((p.day, p.level), (5, Some(Level::Warning)));
    }

    #[test]
    fn syslog_forms() {
        let s = "<166>Mar 17 18:24:37 mail_logs: Info: Start MID 6 ICID 5";
        let p = framed(s);
        assert_eq!(p.framing, Framing::Syslog);
        assert_eq!(p.pri, Some(166));
        assert_eq!(&s[p.tag.clone().unwrap()], "mail_logs");
        assert_eq!(p.host, None);
        assert_eq!(&s[p.msg_start..], "Start MID 6 ICID 5");
        let s = "<94>Nov 24 14:22:57 esa1.example.net mail_logs: Info: Start MID 7 ICID 9";
        let p = framed(s);
        assert_eq!(&s[p.host.clone().unwrap()], "esa1.example.net");
        assert_eq!(&s[p.msg_start..], "Start MID 7 ICID 9");
        let s = "Aug  2 23:59:52 10.0.1.1 MAIL_SecurityAudit: Info: MID 3 queued for delivery";
        let p = framed(s);
        assert_eq!(&s[p.host.clone().unwrap()], "10.0.1.1");
        assert_eq!(p.framing, Framing::Syslog);
        let s = "<22>Feb 02 10:31:37 2001:db8::7 mail_logs: Info: ICID 1 close";
        let p = framed(s);
        assert_eq!(&s[p.host.clone().unwrap()], "2001:db8::7");
        assert_eq!(&s[p.msg_start..], "ICID 1 close");
        let s = "Oct 19 06:33:29 2011 mx07.lnh.mail.rcn.net syslog_mail: Info: ICID 2 close";
        let p = framed(s);
        assert_eq!(p.framing, Framing::Relay);
        assert_eq!(p.year, Some(2011));
        assert_eq!(&s[p.msg_start..], "ICID 2 close");
        // A foreign product: framed, no level.
        let s = "Jan  1 00:00:01 mx postfix/smtpd[123]: connect from x[1.2.3.4]";
        let p = framed(s);
        assert_eq!(p.level, None);
        assert_eq!(&s[p.msg_start..], "connect from x[1.2.3.4]");
    }

    #[test]
    fn not_framed_and_bad_time() {
        assert_eq!(
            parse_prefix("(192.168.0.199) address 1.2.3.4"),
            FrameResult::NotFramed
        );
        assert_eq!(parse_prefix("SBRs not enabled"), FrameResult::NotFramed);
        assert_eq!(parse_prefix("Mar"), FrameResult::NotFramed);
        assert_eq!(parse_prefix("<1"), FrameResult::NotFramed);
        assert_eq!(
            parse_prefix("Thu Aug 14 25:04:31 2014 Info: x"),
            FrameResult::BadTime
        );
        // Feb 30 frames, but is not a date: the parser counts it as a bad timestamp.
        let (recs, p) = parse_all(
            "Mon Feb 30 10:00:00 2015 Info: ICID 1 close\n",
            YearHint::Start(2015),
        );
        assert!(recs.is_empty());
        assert_eq!(p.counters().bad_timestamps, 1);
    }

    #[test]
    fn syslog_year_wrap() {
        let text = "<166>Dec 31 23:59:58 mail_logs: Info: ICID 1 lost\n\
                    <166>Dec 31 23:59:59 mail_logs: Info: ICID 2 lost\n\
                    <166>Jan  1 00:00:01 mail_logs: Info: ICID 3 lost\n\
                    <166>Dec 31 23:59:59 mail_logs: Info: ICID 4 lost\n\
                    <166>Jan  2 00:00:00 mail_logs: Info: ICID 5 lost\n";
        let (recs, _) = parse_all(text, YearHint::Start(2023));
        let years: Vec<i32> = recs.iter().map(|r| r.time.0.year()).collect();
        assert_eq!(years, vec![2023, 2023, 2024, 2023, 2024]);
        // Anchored at the end (file mtime in January 2024): December lines are 2023.
        let (recs, _) = parse_all(
            text,
            YearHint::End {
                year: 2024,
                month: 1,
            },
        );
        let years: Vec<i32> = recs.iter().map(|r| r.time.0.year()).collect();
        assert_eq!(years, vec![2023, 2023, 2024, 2023, 2024]);
        let (recs, _) = parse_all(
            "<1>Jan  1 00:00:01 t: Info: ICID 3 lost\n",
            YearHint::End {
                year: 2024,
                month: 1,
            },
        );
        assert_eq!(recs[0].time.0.year(), 2024);
        // Near a capture taken on 2 January 2024: a December log is from 2023 …
        let (recs, _) = parse_all(
            text,
            YearHint::Near {
                year: 2024,
                month: 1,
            },
        );
        let years: Vec<i32> = recs.iter().map(|r| r.time.0.year()).collect();
        assert_eq!(years, vec![2023, 2023, 2024, 2023, 2024]);
        // … and near one taken in December 2023, a January log is from 2024.
        assert_eq!(
            YearHint::Near {
                year: 2023,
                month: 12
            }
            .first_year(1),
            2024
        );
        assert_eq!(
            YearHint::Near {
                year: 2023,
                month: 6
            }
            .first_year(1),
            2023
        );
        assert_eq!(
            YearHint::Near {
                year: 2023,
                month: 6
            }
            .first_year(12),
            2023
        );
    }

    #[test]
    fn wrapped_lines_join_with_space() {
        let text = "Thu Aug 14 11:04:31 2014 Info: New SMTP ICID 10293 interface Management\n\
                    (192.168.0.199) address 192.168.0.200 reverse dns host ns.example.com verified no\n\
                    Thu Aug 14 11:04:31 2014 Info: ICID 10293 RELAY SG RELAY_SG match 192.168.0.200\n\
                    SBRs not enabled\n";
        let (recs, p) = parse_all(text, YearHint::Start(2014));
        assert_eq!(recs.len(), 2);
        let Event::Connect(c) = &recs[0].event else {
            panic!("{:?}", recs[0].event)
        };
        assert_eq!(c.interface, "Management");
        assert_eq!(c.rdns.as_deref(), Some("ns.example.com"));
        let Event::Hat(h) = &recs[1].event else {
            panic!()
        };
        assert_eq!(h.sbrs, Some(super::super::event::Sbrs::NotEnabled));
        assert_eq!(p.counters().continuation_lines, 2);
        assert_eq!(recs[1].continuation_lines, 1);
    }

    #[test]
    fn wrapped_mid_word_joins_without_space() {
        let text = "Thu Aug 14 11:05:36 2014 Info: Message aborted MID 1404 Receiving abo\n\
                    rted by sender\n\
                    Thu Aug 14 11:05:36 2014 Info: Message finished MID 1404 abo\n\
                    rted\n";
        let (recs, _) = parse_all(text, YearHint::Start(2014));
        assert_eq!(
            recs[0].event,
            Event::Aborted {
                mid: 1404,
                reason: super::super::event::AbortReason::ReceivingAbortedBySender
            }
        );
        assert_eq!(
            recs[1].event,
            Event::Finished {
                mid: 1404,
                finish: super::super::event::Finish::Aborted
            }
        );
    }

    #[test]
    fn stray_line_after_complete_record_is_unparsed() {
        let text = "Thu Aug 14 11:05:36 2014 Info: ICID 5 close\n\x01\x02garbage\n";
        let (recs, p) = parse_all(text, YearHint::Start(2014));
        assert_eq!(recs[0].event, Event::Close { icid: 5 });
        assert_eq!(p.counters().unparsed_lines, 1);
        assert_eq!(p.counters().continuation_lines, 0);
    }

    #[test]
    fn leading_continuation_is_unparsed_crlf_and_invalid_utf8() {
        let mut bytes = b"no timestamp here\r\n".to_vec();
        bytes.extend_from_slice(b"Thu Aug 14 11:05:36 2014 Info: MID 1 Subject 'caf\xe9'  \r\n");
        bytes.extend_from_slice(b"Thu Aug 14 11:05:36 2014 Info: ICID 5 close\r\n");
        let mut p = LineParser::new(0, ParserOptions::default());
        let mut recs = Vec::new();
        for (i, l) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            recs.extend(p.push_line(l, i as u64 + 1));
        }
        recs.extend(p.finish());
        assert_eq!(p.counters().unparsed_lines, 1);
        assert_eq!(p.counters().invalid_utf8_lines, 1);
        assert_eq!(
            recs[0].event,
            Event::Subject {
                mid: 1,
                subject: "caf\u{fffd}".into()
            }
        );
        assert_eq!(recs[1].event, Event::Close { icid: 5 });
        assert_eq!(p.samples()[0].reason, SampleReason::Unparsed);
        assert_eq!(p.samples()[0].line, 1);
    }

    #[test]
    fn header_and_hosts() {
        let text = "Wed Nov 19 09:16:46 2014 Info: Version: 7.6.3-019 SN: ABC-1\n\
                    Wed Nov 19 09:16:46 2014 Info: Time offset from UTC: -21600 seconds\n\
                    <94>Nov 24 14:22:57 esa2 mail_logs: Info: ICID 1 close\n\
                    <94>Nov 24 14:22:57 esa2 mail_logs: Info: ICID 2 close\n";
        let (recs, p) = parse_all(text, YearHint::Start(2014));
        assert_eq!(p.header().serial.as_deref(), Some("ABC-1"));
        assert_eq!(p.header().time_offsets, vec![(2, -21600, None)]);
        assert_eq!(p.hosts(), ["esa2".to_string()]);
        assert_eq!(recs[3].host, Some(0));
    }

    #[test]
    fn zones() {
        let t = NaiveDate::from_ymd_opt(2014, 11, 19)
            .unwrap()
            .and_hms_opt(9, 16, 46)
            .unwrap();
        let z = LogZone::from_header_offset(-21600).unwrap();
        assert_eq!(
            local_to_utc(t, &z).to_rfc3339(),
            "2014-11-19T15:16:46.000000Z"
        );
        let z = LogZone::Named(chrono_tz::America::Chicago);
        assert_eq!(
            local_to_utc(t, &z).to_rfc3339(),
            "2014-11-19T15:16:46.000000Z"
        );
        // DST gap (2014-03-09 02:30 does not exist in Chicago): read with CST.
        let gap = NaiveDate::from_ymd_opt(2014, 3, 9)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(
            local_to_utc(gap, &z).to_rfc3339(),
            "2014-03-09T08:30:00.000000Z"
        );
        // Ambiguous hour (2014-11-02 01:30): the earlier instant (CDT).
        let amb = NaiveDate::from_ymd_opt(2014, 11, 2)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap();
        assert_eq!(
            local_to_utc(amb, &z).to_rfc3339(),
            "2014-11-02T06:30:00.000000Z"
        );
        assert_eq!(
            serde_json::to_string(&LocalTime(t)).unwrap(),
            "\"2014-11-19T09:16:46\""
        );
    }
}
