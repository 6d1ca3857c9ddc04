//! Hand-computed availability cases: times are seconds after an arbitrary origin.

use super::*;

const ORIGIN: u64 = 1_796_000_000_000;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_millis(ORIGIN + seconds * 1000)
}

fn run(start: u64, end: Option<u64>) -> Run {
    Run {
        start: at(start),
        end: end.map(at),
    }
}

fn outage(start: u64, end: Option<u64>, kind: OutageKind, unmonitored: u64) -> Outage {
    Outage {
        start: at(start),
        end: end.map(at),
        kind,
        unmonitored: Duration::from_secs(unmonitored),
        restarts: u32::from(unmonitored > 0),
    }
}

fn gap(start: u64, end: u64) -> Gap {
    Gap {
        start: at(start),
        end: at(end),
    }
}

#[test]
fn a_window_clips_the_figures_but_lists_the_outage_whole() {
    // Monitored 0–100 s; window 10–50 s; an isp outage 5–20 s.
    let runs = [run(0, Some(100))];
    let outages = [outage(5, Some(20), OutageKind::Isp, 0)];
    let answer = availability(at(10), at(50), at(1000), &runs, &outages, None);
    assert_eq!(answer.monitored_seconds, 40.0);
    assert_eq!(answer.unmonitored_seconds, 0.0);
    assert_eq!(
        answer.by_kind.isp.down_seconds, 10.0,
        "only 10–20 s is inside"
    );
    assert_eq!(answer.availability, Some(0.75), "(40 − 10) / 40");
    let listed = answer.outages[0];
    assert_eq!((listed.start, listed.end), (at(5), Some(at(20))));
    assert_eq!(
        (listed.duration_seconds, listed.down_seconds, listed.ongoing),
        (15.0, 15.0, false)
    );
    assert!(answer.unmonitored.is_empty());
    assert!(!answer.truncated);
}

#[test]
fn the_live_run_counts_up_to_now_and_its_ongoing_outage_is_the_live_one() {
    // This process's run started at 0 and has a stale heartbeat at 60 s in the store; now is
    // 100 s; the store has the outage opened at 80 s without the restart the live one knows.
    let runs = [run(0, Some(60))];
    let stored = outage(80, None, OutageKind::Isp, 0);
    let live = Live {
        run_start: at(0),
        ongoing: Some(Outage {
            restarts: 2,
            ..stored
        }),
    };
    let answer = availability(at(0), at(200), at(100), &runs, &[stored], Some(&live));
    assert_eq!(answer.monitored_seconds, 100.0, "the window ends at now");
    assert_eq!(answer.unmonitored_seconds, 0.0);
    assert_eq!(answer.availability, Some(0.8), "(100 − 20) / 100");
    let listed = answer.outages[0];
    assert!(listed.ongoing);
    assert_eq!(listed.end, None);
    assert_eq!(listed.duration_seconds, 20.0);
    assert_eq!(listed.down_seconds, 20.0);
    assert_eq!(
        listed.restarts, 2,
        "the live outage replaces the stored copy"
    );
}

#[test]
fn a_live_outage_not_stored_yet_is_listed() {
    let live = Live {
        run_start: at(0),
        ongoing: Some(outage(90, None, OutageKind::Local, 0)),
    };
    let answer = availability(at(0), at(100), at(100), &[], &[], Some(&live));
    assert_eq!(answer.monitored_seconds, 100.0);
    assert_eq!(answer.by_kind.local.count, 1);
    assert_eq!(answer.by_kind.local.down_seconds, 10.0);
    assert_eq!(
        answer.availability,
        Some(1.0),
        "a local outage is not the ISP's"
    );
}

