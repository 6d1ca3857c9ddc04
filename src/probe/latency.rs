//! Stored probe rows (minutes and 10-minute buckets) combined into fixed steps for
//! `/api/v1/latency`, in one pass in time order, holding only the step being filled.
//!
//! Rules:
//! - Steps are whole minutes, aligned to the Unix epoch (step `s` covers `[k·s, (k+1)·s)`), so
//!   the same step gives the same buckets in every request. A row belongs to the step its
//!   start falls in (a 10-minute row with a step that is not a multiple of 10 minutes sits
//!   wholly in the step where it starts).
//! - Per target and step: `sent` and `lost` are summed; the RTT minimum is the minimum of the
//!   rows' minimums, the maximum the maximum of their maximums, and the median the median of
//!   the rows' medians (the lower middle of an even count, as for a minute). The median of
//!   medians is an approximation of the median of every probe: exact for a step of one
//!   minute row, close when the rows hold similar counts.
//! - `loss_ratio` is `lost / sent` (`null` with nothing sent); the RTTs are `null` when
//!   every probe of the step was lost; `under_load` is true when a speed test ran in any
//!   minute of the step.
//! - Only steps with data are listed (`time`); every target's arrays align with `time`, a
//!   target without data in a step having `sent` 0 there. Targets are listed gateway first,
//!   then by stored id; one address probed by two methods is two targets.

use std::time::Duration;

use serde::Serialize;

use super::{StoredTarget, TargetKind};
use crate::store::probes::ProbeRow;
use crate::time::Timestamp;

/// The smallest step, and the unit every step is a multiple of.
pub(crate) const STEP_UNIT: Duration = Duration::from_secs(60);
/// The most steps a window may be cut into.
pub(crate) const MAX_STEPS: u64 = 10_000;
/// The most steps the default step gives.
pub(crate) const DEFAULT_STEPS: u64 = 720;

/// The steps of `step` that `[from, to)` touches (aligned to the epoch); `step` is non-zero.
pub(crate) fn step_count(from: Timestamp, to: Timestamp, step: Duration) -> u64 {
    let step = step_ms(step);
    let first = from.as_millis() / step;
    let last = to.as_millis().saturating_sub(1).max(from.as_millis()) / step;
    last - first + 1
}

/// The smallest multiple of [`STEP_UNIT`] with `⌈(to − from) / step⌉ ≤` [`DEFAULT_STEPS`]
/// (a window not aligned to the step touches one step more at its edge).
pub(crate) fn default_step(from: Timestamp, to: Timestamp) -> Duration {
    let span = to.duration_since(from).as_millis();
    let unit = STEP_UNIT.as_millis();
    let minutes = span.div_ceil(unit * u128::from(DEFAULT_STEPS)).max(1);
    Duration::from_secs(u64::try_from(minutes * 60).unwrap_or(u64::MAX))
}

fn step_ms(step: Duration) -> u64 {
    u64::try_from(step.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// One target's figures, one entry per listed step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct TargetSeries {
    /// The IP address.
    pub(crate) address: String,
    /// `gateway` or `public`.
    pub(crate) kind: &'static str,
    /// The probe method, with the port for TCP (`tcp-connect:443`).
    pub(crate) method: String,
    /// Probes sent.
    pub(crate) sent: Vec<u32>,
    /// Probes lost.
    pub(crate) lost: Vec<u32>,
    /// `lost / sent`; `null` when nothing was sent.
    pub(crate) loss_ratio: Vec<Option<f64>>,
    /// Smallest RTT, ms.
    pub(crate) rtt_min_ms: Vec<Option<f64>>,
    /// Median of the rows' median RTTs, ms.
    pub(crate) rtt_median_ms: Vec<Option<f64>>,
    /// Largest RTT, ms.
    pub(crate) rtt_max_ms: Vec<Option<f64>>,
    /// Whether a speed test ran in any minute of the step.
    pub(crate) under_load: Vec<bool>,
}

/// `/api/v1/latency`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Series {
    /// The window's start (inclusive).
    pub(crate) from: Timestamp,
    /// The window's end (exclusive).
    pub(crate) to: Timestamp,
    /// The step, seconds.
    pub(crate) step_seconds: u64,
    /// The start of each listed step, Unix seconds.
    pub(crate) time: Vec<u64>,
    /// The targets with data in the window.
    pub(crate) targets: Vec<TargetSeries>,
}

/// One target's rows inside the step being filled.
#[derive(Clone, Debug, Default)]
struct Acc {
    /// Whether any row of the step had this target.
    seen: bool,
    sent: u64,
    lost: u64,
    min: Option<u64>,
    max: Option<u64>,
    medians: Vec<u64>,
    under_load: bool,
}

impl Acc {
    /// Empties it for the next step, keeping the medians' room.
    fn reset(&mut self) {
        let mut medians = std::mem::take(&mut self.medians);
        medians.clear();
        *self = Acc {
            medians,
            ..Acc::default()
        };
    }
}

