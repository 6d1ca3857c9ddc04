//! The database file: damage is detected and reported, never a panic and never silently
//! changed evidence; files of earlier versions still open.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::Env;
use internet_monitor::sample::{Engine, Sample};

const STORE_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stores");

fn export(db: &Path) -> Output {
    common::command(&["export", "--db", db.to_str().unwrap()])
        .output()
        .unwrap()
}

/// A copy of a committed fixture, so that no test can change the original.
fn copy_fixture(env: &Env, name: &str) -> PathBuf {
    let db = env.db();
    std::fs::copy(Path::new(STORE_FIXTURES).join(name), &db).unwrap();
    db
}

/// What this version exports of a file an older version exported as `jsonl`: the same
/// samples, each with the engine such samples read with (`ookla` unless skipped).
fn as_read_now(old_export: &str) -> String {
    old_export
        .lines()
        .map(|line| {
            let mut sample: Sample = serde_json::from_str(line).unwrap();
            assert_eq!(sample.engine, None, "the old export has no engine: {line}");
            sample.engine = Engine::before_engines(sample.outcome);
            format!("{}\n", serde_json::to_string(&sample).unwrap())
        })
        .collect()
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(Path::new(STORE_FIXTURES).join(name)).unwrap()
}

#[test]
fn a_file_of_format_version_1_still_reads_exactly() {
    let env = Env::new();
    let db = copy_fixture(&env, "format-v1.redb");
    let output = export(&db);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = as_read_now(&fixture_text("format-v1.jsonl"));
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
}

#[test]
fn a_file_of_format_version_1_takes_new_samples() {
    let env = Env::new();
    let db = copy_fixture(&env, "format-v1.redb");
    let run = common::with_fake("run-once", &db, "ok-1.2-pretty", &[])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let output = export(&db);
    assert_eq!(output.status.code(), Some(0));
    let expected = as_read_now(&fixture_text("format-v1.jsonl"));
    let exported = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        exported,
        format!("{expected}{}", String::from_utf8_lossy(&run.stdout)),
        "the old samples as they were, then the new one"
    );
}

#[test]
fn a_file_of_format_version_2_reads_exactly_and_takes_version_3_samples() {
    let env = Env::new();
    let db = copy_fixture(&env, "format-v2.redb");
    let old = fixture_text("format-v2.jsonl");
    let expected = as_read_now(&old);
    let (read, code) = exported(&db);
    assert_eq!(code, Some(0));
    assert_eq!(read, expected);
    let engines: Vec<Option<String>> = read
        .lines()
        .map(|line| {
            let sample: Sample = serde_json::from_str(line).unwrap();
            sample.engine.map(|engine| engine.name.to_string())
        })
        .collect();
    let ookla = || Some("ookla".to_owned());
    assert_eq!(
        engines,
        [None, ookla(), ookla(), ookla(), ookla(), ookla()],
        "the skipped sample first, then runs of the Ookla CLI"
    );
    // A run of this version (the fake CLI: ookla) and an HTTP engine's sample, imported.
    let run = common::with_fake("run-once", &db, "ok-1.2-pretty", &[])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut http: serde_json::Value = serde_json::from_str(read.lines().nth(1).unwrap()).unwrap();
    http["time"] = "2026-11-30T07:20:05.000Z".into();
    http["engine"] = serde_json::json!({
        "name": "http",
        "protocol": "cloudflare",
        "url": "https://speed.cloudflare.com",
        "streams": 4,
        "duration_seconds": 10.0,
        "ramp_up_seconds": 2.0
    });
    env.import(std::slice::from_ref(&http));
    let (after, code) = exported(&db);
    assert_eq!(code, Some(0));
    let http_line = format!(
        "{}\n",
        serde_json::to_string(&serde_json::from_value::<Sample>(http).unwrap()).unwrap()
    );
    assert_eq!(
        after,
        format!(
            "{expected}{http_line}{}",
            String::from_utf8_lossy(&run.stdout)
        ),
        "the old samples as they were, then the new ones in time order"
    );
    let check = db_command("check", &db);
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{said}");
    assert!(said.ends_with("no damage found\n"), "{said}");
    let compact = db_command("compact", &db);
    assert_eq!(compact.status.code(), Some(0));
    assert_eq!(
        exported(&db),
        (after, Some(0)),
        "compact keeps every sample"
    );
}

