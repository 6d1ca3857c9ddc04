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
    /// When the newest run (success or failure, not a skipped one) was stored.
    pub const LAST_RUN: &str = "speedtest_last_run_timestamp_seconds";
    /// When the newest success was stored.
    pub const LAST_SUCCESS: &str = "speedtest_last_success_timestamp_seconds";
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
    pub const ALL: [PushResult; 3] = [
        PushResult::Success,
        PushResult::Retried,
        PushResult::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
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
    pub const ALL: [SampleResult; 3] = [
        SampleResult::Sent,
        SampleResult::Rejected,
        SampleResult::Expired,
    ];

    pub fn as_str(self) -> &'static str {
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
    fn the_remote_write_families_exist_only_while_it_is_on() {
        let metrics = Metrics::new().unwrap();
        let families = [
            "internet_monitor_remote_write_pending_samples",
            "internet_monitor_remote_write_oldest_pending_age_seconds",
            "internet_monitor_remote_write_requests_total",
            "internet_monitor_remote_write_samples_total",
        ];
        for family in families {
            assert_absent(&metrics, family);
        }
        metrics.set_remote_write_on(0, None);
        assert_line(&metrics, "internet_monitor_remote_write_pending_samples 0");
        assert_line(
            &metrics,
            r#"internet_monitor_remote_write_samples_total{result="expired"} 0"#,
        );
        assert_absent(&metrics, families[1]);
        // An age is never negative, even for a sample dated after the clock.
        metrics.set_outbox(
            1,
            Some(Timestamp::now().saturating_add(Duration::from_secs(60))),
        );
        assert_line(
            &metrics,
            "internet_monitor_remote_write_oldest_pending_age_seconds 0",
        );
        metrics.set_outbox(0, Some(Timestamp::from_millis(T0)));
        assert_absent(&metrics, families[1]);
    }

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
        let revision = crate::cli::REVISION;
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

    mod probes {
        use std::net::IpAddr;

        use super::*;
        use crate::probe::{ProbeMethod, TargetKind};

        fn target(kind: TargetKind, address: &str) -> Target {
            Target {
                kind,
                address: address.parse::<IpAddr>().unwrap(),
                method: ProbeMethod::TcpConnect { port: 443 },
            }
        }

        fn probe(millis: u64, rtt_ms: Option<u64>) -> ProbeResult {
            ProbeResult {
                at: Timestamp::from_millis(millis),
                rtt: rtt_ms.map(Duration::from_millis),
            }
        }

        fn outage(millis: u64, kind: OutageKind) -> Outage {
            Outage {
                start: Timestamp::from_millis(millis),
                end: None,
                kind,
                unmonitored: Duration::ZERO,
                restarts: 0,
            }
        }

        const FAMILIES: [&str; 13] = [
            "internet_monitor_probe_success",
            "internet_monitor_probes_sent_total",
            "internet_monitor_probes_lost_total",
            "internet_monitor_probe_rtt_min_seconds",
            "internet_monitor_probe_rtt_median_seconds",
            "internet_monitor_probe_rtt_max_seconds",
            "internet_monitor_probe_loss_ratio",
            "internet_monitor_connectivity_up",
            "internet_monitor_outage_ongoing",
            "internet_monitor_outages_total",
            "internet_monitor_outage_seconds_total",
            "internet_monitor_last_outage_start_timestamp_seconds",
            "internet_monitor_probe_interval_seconds",
        ];

        #[test]
        fn without_probing_no_probe_family_shows() {
            let metrics = Metrics::new().unwrap();
            for family in FAMILIES {
                assert_absent(&metrics, family);
            }
        }

        #[test]
        fn probing_on_shows_the_interval_and_every_outage_kind_at_zero() {
            let metrics = Metrics::new().unwrap();
            metrics.set_probe_interval(Duration::from_millis(2_500));
            for line in [
                "internet_monitor_probe_interval_seconds 2.5",
                r#"internet_monitor_outage_ongoing{kind="isp"} 0"#,
                r#"internet_monitor_outage_ongoing{kind="local"} 0"#,
                r#"internet_monitor_outages_total{kind="isp"} 0"#,
                r#"internet_monitor_outages_total{kind="local"} 0"#,
                r#"internet_monitor_outage_seconds_total{kind="isp"} 0"#,
                r#"internet_monitor_outage_seconds_total{kind="local"} 0"#,
            ] {
                assert_line(&metrics, line);
            }
            // Nothing known yet: no round, no outage, no target.
            assert_absent(&metrics, "internet_monitor_connectivity_up");
            assert_absent(
                &metrics,
                "internet_monitor_last_outage_start_timestamp_seconds",
            );
            assert_absent(&metrics, "internet_monitor_probe_success");
        }

        #[test]
        fn probes_count_sent_and_lost_and_show_the_newest_success() {
            let metrics = Metrics::new().unwrap();
            let gateway = target(TargetKind::Gateway, "192.168.1.1");
            let public = target(TargetKind::Public, "2001:db8::1");
            metrics.observe_probe(&gateway, &probe(T0, Some(2)));
            // The first probe creates the lost counter at 0, so a first loss is a step.
            assert_line(
                &metrics,
                r#"internet_monitor_probes_lost_total{kind="gateway",target="192.168.1.1"} 0"#,
            );
            metrics.observe_probe(&public, &probe(T0, None));
            metrics.observe_probe(&public, &probe(T0 + 10_000, Some(20)));
            metrics.observe_probe(&gateway, &probe(T0 + 10_000, None));
            for line in [
                r#"internet_monitor_probe_success{kind="gateway",method="tcp-connect:443",target="192.168.1.1"} 0"#,
                r#"internet_monitor_probe_success{kind="public",method="tcp-connect:443",target="2001:db8::1"} 1"#,
                r#"internet_monitor_probes_sent_total{kind="gateway",target="192.168.1.1"} 2"#,
                r#"internet_monitor_probes_lost_total{kind="gateway",target="192.168.1.1"} 1"#,
                r#"internet_monitor_probes_sent_total{kind="public",target="2001:db8::1"} 2"#,
                r#"internet_monitor_probes_lost_total{kind="public",target="2001:db8::1"} 1"#,
            ] {
                assert_line(&metrics, line);
            }
        }

        #[test]
        fn a_minute_shows_rtt_in_seconds_and_one_without_answers_removes_them() {
            let metrics = Metrics::new().unwrap();
            let public = target(TargetKind::Public, "1.1.1.1");
            let minute = MinuteAggregate {
                minute: Timestamp::from_millis(1_795_546_020_000),
                sent: 6,
                lost: 1,
                rtt_min_us: Some(9_500),
                rtt_median_us: Some(12_250),
                rtt_max_us: Some(80_000),
                under_load: false,
            };
            metrics.observe_probe_minute(&public, &minute);
            for line in [
                r#"internet_monitor_probe_rtt_min_seconds{kind="public",target="1.1.1.1"} 0.0095"#,
                r#"internet_monitor_probe_rtt_median_seconds{kind="public",target="1.1.1.1"} 0.01225"#,
                r#"internet_monitor_probe_rtt_max_seconds{kind="public",target="1.1.1.1"} 0.08"#,
            ] {
                assert_line(&metrics, line);
            }
            let loss = lines(&metrics)
                .into_iter()
                .find(|l| l.starts_with("internet_monitor_probe_loss_ratio{"))
                .unwrap();
            let value: f64 = loss.rsplit(' ').next().unwrap().parse().unwrap();
            assert!((value - 1.0 / 6.0).abs() < 1e-12, "{loss}");

            // A minute where every probe was lost: no RTT (absent, not 0), loss 1.
            metrics.observe_probe_minute(
                &public,
                &MinuteAggregate {
                    lost: 6,
                    rtt_min_us: None,
                    rtt_median_us: None,
                    rtt_max_us: None,
                    ..minute
                },
            );
            assert_absent(&metrics, "internet_monitor_probe_rtt_min_seconds");
            assert_absent(&metrics, "internet_monitor_probe_rtt_median_seconds");
            assert_absent(&metrics, "internet_monitor_probe_rtt_max_seconds");
            assert_line(
                &metrics,
                r#"internet_monitor_probe_loss_ratio{kind="public",target="1.1.1.1"} 1"#,
            );
            // A minute that sent nothing (only marked under load) has no loss ratio either.
            metrics.observe_probe_minute(
                &public,
                &MinuteAggregate {
                    sent: 0,
                    lost: 0,
                    under_load: true,
                    ..minute
                },
            );
            assert_absent(&metrics, "internet_monitor_probe_loss_ratio");
        }

        #[test]
        fn one_targets_minute_leaves_the_others_alone() {
            let metrics = Metrics::new().unwrap();
            let minute = |lost, rtt| MinuteAggregate {
                minute: Timestamp::from_millis(1_795_546_020_000),
                sent: 6,
                lost,
                rtt_min_us: rtt,
                rtt_median_us: rtt,
                rtt_max_us: rtt,
                under_load: false,
            };
            let one = target(TargetKind::Public, "1.1.1.1");
            let nine = target(TargetKind::Public, "9.9.9.9");
            metrics.observe_probe_minute(&one, &minute(0, Some(10_000)));
            metrics.observe_probe_minute(&nine, &minute(6, None));
            assert_line(
                &metrics,
                r#"internet_monitor_probe_rtt_median_seconds{kind="public",target="1.1.1.1"} 0.01"#,
            );
            assert!(
                !text(&metrics).contains(r#"rtt_median_seconds{kind="public",target="9.9.9.9"}"#)
            );
        }

        #[test]
        fn rounds_and_outages_follow_the_monitor() {
            let metrics = Metrics::new().unwrap();
            metrics.set_probe_interval(Duration::from_secs(10));
            let round = |millis, gateway, public| Round {
                at: Timestamp::from_millis(millis),
                gateway,
                public,
            };
            metrics.observe_round(&round(T0, true, true), None);
            assert_line(&metrics, "internet_monitor_connectivity_up 1");

            // A down round before the outage is confirmed: down, no outage yet.
            metrics.observe_round(&round(T0 + 10_000, true, false), None);
            assert_line(&metrics, "internet_monitor_connectivity_up 0");
            assert_line(&metrics, r#"internet_monitor_outage_ongoing{kind="isp"} 0"#);

            let isp = outage(T0 + 10_000, OutageKind::Isp);
            metrics.outage_opened(&isp);
            metrics.observe_round(&round(T0 + 20_000, true, false), Some(&isp));
            metrics.add_outage_time(OutageKind::Isp, Duration::from_millis(20_000));
            for line in [
                "internet_monitor_connectivity_up 0",
                r#"internet_monitor_outage_ongoing{kind="isp"} 1"#,
                r#"internet_monitor_outage_ongoing{kind="local"} 0"#,
                r#"internet_monitor_outages_total{kind="isp"} 1"#,
                r#"internet_monitor_outages_total{kind="local"} 0"#,
                r#"internet_monitor_outage_seconds_total{kind="isp"} 20"#,
                "internet_monitor_last_outage_start_timestamp_seconds{kind=\"isp\"} 1795546083.292",
            ] {
                assert_line(&metrics, line);
            }
            assert!(
                !text(&metrics).contains(
                    r#"internet_monitor_last_outage_start_timestamp_seconds{kind="local"}"#
                )
            );

            // The gateway goes too: the outage switches to local.
            let local = outage(T0 + 30_000, OutageKind::Local);
            metrics.outage_opened(&local);
            metrics.observe_round(&round(T0 + 40_000, false, false), Some(&local));
            metrics.add_outage_time(OutageKind::Local, Duration::from_millis(10_500));
            for line in [
                r#"internet_monitor_outage_ongoing{kind="isp"} 0"#,
                r#"internet_monitor_outage_ongoing{kind="local"} 1"#,
                r#"internet_monitor_outages_total{kind="local"} 1"#,
                r#"internet_monitor_outage_seconds_total{kind="local"} 10.5"#,
                r#"internet_monitor_outage_seconds_total{kind="isp"} 20"#,
            ] {
                assert_line(&metrics, line);
            }

            // Up again: nothing ongoing, the last starts stay.
            metrics.observe_round(&round(T0 + 50_000, false, true), None);
            assert_line(&metrics, "internet_monitor_connectivity_up 1");
            assert_line(
                &metrics,
                r#"internet_monitor_outage_ongoing{kind="local"} 0"#,
            );
            assert_line(
                &metrics,
                "internet_monitor_last_outage_start_timestamp_seconds{kind=\"local\"} 1795546103.292",
            );
        }

        #[test]
        fn restored_outages_show_the_newest_start_per_kind_and_count_nothing() {
            let metrics = Metrics::new().unwrap();
            metrics.set_probe_interval(Duration::from_secs(10));
            metrics.restore_outages(&[
                outage(T0 - 7_200_000, OutageKind::Isp),
                outage(T0 - 3_600_000, OutageKind::Isp),
                outage(T0 - 5_400_000, OutageKind::Isp),
            ]);
            assert_line(
                &metrics,
                "internet_monitor_last_outage_start_timestamp_seconds{kind=\"isp\"} 1795542473.292",
            );
            assert!(
                !text(&metrics).contains(
                    r#"internet_monitor_last_outage_start_timestamp_seconds{kind="local"}"#
                )
            );
            assert_line(&metrics, r#"internet_monitor_outages_total{kind="isp"} 0"#);
            // An older outage opening later (a clock set back) does not hide the newer start.
            metrics.outage_opened(&outage(T0 - 9_000_000, OutageKind::Isp));
            assert_line(
                &metrics,
                "internet_monitor_last_outage_start_timestamp_seconds{kind=\"isp\"} 1795542473.292",
            );
            assert_line(&metrics, r#"internet_monitor_outages_total{kind="isp"} 1"#);
        }

        #[test]
        fn every_probe_update_shows_in_the_very_next_scrape() {
            let metrics = Metrics::new().unwrap();
            let first = metrics.render().unwrap();
            metrics.observe_probe(&target(TargetKind::Public, "1.1.1.1"), &probe(T0, None));
            let second = metrics.render().unwrap();
            assert_ne!(first.as_ptr(), second.as_ptr());
            metrics.add_outage_time(OutageKind::Isp, Duration::from_secs(1));
            assert_ne!(metrics.render().unwrap().as_ptr(), second.as_ptr());
        }
    }
}
