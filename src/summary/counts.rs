//! Counts of runs by engine and of failures by reason and by kind (whose problem a failure
//! points at), as the summary's JSON has them.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::sample::{EngineName, FailureReason};

/// Runs made, by engine: `ookla` (the Ookla CLI), `http` (the built-in HTTP engine), and
/// `unrecorded` for a run stored without its engine (imported with `"engine": null`). Every
/// key is always present, zeros included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub(crate) struct EngineCounts {
    pub(crate) ookla: u64,
    pub(crate) http: u64,
    pub(crate) unrecorded: u64,
}

impl EngineCounts {
    /// Counts a run made by `engine` (`None`: not recorded).
    pub(super) fn add(&mut self, engine: Option<EngineName>) {
        let count = match engine {
            Some(EngineName::Ookla) => &mut self.ookla,
            Some(EngineName::Http) => &mut self.http,
            None => &mut self.unrecorded,
        };
        *count += 1;
    }
}

/// Failed runs per reason. Serialised as an object with every reason's name, zeros included,
/// so consumers never have to tell "none" from "unknown reason".
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct FailureCounts([u64; FailureReason::ALL.len()]);

impl FailureCounts {
    #[cfg(test)]
    pub(crate) fn get(&self, reason: FailureReason) -> u64 {
        index_of(reason)
            .and_then(|i| self.0.get(i).copied())
            .unwrap_or(0)
    }

    /// Every failure reason with its count, in the order of [`FailureReason::ALL`].
    pub(crate) fn iter(&self) -> impl Iterator<Item = (FailureReason, u64)> + '_ {
        FailureReason::ALL
            .into_iter()
            .zip(self.0.iter().copied())
            .filter(|(reason, _)| reason.is_failure())
    }

    /// Counts a failure for `reason`.
    pub(super) fn add(&mut self, reason: FailureReason) {
        // Looked up rather than cast from the discriminant, so that reordering the enum cannot
        // silently mislabel counts.
        if let Some(count) = index_of(reason).and_then(|i| self.0.get_mut(i)) {
            *count += 1;
        }
    }
}

fn index_of(reason: FailureReason) -> Option<usize> {
    FailureReason::ALL.iter().position(|r| *r == reason)
}

/// Whose problem a failed run points at, so that a complaint to an ISP counts only the runs
/// that speak against the line, and the monitor's own faults are seen as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The line: the network, DNS or every test server was unreachable, a socket failed
    /// mid-test (`no_connectivity`), or the test stalled past `--timeout` (`timeout`: once
    /// started, the CLI does nothing but wait on the network). The only kind counted against
    /// the line.
    Network,
    /// Ookla refused to run the test (`rate_limited`): it says nothing about the line.
    Service,
    /// The monitor or its machine: the CLI is missing or not executable (`spawn`), or printed
    /// what cannot be read (`parse`) or too much (`output_too_large`).
    Local,
    /// The CLI failed for a reason it did not make clear (`exit`: a crash, a configuration
    /// problem, a refused configuration request), or measured figures that cannot be real
    /// (`implausible`). Not counted against the line: nothing shows it was the line.
    Other,
}

impl FailureKind {
    /// Every kind, in the order of their fields in the JSON.
    pub(crate) const ALL: [FailureKind; 4] = [
        FailureKind::Network,
        FailureKind::Service,
        FailureKind::Local,
        FailureKind::Other,
    ];

    /// The kind of a failure reason; `None` for `data_budget`, which is no failure.
    pub(crate) fn of(reason: FailureReason) -> Option<FailureKind> {
        // No wildcard: a new reason must be given its kind here.
        match reason {
            FailureReason::NoConnectivity | FailureReason::Timeout => Some(FailureKind::Network),
            FailureReason::RateLimited => Some(FailureKind::Service),
            FailureReason::Spawn | FailureReason::Parse | FailureReason::OutputTooLarge => {
                Some(FailureKind::Local)
            }
            FailureReason::Exit | FailureReason::Implausible => Some(FailureKind::Other),
            FailureReason::DataBudget => None,
        }
    }

    /// The kind's name in the JSON and the text report.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailureKind::Network => "network",
            FailureKind::Service => "service",
            FailureKind::Local => "local",
            FailureKind::Other => "other",
        }
    }

    /// Whether failures of this kind are evidence against the line.
    pub(crate) fn counts_against_the_line(self) -> bool {
        self == FailureKind::Network
    }
}

/// Failed runs per [`FailureKind`], every kind present (zeros included). Their sum is
/// `runs.failure` when every failure has a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub(crate) struct FailuresByKind {
    /// Failed runs of kind [`FailureKind::Network`]: the ones counted against the line.
    pub(crate) network: u64,
    /// Failed runs of kind [`FailureKind::Service`].
    pub(crate) service: u64,
    /// Failed runs of kind [`FailureKind::Local`].
    pub(crate) local: u64,
    /// Failed runs of kind [`FailureKind::Other`].
    pub(crate) other: u64,
}

impl FailuresByKind {
    /// The failures of `counts` grouped by kind.
    pub(super) fn of(counts: &FailureCounts) -> Self {
        let mut kinds = FailuresByKind::default();
        for (reason, count) in counts.iter() {
            if let Some(kind) = FailureKind::of(reason) {
                *kinds.slot(kind) += count;
            }
        }
        kinds
    }

    /// The number of failed runs of `kind`.
    pub(crate) fn get(&self, kind: FailureKind) -> u64 {
        match kind {
            FailureKind::Network => self.network,
            FailureKind::Service => self.service,
            FailureKind::Local => self.local,
            FailureKind::Other => self.other,
        }
    }

    fn slot(&mut self, kind: FailureKind) -> &mut u64 {
        match kind {
            FailureKind::Network => &mut self.network,
            FailureKind::Service => &mut self.service,
            FailureKind::Local => &mut self.local,
            FailureKind::Other => &mut self.other,
        }
    }
}

impl Serialize for FailureCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (reason, count) in self.iter() {
            map.serialize_entry(reason.as_str(), &count)?;
        }
        map.end()
    }
}