/// 100 samples over the last 100 minutes, made of the v1 fixture's successes and failures.
fn hundred_samples(env: &Env) -> PathBuf {
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(Path::new(STORE_FIXTURES).join("format-v1.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let samples: Vec<serde_json::Value> = (0..100u64)
        .map(|i| {
            let mut sample = lines[i as usize % lines.len()].clone();
            let at = internet_monitor::time::Timestamp::from_millis(now - (100 - i) * 60_000);
            sample["time"] = at.to_string().into();
            sample
        })
        .collect();
    env.import(&samples);
    env.db()
}

/// What each command shows of a file: the evidence a damaged file must either repeat exactly
/// or refuse to show.
#[derive(Debug, PartialEq)]
struct Evidence {
    export: String,
    /// The report without its first line, which names the window (and so the current time).
    report: String,
    /// `/api/v1/samples?limit=10000` of a `serve` on the file.
    api: String,
}

const DAMAGED_END: &str =
    "; it was left as it is: restore it from a backup or an export, or pass another --db";

/// Asserts `output` is either a success or exit 1 with the one-line damaged message; returns
/// stdout on success.
fn success_or_damaged(db: &Path, what: &str, output: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => Some(String::from_utf8_lossy(&output.stdout).into_owned()),
        Some(1) => {
            assert_damaged_message(db, what, stderr.trim_end());
            None
        }
        other => panic!("{what}: exit {other:?}, stderr:\n{stderr}"),
    }
}

fn assert_damaged_message(db: &Path, what: &str, message: &str) {
    // run-once says first when the damage stopped it only after the test ran.
    let start = format!(
        "internet-monitor: error: database {} is damaged (",
        db.display()
    );
    let after_test = format!(
        "internet-monitor: error: the test ran but its sample could not be stored: database {} is damaged (",
        db.display()
    );
    assert!(
        (message.starts_with(&start) || message.starts_with(&after_test))
            && message.ends_with(DAMAGED_END)
            && !message.contains('\n'),
        "{what}: not the damaged message:\n{message}"
    );
}

/// `serve` on `db` (no test runs): `Some(samples page)` when it served them, `None` when it
/// refused the file, at start-up (exit 1) or with a 503 naming the damage.
fn serve_evidence(db: &Path, what: &str) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let mut child = common::serve_command(db, "ok-1.2-pretty", &["--start-delay", "1h"])
        .args(["--listen", "127.0.0.1:0", "--log-format", "text"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let address = loop {
        let mut line = String::new();
        if log.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(1), "{what}: serve ended with:\n{seen}");
            assert_damaged_message(db, what, seen.trim_end());
            return None;
        }
        seen.push_str(&line);
        if let Some(after) = line.split("listening on http://").nth(1) {
            break after.split_whitespace().next().unwrap().to_owned();
        }
    };
    // It binds before it reads the store, so it may refuse the file just after this line.
    let answers =
        common::try_request(&address, "GET", "/api/v1/samples?limit=10000").and_then(|page| {
            common::try_request(&address, "GET", "/healthz").map(|health| (page, health))
        });
    common::signal(child.id(), libc::SIGTERM);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let Ok((page, health)) = answers else {
        if status.code() == Some(0) {
            // It served, and the page's stream met the damage part way: cut off, and logged.
            assert!(
                rest.contains("a streamed answer stopped: the store cannot be read")
                    && rest.contains(" is damaged ("),
                "{what}: a page cut off without the damage logged:\n{seen}{rest}"
            );
            return None;
        }
        assert_eq!(
            status.code(),
            Some(1),
            "{what}: serve ended with:\n{seen}{rest}"
        );
        assert_damaged_message(db, what, rest.trim_end());
        return None;
    };
    seen.push_str(&rest);
    assert!(
        matches!(health.status, 200 | 503),
        "{what}: /healthz {health:?}"
    );
    assert_eq!(status.code(), Some(0), "{what}: serve's exit; log:\n{seen}");
    assert!(
        !seen.contains("panicked"),
        "{what}: serve panicked:\n{seen}"
    );
    match page.status {
        200 => Some(page.body),
        503 => {
            let error = page.json()["error"].as_str().unwrap().to_owned();
            assert!(error.contains(" is damaged ("), "{what}: {error}");
            None
        }
        other => panic!("{what}: /api/v1/samples answered {other}: {}", page.body),
    }
}

