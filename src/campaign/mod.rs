//! Measurement campaigns (`serve --campaign NAME`): a pure planner that says when the next run
//! of a regulator's measurement protocol is due, from the campaign's runs so far and the time.
//!
//! Instants are UTC; the campaign's zone decides only which local calendar date a run belongs
//! to and where a day ends. The planner schedules conservatively (spacing counted from the
//! END of the previous run, with a margin), and counts a day only by the protocol's own rules
//! (spacing between start instants), so a day it schedules is a day the rule set counts.

pub(crate) mod live;

use std::time::Duration;

use jiff::ToSpan;
use jiff::civil::Date;

use crate::rules::RuleSet;
use crate::time::Timestamp;
use crate::zone::Zone;

const MINUTE: Duration = Duration::from_secs(60);

/// What the planner assumes one run takes, to judge whether a day can still be finished
/// before local midnight (a test takes under a minute; a slow CLI start is allowed for).
pub(crate) const ASSUMED_RUN: Duration = Duration::from_secs(2 * 60);

/// The label every campaign figure carries: what a campaign is not, and where the legal
/// procedure is.
pub(crate) const INDICATIVE: &str = "indicative: the legal procedure requires the regulator's own tool \
     (Germany: the Breitbandmessung desktop app of the Bundesnetzagentur, breitbandmessung.de; \
     Austria: the certified measurement of RTR, netztest.at)";

/// A measurement campaign as stored (`campaigns_v1`): its runs are the runs with trigger
/// `campaign` from `start` on (until `finished`).
#[derive(Clone, Debug, PartialEq)]
pub struct Campaign {
    /// When it began (UTC): its key.
    pub start: Timestamp,
    pub rules: RuleSet,
    /// The zone its calendar days are counted in, fixed when it began.
    pub(crate) zone: Zone,
    /// When its last run ended the protocol; `None` while it runs.
    pub finished: Option<Timestamp>,
}

impl Campaign {
    /// The end (exclusive, UTC) of the window its runs lie in: 1 ms after `finished`, or
    /// [`Timestamp::MAX`] while it runs.
    pub(crate) fn runs_end(&self) -> Timestamp {
        self.finished.map_or(Timestamp::MAX, |end| {
            end.saturating_add(std::time::Duration::from_millis(1))
        })
    }
}

/// How the spacing between a day's runs is counted when scheduling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spacing {
    /// The next run starts at least this long after the previous one ENDED (de-bnetza: the
    /// rule's "Abstand" read in the stricter way).
    AfterEnd(Duration),
    /// The next run starts this long after the previous one STARTED (at-rtr: "a test every
    /// 15 minutes").
    AfterStart(Duration),
}

impl Spacing {
    fn duration(self) -> Duration {
        match self {
            Spacing::AfterEnd(gap) | Spacing::AfterStart(gap) => gap,
        }
    }
}

/// A rule set's measurement protocol, as the planner schedules it: the rule's numbers are the
/// rule set's own constants ([`Protocol::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Protocol {
    pub(crate) rules: RuleSet,
    /// Measurements a day (de-bnetza) or tests a cycle (at-rtr) needs.
    pub(crate) per_day: usize,
    /// Days (cycles) a campaign needs.
    pub(crate) days: usize,
    /// How the planner spaces a day's runs (with its margin).
    pub(crate) spacing: Spacing,
    /// The shortest elapsed time between the start instants of two counted runs of a day (the
    /// rule, without the planner's margin).
    pub(crate) min_gap: Duration,
    /// `(k, rule, scheduled)`: the (k+1)-th counted run of a day starts at least `rule` after
    /// the k-th (counted start to start); the planner waits `scheduled` after its end.
    pub(crate) long_gap: Option<(usize, Duration, Duration)>,
    /// The shortest elapsed time between the first and last counted start of a day (at-rtr:
    /// a cycle lasts at least two hours).
    pub(crate) min_span: Duration,
    /// A day after a counted day is at least this many calendar dates later (de-bnetza: 2, one
    /// free calendar day between; at-rtr: 1, another day).
    pub(crate) next_day_after: i32,
    /// Every counted date lies within this many calendar dates (at-rtr: 14, two weeks); older
    /// days stop counting when a later one would fall outside.
    pub(crate) window_days: Option<i32>,
}

