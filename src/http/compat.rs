//! `/latest`, `/last-day` and `/graph`: the original Flask app's endpoints, field for field.
//!
//! Like the original they consider successful runs only, with speeds in bytes per second, ping
//! in milliseconds and times as Unix seconds. Deliberate differences (see the README): rolling
//! windows, and 404 with a JSON error where the original crashed on an empty table.

use std::time::Duration;

use serde::Serialize;

use super::response::HttpError;
use crate::sample::{Sample, millis};
use crate::store::Store;
use crate::time::Timestamp;

pub(super) const DAY: Duration = Duration::from_secs(24 * 60 * 60);
pub(super) const GRAPH_WINDOW: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// One measurement as the original stored it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(super) struct Measurement {
    pub download: f64,
    pub upload: f64,
    pub ping: f64,
    pub time: f64,
}

impl Measurement {
    /// The original's row for a successful sample; `None` for failures and for imported
    /// successes that lack one of the three figures.
    pub(super) fn of(sample: &Sample) -> Option<Self> {
        if !sample.is_success() {
            return None;
        }
        Some(Measurement {
            download: sample.download_bytes_per_second?,
            upload: sample.upload_bytes_per_second?,
            ping: millis(sample.ping_seconds?),
            time: sample.time.as_seconds_f64(),
        })
    }
}

#[derive(Debug, PartialEq, Serialize)]
pub(super) struct GraphPoint {
    /// Stable and increasing with time, as the original's row id was: the start in ms.
    pub id: u64,
    #[serde(flatten)]
    pub measurement: Measurement,
}

#[derive(Debug, PartialEq, Serialize)]
pub(super) struct Spread {
    pub high: f64,
    pub average: f64,
    pub low: f64,
}

#[derive(Debug, PartialEq, Serialize)]
pub(super) struct LastDay {
    pub download: Spread,
    pub upload: Spread,
    pub ping: Spread,
}

pub(super) fn no_measurement() -> HttpError {
    HttpError::not_found("no successful measurement yet")
}

/// `/last-day`: high, average and low of the successes in the 24 hours before `now`.
pub(super) fn last_day(store: &Store, now: Timestamp) -> Result<LastDay, HttpError> {
    let rows = successes(store, now.saturating_sub(DAY), now)?;
    if rows.is_empty() {
        return Err(HttpError::not_found(
            "no successful measurement in the last 24 hours",
        ));
    }
    let spread = |figure: fn(&Measurement) -> f64| Spread {
        high: rows.iter().map(figure).fold(f64::NEG_INFINITY, f64::max),
        // Summed oldest first, as Python's sum() over the original's rows did.
        average: rows.iter().map(figure).sum::<f64>() / rows.len() as f64,
        low: rows.iter().map(figure).fold(f64::INFINITY, f64::min),
    };
    Ok(LastDay {
        download: spread(|m| m.download),
        upload: spread(|m| m.upload),
        ping: spread(|m| m.ping),
    })
}

/// `/graph`: every success of the 30 days before `now`, oldest first.
pub(super) fn graph(store: &Store, now: Timestamp) -> Result<Vec<GraphPoint>, HttpError> {
    let mut points = Vec::new();
    store
        .for_each(now.saturating_sub(GRAPH_WINDOW), after(now), |sample| {
            if let Some(measurement) = Measurement::of(&sample) {
                points.push(GraphPoint {
                    id: sample.time.as_millis(),
                    measurement,
                });
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(store_failed)?;
    Ok(points)
}

fn successes(
    store: &Store,
    from: Timestamp,
    now: Timestamp,
) -> Result<Vec<Measurement>, HttpError> {
    let mut rows = Vec::new();
    store
        .for_each(from, after(now), |sample| {
            rows.extend(Measurement::of(&sample));
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(store_failed)?;
    Ok(rows)
}

/// The exclusive end of a window that includes `now` itself.
fn after(now: Timestamp) -> Timestamp {
    Timestamp::from_millis(now.as_millis().saturating_add(1))
}

pub(super) fn store_failed(err: crate::store::StoreError) -> HttpError {
    static FAILED: crate::logging::Throttle =
        crate::logging::Throttle::new(super::LOG_LINES_PER_MINUTE);
    if let Some(left_out) = FAILED.admit() {
        tracing::error!(%err, left_out, "reading the store failed");
    }
    HttpError::unavailable(format!("the sample store cannot be read: {err}"))
}
