//! The redb file that keeps every sample, keyed by start time in milliseconds.

mod codec;
mod dictionary;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use redb::{
    ConcurrencyMode, Database, DatabaseError, Durability, ReadOnlyDatabase, ReadTransaction,
    ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition, TableError,
    WriteTransaction,
};

pub use codec::DecodeError;
use dictionary::Entry;

use crate::sample::Sample;
use crate::time::Timestamp;

/// Samples by start time (ms since the epoch); values in the compact codec.
const SAMPLES: TableDefinition<u64, &[u8]> = TableDefinition::new("samples_v1");
/// Server and ISP records by number, so that samples refer to them in a byte or two.
const DICTIONARY: TableDefinition<u64, &[u8]> = TableDefinition::new("dictionary_v1");
/// The same records, from their bytes to their number, for interning on write.
const DICTIONARY_INDEX: TableDefinition<&[u8], u64> = TableDefinition::new("dictionary_index_v1");

/// redb's page cache. Its default (1 GiB) lets memory grow towards the file's size once old
/// history has been read (an export); the recent weeks every endpoint reads fit in this.
const CACHE_BYTES: usize = 4 << 20;

/// What a file that ends before its own header says it does is.
const TRUNCATED: &str = "the file is shorter than its header says: truncated";

/// The first bytes of every redb file: a non-empty file without them is not ours to open.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Why the store could not do what was asked. Each message names the file and the way out.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database {path} is locked by another process (is internet-monitor already running with this --db?)"
    )]
    Locked { path: PathBuf },
    #[error(
        "{path} is not an internet-monitor database (not a redb file); it was left untouched: pass another --db"
    )]
    NotRedb { path: PathBuf },
    #[error("database {path} was opened read-only and cannot be written")]
    ReadOnly { path: PathBuf },
    #[error("database {path} does not exist: check --db")]
    Missing { path: PathBuf },
    #[error("cannot open database {path}: {cause} (is its directory there and writable? see --db)")]
    Open { path: PathBuf, cause: io::Error },
    #[error(
        "database {path} is damaged ({detail}); it was left as it is: restore it from a backup or an export, or pass another --db"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("database {path}: {cause}")]
    Redb { path: PathBuf, cause: redb::Error },
    #[error(
        "database {path}: a sample keyed {key} ms after 1970 is not before {max}, the end of the times this version handles (an older version wrote it, the file is damaged, or the clock is that far ahead); it is left as it is",
        max = Timestamp::MAX
    )]
    OutOfRange { path: PathBuf, key: u64 },
    #[error("database {path} holds an unreadable sample at {time}: {cause}")]
    Decode {
        path: PathBuf,
        time: Timestamp,
        cause: DecodeError,
    },
}

enum Handle {
    Writer(Database),
    Reader(ReadOnlyDatabase),
    /// A writer closed after an I/O error (a full disk): redb then refuses every write until
    /// the file is reopened, which the next use of the store tries.
    Closed,
}

/// Which end of a time range a scan starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// An open database. Writers are exclusive; read-only handles may follow a writer's commits.
pub struct Store {
    path: PathBuf,
    handle: RwLock<Handle>,
    /// Dictionary entries already read: they never change once written.
    dictionary: RwLock<HashMap<u64, Entry>>,
}

impl Store {
    /// Opens the database for writing, creating it if the file does not exist or is empty.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        refuse_foreign_file(path)?;
        let store = Store::with_handle(path, Handle::Writer(open_writer(path)?));
        // Create the tables in a new file, so readers never meet one without them; an existing
        // file is not written to at start-up (a commit costs an fsync).
        let fresh = store.open_samples(&store.begin_read()?)?.is_none();
        if fresh {
            store.write(|txn| {
                Tables::open(txn).map_err(|e| store.redb(e))?;
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(store)
    }

    /// Opens an existing database without changing it; works while a writer has it open.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing { path: path.into() });
        }
        refuse_foreign_file(path)?;
        let open = || {
            redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .set_concurrency_mode(ConcurrencyMode::SingleWriter)
                .open_read_only(path)
        };
        let db = match open() {
            // The last writer died without closing the file (a crash, kill -9), and a reader
            // may not repair it. No writer holds it now, or this would say "locked": open it
            // for writing once, which repairs it, then read.
            Err(DatabaseError::RepairAborted) => {
                drop(Store::open(path)?);
                open()
            }
            other => other,
        }
        .map_err(|err| open_error(path, err))?;
        Ok(Store::with_handle(path, Handle::Reader(db)))
    }

