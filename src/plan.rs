//! The contract: the speeds an ISP promised, kept as a history of versions, and whether a
//! measurement delivered them.
//!
//! A [`PlanVersion`] states, per direction, the four speeds of Regulation (EU) 2015/2120,
//! Art. 4(1)(d) (maximum, normally available, minimum, advertised; each optional), an optional
//! maximum latency, and the share ("threshold") a run must reach to count as having met the
//! plan, from an effective-from time on. "Met the plan" compares a run with the **advertised**
//! speed of each direction, or with its **maximum** when no advertised speed is stated, times
//! the threshold ([`PlanVersion::plan`]); serve's and report's `--plan-download` and
//! `--plan-upload` set the advertised speed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sample::Sample;
use crate::time::Timestamp;
use crate::units::Bandwidth;

/// The fastest speed a plan may state: 100 Gbit/s, the default `--max-bandwidth` above which a
/// measurement is refused as implausible (bytes per second).
pub(crate) const MAX_PLAN_BYTES_PER_SECOND: f64 = 12.5e9;

/// The longest `--latency-max` a plan may state.
pub(crate) const MAX_PLAN_LATENCY: Duration = Duration::from_secs(60);

/// The threshold of a version that does not state one (`--plan-threshold`'s default).
pub(crate) const DEFAULT_THRESHOLD: f64 = 0.8;

/// Why a plan version cannot be stored. Each message names the flags to change.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error(
        "--{flag} is faster than 100Gbit/s, the most a plan may state (and the default --max-bandwidth)"
    )]
    TooFast { flag: String },
    #[error("--{slower} must not be faster than --{faster}")]
    Order { slower: String, faster: String },
    #[error("--latency-max must be above 0 and at most 60s")]
    Latency,
    #[error("--threshold must be above 0 and at most 1, such as 0.8")]
    Threshold,
    #[error(
        "a plan states at least one speed or --latency-max: give --download-advertised, --upload-max or another"
    )]
    Empty,
    #[error(
        "--from must be before {}, the end of the times this version handles",
        Timestamp::MAX
    )]
    TooLate,
}

/// Which way data flows; names the flags (`--download-…`, `--upload-…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Download,
    Upload,
}

impl Direction {
    /// `download` or `upload`, as in the flags and the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Direction::Download => "download",
            Direction::Upload => "upload",
        }
    }
}

/// The four speeds a contract states for one direction (Regulation (EU) 2015/2120,
/// Art. 4(1)(d)); each optional.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Speeds {
    /// The highest speed the customer can expect at least sometimes (`--…-max`).
    pub maximum: Option<Bandwidth>,
    /// The speed the customer can expect most of the time (`--…-normal`).
    pub normally_available: Option<Bandwidth>,
    /// The lowest speed the ISP commits to (`--…-min`).
    pub minimum: Option<Bandwidth>,
    /// The speed used in advertising (`--…-advertised`, serve's `--plan-…`).
    pub advertised: Option<Bandwidth>,
}

impl Speeds {
    /// Only an advertised speed: what serve's `--plan-download`/`--plan-upload` state.
    pub(crate) fn advertised(advertised: Option<Bandwidth>) -> Self {
        Speeds {
            advertised,
            ..Speeds::default()
        }
    }

    /// The speed "met the plan" compares with: advertised, or else maximum.
    pub(crate) fn judged(&self) -> Option<Bandwidth> {
        self.advertised.or(self.maximum)
    }

    /// No speed stated.
    pub(crate) fn is_empty(&self) -> bool {
        self.all().iter().all(|(_, speed)| speed.is_none())
    }

