//! The HTTP engine: download, upload and latency measured over HTTP/1.1 against a
//! Cloudflare-style or LibreSpeed server (`--http-server`), with no external program.
//!
//! # Method
//!
//! A run opens a connection, tells the API (Cloudflare's `__down`/`__up`, or LibreSpeed's
//! `garbage`/`empty`/`getIP` with or without `.php`; [`api`]) unless `--http-protocol` names it,
//! then measures, in this order:
//!
//! 1. **Idle latency**: after a warm-up request, 20 small requests one after another on that
//!    warm connection; each one's time to the end of its answer, less the time the server says
//!    it spent (`Server-Timing: …;dur=MS`; ignored when longer than the round trip itself), is a
//!    latency. `ping_seconds` is their median (robust to a stray slow one), `jitter_seconds`
//!    the mean absolute difference of consecutive ones (the RFC 3550 idea without its
//!    smoothing, as the Ookla CLI and LibreSpeed report it).
//! 2. **Download**, then **upload**: `--http-streams` TCP connections, opened before the clock
//!    starts, each sending requests back to back for `--http-duration`. Request sizes start at
//!    100 kB and grow with what the connection achieved so each lasts about a second (at most
//!    eightfold per request, capped per API; [`stats::next_request_size`]), so the round trip
//!    between two requests, when a connection carries nothing, is a small part of its time
//!    (2 % at 20 ms). Several streams fill a path one TCP flow cannot (window limits, per-flow
//!    policing) and cover each other's gaps; one still works.
//! 3. Bytes are counted as they move: a download's body bytes as hyper hands them over; an
//!    upload's bytes as the peer's TCP **acknowledges** them (`tcpi_bytes_acked` from Linux's
//!    `TCP_INFO`; [`tcp_info`]), since bytes written only fill the socket buffer; where the
//!    kernel does not say, an upload's bytes count when its request is answered. The counters
//!    are read every 100 ms; the first fifth of the duration (the ramp-up: TCP slow start and
//!    the first requests' set-up) is left out, and the bandwidth is the bytes counted after it
//!    over the time after it ([`stats::bandwidth`]). Every byte moved, ramp-up included, is
//!    `downloaded_bytes` / `uploaded_bytes`, for `--data-budget`, however the run ends
//!    ([`transfer::Moved`]): a failed run, even one its `--timeout` cut off, records what its
//!    transfers moved up to then; one that failed before its download started records `null`.
//!    Only the transfers' bodies count, not headers nor the small requests' bodies (detection,
//!    latency probes, `getIP`: empty or a few hundred bytes each).
//! 4. **Loaded latency**: during each direction, the idle-latency probe repeats (at most every
//!    100 ms) on a connection of its own; the median of the probes sent after the ramp-up is
//!    `download_latency_seconds` / `upload_latency_seconds`, the latency a user feels while the
//!    line is full (bufferbloat).
//!
//! # Honesty
//!
//! A failed request never yields a figure: a body cut short of its `Content-Length`, a reset, an
//! HTTP error or a step that does not answer in time fails the whole run, so its bytes are never
//! in a bandwidth (they are in the bytes moved). A direction that moved under 64 KiB, or has
//! under four readings, after its ramp-up is a failure too (`no_connectivity`): a server
//! dripping a byte a second is not a slow success. A download answered in full with fewer
//! bytes than asked for is not the API (a page served for every path, a captive portal) and
//! fails the run (`exit`). Figures that cannot be real are `implausible`
//! ([`Sample::check_plausible`]). An HTTP
//! 429 is `rate_limited`; its `Retry-After` is remembered and a run before then sends nothing.
//! [`error::EngineError::reason`] gives every error's reason.

pub(crate) mod api;
pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod headers;
pub(crate) mod probe;
pub(crate) mod stats;
pub(crate) mod tcp_info;
pub(crate) mod transfer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::sample::{
    Client, Engine, EngineName, HttpProtocol, Limits, Outcome, Sample, Server, Trigger, cut,
};
use crate::time::Timestamp;

use api::Api;
use client::{Conn, Connector, Target};
use error::EngineError;
use headers::{GetIp, ServerSays};
use transfer::{Direction, Plan};

/// The longest message a failed sample carries, in bytes (as the Ookla engine's).
const MESSAGE_LIMIT: usize = 300;
/// The random block upload bodies are sliced from, in bytes: large enough that hyper writes
/// big slices, small enough to generate in a moment.
const UPLOAD_BLOCK: usize = 1 << 20;

/// The default `--http-server`: Cloudflare's public speed test, over HTTPS.
pub(crate) const DEFAULT_SERVER: &str = "https://speed.cloudflare.com";

