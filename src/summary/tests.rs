//! The summary: counts, percentiles, plan compliance and the text, from streamed samples.

use std::sync::Arc;

use super::accumulate::nearest_rank;
use super::*;
use crate::plan::Plan;
use crate::sample::{Engine, FailureReason, Outcome, Trigger};

const MINUTE: u64 = 60_000;
/// 2026-11-24T00:00:00.000Z, so the expected times read as round numbers.
const T0: u64 = 1_795_478_400_000;

fn at(minutes: u64) -> Timestamp {
    Timestamp::from_millis(T0 + minutes * MINUTE)
}

fn success(minutes: u64, trigger: Trigger, download_mbit: f64, upload_mbit: f64) -> Sample {
    Sample {
        download_bytes_per_second: Some(download_mbit * 125_000.0),
        upload_bytes_per_second: Some(upload_mbit * 125_000.0),
        ping_seconds: Some(0.010),
        engine: Some(Arc::new(Engine::ookla())),
        ..Sample::empty(at(minutes), trigger)
    }
}

fn failure(minutes: u64, trigger: Trigger, reason: FailureReason) -> Sample {
    Sample {
        engine: Some(Arc::new(Engine::ookla())),
        ..Sample::failure(at(minutes), trigger, reason, "test")
    }
}

fn http() -> Option<Arc<Engine>> {
    Some(Arc::new(Engine::cloudflare_example()))
}

#[test]
fn runs_are_counted_by_engine_and_skipped_runs_by_none() {
    let mut samples = vec![
        success(0, Trigger::Schedule, 90.0, 18.0),
        success(30, Trigger::Schedule, 90.0, 18.0),
        failure(60, Trigger::Schedule, FailureReason::Timeout),
        success(90, Trigger::Schedule, 90.0, 18.0),
        Sample {
            outcome: Outcome::Skipped,
            reason: Some(FailureReason::DataBudget),
            ..Sample::empty(at(120), Trigger::Schedule)
        },
    ];
    samples[1].engine = http();
    samples[2].engine = http();
    samples[3].engine = None;
    let summary = summarize(no_plan(), &samples);
    assert_eq!(
        summary.runs_by_engine,
        EngineCounts {
            ookla: 1,
            http: 2,
            unrecorded: 1
        }
    );
    assert!(
        summary
            .to_text()
            .contains("\nMeasured by: ookla 1, http 2, unrecorded 1\n")
    );
    let none = summarize(no_plan(), &samples[4..]).to_text();
    assert!(!none.contains("Measured by"), "{none}");
}

/// 100 Mbit/s down, 20 up, 80 %: a run meets it from 80 down and 16 up.
fn plan() -> Plan {
    Plan {
        download: Some("100Mbit/s".parse().unwrap()),
        upload: Some("20Mbit/s".parse().unwrap()),
        threshold: 0.8,
    }
}

fn no_plan() -> Plan {
    Plan {
        download: None,
        upload: None,
        threshold: 0.8,
    }
}

fn summarize(plan: Plan, samples: &[Sample]) -> Summary {
    let mut summarizer = Summarizer::new(plan);
    for sample in samples {
        summarizer.add(sample);
    }
    summarizer.finish(at(0), at(24 * 60))
}

