//! The remote_write outbox (issue 16): the times of stored samples not yet acknowledged by
//! the remote_write receiver, in the `outbox_v1` table.
//!
//! | table | key | record, version 1 |
//! |---|---|---|
//! | `outbox_v1` | the sample's stored time, ms | `1, queued at (ms since the epoch) varint, crc` |
//!
//! Records are sealed as in `plans_v1` (the version byte first, the CRC-32 of the key and the
//! record last), so a changed byte, a truncated record or a record moved to another key is
//! detected. A damaged entry is reported, never obeyed: [`Store::outbox_pending`] leaves it out
//! (logged, throttled) and `db check` names it.
//!
//! While [`Store::set_outbox`] is on, [`Store::append`] queues the stored sample's time in the
//! same write transaction, so a sample is stored and queued together or not at all. `import`
//! never queues (imported history is not pushed). Retention ([`Store::delete_before`]) leaves
//! the entries of the samples it deletes: the pusher finds no sample at such a time, removes
//! the entry and counts it as expired, so the loss is visible.
//!
//! The table came after sample format 3 and is optional: a store without it has nothing
//! queued, opening it does not create it (the first queued sample does), and an older
//! program ignores it.

use std::sync::atomic::Ordering;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError};

use super::codec::{DecodeError, Reader, put_varint, seal, unseal};
use super::{Store, StoreError, key_time};
use crate::time::Timestamp;

/// Queued sample times (ms) to their records.
pub(super) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox_v1");

/// The version of the records written.
pub(crate) const OUTBOX_RECORD_VERSION: u8 = 1;

/// The outbox's state, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OutboxStats {
    /// Entries queued (damaged ones included: `db check` names those).
    pub(crate) pending: u64,
    /// The stored time of the oldest sample queued (of the entries that read), if any.
    pub(crate) oldest: Option<Timestamp>,
}

/// One queued entry: the sample's stored time (the key) and when it was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutboxEntry {
    /// The sample's stored time.
    pub(crate) time: Timestamp,
    /// When [`Store::append`] queued it (the wall clock then).
    pub(crate) queued: Timestamp,
}

/// The record of `entry`, to be stored at key `entry.time` in ms.
pub(crate) fn encode_outbox_record(entry: &OutboxEntry) -> Vec<u8> {
    let mut out = vec![OUTBOX_RECORD_VERSION];
    put_varint(&mut out, entry.queued.as_millis());
    seal(entry.time.as_millis(), out)
}

/// The entry stored at `key` (ms) as `bytes`, checked against its checksum and bounds (both
/// times before [`Timestamp::MAX`]).
pub(crate) fn decode_outbox_record(key: u64, bytes: &[u8]) -> Result<OutboxEntry, DecodeError> {
    let fields = unseal(key, bytes, OUTBOX_RECORD_VERSION)?;
    let time = in_range(key)?;
    let mut reader = Reader(fields);
    let queued = in_range(reader.varint()?)?;
    if !reader.0.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok(OutboxEntry { time, queued })
}

fn in_range(millis: u64) -> Result<Timestamp, DecodeError> {
    Timestamp::try_from_millis(millis)
        .filter(|time| *time < Timestamp::MAX)
        .ok_or(DecodeError::Malformed)
}

/// How a finding names the entry at `key`.
fn describe(key: u64) -> String {
    format!(
        "the remote_write outbox entry for the sample at {}",
        key_time(key)
    )
}

impl Store {
    /// While `on`, [`Store::append`] also queues each stored sample's time in the outbox, in
    /// the same write transaction. Off when the store is opened; `serve` turns it on when it
    /// pushes (before its first run).
    pub(crate) fn set_outbox(&self, on: bool) {
        self.outbox.store(on, Ordering::Release);
    }

    /// Whether [`Store::append`] queues samples.
    pub(crate) fn outbox_on(&self) -> bool {
        self.outbox.load(Ordering::Acquire)
    }

    /// Queues `time` in the write transaction `txn` (called by `append` while the outbox is
    /// on). An entry already there (a sample stored again at a time retention emptied) is
    /// replaced.
    pub(super) fn queue(
        &self,
        txn: &redb::WriteTransaction,
        time: Timestamp,
    ) -> Result<(), StoreError> {
        let entry = OutboxEntry {
            time,
            queued: Timestamp::now().min(Timestamp::from_millis(
                Timestamp::MAX.as_millis().saturating_sub(1),
            )),
        };
        let mut table = txn.open_table(OUTBOX).map_err(|e| self.redb(e))?;
        table
            .insert(time.as_millis(), encode_outbox_record(&entry).as_slice())
            .map_err(|e| self.redb(e))?;
        Ok(())
    }

