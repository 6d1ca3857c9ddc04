//! The scrape's families, labels and values for recorded samples, golden style.

use std::sync::Arc;

use super::*;
use crate::sample::{Engine, Server, Trigger};

const T0: u64 = 1_795_546_073_292;

fn text(metrics: &Metrics) -> String {
    String::from_utf8(metrics.render().unwrap().to_vec()).unwrap()
}

fn lines(metrics: &Metrics) -> Vec<String> {
    text(metrics).lines().map(str::to_owned).collect()
}

/// Asserts the exact sample line is rendered.
fn assert_line(metrics: &Metrics, line: &str) {
    let all = lines(metrics);
    assert!(
        all.iter().any(|l| l == line),
        "missing {line:?} in\n{}",
        all.join("\n")
    );
}

/// Asserts no line (sample, `# HELP` or `# TYPE`) names the family.
fn assert_absent(metrics: &Metrics, family: &str) {
    let text = text(metrics);
    let mentions = text.lines().any(|line| {
        let line = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        line.strip_prefix(family)
            .is_some_and(|rest| rest.starts_with([' ', '{']))
    });
    assert!(!mentions, "{family} should be absent in\n{text}");
}

fn server(id: u64, name: &str) -> Arc<Server> {
    Arc::new(Server {
        id: Some(id),
        name: Some(name.to_owned()),
        location: Some("Zurich".to_owned()),
        country: Some("Switzerland".to_owned()),
        host: Some("speedtest.example.net:8080".to_owned()),
    })
}

fn success(millis: u64) -> Sample {
    Sample {
        duration_seconds: Some(21.5),
        download_bytes_per_second: Some(92_727_670.0),
        upload_bytes_per_second: Some(11_612_345.0),
        ping_seconds: Some(0.01234),
        jitter_seconds: Some(0.000567),
        packet_loss_ratio: Some(0.002),
        download_latency_seconds: Some(0.0456),
        upload_latency_seconds: Some(0.0789),
        downloaded_bytes: Some(1_120_000_000),
        uploaded_bytes: Some(140_000_000),
        server: Some(server(12345, "Init7 AG")),
        isp: Some(Arc::from("Init7")),
        ..Sample::empty(Timestamp::from_millis(millis), Trigger::Schedule)
    }
}

fn failure(millis: u64, reason: FailureReason) -> Sample {
    Sample {
        duration_seconds: Some(60.0),
        ..Sample::failure(
            Timestamp::from_millis(millis),
            Trigger::Schedule,
            reason,
            "no",
        )
    }
}

const MEASUREMENTS: [&str; 7] = [
    "speedtest_download_bytes_per_second",
    "speedtest_upload_bytes_per_second",
    "speedtest_ping_latency_seconds",
    "speedtest_ping_jitter_seconds",
    "speedtest_packet_loss_ratio",
    "speedtest_download_latency_seconds",
    "speedtest_upload_latency_seconds",
];

#[test]
fn the_remote_write_families_exist_only_while_it_is_on() {
    let metrics = Metrics::new().unwrap();
    let families = [
        "internet_monitor_remote_write_pending_samples",
        "internet_monitor_remote_write_oldest_pending_age_seconds",
        "internet_monitor_remote_write_requests_total",
        "internet_monitor_remote_write_samples_total",
    ];
    for family in families {
        assert_absent(&metrics, family);
    }
    metrics.set_remote_write_on(0, None);
    assert_line(&metrics, "internet_monitor_remote_write_pending_samples 0");
    assert_line(
        &metrics,
        r#"internet_monitor_remote_write_samples_total{result="expired"} 0"#,
    );
    assert_absent(&metrics, families[1]);
    // An age is never negative, even for a sample dated after the clock.
    metrics.set_outbox(
        1,
        Some(Timestamp::now().saturating_add(Duration::from_secs(60))),
    );
    assert_line(
        &metrics,
        "internet_monitor_remote_write_oldest_pending_age_seconds 0",
    );
    metrics.set_outbox(0, Some(Timestamp::from_millis(T0)));
    assert_absent(&metrics, families[1]);
}

