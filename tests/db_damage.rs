//! The database file: damage is detected and reported, never a panic and never silently
//! changed evidence; files of earlier versions still open.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::Env;

const STORE_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/store-fixtures");

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
    let expected =
        std::fs::read_to_string(Path::new(STORE_FIXTURES).join("format-v1.jsonl")).unwrap();
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
    let expected =
        std::fs::read_to_string(Path::new(STORE_FIXTURES).join("format-v1.jsonl")).unwrap();
    let exported = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        exported,
        format!("{expected}{}", String::from_utf8_lossy(&run.stdout)),
        "the old samples as they were, then the new one"
    );
}
