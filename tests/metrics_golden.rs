//! Golden test of the exposition (node_exporter style): a fixed history rendered byte for byte,
//! so any change to a name, label, HELP text or value format shows up in review as a diff of
//! `tests/golden/metrics.txt`. Regenerate with `UPDATE_GOLDEN=1 cargo test --test metrics_golden`.

use std::sync::Arc;
use std::time::Duration;

use internet_monitor::metrics::{Metrics, PushResult, SampleResult};
use internet_monitor::plan::Plan;
use internet_monitor::probe::minute::MinuteAggregate;
use internet_monitor::probe::outage::{Outage, OutageKind, Round};
use internet_monitor::probe::{ProbeMethod, ProbeResult, Target, TargetKind};
use internet_monitor::sample::{
    Engine, EngineName, FailureReason, HttpProtocol, Sample, Server, Trigger,
};
use internet_monitor::time::Timestamp;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/metrics.txt");

/// 2026-11-24T18:00:00.125Z: a fraction of a second checks the milliseconds survive.
const T0: u64 = 1_795_543_200_125;
const HOUR: u64 = 3_600_000;

/// The build line's labels change with every release and commit; the golden file holds these.
const BUILD_INFO: &str = r#"internet_monitor_build_info{revision="REVISION",version="VERSION"} 1"#;

fn at(millis: u64) -> Timestamp {
    Timestamp::from_millis(millis)
}

fn init7() -> Arc<Server> {
    Arc::new(Server {
        id: Some(43030),
        name: Some("Init7 AG".to_owned()),
        location: Some("Zurich".to_owned()),
        country: Some("Switzerland".to_owned()),
        host: Some("speedtest.init7.net:8080".to_owned()),
    })
}

/// A success with every figure the current CLI reports.
fn full_success(millis: u64) -> Sample {
    Sample {
        duration_seconds: Some(21.734),
        download_bytes_per_second: Some(92_727_670.0),
        upload_bytes_per_second: Some(11_612_345.0),
        ping_seconds: Some(0.008_123),
        jitter_seconds: Some(0.000_412),
        packet_loss_ratio: Some(0.0),
        download_latency_seconds: Some(0.031_5),
        upload_latency_seconds: Some(0.089_25),
        downloaded_bytes: Some(1_119_871_234),
        uploaded_bytes: Some(140_123_456),
        server: Some(init7()),
        isp: Some(Arc::from("Init7")),
        result_url: Some("https://www.speedtest.net/result/c/00000000".to_owned()),
        engine: Some(Arc::new(Engine::ookla())),
        ..Sample::empty(at(millis), Trigger::Schedule)
    }
}

