//! The stored history as compact columns in memory, and the dashboard's answers computed from
//! them: the bucketed series (`/api/v1/series`) and the weekday × hour heatmap
//! (`/api/v1/heatmap`). Pure computation: the HTTP layer builds [`Columns`] on a store reader
//! and asks these functions.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use jiff::tz::TimeZone;
use serde::Serialize;

use crate::plan::{Plan, PlanHistory};
use crate::sample::{FailureReason, Outcome, Sample};
use crate::store::{Order, Store, StoreError};
use crate::time::Timestamp;

/// The longest failure message sent (bytes as written in JSON, quotes and escapes included,
/// an ellipsis marking a cut).
pub(crate) const MESSAGE_BYTES: usize = 160;

/// Failures in a range up to which `/api/v1/series` lists each one; beyond it, one grouped
/// entry per bucket. A marker is at most ~280 bytes of JSON (a [`MESSAGE_BYTES`] message), so
/// 500 of them are at most ~140 KB, and the five-year series at the default points leaves the
/// answer below 200 KB (tested: `worst_case_series_fits_the_budget`).
pub(crate) const MAX_FAILURE_MARKERS: usize = 500;

/// `points` (the most buckets) when a request names none.
pub const DEFAULT_POINTS: usize = 600;
/// The fewest buckets a request may ask for.
pub(crate) const MIN_POINTS: usize = 10;
/// The most buckets a request may ask for: the default, so that no request can make an answer
/// larger than the budget the default is tested against (`worst_case_series_fits_the_budget`).
pub(crate) const MAX_POINTS: usize = DEFAULT_POINTS;

/// The most plan versions `/api/v1/series` lists (the newest in the range; `plans_omitted`
/// counts the others): 100 of at most ~170 bytes each keep the answer within its budget
/// however many versions a store holds (tested: `worst_case_series_fits_the_budget`).
pub(crate) const MAX_PLAN_STEPS: usize = 100;

/// Listed buckets further apart than this many times max(step, the median spacing of the
/// range's successful runs) get a gap entry between them.
pub(crate) const GAP_FACTOR: u64 = 3;

/// Bucket widths in seconds, smallest first; after the last, 30 days doubled until it fits.
const LADDER: [u64; 16] = [
    60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800,
    1_209_600, 2_592_000,
];

/// Every run in the store, as columns: successes with their six figures, failures with reason
/// and clipped message, skipped runs by time only. Each list is oldest first (the store's
/// order). About 40 bytes per successful run (see [`Columns::memory_bytes`]).
#[derive(Clone, Debug, Default)]
pub struct Columns {
    /// Successful runs' times, ms since the epoch.
    time: Vec<u64>,
    /// Bytes per second; NaN where the run has none.
    download: Vec<f64>,
    upload: Vec<f64>,
    /// Seconds; NaN where the run has none.
    ping: Vec<f32>,
    jitter: Vec<f32>,
    download_latency: Vec<f32>,
    upload_latency: Vec<f32>,
    failures: Vec<FailedRun>,
    /// Skipped runs' times, ms.
    skipped: Vec<u64>,
}

/// One failed run as the series needs it.
#[derive(Clone, Debug)]
struct FailedRun {
    /// ms since the epoch.
    time: u64,
    reason: Option<FailureReason>,
    /// Clipped to [`MESSAGE_BYTES`] ([`clip_message`]).
    message: Option<Box<str>>,
}

impl Columns {
    /// The columns of every stored run (one full scan of the store).
    pub fn build(store: &Store) -> Result<Self, StoreError> {
        let mut columns = Columns::default();
        store.for_each(Timestamp::EPOCH, Timestamp::MAX, |sample| {
            columns.push(&sample);
            Ok::<_, StoreError>(())
        })?;
        columns.shrink();
        Ok(columns)
    }