/// How the HTTP engine measures; built from the command-line flags.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// The server's base URL, `http://` or `https://`, without a trailing slash; the API's
    /// paths are joined to it.
    pub(crate) server: String,
    /// The API to speak; `None`: detect it from what the server answers.
    pub(crate) protocol: Option<HttpProtocol>,
    /// Parallel TCP connections per direction, at least 1.
    pub(crate) streams: u32,
    /// How long each direction transfers, ramp-up included.
    pub(crate) duration: Duration,
    /// The whole run (latency, download, upload) ends as failure `timeout` after this.
    pub(crate) timeout: Duration,
    /// Keep the client's address the server reports (`--store-ip`).
    pub(crate) store_ip: bool,
    /// Bandwidth above this is failure `implausible` (`--max-bandwidth`), in bytes per second.
    pub(crate) max_bytes_per_second: f64,
}

impl HttpConfig {
    /// The part of each direction left out of its bandwidth: a fifth of it, TCP's slow start
    /// and the first requests' set-up.
    pub fn ramp_up(&self) -> Duration {
        self.duration / 5
    }

    /// What every sample of this engine records about it.
    pub fn describe(&self) -> Engine {
        Engine {
            name: EngineName::Http,
            protocol: self.protocol,
            url: Some(self.server.clone()),
            streams: Some(self.streams),
            duration_seconds: Some(self.duration.as_secs_f64()),
            ramp_up_seconds: Some(self.ramp_up().as_secs_f64()),
        }
    }

    /// The engine in a few words for the start-up log, e.g. `HTTP engine, cloudflare API at
    /// https://speed.cloudflare.com, 4 streams, 10s per direction`.
    pub fn summary(&self) -> String {
        let protocol = self
            .protocol
            .map_or("the API it detects".to_owned(), |p| format!("{p} API"));
        format!(
            "HTTP engine, {protocol} at {}, {} stream{}, {} per direction",
            self.server,
            self.streams,
            if self.streams == 1 { "" } else { "s" },
            humantime::format_duration(self.duration)
        )
    }
}

/// The HTTP engine, configured; it remembers a server's `Retry-After` between runs.
#[derive(Debug)]
pub(crate) struct HttpEngine {
    config: HttpConfig,
    /// No run before this time: the last run's HTTP 429 asked for it.
    not_before: Mutex<Option<Timestamp>>,
    /// Where the run says which direction it measures ([`crate::speedtest::Runner::phases`]).
    phase: Option<Arc<tokio::sync::watch::Sender<crate::speedtest::Phase>>>,
}

/// What a run learnt, kept as it goes so that a failed or timed-out run still records it.
#[derive(Debug, Default)]
struct Progress {
    api: Option<Api>,
    /// The bytes the transfers moved so far.
    moved: transfer::Moved,
}

/// A successful run's figures.
#[derive(Debug)]
struct Figures {
    ping: f64,
    jitter: Option<f64>,
    download: transfer::Measured,
    upload: transfer::Measured,
    says: ServerSays,
    get_ip: Option<GetIp>,
    local: Option<std::net::SocketAddr>,
}

impl HttpEngine {
    /// An engine that measures as `config` says.
    pub(crate) fn new(config: HttpConfig) -> Self {
        HttpEngine {
            config,
            not_before: Mutex::new(None),
            phase: None,
        }
    }

    /// The same engine, saying on `phase` which direction it measures.
    pub(crate) fn with_phase(
        mut self,
        phase: Arc<tokio::sync::watch::Sender<crate::speedtest::Phase>>,
    ) -> Self {
        self.phase = Some(phase);
        self
    }

    /// The server's base URL (`--http-server`).
    pub(crate) fn server(&self) -> &str {
        &self.config.server
    }

