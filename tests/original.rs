//! End to end: `import --from-original` on a database made with the original Python/Flask
//! app's exact schema: every value and time arrives, twice adds nothing, new rows add only
//! themselves, and a file that is not the original's is refused, leaving no database behind.
#![cfg(feature = "original")]

mod common;

use std::path::Path;

use common::{Env, Server, command};
use rusqlite::Connection;
use serde_json::Value;

/// The original's table as SQLAlchemy 1.4's `create_all` made it for its `Result` model
/// (`Float` and `DateTime` columns, all `nullable=False`), byte for byte.
const SCHEMA: &str = "\nCREATE TABLE results (\n\tid INTEGER NOT NULL, \n\tdownload FLOAT NOT NULL, \n\tupload FLOAT NOT NULL, \n\tping FLOAT NOT NULL, \n\ttimestamp DATETIME NOT NULL, \n\tPRIMARY KEY (id)\n)\n\n";

/// Creates the original's database at `path` with `rows` of (download B/s, upload B/s, ping
/// ms, timestamp text), inserted as SQLAlchemy does (values bound, `id` from SQLite).
fn original(path: &Path, rows: &[(rusqlite::types::Value, f64, f64, &str)]) {
    let connection = Connection::open(path).unwrap();
    connection.execute_batch(SCHEMA).unwrap();
    add_rows(path, rows);
}

fn add_rows(path: &Path, rows: &[(rusqlite::types::Value, f64, f64, &str)]) {
    let connection = Connection::open(path).unwrap();
    for (download, upload, ping, timestamp) in rows {
        connection
            .execute(
                "INSERT INTO results (download, upload, ping, timestamp) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![download, upload, ping, timestamp],
            )
            .unwrap();
    }
}

