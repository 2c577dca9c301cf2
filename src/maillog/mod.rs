//! Stage: ESA `mail_logs` text to ICID and MID lifecycles.
//!
//! Contract: text in, records out; this module knows nothing about packets. It reads on-box
//! mail-log files (plain or gzip, rotated sets in stamp order), syslog streams (`<PRI>Mmm dd
//! HH:MM:SS [host] TAG: Level: msg`, no year) and relay-written syslog files, joins lines that
//! a copy wrapped, types every line of `docs/esa-mail-logs.md` section 5 ([`Event`]), and folds
//! them into one [`IcidRecord`] per (appliance, ICID) and one [`MidRecord`] per (appliance,
//! MID), each ICID with a [`LogOutcome`]. Content problems never fail: unknown, unparsed,
//! over-long, non-UTF-8, duplicated and out-of-order lines are counted (with samples) in the
//! [`LogSummary`]; only I/O errors are errors ([`MailLogError`]). Times stay appliance-local
//! ([`LocalTime`]); the `Time offset from UTC` header values are reported as hints and
//! [`local_to_utc`] converts once the correlation stage has chosen a zone.
//!
//! Layers: [`line`] (framing, timestamps, the streaming [`LineParser`]), [`event`] (the
//! classifier), [`lifecycle`] (records and outcomes), [`reader`] (files, gzip, rotation,
//! summary, [`read_logs`]).

pub mod event;
pub mod excerpt;
pub mod lifecycle;
pub mod line;
pub mod reader;

pub use event::{
    AbortReason, Connect, DeliveryKind, EVENT_KINDS, Event, Finish, Hat, HatPolicy, HostAddr,
    IcidNoteKind, Sbrs, classify,
};
pub use lifecycle::{
    IcidNote, IcidRecord, LifecycleBuilder, LifecycleOptions, Lifecycles, LineRef, LogOutcome,
    MidRecord, Recipient, RejectedRecipient, SourceKey,
};
pub use line::{
    FrameResult, Framing, Level, LineCounters, LineParser, LineSample, LocalTime, LogRecord,
    LogZone, ParserOptions, SampleReason, YearHint, local_to_utc, parse_prefix,
};
pub use reader::{
    FileSummary, LogOptions, LogSummary, MailLog, MailLogBuilder, MailLogError, MailLogErrorKind,
    RotatedName, RotationStatus, TimeOffsetHint, UnknownLine, order_paths, parse_bytes,
    read_capped_line, read_logs, rotated_name,
};

#[cfg(test)]
mod tests;
