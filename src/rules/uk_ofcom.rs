//! `uk-ofcom`: Ofcom's voluntary broadband speeds codes of practice, applied to this monitor's
//! runs as an indication. The code guarantees a minimum download speed (no upload) and lets a
//! customer leave when it is not restored within 30 days of reporting it; it defines no test a
//! customer runs, so there is no verdict: the figures are runs below the minimum guaranteed
//! speed, overall and in 20:00–22:00 local (the residential peak hours, this project's
//! heuristic), as evidence for a complaint. Numbers and sources are in `docs/rules.md`.

use super::{
    Contract, Criterion, CriterionStatus, Describe, Judgement, Progress, RuleSet, Run, RunResult,
    Verdict, in_window, rate_text,
};
use crate::plan::{Direction, PlanHistory};
use crate::zone::Zone;

/// The first local hour of the peak window (20:00).
pub(crate) const PEAK_START_HOUR: u8 = 20;
/// The local hour the peak window ends at, exclusive (22:00).
pub(crate) const PEAK_END_HOUR: u8 = 22;

const DESCRIBE: Describe = Describe {
    title: "Ofcom (United Kingdom): voluntary broadband speeds code of practice, minimum guaranteed download speed",
    label: "indicative: the code is voluntary and applies only if your provider signed it; report \
            the problem to the provider, whose own diagnosis decides, and if the minimum \
            guaranteed speed is not restored within 30 days you may leave without penalty \
            (Ofcom, Codes of practice); runs in 20:00–22:00 are this project's heuristic, not \
            Ofcom's test",
    unverified: &[
        "the 20:00–22:00 peak window: from secondary sources (thinkbroadband, uswitch); Ofcom's code annex defining peak time could not be read",
        "the code defines no test a customer runs: counting runs below the minimum guaranteed speed is this project's heuristic",
    ],
    sources: &[
        "Ofcom, Better Broadband Speeds Information: Voluntary Codes of Practice (statement, 1 March 2018; purchases from 1 March 2019): minimum guaranteed download speed reflecting peak-time speeds",
        "Ofcom, Codes of practice page: right to exit if the download speed falls below the minimum guaranteed and is not fixed within 30 days",
        "Ofcom, Updating and clarifying customers' right to exit (in force 21 Dec 2022): the exit right extends to bundled services; signatories listed",
        "thinkbroadband news 7965 (March 2018): residential peak time 8 pm to 10 pm",
    ],
};

/// The `uk-ofcom` figures of `runs` (time order).
pub(super) fn evaluate(runs: &[Run], plans: &PlanHistory, zone: &Zone) -> Verdict {
    let mut verdict = DESCRIBE.verdict(RuleSet::UkOfcom, zone, runs);
    verdict.outcome = Judgement::NoVerdict;
    let window = (PEAK_START_HOUR, PEAK_END_HOUR);
    let direction = Direction::Download;
    // Each successful run with a download rate and a minimum in force: (run, below it, at peak).
    let mut judged: Vec<(&Run, bool, bool)> = Vec::new();
    let mut unjudged = 0u64;
    for run in runs.iter().filter(|run| run.result == RunResult::Success) {
        match (
            Contract::Minimum.of(plans.in_force_at(run.time), direction),
            run.rate(direction),
        ) {
            (Some(minimum), Some(rate)) => {
                judged.push((run, rate < minimum, in_window(zone, run.time, window)))
            }
            _ => unjudged += 1,
        }
    }
    let peak: Vec<&(&Run, bool, bool)> = judged.iter().filter(|(_, _, peak)| *peak).collect();
    let mut peak_dates: Vec<(jiff::civil::Date, bool)> = Vec::new();
    for (run, below, _) in &peak {
        let date = zone.local_date(run.time);
        match peak_dates.last_mut() {
            Some((last, any_below)) if *last == date => *any_below |= *below,
            _ => peak_dates.push((date, *below)),
        }
    }
    verdict.progress = Progress {
        measurements: peak.len() as u64,
        measurements_required: 0,
        days: peak_dates.len() as u64,
        days_required: 0,
        complete: !peak.is_empty(),
    };

    let shown = runs
        .last()
        .map_or(plans.versions().last(), |run| plans.in_force_at(run.time));
    let minimum = Contract::Minimum.of(shown, direction);
    let speed = minimum.map_or_else(String::new, |m| format!(" ({})", rate_text(m)));
    let missing = judged.is_empty() && (unjudged > 0 || minimum.is_none());
    let status = |of: u64, none: &str| {
        if missing {
            (
                CriterionStatus::NotAssessable,
                Some(Contract::Minimum.missing(direction)),
            )
        } else if of == 0 {
            (CriterionStatus::NotAssessable, Some(none.to_owned()))
        } else {
            (CriterionStatus::Informational, None)
        }
    };
    let below = |runs: &[&(&Run, bool, bool)]| runs.iter().filter(|(_, b, _)| *b).count() as u64;

    let all: Vec<&(&Run, bool, bool)> = judged.iter().collect();
    let (s, reason) = status(all.len() as u64, "no successful run in the window");
    verdict.criteria.push(Criterion {
        id: "below_minimum_guaranteed",
        direction: Some("download"),
        requirement: format!(
            "runs below the minimum guaranteed download speed{speed}, at any hour"
        ),
        status: s,
        count: below(&all),
        of: all.len() as u64,
        unit: "measurements",
        reason,
    });
    let no_peak = "no successful run between 20:00 and 22:00 local time";
    let (s, reason) = status(peak.len() as u64, no_peak);
    verdict.criteria.push(Criterion {
        id: "below_minimum_guaranteed_at_peak",
        direction: Some("download"),
        requirement: format!(
            "runs below the minimum guaranteed download speed{speed} between 20:00 and 22:00 \
             local (peak hours)"
        ),
        status: s,
        count: below(&peak),
        of: peak.len() as u64,
        unit: "measurements",
        reason,
    });
    let (s, reason) = status(peak_dates.len() as u64, no_peak);
    verdict.criteria.push(Criterion {
        id: "days_below_minimum_guaranteed_at_peak",
        direction: Some("download"),
        requirement: format!(
            "days with at least one run below the minimum guaranteed download speed{speed} \
             between 20:00 and 22:00 local"
        ),
        status: s,
        count: peak_dates.iter().filter(|(_, below)| *below).count() as u64,
        of: peak_dates.len() as u64,
        unit: "days",
        reason,
    });
    verdict
}
