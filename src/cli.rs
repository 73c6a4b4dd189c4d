//! The command line as typed: raw flags only. `app` turns them into validated settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::hermes::home::LogFile;

#[derive(Debug, Parser)]
#[command(
    name = "hermes-warden",
    version,
    about = "Finds revoked Hermes Agent credentials in the logs and takes them out of rotation"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The Hermes home (default: $HERMES_HOME, else ~/.hermes)
    #[arg(long, global = true, value_name = "DIR")]
    pub hermes_home: Option<PathBuf>,
    /// Look at the profile <home>/profiles/NAME instead of the root
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        conflicts_with = "all_profiles"
    )]
    pub profile: Option<String>,
    /// Look at the root and every profile
    #[arg(long, global = true)]
    pub all_profiles: bool,
    /// Configuration file (default: <home>/warden.toml, if present)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More rule files (*.toml) that add or replace rules by id
    #[arg(long, global = true, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Time zone of the Hermes log times (default: the system's)
    #[arg(long, global = true, value_name = "ZONE")]
    pub tz: Option<String>,
    /// The Hermes version whose rules apply (default: found from the installed `hermes`)
    #[arg(long, global = true, value_name = "X.Y.Z")]
    pub hermes_version: Option<String>,
    /// More of the warden's own log on stderr (-v: what it does, -vv: details)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Pretend the time is this RFC 3339 instant (reproducible reports)
    #[arg(long, global = true, hide = true, value_name = "TIME")]
    pub now: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
    Markdown,
}

/// What makes `scan --fail-on` exit 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// A credential dead in auth.json, or one the warden would mark or marked dead
    Dead,
    /// A compaction provider with no usable credential
    AtRisk,
    /// Any of these, or any credential failure at all
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
    /// The state gauges once, in Prometheus's text format (for cron and node_exporter's
    /// textfile collector)
    Prometheus,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Follow the logs, mark failed credentials dead and keep them dead (see <home>/warden/)
    Watch {
        /// Run the whole pipeline but write nothing to auth.json
        #[arg(long)]
        dry_run: bool,
        /// Address for /metrics (served once the metrics land; accepted now so service files keep working)
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9745")]
        listen: String,
        /// Seconds between checks when no file-system event arrives (default: 1, or the config's)
        #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
        poll_interval: Option<f64>,
        /// Wait for a Hermes home that does not exist yet instead of failing
        #[arg(long)]
        wait_for_home: bool,
        /// Also write the metrics to this file, atomically, for node_exporter's textfile
        /// collector (where no port may be opened)
        #[arg(long, value_name = "PATH")]
        textfile: Option<std::path::PathBuf>,
    },
    /// One pass over the current and rotated logs and auth.json: what happened, what would be done
    Scan {
        #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
        format: ScanFormat,
        /// Carry the actions out: mark the credentials dead in auth.json (default: dry run)
        #[arg(long)]
        apply: bool,
        /// List every event and every action too (the table and markdown; JSON always does)
        #[arg(long)]
        events: bool,
        /// Exit 3, after the report, when it holds something of this kind (for cron and CI)
        #[arg(long, value_enum, value_name = "KIND")]
        fail_on: Option<FailOn>,
    },
    /// Every credential of every pool: state, reason, since when, time left, compaction risk
    Status {
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
    /// Check or try the rules
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Undo a dead mark: clear the credential's status fields and drop it from the ledger
    Revive {
        /// The pool's provider (openai-codex, anthropic, custom:NAME, ...)
        provider: String,
        /// The credential's id or label
        credential: String,
    },
}

/// A number of seconds above zero (and finite).
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        Ok(_) => Err("must be a number of seconds above zero".into()),
        Err(error) => Err(error.to_string()),
    }
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load and validate every rule and run every rule's samples
    Check,
    /// Run log lines through the rules and show what matched (like fail2ban-regex)
    Test {
        /// A log file, or - for standard input
        #[arg(default_value = "-")]
        input: String,
        /// Which Hermes log the lines come from (selects the rules that apply)
        #[arg(long, value_enum, default_value = "errors.log")]
        log: LogFile,
    },
}
