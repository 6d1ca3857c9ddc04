//! Golden tests of the rule sets: hand-computed data sets, each with the verdict written out
//! (outcome, every criterion's status and counts, progress), for de-bnetza, at-rtr, us-fcc and
//! uk-ofcom: met, not met, each criterion alone, too few measurements, exact thresholds, DST
//! changes inside a campaign, local calendar days and plan changes.

use std::time::Duration;

use internet_monitor::plan::{PlanHistory, PlanVersion, Speeds};
use internet_monitor::rules::{
    self, Criterion, CriterionStatus, Judgement, RuleSet, Run, RunResult, Verdict, at_rtr,
    de_bnetza, evaluate,
};
use internet_monitor::summary::FailureKind;
use internet_monitor::time::Timestamp;
use internet_monitor::units::Bandwidth;
use internet_monitor::zone::Zone;

use CriterionStatus::{Informational as Info, Met, NotAssessable as Na, NotMet};

/// Bytes per second in one Mbit/s.
const MBIT: f64 = 125_000.0;

fn t(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn ok_at(time: Timestamp, down_mbit: f64, up_mbit: f64) -> Run {
    Run {
        time,
        result: RunResult::Success,
        download_bytes_per_second: Some(down_mbit * MBIT),
        upload_bytes_per_second: Some(up_mbit * MBIT),
        ping_seconds: Some(0.02),
    }
}

fn ok(time: &str, down_mbit: f64, up_mbit: f64) -> Run {
    ok_at(t(time), down_mbit, up_mbit)
}

fn failed_at(time: Timestamp, kind: Option<FailureKind>) -> Run {
    Run {
        time,
        result: RunResult::Failure(kind),
        download_bytes_per_second: None,
        upload_bytes_per_second: None,
        ping_seconds: None,
    }
}

fn mbit(value: Option<f64>) -> Option<Bandwidth> {
    value.map(|v| Bandwidth::from_bytes_per_second(v * MBIT))
}

/// Speeds in Mbit/s: maximum, normally available, minimum, advertised.
fn speeds(max: Option<f64>, normal: Option<f64>, min: Option<f64>, adv: Option<f64>) -> Speeds {
    Speeds {
        maximum: mbit(max),
        normally_available: mbit(normal),
        minimum: mbit(min),
        advertised: mbit(adv),
    }
}

fn version(from: &str, download: Speeds, upload: Speeds) -> PlanVersion {
    PlanVersion {
        from: t(from),
        download,
        upload,
        latency_max: None,
        threshold: 0.8,
    }
}

/// The contract of the de-bnetza and at-rtr data sets: download 100/80/50 Mbit/s
/// (maximum/normally available/minimum), upload 40/30/20.
fn eu_contract() -> PlanVersion {
    version(
        "2026-01-01T00:00:00Z",
        speeds(Some(100.0), Some(80.0), Some(50.0), None),
        speeds(Some(40.0), Some(30.0), Some(20.0), None),
    )
}

fn eu_plans() -> PlanHistory {
    PlanHistory::new(vec![eu_contract()])
}

fn berlin() -> Zone {
    Zone::parse("Europe/Berlin").unwrap()
}

/// The minutes after a day's first measurement of the standard de-bnetza day: 5 measurements
/// 10 minutes apart, then exactly 3 hours after the 5th, 5 more 10 minutes apart.
const DAY_MINUTES: [u64; 10] = [0, 10, 20, 30, 40, 220, 230, 240, 250, 260];

/// The standard day starting at `first` (UTC), with the rates of each measurement.
fn day_at(first: &str, rates: [(f64, f64); 10]) -> Vec<Run> {
    let start = t(first);
    DAY_MINUTES
        .iter()
        .zip(rates)
        .map(|(&m, (down, up))| ok_at(start.saturating_add(minutes(m)), down, up))
        .collect()
}

/// The standard day at 08:00 Berlin summer time (06:00 UTC) on `date` (before 25 Oct 2026).
fn summer_day(date: &str, rates: [(f64, f64); 10]) -> Vec<Run> {
    day_at(&format!("{date}T06:00:00Z"), rates)
}

const GOOD: (f64, f64) = (95.0, 38.0);

fn good() -> [(f64, f64); 10] {
    [GOOD; 10]
}

/// The de-bnetza data set "met": Mon 5, Wed 7 and Fri 9 Oct 2026, 10 good measurements each.
fn de_met_runs() -> Vec<Run> {
    [
        summer_day("2026-10-05", good()),
        summer_day("2026-10-07", good()),
        summer_day("2026-10-09", good()),
    ]
    .concat()
}

/// Each criterion as (id, direction, status, count, of).
fn table(
    verdict: &Verdict,
) -> Vec<(
    &'static str,
    Option<&'static str>,
    CriterionStatus,
    u64,
    u64,
)> {
    verdict
        .criteria
        .iter()
        .map(|c| (c.id, c.direction, c.status, c.count, c.of))
        .collect()
}

fn criterion<'a>(verdict: &'a Verdict, id: &str, direction: Option<&str>) -> &'a Criterion {
    verdict
        .criteria
        .iter()
        .find(|c| c.id == id && c.direction == direction)
        .unwrap_or_else(|| panic!("no criterion {id} {direction:?} in {verdict:#?}"))
}

fn dates(verdict: &Verdict) -> Vec<&str> {
    verdict.days.iter().map(|d| d.date.as_str()).collect()
}

/// The de-bnetza table with the download criteria given and upload all met on 3 days.
#[allow(clippy::type_complexity)]
fn de_table(
    download: [(CriterionStatus, u64, u64); 3],
    upload: [(CriterionStatus, u64, u64); 3],
) -> Vec<(
    &'static str,
    Option<&'static str>,
    CriterionStatus,
    u64,
    u64,
)> {
    let ids = [
        "maximum_reached_on_days",
        "normally_available_reached",
        "minimum_kept_on_days",
    ];
    let mut rows = Vec::new();
    for (direction, values) in [("download", download), ("upload", upload)] {
        for (id, (status, count, of)) in ids.iter().zip(values) {
            rows.push((*id, Some(direction), status, count, of));
        }
    }
    rows
}

const ALL_MET: [(CriterionStatus, u64, u64); 3] = [(Met, 3, 3), (Met, 30, 30), (Met, 3, 3)];

fn de(runs: &[Run]) -> Verdict {
    evaluate(RuleSet::DeBnetza, runs, &eu_plans(), &berlin())
}

// ------------------------------------------------------------------------------------------
// de-bnetza

