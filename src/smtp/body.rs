//! The DATA body: counted and timed, never stored.
//!
//! Contract: [`BodyScan::scan`] consumes body bytes in any split and stops right after the end
//! mark, a line holding a single `.` (`CRLF . CRLF`; a bare LF is accepted on either side of the
//! dot because some clients and servers do, and the server's reply is the judge anyway). The
//! state is a handful of bytes, so a mark split across segments at any position is found.
//! Dot-stuffed lines (`..text`) are body. The scanner reports how many bytes it used and
//! whether the mark ended there; the session counts them.
//!
//! On the way it measures lines, counted and never kept: the header section (up to the first
//! empty line), its longest line and the body's longest line ([`BodyLines`]), because those are
//! what a firewall's header and line limits act on. Lengths are taken where the line ends are
//! found anyway (one addition per line), so the scan stays one `memchr` call per line.

use std::mem;

use super::DataLines;

/// Where in a line the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (also the start of the body).
    LineStart,
    /// A `.` at the start of a line.
    Dot,
    /// `.` CR at the start of a line.
    DotCr,
    /// Anywhere else in a line.
    Mid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyScan {
    state: State,
    /// The last byte scanned was a CR (a CR before the LF is part of the line end).
    last_cr: bool,
    /// Bytes were lost since the current line started: its length is unknown, so it is not
    /// measured (an undercount, never a made-up long line).
    line_unknown: bool,
    pub sizes: DataLines,
}

impl Default for BodyScan {
    fn default() -> Self {
        BodyScan {
            state: State::LineStart,
            last_cr: false,
            line_unknown: false,
            sizes: DataLines::default(),
        }
    }
}

/// What one [`BodyScan::scan`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// Bytes used, including the end mark when it ended here.
    pub consumed: usize,
    /// The end mark ended in these bytes; `mark_len` of the bytes counted so far (possibly
    /// including earlier calls) are the mark, not the message.
    pub ended: bool,
    pub mark_len: u64,
}

impl BodyScan {
    /// Bytes were lost: where a line starts is unknown, so the next mark must come after a line
    /// end that was seen.
    pub fn gap(&mut self) {
        self.state = State::Mid;
        self.line_unknown = true;
        self.sizes.open_line = 0;
    }

    /// A line ended; `raw` is its length without the LF, `cr` whether a CR came before the LF
    /// (RFC 5322 counts neither).
    fn line_end(&mut self, raw: u64, cr: bool) {
        let z = &mut self.sizes;
        z.open_line = 0;
        self.last_cr = false;
        let unknown = mem::replace(&mut self.line_unknown, false);
        let len = raw.saturating_sub(u64::from(cr));
        if z.header_ended {
            if !unknown {
                z.longest_body_line = z.longest_body_line.max(len);
            }
            return;
        }
        // The empty line (CRLF, or a bare LF) ends the header section.
        if !unknown && len == 0 {
            z.header_ended = true;
            return;
        }
        z.header_octets = z.header_octets.saturating_add(raw + 1);
        if !unknown {
            z.longest_header_line = z.longest_header_line.max(len);
        }
    }

