//! Stage 1: capture files to decoded TCP/IP packets.
//!
//! Contract: reads pcap and pcapng (plain, gzip, stdin), several files merged in time order,
//! optionally through a BPF filter, and hands each TCP segment to the caller as a borrowed
//! [`Packet`] view that lives only for the callback. It knows nothing of flows or SMTP. Damage in
//! a file stops that file only; everything decoded before it has been delivered, and the damage
//! is returned as data ([`FileSummary::damage`]).
//!
//! Entry point: [`read_captures`] (or [`read_captures_with_progress`]) with [`ReadOptions`]; tools
//! that copy records out (per-connection pcaps) use [`read_records`], which hands over each raw
//! record with its link type next to the decoded [`Packet`];
//! it returns a [`CaptureSummary`] (one [`FileSummary`] per input, serializable for the report)
//! or, before any packet was delivered, a [`CaptureError`]. Records that are not TCP/IP are
//! counted by reason ([`IgnoredCounts`]), never delivered. Submodules: `reader` (one input:
//! gzip, pcap/pcapng streaming, damage), `link` (link layers), `decode` (IP/TCP into
//! [`Packet`]), `filter` (BPF through libpcap), `error` ([`CaptureError`], [`Damage`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use serde::Serialize;

use crate::types::Timestamp;

pub mod decode;
pub mod error;
pub mod filter;
pub mod icmp;
pub mod link;
pub mod readahead;
pub mod reader;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

pub use decode::Ignored;
pub use error::{CaptureError, CaptureErrorKind, Damage};

use reader::Source;

/// Where a packet came from: which input file (index into the inputs) and which record in it
/// (1-based, as Wireshark numbers frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FrameRef {
    pub file: u16,
    pub number: u64,
}

/// TCP header flags that matter to the flow stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

/// A TCP segment as seen on the wire, borrowed from the record it was decoded from.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub frame: FrameRef,
    pub ts: Timestamp,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification; `None` for IPv6.
    pub ip_id: Option<u16>,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// Payload bytes the IP header says were sent but the snaplen cut off.
    pub payload_missing: u32,
}

/// How to read the captures.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// A BPF filter expression (tcpdump syntax), applied to each raw record before decoding.
    /// Needs the `libpcap` feature. An empty or blank string means no filter.
    pub filter: Option<String>,
}

/// Records that were read but not delivered as TCP packets, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IgnoredCounts {
    /// Records of a link type (or pcapng interface) that is not decoded.
    pub unsupported_link: u64,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    pub non_ip: u64,
    /// IP but not TCP.
    pub non_tcp: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// Headers cut or invalid.
    pub undecodable: u64,
}

impl IgnoredCounts {
    fn add(&mut self, why: Ignored) {
        let c = match why {
            Ignored::UnsupportedLink => &mut self.unsupported_link,
            Ignored::NonIp => &mut self.non_ip,
            Ignored::NonTcp => &mut self.non_tcp,
            Ignored::Fragment => &mut self.fragments,
            Ignored::Undecodable => &mut self.undecodable,
        };
        *c += 1;
    }

    /// All ignored records.
    pub fn total(&self) -> u64 {
        self.unsupported_link + self.non_ip + self.non_tcp + self.fragments + self.undecodable
    }
}

/// What was read from one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    /// The input as given ("stdin" for "-").
    pub name: String,
    /// "pcap" or "pcapng".
    pub format: String,
    /// The input was gzip-compressed.
    pub gzip: bool,
    /// libpcap names of the link types of its interfaces ("EN10MB", "LINUX_SLL2", ...).
    pub link_types: Vec<String>,
    /// The snapshot length of a pcap file (pcapng has one per interface).
    pub snaplen: Option<u32>,
    /// Packet records read (delivered or not).
    pub records: u64,
    /// Bytes of capture data read, up to the end or to the damage (after decompression).
    pub bytes: u64,
    /// Captured bytes of all packet records.
    pub packet_bytes: u64,
    /// TCP packets delivered from this input.
    pub tcp_packets: u64,
    /// Records the filter rejected.
    pub filtered_out: u64,
    /// Earliest and latest record timestamps.
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Records whose timestamp is earlier than the record before them.
    pub backwards_timestamps: u64,
    /// Where reading stopped because the rest of the input is unreadable.
    pub damage: Option<Damage>,
    /// Peculiarities worth a line in a report (undecoded interfaces, filter problems).
    pub notes: Vec<String>,
}

