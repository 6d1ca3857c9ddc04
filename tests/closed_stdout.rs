//! Every command that writes to stdout, with a reader that goes away (`| head -1`, a pager
//! quit early, stdout closed): it stops quietly, with no message and the exit status it would
//! have had, and what it stored stays stored. A closed stderr is no panic either.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Env;
use serde_json::{Value, json};

/// Enough samples that an export is far larger than a pipe's buffer (64 KiB on Linux), so it
/// is still writing when its reader leaves.
const SAMPLES: u64 = 1000;

fn rfc3339(millis: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

/// `SAMPLES` successes a minute apart, ending an hour ago.
fn history() -> Vec<Value> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let start = now - (SAMPLES + 60) * 60_000;
    (0..SAMPLES)
        .map(|i| {
            json!({
                "time": rfc3339(start + i * 60_000), "outcome": "success", "reason": null,
                "message": null, "trigger": "schedule", "duration_seconds": 20.0,
                "download_bytes_per_second": 12_500_000.0 + i as f64,
                "upload_bytes_per_second": 2_500_000.0, "ping_seconds": 0.012,
                "jitter_seconds": 0.001, "packet_loss_ratio": 0.0,
                "download_latency_seconds": 0.02, "upload_latency_seconds": 0.03,
                "downloaded_bytes": 150_000_000, "uploaded_bytes": 40_000_000,
                "server": {"id": 1234, "name": "Example", "location": "Example City",
                           "country": "Example", "host": "speedtest.example.com"},
                "isp": "Example ISP", "result_url": null
            })
        })
        .collect()
}

/// `internet-monitor ARGS --db <env's database>` with stdout piped to us.
fn spawn(env: &Env, args: &[&str]) -> Child {
    let db = env.db();
    let mut all = args.to_vec();
    all.extend(["--db", db.to_str().unwrap()]);
    common::command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start internet-monitor")
}

/// Closes our end of the pipe before the command writes a byte, and waits for it.
fn with_stdout_closed(mut child: Child) -> Output {
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for internet-monitor")
}

/// Reads one line, as `head -1` does, then closes the pipe and waits for the command.
fn after_one_line(mut child: Child) -> (String, Output) {
    let mut first = String::new();
    {
        let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
        reader.read_line(&mut first).expect("read the first line");
    }
    (
        first,
        child.wait_with_output().expect("wait for internet-monitor"),
    )
}

fn assert_quiet_success(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{what}: {stderr}");
    assert_eq!(stderr, "", "{what} says nothing");
}

#[test]
fn export_into_head_ends_quietly_with_exit_0_in_every_format() {
    let env = Env::new();
    env.import(&history());
    for format in ["jsonl", "csv"] {
        let (first, output) = after_one_line(spawn(&env, &["export", "--format", format]));
        assert_quiet_success(&output, &format!("export --format {format} | head -1"));
        if format == "jsonl" {
            let sample: Value = serde_json::from_str(&first).expect("a whole JSON line");
            assert_eq!(sample["isp"], "Example ISP");
        } else {
            assert!(first.starts_with("time,"), "the CSV header: {first:?}");
        }
    }
}

#[test]
fn export_and_report_to_a_closed_stdout_end_quietly_with_exit_0() {
    let env = Env::new();
    env.import(&history());
    let commands: [&[&str]; 4] = [
        &["export", "--format", "jsonl"],
        &["export", "--format", "csv"],
        &["report", "--format", "text"],
        &["report", "--format", "json"],
    ];
    for args in commands {
        let output = with_stdout_closed(spawn(&env, args));
        assert_quiet_success(&output, &args.join(" "));
    }
}

#[test]
fn report_into_head_ends_quietly_with_exit_0() {
    let env = Env::new();
    env.import(&history());
    for format in ["text", "json"] {
        let (first, output) = after_one_line(spawn(&env, &["report", "--format", format]));
        assert_quiet_success(&output, &format!("report --format {format} | head -1"));
        assert!(!first.is_empty(), "the first line arrived");
    }
}

#[test]
fn run_once_to_a_closed_stdout_stores_the_sample_and_exits_as_the_test_went() {
    let env = Env::new();
    for (fixture, code) in [("ok-1.2-pretty", 0), ("err-timeout-in-connect", 2)] {
        let mut command: Command = common::with_fake("run-once", &env.db(), fixture, &[]);
        let child = command
            .env("FAKE_SPEEDTEST_MODE", "replay")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start run-once");
        let output = with_stdout_closed(child);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{fixture}: {stderr}");
        assert_eq!(stderr, "", "{fixture}: nothing to say");
    }
    let exported = read_all(spawn(&env, &["export", "--format", "jsonl"]));
    let samples: Vec<Value> = exported
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(samples.len(), 2, "both runs were stored: {exported}");
    assert_eq!(samples[0]["outcome"], "success");
    assert_eq!(samples[1]["reason"], "no_connectivity");
}