    /// The columns of the store now, from `previous` (made from the same store earlier): the
    /// runs stored after its newest are read and appended, those retention deleted before the
    /// store's oldest dropped, and only when the result does not match the store in count and
    /// oldest run (a run stored before the newest, as a clock set back does) is the whole store
    /// read again. A new run costs a read of that run, not of five years.
    pub fn refresh(previous: &Columns, store: &Store) -> Result<Self, StoreError> {
        let (Some(oldest), Some(newest)) = (previous.oldest(), previous.newest()) else {
            return Columns::build(store);
        };
        let mut stored_oldest = None;
        store.scan(
            Timestamp::EPOCH,
            Timestamp::MAX,
            Order::OldestFirst,
            |sample| {
                stored_oldest = Some(sample.time.as_millis());
                Ok::<_, StoreError>(ControlFlow::Break(()))
            },
        )?;
        let mut added = Vec::new();
        let after = Timestamp::from_millis(newest.saturating_add(1));
        store.for_each(after, Timestamp::MAX, |sample| {
            added.push(sample);
            Ok::<_, StoreError>(())
        })?;
        let keep_from = stored_oldest.unwrap_or(u64::MAX).max(oldest);
        let next = previous.extended(keep_from, &added);
        if next.len() as u64 == store.len()? && next.oldest() == stored_oldest {
            Ok(next)
        } else {
            Columns::build(store)
        }
    }

    /// These columns without the runs before `keep_from` (ms), and with `added` (newer than
    /// every run held, oldest first) after them; every column allocated to its exact length.
    fn extended(&self, keep_from: u64, added: &[Sample]) -> Columns {
        let first = self.time.partition_point(|&time| time < keep_from);
        let successes = added
            .iter()
            .filter(|s| s.outcome == Outcome::Success)
            .count();
        let take = |column_len: usize| column_len - first + successes;
        fn copy<T: Copy>(column: &[T], first: usize, capacity: usize) -> Vec<T> {
            let mut out = Vec::with_capacity(capacity);
            out.extend_from_slice(&column[first..]);
            out
        }
        let failures_first = self.failures.partition_point(|f| f.time < keep_from);
        let skipped_first = self.skipped.partition_point(|&time| time < keep_from);
        let added_failures = added
            .iter()
            .filter(|s| s.outcome == Outcome::Failure)
            .count();
        let added_skipped = added.len() - successes - added_failures;
        let mut failures =
            Vec::with_capacity(self.failures.len() - failures_first + added_failures);
        failures.extend_from_slice(&self.failures[failures_first..]);
        let mut next = Columns {
            time: copy(&self.time, first, take(self.time.len())),
            download: copy(&self.download, first, take(self.time.len())),
            upload: copy(&self.upload, first, take(self.time.len())),
            ping: copy(&self.ping, first, take(self.time.len())),
            jitter: copy(&self.jitter, first, take(self.time.len())),
            download_latency: copy(&self.download_latency, first, take(self.time.len())),
            upload_latency: copy(&self.upload_latency, first, take(self.time.len())),
            failures,
            skipped: copy(
                &self.skipped,
                skipped_first,
                self.skipped.len() - skipped_first + added_skipped,
            ),
        };
        for sample in added {
            next.push(sample);
        }
        next
    }

    /// The oldest run held (ms), any outcome.
    fn oldest(&self) -> Option<u64> {
        [
            self.time.first(),
            self.failures.first().map(|f| &f.time),
            self.skipped.first(),
        ]
        .into_iter()
        .flatten()
        .copied()
        .min()
    }

    /// The newest run held (ms), any outcome.
    fn newest(&self) -> Option<u64> {
        [
            self.time.last(),
            self.failures.last().map(|f| &f.time),
            self.skipped.last(),
        ]
        .into_iter()
        .flatten()
        .copied()
        .max()
    }

    /// The columns of `samples`, which come oldest first.
    pub fn from_samples<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Self {
        let mut columns = Columns::default();
        for sample in samples {
            columns.push(sample);
        }
        columns.shrink();
        columns
    }

    /// Adds a run newer than every one held.
    pub(crate) fn push(&mut self, sample: &Sample) {
        let time = sample.time.as_millis();
        match sample.outcome {
            Outcome::Success => {
                let wide = |value: Option<f64>| value.unwrap_or(f64::NAN);
                let narrow = |value: Option<f64>| value.map_or(f32::NAN, |value| value as f32);
                self.time.push(time);
                self.download.push(wide(sample.download_bytes_per_second));
                self.upload.push(wide(sample.upload_bytes_per_second));
                self.ping.push(narrow(sample.ping_seconds));
                self.jitter.push(narrow(sample.jitter_seconds));
                self.download_latency
                    .push(narrow(sample.download_latency_seconds));
                self.upload_latency
                    .push(narrow(sample.upload_latency_seconds));
            }
            Outcome::Failure => self.failures.push(FailedRun {
                time,
                reason: sample.reason,
                message: sample.message.as_deref().map(|m| clip_message(m).into()),
            }),
            Outcome::Skipped => self.skipped.push(time),
        }
    }