    /// Each speed with the end of its flag's name (`max`, `normal`, `min`, `advertised`).
    pub(crate) fn all(&self) -> [(&'static str, Option<Bandwidth>); 4] {
        [
            ("max", self.maximum),
            ("normal", self.normally_available),
            ("min", self.minimum),
            ("advertised", self.advertised),
        ]
    }

    fn validate(&self, direction: Direction) -> Result<(), PlanError> {
        let flag = |end: &str| format!("{}-{end}", direction.name());
        for (end, speed) in self.all() {
            if speed.is_some_and(|s| {
                !(s.bytes_per_second() > 0.0 && s.bytes_per_second() <= MAX_PLAN_BYTES_PER_SECOND)
            }) {
                return Err(PlanError::TooFast { flag: flag(end) });
            }
        }
        // minimum <= normally available <= maximum, for each pair given.
        let ordered = [
            ("min", self.minimum),
            ("normal", self.normally_available),
            ("max", self.maximum),
        ];
        for (i, (slower, low)) in ordered.iter().enumerate() {
            for (faster, high) in &ordered[i + 1..] {
                if let (Some(low), Some(high)) = (low, high)
                    && low.bytes_per_second() > high.bytes_per_second()
                {
                    return Err(PlanError::Order {
                        slower: flag(slower),
                        faster: flag(faster),
                    });
                }
            }
        }
        // What is advertised cannot exceed the most the customer can expect (BEREC's guidelines
        // on Art. 4(1)(d)); above it, a typo would judge every run against an unreachable speed.
        if let (Some(advertised), Some(maximum)) = (self.advertised, self.maximum)
            && advertised.bytes_per_second() > maximum.bytes_per_second()
        {
            return Err(PlanError::Order {
                slower: flag("advertised"),
                faster: flag("max"),
            });
        }
        Ok(())
    }
}

/// One version of the contract, in force from `from` until the next version's `from`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanVersion {
    /// When this version took effect.
    pub from: Timestamp,
    pub download: Speeds,
    pub upload: Speeds,
    /// The highest idle latency (ping) the contract allows, when it states one.
    pub latency_max: Option<Duration>,
    /// The share of the judged speed a run must reach to meet the plan, in (0, 1].
    pub threshold: f64,
}

impl PlanVersion {
    /// Checks the bounds: speeds above 0 and at most 100 Gbit/s, minimum ≤ normally available ≤
    /// maximum and advertised ≤ maximum per direction where given, latency in (0, 60 s], threshold in (0, 1], at least
    /// one value stated, `from` before [`Timestamp::MAX`].
    pub fn validate(&self) -> Result<(), PlanError> {
        self.download.validate(Direction::Download)?;
        self.upload.validate(Direction::Upload)?;
        if self
            .latency_max
            .is_some_and(|l| l.is_zero() || l > MAX_PLAN_LATENCY)
        {
            return Err(PlanError::Latency);
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(PlanError::Threshold);
        }
        if self.download.is_empty() && self.upload.is_empty() && self.latency_max.is_none() {
            return Err(PlanError::Empty);
        }
        if self.from >= Timestamp::MAX {
            return Err(PlanError::TooLate);
        }
        Ok(())
    }

    /// What runs are judged against: per direction the advertised speed, or the maximum when
    /// no advertised speed is stated, and the threshold.
    pub(crate) fn plan(&self) -> Plan {
        Plan {
            download: self.download.judged(),
            upload: self.upload.judged(),
            threshold: self.threshold,
        }
    }

    /// The same contract (every value but `from` equal).
    pub(crate) fn same_terms(&self, other: &PlanVersion) -> bool {
        PlanVersion {
            from: other.from,
            ..*self
        } == *other
    }

    /// The version serve's and report's `--plan-download`, `--plan-upload` and
    /// `--plan-threshold` state, from `from` on; `None` when neither speed is given.
    pub(crate) fn from_flags(plan: Plan, from: Timestamp) -> Option<Self> {
        plan.is_set().then(|| PlanVersion {
            from,
            download: Speeds::advertised(plan.download),
            upload: Speeds::advertised(plan.upload),
            latency_max: None,
            threshold: plan.threshold,
        })
    }

