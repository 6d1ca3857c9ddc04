//! End to end: `internet-monitor serve` on loopback, with the fake CLI and a real redb file.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Env, Server, assert_gone, pids, request};
use serde_json::{Value, json};

impl Env {
    /// A server that will not test during the test: the first run is an hour away.
    fn idle_server(&self) -> Server {
        Server::start(self.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]))
    }
}

fn now_millis() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since.as_millis() as u64
}

/// An exported-sample line `hours_ago` before now (whole milliseconds), success or failure.
fn sample(millis: u64, download: f64, upload: f64, ping_seconds: f64) -> Value {
    json!({
        "time": rfc3339(millis),
        "outcome": "success", "reason": null, "message": null, "trigger": "schedule",
        "duration_seconds": 20.0,
        "download_bytes_per_second": download, "upload_bytes_per_second": upload,
        "ping_seconds": ping_seconds, "jitter_seconds": null, "packet_loss_ratio": null,
        "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": null, "uploaded_bytes": null,
        "server": null, "isp": null, "result_url": null
    })
}

fn failure(millis: u64) -> Value {
    let mut value = sample(millis, 0.0, 0.0, 0.0);
    for key in [
        "download_bytes_per_second",
        "upload_bytes_per_second",
        "ping_seconds",
    ] {
        value[key] = Value::Null;
    }
    value["outcome"] = json!("failure");
    value["reason"] = json!("no_connectivity");
    value["message"] = json!("down");
    value
}

fn rfc3339(millis: u64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(millis);
    humantime::format_rfc3339_millis(time).to_string()
}

const HOUR: u64 = 3_600_000;

#[test]
fn the_original_endpoints_answer_with_the_original_shapes() {
    let env = Env::new();
    let now = now_millis() / 1000 * 1000;
    let (old, day_ago, two_hours, one_hour, newest_failure) = (
        now - 31 * 24 * HOUR,
        now - 25 * HOUR,
        now - 2 * HOUR,
        now - HOUR,
        now - HOUR / 2,
    );
    env.import(&[
        sample(old, 1.0e6, 1.0e5, 0.1),
        sample(day_ago, 12_000_000.0, 2_400_000.0, 0.054183),
        sample(two_hours, 10_000_000.0, 2_000_000.0, 0.011786),
        sample(one_hour, 11_000_000.0, 3_000_000.0, 0.014799),
        failure(newest_failure),
    ]);
    let server = env.idle_server();

    let latest = server.get("/latest");
    assert_eq!(latest.status, 200);
    assert_eq!(latest.header("content-type"), Some("application/json"));
    assert_eq!(latest.header("access-control-allow-origin"), Some("*"));
    let seconds = |millis: u64| millis as f64 / 1000.0;
    assert_eq!(
        latest.body,
        format!(
            "{{\"download\":11000000.0,\"upload\":3000000.0,\"ping\":14.799,\"time\":{}}}\n",
            json!(seconds(one_hour))
        ),
        "a failure is never the latest measurement"
    );

    let last_day = server.get("/last-day");
    assert_eq!(last_day.status, 200);
    assert_eq!(
        last_day.json(),
        json!({
            "download": {"high": 11000000.0, "average": 10500000.0, "low": 10000000.0},
            "upload": {"high": 3000000.0, "average": 2500000.0, "low": 2000000.0},
            "ping": {"high": 14.799, "average": (11.786 + 14.799) / 2.0, "low": 11.786}
        })
    );
    assert!(
        last_day.body.starts_with("{\"download\":{\"high\":"),
        "field order"
    );

    let graph = server.get("/graph");
    assert_eq!(graph.status, 200);
    assert_eq!(
        graph.json(),
        json!([
            {"id": day_ago, "download": 12000000.0, "upload": 2400000.0, "ping": 54.183, "time": seconds(day_ago)},
            {"id": two_hours, "download": 10000000.0, "upload": 2000000.0, "ping": 11.786, "time": seconds(two_hours)},
            {"id": one_hour, "download": 11000000.0, "upload": 3000000.0, "ping": 14.799, "time": seconds(one_hour)},
        ])
    );
    assert!(graph.body.starts_with("[{\"id\":"), "field order");
}

