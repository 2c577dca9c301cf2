//! The progress bar on standard error, for long runs: how much of the captures (and, with
//! `--export`, of the second pass) was read, against their size on disk.
//!
//! Shown only when standard error is a terminal and `-q` was not given, and only once a run has
//! lasted a moment, so that short runs and pipes never see it. Hand-written: one line redrawn in
//! place (`\r`, erase line), at most ten times a second, erased before anything else is printed.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use icidtrace::analyze::{ProgressEvent, ProgressHook, ProgressStage};

/// Nothing is drawn before a run has lasted this long.
const DELAY: Duration = Duration::from_millis(400);
/// Time between two redraws.
const EVERY: Duration = Duration::from_millis(100);
/// Cells of the bar itself.
const CELLS: usize = 30;

struct State {
    start: Instant,
    last: Option<Instant>,
    drawn: bool,
}

/// A progress bar; [`Bar::hook`] feeds it, [`Bar::clear`] erases it.
pub struct Bar {
    state: Option<Arc<Mutex<State>>>,
}

impl Bar {
    /// A bar that draws when `enabled` (standard error is a terminal, no `-q`).
    pub fn new(enabled: bool) -> Bar {
        Bar {
            state: enabled.then(|| {
                Arc::new(Mutex::new(State {
                    start: Instant::now(),
                    last: None,
                    drawn: false,
                }))
            }),
        }
    }

    /// The hook to hand to the stages; `None` when the bar is off.
    pub fn hook(&self) -> Option<ProgressHook> {
        let state = Arc::clone(self.state.as_ref()?);
        Some(ProgressHook::new(move |e| {
            if let Ok(mut s) = state.lock() {
                s.on(e);
            }
        }))
    }

    /// Erases the bar (before anything else is printed).
    pub fn clear(&self) {
        if let Some(state) = &self.state {
            if let Ok(mut s) = state.lock() {
                if s.drawn {
                    let mut err = io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K");
                    let _ = err.flush();
                    s.drawn = false;
                }
                s.last = None;
            }
        }
    }
}

impl State {
    fn on(&mut self, e: &ProgressEvent) {
        let now = Instant::now();
        if now.duration_since(self.start) < DELAY {
            return;
        }
        if self.last.is_some_and(|l| now.duration_since(l) < EVERY) && !e.finished {
            return;
        }
        self.last = Some(now);
        let line = line(e);
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn = true;
    }
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
}

/// The text of the bar for one event.
fn line(e: &ProgressEvent) -> String {
    let label = match e.stage {
        ProgressStage::Captures => "reading captures",
        ProgressStage::Logs => "reading mail logs",
        ProgressStage::Export => "cutting connections out",
    };
    let files = if e.files > 1 {
        format!("  file {}/{}", e.file + 1, e.files)
    } else {
        String::new()
    };
    match e.bytes_total.filter(|t| *t > 0) {
        Some(total) if e.stage != ProgressStage::Logs || e.finished => {
            let frac = (e.bytes_done as f64 / total as f64).clamp(0.0, 1.0);
            let full = (frac * CELLS as f64).round() as usize;
            format!(
                "{label} [{}{}] {:>3}%  {} of {}{files}",
                "=".repeat(full),
                " ".repeat(CELLS - full),
                (frac * 100.0).round() as u32,
                mib(e.bytes_done),
                mib(total)
            )
        }
        Some(total) => format!("{label} ({}){files} …", mib(total)),
        None => format!("{label}: {} read{files}", mib(e.bytes_done)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_how_far() {
        let e = ProgressEvent {
            stage: ProgressStage::Captures,
            file: 0,
            files: 2,
            bytes_done: 50 << 20,
            bytes_total: Some(100 << 20),
            finished: false,
        };
        let l = line(&e);
        assert!(l.starts_with("reading captures [="), "{l}");
        assert!(l.contains(" 50%  50 MiB of 100 MiB  file 1/2"), "{l}");
        let stdin = ProgressEvent {
            bytes_total: None,
            ..e
        };
        assert_eq!(line(&stdin), "reading captures: 50 MiB read  file 1/2");
    }

    #[test]
    fn a_disabled_bar_has_no_hook() {
        assert!(Bar::new(false).hook().is_none());
        assert!(Bar::new(true).hook().is_some());
    }
}
