//! The connectivity figures of a window, read from the store (plus the running monitor's
//! live state): the answers of `/api/v1/outages` and `/api/v1/latency`, and the
//! `connectivity` part of `/api/v1/summary` and `report`.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::availability::{self, Availability, ByKind, Live, OutageEntry};
use super::latency::{Bucketer, Series};
use super::peak::{LossLatency, PeakFigures, PeakTally, PeakWindow};
use super::status::Status;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;
use crate::zone::Zone;

impl Live {
    /// What the running monitor adds: its run and its ongoing outage now.
    pub(crate) fn of(status: &Status) -> Self {
        Live {
            run_start: status.run_start,
            ongoing: status.ongoing(),
        }
    }
}

/// The availability of `[from, to)` at `now` (see [`availability`](super::availability)).
pub(crate) fn read_availability(
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
    live: Option<&Live>,
) -> Result<Availability, StoreError> {
    let outages = store.outages(from, to)?;
    let runs_from = availability::runs_needed_from(from, &outages, live);
    let runs = store.monitor_runs(runs_from, to.max(now))?;
    Ok(availability::availability(
        from, to, now, &runs, &outages, live,
    ))
}

/// The probe rows of `[from, to)` in steps of `step` (see [`latency`](super::latency)).
pub(crate) fn read_latency(
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    step: Duration,
) -> Result<Series, StoreError> {
    let targets = store.probe_targets()?;
    let mut bucketer = Bucketer::new(from, to, step, &targets);
    store.probe_rows(from, to, &mut |row| bucketer.add(row))?;
    Ok(bucketer.finish())
}

/// The connectivity part of a summary or report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Connectivity {
    /// The share (0 to 1) of monitored time without an `isp` outage; `null` when nothing
    /// in the window was monitored.
    pub(crate) availability: Option<f64>,
    /// Monitored time inside the window, seconds.
    pub(crate) monitored_seconds: f64,
    /// Unmonitored time inside the window up to now, seconds.
    pub(crate) unmonitored_seconds: f64,
    /// Outages overlapping the window by kind: how many, and their down time inside it.
    pub(crate) outages: ByKind,
    /// The `isp` outage with the most down time (whole, as listed by `/api/v1/outages`).
    pub(crate) longest_isp_outage: Option<OutageEntry>,
    /// Loss and latency of the public targets in the peak hours and over all hours.
    pub(crate) peak_hours: PeakFigures,
    /// The outages overlapping the window, whole, oldest first (at most
    /// [`MAX_LISTED`](super::availability::MAX_LISTED)): the evidence pack lists them; the
    /// summary leaves them to `/api/v1/outages`.
    #[serde(skip)]
    pub(crate) listed: Vec<OutageEntry>,
}

/// The connectivity figures of `[from, to)` at `now`, peak hours as `window` in `zone`.
pub(crate) fn read_connectivity(
    store: &Store,
    (from, to): (Timestamp, Timestamp),
    now: Timestamp,
    live: Option<&Live>,
    window: PeakWindow,
    zone: &Zone,
) -> Result<Connectivity, StoreError> {
    let availability = read_availability(store, from, to, now, live)?;
    let targets = store.probe_targets()?;
    let mut tally = PeakTally::new(window, zone.clone(), &targets);
    store.probe_rows(from, to, &mut |row| tally.add(row))?;
    let longest_isp_outage = availability
        .outages
        .iter()
        .filter(|outage| outage.kind == super::outage::OutageKind::Isp.name())
        .max_by(|a, b| a.down_seconds.total_cmp(&b.down_seconds))
        .copied();
    Ok(Connectivity {
        availability: availability.availability,
        monitored_seconds: availability.monitored_seconds,
        unmonitored_seconds: availability.unmonitored_seconds,
        outages: availability.by_kind,
        longest_isp_outage,
        peak_hours: tally.finish(),
        listed: availability.outages,
    })
}

impl Connectivity {
    /// The section of the text report: availability, outages, peak-hour loss and latency.
    pub(crate) fn to_text(&self) -> String {
        let mut text = String::from("\nConnectivity (probes between the speed tests)\n");
        if self.monitored_seconds == 0.0 && self.listed.is_empty() {
            text.push_str("  the connectivity monitor did not run in this window\n");
            return text;
        }
        let hours = |seconds: f64| format!("{:.1} h", seconds / 3600.0);
        let _ = writeln!(
            text,
            "  monitored:       {} (unmonitored {}, not counted against anyone)",
            hours(self.monitored_seconds),
            hours(self.unmonitored_seconds)
        );
        let _ = match self.availability {
            Some(share) => writeln!(
                text,
                "  availability:    {:.3} % of monitored time without an ISP outage",
                share * 100.0
            ),
            None => writeln!(text, "  availability:    not monitored in this window"),
        };
        for (name, kind, whose) in [
            (
                "isp",
                &self.outages.isp,
                "the gateway answered, nothing beyond it",
            ),
            (
                "local",
                &self.outages.local,
                "the gateway did not answer: home network, not counted against the ISP",
            ),
        ] {
            let _ = writeln!(
                text,
                "  {:<17}{}, {:.0} s down ({whose})",
                format!("{name} outages:"),
                kind.count,
                kind.down_seconds
            );
        }
        if let Some(longest) = &self.longest_isp_outage {
            let _ = writeln!(
                text,
                "  longest ISP outage: {} s down from {}{}",
                longest.down_seconds,
                longest.start,
                if longest.ongoing { " (ongoing)" } else { "" }
            );
        }
        let peak = &self.peak_hours;
        let _ = writeln!(
            text,
            "  peak hours {:02}:00–{:02}:00 {} ({}), public targets:",
            peak.window.start_hour, peak.window.end_hour, peak.time_zone, peak.window.source
        );
        for (name, figures) in [("peak", &peak.peak), ("all hours", &peak.all_hours)] {
            let _ = writeln!(text, "    {name:<9}  {}", loss_latency_text(figures));
        }
        text
    }
}

fn loss_latency_text(figures: &LossLatency) -> String {
    let loss = figures.loss_ratio.map_or_else(
        || "no probes".to_owned(),
        |ratio| format!("loss {:.2} % of {}", ratio * 100.0, figures.sent),
    );
    let rtt = figures.rtt_median_ms.map_or_else(
        || "no RTT".to_owned(),
        |rtt| format!("RTT p50 {:.1} ms, p95 {:.1} ms", rtt.p50, rtt.p95),
    );
    format!("{loss}, {rtt}")
}
