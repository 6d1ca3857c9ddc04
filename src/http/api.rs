//! `/api/v1/…`: the history of every run, failures included, as JSON pages or a CSV stream.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::compat::store_failed;
use super::query::Query;
use super::response::{Body, HttpError, json, json_body, overloaded, respond, to_json};
use super::stream::{CHUNK_BYTES, ChunkError, Source, Streamed};
use crate::csv;
use crate::daemon::manual::Refusal;
use crate::daemon::state::{AppState, READER_WAIT};
use crate::daemon::worker::WorkerError;
use crate::plan::{PlanHistory, PlanVersion, PlanVersionJson};
use crate::probe::availability::Live;
use crate::probe::peak::PeakWindow;
use crate::probe::report::{Connectivity, read_connectivity};
use crate::rules::{MAX_RULES_WINDOW, RuleSet};
use crate::sample::{Sample, Trigger};
use crate::store::{Order, Store};
use crate::summary::summarize;
use crate::time::{TimeArg, TimeError, Timestamp, format_limit, parse_age};
use crate::zone::Zone;

/// The parameters `/api/v1/samples` and `/api/v1/samples.csv` take.
pub(super) const SAMPLE_PARAMETERS: &[&str] = &["from", "to", "limit", "cursor"];
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

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
        let given_to = time("to")?;
        let mut to = given_to.unwrap_or(Timestamp::from_millis(u64::MAX));
        // Without `to`, every sample from `from` on is listed (an imported one may be dated a
        // little after now); a `from` not before now is still refused, as every endpoint
        // taking a range refuses it, whose `to` is now by default.
        let check_to = given_to.map_or((now, "now"), |to| (to, ""));
        super::dashboard::in_order(query, (from, "the epoch"), check_to)?;
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
                        "invalid limit: {} is not a whole number from 1 to {MAX_LIMIT}",
                        crate::logging::quoted(text)
                    )));
                }
            },
        };
        Ok(Selection { from, to, limit })
    }
}

/// `/api/v1/samples`: one page of samples, newest first, and the cursor of the next page:
/// `{"samples": [...], "next_cursor": "…" | null}`, streamed a chunk at a time.
pub(super) async fn samples(
    state: &AppState,
    query: &Query,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let selection = Selection::parse(query, now)?;
    let page = JsonPage {
        from: selection.from,
        to: selection.to,
        left: selection.limit.unwrap_or(DEFAULT_LIMIT),
        opened: false,
        written: 0,
        last: None,
        done: false,
    };
    let body = Streamed::start(page, state.readers.clone(), state.streams.clone()).await?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        body.boxed_unsync(),
    ))
}

/// `/api/v1/samples.csv`: the same selection as CSV, streamed (no limit unless asked for), so a
/// five-year export never sits in memory.
pub(super) async fn samples_csv(
    state: &AppState,
    query: &Query,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let selection = Selection::parse(query, now)?;
    let export = CsvExport {
        from: selection.from,
        to: selection.to,
        left: selection.limit.unwrap_or(usize::MAX),
        opened: false,
        done: false,
    };
    let body = Streamed::start(export, state.readers.clone(), state.streams.clone()).await?;
    let mut response = respond(
        StatusCode::OK,
        "text/csv; charset=utf-8",
        body.boxed_unsync(),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"internet-monitor-samples.csv\""),
    );
    Ok(response)
}

/// Appends the samples of `from <= time < to`, newest first, with `write`, until `left` runs
/// out or `out` holds a chunk; lowers `to` below the last one written. Returns whether the
/// range holds more samples (one more was read to tell).
fn fill(
    store: &Store,
    from: Timestamp,
    to: &mut Timestamp,
    left: &mut usize,
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut Vec<u8>, &Sample) -> Result<(), ChunkError>,
) -> Result<bool, ChunkError> {
    let mut more = false;
    let mut lowest = *to;
    store.scan(from, *to, Order::NewestFirst, |sample| {
        if *left == 0 || out.len() >= CHUNK_BYTES {
            more = true;
            return Ok::<_, ChunkError>(ControlFlow::Break(()));
        }
        write(out, &sample)?;
        *left -= 1;
        lowest = sample.time;
        Ok(ControlFlow::Continue(()))
    })?;
    *to = lowest;
    Ok(more)
}

