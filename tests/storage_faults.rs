//! Storage faults: a truncated file is refused and left alone; a full disk at runtime is
//! counted and logged, and the service recovers when space returns.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, Server};

fn run_once(db: &Path) -> std::process::Output {
    common::with_fake("run-once", db, "ok-1.2-pretty", &[])
        .output()
        .unwrap()
}

#[test]
fn a_truncated_database_is_refused_and_left_as_it_is() {
    let env = Env::new();
    let db = env.db();
    for _ in 0..3 {
        assert_eq!(run_once(&db).status.code(), Some(0));
    }
    let whole = std::fs::read(&db).unwrap();
    for cut in [4096, 100] {
        std::fs::write(&db, &whole[..cut]).unwrap();
        for output in [
            run_once(&db),
            common::command(&["export", "--db", db.to_str().unwrap()])
                .output()
                .unwrap(),
            common::command(&[
                "serve",
                "--db",
                db.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap(),
        ] {
            assert_eq!(output.status.code(), Some(1));
            let message = String::from_utf8_lossy(&output.stderr);
            assert!(
                message.starts_with(&format!("internet-monitor: error: database {} is damaged (", db.display()))
                    && message.ends_with("); it was left as it is: restore it from a backup or an export, or pass another --db\n"),
                "{message}"
            );
            assert_eq!(
                std::fs::read(&db).unwrap(),
                &whole[..cut],
                "the file is untouched"
            );
        }
    }
}

/// A small tmpfs, unmounted however the test ends.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf) -> SmallDisk {
        std::fs::create_dir_all(&at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(&at)
            .status()
            .expect("mount(8) must be available");
        assert!(
            status.success(),
            "this test needs root to mount a small tmpfs (a full disk on demand)"
        );
        SmallDisk(at)
    }

    /// Fills every free byte, like another program filling the disk.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while std::io::Write::write_all(&mut file, &block).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn metric(server: &Server, name: &str) -> u64 {
    let body = server.get("/metrics").body;
    body.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in\n{body}"))
}

#[test]
fn a_full_disk_is_counted_logged_and_recovered_from() {
    let env = Env::new();
    let disk = SmallDisk::mount(env.path("disk"));
    let db = disk.0.join("samples.redb");
    let mut server = Server::start(common::serve_command(
        &db,
        "ok-1.2-pretty",
        &["--interval", "50ms"],
    ));
    server.wait_for_log("test succeeded");

    let filler = disk.fill();
    let line = server.wait_for_log("could not be stored");
    assert!(line.contains("No space left on device"), "{line}");
    assert!(metric(&server, "internet_monitor_store_errors_total") > 0);
    assert!(server.is_running(), "a full disk does not stop the service");

    std::fs::remove_file(filler).unwrap();
    // Recovered once a sample is stored again: the count of stored samples moves on.
    let stored_before = metric(&server, "internet_monitor_samples");
    common::eventually("a sample stored after space returned", || {
        (metric(&server, "internet_monitor_samples") > stored_before).then_some(())
    });
    assert_eq!(server.get("/healthz").status, 200);
    drop(server);
}

/// Runs `command` to its end, failing the test (and killing it) if it has not ended within
/// [`common::PATIENCE`]: a command that blocks forever must fail, not hang the suite.
fn output_within_patience(mut command: Command, what: &str) -> std::process::Output {
    let child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match ended.recv_timeout(common::PATIENCE) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            common::signal(pid, libc::SIGKILL);
            panic!("{what} still runs after {:?}: it hangs", common::PATIENCE);
        }
    }
}

/// Every command that takes --db, with `db` as --db.
fn every_command(env: &Env, db: &Path) -> Vec<(&'static str, Command)> {
    let arg = db.to_str().unwrap();
    let none = env.path("none.jsonl");
    std::fs::write(&none, "").unwrap();
    vec![
        ("export", common::command(&["export", "--db", arg])),
        ("report", common::command(&["report", "--db", arg])),
        (
            "run-once",
            common::with_fake("run-once", db, "ok-1.2-pretty", &[]),
        ),
        (
            "import",
            common::command(&["import", "--db", arg, none.to_str().unwrap()]),
        ),
        (
            "serve",
            common::serve_command(db, "ok-1.2-pretty", &["--listen", "127.0.0.1:0"]),
        ),
        ("db check", common::command(&["db", "check", "--db", arg])),
        (
            "db compact",
            common::command(&["db", "compact", "--db", arg]),
        ),
    ]
}

#[test]
fn a_fifo_at_db_is_refused_by_every_command_without_hanging() {
    let env = Env::new();
    let fifo = env.path("fifo.redb");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    for (what, command) in every_command(&env, &fifo) {
        let output = output_within_patience(command, what);
        assert_eq!(output.status.code(), Some(1), "{what}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!(
                "internet-monitor: error: {} is not a regular file (a FIFO, a directory or a device); it was left untouched: pass the path of a database file, or of one to create, as --db\n",
                fifo.display()
            ),
            "{what}"
        );
    }
}

#[test]
fn db_check_and_compact_never_create_or_convert_a_file() {
    let env = Env::new();
    let empty = env.db();
    std::fs::write(&empty, b"").unwrap();
    let missing = env.path("missing.redb");
    for action in ["check", "compact"] {
        let output = common::command(&["db", action, "--db", empty.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "db {action}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!(
                "internet-monitor: error: database {} is empty: there is no database to check or compact in it; it was left as it is (run-once, import or serve creates one in it)\n",
                empty.display()
            )
        );
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "db {action}");
        let output = common::command(&["db", action, "--db", missing.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "db {action}");
        assert!(!missing.exists(), "db {action} created a file");
    }
}
