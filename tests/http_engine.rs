//! The HTTP engine end to end: `run-once --engine http` against small speed-test servers on
//! 127.0.0.1 (real TCP, never leaving loopback), correct ones and each kind of broken one.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{Env, command};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// How a test server behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// A correct Cloudflare-style server.
    Cloudflare,
    /// A correct LibreSpeed server, its paths with `.php` or not.
    Librespeed { php: bool },
    /// Downloads claim more bytes than they send, then the connection closes (hand-written
    /// HTTP: hyper's server would not send a head it cannot finish).
    Truncate,
    /// Every request: 429 with `Retry-After: 120`.
    TooMany,
    /// Downloads and uploads: 500 (the API's probes are answered).
    ServerError,
    /// A correct Cloudflare-style server except that uploads are answered with 500.
    UploadError,
    /// Downloads send one byte a second.
    Drip,
    /// A correct Cloudflare-style server that closes every connection after one answer
    /// (`Connection: close`), under the base path `/speed`.
    CloseEach,
    /// A Cloudflare-style server refusing downloads and uploads over 1 MB with 413 (an
    /// upload's before reading its body), as the target does over `--max-request-bytes`.
    Capped,
}

/// A speed-test server on 127.0.0.1, on a runtime of its own, stopped when dropped.
struct SpeedServer {
    address: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl SpeedServer {
    fn start(mode: Mode) -> SpeedServer {
        Self::start_with(mode, None)
    }

    fn start_with(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> SpeedServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen.clone();
                let tls = tls.clone();
                if mode == Mode::Truncate {
                    tokio::spawn(truncating(tcp, seen));
                    continue;
                }
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(mode, request, seen.clone())
                    });
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder.keep_alive(mode != Mode::CloseEach);
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        SpeedServer {
            address,
            requests,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

const MIB: u64 = 1 << 20;
/// The largest request [`Mode::Capped`] serves, in bytes.
const CAP: u64 = 1_000_000;

async fn answer(
    mode: Mode,
    request: Request<Incoming>,
    seen: Arc<Mutex<Vec<String>>>,
) -> Result<Response<TestBody>, Infallible> {
    let path = request.uri().path().to_owned();
    let path = match mode {
        Mode::CloseEach => path
            .strip_prefix("/speed")
            .unwrap_or("/not-under-the-base")
            .to_owned(),
        _ => path,
    };
    let query = request.uri().query().unwrap_or("").to_owned();
    seen.lock()
        .unwrap()
        .push(format!("{} {}", request.method(), request.uri()));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse::<u64>().ok())
    };
    match mode {
        Mode::TooMany => {
            return Ok(Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("retry-after", "120")
                .body(TestBody::bytes(0))
                .unwrap());
        }
        Mode::ServerError if query != "bytes=0" => {
            return Ok(Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(TestBody::bytes(0))
                .unwrap());
        }
        Mode::UploadError if path == "/__up" => {
            let _ = request.into_body().collect().await;
            return Ok(Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(TestBody::bytes(0))
                .unwrap());
        }
        _ => {}
    }
    let php = matches!(mode, Mode::Librespeed { php: true });
    let suffix = if php { ".php" } else { "" };
    let cloudflare = matches!(
        mode,
        Mode::Cloudflare
            | Mode::Truncate
            | Mode::Drip
            | Mode::ServerError
            | Mode::UploadError
            | Mode::CloseEach
            | Mode::Capped
    );
    let ok = |body: TestBody| {
        let mut response = Response::builder()
            .header("server-timing", "app;dur=0.1")
            .header("server", "test-speed");
        if cloudflare {
            response = response
                .header("cf-meta-colo", "TST")
                .header("cf-meta-asn", "64500")
                .header("cf-meta-ip", "192.0.2.9");
        }
        response.body(body).unwrap()
    };
    let not_found = || {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(TestBody::bytes(3))
            .unwrap()
    };
    let too_large = || {
        Response::builder()
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .body(TestBody::bytes(0))
            .unwrap()
    };
    if mode == Mode::Capped {
        let length = request
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        if param("bytes").unwrap_or(0) > CAP || length > CAP {
            return Ok(too_large());
        }
    }
    if cloudflare && path == "/__down" {
        let bytes = param("bytes").unwrap_or(0);
        let body = match mode {
            Mode::Truncate if bytes > 0 => TestBody::truncated(bytes),
            Mode::Drip if bytes > 0 => TestBody::drip(bytes),
            _ => TestBody::bytes(bytes),
        };
        return Ok(ok(body));
    }
    if cloudflare && path == "/__up" {
        let _ = request.into_body().collect().await;
        return Ok(ok(TestBody::bytes(0)));
    }
    if !cloudflare && path == format!("/garbage{suffix}") {
        let chunks = param("ckSize").unwrap_or(4).min(1024);
        return Ok(ok(TestBody::bytes(chunks * MIB)));
    }
    if !cloudflare && path == format!("/empty{suffix}") {
        let _ = request.into_body().collect().await;
        return Ok(ok(TestBody::bytes(0)));
    }
    if !cloudflare && path == format!("/getIP{suffix}") {
        let json =
            r#"{"processedString":"192.0.2.9 - Example Networks, ZZ (1 km)","rawIspInfo":""}"#;
        return Ok(Response::new(TestBody::text(json)));
    }
    Ok(not_found())
}

