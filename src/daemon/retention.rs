//! Retention: deletes samples (and connectivity records) older than `--retention`, walking
//! the record so a clock that jumps ahead cannot delete history early; and folds old
//! per-minute probe figures into 10-minute buckets.

use std::time::Duration;

use tokio::time::Instant;

use super::state::AppState;
use crate::store::StoreError;
use crate::store::probes::{MINUTE_DAYS, MINUTE_ROWS_KEPT};
use crate::time::{ClockCheck, Timestamp, format_limit};

/// How often retention looks for samples to delete, and how many go per transaction.
const RETENTION_PERIOD: Duration = Duration::from_secs(60 * 60);
const RETENTION_BATCH: usize = 10_000;
/// 10-minute probe buckets written per downsampling transaction: one day.
const DOWNSAMPLE_BATCH: usize = 144;

/// Folds per-minute probe rows older than [`MINUTE_DAYS`] days, with that many days of
/// minute rows recorded after them ([`Store::probe_fold_cut`]: a clock far ahead cannot fold
/// the last month), into 10-minute buckets, once an hour, a day's worth of buckets per
/// transaction; never returns.
pub(super) async fn downsample(state: &AppState) {
    let mut ticks = tokio::time::interval(RETENTION_PERIOD);
    loop {
        ticks.tick().await;
        let folded = state
            .recorder
            .run(|store| {
                let before = store.probe_fold_cut(Timestamp::now(), MINUTE_ROWS_KEPT)?;
                let mut folded = 0;
                loop {
                    let batch = store.downsample_probes(before, DOWNSAMPLE_BATCH)?;
                    folded += batch;
                    if batch < DOWNSAMPLE_BATCH {
                        return Ok::<_, StoreError>(folded);
                    }
                }
            })
            .await;
        match folded {
            Ok(Ok(0)) => {}
            Ok(Ok(buckets)) => tracing::info!(
                buckets,
                "folded per-minute probe figures older than {MINUTE_DAYS} days into 10-minute buckets"
            ),
            Ok(Err(err)) => tracing::error!(%err, "cannot downsample the probe figures"),
            Err(err) => tracing::error!(%err, "the downsampling task failed"),
        }
    }
}

/// Why retention deletes nothing this time.
#[derive(Debug, PartialEq, Eq)]
enum Hold {
    /// The clock reads before this program's source date.
    ClockBeforeSourceDate {
        now: Timestamp,
        source_date: Timestamp,
    },
}

/// A stretch of time with no sample in it: the monitor was off, or the clock jumped ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Gap {
    /// The sample before the gap.
    from: Timestamp,
    /// The sample after it, or now.
    to: Timestamp,
}

