//! A summary of the runs in a time window: counts, percentiles and plan compliance, for the
//! JSON API and for a printable report a customer can attach to a complaint.
//!
//! Pure computation: the caller streams samples in (oldest first) straight from the store, so a
//! month of history never has to be held as `Sample`s at once; only the figures are kept,
//! because exact percentiles need every value.

use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::plan::PlanHistory;
use crate::sample::{
    EngineName, FailureReason, Outcome, Sample, Trigger, mbit_per_second, millis, percent,
};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;
use crate::units::Bandwidth;

/// The summary of the samples with `from <= time < to`, streamed from the store (the one
/// place this module reads anything). Each run is judged against the plan version of `plans`
/// in force at its time; a run before the first version is not judged. A single
/// [`crate::plan::Plan`] converts into a history in force at every time.
///
/// Exact percentiles need every value of a figure. A window of up to [`ONE_PASS_VALUES`]
/// successes is read once, keeping all three figures; beyond that the first pass keeps only
/// the download values (and counts everything else), and two more read upload, then ping, so
/// that at most one figure's values are held at a time: 8 bytes per successful run, not 24
/// (16 MB, not 48, over two million). Each pass fingerprints the samples it read; should a
/// sample be stored or deleted between passes, they disagree and the summary starts again,
/// and after a second disagreement it is made in one pass keeping all three figures.
pub fn summarize(
    store: &Store,
    plans: impl Into<PlanHistory>,
    from: Timestamp,
    to: Timestamp,
) -> Result<Summary, StoreError> {
    let plans = plans.into();
    for _ in 0..2 {
        let mut summarizer = Summarizer::new(plans.clone());
        let mut first = Fingerprint::default();
        store.for_each(from, to, |sample| {
            first.add(&sample);
            summarizer.add(&sample);
            if summarizer.keep[1] && summarizer.download.len() > ONE_PASS_VALUES {
                summarizer.keep = [true, false, false];
                summarizer.upload = Vec::new();
                summarizer.ping = Vec::new();
            }
            Ok::<_, StoreError>(())
        })?;
        let one_pass = summarizer.keep[1];
        let mut summary = summarizer.finish(from, to);
        if one_pass {
            return Ok(summary);
        }
        let (upload, second) = figure(store, from, to, |s| s.upload_bytes_per_second)?;
        let (ping, third) = figure(store, from, to, |s| s.ping_seconds)?;
        if first == second && first == third {
            summary.upload_bytes_per_second = upload;
            summary.ping_seconds = ping;
            return Ok(summary);
        }
    }
    let mut summarizer = Summarizer::new(plans);
    store.for_each(from, to, |sample| {
        summarizer.add(&sample);
        Ok::<_, StoreError>(())
    })?;
    Ok(summarizer.finish(from, to))
}

/// Successes a summary reads in one pass, keeping all three figures (2.4 MB of them); a
/// longer window is read once per figure.
pub const ONE_PASS_VALUES: usize = 100_000;

/// The percentiles of one figure over the window's successes, and the fingerprint of the
/// samples read.
fn figure(
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    value: fn(&Sample) -> Option<f64>,
) -> Result<(Option<Percentiles>, Fingerprint), StoreError> {
    let mut values = Vec::new();
    let mut read = Fingerprint::default();
    store.for_each(from, to, |sample| {
        read.add(&sample);
        if sample.is_success() {
            push_figure(&mut values, value(&sample));
        }
        Ok::<_, StoreError>(())
    })?;
    Ok((Percentiles::of(values), read))
}

/// What a pass read: how many samples, and the sum of their times (ms). Two passes over the
/// same samples agree; a sample added or removed between them changes the count or the sum.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fingerprint {
    samples: u64,
    millis: u128,
}

impl Fingerprint {
    fn add(&mut self, sample: &Sample) {
        self.samples += 1;
        self.millis += u128::from(sample.time.as_millis());
    }
}

/// Accumulates samples one at a time; `finish` turns them into a [`Summary`].
#[derive(Debug, Clone)]
pub struct Summarizer {
    plans: PlanHistory,
    runs: Runs,
    runs_by_engine: EngineCounts,
    failures_by_reason: FailureCounts,
    download: Vec<f64>,
    upload: Vec<f64>,
    ping: Vec<f64>,
    /// Which figures' values `add` keeps (download, upload, ping); all three unless
    /// [`summarize`] reads them one pass at a time.
    keep: [bool; 3],
    compliance: Compliance,
}

impl Summarizer {
    /// A summarizer judging each run against the version of `plans` in force at its time.
    pub fn new(plans: impl Into<PlanHistory>) -> Self {
        Summarizer {
            plans: plans.into(),
            runs: Runs::default(),
            runs_by_engine: EngineCounts::default(),
            failures_by_reason: FailureCounts::default(),
            download: Vec::new(),
            upload: Vec::new(),
            ping: Vec::new(),
            keep: [true; 3],
            compliance: Compliance::default(),
        }
    }

    /// Takes the next sample; samples must arrive oldest first, because retests are paired with
    /// the measurement just before them.
    pub fn add(&mut self, sample: &Sample) {
        self.runs.total += 1;
        match sample.outcome {
            Outcome::Success => self.runs.success += 1,
            Outcome::Failure => {
                self.runs.failure += 1;
                if let Some(reason) = sample.reason {
                    self.failures_by_reason.add(reason);
                }
            }
            // A skipped run may carry a reason, but it did not fail: it never ran.
            Outcome::Skipped => self.runs.skipped += 1,
        }
        if sample.outcome != Outcome::Skipped {
            self.runs_by_engine
                .add(sample.engine.as_deref().map(|e| e.name));
        }
        if sample.is_success() {
            let [download, upload, ping] = self.keep;
            if download {
                push_figure(&mut self.download, sample.download_bytes_per_second);
            }
            if upload {
                push_figure(&mut self.upload, sample.upload_bytes_per_second);
            }
            if ping {
                push_figure(&mut self.ping, sample.ping_seconds);
            }
        }
        let version = self.plans.in_force_at(sample.time);
        if let Some(version) = version
            && let Some(met) = version.plan().met_by(sample)
        {
            // Samples arrive oldest first, so a version, once replaced, never judges again.
            if self.compliance.last_version != Some(version.from) {
                self.compliance.last_version = Some(version.from);
                self.compliance.versions += 1;
            }
            self.compliance.judge(sample.time, sample.trigger, met);
        }
    }