    /// Measures once, the run started at `time`; never an error: every way a run can go wrong
    /// is a failed sample. The sample records this engine with the API it spoke (detected, when
    /// `--http-protocol` did not name it).
    pub(crate) async fn measure(&self, time: Timestamp, trigger: Trigger) -> Sample {
        let clock = Instant::now();
        let mut progress = Progress::default();
        let result = match self.waiting() {
            Some(err) => Err(err),
            None => {
                let host = self.host();
                tracing::debug!("speed test started: {}", self.config.summary());
                match tokio::time::timeout(self.config.timeout, self.run(&mut progress)).await {
                    Ok(result) => result,
                    Err(_) => Err(EngineError::Timeout {
                        host,
                        limit: self.config.timeout,
                    }),
                }
            }
        };
        let mut engine = self.config.describe();
        if let Some(api) = progress.api {
            engine.protocol = Some(api.protocol);
        }
        // What the transfers moved, however the run ended: a failure (even a timeout, which
        // cancelled the run where it was) moved what it moved, and --data-budget counts it.
        let moved = progress.moved.bytes();
        let base = Sample {
            duration_seconds: Some(clock.elapsed().as_millis() as f64 / 1000.0),
            engine: Some(Arc::new(engine)),
            downloaded_bytes: moved.map(|(down, _)| down),
            uploaded_bytes: moved.map(|(_, up)| up),
            ..Sample::empty(time, trigger)
        };
        let limits = Limits {
            max_bytes_per_second: self.config.max_bytes_per_second,
        };
        let failure = match result {
            Ok(figures) => {
                let sample = self.sample(base.clone(), figures);
                match sample.check_plausible(&limits) {
                    Ok(()) => return sample,
                    Err(implausible) => failed(
                        base,
                        crate::sample::FailureReason::Implausible,
                        &implausible.0,
                    ),
                }
            }
            Err(err) => {
                if let Some(until) = err.retry_after() {
                    *self.not_before.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
                }
                failed(base, err.reason(), &err.to_string())
            }
        };
        match failure.check_plausible(&limits) {
            Ok(()) => failure,
            // Only a failure's byte counts can be out of bounds (more than --max-bandwidth for
            // an hour, a line far faster than the user says): they are left out, unknown.
            Err(implausible) => {
                tracing::warn!(
                    "a failed HTTP test's byte counts are left out: {}",
                    implausible.0
                );
                Sample {
                    downloaded_bytes: None,
                    uploaded_bytes: None,
                    ..failure
                }
            }
        }
    }

    /// The failure of a run attempted before an earlier 429's `Retry-After` passed.
    fn waiting(&self) -> Option<EngineError> {
        let mut not_before = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        let until = (*not_before)?;
        if Timestamp::now() >= until {
            *not_before = None;
            return None;
        }
        Some(EngineError::Waiting {
            host: self.host(),
            until,
        })
    }

    /// The server's host as messages name it (the whole URL should it not parse).
    fn host(&self) -> String {
        Target::parse(&self.config.server).map_or_else(|_| self.config.server.clone(), |t| t.host)
    }

    /// The run, noting in `progress` what it learns and moves as it goes (a timeout cancels
    /// it where it is).
    async fn run(&self, progress: &mut Progress) -> Result<Figures, EngineError> {
        let target = Target::parse(&self.config.server)?;
        let connector = Connector::resolve(target).await?;
        let mut control = connector.connect().await?;
        let local = control.local;
        let mut says = ServerSays::default();
        let api = probe::detect(&mut control, self.config.protocol, &mut says).await?;
        progress.api = Some(api);
        tracing::debug!(
            "{} speaks the {} API{}",
            connector.host(),
            api.protocol,
            if api.php { " (.php paths)" } else { "" }
        );
        let (ping, jitter) = probe::idle_latency(&mut control, api, &mut says).await?;
        tracing::debug!("idle latency {} ms", crate::units::for_people::ms(ping));
        let get_ip = probe::get_ip(&mut control, api).await;
        drop(control);
        let mut block = vec![0u8; UPLOAD_BLOCK];
        rand::rng().fill_bytes(&mut block);
        let block = Bytes::from(block);
        let mut directions = Vec::with_capacity(2);
        for direction in [Direction::Download, Direction::Upload] {
            let plan = Plan {
                direction,
                api,
                duration: self.config.duration,
                ramp_up: self.config.ramp_up(),
                block: block.clone(),
            };
            if let Some(phase) = &self.phase {
                phase.send_replace(match direction {
                    Direction::Download => crate::speedtest::Phase::Download,
                    Direction::Upload => crate::speedtest::Phase::Upload,
                });
            }
            let (conns, probe_conn) = self.open(&connector).await?;
            tracing::debug!(
                "{} started: {} stream{} to {}",
                direction.as_str(),
                conns.len(),
                if conns.len() == 1 { "" } else { "s" },
                connector.host()
            );
            let measured = transfer::run(&plan, conns, Some(probe_conn), &progress.moved).await?;
            tracing::debug!(
                "{} finished: {} ({} in {:.2} s after ramp-up, {} moved), loaded latency {}",
                direction.as_str(),
                crate::units::for_people::speed(measured.bandwidth.bytes_per_second),
                crate::units::for_people::volume(measured.bandwidth.bytes as f64),
                measured.bandwidth.seconds,
                crate::units::for_people::volume(measured.moved as f64),
                measured
                    .loaded_latency
                    .map_or("unknown".to_owned(), |l| format!(
                        "{} ms",
                        crate::units::for_people::ms(l)
                    ))
            );
            directions.push(measured);
        }
        let (Some(upload), Some(download)) = (directions.pop(), directions.pop()) else {
            return Err(EngineError::Internal("a direction is missing".into()));
        };
        Ok(Figures {
            ping,
            jitter,
            download,
            upload,
            says,
            get_ip,
            local,
        })
    }

