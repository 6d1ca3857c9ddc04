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

/// `export --format openmetrics` backfills Prometheus: `promtool tsdb create-blocks-from
/// openmetrics` accepts the export and the blocks hold each run's figures at the run's own
/// time (read back with `promtool tsdb dump`).
#[test]
#[ignore = "needs promtool (Debian package prometheus); .ci/run installs it and runs the ignored tests"]
fn an_openmetrics_export_backfills_prometheus_blocks() {
    let env = common::Env::new();
    env.import(&[
        serde_json::json!({
            "time": "2026-11-29T10:00:00.123Z", "outcome": "success", "reason": null,
            "message": null, "trigger": "schedule", "duration_seconds": 20.0,
            "download_bytes_per_second": 12_500_000.0, "upload_bytes_per_second": 2_500_000.0,
            "ping_seconds": 0.0105, "jitter_seconds": null, "packet_loss_ratio": null,
            "download_latency_seconds": null, "upload_latency_seconds": null,
            "downloaded_bytes": null, "uploaded_bytes": null, "server": null, "isp": null,
            "result_url": null
        }),
        serde_json::json!({
            "time": "2026-11-29T10:30:00Z", "outcome": "failure", "reason": "timeout",
            "message": "x", "trigger": "schedule", "duration_seconds": 1.0,
            "download_bytes_per_second": null, "upload_bytes_per_second": null,
            "ping_seconds": null, "jitter_seconds": null, "packet_loss_ratio": null,
            "download_latency_seconds": null, "upload_latency_seconds": null,
            "downloaded_bytes": null, "uploaded_bytes": null, "server": null, "isp": null,
            "result_url": null
        }),
    ]);
    let db = env.db();
    let export = common::command(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "openmetrics",
        "--label",
        "instance=monitor:5000",
        "--label",
        "job=internet-monitor",
    ])
    .output()
    .unwrap();
    assert_eq!(
        export.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let file = env.path("history.om");
    std::fs::write(&file, &export.stdout).unwrap();
    let blocks = env.path("tsdb");
    let promtool = |args: &[&std::ffi::OsStr]| {
        let output = std::process::Command::new("promtool")
            .args(args)
            .output()
            .unwrap_or_else(|err| {
                panic!("cannot run promtool ({err}): apt-get install prometheus (Debian)")
            });
        assert!(
            output.status.success(),
            "promtool {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    promtool(&[
        "tsdb".as_ref(),
        "create-blocks-from".as_ref(),
        "openmetrics".as_ref(),
        file.as_os_str(),
        blocks.as_os_str(),
    ]);
    // `dump` opens the directory as a TSDB, which has a write-ahead log.
    std::fs::create_dir_all(blocks.join("wal")).unwrap();
    let dump = promtool(&["tsdb".as_ref(), "dump".as_ref(), blocks.as_os_str()]);
    for line in [
        "{__name__=\"speedtest_download_bytes_per_second\", instance=\"monitor:5000\", job=\"internet-monitor\"} 1.25e+07 1795946400123",
        "{__name__=\"speedtest_upload_bytes_per_second\", instance=\"monitor:5000\", job=\"internet-monitor\"} 2.5e+06 1795946400123",
        "{__name__=\"speedtest_ping_latency_seconds\", instance=\"monitor:5000\", job=\"internet-monitor\"} 0.0105 1795946400123",
        "{__name__=\"speedtest_up\", instance=\"monitor:5000\", job=\"internet-monitor\"} 1 1795946400123",
        "{__name__=\"speedtest_up\", instance=\"monitor:5000\", job=\"internet-monitor\"} 0 1795948200000",
        "{__name__=\"speedtest_run_duration_seconds\", instance=\"monitor:5000\", job=\"internet-monitor\"} 1 1795948200000",
    ] {
        assert!(dump.lines().any(|l| l == line), "no {line} in:\n{dump}");
    }
}
