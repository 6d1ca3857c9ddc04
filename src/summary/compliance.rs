//! Plan compliance: each judged run met the plan or not, a below-plan run is paired with its
//! retest, and the longest stretch below the plan is tracked.

use serde::Serialize;

use crate::sample::Trigger;
use crate::time::Timestamp;
use crate::units::Bandwidth;

/// How the window's measurements compare with the contracted plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct PlanSummary {
    pub(crate) download_bytes_per_second: Option<f64>,
    pub(crate) upload_bytes_per_second: Option<f64>,
    pub(crate) threshold: f64,
    /// Judged measurements: a successful run, or a below-plan run together with its retest.
    pub(crate) measurements: u64,
    pub(crate) met: u64,
    /// `met / measurements`; `None` when nothing was measured.
    pub(crate) share_met: Option<f64>,
    pub(crate) breaches: u64,
    pub(crate) retests: Retests,
    pub(crate) longest_below: Option<LongestBelow>,
    /// How many plan versions judged the window's runs (each run is judged against the version
    /// in force at its time); the speeds and threshold above are those of the newest version
    /// that judged a run (with none judged, of the newest in force in the window).
    pub(crate) plan_versions: u64,
}

/// What the retests of below-plan runs showed.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub(crate) struct Retests {
    /// The retest was below the plan too: the breach stands.
    pub(crate) confirmed: u64,
    /// The retest met the plan: the first run was a blip, not a breach.
    pub(crate) refuted: u64,
}

/// The longest run of consecutive breached measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct LongestBelow {
    /// The time of the first breached measurement.
    pub(crate) from: Timestamp,
    /// The time of the next measurement that met the plan or, when `ongoing`, the end of the
    /// window (at most now): how long it has lasted so far.
    pub(crate) to: Timestamp,
    /// `to - from`, seconds.
    pub(crate) seconds: f64,
    pub(crate) measurements: u64,
    /// The window's data ended while still below the plan: no measurement has met it since.
    pub(crate) ongoing: bool,
    /// The time of the last breached measurement of the stretch.
    pub(crate) last_below: Timestamp,
}

/// The plan-compliance state machine: pairs each below-plan run with the retest that follows it.
#[derive(Debug, Clone, Default)]
pub(super) struct Compliance {
    measurements: u64,
    met: u64,
    retests: Retests,
    /// A below-plan run waiting to see whether a retest confirms it; its time dates the pair.
    pending: Option<Timestamp>,
    /// The breached measurements since the last one that met the plan.
    run: Option<BelowRun>,
    longest: Option<LongestBelow>,
    /// The plan versions that judged a run so far, and the `from` of the last one.
    pub(super) versions: u64,
    pub(super) last_version: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy)]
struct BelowRun {
    from: Timestamp,
    last: Timestamp,
    measurements: u64,
}

impl Compliance {
    pub(super) fn judge(&mut self, time: Timestamp, trigger: Trigger, met: bool) {
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
    pub(super) fn finish(mut self, plan: &crate::plan::Plan, end: Timestamp) -> PlanSummary {
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
