//! End to end: plan, summary, report, confirming retests and manual runs, against the real
//! binary with imported history whose right answers are computed by hand below.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Env, Server, request};
use serde_json::{Value, json};

const MINUTE: u64 = 60_000;

impl Env {
    fn report(&self, args: &[&str]) -> std::process::Output {
        let db = self.db();
        let mut all = vec!["report", "--db", db.to_str().unwrap()];
        all.extend_from_slice(args);
        common::command(&all).output().unwrap()
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn rfc3339(millis: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

/// A success measuring `download_mbit` down, 20 Mbit/s up and `ping_ms`.
fn success(millis: u64, trigger: &str, download_mbit: f64, ping_ms: f64) -> Value {
    json!({
        "time": rfc3339(millis), "outcome": "success", "reason": null, "message": null,
        "trigger": trigger, "duration_seconds": 20.0,
        "download_bytes_per_second": download_mbit * 125_000.0,
        "upload_bytes_per_second": 2_500_000.0, "ping_seconds": ping_ms / 1000.0,
        "jitter_seconds": null, "packet_loss_ratio": null, "download_latency_seconds": null,
        "upload_latency_seconds": null, "downloaded_bytes": null, "uploaded_bytes": null,
        "server": null, "isp": null, "result_url": null
    })
}

fn failure(millis: u64, reason: &str) -> Value {
    json!({
        "time": rfc3339(millis), "outcome": "failure", "reason": reason, "message": "x",
        "trigger": "schedule", "duration_seconds": 1.0, "download_bytes_per_second": null,
        "upload_bytes_per_second": null, "ping_seconds": null, "jitter_seconds": null,
        "packet_loss_ratio": null, "download_latency_seconds": null,
        "upload_latency_seconds": null, "downloaded_bytes": null, "uploaded_bytes": null,
        "server": null, "isp": null, "result_url": null
    })
}

/// Twenty scheduled successes an hour apart, downloading 1, 2 … 20 Mbit/s (oldest slowest)
/// with ping 10 … 29 ms, two failures, and one sample from before the window.
fn history(now: u64) -> Vec<Value> {
    let start = now - 24 * 60 * MINUTE;
    let mut lines: Vec<Value> = (0..20u64)
        .map(|i| {
            success(
                start + i * 60 * MINUTE,
                "schedule",
                (i + 1) as f64,
                10.0 + i as f64,
            )
        })
        .collect();
    lines.push(failure(start + 30 * MINUTE, "timeout"));
    lines.push(failure(start + 90 * MINUTE, "no_connectivity"));
    lines.push(success(now - 40 * 24 * 60 * MINUTE, "schedule", 999.0, 1.0));
    lines
}

#[test]
fn summary_counts_percentiles_and_plan_compliance() {
    let env = Env::new();
    let now = now_millis();
    env.import(&history(now));
    let server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &[
            "--start-delay",
            "1h",
            "--plan-download",
            "10Mbit/s",
            "--plan-upload",
            "20Mbps",
        ],
    ));
    let summary = server.get("/api/v1/summary?window=30d");
    assert_eq!(summary.status, 200, "{}", summary.body);
    let summary = summary.json();
    assert_eq!(
        summary["runs"],
        json!({"total": 22, "success": 20, "failure": 2, "skipped": 0})
    );
    assert_eq!(summary["failures_by_reason"]["timeout"], 1);
    assert_eq!(summary["failures_by_reason"]["no_connectivity"], 1);
    assert_eq!(summary["failures_by_reason"]["spawn"], 0);
    assert_eq!(
        summary["failures_by_kind"],
        json!({"network": 2, "service": 0, "local": 0, "other": 0})
    );
    assert_eq!(summary["percentile_method"], "nearest-rank");
    // Nearest rank over n = 20: p5 is rank ceil(1) = 1, p50 rank 10, p95 rank 19.
    let mbit = 125_000.0;
    assert_eq!(
        summary["download_bytes_per_second"],
        json!({"min": mbit, "p5": mbit, "p50": 10.0 * mbit, "p95": 19.0 * mbit, "max": 20.0 * mbit})
    );
    assert_eq!(
        summary["ping_seconds"],
        json!({"min": 0.01, "p5": 0.01, "p50": 0.019, "p95": 0.028, "max": 0.029})
    );
    // Meeting the plan needs 8 Mbit/s down (80 % of 10) and 16 up (80 % of 20): runs 8 … 20.
    let plan = &summary["plan"];
    assert_eq!(plan["download_bytes_per_second"], 10.0 * mbit);
    assert_eq!(plan["threshold"], 0.8);
    assert_eq!(plan["measurements"], 20);
    assert_eq!(plan["met"], 13);
    assert_eq!(plan["breaches"], 7);
    assert_eq!(plan["share_met"], 0.65);
    // The first seven hours were below: from the first run to the first that met (run 8).
    let start = now - 24 * 60 * MINUTE;
    assert_eq!(
        plan["longest_below"],
        json!({
            "from": rfc3339(start), "to": rfc3339(start + 7 * 60 * MINUTE),
            "seconds": 7.0 * 3600.0, "measurements": 7, "ongoing": false,
            "last_below": rfc3339(start + 6 * 60 * MINUTE)
        })
    );
    let short = server.get("/api/v1/summary?window=2h").json();
    assert_eq!(
        short["runs"]["total"], 0,
        "the newest sample is 5 hours old"
    );
    assert_eq!(short["download_bytes_per_second"], Value::Null);
    let bad = server.get("/api/v1/summary?window=forever");
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json()["error"],
        "invalid window: \"forever\" is not a duration such as 24h, 30d or 365d"
    );
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("speedtest_plan_download_bytes_per_second 1250000\n"),
        "{metrics}"
    );
    assert!(metrics.contains("speedtest_plan_upload_bytes_per_second 2500000\n"));
}

