//! Times and clocks against the real binary: bounded times and durations (never a panic), a
//! store holding times no clock should have made, and a clock that is obviously wrong (run
//! under `faketime`, Debian package faketime) trusted neither to delete nor to hide data.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Env, Server, command};
use internet_monitor::time::Timestamp;
use serde_json::{Value, json};

/// Fixture: a store an older version wrote, holding successes dated 2026-11-01 (download
/// 90 MB/s) and 2026-11-02 (91 MB/s), one dated 2100-01-01 (1 MB/s), and two keyed past
/// 9999-12-30T22:00:00Z (9999-12-31T12:00:00Z and 9999-12-31T23:59:59-23:59, in year 10000).
const EXTREME_STORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/stores/extreme-times.redb"
);
/// 2026-11-02T00:00:00Z, the newest sample of the fixture that is not from the future.
const NOV_2: u64 = 1_793_577_600;

const HOUR: Duration = Duration::from_secs(60 * 60);

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn assert_no_panic(output: &Output) {
    let err = stderr(output);
    assert!(!err.contains("panicked"), "a panic: {err}");
    assert_ne!(output.status.code(), Some(101), "a panic: {err}");
}

/// A success of the fake CLI's figures, dated `time`.
fn success(time: Timestamp) -> Value {
    json!({
        "time": time.to_string(), "outcome": "success", "reason": null, "message": null,
        "trigger": "schedule", "duration_seconds": 20.0,
        "download_bytes_per_second": 12_500_000.0, "upload_bytes_per_second": 2_500_000.0,
        "ping_seconds": 0.01, "jitter_seconds": null, "packet_loss_ratio": null,
        "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": null, "uploaded_bytes": null, "server": null, "isp": null,
        "result_url": null
    })
}

/// `internet-monitor ARGS` on `db`'s store with the given sub-command.
fn run(args: &[&str]) -> Output {
    command(args).output().expect("run internet-monitor")
}

fn export(db: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["export", "--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// This test's copy of the extreme-times fixture (serve opens it for writing).
fn extreme_store(env: &Env) -> std::path::PathBuf {
    std::fs::copy(EXTREME_STORE, env.db()).expect("copy the fixture");
    env.db()
}

/// `inner` with the clock faked by libfaketime as `faketime -f SPEC` would (`+10y`, or
/// `@2020-01-01 00:00:00`).
fn faketime(spec: &str, inner: &Command) -> Command {
    let mut faked = common::with_libfaketime(inner);
    faked.env("FAKETIME_DONT_RESET", "1");
    faked.env("FAKETIME", spec);
    faked
}

/// `inner` with the wall clock faked by libfaketime as the file `spec` says, read again at
/// every reading, so a test moves the clock while `inner` runs by writing `+10y` or `+0`
/// there; the monotonic clock is left alone (as a real clock step leaves it).
fn faketime_from_file(spec: &Path, inner: &Command) -> Command {
    let mut faked = common::with_libfaketime(inner);
    faked.env("FAKETIME_DONT_RESET", "1");
    faked
        .env("FAKETIME_TIMESTAMP_FILE", spec)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    faked
}

#[test]
fn a_time_past_year_9999_is_a_clear_error_not_a_panic() {
    let env = Env::new();
    env.import(&[success(Timestamp::now().saturating_sub(HOUR))]);
    let output = export(
        &env.db(),
        &["--from", "9999-12-31T23:59:59-23:59", "--to", "1d"],
    );
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "invalid value '9999-12-31T23:59:59-23:59' for '--from <TIME>': \"9999-12-31T23:59:59-23:59\" is after 9999-12-30T22:00:00.000Z, the latest time kept"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_duration_past_its_limit_is_refused_naming_the_flag_not_a_panic() {
    let env = Env::new();
    for (flag, limit) in [
        ("--start-delay", "365d"),
        ("--interval", "365d"),
        ("--splay", "365d"),
        ("--retention", "36500d"),
        ("--retest-after", "1d"),
        ("--min-manual-gap", "30d"),
        ("--timeout", "1h"),
    ] {
        let db = env.db();
        let output = run(&["serve", "--db", db.to_str().unwrap(), flag, "300000000000y"]);
        assert_no_panic(&output);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!(
                "for '{flag} <DURATION>': must be at most {limit} (got "
            )),
            "{}",
            stderr(&output)
        );
    }
    let db = env.db();
    let output = run(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--window",
        "300000000000y",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("must be at most 36500d"));
}

#[test]
fn ages_and_times_in_queries_are_bounded() {
    let env = Env::new();
    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    for (path, message) in [
        (
            "/api/v1/summary?window=300000000000y",
            "must be at most 36500d",
        ),
        (
            "/api/v1/samples?from=300000000000y",
            "is an age longer than 36500d",
        ),
        (
            "/api/v1/samples.csv?to=300000000000y",
            "is an age longer than 36500d",
        ),
        (
            "/api/v1/samples?from=9999-12-31T23:59:59-23:59",
            "is after 9999-12-30T22:00:00.000Z",
        ),
        (
            "/api/v1/samples?to=1969-12-31T23:59:59Z",
            "is before 1970-01-01T00:00:00Z",
        ),
        (
            "/api/v1/samples?cursor=18446744073709551615",
            "invalid cursor",
        ),
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 400, "{path}: {}", response.body);
        let error = response.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(message), "{path}: {error}");
    }
}

