//! A real Prometheus server scrapes a real `internet-monitor serve` on loopback.

mod common;

use std::time::Duration;

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
    common::eventually_within(
        &format!("a value for {expr} in Prometheus"),
        Duration::from_secs(60),
        || query(prometheus, expr),
    )
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
    let file = export_openmetrics(&env);
    let blocks = env.path("tsdb");
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

/// The README's backfill command passes `--max-block-duration=744h`: a fortnight of
/// half-hourly runs becomes one block rather than one per 2-hour window (168 here), and the
/// block holds every run at its own time.
#[test]
#[ignore = "needs promtool (Debian package prometheus); .ci/run installs it and runs the ignored tests"]
fn long_blocks_backfill_a_fortnight_in_one_block() {
    // 14 days of runs on a fixed date, every one a success except each tenth.
    let start = 1_790_000_000 - 1_790_000_000 % 86_400;
    let runs: Vec<_> = (0..14 * 48)
        .map(|i: i64| run_at(start + i * 1_800, (i % 10 != 9).then_some(12_500_000.0)))
        .collect();
    let env = common::Env::new();
    env.import(&runs);
    let file = export_openmetrics(&env);
    let blocks = |name: &str, extra: &[&str]| {
        let dir = env.path(name);
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "tsdb".as_ref(),
            "create-blocks-from".as_ref(),
            "openmetrics".as_ref(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        args.extend([file.as_os_str(), dir.as_os_str()]);
        promtool(&args);
        let count = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().path().join("meta.json").is_file())
            .count();
        (dir, count)
    };
    let (_, short) = blocks("short", &[]);
    let (long_dir, long) = blocks("long", &["--max-block-duration=744h"]);
    assert_eq!(short, 14 * 12, "one block per 2-hour window");
    assert_eq!(
        long, 1,
        "--max-block-duration=744h: one block for a fortnight"
    );
    std::fs::create_dir_all(long_dir.join("wal")).unwrap();
    let dump = std::process::Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(&long_dir)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    let ups = dump
        .lines()
        .filter(|l| l.starts_with("{__name__=\"speedtest_up\""))
        .count();
    assert_eq!(
        ups,
        14 * 48,
        "every run's speedtest_up is in the long block"
    );
    let last = format!(
        "{{__name__=\"speedtest_download_bytes_per_second\", instance=\"monitor:5000\", job=\"internet-monitor\"}} 1.25e+07 {}",
        (start + (14 * 48 - 2) * 1_800) * 1000
    );
    assert!(
        dump.lines().any(|l| l == last),
        "no {last} in the long block"
    );
}

/// `text` percent-encoded for a URL's query string (every byte but the unreserved ones).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The JSON answer of a Prometheus API `path`, which must succeed.
fn api(prometheus: &str, path: &str) -> serde_json::Value {
    let response = common::request(prometheus, "GET", path);
    assert_eq!(response.status, 200, "{path}: {}", response.body);
    let body = response.json();
    assert_eq!(body["status"], "success", "{path}: {body}");
    body
}

/// The series `expr` gives at `time` (Unix seconds): each as its labels and its value.
fn instant_at(prometheus: &str, expr: &str, time: i64) -> Vec<(serde_json::Value, String)> {
    let body = api(
        prometheus,
        &format!("/api/v1/query?query={}&time={time}", encode(expr)),
    );
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            let value = series["value"][1].as_str().unwrap().to_owned();
            (series["metric"].clone(), value)
        })
        .collect()
}

