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
    CounterVec, Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::plan::{Plan, PlanHistory};
use crate::probe::minute::MinuteAggregate;
use crate::probe::outage::{Outage, OutageKind, Round};
use crate::probe::{ProbeResult, Target};
use crate::sample::{FailureReason, Outcome, Sample};
use crate::time::Timestamp;
use crate::units::Bandwidth;

/// The names of the gauges that describe one run, shared with the OpenMetrics export
/// (`export --format openmetrics`), so that a backfilled history and a scraped one are the same
/// series.
pub(crate) mod family {
    /// `speedtest_download_bytes_per_second`
    pub(crate) const DOWNLOAD: &str = "speedtest_download_bytes_per_second";
    /// `speedtest_upload_bytes_per_second`
    pub(crate) const UPLOAD: &str = "speedtest_upload_bytes_per_second";
    /// `speedtest_ping_latency_seconds`
    pub(crate) const PING: &str = "speedtest_ping_latency_seconds";
    /// `speedtest_ping_jitter_seconds`
    pub(crate) const JITTER: &str = "speedtest_ping_jitter_seconds";
    /// `speedtest_download_latency_seconds`
    pub(crate) const DOWNLOAD_LATENCY: &str = "speedtest_download_latency_seconds";
    /// `speedtest_upload_latency_seconds`
    pub(crate) const UPLOAD_LATENCY: &str = "speedtest_upload_latency_seconds";
    /// `speedtest_up`
    pub(crate) const UP: &str = "speedtest_up";
    /// `speedtest_run_duration_seconds`
    pub(crate) const RUN_DURATION: &str = "speedtest_run_duration_seconds";
    /// When the newest run (success or failure, not a skipped one) was stored.
    pub(crate) const LAST_RUN: &str = "speedtest_last_run_timestamp_seconds";
    /// When the newest success was stored.
    pub(crate) const LAST_SUCCESS: &str = "speedtest_last_success_timestamp_seconds";
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
    /// The connectivity monitor's families; no series while probing is off.
    probes: ProbeFamilies,
    /// The remote_write pusher's families; no series while `--remote-write.url` is not given.
    remote_write: RemoteWriteFamilies,
}

/// The remote_write pusher's series (issue 16): the outbox and the pushes by result.
struct RemoteWriteFamilies {
    pending: OptionalGauge,
    oldest_age: OptionalGauge,
    /// The time of the oldest queued sample, whose age a scrape shows; `None` while nothing
    /// waits or remote_write is off.
    oldest: Mutex<Option<Timestamp>>,
    requests: IntCounterVec,
    samples: IntCounterVec,
}

/// A push's result, the `result` label of `internet_monitor_remote_write_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushResult {
    /// Answered 2xx.
    Success,
    /// Not delivered, to be tried again: 5xx, 429, 401, 403, 404…, no connection, no answer
    /// in time.
    Retried,
    /// Refused with another 4xx (400 above all).
    Rejected,
}

impl PushResult {
    pub(crate) const ALL: [PushResult; 3] = [
        PushResult::Success,
        PushResult::Retried,
        PushResult::Rejected,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PushResult::Success => "success",
            PushResult::Retried => "retried",
            PushResult::Rejected => "rejected",
        }
    }
}

/// What became of a queued sample, the `result` label of
/// `internet_monitor_remote_write_samples_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleResult {
    /// Acknowledged by the receiver.
    Sent,
    /// Refused alone with a 4xx other than 429, and dropped from the outbox.
    Rejected,
    /// Gone from the store (retention) or unreadable before it was pushed.
    Expired,
}

impl SampleResult {
    pub(crate) const ALL: [SampleResult; 3] = [
        SampleResult::Sent,
        SampleResult::Rejected,
        SampleResult::Expired,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SampleResult::Sent => "sent",
            SampleResult::Rejected => "rejected",
            SampleResult::Expired => "expired",
        }
    }
}

