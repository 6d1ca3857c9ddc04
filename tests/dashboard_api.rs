//! End to end: the dashboard's endpoints (`/api/v1/status`, `/api/v1/series`,
//! `/api/v1/heatmap`, `/api/v1/summary?from=&to=`) of a real `serve` on loopback, over imported
//! samples whose answers are known: served in this process, except where a test needs the
//! process's environment or its log.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::in_process::InProcess;
use common::{Env, PATIENCE, Server, request, try_request_with};
use serde_json::{Value, json};

const HOSTILE_NAME: &str = "<script>alert(1)</script>";
const CLIENT_IP: &str = "198.51.100.77";

/// 2026-11-02T00:00:00Z, a Monday; the history runs from here for three days.
const START: u64 = 1_793_577_600;

fn rfc3339(seconds: u64) -> String {
    humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
    )
    .to_string()
}

fn success(seconds: u64, download: f64) -> Value {
    json!({
        "time": rfc3339(seconds), "outcome": "success", "reason": null, "message": null,
        "trigger": "schedule", "duration_seconds": 20.5, "download_bytes_per_second": download,
        "upload_bytes_per_second": 2_000_000.0, "ping_seconds": 0.0125, "jitter_seconds": 0.0005,
        "packet_loss_ratio": 0.0, "download_latency_seconds": 0.02, "upload_latency_seconds": null,
        "downloaded_bytes": 1000, "uploaded_bytes": 500,
        "server": {"id": 7, "name": HOSTILE_NAME, "location": "Here", "country": "There", "host": "st.example.net"},
        "isp": "Example ISP", "result_url": null,
        "engine": {"name": "ookla", "protocol": null, "url": null, "streams": null,
            "duration_seconds": null, "ramp_up_seconds": null}
    })
}

fn failure(seconds: u64, message: &str) -> Value {
    json!({
        "time": rfc3339(seconds), "outcome": "failure", "reason": "timeout", "message": message,
        "trigger": "schedule", "duration_seconds": 120.0, "download_bytes_per_second": null,
        "upload_bytes_per_second": null, "ping_seconds": null, "jitter_seconds": null,
        "packet_loss_ratio": null, "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": null, "uploaded_bytes": null, "server": null, "isp": null,
        "result_url": null,
        "engine": {"name": "ookla", "protocol": null, "url": null, "streams": null,
            "duration_seconds": null, "ramp_up_seconds": null}
    })
}

/// Three days of half-hourly runs: every 10th a failure, no runs on the second day from 06:00
/// to 12:00, and the newest run a success that stored the client's address.
fn history() -> Vec<Value> {
    let mut lines = Vec::new();
    for i in 0..3 * 48 {
        let time = START + i * 1800;
        if (START + 86_400 + 6 * 3600..START + 86_400 + 12 * 3600).contains(&time) {
            continue;
        }
        if i % 10 == 5 {
            lines.push(failure(time, &format!("run {i} took too long")));
        } else {
            lines.push(success(time, 1e6 * (1.0 + (i % 4) as f64)));
        }
    }
    if let Some(last) = lines.last_mut() {
        last["client"] = json!({"internal_ip": CLIENT_IP, "external_ip": CLIENT_IP, "mac": null});
    }
    lines
}

fn serve(env: &Env) -> InProcess {
    env.import(&history());
    InProcess::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &[
            "--start-delay",
            "1h",
            "--interval",
            "30m",
            "--plan-download",
            "100Mbit/s",
            "--store-ip",
        ],
    ))
}

fn range() -> String {
    format!("from={}&to={}", rfc3339(START), rfc3339(START + 3 * 86_400))
}

#[test]
fn status_names_the_schedule_engine_and_newest_runs_without_addresses() {
    let env = Env::new();
    let server = serve(&env);
    let response = server.get("/api/v1/status");
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(!response.body.contains(CLIENT_IP), "{}", response.body);
    let status = response.json();
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["samples"], history().len());
    assert_eq!(status["oldest"], rfc3339(START));
    let newest = rfc3339(START + (3 * 48 - 1) * 1800);
    assert_eq!(status["newest"], newest);
    assert_eq!(status["running"], false);
    assert_eq!(status["running_since"], Value::Null);
    assert!(status["next_run"].is_string(), "{status}");
    assert!(status["now"].is_string());
    assert_eq!(status["interval_seconds"], 1800);
    assert_eq!(status["engine"], "ookla");
    assert_eq!(status["plan"]["download_bytes_per_second"], 12_500_000.0);
    assert_eq!(status["plan"]["upload_bytes_per_second"], Value::Null);
    assert_eq!(status["plan"]["threshold"], 0.8);
    assert_eq!(
        status["run_endpoint"],
        json!({"enabled": false, "min_gap_seconds": null})
    );
    assert_eq!(status["latest"]["time"], newest);
    assert!(status["latest"].get("client").is_none());
    assert_eq!(status["latest_success"]["time"], newest);
    assert_eq!(status["latest_success"]["server"]["name"], HOSTILE_NAME);
    // The newest failure: run 135 (i % 10 == 5).
    assert_eq!(
        status["latest_failure"]["time"],
        rfc3339(START + 135 * 1800)
    );
    assert_eq!(status["latest_failure"]["message"], "run 135 took too long");
}