#[test]
fn each_run_is_judged_by_the_version_in_force_at_its_time() {
    use crate::plan::{PlanHistory, PlanVersion};
    let version = |minute: u64, plan: Plan| PlanVersion::from_flags(plan, at(minute)).unwrap();
    let doubled = Plan {
        download: Some("200Mbit/s".parse().unwrap()),
        ..plan()
    };
    let history = PlanHistory::new(vec![version(10, plan()), version(20, doubled)]);
    let samples = [
        success(5, Trigger::Schedule, 1.0, 20.0), // before any version: not judged
        success(10, Trigger::Schedule, 85.0, 20.0), // 100 Mbit/s: met
        success(19, Trigger::Schedule, 70.0, 20.0), // 100 Mbit/s: breach
        success(20, Trigger::Schedule, 150.0, 20.0), // 200 Mbit/s: breach
        success(30, Trigger::Schedule, 160.0, 20.0), // 200 Mbit/s: met (exactly 80 %)
    ];
    let mut summarizer = Summarizer::new(history);
    for sample in &samples {
        summarizer.add(sample);
    }
    let judged = summarizer.finish(at(0), at(60)).plan.unwrap();
    assert_eq!(
        (judged.measurements, judged.met, judged.breaches),
        (4, 2, 2)
    );
    assert_eq!(judged.download_bytes_per_second, Some(25_000_000.0));
    assert_eq!(judged.longest_below.unwrap().measurements, 2);
    assert_eq!(judged.plan_versions, 2);
    // A version stored after the window's last run judged none of it: the plan shown is
    // the one that judged its runs, not one its figures were never compared with.
    let mut later = Summarizer::new(PlanHistory::new(vec![
        version(10, plan()),
        version(40, doubled),
    ]));
    later.add(&samples[1]);
    let shown = later.finish(at(0), at(60)).plan.unwrap();
    assert_eq!(shown.download_bytes_per_second, Some(12_500_000.0));
    assert_eq!(
        (shown.measurements, shown.met, shown.plan_versions),
        (1, 1, 1)
    );
    // With no run judged, the newest version in force in the window is shown.
    let unjudged = Summarizer::new(PlanHistory::new(vec![
        version(10, plan()),
        version(40, doubled),
    ]));
    let shown = unjudged.finish(at(0), at(60)).plan.unwrap();
    assert_eq!(shown.download_bytes_per_second, Some(25_000_000.0));
    assert_eq!(shown.measurements, 0);
    // A window wholly before the first version has no plan section.
    let before = Summarizer::new(PlanHistory::new(vec![version(10, plan())]));
    assert_eq!(before.finish(at(0), at(10)).plan, None);
}

#[test]
fn one_figure_per_pass_gives_the_one_pass_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut samples: Vec<Sample> = (0..ONE_PASS_VALUES as u64 + 200)
        .map(|i| {
            let mut sample = success(
                i,
                Trigger::Schedule,
                50.0 + (i * 37 % 101) as f64,
                10.0 + (i * 13 % 17) as f64,
            );
            sample.ping_seconds = Some(0.001 * (i * 7 % 23) as f64);
            sample
        })
        .collect();
    samples.push(failure(
        ONE_PASS_VALUES as u64 + 300,
        Trigger::Schedule,
        FailureReason::Timeout,
    ));
    store
        .import(samples.iter().cloned().map(Ok::<_, StoreError>))
        .unwrap();
    let (from, to) = (at(0), at(ONE_PASS_VALUES as u64 + 400));
    let stored = super::summarize(&store, plan(), from, to).unwrap();
    let mut summarizer = Summarizer::new(plan());
    for sample in &samples {
        summarizer.add(sample);
    }
    assert_eq!(stored, summarizer.finish(from, to));
    assert!(stored.upload_bytes_per_second.is_some() && stored.ping_seconds.is_some());
}

/// A scheduled run every hour: `true` meets the plan, `false` is below it.
fn hourly(pattern: &[bool]) -> Vec<Sample> {
    pattern
        .iter()
        .enumerate()
        .map(|(i, &met)| {
            let down = if met { 90.0 } else { 50.0 };
            success(i as u64 * 60, Trigger::Schedule, down, 18.0)
        })
        .collect()
}

#[test]
fn nearest_rank_percentiles_of_twenty_values() {
    // 1..=20 Mbit/s, shuffled: the order of arrival must not matter.
    let order = [
        7, 19, 3, 12, 20, 1, 15, 9, 4, 17, 11, 2, 14, 6, 18, 10, 5, 16, 8, 13,
    ];
    let samples: Vec<Sample> = order
        .iter()
        .enumerate()
        .map(|(i, &mbit)| success(i as u64, Trigger::Schedule, mbit as f64, 1.0))
        .collect();
    let summary = summarize(no_plan(), &samples);
    // n = 20: p5 → rank ceil(1) = 1, p50 → rank 10, p95 → rank ceil(19) = 19.
    let bytes = |mbit: f64| mbit * 125_000.0;
    assert_eq!(
        summary.download_bytes_per_second,
        Some(Percentiles {
            min: bytes(1.0),
            p5: bytes(1.0),
            p50: bytes(10.0),
            p95: bytes(19.0),
            max: bytes(20.0),
        })
    );
}