/// The state of a JSON page between chunks.
struct JsonPage {
    from: Timestamp,
    /// Exclusive: below the last sample written.
    to: Timestamp,
    left: usize,
    opened: bool,
    written: usize,
    last: Option<Timestamp>,
    done: bool,
}

impl Source for JsonPage {
    fn next_chunk(&mut self, store: &Store) -> Result<Option<Bytes>, ChunkError> {
        if self.done {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(CHUNK_BYTES + 2048);
        if !self.opened {
            out.extend_from_slice(b"{\"samples\":[");
            self.opened = true;
        }
        let (written, last) = (&mut self.written, &mut self.last);
        let more = fill(
            store,
            self.from,
            &mut self.to,
            &mut self.left,
            &mut out,
            |out, sample| {
                if *written > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, sample)?;
                *written += 1;
                *last = Some(sample.time);
                Ok(())
            },
        )?;
        if !more || self.left == 0 {
            // One more sample than the page holds means another page: its cursor follows.
            let next_cursor = more
                .then_some(self.last)
                .flatten()
                .map(|last| last.as_millis().to_string());
            out.extend_from_slice(b"],\"next_cursor\":");
            serde_json::to_writer(&mut out, &next_cursor)?;
            out.extend_from_slice(b"}\n");
            self.done = true;
        }
        Ok(Some(Bytes::from(out)))
    }
}

/// The state of a CSV export between chunks.
struct CsvExport {
    from: Timestamp,
    to: Timestamp,
    left: usize,
    opened: bool,
    done: bool,
}

