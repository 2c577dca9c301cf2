//! Streaming record reader for one capture input (file path or "-" for stdin).
//!
//! Contract: [`Source::open`] opens the input, recognises gzip by its magic bytes (not by the
//! name), then pcap (both byte orders, micro- and nanosecond magic, the "modified" variant) or
//! pcapng (any number of sections and interfaces, per-interface link type, snaplen,
//! `if_tsresol` and `if_tsoffset`) by the magic of the (decompressed) data, and validates the
//! file header; anything wrong up to there is a [`CaptureError`]. [`Source::advance`] then
//! moves to the next packet record and [`Source::current`] shows it, borrowed from the
//! pcap-parser streaming buffer (no copy): the record stays valid until the next `advance`,
//! which is what lets several sources be merged without copying records. The buffer grows
//! when one record is bigger than it, up to [`MAX_BUFFER`]; memory does not grow with the file.
//! Damage (a cut record, an absurd length, an invalid block, a read or gzip error) ends this
//! source only and is kept as [`Damage`] in its [`FileSummary`].

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{Block, LegacyPcapReader, OptionCode, PcapBlockOwned, PcapError, PcapNGReader};

use super::error::{CaptureError, CaptureErrorKind, Damage, display_name};
use super::link;
use super::{FileSummary, FrameRef};
use crate::types::Timestamp;

/// Initial size of each input's read buffer.
const INITIAL_BUFFER: usize = 256 * 1024;
/// The largest single record (or pcapng block) this reader will hold.
pub const MAX_BUFFER: usize = 256 * 1024 * 1024;
/// A record may exceed the declared snaplen (writers get it wrong), but not by this factor of
/// max(snaplen, 256 KiB).
const SNAPLEN_SLACK: u64 = 2;
const USUAL_MAX_SNAPLEN: u64 = 262_144;
/// Magic numbers as the first four bytes appear in the file.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// Interfaces of a pcapng section kept; the packets of further ones are counted as ignored
/// (real files have a few; a damaged or hostile one may declare millions).
pub const MAX_INTERFACES: usize = 4096;
/// Link types named in a file's summary (and notes); further ones are summed up in one note.
const MAX_LISTED_LINK_TYPES: usize = 64;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One packet record as the reader found it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub frame: FrameRef,
    pub ts: Timestamp,
    pub link_type: u32,
    /// The captured bytes.
    pub data: &'a [u8],
    /// The length of the packet on the wire, as the record header says.
    pub orig_len: u32,
}

#[derive(Debug, Clone, Copy)]
struct RecordMeta {
    number: u64,
    ts: Timestamp,
    link_type: u32,
    orig_len: u32,
    start: usize,
    end: usize,
}

/// Byte count and last I/O error, shared between the reader chain and the [`Source`].
#[derive(Default)]
struct IoShared {
    /// Bytes read from the file or stdin (compressed bytes for gzip input).
    raw_bytes: Cell<u64>,
    error: RefCell<Option<io::Error>>,
}

/// Counts the bytes read from the underlying file.
struct Counting<R> {
    inner: R,
    shared: Rc<IoShared>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let c = &self.shared.raw_bytes;
        c.set(c.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// Fills the whole buffer on each read (pcap-parser reads once per refill and takes a short
/// read at the start as a cut header), keeps the first error for the damage message and
/// delivers the bytes read before it first.
struct Filling {
    inner: Box<dyn Read>,
    shared: Rc<IoShared>,
    failed: bool,
}

impl Read for Filling {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("the input failed earlier"));
        }
        let mut filled = 0;
        while filled < buf.len() {
            let Some(space) = buf.get_mut(filled..) else {
                break;
            };
            match self.inner.read(space) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.failed = true;
                    *self.shared.error.borrow_mut() = Some(e);
                    if filled > 0 {
                        return Ok(filled);
                    }
                    return Err(io::Error::other("read failed"));
                }
            }
        }
        Ok(filled)
    }
}