    /// The summary of everything added, labelled with the window the caller read it from.
    pub fn finish(self, from: Timestamp, to: Timestamp) -> Summary {
        // The plan shown is that of the newest version that judged a run: a version stored
        // after the window's last run judged none of its figures. With no judged run, the
        // newest version in force in the window.
        let compliance = self.compliance;
        // An ongoing stretch below the plan has lasted until the window's end, or until now
        // when the window reaches past it.
        let end = to.min(Timestamp::now());
        let plan = compliance
            .last_version
            .and_then(|judged| self.plans.in_force_at(judged))
            .map(crate::plan::PlanVersion::plan)
            .or_else(|| self.plans.shown_for(from, to))
            .map(|shown| compliance.finish(&shown, end));
        Summary {
            window: Window { from, to },
            runs: self.runs,
            runs_by_engine: self.runs_by_engine,
            failures_by_reason: self.failures_by_reason,
            failures_by_kind: FailuresByKind::of(&self.failures_by_reason),
            percentile_method: PercentileMethod::NearestRank,
            download_bytes_per_second: Percentiles::of(self.download),
            upload_bytes_per_second: Percentiles::of(self.upload),
            ping_seconds: Percentiles::of(self.ping),
            plan,
        }
    }
}

/// Keeps a figure for the percentiles. Non-finite values are dropped: the store keeps raw float
/// bytes, so a NaN could survive there, and it is no measurement; JSON would also print it as
/// `null` where a number is promised.
fn push_figure(values: &mut Vec<f64>, value: Option<f64>) {
    if let Some(value) = value.filter(|v| v.is_finite()) {
        values.push(value);
    }
}

/// Everything known about the runs in a window. Field names are the public JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub window: Window,
    pub runs: Runs,
    /// The runs that were made (successes and failures, not skipped runs) by the engine that
    /// made them.
    pub runs_by_engine: EngineCounts,
    pub failures_by_reason: FailureCounts,
    /// The same failures grouped by whose problem they point at; only `network` counts
    /// against the line.
    pub failures_by_kind: FailuresByKind,
    pub percentile_method: PercentileMethod,
    /// `None` when no successful sample in the window has the figure.
    pub download_bytes_per_second: Option<Percentiles>,
    pub upload_bytes_per_second: Option<Percentiles>,
    pub ping_seconds: Option<Percentiles>,
    /// `None` when no plan is set.
    pub plan: Option<PlanSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Runs {
    pub total: u64,
    pub success: u64,
    pub failure: u64,
    pub skipped: u64,
}

/// Runs made, by engine: `ookla` (the Ookla CLI), `http` (the built-in HTTP engine), and
/// `unrecorded` for a run stored without its engine (imported with `"engine": null`). Every
/// key is always present, zeros included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EngineCounts {
    pub ookla: u64,
    pub http: u64,
    pub unrecorded: u64,
}

impl EngineCounts {
    fn add(&mut self, engine: Option<EngineName>) {
        let count = match engine {
            Some(EngineName::Ookla) => &mut self.ookla,
            Some(EngineName::Http) => &mut self.http,
            None => &mut self.unrecorded,
        };
        *count += 1;
    }

    /// "ookla 3, http 1": the engines that made any run, `None` when none did.
    fn line(&self) -> Option<String> {
        let listed: Vec<String> = [
            (EngineName::Ookla.as_str(), self.ookla),
            (EngineName::Http.as_str(), self.http),
            ("unrecorded", self.unrecorded),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
        (!listed.is_empty()).then(|| listed.join(", "))
    }
}

/// Failed runs per reason. Serialised as an object with every reason's name, zeros included,
/// so consumers never have to tell "none" from "unknown reason".
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FailureCounts([u64; FailureReason::ALL.len()]);

impl FailureCounts {
    pub fn get(&self, reason: FailureReason) -> u64 {
        index_of(reason)
            .and_then(|i| self.0.get(i).copied())
            .unwrap_or(0)
    }

    /// Every failure reason with its count, in the order of [`FailureReason::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (FailureReason, u64)> + '_ {
        FailureReason::ALL
            .into_iter()
            .zip(self.0.iter().copied())
            .filter(|(reason, _)| reason.is_failure())
    }

    fn add(&mut self, reason: FailureReason) {
        // Looked up rather than cast from the discriminant, so that reordering the enum cannot
        // silently mislabel counts.
        if let Some(count) = index_of(reason).and_then(|i| self.0.get_mut(i)) {
            *count += 1;
        }
    }
}

fn index_of(reason: FailureReason) -> Option<usize> {
    FailureReason::ALL.iter().position(|r| *r == reason)
}

/// Whose problem a failed run points at, so that a complaint to an ISP counts only the runs
/// that speak against the line, and the monitor's own faults are seen as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The line: the network, DNS or every test server was unreachable, a socket failed
    /// mid-test (`no_connectivity`), or the test stalled past `--timeout` (`timeout`: once
    /// started, the CLI does nothing but wait on the network). The only kind counted against
    /// the line.
    Network,
    /// Ookla refused to run the test (`rate_limited`): it says nothing about the line.
    Service,
    /// The monitor or its machine: the CLI is missing or not executable (`spawn`), or printed
    /// what cannot be read (`parse`) or too much (`output_too_large`).
    Local,
    /// The CLI failed for a reason it did not make clear (`exit`: a crash, a configuration
    /// problem, a refused configuration request), or measured figures that cannot be real
    /// (`implausible`). Not counted against the line: nothing shows it was the line.
    Other,
}

impl FailureKind {
    /// Every kind, in the order of their fields in the JSON.
    pub const ALL: [FailureKind; 4] = [
        FailureKind::Network,
        FailureKind::Service,
        FailureKind::Local,
        FailureKind::Other,
    ];

    /// The kind of a failure reason; `None` for `data_budget`, which is no failure.
    pub fn of(reason: FailureReason) -> Option<FailureKind> {
        // No wildcard: a new reason must be given its kind here.
        match reason {
            FailureReason::NoConnectivity | FailureReason::Timeout => Some(FailureKind::Network),
            FailureReason::RateLimited => Some(FailureKind::Service),
            FailureReason::Spawn | FailureReason::Parse | FailureReason::OutputTooLarge => {
                Some(FailureKind::Local)
            }
            FailureReason::Exit | FailureReason::Implausible => Some(FailureKind::Other),
            FailureReason::DataBudget => None,
        }
    }

    /// The kind's name in the JSON and the text report.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Network => "network",
            FailureKind::Service => "service",
            FailureKind::Local => "local",
            FailureKind::Other => "other",
        }
    }

    /// Whether failures of this kind are evidence against the line.
    pub fn counts_against_the_line(self) -> bool {
        self == FailureKind::Network
    }
}

/// Failed runs per [`FailureKind`], every kind present (zeros included). Their sum is
/// `runs.failure` when every failure has a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FailuresByKind {
    /// Failed runs of kind [`FailureKind::Network`]: the ones counted against the line.
    pub network: u64,
    /// Failed runs of kind [`FailureKind::Service`].
    pub service: u64,
    /// Failed runs of kind [`FailureKind::Local`].
    pub local: u64,
    /// Failed runs of kind [`FailureKind::Other`].
    pub other: u64,
}