#[test]
fn de_bnetza_met() {
    let verdict = de(&de_met_runs());
    assert_eq!(verdict.outcome, Judgement::Met, "{verdict:#?}");
    assert_eq!(verdict.reason, None);
    assert_eq!(table(&verdict), de_table(ALL_MET, ALL_MET));
    assert_eq!(verdict.progress.measurements, 30);
    assert_eq!(verdict.progress.measurements_required, 30);
    assert_eq!(verdict.progress.days, 3);
    assert_eq!(verdict.progress.days_required, 3);
    assert!(verdict.progress.complete);
    assert_eq!(dates(&verdict), ["2026-10-05", "2026-10-07", "2026-10-09"]);
    assert_eq!(verdict.days[0].measurements[5], t("2026-10-05T09:40:00Z"));
    assert_eq!((verdict.successful_runs, verdict.failed_runs), (30, 0));
    assert_eq!(verdict.time_zone, "Europe/Berlin");
    assert!(verdict.label.starts_with("indicative: "));
    assert!(verdict.label.contains("breitbandmessung.de"));
    assert!(verdict.unverified.iter().any(|u| u.contains("5 minutes")));
    assert!(
        verdict
            .unverified
            .iter()
            .any(|u| u.contains("14 calendar days"))
    );
    assert!(!verdict.sources.is_empty());
    let requirement = &criterion(&verdict, "maximum_reached_on_days", Some("download")).requirement;
    assert!(
        requirement.contains("(90 Mbit/s of 100 Mbit/s)"),
        "{requirement}"
    );
}

#[test]
fn de_bnetza_not_met_on_every_download_criterion() {
    // Download 45 Mbit/s throughout: below 90 Mbit/s, below 80, below the minimum 50.
    let runs = [
        summer_day("2026-10-05", [(45.0, 38.0); 10]),
        summer_day("2026-10-07", [(45.0, 38.0); 10]),
        summer_day("2026-10-09", [(45.0, 38.0); 10]),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::NotMet);
    assert_eq!(
        table(&verdict),
        de_table([(NotMet, 0, 3), (NotMet, 0, 30), (NotMet, 0, 3)], ALL_MET)
    );
}

#[test]
fn de_bnetza_maximum_alone_at_exactly_90_percent() {
    // 85 Mbit/s everywhere (≥ normal 80, ≥ min 50, < 90); one measurement of exactly 90 Mbit/s
    // (11,250,000 B/s = 90 % of 12,500,000) on the 5th.
    let mut one = [(85.0, 38.0); 10];
    one[3].0 = 90.0;
    let plain = [(85.0, 38.0); 10];
    let runs = [
        summer_day("2026-10-05", one),
        summer_day("2026-10-07", plain),
        summer_day("2026-10-09", plain),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::NotMet);
    assert_eq!(
        table(&verdict),
        de_table([(NotMet, 1, 3), (Met, 30, 30), (Met, 3, 3)], ALL_MET)
    );

    // Exactly 90 % on a second day as well: reached on 2 of 3 days, met.
    let mut runs2 = [
        summer_day("2026-10-05", one),
        summer_day("2026-10-07", one),
        summer_day("2026-10-09", plain),
    ]
    .concat();
    assert_eq!(de(&runs2).outcome, Judgement::Met);
    assert_eq!(
        table(&de(&runs2)),
        de_table([(Met, 2, 3), (Met, 30, 30), (Met, 3, 3)], ALL_MET)
    );

    // One byte per second short of 90 % on the 7th: not reached there.
    runs2[13].download_bytes_per_second = Some(11_249_999.0);
    assert_eq!(
        table(&de(&runs2)),
        de_table([(NotMet, 1, 3), (Met, 30, 30), (Met, 3, 3)], ALL_MET)
    );
}

#[test]
fn de_bnetza_normally_available_alone_at_exactly_90_percent() {
    // 3 of 30 measurements at 70 Mbit/s (< normal 80, ≥ min 50): 27 of 30 reached, and
    // 10·27 = 270 ≥ 9·30 = 270, so met. Another one exactly at 80 Mbit/s counts as reached.
    let mut first = good();
    first[0].0 = 70.0;
    first[9].0 = 80.0;
    let mut second = good();
    second[4].0 = 70.0;
    let mut third = good();
    third[5].0 = 70.0;
    let mut runs = [
        summer_day("2026-10-05", first),
        summer_day("2026-10-07", second),
        summer_day("2026-10-09", third),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(
        table(&verdict),
        de_table([(Met, 3, 3), (Met, 27, 30), (Met, 3, 3)], ALL_MET)
    );
    // A 4th miss: 26 of 30, 260 < 270, a deviation.
    runs[29].download_bytes_per_second = Some(70.0 * MBIT);
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::NotMet);
    assert_eq!(
        table(&verdict),
        de_table([(Met, 3, 3), (NotMet, 26, 30), (Met, 3, 3)], ALL_MET)
    );
}

#[test]
fn de_bnetza_minimum_alone() {
    // One measurement at 49 Mbit/s (< min 50) on the 5th and one on the 9th: the minimum is
    // undercut on 2 of 3 days, a deviation; 28 of 30 still reach 80 (280 ≥ 270).
    let mut undercut = good();
    undercut[2].0 = 49.0;
    let runs = [
        summer_day("2026-10-05", undercut),
        summer_day("2026-10-07", good()),
        summer_day("2026-10-09", undercut),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::NotMet);
    assert_eq!(
        table(&verdict),
        de_table([(Met, 3, 3), (Met, 28, 30), (NotMet, 1, 3)], ALL_MET)
    );
    // Undercut on one day only, and exactly 50 Mbit/s (not below) on another: kept.
    let mut at_minimum = good();
    at_minimum[2].0 = 50.0;
    let runs = [
        summer_day("2026-10-05", undercut),
        summer_day("2026-10-07", at_minimum),
        summer_day("2026-10-09", good()),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(
        table(&verdict),
        de_table([(Met, 3, 3), (Met, 28, 30), (Met, 2, 3)], ALL_MET)
    );
}

#[test]
fn de_bnetza_upload_alone_is_a_deviation() {
    // Upload 25 Mbit/s: below 36 (90 % of 40) and 30 (normal), not below 20 (minimum).
    let runs = [
        summer_day("2026-10-05", [(95.0, 25.0); 10]),
        summer_day("2026-10-07", [(95.0, 25.0); 10]),
        summer_day("2026-10-09", [(95.0, 25.0); 10]),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::NotMet);
    assert_eq!(
        table(&verdict),
        de_table(ALL_MET, [(NotMet, 0, 3), (NotMet, 0, 30), (Met, 3, 3)])
    );
}

#[test]
fn de_bnetza_too_few_measurements() {
    let mut runs = de_met_runs();
    runs.pop(); // the 9th has 9 measurements
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::NotAssessable);
    let reason = verdict.reason.clone().unwrap();
    assert!(reason.contains("incomplete"), "{reason}");
    assert!(reason.contains("2 of 3 measurement days"), "{reason}");
    assert!(reason.contains("29 of 30"), "{reason}");
    assert_eq!(verdict.progress.measurements, 29);
    assert_eq!(verdict.progress.days, 2);
    assert!(!verdict.progress.complete);
    // The day in progress is listed with what it has.
    assert_eq!(dates(&verdict), ["2026-10-05", "2026-10-07", "2026-10-09"]);
    assert_eq!(verdict.days[2].measurements.len(), 9);
    // The counts so far, but nothing judged.
    assert_eq!(
        table(&verdict),
        de_table(
            [(Na, 3, 3), (Na, 29, 29), (Na, 3, 3)],
            [(Na, 3, 3), (Na, 29, 29), (Na, 3, 3)]
        )
    );
    assert!(
        verdict
            .criteria
            .iter()
            .all(|c| c.reason.as_deref() == Some(reason.as_str()))
    );

    // Nothing at all.
    let empty = de(&[]);
    assert_eq!(empty.outcome, Judgement::NotAssessable);
    assert!(empty.reason.unwrap().contains("no successful run"));
    assert_eq!(empty.progress.measurements, 0);
}

