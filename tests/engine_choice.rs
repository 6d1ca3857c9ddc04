//! `--engine auto|ookla|http`: which engine measures, the one start-up line that says why,
//! the HTTP engine's flags refused with the flag named, and every sample naming its engine.

mod common;

use common::{Env, FAKE, NO_HTTP_SERVER, Server, command, serve_command};

#[test]
fn auto_takes_the_cli_when_it_is_an_executable() {
    let env = Env::new();
    let mut server = Server::start(serve_command(
        &env.db(),
        "ok-1.2-pretty",
        &["--start-delay", "1h"],
    ));
    let line = server.wait_for_log("measuring with the");
    assert!(
        line.contains(&format!(
            "measuring with the Ookla Speedtest CLI {FAKE} (--engine auto: --speedtest-bin {FAKE} is an executable)"
        )),
        "{line}"
    );
    server.assert_clean_exit();
}

#[test]
fn auto_falls_back_to_the_http_engine_and_says_why() {
    let env = Env::new();
    let db = env.db();
    let missing = env.path("no-speedtest-here");
    let mut server = Server::start(command(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--speedtest-bin",
        missing.to_str().unwrap(),
        "--start-delay",
        "1h",
    ]));
    let line = server.wait_for_log("measuring with the");
    assert!(
        line.contains(&format!(
            "measuring with the HTTP engine, the API it detects at {NO_HTTP_SERVER}, 4 streams, 10s per direction (--engine auto: no Ookla Speedtest CLI at --speedtest-bin {})",
            missing.display()
        )),
        "{line}"
    );
    server.assert_clean_exit();
}

#[test]
fn a_bare_name_is_looked_up_on_path_and_explicit_choices_are_said_so() {
    let env = Env::new();
    let db = env.db();
    let dir = std::path::Path::new(FAKE).parent().unwrap();
    let mut auto = command(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--speedtest-bin",
        "fake-speedtest",
        "--start-delay",
        "1h",
    ]);
    auto.env("PATH", dir);
    let mut server = Server::start(auto);
    let line = server.wait_for_log("measuring with the");
    assert!(
        line.contains(&format!(
            "measuring with the Ookla Speedtest CLI {FAKE} (--engine auto: --speedtest-bin fake-speedtest is an executable)"
        )),
        "{line}"
    );
    server.assert_clean_exit();

    let mut http = Server::start(command(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--speedtest-bin",
        FAKE,
        "--engine",
        "http",
        "--http-protocol",
        "librespeed",
        "--http-streams",
        "1",
        "--http-duration",
        "3s",
        "--start-delay",
        "1h",
    ]));
    let line = http.wait_for_log("measuring with the");
    assert!(
        line.contains(&format!(
            "measuring with the HTTP engine, librespeed API at {NO_HTTP_SERVER}, 1 stream, 3s per direction (--engine http)"
        )),
        "{line}"
    );
    http.assert_clean_exit();
}

