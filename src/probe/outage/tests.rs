//! The scenarios as data, and the property that [`Tracker`] and [`classify`] agree.

use std::ops::Range;

use proptest::prelude::*;

use super::*;

const INTERVAL_MS: u64 = 10_000;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// Rounds every 10 s in `[from, to)`; `state(ms)` gives (gateway, public) at that moment.
fn rounds(from: u64, to: u64, state: impl Fn(u64) -> (bool, bool)) -> Vec<Round> {
    (from..to)
        .step_by(INTERVAL_MS as usize)
        .map(|ms| {
            let (gateway, public) = state(ms);
            round(ms, gateway, public)
        })
        .collect()
}

/// Feeds `runs` and `rounds` to a [`Tracker`]: its events, and its closed outages followed
/// by the ongoing one.
fn track(config: Config, runs: &[Run], rounds: &[Round]) -> (Vec<Event>, Vec<Outage>) {
    let mut tracker = Tracker::new(config);
    let mut events = Vec::new();
    for run in runs {
        tracker.start(run.start);
        for round in rounds
            .iter()
            .filter(|r| r.at >= run.start && run.end.is_none_or(|end| r.at <= end))
        {
            events.extend(tracker.round(*round));
        }
        if let Some(end) = run.end {
            tracker.stop(end);
        }
    }
    let mut outages: Vec<Outage> = events
        .iter()
        .filter_map(|event| match event {
            Event::Closed(outage) => Some(*outage),
            _ => None,
        })
        .collect();
    outages.extend(tracker.ongoing());
    (events, outages)
}

/// Both forms, checked equal.
fn both(runs: &[Run], rounds: &[Round]) -> Vec<Outage> {
    let batch = classify(Config::default(), runs, rounds);
    let (_, incremental) = track(Config::default(), runs, rounds);
    assert_eq!(batch, incremental);
    batch
}

fn round(ms: u64, gateway: bool, public: bool) -> Round {
    Round {
        at: t(ms),
        gateway,
        public,
    }
}

fn run(start: u64, end: Option<u64>) -> Run {
    Run {
        start: t(start),
        end: end.map(t),
    }
}

fn running(start: u64) -> Vec<Run> {
    vec![run(start, None)]
}

/// A service killed at 200 s (its last persisted moment) and started again at 260 s, probing
/// until `until`, with the ISP down during `isp_down`: its runs and rounds.
fn restarted_at_260_s(isp_down: Range<u64>, until: u64) -> ([Run; 2], Vec<Round>) {
    let runs = [run(0, Some(200_000)), run(260_000, None)];
    let state = |ms: u64| (true, !isp_down.contains(&ms));
    let mut all = rounds(0, 200_001, state);
    all.extend(rounds(260_000, until, state));
    (runs, all)
}

#[test]
fn a_35_s_router_internet_cut_is_one_isp_outage_of_35_s_within_one_interval() {
    // Every phase of the cut against the probe clock, 1 s apart.
    for offset in (0..INTERVAL_MS).step_by(1_000) {
        let (cut, restored) = (100_000 + offset, 135_000 + offset);
        let rounds = rounds(0, 300_000, |ms| (true, !(cut..restored).contains(&ms)));
        let outages = both(&running(0), &rounds);
        assert_eq!(outages.len(), 1, "offset {offset}: {outages:?}");
        let outage = outages[0];
        assert_eq!(outage.kind, OutageKind::Isp);
        let down = outage.down_time().unwrap().as_millis() as u64;
        assert!(
            down.abs_diff(35_000) <= INTERVAL_MS,
            "offset {offset}: {down} ms"
        );
        assert!(outage.start >= t(cut) && outage.start < t(cut + INTERVAL_MS));
    }
}

#[test]
fn a_home_router_cut_is_local_and_restoring_it_ends_the_outage() {
    let cut = 50_000..120_000;
    let rounds = rounds(0, 200_000, |ms| {
        let up = !cut.contains(&ms);
        (up, up)
    });
    let (events, outages) = track(Config::default(), &running(0), &rounds);
    assert_eq!(
        outages,
        vec![Outage {
            start: t(50_000),
            end: Some(t(120_000)),
            kind: OutageKind::Local,
            unmonitored: Duration::ZERO,
            restarts: 0,
        }]
    );
    // Opened at the second failed round, closed at the first good one.
    assert!(matches!(events[0], Event::Opened(o) if o.end.is_none() && o.start == t(50_000)));
    assert!(matches!(events[1], Event::Closed(o) if o.end == Some(t(120_000))));
    assert_eq!(events.len(), 2);
    assert_eq!(both(&running(0), &rounds), outages);
}

#[test]
fn an_outage_still_going_has_no_end() {
    let rounds = rounds(0, 100_000, |ms| (true, ms < 60_000));
    let outages = both(&running(0), &rounds);
    assert_eq!(outages.len(), 1);
    assert_eq!((outages[0].start, outages[0].end), (t(60_000), None));
}

#[test]
fn a_restart_during_an_outage_is_one_outage_with_an_unmonitored_gap() {
    // The ISP is down from 150 s to 310 s, across the restart.
    let (runs, all) = restarted_at_260_s(150_000..310_000, 400_000);
    let outages = both(&runs, &all);
    assert_eq!(
        outages,
        vec![Outage {
            start: t(150_000),
            end: Some(t(310_000)),
            kind: OutageKind::Isp,
            unmonitored: Duration::from_secs(60),
            restarts: 1,
        }]
    );
    assert_eq!(outages[0].down_time(), Some(Duration::from_secs(100)));
    assert_eq!(unmonitored_gaps(&runs), vec![(t(200_000), t(260_000))]);
    let (events, _) = track(Config::default(), &runs, &all);
    let resumed: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Resumed(_)))
        .collect();
    assert_eq!(resumed.len(), 1);
}

