//! Session-level tests: whole conversations, shaped after the public captures in
//! /work/shared/captures/public, fed through [`Session`] as the TCP stage would feed them; and
//! property tests that the summary does not depend on how each side's bytes were cut, and that
//! arbitrary bytes never panic or grow the summary past its caps.

use proptest::prelude::*;

use super::session::{MAX_ANOMALIES, MAX_HOLD, MAX_RCPTS_PER_TX, MAX_UNPROMPTED};
use super::*;
use crate::types::{Side, Timestamp};

const C: Side = Side::Client;
const S: Side = Side::Server;

fn t(n: usize) -> Timestamp {
    Timestamp::from_secs(1_700_000_000 + n as i64)
}

/// Feeds each message whole, message `i` at time `t(i)`.
fn run(script: &[(Side, &[u8])]) -> SessionSummary {
    let mut s = Session::new();
    for (i, (side, bytes)) in script.iter().enumerate() {
        s.on_data(*side, t(i), bytes);
    }
    s.summary()
}

fn kinds(s: &SessionSummary) -> Vec<&'static str> {
    s.anomalies
        .iter()
        .map(|a| match a {
            SmtpAnomaly::Gap { .. } => "gap",
            SmtpAnomaly::LineTooLong { .. } => "line_too_long",
            SmtpAnomaly::CommandBeforeBanner { .. } => "command_before_banner",
            SmtpAnomaly::ReplyWithoutCode { .. } => "reply_without_code",
            SmtpAnomaly::UnpromptedReply { .. } => "unprompted_reply",
            SmtpAnomaly::UnknownCommand { .. } => "unknown_command",
            SmtpAnomaly::PlaintextAfterStarttls { .. } => "plaintext_after_starttls",
            SmtpAnomaly::TlsWithoutStarttls { .. } => "tls_without_starttls",
            SmtpAnomaly::ReplyAssumed { .. } => "reply_assumed",
            SmtpAnomaly::UnterminatedLine { .. } => "unterminated_line",
            SmtpAnomaly::MaskedReplyLine { .. } => "masked_reply_line",
            SmtpAnomaly::MaskedCommand { .. } => "masked_command",
        })
        .collect()
}

fn code(r: &Option<Reply>) -> Option<u16> {
    r.as_ref().and_then(|r| r.code)
}

const EHLO_REPLY: &[u8] =
    b"250-mail.example.com Hello\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-STARTTLS\r\n250 HELP\r\n";

#[test]
fn normal_session() {
    let s = run(&[
        (S, b"220 mail.example.com ESMTP\r\n"),
        (C, b"EHLO client.example.org\r\n"),
        (S, EHLO_REPLY),
        (C, b"MAIL FROM:<bob@example.org> SIZE=100\r\n"),
        (S, b"250 2.1.0 Ok\r\n"),
        (C, b"RCPT TO:<alice@example.com>\r\n"),
        (S, b"250 2.1.5 Ok\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (C, b"Subject: hi\r\n\r\nHello.\r\n.\r\n"),
        (S, b"250 2.0.0 Ok: queued as ABC\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Bye\r\n"),
    ]);
    assert_eq!(code(&s.banner), Some(220));
    assert_eq!(
        s.greeting,
        Some(("EHLO".into(), "client.example.org".into()))
    );
    assert_eq!(s.transactions.len(), 1);
    let tx = &s.transactions[0];
    assert!(tx.started() && tx.completed());
    assert_eq!(tx.mail_from, "bob@example.org");
    assert_eq!(tx.rcpt_to[0].address, "alice@example.com");
    assert_eq!(code(&tx.rcpt_to[0].reply), Some(250));
    let d = tx.data.as_ref().unwrap();
    assert_eq!(d.kind, DataKind::Data);
    assert_eq!(d.command_at, t(7));
    assert_eq!(code(&d.go_ahead), Some(354));
    assert_eq!(d.end_at, Some(t(9)));
    assert_eq!(d.bytes, b"Subject: hi\r\n\r\nHello.\r\n".len() as u64);
    assert_eq!(
        d.final_reply.as_ref().unwrap().text,
        "2.0.0 Ok: queued as ABC"
    );
    assert_eq!(tx.ended_by, None);
    assert_eq!(code(&s.quit.as_ref().unwrap().reply), Some(221));
    assert_eq!(s.first_command.as_ref().unwrap().verb, "EHLO");
    assert_eq!(s.last_command.as_ref().unwrap().verb, "QUIT");
    assert_eq!(code(&s.last_reply), Some(221));
    assert_eq!(s.phase, Phase::Quit);
    assert_eq!((s.commands, s.replies, s.unanswered), (5, 7, 0));
    assert_eq!(s.client_last_at, Some(t(11)));
    assert_eq!(s.server_last_at, Some(t(12)));
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert!(s.tls.is_none() && s.starttls.is_none() && s.auth.is_none());
}

#[test]
fn pipelined_mail_rcpt_data() {
    let s = run(&[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, EHLO_REPLY),
        (
            C,
            b"MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<nobody@y>\r\nDATA\r\n",
        ),
        (
            S,
            b"250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n",
        ),
        (C, b"body\r\n.\r\nQUIT\r\n"),
        (S, b"250 queued\r\n221 bye\r\n"),
    ]);
    let tx = &s.transactions[0];
    assert_eq!(code(&tx.mail_reply), Some(250));
    assert_eq!(code(&tx.rcpt_to[0].reply), Some(250));
    assert_eq!(code(&tx.rcpt_to[1].reply), Some(550));
    assert!(tx.completed());
    assert_eq!(tx.data.as_ref().unwrap().bytes, 6);
    assert_eq!(s.phase, Phase::Quit);
    assert_eq!(s.unanswered, 0);
}

/// ark-smtp-moloch-bof.pcap: the client pipelines everything, body included, before the
/// banner; the banner is still the first reply and the body is held until the 354.
#[test]
fn commands_and_body_before_banner() {
    let s = run(&[
        (
            C,
            b"HELO ADCDTEST\r\nMAIL FROM:<ibm@z>\r\nRCPT TO:<m@e>\r\nDATA\r\nFrom: m\r\n\r\nAAAA",
        ),
        (
            S,
            b"220 localhost ESMTP Sendmail\r\n250 Hello\r\n250 Sender ok\r\n250 Recipient ok\r\n354 Enter mail\r\n",
        ),
        (C, b"AAAA\r\n--x\r\n.\r\nQUIT\r\n"),
        (S, b"250 2.0.0 accepted\r\n221 2.0.0 closing\r\n"),
    ]);
    assert_eq!(s.banner.as_ref().unwrap().text, "localhost ESMTP Sendmail");
    assert!(kinds(&s).contains(&"command_before_banner"));
    let tx = &s.transactions[0];
    assert!(tx.completed());
    let d = tx.data.as_ref().unwrap();
    assert_eq!(d.bytes, b"From: m\r\n\r\nAAAAAAAA\r\n--x\r\n".len() as u64);
    assert_eq!(d.end_at, Some(t(2)));
    assert_eq!(code(&s.quit.as_ref().unwrap().reply), Some(221));
    assert_eq!(s.phase, Phase::Quit);
    assert_eq!(s.unanswered, 0);
    assert_eq!(kinds(&s), vec!["command_before_banner"]);
}

