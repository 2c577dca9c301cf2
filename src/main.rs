//! `icidtrace`: flags in, report out. All the work is in the library's stages.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use icidtrace::analyze::{self, AnalyzeOptions};
use icidtrace::cli::{
    self, AnalyzeArgs, Cli, ColorWhen, Command, CompletionsArgs, DEFAULT_WIDTH, Format, LogArgs,
    MIN_WIDTH, ManArgs, ReportFormat, exit,
};
use icidtrace::correlate::ClockHint;
use icidtrace::export;
use icidtrace::maillog::{LogSummary, SampleReason};
use icidtrace::redact::{self, Redactor};
use icidtrace::report;

mod progress;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Analyze(args) => run_analyze(&args),
        Command::Log(args) => run_log(&args),
        Command::Completions(args) => run_completions(&args),
        Command::Man(args) => run_man(&args),
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

/// Whether the table is coloured: `--color always` (not into a file), `--color never`, or, by
/// default, when standard output is a terminal, `NO_COLOR` is unset or empty and `TERM` is not
/// `dumb`. Only the table is ever coloured.
fn use_color(when: ColorWhen, table: bool, to_file: bool) -> bool {
    if !table || to_file {
        return false;
    }
    match when {
        ColorWhen::Never => false,
        ColorWhen::Always => true,
        ColorWhen::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
            !no_color && !dumb && io::stdout().is_terminal()
        }
    }
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
    if !cli::LIBPCAP && args.filter.as_deref().is_some_and(|f| !f.trim().is_empty()) {
        say(cli::NO_LIBPCAP_FILTER);
        return exit::BAD_INPUT;
    }
    let selection = match args.selection() {
        Ok(s) => s,
        Err(msg) => {
            say(&msg);
            return exit::BAD_INPUT;
        }
    };
    if args.format == ReportFormat::Jsonl {
        return run_jsonl(args, selection);
    }
    let selecting = args.connection.is_some() || args.icid.is_some();
    if selecting
        && matches!(
            args.format,
            ReportFormat::Csv | ReportFormat::Markdown | ReportFormat::Html
        )
    {
        say(
            "--connection and --icid tell one connection's story as text (or as JSON with --format json); \
             for a Markdown or HTML report of every connection, leave them out (or use --export DIR)",
        );
        return exit::BAD_INPUT;
    }
    // Everything about the export directory is checked before the analysis, which may be long.
    if let Some(dir) = &args.export {
        if args.captures.iter().any(|c| c == "-") {
            say(
                "--export reads the captures a second time to cut out each connection's packets: \
                 standard input cannot be read twice; save the capture to a file first",
            );
            return exit::BAD_INPUT;
        }
        if let Err(e) = export::prepare_dir(dir, args.force) {
            say(&e.to_string());
            return exit::BAD_INPUT;
        }
    }
    let clock = match (args.log_tz, args.clock_offset) {
        (Some(tz), _) => ClockHint::Zone(tz),
        (None, Some(s)) => ClockHint::Offset(s),
        (None, None) => ClockHint::Auto,
    };
    let bar = progress::Bar::new(!args.quiet && io::stderr().is_terminal());
    let opts = AnalyzeOptions {
        captures: args.captures.clone(),
        filter: args.filter.clone(),
        extra_ports: args.ports.clone(),
        logs: args.logs.clone(),
        clock,
        // Reports for a support case, and one connection's story, quote the log lines.
        log_lines: matches!(args.format, ReportFormat::Markdown | ReportFormat::Html)
            || selecting
            || args.export.is_some(),
        progress: bar.hook(),
        rows: None,
    };
    let report = analyze::analyze(&opts);
    bar.clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            say(&e.to_string());
            return exit::BAD_INPUT;
        }
    };
    if let Err(code) = check_logs_are_logs(report.logs.as_ref()) {
        return code;
    }
    // --client, --server, --since, --until, --only, --sort: for every output alike.
    let report = report::select::select(report, &selection);
    // Not freed: the process ends after the output, and freeing a large report row by row
    // (tens of thousands of connections) would only cost time.
    let report = std::mem::ManuallyDrop::new(report);
    let selected = match story(args, &report) {
        Ok(s) => s,
        Err(msg) => {
            say(&msg);
            return exit::BAD_INPUT;
        }
    };

    // What the user sees: the report, redacted when asked (one mapping for every output).
    let mut redactor = args.redacting().then(|| Redactor::new(args.redact_ips));
    let mut shown = match redactor.as_mut() {
        Some(r) => Cow::Owned(redact::redact_report(&report, r)),
        None => Cow::Borrowed(&*report),
    };
    // The selection's own prefixes name networks: with --redact-ips they go too (a single
    // address is replaced by its token like every other, by the scrub below).
    if args.redact_ips {
        if let Some(sel) = shown.to_mut().summary.selection.as_mut() {
            for p in sel.client.iter_mut().chain(sel.server.iter_mut()) {
                if let Some((_, len)) = p.split_once('/') {
                    *p = format!("redacted/{len}");
                }
            }
        }
    }
    let scrub = |text: String, r: &Option<Redactor>| match r {
        Some(r) => r.scrub(&text),
        None => text,
    };

    let file = output_file(args.output.as_deref());
    let width = || table_width(args.width, file.is_none());
    let table_opts = || report::table::TableOptions {
        width: width(),
        color: use_color(
            args.color,
            args.format == ReportFormat::Table && selected.is_none(),
            file.is_some(),
        ),
        verbose: args.verbose,
    };
    let text = match (&selected, args.format) {
        (Some(idx), ReportFormat::Json) => {
            let conns: Vec<&report::ConnectionReport> = idx
                .iter()
                .filter_map(|i| shown.connections.get(*i))
                .collect();
            let mut j = serde_json::to_string_pretty(&conns).unwrap_or_default();
            j.push('\n');
            j
        }
        (Some(idx), _) => report::detail::render(&shown, idx, width()),
        (None, ReportFormat::Table) => report::table::render_with(&shown, &table_opts()),
        (None, ReportFormat::Json) => report::json::render(&shown),
        (None, ReportFormat::Csv) => report::csv::render(&shown),
        (None, ReportFormat::Markdown) => report::markdown::render(&shown),
        (None, ReportFormat::Html) => report::html::render(&shown),
        (None, ReportFormat::Jsonl) => report::jsonl::render(&shown),
    };
    let text = scrub(text, &redactor);

    let mut export_failed = false;
    if let Some(dir) = &args.export {
        let files = export::ReportFiles {
            markdown: scrub(report::markdown::render(&shown), &redactor),
            html: scrub(report::html::render(&shown), &redactor),
            json: scrub(report::json::render(&shown), &redactor),
        };
        let eopts = export::ExportOptions {
            dir: dir.clone(),
            captures: args.captures.clone(),
            filter: args.filter.clone(),
            logs: args.logs.clone(),
            progress: bar.hook(),
        };
        let done = export::export(&report, &shown, &files, &eopts, redactor.as_mut());
        bar.clear();
        match done {
            Ok(x) => {
                for n in &x.notes {
                    say(&format!("warning: {n}"));
                }
                if !args.quiet {
                    say(&format!(
                        "exported {} files to {} ({} lists them)",
                        x.files.len(),
                        dir.display(),
                        dir.join("README.txt").display()
                    ));
                }
            }
            Err(e) => {
                say(&e.to_string());
                export_failed = true;
            }
        }
    }

    if let Err(code) = emit(&text, file) {
        return code;
    }
    if export_failed {
        return exit::BAD_INPUT;
    }
    // Damage is in the report (and the table); say it on stderr too when the output went
    // elsewhere. A damaged log is not in the table: say it always.
    let table_on_stdout = args.format == ReportFormat::Table && file.is_none() && !selecting;
    if !table_on_stdout {
        for p in &shown.problems {
            say(&format!("warning: {p}"));
        }
    }
    let log_damage = log_damage(report.logs.as_ref());
    for d in &log_damage {
        if !report.problems.iter().any(|p| p.contains(d.as_str())) {
            say(&format!("warning: {d}"));
        }
    }
    if !(report.problems.is_empty() && log_damage.is_empty()) {
        return exit::PARTIAL;
    }
    // --fail-on: any connection shown (the stories told, with --connection or --icid).
    let fail_on = args.fail_on();
    let shown_conns: Vec<&report::ConnectionReport> = match &selected {
        Some(idx) => idx
            .iter()
            .filter_map(|i| report.connections.get(*i))
            .collect(),
        None => report.connections.iter().collect(),
    };
    if shown_conns
        .iter()
        .any(|c| fail_on.iter().any(|k| k.matches(c)))
    {
        return exit::FINDINGS;
    }
    exit::OK
}

