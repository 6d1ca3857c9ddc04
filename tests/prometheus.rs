//! A real Prometheus server scrapes a real `internet-monitor serve` on loopback.

mod common;

use std::time::{Duration, Instant};

use common::{Prometheus, Server, try_request};

/// The value of an instant query's first sample, once Prometheus has one.
fn query(prometheus: &str, expr: &str) -> Option<String> {
    let response = try_request(prometheus, "GET", &format!("/api/v1/query?query={expr}")).ok()?;
    let body: serde_json::Value = serde_json::from_str(&response.body).ok()?;
    body["data"]["result"][0]["value"][1]
        .as_str()
        .map(str::to_owned)
}

/// Polls until `expr` has a value: the first scrape lands ~5 s after Prometheus starts.
fn wait_for(prometheus: &str, expr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = query(prometheus, expr) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had a value for {expr}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
#[ignore = "needs a Prometheus server (Debian package prometheus); .ci/run installs it and runs the ignored tests"]
fn prometheus_scrapes_the_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("samples.redb");
    let mut exporter = Server::start(common::serve_command(
        &db,
        "ok-1.2-with-loaded-latency",
        &[],
    ));
    exporter.wait_for_log("test succeeded");

    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: internet-monitor\n    \
             static_configs: [{{targets: ['{}']}}]\n",
            exporter.address
        ),
    )
    .unwrap();
    let prometheus = Prometheus::start(&config, dir.path());
    let address = prometheus.address.clone();

    assert_eq!(wait_for(&address, "up"), "1");
    assert_eq!(
        wait_for(&address, "speedtest_download_bytes_per_second"),
        "92727670"
    );
    assert_eq!(wait_for(&address, "speedtest_up"), "1");
}