/// Serves one connection of [`Mode::Truncate`]: `__down?bytes=0` answered in full, keeping
/// the connection; a larger download's head says N bytes, half of them follow, then the
/// connection closes.
async fn truncating(mut tcp: tokio::net::TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end + 4);
        let line = head.lines().next().unwrap_or("").to_owned();
        let target = line.split(' ').nth(1).unwrap_or("").to_owned();
        seen.lock().unwrap().push(format!("GET {target}"));
        let bytes: u64 = target
            .strip_prefix("/__down?bytes=")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let head =
            format!("HTTP/1.1 200 OK\r\nServer: test-speed\r\nContent-Length: {bytes}\r\n\r\n");
        if tcp.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if bytes > 0 {
            let _ = tcp.write_all(&vec![0u8; (bytes / 2) as usize]).await;
            let _ = tcp.shutdown().await;
            return;
        }
    }
}

static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// A response body: `remaining` zero bytes (static slices, no copying), cut short, or dripped.
struct TestBody {
    remaining: u64,
    text: Option<Bytes>,
    /// End in an error after this many bytes (the connection is then closed).
    fail_after: Option<u64>,
    drip: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl TestBody {
    fn bytes(remaining: u64) -> TestBody {
        TestBody {
            remaining,
            text: None,
            fail_after: None,
            drip: None,
        }
    }

    fn text(text: &'static str) -> TestBody {
        TestBody {
            remaining: text.len() as u64,
            text: Some(Bytes::from_static(text.as_bytes())),
            fail_after: None,
            drip: None,
        }
    }

    fn truncated(remaining: u64) -> TestBody {
        TestBody {
            fail_after: Some(remaining / 2),
            ..TestBody::bytes(remaining)
        }
    }

    fn drip(remaining: u64) -> TestBody {
        TestBody {
            drip: Some(Box::pin(tokio::time::sleep(Duration::ZERO))),
            ..TestBody::bytes(remaining)
        }
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if let Some(text) = this.text.take() {
            this.remaining = 0;
            return Poll::Ready(Some(Ok(Frame::data(text))));
        }
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        if let Some(sleep) = &mut this.drip {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            sleep
                .as_mut()
                .reset(tokio::time::Instant::now() + Duration::from_secs(1));
            this.remaining -= 1;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..1])))));
        }
        let mut n = this.remaining.min(ZEROS.len() as u64);
        if let Some(left) = this.fail_after {
            if left == 0 {
                return Poll::Ready(Some(Err(std::io::Error::other("cut short on purpose"))));
            }
            n = n.min(left);
            this.fail_after = Some(left - n);
        }
        this.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &ZEROS[..n as usize],
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.text.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

use std::future::Future as _;

/// `run-once --engine http` against `url` for 2 s a direction, with `extra` flags: the exit
/// code and the sample.
fn run_once(env: &Env, url: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--http-duration", "2s"];
    args.extend_from_slice(extra);
    common::http_run_once(&env.db(), url, &args)
}

