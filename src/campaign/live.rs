//! A campaign while `serve` runs it: started or resumed at start-up, told each campaign run,
//! asked for the next run's time, and shown in the log, `/metrics` and `/api/v1/campaign`.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use super::{Attempt, Campaign, INDICATIVE, Plan, Protocol, plan};
use crate::plan::PlanHistory;
use crate::rules::{self, Progress, RuleSet, Run};
use crate::sample::{FailureReason, Outcome, Sample, Trigger};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;
use crate::zone::Zone;

/// What `serve --campaign NAME [--campaign-restart]` asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignConfig {
    /// A rule set with [`RuleSet::has_campaign`].
    pub(crate) rules: RuleSet,
    /// `--timezone`: the zone a new campaign counts its days in (a resumed one keeps its own).
    pub(crate) zone: Zone,
    /// `--campaign-restart`: start a new campaign even when the newest one is complete.
    pub(crate) restart: bool,
}

/// The campaign `serve` runs (or, complete, only shows).
pub(crate) struct Live {
    protocol: Protocol,
    inner: Mutex<Inner>,
}

struct Inner {
    campaign: Campaign,
    attempts: Vec<Attempt>,
    runs: Vec<Run>,
    plan: Plan,
    progress: Progress,
    /// The last note logged, so each is said once.
    noted: Option<String>,
    /// The end of the UTC month whose data budget a campaign run found used up: no campaign
    /// run is due before it (trying each spacing would only keep a skipped sample each time).
    paused_until: Option<Timestamp>,
}

/// `plan` of the campaign's attempts at `now`, no run due before `paused_until`.
fn plan_paused(protocol: &Protocol, inner: &Inner, now: Timestamp) -> Plan {
    let mut planned = plan(protocol, &inner.campaign.zone, &inner.attempts, now);
    if let (Some(next), Some(until)) = (planned.next, inner.paused_until) {
        planned.next = Some(next.max(until));
    }
    planned
}

/// When `sample` is a run skipped because the month's data budget was used up: the end of
/// that UTC month, when the budget starts over.
fn budget_pause(sample: &Sample) -> Option<Timestamp> {
    (sample.outcome == Outcome::Skipped && sample.reason == Some(FailureReason::DataBudget))
        .then(|| sample.time.month().1)
}

/// `GET /api/v1/campaign`: `{"campaign": null}` without a campaign.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CampaignAnswer {
    pub(crate) campaign: Option<CampaignStatus>,
}

/// A campaign's state, as `/api/v1/campaign` shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CampaignStatus {
    pub(crate) rules: RuleSet,
    /// The IANA zone its calendar days are counted in.
    pub(crate) time_zone: String,
    /// When it began and, once complete, when its last run ended (RFC 3339, UTC).
    pub(crate) started: Timestamp,
    pub(crate) finished: Option<Timestamp>,
    pub(crate) complete: bool,
    /// The rule set's own count ([`rules::evaluate`]), so it agrees with the verdict.
    pub(crate) progress: Progress,
    /// The local dates of the days (at-rtr: cycles) counted so far.
    pub(crate) days: Vec<String>,
    /// Runs counted on the day in progress.
    pub(crate) measurements_today: usize,
    /// Campaign runs that failed (never counted).
    pub(crate) failed_runs: usize,
    /// When the next campaign run starts; `null` once complete.
    pub(crate) next_run: Option<Timestamp>,
    /// The command that gives the verdict.
    pub(crate) report: String,
    pub(crate) label: &'static str,
}