impl Source for CsvExport {
    fn next_chunk(&mut self, store: &Store) -> Result<Option<Bytes>, ChunkError> {
        if self.done {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(CHUNK_BYTES + 2048);
        if !self.opened {
            out.extend_from_slice(csv::header_line().as_bytes());
            self.opened = true;
        }
        let more = fill(
            store,
            self.from,
            &mut self.to,
            &mut self.left,
            &mut out,
            |out, sample| {
                out.extend_from_slice(csv::row_line(sample).as_bytes());
                Ok(())
            },
        )?;
        self.done = !more || self.left == 0;
        Ok(Some(Bytes::from(out)))
    }
}

// Summaries hold every figure of their window (exact percentiles need them all: 24 bytes per
// successful run, 48 MB over two million), so one is computed at a time (`AppState::summaries`);
// the others wait up to [`READER_WAIT`] for their turn, then get 503.

/// The parameters `/api/v1/summary` takes.
pub(super) const SUMMARY_PARAMETERS: &[&str] = &["window", "from", "to", "rules", "tz"];
const DEFAULT_SUMMARY_WINDOW: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// `/api/v1/summary?window=30d` (the window before now) or `?from=&to=` (`from` inclusive, `to`
/// exclusive; `to` defaults to now, `from` to the default window before `to`): counts,
/// percentiles and plan compliance, computed on a reader thread (a long window is seconds of
/// work). `window` together with `from` or `to` is a 400. With `rules=NAME` (and optionally
/// `tz=ZONE`, default serve's `--timezone`) the answer also holds `"rules"`: that rule set's
/// [`Verdict`](crate::rules::Verdict) over the window (at most
/// [`MAX_RULES_WINDOW`](crate::rules::MAX_RULES_WINDOW)), with `"campaign"` added: the start of
/// the campaign whose runs it judged, or `null` when it judged every run in the window.
/// `"connectivity"` holds the probe figures of the window
/// ([`Connectivity`](crate::probe::report::Connectivity)), peak hours those of the rule set
/// when it has a peak window, else 19–23 in serve's `--timezone`.
pub(super) async fn summary(
    state: &AppState,
    query: &Query,
    now: Timestamp,
) -> Result<Response<Body>, HttpError> {
    let (from, to, span) = summary_range(query, now)?;
    let rules = RulesQuery::parse(query, &state.zone, span)?;
    let plans = state.plans.clone();
    let probes = state.probes.clone();
    let zone = state.zone.clone();
    let busy = || overloaded(WorkerError::Busy("summary"));
    let _turn = tokio::time::timeout(READER_WAIT, state.summaries.acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let body = state
        .readers
        .run_within(READER_WAIT, move |store| {
            let summary = summarize(store, plans.clone(), from, to).map_err(store_failed)?;
            let live = probes.as_deref().map(Live::of);
            let (peak, zone) = match &rules {
                Some(asked) => (PeakWindow::of(Some(asked.rules)), &asked.zone),
                None => (PeakWindow::of(None), &zone),
            };
            let connectivity = read_connectivity(store, (from, to), now, live.as_ref(), peak, zone)
                .map_err(store_failed)?;
            let rules = match rules {
                None => None,
                Some(RulesQuery { rules, zone }) => {
                    let selection =
                        crate::rules::select(store, rules, from, to).map_err(store_failed)?;
                    let verdict = crate::rules::evaluate(rules, &selection.runs, &plans, &zone);
                    Some(RulesAnswer {
                        verdict,
                        campaign: selection.campaign,
                    })
                }
            };
            to_json(&SummaryAnswer {
                summary: &summary,
                connectivity,
                rules,
            })
        })
        .await
        .map_err(overloaded)??;
    Ok(json_body(StatusCode::OK, body))
}

/// A summary, the connectivity figures of its window and the verdict `rules=` asked for
/// (no `rules` key without it), as one JSON object.
#[derive(Serialize)]
struct SummaryAnswer<'a> {
    #[serde(flatten)]
    summary: &'a crate::summary::Summary,
    connectivity: Connectivity,
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<RulesAnswer>,
}

/// The verdict, and the campaign whose runs it judged (`null`: every run in the window).
#[derive(Serialize)]
struct RulesAnswer {
    #[serde(flatten)]
    verdict: crate::rules::Verdict,
    campaign: Option<Timestamp>,
}

/// What `rules=` and `tz=` ask of a summary.
#[derive(Debug, PartialEq)]
struct RulesQuery {
    rules: RuleSet,
    zone: Zone,
}

impl RulesQuery {
    /// `rules=NAME` and `tz=ZONE` (default `zone`), over a window of `span`; `None` without
    /// `rules`. `tz` without `rules`, an unknown name or zone, or a window longer than
    /// [`MAX_RULES_WINDOW`] is a 400.
    fn parse(query: &Query, zone: &Zone, span: Duration) -> Result<Option<Self>, HttpError> {
        let Some(name) = query.get("rules") else {
            if query.get("tz").is_some() {
                return Err(HttpError::bad_request(
                    "invalid tz: tz is the zone a rule set counts days in, so it needs rules=NAME",
                ));
            }
            return Ok(None);
        };
        let rules = RuleSet::parse(name)
            .map_err(|err| HttpError::bad_request(format!("invalid rules: {err}")))?;
        let zone = match query.get("tz") {
            None => zone.clone(),
            Some(name) => Zone::parse(name)
                .map_err(|err| HttpError::bad_request(format!("invalid tz: {err}")))?,
        };
        if span > MAX_RULES_WINDOW {
            let days = MAX_RULES_WINDOW.as_secs() / 86_400;
            return Err(HttpError::bad_request(format!(
                "invalid window: with rules, the window (window, or from and to) may be at most \
                 {days} days ({days}d); this one is {}",
                format_limit(Duration::from_secs(
                    span.as_secs() + u64::from(span.subsec_nanos() > 0)
                ))
            )));
        }
        Ok(Some(RulesQuery { rules, zone }))
    }
}

/// The range a summary covers: `window` before now, or `from`/`to`; and its length as asked
/// (`window`, or `to - from`).
fn summary_range(
    query: &Query,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp, Duration), HttpError> {
    let bounded = query.get("from").is_some() || query.get("to").is_some();
    let Some(text) = query.get("window") else {
        if bounded {
            let (from, to) = super::dashboard::range(query, now, DEFAULT_SUMMARY_WINDOW)?;
            return Ok((from, to, to.duration_since(from)));
        }
        let to = Timestamp::from_millis(now.as_millis().saturating_add(1));
        return Ok((
            now.saturating_sub(DEFAULT_SUMMARY_WINDOW),
            to,
            DEFAULT_SUMMARY_WINDOW,
        ));
    };
    if bounded {
        return Err(HttpError::bad_request(
            "invalid window: give either window or from/to, not both",
        ));
    }
    // A window that is a duration but not a usable one (zero, negative, too long) says so.
    let clipped = crate::logging::quoted(text);
    let window = parse_age(text).map_err(|err| {
        HttpError::bad_request(match err {
            TimeError::DurationSyntax { .. } => {
                format!("invalid window: {clipped} is not a duration such as 24h, 30d or 365d")
            }
            other => format!("invalid window: {clipped} {other}"),
        })
    })?;
    let to = Timestamp::from_millis(now.as_millis().saturating_add(1));
    Ok((now.saturating_sub(window), to, window))
}

/// The 202 answer of `POST /api/v1/run`.
#[derive(Serialize)]
struct Started {
    status: &'static str,
    trigger: &'static str,
    /// When the test started: its sample is dated this (or, should another sample hold that
    /// millisecond, the next free one).
    started_at: Timestamp,
    /// Where the sample will be once the test is over: the samples from `started_at` on, of
    /// which it is the oldest.
    result: String,
}

/// The 409 answer of `POST /api/v1/run` while a test runs.
#[derive(Serialize)]
struct Running {
    error: String,
    /// When the running test started (`null` in the moment before it says so).
    running_since: Option<Timestamp>,
    /// Where its sample will be (`/api/v1/status` while `running_since` is `null`).
    result: String,
}

/// The 429 answer of `POST /api/v1/run` while the last manual test is too recent (with a
/// `Retry-After` header, in seconds).
#[derive(Serialize)]
struct TooSoon {
    error: String,
    /// When the last manual test started: its sample is dated this.
    last_started_at: Timestamp,
    /// Where that test's sample is (or will be, should it still be stored).
    result: String,
}

/// Where the sample of a test started at `started` will be: `/api/v1/samples?from=…`.
fn result_link(started: Timestamp) -> String {
    format!("/api/v1/samples?from={started}")
}

/// `POST /api/v1/run`: starts a manual test now, if allowed and the slot is free. 202 with
/// [`Started`]; 409 with [`Running`] while any test runs (scheduled or manual); 429 with
/// `Retry-After` (seconds) and [`TooSoon`] when no test runs but the last manual one started
/// less than `--min-manual-gap` ago; 403 when the endpoint is off.
pub(super) fn run(state: &Arc<AppState>) -> Result<Response<Body>, HttpError> {
    match state.start_manual_run() {
        None => Err(HttpError {
            status: StatusCode::FORBIDDEN,
            message:
                "starting tests over HTTP is off; run serve with --enable-run-endpoint to allow it"
                    .into(),
        }),
        Some(Ok(started)) => Ok(json(
            StatusCode::ACCEPTED,
            &Started {
                status: "started",
                trigger: Trigger::Manual.as_str(),
                started_at: started,
                result: result_link(started),
            },
        )),
        Some(Err(Refusal::Busy(since))) => {
            let (error, result) = match since {
                Some(since) => (
                    format!(
                        "a test is running since {since}; its result will be at {} when it \
                         has finished, and another can be started then",
                        result_link(since)
                    ),
                    result_link(since),
                ),
                None => (
                    "a test is running; /api/v1/status says when it has finished, and another \
                     can be started then"
                        .to_owned(),
                    "/api/v1/status".to_owned(),
                ),
            };
            Ok(json(
                StatusCode::CONFLICT,
                &Running {
                    error,
                    running_since: since,
                    result,
                },
            ))
        }
        Some(Err(Refusal::TooSoon {
            wait,
            last_started_at,
        })) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = json(
                StatusCode::TOO_MANY_REQUESTS,
                &TooSoon {
                    error: format!(
                        "the last manual test started less than --min-manual-gap ago (at \
                         {last_started_at}); try again in {seconds} s"
                    ),
                    last_started_at,
                    result: result_link(last_started_at),
                },
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_795_996_800_000);

    fn range(raw: &str) -> Result<(Timestamp, Timestamp), HttpError> {
        summary_range(&Query::parse(Some(raw), SUMMARY_PARAMETERS)?, NOW)
            .map(|(from, to, _)| (from, to))
    }

    /// What `rules=`/`tz=` of `raw` ask for, with serve's zone Europe/Berlin.
    fn rules(raw: &str) -> Result<Option<RulesQuery>, HttpError> {
        let query = Query::parse(Some(raw), SUMMARY_PARAMETERS)?;
        let (_, _, span) = summary_range(&query, NOW)?;
        RulesQuery::parse(&query, &Zone::parse("Europe/Berlin").unwrap(), span)
    }

    fn message(raw: &str) -> String {
        let err = range(raw).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST, "{raw}");
        err.message
    }

    #[test]
    fn summary_takes_a_window_or_from_and_to() {
        let day = Duration::from_secs(86_400);
        let after_now = Timestamp::from_millis(NOW.as_millis() + 1);
        assert_eq!(
            range("").unwrap(),
            (NOW.saturating_sub(30 * day), after_now)
        );
        assert_eq!(
            range("window=1d").unwrap(),
            (NOW.saturating_sub(day), after_now)
        );
        let from = Timestamp::parse("2026-11-01T00:00:00Z").unwrap();
        let to = Timestamp::parse("2026-11-02T00:00:00Z").unwrap();
        assert_eq!(
            range("from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z").unwrap(),
            (from, to)
        );
        assert_eq!(
            range("from=2d").unwrap(),
            (NOW.saturating_sub(2 * day), NOW)
        );
        assert_eq!(
            range("to=2026-11-02T00:00:00Z").unwrap(),
            (to.saturating_sub(30 * day), to),
            "from: the default window before to"
        );
    }

    #[test]
    fn summary_refuses_window_with_from_or_to_and_an_empty_range() {
        assert!(message("window=1d&from=2d").starts_with("invalid window: give either"));
        assert!(message("to=1d&window=1d").starts_with("invalid window: give either"));
        let both = message("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z");
        assert!(both.starts_with("invalid from and to"), "{both}");
        assert!(message("from=1d&to=1d").starts_with("invalid from and to"));
        assert!(message("from=soon").starts_with("invalid from"));
        assert_eq!(
            message("window=0s"),
            "invalid window: \"0s\" must be longer than zero"
        );
        assert!(message("window=-1d").contains("must be positive, not negative"));
        assert!(message("window=soon").contains("is not a duration such as 24h"));
        assert!(message("limit=3").starts_with("unknown query parameter"));
    }

    #[test]
    fn rules_take_a_known_name_a_zone_defaulting_to_serves_and_a_window_up_to_366_days() {
        assert_eq!(rules("window=366d").unwrap(), None);
        let asked = rules("rules=de-bnetza").unwrap().unwrap();
        assert_eq!(asked.rules, RuleSet::DeBnetza);
        assert_eq!(asked.zone.name(), "Europe/Berlin");
        let asked = rules("rules=us-fcc&tz=America/Chicago&window=366d")
            .unwrap()
            .unwrap();
        assert_eq!(
            (asked.rules, asked.zone.name()),
            (RuleSet::UsFcc, "America/Chicago")
        );
        let exactly = "rules=at-rtr&from=2025-11-30T00:00:00Z&to=2026-12-01T00:00:00Z";
        assert!(rules(exactly).unwrap().is_some(), "366 days from/to");
        let error = |raw: &str| {
            let err = rules(raw).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{raw}");
            err.message
        };
        let unknown = error("rules=fr-arcep");
        assert!(
            unknown.starts_with("invalid rules: \"fr-arcep\""),
            "{unknown}"
        );
        for name in ["de-bnetza", "at-rtr", "us-fcc", "uk-ofcom"] {
            assert!(unknown.contains(name), "{unknown}");
        }
        assert!(error("rules=de-bnetza&tz=Mars/Olympus").starts_with("invalid tz: "));
        assert!(error("tz=Europe/Berlin").starts_with("invalid tz: "));
        for long in [
            "rules=de-bnetza&window=367d",
            "rules=de-bnetza&from=2025-11-30T00:00:00Z&to=2026-12-01T00:00:01Z",
        ] {
            let message = error(long);
            assert!(
                message.starts_with("invalid window: with rules")
                    && message.contains("from and to")
                    && message.contains("366 days"),
                "{message}"
            );
        }
    }
}

/// `/api/v1/plan`: `{"current": version|null, "history": [version…]}`, versions as
/// [`PlanVersionJson`], `history` oldest first; the history loaded when serve started.
#[derive(Serialize)]
pub(super) struct PlanAnswer {
    current: Option<PlanVersionJson>,
    history: Vec<PlanVersionJson>,
}

impl PlanAnswer {
    /// The answer at `now`.
    pub(super) fn of(plans: &PlanHistory, now: Timestamp) -> Self {
        PlanAnswer {
            current: plans.in_force_at(now).map(PlanVersion::to_json),
            history: plans.versions().iter().map(PlanVersion::to_json).collect(),
        }
    }
}

#[cfg(test)]
mod per_server_bounds {
    use std::sync::Arc;

