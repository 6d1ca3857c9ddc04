//! End to end: the history API of `serve`, over imported samples whose answers are known,
//! served in this process (tests/serve.rs starts the binary and asks it too).

mod common;

use common::Env;
use common::in_process::InProcess;
use serde_json::{Value, json};

impl Env {
    /// Imports `lines` and starts a server that will not test during the test.
    fn serve_history(&self, lines: &[Value]) -> InProcess {
        self.import(lines);
        InProcess::start(self.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]))
    }
}

fn sample(time: &str, download: f64) -> Value {
    json!({
        "time": time, "outcome": "success", "reason": null, "message": null, "trigger": "schedule",
        "duration_seconds": 20.5, "download_bytes_per_second": download,
        "upload_bytes_per_second": 2_000_000.0, "ping_seconds": 0.0125, "jitter_seconds": 0.0005,
        "packet_loss_ratio": 0.015, "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": 1000, "uploaded_bytes": 500,
        "server": {"id": 7, "name": "Example, Inc.", "location": "Here", "country": "There", "host": "st.example.net"},
        "isp": "Example ISP", "result_url": null,
        "engine": {"name": "http", "protocol": "librespeed", "url": "https://st.example.net/backend",
            "streams": 4, "duration_seconds": 10.0, "ramp_up_seconds": 2.0}
    })
}

fn failure(time: &str) -> Value {
    json!({
        "time": time, "outcome": "failure", "reason": "timeout", "message": "too slow", "trigger": "schedule",
        "duration_seconds": 120.0, "download_bytes_per_second": null, "upload_bytes_per_second": null,
        "ping_seconds": null, "jitter_seconds": null, "packet_loss_ratio": null,
        "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": null, "uploaded_bytes": null, "server": null, "isp": null, "result_url": null,
        "engine": {"name": "ookla", "protocol": null, "url": null, "streams": null,
            "duration_seconds": null, "ramp_up_seconds": null}
    })
}

fn history() -> Vec<Value> {
    vec![
        sample("2026-11-01T00:00:00.000Z", 1e6),
        failure("2026-11-01T00:30:00.000Z"),
        sample("2026-11-01T01:00:00.000Z", 2e6),
        sample("2026-11-01T01:30:00.000Z", 3e6),
        failure("2026-11-01T02:00:00.000Z"),
    ]
}