#[test]
fn an_unmonitored_gap_inside_an_outage_is_neither_down_nor_monitored() {
    // Runs 0–50 s and 70–100 s; an isp outage 40–80 s spanning the restart (20 s
    // unmonitored, 20 s down); a local outage 90–95 s.
    let runs = [run(0, Some(50)), run(70, Some(100))];
    let outages = [
        outage(40, Some(80), OutageKind::Isp, 20),
        outage(90, Some(95), OutageKind::Local, 0),
    ];
    let answer = availability(at(0), at(100), at(1000), &runs, &outages, None);
    assert_eq!(answer.monitored_seconds, 80.0);
    assert_eq!(answer.unmonitored_seconds, 20.0);
    assert_eq!(answer.unmonitored, vec![gap(50, 70)]);
    assert_eq!(answer.by_kind.isp.down_seconds, 20.0);
    assert_eq!(answer.by_kind.local.down_seconds, 5.0);
    assert_eq!(
        answer.availability,
        Some(0.75),
        "(80 − 20) / 80; local not counted"
    );
    let isp = answer.outages[0];
    assert_eq!(
        (
            isp.duration_seconds,
            isp.down_seconds,
            isp.unmonitored_seconds
        ),
        (40.0, 20.0, 20.0)
    );
    assert_eq!(isp.restarts, 1);
}

#[test]
fn a_stored_open_outage_without_a_live_monitor_is_down_only_while_monitored() {
    // The monitor stopped at 50 s during an outage opened at 30 s; a report at 100 s.
    let runs = [run(0, Some(50))];
    let outages = [outage(30, None, OutageKind::Isp, 0)];
    assert_eq!(runs_needed_from(at(40), &outages, None), at(30));
    let answer = availability(at(40), at(100), at(100), &runs, &outages, None);
    assert_eq!(answer.monitored_seconds, 10.0);
    assert_eq!(answer.unmonitored_seconds, 50.0);
    assert_eq!(answer.unmonitored, vec![gap(50, 100)]);
    assert_eq!(answer.by_kind.isp.down_seconds, 10.0);
    assert_eq!(answer.availability, Some(0.0));
    let listed = answer.outages[0];
    assert!(listed.ongoing);
    assert_eq!(
        (
            listed.duration_seconds,
            listed.down_seconds,
            listed.unmonitored_seconds
        ),
        (70.0, 20.0, 50.0),
        "whole: 30–100 s, monitored 30–50 s"
    );
}

#[test]
fn nothing_monitored_has_no_availability_and_the_whole_window_is_a_gap() {
    let answer = availability(at(0), at(60), at(1000), &[], &[], None);
    assert_eq!(answer.availability, None);
    assert_eq!(answer.monitored_seconds, 0.0);
    assert_eq!(answer.unmonitored_seconds, 60.0);
    assert_eq!(answer.unmonitored, vec![gap(0, 60)]);
}

#[test]
fn runs_merge_and_a_run_without_a_stored_end_counts_as_nothing() {
    // 0–30 and 20–40 overlap (a clock step); 50 has no end (crashed before its first
    // heartbeat); 60–80; the window 10–70 at now 75.
    let runs = [
        run(0, Some(30)),
        run(20, Some(40)),
        run(50, None),
        run(60, Some(80)),
    ];
    let coverage = Coverage::of(&runs, None, at(75));
    let ms = |s: u64| ORIGIN + s * 1000;
    assert_eq!(coverage, Coverage(vec![(ms(0), ms(40)), (ms(60), ms(75))]));
    let answer = availability(at(10), at(70), at(75), &runs, &[], None);
    assert_eq!(answer.monitored_seconds, 40.0);
    assert_eq!(answer.unmonitored_seconds, 20.0);
    assert_eq!(answer.unmonitored, vec![gap(40, 60)]);
    assert_eq!(answer.availability, Some(1.0));
}

#[test]
fn lists_are_bounded_but_figures_count_everything() {
    let runs = [run(0, Some(100_000))];
    let outages: Vec<Outage> = (0..MAX_LISTED as u64 + 5)
        .map(|i| outage(i * 5, Some(i * 5 + 2), OutageKind::Isp, 0))
        .collect();
    let answer = availability(at(0), at(100_000), at(100_000), &runs, &outages, None);
    assert_eq!(answer.outages.len(), MAX_LISTED);
    assert!(answer.truncated);
    assert_eq!(answer.by_kind.isp.count, MAX_LISTED as u64 + 5);
    assert_eq!(
        answer.by_kind.isp.down_seconds,
        2.0 * (MAX_LISTED as f64 + 5.0)
    );
}
