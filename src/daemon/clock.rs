//! What the service does about a wrong clock: says so at start-up, and converts between the
//! wall clock (what samples are dated) and the monotonic clock (what timers wait by).

use std::time::Duration;

use tokio::time::Instant;

use crate::store::{Store, StoreError};
use crate::time::{ClockCheck, Timestamp};

/// Says loudly, at start-up, what suggests the clock is wrong: a time before this program's
/// source date, samples dated after now, keys at or after the end of the times kept.
pub(super) fn check_clock(store: &Store, now: Timestamp) -> Result<(), StoreError> {
    if let ClockCheck::BeforeSourceDate { now, source_date } = ClockCheck::of(now) {
        tracing::error!(
            %now,
            %source_date,
            "the clock is wrong: it reads {now}, before this program's source date {source_date}; \
             samples are stored with the wrong time and retention deletes nothing until it is right"
        );
    }
    let (ahead, newest) = store.count_after(now)?;
    if let Some(newest) = newest {
        tracing::warn!(
            %now,
            samples = ahead,
            %newest,
            "{ahead} stored samples are dated after the clock ({now}), the newest {newest}: either \
             the clock is behind or a wrong clock recorded or imported them; they are kept, but \
             not used as the latest run or last success"
        );
    }
    let unrepresentable = store.unrepresentable()?;
    if unrepresentable > 0 {
        tracing::error!(
            samples = unrepresentable,
            end = %Timestamp::MAX,
            "{unrepresentable} stored samples are keyed at or after {}, the end of the times \
             this version handles (an older version stored them, or the file is damaged); they \
             are left as they are and no endpoint or export shows them",
            Timestamp::MAX
        );
    }
    Ok(())
}

/// The monotonic instant at which the wall clock will read `at` (now when that has passed).
pub(super) fn instant_at(at: Timestamp) -> Instant {
    let now = Instant::now();
    let wait = at.duration_since(Timestamp::now());
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 24 * 60 * 60)))
        .unwrap_or(now)
}

/// The wall-clock time at which the monotonic instant `at` falls.
pub(super) fn wall_clock(at: Instant) -> Timestamp {
    Timestamp::now().saturating_add(at.saturating_duration_since(Instant::now()))
}
