//! End to end, as a user preparing a complaint meets it: the zone a verdict counts in when no
//! `--timezone` is given (the system's, as README says), and the same words for a verdict in
//! the text report, the evidence pack and the page's API.

mod common;

use common::{Env, Server, command};
use serde_json::{Value, json};

/// A successful run at `time` (RFC 3339) with these rates in Mbit/s.
fn measured(time: &str, down_mbit: f64, up_mbit: f64) -> Value {
    json!({
        "time": time, "outcome": "success", "reason": null, "message": null, "trigger": "schedule",
        "duration_seconds": 20.0, "download_bytes_per_second": down_mbit * 125_000.0,
        "upload_bytes_per_second": up_mbit * 125_000.0, "ping_seconds": 0.015,
        "jitter_seconds": 0.001, "packet_loss_ratio": 0.0, "download_latency_seconds": null,
        "upload_latency_seconds": null, "downloaded_bytes": 1000, "uploaded_bytes": 500,
        "server": null, "isp": null, "result_url": null, "engine": null
    })
}

/// `report ARGS --db DB`, run with the environment variable `TZ` set to `tz` (or removed);
/// its stdout, after asserting exit 0.
fn report(env: &Env, tz: Option<&str>, args: &[&str]) -> String {
    let db = env.db();
    let mut all = vec!["report", "--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut report = command(&all);
    match tz {
        Some(tz) => report.env("TZ", tz),
        None => report.env_remove("TZ"),
    };
    let output = report.output().expect("run report");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).expect("UTF-8 report")
}

const WINDOW: [&str; 4] = [
    "--from",
    "2026-11-01T00:00:00Z",
    "--to",
    "2026-11-10T00:00:00Z",
];

/// README: `--timezone` defaults to "the system's (`TZ`, else `/etc/localtime`)". A user in
/// Berlin who leaves it out gets Berlin's calendar days in `report`, in the pack and in
/// `serve`, not UTC's.
#[test]
fn without_timezone_the_system_zone_from_tz_is_used_by_report_pack_and_serve() {
    let env = Env::new();
    // 23:30 UTC on 1 November is 00:30 on 2 November in Berlin.
    env.import(&[measured("2026-11-01T23:30:00.000Z", 200.0, 40.0)]);

    let text = report(
        &env,
        Some("Europe/Berlin"),
        &[&WINDOW[..], &["--rules", "de-bnetza"]].concat(),
    );
    assert!(
        text.contains("days in Europe/Berlin"),
        "the text report ignores TZ:\n{text}"
    );

    let json: Value = serde_json::from_str(&report(
        &env,
        Some("Europe/Berlin"),
        &[&WINDOW[..], &["--rules", "de-bnetza", "--format", "json"]].concat(),
    ))
    .expect("JSON report");
    assert_eq!(
        json["pack"]["time_zone"], "Europe/Berlin",
        "{}",
        json["pack"]
    );
    assert_eq!(json["rules"]["time_zone"], "Europe/Berlin");
    assert_eq!(
        json["rules"]["days"][0]["date"], "2026-11-02",
        "{}",
        json["rules"]["days"]
    );

    // `TZ` with a leading colon (POSIX: "implementation-defined", glibc: a zone file name).
    let json: Value = serde_json::from_str(&report(
        &env,
        Some(":America/New_York"),
        &[&WINDOW[..], &["--rules", "us-fcc", "--format", "json"]].concat(),
    ))
    .expect("JSON report");
    assert_eq!(json["rules"]["time_zone"], "America/New_York");

    // An explicit --timezone still wins over TZ.
    let json: Value = serde_json::from_str(&report(
        &env,
        Some("Europe/Berlin"),
        &[
            &WINDOW[..],
            &[
                "--rules",
                "de-bnetza",
                "--timezone",
                "UTC",
                "--format",
                "json",
            ],
        ]
        .concat(),
    ))
    .expect("JSON report");
    assert_eq!(json["rules"]["time_zone"], "UTC");
    assert_eq!(json["rules"]["days"][0]["date"], "2026-11-01");

    let mut serve = env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]);
    serve.env("TZ", "Europe/Berlin");
    let mut server = Server::start(serve);
    let line = server.wait_for_log("(--timezone)");
    assert!(line.contains("Europe/Berlin"), "serve ignores TZ: {line}");
    let response = server
        .get("/api/v1/summary?from=2026-11-01T00:00:00Z&to=2026-11-10T00:00:00Z&rules=de-bnetza");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["rules"]["time_zone"], "Europe/Berlin");
    server.assert_clean_exit();
}