    fn with_handle(path: &Path, handle: Handle) -> Self {
        Store {
            path: path.into(),
            handle: RwLock::new(handle),
            dictionary: RwLock::new(HashMap::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a new sample durably and returns it as stored: if another sample already has its
    /// millisecond (a clock stepped back), it moves to the next free one. A sample is always
    /// dated before [`Timestamp::MAX`], the end of every range ([`StoreError::OutOfRange`]).
    pub fn append(&self, sample: &Sample) -> Result<Sample, StoreError> {
        self.write(|txn| {
            let mut tables = Tables::open(txn).map_err(|e| self.redb(e))?;
            let mut time = sample.time;
            loop {
                if time >= Timestamp::MAX {
                    return Err(StoreError::OutOfRange {
                        path: self.path.clone(),
                        key: time.as_millis(),
                    });
                }
                let taken = tables.samples.get(time.as_millis());
                if taken.map_err(|e| self.redb(e))?.is_none() {
                    break;
                }
                time = Timestamp::from_millis(time.as_millis().saturating_add(1));
            }
            let stored = Sample {
                time,
                ..sample.clone()
            };
            tables.insert(&stored).map_err(|e| self.redb(e))?;
            Ok(stored)
        })
    }

    /// Stores every sample whose time is not taken yet, in one durable transaction, and returns
    /// how many were new: re-importing the same samples adds nothing. The first `Err` from
    /// `samples` abandons the transaction, so nothing of the batch is stored.
    pub fn import<E: From<StoreError>>(
        &self,
        samples: impl IntoIterator<Item = Result<Sample, E>>,
    ) -> Result<u64, E> {
        self.write(|txn| {
            let mut tables = Tables::open(txn).map_err(|e| self.redb(e))?;
            let mut added = 0;
            for sample in samples {
                let sample = sample?;
                let taken = tables.samples.get(sample.time.as_millis());
                if taken.map_err(|e| self.redb(e))?.is_none() {
                    tables.insert(&sample).map_err(|e| self.redb(e))?;
                    added += 1;
                }
            }
            Ok(added)
        })
    }

    /// Calls `visit` on each sample with `from <= time < to` in `order` until it breaks, reading
    /// only that part of the table. With `to` at [`Timestamp::MAX`] that is every sample: keys
    /// from `MAX` on (see [`Store::unrepresentable`]) are never visited.
    pub fn scan<E: From<StoreError>>(
        &self,
        from: Timestamp,
        to: Timestamp,
        order: Order,
        mut visit: impl FnMut(Sample) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        if from >= to {
            return Ok(());
        }
        let txn = self.begin_read()?;
        let Some(samples) = self.open_samples(&txn)? else {
            return Ok(());
        };
        let range = samples
            .range(from.as_millis()..to.as_millis())
            .map_err(|e| self.redb(e))?;
        let entries: Box<dyn Iterator<Item = _>> = match order {
            Order::OldestFirst => Box::new(range),
            Order::NewestFirst => Box::new(range.rev()),
        };
        for entry in entries {
            let (key, value) = entry.map_err(|e| self.redb(e))?;
            let sample = self.decode(&txn, key.value(), value.value())?;
            if visit(sample)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Calls `visit` on each sample with `from <= time < to`, oldest first.
    pub fn for_each<E: From<StoreError>>(
        &self,
        from: Timestamp,
        to: Timestamp,
        mut visit: impl FnMut(Sample) -> Result<(), E>,
    ) -> Result<(), E> {
        self.scan(from, to, Order::OldestFirst, |sample| {
            visit(sample).map(|()| ControlFlow::Continue(()))
        })
    }

    /// Up to `limit` samples with `from <= time < to`, newest first.
    pub fn newest_first(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<Sample>, StoreError> {
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        self.scan(from, to, Order::NewestFirst, |sample| {
            found.push(sample);
            Ok::<_, StoreError>(if found.len() < limit {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            })
        })?;
        Ok(found)
    }

    /// The samples with `from <= time < to`, oldest first.
    pub fn range(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Sample>, StoreError> {
        let mut found = Vec::new();
        self.for_each(from, to, |sample| {
            found.push(sample);
            Ok::<_, StoreError>(())
        })?;
        Ok(found)
    }

    /// The newest sample, if any.
    pub fn latest(&self) -> Result<Option<Sample>, StoreError> {
        self.latest_at(Timestamp::MAX)
    }

    /// The newest sample at or before `now`: a sample dated later (a wrong clock recorded or
    /// imported it) is kept but is not the latest.
    pub fn latest_at(&self, now: Timestamp) -> Result<Option<Sample>, StoreError> {
        Ok(self
            .newest_first(Timestamp::EPOCH, after(now), 1)?
            .into_iter()
            .next())
    }

    /// The newest successful sample.
    pub fn latest_success(&self) -> Result<Option<Sample>, StoreError> {
        self.latest_success_at(Timestamp::MAX)
    }

    /// The newest successful sample at or before `now`: read backwards from there, so it costs
    /// as many reads as there are failures after the last success (none, usually).
    pub fn latest_success_at(&self, now: Timestamp) -> Result<Option<Sample>, StoreError> {
        let mut found = None;
        self.scan(Timestamp::EPOCH, after(now), Order::NewestFirst, |sample| {
            if !sample.is_success() {
                return Ok::<_, StoreError>(ControlFlow::Continue(()));
            }
            found = Some(sample);
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }

    /// Deletes up to `batch` of the oldest samples from before `cutoff` in one transaction and
    /// returns how many went; retention calls it until fewer than `batch` go, so no single
    /// transaction grows with the backlog.
    pub fn delete_before(&self, cutoff: Timestamp, batch: usize) -> Result<usize, StoreError> {
        self.write(|txn| {
            let mut tables = Tables::open(txn).map_err(|e| self.redb(e))?;
            let mut keys = Vec::with_capacity(batch);
            for entry in tables
                .samples
                .range(..cutoff.as_millis())
                .map_err(|e| self.redb(e))?
            {
                if keys.len() == batch {
                    break;
                }
                keys.push(entry.map_err(|e| self.redb(e))?.0.value());
            }
            for key in &keys {
                tables.samples.remove(key).map_err(|e| self.redb(e))?;
            }
            Ok::<_, StoreError>(keys.len())
        })
    }

    /// The samples dated after `now`, without decoding them: how many, and the newest time.
    pub fn count_after(&self, now: Timestamp) -> Result<(u64, Option<Timestamp>), StoreError> {
        let txn = self.begin_read()?;
        let Some(samples) = self.open_samples(&txn)? else {
            return Ok((0, None));
        };
        let mut count = 0;
        let mut newest = None;
        let range = (
            Bound::Excluded(now.as_millis()),
            Bound::Excluded(Timestamp::MAX.as_millis()),
        );
        for entry in samples.range(range).map_err(|e| self.redb(e))? {
            let key = entry.map_err(|e| self.redb(e))?.0.value();
            count += 1;
            newest = Timestamp::try_from_millis(key);
        }
        Ok((count, newest))
    }

    /// How many samples are keyed at or past [`Timestamp::MAX`]: an older version stored times
    /// up to year 10000 and more. No range reaches them, so they are reported, never shown.
    pub fn unrepresentable(&self) -> Result<u64, StoreError> {
        let txn = self.begin_read()?;
        let Some(samples) = self.open_samples(&txn)? else {
            return Ok(0);
        };
        let mut count = 0;
        for entry in samples
            .range(Timestamp::MAX.as_millis()..)
            .map_err(|e| self.redb(e))?
        {
            entry.map_err(|e| self.redb(e))?;
            count += 1;
        }
        Ok(count)
    }

    /// How many samples are stored, without reading them.
    pub fn len(&self) -> Result<u64, StoreError> {
        let txn = self.begin_read()?;
        match self.open_samples(&txn)? {
            Some(samples) => samples.len().map_err(|e| self.redb(e)),
            None => Ok(0),
        }
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.len().map(|len| len == 0)
    }

    /// Runs `work` in a write transaction and commits it durably; an error abandons it.
    fn write<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&WriteTransaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let handle = self.usable_handle()?;
        let Handle::Writer(db) = &*handle else {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
            }
            .into());
        };
        let mut txn = db.begin_write().map_err(|e| self.after_io(e.into()))?;
        // Immediate is redb's default; said here because "stored" must mean "on disk".
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.redb(e))?;
        let value = work(&txn)?;
        if let Err(err) = txn.commit() {
            drop(handle);
            return Err(self.after_io(err.into()).into());
        }
        Ok(value)
    }

    /// Maps a failed write; after an I/O error also closes the writer, so that the next use
    /// reopens the file and the store recovers once the disk has room again.
    fn after_io(&self, err: redb::Error) -> StoreError {
        if matches!(err, redb::Error::Io(_) | redb::Error::PreviousIo) {
            let mut handle = self.handle.write().unwrap_or_else(PoisonError::into_inner);
            if matches!(*handle, Handle::Writer(_)) {
                *handle = Handle::Closed;
            }
        }
        self.redb(err)
    }

    /// The handle, reopening a writer that an I/O error closed.
    fn usable_handle(&self) -> Result<RwLockReadGuard<'_, Handle>, StoreError> {
        {
            let handle = self.handle.read().unwrap_or_else(PoisonError::into_inner);
            if !matches!(*handle, Handle::Closed) {
                return Ok(handle);
            }
        }
        {
            let mut handle = self.handle.write().unwrap_or_else(PoisonError::into_inner);
            if matches!(*handle, Handle::Closed) {
                *handle = Handle::Writer(open_writer(&self.path)?);
                tracing::info!(db = %self.path.display(), "database reopened after an I/O error");
            }
        }
        Ok(self.handle.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        let handle = self.usable_handle()?;
        let txn = match &*handle {
            Handle::Writer(db) => db.begin_read(),
            Handle::Reader(db) => db.begin_read(),
            Handle::Closed => {
                return Err(StoreError::Open {
                    path: self.path.clone(),
                    cause: io::Error::other("closed after an I/O error"),
                });
            }
        };
        txn.map_err(|e| self.redb(e))
    }

    fn open_samples(
        &self,
        txn: &ReadTransaction,
    ) -> Result<Option<redb::ReadOnlyTable<u64, &'static [u8]>>, StoreError> {
        match txn.open_table(SAMPLES) {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(err) => Err(self.redb(err)),
        }
    }

    fn decode(
        &self,
        txn: &ReadTransaction,
        millis: u64,
        bytes: &[u8],
    ) -> Result<Sample, StoreError> {
        let time = Timestamp::try_from_millis(millis)
            .filter(|time| *time < Timestamp::MAX)
            .ok_or_else(|| StoreError::OutOfRange {
                path: self.path.clone(),
                key: millis,
            })?;
        let broken = |cause| StoreError::Decode {
            path: self.path.clone(),
            time,
            cause,
        };
        let decoded = codec::decode(time, bytes).map_err(broken)?;
        let mut sample = decoded.sample;
        if let Some(id) = decoded.refs.server {
            sample.server = Some(self.resolve(txn, id, time)?.server().map_err(broken)?);
        }
        if let Some(id) = decoded.refs.isp {
            sample.isp = Some(self.resolve(txn, id, time)?.isp().map_err(broken)?);
        }
        Ok(sample)
    }

    fn resolve(
        &self,
        txn: &ReadTransaction,
        id: u64,
        time: Timestamp,
    ) -> Result<Entry, StoreError> {
        if let Some(entry) = self.cached(id) {
            return Ok(entry);
        }
        let missing = || StoreError::Decode {
            path: self.path.clone(),
            time,
            cause: DecodeError::MissingDictionaryEntry(id),
        };
        let table = txn.open_table(DICTIONARY).map_err(|_| missing())?;
        let bytes = table
            .get(id)
            .map_err(|e| self.redb(e))?
            .ok_or_else(missing)?;
        let entry = Entry::decode(bytes.value()).map_err(|cause| StoreError::Decode {
            path: self.path.clone(),
            time,
            cause,
        })?;
        if let Ok(mut cache) = self.dictionary.write() {
            cache.insert(id, entry.clone());
        }
        Ok(entry)
    }

    fn cached(&self, id: u64) -> Option<Entry> {
        self.dictionary.read().ok()?.get(&id).cloned()
    }

    fn redb(&self, err: impl Into<redb::Error>) -> StoreError {
        match err.into() {
            redb::Error::Corrupted(detail) => StoreError::Corrupt {
                path: self.path.clone(),
                detail,
            },
            redb::Error::Io(cause) if cause.kind() == io::ErrorKind::UnexpectedEof => {
                StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: TRUNCATED.into(),
                }
            }
            cause => StoreError::Redb {
                path: self.path.clone(),
                cause,
            },
        }
    }
}

/// The exclusive end of a range that includes `now` itself.
fn after(now: Timestamp) -> Timestamp {
    now.checked_add(std::time::Duration::from_millis(1))
        .unwrap_or(Timestamp::MAX)
}

/// The tables a write transaction changes, opened once for all its samples.
struct Tables<'txn> {
    samples: Table<'txn, u64, &'static [u8]>,
    dictionary: Table<'txn, u64, &'static [u8]>,
    index: Table<'txn, &'static [u8], u64>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, redb::Error> {
        Ok(Tables {
            samples: txn.open_table(SAMPLES)?,
            dictionary: txn.open_table(DICTIONARY)?,
            index: txn.open_table(DICTIONARY_INDEX)?,
        })
    }

    fn insert(&mut self, sample: &Sample) -> Result<(), redb::Error> {
        let refs = dictionary::intern(&mut self.dictionary, &mut self.index, sample)?;
        let value = codec::encode(sample, refs);
        self.samples
            .insert(sample.time.as_millis(), value.as_slice())?;
        Ok(())
    }
}

/// Opens (or creates) the file for writing; readers in other processes may follow along.
fn open_writer(path: &Path) -> Result<Database, StoreError> {
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .set_concurrency_mode(ConcurrencyMode::SingleWriter)
        .create(path)
        .map_err(|err| open_error(path, err))
}

/// Refuses a non-empty file that does not start like a redb file, before redb can touch it.
fn refuse_foreign_file(path: &Path) -> Result<(), StoreError> {
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    match File::open(path) {
        Ok(file) => {
            if let Err(cause) = file.take(REDB_MAGIC.len() as u64).read_to_end(&mut head) {
                return Err(StoreError::Open {
                    path: path.into(),
                    cause,
                });
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(cause) => {
            return Err(StoreError::Open {
                path: path.into(),
                cause,
            });
        }
    }
    if head.is_empty() || head == REDB_MAGIC {
        Ok(())
    } else {
        Err(StoreError::NotRedb { path: path.into() })
    }
}

fn open_error(path: &Path, err: DatabaseError) -> StoreError {
    let path = path.to_path_buf();
    match err {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::Locked { path }
        }
        DatabaseError::Storage(redb::StorageError::Io(cause))
            if cause.kind() == io::ErrorKind::UnexpectedEof =>
        {
            StoreError::Corrupt {
                path,
                detail: TRUNCATED.into(),
            }
        }
        DatabaseError::Storage(redb::StorageError::Io(cause)) => StoreError::Open { path, cause },
        DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            StoreError::Corrupt { path, detail }
        }
        other => StoreError::Redb {
            path,
            cause: other.into(),
        },
    }
}

#[cfg(test)]
mod tests;