#[test]
fn a_retest_decides_whether_a_slow_run_is_a_breach() {
    let env = Env::new();
    let now = now_millis();
    let t = now - 10 * 60 * MINUTE;
    env.import(&[
        success(t, "schedule", 5.0, 10.0),               // below…
        success(t + 5 * MINUTE, "retest", 9.0, 10.0),    // …refuted by its retest
        success(t + 60 * MINUTE, "schedule", 5.0, 10.0), // below…
        failure(t + 62 * MINUTE, "timeout"),             // (a retest attempt that failed)
        success(t + 65 * MINUTE, "retest", 6.0, 10.0),   // …confirmed
        success(t + 120 * MINUTE, "schedule", 9.5, 10.0),
    ]);
    let output = env.report(&["--format", "json", "--plan-download", "10Mbit/s"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let plan = &summary["plan"];
    assert_eq!(plan["measurements"], 3);
    assert_eq!(plan["met"], 2);
    assert_eq!(plan["breaches"], 1);
    assert_eq!(plan["retests"], json!({"confirmed": 1, "refuted": 1}));
}

#[test]
fn report_prints_a_summary_for_a_person() {
    let env = Env::new();
    env.import(&history(now_millis()));
    let output = env.report(&["--window", "30d", "--plan-download", "10Mbit/s"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("internet-monitor report, "), "{text}");
    assert!(
        text.contains("Runs: 22 (20 succeeded, 2 failed, 0 skipped)"),
        "{text}"
    );
    assert!(text.contains("Plan: 10 Mbit/s down"), "{text}");
    assert!(
        text.contains("met by 13 of 20 measurements (65.0 %)"),
        "{text}"
    );
    let missing = Env::new().report(&[]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn report_takes_dates_and_says_an_ongoing_breach_so_far() {
    let env = Env::new();
    // One run, below the plan, an hour ago: the breach is ongoing and has lasted an hour.
    let hour_ago = now_millis() - 60 * MINUTE;
    env.import(&[success(hour_ago, "schedule", 5.0, 10.0)]);
    let output = env.report(&["--plan-download", "10Mbit/s", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let longest = &json["plan"]["longest_below"];
    assert_eq!(longest["ongoing"], true);
    assert_eq!(longest["last_below"], rfc3339(hour_ago).as_str());
    let seconds = longest["seconds"].as_f64().unwrap();
    assert!(seconds >= 3600.0, "lasted so far, not 0 s: {longest}");
    let text = env.report(&["--plan-download", "10Mbit/s"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("Longest stretch below the plan: ongoing, 1h"),
        "{text}"
    );
    // The evidence pack says it too.
    let html = env.report(&["--plan-download", "10Mbit/s", "--format", "html"]);
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(
        html.contains("<p>Longest stretch below the plan: ongoing, 1h"),
        "{html}"
    );
    // A date is its midnight UTC, for --from and --to alike.
    let dated = env.report(&[
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
        "--format",
        "json",
    ]);
    assert_eq!(dated.status.code(), Some(0), "{dated:?}");
    let window = &serde_json::from_slice::<Value>(&dated.stdout).unwrap()["window"];
    assert_eq!(
        *window,
        json!({"from": "2026-11-01T00:00:00.000Z", "to": "2026-11-02T00:00:00.000Z"})
    );
    let inverted = env.report(&["--from", "2026-11-02", "--to", "2026-11-01"]);
    assert_eq!(inverted.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&inverted.stderr),
        "internet-monitor: error: --from (2026-11-02T00:00:00.000Z) must be before --to \
         (2026-11-01T00:00:00.000Z)\n"
    );
    let zero = env.report(&["--window", "0s"]);
    assert_eq!(zero.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("must be longer than zero"),
        "{zero:?}"
    );
}

#[test]
fn the_monitors_own_faults_are_reported_apart_from_the_lines() {
    let env = Env::new();
    let now = now_millis();
    let reasons = [
        "no_connectivity",
        "timeout",
        "timeout",
        "spawn",
        "parse",
        "output_too_large",
        "rate_limited",
        "exit",
    ];
    let mut lines: Vec<Value> = reasons
        .iter()
        .enumerate()
        .map(|(i, reason)| failure(now - (60 - i as u64) * MINUTE, reason))
        .collect();
    lines.push(success(now - 10 * MINUTE, "schedule", 50.0, 10.0));
    env.import(&lines);
    let kinds = json!({"network": 3, "service": 1, "local": 3, "other": 1});

    let output = env.report(&["--format", "json"]);
    assert_eq!(output.status.code(), Some(0));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["failures_by_kind"], kinds);
    assert_eq!(
        summary["failures_by_reason"]["spawn"], 1,
        "by reason as before"
    );

    let output = env.report(&[]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let failures: Vec<&str> = text.lines().filter(|l| l.starts_with("Failures")).collect();
    assert_eq!(
        failures,
        [
            "Failures counted against the line: 3 (network: timeout 2, no_connectivity 1)",
            "Failures not counted against the line: 5 (service: rate_limited 1; \
             local: spawn 1, parse 1, output_too_large 1; other: exit 1)",
        ],
        "{text}"
    );

    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let summary = server.get("/api/v1/summary?window=1d");
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert_eq!(summary.json()["failures_by_kind"], kinds);
}

#[test]
fn a_run_below_the_plan_is_retested() {
    let env = Env::new();
    // The fixture downloads 741.8 Mbit/s: below 90 % of a 1 Gbit/s plan.
    let mut server = Server::start(env.serve(
        "ok-1.2-with-loaded-latency",
        "replay",
        &[
            "--plan-download",
            "1Gbit/s",
            "--retest-below",
            "0.9",
            "--retest-after",
            "1s",
        ],
    ));
    let retested = server.wait_for_log("trigger=retest");
    // The retest's start line names its trigger, engine and server, like any run's.
    let started = server
        .seen
        .iter()
        .find(|line| line.contains("retest test started"))
        .unwrap_or_else(|| panic!("no retest start line in {:?}", server.seen));
    let fields = common::log_fields(started);
    for (key, value) in [
        ("run", "retest"),
        ("engine", "ookla"),
        ("server", "chosen by the CLI"),
    ] {
        assert_eq!(
            fields.get(key).map(String::as_str),
            Some(value),
            "{key} in {started}"
        );
    }
    // Its end: figures for people, the unit in each field's name (92727670 B/s down is
    // 741.8 Mbit/s, 5.631 ms of ping, 1 586 638 624 bytes moved).
    let fields = common::log_fields(&retested);
    for (key, value) in [
        ("trigger", "retest"),
        ("download_mbit_s", "742"),
        ("upload_mbit_s", "253"),
        ("ping_ms", "5.6"),
        ("jitter_ms", "0.5"),
        ("data_used_mb", "1587"),
        ("server", "Zzoomm Plc (Slough) #57318"),
    ] {
        assert_eq!(
            fields.get(key).map(String::as_str),
            Some(value),
            "{key} in {retested}"
        );
    }
    assert!(retested.contains(" test succeeded "), "{retested}");
    let samples = server.get("/api/v1/samples").json();
    let triggers: Vec<&str> = samples["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["retest", "schedule"]);
    // 1s + --timeout 2m leaves room before the next slot at 30m: no warning.
    assert!(
        !server
            .seen
            .iter()
            .any(|line| line.contains("--retest-after")),
        "{:?}",
        server.seen
    );
}

#[test]
fn a_retest_a_slow_run_could_lose_to_the_next_slot_is_warned_about_at_start() {
    let env = Env::new();
    // A run may last --timeout 2m; ending then, its retest 4m later is past the slot at 5m.
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &[
            "--plan-download",
            "1Gbit/s",
            "--retest-below",
            "0.9",
            "--interval",
            "5m",
            "--retest-after",
            "4m",
            "--start-delay",
            "1h",
        ],
    ));
    let line = server.wait_for_log("--retest-after 4m plus --timeout 2m");
    assert!(line.contains(" WARN "), "{line}");
    assert!(
        line.contains("(plus --splay 0s) reaches --interval 5m"),
        "{line}"
    );
}

#[test]
fn retest_below_without_a_plan_is_refused_at_start() {
    let env = Env::new();
    let output = env
        .serve(
            "ok-1.2-pretty",
            "replay",
            &["--retest-below", "0.5", "--listen", "127.0.0.1:0"],
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "internet-monitor: error: --retest-below needs a plan to compare with: add --plan-download and/or --plan-upload, or store one with plan set\n"
    );
    // Refused after the store was opened (it holds the plans): the new file goes again, as
    // after a busy port.
    assert!(
        !env.db().exists(),
        "a failed start left a new database behind"
    );
}

#[test]
fn the_run_endpoint_is_off_by_default() {
    let env = Env::new();
    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let response = request(&server.address, "POST", "/api/v1/run");
    assert_eq!(response.status, 403);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("--enable-run-endpoint")
    );
    let get = server.get("/api/v1/run");
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
}

#[test]
fn a_manual_run_starts_once_and_is_stored() {
    let env = Env::new();
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "1h", "--enable-run-endpoint"],
    ));
    let started = request(&server.address, "POST", "/api/v1/run");
    assert_eq!(started.status, 202);
    let answer = started.json();
    let started_at = answer["started_at"].as_str().unwrap().to_owned();
    assert_eq!(
        answer,
        json!({
            "status": "started",
            "trigger": "manual",
            "started_at": started_at,
            "result": format!("/api/v1/samples?from={started_at}"),
        })
    );
    server.wait_for_log("trigger=manual");
    // The link the answer gave finds the sample, dated when the test started.
    let result = server.get(answer["result"].as_str().unwrap()).json();
    assert_eq!(result["samples"][0]["trigger"], "manual");
    assert_eq!(result["samples"][0]["time"], started_at.as_str());
    let again = request(&server.address, "POST", "/api/v1/run");
    assert_eq!(again.status, 429);
    let wait: u64 = again.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 300, "{wait}");
    // Like the 202 and the 409: when the last manual test started and where its result is.
    let refused = again.json();
    assert_eq!(
        refused,
        json!({
            "error": format!(
                "the last manual test started less than --min-manual-gap ago (at {started_at}); \
                 try again in {wait} s"
            ),
            "last_started_at": started_at,
            "result": format!("/api/v1/samples?from={started_at}"),
        })
    );
}

/// A POST while a test runs is a 409 saying since when and where its result will be, not
/// a 429 (the gap counts once the test is over); `since` is the test's start.
fn assert_running_conflict(server: &Server, since: &str) {
    let busy = request(&server.address, "POST", "/api/v1/run");
    assert_eq!(busy.status, 409, "{}", busy.body);
    assert_eq!(busy.header("retry-after"), None);
    let result = format!("/api/v1/samples?from={since}");
    assert_eq!(
        busy.json(),
        json!({
            "error": format!(
                "a test is running since {since}; its result will be at {result} when it has \
                 finished, and another can be started then"
            ),
            "running_since": since,
            "result": result,
        })
    );
    assert!(
        server
            .get("/metrics")
            .body
            .contains("speedtest_running 1\n")
    );
}

/// A server whose tests hang (the fake sleeps), the first scheduled after `start_delay`,
/// with the run endpoint on.
fn hanging_tests(env: &Env, start_delay: &str) -> Server {
    Server::start(env.serve(
        "ok-1.2-pretty",
        "sleep",
        &["--start-delay", start_delay, "--enable-run-endpoint"],
    ))
}

#[test]
fn a_manual_run_while_a_manual_test_runs_is_a_conflict_not_too_soon() {
    let env = Env::new();
    // The default --min-manual-gap: the second POST falls inside it, but the test runs on.
    let server = hanging_tests(&env, "1h");
    let started = request(&server.address, "POST", "/api/v1/run");
    assert_eq!(started.status, 202);
    let since = started.json()["started_at"].as_str().unwrap().to_owned();
    assert_running_conflict(&server, &since);
}

#[test]
fn a_manual_run_while_a_scheduled_test_runs_is_a_conflict() {
    let env = Env::new();
    let server = hanging_tests(&env, "0s");
    // The fake writes its pid as it starts: from then on the slot is taken.
    common::eventually("the fake's pid noted", || {
        (!common::pids(&env.path("pids")).is_empty()).then_some(())
    });
    let status = server.get("/api/v1/status").json();
    let since = status["running_since"].as_str().unwrap().to_owned();
    assert_running_conflict(&server, &since);
}

/// A success this long ago that moved `gigabytes` of test data.
fn heavy_success(millis: u64, gigabytes: u64) -> Value {
    let mut sample = success(millis, "schedule", 100.0, 10.0);
    sample["downloaded_bytes"] = json!(gigabytes * 1_000_000_000);
    sample["uploaded_bytes"] = json!(0);
    sample
}

#[test]
fn a_used_up_data_budget_skips_scheduled_runs() {
    let env = Env::new();
    env.import(&[heavy_success(now_millis() - 1, 150)]);
    let mut command = env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--data-budget", "100GB", "--plan-download", "500Mbit/s"],
    );
    command.env("FAKE_SPEEDTEST_ARGS", env.path("args"));
    let mut server = Server::start(command);
    // The start-up line and the budget's line follow one rule, read as logfmt: a value that
    // holds spaces is quoted and comes back whole, a token is bare.
    let start = server.wait_for_log("listening on http");
    let fields = common::log_fields(&start);
    for (key, value) in [
        ("engine", "ookla"),
        ("plan", "download 500 Mbit/s, upload none, threshold 0.8"),
        ("retention", "keep every sample"),
        ("data_budget", "100 GB"),
        ("interval", "30m"),
    ] {
        assert_eq!(
            fields.get(key).map(String::as_str),
            Some(value),
            "{key} in {start}"
        );
    }
    let skipped_line = server.wait_for_log("test skipped");
    let fields = common::log_fields(&skipped_line);
    for (key, value) in [
        ("trigger", "schedule"),
        ("data_used_mb", "150000"),
        ("data_budget_mb", "100000"),
    ] {
        assert_eq!(
            fields.get(key).map(String::as_str),
            Some(value),
            "{key} in {skipped_line}"
        );
    }
    assert!(
        skipped_line.contains(" trigger=schedule "),
        "{skipped_line}"
    );
    let newest = server.get("/api/v1/samples?limit=1").json();
    let skipped = &newest["samples"][0];
    assert_eq!(skipped["outcome"], "skipped");
    assert_eq!(skipped["reason"], "data_budget");
    assert!(
        skipped["message"]
            .as_str()
            .unwrap()
            .starts_with("data budget of 100 GB for this month reached (150 GB moved by tests)"),
        "{skipped}"
    );
    assert!(!env.path("args").exists(), "the CLI must not run");
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("speedtest_runs_total{result=\"data_budget\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("speedtest_up 1\n"),
        "a skipped run is not a failed run"
    );
    let summary = server.get("/api/v1/summary").json();
    assert_eq!(summary["runs"]["skipped"], 1);
}

