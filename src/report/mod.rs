//! Stage: the report model and its printers.
//!
//! Contract: [`Report`] is the one serializable result of an analysis, in a deterministic order
//! (connections by first packet time). Every output format is a pure function of it — the
//! verdict table ([`table`]), JSON ([`json`]) and CSV ([`csv`]) — and computes nothing new.
//! The JSON field names listed in the design are a stable contract for users' scripts.

pub mod csv;
pub mod detail;
pub mod html;
pub mod json;
pub mod jsonl;
pub mod ladder;
pub mod log;
pub mod markdown;
pub mod model;
pub mod select;
pub mod table;

pub use model::*;

/// Folds `text` into lines of at most `width` characters at spaces, continuation lines indented
/// by two; a word longer than the width (a long path) stays whole on its own line.
pub(crate) fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from("  ");
        } else if len > 0 {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The summary line for connection attempts that were counted, not listed, in words.
pub(crate) fn folded_attempts_text(f: &FoldedAttempts) -> String {
    use ladder::{thousands, utc};
    let clients = if f.clients >= f.clients_cap {
        format!("at least {}", thousands(f.clients))
    } else {
        thousands(f.clients)
    };
    let span = match (f.first_seen, f.last_seen) {
        (Some(a), Some(b)) => format!(", {} – {} UTC", utc(a), utc(b)),
        _ => String::new(),
    };
    format!(
        "{} more connection attempts without a handshake were counted, not listed \
         ({} unanswered, {} refused with RST; a scan or a SYN flood?) from {clients} client \
         addresses{span}",
        thousands(f.count),
        thousands(f.unanswered),
        thousands(f.refused),
    )
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_spaces_and_keeps_long_words() {
        assert_eq!(wrap("one two three", 7), "one two\n  three\n");
        assert_eq!(wrap("short", 80), "short\n");
        assert_eq!(wrap("a verylongword b", 5), "a\n  verylongword\n  b\n");
    }
}
