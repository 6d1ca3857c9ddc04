//! The contract as stored, versioned data: `plan set/show/history` through the real binary,
//! serve's `--plan-*` flags storing a version once, `report` judging each run against the
//! version in force at its time, old stores, and damaged plan records.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Env, PATIENCE, Server, command};
use serde_json::{Value, json};

const HOUR: u64 = 60 * 60 * 1000;

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn rfc3339(millis: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

/// `internet-monitor plan ARGS… --db DB`.
fn plan(db: &Path, args: &[&str]) -> Output {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--db", db.to_str().unwrap()]);
    command(&all).output().expect("run plan")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

fn history_json(db: &Path) -> Value {
    serde_json::from_str(&ok(plan(db, &["history", "--format", "json"]))).unwrap()
}

/// A scheduled success measuring `download_mbit` down and 20 Mbit/s up.
fn success(millis: u64, download_mbit: f64) -> Value {
    json!({
        "time": rfc3339(millis), "outcome": "success", "reason": null, "message": null,
        "trigger": "schedule", "duration_seconds": 20.0,
        "download_bytes_per_second": download_mbit * 125_000.0,
        "upload_bytes_per_second": 2_500_000.0, "ping_seconds": 0.01,
        "jitter_seconds": null, "packet_loss_ratio": null, "download_latency_seconds": null,
        "upload_latency_seconds": null, "downloaded_bytes": null, "uploaded_bytes": null,
        "server": null, "isp": null, "result_url": null
    })
}

#[test]
fn plan_set_show_and_history_keep_versions_by_their_time() {
    let env = Env::new();
    let db = env.db();
    let said = ok(plan(
        &db,
        &[
            "set",
            "--download-max",
            "250Mbit/s",
            "--download-normal",
            "200Mbit/s",
            "--download-min",
            "100Mbit/s",
            "--download-advertised",
            "250Mbit/s",
            "--upload-min",
            "10Mbit/s",
            "--latency-max",
            "30ms",
            "--from",
            "2026-01-01T00:00:00Z",
        ],
    ));
    assert!(said.starts_with("plan version stored in "), "{said}");
    assert!(said.contains("minimum 100 Mbit/s"), "{said}");
    ok(plan(
        &db,
        &[
            "set",
            "--download-advertised",
            "500Mbit/s",
            "--threshold",
            "0.9",
            "--from",
            "2026-06-01T00:00:00Z",
        ],
    ));

    // A second version at the same time is refused without --replace, and nothing changes.
    let again = plan(
        &db,
        &[
            "set",
            "--download-advertised",
            "1Gbit/s",
            "--from",
            "2026-06-01T00:00:00Z",
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again)
            .contains("already has a plan version from 2026-06-01T00:00:00.000Z: pass --replace"),
        "{}",
        stderr(&again)
    );
    let history = history_json(&db);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["from"], "2026-01-01T00:00:00.000Z");
    assert_eq!(
        versions[0]["download"]["minimum_bytes_per_second"],
        12_500_000.0
    );
    assert_eq!(
        versions[0]["download"]["judged_bytes_per_second"],
        31_250_000.0
    );
    assert_eq!(
        versions[0]["upload"]["minimum_bytes_per_second"],
        1_250_000.0
    );
    assert_eq!(
        versions[0]["upload"]["judged_bytes_per_second"],
        Value::Null
    );
    assert_eq!(versions[0]["latency_max_seconds"], 0.03);
    assert_eq!(versions[0]["threshold"], 0.8);
    assert_eq!(
        versions[1]["download"]["advertised_bytes_per_second"],
        62_500_000.0
    );
    assert_eq!(versions[1]["threshold"], 0.9);

    ok(plan(
        &db,
        &[
            "set",
            "--download-advertised",
            "1Gbit/s",
            "--from",
            "2026-06-01T00:00:00Z",
            "--replace",
        ],
    ));
    let at = |time: &str| -> Value {
        serde_json::from_str(&ok(plan(&db, &["show", "--at", time, "--format", "json"]))).unwrap()
    };
    assert_eq!(at("2025-12-31T23:59:59.999Z"), Value::Null);
    assert_eq!(
        at("2026-01-01T00:00:00Z")["from"],
        "2026-01-01T00:00:00.000Z"
    );
    assert_eq!(
        at("2026-05-31T23:59:59.999Z")["from"],
        "2026-01-01T00:00:00.000Z"
    );
    let june = at("2026-06-01T00:00:00Z");
    assert_eq!(
        june["download"]["advertised_bytes_per_second"],
        125_000_000.0
    );
    assert_eq!(
        june["threshold"], 0.8,
        "a replacement is the whole new version"
    );
    assert_eq!(history_json(&db)["versions"].as_array().unwrap().len(), 2);
    let text = ok(plan(&db, &["show", "--at", "2025-01-01T00:00:00Z"]));
    assert!(
        text.starts_with("no plan in force at 2025-01-01T00:00:00.000Z"),
        "{text}"
    );
}

#[test]
fn plan_set_refuses_impossible_contracts_naming_the_flags() {
    let env = Env::new();
    let db = env.db();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--download-min", "300Mbit/s", "--download-max", "250Mbit/s"],
            "--download-min must not be faster than --download-max",
        ),
        (
            &["--upload-normal", "50Mbit/s", "--upload-min", "60Mbit/s"],
            "--upload-min must not be faster than --upload-normal",
        ),
        (
            &["--download-max", "200Gbit/s"],
            "--download-max is faster than 100Gbit/s",
        ),
        (&["--from", "1d"], "at least one speed or --latency-max"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["set"];
        args.extend_from_slice(flags);
        let refused = plan(&db, &args);
        assert_eq!(refused.status.code(), Some(1), "{flags:?}");
        assert!(
            stderr(&refused).contains(expected),
            "{flags:?}: {}",
            stderr(&refused)
        );
    }
    let threshold = plan(
        &db,
        &["set", "--download-max", "1Gbit/s", "--threshold", "1.5"],
    );
    assert!(!threshold.status.success(), "a bad ratio is refused");
    assert!(
        stderr(&threshold).contains("--threshold"),
        "{}",
        stderr(&threshold)
    );
    // A refused version is refused before the file is even created.
    assert!(!db.exists());
}

