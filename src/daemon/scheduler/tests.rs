//! The scheduler on tokio's paused clock: when tests start and plans are announced.

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
    let (started, plans) = simulate_verdicts(schedule, splays, verdicts, test_takes, horizon).await;
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

/// The verdict of a run below the plan (a retest is due).
const BELOW: Verdict = Verdict {
    failure: None,
    below_plan: true,
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
    let below = BELOW;
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
    let below = BELOW;
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
    let (late, _) = simulate_verdicts(late, vec![], vec![below], Duration::ZERO, MINUTE * 35).await;
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
    let below = BELOW;
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
