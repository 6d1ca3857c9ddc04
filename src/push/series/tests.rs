//! The series of a sample, golden style (one line per series: name, labels, value, time),
//! their values against the scrape's for the same sample, the merge into a request, and the
//! `--remote-write.label` checks.

use super::*;
use crate::metrics::Metrics;
use crate::sample::Trigger;
use crate::time::Timestamp;

const T0: u64 = 1_795_546_073_292;

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
        ..Sample::empty(Timestamp::from_millis(millis), Trigger::Schedule)
    }
}

fn timeout(millis: u64) -> Sample {
    Sample {
        duration_seconds: Some(60.0),
        ..Sample::failure(
            Timestamp::from_millis(millis),
            Trigger::Schedule,
            FailureReason::Timeout,
            "no",
        )
    }
}

/// 100 Mbit/s down (12.5 MB/s), no upload contracted, 80 %.
fn plan() -> Plan {
    Plan {
        download: Some("100Mbit/s".parse().unwrap()),
        upload: None,
        threshold: 0.8,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// One line per series and point: `name{label="value",…} value @ms`, labels in their order.
fn render(series: &[TimeSeries]) -> String {
    let mut out = String::new();
    for one in series {
        let name = &one.labels[0];
        assert_eq!(name.name, NAME_LABEL, "__name__ first here");
        let rest: Vec<String> = one.labels[1..]
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect();
        for point in &one.samples {
            out.push_str(&format!(
                "{}{{{}}} {} @{}\n",
                name.value,
                rest.join(","),
                point.value,
                point.timestamp
            ));
        }
    }
    out
}

#[test]
fn a_success_with_a_plan() {
    let got = render(&series_of(
        &success(T0),
        &plan(),
        &labels(&[("site", "berlin")]),
    ));
    let expected = r#"speedtest_up{job="internet-monitor",site="berlin"} 1 @1795546073292
speedtest_run_result{job="internet-monitor",result="success",site="berlin"} 1 @1795546073292
speedtest_run_duration_seconds{job="internet-monitor",site="berlin"} 21.5 @1795546073292
speedtest_last_run_timestamp_seconds{job="internet-monitor",site="berlin"} 1795546073.292 @1795546073292
speedtest_last_success_timestamp_seconds{job="internet-monitor",site="berlin"} 1795546073.292 @1795546073292
speedtest_download_bytes_per_second{job="internet-monitor",site="berlin"} 92727670 @1795546073292
speedtest_upload_bytes_per_second{job="internet-monitor",site="berlin"} 11612345 @1795546073292
speedtest_ping_latency_seconds{job="internet-monitor",site="berlin"} 0.01234 @1795546073292
speedtest_ping_jitter_seconds{job="internet-monitor",site="berlin"} 0.000567 @1795546073292
speedtest_packet_loss_ratio{job="internet-monitor",site="berlin"} 0.002 @1795546073292
speedtest_download_latency_seconds{job="internet-monitor",site="berlin"} 0.0456 @1795546073292
speedtest_upload_latency_seconds{job="internet-monitor",site="berlin"} 0.0789 @1795546073292
speedtest_plan_download_bytes_per_second{job="internet-monitor",site="berlin"} 12500000 @1795546073292
speedtest_plan_threshold_ratio{job="internet-monitor",site="berlin"} 0.8 @1795546073292
speedtest_plan_met{job="internet-monitor",site="berlin"} 1 @1795546073292
"#;
    assert_eq!(got, expected);
    // Below 80 % of 12.5 MB/s: not met.
    let slow = Sample {
        download_bytes_per_second: Some(9_999_999.0),
        ..success(T0)
    };
    let got = render(&series_of(&slow, &plan(), &[]));
    assert!(
        got.ends_with("speedtest_plan_met{job=\"internet-monitor\"} 0 @1795546073292\n"),
        "{got}"
    );
}

#[test]
fn a_timeout_with_the_users_job() {
    let got = render(&series_of(
        &timeout(T0),
        &plan(),
        &labels(&[("job", "office"), ("site", "berlin")]),
    ));
    // No measurements and no verdict: a failure measured nothing; the plan in force still is.
    let expected = r#"speedtest_up{job="office",site="berlin"} 0 @1795546073292
speedtest_run_result{job="office",result="timeout",site="berlin"} 1 @1795546073292
speedtest_run_duration_seconds{job="office",site="berlin"} 60 @1795546073292
speedtest_last_run_timestamp_seconds{job="office",site="berlin"} 1795546073.292 @1795546073292
speedtest_plan_download_bytes_per_second{job="office",site="berlin"} 12500000 @1795546073292
speedtest_plan_threshold_ratio{job="office",site="berlin"} 0.8 @1795546073292
"#;
    assert_eq!(got, expected);
}

#[test]
fn a_sample_without_optional_fields_and_a_skipped_run() {
    let bare = Sample::empty(Timestamp::from_millis(T0), Trigger::Manual);
    let got = render(&series_of(&bare, &Plan::NONE, &[]));
    let expected = r#"speedtest_up{job="internet-monitor"} 1 @1795546073292
speedtest_run_result{job="internet-monitor",result="success"} 1 @1795546073292
speedtest_last_run_timestamp_seconds{job="internet-monitor"} 1795546073.292 @1795546073292
speedtest_last_success_timestamp_seconds{job="internet-monitor"} 1795546073.292 @1795546073292
"#;
    assert_eq!(got, expected);
    // A skipped run measured nothing and is no run: only its result, as speedtest_runs_total
    // counts it (data_budget), even with a plan and a duration.
    let skipped = Sample {
        outcome: Outcome::Skipped,
        reason: Some(FailureReason::DataBudget),
        duration_seconds: Some(0.0),
        ..Sample::empty(Timestamp::from_millis(T0), Trigger::Schedule)
    };
    let got = render(&series_of(&skipped, &Plan::NONE, &[]));
    assert_eq!(
        got,
        "speedtest_run_result{job=\"internet-monitor\",result=\"data_budget\"} 1 @1795546073292\n"
    );
}

#[test]
fn every_failure_reason_is_a_result_of_speedtest_runs_total() {
    let metrics = Metrics::new().unwrap();
    let scraped = String::from_utf8(metrics.render().unwrap().to_vec()).unwrap();
    for reason in FailureReason::ALL {
        let sample = Sample::failure(Timestamp::from_millis(T0), Trigger::Manual, reason, "x");
        let series = series_of(&sample, &Plan::NONE, &[]);
        let result = series
            .iter()
            .find(|s| s.labels[0].value == RUN_RESULT)
            .and_then(|s| s.labels.iter().find(|l| l.name == RESULT_LABEL))
            .map(|l| l.value.clone())
            .unwrap();
        let counted = format!("speedtest_runs_total{{result=\"{result}\"}} 0");
        assert!(
            scraped.lines().any(|line| line == counted),
            "{counted} missing from\n{scraped}"
        );
    }
}

/// The value of the unlabelled gauge `name` in a scrape, if shown.
fn scraped_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|value| value.parse().ok())
}

