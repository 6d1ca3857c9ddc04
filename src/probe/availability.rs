//! Availability of a time window: how long the monitor was running in it, how much of that
//! time an `isp` outage took, and the outages and unmonitored gaps to list, from the stored
//! runs and outages plus the live state of the running monitor. Pure: the caller reads the
//! store ([`super::report`]).
//!
//! Definitions (the outage kinds and the unmonitored time are those of [`super::outage`]):
//! - **Monitored** time is the union of the monitor's runs: a stopped run ends at its stored
//!   end (its stop, or after a crash its last heartbeat); a run whose end was never stored
//!   counts as zero length (nothing says it ran); the run of this process
//!   ([`Live::run_start`]) counts up to `now`. Nothing is monitored after `now`.
//! - **Unmonitored** time is the rest of the window up to `now`: before the first run, between
//!   runs, after the last one. It is never an outage and never counted against anyone.
//! - **Availability** is the share of monitored time without an `isp` outage:
//!   `(monitored − isp down) / monitored`, where isp down counts only monitored time inside
//!   `isp` outages. A `local` outage (the gateway did not answer either: the home network or
//!   the router itself) is monitored time the ISP is not blamed for, so it stays in both
//!   numerator and denominator. `None` when nothing in the window was monitored.
//! - The figures at the top are clipped to the window; the outages overlapping it are listed
//!   whole (their own duration, down and unmonitored time); the unmonitored gaps are clipped.

use std::time::Duration;

use serde::Serialize;

use super::outage::{Outage, OutageKind, Run, unmonitored_gaps};
use crate::time::Timestamp;

/// The most outages, and separately the most unmonitored gaps, one answer lists (oldest
/// first); the figures still count all of them, and `truncated` says some were left out.
pub(crate) const MAX_LISTED: usize = 10_000;

/// What the running monitor of this process adds to the store's view: its run counts as
/// monitored up to now, and its ongoing outage is the live one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Live {
    /// When this process's monitor run started.
    pub(crate) run_start: Timestamp,
    /// The ongoing outage as the monitor knows it now (its `unmonitored` and `restarts`
    /// are current), if any.
    pub(crate) ongoing: Option<Outage>,
}

/// One outage as listed: whole, not clipped to the window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct OutageEntry {
    /// The first down round.
    pub(crate) start: Timestamp,
    /// The first up round (exclusive); `null` while ongoing.
    pub(crate) end: Option<Timestamp>,
    /// `isp` or `local`.
    pub(crate) kind: &'static str,
    /// Whether the outage is still open.
    pub(crate) ongoing: bool,
    /// `end − start` (ongoing: up to now), seconds.
    pub(crate) duration_seconds: f64,
    /// The monitored part of the duration: the down time, seconds.
    pub(crate) down_seconds: f64,
    /// The part of the duration when the monitor was not running, seconds.
    pub(crate) unmonitored_seconds: f64,
    /// Restarts of the monitor inside the outage.
    pub(crate) restarts: u32,
}

/// An unmonitored interval, clipped to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Gap {
    /// Inclusive.
    pub(crate) start: Timestamp,
    /// Exclusive.
    pub(crate) end: Timestamp,
}

/// The outages of one kind overlapping the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct KindFigures {
    /// How many overlap the window.
    pub(crate) count: u64,
    /// Their monitored down time inside the window, seconds.
    pub(crate) down_seconds: f64,
}

/// The outages overlapping the window, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct ByKind {
    /// The ISP's side failed.
    pub(crate) isp: KindFigures,
    /// The home network failed.
    pub(crate) local: KindFigures,
}

/// The availability of a window (`/api/v1/outages`, without its `probing` part).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Availability {
    /// The window's start (inclusive).
    pub(crate) from: Timestamp,
    /// The window's end (exclusive).
    pub(crate) to: Timestamp,
    /// Monitored time inside the window, seconds.
    pub(crate) monitored_seconds: f64,
    /// Unmonitored time inside the window up to now, seconds.
    pub(crate) unmonitored_seconds: f64,
    /// The share (0 to 1) of monitored time without an `isp` outage; `null` when nothing was
    /// monitored.
    pub(crate) availability: Option<f64>,
    /// The outages overlapping the window, whole, oldest first (at most [`MAX_LISTED`]).
    pub(crate) outages: Vec<OutageEntry>,
    /// The unmonitored gaps, clipped to the window, oldest first (at most [`MAX_LISTED`]).
    pub(crate) unmonitored: Vec<Gap>,
    /// Whether outages or gaps were left out past [`MAX_LISTED`].
    pub(crate) truncated: bool,
    /// Count and clipped down time by kind (for summaries; not in `/api/v1/outages`).
    #[serde(skip)]
    pub(crate) by_kind: ByKind,
}

/// The monitored intervals: sorted, disjoint, non-empty `[start, end)` in ms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Coverage(Vec<(u64, u64)>);

impl Coverage {
    /// The union of `runs` (any order; see the module doc for their ends) and of the live
    /// run, none past `now`.
    pub(crate) fn of(runs: &[Run], live: Option<&Live>, now: Timestamp) -> Self {
        let now = now.as_millis();
        let mut spans: Vec<(u64, u64)> = runs
            .iter()
            .map(|run| {
                let start = run.start.as_millis();
                let end = match (live, run.end) {
                    (Some(live), _) if live.run_start == run.start => now,
                    (_, Some(end)) => end.as_millis(),
                    (_, None) => start,
                };
                (start, end.min(now))
            })
            .collect();
        if let Some(live) = live {
            spans.push((live.run_start.as_millis(), now));
        }
        spans.retain(|(start, end)| start < end);
        spans.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Coverage(merged)
    }

