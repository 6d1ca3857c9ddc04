//! Samples: serialisation, validation and the figures for people.

use super::*;

#[test]
fn failure_serialises_unknowns_as_null() {
    let sample = Sample::failure(
        Timestamp::from_millis(1_700_000_000_000),
        Trigger::Manual,
        FailureReason::RateLimited,
        "Limit reached",
    );
    let json = serde_json::to_value(&sample).unwrap();
    assert_eq!(json["time"], "2023-11-14T22:13:20.000Z");
    assert_eq!(json["outcome"], "failure");
    assert_eq!(json["reason"], "rate_limited");
    assert_eq!(json["trigger"], "manual");
    assert!(json["download_bytes_per_second"].is_null());
    assert!(json["server"].is_null());
    assert!(json.get("client").is_none(), "no client unless --store-ip");
}

#[test]
fn reason_names_are_their_serde_names() {
    for reason in FailureReason::ALL {
        assert_eq!(
            serde_json::to_value(reason).unwrap(),
            serde_json::Value::from(reason.as_str())
        );
    }
}

#[test]
fn units_for_people_read_as_decimals() {
    assert_eq!(millis(0.005631), 5.631);
    assert_eq!(millis(0.00048), 0.48);
    assert_eq!(percent(0.015), 1.5);
    assert_eq!(percent(0.0), 0.0);
    assert_eq!(mbit_per_second(62_500_000.0), 500.0);
}

#[test]
fn validate_enforces_reason_iff_failure() {
    let mut sample = Sample::empty(Timestamp::from_millis(0), Trigger::Manual);
    assert_eq!(sample.validate(), Ok(()));
    sample.reason = Some(FailureReason::Exit);
    assert_eq!(sample.validate(), Err(InvalidSample::SuccessWithReason));
    sample.outcome = Outcome::Failure;
    sample.reason = None;
    assert_eq!(sample.validate(), Err(InvalidSample::FailureWithoutReason));
}

#[test]
fn validate_refuses_states_the_scheduler_never_produces() {
    let time = Timestamp::from_millis(0);
    let budget = Sample {
        outcome: Outcome::Skipped,
        ..Sample::failure(
            time,
            Trigger::Schedule,
            FailureReason::DataBudget,
            "used up",
        )
    };
    assert_eq!(budget.validate(), Ok(()), "what the scheduler writes");
    let failed = Sample::failure(time, Trigger::Manual, FailureReason::Timeout, "timed out");
    assert_eq!(
        Sample {
            duration_seconds: Some(120.0),
            ..failed.clone()
        }
        .validate(),
        Ok(()),
        "a failure lasted as long as it did"
    );
    assert_eq!(
        Sample {
            downloaded_bytes: Some(20_000_000),
            uploaded_bytes: Some(0),
            ..failed.clone()
        }
        .validate(),
        Ok(()),
        "a failure moved what it moved before it failed"
    );
    let cases: [(Sample, &str); 7] = [
        (
            Sample {
                outcome: Outcome::Failure,
                ..budget.clone()
            },
            "a failed sample cannot have reason data_budget: a run the data budget stopped is skipped, not failed",
        ),
        (
            Sample {
                reason: Some(FailureReason::Exit),
                ..budget.clone()
            },
            "a skipped sample must have reason data_budget, the only reason a run is skipped, not exit",
        ),
        (
            Sample {
                reason: Some(FailureReason::RateLimited),
                ..budget.clone()
            },
            "a skipped sample must have reason data_budget, the only reason a run is skipped, not rate_limited",
        ),
        (
            Sample {
                reason: None,
                ..budget.clone()
            },
            "a skipped sample must have reason data_budget, the only reason a run is skipped, not none",
        ),
        (
            Sample {
                download_bytes_per_second: Some(1e6),
                downloaded_bytes: Some(1000),
                duration_seconds: Some(20.0),
                ..budget.clone()
            },
            "a skipped sample carries what a run that never started cannot have (download, downloaded bytes, duration)",
        ),
        (
            Sample {
                ping_seconds: Some(0.01),
                packet_loss_ratio: Some(0.0),
                uploaded_bytes: Some(5),
                ..failed.clone()
            },
            "a failed sample carries what only a success has (ping, packet loss ratio)",
        ),
        (
            Sample {
                uploaded_bytes: Some(0),
                ..budget.clone()
            },
            "a skipped sample carries what a run that never started cannot have (uploaded bytes)",
        ),
    ];
    for (sample, message) in cases {
        assert_eq!(
            sample.validate().map_err(|err| err.to_string()),
            Err(message.to_owned())
        );
    }
}

