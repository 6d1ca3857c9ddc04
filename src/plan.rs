//! The contracted speeds, and whether a measurement delivered them.

use crate::sample::Sample;
use crate::units::Bandwidth;

/// What the ISP promised (`--plan-download`, `--plan-upload`) and the share of it a run must
/// reach to count as delivered (`--plan-threshold`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    pub download: Option<Bandwidth>,
    pub upload: Option<Bandwidth>,
    pub threshold: f64,
}

impl Plan {
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
}
