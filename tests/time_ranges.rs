//! Time parameters mean one thing everywhere: every endpoint taking `from` and `to` answers a
//! value with the same status, and an empty or inverted range names the ends given and says
//! which end is a default.

mod common;

use common::{Env, Server};

/// The endpoints taking `from` and `to`.
const ENDPOINTS: [&str; 7] = [
    "/api/v1/samples",
    "/api/v1/samples.csv",
    "/api/v1/summary",
    "/api/v1/series",
    "/api/v1/heatmap",
    "/api/v1/outages",
    "/api/v1/latency",
];

#[test]
fn every_endpoint_answers_a_time_parameter_alike() {
    let env = Env::new();
    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let mut table = Vec::new();
    for value in [
        "2030",
        "1999",
        "2026",
        "2030-01-01",
        "7d",
        "bogus",
        "2026-13-01",
        "-5d",
        "0",
        "2026-11",
    ] {
        for parameter in ["from", "to"] {
            let statuses: Vec<(u16, &str)> = ENDPOINTS
                .iter()
                .map(|endpoint| {
                    let response = server.get(&format!("{endpoint}?{parameter}={value}"));
                    (response.status, *endpoint)
                })
                .collect();
            table.push(format!("{parameter}={value}: {statuses:?}"));
        }
    }
    let uneven: Vec<&String> = table
        .iter()
        .filter(|row| {
            let statuses: Vec<&str> = row.split('(').skip(1).map(|s| &s[..3]).collect();
            statuses.iter().any(|s| *s != statuses[0])
        })
        .collect();
    assert!(uneven.is_empty(), "{}", table.join("\n"));
}

#[test]
fn an_inverted_range_names_the_end_given_and_the_default() {
    let env = Env::new();
    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    for endpoint in ENDPOINTS {
        let response = server.get(&format!("{endpoint}?from=2030-01-01"));
        assert_eq!(response.status, 400, "{endpoint}: {}", response.body);
        assert!(
            response.body.contains(
                r#"from=\"2030-01-01\" (2030-01-01T00:00:00.000Z) must be before to (default: now, "#
            ),
            "{endpoint}: {}",
            response.body
        );
        let response = server.get(&format!("{endpoint}?from=2030-01-01&to=2029-01-01"));
        assert_eq!(response.status, 400, "{endpoint}: {}", response.body);
        assert!(
            response
                .body
                .contains(r#"must be before to=\"2029-01-01\" (2029-01-01T00:00:00.000Z)"#),
            "{endpoint}: {}",
            response.body
        );
    }
    let db = env.db();
    let output = common::command(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--from",
        "2030-01-01",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--from (2030-01-01T00:00:00.000Z) must be before --to (")
            && stderr.contains(", now: --to not given)"),
        "{stderr}"
    );
}
