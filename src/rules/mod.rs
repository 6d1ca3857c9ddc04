//! Named rule sets: how a regulator (or a subsidy programme) judges a line's measurements
//! against the contract, as pure functions of the runs, the plan history and a time zone.
//!
//! Each rule set's numbers, and the source each comes from (or that it could not be verified
//! in the regulator's own text), are in `docs/rules.md`. Instants are UTC; the zone only
//! decides calendar days and peak windows. Spacing rules are elapsed time between start
//! instants. Shares are compared in integer arithmetic (`10·k ≥ 9·n`), never as floats.
//! Failed runs are never measurements: they are counted and listed, not judged.

use serde::Serialize;

pub mod at_rtr;
pub mod de_bnetza;
pub(crate) mod uk_ofcom;
pub(crate) mod us_fcc;

use crate::plan::{Direction, PlanHistory, PlanVersion};
use crate::sample::{Outcome, Sample};
use crate::summary::FailureKind;
use crate::time::Timestamp;
use crate::units::Bandwidth;
use crate::zone::Zone;

/// The longest window a rule set is evaluated over (`rules=` on `/api/v1/summary`, `report
/// --rules`): 366 days, longer than any campaign or test period a rule set defines, and a
/// bound on the runs held in memory.
pub(crate) const MAX_RULES_WINDOW: std::time::Duration =
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
#[error("{} is not a rule set: use de-bnetza, at-rtr, us-fcc or uk-ofcom", crate::logging::quoted(.0))]
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
            .ok_or_else(|| UnknownRuleSet(name.to_owned()))
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
    pub(crate) fn of(sample: &Sample) -> Option<Run> {
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
    pub(crate) fn rate(&self, direction: Direction) -> Option<f64> {
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
    pub(crate) unit: &'static str,
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
    /// The start instants of the measurements used, in order (successful runs only: at-rtr's
    /// failed tests keep their slot in a cycle but are not listed).
    pub measurements: Vec<Timestamp>,
}

/// A rule set's verdict over a set of runs, with everything needed to check it by hand.
/// Field names are the public JSON contract (`/api/v1/summary?rules=`, `report --rules`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub(crate) rules: RuleSet,
    /// The rule set's title, e.g. "Bundesnetzagentur (Germany): reduced-speed procedure for
    /// fixed lines".
    pub(crate) title: &'static str,
    /// The IANA zone calendar days and peak windows were counted in.
    pub time_zone: String,
    pub outcome: Judgement,
    /// Why the outcome is `not_assessable`, when it is.
    pub reason: Option<String>,
    pub criteria: Vec<Criterion>,
    pub progress: Progress,
    /// The measurement days (de-bnetza) or cycles (at-rtr) used, in order, including a day in
    /// progress; empty for rule sets without a measurement protocol (us-fcc, uk-ofcom), whose
    /// runs the evidence pack lists.
    pub days: Vec<Day>,
    /// Successful runs considered, and failed runs listed but never counted.
    pub successful_runs: u64,
    pub failed_runs: u64,
    /// Of `failed_runs`, those whose failure points at the line (kind `network`); the rest
    /// are local faults, refusals by the service or unclear.
    pub failed_network_runs: u64,
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
/// peak windows in `zone`. Runs out of order are sorted first (a copy), so the greedy
/// selections below always see them in time order.
pub fn evaluate(rules: RuleSet, runs: &[Run], plans: &PlanHistory, zone: &Zone) -> Verdict {
    let sorted;
    let runs = if runs.is_sorted_by_key(|run| run.time) {
        runs
    } else {
        let mut copy = runs.to_vec();
        copy.sort_by_key(|run| run.time);
        sorted = copy;
        &sorted
    };
    match rules {
        RuleSet::DeBnetza => de_bnetza::evaluate(runs, plans, zone),
        RuleSet::AtRtr => at_rtr::evaluate(runs, plans, zone),
        RuleSet::UsFcc => us_fcc::evaluate(runs, plans, zone),
        RuleSet::UkOfcom => uk_ofcom::evaluate(runs, plans, zone),
    }
}

/// The peak window of `rules`, in local hours of the verdict's zone: runs starting at
/// `start_hour:00` or later and before `end_hour:00` (24 = midnight) are in it. `us-fcc`:
/// (18, 24); `uk-ofcom`: (20, 22); `None` for rule sets without one.
pub fn peak_window(rules: RuleSet) -> Option<(u8, u8)> {
    match rules {
        RuleSet::UsFcc => Some((us_fcc::PEAK_START_HOUR, us_fcc::PEAK_END_HOUR)),
        RuleSet::UkOfcom => Some((uk_ofcom::PEAK_START_HOUR, uk_ofcom::PEAK_END_HOUR)),
        RuleSet::DeBnetza | RuleSet::AtRtr => None,
    }
}

/// Whether `time` starts inside the local-hour window `(start, end)` of `zone` (by converting
/// the instant, so a DST change never shifts the window).
fn in_window(zone: &Zone, time: Timestamp, (start, end): (u8, u8)) -> bool {
    let hour = i16::from(zone.local(time).hour());
    hour >= i16::from(start) && hour < i16::from(end)
}

/// Which contract speed a criterion compares with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contract {
    Maximum,
    NormallyAvailable,
    Minimum,
    /// The advertised speed, else the maximum (us-fcc's "required speed").
    Required,
}