#[test]
fn the_test_that_would_cross_the_budget_is_skipped_and_said_once() {
    // 60 GB of 100 GB used by a test that moved 60 GB: the next would cross the budget.
    let env = Env::new();
    env.import(&[heavy_success(now_millis() - 1, 60)]);
    let mut command = env.serve(
        "ok-1.2-pretty",
        "replay",
        &[
            "--data-budget",
            "100GB",
            "--interval",
            "1s",
            "--enable-run-endpoint",
            "--min-manual-gap",
            "0s",
        ],
    );
    command
        .env("FAKE_SPEEDTEST_ARGS", env.path("args"))
        .env("RUST_LOG", "info,internet_monitor::daemon::state=debug");
    let mut server = Server::start(command);
    // Each skipped slot is stored and said at debug level only; two of them.
    server.wait_for_logs("test skipped again", 2);
    assert!(!env.path("args").exists(), "the CLI must not run");
    let said = |server: &Server| -> Vec<String> {
        server
            .seen
            .iter()
            .filter(|line| line.contains("test skipped:"))
            .cloned()
            .collect()
    };
    let skipping = said(&server);
    assert_eq!(skipping.len(), 1, "said once: {skipping:#?}");
    assert!(
        skipping[0].contains(
            "would be crossed by the next test (60.0 GB moved by tests, and the last test moved 60.0 GB)"
        ),
        "{}",
        skipping[0]
    );
    assert!(
        skipping[0].contains("data_used_mb=60000"),
        "{}",
        skipping[0]
    );
    let skipped = server.get("/api/v1/samples?limit=1").json();
    assert_eq!(skipped["samples"][0]["reason"], "data_budget");
    // A manual test (never skipped) moves 0.44 GB: the estimate drops, scheduled tests resume,
    // and that is said once too.
    assert_eq!(request(&server.address, "POST", "/api/v1/run").status, 202);
    let resumed = server.wait_for_log("tests resume: the data budget");
    assert!(resumed.contains(" INFO "), "{resumed}");
    // The manual test and a scheduled one after it.
    server.wait_for_logs("test succeeded", 2);
    let log = server.assert_clean_exit();
    assert_eq!(
        log.iter()
            .filter(|line| line.contains("tests resume: the data budget"))
            .count(),
        1,
        "{log:#?}"
    );
    assert_eq!(said(&server).len(), 1);
}

