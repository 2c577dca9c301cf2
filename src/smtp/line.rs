//! Incremental line splitting and the text hygiene every stored string goes through.
//!
//! Contract: [`LineBuf::push`] takes whatever bytes arrived and reports whether a line (ended by
//! LF, CR optional) is complete; a partial line stays buffered, because "need more bytes" is
//! flow control, not an error. The buffer never holds more than [`MAX_LINE`] bytes: past that
//! the rest of the line is dropped up to its LF, and the caller is told once so it can record
//! one anomaly. [`text`] turns wire bytes into a short, printable, lossy UTF-8 string, the only
//! form in which wire text is kept.

/// Longest command or reply line kept, in bytes. RFC 5321 allows 512; real servers and clients
/// stay well below 4 KiB, so anything longer is junk or an attack and is cut.
pub(crate) const MAX_LINE: usize = 4096;

/// Longest stored text (reply text, unknown verbs, host names), in characters.
pub(crate) const MAX_TEXT: usize = 100;

/// Longest stored envelope address, in characters: SRS and BATV addresses exceed 100 characters
/// and are what the correlation stage compares with the log, so they get more room.
pub(crate) const MAX_ADDRESS: usize = 256;

/// What one [`LineBuf::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// Input bytes used (all of them unless a line was completed).
    pub consumed: usize,
    /// A line is complete; its content (without the LF) is in [`LineBuf::buf`].
    pub complete: bool,
    /// This push made the current line exceed [`MAX_LINE`] (reported once per line).
    pub overflowed: bool,
}

/// One side's partial line.
#[derive(Clone, Default)]
pub(crate) struct LineBuf {
    /// The current line so far, at most [`MAX_LINE`] bytes, without the LF.
    pub buf: Vec<u8>,
    /// The current line went past [`MAX_LINE`]; the rest of it is being skipped.
    overflow: bool,
    /// Bytes were lost on this side: the next complete line may be the tail of a lost one,
    /// so the session only accepts it when it looks like the start of a real line.
    pub resync: bool,
    /// Octets of the current line so far, the skipped part past the cap included, the LF not:
    /// a line's real size is what a firewall's line-length limit sees.
    pub octets: u64,
}

/// Lengths only: a partial line may be an AUTH response, which must not end up in a debug
/// print of a session.
impl std::fmt::Debug for LineBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineBuf")
            .field("len", &self.buf.len())
            .field("overflow", &self.overflow)
            .field("resync", &self.resync)
            .field("octets", &self.octets)
            .finish()
    }
}

impl LineBuf {
    /// Adds bytes up to and including the first LF. When `complete` is set the caller handles
    /// [`LineBuf::buf`] and then calls [`LineBuf::finish_line`] before pushing again.
    pub fn push(&mut self, input: &[u8]) -> Pushed {
        let (chunk, consumed, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..i], i + 1, true),
            None => (input, input.len(), false),
        };
        self.octets = self.octets.saturating_add(chunk.len() as u64);
        let mut overflowed = false;
        if !self.overflow {
            let room = MAX_LINE - self.buf.len();
            if chunk.len() > room {
                self.buf.extend_from_slice(&chunk[..room]);
                self.overflow = true;
                overflowed = true;
            } else {
                self.buf.extend_from_slice(chunk);
            }
        }
        Pushed {
            consumed,
            complete,
            overflowed,
        }
    }

    /// Forgets the line just handled (keeps the allocation).
    pub fn finish_line(&mut self) {
        self.buf.clear();
        self.overflow = false;
        self.resync = false;
        self.octets = 0;
    }

    /// Bytes were lost: the partial line is meaningless now.
    pub fn gap(&mut self) {
        self.buf.clear();
        self.overflow = false;
        self.resync = true;
        self.octets = 0;
    }
}

/// Strips one trailing CR (the LF is already gone).
pub(crate) fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Wire bytes as stored text: lossy UTF-8, control characters replaced (a report is printed to
/// terminals and HTML, so nothing from the wire may steer them), at most `max` characters, a
/// trailing `…` when cut.
pub(crate) fn text(bytes: &[u8], max: usize) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(lossy.len().min(max * 4));
    for (n, c) in lossy.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '\u{FFFD}' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
        let mut lb = LineBuf::default();
        let mut out = Vec::new();
        let mut overflows = 0;
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let p = lb.push(rest);
                overflows += usize::from(p.overflowed);
                rest = &rest[p.consumed..];
                if p.complete {
                    out.push(strip_cr(&lb.buf).to_vec());
                    lb.finish_line();
                }
            }
        }
        (out, overflows)
    }

    #[test]
    fn crlf_and_bare_lf_split_anywhere() {
        let (l, _) = lines_of(&[b"EHL", b"O a\r", b"\nQUIT\nNO", b"OP\r\n"]);
        assert_eq!(
            l,
            vec![b"EHLO a".to_vec(), b"QUIT".to_vec(), b"NOOP".to_vec()]
        );
    }

    #[test]
    fn partial_line_waits() {
        let (l, _) = lines_of(&[b"MAIL FROM:<a@b>"]);
        assert!(l.is_empty());
    }

    #[test]
    fn long_line_is_cut_once_and_resumes_after_lf() {
        let long = vec![b'A'; MAX_LINE * 3];
        let (l, overflows) = lines_of(&[&long[..5000], &long[5000..], b"\r\nQUIT\r\n"]);
        assert_eq!(overflows, 1);
        assert_eq!(l.len(), 2);
        // The size past the cap is still counted.
        let mut lb = LineBuf::default();
        lb.push(&long[..5000]);
        lb.push(&long[5000..]);
        assert_eq!(lb.octets, (MAX_LINE * 3) as u64);
        assert!(lb.push(b"\r\n").complete);
        assert_eq!(lb.octets, (MAX_LINE * 3 + 1) as u64);
        assert_eq!(l[0].len(), MAX_LINE);
        assert_eq!(l[1], b"QUIT");
    }

    #[test]
    fn text_is_printable_and_short() {
        assert_eq!(text(b"a\x1b[31mb\xff", 100), "a\u{FFFD}[31mb\u{FFFD}");
        let t = text(&[b'x'; 300], MAX_TEXT);
        assert_eq!(t.chars().count(), MAX_TEXT + 1);
        assert!(t.ends_with('…'));
    }
}
