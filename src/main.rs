//! `icidtrace`: flags in, report out. All the work is in the library's stages.
#![forbid(unsafe_code)]

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use icidtrace::analyze::{self, AnalyzeOptions};
use icidtrace::cli::{
    AnalyzeArgs, Cli, Command, DEFAULT_WIDTH, Format, LogArgs, MIN_WIDTH, ReportFormat, exit,
};
use icidtrace::correlate::ClockHint;
use icidtrace::maillog::LogSummary;
use icidtrace::report;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Analyze(args) => run_analyze(&args),
        Command::Log(args) => run_log(&args),
    };
    ExitCode::from(code as u8)
}

/// One line on standard error. A closed standard error is not worth a panic.
fn say(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "icidtrace: {msg}");
}

/// Where the output goes: `-o FILE`, or standard output (also for `-o -`).
fn output_file(output: Option<&Path>) -> Option<&Path> {
    output.filter(|p| *p != Path::new("-"))
}

/// The table width: `--width`, else `COLUMNS`, else the terminal's width when the table goes
/// to a terminal, else [`DEFAULT_WIDTH`] (as `--help` says).
fn table_width(explicit: Option<u16>, to_stdout: bool) -> u16 {
    if let Some(w) = explicit {
        return w;
    }
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
    {
        return w.max(MIN_WIDTH);
    }
    if to_stdout && io::stdout().is_terminal() {
        return comfy_table::Table::new()
            .width()
            .map_or(80, |w| w.max(MIN_WIDTH));
    }
    DEFAULT_WIDTH
}

/// Refuses `-o` naming one of the inputs: writing the report would destroy it.
fn check_output_is_not_an_input(output: Option<&Path>, inputs: &[PathBuf]) -> Result<(), i32> {
    let Some(out) = output_file(output) else {
        return Ok(());
    };
    let Ok(out_real) = out.canonicalize() else {
        return Ok(()); // does not exist yet: not an input
    };
    for input in inputs {
        if input.canonicalize().is_ok_and(|p| p == out_real) {
            say(&format!(
                "{}: -o names an input file; refusing to overwrite it",
                out.display()
            ));
            return Err(exit::BAD_INPUT);
        }
    }
    Ok(())
}

fn run_analyze(args: &AnalyzeArgs) -> i32 {
    let inputs: Vec<PathBuf> = args
        .captures
        .iter()
        .filter(|c| *c != "-")
        .map(PathBuf::from)
        .chain(args.logs.iter().cloned())
        .collect();
    if let Err(code) = check_output_is_not_an_input(args.output.as_deref(), &inputs) {
        return code;
    }
    if args.captures.iter().any(|c| c == "-") && io::stdin().is_terminal() {
        say(
            "stdin: standard input is a terminal, not a capture: pipe one in (tcpdump -w - ... | icidtrace analyze -)",
        );
        return exit::BAD_INPUT;
    }
    let clock = match (args.log_tz, args.clock_offset) {
        (Some(tz), _) => ClockHint::Zone(tz),
        (None, Some(s)) => ClockHint::Offset(s),
        (None, None) => ClockHint::Auto,
    };
    let opts = AnalyzeOptions {
        captures: args.captures.clone(),
        filter: args.filter.clone(),
        extra_ports: args.ports.clone(),
        logs: args.logs.clone(),
        clock,
        // Reports for a support case quote the log lines of each ICID.
        log_lines: matches!(args.format, ReportFormat::Markdown | ReportFormat::Html),
    };
    let report = match analyze::analyze(&opts) {
        Ok(r) => r,
        Err(e) => {
            say(&e.to_string());
            return exit::BAD_INPUT;
        }
    };
    if let Err(code) = check_logs_are_logs(report.logs.as_ref()) {
        return code;
    }
    let file = output_file(args.output.as_deref());
    let text = match args.format {
        ReportFormat::Table => {
            report::table::render(&report, table_width(args.width, file.is_none()))
        }
        ReportFormat::Json => report::json::render(&report),
        ReportFormat::Csv => report::csv::render(&report),
        ReportFormat::Markdown => report::markdown::render(&report),
        ReportFormat::Html => report::html::render(&report),
    };
    if let Err(code) = emit(&text, file) {
        return code;
    }
    // Damage is in the report (and the table); say it on stderr too when the output went
    // elsewhere. A damaged log is not in the table: say it always.
    let table_on_stdout = args.format == ReportFormat::Table && file.is_none();
    if !table_on_stdout {
        for p in &report.problems {
            say(&format!("warning: {p}"));
        }
    }
    let log_damage = log_damage(report.logs.as_ref());
    for d in &log_damage {
        if !report.problems.iter().any(|p| p.contains(d.as_str())) {
            say(&format!("warning: {d}"));
        }
    }
    if report.problems.is_empty() && log_damage.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }
}

/// Refuses a "log" in which no line is a mail_logs line (a capture given as `--log`, say):
/// nothing of it could be used.
fn check_logs_are_logs(logs: Option<&LogSummary>) -> Result<(), i32> {
    let Some(logs) = logs else {
        return Ok(());
    };
    for f in &logs.files {
        let c = &f.counts;
        if c.records == 0 && c.unparsed_lines > 0 && f.damage.is_none() {
            say(&format!(
                "{}: not a mail log: none of its {} lines is a mail_logs line",
                f.path, c.lines
            ));
            return Err(exit::BAD_INPUT);
        }
    }
    Ok(())
}

/// Mail log files whose reading stopped early (a damaged gzip stream), as `path: why`.
fn log_damage(logs: Option<&LogSummary>) -> Vec<String> {
    logs.map(|l| {
        l.files
            .iter()
            .filter_map(|f| f.damage.as_ref().map(|d| format!("{}: {d}", f.path)))
            .collect()
    })
    .unwrap_or_default()
}

/// Writes the output to the file, or to standard output. A closed pipe (`| head`) is the
/// reader's choice: the output ends there, quietly.
fn emit(text: &str, file: Option<&Path>) -> Result<(), i32> {
    let written = match file {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))
        }
        None => {
            let mut out = io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(format!("standard output: cannot write: {e}")),
            }
        }
    };
    written.map_err(|e| {
        say(&e);
        exit::BAD_INPUT
    })
}

fn run_log(args: &LogArgs) -> i32 {
    if let Err(code) = check_output_is_not_an_input(args.output.as_deref(), &args.logs) {
        return code;
    }
    let opts = icidtrace::maillog::LogOptions {
        syslog_year: args.year,
        ..Default::default()
    };
    let log = match icidtrace::maillog::read_logs(&args.logs, &opts) {
        Ok(l) => l,
        Err(e) => {
            say(&e.to_string());
            return exit::BAD_INPUT;
        }
    };
    if let Err(code) = check_logs_are_logs(Some(&log.summary)) {
        return code;
    }
    let file = output_file(args.output.as_deref());
    let report = report::log::LogReport::new(&log);
    let text = match args.format {
        Format::Table => {
            report::log::render_table(&report, table_width(args.width, file.is_none()))
        }
        Format::Json => report::log::render_json(&report),
        Format::Csv => report::log::render_csv(&report),
    };
    if let Err(code) = emit(&text, file) {
        return code;
    }
    let damage = log_damage(Some(&log.summary));
    for d in &damage {
        say(&format!("warning: {d}"));
    }
    if damage.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }
}