#[test]
fn de_bnetza_spacing_is_elapsed_time_and_measurements_are_taken_not_chosen() {
    // The 5th at 06:40, then a run 2 h 59 min later (09:39, too early for the 6th, and bad),
    // then 09:40 (the 6th); a run 4 minutes after the 7th (too close, and bad) is passed over.
    let mut runs = summer_day("2026-10-05", good());
    runs.insert(5, ok("2026-10-05T09:39:00Z", 1.0, 1.0));
    runs.insert(7, ok("2026-10-05T09:44:00Z", 1.0, 1.0));
    // After the 10th, bad runs on the same day are ignored.
    runs.push(ok("2026-10-05T12:00:00Z", 1.0, 1.0));
    runs.extend(summer_day("2026-10-07", good()));
    runs.extend(summer_day("2026-10-09", good()));
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::Met, "{verdict:#?}");
    assert_eq!(table(&verdict), de_table(ALL_MET, ALL_MET));
    assert_eq!(verdict.successful_runs, 33);
    assert!(
        !verdict.days[0]
            .measurements
            .contains(&t("2026-10-05T09:39:00Z"))
    );

    // Without the 09:40 run, the first run that keeps the spacing is the bad one at 09:44
    // (3 h 4 min after the 5th): it is the 6th, whatever it measured.
    runs.retain(|run| run.time != t("2026-10-05T09:40:00Z"));
    let verdict = de(&runs);
    assert_eq!(verdict.days[0].measurements[5], t("2026-10-05T09:44:00Z"));
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(
        table(&verdict),
        de_table(
            [(Met, 3, 3), (Met, 29, 30), (Met, 2, 3)],
            [(Met, 3, 3), (Met, 29, 30), (Met, 2, 3)]
        )
    );
}

#[test]
fn de_bnetza_needs_a_free_day_between_measurement_days() {
    // Mon 5, Tue 6 and Thu 8: the 6th follows the 5th directly, so it is no measurement day.
    let runs = [
        summer_day("2026-10-05", good()),
        summer_day("2026-10-06", [(1.0, 1.0); 10]),
        summer_day("2026-10-08", good()),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::NotAssessable);
    assert_eq!(verdict.progress.days, 2);
    assert_eq!(dates(&verdict), ["2026-10-05", "2026-10-08"]);
    // Sat 10 completes it: 5, 8, 10.
    let runs = [runs, summer_day("2026-10-10", good())].concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(dates(&verdict), ["2026-10-05", "2026-10-08", "2026-10-10"]);
}

#[test]
fn de_bnetza_days_inside_14_calendar_days() {
    // 1 Oct, 10 Oct, 15 Oct: the 15th is 14 days after the 1st, outside. From the 10th on,
    // 10, 15 and 17 fit (7 days).
    let runs = [
        summer_day("2026-10-01", [(1.0, 1.0); 10]),
        summer_day("2026-10-10", good()),
        summer_day("2026-10-15", good()),
        summer_day("2026-10-17", good()),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(dates(&verdict), ["2026-10-10", "2026-10-15", "2026-10-17"]);

    // 1, 3 and 15 Oct: no protocol; the attempt still alive on the 15th is 3 and 15.
    let runs = [
        summer_day("2026-10-01", good()),
        summer_day("2026-10-03", good()),
        summer_day("2026-10-15", good()),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::NotAssessable);
    assert_eq!(dates(&verdict), ["2026-10-03", "2026-10-15"]);
    assert_eq!(verdict.progress.days, 2);
    // 1, 3 and 14 Oct: 13 days, inside.
    let runs = [
        summer_day("2026-10-01", good()),
        summer_day("2026-10-03", good()),
        summer_day("2026-10-14", good()),
    ]
    .concat();
    assert_eq!(de(&runs).outcome, Judgement::Met);
}

#[test]
fn de_bnetza_failures_never_count_but_are_counted() {
    let mut runs = de_met_runs();
    // A failure between the 5th and the 6th of each day, and one before the first.
    for day in ["2026-10-05", "2026-10-07", "2026-10-09"] {
        runs.push(failed_at(
            t(&format!("{day}T08:00:00Z")),
            Some(FailureKind::Network),
        ));
        runs.push(failed_at(
            t(&format!("{day}T05:00:00Z")),
            Some(FailureKind::Local),
        ));
    }
    runs.sort_by_key(|run| run.time);
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(table(&verdict), de_table(ALL_MET, ALL_MET));
    assert_eq!(verdict.successful_runs, 30);
    assert_eq!(verdict.failed_runs, 6);
    assert_eq!(verdict.failed_network_runs, 3);

    // A failure in place of a measurement leaves the day one short.
    let mut runs = de_met_runs();
    runs[12] = failed_at(runs[12].time, None);
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::NotAssessable);
    assert_eq!(verdict.progress.measurements, 20);
    assert_eq!(verdict.failed_runs, 1);
}