/// `import --db DB --from-original FILE EXTRA…`: exit code and stderr lines.
fn import(db: &Path, file: &Path, extra: &[&str]) -> (Option<i32>, Vec<String>) {
    let mut args = vec![
        "import",
        "--db",
        db.to_str().unwrap(),
        "--from-original",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = command(&args).output().expect("run import");
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
    let stderr = String::from_utf8(output.stderr).unwrap();
    (
        output.status.code(),
        stderr.lines().map(str::to_owned).collect(),
    )
}

fn export(db: &Path) -> Vec<Value> {
    let output = command(&["export", "--db", db.to_str().unwrap()])
        .output()
        .expect("run export");
    assert_eq!(output.status.code(), Some(0));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// What the files in `dir` are and hold, to see that an import wrote nothing there.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn real(value: f64) -> rusqlite::types::Value {
    rusqlite::types::Value::Real(value)
}

#[test]
fn every_value_and_time_arrives_once_and_new_rows_add_only_themselves() {
    let env = Env::new();
    let old = env.path("original");
    std::fs::create_dir(&old).unwrap();
    let file = old.join("internet-monitor.db");
    original(
        &file,
        &[
            // SQLAlchemy's own text, with microseconds; CET (+01:00).
            (
                real(10870309.0),
                2381515.0,
                14.799,
                "2026-11-29 14:03:12.123456",
            ),
            // No fraction (SQLite's datetime()); CEST (+02:00).
            (real(11630497.0), 2395549.0, 15.899, "2026-07-01 08:00:00"),
            // 02:30 happened twice in Berlin that night: the earlier, CEST, is taken.
            (
                real(12098038.0),
                2437292.0,
                54.183,
                "2026-10-25 02:30:00.250000",
            ),
            // 02:15 never happened in Berlin that night: an hour later, 03:15 CEST.
            (
                real(10529402.0),
                2283482.0,
                11.786,
                "2026-03-29 02:15:00.000001",
            ),
            // A `T` between date and time, and a fraction the store cuts to ms.
            (
                real(9000000.5),
                1000000.25,
                20.0,
                "2026-01-15T23:59:59.999999",
            ),
            // Text where a figure belongs, and a time that is not one: skipped, named.
            (
                rusqlite::types::Value::Text("fast".into()),
                1.0,
                1.0,
                "2026-11-01 00:00:00",
            ),
            (real(1.0), 1.0, 1.0, "yesterday"),
        ],
    );
    let before = contents(&old);
    let db = env.db();
    let (code, lines) = import(&db, &file, &["--timezone", "Europe/Berlin"]);
    let shown = file.display();
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(
        lines,
        [
            format!(
                "imported 5 new samples from the original app's database {shown} (7 rows read, 0 already stored, 2 skipped), its local times read in Europe/Berlin (--timezone)"
            ),
            "the rows run from 2026-01-15T22:59:59.999Z to 2026-11-29T13:03:12.123Z".to_owned(),
            "1 row at a local time that occurred twice (the clocks went back), taken as the earlier, or as the later when the row before it is dated between the two (the original wrote it in the repeated hour): id 3 2026-10-25T02:30:00.25 → 2026-10-25T00:30:00.250Z (the earlier)".to_owned(),
            "1 row at a local time that never occurred (the clocks went forward), moved forward by the gap: id 4 2026-03-29T02:15:00.000001 → 2026-03-29T01:15:00.000Z".to_owned(),
            "skipped id 6: download is the text \"fast\", not a number".to_owned(),
            "skipped id 7: timestamp is the text \"yesterday\", not a time like 2022-02-25 11:43:08.759391".to_owned(),
        ]
    );
    // Read-only: not a byte of the original's file changed, and no journal was left beside it.
    assert_eq!(contents(&old), before);

    let expected = [
        ("2026-01-15T22:59:59.999Z", 9000000.5, 1000000.25, 0.02),
        ("2026-03-29T01:15:00.000Z", 10529402.0, 2283482.0, 0.011786),
        ("2026-07-01T06:00:00.000Z", 11630497.0, 2395549.0, 0.015899),
        ("2026-10-25T00:30:00.250Z", 12098038.0, 2437292.0, 0.054183),
        ("2026-11-29T13:03:12.123Z", 10870309.0, 2381515.0, 0.014799),
    ];
    let check = |samples: &[Value], expected: &[(&str, f64, f64, f64)]| {
        assert_eq!(samples.len(), expected.len(), "{samples:#?}");
        for (sample, (time, download, upload, ping)) in samples.iter().zip(expected) {
            let object = sample.as_object().unwrap();
            for (key, value) in object {
                let want = match key.as_str() {
                    "time" => Value::from(*time),
                    "outcome" => Value::from("success"),
                    "trigger" => Value::from("schedule"),
                    "download_bytes_per_second" => Value::from(*download),
                    "upload_bytes_per_second" => Value::from(*upload),
                    "ping_seconds" => Value::from(*ping),
                    "engine" => serde_json::json!({"name": "ookla", "protocol": null, "url": null,
                        "streams": null, "duration_seconds": null, "ramp_up_seconds": null}),
                    // Nothing else was kept by the original.
                    _ => Value::Null,
                };
                assert_eq!(value, &want, "{key} of {sample}");
            }
        }
    };
    let first = export(&db);
    check(&first, &expected);

    // Twice: nothing added, nothing changed.
    let (code, lines) = import(&db, &file, &["--timezone", "Europe/Berlin"]);
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(
        lines[0],
        format!(
            "imported 0 new samples from the original app's database {shown} (7 rows read, 5 already stored, 2 skipped), its local times read in Europe/Berlin (--timezone)"
        )
    );
    assert_eq!(export(&db), first);

    // The original ran on: only its new row is added.
    add_rows(
        &file,
        &[(real(11000000.0), 2000000.0, 12.5, "2026-11-29 14:33:12.5")],
    );
    let (code, lines) = import(&db, &file, &["--timezone", "Europe/Berlin"]);
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(
        lines[0].starts_with("imported 1 new samples from the original app's database")
            && lines[0].contains("(8 rows read, 5 already stored, 2 skipped)"),
        "{lines:?}"
    );
    let mut grown = expected.to_vec();
    grown.push(("2026-11-29T13:33:12.500Z", 11000000.0, 2000000.0, 0.0125));
    check(&export(&db), &grown);

    // The original's endpoint answers from the old history as the original did.
    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let latest = server.get("/latest").json();
    assert_eq!(
        latest,
        serde_json::json!({"download": 11000000.0, "upload": 2000000.0, "ping": 12.5,
            "time": 1795959192.5})
    );
}

#[test]
fn without_timezone_the_machines_zone_is_used_and_named() {
    let env = Env::new();
    let file = env.path("internet-monitor.db");
    original(
        &file,
        &[(real(1e7), 2e6, 10.0, "2026-11-29 14:03:12.123456")],
    );
    let db = env.db();
    let (code, lines) = import(&db, &file, &[]);
    assert_eq!(code, Some(0), "{lines:?}");
    // The tests' TZ is UTC.
    assert!(
        lines[0].ends_with(
            "its local times read in UTC (this machine's zone; --timezone names another)"
        ),
        "{lines:?}"
    );
    assert_eq!(export(&db)[0]["time"], "2026-11-29T14:03:12.123Z");
}

/// A TZ that names no zone (a typo, a POSIX rule) is refused, naming it, before anything is
/// stored: taken for UTC it would store every run an hour or two off, and a second import with
/// the right --timezone would add each run again.
#[test]
fn a_system_zone_that_names_no_zone_is_refused_without_timezone() {
    let env = Env::new();
    let file = env.path("internet-monitor.db");
    original(
        &file,
        &[(real(1e7), 2e6, 10.0, "2026-11-29 14:03:12.123456")],
    );
    let db = env.db();
    for tz in ["Europe/Berlim", "CET-1CEST,M3.5.0,M10.5.0/3"] {
        let mut args = vec!["import", "--db", db.to_str().unwrap()];
        args.extend(["--from-original", file.to_str().unwrap()]);
        let output = command(&args).env("TZ", tz).output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("TZ={tz:?} names no IANA time zone"))
                && stderr.contains("give --timezone ZONE"),
            "{stderr}"
        );
        assert!(!db.exists(), "a refused import creates no database");
        // --timezone settles it.
        let output = command(&args)
            .args(["--timezone", "Europe/Berlin"])
            .env("TZ", tz)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert_eq!(export(&db)[0]["time"], "2026-11-29T13:03:12.123Z");
        std::fs::remove_file(&db).unwrap();
    }
}

