//! The redb file that keeps every sample, keyed by start time in milliseconds.

mod campaigns;
mod check;
mod codec;
mod dictionary;
mod guard;
mod keyed;
mod outbox;
mod plans;
pub mod probes;
mod undo;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use redb::backends::FileBackend;
use redb::{
    ConcurrencyMode, Database, DatabaseError, Durability, ReadOnlyDatabase, ReadTransaction,
    ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition, TableError,
    TableHandle, WriteTransaction,
};

/// The campaign record's codec, with its checksum and bounds ([`DecodeError`] otherwise): for
/// the fuzz target `campaign_record`.
pub use campaigns::{decode as decode_campaign_record, encode as encode_campaign_record};
pub(crate) use check::CheckReport;
pub use codec::DecodeError;
use codec::Link;
use dictionary::Entry;
pub(crate) use outbox::OutboxStats;
pub(crate) use plans::PlanStored;
/// A plan version's record as stored at key `from` in ms, and back, checked against its
/// checksum and bounds ([`DecodeError`] otherwise): for the fuzz target `plan_record`.
pub use plans::{decode as decode_plan_record, encode as encode_plan_record};

use crate::sample::{Outcome, Sample};
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

/// Log lines a minute about damaged remote_write outbox entries.
const OUTBOX_LOG_PER_MINUTE: u32 = 1;

/// What a file that ends before its own header says it does is.
const TRUNCATED: &str = "the file is shorter than its header says: truncated";

/// The first bytes of every redb file: a non-empty file without them is not ours to open.
pub(crate) const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// The first bytes of an SQLite 3 database, such as the original Python app's
/// `internet-monitor.db`, which `import --from-original` reads.
pub(crate) const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Why the store could not do what was asked. Each message names the file and the way out.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database {path} is locked: another internet-monitor process has it open (serve, or a \
         run-once, import, db or plan set with this --db): stop it, or wait for it to end, and \
         run this again (export, report and plan show read the database meanwhile)"
    )]
    Locked { path: PathBuf },
    /// `db compact` found another process reading the file; nothing was written to it.
    #[error(
        "database {path} is in use by another internet-monitor process (export, report, serve…): stop it and run again; the file was left as it was"
    )]
    InUse { path: PathBuf },
    #[error(
        "{path} is not an internet-monitor database (not a redb file); it was left untouched: pass another --db"
    )]
    NotRedb { path: PathBuf },
    #[error(
        "{path} is an SQLite database, not an internet-monitor one (the original Python app's \
         internet-monitor.db?); it was left untouched: bring its history over with \
         `internet-monitor import --from-original {} --timezone ZONE` (into the default \
         internet-monitor.redb, or another --db)",
        shell_word(path)
    )]
    Sqlite { path: PathBuf },
    #[error(
        "{path} is not a regular file (a FIFO, a directory or a device); it was left untouched: pass the path of a database file, or of one to create, as --db"
    )]
    NotAFile { path: PathBuf },
    #[error(
        "database {path} is empty: there is no database to check or compact in it; it was left as it is (run-once, import or serve creates one in it)"
    )]
    Empty { path: PathBuf },
    #[error("database {path} was opened read-only and cannot be written")]
    ReadOnly { path: PathBuf },
    #[error("database {path} does not exist: check --db")]
    Missing { path: PathBuf },
    #[error("cannot open database {path}: {cause} (is its directory there and writable? see --db)")]
    Open {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },
    #[error(
        "database {path} is damaged ({detail}); it was left as it is: restore it from a backup or an export, or pass another --db"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("database {path}: {cause}")]
    Redb {
        path: PathBuf,
        #[source]
        cause: redb::Error,
    },
    #[error(
        "database {path} was deleted or moved away while in use: samples stored since then are only in the file this process has open, and are lost when it stops; put the file back, or restart to create a new one"
    )]
    Gone { path: PathBuf },
    #[error(
        "database {path} was replaced by another file while in use: this process still stores samples in the file it opened, which is no longer at that path; restart to use the new file"
    )]
    Replaced { path: PathBuf },
    #[error(
        "database {path}: a sample keyed {key} ms after 1970 is not before {max}, the end of the times this version handles (an older version wrote it, the file is damaged, or the clock is that far ahead); it is left as it is",
        max = Timestamp::MAX
    )]
    OutOfRange { path: PathBuf, key: u64 },
    #[error(
        "database {path} is damaged (the sample at {}: {cause}); it was left as it is: restore it from a backup or an export, or pass another --db",
        sample_time(*.time)
    )]
    Decode {
        path: PathBuf,
        time: Timestamp,
        #[source]
        cause: DecodeError,
    },
    #[error(
        "database {path} is damaged (the plan version from {time}: {cause}); it was not used: run db check, then plan set --replace --from {time} with the contract's values, or restore the file from a backup"
    )]
    PlanDecode {
        path: PathBuf,
        time: String,
        #[source]
        cause: DecodeError,
    },
    #[error(
        "database {path} already has a plan version from {time}: pass --replace to replace it, or another --from"
    )]
    PlanExists { path: PathBuf, time: Timestamp },
    #[error(
        "database {path} would hold more than {max} plan versions, the most kept (so /api/v1/plan stays bounded): replace one with plan set --replace --from ITS-TIME, or keep the contract in a new --db"
    )]
    PlanLimit { path: PathBuf, max: u64 },
    #[error(
        "database {path} is damaged (the campaign record from {time}: {cause}); it was not used: run db check, or restore the file from a backup"
    )]
    CampaignDecode {
        path: PathBuf,
        time: String,
        #[source]
        cause: DecodeError,
    },
    #[error(
        "database {path} already holds {max} campaigns, the most kept: keep new campaigns in a new --db"
    )]
    CampaignLimit { path: PathBuf, max: u64 },
    #[error(
        "database {path} is damaged ({record}: {cause}); it was not used: run db check, or restore the file from a backup"
    )]
    ProbeDecode {
        path: PathBuf,
        record: String,
        #[source]
        cause: DecodeError,
    },
    #[error(
        "database {path} already holds {max} probe targets, the most kept: probe fewer distinct targets, or keep the monitor's data in a new --db"
    )]
    ProbeLimit { path: PathBuf, max: u64 },
    #[error("database {path}: refused to store probe data that breaks its bounds ({detail})")]
    ProbeInvalid { path: PathBuf, detail: String },
}