/// zeek-smtp-mail-transactions-invalid.pcap: DATA refused, the client sends its body anyway
/// (each line answered 500), a nested MAIL is answered 503.
#[test]
fn data_rejected_then_body_lines_are_commands() {
    let s = run(&[
        (S, b"220 tinkyx390 ESMTP Exim 4.94.2\r\n"),
        (C, b"EHLO Bob-PC\r\n"),
        (S, EHLO_REPLY),
        (C, b"MAIL FROM:<bob@example.org>\r\n"),
        (S, b"250 OK\r\n"),
        (C, b"RCPT TO:<alice@example.org>\r\n"),
        (S, b"250 Accepted\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 Enter message\r\n"),
        (C, b"Hello, Alice (1)\r\n"),
        (C, b".\r\n"),
        (S, b"250 OK id=1\r\n"),
        (C, b"RCPT TO:<alice@example.org>\r\n"),
        (S, b"503 sender not yet given\r\n"),
        (C, b"DATA\r\n"),
        (
            S,
            b"503-All RCPT commands were rejected with this error:\r\n503-503 sender not yet given\r\n503 valid RCPT command must precede DATA\r\n",
        ),
        (C, b"Hello, Alice (2)\r\n"),
        (S, b"500 unrecognized command\r\n"),
        (C, b".\r\n"),
        (S, b"500 unrecognized command\r\n"),
        (C, b"MAIL FROM:<bob@example.org>\r\n"),
        (S, b"250 OK\r\n"),
        (C, b"DATA\r\n"),
        (S, b"503 valid RCPT command must precede DATA\r\n"),
        (C, b"Hello, Alice (3)\r\n"),
        (S, b"500 unrecognized command\r\n"),
        (C, b".\r\n"),
        (S, b"500 unrecognized command\r\n"),
        (C, b"MAIL FROM:<bob@example.org>\r\n"),
        (S, b"503 sender already given\r\n"),
        (C, b"RCPT TO:<alice@example.org>\r\n"),
        (S, b"250 Accepted\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 Enter message\r\n"),
        (C, b"Hello, Alice... do you still like me?\r\n.\r\n"),
        (S, b"250 OK id=2\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 closing connection\r\n"),
    ]);
    // Every MAIL FROM is a transaction, accepted or not: the third ("503 sender already
    // given") is not started, yet the message sent after it was accepted.
    assert_eq!(s.transactions.len(), 3, "{:#?}", s.transactions);
    let started: Vec<bool> = s.transactions.iter().map(|t| t.started()).collect();
    let completed: Vec<bool> = s.transactions.iter().map(|t| t.completed()).collect();
    assert_eq!(started, [true, true, false]);
    assert_eq!(completed, [true, false, true]);
    let second = s.transactions[1].data.as_ref().unwrap();
    assert_eq!(code(&second.refused), Some(503));
    assert_eq!(second.go_ahead, None);
    let third = s.transactions[2].data.as_ref().unwrap();
    assert_eq!(code(&third.go_ahead), Some(354));
    assert_eq!(third.bytes, 39);
    assert_eq!(
        kinds(&s)
            .iter()
            .filter(|k| **k == "unknown_command")
            .count(),
        4
    );
    assert_eq!(s.unanswered, 0);
    assert!(s.unprompted_replies.is_empty());
    assert_eq!(s.phase, Phase::Quit);
}