impl Contract {
    /// The speed of `direction` that `version` states, in bytes per second.
    fn of(self, version: Option<&PlanVersion>, direction: Direction) -> Option<f64> {
        let version = version?;
        let speeds = match direction {
            Direction::Download => &version.download,
            Direction::Upload => &version.upload,
        };
        let speed = match self {
            Contract::Maximum => speeds.maximum,
            Contract::NormallyAvailable => speeds.normally_available,
            Contract::Minimum => speeds.minimum,
            Contract::Required => speeds.judged(),
        };
        speed.map(Bandwidth::bytes_per_second)
    }

    /// The flag of `plan set` that stores it.
    fn flag(self, direction: Direction) -> String {
        let end = match self {
            Contract::Maximum => "max",
            Contract::NormallyAvailable => "normal",
            Contract::Minimum => "min",
            Contract::Required => "advertised",
        };
        format!("--{}-{end}", direction.name())
    }

    /// Why a criterion on it is not assessable when the contract does not state it.
    fn missing(self, direction: Direction) -> String {
        let what = match self {
            Contract::Maximum => "maximum",
            Contract::NormallyAvailable => "normally available",
            Contract::Minimum => "minimum",
            Contract::Required => "advertised (or maximum)",
        };
        format!(
            "the contract states no {what} {} speed: store it with internet-monitor plan set {} RATE",
            direction.name(),
            self.flag(direction)
        )
    }
}

/// Whether `rate` reaches `num/den` of `reference` (both bytes per second), compared as
/// `rate·den ≥ reference·num`: exact for whole bytes per second up to 2^53/den, so an exact
/// 90 % is reached.
fn reaches(rate: f64, (num, den): (u32, u32), reference: f64) -> bool {
    rate * f64::from(den) >= reference * f64::from(num)
}

/// Whether `count` of `of` is at least the share `num/den`, in integers (`den·count ≥ num·of`).
fn share_at_least(count: u64, of: u64, (num, den): (u32, u32)) -> bool {
    u128::from(count) * u128::from(den) >= u128::from(of) * u128::from(num)
}

/// A rate for people: `90 Mbit/s` (at most three decimals).
fn rate_text(bytes_per_second: f64) -> String {
    let mbit = crate::sample::mbit_per_second(bytes_per_second);
    format!("{} Mbit/s", (mbit * 1000.0).round() / 1000.0)
}

