//! `serve --remote-write.url`: every stored run pushed with its own time, through receiver
//! errors, a refused sample, a restart with a full outbox and a real Prometheus stopped and
//! started again. The receivers listen on loopback only.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Env, PATIENCE, Prometheus, Server, request};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use internet_monitor::push::proto;

const FIXTURE: &str = "ok-1.2-with-loaded-latency";
/// The fixture's public address, which must never leave in a label.
const PUBLIC_IP: &str = "203.0.113.3";

/// How the fake receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// 204, except for the poisoned sample.
    Accept,
    /// 500 to everything.
    Down,
    /// Reads the request and never answers.
    Hang,
    /// 401 to everything (a wrong password).
    Unauthorized,
}

/// Which sample the receiver refuses with a 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Poison {
    Off,
    /// The third oldest sample of the next accepted request holding at least three.
    Armed,
    /// Any request holding this time (ms) is refused.
    At(i64),
}

/// One request as the receiver saw it.
#[derive(Debug)]
struct Seen {
    at: Instant,
    status: u16,
    /// The distinct sample times of the request, in ms, oldest first.
    times: Vec<i64>,
    headers: hyper::HeaderMap,
}

/// What the receiver was sent and how it answers next.
#[derive(Debug)]
struct Book {
    mode: Mode,
    /// Answer the next request 429 with this `Retry-After` (seconds), once.
    throttle_once: Option<u64>,
    poison: Poison,
    requests: Vec<Seen>,
    /// The accepted points: (series as `name{labels}`, time in ms) -> its value, once per
    /// delivery (a point delivered twice has two values).
    points: BTreeMap<(String, i64), Vec<f64>>,
    /// Every label pair seen.
    labels: Vec<(String, String)>,
    /// Series whose points came out of time order.
    disorder: Vec<String>,
}

impl Book {
    fn new(mode: Mode) -> Self {
        Book {
            mode,
            throttle_once: None,
            poison: Poison::Off,
            requests: Vec::new(),
            points: BTreeMap::new(),
            labels: Vec::new(),
            disorder: Vec::new(),
        }
    }

    fn answered(&self, status: u16) -> usize {
        self.requests.iter().filter(|r| r.status == status).count()
    }

    /// The distinct times of the accepted `speedtest_up` points.
    fn up_times(&self) -> Vec<i64> {
        self.points
            .keys()
            .filter(|(series, _)| series.starts_with("speedtest_up{"))
            .map(|(_, time)| *time)
            .collect()
    }

    /// The accepted value of `name` (any labels) at `time`, once delivered.
    fn value(&self, name: &str, time: i64) -> Option<f64> {
        let prefix = format!("{name}{{");
        let found: Vec<&Vec<f64>> = self
            .points
            .iter()
            .filter(|((series, at), _)| series.starts_with(&prefix) && *at == time)
            .map(|(_, values)| values)
            .collect();
        assert!(found.len() <= 1, "{name} at {time}: {} series", found.len());
        let values = found.first()?;
        assert_eq!(values.len(), 1, "{name} at {time} delivered {values:?}");
        Some(values[0])
    }

    /// Takes a decoded request in: the status to answer.
    fn take(
        &mut self,
        request: &proto::WriteRequest,
        headers: hyper::HeaderMap,
    ) -> (u16, Option<u64>) {
        let mut times: Vec<i64> = request
            .timeseries
            .iter()
            .flat_map(|series| series.samples.iter().map(|sample| sample.timestamp))
            .collect();
        times.sort_unstable();
        times.dedup();
        let (status, retry_after) = if let Some(seconds) = self.throttle_once.take() {
            (429, Some(seconds))
        } else {
            match self.mode {
                Mode::Down => (500, None),
                Mode::Hang => (0, None),
                Mode::Unauthorized => (401, None),
                Mode::Accept => {
                    if self.poison == Poison::Armed && times.len() >= 3 {
                        self.poison = Poison::At(times[2]);
                    }
                    match self.poison {
                        Poison::At(bad) if times.contains(&bad) => (400, None),
                        _ => (204, None),
                    }
                }
            }
        };
        if status == 204 {
            for series in &request.timeseries {
                let name = series
                    .labels
                    .iter()
                    .find(|label| label.name == "__name__")
                    .map(|label| label.value.clone())
                    .unwrap_or_default();
                let labels: Vec<String> = series
                    .labels
                    .iter()
                    .filter(|label| label.name != "__name__")
                    .map(|label| format!("{}={:?}", label.name, label.value))
                    .collect();
                let key = format!("{name}{{{}}}", labels.join(","));
                let mut last = i64::MIN;
                for sample in &series.samples {
                    if sample.timestamp <= last {
                        self.disorder.push(key.clone());
                    }
                    last = sample.timestamp;
                    self.points
                        .entry((key.clone(), sample.timestamp))
                        .or_default()
                        .push(sample.value);
                }
                for label in &series.labels {
                    self.labels.push((label.name.clone(), label.value.clone()));
                }
            }
        }
        self.requests.push(Seen {
            at: Instant::now(),
            status,
            times,
            headers,
        });
        (status, retry_after)
    }
}