    /// This version with serve's flags over it, from `from` on: each speed given replaces
    /// that direction's advertised speed, a threshold given replaces the threshold, and every
    /// other term (maximum, normally available and minimum speeds, the latency, a direction
    /// the flags leave out) stays as this version states it.
    pub fn amended(
        &self,
        download: Option<Bandwidth>,
        upload: Option<Bandwidth>,
        threshold: Option<f64>,
        from: Timestamp,
    ) -> PlanVersion {
        let over = |speeds: Speeds, given: Option<Bandwidth>| Speeds {
            advertised: given.or(speeds.advertised),
            ..speeds
        };
        PlanVersion {
            from,
            download: over(self.download, download),
            upload: over(self.upload, upload),
            latency_max: self.latency_max,
            threshold: threshold.unwrap_or(self.threshold),
        }
    }

    /// Each stated term for a person, named as `plan set` names it: `("download maximum",
    /// "600 Mbit/s")`, …, `("latency-max", "30 ms")`, `("threshold", "0.8")`; a term not
    /// stated is left out (the threshold always has a value).
    pub fn terms(&self) -> Vec<(String, String)> {
        let mut terms = Vec::new();
        for (direction, speeds) in [("download", &self.download), ("upload", &self.upload)] {
            for (label, speed) in [
                ("maximum", speeds.maximum),
                ("normally available", speeds.normally_available),
                ("minimum", speeds.minimum),
                ("advertised", speeds.advertised),
            ] {
                if let Some(speed) = speed {
                    terms.push((
                        format!("{direction} {label}"),
                        crate::units::for_people::speed(speed.bytes_per_second()),
                    ));
                }
            }
        }
        if let Some(latency) = self.latency_max {
            terms.push((
                "latency-max".to_owned(),
                format!("{} ms", latency.as_secs_f64() * 1e3),
            ));
        }
        terms.push(("threshold".to_owned(), self.threshold.to_string()));
        terms
    }

    /// The JSON form, as `/api/v1/plan` and `plan show --format json` print it.
    #[expect(
        clippy::wrong_self_convention,
        reason = "by reference, so that `.iter().map(PlanVersion::to_json)` reads a history"
    )]
    pub(crate) fn to_json(&self) -> PlanVersionJson {
        PlanVersionJson {
            from: self.from,
            download: SpeedsJson::of(&self.download),
            upload: SpeedsJson::of(&self.upload),
            latency_max_seconds: self.latency_max.map(|l| l.as_secs_f64()),
            threshold: self.threshold,
        }
    }
}

/// A [`PlanVersion`] as JSON: `{"from": RFC 3339, "download": speeds, "upload": speeds,
/// "latency_max_seconds": number|null, "threshold": number}`.
///
/// `plan import` reads the same form back ([`PlanVersionJson::to_version`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanVersionJson {
    pub(crate) from: Timestamp,
    pub(crate) download: SpeedsJson,
    pub(crate) upload: SpeedsJson,
    pub(crate) latency_max_seconds: Option<f64>,
    pub(crate) threshold: f64,
}

/// [`Speeds`] as JSON, each in bytes per second or `null`; `judged_bytes_per_second` is the
/// speed "met the plan" compares with (advertised, else maximum), derived: ignored when read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpeedsJson {
    pub(crate) maximum_bytes_per_second: Option<f64>,
    pub(crate) normally_available_bytes_per_second: Option<f64>,
    pub(crate) minimum_bytes_per_second: Option<f64>,
    pub(crate) advertised_bytes_per_second: Option<f64>,
    #[serde(default)]
    pub(crate) judged_bytes_per_second: Option<f64>,
}

impl PlanVersionJson {
    /// The version this JSON states, validated ([`PlanVersion::validate`]).
    pub(crate) fn to_version(&self) -> Result<PlanVersion, PlanError> {
        let latency_max = match self.latency_max_seconds {
            None => None,
            Some(seconds) => {
                Some(Duration::try_from_secs_f64(seconds).map_err(|_| PlanError::Latency)?)
            }
        };
        let version = PlanVersion {
            from: self.from,
            download: self.download.to_speeds(),
            upload: self.upload.to_speeds(),
            latency_max,
            threshold: self.threshold,
        };
        version.validate()?;
        Ok(version)
    }
}

