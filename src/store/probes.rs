//! The connectivity monitor's tables (issue 15): probe targets, per-minute probe figures
//! (downsampled to 10-minute buckets after [`MINUTE_DAYS`] days), outages and the monitor's
//! runs, each record versioned and checksummed like `plans_v1`.
//!
//! Every table is keyed by a `u64` and holds records [`seal`]ed as in `plans_v1`: the version
//! byte first (1 for every table here; another version is refused, never obeyed), the
//! CRC-32 (4 bytes, little-endian) of the key and the record last, so a changed byte, a
//! truncated record or a record moved to another key is detected when it is read.
//!
//! | table | key | record, version 1 |
//! |---|---|---|
//! | `probe_targets_v1` | target id (dense, from 0) | `1, kind u8 (0 gateway, 1 public), method u8 (0 icmp-unprivileged, 1 icmp-raw, 2 tcp-connect), port varint (0 for ICMP), address length u8 (4 or 16) + octets, crc` |
//! | `probe_minutes_v1` | minute start, ms | `1, count varint, per target by ascending id: id varint, flags u8 (bit 0 under load, bit 1 has RTT), sent varint, lost varint, [min µs, median − min, max − median] varints when it has RTTs, crc` |
//! | `probe_buckets_v1` | 10-minute bucket start, ms | as a minute, but flags bit 0 is always 0 and `under_load_minutes varint` (≤ 10) follows `lost` |
//! | `outages_v1` | outage start, ms | `1, kind u8 (0 isp, 1 local), end varint (0 ongoing, else end − start + 1 ms), unmonitored ms varint, restarts varint, crc` |
//! | `monitor_runs_v1` | run start, ms | `1, end varint (0 unknown, else end − start + 1 ms), crc` |
//!
//! One minute record holds every target's figures (one key and one redb entry instead of one
//! per target); a record names targets by id, never by address. A bucket combines its
//! minutes: probes sent and lost summed, the smallest minimum, the largest maximum, the
//! median of the minutes' medians (the lower middle one for an even count; an approximation
//! of the bucket's median, since the minutes' RTTs are not kept) and the minutes under load
//! counted. [`Store::downsample_probes`] writes a bucket and deletes its minutes in one
//! transaction, so a crash leaves either the minutes or the bucket, never both nor neither.
//!
//! Outages and runs are written as the monitor's `Tracker` produces them: one after another,
//! none overlapping the next, an ongoing outage only ever the newest. [`Store::outages`] and
//! [`Store::monitor_runs`] rely on that to read back from a window's start only as far as the
//! first record that ended before it.
//!
//! The tables came after sample format 3 and are optional: a store without them has no probe
//! data, which reads as none, and opening it does not create them (the first probe write
//! does). The sample format version stays 3; an older program ignores the tables.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError, TableHandle,
};

use super::codec::{DecodeError, Reader, put_varint, seal, unseal};
use super::{Store, StoreError, key_time};
use crate::probe::outage::{Outage, OutageKind, Run};
use crate::probe::{ProbeMethod, StoredTarget, Target, TargetId, TargetKind};
use crate::time::Timestamp;

/// Days of per-minute rows kept before they are folded into 10-minute buckets.
pub const MINUTE_DAYS: u64 = 31;
/// Minutes in one downsampled bucket.
pub const BUCKET_MINUTES: u32 = 10;
/// The minute rows the service keeps unfolded at least: [`MINUTE_DAYS`] days of them, so a
/// minute is folded only once that much probing was recorded after it (see
/// [`Store::probe_fold_cut`]).
pub(crate) const MINUTE_ROWS_KEPT: u64 = MINUTE_DAYS * 24 * 60;
/// The most probe targets a store keeps (each restart with other targets adds some; a few
/// dozen are usual), so the target list and a row's target count stay bounded.
pub(crate) const MAX_PROBE_TARGETS: u64 = 10_000;
/// The version of every record written in these tables.
pub(crate) const PROBE_RECORD_VERSION: u8 = 1;

/// Targets by id.
pub(super) const TARGETS: TableDefinition<u64, &[u8]> = TableDefinition::new("probe_targets_v1");
/// Minute rows by minute start (ms).
pub(super) const MINUTES: TableDefinition<u64, &[u8]> = TableDefinition::new("probe_minutes_v1");
/// 10-minute buckets by bucket start (ms).
pub(super) const BUCKETS: TableDefinition<u64, &[u8]> = TableDefinition::new("probe_buckets_v1");
/// Outages by start (ms).
pub(super) const OUTAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("outages_v1");
/// Monitor runs by start (ms).
pub(super) const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("monitor_runs_v1");

const MINUTE_MS: u64 = 60_000;
const BUCKET_MS: u64 = MINUTE_MS * BUCKET_MINUTES as u64;
const FLAG_UNDER_LOAD: u8 = 1;
const FLAG_RTT: u8 = 2;

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
    #[cfg(test)]
    pub(crate) fn span(&self) -> Duration {
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

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

/// `record` (its version byte first) with its checksum at `key` appended, as every encoder
/// here ends: for the fuzz target `probe_record`, which seals its input so that the
/// decoders' field checks are reached, not only the checksum.
pub fn seal_record(key: u64, record: Vec<u8>) -> Vec<u8> {
    seal(key, record)
}

/// The record of `target`, to be stored at key `target.id`.
pub fn encode_target(target: &StoredTarget) -> Vec<u8> {
    let t = &target.target;
    let mut out = vec![PROBE_RECORD_VERSION];
    out.push(match t.kind {
        TargetKind::Gateway => 0,
        TargetKind::Public => 1,
    });
    let (method, port) = match t.method {
        ProbeMethod::IcmpUnprivileged => (0, 0),
        ProbeMethod::IcmpRaw => (1, 0),
        ProbeMethod::TcpConnect { port } => (2, port),
    };
    out.push(method);
    put_varint(&mut out, u64::from(port));
    match t.address {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(16);
            out.extend_from_slice(&v6.octets());
        }
    }
    seal(u64::from(target.id), out)
}

