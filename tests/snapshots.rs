//! Golden files for what users read and scripts parse: the verdict table (wide and 80
//! columns), CSV and JSON of real captures, with and without the mail log. Times are printed in
//! UTC whatever the machine's zone; inputs are named by relative paths so the files are stable.
//! Accept a deliberate change with `INSTA_UPDATE=always cargo test --test snapshots` and review
//! the diff.

use icidtrace::analyze::{AnalyzeOptions, analyze};
use icidtrace::report::{self, Report};

fn report(capture: &str, log: Option<&str>) -> Report {
    // Relative to the package root, where cargo runs integration tests.
    let opts = AnalyzeOptions {
        captures: vec![capture.to_string()],
        logs: log.map(|l| vec![l.into()]).unwrap_or_default(),
        ..Default::default()
    };
    analyze(&opts).unwrap()
}

#[test]
fn table_rst_during_data_with_log() {
    let r = report(
        "captures/rst-during-data/capture.pcap",
        Some("captures/rst-during-data/mail_logs"),
    );
    insta::assert_snapshot!(report::table::render(&r, 140));
}

#[test]
fn table_burst_with_log_80_columns() {
    let r = report(
        "captures/burst/capture.pcap",
        Some("captures/burst/mail_logs"),
    );
    let text = report::table::render(&r, 80);
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "line wider than 80 columns: {line}"
        );
    }
    insta::assert_snapshot!(text);
}

#[test]
fn table_public_sv_smtp_errors() {
    let r = report("../shared/captures/public/sv-smtp-errors.pcap", None);
    insta::assert_snapshot!(report::table::render(&r, 140));
}

#[test]
fn table_damaged_capture_says_where() {
    let r = report(
        "../shared/captures/public/sv-smtp-to-comma-damaged.pcap",
        None,
    );
    insta::assert_snapshot!(report::table::render(&r, 100));
}

#[test]
fn csv_burst_with_log() {
    let r = report(
        "captures/burst/capture.pcap",
        Some("captures/burst/mail_logs"),
    );
    insta::assert_snapshot!(report::csv::render(&r));
}

#[test]
fn json_idle_timeout_with_log() {
    let r = report(
        "captures/idle-timeout/capture.pcap",
        Some("captures/idle-timeout/mail_logs"),
    );
    insta::assert_snapshot!(report::json::render(&r));
}
