//! The connectivity monitor's tables (issue 15): probe targets, per-minute probe figures
//! (downsampled to 10-minute buckets after [`MINUTE_DAYS`] days), outages and the monitor's
//! runs, each record versioned and checksummed like `plans_v1`.
//!
//! SKELETON: the signatures are the contract between the monitor, the endpoints and the store
//! (see /work/notes/issue15-contract.md); the bodies are placeholders until the store lands.

use std::time::Duration;

use super::{Store, StoreError};
use crate::probe::outage::{Outage, Run};
use crate::probe::{StoredTarget, Target, TargetId};
use crate::time::Timestamp;

/// Days of per-minute rows kept before they are folded into 10-minute buckets.
pub const MINUTE_DAYS: u64 = 31;
/// Minutes in one downsampled bucket.
pub const BUCKET_MINUTES: u32 = 10;

/// One target's probe figures in one row (a minute, or a bucket of [`BUCKET_MINUTES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeStats {
    /// The target's stored id.
    pub target: TargetId,
    /// Probes sent.
    pub sent: u32,
    /// Probes lost (`lost <= sent`).
    pub lost: u32,
    /// Smallest RTT in µs; `None` when every probe was lost.
    pub rtt_min_us: Option<u64>,
    /// Median RTT in µs (for a bucket: the median of its minutes' medians, an
    /// approximation); `None` when every probe was lost.
    pub rtt_median_us: Option<u64>,
    /// Largest RTT in µs; `None` when every probe was lost.
    pub rtt_max_us: Option<u64>,
    /// Minutes of the row in which a speed test ran (0 or 1 for a minute row).
    pub under_load_minutes: u32,
}

/// One stored row: every target's figures for one minute or one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRow {
    /// The row's start (a whole minute, or a whole 10 minutes for a bucket).
    pub start: Timestamp,
    /// 1 for a minute row, [`BUCKET_MINUTES`] for a bucket.
    pub minutes: u32,
    /// One entry per target probed in it, by ascending id.
    pub stats: Vec<ProbeStats>,
}

impl ProbeRow {
    /// The row's length.
    pub fn span(&self) -> Duration {
        Duration::from_secs(60 * u64::from(self.minutes))
    }
}

/// What the monitor writes in one transaction: a finished minute (if any), the outages that
/// opened, changed or closed (each put at its start, replacing the record there), and this
/// run's record with its end moved to the heartbeat (or the stop time).
#[derive(Clone, Debug, Default)]
pub struct ProbeWrite {
    /// A finished minute row.
    pub minute: Option<ProbeRow>,
    /// Outages to put (keyed by start; an ongoing one has `end: None`).
    pub outages: Vec<Outage>,
    /// This run, `end` = the heartbeat or the stop time.
    pub run: Option<Run>,
}

impl Store {
    /// Every stored probe target, by id.
    pub fn probe_targets(&self) -> Result<Vec<StoredTarget>, StoreError> {
        Ok(Vec::new())
    }

    /// The ids of `targets`, in the same order: an equal stored target's id, else a new one.
    pub fn register_probe_targets(
        &self,
        targets: &[Target],
    ) -> Result<Vec<StoredTarget>, StoreError> {
        Ok(targets
            .iter()
            .zip(0..)
            .map(|(target, id)| StoredTarget {
                id,
                target: *target,
            })
            .collect())
    }

    /// Commits `write` in one durable transaction.
    pub fn write_probes(&self, write: &ProbeWrite) -> Result<(), StoreError> {
        let _ = write;
        Ok(())
    }

    /// The monitor runs overlapping `[from, to)`, oldest first. A run's stored `end` is its
    /// stop time or its last heartbeat.
    pub fn monitor_runs(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Run>, StoreError> {
        let _ = (from, to);
        Ok(Vec::new())
    }

    /// The newest monitor run, if any.
    pub fn last_monitor_run(&self) -> Result<Option<Run>, StoreError> {
        Ok(None)
    }

    /// The outages overlapping `[from, to)` (an ongoing one overlaps everything after its
    /// start), oldest first.
    pub fn outages(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Outage>, StoreError> {
        let _ = (from, to);
        Ok(Vec::new())
    }

    /// The newest outage stored as ongoing (`end: None`), if any.
    pub fn open_outage(&self) -> Result<Option<Outage>, StoreError> {
        Ok(None)
    }

    /// Visits the rows (minutes and buckets) starting in `[from, to)` in time order.
    pub fn probe_rows(
        &self,
        from: Timestamp,
        to: Timestamp,
        visit: &mut dyn FnMut(&ProbeRow),
    ) -> Result<(), StoreError> {
        let _ = (from, to, visit);
        Ok(())
    }

    /// Folds minute rows older than `before` into 10-minute buckets, at most `max_buckets`
    /// buckets per call (one transaction; the minutes go in the same one); returns the
    /// buckets written.
    pub fn downsample_probes(
        &self,
        before: Timestamp,
        max_buckets: usize,
    ) -> Result<usize, StoreError> {
        let _ = (before, max_buckets);
        Ok(0)
    }

    /// Deletes probe rows, closed outages and monitor runs that ended before `cutoff`, at
    /// most `batch` per call; returns how many were deleted.
    pub fn delete_probes_before(
        &self,
        cutoff: Timestamp,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let _ = (cutoff, batch);
        Ok(0)
    }
}
