//! Prometheus metrics: what a scrape sees of the last runs, kept current from stored samples.
//!
//! Every value is in base units (bytes, seconds, ratios). A value nobody knows is exported as no
//! series at all, never as 0: a dashboard must not draw a 0 Mbit/s line for "no test yet".

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::plan::{Plan, PlanHistory};
use crate::sample::{FailureReason, Outcome, Sample};
use crate::time::Timestamp;
use crate::units::Bandwidth;

/// The names of the gauges that describe one run, shared with the OpenMetrics export
/// (`export --format openmetrics`), so that a backfilled history and a scraped one are the same
/// series.
pub mod family {
    /// `speedtest_download_bytes_per_second`
    pub const DOWNLOAD: &str = "speedtest_download_bytes_per_second";
    /// `speedtest_upload_bytes_per_second`
    pub const UPLOAD: &str = "speedtest_upload_bytes_per_second";
    /// `speedtest_ping_latency_seconds`
    pub const PING: &str = "speedtest_ping_latency_seconds";
    /// `speedtest_ping_jitter_seconds`
    pub const JITTER: &str = "speedtest_ping_jitter_seconds";
    /// `speedtest_download_latency_seconds`
    pub const DOWNLOAD_LATENCY: &str = "speedtest_download_latency_seconds";
    /// `speedtest_upload_latency_seconds`
    pub const UPLOAD_LATENCY: &str = "speedtest_upload_latency_seconds";
    /// `speedtest_up`
    pub const UP: &str = "speedtest_up";
    /// `speedtest_run_duration_seconds`
    pub const RUN_DURATION: &str = "speedtest_run_duration_seconds";
}

/// The `Content-Type` of what [`Metrics::render`] returns (text exposition format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `result` label of `speedtest_runs_total` for a successful run; failures use their reason.
const SUCCESS: &str = "success";

/// How long a rendered exposition may be served again while none of our own series changed.
/// Only the `process_*` series can move meanwhile (CPU time, memory); reading them means opening
/// and parsing `/proc/self/stat` and `/proc/self/limits`, most of a scrape's cost, so a scraper
/// gone wild (or a load test) gets them up to this stale instead of burning the CPU the speed
/// tests need. Prometheus scrapes every 15 s or so and never notices.
const PROCESS_MAX_AGE: Duration = Duration::from_secs(1);

const DOWNLOAD: &str = "download";
const UPLOAD: &str = "upload";

/// A gauge that exports no series at all until it has a value. A plain `Gauge` always exports
/// its value, 0 before anything is set, which would read as a measured 0. This is a `GaugeVec`
/// without labels whose single child exists only while a value is set; the registry prunes
/// families without children, so their `# HELP`/`# TYPE` lines disappear too.
#[derive(Clone)]
struct OptionalGauge(GaugeVec);

impl OptionalGauge {
    fn new(name: &str, help: &str) -> Result<Self, prometheus::Error> {
        Ok(OptionalGauge(GaugeVec::new(Opts::new(name, help), &[])?))
    }

    /// Shows `value`, or removes the series for `None`. NaN and infinities count as unknown:
    /// no measurement is infinite, and the encoder would write Rust's `inf`, not `+Inf`.
    fn set(&self, value: Option<f64>) {
        match value.filter(|value| value.is_finite()) {
            Some(value) => {
                // Cannot fail: the number of label values (none) is the number of labels.
                if let Ok(gauge) = self.0.get_metric_with_label_values::<&str>(&[]) {
                    gauge.set(value);
                }
            }
            None => self.0.reset(),
        }
    }
}

/// The process's Prometheus series, on a registry of their own (not the crate-global default,
/// so tests and a future second instance cannot see each other's series).
pub struct Metrics {
    registry: Registry,
    /// Held while an update or a render runs, so a scrape never sees half of a `record` (runs
    /// counted but `speedtest_up` not yet changed, an info series reset but not yet set). It
    /// guards the last rendered exposition, which every update throws away.
    rendered: Mutex<Option<Rendered>>,
    download: OptionalGauge,
    upload: OptionalGauge,
    ping: OptionalGauge,
    jitter: OptionalGauge,
    packet_loss: OptionalGauge,
    download_latency: OptionalGauge,
    upload_latency: OptionalGauge,
    transferred: IntCounterVec,
    runs: IntCounterVec,
    up: OptionalGauge,
    running: IntGauge,
    last_run: OptionalGauge,
    last_success: OptionalGauge,
    next_run: OptionalGauge,
    run_duration: OptionalGauge,
    server_info: IntGaugeVec,
    isp_info: IntGaugeVec,
    engine_info: IntGaugeVec,
    samples: IntGauge,
    store_errors: IntCounter,
    plan_download: OptionalGauge,
    plan_upload: OptionalGauge,
    plan_threshold: OptionalGauge,
    /// The plan the plan gauges show, so [`Metrics::show_plan_at`] updates them only on a change.
    shown_plan: Mutex<Option<Plan>>,
    interval: OptionalGauge,
    /// `serve --campaign` progress by rule set; no series without a campaign.
    campaign: Vec<GaugeVec>,
}

/// An exposition and when it was rendered.
struct Rendered {
    at: Instant,
    text: Bytes,
}

