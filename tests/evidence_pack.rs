//! The evidence pack through the real binary: `report --format html|json` on an imported
//! store, self-contained and escaped; its SHA-256 is that of the bytes `export` writes for the
//! same window, `report --verify` agrees until a run is added; `--rules` and `--from/--to`
//! errors; and (needing chromium and pdftotext) the pack printed to PDF still says it all.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Env, command};
use serde_json::{Value, json};

/// The window every test reports on: 2026-11-02 to 2026-11-05 (UTC).
const FROM: &str = "2026-11-02T00:00:00.000Z";
const TO: &str = "2026-11-05T00:00:00.000Z";

/// What a hostile server or CLI could put into stored text.
const HOSTILE_NAME: &str = "Evil <script>alert(1)</script> \"Net\" & 'Co'";
const HOSTILE_MESSAGE: &str = "<img src=https://evil.example/x.png> timed out";

fn base(time: &str) -> Value {
    json!({
        "time": time, "trigger": "schedule", "jitter_seconds": null, "packet_loss_ratio": null,
        "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": null, "uploaded_bytes": null, "engine": {"name": "ookla"}
    })
}

/// A success measuring `download_mbit` down and 20 Mbit/s up, against a server with a
/// hostile name.
fn success(time: &str, download_mbit: f64, id: u32) -> Value {
    let mut sample = base(time);
    let fields = json!({
        "outcome": "success", "reason": null, "message": null, "duration_seconds": 20.0,
        "download_bytes_per_second": download_mbit * 125_000.0,
        "upload_bytes_per_second": 2_500_000.0, "ping_seconds": 0.012,
        "server": {"id": 4242, "name": HOSTILE_NAME, "location": "Köln", "country": "Germany",
                   "host": "speed.example.net:8080"},
        "isp": "Example & Sons ISP",
        "result_url": format!("https://www.speedtest.net/result/c/0000{id:04}-aaaa-bbbb-cccc-dddddddddddd")
    });
    merge(&mut sample, fields);
    sample
}

fn failure(time: &str, reason: &str) -> Value {
    let mut sample = base(time);
    let fields = json!({
        "outcome": "failure", "reason": reason, "message": HOSTILE_MESSAGE,
        "duration_seconds": null, "download_bytes_per_second": null,
        "upload_bytes_per_second": null, "ping_seconds": null, "server": null, "isp": null,
        "result_url": null
    });
    merge(&mut sample, fields);
    sample
}

fn merge(into: &mut Value, fields: Value) {
    if let (Some(into), Value::Object(fields)) = (into.as_object_mut(), fields) {
        into.extend(fields);
    }
}

