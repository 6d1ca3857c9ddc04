//! `serve`: the scheduler, the store, the metrics and the HTTP server, wired together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::campaign::live::{CampaignConfig, Live};
use crate::http;
use crate::metrics::Metrics;
use crate::plan::PlanHistory;
use crate::probe::monitor::{Monitor, ProbeConfig};
use crate::sample::{FailureReason, Outcome, Sample, Trigger};
use crate::scheduler::{self, Schedule, Verdict};
use crate::speedtest::{EngineConfig, Runner};
use crate::state::{AppState, ManualRuns};
use crate::store::probes::{MINUTE_DAYS, MINUTE_ROWS_KEPT};
use crate::store::{Store, StoreError};
use crate::time::{ClockCheck, Timestamp, format_limit};
use crate::units::DataVolume;
use crate::units::for_people;
use crate::zone::Zone;
use std::sync::atomic::Ordering;

/// How often retention looks for samples to delete, and how many go per transaction.
const RETENTION_PERIOD: Duration = Duration::from_secs(60 * 60);
const RETENTION_BATCH: usize = 10_000;
/// 10-minute probe buckets written per downsampling transaction: one day.
const DOWNSAMPLE_BATCH: usize = 144;
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
            () = retention(&state, config.retention, usual_gap) => {}
            () = watch_file(&state) => {}
            () = probe(&state, monitor.as_mut()) => {}
            () = downsample(&state) => {}
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

/// Folds per-minute probe rows older than [`MINUTE_DAYS`] days, with that many days of
/// minute rows recorded after them ([`Store::probe_fold_cut`]: a clock far ahead cannot fold
/// the last month), into 10-minute buckets, once an hour, a day's worth of buckets per
/// transaction; never returns.
async fn downsample(state: &AppState) {
    let mut ticks = tokio::time::interval(RETENTION_PERIOD);
    loop {
        ticks.tick().await;
        let folded = state
            .recorder
            .run(|store| {
                let before = store.probe_fold_cut(Timestamp::now(), MINUTE_ROWS_KEPT)?;
                let mut folded = 0;
                loop {
                    let batch = store.downsample_probes(before, DOWNSAMPLE_BATCH)?;
                    folded += batch;
                    if batch < DOWNSAMPLE_BATCH {
                        return Ok::<_, StoreError>(folded);
                    }
                }
            })
            .await;
        match folded {
            Ok(Ok(0)) => {}
            Ok(Ok(buckets)) => tracing::info!(
                buckets,
                "folded per-minute probe figures older than {MINUTE_DAYS} days into 10-minute buckets"
            ),
            Ok(Err(err)) => tracing::error!(%err, "cannot downsample the probe figures"),
            Err(err) => tracing::error!(%err, "the downsampling task failed"),
        }
    }
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

/// How long the first test of a restarted `serve` must wait: a run refused as `rate_limited`
/// less than `interval` ago means the next test waits until a full interval after it, the
/// scheduler's rule while running, so a restart (or a restart loop) does not send a test the
/// service just refused.
pub fn rate_limit_wait(
    last_run: Option<&Sample>,
    now: Timestamp,
    interval: Duration,
) -> Option<Duration> {
    let run = last_run?;
    if run.reason != Some(FailureReason::RateLimited) {
        return None;
    }
    let age = Duration::from_millis(now.as_millis().saturating_sub(run.time.as_millis()));
    interval.checked_sub(age).filter(|wait| !wait.is_zero())
}

/// One run of the scheduler: a campaign run ([`run_campaign`]) or [`run_scheduled`].
async fn run_any(state: &AppState, trigger: Trigger, config: &ServeConfig) -> Verdict {
    match (&state.campaign, trigger) {
        (Some(live), Trigger::Campaign) => run_campaign(state, live, config).await,
        _ => run_scheduled(state, trigger, config).await.0,
    }
}

/// One campaign run: run and kept as a scheduled one, then counted by the campaign, whose
/// finish is stored when this run completed it.
async fn run_campaign(state: &AppState, live: &Live, config: &ServeConfig) -> Verdict {
    let (verdict, sample) = run_scheduled(state, Trigger::Campaign, config).await;
    if let Some(finished) = live.record(&sample, &state.plans, Timestamp::now()) {
        let stored = state
            .recorder
            .run(move |store| store.put_campaign(&finished))
            .await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::error!(%err, "cannot store that the campaign is complete; the next start finishes it again")
            }
            Err(err) => tracing::error!(%err, "the store task failed storing the campaign's end"),
        }
    }
    state
        .metrics
        .set_campaign(live.rules().name(), &live.progress());
    verdict
}

