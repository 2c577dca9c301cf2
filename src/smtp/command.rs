//! Client command lines into typed commands.
//!
//! Contract: [`parse`] takes one line (no CR/LF) and returns what the session needs: the verb
//! (case-insensitive on the wire, upper-cased here) and only the arguments that are envelope
//! data (MAIL FROM / RCPT TO addresses, the EHLO host) or harmless (the AUTH mechanism, the BDAT
//! size). An AUTH initial response is dropped here, so it never reaches any stored string.
//! Anything else becomes [`Parsed::Unknown`] with a short, sanitised token.

use super::line::{MAX_ADDRESS, MAX_TEXT, text};

/// Longest unknown verb token kept: enough for `XCLIENT`-like extensions, too short to carry a
/// meaningful secret if a client sends one where a command was expected.
const MAX_VERB: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// EHLO, HELO or LHLO and the host it gave.
    Hello {
        verb: &'static str,
        host: String,
    },
    /// STARTTLS (or Exchange's X-ANONYMOUSTLS, which also turns the stream into TLS).
    StartTls {
        verb: &'static str,
    },
    /// AUTH (or Exchange's X-EXPS); the mechanism when it is a plain token.
    Auth {
        verb: &'static str,
        mechanism: Option<String>,
    },
    Mail {
        from: String,
    },
    Rcpt {
        to: String,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Quit,
    /// A known verb the session has no rule for, or BDAT with bad syntax (the server will
    /// refuse it; no chunk follows).
    Other {
        verb: &'static str,
    },
    /// Not a command: `<empty>`, `<binary>`, or the first token (at most 20 characters).
    Unknown {
        verb: String,
    },
}

impl Parsed {
    /// The verb as recorded in [`super::Command::verb`] (`?` for a line that is no command).
    pub fn verb(&self) -> &str {
        match self {
            Parsed::Hello { verb, .. }
            | Parsed::StartTls { verb }
            | Parsed::Auth { verb, .. }
            | Parsed::Other { verb } => verb,
            Parsed::Mail { .. } => "MAIL",
            Parsed::Rcpt { .. } => "RCPT",
            Parsed::Data => "DATA",
            Parsed::Bdat { .. } => "BDAT",
            Parsed::Rset => "RSET",
            Parsed::Quit => "QUIT",
            Parsed::Unknown { .. } => "?",
        }
    }
}

/// Verbs accepted without a rule of their own: real extensions an MTA may send, so they are not
/// reported as unknown.
const OTHER_VERBS: &[&str] = &[
    "NOOP", "VRFY", "EXPN", "HELP", "ETRN", "TURN", "ATRN", "XCLIENT", "XFORWARD", "SEND", "SOML",
    "SAML", "VERB", "ONEX", "XEXCH50", "XSHADOW",
];

fn split_verb(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&line[..i], trim_start(&line[i + 1..])),
        None => (line, &[]),
    }
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

fn first_token(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(s.len());
    &s[..end]
}

/// `FROM:<addr> params`, `FROM: <addr>`, `TO:addr`: the path without angle brackets.
/// Parameters after the path are ignored; a malformed argument is kept as it came so the
/// refusal that follows is explainable.
fn path(args: &[u8], keyword: &[u8]) -> String {
    let rest = if args.len() >= keyword.len() && args[..keyword.len()].eq_ignore_ascii_case(keyword)
    {
        let after = trim_start(&args[keyword.len()..]);
        match after.strip_prefix(b":") {
            Some(a) => trim_start(a),
            None => return text(first_token(args), MAX_ADDRESS),
        }
    } else {
        return text(first_token(args), MAX_ADDRESS);
    };
    let addr = match rest.strip_prefix(b"<") {
        Some(inner) => {
            let end = inner.iter().position(|&b| b == b'>').unwrap_or(inner.len());
            &inner[..end]
        }
        None => first_token(rest),
    };
    text(addr, MAX_ADDRESS)
}

fn token_text(tok: &[u8]) -> String {
    if tok.is_empty() {
        "<empty>".to_string()
    } else if tok.iter().any(|&b| !(0x21..=0x7e).contains(&b)) {
        "<binary>".to_string()
    } else {
        text(tok, MAX_VERB)
    }
}

/// The mechanism of `AUTH <mech> [initial-response]`, only when it looks like a SASL name; the
/// initial response is never looked at.
fn mechanism(args: &[u8]) -> Option<String> {
    let tok = first_token(args);
    let ok = !tok.is_empty()
        && tok.len() <= MAX_VERB
        && tok
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| String::from_utf8_lossy(tok).to_ascii_uppercase())
}

fn bdat(args: &[u8]) -> Option<(u64, bool)> {
    let mut toks = args
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|t| !t.is_empty());
    let size = toks.next()?;
    if size.is_empty() || size.len() > 19 || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(size).ok()?.parse().ok()?;
    let last = match toks.next() {
        None => false,
        Some(t) if t.eq_ignore_ascii_case(b"LAST") => true,
        Some(_) => return None,
    };
    toks.next().is_none().then_some((size, last))
}