#[test]
fn validate_refuses_engines_the_recorder_never_writes() {
    let time = Timestamp::from_millis(0);
    let failed = Sample::failure(time, Trigger::Manual, FailureReason::Timeout, "timed out");
    for engine in [Engine::ookla(), Engine::cloudflare_example()] {
        let sample = Sample {
            engine: Some(Arc::new(engine)),
            ..failed.clone()
        };
        assert_eq!(sample.validate(), Ok(()));
    }
    let skipped = Sample {
        outcome: Outcome::Skipped,
        engine: Some(Arc::new(Engine::ookla())),
        ..Sample::failure(
            time,
            Trigger::Schedule,
            FailureReason::DataBudget,
            "used up",
        )
    };
    let ookla_with = Sample {
        engine: Some(Arc::new(Engine {
            name: EngineName::Ookla,
            ..Engine::cloudflare_example()
        })),
        ..failed.clone()
    };
    let ookla_with_streams = Sample {
        engine: Some(Arc::new(Engine {
            streams: Some(1),
            ..Engine::ookla()
        })),
        ..failed.clone()
    };
    let cases = [
        (
            skipped,
            "a skipped sample must not have an engine: no engine ran, nothing was measured",
        ),
        (
            ookla_with,
            "an ookla engine has no parameters of its own (the Ookla CLI chooses them), but this one has protocol, url, streams, duration_seconds, ramp_up_seconds",
        ),
        (
            ookla_with_streams,
            "an ookla engine has no parameters of its own (the Ookla CLI chooses them), but this one has streams",
        ),
    ];
    for (sample, message) in cases {
        assert_eq!(
            sample.validate().map_err(|err| err.to_string()),
            Err(message.to_owned())
        );
    }
}

#[test]
fn check_plausible_refuses_impossible_engine_parameters() {
    let limits = Limits {
        max_bytes_per_second: 1.25e9,
    };
    let with = |engine: Engine| Sample {
        engine: Some(Arc::new(engine)),
        ..Sample::failure(
            Timestamp::from_millis(0),
            Trigger::Manual,
            FailureReason::Timeout,
            "timed out",
        )
    };
    assert_eq!(
        with(Engine::cloudflare_example()).check_plausible(&limits),
        Ok(())
    );
    let at_the_limits = Engine {
        url: Some(format!("HTTP://{}", "x".repeat(MAX_URL_BYTES - 7))),
        streams: Some(MAX_ENGINE_STREAMS),
        duration_seconds: Some(MAX_TEST_SECONDS),
        ramp_up_seconds: Some(0.0),
        ..Engine::cloudflare_example()
    };
    assert_eq!(with(at_the_limits).check_plausible(&limits), Ok(()));
    let cases = [
        (
            Engine {
                streams: Some(0),
                ..Engine::cloudflare_example()
            },
            "engine streams 0 is outside 1 to 64",
        ),
        (
            Engine {
                streams: Some(65),
                ..Engine::cloudflare_example()
            },
            "engine streams 65 is outside 1 to 64",
        ),
        (
            Engine {
                duration_seconds: Some(f64::INFINITY),
                ramp_up_seconds: Some(f64::NAN),
                ..Engine::cloudflare_example()
            },
            "engine duration inf s is above 3600 s; engine ramp-up is not a number",
        ),
        (
            Engine {
                duration_seconds: Some(-1.0),
                ramp_up_seconds: Some(3600.5),
                ..Engine::cloudflare_example()
            },
            "engine duration -1 s is negative; engine ramp-up 3600.5 s is above 3600 s; engine ramp-up 3600.5 s is not shorter than its duration -1 s",
        ),
        (
            Engine {
                duration_seconds: Some(10.0),
                ramp_up_seconds: Some(10.0),
                ..Engine::cloudflare_example()
            },
            "engine ramp-up 10 s is not shorter than its duration 10 s",
        ),
        (
            Engine {
                url: Some("ftp://speed.example".into()),
                ..Engine::cloudflare_example()
            },
            "engine url is not an http:// or https:// URL",
        ),
        (
            Engine {
                url: Some("https://".into()),
                ..Engine::cloudflare_example()
            },
            "engine url is not an http:// or https:// URL",
        ),
        (
            Engine {
                url: Some("https://user:s3cr3t@speed.example/x".into()),
                ..Engine::cloudflare_example()
            },
            "engine url carries a user name or password, which the HTTP engine never \
             records (--http-server refuses them): remove them",
        ),
        (
            Engine {
                url: Some(format!("https://{}", "x".repeat(MAX_URL_BYTES))),
                ..Engine::cloudflare_example()
            },
            "engine url of 2056 bytes is longer than 2048 bytes",
        ),
    ];
    for (engine, message) in cases {
        assert_eq!(
            with(engine).check_plausible(&limits),
            Err(Implausible(message.to_owned()))
        );
    }
}

#[test]
fn cut_keeps_short_text_and_ends_long_text_with_an_ellipsis() {
    assert_eq!(cut("short", 256), "short");
    let long = cut(&"é".repeat(200), 256);
    assert!(long.ends_with('…') && long.len() <= 256 && long.len() >= 254);
    assert_eq!(cut(&"x".repeat(300), 10), "xxxxxxx…");
}