#[test]
fn serve_stores_its_plan_flags_once_and_serves_the_history() {
    let env = Env::new();
    let flags = ["--start-delay", "1h", "--plan-download", "100Mbit/s"];
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &flags));
    let stored = server.wait_for_log("stored them as a new plan version");
    assert!(
        stored.contains("old=\"none\"")
            && stored.contains("new=\"download 100 Mbit/s, upload none, threshold 0.8\""),
        "{stored}"
    );
    let answer = server.get("/api/v1/plan");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = answer.json();
    // The first version is in force since the epoch: the runs before it were judged by the flags.
    assert_eq!(answer["current"]["from"], "1970-01-01T00:00:00.000Z");
    assert_eq!(
        answer["current"]["download"]["advertised_bytes_per_second"],
        12_500_000.0
    );
    assert_eq!(answer["history"].as_array().unwrap().len(), 1);
    server.assert_clean_exit();

    // The same flags again: nothing new.
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &flags));
    server.assert_clean_exit();
    assert!(
        !server
            .seen
            .iter()
            .any(|line| line.contains("new plan version")),
        "{:?}",
        server.seen
    );
    assert_eq!(
        history_json(&env.db())["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Other flags: a new version from now, logged with the old plan and the new.
    let changed = ["--start-delay", "1h", "--plan-download", "200Mbit/s"];
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &changed));
    let stored = server.wait_for_log("stored them as a new plan version");
    assert!(
        stored.contains("download 100 Mbit/s") && stored.contains("download 200 Mbit/s"),
        "{stored}"
    );
    server.assert_clean_exit();
    let versions = history_json(&env.db())["versions"].clone();
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert_ne!(versions[1]["from"], "1970-01-01T00:00:00.000Z");

    // No flags: the stored history is used, for the API and the gauges.
    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let answer = server.get("/api/v1/plan").json();
    assert_eq!(
        answer["current"]["download"]["advertised_bytes_per_second"],
        25_000_000.0
    );
    assert_eq!(answer["history"].as_array().unwrap().len(), 2);
    // Guarded like /api/v1/status: a page on a rebound name cannot read the contract.
    let port = server.address.rsplit(':').next().unwrap().to_owned();
    let rebound = format!("evil.example:{port}");
    let headers = [
        ("Host", rebound.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let refused =
        common::try_request_with(&server.address, "GET", "/api/v1/plan", &headers).unwrap();
    assert_eq!(refused.status, 403, "{}", refused.body);
    let posted = common::request(&server.address, "POST", "/api/v1/plan");
    assert_eq!(posted.status, 405, "read-only: {}", posted.body);
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("speedtest_plan_download_bytes_per_second 2.5e7")
            || metrics.contains("speedtest_plan_download_bytes_per_second 25000000"),
        "{metrics}"
    );
}

