//! What the running connectivity monitor shares with the HTTP handlers and `/metrics`: its
//! run, its targets and method, the last round and the ongoing outage.

use std::sync::Mutex;
use std::time::Duration;

use super::outage::{Outage, Round};
use super::{ProbeMethod, StoredTarget};
use crate::time::Timestamp;

/// The live state of the monitor of this process; `AppState::probes` holds it while
/// `--probe-interval` is not `0s`.
#[derive(Debug)]
pub struct Status {
    /// When this process's monitor run started (its record in `monitor_runs_v1` is keyed by
    /// it; the stored end is the last heartbeat, so readers treat this run as going on now).
    pub(crate) run_start: Timestamp,
    /// `--probe-interval`.
    pub(crate) interval: Duration,
    /// The method in use and why it was chosen (the start-up log's words).
    pub(crate) method: ProbeMethod,
    /// Why [`Status::method`] was chosen, for `/api/v1/status`.
    pub(crate) method_reason: String,
    /// The targets probed, gateway first when one was found.
    pub(crate) targets: Vec<StoredTarget>,
    live: Mutex<Live>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Live {
    last_round: Option<Round>,
    ongoing: Option<Outage>,
}

impl Status {
    /// The state at the start of a run, with the outage restored from the store (if any).
    pub fn new(
        run_start: Timestamp,
        interval: Duration,
        method: ProbeMethod,
        method_reason: String,
        targets: Vec<StoredTarget>,
        ongoing: Option<Outage>,
    ) -> Self {
        Status {
            run_start,
            interval,
            method,
            method_reason,
            targets,
            live: Mutex::new(Live {
                last_round: None,
                ongoing,
            }),
        }
    }

    /// Records the newest round and the ongoing outage after it.
    pub(crate) fn set(&self, round: Round, ongoing: Option<Outage>) {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        live.last_round = Some(round);
        live.ongoing = ongoing;
    }

    /// The ongoing outage (`end` is `None`), if any.
    pub(crate) fn ongoing(&self) -> Option<Outage> {
        self.live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .ongoing
    }
}
