//! `at-rtr`: RTR's certified measurement (zertifizierte Messung, netztest.at), applied to this
//! monitor's runs as an indication. RTR defines no pass or fail: the output is how complete
//! the measurement protocol is and figures per direction, never a verdict. The numbers and
//! where each comes from are in `docs/rules.md`.
//!
//! A cycle is [`TESTS_PER_CYCLE`] tests in a row, each starting 15 minutes (± 1 minute) after
//! the one before, measured as elapsed time: 8 slots of 15 minutes are the 2 hours RTR asks
//! for. A failed test keeps its slot (the protocol ran it) but is not a measurement. A cycle's
//! day is the local date of its first test; the protocol is the first cycle of each of 3
//! different days inside 2 weeks, the earliest such.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::civil::Date;

use super::{
    Contract, Criterion, CriterionStatus, Day, Describe, Judgement, Progress, RuleSet, Run,
    RunResult, Verdict, first_protocol, rate_text,
};
use crate::plan::{Direction, PlanHistory};
use crate::zone::Zone;

/// The time between the starts of two tests of a cycle.
pub(crate) const TEST_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// How far a test may start from [`TEST_INTERVAL`] after the one before and still follow it
/// (this project's choice: a scheduler's jitter, not RTR's).
pub(crate) const INTERVAL_TOLERANCE: Duration = Duration::from_secs(60);
/// Tests in a cycle: netztest.at's default (8 slots of 15 minutes = 2 hours).
pub(crate) const TESTS_PER_CYCLE: usize = 8;
/// Cycles in a protocol, each on a different calendar day.
pub(crate) const CYCLES: usize = 3;
/// All cycles lie inside this many calendar days (2 weeks; the last at most 13 days after the
/// first).
pub(crate) const MAX_SPAN_DAYS: u32 = 14;
/// Successful tests a protocol needs in total (reported by a secondary source only).
pub(crate) const SUCCESSFUL_TESTS: u64 = 18;

const DESCRIBE: Describe = Describe {
    title: "RTR (Austria): certified measurement (zertifizierte Messung)",
    label: "indicative: the certified measurement is made in a browser at netztest.at \
            (Zertifizierte Messung), on a computer used for nothing else with no one else on the \
            line; RTR sets no pass or fail, its conciliation body or a court decides",
    unverified: &[
        "at least 18 successful tests in total: reported by ORF Ö3 only, not found in RTR's own text",
        "a test may start 14 to 16 minutes after the one before: this project's tolerance; RTR's app schedules them 15 minutes apart",
        "RTR's checklist (Anleitung zur zertifizierten Messung) could not be read",
    ],
    sources: &[
        "RTR, netztest.at certified measurement introduction (open-rmbt-website, certified-step-1): cycles of at least 2 hours with a test every 15 minutes, at least 3 cycles on 3 different days within 2 weeks; no verdict",
        "RTR, netztest.at configuration (open-rmbt-website, environment.prod.ts): 8 tests per cycle, 15 minutes apart",
        "RTR FAQ \"Was ist die zertifizierte Messung?\": the measurement establishes facts; the conciliation body or a court judges them",
        "ORF Ö3 on the certified measurement: at least 18 successful single measurements",
    ],
};

/// The `at-rtr` figures of `runs` (time order).
pub(super) fn evaluate(runs: &[Run], plans: &PlanHistory, zone: &Zone) -> Verdict {
    let mut verdict = DESCRIBE.verdict(RuleSet::AtRtr, zone, runs);
    verdict.outcome = Judgement::NoVerdict;

    // The first cycle of each local date.
    let mut by_date: BTreeMap<Date, Vec<Run>> = BTreeMap::new();
    for cycle in cycles(runs) {
        if let Some(first) = cycle.first() {
            by_date.entry(zone.local_date(first.time)).or_insert(cycle);
        }
    }
    let dates: Vec<Date> = by_date.keys().copied().collect();
    let latest = runs.last().map(|run| zone.local_date(run.time));
    let (chain, complete) =
        match first_protocol(&dates, CYCLES, 1, i64::from(MAX_SPAN_DAYS), latest) {
            Ok(chain) => (chain, true),
            Err(chain) => (chain, false),
        };
    let used: Vec<(Date, &[Run])> = chain
        .iter()
        .filter_map(|&i| dates.get(i))
        .filter_map(|date| by_date.get(date).map(|cycle| (*date, cycle.as_slice())))
        .collect();
    let tests: Vec<&Run> = used.iter().flat_map(|(_, cycle)| cycle.iter()).collect();
    let successes = tests
        .iter()
        .filter(|run| run.result == RunResult::Success)
        .count() as u64;
    verdict.progress = Progress {
        measurements: successes,
        measurements_required: SUCCESSFUL_TESTS,
        days: used.len() as u64,
        days_required: CYCLES as u64,
        complete: complete && successes >= SUCCESSFUL_TESTS,
    };
    verdict.days = used
        .iter()
        .map(|(date, cycle)| Day {
            date: date.to_string(),
            measurements: cycle
                .iter()
                .filter(|run| run.result == RunResult::Success)
                .map(|run| run.time)
                .collect(),
        })
        .collect();

    verdict.criteria.push(Criterion {
        id: "successful_tests",
        direction: None,
        requirement: format!(
            "at least {SUCCESSFUL_TESTS} successful tests in the {CYCLES} cycles (of {} tests; \
             reported by a secondary source, unverified)",
            tests.len()
        ),
        status: CriterionStatus::Informational,
        count: successes,
        of: tests.len() as u64,
        unit: "measurements",
        reason: None,
    });
    // The figures: over the cycles' successful tests, or every successful run before a cycle.
    let (judged, scope): (Vec<&Run>, &str) = if used.is_empty() {
        (
            runs.iter()
                .filter(|run| run.result == RunResult::Success)
                .collect(),
            "of all successful runs in the window (no complete cycle yet)",
        )
    } else {
        (
            tests
                .into_iter()
                .filter(|run| run.result == RunResult::Success)
                .collect(),
            "of the successful tests in the cycles",
        )
    };
    for direction in [Direction::Download, Direction::Upload] {
        for (id, contract, words, below) in [
            (
                "reached_maximum",
                Contract::Maximum,
                "reaching the contract's maximum",
                false,
            ),
            (
                "reached_normally_available",
                Contract::NormallyAvailable,
                "reaching the contract's normally available",
                false,
            ),
            (
                "below_minimum",
                Contract::Minimum,
                "below the contract's minimum",
                true,
            ),
        ] {
            verdict.criteria.push(figure(
                &judged, plans, direction, id, contract, words, below, scope,
            ));
        }
    }
    verdict
}

