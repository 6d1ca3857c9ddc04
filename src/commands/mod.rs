//! What each sub-command does, from parsed flags to exit status; errors stop here as `anyhow`.

mod run_once;
mod serve;
mod transfer;

use std::io::{self, Write};
use std::process::ExitCode;

use crate::cli::{Command, LogFormat, ReportArgs, ReportFormat};
use crate::logging;
use crate::store::Store;
use crate::summary::summarize;
use crate::time::{ClockCheck, Timestamp};

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => {
            logging::init("info", args.log_format);
            serve::serve(*args)
        }
        Command::RunOnce(args) => {
            logging::init("warn", LogFormat::Text);
            run_once::run_once(&args)
        }
        Command::Export(args) => transfer::export(&args),
        Command::Report(args) => report(&args),
        Command::Import(args) => transfer::import(&args),
    }
}

/// `report`: the summary of a window, read from the store without changing it.
fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(&args.store.db)?;
    let now = Timestamp::now();
    warn_if_clock_looks_wrong(&store, now)?;
    let to = now.saturating_add(std::time::Duration::from_millis(1));
    let summary = summarize(
        &store,
        args.plan.plan(),
        now.saturating_sub(args.window),
        to,
    )?;
    write_stdout(|out| match args.format {
        ReportFormat::Text => out.write_all(summary.to_text().as_bytes()),
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &summary)?;
            writeln!(out)
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr what suggests the clock is wrong, since the window is counted back from it:
/// a time before the source date, or samples dated after now (left out of the window).
fn warn_if_clock_looks_wrong(store: &Store, now: Timestamp) -> anyhow::Result<()> {
    if let ClockCheck::BeforeSourceDate { now, source_date } = ClockCheck::of(now) {
        eprintln!(
            "internet-monitor: warning: the clock is wrong: it reads {now}, before this program's source date {source_date}"
        );
    }
    if let (ahead, Some(newest)) = store.count_after(now)? {
        eprintln!(
            "internet-monitor: warning: {ahead} samples are dated after the clock ({now}), the newest {newest}, and are left out; is the clock behind?"
        );
    }
    Ok(())
}

/// Writes to stdout; a reader that went away (`| head`) is not an error worth a message.
fn write_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
