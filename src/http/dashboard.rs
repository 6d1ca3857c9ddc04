//! `/api/v1/status`, `/api/v1/series` and `/api/v1/heatmap`: what the dashboard at `/` draws,
//! computed from the column cache ([`Columns`]) that a store reader rebuilds when the stored
//! runs change.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use hyper::{Response, StatusCode};
use jiff::tz::TimeZone;

use crate::zone::Zone;
use serde::Serialize;

use super::cache::Memo;
use super::compat::store_failed;
use super::query::Query;
use super::response::{Body, HttpError, json_body, overloaded, to_json};
use crate::daemon::state::{AppState, READER_WAIT};
use crate::history::{self, Columns, DEFAULT_POINTS, MAX_POINTS, MIN_POINTS, Metric, PlanJson};
use crate::sample::{EngineName, Outcome, Sample};
use crate::store::{Order, Store, StoreError};
use crate::time::{TimeArg, Timestamp};

/// The parameters `/api/v1/status` takes: none.
pub(super) const STATUS_PARAMETERS: &[&str] = &[];
/// The parameters `/api/v1/series` takes.
pub(super) const SERIES_PARAMETERS: &[&str] = &["from", "to", "points"];
/// The parameters `/api/v1/heatmap` takes.
pub(super) const HEATMAP_PARAMETERS: &[&str] = &["from", "to", "tz", "metric"];

/// How far back (runs, newest first) `/api/v1/status` looks for the newest failure.
pub(super) const FAILURE_SEARCH_RUNS: usize = 100_000;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const SERIES_SPAN: Duration = DAY;
const HEATMAP_SPAN: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// What the dashboard endpoints keep between requests, per store generation.
#[derive(Default)]
pub(super) struct Dashboard {
    columns: Memo<Columns>,
    stored: Memo<Stored>,
}

impl Dashboard {
    /// The column cache of the store at `generation`, brought up to date on a reader thread
    /// when it is older ([`Columns::refresh`]; one request does it, the others wait for it).
    pub(super) async fn columns(
        &self,
        state: &AppState,
        generation: u64,
    ) -> Result<Arc<Columns>, HttpError> {
        self.columns
            .get_or_make(generation, || async {
                // Made from the columns of an earlier generation when there are any: a new
                // run is read alone, not with the whole history.
                let previous = self.columns.last();
                state
                    .readers
                    .run_within(READER_WAIT, move |store| {
                        match previous {
                            Some(previous) => Columns::refresh(&previous, store),
                            None => Columns::build(store),
                        }
                        .map_err(store_failed)
                    })
                    .await
                    .map_err(overloaded)?
            })
            .await
    }
}

/// A stored run as the dashboard shows it: never with addresses.
fn shown(sample: Option<Sample>) -> Option<Sample> {
    sample.map(|mut sample| {
        sample.client = None;
        sample
    })
}

/// The store's part of the status, read once per generation.
#[derive(Clone, Debug, Default)]
struct Stored {
    samples: u64,
    oldest: Option<Timestamp>,
    latest: Option<Sample>,
    latest_success: Option<Sample>,
    latest_failure: Option<Sample>,
}

