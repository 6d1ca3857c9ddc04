//! Every way the Speedtest CLI can misbehave, driven through `serve`: each run is stored with
//! its reason, the service keeps answering, and no process of the run is left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Env, FAKE, FIXTURES, Server, assert_gone, pids, processes_with_env};
use serde_json::{Value, json};

/// The fixture the fake replays when a mode needs one and the fault is not in the fixture.
const OK: &str = "ok-1.2-pretty";
/// Exactly what the `hundred-mib` mode prints: 100 MiB.
const HUNDRED_MIB: u64 = 100 * 1024 * 1024;
/// How long a process killed by the server may take to leave the process table.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Every recorded CLI error and the reason its run must be stored with (see the parser's
/// unit tests for the messages).
const ERR_FIXTURES: [(&str, &str); 19] = [
    ("err-cannot-write", "no_connectivity"),
    ("err-config-connect", "no_connectivity"),
    ("err-config-dns", "no_connectivity"),
    ("err-config-dns-pretty", "no_connectivity"),
    ("err-config-http403", "exit"),
    ("err-config-ssl", "no_connectivity"),
    ("err-connection-refused", "no_connectivity"),
    ("err-error-object", "no_connectivity"),
    ("err-license-not-accepted", "exit"),
    ("err-no-servers-defined", "exit"),
    ("err-no-working-server", "no_connectivity"),
    ("err-open-socket-timeout", "no_connectivity"),
    ("err-rate-limited", "rate_limited"),
    ("err-rate-limited-html", "rate_limited"),
    ("err-read-zero-bytes", "no_connectivity"),
    ("err-resolve-cancelled", "no_connectivity"),
    ("err-socket-burst", "no_connectivity"),
    ("err-timeout-in-connect", "no_connectivity"),
    ("err-unrecognized-option", "exit"),
];

/// The CLI `serve` is pointed at: the fake in a mode, replaying a fixture, or a bad path.
struct Cli {
    bin: PathBuf,
    mode: &'static str,
    fixture: PathBuf,
    timeout: &'static str,
}

impl Cli {
    /// The fake in `mode`; `fixture` is a name in tests/fixtures or a path without extension.
    /// The timeout is generous: a run that should end by itself must not end by the timeout.
    fn fake(mode: &'static str, fixture: impl AsRef<Path>) -> Cli {
        Cli {
            bin: PathBuf::from(FAKE),
            mode,
            fixture: Path::new(FIXTURES).join(fixture),
            timeout: "10s",
        }
    }

    /// `bin` in place of the CLI.
    fn at(bin: impl Into<PathBuf>) -> Cli {
        Cli {
            bin: bin.into(),
            ..Cli::fake("replay", OK)
        }
    }

    fn timeout(self, timeout: &'static str) -> Cli {
        Cli { timeout, ..self }
    }
}