#[test]
fn pushed_values_equal_the_scrapes_for_the_same_sample() {
    let sample = success(T0);
    let metrics = Metrics::new().unwrap();
    metrics.set_plan(&plan());
    metrics.record(&sample);
    let scraped = String::from_utf8(metrics.render().unwrap().to_vec()).unwrap();
    let mut compared = 0;
    for one in series_of(&sample, &plan(), &[]) {
        let name = &one.labels[0].value;
        if [RUN_RESULT, PLAN_MET].contains(&name.as_str()) {
            continue;
        }
        let shown = scraped_value(&scraped, name)
            .unwrap_or_else(|| panic!("{name} is not scraped:\n{scraped}"));
        assert_eq!(one.samples[0].value, shown, "{name}");
        compared += 1;
    }
    assert_eq!(compared, 13);
    // And for a failure: speedtest_up and the run's duration.
    let metrics = Metrics::new().unwrap();
    metrics.record(&timeout(T0));
    let scraped = String::from_utf8(metrics.render().unwrap().to_vec()).unwrap();
    for one in series_of(&timeout(T0), &Plan::NONE, &[]) {
        let name = &one.labels[0].value;
        if name != RUN_RESULT {
            assert_eq!(Some(one.samples[0].value), scraped_value(&scraped, name));
        }
    }
}

#[test]
fn labels_are_sorted_in_byte_order() {
    let series = series_of(
        &Sample::empty(Timestamp::from_millis(T0), Trigger::Manual),
        &Plan::NONE,
        &labels(&[("zone", "a"), ("Site", "b"), ("_x", "c"), ("instance", "d")]),
    );
    for one in &series {
        let names: Vec<&str> = one.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }
    let names: Vec<&str> = series[0].labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["Site", "__name__", "_x", "instance", "job", "zone"],
        "an upper-case name sorts before __name__, as the specification's byte order says"
    );
}