fn assert_success(sample: &Value, protocol: &str, streams: u64) {
    assert_eq!(sample["outcome"], "success", "{sample:#}");
    for field in [
        "download_bytes_per_second",
        "upload_bytes_per_second",
        "ping_seconds",
        "jitter_seconds",
        "download_latency_seconds",
        "upload_latency_seconds",
    ] {
        assert!(sample[field].as_f64().is_some(), "{field} in {sample:#}");
    }
    // Loopback moves far more than 10 Mbit/s, even in a debug build.
    assert!(
        sample["download_bytes_per_second"].as_f64().unwrap() > 1.25e6,
        "{sample:#}"
    );
    assert!(
        sample["upload_bytes_per_second"].as_f64().unwrap() > 1.25e6,
        "{sample:#}"
    );
    assert!(sample["ping_seconds"].as_f64().unwrap() < 0.5, "{sample:#}");
    // Everything moved is counted, ramp-up included: at least the bandwidth × 1.6 s measured.
    let down = sample["downloaded_bytes"].as_u64().unwrap() as f64;
    assert!(
        down >= sample["download_bytes_per_second"].as_f64().unwrap() * 1.5,
        "{sample:#}"
    );
    let up = sample["uploaded_bytes"].as_u64().unwrap() as f64;
    assert!(
        up >= sample["upload_bytes_per_second"].as_f64().unwrap() * 1.5,
        "{sample:#}"
    );
    assert_eq!(sample["engine"]["name"], "http");
    assert_eq!(sample["engine"]["protocol"], protocol);
    assert_eq!(sample["engine"]["streams"], streams);
    assert_eq!(sample["engine"]["duration_seconds"], 2.0);
    assert_eq!(sample["server"]["host"], "127.0.0.1");
    assert_eq!(sample["server"]["name"], "test-speed");
    assert!(sample.get("client").is_none(), "{sample:#}");
}

fn assert_failure(code: Option<i32>, sample: &Value, reason: &str, message: &str) {
    assert_eq!(code, Some(2), "{sample:#}");
    assert_eq!(sample["outcome"], "failure", "{sample:#}");
    assert_eq!(sample["reason"], reason, "{sample:#}");
    let text = sample["message"].as_str().unwrap();
    assert!(text.contains(message), "{text:?} lacks {message:?}");
    assert!(sample["download_bytes_per_second"].is_null(), "{sample:#}");
}

#[test]
fn cloudflare_with_one_and_four_streams() {
    let server = SpeedServer::start(Mode::Cloudflare);
    for streams in ["1", "4"] {
        let env = Env::new();
        let (code, sample) = run_once(&env, &server.url(), &["--http-streams", streams]);
        assert_eq!(code, Some(0), "{sample:#}");
        assert_success(&sample, "cloudflare", streams.parse().unwrap());
        assert_eq!(sample["server"]["location"], "TST");
        assert_eq!(sample["isp"], "AS64500");
    }
}

#[test]
fn librespeed_with_and_without_php() {
    for php in [false, true] {
        let server = SpeedServer::start(Mode::Librespeed { php });
        for streams in ["1", "4"] {
            let env = Env::new();
            let (code, sample) = run_once(&env, &server.url(), &["--http-streams", streams]);
            assert_eq!(code, Some(0), "{sample:#}");
            assert_success(&sample, "librespeed", streams.parse().unwrap());
            assert_eq!(sample["isp"], "Example Networks");
        }
        let requests = server.requests();
        let suffix = if php { ".php" } else { "" };
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with(&format!("GET /garbage{suffix}?ckSize=")))
        );
        assert!(requests.contains(&format!("POST /empty{suffix}")));
    }
}

#[test]
fn a_truncated_body_fails_the_run_and_counts_what_arrived() {
    let server = SpeedServer::start(Mode::Truncate);
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &["--http-streams", "1"]);
    assert_failure(
        code,
        &sample,
        "no_connectivity",
        "GET /__down?bytes=100000 to 127.0.0.1 was cut short: 50000 of 100000 bytes arrived before the connection closed",
    );
    // No figure, but the half that arrived moved all the same (for --data-budget); the upload
    // never started.
    assert_eq!(sample["downloaded_bytes"], 50_000, "{sample:#}");
    assert_eq!(sample["uploaded_bytes"], 0, "{sample:#}");
    // The API was detected before the failure, and the sample says so.
    assert_eq!(sample["engine"]["protocol"], "cloudflare");
}

