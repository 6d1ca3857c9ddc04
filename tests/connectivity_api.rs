//! `/api/v1/outages`, `/api/v1/latency`, the `connectivity` part of `/api/v1/summary` and of
//! `report`, on a real store file written through the store's own `write_probes` before the
//! server starts: a real `serve` run in this process on a loopback port (probing off: tests
//! talk to loopback only; tests/connectivity.rs starts the binary), and the HTTP server alone
//! with a running monitor's live state.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

use common::in_process::InProcess;
use common::{Env, PATIENCE, command};
use internet_monitor::probe::outage::{Outage, OutageKind, Run};
use internet_monitor::probe::status::Status;
use internet_monitor::probe::{ProbeMethod, Target, TargetKind};
use internet_monitor::store::Store;
use internet_monitor::store::probes::{ProbeRow, ProbeStats, ProbeWrite};
use internet_monitor::time::Timestamp;
use serde_json::Value;

/// The window the stored history lies in (UTC; Berlin is UTC+1 in November).
const FROM: &str = "2026-11-20T10:00:00Z";
const TO: &str = "2026-11-20T14:00:00Z";

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

/// `serve` on `env`'s store in this process, no test due for an hour, probing off.
fn serve(env: &Env) -> InProcess {
    let mut command = env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]);
    command.env("INTERNET_MONITOR_PROBE_INTERVAL", "0s");
    InProcess::start(command)
}

fn outage(start: &str, end: &str, kind: OutageKind, unmonitored_s: u64) -> Outage {
    Outage {
        start: at(start),
        end: Some(at(end)),
        kind,
        unmonitored: Duration::from_secs(unmonitored_s),
        restarts: u32::from(unmonitored_s > 0),
    }
}

fn stats(target: u32, sent: u32, lost: u32, median_ms: Option<u64>) -> ProbeStats {
    ProbeStats {
        target,
        sent,
        lost,
        rtt_min_us: median_ms.map(|ms| ms * 900),
        rtt_median_us: median_ms.map(|ms| ms * 1000),
        rtt_max_us: median_ms.map(|ms| ms * 1500),
        under_load_minutes: 0,
    }
}

/// Stores a morning of probing on `env`'s database:
/// - runs 10:00–12:00 and 12:10–14:00 (a 10-minute restart gap);
/// - an `isp` outage 11:00–11:10, a `local` one 11:30–11:35, and an `isp` one 11:55–12:20
///   that spans the restart (600 s of it unmonitored, one restart);
/// - minutes 10:00, 10:01 and 10:05 for the gateway and two public targets.
///
/// Monitored 13 800 s, unmonitored 600 s; isp down 600 + 300 + 600 = 1500 s;
/// availability (13 800 − 1500) / 13 800.
fn store_history(env: &Env) {
    let store = Store::open(&env.db()).expect("open the store");
    let address = |last| IpAddr::V4(Ipv4Addr::new(192, 0, 2, last));
    let targets = store
        .register_probe_targets(&[
            Target {
                kind: TargetKind::Gateway,
                address: address(1),
                method: ProbeMethod::IcmpUnprivileged,
            },
            Target {
                kind: TargetKind::Public,
                address: address(10),
                method: ProbeMethod::IcmpUnprivileged,
            },
            Target {
                kind: TargetKind::Public,
                address: address(11),
                method: ProbeMethod::TcpConnect { port: 443 },
            },
        ])
        .expect("register the targets");
    let [gateway, first, second] = [0, 1, 2].map(|i| targets[i].id);
    let minute = |time: &str, stats: Vec<ProbeStats>| ProbeRow {
        start: at(time),
        minutes: 1,
        stats,
    };
    let writes = [
        ProbeWrite {
            minute: Some(minute(
                "2026-11-20T10:00:00Z",
                vec![
                    stats(gateway, 6, 0, Some(1)),
                    stats(first, 6, 0, Some(10)),
                    stats(second, 6, 1, Some(20)),
                ],
            )),
            outages: vec![],
            run: Some(Run {
                start: at("2026-11-20T10:00:00Z"),
                end: Some(at("2026-11-20T10:01:00Z")),
            }),
        },
        ProbeWrite {
            minute: Some(minute(
                "2026-11-20T10:01:00Z",
                vec![stats(first, 6, 3, Some(30)), stats(second, 6, 0, Some(22))],
            )),
            outages: vec![],
            run: None,
        },
        ProbeWrite {
            minute: Some(minute(
                "2026-11-20T10:05:00Z",
                vec![stats(first, 6, 6, None)],
            )),
            outages: vec![
                outage(
                    "2026-11-20T11:00:00Z",
                    "2026-11-20T11:10:00Z",
                    OutageKind::Isp,
                    0,
                ),
                outage(
                    "2026-11-20T11:30:00Z",
                    "2026-11-20T11:35:00Z",
                    OutageKind::Local,
                    0,
                ),
            ],
            run: Some(Run {
                start: at("2026-11-20T10:00:00Z"),
                end: Some(at("2026-11-20T12:00:00Z")),
            }),
        },
        ProbeWrite {
            minute: None,
            outages: vec![outage(
                "2026-11-20T11:55:00Z",
                "2026-11-20T12:20:00Z",
                OutageKind::Isp,
                600,
            )],
            run: Some(Run {
                start: at("2026-11-20T12:10:00Z"),
                end: Some(at("2026-11-20T14:00:00Z")),
            }),
        },
    ];
    for write in &writes {
        store.write_probes(write).expect("write probes");
    }
}

