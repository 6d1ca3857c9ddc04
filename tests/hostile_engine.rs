//! The HTTP engine against servers that lie: `run-once --engine http` against small
//! Cloudflare- or LibreSpeed-style servers on 127.0.0.1 whose answers are correct HTTP but
//! whose claims (timings, text about themselves) are not to be trusted.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use common::{Env, command};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// What a lying server says; everything else it answers correctly.
#[derive(Clone, Debug, Default)]
struct Lies {
    /// The `Server-Timing` value of every answer.
    server_timing: Option<&'static str>,
    /// Speaks LibreSpeed (no `.php`) with this `getIP` body, instead of Cloudflare's API.
    get_ip: Option<&'static str>,
    /// Answers every request, whatever its path, with this page (a web site with one page for
    /// every path, a captive portal).
    page: Option<&'static str>,
}

/// A speed-test server on 127.0.0.1, on a runtime of its own, stopped when dropped.
struct LyingServer {
    address: std::net::SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl LyingServer {
    fn start(lies: Lies) -> LyingServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let lies = Arc::new(lies);
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let lies = lies.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| answer(lies.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        LyingServer {
            address,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

const MIB: usize = 1 << 20;

async fn answer(
    lies: Arc<Lies>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse::<usize>().ok())
    };
    let _ = request.into_body().collect().await;
    let mut response = Response::builder();
    if let Some(timing) = lies.server_timing {
        response = response.header("server-timing", timing);
    }
    if let Some(page) = lies.page {
        return Ok(response.body(Full::new(Bytes::from(page))).unwrap());
    }
    let body = match (lies.get_ip, path.as_str()) {
        (None, "/__down") => vec![7u8; param("bytes").unwrap_or(0)],
        (None, "/__up") | (Some(_), "/empty") => Vec::new(),
        (Some(_), "/garbage") => vec![7u8; param("ckSize").unwrap_or(4).min(64) * MIB],
        (Some(get_ip), "/getIP") => get_ip.as_bytes().to_vec(),
        _ => {
            return Ok(Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Full::new(Bytes::new()))
                .unwrap());
        }
    };
    Ok(response.body(Full::new(Bytes::from(body))).unwrap())
}

/// `run-once --engine http` against `url` for 1 s a direction, 1 stream: the exit code and the
/// sample.
fn run_once(env: &Env, url: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--http-duration", "1s", "--http-streams", "1"];
    args.extend_from_slice(extra);
    common::http_run_once(&env.db(), url, &args)
}

#[test]
fn a_server_time_longer_than_the_round_trip_does_not_make_latency_zero() {
    // A minute of server time in answers that take well under a second: impossible, so it is
    // ignored and the latencies are the round trips, not 0.
    for timing in ["app;dur=60000", "app;dur=1e308"] {
        let server = LyingServer::start(Lies {
            server_timing: Some(timing),
            ..Lies::default()
        });
        let env = Env::new();
        let (code, sample) = run_once(&env, &server.url(), &[]);
        assert_eq!(code, Some(0), "{sample:#}");
        assert_eq!(sample["outcome"], "success", "{sample:#}");
        for field in [
            "ping_seconds",
            "download_latency_seconds",
            "upload_latency_seconds",
        ] {
            let latency = sample[field].as_f64().unwrap();
            assert!(latency > 0.0 && latency < 1.0, "{field} in {sample:#}");
        }
    }
}

#[test]
fn control_characters_in_what_a_server_says_are_not_stored() {
    // A getIP answer whose address and ISP carry a terminal's escape sequences and line
    // breaks, as a log line or a CSV row would show them.
    let server = LyingServer::start(Lies {
        get_ip: Some(
            r#"{"processedString":"192.0.2.9\u001b[2J - Evil\u001b[31m ISP\nINFO forged line\r\n, ZZ (1 km)","rawIspInfo":""}"#,
        ),
        ..Lies::default()
    });
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &["--store-ip"]);
    assert_eq!(code, Some(0), "{sample:#}");
    assert_eq!(sample["engine"]["protocol"], "librespeed", "{sample:#}");
    assert_eq!(
        sample["isp"], "Evil [31m ISP INFO forged line",
        "{sample:#}"
    );
    assert_eq!(
        sample["client"]["external_ip"], "192.0.2.9 [2J",
        "{sample:#}"
    );
    let db = env.db();
    let output = command(&["export", "--format", "csv", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let csv = String::from_utf8(output.stdout).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(!csv.contains('\u{1b}'), "{csv}");
}

#[test]
fn a_server_answering_every_path_with_one_page_is_no_speed_test_server() {
    // Every path answered 200 with the same page: bytes move, but fetching a small page again
    // and again measures nothing the sample's figures claim.
    let page: &'static str = Box::leak("<html>welcome</html>".repeat(2_500).into_boxed_str());
    let server = LyingServer::start(Lies {
        page: Some(page),
        ..Lies::default()
    });
    let env = Env::new();
    let (code, sample) = run_once(&env, &server.url(), &[]);
    assert_eq!(code, Some(2), "{sample:#}");
    assert_eq!(sample["reason"], "exit", "{sample:#}");
    assert_eq!(
        sample["message"],
        "127.0.0.1 speaks neither speed-test API: GET /__down?bytes=0 answered 50000 bytes where the API answers none, GET /empty answered 50000 bytes where the API answers none, GET /empty.php answered 50000 bytes where the API answers none"
    );
    // Told the API, the first download is short of what it asked for.
    let (code, sample) = run_once(&env, &server.url(), &["--http-protocol", "cloudflare"]);
    assert_eq!(code, Some(2), "{sample:#}");
    assert_eq!(sample["reason"], "exit", "{sample:#}");
    assert_eq!(
        sample["message"],
        "GET /__down?bytes=100000 to 127.0.0.1 answered 50000 bytes, not the 100000 asked for: not a speed-test server of that API"
    );
    assert!(sample["download_bytes_per_second"].is_null(), "{sample:#}");
}

/// A server that answers uploads without reading them is no speed-test server: what the path
/// carried of each upload measured its socket buffers filling, not an upload. The run fails
/// and no upload figure is stored: `exit` when the answer comes while the body is still being
/// handed over, `no_connectivity` when the unread body stalls the stream first.
#[test]
fn an_upload_answered_unread_is_no_measurement() {
    let address = raw_server(|first, writer| {
        use std::io::Write;
        if first.starts_with("POST /__up ") {
            // Answered at once; the body is never read, the connection kept open.
            let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            return Step::Hold;
        }
        let bytes: usize = first
            .split_once("bytes=")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let _ = writer
            .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {bytes}\r\n\r\n").as_bytes());
        let _ = writer.write_all(&vec![7u8; bytes]);
        Step::Next
    });
    let env = Env::new();
    let (code, sample) = run_once(&env, &format!("http://{address}"), &[]);
    assert_eq!(code, Some(2), "{sample:#}");
    let message = sample["message"].as_str().unwrap();
    match sample["reason"].as_str() {
        Some("exit") => assert!(
            message.starts_with("POST /__up to 127.0.0.1 was answered after ")
                && message.ends_with(
                    "the server did not read the upload, so it is not a speed-test server of that API"
                ),
            "{message}"
        ),
        Some("no_connectivity") => assert!(
            message.starts_with("upload with 127.0.0.1 moved only "),
            "{message}"
        ),
        other => panic!("reason {other:?}: {sample:#}"),
    }
    assert!(sample["upload_bytes_per_second"].is_null(), "{sample:#}");
}

/// What a raw server does after answering a request.
enum Step {
    /// Read the next request on the connection.
    Next,
    /// Read nothing more, keep the connection open until the client closes it.
    Hold,
    /// Close the connection.
    Close,
}

/// A hand-written HTTP/1.1 server on 127.0.0.1: `answer` gets each request's first line and
/// the connection to write to.
fn raw_server(
    answer: impl Fn(&str, &mut std::net::TcpStream) -> Step + Send + Sync + Copy + 'static,
) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut first = String::new();
                    if reader.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 2 {
                        line.clear();
                    }
                    match answer(&first, &mut writer) {
                        Step::Next => {}
                        Step::Close => return,
                        Step::Hold => {
                            // Read nothing more; the connection stays open until the test
                            // process ends.
                            std::thread::park_timeout(std::time::Duration::from_secs(120));
                            return;
                        }
                    }
                }
            });
        }
    });
    address
}

/// A server that breaks HTTP itself (a chunk size no decoder can read) ends the run as `exit`,
/// the server's fault, not `no_connectivity`, which would count against the line.
#[test]
fn an_answer_that_is_not_http_is_the_servers_fault() {
    let address = raw_server(|first, writer| {
        use std::io::Write;
        if first.starts_with("GET /__down?bytes=0 ") {
            let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            return Step::Next;
        }
        let _ = writer.write_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFF\r\n",
        );
        Step::Close
    });
    let env = Env::new();
    let (code, sample) = run_once(&env, &format!("http://{address}"), &[]);
    assert_eq!(code, Some(2), "{sample:#}");
    assert_eq!(sample["reason"], "exit", "{sample:#}");
    let message = sample["message"].as_str().unwrap();
    assert!(
        message.contains("to 127.0.0.1 got an answer that is not valid HTTP/1.1"),
        "{message}"
    );
}
