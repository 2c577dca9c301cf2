//! Command-line flags into a validated configuration, and exit codes.
//!
//! Contract: everything the user types is checked here; the stages receive typed options.
//! No protocol rules live here. The same clap definitions give `--help`, the shell completions
//! (`icidtrace completions SHELL`) and the man pages (`icidtrace man`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum, ValueHint};

use crate::report::select::{self, Concern, IpPrefix, Selection, SortKey};
use crate::types::Timestamp;

/// Exit codes, as documented in `--help` and docs/.
pub mod exit {
    /// The analysis ran.
    pub const OK: i32 = 0;
    /// The analysis ran and `--fail-on` found a connection of a kind it names.
    pub const FINDINGS: i32 = 1;
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

/// Whether this build has the `libpcap` feature: BPF filters (`--filter`) and the pcaps of
/// `--export`.
pub const LIBPCAP: bool = cfg!(feature = "libpcap");

/// `--version`: the version and what the build can do.
#[cfg(feature = "libpcap")]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (libpcap)");
/// `--version`: the version and what the build can do.
#[cfg(not(feature = "libpcap"))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (pure Rust, no libpcap)");

/// Why `--filter` cannot work in a build without libpcap, and what to do instead.
pub const NO_LIBPCAP_FILTER: &str = "--filter needs libpcap (BPF filters are compiled by it), \
     and this icidtrace was built without it (cargo feature `libpcap`, see `icidtrace --version`): \
     rebuild with the default features (Debian/Ubuntu: apt-get install libpcap-dev; macOS: \
     nothing to install; Windows: the Npcap SDK), e.g. `cargo install --path .`, or leave out \
     --filter and choose connections with --client, --server, --since, --until or --port";

const AFTER_HELP: &str = concat!(
    "Examples:\n",
    "  icidtrace analyze capture.pcap                     # the capture alone: a verdict per connection\n",
    "  icidtrace analyze capture.pcap --log mail.current  # with the mail log: ICIDs, does it agree\n",
    "  tcpdump -i eth0 -s 0 -w - port 25 | icidtrace analyze -\n",
    "  icidtrace analyze capture.pcap --log mail.current --only aborted --sort verdict\n",
    "  icidtrace analyze capture.pcap --log mail.current --format html -o report.html\n",
    "  icidtrace analyze capture.pcap --log mail.current --export case-1234   # for a support case\n",
    "  icidtrace log mail.current                         # the log alone, before any capture\n",
    "  icidtrace completions bash > ~/.local/share/bash-completion/completions/icidtrace\n",
    "  icidtrace man --out-dir ~/.local/share/man/man1\n",
    "\n",
    "Colour only on a terminal, never with NO_COLOR set (--color always|never overrides).\n",
    "Docs: README.md and docs/user-guide.md, docs/verdicts.md in the source.\n",
    "\n",
    "Exit codes:\n",
    "  0  the analysis ran\n",
    "  1  analyze --fail-on KIND was given and a connection shown is of that kind\n",
    "  2  bad arguments, or an input that could not be used at all\n",
    "  3  the analysis ran, but an input was damaged (results cover what could be read)"
);

#[derive(Debug, Parser)]
#[command(
    name = "icidtrace",
    version = VERSION,
    about = "Tells from a packet capture taken on a Cisco Email Security Appliance how each SMTP \
             connection ended, and who ended it",
    long_about = "Tells from a packet capture taken on a Cisco Email Security Appliance how each \
                  SMTP connection ended, and who ended it: for the mail log's \"Receiving \
                  aborted\" and \"Receiving aborted by sender\", whether the sender, the network, \
                  a device in the path or the appliance's idle timeout ended the session, at which \
                  SMTP step, and whether the mail log tells the same story.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the analyze variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rebuild every TCP/SMTP session in the captures and print a verdict per connection.
    #[command(after_help = concat!(
        "Examples:\n",
        "  icidtrace analyze capture.pcap                            # the capture alone\n",
        "  icidtrace analyze capture.pcap --log mail.current         # with the mail log\n",
        "  tcpdump -i eth0 -s 0 -w - port 25 | icidtrace analyze -   # live, from standard input\n",
        "  icidtrace analyze a.pcap b.pcapng.gz --format json > report.json\n",
        "  icidtrace analyze big.pcap --filter 'host 198.51.100.7' --port 10025\n",
        "  icidtrace analyze capture.pcap --log mail.current --log mail.@20140814T110431.s\n",
        "  icidtrace analyze capture.pcap --log mail.current --log-tz Europe/Berlin\n",
        "  icidtrace analyze capture.pcap --client 198.51.100.0/24 --since '2026-11-23 16:30:00'\n",
        "  icidtrace analyze capture.pcap --log mail.current --only aborted,disagreeing -v\n",
        "  icidtrace analyze capture.pcap --format csv -o report.csv\n",
        "  icidtrace analyze capture.pcap --log mail.current --connection 198.51.100.10:50542\n",
        "  icidtrace analyze capture.pcap --log mail.current --icid 45001\n",
        "  icidtrace analyze capture.pcap --log mail.current --format html -o case-1234.html\n",
        "  icidtrace analyze capture.pcap --log mail.current --export case-1234 --redact\n",
        "  icidtrace analyze capture.pcap --fail-on aborted -q > /dev/null || echo 'aborted connections'\n",
        "\n",
        "Selection: --client, --server, --since, --until and --only choose the connections every\n",
        "output shows (table, json, csv, markdown, html, --export); each keeps its number (#) from\n",
        "the whole capture, and the summary counts stay those of every connection read.\n",
        "Times are UTC unless they say otherwise: 2026-11-23T16:29:58Z, '2026-11-23 16:29:58',\n",
        "'2026-11-23 17:29:58 +01:00', '2026-11-23 17:29:58 Europe/Berlin'.\n",
        "\n",
        "Table width: --width, else $COLUMNS, else the terminal's width, else 100 columns\n",
        "(when standard output is not a terminal, or with -o FILE).\n",
        "Colour (the verdict's layer): only in the table on a terminal; never with NO_COLOR set,\n",
        "in JSON, CSV, Markdown or HTML, or in a file; --color always|never overrides.\n",
        "\n",
        "Exit codes:\n",
        "  0  the analysis ran\n",
        "  1  --fail-on KIND was given and a connection shown is of that kind\n",
        "  2  bad arguments, or an input that could not be used at all\n",
        "  3  the analysis ran, but an input was damaged (results cover what could be read;\n",
        "     it wins over 1)"
    ))]
    Analyze(AnalyzeArgs),
    /// Read mail_logs alone: one row per ICID and a summary of aborts, before any capture exists.
    #[command(after_help = concat!(
        "Examples:\n",
        "  icidtrace log mail.current\n",
        "  icidtrace log mail.@*.s mail.current --format json\n",
        "  icidtrace log messages --year 2025          # a syslog copy: its lines carry no year\n\n",
        "Exit codes:\n",
        "  0  the log was read\n",
        "  2  bad arguments, or a log file that could not be read at all\n",
        "  3  a log file was damaged (e.g. a truncated .gz): results cover what could be read"
    ))]
    Log(LogArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = concat!(
        "Examples:\n",
        "  icidtrace completions bash > ~/.local/share/bash-completion/completions/icidtrace\n",
        "  icidtrace completions zsh > ~/.zfunc/_icidtrace    # with fpath+=(~/.zfunc) before compinit\n",
        "  icidtrace completions fish > ~/.config/fish/completions/icidtrace.fish\n",
        "  icidtrace completions powershell | Out-String | Invoke-Expression   # in $PROFILE\n\n",
        "Exit codes:\n",
        "  0  the script was printed\n",
        "  2  bad arguments (an unknown shell)"
    ))]
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write every page into a directory.
    #[command(after_help = concat!(
        "Examples:\n",
        "  icidtrace man | man -l -                      # read it now\n",
        "  icidtrace man analyze > icidtrace-analyze.1\n",
        "  icidtrace man --out-dir ~/.local/share/man/man1   # then: man icidtrace-analyze\n\n",
        "Exit codes:\n",
        "  0  the page was printed (or the pages written)\n",
        "  2  bad arguments, or a directory that cannot be written"
    ))]
    Man(ManArgs),
}

