//! Command-line flags into a validated configuration, and exit codes.
//!
//! Contract: everything the user types is checked here; the stages receive typed options.
//! No protocol rules live here.

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

const AFTER_HELP: &str = "\
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
        "  icidtrace analyze big.pcap --filter 'host 198.51.100.7' --port 10025\n\n",
        "Exit codes:\n",
        "  0  the analysis ran\n",
        "  2  bad arguments, or an input that could not be used at all\n",
        "  3  the analysis ran, but an input was damaged (results cover what could be read)"
    ))]
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
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
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the output to this file instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Table width in columns (default: the terminal's width, or 100 when not a terminal).
    #[arg(long, value_name = "COLUMNS")]
    pub width: Option<u16>,
}
