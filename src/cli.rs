//! The command line: sub-commands and flags, each flag with its `INTERNET_MONITOR_*` twin.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bandwidth::Bandwidth;
use crate::speedtest::{ParseOptions, RunnerConfig};
use crate::time::TimeArg;

/// Most bytes kept from each of the CLI's stdout and stderr; a real result is a few KiB.
const OUTPUT_LIMIT: usize = 1 << 20;

/// Keeps an ISP honest: runs the Ookla Speedtest CLI, keeps every run (failures too) in an
/// embedded database, and exports what it measured.
///
/// Without a sub-command it runs `serve`, taking serve's flags.
#[derive(Debug, Parser)]
#[command(
    name = "internet-monitor",
    version,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The sub-command to run, `serve` when none was named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Test on a schedule and serve /metrics, /latest, /last-day, /graph (the default).
    Serve(ServeArgs),
    /// Run one speed test now, store it durably, and print it as one JSON object.
    ///
    /// Exit status: 0 when the test succeeded, 2 when it failed (the failure is stored and
    /// printed too), 1 when nothing could be stored (bad flags, database unusable).
    RunOnce(RunOnceArgs),
    /// Print every stored sample (failures included), oldest first.
    Export(ExportArgs),
    /// Store the samples of a file written by `export --format jsonl`.
    ///
    /// Samples whose time is already stored are skipped, so importing twice adds nothing.
    /// A malformed line aborts the import and nothing from the file is stored.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The redb database file holding the samples (created if missing)
    #[arg(
        long,
        env = "INTERNET_MONITOR_DB",
        value_name = "PATH",
        default_value = "internet-monitor.redb"
    )]
    pub db: PathBuf,
}

#[derive(Debug, Args)]
pub struct SpeedtestArgs {
    /// The Ookla Speedtest CLI executable (looked up on PATH unless it contains a slash)
    #[arg(
        long,
        env = "INTERNET_MONITOR_SPEEDTEST_BIN",
        value_name = "PATH",
        default_value = "speedtest"
    )]
    pub speedtest_bin: PathBuf,

    /// Kill the test (and everything it started) after this long, e.g. 90s or 2m
    #[arg(long, env = "INTERNET_MONITOR_TIMEOUT", value_name = "DURATION", default_value = "2m", value_parser = positive_duration)]
    pub timeout: Duration,

    /// Test against this Ookla server id instead of the one the CLI picks
    #[arg(long, env = "INTERNET_MONITOR_SERVER_ID", value_name = "N")]
    pub server_id: Option<u64>,

    /// One more argument for the CLI, after ours (repeat for several), e.g. --speedtest-arg=--interface=eth1
    #[arg(
        long = "speedtest-arg",
        env = "INTERNET_MONITOR_SPEEDTEST_ARG",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub speedtest_args: Vec<OsString>,

    /// Keep the client's internal and external IP and MAC address in each sample (off: privacy)
    #[arg(long, env = "INTERNET_MONITOR_STORE_IP")]
    pub store_ip: bool,

    /// A result faster than this is a measurement error, stored as failure "implausible"
    #[arg(
        long,
        env = "INTERNET_MONITOR_MAX_BANDWIDTH",
        value_name = "RATE",
        default_value = "100Gbit/s"
    )]
    pub max_bandwidth: Bandwidth,
}

impl SpeedtestArgs {
    pub fn runner_config(&self) -> RunnerConfig {
        RunnerConfig {
            binary: self.speedtest_bin.clone(),
            timeout: self.timeout,
            server_id: self.server_id,
            extra_args: self.speedtest_args.clone(),
            parse: ParseOptions {
                store_ip: self.store_ip,
                max_bytes_per_second: self.max_bandwidth.bytes_per_second(),
            },
            output_limit: OUTPUT_LIMIT,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunOnceArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub speedtest: SpeedtestArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub speedtest: SpeedtestArgs,

    /// Address and port for HTTP (port 0 picks a free one; the log says which)
    #[arg(
        long,
        env = "INTERNET_MONITOR_LISTEN",
        value_name = "ADDR",
        default_value = "0.0.0.0:5000"
    )]
    pub listen: SocketAddr,