impl Protocol {
    /// The protocol of `rules`, or `None` when the rule set has no campaign. The rule's
    /// numbers are the rule set's own (`crate::rules::de_bnetza`, `crate::rules::at_rtr`); only
    /// the scheduling margins are the planner's.
    pub(crate) fn of(rules: RuleSet) -> Option<Protocol> {
        use crate::rules::{at_rtr, de_bnetza};
        match rules {
            // 10 measurements on each of 3 calendar days, a free calendar day between, at
            // least 5 min (unverified) between starts and 3 h before the 6th; scheduled 15 min
            // and 3 h 15 min after the previous run ENDED.
            RuleSet::DeBnetza => Some(Protocol {
                rules,
                per_day: de_bnetza::MEASUREMENTS_PER_DAY,
                days: de_bnetza::MEASUREMENT_DAYS,
                spacing: Spacing::AfterEnd(MINUTE * 15),
                min_gap: de_bnetza::MIN_SPACING,
                long_gap: Some((
                    5,
                    de_bnetza::SPACING_BEFORE_SIXTH,
                    de_bnetza::SPACING_BEFORE_SIXTH + MINUTE * 15,
                )),
                min_span: Duration::ZERO,
                next_day_after: 1 + de_bnetza::FREE_DAYS_BETWEEN as i32,
                window_days: Some(de_bnetza::MAX_SPAN_DAYS as i32),
            }),
            // A cycle of 8 tests, each starting 15 min (± 1 min) after the one before (a failed
            // test keeps its slot), 3 cycles on 3 different days within two weeks.
            RuleSet::AtRtr => Some(Protocol {
                rules,
                per_day: at_rtr::TESTS_PER_CYCLE,
                days: at_rtr::CYCLES,
                spacing: Spacing::AfterStart(at_rtr::TEST_INTERVAL),
                min_gap: at_rtr::TEST_INTERVAL.saturating_sub(at_rtr::INTERVAL_TOLERANCE),
                long_gap: None,
                min_span: Duration::ZERO,
                next_day_after: 1,
                window_days: Some(at_rtr::MAX_SPAN_DAYS as i32),
            }),
            RuleSet::UsFcc | RuleSet::UkOfcom => None,
        }
    }

    /// The least time from the start of a day's run number `done` (0-based, the next to run)
    /// to the end of its last run, with [`ASSUMED_RUN`] per run.
    fn rest_of_day(&self, done: usize) -> Duration {
        let mut total = Duration::ZERO;
        for k in done..self.per_day {
            total += ASSUMED_RUN;
            if k + 1 < self.per_day {
                total += match (self.long_gap, self.spacing) {
                    (Some((at, _, scheduled)), _) if k + 1 == at => scheduled,
                    (_, Spacing::AfterEnd(gap)) => gap,
                    // Start to start: the run's own time is part of the gap.
                    (_, Spacing::AfterStart(gap)) => gap.saturating_sub(ASSUMED_RUN),
                };
            }
        }
        total
    }

    /// The scheduled wait before counted run number `next` (0-based) of a day.
    fn wait_before(&self, next: usize) -> Duration {
        match self.long_gap {
            Some((at, _, scheduled)) if next == at => scheduled,
            _ => self.spacing.duration(),
        }
    }
}

/// One run of a campaign, as the planner reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) start: Timestamp,
    /// When it ended (its start plus its duration; the start when that is unknown).
    pub(crate) end: Timestamp,
    /// Whether it measured (a failure never counts).
    pub(crate) success: bool,
}