#[test]
fn check_plausible_refuses_impossible_figures_and_names_them() {
    let limits = Limits {
        max_bytes_per_second: 12.5e9,
    };
    let good = Sample {
        download_bytes_per_second: Some(1e6),
        upload_bytes_per_second: Some(2e6),
        ping_seconds: Some(0.0125),
        packet_loss_ratio: Some(0.0),
        duration_seconds: Some(20.5),
        ..Sample::empty(Timestamp::from_millis(0), Trigger::Manual)
    };
    assert_eq!(good.check_plausible(&limits), Ok(()));
    let at_the_limits = Sample {
        downloaded_bytes: Some(45_000_000_000_000),
        duration_seconds: Some(86400.0),
        isp: Some(Arc::from("é".repeat(128))),
        result_url: Some("u".repeat(2048)),
        message: Some("m".repeat(1024)),
        ..good.clone()
    };
    assert_eq!(at_the_limits.check_plausible(&limits), Ok(()));
    type Change = fn(&mut Sample);
    let cases: [(Change, &str); 21] = [
        (
            |s| s.download_bytes_per_second = Some(-1e6),
            "download -1000000 B/s is negative",
        ),
        (
            |s| s.upload_bytes_per_second = Some(1e308),
            "upload 1e308 B/s is above 100000 Mbit/s (12500000000 B/s) (--max-bandwidth)",
        ),
        (|s| s.ping_seconds = Some(-500.0), "ping -500 s is negative"),
        (
            |s| s.packet_loss_ratio = Some(7.0),
            "packet loss ratio 7 is above 1",
        ),
        (
            |s| s.jitter_seconds = Some(61.0),
            "jitter 61 s is above 60 s",
        ),
        (
            |s| s.download_latency_seconds = Some(f64::NAN),
            "download latency is not a number",
        ),
        (
            |s| s.upload_latency_seconds = Some(f64::INFINITY),
            "upload latency inf s is above 60 s",
        ),
        (
            |s| s.duration_seconds = Some(f64::INFINITY),
            "duration inf s is above 86400 s",
        ),
        (
            |s| s.duration_seconds = Some(f64::NEG_INFINITY),
            "duration -inf s is negative",
        ),
        (
            |s| {
                s.download_bytes_per_second = None;
                s.upload_bytes_per_second = None;
            },
            "a success without a download or upload figure",
        ),
        (
            |s| {
                s.download_bytes_per_second = Some(0.0);
                s.upload_bytes_per_second = Some(0.0);
            },
            "download and upload are both 0 B/s",
        ),
        (
            |s| {
                s.download_bytes_per_second = Some(0.0);
                s.upload_bytes_per_second = None;
            },
            "a success without an upload figure",
        ),
        // Issue 11: a byte count no test could move, a duration of centuries, a success
        // missing a figure the CLI path insists on, text of any length.
        (
            |s| s.downloaded_bytes = Some(u64::MAX),
            "downloaded bytes 18446744073709551615 B is above 45000000000000 B (--max-bandwidth × 3600 s)",
        ),
        (
            |s| s.uploaded_bytes = Some(45_000_000_000_001),
            "uploaded bytes 45000000000001 B is above 45000000000000 B (--max-bandwidth × 3600 s)",
        ),
        (
            |s| s.duration_seconds = Some(1e300),
            "duration 1e300 s is above 86400 s",
        ),
        (|s| s.ping_seconds = None, "a success without a ping figure"),
        (
            |s| {
                s.download_bytes_per_second = None;
                s.upload_bytes_per_second = None;
                s.ping_seconds = None;
            },
            "a success without a download, upload or ping figure",
        ),
        (
            |s| s.isp = Some(Arc::from("x".repeat(1_200_000))),
            "isp of 1200000 bytes is longer than 256 bytes",
        ),
        (
            |s| {
                s.server = Some(Arc::new(Server {
                    id: Some(1),
                    name: Some("n".repeat(257)),
                    location: Some("l".repeat(256)),
                    country: Some("c".repeat(300)),
                    host: Some("h".repeat(1000)),
                }))
            },
            "server name of 257 bytes is longer than 256 bytes; \
             server country of 300 bytes is longer than 256 bytes; \
             server host of 1000 bytes is longer than 256 bytes",
        ),
        (
            |s| s.result_url = Some(format!("https://{}", "u".repeat(2041))),
            "result url of 2049 bytes is longer than 2048 bytes",
        ),
        (
            |s| s.message = Some("m".repeat(1025)),
            "message of 1025 bytes is longer than 1024 bytes",
        ),
    ];
    for (change, message) in cases {
        let mut sample = good.clone();
        change(&mut sample);
        assert_eq!(
            sample.check_plausible(&limits),
            Err(Implausible(message.to_owned()))
        );
    }
    let failure = Sample::failure(
        Timestamp::from_millis(0),
        Trigger::Manual,
        FailureReason::Exit,
        "exit status 2",
    );
    assert_eq!(
        failure.check_plausible(&limits),
        Ok(()),
        "no figures needed"
    );
    let failure = Sample {
        ping_seconds: Some(-1.0),
        ..failure
    };
    assert!(
        failure.check_plausible(&limits).is_err(),
        "but none impossible"
    );
}
