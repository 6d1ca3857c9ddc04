//! The history: steps and buckets, plan versions, gaps, failures, the heatmap and refreshes.

use super::*;
use crate::sample::Trigger;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
/// 2026-11-30T00:00:00Z, a Monday.
const T0: u64 = 1_795_996_800_000;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn success(ms: u64, download: f64) -> Sample {
    Sample {
        download_bytes_per_second: Some(download),
        upload_bytes_per_second: Some(download / 10.0),
        ping_seconds: Some(0.012_345_6),
        jitter_seconds: Some(0.001),
        download_latency_seconds: None,
        upload_latency_seconds: Some(0.05),
        ..Sample::empty(at(ms), Trigger::Schedule)
    }
}

fn failure(ms: u64, reason: FailureReason, message: &str) -> Sample {
    Sample::failure(at(ms), Trigger::Schedule, reason, message)
}

fn columns(samples: &[Sample]) -> Columns {
    Columns::from_samples(samples)
}

#[test]
fn the_step_is_the_smallest_rung_that_fits() {
    assert_eq!(step_seconds(DAY, 600), 300, "1440 minutes / 600 → 5 min");
    assert_eq!(
        step_seconds(600 * MINUTE, 600),
        60,
        "exactly 600 one-minute buckets"
    );
    assert_eq!(step_seconds(600 * MINUTE + 1, 600), 120);
    assert_eq!(step_seconds(DAY, 10), 10_800, "8640 s → 3 h");
    assert_eq!(
        step_seconds(5 * 365 * DAY, 600),
        604_800,
        "five years → a week"
    );
    assert_eq!(
        step_seconds(365 * DAY, 10),
        2 * 2_592_000,
        "past 30 d: doubled"
    );
    assert_eq!(step_seconds(0, 600), 60);
    let huge = step_seconds(8000 * 365 * DAY, 10);
    assert!((8000 * 365 * DAY).div_ceil(huge * 1000) <= 10);
}

#[test]
fn buckets_are_aligned_to_the_epoch_and_hold_min_median_max() {
    // 5-minute buckets: 00:04:59 and 00:05:00 fall apart.
    let samples = [
        success(T0 + 4 * MINUTE + 59_000, 100.0),
        success(T0 + 5 * MINUTE, 100.0),
        success(T0 + 6 * MINUTE, 200.0),
        success(T0 + 7 * MINUTE, 300.0),
        success(T0 + 8 * MINUTE, 1001.0),
    ];
    let series = series(
        &columns(&samples),
        at(T0 + 3 * MINUTE),
        at(T0 + DAY),
        600,
        &PlanHistory::default(),
    );
    assert_eq!(series.step_seconds, 300);
    assert_eq!(series.time, vec![T0 / 1000, (T0 + 5 * MINUTE) / 1000]);
    assert_eq!(series.count, vec![1, 4]);
    let download = &series.download_bytes_per_second;
    assert_eq!(download.min, vec![Some(100), Some(100)]);
    // Even count: the mean of 200 and 300.
    assert_eq!(download.median, vec![Some(100), Some(250)]);
    assert_eq!(download.max, vec![Some(100), Some(1001)]);
    assert_eq!(
        series.ping_seconds.median,
        vec![Some(0.012_346), Some(0.012_346)]
    );
    assert_eq!(series.download_latency_seconds.median, vec![None, None]);
    assert_eq!(series.runs.success, 5);
}

fn version(ms: u64, download: &str, threshold: f64) -> crate::plan::PlanVersion {
    crate::plan::PlanVersion {
        from: at(ms),
        download: crate::plan::Speeds::advertised(Some(download.parse().unwrap())),
        upload: crate::plan::Speeds::default(),
        latency_max: None,
        threshold,
    }
}