/// The target stored at id `key` as `bytes`, checked against its checksum.
pub fn decode_target(key: u64, bytes: &[u8]) -> Result<StoredTarget, DecodeError> {
    let fields = unseal(key, bytes, PROBE_RECORD_VERSION)?;
    let id = TargetId::try_from(key).map_err(|_| DecodeError::Malformed)?;
    let mut reader = Reader(fields);
    let kind = match reader.byte()? {
        0 => TargetKind::Gateway,
        1 => TargetKind::Public,
        _ => return Err(DecodeError::Malformed),
    };
    let method = reader.byte()?;
    let port = u16::try_from(reader.varint()?).map_err(|_| DecodeError::Malformed)?;
    let method = match (method, port) {
        (0, 0) => ProbeMethod::IcmpUnprivileged,
        (1, 0) => ProbeMethod::IcmpRaw,
        (2, port) => ProbeMethod::TcpConnect { port },
        _ => return Err(DecodeError::Malformed),
    };
    let address = match reader.byte()? {
        4 => {
            let mut octets = [0u8; 4];
            for octet in &mut octets {
                *octet = reader.byte()?;
            }
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        16 => {
            let mut octets = [0u8; 16];
            for octet in &mut octets {
                *octet = reader.byte()?;
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return Err(DecodeError::Malformed),
    };
    if !reader.0.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok(StoredTarget {
        id,
        target: Target {
            kind,
            address,
            method,
        },
    })
}

/// The record of `row`, to be stored at key `row.start` in ms: in the minute layout when
/// `row.minutes` is 1, else in the bucket layout. The caller has checked the row (see
/// [`Store::write_probes`]); RTTs only partly present are written as none.
pub fn encode_row(row: &ProbeRow) -> Vec<u8> {
    let bucket = row.minutes != 1;
    let mut out = Vec::with_capacity(8 + 12 * row.stats.len());
    out.push(PROBE_RECORD_VERSION);
    put_varint(&mut out, row.stats.len() as u64);
    for stats in &row.stats {
        put_varint(&mut out, u64::from(stats.target));
        let rtt = match (stats.rtt_min_us, stats.rtt_median_us, stats.rtt_max_us) {
            (Some(min), Some(median), Some(max)) => Some((min, median, max)),
            _ => None,
        };
        let mut flags = 0;
        if rtt.is_some() {
            flags |= FLAG_RTT;
        }
        if !bucket && stats.under_load_minutes > 0 {
            flags |= FLAG_UNDER_LOAD;
        }
        out.push(flags);
        put_varint(&mut out, u64::from(stats.sent));
        put_varint(&mut out, u64::from(stats.lost));
        if bucket {
            put_varint(&mut out, u64::from(stats.under_load_minutes));
        }
        if let Some((min, median, max)) = rtt {
            put_varint(&mut out, min);
            put_varint(&mut out, median.saturating_sub(min));
            put_varint(&mut out, max.saturating_sub(median));
        }
    }
    seal(row.start.as_millis(), out)
}

/// The minute row stored at `key` (ms) as `bytes`, checked against its checksum and bounds.
pub fn decode_minute(key: u64, bytes: &[u8]) -> Result<ProbeRow, DecodeError> {
    let mut row = empty_row();
    decode_row_into(&mut row, key, bytes, 1)?;
    Ok(row)
}

/// The bucket stored at `key` (ms) as `bytes`, checked against its checksum and bounds.
pub fn decode_bucket(key: u64, bytes: &[u8]) -> Result<ProbeRow, DecodeError> {
    let mut row = empty_row();
    decode_row_into(&mut row, key, bytes, BUCKET_MINUTES)?;
    Ok(row)
}

fn empty_row() -> ProbeRow {
    ProbeRow {
        start: Timestamp::EPOCH,
        minutes: 1,
        stats: Vec::new(),
    }
}

/// [`Reader`]'s varint and byte, inlined: a year's read decodes some 2.7 million varints.
struct Fast<'a>(&'a [u8]);

impl Fast<'_> {
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed)
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&first, rest) = self.0.split_first().ok_or(DecodeError::Malformed)?;
        self.0 = rest;
        Ok(first)
    }
}