/// The command's whole stdout, read to the end.
fn read_all(child: Child) -> String {
    let output = child.wait_with_output().expect("wait for internet-monitor");
    assert_eq!(output.status.code(), Some(0));
    String::from_utf8(output.stdout).unwrap()
}

/// `internet-monitor ARGS` with stderr closed before it writes a byte (`2>&1 | head -0`, a
/// service manager that closed the descriptor), and stdout discarded.
fn with_stderr_closed(args: &[&str]) -> Output {
    let mut child = common::command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start internet-monitor");
    drop(child.stderr.take());
    child.wait_with_output().expect("wait for internet-monitor")
}

#[test]
fn a_closed_stderr_changes_no_exit_status_and_loses_nothing() {
    let env = Env::new();
    let db = env.db();
    let db = db.to_str().unwrap();
    let file = env.path("history.jsonl");
    let lines: String = history().iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(&file, lines).unwrap();
    let file = file.to_str().unwrap();

    // import says what it stored on stderr: the samples are stored all the same.
    let output = with_stderr_closed(&["import", "--db", db, file]);
    assert_eq!(output.status.code(), Some(0), "import with stderr closed");
    let exported = read_all(spawn(&env, &["export", "--format", "jsonl"]));
    assert_eq!(exported.lines().count(), SAMPLES as usize);

    // An error is said on stderr too: still exit 1, never a panic's 101.
    let missing = env.path("missing.redb");
    let output = with_stderr_closed(&["export", "--db", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "export of a missing file");
    // A usage error, as clap prints it.
    let output = with_stderr_closed(&["export", "--format", "xml"]);
    assert_eq!(output.status.code(), Some(1), "a bad flag");
    // run-once warns that the HTTP engine ignores --server-id: the test still runs (it fails
    // on a closed port, exit 2) and is stored.
    let mut args = common::http_run_once_args(db, "http://127.0.0.1:1");
    args.extend_from_slice(&["--server-id", "5"]);
    let output = with_stderr_closed(&args);
    assert_eq!(output.status.code(), Some(2), "run-once with a warning");
    let exported = read_all(spawn(&env, &["export", "--format", "jsonl"]));
    assert_eq!(exported.lines().count(), SAMPLES as usize + 1);
}

#[test]
fn serve_keeps_recording_when_the_reader_of_its_log_goes_away() {
    // `serve 2>&1 | tee log` with tee killed, or a log collector restarting: the log pipe breaks.
    let env = Env::new();
    let mut child = common::serve_command(&env.db(), "ok-1.2-pretty", &["--interval", "1s"])
        .env("FAKE_SPEEDTEST_MODE", "replay")
        .args(["--listen", "127.0.0.1:0", "--log-format", "text"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let address = {
        let mut log = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let mut first = String::new();
        log.read_line(&mut first).expect("the first log line");
        let after = first
            .split("listening on http://")
            .nth(1)
            .unwrap_or_else(|| panic!("the first log line names the address: {first}"));
        after.split_whitespace().next().unwrap().to_owned()
        // The log's reader goes away here: every later log line meets a broken pipe.
    };
    // Runs are still stored (each one logged into the broken pipe) and served.
    common::eventually("3 runs stored after the log broke", || {
        let health = common::request(&address, "GET", "/healthz").json();
        (health["samples"].as_u64().unwrap_or(0) >= 3).then_some(())
    });
    common::signal(child.id(), libc::SIGTERM);
    let status = child.wait().expect("wait for serve");
    assert_eq!(status.code(), Some(0), "serve exits as after any SIGTERM");
}

#[test]
fn run_once_that_cannot_print_its_stored_sample_still_exits_as_the_test_went() {
    // Exit 1 says nothing was stored: a wrapper would retry, and spend a second test.
    let env = Env::new();
    for (fixture, code) in [("ok-1.2-pretty", 0), ("err-timeout-in-connect", 2)] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let output = common::with_fake("run-once", &env.db(), fixture, &[])
            .env("FAKE_SPEEDTEST_MODE", "replay")
            .stdout(full)
            .output()
            .expect("run run-once");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{fixture}: {stderr}");
        assert!(
            stderr.contains("the sample was stored (") && stderr.contains("could not be printed"),
            "{fixture}: {stderr}"
        );
    }
    let exported = read_all(spawn(&env, &["export", "--format", "jsonl"]));
    assert_eq!(exported.lines().count(), 2, "both runs were stored");
}