fn close(actual: &Value, expected: f64) -> bool {
    actual.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

#[test]
fn an_empty_store_answers_the_contract_shapes() {
    let env = Env::new();
    let server = serve(&env);
    let outages = server.get("/api/v1/outages");
    assert_eq!(outages.status, 200, "{}", outages.body);
    let body = outages.json();
    for key in [
        "from",
        "to",
        "monitored_seconds",
        "unmonitored_seconds",
        "availability",
        "outages",
        "unmonitored",
        "probing",
    ] {
        assert!(body.get(key).is_some(), "{key} in {body}");
    }
    assert_eq!(body["availability"], Value::Null, "nothing monitored");
    assert_eq!(body["probing"], Value::Null, "probing is off");
    assert_eq!(body["outages"], serde_json::json!([]));
    let from = at(body["from"].as_str().unwrap());
    let to = at(body["to"].as_str().unwrap());
    assert_eq!(to.duration_since(from), Duration::from_secs(7 * 86_400));
    assert!(
        close(&body["unmonitored_seconds"], 7.0 * 86_400.0),
        "{body}"
    );
    assert_eq!(body["unmonitored"].as_array().unwrap().len(), 1, "{body}");

    let latency = server.get("/api/v1/latency");
    assert_eq!(latency.status, 200, "{}", latency.body);
    let body = latency.json();
    assert_eq!(body["step_seconds"], 120, "a day in at most 720 steps");
    assert_eq!(body["time"], serde_json::json!([]));
    assert_eq!(body["targets"], serde_json::json!([]));

    let summary = server.get("/api/v1/summary?window=1d").json();
    let connectivity = &summary["connectivity"];
    assert_eq!(connectivity["availability"], Value::Null, "{summary}");
    assert_eq!(connectivity["outages"]["isp"]["count"], 0);
    assert_eq!(connectivity["peak_hours"]["start_hour"], 19);
    assert_eq!(connectivity["peak_hours"]["source"], "default");
    let db = env.db();
    for format in ["text", "html"] {
        let output = command(&["report", "--db", db.to_str().unwrap(), "--format", format])
            .output()
            .expect("run report");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.contains("onnectivity monitor") && stdout.contains("did not run in this window"),
            "{format}: {stdout}"
        );
    }
    let fcc = server.get("/api/v1/summary?window=1d&rules=us-fcc").json();
    let peak = &fcc["connectivity"]["peak_hours"];
    assert_eq!(
        (&peak["start_hour"], &peak["source"]),
        (&18.into(), &"rule set".into())
    );
}

#[test]
fn bad_parameters_are_400s_naming_them() {
    let env = Env::new();
    let server = serve(&env);
    for (path, named) in [
        ("/api/v1/outages?from=soon", "invalid from"),
        ("/api/v1/outages?to=x", "invalid to"),
        ("/api/v1/outages?from=1d&to=2d", "invalid from and to"),
        (
            "/api/v1/outages?step=1m",
            "unknown query parameter \"step\"",
        ),
        ("/api/v1/latency?step=30s", "invalid step"),
        ("/api/v1/latency?step=90s", "invalid step"),
        ("/api/v1/latency?from=30d&step=1m", "invalid step"),
        (
            "/api/v1/latency?step=1m&step=2m",
            "\"step\" is given more than once",
        ),
    ] {
        let answer = server.get(path);
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(error.contains(named), "{path}: {error}");
    }
}

/// `GET path` accepting gzip: the head (lower case) and the raw body.
fn get_gzipped(address: &str, path: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    (head, raw[split + 4..].to_vec())
}

