//! The long-running service (`serve`): the scheduler, the store, the metrics and the HTTP
//! server, wired together in [`run`], which [`start::serve`] calls once the flags are read and
//! the port is bound.
//!
//! One concept per module: [`state`] holds what the scheduler and the HTTP handlers share (and
//! the core rule: store durably, then publish); [`manual`] the manual runs of
//! `POST /api/v1/run`; [`scheduler`] when tests run; [`scheduled`] what one scheduled run does;
//! [`budget`] the monthly data budget; [`retention`] the deletion of old samples and the
//! folding of old probe figures; [`clock`] what the service does about a wrong clock;
//! [`worker`] the store's own threads.

pub(crate) mod budget;
pub(crate) mod clock;
pub(crate) mod manual;
pub(crate) mod retention;
pub(crate) mod scheduled;
pub(crate) mod scheduler;
pub mod start;
pub mod state;
pub(crate) mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::campaign::live::{CampaignConfig, Live};
use crate::http;
use crate::metrics::Metrics;
use crate::plan::PlanHistory;
use crate::probe::monitor::{Monitor, ProbeConfig};
use crate::sample::Outcome;
use crate::speedtest::{EngineConfig, Runner};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;
use crate::units::DataVolume;
use crate::zone::Zone;
use clock::{check_clock, instant_at, wall_clock};
use manual::ManualRuns;
use scheduled::{rate_limit_wait, run_any};
use scheduler::Schedule;
use state::AppState;

/// How often the service looks whether the file at `--db` is still the file it has open.
const FILE_CHECK_PERIOD: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub schedule: Schedule,
    pub engine: EngineConfig,
    /// Delete samples older than this; `None` keeps every sample.
    pub retention: Option<Duration>,
    /// Every stored plan version: summaries, retests, the plan gauges and the dashboard judge
    /// each run against the one in force at its time (and show the one in force now).
    pub plans: PlanHistory,
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
    /// The zone of `--timezone`: where rule sets asked for over HTTP count calendar days and
    /// peak windows unless the request names another.
    pub zone: Zone,
    /// `serve --campaign`: the measurement campaign run besides the schedule.
    pub campaign: Option<CampaignConfig>,
    /// The connectivity monitor; `None` with `--probe-interval 0s`.
    pub probes: Option<ProbeConfig>,
    /// `--web.config.file` (TLS, basic auth, headers); `None`: plain HTTP, open.
    pub web: Option<http::WebServing>,
    /// The remote_write pusher's client; `None` without `--remote-write.url`.
    pub remote_write: Option<crate::push::client::Client>,
    /// `--log-requests`: one access-log line per HTTP request.
    pub log_requests: bool,
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
/// `ready` is called once, before the first request is served, with the wall-clock time of
/// the first test the scheduler planned (the start-up line names it).
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(Option<Timestamp>),
) -> Result<(), ServeError> {
    let metrics = Metrics::new()?;
    let now = Timestamp::now();
    check_clock(&store, now)?;
    start_outbox(&store, &metrics, config.remote_write.is_some())?;
    // The gauges come back from the last runs, so a restart does not blank the dashboard; a
    // sample dated after now (a wrong clock made it) is kept but is not the last run.
    let last_success = store.latest_success_at(now)?;
    let last_run = store.latest_run_at(now)?;
    metrics.restore(last_run.as_ref(), last_success.as_ref(), store.len()?);
    let mut config = config;
    if let Some(wait) = rate_limit_wait(last_run.as_ref(), now, config.schedule.interval)
        && wait > config.schedule.start_delay
    {
        tracing::warn!(
            next_in = %humantime::format_duration(Duration::from_secs(wait.as_secs())),
            "the last run was rate-limited; the first test waits until one interval after it"
        );
        config.schedule.start_delay = wait;
    }
    let last_run = last_run
        .filter(|run| run.outcome != Outcome::Skipped)
        .map(|run| run.time);
    metrics.show_plan_at(&config.plans, now);
    let live = match &config.campaign {
        Some(campaign) => {
            let live = Live::start(&store, campaign, &config.plans, now)?;
            metrics.set_campaign(live.rules().name(), &live.progress());
            Some(Arc::new(live))
        }
        None => None,
    };
    metrics.set_interval(config.schedule.interval);
    let mut monitor = match config.probes.clone() {
        Some(probes) => {
            metrics.set_probe_interval(probes.interval);
            metrics.restore_outages(&Monitor::newest_outages(&store, now)?);
            Some(Monitor::start(&store, probes, now)?)
        }
        None => None,
    };
    let state = Arc::new(
        AppState::new(
            store,
            metrics,
            Runner::new(config.engine.clone()),
            config.manual_runs.map(ManualRuns::new),
            last_run,
            last_success,
        )?
        .with_interval(config.schedule.interval)
        .with_plans(config.plans.clone())
        .with_zone(config.zone.clone())
        .with_campaign(live)
        .with_probes(monitor.as_ref().map(Monitor::status)),
    );

    let splay = config.schedule.splay;
    let usual_gap = config.schedule.interval.saturating_add(splay);
    let campaign = state.campaign.clone();
    let guard = campaign
        .as_ref()
        .map_or(Duration::ZERO, |live| live.guard());
    // Called when the first test is planned, before that test can start and log its own
    // line: the start-up line comes first even when the first test is due at once.
    let ready = std::sync::Mutex::new(Some(ready));
    let say_ready = |first_test: Option<Timestamp>| {
        let pending = ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(ready) = pending {
            ready(first_test);
        }
    };
    let mut tests = Box::pin(scheduler::run_with_campaign(
        config.schedule,
        || random_below(splay),
        |trigger| run_any(&state, trigger, &config),
        |at| {
            let at = wall_clock(at);
            state.set_next_run(Some(at));
            say_ready(Some(at));
        },
        guard,
        || {
            let live = campaign.as_ref()?;
            live.next(Timestamp::now()).map(instant_at)
        },
    ));
    // Polled once before the server starts: that plans the first test, so `/api/v1/status`
    // names its time from the first request on.
    let finished =
        std::future::poll_fn(|cx| std::task::Poll::Ready(tests.as_mut().poll(cx).is_ready())).await;
    // The scheduler planned nothing (it cannot, but the line must still be said).
    say_ready(state.next_run());
    if let Some(monitor) = &monitor {
        monitor.log_started();
    }
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(http::serve(
        listener,
        state.clone(),
        config.max_connections,
        config.allowed_hosts.clone(),
        config.web.clone(),
        config.log_requests,
        stopped,
    ));
    if !finished {
        tokio::select! {
            () = &mut tests => {}
            () = retention::retention(&state, config.retention, usual_gap) => {}
            () = watch_file(&state) => {}
            () = probe(&state, monitor.as_mut()) => {}
            () = retention::downsample(&state) => {}
            () = push(&state, config.remote_write.as_ref()) => {}
            () = shutdown => tracing::info!("shutting down"),
        }
    }
    if let Some(monitor) = monitor.as_mut() {
        monitor.stop(&state).await;
    }
    // Dropping the scheduler kills a running test's process group and lets go of what it
    // holds of the store threads (a queued job's sender), which `recorder.stop` waits for.
    drop(tests);
    let _ = stop.send(true);
    if let Err(err) = server.await {
        tracing::error!(%err, "the HTTP server task failed");
    }
    // A sample handed to the recorder is committed before the process ends.
    state.recorder.stop();
    Ok(())
}