impl Metrics {
    /// Registers every series, including the process collector on the custom registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| -> Result<OptionalGauge, prometheus::Error> {
            let gauge = OptionalGauge::new(name, help)?;
            register(&registry, gauge.0.clone())?;
            Ok(gauge)
        };

        let metrics = Metrics {
            download: gauge(
                family::DOWNLOAD,
                "Download bandwidth of the last successful speed test, in bytes per second.",
            )?,
            upload: gauge(
                family::UPLOAD,
                "Upload bandwidth of the last successful speed test, in bytes per second.",
            )?,
            ping: gauge(
                family::PING,
                "Idle latency (ping) of the last successful speed test, in seconds.",
            )?,
            jitter: gauge(
                family::JITTER,
                "Idle jitter of the last successful speed test, in seconds.",
            )?,
            packet_loss: gauge(
                "speedtest_packet_loss_ratio",
                "Packet loss of the last successful speed test, as a ratio from 0 to 1; absent when the CLI did not report it, and after the HTTP engine's, which does not measure it.",
            )?,
            download_latency: gauge(
                family::DOWNLOAD_LATENCY,
                "Latency under download load of the last successful speed test (the Ookla CLI's interquartile mean, the HTTP engine's median), in seconds.",
            )?,
            upload_latency: gauge(
                family::UPLOAD_LATENCY,
                "Latency under upload load of the last successful speed test (the Ookla CLI's interquartile mean, the HTTP engine's median), in seconds.",
            )?,
            plan_download: gauge(
                "speedtest_plan_download_bytes_per_second",
                "Contracted download bandwidth (--plan-download), in bytes per second; absent when not configured.",
            )?,
            plan_upload: gauge(
                "speedtest_plan_upload_bytes_per_second",
                "Contracted upload bandwidth (--plan-upload), in bytes per second; absent when not configured.",
            )?,
            plan_threshold: gauge(
                "speedtest_plan_threshold_ratio",
                "Share of the contracted bandwidth a test must reach to count as delivered (--plan-threshold), from 0 to 1; absent when no plan is configured.",
            )?,
            shown_plan: Mutex::new(None),
            interval: gauge(
                "speedtest_interval_seconds",
                "Time between scheduled speed tests (--interval), in seconds.",
            )?,
            campaign: [
                ("measurements", "Measurements of the serve --campaign measurement campaign that count towards its rule set's protocol (indicative: the legal procedure requires the regulator's own tool)."),
                ("measurements_required", "Measurements the campaign's rule set requires."),
                ("days", "Measurement days (at-rtr: cycles) of the campaign that count."),
                ("days_required", "Measurement days (cycles) the campaign's rule set requires."),
                ("complete", "1 once the campaign's protocol is complete, else 0."),
            ]
            .into_iter()
            .map(|(figure, help)| {
                let name = format!("internet_monitor_campaign_{figure}");
                register(&registry, GaugeVec::new(Opts::new(name, help), &["rules"])?)
            })
            .collect::<Result<Vec<_>, _>>()?,
            transferred: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "speedtest_transferred_bytes_total",
                        "Bytes moved by speed tests since this process started, by direction: successes, and failures that say what they moved (the HTTP engine's; the Ookla CLI's failures do not say).",
                    ),
                    &["direction"],
                )?,
            )?,
            runs: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "speedtest_runs_total",
                        "Speed-test runs since this process started, by result: success, the failure reason, or data_budget for a run skipped because the monthly data budget was used up.",
                    ),
                    &["result"],
                )?,
            )?,
            up: gauge(
                family::UP,
                "1 if the last speed-test run succeeded, 0 if it failed.",
            )?,
            running: register(
                &registry,
                IntGauge::new(
                    "speedtest_running",
                    "1 while a speed test is running, else 0.",
                )?,
            )?,
            last_run: gauge(
                "speedtest_last_run_timestamp_seconds",
                "Start of the last speed-test run, whatever its outcome, in seconds since the Unix epoch.",
            )?,
            last_success: gauge(
                "speedtest_last_success_timestamp_seconds",
                "Start of the last successful speed test, in seconds since the Unix epoch.",
            )?,
            next_run: gauge(
                "speedtest_next_run_timestamp_seconds",
                "When the next scheduled speed test starts, in seconds since the Unix epoch.",
            )?,
            run_duration: gauge(
                family::RUN_DURATION,
                "Wall-clock duration of the last speed-test run, in seconds.",
            )?,
            server_info: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "speedtest_server_info",
                        "Speedtest server of the last successful test; the value is always 1.",
                    ),
                    &["id", "name", "location", "country"],
                )?,
            )?,
            isp_info: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "speedtest_isp_info",
                        "Internet service provider reported by the last successful test; the value is always 1.",
                    ),
                    &["isp"],
                )?,
            )?,
            engine_info: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "speedtest_engine_info",
                        "Engine that made the last speed-test run, success or failure: engine is ookla (the Ookla Speedtest CLI) or http (the built-in HTTP engine); protocol (cloudflare or librespeed), url (the server's base URL) and streams (parallel TCP connections per direction) are the HTTP engine's, empty for ookla. The value is always 1.",
                    ),
                    &["engine", "protocol", "url", "streams"],
                )?,
            )?,
            samples: register(
                &registry,
                IntGauge::new(
                    "internet_monitor_samples",
                    "Samples (runs of any outcome) held in the store.",
                )?,
            )?,
            store_errors: register(
                &registry,
                IntCounter::new(
                    "internet_monitor_store_errors_total",
                    "Samples that could not be written to the store since this process started.",
                )?,
            )?,
            rendered: Mutex::new(None),
            registry,
        };

        // Every result exists from the start at 0, so `increase()` sees the first failure of a
        // kind as a step from 0 rather than as a series appearing out of nowhere.
        metrics.runs.get_metric_with_label_values(&[SUCCESS])?;
        for reason in FailureReason::ALL {
            metrics
                .runs
                .get_metric_with_label_values(&[reason.as_str()])?;
        }
        for direction in [DOWNLOAD, UPLOAD] {
            metrics
                .transferred
                .get_metric_with_label_values(&[direction])?;
        }

        let build_info = register(
            &metrics.registry,
            IntGaugeVec::new(
                Opts::new(
                    "internet_monitor_build_info",
                    "Version and source revision of this build; the value is always 1.",
                ),
                &["version", "revision"],
            )?,
        )?;
        build_info
            .get_metric_with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("INTERNET_MONITOR_REVISION").unwrap_or("unknown"),
            ])?
            .set(1);

        // The process collector only exists where procfs does.
        #[cfg(target_os = "linux")]
        metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(metrics)
    }

    /// At start-up: shows what the store knows, so a restart does not blank the dashboards until
    /// the next run. Measurements, info series and last-success time come from `last_success`;
    /// `speedtest_up`, last-run time and run duration from `last_run`. Counters are not restored:
    /// they count since this process started, which is what `rate()` expects of a counter.
    pub fn restore(
        &self,
        last_run: Option<&Sample>,
        last_success: Option<&Sample>,
        samples_in_store: u64,
    ) {
        let _consistent = self.lock_to_update();
        self.show_last_run(last_run.filter(|sample| is_run(sample)));
        self.show_last_success(last_success.filter(|sample| sample.is_success()));
        self.samples.set(saturating_i64(samples_in_store));
    }

    /// After the clock was set back below the last run or success on show: shows these
    /// instead (the newest at or before now), as [`Metrics::restore`] does, counters untouched.
    pub fn show_latest(&self, last_run: Option<&Sample>, last_success: Option<&Sample>) {
        let _consistent = self.lock_to_update();
        self.show_last_run(last_run.filter(|sample| is_run(sample)));
        self.show_last_success(last_success.filter(|sample| sample.is_success()));
    }

    /// After a sample was stored: counts the run and shows it. A failure leaves the measurement
    /// gauges alone: they describe the last success, which it does not change.
    pub fn record(&self, sample: &Sample) {
        let _consistent = self.lock_to_update();
        self.samples.inc();
        // A skipped run is counted under its reason (data_budget), so dashboards show why
        // tests stopped, but it is not the last run: nothing was measured.
        if let Some(result) = result_label(sample)
            && let Ok(counter) = self.runs.get_metric_with_label_values(&[result])
        {
            counter.inc();
        }
        if !is_run(sample) {
            return;
        }
        self.show_last_run(Some(sample));
        if sample.is_success() {
            self.show_last_success(Some(sample));
        }
        // A failure moved what it moved before it failed (where its engine says): the line
        // carried it all the same.
        self.count_transferred(DOWNLOAD, sample.downloaded_bytes);
        self.count_transferred(UPLOAD, sample.uploaded_bytes);
    }

    /// The contracted speeds and the share of them that counts as delivered, so dashboards
    /// and alerts compare against what the flags say rather than a copy of them.
    pub fn set_plan(&self, plan: &Plan) {
        let _consistent = self.lock_to_update();
        self.plan_download
            .set(plan.download.map(Bandwidth::bytes_per_second));
        self.plan_upload
            .set(plan.upload.map(Bandwidth::bytes_per_second));
        self.plan_threshold
            .set(plan.is_set().then_some(plan.threshold));
    }

    /// Shows the plan of `plans` in force at `now` (a version stored with a later `from` takes
    /// over at its time, without a restart). Called before each scrape and after each run; the
    /// gauges, and the rendering cached for [`PROCESS_MAX_AGE`], change only when the plan does.
    pub fn show_plan_at(&self, plans: &PlanHistory, now: Timestamp) {
        let plan = plans.plan_at(now);
        let mut shown = self
            .shown_plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *shown != Some(plan) {
            self.set_plan(&plan);
            *shown = Some(plan);
        }
    }

    /// The schedule's interval, so alerts can tell "no success for a while" relative to it.
    pub fn set_interval(&self, interval: Duration) {
        let _consistent = self.lock_to_update();
        self.interval.set(Some(interval.as_secs_f64()));
    }

    /// Shows a campaign's progress (`serve --campaign`) for the rule set named `rules`.
    pub fn set_campaign(&self, rules: &str, progress: &crate::rules::Progress) {
        let _consistent = self.lock_to_update();
        let figures = [
            progress.measurements as f64,
            progress.measurements_required as f64,
            progress.days as f64,
            progress.days_required as f64,
            if progress.complete { 1.0 } else { 0.0 },
        ];
        for (family, value) in self.campaign.iter().zip(figures) {
            // Cannot fail: one label value for one label.
            if let Ok(gauge) = family.get_metric_with_label_values(&[rules]) {
                gauge.set(value);
            }
        }
    }

    pub fn set_running(&self, running: bool) {
        let _consistent = self.lock_to_update();
        self.running.set(i64::from(running));
    }

    /// When the next scheduled run starts; `None` (nothing scheduled) removes the series.
    pub fn set_next_run(&self, at: Option<Timestamp>) {
        let _consistent = self.lock_to_update();
        self.next_run.set(at.map(Timestamp::as_seconds_f64));
    }

    /// A sample could not be written to the store.
    pub fn store_error(&self) {
        let _consistent = self.lock_to_update();
        self.store_errors.inc();
    }

    /// The number of samples in the store, after retention deleted some.
    pub fn set_samples(&self, count: u64) {
        let _consistent = self.lock_to_update();
        self.samples.set(saturating_i64(count));
    }

    /// Everything registered, in the text exposition format 0.0.4 ([`CONTENT_TYPE`]). Our own
    /// series are always current; the `process_*` ones at most [`PROCESS_MAX_AGE`] old.
    pub fn render(&self) -> Result<Bytes, prometheus::Error> {
        let mut rendered = self.lock();
        if let Some(last) = rendered.as_ref()
            && last.at.elapsed() < PROCESS_MAX_AGE
        {
            return Ok(last.text.clone());
        }
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text)?;
        let text = Bytes::from(text);
        *rendered = Some(Rendered {
            at: Instant::now(),
            text: text.clone(),
        });
        Ok(text)
    }

    /// For an update: the consistency lock, with the last rendered exposition already thrown
    /// away, so the next scrape shows the update. The lock protects no data a panic could leave
    /// half-written, only the all-at-once view; should it ever be poisoned, carry on rather than
    /// take the exporter down over a scrape that might be slightly inconsistent.
    fn lock_to_update(&self) -> MutexGuard<'_, Option<Rendered>> {
        let mut rendered = self.lock();
        *rendered = None;
        rendered
    }

    fn lock(&self) -> MutexGuard<'_, Option<Rendered>> {
        self.rendered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn show_last_run(&self, run: Option<&Sample>) {
        self.up
            .set(run.map(|run| if run.is_success() { 1.0 } else { 0.0 }));
        self.last_run.set(run.map(|run| run.time.as_seconds_f64()));
        self.run_duration
            .set(run.and_then(|run| run.duration_seconds));
        // Only the last run's engine: a series per engine ever used would look current.
        self.engine_info.reset();
        if let Some(engine) = run.and_then(|run| run.engine.as_deref()) {
            let streams = engine.streams.map(|n| n.to_string()).unwrap_or_default();
            let labels = [
                engine.name.as_str(),
                engine.protocol.map(|p| p.as_str()).unwrap_or_default(),
                engine.url.as_deref().unwrap_or_default(),
                streams.as_str(),
            ];
            if let Ok(gauge) = self.engine_info.get_metric_with_label_values(&labels) {
                gauge.set(1);
            }
        }
    }

    /// Every value comes from this one success: one it did not report is removed, not kept from
    /// an older success, or the figures shown together would come from different tests.
    fn show_last_success(&self, success: Option<&Sample>) {
        let value = |field: fn(&Sample) -> Option<f64>| success.and_then(field);
        self.download.set(value(|s| s.download_bytes_per_second));
        self.upload.set(value(|s| s.upload_bytes_per_second));
        self.ping.set(value(|s| s.ping_seconds));
        self.jitter.set(value(|s| s.jitter_seconds));
        self.packet_loss.set(value(|s| s.packet_loss_ratio));
        self.download_latency
            .set(value(|s| s.download_latency_seconds));
        self.upload_latency.set(value(|s| s.upload_latency_seconds));
        self.last_success
            .set(success.map(|s| s.time.as_seconds_f64()));

        // An info series per server ever seen would make every old server look current.
        self.server_info.reset();
        if let Some(server) = success.and_then(|s| s.server.as_deref()) {
            let id = server.id.map(|id| id.to_string()).unwrap_or_default();
            let labels = [
                id.as_str(),
                server.name.as_deref().unwrap_or(""),
                server.location.as_deref().unwrap_or(""),
                server.country.as_deref().unwrap_or(""),
            ];
            if let Ok(gauge) = self.server_info.get_metric_with_label_values(&labels) {
                gauge.set(1);
            }
        }
        self.isp_info.reset();
        if let Some(isp) = success.and_then(|s| s.isp.as_deref())
            && let Ok(gauge) = self.isp_info.get_metric_with_label_values(&[isp])
        {
            gauge.set(1);
        }
    }

    fn count_transferred(&self, direction: &str, bytes: Option<u64>) {
        if let Some(bytes) = bytes
            && let Ok(counter) = self.transferred.get_metric_with_label_values(&[direction])
        {
            counter.inc_by(bytes);
        }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

/// A skipped sample records a run that was due but not made: it says nothing about the line.
fn is_run(sample: &Sample) -> bool {
    sample.outcome != Outcome::Skipped
}

/// `None` for a failure without a reason (which `Sample::validate` rejects): better uncounted
/// than counted under a result that was never pre-initialised or a reason it did not have.
fn result_label(sample: &Sample) -> Option<&'static str> {
    match sample.outcome {
        Outcome::Success => Some(SUCCESS),
        Outcome::Failure => sample.reason.map(FailureReason::as_str),
        Outcome::Skipped => sample.reason.map(FailureReason::as_str),
    }
}