/// Serves with `cli` and checks what every fault must leave behind: its one scheduled run
/// stored and counted as `result` (a failure reason, or "success"), a service that keeps
/// answering, and no process of the run left, neither while serving nor after a clean
/// shutdown. Returns the stored sample for the caller's own checks.
fn survive(env: &Env, cli: Cli, result: &str) -> Value {
    let success = result == "success";
    let db = env.db();
    let mut command = common::command(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--engine",
        "ookla",
        "--speedtest-bin",
        cli.bin.to_str().unwrap(),
        "--start-delay",
        "0s",
        "--interval",
        "1h",
        "--timeout",
        cli.timeout,
    ]);
    command
        .env("FAKE_SPEEDTEST_MODE", cli.mode)
        .env("FAKE_SPEEDTEST_FIXTURE", &cli.fixture)
        .env("FAKE_SPEEDTEST_PIDS", env.path("pids"));
    let mark = mark(env, &mut command);
    let mut server = Server::start(command);

    // The run is stored and published before this line is logged.
    let line = server.wait_for_log("internet_monitor::daemon::state: test");
    let logged = if success {
        line.contains("test succeeded")
    } else {
        line.contains("test failed") && line.contains(&format!(" reason={result} "))
    };
    assert!(
        logged,
        "expected a run with result {result}, logged: {line}"
    );
    // Each figure carries its unit in its name (Mbit/s, ms, MB); words are quoted.
    for (key, value) in common::log_fields(&line) {
        match key.as_str() {
            "time" | "trigger" | "reason" | "detail" | "server" => {}
            _ => assert!(
                ["_mbit_s", "_ms", "_mb"]
                    .iter()
                    .any(|unit| key.ends_with(unit))
                    && value.parse::<f64>().is_ok(),
                "{key}={value} in {line}"
            ),
        }
    }

    let page = server.get("/api/v1/samples");
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.json();
    let samples = page["samples"].as_array().expect("a list of samples");
    assert_eq!(samples.len(), 1, "exactly the one run: {page}");
    let sample = samples[0].clone();
    assert_eq!(sample["trigger"], "schedule", "{sample}");
    if success {
        assert_eq!(sample["outcome"], "success", "{sample}");
        assert!(sample["reason"].is_null(), "{sample}");
    } else {
        assert_eq!(sample["outcome"], "failure", "{sample}");
        assert_eq!(sample["reason"], result, "{sample}");
        assert!(
            sample["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a failure says why: {sample}"
        );
        assert!(sample["download_bytes_per_second"].is_null(), "{sample}");
    }

    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    let counted: Vec<&str> = metrics
        .body
        .lines()
        .filter(|line| line.starts_with("speedtest_runs_total{") && !line.ends_with(" 0"))
        .collect();
    let counter = format!("speedtest_runs_total{{result=\"{result}\"}} 1");
    assert_eq!(counted, [counter.as_str()], "in\n{}", metrics.body);
    let up = format!("speedtest_up {}", u8::from(success));
    for line in [&up, "speedtest_running 0", "internet_monitor_samples 1"] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line:?} in\n{}",
            metrics.body
        );
    }

    assert_serving(&mut server, success);
    assert_none_left(&mark, Some(server.pid()));
    assert_gone(&pids(&env.path("pids")));
    // Still serving once everything of the run is gone.
    assert_serving(&mut server, success);
    server.assert_clean_exit();
    assert_none_left(&mark, None);
    sample
}

/// Tags `command`, and so every process it starts, with a variable unique to `env`; returns
/// the `KEY=value` entry that finds them in /proc.
fn mark(env: &Env, command: &mut Command) -> String {
    let value = env.path("mark");
    command.env("FAKE_SPEEDTEST_MARK", &value);
    format!("FAKE_SPEEDTEST_MARK={}", value.display())
}

/// `/healthz`, `/latest` and `/metrics` answer as they should after the one run.
fn assert_serving(server: &mut Server, success: bool) {
    assert!(server.is_running(), "the server is still running");
    let health = server.get("/healthz");
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json(), json!({"status": "ok", "samples": 1}));
    let latest = server.get("/latest");
    if success {
        assert_eq!(latest.status, 200, "{}", latest.body);
        assert!(latest.json()["download"].is_number(), "{}", latest.body);
    } else {
        assert_eq!(
            latest.status, 404,
            "a failure is never the latest measurement"
        );
        assert!(latest.json()["error"].is_string(), "{}", latest.body);
    }
    assert_eq!(server.get("/metrics").status, 200);
}

/// Waits until no process but `except` carries `mark`; SIGKILL is delivered asynchronously.
fn assert_none_left(mark: &str, except: Option<u32>) {
    let left = || -> Vec<u32> {
        processes_with_env(mark)
            .into_iter()
            .filter(|&pid| Some(pid) != except)
            .collect()
    };
    if common::poll_within(KILL_GRACE, || left().is_empty().then_some(())).is_none() {
        let shown: Vec<String> = left()
            .iter()
            .map(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                format!(
                    "{pid} {}",
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                )
            })
            .collect();
        panic!("left running: {shown:#?}");
    }
}