/// Reads up to `n` bytes, fewer only at end of input.
fn read_prefix(r: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        let Some(space) = buf.get_mut(filled..) else {
            break;
        };
        match r.read(space) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

#[derive(Debug, Clone, Copy)]
struct Iface {
    link_type: u32,
    snaplen: u32,
    /// Timestamp ticks per second.
    unit: u64,
    offset_secs: i64,
}

enum Kind {
    Pcap {
        link_type: u32,
        snaplen: u32,
        nanos: bool,
        big_endian: bool,
        /// 16, or 24 in the "modified" (Kuznetzov) format.
        record_header: usize,
    },
    PcapNg {
        big_endian: bool,
        ifaces: Vec<Iface>,
    },
}

/// What one call of the parser produced.
enum Step {
    Record(RecordMeta, usize),
    Skip(usize),
    Eof,
    Refill,
    TooSmall,
    UnexpectedEof,
    Invalid,
    ReadError,
    Damage(String),
}

/// The parsing state of one input, apart from the pcap-parser reader (so that a block
/// borrowed from the reader can be handled while this is borrowed mutably).
struct State {
    index: u16,
    kind: Kind,
    summary: FileSummary,
    what: &'static str,
    last_ts: Option<Timestamp>,
    /// Link types already named in a note (unsupported interfaces, filter failures).
    noted_link_types: Vec<u32>,
    noted_missing_iface: bool,
    /// Interface blocks past [`MAX_INTERFACES`] were met (and noted).
    noted_too_many_ifaces: bool,
    /// Link types past [`MAX_LISTED_LINK_TYPES`] were met (and noted).
    noted_too_many_link_types: bool,
    /// The first record whose timestamp went back, and by how much (ns); the largest step back.
    first_backwards: Option<(u64, i64)>,
    largest_backwards: i64,
}

/// One capture input being read.
pub struct Source {
    reader: Box<dyn PcapReaderIterator>,
    state: State,
    io: Rc<IoShared>,
    capacity: usize,
    pending_consume: usize,
    current: Option<RecordMeta>,
    finished: bool,
}

fn open_error(name: &str, e: io::Error) -> CaptureError {
    let kind = match e.kind() {
        io::ErrorKind::NotFound => CaptureErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => CaptureErrorKind::PermissionDenied,
        io::ErrorKind::IsADirectory => CaptureErrorKind::IsDirectory,
        _ => CaptureErrorKind::Open(e),
    };
    CaptureError::new(Some(name), kind)
}

fn record_limit(snaplen: u32) -> u64 {
    if snaplen == 0 {
        MAX_BUFFER as u64
    } else {
        (u64::from(snaplen).max(USUAL_MAX_SNAPLEN) * SNAPLEN_SLACK).min(MAX_BUFFER as u64)
    }
}

fn length_problem(caplen: u64, snaplen: u32, whose: &str) -> Option<String> {
    if caplen <= record_limit(snaplen) {
        None
    } else if snaplen != 0 && caplen > u64::from(snaplen) {
        Some(format!(
            "record length {caplen} exceeds the snapshot length ({snaplen}{whose})"
        ))
    } else {
        Some(format!(
            "record length {caplen} exceeds the {MAX_BUFFER}-byte limit"
        ))
    }
}

fn u32_at(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    let b = [b[0], b[1], b[2], b[3]];
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

/// Ticks per second for a pcapng `if_tsresol` value: 10^n, or 2^n with the top bit set.
fn ts_unit(resol: u8) -> Option<u64> {
    let n = u32::from(resol & 0x7f);
    let unit = if resol & 0x80 == 0 {
        10u64.checked_pow(n)?
    } else if n < 64 {
        1u64 << n
    } else {
        return None;
    };
    (unit > 0).then_some(unit)
}

/// Timestamp of a pcapng packet: `ticks` in units of 1/`unit` s since the epoch + offset.
fn ng_timestamp(high: u32, low: u32, iface: &Iface) -> Timestamp {
    let ticks = (u64::from(high) << 32) | u64::from(low);
    let unit = iface.unit.max(1);
    let secs = i64::try_from(ticks / unit).unwrap_or(i64::MAX);
    let frac = u128::from(ticks % unit);
    let nanos = u32::try_from(frac * 1_000_000_000 / u128::from(unit)).unwrap_or(999_999_999);
    Timestamp::from_secs_nanos(secs.saturating_add(iface.offset_secs), nanos)
}

impl Source {
    /// Opens input `index` (`name` is a path or "-"), detects gzip and the capture format and
    /// reads the file header.
    pub fn open(index: u16, name: &str) -> Result<Source, CaptureError> {
        let base: Box<dyn Read> = if name == "-" {
            Box::new(io::stdin())
        } else {
            match std::fs::metadata(name) {
                Ok(m) if m.is_dir() => {
                    return Err(CaptureError::new(Some(name), CaptureErrorKind::IsDirectory));
                }
                Ok(_) => {}
                Err(e) => return Err(open_error(name, e)),
            }
            let file = File::open(name).map_err(|e| open_error(name, e))?;
            // With a second core to run on, the kernel's copying (and waiting for the disk)
            // runs there, ahead; on one core a thread would only add a copy.
            if super::readahead::pays() {
                Box::new(super::readahead::ReadAhead::new(file).map_err(|e| open_error(name, e))?)
            } else {
                Box::new(file)
            }
        };
        Self::from_reader(index, name, base)
    }

    /// [`Source::open`] on an already opened byte stream (`name` only names it; "-" is
    /// stdin).
    pub fn from_reader(
        index: u16,
        name: &str,
        base: Box<dyn Read>,
    ) -> Result<Source, CaptureError> {
        let io = Rc::new(IoShared::default());
        let mut raw: Box<dyn Read> = Box::new(Counting {
            inner: base,
            shared: Rc::clone(&io),
        });
        let prefix = read_prefix(&mut raw, 16).map_err(|e| open_error(name, e))?;
        if prefix.is_empty() {
            return Err(CaptureError::new(
                Some(name),
                CaptureErrorKind::Empty { gzip: false },
            ));
        }
        let gzip = prefix.starts_with(&GZIP_MAGIC);
        let (mut stream, prefix): (Box<dyn Read>, Vec<u8>) = if gzip {
            let compressed = Cursor::new(prefix).chain(raw);
            let mut dec: Box<dyn Read> = Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                64 * 1024,
                compressed,
            )));
            let inner = read_prefix(&mut dec, 16)
                .map_err(|e| CaptureError::new(Some(name), CaptureErrorKind::Gzip(e)))?;
            if inner.is_empty() {
                return Err(CaptureError::new(
                    Some(name),
                    CaptureErrorKind::Empty { gzip: true },
                ));
            }
            (dec, inner)
        } else {
            (raw, prefix)
        };
        let magic: [u8; 4] = match prefix.get(..4) {
            Some(m) => [m[0], m[1], m[2], m[3]],
            None => {
                return Err(CaptureError::new(
                    Some(name),
                    CaptureErrorKind::NotACapture {
                        first_bytes: prefix,
                        gzip,
                    },
                ));
            }
        };
        let format = match magic {
            PCAPNG_MAGIC => "pcapng",
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x34, 0xcd, 0xb2, 0xa1] => "pcap",
            _ => {
                return Err(CaptureError::new(
                    Some(name),
                    CaptureErrorKind::NotACapture {
                        first_bytes: prefix,
                        gzip,
                    },
                ));
            }
        };
        // Put the sniffed bytes back in front of the stream.
        let rest = std::mem::replace(&mut stream, Box::new(io::empty()));
        let filling = Filling {
            inner: Box::new(Cursor::new(prefix).chain(rest)),
            shared: Rc::clone(&io),
            failed: false,
        };
        let header_error = |message: String| {
            CaptureError::new(Some(name), CaptureErrorKind::BadHeader { format, message })
        };
        let read_error = |io: &IoShared| {
            let e = io
                .error
                .borrow_mut()
                .take()
                .unwrap_or_else(|| io::Error::other("read error"));
            if gzip {
                CaptureError::new(Some(name), CaptureErrorKind::Gzip(e))
            } else {
                open_error(name, e)
            }
        };
        let (reader, kind): (Box<dyn PcapReaderIterator>, Kind) = if format == "pcap" {
            match LegacyPcapReader::new(INITIAL_BUFFER, filling) {
                Ok(r) => {
                    // The header is returned by the first `next`; read it here to know the
                    // link type before any packet.
                    let mut r = r;
                    let kind = match r.next() {
                        Ok((_, PcapBlockOwned::LegacyHeader(h))) => Kind::Pcap {
                            // The upper bits of the field carry FCS information.
                            link_type: (h.network.0 as u32) & 0x03ff_ffff,
                            snaplen: h.snaplen,
                            nanos: h.is_nanosecond_precision(),
                            big_endian: h.is_bigendian(),
                            record_header: if h.is_modified_format() { 24 } else { 16 },
                        },
                        _ => return Err(header_error("unreadable header".into())),
                    };
                    (Box::new(r), kind)
                }
                Err(PcapError::ReadError) => return Err(read_error(&io)),
                Err(_) => {
                    return Err(header_error(
                        "the data ends inside the 24-byte file header".into(),
                    ));
                }
            }
        } else {
            match PcapNGReader::new(INITIAL_BUFFER, filling) {
                Ok(r) => (
                    Box::new(r),
                    Kind::PcapNg {
                        big_endian: false,
                        ifaces: Vec::new(),
                    },
                ),
                Err(PcapError::ReadError) => return Err(read_error(&io)),
                Err(PcapError::Incomplete(_)) => {
                    return Err(header_error(
                        "the data ends inside the section header block".into(),
                    ));
                }
                Err(_) => return Err(header_error("invalid section header block".into())),
            }
        };
        let mut summary = FileSummary {
            name: display_name(name),
            format: format.to_string(),
            gzip,
            ..FileSummary::default()
        };
        if let Kind::Pcap {
            link_type, snaplen, ..
        } = &kind
        {
            summary.link_types.push(link::name(*link_type));
            summary.snaplen = Some(*snaplen);
        }
        Ok(Source {
            reader,
            state: State {
                index,
                kind,
                summary,
                what: if name == "-" { "input" } else { "file" },
                last_ts: None,
                noted_link_types: Vec::new(),
                noted_missing_iface: false,
                noted_too_many_ifaces: false,
                noted_too_many_link_types: false,
                first_backwards: None,
                largest_backwards: 0,
            },
            io,
            capacity: INITIAL_BUFFER,
            pending_consume: 0,
            current: None,
            finished: false,
        })
    }

    /// The record the source is at (after a successful [`Source::advance`]).
    pub fn current(&self) -> Option<Record<'_>> {
        let m = self.current?;
        let data = self.reader.data().get(m.start..m.end)?;
        Some(Record {
            frame: FrameRef {
                file: self.state.index,
                number: m.number,
            },
            ts: m.ts,
            link_type: m.link_type,
            data,
            orig_len: m.orig_len,
        })
    }

    /// Timestamp of the current record.
    pub fn current_ts(&self) -> Option<Timestamp> {
        self.current.map(|m| m.ts)
    }

    pub fn index(&self) -> u16 {
        self.state.index
    }

    /// The input's name as shown in messages ("stdin" for "-").
    pub fn name(&self) -> &str {
        &self.state.summary.name
    }

    /// Bytes read so far from the file or stdin (compressed bytes for gzip input).
    pub fn raw_bytes_read(&self) -> u64 {
        self.io.raw_bytes.get()
    }

    /// Link types of the interfaces seen so far.
    pub fn link_types(&self) -> Vec<u32> {
        match &self.state.kind {
            Kind::Pcap { link_type, .. } => vec![*link_type],
            Kind::PcapNg { ifaces, .. } => {
                let mut v: Vec<u32> = Vec::new();
                for i in ifaces {
                    if !v.contains(&i.link_type) {
                        v.push(i.link_type);
                    }
                }
                v
            }
        }
    }

    /// Fails when interfaces are known and none has a link type this stage decodes.
    pub fn check_link_types(&self) -> Result<(), CaptureError> {
        let types = self.link_types();
        if types.is_empty() || types.iter().any(|&t| link::is_supported(t)) {
            return Ok(());
        }
        let names = types
            .iter()
            .map(|&t| format!("{} ({t})", link::name(t)))
            .collect();
        Err(CaptureError::new(
            Some(&self.state.summary.name),
            CaptureErrorKind::UnsupportedLinkType { link_types: names },
        ))
    }

    /// The summary being filled, for the counters kept by the caller.
    pub fn summary_mut(&mut self) -> &mut FileSummary {
        &mut self.state.summary
    }

    /// Finishes and returns the file's summary.
    pub fn into_summary(mut self) -> FileSummary {
        if self.pending_consume > 0 {
            self.reader.consume(self.pending_consume);
            self.pending_consume = 0;
        }
        let mut s = self.state.summary;
        s.bytes = self.reader.consumed() as u64;
        if let Some((record, back)) = self.state.first_backwards {
            let n = s.backwards_timestamps;
            s.notes.push(format!(
                "{n} record{} {} a timestamp earlier than the record before {} (the first is \
                 record {record}, {} s back; the largest step back is {} s): times and silences \
                 measured across {} may be off",
                if n == 1 { "" } else { "s" },
                if n == 1 { "has" } else { "have" },
                if n == 1 { "it" } else { "them" },
                seconds(back),
                seconds(self.state.largest_backwards),
                if n == 1 { "it" } else { "them" },
            ));
        }
        s
    }

    /// Moves to the next packet record. `false` at the end of the input or at damage (which
    /// is then in the summary); the source stays finished after that.
    pub fn advance(&mut self) -> bool {
        if self.pending_consume > 0 {
            self.reader.consume(self.pending_consume);
            self.pending_consume = 0;
        }
        self.current = None;
        if self.finished {
            return false;
        }
        loop {
            let data = self.reader.data();
            let base = data.as_ptr() as usize;
            let buf_len = data.len();
            let step = match self.reader.next() {
                Ok((len, block)) => self.state.block(len, &block, base, buf_len),
                Err(PcapError::Eof) => Step::Eof,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::BufferTooSmall) => Step::TooSmall,
                Err(PcapError::UnexpectedEof) => Step::UnexpectedEof,
                Err(PcapError::ReadError) => Step::ReadError,
                Err(_) => Step::Invalid,
            };
            match step {
                Step::Record(meta, len) => {
                    self.pending_consume = len;
                    self.current = Some(meta);
                    return true;
                }
                Step::Skip(len) => self.reader.consume(len),
                Step::Eof => return self.finish(),
                Step::Refill => {
                    let before = self.reader.data().len();
                    if self.reader.refill().is_err() {
                        return self.read_failed();
                    }
                    if self.reader.data().len() == before
                        && !self.reader.reader_exhausted()
                        && !self.grow(self.capacity.saturating_mul(2))
                    {
                        let msg =
                            format!("a block needs more than the {MAX_BUFFER}-byte buffer limit");
                        return self.damage(msg);
                    }
                }
                Step::TooSmall => {
                    let needed = match self.needed_len() {
                        Ok(n) => n,
                        Err(msg) => return self.damage(msg),
                    };
                    // At most double at a time, reading as the buffer grows: a record that
                    // claims more bytes than the input holds is found cut (the reader runs
                    // dry) before its claimed size is allocated.
                    let target = needed
                        .saturating_add(64 * 1024)
                        .max(self.capacity.saturating_add(1))
                        .min(self.capacity.saturating_mul(2));
                    if !self.grow(target) {
                        let msg = format!(
                            "a block of {needed} bytes exceeds the {MAX_BUFFER}-byte limit"
                        );
                        return self.damage(msg);
                    }
                    if self.reader.refill().is_err() {
                        return self.read_failed();
                    }
                }
                Step::UnexpectedEof => {
                    if self.reader.data().is_empty() {
                        return self.finish();
                    }
                    let msg = self.truncation_message();
                    return self.damage(msg);
                }
                Step::ReadError => return self.read_failed(),
                Step::Invalid => {
                    let msg = self.invalid_message();
                    return self.damage(msg);
                }
                Step::Damage(msg) => return self.damage(msg),
            }
        }
    }

    fn finish(&mut self) -> bool {
        self.finished = true;
        false
    }

    fn grow(&mut self, target: usize) -> bool {
        let target = target.min(MAX_BUFFER);
        if target <= self.capacity {
            return false;
        }
        self.reader.grow(target);
        self.capacity = target;
        true
    }

    fn damage(&mut self, message: String) -> bool {
        self.state.summary.damage = Some(Damage {
            record: self.state.summary.records + 1,
            offset: self.reader.consumed() as u64,
            message,
        });
        self.finish()
    }

    fn read_failed(&mut self) -> bool {
        let e = self.io.error.borrow_mut().take();
        let gzip = self.state.summary.gzip;
        let msg = match e {
            Some(e) if gzip => format!("the gzip stream is corrupt: {e}"),
            Some(e) => format!("read error: {e}"),
            None => "read error".to_string(),
        };
        self.damage(msg)
    }

    /// Length of the block at the reader's position, for a block bigger than the buffer;
    /// `Err` when that length is absurd.
    fn needed_len(&self) -> Result<usize, String> {
        let data = self.reader.data();
        match &self.state.kind {
            Kind::Pcap {
                snaplen,
                big_endian,
                record_header,
                ..
            } => {
                let caplen = u32_at(data, 8, *big_endian).ok_or("unreadable record header")?;
                if let Some(p) = length_problem(u64::from(caplen), *snaplen, "") {
                    return Err(p);
                }
                Ok(record_header + caplen as usize)
            }
            Kind::PcapNg { big_endian, ifaces } => {
                let block_len =
                    u32_at(data, 4, *big_endian).ok_or("unreadable block header")? as usize;
                let block_type = u32_at(data, 0, *big_endian).unwrap_or(0);
                if block_type == 6 {
                    let iface = u32_at(data, 8, *big_endian).and_then(|i| ifaces.get(i as usize));
                    let caplen = u32_at(data, 20, *big_endian);
                    if let (Some(iface), Some(caplen)) = (iface, caplen) {
                        if let Some(p) =
                            length_problem(u64::from(caplen), iface.snaplen, " of its interface")
                        {
                            return Err(p);
                        }
                    }
                }
                if block_len > MAX_BUFFER {
                    return Err(format!(
                        "block length {block_len} exceeds the {MAX_BUFFER}-byte limit"
                    ));
                }
                Ok(block_len)
            }
        }
    }

    fn truncation_message(&self) -> String {
        let data = self.reader.data();
        let what = self.state.what;
        match &self.state.kind {
            Kind::Pcap {
                big_endian,
                record_header,
                ..
            } => match u32_at(data, 8, *big_endian) {
                Some(caplen) if data.len() >= *record_header => format!(
                    "the {what} ends inside the record: its header says {caplen} bytes, {} are present",
                    data.len() - record_header
                ),
                _ => format!(
                    "the {what} ends inside the {record_header}-byte record header ({} bytes present)",
                    data.len()
                ),
            },
            Kind::PcapNg { big_endian, .. } => {
                match (u32_at(data, 0, *big_endian), u32_at(data, 4, *big_endian)) {
                    (Some(t), Some(l)) => format!(
                        "the {what} ends inside a block (type 0x{t:x}, length {l}, {} bytes present)",
                        data.len()
                    ),
                    _ => format!(
                        "the {what} ends inside a block header ({} bytes present)",
                        data.len()
                    ),
                }
            }
        }
    }

    fn invalid_message(&self) -> String {
        let data = self.reader.data();
        match &self.state.kind {
            Kind::Pcap { .. } => "invalid record".to_string(),
            Kind::PcapNg { big_endian, .. } => {
                match (u32_at(data, 0, *big_endian), u32_at(data, 4, *big_endian)) {
                    (Some(t), Some(l)) if l < 12 || l % 4 != 0 => {
                        format!("invalid pcapng block length {l} (block type 0x{t:x})")
                    }
                    (Some(t), Some(l)) => {
                        format!("invalid pcapng block (type 0x{t:x}, length {l})")
                    }
                    _ => "invalid pcapng block".to_string(),
                }
            }
        }
    }
}