#[test]
fn a_server_error_is_exit_naming_the_request() {
    let server = SpeedServer::start(Mode::ServerError);
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &["--http-streams", "1"]);
    assert_failure(
        code,
        &sample,
        "exit",
        "127.0.0.1 answered GET /__down?bytes=100000 with HTTP 500 Internal Server Error",
    );
    // The download started, though nothing of it moved: known to be 0, not unknown.
    assert_eq!(sample["downloaded_bytes"], 0, "{sample:#}");
    assert_eq!(sample["uploaded_bytes"], 0, "{sample:#}");
}

#[test]
fn a_failed_upload_after_a_download_counts_both_directions_bytes() {
    let server = SpeedServer::start(Mode::UploadError);
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &["--http-streams", "2"]);
    assert_failure(
        code,
        &sample,
        "exit",
        "127.0.0.1 answered POST /__up with HTTP 500 Internal Server Error",
    );
    // Two seconds of download on loopback, ramp-up included: far more than a megabyte, all
    // of it counted though the run failed. The upload's first bodies were read by the server
    // before it refused them: what the kernel says was acknowledged counts.
    let down = sample["downloaded_bytes"].as_u64().expect("bytes counted");
    assert!(down > 1_000_000, "{sample:#}");
    let up = sample["uploaded_bytes"].as_u64().expect("bytes counted");
    if cfg!(target_os = "linux") {
        assert!(up >= 100_000, "{sample:#}");
    }
    assert!(sample["upload_bytes_per_second"].is_null(), "{sample:#}");
    // Stored as printed: the budget sums what is stored.
    let db = env.db();
    let output = command(&["export", "--db", db.to_str().unwrap(), "--format", "jsonl"])
        .output()
        .unwrap();
    let stored: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(stored["downloaded_bytes"], down);
    assert_eq!(stored["uploaded_bytes"], up);
}

#[test]
fn a_dripping_server_is_too_little_data_not_a_slow_success() {
    let server = SpeedServer::start(Mode::Drip);
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &["--http-streams", "1"]);
    assert_failure(
        code,
        &sample,
        "no_connectivity",
        "download with 127.0.0.1 moved only ",
    );
    // The few bytes it dripped count.
    assert!(sample["downloaded_bytes"].as_u64().is_some(), "{sample:#}");
    assert!(
        sample["message"]
            .as_str()
            .unwrap()
            .contains("too little to measure"),
        "{sample:#}"
    );
}

#[test]
fn too_many_requests_is_rate_limited_until_retry_after() {
    let server = SpeedServer::start(Mode::TooMany);
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &[]);
    assert_failure(
        code,
        &sample,
        "rate_limited",
        "127.0.0.1 answered GET /__down?bytes=0 with HTTP 429 Too Many Requests; no test before ",
    );
    assert!(
        sample["message"]
            .as_str()
            .unwrap()
            .ends_with("(Retry-After)")
    );
    assert_eq!(server.requests(), ["GET /__down?bytes=0"]);
    // Refused before any transfer: nothing is known to have moved.
    assert!(sample["downloaded_bytes"].is_null(), "{sample:#}");
    assert!(sample["uploaded_bytes"].is_null(), "{sample:#}");
}

#[test]
fn after_a_429_the_next_run_sends_nothing_until_retry_after() {
    let server = SpeedServer::start(Mode::TooMany);
    let env = Env::new();
    let db = env.db();
    let url = server.url();
    let mut serve = common::command(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--engine",
        "http",
        "--http-server",
        &url,
        "--http-duration",
        "2s",
        "--start-delay",
        "1h",
        "--enable-run-endpoint",
        "--min-manual-gap",
        "0s",
    ]);
    serve.env("RUST_LOG", "info");
    let mut monitor = common::Server::start(serve);
    assert_eq!(
        common::request(&monitor.address, "POST", "/api/v1/run").status,
        202
    );
    monitor.wait_for_logs("test failed", 1);
    assert_eq!(server.requests(), ["GET /__down?bytes=0"]);
    assert_eq!(
        common::request(&monitor.address, "POST", "/api/v1/run").status,
        202
    );
    monitor.wait_for_logs("test failed", 2);
    // The second run sent nothing and says until when it waits.
    assert_eq!(server.requests(), ["GET /__down?bytes=0"]);
    let samples = monitor.get("/api/v1/samples").json();
    let latest = &samples["samples"][0];
    assert_eq!(latest["reason"], "rate_limited", "{samples:#}");
    let message = latest["message"].as_str().unwrap();
    assert!(
        message.starts_with("127.0.0.1 asked not to be tested before ")
            && message.ends_with(" (Retry-After of an HTTP 429); no request was sent"),
        "{message}"
    );
    monitor.assert_clean_exit();
}

