//! Accumulation: a [`Summarizer`] takes samples one at a time (oldest first) and keeps the
//! counts, the figures for the percentiles and the plan compliance; a [`Fingerprint`] tells
//! whether two passes over the store read the same samples.

use serde::Serialize;

use super::compliance::Compliance;
use super::counts::{EngineCounts, FailureCounts, FailuresByKind};
use super::{Runs, Summary, Window};
use crate::plan::PlanHistory;
use crate::sample::{Outcome, Sample};
use crate::time::Timestamp;

/// What a pass read: how many samples, and the sum of their times (ms). Two passes over the
/// same samples agree; a sample added or removed between them changes the count or the sum.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Fingerprint {
    samples: u64,
    millis: u128,
}

impl Fingerprint {
    pub(super) fn add(&mut self, sample: &Sample) {
        self.samples += 1;
        self.millis += u128::from(sample.time.as_millis());
    }
}

/// Accumulates samples one at a time; `finish` turns them into a [`Summary`].
#[derive(Debug, Clone)]
pub(crate) struct Summarizer {
    plans: PlanHistory,
    runs: Runs,
    runs_by_engine: EngineCounts,
    failures_by_reason: FailureCounts,
    pub(super) download: Vec<f64>,
    pub(super) upload: Vec<f64>,
    pub(super) ping: Vec<f64>,
    /// Which figures' values `add` keeps (download, upload, ping); all three unless
    /// [`summarize`] reads them one pass at a time.
    pub(super) keep: [bool; 3],
    compliance: Compliance,
}

impl Summarizer {
    /// A summarizer judging each run against the version of `plans` in force at its time.
    pub(crate) fn new(plans: impl Into<PlanHistory>) -> Self {
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
    pub(crate) fn add(&mut self, sample: &Sample) {
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
    pub(crate) fn finish(self, from: Timestamp, to: Timestamp) -> Summary {
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
pub(super) fn push_figure(values: &mut Vec<f64>, value: Option<f64>) {
    if let Some(value) = value.filter(|v| v.is_finite()) {
        values.push(value);
    }
}

/// How the percentiles were computed; in the JSON so that readers need not guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum PercentileMethod {
    /// The value at 1-based rank ceil(p/100 × n) of the sorted values: always a measured value.
    #[serde(rename = "nearest-rank")]
    NearestRank,
}

/// The spread of one figure over the window's successful runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) min: f64,
    pub(crate) p5: f64,
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) max: f64,
}

impl Percentiles {
    /// Exact nearest-rank percentiles; `None` for no values.
    pub(crate) fn of(mut values: Vec<f64>) -> Option<Self> {
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
pub(super) fn nearest_rank(sorted: &[f64], percentile: usize) -> Option<f64> {
    let rank = percentile.saturating_mul(sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}