impl FailuresByKind {
    fn of(counts: &FailureCounts) -> Self {
        let mut kinds = FailuresByKind::default();
        for (reason, count) in counts.iter() {
            if let Some(kind) = FailureKind::of(reason) {
                *kinds.slot(kind) += count;
            }
        }
        kinds
    }

    /// The number of failed runs of `kind`.
    pub fn get(&self, kind: FailureKind) -> u64 {
        match kind {
            FailureKind::Network => self.network,
            FailureKind::Service => self.service,
            FailureKind::Local => self.local,
            FailureKind::Other => self.other,
        }
    }

    fn slot(&mut self, kind: FailureKind) -> &mut u64 {
        match kind {
            FailureKind::Network => &mut self.network,
            FailureKind::Service => &mut self.service,
            FailureKind::Local => &mut self.local,
            FailureKind::Other => &mut self.other,
        }
    }
}

impl Serialize for FailureCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (reason, count) in self.iter() {
            map.serialize_entry(reason.as_str(), &count)?;
        }
        map.end()
    }
}

/// How the percentiles were computed; in the JSON so that readers need not guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PercentileMethod {
    /// The value at 1-based rank ceil(p/100 × n) of the sorted values: always a measured value.
    #[serde(rename = "nearest-rank")]
    NearestRank,
}

/// The spread of one figure over the window's successful runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub min: f64,
    pub p5: f64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

impl Percentiles {
    /// Exact nearest-rank percentiles; `None` for no values.
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        values.sort_unstable_by(f64::total_cmp);
        Some(Percentiles {
            min: *values.first()?,
            p5: nearest_rank(&values, 5)?,
            p50: nearest_rank(&values, 50)?,
            p95: nearest_rank(&values, 95)?,
            max: *values.last()?,
        })
    }
}

/// The `percentile`-th percentile of ascending `sorted` values by nearest rank. The rank is
/// computed in integers because in floats 0.95 × 20 is 19.000000000000004, whose ceiling
/// would pick the wrong value.
fn nearest_rank(sorted: &[f64], percentile: usize) -> Option<f64> {
    let rank = percentile.saturating_mul(sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// How the window's measurements compare with the contracted plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlanSummary {
    pub download_bytes_per_second: Option<f64>,
    pub upload_bytes_per_second: Option<f64>,
    pub threshold: f64,
    /// Judged measurements: a successful run, or a below-plan run together with its retest.
    pub measurements: u64,
    pub met: u64,
    /// `met / measurements`; `None` when nothing was measured.
    pub share_met: Option<f64>,
    pub breaches: u64,
    pub retests: Retests,
    pub longest_below: Option<LongestBelow>,
    /// How many plan versions judged the window's runs (each run is judged against the version
    /// in force at its time); the speeds and threshold above are those of the newest version
    /// that judged a run (with none judged, of the newest in force in the window).
    pub plan_versions: u64,
}

/// What the retests of below-plan runs showed.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Retests {
    /// The retest was below the plan too: the breach stands.
    pub confirmed: u64,
    /// The retest met the plan: the first run was a blip, not a breach.
    pub refuted: u64,
}

/// The longest run of consecutive breached measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LongestBelow {
    /// The time of the first breached measurement.
    pub from: Timestamp,
    /// The time of the next measurement that met the plan or, when `ongoing`, the end of the
    /// window (at most now): how long it has lasted so far.
    pub to: Timestamp,
    /// `to - from`, seconds.
    pub seconds: f64,
    pub measurements: u64,
    /// The window's data ended while still below the plan: no measurement has met it since.
    pub ongoing: bool,
    /// The time of the last breached measurement of the stretch.
    pub last_below: Timestamp,
}

/// The plan-compliance state machine: pairs each below-plan run with the retest that follows it.
#[derive(Debug, Clone, Default)]
struct Compliance {
    measurements: u64,
    met: u64,
    retests: Retests,
    /// A below-plan run waiting to see whether a retest confirms it; its time dates the pair.
    pending: Option<Timestamp>,
    /// The breached measurements since the last one that met the plan.
    run: Option<BelowRun>,
    longest: Option<LongestBelow>,
    /// The plan versions that judged a run so far, and the `from` of the last one.
    versions: u64,
    last_version: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy)]
struct BelowRun {
    from: Timestamp,
    last: Timestamp,
    measurements: u64,
}

impl Compliance {
    fn judge(&mut self, time: Timestamp, trigger: Trigger, met: bool) {
        if trigger == Trigger::Retest
            && let Some(first) = self.pending.take()
        {
            if met {
                self.retests.refuted += 1;
            } else {
                self.retests.confirmed += 1;
            }
            self.record(first, met);
            return;
        }
        // The next judged run is not its retest, so the below-plan run stands on its own.
        if let Some(first) = self.pending.take() {
            self.record(first, false);
        }
        // Only a scheduled or manual run is retested; a retest with nothing to pair with (its
        // first run lies before the window) is an ordinary measurement.
        if !met && trigger != Trigger::Retest {
            self.pending = Some(time);
        } else {
            self.record(time, met);
        }
    }

    /// Counts one measurement, dated by its first run, and tracks stretches below the plan.
    fn record(&mut self, time: Timestamp, met: bool) {
        self.measurements += 1;
        if met {
            self.met += 1;
            if let Some(run) = self.run.take() {
                self.offer(run, time, false);
            }
        } else if let Some(run) = &mut self.run {
            run.last = time;
            run.measurements += 1;
        } else {
            self.run = Some(BelowRun {
                from: time,
                last: time,
                measurements: 1,
            });
        }
    }

    /// Keeps `run` if it spans more breached measurements than the longest so far; on a tie
    /// the earlier one stays.
    fn offer(&mut self, run: BelowRun, to: Timestamp, ongoing: bool) {
        let to = to.max(run.last);
        if self
            .longest
            .is_some_and(|longest| longest.measurements >= run.measurements)
        {
            return;
        }
        self.longest = Some(LongestBelow {
            from: run.from,
            to,
            seconds: to.as_millis().saturating_sub(run.from.as_millis()) as f64 / 1000.0,
            measurements: run.measurements,
            ongoing,
            last_below: run.last,
        });
    }

