//! Named rule sets: how a regulator (or a subsidy programme) judges a line's measurements
//! against the contract, as pure functions of the runs, the plan history and a time zone.
//!
//! Each rule set's numbers, and the source each comes from (or that it could not be verified
//! in the regulator's own text), are in `docs/rules.md`. Instants are UTC; the zone only
//! decides calendar days and peak windows. Spacing rules are elapsed time between start
//! instants. Shares are compared in integer arithmetic (`10·k ≥ 9·n`), never as floats.
//! Failed runs are never measurements: they are counted and listed, not judged.

use serde::Serialize;

use crate::plan::{Direction, PlanHistory};
use crate::sample::{Outcome, Sample};
use crate::summary::FailureKind;
use crate::time::Timestamp;
use crate::zone::Zone;

/// The longest window a rule set is evaluated over (`rules=` on `/api/v1/summary`, `report
/// --rules`): 366 days, longer than any campaign or test period a rule set defines, and a
/// bound on the runs held in memory.
pub const MAX_RULES_WINDOW: std::time::Duration =
    std::time::Duration::from_secs(366 * 24 * 60 * 60);

/// A named rule set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleSet {
    /// Germany, Bundesnetzagentur: the fixed-line "Minderung" procedure (TKG § 57(4),
    /// Allgemeinverfügung Vfg. 99/2021).
    DeBnetza,
    /// Austria, RTR: the certified measurement (zertifizierte Messung) of netztest.at.
    AtRtr,
    /// United States, FCC: the performance-measures test for carriers receiving high-cost
    /// support (DA 18-710, FCC 19-104), applied to one line as an indication.
    UsFcc,
    /// United Kingdom, Ofcom: the voluntary broadband speeds codes of practice (minimum
    /// guaranteed download speed).
    UkOfcom,
}

/// Why a rule-set name was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0:?} is not a rule set: use de-bnetza, at-rtr, us-fcc or uk-ofcom")]
pub struct UnknownRuleSet(pub String);

impl RuleSet {
    /// Every rule set, in the order they are listed.
    pub const ALL: [RuleSet; 4] = [
        RuleSet::DeBnetza,
        RuleSet::AtRtr,
        RuleSet::UsFcc,
        RuleSet::UkOfcom,
    ];

    /// The name in flags, parameters and JSON: `de-bnetza`, `at-rtr`, `us-fcc`, `uk-ofcom`.
    pub fn name(self) -> &'static str {
        match self {
            RuleSet::DeBnetza => "de-bnetza",
            RuleSet::AtRtr => "at-rtr",
            RuleSet::UsFcc => "us-fcc",
            RuleSet::UkOfcom => "uk-ofcom",
        }
    }

    /// The rule set named `name` (exactly as [`RuleSet::name`] writes it).
    pub fn parse(name: &str) -> Result<Self, UnknownRuleSet> {
        RuleSet::ALL
            .into_iter()
            .find(|rules| rules.name() == name)
            .ok_or_else(|| UnknownRuleSet(crate::logging::clip(name, 64).to_owned()))
    }

    /// Whether `serve --campaign` can schedule this rule set's measurement protocol.
    pub fn has_campaign(self) -> bool {
        matches!(self, RuleSet::DeBnetza | RuleSet::AtRtr)
    }
}

impl std::fmt::Display for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for RuleSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// What a rule set needs of one run: 40 bytes instead of a [`Sample`], so a year of
/// one-minute runs fits in about 21 MB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    /// When the run started (UTC).
    pub time: Timestamp,
    pub result: RunResult,
    pub download_bytes_per_second: Option<f64>,
    pub upload_bytes_per_second: Option<f64>,
    /// Idle latency.
    pub ping_seconds: Option<f64>,
}

/// How a run ended, as far as a rule set cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunResult {
    /// It measured: a candidate measurement.
    Success,
    /// It failed; the kind says whether the failure points at the line (`Network`) or not.
    /// `None` for a failure stored without a reason.
    Failure(Option<FailureKind>),
}

