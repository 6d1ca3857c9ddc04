//! Serve's environment twins seen by the other commands: `docker compose exec internet-monitor
//! internet-monitor export` inherits every variable of serve's container, so none of them, set
//! empty or to a value serve would refuse, may stop `export`, `report`, `import`, `plan`, `db`,
//! `run-once` or `hash-password`; and a flag clap says conflicts, given by its twin, is named
//! by that variable.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use common::{Env, FAKE, FIXTURES, command};

/// The environment twins of the arguments `command` itself declares.
fn twins(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter_map(|arg| Some(arg.get_env()?.to_str()?.to_owned()))
        .collect()
}

/// Runs `args` with each of serve's twins that the command does not share set to `value`,
/// stdin `stdin`; its exit code and stderr.
fn run_with_serves_twins(args: &[&str], value: &str, stdin: &str) -> (Option<i32>, String) {
    let root = internet_monitor::cli::Cli::command();
    let mut sub = &root;
    for word in args {
        if let Some(found) = sub.find_subcommand(word) {
            sub = found;
        }
    }
    let own = twins(sub);
    let serves: Vec<String> = twins(&root)
        .into_iter()
        .filter(|env| !own.contains(env))
        .collect();
    assert!(serves.len() > 30, "{args:?}: {serves:?}");
    let mut command: Command = command(args);
    for env in &serves {
        command.env(env, value);
    }
    command
        .env(
            "FAKE_SPEEDTEST_FIXTURE",
            format!("{FIXTURES}/ok-1.2-pretty"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run internet-monitor");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait for internet-monitor");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serves_variables_stop_no_other_command() {
    let env = Env::new();
    let db = env.db();
    let db = db.to_str().unwrap();
    let file = env.path("samples.jsonl");
    std::fs::write(&file, "").unwrap();
    let file = file.to_str().unwrap();
    let commands: [(&[&str], &str); 7] = [
        (&["run-once", "--db", db, "--speedtest-bin", FAKE], ""),
        (&["export", "--db", db], ""),
        (&["report", "--db", db], ""),
        (&["import", "--db", db, file], ""),
        (&["plan", "history", "--db", db], ""),
        (&["db", "check", "--db", db], ""),
        (&["hash-password", "--cost", "4"], "a password\n"),
    ];
    // Empty (`KEY=` in an env file) and a value every parser of serve's refuses.
    for value in ["", " ", "\u{1}nonsense"] {
        for (args, stdin) in commands {
            let (code, stderr) = run_with_serves_twins(args, value, stdin);
            assert_eq!(
                code,
                Some(0),
                "{args:?} with serve's twins = {value:?}: {stderr}"
            );
        }
    }
}

#[test]
fn a_conflict_from_a_twin_names_the_variable() {
    let env = Env::new();
    let db = env.db();
    let db = db.to_str().unwrap();
    command(&["run-once", "--db", db, "--speedtest-bin", FAKE])
        .env(
            "FAKE_SPEEDTEST_FIXTURE",
            format!("{FIXTURES}/ok-1.2-pretty"),
        )
        .output()
        .expect("run run-once");
    for flag in ["--from", "--to"] {
        let output = command(&["report", "--db", db, flag, "1d"])
            .env("INTERNET_MONITOR_WINDOW", "7d")
            .output()
            .expect("run report");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(
                "--window comes from the environment variable INTERNET_MONITOR_WINDOW: unset it"
            ),
            "{flag}: {stderr}"
        );
    }
    // Given on the command line, the flag is the user's own: no tip.
    let output = command(&["report", "--db", db, "--window", "7d", "--from", "1d"])
        .env("INTERNET_MONITOR_WINDOW", "7d")
        .output()
        .expect("run report");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("environment variable"), "{stderr}");
}