#[test]
fn de_bnetza_judges_the_first_protocol_only() {
    // A bad protocol on 12, 14 and 16 Oct after the good one changes nothing …
    let bad = [(1.0, 1.0); 10];
    let runs = [
        de_met_runs(),
        summer_day("2026-10-12", bad),
        summer_day("2026-10-14", bad),
        summer_day("2026-10-16", bad),
    ]
    .concat();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(dates(&verdict), ["2026-10-05", "2026-10-07", "2026-10-09"]);
    // … and a good one after a bad one does not hide it.
    let runs = [
        summer_day("2026-09-21", bad),
        summer_day("2026-09-23", bad),
        summer_day("2026-09-25", bad),
        de_met_runs(),
    ]
    .concat();
    assert_eq!(de(&runs).outcome, Judgement::NotMet);
    // The order runs are given in does not matter.
    let mut shuffled = de_met_runs();
    shuffled.reverse();
    assert_eq!(de(&shuffled), de(&de_met_runs()));
}

#[test]
fn de_bnetza_missing_contract_values_are_not_assessable() {
    let verdict = evaluate(
        RuleSet::DeBnetza,
        &de_met_runs(),
        &PlanHistory::default(),
        &berlin(),
    );
    assert_eq!(verdict.outcome, Judgement::NotAssessable);
    assert!(verdict.criteria.iter().all(|c| c.status == Na));
    let reason = verdict.reason.clone().unwrap();
    assert!(reason.contains("plan set --download-max RATE"), "{reason}");
    let normal = &criterion(&verdict, "normally_available_reached", Some("upload"));
    assert!(
        normal
            .reason
            .as_deref()
            .unwrap()
            .contains("--upload-normal")
    );

    // Only the download normally available speed missing: that criterion alone.
    let mut contract = eu_contract();
    contract.download.normally_available = None;
    let verdict = evaluate(
        RuleSet::DeBnetza,
        &de_met_runs(),
        &PlanHistory::new(vec![contract]),
        &berlin(),
    );
    assert_eq!(verdict.outcome, Judgement::Met);
    // Nothing was counted against a value the contract does not state: 0 of 0, as in every
    // rule set.
    assert_eq!(
        table(&verdict),
        de_table([(Met, 3, 3), (Na, 0, 0), (Met, 3, 3)], ALL_MET)
    );
    let normal = criterion(&verdict, "normally_available_reached", Some("download"));
    assert!(
        normal
            .reason
            .as_deref()
            .unwrap()
            .contains("plan set --download-normal RATE")
    );
}

#[test]
fn de_bnetza_plan_change_inside_the_campaign_is_not_assessable() {
    // A faster contract from 8 Oct, between the 2nd and 3rd measurement day.
    let mut faster = eu_contract();
    faster.from = t("2026-10-08T00:00:00Z");
    faster.download.maximum = mbit(Some(200.0));
    let plans = PlanHistory::new(vec![eu_contract(), faster]);
    let verdict = evaluate(RuleSet::DeBnetza, &de_met_runs(), &plans, &berlin());
    assert_eq!(verdict.outcome, Judgement::NotAssessable);
    let reason = verdict.reason.clone().unwrap();
    assert!(
        reason.contains("contract changed at 2026-10-08T00:00:00"),
        "{reason}"
    );
    assert!(verdict.criteria.iter().all(|c| c.status == Na));
    assert!(verdict.progress.complete);

    // A contract stored only from 6 Oct, after the first measurement day.
    let mut late = eu_contract();
    late.from = t("2026-10-06T00:00:00Z");
    let verdict = evaluate(
        RuleSet::DeBnetza,
        &de_met_runs(),
        &PlanHistory::new(vec![late]),
        &berlin(),
    );
    assert_eq!(verdict.outcome, Judgement::NotAssessable);
    let reason = verdict.reason.unwrap();
    assert!(
        reason.contains("no contract was in force at the first measurement"),
        "{reason}"
    );
    assert!(reason.contains("plan set --from"), "{reason}");

    // The same terms stored again (another threshold) are no change.
    let mut restated = eu_contract();
    restated.from = t("2026-10-08T00:00:00Z");
    restated.threshold = 0.5;
    let plans = PlanHistory::new(vec![eu_contract(), restated]);
    let verdict = evaluate(RuleSet::DeBnetza, &de_met_runs(), &plans, &berlin());
    assert_eq!(verdict.outcome, Judgement::Met);

    // A change after the campaign's last measurement does not matter.
    let mut later = faster;
    later.from = t("2026-10-09T10:20:00.001Z");
    let plans = PlanHistory::new(vec![eu_contract(), later]);
    assert_eq!(
        evaluate(RuleSet::DeBnetza, &de_met_runs(), &plans, &berlin()).outcome,
        Judgement::Met
    );
}

#[test]
fn de_bnetza_dst_change_and_local_days() {
    // Fri 23 Oct (CEST, +02:00), Sun 25 Oct (clocks go back at 03:00 CEST = 01:00 UTC) and
    // Tue 27 Oct (CET, +01:00), in Europe/Berlin.
    let mut runs = summer_day("2026-10-23", good());
    // 23:50 CEST on the 24th: a Saturday run, not a Sunday one.
    runs.push(ok("2026-10-24T21:50:00Z", 1.0, 1.0));
    // Sunday: 00:10, 00:20, 00:30, 00:40 CEST, then the 5th at 01:30 CEST, which is 23:30 UTC
    // on the 24th and belongs to Berlin's 25th.
    for time in [
        "2026-10-24T22:10:00Z",
        "2026-10-24T22:20:00Z",
        "2026-10-24T22:30:00Z",
        "2026-10-24T22:40:00Z",
        "2026-10-24T23:30:00Z",
    ] {
        runs.push(ok(time, 95.0, 38.0));
    }
    // 03:00 CET = 02:00 UTC: 2 h 30 min after the 5th (the wall clock says 1 h 30 min), too
    // early for the 6th, and bad.
    runs.push(ok("2026-10-25T02:00:00Z", 1.0, 1.0));
    // 03:30 CET = 02:30 UTC: exactly 3 h after the 5th (the wall clock says 2 h): the 6th.
    for time in [
        "2026-10-25T02:30:00Z",
        "2026-10-25T02:40:00Z",
        "2026-10-25T02:50:00Z",
        "2026-10-25T03:00:00Z",
        "2026-10-25T03:10:00Z",
    ] {
        runs.push(ok(time, 95.0, 38.0));
    }
    // Tuesday at 08:00 CET = 07:00 UTC.
    runs.extend(day_at("2026-10-27T07:00:00Z", good()));

    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::Met, "{verdict:#?}");
    assert_eq!(table(&verdict), de_table(ALL_MET, ALL_MET));
    assert_eq!(dates(&verdict), ["2026-10-23", "2026-10-25", "2026-10-27"]);
    let sunday = &verdict.days[1].measurements;
    assert_eq!(sunday.len(), 10);
    assert_eq!(sunday[0], t("2026-10-24T22:10:00Z"));
    assert_eq!(sunday[4], t("2026-10-24T23:30:00Z"));
    assert_eq!(sunday[5], t("2026-10-25T02:30:00Z"));
    assert!(!sunday.contains(&t("2026-10-25T02:00:00Z")));
    assert!(!sunday.contains(&t("2026-10-24T21:50:00Z")));

    // Counted in UTC days, the same runs split Sunday across the 24th and the 25th: incomplete.
    let utc = evaluate(RuleSet::DeBnetza, &runs, &eu_plans(), &Zone::utc());
    assert_eq!(utc.outcome, Judgement::NotAssessable);
    assert_eq!(utc.time_zone, "UTC");
    assert!(!utc.progress.complete);
}

