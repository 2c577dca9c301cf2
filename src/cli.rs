//! Command-line flags into a validated configuration, and exit codes.
//!
//! Contract: everything the user types is checked here; the stages receive typed options.
//! No protocol rules live here.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes, as documented in `--help` and docs/.
pub mod exit {
    /// The analysis ran.
    pub const OK: i32 = 0;
    /// Bad arguments, or input that could not be used at all.
    pub const BAD_INPUT: i32 = 2;
    /// The analysis ran, but an input was damaged: results cover what could be read.
    pub const PARTIAL: i32 = 3;
}

/// The smallest `--width` accepted: below it no table layout stays readable.
pub const MIN_WIDTH: u16 = 40;

/// The table width when standard output is not a terminal (a pipe, a file, `-o FILE`) and
/// neither `--width` nor `COLUMNS` says otherwise.
pub const DEFAULT_WIDTH: u16 = 100;

const AFTER_HELP: &str = "\
Examples:
  icidtrace analyze capture.pcap
  icidtrace analyze capture.pcap --log mail_logs --format json > report.json
  tcpdump -i eth0 -s 0 -w - port 25 | icidtrace analyze -
  icidtrace log mail.current

Exit codes:
  0  the analysis ran
  2  bad arguments, or an input that could not be used at all
  3  the analysis ran, but an input was damaged (results cover what could be read)";

#[derive(Debug, Parser)]
#[command(name = "icidtrace", version, about = "Tells from a packet capture taken on a Cisco Email Security Appliance how each SMTP connection ended, and who ended it", after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rebuild every TCP/SMTP session in the captures and print a verdict per connection.
    #[command(after_help = concat!(
        "Examples:\n",
        "  icidtrace analyze capture.pcap\n",
        "  icidtrace analyze a.pcap b.pcapng.gz --format json > report.json\n",
        "  tcpdump -i eth0 -w - port 25 | icidtrace analyze -\n",
        "  icidtrace analyze big.pcap --filter 'host 198.51.100.7' --port 10025\n",
        "  icidtrace analyze capture.pcap --log mail.current --log mail.@20140814T110431.s\n",
        "  icidtrace analyze capture.pcap --log mail_logs --log-tz Europe/Berlin\n",
        "  icidtrace analyze capture.pcap --format csv -o report.csv\n",
        "  icidtrace analyze capture.pcap --log mail_logs --connection 198.51.100.10:50542\n",
        "  icidtrace analyze capture.pcap --log mail_logs --icid 45001\n",
        "  icidtrace analyze capture.pcap --log mail_logs --export case-123 --redact\n\n",
        "Table width: --width, else $COLUMNS, else the terminal's width, else 100 columns\n",
        "(when standard output is not a terminal, or with -o FILE).\n\n",
        "Exit codes:\n",
        "  0  the analysis ran\n",
        "  2  bad arguments, or an input that could not be used at all\n",
        "  3  the analysis ran, but an input was damaged (results cover what could be read)"
    ))]
    Analyze(AnalyzeArgs),
    /// Read mail_logs alone: one row per ICID and a summary of aborts, before any capture exists.
    #[command(after_help = concat!(
        "Examples:\n",
        "  icidtrace log mail.current\n",
        "  icidtrace log mail.@*.s mail.current --format json\n\n",
        "Exit codes:\n",
        "  0  the log was read\n",
        "  2  bad arguments, or a log file that could not be read at all\n",
        "  3  a log file was damaged (e.g. a truncated .gz): results cover what could be read"
    ))]
    Log(LogArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Output formats of `analyze`: the log's plus the reports meant for a support case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The verdict table, for the terminal.
    Table,
    /// Everything, for scripts (stable field names).
    Json,
    /// One row per connection.
    Csv,
    /// A report to paste or attach: summary, verdicts, and the story of each aborted connection.
    Markdown,
    /// One self-contained HTML file with ladder diagrams; opens anywhere, offline.
    Html,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng, plain or gzip-compressed); `-` reads standard input.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<String>,

    /// Only packets matching this BPF filter (tcpdump syntax), e.g. 'host 198.51.100.7'.
    #[arg(short = 'f', long, value_name = "BPF")]
    pub filter: Option<String>,

    /// Also treat this server port as SMTP (besides 25, 587, 2525 and any port whose server
    /// greets with 220). Repeatable.
    #[arg(short = 'p', long = "port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,

    /// Write the output to this file instead of standard output (`-`: standard output).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Table width in columns, at least 40 (default: $COLUMNS, else the terminal's width, else
    /// 100 when standard output is not a terminal or -o FILE is given).
    #[arg(long, value_name = "COLUMNS", value_parser = clap::value_parser!(u16).range(MIN_WIDTH as i64..))]
    pub width: Option<u16>,

    /// The appliance's mail_logs (on-box files, rotated names, syslog copies, .gz); each
    /// connection is matched to its ICID. Repeatable.
    #[arg(short = 'l', long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,

    /// The log's time zone (IANA name, e.g. Europe/Berlin); only the clock skew is then searched.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone, conflicts_with = "clock_offset", requires = "logs")]
    pub log_tz: Option<chrono_tz::Tz>,

    /// The log's clock minus UTC, in seconds (e.g. 7200 for a log two hours ahead); no search.
    #[arg(
        long,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        requires = "logs"
    )]
    pub clock_offset: Option<i64>,

    /// Tell one connection's whole story instead of the table: timeline, verdict and why, log
    /// lines. The client's address and port as in the table (IPv6: [addr]:port).
    #[arg(long, value_name = "CLIENT:PORT", value_parser = parse_client, conflicts_with = "icid")]
    pub connection: Option<SocketAddr>,

    /// Tell the story of the connection matched to this ICID (needs --log).
    #[arg(long, value_name = "N", requires = "logs")]
    pub icid: Option<u64>,

    /// Write what a support case needs into DIR: the report as Markdown, HTML and JSON, a pcap
    /// and the log lines of each aborted or disagreeing connection, and a README.txt listing
    /// them. DIR is created if missing and must be empty unless --force is given.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,

    /// With --export: write into a directory that is not empty (the files of an earlier export
    /// are replaced, other files are kept).
    #[arg(long, requires = "export")]
    pub force: bool,

    /// Replace e-mail local parts and host names (EHLO, reverse DNS, banner, replies, log
    /// lines) by tokens, the same original always by the same token (user-1@domain-1.example,
    /// host-2.example), in every output and in exported pcaps.
    #[arg(long)]
    pub redact: bool,

    /// --redact, and IP addresses too (documentation-range tokens, also in pcap headers).
    #[arg(long)]
    pub redact_ips: bool,

    /// No progress bar (it is shown only on a terminal, for long runs) and no --export summary
    /// line; warnings and errors are still printed.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

