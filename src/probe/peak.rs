//! Packet loss and latency of the public targets in the evening peak and over all hours: the
//! "does it get worse when everyone is online" figures of summaries and reports.
//!
//! Rules:
//! - The peak window is a rule set's own (`us-fcc` 18–24, `uk-ofcom` 20–22 local, see
//!   [`crate::rules::peak_window`]) when one is chosen, else [`DEFAULT_PEAK_HOURS`]: 19:00 to
//!   23:00 local, the evening peak used by broadband measurement programmes for latency and
//!   loss (wider than the speed tests' 20–22 default, because probes are continuous and a
//!   four-hour window still holds hundreds of minutes a week). Hours are those of the zone
//!   asked for; a row is in the window when its start is.
//! - Only `public` targets count (the gateway measures the home network). Each row of each
//!   public target with an RTT contributes its median; the percentiles are nearest-rank over
//!   those medians (`p50`/`p95` of the minute medians; a 10-minute bucket contributes its
//!   one median). Loss is lost / sent over the same rows.
//! - Rows in which a speed test ran (`under_load`) are left out and counted: the test's own
//!   traffic inflates latency and drops probes, which is not the line's everyday state.

use std::collections::HashSet;

use serde::Serialize;

use super::{StoredTarget, TargetId, TargetKind};
use crate::rules::RuleSet;
use crate::store::probes::ProbeRow;
use crate::summary::Percentiles;
use crate::zone::Zone;

/// The peak window without a rule set: 19:00 to 23:00 local.
pub(crate) const DEFAULT_PEAK_HOURS: (u8, u8) = (19, 23);

/// A local-hour window: from `start_hour`:00 to `end_hour`:00 (24 = midnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct PeakWindow {
    /// The first local hour in the window.
    pub(crate) start_hour: u8,
    /// The local hour the window ends at, exclusive.
    pub(crate) end_hour: u8,
    /// `rule set` (the chosen rule set's own window) or `default` ([`DEFAULT_PEAK_HOURS`]).
    pub(crate) source: &'static str,
}

impl PeakWindow {
    /// The window of `rules` when it has one, else the default.
    pub(crate) fn of(rules: Option<RuleSet>) -> Self {
        match rules.and_then(crate::rules::peak_window) {
            Some((start_hour, end_hour)) => PeakWindow {
                start_hour,
                end_hour,
                source: "rule set",
            },
            None => PeakWindow {
                start_hour: DEFAULT_PEAK_HOURS.0,
                end_hour: DEFAULT_PEAK_HOURS.1,
                source: "default",
            },
        }
    }

    fn contains(self, hour: i8) -> bool {
        let hour = i16::from(hour);
        hour >= i16::from(self.start_hour) && hour < i16::from(self.end_hour)
    }
}

/// Loss and latency over some rows of the public targets.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct LossLatency {
    /// Probes sent.
    pub(crate) sent: u64,
    /// Probes lost.
    pub(crate) lost: u64,
    /// `lost / sent`; `null` when nothing was sent.
    pub(crate) loss_ratio: Option<f64>,
    /// Nearest-rank percentiles of the rows' median RTTs, ms; `null` without any RTT.
    pub(crate) rtt_median_ms: Option<Percentiles>,
    /// Target-minutes left out because a speed test ran in them.
    pub(crate) under_load_minutes_excluded: u64,
}

/// The peak-hour figures and the same over all hours, for comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct PeakFigures {
    /// The window and where it comes from.
    #[serde(flatten)]
    pub(crate) window: PeakWindow,
    /// The IANA zone of the hours.
    pub(crate) time_zone: String,
    /// Inside the peak window.
    pub(crate) peak: LossLatency,
    /// At any hour.
    pub(crate) all_hours: LossLatency,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    lost: u64,
    medians_ms: Vec<f64>,
    under_load: u64,
}

impl Tally {
    fn finish(self) -> LossLatency {
        LossLatency {
            sent: self.sent,
            lost: self.lost,
            loss_ratio: (self.sent > 0).then(|| self.lost as f64 / self.sent as f64),
            rtt_median_ms: Percentiles::of(self.medians_ms),
            under_load_minutes_excluded: self.under_load,
        }
    }
}

/// Gathers [`PeakFigures`] from rows in any order.
pub(crate) struct PeakTally {
    window: PeakWindow,
    zone: Zone,
    public: HashSet<TargetId>,
    peak: Tally,
    all: Tally,
}

impl PeakTally {
    /// A tally of the public ones among `targets`, hours in `zone`.
    pub(crate) fn new(window: PeakWindow, zone: Zone, targets: &[StoredTarget]) -> Self {
        PeakTally {
            window,
            zone,
            public: targets
                .iter()
                .filter(|target| target.target.kind == TargetKind::Public)
                .map(|target| target.id)
                .collect(),
            peak: Tally::default(),
            all: Tally::default(),
        }
    }