fn times(page: &Value) -> Vec<&str> {
    page["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_str().unwrap())
        .collect()
}

#[test]
fn pages_walk_every_sample_newest_first() {
    let env = Env::new();
    let server = env.serve_history(&history());
    let first = server.get("/api/v1/samples?limit=2");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    let first = first.json();
    assert_eq!(
        times(&first),
        ["2026-11-01T02:00:00.000Z", "2026-11-01T01:30:00.000Z"]
    );
    assert_eq!(
        first["samples"][0],
        history()[4],
        "a sample reads as it was exported"
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = server
        .get(&format!("/api/v1/samples?limit=2&cursor={cursor}"))
        .json();
    assert_eq!(
        times(&second),
        ["2026-11-01T01:00:00.000Z", "2026-11-01T00:30:00.000Z"]
    );
    let cursor = second["next_cursor"].as_str().unwrap();
    let last = server
        .get(&format!("/api/v1/samples?limit=2&cursor={cursor}"))
        .json();
    assert_eq!(times(&last), ["2026-11-01T00:00:00.000Z"]);
    assert_eq!(last["next_cursor"], Value::Null);
    let all = server.get("/api/v1/samples").json();
    assert_eq!(all["samples"].as_array().unwrap().len(), 5);
    assert_eq!(all["next_cursor"], Value::Null);
}

#[test]
fn from_and_to_select_a_window() {
    let env = Env::new();
    let server = env.serve_history(&history());
    let window = server
        .get("/api/v1/samples?from=2026-11-01T00:30:00Z&to=2026-11-01T01:30:00%2B00:00")
        .json();
    assert_eq!(
        times(&window),
        ["2026-11-01T01:00:00.000Z", "2026-11-01T00:30:00.000Z"]
    );
    let recent = server.get("/api/v1/samples?from=1h").json();
    assert!(
        times(&recent).is_empty(),
        "all samples are older than an hour"
    );
}

#[test]
fn csv_streams_the_selection_with_a_header() {
    let env = Env::new();
    let server = env.serve_history(&history());
    let response = server.get("/api/v1/samples.csv?from=2026-11-01T01:00:00Z");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let lines: Vec<&str> = response.body.lines().collect();
    assert_eq!(lines.len(), 4, "{}", response.body);
    assert!(lines[0].starts_with("time,outcome,reason,message,trigger,duration_seconds,download_bytes_per_second,download_mbit_per_second,"));
    assert!(
        lines[1].starts_with("2026-11-01T02:00:00.000Z,failure,timeout,too slow,schedule,120,"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        "2026-11-01T01:30:00.000Z,success,,,schedule,20.5,3000000,24,2000000,16,0.0125,12.5,0.0005,0.5,0.015,1.5,,,1000,500,7,\"Example, Inc.\",Here,There,st.example.net,Example ISP,,http,librespeed,https://st.example.net/backend,4,10,2"
    );
    assert!(
        lines[0].ends_with(",isp,result_url,engine,engine_protocol,engine_url,engine_streams,engine_duration_seconds,engine_ramp_up_seconds"),
        "the engine's columns come last: {}",
        lines[0]
    );
    assert!(lines[1].ends_with(",ookla,,,,,"), "{}", lines[1]);
    let limited = server.get("/api/v1/samples.csv?limit=1");
    assert_eq!(limited.body.lines().count(), 2);
}

#[test]
fn csv_export_of_many_samples_is_complete() {
    // More samples than one streamed chunk, so the stream must carry on across chunks.
    let env = Env::new();
    let lines: Vec<Value> = (0..2_500)
        .map(|minute| {
            let time =
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000 + minute * 60);
            sample(
                &humantime::format_rfc3339_millis(time).to_string(),
                1e6 + minute as f64,
            )
        })
        .collect();
    let server = env.serve_history(&lines);
    let csv = server.get("/api/v1/samples.csv").body;
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2_500);
    assert!(rows[0].contains(",1002499,"), "newest first: {}", rows[0]);
    assert!(rows[2_499].contains(",1000000,"), "{}", rows[2_499]);
}

#[test]
fn bad_parameters_are_400_naming_the_parameter() {
    let env = Env::new();
    let server = env.serve_history(&history());
    for (query, error) in [
        (
            "limit=0",
            "invalid limit: \"0\" is not a whole number from 1 to 10000",
        ),
        (
            "limit=10001",
            "invalid limit: \"10001\" is not a whole number from 1 to 10000",
        ),
        (
            "limit=ten",
            "invalid limit: \"ten\" is not a whole number from 1 to 10000",
        ),
        (
            "from=yesterday",
            "invalid from: \"yesterday\" is neither an RFC 3339 time (2026-11-24T18:00:00Z), a date (2026-11-24, its midnight UTC) nor an age (7d, 24h)",
        ),
        (
            "from=2026-11-01T04:00:00+01:00",
            "invalid from: \"2026-11-01T04:00:00 01:00\" has a space where its offset's sign belongs: in a URL's query a + reads as a space, so write it %2B (from=2026-11-24T19:00:00%2B01:00), or give the time in UTC with Z",
        ),
        (
            "to=2026-11-01T04:00:00",
            "invalid to: \"2026-11-01T04:00:00\" has no time zone: add Z for UTC (2026-11-24T18:00:00Z) or an offset (+01:00)",
        ),
        (
            "to=2026-13-01T00:00:00Z",
            "invalid to: \"2026-13-01T00:00:00Z\" names a day that does not exist: months are 01 to 12",
        ),
        (
            "from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
            "invalid from and to: from=\"2030-01-01T00:00:00Z\" (2030-01-01T00:00:00.000Z) must be before to=\"2020-01-01T00:00:00Z\" (2020-01-01T00:00:00.000Z)",
        ),
        (
            "from=2026-11-24&to=2026-11-24T00:00:00Z",
            "invalid from and to: from=\"2026-11-24\" (2026-11-24T00:00:00.000Z) must be before to=\"2026-11-24T00:00:00Z\" (2026-11-24T00:00:00.000Z)",
        ),
        (
            "cursor=abc",
            "invalid cursor: \"abc\" is not a next_cursor this server gave",
        ),
        (
            "page=2",
            "unknown query parameter \"page\": this endpoint takes from, to, limit, cursor",
        ),
        (
            "limit=1&limit=2",
            "query parameter \"limit\" is given more than once",
        ),
        ("from=%ff", "malformed query string near \"%ff\""),
    ] {
        for path in ["/api/v1/samples", "/api/v1/samples.csv"] {
            let response = server.get(&format!("{path}?{query}"));
            assert_eq!(response.status, 400, "{path}?{query}");
            assert_eq!(response.json(), json!({"error": error}), "{path}?{query}");
        }
    }
    // Every other endpoint taking a range refuses an inverted one the same way.
    let inverted = "from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z";
    for path in [
        "/api/v1/summary",
        "/api/v1/series",
        "/api/v1/heatmap",
        "/api/v1/outages",
        "/api/v1/latency",
    ] {
        let response = server.get(&format!("{path}?{inverted}"));
        assert_eq!(response.status, 400, "{path}");
        let error = response.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.starts_with("invalid from and to: from=\"2030-01-01T00:00:00Z\" (2030-"),
            "{path}: {error}"
        );
    }
    // A date is its midnight UTC, on every endpoint taking a time.
    for path in ["/api/v1/samples", "/api/v1/samples.csv"] {
        let dated = server.get(&format!("{path}?from=2026-11-01&to=2026-11-02"));
        let timed = server.get(&format!(
            "{path}?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z"
        ));
        assert_eq!(dated.status, 200, "{path}: {}", dated.body);
        assert_eq!(dated.body, timed.body, "{path}");
    }
    let summary = server.get("/api/v1/summary?from=2026-11-01&to=2026-11-02");
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert_eq!(
        summary.json()["window"],
        json!({"from": "2026-11-01T00:00:00.000Z", "to": "2026-11-02T00:00:00.000Z"})
    );
}

