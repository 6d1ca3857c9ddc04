//! One direction of a test: `streams` connections moving data back to back for the test's
//! duration, their bytes read every 100 ms, and a latency probe on a connection of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use hyper::body::Body as _;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::api::{Api, MAX_UPLOAD, MIN_REQUEST};
use super::client::{Conn, ReqBody, body_error, content_length};
use super::error::EngineError;
use super::stats::{self, Bandwidth, Reading};
use super::tcp_info::Acked;

/// How often a direction's byte counters are read.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// The least time between the starts of two loaded-latency probes.
pub(crate) const LOADED_PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Which way the data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Server to client.
    Download,
    /// Client to server.
    Upload,
}

impl Direction {
    /// The direction's name in messages.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Download => "download",
            Direction::Upload => "upload",
        }
    }
}

/// What a direction measured.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    /// Bandwidth after the ramp-up.
    pub(crate) bandwidth: Bandwidth,
    /// Every byte moved, ramp-up and the last moments included.
    pub(crate) moved: u64,
    /// Median latency of the probes answered after the ramp-up, in seconds.
    pub(crate) loaded_latency: Option<f64>,
}

/// How a direction runs.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Which way the data goes.
    pub(crate) direction: Direction,
    /// The API the requests speak.
    pub(crate) api: Api,
    /// The whole direction, ramp-up included.
    pub(crate) duration: Duration,
    /// The start of it left out of the bandwidth.
    pub(crate) ramp_up: Duration,
    /// Upload bodies are slices of this random block.
    pub(crate) block: Bytes,
}

/// A stream's count of bytes moved: bytes received (download), or bytes the peer acknowledged
/// where the kernel says (upload on Linux), else bytes of upload requests answered.
#[derive(Debug, Default)]
struct Meter {
    /// Download bytes received, or upload bytes of requests answered with a success.
    counted: AtomicU64,
    acked: Mutex<AckedState>,
    /// Acknowledged bytes of uploads the server refused (413), left out of the count.
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct AckedState {
    /// Acknowledged bytes of the stream's earlier connections.
    earlier: u64,
    /// The current connection's handle, its count when attached, and its latest reading.
    current: Option<(Acked, u64, u64)>,
    /// A connection of the stream had no acknowledged count: count answered requests.
    unavailable: bool,
}

impl Meter {
    /// Bytes moved so far that count towards the bandwidth: [`Meter::moved`] less the
    /// acknowledged bytes of uploads the server refused.
    fn read(&self, direction: Direction) -> u64 {
        self.moved(direction)
            .saturating_sub(self.refused.load(Ordering::Relaxed))
    }

    /// Every byte moved so far, refused uploads included: they crossed the line all the same.
    fn moved(&self, direction: Direction) -> u64 {
        let counted = self.counted.load(Ordering::Relaxed);
        if direction == Direction::Download {
            return counted;
        }
        let mut state = self
            .acked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.unavailable {
            return counted;
        }
        let earlier = state.earlier;
        match &mut state.current {
            Some((acked, base, latest)) => {
                if let Some(now) = acked.bytes() {
                    *latest = now.saturating_sub(*base).max(*latest);
                }
                earlier + *latest
            }
            None => earlier,
        }
    }

    /// Counts a new connection's acknowledged bytes from now on (upload).
    fn attach(&self, acked: Option<Acked>) {
        let mut state = self
            .acked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((old, base, latest)) = state.current.take() {
            let last = old
                .bytes()
                .map_or(latest, |now| now.saturating_sub(base).max(latest));
            state.earlier += last;
        }
        match acked {
            Some(acked) => {
                let base = acked.bytes().unwrap_or(0);
                state.current = Some((acked, base, 0));
            }
            None => state.unavailable = true,
        }
    }
}

/// Every byte a run's transfers moved, in both directions, ramp-up and refused uploads
/// included, however the run ends: each direction registers its streams' meters here as it
/// starts, so a run that fails, or is cancelled by its timeout, still says what it moved
/// (`downloaded_bytes` / `uploaded_bytes`, for `--data-budget`). Only the transfers' bodies
/// count: not headers, nor the small requests' bodies (API detection, latency probes, `getIP`;
/// empty or a few hundred bytes each).
#[derive(Debug, Default)]
pub(crate) struct Moved {
    /// `None` until a direction starts; then the meters of every stream started, with their
    /// direction.
    meters: Mutex<Option<Vec<Registered>>>,
}

/// A stream's meter and its direction.
type Registered = (Direction, Arc<Meter>);

impl Moved {
    /// Notes that a direction started, even one whose streams never count a byte.
    fn start(&self) {
        self.lock().get_or_insert_with(Vec::new);
    }