#[test]
fn series_buckets_the_range_with_gaps_and_failures() {
    let env = Env::new();
    let server = serve(&env);
    let response = server.get(&format!("/api/v1/series?{}&points=100", range()));
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let series = response.json();
    // 72 hours in at most 100 buckets: 1 h.
    assert_eq!(series["step_seconds"], 3600);
    let runs = &series["runs"];
    let total = history().len();
    assert_eq!(runs["total"], total);
    assert_eq!(runs["failure"], 14 - 1, "one failure fell in the hole");
    assert_eq!(runs["skipped"], 0);
    let time = series["time"].as_array().unwrap();
    let count = series["count"].as_array().unwrap();
    for figure in [
        "download_bytes_per_second",
        "upload_bytes_per_second",
        "ping_seconds",
        "jitter_seconds",
        "download_latency_seconds",
        "upload_latency_seconds",
    ] {
        for part in ["min", "median", "max"] {
            let values = series[figure][part].as_array().unwrap();
            assert_eq!(values.len(), time.len(), "{figure}.{part}");
        }
    }
    assert_eq!(time[0], START);
    // The six-hour hole (more than 3 × 1 h) is one null entry with count 0, at its middle;
    // every other entry starts an hour.
    let gaps: Vec<usize> = (0..count.len()).filter(|&i| count[i] == 0).collect();
    assert_eq!(gaps.len(), 1, "{count:?}");
    let hole_middle = START + 86_400 + 9 * 3600;
    assert_eq!(time[gaps[0]], hole_middle);
    for (i, t) in time.iter().enumerate().filter(|(i, _)| *i != gaps[0]) {
        assert_eq!(t.as_u64().unwrap() % 3600, 0, "entry {i}");
    }
    let counted: u64 = count.iter().map(|c| c.as_u64().unwrap()).sum();
    assert_eq!(runs["success"], counted);
    assert_eq!(
        series["download_bytes_per_second"]["median"][gaps[0]],
        Value::Null
    );
    assert_eq!(series["upload_latency_seconds"]["max"][0], Value::Null);
    assert_eq!(series["download_latency_seconds"]["max"][0], 0.02);
    // Few failures: one marker each.
    assert_eq!(series["failures_grouped"], false);
    let failures = series["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 13);
    assert_eq!(
        failures[0],
        json!({"time": START + 5 * 1800, "count": 1, "reason": "timeout",
               "message": "run 5 took too long", "reasons": {"timeout": 1}})
    );
    assert_eq!(series["plan"]["download_bytes_per_second"], 12_500_000.0);

    // Defaults: the last 24 hours before now (the history is older: no buckets).
    let recent = server.get("/api/v1/series").json();
    assert_eq!(recent["step_seconds"], 300);
    assert_eq!(recent["time"], json!([]));
}

#[test]
fn heatmap_has_monday_first_rows_of_24_local_hours() {
    let env = Env::new();
    let server = serve(&env);
    let response = server.get(&format!(
        "/api/v1/heatmap?{}&tz=Europe/Berlin&metric=download",
        range()
    ));
    assert_eq!(response.status, 200, "{}", response.body);
    let map = response.json();
    assert_eq!(map["time_zone"], "Europe/Berlin");
    assert_eq!(map["metric"], "download");
    assert_eq!(map["unit"], "bytes_per_second");
    assert_eq!(map["weekdays"][0], "monday");
    assert_eq!(map["weekdays"][6], "sunday");
    let median = map["median"].as_array().unwrap();
    assert_eq!(median.len(), 7);
    assert!(median.iter().all(|row| row.as_array().unwrap().len() == 24));
    // Monday 00:00Z is 01:00 CET: Monday's hour 0 is empty, hour 1 has two runs (00:00Z and
    // 00:30Z: 1 and 2 MB/s, neither a failure).
    assert_eq!(map["runs"][0][0], 0);
    assert_eq!(map["median"][0][0], Value::Null);
    assert_eq!(map["runs"][0][1], 2);
    assert_eq!(map["median"][0][1], 1_500_000.0);
    assert_eq!(map["share_of_plan"][0][1], 0.12);
    // Thursday holds only 00:00 local (Wednesday 23:xxZ).
    assert_eq!(map["runs"][3][0], 2);
    assert_eq!(map["runs"][4][0], 0);

    let ping = server
        .get(&format!("/api/v1/heatmap?{}&metric=ping", range()))
        .json();
    assert_eq!(ping["time_zone"], "UTC");
    assert_eq!(ping["unit"], "seconds");
    assert_eq!(ping["share_of_plan"], Value::Null);
    assert_eq!(ping["median"][0][0], 0.0125);
}

/// Browsers name zones by ICU's canonical ids (Chromium: `Asia/Calcutta`, `Europe/Kiev`,
/// `America/Buenos_Aires`), which a trimmed tzdata (Debian's without `tzdata-legacy`, a minimal
/// container) lacks: the heat map must still take them, or the page loses its charts.
#[test]
fn heatmap_takes_the_zone_names_browsers_send_when_the_system_database_lacks_them() {
    let env = Env::new();
    env.import(&history());
    // A system database holding UTC only (jiff reads TZDIR).
    let zoneinfo = env.path("zoneinfo");
    std::fs::create_dir_all(&zoneinfo).unwrap();
    std::fs::copy("/usr/share/zoneinfo/UTC", zoneinfo.join("UTC"))
        .expect("the system's UTC zone file");
    let mut command = env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]);
    command.env("TZDIR", &zoneinfo);
    let server = Server::start(command);
    for (zone, utc_offset_hours) in [
        ("Asia/Saigon", 7),
        ("Europe/Kiev", 2),
        ("America/Buenos_Aires", -3),
        ("Asia/Calcutta", 5),
    ] {
        let response = server.get(&format!("/api/v1/heatmap?{}&tz={zone}", range()));
        assert_eq!(response.status, 200, "{zone}: {}", response.body);
        let map = response.json();
        assert_eq!(map["time_zone"], zone);
        let runs: u64 = map["runs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap())
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert!(runs > 0, "{zone}: {map}");
        if zone == "Asia/Calcutta" {
            // +05:30: Monday 00:00Z is 05:30, alone in its hour; 00:30Z and 01:00Z are 06:xx.
            assert_eq!(
                (&map["runs"][0][5], &map["runs"][0][6]),
                (&json!(1), &json!(2)),
                "{map}"
            );
            continue;
        }
        // Monday 00:00Z and 00:30Z (two runs) land in Monday's local hour of the zone's offset
        // (the previous Sunday's for a zone behind UTC).
        let (day, hour) = if utc_offset_hours >= 0 {
            (0, utc_offset_hours as usize)
        } else {
            (6, (24 + utc_offset_hours) as usize)
        };
        assert_eq!(map["runs"][day][hour], 2, "{zone}: {map}");
    }
    let unknown = server.get(&format!("/api/v1/heatmap?{}&tz=Mars/Olympus", range()));
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("invalid tz"), "{}", unknown.body);
}