/// A remote_write receiver on loopback (hyper, decoding with `proto::decode`).
struct Receiver {
    address: SocketAddr,
    book: Arc<Mutex<Book>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(mode: Mode) -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().unwrap(), mode)
    }

    fn start_on(address: SocketAddr, mode: Mode) -> Receiver {
        let listener = std::net::TcpListener::bind(address).expect("bind the receiver");
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let book = Arc::new(Mutex::new(Book::new(mode)));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = book.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let book = shared.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |request| {
                                answer(book.clone(), request)
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Receiver {
            address,
            book,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.address)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Book) -> T) -> T {
        f(&mut self.book.lock().unwrap())
    }

    /// Polls until `done` holds of the book, failing after [`PATIENCE`].
    fn wait(&self, what: &str, done: impl Fn(&Book) -> bool) {
        if common::poll_within(PATIENCE, || self.with(|book| done(book)).then_some(())).is_none() {
            panic!(
                "the receiver never saw {what}: {:#?}",
                self.with(|book| book
                    .requests
                    .iter()
                    .map(|r| (r.status, r.times.clone()))
                    .collect::<Vec<_>>())
            );
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn answer(
    book: Arc<Mutex<Book>>,
    request: Request<Incoming>,
) -> Result<Response<String>, std::convert::Infallible> {
    let headers = request.headers().clone();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status(400, "unreadable body")),
    };
    let decoded = match proto::decode(&body) {
        Ok(decoded) => decoded,
        Err(err) => return Ok(status(400, &format!("cannot decode: {err}"))),
    };
    let (code, retry_after) = book.lock().unwrap().take(&decoded, headers);
    if code == 0 {
        return std::future::pending().await;
    }
    let mut response = status(code, if code == 400 { "out of bounds" } else { "" });
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    Ok(response)
}

fn status(code: u16, body: &str) -> Response<String> {
    let mut response = Response::new(body.to_owned());
    *response.status_mut() = StatusCode::from_u16(code).unwrap();
    response
}

/// `serve` with runs only on request (`POST /api/v1/run`), pushing to `url`.
fn serve(env: &Env, url: &str, extra: &[&str]) -> Server {
    Server::start(serve_command(env, url, extra))
}

/// The command [`serve`] starts.
fn serve_command(env: &Env, url: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "--interval",
        "1h",
        "--start-delay",
        "1h",
        "--enable-run-endpoint",
        "--min-manual-gap",
        "0s",
        "--remote-write.url",
        url,
    ];
    args.extend_from_slice(extra);
    let mut command = env.serve(FIXTURE, "replay", &args);
    command.env("RUST_LOG", "info");
    command
}

/// Starts a run and waits until it is stored: the `count`-th "test succeeded" line.
fn run(server: &mut Server, count: usize) {
    let started = request(&server.address, "POST", "/api/v1/run");
    assert_eq!(started.status, 202, "{}", started.body);
    server.wait_for_logs("test succeeded", count);
}

