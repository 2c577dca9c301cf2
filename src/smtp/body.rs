//! The DATA body: counted and timed, never stored.
//!
//! Contract: [`BodyScan::scan`] consumes body bytes in any split and stops right after the end
//! mark, a line holding a single `.` (`CRLF . CRLF`; a bare LF is accepted on either side of the
//! dot because some clients and servers do, and the server's reply is the judge anyway). The
//! state is a handful of bytes, so a mark split across segments at any position is found.
//! Dot-stuffed lines (`..text`) are body. The scanner reports how many bytes it used and
//! whether the mark ended there; the session counts them.

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
}

impl Default for BodyScan {
    fn default() -> Self {
        BodyScan {
            state: State::LineStart,
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
    }

    pub fn scan(&mut self, input: &[u8]) -> Scanned {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                // Only a `.` right after a line end can start the mark, and dots are rarer
                // than line ends (base64 parts have none): look for dots, not lines.
                State::Mid => match memchr::memchr(b'.', &input[i..]) {
                    Some(p) if i + p > 0 && input[i + p - 1] == b'\n' => {
                        i += p + 1;
                        self.state = State::Dot;
                    }
                    Some(p) => i += p + 1,
                    None => {
                        if input.last() == Some(&b'\n') {
                            self.state = State::LineStart;
                        }
                        i = input.len();
                    }
                },
                State::LineStart => {
                    self.state = match input[i] {
                        b'.' => State::Dot,
                        b'\n' => State::LineStart,
                        _ => State::Mid,
                    };
                    i += 1;
                }
                State::Dot => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => self.state = State::DotCr,
                        b'\n' => return self.end(i, 2),
                        _ => self.state = State::Mid,
                    }
                }
                State::DotCr => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' => return self.end(i, 3),
                        _ => self.state = State::Mid,
                    }
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
        *self = BodyScan::default();
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
}
