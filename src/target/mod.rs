//! `internet-monitor target`: a speed-test server for the HTTP engine, speaking the
//! Cloudflare-style and LibreSpeed APIs, storing nothing.
//!
//! Routes (every path also with `.php` for LibreSpeed's, except Cloudflare's):
//! - `GET /__down?bytes=N`: N bytes of random data (Cloudflare-style download);
//! - `POST /__up`: reads and discards the body (Cloudflare-style upload);
//! - `GET /garbage?ckSize=N`: N MiB of random data (LibreSpeed download; N defaults to 4);
//! - `GET|POST /empty`: an empty answer, the body discarded (LibreSpeed latency and upload);
//! - `GET /getIP`: `{"processedString": "<client address>", "rawIspInfo": ""}` (LibreSpeed);
//! - `GET /`: what this server is, as JSON.
//!
//! Every answer carries `Server-Timing: app;dur=MS`, the time the server spent before its
//! answer's headers, so that a client can take it out of a latency. Bounds: at most
//! `max_connections` at once (the connection idle longest makes room for a new one), at most
//! `max_request_bytes` per download or upload, a client that reads or sends nothing for
//! [`STALL_TIMEOUT`] is disconnected, and no request lasts longer than [`REQUEST_TIMEOUT`].

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::http::response::{Body, HttpError, json};
use crate::http::{Limits, serve_connections};

/// The block of random bytes every download repeats: large enough that no compressor finds
/// the repetition (deflate looks back 32 KiB, zstd's default window is 8 MiB at most for
/// streaming; nothing on the path compresses anyway: `Content-Encoding` is identity), and
/// sent as slices of one shared buffer, so a download costs no copying in user space.
const BLOCK_BYTES: usize = 1 << 20;
/// A MiB, LibreSpeed's `ckSize` unit.
const MIB: u64 = 1 << 20;
/// LibreSpeed's default `ckSize` when the client sends none.
const DEFAULT_CK_SIZE: u64 = 4;
/// A client that reads or sends less than [`MIN_PROGRESS`] of a download or an upload in this
/// long is disconnected.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// What a client must read of a download, or send of an upload, within [`STALL_TIMEOUT`]
/// (about 52 kbit/s, far below any line worth measuring): a client trickling a byte at a
/// time cannot hold one of the `--max-connections` for long.
pub(crate) const MIN_PROGRESS: usize = 64 * 1024;
/// No download or upload lasts longer than this; the engine's requests last under a second.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The most a connection buffers (hyper's `max_buf_size`): uploads arrive in large reads.
const BUFFER_BYTES: usize = 256 * 1024;

/// How the target serves; from `target`'s flags.
#[derive(Clone, Debug)]
pub(crate) struct TargetConfig {
    /// Connections served at once.
    pub(crate) max_connections: usize,
    /// The most bytes one download sends or one upload reads; more is refused with 413.
    pub(crate) max_request_bytes: u64,
}

/// Serves the speed-test APIs on `listener` until `shutdown` completes.
pub(crate) async fn run(
    config: TargetConfig,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = Limits {
        max_connections: config.max_connections,
        max_buffer_bytes: BUFFER_BYTES,
        send_buffer_bytes: None,
        min_write_progress: MIN_PROGRESS,
        log_unread: false,
    };
    let config = Arc::new(config);
    // Made now, not in the first download's time.
    drop(block());
    // Plain HTTP always: a speed-test target has no web configuration.
    let server = serve_connections(listener, limits, None, stop_rx, move |request, peer| {
        let config = config.clone();
        async move { respond(&config, request, peer.address).await }
    });
    tokio::pin!(server);
    tokio::select! {
        () = &mut server => return,
        () = shutdown => {}
    }
    let _ = stop_tx.send(true);
    server.await;
}

/// The shared random block downloads are cut from.
fn block() -> Bytes {
    static BLOCK: OnceLock<Bytes> = OnceLock::new();
    BLOCK
        .get_or_init(|| {
            let mut data = vec![0u8; BLOCK_BYTES];
            rand::Rng::fill(&mut rand::rng(), data.as_mut_slice());
            Bytes::from(data)
        })
        .clone()
}

/// The routes, by path (see the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    Index,
    CloudflareDown,
    CloudflareUp,
    Garbage,
    Empty,
    GetIp,
}

impl Route {
    fn find(path: &str) -> Option<Route> {
        Some(match path {
            "/" => Route::Index,
            "/__down" => Route::CloudflareDown,
            "/__up" => Route::CloudflareUp,
            "/garbage" | "/garbage.php" => Route::Garbage,
            "/empty" | "/empty.php" => Route::Empty,
            "/getIP" | "/getIP.php" => Route::GetIp,
            _ => return None,
        })
    }
}