impl SpeedsJson {
    fn of(speeds: &Speeds) -> Self {
        let bps = |speed: Option<Bandwidth>| speed.map(Bandwidth::bytes_per_second);
        SpeedsJson {
            maximum_bytes_per_second: bps(speeds.maximum),
            normally_available_bytes_per_second: bps(speeds.normally_available),
            minimum_bytes_per_second: bps(speeds.minimum),
            advertised_bytes_per_second: bps(speeds.advertised),
            judged_bytes_per_second: bps(speeds.judged()),
        }
    }

    fn to_speeds(&self) -> Speeds {
        let rate = |bps: Option<f64>| bps.map(Bandwidth::from_bytes_per_second);
        Speeds {
            maximum: rate(self.maximum_bytes_per_second),
            normally_available: rate(self.normally_available_bytes_per_second),
            minimum: rate(self.minimum_bytes_per_second),
            advertised: rate(self.advertised_bytes_per_second),
        }
    }
}

impl From<Plan> for PlanHistory {
    /// [`PlanHistory::constant`]: the plan of `--plan-*` flags, in force at every time.
    fn from(plan: Plan) -> Self {
        PlanHistory::constant(plan)
    }
}

/// Every version of the contract, oldest `from` first, at most one per `from`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanHistory {
    versions: Vec<PlanVersion>,
}

impl PlanHistory {
    /// The history of `versions`, sorted by `from`; of two with the same `from`, the later in
    /// `versions` stays.
    pub fn new(mut versions: Vec<PlanVersion>) -> Self {
        versions.reverse();
        versions.sort_by_key(|version| version.from);
        versions.dedup_by_key(|version| version.from);
        PlanHistory { versions }
    }

    /// A history of one version in force since the epoch: the plan of `--plan-*` flags given
    /// to `report`, which override the stored history; empty when no speed is given.
    pub fn constant(plan: Plan) -> Self {
        PlanHistory::new(
            PlanVersion::from_flags(plan, Timestamp::EPOCH)
                .into_iter()
                .collect(),
        )
    }

    /// The versions, oldest first.
    pub(crate) fn versions(&self) -> &[PlanVersion] {
        &self.versions
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The version in force at `time`: the one with the latest `from` at or before it; `None`
    /// before the first.
    pub(crate) fn in_force_at(&self, time: Timestamp) -> Option<&PlanVersion> {
        let after = self
            .versions
            .partition_point(|version| version.from <= time);
        after.checked_sub(1).and_then(|i| self.versions.get(i))
    }

    /// The judged plan shown for the window `from..to`: that of the newest version in force
    /// at some time in it whose plan is set; `None` when no run in the window can be judged.
    pub(crate) fn shown_for(&self, from: Timestamp, to: Timestamp) -> Option<Plan> {
        let in_force_from = self
            .versions
            .partition_point(|v| v.from <= from)
            .saturating_sub(1);
        let until = self.versions.partition_point(|v| v.from < to);
        self.versions
            .get(in_force_from..until)?
            .iter()
            .rev()
            .map(PlanVersion::plan)
            .find(Plan::is_set)
    }

    /// The judged plan in force at `time`; an unset [`Plan`] when none is.
    pub(crate) fn plan_at(&self, time: Timestamp) -> Plan {
        self.in_force_at(time).map_or(Plan::NONE, PlanVersion::plan)
    }
}

/// What a run is judged against: per direction the speed "met the plan" compares with (the
/// advertised speed, else the maximum: [`PlanVersion::plan`]) and the share of it a run must
/// reach to count as delivered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    pub download: Option<Bandwidth>,
    pub upload: Option<Bandwidth>,
    pub threshold: f64,
}

impl Plan {
    /// No plan: nothing is judged.
    pub const NONE: Plan = Plan {
        download: None,
        upload: None,
        threshold: DEFAULT_THRESHOLD,
    };

    /// True when at least one direction is contracted.
    pub fn is_set(&self) -> bool {
        self.download.is_some() || self.upload.is_some()
    }

