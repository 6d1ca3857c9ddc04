//! `serve`: the scheduler, the store, the metrics and the HTTP server, wired together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::http;
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::sample::{FailureReason, Outcome, Sample, Trigger};
use crate::scheduler::{self, Schedule, Verdict};
use crate::speedtest::{Runner, RunnerConfig};
use crate::state::{AppState, ManualRuns};
use crate::store::{Store, StoreError};
use crate::time::{ClockCheck, Timestamp, format_limit};
use crate::units::DataVolume;

/// How often retention looks for samples to delete, and how many go per transaction.
const RETENTION_PERIOD: Duration = Duration::from_secs(60 * 60);
const RETENTION_BATCH: usize = 10_000;
/// How often the service looks whether the file at `--db` is still the file it has open.
const FILE_CHECK_PERIOD: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub schedule: Schedule,
    pub runner: RunnerConfig,
    /// Delete samples older than this; `None` keeps every sample.
    pub retention: Option<Duration>,
    pub plan: Plan,
    /// A success below this share of the plan asks for a confirming retest (`--retest-below`).
    pub retest_below: Option<f64>,
    /// `Some(min gap)` when `POST /api/v1/run` is enabled.
    pub manual_runs: Option<Duration>,
    /// Bytes the tests of one calendar month may move before scheduled runs are skipped.
    pub data_budget: Option<DataVolume>,
    /// HTTP connections served at once.
    pub max_connections: usize,
    /// Names besides IP addresses and `localhost` that a browser may reach the history and
    /// `POST /api/v1/run` by (`--allowed-host` and the machine's host name).
    pub allowed_hosts: http::AllowedHosts,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot start the store threads: {0}")]
    Threads(#[from] std::io::Error),
}

/// Serves on `listener` and tests on schedule until `shutdown` completes; then stops the
/// scheduler (killing a running test), stops accepting and lets requests in flight finish.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let store = Arc::new(store);
    let metrics = Metrics::new()?;
    let now = Timestamp::now();
    check_clock(&store, now)?;
    // The gauges come back from the last runs, so a restart does not blank the dashboard; a
    // sample dated after now (a wrong clock made it) is kept but is not the last run.
    let last_success = store.latest_success_at(now)?;
    metrics.restore(
        store.latest_at(now)?.as_ref(),
        last_success.as_ref(),
        store.len()?,
    );
    metrics.set_plan(&config.plan);
    metrics.set_interval(config.schedule.interval);
    let state = Arc::new(AppState::new(
        store,
        metrics,
        Runner::new(config.runner.clone()),
        config.plan,
        config.manual_runs.map(ManualRuns::new),
        last_success,
    )?);

    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(http::serve(
        listener,
        state.clone(),
        config.max_connections,
        config.allowed_hosts.clone(),
        stopped,
    ));
    let splay = config.schedule.splay;
    let tests = scheduler::run(
        config.schedule,
        || random_below(splay),
        |trigger| run_scheduled(&state, trigger, &config),
        |at| state.metrics.set_next_run(Some(wall_clock(at))),
    );
    tokio::select! {
        () = tests => {}
        () = retention(&state, config.retention) => {}
        () = watch_file(&state) => {}
        () = shutdown => tracing::info!("shutting down"),
    }
    // The scheduler future is gone now, and with it a running test's process group.
    let _ = stop.send(true);
    if let Err(err) = server.await {
        tracing::error!(%err, "the HTTP server task failed");
    }
    // A sample handed to the recorder is committed before the process ends.
    state.recorder.stop();
    Ok(())
}

/// One scheduled test (or retest): waits for the slot, runs, keeps, and judges the result;
/// or, with this month's data budget used up, keeps a skipped sample instead.
async fn run_scheduled(state: &AppState, trigger: Trigger, config: &ServeConfig) -> Verdict {
    let claim = state.runner.claim().await;
    if let Some(budget) = config.data_budget
        && let Some(used) = budget_used_up(state, budget).await
    {
        let message = format!(
            "data budget of {budget} for this month reached ({} GB moved by tests); tests resume next month",
            used / 1e9
        );
        let skipped = Sample {
            outcome: Outcome::Skipped,
            reason: Some(FailureReason::DataBudget),
            message: Some(message),
            ..Sample::empty(Timestamp::now(), trigger)
        };
        drop(claim);
        state.keep(skipped).await;
        return Verdict::default();
    }
    let sample = state.run_and_keep(claim, trigger).await;
    let below_plan = config
        .retest_below
        .is_some_and(|share| state.plan.reached(&sample, share) == Some(false));
    Verdict {
        failure: sample.reason,
        below_plan,
    }
}