#[test]
fn the_series_lists_the_plan_versions_of_its_range_clipped_to_it() {
    let mut same_speeds = version(T0 + 6 * HOUR, "100Mbit/s", 0.8);
    same_speeds.download.minimum = Some("10Mbit/s".parse().unwrap());
    let plans = PlanHistory::new(vec![
        version(T0 - DAY, "50Mbit/s", 0.8),
        version(T0 + 2 * HOUR, "100Mbit/s", 0.8),
        // Judges as the one before: the same step.
        same_speeds,
        version(T0 + 12 * HOUR, "100Mbit/s", 0.9),
        version(T0 + 2 * DAY, "500Mbit/s", 0.8),
    ]);
    let samples = [success(T0 + HOUR, 1.0)];
    let series = series(&columns(&samples), at(T0), at(T0 + DAY), 600, &plans);
    let steps: Vec<_> = series
        .plans
        .iter()
        .map(|s| {
            (
                s.from.as_millis(),
                s.to.map(Timestamp::as_millis),
                s.download_bytes_per_second,
                s.threshold,
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            // In force since before the range: from its start.
            (T0, Some(T0 + 2 * HOUR), Some(6_250_000.0), 0.8),
            (T0 + 2 * HOUR, Some(T0 + 12 * HOUR), Some(12_500_000.0), 0.8),
            // Still in force at the end (the next version starts after it).
            (T0 + 12 * HOUR, None, Some(12_500_000.0), 0.9),
        ]
    );
    assert_eq!(series.plans[0].upload_bytes_per_second, None);
    // `plan`: the version in force at the range's end.
    assert_eq!(series.plan.unwrap().threshold, 0.9);
    // A range before the first version, and one ending exactly where a version starts.
    let before = super::series(&columns(&samples), at(0), at(T0 - DAY), 600, &plans);
    assert!(before.plans.is_empty() && before.plan.is_none());
    let up_to = super::series(
        &columns(&samples),
        at(T0 + HOUR),
        at(T0 + 2 * HOUR),
        600,
        &plans,
    );
    assert_eq!(up_to.plans.len(), 1);
    assert_eq!(up_to.plans[0].to, None);
    assert_eq!(
        up_to.plan.unwrap().download_bytes_per_second,
        Some(6_250_000.0)
    );
    // Starting inside the range after a time without a plan: the step starts at the version.
    let later = PlanHistory::new(vec![version(T0 + 3 * HOUR, "100Mbit/s", 0.8)]);
    let series = super::series(&columns(&samples), at(T0), at(T0 + DAY), 600, &later);
    assert_eq!(series.plans.len(), 1);
    assert_eq!(series.plans[0].from, at(T0 + 3 * HOUR));
}

#[test]
fn a_range_excludes_its_end_and_counts_every_outcome() {
    let mut samples = vec![
        success(T0, 1.0),
        failure(T0 + HOUR, FailureReason::Timeout, "t"),
    ];
    samples.push(Sample {
        outcome: Outcome::Skipped,
        reason: Some(FailureReason::DataBudget),
        ..Sample::empty(at(T0 + 2 * HOUR), Trigger::Schedule)
    });
    samples.push(success(T0 + 3 * HOUR, 1.0));
    let series = series(
        &columns(&samples),
        at(T0),
        at(T0 + 3 * HOUR),
        600,
        &PlanHistory::default(),
    );
    assert_eq!(
        series.runs,
        RunCounts {
            total: 3,
            success: 1,
            failure: 1,
            skipped: 1
        }
    );
    assert_eq!(series.time.len(), 1);
}

#[test]
fn a_hole_longer_than_the_gap_rule_gets_a_null_entry() {
    // Every 30 minutes, with no run from 06:00 to 12:00.
    let samples: Vec<Sample> = (0..48)
        .map(|i| T0 + i * 30 * MINUTE)
        .filter(|&t| !(T0 + 6 * HOUR..T0 + 12 * HOUR).contains(&t))
        .map(|t| success(t, 1000.0))
        .collect();
    let series = series(
        &columns(&samples),
        at(T0),
        at(T0 + DAY),
        600,
        &PlanHistory::default(),
    );
    let gaps: Vec<usize> = (0..series.time.len())
        .filter(|&i| series.count[i] == 0)
        .collect();
    assert_eq!(gaps.len(), 1, "one gap entry: {:?}", series.count);
    let gap = gaps[0];
    // Between the 05:30 bucket (ending 05:35) and the 12:00 one.
    assert_eq!(series.time[gap - 1], (T0 + 5 * HOUR + 30 * MINUTE) / 1000);
    assert_eq!(series.time[gap + 1], (T0 + 12 * HOUR) / 1000);
    assert_eq!(
        series.time[gap],
        (T0 + 5 * HOUR + 35 * MINUTE + T0 + 12 * HOUR) / 2000
    );
    assert_eq!(series.download_bytes_per_second.median[gap], None);
    assert_eq!(series.ping_seconds.max[gap], None);
    for band in [
        &series.download_bytes_per_second,
        &series.upload_bytes_per_second,
    ] {
        assert_eq!(band.min.len(), series.time.len());
    }
    // Two missed runs (90 minutes apart) is within 3 × 30 min: no gap.
    let regular: Vec<Sample> = [0, 30, 60, 150, 180]
        .map(|m| success(T0 + m * MINUTE, 1.0))
        .to_vec();
    let series = super::series(
        &columns(&regular),
        at(T0),
        at(T0 + DAY),
        600,
        &PlanHistory::default(),
    );
    assert!(series.count.iter().all(|&c| c > 0), "{:?}", series.count);
}

#[test]
fn failures_are_listed_one_each_up_to_the_cap_then_grouped() {
    let reasons = [FailureReason::Timeout, FailureReason::NoConnectivity];
    let make = |n: u64| -> Vec<Sample> {
        (0..n)
            .map(|i| {
                failure(
                    T0 + i * MINUTE,
                    reasons[(i % 3 == 0) as usize],
                    &format!("m{i}"),
                )
            })
            .collect()
    };
    let few = make(MAX_FAILURE_MARKERS as u64);
    let series = series(
        &columns(&few),
        at(T0),
        at(T0 + DAY),
        600,
        &PlanHistory::default(),
    );
    assert!(!series.failures_grouped);
    assert_eq!(series.failures.len(), MAX_FAILURE_MARKERS);
    let first = &series.failures[0];
    assert_eq!(
        (
            first.time,
            first.count,
            first.reason,
            first.message.as_deref()
        ),
        (T0 / 1000, 1, Some("no_connectivity"), Some("m0"))
    );
    assert_eq!(first.reasons, BTreeMap::from([("no_connectivity", 1)]));

    let many = make(MAX_FAILURE_MARKERS as u64 + 1);
    let series = super::series(
        &columns(&many),
        at(T0),
        at(T0 + DAY),
        600,
        &PlanHistory::default(),
    );
    assert!(series.failures_grouped);
    assert_eq!(series.step_seconds, 300);
    assert_eq!(series.failures.len(), (MAX_FAILURE_MARKERS + 1).div_ceil(5));
    let total: u32 = series.failures.iter().map(|f| f.count).sum();
    assert_eq!(total as usize, MAX_FAILURE_MARKERS + 1);
    // The first bucket: minutes 0–4, no_connectivity at 0 and 3, timeout at 1, 2, 4.
    let group = &series.failures[0];
    assert_eq!(group.time, T0 / 1000);
    assert_eq!(group.count, 5);
    assert_eq!(group.reason, Some("timeout"));
    assert_eq!(group.message.as_deref(), Some("m4"), "the newest message");
    assert_eq!(
        group.reasons,
        BTreeMap::from([("no_connectivity", 2), ("timeout", 3)])
    );
    assert!(series.time.is_empty(), "no successes, no buckets");
}

#[test]
fn messages_are_clipped_as_json_and_lose_control_characters() {
    let json_len = |m: &str| serde_json::to_string(m).unwrap().len() - 2;
    let long = "é".repeat(200);
    let clipped = clip_message(&long);
    assert!(json_len(&clipped) <= MESSAGE_BYTES && clipped.ends_with('…'));
    let quoted = "\"\\".repeat(100);
    let clipped = clip_message(&quoted);
    assert!(
        json_len(&clipped) <= MESSAGE_BYTES,
        "{}",
        json_len(&clipped)
    );
    assert!(json_len(&clipped) >= MESSAGE_BYTES - 4);
    assert_eq!(clip_message("a\nb\u{1}c"), "a b c");
    let controls = "\u{1}".repeat(500);
    assert!(json_len(&clip_message(&controls)) <= MESSAGE_BYTES);
    assert_eq!(clip_message("short"), "short");
}

#[test]
fn median_spacing_of_even_and_odd_counts() {
    assert_eq!(median_spacing(&[]), 0);
    assert_eq!(median_spacing(&[5]), 0);
    assert_eq!(median_spacing(&[0, 10, 30]), 15, "gaps 10 and 20");
    assert_eq!(median_spacing(&[0, 10, 30, 31]), 10, "gaps 10, 20, 1");
}

/// 2026-03-23T00:00:00Z, the Monday of the week Berlin moves to summer time (Sunday
/// 2026-03-29, 02:00 CET → 03:00 CEST).
const DST_WEEK: u64 = 1_774_224_000_000;

#[test]
fn the_heatmap_follows_daylight_saving_time_monday_first() {
    let samples: Vec<Sample> = (0..7 * 24)
        .map(|h| success(DST_WEEK + h * HOUR + 30 * MINUTE, 1000.0 + h as f64))
        .collect();
    let zone = jiff::tz::db().get("Europe/Berlin").unwrap();
    let plans = PlanHistory::constant(Plan {
        download: Some(crate::units::Bandwidth::from_bytes_per_second(2000.0)),
        upload: None,
        threshold: 0.8,
    });
    let map = heatmap(
        &columns(&samples),
        at(DST_WEEK),
        at(DST_WEEK + 7 * DAY),
        &zone,
        "Europe/Berlin",
        Metric::Download,
        &plans,
    );
    assert_eq!(map.weekdays[0], "monday");
    assert_eq!(map.median.len(), 7);
    assert!(map.median.iter().all(|row| row.len() == 24));
    // Monday 00:30Z is 01:30 CET: Monday, hour 1; so is the next Monday's 01:30 CEST
    // (Sunday 23:30Z, the week's last run): an even count, the mean of the two.
    assert_eq!(map.runs[0][1], 2);
    assert_eq!(
        map.median[0][1],
        Some(((1000.0 + 1167.0) / 2.0_f64).round())
    );
    // Sunday 22:30Z is 00:30 CEST next Monday: Monday's hour 0.
    assert_eq!((map.median[0][0], map.runs[0][0]), (Some(1166.0), 1));
    // Tuesday 10:30Z is 11:30 CET.
    assert_eq!(map.median[1][11], Some(1000.0 + 24.0 + 10.0));
    // Sunday (index 6): 00:30Z → 01:30 CET, 01:30Z → 03:30 CEST; local 02:xx never was.
    let sunday = 6 * 24;
    assert_eq!(map.median[6][1], Some(1000.0 + (sunday) as f64));
    assert_eq!((map.median[6][2], map.runs[6][2]), (None, 0));
    assert_eq!(map.median[6][3], Some(1000.0 + (sunday + 1) as f64));
    let total: u32 = map.runs.iter().flatten().sum();
    assert_eq!(total, 7 * 24);
    let share = map.share_of_plan.unwrap();
    assert_eq!(share[1][11], Some(0.517), "1034 / 2000");
    assert_eq!(share[6][2], None);
    let upload = heatmap(
        &columns(&samples),
        at(DST_WEEK),
        at(DST_WEEK + 7 * DAY),
        &zone,
        "Europe/Berlin",
        Metric::Upload,
        &plans,
    );
    assert_eq!(upload.share_of_plan, None, "no upload plan");
    let ping = heatmap(
        &columns(&samples),
        at(DST_WEEK),
        at(DST_WEEK + 7 * DAY),
        &TimeZone::UTC,
        "UTC",
        Metric::Ping,
        &PlanHistory::default(),
    );
    assert_eq!(ping.unit, "seconds");
    assert_eq!(ping.median[0][0], Some(0.012_346));
    assert_eq!(ping.runs.iter().flatten().sum::<u32>(), 7 * 24);
}

#[test]
fn the_share_of_plan_judges_each_run_by_the_version_in_force_at_its_time() {
    // Mondays 10:30 UTC: before any plan, under 100 Mbit/s (12.5 MB/s), twice under
    // 200 Mbit/s (25 MB/s); and Monday 11:30 before any plan only.
    let week = 7 * DAY;
    let samples = [
        success(T0 - week + 10 * HOUR + 30 * MINUTE, 1_000_000.0),
        success(T0 - week + 11 * HOUR + 30 * MINUTE, 2_000_000.0),
        success(T0 + 10 * HOUR + 30 * MINUTE, 6_250_000.0), // 0.5 of 12.5 MB/s
        success(T0 + week + 10 * HOUR + 30 * MINUTE, 20_000_000.0), // 0.8 of 25 MB/s
        success(T0 + 2 * week + 10 * HOUR + 30 * MINUTE, 11_250_000.0), // 0.45 of 25 MB/s
    ];
    let plans = PlanHistory::new(vec![
        version(T0, "100Mbit/s", 0.8),
        version(T0 + week, "200Mbit/s", 0.8),
    ]);
    let map = heatmap(
        &columns(&samples),
        at(T0 - week),
        at(T0 + 3 * week),
        &TimeZone::UTC,
        "UTC",
        Metric::Download,
        &plans,
    );
    // Every run counts in the median: 1.0, 6.25, 11.25, 20 MB/s → (6.25 + 11.25) / 2.
    assert_eq!(map.runs[0][10], 4);
    assert_eq!(map.median[0][10], Some(8_750_000.0));
    let share = map.share_of_plan.expect("a download plan in the range");
    // The three judged runs: median of 0.5, 0.8 and 0.45 (today's plan alone would say
    // 8.75 / 25 = 0.35, and count the run before any plan).
    assert_eq!(share[0][10], Some(0.5));
    // Runs before the first version are left out of the share, not of the median.
    assert_eq!(map.median[0][11], Some(2_000_000.0));
    assert_eq!(share[0][11], None);
    assert_eq!(
        map.plan.unwrap().download_bytes_per_second,
        Some(25_000_000.0),
        "plan: the version in force at the range's end"
    );
    // No version judges upload; a range before the first version judges nothing.
    let upload = heatmap(
        &columns(&samples),
        at(T0 - week),
        at(T0 + 3 * week),
        &TimeZone::UTC,
        "UTC",
        Metric::Upload,
        &plans,
    );
    assert_eq!(upload.share_of_plan, None);
    let before = heatmap(
        &columns(&samples),
        at(T0 - week),
        at(T0),
        &TimeZone::UTC,
        "UTC",
        Metric::Download,
        &plans,
    );
    assert_eq!((before.share_of_plan, before.plan), (None, None));
}

#[test]
fn a_refresh_reads_what_was_added_and_drops_what_was_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("samples.redb")).unwrap();
    let run = |i: u64| {
        let time = T0 + i * 30 * MINUTE;
        match i % 7 {
            3 => failure(time, FailureReason::Timeout, &format!("run {i}")),
            5 => Sample {
                outcome: Outcome::Skipped,
                reason: Some(FailureReason::DataBudget),
                message: Some("budget".into()),
                ..Sample::empty(at(time), Trigger::Schedule)
            },
            _ => success(time, 1000.0 + i as f64),
        }
    };
    let same = |a: &Columns, b: &Columns| format!("{a:?}") == format!("{b:?}");
    let empty = Columns::build(&store).unwrap();
    for i in 0..40 {
        store.append(&run(i)).unwrap();
    }
    let first = Columns::refresh(&empty, &store).unwrap();
    assert_eq!(first.len(), 40);
    assert!(same(&first, &Columns::build(&store).unwrap()));
    // Appended runs, and retention deleting the oldest ten.
    for i in 40..50 {
        store.append(&run(i)).unwrap();
    }
    store.delete_before(at(T0 + 10 * 30 * MINUTE), 100).unwrap();
    let next = Columns::refresh(&first, &store).unwrap();
    assert_eq!(next.len(), 40);
    assert!(same(&next, &Columns::build(&store).unwrap()), "{next:?}");
    assert_eq!(next.time.capacity(), next.time.len(), "exact allocations");
    // A run stored before the newest (the clock was set back): read in full again.
    store
        .append(&success(T0 + 20 * 30 * MINUTE + MINUTE, 5.0))
        .unwrap();
    let again = Columns::refresh(&next, &store).unwrap();
    assert_eq!(again.len(), 41);
    assert!(same(&again, &Columns::build(&store).unwrap()));
    // Nothing changed: the same columns.
    assert!(same(&Columns::refresh(&again, &store).unwrap(), &again));
}