/// One scheduled test (or retest, or campaign run): waits for the slot, runs, keeps, and
/// judges the result; or, with this month's data budget used up, keeps a skipped sample
/// instead. Returns the verdict and the sample kept.
async fn run_scheduled(
    state: &AppState,
    trigger: Trigger,
    config: &ServeConfig,
) -> (Verdict, Sample) {
    let claim = state.runner.claim().await;
    if let Some(budget) = config.data_budget {
        let skip = match budget_use(state).await {
            Some(used) => budget_verdict(used, budget.bytes()),
            None => None,
        };
        let was_skipping = state.budget_skipping.swap(skip.is_some(), Ordering::AcqRel);
        if let Some(skip) = skip {
            let message = skip.message(budget.bytes());
            let skipped = Sample {
                outcome: Outcome::Skipped,
                reason: Some(FailureReason::DataBudget),
                message: Some(message.clone()),
                ..Sample::empty(Timestamp::now(), trigger)
            };
            drop(claim);
            state.keep(skipped.clone()).await;
            // Said once it is stored, as a run's line is.
            if !was_skipping {
                tracing::warn!(
                    trigger = trigger.as_str(),
                    data_used_mb = for_people::mb(skip.used),
                    next_test_mb = skip.next_test.map(for_people::mb),
                    data_budget_mb = for_people::mb(budget.bytes()),
                    "test skipped: {message}; scheduled tests are skipped (and stored as skipped) \
                     without a line each until they resume"
                );
            }
            return (Verdict::default(), skipped);
        }
        if was_skipping {
            tracing::info!(
                data_budget_mb = for_people::mb(budget.bytes()),
                "tests resume: the data budget of {} allows the next test",
                for_people::volume(budget.bytes())
            );
        }
    }
    let sample = state.run_and_keep(claim, trigger).await;
    // A version that took effect since the last run shows from this step on.
    state.metrics.show_plan_at(&state.plans, Timestamp::now());
    let below_plan = config
        .retest_below
        .is_some_and(|share| state.plan_at(sample.time).reached(&sample, share) == Some(false));
    let verdict = Verdict {
        failure: sample.reason,
        below_plan,
    };
    (verdict, sample)
}

/// This calendar month's data use, as the data budget judges it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct BudgetUse {
    /// Bytes the tests of this month moved.
    used: f64,
    /// Bytes the newest success of this month with a known volume moved: what the next test
    /// is expected to move; `None` without one (the month's first test always runs, so a
    /// budget smaller than one test still gets a test a month, and last month's figure,
    /// which a budget may have been set after, does not stop it).
    last_test: Option<f64>,
}

/// Why the next test is skipped for the data budget.
#[derive(Clone, Copy, Debug, PartialEq)]
struct BudgetSkip {
    /// Bytes this month's tests moved.
    used: f64,
    /// What the next test would move, when that (not the use so far) crosses the budget.
    next_test: Option<f64>,
}

impl BudgetSkip {
    /// The skipped sample's message: `data budget of 100 GB for this month reached (150 GB
    /// moved by tests); tests resume next month`, or, when the next test would cross it, the
    /// estimate too.
    fn message(&self, budget: f64) -> String {
        let budget_words = for_people::volume(budget);
        let used = for_people::volume(self.used);
        match self.next_test {
            None => format!(
                "data budget of {budget_words} for this month reached ({used} moved by tests); tests resume next month"
            ),
            Some(next) => format!(
                "data budget of {budget_words} for this month would be crossed by the next test ({used} moved by tests, and the last test moved {}); tests resume next month",
                for_people::volume(next)
            ),
        }
    }
}