impl RemoteWriteFamilies {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let optional = |name: &str, help: &str| -> Result<OptionalGauge, prometheus::Error> {
            let gauge = OptionalGauge::new(name, help)?;
            register(registry, gauge.0.clone())?;
            Ok(gauge)
        };
        Ok(RemoteWriteFamilies {
            pending: optional(
                "internet_monitor_remote_write_pending_samples",
                "Stored samples waiting in the outbox to be pushed to --remote-write.url; absent when remote_write is off.",
            )?,
            oldest_age: optional(
                "internet_monitor_remote_write_oldest_pending_age_seconds",
                "Age of the oldest sample waiting in the outbox (now minus its time), in seconds; absent when none waits or remote_write is off.",
            )?,
            oldest: Mutex::new(None),
            requests: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "internet_monitor_remote_write_requests_total",
                        "Write requests sent to --remote-write.url since this process started, by result: success (2xx), retried (5xx, 429, 401, 403, 404 and other answers that refuse every request, no connection or no answer in time: tried again later) or rejected (another 4xx, such as 400: the samples are refused).",
                    ),
                    &["result"],
                )?,
            )?,
            samples: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "internet_monitor_remote_write_samples_total",
                        "Samples taken out of the outbox since this process started, by result: sent (acknowledged), rejected (refused alone with a 4xx, dropped) or expired (deleted from the store by retention, or unreadable, before it was pushed).",
                    ),
                    &["result"],
                )?,
            )?,
        })
    }
}

/// The connectivity monitor's series (issue 15). `target` is the probed IP address as text,
/// `kind` `gateway` or `public` for probes and `isp` or `local` for outages, `method` the probe
/// method with its port for TCP (`tcp-connect:443`): all bounded by the configured targets.
struct ProbeFamilies {
    success: IntGaugeVec,
    sent: IntCounterVec,
    lost: IntCounterVec,
    rtt_min: GaugeVec,
    rtt_median: GaugeVec,
    rtt_max: GaugeVec,
    loss: GaugeVec,
    up: OptionalGauge,
    ongoing: IntGaugeVec,
    outages: IntCounterVec,
    outage_seconds: CounterVec,
    last_outage_start: GaugeVec,
    interval: OptionalGauge,
}

/// The labels of the per-target families but `probe_success` (which adds `method`).
const TARGET_LABELS: [&str; 2] = ["target", "kind"];

/// Every outage kind, for the series that exist at 0 from the start of probing.
const OUTAGE_KINDS: [OutageKind; 2] = [OutageKind::Isp, OutageKind::Local];

