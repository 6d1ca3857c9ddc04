//! End to end: `/api/v1/summary?rules=NAME[&tz=ZONE]` on `serve`: the verdict's shape, the zone
//! it counts in (the request's, else serve's `--timezone`), the campaign key, the 400s, and the
//! summary itself unchanged by the verdict beside it. Served in this process, except where a
//! test reads the log or gives `TZ`.

mod common;

use common::in_process::InProcess;
use common::{Env, HttpResponse, Server};
use serde_json::{Value, json};

const RULE_SETS: [&str; 4] = ["de-bnetza", "at-rtr", "us-fcc", "uk-ofcom"];
/// The window of the imported runs (two days in November 2026).
const WINDOW: &str = "from=2026-11-01T00:00:00Z&to=2026-11-03T00:00:00Z";

fn sample(time: &str, download: f64) -> Value {
    json!({
        "time": time, "outcome": "success", "reason": null, "message": null, "trigger": "schedule",
        "duration_seconds": 20.5, "download_bytes_per_second": download,
        "upload_bytes_per_second": 2_000_000.0, "ping_seconds": 0.0125, "jitter_seconds": 0.0005,
        "packet_loss_ratio": 0.0, "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": 1000, "uploaded_bytes": 500, "server": null, "isp": null,
        "result_url": null, "engine": null
    })
}

fn failure(time: &str) -> Value {
    json!({
        "time": time, "outcome": "failure", "reason": "no_connectivity", "message": "down",
        "trigger": "schedule", "duration_seconds": 3.0, "download_bytes_per_second": null,
        "upload_bytes_per_second": null, "ping_seconds": null, "jitter_seconds": null,
        "packet_loss_ratio": null, "download_latency_seconds": null,
        "upload_latency_seconds": null, "downloaded_bytes": null, "uploaded_bytes": null,
        "server": null, "isp": null, "result_url": null, "engine": null
    })
}

/// `serve` over a few runs in [`WINDOW`], with `--timezone Pacific/Auckland` and a plan, that
/// does not test during the test.
fn serve_window(env: &Env) -> std::process::Command {
    env.import(&[
        sample("2026-11-01T08:00:00.000Z", 12_000_000.0),
        failure("2026-11-01T09:00:00.000Z"),
        sample("2026-11-01T20:30:00.000Z", 9_000_000.0),
        sample("2026-11-02T21:00:00.000Z", 11_000_000.0),
    ]);
    env.serve(
        "ok-1.2-pretty",
        "replay",
        &[
            "--start-delay",
            "1h",
            "--timezone",
            "Pacific/Auckland",
            "--plan-download",
            "100Mbit/s",
        ],
    )
}

/// [`serve_window`] as a process, whose log a test reads.
fn server(env: &Env) -> Server {
    Server::start(serve_window(env))
}

/// [`serve_window`] in this process.
fn served(env: &Env) -> InProcess {
    InProcess::start(serve_window(env))
}

/// The `{"error": …}` of a 400 to `get(path)`.
fn refused(get: impl Fn(&str) -> HttpResponse, path: &str) -> String {
    let response = get(path);
    assert_eq!(response.status, 400, "{path}: {}", response.body);
    let body = response.json();
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: no error text: {body}"))
        .to_owned()
}

/// Without `--timezone` the zone is the system's: `TZ` as a name or a zoneinfo path (with or
/// without POSIX's `:`), in serve's start-up line, its verdicts and report's; a `TZ` that names
/// no zone (`/dev/zero`, never read) is UTC.
#[test]
fn without_timezone_the_zone_is_the_one_tz_names() {
    let env = Env::new();
    env.import(&[sample("2026-11-01T08:00:00.000Z", 12_000_000.0)]);
    for (tz, zone) in [
        ("Asia/Tokyo", "Asia/Tokyo"),
        (":Asia/Tokyo", "Asia/Tokyo"),
        (":/usr/share/zoneinfo/America/New_York", "America/New_York"),
        ("/dev/zero", "UTC"),
    ] {
        let args = [
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-02T00:00:00Z",
            "--rules",
            "de-bnetza",
            "--format",
            "json",
        ];
        let json = report_json(&env, Some(tz), &args, &format!("TZ={tz}"));
        assert_eq!(json["rules"]["time_zone"], zone, "TZ={tz}");
        assert_eq!(json["pack"]["time_zone"], zone, "TZ={tz}");
    }
    let mut serve = env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]);
    serve.env("TZ", "Asia/Tokyo");
    let mut server = Server::start(serve);
    let line = server.wait_for_log("rule sets count calendar days");
    assert!(line.contains("Asia/Tokyo"), "{line}");
    let body = server
        .get("/api/v1/summary?rules=de-bnetza&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z")
        .json();
    assert_eq!(body["rules"]["time_zone"], "Asia/Tokyo", "{body}");
}