    fn shrink(&mut self) {
        self.time.shrink_to_fit();
        self.download.shrink_to_fit();
        self.upload.shrink_to_fit();
        self.ping.shrink_to_fit();
        self.jitter.shrink_to_fit();
        self.download_latency.shrink_to_fit();
        self.upload_latency.shrink_to_fit();
        self.failures.shrink_to_fit();
        self.skipped.shrink_to_fit();
    }

    /// Runs held, every outcome.
    pub fn len(&self) -> usize {
        self.time.len() + self.failures.len() + self.skipped.len()
    }

    /// Whether no run is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The heap memory the columns hold, in bytes (messages included).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.time.capacity() * size_of::<u64>()
            + (self.download.capacity() + self.upload.capacity()) * size_of::<f64>()
            + (self.ping.capacity()
                + self.jitter.capacity()
                + self.download_latency.capacity()
                + self.upload_latency.capacity())
                * size_of::<f32>()
            + self.failures.capacity() * size_of::<FailedRun>()
            + self
                .failures
                .iter()
                .map(|failure| failure.message.as_ref().map_or(0, |m| m.len()))
                .sum::<usize>()
            + self.skipped.capacity() * size_of::<u64>()
    }

    /// Indices `lo..hi` of the successes with `from <= time < to` (ms).
    fn successes(&self, from: u64, to: u64) -> std::ops::Range<usize> {
        within(&self.time, from, to, |&time| time)
    }
}

/// The indices of the items of `sorted` (by `key`, ascending) with `from <= key < to`.
fn within<T>(sorted: &[T], from: u64, to: u64, key: impl Fn(&T) -> u64) -> std::ops::Range<usize> {
    let lo = sorted.partition_point(|item| key(item) < from);
    let hi = sorted.partition_point(|item| key(item) < to).max(lo);
    lo..hi
}

/// `message` made safe and short for a marker: control characters become spaces, and it is cut
/// (with `…`) so that written as a JSON string, escapes included, it takes at most
/// [`MESSAGE_BYTES`] bytes between its quotes.
pub(crate) fn clip_message(message: &str) -> String {
    let json_len = |c: char| match c {
        '"' | '\\' => 2,
        c => c.len_utf8(),
    };
    let cleaned = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c });
    let total: usize = cleaned.clone().map(json_len).sum();
    if total <= MESSAGE_BYTES {
        return cleaned.collect();
    }
    let room = MESSAGE_BYTES - '…'.len_utf8();
    let mut out = String::new();
    let mut used = 0;
    for c in cleaned {
        used += json_len(c);
        if used > room {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// The contracted speeds as the dashboard shows them; `None` (JSON `null`) when no plan is set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct PlanJson {
    pub(crate) download_bytes_per_second: Option<f64>,
    pub(crate) upload_bytes_per_second: Option<f64>,
    /// The share of the plan a run must reach (0–1).
    pub(crate) threshold: f64,
}

impl PlanJson {
    /// `plan` when one is set.
    pub(crate) fn of(plan: &Plan) -> Option<Self> {
        plan.is_set().then(|| PlanJson {
            download_bytes_per_second: plan.download.map(|bw| bw.bytes_per_second()),
            upload_bytes_per_second: plan.upload.map(|bw| bw.bytes_per_second()),
            threshold: plan.threshold,
        })
    }
}

/// One stretch of a range with one plan version in force, as `/api/v1/series` lists them:
/// the judged speeds (advertised, else maximum; `null` for a direction without one) and the
/// threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct PlanStep {
    /// When the version took effect, or the range's start when that was earlier.
    pub(crate) from: Timestamp,
    /// When the next version took effect, inside the range; `null` while this one is still in
    /// force at the range's end.
    pub(crate) to: Option<Timestamp>,
    pub(crate) download_bytes_per_second: Option<f64>,
    pub(crate) upload_bytes_per_second: Option<f64>,
    /// The share of the judged speed a run must reach (0–1).
    pub(crate) threshold: f64,
}

