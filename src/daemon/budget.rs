//! The monthly data budget (`--data-budget`): this month's use read from the store, and
//! whether the next scheduled test runs or is kept as skipped.

use std::sync::atomic::Ordering;

use super::state::AppState;
use crate::sample::{FailureReason, Outcome, Sample, Trigger};
use crate::speedtest::Claim;
use crate::store::StoreError;
use crate::time::Timestamp;
use crate::units::DataVolume;
use crate::units::for_people;

/// Whether this month's `--data-budget` lets the test of `claim` run: `Ok(claim)` when it
/// does; otherwise the slot is freed, a skipped sample is kept in the test's place and
/// returned. Said once when skipping starts (after the first skipped sample is stored, as a
/// run's line is) and once when tests resume.
pub(super) async fn skip_if_spent(
    state: &AppState,
    trigger: Trigger,
    budget: DataVolume,
    claim: Claim,
) -> Result<Claim, Sample> {
    let skip = match budget_use(state).await {
        Some(used) => budget_verdict(used, budget.bytes()),
        None => None,
    };
    let was_skipping = state.budget_skipping.swap(skip.is_some(), Ordering::AcqRel);
    let Some(skip) = skip else {
        if was_skipping {
            tracing::info!(
                data_budget_mb = for_people::mb(budget.bytes()),
                "tests resume: the data budget of {} allows the next test",
                for_people::volume(budget.bytes())
            );
        }
        return Ok(claim);
    };
    let message = skip.message(budget.bytes());
    let skipped = Sample {
        outcome: Outcome::Skipped,
        reason: Some(FailureReason::DataBudget),
        message: Some(message.clone()),
        ..Sample::empty(Timestamp::now(), trigger)
    };
    drop(claim);
    state.keep(skipped.clone()).await;
    // Said once it is stored, as a run's line is.
    if !was_skipping {
        tracing::warn!(
            trigger = %trigger.as_str(),
            data_used_mb = for_people::mb(skip.used),
            next_test_mb = skip.next_test.map(for_people::mb),
            data_budget_mb = for_people::mb(budget.bytes()),
            "test skipped: {message}; scheduled tests are skipped (and stored as skipped) \
             without a line each until they resume"
        );
    }
    Err(skipped)
}

/// This calendar month's data use, as the data budget judges it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct BudgetUse {
    /// Bytes the tests of this month moved.
    used: f64,
    /// Bytes the newest success of this month with a known volume moved: what the next test
    /// is expected to move; `None` without one (the month's first test always runs, so a
    /// budget smaller than one test still gets a test a month, and last month's figure,
    /// which a budget may have been set after, does not stop it).
    last_test: Option<f64>,
}

/// Why the next test is skipped for the data budget.
#[derive(Clone, Copy, Debug, PartialEq)]
struct BudgetSkip {
    /// Bytes this month's tests moved.
    used: f64,
    /// What the next test would move, when that (not the use so far) crosses the budget.
    next_test: Option<f64>,
}

impl BudgetSkip {
    /// The skipped sample's message: `data budget of 100 GB for this month reached (150 GB
    /// moved by tests); tests resume next month`, or, when the next test would cross it, the
    /// estimate too.
    fn message(&self, budget: f64) -> String {
        let budget_words = for_people::volume(budget);
        let used = for_people::volume(self.used);
        match self.next_test {
            None => format!(
                "data budget of {budget_words} for this month reached ({used} moved by tests); tests resume next month"
            ),
            Some(next) => format!(
                "data budget of {budget_words} for this month would be crossed by the next test ({used} moved by tests, and the last test moved {}); tests resume next month",
                for_people::volume(next)
            ),
        }
    }
}

/// Whether the next test runs under a budget of `budget` bytes: skipped when this month's
/// use has reached it, or when the next test, expected to move what the last one did, would
/// cross it. With no test of known volume to go by, it runs (better one test too many than
/// none at all).
fn budget_verdict(usage: BudgetUse, budget: f64) -> Option<BudgetSkip> {
    if usage.used >= budget {
        return Some(BudgetSkip {
            used: usage.used,
            next_test: None,
        });
    }
    let next = usage.last_test?;
    (usage.used + next > budget).then_some(BudgetSkip {
        used: usage.used,
        next_test: Some(next),
    })
}

/// The volume a sample's transfers moved, when it records both directions' bytes.
fn volume_of(sample: &Sample) -> Option<f64> {
    Some(
        sample
            .downloaded_bytes?
            .saturating_add(sample.uploaded_bytes?) as f64,
    )
}

/// This calendar month's data use and its last test's volume. Read from the store each time
/// (a month is at most a few tens of thousands of samples), so a restart, an import or the
/// turn of the month needs no bookkeeping. `None` (and a line in the log) when the store
/// cannot be read: the test then runs.
async fn budget_use(state: &AppState) -> Option<BudgetUse> {
    let now = Timestamp::now();
    let (from, to) = now.month();
    let used = state
        .recorder
        .run(move |store| {
            let mut used = 0.0;
            let mut last_test = None;
            store.for_each(from, to, |sample| {
                let moved = sample
                    .downloaded_bytes
                    .unwrap_or(0)
                    .saturating_add(sample.uploaded_bytes.unwrap_or(0));
                used += moved as f64;
                if sample.is_success()
                    && let Some(volume) = volume_of(&sample)
                {
                    last_test = Some(volume);
                }
                Ok::<_, StoreError>(())
            })?;
            Ok::<_, StoreError>(BudgetUse { used, last_test })
        })
        .await;
    match used {
        Ok(Ok(used)) => Some(used),
        Ok(Err(err)) => {
            // Better one test too many than none at all because the budget could not be read.
            tracing::error!(%err, "cannot read this month's data use; testing anyway");
            None
        }
        Err(err) => {
            tracing::error!(%err, "the data budget check failed; testing anyway");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_that_would_cross_the_budget_is_skipped() {
        let usage = |used: f64, last_test: Option<f64>| BudgetUse { used, last_test };
        // 95 GB used of 100 GB, the last test moved 8 GB: skipped, and said why.
        let skip = budget_verdict(usage(95e9, Some(8e9)), 100e9).unwrap();
        assert_eq!(skip.next_test, Some(8e9));
        assert_eq!(
            skip.message(100e9),
            "data budget of 100 GB for this month would be crossed by the next test (95.0 GB \
             moved by tests, and the last test moved 8.0 GB); tests resume next month"
        );
        // Exactly up to the budget still runs; past it does not.
        assert_eq!(budget_verdict(usage(92e9, Some(8e9)), 100e9), None);
        // No test of known volume: it runs until the use reaches the budget.
        assert_eq!(budget_verdict(usage(99e9, None), 100e9), None);
        let reached = budget_verdict(usage(150e9, None), 100e9).unwrap();
        assert_eq!(
            reached.message(100e9),
            "data budget of 100 GB for this month reached (150 GB moved by tests); tests resume next month"
        );
        assert_eq!(budget_verdict(usage(0.0, Some(1e9)), 100e9), None);
    }
}