/// What `--format jsonl` cannot do, in words, if the arguments ask for it.
fn jsonl_refusal(
    args: &AnalyzeArgs,
    selection: &report::select::Selection,
) -> Option<&'static str> {
    if !args.logs.is_empty() {
        return Some(
            "it writes each connection as it ends, before a mail log could be lined up with \
             all of them: leave --log out, or use --format json",
        );
    }
    if args.export.is_some() || args.connection.is_some() || args.icid.is_some() {
        return Some(
            "it writes every connection as it ends: --export, --connection and --icid need the \
             whole report (use --format json)",
        );
    }
    if args.redacting() {
        return Some(
            "redaction needs the whole report to choose its tokens: use --format json --redact",
        );
    }
    if selection.sort != report::select::SortKey::default() {
        return Some("rows come in the order connections end: --sort needs the whole report");
    }
    None
}

/// `--format jsonl`: each connection's line as it ends (memory follows the open connections
/// only), then the closing summary line.
fn run_jsonl(args: &AnalyzeArgs, selection: report::select::Selection) -> i32 {
    use std::sync::{Arc, Mutex};

    if let Some(why) = jsonl_refusal(args, &selection) {
        say(&format!("--format jsonl: {why}"));
        return exit::BAD_INPUT;
    }
    let (sink, name): (Box<dyn Write + Send>, String) = match output_file(args.output.as_deref()) {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => (Box::new(io::BufWriter::new(f)), path.display().to_string()),
            Err(e) => {
                say(&format!("{}: cannot write: {e}", path.display()));
                return exit::BAD_INPUT;
            }
        },
        None => (
            Box::new(io::BufWriter::new(io::stdout())),
            "standard output".to_string(),
        ),
    };
    struct Out {
        sink: Box<dyn Write + Send>,
        failed: Option<io::Error>,
        /// A shown connection is of a kind --fail-on names.
        findings: bool,
    }
    let out = Arc::new(Mutex::new(Out {
        sink,
        failed: None,
        findings: false,
    }));
    let fail_on = args.fail_on();
    let rows = {
        let out = Arc::clone(&out);
        analyze::RowHook::new(move |c| {
            if !selection.keeps(c) {
                return;
            }
            let Ok(mut o) = out.lock() else { return };
            if o.failed.is_some() {
                return;
            }
            o.findings |= fail_on.iter().any(|k| k.matches(c));
            if let Err(e) = o
                .sink
                .write_all(report::jsonl::connection_line(c).as_bytes())
            {
                o.failed = Some(e);
            }
        })
    };
    let bar = progress::Bar::new(!args.quiet && io::stderr().is_terminal());
    let opts = AnalyzeOptions {
        captures: args.captures.clone(),
        filter: args.filter.clone(),
        extra_ports: args.ports.clone(),
        progress: bar.hook(),
        rows: Some(rows),
        ..AnalyzeOptions::default()
    };
    let result = analyze::analyze(&opts);
    bar.clear();
    let Ok(mut o) = out.lock() else {
        return exit::BAD_INPUT;
    };
    let report = match result {
        Ok(r) => std::mem::ManuallyDrop::new(r),
        Err(e) => {
            // The lines written so far stay: they are whole connections.
            let _ = o.sink.flush();
            say(&e.to_string());
            return exit::BAD_INPUT;
        }
    };
    if o.failed.is_none() {
        let closing = report::jsonl::closing_line(&report);
        if let Err(e) = o
            .sink
            .write_all(closing.as_bytes())
            .and_then(|_| o.sink.flush())
        {
            o.failed = Some(e);
        }
    }
    match o.failed.take() {
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => return exit::OK,
        Some(e) => {
            say(&format!("{name}: cannot write: {e}"));
            return exit::BAD_INPUT;
        }
        None => {}
    }
    for p in &report.problems {
        say(&format!("warning: {p}"));
    }
    if !report.problems.is_empty() {
        return exit::PARTIAL;
    }
    if o.findings {
        return exit::FINDINGS;
    }
    exit::OK
}