#[test]
fn the_plan_shows_only_the_contracted_directions() {
    let metrics = Metrics::new().unwrap();
    metrics.set_plan(&Plan {
        download: Some("500Mbit/s".parse().unwrap()),
        upload: None,
        threshold: 0.8,
    });
    assert_line(
        &metrics,
        "speedtest_plan_download_bytes_per_second 62500000",
    );
    assert_line(&metrics, "speedtest_plan_threshold_ratio 0.8");
    assert_absent(&metrics, "speedtest_plan_upload_bytes_per_second");
    metrics.set_plan(&Plan {
        download: None,
        upload: None,
        threshold: 0.8,
    });
    assert_absent(&metrics, "speedtest_plan_download_bytes_per_second");
    assert_absent(&metrics, "speedtest_plan_threshold_ratio");
}

#[test]
fn the_plan_gauges_follow_the_version_in_force_at_each_time() {
    use crate::plan::{PlanVersion, Speeds};
    let version = |millis: u64, advertised: &str| PlanVersion {
        from: Timestamp::from_millis(millis),
        download: Speeds::advertised(Some(advertised.parse().unwrap())),
        upload: Speeds::default(),
        latency_max: None,
        threshold: 0.8,
    };
    let plans = PlanHistory::new(vec![
        version(1_000, "100Mbit/s"),
        version(2_000, "200Mbit/s"),
    ]);
    let metrics = Metrics::new().unwrap();
    metrics.show_plan_at(&plans, Timestamp::from_millis(500));
    assert_absent(&metrics, "speedtest_plan_download_bytes_per_second");
    metrics.show_plan_at(&plans, Timestamp::from_millis(1_999));
    assert_line(
        &metrics,
        "speedtest_plan_download_bytes_per_second 12500000",
    );
    // The second version takes over at its time, with no restart and no other call.
    metrics.show_plan_at(&plans, Timestamp::from_millis(2_000));
    assert_line(
        &metrics,
        "speedtest_plan_download_bytes_per_second 25000000",
    );
    assert_line(&metrics, "speedtest_plan_threshold_ratio 0.8");
}

