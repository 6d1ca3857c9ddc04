//! `/api/v1/outages` and `/api/v1/latency`: the connectivity monitor's outage log and its
//! latency and loss per target in steps, read from the store on a reader thread (plus the
//! running monitor's live state).

use std::time::Duration;

use hyper::{Response, StatusCode};
use serde::Serialize;

use super::compat::store_failed;
use super::query::Query;
use super::response::{Body, HttpError, json_body, overloaded, to_json};
use crate::daemon::state::{AppState, READER_WAIT};
use crate::probe::availability::{Availability, Live};
use crate::probe::latency::{MAX_STEPS, STEP_UNIT, default_step, step_count};
use crate::probe::report::{read_availability, read_latency};
use crate::probe::status::Status;
use crate::time::{MAX_AGE, TimeError, Timestamp, format_limit, parse_duration};

/// The parameters `/api/v1/outages` takes.
pub(super) const OUTAGES_PARAMETERS: &[&str] = &["from", "to"];
/// The parameters `/api/v1/latency` takes.
pub(super) const LATENCY_PARAMETERS: &[&str] = &["from", "to", "step"];

/// The window of `/api/v1/outages` without `from`: the week before `to`.
const OUTAGES_SPAN: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The window of `/api/v1/latency` without `from`: the day before `to`.
const LATENCY_SPAN: Duration = Duration::from_secs(24 * 60 * 60);

/// The monitor's settings, `null` in the answer when probing is off.
#[derive(Serialize)]
struct Probing {
    interval_seconds: f64,
    method: &'static str,
    method_reason: String,
    targets: Vec<ProbingTarget>,
}

#[derive(Serialize)]
struct ProbingTarget {
    address: String,
    kind: &'static str,
    method: String,
}

impl Probing {
    fn of(status: &Status) -> Self {
        Probing {
            interval_seconds: status.interval.as_secs_f64(),
            method: status.method.name(),
            method_reason: status.method_reason.clone(),
            targets: status
                .targets
                .iter()
                .map(|target| ProbingTarget {
                    address: target.target.address.to_string(),
                    kind: target.target.kind.name(),
                    method: target.target.method.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct OutagesAnswer {
    #[serde(flatten)]
    availability: Availability,
    probing: Option<Probing>,
}

/// `/api/v1/outages?from&to`: monitored and unmonitored time, availability, the outages
/// overlapping the window (whole) and the unmonitored gaps (clipped); the week before now by
/// default.
pub(super) async fn outages(
    state: &AppState,
    query: &Query,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let (from, to) = super::dashboard::range(query, now, OUTAGES_SPAN)?;
    let status = state.probes.clone();
    let body = state
        .readers
        .run_within(READER_WAIT, move |store| {
            let live = status.as_deref().map(Live::of);
            let availability =
                read_availability(store, from, to, now, live.as_ref()).map_err(store_failed)?;
            to_json(&OutagesAnswer {
                availability,
                probing: status.as_deref().map(Probing::of),
            })
        })
        .await
        .map_err(overloaded)??;
    Ok(json_body(StatusCode::OK, body))
}

/// `/api/v1/latency?from&to&step`: each target's loss and RTT in steps (see
/// [`crate::probe::latency`]); the day before now by default, the step so that the window
/// has at most 720 steps.
pub(super) async fn latency(
    state: &AppState,
    query: &Query,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let (from, to) = super::dashboard::range(query, now, LATENCY_SPAN)?;
    let step = step(query, from, to)?;
    let body = state
        .readers
        .run_within(READER_WAIT, move |store| {
            to_json(&read_latency(store, from, to, step).map_err(store_failed)?)
        })
        .await
        .map_err(overloaded)??;
    Ok(json_body(StatusCode::OK, body))
}

/// `step=DURATION`: a whole number of minutes, at least one, cutting `[from, to)` into at
/// most [`MAX_STEPS`] steps; by default the smallest giving at most 720.
fn step(query: &Query, from: Timestamp, to: Timestamp) -> Result<Duration, HttpError> {
    let Some(text) = query.get("step") else {
        return Ok(default_step(from, to));
    };
    let clipped = crate::logging::quoted(text);
    let step = parse_duration(text, false, MAX_AGE).map_err(|err| {
        let reason = match err {
            TimeError::DurationSyntax { .. } => {
                format!("{clipped} is not a duration such as 1m, 5m or 1h")
            }
            other => format!("{clipped} {other}"),
        };
        HttpError::bad_request(format!("invalid step: {reason}"))
    })?;
    let unit = STEP_UNIT.as_millis();
    if step < STEP_UNIT || step.as_millis() % unit != 0 {
        return Err(HttpError::bad_request(format!(
            "invalid step: {clipped:?} is not a whole number of minutes (1m or more)"
        )));
    }
    let steps = step_count(from, to, step);
    if steps > MAX_STEPS {
        return Err(HttpError::bad_request(format!(
            "invalid step: {} cuts the window into {steps} steps, more than {MAX_STEPS}; \
             use a longer step or a shorter window",
            format_limit(step)
        )));
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_796_083_200_000);

    fn step_of(raw: &str) -> Result<Duration, HttpError> {
        let query = Query::parse(Some(raw), LATENCY_PARAMETERS)?;
        let (from, to) = super::super::dashboard::range(&query, NOW, LATENCY_SPAN)?;
        step(&query, from, to)
    }

    fn message(raw: &str) -> String {
        let err = step_of(raw).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST, "{raw}");
        err.message
    }

    #[test]
    fn steps_are_whole_minutes_within_the_bucket_limit() {
        assert_eq!(
            step_of("").unwrap(),
            Duration::from_secs(120),
            "a day: 720 steps"
        );
        assert_eq!(step_of("step=1m").unwrap(), STEP_UNIT);
        assert_eq!(step_of("step=1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(step_of("from=6d&step=1m").unwrap(), STEP_UNIT, "8640 steps");
    }

    #[test]
    fn bad_steps_name_the_parameter() {
        for bad in ["step=30s", "step=90s", "step=0m", "step=fast", "step="] {
            let message = message(bad);
            assert!(message.starts_with("invalid step: "), "{bad}: {message}");
        }
        let many = message("from=8d&step=1m");
        assert!(many.contains("11520 steps, more than 10000"), "{many}");
        let long = message(&format!("step={}", "9".repeat(500)));
        assert!(long.len() < 300, "the value is clipped: {long}");
    }
}