/// `icidtrace completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `icidtrace man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The page of one command (analyze, log, completions, man) instead of icidtrace(1).
    #[arg(value_name = "COMMAND", conflicts_with = "out_dir")]
    pub command: Option<String>,

    /// Write every page (icidtrace.1, icidtrace-analyze.1, ...) into DIR, created if missing,
    /// instead of printing one.
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub out_dir: Option<PathBuf>,
}

/// The clap definition of the whole command line (for completions and man pages).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
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
    /// JSON Lines: each connection's object as soon as it ends, then a summary line; memory
    /// stays flat however large the capture. Not with --log, --export, --redact or --sort.
    Jsonl,
}

/// When to colour the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorWhen {
    /// When standard output is a terminal, NO_COLOR is not set and TERM is not dumb.
    #[default]
    Auto,
    /// Always (also into a pipe or with NO_COLOR set); never into a file given with -o.
    Always,
    /// Never.
    Never,
}

/// What `--only` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnlyKind {
    /// Every connection (the default).
    All,
    /// Ended without a clean QUIT (every layer but none).
    Aborted,
    /// The mail log tells another story than the wire (✗; needs --log).
    Disagreeing,
    /// With findings: signs of a device in the path, path trouble.
    Findings,
}

/// What `--fail-on` fails on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// A connection shown ended without a clean QUIT.
    Aborted,
    /// A connection shown disagrees with the mail log (needs --log).
    Disagreeing,
    /// A connection shown has findings (a device in the path, path trouble).
    Findings,
}

