//! Stage 3: SMTP sessions from the two reassembled byte streams of a connection.
//!
//! Contract: a [`Session`] is fed the client's and the server's bytes in the order they became
//! contiguous on the wire ([`Session::on_data`]), told where bytes were lost
//! ([`Session::on_gap`]), and summarised at the end ([`Session::summary`]). It knows nothing of
//! packets, flows or logs. It splits lines incrementally ("need more bytes" is not an error),
//! matches replies to commands in order (PIPELINING), follows DATA and BDAT, counts message
//! bodies without storing them, watches TLS record types after STARTTLS, and never keeps AUTH
//! credentials. Memory per session is bounded: a partial line is capped, text is truncated.

use serde::Serialize;

use crate::types::{Side, Timestamp};

/// The SMTP step a session is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Connected, no banner (220) received yet.
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    pub code: Option<u16>,
    pub at: Timestamp,
    pub text: String,
}

/// A command verb and when it was sent. Arguments are kept only where they are envelope data
/// (MAIL FROM, RCPT TO addresses, EHLO host), never for AUTH.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    /// Upper-cased verb (`EHLO`, `MAIL`, `RCPT`, `DATA`, `BDAT`, `QUIT`, ...), or `?` when the
    /// line is not a command.
    pub verb: String,
    pub at: Timestamp,
    /// The reply it got, when one was seen.
    pub reply: Option<Reply>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    Data,
    Bdat,
}

/// Message data of one transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageData {
    pub kind: DataKind,
    /// DATA (or the first BDAT) sent.
    pub command_at: Timestamp,
    /// The 354 to DATA (None for BDAT, or when refused / not seen).
    pub go_ahead: Option<Reply>,
    /// End of data sent by the client (the `.` line, or the BDAT ... LAST chunk complete).
    pub end_at: Option<Timestamp>,
    /// Message bytes the client sent (after 354 up to the end mark, or BDAT chunk bytes).
    pub bytes: u64,
    /// The final reply to the message data.
    pub final_reply: Option<Reply>,
}

/// One mail transaction: from MAIL FROM to the final reply to its data, or to RSET/QUIT/end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transaction {
    pub mail_at: Timestamp,
    /// The reverse-path as sent, without angle brackets (`""` for the null sender).
    pub mail_from: String,
    pub mail_reply: Option<Reply>,
    pub rcpt_to: Vec<Recipient>,
    pub data: Option<MessageData>,
    /// How the transaction ended when it was not completed: `RSET`, `QUIT`, or None.
    pub ended_by: Option<String>,
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

#[derive(Debug, Clone, PartialEq, Serialize)]
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
    Gap { side: Side, at: Timestamp, bytes: u64 },
    /// A line longer than the cap; the rest of it was skipped.
    LineTooLong { side: Side, at: Timestamp },
    /// The client sent commands before the server's banner.
    CommandBeforeBanner { at: Timestamp },
    /// A server line that is not a reply (no 3-digit code).
    ReplyWithoutCode { at: Timestamp, text: String },
    /// A reply that answered no outstanding command (e.g. an unprompted 421).
    UnpromptedReply { at: Timestamp, code: Option<u16> },
    /// A client line that is not a known command.
    UnknownCommand { at: Timestamp, verb: String },
}

/// Everything the later stages know of a session's SMTP. Small and owned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub banner: Option<Reply>,
    /// EHLO/HELO/LHLO verb and the host name it gave.
    pub greeting: Option<(String, String)>,
    /// STARTTLS sent (its reply inside), or None.
    pub starttls: Option<Command>,
    /// Client and server switched to TLS (STARTTLS answered 220).
    pub tls: Option<TlsSummary>,
    /// AUTH mechanism and its final reply; credentials are never kept.
    pub auth: Option<Command>,
    pub transactions: Vec<Transaction>,
    pub quit: Option<Command>,
    pub first_command: Option<Command>,
    pub last_command: Option<Command>,
    pub last_reply: Option<Reply>,
    /// Replies the server sent when no command was waiting for one (an unprompted 421 after
    /// an idle timeout is the usual case), in order.
    pub unprompted_replies: Vec<Reply>,
    /// Commands still waiting for a reply at the end.
    pub unanswered: u32,
    pub commands: u32,
    pub replies: u32,
    pub client_bytes: u64,
    pub server_bytes: u64,
    /// Last time the client sent anything (command or data bytes).
    pub client_last_at: Option<Timestamp>,
    /// Last time the server sent anything.
    pub server_last_at: Option<Timestamp>,
    pub phase: Phase,
    pub anomalies: Vec<SmtpAnomaly>,
}
