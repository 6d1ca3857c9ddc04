//! `de-bnetza`: the Bundesnetzagentur's procedure for establishing that a fixed line deviates
//! from its contract (TKG § 57(4), Allgemeinverfügung Vfg. 99/2021), applied to this monitor's
//! runs as an indication. The numbers and where each comes from are in `docs/rules.md`.
//!
//! The protocol: 30 measurements, 10 on each of 3 calendar days of the verdict's zone, with a
//! free calendar day between measurement days, measurements of a day at least 5 minutes apart
//! (unverified) and at least 3 hours between the 5th and the 6th, all 3 days inside 14
//! calendar days (unverified). Measurements are never chosen: each day's are the first
//! successful runs in time order that keep the spacing, and the protocol is the earliest
//! complete one. Each direction is judged on its own, and a deviation in either is a deviation.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::civil::Date;

use super::{
    Contract, Criterion, CriterionStatus, Day, Describe, Judgement, Progress, RuleSet, Run,
    RunResult, Verdict, days_between, first_protocol, judged, plan_change, rate_text, reaches,
    share_at_least,
};
use crate::plan::{Direction, PlanHistory};
use crate::zone::Zone;

/// Measurements on each measurement day.
pub(crate) const MEASUREMENTS_PER_DAY: usize = 10;
/// Measurement days in a protocol.
pub(crate) const MEASUREMENT_DAYS: usize = 3;
/// Measurements in a protocol (10 on each of 3 days).
pub const MEASUREMENTS: usize = MEASUREMENTS_PER_DAY * MEASUREMENT_DAYS;
/// Free calendar days (at least) between two measurement days: with 1, a day after Monday's is
/// Wednesday at the earliest.
pub(crate) const FREE_DAYS_BETWEEN: u32 = 1;
/// The least time between the starts of two measurements of a day (unverified: reported by
/// the press only).
pub(crate) const MIN_SPACING: Duration = Duration::from_secs(5 * 60);
/// The least time between the starts of the 5th and the 6th measurement of a day.
pub(crate) const SPACING_BEFORE_SIXTH: Duration = Duration::from_secs(3 * 60 * 60);
/// All measurement days lie inside this many calendar days (the last at most 13 days after the
/// first). Unverified: reported by the press only.
pub(crate) const MAX_SPAN_DAYS: u32 = 14;
/// The share of the maximum that counts as reaching it (90 %), as `(numerator, denominator)`.
pub(crate) const MAXIMUM_SHARE: (u32, u32) = (9, 10);
/// The share of measurements that must reach the normally available speed (90 %).
pub(crate) const NORMALLY_AVAILABLE_SHARE: (u32, u32) = (9, 10);
/// Of the 3 days, on how many the maximum must be reached (90 % of it, at least once), and on
/// how many the minimum must not be undercut.
pub(crate) const DAYS_NEEDED: u64 = 2;

/// The least time between the start of a day's last measurement and the next, when `taken`
/// measurements of that day are already taken: none before the first, 3 hours before the
/// 6th, 5 minutes otherwise. What a campaign scheduler must wait at least.
pub fn spacing_before(taken: usize) -> Duration {
    match taken {
        0 => Duration::ZERO,
        5 => SPACING_BEFORE_SIXTH,
        _ => MIN_SPACING,
    }
}

const DESCRIBE: Describe = Describe {
    title: "Bundesnetzagentur (Germany): deviation of a fixed line's speed from the contract (TKG § 57(4))",
    label: "indicative: only a measurement campaign with the Bundesnetzagentur's own tool, the \
            breitbandmessung.de desktop app on a wired connection, establishes a deviation for a \
            reduction (Minderung) or termination; this verdict is not that evidence",
    unverified: &[
        "measurements of a day at least 5 minutes apart: reported by inside-digital.de (Dec 2021) only, not found in the Bundesnetzagentur's own text",
        "all 3 measurement days inside 14 calendar days (the last at most 13 days after the first): reported by inside-digital.de (Dec 2021) only; enforced",
        "the Allgemeinverfügung Vfg. 99/2021 itself could not be read: the criteria are taken from press quoting it (computerbase.de, Gerpott in NET 12/2022) and ANGA",
        "no tolerance is applied to the thresholds: none is documented in any reachable source",
    ],
    sources: &[
        "TKG § 57(4) Satz 1 Nr. 1, Satz 2 (BGBl. I 2021 S. 1858, 23 June 2021): a deviation established with the Bundesnetzagentur's monitoring mechanism allows a reduction or termination",
        "Bundesnetzagentur, breitbandmessung.de/desktop-app: 30 measurements on 3 different calendar days, at least one calendar day between measurement days, download and upload",
        "Bundesnetzagentur, Allgemeinverfügung Vfg. 99/2021 (ABl. 23/2021, 8 Dec 2021, in force 13 Dec 2021): the three criteria, as quoted by computerbase.de (Dec 2021) and Gerpott, NET 12/2022 p. 41",
        "ANGA, Dec 2021: 3 hours between the 5th and 6th measurement of a day; criteria apply to download and upload",
        "inside-digital.de, Dec 2021: 10 measurements a day, at least 5 minutes apart, 3 days inside 14 days",
    ],
};

