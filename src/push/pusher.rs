//! The pusher loop: takes the oldest queued samples from the store's outbox, pushes their
//! series in one write request, and takes them out of the outbox only once the receiver
//! acknowledged them (or refused one alone for good). Woken by each stored sample
//! ([`AppState::outbox_wake`]) and by its back-off timer.
//!
//! Exactly once, with one exception: the removal is a store transaction of its own after the
//! receiver's 2xx, so a crash (or a stop) between the two leaves those samples queued and they
//! are pushed again after the restart. That is harmless: they are the same series with the
//! same time and value, which Prometheus (and Mimir, VictoriaMetrics) store once; only a
//! different value at the same time would be refused as a duplicate, and a stored sample
//! never changes. A push abandoned at shutdown was never acknowledged and stays queued.

use std::time::Duration;

use bytes::Bytes;

use super::backoff::Backoff;
use super::client::{Answer, Client};
use super::proto;
use super::series;
use crate::daemon::state::{AppState, READER_WAIT};
use crate::logging::Throttle;
use crate::metrics::{PushResult, SampleResult};
use crate::sample::Sample;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// The most samples one write request carries.
pub(crate) const BATCH: usize = 100;

/// Failed pushes logged per minute (the back-off keeps them few anyway).
static FAILURES_LOGGED: Throttle = Throttle::new(6);
/// Samples refused for good logged per minute.
static REJECTIONS_LOGGED: Throttle = Throttle::new(6);
/// Samples found gone or unreadable logged per minute.
static EXPIRIES_LOGGED: Throttle = Throttle::new(6);

/// Pushes until dropped (at shutdown, a push in flight is abandoned, never counted as done).
pub(crate) async fn run(state: &AppState, client: &Client) {
    let endpoint = client.config().endpoint.shown();
    // What a user checks the flags by: the labels every series carries, and how it logs in.
    let mut labels: Vec<String> = client
        .config()
        .labels
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    if !client.config().labels.iter().any(|(name, _)| name == "job") {
        labels.push(format!("job={:?}", super::series::DEFAULT_JOB));
    }
    let labels = labels.join(",");
    let auth = match &client.config().auth {
        super::config::Auth::None => "none".to_owned(),
        super::config::Auth::Basic { username, .. } => format!("basic as {username:?}"),
        super::config::Auth::Bearer { .. } => "bearer token".to_owned(),
    };
    tracing::info!(
        url = %endpoint,
        ?labels,
        ?auth,
        "pushing every stored run to {endpoint} (remote_write) with the labels {{{labels}}}"
    );
    let mut backoff = Backoff::default();
    loop {
        // While backing off, a stored sample only updates the outbox gauges.
        while backoff.is_waiting() {
            tokio::select! {
                () = backoff.wait() => {}
                () = state.outbox_wake.notified() => refresh_outbox(state).await,
            }
        }
        match step(state, client).await {
            Step::Idle => state.outbox_wake.notified().await,
            Step::Progress => {
                if backoff.failures() > 0 {
                    tracing::info!(
                        url = %endpoint,
                        failures = backoff.failures(),
                        "remote_write delivers again after {} failed pushes",
                        backoff.failures()
                    );
                }
                backoff.succeeded();
            }
            Step::Failed { retry_after, why } => {
                let wait = backoff.failed(retry_after);
                if let Some(left_out) = FAILURES_LOGGED.admit() {
                    tracing::warn!(
                        url = %endpoint,
                        failures = backoff.failures(),
                        retry_in = %humantime::format_duration(round_to_millis(wait)),
                        left_out,
                        "remote_write push failed, trying again in {}: {why}",
                        humantime::format_duration(round_to_millis(wait))
                    );
                }
            }
        }
    }
}

/// What one round did.
#[derive(Debug)]
enum Step {
    /// Nothing waits in the outbox.
    Idle,
    /// Samples left the outbox (sent, rejected or expired); more may wait.
    Progress,
    /// Nothing could be delivered now: back off.
    Failed {
        retry_after: Option<Duration>,
        why: String,
    },
}

/// A queued time and the sample stored there, if it still is (and can be read).
type Queued = (Timestamp, Result<Option<Sample>, StoreError>);