    fn register(&self, direction: Direction, meter: Arc<Meter>) {
        self.lock()
            .get_or_insert_with(Vec::new)
            .push((direction, meter));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Registered>>> {
        self.meters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes downloaded and uploaded so far; `None` when no transfer started (the run failed
    /// before, so it moved nothing but its small requests). A direction that never started
    /// moved 0 bytes.
    pub(crate) fn bytes(&self) -> Option<(u64, u64)> {
        let meters = self.lock();
        let meters = meters.as_ref()?;
        let sum = |wanted: Direction| -> u64 {
            meters
                .iter()
                .filter(|(direction, _)| *direction == wanted)
                .map(|(direction, meter)| meter.moved(*direction))
                .sum()
        };
        Some((sum(Direction::Download), sum(Direction::Upload)))
    }
}

/// Runs one direction on `conns` (one per stream) with `probe` measuring loaded latency,
/// registering its streams' meters with `moved`. Any stream's failure fails the direction: no
/// byte of a failed request is ever in a bandwidth, though every byte moved is in `moved`.
pub(crate) async fn run(
    plan: &Plan,
    conns: Vec<Conn>,
    probe: Option<Conn>,
    moved: &Moved,
) -> Result<Measured, EngineError> {
    let direction = plan.direction;
    let host = conns
        .first()
        .map(|conn| conn.connector().host().to_owned())
        .unwrap_or_default();
    let start = Instant::now();
    let end = start + plan.duration;
    let mut meters = Vec::with_capacity(conns.len());
    let mut streams = JoinSet::new();
    moved.start();
    for mut conn in conns {
        let meter = Arc::new(Meter::default());
        if direction == Direction::Upload {
            meter.attach(conn.acked.take());
        }
        moved.register(direction, meter.clone());
        meters.push(meter.clone());
        let plan = plan.clone();
        streams.spawn(async move {
            match plan.direction {
                Direction::Download => download(conn, &plan, &meter).await,
                Direction::Upload => upload(conn, &plan, &meter).await,
            }
        });
    }
    let probes = Arc::new(Mutex::new(Vec::new()));
    let mut prober = JoinSet::new();
    if let Some(conn) = probe {
        prober.spawn(loaded_probes(conn, plan.api, start, probes.clone()));
    }
    let total =
        |meters: &[Arc<Meter>]| -> u64 { meters.iter().map(|meter| meter.read(direction)).sum() };
    let mut readings = vec![Reading {
        elapsed: Duration::ZERO,
        bytes: 0,
    }];
    let mut next = start + TICK;
    loop {
        let wake = next.min(end);
        tokio::select! {
            biased;
            Some(joined) = streams.join_next() => {
                streams.abort_all();
                return Err(match joined {
                    Ok(Err(err)) => err,
                    Ok(Ok(())) => EngineError::Internal(format!("a {} stream stopped", direction.as_str())),
                    Err(err) => EngineError::Internal(format!("a {} stream failed: {err}", direction.as_str())),
                });
            }
            () = tokio::time::sleep_until(wake) => {
                let (reading, now) = bracketed(start, || total(&meters));
                readings.push(reading);
                if now >= end {
                    break;
                }
                while next <= now {
                    next += TICK;
                }
            }
        }
    }
    streams.abort_all();
    prober.abort_all();
    // Wait for the aborted streams, so that their sockets are closed and counts final.
    while streams.join_next().await.is_some() {}
    while prober.join_next().await.is_some() {}
    let moved: u64 = meters.iter().map(|meter| meter.moved(direction)).sum();
    let moved = moved.max(readings.last().map_or(0, |r| r.bytes));
    let bandwidth =
        stats::bandwidth(&readings, plan.ramp_up).map_err(|little| EngineError::TooLittle {
            host: host.clone(),
            direction: direction.as_str(),
            bytes: little.bytes,
            seconds: little.seconds,
            readings: little.readings,
        })?;
    let loaded: Vec<f64> = probes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .filter(|(sent, _)| *sent >= plan.ramp_up)
        .map(|(_, latency)| *latency)
        .collect();
    Ok(Measured {
        bandwidth,
        moved,
        loaded_latency: stats::median(&loaded),
    })
}

/// A reading whose count and time belong together by more than a few milliseconds: the count
/// is taken between two clock reads, and the reading is timed at their midpoint. When the
/// thread was held up between them (descheduled, a page fault, a busy machine) for more than
/// [`MAX_READING_SPREAD`], the count is taken again, up to three times in all. A reading timed
/// before a long hold-up but counted after it would credit the bytes of the hold-up to an
/// instant before them: at the last reading, a bandwidth above the link's. Returns the
/// reading and the later clock read.
fn bracketed(start: Instant, count: impl Fn() -> u64) -> (Reading, Instant) {
    let mut tries = 0;
    loop {
        let before = Instant::now();
        let bytes = count();
        let after = Instant::now();
        let spread = after.saturating_duration_since(before);
        tries += 1;
        if spread <= MAX_READING_SPREAD || tries >= 3 {
            let midpoint = before + spread / 2;
            let reading = Reading {
                elapsed: midpoint.saturating_duration_since(start),
                bytes,
            };
            return (reading, after);
        }
    }
}

/// The longest a count may take to be read and still be timed by the clock reads around it:
/// 5 ms, 0.5 % of a second, well above the microseconds it takes on an idle machine.
const MAX_READING_SPREAD: Duration = Duration::from_millis(5);

/// Replaces `conn` with a new connection when the server closed it after a complete answer.
async fn reopen_if_closed(
    conn: &mut Conn,
    meter: &Meter,
    direction: Direction,
) -> Result<(), EngineError> {
    if conn.is_closed() {
        let mut fresh = conn.connector().connect().await?;
        if direction == Direction::Upload {
            meter.attach(fresh.acked.take());
        }
        *conn = fresh;
    }
    Ok(())
}

/// A request of `size` bytes was refused as too large (HTTP 413): the stream's new cap on
/// request sizes, half of it, unless it was already no larger than `min` (then the refusal
/// stands).
fn smaller_cap(err: &EngineError, size: u64, min: u64) -> Option<u64> {
    match err {
        EngineError::Status { status, .. } if status.starts_with("413") && size > min => {
            Some((size / 2).max(min))
        }
        _ => None,
    }
}

/// An upload of `size` bytes failed with `err`: the stream's new cap on upload sizes when the
/// failure may be a server's size limit (413, or the connection breaking while sending a size
/// larger than any `completed`), half of it but not below `completed` nor [`MIN_REQUEST`];
/// `None` when the failure stands.
fn upload_cap(err: &EngineError, size: u64, completed: u64) -> Option<u64> {
    let refusal = match err {
        EngineError::Status { status, .. } => status.starts_with("413"),
        EngineError::Broken { .. } => true,
        _ => false,
    };
    let floor = completed.max(MIN_REQUEST);
    (refusal && size > floor).then(|| (size / 2).max(floor))
}

/// Downloads back to back; bytes count as their frames arrive. A body that ends early or
/// fails fails the direction. A request refused as too large (413, a server's cap such as the
/// target's `--max-request-bytes`) lowers the stream's request sizes; nothing of it counts.
async fn download(mut conn: Conn, plan: &Plan, meter: &Meter) -> Result<(), EngineError> {
    let host = conn.connector().host().to_owned();
    let mut size = MIN_REQUEST;
    let mut cap = plan.api.max_download();
    loop {
        reopen_if_closed(&mut conn, meter, Direction::Download).await?;
        let path = plan.api.download(size);
        let request = format!("GET {}", conn.connector().target.path(&path));
        let asked = plan.api.download_size(size);
        let answer = match conn.send(Method::GET, &path, ReqBody::Empty).await {
            Ok(answer) => answer,
            Err(err) => match smaller_cap(&err, asked, plan.api.download_size(MIN_REQUEST)) {
                Some(smaller) => {
                    tracing::debug!("{err}: requests of at most {smaller} bytes from now on");
                    cap = smaller;
                    size = smaller;
                    conn.retire();
                    continue;
                }
                None => return Err(err),
            },
        };
        let expected = content_length(answer.headers());
        let started = Instant::now();
        let mut body = answer.into_body();
        let mut received = 0u64;
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        let n = data.len() as u64;
                        received += n;
                        meter.counted.fetch_add(n, Ordering::Relaxed);
                    }
                }
                Err(err) => return Err(body_error(&err, &host, &request, received, expected)),
            }
        }
        if let Some(expected) = expected.filter(|&expected| received < expected) {
            return Err(EngineError::Truncated {
                host,
                request,
                received,
                expected,
            });
        }
        // Both APIs send exactly what was asked for; fewer bytes, complete, are another kind
        // of server (one page for every path, a captive portal), whose figures would be those
        // of fetching that page.
        if received < asked {
            return Err(EngineError::Short {
                host,
                request,
                received,
                asked,
            });
        }
        size = stats::next_request_size(
            asked.min(received.max(1)),
            started.elapsed(),
            MIN_REQUEST,
            cap,
        );
    }
}