#[test]
fn nearest_rank_percentiles_of_seven_values() {
    let mut sorted = vec![50.0, 10.0, 40.0, 20.0, 70.0, 30.0, 60.0];
    sorted.sort_by(f64::total_cmp);
    // n = 7: p5 → ceil(0.35) = 1, p50 → ceil(3.5) = 4, p95 → ceil(6.65) = 7.
    assert_eq!(nearest_rank(&sorted, 5), Some(10.0));
    assert_eq!(nearest_rank(&sorted, 50), Some(40.0));
    assert_eq!(nearest_rank(&sorted, 95), Some(70.0));
    assert_eq!(nearest_rank(&[3.0], 5), Some(3.0));
    assert_eq!(nearest_rank(&[], 50), None);
}

#[test]
fn non_finite_figures_are_left_out_without_panicking() {
    let mut odd = success(1, Trigger::Schedule, 10.0, 1.0);
    odd.download_bytes_per_second = Some(f64::NAN);
    odd.ping_seconds = Some(f64::INFINITY);
    let samples = [odd, success(2, Trigger::Schedule, 20.0, 1.0)];
    let summary = summarize(no_plan(), &samples);
    let download = summary.download_bytes_per_second.unwrap();
    assert_eq!((download.min, download.max), (2_500_000.0, 2_500_000.0));
    assert_eq!(summary.ping_seconds.unwrap().max, 0.010);
}

#[test]
fn counts_runs_by_outcome_and_failures_by_reason() {
    let mut skipped = Sample::empty(at(5), Trigger::Schedule);
    skipped.outcome = Outcome::Skipped;
    skipped.reason = Some(FailureReason::Spawn);
    let samples = [
        success(0, Trigger::Schedule, 90.0, 18.0),
        failure(1, Trigger::Schedule, FailureReason::Timeout),
        failure(2, Trigger::Manual, FailureReason::Timeout),
        failure(3, Trigger::Schedule, FailureReason::NoConnectivity),
        success(4, Trigger::Manual, 95.0, 19.0),
        skipped,
    ];
    let summary = summarize(no_plan(), &samples);
    assert_eq!(
        summary.runs,
        Runs {
            total: 6,
            success: 2,
            failure: 3,
            skipped: 1,
        }
    );
    assert_eq!(summary.failures_by_reason.get(FailureReason::Timeout), 2);
    assert_eq!(
        summary
            .failures_by_reason
            .get(FailureReason::NoConnectivity),
        1
    );
    // The skipped run's reason is not a failure.
    assert_eq!(summary.failures_by_reason.get(FailureReason::Spawn), 0);
    assert_eq!(
        summary
            .failures_by_reason
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>(),
        3
    );
}

#[test]
fn figures_are_null_without_successes() {
    let samples = [
        failure(0, Trigger::Schedule, FailureReason::Exit),
        failure(1, Trigger::Retest, FailureReason::Parse),
    ];
    let summary = summarize(plan(), &samples);
    assert_eq!(summary.download_bytes_per_second, None);
    assert_eq!(summary.upload_bytes_per_second, None);
    assert_eq!(summary.ping_seconds, None);
    let plan = summary.plan.unwrap();
    assert_eq!((plan.measurements, plan.met, plan.breaches), (0, 0, 0));
    assert_eq!(plan.share_met, None);
    assert_eq!(plan.longest_below, None);
    let json = serde_json::to_value(&summary).unwrap();
    assert!(json["download_bytes_per_second"].is_null());
    assert!(json["plan"]["share_met"].is_null());
}