/// Whether the next test runs under a budget of `budget` bytes: skipped when this month's
/// use has reached it, or when the next test, expected to move what the last one did, would
/// cross it. With no test of known volume to go by, it runs (better one test too many than
/// none at all).
fn budget_verdict(usage: BudgetUse, budget: f64) -> Option<BudgetSkip> {
    if usage.used >= budget {
        return Some(BudgetSkip {
            used: usage.used,
            next_test: None,
        });
    }
    let next = usage.last_test?;
    (usage.used + next > budget).then_some(BudgetSkip {
        used: usage.used,
        next_test: Some(next),
    })
}

/// The volume a sample's transfers moved, when it records both directions' bytes.
fn volume_of(sample: &Sample) -> Option<f64> {
    Some(
        sample
            .downloaded_bytes?
            .saturating_add(sample.uploaded_bytes?) as f64,
    )
}

/// This calendar month's data use and its last test's volume. Read from the store each time
/// (a month is at most a few tens of thousands of samples), so a restart, an import or the
/// turn of the month needs no bookkeeping. `None` (and a line in the log) when the store
/// cannot be read: the test then runs.
async fn budget_use(state: &AppState) -> Option<BudgetUse> {
    let now = Timestamp::now();
    let (from, to) = now.month();
    let used = state
        .recorder
        .run(move |store| {
            let mut used = 0.0;
            let mut last_test = None;
            store.for_each(from, to, |sample| {
                let moved = sample
                    .downloaded_bytes
                    .unwrap_or(0)
                    .saturating_add(sample.uploaded_bytes.unwrap_or(0));
                used += moved as f64;
                if sample.is_success()
                    && let Some(volume) = volume_of(&sample)
                {
                    last_test = Some(volume);
                }
                Ok::<_, StoreError>(())
            })?;
            Ok::<_, StoreError>(BudgetUse { used, last_test })
        })
        .await;
    match used {
        Ok(Ok(used)) => Some(used),
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
}

/// A stretch of time with no sample in it: the monitor was off, or the clock jumped ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Gap {
    /// The sample before the gap.
    from: Timestamp,
    /// The sample after it, or now.
    to: Timestamp,
}