impl Stored {
    fn read(store: &Store) -> Result<Self, StoreError> {
        let mut oldest = None;
        store.scan(
            Timestamp::EPOCH,
            Timestamp::MAX,
            Order::OldestFirst,
            |sample| {
                oldest = Some(sample.time);
                Ok::<_, StoreError>(ControlFlow::Break(()))
            },
        )?;
        let mut latest_failure = None;
        let mut searched = 0;
        store.scan(
            Timestamp::EPOCH,
            Timestamp::MAX,
            Order::NewestFirst,
            |sample| {
                searched += 1;
                if sample.outcome == Outcome::Failure {
                    latest_failure = Some(sample);
                    return Ok::<_, StoreError>(ControlFlow::Break(()));
                }
                Ok(if searched >= FAILURE_SEARCH_RUNS {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )?;
        Ok(Stored {
            samples: store.len()?,
            oldest,
            latest: shown(store.latest()?),
            latest_success: shown(store.latest_success()?),
            latest_failure: shown(latest_failure),
        })
    }
}

#[derive(Serialize)]
struct RunEndpoint {
    enabled: bool,
    /// `null` when the endpoint is off.
    min_gap_seconds: Option<u64>,
}

#[derive(Serialize)]
struct Status<'a> {
    version: &'static str,
    now: Timestamp,
    samples: u64,
    oldest: Option<Timestamp>,
    newest: Option<Timestamp>,
    running: bool,
    running_since: Option<Timestamp>,
    next_run: Option<Timestamp>,
    interval_seconds: u64,
    engine: &'static str,
    plan: Option<PlanJson>,
    run_endpoint: RunEndpoint,
    latest: Option<&'a Sample>,
    latest_success: Option<&'a Sample>,
    latest_failure: Option<&'a Sample>,
}

/// `/api/v1/status`: what runs, when the next test is due, and the newest runs.
pub(super) async fn status(
    dashboard: &Dashboard,
    state: &AppState,
    generation: u64,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let stored = dashboard
        .stored
        .get_or_make(generation, || async {
            state
                .readers
                .run_within(READER_WAIT, |store| {
                    Stored::read(store).map_err(store_failed)
                })
                .await
                .map_err(overloaded)?
        })
        .await?;
    let running_since = state.running_since();
    let status = Status {
        version: env!("CARGO_PKG_VERSION"),
        now,
        samples: stored.samples,
        oldest: stored.oldest,
        newest: stored.latest.as_ref().map(|latest| latest.time),
        running: running_since.is_some(),
        running_since,
        next_run: state.next_run(),
        interval_seconds: state.interval().as_secs(),
        engine: match state.runner.engine().name {
            EngineName::Ookla => "ookla",
            EngineName::Http => "http",
        },
        plan: PlanJson::of(&state.plan_at(now)),
        run_endpoint: RunEndpoint {
            enabled: state.manual_runs.is_some(),
            min_gap_seconds: state
                .manual_runs
                .as_ref()
                .map(|manual| manual.min_gap.as_secs()),
        },
        latest: stored.latest.as_ref(),
        latest_success: stored.latest_success.as_ref(),
        latest_failure: stored.latest_failure.as_ref(),
    };
    Ok(json_body(StatusCode::OK, to_json(&status)?))
}

/// `from` and `to` of a query (RFC 3339 or an age); `to` defaults to `now`, `from` to `span`
/// before `to`. `from >= to` is a 400 naming both.
pub(super) fn range(
    query: &Query,
    now: Timestamp,
    span: Duration,
) -> Result<(Timestamp, Timestamp), HttpError> {
    let time = |name| {
        query
            .parsed::<TimeArg>(name)
            .map(|arg| arg.map(|arg| arg.resolve(now)))
    };
    let to = time("to")?.unwrap_or(now);
    let from = time("from")?.unwrap_or_else(|| to.saturating_sub(span));
    let before_to = format!("{} before to", crate::time::format_limit(span));
    in_order(query, (from, &before_to), (to, "now"))?;
    Ok((from, to))
}

/// `from < to`, else a 400 naming both ends as the request gave them (`from="2030"`), or,
/// for an end it did not give, saying so and what it was by default (`to (default: now,
/// 2026-12-01T04:00:00.000Z)`): an inverted or empty range is a mistake, not a question whose
/// answer is nothing (as `export` and `report` say too). Each end is (its instant, what it is
/// when not given).
pub(super) fn in_order(
    query: &Query,
    (from, from_default): (Timestamp, &str),
    (to, to_default): (Timestamp, &str),
) -> Result<(), HttpError> {
    if from < to {
        return Ok(());
    }
    let end = |name: &str, at: Timestamp, default: &str| match query.get(name) {
        Some(given) => format!("{name}={} ({at})", crate::logging::quoted(given)),
        None => format!("{name} (default: {default}, {at})"),
    };
    Err(HttpError::bad_request(format!(
        "invalid from and to: {} must be before {}",
        end("from", from, from_default),
        end("to", to, to_default)
    )))
}

/// `points=N`: the most buckets, [`MIN_POINTS`] to [`MAX_POINTS`].
fn points(query: &Query) -> Result<usize, HttpError> {
    match query.get("points") {
        None => Ok(DEFAULT_POINTS),
        Some(text) => match text.parse::<usize>() {
            Ok(points) if (MIN_POINTS..=MAX_POINTS).contains(&points) => Ok(points),
            _ => Err(HttpError::bad_request(format!(
                "invalid points: {} is not a whole number from {MIN_POINTS} to {MAX_POINTS}",
                crate::logging::quoted(text)
            ))),
        },
    }
}

/// `tz=Area/City`: an IANA time zone the database knows (`UTC` when absent).
fn zone(query: &Query) -> Result<(TimeZone, String), HttpError> {
    let Some(name) = query.get("tz") else {
        return Ok((TimeZone::UTC, "UTC".to_owned()));
    };
    let zone =
        Zone::parse(name).map_err(|err| HttpError::bad_request(format!("invalid tz: {err}")))?;
    Ok((zone.time_zone().clone(), zone.name().to_owned()))
}

/// `metric=download|upload|ping` (`download` when absent).
fn metric(query: &Query) -> Result<Metric, HttpError> {
    match query.get("metric") {
        None => Ok(Metric::Download),
        Some(text) => Metric::parse(text).ok_or_else(|| {
            HttpError::bad_request(format!(
                "invalid metric: {} is not download, upload or ping",
                crate::logging::quoted(text)
            ))
        }),
    }
}

/// `/api/v1/series`: the range in buckets (see [`history::series`]).
pub(super) async fn series(
    dashboard: &Dashboard,
    state: &AppState,
    query: &Query,
    generation: u64,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let (from, to) = range(query, now, SERIES_SPAN)?;
    let points = points(query)?;
    let columns = dashboard.columns(state, generation).await?;
    let plans = state.plans.clone();
    let body = state
        .readers
        .run_within(READER_WAIT, move |_| {
            to_json(&history::series(&columns, from, to, points, &plans))
        })
        .await
        .map_err(overloaded)??;
    Ok(json_body(StatusCode::OK, body))
}

/// `/api/v1/heatmap`: weekday × hour medians (see [`history::heatmap`]).
pub(super) async fn heatmap(
    dashboard: &Dashboard,
    state: &AppState,
    query: &Query,
    generation: u64,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let (from, to) = range(query, now, HEATMAP_SPAN)?;
    let (zone, zone_name) = zone(query)?;
    let metric = metric(query)?;
    let columns = dashboard.columns(state, generation).await?;
    let plans = state.plans.clone();
    let body = state
        .readers
        .run_within(READER_WAIT, move |_| {
            to_json(&history::heatmap(
                &columns, from, to, &zone, &zone_name, metric, &plans,
            ))
        })
        .await
        .map_err(overloaded)??;
    Ok(json_body(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_795_996_800_000);

    fn query(raw: &str, accepted: &[&str]) -> Query {
        Query::parse(Some(raw), accepted).unwrap()
    }

    #[test]
    fn ranges_default_to_a_span_before_now_and_refuse_empty_ones() {
        let series = |raw| range(&query(raw, SERIES_PARAMETERS), NOW, SERIES_SPAN);
        assert_eq!(series("").unwrap(), (NOW.saturating_sub(DAY), NOW));
        assert_eq!(
            series("from=2d&to=1d").unwrap(),
            (NOW.saturating_sub(2 * DAY), NOW.saturating_sub(DAY))
        );
        let err = series("from=1d&to=2d").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(
            err.message
                .starts_with("invalid from and to: from=\"1d\" ("),
            "{}",
            err.message
        );
        assert!(
            series("to=x")
                .unwrap_err()
                .message
                .starts_with("invalid to")
        );
    }

    #[test]
    fn points_are_bounded() {
        let points = |raw| points(&query(raw, SERIES_PARAMETERS));
        assert_eq!(points("").unwrap(), DEFAULT_POINTS);
        assert_eq!(points("points=10").unwrap(), 10);
        assert_eq!(points("points=600").unwrap(), 600);
        for bad in [
            "points=9",
            "points=601",
            "points=-1",
            "points=1e3",
            "points=",
        ] {
            let err = points(bad).unwrap_err();
            assert!(
                err.message.starts_with("invalid points"),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn zones_are_iana_names_the_database_knows() {
        let zone = |raw| zone(&query(raw, HEATMAP_PARAMETERS)).map(|(_, name)| name);
        assert_eq!(zone("").unwrap(), "UTC");
        assert_eq!(zone("tz=Europe/Berlin").unwrap(), "Europe/Berlin");
        assert_eq!(
            zone("tz=America/Argentina/Buenos_Aires").unwrap(),
            "America/Argentina/Buenos_Aires"
        );
        for bad in [
            "tz=Mars/Olympus",
            "tz=",
            "tz=../../etc/passwd",
            "tz=/etc/localtime",
            "tz=Europe%2FBerlin%00",
            "tz=+01:00",
        ] {
            let err = zone(bad).unwrap_err();
            assert!(
                err.message.starts_with("invalid tz"),
                "{bad}: {}",
                err.message
            );
        }
        let long = format!("tz={}", "A".repeat(500));
        assert!(
            zone(&long).unwrap_err().message.len() < 200,
            "the name is clipped"
        );
    }

    #[test]
    fn the_bundled_zone_database_knows_berlin() {
        // What a container without /usr/share/zoneinfo falls back to.
        let bundled = jiff::tz::TimeZoneDatabase::bundled();
        assert!(bundled.get("Europe/Berlin").is_ok());
        assert!(bundled.get("America/New_York").is_ok());
    }

    #[test]
    fn metrics_are_download_upload_or_ping() {
        let metric = |raw| metric(&query(raw, HEATMAP_PARAMETERS));
        assert_eq!(metric("").unwrap(), Metric::Download);
        assert_eq!(metric("metric=ping").unwrap(), Metric::Ping);
        assert!(
            metric("metric=Download")
                .unwrap_err()
                .message
                .starts_with("invalid metric")
        );
    }
}
