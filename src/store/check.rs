//! `db check` and `db compact`: every sample and dictionary entry verified, redb's own
//! integrity check, and compaction of a file that retention left mostly empty.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadableTable, ReadableTableMetadata};

use super::codec::Link;
use super::dictionary::Entry;
use super::{
    DICTIONARY, DICTIONARY_INDEX, Handle, REDB_MAGIC, Store, StoreError, guard, key_time,
    open_writer, refuse_foreign_file, stopped,
};

/// What `db check` found. Clean when every list is empty.
#[derive(Debug, Default)]
pub(crate) struct CheckReport {
    /// Samples read (damaged ones included).
    pub(crate) samples: u64,
    /// Dictionary entries (servers, ISPs and engines) read.
    pub(crate) entries: u64,
    /// Plan versions read (damaged ones included).
    pub(crate) plans: u64,
    /// Each damaged plan version: the time of its key (its effective-from) and what is wrong.
    pub(crate) damaged_plans: Vec<(String, String)>,
    /// Campaign records read (damaged ones included; a damaged one is a `structure` finding).
    pub(crate) campaigns: u64,
    /// Records of the connectivity monitor's tables read (targets, minute rows, buckets,
    /// outages, runs; damaged ones included, each a `structure` finding).
    pub(crate) probe_records: u64,
    /// Entries of the remote_write outbox read (samples waiting to be pushed; damaged ones
    /// included, each a `structure` finding).
    pub(crate) outbox_pending: u64,
    /// Keys (ms since the epoch) of samples an older version stored at or after
    /// [`crate::time::Timestamp::MAX`]: no command shows them and they are left as they are; not damage.
    pub(crate) out_of_range: Vec<u64>,
    /// Each damaged sample: its time (RFC 3339, or its raw key where it has no such time) and
    /// what is wrong with it.
    pub(crate) damaged_samples: Vec<(String, String)>,
    /// Each damaged dictionary entry: its number and what is wrong with it.
    pub(crate) damaged_entries: Vec<(u64, String)>,
    /// Damage to the file's structure: redb's own findings, counts that disagree, a walk that
    /// could not finish.
    pub(crate) structure: Vec<String>,
}

impl CheckReport {
    /// Nothing damaged was found.
    pub(crate) fn is_clean(&self) -> bool {
        self.damaged_samples.is_empty()
            && self.damaged_entries.is_empty()
            && self.damaged_plans.is_empty()
            && self.structure.is_empty()
    }
}

/// What `db compact` did: the file's size in bytes before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compacted {
    /// Bytes before compacting.
    pub(crate) before: u64,
    /// Bytes after.
    pub after: u64,
}

impl Store {
    /// Verifies every sample (checksum, links), every dictionary entry and the index, then runs
    /// redb's integrity check. Never writes to the file at `path`: all of it runs on a private
    /// copy, taken under a shared lock that refuses (as `Locked`) a file a writer has open and
    /// keeps a writer from opening it while the copy is taken; opening a redb file, even to
    /// check it, writes to it. `Err` only when the file cannot be checked at all (`Corrupt`
    /// when it is too damaged to open; `Missing`, `NotAFile`, `Empty`, `NotRedb`, `Sqlite`,
    /// `Locked`).
    pub(crate) fn check(path: &Path) -> Result<CheckReport, StoreError> {
        let copy = PrivateCopy::of(path)?;
        let mut report = Store::check_copy(&copy.0).map_err(|err| err.at(path))?;
        // Findings name the file the user gave, not the private copy.
        let (copied, given) = (copy.0.display().to_string(), path.display().to_string());
        let rename = |text: &mut String| *text = text.replace(&copied, &given);
        report
            .damaged_samples
            .iter_mut()
            .for_each(|(_, what)| rename(what));
        report
            .damaged_entries
            .iter_mut()
            .for_each(|(_, what)| rename(what));
        report
            .damaged_plans
            .iter_mut()
            .for_each(|(_, what)| rename(what));
        report.structure.iter_mut().for_each(rename);
        Ok(report)
    }

    /// [`Store::check`] of a private copy, which may be written to.
    fn check_copy(copy: &Path) -> Result<CheckReport, StoreError> {
        let store = Store::open(copy)?;
        let mut report = CheckReport::default();
        if let Err(said) = guard::engine(|| store.walk(&mut report)) {
            report
                .structure
                .push(format!("the storage engine stopped on it: {said}"));
        }
        drop(store);
        // Checked once the writer closed, so it is a cleanly closed file redb will check
        // rather than quietly repair on opening.
        if let Some(finding) = redb_integrity(copy)? {
            report.structure.push(finding);
        }
        Ok(report)
    }