#[test]
fn answers_are_gzipped_for_clients_that_accept_it() {
    // Answers under 256 bytes are sent as they are; the stored history makes them longer.
    let env = Env::new();
    store_history(&env);
    let server = serve(&env);
    for path in [
        format!("/api/v1/outages?from={FROM}&to={TO}"),
        format!("/api/v1/latency?from={FROM}&to={TO}"),
    ] {
        let plain = server.get(&path);
        assert_eq!(plain.status, 200, "{path}");
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        let (head, body) = get_gzipped(&server.address, &path);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("\r\ncontent-encoding: gzip"), "{head}");
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut decoded)
            .expect("gzip");
        assert_eq!(decoded, plain.body, "{path}");
    }
}

#[test]
fn stored_outages_runs_and_minutes_are_answered_as_computed_by_hand() {
    let env = Env::new();
    store_history(&env);
    let server = serve(&env);
    let answer = server.get(&format!("/api/v1/outages?from={FROM}&to={TO}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert!(close(&body["monitored_seconds"], 13_800.0), "{body}");
    assert!(close(&body["unmonitored_seconds"], 600.0), "{body}");
    assert!(close(&body["availability"], 12_300.0 / 13_800.0), "{body}");
    assert_eq!(
        body["unmonitored"],
        serde_json::json!([{"start": "2026-11-20T12:00:00.000Z", "end": "2026-11-20T12:10:00.000Z"}])
    );
    let outages = body["outages"].as_array().expect("a list");
    let kinds: Vec<&str> = outages
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["isp", "local", "isp"], "{body}");
    let spanning = &outages[2];
    assert_eq!(spanning["start"], "2026-11-20T11:55:00.000Z");
    assert_eq!(spanning["end"], "2026-11-20T12:20:00.000Z");
    assert_eq!(spanning["ongoing"], false);
    assert!(close(&spanning["duration_seconds"], 1500.0), "{spanning}");
    assert!(close(&spanning["down_seconds"], 900.0), "{spanning}");
    assert!(close(&spanning["unmonitored_seconds"], 600.0), "{spanning}");
    assert_eq!(spanning["restarts"], 1);

    // A window ending inside the last outage lists it whole and clips the figures.
    let clipped = server
        .get("/api/v1/outages?from=2026-11-20T11:00:00Z&to=2026-11-20T12:15:00Z")
        .json();
    assert!(close(&clipped["monitored_seconds"], 3900.0), "{clipped}");
    assert!(
        close(&clipped["availability"], (3900.0 - 600.0 - 600.0) / 3900.0),
        "isp down 11:00–11:10, 11:55–12:00 and 12:10–12:15: {clipped}"
    );
    assert!(close(&clipped["outages"][2]["duration_seconds"], 1500.0));

    let latency = server
        .get("/api/v1/latency?from=2026-11-20T10:00:00Z&to=2026-11-20T10:10:00Z&step=5m")
        .json();
    let start = at(FROM).as_millis() / 1000;
    assert_eq!(latency["step_seconds"], 300);
    assert_eq!(latency["time"], serde_json::json!([start, start + 300]));
    let targets = latency["targets"].as_array().expect("a list");
    let names: Vec<(&str, &str, &str)> = targets
        .iter()
        .map(|t| {
            (
                t["address"].as_str().unwrap(),
                t["kind"].as_str().unwrap(),
                t["method"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("192.0.2.1", "gateway", "icmp-unprivileged"),
            ("192.0.2.10", "public", "icmp-unprivileged"),
            ("192.0.2.11", "public", "tcp-connect:443"),
        ]
    );
    let first = &targets[1];
    assert_eq!(first["sent"], serde_json::json!([12, 6]));
    assert_eq!(first["lost"], serde_json::json!([3, 6]));
    assert_eq!(first["loss_ratio"], serde_json::json!([0.25, 1.0]));
    assert_eq!(
        first["rtt_median_ms"],
        serde_json::json!([10.0, null]),
        "lower middle"
    );
    assert_eq!(first["rtt_max_ms"], serde_json::json!([45.0, null]));
    assert_eq!(first["under_load"], serde_json::json!([false, false]));
    assert_eq!(targets[0]["sent"], serde_json::json!([6, 0]));

    // The summary of the same window: 10:00Z is 11:00 in Berlin, outside 19–23, so the
    // peak is empty and all hours hold the public targets' minutes.
    let summary = server
        .get(&format!("/api/v1/summary?from={FROM}&to={TO}"))
        .json();
    let connectivity = &summary["connectivity"];
    assert!(close(&connectivity["availability"], 12_300.0 / 13_800.0));
    assert_eq!(connectivity["outages"]["isp"]["count"], 2);
    assert!(close(
        &connectivity["outages"]["isp"]["down_seconds"],
        1500.0
    ));
    assert_eq!(connectivity["outages"]["local"]["count"], 1);
    assert!(close(
        &connectivity["outages"]["local"]["down_seconds"],
        300.0
    ));
    assert_eq!(
        connectivity["longest_isp_outage"]["start"],
        "2026-11-20T11:55:00.000Z"
    );
    let all = &connectivity["peak_hours"]["all_hours"];
    assert_eq!(
        (&all["sent"], &all["lost"]),
        (&30.into(), &10.into()),
        "{all}"
    );
    assert_eq!(all["rtt_median_ms"]["p50"], 20.0, "{all}");
    assert_eq!(connectivity["peak_hours"]["peak"]["sent"], 0);
}

#[test]
fn report_shows_connectivity_as_text_and_json() {
    let env = Env::new();
    store_history(&env);
    let db = env.db();
    let db = db.to_str().unwrap();
    let report = |format: &str| -> String {
        let output = command(&[
            "report", "--db", db, "--from", FROM, "--to", TO, "--format", format,
        ])
        .output()
        .expect("run report");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let text = report("text");
    assert!(text.contains("Connectivity"), "{text}");
    assert!(text.contains("availability:"), "{text}");
    let json: Value = serde_json::from_str(&report("json")).expect("JSON");
    let connectivity = &json["connectivity"];
    assert!(connectivity.get("availability").is_some(), "{json}");
    assert!(connectivity["peak_hours"]["start_hour"].is_u64());
    assert!(
        close(&connectivity["availability"], 12_300.0 / 13_800.0),
        "{connectivity}"
    );
    assert_eq!(connectivity["outages"]["isp"]["count"], 2);
    assert!(text.contains("availability:    89.130 %"), "{text}");
    assert!(text.contains("isp outages:     2, 1500 s down"), "{text}");
    assert_eq!(json["outages"].as_array().map(Vec::len), Some(3), "{json}");
    let html = report("html");
    let section = html
        .split("<h2>Connectivity between the tests</h2>")
        .nth(1)
        .expect("the connectivity section");
    let section = section.split("<h2>").next().unwrap_or_default();
    assert!(section.contains("89.130 %"), "{section}");
    assert_eq!(section.matches("<td>isp</td>").count(), 2, "{section}");
    assert_eq!(section.matches("<td>local</td>").count(), 1, "{section}");
}

/// A server in this process whose state has a running monitor ([`Status`]): its run counts
/// as monitored up to now and its ongoing outage is the live one. Returns the address and
/// the sender that stops it.
fn serve_in_process(
    store: Store,
    status: Status,
) -> (
    String,
    tokio::sync::watch::Sender<bool>,
    std::thread::JoinHandle<()>,
) {
    use internet_monitor::daemon::state::AppState;
    use internet_monitor::http::AllowedHosts;
    use internet_monitor::metrics::Metrics;
    use internet_monitor::speedtest::runner::OoklaConfig;
    use internet_monitor::speedtest::{EngineConfig, Runner};
    use std::sync::Arc;

    // An engine that is never started: no scheduler runs in this process.
    let engine = EngineConfig::Ookla(OoklaConfig {
        binary: "/nonexistent/speedtest".into(),
        timeout: Duration::from_secs(1),
        server_id: None,
        extra_args: Vec::new(),
        parse: internet_monitor::speedtest::ookla::ParseOptions {
            store_ip: false,
            max_bytes_per_second: 1e12,
        },
        output_limit: 1024,
    });
    let mut state = AppState::new(
        Arc::new(store),
        Metrics::new().expect("metrics"),
        Runner::new(engine),
        None,
        None,
        None,
    )
    .expect("the state");
    state.probes = Some(Arc::new(status));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("non-blocking");
    let address = listener.local_addr().expect("an address").to_string();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
            internet_monitor::http::serve(
                listener,
                Arc::new(state),
                16,
                AllowedHosts::new(["localhost"]),
                None,
                false,
                stopped,
            )
            .await;
        });
    });
    (address, stop, server)
}