/// The dates at `indices` of `dates`.
fn pick(dates: &[Date], indices: &[usize]) -> Vec<Date> {
    indices
        .iter()
        .filter_map(|&i| dates.get(i).copied())
        .collect()
}

/// A measurement: a successful run with both rates.
fn is_measurement(run: &Run) -> bool {
    run.result == RunResult::Success
        && run.download_bytes_per_second.is_some()
        && run.upload_bytes_per_second.is_some()
}

/// The `de-bnetza` verdict of `runs` (time order).
pub(super) fn evaluate(runs: &[Run], plans: &PlanHistory, zone: &Zone) -> Verdict {
    let mut verdict = DESCRIBE.verdict(RuleSet::DeBnetza, zone, runs);

    // Each local date's measurements, taken greedily in time order; at most 10 a date.
    let mut by_date: BTreeMap<Date, Vec<Run>> = BTreeMap::new();
    for run in runs.iter().filter(|run| is_measurement(run)) {
        let taken = by_date.entry(zone.local_date(run.time)).or_default();
        let spaced = taken
            .last()
            .is_none_or(|prev| run.time.duration_since(prev.time) >= spacing_before(taken.len()));
        if taken.len() < MEASUREMENTS_PER_DAY && spaced {
            taken.push(*run);
        }
    }
    let full: Vec<Date> = by_date
        .iter()
        .filter(|(_, taken)| taken.len() == MEASUREMENTS_PER_DAY)
        .map(|(date, _)| *date)
        .collect();
    let min_gap = i64::from(FREE_DAYS_BETWEEN) + 1;
    let span = i64::from(MAX_SPAN_DAYS);
    let latest = by_date.last_key_value().map(|(date, _)| *date);
    let (mut used, complete) = match first_protocol(&full, MEASUREMENT_DAYS, min_gap, span, latest)
    {
        Ok(chain) => (pick(&full, &chain), true),
        Err(chain) => (pick(&full, &chain), false),
    };
    // A day still being measured counts towards progress when it may follow the others.
    if !complete
        && let Some((&date, taken)) = by_date.last_key_value()
        && taken.len() < MEASUREMENTS_PER_DAY
        && used
            .last()
            .is_none_or(|&last| days_between(last, date) >= min_gap)
    {
        used.push(date);
    }
    let days: Vec<(Date, &[Run])> = used
        .iter()
        .filter_map(|date| by_date.get(date).map(|taken| (*date, taken.as_slice())))
        .collect();

    let measurements = days.iter().map(|(_, taken)| taken.len()).sum::<usize>();
    let full_days = days
        .iter()
        .filter(|(_, taken)| taken.len() == MEASUREMENTS_PER_DAY)
        .count();
    verdict.progress = Progress {
        measurements: measurements as u64,
        measurements_required: MEASUREMENTS as u64,
        days: full_days as u64,
        days_required: MEASUREMENT_DAYS as u64,
        complete,
    };
    verdict.days = days
        .iter()
        .map(|(date, taken)| Day {
            date: date.to_string(),
            measurements: taken.iter().map(|run| run.time).collect(),
        })
        .collect();

    let first = days.first().and_then(|(_, taken)| taken.first());
    let last = days.last().and_then(|(_, taken)| taken.last());
    let change = match (first, last) {
        (Some(first), Some(last)) => {
            plan_change(plans, first.time, last.time).map(|at| (at, first.time, last.time))
        }
        _ => None,
    };
    let blocked = if verdict.successful_runs == 0 {
        Some(
            "no successful run in the window: de-bnetza needs 30 measurements, 10 on each of 3 \
             calendar days"
                .to_owned(),
        )
    } else if !complete {
        Some(format!(
            "the measurement protocol is incomplete: {full_days} of {MEASUREMENT_DAYS} measurement \
             days with {MEASUREMENTS_PER_DAY} measurements each ({measurements} of {MEASUREMENTS} \
             measurements); a day counts with 10 measurements at least 5 minutes apart and 3 hours \
             between the 5th and the 6th, with a free calendar day between measurement days, all \
             inside 14 calendar days"
        ))
    } else {
        change.map(|(at, first, last)| match plans.in_force_at(first) {
            None => format!(
                "no contract was in force at the first measurement used ({first}), only from \
                 {at}: store the contract that applied with internet-monitor plan set --from \
                 TIME …"
            ),
            Some(_) => format!(
                "the contract changed at {at}, between the first ({first}) and the last ({last}) \
                 measurement used: a campaign is judged under one contract, so start a new one"
            ),
        })
    };

    for direction in [Direction::Download, Direction::Upload] {
        for mut criterion in criteria(&days, direction, plans) {
            if criterion.status != CriterionStatus::NotAssessable
                && let Some(why) = &blocked
            {
                criterion.status = CriterionStatus::NotAssessable;
                criterion.reason = Some(why.clone());
            }
            verdict.criteria.push(criterion);
        }
    }
    (verdict.outcome, verdict.reason) = match blocked {
        Some(why) => (Judgement::NotAssessable, Some(why)),
        None => judged(&verdict.criteria),
    };
    verdict
}