impl ProbeFamilies {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            register(registry, GaugeVec::new(Opts::new(name, help), labels)?)
        };
        let counters = |name: &str, help: &str, labels: &[&str]| {
            register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let optional = |name: &str, help: &str| -> Result<OptionalGauge, prometheus::Error> {
            let gauge = OptionalGauge::new(name, help)?;
            register(registry, gauge.0.clone())?;
            Ok(gauge)
        };
        Ok(ProbeFamilies {
            success: register(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "internet_monitor_probe_success",
                        "1 if the newest probe to the target was answered within the timeout, else 0; kind is gateway or public, method the probe method (icmp-unprivileged, icmp-raw or tcp-connect:PORT).",
                    ),
                    &["target", "kind", "method"],
                )?,
            )?,
            sent: counters(
                "internet_monitor_probes_sent_total",
                "Probes sent to the target since this process started; kind is gateway or public.",
                &TARGET_LABELS,
            )?,
            lost: counters(
                "internet_monitor_probes_lost_total",
                "Probes to the target that got no answer within the timeout since this process started; kind is gateway or public.",
                &TARGET_LABELS,
            )?,
            rtt_min: gauges(
                "internet_monitor_probe_rtt_min_seconds",
                "Smallest round-trip time to the target in the newest finished minute, in seconds; absent when no probe of that minute was answered.",
                &TARGET_LABELS,
            )?,
            rtt_median: gauges(
                "internet_monitor_probe_rtt_median_seconds",
                "Median round-trip time to the target in the newest finished minute (the lower middle value for an even count), in seconds; absent when no probe of that minute was answered.",
                &TARGET_LABELS,
            )?,
            rtt_max: gauges(
                "internet_monitor_probe_rtt_max_seconds",
                "Largest round-trip time to the target in the newest finished minute, in seconds; absent when no probe of that minute was answered.",
                &TARGET_LABELS,
            )?,
            loss: gauges(
                "internet_monitor_probe_loss_ratio",
                "Share of the probes to the target lost in the newest finished minute, from 0 to 1; absent when that minute sent none.",
                &TARGET_LABELS,
            )?,
            up: optional(
                "internet_monitor_connectivity_up",
                "1 if any public target answered in the newest probe round, else 0; absent before the first round and when probing is off.",
            )?,
            ongoing: register(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "internet_monitor_outage_ongoing",
                        "1 while an outage of the kind is ongoing, else 0; kind is isp (the gateway answers, no public target does) or local (the gateway does not answer either).",
                    ),
                    &["kind"],
                )?,
            )?,
            outages: counters(
                "internet_monitor_outages_total",
                "Outages that started since this process started, by kind (isp or local); an outage resumed after a restart is not counted again.",
                &["kind"],
            )?,
            outage_seconds: register(
                registry,
                CounterVec::new(
                    Opts::new(
                        "internet_monitor_outage_seconds_total",
                        "Monitored down time in outages since this process started, by kind (isp or local), in seconds; time the monitor was not running is not counted.",
                    ),
                    &["kind"],
                )?,
            )?,
            last_outage_start: gauges(
                "internet_monitor_last_outage_start_timestamp_seconds",
                "Start of the newest outage of the kind (isp or local), ongoing or not, in seconds since the Unix epoch; absent when none is known.",
                &["kind"],
            )?,
            interval: optional(
                "internet_monitor_probe_interval_seconds",
                "Time between probe rounds (--probe-interval), in seconds; absent when probing is off.",
            )?,
        })
    }
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
                family::LAST_RUN,
                "Start of the last speed-test run, whatever its outcome, in seconds since the Unix epoch.",
            )?,
            last_success: gauge(
                family::LAST_SUCCESS,
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
            probes: ProbeFamilies::new(&registry)?,
            remote_write: RemoteWriteFamilies::new(&registry)?,
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
            .get_metric_with_label_values(&[env!("CARGO_PKG_VERSION"), crate::cli::REVISION])?
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
    pub(crate) fn show_latest(&self, last_run: Option<&Sample>, last_success: Option<&Sample>) {
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
    pub(crate) fn show_plan_at(&self, plans: &PlanHistory, now: Timestamp) {
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
    pub(crate) fn set_campaign(&self, rules: &str, progress: &crate::rules::Progress) {
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
    pub(crate) fn store_error(&self) {
        let _consistent = self.lock_to_update();
        self.store_errors.inc();
    }

    /// The number of samples in the store, after retention deleted some.
    pub(crate) fn set_samples(&self, count: u64) {
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
        self.show_oldest_pending_age(Timestamp::now());
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

/// The connectivity monitor's families (issue 15), fed by the probe loop. Their series exist
/// only once probing is on ([`Metrics::set_probe_interval`] creates the per-kind ones at 0), so
/// a process with `--probe-interval 0s` shows none of them. The outage definitions are those
/// of [`crate::probe::outage`].
impl Metrics {
    /// Probing is on with rounds every `interval`: shows `probe_interval_seconds` and creates
    /// the per-kind outage series at 0 (`outage_ongoing`, `outages_total`,
    /// `outage_seconds_total`), so `increase()` sees the first outage as a step from 0. Call it
    /// once at start-up, before the first round; never when probing is off.
    pub fn set_probe_interval(&self, interval: Duration) {
        let _consistent = self.lock_to_update();
        let probes = &self.probes;
        probes.interval.set(Some(interval.as_secs_f64()));
        for kind in OUTAGE_KINDS {
            let kind = [kind.name()];
            // Cannot fail: one label value for one label.
            let _ = probes.ongoing.get_metric_with_label_values(&kind);
            let _ = probes.outages.get_metric_with_label_values(&kind);
            let _ = probes.outage_seconds.get_metric_with_label_values(&kind);
        }
    }

    /// One probe's result: `probe_success` (1 answered, 0 lost) and the sent and lost counters,
    /// both created on the target's first probe so the first loss is a step from 0.
    pub fn observe_probe(&self, target: &Target, result: &ProbeResult) {
        let _consistent = self.lock_to_update();
        let probes = &self.probes;
        let address = target.address.to_string();
        let method = target.method.to_string();
        let labels = [address.as_str(), target.kind.name()];
        let answered = result.rtt.is_some();
        if let Ok(gauge) = probes.success.get_metric_with_label_values(&[
            address.as_str(),
            target.kind.name(),
            method.as_str(),
        ]) {
            gauge.set(i64::from(answered));
        }
        if let Ok(sent) = probes.sent.get_metric_with_label_values(&labels) {
            sent.inc();
        }
        if let Ok(lost) = probes.lost.get_metric_with_label_values(&labels)
            && !answered
        {
            lost.inc();
        }
    }

    /// A finished minute of one target: its RTT min/median/max gauges in seconds (removed when
    /// no probe of the minute was answered, never 0) and its loss ratio (removed when the minute
    /// sent nothing).
    pub fn observe_probe_minute(&self, target: &Target, minute: &MinuteAggregate) {
        let _consistent = self.lock_to_update();
        let probes = &self.probes;
        let address = target.address.to_string();
        let labels = [address.as_str(), target.kind.name()];
        let seconds = |micros: Option<u64>| micros.map(|us| us as f64 / 1e6);
        for (family, value) in [
            (&probes.rtt_min, seconds(minute.rtt_min_us)),
            (&probes.rtt_median, seconds(minute.rtt_median_us)),
            (&probes.rtt_max, seconds(minute.rtt_max_us)),
            (&probes.loss, minute.loss()),
        ] {
            set_labelled(family, &labels, value);
        }
    }

    /// After each round: `connectivity_up` (1 when any public target answered) and
    /// `outage_ongoing{kind}` (1 for the kind of `ongoing`, 0 for the other).
    pub fn observe_round(&self, round: &Round, ongoing: Option<&Outage>) {
        let _consistent = self.lock_to_update();
        let probes = &self.probes;
        probes
            .up
            .set(Some(if round.down().is_none() { 1.0 } else { 0.0 }));
        for kind in OUTAGE_KINDS {
            let on = ongoing.is_some_and(|outage| outage.kind == kind);
            if let Ok(gauge) = probes.ongoing.get_metric_with_label_values(&[kind.name()]) {
                gauge.set(i64::from(on));
            }
        }
    }

    /// Monitored down time to add to `outage_seconds_total{kind}` (the monitor adds each
    /// round's share while an outage is ongoing; unmonitored time is never added).
    pub fn add_outage_time(&self, kind: OutageKind, time: Duration) {
        let _consistent = self.lock_to_update();
        if let Ok(counter) = self
            .probes
            .outage_seconds
            .get_metric_with_label_values(&[kind.name()])
        {
            counter.inc_by(time.as_secs_f64());
        }
    }

    /// An outage opened (the tracker's `Opened`, including the new half of a kind switch; not
    /// `Resumed`, which is the same outage): counts `outages_total{kind}` and shows its start
    /// as `last_outage_start_timestamp_seconds{kind}`.
    pub fn outage_opened(&self, outage: &Outage) {
        let _consistent = self.lock_to_update();
        let kind = [outage.kind.name()];
        if let Ok(counter) = self.probes.outages.get_metric_with_label_values(&kind) {
            counter.inc();
        }
        self.show_outage_start(outage);
    }

    /// At start-up: the newest stored outage of each kind (in any order), for the last-outage
    /// gauges; a kind with none stays absent. Counters are not restored (they count since
    /// this process started); an older start never replaces a newer one already shown.
    pub fn restore_outages(&self, newest: &[Outage]) {
        let _consistent = self.lock_to_update();
        for outage in newest {
            self.show_outage_start(outage);
        }
    }

    /// Shows `outage`'s start as its kind's last outage start, unless a later one is shown.
    fn show_outage_start(&self, outage: &Outage) {
        let start = outage.start.as_seconds_f64();
        if let Ok(gauge) = self
            .probes
            .last_outage_start
            .get_metric_with_label_values(&[outage.kind.name()])
            && gauge.get() < start
        {
            gauge.set(start);
        }
    }
}

/// The remote_write pusher's families (issue 16). They exist only once remote_write is on
/// ([`Metrics::set_remote_write_on`]), so a process without `--remote-write.url` shows none.
impl Metrics {
    /// remote_write is on: creates every `result` of the counters at 0 (so `increase()` sees
    /// the first rejection as a step from 0) and shows the outbox as `pending` samples, the
    /// oldest dated `oldest`. Call it once at start-up.
    pub fn set_remote_write_on(&self, pending: u64, oldest: Option<Timestamp>) {
        {
            let _consistent = self.lock_to_update();
            let families = &self.remote_write;
            for result in PushResult::ALL {
                // Cannot fail: one label value for one label.
                let _ = families
                    .requests
                    .get_metric_with_label_values(&[result.as_str()]);
            }
            for result in SampleResult::ALL {
                let _ = families
                    .samples
                    .get_metric_with_label_values(&[result.as_str()]);
            }
        }
        self.set_outbox(pending, oldest);
    }

    /// The outbox now: `pending` samples, the oldest dated `oldest` (its age is computed at
    /// each scrape).
    pub fn set_outbox(&self, pending: u64, oldest: Option<Timestamp>) {
        let _consistent = self.lock_to_update();
        let families = &self.remote_write;
        families.pending.set(Some(pending as f64));
        *families
            .oldest
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = oldest.filter(|_| pending > 0);
        self.show_oldest_pending_age(Timestamp::now());
    }

    /// Counts one write request by its result.
    pub fn count_push(&self, result: PushResult) {
        let _consistent = self.lock_to_update();
        if let Ok(counter) = self
            .remote_write
            .requests
            .get_metric_with_label_values(&[result.as_str()])
        {
            counter.inc();
        }
    }

    /// Counts `count` samples taken out of the outbox by their result.
    pub fn count_pushed_samples(&self, result: SampleResult, count: u64) {
        let _consistent = self.lock_to_update();
        if let Ok(counter) = self
            .remote_write
            .samples
            .get_metric_with_label_values(&[result.as_str()])
        {
            counter.inc_by(count);
        }
    }

    /// Shows the oldest queued sample's age at `now` (none while nothing waits; never
    /// negative, for a sample dated after a clock set back).
    fn show_oldest_pending_age(&self, now: Timestamp) {
        let families = &self.remote_write;
        let oldest = *families
            .oldest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        families.oldest_age.set(
            oldest
                .map(|oldest| now.as_seconds_f64() - oldest.as_seconds_f64())
                .map(|age| age.max(0.0)),
        );
    }
}

/// Sets the series of `family` with `labels` to `value`, or removes it for `None` (and for a
/// value that cannot be a measurement: NaN, infinite), as [`OptionalGauge`] does.
fn set_labelled(family: &GaugeVec, labels: &[&str], value: Option<f64>) {
    match value.filter(|value| value.is_finite()) {
        Some(value) => {
            if let Ok(gauge) = family.get_metric_with_label_values(labels) {
                gauge.set(value);
            }
        }
        None => {
            // An error only says there was no such series: nothing to remove.
            let _ = family.remove_label_values(labels);
        }
    }
}

#[cfg(test)]
mod tests;
