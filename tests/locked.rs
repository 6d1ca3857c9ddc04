//! A database another process holds (serve running): every command that writes to it says
//! another internet-monitor process has it open and what to do; the readers still read it.

mod common;

use common::{Env, Server};

#[test]
fn every_writer_says_who_holds_the_database_and_what_to_do() {
    let env = Env::new();
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let db = env.db();
    let db = db.to_str().unwrap();
    let file = env.path("import.jsonl");
    std::fs::write(&file, "").unwrap();
    let writers: [&[&str]; 6] = [
        &["run-once", "--db", db],
        &["import", "--db", db, file.to_str().unwrap()],
        &["db", "check", "--db", db],
        &["db", "compact", "--db", db],
        &[
            "plan",
            "set",
            "--db",
            db,
            "--download-advertised",
            "100Mbit/s",
        ],
        &["serve", "--db", db, "--listen", "127.0.0.1:0"],
    ];
    for args in writers {
        let output = common::command(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("another internet-monitor process has it open")
                && stderr.contains("stop it, or wait for it to end"),
            "{args:?}: {stderr}"
        );
    }
    let readers: [&[&str]; 4] = [
        &["export", "--db", db],
        &["report", "--db", db],
        &["plan", "show", "--db", db],
        &["plan", "history", "--db", db],
    ];
    for args in readers {
        let output = common::command(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    }
    server.assert_clean_exit();
}