/// The longest gap between samples (or between the newest sample and now) that retention
/// counts as time passed: a day, or the usual gap between scheduled runs (`--interval` plus
/// `--splay`) if that is longer, but at most a quarter of the retention. Longer gaps count as
/// this long, so a clock that jumps ahead, and the samples it then writes, can make retention
/// delete a sample at most this much before its time.
fn longest_counted_gap(keep: Duration, usual_gap: Duration) -> Duration {
    usual_gap.max(DAY).min(keep / 4)
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Finds where retention cuts by walking the record back from now, newest sample first, and
/// counting the time between neighbours, but a gap longer than [`longest_counted_gap`] only as
/// that long: samples go once `keep` of *recorded* time lies after them. With a right clock and
/// a monitor that ran on, that is exactly `now - keep`; a jump of the clock (or a spell when
/// the monitor was off) keeps the older samples that much longer instead of deleting them.
/// The walk cannot be fooled by samples the wrong clock wrote: they lie after the jump, which
/// counts as at most a day whatever it is.
struct Walk {
    keep: Duration,
    longest: Duration,
    /// Recorded time still to walk back before the cut.
    left: Duration,
    /// The sample walked to last (at first: now).
    later: Timestamp,
    /// Set once the cut is found.
    cutoff: Option<Timestamp>,
    /// The longest gap counted short before the cut.
    gap: Option<Gap>,
}

impl Walk {
    fn new(now: Timestamp, keep: Duration, longest: Duration) -> Self {
        Walk {
            keep,
            longest,
            left: keep,
            later: now,
            cutoff: None,
            gap: None,
        }
    }

    /// Takes the next older sample's time; `Break` once the cut is found.
    fn step(&mut self, time: Timestamp) -> std::ops::ControlFlow<()> {
        if self.cutoff.is_some() {
            return std::ops::ControlFlow::Break(());
        }
        let gap = self.later.duration_since(time);
        let counted = gap.min(self.longest);
        if counted >= self.left {
            self.cutoff = Some(self.later.saturating_sub(self.left));
            return std::ops::ControlFlow::Break(());
        }
        if gap > self.longest
            && self
                .gap
                .is_none_or(|widest| gap > widest.to.duration_since(widest.from))
        {
            self.gap = Some(Gap {
                from: time,
                to: self.later,
            });
        }
        self.left = self.left.saturating_sub(counted);
        self.later = time;
        std::ops::ControlFlow::Continue(())
    }

    /// Where to cut: before it, samples have `keep` of recorded time after them. When the
    /// record ran out first, the cut lies before its oldest sample (nothing goes).
    fn cutoff(&self) -> Timestamp {
        self.cutoff
            .unwrap_or_else(|| self.later.saturating_sub(self.left))
    }

    /// The cut a plain `now - keep` would make, and the gap that held it back, when the walk
    /// cut earlier than that.
    fn held_back(&self, now: Timestamp) -> Option<(Timestamp, Gap)> {
        let wanted = now.saturating_sub(self.keep);
        self.gap
            .filter(|_| self.cutoff() < wanted)
            .map(|gap| (wanted, gap))
    }
}

/// Where retention may cut this time: samples before the returned time go. `record` is the
/// cut the [`Walk`] over the record found. A clock before the source date is never trusted to
/// delete. `pace` caps the cutoff where the wall clock ran ahead of the monotonic clock since
/// the last pass (a clock stepped forward while serving); the cap is returned as the second
/// value when it applied.
fn retention_cutoff(
    now: Timestamp,
    record: Timestamp,
    pace: Option<Timestamp>,
) -> Result<(Timestamp, Option<Timestamp>), Hold> {
    if let ClockCheck::BeforeSourceDate { now, source_date } = ClockCheck::of(now) {
        return Err(Hold::ClockBeforeSourceDate { now, source_date });
    }
    match pace {
        Some(pace) if record > pace => Ok((pace, Some(record))),
        _ => Ok((record, None)),
    }
}

/// How much further the wall clock may move than the monotonic clock between two retention
/// passes before the cut is held back to the monotonic pace (NTP slews far less).
const CLOCK_STEP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// What one retention pass did.
struct Pass {
    cutoff: Timestamp,
    /// The cut the monotonic pace prevented ([`retention_cutoff`]).
    paced: Option<Timestamp>,
    /// The cut `now - keep` would have made and the gap that prevented it, when samples
    /// older than `keep` were kept for it.
    held_back: Option<(Timestamp, Gap)>,
    deleted: usize,
    left: u64,
}

/// Deletes samples older than `keep` (by the [`Walk`] over the record) every hour, in bounded
/// batches; `usual_gap` is the usual time between scheduled runs. Never returns.
async fn retention(state: &AppState, keep: Option<Duration>, usual_gap: Duration) {
    let Some(keep) = keep else {
        return std::future::pending().await;
    };
    let longest = longest_counted_gap(keep, usual_gap);
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
                let mut walk = Walk::new(now, keep, longest);
                // Samples dated after now are not part of the record walked (nor deleted).
                let end = now.saturating_add(Duration::from_millis(1));
                store.times_newest_first(end, |time| walk.step(time))?;
                let (cutoff, paced) = match retention_cutoff(now, walk.cutoff(), pace) {
                    Ok(cutoff) => cutoff,
                    Err(hold) => return Ok::<_, StoreError>(Err(hold)),
                };
                // With no sample between the paced cut and the walk's (the walk crossed a gap
                // in the record), the pace changes nothing and is not worth a warning.
                let (cutoff, paced) = match paced {
                    Some(wanted) if store.newest_first(cutoff, wanted, 1)?.is_empty() => {
                        (wanted, None)
                    }
                    _ => (cutoff, paced),
                };
                // Said only when samples older than `keep` are there to be kept.
                let held_back = match walk.held_back(now) {
                    Some((wanted, gap)) if !store.newest_first(cutoff, wanted, 1)?.is_empty() => {
                        Some((wanted, gap))
                    }
                    _ => None,
                };
                // The connectivity records go by the same cut (and are kept by the same
                // rules: the walk above never cuts across a gap in the samples).
                while store.delete_probes_before(cutoff, RETENTION_BATCH)? == RETENTION_BATCH {}
                let mut deleted = 0;
                loop {
                    let batch = store.delete_before(cutoff, RETENTION_BATCH)?;
                    deleted += batch;
                    if batch < RETENTION_BATCH {
                        return Ok(Ok(Pass {
                            cutoff,
                            paced,
                            held_back,
                            deleted,
                            left: store.len()?,
                        }));
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
            Ok(Ok(Ok(pass))) => {
                let Pass {
                    cutoff,
                    paced,
                    held_back,
                    deleted,
                    left,
                } = pass;
                last = Some((cutoff, Instant::now()));
                if let Some(wanted) = paced {
                    tracing::warn!(
                        %cutoff,
                        %wanted,
                        "the wall clock moved further than the monotonic clock since the last \
                         retention pass (stepped forward?); retention cut at {cutoff}, not {wanted}"
                    );
                }
                if let Some((wanted, gap)) = held_back {
                    let counted = format_limit(longest);
                    tracing::warn!(
                        %cutoff,
                        %wanted,
                        gap_from = %gap.from,
                        gap_to = %gap.to,
                        deleted,
                        retention = %format_limit(keep),
                        "retention cut at {cutoff}, not {wanted}: no sample was recorded from {} to \
                         {}, and a gap counts as at most {counted}, so the samples before it are \
                         kept longer than the retention. Was the monitor off, or is the clock \
                         ahead? If the clock is right and they must go now, export --from the cut \
                         you want and import that into a new --db",
                        gap.from,
                        gap.to
                    );
                }
                state.metrics.set_samples(left);
                if deleted > 0 {
                    state.changed();
                }
                log_deleted(deleted, left, cutoff, keep, usual_gap);
            }
            Ok(Err(err)) => tracing::error!(%err, "retention could not delete old samples"),
            Err(err) => tracing::error!(%err, "the retention task failed"),
        }
    }
}

/// The fewest deletions in one retention pass that are logged at WARN.
const RETENTION_WARN_ABOVE: usize = 10;

/// How many samples one retention pass may delete before it is logged at WARN: more than
/// [`RETENTION_WARN_ABOVE`] and more than twice what an hourly pass deletes in the steady
/// state (the runs of one [`RETENTION_PERIOD`] at `usual_gap`, retests included at most
/// doubling them). A steady pass deletes the few runs that aged past the retention in the
/// last hour (2 at the default 30m); more means a retention shortened at a restart, or a
/// typo (`--retention 3m`) deleting history, which a user must see among the INFO lines.
fn retention_warn_above(usual_gap: Duration) -> usize {
    let gap = usual_gap.as_secs().max(1);
    let per_pass = usize::try_from(RETENTION_PERIOD.as_secs().div_ceil(gap)).unwrap_or(usize::MAX);
    RETENTION_WARN_ABOVE.max(per_pass.saturating_mul(2))
}

/// Says what a retention pass deleted: nothing when it deleted nothing, INFO for a few
/// samples, WARN with the cutoff for more than [`retention_warn_above`].
fn log_deleted(deleted: usize, left: u64, cutoff: Timestamp, keep: Duration, usual_gap: Duration) {
    if deleted == 0 {
        return;
    }
    let retention = format_limit(keep);
    if deleted > retention_warn_above(usual_gap) {
        tracing::warn!(
            deleted,
            left,
            %cutoff,
            %retention,
            "retention deleted old samples: {deleted} recorded before {cutoff} (--retention \
             {retention}); {left} are left"
        );
    } else {
        tracing::info!(deleted, left, %cutoff, %retention, "retention deleted old samples");
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

/// The monotonic instant at which the wall clock will read `at` (now when that has passed).
fn instant_at(at: Timestamp) -> Instant {
    let now = Instant::now();
    let wait = at.duration_since(Timestamp::now());
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 24 * 60 * 60)))
        .unwrap_or(now)
}

