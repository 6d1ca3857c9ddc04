//! The outage classifier: from probe rounds in time order and the intervals the monitor was
//! running, the outages `{start, end, kind}`, in a batch form (`classify`, which the tests use) and
//! an incremental one ([`Tracker`]) that the service feeds one round at a time to persist outages
//! as they open and close. The two agree (a property test checks it).
//!
//! Definitions, with their reasons:
//! - A **round** is one probe to the gateway and to every public target, sent together. Its
//!   state is *up* when any public target answered (the line works, whatever the gateway
//!   says: some routers drop ICMP to themselves), else *isp down* when the gateway answered
//!   (the home network is fine, nothing beyond it is reachable), else *local down*.
//! - An outage **starts** once [`Config::confirm_rounds`] (default 2) consecutive rounds of
//!   one run are down, and is dated at the *first* of them: one lost round is ordinary
//!   packet loss, two in a row at the 10 s default are ≥ 10 s without any answer; dating it
//!   at the first failed round keeps the error within one probe interval.
//! - Its **kind** is that of its first round. It changes only after `confirm_rounds`
//!   consecutive rounds of the other down kind: the outage closes at the first of them and
//!   one of the new kind opens there (a `local` outage whose gateway comes back becomes `isp`
//!   from that moment; the ISP is charged only for the time its side was the fault).
//! - It **ends** at the first up round (the end is exclusive), so a cut of length `d` at
//!   probe interval `i` reads as an outage of `d ± i`.
//! - Time outside the monitor's runs is **unmonitored**, never an outage. A run's end is its
//!   stop record, or after a crash its last persisted moment. Streaks below
//!   `confirm_rounds` do not span a gap. An outage open when a run ends stays open: if the
//!   first round of a later run is down it is the *same* outage (its `unmonitored` grows by
//!   the gap, `restarts` counts the restarts), so a restart neither splits nor double-counts
//!   it; if that round is up, the outage ends at the end of the run where it was last seen,
//!   since nothing says it lasted into the gap.

use std::time::Duration;

use crate::time::Timestamp;

/// Which side of the gateway failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutageKind {
    /// The gateway answered and no public target did: the ISP's side.
    Isp,
    /// The gateway did not answer either: the home network (or the router itself).
    Local,
}

impl OutageKind {
    /// The name in logs, JSON and metric labels: `isp` or `local`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            OutageKind::Isp => "isp",
            OutageKind::Local => "local",
        }
    }
}

/// One probe round: the gateway and every public target probed together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Round {
    /// When the round was sent.
    pub at: Timestamp,
    /// Whether the gateway answered.
    pub gateway: bool,
    /// Whether any public target answered.
    pub public: bool,
}

impl Round {
    /// `None` when the round is up, else the kind of outage it points to.
    pub(crate) fn down(&self) -> Option<OutageKind> {
        match (self.public, self.gateway) {
            (true, _) => None,
            (false, true) => Some(OutageKind::Isp),
            (false, false) => Some(OutageKind::Local),
        }
    }
}

/// An interval the monitor was running: from its start record to its stop record (or, after
/// a crash, the last moment it persisted); `end` is `None` for the run still going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// When the monitor started.
    pub start: Timestamp,
    /// When it stopped, `None` while it runs.
    pub end: Option<Timestamp>,
}

/// One outage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// The first down round (inclusive).
    pub start: Timestamp,
    /// The first up round, or the end of the run it was last seen in (exclusive); `None`
    /// while it is ongoing. Equal to `start` only with `confirm_rounds` 1 when its one
    /// down round was sent at the very moment its run stopped.
    pub end: Option<Timestamp>,
    /// Which side failed.
    pub kind: OutageKind,
    /// The time inside it when the monitor was not running (restarts), not counted as down.
    pub unmonitored: Duration,
    /// How many times the monitor restarted inside it.
    pub restarts: u32,
}

impl Outage {
    /// The down time: `end - start - unmonitored`; `None` while ongoing.
    pub(crate) fn down_time(&self) -> Option<Duration> {
        self.end.map(|end| {
            end.duration_since(self.start)
                .saturating_sub(self.unmonitored)
        })
    }
}

/// The classifier's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    /// Consecutive down rounds that start an outage or change its kind; at least 1.
    pub(crate) confirm_rounds: u32,
}

/// The default of [`Config::confirm_rounds`].
pub(crate) const DEFAULT_CONFIRM_ROUNDS: u32 = 2;

impl Default for Config {
    fn default() -> Self {
        Config {
            confirm_rounds: DEFAULT_CONFIRM_ROUNDS,
        }
    }
}

impl Config {
    fn confirm(self) -> u32 {
        self.confirm_rounds.max(1)
    }
}