/// The connections `--connection` or `--icid` select (indices into the report), `None` when
/// neither was given; an error that says how to find the right one when nothing matches.
fn story(args: &AnalyzeArgs, report: &report::Report) -> Result<Option<Vec<usize>>, String> {
    story_in(args, report).map_err(|mut msg| {
        if report.summary.selection.is_some() {
            msg.push_str(
                " (only the connections --client, --server, --since, --until and --only keep \
                 were searched)",
            );
        }
        msg
    })
}

fn story_in(args: &AnalyzeArgs, report: &report::Report) -> Result<Option<Vec<usize>>, String> {
    let conns = &report.connections;
    if let Some(want) = args.connection {
        let found: Vec<usize> = (0..conns.len())
            .filter(|&i| conns[i].tcp.client == want)
            .collect();
        if !found.is_empty() {
            return Ok(Some(found));
        }
        let same_ip: Vec<u16> = conns
            .iter()
            .filter(|c| c.tcp.client.ip() == want.ip())
            .map(|c| c.tcp.client.port())
            .collect();
        let mut msg = format!("--connection {want}: no SMTP connection from {want} in the capture");
        if conns.iter().any(|c| c.tcp.server == want) {
            msg.push_str(&format!(
                "; {want} is a server's address: give the client's address and port"
            ));
        } else if !same_ip.is_empty() {
            let shown: Vec<String> = same_ip.iter().take(12).map(u16::to_string).collect();
            msg.push_str(&format!(
                "; {} has {} connection(s), from port(s) {}{}",
                want.ip(),
                same_ip.len(),
                shown.join(", "),
                if same_ip.len() > 12 { ", ..." } else { "" }
            ));
        } else {
            let mut clients: Vec<String> = conns
                .iter()
                .map(|c| c.tcp.client.ip().to_string())
                .collect();
            clients.dedup();
            clients.sort();
            clients.dedup();
            if clients.is_empty() {
                msg.push_str("; the capture holds no SMTP connection");
            } else {
                msg.push_str(&format!(
                    "; clients in the capture: {}{}",
                    clients
                        .iter()
                        .take(8)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    if clients.len() > 8 { ", ..." } else { "" }
                ));
            }
        }
        msg.push_str(
            ". The table's Connection column (icidtrace analyze CAPTURE) shows each client as \
             address:port; --format json lists them as connections[].client",
        );
        return Err(msg);
    }
    if let Some(icid) = args.icid {
        let found: Vec<usize> = (0..conns.len())
            .filter(|&i| conns[i].icid == Some(icid))
            .collect();
        if !found.is_empty() {
            return Ok(Some(found));
        }
        let mut msg =
            format!("--icid {icid}: no connection in the capture was matched to ICID {icid}");
        if let Some(u) = report.unmatched_icids.iter().find(|u| u.icid == icid) {
            msg.push_str(&format!(
                "; the log has it ({}), but no connection matched: {}",
                u.log_outcome.as_str(),
                u.reason
            ));
        } else {
            let matched: Vec<String> = conns
                .iter()
                .filter_map(|c| c.icid.map(|i| i.to_string()))
                .take(12)
                .collect();
            if matched.is_empty() {
                msg.push_str(
                    "; no connection was matched to any ICID (is it the log of this capture?)",
                );
            } else {
                msg.push_str(&format!("; ICIDs matched: {}", matched.join(", ")));
                if report.summary.matched as usize > matched.len() {
                    msg.push_str(", ...");
                }
            }
        }
        msg.push_str(
            ". The table's ICID column shows the ICID of each connection; `icidtrace log LOG` \
             lists every ICID of the log; --connection CLIENT:PORT selects by address instead",
        );
        return Err(msg);
    }
    Ok(None)
}