    /// The plan's summary; a stretch still below the plan when the data ends lasts until
    /// `end` (the window's end, at most now) so far.
    fn finish(mut self, plan: &crate::plan::Plan, end: Timestamp) -> PlanSummary {
        // The window's data ended before a retest could confirm or refute: the breach stands.
        if let Some(first) = self.pending.take() {
            self.record(first, false);
        }
        if let Some(run) = self.run.take() {
            self.offer(run, end, true);
        }
        PlanSummary {
            download_bytes_per_second: plan.download.map(Bandwidth::bytes_per_second),
            upload_bytes_per_second: plan.upload.map(Bandwidth::bytes_per_second),
            threshold: plan.threshold,
            measurements: self.measurements,
            met: self.met,
            share_met: (self.measurements > 0).then(|| self.met as f64 / self.measurements as f64),
            breaches: self.measurements.saturating_sub(self.met),
            retests: self.retests,
            longest_below: self.longest,
            plan_versions: self.versions,
        }
    }
}

impl Summary {
    /// A plain-text report for a person; lines that would say nothing are left out.
    pub fn to_text(&self) -> String {
        let mut lines = vec![
            format!(
                "internet-monitor report, {} to {}",
                self.window.from, self.window.to
            ),
            format!(
                "Runs: {} ({} succeeded, {} failed, {} skipped)",
                self.runs.total, self.runs.success, self.runs.failure, self.runs.skipped
            ),
        ];
        if let Some(engines) = self.runs_by_engine.line() {
            lines.push(format!("Measured by: {engines}"));
        }
        lines.extend(self.failure_lines());
        let mbit = |v: f64| format!("{:.1}", mbit_per_second(v));
        let ms = |v: f64| millis(v).to_string();
        let figures = [
            (
                "Download:",
                &self.download_bytes_per_second,
                &mbit as &dyn Fn(f64) -> String,
                "Mbit/s",
            ),
            ("Upload:  ", &self.upload_bytes_per_second, &mbit, "Mbit/s"),
            ("Ping:    ", &self.ping_seconds, &ms, "ms"),
        ];
        for (label, spread, show, unit) in figures {
            if let Some(p) = spread {
                lines.push(format!(
                    "{label} min {}, p5 {}, median {}, p95 {}, max {} {unit}",
                    show(p.min),
                    show(p.p5),
                    show(p.p50),
                    show(p.p95),
                    show(p.max)
                ));
            }
        }
        if let Some(plan) = &self.plan {
            lines.push(plan_line(plan));
            if let Some(longest) = &plan.longest_below {
                lines.push(longest_line(longest));
            }
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }
}

impl Summary {
    /// The failures in two lines, each left out when it would count none: those counted
    /// against the line (network), then the rest by kind, each kind with its reasons, most
    /// frequent first (ties in the order of `FailureReason::ALL`).
    fn failure_lines(&self) -> Vec<String> {
        let mut against = Vec::new();
        let mut apart = Vec::new();
        let (mut against_count, mut apart_count) = (0, 0);
        for kind in FailureKind::ALL {
            let count = self.failures_by_kind.get(kind);
            if count == 0 {
                continue;
            }
            let mut reasons: Vec<(FailureReason, u64)> = self
                .failures_by_reason
                .iter()
                .filter(|(reason, n)| *n > 0 && FailureKind::of(*reason) == Some(kind))
                .collect();
            reasons.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            let listed: Vec<String> = reasons
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            let group = format!("{}: {}", kind.as_str(), listed.join(", "));
            if kind.counts_against_the_line() {
                against_count += count;
                against.push(group);
            } else {
                apart_count += count;
                apart.push(group);
            }
        }
        let mut lines = Vec::new();
        if against_count > 0 {
            lines.push(format!(
                "Failures counted against the line: {against_count} ({})",
                against.join("; ")
            ));
        }
        if apart_count > 0 {
            lines.push(format!(
                "Failures not counted against the line: {apart_count} ({})",
                apart.join("; ")
            ));
        }
        lines
    }
}

fn plan_line(plan: &PlanSummary) -> String {
    let mut terms = Vec::new();
    if let Some(down) = plan.download_bytes_per_second {
        terms.push(format!("{} down", Bandwidth::from_bytes_per_second(down)));
    }
    if let Some(up) = plan.upload_bytes_per_second {
        terms.push(format!("{} up", Bandwidth::from_bytes_per_second(up)));
    }
    terms.push(format!("threshold {} %", percent(plan.threshold)));
    let verdict = match plan.share_met {
        None => "no measurements".to_owned(),
        Some(share) => format!(
            "met by {} of {} ({:.1} %); {} ({} confirmed by a retest, {} refuted)",
            plan.met,
            counted(plan.measurements, "measurement", "measurements"),
            percent(share),
            counted(plan.breaches, "breach", "breaches"),
            plan.retests.confirmed,
            plan.retests.refuted
        ),
    };
    let versions = if plan.plan_versions > 1 {
        format!(
            " (each run judged against the plan in force at its time: {} versions, the newest shown; see plan history)",
            plan.plan_versions
        )
    } else {
        String::new()
    };
    format!("Plan: {}: {verdict}{versions}", terms.join(", "))
}

/// The line saying the longest stretch below the plan (for text and the evidence pack).
pub(crate) fn longest_line(longest: &LongestBelow) -> String {
    let millis = longest
        .to
        .as_millis()
        .saturating_sub(longest.from.as_millis());
    // Whole seconds: humantime would otherwise print the milliseconds too.
    let duration =
        humantime::format_duration(Duration::from_secs(millis.saturating_add(500) / 1000));
    let measurements = counted(longest.measurements, "measurement", "measurements");
    if longest.ongoing {
        return format!(
            "Longest stretch below the plan: ongoing, {duration} so far, from {} to {} \
             (still below at the last measurement, {}; {measurements})",
            longest.from, longest.to, longest.last_below
        );
    }
    format!(
        "Longest stretch below the plan: {duration}, from {} to {} ({measurements})",
        longest.from, longest.to
    )
}

fn counted(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plan::Plan;
    use crate::sample::{Engine, HttpProtocol};

    const MINUTE: u64 = 60_000;
    /// 2026-11-24T00:00:00.000Z, so the expected times read as round numbers.
    const T0: u64 = 1_795_478_400_000;

    fn at(minutes: u64) -> Timestamp {
        Timestamp::from_millis(T0 + minutes * MINUTE)
    }

    fn success(minutes: u64, trigger: Trigger, download_mbit: f64, upload_mbit: f64) -> Sample {
        Sample {
            download_bytes_per_second: Some(download_mbit * 125_000.0),
            upload_bytes_per_second: Some(upload_mbit * 125_000.0),
            ping_seconds: Some(0.010),
            engine: Some(Arc::new(Engine::ookla())),
            ..Sample::empty(at(minutes), trigger)
        }
    }

    fn failure(minutes: u64, trigger: Trigger, reason: FailureReason) -> Sample {
        Sample {
            engine: Some(Arc::new(Engine::ookla())),
            ..Sample::failure(at(minutes), trigger, reason, "test")
        }
    }

    fn http() -> Option<Arc<Engine>> {
        Some(Arc::new(Engine {
            name: EngineName::Http,
            protocol: Some(HttpProtocol::Cloudflare),
            url: Some("https://speed.cloudflare.com".into()),
            streams: Some(4),
            duration_seconds: Some(10.0),
            ramp_up_seconds: Some(2.0),
        }))
    }

    #[test]
    fn runs_are_counted_by_engine_and_skipped_runs_by_none() {
        let mut samples = vec![
            success(0, Trigger::Schedule, 90.0, 18.0),
            success(30, Trigger::Schedule, 90.0, 18.0),
            failure(60, Trigger::Schedule, FailureReason::Timeout),
            success(90, Trigger::Schedule, 90.0, 18.0),
            Sample {
                outcome: Outcome::Skipped,
                reason: Some(FailureReason::DataBudget),
                ..Sample::empty(at(120), Trigger::Schedule)
            },
        ];
        samples[1].engine = http();
        samples[2].engine = http();
        samples[3].engine = None;
        let summary = summarize(no_plan(), &samples);
        assert_eq!(
            summary.runs_by_engine,
            EngineCounts {
                ookla: 1,
                http: 2,
                unrecorded: 1
            }
        );
        assert!(
            summary
                .to_text()
                .contains("\nMeasured by: ookla 1, http 2, unrecorded 1\n")
        );
        let none = summarize(no_plan(), &samples[4..]).to_text();
        assert!(!none.contains("Measured by"), "{none}");
    }

    /// 100 Mbit/s down, 20 up, 80 %: a run meets it from 80 down and 16 up.
    fn plan() -> Plan {
        Plan {
            download: Some("100Mbit/s".parse().unwrap()),
            upload: Some("20Mbit/s".parse().unwrap()),
            threshold: 0.8,
        }
    }

    fn no_plan() -> Plan {
        Plan {
            download: None,
            upload: None,
            threshold: 0.8,
        }
    }

    fn summarize(plan: Plan, samples: &[Sample]) -> Summary {
        let mut summarizer = Summarizer::new(plan);
        for sample in samples {
            summarizer.add(sample);
        }
        summarizer.finish(at(0), at(24 * 60))
    }

    #[test]
    fn each_run_is_judged_by_the_version_in_force_at_its_time() {
        use crate::plan::{PlanHistory, PlanVersion};
        let version = |minute: u64, plan: Plan| PlanVersion::from_flags(plan, at(minute)).unwrap();
        let doubled = Plan {
            download: Some("200Mbit/s".parse().unwrap()),
            ..plan()
        };
        let history = PlanHistory::new(vec![version(10, plan()), version(20, doubled)]);
        let samples = [
            success(5, Trigger::Schedule, 1.0, 20.0), // before any version: not judged
            success(10, Trigger::Schedule, 85.0, 20.0), // 100 Mbit/s: met
            success(19, Trigger::Schedule, 70.0, 20.0), // 100 Mbit/s: breach
            success(20, Trigger::Schedule, 150.0, 20.0), // 200 Mbit/s: breach
            success(30, Trigger::Schedule, 160.0, 20.0), // 200 Mbit/s: met (exactly 80 %)
        ];
        let mut summarizer = Summarizer::new(history);
        for sample in &samples {
            summarizer.add(sample);
        }
        let judged = summarizer.finish(at(0), at(60)).plan.unwrap();
        assert_eq!(
            (judged.measurements, judged.met, judged.breaches),
            (4, 2, 2)
        );
        assert_eq!(judged.download_bytes_per_second, Some(25_000_000.0));
        assert_eq!(judged.longest_below.unwrap().measurements, 2);
        assert_eq!(judged.plan_versions, 2);
        // A version stored after the window's last run judged none of it: the plan shown is
        // the one that judged its runs, not one its figures were never compared with.
        let mut later = Summarizer::new(PlanHistory::new(vec![
            version(10, plan()),
            version(40, doubled),
        ]));
        later.add(&samples[1]);
        let shown = later.finish(at(0), at(60)).plan.unwrap();
        assert_eq!(shown.download_bytes_per_second, Some(12_500_000.0));
        assert_eq!(
            (shown.measurements, shown.met, shown.plan_versions),
            (1, 1, 1)
        );
        // With no run judged, the newest version in force in the window is shown.
        let unjudged = Summarizer::new(PlanHistory::new(vec![
            version(10, plan()),
            version(40, doubled),
        ]));
        let shown = unjudged.finish(at(0), at(60)).plan.unwrap();
        assert_eq!(shown.download_bytes_per_second, Some(25_000_000.0));
        assert_eq!(shown.measurements, 0);
        // A window wholly before the first version has no plan section.
        let before = Summarizer::new(PlanHistory::new(vec![version(10, plan())]));
        assert_eq!(before.finish(at(0), at(10)).plan, None);
    }

    #[test]
    fn one_figure_per_pass_gives_the_one_pass_summary() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut samples: Vec<Sample> = (0..ONE_PASS_VALUES as u64 + 200)
            .map(|i| {
                let mut sample = success(
                    i,
                    Trigger::Schedule,
                    50.0 + (i * 37 % 101) as f64,
                    10.0 + (i * 13 % 17) as f64,
                );
                sample.ping_seconds = Some(0.001 * (i * 7 % 23) as f64);
                sample
            })
            .collect();
        samples.push(failure(
            ONE_PASS_VALUES as u64 + 300,
            Trigger::Schedule,
            FailureReason::Timeout,
        ));
        store
            .import(samples.iter().cloned().map(Ok::<_, StoreError>))
            .unwrap();
        let (from, to) = (at(0), at(ONE_PASS_VALUES as u64 + 400));
        let stored = super::summarize(&store, plan(), from, to).unwrap();
        let mut summarizer = Summarizer::new(plan());
        for sample in &samples {
            summarizer.add(sample);
        }
        assert_eq!(stored, summarizer.finish(from, to));
        assert!(stored.upload_bytes_per_second.is_some() && stored.ping_seconds.is_some());
    }

