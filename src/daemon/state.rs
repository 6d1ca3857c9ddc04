//! What a serving process shares between the scheduler and the HTTP handlers, and the core
//! rule of recording: a sample is stored durably, then published ([`AppState::keep`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::manual::ManualRuns;
use super::worker::{WorkerConfig, Workers};
use crate::metrics::Metrics;
use crate::plan::{Plan, PlanHistory};
use crate::sample::{FailureReason, Outcome, Sample, Trigger};
use crate::speedtest::{Claim, Runner};
use crate::store::{Store, StoreError};
use crate::time::{ClockCheck, Timestamp};
use crate::zone::Zone;

/// The recorder's own store thread: appends, retention and the data budget queue here, never
/// behind requests. A handful of jobs at most are ever outstanding.
const RECORDER: WorkerConfig = WorkerConfig {
    name: "store-recorder",
    threads: 1,
    queue: 16,
    max_wait: None,
    nice: 0,
};

/// The store threads that answer requests (pages, exports, summaries): at most this many
/// reads run at once, at a lower priority than the recorder and the async threads; a request
/// that waits longer than [`READER_WAIT`] for room in the queue, or again as long in it, is
/// answered 503.
pub(crate) const READERS: WorkerConfig = WorkerConfig {
    name: "store-reader",
    threads: 2,
    queue: 64,
    max_wait: Some(READER_WAIT),
    nice: 10,
};

/// How long a request waits for a store reader, for room in the queue and then in it.
pub(crate) const READER_WAIT: Duration = Duration::from_secs(3);

/// The store, the metrics, the one test slot, and the newest success kept in memory.
pub struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) metrics: Metrics,
    pub(crate) runner: Runner,
    /// Every stored plan version, oldest first (`/api/v1/plan`, summaries, retests, the plan
    /// gauges and the dashboard, each with the version in force at the time it judges).
    pub(crate) plans: PlanHistory,
    /// The zone of `--timezone`: the default in which `/api/v1/summary?rules=` counts
    /// calendar days and peak windows (UTC until [`AppState::with_zone`]).
    pub(crate) zone: Zone,
    /// `Some` when `--enable-run-endpoint` lets clients start tests.
    pub(crate) manual_runs: Option<ManualRuns>,
    /// The one thread that writes the store (and reads it for the recorder).
    pub(crate) recorder: Workers,
    /// The threads that read the store for HTTP requests ([`READERS`]).
    pub(crate) readers: Arc<Workers>,
    /// One permit: the `/api/v1/summary` computed at a time
    /// ([`summary`](crate::http::api::summary)). This server's own, like the bound below, so
    /// that servers sharing a process (tests) do not queue behind each other.
    pub summaries: tokio::sync::Semaphore,
    /// `http::stream::MAX_STREAMS` (64) permits: the answers streamed at once.
    pub streams: Arc<tokio::sync::Semaphore>,
    latest_success: RwLock<Option<Arc<Sample>>>,
    /// The times of the last run and last success shown (gauges, `/latest`), so that a clock
    /// set back below them is noticed ([`AppState::rejudge`]).
    shown: Mutex<Shown>,
    /// Held while the store is written or read and the result published, so that a
    /// re-judging never publishes over a newer run.
    publishing: tokio::sync::Mutex<()>,
    /// Counts changes to the stored samples, so cached answers know when they are stale.
    generation: AtomicU64,
    /// The scheduler's `--interval` (`/api/v1/status`); zero until [`AppState::with_interval`].
    interval: Duration,
    /// When the running test started; `None` while no test runs.
    running_since: Mutex<Option<Timestamp>>,
    /// When the scheduler's next test is due; `None` until it has planned one.
    next_run: Mutex<Option<Timestamp>>,
    /// The `serve --campaign` campaign, when there is one (`/api/v1/campaign`).
    pub(crate) campaign: Option<Arc<crate::campaign::live::Live>>,
    /// The connectivity monitor's live state while `--probe-interval` is not `0s`.
    pub probes: Option<Arc<crate::probe::status::Status>>,
    /// Notified after each sample is committed to the store, which queued it in the outbox
    /// while remote_write is on: wakes the pusher ([`crate::push::pusher`]). A notification
    /// while the pusher is busy is kept for its next wait.
    pub(crate) outbox_wake: tokio::sync::Notify,
    /// Whether scheduled tests are being skipped for `--data-budget` now: said once when
    /// skipping starts and once when it ends, not at every slot.
    pub(crate) budget_skipping: std::sync::atomic::AtomicBool,
}