    /// Time between scheduled tests, counted from start-up on a fixed grid, e.g. 30m or 1h
    #[arg(long, env = "INTERNET_MONITOR_INTERVAL", value_name = "DURATION", default_value = "30m", value_parser = positive_duration)]
    pub interval: Duration,

    /// Start each test at a random offset up to this much after its slot, so that many
    /// monitors do not all test at the same moment
    #[arg(long, env = "INTERNET_MONITOR_SPLAY", value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub splay: Duration,

    /// Wait this long after start-up before the first test
    #[arg(long, env = "INTERNET_MONITOR_START_DELAY", value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub start_delay: Duration,

    /// Delete samples older than this, e.g. 400d (default: keep every sample)
    #[arg(long, env = "INTERNET_MONITOR_RETENTION", value_name = "DURATION", value_parser = positive_duration)]
    pub retention: Option<Duration>,

    /// Log lines as human-readable text or as JSON objects
    #[arg(long, env = "INTERNET_MONITOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line, the form `import` reads
    Jsonl,
    /// A header row, then one row per sample
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    #[arg(long, env = "INTERNET_MONITOR_FORMAT", value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,

    /// Only samples at or after this time: RFC 3339 (2026-11-01T00:00:00Z) or an age (7d)
    #[arg(long, env = "INTERNET_MONITOR_FROM", value_name = "TIME")]
    pub from: Option<TimeArg>,

    /// Only samples before this time: RFC 3339 or an age (24h)
    #[arg(long, env = "INTERNET_MONITOR_TO", value_name = "TIME")]
    pub to: Option<TimeArg>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The JSON-lines file to read, or - for standard input
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("must be longer than zero".into()),
        Err(err) => Err(format!("{err} (write it like 90s, 2m or 1h 30m)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_once_defaults() {
        let cli = Cli::try_parse_from(["internet-monitor", "run-once"]).unwrap();
        let Command::RunOnce(args) = cli.into_command() else {
            panic!("not run-once");
        };
        assert_eq!(args.store.db, PathBuf::from("internet-monitor.redb"));
        assert_eq!(args.speedtest.speedtest_bin, PathBuf::from("speedtest"));
        assert_eq!(args.speedtest.timeout, Duration::from_secs(120));
        assert_eq!(args.speedtest.max_bandwidth.bytes_per_second(), 12.5e9);
    }

    #[test]
    fn no_sub_command_means_serve_with_its_flags() {
        let cli = Cli::try_parse_from(["internet-monitor", "--listen", "127.0.0.1:0"]).unwrap();
        let Command::Serve(args) = cli.into_command() else {
            panic!("not serve");
        };
        assert_eq!(args.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(args.interval, Duration::from_secs(30 * 60));
        assert_eq!(args.splay, Duration::ZERO);
        assert_eq!(args.retention, None);
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn zero_timeout_is_refused_naming_the_flag() {
        let err = Cli::try_parse_from(["internet-monitor", "run-once", "--timeout", "0s"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid value '0s' for '--timeout <DURATION>': must be longer than zero"),
            "{err}"
        );
    }

    #[test]
    fn extra_speedtest_args_may_start_with_dashes() {
        let cli = Cli::try_parse_from([
            "internet-monitor",
            "run-once",
            "--speedtest-arg",
            "--interface=eth1",
            "--speedtest-arg=--ip=192.0.2.1",
        ])
        .unwrap();
        let Command::RunOnce(args) = cli.into_command() else {
            panic!("not run-once");
        };
        assert_eq!(
            args.speedtest.speedtest_args,
            vec![
                OsString::from("--interface=eth1"),
                OsString::from("--ip=192.0.2.1")
            ]
        );
    }
}