impl FileSummary {
    /// The damage as an error sentence (for a warning), if the file is damaged.
    pub fn damage_error(&self) -> Option<CaptureError> {
        self.damage
            .as_ref()
            .map(|d| CaptureError::damaged(&self.name, d, self.records, self.gzip))
    }
}

/// What was read from all inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaptureSummary {
    /// One per input, in the order given.
    pub files: Vec<FileSummary>,
    /// The filter applied, if any.
    pub filter: Option<String>,
    /// Packet records read from all inputs.
    pub records: u64,
    /// TCP packets delivered.
    pub tcp_packets: u64,
    /// Records read but not delivered: not TCP/IP or not decodable ([`Self::ignored`] says why).
    pub other_packets: u64,
    pub ignored: IgnoredCounts,
    /// Records the filter rejected.
    pub filtered_out: u64,
    /// Delivered packets whose payload the snaplen cut (`payload_missing > 0`).
    pub truncated_packets: u64,
    /// Earliest and latest record timestamps over all inputs.
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

impl CaptureSummary {
    /// True when some input was damaged.
    pub fn any_damage(&self) -> bool {
        self.files.iter().any(|f| f.damage.is_some())
    }
}

/// Progress of reading: which input and how many of its bytes (compressed bytes for gzip)
/// were read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub file: u16,
    pub bytes_read: u64,
}

/// How many bytes between two progress reports of one input.
const PROGRESS_STEP: u64 = 4 * 1024 * 1024;

/// Reads `inputs` (paths, "-" for stdin; pcap or pcapng, gzip or not), merged in time order,
/// and calls `on_packet` for each TCP segment. Errors only before the first packet (inputs
/// that cannot be opened or are not captures, unsupported link types, a bad filter); damage
/// inside a file ends that file and is reported in its [`FileSummary`].
pub fn read_captures(
    inputs: &[String],
    opts: &ReadOptions,
    on_packet: &mut dyn FnMut(&Packet<'_>),
) -> Result<CaptureSummary, CaptureError> {
    read_captures_with_progress(inputs, opts, on_packet, &mut |_| {})
}

/// [`read_captures`] with a progress hook, called every few MiB of each input and at its end.
pub fn read_captures_with_progress(
    inputs: &[String],
    opts: &ReadOptions,
    on_packet: &mut dyn FnMut(&Packet<'_>),
    on_progress: &mut dyn FnMut(Progress),
) -> Result<CaptureSummary, CaptureError> {
    read_records(
        inputs,
        opts,
        &mut |r| {
            if let Some(p) = &r.packet {
                on_packet(p);
            }
        },
        on_progress,
    )
}

/// One record as it was read, with what it decoded to: for tools that copy records out of the
/// captures (a pcap of one connection) rather than analyse them.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Input index and record number (`frame.file` is the index into the inputs).
    pub frame: FrameRef,
    pub ts: Timestamp,
    /// The record's LINKTYPE_* value (per interface in pcapng).
    pub link_type: u32,
    /// The captured bytes, link layer included.
    pub data: &'a [u8],
    /// The length of the packet on the wire (`data` may be shorter: snaplen).
    pub orig_len: u32,
    /// The TCP segment it decoded to; `None` for records that are not TCP/IP (or of a link
    /// type that is not decoded).
    pub packet: Option<Packet<'a>>,
}

impl RawRecord<'_> {
    /// Where the IP header starts in [`Self::data`], for a record of a decoded link type that
    /// carries IP.
    pub fn ip_offset(&self) -> Option<usize> {
        let (_, ip) = link::network_layer(self.link_type, self.data).ok()?;
        (ip.as_ptr() as usize).checked_sub(self.data.as_ptr() as usize)
    }
}