/// Refuses a "log" in which no line is a mail_logs line (a capture given as `--log`, say):
/// nothing of it could be used.
fn check_logs_are_logs(logs: Option<&LogSummary>) -> Result<(), i32> {
    let Some(logs) = logs else {
        return Ok(());
    };
    for f in &logs.files {
        let c = &f.counts;
        // No line at all that reads as an ESA log line: text, binary, or another program's
        // log (timestamped lines, none of them known).
        if c.records == c.unknown_records && c.records + c.unparsed_lines > 0 && f.damage.is_none()
        {
            let first = logs
                .samples
                .iter()
                .find(|s| s.file == f.path)
                .map_or(String::new(), |s| match s.reason {
                    SampleReason::Unknown => {
                        format!(" (line {}: a line of another program)", s.line)
                    }
                    _ => format!(" (line {}: no log timestamp)", s.line),
                });
            say(&format!(
                "{}: not a mail log: none of its {} lines is a mail_logs line{first}",
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

/// `icidtrace completions SHELL`: the script, from the same clap definitions as `--help`.
fn run_completions(args: &CompletionsArgs) -> i32 {
    let mut cmd = cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "icidtrace", &mut out);
    match emit(&String::from_utf8_lossy(&out), None) {
        Ok(()) => exit::OK,
        Err(code) => code,
    }
}

/// `icidtrace man [COMMAND]`: one page to standard output; `--out-dir DIR`: every page.
fn run_man(args: &ManArgs) -> i32 {
    let mut cmd = cli::command().disable_help_subcommand(true);
    cmd.build();
    // Every page names the build it documents (subcommands carry no version of their own).
    let page_of =
        |c: clap::Command| clap_mangen::Man::new(c).source(format!("icidtrace {}", cli::VERSION));
    let mut pages = vec![cmd.clone()];
    pages.extend(cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    if let Some(dir) = &args.out_dir {
        let mut names = Vec::new();
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            for p in &pages {
                let man = page_of(p.clone());
                names.push(man.get_filename());
                man.generate_to(dir)?;
            }
            Ok(())
        });
        return match written {
            Ok(()) => {
                say(&format!(
                    "wrote {} into {}",
                    names.join(", "),
                    dir.display()
                ));
                exit::OK
            }
            Err(e) => {
                say(&format!(
                    "{}: cannot write the man pages: {e}",
                    dir.display()
                ));
                exit::BAD_INPUT
            }
        };
    }
    let page = match &args.command {
        None => cmd,
        Some(name) => match pages[1..].iter().find(|c| c.get_name() == name.as_str()) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = pages[1..].iter().map(|c| c.get_name()).collect();
                say(&format!(
                    "man {name}: no such command; the pages are icidtrace and icidtrace-{{{}}}",
                    names.join(",")
                ));
                return exit::BAD_INPUT;
            }
        },
    };
    let mut out = Vec::new();
    if let Err(e) = page_of(page).render(&mut out) {
        say(&format!("cannot render the man page: {e}"));
        return exit::BAD_INPUT;
    }
    match emit(&String::from_utf8_lossy(&out), None) {
        Ok(()) => exit::OK,
        Err(code) => code,
    }
}