#[test]
fn summary_takes_from_and_to() {
    let env = Env::new();
    let server = serve(&env);
    let day = format!("from={}&to={}", rfc3339(START), rfc3339(START + 86_400));
    let response = server.get(&format!("/api/v1/summary?{day}"));
    assert_eq!(response.status, 200, "{}", response.body);
    let whole = server.get(&format!("/api/v1/summary?{}", range()));
    assert_eq!(whole.status, 200, "{}", whole.body);
    assert_ne!(response.body, whole.body, "the range decides");
}

#[test]
fn bad_parameters_are_400_naming_them() {
    let env = Env::new();
    let server = serve(&env);
    let to = rfc3339(START);
    for (path, named) in [
        ("/api/v1/series?points=5".to_owned(), "invalid points"),
        ("/api/v1/series?points=601".to_owned(), "invalid points"),
        ("/api/v1/series?points=x".to_owned(), "invalid points"),
        (
            format!("/api/v1/series?from={to}&to={to}"),
            "invalid from and to",
        ),
        (
            "/api/v1/series?from=1d&to=2d".to_owned(),
            "invalid from and to",
        ),
        ("/api/v1/series?from=yesterday".to_owned(), "invalid from"),
        (
            "/api/v1/series?window=1d".to_owned(),
            "unknown query parameter",
        ),
        ("/api/v1/heatmap?tz=Mars/Olympus".to_owned(), "invalid tz"),
        (
            "/api/v1/heatmap?tz=../../etc/passwd".to_owned(),
            "invalid tz",
        ),
        ("/api/v1/heatmap?metric=jitter".to_owned(), "invalid metric"),
        ("/api/v1/status?x=1".to_owned(), "unknown query parameter"),
        (
            "/api/v1/summary?window=1d&from=2d".to_owned(),
            "invalid window",
        ),
        (
            format!("/api/v1/summary?from={to}&to=2020-01-01T00:00:00Z"),
            "invalid from and to",
        ),
    ] {
        let response = server.get(&path);
        assert_eq!(response.status, 400, "{path}: {}", response.body);
        let error = response.json()["error"].as_str().unwrap().to_owned();
        assert!(error.starts_with(named), "{path}: {error}");
    }
}

