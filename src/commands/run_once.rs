//! `run-once`: one test now, stored durably, then printed.

use std::process::ExitCode;

use anyhow::{Context, anyhow};

use super::{stop_requested, write_stdout};
use crate::cli::RunOnceArgs;
use crate::sample::Trigger;
use crate::speedtest::Runner;
use crate::store::Store;
use crate::time::{ClockCheck, Timestamp};

/// Exit status for a test that ran and failed (its failure is stored and printed).
const TEST_FAILED: u8 = 2;
/// Exit status after SIGINT, SIGTERM or SIGHUP stopped the test (its process group killed,
/// nothing stored): 128 + SIGINT, as shells expect of an interrupted command.
const INTERRUPTED: u8 = 130;

pub fn run_once(args: &RunOnceArgs) -> anyhow::Result<ExitCode> {
    // The sample names its engine; serve's start-up log says why it was chosen.
    let (engine, _why) = args.speedtest.engine_config().map_err(anyhow::Error::msg)?;
    if let Some(warning) = args.speedtest.ignored_by(&engine) {
        eprintln!("internet-monitor: warning: {warning}");
    }
    // Open the store first: a locked or foreign file must not cost a test (and a data cap).
    // A new file is removed again unless a sample is stored in it.
    let mut store = super::Created::open(&args.store.db, |db| Ok(Store::open(db)?))?;
    if let ClockCheck::BeforeSourceDate { now, source_date } = ClockCheck::of(Timestamp::now()) {
        crate::logging::say(format_args!(
            "internet-monitor: warning: the clock is wrong: it reads {now}, before this program's source date {source_date}; the sample will be stored with that time"
        ));
    }
    let runner = Runner::new(engine);
    super::adopt_orphans();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let sample = runtime.block_on(async {
        let stop = stop_requested()?;
        tokio::select! {
            sample = runner.run(Trigger::Manual) => anyhow::Ok(Some(sample)),
            _ = stop => Ok(None),
        }
    })?;
    let Some(sample) = sample else {
        crate::logging::say(format_args!(
            "internet-monitor: interrupted; the test was stopped and nothing was stored"
        ));
        return Ok(ExitCode::from(INTERRUPTED));
    };
    let stored = store
        .append(&sample)
        .map_err(|err| anyhow!(err).context("the test ran but its sample could not be stored"))?;
    store.keep();
    // A reader that went away (`| head -c0`) changes nothing: the sample is stored, and the
    // exit status still says how the test went. Nor does any other failure to print it (a full
    // disk behind `>`): exit 1 would say that nothing was stored, and a retry would cost a test.
    if let Err(err) = write_stdout(|out| {
        serde_json::to_writer(&mut *out, &stored)?;
        writeln!(out)?;
        Ok(())
    }) {
        crate::logging::say(format_args!(
            "internet-monitor: warning: the sample was stored ({}) but could not be printed: {}",
            stored.time,
            crate::logging::error_chain(&err)
        ));
    }
    Ok(if stored.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(TEST_FAILED)
    })
}
