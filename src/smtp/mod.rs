//! Stage 3: SMTP sessions from the two reassembled byte streams of a connection.
//!
//! Contract: a [`Session`] is fed the client's and the server's bytes in the order they became
//! contiguous on the wire ([`Session::on_data`]), told where bytes were lost
//! ([`Session::on_gap`]; zero bytes: the stream may start mid-line), and summarised at the end ([`Session::summary`]). It knows nothing of
//! packets, flows or logs. It splits lines incrementally ("need more bytes" is not an error),
//! matches replies to commands in order (PIPELINING), follows DATA and BDAT, counts message
//! bodies without storing them, watches TLS record types after STARTTLS, and never keeps AUTH
//! credentials. Memory per session is bounded: a partial line is capped, text is truncated.
//!
//! Layout: the model types below are the contract with the verdict stage; the parsing lives in
//! private submodules (`line`: splitting and text hygiene, `command`, `reply`, `body` for DATA,
//! `tls` for record watching) and the state machine in `session`.

use serde::Serialize;

use crate::types::{Side, Timestamp};

mod body;
mod command;
mod line;
mod reply;
mod session;
#[cfg(test)]
mod tests;
mod tls;

pub use session::Session;

/// The SMTP step a session is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Connected, no banner (220) received yet. Commands the client sends before the banner
    /// (or in a capture that lacks the server's direction) do not move a session out of it.
    #[default]
    Banner,
    /// Banner received; EHLO/HELO, AUTH, STARTTLS; no MAIL FROM yet.
    Greeting,
    /// After STARTTLS was accepted: the rest is encrypted.
    Tls,
    /// MAIL FROM sent: envelope (MAIL, RCPT) until the data starts.
    Envelope,
    /// Message data under way (after 354 or during BDAT), or waiting for its final reply.
    Data,
    /// The last message got its final reply; no new MAIL FROM yet.
    AfterData,
    /// The client sent QUIT.
    Quit,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Banner => "banner",
            Phase::Greeting => "greeting",
            Phase::Tls => "tls",
            Phase::Envelope => "envelope",
            Phase::Data => "data",
            Phase::AfterData => "after_data",
            Phase::Quit => "quit",
        }
    }
}

/// A reply as far as the verdict needs it: the code (None for a line without a code), the
/// time its last line was seen, and its text (first line, truncated).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reply {
    pub code: Option<u16>,
    pub at: Timestamp,
    pub text: String,
}

/// A command verb and when it was sent. Arguments are kept only where they are envelope data
/// (MAIL FROM, RCPT TO addresses, EHLO host), never for AUTH.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Command {
    /// Upper-cased verb (`EHLO`, `MAIL`, `RCPT`, `DATA`, `BDAT`, `QUIT`, ...), or `?` when the
    /// line is not a command.
    pub verb: String,
    pub at: Timestamp,
    /// The reply it got, when one was seen. For AUTH the final one (not the 334 challenges).
    pub reply: Option<Reply>,
    /// The argument where it is envelope data or harmless: the MAIL FROM / RCPT TO address,
    /// the EHLO host, the AUTH mechanism (never its initial response), `n` or `n LAST` for BDAT.
    pub arg: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    #[default]
    Data,
    Bdat,
}

/// Message data of one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MessageData {
    pub kind: DataKind,
    /// DATA (or the first BDAT) sent.
    pub command_at: Timestamp,
    /// The 354 to DATA (None for BDAT, or when refused / not seen).
    pub go_ahead: Option<Reply>,
    /// End of data sent by the client (the `.` line, or the BDAT ... LAST chunk complete).
    pub end_at: Option<Timestamp>,
    /// Message bytes the client sent (after 354 up to the end mark, or BDAT chunk bytes), as on
    /// the wire: dot-stuffing included, the closing `.` line not; bytes lost in a capture gap
    /// inside the body are included.
    pub bytes: u64,
    /// The final reply to the message data.
    pub final_reply: Option<Reply>,
    /// The error reply to DATA itself (e.g. 503/554: no body was accepted, the transaction may
    /// go on), or the first error reply to a BDAT chunk that was not the last one.
    pub refused: Option<Reply>,
    /// Line sizes of the DATA body (counted, never kept); all zero for BDAT, whose chunks are
    /// counted but not split into lines.
    pub lines: DataLines,
}

