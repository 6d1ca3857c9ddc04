//! The HTTP engine's arithmetic, free of I/O: bandwidth from a byte series with its ramp-up
//! left out, median and jitter of latency probes, and how large the next request should be.

use std::time::Duration;

/// The least a direction must move after its ramp-up for its bandwidth to count, in bytes:
/// 64 KiB, a single TCP window. Below it the figure is a handful of packets, and a server that
/// drips a byte a second would otherwise "measure" a few bytes per second as a success.
pub(crate) const MIN_MEASURED_BYTES: u64 = 64 * 1024;

/// The fewest samples (taken every 100 ms) a direction must have after its ramp-up.
pub(crate) const MIN_MEASURED_SAMPLES: usize = 4;

/// One reading of a direction's byte counter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Reading {
    /// Since the direction started.
    pub(crate) elapsed: Duration,
    /// Bytes moved since the direction started, all streams together.
    pub(crate) bytes: u64,
}

/// A direction's bandwidth: bytes after the ramp-up over the time after it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bandwidth {
    /// Bytes per second after the ramp-up.
    pub(crate) bytes_per_second: f64,
    /// Bytes counted after the ramp-up.
    pub(crate) bytes: u64,
    /// The time they took, in seconds.
    pub(crate) seconds: f64,
}

/// Why a byte series gives no bandwidth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TooLittle {
    /// Bytes counted after the ramp-up.
    pub(crate) bytes: u64,
    /// The time after the ramp-up covered by readings, in seconds.
    pub(crate) seconds: f64,
    /// Readings after the ramp-up.
    pub(crate) readings: usize,
}

/// The bandwidth of `series` (readings in time order, counters never going back) leaving out
/// everything before `ramp_up`: from the first reading at or after it to the last reading.
/// Too little data (fewer than [`MIN_MEASURED_SAMPLES`] readings after the ramp-up, under
/// [`MIN_MEASURED_BYTES`], no time) is no figure at all.
///
/// The ramp-up also lasts while the count is unsteady at its end ([`steady_start`]): a count
/// that stood still across the ramp-up's end and then caught up in a burst was waiting for a
/// lost packet's retransmission (TCP hands on, and acknowledges, only data in order), and
/// from a baseline taken in that wait the burst would count bytes that crossed the line before
/// the window as if they crossed in it (20 Mbit/s link, 1 stream: 21.1 Mbit/s read, 1 run in
/// 6 in the accuracy lab, before this).
pub(crate) fn bandwidth(series: &[Reading], ramp_up: Duration) -> Result<Bandwidth, TooLittle> {
    let after: Vec<&Reading> = series.iter().filter(|r| r.elapsed >= ramp_up).collect();
    let after = &after[steady_start(&after)..];
    let (first, last) = match (after.first(), after.last()) {
        (Some(first), Some(last)) => (**first, **last),
        _ => {
            return Err(TooLittle {
                bytes: 0,
                seconds: 0.0,
                readings: 0,
            });
        }
    };
    let bytes = last.bytes.saturating_sub(first.bytes);
    let seconds = last.elapsed.saturating_sub(first.elapsed).as_secs_f64();
    // The first reading is the baseline, so it is not an interval of its own.
    let readings = after.len() - 1;
    if readings < MIN_MEASURED_SAMPLES || bytes < MIN_MEASURED_BYTES || seconds <= 0.0 {
        return Err(TooLittle {
            bytes,
            seconds,
            readings,
        });
    }
    Ok(Bandwidth {
        bytes_per_second: bytes as f64 / seconds,
        bytes,
        seconds,
    })
}

