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
use crate::time::Timestamp;
use crate::units::DataVolume;

/// How often retention looks for samples to delete, and how many go per transaction.
const RETENTION_PERIOD: Duration = Duration::from_secs(60 * 60);
const RETENTION_BATCH: usize = 10_000;

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
    // The gauges come back from the last runs, so a restart does not blank the dashboard.
    let last_success = store.latest_success()?;
    metrics.restore(
        store.latest()?.as_ref(),
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

/// Deletes samples older than `keep` every hour, in bounded batches; never returns.
async fn retention(state: &AppState, keep: Option<Duration>) {
    let Some(keep) = keep else {
        return std::future::pending().await;
    };
    let mut ticks = tokio::time::interval(RETENTION_PERIOD);
    loop {
        ticks.tick().await;
        let pruned = state
            .recorder
            .run(move |store| {
                let cutoff = Timestamp::now().saturating_sub(keep);
                let mut deleted = 0;
                loop {
                    let batch = store.delete_before(cutoff, RETENTION_BATCH)?;
                    deleted += batch;
                    if batch < RETENTION_BATCH {
                        return Ok::<_, StoreError>((deleted, store.len()?));
                    }
                }
            })
            .await;
        match pruned {
            Ok(Ok((deleted, left))) => {
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