#[test]
fn de_bnetza_scheduler_constants() {
    assert_eq!(de_bnetza::MEASUREMENTS, 30);
    assert_eq!(de_bnetza::spacing_before(0), Duration::ZERO);
    assert_eq!(de_bnetza::spacing_before(1), minutes(5));
    assert_eq!(de_bnetza::spacing_before(5), minutes(180));
    assert_eq!(de_bnetza::spacing_before(9), minutes(5));
    assert_eq!(rules::peak_window(RuleSet::DeBnetza), None);
    assert_eq!(rules::peak_window(RuleSet::AtRtr), None);
    assert_eq!(rules::peak_window(RuleSet::UsFcc), Some((18, 24)));
    assert_eq!(rules::peak_window(RuleSet::UkOfcom), Some((20, 22)));
}

#[test]
fn verdict_json_shape() {
    let verdict = de(&de_met_runs());
    let json = serde_json::to_value(&verdict).unwrap();
    assert_eq!(json["rules"], "de-bnetza");
    assert_eq!(json["outcome"], "met");
    assert_eq!(json["criteria"][0]["status"], "met");
    assert_eq!(json["criteria"][0]["direction"], "download");
    assert_eq!(json["criteria"][0]["unit"], "days");
    assert_eq!(json["progress"]["complete"], true);
    assert_eq!(json["days"][0]["date"], "2026-10-05");
    assert_eq!(
        json["days"][0]["measurements"][0],
        "2026-10-05T06:00:00.000Z"
    );
    assert_eq!(json["failed_network_runs"], 0);
}

// ------------------------------------------------------------------------------------------
// at-rtr

fn vienna() -> Zone {
    Zone::parse("Europe/Vienna").unwrap()
}

/// `n` successful tests 15 minutes apart from `start` (UTC), all at `down`/`up` Mbit/s.
fn cycle(start: &str, n: u64, down: f64, up: f64) -> Vec<Run> {
    (0..n)
        .map(|i| ok_at(t(start).saturating_add(minutes(15 * i)), down, up))
        .collect()
}

fn rtr(runs: &[Run]) -> Verdict {
    evaluate(RuleSet::AtRtr, runs, &eu_plans(), &vienna())
}

/// The at-rtr table: successful tests, then per direction reached maximum, reached normally
/// available, below minimum.
#[allow(clippy::type_complexity)]
fn rtr_table(
    tests: (CriterionStatus, u64, u64),
    download: [(CriterionStatus, u64, u64); 3],
    upload: [(CriterionStatus, u64, u64); 3],
) -> Vec<(
    &'static str,
    Option<&'static str>,
    CriterionStatus,
    u64,
    u64,
)> {
    let mut rows = vec![("successful_tests", None, tests.0, tests.1, tests.2)];
    for (direction, values) in [("download", download), ("upload", upload)] {
        for (id, (status, count, of)) in [
            "reached_maximum",
            "reached_normally_available",
            "below_minimum",
        ]
        .iter()
        .zip(values)
        {
            rows.push((*id, Some(direction), status, count, of));
        }
    }
    rows
}

#[test]
fn at_rtr_complete_protocol_with_figures() {
    // Mon 5, Wed 7, Fri 9 Oct at 20:00 CEST (18:00 UTC); download 100 (= maximum), 85, 45.
    let runs = [
        cycle("2026-10-05T18:00:00Z", 8, 100.0, 40.0),
        cycle("2026-10-07T18:00:00Z", 8, 85.0, 30.0),
        cycle("2026-10-09T18:00:00Z", 8, 45.0, 19.0),
    ]
    .concat();
    let verdict = rtr(&runs);
    assert_eq!(verdict.outcome, Judgement::NoVerdict);
    assert_eq!(verdict.reason, None);
    assert_eq!(
        table(&verdict),
        rtr_table(
            (Info, 24, 24),
            [(Info, 8, 24), (Info, 16, 24), (Info, 8, 24)],
            [(Info, 8, 24), (Info, 16, 24), (Info, 8, 24)],
        )
    );
    assert_eq!(verdict.progress.days, 3);
    assert_eq!(verdict.progress.measurements, 24);
    assert_eq!(verdict.progress.measurements_required, 18);
    assert!(verdict.progress.complete);
    assert_eq!(dates(&verdict), ["2026-10-05", "2026-10-07", "2026-10-09"]);
    assert!(verdict.label.starts_with("indicative: "));
    assert!(verdict.label.contains("netztest.at"));
}