#[test]
fn serve_plan_flags_change_only_their_terms_of_the_version_in_force() {
    let env = Env::new();
    let db = env.db();
    ok(plan(
        &db,
        &[
            "set",
            "--download-max",
            "600Mbit/s",
            "--download-normal",
            "450Mbit/s",
            "--download-min",
            "300Mbit/s",
            "--download-advertised",
            "500Mbit/s",
            "--latency-max",
            "30ms",
            "--threshold",
            "0.9",
            "--from",
            "2026-01-01T00:00:00Z",
        ],
    ));
    // The upload speed added the way the README's serve example gives it.
    let flags = [
        "--start-delay",
        "1h",
        "--plan-download",
        "500Mbit/s",
        "--plan-upload",
        "50Mbit/s",
    ];
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &flags));
    let stored = server.wait_for_log("stored them as a new plan version");
    assert!(
        stored.contains("upload advertised none → 50.0 Mbit/s")
            && stored.contains("download maximum 600 Mbit/s")
            && stored.contains("latency-max 30 ms")
            && stored.contains("threshold 0.9"),
        "{stored}"
    );
    let answer = server.get("/api/v1/plan").json();
    server.assert_clean_exit();
    let current = &answer["current"];
    assert_eq!(
        current["download"]["maximum_bytes_per_second"], 75e6,
        "{current}"
    );
    assert_eq!(
        current["download"]["normally_available_bytes_per_second"],
        56.25e6
    );
    assert_eq!(current["download"]["minimum_bytes_per_second"], 37.5e6);
    assert_eq!(current["download"]["advertised_bytes_per_second"], 62.5e6);
    assert_eq!(current["upload"]["advertised_bytes_per_second"], 6.25e6);
    assert_eq!(current["latency_max_seconds"], 0.03);
    assert_eq!(current["threshold"], 0.9);

    // The same flags again change nothing; a threshold given replaces only the threshold.
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &flags));
    server.assert_clean_exit();
    assert!(
        !server
            .seen
            .iter()
            .any(|line| line.contains("new plan version")),
        "{:?}",
        server.seen
    );
    let mut with_threshold = flags.to_vec();
    with_threshold.extend(["--plan-threshold", "0.5"]);
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &with_threshold));
    let stored = server.wait_for_log("stored them as a new plan version");
    assert!(
        stored.contains("changed=\"threshold 0.9 → 0.5\" kept="),
        "{stored}"
    );
    server.assert_clean_exit();
    let versions = history_json(&db)["versions"].clone();
    assert_eq!(versions.as_array().unwrap().len(), 3, "{versions}");
    assert_eq!(versions[2]["download"]["minimum_bytes_per_second"], 37.5e6);
    assert_eq!(versions[2]["latency_max_seconds"], 0.03);
    assert_eq!(versions[2]["threshold"], 0.5);

    // A speed above the stored maximum: refused in serve's terms, naming both, and the way out.
    let output = common::serve_command(
        &db,
        "ok-1.2-pretty",
        &["--listen", "127.0.0.1:0", "--plan-download", "700Mbit/s"],
    )
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "--plan-download 700 Mbit/s (the advertised speed) does not fit the stored plan in \
             force (download maximum 600 Mbit/s"
        ) && said.contains("store the new contract with plan set"),
        "{said}"
    );
}