#[test]
fn a_file_that_is_not_the_originals_is_refused_and_no_database_is_created() {
    let env = Env::new();
    let text = env.path("notes.txt");
    std::fs::write(&text, "download,upload,ping\n".repeat(40)).unwrap();
    let other = env.path("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE speedtest (id INTEGER PRIMARY KEY, download REAL)")
        .unwrap();
    let empty = env.path("empty.db");
    std::fs::write(&empty, "").unwrap();
    let partial = env.path("partial.db");
    Connection::open(&partial)
        .unwrap()
        .execute_batch(
            "CREATE TABLE results (id INTEGER PRIMARY KEY, download FLOAT, upload FLOAT, time DATETIME)",
        )
        .unwrap();
    let missing = env.path("missing.db");
    let fifo = env.path("fifo.db");
    let fifo_name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) only reads the NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo_name.as_ptr(), 0o600) }, 0);
    let cases = [
        (
            &fifo,
            format!(
                "{} is not a regular file (a FIFO, socket or device): --from-original reads the original app's database file (internet-monitor.db)",
                fifo.display()
            ),
        ),
        (
            &text,
            format!(
                "{} is not an SQLite database: --from-original reads the original app's database file (internet-monitor.db)",
                text.display()
            ),
        ),
        (
            &other,
            format!(
                "{} has no table named results: it is not the original internet-monitor's database",
                other.display()
            ),
        ),
        (
            &empty,
            format!(
                "{} has no table named results: it is not the original internet-monitor's database",
                empty.display()
            ),
        ),
        (
            &partial,
            format!(
                "{}'s results table has no column ping, timestamp: it is not the original internet-monitor's, whose table has id, download, upload, ping, timestamp",
                partial.display()
            ),
        ),
        (
            &missing,
            format!(
                "cannot read {}: No such file or directory (os error 2)",
                missing.display()
            ),
        ),
    ];
    let db = env.db();
    for (file, message) in cases {
        let (code, lines) = import(&db, file, &[]);
        assert_eq!(code, Some(1), "{lines:?}");
        assert_eq!(lines, [format!("internet-monitor: error: {message}")]);
        assert!(!db.exists(), "{} created by {lines:?}", db.display());
    }
    assert!(!missing.exists());

    // --timezone belongs to --from-original.
    let output = command(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        "--timezone",
        "Europe/Berlin",
        text.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the following required arguments were not provided:\n  --from-original"),
        "{stderr}"
    );
    assert!(!db.exists());
}