/// The gaps between consecutive runs, `[previous end, next start)`: the unmonitored time.
/// Runs are in time order; a run still going (no end) ends the list.
pub(crate) fn unmonitored_gaps(runs: &[Run]) -> Vec<(Timestamp, Timestamp)> {
    runs.windows(2)
        .filter_map(|pair| {
            let end = pair[0].end?;
            (pair[1].start > end).then_some((end, pair[1].start))
        })
        .collect()
}

/// What [`Tracker`] reports after a round, for the service to persist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// An outage started (its `end` is `None`).
    Opened(Outage),
    /// An outage open before a restart is still down after it: the same outage, with its
    /// `unmonitored` and `restarts` updated.
    Resumed(Outage),
    /// An outage ended.
    Closed(Outage),
}

/// A run of consecutive rounds of one down kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Streak {
    start: Timestamp,
    kind: OutageKind,
    len: u32,
}

impl Streak {
    fn new(round: &Round, kind: OutageKind) -> Self {
        Streak {
            start: round.at,
            kind,
            len: 1,
        }
    }
}

/// Down rounds not yet an outage: the first one and the trailing block of one kind.
#[derive(Clone, Copy, Debug)]
struct Pending {
    first: Streak,
    tail: Streak,
}

#[derive(Clone, Copy, Debug)]
struct Open {
    outage: Outage,
    /// Rounds of the other down kind since the last round of the outage's kind.
    switch: Option<Streak>,
    /// Set while the monitor has stopped since the outage was last seen down: the end of
    /// that run, and the restarts since.
    suspended: Option<(Timestamp, u32)>,
}

/// The incremental classifier: [`Tracker::start`] and `Tracker::stop` at each run's
/// edges, [`Tracker::round`] for each round in time order.
#[derive(Clone, Debug)]
pub(crate) struct Tracker {
    config: Config,
    run_start: Option<Timestamp>,
    last_at: Option<Timestamp>,
    pending: Option<Pending>,
    open: Option<Open>,
}

impl Tracker {
    /// A tracker with no history, not running.
    pub(crate) fn new(config: Config) -> Self {
        Tracker {
            config,
            run_start: None,
            last_at: None,
            pending: None,
            open: None,
        }
    }

    /// A tracker after a restart: `open` is the outage the store holds as ongoing (if any),
    /// `stopped_at` the end of the previous run. Call [`Tracker::start`] next.
    pub(crate) fn restore(config: Config, open: Option<Outage>, stopped_at: Timestamp) -> Self {
        let mut tracker = Tracker::new(config);
        tracker.open = open.map(|outage| Open {
            outage: Outage {
                end: None,
                ..outage
            },
            switch: None,
            suspended: Some((stopped_at, 0)),
        });
        tracker
    }

    /// The ongoing outage, if any (while suspended, without the current gap counted).
    pub(crate) fn ongoing(&self) -> Option<Outage> {
        self.open.map(|open| open.outage)
    }

    /// The monitor started at `at`.
    pub(crate) fn start(&mut self, at: Timestamp) {
        self.run_start = Some(at);
        if let Some(Open {
            suspended: Some((_, restarts)),
            ..
        }) = &mut self.open
        {
            *restarts = restarts.saturating_add(1);
        }
    }

    /// The monitor stopped at `at` (or, after a crash, was last seen then).
    #[cfg(test)]
    pub(crate) fn stop(&mut self, at: Timestamp) {
        self.run_start = None;
        self.pending = None;
        if let Some(open) = &mut self.open {
            open.switch = None;
            if open.suspended.is_none() {
                open.suspended = Some((at, 0));
            }
        }
    }

    /// Feeds one round; rounds outside a run or before the previous round are ignored.
    pub(crate) fn round(&mut self, round: Round) -> Vec<Event> {
        let mut events = Vec::new();
        let Some(run_start) = self.run_start else {
            return events;
        };
        if round.at < run_start || self.last_at.is_some_and(|last| round.at < last) {
            return events;
        }
        self.last_at = Some(round.at);
        let confirm = self.config.confirm();
        let down = round.down();
        if let Some(mut open) = self.open.take() {
            if let Some((seen_until, restarts)) = open.suspended.take() {
                if down.is_none() {
                    events.push(Event::Closed(Outage {
                        end: Some(seen_until),
                        ..open.outage
                    }));
                    return events;
                }
                open.outage.unmonitored += run_start.duration_since(seen_until);
                open.outage.restarts = open.outage.restarts.saturating_add(restarts);
                events.push(Event::Resumed(open.outage));
            }
            match down {
                None => {
                    events.push(Event::Closed(Outage {
                        end: Some(round.at),
                        ..open.outage
                    }));
                    return events;
                }
                Some(kind) if kind == open.outage.kind => open.switch = None,
                Some(kind) => {
                    let switch = match open.switch {
                        Some(mut streak) => {
                            streak.len += 1;
                            streak
                        }
                        None => Streak::new(&round, kind),
                    };
                    if switch.len >= confirm {
                        events.push(Event::Closed(Outage {
                            end: Some(switch.start),
                            ..open.outage
                        }));
                        open = Open {
                            outage: fresh(switch.start, kind),
                            switch: None,
                            suspended: None,
                        };
                        events.push(Event::Opened(open.outage));
                    } else {
                        open.switch = Some(switch);
                    }
                }
            }
            self.open = Some(open);
            return events;
        }
        let Some(kind) = down else {
            self.pending = None;
            return events;
        };
        let pending = match self.pending {
            None => Pending {
                first: Streak::new(&round, kind),
                tail: Streak::new(&round, kind),
            },
            Some(mut pending) => {
                pending.first.len += 1;
                if pending.tail.kind == kind {
                    pending.tail.len += 1;
                } else {
                    pending.tail = Streak::new(&round, kind);
                }
                pending
            }
        };
        if pending.first.len >= confirm {
            self.pending = None;
            let outage = fresh(pending.first.start, pending.first.kind);
            self.open = Some(Open {
                outage,
                switch: (pending.tail.kind != outage.kind).then_some(pending.tail),
                suspended: None,
            });
            events.push(Event::Opened(outage));
        } else {
            self.pending = Some(pending);
        }
        events
    }
}