/// One informational figure: how many of `runs` are at or above (`below`: below) the contract
/// speed `contract` of `direction` in force at each run.
#[allow(clippy::too_many_arguments)]
fn figure(
    runs: &[&Run],
    plans: &PlanHistory,
    direction: Direction,
    id: &'static str,
    contract: Contract,
    words: &str,
    below: bool,
    scope: &str,
) -> Criterion {
    let mut count = 0u64;
    let mut of = 0u64;
    for run in runs {
        if let (Some(value), Some(rate)) = (
            contract.of(plans.in_force_at(run.time), direction),
            run.rate(direction),
        ) {
            of += 1;
            if (rate < value) == below {
                count += 1;
            }
        }
    }
    let shown = runs
        .first()
        .and_then(|run| contract.of(plans.in_force_at(run.time), direction))
        .or_else(|| contract.of(plans.versions().last(), direction));
    let name = direction.name();
    let requirement = match shown {
        Some(value) => format!("tests {words} {name} speed ({}), {scope}", rate_text(value)),
        None => format!("tests {words} {name} speed, {scope}"),
    };
    let missing = shown.is_none() || (of == 0 && !runs.is_empty());
    Criterion {
        id,
        direction: Some(name),
        requirement,
        status: if missing {
            CriterionStatus::NotAssessable
        } else {
            CriterionStatus::Informational
        },
        count,
        of,
        unit: "measurements",
        reason: missing.then(|| contract.missing(direction)),
    }
}

/// The cycles among `runs` (time order, failures included), oldest first: runs of
/// [`TESTS_PER_CYCLE`] tests, each starting [`TEST_INTERVAL`] ± [`INTERVAL_TOLERANCE`] after
/// the one before, none overlapping an earlier cycle. Runs between the slots (the monitor's
/// own schedule, a retry) are passed over, not breaks: each test follows the candidate 14 to
/// 16 minutes before it that has the longest chain behind it (of equal ones, the latest).
pub fn cycles(runs: &[Run]) -> Vec<Vec<Run>> {
    let earliest = TEST_INTERVAL.saturating_sub(INTERVAL_TOLERANCE);
    let latest = TEST_INTERVAL.saturating_add(INTERVAL_TOLERANCE);
    // chain[i]: the length of the chain ending at run i, and the run before it in the chain.
    let mut chain: Vec<(usize, Option<usize>)> = Vec::with_capacity(runs.len());
    let mut cycles = Vec::new();
    // Runs up to and including this index belong to an accepted cycle or before it.
    let mut taken_until: Option<usize> = None;
    let mut window_start = 0;
    for (i, run) in runs.iter().enumerate() {
        while window_start < i && run.time.duration_since(runs[window_start].time) > latest {
            window_start += 1;
        }
        let mut before: Option<usize> = None;
        for (j, candidate) in runs.iter().enumerate().take(i).skip(window_start) {
            if run.time.duration_since(candidate.time) < earliest {
                break;
            }
            if taken_until.is_some_and(|taken| j <= taken) {
                continue;
            }
            if before.is_none_or(|b| chain[j].0 >= chain[b].0) {
                before = Some(j);
            }
        }
        let length = before.map_or(1, |b| chain[b].0 + 1);
        chain.push((length, before));
        if length >= TESTS_PER_CYCLE {
            // The last TESTS_PER_CYCLE runs of the chain, if they all follow the last cycle.
            let mut members = vec![i];
            let mut at = i;
            while members.len() < TESTS_PER_CYCLE
                && let Some(previous) = chain[at].1
            {
                members.push(previous);
                at = previous;
            }
            let after_last = taken_until.is_none_or(|taken| at > taken);
            if members.len() == TESTS_PER_CYCLE && after_last {
                members.reverse();
                cycles.push(members.iter().map(|&m| runs[m]).collect());
                taken_until = Some(i);
            }
        }
    }
    cycles
}