/// Uploads back to back, bodies sliced from the random block. Bytes count as the peer
/// acknowledges them (or, without that, when a request is answered); a request answered with
/// an error fails the direction.
///
/// A server may refuse a body over its limit with 413 before reading it, and close the
/// connection, so the client may see only the connection breaking while it sends. So a request
/// larger than any the stream has completed that is refused with 413 or breaks off halves the
/// stream's request sizes (never below what completed), and what the peer acknowledged of it is
/// taken out of the count; the same at a size that has completed fails the direction.
async fn upload(mut conn: Conn, plan: &Plan, meter: &Meter) -> Result<(), EngineError> {
    let host = conn.connector().host().to_owned();
    let path = plan.api.upload();
    let request = format!("POST {}", conn.connector().target.path(&path));
    let mut size = MIN_REQUEST;
    let mut cap = MAX_UPLOAD;
    let mut completed = 0;
    loop {
        reopen_if_closed(&mut conn, meter, Direction::Upload).await?;
        let before = meter.read(Direction::Upload);
        let started = Instant::now();
        let upload = ReqBody::upload(plan.block.clone(), size);
        let unsent = upload.left();
        let sent = conn.send(Method::POST, &path, upload).await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(err) => match upload_cap(&err, size, completed) {
                Some(smaller) => {
                    tracing::debug!("{err}: uploads of at most {smaller} bytes from now on");
                    // Close the connection (the rest of the body is never sent) and take
                    // what it carried of the refused body out of the count.
                    conn.retire();
                    reopen_if_closed(&mut conn, meter, Direction::Upload).await?;
                    let after = meter.read(Direction::Upload);
                    meter
                        .refused
                        .fetch_add(after.saturating_sub(before), Ordering::Relaxed);
                    cap = smaller;
                    size = smaller;
                    continue;
                }
                None => return Err(err),
            },
        };
        // A speed-test server answers an upload once it has read it; an answer while some of
        // the body was never handed over means it did not, and the bytes the path carried
        // measured nothing but a server closing on us.
        let left = unsent.map_or(0, |left| left.load(Ordering::Relaxed));
        if left > 0 {
            return Err(EngineError::EarlyAnswer {
                host,
                request,
                sent: size - left,
                asked: size,
            });
        }
        let expected = content_length(answer.headers());
        let mut body = answer.into_body();
        let mut received = 0u64;
        // The answer is small; read it all so the connection can be used again.
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            match frame {
                Ok(frame) => {
                    received += frame.data_ref().map_or(0, |data| data.len() as u64);
                }
                Err(err) => return Err(body_error(&err, &host, &request, received, expected)),
            }
        }
        meter.counted.fetch_add(size, Ordering::Relaxed);
        completed = completed.max(size);
        size = stats::next_request_size(size, started.elapsed(), MIN_REQUEST, cap);
    }
}