#[test]
fn at_rtr_too_few_cycles() {
    // 7 tests are no cycle; a 20-minute gap breaks one; a second cycle on the same day counts
    // once; 3 days 14 days apart are outside two weeks.
    let runs = [
        cycle("2026-10-05T18:00:00Z", 7, 95.0, 38.0),
        cycle("2026-10-06T08:00:00Z", 4, 95.0, 38.0),
        cycle("2026-10-06T09:05:00Z", 4, 95.0, 38.0),
        cycle("2026-10-07T08:00:00Z", 8, 95.0, 38.0),
        cycle("2026-10-07T12:00:00Z", 8, 95.0, 38.0),
    ]
    .concat();
    let verdict = rtr(&runs);
    assert_eq!(verdict.progress.days, 1);
    assert!(!verdict.progress.complete);
    assert_eq!(dates(&verdict), ["2026-10-07"]);
    assert_eq!(verdict.days[0].measurements[0], t("2026-10-07T08:00:00Z"));
    assert_eq!(verdict.outcome, Judgement::NoVerdict);

    let spread = [
        cycle("2026-10-01T08:00:00Z", 8, 95.0, 38.0),
        cycle("2026-10-08T08:00:00Z", 8, 95.0, 38.0),
        cycle("2026-10-15T08:00:00Z", 8, 95.0, 38.0),
    ]
    .concat();
    let verdict = rtr(&spread);
    assert!(!verdict.progress.complete);
    assert_eq!(dates(&verdict), ["2026-10-08", "2026-10-15"]);
    // Before any cycle, the figures cover every successful run.
    let verdict = rtr(&cycle("2026-10-05T18:00:00Z", 3, 95.0, 38.0));
    assert_eq!(verdict.progress.days, 0);
    let reached = criterion(&verdict, "reached_maximum", Some("download"));
    assert_eq!((reached.count, reached.of), (0, 3));
    assert!(reached.requirement.contains("no complete cycle yet"));
}

#[test]
fn at_rtr_failed_tests_keep_their_slot_but_do_not_count() {
    let mut runs = [
        cycle("2026-10-05T18:00:00Z", 8, 95.0, 38.0),
        cycle("2026-10-07T18:00:00Z", 8, 95.0, 38.0),
        cycle("2026-10-09T18:00:00Z", 8, 95.0, 38.0),
    ]
    .concat();
    for i in [1, 3, 5, 9, 11, 17] {
        runs[i] = failed_at(runs[i].time, Some(FailureKind::Network));
    }
    let verdict = rtr(&runs);
    assert_eq!(verdict.progress.days, 3);
    assert_eq!(verdict.progress.measurements, 18);
    assert!(verdict.progress.complete);
    assert_eq!(verdict.failed_runs, 6);
    // The first cycle lists its 5 successful tests, not the 3 failed ones.
    assert_eq!(verdict.days[0].measurements.len(), 5);
    assert_eq!(table(&verdict)[0], ("successful_tests", None, Info, 18, 24));
    // A 7th failure: 17 successful tests, short of 18.
    runs[20] = failed_at(runs[20].time, None);
    let verdict = rtr(&runs);
    assert_eq!(verdict.progress.days, 3);
    assert_eq!(verdict.progress.measurements, 17);
    assert!(!verdict.progress.complete);
}

#[test]
fn at_rtr_cycles_across_dst_and_among_other_runs() {
    // Sun 25 Oct in Vienna: from 02:30 CEST (00:30 UTC) every 15 minutes; after 02:45 CEST the
    // clock reads 02:00 CET (01:00 UTC). Elapsed time is 15 minutes throughout.
    let dst = cycle("2026-10-25T00:30:00Z", 8, 95.0, 38.0);
    // Mon 19 Oct with the monitor's own runs every hour on the hour (bad ones) and the
    // campaign's at :07; Wed 21 Oct with runs every 5 minutes, each within a cycle's slots.
    let mut monday = cycle("2026-10-19T08:07:00Z", 8, 95.0, 38.0);
    for hour in 8..11 {
        monday.push(ok(&format!("2026-10-19T{hour:02}:00:00Z"), 1.0, 1.0));
    }
    monday.sort_by_key(|run| run.time);
    let wednesday: Vec<Run> = (0..24)
        .map(|i| {
            ok_at(
                t("2026-10-21T08:00:00Z").saturating_add(minutes(5 * i)),
                95.0,
                38.0,
            )
        })
        .collect();
    let runs = [monday, wednesday, dst].concat();
    let verdict = rtr(&runs);
    assert!(verdict.progress.complete, "{verdict:#?}");
    assert_eq!(dates(&verdict), ["2026-10-19", "2026-10-21", "2026-10-25"]);
    assert_eq!(verdict.days[0].measurements[0], t("2026-10-19T08:07:00Z"));
    assert_eq!(verdict.days[2].measurements[7], t("2026-10-25T02:15:00Z"));
    // Every test of the cycles is at least 95 Mbit/s: the hourly bad runs are not in them.
    let reached = criterion(&verdict, "reached_normally_available", Some("download"));
    assert_eq!((reached.count, reached.of), (24, 24));
    let cycles = at_rtr::cycles(&cycle("2026-10-21T08:00:00Z", 16, 95.0, 38.0));
    assert_eq!(cycles.len(), 2);
    assert_eq!(cycles[1][0].time, t("2026-10-21T10:00:00Z"));
}

#[test]
fn at_rtr_without_contract_values() {
    let runs = cycle("2026-10-05T18:00:00Z", 8, 95.0, 38.0);
    let verdict = evaluate(RuleSet::AtRtr, &runs, &PlanHistory::default(), &vienna());
    assert_eq!(verdict.outcome, Judgement::NoVerdict);
    let reached = criterion(&verdict, "reached_maximum", Some("upload"));
    assert_eq!(reached.status, Na);
    assert!(reached.reason.as_deref().unwrap().contains("--upload-max"));
}

// ------------------------------------------------------------------------------------------
// us-fcc

fn new_york() -> Zone {
    Zone::parse("America/New_York").unwrap()
}

/// Advertised 100/10 Mbit/s, maximum 200/20.
fn us_plans() -> PlanHistory {
    PlanHistory::new(vec![version(
        "2026-01-01T00:00:00Z",
        speeds(Some(200.0), None, None, Some(100.0)),
        speeds(Some(20.0), None, None, Some(10.0)),
    )])
}

/// `n` runs every 30 minutes from 18:00 EST on 10 Nov 2026 (23:00 UTC), at `down`/`up`
/// Mbit/s and 30 ms.
fn evening(n: u64, down: f64, up: f64) -> Vec<Run> {
    (0..n)
        .map(|i| {
            let mut run = ok_at(
                t("2026-11-10T23:00:00Z").saturating_add(minutes(30 * i)),
                down,
                up,
            );
            run.ping_seconds = Some(0.03);
            run
        })
        .collect()
}

fn fcc(runs: &[Run]) -> Verdict {
    evaluate(RuleSet::UsFcc, runs, &us_plans(), &new_york())
}

#[allow(clippy::type_complexity)]
fn fcc_table(
    download: (CriterionStatus, u64, u64),
    upload: (CriterionStatus, u64, u64),
    latency: (CriterionStatus, u64, u64),
) -> Vec<(
    &'static str,
    Option<&'static str>,
    CriterionStatus,
    u64,
    u64,
)> {
    vec![
        (
            "speed_tests_reaching_80_percent",
            Some("download"),
            download.0,
            download.1,
            download.2,
        ),
        (
            "speed_tests_reaching_80_percent",
            Some("upload"),
            upload.0,
            upload.1,
            upload.2,
        ),
        (
            "latency_tests_within_100_ms",
            None,
            latency.0,
            latency.1,
            latency.2,
        ),
    ]
}

