//! The connectivity monitor: probe targets, outages across restarts and clock steps, the gateway.

use super::*;

#[test]
fn probe_targets_parse_with_and_without_ports() {
    let parse = |text: &str| text.parse::<PublicTarget>();
    assert_eq!(
        parse("1.1.1.1"),
        Ok(PublicTarget {
            address: IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
            port: 443
        })
    );
    assert_eq!(parse("9.9.9.9:53").map(|t| t.port), Ok(53));
    assert_eq!(parse("[2606:4700:4700::1111]:853").map(|t| t.port), Ok(853));
    assert_eq!(parse("2606:4700:4700::1111").map(|t| t.port), Ok(443));
    assert_eq!(parse("[2001:db8::1]").map(|t| t.port), Ok(443));
    let error = parse("one.one.one.one").unwrap_err();
    assert!(error.contains("not an IP address"), "{error}");
    assert!(parse("1.1.1.1:0").unwrap_err().contains("port 0"));
    assert!(parse("1.1.1.1:99999").is_err());
    // Addresses that are this host, no one host, or need an interface are refused.
    for address in [
        "0.0.0.0",
        "127.0.0.1:443",
        "127.8.9.10",
        "::",
        "[::1]:53",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "fe80::1",
        "[fe80::1]:443",
    ] {
        let error = parse(address).unwrap_err();
        assert!(
            error.contains("this host itself")
                || error.contains("not one host")
                || error.contains("link-local"),
            "{address}: {error}"
        );
    }
    assert!(parse("169.254.1.1").is_ok());
    assert!(parse("10.0.0.1").is_ok());
    assert!(parse("fd00::1").is_ok());
}

/// Restarted with the clock an hour behind the stored run and its open outage: the
/// outage must not be continued and then closed before its start (the store refuses such
/// a record, which left the outage "ongoing" for ever): it ended when last seen.
#[test]
fn a_clock_behind_an_open_outage_at_start_up_ends_it_when_last_seen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("clock.redb")).unwrap();
    let t = |seconds: u64| Timestamp::from_millis(1_796_040_000_000 + seconds * 1000);
    let open = Outage {
        start: t(10_100),
        end: None,
        kind: OutageKind::Isp,
        unmonitored: Duration::ZERO,
        restarts: 0,
    };
    let previous = Run {
        start: t(10_000),
        end: Some(t(10_160)),
    };
    store
        .write_probes(&ProbeWrite {
            minute: None,
            outages: vec![open],
            run: Some(previous),
        })
        .unwrap();
    let config = ProbeConfig {
        interval: Duration::from_secs(10),
        public: Vec::new(),
        gateway: GatewayChoice::Off,
    };
    let now = t(10_160 - 3600);
    let monitor = Monitor::start(&store, config, now).unwrap();
    let closed = Outage {
        end: Some(t(10_160)),
        ..open
    };
    assert_eq!(store.open_outage().unwrap(), None);
    assert_eq!(
        store.outages(Timestamp::EPOCH, Timestamp::MAX).unwrap(),
        [closed]
    );
    // Still down: a new outage, dated by this run's clock, that closes after its start.
    let mut tracker = monitor.tracker.clone();
    assert_eq!(tracker.ongoing(), None);
    let round = |seconds: u64, public: bool| Round {
        at: now.saturating_add(Duration::from_secs(seconds)),
        gateway: true,
        public,
    };
    assert!(tracker.round(round(0, false)).is_empty());
    assert!(matches!(
        tracker.round(round(10, false))[..],
        [Event::Opened(_)]
    ));
    let events = tracker.round(round(20, true));
    let [Event::Closed(ended)] = events[..] else {
        panic!("{events:?}");
    };
    assert_eq!((ended.start, ended.end), (now, Some(round(20, true).at)));
    store
        .write_probes(&ProbeWrite {
            outages: vec![ended],
            ..ProbeWrite::default()
        })
        .unwrap();
    assert_eq!(store.open_outage().unwrap(), None);
}