/// One round: the oldest [`BATCH`] queued samples pushed (each alone after a batch was
/// refused), what was delivered or refused for good taken out of the outbox.
async fn step(state: &AppState, client: &Client) -> Step {
    let read = state
        .readers
        .run_within(READER_WAIT, |store| read_batch(store, BATCH))
        .await;
    let (queued, stats) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(err)) => return failed(format!("cannot read the outbox: {err}")),
        Err(err) => return failed(format!("cannot read the outbox: {err}")),
    };
    state.metrics.set_outbox(stats.pending, stats.oldest);
    if queued.is_empty() {
        return Step::Idle;
    }
    let mut expired = Vec::new();
    let mut samples = Vec::new();
    for (time, sample) in queued {
        match sample {
            Ok(Some(sample)) => samples.push(sample),
            Ok(None) => expired.push(time),
            Err(err) => {
                if let Some(left_out) = EXPIRIES_LOGGED.admit() {
                    tracing::error!(%time, %err, left_out, "remote_write: the queued sample of {time} cannot be read; it is not pushed");
                }
                expired.push(time);
            }
        }
    }
    if !expired.is_empty() {
        if let Some(left_out) = EXPIRIES_LOGGED.admit() {
            tracing::info!(
                samples = expired.len(),
                left_out,
                "remote_write: {} queued samples are no longer in the store (retention deleted them); they are not pushed",
                expired.len()
            );
        }
        if let Err(why) = remove(state, &expired, SampleResult::Expired).await {
            return failed(why);
        }
    }
    if samples.is_empty() {
        return Step::Progress;
    }
    let answer = client.push(encode(state, client, &samples)).await;
    match answer {
        Answer::Accepted => {
            state.metrics.count_push(PushResult::Success);
            let times: Vec<Timestamp> = samples.iter().map(|sample| sample.time).collect();
            match remove(state, &times, SampleResult::Sent).await {
                Ok(()) => Step::Progress,
                Err(why) => failed(why),
            }
        }
        Answer::Retry { retry_after, why } => {
            state.metrics.count_push(PushResult::Retried);
            Step::Failed { retry_after, why }
        }
        Answer::Rejected { status, why } => {
            state.metrics.count_push(PushResult::Rejected);
            if samples.len() == 1 {
                reject(state, &samples[0], &why).await
            } else {
                tracing::warn!(
                    samples = samples.len(),
                    status,
                    "remote_write: the receiver refused a batch of {} samples ({why}); pushing each alone",
                    samples.len()
                );
                one_by_one(state, client, &samples).await
            }
        }
    }
}

/// After a refused batch: each sample pushed alone, oldest first. The delivered ones and the
/// ones refused alone leave the outbox together at the end; a push to try again later stops
/// the round (the rest stays queued).
async fn one_by_one(state: &AppState, client: &Client, samples: &[Sample]) -> Step {
    let mut sent = Vec::new();
    let mut rejected = Vec::new();
    let mut outcome = Step::Progress;
    for sample in samples {
        match client
            .push(encode(state, client, std::slice::from_ref(sample)))
            .await
        {
            Answer::Accepted => {
                state.metrics.count_push(PushResult::Success);
                sent.push(sample.time);
            }
            Answer::Rejected { why, .. } => {
                state.metrics.count_push(PushResult::Rejected);
                log_rejection(sample.time, &why);
                rejected.push(sample.time);
            }
            Answer::Retry { retry_after, why } => {
                state.metrics.count_push(PushResult::Retried);
                outcome = Step::Failed { retry_after, why };
                break;
            }
        }
    }
    for (times, result) in [
        (sent, SampleResult::Sent),
        (rejected, SampleResult::Rejected),
    ] {
        if !times.is_empty()
            && let Err(why) = remove(state, &times, result).await
        {
            return failed(why);
        }
    }
    outcome
}

/// A sample refused alone: logged, counted and taken out of the outbox.
async fn reject(state: &AppState, sample: &Sample, why: &str) -> Step {
    log_rejection(sample.time, why);
    match remove(state, &[sample.time], SampleResult::Rejected).await {
        Ok(()) => Step::Progress,
        Err(why) => failed(why),
    }
}

fn log_rejection(time: Timestamp, why: &str) {
    if let Some(left_out) = REJECTIONS_LOGGED.admit() {
        tracing::error!(
            %time,
            left_out,
            "remote_write: the receiver refused the sample of {time} ({why}); it is dropped from the outbox (counted in internet_monitor_remote_write_samples_total{{result=\"rejected\"}})"
        );
    }
}

fn failed(why: String) -> Step {
    Step::Failed {
        retry_after: None,
        why,
    }
}

/// The write request of `samples` (oldest first), each with the plan in force at its time.
fn encode(state: &AppState, client: &Client, samples: &[Sample]) -> Bytes {
    let labels = &client.config().labels;
    let series = samples
        .iter()
        .flat_map(|sample| series::series_of(sample, &state.plan_at(sample.time), labels));
    Bytes::from(proto::encode(&series::request_of(series)))
}

/// Takes `times` out of the outbox on the recorder's thread (the store's one writer), counts
/// them as `result` and shows the outbox left.
async fn remove(state: &AppState, times: &[Timestamp], result: SampleResult) -> Result<(), String> {
    let owned = times.to_vec();
    let removed = state
        .recorder
        .run(move |store| {
            store.outbox_remove(&owned)?;
            store.outbox_stats()
        })
        .await;
    match removed {
        Ok(Ok(stats)) => {
            state
                .metrics
                .count_pushed_samples(result, times.len() as u64);
            state.metrics.set_outbox(stats.pending, stats.oldest);
            Ok(())
        }
        Ok(Err(err)) => Err(format!(
            "cannot take pushed samples out of the outbox: {err}"
        )),
        Err(err) => Err(format!(
            "cannot take pushed samples out of the outbox: {err}"
        )),
    }
}