/// The bytes this calendar month's tests moved, if that reaches `budget`. Read from the store
/// each time (a month is at most a few tens of thousands of samples), so a restart, an import
/// or the turn of the month needs no bookkeeping.
async fn budget_used_up(state: &AppState, budget: DataVolume) -> Option<f64> {
    let (from, to) = Timestamp::now().month();
    let used = state
        .recorder
        .run(move |store| {
            let mut used = 0.0;
            store.for_each(from, to, |sample| {
                let moved =
                    sample.downloaded_bytes.unwrap_or(0) + sample.uploaded_bytes.unwrap_or(0);
                used += moved as f64;
                Ok::<_, StoreError>(())
            })?;
            Ok::<_, StoreError>(used)
        })
        .await;
    match used {
        Ok(Ok(used)) => (used >= budget.bytes()).then_some(used),
        Ok(Err(err)) => {
            // Better one test too many than none at all because the budget could not be read.
            tracing::error!(%err, "cannot read this month's data use; testing anyway");
            None
        }
        Err(err) => {
            tracing::error!(%err, "the data budget check failed; testing anyway");
            None
        }
    }
}

/// Says loudly, at start-up, what suggests the clock is wrong: a time before this program's
/// source date, samples dated after now, keys at or after the end of the times kept.
fn check_clock(store: &Store, now: Timestamp) -> Result<(), StoreError> {
    if let ClockCheck::BeforeSourceDate { now, source_date } = ClockCheck::of(now) {
        tracing::error!(
            %now,
            %source_date,
            "the clock is wrong: it reads {now}, before this program's source date {source_date}; \
             samples are stored with the wrong time and retention deletes nothing until it is right"
        );
    }
    let (ahead, newest) = store.count_after(now)?;
    if let Some(newest) = newest {
        tracing::warn!(
            %now,
            samples = ahead,
            %newest,
            "{ahead} stored samples are dated after the clock ({now}), the newest {newest}: either \
             the clock is behind or a wrong clock recorded or imported them; they are kept, but \
             not used as the latest run or last success"
        );
    }
    let unrepresentable = store.unrepresentable()?;
    if unrepresentable > 0 {
        tracing::error!(
            samples = unrepresentable,
            end = %Timestamp::MAX,
            "{unrepresentable} stored samples are keyed at or after {}, the end of the times \
             this version handles (an older version stored them, or the file is damaged); they \
             are left as they are and no endpoint or export shows them",
            Timestamp::MAX
        );
    }
    Ok(())
}

/// Why retention deletes nothing this time.
#[derive(Debug, PartialEq, Eq)]
enum Hold {
    /// The clock reads before this program's source date.
    ClockBeforeSourceDate {
        now: Timestamp,
        source_date: Timestamp,
    },
    /// The cutoff is later than the newest sample at or before now: every one would go.
    WouldEmpty {
        cutoff: Timestamp,
        newest: Timestamp,
    },
}

/// Where retention may cut this time: samples before the returned time go. `newest` is the
/// newest sample at or before `now`. A clock that is obviously wrong is never trusted to
/// delete: not before the source date, and never so far ahead that nothing would be left.
/// `pace` caps the cutoff where the wall clock ran ahead of the monotonic clock since the
/// last pass (a clock stepped forward while serving); the cap is returned as the second value
/// when it applied.
fn retention_cutoff(
    now: Timestamp,
    keep: Duration,
    newest: Option<Timestamp>,
    pace: Option<Timestamp>,
) -> Result<(Timestamp, Option<Timestamp>), Hold> {
    if let ClockCheck::BeforeSourceDate { now, source_date } = ClockCheck::of(now) {
        return Err(Hold::ClockBeforeSourceDate { now, source_date });
    }
    let cutoff = now.saturating_sub(keep);
    if let Some(newest) = newest
        && cutoff > newest
    {
        return Err(Hold::WouldEmpty { cutoff, newest });
    }
    match pace {
        Some(pace) if cutoff > pace => Ok((pace, Some(cutoff))),
        _ => Ok((cutoff, None)),
    }
}