/// The history the golden file shows: what the store held at start-up, then three runs.
fn scenario() -> Metrics {
    let metrics = Metrics::new().expect("metrics register");

    // At start-up the store knows an older success and, after it, a timed-out run.
    let stored_success = full_success(T0 - 2 * HOUR);
    let stored_failure = Sample {
        duration_seconds: Some(120.0),
        ..Sample::failure(
            at(T0 - HOUR),
            Trigger::Schedule,
            FailureReason::Timeout,
            "timed out",
        )
    };
    metrics.restore(Some(&stored_failure), Some(&stored_success), 41);
    metrics.set_plan(&Plan {
        download: Some("500Mbit/s".parse().expect("a bandwidth")),
        upload: None,
        threshold: 0.75,
    });
    metrics.set_interval(Duration::from_secs(1800));

    metrics.set_running(true);
    metrics.record(&full_success(T0));
    // A failed HTTP-engine run that downloaded 20 MB before its upload was refused: its bytes
    // count as transferred.
    metrics.record(&Sample {
        duration_seconds: Some(4.5),
        engine: Some(Arc::new(Engine {
            name: EngineName::Http,
            protocol: Some(HttpProtocol::Cloudflare),
            url: Some("http://speed.example".to_owned()),
            streams: Some(4),
            duration_seconds: Some(10.0),
            ramp_up_seconds: Some(2.0),
        })),
        downloaded_bytes: Some(20_000_000),
        uploaded_bytes: Some(0),
        ..Sample::failure(
            at(T0 + HOUR / 2),
            Trigger::Schedule,
            FailureReason::Exit,
            "POST /__up answered 500 Internal Server Error",
        )
    });
    metrics.record(&Sample {
        duration_seconds: Some(1.5),
        engine: Some(Arc::new(Engine::ookla())),
        ..Sample::failure(
            at(T0 + HOUR),
            Trigger::Schedule,
            FailureReason::RateLimited,
            "Limit reached",
        )
    });
    // The HTTP engine against another server: no packet loss, loaded latency (a median, not
    // the CLI's interquartile mean, as HELP says), partial server data. Only this last run's
    // engine shows.
    metrics.record(&Sample {
        engine: Some(Arc::new(Engine {
            name: EngineName::Http,
            protocol: Some(HttpProtocol::Librespeed),
            url: Some("https://speedtest.sunrise.example/backend".to_owned()),
            streams: Some(4),
            duration_seconds: Some(10.0),
            ramp_up_seconds: Some(2.0),
        })),
        duration_seconds: Some(19.25),
        download_bytes_per_second: Some(87_500_000.5),
        upload_bytes_per_second: Some(12_000_000.0),
        ping_seconds: Some(0.011),
        jitter_seconds: Some(0.0015),
        download_latency_seconds: Some(0.0225),
        upload_latency_seconds: Some(0.041),
        downloaded_bytes: Some(1_000_000_000),
        uploaded_bytes: Some(150_000_000),
        server: Some(Arc::new(Server {
            id: Some(4302),
            name: Some("Sunrise \"Fiber\"".to_owned()),
            location: None,
            country: Some("Switzerland".to_owned()),
            host: None,
        })),
        isp: Some(Arc::from("Sunrise GmbH")),
        ..Sample::empty(at(T0 + 2 * HOUR), Trigger::Manual)
    });
    metrics.set_running(false);
    metrics.set_next_run(Some(at(T0 + 3 * HOUR)));
    probing(&metrics);
    pushing(&metrics);
    metrics
}

/// The remote_write pusher's part: 12 samples queued at start-up, a push refused (retried),
/// one accepted with 10 samples, one sample refused alone and one expired; then 3 wait.
fn pushing(metrics: &Metrics) {
    metrics.set_remote_write_on(12, Some(at(T0 - 2 * HOUR)));
    metrics.count_push(PushResult::Retried);
    metrics.count_push(PushResult::Success);
    metrics.count_pushed_samples(SampleResult::Sent, 10);
    metrics.count_push(PushResult::Rejected);
    metrics.count_pushed_samples(SampleResult::Rejected, 1);
    metrics.count_pushed_samples(SampleResult::Expired, 1);
    metrics.set_outbox(3, Some(at(T0 + 2 * HOUR)));
}

/// The connectivity monitor's part: the gateway and two public targets over TCP, a stored
/// `local` outage from yesterday, then a minute in which 9.9.9.9 answered nothing and an `isp`
/// outage that is still going on.
fn probing(metrics: &Metrics) {
    let tcp = ProbeMethod::TcpConnect { port: 443 };
    let target = |kind, address: &str| Target {
        kind,
        address: address.parse().expect("an address"),
        method: tcp,
    };
    let gateway = target(TargetKind::Gateway, "192.168.1.1");
    let cloudflare = target(TargetKind::Public, "1.1.1.1");
    let quad9 = target(TargetKind::Public, "9.9.9.9");
    let outage = |start, kind| Outage {
        start: at(start),
        end: None,
        kind,
        unmonitored: Duration::ZERO,
        restarts: 0,
    };

    metrics.set_probe_interval(Duration::from_secs(10));
    metrics.restore_outages(&[Outage {
        end: Some(at(T0 - 24 * HOUR + 95_000)),
        ..outage(T0 - 24 * HOUR, OutageKind::Local)
    }]);
    // Round 1 at T0 + 3 h: all answer. Round 2, 10 s later: only the gateway.
    let round_1 = T0 + 3 * HOUR;
    let answered = |ms| Some(Duration::from_micros(ms));
    for (target, rtt) in [
        (&gateway, answered(1_250)),
        (&cloudflare, answered(11_500)),
        (&quad9, None),
    ] {
        let result = ProbeResult {
            at: at(round_1),
            rtt,
        };
        metrics.observe_probe(target, &result);
    }
    metrics.observe_round(
        &Round {
            at: at(round_1),
            gateway: true,
            public: true,
        },
        None,
    );
    // The minute before: 9.9.9.9 lost everything (no RTT series), 1.1.1.1 one of six.
    let minute = |lost, rtt: Option<(u64, u64, u64)>| MinuteAggregate {
        minute: at(round_1 - round_1 % 60_000 - 60_000),
        sent: 6,
        lost,
        rtt_min_us: rtt.map(|r| r.0),
        rtt_median_us: rtt.map(|r| r.1),
        rtt_max_us: rtt.map(|r| r.2),
        under_load: false,
    };
    metrics.observe_probe_minute(&gateway, &minute(0, Some((900, 1_200, 3_400))));
    metrics.observe_probe_minute(&cloudflare, &minute(1, Some((9_800, 11_250, 48_000))));
    metrics.observe_probe_minute(&quad9, &minute(6, None));

    let round_2 = round_1 + 10_000;
    for (target, rtt) in [
        (&gateway, answered(1_100)),
        (&cloudflare, None),
        (&quad9, None),
    ] {
        let result = ProbeResult {
            at: at(round_2),
            rtt,
        };
        metrics.observe_probe(target, &result);
    }
    let isp = outage(round_2, OutageKind::Isp);
    metrics.outage_opened(&isp);
    metrics.observe_round(
        &Round {
            at: at(round_2),
            gateway: true,
            public: false,
        },
        Some(&isp),
    );
    metrics.add_outage_time(OutageKind::Isp, Duration::from_secs(10));
}