/// A copy of the OK fixture under `env` with `from` (found exactly once) replaced by `to`.
fn doctored(env: &Env, from: &str, to: &str) -> PathBuf {
    let copy = env.path("doctored");
    // Not `with_extension`: the fixture names have dots of their own.
    let copy_of = |ext: &str| format!("{}.{ext}", copy.display());
    let read = |ext: &str| std::fs::read_to_string(format!("{FIXTURES}/{OK}.{ext}")).unwrap();
    let stdout = read("stdout");
    assert_eq!(stdout.matches(from).count(), 1, "{from:?} in {OK}.stdout");
    std::fs::write(copy_of("stdout"), stdout.replace(from, to)).unwrap();
    for ext in ["stderr", "rc"] {
        std::fs::write(copy_of(ext), read(ext)).unwrap();
    }
    copy
}

fn message(sample: &Value) -> &str {
    sample["message"].as_str().unwrap_or_default()
}

#[test]
fn the_process_scan_sees_marked_processes_and_skips_zombies() {
    let env = Env::new();
    let mut sleep = Command::new("sleep");
    sleep.arg("30");
    let mark = mark(&env, &mut sleep);
    let mut child = sleep.spawn().unwrap();
    // spawn returns midway through exec, before the new environment is in place.
    let found = common::eventually("the marked process listed", || {
        Some(processes_with_env(&mark)).filter(|found| !found.is_empty())
    });
    let by_prefix = processes_with_env(&format!("{mark}x"));
    child.kill().unwrap();
    assert_eq!(found, [child.id()]);
    assert!(by_prefix.is_empty(), "exact entries only");
    // Killed but not yet reaped: a zombie, which holds nothing and must not count.
    assert_none_left(&mark, None);
    child.wait().unwrap();
}

#[test]
fn hang_is_timeout() {
    let env = Env::new();
    let sample = survive(&env, Cli::fake("sleep", OK).timeout("500ms"), "timeout");
    assert_eq!(
        message(&sample),
        "speedtest did not finish within 500ms and was killed"
    );
    assert_eq!(pids(&env.path("pids")).len(), 1, "the fake ran");
}

#[test]
fn hanging_grandchild_holding_the_pipes_is_timeout() {
    let env = Env::new();
    let sample = survive(
        &env,
        Cli::fake("fork-sleep", OK).timeout("500ms"),
        "timeout",
    );
    assert_eq!(
        message(&sample),
        "speedtest did not finish within 500ms and was killed"
    );
    assert_eq!(pids(&env.path("pids")).len(), 2, "the fake forked");
}

#[test]
fn grandchild_holding_the_pipes_after_a_clean_exit_is_a_prompt_success() {
    let env = Env::new();
    // The grandchild sleeps 300 s on our pipes; the run must end when the CLI does.
    let sample = survive(&env, Cli::fake("fork", OK).timeout("60s"), "success");
    assert_eq!(sample["download_bytes_per_second"], 39_924_051.0);
    let took = sample["duration_seconds"].as_f64().unwrap();
    assert!(took < 10.0, "took {took} s");
    assert_eq!(pids(&env.path("pids")).len(), 2, "the fake forked");
}

#[test]
fn garbage_is_parse() {
    let env = Env::new();
    let sample = survive(&env, Cli::fake("garbage", OK), "parse");
    assert_eq!(
        message(&sample),
        "expected a JSON result, got: <html><body>502 Bad Gateway</body></html>"
    );
}

#[test]
fn hundred_mib_of_output_is_output_too_large() {
    let env = Env::new();
    // The mode really prints 100 MiB and exits 0 when nobody cuts it short.
    let mut fake = Command::new(FAKE)
        .env("FAKE_SPEEDTEST_MODE", "hundred-mib")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let printed = std::io::copy(&mut fake.stdout.take().unwrap(), &mut std::io::sink()).unwrap();
    assert_eq!(printed, HUNDRED_MIB);
    assert!(fake.wait().unwrap().success());

    let sample = survive(&env, Cli::fake("hundred-mib", OK), "output_too_large");
    assert_eq!(
        message(&sample),
        "speedtest wrote more than 1048576 bytes to stdout"
    );
}