    /// Adds one row.
    pub(crate) fn add(&mut self, row: &ProbeRow) {
        let in_peak = self.window.contains(self.zone.local(row.start).hour());
        for stats in row.stats.iter().filter(|s| self.public.contains(&s.target)) {
            for tally in [Some(&mut self.all), in_peak.then_some(&mut self.peak)]
                .into_iter()
                .flatten()
            {
                if stats.under_load_minutes > 0 {
                    tally.under_load += u64::from(stats.under_load_minutes);
                    continue;
                }
                tally.sent += u64::from(stats.sent);
                tally.lost += u64::from(stats.lost.min(stats.sent));
                if let Some(median) = stats.rtt_median_us {
                    tally.medians_ms.push(median as f64 / 1000.0);
                }
            }
        }
    }

    /// The figures.
    pub(crate) fn finish(self) -> PeakFigures {
        PeakFigures {
            window: self.window,
            time_zone: self.zone.name().to_owned(),
            peak: self.peak.finish(),
            all_hours: self.all.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::probe::{ProbeMethod, Target};
    use crate::store::probes::ProbeStats;
    use crate::time::Timestamp;

    fn target(id: TargetId, kind: TargetKind) -> StoredTarget {
        StoredTarget {
            id,
            target: Target {
                kind,
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                method: ProbeMethod::IcmpUnprivileged,
            },
        }
    }

    fn row(time: &str, stats: Vec<ProbeStats>) -> ProbeRow {
        ProbeRow {
            start: Timestamp::parse(time).unwrap(),
            minutes: 1,
            stats,
        }
    }

    fn stats(target: TargetId, sent: u32, lost: u32, median_ms: Option<u64>) -> ProbeStats {
        ProbeStats {
            target,
            sent,
            lost,
            rtt_min_us: median_ms.map(|ms| ms * 1000),
            rtt_median_us: median_ms.map(|ms| ms * 1000),
            rtt_max_us: median_ms.map(|ms| ms * 1000),
            under_load_minutes: 0,
        }
    }

    #[test]
    fn the_window_is_the_rule_sets_or_the_evening_default() {
        let default = PeakWindow::of(None);
        assert_eq!((default.start_hour, default.end_hour), (19, 23));
        assert_eq!(default.source, "default");
        assert_eq!(PeakWindow::of(Some(RuleSet::DeBnetza)), default);
        let fcc = PeakWindow::of(Some(RuleSet::UsFcc));
        assert_eq!(
            (fcc.start_hour, fcc.end_hour, fcc.source),
            (18, 24, "rule set")
        );
        assert!(fcc.contains(23) && !fcc.contains(17));
    }

    #[test]
    fn peak_rows_are_chosen_by_local_hour_and_only_public_targets_count() {
        // Berlin is UTC+1 in November: 18:30Z is 19:30 local (peak), 22:10Z is 23:10 (not).
        let zone = Zone::parse("Europe/Berlin").unwrap();
        let targets = [
            target(0, TargetKind::Gateway),
            target(1, TargetKind::Public),
        ];
        let mut tally = PeakTally::new(PeakWindow::of(None), zone, &targets);
        let mut loaded = stats(1, 6, 6, None);
        loaded.under_load_minutes = 1;
        for row in [
            row(
                "2026-11-30T18:30:00Z",
                vec![stats(0, 6, 6, None), stats(1, 6, 1, Some(30))],
            ),
            row("2026-11-30T18:31:00Z", vec![stats(1, 6, 0, Some(10))]),
            row("2026-11-30T18:32:00Z", vec![loaded]),
            row("2026-11-30T22:10:00Z", vec![stats(1, 6, 0, Some(5))]),
        ] {
            tally.add(&row);
        }
        let figures = tally.finish();
        assert_eq!(figures.time_zone, "Europe/Berlin");
        let peak = &figures.peak;
        assert_eq!(
            (peak.sent, peak.lost),
            (12, 1),
            "the gateway's loss is not counted"
        );
        assert_eq!(peak.loss_ratio, Some(1.0 / 12.0));
        assert_eq!(peak.under_load_minutes_excluded, 1);
        let rtt = peak.rtt_median_ms.unwrap();
        assert_eq!((rtt.p50, rtt.p95), (10.0, 30.0));
        let all = &figures.all_hours;
        assert_eq!((all.sent, all.lost), (18, 1));
        let rtt = all.rtt_median_ms.unwrap();
        assert_eq!((rtt.min, rtt.p50, rtt.p95), (5.0, 10.0, 30.0));
    }

    #[test]
    fn no_rows_have_no_ratio_and_no_percentiles() {
        let figures = PeakTally::new(PeakWindow::of(None), Zone::utc(), &[]).finish();
        assert_eq!(figures.peak, LossLatency::default());
        assert_eq!(figures.all_hours.loss_ratio, None);
    }
}
