//! The `internet-monitor` binary: parse the command line, run the command, map the exit status.

use std::process::ExitCode;

use clap::Parser;
use internet_monitor::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // --help and --version are successes; every usage error exits 1, as documented.
            return if err.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match internet_monitor::commands::run(cli.into_command()) {
        Ok(code) => code,
        Err(err) => {
            internet_monitor::logging::say(format_args!(
                "internet-monitor: error: {}",
                internet_monitor::logging::error_chain(&err)
            ));
            ExitCode::from(1)
        }
    }
}