impl FailOn {
    pub fn concern(self) -> Concern {
        match self {
            FailOn::Aborted => Concern::Aborted,
            FailOn::Disagreeing => Concern::Disagreeing,
            FailOn::Findings => Concern::Findings,
        }
    }
}

/// The order of the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SortBy {
    /// By first packet time.
    #[default]
    Start,
    /// Longest first.
    Duration,
    /// By layer (application, network, timeout, server, unknown, none), then cause, then start.
    Verdict,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng, plain or gzip-compressed); `-` reads standard input.
    #[arg(required = true, value_name = "CAPTURE", value_hint = ValueHint::FilePath)]
    pub captures: Vec<String>,

    /// Only packets matching this BPF filter (tcpdump syntax), e.g. 'host 198.51.100.7'.
    /// Needs a build with libpcap (see --version).
    #[arg(short = 'f', long, value_name = "BPF", help_heading = "Input")]
    pub filter: Option<String>,

    /// Also treat this server port as SMTP (besides 25, 587, 2525 and any port whose server
    /// greets with 220). Repeatable.
    #[arg(short = 'p', long = "port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..), help_heading = "Input")]
    pub ports: Vec<u16>,

    /// The appliance's mail_logs (on-box files, rotated names, syslog copies, .gz); each
    /// connection is matched to its ICID. Repeatable.
    #[arg(short = 'l', long = "log", value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Input")]
    pub logs: Vec<PathBuf>,

    /// The log's time zone (IANA name, e.g. Europe/Berlin); only the clock skew is then searched.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone, conflicts_with = "clock_offset", requires = "logs", help_heading = "Input")]
    pub log_tz: Option<chrono_tz::Tz>,

    /// The log's clock minus UTC, in seconds (e.g. 7200 for a log two hours ahead); no search.
    #[arg(
        long,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        requires = "logs",
        help_heading = "Input"
    )]
    pub clock_offset: Option<i64>,

    /// Only connections from this client address or prefix (198.51.100.7, 198.51.100.0/24,
    /// 2001:db8::/32). Repeatable: any of them.
    #[arg(long = "client", value_name = "IP[/LEN]", value_parser = parse_prefix, help_heading = "Selection")]
    pub clients: Vec<IpPrefix>,

    /// Only connections to this server address or prefix (the appliance's listener).
    /// Repeatable: any of them.
    #[arg(long = "server", value_name = "IP[/LEN]", value_parser = parse_prefix, help_heading = "Selection")]
    pub servers: Vec<IpPrefix>,

    /// Only connections still open at or after TIME (last packet at or after it). RFC 3339, or
    /// 'YYYY-MM-DD HH:MM:SS' in UTC, optionally followed by an offset or a zone name.
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "Selection")]
    pub since: Option<Timestamp>,

    /// Only connections already open at or before TIME (first packet at or before it); same
    /// forms as --since.
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "Selection")]
    pub until: Option<Timestamp>,

    /// Only connections of these kinds, comma-separated or repeated (any of them).
    #[arg(
        long,
        value_enum,
        value_name = "KIND",
        value_delimiter = ',',
        default_value = "all",
        help_heading = "Selection"
    )]
    pub only: Vec<OnlyKind>,

    /// The order of the connections.
    #[arg(long, value_enum, value_name = "KEY", default_value_t = SortBy::Start, help_heading = "Selection")]
    pub sort: SortBy,

    /// Tell one connection's whole story instead of the table: timeline, verdict and why, log
    /// lines. The client's address and port as in the table (IPv6: [addr]:port).
    #[arg(long, value_name = "CLIENT:PORT", value_parser = parse_client, conflicts_with = "icid", help_heading = "Selection")]
    pub connection: Option<SocketAddr>,

    /// Tell the story of the connection matched to this ICID (needs --log).
    #[arg(long, value_name = "N", requires = "logs", help_heading = "Selection")]
    pub icid: Option<u64>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table, help_heading = "Output")]
    pub format: ReportFormat,

    /// Write the output to this file instead of standard output (`-`: standard output).
    #[arg(short = 'o', long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Output")]
    pub output: Option<PathBuf>,

    /// Table width in columns, at least 40 (default: $COLUMNS, else the terminal's width, else
    /// 100 when standard output is not a terminal or -o FILE is given).
    #[arg(long, value_name = "COLUMNS", value_parser = clap::value_parser!(u16).range(MIN_WIDTH as i64..), help_heading = "Output")]
    pub width: Option<u16>,

    /// Colour the verdicts in the table: auto (on a terminal, unless NO_COLOR is set), always,
    /// never. JSON, CSV, Markdown, HTML and -o FILE are never coloured.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto, help_heading = "Output")]
    pub color: ColorWhen,

    /// More detail in the table: -v adds under it the evidence of each aborted or disagreeing
    /// connection (times, facts, what to check, a Wireshark filter); -vv of every connection.
    #[arg(short = 'v', long, action = ArgAction::Count, conflicts_with = "quiet", help_heading = "Output")]
    pub verbose: u8,

    /// No progress bar (it is shown only on a terminal, for long runs) and no --export summary
    /// line; warnings and errors are still printed.
    #[arg(short = 'q', long, help_heading = "Output")]
    pub quiet: bool,

    /// Exit with 1 when a connection shown is of one of these kinds (comma-separated or
    /// repeated), for scripts and monitoring; exit code 3 (damaged input) wins over it.
    #[arg(
        long,
        value_enum,
        value_name = "KIND",
        value_delimiter = ',',
        help_heading = "Output"
    )]
    pub fail_on: Vec<FailOn>,

    /// Write what a support case needs into DIR: the report as Markdown, HTML and JSON, a pcap
    /// and the log lines of each aborted or disagreeing connection, and a README.txt listing
    /// them. DIR is created if missing and must be empty unless --force is given. The pcaps
    /// need a build with libpcap (see --version).
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, help_heading = "Support case")]
    pub export: Option<PathBuf>,

    /// With --export: write into a directory that is not empty (the files of an earlier export
    /// are replaced, other files are kept).
    #[arg(long, requires = "export", help_heading = "Support case")]
    pub force: bool,

    /// Replace e-mail local parts and host names (EHLO, reverse DNS, banner, replies, log
    /// lines) by tokens, the same original always by the same token (user-1@domain-1.example,
    /// host-2.example), in every output and in exported pcaps.
    #[arg(long, help_heading = "Support case")]
    pub redact: bool,

    /// --redact, and IP addresses too (documentation-range tokens, also in pcap headers).
    #[arg(long, help_heading = "Support case")]
    pub redact_ips: bool,
}

