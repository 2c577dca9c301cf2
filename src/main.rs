//! `icidtrace`: flags in, report out. All the work is in the library's stages.
#![forbid(unsafe_code)]

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use icidtrace::analyze::{self, AnalyzeOptions};
use icidtrace::cli::{exit, AnalyzeArgs, Cli, Command, Format};
use icidtrace::report;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Analyze(args) => run_analyze(&args),
    };
    ExitCode::from(code as u8)
}

fn terminal_width() -> u16 {
    if let Some(w) = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<u16>().ok()) {
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
    let opts = AnalyzeOptions { captures: args.captures.clone(), filter: args.filter.clone(), extra_ports: args.ports.clone() };
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
    let written = match &args.output {
        Some(path) => std::fs::write(path, &text).map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            let mut out = io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Ok(()) => Ok(()),
                // A closed pipe (`| head`) is the reader's choice, not an error.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return exit::OK,
                Err(e) => Err(format!("cannot write output: {e}")),
            }
        }
    };
    if let Err(e) = written {
        eprintln!("icidtrace: {e}");
        return exit::BAD_INPUT;
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
