//! Per-minute aggregates of one target's probe results: sent, lost, RTT min/median/max in µs,
//! and whether a speed test ran in that minute ("under load", the bufferbloat figure).
//!
//! A minute is the UTC minute `[m, m + 60 s)` containing the probe's send time. The
//! [`MinuteAccumulator`] is fed results in time order and hands back a minute once a result
//! from a later minute arrives (or on [`MinuteAccumulator::flush`]); a result dated before the
//! open minute (a clock step back) is counted in the open minute rather than reopening a
//! finished one, so each minute is emitted at most once. The median of an even count is the
//! lower of the two middle values (an observed RTT, never an average of two).

use std::time::Duration;

use super::ProbeResult;
use crate::time::Timestamp;

/// Milliseconds in a minute.
pub(crate) const MINUTE_MS: u64 = 60_000;

/// The most RTTs kept for one minute's median: one probe every 100 ms. Past it, probes are
/// still counted as sent and lost, and min/max still follow every RTT; only the median is
/// taken from the first this many.
pub(crate) const MAX_RTTS_PER_MINUTE: usize = 600;

/// One target's probes in one minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinuteAggregate {
    /// The start of the minute (a multiple of 60 000 ms since the epoch).
    pub minute: Timestamp,
    /// Probes sent.
    pub sent: u32,
    /// Probes without an answer (`lost <= sent`).
    pub lost: u32,
    /// Smallest RTT in µs; `None` when every probe was lost.
    pub rtt_min_us: Option<u64>,
    /// Median RTT in µs (the lower middle value for an even count); `None` when all were lost.
    pub rtt_median_us: Option<u64>,
    /// Largest RTT in µs; `None` when every probe was lost.
    pub rtt_max_us: Option<u64>,
    /// Whether a speed test ran during this minute.
    pub under_load: bool,
}

impl MinuteAggregate {
    /// The share of probes lost, 0.0..=1.0; `None` when none was sent.
    pub(crate) fn loss(&self) -> Option<f64> {
        (self.sent > 0).then(|| f64::from(self.lost) / f64::from(self.sent))
    }
}

/// The start of the minute containing `at`.
pub(crate) fn minute_of(at: Timestamp) -> Timestamp {
    Timestamp::from_millis(at.as_millis() - at.as_millis() % MINUTE_MS)
}

/// Builds one target's [`MinuteAggregate`]s from its probe results, one minute open at a time.
#[derive(Clone, Debug, Default)]
pub(crate) struct MinuteAccumulator {
    open: Option<Open>,
}

#[derive(Clone, Debug)]
struct Open {
    minute: Timestamp,
    sent: u32,
    lost: u32,
    min: Option<u64>,
    max: Option<u64>,
    rtts: Vec<u64>,
    under_load: bool,
}

impl Open {
    fn new(minute: Timestamp) -> Self {
        Open {
            minute,
            sent: 0,
            lost: 0,
            min: None,
            max: None,
            rtts: Vec::new(),
            under_load: false,
        }
    }

    fn finish(mut self) -> MinuteAggregate {
        self.rtts.sort_unstable();
        let median = self
            .rtts
            .len()
            .checked_sub(1)
            .and_then(|last| self.rtts.get(last / 2).copied());
        MinuteAggregate {
            minute: self.minute,
            sent: self.sent,
            lost: self.lost,
            rtt_min_us: self.min,
            rtt_median_us: median,
            rtt_max_us: self.max,
            under_load: self.under_load,
        }
    }
}

impl MinuteAccumulator {
    /// An accumulator with no minute open.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Counts `result`; returns the previous minute when `result` starts a later one.
    pub(crate) fn record(&mut self, result: ProbeResult) -> Option<MinuteAggregate> {
        let finished = self.roll(result.at);
        let open = self
            .open
            .get_or_insert_with(|| Open::new(minute_of(result.at)));
        open.sent = open.sent.saturating_add(1);
        match result.rtt {
            None => open.lost = open.lost.saturating_add(1),
            Some(rtt) => {
                let micros = micros(rtt);
                open.min = Some(open.min.map_or(micros, |min| min.min(micros)));
                open.max = Some(open.max.map_or(micros, |max| max.max(micros)));
                if open.rtts.len() < MAX_RTTS_PER_MINUTE {
                    open.rtts.push(micros);
                }
            }
        }
        finished
    }

