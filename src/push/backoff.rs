//! How long the pusher waits after a failed push: 1 s, doubling with each failure in a row up
//! to 1 min, spread by a random ±20 % so that a fleet whose receiver comes back does not push
//! all at once; a `Retry-After` the receiver sent (429, 503) is obeyed when it asks for longer,
//! up to 5 min. A shorter one (`0`, a date passed) never shortens the back-off: a receiver
//! answering `503` with `Retry-After: 0` must not get a push per millisecond.
//!
//! The 1-minute ceiling bounds how long a backlog waits after the receiver is back (Prometheus's
//! own remote_write retries within 5 s, but pushes far more often); a thousand sites retrying a
//! receiver that is down cost it about 17 refused connections a second.

use std::time::Duration;

use tokio::time::Instant;

/// The wait after the first failure.
pub(crate) const FIRST: Duration = Duration::from_secs(1);
/// The longest wait after failures in a row, without `Retry-After`.
pub(crate) const MAX: Duration = Duration::from_secs(60);
/// The longest `Retry-After` obeyed: a receiver asking for longer is asked again after this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);
/// The share of the wait the jitter moves it by, either way.
const SPREAD: f64 = 0.2;

/// The wait after the `failures`-th failure in a row (1 for the first), before jitter:
/// [`FIRST`] doubled `failures - 1` times, at most [`MAX`].
pub(crate) fn base_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    FIRST.saturating_mul(1 << doublings).min(MAX)
}

/// The wait after the `failures`-th failure in a row: [`base_delay`] moved by `jitter` (from 0
/// to 1: 0 is 20 % shorter, 1 is 20 % longer), at most [`MAX`]; or the receiver's
/// `retry_after` when that is longer, at most [`MAX_RETRY_AFTER`].
pub(crate) fn delay(failures: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let own = base_delay(failures).mul_f64(1.0 - SPREAD + 2.0 * SPREAD * jitter);
    own.min(MAX)
        .max(retry_after.unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

/// The pusher's failures in a row and when it may try again.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// A push failed: the next waits [`delay`] from now (a random jitter); returns the wait.
    pub(crate) fn failed(&mut self, retry_after: Option<Duration>) -> Duration {
        self.failed_with(retry_after, rand::random::<f64>())
    }

    /// [`Backoff::failed`] with a given jitter (tests).
    pub(crate) fn failed_with(&mut self, retry_after: Option<Duration>, jitter: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = delay(self.failures, retry_after, jitter);
        self.until = Some(Instant::now() + wait);
        wait
    }

    /// A push was answered: the next failure starts again from [`FIRST`].
    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
        self.until = None;
    }

    /// Failures in a row so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a push must wait now.
    pub(crate) fn is_waiting(&self) -> bool {
        self.until.is_some_and(|until| until > Instant::now())
    }

    /// Returns once the wait is over (at once when there is none).
    pub(crate) async fn wait(&self) {
        if let Some(until) = self.until {
            tokio::time::sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_a_second_up_to_a_minute() {
        let waits: Vec<u64> = (1..=11).map(|n| base_delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60]);
        assert_eq!(base_delay(u32::MAX), MAX);
        assert_eq!(base_delay(0), FIRST);
    }

    #[test]
    fn jitter_spreads_the_wait_by_a_fifth_either_way_never_beyond_the_max() {
        assert_eq!(delay(1, None, 0.0), Duration::from_millis(800));
        assert_eq!(delay(1, None, 0.5), Duration::from_secs(1));
        assert_eq!(delay(1, None, 1.0), Duration::from_millis(1200));
        assert_eq!(delay(3, None, 0.0), Duration::from_millis(3200));
        assert_eq!(delay(20, None, 1.0), MAX);
        assert_eq!(delay(20, None, 0.0), MAX.mul_f64(0.8));
        assert_eq!(delay(1, None, f64::NAN), FIRST);
    }

    #[test]
    fn a_longer_retry_after_is_obeyed_up_to_the_max_a_shorter_one_never_shortens_the_wait() {
        assert_eq!(
            delay(1, Some(Duration::from_secs(7)), 0.0),
            Duration::from_secs(7)
        );
        assert_eq!(
            delay(1, Some(Duration::from_secs(86_400)), 0.0),
            MAX_RETRY_AFTER
        );
        // `Retry-After: 0` (or a date passed) from a receiver that fails again and again:
        // the back-off goes on doubling, never a push per millisecond.
        assert_eq!(delay(1, Some(Duration::ZERO), 0.5), FIRST);
        assert_eq!(delay(9, Some(Duration::ZERO), 1.0), MAX);
        assert_eq!(
            delay(4, Some(Duration::from_secs(2)), 0.5),
            Duration::from_secs(8)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_on_time_and_an_answer_resets_it() {
        let mut backoff = Backoff::default();
        assert!(!backoff.is_waiting());
        let start = Instant::now();
        assert_eq!(backoff.failed_with(None, 0.5), FIRST);
        assert_eq!(backoff.failed_with(None, 0.5), Duration::from_secs(2));
        assert!(backoff.is_waiting());
        backoff.wait().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
        assert!(!backoff.is_waiting());
        assert_eq!(
            backoff.failed_with(Some(Duration::from_secs(30)), 0.0),
            Duration::from_secs(30)
        );
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(backoff.is_waiting());
        backoff.wait().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(32));
        assert_eq!(backoff.failures(), 3);
        backoff.succeeded();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.failed_with(None, 0.5), FIRST);
    }
}
