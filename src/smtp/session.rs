//! The SMTP session state machine.
//!
//! Contract: [`Session`] is fed each side's bytes in the order they became contiguous on the
//! wire and told about capture gaps; [`Session::summary`] says what happened. The result does
//! not depend on how a side's bytes were cut into calls.
//!
//! How it works, and why:
//! - Each side has a mode. The client is in `Command` (lines), `Hold` (right after DATA or
//!   STARTTLS, until their reply), `Body` (DATA body, scanned for the end mark), `Chunk` (BDAT
//!   bytes, counted), or TLS. The server is in `Reply` (lines) or TLS.
//! - PIPELINING: every command (and each end of message data, and each SASL response) is queued
//!   in `waiting`; each final reply answers the oldest entry. The first reply of the session is
//!   the banner, even when the client pipelined commands before it.
//! - `Hold`: the client enters the body only when the 354 arrives, and its commands stay
//!   commands if DATA is refused (a client that sends its body anyway gets a 500 per line).
//!   Bytes that arrive before that reply are held (at most 64 KiB) and replayed once the reply
//!   is known. Past the bound, or when the capture ends with no reply (one-sided capture), the
//!   body is assumed. STARTTLS holds the same way, since the client's bytes after it are TLS
//!   only if the server said 220.
//! - After STARTTLS is accepted, the first byte either side sends decides: a TLS record type
//!   means TLS records from here on (both directions), a letter or digit means the capture holds
//!   decrypted plaintext and SMTP parsing resumes.
//! - Memory is bounded: lines at 4 KiB, held bytes at 64 KiB, waiting commands at 1,024,
//!   transactions at 10,000 (newest kept), recipients at 1,000 per transaction and 10,000 per
//!   session, anomalies and unprompted replies at 32; what is cut is counted.

use std::collections::VecDeque;
use std::mem;

use crate::types::{Side, Timestamp};

use super::body::BodyScan;
use super::command::{self, Parsed};
use super::line::{LineBuf, strip_cr};
use super::reply::{self, ReplyLine};
use super::tls::{self, TlsWatch};
use super::{
    Command, CommandLines, DataKind, DataLines, EVENTS_KEPT, MessageData, Phase, Recipient, Reply,
    SessionSummary, SmtpAnomaly, SmtpEvent, TlsSummary, Transaction,
};

pub(crate) const MAX_ANOMALIES: usize = 32;
pub(crate) const MAX_UNPROMPTED: usize = 32;
pub(crate) const MAX_TRANSACTIONS: usize = 10_000;
pub(crate) const MAX_RCPTS_PER_TX: usize = 1_000;
pub(crate) const MAX_RCPTS: usize = 10_000;
pub(crate) const MAX_WAITING: usize = 1_024;
/// Client bytes held while the reply to DATA or STARTTLS is not known yet.
pub(crate) const MAX_HOLD: usize = 64 * 1024;
/// Separate held pieces (each call with a new timestamp, each gap makes one).
const MAX_HOLD_ITEMS: usize = 1_024;

/// TLS ClientHello record start: content type handshake, version 3.x.
const TLS_HANDSHAKE_START: [u8; 2] = [0x16, 0x03];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldFor {
    Data,
    StartTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ClientMode {
    #[default]
    Command,
    /// DATA or STARTTLS (command `seq`) sent, its reply not seen yet: bytes are held.
    Hold {
        hold_for: HoldFor,
        seq: u64,
        tx: Option<u64>,
    },
    /// DATA body, until the end mark.
    Body,
    /// BDAT chunk bytes still to come.
    Chunk {
        remaining: u64,
        last: bool,
    },
    /// STARTTLS accepted, no byte since: the first byte tells TLS from decrypted plaintext.
    TlsDetect,
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ServerMode {
    #[default]
    Reply,
    TlsDetect,
    Tls,
}

#[derive(Clone)]
enum Held {
    Data(Timestamp, Vec<u8>),
    Gap(Timestamp, u64),
}

/// Lengths only: held bytes are message data and must not end up in a debug print.
impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Held::Data(at, b) => write!(f, "Data({at:?}, {} bytes)", b.len()),
            Held::Gap(at, n) => write!(f, "Gap({at:?}, {n})"),
        }
    }
}

/// What a queued entry waits a reply for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Hello,
    Mail,
    Rcpt {
        idx: Option<usize>,
    },
    Data,
    /// The end of a DATA body (the `.` line).
    EndOfData,
    Bdat {
        last: bool,
    },
    StartTls,
    Auth,
    /// A SASL response line (its content is never kept).
    AuthResponse,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The command whose record the reply updates (the AUTH command for SASL responses; none
    /// for the end of data).
    seq: Option<u64>,
    what: Waiting,
    tx: Option<u64>,
}

/// One SMTP session, built from the two byte streams of a TCP connection.
#[derive(Debug, Clone, Default)]
pub struct Session {
    // Client side.
    c_mode: ClientMode,
    c_line: LineBuf,
    body: BodyScan,
    /// Transaction the current DATA body or BDAT chunk belongs to.
    body_tx: Option<u64>,
    /// Bytes were lost inside the current body.
    body_gap: bool,
    hold: Vec<Held>,
    hold_bytes: usize,
    /// Since AUTH, client lines are SASL responses unless they are commands. Only a command
    /// line ends this, not the server's final reply: if replies were ever matched to the wrong
    /// entry, a credential line must still not be read as an unknown command and stored.
    auth_active: bool,
    /// The AUTH exchange got its final (non-334) reply.
    auth_done: bool,
    c_tls: TlsWatch,

