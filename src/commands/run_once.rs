//! `run-once`: one test now, stored durably, then printed.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};

use super::{stop_requested, write_stdout};
use crate::cli::{RunOnceArgs, RunOnceFormat};
use crate::sample::{Sample, Trigger};
use crate::speedtest::{Phase, Runner};
use crate::store::Store;
use crate::time::{ClockCheck, Timestamp};
use crate::units::for_people::{mbit_s, ms, people_text, volume};

/// Exit status for a test that ran and failed (its failure is stored and printed).
const TEST_FAILED: u8 = 2;
/// Exit status after SIGINT, SIGTERM or SIGHUP stopped the test (its process group killed,
/// nothing stored): 128 + SIGINT, as shells expect of an interrupted command.
const INTERRUPTED: u8 = 130;

pub(super) fn run_once(args: &RunOnceArgs) -> anyhow::Result<ExitCode> {
    // The sample names its engine; serve's start-up log says why it was chosen.
    let (engine, _why) = args.speedtest.engine_config().map_err(anyhow::Error::msg)?;
    if let Some(warning) = args.speedtest.ignored_by(&engine) {
        crate::logging::say(format_args!("internet-monitor: warning: {warning}"));
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
    // Progress for a person watching: only on a terminal, so scripts' stderr stays clean.
    let phases = std::io::stderr().is_terminal().then(|| runner.phases());
    let showing = phases.is_some();
    let sample = runtime.block_on(async {
        let stop = stop_requested()?;
        tokio::select! {
            sample = runner.run(Trigger::Manual) => anyhow::Ok(Some(sample)),
            _ = stop => Ok(None),
            () = show_progress(phases) => Ok(None),
        }
    })?;
    if showing {
        // The progress line is rubbed out before anything else is said.
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        crate::logging::progress_shown(false);
    }
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
        match args.format {
            RunOnceFormat::Json => {
                serde_json::to_writer(&mut *out, &stored)?;
                writeln!(out)?;
            }
            RunOnceFormat::Text => write!(out, "{}", as_text(&stored))?,
        }
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

/// Shows on stderr (a terminal) what the test is doing and for how long, rewriting one line
/// each second: `testing download… 12 s`. Never returns; without `phases`, shows nothing.
async fn show_progress(phases: Option<tokio::sync::watch::Receiver<Phase>>) {
    let Some(phases) = phases else {
        return std::future::pending().await;
    };
    let started = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticks.tick().await;
        let line = progress_line(*phases.borrow(), started.elapsed());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        crate::logging::progress_shown(true);
    }
}

/// The progress line: the phase and the seconds since the test started.
fn progress_line(phase: Phase, elapsed: Duration) -> String {
    let phase = match phase {
        // Before the engine says (the run is being set up) or after (being stored).
        Phase::Idle => "starting",
        phase => phase.as_str(),
    };
    format!("{phase}… {} s", elapsed.as_secs())
}

/// A sample for a person (`run-once --format text`): the result, then its figures in Mbit/s
/// and ms, the server, and why a failed test failed; one `name: value` per line.
fn as_text(sample: &Sample) -> String {
    let mut lines = Vec::new();
    match sample.reason {
        None => lines.push(("result", "success".to_owned())),
        Some(reason) => lines.push(("result", format!("failed ({reason})"))),
    }
    if let Some(message) = sample.message.as_deref().filter(|m| !m.is_empty()) {
        lines.push(("reason", message.to_owned()));
    }
    lines.push(("time", sample.time.to_string()));
    let speed = |bytes: Option<f64>| bytes.map(|b| format!("{} Mbit/s", people_text(mbit_s(b))));
    if let Some(down) = speed(sample.download_bytes_per_second) {
        lines.push(("download", down));
    }
    if let Some(up) = speed(sample.upload_bytes_per_second) {
        lines.push(("upload", up));
    }
    // One decimal always, as the log gives them: `0.0 ms`, `12.0 ms`, not `0 ms`, `12 ms`.
    let millis = |seconds: Option<f64>| seconds.map(|s| format!("{:.1} ms", ms(s)));
    if let Some(ping) = millis(sample.ping_seconds) {
        lines.push(("ping", ping));
    }
    if let Some(jitter) = millis(sample.jitter_seconds) {
        lines.push(("jitter", jitter));
    }
    if let Some(loss) = sample.packet_loss_ratio {
        lines.push(("packet loss", format!("{} %", people_text(loss * 100.0))));
    }
    let server = crate::daemon::state::describe_server(sample);
    if !server.is_empty() {
        lines.push(("server", server));
    }
    if let Some(engine) = &sample.engine {
        lines.push(("engine", engine.name.to_string()));
    }
    if let (Some(down), Some(up)) = (sample.downloaded_bytes, sample.uploaded_bytes) {
        lines.push(("data used", volume(down.saturating_add(up) as f64)));
    }
    if let Some(took) = sample.duration_seconds {
        lines.push(("took", format!("{} s", people_text(took))));
    }
    if let Some(url) = &sample.result_url {
        lines.push(("result url", url.clone()));
    }
    lines
        .into_iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::FailureReason;
    use crate::time::Timestamp;

    #[test]
    fn the_progress_line_names_the_phase_and_the_seconds() {
        let line = |phase, secs| progress_line(phase, Duration::from_millis(secs));
        assert_eq!(line(Phase::Download, 12_400), "testing download… 12 s");
        assert_eq!(line(Phase::Upload, 0), "testing upload… 0 s");
        assert_eq!(line(Phase::Running, 3_000), "testing… 3 s");
        assert_eq!(line(Phase::Idle, 0), "starting… 0 s");
    }

    #[test]
    fn text_gives_a_success_in_mbit_s_and_ms_and_a_failure_its_reason() {
        let time = Timestamp::from_millis(1_795_546_073_292);
        let success = Sample {
            download_bytes_per_second: Some(11_678_000.0),
            upload_bytes_per_second: Some(1_250_000.0),
            ping_seconds: Some(0.01234),
            jitter_seconds: Some(0.00002),
            downloaded_bytes: Some(100_000_000),
            uploaded_bytes: Some(20_000_000),
            ..Sample::empty(time, Trigger::Manual)
        };
        let text = as_text(&success);
        assert_eq!(
            text,
            format!(
                "result: success\ntime: {time}\ndownload: 93.4 Mbit/s\nupload: 10.0 Mbit/s\n\
                 ping: 12.3 ms\njitter: 0.0 ms\ndata used: 120 MB\n"
            )
        );
        let failed = Sample::failure(
            time,
            Trigger::Manual,
            FailureReason::Timeout,
            "speedtest did not finish within 1m and was killed",
        );
        let text = as_text(&failed);
        assert!(
            text.starts_with(
                "result: failed (timeout)\nreason: speedtest did not finish within 1m and was killed\n"
            ),
            "{text}"
        );
    }
}