/// Probes latency on its own connection while a direction runs, noting when each probe was
/// sent (since the direction's start) and its latency, in seconds. Stops at the first error:
/// a loaded link may drop a probe, which then has no figure.
async fn loaded_probes(
    mut conn: Conn,
    api: Api,
    start: Instant,
    out: Arc<Mutex<Vec<(Duration, f64)>>>,
) {
    let path = api.latency();
    loop {
        let sent = Instant::now();
        match conn.small(&path).await {
            Ok((parts, _, took)) => {
                let latency =
                    stats::net_latency(took, super::headers::server_timing(&parts.headers));
                out.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push((sent.saturating_duration_since(start), latency));
            }
            Err(err) => {
                tracing::debug!("a loaded-latency probe failed: {err}");
                return;
            }
        }
        tokio::time::sleep_until(sent + LOADED_PROBE_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_held_up_is_taken_again_and_timed_between_its_clock_reads() {
        let start = Instant::now();
        let calls = std::cell::Cell::new(0);
        let (reading, after) = bracketed(start, || {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                // A hold-up between the clock reads, as a descheduled thread would have.
                std::thread::sleep(Duration::from_millis(30));
            }
            42
        });
        assert_eq!(calls.get(), 2, "taken again after the hold-up");
        assert_eq!(reading.bytes, 42);
        assert!(
            reading.elapsed >= Duration::from_millis(30),
            "timed by the second try: {reading:?}"
        );
        assert!(after.saturating_duration_since(start) >= reading.elapsed);
        // A count that is always slow is taken three times, then used.
        let calls = std::cell::Cell::new(0);
        bracketed(start, || {
            calls.set(calls.get() + 1);
            std::thread::sleep(Duration::from_millis(10));
            1
        });
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn a_refused_or_broken_upload_lowers_sizes_only_above_what_completed() {
        let status = |status: &str| EngineError::Status {
            host: "h".into(),
            request: "POST /__up".into(),
            status: status.into(),
        };
        let broken = EngineError::Broken {
            host: "h".into(),
            request: "POST /__up".into(),
            cause: "Broken pipe".into(),
        };
        let too_large = status("413 Payload Too Large");
        assert_eq!(upload_cap(&too_large, 6_400_000, 800_000), Some(3_200_000));
        assert_eq!(upload_cap(&broken, 1_600_000, 800_000), Some(800_000));
        // At a size that completed before, or the smallest, the failure stands.
        assert_eq!(upload_cap(&broken, 800_000, 800_000), None);
        assert_eq!(upload_cap(&too_large, MIN_REQUEST, 0), None);
        assert_eq!(
            upload_cap(&status("500 Internal Server Error"), 6_400_000, 0),
            None
        );
        let limited = EngineError::RateLimited {
            host: "h".into(),
            request: "POST /__up".into(),
            until: None,
        };
        assert_eq!(upload_cap(&limited, 6_400_000, 0), None);
        // Downloads: 413 only, never below the smallest.
        assert_eq!(
            smaller_cap(&too_large, 50_000_000, MIN_REQUEST),
            Some(25_000_000)
        );
        assert_eq!(smaller_cap(&broken, 50_000_000, MIN_REQUEST), None);
        assert_eq!(smaller_cap(&too_large, MIN_REQUEST, MIN_REQUEST), None);
    }

    #[test]
    fn meters_count_received_answered_or_acknowledged_bytes() {
        let meter = Meter::default();
        meter.counted.fetch_add(1_000, Ordering::Relaxed);
        assert_eq!(meter.read(Direction::Download), 1_000);
        // An upload connection without an acknowledged count: answered requests count.
        meter.attach(None);
        assert_eq!(meter.read(Direction::Upload), 1_000);
        // Refused uploads' bytes are out of the bandwidth's count, not out of what moved.
        meter.refused.fetch_add(300, Ordering::Relaxed);
        assert_eq!(meter.read(Direction::Upload), 700);
        assert_eq!(meter.moved(Direction::Upload), 1_000);
    }

    #[test]
    fn moved_is_unknown_until_a_direction_starts_then_sums_each_direction() {
        let moved = Moved::default();
        assert_eq!(moved.bytes(), None);
        moved.start();
        assert_eq!(moved.bytes(), Some((0, 0)));
        for (direction, bytes) in [
            (Direction::Download, 10),
            (Direction::Download, 20),
            (Direction::Upload, 5),
        ] {
            let meter = Arc::new(Meter::default());
            if direction == Direction::Upload {
                meter.attach(None);
            }
            meter.counted.fetch_add(bytes, Ordering::Relaxed);
            moved.register(direction, meter);
        }
        assert_eq!(moved.bytes(), Some((30, 5)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_upload_meter_adds_up_its_connections_acknowledged_bytes() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let meter = Meter::default();
        // Answered requests do not count where the kernel says what was acknowledged.
        meter.counted.fetch_add(999_999, Ordering::Relaxed);
        for round in 1..=2u64 {
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            meter.attach(Acked::of(&client));
            client.write_all(&[1u8; 50_000]).unwrap();
            let mut got = vec![0u8; 50_000];
            server.read_exact(&mut got).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while meter.read(Direction::Upload) < round * 50_000
                && std::time::Instant::now() < deadline
            {
                std::thread::yield_now();
            }
            assert_eq!(meter.read(Direction::Upload), round * 50_000);
        }
    }
}