/// With remote_write on, queues every sample stored from now on (before the scheduler can
/// store one) and shows the outbox in the metrics; with it off, says once how many samples a
/// previous run with `--remote-write.url` left queued.
fn start_outbox(store: &Store, metrics: &Metrics, on: bool) -> Result<(), StoreError> {
    let stats = store.outbox_stats()?;
    if on {
        store.set_outbox(true);
        metrics.set_remote_write_on(stats.pending, stats.oldest);
    } else if stats.pending > 0 {
        tracing::info!(
            pending = stats.pending,
            "{} samples wait in the outbox for --remote-write.url; they are pushed once it is given again",
            stats.pending
        );
    }
    Ok(())
}

/// Runs the remote_write pusher, or waits forever without `--remote-write.url`.
async fn push(state: &AppState, client: Option<&crate::push::client::Client>) {
    match client {
        Some(client) => crate::push::pusher::run(state, client).await,
        None => std::future::pending().await,
    }
}

/// Runs the connectivity monitor, or waits forever when probing is off.
async fn probe(state: &AppState, monitor: Option<&mut Monitor>) {
    match monitor {
        Some(monitor) => monitor.run(state).await,
        None => std::future::pending().await,
    }
}

/// Looks every few seconds whether the file at `--db` is still the one open, so that the log
/// says when it was deleted or replaced even while nothing else asks, and whether the clock
/// was set back below the last run or success on show, so that they are put right even while
/// no test runs; never returns.
async fn watch_file(state: &AppState) {
    let mut ticks = tokio::time::interval(FILE_CHECK_PERIOD);
    loop {
        ticks.tick().await;
        // Logged by the store on each change; the result itself is for /healthz.
        let _ = state.store.check_file();
        state.rejudge(Timestamp::now()).await;
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