    /// A scheduled run every hour: `true` meets the plan, `false` is below it.
    fn hourly(pattern: &[bool]) -> Vec<Sample> {
        pattern
            .iter()
            .enumerate()
            .map(|(i, &met)| {
                let down = if met { 90.0 } else { 50.0 };
                success(i as u64 * 60, Trigger::Schedule, down, 18.0)
            })
            .collect()
    }

    #[test]
    fn nearest_rank_percentiles_of_twenty_values() {
        // 1..=20 Mbit/s, shuffled: the order of arrival must not matter.
        let order = [
            7, 19, 3, 12, 20, 1, 15, 9, 4, 17, 11, 2, 14, 6, 18, 10, 5, 16, 8, 13,
        ];
        let samples: Vec<Sample> = order
            .iter()
            .enumerate()
            .map(|(i, &mbit)| success(i as u64, Trigger::Schedule, mbit as f64, 1.0))
            .collect();
        let summary = summarize(no_plan(), &samples);
        // n = 20: p5 → rank ceil(1) = 1, p50 → rank 10, p95 → rank ceil(19) = 19.
        let bytes = |mbit: f64| mbit * 125_000.0;
        assert_eq!(
            summary.download_bytes_per_second,
            Some(Percentiles {
                min: bytes(1.0),
                p5: bytes(1.0),
                p50: bytes(10.0),
                p95: bytes(19.0),
                max: bytes(20.0),
            })
        );
    }