#[test]
fn serve_logs_its_zone_and_the_verdict_counts_in_it_unless_the_request_names_another() {
    let env = Env::new();
    let mut server = server(&env);
    let line = server.wait_for_log("(--timezone)");
    assert!(line.contains("Pacific/Auckland"), "{line}");

    let keys = [
        "rules",
        "title",
        "time_zone",
        "outcome",
        "reason",
        "criteria",
        "progress",
        "days",
        "successful_runs",
        "failed_runs",
        "label",
        "unverified",
        "sources",
        "campaign",
    ];
    for name in RULE_SETS {
        for (tz, zone) in [
            ("", "Pacific/Auckland"),
            ("&tz=America/New_York", "America/New_York"),
            ("&tz=UTC", "UTC"),
        ] {
            let path = format!("/api/v1/summary?{WINDOW}&rules={name}{tz}");
            let response = server.get(&path);
            assert_eq!(response.status, 200, "{path}: {}", response.body);
            let body = response.json();
            let verdict = &body["rules"];
            let object = verdict
                .as_object()
                .unwrap_or_else(|| panic!("{path}: no rules object: {body}"));
            for key in keys {
                assert!(object.contains_key(key), "{path}: no {key:?} in {verdict}");
            }
            assert_eq!(verdict["rules"], name, "{path}");
            assert_eq!(verdict["time_zone"], zone, "{path}");
            assert!(
                ["met", "not_met", "not_assessable", "no_verdict"]
                    .contains(&verdict["outcome"].as_str().unwrap_or_default()),
                "{path}: outcome {}",
                verdict["outcome"]
            );
            for list in ["criteria", "days", "unverified", "sources"] {
                assert!(
                    verdict[list].is_array(),
                    "{path}: {list} is {}",
                    verdict[list]
                );
            }
            for criterion in verdict["criteria"].as_array().into_iter().flatten() {
                for key in ["id", "requirement", "status", "count", "of", "unit"] {
                    assert!(!criterion[key].is_null(), "{path}: {key} in {criterion}");
                }
            }
            // No campaign was run: the verdict judged every run in the window.
            assert_eq!(verdict["campaign"], Value::Null, "{path}");
        }
    }
    server.assert_clean_exit();
}

#[test]
fn the_summary_beside_a_verdict_is_byte_for_byte_the_summary_without_one() {
    let env = Env::new();
    let server = served(&env);
    for window in [WINDOW, "window=30d", ""] {
        let plain = server.get(&format!("/api/v1/summary?{window}"));
        assert_eq!(plain.status, 200, "{}", plain.body);
        assert!(plain.json().get("rules").is_none(), "{}", plain.body);
        let judged = server.get(&format!("/api/v1/summary?{window}&rules=de-bnetza"));
        assert_eq!(judged.status, 200, "{}", judged.body);
        if window == WINDOW {
            // A fixed window: the summary fields come first, unchanged, then "rules".
            let open = plain.body.trim_end().strip_suffix('}').expect("an object");
            assert!(
                judged.body.starts_with(&format!("{open},\"rules\":{{")),
                "plain {}\njudged {}",
                plain.body,
                judged.body
            );
            assert_eq!(plain.json()["runs"]["total"], 4, "{}", plain.body);
        }
        let mut without = judged.json();
        without.as_object_mut().expect("an object").remove("rules");
        let mut plain = plain.json();
        // A window before now moves with the clock between the two requests.
        for body in [&mut without, &mut plain] {
            if window != WINDOW {
                body.as_object_mut().expect("an object").remove("window");
            }
        }
        assert_eq!(without, plain, "{window}");
    }
}