impl State {
    fn block(
        &mut self,
        len: usize,
        block: &PcapBlockOwned<'_>,
        base: usize,
        buf_len: usize,
    ) -> Step {
        match block {
            PcapBlockOwned::LegacyHeader(_) => Step::Skip(len),
            PcapBlockOwned::Legacy(b) => {
                let Kind::Pcap {
                    link_type,
                    snaplen,
                    nanos,
                    ..
                } = self.kind
                else {
                    return Step::Skip(len);
                };
                if let Some(p) = length_problem(u64::from(b.caplen), snaplen, "") {
                    return Step::Damage(p);
                }
                let sub = if nanos {
                    b.ts_usec
                } else {
                    b.ts_usec.saturating_mul(1000)
                };
                let ts = Timestamp::from_secs_nanos(i64::from(b.ts_sec), sub);
                self.record(len, ts, link_type, b.data, b.origlen, base, buf_len)
            }
            PcapBlockOwned::NG(b) => self.ng_block(len, b, base, buf_len),
        }
    }

    fn ng_block(&mut self, len: usize, block: &Block<'_>, base: usize, buf_len: usize) -> Step {
        let Kind::PcapNg { big_endian, ifaces } = &mut self.kind else {
            return Step::Skip(len);
        };
        match block {
            Block::SectionHeader(shb) => {
                *big_endian = shb.big_endian();
                ifaces.clear();
                Step::Skip(len)
            }
            Block::InterfaceDescription(idb) => {
                let link_type = (idb.linktype.0 as u32) & 0xffff;
                let unit = ts_unit(idb.if_tsresol).unwrap_or(1_000_000);
                let be = *big_endian;
                let offset_secs = idb
                    .options
                    .iter()
                    .find(|o| o.code == OptionCode::IfTsoffset)
                    .and_then(|o| o.value().get(..8))
                    .map(|v| {
                        let b = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
                        if be {
                            i64::from_be_bytes(b)
                        } else {
                            i64::from_le_bytes(b)
                        }
                    })
                    .unwrap_or(0);
                if ifaces.len() >= MAX_INTERFACES {
                    if !self.noted_too_many_ifaces {
                        self.noted_too_many_ifaces = true;
                        self.summary.notes.push(format!(
                            "more than {MAX_INTERFACES} interface description blocks in a \
                             section (record {} follows the first one past that): the packets \
                             of those interfaces are counted as ignored",
                            self.summary.records + 1
                        ));
                    }
                    return Step::Skip(len);
                }
                ifaces.push(Iface {
                    link_type,
                    snaplen: idb.snaplen,
                    unit,
                    offset_secs,
                });
                let if_no = ifaces.len() - 1;
                // Both lists stay short, so these searches stay cheap.
                let listed = self.summary.link_types.len() < MAX_LISTED_LINK_TYPES;
                let lt_name = link::name(link_type);
                if !self.summary.link_types.contains(&lt_name) {
                    if listed {
                        self.summary.link_types.push(lt_name.clone());
                    } else if !self.noted_too_many_link_types {
                        self.noted_too_many_link_types = true;
                        self.summary.notes.push(format!(
                            "more than {MAX_LISTED_LINK_TYPES} link types: only the first are \
                             listed"
                        ));
                    }
                }
                if !link::is_supported(link_type)
                    && self.noted_link_types.len() < MAX_LISTED_LINK_TYPES
                    && !self.noted_link_types.contains(&link_type)
                {
                    self.noted_link_types.push(link_type);
                    self.summary.notes.push(format!(
                        "interface {if_no} has link type {lt_name} ({link_type}), which is not \
                         decoded; its packets are counted as ignored"
                    ));
                }
                Step::Skip(len)
            }
            Block::EnhancedPacket(epb) => {
                let iface = ifaces.get(epb.if_id as usize).copied();
                let data = epb.packet_data();
                match iface {
                    Some(iface) => {
                        if let Some(p) = length_problem(
                            u64::from(epb.caplen),
                            iface.snaplen,
                            " of its interface",
                        ) {
                            return Step::Damage(p);
                        }
                        let ts = ng_timestamp(epb.ts_high, epb.ts_low, &iface);
                        self.record(len, ts, iface.link_type, data, epb.origlen, base, buf_len)
                    }
                    None => self.orphan(len, epb.if_id, data, epb.origlen, base, buf_len),
                }
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = ifaces.first().copied() else {
                    return self.orphan(len, 0, spb.data, spb.origlen, base, buf_len);
                };
                let mut data = spb.packet_data();
                if iface.snaplen != 0 {
                    data = data.get(..iface.snaplen as usize).unwrap_or(data);
                }
                // No timestamp: the previous packet's.
                let ts = self.last_ts.unwrap_or_default();
                self.record(len, ts, iface.link_type, data, spb.origlen, base, buf_len)
            }
            Block::Unknown(ub) if ub.block_type == 2 || ub.block_type == 0x0200_0000 => {
                // Obsolete Packet Block: if_id (2), drops (2), ts high, ts low, caplen,
                // origlen, data.
                let be = *big_endian;
                let d = ub.data;
                let if_id = d
                    .get(..2)
                    .map(|b| {
                        if be {
                            u16::from_be_bytes([b[0], b[1]])
                        } else {
                            u16::from_le_bytes([b[0], b[1]])
                        }
                    })
                    .unwrap_or(0);
                let (Some(high), Some(low), Some(caplen), Some(origlen)) = (
                    u32_at(d, 4, be),
                    u32_at(d, 8, be),
                    u32_at(d, 12, be),
                    u32_at(d, 16, be),
                ) else {
                    return Step::Damage("invalid packet block".into());
                };
                let body = d.get(20..).unwrap_or(&[]);
                let data = body.get(..caplen as usize).unwrap_or(body);
                match ifaces.get(usize::from(if_id)).copied() {
                    Some(iface) => {
                        let ts = ng_timestamp(high, low, &iface);
                        self.record(len, ts, iface.link_type, data, origlen, base, buf_len)
                    }
                    None => self.orphan(len, u32::from(if_id), data, origlen, base, buf_len),
                }
            }
            _ => Step::Skip(len),
        }
    }

