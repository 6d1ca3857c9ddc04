//! Manual runs (`POST /api/v1/run` with `--enable-run-endpoint`): the rate limit that keeps
//! strangers from burning a data cap, and the start of a test in the background.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::state::AppState;
use crate::sample::Trigger;
use crate::time::Timestamp;

/// The rate limit of `POST /api/v1/run`: a public exporter must not let strangers burn a data
/// cap, and even a trusted client should not start a test every second.
pub struct ManualRuns {
    pub min_gap: Duration,
    /// When the last manual run started: on the monotonic clock (the gap counts on it) and on
    /// the wall clock (its sample is dated this; a refusal names it).
    last_start: Mutex<Option<(Instant, Timestamp)>>,
}

/// Why a manual run was not started.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The last manual run started less than `--min-manual-gap` ago, and no test runs now.
    TooSoon {
        /// Try again after this long.
        wait: Duration,
        /// When the last manual run started (its sample is dated this).
        last_started_at: Timestamp,
    },
    /// A test (of any trigger) is running now, since this time when known.
    Busy(Option<Timestamp>),
}

impl ManualRuns {
    pub(crate) fn new(min_gap: Duration) -> Self {
        ManualRuns {
            min_gap,
            last_start: Mutex::new(None),
        }
    }
}

impl AppState {
    /// Starts a manual test in the background, if the endpoint is on, no test is running and
    /// the gap has passed; returns when it started (its sample is dated this, or the next free
    /// millisecond). `None` means the endpoint is off. A running test (409) is said before the
    /// gap (429): a client told "too soon" while a test runs would think none does.
    pub(crate) fn start_manual_run(self: &Arc<Self>) -> Option<Result<Timestamp, Refusal>> {
        let manual = self.manual_runs.as_ref()?;
        let Ok(mut last_start) = manual.last_start.lock() else {
            return Some(Err(Refusal::Busy(self.running_since())));
        };
        let Some(claim) = self.runner.try_claim() else {
            return Some(Err(Refusal::Busy(self.running_since())));
        };
        let now = Instant::now();
        if let Some((last, last_started_at)) = *last_start {
            let since = now.saturating_duration_since(last);
            if since < manual.min_gap {
                // Dropping the claim frees the slot again.
                return Some(Err(Refusal::TooSoon {
                    wait: manual.min_gap - since,
                    last_started_at,
                }));
            }
        }
        // Said running from here: a second request before the task starts must hear when.
        let started = Timestamp::now();
        *last_start = Some((now, started));
        self.set_running(Some(started));
        let state = self.clone();
        tokio::spawn(async move {
            state
                .run_and_keep_from(claim, Trigger::Manual, started)
                .await;
        });
        Some(Ok(started))
    }
}
