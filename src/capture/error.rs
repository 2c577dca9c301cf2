//! Errors and damage reports of the capture stage.
//!
//! Contract: one error type, [`CaptureError`], for everything that stops a run before the first
//! packet is delivered (an input that cannot be opened, is not a capture, has no usable link
//! type, a filter that does not compile). Each carries the facts — which input, which record,
//! which byte offset, what is wrong — and renders them as one readable sentence. Damage found
//! while reading (a cut record, an absurd record length, a corrupt gzip stream) is not an error
//! of the run: it is [`Damage`], data attached to that file's summary, and
//! [`CaptureError::damaged`] renders it in the same words for a warning.

use std::fmt;
use std::io;

use serde::Serialize;

/// Where a file stopped being readable: the record that could not be read (1-based, counting
/// packet records as Wireshark numbers frames), the byte offset where it starts (in the
/// decompressed data for gzip input), and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub record: u64,
    pub offset: u64,
    pub message: String,
}

/// What went wrong; the variants carry the facts, [`CaptureError`] adds the provenance.
#[derive(Debug)]
#[non_exhaustive]
pub enum CaptureErrorKind {
    /// The input does not exist.
    NotFound,
    /// The input is a directory.
    IsDirectory,
    /// The input exists but may not be read.
    PermissionDenied,
    /// Any other failure to open or read the start of the input.
    Open(io::Error),
    /// The input holds no bytes at all (after decompression, if it was gzip).
    Empty { gzip: bool },
    /// The first bytes are neither a pcap nor a pcapng magic number.
    NotACapture { first_bytes: Vec<u8>, gzip: bool },
    /// The input starts like a capture but its file header is cut or invalid.
    BadHeader {
        format: &'static str,
        message: String,
    },
    /// A gzip input whose compressed stream cannot be decompressed from the start.
    Gzip(io::Error),
    /// The same stdin ("-") was given twice.
    StdinTwice,
    /// More inputs than a [`super::FrameRef`] can number.
    TooManyInputs(usize),
    /// None of the file's interfaces has a link type this tool decodes.
    UnsupportedLinkType { link_types: Vec<String> },
    /// The BPF filter does not compile (libpcap's message), for the named link type.
    BadFilter {
        filter: String,
        link_type: String,
        message: String,
    },
    /// A filter was asked for but icidtrace was built without libpcap.
    NoLibpcap { filter: String },
    /// Damage found while reading a file (used to render [`Damage`] as a warning).
    Damaged { records_read: u64, gzip: bool },
}

/// An error of the capture stage, with the input it concerns and, where it applies, the record
/// number and byte offset. (Boxed: errors are rare, results are common.)
#[derive(Debug)]
pub struct CaptureError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    /// The input as given on the command line ("-" is shown as "stdin").
    file: Option<String>,
    record: Option<u64>,
    offset: Option<u64>,
    kind: CaptureErrorKind,
    /// For damage: what is wrong at that record.
    detail: Option<String>,
}

impl CaptureError {
    pub(crate) fn new(file: Option<&str>, kind: CaptureErrorKind) -> Self {
        CaptureError(Box::new(Inner {
            file: file.map(display_name),
            record: None,
            offset: None,
            kind,
            detail: None,
        }))
    }

    /// The error sentence for a file's damage, e.g. for a warning on stderr.
    pub fn damaged(file: &str, damage: &Damage, records_read: u64, gzip: bool) -> Self {
        CaptureError(Box::new(Inner {
            file: Some(display_name(file)),
            record: Some(damage.record),
            offset: Some(damage.offset),
            kind: CaptureErrorKind::Damaged { records_read, gzip },
            detail: Some(damage.message.clone()),
        }))
    }

    /// The input this error is about, if any ("stdin" for "-").
    pub fn file(&self) -> Option<&str> {
        self.0.file.as_deref()
    }

    /// The record (1-based) this error is about, if any.
    pub fn record(&self) -> Option<u64> {
        self.0.record
    }

    /// The byte offset this error is about, if any.
    pub fn offset(&self) -> Option<u64> {
        self.0.offset
    }

    /// What went wrong.
    pub fn kind(&self) -> &CaptureErrorKind {
        &self.0.kind
    }
}

/// How an input is named in messages: "-" is stdin.
pub(crate) fn display_name(input: &str) -> String {
    if input == "-" {
        "stdin".to_string()
    } else {
        input.to_string()
    }
}