#[test]
fn endless_output_is_output_too_large() {
    let env = Env::new();
    let sample = survive(&env, Cli::fake("flood", OK), "output_too_large");
    assert_eq!(
        message(&sample),
        "speedtest wrote more than 1048576 bytes to stdout"
    );
}

#[test]
fn each_err_fixture_is_its_reason() {
    let mut on_disk: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".rc")?;
            stem.starts_with("err-").then(|| stem.to_owned())
        })
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = ERR_FIXTURES.iter().map(|(name, _)| *name).collect();
    assert_eq!(on_disk, listed, "every err-* fixture, and only those");

    for (fixture, reason) in ERR_FIXTURES {
        let env = Env::new();
        let sample = survive(&env, Cli::fake("replay", fixture), reason);
        let rc = std::fs::read_to_string(format!("{FIXTURES}/{fixture}.rc")).unwrap();
        assert_ne!(rc.trim(), "0", "{fixture} exits non-zero");
        if reason == "exit" {
            let status = format!("exit status {}: ", rc.trim());
            assert!(message(&sample).starts_with(&status), "{fixture}: {sample}");
        }
    }
}

#[test]
fn sigsegv_is_exit() {
    let env = Env::new();
    let sample = survive(&env, Cli::fake("crash", OK), "exit");
    assert_eq!(message(&sample), "killed by signal 11");
}

#[test]
fn sigkill_is_exit() {
    let env = Env::new();
    let sample = survive(&env, Cli::fake("sigkill", OK), "exit");
    assert_eq!(message(&sample), "killed by signal 9");
}

#[test]
fn missing_binary_is_spawn() {
    let env = Env::new();
    let missing = env.path("no-such-speedtest");
    let sample = survive(&env, Cli::at(&missing), "spawn");
    assert_eq!(
        message(&sample),
        format!(
            "cannot run {}: not found (install the Ookla Speedtest CLI, set --speedtest-bin, or measure with --engine http)",
            missing.display()
        )
    );
}

#[test]
fn non_executable_binary_is_spawn() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let script = env.path("speedtest");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sample = survive(&env, Cli::at(&script), "spawn");
    assert_eq!(
        message(&sample),
        format!(
            "cannot run {}: permission denied (is it executable?)",
            script.display()
        )
    );
}

#[test]
fn truncated_json_is_parse() {
    let env = Env::new();
    let sample = survive(&env, Cli::fake("truncated", OK), "parse");
    assert!(
        message(&sample).starts_with(
            "expected a JSON result, got broken JSON (EOF while parsing a string at line 6 \
             column 6): {"
        ),
        "{sample}"
    );
}

#[test]
fn nan_bandwidth_is_parse() {
    let env = Env::new();
    let fixture = doctored(&env, "\"bandwidth\": 39924051,", "\"bandwidth\": NaN,");
    // NaN is not JSON: the result object does not parse at all.
    let sample = survive(&env, Cli::fake("replay", fixture), "parse");
    assert!(
        message(&sample).starts_with(
            "expected a JSON result, got broken JSON (expected value at line 11 column 18): {"
        ),
        "{sample}"
    );
}

#[test]
fn negative_bandwidth_is_implausible() {
    let env = Env::new();
    let fixture = doctored(
        &env,
        "\"bandwidth\": 39924051,",
        "\"bandwidth\": -39924051,",
    );
    let sample = survive(&env, Cli::fake("replay", fixture), "implausible");
    assert_eq!(message(&sample), "download -39924051 B/s is negative");
}