#[test]
fn a_request_merges_by_label_set_in_time_order_without_duplicates() {
    let site = labels(&[("site", "berlin")]);
    let mut all = Vec::new();
    // Newest first, one sample twice, a failure between the successes.
    for sample in [
        success(T0 + 7_200_000),
        timeout(T0 + 3_600_000),
        success(T0),
    ] {
        all.extend(series_of(&sample, &plan(), &site));
    }
    all.extend(series_of(&success(T0), &plan(), &site));
    let mut changed = series_of(&success(T0 + 7_200_000), &plan(), &site);
    changed[0].samples[0].value = 42.0; // a second value at the same ms: the first stays
    all.extend(changed);
    all.push(TimeSeries {
        labels: vec![label(NAME_LABEL, "speedtest_empty")],
        samples: Vec::new(),
    });
    let request = request_of(all);
    let up = request
        .timeseries
        .iter()
        .find(|s| s.labels[0].value == family::UP)
        .unwrap();
    let points: Vec<(i64, f64)> = up.samples.iter().map(|p| (p.timestamp, p.value)).collect();
    let t = |ms: u64| i64::try_from(ms).unwrap();
    assert_eq!(
        points,
        [
            (t(T0), 1.0),
            (t(T0 + 3_600_000), 0.0),
            (t(T0 + 7_200_000), 1.0)
        ]
    );
    // One series per label set; each label set once; every series' points strictly ordered.
    let mut sets: Vec<&Vec<Label>> = request.timeseries.iter().map(|s| &s.labels).collect();
    let count = sets.len();
    sets.dedup();
    assert_eq!(sets.len(), count);
    for one in &request.timeseries {
        assert!(!one.samples.is_empty());
        assert!(
            one.samples
                .windows(2)
                .all(|w| w[0].timestamp < w[1].timestamp)
        );
    }
    // Success series (15) + timeout's result (1): run_result{success} and {timeout} differ.
    assert_eq!(request.timeseries.len(), 16);
    let timeouts = request
        .timeseries
        .iter()
        .find(|s| s.labels.iter().any(|l| l.value == "timeout"))
        .unwrap();
    assert_eq!(timeouts.samples.len(), 1);
}

#[test]
fn labels_are_checked_with_messages_naming_the_flag() {
    assert_eq!(
        parse_label("site=berlin"),
        Ok(("site".into(), "berlin".into()))
    );
    assert_eq!(
        parse_label("_Site_2=a=b c ü"),
        Ok(("_Site_2".into(), "a=b c ü".into())),
        "split at the first =; any UTF-8 value"
    );
    let refused = [
        ("site", "expected NAME=VALUE"),
        ("=berlin", "is not a Prometheus label name"),
        ("2site=a", "is not a Prometheus label name"),
        ("si-te=a", "is not a Prometheus label name"),
        ("sité=a", "is not a Prometheus label name"),
        ("__name__=x", "reserved for Prometheus"),
        ("__site=x", "reserved for Prometheus"),
        ("result=x", "a label this service sets itself"),
        ("site=", "the value is empty"),
    ];
    for (given, says) in refused {
        let err = parse_label(given).unwrap_err().to_string();
        assert!(err.starts_with("--remote-write.label "), "{err}");
        assert!(err.contains(says), "{given}: {err}");
        assert!(err.contains("e.g."), "the fix is shown: {err}");
    }
    assert_eq!(
        parse_labels(["site=a", "job=b"]),
        Ok(labels(&[("site", "a"), ("job", "b")]))
    );
    assert_eq!(
        parse_labels(["site=a", "job=b", "site=c"]),
        Err(LabelError::Duplicate {
            name: "site".into()
        })
    );
    // Within receivers' limits, or refused rather than every push being rejected.
    let longest = format!("site={}", "x".repeat(MAX_LABEL_VALUE_BYTES));
    assert!(parse_label(&longest).is_ok());
    let err = parse_label(&format!("{longest}x")).unwrap_err().to_string();
    assert!(err.contains("longer than 2048 bytes"), "{err}");
    let err = parse_label(&format!("{}=x", "n".repeat(MAX_LABEL_NAME_BYTES + 1)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("longer than 1024 bytes"), "{err}");
    let many: Vec<String> = (0..=MAX_LABELS).map(|i| format!("l{i}=v")).collect();
    let err = parse_labels(many.iter().map(String::as_str)).unwrap_err();
    assert_eq!(err, LabelError::TooMany { given: 21, max: 20 });
    assert!(
        err.to_string().starts_with("--remote-write.label "),
        "{err}"
    );
    assert!(parse_labels(many[..MAX_LABELS].iter().map(String::as_str)).is_ok());
}

/// The size of the pusher's largest request (100 samples): printed for the record (run with
/// `--nocapture`), and bounded so a change that bloats it is noticed.
#[test]
fn a_request_of_100_samples_is_small() {
    let site = labels(&[("site", "berlin")]);
    let series = (0..100u64).flat_map(|i| {
        let time = T0 + i * 3_600_000;
        let sample = if i % 10 == 9 {
            timeout(time)
        } else {
            Sample {
                download_bytes_per_second: Some(92_727_670.0 + i as f64 * 1_234.5),
                ..success(time)
            }
        };
        series_of(&sample, &plan(), &site)
    });
    let request = request_of(series);
    let protobuf = prost::Message::encoded_len(&request);
    let body = crate::push::proto::encode(&request);
    eprintln!(
        "100 samples: {} series, {protobuf} bytes of protobuf, {} bytes snappy-compressed",
        request.timeseries.len(),
        body.len()
    );
    assert!(body.len() < 32 * 1024, "{} bytes", body.len());
    assert_eq!(crate::push::proto::decode(&body).unwrap(), request);
}
