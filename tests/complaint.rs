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

/// The lines of `text` that contain `needle`, for a failure message.
fn lines_with(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|line| line.contains(needle))
        .collect::<Vec<_>>()
        .join("\n")
}

/// [`report`] over [`WINDOW`] with `--rules RULES EXTRA…`, `TZ` set to Europe/Berlin.
fn in_berlin(env: &Env, rules: &str, extra: &[&str]) -> String {
    let args = [&WINDOW[..], &["--rules", rules], extra].concat();
    report(env, Some("Europe/Berlin"), &args)
}

/// [`report`] over [`WINDOW`] with `--rules RULES --format json`, `TZ` set to `tz`: the
/// parsed JSON.
fn rules_json(env: &Env, tz: &str, rules: &str) -> Value {
    let args = [&WINDOW[..], &["--rules", rules, "--format", "json"]].concat();
    serde_json::from_str(&report(env, Some(tz), &args)).expect("JSON report")
}

/// README: `--timezone` defaults to "the system's (`TZ`, else `/etc/localtime`)". A user in
/// Berlin who leaves it out gets Berlin's calendar days in `report`, in the pack and in
/// `serve`, not UTC's.
#[test]
fn without_timezone_the_system_zone_from_tz_is_used_by_report_pack_and_serve() {
    let env = Env::new();
    // 23:30 UTC on 1 November is 00:30 on 2 November in Berlin.
    env.import(&[measured("2026-11-01T23:30:00.000Z", 200.0, 40.0)]);

    let text = in_berlin(&env, "de-bnetza", &[]);
    assert!(
        text.contains("days in Europe/Berlin"),
        "the text report ignores TZ:\n{text}"
    );

    let json: Value = rules_json(&env, "Europe/Berlin", "de-bnetza");
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
    let json: Value = rules_json(&env, ":America/New_York", "us-fcc");
    assert_eq!(json["rules"]["time_zone"], "America/New_York");

    // An explicit --timezone still wins over TZ.
    let json: Value = serde_json::from_str(&in_berlin(
        &env,
        "de-bnetza",
        &["--timezone", "UTC", "--format", "json"],
    ))
    .expect("JSON report");
    assert_eq!(json["rules"]["time_zone"], "UTC");
    assert_eq!(json["rules"]["days"][0]["date"], "2026-11-01");

    let mut serve = env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]);
    serve.env("TZ", "Europe/Berlin");
    let mut server = Server::start(serve);
    let line = server.wait_for_log("rule sets count calendar days");
    assert!(line.contains("Europe/Berlin"), "serve ignores TZ: {line}");
    // … and says where the zone came from, not "(--timezone)", which was not given.
    assert!(line.contains("(the system's zone"), "{line}");
    let response = server
        .get("/api/v1/summary?from=2026-11-01T00:00:00Z&to=2026-11-10T00:00:00Z&rules=de-bnetza");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["rules"]["time_zone"], "Europe/Berlin");
    server.assert_clean_exit();
}

/// A de-bnetza campaign in Berlin's November (UTC+1): 10 measurements on each of 2, 4 and 6
/// November (five 10 minutes apart from 08:00 local, then five from 11:40), `down` Mbit/s
/// down and 38 up, plus an evening run at 20:30 local on each of those days.
fn campaign(down: f64) -> Vec<Value> {
    let mut runs = Vec::new();
    for day in ["02", "04", "06"] {
        for time in [
            "07:00", "07:10", "07:20", "07:30", "07:40", "10:40", "10:50", "11:00", "11:10",
            "11:20", "19:30",
        ] {
            runs.push(measured(
                &format!("2026-11-{day}T{time}:00.000Z"),
                down,
                38.0,
            ));
        }
    }
    runs
}

/// Stores a contract stating every speed a rule set asks for.
fn full_contract(env: &Env) {
    env.plan_set(&[
        "--download-max",
        "250Mbit/s",
        "--download-normal",
        "200Mbit/s",
        "--download-min",
        "100Mbit/s",
        "--upload-max",
        "40Mbit/s",
        "--upload-normal",
        "35Mbit/s",
        "--upload-min",
        "20Mbit/s",
        "--from",
        "2026-01-01T00:00:00Z",
    ]);
}

/// A new store holding [`campaign`] at 240 Mbit/s down under [`full_contract`].
fn campaign_under_full_contract() -> Env {
    let env = Env::new();
    env.import(&campaign(240.0));
    full_contract(&env);
    env
}