/// Reads the outbox's size for the gauges.
async fn refresh_outbox(state: &AppState) {
    let stats = state
        .readers
        .run_within(READER_WAIT, |store| store.outbox_stats())
        .await;
    if let Ok(Ok(stats)) = stats {
        state.metrics.set_outbox(stats.pending, stats.oldest);
    }
}

/// The oldest `limit` queued times with their samples, and the outbox's size.
fn read_batch(
    store: &Store,
    limit: usize,
) -> Result<(Vec<Queued>, crate::store::OutboxStats), StoreError> {
    let times = store.outbox_pending(limit)?;
    let queued = times
        .into_iter()
        .map(|time| {
            let end = Timestamp::from_millis(time.as_millis().saturating_add(1));
            let sample = store
                .range(time, end)
                .map(|found| found.into_iter().find(|sample| sample.time == time));
            (time, sample)
        })
        .collect();
    Ok((queued, store.outbox_stats()?))
}

/// A wait as logged: whole milliseconds.
fn round_to_millis(wait: Duration) -> Duration {
    Duration::from_millis(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::metrics::Metrics;
    use crate::push::config::{Auth, Endpoint, RemoteWriteConfig};
    use crate::sample::{FailureReason, Trigger};
    use crate::speedtest::runner::OoklaConfig;
    use crate::speedtest::{EngineConfig, Runner};

    const T0: u64 = 1_795_543_200_125;

    /// A receiver on loopback answering 204 and keeping the `speedtest_up` times it got.
    async fn receiver() -> (String, Arc<Mutex<Vec<i64>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
        let times = Arc::new(Mutex::new(Vec::new()));
        let got = times.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let got = got.clone();
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let got = got.clone();
                        async move {
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let decoded = proto::decode(&body).unwrap();
                            for series in decoded.timeseries {
                                if series.labels.iter().any(|l| l.value == "speedtest_up") {
                                    let mut got = got.lock().unwrap();
                                    got.extend(series.samples.iter().map(|s| s.timestamp));
                                }
                            }
                            let mut answer = hyper::Response::new(Full::new(Bytes::new()));
                            *answer.status_mut() = hyper::StatusCode::NO_CONTENT;
                            Ok::<_, std::convert::Infallible>(answer)
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service),
                );
            }
        });
        (url, times)
    }

    fn state(store: Store) -> AppState {
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
        let metrics = Metrics::new().unwrap();
        metrics.set_remote_write_on(0, None);
        AppState::new(
            Arc::new(store),
            metrics,
            Runner::new(engine),
            None,
            None,
            None,
        )
        .unwrap()
    }

    fn rendered(state: &AppState) -> String {
        String::from_utf8(state.metrics.render().unwrap().to_vec()).unwrap()
    }

    /// A queued sample that retention deleted leaves the outbox as expired; the others are
    /// pushed and leave it as sent; then nothing is left to do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sample_retention_deleted_expires_and_the_rest_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store.set_outbox(true);
        for offset in [0, 1_000, 2_000] {
            let time = Timestamp::from_millis(T0 + offset);
            store
                .append(&Sample::failure(
                    time,
                    Trigger::Schedule,
                    FailureReason::Timeout,
                    "slow",
                ))
                .unwrap();
        }
        assert_eq!(
            store
                .delete_before(Timestamp::from_millis(T0 + 1), 10)
                .unwrap(),
            1
        );
        assert_eq!(store.outbox_stats().unwrap().pending, 3);
        let state = state(store);
        let (url, times) = receiver().await;
        let client = Client::new(RemoteWriteConfig {
            endpoint: Endpoint::parse(&url).unwrap(),
            labels: Vec::new(),
            auth: Auth::None,
            ca_file: None,
            identity: None,
            timeout: Duration::from_secs(10),
        })
        .unwrap();

        assert!(matches!(step(&state, &client).await, Step::Progress));
        let ms = |offset: u64| i64::try_from(T0 + offset).unwrap();
        assert_eq!(*times.lock().unwrap(), [ms(1_000), ms(2_000)]);
        let text = rendered(&state);
        for line in [
            r#"internet_monitor_remote_write_samples_total{result="expired"} 1"#,
            r#"internet_monitor_remote_write_samples_total{result="sent"} 2"#,
            r#"internet_monitor_remote_write_requests_total{result="success"} 1"#,
            "internet_monitor_remote_write_pending_samples 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        assert!(matches!(step(&state, &client).await, Step::Idle));
        assert_eq!(times.lock().unwrap().len(), 2, "nothing twice");
    }
}