#[test]
fn us_fcc_met_and_the_window_bounds() {
    let mut runs = evening(10, 90.0, 9.0);
    // 17:59 EST and 00:00 EST the next day: outside, and bad.
    runs.push(ok("2026-11-10T22:59:00Z", 1.0, 1.0));
    runs.push(ok("2026-11-11T05:00:00Z", 1.0, 1.0));
    runs.sort_by_key(|run| run.time);
    let verdict = fcc(&runs);
    assert_eq!(verdict.outcome, Judgement::Met, "{verdict:#?}");
    assert_eq!(
        table(&verdict),
        fcc_table((Met, 10, 10), (Met, 10, 10), (Met, 10, 10))
    );
    assert_eq!(verdict.successful_runs, 12);
    assert_eq!(verdict.progress.measurements, 10);
    assert!(verdict.days.is_empty());
    let requirement = &verdict.criteria[0].requirement;
    assert!(
        requirement.contains("(80 Mbit/s of 100 Mbit/s, the contract's advertised download speed)"),
        "{requirement}"
    );
    assert!(verdict.label.starts_with("indicative: "));
    assert!(verdict.label.contains("carrier compliance standard"));
}

#[test]
fn us_fcc_not_met() {
    let verdict = fcc(&evening(10, 50.0, 5.0)
        .into_iter()
        .map(|mut run| {
            run.ping_seconds = Some(0.2);
            run
        })
        .collect::<Vec<_>>());
    assert_eq!(verdict.outcome, Judgement::NotMet);
    assert_eq!(
        table(&verdict),
        fcc_table((NotMet, 0, 10), (NotMet, 0, 10), (NotMet, 0, 10))
    );
}

