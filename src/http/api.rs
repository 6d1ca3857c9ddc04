//! `/api/v1/…`: the history of every run, failures included, as JSON pages or a CSV stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::compat::store_failed;
use super::query::Query;
use super::response::{Body, BodyError, HttpError, json, respond};
use crate::csv;
use crate::sample::{Sample, Trigger};
use crate::state::{AppState, Refusal};
use crate::store::Store;
use crate::summary::summarize;
use crate::time::{TimeArg, TimeError, Timestamp, parse_age};

/// The parameters `/api/v1/samples` and `/api/v1/samples.csv` take.
pub const SAMPLE_PARAMETERS: &[&str] = &["from", "to", "limit", "cursor"];
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;
/// Samples read per store transaction while streaming CSV: short transactions, flat memory.
const CSV_CHUNK: usize = 1_000;
/// Chunks buffered ahead of a slow client before the reader waits.
const CSV_BUFFERED_CHUNKS: usize = 2;

/// Which samples a request asks for: `from <= time < to`, newest first, at most `limit`.
struct Selection {
    from: Timestamp,
    to: Timestamp,
    limit: Option<usize>,
}

impl Selection {
    fn parse(query: &Query, now: Timestamp) -> Result<Self, HttpError> {
        let time = |name| {
            query
                .parsed::<TimeArg>(name)
                .map(|arg| arg.map(|arg| arg.resolve(now)))
        };
        let from = time("from")?.unwrap_or(Timestamp::from_millis(0));
        let mut to = time("to")?.unwrap_or(Timestamp::from_millis(u64::MAX));
        if let Some(cursor) = query.get("cursor") {
            let below = cursor.parse().ok().and_then(Timestamp::try_from_millis);
            let below = below.ok_or_else(|| {
                HttpError::bad_request(format!(
                    "invalid cursor: {cursor:?} is not a next_cursor this server gave"
                ))
            })?;
            to = to.min(below);
        }
        let limit = match query.get("limit") {
            None => None,
            Some(text) => match text.parse::<usize>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Some(limit),
                _ => {
                    return Err(HttpError::bad_request(format!(
                        "invalid limit: {text:?} is not a whole number from 1 to {MAX_LIMIT}"
                    )));
                }
            },
        };
        Ok(Selection { from, to, limit })
    }
}

#[derive(Serialize)]
struct Page {
    samples: Vec<Sample>,
    next_cursor: Option<String>,
}

/// `/api/v1/samples`: one page of samples, newest first, and the cursor of the next page.
pub fn samples(store: &Store, query: &Query, now: Timestamp) -> Result<Response<Body>, HttpError> {
    let selection = Selection::parse(query, now)?;
    let limit = selection.limit.unwrap_or(DEFAULT_LIMIT);
    // One more than asked for tells whether another page exists.
    let mut samples = store
        .newest_first(selection.from, selection.to, limit + 1)
        .map_err(store_failed)?;
    let next_cursor = if samples.len() > limit {
        samples.truncate(limit);
        samples.last().map(|last| last.time.as_millis().to_string())
    } else {
        None
    };
    Ok(json(
        StatusCode::OK,
        &Page {
            samples,
            next_cursor,
        },
    ))
}

/// `/api/v1/samples.csv`: the same selection as CSV, streamed (no limit unless asked for), so a
/// five-year export never sits in memory.
pub fn samples_csv(
    store: &Arc<Store>,
    query: &Query,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let selection = Selection::parse(query, now)?;
    let (mut sender, body) = Channel::<Bytes, BodyError>::new(CSV_BUFFERED_CHUNKS);
    let store = store.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut chunk = csv::header_line();
        let mut to = selection.to;
        let mut left = selection.limit.unwrap_or(usize::MAX);
        loop {
            let wanted = left.min(CSV_CHUNK);
            let samples = match store.newest_first(selection.from, to, wanted) {
                Ok(samples) => samples,
                Err(err) => {
                    // The status is sent already: the body ends in an error instead (hyper
                    // drops the connection before the final chunk), so that no client takes
                    // the rows sent so far for the whole selection.
                    tracing::error!(%err, "CSV export stopped: the store cannot be read");
                    sender.abort(Box::new(err));
                    return;
                }
            };
            for sample in &samples {
                chunk.push_str(&csv::row_line(sample));
            }
            let sent = runtime.block_on(sender.send_data(Bytes::from(std::mem::take(&mut chunk))));
            left -= samples.len();
            match samples.last() {
                Some(last) if sent.is_ok() && samples.len() == wanted && left > 0 => to = last.time,
                // Done, or the client went away.
                _ => return,
            }
        }
    });
    let mut response = respond(StatusCode::OK, "text/csv; charset=utf-8", body.boxed());
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"internet-monitor-samples.csv\""),
    );
    Ok(response)
}

/// The parameters `/api/v1/summary` takes.
pub const SUMMARY_PARAMETERS: &[&str] = &["window"];
const DEFAULT_SUMMARY_WINDOW: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// `/api/v1/summary?window=30d`: counts, percentiles and plan compliance over the window
/// before now.
pub fn summary(
    state: &AppState,
    query: &Query,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let window = match query.get("window") {
        None => DEFAULT_SUMMARY_WINDOW,
        Some(text) => match parse_age(text) {
            Ok(window) => window,
            Err(too_long @ TimeError::DurationTooLong { .. }) => {
                return Err(HttpError::bad_request(format!(
                    "invalid window: {text:?} {too_long}"
                )));
            }
            Err(_) => {
                return Err(HttpError::bad_request(format!(
                    "invalid window: {text:?} is not a duration such as 24h, 30d or 365d"
                )));
            }
        },
    };
    let to = Timestamp::from_millis(now.as_millis().saturating_add(1));
    let summary = summarize(&state.store, state.plan, now.saturating_sub(window), to)
        .map_err(store_failed)?;
    Ok(json(StatusCode::OK, &summary))
}

#[derive(Serialize)]
struct Started {
    status: &'static str,
    trigger: &'static str,
}

/// `POST /api/v1/run`: starts a manual test now, if allowed and the slot is free.
pub fn run(state: &Arc<AppState>) -> Result<Response<Body>, HttpError> {
    match state.start_manual_run() {
        None => Err(HttpError {
            status: StatusCode::FORBIDDEN,
            message:
                "starting tests over HTTP is off; run serve with --enable-run-endpoint to allow it"
                    .into(),
        }),
        Some(Ok(())) => Ok(json(
            StatusCode::ACCEPTED,
            &Started {
                status: "started",
                trigger: Trigger::Manual.as_str(),
            },
        )),
        Some(Err(Refusal::Busy)) => Err(HttpError {
            status: StatusCode::CONFLICT,
            message: "a test is running; try again when it has finished".into(),
        }),
        Some(Err(Refusal::TooSoon(wait))) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = HttpError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!(
                    "the last manual test started less than --min-manual-gap ago; try again in {seconds} s"
                ),
            }
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Ok(response)
        }
    }
}