/// Like [`read_captures_with_progress`], but hands every record that passes the filter to
/// `on_record` (TCP segments with their decoded [`Packet`], other records with `None`), raw
/// bytes and link type included. Same merge order, same errors, same summary.
pub fn read_records(
    inputs: &[String],
    opts: &ReadOptions,
    on_record: &mut dyn FnMut(&RawRecord<'_>),
    on_progress: &mut dyn FnMut(Progress),
) -> Result<CaptureSummary, CaptureError> {
    if inputs.len() > usize::from(u16::MAX) + 1 {
        return Err(CaptureError::new(
            None,
            CaptureErrorKind::TooManyInputs(inputs.len()),
        ));
    }
    if inputs.iter().filter(|i| i.as_str() == "-").count() > 1 {
        return Err(CaptureError::new(Some("-"), CaptureErrorKind::StdinTwice));
    }
    let filter_expr = opts
        .filter
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty());
    let mut filter = match filter_expr {
        None => None,
        Some(expr) => Some(filter::Filter::new(expr).map_err(|_| {
            CaptureError::new(
                None,
                CaptureErrorKind::NoLibpcap {
                    filter: expr.to_string(),
                },
            )
        })?),
    };

    // Open every input and read up to its first packet, so that every fatal problem is known
    // before anything is delivered.
    let mut sources = Vec::with_capacity(inputs.len());
    for (i, name) in inputs.iter().enumerate() {
        let index = u16::try_from(i).unwrap_or(u16::MAX);
        sources.push(Source::open(index, name)?);
    }
    for s in &mut sources {
        s.advance();
        s.check_link_types()?;
    }
    if let Some(f) = filter.as_mut() {
        for s in &sources {
            for lt in s.link_types() {
                if link::is_supported(lt) {
                    f.prepare(lt).map_err(|message| {
                        CaptureError::new(
                            Some(s.name()),
                            CaptureErrorKind::BadFilter {
                                filter: f.expr().to_string(),
                                link_type: link::name(lt),
                                message,
                            },
                        )
                    })?;
                }
            }
        }
    }

    let mut run = Run {
        filter,
        summary: CaptureSummary {
            filter: filter_expr.map(str::to_string),
            ..CaptureSummary::default()
        },
        next_progress: vec![PROGRESS_STEP; sources.len()],
        filter_notes: Vec::new(),
        undecodable: Vec::new(),
    };

    if sources.len() == 1 {
        if let Some(s) = sources.first_mut() {
            while s.current_ts().is_some() {
                run.process(s, on_record);
                s.advance();
                run.progress(s, on_progress, false);
            }
            run.progress(s, on_progress, true);
        }
    } else {
        // k-way merge on (timestamp, input index): each source's next record waits in its
        // own read buffer, so nothing is copied.
        for s in sources.iter().filter(|s| s.current_ts().is_none()) {
            run.progress(s, on_progress, true);
        }
        let mut heap: BinaryHeap<Reverse<(Timestamp, u16)>> = sources
            .iter()
            .filter_map(|s| s.current_ts().map(|ts| Reverse((ts, s.index()))))
            .collect();
        while let Some(Reverse((_, idx))) = heap.pop() {
            let Some(s) = sources.get_mut(usize::from(idx)) else {
                continue;
            };
            run.process(s, on_record);
            if s.advance() {
                if let Some(ts) = s.current_ts() {
                    heap.push(Reverse((ts, idx)));
                }
                run.progress(s, on_progress, false);
            } else {
                run.progress(s, on_progress, true);
            }
        }
    }

    let mut summary = run.summary;
    for s in sources {
        let index = s.index();
        let mut f = s.into_summary();
        for (_, _, note) in run.filter_notes.iter().filter(|(i, _, _)| *i == index) {
            f.notes.push(note.clone());
        }
        if let Some(u) = run.undecodable.iter().find(|u| u.file == index) {
            f.notes.push(format!(
                "{} record{} could not be decoded (headers cut or invalid) and {} left out; the \
                 first is record {}: {}",
                u.count,
                if u.count == 1 { "" } else { "s" },
                if u.count == 1 { "was" } else { "were" },
                u.first_record,
                u.reason
            ));
        }
        summary.records += f.records;
        if let Some(t) = f.first_ts {
            if summary.first_ts.is_none_or(|x| t < x) {
                summary.first_ts = Some(t);
            }
        }
        if let Some(t) = f.last_ts {
            if summary.last_ts.is_none_or(|x| t > x) {
                summary.last_ts = Some(t);
            }
        }
        summary.files.push(f);
    }
    summary.other_packets = summary.ignored.total();
    Ok(summary)
}