#[test]
fn absurd_bandwidth_is_implausible() {
    let env = Env::new();
    let fixture = doctored(&env, "\"bandwidth\": 39924051,", "\"bandwidth\": 1e300,");
    let sample = survive(&env, Cli::fake("replay", fixture), "implausible");
    assert_eq!(
        message(&sample),
        "download 1e300 B/s is above 100000 Mbit/s (12500000000 B/s) (--max-bandwidth)"
    );
}

#[test]
fn absurd_latency_is_implausible() {
    let env = Env::new();
    let fixture = doctored(&env, "\"latency\": 12.280,", "\"latency\": 1e300,");
    let sample = survive(&env, Cli::fake("replay", fixture), "implausible");
    assert_eq!(message(&sample), "ping 1e297 s is above 60 s");
}

/// Waits until the fake CLI of `env` has noted `count` pids: the test's processes are up.
fn wait_for_pids(env: &Env, count: usize) -> Vec<u32> {
    common::poll_within(common::PATIENCE, || {
        Some(pids(&env.path("pids"))).filter(|noted| noted.len() >= count)
    })
    .unwrap_or_else(|| panic!("the fake noted {:?}", pids(&env.path("pids"))))
}

/// Stops `serve` with `signal` while a test of the fake in `mode` hangs with `count` processes
/// noted: it exits 0 as for SIGTERM, and no process of the test is left.
fn stop_serve_during_a_test(mode: &str, count: usize, signal: i32) {
    let env = Env::new();
    let mut command = env.serve(OK, mode, &["--timeout", "10m"]);
    let mark = mark(&env, &mut command);
    let mut server = Server::start(command);
    let running = wait_for_pids(&env, count);
    common::signal(server.pid(), signal);
    let status = server
        .wait(common::PATIENCE)
        .expect("serve exits on the signal");
    assert_eq!(status.code(), Some(0), "as for SIGTERM: {status:?}");
    assert_none_left(&mark, None);
    assert_gone(&running);
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        _ => "SIGTERM",
    };
    server.wait_for_log(&format!("received {name}"));
    assert!(
        !server.seen.iter().any(|line| line.contains("panicked")),
        "{:#?}",
        server.seen
    );
}

#[test]
fn sighup_during_a_test_stops_serve_as_sigterm_does_and_leaves_no_process() {
    // The fake and its grandchild both hang, each in the test's process group.
    stop_serve_during_a_test("fork-sleep", 2, libc::SIGHUP);
}

#[test]
fn a_signal_to_serve_kills_a_grandchild_that_left_the_session() {
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        stop_serve_during_a_test("escape-sleep", 2, signal);
    }
}

/// `run-once` against the fake in `mode`, tagged; its pids are noted under `env`.
fn run_once(env: &Env, mode: &str, extra: &[&str]) -> (Command, String) {
    let mut command = common::with_fake("run-once", &env.db(), OK, extra);
    command
        .env("FAKE_SPEEDTEST_MODE", mode)
        .env("FAKE_SPEEDTEST_PIDS", env.path("pids"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mark = mark(env, &mut command);
    (command, mark)
}

/// Stops `run-once` with each of SIGHUP, SIGTERM and SIGINT while a test of the fake in `mode`
/// hangs with `count` processes noted: exit 130, nothing stored, no process of the test left.
fn interrupt_run_once(mode: &str, count: usize) {
    for signal in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT] {
        let env = Env::new();
        let (mut command, mark) = run_once(&env, mode, &["--timeout", "10m"]);
        let child = command.spawn().expect("start run-once");
        let running = wait_for_pids(&env, count);
        common::signal(child.id(), signal);
        let output = child.wait_with_output().expect("wait for run-once");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "signal {signal}: {stderr}");
        assert!(
            stderr.contains("interrupted; the test was stopped and nothing was stored"),
            "{stderr}"
        );
        assert!(output.stdout.is_empty(), "nothing printed");
        assert_none_left(&mark, None);
        assert_gone(&running);
        // Nothing stored, and the database file this run-once created is gone again.
        assert!(!env.db().exists(), "a new database file was left behind");
    }
}