/// Runs export, report, serve and run-once on `db` (in that order: run-once writes) and
/// checks each either shows exactly `original` or says the file is damaged; returns how many
/// of the four refused.
fn assert_same_or_refused(db: &Path, original: &Evidence, what: &str) -> usize {
    let db_arg = db.to_str().unwrap();
    let mut refused = 0;
    let export = common::command(&["export", "--db", db_arg])
        .output()
        .unwrap();
    match success_or_damaged(db, &format!("{what}: export"), &export) {
        Some(out) => assert_eq!(out, original.export, "{what}: export changed the evidence"),
        None => refused += 1,
    }
    let report = common::command(&["report", "--db", db_arg])
        .output()
        .unwrap();
    match success_or_damaged(db, &format!("{what}: report"), &report) {
        Some(out) => assert_eq!(
            out.split_once('\n').map(|(_, rest)| rest),
            Some(original.report.as_str()),
            "{what}: report changed the evidence"
        ),
        None => refused += 1,
    }
    match serve_evidence(db, &format!("{what}: serve")) {
        Some(page) => assert_eq!(page, original.api, "{what}: serve changed the evidence"),
        None => refused += 1,
    }
    let run_once = common::with_fake("run-once", db, "ok-1.2-pretty", &[])
        .output()
        .unwrap();
    match success_or_damaged(db, &format!("{what}: run-once"), &run_once) {
        Some(out) => assert!(
            out.starts_with("{\"time\":"),
            "{what}: run-once printed {out}"
        ),
        None => refused += 1,
    }
    refused
}

fn evidence(db: &Path) -> Evidence {
    let db_arg = db.to_str().unwrap();
    let export = common::command(&["export", "--db", db_arg])
        .output()
        .unwrap();
    let report = common::command(&["report", "--db", db_arg])
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0));
    assert_eq!(report.status.code(), Some(0));
    let report = String::from_utf8_lossy(&report.stdout);
    Evidence {
        export: String::from_utf8_lossy(&export.stdout).into_owned(),
        report: report.split_once('\n').unwrap().1.to_owned(),
        api: serve_evidence(db, "the intact file").expect("the intact file is served"),
    }
}

/// Offsets of the bytes in pages that hold anything: flips in never-used space prove nothing.
fn used_offsets(bytes: &[u8]) -> Vec<usize> {
    const PAGE: usize = 4096;
    bytes
        .chunks(PAGE)
        .enumerate()
        .filter(|(_, page)| page.iter().any(|&b| b != 0))
        .flat_map(|(index, page)| index * PAGE..index * PAGE + page.len())
        // The magic bytes: changing them makes the file "not redb", tested elsewhere.
        .filter(|&offset| offset >= 9)
        .collect()
}

#[test]
fn single_byte_flips_are_refused_or_harmless_never_a_panic_or_changed_evidence() {
    // FLIPS and FLIP_SEED override the defaults, to search further or replay a failure.
    let setting = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let flips = setting("FLIPS", 200);
    let seed = setting("FLIP_SEED", 0xf11b);
    let env = Env::new();
    let db = hundred_samples(&env);
    let pristine = std::fs::read(&db).unwrap();
    let original = evidence(&db);
    assert_eq!(original.export.lines().count(), 100);
    let used = used_offsets(&pristine);
    let mut random = common::Lcg(seed);
    let (mut refused, mut harmless) = (0, 0);
    for flip in 0..flips {
        let offset = used[random.below(used.len() as u64) as usize];
        let xor = 1 + random.below(255) as u8;
        let mut damaged = pristine.clone();
        damaged[offset] ^= xor;
        std::fs::write(&db, &damaged).unwrap();
        let what = format!("flip {flip} (byte {offset} ^ {xor:#04x})");
        if std::env::var_os("FLIP_TRACE").is_some() {
            eprintln!("{what}");
            std::fs::write(format!("/tmp/flip-{flip}.redb"), &damaged).unwrap();
        }
        match assert_same_or_refused(&db, &original, &what) {
            0 => harmless += 1,
            _ => refused += 1,
        }
    }
    eprintln!(
        "{flips} single-byte flips (seed {seed}): {refused} refused by at least one command, {harmless} harmless to all; 0 panics, 0 changed evidence"
    );
    assert!(refused > 0, "some flips hit something that matters");
}