fn saturating_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The connectivity monitor's families (issue 15). SKELETON: the signatures are the contract
/// between the monitor and `/metrics`; the bodies land with the metrics work.
impl Metrics {
    /// One probe's result: `probe_success`, the sent and lost counters.
    pub fn observe_probe(&self, target: &crate::probe::Target, result: &crate::probe::ProbeResult) {
        let _ = (target, result);
    }

    /// A finished minute of one target: its RTT min/median/max and loss gauges.
    pub fn observe_probe_minute(
        &self,
        target: &crate::probe::Target,
        minute: &crate::probe::minute::MinuteAggregate,
    ) {
        let _ = (target, minute);
    }

    /// After each round: whether the line is up and the ongoing outage, if any.
    pub fn observe_round(
        &self,
        round: &crate::probe::outage::Round,
        ongoing: Option<&crate::probe::outage::Outage>,
    ) {
        let _ = (round, ongoing);
    }

    /// Monitored down time to add to `outage_seconds_total{kind}`.
    pub fn add_outage_time(&self, kind: crate::probe::outage::OutageKind, time: Duration) {
        let _ = (kind, time);
    }

    /// An outage opened: `outages_total{kind}` and the last outage's start.
    pub fn outage_opened(&self, outage: &crate::probe::outage::Outage) {
        let _ = outage;
    }