#[test]
fn us_fcc_speed_alone_at_exactly_80_percent() {
    // 8 of 10 at exactly 80 Mbit/s (10,000,000 B/s = 80 % of 12,500,000), 2 at 79: 5·8 = 40
    // ≥ 4·10 = 40, met.
    let mut runs = evening(10, 80.0, 9.0);
    runs[0].download_bytes_per_second = Some(79.0 * MBIT);
    runs[1].download_bytes_per_second = Some(79.0 * MBIT);
    let verdict = fcc(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(
        table(&verdict),
        fcc_table((Met, 8, 10), (Met, 10, 10), (Met, 10, 10))
    );
    // A 3rd below: 7 of 10, not met.
    runs[2].download_bytes_per_second = Some(9_999_999.0);
    let verdict = fcc(&runs);
    assert_eq!(verdict.outcome, Judgement::NotMet);
    assert_eq!(
        table(&verdict),
        fcc_table((NotMet, 7, 10), (Met, 10, 10), (Met, 10, 10))
    );
}

#[test]
fn us_fcc_latency_alone_at_exactly_95_percent() {
    // 19 of 20 at exactly 100 ms, one at 101 ms: 20·19 = 380 ≥ 19·20 = 380, met.
    let mut runs: Vec<Run> = evening(12, 90.0, 9.0);
    runs.extend(evening(8, 90.0, 9.0).into_iter().map(|mut run| {
        run.time = run.time.saturating_add(minutes(24 * 60));
        run
    }));
    for run in &mut runs {
        run.ping_seconds = Some(100.0 / 1000.0);
    }
    runs[0].ping_seconds = Some(0.101);
    let verdict = fcc(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(
        table(&verdict),
        fcc_table((Met, 20, 20), (Met, 20, 20), (Met, 19, 20))
    );
    assert_eq!(verdict.progress.days, 2);
    runs[1].ping_seconds = Some(0.101);
    let verdict = fcc(&runs);
    assert_eq!(verdict.outcome, Judgement::NotMet);
    assert_eq!(
        table(&verdict),
        fcc_table((Met, 20, 20), (Met, 20, 20), (NotMet, 18, 20))
    );
}

#[test]
fn us_fcc_required_speed_is_advertised_else_maximum() {
    let maximum_only = PlanHistory::new(vec![version(
        "2026-01-01T00:00:00Z",
        speeds(Some(100.0), None, None, None),
        speeds(Some(10.0), None, None, None),
    )]);
    // Without an advertised speed, the maximum (100) is required: 75 < 80.
    let verdict = evaluate(
        RuleSet::UsFcc,
        &evening(10, 75.0, 9.0),
        &maximum_only,
        &new_york(),
    );
    assert_eq!(
        table(&verdict),
        fcc_table((NotMet, 0, 10), (Met, 10, 10), (Met, 10, 10))
    );
    let requirement = &verdict.criteria[0].requirement;
    assert!(
        requirement.contains("maximum download speed, as it states no advertised one"),
        "{requirement}"
    );
    // The advertised 100 is judged, not the maximum 200: 85 ≥ 80.
    let verdict = fcc(&evening(10, 85.0, 9.0));
    assert_eq!(verdict.outcome, Judgement::Met);
}

#[test]
fn us_fcc_too_few_measurements() {
    // Only daytime runs: nothing in the window.
    let verdict = fcc(&[ok("2026-11-10T15:00:00Z", 90.0, 9.0)]);
    assert_eq!(verdict.outcome, Judgement::NotAssessable);
    assert!(verdict.reason.clone().unwrap().contains("18:00 and 24:00"));
    assert_eq!(
        table(&verdict),
        fcc_table((Na, 0, 0), (Na, 0, 0), (Na, 0, 0))
    );
    assert!(!verdict.progress.complete);
    // No contract: the speeds cannot be judged, latency still can.
    let verdict = evaluate(
        RuleSet::UsFcc,
        &evening(4, 90.0, 9.0),
        &PlanHistory::default(),
        &new_york(),
    );
    assert_eq!(
        table(&verdict),
        fcc_table((Na, 0, 0), (Na, 0, 0), (Met, 4, 4))
    );
    assert!(
        verdict.criteria[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("plan set --download-advertised RATE")
    );
}

#[test]
fn us_fcc_window_follows_dst() {
    // US clocks go back on Sun 1 Nov 2026. 18:30 EDT on 31 Oct is 22:30 UTC; 18:30 EST on
    // 1 Nov is 23:30 UTC. 17:30 EDT (21:30 UTC) and 17:30 EST (22:30 UTC on 1 Nov) are outside.
    let runs = [
        ok("2026-10-31T21:30:00Z", 1.0, 1.0),
        ok("2026-10-31T22:30:00Z", 90.0, 9.0),
        ok("2026-11-01T22:30:00Z", 1.0, 1.0),
        ok("2026-11-01T23:30:00Z", 90.0, 9.0),
    ];
    let verdict = fcc(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(
        table(&verdict),
        fcc_table((Met, 2, 2), (Met, 2, 2), (Met, 2, 2))
    );
    assert_eq!(verdict.progress.days, 2);
}

// ------------------------------------------------------------------------------------------
// uk-ofcom

fn london() -> Zone {
    Zone::parse("Europe/London").unwrap()
}

/// Minimum guaranteed download 30 Mbit/s; upload stated but never judged.
fn uk_plans() -> PlanHistory {
    PlanHistory::new(vec![version(
        "2026-01-01T00:00:00Z",
        speeds(None, None, Some(30.0), Some(60.0)),
        speeds(None, None, Some(5.0), None),
    )])
}

fn ofcom(runs: &[Run]) -> Verdict {
    evaluate(RuleSet::UkOfcom, runs, &uk_plans(), &london())
}

#[allow(clippy::type_complexity)]
fn ofcom_table(
    all: (CriterionStatus, u64, u64),
    peak: (CriterionStatus, u64, u64),
    days: (CriterionStatus, u64, u64),
) -> Vec<(
    &'static str,
    Option<&'static str>,
    CriterionStatus,
    u64,
    u64,
)> {
    vec![
        (
            "below_minimum_guaranteed",
            Some("download"),
            all.0,
            all.1,
            all.2,
        ),
        (
            "below_minimum_guaranteed_at_peak",
            Some("download"),
            peak.0,
            peak.1,
            peak.2,
        ),
        (
            "days_below_minimum_guaranteed_at_peak",
            Some("download"),
            days.0,
            days.1,
            days.2,
        ),
    ]
}

#[test]
fn uk_ofcom_figures_across_dst() {
    // Tue 20 Oct (BST, +01:00): 19:59 (out, below), 20:00 (in, below), 21:59 (in, above),
    // 22:00 (out, below). Tue 27 Oct (GMT): 20:30 (in, below). Uploads of 1 Mbit/s never count.
    let runs = [
        ok("2026-10-20T18:59:00Z", 20.0, 1.0),
        ok("2026-10-20T19:00:00Z", 20.0, 1.0),
        ok("2026-10-20T20:59:00Z", 40.0, 1.0),
        ok("2026-10-20T21:00:00Z", 10.0, 1.0),
        ok("2026-10-27T20:30:00Z", 25.0, 1.0),
    ];
    let verdict = ofcom(&runs);
    assert_eq!(verdict.outcome, Judgement::NoVerdict);
    assert_eq!(verdict.reason, None);
    assert_eq!(
        table(&verdict),
        ofcom_table((Info, 4, 5), (Info, 2, 3), (Info, 2, 2))
    );
    assert!(verdict.criteria[0].requirement.contains("(30 Mbit/s)"));
    assert!(verdict.label.starts_with("indicative: "));
    assert!(
        verdict
            .label
            .contains("applies only if your provider signed it")
    );
    assert!(verdict.unverified.iter().any(|u| u.contains("20:00–22:00")));
}

#[test]
fn uk_ofcom_all_above_and_exactly_at_the_minimum() {
    // 30 Mbit/s is not below 30 Mbit/s.
    let runs = [
        ok("2026-10-20T19:00:00Z", 30.0, 1.0),
        ok("2026-10-20T19:30:00Z", 80.0, 1.0),
    ];
    assert_eq!(
        table(&ofcom(&runs)),
        ofcom_table((Info, 0, 2), (Info, 0, 2), (Info, 0, 1))
    );
}

#[test]
fn uk_ofcom_too_few_and_no_minimum() {
    // Only a morning run: nothing at peak.
    let verdict = ofcom(&[ok("2026-10-20T08:00:00Z", 10.0, 1.0)]);
    assert_eq!(verdict.outcome, Judgement::NoVerdict);
    assert_eq!(
        table(&verdict),
        ofcom_table((Info, 1, 1), (Na, 0, 0), (Na, 0, 0))
    );
    assert!(
        verdict.criteria[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("20:00 and 22:00")
    );
    // A contract without a minimum download speed.
    let no_minimum = PlanHistory::new(vec![version(
        "2026-01-01T00:00:00Z",
        speeds(None, None, None, Some(60.0)),
        speeds(None, None, None, None),
    )]);
    let verdict = evaluate(
        RuleSet::UkOfcom,
        &[ok("2026-10-20T19:00:00Z", 10.0, 1.0)],
        &no_minimum,
        &london(),
    );
    assert!(verdict.criteria.iter().all(|c| c.status == Na));
    assert!(
        verdict.criteria[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("plan set --download-min RATE")
    );
}

#[test]
fn a_year_of_one_minute_runs() {
    // The most a window holds (366 days) at the densest schedule: every rule set answers, and
    // de-bnetza takes the first days (1, 3, 5 Jan in Berlin).
    // From 01:00 Berlin on 1 Jan, when the contract takes effect.
    let start = t("2026-01-01T00:00:00Z");
    let runs: Vec<Run> = (0..366 * 24 * 60)
        .map(|m| ok_at(start.saturating_add(minutes(m)), 95.0, 38.0))
        .collect();
    let verdict = de(&runs);
    assert_eq!(verdict.outcome, Judgement::Met);
    assert_eq!(dates(&verdict), ["2026-01-01", "2026-01-03", "2026-01-05"]);
    // 01:00, 01:05, …, 01:20 Berlin, then 3 hours later: 04:20 Berlin, 03:20 UTC.
    assert_eq!(verdict.days[0].measurements[5], t("2026-01-01T03:20:00Z"));
    let rtr = evaluate(RuleSet::AtRtr, &runs, &eu_plans(), &vienna());
    assert!(rtr.progress.complete);
    assert_eq!(dates(&rtr), ["2026-01-01", "2026-01-02", "2026-01-03"]);
    let fcc = evaluate(RuleSet::UsFcc, &runs, &eu_plans(), &new_york());
    assert_eq!(fcc.progress.measurements, 366 * 6 * 60);
    let ofcom = evaluate(RuleSet::UkOfcom, &runs, &eu_plans(), &london());
    assert_eq!(ofcom.criteria[1].of, 366 * 2 * 60);
}