#[test]
fn an_empty_store_gives_404_json_and_an_empty_graph() {
    let env = Env::new();
    let server = env.idle_server();
    for path in ["/latest", "/last-day"] {
        let response = server.get(path);
        assert_eq!(response.status, 404, "{path}");
        assert!(
            response.json()["error"].as_str().is_some(),
            "{path}: {}",
            response.body
        );
    }
    let graph = server.get("/graph");
    assert_eq!((graph.status, graph.body.as_str()), (200, "[]\n"));
}

#[test]
fn methods_paths_and_parameters_get_json_errors() {
    let env = Env::new();
    let server = env.idle_server();
    let post = request(&server.address, "POST", "/latest");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        post.json()["error"],
        "/latest answers GET and HEAD only, not POST"
    );
    let missing = server.get("/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "no such endpoint: /nope");
    let bad = server.get("/graph?days=7");
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json()["error"],
        "unknown query parameter \"days\": this endpoint takes none"
    );
    let head = request(&server.address, "HEAD", "/healthz");
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    let get = server.get("/healthz");
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
    assert_eq!(get.json(), json!({"status": "ok", "samples": 0}));
    let index = server.get("/");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(index.body.contains("href=\"/metrics\""));
}

#[test]
fn a_scheduled_run_is_stored_then_published() {
    let env = Env::new();
    let mut server = Server::start(env.serve("ok-1.2-with-loaded-latency", "replay", &[]));
    server.wait_for_log("test succeeded");
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for line in [
        "speedtest_download_bytes_per_second 92727670\n",
        "speedtest_up 1\n",
        "speedtest_runs_total{result=\"success\"} 1\n",
        "speedtest_runs_total{result=\"timeout\"} 0\n",
        "speedtest_running 0\n",
        "internet_monitor_samples 1\n",
    ] {
        assert!(metrics.body.contains(line), "{line:?} in\n{}", metrics.body);
    }
    assert!(
        metrics
            .body
            .contains("speedtest_next_run_timestamp_seconds ")
    );
    let latest = server.get("/latest").json();
    assert_eq!(latest["download"], 92727670.0);
    assert_eq!(server.get("/healthz").json()["samples"], 1);
}

#[test]
fn a_restart_restores_the_gauges_from_the_store() {
    let env = Env::new();
    let mut first = Server::start(env.serve("ok-1.2-with-loaded-latency", "replay", &[]));
    first.wait_for_log("test succeeded");
    let (status, _) = first.terminate();
    assert!(status.success());
    // Now every run fails; the measurement gauges must keep the last success, not zeros.
    let mut second = Server::start(env.serve("err-config-dns", "replay", &[]));
    second.wait_for_log("test failed");
    let metrics = second.get("/metrics").body;
    for line in [
        "speedtest_download_bytes_per_second 92727670\n",
        "speedtest_up 0\n",
        "speedtest_runs_total{result=\"no_connectivity\"} 1\n",
        "internet_monitor_samples 2\n",
    ] {
        assert!(metrics.contains(line), "{line:?} in\n{metrics}");
    }
    assert!(!metrics.contains("speedtest_download_bytes_per_second 0"));
}

#[test]
fn an_empty_store_exports_no_measurement_gauges() {
    let env = Env::new();
    let server = env.idle_server();
    let metrics = server.get("/metrics").body;
    for absent in [
        "speedtest_download_bytes_per_second",
        "speedtest_up ",
        "speedtest_last_run",
    ] {
        assert!(!metrics.contains(absent), "{absent} in\n{metrics}");
    }
    assert!(metrics.contains("speedtest_runs_total{result=\"rate_limited\"} 0"));
}

#[test]
fn sigterm_during_a_test_kills_it_and_exits_0_promptly() {
    let env = Env::new();
    let mut server = Server::start(env.serve("ok-1.2-pretty", "fork-sleep", &[]));
    // The fake writes its pids, then sleeps; wait until the second (grandchild) is there.
    let running = common::eventually("the fake and its grandchild running", || {
        Some(pids(&env.path("pids"))).filter(|noted| noted.len() >= 2)
    });
    assert_eq!(running.len(), 2, "the fake and its grandchild are running");
    assert!(
        server
            .get("/metrics")
            .body
            .contains("speedtest_running 1\n")
    );
    let (status, took) = server.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_gone(&running);
}

