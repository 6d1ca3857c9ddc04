//! The HTTP engine end to end: `run-once --engine http` against small speed-test servers on
//! 127.0.0.1 (real TCP, never leaving loopback), correct ones and each kind of broken one.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Downloads claim more bytes than they send, then the connection closes.
    Truncate,
    /// Every request: 429 with `Retry-After: 120`.
    TooMany,
    /// Every request: 500.
    ServerError,
    /// Downloads send one byte a second.
    Drip,
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
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(mode, request, seen.clone())
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
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

async fn answer(
    mode: Mode,
    request: Request<Incoming>,
    seen: Arc<Mutex<Vec<String>>>,
) -> Result<Response<TestBody>, Infallible> {
    let path = request.uri().path().to_owned();
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
        Mode::ServerError => {
            return Ok(Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(TestBody::bytes(0))
                .unwrap());
        }
        _ => {}
    }
    let php = matches!(mode, Mode::Librespeed { php: true });
    let suffix = if php { ".php" } else { "" };
    let cloudflare = matches!(mode, Mode::Cloudflare | Mode::Truncate | Mode::Drip);
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

/// `run-once --engine http` against `url`, with `extra` flags: the exit code and the sample.
fn run_once(env: &Env, url: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let db = env.db();
    let mut args = vec![
        "run-once",
        "--db",
        db.to_str().unwrap(),
        "--engine",
        "http",
        "--http-server",
        url,
        "--http-duration",
        "2s",
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    let output = command(&args).output().expect("run run-once");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let sample = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!("run-once printed no sample ({err}): stdout {stdout:?}, stderr {stderr}")
    });
    (output.status.code(), sample)
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
