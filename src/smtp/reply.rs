//! Server reply lines.
//!
//! Contract: [`parse_line`] classifies one server line (no CR/LF): `ddd-text` continues a
//! multi-line reply, `ddd text` or a bare `ddd` ends one, anything without a leading 3-digit
//! code is [`ReplyLine::NoCode`]. Grouping lines into replies and matching them to commands is
//! the session's job.

use super::line::{MAX_TEXT, text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyLine {
    /// `ddd-text`: more lines follow.
    Continuation { code: u16, text: String },
    /// `ddd text` or `ddd`: the last line of a reply.
    Final { code: u16, text: String },
    /// No 3-digit code (e.g. a deferral text without its code, or binary junk).
    NoCode { text: String },
}

/// The code when the line starts with three digits, the first of them 1 to 5 (RFC 5321 reply
/// classes); otherwise None.
fn code(line: &[u8]) -> Option<u16> {
    match line {
        [a @ b'1'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

pub(crate) fn parse_line(line: &[u8]) -> ReplyLine {
    match code(line) {
        // A fourth character other than '-' (usually ' ', sometimes nothing, rarely junk such
        // as "250OK") ends the reply: being lenient here keeps the command FIFO in step.
        Some(code) => match line.get(3) {
            Some(b'-') => ReplyLine::Continuation {
                code,
                text: text(&line[4..], MAX_TEXT),
            },
            Some(b' ') => ReplyLine::Final {
                code,
                text: text(&line[4..], MAX_TEXT),
            },
            _ => ReplyLine::Final {
                code,
                text: text(&line[3..], MAX_TEXT),
            },
        },
        None => ReplyLine::NoCode {
            text: text(line, MAX_TEXT),
        },
    }
}

/// After lost bytes, a server line is trusted only when it has a code.
pub(crate) fn has_code(line: &[u8]) -> bool {
    code(line).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_lines() {
        assert_eq!(
            parse_line(b"250-SIZE 52428800"),
            ReplyLine::Continuation {
                code: 250,
                text: "SIZE 52428800".into()
            }
        );
        assert_eq!(
            parse_line(b"250 HELP"),
            ReplyLine::Final {
                code: 250,
                text: "HELP".into()
            }
        );
        assert_eq!(
            parse_line(b"354"),
            ReplyLine::Final {
                code: 354,
                text: "".into()
            }
        );
        assert_eq!(
            parse_line(b"4.7.0 [IPTS04] Messages deferred"),
            ReplyLine::NoCode {
                text: "4.7.0 [IPTS04] Messages deferred".into()
            }
        );
        assert!(matches!(parse_line(b"999 x"), ReplyLine::NoCode { .. }));
        assert!(matches!(parse_line(b"25"), ReplyLine::NoCode { .. }));
    }
}