/// The plan versions in force during `from..to`, oldest first, clipped to the range;
/// consecutive versions that judge the same speeds at the same threshold are one step. No step
/// covers a time before the first version. At most as many steps as stored versions (1000).
pub(crate) fn plan_steps(plans: &PlanHistory, from: Timestamp, to: Timestamp) -> Vec<PlanStep> {
    let versions = plans.versions();
    let first = versions
        .partition_point(|v| v.from <= from)
        .saturating_sub(1);
    let until = versions.partition_point(|v| v.from < to);
    let mut steps: Vec<PlanStep> = Vec::new();
    for (i, version) in versions.iter().enumerate().take(until).skip(first) {
        let plan = version.plan();
        let step = PlanStep {
            from: version.from.max(from),
            to: versions
                .get(i + 1)
                .map(|next| next.from)
                .filter(|&next| next < to),
            download_bytes_per_second: plan.download.map(|bw| bw.bytes_per_second()),
            upload_bytes_per_second: plan.upload.map(|bw| bw.bytes_per_second()),
            threshold: plan.threshold,
        };
        match steps.last_mut() {
            Some(last)
                if (
                    last.download_bytes_per_second,
                    last.upload_bytes_per_second,
                    last.threshold,
                ) == (
                    step.download_bytes_per_second,
                    step.upload_bytes_per_second,
                    step.threshold,
                ) =>
            {
                last.to = step.to;
            }
            _ => steps.push(step),
        }
    }
    steps
}

/// How many runs of each outcome a range holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct RunCounts {
    pub(crate) total: u64,
    pub(crate) success: u64,
    pub(crate) failure: u64,
    pub(crate) skipped: u64,
}

/// Minimum, median and maximum of one figure per listed entry (`null` where none).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Band<T> {
    pub(crate) min: Vec<Option<T>>,
    pub(crate) median: Vec<Option<T>>,
    pub(crate) max: Vec<Option<T>>,
}

impl<T> Band<T> {
    fn push(&mut self, value: Option<(T, T, T)>) {
        let (min, median, max) = match value {
            Some((min, median, max)) => (Some(min), Some(median), Some(max)),
            None => (None, None, None),
        };
        self.min.push(min);
        self.median.push(median);
        self.max.push(max);
    }
}

/// A failure marker: one failed run (`count` 1), or every failure of a bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureMarker {
    /// Unix seconds: the run's time, or the bucket's first failure.
    pub(crate) time: u64,
    pub(crate) count: u32,
    /// The (most common) reason.
    pub(crate) reason: Option<&'static str>,
    /// The (newest) message, clipped to [`MESSAGE_BYTES`].
    pub(crate) message: Option<Box<str>>,
    /// Failures by reason.
    pub(crate) reasons: BTreeMap<&'static str, u32>,
}

/// The answer of `/api/v1/series`; every array has the length of `time`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    pub(crate) from: Timestamp,
    pub(crate) to: Timestamp,
    pub(crate) step_seconds: u64,
    pub(crate) runs: RunCounts,
    /// Unix seconds: bucket starts, and for gap entries the gap's middle.
    pub time: Vec<u64>,
    /// Successful runs in each bucket (0 for a gap entry).
    pub(crate) count: Vec<u32>,
    /// Whole bytes per second.
    pub(crate) download_bytes_per_second: Band<u64>,
    pub(crate) upload_bytes_per_second: Band<u64>,
    /// Seconds, rounded to the microsecond.
    pub(crate) ping_seconds: Band<f64>,
    pub(crate) jitter_seconds: Band<f64>,
    pub(crate) download_latency_seconds: Band<f64>,
    pub(crate) upload_latency_seconds: Band<f64>,
    pub failures: Vec<FailureMarker>,
    pub(crate) failures_grouped: bool,
    /// The judged plan of the version in force at the range's end (its last millisecond).
    pub(crate) plan: Option<PlanJson>,
    /// The versions in force during the range ([`plan_steps`]), the newest
    /// [`MAX_PLAN_STEPS`].
    pub(crate) plans: Vec<PlanStep>,
    /// Older versions in force during the range left out of `plans` (0 but for a range
    /// holding more than [`MAX_PLAN_STEPS`]).
    pub(crate) plans_omitted: usize,
}

