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
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// Runs the scheduler on tokio's paused clock until `horizon` has passed (virtual time)
    /// and returns when each test started and each plan announced, relative to the start.
    async fn simulate(
        schedule: Schedule,
        splays: Vec<Duration>,
        outcomes: Vec<Option<FailureReason>>,
        test_takes: Duration,
        horizon: Duration,
    ) -> (Vec<Duration>, Vec<Duration>) {
        let verdicts = outcomes
            .into_iter()
            .map(|failure| Verdict {
                failure,
                below_plan: false,
            })
            .collect();
        let (started, plans) =
            simulate_verdicts(schedule, splays, verdicts, test_takes, horizon).await;
        (started.into_iter().map(|(at, _)| at).collect(), plans)
    }

    /// Like `simulate`, with full verdicts, also returning each run's trigger.
    async fn simulate_verdicts(
        schedule: Schedule,
        splays: Vec<Duration>,
        verdicts: Vec<Verdict>,
        test_takes: Duration,
        horizon: Duration,
    ) -> (Vec<(Duration, Trigger)>, Vec<Duration>) {
        let origin = Instant::now();
        let started = RefCell::new(Vec::new());
        let plans = RefCell::new(Vec::new());
        let verdicts = RefCell::new(VecDeque::from(verdicts));
        let mut splays = splays.into_iter();
        let scheduler = run(
            schedule,
            || splays.next().unwrap_or_default(),
            |trigger| {
                started.borrow_mut().push((origin.elapsed(), trigger));
                let verdict = verdicts.borrow_mut().pop_front().unwrap_or_default();
                async move {
                    tokio::time::sleep(test_takes).await;
                    verdict
                }
            },
            |at| plans.borrow_mut().push(at - origin),
        );
        let _ = tokio::time::timeout(horizon, scheduler).await;
        (started.into_inner(), plans.into_inner())
    }

    fn minutes(list: &[u64]) -> Vec<Duration> {
        list.iter().map(|m| MINUTE * *m as u32).collect()
    }

    const HALF_HOUR: Schedule = Schedule {
        interval: Duration::from_secs(30 * 60),
        splay: Duration::ZERO,
        start_delay: Duration::ZERO,
        retest_after: None,
    };

    #[tokio::test(start_paused = true)]
    async fn runs_on_a_fixed_grid_without_drift() {
        // Each test takes 40 s, yet runs start exactly every 30 minutes.
        let (started, plans) = simulate(
            HALF_HOUR,
            vec![],
            vec![],
            Duration::from_secs(40),
            MINUTE * 100,
        )
        .await;
        assert_eq!(started, minutes(&[0, 30, 60, 90]));
        assert_eq!(plans, minutes(&[0, 30, 60, 90, 120]));
    }

    #[tokio::test(start_paused = true)]
    async fn start_delay_shifts_the_whole_grid() {
        let schedule = Schedule {
            start_delay: MINUTE * 5,
            ..HALF_HOUR
        };
        let (started, _) = simulate(schedule, vec![], vec![], Duration::ZERO, MINUTE * 70).await;
        assert_eq!(started, minutes(&[5, 35, 65]));
    }

    #[tokio::test(start_paused = true)]
    async fn splay_offsets_each_run_but_not_the_grid() {
        let schedule = Schedule {
            splay: MINUTE * 10,
            ..HALF_HOUR
        };
        let splays = minutes(&[3, 9, 1]);
        let (started, _) = simulate(schedule, splays, vec![], Duration::ZERO, MINUTE * 70).await;
        assert_eq!(started, minutes(&[3, 39, 61]));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_until_the_next_slot() {
        let failed = Some(FailureReason::NoConnectivity);
        let outcomes = vec![failed, failed, failed, failed, failed, None];
        let (started, _) = simulate(HALF_HOUR, vec![], outcomes, Duration::ZERO, MINUTE * 95).await;
        // Retries after 1, 2, 4 and 8 minutes; the fifth would wait 16 (until 31), so the
        // grid slot at 30 comes first, succeeds, and the grid goes on.
        assert_eq!(started, minutes(&[0, 1, 3, 7, 15, 30, 60, 90]));
    }

    #[tokio::test(start_paused = true)]
    async fn back_off_is_capped_at_the_interval() {
        let schedule = Schedule {
            interval: MINUTE * 5,
            ..HALF_HOUR
        };
        assert_eq!(schedule.back_off(1), MINUTE);
        assert_eq!(schedule.back_off(3), MINUTE * 4);
        assert_eq!(schedule.back_off(4), MINUTE * 5);
        assert_eq!(schedule.back_off(400), MINUTE * 5);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_waits_at_least_one_full_interval() {
        let limited = Some(FailureReason::RateLimited);
        // The test ends 10 minutes into the slot, so the slot at 30 is too close: 60.
        let (started, _) = simulate(
            HALF_HOUR,
            vec![],
            vec![limited, None],
            MINUTE * 10,
            MINUTE * 95,
        )
        .await;
        assert_eq!(started, minutes(&[0, 60, 90]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_below_the_plan_is_retested_once() {
        let schedule = Schedule {
            retest_after: Some(MINUTE * 5),
            ..HALF_HOUR
        };
        let below = Verdict {
            failure: None,
            below_plan: true,
        };
        // Below, its retest below too (not retested again), then fine.
        let (started, _) = simulate_verdicts(
            schedule,
            vec![],
            vec![below, below, Verdict::default()],
            Duration::ZERO,
            MINUTE * 65,
        )
        .await;
        assert_eq!(
            started,
            vec![
                (Duration::ZERO, Trigger::Schedule),
                (MINUTE * 5, Trigger::Retest),
                (MINUTE * 30, Trigger::Schedule),
                (MINUTE * 60, Trigger::Schedule),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_retest_when_retests_are_off_or_the_slot_comes_first() {
        let below = Verdict {
            failure: None,
            below_plan: true,
        };
        let (off, _) =
            simulate_verdicts(HALF_HOUR, vec![], vec![below], Duration::ZERO, MINUTE * 35).await;
        assert_eq!(
            off,
            vec![
                (Duration::ZERO, Trigger::Schedule),
                (MINUTE * 30, Trigger::Schedule)
            ]
        );
        let late = Schedule {
            retest_after: Some(MINUTE * 45),
            ..HALF_HOUR
        };
        let (late, _) =
            simulate_verdicts(late, vec![], vec![below], Duration::ZERO, MINUTE * 35).await;
        assert_eq!(
            late,
            vec![
                (Duration::ZERO, Trigger::Schedule),
                (MINUTE * 30, Trigger::Schedule)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn durations_past_the_clock_s_range_never_overflow() {
        // `serve --start-delay 300000000000y` panicked adding it to the instant; the flags are
        // bounded now, but the scheduler itself must not overflow on any duration either.
        let huge = Schedule {
            interval: Duration::MAX,
            splay: Duration::MAX,
            start_delay: Duration::MAX,
            retest_after: Some(Duration::MAX),
        };
        let (started, plans) =
            simulate(huge, vec![Duration::MAX], vec![], Duration::ZERO, MINUTE).await;
        assert_eq!(started, Vec::<Duration>::new());
        assert_eq!(plans.len(), 1);
        assert!(plans[0] >= FAR_FUTURE);
        // And after runs: every kind of next step with the largest durations.
        let failed = Some(FailureReason::NoConnectivity);
        let limited = Some(FailureReason::RateLimited);
        let long = Schedule {
            start_delay: Duration::ZERO,
            ..huge
        };
        let (started, _) = simulate(
            long,
            vec![Duration::ZERO, Duration::MAX],
            vec![failed, limited, None],
            Duration::ZERO,
            MINUTE * 5,
        )
        .await;
        assert_eq!(started, minutes(&[0, 1]));
    }

    #[tokio::test(start_paused = true)]
    async fn campaign_runs_come_besides_the_grid_and_push_close_slots_aside() {
        let origin = Instant::now();
        let started = RefCell::new(Vec::new());
        let campaign = RefCell::new(VecDeque::from(minutes(&[40, 100, 101])));
        let scheduler = run_with_campaign(
            HALF_HOUR,
            || Duration::ZERO,
            |trigger| {
                started
                    .borrow_mut()
                    .push((origin.elapsed().as_secs() / 60, trigger));
                if trigger == Trigger::Campaign {
                    campaign.borrow_mut().pop_front();
                }
                async {
                    tokio::time::sleep(MINUTE).await;
                    Verdict::default()
                }
            },
            |_| {},
            MINUTE * 15,
            || campaign.borrow().front().map(|at| origin + *at),
        );
        let _ = tokio::time::timeout(MINUTE * 125, scheduler).await;
        // The slot at 30 is skipped (the campaign run at 40 is within 15 min), 90 too; the
        // campaign's run planned for 101 starts when the one at 100 ended, and 120 is 18 min
        // after that.
        assert_eq!(
            started.into_inner(),
            vec![
                (0, Trigger::Schedule),
                (40, Trigger::Campaign),
                (60, Trigger::Schedule),
                (100, Trigger::Campaign),
                (101, Trigger::Campaign),
                (120, Trigger::Schedule),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_campaign_run_due_before_the_start_delay_waits_for_it() {
        let origin = Instant::now();
        let started = RefCell::new(Vec::new());
        // The campaign's first run is due at once (and one at 2 min), but --start-delay (or a
        // rate-limit wait folded into it) is 10 minutes.
        let campaign = RefCell::new(VecDeque::from(minutes(&[0, 2])));
        let schedule = Schedule {
            start_delay: MINUTE * 10,
            ..HALF_HOUR
        };
        let scheduler = run_with_campaign(
            schedule,
            || Duration::ZERO,
            |trigger| {
                started.borrow_mut().push((origin.elapsed(), trigger));
                if trigger == Trigger::Campaign {
                    campaign.borrow_mut().pop_front();
                }
                async { Verdict::default() }
            },
            |_| {},
            Duration::ZERO,
            || campaign.borrow().front().map(|at| origin + *at),
        );
        let _ = tokio::time::timeout(MINUTE * 45, scheduler).await;
        let started = started.into_inner();
        assert!(
            started.iter().all(|(at, _)| *at >= MINUTE * 10),
            "a run before the start delay: {started:?}"
        );
        assert_eq!(
            started,
            vec![
                (MINUTE * 10, Trigger::Campaign),
                (MINUTE * 10, Trigger::Campaign),
                (MINUTE * 10, Trigger::Schedule),
                (MINUTE * 40, Trigger::Schedule),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_run_s_retest_overtaken_by_the_next_slot_is_not_run() {
        // --retest-after 10m, --interval 30m: fine for a quick test, but a run that takes
        // 25 minutes (a long --timeout) ends at 25, and its retest (35) would come after the
        // slot at 30, which is the next measurement instead: a scheduled run, not a retest.
        let schedule = Schedule {
            retest_after: Some(MINUTE * 10),
            ..HALF_HOUR
        };
        let below = Verdict {
            failure: None,
            below_plan: true,
        };
        let (started, _) = simulate_verdicts(
            schedule,
            vec![],
            vec![below, Verdict::default(), Verdict::default()],
            MINUTE * 25,
            MINUTE * 65,
        )
        .await;
        assert_eq!(
            started,
            vec![
                (Duration::ZERO, Trigger::Schedule),
                (MINUTE * 30, Trigger::Schedule),
                (MINUTE * 60, Trigger::Schedule),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_longer_than_the_interval_skips_to_the_next_free_slot() {
        let (started, _) = simulate(HALF_HOUR, vec![], vec![], MINUTE * 45, MINUTE * 130).await;
        assert_eq!(started, minutes(&[0, 60, 120]));
    }
}