/// Drops the `process_*` families (they vary by machine and moment) and pins the build line.
fn normalise(text: &str) -> String {
    let version = format!(r#"version="{}"}} 1"#, env!("CARGO_PKG_VERSION"));
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("process_")
            || line.starts_with("# HELP process_")
            || line.starts_with("# TYPE process_")
        {
            continue;
        }
        // The oldest queued sample's age is computed at each scrape: only its presence is pinned.
        if let Some(age) =
            line.strip_prefix("internet_monitor_remote_write_oldest_pending_age_seconds ")
        {
            assert!(age.parse::<f64>().is_ok_and(|age| age > 0.0), "{line}");
            out.push_str("internet_monitor_remote_write_oldest_pending_age_seconds AGE\n");
            continue;
        }
        if line.starts_with("internet_monitor_build_info{") {
            assert!(
                line.starts_with(r#"internet_monitor_build_info{revision=""#)
                    && line.ends_with(&version),
                "unexpected build line {line:?}"
            );
            out.push_str(BUILD_INFO);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[test]
fn exposition_matches_the_golden_file() {
    let rendered = scenario().render().expect("render");
    let rendered = String::from_utf8(rendered.to_vec()).expect("the exposition is UTF-8");
    assert!(
        rendered.contains("\n# TYPE process_cpu_seconds_total counter\n")
            || !cfg!(target_os = "linux"),
        "the process collector is missing"
    );
    let actual = normalise(&rendered);

    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1") {
        std::fs::write(GOLDEN, &actual).expect("write the golden file");
        return;
    }

    let expected = std::fs::read_to_string(GOLDEN)
        .expect("read tests/golden/metrics.txt (create it with UPDATE_GOLDEN=1)");
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
        panic!(
            "the exposition differs from {GOLDEN} from line {} on:\n  actual:   {:?}\n  expected: {:?}\n\
             If the change is intended, run UPDATE_GOLDEN=1 cargo test --test metrics_golden \
             and review the diff.\n--- actual ---\n{actual}",
            first + 1,
            actual.lines().nth(first),
            expected.lines().nth(first),
        );
    }
}

/// The golden history, probe families included, is what `promtool check metrics` accepts:
/// names, units, `_total` only on counters, HELP on every family.
#[test]
#[ignore = "needs promtool (Debian package prometheus); .ci/run installs it and runs the ignored tests"]
fn the_golden_exposition_passes_promtool() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let rendered = scenario().render().expect("render");
    assert!(
        rendered
            .windows(b"internet_monitor_probe_rtt_median_seconds".len())
            .any(|w| w == b"internet_monitor_probe_rtt_median_seconds"),
        "the scenario shows no probe family"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package prometheus; .ci/run installs it)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(&rendered)
        .expect("write to promtool");
    let output = promtool.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool check metrics ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