    /// Opens the streams of a direction and its latency probe's connection, all at once.
    async fn open(&self, connector: &Connector) -> Result<(Vec<Conn>, Conn), EngineError> {
        let mut opening = JoinSet::new();
        for _ in 0..=self.config.streams {
            let connector = connector.clone();
            opening.spawn(async move { connector.connect().await });
        }
        let mut conns = Vec::with_capacity(self.config.streams as usize + 1);
        while let Some(joined) = opening.join_next().await {
            match joined {
                Ok(Ok(conn)) => conns.push(conn),
                Ok(Err(err)) => return Err(err),
                Err(err) => return Err(EngineError::Internal(format!("connecting: {err}"))),
            }
        }
        let probe = conns
            .pop()
            .ok_or_else(|| EngineError::Internal("no connection opened".into()))?;
        Ok((conns, probe))
    }

    fn sample(&self, base: Sample, figures: Figures) -> Sample {
        let host = self.host();
        let says = figures.says;
        let get_ip = figures.get_ip.unwrap_or_default();
        let external = says.client_ip.clone().or(get_ip.ip);
        Sample {
            outcome: Outcome::Success,
            reason: None,
            message: None,
            download_bytes_per_second: Some(figures.download.bandwidth.bytes_per_second),
            upload_bytes_per_second: Some(figures.upload.bandwidth.bytes_per_second),
            ping_seconds: Some(figures.ping),
            jitter_seconds: figures.jitter,
            download_latency_seconds: figures.download.loaded_latency,
            upload_latency_seconds: figures.upload.loaded_latency,
            downloaded_bytes: Some(figures.download.moved),
            uploaded_bytes: Some(figures.upload.moved),
            server: Some(Arc::new(Server {
                id: None,
                name: says.software.clone(),
                location: says.colo.clone(),
                country: None,
                host: Some(cut(&host, crate::sample::MAX_NAME_BYTES)),
            })),
            isp: says.asn.or(get_ip.isp).map(Arc::from),
            client: self.config.store_ip.then(|| Client {
                internal_ip: figures.local.map(|a| a.ip().to_string()),
                external_ip: external,
                mac: None,
            }),
            ..base
        }
    }
}