/// A scheduled run skipped for the data budget, this long ago.
fn skipped(millis: u64) -> Value {
    json!({
        "time": rfc3339(millis), "outcome": "skipped", "reason": "data_budget",
        "message": "data budget of 100 GB for this month reached (150 GB moved by tests)",
        "trigger": "schedule", "duration_seconds": null, "download_bytes_per_second": null,
        "upload_bytes_per_second": null, "ping_seconds": null, "jitter_seconds": null,
        "packet_loss_ratio": null, "download_latency_seconds": null,
        "upload_latency_seconds": null, "downloaded_bytes": null, "uploaded_bytes": null,
        "server": null, "isp": null, "result_url": null, "engine": null
    })
}

#[test]
fn a_restart_after_skipped_runs_shows_the_last_run_made() {
    // Live, a skipped run leaves the last run's gauges alone; a restart must show the same,
    // not blank them because the newest sample is a skipped one.
    let env = Env::new();
    let ran = now_millis() - 10 * MINUTE;
    env.import(&[heavy_success(ran, 150), skipped(ran + 5 * MINUTE)]);
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--data-budget", "100GB", "--start-delay", "1h"],
    ));
    server.wait_for_log("listening on");
    let metrics = server.get("/metrics").body;
    for line in [
        "speedtest_up 1\n".to_owned(),
        format!(
            "speedtest_last_run_timestamp_seconds {}\n",
            ran as f64 / 1000.0
        ),
        "speedtest_run_duration_seconds 20\n".to_owned(),
        "speedtest_engine_info{engine=\"ookla\",protocol=\"\",streams=\"\",url=\"\"} 1\n"
            .to_owned(),
    ] {
        assert!(metrics.contains(&line), "{line:?} missing from\n{metrics}");
    }
}

