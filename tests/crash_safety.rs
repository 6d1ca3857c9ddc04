//! SIGKILL at random moments: every sample that was acknowledged (printed by `run-once`, which
//! prints only after the durable commit, or served by `serve`) is still there, and the file
//! always opens again.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use common::{Env, Server, try_request};
use internet_monitor::store::{Store, StoreError};
use internet_monitor::time::Timestamp;

const KILLS: u32 = 100;

/// Opens the store once no process holds it. A kill that lands while `run-once` is starting the
/// CLI leaves the forked child holding the file until it execs (a few milliseconds), so a
/// lock may outlive the killed process briefly; anything but that is a failed open.
fn open_when_released(db: &std::path::Path, round: u32) -> Store {
    common::eventually_within(
        &format!("round {round}: the store released"),
        Duration::from_secs(5),
        || match Store::open(db) {
            Ok(store) => Some(store),
            Err(StoreError::Locked { .. }) => None,
            Err(err) => panic!("round {round}: the file does not open: {err}"),
        },
    )
}

#[test]
fn killed_runs_lose_nothing_that_was_acknowledged() {
    let env = Env::new();
    let db = env.db();
    let mut random = common::Lcg(0x5eed);
    let mut acknowledged: Vec<Timestamp> = Vec::new();
    let mut killed_before_ack = 0;
    for round in 0..KILLS {
        let mut child = common::with_fake("run-once", &db, "ok-1.2-no-packet-loss", &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Anywhere from before the store is open to after the commit and the print.
        std::thread::sleep(Duration::from_micros(random.below(80_000)));
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        let printed = String::from_utf8_lossy(&output.stdout);
        match printed
            .lines()
            .next()
            .map(serde_json::from_str::<serde_json::Value>)
        {
            Some(Ok(sample)) => {
                let time = sample["time"]
                    .as_str()
                    .and_then(Timestamp::parse_rfc3339)
                    .unwrap();
                acknowledged.push(time);
            }
            _ => killed_before_ack += 1,
        }
        let store = open_when_released(&db, round);
        for time in &acknowledged {
            let found = store
                .range(*time, Timestamp::from_millis(time.as_millis() + 1))
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(
                found.len(),
                1,
                "round {round}: acknowledged sample {time} is lost"
            );
        }
    }
    eprintln!(
        "{KILLS} kills: {} acknowledged before the kill, {killed_before_ack} killed earlier; 0 lost, 0 failed opens",
        acknowledged.len()
    );
    assert!(
        !acknowledged.is_empty() && killed_before_ack > 0,
        "kills landed on both sides of the commit"
    );
}

/// The same for `serve`, restarted on the same file after each kill: runs are started through
/// the API as fast as it takes them, and a sample counts as acknowledged once
/// `/api/v1/samples` listed it. A serve that cannot open the file fails `Server::start`.
#[test]
fn killed_servers_lose_nothing_that_was_served() {
    let env = Env::new();
    let db = env.db();
    let mut random = common::Lcg(0x5e7e);
    let mut served: BTreeSet<String> = BTreeSet::new();
    let mut accepted: u64 = 0;
    let mut stored = 0;
    for round in 0..KILLS {
        let mut server = Server::start(env.serve(
            "ok-1.2-no-packet-loss",
            "replay",
            &[
                "--start-delay",
                "1h",
                "--enable-run-endpoint",
                "--min-manual-gap",
                "0s",
            ],
        ));
        let mut start_run = || {
            // Refusals are fine: only what was listed counts as acknowledged.
            let response = try_request(&server.address, "POST", "/api/v1/run");
            accepted += u64::from(response.is_ok_and(|r| r.status == 202));
        };
        for _ in 0..random.below(3) {
            start_run();
            // Random timing between runs is the scenario, not synchronisation.
            std::thread::sleep(Duration::from_micros(random.below(20_000)));
            if let Ok(page) = try_request(&server.address, "GET", "/api/v1/samples?limit=10000") {
                let page: serde_json::Value = serde_json::from_str(&page.body).unwrap_or_default();
                for sample in page["samples"].as_array().into_iter().flatten() {
                    served.extend(sample["time"].as_str().map(str::to_owned));
                }
            }
        }
        // A run in flight, killed anywhere from spawning the CLI to after its commit.
        start_run();
        std::thread::sleep(Duration::from_micros(random.below(30_000)));
        common::signal(server.pid(), libc::SIGKILL);
        assert!(
            server.wait(Duration::from_secs(5)).is_some(),
            "round {round}: still running after SIGKILL"
        );
        let store = open_when_released(&db, round);
        for time in &served {
            let time = Timestamp::parse_rfc3339(time).unwrap();
            let found = store
                .range(time, Timestamp::from_millis(time.as_millis() + 1))
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(
                found.len(),
                1,
                "round {round}: served sample {time} is lost"
            );
        }
        stored = store.len().unwrap();
    }
    eprintln!(
        "{KILLS} kills of serve: {accepted} runs accepted, {stored} stored, {} of them served before a kill; 0 lost, 0 failed opens",
        served.len()
    );
    assert!(!served.is_empty(), "samples were served before kills");
    assert!(
        stored < accepted,
        "some kills landed while a run was in flight"
    );
}

#[test]
fn export_reads_a_database_whose_writer_was_killed() {
    let env = Env::new();
    let db = env.db();
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &[]));
    server.wait_for_log("test succeeded");
    common::signal(server.pid(), libc::SIGKILL);
    assert!(server.wait(Duration::from_secs(5)).is_some(), "killed");
    let export = common::command(&["export", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        export.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 1);
}
