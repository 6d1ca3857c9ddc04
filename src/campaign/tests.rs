//! Campaigns: the measuring days and rounds a protocol asks for, simulated in a zone.

use super::*;

fn berlin() -> Zone {
    Zone::parse("Europe/Berlin").unwrap()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn de() -> Protocol {
    Protocol::of(RuleSet::DeBnetza).unwrap()
}

/// Runs the campaign to completion: each run starts when planned, takes `takes`, and
/// fails when `fails(i)` for the i-th attempt. Returns the attempts and the notes.
fn simulate(
    protocol: &Protocol,
    zone: &Zone,
    start: Timestamp,
    takes: Duration,
    fails: impl Fn(usize) -> bool,
) -> (Vec<Attempt>, Vec<String>) {
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut notes = Vec::new();
    let mut now = start;
    for i in 0..500 {
        let plan = plan(protocol, zone, &attempts, now);
        notes.extend(plan.note.clone());
        let Some(next) = plan.next else {
            return (attempts, notes);
        };
        assert!(next >= now, "planned {next} before now {now}");
        attempts.push(Attempt {
            start: next,
            end: next.saturating_add(takes),
            success: !fails(i),
        });
        now = next.saturating_add(takes);
    }
    panic!("no end after 500 runs");
}

fn dates(zone: &Zone, attempts: &[Attempt]) -> Vec<String> {
    let mut out: Vec<String> = attempts
        .iter()
        .filter(|a| a.success)
        .map(|a| zone.local_date(a.start).to_string())
        .collect();
    out.dedup();
    out
}

#[test]
fn only_de_bnetza_and_at_rtr_have_a_protocol() {
    for rules in RuleSet::ALL {
        assert_eq!(
            Protocol::of(rules).is_some(),
            rules.has_campaign(),
            "{rules}"
        );
    }
}

#[test]
fn de_bnetza_runs_ten_a_day_on_three_days_with_a_free_day_between() {
    let zone = berlin();
    let takes = Duration::from_secs(40);
    let (attempts, notes) = simulate(&de(), &zone, at("2026-03-02T07:00:00Z"), takes, |_| false);
    assert_eq!(attempts.len(), 30);
    assert_eq!(
        dates(&zone, &attempts),
        ["2026-03-02", "2026-03-04", "2026-03-06"]
    );
    assert!(notes.is_empty(), "{notes:?}");
    for day in attempts.chunks(10) {
        for (k, pair) in day.windows(2).enumerate() {
            let gap = pair[1].start.duration_since(pair[0].end);
            let wanted = if k == 4 { MINUTE * 195 } else { MINUTE * 15 };
            assert_eq!(gap, wanted, "gap after run {}", k + 1);
        }
    }
    // The first day starts at once; the later ones at local midnight.
    assert_eq!(attempts[0].start, at("2026-03-02T07:00:00Z"));
    assert_eq!(attempts[10].start, at("2026-03-03T23:00:00Z"));
}

#[test]
fn a_dst_change_inside_the_campaign_moves_local_midnight_not_the_rules() {
    let zone = berlin();
    // CEST begins on 29 March 2026 (02:00 → 03:00), the second measurement day.
    let (attempts, _) = simulate(
        &de(),
        &zone,
        at("2026-03-27T08:00:00Z"),
        Duration::from_secs(30),
        |_| false,
    );
    assert_eq!(
        dates(&zone, &attempts),
        ["2026-03-27", "2026-03-29", "2026-03-31"]
    );
    // Midnight of the 29th is still CET (+01:00); of the 31st, CEST (+02:00).
    assert_eq!(attempts[10].start, at("2026-03-28T23:00:00Z"));
    assert_eq!(attempts[20].start, at("2026-03-30T22:00:00Z"));
    // The 3-hour gap across the change is elapsed time, not wall-clock hours.
    let day = &attempts[10..20];
    assert_eq!(day[5].start.duration_since(day[4].end), MINUTE * 195);
}

#[test]
fn failures_do_not_count_and_retry_at_the_next_spacing() {
    let zone = berlin();
    let takes = Duration::from_secs(60);
    // The 3rd and 4th attempts fail.
    let (attempts, _) = simulate(&de(), &zone, at("2026-03-02T07:00:00Z"), takes, |i| {
        i == 2 || i == 3
    });
    assert_eq!(attempts.len(), 32);
    assert_eq!(attempts.iter().filter(|a| a.success).count(), 30);
    assert_eq!(
        attempts[3].start.duration_since(attempts[2].end),
        MINUTE * 15
    );
    // The long gap comes after the 5th counted run (the 7th attempt), not the 5th attempt.
    assert_eq!(
        attempts[7].start.duration_since(attempts[6].end),
        MINUTE * 195
    );
}

#[test]
fn a_day_that_cannot_finish_before_midnight_does_not_count() {
    let zone = berlin();
    // 20:00 local: a full day (about 5 h 35 min) no longer fits; it starts tomorrow.
    let plan0 = plan(&de(), &zone, &[], at("2026-03-02T19:00:00Z"));
    assert_eq!(plan0.next, Some(at("2026-03-02T23:00:00Z")));
    assert_eq!(plan0.note, None);
    // Three runs done from 17:00; the service was down until 21:00: the day is given up.
    let attempts: Vec<Attempt> = (0..3)
        .map(|i| {
            let start = at("2026-03-02T16:00:00Z").saturating_add(MINUTE * 16 * i);
            Attempt {
                start,
                end: start.saturating_add(MINUTE),
                success: true,
            }
        })
        .collect();
    let late = plan(&de(), &zone, &attempts, at("2026-03-02T20:00:00Z"));
    assert_eq!(late.next, Some(at("2026-03-02T23:00:00Z")));
    assert!(
        late.note
            .unwrap()
            .contains("cannot be finished before midnight")
    );
    // The next day, the partial day is not counted and a new one begins at once.
    let next = plan(&de(), &zone, &attempts, at("2026-03-03T06:00:00Z"));
    assert_eq!(next.next, Some(at("2026-03-03T06:00:00Z")));
    assert!(next.days.is_empty());
    assert!(next.note.unwrap().contains("2026-03-02 was not finished"));
}

#[test]
fn runs_too_close_together_are_not_counted() {
    let zone = berlin();
    // Two runs 1 min apart: the second does not count; the next comes 15 min after it.
    let first = at("2026-03-02T07:00:00Z");
    let attempts = [
        Attempt {
            start: first,
            end: first.saturating_add(Duration::from_secs(30)),
            success: true,
        },
        Attempt {
            start: first.saturating_add(MINUTE),
            end: first.saturating_add(MINUTE * 2),
            success: true,
        },
    ];
    let plan = plan(&de(), &zone, &attempts, first.saturating_add(MINUTE * 2));
    assert_eq!(plan.today, 1);
    assert_eq!(plan.next, Some(first.saturating_add(MINUTE * 17)));
}

#[test]
fn at_rtr_runs_two_hour_cycles_on_three_days() {
    let zone = Zone::parse("Europe/Vienna").unwrap();
    let protocol = Protocol::of(RuleSet::AtRtr).unwrap();
    let (attempts, notes) = simulate(
        &protocol,
        &zone,
        at("2026-03-02T07:00:00Z"),
        Duration::from_secs(40),
        |_| false,
    );
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(attempts.len(), 24);
    assert_eq!(
        dates(&zone, &attempts),
        ["2026-03-02", "2026-03-03", "2026-03-04"]
    );
    for cycle in attempts.chunks(8) {
        for pair in cycle.windows(2) {
            assert_eq!(pair[1].start.duration_since(pair[0].start), MINUTE * 15);
        }
    }
    // The rule set reads the same three cycles.
    let runs: Vec<crate::rules::Run> = attempts
        .iter()
        .map(|a| crate::rules::Run {
            time: a.start,
            result: crate::rules::RunResult::Success,
            download_bytes_per_second: Some(1e6),
            upload_bytes_per_second: Some(1e6),
            ping_seconds: Some(0.01),
        })
        .collect();
    let verdict = crate::rules::evaluate(
        RuleSet::AtRtr,
        &runs,
        &crate::plan::PlanHistory::default(),
        &zone,
    );
    assert!(verdict.progress.complete, "{:?}", verdict.progress);
}

#[test]
fn an_at_rtr_failure_keeps_its_slot_and_a_late_test_starts_the_cycle_over() {
    let zone = Zone::parse("Europe/Vienna").unwrap();
    let protocol = Protocol::of(RuleSet::AtRtr).unwrap();
    let (attempts, _) = simulate(
        &protocol,
        &zone,
        at("2026-03-02T07:00:00Z"),
        Duration::from_secs(40),
        |i| i == 3,
    );
    // The failed 4th test is one of the cycle's 8.
    assert_eq!(attempts.len(), 24);
    let first = at("2026-03-02T07:00:00Z");
    let tests: Vec<Attempt> = (0..5)
        .map(|i| Attempt {
            start: first.saturating_add(MINUTE * 15 * i),
            end: first.saturating_add(MINUTE * (15 * i + 1)),
            success: true,
        })
        .collect();
    // 40 min after the 5th test: the chain is broken, a new cycle starts now.
    let late = first.saturating_add(MINUTE * 100);
    let plan = plan(&protocol, &zone, &tests, late);
    assert_eq!((plan.next, plan.today), (Some(late), 0));
}

#[test]
fn at_rtr_days_must_lie_within_two_weeks() {
    let zone = Zone::parse("Europe/Vienna").unwrap();
    let protocol = Protocol::of(RuleSet::AtRtr).unwrap();
    let cycle = |day: &str| -> Vec<Attempt> {
        let first = at(&format!("{day}T07:00:00Z"));
        (0..9)
            .map(|i| {
                let start = first.saturating_add(MINUTE * 15 * i);
                Attempt {
                    start,
                    end: start.saturating_add(MINUTE),
                    success: true,
                }
            })
            .collect()
    };
    let mut attempts = cycle("2026-03-02");
    attempts.extend(cycle("2026-03-10"));
    // A third cycle 14 days after the first: the first no longer counts.
    attempts.extend(cycle("2026-03-16"));
    let plan = plan(&protocol, &zone, &attempts, at("2026-03-16T12:00:00Z"));
    assert_eq!(
        plan.days.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        ["2026-03-10", "2026-03-16"]
    );
    assert!(!plan.complete());
    assert!(plan.note.unwrap().contains("2026-03-02 no longer counts"));
}

#[test]
fn a_counted_day_the_protocol_can_no_longer_finish_with_is_dropped_with_a_note() {
    let zone = berlin();
    let (attempts, _) = simulate(
        &de(),
        &zone,
        at("2026-03-02T07:00:00Z"),
        Duration::from_secs(40),
        |_| false,
    );
    let first_day = &attempts[..10];
    // On the 13th the last day could come on the 15th, 13 days after the 2nd: it counts.
    let in_time = plan(&de(), &zone, first_day, at("2026-03-13T08:00:00Z"));
    assert_eq!(in_time.days.len(), 1);
    assert_eq!(in_time.note, None);
    // On the 14th (the service was down, or the clock jumped) it could come on the 16th.
    let late = plan(&de(), &zone, first_day, at("2026-03-14T08:00:00Z"));
    assert!(late.days.is_empty(), "{late:?}");
    assert!(
        late.note
            .as_deref()
            .is_some_and(|n| n.contains("day 2026-03-02 no longer counts")),
        "{late:?}"
    );
    assert_eq!(late.next, Some(at("2026-03-14T08:00:00Z")));
}

#[test]
fn a_complete_campaign_plans_nothing() {
    let zone = berlin();
    let (attempts, _) = simulate(
        &de(),
        &zone,
        at("2026-03-02T07:00:00Z"),
        Duration::from_secs(40),
        |_| false,
    );
    let done = plan(&de(), &zone, &attempts, at("2026-04-01T00:00:00Z"));
    assert!(done.complete());
    assert_eq!(done.days.len(), 3);
}