    /// Monitored ms inside `[from, to)`.
    pub(crate) fn measure(&self, from: u64, to: u64) -> u64 {
        self.0
            .iter()
            .map(|&(start, end)| end.min(to).saturating_sub(start.max(from)))
            .sum()
    }

    /// The unmonitored intervals inside `[from, to)`: the gaps between runs
    /// ([`unmonitored_gaps`]), and the time before the first and after the last.
    pub(crate) fn gaps(&self, from: u64, to: u64) -> Vec<Gap> {
        let at = Timestamp::from_millis;
        let runs: Vec<Run> = self
            .0
            .iter()
            .map(|&(start, end)| Run {
                start: at(start),
                end: Some(at(end)),
            })
            .collect();
        let mut edges = Vec::with_capacity(runs.len() + 1);
        match (self.0.first(), self.0.last()) {
            (Some(&(first, _)), Some(&(_, last))) => {
                edges.push((from, first));
                edges.extend(
                    unmonitored_gaps(&runs)
                        .into_iter()
                        .map(|(start, end)| (start.as_millis(), end.as_millis())),
                );
                edges.push((last, to));
            }
            _ => edges.push((from, to)),
        }
        edges
            .into_iter()
            .map(|(start, end)| (start.max(from), end.min(to)))
            .filter(|(start, end)| start < end)
            .map(|(start, end)| Gap {
                start: at(start),
                end: at(end),
            })
            .collect()
    }
}

/// The earliest moment the runs passed to [`availability`] must cover: `from`, or the start
/// of an ongoing outage (stored or live) before it, whose monitored part is counted whole.
pub(crate) fn runs_needed_from(
    from: Timestamp,
    outages: &[Outage],
    live: Option<&Live>,
) -> Timestamp {
    outages
        .iter()
        .chain(live.and_then(|live| live.ongoing.as_ref()))
        .filter(|outage| outage.end.is_none())
        .map(|outage| outage.start)
        .fold(from, Timestamp::min)
}

/// The availability of `[from, to)` at `now`: `runs` overlapping `[runs_needed_from, to)`,
/// `outages` overlapping `[from, to)` (oldest first, as the store gives them), `live` the
/// running monitor of this process (`None` when probing is off or for an offline report).
pub(crate) fn availability(
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
    runs: &[Run],
    outages: &[Outage],
    live: Option<&Live>,
) -> Availability {
    let coverage = Coverage::of(runs, live, now);
    let end = to.min(now).max(from).as_millis();
    let from_ms = from.as_millis();
    let monitored = coverage.measure(from_ms, end);
    let unmonitored = (end - from_ms).saturating_sub(monitored);
    let outages = with_live(outages, live, from, to);
    let mut by_kind = ByKind::default();
    let mut entries = Vec::with_capacity(outages.len().min(MAX_LISTED));
    for outage in &outages {
        let start = outage.start.as_millis();
        let stop = outage.end.unwrap_or(now).as_millis().max(start);
        let duration = stop - start;
        let down = match outage.end {
            Some(_) => Duration::from_millis(duration)
                .saturating_sub(outage.unmonitored)
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
            None => coverage.measure(start, stop),
        };
        let clipped = coverage.measure(start.max(from_ms), stop.min(end));
        let figures = match outage.kind {
            OutageKind::Isp => &mut by_kind.isp,
            OutageKind::Local => &mut by_kind.local,
        };
        figures.count += 1;
        figures.down_seconds += seconds(clipped);
        if entries.len() < MAX_LISTED {
            entries.push(OutageEntry {
                start: outage.start,
                end: outage.end,
                kind: outage.kind.name(),
                ongoing: outage.end.is_none(),
                duration_seconds: seconds(duration),
                down_seconds: seconds(down),
                unmonitored_seconds: seconds(duration - down.min(duration)),
                restarts: outage.restarts,
            });
        }
    }
    let mut unmonitored_list = coverage.gaps(from_ms, end);
    let truncated = outages.len() > MAX_LISTED || unmonitored_list.len() > MAX_LISTED;
    unmonitored_list.truncate(MAX_LISTED);
    let isp_down = by_kind.isp.down_seconds;
    let monitored_seconds = seconds(monitored);
    Availability {
        from,
        to,
        monitored_seconds,
        unmonitored_seconds: seconds(unmonitored),
        availability: (monitored > 0)
            .then(|| ((monitored_seconds - isp_down) / monitored_seconds).clamp(0.0, 1.0)),
        outages: entries,
        unmonitored: unmonitored_list,
        truncated,
        by_kind,
    }
}

/// The stored outages with the live ongoing one in place of its stored copy (or added, when
/// it is not stored yet and overlaps the window), oldest first.
fn with_live(
    outages: &[Outage],
    live: Option<&Live>,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Outage> {
    let mut list = outages.to_vec();
    if let Some(ongoing) = live.and_then(|live| live.ongoing) {
        match list.iter_mut().find(|stored| stored.start == ongoing.start) {
            Some(stored) => *stored = ongoing,
            None if ongoing.start < to && ongoing.end.is_none_or(|end| end > from) => {
                list.push(ongoing);
                list.sort_by_key(|outage| outage.start);
            }
            None => {}
        }
    }
    list
}

fn seconds(millis: u64) -> f64 {
    millis as f64 / 1000.0
}

#[cfg(test)]
mod tests;