    /// A packet block naming an interface that was not described.
    fn orphan(
        &mut self,
        len: usize,
        if_id: u32,
        data: &[u8],
        orig_len: u32,
        base: usize,
        buf_len: usize,
    ) -> Step {
        if !self.noted_missing_iface {
            self.noted_missing_iface = true;
            self.summary.notes.push(format!(
                "record {} refers to interface {if_id}, which no interface description block \
                 defines; such packets are counted as ignored",
                self.summary.records + 1
            ));
        }
        let ts = self.last_ts.unwrap_or_default();
        self.record(len, ts, NO_LINK_TYPE, data, orig_len, base, buf_len)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        len: usize,
        ts: Timestamp,
        link_type: u32,
        data: &[u8],
        orig_len: u32,
        base: usize,
        buf_len: usize,
    ) -> Step {
        let start = (data.as_ptr() as usize).wrapping_sub(base);
        let end = start.wrapping_add(data.len());
        // The data always lies in the reader's buffer; anything else is a bug upstream, and
        // becomes an empty (ignored) record rather than a wrong one.
        let (start, end) = if start <= end && end <= buf_len {
            (start, end)
        } else {
            (0, 0)
        };
        let s = &mut self.summary;
        s.records += 1;
        s.packet_bytes += data.len() as u64;
        if let Some(prev) = self.last_ts {
            if ts < prev {
                s.backwards_timestamps += 1;
                let back = prev.0.saturating_sub(ts.0);
                self.first_backwards.get_or_insert((s.records, back));
                self.largest_backwards = self.largest_backwards.max(back);
            }
        }
        if s.first_ts.is_none_or(|f| ts < f) {
            s.first_ts = Some(ts);
        }
        if s.last_ts.is_none_or(|l| ts > l) {
            s.last_ts = Some(ts);
        }
        self.last_ts = Some(ts);
        Step::Record(
            RecordMeta {
                number: s.records,
                ts,
                link_type,
                orig_len,
                start,
                end,
            },
            len,
        )
    }
}

/// Nanoseconds as seconds for a note: microseconds shown, trailing zeros dropped.
fn seconds(nanos: i64) -> String {
    let s = format!("{:.6}", nanos as f64 / 1e9);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Link type given to packets of an undescribed pcapng interface; no decoder accepts it.
pub const NO_LINK_TYPE: u32 = u32::MAX;