#[test]
fn random_pages_behind_an_intact_header_are_refused_by_every_command() {
    let env = Env::new();
    let db = hundred_samples(&env);
    let original = evidence(&db);
    let mut bytes = std::fs::read(&db).unwrap();
    let mut random = common::Lcg(0x7a9e);
    for byte in bytes.iter_mut().skip(4096) {
        *byte = random.below(256) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    assert_eq!(assert_same_or_refused(&db, &original, "random pages"), 4);
}

const CHANGE_LOGGED: &str = "the database file at --db is no longer the file this service has open";

/// `serve` on the file, testing every 100 ms until it has stored a sample.
fn serving(env: &Env) -> common::Server {
    let mut server =
        common::Server::start(env.serve("ok-1.2-pretty", "replay", &["--interval", "100ms"]));
    server.wait_for_log("test succeeded");
    assert_eq!(server.get("/healthz").status, 200);
    server
}

/// `/healthz` answers 503 with JSON naming what happened, on every request; the log says it
/// once, and says with each later sample that it is not in the file at --db.
fn assert_noticed(mut server: common::Server, says: &str) {
    for _ in 0..3 {
        let health = server.get("/healthz");
        assert_eq!(health.status, 503, "{}", health.body);
        let error = health.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{error}");
    }
    server.wait_for_log(CHANGE_LOGGED);
    let stored = server.wait_for_log("which is no longer the file at --db");
    assert!(stored.contains(says), "{stored}");
    let log = server.assert_clean_exit();
    let changes = log
        .iter()
        .filter(|line| line.contains(CHANGE_LOGGED))
        .count();
    assert_eq!(
        changes,
        1,
        "one log line per change, not per request:\n{}",
        log.join("\n")
    );
}

#[test]
fn deleting_the_file_under_serve_is_noticed_and_logged_once() {
    let env = Env::new();
    let server = serving(&env);
    std::fs::remove_file(env.db()).unwrap();
    assert_noticed(server, "was deleted or moved away while in use");
}

#[test]
fn replacing_the_file_under_serve_is_noticed_and_logged_once() {
    let env = Env::new();
    let server = serving(&env);
    // An older copy, as `mv backup.redb samples.redb` would put in its place.
    let backup = env.path("backup.redb");
    let mut copy = common::command(&["import", "--db", backup.to_str().unwrap(), "-"]);
    let status = copy
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    std::fs::rename(&backup, env.db()).unwrap();
    assert_noticed(server, "was replaced by another file while in use");
}

#[test]
fn a_file_moved_away_and_back_is_healthy_again() {
    let env = Env::new();
    let mut server = serving(&env);
    let aside = env.path("aside.redb");
    std::fs::rename(env.db(), &aside).unwrap();
    assert_eq!(server.get("/healthz").status, 503);
    std::fs::rename(&aside, env.db()).unwrap();
    assert_eq!(server.get("/healthz").status, 200);
    server.wait_for_log("is again the file this service has open");
    server.assert_clean_exit();
}

fn db_command(action: &str, db: &Path) -> Output {
    common::command(&["db", action, "--db", db.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn db_check_names_each_damaged_sample_by_its_time() {
    let env = Env::new();
    let db = hundred_samples(&env);
    let clean = db_command("check", &db);
    assert_eq!(clean.status.code(), Some(0));
    let said = String::from_utf8_lossy(&clean.stdout);
    assert!(
        said.contains(": 100 samples and ") && said.ends_with("no damage found\n"),
        "{said}"
    );

    // One letter of the first rate-limit message, in one sample's record.
    let mut bytes = std::fs::read(&db).unwrap();
    let at = bytes
        .windows(13)
        .position(|window| window == b"Limit reached")
        .unwrap();
    bytes[at] = b'l';
    std::fs::write(&db, &bytes).unwrap();
    let damaged = db_command("check", &db);
    assert_eq!(damaged.status.code(), Some(2));
    let said = String::from_utf8_lossy(&damaged.stdout);
    let findings: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("damaged: the sample at "))
        .collect();
    assert_eq!(findings.len(), 1, "{said}");
    // redb's own page checksums see the change too.
    assert!(
        said.contains("damaged: redb's integrity check fails: "),
        "{said}"
    );
    let time = findings[0]
        .strip_prefix("damaged: the sample at ")
        .and_then(|rest| rest.split_once(": its checksum does not match"))
        .map(|(time, _)| time)
        .unwrap_or_else(|| panic!("{said}"));
    // The same time in export's refusal: the sample is named the same way everywhere.
    let export = export(&db);
    assert_eq!(export.status.code(), Some(1));
    let refusal = String::from_utf8_lossy(&export.stderr);
    assert!(
        refusal.contains(&format!("(the sample at {time}: ")),
        "{refusal}"
    );
    // Checking changes no sample (redb's own bookkeeping aside): a second check finds the
    // same, and the damage is not repaired into something that reads.
    let again = db_command("check", &db);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&again.stdout), said);
}

#[test]
fn db_check_reports_random_pages_as_damage() {
    let env = Env::new();
    let db = hundred_samples(&env);
    let mut bytes = std::fs::read(&db).unwrap();
    let mut random = common::Lcg(0xc4ec);
    for byte in bytes.iter_mut().skip(4096) {
        *byte = random.below(256) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    let check = db_command("check", &db);
    assert_eq!(check.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains(" is damaged ("), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn db_check_and_compact_refuse_a_database_in_use() {
    let env = Env::new();
    let mut server = serving(&env);
    for action in ["check", "compact"] {
        let output = db_command(action, &env.db());
        assert_eq!(output.status.code(), Some(1), "db {action}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!(
                "internet-monitor: error: database {} is locked: another internet-monitor process has it open (serve, or a run-once, import, db or plan set with this --db): stop it, or wait for it to end, and run this again (export, report and plan show read the database meanwhile)\n",
                env.db().display()
            )
        );
    }
    server.assert_clean_exit();
}

/// `db compact` while `export` reads the file (blocked on a pipe nobody reads): refused,
/// naming the reader, before anything is written; once the reader is gone it compacts.
#[test]
fn db_compact_refuses_a_file_another_process_reads_and_leaves_it_byte_identical() {
    let env = Env::new();
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(Path::new(STORE_FIXTURES).join("format-v1.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let now = internet_monitor::time::Timestamp::now().as_millis();
    // Far more than a pipe holds, so the export stays in its read until it is read or killed.
    let samples: Vec<serde_json::Value> = (0..3_000u64)
        .map(|i| {
            let mut sample = line.clone();
            sample["time"] = internet_monitor::time::Timestamp::from_millis(now - i * 60_000)
                .to_string()
                .into();
            sample
        })
        .collect();
    env.import(&samples);
    let db = env.db();
    let before = std::fs::read(&db).unwrap();
    let mut reader = common::command(&["export", "--db", db.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its first line out says the export has the file open and is reading it.
    let mut out = std::io::BufReader::new(reader.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    assert!(first.starts_with('{'), "{first:?}");

    let compact = db_command("compact", &db);
    assert_eq!(compact.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&compact.stderr),
        format!(
            "internet-monitor: error: database {} is in use by another internet-monitor process \
             (export, report, serve…): stop it and run again; the file was left as it was\n",
            db.display()
        )
    );
    assert!(
        std::fs::read(&db).unwrap() == before,
        "not one byte changed"
    );

    reader.kill().unwrap();
    reader.wait().unwrap();
    drop(out);
    let compact = db_command("compact", &db);
    assert_eq!(
        compact.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&compact.stderr)
    );
    assert_eq!(
        export(&db).stdout.iter().filter(|b| **b == b'\n').count(),
        3_000
    );
}

#[test]
fn db_compact_gives_back_what_retention_deleted() {
    let env = Env::new();
    let old: Vec<serde_json::Value> = {
        let line: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(Path::new(STORE_FIXTURES).join("format-v1.jsonl"))
                .unwrap()
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        let now = internet_monitor::time::Timestamp::now().as_millis();
        (0..3_000u64)
            .map(|i| {
                let mut sample = line.clone();
                // One every 28 minutes: 51 from the last day, 2,949 older (retention counts
                // a gap in the record as at most 6 h with --retention 1d, so none here).
                let at = now - (3_000 - i) * 28 * 60_000;
                sample["time"] = internet_monitor::time::Timestamp::from_millis(at)
                    .to_string()
                    .into();
                sample
            })
            .collect()
    };
    env.import(&old);
    let db = env.db();
    let mut server = common::Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--retention", "1d", "--start-delay", "1h"],
    ));
    let line = server.wait_for_log("retention deleted old samples");
    assert!(line.contains("deleted=2949"), "{line}");
    // Many at once (a shortened retention, a typo): a warning with the cut.
    assert!(
        line.contains(" WARN ") && line.contains("cutoff=20"),
        "{line}"
    );
    server.assert_clean_exit();

    let kept = export(&db);
    assert_eq!(String::from_utf8_lossy(&kept.stdout).lines().count(), 51);
    let before = std::fs::metadata(&db).unwrap().len();
    let compact = db_command("compact", &db);
    let said = String::from_utf8_lossy(&compact.stdout);
    assert_eq!(
        compact.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&compact.stderr)
    );
    let after = std::fs::metadata(&db).unwrap().len();
    assert_eq!(
        said,
        format!(
            "database {} compacted: {before} bytes before, {after} bytes after\n",
            db.display()
        )
    );
    assert!(after * 4 < before, "{before} bytes before, {after} after");
    assert_eq!(export(&db).stdout, kept.stdout, "the same evidence");
    assert_eq!(db_command("check", &db).status.code(), Some(0));
}

#[test]
fn a_csv_export_that_meets_damage_is_never_a_complete_answer() {
    let env = Env::new();
    let db = hundred_samples(&env);
    // One letter of the oldest rate-limit message: the newest samples still read, so serve
    // starts, and the CSV stream meets the damage on its way back.
    let mut bytes = std::fs::read(&db).unwrap();
    let at = bytes
        .windows(13)
        .position(|window| window == b"Limit reached")
        .unwrap();
    bytes[at] = b'l';
    std::fs::write(&db, &bytes).unwrap();
    let mut server =
        common::Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    match common::try_request(&server.address, "GET", "/api/v1/samples.csv") {
        // The connection ends before the chunked body's last chunk.
        Err(err) => assert!(err.to_string().contains("malformed chunked body"), "{err}"),
        Ok(response) => panic!("a damaged export answered as if complete: {response:?}"),
    }
    let stopped = server.wait_for_log("a streamed answer stopped: the store cannot be read");
    assert!(stopped.contains(" is damaged (the sample at "), "{stopped}");
    // A JSON page meets it too, and is cut off the same way.
    match common::try_request(&server.address, "GET", "/api/v1/samples?limit=10000") {
        Err(err) => assert!(err.to_string().contains("malformed chunked body"), "{err}"),
        Ok(response) => panic!("a damaged page answered as if complete: {response:?}"),
    }
    server.assert_clean_exit();
}

/// The exports of `db` (stdout, exit status).
fn exported(db: &Path) -> (String, Option<i32>) {
    let output = export(db);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        output.status.code(),
    )
}

/// A 100-sample file with one page zeroed such that `export` still gives every sample but a
/// writer's open fails: damage that only `db check` and the writing commands meet. Returns
/// the file, the export of the intact file, the intact bytes and the page zeroed.
fn damaged_but_exporting(env: &Env) -> (PathBuf, String, Vec<u8>, usize) {
    const PAGE: usize = 4096;
    let db = hundred_samples(env);
    let pristine = std::fs::read(&db).unwrap();
    let (original, _) = exported(&db);
    assert_eq!(original.lines().count(), 100);
    for page in 1..pristine.len() / PAGE {
        let mut bytes = pristine.clone();
        if bytes[page * PAGE..(page + 1) * PAGE]
            .iter()
            .all(|&b| b == 0)
        {
            continue;
        }
        bytes[page * PAGE..(page + 1) * PAGE].fill(0);
        std::fs::write(&db, &bytes).unwrap();
        let writable = common::with_fake("run-once", &db, "ok-1.2-pretty", &[])
            .output()
            .unwrap();
        // Put back whatever that open did, so the search itself changes nothing.
        std::fs::write(&db, &bytes).unwrap();
        if exported(&db) == (original.clone(), Some(0)) && writable.status.code() == Some(1) {
            return (db, original, pristine, page);
        }
    }
    panic!("no page whose loss only a writer notices");
}

#[test]
fn a_damaged_file_that_still_exports_is_left_as_it_is_by_every_command() {
    let env = Env::new();
    let (db, original, _, _) = damaged_but_exporting(&env);
    let damaged = std::fs::read(&db).unwrap();
    let db_arg = db.to_str().unwrap();
    let import_file = env.path("none.jsonl");
    std::fs::write(&import_file, "").unwrap();
    let commands: Vec<(&str, std::process::Command)> = vec![
        (
            "db check",
            common::command(&["db", "check", "--db", db_arg]),
        ),
        (
            "db compact",
            common::command(&["db", "compact", "--db", db_arg]),
        ),
        (
            "run-once",
            common::with_fake("run-once", &db, "ok-1.2-pretty", &[]),
        ),
        (
            "import",
            common::command(&["import", "--db", db_arg, import_file.to_str().unwrap()]),
        ),
        (
            "serve",
            common::serve_command(&db, "ok-1.2-pretty", &["--listen", "127.0.0.1:0"]),
        ),
    ];
    for (what, mut command) in commands {
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if what == "db check" {
            // The finding is the damage, found in a copy.
            assert_eq!(output.status.code(), Some(2), "{what}: {stderr}");
            let message = stderr.trim_end();
            assert!(
                message.starts_with(&format!(
                    "internet-monitor: database {} is damaged (",
                    db.display()
                )) && message.ends_with(DAMAGED_END),
                "{what}: {message}"
            );
        } else {
            assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
            let last = stderr.trim_end().lines().last().unwrap_or_default();
            assert_damaged_message(&db, what, last);
        }
        assert!(
            std::fs::read(&db).unwrap() == damaged,
            "{what} changed the damaged file"
        );
        assert_eq!(
            exported(&db),
            (original.clone(), Some(0)),
            "after {what}, export no longer reads the file"
        );
    }
}

#[test]
fn db_check_never_writes_to_the_file_it_checks() {
    let env = Env::new();
    let db = hundred_samples(&env);
    let before = std::fs::read(&db).unwrap();
    for _ in 0..2 {
        let check = db_command("check", &db);
        assert_eq!(check.status.code(), Some(0));
        assert!(
            std::fs::read(&db).unwrap() == before,
            "db check changed the file (now {} bytes, was {})",
            std::fs::metadata(&db).unwrap().len(),
            before.len()
        );
    }
}

#[test]
fn a_damaged_file_a_writer_died_on_is_left_as_it_is_whenever_a_command_says_so() {
    const PAGE: usize = 4096;
    let env = Env::new();
    let db = hundred_samples(&env);
    // A writer that dies leaves its file marked as needing repair: the next open repairs it.
    let mut server =
        common::Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    common::signal(server.pid(), libc::SIGKILL);
    server.wait(common::PATIENCE).expect("serve was killed");
    drop(server);
    let killed = std::fs::read(&db).unwrap();
    let mut refusals = 0;
    for page in 1..killed.len() / PAGE {
        // A whole page lost, and one byte of it changed.
        let mut zeroed = killed.clone();
        zeroed[page * PAGE..(page + 1) * PAGE].fill(0);
        let mut flipped = killed.clone();
        flipped[page * PAGE + 64] ^= 0x55;
        for (kind, damaged) in [("zeroed", zeroed), ("flipped", flipped)] {
            for what in ["export", "report", "run-once"] {
                std::fs::write(&db, &damaged).unwrap();
                let output = match what {
                    "run-once" => common::with_fake("run-once", &db, "ok-1.2-pretty", &[]),
                    _ => common::command(&[what, "--db", db.to_str().unwrap()]),
                }
                .output()
                .unwrap();
                let what = format!("{what} on page {page} {kind}");
                // A repair that succeeds may change the file; a refusal must not have.
                if success_or_damaged(&db, &what, &output).is_none() {
                    refusals += 1;
                    assert!(
                        std::fs::read(&db).unwrap() == damaged,
                        "{what}: said the file was left as it is, but changed it"
                    );
                }
            }
        }
    }
    assert!(refusals > 0, "some damage was refused");
}

#[test]
fn keys_past_the_end_of_time_are_reported_by_their_key_and_left_as_they_are() {
    let env = Env::new();
    let db = copy_fixture(&env, "extreme-times.redb");
    let (before, code) = exported(&db);
    assert_eq!(code, Some(0));
    let check = db_command("check", &db);
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{said}");
    for key in ["253402257600000", "253402387139000"] {
        assert!(
            said.contains(&format!("the sample keyed {key} ms after the Unix epoch")),
            "{said}"
        );
    }
    assert!(!said.contains("damaged:"), "{said}");
    assert!(said.ends_with("no damage found\n"), "{said}");
    let compact = db_command("compact", &db);
    assert_eq!(
        compact.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&compact.stderr)
    );
    let after = export(&db);
    assert_eq!(String::from_utf8_lossy(&after.stdout), before);
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("warning: 2 samples in "),
        "the two keys are still there"
    );
}