#[test]
fn bad_rules_zones_and_windows_are_400_naming_the_parameter() {
    let env = Env::new();
    let server = served(&env);
    let unknown = refused(
        |path| server.get(path),
        &format!("/api/v1/summary?{WINDOW}&rules=fr-arcep"),
    );
    assert!(unknown.starts_with("invalid rules: "), "{unknown}");
    assert!(unknown.contains("fr-arcep"), "{unknown}");
    for name in RULE_SETS {
        assert!(unknown.contains(name), "the names are listed: {unknown}");
    }
    let empty = refused(|path| server.get(path), "/api/v1/summary?rules=");
    assert!(empty.starts_with("invalid rules: "), "{empty}");

    let zone = refused(
        |path| server.get(path),
        "/api/v1/summary?rules=us-fcc&tz=Mars/Olympus_Mons",
    );
    assert!(zone.starts_with("invalid tz: "), "{zone}");
    let path = refused(
        |path| server.get(path),
        "/api/v1/summary?rules=us-fcc&tz=../../etc/passwd",
    );
    assert!(path.starts_with("invalid tz: "), "{path}");
    let alone = refused(|path| server.get(path), "/api/v1/summary?tz=Europe/Berlin");
    assert!(
        alone.starts_with("invalid tz: ") && alone.contains("rules"),
        "{alone}"
    );

    for long in [
        "window=367d",
        "from=2025-01-01T00:00:00Z&to=2026-11-03T00:00:00Z",
        "from=2025-11-01T00:00:00Z&to=2026-11-02T00:00:00.001Z",
    ] {
        let message = refused(
            |path| server.get(path),
            &format!("/api/v1/summary?{long}&rules=at-rtr"),
        );
        assert!(
            message.starts_with("invalid window: with rules")
                && message.contains("window, or from and to")
                && message.contains("366 days"),
            "{long}: {message}"
        );
        // Without rules the same window is a summary.
        assert_eq!(server.get(&format!("/api/v1/summary?{long}")).status, 200);
    }
    for fine in [
        "window=366d",
        "from=2025-11-01T00:00:00Z&to=2026-11-02T00:00:00Z",
    ] {
        let response = server.get(&format!("/api/v1/summary?{fine}&rules=at-rtr"));
        assert_eq!(response.status, 200, "{fine}: {}", response.body);
    }
    let twice = refused(
        |path| server.get(path),
        "/api/v1/summary?rules=at-rtr&rules=us-fcc",
    );
    assert!(twice.contains("\"rules\""), "{twice}");
}

/// A success measuring `down`/`up` Mbit/s.
fn measured(time: &str, down: f64, up: f64) -> Value {
    let mut line = sample(time, down * 125_000.0);
    line["upload_bytes_per_second"] = json!(up * 125_000.0);
    line
}

/// A de-bnetza protocol in Europe/Berlin (UTC+1 in November): 10 runs on each of 2, 4 and 6
/// November 2026, five from 08:00 local 10 min apart, five from 12:00; all at 95/19 Mbit/s
/// except one run at `low` Mbit/s down on each date in `low_on`.
fn protocol(low_on: &[&str], low: f64) -> Vec<Value> {
    let mut lines = Vec::new();
    for date in ["2026-11-02", "2026-11-04", "2026-11-06"] {
        for (n, utc) in [
            "07:00", "07:10", "07:20", "07:30", "07:40", "11:00", "11:10", "11:20", "11:30",
            "11:40",
        ]
        .iter()
        .enumerate()
        {
            let down = if n == 3 && low_on.contains(&date) {
                low
            } else {
                95.0
            };
            lines.push(measured(&format!("{date}T{utc}:00.000Z"), down, 19.0));
        }
    }
    lines
}

/// The contract judged: download 100/80/50 Mbit/s (maximum, normally available, minimum),
/// upload 20/16/10, from October on.
fn set_contract(env: &Env) {
    env.plan_set(&[
        "--download-max",
        "100Mbit/s",
        "--download-normal",
        "80Mbit/s",
        "--download-min",
        "50Mbit/s",
        "--upload-max",
        "20Mbit/s",
        "--upload-normal",
        "16Mbit/s",
        "--upload-min",
        "10Mbit/s",
        "--from",
        "2026-10-01T00:00:00Z",
    ]);
}

/// `report --rules de-bnetza --format json` over the protocol's week, in Berlin.
fn report_verdict(env: &Env) -> Value {
    week_pack(env, Some("de-bnetza"))["rules"].clone()
}

/// `report --format json` over the protocol's week, in Berlin, with `--rules RULES` when
/// given: the whole pack.
fn week_pack(env: &Env, rules: Option<&str>) -> Value {
    let mut args = vec![
        "--timezone",
        "Europe/Berlin",
        "--from",
        "2026-11-01T00:00:00Z",
        "--to",
        "2026-11-08T00:00:00Z",
        "--format",
        "json",
    ];
    args.extend(rules.map(|r| ["--rules", r]).into_iter().flatten());
    report_json(env, None, &args, &format!("{rules:?}"))
}