/// Six runs in the window (two in the 20–22 h peak, UTC), a network failure and a local one,
/// plus one run before and one after the window; and a plan.
fn store(env: &Env) {
    env.import(&[
        success("2026-11-01T12:00:00.000Z", 50.0, 1),
        success("2026-11-02T10:00:00.000Z", 95.0, 2),
        success("2026-11-02T20:30:00.000Z", 60.0, 3),
        failure("2026-11-03T09:00:00.000Z", "timeout"),
        success("2026-11-03T20:00:00.000Z", 70.0, 4),
        failure("2026-11-04T08:00:00.000Z", "spawn"),
        success("2026-11-04T12:00:00.000Z", 99.0, 5),
        success("2026-11-06T12:00:00.000Z", 99.0, 6),
    ]);
    env.plan_set(&[
        "--download-max",
        "100Mbit/s",
        "--download-min",
        "50Mbit/s",
        "--upload-max",
        "20Mbit/s",
        "--from",
        "2026-01-01T00:00:00Z",
    ]);
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `report --db DB ARGS…`.
fn report(db: &Path, args: &[&str]) -> Output {
    let mut all = vec!["report", "--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    command(&all).output().expect("run report")
}

/// `report --db DB --from FROM --to TO --format FORMAT --output OUTPUT EXTRA…`: the test
/// window written into `output`.
fn report_into(db: &Path, format: &str, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--from",
        FROM,
        "--to",
        TO,
        "--format",
        format,
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    report(db, &args)
}

/// `report --format FORMAT` over the test window with de-bnetza, in UTC, into `file`.
fn pack(env: &Env, format: &str, file: &str) -> std::path::PathBuf {
    let path = env.path(file);
    let output = report_into(
        &env.db(),
        format,
        &path,
        &["--rules", "de-bnetza", "--timezone", "UTC"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "--output leaves stdout empty");
    path
}

/// SHA-256 of `bytes`, lowercase hex.
fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes `export --format jsonl --from FROM --to TO` writes.
fn exported(db: &Path) -> Vec<u8> {
    let output = command(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "jsonl",
        "--from",
        FROM,
        "--to",
        TO,
    ])
    .output()
    .expect("run export");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    output.stdout
}

fn verify(db: &Path, file: &Path) -> Output {
    report(db, &["--verify", file.to_str().unwrap()])
}

/// What in `html` would load something or run something: a tag with a `src`, `href`,
/// `srcset`, `action` or `data` attribute, a script, link, iframe, object, embed, base or
/// meta refresh tag, or a CSS `url(`/`@import`. Text is escaped (`&lt;`), so every `<` starts
/// a tag.
fn references(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    for piece in lower.split('<').skip(1) {
        let tag = piece.split('>').next().unwrap_or_default();
        let name = tag.split([' ', '\n', '/']).next().unwrap_or_default();
        let loads = [
            " src=",
            " href=",
            " srcset=",
            " action=",
            " data=",
            "xlink:href",
        ]
        .iter()
        .any(|attribute| tag.contains(attribute));
        let kind = [
            "script", "link", "iframe", "object", "embed", "base", "frame",
        ]
        .contains(&name)
            || (name == "meta" && tag.contains("refresh"));
        if loads || kind {
            found.push(format!("<{tag}>"));
        }
    }
    for needle in ["url(", "@import"] {
        if lower.contains(needle) {
            found.push(needle.to_owned());
        }
    }
    found
}

#[test]
fn the_html_pack_is_self_contained_escaped_and_verifies_until_a_run_is_added() {
    let env = Env::new();
    store(&env);
    let file = pack(&env, "html", "pack.html");
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>\n<!-- internet-monitor-evidence-pack {"));
    assert_eq!(
        references(&html),
        Vec::<String>::new(),
        "external references or scripts"
    );
    // The check itself finds what it looks for.
    let hostile = "<p>x</p><img alt=\"a\" src=\"//evil.example/x.png\"><a href=\"https://x\">x</a><script>1</script>";
    assert_eq!(references(hostile).len(), 3, "{:?}", references(hostile));
    // Hostile text is shown, escaped: never as markup.
    assert!(
        !html.contains("<script>alert") && !html.contains("<img"),
        "unescaped text"
    );
    assert!(
        html.contains(
            "Evil &lt;script&gt;alert(1)&lt;/script&gt; &quot;Net&quot; &amp; &#39;Co&#39;"
        )
    );
    assert!(html.contains("&lt;img src=https://evil.example/x.png&gt; timed out"));
    // The charts are inline SVG with the plan's steps and the failures.
    assert_eq!(html.matches("<svg ").count(), 2);
    assert!(html.contains("class=\"plan\"") && html.contains("class=\"failure network\""));
    // Every run in the window, the failures marked by kind; the runs outside are left out.
    assert_eq!(html.matches("<tr class=\"failure network\">").count(), 1);
    assert_eq!(html.matches("<tr class=\"failure\">").count(), 1);
    for id in 2..=5 {
        assert!(
            html.contains(&format!("/result/c/0000{id:04}-")),
            "run {id}"
        );
    }
    assert!(!html.contains("/result/c/00000001-") && !html.contains("/result/c/00000006-"));
    assert!(html.contains("@page { size: A4;"));

    // The hash is that of the bytes export writes for the window, and the command is printed.
    let hash = sha256(&exported(&env.db()));
    assert!(html.contains(&hash), "the pack states {hash}");
    assert!(html.contains(&format!(
        "internet-monitor export --format jsonl \\\n  --from {FROM} --to {TO} | sha256sum"
    )));

    let output = verify(&env.db(), &file);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("matches: "),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains(&hash));

    // One more run inside the window: the export, and so the hash, changed.
    env.import(&[success("2026-11-04T13:00:00.000Z", 98.0, 7)]);
    let output = verify(&env.db(), &file);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let said = stdout(&output);
    let now = sha256(&exported(&env.db()));
    assert_ne!(now, hash);
    assert!(said.starts_with("does not match: "), "{said}");
    assert!(said.contains(&hash) && said.contains(&now), "{said}");
}

#[test]
fn the_json_pack_has_the_same_content_and_verifies() {
    let env = Env::new();
    store(&env);
    let file = pack(&env, "json", "pack.json");
    let pack: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    // The summary's keys stay as they were.
    assert_eq!(pack["window"]["from"], FROM);
    assert_eq!(pack["runs"].as_array().unwrap().len(), 6);
    assert_eq!(pack["failures_by_kind"]["network"], 1);
    assert_eq!(pack["failures_by_kind"]["local"], 1);
    // The pack's.
    assert_eq!(pack["pack"]["format"], 1);
    assert_eq!(pack["pack"]["time_zone"], "UTC");
    assert_eq!(pack["plans"]["source"], "stored");
    let versions = pack["plans"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(
        versions[0]["download"]["minimum_bytes_per_second"],
        6_250_000.0
    );
    assert_eq!(pack["rules"]["rules"], "de-bnetza");
    assert!(pack["rules"]["criteria"].is_array());
    assert!(pack["rules"]["label"].is_string());
    let runs = pack["runs"].as_array().unwrap();
    let kinds: Vec<&Value> = runs.iter().map(|run| &run["failure_kind"]).collect();
    assert_eq!(
        kinds,
        [
            &Value::Null,
            &Value::Null,
            &json!("network"),
            &Value::Null,
            &json!("local"),
            &Value::Null
        ]
    );
    assert_eq!(runs[0]["local_time"], "2026-11-02 10:00:00");
    assert_eq!(runs[2]["message"], HOSTILE_MESSAGE);
    // 20:30 and 20:00 UTC fall in the 20–22 h peak; the other four runs do not.
    let peak = &pack["peak_hours"];
    assert_eq!(
        (&peak["start_hour"], &peak["end_hour"]),
        (&json!(20), &json!(22))
    );
    assert_eq!(peak["peak"]["runs"], 2);
    assert_eq!(
        peak["peak"]["download_bytes_per_second"]["p50"],
        60.0 * 125_000.0
    );
    assert_eq!(peak["off_peak"]["runs"], 4);
    assert_eq!(peak["off_peak"]["network_failures"], 1);
    assert_eq!(
        peak["off_peak"]["download_bytes_per_second"]["p50"],
        95.0 * 125_000.0
    );
    let conditions = &pack["conditions"];
    assert_eq!(conditions["engines"][0]["engine"]["name"], "ookla");
    assert_eq!(conditions["engines"][0]["runs"], 6);
    assert_eq!(conditions["servers"][0]["server"]["name"], HOSTILE_NAME);
    assert_eq!(conditions["servers"][0]["runs"], 4);
    assert_eq!(conditions["isps"][0]["isp"], "Example & Sons ISP");
    assert_eq!(conditions["interface"], Value::Null);
    let bytes = exported(&env.db());
    let export = &pack["export"];
    assert_eq!(
        export["command"],
        format!("internet-monitor export --format jsonl --from {FROM} --to {TO}")
    );
    assert_eq!(export["sha256"], sha256(&bytes));
    assert_eq!(export["bytes"], bytes.len());
    assert_eq!(export["lines"], 6);

    let output = verify(&env.db(), &file);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("matches: "));
    // A run outside the window changes nothing.
    env.import(&[success("2026-11-05T00:00:00.000Z", 98.0, 8)]);
    assert_eq!(verify(&env.db(), &file).status.code(), Some(0));
    // The report's other twins, kept in an env file, are not read with --verify (typed beside
    // it, the flags are refused).
    let db = env.db();
    let output = command(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--verify",
        file.to_str().unwrap(),
    ])
    .env("INTERNET_MONITOR_WINDOW", "3d")
    .env("INTERNET_MONITOR_REPORT_FORMAT", "json")
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn verify_names_a_file_that_is_no_pack() {
    let env = Env::new();
    store(&env);
    let notes = env.path("notes.html");
    std::fs::write(&notes, "<!DOCTYPE html><p>hello</p>").unwrap();
    let output = verify(&env.db(), &notes);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("notes.html is not an evidence pack"),
        "{}",
        stderr(&output)
    );
    let output = verify(&env.db(), &env.path("missing.html"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot read --verify"),
        "{}",
        stderr(&output)
    );
    // A directory opens, and fails only on the first read: named too.
    let dir = env.path("packs");
    std::fs::create_dir(&dir).unwrap();
    let output = verify(&env.db(), &dir);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("cannot read --verify {}", dir.display())),
        "{}",
        stderr(&output)
    );
}