    // Server side.
    s_mode: ServerMode,
    s_line: LineBuf,
    /// First line's text of a multi-line reply under way.
    partial_reply: Option<String>,
    s_tls: TlsWatch,

    // TLS.
    tls_on: bool,
    tls: TlsSummary,

    // Matching.
    waiting: VecDeque<Pending>,
    waiting_dropped: u32,
    next_seq: u64,
    banner_done: bool,

    // Transactions.
    txs: VecDeque<Transaction>,
    /// Id of `txs[0]`; ids count every transaction ever opened.
    tx_base: u64,
    open_tx: Option<u64>,
    tx_dropped: u64,
    rcpts_stored: usize,

    // Summary facts.
    banner: Option<Reply>,
    greeting: Option<(String, String)>,
    starttls: Option<(u64, Command)>,
    auth: Option<(u64, Command)>,
    quit: Option<(u64, Command)>,
    first_command: Option<(u64, Command)>,
    last_command: Option<(u64, Command)>,
    last_reply: Option<Reply>,
    unprompted: Vec<Reply>,
    unprompted_dropped: u32,
    commands: u32,
    replies: u32,
    cmd_lines: CommandLines,
    client_bytes: u64,
    server_bytes: u64,
    client_last_at: Option<Timestamp>,
    server_last_at: Option<Timestamp>,
    phase: Phase,
    anomalies: Vec<SmtpAnomaly>,
    anomalies_dropped: u32,
    reported_before_banner: bool,
    reported_tls_junk: bool,

    // Timeline: the first events, and a ring of the last ones.
    events_head: Vec<SmtpEvent>,
    events_tail: VecDeque<SmtpEvent>,
    events_dropped: u64,
}

fn is_refusal(code: Option<u16>) -> bool {
    matches!(code, Some(c) if c >= 400)
}

