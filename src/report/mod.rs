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