/// Line sizes of one message's DATA body, counted as it passes: what a firewall's header and
/// line limits act on. Octets as on the wire (dot-stuffing included); a line's length leaves
/// out its line end (LF and a CR before it), as RFC 5322's 998-octet limit does. A line cut
/// by a capture gap is not measured (an undercount, never a made-up long line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DataLines {
    /// Octets of the header section so far, line ends included, the empty line ending it not.
    pub header_octets: u64,
    /// The empty line that ends the header section was seen.
    pub header_ended: bool,
    /// When the header section ended (the chunk of bytes holding the empty line).
    pub header_ended_at: Option<Timestamp>,
    /// Longest complete header line (each line of a folded header on its own).
    pub longest_header_line: u64,
    /// When that line's end arrived.
    pub longest_header_line_at: Option<Timestamp>,
    /// Longest complete body line (after the header section).
    pub longest_body_line: u64,
    pub longest_body_line_at: Option<Timestamp>,
    /// Octets of a line still without its line end where the data stopped (0: none); in the
    /// header section unless `header_ended`.
    pub open_line: u64,
}

/// Sizes of the client's command lines, counted as they pass (the lines are not kept): what a
/// firewall's command-line limit acts on. Octets include the line end (CRLF, or a bare LF), as
/// RFC 5321's 512-octet limit does. SASL response lines and message data are not command lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CommandLines {
    /// The last complete command line (the one [`SessionSummary::last_command`] describes).
    pub last_octets: u64,
    /// The longest complete command line before the last one.
    pub longest_earlier_octets: u64,
    /// A client line still without its line end when the capture ended (0: none), and when
    /// its last byte came.
    pub open_octets: u64,
    pub open_at: Option<Timestamp>,
}

/// One mail transaction: from MAIL FROM to the final reply to its data, or to RSET/QUIT/end.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Transaction {
    pub mail_at: Timestamp,
    /// The reverse-path as sent, without angle brackets (`""` for the null sender).
    pub mail_from: String,
    pub mail_reply: Option<Reply>,
    pub rcpt_to: Vec<Recipient>,
    pub data: Option<MessageData>,
    /// How the transaction ended when it was not completed: `RSET` (an EHLO/HELO/LHLO, which
    /// resets a transaction the same way, is recorded as `RSET` too) or `QUIT`, sent after MAIL
    /// FROM was accepted and before the client finished the message data; None otherwise.
    pub ended_by: Option<String>,
    /// Recipients not kept in `rcpt_to` because of the per-transaction cap.
    pub rcpt_dropped: u32,
}

impl Transaction {
    /// MAIL FROM got a 2xx (or no reply was seen, e.g. one-sided capture, yet it went on).
    pub fn started(&self) -> bool {
        !matches!(&self.mail_reply, Some(Reply { code: Some(c), .. }) if *c >= 300)
    }