#[test]
fn last_months_data_does_not_count_against_this_months_budget() {
    let env = Env::new();
    env.import(&[heavy_success(now_millis() - 40 * 24 * 60 * MINUTE, 150)]);
    let mut server =
        Server::start(env.serve("ok-1.2-pretty", "replay", &["--data-budget", "100GB"]));
    server.wait_for_log("test succeeded");
}

#[test]
fn retention_deletes_what_is_older_than_it_keeps() {
    // A run every 12 h, the newest 6 h ago, the oldest 31.75 days ago: the four older than
    // 30 days go. (Retention counts a gap in the record as at most a day, so the record is
    // kept without gaps here; see tests/clock.rs for gaps.)
    let env = Env::new();
    let now = now_millis();
    let hour = 60 * MINUTE;
    let samples: Vec<Value> = (0..64u64)
        .map(|step| success(now - 6 * hour - step * 12 * hour, "schedule", 1.0, 10.0))
        .collect();
    env.import(&samples);
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "1h", "--retention", "30d"],
    ));
    let line = server.wait_for_log("retention deleted old samples");
    assert!(
        line.contains("deleted=4") && line.contains("left=60"),
        "{line}"
    );
    // A few samples, as an hourly pass deletes: INFO.
    assert!(line.contains(" INFO "), "{line}");
    let kept = server.get("/api/v1/samples").json();
    assert_eq!(kept["samples"].as_array().unwrap().len(), 60);
    assert!(
        server
            .get("/metrics")
            .body
            .contains("internet_monitor_samples 60\n")
    );
}

