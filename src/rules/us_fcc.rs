//! `us-fcc`: the FCC's performance-measures test for carriers receiving high-cost (Connect
//! America Fund) support, applied to one line as an indication: in the daily test period
//! 18:00–24:00 local, at least 80 % of the speed tests of each direction reach 80 % of the
//! required speed, and at least 95 % of the latency tests are at or below 100 ms. The numbers
//! and where each comes from are in `docs/rules.md`.
//!
//! The "required speed" is the carrier's support obligation; for one line this project uses
//! the contract's advertised speed, else its maximum, and says which in each requirement.
//! Latency is this monitor's idle latency, one per run, standing in for the FCC's
//! once-a-minute latency test.

use super::{
    Contract, Criterion, CriterionStatus, Describe, Progress, RuleSet, Run, RunResult, Verdict,
    in_window, judged, rate_text, reaches, share_at_least,
};
use crate::plan::{Direction, PlanHistory};
use crate::zone::Zone;

/// The first local hour of the daily test period (18:00).
pub(crate) const PEAK_START_HOUR: u8 = 18;
/// The local hour the daily test period ends at, exclusive (24 = midnight).
pub(crate) const PEAK_END_HOUR: u8 = 24;
/// The share of the required speed a speed test must reach (80 %).
pub(crate) const SPEED_SHARE: (u32, u32) = (4, 5);
/// The share of speed tests that must reach it (80 %).
pub(crate) const SPEED_TESTS_SHARE: (u32, u32) = (4, 5);
/// The round-trip latency a latency test must not exceed: 100 ms, in seconds.
pub(crate) const LATENCY_LIMIT_SECONDS: f64 = 0.1;
/// The share of latency tests that must be within it (95 %).
pub(crate) const LATENCY_TESTS_SHARE: (u32, u32) = (19, 20);

const DESCRIBE: Describe = Describe {
    title: "FCC (United States): performance-measures test for high-cost supported carriers",
    label: "indicative: a carrier compliance standard for subsidised (high-cost) networks, tested \
            by the carrier on a USAC-drawn sample of locations against an FCC-designated \
            internet exchange point during one week a quarter; applied here to one line as an \
            indication only, with no consumer remedy attached",
    unverified: &[
        "the 18:00–24:00 local test period: from carriers' and trade press pages; the FCC orders' paragraphs (DA 18-710, FCC 19-104) could not be read",
        "the required speed is the carrier's support tier; this project uses the contract's advertised speed, else its maximum",
        "latency is one idle latency per run, not the FCC's one test a minute, and the servers are not FCC-designated exchange points",
        "outlier exclusions the FCC may apply (FCC 19-104) are not applied",
    ],
    sources: &[
        "FCC DA 18-710 (6 July 2018; 83 FR 42052, 20 Aug 2018): performance measures for high-cost support, timing of tests, standards for full compliance",
        "FCC 19-104, Order on Reconsideration (31 Oct 2019; 84 FR 67220, 9 Dec 2019): daily test period, speed and latency test requirements",
        "USAC, Performance Measures Testing (webinar, 12 Dec 2024): 80 % of speed tests at or above 80 % of the required speed; 95 % of latency tests at or below 100 ms",
        "tellusventure.com (2018) and carriers' pages (southslope.com, smithville.com): tests between 6 pm and 12 am local time",
    ],
};

/// The `us-fcc` verdict of `runs` (time order).
pub(super) fn evaluate(runs: &[Run], plans: &PlanHistory, zone: &Zone) -> Verdict {
    let mut verdict = DESCRIBE.verdict(RuleSet::UsFcc, zone, runs);
    let window = (PEAK_START_HOUR, PEAK_END_HOUR);
    let tests: Vec<&Run> = runs
        .iter()
        .filter(|run| run.result == RunResult::Success && in_window(zone, run.time, window))
        .collect();
    let mut dates: Vec<jiff::civil::Date> =
        tests.iter().map(|run| zone.local_date(run.time)).collect();
    dates.dedup();
    verdict.progress = Progress {
        measurements: tests.len() as u64,
        measurements_required: 0,
        days: dates.len() as u64,
        days_required: 0,
        complete: !tests.is_empty(),
    };
    for direction in [Direction::Download, Direction::Upload] {
        verdict.criteria.push(speed(&tests, plans, direction));
    }
    verdict.criteria.push(latency(&tests));
    (verdict.outcome, verdict.reason) = judged(&verdict.criteria);
    verdict
}