    /// Rewrites the file so that the space of deleted samples is given back, after checking
    /// it: a damaged file is refused (`Corrupt`), not compacted, and so are a missing, empty or
    /// foreign one (it never creates or converts a file). Needs the writer's lock.
    pub fn compact(path: &Path) -> Result<Compacted, StoreError> {
        let report = Store::check(path)?;
        let before = file_size(path)?;
        if !report.is_clean() {
            return Err(StoreError::Corrupt {
                path: path.into(),
                detail: "db check finds damage; compacting would rewrite it: run db check".into(),
            });
        }
        // Compacting writes from its first step, and redb finds a reader only once it has: a
        // reader in another process is looked for before anything is written.
        if read_by_another_process(path) {
            return Err(StoreError::InUse { path: path.into() });
        }
        let mut store = Store::open_existing(path)?;
        let compacted = guard::engine(|| {
            let handle = store
                .handle
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Handle::Writer(db) = handle else {
                return Ok::<_, redb::Error>(());
            };
            // Each pass moves pages towards the start; it says when nothing more moves.
            while db.compact().map_err(redb::Error::from)? {}
            Ok(())
        });
        match compacted {
            Ok(Ok(())) => {}
            // A reader that came in after the look above.
            Ok(Err(redb::Error::TransactionInProgress)) => {
                return Err(StoreError::InUse { path: path.into() });
            }
            Ok(Err(err)) => return Err(store.redb(err)),
            Err(said) => return Err(stopped(path, said)),
        }
        drop(store);
        Ok(Compacted {
            before,
            after: file_size(path)?,
        })
    }

    /// A writer on an existing database: refuses a missing, empty or foreign file, and a
    /// locked one.
    fn open_existing(path: &Path) -> Result<Store, StoreError> {
        match std::fs::metadata(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing { path: path.into() });
            }
            Ok(meta) if meta.is_file() && meta.len() == 0 => {
                return Err(StoreError::Empty { path: path.into() });
            }
            _ => {}
        }
        refuse_foreign_file(path)?;
        Store::open(path)
    }

    /// Reads every sample and entry, noting what is damaged; stops early only when redb
    /// cannot go on.
    fn walk(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        let txn = self.begin_read()?;
        report.plans = self.walk_plans(&txn, &mut report.damaged_plans)?;
        report.campaigns = self.walk_campaigns(&txn, &mut report.structure)?;
        report.probe_records = self.walk_probes(&txn, &mut report.structure)?;
        report.outbox_pending = self.walk_outbox(&txn, &mut report.structure)?;
        let mut structure = |finding: String| report.structure.push(finding);
        let Some(samples) = self.open_samples(&txn)? else {
            return Ok(());
        };
        let mut previous: Option<u64> = None;
        let mut walked = 0;
        for entry in samples.iter().map_err(|e| self.redb(e))? {
            let (key, value) = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    structure(format!("reading the samples stopped: {}", self.redb(err)));
                    break;
                }
            };
            walked += 1;
            let key = key.value();
            match self.decode(&txn, key, value.value()) {
                Ok((_, link)) => {
                    let expected = previous.map_or(Link::First, Link::After);
                    if link != Link::Unknown && link != expected {
                        let said = match link {
                            Link::After(before) => format!(
                                "it follows a sample at {} that is not in the file",
                                key_time(before)
                            ),
                            _ => "it says no sample comes before it, but one does".into(),
                        };
                        report.damaged_samples.push((key_time(key), said));
                    }
                }
                // An older version's sample past the end of time: left as it is, not damage.
                Err(StoreError::OutOfRange { key, .. }) => report.out_of_range.push(key),
                Err(StoreError::Decode { cause, .. }) => report
                    .damaged_samples
                    .push((key_time(key), cause.to_string())),
                Err(other) => report
                    .damaged_samples
                    .push((key_time(key), other.to_string())),
            }
            previous = Some(key);
        }
        report.samples = walked;
        let counted = samples.len().map_err(|e| self.redb(e))?;
        if counted != walked {
            report.structure.push(format!(
                "its table says it holds {counted} samples, but {walked} were found"
            ));
        }
        self.walk_dictionary(&txn, report)
    }

    /// Every dictionary entry decodes, and the index and the entries name each other.
    fn walk_dictionary(
        &self,
        txn: &redb::ReadTransaction,
        report: &mut CheckReport,
    ) -> Result<(), StoreError> {
        let (Ok(entries), Ok(index)) =
            (txn.open_table(DICTIONARY), txn.open_table(DICTIONARY_INDEX))
        else {
            report
                .structure
                .push("its dictionary tables cannot be opened".into());
            return Ok(());
        };
        for entry in entries.iter().map_err(|e| self.redb(e))? {
            let (number, bytes) = entry.map_err(|e| self.redb(e))?;
            report.entries += 1;
            let (number, bytes) = (number.value(), bytes.value());
            if let Err(cause) = Entry::decode(bytes) {
                report.damaged_entries.push((number, cause.to_string()));
                continue;
            }
            let indexed = index
                .get(bytes)
                .map_err(|e| self.redb(e))?
                .map(|n| n.value());
            if indexed != Some(number) {
                report
                    .damaged_entries
                    .push((number, "the dictionary's index does not lead to it".into()));
            }
        }
        for entry in index.iter().map_err(|e| self.redb(e))? {
            let (bytes, number) = entry.map_err(|e| self.redb(e))?;
            let stored = entries.get(number.value()).map_err(|e| self.redb(e))?;
            if stored.is_none_or(|stored| stored.value() != bytes.value()) {
                report.structure.push(format!(
                    "the dictionary's index names entry {} for bytes it does not hold",
                    number.value()
                ));
            }
        }
        Ok(())
    }
}