/// us-fcc and uk-ofcom require no number of measurements or days: the text report and the
/// pack said "Protocol: 33 of 0 measurements, 3 of 0 days, complete", where the page shows no
/// protocol at all. A rule set with a protocol (de-bnetza, at-rtr) keeps its line.
#[test]
fn a_rule_set_without_a_protocol_shows_no_protocol_line_of_zero_required() {
    let env = campaign_under_full_contract();
    for name in ["us-fcc", "uk-ofcom"] {
        for format in ["text", "html"] {
            let out = in_berlin(&env, name, &["--format", format]);
            assert!(
                !out.contains(" of 0 measurements") && !out.contains(" of 0 days"),
                "{name} {format}: a protocol of zero required:\n{}",
                lines_with(&out, "Protocol")
            );
            assert!(!out.contains("Protocol:"), "{name} {format}");
        }
    }
    for format in ["text", "html"] {
        let out = in_berlin(&env, "de-bnetza", &["--format", format]);
        assert!(
            out.contains("Protocol: 30 of 30 measurements, 3 of 3 days"),
            "de-bnetza {format}:\n{out}"
        );
        let out = in_berlin(&env, "at-rtr", &["--format", format]);
        assert!(
            out.contains("Protocol: 0 of 18 measurements, 0 of 3 days"),
            "at-rtr {format}"
        );
    }
}

/// A criterion the contract gives no value for is not assessable, and nothing was counted for
/// it: every rule set says "0 of 0". de-bnetza said "0 of 30 measurements" for the normally
/// available speed and "3 of 3 days" (kept!) for the minimum, in the JSON the page and the pack
/// show, beside "not assessable".
#[test]
fn a_criterion_without_its_contract_value_counts_nothing_in_every_rule_set() {
    let env = Env::new();
    env.import(&campaign(240.0));
    // Upload states only its maximum: its normally available and minimum speeds are missing.
    env.plan_set(&[
        "--download-max",
        "250Mbit/s",
        "--download-normal",
        "200Mbit/s",
        "--download-min",
        "100Mbit/s",
        "--upload-max",
        "40Mbit/s",
        "--from",
        "2026-01-01T00:00:00Z",
    ]);
    let mut missing = 0;
    for name in ["de-bnetza", "at-rtr", "us-fcc", "uk-ofcom"] {
        let json: Value = rules_json(&env, "Europe/Berlin", name);
        for criterion in json["rules"]["criteria"].as_array().expect("criteria") {
            let reason = criterion["reason"].as_str().unwrap_or_default();
            if criterion["status"] == "not_assessable" && reason.contains("contract states no") {
                missing += 1;
                assert_eq!(
                    (&criterion["count"], &criterion["of"]),
                    (&json!(0), &json!(0)),
                    "{name}: {criterion}"
                );
            }
        }
        let text = in_berlin(&env, name, &[]);
        for line in text.lines().filter(|l| l.contains("contract states no")) {
            assert!(line.contains(": 0 of 0 "), "{name}: {line}");
        }
    }
    // de-bnetza's and at-rtr's upload normally available and minimum speeds.
    assert_eq!(missing, 4);
}

/// The runs a verdict judged, in the page's words ("1 failed run (1 pointing at the line; never
/// counted as measurements)"), in the text report and in the pack alike: they said "1 failed
/// runs, 1 of them pointing at the line, are never measurements" and "1 failed runs (1 of them
/// pointing at the line) listed, never counted as measurements".
#[test]
fn the_runs_judged_read_the_same_in_the_report_the_pack_and_the_page() {
    let env = Env::new();
    let mut runs = campaign(240.0);
    runs.push(json!({
        "time": "2026-11-02T07:15:00.000Z", "outcome": "failure", "reason": "no_connectivity",
        "message": "down", "trigger": "schedule", "duration_seconds": 3.0,
        "download_bytes_per_second": null, "upload_bytes_per_second": null, "ping_seconds": null,
        "jitter_seconds": null, "packet_loss_ratio": null, "download_latency_seconds": null,
        "upload_latency_seconds": null, "downloaded_bytes": null, "uploaded_bytes": null,
        "server": null, "isp": null, "result_url": null, "engine": null
    }));
    env.import(&runs);
    full_contract(&env);
    let words =
        "33 successful runs; 1 failed run (1 pointing at the line; never counted as measurements)";
    for format in ["text", "html"] {
        let out = in_berlin(&env, "de-bnetza", &["--format", format]);
        assert!(
            out.contains(words),
            "{format}: {}",
            lines_with(&out, "Judged")
        );
        assert!(!out.contains("1 failed runs"), "{format}");
    }
    // The page builds the same words from the API's counts (assets/app.js, "Runs judged").
    let app = include_str!("../assets/app.js");
    assert!(
        app.contains("pointing at the line; never counted as measurements)"),
        "the page's words changed: change report and pack with them"
    );
}

/// The pack's measurement days are local dates and its table of every run gives local times,
/// but the days listed their measurements in UTC: a Berlin user looking for the day's first
/// measurement at 08:00 found "07:00:00.000Z". They are now in local time too.
#[test]
fn the_packs_measurement_days_list_local_times_as_its_runs_do() {
    let env = campaign_under_full_contract();
    let args = [
        &WINDOW[..],
        &[
            "--rules",
            "de-bnetza",
            "--timezone",
            "Europe/Berlin",
            "--format",
            "html",
        ],
    ]
    .concat();
    let html = report(&env, Some("UTC"), &args);
    let days = html
        .split("<h3>Measurement days</h3>")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("a table of measurement days");
    assert!(days.contains("Local time"), "{days}");
    // The first day, 2 November: 08:00 to 08:40, then 11:40 to 12:20 in Berlin.
    assert!(
        days.contains("08:00:00, 08:10:00, 08:20:00, 08:30:00, 08:40:00, 11:40:00"),
        "{days}"
    );
    assert!(!days.contains("07:00:00"), "{days}");
    // The runs table says the same time for the first run.
    assert!(html.contains("<td class=\"time\">2026-11-02 08:00:00</td>"));
}