fn is_intermediate(code: Option<u16>) -> bool {
    matches!(code, Some(c) if (300..400).contains(&c))
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of one side, in the order they became contiguous on the wire.
    pub fn on_data(&mut self, side: Side, at: Timestamp, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match side {
            Side::Client => {
                // A client whose very first byte opens a TLS record, before the server said
                // anything, speaks implicit TLS (port 465).
                let first = self.client_last_at.is_none() && self.server_last_at.is_none();
                self.client_bytes = self.client_bytes.saturating_add(bytes.len() as u64);
                self.client_last_at = Some(at);
                if first && bytes[0] == TLS_HANDSHAKE_START[0] {
                    self.start_tls();
                    self.c_mode = ClientMode::Tls;
                    self.s_mode = ServerMode::Tls;
                }
                self.client_data(at, bytes);
            }
            Side::Server => {
                self.server_bytes = self.server_bytes.saturating_add(bytes.len() as u64);
                self.server_last_at = Some(at);
                self.server_data(at, bytes);
            }
        }
    }

    /// `bytes` were lost on this side (capture gap); resynchronise at the next line.
    pub fn on_gap(&mut self, side: Side, at: Timestamp, bytes: u64) {
        if bytes == 0 {
            // Nothing lost, but the stream may start mid-line (a capture that joined the
            // connection late): keep the next line only if it looks like a line of SMTP.
            match side {
                Side::Client if self.c_mode == ClientMode::Command => self.c_line.gap(),
                Side::Server if self.s_mode == ServerMode::Reply => self.s_line.gap(),
                _ => {}
            }
            return;
        }
        self.anomaly(SmtpAnomaly::Gap { side, at, bytes });
        match side {
            Side::Client => {
                self.client_last_at = Some(at);
                self.client_gap(at, bytes);
            }
            Side::Server => {
                self.server_last_at = Some(at);
                self.server_gap(bytes);
            }
        }
    }

    /// What happened so far. Read as if the capture ended now: bytes still held for a reply
    /// that never came are interpreted, and a final `QUIT` without line end counts.
    pub fn summary(&self) -> SessionSummary {
        if self.needs_finish() {
            let mut s = self.clone();
            s.finish();
            s.build_summary()
        } else {
            self.build_summary()
        }
    }

    // ---------------------------------------------------------------- client side

    fn client_data(&mut self, at: Timestamp, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.c_mode {
                ClientMode::Command => {
                    let p = self.c_line.push(bytes);
                    bytes = &bytes[p.consumed..];
                    // GSSAPI responses legitimately exceed the cap; they are dropped anyway.
                    if p.overflowed && !self.auth_active {
                        self.anomaly(SmtpAnomaly::LineTooLong {
                            side: Side::Client,
                            at,
                        });
                    }
                    if p.complete {
                        // Taken out so the line can be read while `self` changes; nothing in
                        // client_line writes to the client's line buffer.
                        let mut line = mem::take(&mut self.c_line.buf);
                        let resync = self.c_line.resync;
                        self.client_line(at, strip_cr(&line), resync);
                        self.c_line.finish_line();
                        line.clear();
                        self.c_line.buf = line;
                    }
                }
                ClientMode::Hold { .. } => bytes = self.hold_data(at, bytes),
                ClientMode::Body => {
                    let before = self.body.sizes;
                    let r = self.body.scan(bytes);
                    self.note_line_times(at, &before);
                    bytes = &bytes[r.consumed..];
                    self.add_body_bytes(r.consumed as u64);
                    if r.ended {
                        self.sub_body_bytes(r.mark_len);
                        self.body_end(at);
                    }
                }
                ClientMode::Chunk { remaining, last } => {
                    let n = remaining.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.add_body_bytes(n);
                    if n == remaining {
                        self.chunk_end(at, last);
                    } else {
                        self.c_mode = ClientMode::Chunk {
                            remaining: remaining - n,
                            last,
                        };
                    }
                }
                ClientMode::TlsDetect => self.decide_tls(at, bytes[0]),
                ClientMode::Tls => {
                    self.c_tls.feed(&mut self.tls.client, at, bytes);
                    return;
                }
            }
        }
    }

    fn client_gap(&mut self, at: Timestamp, bytes: u64) {
        match self.c_mode {
            ClientMode::Command => self.c_line.gap(),
            ClientMode::Hold { .. } => {
                if self.hold.len() >= MAX_HOLD_ITEMS {
                    self.resolve_hold_assumed(at);
                    self.client_gap(at, bytes);
                } else {
                    self.hold.push(Held::Gap(at, bytes));
                }
            }
            ClientMode::Body => {
                self.add_body_bytes(bytes);
                self.body.gap();
                self.body_gap = true;
            }
            ClientMode::Chunk { remaining, last } => {
                if bytes < remaining {
                    self.add_body_bytes(bytes);
                    self.c_mode = ClientMode::Chunk {
                        remaining: remaining - bytes,
                        last,
                    };
                } else {
                    self.add_body_bytes(remaining);
                    self.chunk_end(at, last);
                    if bytes > remaining {
                        self.c_line.gap();
                    }
                }
            }
            // The deciding byte is lost: the next one decides. If it is plaintext, its first line
            // may be a fragment; if it is TLS out of step, the record check finds out.
            ClientMode::TlsDetect => self.c_line.gap(),
            ClientMode::Tls => self.c_tls.gap(&mut self.tls.client, bytes),
        }
    }

    /// Holds client bytes until the reply to DATA/STARTTLS; returns what is left when the bound
    /// forced a decision (to be read in the new mode).
    fn hold_data<'a>(&mut self, at: Timestamp, bytes: &'a [u8]) -> &'a [u8] {
        let room = MAX_HOLD - self.hold_bytes;
        let take = bytes.len().min(room);
        if take > 0 {
            self.hold_bytes += take;
            match self.hold.last_mut() {
                // Same time: one piece, so how a segment was cut does not change the count.
                Some(Held::Data(t, b)) if *t == at => b.extend_from_slice(&bytes[..take]),
                _ => self.hold.push(Held::Data(at, bytes[..take].to_vec())),
            }
        }
        if take < bytes.len() || self.hold.len() > MAX_HOLD_ITEMS {
            self.resolve_hold_assumed(at);
        }
        &bytes[take..]
    }

    /// The reply to the held-for command is known: switch mode and replay the held bytes.
    fn resolve_hold(&mut self, accepted: bool) {
        let ClientMode::Hold { hold_for, tx, .. } = self.c_mode else {
            return;
        };
        self.c_mode = match (hold_for, accepted) {
            (HoldFor::Data, true) => {
                self.body = BodyScan::default();
                self.body_gap = false;
                self.body_tx = tx;
                ClientMode::Body
            }
            (HoldFor::StartTls, true) => ClientMode::TlsDetect,
            (_, false) => ClientMode::Command,
        };
        let held = mem::take(&mut self.hold);
        self.hold_bytes = 0;
        for h in held {
            match h {
                Held::Data(at, b) => self.client_data(at, &b),
                Held::Gap(at, n) => self.client_gap(at, n),
            }
        }
    }

    /// No reply in time: DATA is taken as accepted (the client is evidently sending its
    /// message), STARTTLS as accepted only if the client's next bytes are a TLS record.
    fn resolve_hold_assumed(&mut self, at: Timestamp) {
        let ClientMode::Hold { hold_for, .. } = self.c_mode else {
            return;
        };
        match hold_for {
            HoldFor::Data => {
                self.anomaly(SmtpAnomaly::ReplyAssumed {
                    at,
                    verb: "DATA".into(),
                });
                if matches!(self.phase, Phase::Greeting | Phase::Envelope) {
                    self.phase = Phase::Data;
                }
                self.resolve_hold(true);
            }
            HoldFor::StartTls => {
                let tls_next = matches!(self.hold.first(), Some(Held::Data(_, b)) if b.first().is_some_and(|&x| tls::is_record_type(x)));
                if tls_next {
                    self.anomaly(SmtpAnomaly::ReplyAssumed {
                        at,
                        verb: "STARTTLS".into(),
                    });
                    self.start_tls();
                }
                self.resolve_hold(tls_next);
            }
        }
    }

    fn client_line(&mut self, at: Timestamp, line: &[u8], resync: bool) {
        if resync && !command::is_command(line) {
            // Tail of a line cut by the gap.
            return;
        }
        if self.auth_active {
            if !command::is_command(line) {
                // A SASL response: queued for its reply, its content dropped here.
                let seq = self.auth.as_ref().map(|(s, _)| *s);
                self.push_waiting(Pending {
                    seq,
                    what: Waiting::AuthResponse,
                    tx: None,
                });
                return;
            }
            self.auth_active = false;
        }
        if line.starts_with(&TLS_HANDSHAKE_START) && !self.reported_tls_junk {
            self.reported_tls_junk = true;
            self.anomaly(SmtpAnomaly::TlsWithoutStarttls { at });
        }
        if !self.banner_done && !self.reported_before_banner {
            self.reported_before_banner = true;
            self.anomaly(SmtpAnomaly::CommandBeforeBanner { at });
        }

        let parsed = command::parse(line);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.commands = self.commands.saturating_add(1);
        let arg = match &parsed {
            Parsed::Hello { host, .. } => Some(host.clone()),
            Parsed::Auth { mechanism, .. } => mechanism.clone(),
            Parsed::Mail { from } => Some(from.clone()),
            Parsed::Rcpt { to } => Some(to.clone()),
            Parsed::Bdat { size, last } => Some(if *last {
                format!("{size} LAST")
            } else {
                size.to_string()
            }),
            _ => None,
        };
        let cmd = Command {
            verb: parsed.verb().to_string(),
            at,
            reply: None,
            arg,
        };
        self.event(SmtpEvent::Command {
            at,
            verb: cmd.verb.clone(),
            arg: cmd.arg.clone(),
        });
        if self.first_command.is_none() {
            self.first_command = Some((seq, cmd.clone()));
        }
        self.last_command = Some((seq, cmd.clone()));
        // The line's size as sent: the buffer's count plus the LF, or (an unterminated QUIT read
        // at the end) the line itself.
        let octets = match self.c_line.octets {
            0 => line.len() as u64,
            n => n.saturating_add(1),
        };
        let cl = &mut self.cmd_lines;
        if self.commands > 1 {
            cl.longest_earlier_octets = cl.longest_earlier_octets.max(cl.last_octets);
        }
        cl.last_octets = octets;

        let mut pending = Pending {
            seq: Some(seq),
            what: Waiting::Other,
            tx: None,
        };
        match parsed {
            Parsed::Hello { verb, host } => {
                self.greeting = Some((verb.to_string(), host));
                // EHLO resets a transaction exactly as RSET does (RFC 5321 4.1.4); recorded in
                // the contract's vocabulary, which knows RSET and QUIT.
                self.reset_tx("RSET");
                if matches!(self.phase, Phase::Envelope | Phase::Data) {
                    self.phase = Phase::Greeting;
                }
                pending.what = Waiting::Hello;
            }
            Parsed::StartTls { .. } => {
                self.starttls = Some((seq, cmd));
                pending.what = Waiting::StartTls;
                self.c_mode = ClientMode::Hold {
                    hold_for: HoldFor::StartTls,
                    seq,
                    tx: None,
                };
            }
            Parsed::Auth { .. } => {
                self.auth = Some((seq, cmd));
                self.auth_active = true;
                self.auth_done = false;
                pending.what = Waiting::Auth;
            }
            Parsed::Mail { from } => {
                pending.tx = Some(self.open_transaction(at, from));
                pending.what = Waiting::Mail;
                if self.phase != Phase::Quit {
                    self.phase = Phase::Envelope;
                }
            }
            Parsed::Rcpt { to } => {
                pending.tx = self.open_tx;
                pending.what = Waiting::Rcpt {
                    idx: self.add_recipient(to),
                };
            }
            Parsed::Data => {
                pending.tx = self.open_tx;
                pending.what = Waiting::Data;
                if let Some(t) = self.tx_mut(self.open_tx) {
                    t.data = Some(MessageData {
                        kind: DataKind::Data,
                        command_at: at,
                        ..MessageData::default()
                    });
                }
                self.c_mode = ClientMode::Hold {
                    hold_for: HoldFor::Data,
                    seq,
                    tx: self.open_tx,
                };
            }
            Parsed::Bdat { size, last } => {
                pending.tx = self.open_tx;
                pending.what = Waiting::Bdat { last };
                if let Some(t) = self.tx_mut(self.open_tx) {
                    // A new BDAT sequence unless this continues one still under way.
                    let continues = matches!(&t.data, Some(d) if d.kind == DataKind::Bdat
                        && d.end_at.is_none() && d.final_reply.is_none());
                    if !continues {
                        t.data = Some(MessageData {
                            kind: DataKind::Bdat,
                            command_at: at,
                            ..MessageData::default()
                        });
                    }
                }
                if matches!(self.phase, Phase::Greeting | Phase::Envelope) {
                    self.phase = Phase::Data;
                }
                self.body_tx = self.open_tx;
                self.c_mode = ClientMode::Chunk {
                    remaining: size,
                    last,
                };
                if size == 0 {
                    self.chunk_end(at, last);
                }
            }
            Parsed::Rset => {
                self.reset_tx("RSET");
                if matches!(self.phase, Phase::Envelope | Phase::Data) {
                    self.phase = Phase::Greeting;
                }
            }
            Parsed::Quit => {
                self.reset_tx("QUIT");
                self.quit = Some((seq, cmd));
                self.phase = Phase::Quit;
            }
            Parsed::Other { .. } => {}
            Parsed::Unknown { verb } if super::is_masked_word(&verb) => {
                self.anomaly(SmtpAnomaly::MaskedCommand {
                    at,
                    len: line.len(),
                })
            }
            Parsed::Unknown { verb } => self.anomaly(SmtpAnomaly::UnknownCommand { at, verb }),
        }
        self.push_waiting(pending);
    }

    /// A DATA body scan changed the line sizes: the longest lines and the end of the header
    /// section happened in the bytes that arrived at `at`.
    fn note_line_times(&mut self, at: Timestamp, before: &DataLines) {
        let z = &mut self.body.sizes;
        if z.longest_header_line != before.longest_header_line {
            z.longest_header_line_at = Some(at);
        }
        if z.longest_body_line != before.longest_body_line {
            z.longest_body_line_at = Some(at);
        }
        if z.header_ended && !before.header_ended {
            z.header_ended_at = Some(at);
        }
    }

    /// The DATA body is over (end mark, or taken as over): its line sizes go to its message.
    fn store_lines(&mut self) {
        let sizes = self.body.sizes;
        if let Some(d) = self.data_mut(self.body_tx) {
            d.lines = sizes;
        }
    }

    /// The `.` line: the client finished the message; its final reply is queued.
    fn body_end(&mut self, at: Timestamp) {
        self.store_lines();
        if let Some(d) = self.data_mut(self.body_tx) {
            d.end_at = Some(at);
        }
        self.end_of_data_event(at);
        self.push_waiting(Pending {
            seq: None,
            what: Waiting::EndOfData,
            tx: self.body_tx,
        });
        self.c_mode = ClientMode::Command;
    }

    fn chunk_end(&mut self, at: Timestamp, last: bool) {
        if last && let Some(d) = self.data_mut(self.body_tx) {
            d.end_at = Some(at);
        }
        if last {
            self.end_of_data_event(at);
        }
        self.c_mode = ClientMode::Command;
    }

    // ---------------------------------------------------------------- server side

    fn server_data(&mut self, at: Timestamp, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.s_mode {
                ServerMode::Reply => {
                    let p = self.s_line.push(bytes);
                    bytes = &bytes[p.consumed..];
                    // GSSAPI challenges legitimately exceed the cap; the code is all that counts.
                    let challenge = matches!(
                        self.waiting.front(),
                        Some(Pending {
                            what: Waiting::Auth | Waiting::AuthResponse,
                            ..
                        })
                    );
                    if p.overflowed && !challenge {
                        self.anomaly(SmtpAnomaly::LineTooLong {
                            side: Side::Server,
                            at,
                        });
                    }
                    if p.complete {
                        // Replies may replay held client bytes, which never touch this buffer.
                        let mut line = mem::take(&mut self.s_line.buf);
                        let resync = self.s_line.resync;
                        self.server_line(at, strip_cr(&line), resync);
                        self.s_line.finish_line();
                        line.clear();
                        self.s_line.buf = line;
                    }
                }
                ServerMode::TlsDetect => self.decide_tls(at, bytes[0]),
                ServerMode::Tls => {
                    self.s_tls.feed(&mut self.tls.server, at, bytes);
                    return;
                }
            }
        }
    }

    fn server_gap(&mut self, bytes: u64) {
        match self.s_mode {
            ServerMode::Reply => self.s_line.gap(),
            ServerMode::TlsDetect => self.s_line.gap(),
            ServerMode::Tls => self.s_tls.gap(&mut self.tls.server, bytes),
        }
    }

    fn server_line(&mut self, at: Timestamp, line: &[u8], resync: bool) {
        let parsed = reply::parse_line(line);
        if let ReplyLine::Continuation { text, .. } | ReplyLine::Final { text, .. } = &parsed
            && text
                .split_whitespace()
                .next()
                .is_some_and(super::is_masked_word)
        {
            self.anomaly(SmtpAnomaly::MaskedReplyLine {
                at,
                text: text.clone(),
            });
        }
        match parsed {
            ReplyLine::Continuation { text, .. } => {
                if self.partial_reply.is_none() {
                    self.partial_reply = Some(text);
                }
            }
            ReplyLine::Final { code, text } => {
                let text = self.partial_reply.take().unwrap_or(text);
                self.reply(Reply {
                    code: Some(code),
                    at,
                    text,
                });
            }
            ReplyLine::NoCode { text } => {
                if resync && !reply::has_code(line) {
                    return;
                }
                self.anomaly(SmtpAnomaly::ReplyWithoutCode {
                    at,
                    text: text.clone(),
                });
                // Inside a multi-line reply it is one more line of it; alone, it answers the
                // oldest waiting command (e.g. a deferral text sent without its code).
                if self.partial_reply.is_none() && !self.waiting.is_empty() {
                    self.reply(Reply {
                        code: None,
                        at,
                        text,
                    });
                }
            }
        }
    }

    fn reply(&mut self, mut r: Reply) {
        self.replies = self.replies.saturating_add(1);
        // A 5xx to a SASL response may echo it: never keep that text (as below).
        let echoes_sasl = self
            .waiting
            .front()
            .is_some_and(|p| p.what == Waiting::AuthResponse)
            && matches!(r.code, Some(500..=504));
        self.event(SmtpEvent::Reply {
            at: r.at,
            code: r.code,
            text: if echoes_sasl {
                "<redacted>".into()
            } else {
                r.text.clone()
            },
        });
        let code = r.code;
        if !self.banner_done {
            self.banner_done = true;
            if self.phase == Phase::Banner {
                self.phase = Phase::Greeting;
            }
            // The first reply is the banner, even with commands pipelined before it; unless it
            // plainly answers one (a capture that started mid-session).
            let answers_command =
                !self.waiting.is_empty() && matches!(code, Some(c) if c < 400 && c != 220);
            if !answers_command {
                self.banner = Some(r.clone());
                self.last_reply = Some(r);
                return;
            }
        }
        if self.waiting.is_empty()
            && self.c_mode == ClientMode::Body
            && self.body_gap
            && matches!(code, Some(c) if (200..300).contains(&c))
        {
            // The end mark was lost in a gap: the server's acceptance says where it was.
            self.store_lines();
            self.push_waiting(Pending {
                seq: None,
                what: Waiting::EndOfData,
                tx: self.body_tx,
            });
            self.c_mode = ClientMode::Command;
            self.c_line.gap();
        }
        let Some(p) = self.waiting.pop_front() else {
            self.anomaly(SmtpAnomaly::UnpromptedReply { at: r.at, code });
            if self.unprompted.len() < MAX_UNPROMPTED {
                self.unprompted.push(r.clone());
            } else {
                self.unprompted_dropped = self.unprompted_dropped.saturating_add(1);
            }
            self.last_reply = Some(r);
            return;
        };
        if p.what == Waiting::AuthResponse && matches!(code, Some(500..=504)) {
            // A server that took the SASL response for a command may echo it.
            r.text = "<redacted>".into();
        }
        let auth_challenge =
            matches!(p.what, Waiting::Auth | Waiting::AuthResponse) && code == Some(334);
        // Lines taken as SASL responses after the exchange ended do not change its outcome.
        let late_response = p.what == Waiting::AuthResponse && self.auth_done;
        if let Some(seq) = p.seq
            && !auth_challenge
            && !late_response
        {
            self.set_command_reply(seq, &r);
        }
        match p.what {
            Waiting::Hello | Waiting::Other => {}
            Waiting::Mail => {
                if let Some(t) = self.tx_mut(p.tx) {
                    t.mail_reply = Some(r.clone());
                }
                if is_refusal(code) && self.open_tx == p.tx && self.phase == Phase::Envelope {
                    self.phase = Phase::Greeting;
                }
            }
            Waiting::Rcpt { idx } => {
                if let (Some(i), Some(t)) = (idx, self.tx_mut(p.tx))
                    && let Some(rcpt) = t.rcpt_to.get_mut(i)
                {
                    rcpt.reply = Some(r.clone());
                }
            }
            Waiting::Data => {
                let go = is_intermediate(code);
                if let Some(d) = self.data_mut(p.tx) {
                    if go {
                        d.go_ahead = Some(r.clone());
                    } else {
                        d.refused = Some(r.clone());
                    }
                }
                if go {
                    if matches!(self.phase, Phase::Greeting | Phase::Envelope) {
                        self.phase = Phase::Data;
                    }
                } else if self.phase == Phase::Data {
                    self.phase = Phase::Envelope;
                }
                if matches!(self.c_mode, ClientMode::Hold { hold_for: HoldFor::Data, seq, .. } if Some(seq) == p.seq)
                {
                    self.resolve_hold(go);
                }
            }
            Waiting::EndOfData => self.final_reply(p.tx, &r),
            Waiting::Bdat { last } => {
                if last {
                    self.final_reply(p.tx, &r);
                } else if is_refusal(code)
                    && let Some(d) = self.data_mut(p.tx)
                    && d.refused.is_none()
                {
                    d.refused = Some(r.clone());
                }
            }
            Waiting::StartTls => {
                let held = matches!(self.c_mode, ClientMode::Hold { hold_for: HoldFor::StartTls, seq, .. } if Some(seq) == p.seq);
                if matches!(code, Some(200..=299)) {
                    self.start_tls();
                    if held {
                        self.resolve_hold(true);
                    }
                } else if held {
                    self.resolve_hold(false);
                }
            }
            Waiting::Auth | Waiting::AuthResponse => {
                if !auth_challenge {
                    self.auth_done = true;
                }
            }
        }
        self.last_reply = Some(r);
    }

    fn final_reply(&mut self, tx: Option<u64>, r: &Reply) {
        if let Some(d) = self.data_mut(tx) {
            d.final_reply = Some(r.clone());
        }
        if self.open_tx == tx {
            self.open_tx = None;
        }
        if self.phase == Phase::Data {
            self.phase = Phase::AfterData;
        }
    }

    fn set_command_reply(&mut self, seq: u64, r: &Reply) {
        for (s, c) in [
            &mut self.first_command,
            &mut self.last_command,
            &mut self.starttls,
            &mut self.auth,
            &mut self.quit,
        ]
        .into_iter()
        .flatten()
        {
            if *s == seq {
                c.reply = Some(r.clone());
            }
        }
    }

    // ---------------------------------------------------------------- TLS

    /// STARTTLS accepted (or implicit TLS): both directions wait for their first byte.
    fn start_tls(&mut self) {
        self.tls_on = true;
        self.phase = Phase::Tls;
        self.auth_active = false;
        self.partial_reply = None;
        if self.c_mode == ClientMode::Command {
            self.c_mode = ClientMode::TlsDetect;
        }
        self.s_mode = ServerMode::TlsDetect;
    }

    /// The first byte after STARTTLS decides for both directions.
    fn decide_tls(&mut self, at: Timestamp, first: u8) {
        if first.is_ascii_alphanumeric() {
            self.tls_on = false;
            self.tls = TlsSummary::default();
            if self.phase == Phase::Tls {
                self.phase = Phase::Greeting;
            }
            self.anomaly(SmtpAnomaly::PlaintextAfterStarttls { at });
            if self.c_mode == ClientMode::TlsDetect {
                self.c_mode = ClientMode::Command;
            }
            if self.s_mode == ServerMode::TlsDetect {
                self.s_mode = ServerMode::Reply;
            }
        } else {
            if self.c_mode == ClientMode::TlsDetect {
                self.c_mode = ClientMode::Tls;
            }
            if self.s_mode == ServerMode::TlsDetect {
                self.s_mode = ServerMode::Tls;
            }
        }
    }

    // ---------------------------------------------------------------- transactions

    fn tx_index(&self, id: Option<u64>) -> Option<usize> {
        let i = id?.checked_sub(self.tx_base)?;
        (i < self.txs.len() as u64).then_some(i as usize)
    }

    fn tx_mut(&mut self, id: Option<u64>) -> Option<&mut Transaction> {
        let i = self.tx_index(id)?;
        self.txs.get_mut(i)
    }

    fn data_mut(&mut self, id: Option<u64>) -> Option<&mut MessageData> {
        self.tx_mut(id)?.data.as_mut()
    }

    fn add_body_bytes(&mut self, n: u64) {
        if let Some(d) = self.data_mut(self.body_tx) {
            d.bytes = d.bytes.saturating_add(n);
        }
    }

    fn sub_body_bytes(&mut self, n: u64) {
        if let Some(d) = self.data_mut(self.body_tx) {
            d.bytes = d.bytes.saturating_sub(n);
        }
    }

    fn open_transaction(&mut self, at: Timestamp, mail_from: String) -> u64 {
        let id = self.tx_base + self.txs.len() as u64;
        // Most sessions carry one message: grow from one slot, not the default four (a
        // transaction is a few hundred bytes, times every open connection).
        if self.txs.len() == self.txs.capacity() {
            self.txs.reserve_exact(self.txs.len().max(1));
        }
        self.txs.push_back(Transaction {
            mail_at: at,
            mail_from,
            ..Transaction::default()
        });
        self.open_tx = Some(id);
        if self.txs.len() > MAX_TRANSACTIONS
            && let Some(old) = self.txs.pop_front()
        {
            self.tx_base += 1;
            self.tx_dropped += 1;
            self.rcpts_stored -= old.rcpt_to.len();
        }
        id
    }

    fn add_recipient(&mut self, address: String) -> Option<usize> {
        let i = self.tx_index(self.open_tx)?;
        let t = &mut self.txs[i];
        if t.rcpt_to.len() < MAX_RCPTS_PER_TX && self.rcpts_stored < MAX_RCPTS {
            t.rcpt_to.push(Recipient {
                address,
                reply: None,
            });
            self.rcpts_stored += 1;
            Some(t.rcpt_to.len() - 1)
        } else {
            t.rcpt_dropped = t.rcpt_dropped.saturating_add(1);
            None
        }
    }

    /// RSET, QUIT or EHLO: the open transaction ends; if the client had not finished its
    /// message, that is how it ended.
    fn reset_tx(&mut self, verb: &str) {
        let id = self.open_tx.take();
        if let Some(t) = self.tx_mut(id) {
            let unfinished = t
                .data
                .as_ref()
                .is_none_or(|d| d.end_at.is_none() && d.final_reply.is_none());
            if t.started() && !t.completed() && unfinished {
                t.ended_by = Some(verb.to_string());
            }
        }
    }

    // ---------------------------------------------------------------- bookkeeping

    fn push_waiting(&mut self, p: Pending) {
        if self.waiting.len() < MAX_WAITING {
            self.waiting.push_back(p);
        } else {
            self.waiting_dropped = self.waiting_dropped.saturating_add(1);
        }
    }

    fn end_of_data_event(&mut self, at: Timestamp) {
        let bytes = self
            .tx_index(self.body_tx)
            .and_then(|i| self.txs[i].data.as_ref())
            .map_or(0, |d| d.bytes);
        self.event(SmtpEvent::EndOfData { at, bytes });
    }

    /// Records a timeline event, keeping the first and the last [`EVENTS_KEPT`].
    fn event(&mut self, e: SmtpEvent) {
        if self.events_head.len() < EVENTS_KEPT {
            self.events_head.push(e);
            return;
        }
        if self.events_tail.len() == EVENTS_KEPT {
            self.events_tail.pop_front();
            self.events_dropped += 1;
        }
        self.events_tail.push_back(e);
    }

    fn anomaly(&mut self, a: SmtpAnomaly) {
        if self.anomalies.len() < MAX_ANOMALIES {
            self.anomalies.push(a);
        } else {
            self.anomalies_dropped = self.anomalies_dropped.saturating_add(1);
        }
    }

    fn unterminated_quit(&self) -> bool {
        self.c_mode == ClientMode::Command
            && strip_cr(&self.c_line.buf)
                .trim_ascii()
                .eq_ignore_ascii_case(b"QUIT")
    }

    fn unterminated_reply(&self) -> bool {
        self.s_mode == ServerMode::Reply
            && !self.s_line.buf.is_empty()
            && matches!(
                reply::parse_line(strip_cr(&self.s_line.buf)),
                ReplyLine::Final { .. }
            )
    }

    /// Held bytes that are nothing but command lines (the last one may lack its line end)
    /// mean the client gave up waiting for the reply, e.g. sent QUIT; a message body does not
    /// look like that.
    fn held_is_only_commands(&self) -> bool {
        let mut bytes = Vec::with_capacity(self.hold_bytes);
        for h in &self.hold {
            match h {
                Held::Data(_, b) => bytes.extend_from_slice(b),
                Held::Gap(..) => return false,
            }
        }
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        !bytes.is_empty()
            && bytes.split(|&b| b == b'\n').all(|l| {
                let l = strip_cr(l);
                !l.is_empty() && command::is_command(l)
            })
    }

    fn needs_finish(&self) -> bool {
        (matches!(self.c_mode, ClientMode::Hold { .. }) && !self.hold.is_empty())
            || self.unterminated_quit()
            || self.unterminated_reply()
    }

    /// The capture ended: interpret what is still pending.
    fn finish(&mut self) {
        // Each round replays fewer bytes than it took, so this ends; the bound is a guard.
        for _ in 0..64 {
            if !matches!(self.c_mode, ClientMode::Hold { .. }) || self.hold.is_empty() {
                break;
            }
            let at = match &self.hold[0] {
                Held::Data(at, _) | Held::Gap(at, _) => *at,
            };
            if self.held_is_only_commands() {
                self.resolve_hold(false);
            } else {
                self.resolve_hold_assumed(at);
            }
        }
        if self.unterminated_quit() {
            let at = self.client_last_at.unwrap_or_default();
            self.anomaly(SmtpAnomaly::UnterminatedLine {
                side: Side::Client,
                at,
            });
            let resync = self.c_line.resync;
            self.c_line.finish_line();
            self.client_line(at, b"QUIT", resync);
        }
        if self.unterminated_reply() {
            let at = self.server_last_at.unwrap_or_default();
            self.anomaly(SmtpAnomaly::UnterminatedLine {
                side: Side::Server,
                at,
            });
            let line = mem::take(&mut self.s_line.buf);
            let resync = self.s_line.resync;
            self.s_line.finish_line();
            self.server_line(at, strip_cr(&line), resync);
        }
    }

    fn build_summary(&self) -> SessionSummary {
        let cmd = |c: &Option<(u64, Command)>| c.as_ref().map(|(_, c)| c.clone());
        let both_sides_went_on = |d: &super::TlsDirection| {
            d.change_cipher_spec_records > 0 || d.application_data_records > 0
        };
        SessionSummary {
            banner: self.banner.clone(),
            greeting: self.greeting.clone(),
            starttls: cmd(&self.starttls),
            tls: self.tls_on.then(|| TlsSummary {
                handshake_completed: both_sides_went_on(&self.tls.client)
                    && both_sides_went_on(&self.tls.server),
                ..self.tls.clone()
            }),
            auth: cmd(&self.auth),
            transactions: self
                .txs
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut t = t.clone();
                    // A body still under way: its sizes so far.
                    if self.c_mode == ClientMode::Body
                        && self.tx_index(self.body_tx) == Some(i)
                        && let Some(d) = t.data.as_mut()
                    {
                        d.lines = self.body.sizes;
                    }
                    t
                })
                .collect(),
            quit: cmd(&self.quit),
            first_command: cmd(&self.first_command),
            last_command: cmd(&self.last_command),
            last_reply: self.last_reply.clone(),
            unprompted_replies: self.unprompted.clone(),
            unanswered: u32::try_from(self.waiting.len())
                .unwrap_or(u32::MAX)
                .saturating_add(self.waiting_dropped),
            commands: self.commands,
            replies: self.replies,
            command_lines: {
                // A partial line in command mode (not a SASL response) is a command under way.
                let open = if self.c_mode == ClientMode::Command && !self.auth_active {
                    self.c_line.octets
                } else {
                    0
                };
                CommandLines {
                    open_octets: open,
                    open_at: if open > 0 { self.client_last_at } else { None },
                    ..self.cmd_lines
                }
            },
            client_bytes: self.client_bytes,
            server_bytes: self.server_bytes,
            client_last_at: self.client_last_at,
            server_last_at: self.server_last_at,
            // Until a reply shows the server's side, the session is at the banner, whatever the
            // client sent ahead of it.
            phase: if self.banner_done || self.phase == Phase::Tls {
                self.phase
            } else {
                Phase::Banner
            },
            anomalies: self.anomalies.clone(),
            anomalies_dropped: self.anomalies_dropped,
            transactions_dropped: self.tx_dropped,
            unprompted_dropped: self.unprompted_dropped,
            events: self
                .events_head
                .iter()
                .chain(&self.events_tail)
                .cloned()
                .collect(),
            events_dropped: self.events_dropped,
        }
    }
}