    /// At start-up: the newest stored outage of each kind, for the last-outage gauges.
    pub fn restore_outages(&self, newest: &[crate::probe::outage::Outage]) {
        let _ = newest;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sample::{Engine, EngineName, HttpProtocol, Server, Trigger};

    const T0: u64 = 1_795_546_073_292;

    fn text(metrics: &Metrics) -> String {
        String::from_utf8(metrics.render().unwrap().to_vec()).unwrap()
    }

    fn lines(metrics: &Metrics) -> Vec<String> {
        text(metrics).lines().map(str::to_owned).collect()
    }

    /// Asserts the exact sample line is rendered.
    fn assert_line(metrics: &Metrics, line: &str) {
        let all = lines(metrics);
        assert!(
            all.iter().any(|l| l == line),
            "missing {line:?} in\n{}",
            all.join("\n")
        );
    }

    /// Asserts no line (sample, `# HELP` or `# TYPE`) names the family.
    fn assert_absent(metrics: &Metrics, family: &str) {
        let text = text(metrics);
        let mentions = text.lines().any(|line| {
            let line = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .unwrap_or(line);
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        });
        assert!(!mentions, "{family} should be absent in\n{text}");
    }

    fn server(id: u64, name: &str) -> Arc<Server> {
        Arc::new(Server {
            id: Some(id),
            name: Some(name.to_owned()),
            location: Some("Zurich".to_owned()),
            country: Some("Switzerland".to_owned()),
            host: Some("speedtest.example.net:8080".to_owned()),
        })
    }

    fn success(millis: u64) -> Sample {
        Sample {
            duration_seconds: Some(21.5),
            download_bytes_per_second: Some(92_727_670.0),
            upload_bytes_per_second: Some(11_612_345.0),
            ping_seconds: Some(0.01234),
            jitter_seconds: Some(0.000567),
            packet_loss_ratio: Some(0.002),
            download_latency_seconds: Some(0.0456),
            upload_latency_seconds: Some(0.0789),
            downloaded_bytes: Some(1_120_000_000),
            uploaded_bytes: Some(140_000_000),
            server: Some(server(12345, "Init7 AG")),
            isp: Some(Arc::from("Init7")),
            ..Sample::empty(Timestamp::from_millis(millis), Trigger::Schedule)
        }
    }

    fn failure(millis: u64, reason: FailureReason) -> Sample {
        Sample {
            duration_seconds: Some(60.0),
            ..Sample::failure(
                Timestamp::from_millis(millis),
                Trigger::Schedule,
                reason,
                "no",
            )
        }
    }

    const MEASUREMENTS: [&str; 7] = [
        "speedtest_download_bytes_per_second",
        "speedtest_upload_bytes_per_second",
        "speedtest_ping_latency_seconds",
        "speedtest_ping_jitter_seconds",
        "speedtest_packet_loss_ratio",
        "speedtest_download_latency_seconds",
        "speedtest_upload_latency_seconds",
    ];

    #[test]
    fn the_plan_shows_only_the_contracted_directions() {
        let metrics = Metrics::new().unwrap();
        metrics.set_plan(&Plan {
            download: Some("500Mbit/s".parse().unwrap()),
            upload: None,
            threshold: 0.8,
        });
        assert_line(
            &metrics,
            "speedtest_plan_download_bytes_per_second 62500000",
        );
        assert_line(&metrics, "speedtest_plan_threshold_ratio 0.8");
        assert_absent(&metrics, "speedtest_plan_upload_bytes_per_second");
        metrics.set_plan(&Plan {
            download: None,
            upload: None,
            threshold: 0.8,
        });
        assert_absent(&metrics, "speedtest_plan_download_bytes_per_second");
        assert_absent(&metrics, "speedtest_plan_threshold_ratio");
    }

    #[test]
    fn the_plan_gauges_follow_the_version_in_force_at_each_time() {
        use crate::plan::{PlanVersion, Speeds};
        let version = |millis: u64, advertised: &str| PlanVersion {
            from: Timestamp::from_millis(millis),
            download: Speeds::advertised(Some(advertised.parse().unwrap())),
            upload: Speeds::default(),
            latency_max: None,
            threshold: 0.8,
        };
        let plans = PlanHistory::new(vec![
            version(1_000, "100Mbit/s"),
            version(2_000, "200Mbit/s"),
        ]);
        let metrics = Metrics::new().unwrap();
        metrics.show_plan_at(&plans, Timestamp::from_millis(500));
        assert_absent(&metrics, "speedtest_plan_download_bytes_per_second");
        metrics.show_plan_at(&plans, Timestamp::from_millis(1_999));
        assert_line(
            &metrics,
            "speedtest_plan_download_bytes_per_second 12500000",
        );
        // The second version takes over at its time, with no restart and no other call.
        metrics.show_plan_at(&plans, Timestamp::from_millis(2_000));
        assert_line(
            &metrics,
            "speedtest_plan_download_bytes_per_second 25000000",
        );
        assert_line(&metrics, "speedtest_plan_threshold_ratio 0.8");
    }

    #[test]
    fn fresh_metrics_show_no_measurement_but_every_counter_at_zero() {
        let metrics = Metrics::new().unwrap();
        let unknown = [
            "speedtest_up",
            "speedtest_last_run_timestamp_seconds",
            "speedtest_last_success_timestamp_seconds",
            "speedtest_next_run_timestamp_seconds",
            "speedtest_run_duration_seconds",
            "speedtest_server_info",
            "speedtest_isp_info",
            "speedtest_engine_info",
            "speedtest_plan_download_bytes_per_second",
            "speedtest_plan_upload_bytes_per_second",
            "speedtest_plan_threshold_ratio",
            "speedtest_interval_seconds",
        ];
        for family in MEASUREMENTS.iter().chain(&unknown) {
            assert_absent(&metrics, family);
        }
        assert_line(&metrics, "speedtest_running 0");
        assert_line(&metrics, r#"speedtest_runs_total{result="success"} 0"#);
        for reason in FailureReason::ALL {
            let line = format!(r#"speedtest_runs_total{{result="{reason}"}} 0"#);
            assert_line(&metrics, &line);
        }
        assert_line(
            &metrics,
            r#"speedtest_transferred_bytes_total{direction="download"} 0"#,
        );
        assert_line(
            &metrics,
            r#"speedtest_transferred_bytes_total{direction="upload"} 0"#,
        );
        assert_line(&metrics, "internet_monitor_store_errors_total 0");
        assert_line(&metrics, "internet_monitor_samples 0");
        let revision = option_env!("INTERNET_MONITOR_REVISION").unwrap_or("unknown");
        let build = format!(
            r#"internet_monitor_build_info{{revision="{revision}",version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        );
        assert_line(&metrics, &build);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_collector_is_on_the_custom_registry() {
        let metrics = Metrics::new().unwrap();
        assert!(text(&metrics).contains("\n# TYPE process_cpu_seconds_total counter\n"));
    }

    #[test]
    fn a_success_sets_everything_in_base_units() {
        let metrics = Metrics::new().unwrap();
        metrics.record(&success(T0));
        for line in [
            "speedtest_download_bytes_per_second 92727670",
            "speedtest_upload_bytes_per_second 11612345",
            "speedtest_ping_latency_seconds 0.01234",
            "speedtest_ping_jitter_seconds 0.000567",
            "speedtest_packet_loss_ratio 0.002",
            "speedtest_download_latency_seconds 0.0456",
            "speedtest_upload_latency_seconds 0.0789",
            r#"speedtest_transferred_bytes_total{direction="download"} 1120000000"#,
            r#"speedtest_transferred_bytes_total{direction="upload"} 140000000"#,
            r#"speedtest_runs_total{result="success"} 1"#,
            "speedtest_up 1",
            "speedtest_last_run_timestamp_seconds 1795546073.292",
            "speedtest_last_success_timestamp_seconds 1795546073.292",
            "speedtest_run_duration_seconds 21.5",
            r#"speedtest_server_info{country="Switzerland",id="12345",location="Zurich",name="Init7 AG"} 1"#,
            r#"speedtest_isp_info{isp="Init7"} 1"#,
            "internet_monitor_samples 1",
        ] {
            assert_line(&metrics, line);
        }
    }

    #[test]
    fn a_failure_keeps_the_measurements_of_the_last_success() {
        let metrics = Metrics::new().unwrap();
        metrics.record(&success(T0));
        metrics.record(&failure(T0 + 3_600_000, FailureReason::Timeout));
        for line in [
            "speedtest_download_bytes_per_second 92727670",
            "speedtest_packet_loss_ratio 0.002",
            "speedtest_last_success_timestamp_seconds 1795546073.292",
            r#"speedtest_isp_info{isp="Init7"} 1"#,
            // The failure says nothing of what it moved: nothing more is counted.
            r#"speedtest_transferred_bytes_total{direction="download"} 1120000000"#,
            r#"speedtest_runs_total{result="success"} 1"#,
            r#"speedtest_runs_total{result="timeout"} 1"#,
            r#"speedtest_runs_total{result="exit"} 0"#,
            "speedtest_up 0",
            "speedtest_last_run_timestamp_seconds 1795549673.292",
            "speedtest_run_duration_seconds 60",
            "internet_monitor_samples 2",
        ] {
            assert_line(&metrics, line);
        }
    }

    #[test]
    fn a_failure_that_moved_data_counts_it_as_transferred() {
        let metrics = Metrics::new().unwrap();
        metrics.record(&success(T0));
        // The HTTP engine's download moved 20 MB before the upload was refused.
        metrics.record(&Sample {
            downloaded_bytes: Some(20_000_000),
            uploaded_bytes: Some(0),
            ..failure(T0 + 60_000, FailureReason::Exit)
        });
        for line in [
            r#"speedtest_transferred_bytes_total{direction="download"} 1140000000"#,
            r#"speedtest_transferred_bytes_total{direction="upload"} 140000000"#,
            // Still the last success's figures.
            "speedtest_download_bytes_per_second 92727670",
            "speedtest_up 0",
        ] {
            assert_line(&metrics, line);
        }
    }

    #[test]
    fn a_success_without_packet_loss_removes_the_old_value() {
        let metrics = Metrics::new().unwrap();
        metrics.record(&success(T0));
        metrics.record(&Sample {
            packet_loss_ratio: None,
            download_latency_seconds: None,
            upload_latency_seconds: None,
            duration_seconds: None,
            ..success(T0 + 3_600_000)
        });
        assert_absent(&metrics, "speedtest_packet_loss_ratio");
        assert_absent(&metrics, "speedtest_download_latency_seconds");
        assert_absent(&metrics, "speedtest_upload_latency_seconds");
        assert_absent(&metrics, "speedtest_run_duration_seconds");
        assert_line(&metrics, "speedtest_download_bytes_per_second 92727670");
    }

    #[test]
    fn a_value_that_cannot_be_a_measurement_is_absent() {
        let metrics = Metrics::new().unwrap();
        metrics.record(&Sample {
            download_bytes_per_second: Some(f64::INFINITY),
            jitter_seconds: Some(f64::NAN),
            ..success(T0)
        });
        assert_absent(&metrics, "speedtest_download_bytes_per_second");
        assert_absent(&metrics, "speedtest_ping_jitter_seconds");
        assert_line(&metrics, "speedtest_upload_bytes_per_second 11612345");
    }

    #[test]
    fn info_series_show_only_the_latest_server_and_isp() {
        let metrics = Metrics::new().unwrap();
        metrics.record(&success(T0));
        metrics.record(&Sample {
            server: Some(Arc::new(Server {
                id: None,
                name: Some("Sunrise \"Fiber\"".to_owned()),
                location: None,
                country: None,
                host: None,
            })),
            isp: Some(Arc::from("Sunrise")),
            ..success(T0 + 1)
        });
        let text = text(&metrics);
        let servers: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("speedtest_server_info"))
            .collect();
        assert_eq!(
            servers,
            [r#"speedtest_server_info{country="",id="",location="",name="Sunrise \"Fiber\""} 1"#]
        );
        let isps: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("speedtest_isp_info"))
            .collect();
        assert_eq!(isps, [r#"speedtest_isp_info{isp="Sunrise"} 1"#]);

        metrics.record(&Sample {
            server: None,
            isp: None,
            ..success(T0 + 2)
        });
        assert_absent(&metrics, "speedtest_server_info");
        assert_absent(&metrics, "speedtest_isp_info");
    }

    #[test]
    fn restore_takes_the_run_from_the_last_run_and_figures_from_the_last_success() {
        let metrics = Metrics::new().unwrap();
        let last_success = success(T0);
        let last_run = failure(T0 + 600_000, FailureReason::NoConnectivity);
        metrics.restore(Some(&last_run), Some(&last_success), 1234);
        for line in [
            "speedtest_download_bytes_per_second 92727670",
            "speedtest_packet_loss_ratio 0.002",
            "speedtest_last_success_timestamp_seconds 1795546073.292",
            "speedtest_last_run_timestamp_seconds 1795546673.292",
            "speedtest_run_duration_seconds 60",
            "speedtest_up 0",
            r#"speedtest_server_info{country="Switzerland",id="12345",location="Zurich",name="Init7 AG"} 1"#,
            r#"speedtest_isp_info{isp="Init7"} 1"#,
            "internet_monitor_samples 1234",
            // Counters count since start: a restore does not replay history into them.
            r#"speedtest_runs_total{result="no_connectivity"} 0"#,
            r#"speedtest_runs_total{result="success"} 0"#,
            r#"speedtest_transferred_bytes_total{direction="download"} 0"#,
        ] {
            assert_line(&metrics, line);
        }
    }

    #[test]
    fn restore_from_an_empty_store_shows_nothing_known() {
        let metrics = Metrics::new().unwrap();
        metrics.restore(None, None, 0);
        for family in MEASUREMENTS {
            assert_absent(&metrics, family);
        }
        assert_absent(&metrics, "speedtest_up");
        assert_absent(&metrics, "speedtest_last_run_timestamp_seconds");
    }

    #[test]
    fn a_skipped_run_is_stored_but_not_a_run() {
        let metrics = Metrics::new().unwrap();
        metrics.record(&success(T0));
        metrics.record(&Sample {
            outcome: Outcome::Skipped,
            ..Sample::empty(Timestamp::from_millis(T0 + 1), Trigger::Schedule)
        });
        assert_line(&metrics, "speedtest_up 1");
        assert_line(
            &metrics,
            "speedtest_last_run_timestamp_seconds 1795546073.292",
        );
        assert_line(&metrics, "internet_monitor_samples 2");
    }

    #[test]
    fn every_update_shows_in_the_very_next_scrape() {
        let metrics = Metrics::new().unwrap();
        assert_line(&metrics, "speedtest_running 0");
        metrics.set_running(true);
        assert_line(&metrics, "speedtest_running 1");
        metrics.store_error();
        assert_line(&metrics, "internet_monitor_store_errors_total 1");
        metrics.record(&success(T0));
        assert_line(&metrics, "speedtest_up 1");
        metrics.record(&failure(T0 + 1, FailureReason::Timeout));
        assert_line(&metrics, "speedtest_up 0");
        metrics.set_samples(7);
        assert_line(&metrics, "internet_monitor_samples 7");
        metrics.restore(None, None, 0);
        assert_absent(&metrics, "speedtest_up");
    }

    #[test]
    fn the_engine_info_shows_only_the_last_runs_engine_and_no_value_series_has_it() {
        let metrics = Metrics::new().unwrap();
        let http = Arc::new(Engine {
            name: EngineName::Http,
            protocol: Some(HttpProtocol::Cloudflare),
            url: Some("https://speed.cloudflare.com".into()),
            streams: Some(4),
            duration_seconds: Some(10.0),
            ramp_up_seconds: Some(2.0),
        });
        metrics.record(&Sample {
            engine: Some(http),
            ..success(T0)
        });
        let engine_lines = |metrics: &Metrics| -> Vec<String> {
            lines(metrics)
                .into_iter()
                .filter(|l| l.starts_with("speedtest_engine_info"))
                .collect()
        };
        assert_eq!(
            engine_lines(&metrics),
            [
                r#"speedtest_engine_info{engine="http",protocol="cloudflare",streams="4",url="https://speed.cloudflare.com"} 1"#
            ]
        );
        assert!(
            lines(&metrics)
                .iter()
                .filter(|l| !l.starts_with('#') && !l.starts_with("speedtest_engine_info"))
                .all(|l| !l.contains("engine=")),
            "no value series has an engine label"
        );
        // A failure is a run too: its engine is the last run's.
        metrics.record(&Sample {
            engine: Some(Arc::new(Engine::ookla())),
            ..failure(T0 + 1, FailureReason::Timeout)
        });
        assert_eq!(
            engine_lines(&metrics),
            [r#"speedtest_engine_info{engine="ookla",protocol="",streams="",url=""} 1"#]
        );
        // A skipped run measured nothing and changes nothing.
        metrics.record(&Sample {
            outcome: Outcome::Skipped,
            reason: Some(FailureReason::DataBudget),
            ..Sample::empty(Timestamp::from_millis(T0 + 2), Trigger::Schedule)
        });
        assert_eq!(engine_lines(&metrics).len(), 1);
        metrics.record(&failure(T0 + 3, FailureReason::Timeout));
        assert_absent(&metrics, "speedtest_engine_info");
    }

    #[test]
    fn scrapes_in_quick_succession_share_one_rendering() {
        let metrics = Metrics::new().unwrap();
        let first = metrics.render().unwrap();
        let second = metrics.render().unwrap();
        assert_eq!(first.as_ptr(), second.as_ptr(), "rendered twice");
        metrics.set_running(true);
        assert_ne!(metrics.render().unwrap().as_ptr(), first.as_ptr());
    }

    #[test]
    fn running_next_run_store_errors_and_samples_follow_their_setters() {
        let metrics = Metrics::new().unwrap();
        metrics.set_running(true);
        metrics.set_next_run(Some(Timestamp::from_millis(T0)));
        metrics.store_error();
        metrics.store_error();
        metrics.set_samples(7);
        assert_line(&metrics, "speedtest_running 1");
        assert_line(
            &metrics,
            "speedtest_next_run_timestamp_seconds 1795546073.292",
        );
        assert_line(&metrics, "internet_monitor_store_errors_total 2");
        assert_line(&metrics, "internet_monitor_samples 7");

        metrics.set_running(false);
        metrics.set_next_run(None);
        assert_line(&metrics, "speedtest_running 0");
        assert_absent(&metrics, "speedtest_next_run_timestamp_seconds");
    }
}