/// One client line (without CR/LF) as a command.
pub(crate) fn parse(line: &[u8]) -> Parsed {
    let (verb, args) = split_verb(line);
    let upper = verb.to_ascii_uppercase();
    match upper.as_slice() {
        b"EHLO" | b"HELO" | b"LHLO" => Parsed::Hello {
            verb: match upper.as_slice() {
                b"EHLO" => "EHLO",
                b"HELO" => "HELO",
                _ => "LHLO",
            },
            host: text(first_token(args), MAX_TEXT),
        },
        b"STARTTLS" => Parsed::StartTls { verb: "STARTTLS" },
        b"X-ANONYMOUSTLS" => Parsed::StartTls {
            verb: "X-ANONYMOUSTLS",
        },
        b"AUTH" => Parsed::Auth {
            verb: "AUTH",
            mechanism: mechanism(args),
        },
        b"X-EXPS" => Parsed::Auth {
            verb: "X-EXPS",
            mechanism: mechanism(args),
        },
        b"MAIL" => Parsed::Mail {
            from: path(args, b"FROM"),
        },
        b"RCPT" => Parsed::Rcpt {
            to: path(args, b"TO"),
        },
        b"DATA" => Parsed::Data,
        b"BDAT" => match bdat(args) {
            Some((size, last)) => Parsed::Bdat { size, last },
            None => Parsed::Other { verb: "BDAT" },
        },
        b"RSET" => Parsed::Rset,
        b"QUIT" => Parsed::Quit,
        v => match OTHER_VERBS.iter().find(|o| o.as_bytes() == v) {
            Some(o) => Parsed::Other { verb: o },
            None => Parsed::Unknown {
                verb: token_text(verb),
            },
        },
    }
}

/// A line that starts with a known verb. Two uses: during an AUTH exchange every other client
/// line is a SASL response, never stored (base64 has no spaces and a bare known verb is not a
/// plausible credential), which also lets a one-sided capture, where the 235 is never seen,
/// leave AUTH; and after lost bytes the next line may be the tail of a lost one, accepted only
/// when it looks like a command.
pub(crate) fn is_command(line: &[u8]) -> bool {
    !matches!(parse(line), Parsed::Unknown { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(
            parse(b"mail FROM:<robin@icir.org> size=9030"),
            Parsed::Mail {
                from: "robin@icir.org".into()
            }
        );
        assert_eq!(
            parse(b"rcpt to:<alice@example.com>"),
            Parsed::Rcpt {
                to: "alice@example.com".into()
            }
        );
        assert_eq!(parse(b"data"), Parsed::Data);
        assert_eq!(parse(b"Quit"), Parsed::Quit);
    }

    #[test]
    fn paths() {
        assert_eq!(parse(b"MAIL FROM:<>"), Parsed::Mail { from: "".into() });
        assert_eq!(
            parse(b"MAIL FROM: <gurpartap@patriots.in>"),
            Parsed::Mail {
                from: "gurpartap@patriots.in".into()
            }
        );
        assert_eq!(
            parse(b"MAIL FROM:a@b BODY=8BITMIME"),
            Parsed::Mail { from: "a@b".into() }
        );
        assert_eq!(
            parse(b"RCPT TO:<x@y> ORCPT=rfc822;x@y"),
            Parsed::Rcpt { to: "x@y".into() }
        );
    }

    #[test]
    fn auth_keeps_only_the_mechanism() {
        assert_eq!(
            parse(b"AUTH PLAIN AGJvYgBzZWNyZXQ="),
            Parsed::Auth {
                verb: "AUTH",
                mechanism: Some("PLAIN".into())
            }
        );
        assert_eq!(
            parse(b"auth login"),
            Parsed::Auth {
                verb: "AUTH",
                mechanism: Some("LOGIN".into())
            }
        );
    }

    #[test]
    fn bdat_syntax() {
        assert_eq!(
            parse(b"BDAT 4404 LAST"),
            Parsed::Bdat {
                size: 4404,
                last: true
            }
        );
        assert_eq!(
            parse(b"bdat 200"),
            Parsed::Bdat {
                size: 200,
                last: false
            }
        );
        assert_eq!(parse(b"BDAT"), Parsed::Other { verb: "BDAT" });
        assert_eq!(parse(b"BDAT x LAST"), Parsed::Other { verb: "BDAT" });
        assert_eq!(parse(b"BDAT 1 LAST x"), Parsed::Other { verb: "BDAT" });
    }

    #[test]
    fn unknown_tokens_are_short_and_printable() {
        assert_eq!(
            parse(b"g\x8aY\x00XH"),
            Parsed::Unknown {
                verb: "<binary>".into()
            }
        );
        assert_eq!(
            parse(b""),
            Parsed::Unknown {
                verb: "<empty>".into()
            }
        );
        match parse(&[b'Z'; 200]) {
            Parsed::Unknown { verb } => assert_eq!(verb.chars().count(), MAX_VERB + 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_responses_are_not_commands() {
        assert!(!is_command(b"Z3VycGFydGFwQHBhdHJpb3RzLmlu"));
        assert!(!is_command(b"*"));
        assert!(!is_command(b""));
        assert!(is_command(b"MAIL FROM:<a@b>"));
        assert!(is_command(b"QUIT"));
    }
}