/// The smallest ladder step (seconds) with `range / step <= points`; `points` at least 1.
pub(crate) fn step_seconds(range_ms: u64, points: usize) -> u64 {
    let points = points.max(1) as u64;
    let fits = |step: u64| range_ms.div_ceil(step.saturating_mul(1000)) <= points;
    if let Some(&step) = LADDER.iter().find(|&&step| fits(step)) {
        return step;
    }
    let mut step = LADDER[LADDER.len() - 1];
    while !fits(step) {
        step = step.saturating_mul(2);
    }
    step
}

/// Min, median (the mean of the middle two of an even count) and max of `values`, reordering
/// them; `None` when empty.
fn stats<T: Copy + PartialOrd + Into<f64>>(values: &mut [T]) -> Option<(f64, f64, f64)> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let order = |a: &T, b: &T| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal);
    let (lower, &mut middle, upper) = values.select_nth_unstable_by(n / 2, order);
    let min = lower
        .iter()
        .copied()
        .fold(middle, |m, v| if v < m { v } else { m });
    let max = upper
        .iter()
        .copied()
        .fold(middle, |m, v| if v > m { v } else { m });
    let median = if n % 2 == 1 {
        middle.into()
    } else {
        let below = lower
            .iter()
            .copied()
            .fold(lower[0], |m, v| if v > m { v } else { m });
        (below.into() + middle.into()) / 2.0
    };
    Some((min.into(), median, max.into()))
}

fn round_speed(value: f64) -> u64 {
    value.round().max(0.0) as u64
}

