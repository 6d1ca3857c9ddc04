//! `serve`: the scheduler, the store, the metrics and the HTTP server, wired together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::sample::{FailureReason, Sample, Trigger, mbit_per_second};
use crate::scheduler::{self, Schedule};
use crate::speedtest::{Runner, RunnerConfig};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// How often retention looks for samples to delete, and how many go per transaction.
const RETENTION_PERIOD: Duration = Duration::from_secs(60 * 60);
const RETENTION_BATCH: usize = 10_000;

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub schedule: Schedule,
    pub runner: RunnerConfig,
    /// Delete samples older than this; `None` keeps every sample.
    pub retention: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
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
    let metrics = Arc::new(Metrics::new()?);
    // The gauges come back from the last runs, so a restart does not blank the dashboard.
    let last_success = store.latest_success()?;
    metrics.restore(
        store.latest()?.as_ref(),
        last_success.as_ref(),
        store.len()?,
    );
    let state = Arc::new(AppState::new(store, metrics, last_success.as_ref()));

    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(http::serve(listener, state.clone(), stopped));
    let runner = Runner::new(config.runner);
    let splay = config.schedule.splay;
    let tests = scheduler::run(
        config.schedule,
        || random_below(splay),
        || run_scheduled(&runner, &state),
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
    Ok(())
}

/// One scheduled test: run it, store it, and only then publish it.
async fn run_scheduled(runner: &Runner, state: &AppState) -> Option<FailureReason> {
    state.metrics.set_running(true);
    let sample = runner.run(Trigger::Schedule).await;
    state.metrics.set_running(false);
    let reason = sample.reason;
    let store = state.store.clone();
    // A durable commit waits for fsync: keep it off the threads that answer requests.
    match tokio::task::spawn_blocking(move || store.append(&sample)).await {
        Ok(Ok(stored)) => {
            state.metrics.record(&stored);
            state.stored(&stored);
            log_run(&stored);
        }
        Ok(Err(err)) => {
            state.metrics.store_error();
            tracing::error!(%err, "the test's sample could not be stored, so it is not published");
        }
        Err(err) => {
            state.metrics.store_error();
            tracing::error!(%err, "storing the test's sample failed");
        }
    }
    reason
}

fn log_run(sample: &Sample) {
    let mbit = |bytes: Option<f64>| bytes.map(mbit_per_second);
    match sample.reason {
        None => tracing::info!(
            time = %sample.time,
            download_mbit_per_second = mbit(sample.download_bytes_per_second),
            upload_mbit_per_second = mbit(sample.upload_bytes_per_second),
            ping_seconds = sample.ping_seconds,
            "test succeeded"
        ),
        Some(reason) => tracing::warn!(
            time = %sample.time,
            %reason,
            message = sample.message.as_deref().unwrap_or_default(),
            "test failed"
        ),
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
        let store = state.store.clone();
        let pruned = tokio::task::spawn_blocking(move || {
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
    if limit.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_nanos(
        rand::rng().random_range(0..limit.as_nanos().min(u128::from(u64::MAX)) as u64),
    )
}

/// The wall-clock time at which the monotonic instant `at` falls.
fn wall_clock(at: Instant) -> Timestamp {
    Timestamp::now().saturating_add(at.saturating_duration_since(Instant::now()))
}