    use super::*;
    use crate::daemon::state::AppState;
    use crate::metrics::Metrics;
    use crate::speedtest::runner::OoklaConfig;
    use crate::speedtest::{EngineConfig, Runner};
    use crate::store::Store;

    /// A state over a new store in `dir`, whose engine never runs.
    fn state(dir: &std::path::Path) -> AppState {
        let engine = EngineConfig::Ookla(OoklaConfig {
            binary: "/nonexistent/speedtest".into(),
            timeout: Duration::from_secs(1),
            server_id: None,
            extra_args: Vec::new(),
            parse: crate::speedtest::ookla::ParseOptions {
                store_ip: false,
                max_bytes_per_second: 1e12,
            },
            output_limit: 1024,
        });
        let store = Store::open(&dir.join("samples.redb")).unwrap();
        AppState::new(
            Arc::new(store),
            Metrics::new().unwrap(),
            Runner::new(engine),
            None,
            None,
            None,
        )
        .unwrap()
    }

    /// The bounds on streamed answers and summaries are each server's: one whose streams and
    /// summary turn are all taken answers 503, another in the same process still answers
    /// (tests run several servers in one process).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_server_leaves_another_in_the_process_its_own_turns() {
        let (one, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (busy, free) = (state(one.path()), state(other.path()));
        let now = Timestamp::now();
        let query = Query::parse(None, &[]).unwrap();
        let _streams = busy
            .streams
            .clone()
            .try_acquire_many_owned(u32::try_from(super::super::stream::MAX_STREAMS).unwrap())
            .unwrap();
        let refused = samples(&busy, &query, now).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            samples(&free, &query, now).await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(
            samples_csv(&free, &query, now).await.unwrap().status(),
            StatusCode::OK
        );
        let _summary = busy.summaries.try_acquire().unwrap();
        let summary = summary(&free, &query, now).await.unwrap();
        assert_eq!(summary.status(), StatusCode::OK);
    }
}