#[test]
fn a_figure_no_success_reported_is_null() {
    let mut no_ping = success(0, Trigger::Schedule, 90.0, 18.0);
    no_ping.ping_seconds = None;
    let summary = summarize(no_plan(), &[no_ping]);
    assert!(summary.download_bytes_per_second.is_some());
    assert_eq!(summary.ping_seconds, None);
}

#[test]
fn share_met_over_measurements() {
    // 3 of 4 met; the lone below-plan run has no retest, so it is a breach by itself.
    let summary = summarize(plan(), &hourly(&[true, false, true, true]));
    let plan = summary.plan.unwrap();
    assert_eq!(plan.measurements, 4);
    assert_eq!(plan.met, 3);
    assert_eq!(plan.breaches, 1);
    assert_eq!(plan.share_met, Some(0.75));
    assert_eq!(plan.retests, Retests::default());
    assert_eq!(plan.download_bytes_per_second, Some(12_500_000.0));
    assert_eq!(plan.upload_bytes_per_second, Some(2_500_000.0));
    assert_eq!(plan.threshold, 0.8);
}

#[test]
fn a_retest_that_meets_the_plan_refutes_the_breach() {
    let samples = [
        success(0, Trigger::Schedule, 90.0, 18.0),
        success(60, Trigger::Schedule, 50.0, 18.0),
        // A failed retest attempt neither counts nor breaks the pairing.
        failure(61, Trigger::Retest, FailureReason::Timeout),
        success(62, Trigger::Retest, 85.0, 18.0),
        success(120, Trigger::Schedule, 90.0, 18.0),
    ];
    let plan = summarize(plan(), &samples).plan.unwrap();
    assert_eq!(plan.measurements, 3);
    assert_eq!(plan.met, 3);
    assert_eq!(plan.breaches, 0);
    assert_eq!(
        plan.retests,
        Retests {
            confirmed: 0,
            refuted: 1
        }
    );
    assert_eq!(plan.longest_below, None);
}

#[test]
fn a_retest_below_the_plan_confirms_the_breach() {
    let samples = [
        success(0, Trigger::Schedule, 50.0, 18.0),
        success(2, Trigger::Retest, 60.0, 18.0),
        success(60, Trigger::Manual, 90.0, 10.0),
        success(62, Trigger::Retest, 90.0, 10.0),
        success(120, Trigger::Schedule, 90.0, 18.0),
    ];
    let plan = summarize(plan(), &samples).plan.unwrap();
    assert_eq!(plan.measurements, 3);
    assert_eq!(plan.met, 1);
    assert_eq!(plan.breaches, 2);
    assert_eq!(plan.share_met, Some(1.0 / 3.0));
    assert_eq!(
        plan.retests,
        Retests {
            confirmed: 2,
            refuted: 0
        }
    );
}

#[test]
fn below_plan_runs_without_a_retest_are_breaches() {
    let samples = [
        success(0, Trigger::Schedule, 50.0, 18.0),
        // The next judged run is not a retest: the first stands alone.
        success(60, Trigger::Manual, 50.0, 18.0),
        success(120, Trigger::Schedule, 90.0, 18.0),
        // A retest with nothing pending (its first run lay before the window) is an
        // ordinary measurement; a below-plan one at the end of the data is a breach too.
        success(121, Trigger::Retest, 90.0, 18.0),
        success(180, Trigger::Schedule, 40.0, 18.0),
    ];
    let plan = summarize(plan(), &samples).plan.unwrap();
    assert_eq!(plan.measurements, 5);
    assert_eq!(plan.met, 2);
    assert_eq!(plan.breaches, 3);
    assert_eq!(plan.retests, Retests::default());
}

#[test]
fn longest_below_ends_at_the_next_met_measurement() {
    // Breaches at 1 h (one), then 3 h, 4 h, 5 h (three), met again at 6 h; one more at 8 h.
    let samples = hourly(&[true, false, true, false, false, false, true, true, false]);
    let plan = summarize(plan(), &samples).plan.unwrap();
    assert_eq!(plan.breaches, 5);
    assert_eq!(
        plan.longest_below,
        Some(LongestBelow {
            from: at(180),
            to: at(360),
            seconds: 3.0 * 3600.0,
            measurements: 3,
            ongoing: false,
            last_below: at(300),
        })
    );
}