impl AnalyzeArgs {
    /// Whether names (and with `--redact-ips`, addresses) are to be redacted.
    pub fn redacting(&self) -> bool {
        self.redact || self.redact_ips
    }

    /// The connections to show, from `--client`, `--server`, `--since`, `--until`, `--only`
    /// and `--sort`; an error for combinations that cannot mean anything.
    pub fn selection(&self) -> Result<Selection, String> {
        if let (Some(a), Some(b)) = (self.since, self.until) {
            if a > b {
                return Err(format!(
                    "--since {} is after --until {}: no connection could be shown; swap them",
                    a.to_rfc3339(),
                    b.to_rfc3339()
                ));
            }
        }
        let only: Vec<Concern> = if self.only.contains(&OnlyKind::All) {
            if self.only.len() > 1 {
                return Err(
                    "--only all cannot be combined with other kinds: give all, or the kinds \
                     (aborted, disagreeing, findings)"
                        .into(),
                );
            }
            Vec::new()
        } else {
            let mut v: Vec<Concern> = self
                .only
                .iter()
                .map(|k| match k {
                    OnlyKind::Aborted => Concern::Aborted,
                    OnlyKind::Disagreeing => Concern::Disagreeing,
                    _ => Concern::Findings,
                })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        if self.logs.is_empty() {
            if only.contains(&Concern::Disagreeing) {
                return Err(
                    "--only disagreeing needs --log: only a connection matched to its \
                            ICID in the mail log can disagree with it"
                        .into(),
                );
            }
            if self.fail_on.contains(&FailOn::Disagreeing) {
                return Err(
                    "--fail-on disagreeing needs --log: only a connection matched to \
                            its ICID in the mail log can disagree with it"
                        .into(),
                );
            }
        }
        Ok(Selection {
            clients: self.clients.clone(),
            servers: self.servers.clone(),
            since: self.since,
            until: self.until,
            only,
            sort: match self.sort {
                SortBy::Start => SortKey::Start,
                SortBy::Duration => SortKey::Duration,
                SortBy::Verdict => SortKey::Verdict,
            },
        })
    }

    /// The kinds `--fail-on` names.
    pub fn fail_on(&self) -> Vec<Concern> {
        let mut v: Vec<Concern> = self.fail_on.iter().map(|f| f.concern()).collect();
        v.sort();
        v.dedup();
        v
    }
}

fn parse_prefix(s: &str) -> Result<IpPrefix, String> {
    s.parse()
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    select::parse_time(s)
}

fn parse_client(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse::<SocketAddr>().map_err(|_| {
        format!(
            "'{s}' is not CLIENT:PORT: give the client's address and port as the table shows \
             them, e.g. 198.51.100.10:50542, or [2001:db8::7]:40000 for IPv6"
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
    #[arg(required = true, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub logs: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the output to this file instead of standard output (`-`: standard output).
    #[arg(short = 'o', long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub output: Option<PathBuf>,

    /// Table width in columns, at least 40 (default: $COLUMNS, else the terminal's width, else
    /// 100 when standard output is not a terminal or -o FILE is given).
    #[arg(long, value_name = "COLUMNS", value_parser = clap::value_parser!(u16).range(MIN_WIDTH as i64..))]
    pub width: Option<u16>,

    /// Year of the first syslog line (syslog lines carry none; default: from the file's date).
    #[arg(long, value_name = "YEAR")]
    pub year: Option<i32>,
}