#[test]
fn the_restarted_service_continues_the_stored_outage() {
    // The first process opened the outage and died; the second restores it from the store.
    let open = Outage {
        start: t(150_000),
        end: None,
        kind: OutageKind::Isp,
        unmonitored: Duration::ZERO,
        restarts: 0,
    };
    let mut tracker = Tracker::restore(Config::default(), Some(open), t(200_000));
    tracker.start(t(260_000));
    let resumed = tracker.round(round(260_000, true, false));
    assert!(matches!(resumed[..], [Event::Resumed(o)] if o.unmonitored == Duration::from_secs(60)));
    let closed = tracker.round(round(270_000, true, true));
    assert!(
        matches!(closed[..], [Event::Closed(o)] if o.start == t(150_000) && o.end == Some(t(270_000)))
    );
    assert_eq!(tracker.ongoing(), None);
}

#[test]
fn an_outage_that_was_over_by_the_restart_ends_where_it_was_last_seen() {
    // The ISP is down from 150 s to 230 s, back before the restart.
    let (runs, all) = restarted_at_260_s(150_000..230_000, 300_000);
    let outages = both(&runs, &all);
    assert_eq!(outages.len(), 1);
    assert_eq!(
        (outages[0].start, outages[0].end, outages[0].unmonitored),
        (t(150_000), Some(t(200_000)), Duration::ZERO)
    );
}

#[test]
fn no_rounds_while_stopped_is_never_an_outage() {
    let runs = [run(0, Some(100_000)), run(900_000, None)];
    let mut all = rounds(0, 100_000, |_| (true, true));
    all.extend(rounds(900_000, 1_000_000, |_| (true, true)));
    // A round from the stopped period (a stray record) is ignored, not counted down.
    all.insert(10, round(500_000, false, false));
    all.sort_by_key(|r| r.at);
    assert_eq!(both(&runs, &all), vec![]);
}

#[test]
fn flapping_single_lost_probes_are_no_outage() {
    // Every other round loses the public targets, and every third the gateway too.
    let rounds = rounds(0, 600_000, |ms| {
        let n = ms / INTERVAL_MS;
        (!n.is_multiple_of(3), n.is_multiple_of(2))
    });
    assert!(rounds.iter().filter(|r| r.down().is_some()).count() > 20);
    assert_eq!(both(&running(0), &rounds), vec![]);
}

#[test]
fn a_local_outage_becomes_isp_when_the_gateway_returns() {
    // Gateway and internet down from 100 s; the gateway is back at 140 s; all up at 200 s.
    let rounds = rounds(0, 300_000, |ms| {
        let internet = !(100_000..200_000).contains(&ms);
        let gateway = !(100_000..140_000).contains(&ms);
        (gateway, internet)
    });
    let outages = both(&running(0), &rounds);
    let spans: Vec<_> = outages
        .iter()
        .map(|o| (o.kind, o.start, o.end.unwrap()))
        .collect();
    assert_eq!(
        spans,
        vec![
            (OutageKind::Local, t(100_000), t(140_000)),
            (OutageKind::Isp, t(140_000), t(200_000)),
        ]
    );
}

#[test]
fn one_round_of_the_other_kind_does_not_change_the_kind() {
    let rounds = rounds(0, 300_000, |ms| {
        let internet = !(100_000..200_000).contains(&ms);
        (ms != 150_000, internet)
    });
    let outages = both(&running(0), &rounds);
    assert_eq!(outages.len(), 1);
    assert_eq!(outages[0].kind, OutageKind::Isp);
}

#[test]
fn outage_kind_names_are_stable() {
    assert_eq!(OutageKind::Isp.name(), "isp");
    assert_eq!(OutageKind::Local.name(), "local");
}

/// Runs as (gap before in ms, rounds as (step in ms, gateway, public)), the last maybe
/// still going.
fn scenario() -> impl Strategy<Value = (u32, Vec<Run>, Vec<Round>)> {
    let step = (1u64..30_000, any::<bool>(), prop::bool::weighted(0.4));
    let run = (
        1u64..200_000,
        prop::collection::vec(step, 0..25),
        0u64..20_000,
    );
    (1u32..4, prop::collection::vec(run, 1..5), any::<bool>()).prop_map(
        |(confirm, spec, last_open)| {
            let mut runs = Vec::new();
            let mut rounds = Vec::new();
            let mut now = 0u64;
            let count = spec.len();
            for (index, (gap, steps, tail)) in spec.into_iter().enumerate() {
                now += gap;
                let start = now;
                for (step, gateway, public) in steps {
                    now += step;
                    rounds.push(round(now, gateway, public));
                }
                now += tail;
                let end = (index + 1 < count || !last_open).then_some(t(now));
                runs.push(Run {
                    start: t(start),
                    end,
                });
            }
            (confirm, runs, rounds)
        },
    )
}

proptest! {
    #[test]
    fn the_tracker_and_the_batch_classifier_agree((confirm, runs, rounds) in scenario()) {
        let config = Config { confirm_rounds: confirm };
        let batch = classify(config, &runs, &rounds);
        let (_, incremental) = track(config, &runs, &rounds);
        prop_assert_eq!(&batch, &incremental);
        // Outages are ordered, disjoint, and only the last may be ongoing.
        for pair in batch.windows(2) {
            let end = pair[0].end;
            prop_assert!(end.is_some_and(|end| end <= pair[1].start));
        }
        for outage in &batch {
            prop_assert!(outage.end.is_none_or(|end| end >= outage.start));
        }
    }
}