/// sv-smtp-ehlo-reset-after-rejected-data.pcap: lower-case commands; after the refused DATA
/// the client's commands are commands, not body.
#[test]
fn ehlo_reset_after_rejected_data() {
    let s = run(&[
        (S, b"220 mail.example.com ESMTP Postfix\r\n"),
        (C, b"helo client.example.com\r\n"),
        (S, b"250 mail.example.com\r\n"),
        (C, b"data\r\n"),
        (S, b"503 5.5.1 Error: need RCPT command\r\n"),
        (C, b"ehlo client.example.com\r\n"),
        (S, EHLO_REPLY),
        (C, b"mail from:<bob@example.com>\r\n"),
        (S, b"250 2.1.0 Ok\r\n"),
        (C, b"rcpt to:<alice@example.com>\r\n"),
        (S, b"250 2.1.5 Ok\r\n"),
        (C, b"data\r\n"),
        (S, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (C, b"Subject: x\r\n\r\nComplete.\r\n.\r\n"),
        (S, b"250 2.0.0 Ok: queued\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Bye\r\n"),
    ]);
    assert_eq!(s.transactions.len(), 1);
    assert!(s.transactions[0].completed());
    assert_eq!(s.greeting.as_ref().unwrap().0, "EHLO");
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert_eq!(s.commands, 7);
}

#[test]
fn bdat_chunks_with_last() {
    let s = run(&[
        (S, b"220 mx\r\n"),
        (C, b"EHLO c\r\n"),
        (S, EHLO_REPLY),
        (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nBDAT 5\r\nhel"),
        (C, b"lo"),
        (S, b"250 ok\r\n250 ok\r\n250 5 octets\r\n"),
        (C, b"BDAT 8 LAST\r\n world\r\n"),
        (S, b"250 2.0.0 queued\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ]);
    let tx = &s.transactions[0];
    let d = tx.data.as_ref().unwrap();
    assert_eq!(d.kind, DataKind::Bdat);
    assert_eq!(d.bytes, 13);
    assert_eq!(d.command_at, t(3));
    assert_eq!(d.end_at, Some(t(6)));
    assert_eq!(d.final_reply.as_ref().unwrap().text, "2.0.0 queued");
    assert!(tx.completed());
    assert_eq!(s.last_command.as_ref().unwrap().verb, "QUIT");
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert_eq!(s.phase, Phase::Quit);
}

/// zeek-smtp-bdat-gap.pcap: BDAT 200, 100 bytes, a 1000-byte gap (100 of them the rest of the
/// chunk), then DATA right where the capture resumes.
#[test]
fn bdat_gap_then_data() {
    let mut s = Session::new();
    s.on_data(S, t(0), b"220 mail.example.com ESMTP\r\n");
    s.on_data(C, t(1), b"EHLO sender.example.com\r\n");
    s.on_data(
        S,
        t(2),
        b"250-mail.example.com Hello\r\n250-CHUNKING\r\n250 OK\r\n",
    );
    s.on_data(C, t(3), b"MAIL FROM:<sender@example.com>\r\n");
    s.on_data(S, t(4), b"250 OK\r\n");
    s.on_data(C, t(5), b"RCPT TO:<recipient@example.com>\r\n");
    s.on_data(S, t(6), b"250 OK\r\n");
    s.on_data(C, t(7), b"BDAT 200\r\n");
    s.on_data(S, t(8), b"250 OK\r\n");
    s.on_data(C, t(9), &[b'A'; 100]);
    s.on_data(S, t(10), b"250 OK\r\n");
    s.on_gap(C, t(11), 1000);
    s.on_data(C, t(11), b"DATA\r\n");
    s.on_data(S, t(12), b"354 End data with <CR><LF>.<CR><LF>\r\n");
    s.on_data(C, t(13), b"Subject: Test\r\n\r\nHello!\r\n.\r\n");
    s.on_data(S, t(14), b"250 OK: message queued\r\n");
    let s = s.summary();
    let tx = &s.transactions[0];
    assert!(tx.completed(), "{tx:#?}");
    let d = tx.data.as_ref().unwrap();
    assert_eq!(d.kind, DataKind::Data);
    assert_eq!(d.bytes, 25);
    // The synthetic server answers the chunk twice; the second answer has nothing to answer.
    assert_eq!(kinds(&s), vec!["unprompted_reply", "gap"]);
    assert_eq!(s.phase, Phase::AfterData);
}

/// zeek-smtp-bdat-pipeline-8bitmime.pcap: MAIL, RCPT and `BDAT n LAST` with its chunk in one
/// segment, twice.
#[test]
fn bdat_pipelined_two_transactions() {
    let chunk = b"Subject: x\r\n\r\nbody\r\n";
    let mut c1 =
        b"MAIL From:<l@v> BODY=8BITMIME SIZE=20\r\nRCPT To:<t@f>\r\nBDAT 20 LAST\r\n".to_vec();
    c1.extend_from_slice(chunk);
    let mut c2 = b"MAIL From:<l@v>\r\nRCPT To:<u@f>\r\nBDAT 20 LAST\r\n".to_vec();
    c2.extend_from_slice(chunk);
    c2.extend_from_slice(b"QUIT\r\n");
    let s = run(&[
        (S, b"220-scoot ESMTP Exim\r\n220 Spam disliked here\r\n"),
        (C, b"EHLO vger.kernel.org\r\n"),
        (S, EHLO_REPLY),
        (C, &c1),
        (
            S,
            b"250 OK\r\n250 Accepted\r\n250- 20 byte chunk, total 20\r\n250 OK id=1\r\n",
        ),
        (C, &c2),
        (
            S,
            b"250 OK\r\n250 Accepted\r\n250 OK id=2\r\n221 closing\r\n",
        ),
    ]);
    assert_eq!(s.banner.as_ref().unwrap().text, "scoot ESMTP Exim");
    assert_eq!(s.transactions.len(), 2);
    for tx in &s.transactions {
        assert!(tx.completed());
        assert_eq!(tx.data.as_ref().unwrap().bytes, 20);
    }
    assert_eq!(s.unanswered, 0);
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
}

#[test]
fn end_mark_and_dot_stuffing_split_at_every_position() {
    let body: &[u8] = b"Subject: dots\r\n\r\n..one\r\n...\r\n.x\r\nlast.\r\n.\r\nQUIT\r\n";
    let head: [(Side, &[u8]); 8] = [
        (S, b"220 mx\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250 mx\r\n"),
        (C, b"MAIL FROM:<>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"RCPT TO:<x@y>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"DATA\r\n"),
    ];
    let whole = {
        let mut script = head.to_vec();
        script.push((S, b"354 go\r\n"));
        script.push((C, body));
        script.push((S, b"250 ok\r\n221 bye\r\n"));
        run(&script)
    };
    let d = whole.transactions[0].data.as_ref().unwrap();
    assert_eq!(d.bytes, body.len() as u64 - 3 - 6);
    assert!(whole.transactions[0].completed());
    assert_eq!(whole.transactions[0].mail_from, "", "null sender");
    for cut in 0..=body.len() {
        let mut s = Session::new();
        for (i, (side, b)) in head.iter().enumerate() {
            s.on_data(*side, t(i), b);
        }
        s.on_data(S, t(8), b"354 go\r\n");
        s.on_data(C, t(9), &body[..cut]);
        s.on_data(C, t(9), &body[cut..]);
        s.on_data(S, t(10), b"250 ok\r\n221 bye\r\n");
        assert_eq!(s.summary(), whole, "cut at {cut}");
    }
}

#[test]
fn multi_line_ehlo_reply() {
    let s = run(&[
        (
            S,
            b"220-xc90.websitewelcome.com ESMTP Exim 4.69\r\n220-We do not authorize\r\n220 and/or bulk e-mail.\r\n",
        ),
        (C, b"EHLO GP\r\n"),
        (S, b"250-xc90 Hello GP\r\n250-SIZE 52428800\r\n250-PIPE"),
        (S, b"LINING\r\n250 HELP\r\n"),
    ]);
    assert_eq!(
        s.banner.as_ref().unwrap().text,
        "xc90.websitewelcome.com ESMTP Exim 4.69"
    );
    let ehlo = s.last_command.as_ref().unwrap();
    assert_eq!(ehlo.verb, "EHLO");
    assert_eq!(ehlo.arg.as_deref(), Some("GP"));
    let r = ehlo.reply.as_ref().unwrap();
    assert_eq!(
        (r.code, r.text.as_str(), r.at),
        (Some(250), "xc90 Hello GP", t(3))
    );
    assert_eq!(s.replies, 2);
    assert_eq!(s.phase, Phase::Greeting);
}

/// sv-smtp-errors.pcap connection 1: the answer to the end of data has no code, comes with the
/// server's FIN, and the client's QUIT has no line end.
#[test]
fn reply_without_code_and_unterminated_quit() {
    let s = run(&[
        (S, b"220 mta4265.mail.ne1.yahoo.com ESMTP ready\r\n"),
        (C, b"HELO [0.0.0.0]\r\n"),
        (S, b"250 mta4265.mail.ne1.yahoo.com\r\n"),
        (C, b"MAIL FROM: <Ina32@4447.com>\r\n"),
        (S, b"250 sender <Ina32@4447.com> ok\r\n"),
        (C, b"RCPT TO: <jcastro2111@yahoo.com>\r\n"),
        (S, b"250 recipient <jcastro2111@yahoo.com> ok\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 go ahead\r\n"),
        (C, b"Subject: x\r\n\r\n--b---\r\n\r\n.\r\n"),
        (
            S,
            b"4.7.0 [IPTS04] Messages from 173.166.146.112 temporarily deferred\r\n",
        ),
        (C, b"QUIT"),
    ]);
    let tx = &s.transactions[0];
    let d = tx.data.as_ref().unwrap();
    let fr = d.final_reply.as_ref().unwrap();
    assert_eq!(fr.code, None);
    assert!(fr.text.starts_with("4.7.0 [IPTS04]"));
    assert!(!tx.completed());
    assert_eq!(tx.ended_by, None, "the client had finished its message");
    assert!(s.quit.is_some());
    assert_eq!(s.phase, Phase::Quit);
    assert_eq!(kinds(&s), vec!["reply_without_code", "unterminated_line"]);
    assert_eq!(s.unanswered, 1, "the QUIT got no reply");
}

#[test]
fn unprompted_421_after_idle_timeout() {
    let s = run(&[
        (S, b"220 esa.example.com ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250 esa.example.com\r\n"),
        (C, b"MAIL FROM:<a@b>\r\n"),
        (S, b"250 sender ok\r\n"),
        (
            S,
            b"421 Timed out waiting for successful message injection, disconnecting.\r\n",
        ),
    ]);
    assert_eq!(s.unprompted_replies.len(), 1);
    assert_eq!(s.unprompted_replies[0].code, Some(421));
    assert_eq!(s.unanswered, 0);
    assert_eq!(code(&s.last_reply), Some(421));
    assert_eq!(s.phase, Phase::Envelope);
    assert_eq!(kinds(&s), vec!["unprompted_reply"]);
    assert!(s.transactions[0].started() && !s.transactions[0].completed());
}

const SECRETS: [&str; 6] = [
    "Z3VycGFydGFwQHBhdHJpb3RzLmlu",
    "cHVuamFiQDEyMw==",
    "Z2FsdW50",
    "VjF2MXRyMG4=",
    "AGJvYgBodW50ZXIy",
    "hunter2",
];

fn assert_no_secret(s: &SessionSummary) {
    let debug = format!("{s:?}");
    let json = serde_json::to_string(s).unwrap();
    for secret in SECRETS {
        assert!(!debug.contains(secret), "{secret} in {debug}");
        assert!(!json.contains(secret), "{secret} in {json}");
    }
}

#[test]
fn auth_login_is_never_stored() {
    // zeek-smtp.pcap stream 0.
    let s = run(&[
        (S, b"220 xc90 ESMTP\r\n"),
        (C, b"EHLO GP\r\n"),
        (S, b"250-xc90 Hello\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n"),
        (C, b"AUTH LOGIN\r\n"),
        (S, b"334 VXNlcm5hbWU6\r\n"),
        (C, b"Z3VycGFydGFwQHBhdHJpb3RzLmlu\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"),
        (C, b"cHVuamFiQDEyMw==\r\n"),
        (S, b"235 Authentication succeeded\r\n"),
        (C, b"MAIL FROM: <gurpartap@patriots.in>\r\n"),
        (S, b"250 OK\r\n"),
    ]);
    let auth = s.auth.as_ref().unwrap();
    assert_eq!(auth.verb, "AUTH");
    assert_eq!(auth.arg.as_deref(), Some("LOGIN"));
    assert_eq!(code(&auth.reply), Some(235));
    assert_eq!(s.commands, 3, "SASL responses are not commands");
    assert_eq!(s.unanswered, 0);
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert_no_secret(&s);

    // sv-smtp-bug-5989: the server's replies are not in order with the client's lines; the
    // responses must not become unknown commands. Then a refusal echoing the response.
    let s = run(&[
        (S, b"220 smtp001 ESMTP\r\n"),
        (C, b"EHLO Percival\r\n"),
        (C, b"AUTH LOGIN\r\n"),
        (C, b"Z2FsdW50\r\n"),
        (C, b"VjF2MXRyMG4=\r\n"),
        (C, b"MAIL FROM: <x@y.co.uk>\r\n"),
        (S, b"250 ok\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"),
        (S, b"500 unrecognized command VjF2MXRyMG4=\r\n250 ok\r\n"),
        (C, b"AUTH PLAIN AGJvYgBodW50ZXIy\r\n"),
        (S, b"535 5.7.8 Authentication failed\r\n"),
        (C, b"AUTH PLAIN\r\n"),
        (S, b"334 \r\n"),
        (C, b"AGJvYgBodW50ZXIy\r\n"),
        (S, b"235 ok\r\n"),
    ]);
    assert_eq!(kinds(&s), Vec::<&str>::new());
    assert_eq!(s.auth.as_ref().unwrap().arg.as_deref(), Some("PLAIN"));
    assert_eq!(code(&s.auth.as_ref().unwrap().reply), Some(235));
    assert_no_secret(&s);

    // Replies matched to the wrong entries (the 334 lost in a server gap): the credential
    // lines still never become unknown commands.
    let mut s = Session::new();
    s.on_data(S, t(0), b"220 mx\r\n");
    s.on_data(C, t(1), b"AUTH LOGIN\r\n");
    s.on_gap(S, t(2), 18);
    s.on_data(S, t(2), b"250 what\r\n");
    s.on_data(C, t(3), b"Z2FsdW50\r\n");
    s.on_data(S, t(4), b"500 unrecognized: Z2FsdW50\r\n");
    s.on_data(C, t(5), b"VjF2MXRyMG4=\r\nMAIL FROM:<a@b>\r\n");
    s.on_data(S, t(6), b"535 no\r\n250 ok\r\n");
    let s = s.summary();
    assert_no_secret(&s);
    assert_eq!(s.transactions.len(), 1);
    assert_eq!(code(&s.auth.as_ref().unwrap().reply), Some(250));
}

fn tls_record(kind: u8, len: usize) -> Vec<u8> {
    let mut r = vec![kind, 3, 3, (len >> 8) as u8, len as u8];
    r.extend(std::iter::repeat_n(0x5A, len));
    r
}

#[test]
fn starttls_then_tls_records() {
    let mut client_hello = tls_record(22, 200);
    client_hello.truncate(100);
    let mut server_flight = tls_record(22, 90);
    server_flight.extend(tls_record(20, 1));
    server_flight.extend(tls_record(22, 40));
    let mut client_fin = tls_record(20, 1);
    client_fin.extend(tls_record(22, 40));
    client_fin.extend(tls_record(23, 500));
    let s = run(&[
        (S, b"220 mx\r\n"),
        (C, b"EHLO c\r\n"),
        (S, EHLO_REPLY),
        (C, b"STARTTLS\r\n"),
        (S, b"220 2.0.0 Ready to start TLS\r\n"),
        (C, &client_hello),
        (C, &tls_record(22, 200)[100..]),
        (S, &server_flight),
        (C, &client_fin),
        (S, &tls_record(23, 300)),
        (C, &tls_record(21, 26)),
    ]);
    let st = s.starttls.as_ref().unwrap();
    assert_eq!(code(&st.reply), Some(220));
    let tls = s.tls.as_ref().unwrap();
    assert!(tls.handshake_completed);
    assert_eq!(tls.client.handshake_records, 2);
    assert_eq!(tls.client.application_data_bytes, 500);
    assert_eq!(tls.client.first_alert_at, Some(t(10)));
    assert_eq!(tls.server.handshake_records, 2);
    assert_eq!(tls.server.application_data_records, 1);
    assert_eq!((tls.client.garbage_bytes, tls.server.garbage_bytes), (0, 0));
    assert_eq!(s.phase, Phase::Tls);
    assert_eq!(s.unanswered, 0);
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
}

#[test]
fn starttls_refused_stays_smtp() {
    let s = run(&[
        (S, b"220 mx\r\n"),
        (C, b"EHLO c\r\n"),
        (S, EHLO_REPLY),
        (C, b"STARTTLS\r\nQUIT\r\n"),
        (S, b"454 4.7.0 TLS not available\r\n221 bye\r\n"),
    ]);
    assert!(s.tls.is_none());
    assert_eq!(code(&s.starttls.as_ref().unwrap().reply), Some(454));
    assert_eq!(code(&s.quit.as_ref().unwrap().reply), Some(221));
    assert_eq!(s.phase, Phase::Quit);
}

/// ark-smtp-decrypted.pcap: STARTTLS accepted, then the capture shows plaintext SMTP.
#[test]
fn starttls_then_plaintext() {
    let s = run(&[
        (S, b"220 PCIAT-MX Microsoft ESMTP MAIL Service ready\r\n"),
        (C, b"EHLO TRANSIT-MTA\r\n"),
        (S, EHLO_REPLY),
        (C, b"STARTTLS\r\n"),
        (S, b"220 2.0.0 SMTP server ready\r\n"),
        (C, b"EHLO TRANSIT-MTA\r\n"),
        (S, b"250-PCIAT-MX Hello\r\n250 CHUNKING\r\n"),
        (
            C,
            b"MAIL FROM:<papanoel@intradef.gouv.fr> SIZE=16530\r\nRCPT TO:<a@shewa> ORCPT=rfc822;a@shewa\r\nDATA\r\n",
        ),
        (S, b"250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input\r\n"),
        (C, b"Subject: Ho ho ho\r\n\r\nJoyeux Noel\r\n.\r\n"),
        (S, b"250 2.6.0 Queued mail for delivery\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Service closing transmission channel\r\n"),
    ]);
    assert!(s.tls.is_none());
    assert_eq!(code(&s.starttls.as_ref().unwrap().reply), Some(220));
    assert_eq!(kinds(&s), vec!["plaintext_after_starttls"]);
    assert_eq!(s.transactions.len(), 1);
    assert!(s.transactions[0].completed());
    assert_eq!(s.transactions[0].mail_from, "papanoel@intradef.gouv.fr");
    assert_eq!(code(&s.quit.as_ref().unwrap().reply), Some(221));
    assert_eq!(s.phase, Phase::Quit);
}

#[test]
fn gap_right_after_starttls_lets_the_next_byte_decide() {
    let start = |s: &mut Session| {
        s.on_data(S, t(0), b"220 mx\r\n");
        s.on_data(C, t(1), b"EHLO c\r\nSTARTTLS\r\n");
        s.on_data(S, t(2), b"250 mx\r\n220 go ahead\r\n");
        s.on_gap(C, t(3), 50);
    };
    let mut s = Session::new();
    start(&mut s);
    s.on_data(C, t(3), b"HLO c\r\nMAIL FROM:<a@b>\r\n");
    s.on_data(S, t(4), b"250 mx\r\n250 ok\r\n");
    let sum = s.summary();
    assert!(sum.tls.is_none());
    assert_eq!(sum.transactions.len(), 1);
    assert_eq!(
        kinds(&sum),
        vec!["gap", "plaintext_after_starttls", "unprompted_reply"]
    );

    let mut s = Session::new();
    start(&mut s);
    s.on_data(C, t(3), &[0x9c, 0x11, 0x03, 0x03, 0x00]);
    let sum = s.summary();
    let tls = sum.tls.as_ref().unwrap();
    assert_eq!(tls.client.garbage_bytes, 5);
    assert_eq!(sum.phase, Phase::Tls);
}

#[test]
fn gap_in_body_counts_and_end_mark_still_found() {
    let mut s = Session::new();
    s.on_data(S, t(0), b"220 mx\r\n");
    s.on_data(C, t(1), b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    s.on_data(S, t(2), b"250 ok\r\n250 ok\r\n354 go\r\n");
    s.on_data(C, t(3), b"line one\r\nline tw");
    s.on_gap(C, t(4), 500);
    s.on_data(C, t(4), b"o and more\r\n.\r\n");
    s.on_data(S, t(5), b"250 queued\r\n");
    let sum = s.summary();
    let d = sum.transactions[0].data.as_ref().unwrap();
    assert_eq!(d.bytes, 17 + 500 + 12);
    assert_eq!(d.end_at, Some(t(4)));
    assert!(sum.transactions[0].completed());
    assert_eq!(kinds(&sum), vec!["gap"]);

    // The gap swallows the end mark: the server's 250 tells where it was.
    let mut s = Session::new();
    s.on_data(S, t(0), b"220 mx\r\n");
    s.on_data(C, t(1), b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    s.on_data(S, t(2), b"250 ok\r\n250 ok\r\n354 go\r\n");
    s.on_data(C, t(3), b"line one\r\n");
    s.on_gap(C, t(4), 300);
    s.on_data(S, t(5), b"250 queued\r\n");
    s.on_data(C, t(6), b"QUIT\r\n");
    s.on_data(S, t(7), b"221 bye\r\n");
    let sum = s.summary();
    let tx = &sum.transactions[0];
    assert!(tx.completed());
    assert_eq!(tx.data.as_ref().unwrap().end_at, None);
    assert_eq!(code(&sum.quit.as_ref().unwrap().reply), Some(221));
    assert!(sum.unprompted_replies.is_empty());
}

#[test]
fn gap_in_command_line_resyncs_at_next_line() {
    let mut s = Session::new();
    s.on_data(S, t(0), b"220 mx\r\n");
    s.on_data(C, t(1), b"EHLO c\r\nMAIL FR");
    s.on_gap(C, t(2), 10);
    s.on_data(C, t(2), b"ample.org>\r\nRCPT TO:<x@y>\r\n");
    s.on_data(S, t(3), b"250 mx\r\n250 ok\r\n250 ok\r\n");
    s.on_gap(S, t(4), 7);
    s.on_data(S, t(4), b"tail of a lost line\r\n221 bye\r\n");
    let sum = s.summary();
    assert_eq!(sum.commands, 2, "the cut MAIL line is dropped");
    assert!(sum.transactions.is_empty());
    // The lost MAIL's reply shifts the matching by one: known and shown as an unprompted reply.
    // After the server's gap, the cut line is dropped and the 221 is read again.
    assert_eq!(
        kinds(&sum),
        vec!["gap", "unprompted_reply", "gap", "unprompted_reply"]
    );
    assert_eq!(sum.unprompted_replies[1].code, Some(221));
}

/// sv-smtp-errors.pcap connection 3: a TLS ClientHello sent to a plaintext listener.
#[test]
fn client_hello_without_starttls() {
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    hello.extend((0u8..=255).cycle().take(500));
    let s = run(&[
        (S, b"220 v02.kerne.org ESMTP Postfix\r\n"),
        (C, &hello),
        (
            S,
            b"402 4.5.2 Error: command not recognized\r\n400 4.5.2 Error: bad syntax\r\n",
        ),
    ]);
    assert!(s.tls.is_none());
    let k = kinds(&s);
    assert_eq!(k[0], "tls_without_starttls");
    assert!(k[1..].iter().all(|k| *k == "unknown_command"));
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.len() < 4000, "binary junk stored: {json}");
    assert!(s.anomalies.iter().all(|a| match a {
        SmtpAnomaly::UnknownCommand { verb, .. } => verb == "<binary>" || verb.len() <= 21,
        _ => true,
    }));
}

#[test]
fn implicit_tls() {
    let s = run(&[
        (C, &tls_record(22, 300)),
        (S, &[tls_record(22, 100), tls_record(20, 1)].concat()),
        (C, &[tls_record(20, 1), tls_record(23, 64)].concat()),
    ]);
    let tls = s.tls.as_ref().unwrap();
    assert!(tls.handshake_completed);
    assert_eq!(s.phase, Phase::Tls);
    assert!(s.banner.is_none() && s.starttls.is_none());
}

/// zeek-smtp-one-side-only.pcap: only the client's direction was captured.
#[test]
fn client_side_only() {
    let mut body = b"From: robin@icir.org\r\nSubject: Hello1!\r\n\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'X', 300));
    body.extend_from_slice(b"\r\n.\r\n");
    let mut script: Vec<(Side, Vec<u8>)> = vec![(C, b"ehlo enzo.icir.org\r\n".to_vec())];
    for rcpt in ["robin@icir.org", "rsommer@lbl.gov"] {
        script.push((C, b"mail FROM:<robin@icir.org> size=9030\r\n".to_vec()));
        script.push((C, format!("rcpt TO:<{rcpt}>\r\n").into_bytes()));
        script.push((C, b"data\r\n".to_vec()));
        script.push((C, body.clone()));
    }
    script.push((C, b"quit\r\n".to_vec()));
    let mut s = Session::new();
    for (i, (side, b)) in script.iter().enumerate() {
        s.on_data(*side, t(i), b);
    }
    let sum = s.summary();
    assert_eq!(sum.transactions.len(), 2);
    for tx in &sum.transactions {
        assert!(tx.started() && !tx.completed());
        let d = tx.data.as_ref().unwrap();
        assert_eq!(d.bytes, body.len() as u64 - 3);
        assert!(d.end_at.is_some());
        assert_eq!(tx.ended_by, None);
    }
    assert_eq!(sum.transactions[1].rcpt_to[0].address, "rsommer@lbl.gov");
    assert!(sum.quit.is_some());
    assert_eq!(sum.server_bytes, 0);
    assert_eq!(sum.phase, Phase::Banner);
    assert_eq!(
        kinds(&sum),
        vec!["command_before_banner", "reply_assumed", "reply_assumed"]
    );
    // Summarising twice gives the same answer (the session itself is not changed).
    assert_eq!(s.summary(), sum);
}

#[test]
fn quit_while_waiting_for_354_is_a_command() {
    let s = run(&[
        (S, b"220 mx\r\n"),
        (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (S, b"250 ok\r\n250 ok\r\n"),
        (C, b"QUIT\r\n"),
    ]);
    let tx = &s.transactions[0];
    assert_eq!(tx.ended_by.as_deref(), Some("QUIT"));
    assert_eq!(tx.data.as_ref().unwrap().bytes, 0);
    assert!(s.quit.is_some());
    assert_eq!(s.phase, Phase::Quit);
    assert_eq!(s.unanswered, 2);
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
}

#[test]
fn body_held_past_the_bound_is_taken_as_body() {
    let mut s = Session::new();
    s.on_data(S, t(0), b"220 mx\r\n");
    s.on_data(C, t(1), b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    let big = vec![b'B'; MAX_HOLD + 1000];
    s.on_data(C, t(2), &big);
    s.on_data(C, t(3), b"\r\n.\r\n");
    s.on_data(S, t(4), b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
    let sum = s.summary();
    let tx = &sum.transactions[0];
    assert!(tx.completed(), "{tx:#?}");
    assert_eq!(tx.data.as_ref().unwrap().bytes, big.len() as u64 + 2);
    assert_eq!(code(&tx.data.as_ref().unwrap().go_ahead), Some(354));
    assert_eq!(kinds(&sum), vec!["reply_assumed"]);
}

#[test]
fn quit_or_rset_during_transaction_sets_ended_by() {
    // sv-firewall-131: QUIT right after MAIL FROM.
    let s = run(&[
        (S, b"220 mx\r\n"),
        (C, b"HELO c\r\n"),
        (S, b"250 mx\r\n"),
        (C, b"MAIL FROM:<a@b>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ]);
    assert_eq!(s.transactions[0].ended_by.as_deref(), Some("QUIT"));
    // EHLO in the middle of a transaction resets it like RSET.
    let s = run(&[
        (S, b"220 mx\r\n"),
        (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"),
        (S, b"250 ok\r\n250 ok\r\n"),
        (C, b"EHLO again\r\n"),
        (S, b"250 mx\r\n"),
    ]);
    assert_eq!(s.transactions[0].ended_by.as_deref(), Some("RSET"));
    assert_eq!(s.phase, Phase::Greeting);
    // RSET after a refused MAIL: nothing had started.
    let s = run(&[
        (S, b"220 mx\r\n"),
        (C, b"MAIL FROM:<a@b>\r\n"),
        (S, b"553 no\r\n"),
        (C, b"RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (S, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"partial body\r\n"),
        (C, b"RSET\r\n"),
    ]);
    assert_eq!(s.transactions.len(), 2);
    assert!(!s.transactions[0].started());
    assert_eq!(s.transactions[0].ended_by, None);
    // The RSET line is inside the body: the client never finished.
    assert_eq!(s.transactions[1].ended_by, None);
    assert_eq!(s.phase, Phase::Data);
    // ark-smtp-data-521: final reply 521, then RSET: the server rejected it, nobody aborted.
    let s = run(&[
        (S, b"220 mx\r\n"),
        (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"x\r\n.\r\n"),
        (S, b"521 5.7.1 rejected\r\n"),
        (C, b"RSET\r\n"),
        (S, b"250 ok\r\n"),
    ]);
    let tx = &s.transactions[0];
    assert!(tx.started() && !tx.completed());
    assert_eq!(tx.ended_by, None);
    assert_eq!(s.phase, Phase::AfterData);
}

#[test]
fn caps_hold() {
    let mut s = Session::new();
    s.on_data(S, t(0), b"220 mx\r\n");
    s.on_data(C, t(1), b"MAIL FROM:<a@b>\r\n");
    for i in 0..MAX_RCPTS_PER_TX + 5 {
        s.on_data(C, t(2), format!("RCPT TO:<r{i}@x>\r\n").as_bytes());
    }
    for _ in 0..100 {
        s.on_data(C, t(3), b"BOGUS\r\n");
        s.on_data(S, t(3), b"502 no\r\n");
    }
    for _ in 0..MAX_UNPROMPTED + 1 {
        s.on_data(S, t(4), b"421 go away\r\n");
    }
    s.on_data(C, t(5), &vec![b'L'; 100_000]);
    let sum = s.summary();
    assert_eq!(sum.transactions[0].rcpt_to.len(), MAX_RCPTS_PER_TX);
    assert_eq!(sum.transactions[0].rcpt_dropped, 5);
    assert_eq!(sum.anomalies.len(), MAX_ANOMALIES);
    assert!(sum.anomalies_dropped > 0);
    assert!(sum.unprompted_replies.len() <= MAX_UNPROMPTED);
    assert!(serde_json::to_string(&sum).unwrap().len() < 200_000);
}

#[test]
fn transaction_cap_keeps_the_newest() {
    let mut s = Session::new();
    s.on_data(S, t(0), b"220 mx\r\n");
    let n = super::session::MAX_TRANSACTIONS + 5;
    for i in 0..n {
        s.on_data(
            C,
            t(1),
            format!("MAIL FROM:<s{i}@x>\r\nRSET\r\n").as_bytes(),
        );
    }
    let sum = s.summary();
    assert_eq!(sum.transactions.len(), super::session::MAX_TRANSACTIONS);
    assert_eq!(sum.transactions_dropped, 5);
    assert_eq!(
        sum.transactions.last().unwrap().mail_from,
        format!("s{}@x", n - 1)
    );
    assert_eq!(
        sum.unanswered as usize,
        2 * n,
        "waiting entries are capped, not forgotten"
    );
}

// ------------------------------------------------------------------ property tests

#[derive(Debug, Clone)]
enum Flow {
    /// MAIL, RCPT, DATA one at a time.
    Stepwise,
    /// MAIL, RCPT, DATA in one segment.
    Pipelined,
    /// Everything, body included, before any reply (the body is held until the 354).
    BodyAhead,
    /// BDAT chunks of these sizes (the last one flagged LAST).
    Bdat(Vec<usize>),
    /// DATA refused with 554; the client sends one body line anyway (500) and RSETs.
    Refused,
    /// RCPT accepted, then RSET.
    Abandon,
    /// Stepwise, with bytes lost in the middle of the body (`n` bytes after line `at`).
    BodyGap { at: usize, n: u64 },
}

#[derive(Debug, Clone)]
struct TxSpec {
    rcpts: usize,
    lines: Vec<String>,
    flow: Flow,
}

#[derive(Debug, Clone, Copy)]
enum Tls {
    None,
    /// STARTTLS, 220, then TLS records to the end.
    Records,
    /// STARTTLS, 220, then plaintext SMTP (a decrypted capture).
    Plaintext,
}

#[derive(Debug, Clone)]
struct SessionSpec {
    multiline_banner: bool,
    tls: Tls,
    auth: bool,
    noise: bool,
    txs: Vec<TxSpec>,
    quit: bool,
}

fn flow() -> impl Strategy<Value = Flow> {
    prop_oneof![
        Just(Flow::Stepwise),
        Just(Flow::Pipelined),
        Just(Flow::BodyAhead),
        prop::collection::vec(0usize..40, 1..4).prop_map(Flow::Bdat),
        Just(Flow::Refused),
        Just(Flow::Abandon),
        (0usize..8, 1u64..5000).prop_map(|(at, n)| Flow::BodyGap { at, n }),
    ]
}

fn spec() -> impl Strategy<Value = SessionSpec> {
    let tx = (
        1usize..4,
        prop::collection::vec("[ -~]{0,30}|\\.[ -~]{0,4}|\\.", 0..8),
        flow(),
    )
        .prop_map(|(rcpts, lines, flow)| TxSpec { rcpts, lines, flow });
    let tls = prop_oneof![
        3 => Just(Tls::None),
        1 => Just(Tls::Records),
        1 => Just(Tls::Plaintext),
    ];
    (
        any::<bool>(),
        tls,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(tx, 0..4),
        any::<bool>(),
    )
        .prop_map(
            |(multiline_banner, tls, auth, noise, txs, quit)| SessionSpec {
                multiline_banner,
                tls,
                auth,
                noise,
                txs,
                quit,
            },
        )
}

/// One segment of a scripted conversation: bytes, or bytes lost.
#[derive(Debug, Clone)]
enum Seg {
    Data(Side, Vec<u8>),
    Gap(Side, u64),
}

struct Script(Vec<Seg>);

impl Script {
    fn push(&mut self, side: Side, b: &[u8]) {
        self.0.push(Seg::Data(side, b.to_vec()));
    }
}

/// The conversation in a realistic arrival order, one entry per segment, and how many
/// transactions should be started and completed.
fn transcript(spec: &SessionSpec) -> (Vec<Seg>, usize, usize) {
    let mut m = Script(Vec::new());
    if spec.multiline_banner {
        m.push(S, b"220-mx.example ESMTP\r\n220 no UCE\r\n");
    } else {
        m.push(S, b"220 mx.example ESMTP\r\n");
    }
    m.push(C, b"EHLO client.example\r\n");
    m.push(S, EHLO_REPLY);
    match spec.tls {
        Tls::None => {}
        Tls::Records => {
            m.push(C, b"STARTTLS\r\n");
            m.push(S, b"220 2.0.0 Ready to start TLS\r\n");
            m.push(C, &tls_record(22, 250));
            m.push(
                S,
                &[tls_record(22, 2000), tls_record(20, 1), tls_record(22, 40)].concat(),
            );
            m.push(
                C,
                &[tls_record(20, 1), tls_record(22, 40), tls_record(23, 900)].concat(),
            );
            m.push(S, &tls_record(23, 100));
            m.push(C, &tls_record(21, 26));
            return (m.0, 0, 0);
        }
        Tls::Plaintext => {
            m.push(C, b"STARTTLS\r\n");
            m.push(S, b"220 2.0.0 Ready to start TLS\r\n");
            m.push(C, b"EHLO client.example\r\n");
            m.push(S, EHLO_REPLY);
        }
    }
    if spec.auth {
        m.push(C, b"AUTH LOGIN\r\n");
        m.push(S, b"334 VXNlcm5hbWU6\r\n");
        m.push(C, b"Z3VycGFydGFwQHBhdHJpb3RzLmlu\r\n");
        m.push(S, b"334 UGFzc3dvcmQ6\r\n");
        m.push(C, b"cHVuamFiQDEyMw==\r\n");
        m.push(S, b"235 ok\r\n");
    }
    if spec.noise {
        m.push(C, b"NOOP\r\nXYZZY plugh\r\n");
        m.push(S, b"250 ok\r\n500 what\r\n");
    }
    let (mut started, mut completed) = (0, 0);
    for tx in &spec.txs {
        started += 1;
        let mut env = b"MAIL FROM:<s@example.org>\r\n".to_vec();
        let mut env_replies = b"250 ok\r\n".to_vec();
        for r in 0..tx.rcpts {
            env.extend_from_slice(format!("RCPT TO:<r{r}@example.com>\r\n").as_bytes());
            env_replies.extend_from_slice(b"250 ok\r\n");
        }
        let mut body = Vec::new();
        for l in &tx.lines {
            if l.starts_with('.') {
                body.push(b'.');
            }
            body.extend_from_slice(l.as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        match &tx.flow {
            Flow::Stepwise => {
                m.push(C, &env);
                m.push(S, &env_replies);
                m.push(C, b"DATA\r\n");
                m.push(S, b"354 go\r\n");
                m.push(C, &[&body[..], b".\r\n"].concat());
                m.push(S, b"250 queued\r\n");
                completed += 1;
            }
            Flow::Pipelined => {
                m.push(C, &[&env[..], b"DATA\r\n"].concat());
                m.push(S, &[&env_replies[..], b"354 go\r\n"].concat());
                m.push(C, &[&body[..], b".\r\n"].concat());
                m.push(S, b"250 queued\r\n");
                completed += 1;
            }
            Flow::BodyAhead => {
                m.push(C, &[&env[..], b"DATA\r\n", &body[..], b".\r\n"].concat());
                m.push(S, &[&env_replies[..], b"354 go\r\n250 queued\r\n"].concat());
                completed += 1;
            }
            Flow::Bdat(sizes) => {
                let mut c = env.clone();
                let mut r = env_replies.clone();
                for (i, n) in sizes.iter().enumerate() {
                    let last = i + 1 == sizes.len();
                    let suffix = if last { " LAST" } else { "" };
                    c.extend_from_slice(format!("BDAT {n}{suffix}\r\n").as_bytes());
                    // Chunk bytes are arbitrary: make them look like commands and dots.
                    c.extend(b".\r\nQUIT\r\n".iter().cycle().take(*n));
                    r.extend_from_slice(b"250 chunk ok\r\n");
                }
                m.push(C, &c);
                m.push(S, &r);
                completed += 1;
            }
            Flow::Refused => {
                m.push(C, &[&env[..], b"DATA\r\n"].concat());
                m.push(
                    S,
                    &[&env_replies[..], b"554 no valid recipients\r\n"].concat(),
                );
                m.push(C, b"Subject: anyway\r\n");
                m.push(S, b"500 unrecognized command\r\n");
                m.push(C, b"RSET\r\n");
                m.push(S, b"250 reset\r\n");
            }
            Flow::Abandon => {
                m.push(C, &env);
                m.push(S, &env_replies);
                m.push(C, b"RSET\r\n");
                m.push(S, b"250 reset\r\n");
            }
            Flow::BodyGap { at, n } => {
                m.push(C, &env);
                m.push(S, &env_replies);
                m.push(C, b"DATA\r\n");
                m.push(S, b"354 go\r\n");
                // Cut inside a line, so the gap never hides or fakes the end mark.
                let mut first = b"Subject: gap\r\n".to_vec();
                let mut second = Vec::new();
                for (i, line) in body.split_inclusive(|&b| b == b'\n').enumerate() {
                    if i < *at {
                        first.extend_from_slice(line)
                    } else {
                        second.extend_from_slice(line)
                    }
                }
                first.extend_from_slice(b"abc");
                second.splice(0..0, b"xyz\r\n".iter().copied());
                second.extend_from_slice(b".\r\n");
                m.push(C, &first);
                m.0.push(Seg::Gap(C, *n));
                m.push(C, &second);
                m.push(S, b"250 queued\r\n");
                completed += 1;
            }
        }
    }
    if spec.quit {
        m.push(C, b"QUIT\r\n");
        m.push(S, b"221 bye\r\n");
    }
    (m.0, started, completed)
}

/// Feeds each message cut at the given positions (taken modulo its length), every piece of a
/// message at that message's time.
fn feed_cut(script: &[Seg], cuts: &[usize]) -> SessionSummary {
    let mut s = Session::new();
    let mut cuts = cuts.iter().cycle();
    for (i, seg) in script.iter().enumerate() {
        match seg {
            Seg::Gap(side, n) => s.on_gap(*side, t(i), *n),
            Seg::Data(side, bytes) => {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let n = 1 + cuts.next().copied().unwrap_or(usize::MAX) % rest.len();
                    s.on_data(*side, t(i), &rest[..n]);
                    rest = &rest[n..];
                }
            }
        }
    }
    s.summary()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn splitting_does_not_change_the_summary(
        spec in spec(),
        cuts in prop::collection::vec(0usize..64, 1..32),
    ) {
        let (script, started, completed) = transcript(&spec);
        let whole = feed_cut(&script, &[usize::MAX - 1]);
        prop_assert_eq!(whole.transactions.len(), started);
        prop_assert_eq!(whole.transactions.iter().filter(|t| t.completed()).count(), completed);
        prop_assert_eq!(whole.unanswered, 0);
        prop_assert!(whole.anomalies.iter().all(|a| matches!(a,
            SmtpAnomaly::UnknownCommand { .. }
            | SmtpAnomaly::Gap { .. }
            | SmtpAnomaly::PlaintextAfterStarttls { .. })),
            "{:?}", whole.anomalies);
        match spec.tls {
            Tls::Records => {
                let tls = whole.tls.as_ref().expect("tls");
                prop_assert!(tls.handshake_completed);
                prop_assert_eq!(tls.client.alert_records, 1);
                prop_assert_eq!(whole.phase, Phase::Tls);
                prop_assert!(whole.quit.is_none());
            }
            Tls::Plaintext => {
                prop_assert!(whole.tls.is_none());
                prop_assert_eq!(whole.quit.is_some(), spec.quit);
            }
            Tls::None => prop_assert_eq!(whole.quit.is_some(), spec.quit),
        }
        assert_no_secret(&whole);
        let split = feed_cut(&script, &cuts);
        prop_assert_eq!(&split, &whole);
        let bytewise = feed_cut(&script, &[0]);
        prop_assert_eq!(&bytewise, &whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        ops in prop::collection::vec(
            (
                0u8..6,
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..80),
                    prop::sample::select(vec![
                        b"DATA\r\n".to_vec(), b"354 go\r\n".to_vec(), b"STARTTLS\r\n".to_vec(),
                        b"220 go\r\n".to_vec(), vec![0x16, 0x03, 0x01, 0x00, 0x05],
                        b"BDAT 5 LAST\r\n".to_vec(), b".\r\n".to_vec(), b"AUTH LOGIN\r\n".to_vec(),
                        b"334 x\r\n".to_vec(), b"MAIL FROM:<a@b>\r\n".to_vec(),
                        b"RCPT TO:<c@d>\r\n".to_vec(), b"250-x\r\n".to_vec(), b"503 no\r\n".to_vec(),
                        b"QUIT".to_vec(), b"250 ok".to_vec(),
                    ]),
                ],
            ),
            0..60,
        ),
    ) {
        let mut s = Session::new();
        for (i, (op, bytes)) in ops.iter().enumerate() {
            match op {
                0 | 1 => s.on_data(C, t(i), bytes),
                2 | 3 => s.on_data(S, t(i), bytes),
                4 => s.on_gap(C, t(i), bytes.len() as u64 * 37),
                _ => s.on_gap(S, t(i), bytes.len() as u64),
            }
            if i % 7 == 0 {
                let _ = s.summary();
            }
        }
        let sum = s.summary();
        prop_assert!(sum.anomalies.len() <= MAX_ANOMALIES);
        prop_assert!(sum.unprompted_replies.len() <= MAX_UNPROMPTED);
        let _ = serde_json::to_string(&sum).unwrap();
    }
}

/// What an ASA/PIX-style ESMTP inspection does to a session: an X'd-out STARTTLS in the EHLO
/// reply and a command it did not allow replaced by X's (answered 500).
#[test]
fn masked_keywords_and_commands_are_recorded() {
    let mut s = Session::new();
    let t = Timestamp::from_secs(1);
    s.on_data(Side::Server, t, b"220 esa.example.com ESMTP\r\n");
    s.on_data(Side::Client, t, b"EHLO mta.example.net\r\n");
    s.on_data(
        Side::Server,
        t,
        b"250-esa.example.com\r\n250-XXXXXXXA\r\n250 PIPELINING\r\n",
    );
    s.on_data(Side::Client, t, b"XXXX bob\r\n");
    s.on_data(Side::Server, t, b"500 unrecognized command\r\n");
    let sum = s.summary();
    assert_eq!(kinds(&sum), vec!["masked_reply_line", "masked_command"]);
    assert!(
        super::is_masked_word("XXXXXXXA")
            && super::is_masked_word("XXXXXXXB")
            && super::is_masked_word("XXXX")
    );
    assert!(!super::is_masked_word("XXXXAB"));
    assert!(
        !super::is_masked_word("XX")
            && !super::is_masked_word("XXAX")
            && !super::is_masked_word("AUTH")
    );
}

#[test]
fn command_line_sizes_are_counted_not_kept() {
    let long = format!("RCPT TO:<{}@example.com>\r\n", "a".repeat(5000));
    let s = run(&[
        (S, b"220 mail.example.com ESMTP\r\n"),
        (C, b"EHLO client.example.org\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"MAIL FROM:<a@example.org>\r\n"),
        (S, b"250 ok\r\n"),
        (C, long.as_bytes()),
    ]);
    let cl = s.command_lines;
    // Past the 4 KiB line cap the size is still the size sent.
    assert_eq!(cl.last_octets, long.len() as u64);
    assert_eq!(cl.longest_earlier_octets, 27);
    assert_eq!(cl.open_octets, 0);
    let last = s.last_command.as_ref().unwrap();
    assert_eq!((last.verb.as_str(), last.reply.is_none()), ("RCPT", true));
    assert_eq!(s.transactions[0].rcpt_to.len(), 1);

    // A line cut before its end: an open line, with when its last byte came.
    let s = run(&[
        (S, b"220 mail.example.com ESMTP\r\n"),
        (C, b"EHLO client.example.org\r\n"),
        (S, b"250 ok\r\n"),
        (C, &long.as_bytes()[..1448]),
    ]);
    assert_eq!(s.command_lines.open_octets, 1448);
    assert_eq!(s.command_lines.open_at, Some(t(3)));
    assert_eq!(s.command_lines.last_octets, 25);
}

#[test]
fn data_line_sizes_with_their_times() {
    let header = format!("Subject: x\r\nX-Long: {}\r\n", "h".repeat(1100));
    let s = run(&[
        (S, b"220 mail.example.com ESMTP\r\n"),
        (
            C,
            b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
        ),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, header.as_bytes()),
        (C, b"\r\nshort body\r\n"),
        (C, &[b'b'; 2000]),
    ]);
    let d = s.transactions[0].data.as_ref().unwrap();
    let z = d.lines;
    assert_eq!(z.header_octets, header.len() as u64);
    assert_eq!((z.header_ended, z.header_ended_at), (true, Some(t(4))));
    assert_eq!(
        (z.longest_header_line, z.longest_header_line_at),
        (1108, Some(t(3)))
    );
    assert_eq!(
        (z.longest_body_line, z.longest_body_line_at),
        (10, Some(t(4)))
    );
    assert_eq!(z.open_line, 2000);

    // Finished: the sizes stay with the message; BDAT is not split into lines.
    let s = run(&[
        (S, b"220 mail.example.com ESMTP\r\n"),
        (
            C,
            b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
        ),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (
            C,
            b"A: 1\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@example.org>\r\nBDAT 9 LAST\r\nA: 1\r\n\r\nx",
        ),
        (S, b"250 queued\r\n250 ok\r\n250 queued\r\n"),
    ]);
    let z = s.transactions[0].data.as_ref().unwrap().lines;
    assert_eq!(
        (z.header_octets, z.longest_body_line, z.open_line),
        (6, 4, 0)
    );
    assert_eq!(
        s.transactions[1].data.as_ref().unwrap().lines,
        DataLines::default()
    );
}