/// Whole calendar days from `from` to `to` (negative when `to` is earlier).
fn days_between(from: jiff::civil::Date, to: jiff::civil::Date) -> i64 {
    i64::from((to - from).get_days())
}

/// The first `needed` of `dates` (ascending, distinct) that form a protocol: each at least
/// `min_gap` days after the one before, and the last at most `max_span - 1` days after the
/// first (all inside a `max_span`-day calendar window). Taken greedily: the earliest first
/// date for which a protocol exists, then the earliest date that may follow each.
///
/// `Err` with the protocol in progress when none completes: the longest chain that can still
/// complete by `latest` (the last date measured: a chain whose first date is more than
/// `max_span - 1` days before it is abandoned), of equal ones the earliest; empty when none can.
fn first_protocol(
    dates: &[jiff::civil::Date],
    needed: usize,
    min_gap: i64,
    max_span: i64,
    latest: Option<jiff::civil::Date>,
) -> Result<Vec<usize>, Vec<usize>> {
    let mut best: Vec<usize> = Vec::new();
    for (start, &first) in dates.iter().enumerate() {
        let mut chain = vec![start];
        for (next, &date) in dates.iter().enumerate().skip(start + 1) {
            if chain.len() >= needed || days_between(first, date) >= max_span {
                break;
            }
            let last = chain.last().map_or(first, |&i| dates[i]);
            if days_between(last, date) >= min_gap {
                chain.push(next);
            }
        }
        if chain.len() >= needed {
            return Ok(chain);
        }
        let alive = latest.is_none_or(|latest| days_between(first, latest) < max_span);
        if alive && chain.len() > best.len() {
            best = chain;
        }
    }
    Err(best)
}

/// Successful and failed runs among `runs`.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    successful: u64,
    failed: u64,
    failed_network: u64,
}

impl Tally {
    fn of(runs: &[Run]) -> Self {
        let mut tally = Tally::default();
        for run in runs {
            match run.result {
                RunResult::Success => tally.successful += 1,
                RunResult::Failure(kind) => {
                    tally.failed += 1;
                    if kind == Some(FailureKind::Network) {
                        tally.failed_network += 1;
                    }
                }
            }
        }
        tally
    }
}

/// What every verdict of one rule set shares.
struct Describe {
    title: &'static str,
    label: &'static str,
    unverified: &'static [&'static str],
    sources: &'static [&'static str],
}

impl Describe {
    /// A verdict with this description and the tally of `runs`; outcome, criteria, progress
    /// and days are the caller's to fill.
    fn verdict(&self, rules: RuleSet, zone: &Zone, runs: &[Run]) -> Verdict {
        let tally = Tally::of(runs);
        Verdict {
            rules,
            title: self.title,
            time_zone: zone.name().to_owned(),
            outcome: Judgement::NotAssessable,
            reason: None,
            criteria: Vec::new(),
            progress: Progress::default(),
            days: Vec::new(),
            successful_runs: tally.successful,
            failed_runs: tally.failed,
            failed_network_runs: tally.failed_network,
            label: self.label,
            unverified: self.unverified.to_vec(),
            sources: self.sources.to_vec(),
        }
    }
}

/// The outcome of judged criteria: `not_met` if any is, else `met` if any is, else
/// `not_assessable` with the first criterion's reason.
fn judged(criteria: &[Criterion]) -> (Judgement, Option<String>) {
    if criteria.iter().any(|c| c.status == CriterionStatus::NotMet) {
        (Judgement::NotMet, None)
    } else if criteria.iter().any(|c| c.status == CriterionStatus::Met) {
        (Judgement::Met, None)
    } else {
        let why = criteria
            .iter()
            .find_map(|c| c.reason.clone())
            .unwrap_or_else(|| "no criterion could be judged".to_owned());
        (
            Judgement::NotAssessable,
            Some(format!("no criterion could be judged: {why}")),
        )
    }
}