/// The wall-clock time at which the monotonic instant `at` falls.
fn wall_clock(at: Instant) -> Timestamp {
    Timestamp::now().saturating_add(at.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::source_date;

    const HOUR: Duration = Duration::from_secs(60 * 60);

    fn days_after_source(days: u32) -> Timestamp {
        source_date().saturating_add(DAY * days)
    }

    /// The cut the walk finds over `times` (newest first).
    fn walk(now: Timestamp, keep: Duration, times: &[Timestamp]) -> Walk {
        let mut walk = Walk::new(now, keep, longest_counted_gap(keep, HOUR / 2));
        for &time in times {
            if walk.step(time).is_break() {
                break;
            }
        }
        walk
    }

    /// A sample every `step` from `newest` back to `oldest`, newest first.
    fn every(step: Duration, newest: Timestamp, oldest: Timestamp) -> Vec<Timestamp> {
        let mut times = Vec::new();
        let mut time = newest;
        while time >= oldest {
            times.push(time);
            time = time.saturating_sub(step);
        }
        times
    }

    #[test]
    fn the_test_that_would_cross_the_budget_is_skipped() {
        let usage = |used: f64, last_test: Option<f64>| BudgetUse { used, last_test };
        // 95 GB used of 100 GB, the last test moved 8 GB: skipped, and said why.
        let skip = budget_verdict(usage(95e9, Some(8e9)), 100e9).unwrap();
        assert_eq!(skip.next_test, Some(8e9));
        assert_eq!(
            skip.message(100e9),
            "data budget of 100 GB for this month would be crossed by the next test (95.0 GB \
             moved by tests, and the last test moved 8.0 GB); tests resume next month"
        );
        // Exactly up to the budget still runs; past it does not.
        assert_eq!(budget_verdict(usage(92e9, Some(8e9)), 100e9), None);
        // No test of known volume: it runs until the use reaches the budget.
        assert_eq!(budget_verdict(usage(99e9, None), 100e9), None);
        let reached = budget_verdict(usage(150e9, None), 100e9).unwrap();
        assert_eq!(
            reached.message(100e9),
            "data budget of 100 GB for this month reached (150 GB moved by tests); tests resume next month"
        );
        assert_eq!(budget_verdict(usage(0.0, Some(1e9)), 100e9), None);
    }

    #[test]
    fn retention_warns_above_ten_deletions_and_twice_an_hour_of_runs() {
        assert_eq!(retention_warn_above(HOUR / 2), 10);
        assert_eq!(retention_warn_above(Duration::from_secs(5 * 60)), 24);
        assert_eq!(retention_warn_above(Duration::from_secs(7 * 60)), 18);
        assert_eq!(retention_warn_above(DAY), 10);
        assert_eq!(retention_warn_above(Duration::ZERO), 7200);
    }

    #[test]
    fn retention_cuts_what_is_older_than_it_keeps() {
        let now = days_after_source(500);
        let times = every(HOUR, now.saturating_sub(HOUR / 2), days_after_source(0));
        let walk = walk(now, DAY * 400, &times);
        assert_eq!(walk.cutoff(), days_after_source(100));
        assert_eq!(walk.held_back(now), None);
        assert_eq!(
            retention_cutoff(now, walk.cutoff(), None),
            Ok((days_after_source(100), None))
        );
    }

    #[test]
    fn a_clock_far_ahead_and_the_sample_it_wrote_delete_at_most_a_day_early() {
        // A run every 5.5 h up to day 600 with a right clock; then the clock is ten years
        // ahead and a run stored a sample dated then.
        let real = days_after_source(600);
        let mut times = vec![days_after_source(600 + 3650)];
        times.extend(every(HOUR * 11 / 2, real, days_after_source(0)));
        let now = days_after_source(600 + 3650).saturating_add(HOUR);
        let walk = walk(now, DAY * 400, &times);
        // The hour the wrong clock ran was real: a day early by the real time.
        let real_now = real.saturating_add(HOUR);
        assert_eq!(walk.cutoff(), real_now.saturating_sub(DAY * 399));
        let (wanted, gap) = walk.held_back(now).unwrap();
        assert_eq!(wanted, now.saturating_sub(DAY * 400));
        assert_eq!((gap.from, gap.to), (real, days_after_source(600 + 3650)));
    }

    #[test]
    fn a_clock_ahead_by_less_than_the_retention_deletes_at_most_a_day_early() {
        // A year ahead with --retention 400d: now - 400d would be 35 days before the real time.
        let real = days_after_source(600);
        let times = every(HOUR, real, days_after_source(0));
        let now = real.saturating_add(DAY * 365);
        assert!(walk(now, DAY * 400, &times).cutoff() <= real.saturating_sub(DAY * 399));
    }

    #[test]
    fn a_monitor_switched_off_keeps_its_old_samples_as_long_as_it_was_off_less_a_day() {
        let off_from = days_after_source(300);
        let back = days_after_source(330);
        let mut times = every(HOUR, days_after_source(500), back);
        times.extend(every(HOUR, off_from, days_after_source(0)));
        let now = days_after_source(500).saturating_add(HOUR / 2);
        let walk = walk(now, DAY * 400, &times);
        // 29 of the 30 days off are not counted.
        assert_eq!(
            walk.cutoff(),
            days_after_source(100 - 29).saturating_add(HOUR / 2)
        );
        assert_eq!(
            walk.held_back(now).map(|(_, gap)| gap),
            Some(Gap {
                from: off_from,
                to: back
            })
        );
    }

    #[test]
    fn a_gap_counts_as_a_day_or_the_schedule_but_at_most_a_quarter_of_the_retention() {
        assert_eq!(longest_counted_gap(DAY * 400, HOUR / 2), DAY);
        assert_eq!(longest_counted_gap(DAY * 400, DAY * 3), DAY * 3);
        assert_eq!(longest_counted_gap(DAY, HOUR / 2), HOUR * 6);
        assert_eq!(longest_counted_gap(DAY * 8, DAY * 7), DAY * 2);
    }

    #[test]
    fn retention_never_empties_the_store() {
        // Five samples from a right clock, then serve with the clock ten years ahead.
        let newest = days_after_source(10);
        let times = every(HOUR, newest, newest.saturating_sub(HOUR * 4));
        let now = days_after_source(10 + 3650);
        let walk = walk(now, DAY * 400, &times);
        assert!(walk.cutoff() < newest.saturating_sub(HOUR * 4));
    }

    #[test]
    fn retention_never_trusts_a_clock_before_the_source_date() {
        let now = source_date().saturating_sub(DAY * 2);
        assert_eq!(
            retention_cutoff(now, now.saturating_sub(DAY), None),
            Err(Hold::ClockBeforeSourceDate {
                now,
                source_date: source_date()
            })
        );
    }

    #[test]
    fn a_clock_stepped_forward_while_serving_cuts_at_the_monotonic_pace() {
        // The last pass cut at day 100; an hour later the clock jumped a few hours, and the
        // walk would cut later than the monotonic clock allows.
        let pace = days_after_source(100).saturating_add(Duration::from_secs(3_900));
        let record = days_after_source(100).saturating_add(HOUR * 5);
        let now = days_after_source(500);
        let (cutoff, wanted) = retention_cutoff(now, record, Some(pace)).unwrap();
        assert_eq!(cutoff, pace);
        assert_eq!(wanted, Some(record));
    }
}