impl AnalyzeArgs {
    /// Whether names (and with `--redact-ips`, addresses) are to be redacted.
    pub fn redacting(&self) -> bool {
        self.redact || self.redact_ips
    }
}

fn parse_client(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse::<SocketAddr>().map_err(|_| {
        format!(
            "'{s}' is not CLIENT:PORT: give the client's address and port as the table shows              them, e.g. 198.51.100.10:50542, or [2001:db8::7]:40000 for IPv6"
        )
    })
}

fn parse_zone(s: &str) -> Result<chrono_tz::Tz, String> {
    s.parse::<chrono_tz::Tz>().map_err(|_| {
        format!("'{s}' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)")
    })
}

/// `icidtrace log`: the mail log on its own.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// mail_logs files (on-box, rotated, syslog, .gz).
    #[arg(required = true, value_name = "FILE")]
    pub logs: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the output to this file instead of standard output (`-`: standard output).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Table width in columns, at least 40 (default: $COLUMNS, else the terminal's width, else
    /// 100 when standard output is not a terminal or -o FILE is given).
    #[arg(long, value_name = "COLUMNS", value_parser = clap::value_parser!(u16).range(MIN_WIDTH as i64..))]
    pub width: Option<u16>,

    /// Year of the first syslog line (syslog lines carry none; default: from the file's date).
    #[arg(long, value_name = "YEAR")]
    pub year: Option<i32>,
}