#[test]
fn the_index_links_the_api() {
    let env = Env::new();
    let server = env.serve_history(&[]);
    let index = server.get("/").body;
    assert!(index.contains("href=\"/api/v1/samples.csv\""));
}

/// A start the service refuses once the port is bound (here `--retest-below` with no plan to
/// compare with) fails the test with serve's own message, not with a refused connection.
#[test]
#[should_panic(expected = "--retest-below needs a plan to compare with")]
fn an_in_process_start_that_fails_fails_the_test_with_its_error() {
    let env = Env::new();
    let _server = InProcess::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "1h", "--retest-below", "0.5"],
    ));
}

/// An in-process server runs the fake CLI with the command's `FAKE_SPEEDTEST_*` variables (a
/// wrapper carries them, the process's environment being shared): a manual run replays the
/// fixture, and the API serves it.
#[test]
fn an_in_process_run_replays_the_fixture_the_command_names() {
    let env = Env::new();
    let server = InProcess::start(env.serve(
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
    let started = server.post("/api/v1/run");
    assert_eq!(started.status, 202, "{}", started.body);
    let sample = common::eventually("the manual run stored", || {
        let page = server.get("/api/v1/samples").json();
        page["samples"].get(0).cloned()
    });
    assert_eq!(sample["outcome"], "success", "{sample}");
    assert_eq!(sample["trigger"], "manual", "{sample}");
    assert_eq!(sample["isp"], "Test ISP", "the fixture's: {sample}");
    assert_eq!(
        common::pids(&env.path("pids")).len(),
        1,
        "the fake noted its pid where the command's FAKE_SPEEDTEST_PIDS said"
    );
}

mod time_ranges {
    //! Time parameters mean one thing everywhere: every endpoint taking `from` and `to` answers a
    //! value with the same status, and an empty or inverted range names the ends given and says
    //! which end is a default.

    use crate::common;
    use crate::common::{Env, Server};

    /// The endpoints taking `from` and `to`.
    const ENDPOINTS: [&str; 7] = [
        "/api/v1/samples",
        "/api/v1/samples.csv",
        "/api/v1/summary",
        "/api/v1/series",
        "/api/v1/heatmap",
        "/api/v1/outages",
        "/api/v1/latency",
    ];

    #[test]
    fn every_endpoint_answers_a_time_parameter_alike() {
        let env = Env::new();
        let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
        let mut table = Vec::new();
        for value in [
            "2030",
            "1999",
            "2026",
            "2030-01-01",
            "7d",
            "bogus",
            "2026-13-01",
            "-5d",
            "0",
            "2026-11",
        ] {
            for parameter in ["from", "to"] {
                let statuses: Vec<(u16, &str)> = ENDPOINTS
                    .iter()
                    .map(|endpoint| {
                        let response = server.get(&format!("{endpoint}?{parameter}={value}"));
                        (response.status, *endpoint)
                    })
                    .collect();
                table.push(format!("{parameter}={value}: {statuses:?}"));
            }
        }
        let uneven: Vec<&String> = table
            .iter()
            .filter(|row| {
                let statuses: Vec<&str> = row.split('(').skip(1).map(|s| &s[..3]).collect();
                statuses.iter().any(|s| *s != statuses[0])
            })
            .collect();
        assert!(uneven.is_empty(), "{}", table.join("\n"));
    }

    #[test]
    fn an_inverted_range_names_the_end_given_and_the_default() {
        let env = Env::new();
        let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
        for endpoint in ENDPOINTS {
            let response = server.get(&format!("{endpoint}?from=2030-01-01"));
            assert_eq!(response.status, 400, "{endpoint}: {}", response.body);
            assert!(
            response.body.contains(
                r#"from=\"2030-01-01\" (2030-01-01T00:00:00.000Z) must be before to (default: now, "#
            ),
            "{endpoint}: {}",
            response.body
        );
            let response = server.get(&format!("{endpoint}?from=2030-01-01&to=2029-01-01"));
            assert_eq!(response.status, 400, "{endpoint}: {}", response.body);
            assert!(
                response
                    .body
                    .contains(r#"must be before to=\"2029-01-01\" (2029-01-01T00:00:00.000Z)"#),
                "{endpoint}: {}",
                response.body
            );
        }
        let db = env.db();
        let output = common::command(&[
            "export",
            "--db",
            db.to_str().unwrap(),
            "--from",
            "2030-01-01",
        ])
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("--from (2030-01-01T00:00:00.000Z) must be before --to (")
                && stderr.contains(", now: --to not given)"),
            "{stderr}"
        );
    }
}