fn fresh(start: Timestamp, kind: OutageKind) -> Outage {
    Outage {
        start,
        end: None,
        kind,
        unmonitored: Duration::ZERO,
        restarts: 0,
    }
}

/// The batch classifier: the outages in `rounds` (time order; rounds outside `runs` or
/// before an earlier round are ignored) given the monitor's `runs` (time order, disjoint),
/// oldest first, the last with `end: None` when it is still ongoing. Agrees with feeding
/// [`Tracker`] the same runs and rounds and collecting its closed outages and the ongoing one.
#[cfg(test)]
pub(crate) fn classify(config: Config, runs: &[Run], rounds: &[Round]) -> Vec<Outage> {
    let confirm = config.confirm();
    let mut outages = Vec::new();
    // The outage open at the end of an earlier run: it, where it was last seen, restarts.
    let mut carry: Option<(Outage, Timestamp, u32)> = None;
    let mut last_at: Option<Timestamp> = None;
    for run in runs {
        let in_run: Vec<Round> = rounds
            .iter()
            .filter(|r| r.at >= run.start && run.end.is_none_or(|end| r.at <= end))
            .filter(|r| {
                let keep = last_at.is_none_or(|last| r.at >= last);
                if keep {
                    last_at = Some(r.at);
                }
                keep
            })
            .copied()
            .collect();
        if let Some((_, _, restarts)) = &mut carry {
            *restarts = restarts.saturating_add(1);
        }
        // Maximal down segments, each with the round that ended it (None at the run's end).
        let mut index = 0;
        let mut current: Option<Outage> = None;
        while index < in_run.len() {
            if in_run[index].down().is_none() {
                if let Some((outage, seen_until, _)) = carry.take() {
                    outages.push(Outage {
                        end: Some(seen_until),
                        ..outage
                    });
                }
                index += 1;
                continue;
            }
            let begin = index;
            while index < in_run.len() && in_run[index].down().is_some() {
                index += 1;
            }
            let segment = &in_run[begin..index];
            let blocks = blocks_of(segment);
            let mut outage = match carry.take() {
                Some((mut outage, seen_until, restarts)) => {
                    outage.unmonitored += run.start.duration_since(seen_until);
                    outage.restarts = outage.restarts.saturating_add(restarts);
                    outage
                }
                None if segment.len() as u64 >= u64::from(confirm) => {
                    fresh(segment[0].at, blocks[0].kind)
                }
                None => continue,
            };
            for block in &blocks {
                if block.kind != outage.kind && block.len >= confirm {
                    outages.push(Outage {
                        end: Some(block.start),
                        ..outage
                    });
                    outage = fresh(block.start, block.kind);
                }
            }
            match in_run.get(index) {
                Some(up) => outages.push(Outage {
                    end: Some(up.at),
                    ..outage
                }),
                None => current = Some(outage),
            }
        }
        if let Some(outage) = current {
            match run.end {
                Some(end) => carry = Some((outage, end, 0)),
                None => outages.push(outage),
            }
        }
    }
    if let Some((outage, _, _)) = carry {
        outages.push(outage);
    }
    outages
}

/// The maximal blocks of one down kind in a segment of down rounds.
#[cfg(test)]
fn blocks_of(segment: &[Round]) -> Vec<Streak> {
    let mut blocks: Vec<Streak> = Vec::new();
    for round in segment {
        let Some(kind) = round.down() else { continue };
        match blocks.last_mut() {
            Some(block) if block.kind == kind => block.len += 1,
            _ => blocks.push(Streak::new(round, kind)),
        }
    }
    blocks
}

#[cfg(test)]
mod tests;