/// `report --db DB ARGS…`, with `TZ` set to `tz` when given: its JSON, after asserting exit
/// 0 (`what` names the case in the message).
fn report_json(env: &Env, tz: Option<&str>, args: &[&str], what: &str) -> Value {
    let db = env.db();
    let mut all = vec!["report", "--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut report = common::command(&all);
    if let Some(tz) = tz {
        report.env("TZ", tz);
    }
    let output = report.output().expect("run report");
    assert_eq!(output.status.code(), Some(0), "{what}: {output:?}");
    serde_json::from_slice(&output.stdout).expect("JSON report")
}

fn status_of<'a>(verdict: &'a Value, id: &str, direction: &str) -> &'a Value {
    let criterion = verdict["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"].as_str().is_some_and(|i| i.contains(id)) && c["direction"] == direction)
        .unwrap_or_else(|| panic!("no {id} {direction} criterion in {verdict}"));
    &criterion["status"]
}

/// The same runs and contract give the same de-bnetza verdict through the report, the
/// evidence pack's JSON and the HTTP API: met, then not met when the minimum is undercut on
/// two of the three days (and only that criterion).
#[test]
fn report_and_api_give_the_same_hand_checked_de_bnetza_verdict() {
    for (low_on, outcome, minimum) in [
        (&[][..], "met", "met"),
        (&["2026-11-02", "2026-11-04"][..], "not_met", "not_met"),
        // Undercut on one day only: no deviation.
        (&["2026-11-06"][..], "met", "met"),
    ] {
        let env = Env::new();
        env.import(&protocol(low_on, 40.0));
        set_contract(&env);
        let reported = report_verdict(&env);
        assert_eq!(reported["outcome"], outcome, "{low_on:?}: {reported}");
        assert_eq!(
            status_of(&reported, "minimum", "download"),
            minimum,
            "{low_on:?}"
        );
        assert_eq!(
            status_of(&reported, "maximum", "download"),
            "met",
            "{low_on:?}"
        );
        assert_eq!(
            status_of(&reported, "normal", "download"),
            "met",
            "{low_on:?}"
        );
        assert_eq!(reported["progress"]["measurements"], 30);
        assert_eq!(reported["progress"]["complete"], true);
        let dates: Vec<&str> = reported["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["date"].as_str().unwrap())
            .collect();
        assert_eq!(dates, ["2026-11-02", "2026-11-04", "2026-11-06"]);

        let server =
            InProcess::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
        let response = server.get(
            "/api/v1/summary?from=2026-11-01T00:00:00Z&to=2026-11-08T00:00:00Z&rules=de-bnetza&tz=Europe/Berlin",
        );
        assert_eq!(response.status, 200, "{}", response.body);
        let mut served = response.json()["rules"].clone();
        assert_eq!(served["campaign"], Value::Null);
        served.as_object_mut().unwrap().remove("campaign");
        assert_eq!(
            served, reported,
            "{low_on:?}: the API and the report disagree"
        );
    }
}

/// The pack's peak hours are the rule set's own window (us-fcc 18–24, uk-ofcom 20–22 local),
/// else the default evening peak.
#[test]
fn the_packs_peak_hours_follow_the_rule_set() {
    let env = Env::new();
    env.import(&protocol(&[], 40.0));
    for (rules, start, end, source) in [
        (Some("us-fcc"), 18, 24, "rule set"),
        (Some("uk-ofcom"), 20, 22, "rule set"),
        (Some("de-bnetza"), 20, 22, "default"),
        (None, 20, 22, "default"),
    ] {
        let pack = week_pack(&env, rules);
        let peak = &pack["peak_hours"];
        assert_eq!(
            (&peak["start_hour"], &peak["end_hour"], &peak["source"]),
            (&json!(start), &json!(end), &json!(source)),
            "{rules:?}"
        );
    }
}

/// A `TZ` that names no zone (a typo, a POSIX rule) is counted in as UTC, and said: report
/// warns on stderr, serve's log at WARN, each naming TZ and --timezone.
#[test]
fn a_tz_that_names_no_zone_is_said_to_be_read_as_utc() {
    let env = Env::new();
    env.import(&[sample("2026-11-01T08:00:00.000Z", 12_000_000.0)]);
    let db = env.db();
    let args = [
        "report",
        "--db",
        db.to_str().unwrap(),
        "--from",
        "2026-11-01T00:00:00Z",
        "--to",
        "2026-11-02T00:00:00Z",
        "--rules",
        "de-bnetza",
        "--format",
        "json",
    ];
    let expected = "TZ=\"Europe/Berlim\" names no IANA time zone";
    let output = common::command(&args)
        .env("TZ", "Europe/Berlim")
        .output()
        .expect("run report");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(expected) && stderr.contains("--timezone ZONE"),
        "{stderr}"
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["rules"]["time_zone"], "UTC");

    let mut serve = env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]);
    serve.env("TZ", "Europe/Berlim");
    let mut server = Server::start(serve);
    let line = server.wait_for_log(expected);
    assert!(
        line.contains("WARN") && line.contains("--timezone ZONE"),
        "{line}"
    );
}