#[test]
fn longest_below_lasting_to_the_end_is_ongoing() {
    // Two below at 1 h and 2 h, then three at 4, 5 and 6 h with no recovery.
    // It has lasted so far until the window's end (24 h), not just to its last run.
    let samples = hourly(&[true, false, false, true, false, false, false]);
    let plan = summarize(plan(), &samples).plan.unwrap();
    assert_eq!(
        plan.longest_below,
        Some(LongestBelow {
            from: at(240),
            to: at(24 * 60),
            seconds: 20.0 * 3600.0,
            measurements: 3,
            ongoing: true,
            last_below: at(360),
        })
    );
}

#[test]
fn one_ongoing_breach_has_lasted_until_the_window_ends() {
    // The last run of the window is the only breach: it has lasted 23 h so far, not 0 s.
    let samples = hourly(&[true, true]);
    let mut summarizer = Summarizer::new(plan());
    for sample in &samples {
        summarizer.add(sample);
    }
    summarizer.add(&success(60 + 30, Trigger::Schedule, 50.0, 18.0));
    let summary = summarizer.finish(at(0), at(24 * 60));
    let longest = summary.plan.as_ref().unwrap().longest_below.unwrap();
    assert_eq!((longest.from, longest.to), (at(90), at(24 * 60)));
    assert_eq!(longest.last_below, at(90));
    assert!(longest.ongoing);
    let text = summary.to_text();
    assert!(
        text.contains(
            "Longest stretch below the plan: ongoing, 22h 30m so far, from \
                 2026-11-24T01:30:00.000Z to 2026-11-25T00:00:00.000Z (still below at the last \
                 measurement, 2026-11-24T01:30:00.000Z; 1 measurement)"
        ),
        "{text}"
    );
    assert!(!text.contains(" 0s"), "{text}");
}

#[test]
fn longest_below_ties_keep_the_earliest_and_pairs_are_dated_by_their_first_run() {
    let samples = [
        // A confirmed pair dated 0 min, then met at 60 min.
        success(0, Trigger::Schedule, 50.0, 18.0),
        success(5, Trigger::Retest, 50.0, 18.0),
        success(60, Trigger::Schedule, 90.0, 18.0),
        // Just as long (one measurement), later: the earlier run stays.
        success(120, Trigger::Schedule, 50.0, 18.0),
    ];
    let plan = summarize(plan(), &samples).plan.unwrap();
    assert_eq!(
        plan.longest_below,
        Some(LongestBelow {
            from: at(0),
            to: at(60),
            seconds: 3600.0,
            measurements: 1,
            ongoing: false,
            last_below: at(0),
        })
    );
}

#[test]
fn plan_is_null_when_not_set() {
    let summary = summarize(no_plan(), &hourly(&[false, true]));
    assert_eq!(summary.plan, None);
    let json = serde_json::to_value(&summary).unwrap();
    assert!(json["plan"].is_null());
    assert!(!summary.to_text().contains("Plan:"));
}