    pub fn scan(&mut self, input: &[u8]) -> Scanned {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                // Every line end is looked for (SIMD, memchr): line lengths are measured on the way.
                State::Mid => match memchr::memchr(b'\n', &input[i..]) {
                    Some(p) => {
                        let raw = self.sizes.open_line + p as u64;
                        let cr = if p == 0 {
                            self.last_cr
                        } else {
                            input[i + p - 1] == b'\r'
                        };
                        i += p + 1;
                        self.state = State::LineStart;
                        self.line_end(raw, cr);
                    }
                    None => {
                        self.sizes.open_line += (input.len() - i) as u64;
                        self.last_cr = input[input.len() - 1] == b'\r';
                        i = input.len();
                    }
                },
                State::LineStart => {
                    let b = input[i];
                    i += 1;
                    self.state = match b {
                        b'.' => State::Dot,
                        b'\n' => {
                            self.line_end(0, false);
                            State::LineStart
                        }
                        _ => State::Mid,
                    };
                    self.last_cr = b == b'\r';
                    if self.state != State::LineStart {
                        self.sizes.open_line = 1;
                    }
                }
                State::Dot => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => self.state = State::DotCr,
                        b'\n' => return self.end(i, 2),
                        _ => self.state = State::Mid,
                    }
                    self.last_cr = b == b'\r';
                    self.sizes.open_line += 1;
                }
                State::DotCr => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' => return self.end(i, 3),
                        _ => self.state = State::Mid,
                    }
                    self.last_cr = b == b'\r';
                    self.sizes.open_line += 1;
                }
            }
        }
        Scanned {
            consumed: i,
            ended: false,
            mark_len: 0,
        }
    }

    fn end(&mut self, consumed: usize, mark_len: u64) -> Scanned {
        // The sizes stay for the session to read; the next message starts afresh with `new`.
        self.state = State::LineStart;
        self.sizes.open_line = 0;
        self.last_cr = false;
        self.line_unknown = false;
        Scanned {
            consumed,
            ended: true,
            mark_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks`; returns (message bytes, bytes used after the mark).
    fn run(chunks: &[&[u8]]) -> Option<(u64, usize)> {
        let mut s = BodyScan::default();
        let mut counted = 0u64;
        for (n, chunk) in chunks.iter().enumerate() {
            let r = s.scan(chunk);
            counted += r.consumed as u64;
            if r.ended {
                let after: usize = chunk.len() - r.consumed
                    + chunks[n + 1..].iter().map(|c| c.len()).sum::<usize>();
                return Some((counted - r.mark_len, after));
            }
        }
        None
    }

    #[test]
    fn end_mark_split_at_every_position() {
        let body = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
        let message_len = body.len() as u64 - 3 - 6;
        for cut in 0..=body.len() {
            for cut2 in cut..=body.len() {
                let got = run(&[&body[..cut], &body[cut..cut2], &body[cut2..]]);
                assert_eq!(got, Some((message_len, 6)), "cuts {cut} {cut2}");
            }
        }
    }

    #[test]
    fn empty_body_and_bare_lf() {
        assert_eq!(run(&[b".\r\n"]), Some((0, 0)));
        assert_eq!(run(&[b"a\n.\nX"]), Some((2, 1)));
    }

    #[test]
    fn dot_lines_that_are_not_the_mark() {
        assert_eq!(run(&[b"..\r\n.x\r\n a.\r\n"]), None);
        assert_eq!(run(&[b"x.\r\n.\r"]), None);
    }

    #[test]
    fn after_gap_needs_a_line_end() {
        let mut s = BodyScan::default();
        s.gap();
        assert!(!s.scan(b".\r\n").ended);
        assert!(s.scan(b"tail\r\n.\r\n").ended);
    }

    fn sizes_of(chunks: &[&[u8]]) -> DataLines {
        let mut s = BodyScan::default();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let r = s.scan(rest);
                rest = &rest[r.consumed..];
                if r.ended {
                    return s.sizes;
                }
            }
        }
        s.sizes
    }

    fn message(header_line: usize, body_line: usize) -> Vec<u8> {
        let mut m = b"Subject: x\r\nX-Long: ".to_vec();
        m.extend(std::iter::repeat_n(b'a', header_line - 8));
        m.extend_from_slice(b"\r\n\t folded\r\n\r\nshort\r\n..");
        m.extend(std::iter::repeat_n(b'b', body_line - 2));
        m.extend_from_slice(b"\r\nend\r\n.\r\n");
        m
    }

    #[test]
    fn line_sizes_do_not_depend_on_the_split() {
        let m = message(1200, 1500);
        let want = DataLines {
            header_octets: 12 + 1202 + 10,
            header_ended: true,
            longest_header_line: 1200,
            longest_body_line: 1500,
            ..DataLines::default()
        };
        for cut in 0..=m.len() {
            assert_eq!(sizes_of(&[&m[..cut], &m[cut..]]), want, "cut {cut}");
        }
    }

    #[test]
    fn bare_lf_empty_line_ends_the_headers_and_open_lines_are_counted() {
        let z = sizes_of(&[b"A: 1\n\nbody\nmore"]);
        assert!(z.header_ended);
        assert_eq!(z.header_octets, 5);
        assert_eq!(z.longest_body_line, 4);
        assert_eq!(z.open_line, 4);
        // Still in the headers: the open line is a header line under way.
        let z = sizes_of(&[b"A: 1\r\nB: ", &[b'x'; 2000]]);
        assert!(!z.header_ended);
        assert_eq!(z.header_octets, 6);
        assert_eq!(z.open_line, 2003);
    }

    #[test]
    fn a_line_cut_by_a_gap_is_not_measured() {
        let mut s = BodyScan::default();
        s.scan(b"A: 1\r\nB: x");
        s.gap();
        s.scan(&[b'y'; 3000]);
        s.scan(b"\r\nC: 2\r\n");
        assert_eq!(s.sizes.longest_header_line, 4);
        assert_eq!(s.sizes.open_line, 0);
    }
}