impl Attempt {
    /// The attempt of a stored sample; `None` for a skipped run.
    pub(crate) fn of(sample: &crate::sample::Sample) -> Option<Attempt> {
        if sample.outcome == crate::sample::Outcome::Skipped {
            return None;
        }
        let took = sample
            .duration_seconds
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(Duration::ZERO, |s| {
                Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
            });
        Some(Attempt {
            start: sample.time,
            end: sample.time.saturating_add(took),
            success: sample.is_success(),
        })
    }
}

/// What the planner decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The next run's start (UTC), `None` when the campaign is complete.
    pub(crate) next: Option<Timestamp>,
    /// Local dates counted as complete days (cycles), oldest first.
    pub(crate) days: Vec<Date>,
    /// Runs counted on the day in progress (0 when none is).
    pub(crate) today: usize,
    /// Something the log should say once: a day that does not count and why.
    pub(crate) note: Option<String>,
}

impl Plan {
    /// Whether the protocol is complete.
    pub(crate) fn complete(&self) -> bool {
        self.next.is_none()
    }
}

/// The runs of one local date that count, in time order. De-bnetza: the successes that keep
/// the spacing (start to start), greedily. At-rtr: the newest chain of tests (failures keep
/// their slot) each starting 15 min (± the tolerance) after the one before, up to the first
/// full cycle, as `rules::at_rtr::cycles` reads them.
fn counted(protocol: &Protocol, attempts: &[Attempt]) -> Vec<Attempt> {
    let mut used: Vec<Attempt> = Vec::new();
    if let Spacing::AfterStart(interval) = protocol.spacing {
        let latest = interval + interval.saturating_sub(protocol.min_gap);
        for attempt in attempts {
            if used.len() == protocol.per_day {
                break;
            }
            let follows = used.last().is_some_and(|last| {
                let gap = attempt.start.duration_since(last.start);
                gap >= protocol.min_gap && gap <= latest
            });
            if !follows {
                used.clear();
            }
            used.push(*attempt);
        }
        return used;
    }
    for attempt in attempts.iter().filter(|a| a.success) {
        if used.len() == protocol.per_day {
            break;
        }
        let fits = used.last().is_none_or(|last| {
            let gap = attempt.start.duration_since(last.start);
            let needed = match protocol.long_gap {
                Some((at, rule, _)) if used.len() == at => rule,
                _ => protocol.min_gap,
            };
            gap >= needed
        });
        if fits {
            used.push(*attempt);
        }
    }
    used
}

fn is_full(protocol: &Protocol, used: &[Attempt]) -> bool {
    used.len() == protocol.per_day
        && match (used.first(), used.last()) {
            (Some(first), Some(last)) => {
                last.start.duration_since(first.start) >= protocol.min_span
            }
            _ => false,
        }
}

fn add_days(date: Date, days: i32) -> Date {
    date.checked_add(days.days()).unwrap_or(date)
}

fn days_between(from: Date, to: Date) -> i64 {
    from.until(to).map_or(0, |span| i64::from(span.get_days()))
}

/// The first instant of `date` in `zone` (not always 00:00: a DST gap can skip midnight).
pub(crate) fn start_of(zone: &Zone, date: Date) -> Timestamp {
    date.to_zoned_datetime(zone.time_zone().clone())
        .and_then(|zoned| zoned.start_of_day())
        .ok()
        .and_then(|zoned| Timestamp::from_jiff(zoned.timestamp()))
        .unwrap_or(Timestamp::MAX)
}

