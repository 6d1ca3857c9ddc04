//! The `internet-monitor` binary: parse the command line, run the command, map the exit status.

// An unwrap or expect on what input, I/O or the clock can break is a panic in a request or
// recording path: refused outside tests (tests may, and say what failed).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::process::ExitCode;

use internet_monitor::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_with_environment() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // --help and --version are successes; every usage error exits 1, as documented.
            // (An empty variable of the command's flags is refused naming it before clap reads
            // it, so no note is needed here.)
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
            let message = internet_monitor::logging::error_chain(&err).to_string();
            internet_monitor::logging::say(format_args!("internet-monitor: error: {message}"));
            let args: Vec<_> = std::env::args_os().collect();
            let vars: Vec<_> = std::env::vars_os().collect();
            for note in internet_monitor::cli::environment_notes(&message, &args, &vars) {
                internet_monitor::logging::say(format_args!("internet-monitor: note: {note}"));
            }
            note_empty_environment();
            ExitCode::from(1)
        }
    }
}

/// After an error, names each `INTERNET_MONITOR_…` variable set to nothing: it counts as the
/// flag given an empty value (`a value is required`, `"" is not a URL`), whose message names
/// the flag, not the variable that gave it (`KEY: ${UNSET}` in a compose file, `KEY=` in an
/// environment file).
fn note_empty_environment() {
    let mut empty: Vec<String> = std::env::vars_os()
        .filter_map(|(key, value)| {
            let key = key.into_string().ok()?;
            (key.starts_with("INTERNET_MONITOR_") && value.to_string_lossy().trim().is_empty())
                .then_some(key)
        })
        .collect();
    empty.sort();
    for key in empty {
        internet_monitor::logging::say(format_args!(
            "internet-monitor: note: {key} is set but empty, which counts as its flag given \
             an empty value: unset it (leave its line out) or give it a value"
        ));
    }
}
