//! `import` of files made to hurt it: a line without end (`/dev/zero`, a file without a
//! newline) is refused once a bounded part of it has been read, and an original-app database
//! whose `results` is a view or a virtual table (rows computed when read: without end, or a
//! gigabyte each, from a file of a few KB) is refused before anything is read; each leaves the
//! existing database untouched and no new one behind.

mod common;

use std::path::Path;

use common::{Env, command};

/// `import --db DB ARGS…`: exit code and stderr.
fn import(db: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["import", "--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = command(&all).output().expect("run import");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_line_longer_than_any_sample_is_refused_without_reading_it_whole() {
    let env = Env::new();
    let file = env.path("no-newline.jsonl");
    // 9 MiB without a newline: twice the longest line import reads, and more.
    std::fs::write(&file, vec![b' '; 9 << 20]).unwrap();
    let (code, stderr) = import(&env.db(), &[file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("line 1: longer than 4 MiB without a newline: not a sample"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert!(!env.db().exists(), "a failed import left a new database");
}

#[test]
fn dev_zero_is_refused_and_leaves_no_database() {
    let env = Env::new();
    let (code, stderr) = import(&env.db(), &["/dev/zero"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("longer than 4 MiB"), "{stderr}");
    assert!(!env.db().exists(), "a failed import left a new database");
}

#[cfg(feature = "original")]
mod original {
    use super::*;

    /// A database whose `results` has the original's columns but is made by `create`.
    fn database(path: &Path, create: &str) {
        let connection = rusqlite::Connection::open(path).unwrap();
        connection.execute_batch(create).unwrap();
    }

    fn refused(create: &str, what: &str) {
        let env = Env::new();
        let file = env.path("original.db");
        database(&file, create);
        let (code, stderr) = import(
            &env.db(),
            &[
                "--from-original",
                file.to_str().unwrap(),
                "--timezone",
                "UTC",
            ],
        );
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "original.db's results is a {what}, not a table: it is not the original internet-monitor's database"
            )),
            "{stderr}"
        );
        assert!(!env.db().exists(), "a refused import left a new database");
    }

    #[test]
    fn a_view_named_results_is_refused() {
        // Finite here, so that the import before this check ended (with exit status 0); a
        // recursive view answers without end, and a value of `hex(zeroblob(N))` takes 2N bytes.
        refused(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, d FLOAT, u FLOAT, p FLOAT, ts TEXT);
             INSERT INTO t VALUES (1, 1e6, 1e6, 10, '2022-02-25 11:43:08');
             CREATE VIEW results AS
                 SELECT id, d AS download, u AS upload, p AS ping, ts AS timestamp FROM t;",
            "view",
        );
    }

    #[test]
    fn a_virtual_table_named_results_is_refused() {
        refused(
            "CREATE VIRTUAL TABLE results USING fts5(id, download, upload, ping, timestamp);
             INSERT INTO results VALUES (1, 1e6, 1e6, 10, '2022-02-25 11:43:08');",
            "virtual table",
        );
    }
}