#[test]
fn the_running_monitor_counts_up_to_now_with_its_live_outage_and_settings() {
    let env = Env::new();
    let now = Timestamp::now();
    let run_start = now.saturating_sub(Duration::from_secs(300));
    let outage_start = now.saturating_sub(Duration::from_secs(120));
    let store = Store::open(&env.db()).expect("open the store");
    let targets = store
        .register_probe_targets(&[
            Target {
                kind: TargetKind::Gateway,
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                method: ProbeMethod::TcpConnect { port: 53 },
            },
            Target {
                kind: TargetKind::Public,
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                method: ProbeMethod::TcpConnect { port: 443 },
            },
        ])
        .expect("register the targets");
    let stored = Outage {
        start: outage_start,
        end: None,
        kind: OutageKind::Isp,
        unmonitored: Duration::ZERO,
        restarts: 0,
    };
    // The heartbeat a minute after the start is all the store knows of this run.
    store
        .write_probes(&ProbeWrite {
            minute: None,
            outages: vec![stored],
            run: Some(Run {
                start: run_start,
                end: Some(run_start.saturating_add(Duration::from_secs(60))),
            }),
        })
        .expect("write probes");
    let status = Status::new(
        run_start,
        Duration::from_secs(10),
        ProbeMethod::TcpConnect { port: 0 },
        "no ICMP socket allowed (test)".to_owned(),
        targets,
        Some(Outage {
            restarts: 1,
            ..stored
        }),
    );
    let (address, stop, server) = serve_in_process(store, status);
    let from = run_start.saturating_sub(Duration::from_secs(60));
    let answer = common::request(&address, "GET", &format!("/api/v1/outages?from={from}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    let monitored = body["monitored_seconds"].as_f64().expect("a number");
    assert!(monitored >= 300.0, "the live run counts up to now: {body}");
    assert!(close(&body["unmonitored_seconds"], 60.0), "{body}");
    let outage = &body["outages"][0];
    assert_eq!(outage["ongoing"], true, "{body}");
    assert_eq!(outage["end"], Value::Null);
    assert_eq!(
        outage["restarts"], 1,
        "the live outage, not the stored copy"
    );
    let down = outage["down_seconds"].as_f64().expect("a number");
    assert!(down >= 120.0, "{outage}");
    let availability = body["availability"].as_f64().expect("a share");
    assert!(
        (availability - (monitored - down) / monitored).abs() < 1e-6,
        "{body}"
    );
    let probing = &body["probing"];
    assert_eq!(probing["interval_seconds"], 10.0);
    assert_eq!(probing["method"], "tcp-connect");
    assert_eq!(probing["method_reason"], "no ICMP socket allowed (test)");
    assert_eq!(
        probing["targets"],
        serde_json::json!([
            {"address": "192.0.2.1", "kind": "gateway", "method": "tcp-connect:53"},
            {"address": "192.0.2.10", "kind": "public", "method": "tcp-connect:443"},
        ])
    );
    stop.send(true).expect("stop the server");
    server.join().expect("the server thread");
}

/// The README's `curl … | jq …` examples under "Outages and availability", run with the real
/// `jq` on the answers of a store holding an isp outage: each filter must run and print.
#[test]
#[ignore = "needs jq (Debian jq); .ci/run installs it and runs the ignored tests"]
fn the_readme_jq_examples_run_on_the_answers() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("#### Outages and availability")
        .nth(1)
        .expect("the section");
    let examples: Vec<(&str, &str)> = section
        .lines()
        .take_while(|line| !line.starts_with("#"))
        .filter_map(|line| {
            let rest = line.strip_prefix("curl -s 'http://localhost:5000")?;
            let (url, rest) = rest.split_once('\'')?;
            let filter = rest.trim().strip_prefix("| jq '")?.strip_suffix('\'')?;
            Some((url, filter))
        })
        .collect();
    assert_eq!(
        examples.len(),
        2,
        "the outages and latency examples: {examples:?}"
    );
    let env = Env::new();
    store_history(&env);
    let server = serve(&env);
    for (url, filter) in examples {
        // The stored history's window in place of the example's age.
        let path = url.split('?').next().expect("a path");
        let step = if url.contains("step=") {
            "&step=5m"
        } else {
            ""
        };
        let answer = server.get(&format!("{path}?from={FROM}&to={TO}{step}"));
        assert_eq!(answer.status, 200, "{url}: {}", answer.body);
        let mut jq = std::process::Command::new("jq")
            .arg(filter)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("jq runs: install Debian's jq (apt-get install jq); .ci/run does");
        jq.stdin
            .take()
            .expect("stdin")
            .write_all(answer.body.as_bytes())
            .expect("to jq");
        let output = jq.wait_with_output().expect("jq's output");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "README's jq '{filter}' on {path}: {}\n{printed}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!printed.trim().is_empty(), "jq '{filter}' printed nothing");
        if path.ends_with("outages") {
            assert!(printed.contains("\"isp\""), "the isp outages: {printed}");
        }
    }
}