/// The longest gap between samples (or between the newest sample and now) that retention
/// counts as time passed: a day, or the usual gap between scheduled runs (`--interval` plus
/// `--splay`) if that is longer, but at most a quarter of the retention. Longer gaps count as
/// this long, so a clock that jumps ahead, and the samples it then writes, can make retention
/// delete a sample at most this much before its time.
fn longest_counted_gap(keep: Duration, usual_gap: Duration) -> Duration {
    usual_gap.max(DAY).min(keep / 4)
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Finds where retention cuts by walking the record back from now, newest sample first, and
/// counting the time between neighbours, but a gap longer than [`longest_counted_gap`] only as
/// that long: samples go once `keep` of *recorded* time lies after them. With a right clock and
/// a monitor that ran on, that is exactly `now - keep`; a jump of the clock (or a spell when
/// the monitor was off) keeps the older samples that much longer instead of deleting them.
/// The walk cannot be fooled by samples the wrong clock wrote: they lie after the jump, which
/// counts as at most a day whatever it is.
struct Walk {
    keep: Duration,
    longest: Duration,
    /// Recorded time still to walk back before the cut.
    left: Duration,
    /// The sample walked to last (at first: now).
    later: Timestamp,
    /// Set once the cut is found.
    cutoff: Option<Timestamp>,
    /// The longest gap counted short before the cut.
    gap: Option<Gap>,
}

impl Walk {
    fn new(now: Timestamp, keep: Duration, longest: Duration) -> Self {
        Walk {
            keep,
            longest,
            left: keep,
            later: now,
            cutoff: None,
            gap: None,
        }
    }

    /// Takes the next older sample's time; `Break` once the cut is found.
    fn step(&mut self, time: Timestamp) -> std::ops::ControlFlow<()> {
        if self.cutoff.is_some() {
            return std::ops::ControlFlow::Break(());
        }
        let gap = self.later.duration_since(time);
        let counted = gap.min(self.longest);
        if counted >= self.left {
            self.cutoff = Some(self.later.saturating_sub(self.left));
            return std::ops::ControlFlow::Break(());
        }
        if gap > self.longest
            && self
                .gap
                .is_none_or(|widest| gap > widest.to.duration_since(widest.from))
        {
            self.gap = Some(Gap {
                from: time,
                to: self.later,
            });
        }
        self.left = self.left.saturating_sub(counted);
        self.later = time;
        std::ops::ControlFlow::Continue(())
    }

    /// Where to cut: before it, samples have `keep` of recorded time after them. When the
    /// record ran out first, the cut lies before its oldest sample (nothing goes).
    fn cutoff(&self) -> Timestamp {
        self.cutoff
            .unwrap_or_else(|| self.later.saturating_sub(self.left))
    }

    /// The cut a plain `now - keep` would make, and the gap that held it back, when the walk
    /// cut earlier than that.
    fn held_back(&self, now: Timestamp) -> Option<(Timestamp, Gap)> {
        let wanted = now.saturating_sub(self.keep);
        self.gap
            .filter(|_| self.cutoff() < wanted)
            .map(|gap| (wanted, gap))
    }
}

/// Where retention may cut this time: samples before the returned time go. `record` is the
/// cut the [`Walk`] over the record found. A clock before the source date is never trusted to
/// delete. `pace` caps the cutoff where the wall clock ran ahead of the monotonic clock since
/// the last pass (a clock stepped forward while serving); the cap is returned as the second
/// value when it applied.
fn retention_cutoff(
    now: Timestamp,
    record: Timestamp,
    pace: Option<Timestamp>,
) -> Result<(Timestamp, Option<Timestamp>), Hold> {
    if let ClockCheck::BeforeSourceDate { now, source_date } = ClockCheck::of(now) {
        return Err(Hold::ClockBeforeSourceDate { now, source_date });
    }
    match pace {
        Some(pace) if record > pace => Ok((pace, Some(record))),
        _ => Ok((record, None)),
    }
}

/// How much further the wall clock may move than the monotonic clock between two retention
/// passes before the cut is held back to the monotonic pace (NTP slews far less).
const CLOCK_STEP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// What one retention pass did.
struct Pass {
    cutoff: Timestamp,
    /// The cut the monotonic pace prevented ([`retention_cutoff`]).
    paced: Option<Timestamp>,
    /// The cut `now - keep` would have made and the gap that prevented it, when samples
    /// older than `keep` were kept for it.
    held_back: Option<(Timestamp, Gap)>,
    deleted: usize,
    left: u64,
}

/// Deletes samples older than `keep` (by the [`Walk`] over the record) every hour, in bounded
/// batches; `usual_gap` is the usual time between scheduled runs. Never returns.
pub(super) async fn retention(state: &AppState, keep: Option<Duration>, usual_gap: Duration) {
    let Some(keep) = keep else {
        return std::future::pending().await;
    };
    let longest = longest_counted_gap(keep, usual_gap);
    let mut ticks = tokio::time::interval(RETENTION_PERIOD);
    // The last cut and when it was made by the monotonic clock.
    let mut last: Option<(Timestamp, Instant)> = None;
    loop {
        ticks.tick().await;
        let pace = last.map(|(cutoff, at)| {
            cutoff.saturating_add(at.elapsed().saturating_add(CLOCK_STEP_TOLERANCE))
        });
        let pruned = state
            .recorder
            .run(move |store| {
                let now = Timestamp::now();
                let mut walk = Walk::new(now, keep, longest);
                // Samples dated after now are not part of the record walked (nor deleted).
                let end = now.saturating_add(Duration::from_millis(1));
                store.times_newest_first(end, |time| walk.step(time))?;
                let (cutoff, paced) = match retention_cutoff(now, walk.cutoff(), pace) {
                    Ok(cutoff) => cutoff,
                    Err(hold) => return Ok::<_, StoreError>(Err(hold)),
                };
                // With no sample between the paced cut and the walk's (the walk crossed a gap
                // in the record), the pace changes nothing and is not worth a warning.
                let (cutoff, paced) = match paced {
                    Some(wanted) if store.newest_first(cutoff, wanted, 1)?.is_empty() => {
                        (wanted, None)
                    }
                    _ => (cutoff, paced),
                };
                // Said only when samples older than `keep` are there to be kept.
                let held_back = match walk.held_back(now) {
                    Some((wanted, gap)) if !store.newest_first(cutoff, wanted, 1)?.is_empty() => {
                        Some((wanted, gap))
                    }
                    _ => None,
                };
                // The connectivity records go by the same cut (and are kept by the same
                // rules: the walk above never cuts across a gap in the samples).
                while store.delete_probes_before(cutoff, RETENTION_BATCH)? == RETENTION_BATCH {}
                let mut deleted = 0;
                loop {
                    let batch = store.delete_before(cutoff, RETENTION_BATCH)?;
                    deleted += batch;
                    if batch < RETENTION_BATCH {
                        return Ok(Ok(Pass {
                            cutoff,
                            paced,
                            held_back,
                            deleted,
                            left: store.len()?,
                        }));
                    }
                }
            })
            .await;
        match pruned {
            Ok(Ok(Err(Hold::ClockBeforeSourceDate { now, source_date }))) => tracing::error!(
                %now,
                %source_date,
                "retention deleted nothing: the clock reads {now}, before this program's source \
                 date {source_date}, so it is wrong"
            ),
            Ok(Ok(Ok(pass))) => {
                let Pass {
                    cutoff,
                    paced,
                    held_back,
                    deleted,
                    left,
                } = pass;
                last = Some((cutoff, Instant::now()));
                if let Some(wanted) = paced {
                    tracing::warn!(
                        %cutoff,
                        %wanted,
                        "the wall clock moved further than the monotonic clock since the last \
                         retention pass (stepped forward?); retention cut at {cutoff}, not {wanted}"
                    );
                }
                if let Some((wanted, gap)) = held_back {
                    let counted = format_limit(longest);
                    tracing::warn!(
                        %cutoff,
                        %wanted,
                        gap_from = %gap.from,
                        gap_to = %gap.to,
                        deleted,
                        retention = %format_limit(keep),
                        "retention cut at {cutoff}, not {wanted}: no sample was recorded from {} to \
                         {}, and a gap counts as at most {counted}, so the samples before it are \
                         kept longer than the retention. Was the monitor off, or is the clock \
                         ahead? If the clock is right and they must go now, export --from the cut \
                         you want and import that into a new --db",
                        gap.from,
                        gap.to
                    );
                }
                state.metrics.set_samples(left);
                if deleted > 0 {
                    state.changed();
                }
                log_deleted(deleted, left, cutoff, keep, usual_gap);
            }
            Ok(Err(err)) => tracing::error!(%err, "retention could not delete old samples"),
            Err(err) => tracing::error!(%err, "the retention task failed"),
        }
    }
}

/// The fewest deletions in one retention pass that are logged at WARN.
const RETENTION_WARN_ABOVE: usize = 10;

/// How many samples one retention pass may delete before it is logged at WARN: more than
/// [`RETENTION_WARN_ABOVE`] and more than twice what an hourly pass deletes in the steady
/// state (the runs of one [`RETENTION_PERIOD`] at `usual_gap`, retests included at most
/// doubling them). A steady pass deletes the few runs that aged past the retention in the
/// last hour (2 at the default 30m); more means a retention shortened at a restart, or a
/// typo (`--retention 3m`) deleting history, which a user must see among the INFO lines.
fn retention_warn_above(usual_gap: Duration) -> usize {
    let gap = usual_gap.as_secs().max(1);
    let per_pass = usize::try_from(RETENTION_PERIOD.as_secs().div_ceil(gap)).unwrap_or(usize::MAX);
    RETENTION_WARN_ABOVE.max(per_pass.saturating_mul(2))
}

/// Says what a retention pass deleted: nothing when it deleted nothing, INFO for a few
/// samples, WARN with the cutoff for more than [`retention_warn_above`].
fn log_deleted(deleted: usize, left: u64, cutoff: Timestamp, keep: Duration, usual_gap: Duration) {
    if deleted == 0 {
        return;
    }
    let retention = format_limit(keep);
    if deleted > retention_warn_above(usual_gap) {
        tracing::warn!(
            deleted,
            left,
            %cutoff,
            %retention,
            "retention deleted old samples: {deleted} recorded before {cutoff} (--retention \
             {retention}); {left} are left"
        );
    } else {
        tracing::info!(deleted, left, %cutoff, %retention, "retention deleted old samples");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::source_date;

    const HOUR: Duration = Duration::from_secs(60 * 60);

    fn days_after_source(days: u32) -> Timestamp {
        source_date().saturating_add(DAY * days)
    }

    /// The cut the walk finds over `times` (newest first).
    fn walk(now: Timestamp, keep: Duration, times: &[Timestamp]) -> Walk {
        let mut walk = Walk::new(now, keep, longest_counted_gap(keep, HOUR / 2));
        for &time in times {
            if walk.step(time).is_break() {
                break;
            }
        }
        walk
    }

    /// A sample every `step` from `newest` back to `oldest`, newest first.
    fn every(step: Duration, newest: Timestamp, oldest: Timestamp) -> Vec<Timestamp> {
        let mut times = Vec::new();
        let mut time = newest;
        while time >= oldest {
            times.push(time);
            time = time.saturating_sub(step);
        }
        times
    }

    #[test]
    fn retention_warns_above_ten_deletions_and_twice_an_hour_of_runs() {
        assert_eq!(retention_warn_above(HOUR / 2), 10);
        assert_eq!(retention_warn_above(Duration::from_secs(5 * 60)), 24);
        assert_eq!(retention_warn_above(Duration::from_secs(7 * 60)), 18);
        assert_eq!(retention_warn_above(DAY), 10);
        assert_eq!(retention_warn_above(Duration::ZERO), 7200);
    }

    #[test]
    fn retention_cuts_what_is_older_than_it_keeps() {
        let now = days_after_source(500);
        let times = every(HOUR, now.saturating_sub(HOUR / 2), days_after_source(0));
        let walk = walk(now, DAY * 400, &times);
        assert_eq!(walk.cutoff(), days_after_source(100));
        assert_eq!(walk.held_back(now), None);
        assert_eq!(
            retention_cutoff(now, walk.cutoff(), None),
            Ok((days_after_source(100), None))
        );
    }

    #[test]
    fn a_clock_far_ahead_and_the_sample_it_wrote_delete_at_most_a_day_early() {
        // A run every 5.5 h up to day 600 with a right clock; then the clock is ten years
        // ahead and a run stored a sample dated then.
        let real = days_after_source(600);
        let mut times = vec![days_after_source(600 + 3650)];
        times.extend(every(HOUR * 11 / 2, real, days_after_source(0)));
        let now = days_after_source(600 + 3650).saturating_add(HOUR);
        let walk = walk(now, DAY * 400, &times);
        // The hour the wrong clock ran was real: a day early by the real time.
        let real_now = real.saturating_add(HOUR);
        assert_eq!(walk.cutoff(), real_now.saturating_sub(DAY * 399));
        let (wanted, gap) = walk.held_back(now).unwrap();
        assert_eq!(wanted, now.saturating_sub(DAY * 400));
        assert_eq!((gap.from, gap.to), (real, days_after_source(600 + 3650)));
    }

    #[test]
    fn a_clock_ahead_by_less_than_the_retention_deletes_at_most_a_day_early() {
        // A year ahead with --retention 400d: now - 400d would be 35 days before the real time.
        let real = days_after_source(600);
        let times = every(HOUR, real, days_after_source(0));
        let now = real.saturating_add(DAY * 365);
        assert!(walk(now, DAY * 400, &times).cutoff() <= real.saturating_sub(DAY * 399));
    }

    #[test]
    fn a_monitor_switched_off_keeps_its_old_samples_as_long_as_it_was_off_less_a_day() {
        let off_from = days_after_source(300);
        let back = days_after_source(330);
        let mut times = every(HOUR, days_after_source(500), back);
        times.extend(every(HOUR, off_from, days_after_source(0)));
        let now = days_after_source(500).saturating_add(HOUR / 2);
        let walk = walk(now, DAY * 400, &times);
        // 29 of the 30 days off are not counted.
        assert_eq!(
            walk.cutoff(),
            days_after_source(100 - 29).saturating_add(HOUR / 2)
        );
        assert_eq!(
            walk.held_back(now).map(|(_, gap)| gap),
            Some(Gap {
                from: off_from,
                to: back
            })
        );
    }

    #[test]
    fn a_gap_counts_as_a_day_or_the_schedule_but_at_most_a_quarter_of_the_retention() {
        assert_eq!(longest_counted_gap(DAY * 400, HOUR / 2), DAY);
        assert_eq!(longest_counted_gap(DAY * 400, DAY * 3), DAY * 3);
        assert_eq!(longest_counted_gap(DAY, HOUR / 2), HOUR * 6);
        assert_eq!(longest_counted_gap(DAY * 8, DAY * 7), DAY * 2);
    }

    #[test]
    fn retention_never_empties_the_store() {
        // Five samples from a right clock, then serve with the clock ten years ahead.
        let newest = days_after_source(10);
        let times = every(HOUR, newest, newest.saturating_sub(HOUR * 4));
        let now = days_after_source(10 + 3650);
        let walk = walk(now, DAY * 400, &times);
        assert!(walk.cutoff() < newest.saturating_sub(HOUR * 4));
    }

    #[test]
    fn retention_never_trusts_a_clock_before_the_source_date() {
        let now = source_date().saturating_sub(DAY * 2);
        assert_eq!(
            retention_cutoff(now, now.saturating_sub(DAY), None),
            Err(Hold::ClockBeforeSourceDate {
                now,
                source_date: source_date()
            })
        );
    }

    #[test]
    fn a_clock_stepped_forward_while_serving_cuts_at_the_monotonic_pace() {
        // The last pass cut at day 100; an hour later the clock jumped a few hours, and the
        // walk would cut later than the monotonic clock allows.
        let pace = days_after_source(100).saturating_add(Duration::from_secs(3_900));
        let record = days_after_source(100).saturating_add(HOUR * 5);
        let now = days_after_source(500);
        let (cutoff, wanted) = retention_cutoff(now, record, Some(pace)).unwrap();
        assert_eq!(cutoff, pace);
        assert_eq!(wanted, Some(record));
    }
}