/// How many readings at the head of `after` (the readings from the ramp-up's end on) belong to
/// the ramp-up still: while the first interval's rate is under half or over twice the median
/// interval's rate (a stall, or the burst that ends one), its first reading is left out, as
/// long as the readings left span at least half the time and keep [`MIN_MEASURED_SAMPLES`]
/// intervals. Only the head: a stall and its catch-up both inside the window cancel out.
fn steady_start(after: &[&Reading]) -> usize {
    let rate = |pair: &[&Reading]| -> Option<f64> {
        let seconds = pair[1]
            .elapsed
            .saturating_sub(pair[0].elapsed)
            .as_secs_f64();
        (seconds > 0.0).then(|| pair[1].bytes.saturating_sub(pair[0].bytes) as f64 / seconds)
    };
    let rates: Vec<Option<f64>> = after.windows(2).map(rate).collect();
    let known: Vec<f64> = rates.iter().flatten().copied().collect();
    let (Some(typical), Some(first), Some(last)) = (median(&known), after.first(), after.last())
    else {
        return 0;
    };
    if typical <= 0.0 {
        return 0;
    }
    let span = last.elapsed.saturating_sub(first.elapsed);
    let mut start = 0;
    for interval in &rates {
        let unsteady = interval.is_none_or(|r| r < typical / 2.0 || r > typical * 2.0);
        let next = start + 1;
        let keeps_enough = after.len() - next > MIN_MEASURED_SAMPLES
            && last.elapsed.saturating_sub(after[next].elapsed) * 2 >= span;
        if !unsteady || !keeps_enough {
            break;
        }
        start = next;
    }
    start
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Jitter: the mean absolute difference of consecutive latencies, in the order measured;
/// `None` with fewer than two.
pub(crate) fn jitter(latencies: &[f64]) -> Option<f64> {
    if latencies.len() < 2 {
        return None;
    }
    let total: f64 = latencies.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
    Some(total / (latencies.len() - 1) as f64)
}

/// A probe's latency: the round trip less the time the server says it spent (`Server-Timing`);
/// in seconds. A server time that is not a finite, non-negative number, or longer than the
/// round trip it is part of (which cannot be: a lie or a broken clock), is ignored, so a
/// server cannot make the latency zero.
pub(crate) fn net_latency(round_trip: Duration, server_seconds: Option<f64>) -> f64 {
    let rtt = round_trip.as_secs_f64();
    match server_seconds {
        Some(server) if server.is_finite() && server >= 0.0 && server <= rtt => rtt - server,
        _ => rtt,
    }
}

/// How long each request should last: long enough that the gap between requests (a round
/// trip, in which the connection carries nothing) is a small part of it (2 % at 20 ms), short
/// enough that the sizes follow the line.
pub(crate) const REQUEST_TARGET: Duration = Duration::from_secs(1);

/// The size of a connection's next request, in bytes: what the last one (`bytes` in `took`)
/// would move in [`REQUEST_TARGET`], growing at most eightfold per request, within
/// `min..=max`.
pub(crate) fn next_request_size(bytes: u64, took: Duration, min: u64, max: u64) -> u64 {
    let seconds = took.as_secs_f64().max(1e-3);
    let rate = bytes as f64 / seconds;
    let wanted = rate * REQUEST_TARGET.as_secs_f64();
    let grown = (bytes.max(min) as f64) * 8.0;
    // `as` saturates, and NaN cannot arise: seconds is positive.
    let size = wanted.min(grown) as u64;
    size.clamp(min, max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(step_ms: u64, per_step: &[u64]) -> Vec<Reading> {
        let mut total = 0;
        let mut out = vec![Reading {
            elapsed: Duration::ZERO,
            bytes: 0,
        }];
        for (i, bytes) in per_step.iter().enumerate() {
            total += bytes;
            out.push(Reading {
                elapsed: Duration::from_millis(step_ms * (i as u64 + 1)),
                bytes: total,
            });
        }
        out
    }

    #[test]
    fn bandwidth_leaves_the_ramp_up_out() {
        // Slow start: little in the first 400 ms, then 1 MB per 100 ms.
        let mut steps = vec![1_000, 10_000, 100_000, 500_000];
        steps.extend([1_000_000; 16]);
        let got = bandwidth(&series(100, &steps), Duration::from_millis(400)).unwrap();
        assert_eq!(got.bytes, 16_000_000);
        assert!((got.seconds - 1.6).abs() < 1e-9);
        assert!((got.bytes_per_second - 10_000_000.0).abs() < 1e-3);
    }

    /// Readings every 100 ms from `(elapsed ms, bytes)` pairs.
    fn readings(pairs: &[(u64, u64)]) -> Vec<Reading> {
        pairs
            .iter()
            .map(|&(ms, bytes)| Reading {
                elapsed: Duration::from_millis(ms),
                bytes,
            })
            .collect()
    }

    #[test]
    fn a_stall_across_the_ramp_ups_end_is_ramp_up_still() {
        // The accuracy lab, 20 Mbit/s, 1 stream downloading for 4 s (ramp-up 0.8 s): a loss
        // in slow start held the count from 0.6 to 0.9 s, then the retransmission let 1.27 MB
        // through at once. From the baseline at 0.8 s that read 21.1 Mbit/s.
        let mut pairs = vec![
            (0, 0),
            (501, 1_082_233),
            (601, 1_140_153),
            (701, 1_157_529),
            (800, 1_157_529),
            (901, 1_158_977),
            (1001, 2_431_769),
        ];
        // Then 19.1 Mbit/s: 238,750 bytes per 100 ms.
        pairs.extend((1..=30).map(|i| (1001 + 100 * i, 2_431_769 + 238_750 * i)));
        let got = bandwidth(&readings(&pairs), Duration::from_millis(800)).unwrap();
        let mbit = got.bytes_per_second * 8.0 / 1e6;
        assert!((mbit - 19.1).abs() < 0.05, "{mbit} Mbit/s from {got:?}");
        assert!((got.seconds - 3.0).abs() < 1e-9, "{got:?}");
    }

    #[test]
    fn an_unsteady_window_is_cut_by_half_at_most() {
        // Every interval alternates stall and burst: nothing is steady, so the head gives up
        // no more than half the window, and keeps its samples.
        let mut pairs = vec![(0, 0)];
        let mut bytes = 0;
        for i in 1..=20 {
            bytes += if i % 2 == 0 { 1_000_000 } else { 10_000 };
            pairs.push((100 * i, bytes));
        }
        let got = bandwidth(&readings(&pairs), Duration::from_millis(400)).unwrap();
        assert!(got.seconds >= 0.8 - 1e-9, "{got:?}");
        // A steady count is left alone: the baseline is the ramp-up's end.
        let steady: Vec<(u64, u64)> = (0..=20).map(|i| (100 * i, 250_000 * i)).collect();
        let got = bandwidth(&readings(&steady), Duration::from_millis(400)).unwrap();
        assert!((got.seconds - 1.6).abs() < 1e-9, "{got:?}");
    }

    #[test]
    fn bandwidth_uses_the_real_reading_times() {
        // Readings late by a scheduler hiccup: bytes over the times they were read at.
        let readings = vec![
            Reading {
                elapsed: Duration::ZERO,
                bytes: 0,
            },
            Reading {
                elapsed: Duration::from_millis(210),
                bytes: 2_000_000,
            },
            Reading {
                elapsed: Duration::from_millis(330),
                bytes: 3_000_000,
            },
            Reading {
                elapsed: Duration::from_millis(400),
                bytes: 4_000_000,
            },
            Reading {
                elapsed: Duration::from_millis(520),
                bytes: 5_000_000,
            },
            Reading {
                elapsed: Duration::from_millis(710),
                bytes: 7_000_000,
            },
        ];
        let got = bandwidth(&readings, Duration::from_millis(200)).unwrap();
        assert_eq!(got.bytes, 5_000_000);
        assert!((got.seconds - 0.5).abs() < 1e-9);
        assert!((got.bytes_per_second - 10_000_000.0).abs() < 1e-3);
    }

    #[test]
    fn too_little_data_is_no_figure() {
        // A byte a second: a success would claim a few B/s.
        let drip = series(
            100,
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        let err = bandwidth(&drip, Duration::from_millis(400)).unwrap_err();
        assert_eq!(err.bytes, 2);
        assert_eq!(err.readings, 16);
        // Plenty of bytes, but all within the ramp-up.
        let early = series(100, &[10_000_000, 0, 0, 0, 0]);
        assert!(bandwidth(&early, Duration::from_millis(100)).is_err());
        // Too few readings after the ramp-up.
        let short = series(100, &[1_000_000; 5]);
        assert_eq!(
            bandwidth(&short, Duration::from_millis(200))
                .unwrap_err()
                .readings,
            3
        );
        assert!(bandwidth(&[], Duration::ZERO).is_err());
    }

    #[test]
    fn median_and_jitter() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
        assert_eq!(jitter(&[1.0]), None);
        // |12-10| + |11-12| + |15-11| = 7 over 3 differences.
        let j = jitter(&[10.0, 12.0, 11.0, 15.0]).unwrap();
        assert!((j - 7.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn net_latency_subtracts_the_servers_time() {
        let rtt = Duration::from_millis(20);
        assert!((net_latency(rtt, Some(0.005)) - 0.015).abs() < 1e-12);
        // More than the whole round trip cannot be: the claim is ignored, not a latency of 0.
        assert!((net_latency(rtt, Some(0.5)) - 0.02).abs() < 1e-12);
        assert!((net_latency(rtt, Some(1e308)) - 0.02).abs() < 1e-12);
        assert_eq!(net_latency(rtt, Some(0.02)), 0.0);
        assert!((net_latency(rtt, None) - 0.02).abs() < 1e-12);
        assert!((net_latency(rtt, Some(f64::NAN)) - 0.02).abs() < 1e-12);
    }

    #[test]
    fn request_sizes_follow_the_line_within_bounds() {
        // 1 MB in 200 ms: 5 MB/s, 5 MB in the one-second target.
        assert_eq!(
            next_request_size(1_000_000, Duration::from_millis(200), 100_000, 50_000_000),
            5_000_000
        );
        // 1 MB in 100 ms: 10 MB/s, but at most eight times 1 MB.
        assert_eq!(
            next_request_size(1_000_000, Duration::from_millis(100), 100_000, 50_000_000),
            8_000_000
        );
        // A fast line grows eightfold per request, then stops at the cap.
        assert_eq!(
            next_request_size(100_000, Duration::from_millis(1), 100_000, 50_000_000),
            800_000
        );
        assert_eq!(
            next_request_size(40_000_000, Duration::from_millis(10), 100_000, 50_000_000),
            50_000_000
        );
        // A slow line never goes below the floor; a zero time does not divide by zero.
        assert_eq!(
            next_request_size(1_000, Duration::from_secs(10), 100_000, 50_000_000),
            100_000
        );
        assert_eq!(
            next_request_size(1_000, Duration::ZERO, 100_000, 50_000_000),
            800_000
        );
    }
}