/// `base` as a failure for `reason`, its message cut to [`MESSAGE_LIMIT`] bytes.
fn failed(base: Sample, reason: crate::sample::FailureReason, message: &str) -> Sample {
    Sample {
        outcome: Outcome::Failure,
        reason: Some(reason),
        message: Some(cut(message, MESSAGE_LIMIT)),
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::FailureReason;

    fn config(server: String, timeout: Duration) -> HttpConfig {
        HttpConfig {
            server,
            protocol: None,
            streams: 1,
            duration: Duration::from_secs(1),
            timeout,
            store_ip: false,
            max_bytes_per_second: 12.5e9,
        }
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout_within_the_run_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts and holds connections, answering nothing.
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        let engine = HttpEngine::new(config(
            format!("http://{address}"),
            Duration::from_millis(300),
        ));
        let sample = engine.measure(Timestamp::now(), Trigger::Manual).await;
        holder.abort();
        assert_eq!(sample.reason, Some(FailureReason::Timeout));
        assert_eq!(
            sample.message.as_deref(),
            Some("the HTTP test of 127.0.0.1 did not finish within 300ms (--timeout)")
        );
        // Cut off before any transfer started: nothing known to have moved.
        assert_eq!(sample.downloaded_bytes, None);
        assert_eq!(sample.uploaded_bytes, None);
        let engine = sample.engine.unwrap();
        assert_eq!(engine.name, EngineName::Http);
        assert_eq!(engine.protocol, None);
        assert!(sample.duration_seconds.unwrap() < 5.0);
    }

    /// A Cloudflare-style server on 127.0.0.1 answering `GET /__down?bytes=N` with N bytes,
    /// sent 64 KiB every 10 ms (a few MB/s, so a download lasts); every other request 404.
    async fn slow_down_server() -> std::net::SocketAddr {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (read, mut write) = tcp.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let zeros = vec![0u8; 1 << 16];
                    while let Ok(Some(line)) = lines.next_line().await {
                        // Skip the headers (no request here has a body).
                        while let Ok(Some(header)) = lines.next_line().await {
                            if header.is_empty() {
                                break;
                            }
                        }
                        let target = line.split(' ').nth(1).unwrap_or("");
                        let Some(mut bytes) = target
                            .strip_prefix("/__down?bytes=")
                            .and_then(|n| n.parse::<u64>().ok())
                        else {
                            let _ = write
                                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                                .await;
                            continue;
                        };
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {bytes}\r\n\r\n");
                        if write.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        while bytes > 0 {
                            let n = bytes.min(zeros.len() as u64);
                            if write.write_all(&zeros[..n as usize]).await.is_err() {
                                return;
                            }
                            bytes -= n;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                });
            }
        });
        address
    }

    #[tokio::test]
    async fn a_run_its_timeout_cuts_off_mid_download_still_says_what_moved() {
        let address = slow_down_server().await;
        // The download would last 5 s; the run is cut off after 1.5 s, in the middle of it.
        let engine = HttpEngine::new(HttpConfig {
            duration: Duration::from_secs(5),
            ..config(format!("http://{address}"), Duration::from_millis(1500))
        });
        let sample = engine.measure(Timestamp::now(), Trigger::Manual).await;
        assert_eq!(sample.reason, Some(FailureReason::Timeout), "{sample:?}");
        let downloaded = sample.downloaded_bytes.expect("what moved is counted");
        // At about 6.5 MB/s for most of a second: well over 64 KiB.
        assert!(downloaded > 1 << 16, "{downloaded}");
        // The upload never started: known to have moved nothing.
        assert_eq!(sample.uploaded_bytes, Some(0));
        assert_eq!(sample.download_bytes_per_second, None);
        assert_eq!(sample.validate(), Ok(()));
    }

    #[tokio::test]
    async fn a_remembered_retry_after_sends_nothing_and_says_until_when() {
        let engine = HttpEngine::new(config("http://192.0.2.1".into(), Duration::from_secs(1)));
        let until = Timestamp::now().saturating_add(Duration::from_secs(60));
        *engine.not_before.lock().unwrap() = Some(until);
        // 192.0.2.1 (TEST-NET-1) is never contacted: the run fails before any connection.
        let sample = engine.measure(Timestamp::now(), Trigger::Manual).await;
        assert_eq!(sample.reason, Some(FailureReason::RateLimited));
        assert_eq!(sample.downloaded_bytes, None);
        assert_eq!(
            sample.message.unwrap(),
            format!(
                "192.0.2.1 asked not to be tested before {until} (Retry-After of an HTTP 429); no request was sent"
            )
        );
        // Once the time has passed, runs go ahead again.
        *engine.not_before.lock().unwrap() = Some(Timestamp::EPOCH);
        assert!(engine.waiting().is_none());
        assert!(engine.not_before.lock().unwrap().is_none());
    }

    #[test]
    fn figures_become_a_sample_and_implausible_ones_a_failure() {
        let engine = HttpEngine::new(config("http://h:8080".into(), Duration::from_secs(30)));
        let direction = |bytes_per_second: f64| transfer::Measured {
            bandwidth: stats::Bandwidth {
                bytes_per_second,
                bytes: 1,
                seconds: 1.0,
            },
            moved: 5_000_000,
            loaded_latency: Some(0.02),
        };
        let figures = Figures {
            ping: 0.01,
            jitter: Some(0.001),
            download: direction(1e7),
            upload: direction(2e6),
            says: ServerSays {
                software: Some("s".into()),
                colo: Some("FRA".into()),
                asn: Some("AS64500".into()),
                client_ip: Some("192.0.2.9".into()),
            },
            get_ip: None,
            local: None,
        };
        let base = Sample::empty(Timestamp::EPOCH, Trigger::Schedule);
        let sample = engine.sample(base, figures);
        assert_eq!(sample.download_bytes_per_second, Some(1e7));
        assert_eq!(sample.upload_latency_seconds, Some(0.02));
        assert_eq!(sample.downloaded_bytes, Some(5_000_000));
        let server = sample.server.as_deref().unwrap();
        assert_eq!(server.host.as_deref(), Some("h"));
        assert_eq!(server.location.as_deref(), Some("FRA"));
        assert_eq!(sample.isp.as_deref(), Some("AS64500"));
        // No --store-ip: no addresses.
        assert_eq!(sample.client, None);
        assert_eq!(
            sample.check_plausible(&Limits {
                max_bytes_per_second: 12.5e9
            }),
            Ok(())
        );
        assert!(
            sample
                .check_plausible(&Limits {
                    max_bytes_per_second: 1e6
                })
                .is_err()
        );
    }
}