impl StoreError {
    /// The same error naming `path`: what was found in a private copy is said of the file.
    fn at(self, path: &Path) -> Self {
        use StoreError::*;
        let path = path.to_path_buf();
        match self {
            Locked { .. } => Locked { path },
            InUse { .. } => InUse { path },
            NotRedb { .. } => NotRedb { path },
            Sqlite { .. } => Sqlite { path },
            NotAFile { .. } => NotAFile { path },
            Empty { .. } => Empty { path },
            ReadOnly { .. } => ReadOnly { path },
            Missing { .. } => Missing { path },
            Open { cause, .. } => Open { path, cause },
            Corrupt { detail, .. } => Corrupt { path, detail },
            Redb { cause, .. } => Redb { path, cause },
            Gone { .. } => Gone { path },
            Replaced { .. } => Replaced { path },
            OutOfRange { key, .. } => OutOfRange { path, key },
            Decode { time, cause, .. } => Decode { path, time, cause },
            PlanDecode { time, cause, .. } => PlanDecode { path, time, cause },
            PlanExists { time, .. } => PlanExists { path, time },
            PlanLimit { max, .. } => PlanLimit { path, max },
            CampaignDecode { time, cause, .. } => CampaignDecode { path, time, cause },
            CampaignLimit { max, .. } => CampaignLimit { path, max },
            ProbeDecode { record, cause, .. } => ProbeDecode {
                path,
                record,
                cause,
            },
            ProbeLimit { max, .. } => ProbeLimit { path, max },
            ProbeInvalid { detail, .. } => ProbeInvalid { path, detail },
        }
    }
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
pub(crate) enum Order {
    OldestFirst,
    NewestFirst,
}

/// A dictionary entry and its stored bytes, which the checksums of samples cover.
type Resolved = (Entry, Arc<[u8]>);

/// Which file a path named: device and inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    device: u64,
    inode: u64,
}

impl FileId {
    /// The file at `path` now; `None` when there is none.
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|meta| FileId {
            device: meta.dev(),
            inode: meta.ino(),
        })
    }
}

/// What the last [`Store::check_file`] found, so that each change is logged once.
const FILE_IN_PLACE: u8 = 0;
const FILE_GONE: u8 = 1;
const FILE_REPLACED: u8 = 2;

/// What [`Store::import_noting`] did with the samples of one import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Samples stored.
    pub added: u64,
    /// Samples left out: a sample at their time (to the millisecond) was stored before.
    pub already_stored: u64,
    /// Samples left out: an earlier sample of the same import has their time (to the
    /// millisecond), and was kept.
    pub repeated: u64,
}

/// An open database. Writers are exclusive; read-only handles may follow a writer's commits.
pub struct Store {
    path: PathBuf,
    handle: RwLock<Handle>,
    /// The file opened, as found at `path` right after opening it.
    opened: RwLock<Option<FileId>>,
    /// What the last check of the path found (`FILE_*`).
    file_state: AtomicU8,
    /// Dictionary entries already read, with their stored bytes: they never change once
    /// written (a changed one fails the checksum of every version 2 or 3 sample referring to it).
    dictionary: RwLock<HashMap<u64, Resolved>>,
    /// Whether [`Store::append`] queues samples in the remote_write outbox.
    outbox: AtomicBool,
    /// Lines about damaged outbox entries (met on every push).
    outbox_log: crate::logging::Throttle,
}