#[test]
fn a_second_serve_on_the_same_database_exits_1_at_once() {
    let env = Env::new();
    let mut first = env.idle_server();
    let output = env
        .serve("ok-1.2-pretty", "replay", &["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another internet-monitor process has it open"),
        "{stderr}"
    );
    assert!(first.is_running());
    assert_eq!(first.get("/healthz").status, 200);
}

#[test]
#[ignore = "needs promtool (Debian package prometheus); .ci/run installs it and runs the ignored tests"]
fn promtool_finds_nothing_to_complain_about() {
    let env = Env::new();
    let mut server = Server::start(env.serve("ok-1.2-with-loaded-latency", "replay", &[]));
    server.wait_for_log("test succeeded");
    let exposition = server.get("/metrics").body;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package prometheus; .ci/run installs it)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), exposition.as_bytes()).unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
}

#[test]
fn json_logs_are_one_object_per_line() {
    let env = Env::new();
    let db = env.db();
    let mut child = common::command(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--start-delay",
        "1h",
        "--log-format",
        "json",
    ])
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stderr), &mut first).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let line: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    assert_eq!(line["level"], "INFO");
    assert!(
        line["fields"]["message"]
            .as_str()
            .unwrap()
            .starts_with("listening on http://127.0.0.1:")
    );
    assert!(
        line["fields"]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[test]
fn a_silent_connection_is_closed_by_the_header_timeout() {
    let env = Env::new();
    let server = env.idle_server();
    let mut silent = std::net::TcpStream::connect(&server.address).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 64];
    // Blocks until the server gives up on us: a clean close (0 bytes), or an error response.
    let read = std::io::Read::read(&mut silent, &mut buffer);
    let waited = started.elapsed();
    assert!(read.is_ok(), "closed, not timed out on our side: {read:?}");
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    assert_eq!(
        server.get("/healthz").status,
        200,
        "others are still served"
    );
}

#[test]
fn the_start_up_line_names_the_schedule_engine_plan_retention_and_first_test() {
    let env = Env::new();
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &[
            "--start-delay",
            "1h",
            "--retention",
            "400d",
            "--plan-download",
            "500Mbit/s",
        ],
    ));
    let line = server.wait_for_log("listening on http");
    // Read as logfmt: a value with spaces comes back whole, quoted; a token bare.
    let fields = common::log_fields(&line);
    for (key, value) in [
        ("interval", "30m"),
        ("engine", "ookla"),
        ("plan", "download 500 Mbit/s, upload none, threshold 0.8"),
        ("retention", "400d"),
        ("data_budget", "none"),
        ("db", env.db().to_str().unwrap()),
    ] {
        assert_eq!(
            fields.get(key).map(String::as_str),
            Some(value),
            "{key} in {line}"
        );
    }
    assert!(
        line.contains("plan=\"download 500 Mbit/s, upload none, threshold 0.8\""),
        "{line}"
    );
    // The first test is an hour away (--start-delay 1h), as an RFC 3339 time.
    let first = fields
        .get("first_test")
        .unwrap_or_else(|| panic!("no first_test in {line}"));
    let first: internet_monitor::time::Timestamp = first.parse().unwrap();
    let wait = first.as_millis().saturating_sub(now_millis());
    assert!((3_500_000..=3_600_000).contains(&wait), "{first} in {line}");
}