/// Builds a [`Series`] from rows fed in time order. One pass, per target a slot found by
/// binary search over the sorted ids (no hashing per row: a year is ~370,000 figures).
pub(crate) struct Bucketer {
    from: Timestamp,
    to: Timestamp,
    step: u64,
    /// The known targets, by ascending id; slot `i` is `targets[i]`.
    targets: Vec<StoredTarget>,
    /// The start (ms) of the step being filled, `None` before the first row.
    current: Option<u64>,
    /// Each slot's rows inside the step being filled.
    accs: Vec<Acc>,
    time: Vec<u64>,
    /// Each slot's series, once it had a row.
    series: Vec<Option<TargetSeries>>,
}

impl Bucketer {
    /// A bucketer for `[from, to)` in steps of `step` (non-zero), naming `targets`; rows of
    /// targets not among them are left out.
    pub(crate) fn new(
        from: Timestamp,
        to: Timestamp,
        step: Duration,
        targets: &[StoredTarget],
    ) -> Self {
        let mut targets = targets.to_vec();
        targets.sort_unstable_by_key(|target| target.id);
        targets.dedup_by_key(|target| target.id);
        Bucketer {
            from,
            to,
            step: step_ms(step),
            accs: vec![Acc::default(); targets.len()],
            series: vec![None; targets.len()],
            targets,
            current: None,
            time: Vec::new(),
        }
    }

    /// Adds one row; rows come in time order (a row before the step being filled is counted
    /// in it, as a minute counts a clock step back).
    pub(crate) fn add(&mut self, row: &ProbeRow) {
        let start = row.start.as_millis() / self.step * self.step;
        match self.current {
            Some(current) if start > current => {
                self.flush();
                self.current = Some(start);
            }
            Some(_) => {}
            None => self.current = Some(start),
        }
        for stats in &row.stats {
            let Ok(slot) = self
                .targets
                .binary_search_by_key(&stats.target, |target| target.id)
            else {
                continue;
            };
            let Some(acc) = self.accs.get_mut(slot) else {
                continue;
            };
            acc.seen = true;
            acc.sent += u64::from(stats.sent);
            acc.lost += u64::from(stats.lost.min(stats.sent));
            acc.min = min_some(acc.min, stats.rtt_min_us);
            acc.max = acc.max.max(stats.rtt_max_us);
            acc.medians.extend(stats.rtt_median_us);
            acc.under_load |= stats.under_load_minutes > 0;
        }
    }

    /// Closes the step being filled: listed when any target had a row in it.
    fn flush(&mut self) {
        let Some(start) = self.current.take() else {
            return;
        };
        if !self.accs.iter().any(|acc| acc.seen) {
            return;
        }
        let listed = self.time.len();
        self.time.push(start / 1000);
        for ((acc, series), target) in self
            .accs
            .iter_mut()
            .zip(&mut self.series)
            .zip(&self.targets)
        {
            if series.is_none() && acc.seen {
                let mut new = TargetSeries {
                    address: target.target.address.to_string(),
                    kind: target.target.kind.name(),
                    method: target.target.method.to_string(),
                    sent: Vec::new(),
                    lost: Vec::new(),
                    loss_ratio: Vec::new(),
                    rtt_min_ms: Vec::new(),
                    rtt_median_ms: Vec::new(),
                    rtt_max_ms: Vec::new(),
                    under_load: Vec::new(),
                };
                for _ in 0..listed {
                    push(&mut new, &mut Acc::default());
                }
                *series = Some(new);
            }
            if let Some(series) = series {
                push(series, acc);
            }
            acc.reset();
        }
    }

    /// The series.
    pub(crate) fn finish(mut self) -> Series {
        self.flush();
        let mut listed: Vec<(StoredTarget, TargetSeries)> = self
            .targets
            .into_iter()
            .zip(self.series)
            .filter_map(|(target, series)| series.map(|series| (target, series)))
            .collect();
        listed.sort_by_key(|(target, _)| (target.target.kind != TargetKind::Gateway, target.id));
        Series {
            from: self.from,
            to: self.to,
            step_seconds: self.step / 1000,
            time: self.time,
            targets: listed.into_iter().map(|(_, series)| series).collect(),
        }
    }
}

fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|us| us as f64 / 1000.0)
}

/// Appends one step's figures (sorting `acc`'s medians).
fn push(series: &mut TargetSeries, acc: &mut Acc) {
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    series.sent.push(clamp(acc.sent));
    series.lost.push(clamp(acc.lost));
    series
        .loss_ratio
        .push((acc.sent > 0).then(|| acc.lost as f64 / acc.sent as f64));
    series.rtt_min_ms.push(ms(acc.min));
    series.rtt_max_ms.push(ms(acc.max));
    acc.medians.sort_unstable();
    let median = acc
        .medians
        .len()
        .checked_sub(1)
        .and_then(|last| acc.medians.get(last / 2).copied());
    series.rtt_median_ms.push(ms(median));
    series.under_load.push(acc.under_load);
}

#[cfg(test)]
mod tests;