fn round_micro(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// The last millisecond of `from..to` (exclusive `to`), never before `from`.
fn at_end(from: Timestamp, to: Timestamp) -> Timestamp {
    Timestamp::from_millis(to.as_millis().saturating_sub(1)).max(from)
}

/// The series of `from <= time < to` in at most about `points` buckets (see the module docs of
/// `/api/v1/series` in the README for the rules).
pub fn series(
    columns: &Columns,
    from: Timestamp,
    to: Timestamp,
    points: usize,
    plans: &PlanHistory,
) -> Series {
    let (from_ms, to_ms) = (from.as_millis(), to.as_millis().max(from.as_millis()));
    let step = step_seconds(to_ms - from_ms, points);
    let step_ms = step.saturating_mul(1000);
    let successes = columns.successes(from_ms, to_ms);
    let failures = within(&columns.failures, from_ms, to_ms, |failure| failure.time);
    let skipped = within(&columns.skipped, from_ms, to_ms, |&time| time);
    let runs = RunCounts {
        total: (successes.len() + failures.len() + skipped.len()) as u64,
        success: successes.len() as u64,
        failure: failures.len() as u64,
        skipped: skipped.len() as u64,
    };
    let times = &columns.time[successes.clone()];
    let gap_ms = GAP_FACTOR.saturating_mul(step_ms.max(median_spacing(times)));

    let mut out = Series {
        from,
        to,
        step_seconds: step,
        runs,
        time: Vec::new(),
        count: Vec::new(),
        download_bytes_per_second: Band::default(),
        upload_bytes_per_second: Band::default(),
        ping_seconds: Band::default(),
        jitter_seconds: Band::default(),
        download_latency_seconds: Band::default(),
        upload_latency_seconds: Band::default(),
        failures: Vec::new(),
        failures_grouped: false,
        plan: PlanJson::of(&plans.plan_at(at_end(from, to))),
        plans: plan_steps(plans, from, to),
        plans_omitted: 0,
    };
    out.plans_omitted = out.plans.len().saturating_sub(MAX_PLAN_STEPS);
    out.plans.drain(..out.plans_omitted);
    let mut wide: Vec<f64> = Vec::new();
    let mut narrow: Vec<f32> = Vec::new();
    let mut previous: Option<u64> = None;
    let mut start = successes.start;
    while start < successes.end {
        let bucket = columns.time[start] / step_ms * step_ms;
        let end =
            start + columns.time[start..successes.end].partition_point(|&t| t < bucket + step_ms);
        if let Some(previous) = previous
            && bucket - previous > gap_ms
        {
            out.time.push((previous + step_ms + bucket) / 2 / 1000);
            out.count.push(0);
            out.download_bytes_per_second.push(None);
            out.upload_bytes_per_second.push(None);
            out.ping_seconds.push(None);
            out.jitter_seconds.push(None);
            out.download_latency_seconds.push(None);
            out.upload_latency_seconds.push(None);
        }
        previous = Some(bucket);
        out.time.push(bucket / 1000);
        out.count.push((end - start) as u32);
        let mut speed = |column: &[f64], band: &mut Band<u64>| {
            wide.clear();
            wide.extend(column[start..end].iter().filter(|v| !v.is_nan()));
            band.push(
                stats(&mut wide)
                    .map(|(lo, mid, hi)| (round_speed(lo), round_speed(mid), round_speed(hi))),
            );
        };
        speed(&columns.download, &mut out.download_bytes_per_second);
        speed(&columns.upload, &mut out.upload_bytes_per_second);
        let mut latency = |column: &[f32], band: &mut Band<f64>| {
            narrow.clear();
            narrow.extend(column[start..end].iter().filter(|v| !v.is_nan()));
            band.push(
                stats(&mut narrow)
                    .map(|(lo, mid, hi)| (round_micro(lo), round_micro(mid), round_micro(hi))),
            );
        };
        latency(&columns.ping, &mut out.ping_seconds);
        latency(&columns.jitter, &mut out.jitter_seconds);
        latency(&columns.download_latency, &mut out.download_latency_seconds);
        latency(&columns.upload_latency, &mut out.upload_latency_seconds);
        start = end;
    }

    let failed = &columns.failures[failures];
    if failed.len() <= MAX_FAILURE_MARKERS {
        out.failures = failed
            .iter()
            .map(|failure| FailureMarker {
                time: failure.time / 1000,
                count: 1,
                reason: failure.reason.map(FailureReason::as_str),
                message: failure.message.clone(),
                reasons: failure
                    .reason
                    .map(|reason| (reason.as_str(), 1))
                    .into_iter()
                    .collect(),
            })
            .collect();
    } else {
        out.failures_grouped = true;
        for group in failed.chunk_by(|a, b| a.time / step_ms == b.time / step_ms) {
            out.failures.push(grouped(group));
        }
    }
    out
}

/// One marker for the failures of a bucket (oldest first, at least one).
fn grouped(group: &[FailedRun]) -> FailureMarker {
    let mut counts = [0u32; FailureReason::ALL.len()];
    let mut reasons = BTreeMap::new();
    for failure in group {
        if let Some(reason) = failure.reason {
            if let Some(slot) = FailureReason::ALL.iter().position(|&r| r == reason) {
                counts[slot] += 1;
            }
            *reasons.entry(reason.as_str()).or_insert(0) += 1;
        }
    }
    // The most common; among equals, the one first in the store's order of reasons.
    let reason = counts
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .max_by(|(i, a), (j, b)| a.cmp(b).then(j.cmp(i)))
        .map(|(slot, _)| FailureReason::ALL[slot].as_str());
    FailureMarker {
        time: group.first().map_or(0, |first| first.time / 1000),
        count: group.len() as u32,
        reason,
        message: group.iter().rev().find_map(|f| f.message.clone()),
        reasons,
    }
}

/// The median of the gaps between consecutive `times` (ms; the mean of the middle two of an
/// even count); 0 for fewer than two.
fn median_spacing(times: &[u64]) -> u64 {
    let mut gaps: Vec<u64> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let count = gaps.len();
    if count == 0 {
        return 0;
    }
    let (lower, &mut middle, _) = gaps.select_nth_unstable(count / 2);
    if count % 2 == 1 {
        return middle;
    }
    let below = lower.iter().copied().max().unwrap_or(middle);
    below / 2 + middle / 2 + (below % 2 + middle % 2) / 2
}

/// Which figure a heatmap shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Download,
    Upload,
    Ping,
}

impl Metric {
    /// `download`, `upload` or `ping`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "download" => Some(Metric::Download),
            "upload" => Some(Metric::Upload),
            "ping" => Some(Metric::Ping),
            _ => None,
        }
    }

    /// The name `parse` takes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Metric::Download => "download",
            Metric::Upload => "upload",
            Metric::Ping => "ping",
        }
    }
}