#[test]
fn a_self_signed_certificate_fails_the_tls_handshake() {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key.into())
    .unwrap();
    let server = SpeedServer::start_with(Mode::Cloudflare, Some(Arc::new(config)));
    let env = Env::new();
    let url = format!("https://{}", server.address);
    let (code, sample) = run_once(&env, &url, &[]);
    assert_failure(
        code,
        &sample,
        "no_connectivity",
        "TLS handshake with 127.0.0.1 failed: invalid peer certificate: UnknownIssuer",
    );
    assert!(server.requests().is_empty());
}

#[test]
fn an_invalid_name_never_resolves_and_sends_no_query() {
    let env = Env::new();
    let (code, sample) = run_once(&env, "http://speed.invalid", &[]);
    assert_failure(
        code,
        &sample,
        "no_connectivity",
        "cannot resolve speed.invalid: names under .invalid never resolve (RFC 6761)",
    );
}

#[test]
fn a_refused_connection_names_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let env = Env::new();
    let (code, sample) = run_once(&env, &format!("http://{address}"), &[]);
    assert_failure(
        code,
        &sample,
        "no_connectivity",
        &format!("cannot connect to 127.0.0.1 ({address}): Connection refused"),
    );
}

#[test]
fn store_ip_keeps_the_addresses_the_server_reports() {
    let server = SpeedServer::start(Mode::Cloudflare);
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &["--http-streams", "1", "--store-ip"]);
    assert_eq!(code, Some(0), "{sample:#}");
    assert_eq!(sample["client"]["external_ip"], "192.0.2.9");
    assert_eq!(sample["client"]["internal_ip"], "127.0.0.1");
}

#[test]
fn measures_against_the_target_with_both_apis() {
    let mut target = common::Server::start(command(&["target"]));
    let url = format!("http://{}", target.address);
    for (protocol, streams) in [("cloudflare", "4"), ("librespeed", "1")] {
        let env = Env::new();
        let (code, sample) = run_once(
            &env,
            &url,
            &["--http-protocol", protocol, "--http-streams", streams],
        );
        assert_eq!(code, Some(0), "{sample:#}");
        assert_eq!(sample["outcome"], "success", "{sample:#}");
        assert_eq!(sample["engine"]["protocol"], protocol);
        assert!(
            sample["download_bytes_per_second"].as_f64().unwrap() > 1.25e6,
            "{sample:#}"
        );
        assert!(
            sample["upload_bytes_per_second"].as_f64().unwrap() > 1.25e6,
            "{sample:#}"
        );
        assert!(
            sample["download_latency_seconds"].as_f64().is_some(),
            "{sample:#}"
        );
        assert!(
            sample["server"]["name"]
                .as_str()
                .unwrap()
                .starts_with("internet-monitor-target/"),
            "{sample:#}"
        );
    }
    // Not told the API, the engine finds the target's first: Cloudflare-style.
    let env = Env::new();
    let (code, sample) = run_once(&env, &url, &["--http-streams", "2"]);
    assert_eq!(code, Some(0), "{sample:#}");
    assert_eq!(sample["engine"]["protocol"], "cloudflare");
    target.assert_clean_exit();
}

#[test]
fn figures_above_max_bandwidth_are_implausible() {
    let server = SpeedServer::start(Mode::Cloudflare);
    let env = Env::new();
    let (code, sample) = run_once(
        &env,
        &server.url(),
        &["--http-streams", "1", "--max-bandwidth", "1Mbit/s"],
    );
    assert_failure(
        code,
        &sample,
        "implausible",
        " B/s is above 1.0 Mbit/s (125000 B/s) (--max-bandwidth)",
    );
    // What moved counts, unless it is itself more than --max-bandwidth for an hour
    // (450 MB here, which loopback may exceed): then it is left out.
    if let Some(down) = sample["downloaded_bytes"].as_u64() {
        assert!(down > 0 && down <= 450_000_000, "{sample:#}");
    }
}

