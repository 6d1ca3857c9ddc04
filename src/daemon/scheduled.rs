//! One run the scheduler starts: a campaign run or a scheduled test (or retest), with the
//! data budget's say, and the verdict the scheduler goes by; and the wait a restart owes a
//! run that was refused as rate-limited.

use std::time::Duration;

use super::ServeConfig;
use super::budget;
use super::scheduler::Verdict;
use super::state::AppState;
use crate::campaign::live::Live;
use crate::sample::{FailureReason, Sample, Trigger};
use crate::time::Timestamp;

/// How long the first test of a restarted `serve` must wait: a run refused as `rate_limited`
/// less than `interval` ago means the next test waits until a full interval after it, the
/// scheduler's rule while running, so a restart (or a restart loop) does not send a test the
/// service just refused.
pub(crate) fn rate_limit_wait(
    last_run: Option<&Sample>,
    now: Timestamp,
    interval: Duration,
) -> Option<Duration> {
    let run = last_run?;
    if run.reason != Some(FailureReason::RateLimited) {
        return None;
    }
    let age = Duration::from_millis(now.as_millis().saturating_sub(run.time.as_millis()));
    interval.checked_sub(age).filter(|wait| !wait.is_zero())
}

/// One run of the scheduler: a campaign run ([`run_campaign`]) or [`run_scheduled`].
pub(super) async fn run_any(state: &AppState, trigger: Trigger, config: &ServeConfig) -> Verdict {
    match (&state.campaign, trigger) {
        (Some(live), Trigger::Campaign) => run_campaign(state, live, config).await,
        _ => run_scheduled(state, trigger, config).await.0,
    }
}

/// One campaign run: run and kept as a scheduled one, then counted by the campaign, whose
/// finish is stored when this run completed it.
async fn run_campaign(state: &AppState, live: &Live, config: &ServeConfig) -> Verdict {
    let (verdict, sample) = run_scheduled(state, Trigger::Campaign, config).await;
    if let Some(finished) = live.record(&sample, &state.plans, Timestamp::now()) {
        let stored = state
            .recorder
            .run(move |store| store.put_campaign(&finished))
            .await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::error!(%err, "cannot store that the campaign is complete; the next start finishes it again")
            }
            Err(err) => tracing::error!(%err, "the store task failed storing the campaign's end"),
        }
    }
    state
        .metrics
        .set_campaign(live.rules().name(), &live.progress());
    verdict
}

/// One scheduled test (or retest, or campaign run): waits for the slot, runs, keeps, and
/// judges the result; or, with this month's data budget used up, keeps a skipped sample
/// instead. Returns the verdict and the sample kept.
async fn run_scheduled(
    state: &AppState,
    trigger: Trigger,
    config: &ServeConfig,
) -> (Verdict, Sample) {
    let mut claim = state.runner.claim().await;
    if let Some(budget) = config.data_budget {
        claim = match budget::skip_if_spent(state, trigger, budget, claim).await {
            Ok(claim) => claim,
            Err(skipped) => return (Verdict::default(), skipped),
        };
    }
    let sample = state.run_and_keep(claim, trigger).await;
    // A version that took effect since the last run shows from this step on.
    state.metrics.show_plan_at(&state.plans, Timestamp::now());
    let below_plan = config
        .retest_below
        .is_some_and(|share| state.plan_at(sample.time).reached(&sample, share) == Some(false));
    let verdict = Verdict {
        failure: sample.reason,
        below_plan,
    };
    (verdict, sample)
}