#[test]
fn a_table_damaged_halfway_imports_nothing_and_leaves_no_new_database() {
    let env = Env::new();
    let file = env.path("internet-monitor.db");
    let mut connection = Connection::open(&file).unwrap();
    connection.execute_batch(SCHEMA).unwrap();
    let transaction = connection.transaction().unwrap();
    for minute in 0..2000 {
        let time = format!(
            "2026-01-{:02} {:02}:{:02}:00.000000",
            1 + minute / 1440,
            (minute / 60) % 24,
            minute % 60
        );
        transaction
            .execute(
                "INSERT INTO results (download, upload, ping, timestamp) VALUES (1e7, 2e6, 10.0, ?1)",
                [time],
            )
            .unwrap();
    }
    transaction.commit().unwrap();
    drop(connection);
    // A page of rows near the end (of 25 pages of 4096 bytes) overwritten: the schema and the
    // first rows still read.
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 21 * 4096, "{} bytes", bytes.len());
    bytes[20 * 4096..21 * 4096].fill(0xff);
    std::fs::write(&file, bytes).unwrap();

    let check = |db: &Path| {
        let (code, lines) = import(db, &file, &[]);
        assert_eq!(code, Some(1), "{lines:?}");
        assert_eq!(lines.len(), 1, "{lines:?}");
        let prefix = format!(
            "internet-monitor: error: cannot read the results table of {} after ",
            file.display()
        );
        assert!(
            lines[0].starts_with(&prefix)
                && lines[0]
                    .ends_with(" rows: database disk image is malformed; nothing was imported"),
            "{lines:?}"
        );
    };
    // A new database is removed again.
    let db = env.db();
    check(&db);
    assert!(!db.exists());
    // An existing one keeps what it had, and no more.
    let good = env.path("good.db");
    original(
        &good,
        &[(real(1e7), 2e6, 10.0, "2025-12-31 23:00:00.000000")],
    );
    assert_eq!(import(&db, &good, &[]).0, Some(0));
    let before = export(&db);
    check(&db);
    assert_eq!(export(&db), before);
}

/// The original tested every 30 minutes by its local clock, so the night the clocks went back
/// it wrote 02:00 and 02:30 twice, first in CEST then in CET (ids in time order): each pass
/// arrives at its own instant, none taken for the other or dropped as already stored.
#[test]
fn the_repeated_hour_of_an_autumn_night_arrives_whole_and_in_order() {
    let env = Env::new();
    let file = env.path("internet-monitor.db");
    let local = [
        "2026-10-25 01:30:07.100000",
        "2026-10-25 02:00:07.200000",
        "2026-10-25 02:30:07.300000",
        "2026-10-25 02:00:07.400000",
        "2026-10-25 02:30:07.500000",
        "2026-10-25 03:00:07.600000",
    ];
    let rows: Vec<_> = local
        .iter()
        .map(|time| (real(12e6), 2e6, 15.0, *time))
        .collect();
    original(&file, &rows);
    let db = env.path("db.redb");
    let (code, lines) = import(&db, &file, &["--timezone", "Europe/Berlin"]);
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(lines[0].starts_with("imported 6 new samples"), "{lines:?}");
    assert!(
        lines[2].contains("id 4 2026-10-25T02:00:07.4 → 2026-10-25T01:00:07.400Z (the later)"),
        "{lines:?}"
    );
    let times: Vec<Value> = export(&db)
        .iter()
        .map(|sample| sample["time"].clone())
        .collect();
    assert_eq!(
        times,
        [
            "2026-10-24T23:30:07.100Z",
            "2026-10-25T00:00:07.200Z",
            "2026-10-25T00:30:07.300Z",
            "2026-10-25T01:00:07.400Z",
            "2026-10-25T01:30:07.500Z",
            "2026-10-25T02:00:07.600Z",
        ]
    );
}

/// A row at a local time that never occurred, moved forward by the gap onto the time of a real
/// row of the file, is not "already stored" in a new database: it is counted and named apart,
/// with the hint that such rows say the zone is probably wrong.
#[test]
fn a_row_moved_by_the_gap_onto_another_rows_time_is_named_not_already_stored() {
    let env = Env::new();
    let file = env.path("internet-monitor.db");
    let rows = [
        (real(12e6), 2e6, 15.0, "2026-03-29 03:30:00"),
        (real(13e6), 2e6, 15.0, "2026-03-29 02:30:00"),
    ];
    original(&file, &rows);
    let db = env.path("db.redb");
    let (code, lines) = import(&db, &file, &["--timezone", "Europe/Berlin"]);
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(
        lines[0].starts_with("imported 1 new samples from the original app's database ")
            && lines[0].contains(
                "(2 rows read, 0 already stored, 1 at the time of an earlier row, 0 skipped)"
            ),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|line| line
            == "1 row not stored: each lands on the time of an earlier row of the file, to the \
                millisecond, which is kept (a row moved by a clock change onto another row's \
                time says the original's clock did not keep this zone: check --timezone): id 2 \
                → 2026-03-29T01:30:00.000Z"),
        "{lines:?}"
    );
    assert_eq!(export(&db).len(), 1);
}