    #[test]
    fn nearest_rank_percentiles_of_seven_values() {
        let mut sorted = vec![50.0, 10.0, 40.0, 20.0, 70.0, 30.0, 60.0];
        sorted.sort_by(f64::total_cmp);
        // n = 7: p5 → ceil(0.35) = 1, p50 → ceil(3.5) = 4, p95 → ceil(6.65) = 7.
        assert_eq!(nearest_rank(&sorted, 5), Some(10.0));
        assert_eq!(nearest_rank(&sorted, 50), Some(40.0));
        assert_eq!(nearest_rank(&sorted, 95), Some(70.0));
        assert_eq!(nearest_rank(&[3.0], 5), Some(3.0));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn non_finite_figures_are_left_out_without_panicking() {
        let mut odd = success(1, Trigger::Schedule, 10.0, 1.0);
        odd.download_bytes_per_second = Some(f64::NAN);
        odd.ping_seconds = Some(f64::INFINITY);
        let samples = [odd, success(2, Trigger::Schedule, 20.0, 1.0)];
        let summary = summarize(no_plan(), &samples);
        let download = summary.download_bytes_per_second.unwrap();
        assert_eq!((download.min, download.max), (2_500_000.0, 2_500_000.0));
        assert_eq!(summary.ping_seconds.unwrap().max, 0.010);
    }

    #[test]
    fn counts_runs_by_outcome_and_failures_by_reason() {
        let mut skipped = Sample::empty(at(5), Trigger::Schedule);
        skipped.outcome = Outcome::Skipped;
        skipped.reason = Some(FailureReason::Spawn);
        let samples = [
            success(0, Trigger::Schedule, 90.0, 18.0),
            failure(1, Trigger::Schedule, FailureReason::Timeout),
            failure(2, Trigger::Manual, FailureReason::Timeout),
            failure(3, Trigger::Schedule, FailureReason::NoConnectivity),
            success(4, Trigger::Manual, 95.0, 19.0),
            skipped,
        ];
        let summary = summarize(no_plan(), &samples);
        assert_eq!(
            summary.runs,
            Runs {
                total: 6,
                success: 2,
                failure: 3,
                skipped: 1,
            }
        );
        assert_eq!(summary.failures_by_reason.get(FailureReason::Timeout), 2);
        assert_eq!(
            summary
                .failures_by_reason
                .get(FailureReason::NoConnectivity),
            1
        );
        // The skipped run's reason is not a failure.
        assert_eq!(summary.failures_by_reason.get(FailureReason::Spawn), 0);
        assert_eq!(
            summary
                .failures_by_reason
                .iter()
                .map(|(_, n)| n)
                .sum::<u64>(),
            3
        );
    }

    #[test]
    fn figures_are_null_without_successes() {
        let samples = [
            failure(0, Trigger::Schedule, FailureReason::Exit),
            failure(1, Trigger::Retest, FailureReason::Parse),
        ];
        let summary = summarize(plan(), &samples);
        assert_eq!(summary.download_bytes_per_second, None);
        assert_eq!(summary.upload_bytes_per_second, None);
        assert_eq!(summary.ping_seconds, None);
        let plan = summary.plan.unwrap();
        assert_eq!((plan.measurements, plan.met, plan.breaches), (0, 0, 0));
        assert_eq!(plan.share_met, None);
        assert_eq!(plan.longest_below, None);
        let json = serde_json::to_value(&summary).unwrap();
        assert!(json["download_bytes_per_second"].is_null());
        assert!(json["plan"]["share_met"].is_null());
    }

    #[test]
    fn a_figure_no_success_reported_is_null() {
        let mut no_ping = success(0, Trigger::Schedule, 90.0, 18.0);
        no_ping.ping_seconds = None;
        let summary = summarize(no_plan(), &[no_ping]);
        assert!(summary.download_bytes_per_second.is_some());
        assert_eq!(summary.ping_seconds, None);
    }

    #[test]
    fn share_met_over_measurements() {
        // 3 of 4 met; the lone below-plan run has no retest, so it is a breach by itself.
        let summary = summarize(plan(), &hourly(&[true, false, true, true]));
        let plan = summary.plan.unwrap();
        assert_eq!(plan.measurements, 4);
        assert_eq!(plan.met, 3);
        assert_eq!(plan.breaches, 1);
        assert_eq!(plan.share_met, Some(0.75));
        assert_eq!(plan.retests, Retests::default());
        assert_eq!(plan.download_bytes_per_second, Some(12_500_000.0));
        assert_eq!(plan.upload_bytes_per_second, Some(2_500_000.0));
        assert_eq!(plan.threshold, 0.8);
    }

    #[test]
    fn a_retest_that_meets_the_plan_refutes_the_breach() {
        let samples = [
            success(0, Trigger::Schedule, 90.0, 18.0),
            success(60, Trigger::Schedule, 50.0, 18.0),
            // A failed retest attempt neither counts nor breaks the pairing.
            failure(61, Trigger::Retest, FailureReason::Timeout),
            success(62, Trigger::Retest, 85.0, 18.0),
            success(120, Trigger::Schedule, 90.0, 18.0),
        ];
        let plan = summarize(plan(), &samples).plan.unwrap();
        assert_eq!(plan.measurements, 3);
        assert_eq!(plan.met, 3);
        assert_eq!(plan.breaches, 0);
        assert_eq!(
            plan.retests,
            Retests {
                confirmed: 0,
                refuted: 1
            }
        );
        assert_eq!(plan.longest_below, None);
    }

    #[test]
    fn a_retest_below_the_plan_confirms_the_breach() {
        let samples = [
            success(0, Trigger::Schedule, 50.0, 18.0),
            success(2, Trigger::Retest, 60.0, 18.0),
            success(60, Trigger::Manual, 90.0, 10.0),
            success(62, Trigger::Retest, 90.0, 10.0),
            success(120, Trigger::Schedule, 90.0, 18.0),
        ];
        let plan = summarize(plan(), &samples).plan.unwrap();
        assert_eq!(plan.measurements, 3);
        assert_eq!(plan.met, 1);
        assert_eq!(plan.breaches, 2);
        assert_eq!(plan.share_met, Some(1.0 / 3.0));
        assert_eq!(
            plan.retests,
            Retests {
                confirmed: 2,
                refuted: 0
            }
        );
    }

    #[test]
    fn below_plan_runs_without_a_retest_are_breaches() {
        let samples = [
            success(0, Trigger::Schedule, 50.0, 18.0),
            // The next judged run is not a retest: the first stands alone.
            success(60, Trigger::Manual, 50.0, 18.0),
            success(120, Trigger::Schedule, 90.0, 18.0),
            // A retest with nothing pending (its first run lay before the window) is an
            // ordinary measurement; a below-plan one at the end of the data is a breach too.
            success(121, Trigger::Retest, 90.0, 18.0),
            success(180, Trigger::Schedule, 40.0, 18.0),
        ];
        let plan = summarize(plan(), &samples).plan.unwrap();
        assert_eq!(plan.measurements, 5);
        assert_eq!(plan.met, 2);
        assert_eq!(plan.breaches, 3);
        assert_eq!(plan.retests, Retests::default());
    }

    #[test]
    fn longest_below_ends_at_the_next_met_measurement() {
        // Breaches at 1 h (one), then 3 h, 4 h, 5 h (three), met again at 6 h; one more at 8 h.
        let samples = hourly(&[true, false, true, false, false, false, true, true, false]);
        let plan = summarize(plan(), &samples).plan.unwrap();
        assert_eq!(plan.breaches, 5);
        assert_eq!(
            plan.longest_below,
            Some(LongestBelow {
                from: at(180),
                to: at(360),
                seconds: 3.0 * 3600.0,
                measurements: 3,
                ongoing: false,
                last_below: at(300),
            })
        );
    }

    #[test]
    fn longest_below_lasting_to_the_end_is_ongoing() {
        // Two below at 1 h and 2 h, then three at 4, 5 and 6 h with no recovery.
        // It has lasted so far until the window's end (24 h), not just to its last run.
        let samples = hourly(&[true, false, false, true, false, false, false]);
        let plan = summarize(plan(), &samples).plan.unwrap();
        assert_eq!(
            plan.longest_below,
            Some(LongestBelow {
                from: at(240),
                to: at(24 * 60),
                seconds: 20.0 * 3600.0,
                measurements: 3,
                ongoing: true,
                last_below: at(360),
            })
        );
    }

    #[test]
    fn one_ongoing_breach_has_lasted_until_the_window_ends() {
        // The last run of the window is the only breach: it has lasted 23 h so far, not 0 s.
        let samples = hourly(&[true, true]);
        let mut summarizer = Summarizer::new(plan());
        for sample in &samples {
            summarizer.add(sample);
        }
        summarizer.add(&success(60 + 30, Trigger::Schedule, 50.0, 18.0));
        let summary = summarizer.finish(at(0), at(24 * 60));
        let longest = summary.plan.as_ref().unwrap().longest_below.unwrap();
        assert_eq!((longest.from, longest.to), (at(90), at(24 * 60)));
        assert_eq!(longest.last_below, at(90));
        assert!(longest.ongoing);
        let text = summary.to_text();
        assert!(
            text.contains(
                "Longest stretch below the plan: ongoing, 22h 30m so far, from \
                 2026-11-24T01:30:00.000Z to 2026-11-25T00:00:00.000Z (still below at the last \
                 measurement, 2026-11-24T01:30:00.000Z; 1 measurement)"
            ),
            "{text}"
        );
        assert!(!text.contains(" 0s"), "{text}");
    }

    #[test]
    fn longest_below_ties_keep_the_earliest_and_pairs_are_dated_by_their_first_run() {
        let samples = [
            // A confirmed pair dated 0 min, then met at 60 min.
            success(0, Trigger::Schedule, 50.0, 18.0),
            success(5, Trigger::Retest, 50.0, 18.0),
            success(60, Trigger::Schedule, 90.0, 18.0),
            // Just as long (one measurement), later: the earlier run stays.
            success(120, Trigger::Schedule, 50.0, 18.0),
        ];
        let plan = summarize(plan(), &samples).plan.unwrap();
        assert_eq!(
            plan.longest_below,
            Some(LongestBelow {
                from: at(0),
                to: at(60),
                seconds: 3600.0,
                measurements: 1,
                ongoing: false,
                last_below: at(0),
            })
        );
    }

    #[test]
    fn plan_is_null_when_not_set() {
        let summary = summarize(no_plan(), &hourly(&[false, true]));
        assert_eq!(summary.plan, None);
        let json = serde_json::to_value(&summary).unwrap();
        assert!(json["plan"].is_null());
        assert!(!summary.to_text().contains("Plan:"));
    }

    fn keys(value: &serde_json::Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn json_field_names_are_the_public_contract() {
        let samples = [
            success(0, Trigger::Schedule, 50.0, 18.0),
            failure(30, Trigger::Schedule, FailureReason::RateLimited),
            success(60, Trigger::Schedule, 90.0, 18.0),
        ];
        let json = serde_json::to_value(summarize(plan(), &samples)).unwrap();
        assert_eq!(
            keys(&json),
            [
                "download_bytes_per_second",
                "failures_by_kind",
                "failures_by_reason",
                "percentile_method",
                "ping_seconds",
                "plan",
                "runs",
                "runs_by_engine",
                "upload_bytes_per_second",
                "window",
            ]
        );
        assert_eq!(
            json["runs_by_engine"],
            serde_json::json!({"ookla": 3, "http": 0, "unrecorded": 0})
        );
        assert_eq!(json["window"]["from"], "2026-11-24T00:00:00.000Z");
        assert_eq!(json["window"]["to"], "2026-11-25T00:00:00.000Z");
        assert_eq!(
            keys(&json["runs"]),
            ["failure", "skipped", "success", "total"]
        );
        let reasons = json["failures_by_reason"].as_object().unwrap();
        let names: Vec<&str> = reasons.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = FailureReason::ALL
            .iter()
            .filter(|r| r.is_failure())
            .map(|r| r.as_str())
            .collect();
        expected.sort_unstable();
        assert_eq!(names.len(), expected.len());
        assert_eq!(keys(&json["failures_by_reason"]), expected);
        assert_eq!(json["failures_by_reason"]["rate_limited"], 1);
        assert_eq!(json["failures_by_reason"]["timeout"], 0);
        assert_eq!(
            json["failures_by_kind"],
            serde_json::json!({"network": 0, "service": 1, "local": 0, "other": 0})
        );
        assert_eq!(json["percentile_method"], "nearest-rank");
        assert_eq!(
            keys(&json["download_bytes_per_second"]),
            ["max", "min", "p5", "p50", "p95"]
        );
        assert_eq!(
            keys(&json["plan"]),
            [
                "breaches",
                "download_bytes_per_second",
                "longest_below",
                "measurements",
                "met",
                "plan_versions",
                "retests",
                "share_met",
                "threshold",
                "upload_bytes_per_second",
            ]
        );
        assert_eq!(keys(&json["plan"]["retests"]), ["confirmed", "refuted"]);
        assert_eq!(
            keys(&json["plan"]["longest_below"]),
            [
                "from",
                "last_below",
                "measurements",
                "ongoing",
                "seconds",
                "to"
            ]
        );
        assert_eq!(
            json["plan"]["longest_below"]["from"],
            "2026-11-24T00:00:00.000Z"
        );
        assert_eq!(json["plan"]["longest_below"]["seconds"], 3600.0);
        assert_eq!(json["plan"]["share_met"], 0.5);
    }

    #[test]
    fn failure_counts_serialise_in_reason_order() {
        let json = serde_json::to_string(&FailureCounts::default()).unwrap();
        assert_eq!(
            json,
            r#"{"spawn":0,"timeout":0,"exit":0,"rate_limited":0,"no_connectivity":0,"parse":0,"implausible":0,"output_too_large":0}"#
        );
    }

    #[test]
    fn text_report_has_the_key_lines() {
        let mut samples = vec![
            success(0, Trigger::Schedule, 310.2, 40.0),
            success(60, Trigger::Schedule, 50.0, 18.0),
            success(62, Trigger::Retest, 60.0, 18.0),
            success(120, Trigger::Schedule, 50.0, 18.0),
            success(122, Trigger::Retest, 95.0, 19.0),
            success(180, Trigger::Schedule, 50.0, 18.0),
            failure(240, Trigger::Schedule, FailureReason::NoConnectivity),
            failure(300, Trigger::Schedule, FailureReason::Timeout),
            failure(360, Trigger::Schedule, FailureReason::Timeout),
            success(420, Trigger::Schedule, 90.0, 18.0),
        ];
        samples[0].ping_seconds = Some(0.005631);
        samples[9].engine = http();
        let text = summarize(plan(), &samples).to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "internet-monitor report, 2026-11-24T00:00:00.000Z to 2026-11-25T00:00:00.000Z",
                "Runs: 10 (7 succeeded, 3 failed, 0 skipped)",
                "Measured by: ookla 9, http 1",
                "Failures counted against the line: 3 (network: timeout 2, no_connectivity 1)",
                "Download: min 50.0, p5 50.0, median 60.0, p95 310.2, max 310.2 Mbit/s",
                "Upload:   min 18.0, p5 18.0, median 18.0, p95 40.0, max 40.0 Mbit/s",
                "Ping:     min 5.631, p5 5.631, median 10, p95 10, max 10 ms",
                "Plan: 100 Mbit/s down, 20 Mbit/s up, threshold 80 %: met by 3 of 5 measurements \
                 (60.0 %); 2 breaches (1 confirmed by a retest, 1 refuted)",
                "Longest stretch below the plan: 1h, from 2026-11-24T01:00:00.000Z to \
                 2026-11-24T02:00:00.000Z (1 measurement)",
            ]
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn text_report_leaves_out_what_does_not_apply() {
        let samples = hourly(&[true, false, false]);
        let text = summarize(plan(), &samples).to_text();
        assert!(!text.contains("Failures"));
        assert!(text.contains(
            "Longest stretch below the plan: ongoing, 23h so far, from 2026-11-24T01:00:00.000Z \
             to 2026-11-25T00:00:00.000Z (still below at the last measurement, \
             2026-11-24T02:00:00.000Z; 2 measurements)"
        ));
        let quiet = summarize(plan(), &hourly(&[true])).to_text();
        assert!(!quiet.contains("Longest stretch"));
        assert!(quiet.contains("met by 1 of 1 measurement (100.0 %); 0 breaches"));
        let empty = summarize(plan(), &[]).to_text();
        assert!(!empty.contains("Download:"));
        assert!(empty.contains("threshold 80 %: no measurements"));
    }

    #[test]
    fn every_failure_reason_has_a_kind_and_only_network_counts_against_the_line() {
        for reason in FailureReason::ALL {
            let kind = FailureKind::of(reason);
            assert_eq!(kind.is_some(), reason.is_failure(), "{reason}");
            let against = kind.is_some_and(FailureKind::counts_against_the_line);
            let network = matches!(
                reason,
                FailureReason::NoConnectivity | FailureReason::Timeout
            );
            assert_eq!(against, network, "{reason}");
        }
        for local in [
            FailureReason::Spawn,
            FailureReason::Parse,
            FailureReason::OutputTooLarge,
        ] {
            assert_eq!(FailureKind::of(local), Some(FailureKind::Local), "{local}");
        }
    }

    #[test]
    fn the_monitors_own_faults_are_reported_apart_from_the_lines() {
        let samples = [
            failure(0, Trigger::Schedule, FailureReason::NoConnectivity),
            failure(1, Trigger::Schedule, FailureReason::Timeout),
            failure(2, Trigger::Schedule, FailureReason::Parse),
            failure(3, Trigger::Schedule, FailureReason::Spawn),
            failure(4, Trigger::Schedule, FailureReason::Spawn),
            failure(5, Trigger::Schedule, FailureReason::OutputTooLarge),
            failure(6, Trigger::Schedule, FailureReason::RateLimited),
            failure(7, Trigger::Schedule, FailureReason::Exit),
            failure(8, Trigger::Schedule, FailureReason::Implausible),
            success(9, Trigger::Schedule, 90.0, 18.0),
        ];
        let summary = summarize(no_plan(), &samples);
        assert_eq!(
            summary.failures_by_kind,
            FailuresByKind {
                network: 2,
                service: 1,
                local: 4,
                other: 2,
            }
        );
        let kinds_total: u64 = FailureKind::ALL
            .iter()
            .map(|&kind| summary.failures_by_kind.get(kind))
            .sum();
        assert_eq!(kinds_total, summary.runs.failure);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            json["failures_by_kind"],
            serde_json::json!({"network": 2, "service": 1, "local": 4, "other": 2})
        );
        assert_eq!(json["failures_by_reason"]["spawn"], 2, "kept as it was");
        let text = summary.to_text();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Failures")).collect();
        assert_eq!(
            lines,
            [
                "Failures counted against the line: 2 (network: timeout 1, no_connectivity 1)",
                "Failures not counted against the line: 7 (service: rate_limited 1; \
                 local: spawn 2, parse 1, output_too_large 1; other: exit 1, implausible 1)",
            ]
        );
        let only_local = summarize(
            no_plan(),
            &[failure(0, Trigger::Schedule, FailureReason::Spawn)],
        )
        .to_text();
        assert!(
            !only_local.contains("Failures counted against the line"),
            "{only_local}"
        );
        assert!(only_local.contains("Failures not counted against the line: 1 (local: spawn 1)"));
    }
}