async fn respond(
    config: &TargetConfig,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    let path = request.uri().path();
    let Some(route) = Route::find(path) else {
        return finish(
            HttpError::not_found(format!(
                "no such endpoint: {}; this is an internet-monitor speed-test target",
                crate::logging::shown(path)
            ))
            .into_response(),
            started,
        );
    };
    let method = request.method().clone();
    let response = match (route, &method) {
        (Route::Index, &Method::GET | &Method::HEAD) => index(config),
        (Route::CloudflareDown, &Method::GET | &Method::HEAD) => {
            match bytes_asked(request.uri().query(), config) {
                Ok(bytes) => download(bytes),
                Err(err) => err.into_response(),
            }
        }
        (Route::Garbage, &Method::GET | &Method::HEAD) => {
            match chunks_asked(request.uri().query(), config) {
                Ok(bytes) => download(bytes),
                Err(err) => err.into_response(),
            }
        }
        (Route::CloudflareUp, &Method::POST) | (Route::Empty, &Method::POST) => {
            discard(request, config).await
        }
        (Route::Empty, &Method::GET | &Method::HEAD) => empty(),
        (Route::GetIp, &Method::GET | &Method::HEAD) => json(
            StatusCode::OK,
            &GetIp {
                processed_string: peer.ip().to_canonical().to_string(),
                raw_isp_info: "",
            },
        ),
        _ => {
            let mut response = HttpError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: format!("{method} is not allowed on {path}"),
            }
            .into_response();
            let allow = match route {
                Route::CloudflareUp => "POST",
                Route::Empty => "GET, HEAD, POST",
                _ => "GET, HEAD",
            };
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            response
        }
    };
    finish(response, started)
}

/// Adds what every answer carries: `Server-Timing` (ms before the headers), no caching, and
/// the server's name.
fn finish(mut response: Response<Body>, started: Instant) -> Response<Body> {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.3}")) {
        headers.insert("server-timing", value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::SERVER, HeaderValue::from_static(SERVER_NAME));
    response
}

/// The `Server` header: this program and its version.
const SERVER_NAME: &str = concat!("internet-monitor-target/", env!("CARGO_PKG_VERSION"));

/// LibreSpeed's `getIP` answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetIp {
    processed_string: String,
    raw_isp_info: &'static str,
}

fn index(config: &TargetConfig) -> Response<Body> {
    #[derive(Serialize)]
    struct Index {
        server: &'static str,
        protocols: [&'static str; 2],
        max_request_bytes: u64,
    }
    json(
        StatusCode::OK,
        &Index {
            server: SERVER_NAME,
            protocols: ["cloudflare", "librespeed"],
            max_request_bytes: config.max_request_bytes,
        },
    )
}

fn empty() -> Response<Body> {
    let mut response = Response::new(crate::http::response::whole(Bytes::new()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The value of query parameter `name`, if given.
fn parameter<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `bytes=N` of `/__down`: required, a whole number up to `max_request_bytes`.
fn bytes_asked(query: Option<&str>, config: &TargetConfig) -> Result<u64, HttpError> {
    let Some(text) = parameter(query, "bytes") else {
        return Err(HttpError::bad_request(
            "missing bytes: ask for /__down?bytes=N with N the bytes to send",
        ));
    };
    let bytes: u64 = text.parse().map_err(|_| {
        HttpError::bad_request(format!(
            "bytes must be a whole number from 0 to {}, not {}",
            config.max_request_bytes,
            crate::logging::quoted(text)
        ))
    })?;
    within(bytes, config)
}

/// `ckSize=N` of `garbage`: N MiB, 4 when not given.
fn chunks_asked(query: Option<&str>, config: &TargetConfig) -> Result<u64, HttpError> {
    let chunks = match parameter(query, "ckSize") {
        None | Some("") => DEFAULT_CK_SIZE,
        Some(text) => text.parse::<u64>().map_err(|_| {
            HttpError::bad_request(format!(
                "ckSize must be a whole number of MiB from 0 to {}, not {}",
                config.max_request_bytes / MIB,
                crate::logging::quoted(text)
            ))
        })?,
    };
    within(chunks.saturating_mul(MIB), config)
}

fn within(bytes: u64, config: &TargetConfig) -> Result<u64, HttpError> {
    if bytes > config.max_request_bytes {
        return Err(HttpError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "{bytes} bytes is more than this target sends or reads in one request ({}; --max-request-bytes)",
                config.max_request_bytes
            ),
        });
    }
    Ok(bytes)
}

fn download(bytes: u64) -> Response<Body> {
    let body = Random {
        left: bytes,
        block: block(),
        deadline: Box::pin(tokio::time::sleep(REQUEST_TIMEOUT)),
    };
    let mut response = Response::new(body.boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes));
    response
}

/// Reads an upload's body to the end, keeping nothing, within `max_request_bytes`, the stall
/// timeout and the request timeout.
async fn discard(request: Request<Incoming>, config: &TargetConfig) -> Response<Body> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if let Some(declared) = declared
        && let Err(err) = within(declared, config)
    {
        return err.into_response();
    }
    let mut body = request.into_body();
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut received: u64 = 0;
    // The current window of STALL_TIMEOUT, and what arrived in it.
    let mut window = Instant::now() + STALL_TIMEOUT;
    let mut in_window: u64 = 0;
    loop {
        let next = tokio::time::timeout_at(deadline.min(window), body.frame()).await;
        match next {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    received = received.saturating_add(data.len() as u64);
                    in_window = in_window.saturating_add(data.len() as u64);
                    if let Err(err) = within(received, config) {
                        return err.into_response();
                    }
                }
            }
            Ok(None) => break,
            // The client broke off: the connection is over anyway.
            Ok(Some(Err(_))) => {
                return HttpError::bad_request(format!(
                    "the upload ended after {received} bytes, before its end"
                ))
                .into_response();
            }
            Err(_) if Instant::now() >= deadline => {
                return HttpError {
                    status: StatusCode::REQUEST_TIMEOUT,
                    message: format!(
                        "the upload took longer than {}s ({received} bytes arrived)",
                        REQUEST_TIMEOUT.as_secs()
                    ),
                }
                .into_response();
            }
            Err(_) => {}
        }
        if Instant::now() >= window {
            if in_window < MIN_PROGRESS as u64 {
                return too_slow(received, in_window);
            }
            window = Instant::now() + STALL_TIMEOUT;
            in_window = 0;
        }
    }
    empty()
}