#[test]
fn a_test_says_when_it_starts_and_when_shutdown_stops_it() {
    let env = Env::new();
    let mut server = Server::start(env.serve("ok-1.2-pretty", "sleep", &[]));
    let line = server.wait_for_log("schedule test started");
    for field in [
        "run=schedule",
        "engine=ookla",
        "server=\"chosen by the CLI\"",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    let log = server.assert_clean_exit();
    let stopped = log
        .iter()
        .find(|line| line.contains("schedule test stopped by shutdown"))
        .unwrap_or_else(|| panic!("no stop line in\n{}", log.join("\n")));
    // The stop line names the run, engine and server as the start line did.
    let fields = common::log_fields(stopped);
    for (key, value) in [
        ("run", "schedule"),
        ("engine", "ookla"),
        ("server", "chosen by the CLI"),
    ] {
        assert_eq!(
            fields.get(key).map(String::as_str),
            Some(value),
            "{key} in {stopped}"
        );
    }
    assert!(fields.contains_key("after"), "{stopped}");
}

#[test]
fn the_ookla_engine_names_the_server_of_server_id_when_a_test_starts() {
    let env = Env::new();
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--server-id", "1234"]));
    let line = server.wait_for_log("schedule test started");
    let fields = common::log_fields(&line);
    for (key, value) in [
        ("run", "schedule"),
        ("engine", "ookla"),
        ("server", "ookla server #1234"),
    ] {
        assert_eq!(
            fields.get(key).map(String::as_str),
            Some(value),
            "{key} in {line}"
        );
    }
}

#[test]
fn the_http_engine_says_its_server_when_a_test_starts() {
    let env = Env::new();
    let db = env.db();
    let mut server = Server::start(common::command(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--engine",
        "http",
    ]));
    let line = server.wait_for_log("schedule test started");
    for field in [
        "run=schedule",
        "engine=http",
        &format!("server=\"{}\"", common::NO_HTTP_SERVER),
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
}

#[test]
fn serve_on_a_busy_port_creates_no_database() {
    let env = Env::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let output = env
        .serve("ok-1.2-pretty", "replay", &["--listen", &address])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address} (see --listen)")),
        "{stderr}"
    );
    assert!(!env.db().exists(), "a database file was created");
}

mod access_log_connect {
    //! The access log writes a CONNECT's target (authority-form, `host:port`) as it was sent.

    use std::io::{Read, Write};

    use crate::common::{Env, Server};

    #[test]
    fn a_connect_request_is_logged_with_its_authority() {
        let env = Env::new();
        let mut server = Server::start(env.serve(
            "ok-1.2-pretty",
            "replay",
            &["--start-delay", "1h", "--log-requests"],
        ));
        let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
        stream
        .write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n")
        .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
        let line = server.wait_for_log("CONNECT example.com:443 ");
        assert!(line.contains("path=\"example.com:443\""), "{line}");
        // Credentials in it are not logged.
        let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
        stream
            .write_all(b"CONNECT user:s3cr3tpass@127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok();
        let line = server.wait_for_log("@127.0.0.1:443");
        assert!(line.contains("path=\"…@127.0.0.1:443\""), "{line}");
        assert!(!line.contains("s3cr3tpass"), "{line}");
        server.assert_clean_exit();
    }
}

#[test]
fn an_empty_rust_log_is_the_default_filter_and_a_malformed_one_is_refused() {
    let env = Env::new();
    // `RUST_LOG=` in an environment file, `RUST_LOG: ${UNSET}` in a compose file: as if unset,
    // so the start-up line (the port of --listen :0) and every warning are still logged.
    for blank in ["", "  ", " , "] {
        let mut command = env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]);
        command.env("RUST_LOG", blank);
        let server = Server::start(command);
        assert!(!server.address.is_empty(), "RUST_LOG={blank:?}");
        drop(server);
    }
    // A filter that does not parse, or a level misspelt (as written it names a module and
    // turns every other line off), is refused before anything else: the variable, the part
    // that is wrong and an example.
    for (value, part) in [
        ("garbage[[[", "garbage[[["),
        ("info,hyper=loud", "hyper=loud"),
        ("warning", "warning"),
    ] {
        let mut command = env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]);
        command.args(["--listen", "127.0.0.1:0"]);
        let mut child = command
            .env("RUST_LOG", value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let exited = common::poll_within(common::PATIENCE, || child.try_wait().unwrap());
        if exited.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve with RUST_LOG={value:?} did not stop");
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{value:?}: {stderr}");
        assert!(
            stderr.contains("RUST_LOG")
                && stderr.contains(&format!("{part:?}"))
                && stderr.contains("RUST_LOG=info,internet_monitor=debug"),
            "{value:?}: {stderr}"
        );
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
}
