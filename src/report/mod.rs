//! Stage: the report model and its printers.
//!
//! Contract: [`Report`] is the one serializable result of an analysis, in a deterministic order
//! (connections by first packet time). Every output format is a pure function of it — the
//! verdict table ([`table`]), JSON ([`json`]) and CSV ([`csv`]) — and computes nothing new.
//! The JSON field names listed in the design are a stable contract for users' scripts.

pub mod csv;
pub mod json;
pub mod log;
pub mod model;
pub mod table;

pub use model::*;
