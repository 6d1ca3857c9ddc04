//! Hand-computed step bucketing.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::probe::{ProbeMethod, Target, TargetId};
use crate::store::probes::ProbeStats;

/// 2026-11-30T00:00:00Z: a whole hour, so steps of 1, 5, 10 and 60 minutes all start here.
const ORIGIN: u64 = 1_796_083_200_000;

fn minute(n: u64) -> Timestamp {
    Timestamp::from_millis(ORIGIN + n * 60_000)
}

fn target(id: TargetId, kind: TargetKind, last: u8, method: ProbeMethod) -> StoredTarget {
    StoredTarget {
        id,
        target: Target {
            kind,
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)),
            method,
        },
    }
}

fn targets() -> Vec<StoredTarget> {
    vec![
        target(0, TargetKind::Public, 10, ProbeMethod::IcmpRaw),
        target(
            1,
            TargetKind::Gateway,
            1,
            ProbeMethod::TcpConnect { port: 53 },
        ),
        target(
            2,
            TargetKind::Public,
            10,
            ProbeMethod::TcpConnect { port: 443 },
        ),
    ]
}

/// Stats with RTTs `(min, median, max)` in ms.
fn stats(target: TargetId, sent: u32, lost: u32, rtt: Option<(u64, u64, u64)>) -> ProbeStats {
    ProbeStats {
        target,
        sent,
        lost,
        rtt_min_us: rtt.map(|r| r.0 * 1000),
        rtt_median_us: rtt.map(|r| r.1 * 1000),
        rtt_max_us: rtt.map(|r| r.2 * 1000),
        under_load_minutes: 0,
    }
}

fn row(start: Timestamp, minutes: u32, stats: Vec<ProbeStats>) -> ProbeRow {
    ProbeRow {
        start,
        minutes,
        stats,
    }
}

#[test]
fn rows_combine_per_step_across_a_step_boundary() {
    // Step 5 min: minutes 3 and 4 are in the step at 0, minute 5 starts the next.
    let mut loaded = stats(0, 6, 0, Some((12, 14, 16)));
    loaded.under_load_minutes = 1;
    let rows = [
        row(minute(3), 1, vec![stats(0, 6, 1, Some((10, 20, 40)))]),
        row(minute(4), 1, vec![loaded, stats(1, 6, 0, Some((1, 1, 2)))]),
        row(minute(5), 1, vec![stats(0, 6, 6, None)]),
    ];
    let mut bucketer = Bucketer::new(minute(0), minute(10), Duration::from_secs(300), &targets());
    for row in &rows {
        bucketer.add(row);
    }
    let series = bucketer.finish();
    assert_eq!(series.step_seconds, 300);
    assert_eq!(series.time, vec![ORIGIN / 1000, ORIGIN / 1000 + 300]);
    let [gateway, public] = &series.targets[..] else {
        panic!("two targets: {:?}", series.targets)
    };
    assert_eq!(
        (gateway.kind, gateway.method.as_str()),
        ("gateway", "tcp-connect:53")
    );
    assert_eq!(
        gateway.sent,
        vec![6, 0],
        "no gateway row in the second step"
    );
    assert_eq!(gateway.loss_ratio, vec![Some(0.0), None]);
    assert_eq!(gateway.rtt_median_ms, vec![Some(1.0), None]);
    assert_eq!(public.address, "192.0.2.10");
    assert_eq!(public.sent, vec![12, 6]);
    assert_eq!(public.lost, vec![1, 6]);
    assert_eq!(public.loss_ratio, vec![Some(1.0 / 12.0), Some(1.0)]);
    assert_eq!(public.rtt_min_ms, vec![Some(10.0), None]);
    assert_eq!(public.rtt_max_ms, vec![Some(40.0), None]);
    assert_eq!(
        public.rtt_median_ms,
        vec![Some(14.0), None],
        "lower middle of 14 and 20"
    );
    assert_eq!(public.under_load, vec![true, false]);
}

#[test]
fn a_ten_minute_bucket_sits_in_the_step_where_it_starts_and_minutes_follow() {
    // Step 1 min: a 10-minute bucket at 0 (downsampled data), then minute rows 10 and 12.
    // One address by two methods: two targets. A row of an unknown target is left out.
    let rows = [
        row(
            minute(0),
            10,
            vec![stats(0, 60, 3, Some((9, 11, 30))), stats(7, 60, 0, None)],
        ),
        row(minute(10), 1, vec![stats(2, 6, 0, Some((20, 21, 22)))]),
        row(minute(12), 1, vec![stats(0, 6, 0, Some((8, 9, 10)))]),
    ];
    let mut bucketer = Bucketer::new(minute(0), minute(20), STEP_UNIT, &targets());
    for row in &rows {
        bucketer.add(row);
    }
    let series = bucketer.finish();
    let base = ORIGIN / 1000;
    assert_eq!(series.time, vec![base, base + 600, base + 720]);
    let [icmp, tcp] = &series.targets[..] else {
        panic!("two targets: {:?}", series.targets)
    };
    assert_eq!(
        (icmp.method.as_str(), tcp.method.as_str()),
        ("icmp-raw", "tcp-connect:443")
    );
    assert_eq!(icmp.address, tcp.address);
    assert_eq!(icmp.sent, vec![60, 0, 6]);
    assert_eq!(
        tcp.sent,
        vec![0, 6, 0],
        "a target first seen later is backfilled"
    );
    assert_eq!(icmp.rtt_median_ms, vec![Some(11.0), None, Some(9.0)]);
    assert_eq!(tcp.rtt_max_ms, vec![None, Some(22.0), None]);
}

#[test]
fn default_steps_are_whole_minutes_and_at_most_720() {
    let day = Duration::from_secs(86_400);
    let from = minute(0);
    assert_eq!(
        default_step(from, from.saturating_add(day)),
        Duration::from_secs(120)
    );
    assert_eq!(
        default_step(from, from.saturating_add(Duration::from_secs(3600))),
        STEP_UNIT
    );
    let year = Duration::from_secs(365 * 86_400);
    let to = from.saturating_add(year);
    let step = default_step(from, to);
    assert_eq!(step, Duration::from_secs(730 * 60), "525 600 minutes / 720");
    assert!(step_count(from, to, step) <= DEFAULT_STEPS + 1);
    // A window not aligned to the step touches one step more at its edge.
    let odd = Timestamp::from_millis(ORIGIN + 30_000);
    let odd_to = odd.saturating_add(Duration::from_secs(720 * 120));
    assert_eq!(default_step(odd, odd_to), Duration::from_secs(120));
    assert_eq!(step_count(odd, odd_to, Duration::from_secs(120)), 721);
    assert_eq!(
        step_count(minute(0), minute(10), Duration::from_secs(300)),
        2
    );
    assert_eq!(
        step_count(
            minute(0),
            minute(10).saturating_add(Duration::from_millis(1)),
            Duration::from_secs(300)
        ),
        3
    );
}