/// How much further the wall clock may move than the monotonic clock between two retention
/// passes before the cut is held back to the monotonic pace (NTP slews far less).
const CLOCK_STEP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Deletes samples older than `keep` every hour, in bounded batches; never returns.
async fn retention(state: &AppState, keep: Option<Duration>) {
    let Some(keep) = keep else {
        return std::future::pending().await;
    };
    let mut ticks = tokio::time::interval(RETENTION_PERIOD);
    // The last cut and when it was made by the monotonic clock.
    let mut last: Option<(Timestamp, Instant)> = None;
    loop {
        ticks.tick().await;
        let pace = last.map(|(cutoff, at)| {
            cutoff.saturating_add(at.elapsed().saturating_add(CLOCK_STEP_TOLERANCE))
        });
        let pruned = state
            .recorder
            .run(move |store| {
                let now = Timestamp::now();
                let newest = store.latest_at(now)?.map(|sample| sample.time);
                let cutoff = match retention_cutoff(now, keep, newest, pace) {
                    Ok(cutoff) => cutoff,
                    Err(hold) => return Ok::<_, StoreError>(Err(hold)),
                };
                let mut deleted = 0;
                loop {
                    let batch = store.delete_before(cutoff.0, RETENTION_BATCH)?;
                    deleted += batch;
                    if batch < RETENTION_BATCH {
                        return Ok(Ok((cutoff, deleted, store.len()?)));
                    }
                }
            })
            .await;
        match pruned {
            Ok(Ok(Err(Hold::ClockBeforeSourceDate { now, source_date }))) => tracing::error!(
                %now,
                %source_date,
                "retention deleted nothing: the clock reads {now}, before this program's source \
                 date {source_date}, so it is wrong"
            ),
            Ok(Ok(Err(Hold::WouldEmpty { cutoff, newest }))) => tracing::warn!(
                %cutoff,
                %newest,
                retention = %format_limit(keep),
                "retention deleted nothing: the cutoff ({cutoff}) is after the newest sample \
                 ({newest}), so every sample would go; is the clock ahead? Set it right, or keep \
                 only recent samples by hand (export --from, then import into a new --db)"
            ),
            Ok(Ok(Ok(((cutoff, wanted), deleted, left)))) => {
                last = Some((cutoff, Instant::now()));
                if let Some(wanted) = wanted {
                    tracing::warn!(
                        %cutoff,
                        %wanted,
                        "the wall clock moved further than the monotonic clock since the last \
                         retention pass (stepped forward?); retention cut at {cutoff}, not {wanted}"
                    );
                }
                state.metrics.set_samples(left);
                if deleted > 0 {
                    state.changed();
                    tracing::info!(deleted, left, "retention deleted old samples");
                }
            }
            Ok(Err(err)) => tracing::error!(%err, "retention could not delete old samples"),
            Err(err) => tracing::error!(%err, "the retention task failed"),
        }
    }
}

/// Looks every few seconds whether the file at `--db` is still the one open, so that the log
/// says when it was deleted or replaced even while nothing else asks; never returns.
async fn watch_file(state: &AppState) {
    let mut ticks = tokio::time::interval(FILE_CHECK_PERIOD);
    loop {
        ticks.tick().await;
        // Logged by the store on each change; the result itself is for /healthz.
        let _ = state.store.check_file();
    }
}

/// A uniformly random duration in `[0, limit)`; zero when `limit` is zero.
fn random_below(limit: Duration) -> Duration {
    let nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..nanos))
}

/// The wall-clock time at which the monotonic instant `at` falls.
fn wall_clock(at: Instant) -> Timestamp {
    Timestamp::now().saturating_add(at.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::source_date;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn days_after_source(days: u32) -> Timestamp {
        source_date().saturating_add(DAY * days)
    }

    #[test]
    fn retention_cuts_what_is_older_than_it_keeps() {
        let now = days_after_source(500);
        let newest = Some(days_after_source(499));
        assert_eq!(
            retention_cutoff(now, DAY * 400, newest, None),
            Ok((days_after_source(100), None))
        );
    }

    #[test]
    fn retention_never_empties_the_store() {
        // Five samples from a right clock, then serve with the clock ten years ahead.
        let newest = days_after_source(10);
        let now = days_after_source(10 + 3650);
        assert_eq!(
            retention_cutoff(now, DAY * 400, Some(newest), None),
            Err(Hold::WouldEmpty {
                cutoff: days_after_source(10 + 3650 - 400),
                newest
            })
        );
    }

    #[test]
    fn retention_never_trusts_a_clock_before_the_source_date() {
        let now = source_date().saturating_sub(DAY * 2);
        assert_eq!(
            retention_cutoff(now, DAY, None, None),
            Err(Hold::ClockBeforeSourceDate {
                now,
                source_date: source_date()
            })
        );
    }

    #[test]
    fn a_clock_stepped_forward_while_serving_cuts_at_the_monotonic_pace() {
        // The last pass cut at day 100; an hour later the clock jumped ten years, and a new
        // sample from the wrong clock is the newest: the cut moves on by the hour only.
        let pace = days_after_source(100).saturating_add(Duration::from_secs(3_900));
        let now = days_after_source(3650 + 500);
        let (cutoff, wanted) = retention_cutoff(now, DAY * 400, Some(now), Some(pace)).unwrap();
        assert_eq!(cutoff, pace);
        assert_eq!(wanted, Some(days_after_source(3650 + 100)));
    }
}