/// Five years of 30-minute runs, every 50th a failure with its own long message (quotes
/// to double its escaped length), plus `extra` failures.
fn five_years(failure_every: u64) -> Vec<Sample> {
    let runs = 5 * 365 * 48;
    (0..runs)
        .map(|i| {
            let time = T0 - 5 * 365 * DAY + i * 30 * MINUTE;
            if i % failure_every == 0 {
                let message = format!("{i} \"{}\"", "x\\\"y".repeat(60));
                failure(time, FailureReason::ALL[(i % 8) as usize], &message)
            } else {
                Sample {
                    download_latency_seconds: Some(0.123_456_7),
                    ..success(time, 123_456_789.123 + i as f64)
                }
            }
        })
        .collect()
}

#[test]
fn worst_case_series_fits_the_budget() {
    const BUDGET: usize = 200_000;
    // 2 % failures, grouped: five years at the default points.
    let columns = columns(&five_years(50));
    let from = at(T0 - 5 * 365 * DAY);
    let series = series(
        &columns,
        from,
        at(T0),
        DEFAULT_POINTS,
        &PlanHistory::default(),
    );
    assert!(series.failures_grouped);
    let size = serde_json::to_vec(&series).unwrap().len();
    assert!(size <= BUDGET, "five years, 2 % failures: {size} bytes");
    // The most failures listed one by one, each with its own message, in the same range.
    let stop = columns.failures[MAX_FAILURE_MARKERS - 1].time + 1;
    let mut capped = columns.clone();
    capped.failures.retain(|f| f.time < stop);
    let series = super::series(
        &capped,
        from,
        at(T0),
        DEFAULT_POINTS,
        &PlanHistory::default(),
    );
    assert!(!series.failures_grouped);
    let size = serde_json::to_vec(&series).unwrap().len();
    assert!(
        size <= BUDGET,
        "{MAX_FAILURE_MARKERS} single failures: {size} bytes"
    );
    // And a store's most plan versions (1000), each judging other speeds, in the range.
    let versions: Vec<_> = (0..1000u64)
        .map(|i| crate::plan::PlanVersion {
            from: at(T0 - 5 * 365 * DAY + i * DAY),
            download: crate::plan::Speeds::advertised(Some(
                crate::units::Bandwidth::from_bytes_per_second(12_345_678_901.5 - i as f64),
            )),
            upload: crate::plan::Speeds::advertised(Some(
                crate::units::Bandwidth::from_bytes_per_second(1_234_567_890.25),
            )),
            latency_max: None,
            threshold: 0.85,
        })
        .collect();
    let many = PlanHistory::new(versions);
    let series = super::series(&capped, from, at(T0), DEFAULT_POINTS, &many);
    assert_eq!(
        (series.plans.len(), series.plans_omitted),
        (MAX_PLAN_STEPS, 1000 - MAX_PLAN_STEPS)
    );
    assert_eq!(series.plans.last().unwrap().to, None, "the newest are kept");
    let size = serde_json::to_vec(&series).unwrap().len();
    assert!(
        size <= BUDGET,
        "{MAX_FAILURE_MARKERS} single failures and {MAX_PLAN_STEPS} plan versions: {size} bytes"
    );
    // Every bucket with a failure: a failure every 3rd run.
    let columns = super::Columns::from_samples(&five_years(3));
    let series = super::series(
        &columns,
        from,
        at(T0),
        DEFAULT_POINTS,
        &PlanHistory::default(),
    );
    let size = serde_json::to_vec(&series).unwrap().len();
    assert!(size <= BUDGET, "a third failures: {size} bytes");
}
