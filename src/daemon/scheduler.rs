//! When tests run: a fixed grid from start-up with a random splay, back-off after failures.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::sample::{FailureReason, Trigger};

/// The first retry after a failure waits this long; each further failure doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(60);

/// Where an instant that would overflow the clock's range is put instead: far enough to mean
/// "never" (tokio's timer treats anything past about two years alike), near enough to add.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// The timing rules, from `--interval`, `--splay`, `--start-delay` and `--retest-after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub(crate) interval: Duration,
    pub(crate) splay: Duration,
    pub(crate) start_delay: Duration,
    /// Wait before a confirming retest of a run below the plan; `None` when retests are off.
    pub(crate) retest_after: Option<Duration>,
}

/// What a finished run tells the scheduler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) failure: Option<FailureReason>,
    /// A success below the retest threshold of the plan: worth confirming once.
    pub(crate) below_plan: bool,
}

/// What a run's outcome means for the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The next grid slot (a success, or a failure whose retry would come later anyway).
    Slot,
    /// A retry after a failure, this long after it ended.
    Retry(Duration),
    /// Rate-limited: the first slot at least one full interval away.
    RateLimited,
    /// A confirming retest, this long after the run ended.
    Retest(Duration),
}

impl Schedule {
    /// The wait before retry number `failures` (1 for the first): 1m, 2m, 4m … capped at the
    /// interval, so a failing line is still probed at least once per interval.
    pub(crate) fn back_off(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        FIRST_RETRY.saturating_mul(factor).min(self.interval)
    }

    /// The first grid slot (`start + k × interval`, k ≥ 1) strictly after `after`.
    fn slot_after(&self, start: Instant, after: Instant) -> Instant {
        let elapsed = after.saturating_duration_since(start);
        let interval = self.interval.as_nanos().max(1);
        let slots = (elapsed.as_nanos() / interval).saturating_add(1);
        let offset = u64::try_from(interval.saturating_mul(slots)).unwrap_or(u64::MAX);
        later(start, Duration::from_nanos(offset))
    }
}

/// `at + wait`, saturating at [`FAR_FUTURE`] from `at` instead of overflowing (a monotonic
/// clock's range depends on the platform; `Instant + Duration` panics past it).
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .or_else(|| at.checked_add(FAR_FUTURE))
        .unwrap_or(at)
}

/// Runs tests for ever on `schedule`. `test` runs one with the given trigger (storing and
/// publishing its sample) and returns its verdict; `planned` hears when the next run will
/// start; `splay` draws a random offset in `[0, schedule.splay)`. Runs never overlap: the next
/// is planned only after the previous returned. Cancel it by dropping the future.
#[cfg(test)]
pub(crate) async fn run<Test, Done>(
    schedule: Schedule,
    splay: impl FnMut() -> Duration,
    test: Test,
    planned: impl FnMut(Instant),
) where
    Test: FnMut(Trigger) -> Done,
    Done: Future<Output = Verdict>,
{
    run_with_campaign(schedule, splay, test, planned, Duration::ZERO, || None).await
}

/// `run` (kept for tests), with the runs of a measurement campaign besides the schedule: `campaign`
/// says when the next campaign run is due (`None`: none is), asked afresh before each run; that run
/// has the trigger `campaign` and does not move the grid. A scheduled run (or retest) that would
/// start within `guard` of a campaign run, before or after it, is skipped, so the campaign's
/// spacing holds; the grid goes on from the next slot.
pub(crate) async fn run_with_campaign<Test, Done>(
    schedule: Schedule,
    mut splay: impl FnMut() -> Duration,
    mut test: Test,
    mut planned: impl FnMut(Instant),
    guard: Duration,
    mut campaign: impl FnMut() -> Option<Instant>,
) where
    Test: FnMut(Trigger) -> Done,
    Done: Future<Output = Verdict>,
{
    let start = later(Instant::now(), schedule.start_delay);
    let mut next = later(start, splay());
    let mut trigger = Trigger::Schedule;
    let mut failures = 0u32;
    let mut campaign_ended: Option<Instant> = None;
    loop {
        // No run of any trigger starts before the start delay (and the rate-limit wait folded
        // into it) has passed: a campaign run due earlier waits for it.
        let campaign_at = campaign().map(|at| at.max(start));
        if let Some(at) = campaign_at.filter(|at| *at <= next) {
            planned(at);
            tokio::time::sleep_until(at).await;
            test(Trigger::Campaign).await;
            campaign_ended = Some(Instant::now());
            continue;
        }
        planned(next);
        tokio::time::sleep_until(next).await;
        let now = Instant::now();
        let after_campaign = campaign_ended.is_some_and(|end| now < later(end, guard));
        let before_campaign = campaign_at.is_some_and(|at| at < later(now, guard));
        if after_campaign || before_campaign {
            tracing::info!(
                trigger = %trigger.as_str(),
                guard = %humantime::format_duration(guard),
                "a {} run was due within the campaign's spacing of a campaign run; skipped",
                trigger.as_str()
            );
            trigger = Trigger::Schedule;
            next = later(schedule.slot_after(start, now), splay());
            continue;
        }
        let verdict = test(trigger).await;
        let now = Instant::now();
        let slot = later(schedule.slot_after(start, now), splay());
        let decision = decide(verdict, trigger, &mut failures, &schedule);
        trigger = Trigger::Schedule;
        next = match decision {
            Next::Slot => slot,
            Next::Retry(wait) => slot.min(later(now, wait)),
            // A retest that would come after the next slot is just the next scheduled run.
            Next::Retest(wait) if later(now, wait) < slot => {
                trigger = Trigger::Retest;
                later(now, wait)
            }
            Next::Retest(wait) => {
                // The run took so long (up to --timeout) that its retest would come after the
                // next slot: that slot's scheduled run is the next measurement instead.
                tracing::info!(
                    retest_in = %humantime::format_duration(wait),
                    next_in = %humantime::format_duration(round_to_seconds(
                        slot.saturating_duration_since(now)
                    )),
                    "the retest would come after the next scheduled test (the run took long); \
                     not retesting"
                );
                slot
            }
            Next::RateLimited => {
                let wait = schedule.interval.saturating_sub(Duration::from_nanos(1));
                let slot = schedule.slot_after(start, later(now, wait));
                tracing::warn!(
                    next_in = %humantime::format_duration(round_to_seconds(
                        slot.saturating_duration_since(now)
                    )),
                    "rate-limited by the Speedtest service; waiting at least one interval"
                );
                later(slot, splay())
            }
        };
    }
}

/// How the run's outcome moves the schedule, keeping count of consecutive failures.
fn decide(verdict: Verdict, trigger: Trigger, failures: &mut u32, schedule: &Schedule) -> Next {
    match verdict.failure {
        None => {
            *failures = 0;
            match schedule.retest_after {
                // One retest confirms or refutes; a retest is never retested.
                Some(wait) if verdict.below_plan && trigger != Trigger::Retest => {
                    tracing::info!(
                        retest_in = %humantime::format_duration(wait),
                        "result below the plan; a retest will confirm it"
                    );
                    Next::Retest(wait)
                }
                _ => Next::Slot,
            }
        }
        Some(FailureReason::RateLimited) => Next::RateLimited,
        Some(reason) => {
            *failures = failures.saturating_add(1);
            let wait = schedule.back_off(*failures);
            tracing::info!(
                %reason,
                retry_in = %humantime::format_duration(wait),
                "test failed; retrying with back-off"
            );
            Next::Retry(wait)
        }
    }
}

fn round_to_seconds(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs())
}

#[cfg(test)]
mod tests;