/// An outage opened in a run whose clock was two hours behind (so that run is keyed
/// before the one that ran before it) and left open: after a restart with the clock right,
/// the gap since it was last seen is unmonitored, not two hours of outage.
#[test]
fn an_outage_resumed_counts_the_gap_since_the_run_it_was_seen_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("seen.redb")).unwrap();
    let t = |seconds: u64| Timestamp::from_millis(1_796_040_000_000 + seconds * 1000);
    let behind = Run {
        start: t(0),
        end: Some(t(7)),
    };
    let open = Outage {
        start: t(1),
        end: None,
        kind: OutageKind::Local,
        unmonitored: Duration::ZERO,
        restarts: 0,
    };
    let earlier_but_keyed_later = Run {
        start: t(7200),
        end: Some(t(7207)),
    };
    for write in [
        ProbeWrite {
            run: Some(earlier_but_keyed_later),
            ..ProbeWrite::default()
        },
        ProbeWrite {
            outages: vec![open],
            run: Some(behind),
            ..ProbeWrite::default()
        },
    ] {
        store.write_probes(&write).unwrap();
    }
    let config = ProbeConfig {
        interval: Duration::from_secs(10),
        public: Vec::new(),
        gateway: GatewayChoice::Off,
    };
    let now = t(7216);
    let monitor = Monitor::start(&store, config, now).unwrap();
    let mut tracker = monitor.tracker.clone();
    let events = tracker.round(Round {
        at: now,
        gateway: false,
        public: false,
    });
    let [Event::Resumed(resumed)] = events[..] else {
        panic!("{events:?}");
    };
    assert_eq!(resumed.start, open.start);
    assert_eq!(resumed.restarts, 1);
    assert_eq!(resumed.unmonitored, Duration::from_secs(7216 - 7));
}

#[test]
fn a_gateway_silent_while_the_line_works_is_said_once_and_again_when_it_answers() {
    let mut watch = SilentGateway::default();
    for _ in 1..SILENT_GATEWAY_ROUNDS {
        assert_eq!(watch.observe(Some(false), true), None);
    }
    // Down rounds neither count nor reset.
    assert_eq!(watch.observe(Some(false), false), None);
    assert_eq!(
        watch.observe(Some(false), true),
        Some(GatewayNotice::Silent)
    );
    assert_eq!(watch.observe(Some(false), true), None, "said once");
    assert_eq!(
        watch.observe(Some(true), true),
        Some(GatewayNotice::Answers)
    );
    assert_eq!(watch.observe(Some(true), true), None);
    // An answer in between starts the count again; no gateway, nothing to say.
    for _ in 1..SILENT_GATEWAY_ROUNDS {
        assert_eq!(watch.observe(Some(false), true), None);
    }
    assert_eq!(watch.observe(Some(true), true), None);
    for _ in 0..2 * SILENT_GATEWAY_ROUNDS {
        assert_eq!(watch.observe(None, true), None);
    }
}

#[test]
fn the_timeout_is_half_the_interval_at_most_two_seconds() {
    let config = |secs| ProbeConfig {
        interval: Duration::from_secs(secs),
        public: Vec::new(),
        gateway: GatewayChoice::Off,
    };
    assert_eq!(config(10).timeout(), Duration::from_secs(2));
    assert_eq!(config(2).timeout(), Duration::from_secs(1));
}

#[test]
fn finished_minutes_group_into_one_row_per_minute_by_target_id() {
    let stored = |id| StoredTarget {
        id,
        target: target(
            TargetKind::Public,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            ProbeMethod::IcmpRaw,
            443,
        ),
    };
    let minute = |at: u64, sent| MinuteAggregate {
        minute: Timestamp::from_millis(at),
        sent,
        lost: 0,
        rtt_min_us: Some(1),
        rtt_median_us: Some(2),
        rtt_max_us: Some(3),
        under_load: sent == 6,
    };
    let rows = rows_of(vec![
        (stored(2), minute(120_000, 6)),
        (stored(0), minute(120_000, 5)),
        (stored(1), minute(60_000, 4)),
    ]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].start, Timestamp::from_millis(60_000));
    assert_eq!(
        rows[1].stats.iter().map(|s| s.target).collect::<Vec<_>>(),
        [0, 2]
    );
    assert_eq!(rows[1].stats[1].under_load_minutes, 1);
    assert_eq!(rows[1].stats[0].under_load_minutes, 0);
}