    /// Marks the minute containing `at` as under load (a speed test ran then); returns the
    /// previous minute when `at` starts a later one.
    pub(crate) fn mark_under_load(&mut self, at: Timestamp) -> Option<MinuteAggregate> {
        let finished = self.roll(at);
        self.open
            .get_or_insert_with(|| Open::new(minute_of(at)))
            .under_load = true;
        finished
    }

    /// The open minute, finished now (at shutdown, or when a minute must be shown before it
    /// ends); `None` when nothing was recorded since the last one.
    pub(crate) fn flush(&mut self) -> Option<MinuteAggregate> {
        self.open.take().map(Open::finish)
    }

    /// Closes the open minute when `at` lies in a later one.
    fn roll(&mut self, at: Timestamp) -> Option<MinuteAggregate> {
        match &self.open {
            Some(open) if minute_of(at) > open.minute => self.flush(),
            _ => None,
        }
    }
}

fn micros(rtt: Duration) -> u64 {
    u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(ms: u64, rtt_us: Option<u64>) -> ProbeResult {
        ProbeResult {
            at: Timestamp::from_millis(ms),
            rtt: rtt_us.map(Duration::from_micros),
        }
    }

    #[test]
    fn a_minute_of_probes_aggregates_on_the_next_minute() {
        let mut acc = MinuteAccumulator::new();
        let base = 1_700_000_040_000; // a minute boundary
        let rtts = [
            Some(9_000),
            None,
            Some(3_000),
            Some(12_000),
            Some(5_000),
            None,
        ];
        for (i, rtt) in rtts.into_iter().enumerate() {
            assert_eq!(acc.record(probe(base + 10_000 * i as u64, rtt)), None);
        }
        let minute = acc.record(probe(base + 60_000, Some(1_000))).unwrap();
        assert_eq!(minute.minute, Timestamp::from_millis(base));
        assert_eq!((minute.sent, minute.lost), (6, 2));
        assert_eq!(minute.rtt_min_us, Some(3_000));
        // sorted 3000, 5000, 9000, 12000: the lower middle value
        assert_eq!(minute.rtt_median_us, Some(5_000));
        assert_eq!(minute.rtt_max_us, Some(12_000));
        assert!(!minute.under_load);
        assert_eq!(minute.loss(), Some(2.0 / 6.0));
        let next = acc.flush().unwrap();
        assert_eq!(next.minute, Timestamp::from_millis(base + 60_000));
        assert_eq!(
            (next.sent, next.lost, next.rtt_median_us),
            (1, 0, Some(1_000))
        );
        assert_eq!(acc.flush(), None);
    }

    #[test]
    fn all_lost_has_no_rtt_and_under_load_marks_only_its_minute() {
        let mut acc = MinuteAccumulator::new();
        acc.record(probe(120_000, None));
        acc.mark_under_load(Timestamp::from_millis(150_000));
        acc.record(probe(170_000, None));
        let first = acc.record(probe(185_000, Some(2_500))).unwrap();
        assert_eq!((first.sent, first.lost), (2, 2));
        assert_eq!(
            (first.rtt_min_us, first.rtt_median_us, first.rtt_max_us),
            (None, None, None)
        );
        assert!(first.under_load);
        assert!(!acc.flush().unwrap().under_load);
    }

    #[test]
    fn a_clock_step_back_counts_in_the_open_minute() {
        let mut acc = MinuteAccumulator::new();
        acc.record(probe(180_000, Some(1_000)));
        assert_eq!(acc.record(probe(100_000, Some(4_000))), None);
        let minute = acc.flush().unwrap();
        assert_eq!(minute.minute, Timestamp::from_millis(180_000));
        assert_eq!((minute.sent, minute.rtt_max_us), (2, Some(4_000)));
    }

    #[test]
    fn the_median_is_bounded_but_min_max_and_counts_see_everything() {
        let mut acc = MinuteAccumulator::new();
        let n = MAX_RTTS_PER_MINUTE as u64 + 50;
        for i in 0..n {
            acc.record(probe(i, Some(1_000 + i)));
        }
        let minute = acc.flush().unwrap();
        assert_eq!(minute.sent as u64, n);
        assert_eq!(minute.rtt_max_us, Some(1_000 + n - 1));
        assert_eq!(minute.rtt_median_us, Some(1_000 + 299));
    }
}