impl Run {
    /// The run of `sample`; `None` for a skipped run (nothing was attempted) or a data-budget
    /// skip.
    pub fn of(sample: &Sample) -> Option<Run> {
        let result = match sample.outcome {
            Outcome::Skipped => return None,
            _ if sample.is_success() => RunResult::Success,
            _ => match sample.reason {
                Some(reason) => match FailureKind::of(reason) {
                    None => return None,
                    kind => RunResult::Failure(kind),
                },
                None => RunResult::Failure(None),
            },
        };
        Some(Run {
            time: sample.time,
            result,
            download_bytes_per_second: sample.download_bytes_per_second,
            upload_bytes_per_second: sample.upload_bytes_per_second,
            ping_seconds: sample.ping_seconds,
        })
    }

    /// The measured rate of `direction`, when the run measured it.
    pub fn rate(&self, direction: Direction) -> Option<f64> {
        match direction {
            Direction::Download => self.download_bytes_per_second,
            Direction::Upload => self.upload_bytes_per_second,
        }
    }
}

/// The overall result of a rule set. JSON: `"met"`, `"not_met"`, `"not_assessable"`,
/// `"no_verdict"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    /// Every criterion that could be judged was met (de-bnetza: no deviation established).
    Met,
    /// At least one criterion was not met (de-bnetza: a deviation, in either direction).
    NotMet,
    /// The measurements do not allow a judgement: too few, too close together, a contract
    /// value the criteria need is not stated, or the plan changed within the campaign.
    NotAssessable,
    /// The rule set defines no pass or fail (at-rtr, uk-ofcom): only figures and protocol
    /// completeness.
    NoVerdict,
}

/// One criterion's result. JSON: `"met"`, `"not_met"`, `"not_assessable"`, `"informational"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CriterionStatus {
    Met,
    NotMet,
    NotAssessable,
    /// A figure the rule set reports without judging it.
    Informational,
}

/// One criterion, with the counts behind it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Criterion {
    /// A stable snake_case identifier, e.g. `maximum_reached_on_days`.
    pub id: &'static str,
    /// The direction judged; `None` for a criterion on both or on latency.
    pub direction: Option<&'static str>,
    /// What is required, in words, with the numbers: "90 % of the maximum (90 Mbit/s) reached
    /// at least once on at least 2 of 3 measurement days".
    pub requirement: String,
    pub status: CriterionStatus,
    /// How many counted (days or measurements, per `unit`) satisfied it …
    pub count: u64,
    /// … out of how many.
    pub of: u64,
    /// `measurements` or `days`.
    pub unit: &'static str,
    /// Why the criterion is not assessable, when it is not.
    pub reason: Option<String>,
}

/// How far the rule set's measurement protocol is complete (what a campaign shows as progress).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Measurements that count towards the protocol …
    pub measurements: u64,
    /// … of the number it requires (0 when it sets none).
    pub measurements_required: u64,
    /// Measurement days (or cycles, at-rtr) complete …
    pub days: u64,
    /// … of the number required.
    pub days_required: u64,
    /// Whether the protocol is complete.
    pub complete: bool,
}

/// One measurement day (de-bnetza) or cycle (at-rtr) used.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Day {
    /// The local calendar date (`YYYY-MM-DD`) in the verdict's zone.
    pub date: String,
    /// The start instants of the measurements used, in order.
    pub measurements: Vec<Timestamp>,
}