impl Store {
    /// Opens the database for writing, creating it if the file does not exist or is empty.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        refuse_foreign_file(path)?;
        guard::engine(|| Store::open_writable(path)).unwrap_or_else(|said| Err(stopped(path, said)))
    }

    /// Opens the file for writing. Until the open is complete (the tables found, or created
    /// in a new file), whatever redb wrote to the file is put back if it fails: a repair of a
    /// file a writer died on that leads to damage leaves it as it was, as the error says.
    fn open_writable(path: &Path) -> Result<Self, StoreError> {
        let repairing = needs_repair(path);
        let (db, undo) = open_writer_undoable(path)?;
        let store = Store::with_handle(path, Handle::Writer(db));
        // Create the tables in a new file, so readers never meet one without them; an existing
        // file is not written to at start-up (a commit costs an fsync).
        let fresh = store.open_samples(&store.begin_read()?)?.is_none();
        if fresh {
            store.write(|txn| {
                Tables::open(txn).map_err(|e| store.redb(e))?;
                Ok::<_, StoreError>(())
            })?;
        }
        // redb repaired a file a writer died on: keep the repair only if every sample then
        // reads, or a damaged file would be changed while the error says it was left as it is.
        if repairing {
            store.for_each(
                Timestamp::EPOCH,
                Timestamp::MAX,
                |_| Ok::<_, StoreError>(()),
            )?;
        }
        // An early return (or a panic) drops `store` armed: closing it puts the bytes back.
        undo.disarm();
        Ok(store)
    }

    /// Opens an existing database without changing it; works while a writer has it open.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing { path: path.into() });
        }
        refuse_foreign_file(path)?;
        guard::engine(|| Store::open_reader(path)).unwrap_or_else(|said| Err(stopped(path, said)))
    }

    fn open_reader(path: &Path) -> Result<Self, StoreError> {
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
            opened: RwLock::new(FileId::of(path)),
            file_state: AtomicU8::new(FILE_IN_PLACE),
            dictionary: RwLock::new(HashMap::new()),
            outbox: AtomicBool::new(false),
            outbox_log: crate::logging::Throttle::new(OUTBOX_LOG_PER_MINUTE),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a new sample durably and returns it as stored: if another sample already has its
    /// millisecond (a clock stepped back), it moves to the next free one. A sample is always
    /// dated before [`Timestamp::MAX`], the end of every range ([`StoreError::OutOfRange`]).
    pub fn append(&self, sample: &Sample) -> Result<Sample, StoreError> {
        self.guarded(|| self.append_unguarded(sample))
    }

    fn append_unguarded(&self, sample: &Sample) -> Result<Sample, StoreError> {
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
            tables.insert(self, &stored)?;
            if self.outbox_on() {
                self.queue(txn, stored.time)?;
            }
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
        self.import_noting(samples, |_| {})
            .map(|imported| imported.added)
    }

    /// [`Store::import`], telling apart the samples it leaves out: those whose time (to the
    /// millisecond, the key) was stored before this import, and those whose time an earlier
    /// sample of `samples` took (`repeated` is called with each of these as soon as it is met,
    /// so a caller can name where it came from).
    pub fn import_noting<E: From<StoreError>>(
        &self,
        samples: impl IntoIterator<Item = Result<Sample, E>>,
        mut repeated: impl FnMut(&Sample),
    ) -> Result<Imported, E> {
        let mut samples = samples.into_iter();
        self.guarded(|| {
            // The store as it was before this import: a time taken now but not then was taken
            // by an earlier sample of this batch.
            let before = self.begin_read()?;
            let before = self.open_samples(&before)?;
            self.write(|txn| {
                let mut tables = Tables::open(txn).map_err(|e| self.redb(e))?;
                let mut imported = Imported::default();
                while let Some(sample) = guard::caller(|| samples.next()) {
                    let sample = sample?;
                    let key = sample.time.as_millis();
                    let taken = tables.samples.get(key);
                    if taken.map_err(|e| self.redb(e))?.is_none() {
                        tables.insert(self, &sample)?;
                        imported.added += 1;
                        continue;
                    }
                    let stored_before = match &before {
                        Some(table) => table.get(key).map_err(|e| self.redb(e))?.is_some(),
                        None => false,
                    };
                    if stored_before {
                        imported.already_stored += 1;
                    } else {
                        imported.repeated += 1;
                        guard::caller(|| repeated(&sample));
                    }
                }
                Ok(imported)
            })
        })
    }

    /// Calls `visit` on each sample with `from <= time < to` in `order` until it breaks, reading
    /// only that part of the table. With `to` at [`Timestamp::MAX`] that is every sample: keys
    /// from `MAX` on (see [`Store::unrepresentable`]) are never visited.
    pub(crate) fn scan<E: From<StoreError>>(
        &self,
        from: Timestamp,
        to: Timestamp,
        order: Order,
        mut visit: impl FnMut(Sample) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        if from >= to {
            return Ok(());
        }
        self.guarded(|| self.scan_unguarded(from, to, order, &mut visit))
    }

    fn scan_unguarded<E: From<StoreError>>(
        &self,
        from: Timestamp,
        to: Timestamp,
        order: Order,
        visit: &mut impl FnMut(Sample) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
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
        // Each record names the sample before it: consecutive samples must agree, and so must
        // the ends of the range, or the file's index skipped some (a damaged branch page).
        let from = from.as_millis();
        let end = |newest| self.check_end(&txn, &samples, from, to.as_millis(), newest);
        let mut last: Option<(u64, Link)> = None;
        for entry in entries {
            let (key, value) = entry.map_err(|e| self.redb(e))?;
            let key = key.value();
            let (sample, link) = self.decode(&txn, key, value.value())?;
            match (order, last) {
                (Order::OldestFirst, None) => self.linked_first(from, key, link)?,
                (Order::OldestFirst, Some((earlier, _))) => self.linked(earlier, key, link)?,
                (Order::NewestFirst, None) => end(Some(key))?,
                (Order::NewestFirst, Some((later, later_link))) => {
                    self.linked(key, later, later_link)?;
                }
            }
            last = Some((key, link));
            if guard::caller(|| visit(sample))?.is_break() {
                return Ok(());
            }
        }
        match (order, last) {
            (Order::OldestFirst, last) => end(last.map(|(key, _)| key))?,
            (Order::NewestFirst, Some((earliest, link))) => {
                self.linked_first(from, earliest, link)?;
            }
            (Order::NewestFirst, None) => end(None)?,
        }
        Ok(())
    }

    /// Checks the end of a range `from..to` whose newest sample was `newest`: the first sample
    /// at or after `to` must follow it, or when there is none, it must be the table's last
    /// (among keys before [`Timestamp::MAX`]: keys past it are an older version's, never read).
    fn check_end(
        &self,
        txn: &ReadTransaction,
        samples: &redb::ReadOnlyTable<u64, &'static [u8]>,
        from: u64,
        to: u64,
        newest: Option<u64>,
    ) -> Result<(), StoreError> {
        let max = Timestamp::MAX.as_millis();
        let next = samples
            .range(to.min(max)..max)
            .map_err(|e| self.redb(e))?
            .next();
        if let Some(entry) = next {
            let (key, value) = entry.map_err(|e| self.redb(e))?;
            let (_, link) = self.decode(txn, key.value(), value.value())?;
            return match newest {
                Some(newest) => self.linked(newest, key.value(), link),
                None => self.linked_first(from, key.value(), link),
            };
        }
        let last = samples.range(..max).map_err(|e| self.redb(e))?.next_back();
        let Some((last, _)) = last.transpose().map_err(|e| self.redb(e))? else {
            return Ok(());
        };
        let last = last.value();
        if newest.map_or(last < from, |newest| newest == last) {
            Ok(())
        } else {
            Err(self.corrupt(format!(
                "its index does not lead to its newest sample, at {}",
                key_time(last)
            )))
        }
    }

    /// Checks that the sample at `later`, whose record says `link`, directly follows the one
    /// at `earlier`.
    fn linked(&self, earlier: u64, later: u64, link: Link) -> Result<(), StoreError> {
        match link {
            Link::Unknown => Ok(()),
            Link::After(previous) if previous == earlier => Ok(()),
            Link::After(previous) if previous > earlier => Err(self.skipped(previous, later)),
            _ => Err(self.corrupt(format!(
                "the sample at {} does not name the sample at {} as the one before it",
                key_time(later),
                key_time(earlier)
            ))),
        }
    }

    /// Checks that no sample at or after `from` comes before the sample at `key`, the first
    /// the index gave from there.
    fn linked_first(&self, from: u64, key: u64, link: Link) -> Result<(), StoreError> {
        match link {
            Link::After(previous) if previous >= from => Err(self.skipped(previous, key)),
            _ => Ok(()),
        }
    }

    fn skipped(&self, missing: u64, follower: u64) -> StoreError {
        self.corrupt(format!(
            "its index skips the sample at {}, which the sample at {} follows",
            key_time(missing),
            key_time(follower)
        ))
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        }
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
    pub(crate) fn newest_first(
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
    pub(crate) fn latest_at(&self, now: Timestamp) -> Result<Option<Sample>, StoreError> {
        Ok(self
            .newest_first(Timestamp::EPOCH, after(now), 1)?
            .into_iter()
            .next())
    }

    /// The newest run at or before `now`: the newest sample that is not a skipped one (a
    /// skipped run measured nothing, so it is not the last run). Reads back past the skipped
    /// samples after it (a month's worth at most, while a data budget is used up).
    pub(crate) fn latest_run_at(&self, now: Timestamp) -> Result<Option<Sample>, StoreError> {
        let mut found = None;
        self.scan(Timestamp::EPOCH, after(now), Order::NewestFirst, |sample| {
            if sample.outcome == Outcome::Skipped {
                return Ok::<_, StoreError>(ControlFlow::Continue(()));
            }
            found = Some(sample);
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }

    /// The newest successful sample.
    pub(crate) fn latest_success(&self) -> Result<Option<Sample>, StoreError> {
        self.latest_success_at(Timestamp::MAX)
    }

    /// The newest successful sample at or before `now`: read backwards from there, so it costs
    /// as many reads as there are failures after the last success (none, usually).
    pub(crate) fn latest_success_at(&self, now: Timestamp) -> Result<Option<Sample>, StoreError> {
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
    /// transaction grows with the backlog. Their remote_write outbox entries stay: the pusher
    /// finds no sample there and counts them as expired (see `outbox.rs`).
    pub(crate) fn delete_before(
        &self,
        cutoff: Timestamp,
        batch: usize,
    ) -> Result<usize, StoreError> {
        self.guarded(|| self.delete_before_unguarded(cutoff, batch))
    }

    fn delete_before_unguarded(
        &self,
        cutoff: Timestamp,
        batch: usize,
    ) -> Result<usize, StoreError> {
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
            // The new oldest sample has none before it now.
            if !keys.is_empty() {
                let first = tables.samples.first().map_err(|e| self.redb(e))?;
                if let Some((key, value)) = first.map(|(k, v)| (k.value(), v.value().to_vec())) {
                    tables.relink(self, key, &value, None)?;
                }
            }
            Ok::<_, StoreError>(keys.len())
        })
    }

    /// Calls `visit` with the time of each sample dated before `to`, newest first, until it
    /// breaks, reading only the keys: no sample is decoded (nor checked), so retention can walk
    /// a long history every hour cheaply.
    pub(crate) fn times_newest_first(
        &self,
        to: Timestamp,
        mut visit: impl FnMut(Timestamp) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        self.guarded(|| {
            let txn = self.begin_read()?;
            let Some(samples) = self.open_samples(&txn)? else {
                return Ok(());
            };
            let to = to.min(Timestamp::MAX).as_millis();
            for entry in samples.range(..to).map_err(|e| self.redb(e))?.rev() {
                let key = entry.map_err(|e| self.redb(e))?.0.value();
                if guard::caller(|| visit(Timestamp::from_millis(key))).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }

    /// The samples dated after `now`, without decoding them: how many, and the newest time.
    pub(crate) fn count_after(
        &self,
        now: Timestamp,
    ) -> Result<(u64, Option<Timestamp>), StoreError> {
        self.guarded(|| self.count_after_unguarded(now))
    }

    fn count_after_unguarded(
        &self,
        now: Timestamp,
    ) -> Result<(u64, Option<Timestamp>), StoreError> {
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
    pub(crate) fn unrepresentable(&self) -> Result<u64, StoreError> {
        self.guarded(|| self.unrepresentable_unguarded())
    }

    fn unrepresentable_unguarded(&self) -> Result<u64, StoreError> {
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
        self.guarded(|| {
            let txn = self.begin_read()?;
            match self.open_samples(&txn)? {
                Some(samples) => samples.len().map_err(|e| self.redb(e)),
                None => Ok(0),
            }
        })
    }

    /// Whether the store holds no sample.
    ///
    /// # Errors
    /// As [`Store::len`].
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.len().map(|len| len == 0)
    }

    /// Whether the file at the path is still the file this store has open (same device and
    /// inode as right after opening): `Gone` when it was deleted or moved away, `Replaced` when
    /// another file took its place. Each change is logged once, as an error when the file
    /// leaves and as a notice when it is back.
    pub(crate) fn check_file(&self) -> Result<(), StoreError> {
        let opened = *self.opened.read().unwrap_or_else(PoisonError::into_inner);
        let now = FileId::of(&self.path);
        let (state, result) = match now {
            _ if now == opened => (FILE_IN_PLACE, Ok(())),
            None => (
                FILE_GONE,
                Err(StoreError::Gone {
                    path: self.path.clone(),
                }),
            ),
            Some(_) => (
                FILE_REPLACED,
                Err(StoreError::Replaced {
                    path: self.path.clone(),
                }),
            ),
        };
        if self.file_state.swap(state, Ordering::AcqRel) != state {
            match &result {
                Err(err) => tracing::error!(
                    db = ?self.path.display(),
                    %err,
                    "the database file at --db is no longer the file this service has open"
                ),
                Ok(()) => tracing::info!(
                    db = ?self.path.display(),
                    "the database file at --db is again the file this service has open"
                ),
            }
        }
        result
    }

    /// Runs `work`, which calls into redb, turning a panic of redb into a "damaged" error. A
    /// writer is closed after one (the next use reopens the file), as its state is unknown.
    fn guarded<T, E: From<StoreError>>(&self, work: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        match guard::engine(work) {
            Ok(result) => result,
            Err(said) => {
                tracing::debug!(db = ?self.path.display(), %said, "the storage engine panicked");
                let mut handle = self.handle.write().unwrap_or_else(PoisonError::into_inner);
                if matches!(*handle, Handle::Writer(_)) {
                    let old = std::mem::replace(&mut *handle, Handle::Closed);
                    // Closing may meet the damage again; that is already being reported.
                    let _ = guard::engine(move || drop(old));
                }
                Err(stopped(&self.path, said).into())
            }
        }
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
                *self.opened.write().unwrap_or_else(PoisonError::into_inner) =
                    FileId::of(&self.path);
                tracing::info!(db = ?self.path.display(), "database reopened after an I/O error");
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
            Err(TableError::TableDoesNotExist(_)) => {
                // The tables are created together: others without this one is damage, not an
                // empty store.
                let mut tables = txn.list_tables().map_err(|e| self.redb(e))?;
                match tables.next() {
                    None => Ok(None),
                    Some(other) => Err(self.corrupt(format!(
                        "it has the table {} but not {}",
                        other.name(),
                        SAMPLES.name()
                    ))),
                }
            }
            Err(err) => Err(self.redb(err)),
        }
    }

    /// The sample stored at `millis` as `bytes`, checked against its checksum, and where its
    /// record says the sample before it lies.
    fn decode(
        &self,
        txn: &ReadTransaction,
        millis: u64,
        bytes: &[u8],
    ) -> Result<(Sample, Link), StoreError> {
        let Some(time) = Timestamp::try_from_millis(millis).filter(|time| *time < Timestamp::MAX)
        else {
            // This version never writes such a key: a record in its own format there is damage
            // (a changed key), where an older version's record is only out of range.
            if matches!(
                bytes.first(),
                Some(&(codec::VERSION | codec::VERSION_CAMPAIGN))
            ) {
                return Err(self.corrupt(format!(
                    "a sample is keyed {millis} ms after 1970, a time this version never writes: its key was changed"
                )));
            }
            return Err(StoreError::OutOfRange {
                path: self.path.clone(),
                key: millis,
            });
        };
        let broken = |cause| StoreError::Decode {
            path: self.path.clone(),
            time,
            cause,
        };
        let decoded = codec::decode(time, bytes).map_err(broken)?;
        let resolve = |id: Option<u64>| id.map(|id| self.resolve(txn, id, time)).transpose();
        let server = resolve(decoded.refs.server)?;
        let isp = resolve(decoded.refs.isp)?;
        let engine = resolve(decoded.refs.engine)?;
        if let Some((record, stored)) = decoded.seal {
            let entries = server
                .iter()
                .chain(isp.iter())
                .chain(engine.iter())
                .map(|(_, raw)| &raw[..]);
            if codec::checksum(millis, record, entries) != stored {
                return Err(broken(DecodeError::Checksum));
            }
        }
        let mut sample = decoded.sample;
        if let Some((entry, _)) = server {
            sample.server = Some(entry.server().map_err(broken)?);
        }
        if let Some((entry, _)) = isp {
            sample.isp = Some(entry.isp().map_err(broken)?);
        }
        if let Some((entry, _)) = engine {
            sample.engine = Some(entry.engine().map_err(broken)?);
        }
        Ok((sample, decoded.link))
    }

    fn resolve(
        &self,
        txn: &ReadTransaction,
        id: u64,
        time: Timestamp,
    ) -> Result<Resolved, StoreError> {
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
        let raw: Arc<[u8]> = Arc::from(bytes.value());
        let entry = Entry::decode(&raw).map_err(|cause| StoreError::Decode {
            path: self.path.clone(),
            time,
            cause,
        })?;
        if let Ok(mut cache) = self.dictionary.write() {
            cache.insert(id, (entry.clone(), raw.clone()));
        }
        Ok((entry, raw))
    }

    fn cached(&self, id: u64) -> Option<Resolved> {
        self.dictionary.read().ok()?.get(&id).cloned()
    }

    fn redb(&self, err: impl Into<redb::Error>) -> StoreError {
        match err.into() {
            redb::Error::Corrupted(detail) => StoreError::Corrupt {
                path: self.path.clone(),
                detail,
            },
            // This program creates its tables with these types and never changes them: a file
            // that says otherwise was changed by something else.
            damaged @ (redb::Error::TableTypeMismatch { .. }
            | redb::Error::TableIsMultimap(_)
            | redb::Error::TableIsNotMultimap(_)
            | redb::Error::TypeDefinitionChanged { .. }
            | redb::Error::UpgradeRequired(_)) => StoreError::Corrupt {
                path: self.path.clone(),
                detail: damaged.to_string(),
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

impl Drop for Store {
    /// Closes the file; redb's own close reads the file too, so it is guarded like every use.
    fn drop(&mut self) {
        let handle = std::mem::replace(
            self.handle
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
            Handle::Closed,
        );
        if let Err(said) = guard::engine(move || drop(handle)) {
            tracing::error!(db = ?self.path.display(), %said, "closing the database failed");
        }
    }
}

/// The error that replaces a panic of the storage engine on this file.
fn stopped(path: &Path, said: String) -> StoreError {
    StoreError::Corrupt {
        path: path.into(),
        detail: format!("the storage engine stopped on it: {said}"),
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

    /// Stores `sample` at its time, linked to the sample before it; the sample after it, if
    /// any, is relinked to it.
    fn insert(&mut self, store: &Store, sample: &Sample) -> Result<(), StoreError> {
        let redb = |err: redb::StorageError| store.redb(err);
        let key = sample.time.as_millis();
        let previous = match self.samples.range(..key).map_err(redb)?.next_back() {
            Some(entry) => Some(entry.map_err(redb)?.0.value()),
            None => None,
        };
        let interned = dictionary::intern(&mut self.dictionary, &mut self.index, sample)
            .map_err(|e| store.redb(e))?;
        let entries: Vec<&[u8]> = interned.entries.iter().map(Vec::as_slice).collect();
        let value = codec::encode(sample, previous, interned.refs, &entries);
        self.samples.insert(key, value.as_slice()).map_err(redb)?;
        let next = match self
            .samples
            .range(key.saturating_add(1)..)
            .map_err(redb)?
            .next()
        {
            Some(entry) => {
                let (next, bytes) = entry.map_err(redb)?;
                Some((next.value(), bytes.value().to_vec()))
            }
            None => None,
        };
        if let Some((next, bytes)) = next {
            self.relink(store, next, &bytes, Some(key))?;
        }
        Ok(())
    }

    /// Rewrites the record `bytes` of the sample at `key` to follow `previous`, after checking
    /// it: damage is reported, never sealed in.
    fn relink(
        &mut self,
        store: &Store,
        key: u64,
        bytes: &[u8],
        previous: Option<u64>,
    ) -> Result<(), StoreError> {
        let time = Timestamp::from_millis(key);
        let broken = |cause| StoreError::Decode {
            path: store.path.clone(),
            time,
            cause,
        };
        let decoded = codec::decode(time, bytes).map_err(broken)?;
        let mut entries = Vec::new();
        for id in decoded.refs.iter() {
            let entry = self.dictionary.get(id).map_err(|e| store.redb(e))?;
            let entry = entry.ok_or_else(|| broken(DecodeError::MissingDictionaryEntry(id)))?;
            entries.push(entry.value().to_vec());
        }
        let entries: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        if let Some(value) = codec::relink(key, bytes, previous, &entries).map_err(broken)? {
            self.samples
                .insert(key, value.as_slice())
                .map_err(|e| store.redb(e))?;
        }
        Ok(())
    }
}

/// Opens (or creates) the file for writing; readers in other processes may follow along. An
/// open that fails (a damaged file, a panic of the engine) leaves the file byte for byte as it
/// was: redb writes to a file while opening it, and may give up half way through a repair.
fn open_writer(path: &Path) -> Result<Database, StoreError> {
    let (db, undo) = open_writer_undoable(path)?;
    undo.disarm();
    Ok(db)
}

/// [`open_writer`] with the undo log still armed: until [`undo::Undo::disarm`], closing the
/// database puts back every byte the open changed.
fn open_writer_undoable(path: &Path) -> Result<(Database, Arc<undo::Undo>), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        // A FIFO put there since it was checked must not hang the open.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|cause| StoreError::Open {
            path: path.into(),
            cause,
        })?;
    refuse_special_file(path, &file)?;
    let backend = FileBackend::new(file).map_err(|err| open_error(path, err))?;
    let (backend, undo) = undo::UndoBackend::new(backend);
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .set_concurrency_mode(ConcurrencyMode::SingleWriter)
        .create_with_backend(backend)
        .map_err(|err| open_error(path, err))?;
    Ok((db, undo))
}

/// Whether the file is marked as needing repair (its last writer died without closing it),
/// which only a writer's open does; asked of a read-only open, which changes nothing.
fn needs_repair(path: &Path) -> bool {
    let probe = guard::engine(|| {
        redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .open_read_only(path)
            .map(drop)
    });
    matches!(probe, Ok(Err(DatabaseError::RepairAborted)))
}

/// Refuses what is not a regular file (a FIFO, a directory, a device): only a regular file,
/// or a missing path where a command creates one, is a database.
fn refuse_special_file(path: &Path, file: &File) -> Result<(), StoreError> {
    let meta = file.metadata().map_err(|cause| StoreError::Open {
        path: path.into(),
        cause,
    })?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(StoreError::NotAFile { path: path.into() })
    }
}

/// Refuses what is not a regular file, and a non-empty file that does not start like a redb
/// file, before redb can touch it. A missing path is left for the caller to judge.
fn refuse_foreign_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut head = Vec::with_capacity(SQLITE_MAGIC.len());
    // Non-blocking, so that a FIFO at the path is refused instead of waiting for a writer.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    match opened {
        Ok(file) => {
            refuse_special_file(path, &file)?;
            if let Err(cause) = file.take(SQLITE_MAGIC.len() as u64).read_to_end(&mut head) {
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
    if head.is_empty() || head.starts_with(&REDB_MAGIC) {
        Ok(())
    } else if held_by_redb(path, REDB_LOCK_BYTES) {
        // Another process is creating the file (it has not written the whole header yet) or
        // has it open: it is that process's database, not a foreign file.
        Err(StoreError::Locked { path: path.into() })
    } else {
        Err(foreign(path, &head))
    }
}

/// `path` as one word of a command to paste into a POSIX shell: as it is when it holds only
/// characters no shell treats specially, else in single quotes (`'it'\''s.db'`); `./` before a
/// relative path starting with `-`, so that it is not read as a flag; control characters
/// escaped (`\n`), so the message stays one line (such a path then needs retyping).
fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let text = if text.starts_with('-') {
        format!("./{text}")
    } else {
        text.into_owned()
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text;
    }
    let mut quoted = String::from("'");
    for c in text.chars() {
        match c {
            '\'' => quoted.push_str("'\\''"),
            c if c.is_control() => quoted.extend(c.escape_default()),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// The refusal of a file at `path` that starts with `head` and is no redb file: named as the
/// original app's SQLite database when it is one, with the command that reads it.
fn foreign(path: &Path, head: &[u8]) -> StoreError {
    let path = path.into();
    if head.starts_with(SQLITE_MAGIC) {
        StoreError::Sqlite { path }
    } else {
        StoreError::NotRedb { path }
    }
}

/// Where redb's byte-range locks on a file lie, above any byte of data: from `LOCK_BASE`
/// (2^62) up to the bytes its backend keeps for itself (`LOCK_BASE + 896`). Every redb handle
/// of a file holds one of them from the start of its open (a writer, before it writes the
/// header; a reader) until it closes. Part of redb's locking protocol between processes.
const REDB_LOCK_BYTES: (u64, u64) = (1 << 62, (1 << 62) + 896);

/// Whether another process holds a redb lock on a byte of `bytes` (from, to excluded) of
/// `path`, asked of the file's locks without writing to it; `false` when it cannot be asked
/// (the file cannot be opened for writing, which a lock probe needs; no byte-range locks).
pub(crate) fn held_by_redb(path: &Path, bytes: (u64, u64)) -> bool {
    use redb::StorageBackend;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    let Ok(backend) = FileBackend::new(file) else {
        return false;
    };
    backend
        .query_lock_range(
            std::ops::Bound::Included(bytes.0),
            std::ops::Bound::Excluded(bytes.1),
        )
        .unwrap_or(false)
}

/// A sample's time for a message: RFC 3339 (a [`Timestamp`] always has that form).
fn sample_time(time: Timestamp) -> String {
    time.to_string()
}

/// A stored key for a message: its time in RFC 3339 when it is one this version handles (before
/// [`Timestamp::MAX`]), else the raw key, never a clamped time that is not the key's.
fn key_time(millis: u64) -> String {
    match Timestamp::try_from_millis(millis).filter(|time| *time < Timestamp::MAX) {
        Some(time) => time.to_string(),
        None => format!("the key {millis} (ms after the Unix epoch)"),
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
        // Only a reader meets this before a writer's open has tried the repair (see
        // `open_reader`): after that, it means the repair cannot be done.
        DatabaseError::RepairAborted => StoreError::Corrupt {
            path,
            detail: "a writer did not close it, and redb cannot repair it".into(),
        },
        other => StoreError::Redb {
            path,
            cause: other.into(),
        },
    }
}

#[cfg(test)]
mod tests;
