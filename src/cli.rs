//! The command line. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::shard::ShardArg;
use crate::vocab::MailboxName;

/// Sort IMAP mail on the server, the moment it arrives, by YAML rules.
#[derive(Debug, Parser)]
#[command(name = "imapsort", version, about, long_about = None)]
pub struct Cli {
    /// Log line format on stderr (journald fields are used when JOURNAL_STREAM is set).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TriggerArg {
    New,
    Sweep,
}

/// The configuration file option shared by every command that reads one.
#[derive(Clone, Debug, Args)]
pub struct ConfigArg {
    /// Configuration file [default: $IMAPSORT_CONFIG, else $XDG_CONFIG_HOME/imapsort/config.yaml,
    /// else /etc/imapsort/config.yaml]
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration file; print every error and warning.
    Check(CheckArgs),
    /// Evaluate the rules against message files, without a server.
    Test(TestArgs),
    /// One pass of all rules (both triggers) over existing mail.
    Sweep(SweepArgs),
    /// Run the daemon: IDLE push, sweeps, hot reload.
    Run(RunArgs),
    /// List mailboxes with their special use and message counts.
    Folders(FoldersArgs),
    /// Show what the state database knows: last handled UIDs, errors, recent actions.
    Status(StatusArgs),
    /// Sign an `auth: oauth2` account in once (OAuth 2.0); the daemon refreshes from then on.
    Login(LoginArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Account the messages belong to [default: the first account, if any].
    #[arg(long)]
    pub account: Option<String>,
    /// Mailbox the messages are in.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: MailboxName,
    /// Flags the messages carry, comma-separated ('\Seen,\Flagged,work').
    #[arg(long, value_delimiter = ',')]
    pub flags: Vec<String>,
    /// Arrival time (RFC 3339) [default: the Date header, else now].
    #[arg(long, value_name = "RFC3339")]
    pub received: Option<String>,
    /// Evaluate only rules of this trigger [default: both].
    #[arg(long, value_enum)]
    pub trigger: Option<TriggerArg>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Message files (RFC 5322, as .eml).
    #[arg(required = true, value_name = "MESSAGE.eml")]
    pub messages: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only this mailbox (INBOX in any spelling is INBOX).
    #[arg(long)]
    pub mailbox: Option<MailboxName>,
    /// Show what would happen; change nothing on the server.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// How long to wait for a mailbox another imapsort process (the daemon, another sweep)
    /// is working on, before giving up with exit 75 (e.g. 90s, 5m, 0s).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub wait: std::time::Duration,
    #[command(flatten)]
    pub shard: ShardArg,
}

/// A duration as the configuration writes them (`90s`, `10m`, `1h 30m`); here zero is
/// allowed (`--wait 0s`: do not wait).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    use crate::config::units::{UnitError, parse_duration};
    match parse_duration(text) {
        Ok(d) => Ok(d),
        Err(UnitError::ZeroDuration) => Ok(std::time::Duration::ZERO),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub shard: ShardArg,
    /// Serve /metrics and /health on HOST:PORT instead of settings.metrics_listen (for several
    /// instances of one configuration on one host).
    #[arg(long, value_name = "HOST:PORT", env = "IMAPSORT_METRICS_LISTEN", value_parser = parse_listen)]
    pub metrics_listen: Option<crate::config::ListenAddr>,
}

fn parse_listen(s: &str) -> Result<crate::config::ListenAddr, String> {
    crate::config::parse_listen_addr(s)
        .map_err(|why| format!("{why} (expected HOST:PORT, e.g. 127.0.0.1:9898)"))
}

#[derive(Debug, Args)]
pub struct FoldersArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this account.
    #[arg(long)]
    pub account: Option<String>,
}

/// How `imapsort login` signs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoginMethod {
    /// Show a code to enter at the provider's page, on any device (RFC 8628).
    Device,
    /// Open a URL in a browser; it comes back to a listener on 127.0.0.1, or paste the address
    /// it ended on (RFC 8252, PKCE).
    Browser,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The account to sign in (it must have auth: oauth2).
    #[arg(value_name = "ACCOUNT")]
    pub account: String,
    /// Sign-in method [default: device when the provider has a device endpoint, else browser].
    #[arg(long, value_enum)]
    pub method: Option<LoginMethod>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub shard: ShardArg,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}
