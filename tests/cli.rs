//! End to end: the real `internet-monitor` binary, a fake `speedtest` child process replaying
//! recorded CLI output, and a real redb file in a temporary directory.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Env, FAKE, FIXTURES, assert_gone, pids};
use internet_monitor::store::Store;
use serde_json::Value;

impl Env {
    fn command(&self, args: &[&str]) -> Command {
        common::command(args)
    }

    /// `run-once` against the fake CLI replaying `fixture` in `mode`.
    fn run_once(&self, fixture: &str, mode: &str, extra: &[&str]) -> Output {
        common::with_fake("run-once", &self.db(), fixture, extra)
            .env("FAKE_SPEEDTEST_MODE", mode)
            .env("FAKE_SPEEDTEST_ARGS", self.path("args"))
            .env("FAKE_SPEEDTEST_PIDS", self.path("pids"))
            .output()
            .expect("run internet-monitor")
    }

    fn export(&self, format: &str) -> Output {
        let db = self.db();
        self.command(&["export", "--db", db.to_str().unwrap(), "--format", format])
            .output()
            .expect("run export")
    }

    fn exported_samples(&self) -> Vec<Value> {
        let output = self.export("jsonl");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one JSON object `run-once` prints.
fn printed(output: &Output) -> Value {
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "one line of JSON: {text:?} / {}",
        stderr(output)
    );
    serde_json::from_str(&text).unwrap()
}

/// Runs a test expected to fail and checks the stored sample is the printed one.
fn assert_failure(env: &Env, output: &Output, reason: &str) -> Value {
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(output));
    let sample = printed(output);
    assert_eq!(sample["outcome"], "failure");
    assert_eq!(sample["reason"], reason);
    assert!(sample["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(sample["download_bytes_per_second"].is_null());
    assert_eq!(env.exported_samples(), vec![sample.clone()]);
    sample
}

#[test]
fn success_is_stored_printed_and_exported() {
    let env = Env::new();
    let output = env.run_once("ok-1.2-with-loaded-latency", "replay", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let sample = printed(&output);
    assert_eq!(sample["outcome"], "success");
    assert_eq!(sample["trigger"], "manual");
    assert!(sample["reason"].is_null());
    assert_eq!(sample["download_bytes_per_second"], 92_727_670.0);
    assert_eq!(sample["ping_seconds"], 0.005631);
    assert_eq!(sample["packet_loss_ratio"], 0.0);
    assert_eq!(sample["server"]["name"], "Zzoomm Plc");
    assert_eq!(sample["isp"], "Giganet Limited");
    assert!(
        sample["duration_seconds"]
            .as_f64()
            .is_some_and(|d| d >= 0.0)
    );
    assert!(sample["time"].as_str().unwrap().ends_with('Z'));
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    for private in ["192.0.2.3", "203.0.113.3", "00:00:5E:00:53:03", "client"] {
        assert!(
            !text.contains(private),
            "{private} must not be printed without --store-ip"
        );
    }
    assert_eq!(env.exported_samples(), vec![sample]);
}

#[test]
fn run_once_format_text_is_for_a_person_and_json_stays_the_default() {
    let env = Env::new();
    let output = env.run_once("ok-1.2-pretty", "replay", &["--format", "text"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("result: success\n"), "{text}");
    for line in [
        "\ndownload: ",
        " Mbit/s\n",
        "\nping: ",
        " ms\n",
        "\nserver: ",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    // Not a terminal: no progress on stderr, so scripts stay clean.
    assert_eq!(stderr(&output), "");
    let output = common::with_fake("run-once", &env.db(), "ok-1.2-pretty", &[])
        .env("INTERNET_MONITOR_RUN_ONCE_FORMAT", "text")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("result: success\n"));
}

#[test]
fn run_once_shows_progress_on_a_terminal() {
    // script(1) (util-linux) runs the command on a pseudo-terminal: stderr is a terminal.
    let env = Env::new();
    let db = env.db();
    let inner = format!(
        "{} run-once --db {} --speedtest-bin {}",
        common::BIN,
        db.display(),
        common::FAKE
    );
    let mut script = Command::new("script");
    script.args(["-qec", &inner, "/dev/null"]);
    for (key, _) in std::env::vars() {
        if key.starts_with("INTERNET_MONITOR_") {
            script.env_remove(key);
        }
    }
    let output = script
        .env(
            "FAKE_SPEEDTEST_FIXTURE",
            format!("{}/ok-1.2-pretty", common::FIXTURES),
        )
        .env("INTERNET_MONITOR_PROBE_INTERVAL", "0s")
        .output()
        .expect("script(1) from util-linux must be installed");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("… 0 s"), "a progress line in {shown:?}");
    // Rubbed out before the result is printed.
    assert!(shown.contains("\r\u{1b}[2K{\""), "{shown:?}");
}

#[test]
fn store_ip_keeps_the_addresses() {
    let env = Env::new();
    let output = env.run_once("ok-1.2-with-loaded-latency", "replay", &["--store-ip"]);
    let sample = printed(&output);
    assert_eq!(sample["client"]["external_ip"], "203.0.113.3");
    assert_eq!(env.exported_samples(), vec![sample]);
}

#[test]
fn the_cli_gets_the_exact_command_line() {
    let env = Env::new();
    let output = env.run_once(
        "ok-1.2-pretty",
        "replay",
        &["--server-id", "1234", "--speedtest-arg=--interface=eth1"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let args = std::fs::read_to_string(env.path("args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        vec![
            "--format=json",
            "--accept-license",
            "--accept-gdpr",
            "--progress=no",
            "--server-id=1234",
            "--interface=eth1",
        ]
    );
}

#[test]
fn flags_read_their_environment_twins() {
    let env = Env::new();
    let output = env
        .command(&["run-once"])
        .env("INTERNET_MONITOR_DB", env.db())
        .env("INTERNET_MONITOR_SPEEDTEST_BIN", FAKE)
        .env("INTERNET_MONITOR_SERVER_ID", "77")
        .env(
            "FAKE_SPEEDTEST_FIXTURE",
            format!("{FIXTURES}/ok-1.2-no-packet-loss"),
        )
        .env("FAKE_SPEEDTEST_ARGS", env.path("args"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        printed(&output)["packet_loss_ratio"].is_null(),
        "absent stays null"
    );
    assert!(
        std::fs::read_to_string(env.path("args"))
            .unwrap()
            .contains("--server-id=77")
    );
    assert_eq!(env.exported_samples().len(), 1);
}

#[test]
fn reason_spawn_when_the_binary_is_missing() {
    let env = Env::new();
    let db = env.db();
    let output = env
        .command(&[
            "run-once",
            "--db",
            db.to_str().unwrap(),
            "--engine",
            "ookla",
            "--speedtest-bin",
            "/nonexistent/speedtest",
        ])
        .output()
        .unwrap();
    let sample = assert_failure(&env, &output, "spawn");
    assert_eq!(
        sample["message"],
        "cannot run /nonexistent/speedtest: not found (install the Ookla Speedtest CLI, set --speedtest-bin, or measure with --engine http)"
    );
}

#[test]
fn reason_exit_when_the_cli_fails_otherwise() {
    let env = Env::new();
    let output = env.run_once("err-config-http403", "replay", &[]);
    let sample = assert_failure(&env, &output, "exit");
    assert!(sample["message"].as_str().unwrap().starts_with(
        "exit status 2: Configuration - Cannot retrieve configuration document (403)"
    ));
}

#[test]
fn reason_exit_when_the_cli_crashes() {
    let env = Env::new();
    let output = env.run_once("ok-1.2-pretty", "crash", &[]);
    let sample = assert_failure(&env, &output, "exit");
    assert_eq!(sample["message"], "killed by signal 11");
}

#[test]
fn reason_rate_limited() {
    let env = Env::new();
    let output = env.run_once("err-rate-limited", "replay", &[]);
    let sample = assert_failure(&env, &output, "rate_limited");
    // Ookla's reason is on the lines after "Limit reached:", and is part of the message.
    assert_eq!(
        sample["message"],
        "Limit reached: Speedtest CLI. Too many requests received. To maintain a fair and \
         stable environment, please review and adjust the frequency of your requests."
    );
}

#[test]
fn reason_no_connectivity_for_a_connect_timeout() {
    let env = Env::new();
    let output = env.run_once("err-timeout-in-connect", "replay", &[]);
    let sample = assert_failure(&env, &output, "no_connectivity");
    assert_eq!(sample["message"], "Error: [0] Timeout occurred in connect.");
}

#[test]
fn reason_no_connectivity() {
    let env = Env::new();
    let output = env.run_once("err-config-dns", "replay", &[]);
    let sample = assert_failure(&env, &output, "no_connectivity");
    assert!(
        sample["message"]
            .as_str()
            .unwrap()
            .contains("Couldn't resolve host name")
    );
}

#[test]
fn reason_parse_on_garbage() {
    let env = Env::new();
    let output = env.run_once("ok-1.2-pretty", "garbage", &[]);
    let sample = assert_failure(&env, &output, "parse");
    assert_eq!(
        sample["message"],
        "expected a JSON result, got: <html><body>502 Bad Gateway</body></html>"
    );
}

#[test]
fn reason_implausible_on_zero_bandwidth() {
    let env = Env::new();
    let output = env.run_once("synthetic-zero-bandwidth", "replay", &[]);
    let sample = assert_failure(&env, &output, "implausible");
    assert_eq!(sample["message"], "download and upload are both 0 B/s");
}

/// Issue 11: stored as a success, this byte count used up any `--data-budget` for the month.
#[test]
fn reason_implausible_on_bytes_no_test_could_move() {
    let env = Env::new();
    let output = env.run_once("synthetic-huge-bytes", "replay", &[]);
    let sample = assert_failure(&env, &output, "implausible");
    assert_eq!(
        sample["message"],
        "downloaded bytes 18446744073709551615 B is above 45000000000000 B (--max-bandwidth × 3600 s)"
    );
    assert_eq!(sample["downloaded_bytes"], serde_json::Value::Null);
}

#[test]
fn reason_output_too_large_on_a_flood() {
    let env = Env::new();
    let output = env.run_once("ok-1.2-pretty", "flood", &[]);
    let sample = assert_failure(&env, &output, "output_too_large");
    assert_eq!(
        sample["message"],
        "speedtest wrote more than 1048576 bytes to stdout"
    );
    assert_all_gone(&env);
}

#[test]
fn reason_timeout_kills_child_and_grandchild() {
    let env = Env::new();
    let output = env.run_once("ok-1.2-pretty", "fork-sleep", &["--timeout", "500ms"]);
    let sample = assert_failure(&env, &output, "timeout");
    assert_eq!(
        sample["message"],
        "speedtest did not finish within 500ms and was killed"
    );
    assert_eq!(
        pids(&env.path("pids")).len(),
        2,
        "the fake forked a grandchild"
    );
    assert_all_gone(&env);
}

#[test]
fn a_grandchild_holding_the_pipes_does_not_hang_a_finished_run() {
    let env = Env::new();
    // The grandchild sleeps 300 s with our pipes open; only killing the group ends the run.
    let output = env.run_once("ok-1.2-pretty", "fork", &["--timeout", "60s"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(printed(&output)["outcome"], "success");
    assert_all_gone(&env);
}

fn assert_all_gone(env: &Env) {
    assert_gone(&pids(&env.path("pids")));
}

#[test]
fn a_locked_database_is_refused_before_testing() {
    let env = Env::new();
    let _held = Store::open(&env.db()).unwrap();
    let output = env.run_once("ok-1.2-pretty", "replay", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert_eq!(
        stderr(&output),
        format!(
            "internet-monitor: error: database {} is locked: another internet-monitor process has it open (serve, or a run-once, import, db or plan set with this --db): stop it, or wait for it to end, and run this again (export, report and plan show read the database meanwhile)\n",
            env.db().display()
        )
    );
    assert!(
        !env.path("args").exists(),
        "no test may run without a store"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_left_untouched() {
    let env = Env::new();
    let content = b"id,download\n1,100\n".repeat(500);
    std::fs::write(env.db(), &content).unwrap();
    let output = env.run_once("ok-1.2-pretty", "replay", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "internet-monitor: error: {} is not an internet-monitor database (not a redb file); it was left untouched: pass another --db\n",
            env.db().display()
        )
    );
    assert_eq!(std::fs::read(env.db()).unwrap(), content);
    assert!(!env.path("args").exists());
    let export = env.export("jsonl");
    assert_eq!(export.status.code(), Some(1));
    assert_eq!(std::fs::read(env.db()).unwrap(), content);
}

#[test]
fn an_unwritable_location_is_an_error_naming_the_file() {
    let env = Env::new();
    // sysfs refuses new files even to root, so this holds on any Linux CI machine.
    let output = env
        .command(&[
            "run-once",
            "--db",
            "/sys/internet-monitor.redb",
            "--speedtest-bin",
            FAKE,
        ])
        .env("FAKE_SPEEDTEST_ARGS", env.path("args"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.starts_with(
            "internet-monitor: error: cannot open database /sys/internet-monitor.redb: "
        ),
        "{message}"
    );
    assert!(
        message.ends_with("(is its directory there and writable? see --db)\n"),
        "{message}"
    );
    assert!(!env.path("args").exists());
}

#[test]
fn usage_errors_exit_1_and_name_the_flag() {
    let env = Env::new();
    let output = env
        .command(&["run-once", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("invalid value 'soon' for '--timeout <DURATION>'"));
    let output = env
        .command(&["export", "--from", "last tuesday"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("for '--from <TIME>'"),
        "{}",
        stderr(&output)
    );
}

/// A probe setting `serve` refuses stops it with exit 1, naming the flag, before it opens
/// (and so creates) the database file.
#[test]
fn a_refused_probe_setting_names_the_flag_and_creates_no_database() {
    let env = Env::new();
    let db = env.db();
    let db = db.to_str().unwrap();
    for (args, expected) in [
        (
            &["--probe-target", "192.0.2.1:443,192.0.2.1:53"][..],
            "--probe-target: 192.0.2.1 is given twice",
        ),
        (
            &[
                "--probe-target",
                "192.0.2.1",
                "--probe-gateway",
                "192.0.2.1",
            ][..],
            "--probe-gateway 192.0.2.1 is also a --probe-target",
        ),
    ] {
        let mut command = env.command(&["serve", "--db", db, "--listen", "127.0.0.1:0"]);
        command
            .args(args)
            .env("INTERNET_MONITOR_PROBE_INTERVAL", "10s");
        let output = command.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        assert!(
            !env.db().exists(),
            "{args:?} created {}",
            env.db().display()
        );
    }
}

#[test]
fn help_documents_every_flag_and_its_environment_twin() {
    let env = Env::new();
    let output = env.command(&["run-once", "--help"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    for (flag, twin) in [
        ("--db", "INTERNET_MONITOR_DB"),
        ("--speedtest-bin", "INTERNET_MONITOR_SPEEDTEST_BIN"),
        ("--timeout", "INTERNET_MONITOR_TIMEOUT"),
        ("--server-id", "INTERNET_MONITOR_SERVER_ID"),
        ("--speedtest-arg", "INTERNET_MONITOR_SPEEDTEST_ARG"),
        ("--store-ip", "INTERNET_MONITOR_STORE_IP"),
        ("--max-bandwidth", "INTERNET_MONITOR_MAX_BANDWIDTH"),
    ] {
        assert!(
            help.contains(flag) && help.contains(twin),
            "{flag} / {twin} in:\n{help}"
        );
    }
}

/// Three runs of different kinds, for the transfer tests.
fn env_with_history() -> Env {
    let env = Env::new();
    for (fixture, mode) in [
        ("ok-1.2-with-loaded-latency", "replay"),
        ("err-rate-limited", "replay"),
        ("ok-pre-1.2-no-loaded-latency", "replay"),
    ] {
        let output = env.run_once(fixture, mode, &[]);
        assert!(output.status.code().is_some_and(|c| c == 0 || c == 2));
    }
    env
}

fn import(env: &Env, db: &Path, file: &Path) -> Output {
    env.command(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        file.to_str().unwrap(),
    ])
    .output()
    .unwrap()
}

#[test]
fn export_then_import_round_trips_exactly_and_only_once() {
    let env = env_with_history();
    let exported = env.export("jsonl");
    assert_eq!(exported.stdout.iter().filter(|b| **b == b'\n').count(), 3);
    let file = env.path("export.jsonl");
    std::fs::write(&file, &exported.stdout).unwrap();

    let copy = env.path("copy.redb");
    let first = import(&env, &copy, &file);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(
        stderr(&first),
        format!(
            "imported 3 new samples from {} (0 already stored)\n",
            file.display()
        )
    );
    let again = import(&env, &copy, &file);
    assert_eq!(
        stderr(&again),
        format!(
            "imported 0 new samples from {} (3 already stored)\n",
            file.display()
        )
    );
    let re_exported = env
        .command(&["export", "--db", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(re_exported.stdout, exported.stdout);
}

/// Lines of one file at the same millisecond are not "already stored" into an empty
/// database: they are counted and named apart, and the earlier line is the one kept.
#[test]
fn import_names_lines_that_repeat_an_earlier_lines_time_apart_from_stored_ones() {
    let env = env_with_history();
    let exported = String::from_utf8(env.export("jsonl").stdout).unwrap();
    let first: Value = serde_json::from_str(exported.lines().next().unwrap()).unwrap();
    let time = first["time"].as_str().unwrap().to_owned();
    let base = time.trim_end_matches('Z');
    let mut differs = first.clone();
    differs["trigger"] = "manual".into();
    let mut below_a_millisecond = first.clone();
    below_a_millisecond["time"] = format!("{base}0001Z").into();
    let mut lines = vec![first.to_string(), differs.to_string()];
    lines.push(below_a_millisecond.to_string());
    let file = env.path("repeats.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let fresh = env.path("fresh.redb");
    let output = import(&env, &fresh, &file);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let shown = file.display();
    assert_eq!(
        stderr(&output),
        format!(
            "imported 1 new samples from {shown} (0 already stored, 2 lines at the time of an \
             earlier line)\n2 lines of {shown} not stored: each has the time of an earlier line \
             of the file, to the millisecond (times are stored to the millisecond; the earlier \
             line is kept): line 2 ({time}), line 3 ({time})\n"
        )
    );
    let kept = env
        .command(&["export", "--db", fresh.to_str().unwrap()])
        .output()
        .unwrap();
    let kept: Value = serde_json::from_slice(&kept.stdout).unwrap();
    assert_eq!(kept, first, "the earlier line is the one kept");
    // Into the database that holds that time, each line is already stored.
    let again = import(&env, &fresh, &file);
    assert_eq!(
        stderr(&again),
        format!("imported 0 new samples from {shown} (3 already stored)\n")
    );
}

/// Two imports creating the same new database at once: the loser saw the winner's file before
/// its header was whole, and called it "not an internet-monitor database"; it is locked.
#[test]
fn two_imports_creating_one_database_at_once_say_locked_never_foreign() {
    let env = env_with_history();
    let file = env.path("export.jsonl");
    std::fs::write(&file, env.export("jsonl").stdout).unwrap();
    let db = env.path("race.redb");
    let mut losers = 0;
    for _ in 0..10 {
        let _ = std::fs::remove_file(&db);
        let start = || {
            env.command(&[
                "import",
                "--db",
                db.to_str().unwrap(),
                file.to_str().unwrap(),
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        };
        let (first, second) = (start(), start());
        for output in [first, second].map(|child| child.wait_with_output().unwrap()) {
            let said = stderr(&output);
            if output.status.code() == Some(0) {
                continue;
            }
            losers += 1;
            assert_eq!(
                said,
                format!(
                    "internet-monitor: error: database {} is locked: another internet-monitor \
                     process has it open (serve, or a run-once, import, db or plan set with this \
                     --db): stop it, or wait for it to end, and run this again (export, report \
                     and plan show read the database meanwhile)\n",
                    db.display()
                )
            );
        }
        let stored = env
            .command(&["export", "--db", db.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            stored.stdout,
            std::fs::read(&file).unwrap(),
            "the winner's rows"
        );
    }
    eprintln!("{losers} of 20 imports lost the race");
}

/// `import --db DB -` started (after `setup` on its command) with stdin and stderr piped.
fn spawn_import_stdin(
    env: &Env,
    db: &Path,
    setup: impl FnOnce(&mut Command),
) -> std::process::Child {
    let mut command = env.command(&["import", "--db", db.to_str().unwrap(), "-"]);
    setup(&mut command);
    command
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 20 s) until a file is at `path`.
fn wait_until_exists(path: &Path) {
    common::eventually(&format!("{path:?} appearing"), || {
        path.exists().then_some(())
    });
}

#[test]
fn import_reads_standard_input() {
    let env = env_with_history();
    let exported = env.export("jsonl").stdout;
    let copy = env.path("copy.redb");
    let mut child = spawn_import_stdin(&env, &copy, |_| {});
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &exported).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        stderr(&output),
        "imported 3 new samples from standard input (0 already stored)\n"
    );
}

#[test]
fn a_malformed_line_aborts_the_import_and_stores_nothing() {
    let env = env_with_history();
    let exported = String::from_utf8(env.export("jsonl").stdout).unwrap();
    let mut lines: Vec<&str> = exported.lines().collect();
    lines.insert(
        2,
        r#"{"time":"2026-11-24T18:00:00.000Z","outcome":"success"}"#,
    );
    let file = env.path("broken.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let copy = env.path("copy.redb");
    let output = import(&env, &copy, &file);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with(&format!(
            "internet-monitor: error: nothing was imported: {} line 3: missing field `trigger`",
            file.display()
        )),
        "{}",
        stderr(&output)
    );
    assert!(
        !copy.exists(),
        "a failed import leaves no new database file"
    );
    // Into a database that existed, the same failure stores nothing and keeps the file.
    let output = import(&env, &env.db(), &file);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(Store::open(&env.db()).unwrap().len().unwrap(), 3);
    // Through a symbolic link to it: the link and the file stay.
    let link = env.path("link.redb");
    std::os::unix::fs::symlink(env.db(), &link).unwrap();
    assert_eq!(import(&env, &link, &file).status.code(), Some(1));
    assert_eq!(Store::open(&link).unwrap().len().unwrap(), 3);
    // Through a link that led nowhere: the file made at its target is removed, the link stays.
    let dangling = env.path("dangling.redb");
    let target = env.path("target.redb");
    std::os::unix::fs::symlink(&target, &dangling).unwrap();
    assert_eq!(import(&env, &dangling, &file).status.code(), Some(1));
    assert!(
        !target.exists(),
        "a failed import leaves no new database at a link's target"
    );
    assert!(std::fs::symlink_metadata(&dangling).unwrap().is_symlink());
}

/// Ctrl-C (or SIGTERM) while an import reads its input: the database file it created is
/// removed, not left half made, and the exit status says which signal stopped it.
#[test]
fn an_interrupted_import_leaves_no_new_database_file() {
    let env = env_with_history();
    let exported = String::from_utf8(env.export("jsonl").stdout).unwrap();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let copy = env.path("copy.redb");
        let mut child = spawn_import_stdin(&env, &copy, |_| {});
        // One line, and stdin left open: the import has created the file and waits for more.
        let mut stdin = child.stdin.take().unwrap();
        let first = exported.lines().next().unwrap();
        std::io::Write::write_all(&mut stdin, format!("{first}\n").as_bytes()).unwrap();
        wait_until_exists(&copy);
        common::signal(child.id(), signal);
        let output = child.wait_with_output().unwrap();
        drop(stdin);
        assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("nothing was stored, and"),
            "{}",
            stderr(&output)
        );
        assert!(
            !copy.exists(),
            "an interrupted import leaves no new database file"
        );
    }
}

/// An import started with SIGINT ignored (a shell script's background job; `nohup` does so for
/// SIGHUP) keeps ignoring it while it removes a new file on the signals it does take.
#[test]
fn an_import_started_ignoring_sigint_keeps_ignoring_it() {
    use std::os::unix::process::CommandExt;
    let env = env_with_history();
    let copy = env.path("copy.redb");
    let mut child = spawn_import_stdin(&env, &copy, |command| {
        // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                Ok(())
            });
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"\n").unwrap();
    wait_until_exists(&copy);
    // The file exists once the signals are watched: SIGINT still ignored, SIGTERM caught.
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let mask = |name: &str| {
        let line = status.lines().find(|line| line.starts_with(name)).unwrap();
        u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
    };
    let bit = |signal: i32| 1u64 << (signal - 1);
    assert_ne!(mask("SigIgn:") & bit(libc::SIGINT), 0, "{status}");
    assert_eq!(mask("SigCgt:") & bit(libc::SIGINT), 0, "{status}");
    assert_ne!(mask("SigCgt:") & bit(libc::SIGTERM), 0, "{status}");
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn import_says_what_a_file_that_is_not_json_lines_is_and_creates_nothing() {
    let env = env_with_history();
    let copy = env.path("copy.redb");
    let csv = env.path("export.csv");
    std::fs::write(&csv, env.export("csv").stdout).unwrap();
    let metrics = env.path("export.om");
    std::fs::write(&metrics, env.export("openmetrics").stdout).unwrap();
    let array = env.path("array.json");
    std::fs::write(&array, "[{\"time\": \"2026-11-01T00:00:00Z\"}]\n").unwrap();
    for (file, looks) in [
        (&csv, "looks like CSV as `export --format csv` writes it"),
        (&metrics, "looks like OpenMetrics text"),
        (&array, "looks like a JSON array"),
    ] {
        let output = import(&env, &copy, file);
        assert_eq!(output.status.code(), Some(1));
        let said = stderr(&output);
        assert!(
            said.starts_with(&format!(
                "internet-monitor: error: nothing was imported: {} {looks}",
                file.display()
            )) && said.contains("import reads JSON lines, one sample per line, as `export --format jsonl` writes them"),
            "{said}"
        );
        assert!(!copy.exists(), "{said}");
    }
}

#[test]
fn import_skips_a_byte_order_mark() {
    let env = env_with_history();
    let mut exported = b"\xEF\xBB\xBF".to_vec();
    exported.extend(env.export("jsonl").stdout);
    let file = env.path("bom.jsonl");
    std::fs::write(&file, exported).unwrap();
    let copy = env.path("copy.redb");
    let output = import(&env, &copy, &file);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(Store::open(&copy).unwrap().len().unwrap(), 3);
}

#[test]
fn export_csv_has_a_header_and_a_row_per_sample() {
    let env = env_with_history();
    let output = env.export("csv");
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("time,outcome,reason,message,trigger,duration_seconds,"));
    assert!(lines[1].contains(",success,,,manual,"), "{}", lines[1]);
    assert!(lines[1].contains(",92727670,741.82136,"), "{}", lines[1]);
    assert!(lines[2].contains(",failure,rate_limited,"), "{}", lines[2]);
}

#[test]
fn export_window_from_and_to() {
    let env = env_with_history();
    let all = env.exported_samples();
    let second = all[1]["time"].as_str().unwrap();
    let third = all[2]["time"].as_str().unwrap();
    let db = env.db();
    let output = env
        .command(&[
            "export",
            "--db",
            db.to_str().unwrap(),
            "--from",
            second,
            "--to",
            third,
        ])
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, vec![all[1].clone()]);
    let recent = env
        .command(&["export", "--db", db.to_str().unwrap(), "--from", "1h"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(recent.stdout).unwrap().lines().count(), 3);
    let future = env
        .command(&[
            "export",
            "--db",
            db.to_str().unwrap(),
            "--to",
            "2000-01-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert!(future.stdout.is_empty());
}

#[test]
fn export_of_a_missing_database_fails_without_creating_it() {
    let env = Env::new();
    let output = env.export("jsonl");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("does not exist: check --db"));
    assert!(!env.db().exists());
}

#[test]
fn reason_parse_on_truncated_json() {
    let env = Env::new();
    let output = env.run_once("ok-1.2-with-loaded-latency", "truncated", &[]);
    let sample = assert_failure(&env, &output, "parse");
    assert!(
        sample["message"].as_str().unwrap().starts_with(
            "expected a JSON result, got broken JSON (EOF while parsing an object at line 1 \
                 column 100): {\\\"type\\\":\\\"result\\\""
        ),
        "{sample}"
    );
}

#[test]
fn reason_spawn_when_the_binary_is_not_executable() {
    let env = Env::new();
    let script = env.path("speedtest");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let db = env.db();
    let output = env
        .command(&[
            "run-once",
            "--db",
            db.to_str().unwrap(),
            "--engine",
            "ookla",
            "--speedtest-bin",
            script.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let sample = assert_failure(&env, &output, "spawn");
    assert_eq!(
        sample["message"],
        format!(
            "cannot run {}: permission denied (is it executable?)",
            script.display()
        )
    );
}

#[test]
fn the_engine_of_a_run_is_printed_stored_and_exported_everywhere() {
    let env = Env::new();
    let db = env.db();
    let db = db.to_str().unwrap();
    // Nothing listens at the test's HTTP server: a failure, made by the HTTP engine.
    let output = env
        .command(&[
            "run-once",
            "--db",
            db,
            "--engine",
            "http",
            "--http-protocol",
            "librespeed",
            "--http-streams",
            "2",
            "--http-duration",
            "5s",
        ])
        .output()
        .unwrap();
    let sample = assert_failure(&env, &output, "no_connectivity");
    assert_eq!(
        sample["engine"],
        serde_json::json!({
            "name": "http",
            "protocol": "librespeed",
            "url": common::NO_HTTP_SERVER,
            "streams": 2,
            "duration_seconds": 5.0,
            "ramp_up_seconds": 1.0
        })
    );
    let ookla = env.run_once("ok-1.2-pretty", "replay", &[]);
    assert_eq!(ookla.status.code(), Some(0), "{}", stderr(&ookla));
    assert_eq!(printed(&ookla)["engine"]["name"], "ookla");

    let csv = env.export("csv");
    let csv = String::from_utf8(csv.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].ends_with(",engine,engine_protocol,engine_url,engine_streams,engine_duration_seconds,engine_ramp_up_seconds"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].ends_with(&format!(
            ",http,librespeed,{},2,5,1",
            common::NO_HTTP_SERVER
        )),
        "{}",
        rows[1]
    );
    assert!(rows[2].ends_with(",ookla,,,,,"), "{}", rows[2]);

    let report = env
        .command(&["report", "--db", db, "--window", "1d", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(
        report["runs_by_engine"],
        serde_json::json!({"ookla": 1, "http": 1, "unrecorded": 0})
    );
    let text = env
        .command(&["report", "--db", db, "--window", "1d"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("\nMeasured by: ookla 1, http 1\n"), "{text}");
}

#[test]
fn help_names_both_engines() {
    let env = Env::new();
    let output = env.command(&["--help"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    let about = help.lines().next().unwrap_or_default();
    assert!(
        about.contains("the Ookla Speedtest CLI or its own HTTP engine"),
        "{about}"
    );
}

/// `export --label` is checked as Prometheus checks label names (each name once), and only
/// with OpenMetrics.
#[test]
fn export_labels_are_checked_and_only_for_openmetrics() {
    let env = Env::new();
    let db = env.db();
    env.import(&[]);
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--format",
                "openmetrics",
                "--label",
                "job=a",
                "--label",
                "job=b",
            ],
            "internet-monitor: error: --label \"job\" is given twice: give each label name once",
        ),
        (
            &["--format", "openmetrics", "--label", "__name__=x"],
            "invalid value '__name__=x' for '--label <NAME=VALUE>': the label name \"__name__\" must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __",
        ),
        (
            &["--format", "openmetrics", "--label", "9lives=x"],
            "the label name \"9lives\" must match [a-zA-Z_][a-zA-Z0-9_]*",
        ),
        (
            &["--format", "openmetrics", "--label", "instance"],
            "must be NAME=VALUE, such as instance=monitor:5000",
        ),
        (
            &["--label", "instance=x"],
            "internet-monitor: error: --label only applies to --format openmetrics",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["export", "--db", db.to_str().unwrap()];
        args.extend_from_slice(flags);
        let output = common::command(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{flags:?}");
    }
}

/// `internet_monitor_build_info{revision=…}` names the commit this checkout is at (build.rs),
/// and the build follows a new commit (it reruns when HEAD or its branch moves).
#[test]
fn the_revision_is_the_commit_built() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git, which a checkout has");
    assert!(head.status.success(), "not a git checkout");
    let head = String::from_utf8(head.stdout).unwrap();
    assert_eq!(internet_monitor::cli::REVISION, head.trim());
}

/// build.rs asks git only when git tracks the source: a tarball unpacked inside another
/// repository (a packaging repository, a home directory in git) reports no revision rather
/// than that repository's commit, and watches none of its files; once the source is committed
/// there (a monorepo), that commit is the revision.
#[test]
fn build_script_ignores_a_repository_that_does_not_hold_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("build-script");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let compiled = Command::new(rustc)
        .args(["--edition", "2024", "-o"])
        .arg(&script)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/build.rs"))
        .output()
        .expect("rustc, which built this test");
    assert!(compiled.status.success(), "{compiled:?}");
    let outer = dir.path().join("packaging");
    let source = outer.join("src/internet-monitor");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/build.rs"),
        source.join("build.rs"),
    )
    .unwrap();
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&outer)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .expect("git");
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "packaging"]);
    let run_with = |revision: &str, date: &str| {
        let output = Command::new(&script)
            .current_dir(&source)
            .env("INTERNET_MONITOR_REVISION", revision)
            .env("SOURCE_DATE_EPOCH", date)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let run = || run_with("", "");
    let printed = run();
    assert!(
        !printed.contains("INTERNET_MONITOR_REVISION=")
            && !printed.contains("INTERNET_MONITOR_SOURCE_DATE=")
            && !printed.contains("rerun-if-changed")
            && !printed.contains("warning"),
        "{printed}"
    );
    git(&["add", "src/internet-monitor/build.rs"]);
    git(&["commit", "-q", "-m", "source"]);
    let head = git(&["rev-parse", "--short=12", "HEAD"]);
    let printed = run();
    assert!(
        printed.contains(&format!(
            "cargo:rustc-env=INTERNET_MONITOR_REVISION={head}\n"
        )),
        "{printed}"
    );
    // Unusable variables are said, and git answers instead.
    let printed = run_with("abc def", "yesterday");
    assert!(
        printed.contains("cargo:warning=INTERNET_MONITOR_REVISION=\"abc def\" is not a revision")
            && printed.contains("cargo:warning=SOURCE_DATE_EPOCH=\"yesterday\" is not")
            && printed.contains(&format!(
                "cargo:rustc-env=INTERNET_MONITOR_REVISION={head}\n"
            ))
            && printed.contains("cargo:rustc-env=INTERNET_MONITOR_SOURCE_DATE="),
        "{printed}"
    );
    let printed = run_with("v1.2-dirty", "1700000000");
    assert!(
        printed.contains("cargo:rustc-env=INTERNET_MONITOR_REVISION=v1.2-dirty\n")
            && printed.contains("cargo:rustc-env=INTERNET_MONITOR_SOURCE_DATE=1700000000\n")
            && !printed.contains("warning"),
        "{printed}"
    );
}

/// A value refused that came from the environment names its variable (the user may never have
/// typed the flag clap names) and says quotes are part of it (`docker run --env-file` keeps
/// them); a value given on the command line is the command line's.
#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let refusal = |args: &[&str], key: &str, value: &str| {
        let output = common::command(args)
            .arg("--db")
            .arg("/nonexistent/never-opened.redb")
            .env(key, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{key}={value}");
        String::from_utf8(output.stderr).unwrap()
    };
    for (args, key, value) in [
        (&[][..], "INTERNET_MONITOR_PLAN_DOWNLOAD", "\"500 Mbit/s\""),
        (&["serve"], "INTERNET_MONITOR_INTERVAL", "'30m'"),
        (&["run-once"], "INTERNET_MONITOR_ENGINE", "\"http\""),
        (&["serve"], "INTERNET_MONITOR_LISTEN", "\":5000\""),
    ] {
        let stderr = refusal(args, key, value);
        assert!(
            stderr.contains(&format!(
                "tip: the value comes from the environment variable {key}"
            )) && stderr.contains(&format!("{key}'s quotes are part of its value")),
            "{key}: {stderr}"
        );
        let stderr = refusal(args, key, "nonsense");
        assert!(
            stderr.contains(&format!("the environment variable {key}"))
                && !stderr.contains("quotes"),
            "{key}: {stderr}"
        );
    }
    // Not UTF-8: clap says only that some argument is not.
    let output = common::command(&["serve", "--db", "/nonexistent/never-opened.redb"])
        .env(
            "INTERNET_MONITOR_LISTEN",
            std::os::unix::ffi::OsStrExt::from_bytes(b"\xff:5000".as_slice()) as &std::ffi::OsStr,
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the environment variable INTERNET_MONITOR_LISTEN is not UTF-8 text"),
        "{stderr}"
    );
    // A refusal after parsing (serve's start-up checks) names the variable too.
    let output = common::command(&["serve", "--db", "/nonexistent/never-opened.redb"])
        .env("INTERNET_MONITOR_RETENTION", "3m")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--retention 3m is shorter than a day")
            && stderr.contains(
                "note: --retention came from the environment variable INTERNET_MONITOR_RETENTION"
            ),
        "{stderr}"
    );
    // The value is not repeated: a URL's password stays out of the log.
    let output = common::command(&["serve", "--db", "/nonexistent/never-opened.redb"])
        .env(
            "INTERNET_MONITOR_REMOTE_WRITE_URL",
            "https://me:hunter2@prometheus.example/api/v1/write",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("must not hold credentials")
            && stderr.contains("--remote-write.url came from the environment variable INTERNET_MONITOR_REMOTE_WRITE_URL")
            && !stderr.contains("hunter2"),
        "{stderr}"
    );
    let stderr = refusal(
        &["--plan-download", "fast"],
        "INTERNET_MONITOR_PLAN_DOWNLOAD",
        "\"500 Mbit/s\"",
    );
    assert!(!stderr.contains("environment variable"), "{stderr}");
}

/// INTERNET_MONITOR_SPEEDTEST_ARG and its numbered twins reach the CLI, in order.
#[test]
fn several_speedtest_args_from_the_environment() {
    let env = Env::new();
    let output = common::with_fake("run-once", &env.db(), "ok-1.2-no-packet-loss", &[])
        .env("FAKE_SPEEDTEST_ARGS", env.path("args"))
        .env("INTERNET_MONITOR_SPEEDTEST_ARG", "--interface=eth1")
        .env(
            "INTERNET_MONITOR_SPEEDTEST_ARG_2",
            "--ca-certificate=/etc/my certs,a.pem",
        )
        .env("INTERNET_MONITOR_SPEEDTEST_ARG_1", "--ip=192.0.2.1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let args = std::fs::read_to_string(env.path("args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        args[args.len() - 3..],
        [
            "--interface=eth1",
            "--ip=192.0.2.1",
            "--ca-certificate=/etc/my certs,a.pem"
        ],
        "{args:?}"
    );
}

/// The README's command sections and their flag tables match `--help` (clap's definition):
/// every flag a table lists exists on that command with the default the table gives, and every
/// flag of a command is documented in its section (serve's may be anywhere in the README:
/// it takes the run-once flags, and the web and remote-write ones have their own sections).
#[test]
fn readme_command_tables_match_help() {
    use clap::CommandFactory;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let root = internet_monitor::cli::Cli::command();
    let sections: [(&str, &[&str]); 13] = [
        ("### `internet-monitor serve`", &["serve"]),
        ("### `internet-monitor run-once`", &["run-once"]),
        ("### `internet-monitor report", &["report"]),
        ("### `internet-monitor export", &["export"]),
        ("### `internet-monitor import", &["import"]),
        ("### `internet-monitor plan set`", &["plan", "set"]),
        ("### `internet-monitor plan set`", &["plan", "show"]),
        ("### `internet-monitor plan set`", &["plan", "history"]),
        ("### `internet-monitor plan set`", &["plan", "import"]),
        ("### `internet-monitor hash-password", &["hash-password"]),
        ("### `internet-monitor db check`", &["db", "check"]),
        ("### `internet-monitor db check`", &["db", "compact"]),
        (
            "### Measuring a path you own: `internet-monitor target`",
            &["target"],
        ),
    ];
    // Every command a user can run has a section: a new one without is caught here.
    fn leaves(command: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut subs = command
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
            .peekable();
        if subs.peek().is_none() {
            out.push(path);
            return;
        }
        for sub in subs {
            let mut path = path.clone();
            path.push(sub.get_name().to_owned());
            leaves(sub, path, out);
        }
    }
    let mut commands = Vec::new();
    leaves(&root, Vec::new(), &mut commands);
    for command in &commands {
        assert!(
            sections.iter().any(|(_, path)| path == command),
            "internet-monitor {} has no README section in this test's list",
            command.join(" ")
        );
    }
    let mut wrong = Vec::new();
    for (heading, path) in sections {
        let start = readme
            .find(heading)
            .unwrap_or_else(|| panic!("no section {heading}"));
        let body = &readme[start + heading.len()..];
        let end = body
            .find("\n## ")
            .into_iter()
            .chain(body.find("\n### "))
            .min()
            .unwrap_or(body.len());
        let body = &body[..end];
        let mut command = &root;
        for name in path {
            command = command.find_subcommand(name).unwrap();
        }
        let name = path.join(" ");
        // A table whose header names its command (`| flag (`plan set`) |`) lists that
        // command's flags only; the section's other commands are checked by their prose.
        let mut owner: Option<&str> = None;
        let rows = body.lines().filter(|line| {
            if line.starts_with("| flag") {
                owner = line
                    .split_once("(`")
                    .and_then(|(_, rest)| rest.split_once("`)"))
                    .map(|(command, _)| command);
            }
            line.starts_with("| `--") && owner.is_none_or(|owner| owner == name)
        });
        for row in rows {
            let cells: Vec<&str> = row.split(" | ").collect();
            let flags: Vec<&str> = cells[0]
                .split('`')
                .filter(|part| part.starts_with("--"))
                .map(|part| part.split([' ', '=']).next().unwrap())
                .collect();
            for flag in flags {
                let Some(arg) = command
                    .get_arguments()
                    .find(|arg| arg.get_long() == flag.strip_prefix("--"))
                else {
                    wrong.push(format!("{name}: the README lists {flag}, --help does not"));
                    continue;
                };
                let defaults: Vec<String> = arg
                    .get_default_values()
                    .iter()
                    .map(|value| value.to_string_lossy().into_owned())
                    .collect();
                let readme_default = cells.get(1).map(|cell| cell.trim()).unwrap_or_default();
                if let [default] = &defaults[..]
                    && readme_default.starts_with('`')
                    && !readme_default.starts_with(&format!("`{default}`"))
                {
                    wrong.push(format!(
                        "{name} {flag}: the README's default is {readme_default}, --help's {default}"
                    ));
                }
                // A switch is `off` by default; `off` (a feature left off) and `—` say the
                // flag has no default value.
                let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
                if switch && readme_default != "off" {
                    wrong.push(format!(
                        "{name} {flag}: a switch, but the README's default is {readme_default}"
                    ));
                }
                if !switch && matches!(readme_default, "off" | "—") && !defaults.is_empty() {
                    wrong.push(format!(
                        "{name} {flag}: the README says {readme_default}, --help's default is {}",
                        defaults.join(",")
                    ));
                }
            }
        }
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let flag = format!("--{long}");
            let documented = if name == "serve" {
                readme.contains(&flag)
            } else {
                body.contains(&flag)
            };
            if !documented {
                wrong.push(format!(
                    "{name}: --help has {flag}, its README section does not"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Contradicting serve settings stop it at start-up with exit 1, naming the flags, before it
/// creates the database; a stored plan above --max-bandwidth too.
#[test]
fn serve_refuses_contradicting_settings_at_start_up() {
    let env = Env::new();
    let db = env.db();
    let db = db.to_str().unwrap();
    for (args, expected) in [
        (
            &["--plan-download", "2gbps", "--max-bandwidth", "1Gbit/s"][..],
            "--plan-download 2000 Mbit/s is above --max-bandwidth 1000 Mbit/s",
        ),
        (
            &[
                "--retest-below",
                "0.5",
                "--retest-after",
                "1h",
                "--interval",
                "1h",
            ],
            "--retest-after 1h is not shorter than --interval 1h",
        ),
        (&["--retention", "3m"], "for 3 months write 90d"),
    ] {
        let output = env
            .command(&["serve", "--db", db, "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        assert!(!env.db().exists(), "{args:?} created the database");
    }
    let output = env
        .command(&[
            "plan",
            "set",
            "--db",
            db,
            "--download-advertised",
            "2Gbit/s",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = env
        .command(&["serve", "--db", db, "--listen", "127.0.0.1:0"])
        .args(["--max-bandwidth", "1Gbit/s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "the stored plan in force (download 2000 Mbit/s, from plan set) is above --max-bandwidth 1000 Mbit/s"
        ),
        "{}",
        stderr(&output)
    );
    // The retired INTERNET_MONITOR_FORMAT is refused by the commands that read it.
    let output = env
        .command(&["export", "--db", db])
        .env("INTERNET_MONITOR_FORMAT", "csv")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("use INTERNET_MONITOR_EXPORT_FORMAT for export"),
        "{}",
        stderr(&output)
    );
}

/// Every repeatable flag that has an environment twin can be given several values there: its
/// variable splits on a delimiter (`INTERNET_MONITOR_ALLOWED_HOSTS=a,b`) or comes numbered
/// (`INTERNET_MONITOR_SPEEDTEST_ARG_1`, `_2`, …, for values a delimiter could split wrongly).
#[test]
fn every_repeatable_flags_environment_twin_takes_several_values() {
    use clap::CommandFactory;
    let mut wrong = Vec::new();
    for (path, arg) in common::every_argument() {
        let repeatable = matches!(arg.get_action(), clap::ArgAction::Append);
        let Some(env) = arg.get_env().and_then(|env| env.to_str()) else {
            continue;
        };
        let numbered = internet_monitor::cli::NUMBERED_ENVIRONMENT
            .iter()
            .any(|(id, _, variable)| *id == arg.get_id().as_str() && *variable == env);
        if repeatable && arg.get_value_delimiter().is_none() && !numbered {
            wrong.push(format!(
                "internet-monitor {} --{}: repeatable, but {env} gives one value",
                path.join(" "),
                arg.get_long().unwrap_or_default()
            ));
        }
    }
    let root = internet_monitor::cli::Cli::command();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The walk sees the flags it is about.
    let serve = root.find_subcommand("serve").unwrap();
    let repeatable_with_twin = serve
        .get_arguments()
        .filter(|arg| {
            matches!(arg.get_action(), clap::ArgAction::Append) && arg.get_env().is_some()
        })
        .count();
    assert!(
        repeatable_with_twin >= 3,
        "serve's --speedtest-arg, --allowed-host and --probe-target: {repeatable_with_twin}"
    );
}

mod dependent_flags {
    //! A flag that only acts with another is refused without it, naming both, rather than
    //! silently doing nothing.

    use crate::common;
    #[test]
    fn retest_after_without_retest_below_is_refused_naming_both() {
        for (args, variable) in [
            (&["--retest-after", "10m"][..], None),
            (&["serve", "--retest-after=10m"][..], None),
            (&["serve"][..], Some("10m")),
        ] {
            let mut command = common::command(args);
            if let Some(value) = variable {
                command.env("INTERNET_MONITOR_RETEST_AFTER", value);
            }
            let output = command.output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains("--retest-after")
                    && stderr.contains("has no effect without --retest-below"),
                "{args:?}: {stderr}"
            );
            assert_eq!(
                stderr.contains("INTERNET_MONITOR_RETEST_AFTER"),
                variable.is_some(),
                "{stderr}"
            );
        }
    }
}

mod locked {
    //! A database another process holds (serve running): every command that writes to it says
    //! another internet-monitor process has it open and what to do; the readers still read it.

    use crate::common;
    use crate::common::{Env, Server};

    #[test]
    fn every_writer_says_who_holds_the_database_and_what_to_do() {
        let env = Env::new();
        let mut server =
            Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
        let db = env.db();
        let db = db.to_str().unwrap();
        let file = env.path("import.jsonl");
        std::fs::write(&file, "").unwrap();
        let writers: [&[&str]; 6] = [
            &["run-once", "--db", db],
            &["import", "--db", db, file.to_str().unwrap()],
            &["db", "check", "--db", db],
            &["db", "compact", "--db", db],
            &[
                "plan",
                "set",
                "--db",
                db,
                "--download-advertised",
                "100Mbit/s",
            ],
            &["serve", "--db", db, "--listen", "127.0.0.1:0"],
        ];
        for args in writers {
            let output = common::command(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains("another internet-monitor process has it open")
                    && stderr.contains("stop it, or wait for it to end"),
                "{args:?}: {stderr}"
            );
        }
        let readers: [&[&str]; 4] = [
            &["export", "--db", db],
            &["report", "--db", db],
            &["plan", "show", "--db", db],
            &["plan", "history", "--db", db],
        ];
        for args in readers {
            let output = common::command(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        }
        server.assert_clean_exit();
    }
}

mod speeds {
    //! Speeds and volumes given as people write them, and refused in their words.

    use internet_monitor::cli::Cli;

    /// Every flag taking a speed or a data volume: (the words naming the command, the flag).
    fn quantity_flags() -> Vec<(Vec<String>, String)> {
        crate::common::every_argument()
            .into_iter()
            .filter(|(_, arg)| {
                arg.get_value_names().is_some_and(|names| {
                    names
                        .iter()
                        .any(|name| ["RATE", "VOLUME", "SIZE"].contains(&name.as_str()))
                })
            })
            .filter_map(|(path, arg)| Some((path, format!("--{}", arg.get_long()?))))
            .collect()
    }

    #[test]
    fn a_negative_speed_or_volume_is_refused_naming_the_flag_in_either_form() {
        let flags = quantity_flags();
        assert!(flags.len() >= 15, "{flags:?}");
        for (path, flag) in flags {
            for (value, form) in [("-5mbps", false), ("-5mbps", true), ("-1.5GB", false)] {
                let mut args: Vec<String> = vec!["internet-monitor".into()];
                args.extend(path.iter().cloned());
                if form {
                    args.push(format!("{flag}={value}"));
                } else {
                    args.extend([flag.clone(), value.to_owned()]);
                }
                let err = Cli::try_parse_from_with_environment(
                    args.iter().map(Into::into),
                    Vec::<(std::ffi::OsString, std::ffi::OsString)>::new(),
                )
                .err()
                .unwrap_or_else(|| panic!("{args:?} was accepted"))
                .to_string();
                assert!(
                    err.contains(&format!("for '{flag} <")) && err.contains("are positive"),
                    "{args:?}: {err}"
                );
            }
        }
    }

    #[test]
    fn a_negative_duration_is_refused_naming_the_flag() {
        let err = Cli::try_parse_from_with_environment(
            ["internet-monitor", "--interval", "-5m"].map(Into::into),
            Vec::<(std::ffi::OsString, std::ffi::OsString)>::new(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("for '--interval <DURATION>'") && err.contains("must be positive"),
            "{err}"
        );
    }
}

#[test]
fn run_once_refuses_a_rust_log_it_cannot_read_before_testing() {
    let env = Env::new();
    let output = common::with_fake("run-once", &env.db(), "ok-1.2-with-loaded-latency", &[])
        .env("FAKE_SPEEDTEST_MODE", "replay")
        .env("RUST_LOG", "garbage[[[")
        .output()
        .unwrap();
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("RUST_LOG=\"garbage[[[\" is not a log filter")
            && stderr.contains("RUST_LOG=info,internet_monitor=debug"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no test was run");
    assert!(!env.db().exists(), "nothing stored");
}

/// A URL refused for holding credentials (or for anything else) is shown without them: the
/// message goes to journald, `docker logs`, CI logs.
#[test]
fn a_url_with_credentials_is_refused_without_echoing_them() {
    let env = Env::new();
    let db = env.db();
    let url = "http://user:s3cr3tpass@127.0.0.1:1/";
    let by_flag = env
        .command(&["run-once", "--db", db.to_str().unwrap(), "--engine", "http"])
        .args(["--http-server", url])
        .output()
        .unwrap();
    let by_variable = env
        .command(&["run-once", "--db", db.to_str().unwrap(), "--engine", "http"])
        .env("INTERNET_MONITOR_HTTP_SERVER", url)
        .output()
        .unwrap();
    let bad_port = env
        .command(&["run-once", "--db", db.to_str().unwrap(), "--engine", "http"])
        .args(["--http-server", "http://user:s3cr3tpass@127.0.0.1:99999/"])
        .output()
        .unwrap();
    for output in [by_flag, by_variable, bad_port] {
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{said}");
        assert!(
            !said.contains("s3cr3tpass") && !said.contains("user:"),
            "{said}"
        );
        assert!(said.contains("'http://…@127.0.0.1:"), "{said}");
    }
    assert!(!db.exists());
    // An imported sample whose engine url holds them is refused too (it would be exported,
    // served and shown in /metrics), without echoing them.
    let line = r#"{"time":"2026-11-10T10:00:00.000Z","outcome":"success","reason":null,"message":null,"trigger":"schedule","duration_seconds":20.0,"download_bytes_per_second":1e6,"upload_bytes_per_second":1e6,"ping_seconds":0.01,"jitter_seconds":null,"packet_loss_ratio":null,"download_latency_seconds":null,"upload_latency_seconds":null,"downloaded_bytes":null,"uploaded_bytes":null,"server":null,"isp":null,"result_url":null,"engine":{"name":"http","protocol":"cloudflare","url":"https://user:s3cr3tpass@speed.example","streams":4,"duration_seconds":10.0,"ramp_up_seconds":2.0}}"#;
    let file = env.path("secret.jsonl");
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let output = import(&env, &db, &file);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("engine url carries a user name or password"),
        "{said}"
    );
    assert!(!said.contains("s3cr3tpass"), "{said}");
    assert!(!db.exists());
}

/// A `--db` with blanks at its start or end (an env file's `INTERNET_MONITOR_DB=x.redb `)
/// would open a new, empty database beside the one meant: refused, naming the variable, and
/// nothing is created.
#[test]
fn a_db_path_with_blanks_at_its_ends_is_refused() {
    let env = Env::new();
    let db = env.db();
    let padded = format!("{} ", db.display());
    let by_flag = common::command(&["export", "--db", &padded])
        .output()
        .unwrap();
    let said = stderr(&by_flag);
    assert_eq!(by_flag.status.code(), Some(1), "{said}");
    assert!(said.contains("has blanks at its start or end"), "{said}");
    let by_twin = common::command(&["--listen", "127.0.0.1:0"])
        .env("INTERNET_MONITOR_DB", &padded)
        .output()
        .unwrap();
    let said = stderr(&by_twin);
    assert_eq!(by_twin.status.code(), Some(1), "{said}");
    assert!(
        said.contains("has blanks at its start or end") && said.contains("INTERNET_MONITOR_DB"),
        "{said}"
    );
    assert!(!std::path::Path::new(&padded).exists());
}

#[test]
fn every_refused_url_or_host_hides_its_credentials_and_secret_query_values() {
    let env = Env::new();
    let db = env.db();
    let db = db.to_str().unwrap();
    // `serve` (the default command) reads --probe-target and --allowed-host, run-once the
    // engine's flags.
    let run = |command: &[&str], args: &[&str], variable: Option<(&str, &str)>| {
        let mut command = env.command(command);
        command.args(["--db", db]).args(args);
        if let Some((key, value)) = variable {
            command.env(key, value);
        }
        command.output().unwrap()
    };
    let with_scheme = "http://user:s3cr3tpass@127.0.0.1:53";
    let without = "user:s3cr3tpass@127.0.0.1:1";
    let engine = ["run-once", "--engine", "http"];
    let outputs = [
        run(&[], &["--probe-target", with_scheme], None),
        run(
            &[],
            &[],
            Some(("INTERNET_MONITOR_PROBE_TARGET", with_scheme)),
        ),
        run(&[], &["--probe-target", without], None),
        // Escaped in the explanation's quotes.
        run(
            &[],
            &["--probe-target", "us\"er:s3cr3tpass@127.0.0.1:1"],
            None,
        ),
        run(&[], &["--allowed-host", without], None),
        run(&engine, &["--http-server", without], None),
        run(
            &engine,
            &[],
            Some(("INTERNET_MONITOR_HTTP_SERVER", without)),
        ),
    ];
    for output in &outputs {
        let said = stderr(output);
        assert_eq!(output.status.code(), Some(1), "{said}");
        assert!(
            !said.contains("s3cr3tpass") && !said.contains("user:"),
            "{said}"
        );
        assert!(said.contains("…@127.0.0.1:"), "{said}");
    }
    let output = run(
        &engine,
        &["--http-server", "http://127.0.0.1:1/?token=s3cr3tpass"],
        None,
    );
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(!said.contains("s3cr3tpass"), "{said}");
    assert!(said.contains("?token=REDACTED"), "{said}");
    assert!(!std::path::Path::new(db).exists());
}

#[test]
fn import_refuses_an_engine_url_with_a_query_and_a_result_url_with_credentials() {
    let env = Env::new();
    let db = env.db();
    let line = |result_url: &str, engine_url: &str| {
        format!(
            r#"{{"time":"2026-11-10T10:00:00.000Z","outcome":"success","reason":null,"message":null,"trigger":"schedule","duration_seconds":20.0,"download_bytes_per_second":1e6,"upload_bytes_per_second":1e6,"ping_seconds":0.01,"jitter_seconds":null,"packet_loss_ratio":null,"download_latency_seconds":null,"upload_latency_seconds":null,"downloaded_bytes":null,"uploaded_bytes":null,"server":null,"isp":null,"result_url":{result_url},"engine":{{"name":"http","protocol":"cloudflare","url":"{engine_url}","streams":4,"duration_seconds":10.0,"ramp_up_seconds":2.0}}}}"#
        )
    };
    for (text, refusal) in [
        (
            line("null", "http://127.0.0.1/?token=s3cr3tpass"),
            "engine url has a ?query or #fragment",
        ),
        (
            line(
                r#""https://user:s3cr3tpass@www.speedtest.net/result/c/1""#,
                "http://127.0.0.1",
            ),
            "result url carries a user name or password",
        ),
    ] {
        let file = env.path("secret.jsonl");
        std::fs::write(&file, format!("{text}\n")).unwrap();
        let output = import(&env, &db, &file);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{said}");
        assert!(said.contains(refusal), "{said}");
        assert!(said.contains("line 1"), "{said}");
        assert!(!said.contains("s3cr3tpass"), "{said}");
        assert!(!db.exists());
    }
}
