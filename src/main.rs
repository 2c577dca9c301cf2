//! `icidtrace`: flags in, report out. All the work is in the library's stages.
#![forbid(unsafe_code)]

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use icidtrace::analyze::{self, AnalyzeOptions};
use icidtrace::cli::{AnalyzeArgs, Cli, Command, Format, LogArgs, exit};
use icidtrace::correlate::ClockHint;
use icidtrace::report;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Analyze(args) => run_analyze(&args),
        Command::Log(args) => run_log(&args),
    };
    ExitCode::from(code as u8)
}

fn terminal_width() -> u16 {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
    {
        return w.max(40);
    }
    if io::stdout().is_terminal() {
        if let Some((w, _)) = comfy_table_width() {
            return w;
        }
        return 80;
    }
    100
}

fn comfy_table_width() -> Option<(u16, u16)> {
    let t = comfy_table::Table::new();
    t.width().map(|w| (w, 0))
}

fn run_analyze(args: &AnalyzeArgs) -> i32 {
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
    };
    let report = match analyze::analyze(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("icidtrace: {e}");
            return exit::BAD_INPUT;
        }
    };
    let text = match args.format {
        Format::Table => report::table::render(&report, args.width.unwrap_or_else(terminal_width)),
        Format::Json => report::json::render(&report),
        Format::Csv => report::csv::render(&report),
    };
    if let Err(code) = emit(&text, args.output.as_deref()) {
        return code;
    }
    // Damage is in the report (and the table); say it on stderr too when the output went elsewhere.
    if !report.problems.is_empty() {
        if args.format != Format::Table || args.output.is_some() {
            for p in &report.problems {
                eprintln!("icidtrace: warning: {p}");
            }
        }
        return exit::PARTIAL;
    }
    exit::OK
}

/// Writes the output; a closed pipe (`| head`) is the reader's choice and ends quietly.
fn emit(text: &str, output: Option<&std::path::Path>) -> Result<(), i32> {
    let written = match output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            let mut out = io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(exit::OK),
                Err(e) => Err(format!("cannot write output: {e}")),
            }
        }
    };
    written.map_err(|e| {
        eprintln!("icidtrace: {e}");
        exit::BAD_INPUT
    })
}

fn run_log(args: &LogArgs) -> i32 {
    let opts = icidtrace::maillog::LogOptions {
        syslog_year: args.year,
        ..Default::default()
    };
    let log = match icidtrace::maillog::read_logs(&args.logs, &opts) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("icidtrace: {e}");
            return exit::BAD_INPUT;
        }
    };
    let report = report::log::LogReport::new(&log);
    let text = match args.format {
        Format::Table => {
            report::log::render_table(&report, args.width.unwrap_or_else(terminal_width))
        }
        Format::Json => report::log::render_json(&report),
        Format::Csv => report::log::render_csv(&report),
    };
    match emit(&text, args.output.as_deref()) {
        Ok(()) => exit::OK,
        Err(code) => code,
    }
}