/// When the contract's speeds changed after `first` and at or before `last`: the `from` of
/// the first version whose speeds differ from those in force at `first` (a version stored
/// after `first` when none was in force then counts as a change).
fn plan_change(plans: &PlanHistory, first: Timestamp, last: Timestamp) -> Option<Timestamp> {
    let at_first = plans.in_force_at(first);
    plans
        .versions()
        .iter()
        .filter(|v| v.from > first && v.from <= last)
        .find(|v| at_first.is_none_or(|f| (f.download, f.upload) != (v.download, v.upload)))
        .map(|v| v.from)
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
/// of the newest campaign of that rule set in the window when there is one; else, for a rule
/// set with a campaign, the campaign runs (trigger `campaign`) of the window that no stored
/// campaign claims (imported from an
/// export, which carries runs but no campaign records), `campaign` then being the first of
/// them; else every run. Every surface (`report --rules`, `/api/v1/summary?rules=`, the evidence
/// pack) calls this, so they judge the same runs.
pub fn select(
    store: &crate::store::Store,
    rules: RuleSet,
    from: Timestamp,
    to: Timestamp,
) -> Result<Selection, crate::store::StoreError> {
    Selector::new(store, rules, from, to)?.read(store)
}

/// [`select`] fed sample by sample, for a caller that reads the window anyway (the evidence
/// pack): [`Selector::new`] reads the campaign records, [`Selector::add`] takes each sample of
/// [`Selector::window`] (or of a larger window) oldest first, [`Selector::finish`] answers.
#[derive(Debug)]
pub(crate) struct Selector {
    rules: RuleSet,
    /// The stored campaigns when `rules` has campaigns, else none.
    campaigns: Vec<crate::campaign::Campaign>,
    /// The newest campaign of `rules` in the window, and its runs' window
    /// (`from <= time < to`, UTC).
    campaign: Option<(Timestamp, (Timestamp, Timestamp))>,
    /// The window asked for.
    window: (Timestamp, Timestamp),
    /// The runs judged when a campaign is found, else every run of the window.
    runs: Vec<Run>,
    /// The campaign runs no stored campaign claims (without a campaign in the window).
    orphans: Vec<Run>,
}

impl Selector {
    /// Reads the campaign records (only for a rule set with campaigns: a damaged record must
    /// not keep us-fcc or uk-ofcom from judging the runs) and picks the newest campaign of
    /// `rules` in `from..to`.
    pub(crate) fn new(
        store: &crate::store::Store,
        rules: RuleSet,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Self, crate::store::StoreError> {
        let campaigns = if rules.has_campaign() {
            store.campaigns()?
        } else {
            Vec::new()
        };
        let campaign = campaigns
            .iter()
            .rev()
            .find(|c| c.rules == rules && c.start < to && c.finished.is_none_or(|end| end >= from))
            .map(|campaign| {
                // The campaign's own runs from its start to its finish, in the window.
                let start = from.max(campaign.start);
                (campaign.start, (start, to.min(campaign.runs_end())))
            });
        Ok(Selector {
            rules,
            campaigns,
            campaign,
            window: (from, to),
            runs: Vec::new(),
            orphans: Vec::new(),
        })
    }

    /// The window whose samples [`Selector::add`] must see (`from <= time < to`, UTC): the
    /// campaign's part of the window when there is a campaign, else the whole window.
    pub(crate) fn window(&self) -> (Timestamp, Timestamp) {
        self.campaign.map_or(self.window, |(_, window)| window)
    }

    /// Takes one sample; samples outside [`Selector::window`] are ignored.
    pub(crate) fn add(&mut self, sample: &crate::sample::Sample) {
        let (start, end) = self.window();
        if sample.time < start || sample.time >= end {
            return;
        }
        let campaign_run = sample.trigger == crate::sample::Trigger::Campaign;
        if self.campaign.is_some() {
            if campaign_run {
                self.runs.extend(Run::of(sample));
            }
            return;
        }
        // Mixing a campaign's runs with the schedule's would let the rule set take runs the
        // protocol never scheduled (de-bnetza takes each day's runs in time order): campaign
        // runs whose record is not in this store are judged alone.
        let claimed = || {
            self.campaigns
                .iter()
                .any(|c| c.start <= sample.time && c.finished.is_none_or(|end| sample.time <= end))
        };
        if self.rules.has_campaign() && campaign_run && !claimed() {
            self.orphans.extend(Run::of(sample));
        }
        self.runs.extend(Run::of(sample));
    }

    /// Reads the samples of [`Selector::window`] from `store` and answers.
    pub(crate) fn read(
        mut self,
        store: &crate::store::Store,
    ) -> Result<Selection, crate::store::StoreError> {
        let (start, end) = self.window();
        store.for_each(start, end, |sample| {
            self.add(&sample);
            Ok::<_, crate::store::StoreError>(())
        })?;
        Ok(self.finish())
    }

    /// The selection of the samples taken.
    pub(crate) fn finish(self) -> Selection {
        if let Some((start, _)) = self.campaign {
            return Selection {
                runs: self.runs,
                campaign: Some(start),
            };
        }
        match self.orphans.first().map(|run| run.time) {
            Some(first) => Selection {
                runs: self.orphans,
                campaign: Some(first),
            },
            None => Selection {
                runs: self.runs,
                campaign: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn the_first_protocol_is_the_earliest_that_fits() {
        let dates = [
            date(2026, 10, 1),
            date(2026, 10, 2),
            date(2026, 10, 4),
            date(2026, 10, 20),
            date(2026, 10, 22),
            date(2026, 10, 24),
        ];
        // A free day between: 1, 4, then 20 is 19 days after the 1st; from the 20th: 20, 22, 24.
        assert_eq!(first_protocol(&dates, 3, 2, 14, None), Ok(vec![3, 4, 5]));
        // Different days only: 1, 2, 4.
        assert_eq!(first_protocol(&dates, 3, 1, 14, None), Ok(vec![0, 1, 2]));
        // Four days: none; the longest chain still possible on the 24th is 20, 22, 24.
        assert_eq!(
            first_protocol(&dates, 4, 2, 14, Some(date(2026, 10, 24))),
            Err(vec![3, 4, 5])
        );
        // Nothing can complete any more a month later.
        assert_eq!(
            first_protocol(&dates, 4, 2, 14, Some(date(2026, 11, 30))),
            Err(vec![])
        );
        assert_eq!(first_protocol(&[], 3, 2, 14, None), Err(vec![]));
    }

    #[test]
    fn shares_and_rates_compare_exactly() {
        assert!(share_at_least(27, 30, (9, 10)));
        assert!(!share_at_least(26, 30, (9, 10)));
        assert!(share_at_least(0, 0, (9, 10)));
        assert!(share_at_least(u64::MAX, u64::MAX, (19, 20)));
        assert!(reaches(11_250_000.0, (9, 10), 12_500_000.0));
        assert!(!reaches(11_249_999.0, (9, 10), 12_500_000.0));
        assert_eq!(rate_text(11_250_000.0), "90 Mbit/s");
        assert_eq!(rate_text(1_234.5), "0.01 Mbit/s");
    }

    #[test]
    fn peak_windows_follow_local_hours() {
        let zone = Zone::parse("America/New_York").unwrap();
        let window = (18, 24);
        // 17:59:59.999 and 18:00 EST, 23:59 and 00:00.
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        assert!(!in_window(&zone, at("2026-11-10T22:59:59.999Z"), window));
        assert!(in_window(&zone, at("2026-11-10T23:00:00Z"), window));
        assert!(in_window(&zone, at("2026-11-11T04:59:00Z"), window));
        assert!(!in_window(&zone, at("2026-11-11T05:00:00Z"), window));
    }
}