#[test]
fn times_past_the_latest_in_a_store_never_break_export_or_the_api() {
    let env = Env::new();
    let db = extreme_store(&env);
    for format in ["jsonl", "csv"] {
        let output = export(&db, &["--format", format]);
        assert_no_panic(&output);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let lines = stdout_lines(&output);
        let header = usize::from(format == "csv");
        assert_eq!(lines.len(), 3 + header, "{lines:#?}");
        assert!(
            lines[header].contains("2026-11-01T00:00:00.000Z"),
            "{lines:#?}"
        );
        assert!(
            lines[2 + header].contains("2100-01-01T00:00:00.000Z"),
            "{lines:#?}"
        );
        assert!(
            stderr(&output).contains("2 samples in ")
                && stderr(&output).contains(
                    "are keyed at or after 9999-12-30T22:00:00.000Z, the end of the times this version handles"
                ),
            "{}",
            stderr(&output)
        );
    }

    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    server.wait_for_log("stored samples are keyed at or after 9999-12-30T22:00:00.000Z");
    let page = server.get("/api/v1/samples?limit=10000");
    assert_eq!(page.status, 200, "{}", page.body);
    let samples = page.json()["samples"].as_array().unwrap().len();
    assert_eq!(samples, 3, "{}", page.body);
    let csv = server.get("/api/v1/samples.csv");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.body.lines().count(), 4, "{}", csv.body);
    assert!(
        csv.body.contains("2100-01-01T00:00:00.000Z"),
        "{}",
        csv.body
    );
    let health = server.get("/healthz").json();
    assert_eq!(health["samples"], 5, "counted, though not shown");
    server.assert_clean_exit();
}

#[test]
fn a_sample_from_the_future_is_kept_but_never_the_latest_or_last_success() {
    let env = Env::new();
    extreme_store(&env);
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let warning = server.wait_for_log("stored samples are dated after the clock");
    assert!(
        warning.contains("samples=1") && warning.contains("newest=2100-01-01T00:00:00.000Z"),
        "{warning}"
    );
    let latest = server.get("/latest").json();
    assert_eq!(latest["time"], json!(NOV_2 as f64), "{latest}");
    assert_eq!(latest["download"], json!(91e6), "{latest}");
    let metrics = server.get("/metrics").body;
    for series in [
        format!("speedtest_last_success_timestamp_seconds {NOV_2}\n"),
        format!("speedtest_last_run_timestamp_seconds {NOV_2}\n"),
        "speedtest_download_bytes_per_second 91000000\n".to_owned(),
    ] {
        assert!(metrics.contains(&series), "no {series:?} in\n{metrics}");
    }
    // Kept: it is still in the history, with the rest.
    let page = server.get("/api/v1/samples").json();
    assert_eq!(
        page["samples"][0]["time"], "2100-01-01T00:00:00.000Z",
        "{page}"
    );
    server.assert_clean_exit();
}