/// The points (Unix seconds, value) of the one series `expr` gives from `start` to `end`
/// every `step` seconds; none when it gives no series.
fn range(prometheus: &str, expr: &str, start: i64, end: i64, step: i64) -> Vec<(i64, String)> {
    let body = api(
        prometheus,
        &format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
            encode(expr)
        ),
    );
    let series = body["data"]["result"].as_array().unwrap();
    assert!(series.len() <= 1, "more than one series: {body}");
    series
        .first()
        .map(|series| {
            series["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|point| {
                    let time = point[0].as_f64().unwrap();
                    (time as i64, point[1].as_str().unwrap().to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A stored run at `time` (Unix seconds), as `export --format jsonl` writes it: a success
/// measuring `download` bytes per second, or (`None`) a timeout.
fn run_at(time: i64, download: Option<f64>) -> serde_json::Value {
    let time = jiff::Timestamp::from_second(time).unwrap().to_string();
    let (outcome, reason, upload, ping) = match download {
        Some(_) => ("success", None, Some(2_500_000.0), Some(0.0105)),
        None => ("failure", Some("timeout"), None, None),
    };
    serde_json::json!({
        "time": time, "outcome": outcome, "reason": reason,
        "message": reason.map(|_| "no result within 120 s"), "trigger": "schedule",
        "duration_seconds": 20.0,
        "download_bytes_per_second": download, "upload_bytes_per_second": upload,
        "ping_seconds": ping, "jitter_seconds": null, "packet_loss_ratio": null,
        "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": null, "uploaded_bytes": null, "server": null, "isp": null,
        "result_url": null
    })
}

/// The whole path the README gives: runs stored weeks ago are exported as OpenMetrics, turned
/// into blocks by the real `promtool`, and a real Prometheus started on those blocks answers
/// instant and range queries at the runs' own times, under the `--label`s of the export. With
/// the default retention (15 days) the same blocks lose the runs 19 days older than the newest
/// as Prometheus starts.
#[test]
#[ignore = "needs promtool and a Prometheus server (Debian package prometheus); .ci/run installs it and runs the ignored tests"]
fn prometheus_answers_for_backfilled_runs_at_their_own_time() {
    // Three runs three weeks back, half an hour apart (a success, a timeout, a success), and
    // one two days back; whole minutes, so each is queried at exactly its time.
    let now = jiff::Timestamp::now().as_second();
    let old = now - now % 60 - 21 * 86_400;
    let recent = old + 19 * 86_400;
    let env = common::Env::new();
    env.import(&[
        run_at(old, Some(12_500_000.0)),
        run_at(old + 1_800, None),
        run_at(old + 3_600, Some(25_000_000.0)),
        run_at(recent, Some(50_000_000.0)),
    ]);
    let file = export_openmetrics(&env);
    // Blocks written into the TSDB directory `name`, as if moved into a stopped Prometheus's
    // --storage.tsdb.path: one directory for a long retention, one for the default.
    let blocks = |name: &str| {
        let data = env.path(name);
        promtool(&[
            "tsdb".as_ref(),
            "create-blocks-from".as_ref(),
            "openmetrics".as_ref(),
            file.as_os_str(),
            data.as_os_str(),
        ]);
        data
    };
    let config = env.path("prometheus.yml");
    std::fs::write(&config, "global: {scrape_interval: 1m}\n").unwrap();

    // Backfilled twice, as by a user who repeats the import: every block has a twin that
    // overlaps it, which Prometheus (since 2.39) accepts without a flag.
    let default = blocks("default");
    let long = blocks("long");
    blocks("long");
    let count = |dir: &std::path::Path| std::fs::read_dir(dir).unwrap().count();
    assert!(count(&default) >= 2, "a block per 2-hour window with runs");
    assert_eq!(count(&long), 2 * count(&default));
    let mut prometheus =
        Prometheus::start_with(&config, &long, &["--storage.tsdb.retention.time=10y"]);
    prometheus.wait_ready();
    let address = prometheus.address.clone();
    let download = "speedtest_download_bytes_per_second";
    let labels = serde_json::json!({
        "__name__": download, "instance": "monitor:5000", "job": "internet-monitor"
    });
    assert_eq!(
        instant_at(&address, download, old),
        [(labels.clone(), "12500000".to_owned())]
    );
    assert_eq!(
        instant_at(&address, download, recent),
        [(labels, "50000000".to_owned())]
    );
    let up = r#"speedtest_up{instance="monitor:5000",job="internet-monitor"}"#;
    assert_eq!(instant_at(&address, up, old + 1_800)[0].1, "0");
    // The timeout measured nothing: at its time the download is 30 minutes stale, beyond
    // PromQL's 5-minute look-back.
    assert_eq!(instant_at(&address, download, old + 1_800), []);
    assert_eq!(
        range(&address, download, old, old + 3_600, 1_800),
        [
            (old, "12500000".to_owned()),
            (old + 3_600, "25000000".to_owned())
        ]
    );
    assert_eq!(
        range(&address, up, old - 3_600, old + 7_200, 1_800),
        [
            (old, "1".to_owned()),
            (old + 1_800, "0".to_owned()),
            (old + 3_600, "1".to_owned())
        ]
    );
    drop(prometheus);

    // Retention counts back from the newest block's end (here `recent`'s), and Prometheus
    // deletes the blocks beyond it as it opens the TSDB, before it is ready.
    let mut prometheus = Prometheus::start_with(&config, &default, &[]);
    prometheus.wait_ready();
    let address = prometheus.address.clone();
    assert_eq!(range(&address, up, old - 3_600, old + 7_200, 1_800), []);
    assert_eq!(instant_at(&address, download, recent).len(), 1);
}

/// `export --format openmetrics` of `env`'s store with the labels a scrape adds
/// (`instance=monitor:5000`, `job=internet-monitor`), written to `history.om` in `env`.
fn export_openmetrics(env: &common::Env) -> std::path::PathBuf {
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
    file
}

/// Runs `promtool ARGS`, which must succeed, and returns what it printed.
fn promtool(args: &[&std::ffi::OsStr]) -> String {
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
}