/// An upload that trickles: 408, and the connection closes with the answer.
fn too_slow(received: u64, in_window: u64) -> Response<Body> {
    HttpError {
        status: StatusCode::REQUEST_TIMEOUT,
        message: format!(
            "the upload sent {in_window} bytes in the last {}s ({received} in all), less than the {MIN_PROGRESS} this target needs in that time to keep a connection for it",
            STALL_TIMEOUT.as_secs()
        ),
    }
    .into_response()
}

/// A download's body: `left` bytes cut from the shared random block, ending early (which
/// closes the connection, so the client sees a truncated body) at the request timeout.
struct Random {
    left: u64,
    block: Bytes,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl HttpBody for Random {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the download outlived the target's request timeout",
            ))));
        }
        let take = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(self.block.len());
        self.left -= take as u64;
        Poll::Ready(Some(Ok(Frame::data(self.block.slice(..take)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TargetConfig {
        TargetConfig {
            max_connections: 8,
            max_request_bytes: 1000 * MIB,
        }
    }

    #[test]
    fn routes_take_php_suffixes_only_for_librespeed() {
        assert_eq!(Route::find("/garbage.php"), Some(Route::Garbage));
        assert_eq!(Route::find("/getIP"), Some(Route::GetIp));
        assert_eq!(Route::find("/empty.php"), Some(Route::Empty));
        assert_eq!(Route::find("/__down.php"), None);
        assert_eq!(Route::find("/backend/garbage"), None);
    }

    #[test]
    fn sizes_are_bounded_and_errors_name_the_parameter() {
        let config = config();
        assert_eq!(bytes_asked(Some("bytes=100"), &config), Ok(100));
        assert_eq!(bytes_asked(Some("x=1&bytes=0"), &config), Ok(0));
        assert_eq!(
            bytes_asked(None, &config).unwrap_err().message,
            "missing bytes: ask for /__down?bytes=N with N the bytes to send"
        );
        assert_eq!(
            bytes_asked(Some("bytes=-1"), &config).unwrap_err().message,
            "bytes must be a whole number from 0 to 1048576000, not \"-1\""
        );
        let too_many = bytes_asked(Some("bytes=1048576001"), &config).unwrap_err();
        assert_eq!(too_many.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(chunks_asked(None, &config), Ok(4 * MIB));
        assert_eq!(chunks_asked(Some("ckSize=100"), &config), Ok(100 * MIB));
        assert_eq!(
            chunks_asked(Some("ckSize=1001"), &config)
                .unwrap_err()
                .status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            chunks_asked(Some(&format!("ckSize={}", u64::MAX)), &config)
                .unwrap_err()
                .status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