/// The times of the last run and last success on show.
#[derive(Clone, Copy, Debug, Default)]
struct Shown {
    run: Option<Timestamp>,
    success: Option<Timestamp>,
}

impl Shown {
    /// The later of the two: what must not be after now.
    fn newest(self) -> Option<Timestamp> {
        self.run.max(self.success)
    }
}

impl AppState {
    /// The shared state, with the store threads started; fails only if the system refuses a
    /// thread. `last_run` and `latest_success` are what the metrics were restored from.
    pub fn new(
        store: Arc<Store>,
        metrics: Metrics,
        runner: Runner,
        manual_runs: Option<ManualRuns>,
        last_run: Option<Timestamp>,
        latest_success: Option<Sample>,
    ) -> std::io::Result<Self> {
        let shown = Shown {
            run: last_run,
            success: latest_success.as_ref().map(|sample| sample.time),
        };
        Ok(AppState {
            recorder: Workers::start(store.clone(), RECORDER)?,
            readers: Arc::new(Workers::start(store.clone(), READERS)?),
            summaries: tokio::sync::Semaphore::new(1),
            streams: Arc::new(tokio::sync::Semaphore::new(
                crate::http::stream::MAX_STREAMS,
            )),
            store,
            metrics,
            runner,
            plans: PlanHistory::default(),
            zone: Zone::utc(),
            manual_runs,
            latest_success: RwLock::new(latest_success.map(Arc::new)),
            shown: Mutex::new(shown),
            publishing: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            interval: Duration::ZERO,
            running_since: Mutex::new(None),
            next_run: Mutex::new(None),
            campaign: None,
            probes: None,
            outbox_wake: tokio::sync::Notify::new(),
            budget_skipping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The same state, knowing the stored plan history (empty when not told).
    pub(crate) fn with_plans(mut self, plans: PlanHistory) -> Self {
        self.plans = plans;
        self
    }

    /// The same state, counting calendar days and local hours in `zone` (`--timezone`).
    pub(crate) fn with_zone(mut self, zone: Zone) -> Self {
        self.zone = zone;
        self
    }

    /// The judged plan in force at `time` (unset when no version is): a version stored with a
    /// later `from` takes over at its time, without a restart.
    pub(crate) fn plan_at(&self, time: Timestamp) -> Plan {
        self.plans.plan_at(time)
    }

    /// The same state, with the `serve --campaign` campaign.
    pub(crate) fn with_campaign(
        mut self,
        campaign: Option<Arc<crate::campaign::live::Live>>,
    ) -> Self {
        self.campaign = campaign;
        self
    }

    /// The same state, with the connectivity monitor's live state.
    pub(crate) fn with_probes(mut self, probes: Option<Arc<crate::probe::status::Status>>) -> Self {
        self.probes = probes;
        self
    }

    /// The same state, knowing the scheduler's `--interval`.
    pub(crate) fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The scheduler's interval between tests (zero when not told).
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// When the test running now started, `None` while none runs.
    pub(crate) fn running_since(&self) -> Option<Timestamp> {
        self.running_since.lock().ok().and_then(|since| *since)
    }

    /// When the scheduler's next test is due, `None` before it planned one.
    pub(crate) fn next_run(&self) -> Option<Timestamp> {
        self.next_run.lock().ok().and_then(|next| *next)
    }

    /// Says when the scheduler's next test is due (the metric and `/api/v1/status`).
    pub(crate) fn set_next_run(&self, at: Option<Timestamp>) {
        self.metrics.set_next_run(at);
        if let Ok(mut next) = self.next_run.lock() {
            *next = at;
        }
    }

    pub(super) fn set_running(&self, since: Option<Timestamp>) {
        self.metrics.set_running(since.is_some());
        if let Ok(mut running) = self.running_since.lock() {
            *running = since;
        }
    }

    /// Changes whenever samples are added or deleted.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Says that the stored samples changed (retention deleted some, a run was stored).
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The newest stored success, without reading the store.
    pub(crate) fn latest_success(&self) -> Option<Arc<Sample>> {
        self.latest_success
            .read()
            .ok()
            .and_then(|latest| latest.clone())
    }

    /// Runs one test in a claimed slot, stores its sample durably and only then publishes it
    /// (metrics, `/latest`, the log). Returns the sample, stored or not.
    pub(crate) async fn run_and_keep(&self, claim: Claim, trigger: Trigger) -> Sample {
        self.run_and_keep_from(claim, trigger, Timestamp::now())
            .await
    }

    /// [`AppState::run_and_keep`] with the sample dated `started` (what a manual run's 202
    /// answer told its client).
    pub(super) async fn run_and_keep_from(
        &self,
        claim: Claim,
        trigger: Trigger,
        started: Timestamp,
    ) -> Sample {
        self.set_running(Some(started));
        let sample = self.runner.run_claimed_at(claim, trigger, started).await;
        self.set_running(None);
        self.keep(sample.clone()).await;
        sample
    }

    /// Stores `sample` durably, then publishes it; a store failure is counted and logged, and
    /// the sample is then not published (what is shown must be what is kept).
    pub(crate) async fn keep(&self, sample: Sample) {
        let _publishing = self.publishing.lock().await;
        // A durable commit waits for fsync: on the recorder's own thread, off the async threads
        // and out of reach of anything HTTP clients can fill. A run or success on show dated
        // after this one means the clock was set back since: what is shown is read again, at
        // or before this sample's time, in the same job.
        let shown = self.shown().newest();
        let kept = self
            .recorder
            .run(move |store| {
                let stored = store.append(&sample)?;
                // Stored is stored: a failure to read again is said apart, not as a lost sample.
                let again = shown
                    .filter(|&shown| shown > stored.time)
                    .map(|_| Latest::read(store, stored.time));
                Ok::<_, StoreError>((stored, again))
            })
            .await;
        match kept {
            Ok(Ok((stored, again))) => {
                if let ClockCheck::BeforeSourceDate { now, source_date } =
                    ClockCheck::of(stored.time)
                {
                    tracing::error!(
                        %now,
                        %source_date,
                        "the clock is wrong: it reads {now}, before this program's source date \
                         {source_date}; the run is stored with that time"
                    );
                }
                self.changed();
                // Committed, so queued: the pusher may take it.
                self.outbox_wake.notify_one();
                self.metrics.record(&stored);
                match again {
                    Some(Ok(latest)) => self.show_again(stored.time, latest),
                    again => {
                        if let Some(Err(err)) = again {
                            tracing::error!(%err, "cannot read the last run and success again after the clock was set back");
                        }
                        let mut shown = self.shown();
                        if stored.outcome != Outcome::Skipped {
                            shown.run = Some(stored.time);
                        }
                        if stored.is_success() {
                            shown.success = Some(stored.time);
                            self.set_latest_success(Some(stored.clone()));
                        }
                        self.set_shown(shown);
                    }
                }
                // Logged last: whoever reads the log line finds the run published everywhere.
                log_run(&stored);
                // Stored, but in a file deleted or replaced since it was opened: counted and
                // said with every sample, as nothing of it will be at --db.
                if let Err(err) = self.store.check_file() {
                    self.metrics.store_error();
                    tracing::error!(time = %stored.time, %err, "the sample was stored in the open file, which is no longer the file at --db");
                }
            }
            Ok(Err(err)) => {
                self.metrics.store_error();
                tracing::error!(%err, "the test's sample could not be stored, so it is not published");
            }
            Err(err) => {
                self.metrics.store_error();
                tracing::error!(%err, "storing the test's sample failed");
            }
        }
    }

    /// Re-judges the last run and last success on show against the clock: when either is dated
    /// after `now` (the clock was set back since a wrong one recorded it), shows the newest at
    /// or before `now` from the store instead, and says so. Reads the store only then, on the
    /// recorder's thread.
    pub(crate) async fn rejudge(&self, now: Timestamp) {
        if self.shown().newest().is_none_or(|shown| shown <= now) {
            return;
        }
        let _publishing = self.publishing.lock().await;
        // Looked at again: a run kept meanwhile may have put it right.
        if self.shown().newest().is_none_or(|shown| shown <= now) {
            return;
        }
        match self
            .recorder
            .run(move |store| Latest::read(store, now))
            .await
        {
            Ok(Ok(latest)) => self.show_again(now, latest),
            Ok(Err(err)) => {
                tracing::error!(%err, "cannot read the last run and success again after the clock was set back");
            }
            Err(err) => tracing::error!(%err, "reading the last run and success again failed"),
        }
    }

    /// Shows `latest` (read at `now`) in place of a last run or success dated after `now`,
    /// loudly.
    fn show_again(&self, now: Timestamp, latest: Latest) {
        let before = self.shown();
        let Latest { run, success } = latest;
        self.metrics.show_latest(run.as_ref(), success.as_ref());
        let after = Shown {
            run: run
                .as_ref()
                .filter(|run| run.outcome != Outcome::Skipped)
                .map(|run| run.time),
            success: success.as_ref().map(|success| success.time),
        };
        self.set_latest_success(success);
        self.set_shown(after);
        let shown = |time: Option<Timestamp>| {
            time.map(|time| time.to_string())
                .unwrap_or_else(|| "none".to_owned())
        };
        tracing::error!(
            %now,
            was = %shown(before.newest()),
            last_run = %shown(after.run),
            last_success = %shown(after.success),
            "the clock was set back: it reads {now}, before the last run or success on show ({}), \
             which a clock that was ahead recorded; /latest and the last-run and last-success \
             gauges now show the newest at or before now (last success: {}); the later samples \
             are kept",
            shown(before.newest()),
            shown(after.success)
        );
    }

    fn shown(&self) -> Shown {
        self.shown.lock().map(|shown| *shown).unwrap_or_default()
    }

    fn set_shown(&self, shown: Shown) {
        if let Ok(mut current) = self.shown.lock() {
            *current = shown;
        }
    }

    fn set_latest_success(&self, success: Option<Sample>) {
        if let Ok(mut latest) = self.latest_success.write() {
            *latest = success.map(Arc::new);
        }
    }
}

/// The newest run and newest success at or before a time, as the store has them.
struct Latest {
    run: Option<Sample>,
    success: Option<Sample>,
}

impl Latest {
    fn read(store: &Store, now: Timestamp) -> Result<Self, StoreError> {
        Ok(Latest {
            run: store.latest_run_at(now)?,
            success: store.latest_success_at(now)?,
        })
    }
}

/// The server a sample names, in a few words for the log: `Example ISP (Berlin) #1234`, or
/// the host; empty when it names none.
pub(crate) fn describe_server(sample: &Sample) -> String {
    let Some(server) = sample.server.as_deref() else {
        return sample
            .engine
            .as_deref()
            .and_then(|engine| engine.url.clone())
            .unwrap_or_default();
    };
    let mut words = server
        .name
        .clone()
        .or_else(|| server.host.clone())
        .unwrap_or_default();
    if let Some(location) = &server.location {
        words.push_str(&format!(" ({location})"));
    }
    if let Some(id) = server.id {
        words.push_str(&format!(" #{id}"));
    }
    words.trim().to_owned()
}

/// One line per run, its figures for people ([`crate::units::for_people`]): speeds in Mbit/s,
/// latencies in ms, the data it moved in MB, each with its unit in the field's name. The
/// sample's message goes in field `detail`: a field named `message` would take the place of
/// the line's own words (in JSON, the same key twice). A skipped run is not logged here: the
/// data budget says once when skipping starts and once when it ends (`serve`).
fn log_run(sample: &Sample) {
    use crate::units::for_people::{mb, mbit_s, ms};
    if sample.outcome == Outcome::Skipped {
        return tracing::debug!(
            time = %sample.time,
            trigger = %sample.trigger.as_str(),
            reason = %sample.reason.map(FailureReason::as_str).unwrap_or_default(),
            detail = sample.message.as_deref().unwrap_or_default(),
            "test skipped again"
        );
    }
    let data_used_mb = match (sample.downloaded_bytes, sample.uploaded_bytes) {
        (None, None) => None,
        (down, up) => Some(mb(down.unwrap_or(0).saturating_add(up.unwrap_or(0)) as f64)),
    };
    let server = describe_server(sample);
    match sample.reason {
        None => tracing::info!(
            time = %sample.time,
            trigger = %sample.trigger.as_str(),
            download_mbit_s = sample.download_bytes_per_second.map(mbit_s),
            upload_mbit_s = sample.upload_bytes_per_second.map(mbit_s),
            ping_ms = sample.ping_seconds.map(ms),
            jitter_ms = sample.jitter_seconds.map(ms),
            data_used_mb,
            server = server.as_str(),
            "test succeeded"
        ),
        Some(reason) => tracing::warn!(
            time = %sample.time,
            trigger = %sample.trigger.as_str(),
            %reason,
            detail = sample.message.as_deref().unwrap_or_default(),
            data_used_mb,
            server = server.as_str(),
            "test failed"
        ),
    }
}