/// The hour the clocks go back in repeats local times: the runs table gives those runs their
/// UTC offset, so two runs an hour apart never read as one time listed twice.
#[test]
fn runs_in_the_repeated_hour_are_told_apart_by_their_offset() {
    let env = Env::new();
    env.import(&[
        success("2026-10-25T00:30:00.000Z", 90.0, 1),
        success("2026-10-25T01:30:00.000Z", 91.0, 2),
        success("2026-10-25T02:30:00.000Z", 92.0, 3),
    ]);
    let path = env.path("dst.html");
    let output = report(
        &env.db(),
        &[
            "--from",
            "2026-10-24T00:00:00Z",
            "--to",
            "2026-10-26T00:00:00Z",
            "--timezone",
            "Europe/Berlin",
            "--format",
            "html",
            "--output",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let html = std::fs::read_to_string(&path).unwrap();
    let times: Vec<&str> = html
        .split("<td class=\"time\">")
        .skip(1)
        .filter_map(|cell| cell.split("</td>").next())
        .collect();
    assert_eq!(
        times,
        [
            "2026-10-25 02:30:00<br>UTC+02:00",
            "2026-10-25 02:30:00<br>UTC+01:00",
            "2026-10-25 03:30:00",
        ]
    );
}

/// `--rules` takes a window of up to 366 days, as `/api/v1/summary?rules=&window=366d` does:
/// `--window 366d` (which ends 1 ms after now) is judged, a day more is refused naming the flag.
#[test]
fn rules_take_the_366_day_window_they_document() {
    let env = Env::new();
    store(&env);
    for rules in ["de-bnetza", "at-rtr", "us-fcc", "uk-ofcom"] {
        let output = report(&env.db(), &["--window", "366d", "--rules", rules]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{rules}: {}",
            stderr(&output)
        );
        assert!(
            stdout(&output).contains("Rule set: "),
            "{}",
            stdout(&output)
        );
        let output = report(&env.db(), &["--window", "367d", "--rules", rules]);
        assert_eq!(output.status.code(), Some(1), "{rules}");
        assert!(
            stderr(&output).contains("at most 366d"),
            "{}",
            stderr(&output)
        );
    }
}

/// A forged marker `report` never writes is damaged, not a match: an empty or reversed window
/// (whose export is empty in any database) and a sha256 that is no hex digest (it is printed:
/// an escape sequence in it would reach the terminal), in an HTML pack and a JSON pack alike.
#[test]
fn verify_refuses_a_marker_report_never_writes() {
    let env = Env::new();
    store(&env);
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let marker = |from: &str, to: &str, sha256: &str| json!({"format": 1, "from": from, "to": to, "sha256": sha256, "bytes": 0, "lines": 0});
    for (stated, says) in [
        (marker(FROM, FROM, EMPTY), "is empty"),
        (marker(TO, FROM, EMPTY), "is empty"),
        (
            marker(FROM, TO, "\u{1b}]0;owned\u{7}\u{1b}[2J"),
            "not 64 hexadecimal digits",
        ),
        (
            marker(FROM, TO, &"A".repeat(64)),
            "not 64 hexadecimal digits",
        ),
    ] {
        let html = env.path("forged.html");
        std::fs::write(
            &html,
            format!("<!DOCTYPE html>\n<!-- internet-monitor-evidence-pack {stated} -->\n"),
        )
        .unwrap();
        let json_pack = env.path("forged.json");
        let mut export = stated.clone();
        export["command"] = json!("internet-monitor export --format jsonl");
        let pack = json!({"pack": {"format": 1}, "export": export});
        std::fs::write(&json_pack, pack.to_string()).unwrap();
        for file in [&html, &json_pack] {
            let output = verify(&env.db(), file);
            assert_eq!(output.status.code(), Some(1), "{stated} in {file:?}");
            let said = stderr(&output);
            assert!(
                said.contains("marker is damaged") && said.contains(says),
                "{stated}: {said}"
            );
            assert!(stdout(&output).is_empty(), "{stated}: {}", stdout(&output));
            assert!(!said.contains('\u{1b}'), "{said:?}");
        }
    }
}

/// `--output` naming the database (by its name, a symbolic link or a hard link) would replace
/// every stored run with the report: refused, naming both flags, the file left byte for byte.
#[test]
fn output_naming_the_database_is_refused_and_the_database_kept() {
    let env = Env::new();
    store(&env);
    let db = env.db();
    let before = std::fs::read(&db).unwrap();
    let link = env.path("link.redb");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let hard = env.path("hard.redb");
    std::fs::hard_link(&db, &hard).unwrap();
    for output in [&db, &link, &hard] {
        for format in ["text", "json", "html"] {
            let result = report_into(&db, format, output, &[]);
            assert_eq!(result.status.code(), Some(1), "{format} into {output:?}");
            let said = stderr(&result);
            assert!(
                said.contains("--output") && said.contains("is the database"),
                "{said}"
            );
            assert!(
                std::fs::read(&db).unwrap() == before,
                "--format {format} --output {output:?} changed the database"
            );
        }
    }
    let still = report(&db, &["--from", FROM, "--to", TO, "--format", "json"]);
    assert_eq!(still.status.code(), Some(0), "{}", stderr(&still));
}

#[test]
fn the_text_report_gives_the_verdict_and_bad_flags_are_named() {
    let env = Env::new();
    store(&env);
    let db = env.db();
    let output = report(&db, &["--rules", "de-bnetza", "--from", FROM, "--to", TO]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("internet-monitor report, {FROM} to {TO}\n")),
        "{text}"
    );
    assert!(text.contains("\nRule set: de-bnetza"), "{text}");
    assert!(text.contains("\nOutcome: "), "{text}");

    let cases: [(&[&str], &str); 5] = [
        (&["--rules", "fr-arcep"], "--rules"),
        (&["--rules", "de-bnetza", "--window", "367d"], "--window"),
        (&["--window", "7d", "--from", "1d"], "--from"),
        (&["--from", TO, "--to", FROM], "--from"),
        (&["--verify", "x.html", "--rules", "de-bnetza"], "--verify"),
    ];
    for (args, named) in cases {
        let output = report(&db, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains(named),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let listed = stderr(&report(&db, &["--rules", "fr-arcep"]));
    assert!(
        listed.contains("de-bnetza, at-rtr, us-fcc or uk-ofcom"),
        "{listed}"
    );
}

/// `TOOL ARG` runs (whatever its status), else the test fails saying how to install it.
fn require(tool: &str, arg: &str, package: &str) {
    let found = Command::new(tool).arg(arg).output();
    assert!(
        found.is_ok(),
        "{tool} is missing: install Debian's {package} (apt-get install {package}); .ci/run does"
    );
}

#[test]
#[ignore = "needs chromium and pdftotext (Debian chromium, poppler-utils); .ci/run installs them and runs the ignored tests"]
fn the_pack_printed_to_pdf_says_the_verdict_the_runs_and_the_hash() {
    require("chromium", "--version", "chromium");
    require("pdftotext", "-v", "poppler-utils");
    let env = Env::new();
    store(&env);
    let file = pack(&env, "html", "pack.html");
    let pdf = env.path("pack.pdf");
    let profile = env.path("chromium-profile");
    let output = common::chromium(&profile)
        .arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("run chromium");
    assert!(output.status.success(), "chromium: {}", stderr(&output));
    let text = Command::new("pdftotext")
        .args(["-layout", pdf.to_str().unwrap(), "-"])
        .output()
        .expect("run pdftotext");
    assert!(text.status.success(), "pdftotext: {}", stderr(&text));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Evidence pack"), "{text}");
    assert!(
        text.contains("Verdict") && text.contains("(de-bnetza)"),
        "{text}"
    );
    assert!(text.contains("Outcome: "), "{text}");
    // Every run of the window, the failures with their kind and (escaped) message.
    for time in [
        "2026-11-02 10:00:00",
        "2026-11-02 20:30:00",
        "2026-11-03 09:00:00",
        "2026-11-03 20:00:00",
        "2026-11-04 08:00:00",
        "2026-11-04 12:00:00",
    ] {
        assert!(text.contains(time), "run {time} missing:\n{text}");
    }
    assert!(
        text.contains("(network)") && text.contains("(local)"),
        "{text}"
    );
    assert!(
        text.contains("<img src=https://evil.example/x.png> timed out"),
        "{text}"
    );
    assert!(text.contains(&sha256(&exported(&env.db()))), "{text}");
    assert!(
        text.contains(&format!("--from {FROM} --to {TO} | sha256sum")),
        "{text}"
    );
}

/// `report --format html --output OUTPUT` over the test window of `db`, run by `sh` after the
/// shell commands `prelude` (limits, traps, a umask, which the report inherits).
fn html_pack_after(db: &Path, output: &Path, prelude: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("{prelude}; exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_internet-monitor"))
        .args([
            "report",
            "--db",
            db.to_str().unwrap(),
            "--from",
            FROM,
            "--to",
            TO,
        ])
        .args(["--format", "html", "--output", output.to_str().unwrap()])
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

/// `--output` replaces a file whole or not at all: a write that fails half-way (here the file
/// size limit, `ulimit -f`, with SIGXFSZ ignored so the write returns EFBIG) leaves an earlier
/// pack as it was, and no temporary file behind; a complete one replaces it.
#[test]
fn a_failed_output_leaves_the_earlier_file_whole() {
    let env = Env::new();
    store(&env);
    let db = env.db();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("pack.html");
    let earlier = "an earlier pack, kept whole\n".repeat(1000);
    std::fs::write(&output, &earlier).unwrap();
    let limited = html_pack_after(&db, &output, "trap '' XFSZ; ulimit -f 8");
    assert_eq!(limited.status.code(), Some(1), "{limited:?}");
    assert!(
        stderr(&limited).contains("cannot write --output"),
        "{}",
        stderr(&limited)
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap(), earlier);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["pack.html"], "a temporary file was left behind");

    let done = report_into(&db, "html", &output, &[]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(
        std::fs::read_to_string(&output)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
}

/// The file `--output` writes has the mode a plain write would give it: a new one 0666 less
/// the umask, an existing one its own (the temporary file it is written as is 0600).
#[test]
fn output_keeps_the_mode_a_plain_write_would_give() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    store(&env);
    let db = env.db();
    let dir = tempfile::tempdir().unwrap();
    let (new, existing) = (
        dir.path().join("new.html"),
        dir.path().join("existing.html"),
    );
    std::fs::write(&existing, "earlier").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
    for output in [&new, &existing] {
        let written = html_pack_after(&db, output, "umask 022");
        assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    }
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&new), 0o644);
    assert_eq!(mode(&existing), 0o640);
}