/// Why a criterion has nothing to judge.
const NO_TESTS: &str = "no successful run between 18:00 and 24:00 local time";

/// 80 % of the window's speed tests of `direction` at 80 % of the required speed in force at
/// each.
fn speed(tests: &[&Run], plans: &PlanHistory, direction: Direction) -> Criterion {
    let name = direction.name();
    let mut count = 0u64;
    let mut of = 0u64;
    for run in tests {
        if let (Some(required), Some(rate)) = (
            Contract::Required.of(plans.in_force_at(run.time), direction),
            run.rate(direction),
        ) {
            of += 1;
            if reaches(rate, SPEED_SHARE, required) {
                count += 1;
            }
        }
    }
    let version = tests
        .last()
        .map_or(plans.versions().last(), |run| plans.in_force_at(run.time));
    let required = Contract::Required.of(version, direction);
    let advertised = version.is_some_and(|v| match direction {
        Direction::Download => v.download.advertised.is_some(),
        Direction::Upload => v.upload.advertised.is_some(),
    });
    let which = if advertised {
        format!("the contract's advertised {name} speed")
    } else {
        format!("the contract's maximum {name} speed, as it states no advertised one")
    };
    let requirement = match required {
        Some(required) => format!(
            "at least 80 % of the {name} speed tests between 18:00 and 24:00 local reach 80 % of \
             the required speed ({} of {}, {which})",
            rate_text(required * 4.0 / 5.0),
            rate_text(required)
        ),
        None => format!(
            "at least 80 % of the {name} speed tests between 18:00 and 24:00 local reach 80 % of \
             the required speed (the contract's advertised, else maximum, {name} speed)"
        ),
    };
    let (status, reason) = if required.is_none() || (of == 0 && !tests.is_empty()) {
        (
            CriterionStatus::NotAssessable,
            Some(Contract::Required.missing(direction)),
        )
    } else if of == 0 {
        (CriterionStatus::NotAssessable, Some(NO_TESTS.to_owned()))
    } else if share_at_least(count, of, SPEED_TESTS_SHARE) {
        (CriterionStatus::Met, None)
    } else {
        (CriterionStatus::NotMet, None)
    };
    Criterion {
        id: "speed_tests_reaching_80_percent",
        direction: Some(name),
        requirement,
        status,
        count,
        of,
        unit: "measurements",
        reason,
    }
}

/// 95 % of the window's latency tests at or below 100 ms.
fn latency(tests: &[&Run]) -> Criterion {
    let latencies: Vec<f64> = tests.iter().filter_map(|run| run.ping_seconds).collect();
    let of = latencies.len() as u64;
    let count = latencies
        .iter()
        .filter(|&&ping| ping <= LATENCY_LIMIT_SECONDS)
        .count() as u64;
    let (status, reason) = if of == 0 {
        (CriterionStatus::NotAssessable, Some(NO_TESTS.to_owned()))
    } else if share_at_least(count, of, LATENCY_TESTS_SHARE) {
        (CriterionStatus::Met, None)
    } else {
        (CriterionStatus::NotMet, None)
    };
    Criterion {
        id: "latency_tests_within_100_ms",
        direction: None,
        requirement: "at least 95 % of the latency tests between 18:00 and 24:00 local at or \
                      below 100 ms round trip (idle latency, one per run)"
            .to_owned(),
        status,
        count,
        of,
        unit: "measurements",
        reason,
    }
}