#[test]
fn sighup_during_run_once_stops_it_as_sigterm_does_and_leaves_no_process() {
    interrupt_run_once("fork-sleep", 2);
}

#[test]
fn a_signal_to_run_once_kills_a_grandchild_that_left_the_session() {
    interrupt_run_once("escape-sleep", 2);
}

/// Runs `run-once` to its end and returns its exit status and printed sample, once no process
/// of its test is left.
fn run_once_to_the_end(env: &Env, mode: &str, timeout: &str) -> (Option<i32>, Value) {
    let (mut command, mark) = run_once(env, mode, &["--timeout", timeout]);
    let output = command.output().expect("run run-once");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let sample: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: printed {:?}, {stderr}", output.stdout));
    assert_none_left(&mark, None);
    assert_gone(&pids(&env.path("pids")));
    (output.status.code(), sample)
}

#[test]
fn grandchild_that_left_the_session_after_a_clean_exit_is_a_prompt_success() {
    let env = Env::new();
    // The grandchild sleeps 300 s on our pipes in a session of its own: killing the CLI's
    // process group misses it.
    let sample = survive(&env, Cli::fake("escape", OK).timeout("10s"), "success");
    assert_eq!(sample["download_bytes_per_second"], 39_924_051.0);
    let took = sample["duration_seconds"].as_f64().unwrap();
    assert!(took < 5.0, "took {took} s");
    assert_eq!(pids(&env.path("pids")).len(), 2, "the fake forked");
}

#[test]
fn great_grandchild_that_left_the_session_after_a_clean_exit_is_a_prompt_success() {
    let env = Env::new();
    // The grandchild stays in the group and outlives the CLI; its child, in a session of its
    // own, is orphaned only once the grandchild is killed.
    let sample = survive(
        &env,
        Cli::fake("escape-twice", OK).timeout("10s"),
        "success",
    );
    let took = sample["duration_seconds"].as_f64().unwrap();
    assert!(took < 5.0, "took {took} s");
    assert_eq!(pids(&env.path("pids")).len(), 3, "the fake forked twice");
}

#[test]
fn grandchild_that_left_the_session_after_an_error_is_that_error() {
    let env = Env::new();
    let sample = survive(
        &env,
        Cli::fake("escape", "err-config-dns").timeout("10s"),
        "no_connectivity",
    );
    let took = sample["duration_seconds"].as_f64().unwrap();
    assert!(took < 5.0, "took {took} s");
}

#[test]
fn grandchild_that_left_the_session_of_a_hanging_cli_is_killed_on_timeout() {
    let env = Env::new();
    let sample = survive(
        &env,
        Cli::fake("escape-sleep", OK).timeout("500ms"),
        "timeout",
    );
    assert_eq!(
        message(&sample),
        "speedtest did not finish within 500ms and was killed"
    );
    assert_eq!(pids(&env.path("pids")).len(), 2, "the fake forked");
}

#[test]
fn run_once_with_a_grandchild_that_left_the_session_is_a_prompt_success() {
    for mode in ["escape", "escape-twice"] {
        let env = Env::new();
        let (code, sample) = run_once_to_the_end(&env, mode, "10s");
        assert_eq!(code, Some(0), "{mode}: {sample}");
        assert_eq!(sample["outcome"], "success", "{mode}: {sample}");
        let took = sample["duration_seconds"].as_f64().unwrap();
        assert!(took < 5.0, "{mode}: took {took} s");
    }
}

#[test]
fn run_once_with_a_grandchild_that_left_the_session_is_killed_on_timeout() {
    let env = Env::new();
    let (code, sample) = run_once_to_the_end(&env, "escape-sleep", "500ms");
    assert_eq!(code, Some(2), "{sample}");
    assert_eq!(sample["reason"], "timeout", "{sample}");
}