/// Renders the first bytes of an input for "not a capture" messages: hex, and the printable
/// characters when they look like text, plus a hint for well-known non-capture formats.
pub(crate) fn describe_first_bytes(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(8)];
    let hex: Vec<String> = shown.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = format!("it starts with {}", hex.join(" "));
    let printable = shown
        .iter()
        .filter(|b| b.is_ascii_graphic() || **b == b' ')
        .count();
    if !shown.is_empty() && printable * 4 >= shown.len() * 3 {
        let text: String = shown
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!(" \"{text}\""));
    }
    let hint = if bytes.starts_with(b"PK\x03\x04") {
        Some("a zip archive; unpack it first")
    } else if bytes.starts_with(b"BZh") {
        Some("bzip2-compressed; decompress it first")
    } else if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz-compressed; decompress it first")
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd-compressed; decompress it first")
    } else if bytes.starts_with(&[0xa1, 0xb2, 0xcd, 0x34]) {
        Some("a big-endian \"modified\" (Kuznetzov) pcap, which is not supported")
    } else if printable == shown.len() && !shown.is_empty() {
        Some("text, perhaps a log or tcpdump's printed output rather than a capture file")
    } else {
        None
    };
    if let Some(h) = hint {
        out.push_str(&format!(", which looks like {h}"));
    }
    out
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.0.file {
            write!(f, "{file}: ")?;
        }
        if let Some(record) = self.0.record {
            write!(f, "record {record}")?;
            if self.0.offset.is_none() {
                f.write_str(": ")?;
            }
        }
        if let Some(offset) = self.0.offset {
            if self.0.record.is_some() {
                f.write_str(" at ")?;
            }
            write!(f, "byte offset {offset}")?;
            if matches!(self.0.kind, CaptureErrorKind::Damaged { gzip: true, .. }) {
                f.write_str(" of the decompressed data")?;
            }
            f.write_str(": ")?;
        }
        match &self.0.kind {
            CaptureErrorKind::NotFound => f.write_str("no such file"),
            CaptureErrorKind::IsDirectory => f.write_str("is a directory, not a capture file"),
            CaptureErrorKind::PermissionDenied => f.write_str("permission denied"),
            CaptureErrorKind::Open(e) => write!(f, "cannot open: {e}"),
            CaptureErrorKind::Empty { gzip: false } if self.0.file.as_deref() == Some("stdin") => {
                f.write_str("standard input ended before its first byte (0 bytes), not a capture")
            }
            CaptureErrorKind::Empty { gzip: false } => {
                f.write_str("the file is empty (0 bytes), not a capture")
            }
            CaptureErrorKind::Empty { gzip: true } => {
                f.write_str("the gzip stream decompresses to nothing, not a capture")
            }
            CaptureErrorKind::NotACapture { first_bytes, gzip } => write!(
                f,
                "not a pcap or pcapng capture{}: {}",
                if *gzip {
                    " (after gzip decompression)"
                } else {
                    ""
                },
                describe_first_bytes(first_bytes)
            ),
            CaptureErrorKind::BadHeader { format, message } => {
                write!(f, "invalid {format} file header: {message}")
            }
            CaptureErrorKind::Gzip(e) => {
                write!(f, "looks gzip-compressed but cannot be decompressed: {e}")
            }
            CaptureErrorKind::StdinTwice => {
                f.write_str("standard input (\"-\") can be read only once")
            }
            CaptureErrorKind::TooManyInputs(n) => {
                write!(
                    f,
                    "{n} inputs given; at most {} can be read in one run",
                    u16::MAX
                )
            }
            CaptureErrorKind::UnsupportedLinkType { link_types } => write!(
                f,
                "unsupported link type {} (supported: EN10MB with 802.1Q/QinQ VLAN tags, \
                 LINUX_SLL, LINUX_SLL2, RAW, IPV4, IPV6, NULL, LOOP)",
                link_types.join(", ")
            ),
            CaptureErrorKind::BadFilter {
                filter,
                link_type,
                message,
            } => write!(
                f,
                "the filter \"{filter}\" does not compile for link type {link_type}: {message}"
            ),
            CaptureErrorKind::NoLibpcap { filter } => write!(
                f,
                "cannot apply the filter \"{filter}\": icidtrace was built without libpcap \
                 (cargo feature `libpcap`)"
            ),
            CaptureErrorKind::Damaged { records_read, .. } => write!(
                f,
                "{}; the file is damaged from here on ({records_read} records read)",
                self.0.detail.as_deref().unwrap_or("unreadable data")
            ),
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.kind {
            CaptureErrorKind::Open(e) | CaptureErrorKind::Gzip(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_message_reads_as_one_sentence() {
        let d = Damage {
            record: 19,
            offset: 3695,
            message: "record length 3925868813 exceeds the snapshot length (262144)".into(),
        };
        let e = CaptureError::damaged("x/sv-smtp-to-comma-damaged.pcap", &d, 18, false);
        assert_eq!(
            e.to_string(),
            "x/sv-smtp-to-comma-damaged.pcap: record 19 at byte offset 3695: record length \
             3925868813 exceeds the snapshot length (262144); the file is damaged from here on \
             (18 records read)"
        );
    }

    #[test]
    fn first_bytes_are_described() {
        let s = describe_first_bytes(b"<!DOCTYPE html>");
        assert!(s.contains("3c 21 44 4f"), "{s}");
        assert!(s.contains("\"<!DOCTYP\""), "{s}");
        let z = describe_first_bytes(b"PK\x03\x04\x14\x00");
        assert!(z.contains("zip archive"), "{z}");
        assert!(describe_first_bytes(&[]).contains("starts with"));
    }
}