/// The three criteria for `direction` over the measurement `days`, each judged against the
/// plan version in force at each measurement; `not_assessable` where the contract value is
/// missing.
fn criteria(days: &[(Date, &[Run])], direction: Direction, plans: &PlanHistory) -> [Criterion; 3] {
    let name = direction.name();
    let first = days.first().and_then(|(_, taken)| taken.first());
    // The contract value of `contract` for each measurement; `None` when one lacks it.
    let value_at =
        |contract: Contract, run: &Run| contract.of(plans.in_force_at(run.time), direction);
    let stated = |contract: Contract| match first {
        Some(_) => days
            .iter()
            .flat_map(|(_, taken)| taken.iter())
            .all(|run| value_at(contract, run).is_some()),
        None => contract.of(plans.versions().last(), direction).is_some(),
    };
    let shown = |contract: Contract| first.and_then(|run| value_at(contract, run));
    // Without the contract value nothing was counted: "0 of 0", as in every rule set (a
    // minimum never stated would otherwise read as "kept on 3 of 3 days").
    let build = |id, contract: Contract, requirement: String, count, of, unit, met: bool| {
        let (status, reason, count, of) = if !stated(contract) {
            (
                CriterionStatus::NotAssessable,
                Some(contract.missing(direction)),
                0,
                0,
            )
        } else if met {
            (CriterionStatus::Met, None, count, of)
        } else {
            (CriterionStatus::NotMet, None, count, of)
        };
        Criterion {
            id,
            direction: Some(name),
            requirement,
            status,
            count,
            of,
            unit,
            reason,
        }
    };
    let day_count = days.len() as u64;

    // C1: 90 % of the maximum reached at least once on at least 2 of the 3 days.
    let reached_days = days
        .iter()
        .filter(|(_, taken)| {
            taken.iter().any(
                |run| match (value_at(Contract::Maximum, run), run.rate(direction)) {
                    (Some(maximum), Some(rate)) => reaches(rate, MAXIMUM_SHARE, maximum),
                    _ => false,
                },
            )
        })
        .count() as u64;
    let maximum_text = match shown(Contract::Maximum) {
        Some(maximum) => format!(
            "90 % of the contract's maximum {name} speed ({} of {}) reached at least once on at \
             least 2 of the 3 measurement days",
            rate_text(maximum * 9.0 / 10.0),
            rate_text(maximum)
        ),
        None => format!(
            "90 % of the contract's maximum {name} speed reached at least once on at least 2 of \
             the 3 measurement days"
        ),
    };

    // C2: the normally available speed reached in at least 90 % of the measurements.
    let measured = days
        .iter()
        .map(|(_, taken)| taken.len() as u64)
        .sum::<u64>();
    let normal_reached = days
        .iter()
        .flat_map(|(_, taken)| taken.iter())
        .filter(|run| {
            match (
                value_at(Contract::NormallyAvailable, run),
                run.rate(direction),
            ) {
                (Some(normal), Some(rate)) => rate >= normal,
                _ => false,
            }
        })
        .count() as u64;
    let normal_text = match shown(Contract::NormallyAvailable) {
        Some(normal) => format!(
            "the contract's normally available {name} speed ({}) reached in at least 90 % of the \
             30 measurements",
            rate_text(normal)
        ),
        None => format!(
            "the contract's normally available {name} speed reached in at least 90 % of the 30 \
             measurements"
        ),
    };

    // C3: the minimum undercut on at least 2 of the 3 days is a deviation, so it is kept when
    // at least 2 days have no measurement below it.
    let kept_days = days
        .iter()
        .filter(|(_, taken)| {
            !taken.iter().any(
                |run| match (value_at(Contract::Minimum, run), run.rate(direction)) {
                    (Some(minimum), Some(rate)) => rate < minimum,
                    _ => false,
                },
            )
        })
        .count() as u64;
    let minimum_text = match shown(Contract::Minimum) {
        Some(minimum) => format!(
            "the contract's minimum {name} speed ({}) not undercut on at least 2 of the 3 \
             measurement days (undercut at least once on 2 or more days is a deviation)",
            rate_text(minimum)
        ),
        None => format!(
            "the contract's minimum {name} speed not undercut on at least 2 of the 3 measurement \
             days (undercut at least once on 2 or more days is a deviation)"
        ),
    };

    [
        build(
            "maximum_reached_on_days",
            Contract::Maximum,
            maximum_text,
            reached_days,
            day_count,
            "days",
            reached_days >= DAYS_NEEDED,
        ),
        build(
            "normally_available_reached",
            Contract::NormallyAvailable,
            normal_text,
            normal_reached,
            measured,
            "measurements",
            share_at_least(normal_reached, measured, NORMALLY_AVAILABLE_SHARE),
        ),
        build(
            "minimum_kept_on_days",
            Contract::Minimum,
            minimum_text,
            kept_days,
            day_count,
            "days",
            kept_days >= DAYS_NEEDED,
        ),
    ]
}