/// redb's own check of its pages (checksums, allocator state), run on the private copy
/// because it repairs what it checks. `Some` describes the damage found.
fn redb_integrity(path: &Path) -> Result<Option<String>, StoreError> {
    let checked = guard::engine(|| {
        let mut db = open_writer(path)?;
        db.check_integrity()
            .map_err(|err| super::open_error(path, err))
    });
    Ok(match checked {
        Ok(Ok(true)) => None,
        Ok(Ok(false)) => Some(
            "redb's integrity check found damage in its own pages (it could repair a copy, with the last commits possibly lost)".into(),
        ),
        Ok(Err(StoreError::Corrupt { detail, .. })) => {
            Some(format!("redb's integrity check fails: {detail}"))
        }
        Ok(Err(other)) => return Err(other),
        Err(said) => Some(format!("redb's integrity check stopped: {said}")),
    })
}

/// A private copy of the database in the temporary directory (mode 0600: it holds the same
/// data), removed when dropped.
struct PrivateCopy(PathBuf);

impl PrivateCopy {
    /// Copies the database at `path`, refusing what is not one: a missing path, something
    /// other than a regular file, an empty or foreign file, a file a writer has open.
    fn of(path: &Path) -> Result<Self, StoreError> {
        let open_error = |cause| StoreError::Open {
            path: path.into(),
            cause,
        };
        let file = match std::fs::OpenOptions::new()
            .read(true)
            // A FIFO at the path is refused, not waited on.
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::Missing { path: path.into() });
            }
            Err(cause) => return Err(open_error(cause)),
        };
        let meta = file.metadata().map_err(open_error)?;
        if !meta.is_file() {
            return Err(StoreError::NotAFile { path: path.into() });
        }
        if meta.len() == 0 {
            return Err(StoreError::Empty { path: path.into() });
        }
        lock_shared(path, &file)?;
        let mut head = Vec::with_capacity(super::SQLITE_MAGIC.len());
        let read = (&file)
            .take(super::SQLITE_MAGIC.len() as u64)
            .read_to_end(&mut head);
        if read.is_err() || !head.starts_with(&REDB_MAGIC) {
            return Err(super::foreign(path, &head));
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let copy = std::env::temp_dir().join(format!(
            "internet-monitor-check-{}-{nanos}.redb",
            std::process::id()
        ));
        let copy_error = |cause| StoreError::Open {
            path: copy.clone(),
            cause,
        };
        let mut target = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .map_err(copy_error)?;
        let copied = PrivateCopy(copy.clone());
        (&file).seek(SeekFrom::Start(0)).map_err(open_error)?;
        io::copy(&mut &file, &mut target).map_err(copy_error)?;
        // The locks go with `file`, once the copy is whole.
        Ok(copied)
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Holds shared locks on `file` that a writer of this program conflicts with, as redb locks
/// its file: `Locked` when a writer has it open; while held, a writer's open is refused as
/// locked. redb 4 takes (on Linux) a whole-file `flock`, exclusive for an exclusive writer and
/// shared otherwise, and an exclusive byte-range lock on the byte at 2^62 ("writer byte") for
/// the writer of a single-writer database, which this program's writers are. A file system
/// that supports neither lock is copied without them.
fn lock_shared(path: &Path, file: &File) -> Result<(), StoreError> {
    let locked = || StoreError::Locked { path: path.into() };
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(locked()),
        Err(TryLockError::Error(_)) => {}
    }
    // SAFETY: `lock` is a plain C struct, zeroed and then filled in; `fcntl` reads and writes
    // it only for the call, on a descriptor that `file` keeps open.
    let taken = unsafe {
        let mut lock: libc::flock64 = std::mem::zeroed();
        lock.l_type = libc::F_RDLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = WRITER_BYTE;
        lock.l_len = 1;
        libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut lock)
    };
    if taken == -1 {
        let err = io::Error::last_os_error();
        if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) {
            return Err(locked());
        }
    }
    Ok(())
}

/// The byte redb's writer of a single-writer database locks exclusively while it has it open.
const WRITER_BYTE: i64 = 1 << 62;

fn file_size(path: &Path) -> Result<u64, StoreError> {
    std::fs::metadata(path)
        .map(|meta| meta.len())
        .map_err(|cause| StoreError::Open {
            path: path.into(),
            cause,
        })
}

/// The byte of redb's lock range that every read-only handle of a file shared between
/// processes holds (shared) for as long as it has the file open: redb's `SHARED_READER_BYTE`,
/// `LOCK_BASE + 2` with `LOCK_BASE` 2^62, part of its locking protocol across processes (a
/// change to it takes a new protocol generation).
const SHARED_READER_BYTE: u64 = (1 << 62) + 2;

/// Whether another process has `path` open for reading through redb (`export`, `report`, the
/// readers of a running `serve`), asked of the file's locks without writing to it.
fn read_by_another_process(path: &Path) -> bool {
    super::held_by_redb(path, (SHARED_READER_BYTE, SHARED_READER_BYTE + 1))
}