#[test]
fn a_server_that_closes_after_each_answer_under_a_base_path_still_measures() {
    let server = SpeedServer::start(Mode::CloseEach);
    let env = Env::new();
    let url = format!("{}/speed/", server.url());
    let (code, sample) = run_once(&env, &url, &["--http-streams", "2"]);
    assert_eq!(code, Some(0), "{sample:#}");
    assert_success(&sample, "cloudflare", 2);
    let requests = server.requests();
    assert!(
        requests.iter().all(|r| r.contains(" /speed/__")),
        "{requests:?}"
    );
    assert!(requests.iter().any(|r| r.starts_with("POST /speed/__up")));
}

#[test]
fn a_server_without_the_api_asked_for_is_exit_naming_what_was_tried() {
    let server = SpeedServer::start(Mode::Cloudflare);
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &["--http-protocol", "librespeed"]);
    assert_failure(
        code,
        &sample,
        "exit",
        "127.0.0.1 does not speak the librespeed API (--http-protocol): GET /empty answered 404 Not Found, GET /empty.php answered 404 Not Found",
    );
    assert_eq!(server.requests(), ["GET /empty", "GET /empty.php"]);
}

#[test]
fn a_server_without_either_api_is_exit_naming_what_was_tried() {
    // A web server that is no speed-test server: 404 for everything, one answer per connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let seen = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut lines = Vec::new();
        for _ in 0..3 {
            let (tcp, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(tcp.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            lines.push(line.trim().to_owned());
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
            }
            let mut tcp = tcp;
            tcp.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .unwrap();
        }
        lines
    });
    let env = Env::new();
    let (code, sample) = run_once(&env, &format!("http://{address}"), &[]);
    assert_failure(
        code,
        &sample,
        "exit",
        "127.0.0.1 speaks neither speed-test API: GET /__down?bytes=0 answered 404 Not Found, GET /empty answered 404 Not Found, GET /empty.php answered 404 Not Found",
    );
    assert_eq!(
        seen.join().unwrap(),
        [
            "GET /__down?bytes=0 HTTP/1.1",
            "GET /empty HTTP/1.1",
            "GET /empty.php HTTP/1.1"
        ]
    );
}

#[test]
fn a_server_capping_request_sizes_is_measured_with_smaller_requests() {
    let server = SpeedServer::start(Mode::Capped);
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &["--http-streams", "2"]);
    assert_eq!(code, Some(0), "{sample:#}");
    assert_success(&sample, "cloudflare", 2);
    let requests = server.requests();
    // Refused sizes were tried, then smaller ones served.
    let sizes: Vec<u64> = requests
        .iter()
        .filter_map(|r| r.strip_prefix("GET /__down?bytes=")?.parse().ok())
        .collect();
    assert!(sizes.iter().any(|&n| n > CAP), "{sizes:?}");
    let served = sizes.iter().filter(|&&n| n > 0 && n <= CAP).count();
    assert!(served > 10, "{sizes:?}");
}

#[test]
fn measures_against_a_target_that_caps_request_sizes() {
    let mut target = common::Server::start(command(&["target", "--max-request-bytes", "1MiB"]));
    let url = format!("http://{}", target.address);
    for protocol in ["cloudflare", "librespeed"] {
        let env = Env::new();
        let (code, sample) = run_once(
            &env,
            &url,
            &["--http-protocol", protocol, "--http-streams", "2"],
        );
        // The smallest cap the target takes is one LibreSpeed chunk, so both APIs measure.
        assert_eq!(code, Some(0), "{sample:#}");
        assert!(
            sample["download_bytes_per_second"].as_f64().unwrap() > 1.25e6,
            "{sample:#}"
        );
        assert!(
            sample["upload_bytes_per_second"].as_f64().unwrap() > 1.25e6,
            "{sample:#}"
        );
    }
    target.assert_clean_exit();
}