/// One GET with `Accept-Encoding`, read as bytes: the status line and headers, and the body.
fn get_raw(address: &str, path: &str, accept: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept-Encoding: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec())
        .unwrap()
        .to_ascii_lowercase();
    (head, raw[split + 4..].to_vec())
}

#[test]
fn answers_are_gzipped_when_accepted_and_head_works() {
    let env = Env::new();
    let server = serve(&env);
    let path = format!("/api/v1/series?{}", range());
    let plain = server.get(&path);
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    assert_eq!(plain.header("content-encoding"), None);

    let (head, body) = get_raw(&server.address, &path, "br, gzip;q=0.8");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\ncontent-encoding: gzip"), "{head}");
    assert!(head.contains("\r\nvary: accept-encoding"), "{head}");
    assert!(body.len() < plain.body.len());
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain.body);

    let (head, body) = get_raw(&server.address, &path, "gzip;q=0, identity");
    assert!(!head.contains("content-encoding"), "{head}");
    assert_eq!(String::from_utf8(body).unwrap(), plain.body);

    for path in ["/api/v1/status", "/api/v1/series", "/api/v1/heatmap"] {
        let response = request(&server.address, "HEAD", path);
        assert_eq!(response.status, 200, "HEAD {path}");
        assert!(response.body.is_empty());
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert!(response.header("content-length").is_some(), "HEAD {path}");
    }
}

#[test]
fn a_page_on_a_rebound_name_cannot_read_them() {
    let env = Env::new();
    let server = serve(&env);
    let port = server.address.rsplit(':').next().unwrap().to_owned();
    let rebound = format!("evil.example:{port}");
    for path in ["/api/v1/status", "/api/v1/series", "/api/v1/heatmap"] {
        let headers = [
            ("Host", rebound.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ];
        let response = try_request_with(&server.address, "GET", path, &headers).unwrap();
        assert_eq!(response.status, 403, "{path}: {}", response.body);
        assert!(response.header("access-control-allow-origin").is_none());
        let own = format!("127.0.0.1:{port}");
        let headers = [("Host", own.as_str()), ("Sec-Fetch-Site", "same-origin")];
        let response = try_request_with(&server.address, "GET", path, &headers).unwrap();
        assert_eq!(response.status, 200, "{path}: {}", response.body);
    }
}

#[test]
fn a_new_run_shows_in_status_and_series_at_once() {
    let env = Env::new();
    env.import(&history());
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &[
            "--start-delay",
            "1h",
            "--enable-run-endpoint",
            "--min-manual-gap",
            "0s",
        ],
    ));
    let everything = format!("/api/v1/series?from={}", rfc3339(START));
    // Both caches are made before the run.
    let before = server.get(&everything).json();
    let status = server.get("/api/v1/status").json();
    assert_eq!(status["samples"], history().len());
    assert_eq!(
        status["run_endpoint"],
        json!({"enabled": true, "min_gap_seconds": 0})
    );
    let started = request(&server.address, "POST", "/api/v1/run");
    assert_eq!(started.status, 202, "{}", started.body);
    server.wait_for_log("test succeeded");
    let status = server.get("/api/v1/status").json();
    assert_eq!(status["samples"], history().len() + 1);
    assert_eq!(status["latest"], status["latest_success"]);
    assert_eq!(status["newest"], status["latest"]["time"]);
    assert_ne!(status["newest"], rfc3339(START + (3 * 48 - 1) * 1800));
    assert_eq!(status["running"], false);
    let after = server.get(&everything).json();
    assert_eq!(
        after["runs"]["total"].as_u64().unwrap(),
        before["runs"]["total"].as_u64().unwrap() + 1
    );
    assert_eq!(
        after["runs"]["success"].as_u64().unwrap(),
        before["runs"]["success"].as_u64().unwrap() + 1
    );
}