/// Each bad value exits 1 before anything is opened, with the flag and the fix named.
#[test]
fn bad_http_flags_are_refused_with_the_flag_named() {
    let env = Env::new();
    let db = env.db();
    let cases: [(&[&str], &str); 10] = [
        (
            &["--http-server", "http://192.0.2.7:99999"],
            "invalid value 'http://192.0.2.7:99999' for '--http-server <URL>': the port must be a number from 1 to 65535",
        ),
        (
            &["--http-server", "http://192.0.2.7:0"],
            "the port must be a number from 1 to 65535",
        ),
        (
            &["--http-server", "ftp://example.net"],
            "invalid value 'ftp://example.net' for '--http-server <URL>': must start with http:// or https://, such as https://speed.cloudflare.com",
        ),
        (
            &["--http-server", "https://example.net/?x=1"],
            "must be a base URL without ?query or #fragment",
        ),
        (
            &["--http-server", "https://user:pw@example.net"],
            "must not carry a user name or password",
        ),
        (
            &["--http-server", "speed.cloudflare.com"],
            "invalid value 'speed.cloudflare.com' for '--http-server <URL>': must start with http:// or https://",
        ),
        (
            &["--http-streams", "0"],
            "invalid value '0' for '--http-streams <N>': must be a whole number from 1 to 64",
        ),
        (
            &["--http-streams", "65"],
            "must be a whole number from 1 to 64",
        ),
        (
            &["--http-duration", "500ms"],
            "invalid value '500ms' for '--http-duration <DURATION>': must be at least 1s",
        ),
        (
            &["--engine", "http", "--http-duration", "1m"],
            "--http-duration 1m needs --timeout 2m 20s or more (both directions and 20s to connect and probe latency), not 2m",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["run-once", "--db", db.to_str().unwrap()];
        args.extend_from_slice(flags);
        let output = command(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        assert!(!db.exists(), "{flags:?} created the database");
    }
    // The Ookla engine has no use for the HTTP engine's duration: no conflict to report.
    let output = command(&[
        "run-once",
        "--db",
        db.to_str().unwrap(),
        "--engine",
        "ookla",
        "--speedtest-bin",
        FAKE,
        "--http-duration",
        "1m",
    ])
    .env(
        "FAKE_SPEEDTEST_FIXTURE",
        format!("{}/ok-1.2-pretty", common::FIXTURES),
    )
    .output()
    .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Failures carry their engine too: a run the HTTP engine could not make says `http`, with
/// its parameters.
#[test]
fn a_failed_http_run_names_its_engine() {
    let env = Env::new();
    let db = env.db();
    let output = command(&[
        "run-once",
        "--db",
        db.to_str().unwrap(),
        "--engine",
        "http",
        "--http-protocol",
        "cloudflare",
        "--http-duration",
        "2s",
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let sample: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sample["reason"], "no_connectivity", "{sample}");
    assert_eq!(
        sample["engine"],
        serde_json::json!({
            "name": "http",
            "protocol": "cloudflare",
            "url": NO_HTTP_SERVER,
            "streams": 4,
            "duration_seconds": 2.0,
            "ramp_up_seconds": 0.4,
        })
    );
}

/// `--server-id` and `--speedtest-arg` are the Ookla CLI's: when the HTTP engine measures
/// (chosen, or `auto` finding no CLI), they are ignored, and both commands say so rather than
/// let a pinned Ookla server pass for the server measured.
#[test]
fn ookla_flags_the_http_engine_ignores_are_said_so() {
    let env = Env::new();
    let db = env.db();
    let missing = env.path("no-speedtest-here");
    let mut server = Server::start(command(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--speedtest-bin",
        missing.to_str().unwrap(),
        "--server-id",
        "12345",
        "--start-delay",
        "1h",
    ]));
    let line = server.wait_for_log("ignores");
    assert!(
        line.contains("WARN")
            && line.contains(
                "--server-id and --speedtest-arg are the Ookla CLI's: the HTTP engine ignores them"
            ),
        "{line}"
    );
    server.assert_clean_exit();

    let output = command(&[
        "run-once",
        "--db",
        db.to_str().unwrap(),
        "--engine",
        "http",
        "--speedtest-arg=--interface=eth1",
        "--http-duration",
        "1s",
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "internet-monitor: warning: --server-id and --speedtest-arg are the Ookla CLI's: the HTTP engine ignores them"
        ),
        "{stderr}"
    );
}

/// A `speedtest` that is the Python speedtest-cli (pip installs it under that name) refuses the
/// Ookla CLI's arguments: the stored failure says it is not Ookla's CLI and how to fix it.
#[test]
fn the_python_speedtest_cli_is_named_as_not_ooklas() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let script = env.path("speedtest");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         echo 'usage: speedtest [-h] [--no-download] [--no-upload] [--single] [--bytes]' >&2\n\
         echo \"speedtest: error: unrecognized arguments: $*\" >&2\n\
         exit 2\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = env.db();
    for engine in ["auto", "ookla"] {
        let output = command(&[
            "run-once",
            "--db",
            db.to_str().unwrap(),
            "--engine",
            engine,
            "--speedtest-bin",
            script.to_str().unwrap(),
        ])
        .output()
        .unwrap();
        assert_eq!(output.status.code(), Some(2), "{engine}");
        let sample: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("run-once prints the failure");
        let message = sample["message"].as_str().unwrap_or_default();
        assert!(
            sample["reason"] == "exit"
                && message.starts_with("not Ookla's Speedtest CLI")
                && message.contains("--engine http")
                && message.contains("unrecognized arguments: --format=json"),
            "{engine}: {sample}"
        );
    }
}