/// Decodes a row of `minutes` into `row`, reusing its `stats` (a long read allocates once).
fn decode_row_into(
    row: &mut ProbeRow,
    key: u64,
    bytes: &[u8],
    minutes: u32,
) -> Result<(), DecodeError> {
    let fields = unseal(key, bytes, PROBE_RECORD_VERSION)?;
    let span = u64::from(minutes) * MINUTE_MS;
    let start = Timestamp::try_from_millis(key)
        .filter(|time| *time < Timestamp::MAX && key.is_multiple_of(span))
        .ok_or(DecodeError::Malformed)?;
    let bucket = minutes != 1;
    let mut reader = Fast(fields);
    let count = reader.varint()?;
    if count > MAX_PROBE_TARGETS {
        return Err(DecodeError::Malformed);
    }
    row.start = start;
    row.minutes = minutes;
    row.stats.clear();
    let mut previous: Option<TargetId> = None;
    for _ in 0..count {
        let target = TargetId::try_from(reader.varint()?).map_err(|_| DecodeError::Malformed)?;
        if previous.is_some_and(|previous| previous >= target) {
            return Err(DecodeError::Malformed);
        }
        previous = Some(target);
        let flags = reader.byte()?;
        let known = if bucket {
            FLAG_RTT
        } else {
            FLAG_RTT | FLAG_UNDER_LOAD
        };
        if flags & !known != 0 {
            return Err(DecodeError::Malformed);
        }
        let sent = u32::try_from(reader.varint()?).map_err(|_| DecodeError::Malformed)?;
        let lost = u32::try_from(reader.varint()?).map_err(|_| DecodeError::Malformed)?;
        if lost > sent {
            return Err(DecodeError::Malformed);
        }
        let under_load_minutes = if bucket {
            u32::try_from(reader.varint()?)
                .ok()
                .filter(|n| *n <= minutes)
                .ok_or(DecodeError::Malformed)?
        } else {
            u32::from(flags & FLAG_UNDER_LOAD)
        };
        let (rtt_min_us, rtt_median_us, rtt_max_us) = if flags & FLAG_RTT != 0 {
            let min = reader.varint()?;
            let median = min
                .checked_add(reader.varint()?)
                .ok_or(DecodeError::Malformed)?;
            let max = median
                .checked_add(reader.varint()?)
                .ok_or(DecodeError::Malformed)?;
            (Some(min), Some(median), Some(max))
        } else {
            (None, None, None)
        };
        row.stats.push(ProbeStats {
            target,
            sent,
            lost,
            rtt_min_us,
            rtt_median_us,
            rtt_max_us,
            under_load_minutes,
        });
    }
    if !reader.0.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok(())
}

/// `end − start + 1` in ms for a known end, 0 for none.
fn end_delta(start: Timestamp, end: Option<Timestamp>) -> u64 {
    end.map_or(0, |end| {
        end.as_millis()
            .saturating_sub(start.as_millis())
            .saturating_add(1)
    })
}

/// The end a stored `end_delta` gives from `start`.
fn end_from(start: u64, delta: u64) -> Result<Option<Timestamp>, DecodeError> {
    if delta == 0 {
        return Ok(None);
    }
    start
        .checked_add(delta - 1)
        .and_then(Timestamp::try_from_millis)
        .map(Some)
        .ok_or(DecodeError::Malformed)
}

/// The key time of a record keyed by a time: before [`Timestamp::MAX`].
fn start_of(key: u64) -> Result<Timestamp, DecodeError> {
    Timestamp::try_from_millis(key)
        .filter(|time| *time < Timestamp::MAX)
        .ok_or(DecodeError::Malformed)
}

/// The record of `outage`, to be stored at key `outage.start` in ms (`unmonitored` in whole ms).
pub fn encode_outage(outage: &Outage) -> Vec<u8> {
    let mut out = vec![PROBE_RECORD_VERSION];
    out.push(match outage.kind {
        OutageKind::Isp => 0,
        OutageKind::Local => 1,
    });
    put_varint(&mut out, end_delta(outage.start, outage.end));
    put_varint(
        &mut out,
        u64::try_from(outage.unmonitored.as_millis()).unwrap_or(u64::MAX),
    );
    put_varint(&mut out, u64::from(outage.restarts));
    seal(outage.start.as_millis(), out)
}

/// The outage stored at `key` (ms) as `bytes`, checked against its checksum.
pub fn decode_outage(key: u64, bytes: &[u8]) -> Result<Outage, DecodeError> {
    let fields = unseal(key, bytes, PROBE_RECORD_VERSION)?;
    let start = start_of(key)?;
    let mut reader = Reader(fields);
    let kind = match reader.byte()? {
        0 => OutageKind::Isp,
        1 => OutageKind::Local,
        _ => return Err(DecodeError::Malformed),
    };
    let end = end_from(key, reader.varint()?)?;
    let unmonitored = Duration::from_millis(reader.varint()?);
    let restarts = u32::try_from(reader.varint()?).map_err(|_| DecodeError::Malformed)?;
    if !reader.0.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok(Outage {
        start,
        end,
        kind,
        unmonitored,
        restarts,
    })
}

/// The record of `run`, to be stored at key `run.start` in ms.
pub fn encode_run(run: &Run) -> Vec<u8> {
    let mut out = vec![PROBE_RECORD_VERSION];
    put_varint(&mut out, end_delta(run.start, run.end));
    seal(run.start.as_millis(), out)
}

/// The run stored at `key` (ms) as `bytes`, checked against its checksum.
pub fn decode_run(key: u64, bytes: &[u8]) -> Result<Run, DecodeError> {
    let fields = unseal(key, bytes, PROBE_RECORD_VERSION)?;
    let start = start_of(key)?;
    let mut reader = Reader(fields);
    let end = end_from(key, reader.varint()?)?;
    if !reader.0.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok(Run { start, end })
}