fn keys(value: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn json_field_names_are_the_public_contract() {
    let samples = [
        success(0, Trigger::Schedule, 50.0, 18.0),
        failure(30, Trigger::Schedule, FailureReason::RateLimited),
        success(60, Trigger::Schedule, 90.0, 18.0),
    ];
    let json = serde_json::to_value(summarize(plan(), &samples)).unwrap();
    assert_eq!(
        keys(&json),
        [
            "download_bytes_per_second",
            "failures_by_kind",
            "failures_by_reason",
            "percentile_method",
            "ping_seconds",
            "plan",
            "runs",
            "runs_by_engine",
            "upload_bytes_per_second",
            "window",
        ]
    );
    assert_eq!(
        json["runs_by_engine"],
        serde_json::json!({"ookla": 3, "http": 0, "unrecorded": 0})
    );
    assert_eq!(json["window"]["from"], "2026-11-24T00:00:00.000Z");
    assert_eq!(json["window"]["to"], "2026-11-25T00:00:00.000Z");
    assert_eq!(
        keys(&json["runs"]),
        ["failure", "skipped", "success", "total"]
    );
    let reasons = json["failures_by_reason"].as_object().unwrap();
    let names: Vec<&str> = reasons.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = FailureReason::ALL
        .iter()
        .filter(|r| r.is_failure())
        .map(|r| r.as_str())
        .collect();
    expected.sort_unstable();
    assert_eq!(names.len(), expected.len());
    assert_eq!(keys(&json["failures_by_reason"]), expected);
    assert_eq!(json["failures_by_reason"]["rate_limited"], 1);
    assert_eq!(json["failures_by_reason"]["timeout"], 0);
    assert_eq!(
        json["failures_by_kind"],
        serde_json::json!({"network": 0, "service": 1, "local": 0, "other": 0})
    );
    assert_eq!(json["percentile_method"], "nearest-rank");
    assert_eq!(
        keys(&json["download_bytes_per_second"]),
        ["max", "min", "p5", "p50", "p95"]
    );
    assert_eq!(
        keys(&json["plan"]),
        [
            "breaches",
            "download_bytes_per_second",
            "longest_below",
            "measurements",
            "met",
            "plan_versions",
            "retests",
            "share_met",
            "threshold",
            "upload_bytes_per_second",
        ]
    );
    assert_eq!(keys(&json["plan"]["retests"]), ["confirmed", "refuted"]);
    assert_eq!(
        keys(&json["plan"]["longest_below"]),
        [
            "from",
            "last_below",
            "measurements",
            "ongoing",
            "seconds",
            "to"
        ]
    );
    assert_eq!(
        json["plan"]["longest_below"]["from"],
        "2026-11-24T00:00:00.000Z"
    );
    assert_eq!(json["plan"]["longest_below"]["seconds"], 3600.0);
    assert_eq!(json["plan"]["share_met"], 0.5);
}

#[test]
fn failure_counts_serialise_in_reason_order() {
    let json = serde_json::to_string(&FailureCounts::default()).unwrap();
    assert_eq!(
        json,
        r#"{"spawn":0,"timeout":0,"exit":0,"rate_limited":0,"no_connectivity":0,"parse":0,"implausible":0,"output_too_large":0}"#
    );
}

#[test]
fn text_report_has_the_key_lines() {
    let mut samples = vec![
        success(0, Trigger::Schedule, 310.2, 40.0),
        success(60, Trigger::Schedule, 50.0, 18.0),
        success(62, Trigger::Retest, 60.0, 18.0),
        success(120, Trigger::Schedule, 50.0, 18.0),
        success(122, Trigger::Retest, 95.0, 19.0),
        success(180, Trigger::Schedule, 50.0, 18.0),
        failure(240, Trigger::Schedule, FailureReason::NoConnectivity),
        failure(300, Trigger::Schedule, FailureReason::Timeout),
        failure(360, Trigger::Schedule, FailureReason::Timeout),
        success(420, Trigger::Schedule, 90.0, 18.0),
    ];
    samples[0].ping_seconds = Some(0.005631);
    samples[9].engine = http();
    let text = summarize(plan(), &samples).to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "internet-monitor report, 2026-11-24T00:00:00.000Z to 2026-11-25T00:00:00.000Z",
            "Runs: 10 (7 succeeded, 3 failed, 0 skipped)",
            "Measured by: ookla 9, http 1",
            "Failures counted against the line: 3 (network: timeout 2, no_connectivity 1)",
            "Download: min 50.0, p5 50.0, median 60.0, p95 310.2, max 310.2 Mbit/s",
            "Upload:   min 18.0, p5 18.0, median 18.0, p95 40.0, max 40.0 Mbit/s",
            "Ping:     min 5.631, p5 5.631, median 10, p95 10, max 10 ms",
            "Plan: 100 Mbit/s down, 20 Mbit/s up, threshold 80 %: met by 3 of 5 measurements \
                 (60.0 %); 2 breaches (1 confirmed by a retest, 1 refuted)",
            "Longest stretch below the plan: 1h, from 2026-11-24T01:00:00.000Z to \
                 2026-11-24T02:00:00.000Z (1 measurement)",
        ]
    );
    assert!(text.ends_with('\n'));
}