#[test]
fn fresh_metrics_show_no_measurement_but_every_counter_at_zero() {
    let metrics = Metrics::new().unwrap();
    let unknown = [
        "speedtest_up",
        "speedtest_last_run_timestamp_seconds",
        "speedtest_last_success_timestamp_seconds",
        "speedtest_next_run_timestamp_seconds",
        "speedtest_run_duration_seconds",
        "speedtest_server_info",
        "speedtest_isp_info",
        "speedtest_engine_info",
        "speedtest_plan_download_bytes_per_second",
        "speedtest_plan_upload_bytes_per_second",
        "speedtest_plan_threshold_ratio",
        "speedtest_interval_seconds",
    ];
    for family in MEASUREMENTS.iter().chain(&unknown) {
        assert_absent(&metrics, family);
    }
    assert_line(&metrics, "speedtest_running 0");
    assert_line(&metrics, r#"speedtest_runs_total{result="success"} 0"#);
    for reason in FailureReason::ALL {
        let line = format!(r#"speedtest_runs_total{{result="{reason}"}} 0"#);
        assert_line(&metrics, &line);
    }
    assert_line(
        &metrics,
        r#"speedtest_transferred_bytes_total{direction="download"} 0"#,
    );
    assert_line(
        &metrics,
        r#"speedtest_transferred_bytes_total{direction="upload"} 0"#,
    );
    assert_line(&metrics, "internet_monitor_store_errors_total 0");
    assert_line(&metrics, "internet_monitor_samples 0");
    let revision = crate::cli::REVISION;
    let build = format!(
        r#"internet_monitor_build_info{{revision="{revision}",version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_line(&metrics, &build);
}

#[cfg(target_os = "linux")]
#[test]
fn the_process_collector_is_on_the_custom_registry() {
    let metrics = Metrics::new().unwrap();
    assert!(text(&metrics).contains("\n# TYPE process_cpu_seconds_total counter\n"));
}

#[test]
fn a_success_sets_everything_in_base_units() {
    let metrics = Metrics::new().unwrap();
    metrics.record(&success(T0));
    for line in [
        "speedtest_download_bytes_per_second 92727670",
        "speedtest_upload_bytes_per_second 11612345",
        "speedtest_ping_latency_seconds 0.01234",
        "speedtest_ping_jitter_seconds 0.000567",
        "speedtest_packet_loss_ratio 0.002",
        "speedtest_download_latency_seconds 0.0456",
        "speedtest_upload_latency_seconds 0.0789",
        r#"speedtest_transferred_bytes_total{direction="download"} 1120000000"#,
        r#"speedtest_transferred_bytes_total{direction="upload"} 140000000"#,
        r#"speedtest_runs_total{result="success"} 1"#,
        "speedtest_up 1",
        "speedtest_last_run_timestamp_seconds 1795546073.292",
        "speedtest_last_success_timestamp_seconds 1795546073.292",
        "speedtest_run_duration_seconds 21.5",
        r#"speedtest_server_info{country="Switzerland",id="12345",location="Zurich",name="Init7 AG"} 1"#,
        r#"speedtest_isp_info{isp="Init7"} 1"#,
        "internet_monitor_samples 1",
    ] {
        assert_line(&metrics, line);
    }
}

#[test]
fn a_failure_keeps_the_measurements_of_the_last_success() {
    let metrics = Metrics::new().unwrap();
    metrics.record(&success(T0));
    metrics.record(&failure(T0 + 3_600_000, FailureReason::Timeout));
    for line in [
        "speedtest_download_bytes_per_second 92727670",
        "speedtest_packet_loss_ratio 0.002",
        "speedtest_last_success_timestamp_seconds 1795546073.292",
        r#"speedtest_isp_info{isp="Init7"} 1"#,
        // The failure says nothing of what it moved: nothing more is counted.
        r#"speedtest_transferred_bytes_total{direction="download"} 1120000000"#,
        r#"speedtest_runs_total{result="success"} 1"#,
        r#"speedtest_runs_total{result="timeout"} 1"#,
        r#"speedtest_runs_total{result="exit"} 0"#,
        "speedtest_up 0",
        "speedtest_last_run_timestamp_seconds 1795549673.292",
        "speedtest_run_duration_seconds 60",
        "internet_monitor_samples 2",
    ] {
        assert_line(&metrics, line);
    }
}

#[test]
fn a_failure_that_moved_data_counts_it_as_transferred() {
    let metrics = Metrics::new().unwrap();
    metrics.record(&success(T0));
    // The HTTP engine's download moved 20 MB before the upload was refused.
    metrics.record(&Sample {
        downloaded_bytes: Some(20_000_000),
        uploaded_bytes: Some(0),
        ..failure(T0 + 60_000, FailureReason::Exit)
    });
    for line in [
        r#"speedtest_transferred_bytes_total{direction="download"} 1140000000"#,
        r#"speedtest_transferred_bytes_total{direction="upload"} 140000000"#,
        // Still the last success's figures.
        "speedtest_download_bytes_per_second 92727670",
        "speedtest_up 0",
    ] {
        assert_line(&metrics, line);
    }
}

#[test]
fn a_success_without_packet_loss_removes_the_old_value() {
    let metrics = Metrics::new().unwrap();
    metrics.record(&success(T0));
    metrics.record(&Sample {
        packet_loss_ratio: None,
        download_latency_seconds: None,
        upload_latency_seconds: None,
        duration_seconds: None,
        ..success(T0 + 3_600_000)
    });
    assert_absent(&metrics, "speedtest_packet_loss_ratio");
    assert_absent(&metrics, "speedtest_download_latency_seconds");
    assert_absent(&metrics, "speedtest_upload_latency_seconds");
    assert_absent(&metrics, "speedtest_run_duration_seconds");
    assert_line(&metrics, "speedtest_download_bytes_per_second 92727670");
}

#[test]
fn a_value_that_cannot_be_a_measurement_is_absent() {
    let metrics = Metrics::new().unwrap();
    metrics.record(&Sample {
        download_bytes_per_second: Some(f64::INFINITY),
        jitter_seconds: Some(f64::NAN),
        ..success(T0)
    });
    assert_absent(&metrics, "speedtest_download_bytes_per_second");
    assert_absent(&metrics, "speedtest_ping_jitter_seconds");
    assert_line(&metrics, "speedtest_upload_bytes_per_second 11612345");
}

#[test]
fn info_series_show_only_the_latest_server_and_isp() {
    let metrics = Metrics::new().unwrap();
    metrics.record(&success(T0));
    metrics.record(&Sample {
        server: Some(Arc::new(Server {
            id: None,
            name: Some("Sunrise \"Fiber\"".to_owned()),
            location: None,
            country: None,
            host: None,
        })),
        isp: Some(Arc::from("Sunrise")),
        ..success(T0 + 1)
    });
    let text = text(&metrics);
    let servers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("speedtest_server_info"))
        .collect();
    assert_eq!(
        servers,
        [r#"speedtest_server_info{country="",id="",location="",name="Sunrise \"Fiber\""} 1"#]
    );
    let isps: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("speedtest_isp_info"))
        .collect();
    assert_eq!(isps, [r#"speedtest_isp_info{isp="Sunrise"} 1"#]);

    metrics.record(&Sample {
        server: None,
        isp: None,
        ..success(T0 + 2)
    });
    assert_absent(&metrics, "speedtest_server_info");
    assert_absent(&metrics, "speedtest_isp_info");
}

#[test]
fn restore_takes_the_run_from_the_last_run_and_figures_from_the_last_success() {
    let metrics = Metrics::new().unwrap();
    let last_success = success(T0);
    let last_run = failure(T0 + 600_000, FailureReason::NoConnectivity);
    metrics.restore(Some(&last_run), Some(&last_success), 1234);
    for line in [
        "speedtest_download_bytes_per_second 92727670",
        "speedtest_packet_loss_ratio 0.002",
        "speedtest_last_success_timestamp_seconds 1795546073.292",
        "speedtest_last_run_timestamp_seconds 1795546673.292",
        "speedtest_run_duration_seconds 60",
        "speedtest_up 0",
        r#"speedtest_server_info{country="Switzerland",id="12345",location="Zurich",name="Init7 AG"} 1"#,
        r#"speedtest_isp_info{isp="Init7"} 1"#,
        "internet_monitor_samples 1234",
        // Counters count since start: a restore does not replay history into them.
        r#"speedtest_runs_total{result="no_connectivity"} 0"#,
        r#"speedtest_runs_total{result="success"} 0"#,
        r#"speedtest_transferred_bytes_total{direction="download"} 0"#,
    ] {
        assert_line(&metrics, line);
    }
}

#[test]
fn restore_from_an_empty_store_shows_nothing_known() {
    let metrics = Metrics::new().unwrap();
    metrics.restore(None, None, 0);
    for family in MEASUREMENTS {
        assert_absent(&metrics, family);
    }
    assert_absent(&metrics, "speedtest_up");
    assert_absent(&metrics, "speedtest_last_run_timestamp_seconds");
}

#[test]
fn a_skipped_run_is_stored_but_not_a_run() {
    let metrics = Metrics::new().unwrap();
    metrics.record(&success(T0));
    metrics.record(&Sample {
        outcome: Outcome::Skipped,
        ..Sample::empty(Timestamp::from_millis(T0 + 1), Trigger::Schedule)
    });
    assert_line(&metrics, "speedtest_up 1");
    assert_line(
        &metrics,
        "speedtest_last_run_timestamp_seconds 1795546073.292",
    );
    assert_line(&metrics, "internet_monitor_samples 2");
}

#[test]
fn every_update_shows_in_the_very_next_scrape() {
    let metrics = Metrics::new().unwrap();
    assert_line(&metrics, "speedtest_running 0");
    metrics.set_running(true);
    assert_line(&metrics, "speedtest_running 1");
    metrics.store_error();
    assert_line(&metrics, "internet_monitor_store_errors_total 1");
    metrics.record(&success(T0));
    assert_line(&metrics, "speedtest_up 1");
    metrics.record(&failure(T0 + 1, FailureReason::Timeout));
    assert_line(&metrics, "speedtest_up 0");
    metrics.set_samples(7);
    assert_line(&metrics, "internet_monitor_samples 7");
    metrics.restore(None, None, 0);
    assert_absent(&metrics, "speedtest_up");
}

#[test]
fn the_engine_info_shows_only_the_last_runs_engine_and_no_value_series_has_it() {
    let metrics = Metrics::new().unwrap();
    let http = Arc::new(Engine::cloudflare_example());
    metrics.record(&Sample {
        engine: Some(http),
        ..success(T0)
    });
    let engine_lines = |metrics: &Metrics| -> Vec<String> {
        lines(metrics)
            .into_iter()
            .filter(|l| l.starts_with("speedtest_engine_info"))
            .collect()
    };
    assert_eq!(
        engine_lines(&metrics),
        [
            r#"speedtest_engine_info{engine="http",protocol="cloudflare",streams="4",url="https://speed.cloudflare.com"} 1"#
        ]
    );
    assert!(
        lines(&metrics)
            .iter()
            .filter(|l| !l.starts_with('#') && !l.starts_with("speedtest_engine_info"))
            .all(|l| !l.contains("engine=")),
        "no value series has an engine label"
    );
    // A failure is a run too: its engine is the last run's.
    metrics.record(&Sample {
        engine: Some(Arc::new(Engine::ookla())),
        ..failure(T0 + 1, FailureReason::Timeout)
    });
    assert_eq!(
        engine_lines(&metrics),
        [r#"speedtest_engine_info{engine="ookla",protocol="",streams="",url=""} 1"#]
    );
    // A skipped run measured nothing and changes nothing.
    metrics.record(&Sample {
        outcome: Outcome::Skipped,
        reason: Some(FailureReason::DataBudget),
        ..Sample::empty(Timestamp::from_millis(T0 + 2), Trigger::Schedule)
    });
    assert_eq!(engine_lines(&metrics).len(), 1);
    metrics.record(&failure(T0 + 3, FailureReason::Timeout));
    assert_absent(&metrics, "speedtest_engine_info");
}

#[test]
fn scrapes_in_quick_succession_share_one_rendering() {
    let metrics = Metrics::new().unwrap();
    let first = metrics.render().unwrap();
    let second = metrics.render().unwrap();
    assert_eq!(first.as_ptr(), second.as_ptr(), "rendered twice");
    metrics.set_running(true);
    assert_ne!(metrics.render().unwrap().as_ptr(), first.as_ptr());
}

#[test]
fn running_next_run_store_errors_and_samples_follow_their_setters() {
    let metrics = Metrics::new().unwrap();
    metrics.set_running(true);
    metrics.set_next_run(Some(Timestamp::from_millis(T0)));
    metrics.store_error();
    metrics.store_error();
    metrics.set_samples(7);
    assert_line(&metrics, "speedtest_running 1");
    assert_line(
        &metrics,
        "speedtest_next_run_timestamp_seconds 1795546073.292",
    );
    assert_line(&metrics, "internet_monitor_store_errors_total 2");
    assert_line(&metrics, "internet_monitor_samples 7");

    metrics.set_running(false);
    metrics.set_next_run(None);
    assert_line(&metrics, "speedtest_running 0");
    assert_absent(&metrics, "speedtest_next_run_timestamp_seconds");
}

mod probes {
    use std::net::IpAddr;

    use super::*;
    use crate::probe::{ProbeMethod, TargetKind};

    fn target(kind: TargetKind, address: &str) -> Target {
        Target {
            kind,
            address: address.parse::<IpAddr>().unwrap(),
            method: ProbeMethod::TcpConnect { port: 443 },
        }
    }

    fn probe(millis: u64, rtt_ms: Option<u64>) -> ProbeResult {
        ProbeResult {
            at: Timestamp::from_millis(millis),
            rtt: rtt_ms.map(Duration::from_millis),
        }
    }

    fn outage(millis: u64, kind: OutageKind) -> Outage {
        Outage {
            start: Timestamp::from_millis(millis),
            end: None,
            kind,
            unmonitored: Duration::ZERO,
            restarts: 0,
        }
    }

    const FAMILIES: [&str; 13] = [
        "internet_monitor_probe_success",
        "internet_monitor_probes_sent_total",
        "internet_monitor_probes_lost_total",
        "internet_monitor_probe_rtt_min_seconds",
        "internet_monitor_probe_rtt_median_seconds",
        "internet_monitor_probe_rtt_max_seconds",
        "internet_monitor_probe_loss_ratio",
        "internet_monitor_connectivity_up",
        "internet_monitor_outage_ongoing",
        "internet_monitor_outages_total",
        "internet_monitor_outage_seconds_total",
        "internet_monitor_last_outage_start_timestamp_seconds",
        "internet_monitor_probe_interval_seconds",
    ];

    #[test]
    fn without_probing_no_probe_family_shows() {
        let metrics = Metrics::new().unwrap();
        for family in FAMILIES {
            assert_absent(&metrics, family);
        }
    }

    #[test]
    fn probing_on_shows_the_interval_and_every_outage_kind_at_zero() {
        let metrics = Metrics::new().unwrap();
        metrics.set_probe_interval(Duration::from_millis(2_500));
        for line in [
            "internet_monitor_probe_interval_seconds 2.5",
            r#"internet_monitor_outage_ongoing{kind="isp"} 0"#,
            r#"internet_monitor_outage_ongoing{kind="local"} 0"#,
            r#"internet_monitor_outages_total{kind="isp"} 0"#,
            r#"internet_monitor_outages_total{kind="local"} 0"#,
            r#"internet_monitor_outage_seconds_total{kind="isp"} 0"#,
            r#"internet_monitor_outage_seconds_total{kind="local"} 0"#,
        ] {
            assert_line(&metrics, line);
        }
        // Nothing known yet: no round, no outage, no target.
        assert_absent(&metrics, "internet_monitor_connectivity_up");
        assert_absent(
            &metrics,
            "internet_monitor_last_outage_start_timestamp_seconds",
        );
        assert_absent(&metrics, "internet_monitor_probe_success");
    }

    #[test]
    fn probes_count_sent_and_lost_and_show_the_newest_success() {
        let metrics = Metrics::new().unwrap();
        let gateway = target(TargetKind::Gateway, "192.168.1.1");
        let public = target(TargetKind::Public, "2001:db8::1");
        metrics.observe_probe(&gateway, &probe(T0, Some(2)));
        // The first probe creates the lost counter at 0, so a first loss is a step.
        assert_line(
            &metrics,
            r#"internet_monitor_probes_lost_total{kind="gateway",target="192.168.1.1"} 0"#,
        );
        metrics.observe_probe(&public, &probe(T0, None));
        metrics.observe_probe(&public, &probe(T0 + 10_000, Some(20)));
        metrics.observe_probe(&gateway, &probe(T0 + 10_000, None));
        for line in [
            r#"internet_monitor_probe_success{kind="gateway",method="tcp-connect:443",target="192.168.1.1"} 0"#,
            r#"internet_monitor_probe_success{kind="public",method="tcp-connect:443",target="2001:db8::1"} 1"#,
            r#"internet_monitor_probes_sent_total{kind="gateway",target="192.168.1.1"} 2"#,
            r#"internet_monitor_probes_lost_total{kind="gateway",target="192.168.1.1"} 1"#,
            r#"internet_monitor_probes_sent_total{kind="public",target="2001:db8::1"} 2"#,
            r#"internet_monitor_probes_lost_total{kind="public",target="2001:db8::1"} 1"#,
        ] {
            assert_line(&metrics, line);
        }
    }

    #[test]
    fn a_minute_shows_rtt_in_seconds_and_one_without_answers_removes_them() {
        let metrics = Metrics::new().unwrap();
        let public = target(TargetKind::Public, "1.1.1.1");
        let minute = MinuteAggregate {
            minute: Timestamp::from_millis(1_795_546_020_000),
            sent: 6,
            lost: 1,
            rtt_min_us: Some(9_500),
            rtt_median_us: Some(12_250),
            rtt_max_us: Some(80_000),
            under_load: false,
        };
        metrics.observe_probe_minute(&public, &minute);
        for line in [
            r#"internet_monitor_probe_rtt_min_seconds{kind="public",target="1.1.1.1"} 0.0095"#,
            r#"internet_monitor_probe_rtt_median_seconds{kind="public",target="1.1.1.1"} 0.01225"#,
            r#"internet_monitor_probe_rtt_max_seconds{kind="public",target="1.1.1.1"} 0.08"#,
        ] {
            assert_line(&metrics, line);
        }
        let loss = lines(&metrics)
            .into_iter()
            .find(|l| l.starts_with("internet_monitor_probe_loss_ratio{"))
            .unwrap();
        let value: f64 = loss.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((value - 1.0 / 6.0).abs() < 1e-12, "{loss}");

        // A minute where every probe was lost: no RTT (absent, not 0), loss 1.
        metrics.observe_probe_minute(
            &public,
            &MinuteAggregate {
                lost: 6,
                rtt_min_us: None,
                rtt_median_us: None,
                rtt_max_us: None,
                ..minute
            },
        );
        assert_absent(&metrics, "internet_monitor_probe_rtt_min_seconds");
        assert_absent(&metrics, "internet_monitor_probe_rtt_median_seconds");
        assert_absent(&metrics, "internet_monitor_probe_rtt_max_seconds");
        assert_line(
            &metrics,
            r#"internet_monitor_probe_loss_ratio{kind="public",target="1.1.1.1"} 1"#,
        );
        // A minute that sent nothing (only marked under load) has no loss ratio either.
        metrics.observe_probe_minute(
            &public,
            &MinuteAggregate {
                sent: 0,
                lost: 0,
                under_load: true,
                ..minute
            },
        );
        assert_absent(&metrics, "internet_monitor_probe_loss_ratio");
    }

    #[test]
    fn one_targets_minute_leaves_the_others_alone() {
        let metrics = Metrics::new().unwrap();
        let minute = |lost, rtt| MinuteAggregate {
            minute: Timestamp::from_millis(1_795_546_020_000),
            sent: 6,
            lost,
            rtt_min_us: rtt,
            rtt_median_us: rtt,
            rtt_max_us: rtt,
            under_load: false,
        };
        let one = target(TargetKind::Public, "1.1.1.1");
        let nine = target(TargetKind::Public, "9.9.9.9");
        metrics.observe_probe_minute(&one, &minute(0, Some(10_000)));
        metrics.observe_probe_minute(&nine, &minute(6, None));
        assert_line(
            &metrics,
            r#"internet_monitor_probe_rtt_median_seconds{kind="public",target="1.1.1.1"} 0.01"#,
        );
        assert!(!text(&metrics).contains(r#"rtt_median_seconds{kind="public",target="9.9.9.9"}"#));
    }

    #[test]
    fn rounds_and_outages_follow_the_monitor() {
        let metrics = Metrics::new().unwrap();
        metrics.set_probe_interval(Duration::from_secs(10));
        let round = |millis, gateway, public| Round {
            at: Timestamp::from_millis(millis),
            gateway,
            public,
        };
        metrics.observe_round(&round(T0, true, true), None);
        assert_line(&metrics, "internet_monitor_connectivity_up 1");

        // A down round before the outage is confirmed: down, no outage yet.
        metrics.observe_round(&round(T0 + 10_000, true, false), None);
        assert_line(&metrics, "internet_monitor_connectivity_up 0");
        assert_line(&metrics, r#"internet_monitor_outage_ongoing{kind="isp"} 0"#);

        let isp = outage(T0 + 10_000, OutageKind::Isp);
        metrics.outage_opened(&isp);
        metrics.observe_round(&round(T0 + 20_000, true, false), Some(&isp));
        metrics.add_outage_time(OutageKind::Isp, Duration::from_millis(20_000));
        for line in [
            "internet_monitor_connectivity_up 0",
            r#"internet_monitor_outage_ongoing{kind="isp"} 1"#,
            r#"internet_monitor_outage_ongoing{kind="local"} 0"#,
            r#"internet_monitor_outages_total{kind="isp"} 1"#,
            r#"internet_monitor_outages_total{kind="local"} 0"#,
            r#"internet_monitor_outage_seconds_total{kind="isp"} 20"#,
            "internet_monitor_last_outage_start_timestamp_seconds{kind=\"isp\"} 1795546083.292",
        ] {
            assert_line(&metrics, line);
        }
        assert!(
            !text(&metrics)
                .contains(r#"internet_monitor_last_outage_start_timestamp_seconds{kind="local"}"#)
        );

        // The gateway goes too: the outage switches to local.
        let local = outage(T0 + 30_000, OutageKind::Local);
        metrics.outage_opened(&local);
        metrics.observe_round(&round(T0 + 40_000, false, false), Some(&local));
        metrics.add_outage_time(OutageKind::Local, Duration::from_millis(10_500));
        for line in [
            r#"internet_monitor_outage_ongoing{kind="isp"} 0"#,
            r#"internet_monitor_outage_ongoing{kind="local"} 1"#,
            r#"internet_monitor_outages_total{kind="local"} 1"#,
            r#"internet_monitor_outage_seconds_total{kind="local"} 10.5"#,
            r#"internet_monitor_outage_seconds_total{kind="isp"} 20"#,
        ] {
            assert_line(&metrics, line);
        }

        // Up again: nothing ongoing, the last starts stay.
        metrics.observe_round(&round(T0 + 50_000, false, true), None);
        assert_line(&metrics, "internet_monitor_connectivity_up 1");
        assert_line(
            &metrics,
            r#"internet_monitor_outage_ongoing{kind="local"} 0"#,
        );
        assert_line(
            &metrics,
            "internet_monitor_last_outage_start_timestamp_seconds{kind=\"local\"} 1795546103.292",
        );
    }

    #[test]
    fn restored_outages_show_the_newest_start_per_kind_and_count_nothing() {
        let metrics = Metrics::new().unwrap();
        metrics.set_probe_interval(Duration::from_secs(10));
        metrics.restore_outages(&[
            outage(T0 - 7_200_000, OutageKind::Isp),
            outage(T0 - 3_600_000, OutageKind::Isp),
            outage(T0 - 5_400_000, OutageKind::Isp),
        ]);
        assert_line(
            &metrics,
            "internet_monitor_last_outage_start_timestamp_seconds{kind=\"isp\"} 1795542473.292",
        );
        assert!(
            !text(&metrics)
                .contains(r#"internet_monitor_last_outage_start_timestamp_seconds{kind="local"}"#)
        );
        assert_line(&metrics, r#"internet_monitor_outages_total{kind="isp"} 0"#);
        // An older outage opening later (a clock set back) does not hide the newer start.
        metrics.outage_opened(&outage(T0 - 9_000_000, OutageKind::Isp));
        assert_line(
            &metrics,
            "internet_monitor_last_outage_start_timestamp_seconds{kind=\"isp\"} 1795542473.292",
        );
        assert_line(&metrics, r#"internet_monitor_outages_total{kind="isp"} 1"#);
    }

    #[test]
    fn every_probe_update_shows_in_the_very_next_scrape() {
        let metrics = Metrics::new().unwrap();
        let first = metrics.render().unwrap();
        metrics.observe_probe(&target(TargetKind::Public, "1.1.1.1"), &probe(T0, None));
        let second = metrics.render().unwrap();
        assert_ne!(first.as_ptr(), second.as_ptr());
        metrics.add_outage_time(OutageKind::Isp, Duration::from_secs(1));
        assert_ne!(metrics.render().unwrap().as_ptr(), second.as_ptr());
    }
}