/// What is wrong with `row` as a minute row to store, if anything.
fn invalid_minute(row: &ProbeRow) -> Option<String> {
    let start = row.start.as_millis();
    if row.minutes != 1 {
        return Some(format!("a minute row spans {} minutes", row.minutes));
    }
    if row.start >= Timestamp::MAX || !start.is_multiple_of(MINUTE_MS) {
        return Some(format!(
            "a minute row starts at {}, not a whole minute",
            row.start
        ));
    }
    if row.stats.len() as u64 > MAX_PROBE_TARGETS {
        return Some(format!("a minute row has {} targets", row.stats.len()));
    }
    let mut previous: Option<TargetId> = None;
    for stats in &row.stats {
        let at = || format!("the minute {}, target {}", row.start, stats.target);
        if previous.is_some_and(|previous| previous >= stats.target) {
            return Some(format!("{}: targets not by ascending id", at()));
        }
        previous = Some(stats.target);
        if stats.lost > stats.sent {
            return Some(format!("{}: more probes lost than sent", at()));
        }
        if stats.under_load_minutes > 1 {
            return Some(format!("{}: under load for more than its minute", at()));
        }
        match (stats.rtt_min_us, stats.rtt_median_us, stats.rtt_max_us) {
            (None, None, None) => {}
            (Some(min), Some(median), Some(max)) if min <= median && median <= max => {}
            _ => return Some(format!("{}: RTTs not min <= median <= max", at())),
        }
    }
    None
}

/// Folds `rows` (minutes, and a bucket already at that start) into the bucket at `start`:
/// sent and lost summed, min of the minimums, max of the maximums, the lower median of the
/// medians, minutes under load counted (at most [`BUCKET_MINUTES`]).
fn fold(start: Timestamp, rows: &[ProbeRow]) -> ProbeRow {
    #[derive(Default)]
    struct Acc {
        sent: u32,
        lost: u32,
        min: Option<u64>,
        max: Option<u64>,
        medians: Vec<u64>,
        under_load: u32,
    }
    let mut targets: BTreeMap<TargetId, Acc> = BTreeMap::new();
    for stats in rows.iter().flat_map(|row| &row.stats) {
        let acc = targets.entry(stats.target).or_default();
        acc.sent = acc.sent.saturating_add(stats.sent);
        acc.lost = acc.lost.saturating_add(stats.lost);
        acc.under_load = acc.under_load.saturating_add(stats.under_load_minutes);
        if let (Some(min), Some(median), Some(max)) =
            (stats.rtt_min_us, stats.rtt_median_us, stats.rtt_max_us)
        {
            acc.min = Some(acc.min.map_or(min, |m| m.min(min)));
            acc.max = Some(acc.max.map_or(max, |m| m.max(max)));
            acc.medians.push(median);
        }
    }
    let stats = targets
        .into_iter()
        .map(|(target, mut acc)| {
            acc.medians.sort_unstable();
            let median = acc
                .medians
                .get(acc.medians.len().saturating_sub(1) / 2)
                .copied();
            let rtt = acc.min.zip(median).zip(acc.max);
            ProbeStats {
                target,
                sent: acc.sent,
                lost: acc.lost,
                rtt_min_us: rtt.map(|((min, _), _)| min),
                rtt_median_us: rtt.map(|((_, median), _)| median),
                rtt_max_us: rtt.map(|(_, max)| max),
                under_load_minutes: acc.under_load.min(BUCKET_MINUTES),
            }
        })
        .collect();
    ProbeRow {
        start,
        minutes: BUCKET_MINUTES,
        stats,
    }
}

/// One minute row from `stored` and `new`, two rows of the same minute (the last minute of
/// a run and the first of the next after a restart within it): as [`fold`] combines a
/// bucket's minutes, with the minute layout (under load when either was).
fn merge_minutes(stored: &ProbeRow, new: &ProbeRow) -> ProbeRow {
    let mut merged = fold(new.start, &[stored.clone(), new.clone()]);
    merged.minutes = 1;
    for stats in &mut merged.stats {
        stats.under_load_minutes = stats.under_load_minutes.min(1);
    }
    merged
}

// ---------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------

/// A decoder of one table's records.
type Decode<T> = fn(u64, &[u8]) -> Result<T, DecodeError>;
/// One of this module's tables.
type ProbeTable = TableDefinition<'static, u64, &'static [u8]>;

/// How a finding names a table's record at `key`.
fn describe(table: &str, key: u64) -> String {
    match table {
        "probe_targets_v1" => format!("the probe target record with id {key}"),
        "probe_minutes_v1" => format!("the probe minute record at {}", key_time(key)),
        "probe_buckets_v1" => format!("the probe bucket record at {}", key_time(key)),
        "outages_v1" => format!("the outage record from {}", key_time(key)),
        _ => format!("the monitor run record from {}", key_time(key)),
    }
}