/// Counters and the filter of one run.
struct Run {
    filter: Option<filter::Filter>,
    summary: CaptureSummary,
    next_progress: Vec<u64>,
    /// (input, link type, note) for link types the filter does not compile for.
    filter_notes: Vec<(u16, u32, String)>,
    /// Records of each input that could not be decoded: how many, and the first one.
    undecodable: Vec<Undecodable>,
}

/// Undecodable records of one input, for a note in its summary.
struct Undecodable {
    file: u16,
    count: u64,
    first_record: u64,
    reason: String,
}

impl Run {
    /// Filters, decodes and delivers the current record of `s`.
    fn process(&mut self, s: &mut Source, on_record: &mut dyn FnMut(&RawRecord<'_>)) {
        let Some(rec) = s.current() else {
            return;
        };
        let (link_type, data, frame, ts, orig_len) =
            (rec.link_type, rec.data, rec.frame, rec.ts, rec.orig_len);
        let raw = |packet| RawRecord {
            frame,
            ts,
            link_type,
            data,
            orig_len,
            packet,
        };
        if !link::is_supported(link_type) {
            self.summary.ignored.add(Ignored::UnsupportedLink);
            on_record(&raw(None));
            return;
        }
        if let Some(f) = self.filter.as_mut() {
            let pass = match f.apply(link_type, data) {
                Ok(pass) => pass,
                Err(message) => {
                    let file = s.index();
                    if !self
                        .filter_notes
                        .iter()
                        .any(|(i, lt, _)| *i == file && *lt == link_type)
                    {
                        let note = format!(
                            "the filter \"{}\" does not compile for link type {}: {message}; \
                             its packets were left out",
                            self.summary.filter.as_deref().unwrap_or_default(),
                            link::name(link_type)
                        );
                        self.filter_notes.push((file, link_type, note));
                    }
                    false
                }
            };
            if !pass {
                self.summary.filtered_out += 1;
                s.summary_mut().filtered_out += 1;
                return;
            }
        }
        match decode::decode(link_type, data, frame, ts) {
            Ok(mut p) => {
                // Only the record header knows what the snaplen cut: an IP length that claims
                // more than that lies (or the writer does), and is not taken as lost payload.
                let cut = orig_len.saturating_sub(u32::try_from(data.len()).unwrap_or(u32::MAX));
                p.payload_missing = p.payload_missing.min(cut);
                self.summary.tcp_packets += 1;
                if p.payload_missing > 0 {
                    self.summary.truncated_packets += 1;
                }
                on_record(&raw(Some(p)));
                s.summary_mut().tcp_packets += 1;
            }
            Err(why) => {
                self.summary.ignored.add(why);
                if why == Ignored::Undecodable {
                    match self.undecodable.iter_mut().find(|u| u.file == frame.file) {
                        Some(u) => u.count += 1,
                        None => self.undecodable.push(Undecodable {
                            file: frame.file,
                            count: 1,
                            first_record: frame.number,
                            reason: decode::why_undecodable(link_type, data),
                        }),
                    }
                }
                on_record(&raw(None));
            }
        }
    }

    fn progress(&mut self, s: &Source, on_progress: &mut dyn FnMut(Progress), done: bool) {
        let bytes_read = s.raw_bytes_read();
        let Some(next) = self.next_progress.get_mut(usize::from(s.index())) else {
            return;
        };
        if done || bytes_read >= *next {
            *next = bytes_read.saturating_add(PROGRESS_STEP);
            on_progress(Progress {
                file: s.index(),
                bytes_read,
            });
        }
    }
}