/// The original app (or anything) holding a write lock on its database for longer than the
/// import waits: refused, saying so and what to do, and no database created.
#[test]
fn a_database_locked_by_a_writer_is_named_as_such() {
    let env = Env::new();
    let file = env.path("internet-monitor.db");
    original(&file, &[(real(12e6), 2e6, 15.0, "2026-11-01 12:00:00")]);
    let writer = Connection::open(&file).unwrap();
    writer.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let db = env.db();
    let (code, lines) = import(&db, &file, &["--timezone", "UTC"]);
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(
        lines,
        [format!(
            "internet-monitor: error: {} is locked: a program is writing to it (the original app?); stop it or copy the file, then import again",
            file.display()
        )]
    );
    assert!(!db.exists());
    writer.execute_batch("ROLLBACK").unwrap();
}

/// The original's database given to `import` without `--from-original` is named, with the
/// flag to add, and nothing is created.
#[test]
fn the_originals_database_without_the_flag_names_the_flag() {
    let env = Env::new();
    let file = env.path("internet-monitor.db");
    original(&file, &[(real(12e6), 2e6, 15.0, "2026-11-01 12:00:00")]);
    let db = env.db();
    let output = command(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        file.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("looks like an SQLite database, not samples; the original Python/Flask app's database (internet-monitor.db) is read with `import --from-original FILE --timezone ZONE`"),
        "{said}"
    );
    assert!(!db.exists());
}

/// A file named like an SQLite URI (`file:…`) is read as the file it is, not as the URI of
/// another (`internet-monitor.db` beside it, here empty of rows).
#[test]
fn a_file_named_like_a_uri_is_that_file() {
    let env = Env::new();
    let dir = env.path("");
    original(
        &env.path("file:internet-monitor.db"),
        &[(real(12e6), 2e6, 15.0, "2026-11-01 12:00:00")],
    );
    original(&env.path("internet-monitor.db"), &[]);
    let output = command(&[
        "import",
        "--db",
        "db.redb",
        "--from-original",
        "file:internet-monitor.db",
        "--timezone",
        "UTC",
    ])
    .current_dir(&dir)
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(said.starts_with("imported 1 new samples"), "{said}");
}

/// A database with a hot journal (a writer stopped mid-write, or the files copied then) cannot
/// be read read-only: said so, with what to do, instead of "attempt to write a readonly
/// database".
#[test]
fn a_write_left_unfinished_is_named_with_what_to_do() {
    let env = Env::new();
    let live = env.path("live.db");
    original(&live, &[(real(12e6), 2e6, 15.0, "2026-11-01 12:00:00")]);
    let mut writer = Connection::open(&live).unwrap();
    writer.execute_batch("PRAGMA cache_size = 1").unwrap();
    let transaction = writer.transaction().unwrap();
    for _ in 0..2000 {
        transaction
            .execute(
                "INSERT INTO results (download, upload, ping, timestamp) VALUES (1e7, 1e6, 10, '2026-11-02 12:00:00')",
                [],
            )
            .unwrap();
    }
    // Copied mid-write: the copy's journal is hot, and nobody holds its lock.
    let file = env.path("internet-monitor.db");
    std::fs::copy(&live, &file).unwrap();
    std::fs::copy(
        env.path("live.db-journal"),
        env.path("internet-monitor.db-journal"),
    )
    .unwrap();
    transaction.rollback().unwrap();
    let db = env.db();
    let (code, lines) = import(&db, &file, &["--timezone", "UTC"]);
    assert_eq!(code, Some(1), "{lines:?}");
    assert!(
        lines[0].contains("has a write left unfinished")
            && lines[0].contains("PRAGMA integrity_check"),
        "{lines:?}"
    );
    assert!(!db.exists());
}

/// The original's database given as `--db` (a migrating user keeps the old name) is named as
/// such by every command that opens a database, with the command that reads it, and is left
/// as it was.
#[test]
fn the_originals_database_as_db_is_named_with_the_command_that_reads_it() {
    let env = Env::new();
    let file = env.path("internet-monitor.db");
    original(&file, &[(real(12e6), 2e6, 15.0, "2026-11-01 12:00:00")]);
    let before = std::fs::read(&file).unwrap();
    let db = file.to_str().unwrap();
    let expected = format!(
        "{db} is an SQLite database, not an internet-monitor one (the original Python app's \
         internet-monitor.db?); it was left untouched: bring its history over with \
         `internet-monitor import --from-original {db} --timezone ZONE`"
    );
    for args in [
        &["export", "--db", db][..],
        &["report", "--db", db],
        &["db", "check", "--db", db],
        &["db", "compact", "--db", db],
        &["plan", "show", "--db", db],
        &["serve", "--db", db, "--listen", "127.0.0.1:0"],
    ] {
        let output = command(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
        assert_eq!(std::fs::read(&file).unwrap(), before, "{args:?}");
    }
}