/// A Cloudflare-style speed-test server on 127.0.0.1 (blocking, a thread per connection) that
/// serves `GET /__down?bytes=N` in full but answers every `POST /__up`, once its body is read,
/// with HTTP 500: an HTTP-engine run downloads, then fails. Runs until the test process ends.
fn upload_refusing_server() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(tcp.try_clone().unwrap());
                let mut tcp = tcp;
                let zeros = vec![0u8; 1 << 16];
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0u64;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                    if line.starts_with("POST ") {
                        // Read the body, so the answer is a clean 500, not a broken pipe.
                        if std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink())
                            .is_err()
                        {
                            return;
                        }
                        let _ = tcp.write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
                        );
                        continue;
                    }
                    let Some(mut bytes) = target
                        .strip_prefix("/__down?bytes=")
                        .and_then(|n| n.parse::<u64>().ok())
                    else {
                        let _ =
                            tcp.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                        continue;
                    };
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {bytes}\r\n\r\n");
                    if tcp.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    while bytes > 0 {
                        let n = bytes.min(zeros.len() as u64);
                        if tcp.write_all(&zeros[..n as usize]).is_err() {
                            return;
                        }
                        bytes -= n;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

#[test]
fn a_failed_http_run_counts_what_it_moved_towards_the_data_budget() {
    let url = upload_refusing_server();
    let env = Env::new();
    let db = env.db();
    let mut command = common::command(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--engine",
        "http",
        "--http-server",
        &url,
        "--http-duration",
        "1s",
        "--http-streams",
        "1",
        "--data-budget",
        "1MB",
        "--interval",
        "2s",
        "--start-delay",
        "0s",
    ]);
    command.env("RUST_LOG", "info");
    let mut server = Server::start(command);
    // The first run downloads for a second, well over 1 MB on loopback, then its upload is
    // refused: a failure that moved data.
    server.wait_for_log("test failed");
    // The next scheduled run (its retry) finds the budget used up by the failure alone.
    server.wait_for_log("test skipped");
    let samples = server.get("/api/v1/samples?limit=2").json();
    let (skipped, failed) = (&samples["samples"][0], &samples["samples"][1]);
    assert_eq!(failed["outcome"], "failure", "{samples:#}");
    assert_eq!(failed["reason"], "exit", "{samples:#}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("answered POST /__up with HTTP 500 Internal Server Error"),
        "{samples:#}"
    );
    let downloaded = failed["downloaded_bytes"].as_u64().expect("bytes counted");
    assert!(downloaded > 1_000_000, "{samples:#}");
    assert!(failed["uploaded_bytes"].as_u64().is_some(), "{samples:#}");
    assert_eq!(skipped["outcome"], "skipped", "{samples:#}");
    assert_eq!(skipped["reason"], "data_budget", "{samples:#}");
    assert!(
        skipped["message"]
            .as_str()
            .unwrap()
            .starts_with("data budget of 1.0 MB for this month reached ("),
        "{samples:#}"
    );
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains(&format!(
            "speedtest_transferred_bytes_total{{direction=\"download\"}} {downloaded}\n"
        )),
        "{metrics}"
    );
    server.assert_clean_exit();
}

/// A restarted `serve` keeps the rate-limit rule of a running one: its newest run was refused
/// as `rate_limited` 10 minutes ago, so with a 1 h interval the first test waits about 50
/// minutes instead of going out at once (a restart loop must not hammer a service that said no).
#[test]
fn a_restart_after_a_rate_limited_run_waits_out_the_interval() {
    let env = Env::new();
    let now = now_millis();
    env.import(&[failure(now - 10 * MINUTE, "rate_limited")]);
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "0s", "--interval", "1h"],
    ));
    server.wait_for_log(
        "the last run was rate-limited; the first test waits until one interval after it",
    );
    let metrics = server.get("/metrics").body;
    let next: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("speedtest_next_run_timestamp_seconds "))
        .expect("the next run is planned")
        .parse()
        .unwrap();
    let wait = next - now as f64 / 1000.0;
    assert!(
        (2900.0..=3060.0).contains(&wait),
        "the first test is planned {wait} s from now"
    );
    let samples = server.get("/api/v1/samples").body;
    assert_eq!(
        samples.matches("\"time\"").count(),
        1,
        "no test went out: {samples}"
    );
    server.assert_clean_exit();
}