#[test]
fn report_says_when_samples_are_dated_after_the_clock() {
    let env = Env::new();
    let db = extreme_store(&env);
    let output = run(&["report", "--db", db.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("1 samples are dated after the clock (")
            && stderr(&output).contains("the newest 2100-01-01T00:00:00.000Z, and are left out"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn import_refuses_a_time_more_than_a_day_ahead_with_its_line_and_stores_nothing() {
    let env = Env::new();
    let db = env.db();
    let now = Timestamp::now();
    for (dated, line, message) in [
        (
            "2100-01-01T00:00:00Z".to_owned(),
            2,
            "is more than a day after the clock",
        ),
        (
            now.saturating_add(HOUR * 25).to_string(),
            2,
            "is more than a day after the clock",
        ),
        (
            "9999-12-31T23:59:59-23:59".to_owned(),
            2,
            "is after 9999-12-30T22:00:00.000Z, the latest time kept",
        ),
    ] {
        let mut future = success(now);
        future["time"] = json!(dated);
        let file = env.path("import.jsonl");
        let lines = [success(now.saturating_sub(HOUR)), future];
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let output = run(&[
            "import",
            "--db",
            db.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert_no_panic(&output);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let err = stderr(&output);
        assert!(
            err.contains(&format!("line {line}:")) && err.contains(message),
            "{err}"
        );
        assert!(err.contains("nothing was imported"), "{err}");
        assert!(!db.exists(), "nothing stored, no new database file left");
    }
    // Within a day ahead (another machine's clock a little fast) is fine.
    env.import(&[success(now.saturating_add(HOUR))]);
    assert_eq!(stdout_lines(&export(&db, &[])).len(), 1);
}

/// Five samples an hour apart, the newest an hour ago, stored with the right clock.
fn five_recent_samples(env: &Env) {
    let now = Timestamp::now();
    let samples: Vec<Value> = (1..=5u32)
        .map(|hours| success(now.saturating_sub(HOUR * hours)))
        .collect();
    env.import(&samples);
}

#[test]
fn retention_never_deletes_every_sample() {
    // All stored samples are older than the retention: deleting them would empty the store,
    // which is what a clock far ahead looks like. The gap since the newest counts as a day at
    // most, so nothing goes, and the log says why.
    let env = Env::new();
    let old = Timestamp::now().saturating_sub(HOUR * 24 * 400);
    env.import(&[success(old), success(old.saturating_add(HOUR))]);
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "1h", "--retention", "30d"],
    ));
    let line = server.wait_for_log("retention cut at");
    assert!(line.contains("deleted=0"), "{line}");
    server.assert_clean_exit();
    assert_eq!(stdout_lines(&export(&env.db(), &[])).len(), 2);
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs ignored tests"]
fn retention_with_the_clock_ten_years_ahead_deletes_nothing() {
    let env = Env::new();
    five_recent_samples(&env);
    let serve = env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "1000h", "--retention", "400d"],
    );
    let mut server = Server::start(faketime("+10y", &serve));
    let line = server.wait_for_log("retention cut at");
    assert!(
        line.contains("deleted=0") && line.contains("is the clock ahead?"),
        "{line}"
    );
    server.assert_clean_exit();
    assert_eq!(
        stdout_lines(&export(&env.db(), &[])).len(),
        5,
        "all five kept"
    );
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs ignored tests"]
fn a_clock_before_the_source_date_is_logged_and_deletes_nothing() {
    let env = Env::new();
    five_recent_samples(&env);
    let serve = env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "1000h", "--retention", "1d"],
    );
    let mut server = Server::start(faketime("@2020-01-01 00:00:00", &serve));
    let wrong = server.wait_for_log("the clock is wrong");
    assert!(
        wrong.contains("before this program's source date"),
        "{wrong}"
    );
    // Every real sample is "from the future" now: kept, not the latest, and said so.
    server.wait_for_log("5 stored samples are dated after the clock");
    assert_eq!(server.get("/latest").status, 404);
    let held = server.wait_for_log("retention deleted nothing");
    assert!(held.contains("before this program's source date"), "{held}");
    server.assert_clean_exit();
    assert_eq!(
        stdout_lines(&export(&env.db(), &[])).len(),
        5,
        "all five kept"
    );
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs ignored tests"]
fn run_once_with_a_clock_before_the_source_date_says_so() {
    let env = Env::new();
    let db = env.db();
    let run_once = common::with_fake("run-once", &db, "ok-1.2-pretty", &[]);
    let output = faketime("@2020-01-01 00:00:00", &run_once)
        .output()
        .expect("run faketime");
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the clock is wrong: it reads 2020-01-01T00:00:0"),
        "{}",
        stderr(&output)
    );
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs ignored tests"]
fn a_run_stored_under_a_clock_before_the_source_date_is_logged() {
    let env = Env::new();
    let serve = env.serve("ok-1.2-pretty", "replay", &[]);
    let mut server = Server::start(faketime("@2020-01-01 00:00:00", &serve));
    let line = server.wait_for_log("the run is stored with that time");
    assert!(line.contains("it reads 2020-01-01T00:00:0"), "{line}");
    server.wait_for_log("test succeeded");
    server.assert_clean_exit();
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs ignored tests"]
fn a_sample_imported_under_a_clock_in_2100_is_not_the_latest_after_a_restart() {
    let env = Env::new();
    let db = env.db();
    let an_hour_ago = Timestamp::now().saturating_sub(HOUR);
    env.import(&[success(an_hour_ago)]);
    // The clock reads 2100 while a sample of 2100 is imported: import takes it.
    let mut future = success(an_hour_ago);
    future["time"] = json!("2100-01-01T00:00:00.000Z");
    future["download_bytes_per_second"] = json!(1e6);
    let file = env.path("future.jsonl");
    std::fs::write(&file, format!("{future}\n")).unwrap();
    let import = command(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let output = faketime("@2100-01-01 00:00:00", &import)
        .output()
        .expect("run import");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // With the right clock again, serve keeps it but shows the real last success.
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    server.wait_for_log("1 stored samples are dated after the clock");
    let latest = server.get("/latest").json();
    assert_eq!(latest["download"], json!(12_500_000.0), "{latest}");
    let metrics = server.get("/metrics").body;
    let last_success = format!(
        "speedtest_last_success_timestamp_seconds {}\n",
        an_hour_ago.as_millis() / 1000
    );
    assert!(
        metrics.contains(&last_success)
            || metrics.contains(&format!(
                "speedtest_last_success_timestamp_seconds {}\n",
                an_hour_ago.as_seconds_f64()
            )),
        "no {last_success:?} in\n{metrics}"
    );
    server.assert_clean_exit();
}

/// 3000 successes 5.5 h apart, the newest an hour ago (about 687 days in all), stored with the
/// right clock; their times, oldest first.
fn long_history(env: &Env) -> Vec<Timestamp> {
    let newest = Timestamp::now().saturating_sub(HOUR);
    let times: Vec<Timestamp> = (0..3000u32)
        .rev()
        .map(|step| newest.saturating_sub(HOUR * step * 11 / 2))
        .collect();
    let samples: Vec<Value> = times.iter().map(|&time| success(time)).collect();
    env.import(&samples);
    times
}

/// The times `export` finds in `db`.
fn stored_times(db: &Path) -> Vec<String> {
    stdout_lines(&export(db, &[]))
        .iter()
        .map(|line| {
            let sample: Value = serde_json::from_str(line).expect("a JSON line");
            sample["time"].as_str().expect("a time").to_owned()
        })
        .collect()
}

/// Asserts that every sample of `history` younger than `kept_for` (by the real clock) is in
/// `db`, and that those older than `gone_after` are not: retention worked, by the real time.
fn assert_retention_by_the_real_clock(
    db: &Path,
    history: &[Timestamp],
    kept_for: Duration,
    gone_after: Duration,
) {
    let stored = stored_times(db);
    let now = Timestamp::now();
    for time in history {
        let age = now.duration_since(*time);
        let present = stored.contains(&time.to_string());
        if age < kept_for {
            assert!(
                present,
                "{time} ({age:?} old) was deleted; {} left",
                stored.len()
            );
        }
        if age > gone_after {
            assert!(!present, "{time} ({age:?} old) was kept");
        }
    }
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs ignored tests"]
fn a_run_stored_with_the_clock_ten_years_ahead_does_not_let_retention_delete_the_history() {
    let env = Env::new();
    let history = long_history(&env);
    // A test runs at once and stores a sample dated ten years ahead.
    let serve = env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--retention", "400d", "--interval", "1h"],
    );
    let mut server = Server::start(faketime("+10y", &serve));
    server.wait_for_log("test succeeded");
    server.assert_clean_exit();
    // Started again, still ten years ahead: that sample is the newest at or before "now".
    let serve = env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--retention", "400d", "--start-delay", "1000h"],
    );
    let mut server = Server::start(faketime("+10y", &serve));
    let held = server.wait_for_log("retention cut at");
    assert!(held.contains("is the clock ahead?"), "{held}");
    server.assert_clean_exit();
    // Samples within 400 days of the real time stay (a gap counts as at most a day); older
    // ones went, as with a right clock; the sample the wrong clock wrote is kept.
    assert_retention_by_the_real_clock(&env.db(), &history, DAY * 399, DAY * 402);
    let stored = stored_times(&env.db());
    assert!(stored.last().unwrap().starts_with("203"), "{stored:?}");
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs ignored tests"]
fn retention_with_the_clock_a_year_ahead_deletes_nothing_younger_than_the_retention() {
    // Ahead by less than the retention: now - 400d is 35 days before the real time.
    let env = Env::new();
    let history = long_history(&env);
    let serve = env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--retention", "400d", "--start-delay", "1000h"],
    );
    let mut server = Server::start(faketime("+1y", &serve));
    server.wait_for_log("retention deleted old samples");
    server.assert_clean_exit();
    assert_retention_by_the_real_clock(&env.db(), &history, DAY * 399, DAY * 402);
    let held: Vec<&String> = server
        .seen
        .iter()
        .filter(|line| line.contains("retention cut at"))
        .collect();
    assert_eq!(held.len(), 1, "{:#?}", server.seen);
}

#[test]
fn a_monitor_that_was_off_keeps_its_history_and_says_why() {
    // The right clock, and a history that ends 30 days ago: the 29 days the monitor was off
    // beyond the first are not counted, so nothing younger than 400 + 29 days goes.
    let env = Env::new();
    let newest = Timestamp::now().saturating_sub(DAY * 30);
    let history: Vec<Timestamp> = (0..2000u32)
        .rev()
        .map(|step| newest.saturating_sub(HOUR * step * 6))
        .collect();
    env.import(
        &history
            .iter()
            .map(|&time| success(time))
            .collect::<Vec<_>>(),
    );
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--retention", "400d", "--start-delay", "1000h"],
    ));
    let held = server.wait_for_log("retention cut at");
    assert!(
        held.contains(&format!("gap_from={newest}")) && held.contains("export --from"),
        "{held}"
    );
    server.wait_for_log("retention deleted old samples");
    server.assert_clean_exit();
    assert_retention_by_the_real_clock(&env.db(), &history, DAY * 428, DAY * 431);
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs ignored tests"]
fn a_success_stored_while_the_clock_was_ahead_stops_being_the_last_once_it_is_set_back() {
    let env = Env::new();
    let an_hour_ago = Timestamp::now().saturating_sub(HOUR);
    env.import(&[success(an_hour_ago)]);
    // The fake CLI replays this test's copy of a fixture, changed below to a failure.
    let cli = env.path("cli");
    let fixture = |name: &str| {
        for part in ["stdout", "stderr", "rc"] {
            std::fs::copy(
                format!("{}/{name}.{part}", common::FIXTURES),
                cli.with_extension(part),
            )
            .expect("copy the fixture");
        }
    };
    fixture("ok-1.2-pretty");
    let clock = env.path("clock");
    std::fs::write(&clock, "+10y\n").unwrap();
    let mut serve = env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--interval", "1000h", "--enable-run-endpoint"],
    );
    serve.env("FAKE_SPEEDTEST_FIXTURE", &cli);
    let mut server = Server::start(faketime_from_file(&clock, &serve));
    let succeeded = server.wait_for_log("test succeeded");
    assert!(succeeded.contains("time=203"), "{succeeded}");
    // The clock is set right, and the next test fails.
    fixture("err-connection-refused");
    std::fs::write(&clock, "+0\n").unwrap();
    let started = common::request(&server.address, "POST", "/api/v1/run");
    assert_eq!(started.status, 202, "{}", started.body);
    // Logged once the run is published: what shows now is judged against the clock.
    server.wait_for_log("test failed");
    let latest = server.get("/latest").json();
    assert_eq!(
        latest["time"],
        json!(an_hour_ago.as_seconds_f64()),
        "{latest}"
    );
    let metrics = server.get("/metrics").body;
    let gauge = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    let now = Timestamp::now().as_seconds_f64();
    assert_eq!(
        gauge("speedtest_last_success_timestamp_seconds"),
        an_hour_ago.as_seconds_f64()
    );
    let last_run = gauge("speedtest_last_run_timestamp_seconds");
    assert!(last_run <= now && last_run > now - 60.0, "{last_run} {now}");
    assert_eq!(gauge("speedtest_up"), 0.0);
    let set_back = server.wait_for_log("the clock was set back");
    assert!(
        set_back.contains(&format!("last_success={an_hour_ago}")),
        "{set_back}"
    );
    server.assert_clean_exit();
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs ignored tests"]
fn a_clock_behind_the_stored_runs_stores_no_plan_version_before_them() {
    let env = Env::new();
    five_recent_samples(&env);
    let db = env.db();
    let db = db.to_str().unwrap();
    let first = run(&[
        "plan",
        "set",
        "--download-advertised",
        "100Mbit/s",
        "--from",
        "2020-01-01T00:00:00Z",
        "--db",
        db,
    ]);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let versions = || {
        let history = run(&["plan", "history", "--format", "json", "--db", db]);
        let json: Value = serde_json::from_slice(&history.stdout).unwrap();
        json["versions"].as_array().unwrap().len()
    };

    // serve with other flags and a clock two years behind: the version would be dated before
    // the five runs and judge them against flags that were not in force then.
    let serve = env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "1000h", "--plan-download", "200Mbit/s"],
    );
    let mut server = Server::start(faketime("-730d", &serve));
    let kept = server.wait_for_log("are not stored");
    assert!(kept.contains("before 5 stored runs"), "{kept}");
    let answer = server.get("/api/v1/plan").json();
    assert_eq!(
        answer["current"]["download"]["advertised_bytes_per_second"],
        12_500_000.0
    );
    server.assert_clean_exit();
    assert_eq!(versions(), 1);

    // plan set without --from under the same clock is refused, naming --from.
    let set = faketime(
        "-730d",
        &command(&[
            "plan",
            "set",
            "--download-advertised",
            "200Mbit/s",
            "--db",
            db,
        ]),
    )
    .output()
    .unwrap();
    assert_eq!(set.status.code(), Some(1));
    let said = String::from_utf8_lossy(&set.stderr);
    assert!(
        said.contains("before 5 stored runs") && said.contains("--from"),
        "{said}"
    );
    assert_eq!(versions(), 1);
}