/// ISO 8601 weekdays, Monday first: the heatmap's rows.
pub(crate) const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The answer of `/api/v1/heatmap`: 7 rows (Monday first) of 24 hours (local time).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Heatmap {
    pub(crate) from: Timestamp,
    pub(crate) to: Timestamp,
    pub(crate) time_zone: String,
    pub(crate) metric: &'static str,
    /// `bytes_per_second` or `seconds`.
    pub(crate) unit: &'static str,
    pub(crate) weekdays: [&'static str; 7],
    /// Median per cell: whole bytes per second, or seconds to the microsecond.
    pub(crate) median: Vec<Vec<Option<f64>>>,
    /// Successful runs with the figure in each cell.
    pub(crate) runs: Vec<Vec<u32>>,
    /// Per cell, the median of each run's figure ÷ the judged speed for that direction of the
    /// plan version in force at the run's time (3 decimals; runs with none left out, `null` for
    /// a cell without such runs); `null` when no version in the range judges that direction, and
    /// for ping.
    pub(crate) share_of_plan: Option<Vec<Vec<Option<f64>>>>,
    /// The judged plan of the version in force at the range's end.
    pub(crate) plan: Option<PlanJson>,
}

/// The weekday × local hour medians of `metric` over `from <= time < to` in `zone` (named
/// `zone_name`); daylight saving time as the zone has it.
pub fn heatmap(
    columns: &Columns,
    from: Timestamp,
    to: Timestamp,
    zone: &TimeZone,
    zone_name: &str,
    metric: Metric,
    plans: &PlanHistory,
) -> Heatmap {
    let range = columns.successes(from.as_millis(), to.as_millis());
    let mut cells: Vec<Vec<f64>> = vec![Vec::new(); 7 * 24];
    // Each run's figure ÷ the judged speed of the version in force at its time.
    let mut shares: Vec<Vec<f64>> = vec![Vec::new(); 7 * 24];
    let judged_at = |millis: u64| -> Option<f64> {
        let plan = plans.plan_at(Timestamp::from_millis(millis));
        match metric {
            Metric::Download => plan.download,
            Metric::Upload => plan.upload,
            Metric::Ping => None,
        }
        .map(|bw| bw.bytes_per_second())
        .filter(|&promised| promised > 0.0)
    };
    let judges = metric != Metric::Ping
        && plan_steps(plans, from, to).iter().any(|step| match metric {
            Metric::Download => step.download_bytes_per_second.is_some(),
            Metric::Upload => step.upload_bytes_per_second.is_some(),
            Metric::Ping => false,
        });
    for index in range {
        let value = match metric {
            Metric::Download => columns.download[index],
            Metric::Upload => columns.upload[index],
            Metric::Ping => f64::from(columns.ping[index]),
        };
        if value.is_nan() {
            continue;
        }
        let Ok(instant) = jiff::Timestamp::from_millisecond(columns.time[index] as i64) else {
            continue;
        };
        let local = zone.to_datetime(instant);
        let day = local.weekday().to_monday_zero_offset() as usize;
        let hour = local.hour() as usize;
        if let Some(cell) = cells.get_mut(day * 24 + hour) {
            cell.push(value);
        }
        if judges
            && let Some(promised) = judged_at(columns.time[index])
            && let Some(cell) = shares.get_mut(day * 24 + hour)
        {
            cell.push(value / promised);
        }
    }
    let mut median = vec![vec![None; 24]; 7];
    let mut runs = vec![vec![0; 24]; 7];
    let mut share = vec![vec![None; 24]; 7];
    for (slot, values) in cells.iter_mut().enumerate() {
        let (day, hour) = (slot / 24, slot % 24);
        runs[day][hour] = values.len() as u32;
        let Some((_, middle, _)) = stats(values) else {
            continue;
        };
        let shown = match metric {
            Metric::Ping => round_micro(middle),
            _ => middle.round(),
        };
        median[day][hour] = Some(shown);
        share[day][hour] = shares
            .get_mut(slot)
            .and_then(|ratios| stats(ratios))
            .map(|(_, middle, _)| (middle * 1000.0).round() / 1000.0);
    }
    Heatmap {
        from,
        to,
        time_zone: zone_name.to_owned(),
        metric: metric.as_str(),
        unit: match metric {
            Metric::Ping => "seconds",
            _ => "bytes_per_second",
        },
        weekdays: WEEKDAYS,
        median,
        runs,
        share_of_plan: judges.then_some(share),
        plan: PlanJson::of(&plans.plan_at(at_end(from, to))),
    }
}

#[cfg(test)]
mod tests;
