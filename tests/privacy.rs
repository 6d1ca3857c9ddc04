//! The client's IP and MAC addresses appear nowhere — metrics, JSON, CSV, exports, logs —
//! unless `--store-ip` asks for them.

mod common;

use common::{Env, Server};

/// The addresses in the fixture's `interface` and `server` objects.
const PRIVATE: [&str; 4] = [
    "192.0.2.3",
    "203.0.113.3",
    "198.51.100.3",
    "00:00:5E:00:53:03",
];

const ENDPOINTS: [&str; 8] = [
    "/metrics",
    "/latest",
    "/last-day",
    "/graph",
    "/api/v1/samples",
    "/api/v1/samples.csv",
    "/api/v1/summary",
    "/healthz",
];

fn serve(env: &Env, extra: &[&str]) -> Server {
    let mut command = env.serve("ok-1.2-with-loaded-latency", "replay", extra);
    command.env("RUST_LOG", "debug");
    Server::start(command)
}

/// Everything a user or an operator can see: every endpoint and the log so far.
fn everything_visible(server: &mut Server) -> String {
    server.wait_for_log("test succeeded");
    let mut seen: String = ENDPOINTS.iter().map(|path| server.get(path).body).collect();
    seen.push_str(&server.seen.join("\n"));
    seen
}

#[test]
fn addresses_are_nowhere_by_default() {
    let env = Env::new();
    let mut server = serve(&env, &[]);
    let seen = everything_visible(&mut server);
    assert!(
        seen.contains("Giganet Limited"),
        "the run is there to be seen"
    );
    drop(server);
    let db = env.db();
    let mut seen = seen;
    for format in ["jsonl", "csv"] {
        let output = common::command(&["export", "--db", db.to_str().unwrap(), "--format", format])
            .output()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    let run_once = common::with_fake("run-once", &db, "ok-1.2-with-loaded-latency", &[])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    seen.push_str(&String::from_utf8_lossy(&run_once.stdout));
    seen.push_str(&String::from_utf8_lossy(&run_once.stderr));
    for address in PRIVATE {
        assert!(!seen.contains(address), "{address} leaked");
    }
}

#[test]
fn store_ip_keeps_the_client_addresses_but_metrics_never_show_them() {
    let env = Env::new();
    let mut server = serve(&env, &["--store-ip"]);
    let seen = everything_visible(&mut server);
    assert!(
        seen.contains("203.0.113.3"),
        "kept and shown in the history when asked for"
    );
    let metrics = server.get("/metrics").body;
    for address in PRIVATE {
        assert!(!metrics.contains(address), "{address} in /metrics");
    }
}