/// The next run of a campaign of `protocol` in `zone`, given its `attempts` (oldest first,
/// failures included, only the campaign's own) and `now`.
pub(crate) fn plan(protocol: &Protocol, zone: &Zone, attempts: &[Attempt], now: Timestamp) -> Plan {
    let today = zone.local_date(now);
    // The attempts of each local date (of their start), in order.
    let mut dates: Vec<(Date, Vec<Attempt>)> = Vec::new();
    for attempt in attempts {
        let date = zone.local_date(attempt.start);
        match dates.last_mut() {
            Some((last, list)) if *last == date => list.push(*attempt),
            _ => dates.push((date, vec![*attempt])),
        }
    }
    let mut days: Vec<Date> = Vec::new();
    let mut note = None;
    let mut today_used: Vec<Attempt> = Vec::new();
    for (date, on_date) in &dates {
        if days.len() == protocol.days {
            break;
        }
        let eligible = days
            .last()
            .is_none_or(|last| days_between(*last, *date) >= i64::from(protocol.next_day_after));
        if !eligible {
            continue;
        }
        let used = counted(protocol, on_date);
        if is_full(protocol, &used) {
            if let Some(window) = protocol.window_days {
                while days
                    .first()
                    .is_some_and(|first| days_between(*first, *date) >= i64::from(window))
                {
                    let dropped = days.remove(0);
                    note = Some(format!(
                        "day {dropped} no longer counts: {date} is {window} or more days later"
                    ));
                }
            }
            days.push(*date);
        } else if *date == today {
            today_used = used;
        } else if *date < today {
            note = Some(format!(
                "day {date} was not finished ({} of {} measurements); it does not count, the \
                 next day starts over",
                used.len(),
                protocol.per_day
            ));
        }
    }
    // At-rtr: a chain whose next test can no longer start in time is over; a new one begins.
    if let Spacing::AfterStart(interval) = protocol.spacing {
        let latest = interval + interval.saturating_sub(protocol.min_gap);
        if today_used
            .last()
            .is_some_and(|last| now > last.start.saturating_add(latest))
        {
            today_used.clear();
        }
    }
    // Counted days the protocol can no longer finish with (the service was down, or the
    // clock jumped ahead): the earliest date its last day could have is too late.
    if let Some(window) = protocol.window_days
        && days.len() < protocol.days
    {
        let remaining = i32::try_from(protocol.days - days.len()).unwrap_or(i32::MAX);
        let first_next = days
            .last()
            .map_or(today, |last| add_days(*last, protocol.next_day_after))
            .max(today);
        let last_possible = add_days(
            first_next,
            remaining
                .saturating_sub(1)
                .saturating_mul(protocol.next_day_after),
        );
        while days
            .first()
            .is_some_and(|first| days_between(*first, last_possible) >= i64::from(window))
        {
            let dropped = days.remove(0);
            note = Some(format!(
                "day {dropped} no longer counts: the protocol's last day could come {last_possible} \
                 at the earliest, {window} or more days after it; the days start over"
            ));
        }
    }
    if days.len() >= protocol.days {
        return Plan {
            next: None,
            days,
            today: 0,
            note,
        };
    }
    let earliest = days
        .last()
        .map_or(today, |last| add_days(*last, protocol.next_day_after))
        .max(today);
    let last_attempt = attempts.last();
    let fresh_day = |date: Date| start_of(zone, date);
    let mut next = if earliest > today {
        fresh_day(earliest)
    } else {
        // Today can count: continue it, or begin it.
        let done = today_used.len();
        let mut at = now;
        if let Some(last) = today_used.last() {
            at = at.max(match protocol.spacing {
                Spacing::AfterEnd(_) => last.end.saturating_add(protocol.wait_before(done)),
                Spacing::AfterStart(_) => last.start.saturating_add(protocol.wait_before(done)),
            });
        }
        if let Some(last) = last_attempt {
            at = at.max(match protocol.spacing {
                Spacing::AfterEnd(gap) => last.end.saturating_add(gap),
                Spacing::AfterStart(gap) => last.start.saturating_add(gap),
            });
        }
        let midnight = fresh_day(add_days(today, 1));
        if at.saturating_add(protocol.rest_of_day(done)) > midnight {
            if done > 0 {
                note = Some(format!(
                    "day {today} cannot be finished before midnight ({done} of {} \
                     measurements); it does not count, the next day starts over",
                    protocol.per_day
                ));
            }
            midnight
        } else {
            at
        }
    };
    // Never before the end of the last run, whatever the rules allow.
    if let Some(last) = last_attempt {
        next = next.max(last.end);
    }
    Plan {
        next: Some(next),
        days,
        today: today_used.len(),
        note,
    }
}

#[cfg(test)]
mod tests;
