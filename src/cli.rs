//! The command line: sub-commands and flags, each flag with its `INTERNET_MONITOR_*` twin.

use std::ffi::OsString;
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
#[derive(Debug, Parser)]
#[command(name = "internet-monitor", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
        let Command::RunOnce(args) = cli.command else {
            panic!("not run-once");
        };
        assert_eq!(args.store.db, PathBuf::from("internet-monitor.redb"));
        assert_eq!(args.speedtest.speedtest_bin, PathBuf::from("speedtest"));
        assert_eq!(args.speedtest.timeout, Duration::from_secs(120));
        assert_eq!(args.speedtest.max_bandwidth.bytes_per_second(), 12.5e9);
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
        let Command::RunOnce(args) = cli.command else {
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
