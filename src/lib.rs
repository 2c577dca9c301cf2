//! icidtrace: tells from a packet capture taken on a Cisco Email Security Appliance (and its
//! `mail_logs`) how each inbound SMTP connection ended, and who ended it.
//!
//! The pipeline, one module a stage, data flowing one way:
//!
//! ```text
//! capture ─► tcp ─► smtp ─┐
//!                         ├─► correlate ─► verdict ─► report
//! maillog ────────────────┘
//! ```
//!
//! [`analyze`] wires the stages together; `main.rs` only parses flags and prints.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod capture;
pub mod cli;
pub mod correlate;
pub mod export;
pub mod maillog;
pub mod redact;
pub mod report;
pub mod smtp;
pub mod tcp;
pub mod types;
pub mod verdict;