#[test]
fn report_judges_each_run_against_the_version_in_force_at_its_time() {
    let env = Env::new();
    let db = env.db();
    let now = now_millis();
    let (v1, v2) = (now - 20 * HOUR, now - 10 * HOUR);
    env.import(&[
        success(v1 - HOUR, 10.0),      // before any plan: not judged
        success(v1 + HOUR, 90.0),      // v1 (100 Mbit/s at 80 %): met
        success(v1 + 2 * HOUR, 70.0),  // v1: breach
        success(v2, 170.0),            // v2 (200 Mbit/s at 80 %) from this very ms: met
        success(v2 + HOUR, 150.0),     // v2: breach (v1 would have met it)
        success(v2 + 2 * HOUR, 160.0), // v2: met, exactly 80 %
    ]);
    let set = |rate: &str, from: u64| set_advertised(&db, rate, from);
    set("100Mbit/s", v1);
    set("200Mbit/s", v2);
    let report = command(&["report", "--db", db.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    let summary: Value = serde_json::from_str(&ok(report)).unwrap();
    let judged = &summary["plan"];
    assert_eq!(judged["measurements"], 5, "{judged}");
    assert_eq!(judged["met"], 3, "{judged}");
    assert_eq!(judged["breaches"], 2, "{judged}");
    assert_eq!(
        judged["download_bytes_per_second"], 25_000_000.0,
        "the newest version shown"
    );
    assert_eq!(judged["longest_below"]["measurements"], 1);
    assert_eq!(judged["plan_versions"], 2);

    // Flags judge this report alone against them, and leave the history as it is.
    let flagged = command(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
        "--plan-download",
        "100Mbit/s",
    ])
    .output()
    .unwrap();
    let flagged: Value = serde_json::from_str(&ok(flagged)).unwrap();
    assert_eq!(flagged["plan"]["measurements"], 6);
    // 90, 170, 150 and 160 reach 80 of 100 Mbit/s; 10 and 70 do not.
    assert_eq!(flagged["plan"]["met"], 4);
    assert_eq!(flagged["plan"]["plan_versions"], 1);
    assert_eq!(history_json(&db)["versions"].as_array().unwrap().len(), 2);

    // serve's environment (docker compose exec, a shell with /etc/default sourced) is not
    // report's: INTERNET_MONITOR_PLAN_* does not replace the stored history.
    let beside_serve = command(&["report", "--db", db.to_str().unwrap(), "--format", "json"])
        .env("INTERNET_MONITOR_PLAN_DOWNLOAD", "100Mbit/s")
        .env("INTERNET_MONITOR_PLAN_THRESHOLD", "0.5")
        .output()
        .unwrap();
    let beside_serve: Value = serde_json::from_str(&ok(beside_serve)).unwrap();
    assert_eq!(beside_serve["plan"], summary["plan"]);

    // A threshold alone would judge nothing: said, not silently dropped.
    let alone = command(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--plan-threshold",
        "0.5",
    ])
    .output()
    .unwrap();
    assert_eq!(alone.status.code(), Some(1));
    assert!(
        stderr(&alone).contains("plan set --threshold"),
        "{}",
        stderr(&alone)
    );

    // The text report has its plan line without any flag.
    let text = ok(command(&["report", "--db", db.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(
        text.contains("Plan: ") && text.contains(": 2 versions, the newest shown"),
        "{text}"
    );
}

#[test]
fn a_store_written_before_plans_has_none_and_checks_clean() {
    let env = Env::new();
    let db = env.db();
    std::fs::copy(
        Path::new(common::FIXTURES).join("stores/format-v2.redb"),
        &db,
    )
    .unwrap();
    assert_eq!(history_json(&db)["versions"], json!([]));
    let show = ok(plan(&db, &["show", "--format", "json"]));
    assert_eq!(show.trim(), "null");
    let check = command(&["db", "check", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let said = ok(check);
    assert!(
        said.ends_with("no damage found\n") && !said.contains("plan"),
        "{said}"
    );
    let report = command(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
        "--window",
        "36500d",
    ])
    .output()
    .unwrap();
    let summary: Value = serde_json::from_str(&ok(report)).unwrap();
    assert_eq!(summary["plan"], Value::Null);
    // It takes a plan, and then checks clean with it.
    ok(plan(
        &db,
        &[
            "set",
            "--upload-max",
            "40Mbit/s",
            "--from",
            "2026-01-01T00:00:00Z",
        ],
    ));
    let check = command(&["db", "check", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let said = ok(check);
    assert!(
        said.contains("1 plan versions checked") && said.ends_with("no damage found\n"),
        "{said}"
    );
    // Compacting keeps the plan.
    ok(command(&["db", "compact", "--db", db.to_str().unwrap()])
        .output()
        .unwrap());
    let kept = history_json(&db);
    assert_eq!(
        kept["versions"][0]["upload"]["maximum_bytes_per_second"],
        5_000_000.0
    );
}

/// Stores a version whose download maximum is a float kept as its 8 raw bytes, then changes
/// one of those bytes in the file.
fn damaged_plan(env: &Env) {
    let db = env.db();
    ok(plan(
        &db,
        &[
            "set",
            "--download-max",
            "123.456789bit/s",
            "--from",
            "2026-03-01T00:00:00Z",
        ],
    ));
    let raw = (123.456789_f64 * (1.0 / 8.0)).to_le_bytes();
    let mut bytes = std::fs::read(&db).unwrap();
    let found: Vec<usize> = bytes
        .windows(8)
        .enumerate()
        .filter(|(_, window)| *window == raw)
        .map(|(at, _)| at)
        .collect();
    assert!(!found.is_empty(), "the record's float is in the file");
    for at in found {
        bytes[at + 3] ^= 0x10;
    }
    std::fs::write(&db, &bytes).unwrap();
}

#[test]
fn a_damaged_plan_version_is_reported_and_never_obeyed() {
    let env = Env::new();
    damaged_plan(&env);
    let db = env.db();
    let check = command(&["db", "check", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    let said = stdout(&check);
    assert!(
        said.contains(
            "damaged: the plan version from 2026-03-01T00:00:00.000Z: its checksum does not match"
        ),
        "{said}"
    );
    assert!(said.contains("1 damaged plan versions"), "{said}");

    let show = plan(&db, &["history"]);
    assert_eq!(show.status.code(), Some(1));
    assert!(
        stderr(&show).contains("is damaged (the plan version from 2026-03-01T00:00:00.000Z"),
        "{}",
        stderr(&show)
    );
    let report = command(&["report", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(1), "{}", stdout(&report));

    // serve refuses to start on it, saying why.
    let mut child = env
        .serve(
            "ok-1.2-pretty",
            "replay",
            &["--start-delay", "1h", "--listen", "127.0.0.1:0"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = common::wait_within(&mut child, PATIENCE) else {
        child.kill().unwrap();
        panic!("serve started on a damaged plan version");
    };
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr(&output).contains("the plan version from 2026-03-01T00:00:00.000Z: its checksum"),
        "{}",
        stderr(&output)
    );

    // Replacing the damaged version repairs it.
    ok(plan(
        &db,
        &[
            "set",
            "--download-max",
            "100Mbit/s",
            "--from",
            "2026-03-01T00:00:00Z",
            "--replace",
        ],
    ));
    let check = command(&["db", "check", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
}

#[test]
fn plan_set_while_serve_runs_says_to_stop_it() {
    let env = Env::new();
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let refused = plan(&env.db(), &["set", "--download-advertised", "100Mbit/s"]);
    assert_eq!(refused.status.code(), Some(1));
    let said = stderr(&refused);
    assert!(
        said.contains("another internet-monitor process has it open")
            && said.contains("stop serve first"),
        "{said}"
    );
    server.assert_clean_exit();
    assert_eq!(history_json(&env.db())["versions"], json!([]));
}

/// The plan of `/metrics`, `/api/v1/status` and the dashboard's series: a version scheduled for
/// later (`plan set --from` a future time) is not in force yet, an earlier one no longer.
#[test]
fn serve_shows_the_version_in_force_now_and_the_series_every_version_of_its_range() {
    let env = Env::new();
    let db = env.db();
    let now = now_millis();
    let (v1, v2, v3) = (now - 20 * HOUR, now - 10 * HOUR, now + 10 * HOUR);
    env.import(&[
        success(v1 - HOUR, 10.0),
        success(v1 + HOUR, 90.0),
        success(v2 + HOUR, 150.0),
    ]);
    let set = |rate: &str, from: u64| set_advertised(&db, rate, from);
    set("100Mbit/s", v1);
    set("200Mbit/s", v2);
    set("300Mbit/s", v3);
    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let status = server.get("/api/v1/status").json();
    assert_eq!(
        status["plan"]["download_bytes_per_second"], 25_000_000.0,
        "the version in force now: {status}"
    );
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("speedtest_plan_download_bytes_per_second 2.5e7")
            || metrics.contains("speedtest_plan_download_bytes_per_second 25000000"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("speedtest_plan_download_bytes_per_second 3"),
        "{metrics}"
    );
    // The series lists every version in force in its range, clipped to it.
    let path = format!(
        "/api/v1/series?from={}&to={}",
        rfc3339(v1 - 5 * HOUR),
        rfc3339(v3 + HOUR)
    );
    let answer = server.get(&path);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let series = answer.json();
    let steps: Vec<(Value, Value, Value)> = series["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["from"].clone(),
                s["to"].clone(),
                s["download_bytes_per_second"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (json!(rfc3339(v1)), json!(rfc3339(v2)), json!(12_500_000.0)),
            (json!(rfc3339(v2)), json!(rfc3339(v3)), json!(25_000_000.0)),
            (json!(rfc3339(v3)), Value::Null, json!(37_500_000.0)),
        ],
        "{series}"
    );
    assert_eq!(series["plans"][0]["threshold"], 0.8);
    assert_eq!(series["plans_omitted"], 0);
    assert_eq!(series["plans"][0]["upload_bytes_per_second"], Value::Null);
    // `plan`: the version in force at the range's end.
    assert_eq!(series["plan"]["download_bytes_per_second"], 37_500_000.0);
    // The heat map's share: each run ÷ the version in force at its time (90 of 100 Mbit/s,
    // 150 of 200), the run before any version left out.
    let path = format!(
        "/api/v1/heatmap?from={}&to={}",
        rfc3339(v1 - 5 * HOUR),
        rfc3339(now)
    );
    let answer = server.get(&path);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let heatmap = answer.json();
    let mut shares: Vec<f64> = heatmap["share_of_plan"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().filter_map(Value::as_f64))
        .collect();
    shares.sort_by(f64::total_cmp);
    assert_eq!(shares, vec![0.75, 0.9], "{heatmap}");
    let runs: u64 = heatmap["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().filter_map(Value::as_u64))
        .sum();
    assert_eq!(runs, 3);
}

/// `--retest-below` with a version stored to take effect later: accepted (retests judge each
/// run against the version in force at its time), while nothing is in force yet.
#[test]
fn retest_below_accepts_a_version_that_takes_effect_later() {
    let env = Env::new();
    let db = env.db();
    let later = rfc3339(now_millis() + 10 * HOUR);
    ok(plan(
        &db,
        &[
            "set",
            "--download-advertised",
            "100Mbit/s",
            "--from",
            &later,
        ],
    ));
    let flags = ["--start-delay", "1h", "--retest-below", "0.5"];
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &flags));
    let status = server.get("/api/v1/status").json();
    assert_eq!(status["plan"], Value::Null, "not in force yet: {status}");
    assert!(
        !server
            .get("/metrics")
            .body
            .contains("speedtest_plan_download_bytes_per_second"),
        "no plan gauge before the version's time"
    );
    server.assert_clean_exit();
}

/// `plan set --download-advertised RATE --from FROM` (ms) on `db`, which must succeed.
fn set_advertised(db: &std::path::Path, rate: &str, from: u64) {
    ok(plan(
        db,
        &[
            "set",
            "--download-advertised",
            rate,
            "--from",
            &rfc3339(from),
        ],
    ));
}

#[test]
fn plan_import_carries_a_history_to_another_database_all_or_nothing() {
    let env = Env::new();
    let (from, to) = (env.db(), env.path("other.redb"));
    let old = now_millis() - 40 * 24 * HOUR;
    let new = now_millis() - 10 * 24 * HOUR;
    set_advertised(&from, "100Mbit/s", old);
    ok(plan(
        &from,
        &[
            "set",
            "--download-max",
            "250Mbit/s",
            "--download-min",
            "100Mbit/s",
            "--upload-max",
            "40Mbit/s",
            "--latency-max",
            "30ms",
            "--threshold",
            "0.9",
            "--from",
            &rfc3339(new),
        ],
    ));
    let exported = env.path("plans.json");
    std::fs::write(&exported, ok(plan(&from, &["history", "--format", "json"]))).unwrap();
    let file = exported.to_str().unwrap();

    let said = ok(plan(&to, &["import", file]));
    assert!(
        said.contains("2 added, 0 already stored, 0 replaced"),
        "{said}"
    );
    assert_eq!(history_json(&to), history_json(&from));
    // Twice: nothing more.
    let said = ok(plan(&to, &["import", file]));
    assert!(
        said.contains("0 added, 2 already stored, 0 replaced"),
        "{said}"
    );

    // /api/v1/plan's form is read too, after a byte-order mark a Windows editor may add.
    let api = json!({"current": null, "history": history_json(&from)["versions"]});
    let api_file = env.path("api.json");
    std::fs::write(&api_file, format!("\u{FEFF}{api}")).unwrap();
    let said = ok(plan(&to, &["import", api_file.to_str().unwrap()]));
    assert!(said.contains("0 added, 2 already stored"), "{said}");

    // A differing version at a stored time: refused, and nothing of the file is stored, not
    // even its new version.
    let third = rfc3339(new + HOUR);
    let mut changed = history_json(&from);
    changed["versions"][0]["download"]["advertised_bytes_per_second"] = json!(6_250_000.0);
    let mut added = changed["versions"][1].clone();
    added["from"] = json!(third);
    changed["versions"].as_array_mut().unwrap().push(added);
    let changed_file = env.path("changed.json");
    std::fs::write(&changed_file, changed.to_string()).unwrap();
    let refused = plan(&to, &["import", changed_file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains(&format!("already has a plan version from {}", rfc3339(old)))
            && stderr(&refused).contains("--replace"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(history_json(&to), history_json(&from));
    let said = ok(plan(
        &to,
        &["import", changed_file.to_str().unwrap(), "--replace"],
    ));
    assert!(
        said.contains("1 added, 1 already stored, 1 replaced"),
        "{said}"
    );
    let versions = history_json(&to)["versions"].clone();
    assert_eq!(versions.as_array().unwrap().len(), 3);
    assert_eq!(
        versions[0]["download"]["advertised_bytes_per_second"],
        json!(6_250_000.0)
    );
    assert_eq!(
        versions[0]["download"]["judged_bytes_per_second"],
        json!(6_250_000.0)
    );
    assert_eq!(versions[2]["from"], json!(third));
}

/// A file of more versions than a store keeps is refused whole, and the error says what is
/// true of an empty database: it would hold too many, not that it holds them already.
#[test]
fn plan_import_beyond_the_version_limit_is_refused_whole() {
    let env = Env::new();
    let db = env.db();
    ok(plan(
        &db,
        &[
            "set",
            "--download-max",
            "100Mbit/s",
            "--from",
            "1990-01-01T00:00:00Z",
        ],
    ));
    let version = &history_json(&db)["versions"][0];
    let versions: Vec<Value> = (0..1001u64)
        .map(|day| {
            let mut v = version.clone();
            v["from"] = json!(rfc3339(946_684_800_000 + day * 24 * HOUR));
            v
        })
        .collect();
    let file = env.path("many.json");
    std::fs::write(&file, json!({"versions": versions}).to_string()).unwrap();
    let refused = plan(&db, &["import", file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    let said = stderr(&refused);
    assert!(
        said.contains("would hold more than 1000 plan versions"),
        "{said}"
    );
    assert_eq!(history_json(&db)["versions"].as_array().unwrap().len(), 1);
}

#[test]
fn plan_import_refuses_what_is_not_a_valid_history_naming_the_problem() {
    let env = Env::new();
    let db = env.db();
    let cases: [(&str, String, &str); 5] = [
        ("csv.json", "time,download\n".to_owned(), "is not the JSON of plan history --format json"),
        ("both.json", r#"{"versions": [], "history": []}"#.to_owned(), "exactly one of"),
        (
            "order.json",
            json!({"versions": [{
                "from": "2026-01-01T00:00:00Z",
                "download": {"maximum_bytes_per_second": 1e6, "normally_available_bytes_per_second": null,
                             "minimum_bytes_per_second": 2e6, "advertised_bytes_per_second": null},
                "upload": {"maximum_bytes_per_second": null, "normally_available_bytes_per_second": null,
                           "minimum_bytes_per_second": null, "advertised_bytes_per_second": null},
                "latency_max_seconds": null, "threshold": 0.8
            }]})
            .to_string(),
            "version 1 (from 2026-01-01T00:00:00.000Z): --download-min must not be faster than --download-max",
        ),
        (
            "unknown.json",
            r#"{"versions": [], "plans": []}"#.to_owned(),
            "unknown field `plans`",
        ),
        ("big.json", " ".repeat((1 << 20) + 1), "is larger than 1 MiB"),
    ];
    for (name, text, expected) in cases {
        let file = env.path(name);
        std::fs::write(&file, text).unwrap();
        let refused = plan(&db, &["import", file.to_str().unwrap()]);
        assert_eq!(refused.status.code(), Some(1), "{name}");
        assert!(
            stderr(&refused).contains(expected),
            "{name}: {}",
            stderr(&refused)
        );
    }
    // Each was refused before the database was opened: none was created.
    assert!(!db.exists());
}