    /// Whether a successful sample reached `share` of every contracted direction; `None` for
    /// samples that measured nothing, or when no plan is set.
    pub fn reached(&self, sample: &Sample, share: f64) -> Option<bool> {
        if !self.is_set() || !sample.is_success() {
            return None;
        }
        let direction = |promised: Option<Bandwidth>, measured: Option<f64>| match promised {
            None => Some(true),
            Some(promised) => measured.map(|m| m >= share * promised.bytes_per_second()),
        };
        Some(
            direction(self.download, sample.download_bytes_per_second)?
                && direction(self.upload, sample.upload_bytes_per_second)?,
        )
    }

    /// Whether a successful sample met the plan at `--plan-threshold`.
    pub fn met_by(&self, sample: &Sample) -> Option<bool> {
        self.reached(sample, self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{FailureReason, Trigger};
    use crate::time::Timestamp;

    fn plan() -> Plan {
        Plan {
            download: Some("100Mbit/s".parse().unwrap()),
            upload: Some("20Mbit/s".parse().unwrap()),
            threshold: 0.8,
        }
    }

    fn measured(download_mbit: f64, upload_mbit: f64) -> Sample {
        Sample {
            download_bytes_per_second: Some(download_mbit * 125_000.0),
            upload_bytes_per_second: Some(upload_mbit * 125_000.0),
            ..Sample::empty(Timestamp::from_millis(0), Trigger::Schedule)
        }
    }

    #[test]
    fn both_directions_must_reach_the_threshold() {
        assert_eq!(plan().met_by(&measured(80.0, 16.0)), Some(true));
        assert_eq!(plan().met_by(&measured(79.9, 20.0)), Some(false));
        assert_eq!(plan().met_by(&measured(100.0, 15.9)), Some(false));
    }

    #[test]
    fn an_uncontracted_direction_does_not_count() {
        let download_only = Plan {
            upload: None,
            ..plan()
        };
        assert_eq!(download_only.met_by(&measured(90.0, 0.1)), Some(true));
    }

    #[test]
    fn failures_and_missing_plans_are_not_judged() {
        let failed = Sample::failure(
            Timestamp::from_millis(0),
            Trigger::Schedule,
            FailureReason::Timeout,
            "slow",
        );
        assert_eq!(plan().met_by(&failed), None);
        let none = Plan {
            download: None,
            upload: None,
            threshold: 0.8,
        };
        assert_eq!(none.met_by(&measured(1.0, 1.0)), None);
    }

    fn rate(text: &str) -> Option<Bandwidth> {
        Some(text.parse().unwrap())
    }

    fn version_at(millis: u64, advertised: &str) -> PlanVersion {
        PlanVersion {
            from: Timestamp::from_millis(millis),
            download: Speeds::advertised(rate(advertised)),
            upload: Speeds::default(),
            latency_max: None,
            threshold: 0.8,
        }
    }

    #[test]
    fn the_version_in_force_changes_exactly_at_its_from() {
        let history = PlanHistory::new(vec![
            version_at(2_000, "200Mbit/s"),
            version_at(1_000, "100Mbit/s"),
        ]);
        let at = |millis| {
            history
                .in_force_at(Timestamp::from_millis(millis))
                .map(|v| v.from.as_millis())
        };
        assert_eq!(at(999), None);
        assert_eq!(at(1_000), Some(1_000));
        assert_eq!(at(1_999), Some(1_000));
        assert_eq!(at(2_000), Some(2_000));
        assert_eq!(at(u64::from(u32::MAX)), Some(2_000));
        assert!(!history.plan_at(Timestamp::from_millis(999)).is_set());
        assert!(PlanHistory::default().in_force_at(Timestamp::MAX).is_none());
    }

    #[test]
    fn of_two_versions_at_one_time_the_later_given_stays() {
        let history = PlanHistory::new(vec![
            version_at(1_000, "100Mbit/s"),
            version_at(1_000, "300Mbit/s"),
        ]);
        assert_eq!(history.versions().len(), 1);
        assert_eq!(history.versions()[0].download.advertised, rate("300Mbit/s"));
    }

    #[test]
    fn met_compares_with_advertised_else_maximum() {
        let mut version = version_at(0, "100Mbit/s");
        version.download.maximum = rate("200Mbit/s");
        assert_eq!(version.plan().download, rate("100Mbit/s"));
        version.download.advertised = None;
        assert_eq!(version.plan().download, rate("200Mbit/s"));
        version.download.maximum = None;
        version.download.minimum = rate("50Mbit/s");
        // A minimum alone is stated, but not what "met the plan" judges.
        assert_eq!(version.plan().download, None);
    }

    #[test]
    fn validation_names_the_flags() {
        let mut version = version_at(0, "100Mbit/s");
        assert_eq!(version.validate(), Ok(()));
        version.upload.minimum = rate("50Mbit/s");
        version.upload.normally_available = rate("40Mbit/s");
        let said = version.validate().unwrap_err().to_string();
        assert!(
            said.contains("--upload-min") && said.contains("--upload-normal"),
            "{said}"
        );
        version.upload = Speeds::default();
        version.download.maximum = rate("10Mbit/s");
        let said = version.validate().unwrap_err().to_string();
        assert_eq!(
            said,
            "--download-advertised must not be faster than --download-max"
        );
        version.download.maximum = rate("101Gbit/s");
        let said = version.validate().unwrap_err().to_string();
        assert!(said.contains("--download-max"), "{said}");
        version.download.maximum = rate("100Gbit/s");
        assert_eq!(version.validate(), Ok(()));
        for bad in [0.0, -0.1, 1.01, f64::NAN] {
            let bad = PlanVersion {
                threshold: bad,
                ..version
            };
            assert_eq!(bad.validate(), Err(PlanError::Threshold));
        }
        let latency = PlanVersion {
            latency_max: Some(Duration::ZERO),
            ..version
        };
        assert_eq!(latency.validate(), Err(PlanError::Latency));
        let empty = PlanVersion {
            download: Speeds::default(),
            ..version
        };
        assert_eq!(empty.validate(), Err(PlanError::Empty));
    }

    #[test]
    fn flags_state_an_advertised_version_only_when_a_speed_is_given() {
        let from_flags = PlanVersion::from_flags(plan(), Timestamp::from_millis(5)).unwrap();
        assert_eq!(from_flags.download.advertised, rate("100Mbit/s"));
        assert_eq!(from_flags.upload.advertised, rate("20Mbit/s"));
        assert_eq!(from_flags.plan(), plan());
        assert!(PlanVersion::from_flags(Plan::NONE, Timestamp::EPOCH).is_none());
        let later = PlanVersion {
            from: Timestamp::from_millis(9),
            ..from_flags
        };
        assert!(later.same_terms(&from_flags));
        assert!(
            !PlanVersion {
                threshold: 0.9,
                ..later
            }
            .same_terms(&from_flags)
        );
    }

    #[test]
    fn a_window_shows_the_newest_version_in_force_in_it() {
        let mut latency_only = version_at(3_000, "1Mbit/s");
        latency_only.download = Speeds::default();
        latency_only.latency_max = Some(Duration::from_millis(20));
        let history = PlanHistory::new(vec![
            version_at(1_000, "100Mbit/s"),
            version_at(2_000, "200Mbit/s"),
            latency_only,
        ]);
        let shown = |from, to| {
            history
                .shown_for(Timestamp::from_millis(from), Timestamp::from_millis(to))
                .and_then(|plan| plan.download)
        };
        assert_eq!(
            shown(0, 1_000),
            None,
            "the window ends before the first version"
        );
        assert_eq!(shown(0, 1_001), rate("100Mbit/s"));
        assert_eq!(
            shown(1_500, 1_600),
            rate("100Mbit/s"),
            "in force since before the window"
        );
        assert_eq!(shown(1_500, 2_001), rate("200Mbit/s"));
        // A version that judges no speed is passed over for the one before it.
        assert_eq!(shown(0, 10_000), rate("200Mbit/s"));
    }
}