    /// The outbox table of a read transaction; `None` when the file has none (nothing was
    /// ever queued).
    fn outbox_table(
        &self,
        txn: &ReadTransaction,
    ) -> Result<Option<redb::ReadOnlyTable<u64, &'static [u8]>>, StoreError> {
        match txn.open_table(OUTBOX) {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(err) => Err(self.redb(err)),
        }
    }

    /// Up to `limit` queued sample times, oldest first. A damaged entry is left out (never
    /// pushed on its word) and logged, throttled, as damage `db check` names.
    pub(crate) fn outbox_pending(&self, limit: usize) -> Result<Vec<Timestamp>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.guarded(|| {
            let txn = self.begin_read()?;
            let Some(table) = self.outbox_table(&txn)? else {
                return Ok(Vec::new());
            };
            let mut found = Vec::new();
            for entry in table.iter().map_err(|e| self.redb(e))? {
                let (key, value) = entry.map_err(|e| self.redb(e))?;
                let key = key.value();
                match decode_outbox_record(key, value.value()) {
                    Ok(entry) => found.push(entry.time),
                    Err(cause) => self.outbox_damage(key, &cause),
                }
                if found.len() == limit {
                    break;
                }
            }
            Ok(found)
        })
    }

    fn outbox_damage(&self, key: u64, cause: &DecodeError) {
        if let Some(left_out) = self.outbox_log.admit() {
            tracing::error!(
                db = ?self.path.display(),
                left_out,
                "database damaged ({}: {cause}): it is left out of remote_write; run db check",
                describe(key)
            );
        }
    }

    /// Removes the entries of `times` (those there; others are ignored) in one durable
    /// transaction, and returns how many were there. Nothing is written when none is.
    pub(crate) fn outbox_remove(&self, times: &[Timestamp]) -> Result<u64, StoreError> {
        if times.is_empty() {
            return Ok(0);
        }
        self.guarded(|| {
            {
                let txn = self.begin_read()?;
                let Some(table) = self.outbox_table(&txn)? else {
                    return Ok(0);
                };
                let mut any = false;
                for time in times {
                    if table
                        .get(time.as_millis())
                        .map_err(|e| self.redb(e))?
                        .is_some()
                    {
                        any = true;
                        break;
                    }
                }
                if !any {
                    return Ok(0);
                }
            }
            self.write(|txn| {
                let mut table = txn.open_table(OUTBOX).map_err(|e| self.redb(e))?;
                let mut removed = 0;
                for time in times {
                    if table
                        .remove(time.as_millis())
                        .map_err(|e| self.redb(e))?
                        .is_some()
                    {
                        removed += 1;
                    }
                }
                Ok(removed)
            })
        })
    }

    /// How many entries are queued, and the oldest queued sample's time, without decoding
    /// more than the entries before the first that reads (usually one).
    pub(crate) fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.guarded(|| {
            let txn = self.begin_read()?;
            let Some(table) = self.outbox_table(&txn)? else {
                return Ok(OutboxStats::default());
            };
            let pending = table.len().map_err(|e| self.redb(e))?;
            let mut oldest = None;
            for entry in table.iter().map_err(|e| self.redb(e))? {
                let (key, value) = entry.map_err(|e| self.redb(e))?;
                if let Ok(entry) = decode_outbox_record(key.value(), value.value()) {
                    oldest = Some(entry.time);
                    break;
                }
            }
            Ok(OutboxStats { pending, oldest })
        })
    }

    /// Reads every outbox entry for `db check`: how many there are; each damaged one is a
    /// finding in `structure`.
    pub(super) fn walk_outbox(
        &self,
        txn: &ReadTransaction,
        structure: &mut Vec<String>,
    ) -> Result<u64, StoreError> {
        let Some(table) = self.outbox_table(txn)? else {
            return Ok(0);
        };
        let mut walked = 0;
        for entry in table.iter().map_err(|e| self.redb(e))? {
            let (key, value) = entry.map_err(|e| self.redb(e))?;
            walked += 1;
            if let Err(cause) = decode_outbox_record(key.value(), value.value()) {
                structure.push(format!(
                    "{}: {cause} (that sample is not pushed until the file is restored)",
                    describe(key.value())
                ));
            }
        }
        let counted = table.len().map_err(|e| self.redb(e))?;
        if counted != walked {
            structure.push(format!(
                "its table {} says it holds {counted} entries, but {walked} were found",
                "outbox_v1"
            ));
        }
        Ok(walked)
    }
}

#[cfg(test)]
mod tests;