#[test]
fn text_report_leaves_out_what_does_not_apply() {
    let samples = hourly(&[true, false, false]);
    let text = summarize(plan(), &samples).to_text();
    assert!(!text.contains("Failures"));
    assert!(text.contains(
        "Longest stretch below the plan: ongoing, 23h so far, from 2026-11-24T01:00:00.000Z \
             to 2026-11-25T00:00:00.000Z (still below at the last measurement, \
             2026-11-24T02:00:00.000Z; 2 measurements)"
    ));
    let quiet = summarize(plan(), &hourly(&[true])).to_text();
    assert!(!quiet.contains("Longest stretch"));
    assert!(quiet.contains("met by 1 of 1 measurement (100.0 %); 0 breaches"));
    let empty = summarize(plan(), &[]).to_text();
    assert!(!empty.contains("Download:"));
    assert!(empty.contains("threshold 80 %: no measurements"));
}

#[test]
fn every_failure_reason_has_a_kind_and_only_network_counts_against_the_line() {
    for reason in FailureReason::ALL {
        let kind = FailureKind::of(reason);
        assert_eq!(kind.is_some(), reason.is_failure(), "{reason}");
        let against = kind.is_some_and(FailureKind::counts_against_the_line);
        let network = matches!(
            reason,
            FailureReason::NoConnectivity | FailureReason::Timeout
        );
        assert_eq!(against, network, "{reason}");
    }
    for local in [
        FailureReason::Spawn,
        FailureReason::Parse,
        FailureReason::OutputTooLarge,
    ] {
        assert_eq!(FailureKind::of(local), Some(FailureKind::Local), "{local}");
    }
}

#[test]
fn the_monitors_own_faults_are_reported_apart_from_the_lines() {
    let samples = [
        failure(0, Trigger::Schedule, FailureReason::NoConnectivity),
        failure(1, Trigger::Schedule, FailureReason::Timeout),
        failure(2, Trigger::Schedule, FailureReason::Parse),
        failure(3, Trigger::Schedule, FailureReason::Spawn),
        failure(4, Trigger::Schedule, FailureReason::Spawn),
        failure(5, Trigger::Schedule, FailureReason::OutputTooLarge),
        failure(6, Trigger::Schedule, FailureReason::RateLimited),
        failure(7, Trigger::Schedule, FailureReason::Exit),
        failure(8, Trigger::Schedule, FailureReason::Implausible),
        success(9, Trigger::Schedule, 90.0, 18.0),
    ];
    let summary = summarize(no_plan(), &samples);
    assert_eq!(
        summary.failures_by_kind,
        FailuresByKind {
            network: 2,
            service: 1,
            local: 4,
            other: 2,
        }
    );
    let kinds_total: u64 = FailureKind::ALL
        .iter()
        .map(|&kind| summary.failures_by_kind.get(kind))
        .sum();
    assert_eq!(kinds_total, summary.runs.failure);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        json["failures_by_kind"],
        serde_json::json!({"network": 2, "service": 1, "local": 4, "other": 2})
    );
    assert_eq!(json["failures_by_reason"]["spawn"], 2, "kept as it was");
    let text = summary.to_text();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Failures")).collect();
    assert_eq!(
        lines,
        [
            "Failures counted against the line: 2 (network: timeout 1, no_connectivity 1)",
            "Failures not counted against the line: 7 (service: rate_limited 1; \
                 local: spawn 2, parse 1, output_too_large 1; other: exit 1, implausible 1)",
        ]
    );
    let only_local = summarize(
        no_plan(),
        &[failure(0, Trigger::Schedule, FailureReason::Spawn)],
    )
    .to_text();
    assert!(
        !only_local.contains("Failures counted against the line"),
        "{only_local}"
    );
    assert!(only_local.contains("Failures not counted against the line: 1 (local: spawn 1)"));
}