/// A rule set's verdict over a set of runs, with everything needed to check it by hand.
/// Field names are the public JSON contract (`/api/v1/summary?rules=`, `report --rules`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub rules: RuleSet,
    /// The rule set's title, e.g. "Bundesnetzagentur (Germany): reduced-speed procedure for
    /// fixed lines".
    pub title: &'static str,
    /// The IANA zone calendar days and peak windows were counted in.
    pub time_zone: String,
    pub outcome: Judgement,
    /// Why the outcome is `not_assessable`, when it is.
    pub reason: Option<String>,
    pub criteria: Vec<Criterion>,
    pub progress: Progress,
    /// The measurement days or cycles used, in order.
    pub days: Vec<Day>,
    /// Successful runs considered, and failed runs listed but never counted.
    pub successful_runs: u64,
    pub failed_runs: u64,
    /// Always present: "indicative: …", what the verdict is not (the legal procedure needs the
    /// regulator's own tool; the rule binds carriers, not consumers; the code is voluntary),
    /// with a pointer to the official procedure.
    pub label: &'static str,
    /// Parts of the rule applied here that could not be verified in the regulator's own text.
    pub unverified: Vec<&'static str>,
    /// Where the rule comes from: a citation for each number, as in `docs/rules.md`.
    pub sources: Vec<&'static str>,
}

/// Evaluates `rules` over `runs` (in time order; at most a [`MAX_RULES_WINDOW`] of them),
/// judging each run against the plan version in force at its start, with calendar days and
/// peak windows in `zone`.
pub fn evaluate(rules: RuleSet, runs: &[Run], plans: &PlanHistory, zone: &Zone) -> Verdict {
    let _ = (runs, plans);
    Verdict {
        rules,
        title: "",
        time_zone: zone.name().to_owned(),
        outcome: Judgement::NotAssessable,
        reason: Some("not implemented yet".to_owned()),
        criteria: Vec::new(),
        progress: Progress::default(),
        days: Vec::new(),
        successful_runs: 0,
        failed_runs: 0,
        label: "",
        unverified: Vec::new(),
        sources: Vec::new(),
    }
}

/// The runs with `from <= time < to`, oldest first, as rule sets read them. The caller bounds
/// the window ([`MAX_RULES_WINDOW`]).
pub fn runs_in(
    store: &crate::store::Store,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Run>, crate::store::StoreError> {
    let mut runs = Vec::new();
    store.for_each(from, to, |sample| {
        runs.extend(Run::of(&sample));
        Ok::<_, crate::store::StoreError>(())
    })?;
    Ok(runs)
}

/// The runs a rule set judges in a window, and where they came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// Oldest first.
    pub runs: Vec<Run>,
    /// The start of the `serve --campaign` campaign whose runs these are; `None` when they are
    /// every run in the window.
    pub campaign: Option<Timestamp>,
}

/// What `rules` judges in `from..to` (the caller bounds it by [`MAX_RULES_WINDOW`]): the runs
/// of the newest campaign of that rule set in the window when there is one, else every run
/// ([`runs_in`]). Every surface (`report --rules`, `/api/v1/summary?rules=`, the evidence
/// pack) calls this, so they judge the same runs.
pub fn select(
    store: &crate::store::Store,
    rules: RuleSet,
    from: Timestamp,
    to: Timestamp,
) -> Result<Selection, crate::store::StoreError> {
    let campaign = store
        .campaigns()?
        .into_iter()
        .rev()
        .find(|c| c.rules == rules && c.start < to && c.finished.is_none_or(|end| end >= from));
    let Some(campaign) = campaign else {
        return Ok(Selection {
            runs: runs_in(store, from, to)?,
            campaign: None,
        });
    };
    // The campaign's own runs (trigger `campaign`) from its start to its finish, in the window.
    let start = from.max(campaign.start);
    let end = campaign.finished.map_or(to, |end| {
        to.min(end.saturating_add(std::time::Duration::from_millis(1)))
    });
    let mut runs = Vec::new();
    store.for_each(start, end, |sample| {
        if sample.trigger == crate::sample::Trigger::Campaign {
            runs.extend(Run::of(&sample));
        }
        Ok::<_, crate::store::StoreError>(())
    })?;
    Ok(Selection {
        runs,
        campaign: Some(campaign.start),
    })
}