/// `plan import -` named standard input "-" ("- must have exactly one of …"), where `import -`
/// says "standard input", and a JSON array showed serde's name for the program's own struct
/// ("expected struct ImportJson with 3 elements").
#[test]
fn plan_import_names_standard_input_and_the_shape_it_wants() {
    use std::io::Write as _;
    let env = Env::new();
    let db = env.db();
    for input in ["[]", "{}", "{\"versions\": 5}"] {
        let mut child = command(&["plan", "import", "--db", db.to_str().unwrap(), "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start plan import");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        let output = child.wait_with_output().expect("plan import");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{input}: {stderr}");
        assert!(stderr.contains("standard input"), "{input}: {stderr}");
        assert!(!stderr.contains("error: - "), "{input}: {stderr}");
        assert!(!stderr.contains("ImportJson"), "{input}: {stderr}");
        assert!(
            stderr.contains("plan history --format json"),
            "{input}: {stderr}"
        );
    }
}

/// The pack's criteria table gave the machine id (`speed_tests_reaching_80_percent`) a narrow
/// column of its own, which printed broken mid-word over three lines ("speed_tests_r /
/// eaching_80_pe / rcent") beside the requirement that says the same in words. The page shows
/// no id; the pack keeps it as a note under the requirement, where it has the width.
#[test]
fn the_packs_criteria_table_gives_the_requirement_the_width_and_the_id_as_a_note() {
    let env = campaign_under_full_contract();
    let html = in_berlin(&env, "us-fcc", &["--format", "html"]);
    assert!(
        html.contains("<h3>Criteria</h3>\n<table><thead><tr><th>Direction</th><th>Requirement</th><th class=\"n\">Count</th><th>Status</th></tr></thead>"),
        "{html}"
    );
    assert!(
        html.contains(
            "one per run)<br><span class=\"note mono\">latency_tests_within_100_ms</span></td>"
        ),
        "{html}"
    );
    // The measurement days' dates print on one line ("2026-11-" / "02" before).
    let html = in_berlin(&env, "de-bnetza", &["--format", "html"]);
    assert!(html.contains("td.date { white-space: nowrap; }"));
    assert!(
        html.contains("<tr><td class=\"date\">2026-11-02</td>"),
        "{html}"
    );
}

/// Step 4 prints the pack to PDF, and the PDF is what goes to the ISP; `report --verify
/// pack.pdf` said only "not an evidence pack … it may be damaged, or another program's file".
/// It now says to verify the HTML or JSON the PDF was printed from.
#[test]
fn verifying_a_printed_pdf_says_to_verify_the_html_it_was_printed_from() {
    let env = Env::new();
    env.import(&campaign(240.0));
    let pdf = env.path("pack.pdf");
    std::fs::write(
        &pdf,
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n",
    )
    .unwrap();
    let db = env.db();
    let output = command(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--verify",
        pdf.to_str().unwrap(),
    ])
    .output()
    .expect("run report --verify");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a PDF"), "{stderr}");
    assert!(
        stderr.contains("the HTML (or JSON) file it was printed from"),
        "{stderr}"
    );
}

/// The reason of a criterion without its contract value quoted the command in Markdown
/// backticks ("store it with `internet-monitor plan set --upload-min RATE`"), which the page
/// and the printed pack show as they are; every other message names a command plainly.
#[test]
fn reasons_name_the_command_without_markdown_backticks() {
    let env = Env::new();
    env.import(&campaign(240.0));
    for name in ["de-bnetza", "at-rtr", "us-fcc", "uk-ofcom"] {
        let json: Value = rules_json(&env, "Europe/Berlin", name);
        let verdict = &json["rules"];
        let mut reasons: Vec<&str> = verdict["criteria"]
            .as_array()
            .expect("criteria")
            .iter()
            .filter_map(|c| c["reason"].as_str())
            .collect();
        reasons.extend(verdict["reason"].as_str());
        assert!(!reasons.is_empty(), "{name}: no contract, yet no reason");
        for reason in reasons {
            assert!(!reason.contains('`'), "{name}: {reason}");
        }
    }
    // The contract stored only after the first measurement (de-bnetza's own reason).
    env.plan_set(&[
        "--download-max",
        "250Mbit/s",
        "--from",
        "2026-11-03T00:00:00Z",
    ]);
    let json: Value = rules_json(&env, "Europe/Berlin", "de-bnetza");
    let reason = json["rules"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("plan set --from TIME"), "{reason}");
    assert!(!reason.contains('`'), "{reason}");
}
