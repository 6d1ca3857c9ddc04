//! End to end: the dashboard's and the alerts' queries against a real Prometheus scraping a real
//! exporter.

use super::image::glob_match;
use super::rules::scrape_job;
use super::*;

pub(super) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` on Prometheus's API, as JSON.
fn api(prometheus: &str, path: &str) -> Value {
    let response = try_request(prometheus, "GET", path)
        .unwrap_or_else(|err| panic!("Prometheus at {prometheus}: {err}"));
    serde_json::from_str(&response.body)
        .unwrap_or_else(|err| panic!("{path}: not JSON ({err}): {}", response.body))
}

fn instant(prometheus: &str, expr: &str) -> Value {
    api(prometheus, &format!("/api/v1/query?query={}", encode(expr)))
}

/// Polls until `check` accepts the answer to `expr`.
fn wait_until(prometheus: &str, expr: &str, check: impl Fn(&Value) -> bool) {
    let answer = || {
        try_request(
            prometheus,
            "GET",
            &format!("/api/v1/query?query={}", encode(expr)),
        )
        .ok()
        .and_then(|response| serde_json::from_str::<Value>(&response.body).ok())
    };
    if common::poll_within(Duration::from_secs(60), || answer().filter(&check)).is_none() {
        panic!("Prometheus never satisfied {expr}: {:?}", answer());
    }
}

/// Metric names an expression uses that the exporter must serve.
pub(super) fn exporter_metrics(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let word_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if word_char(bytes[start]) && (start == 0 || !word_char(bytes[start - 1])) {
            let end = (start..bytes.len())
                .find(|&i| !word_char(bytes[i]))
                .unwrap_or(bytes.len());
            let word = &expr[start..end];
            let quoted = expr[..start].matches('"').count() % 2 == 1;
            if !quoted
                && ["speedtest_", "internet_monitor_", "process_"]
                    .iter()
                    .any(|prefix| word.starts_with(prefix))
            {
                names.insert(word.to_owned());
            }
            start = end;
        } else {
            start += 1;
        }
    }
    names
}

/// A second scrape target with the connectivity monitor's families, rendered by the exporter's
/// own [`Metrics`] (so the names, labels and encoding are the real ones): every scrape is one
/// healthy probe round of a gateway and two public targets, after a finished outage restored
/// from yesterday. It stands in for `serve`'s probe loop, which needs real targets.
struct ProbeFeeder {
    address: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ProbeFeeder {
    fn start() -> ProbeFeeder {
        use internet_monitor::metrics::Metrics;
        use internet_monitor::probe::minute::MinuteAggregate;
        use internet_monitor::probe::outage::{Outage, OutageKind, Round};
        use internet_monitor::probe::{ProbeMethod, ProbeResult, Target, TargetKind};
        use internet_monitor::time::Timestamp;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let metrics = Metrics::new().unwrap();
        let yesterday = Timestamp::now().saturating_sub(Duration::from_secs(86_400));
        metrics.set_probe_interval(Duration::from_secs(10));
        metrics.restore_outages(&[Outage {
            start: yesterday,
            end: Some(yesterday.saturating_add(Duration::from_secs(95))),
            kind: OutageKind::Isp,
            unmonitored: Duration::ZERO,
            restarts: 0,
        }]);
        let targets = [
            (TargetKind::Gateway, "192.0.2.1"),
            (TargetKind::Public, "198.51.100.1"),
            (TargetKind::Public, "203.0.113.1"),
        ]
        .map(|(kind, address)| Target {
            kind,
            address: address.parse().unwrap(),
            method: ProbeMethod::IcmpUnprivileged,
        });
        std::thread::spawn(move || {
            for (round, stream) in listener.incoming().enumerate() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let at = Timestamp::now();
                for (index, target) in targets.iter().enumerate() {
                    let rtt =
                        Duration::from_micros(1_000 + 9_000 * index as u64 + round as u64 % 7);
                    metrics.observe_probe(target, &ProbeResult { at, rtt: Some(rtt) });
                    let micros = rtt.as_micros() as u64;
                    metrics.observe_probe_minute(
                        target,
                        &MinuteAggregate {
                            minute: at,
                            sent: 6,
                            lost: 0,
                            rtt_min_us: Some(micros),
                            rtt_median_us: Some(micros + 500),
                            rtt_max_us: Some(micros + 4_000),
                            under_load: false,
                        },
                    );
                }
                let up = Round {
                    at,
                    gateway: true,
                    public: true,
                };
                metrics.observe_round(&up, None);
                // The whole request head, or closing on unread bytes resets the connection
                // and the client loses the answer (a single read may return part of it).
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(read) => request.extend_from_slice(&chunk[..read]),
                    }
                }
                let body = metrics.render().unwrap();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    internet_monitor::metrics::CONTENT_TYPE,
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        ProbeFeeder { address, stop }
    }

    /// The exposition it serves, as the exporter's `/metrics` body.
    fn exposition(&self) -> String {
        try_request(&self.address, "GET", "/metrics").unwrap().body
    }
}

impl Drop for ProbeFeeder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.address); // wakes the accept loop
    }
}

#[test]
#[ignore = "needs a Prometheus server (Debian package prometheus) and PyYAML; .ci/run installs them and runs the ignored tests"]
fn dashboard_and_alert_queries_run_against_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("samples.redb");
    // Pushing to a receiver that is not there, so the outbox series the alerts read are served.
    let mut exporter = Server::start(common::serve_command(
        &db,
        "ok-1.2-with-loaded-latency",
        &[
            "--plan-download",
            "500Mbit/s",
            "--plan-upload",
            "50Mbit/s",
            "--remote-write.url",
            "http://127.0.0.1:9/api/v1/write",
        ],
    ));
    exporter.wait_for_log("test succeeded");
    common::eventually_within(
        "the stored run shown pending in the outbox",
        Duration::from_secs(10),
        || {
            exporter
                .get("/metrics")
                .body
                .contains("internet_monitor_remote_write_oldest_pending_age_seconds ")
                .then_some(())
        },
    );

    // Every metric the dashboard and the alerts name is one the exporter serves (the probe
    // families as the probe loop feeds them).
    let feeder = ProbeFeeder::start();
    let exposition = exporter.get("/metrics").body + &feeder.exposition();
    let served: BTreeSet<&str> = exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap())
        .collect();
    let queries: Vec<Query> = dashboard_queries()
        .into_iter()
        .filter(|query| query.file != FLEET_DASHBOARD)
        .collect();
    // The fleet's alerts read what sites push: the fleet test checks those.
    let alerts: Vec<Alert> = alerts()
        .into_iter()
        .filter(|alert| alert.file == RULES)
        .collect();
    let mut unknown = Vec::new();
    for (name, expr) in queries
        .iter()
        .map(|q| (q.name.clone(), q.expr.clone()))
        .chain(
            alerts
                .iter()
                .map(|a| (a.name.clone(), a.rule["expr"].as_str().unwrap().to_owned())),
        )
    {
        for metric in exporter_metrics(&expr) {
            if !served.contains(metric.as_str()) {
                unknown.push(format!("{name}: {metric}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "not served by the exporter:\n{}",
        unknown.join("\n")
    );

    // Prometheus with the deployment's alert rules and scrape job name, scraping every second.
    let deploy_config = yaml(PROMETHEUS_CONFIG);
    let job = scrape_job(&deploy_config)["job_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [repo(RULES)],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [exporter.address, feeder.address]}]}],
        })
        .to_string(),
    )
    .unwrap();
    let server = Prometheus::start(&config, dir.path());
    let prometheus = server.address.clone();

    // Enough scrapes for rates over a few seconds.
    wait_until(&prometheus, "count_over_time(speedtest_up[1m])", |answer| {
        answer["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|n| n >= 6.0)
    });

    let mut failures = Vec::new();
    for query in &queries {
        let expr = substitute(&query.expr);
        let answer = instant(&prometheus, &expr);
        if answer["status"] != "success" {
            failures.push(format!("{}: {expr}\n  {answer}", query.name));
        } else if answer["data"]["result"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            failures.push(format!("{}: no data: {expr}", query.name));
        }
    }
    for alert in &alerts {
        let expr = alert.rule["expr"].as_str().unwrap();
        let answer = instant(&prometheus, expr);
        if answer["status"] != "success" {
            failures.push(format!("alert {}: {expr}\n  {answer}", alert.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The instance variable's query finds this exporter.
    let values = api(
        &prometheus,
        &format!(
            "/api/v1/label/instance/values?{}",
            encode("match[]") + "=" + &encode("internet_monitor_build_info")
        ),
    );
    assert!(
        values["data"]
            .as_array()
            .unwrap()
            .contains(&json!(exporter.address)),
        "{values}"
    );

    // Prometheus loaded and evaluated every alert rule, and a healthy exporter over its plan
    // fires none of them.
    let mut rules = Value::Null;
    let loaded = common::poll_within(Duration::from_secs(30), || {
        rules = api(&prometheus, "/api/v1/rules");
        let loaded: Vec<Value> = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().unwrap())
            .cloned()
            .collect();
        let evaluated = loaded.len() == alerts.len()
            && loaded.iter().all(|rule| {
                rule["health"] == "ok"
                    && rule["lastEvaluation"]
                        .as_str()
                        .is_some_and(|t| !t.starts_with("0001"))
            });
        evaluated.then_some(loaded)
    })
    .unwrap_or_else(|| panic!("rules not loaded and evaluated: {rules}"));
    let active: Vec<&Value> = loaded
        .iter()
        .flat_map(|rule| rule["alerts"].as_array().unwrap())
        .collect();
    assert!(
        active.is_empty(),
        "alerts for a healthy exporter: {active:?}"
    );
}

#[test]
fn expression_metric_names_are_found() {
    assert_eq!(
        exporter_metrics(
            r#"sum by (result) (increase(speedtest_runs_total{instance=~"speedtest_x"}[5m])) / process_start_time_seconds and up"#
        ),
        BTreeSet::from([
            "process_start_time_seconds".to_owned(),
            "speedtest_runs_total".to_owned()
        ])
    );
    assert!(glob_match("*", "target"));
    assert!(!glob_match("*", "deploy/docker"));
    assert!(glob_match("deploy/docker", "deploy/docker"));
    assert!(glob_match("src/*.rs", "src/main.rs"));
}
