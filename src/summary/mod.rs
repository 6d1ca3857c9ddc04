//! A summary of the runs in a time window: counts, percentiles and plan compliance, for the
//! JSON API and for a printable report a customer can attach to a complaint.
//!
//! Pure computation: the caller streams samples in (oldest first) straight from the store, so a
//! month of history never has to be held as `Sample`s at once; only the figures are kept,
//! because exact percentiles need every value.

//!
//! By job: [`accumulate`] takes the samples in, [`counts`] counts runs and failures,
//! [`compliance`] judges the runs against the plan, [`text`] says the summary for a person.

mod accumulate;
mod compliance;
mod counts;
#[cfg(test)]
mod tests;
mod text;

use serde::Serialize;

use accumulate::{Fingerprint, push_figure};
pub(crate) use accumulate::{PercentileMethod, Percentiles, Summarizer};
pub(crate) use compliance::PlanSummary;
#[cfg(test)]
use compliance::{LongestBelow, Retests};
pub use counts::FailureKind;
pub(crate) use counts::{EngineCounts, FailureCounts, FailuresByKind};
pub(crate) use text::longest_line;

use crate::plan::PlanHistory;
use crate::sample::Sample;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

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
pub(crate) fn summarize(
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
pub(crate) const ONE_PASS_VALUES: usize = 100_000;

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

/// Everything known about the runs in a window. Field names are the public JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Summary {
    pub(crate) window: Window,
    pub(crate) runs: Runs,
    /// The runs that were made (successes and failures, not skipped runs) by the engine that
    /// made them.
    pub(crate) runs_by_engine: EngineCounts,
    pub(crate) failures_by_reason: FailureCounts,
    /// The same failures grouped by whose problem they point at; only `network` counts
    /// against the line.
    pub(crate) failures_by_kind: FailuresByKind,
    pub(crate) percentile_method: PercentileMethod,
    /// `None` when no successful sample in the window has the figure.
    pub(crate) download_bytes_per_second: Option<Percentiles>,
    pub(crate) upload_bytes_per_second: Option<Percentiles>,
    pub(crate) ping_seconds: Option<Percentiles>,
    /// `None` when no plan is set.
    pub(crate) plan: Option<PlanSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Window {
    pub(crate) from: Timestamp,
    pub(crate) to: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub(crate) struct Runs {
    pub(crate) total: u64,
    pub(crate) success: u64,
    pub(crate) failure: u64,
    pub(crate) skipped: u64,
}