impl Store {
    /// A table of a read transaction; `None` when the file does not have it (written before
    /// the connectivity monitor, or never probed).
    fn probe_table(
        &self,
        txn: &ReadTransaction,
        table: TableDefinition<u64, &[u8]>,
    ) -> Result<Option<redb::ReadOnlyTable<u64, &'static [u8]>>, StoreError> {
        match txn.open_table(table) {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(err) => Err(self.redb(err)),
        }
    }

    /// The error for the damaged record at `key` of `table`.
    fn probe_damage(
        &self,
        table: TableDefinition<u64, &[u8]>,
        key: u64,
        cause: DecodeError,
    ) -> StoreError {
        StoreError::ProbeDecode {
            path: self.path.clone(),
            record: describe(table.name(), key),
            cause,
        }
    }

    /// Every record of `table` in key order.
    fn probe_all<T>(
        &self,
        table: TableDefinition<u64, &[u8]>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.guarded(|| {
            let txn = self.begin_read()?;
            let Some(opened) = self.probe_table(&txn, table)? else {
                return Ok(Vec::new());
            };
            let mut values = Vec::new();
            for entry in opened.iter().map_err(|e| self.redb(e))? {
                let (key, value) = entry.map_err(|e| self.redb(e))?;
                let key = key.value();
                values.push(
                    decode(key, value.value())
                        .map_err(|cause| self.probe_damage(table, key, cause))?,
                );
            }
            Ok(values)
        })
    }

    /// The records of `table` (outages or runs: one after another, none overlapping the
    /// next) overlapping `[from, to)`, oldest first: those starting in it, and those before it
    /// read back from `from` until the first that ended at or before `from`.
    fn overlapping<T>(
        &self,
        table: TableDefinition<u64, &[u8]>,
        decode: Decode<T>,
        end_of: fn(&T) -> Option<Timestamp>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<T>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        self.guarded(|| {
            let txn = self.begin_read()?;
            let Some(opened) = self.probe_table(&txn, table)? else {
                return Ok(Vec::new());
            };
            let mut found = Vec::new();
            for entry in opened
                .range(..from.as_millis())
                .map_err(|e| self.redb(e))?
                .rev()
            {
                let (key, value) = entry.map_err(|e| self.redb(e))?;
                let key = key.value();
                let record = decode(key, value.value())
                    .map_err(|cause| self.probe_damage(table, key, cause))?;
                match end_of(&record) {
                    Some(end) if end <= from => break,
                    _ => found.push(record),
                }
            }
            found.reverse();
            for entry in opened
                .range(from.as_millis()..to.as_millis())
                .map_err(|e| self.redb(e))?
            {
                let (key, value) = entry.map_err(|e| self.redb(e))?;
                let key = key.value();
                found.push(
                    decode(key, value.value())
                        .map_err(|cause| self.probe_damage(table, key, cause))?,
                );
            }
            Ok(found)
        })
    }

    /// Every stored probe target, by id. A damaged record is an error
    /// ([`StoreError::ProbeDecode`]), never a target.
    pub(crate) fn probe_targets(&self) -> Result<Vec<StoredTarget>, StoreError> {
        self.probe_all(TARGETS, decode_target)
    }

    /// The ids of `targets`, in the same order: an equal stored target's id, else a new one
    /// (the next after the highest stored), all stored in one durable transaction; nothing
    /// is written when every target is stored already. More than [`MAX_PROBE_TARGETS`] in all
    /// is refused ([`StoreError::ProbeLimit`]) and nothing changes.
    pub fn register_probe_targets(
        &self,
        targets: &[Target],
    ) -> Result<Vec<StoredTarget>, StoreError> {
        let stored = self.probe_targets()?;
        let known = |target: &Target| stored.iter().find(|s| s.target == *target).copied();
        if let Some(all) = targets.iter().map(known).collect::<Option<Vec<_>>>() {
            return Ok(all);
        }
        self.guarded(|| {
            self.write(|txn| {
                let mut table = txn.open_table(TARGETS).map_err(|e| self.redb(e))?;
                let mut stored: HashMap<Target, StoredTarget> = HashMap::new();
                let mut next = Some(0);
                for entry in table.iter().map_err(|e| self.redb(e))? {
                    let (key, value) = entry.map_err(|e| self.redb(e))?;
                    let key = key.value();
                    let found = decode_target(key, value.value())
                        .map_err(|cause| self.probe_damage(TARGETS, key, cause))?;
                    next = found.id.checked_add(1);
                    stored.insert(found.target, found);
                }
                let mut result = Vec::with_capacity(targets.len());
                for target in targets {
                    if let Some(found) = stored.get(target) {
                        result.push(*found);
                        continue;
                    }
                    let limit = || StoreError::ProbeLimit {
                        path: self.path.clone(),
                        max: MAX_PROBE_TARGETS,
                    };
                    if stored.len() as u64 >= MAX_PROBE_TARGETS {
                        return Err(limit());
                    }
                    let id = next.ok_or_else(limit)?;
                    next = id.checked_add(1);
                    let new = StoredTarget {
                        id,
                        target: *target,
                    };
                    table
                        .insert(u64::from(id), encode_target(&new).as_slice())
                        .map_err(|e| self.redb(e))?;
                    stored.insert(new.target, new);
                    result.push(new);
                }
                Ok(result)
            })
        })
    }

    /// Commits `write` in one durable transaction: the minute row at its start (merged with
    /// a row already stored for that minute by an earlier run, as downsampling folds rows:
    /// sent and lost summed, min of the minimums, max of the maximums, the lower of the two
    /// medians), each outage at its start and the run at its start, each replacing the record
    /// there. A row or
    /// interval that breaks its bounds (see [`StoreError::ProbeInvalid`]) is refused and
    /// nothing is written; an empty write commits nothing.
    pub fn write_probes(&self, write: &ProbeWrite) -> Result<(), StoreError> {
        self.write_probes_batch(std::slice::from_ref(write))
    }

    /// Commits every write of `writes` in one durable transaction, in order: what
    /// [`Store::write_probes`] does for one, for an import or a benchmark's synthetic
    /// history (one fsync for many minutes; the monitor writes one minute at a time).
    pub fn write_probes_batch(&self, writes: &[ProbeWrite]) -> Result<(), StoreError> {
        let invalid = |detail: String| StoreError::ProbeInvalid {
            path: self.path.clone(),
            detail,
        };
        let interval = |what: &str, start: Timestamp, end: Option<Timestamp>| {
            if start >= Timestamp::MAX || end.is_some_and(|end| end < start) {
                Some(format!("{what} from {start} ends before it starts"))
            } else {
                None
            }
        };
        for write in writes {
            if let Some(detail) = write.minute.as_ref().and_then(invalid_minute) {
                return Err(invalid(detail));
            }
            for outage in &write.outages {
                if let Some(detail) = interval("an outage", outage.start, outage.end) {
                    return Err(invalid(detail));
                }
            }
            if let Some(detail) = write
                .run
                .and_then(|run| interval("a monitor run", run.start, run.end))
            {
                return Err(invalid(detail));
            }
        }
        let empty = |w: &ProbeWrite| w.minute.is_none() && w.outages.is_empty() && w.run.is_none();
        if writes.iter().all(empty) {
            return Ok(());
        }
        self.guarded(|| {
            self.write(|txn| {
                let redb = |e: redb::TableError| self.redb(e);
                let mut minutes = txn.open_table(MINUTES).map_err(redb)?;
                let mut outages = txn.open_table(OUTAGES).map_err(redb)?;
                let mut runs = txn.open_table(RUNS).map_err(redb)?;
                for write in writes {
                    if let Some(row) = &write.minute {
                        let key = row.start.as_millis();
                        // The same minute of an earlier run (a restart within a minute) is
                        // merged, never replaced: its probes stay counted.
                        let stored = minutes
                            .get(key)
                            .map_err(|e| self.redb(e))?
                            .map(|value| decode_minute(key, value.value()));
                        let merged = match stored {
                            None => None,
                            Some(Ok(stored)) => Some(merge_minutes(&stored, row)),
                            Some(Err(cause)) => return Err(self.probe_damage(MINUTES, key, cause)),
                        };
                        minutes
                            .insert(key, encode_row(merged.as_ref().unwrap_or(row)).as_slice())
                            .map_err(|e| self.redb(e))?;
                    }
                    for outage in &write.outages {
                        outages
                            .insert(outage.start.as_millis(), encode_outage(outage).as_slice())
                            .map_err(|e| self.redb(e))?;
                    }
                    if let Some(run) = &write.run {
                        runs.insert(run.start.as_millis(), encode_run(run).as_slice())
                            .map_err(|e| self.redb(e))?;
                    }
                }
                Ok(())
            })
        })
    }

    /// The monitor runs overlapping `[from, to)`, oldest first. A run's stored `end` is its
    /// stop time or its last heartbeat; a run without one overlaps everything after its start.
    pub(crate) fn monitor_runs(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Run>, StoreError> {
        self.overlapping(RUNS, decode_run, |run| run.end, from, to)
    }

    /// The newest monitor run, if any.
    pub(crate) fn last_monitor_run(&self) -> Result<Option<Run>, StoreError> {
        self.monitor_run_at(Timestamp::MAX)
    }

    /// The monitor run that started last at or before `time` (the run `time` fell in, if it
    /// was monitored), if any.
    pub(crate) fn monitor_run_at(&self, time: Timestamp) -> Result<Option<Run>, StoreError> {
        self.guarded(|| {
            let txn = self.begin_read()?;
            let Some(runs) = self.probe_table(&txn, RUNS)? else {
                return Ok(None);
            };
            let mut range = runs.range(..=time.as_millis()).map_err(|e| self.redb(e))?;
            let Some(entry) = range.next_back() else {
                return Ok(None);
            };
            let (key, value) = entry.map_err(|e| self.redb(e))?;
            let key = key.value();
            decode_run(key, value.value())
                .map(Some)
                .map_err(|cause| self.probe_damage(RUNS, key, cause))
        })
    }

    /// The outages overlapping `[from, to)` (an ongoing one overlaps everything after its
    /// start), oldest first. Reads the outages starting in the window, and back from `from`
    /// to the first outage that ended at or before it: outages follow one another, so none
    /// before that one overlaps.
    pub fn outages(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Outage>, StoreError> {
        self.overlapping(OUTAGES, decode_outage, |outage| outage.end, from, to)
    }

    /// The newest outage stored as ongoing (`end: None`), if any.
    pub(crate) fn open_outage(&self) -> Result<Option<Outage>, StoreError> {
        self.guarded(|| {
            let txn = self.begin_read()?;
            let Some(outages) = self.probe_table(&txn, OUTAGES)? else {
                return Ok(None);
            };
            for entry in outages.iter().map_err(|e| self.redb(e))?.rev() {
                let (key, value) = entry.map_err(|e| self.redb(e))?;
                let key = key.value();
                let outage = decode_outage(key, value.value())
                    .map_err(|cause| self.probe_damage(OUTAGES, key, cause))?;
                if outage.end.is_none() {
                    return Ok(Some(outage));
                }
            }
            Ok(None)
        })
    }

    /// Visits the rows (minutes and buckets) starting in `[from, to)` in time order (a bucket
    /// before a minute at the same start, which only a minute written late can make). The
    /// row passed is reused between calls. A damaged record stops the walk with
    /// [`StoreError::ProbeDecode`].
    pub fn probe_rows(
        &self,
        from: Timestamp,
        to: Timestamp,
        visit: &mut dyn FnMut(&ProbeRow),
    ) -> Result<(), StoreError> {
        if from >= to {
            return Ok(());
        }
        self.guarded(|| {
            let txn = self.begin_read()?;
            let minutes = self.probe_table(&txn, MINUTES)?;
            let buckets = self.probe_table(&txn, BUCKETS)?;
            let range = |table: &Option<redb::ReadOnlyTable<u64, &'static [u8]>>| {
                table
                    .as_ref()
                    .map(|t| t.range(from.as_millis()..to.as_millis()))
                    .transpose()
                    .map_err(|e| self.redb(e))
            };
            let (mut minute_range, mut bucket_range) = (range(&minutes)?, range(&buckets)?);
            // Each table's next row, decoded as soon as it is read: redb's entries are large,
            // so they are not carried through iterator adapters (that copying was a tenth of
            // a year's read).
            let advance = |range: &mut Option<redb::Range<'static, u64, &'static [u8]>>,
                           row: &mut ProbeRow,
                           table: ProbeTable,
                           span: u32|
             -> Result<bool, StoreError> {
                let Some(entry) = range.as_mut().and_then(|range| range.next()) else {
                    return Ok(false);
                };
                let (key, value) = entry.map_err(|e| self.redb(e))?;
                let key = key.value();
                decode_row_into(row, key, value.value(), span)
                    .map_err(|cause| self.probe_damage(table, key, cause))?;
                Ok(true)
            };
            let (mut minute, mut bucket) = (empty_row(), empty_row());
            let mut has_minute = advance(&mut minute_range, &mut minute, MINUTES, 1)?;
            let mut has_bucket = advance(&mut bucket_range, &mut bucket, BUCKETS, BUCKET_MINUTES)?;
            while has_minute || has_bucket {
                if has_bucket && (!has_minute || bucket.start <= minute.start) {
                    super::guard::caller(|| visit(&bucket));
                    has_bucket = advance(&mut bucket_range, &mut bucket, BUCKETS, BUCKET_MINUTES)?;
                } else {
                    super::guard::caller(|| visit(&minute));
                    has_minute = advance(&mut minute_range, &mut minute, MINUTES, 1)?;
                }
            }
            Ok(())
        })
    }

    /// Folds minute rows older than `before` into 10-minute buckets, at most `max_buckets`
    /// buckets per call (one transaction; the minutes go in the same one); returns the
    /// buckets written. Only whole buckets that end at or before `before` are folded, oldest
    /// first; a bucket already stored at a start (a minute written after its bucket) is
    /// folded in as one more row. Calling it again finds nothing left to fold; when there is
    /// nothing, nothing is written.
    pub fn downsample_probes(
        &self,
        before: Timestamp,
        max_buckets: usize,
    ) -> Result<usize, StoreError> {
        let end = before.as_millis() - before.as_millis() % BUCKET_MS;
        if max_buckets == 0 || !self.has_minutes_before(end)? {
            return Ok(0);
        }
        self.guarded(|| {
            self.write(|txn| {
                let mut minutes = txn.open_table(MINUTES).map_err(|e| self.redb(e))?;
                let mut buckets = txn.open_table(BUCKETS).map_err(|e| self.redb(e))?;
                // (bucket start, its minutes' keys, its minutes' rows)
                let mut groups: Vec<(u64, Vec<u64>, Vec<ProbeRow>)> = Vec::new();
                for entry in minutes.range(..end).map_err(|e| self.redb(e))? {
                    let (key, value) = entry.map_err(|e| self.redb(e))?;
                    let key = key.value();
                    let row = decode_minute(key, value.value())
                        .map_err(|cause| self.probe_damage(MINUTES, key, cause))?;
                    let bucket = key - key % BUCKET_MS;
                    let full = groups.len() == max_buckets;
                    match groups.last_mut() {
                        Some((start, keys, rows)) if *start == bucket => {
                            keys.push(key);
                            rows.push(row);
                        }
                        _ if full => break,
                        _ => groups.push((bucket, vec![key], vec![row])),
                    }
                }
                let written = groups.len();
                for (start, keys, mut rows) in groups {
                    let stored = buckets
                        .get(start)
                        .map_err(|e| self.redb(e))?
                        .map(|value| decode_bucket(start, value.value()));
                    if let Some(stored) = stored {
                        rows.push(
                            stored.map_err(|cause| self.probe_damage(BUCKETS, start, cause))?,
                        );
                    }
                    let bucket = fold(Timestamp::from_millis(start), &rows);
                    buckets
                        .insert(start, encode_row(&bucket).as_slice())
                        .map_err(|e| self.redb(e))?;
                    for key in keys {
                        minutes.remove(key).map_err(|e| self.redb(e))?;
                    }
                }
                Ok(written)
            })
        })
    }

    /// The time before which [`Store::downsample_probes`] may fold minutes at `now`: the
    /// earlier of `now` − [`MINUTE_DAYS`] days and the start of the newest minute row with at
    /// least `keep_rows` minute rows after it (just after it, so that row is foldable);
    /// [`Timestamp::EPOCH`] (nothing to fold) while fewer rows are stored. Measured along the
    /// record as retention is, so a clock far ahead cannot fold the last month's minutes:
    /// only rows written after it (dated ahead too) can push older ones out, one per minute
    /// probed. The service passes [`MINUTE_ROWS_KEPT`].
    pub(crate) fn probe_fold_cut(
        &self,
        now: Timestamp,
        keep_rows: u64,
    ) -> Result<Timestamp, StoreError> {
        let by_clock = now.saturating_sub(Duration::from_secs(MINUTE_DAYS * 24 * 60 * 60));
        self.guarded(|| {
            let txn = self.begin_read()?;
            let Some(minutes) = self.probe_table(&txn, MINUTES)? else {
                return Ok(Timestamp::EPOCH);
            };
            let skip = usize::try_from(keep_rows).unwrap_or(usize::MAX);
            let Some(entry) = minutes.iter().map_err(|e| self.redb(e))?.rev().nth(skip) else {
                return Ok(Timestamp::EPOCH);
            };
            let key = entry.map_err(|e| self.redb(e))?.0.value();
            let by_record = Timestamp::from_millis(key.saturating_add(1));
            Ok(by_clock.min(by_record))
        })
    }

    /// Whether a minute row starts before `end` (ms), read without a write transaction.
    fn has_minutes_before(&self, end: u64) -> Result<bool, StoreError> {
        self.guarded(|| {
            let txn = self.begin_read()?;
            let Some(minutes) = self.probe_table(&txn, MINUTES)? else {
                return Ok(false);
            };
            let first = minutes.first().map_err(|e| self.redb(e))?;
            Ok(first.is_some_and(|(key, _)| key.value() < end))
        })
    }

    /// Deletes probe rows, closed outages and monitor runs that ended before `cutoff`, at
    /// most `batch` per call; returns how many were deleted.
    ///
    /// "Ended before" is "lies wholly before": a row whose end (start + its span) is at or
    /// before `cutoff`, an outage or run whose end is. An ongoing outage is never deleted; a
    /// run without an end (it stopped before its first heartbeat) goes once the run after it
    /// started at or before `cutoff`. One transaction per call, rows first, oldest first;
    /// nothing is written when nothing is due.
    pub(crate) fn delete_probes_before(
        &self,
        cutoff: Timestamp,
        batch: usize,
    ) -> Result<usize, StoreError> {
        if batch == 0 {
            return Ok(0);
        }
        let due = self.probes_due(cutoff, batch)?;
        if due.is_empty() {
            return Ok(0);
        }
        self.guarded(|| {
            self.write(|txn| {
                for (table, key) in &due {
                    txn.open_table(*table)
                        .map_err(|e| self.redb(e))?
                        .remove(key)
                        .map_err(|e| self.redb(e))?;
                }
                Ok(due.len())
            })
        })
    }

    /// The records [`Store::delete_probes_before`] deletes: at most `batch`, by table.
    fn probes_due(
        &self,
        cutoff: Timestamp,
        batch: usize,
    ) -> Result<Vec<(ProbeTable, u64)>, StoreError> {
        let cutoff = cutoff.as_millis();
        self.guarded(|| {
            let txn = self.begin_read()?;
            let mut due = Vec::new();
            for (table, span) in [(MINUTES, MINUTE_MS), (BUCKETS, BUCKET_MS)] {
                let Some(rows) = self.probe_table(&txn, table)? else {
                    continue;
                };
                let Some(last_start) = cutoff.checked_sub(span) else {
                    continue;
                };
                for entry in rows.range(..=last_start).map_err(|e| self.redb(e))? {
                    if due.len() == batch {
                        return Ok(due);
                    }
                    due.push((table, entry.map_err(|e| self.redb(e))?.0.value()));
                }
            }
            let ended = |end: Option<Timestamp>| end.is_some_and(|end| end.as_millis() <= cutoff);
            if let Some(outages) = self.probe_table(&txn, OUTAGES)? {
                for entry in outages.range(..cutoff).map_err(|e| self.redb(e))? {
                    let (key, value) = entry.map_err(|e| self.redb(e))?;
                    let key = key.value();
                    let outage = decode_outage(key, value.value())
                        .map_err(|cause| self.probe_damage(OUTAGES, key, cause))?;
                    if ended(outage.end) {
                        if due.len() == batch {
                            return Ok(due);
                        }
                        due.push((OUTAGES, key));
                    }
                }
            }
            if let Some(runs) = self.probe_table(&txn, RUNS)? {
                let mut entries = runs.range(..cutoff).map_err(|e| self.redb(e))?.peekable();
                while let Some(entry) = entries.next() {
                    let (key, value) = entry.map_err(|e| self.redb(e))?;
                    let key = key.value();
                    let run = decode_run(key, value.value())
                        .map_err(|cause| self.probe_damage(RUNS, key, cause))?;
                    // A run without an end is over once another started (before the cutoff,
                    // as every run in this range did).
                    let over = ended(run.end) || (run.end.is_none() && entries.peek().is_some());
                    if over {
                        if due.len() == batch {
                            return Ok(due);
                        }
                        due.push((RUNS, key));
                    }
                }
            }
            Ok(due)
        })
    }

    /// Reads every record of the connectivity monitor's tables for `db check`: how many there
    /// are; each damaged one is a finding in `structure`.
    pub(super) fn walk_probes(
        &self,
        txn: &ReadTransaction,
        structure: &mut Vec<String>,
    ) -> Result<u64, StoreError> {
        let mut read = 0;
        let tables: [(ProbeTable, Decode<()>); 5] = [
            (TARGETS, |k, b| decode_target(k, b).map(drop)),
            (MINUTES, |k, b| decode_minute(k, b).map(drop)),
            (BUCKETS, |k, b| decode_bucket(k, b).map(drop)),
            (OUTAGES, |k, b| decode_outage(k, b).map(drop)),
            (RUNS, |k, b| decode_run(k, b).map(drop)),
        ];
        for (table, decode) in tables {
            let Some(opened) = self.probe_table(txn, table)? else {
                continue;
            };
            let mut walked = 0;
            for entry in opened.iter().map_err(|e| self.redb(e))? {
                let (key, value) = entry.map_err(|e| self.redb(e))?;
                walked += 1;
                if let Err(cause) = decode(key.value(), value.value()) {
                    structure.push(format!("{}: {cause}", describe(table.name(), key.value())));
                }
            }
            let counted = opened.len().map_err(|e| self.redb(e))?;
            if counted != walked {
                structure.push(format!(
                    "its table {} says it holds {counted} records, but {walked} were found",
                    table.name()
                ));
            }
            read += walked;
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests;