    /// The message data got a 2xx final reply.
    pub fn completed(&self) -> bool {
        matches!(
            &self.data,
            Some(MessageData { final_reply: Some(Reply { code: Some(c), .. }), .. }) if (200..300).contains(c)
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recipient {
    pub address: String,
    pub reply: Option<Reply>,
}

/// TLS records seen in one direction after STARTTLS (or on implicit TLS).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsDirection {
    pub handshake_records: u32,
    pub change_cipher_spec_records: u32,
    pub application_data_records: u32,
    pub application_data_bytes: u64,
    pub alert_records: u32,
    pub first_alert_at: Option<Timestamp>,
    pub last_record_at: Option<Timestamp>,
    /// Bytes that did not parse as TLS records.
    pub garbage_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsSummary {
    pub client: TlsDirection,
    pub server: TlsDirection,
    /// Both sides sent application data or ChangeCipherSpec: the handshake got through.
    pub handshake_completed: bool,
}

/// Something odd in the SMTP stream, with when and on which side.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmtpAnomaly {
    /// Bytes were lost on this side; parsing resumed at the next line.
    Gap {
        side: Side,
        at: Timestamp,
        bytes: u64,
    },
    /// A line longer than the cap; the rest of it was skipped.
    LineTooLong { side: Side, at: Timestamp },
    /// The client sent commands before the server's banner.
    CommandBeforeBanner { at: Timestamp },
    /// A server line that is not a reply (no 3-digit code).
    ReplyWithoutCode { at: Timestamp, text: String },
    /// A reply that answered no outstanding command (e.g. an unprompted 421).
    UnpromptedReply { at: Timestamp, code: Option<u16> },
    /// A client line that is not a known command (`verb` is the first token, at most 20
    /// characters, or `<binary>` / `<empty>`).
    UnknownCommand { at: Timestamp, verb: String },
    /// STARTTLS was accepted but the stream went on in plaintext SMTP: a capture taken where
    /// TLS is terminated (decrypted). Parsing went back to SMTP.
    PlaintextAfterStarttls { at: Timestamp },
    /// The client sent a TLS handshake where an SMTP command was expected (a client speaking
    /// implicit TLS to a plaintext listener).
    TlsWithoutStarttls { at: Timestamp },
    /// No reply to `verb` (DATA or STARTTLS) was seen before the client had sent 64 KiB more,
    /// or before the capture ended; the client's bytes were read as if it had been accepted
    /// (message body, TLS records). Usual in a capture of the client's direction only.
    ReplyAssumed { at: Timestamp, verb: String },
    /// The side's last line had no line end when the capture ended; it was read anyway (only a
    /// client `QUIT` or a complete-looking server reply).
    UnterminatedLine { side: Side, at: Timestamp },
    /// A reply line whose keyword is X'd out (`250-XXXXXXXA`): an SMTP-inspecting firewall
    /// hiding an extension (often STARTTLS) from the client.
    MaskedReplyLine { at: Timestamp, text: String },
    /// A client command of X's (`XXXX`): an SMTP-inspecting firewall replaced a command it did
    /// not allow; the server usually answers 500.
    MaskedCommand { at: Timestamp, len: usize },
}

/// Whether `word` is an X'd-out keyword: three or more `X`, optionally ending in one other
/// capital letter (`XXXXXXXA`, `XXXXXXXB`: the pattern Cisco ASA/PIX ESMTP inspection writes over
/// what it hides).
pub fn is_masked_word(word: &str) -> bool {
    let xs = word.trim_end_matches(|c: char| c.is_ascii_uppercase() && c != 'X');
    word.len() - xs.len() <= 1 && xs.len() >= 3 && xs.bytes().all(|b| b == b'X')
}

/// Everything the later stages know of a session's SMTP. Small and owned.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionSummary {
    /// The server's first reply (usually 220; 421 or 554 when it refuses the connection), even
    /// when the client pipelined commands before it.
    pub banner: Option<Reply>,
    /// EHLO/HELO/LHLO verb and the host name it gave (the last one, e.g. after STARTTLS).
    pub greeting: Option<(String, String)>,
    /// STARTTLS sent (its reply inside), or None.
    pub starttls: Option<Command>,
    /// Client and server switched to TLS (STARTTLS answered 220 and TLS records followed, or
    /// implicit TLS from the first byte). None when the capture shows plaintext after the 220
    /// (see [`SmtpAnomaly::PlaintextAfterStarttls`]).
    pub tls: Option<TlsSummary>,
    /// AUTH mechanism and its final reply; credentials are never kept.
    pub auth: Option<Command>,
    pub transactions: Vec<Transaction>,
    /// The client's QUIT (with its 221 when seen). A QUIT without line end at the very end of
    /// the capture counts, with an [`SmtpAnomaly::UnterminatedLine`].
    pub quit: Option<Command>,
    /// First and last command lines (lines that are no command have verb `?`), with replies.
    pub first_command: Option<Command>,
    pub last_command: Option<Command>,
    /// The last reply of any kind (banner, answer, or unprompted).
    pub last_reply: Option<Reply>,
    /// Replies the server sent when no command was waiting for one (an unprompted 421 after
    /// an idle timeout is the usual case), in order.
    pub unprompted_replies: Vec<Reply>,
    /// Commands still waiting for a reply at the end (ends of message data and AUTH responses
    /// count too: the server owes a reply for each).
    pub unanswered: u32,
    /// Client command lines, including unknown ones, excluding message data and AUTH responses.
    pub commands: u32,
    /// Complete server replies (a multi-line reply is one).
    pub replies: u32,
    /// Sizes of the client's command lines.
    pub command_lines: CommandLines,
    /// Bytes seen from each side (capture gaps not included).
    pub client_bytes: u64,
    pub server_bytes: u64,
    /// Last time the client sent anything (command or data bytes, or bytes lost in a gap).
    pub client_last_at: Option<Timestamp>,
    /// Last time the server sent anything.
    pub server_last_at: Option<Timestamp>,
    /// Where the session was at the end. `Banner` as long as no reply was seen, even if the
    /// client sent commands (ahead of the banner, or in a capture without the server's side:
    /// `server_bytes == 0` tells that case).
    pub phase: Phase,
    pub anomalies: Vec<SmtpAnomaly>,
    /// Anomalies not kept in `anomalies` because of the cap (32).
    pub anomalies_dropped: u32,
    /// Oldest transactions not kept in `transactions` because of the cap (10,000); the newest
    /// are kept, as the state at the end is what the verdict needs.
    pub transactions_dropped: u64,
    /// Unprompted replies not kept in `unprompted_replies` because of the cap (32).
    pub unprompted_dropped: u32,
    /// The conversation as a timeline: the first and the last [`EVENTS_KEPT`] events each (the
    /// end is what explains an abort); `events_dropped` says how many in the middle were not
    /// kept.
    pub events: Vec<SmtpEvent>,
    pub events_dropped: u64,
}

/// Events kept at each end of a session's timeline.
pub const EVENTS_KEPT: usize = 200;

/// One step of the conversation. Arguments are kept only where they are envelope data, never
/// AUTH data; message bodies only as a byte count.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmtpEvent {
    Command {
        at: Timestamp,
        verb: String,
        arg: Option<String>,
    },
    Reply {
        at: Timestamp,
        code: Option<u16>,
        text: String,
    },
    /// The client finished a message (the `.` line, or the last BDAT chunk).
    EndOfData { at: Timestamp, bytes: u64 },
}

impl SmtpEvent {
    pub fn at(&self) -> Timestamp {
        match self {
            SmtpEvent::Command { at, .. }
            | SmtpEvent::Reply { at, .. }
            | SmtpEvent::EndOfData { at, .. } => *at,
        }
    }
}

/// Whether the first bytes a server sends look like an SMTP banner (`220` then a space, a hyphen
/// or the line end), for recognising SMTP on a port that is not an SMTP port.
pub fn looks_like_banner(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && &bytes[..3] == b"220" && matches!(bytes[3], b' ' | b'-' | b'\r' | b'\n')
}

#[cfg(test)]
mod banner_tests {
    use super::looks_like_banner;

    #[test]
    fn banner_is_220_then_separator() {
        assert!(looks_like_banner(b"220 esa.example.com ESMTP\r\n"));
        assert!(looks_like_banner(b"220-first line\r\n"));
        assert!(looks_like_banner(b"220\r\n"));
        assert!(!looks_like_banner(b"2200 not smtp"));
        assert!(!looks_like_banner(b"HTTP/1.1 200 OK\r\n"));
        assert!(!looks_like_banner(b"22"));
    }
}