/// The value of the metric line `name` (with its labels as rendered), if shown.
fn metric(server: &Server, name: &str) -> Option<f64> {
    let text = server.get("/metrics").body;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `/metrics` until `name` shows `value`.
fn wait_metric(server: &Server, name: &str, value: f64) {
    if common::poll_within(PATIENCE, || {
        (metric(server, name) == Some(value)).then_some(())
    })
    .is_none()
    {
        panic!("{name} is {:?}, never {value}", metric(server, name));
    }
}

/// The stored samples (newest first) as `/api/v1/samples` has them.
fn stored(server: &Server) -> Vec<serde_json::Value> {
    let body = server.get("/api/v1/samples?limit=1000").json();
    body["samples"].as_array().expect("samples").clone()
}

/// A stored sample's time in ms.
fn millis(sample: &serde_json::Value) -> i64 {
    let text = sample["time"].as_str().expect("a time");
    let time: internet_monitor::time::Timestamp = text.parse().expect("an RFC 3339 time");
    i64::try_from(time.as_millis()).unwrap()
}

const PENDING: &str = "internet_monitor_remote_write_pending_samples";
const SENT: &str = r#"internet_monitor_remote_write_samples_total{result="sent"}"#;

#[test]
fn every_run_arrives_once_with_its_own_time_through_errors_and_a_refusal() {
    let receiver = Receiver::start(Mode::Down);
    receiver.with(|book| {
        book.throttle_once = Some(2);
        book.poison = Poison::Armed;
    });
    let env = Env::new();
    let mut server = serve(&env, &receiver.url(), &["--remote-write.label", "site=lab"]);
    // The start-up line shows the labels every series gets, so a site can check its name.
    let line = server.wait_for_log("pushing every stored run");
    assert!(
        line.contains(r#"{site="lab",job="internet-monitor"}"#),
        "{line}"
    );
    const RUNS: usize = 6;
    for count in 1..=RUNS {
        run(&mut server, count);
    }
    // The first push was throttled, the next ones fail: everything waits in the outbox.
    wait_metric(&server, PENDING, RUNS as f64);
    assert!(
        metric(
            &server,
            "internet_monitor_remote_write_oldest_pending_age_seconds"
        )
        .is_some()
    );
    receiver.wait("a 500", |book| book.answered(500) >= 1);
    receiver.with(|book| book.mode = Mode::Accept);
    wait_metric(&server, PENDING, 0.0);
    assert_eq!(
        metric(
            &server,
            "internet_monitor_remote_write_oldest_pending_age_seconds"
        ),
        None,
        "no age while nothing waits"
    );

    let samples = stored(&server);
    assert_eq!(samples.len(), RUNS);
    let poisoned = receiver.with(|book| match book.poison {
        Poison::At(time) => time,
        other => panic!("the receiver refused nothing: {other:?}"),
    });
    receiver.with(|book| {
        // Retry-After: 2 was obeyed (without it the first wait is at most 1.2 s).
        let throttled = book
            .requests
            .iter()
            .position(|r| r.status == 429)
            .expect("a 429");
        let next = &book.requests[throttled + 1];
        assert!(
            next.at.duration_since(book.requests[throttled].at) >= Duration::from_secs(2),
            "the push after the 429 came too early"
        );
        // The refused batch was split: the poisoned sample was pushed alone and refused.
        assert_eq!(book.answered(400), 2, "the batch, then the sample alone");
        let lone = book
            .requests
            .iter()
            .rev()
            .find(|r| r.status == 400)
            .unwrap();
        assert_eq!(lone.times, [poisoned]);
        for seen in &book.requests {
            let header = |name: &str| {
                seen.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
            };
            assert_eq!(header("content-encoding"), "snappy");
            assert_eq!(header("content-type"), "application/x-protobuf");
            assert_eq!(header("x-prometheus-remote-write-version"), "0.1.0");
            assert!(header("user-agent").starts_with("internet-monitor/"));
        }
        // Every run but the refused one arrived once, at its own time, with the stored values.
        let mut expected: Vec<i64> = samples
            .iter()
            .map(millis)
            .filter(|&t| t != poisoned)
            .collect();
        expected.sort_unstable();
        assert_eq!(book.up_times(), expected);
        for sample in &samples {
            let time = millis(sample);
            if time == poisoned {
                assert_eq!(book.value("speedtest_up", time), None);
                continue;
            }
            assert_eq!(book.value("speedtest_up", time), Some(1.0));
            for (name, field) in [
                (
                    "speedtest_download_bytes_per_second",
                    "download_bytes_per_second",
                ),
                (
                    "speedtest_upload_bytes_per_second",
                    "upload_bytes_per_second",
                ),
                ("speedtest_ping_latency_seconds", "ping_seconds"),
                ("speedtest_run_duration_seconds", "duration_seconds"),
            ] {
                assert_eq!(
                    book.value(name, time),
                    sample[field].as_f64(),
                    "{name} at {time}"
                );
            }
        }
        assert_eq!(
            book.disorder,
            Vec::<String>::new(),
            "points out of time order"
        );
        assert!(book.labels.contains(&("site".into(), "lab".into())));
        assert!(
            book.labels
                .contains(&("job".into(), "internet-monitor".into()))
        );
        assert!(
            book.labels
                .iter()
                .all(|(_, value)| !value.contains(PUBLIC_IP)),
            "the public IP left in a label"
        );
    });
    let sent = (RUNS - 1) as f64;
    for (line, value) in [
        (
            r#"internet_monitor_remote_write_samples_total{result="sent"}"#,
            sent,
        ),
        (
            r#"internet_monitor_remote_write_samples_total{result="rejected"}"#,
            1.0,
        ),
        (
            r#"internet_monitor_remote_write_samples_total{result="expired"}"#,
            0.0,
        ),
        (
            r#"internet_monitor_remote_write_requests_total{result="rejected"}"#,
            2.0,
        ),
        (
            r#"internet_monitor_remote_write_requests_total{result="success"}"#,
            sent,
        ),
    ] {
        assert_eq!(metric(&server, line), Some(value), "{line}");
    }
    let retried = metric(
        &server,
        r#"internet_monitor_remote_write_requests_total{result="retried"}"#,
    );
    assert!(
        retried.is_some_and(|n| n >= 2.0),
        "the 429 and the 500s: {retried:?}"
    );
    let line = server.wait_for_log("refused the sample");
    // The receiver's "out of bounds" comes with the setting that would have taken the sample.
    assert!(line.contains("out_of_order_time_window"), "{line}");
    server.assert_clean_exit();
}

#[test]
fn a_restart_with_a_full_outbox_delivers_everything_once() {
    // A port where nothing listens yet: connections are refused.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap();
    let url = format!("http://{address}/api/v1/write");
    let env = Env::new();
    let mut server = serve(&env, &url, &[]);
    const RUNS: usize = 4;
    for count in 1..=RUNS {
        run(&mut server, count);
    }
    server.wait_for_log("remote_write push failed");
    wait_metric(&server, PENDING, RUNS as f64);
    let times: Vec<i64> = stored(&server).iter().map(millis).collect();
    server.assert_clean_exit();

    // Without the URL nothing is pushed, and one line says what waits.
    let mut command = env.serve(
        FIXTURE,
        "replay",
        &["--interval", "1h", "--start-delay", "1h"],
    );
    command.env("RUST_LOG", "info");
    let mut without = Server::start(command);
    without.wait_for_log(&format!(
        "{RUNS} samples wait in the outbox for --remote-write.url"
    ));
    assert_eq!(
        metric(&without, PENDING),
        None,
        "no remote_write series without the URL"
    );
    without.assert_clean_exit();

    // A receiver that takes the request and never answers: a stop abandons the push in
    // flight (SIGTERM ends the process within PATIENCE, not after --remote-write.timeout).
    let hanging = Receiver::start_on(address, Mode::Hang);
    let mut server = serve(&env, &url, &["--remote-write.timeout", "1h"]);
    hanging.wait("the push", |book| !book.requests.is_empty());
    server.assert_clean_exit();
    drop(hanging);

    // A wrong password first: 401 refuses every request, so nothing is dropped.
    let receiver = Receiver::start_on(address, Mode::Unauthorized);
    let mut server = serve(&env, &url, &[]);
    receiver.wait("a 401", |book| book.answered(401) >= 1);
    assert_eq!(metric(&server, PENDING), Some(RUNS as f64));
    // The log says what to fix, not only the status.
    let line = server.wait_for_log("401 Unauthorized");
    assert!(
        line.contains("--remote-write.basic-auth-password-file"),
        "{line}"
    );
    receiver.with(|book| book.mode = Mode::Accept);
    wait_metric(&server, PENDING, 0.0);
    let mut expected = times.clone();
    expected.sort_unstable();
    receiver.with(|book| {
        assert_eq!(book.up_times(), expected);
        // Every point of every series exactly once.
        for ((series, time), values) in &book.points {
            assert_eq!(values.len(), 1, "{series} at {time}: {values:?}");
        }
        assert_eq!(book.answered(204), 1, "one batch: {:?}", book.requests);
        assert_eq!(book.answered(400), 0);
        assert_eq!(
            book.disorder,
            Vec::<String>::new(),
            "points out of time order"
        );
    });
    assert_eq!(metric(&server, SENT), Some(RUNS as f64));
    assert_eq!(
        metric(
            &server,
            r#"internet_monitor_remote_write_samples_total{result="rejected"}"#
        ),
        Some(0.0)
    );
    // A new run goes out on its own.
    run(&mut server, 1);
    receiver.wait("the new run", |book| book.up_times().len() == RUNS + 1);
    server.assert_clean_exit();
}

#[test]
fn bad_remote_write_flags_are_refused_naming_the_flag() {
    let env = Env::new();
    let db = env.db();
    let db = db.to_str().unwrap();
    let missing = env.path("absent-token");
    let missing = missing.to_str().unwrap();
    // Readable but empty (`printf '%s' "$UNSET" > file`): every push would fail.
    let empty = env.path("empty-secret");
    std::fs::write(&empty, " \n").unwrap();
    let empty = empty.to_str().unwrap();
    for (flags, words) in [
        (vec!["--remote-write.url", "ftp://x/"], "--remote-write.url"),
        (
            vec![
                "--remote-write.url",
                "http://127.0.0.1:9/",
                "--remote-write.bearer-token-file",
                missing,
            ],
            "--remote-write.bearer-token-file",
        ),
        (
            vec![
                "--remote-write.url",
                "http://127.0.0.1:9/",
                "--remote-write.label",
                "__name__=x",
            ],
            "--remote-write.label",
        ),
        (vec!["--remote-write.label", "site=x"], "--remote-write.url"),
        (
            vec![
                "--remote-write.url",
                "http://127.0.0.1:9/",
                "--remote-write.bearer-token-file",
                empty,
            ],
            "--remote-write.bearer-token-file",
        ),
        (
            vec![
                "--remote-write.url",
                "http://127.0.0.1:9/",
                "--remote-write.basic-auth-username",
                "push",
                "--remote-write.basic-auth-password-file",
                empty,
            ],
            "--remote-write.basic-auth-password-file",
        ),
    ] {
        let mut args = vec!["serve", "--db", db, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(&flags);
        let output = common::command(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?} was accepted");
        assert!(stderr.contains(words), "{flags:?}: {stderr}");
    }
    assert!(!env.db().exists(), "a refused start creates no database");
}

/// `text` percent-encoded for a URL's query string (every byte but the unreserved ones).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The result of an instant query of `expr` at `time` (s, None: now), which must succeed.
fn query(prometheus: &str, expr: &str, time: Option<f64>) -> serde_json::Value {
    let mut path = format!("/api/v1/query?query={}", encode(expr));
    if let Some(time) = time {
        path.push_str(&format!("&time={time:.3}"));
    }
    let response = request(prometheus, "GET", &path);
    assert_eq!(response.status, 200, "{path}: {}", response.body);
    let body = response.json();
    assert_eq!(body["status"], "success", "{path}: {body}");
    body["data"]["result"].clone()
}

/// The single value of an instant query's vector, as a number.
fn single(result: &serde_json::Value) -> f64 {
    let vector = result.as_array().expect("a vector");
    assert_eq!(vector.len(), 1, "{result}");
    vector[0]["value"][1].as_str().unwrap().parse().unwrap()
}

/// A real Prometheus taking remote_write (out-of-order window 1 h), its files in `env`.
struct Receiving {
    prometheus: Prometheus,
    config: std::path::PathBuf,
    data: std::path::PathBuf,
    address: String,
    url: String,
}

/// The flag that makes Prometheus a remote_write receiver.
const RECEIVER: [&str; 1] = ["--web.enable-remote-write-receiver"];

impl Receiving {
    fn start(env: &Env) -> Receiving {
        let config = env.path("prometheus.yml");
        std::fs::write(
            &config,
            "global: {scrape_interval: 1h, evaluation_interval: 1h}\n\
             storage:\n  tsdb:\n    out_of_order_time_window: 1h\n",
        )
        .unwrap();
        let data = env.path("tsdb");
        let mut prometheus = Prometheus::start_with(&config, &data, &RECEIVER);
        prometheus.wait_ready();
        let address = prometheus.address.clone();
        let url = format!("http://{address}/api/v1/write");
        Receiving {
            prometheus,
            config,
            data,
            address,
            url,
        }
    }
}

#[test]
#[ignore = "needs a Prometheus server (Debian package prometheus); .ci/run installs it and runs the ignored tests"]
fn a_real_prometheus_stopped_and_started_again_holds_every_run_once() {
    let env = Env::new();
    let Receiving {
        mut prometheus,
        config,
        data,
        address,
        url,
    } = Receiving::start(&env);
    let mut server = serve(&env, &url, &["--remote-write.label", "site=ci"]);
    let mut count = 0;
    for _ in 0..2 {
        count += 1;
        run(&mut server, count);
    }
    // The pending gauge may still read 0 just after a run is stored; the sent counter moves
    // only once a push was acknowledged.
    wait_metric(&server, SENT, count as f64);

    // Ten runs while Prometheus is stopped wait in the outbox.
    prometheus.stop();
    for _ in 0..10 {
        count += 1;
        run(&mut server, count);
    }
    wait_metric(&server, PENDING, 10.0);
    let mut prometheus = Prometheus::start_on(&config, &data, &RECEIVER, &address);
    prometheus.wait_ready();
    wait_metric(&server, SENT, count as f64);
    count += 1;
    run(&mut server, count);
    wait_metric(&server, SENT, count as f64);
    wait_metric(&server, PENDING, 0.0);

    let samples = stored(&server);
    assert_eq!(samples.len(), count);
    assert_each_once_at_its_time(&address, &samples);
    server.assert_clean_exit();
}

/// Each of `samples` (site `ci`) is in the Prometheus at `address` at its own time with its
/// download, and there are no other runs: as many points in the last hour as samples.
fn assert_each_once_at_its_time(address: &str, samples: &[serde_json::Value]) {
    let download = r#"speedtest_download_bytes_per_second{site="ci",job="internet-monitor"}"#;
    for sample in samples {
        let time = millis(sample) as f64 / 1000.0;
        assert_eq!(
            single(&query(
                address,
                &format!("timestamp({download})"),
                Some(time)
            )),
            time,
            "no point at {time}"
        );
        assert_eq!(
            Some(single(&query(address, download, Some(time)))),
            sample["download_bytes_per_second"].as_f64(),
            "the value at {time}"
        );
    }
    let counted = query(
        address,
        r#"count_over_time(speedtest_up{site="ci"}[1h])"#,
        None,
    );
    assert_eq!(
        single(&counted),
        samples.len() as f64,
        "runs in the last hour"
    );
}

/// With a real Prometheus: a monitor stopped with a full outbox (Prometheus down) and started
/// again delivers it all, once; a run older than Prometheus's out-of-order window is refused
/// for good (a 500 "too old sample" from Prometheus 2.42), counted as rejected and dropped
/// from the outbox.
#[test]
#[ignore = "needs a Prometheus server and faketime (Debian packages prometheus and faketime); .ci/run installs them and runs the ignored tests"]
fn a_real_prometheus_gets_a_restarted_monitors_outbox_and_refuses_what_is_too_old() {
    let env = Env::new();
    let Receiving {
        mut prometheus,
        config,
        data,
        address,
        url,
    } = Receiving::start(&env);
    let labels = ["--remote-write.label", "site=ci"];
    let mut server = serve(&env, &url, &labels);
    run(&mut server, 1);
    wait_metric(&server, SENT, 1.0);

    // Three runs wait while Prometheus is down; the monitor stops with them queued.
    prometheus.stop();
    for count in 2..=4 {
        run(&mut server, count);
    }
    wait_metric(&server, PENDING, 3.0);
    server.assert_clean_exit();

    let mut prometheus = Prometheus::start_on(&config, &data, &RECEIVER, &address);
    prometheus.wait_ready();
    let mut server = serve(&env, &url, &labels);
    wait_metric(&server, SENT, 3.0);
    wait_metric(&server, PENDING, 0.0);
    let samples = stored(&server);
    assert_eq!(samples.len(), 4);
    assert_each_once_at_its_time(&address, &samples);
    server.assert_clean_exit();

    // Another monitor of the same site whose clock is two days behind: its run is older than
    // the window allows for series Prometheus holds newer points of.
    let behind = Env::new();
    let command = serve_command(&behind, &url, &labels);
    let mut faked = common::with_libfaketime(&command);
    faked.env("FAKETIME", "-2d").env("FAKETIME_DONT_RESET", "1");
    let mut old = Server::start(faked);
    run(&mut old, 1);
    wait_metric(&old, REJECTED, 1.0);
    wait_metric(&old, PENDING, 0.0);
    assert_eq!(metric(&old, SENT), Some(0.0));
    // Prometheus 2.39–2.48 (Debian's 2.42 here) say so with a 500 "too old sample", later
    // ones with a 400; either is a refusal, never a reason to hold the outbox.
    let refused = old.wait_for_log("the receiver refused the sample");
    assert!(
        refused.contains("too old sample") || refused.contains("out of bounds"),
        "{refused}"
    );
    old.assert_clean_exit();
    // Nothing of it reached Prometheus; the four runs are still there, each once.
    assert_each_once_at_its_time(&address, &samples);
}

const REJECTED: &str = r#"internet_monitor_remote_write_samples_total{result="rejected"}"#;