impl Live {
    /// At start-up: resumes the newest unfinished campaign of `config.rules`; otherwise starts
    /// one now, unless the newest is complete and `config.restart` is not set (then it is only
    /// shown, and the log says how to start another).
    pub(crate) fn start(
        store: &Store,
        config: &CampaignConfig,
        plans: &PlanHistory,
        now: Timestamp,
    ) -> Result<Live, StoreError> {
        let rules = config.rules;
        let protocol = Protocol::of(rules).ok_or_else(|| StoreError::Corrupt {
            path: store.path().to_path_buf(),
            detail: format!("{rules} has no campaign"),
        })?;
        let newest = store
            .campaigns()?
            .into_iter()
            .rev()
            .find(|campaign| campaign.rules == rules);
        let campaign = match newest {
            Some(campaign) if campaign.finished.is_none() => {
                if campaign.zone != config.zone {
                    tracing::warn!(
                        "campaign {rules}: resuming the campaign begun at {} in {}; its days are \
                         counted in {} as when it began, not in --timezone {}",
                        campaign.start,
                        campaign.zone,
                        campaign.zone,
                        config.zone
                    );
                }
                tracing::info!(
                    "campaign {rules}: resuming the campaign begun at {} ({})",
                    campaign.start,
                    campaign.zone
                );
                campaign
            }
            Some(campaign) if !config.restart => {
                tracing::info!(
                    "campaign {rules}: the newest campaign (begun {}, complete {}) is complete; \
                     not starting another. Its verdict: internet-monitor report --rules {rules}. \
                     To start a new one, start serve once with --campaign-restart",
                    campaign.start,
                    campaign
                        .finished
                        .map_or_else(String::new, |time| time.to_string()),
                );
                campaign
            }
            _ => {
                let campaign = Campaign {
                    start: now,
                    rules,
                    zone: config.zone.clone(),
                    finished: None,
                };
                store.put_campaign(&campaign)?;
                tracing::info!(
                    "campaign {rules}: begun at {now}, days counted in {} ({INDICATIVE})",
                    campaign.zone
                );
                campaign
            }
        };
        let (attempts, runs, paused_until) = runs_of(store, &campaign)?;
        let mut inner = Inner {
            progress: Progress::default(),
            plan: plan(&protocol, &campaign.zone, &attempts, now),
            campaign,
            attempts,
            runs,
            noted: None,
            paused_until: paused_until.filter(|until| *until > now),
        };
        inner.plan = plan_paused(&protocol, &inner, now);
        let live = Live {
            protocol,
            inner: Mutex::new(inner),
        };
        let finished = {
            let mut inner = live.lock();
            inner.progress = progress(&protocol, &inner, plans);
            // A campaign whose last run completed it, but whose finish was not stored (the
            // service stopped first), finishes now.
            if inner.campaign.finished.is_none() && inner.plan.complete() {
                inner.campaign.finished = Some(
                    inner
                        .attempts
                        .last()
                        .map_or(now, |last| last.end)
                        .max(inner.campaign.start),
                );
                Some(inner.campaign.clone())
            } else {
                None
            }
        };
        if let Some(campaign) = finished {
            store.put_campaign(&campaign)?;
            live.log_complete();
        }
        Ok(live)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn rules(&self) -> RuleSet {
        self.protocol.rules
    }

    /// How far from a campaign run a scheduled run must keep: the campaign's spacing.
    pub(crate) fn guard(&self) -> Duration {
        self.protocol.spacing.duration()
    }

    /// The progress shown (`/metrics`, the log, `/api/v1/campaign`).
    pub(crate) fn progress(&self) -> Progress {
        self.lock().progress
    }

    /// When the next campaign run starts (UTC); `None` once the campaign is complete. Logs a
    /// day that does not count, once.
    pub(crate) fn next(&self, now: Timestamp) -> Option<Timestamp> {
        let mut inner = self.lock();
        if inner.campaign.finished.is_some() {
            return None;
        }
        let plan = plan_paused(&self.protocol, &inner, now);
        if plan.note.is_some() && plan.note != inner.noted {
            tracing::info!(
                "campaign {}: {}",
                self.protocol.rules,
                plan.note.as_deref().unwrap_or_default()
            );
            inner.noted = plan.note.clone();
        }
        let next = plan.next;
        inner.plan = plan;
        next
    }

    /// After a campaign run: counts it, plans on and logs the progress. Returns the campaign,
    /// finished, when this run completed it (for the caller to store).
    pub(crate) fn record(
        &self,
        sample: &Sample,
        plans: &PlanHistory,
        now: Timestamp,
    ) -> Option<Campaign> {
        let pause = budget_pause(sample);
        let attempt = Attempt::of(sample).unwrap_or(Attempt {
            // Another skipped run waits the spacing like a failure.
            start: sample.time,
            end: now.max(sample.time),
            success: false,
        });
        let finished = {
            let mut inner = self.lock();
            if inner.campaign.finished.is_some() {
                return None;
            }
            if pause.is_some() {
                // Not an attempt (as a restart reads it): the campaign waits for next month.
                inner.paused_until = pause;
            } else {
                inner.attempts.push(attempt);
            }
            inner.runs.extend(Run::of(sample));
            inner.plan = plan_paused(&self.protocol, &inner, now);
            inner.progress = progress(&self.protocol, &inner, plans);
            if inner.plan.complete() {
                inner.campaign.finished = Some(attempt.end.max(inner.campaign.start));
                Some(inner.campaign.clone())
            } else {
                let p = inner.progress;
                let next = inner.plan.next.map_or_else(String::new, |at| {
                    let local = inner.campaign.zone.local(at);
                    format!(
                        ", next at {at} ({} local)",
                        local.strftime("%Y-%m-%d %H:%M")
                    )
                });
                tracing::info!(
                    "campaign {}: {}/{} measurements, day {} of {}{next} ({INDICATIVE})",
                    self.protocol.rules,
                    p.measurements,
                    p.measurements_required,
                    (p.days + 1).min(p.days_required.max(1)),
                    p.days_required,
                );
                None
            }
        };
        if finished.is_some() {
            self.log_complete();
        }
        finished
    }

    fn log_complete(&self) {
        let inner = self.lock();
        let rules = self.protocol.rules;
        if !inner.progress.complete {
            tracing::warn!(
                "campaign {rules}: the schedule is complete, but the rule set counts {} of {} \
                 measurements on {} of {} days (failed tests?); report --rules {rules} says \
                 what is missing; start serve with --campaign-restart for another campaign",
                inner.progress.measurements,
                inner.progress.measurements_required,
                inner.progress.days,
                inner.progress.days_required
            );
        }
        let days: Vec<String> = inner.plan.days.iter().map(|d| d.to_string()).collect();
        tracing::info!(
            "campaign {rules}: complete, {} measurements on {} ({}); its verdict: \
             internet-monitor report --rules {rules} ({INDICATIVE})",
            inner.progress.measurements,
            days.join(", "),
            inner.campaign.zone
        );
    }

    /// What `/api/v1/campaign` shows.
    pub(crate) fn status(&self) -> CampaignStatus {
        let inner = self.lock();
        let rules = self.protocol.rules;
        CampaignStatus {
            rules,
            time_zone: inner.campaign.zone.name().to_owned(),
            started: inner.campaign.start,
            finished: inner.campaign.finished,
            complete: inner.campaign.finished.is_some(),
            progress: inner.progress,
            days: inner.plan.days.iter().map(|d| d.to_string()).collect(),
            measurements_today: inner.plan.today,
            failed_runs: inner.attempts.iter().filter(|a| !a.success).count(),
            next_run: inner
                .plan
                .next
                .filter(|_| inner.campaign.finished.is_none()),
            report: format!("internet-monitor report --rules {rules}"),
            label: INDICATIVE,
        }
    }
}

/// The progress shown: the rule set's own ([`rules::evaluate`]), so it agrees with the verdict.
fn progress(protocol: &Protocol, inner: &Inner, plans: &PlanHistory) -> Progress {
    rules::evaluate(protocol.rules, &inner.runs, plans, &inner.campaign.zone).progress
}

/// A campaign's attempts, its runs as the rule set reads them, and the end of the month its
/// newest run found the data budget used up in (if it did).
type CampaignRuns = (Vec<Attempt>, Vec<Run>, Option<Timestamp>);

/// The campaign's runs (trigger `campaign`, from its start to its finish), as the planner and
/// the rule set read them.
/// With them, the pause of the newest run when the data budget skipped it.
fn runs_of(store: &Store, campaign: &Campaign) -> Result<CampaignRuns, StoreError> {
    let mut attempts = Vec::new();
    let mut runs = Vec::new();
    let mut paused_until = None;
    store.for_each(campaign.start, campaign.runs_end(), |sample| {
        if sample.trigger == Trigger::Campaign {
            attempts.extend(Attempt::of(&sample));
            runs.extend(Run::of(&sample));
            paused_until = budget_pause(&sample);
        }
        Ok::<_, StoreError>(())
    })?;
    Ok((attempts, runs, paused_until))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(restart: bool) -> CampaignConfig {
        CampaignConfig {
            rules: RuleSet::DeBnetza,
            zone: Zone::parse("Europe/Berlin").unwrap(),
            restart,
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// A successful campaign run at `time`, 40 s long.
    fn run(time: Timestamp) -> Sample {
        Sample {
            duration_seconds: Some(40.0),
            download_bytes_per_second: Some(1e8),
            upload_bytes_per_second: Some(1e7),
            ping_seconds: Some(0.01),
            ..Sample::empty(time, Trigger::Campaign)
        }
    }

    #[test]
    fn a_run_the_data_budget_skipped_pauses_the_campaign_until_next_month() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let plans = PlanHistory::default();
        let begin = at("2027-03-24T08:00:00Z");
        let live = Live::start(&store, &config(false), &plans, begin).unwrap();
        let skipped = Sample {
            outcome: Outcome::Skipped,
            reason: Some(FailureReason::DataBudget),
            ..Sample::empty(begin, Trigger::Campaign)
        };
        let skipped = store.append(&skipped).unwrap();
        assert_eq!(live.record(&skipped, &plans, begin), None);
        // Not every spacing for the rest of the month: at the month's turn (UTC).
        let april = at("2027-04-01T00:00:00Z");
        let later = begin.saturating_add(Duration::from_secs(3600));
        assert_eq!(live.next(later), Some(april));
        assert_eq!(live.status().next_run, Some(april));
        assert_eq!(
            live.status().failed_runs,
            0,
            "a skipped run is not a failed one"
        );
        // A restart reads the same pause from the store; in April it is over.
        let resumed = Live::start(&store, &config(false), &plans, later).unwrap();
        assert_eq!(resumed.next(later), Some(april));
        let in_april = Live::start(&store, &config(false), &plans, april).unwrap();
        assert_eq!(in_april.next(april), Some(april));
    }

    #[test]
    fn a_restart_resumes_an_unfinished_campaign_and_never_silently_restarts_a_complete_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let plans = PlanHistory::default();
        let begin = at("2027-03-24T08:00:00Z");
        let live = Live::start(&store, &config(false), &plans, begin).unwrap();
        assert_eq!(live.next(begin), Some(begin));
        // Three runs, kept as serve keeps them; then a restart.
        let mut now = begin;
        for _ in 0..3 {
            let next = live.next(now).unwrap();
            let sample = store.append(&run(next)).unwrap();
            now = next.saturating_add(Duration::from_secs(40));
            assert_eq!(live.record(&sample, &plans, now), None);
        }
        let resumed = Live::start(&store, &config(false), &plans, now).unwrap();
        assert_eq!(store.campaigns().unwrap().len(), 1);
        assert_eq!(resumed.status().measurements_today, 3);
        assert_eq!(resumed.next(now), live.next(now));
        // Run the campaign to its end.
        let mut finished = None;
        while let Some(next) = resumed.next(now) {
            let sample = store.append(&run(next)).unwrap();
            now = next.saturating_add(Duration::from_secs(40));
            finished = resumed.record(&sample, &plans, now);
        }
        let finished = finished.expect("the last run completes it");
        store.put_campaign(&finished).unwrap();
        assert!(resumed.status().complete);
        assert_eq!(resumed.progress().measurements, 30);
        // A restart shows it and starts nothing; --campaign-restart starts another.
        let later = now.saturating_add(Duration::from_secs(86_400));
        let shown = Live::start(&store, &config(false), &plans, later).unwrap();
        assert_eq!(shown.next(later), None);
        assert!(shown.status().complete);
        assert_eq!(store.campaigns().unwrap().len(), 1);
        let again = Live::start(&store, &config(true), &plans, later).unwrap();
        assert_eq!(again.next(later), Some(later));
        assert_eq!(store.campaigns().unwrap().len(), 2);
        assert_eq!(again.status().started, later);
    }
}
