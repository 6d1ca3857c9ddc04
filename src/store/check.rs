//! `db check` and `db compact`: every sample and dictionary entry verified, redb's own
//! integrity check, and compaction of a file that retention left mostly empty.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadableTable, ReadableTableMetadata};

use super::codec::Link;
use super::dictionary::Entry;
use super::{
    DICTIONARY, DICTIONARY_INDEX, Handle, Store, StoreError, guard, open_writer,
    refuse_foreign_file, sample_time, stopped,
};
use crate::time::Timestamp;

/// What `db check` found. Clean when every list is empty.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Samples read (damaged ones included).
    pub samples: u64,
    /// Dictionary entries (servers and ISPs) read.
    pub entries: u64,
    /// Each damaged sample: its time (RFC 3339) and what is wrong with it.
    pub damaged_samples: Vec<(String, String)>,
    /// Each damaged dictionary entry: its number and what is wrong with it.
    pub damaged_entries: Vec<(u64, String)>,
    /// Damage to the file's structure: redb's own findings, counts that disagree, a walk that
    /// could not finish.
    pub structure: Vec<String>,
}

impl CheckReport {
    /// Nothing damaged was found.
    pub fn is_clean(&self) -> bool {
        self.damaged_samples.is_empty()
            && self.damaged_entries.is_empty()
            && self.structure.is_empty()
    }
}

/// What `db compact` did: the file's size in bytes before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compacted {
    /// Bytes before compacting.
    pub before: u64,
    /// Bytes after.
    pub after: u64,
}

impl Store {
    /// Verifies every sample (checksum, links), every dictionary entry and the index, then runs
    /// redb's integrity check on a temporary copy, because that check repairs what it checks.
    /// No sample is changed. Opens the file as `run-once` does, taking the writer's lock: a
    /// database in use by another process is refused as `Locked`. `Err` only when the file
    /// cannot be checked at all (`Corrupt` when it is too damaged to open).
    pub fn check(path: &Path) -> Result<CheckReport, StoreError> {
        let store = Store::open_existing(path)?;
        let mut report = CheckReport::default();
        if let Err(said) = guard::engine(|| store.walk(&mut report)) {
            report
                .structure
                .push(format!("the storage engine stopped on it: {said}"));
        }
        drop(store);
        // Copied once the writer closed, so the copy is a cleanly closed file redb will check
        // rather than quietly repair on opening.
        if let Some(finding) = redb_integrity(path)? {
            report.structure.push(finding);
        }
        Ok(report)
    }

    /// Rewrites the file so that the space of deleted samples is given back, after checking
    /// it: a damaged file is refused (`Corrupt`), not compacted. Needs the writer's lock.
    pub fn compact(path: &Path) -> Result<Compacted, StoreError> {
        let before = file_size(path)?;
        let report = Store::check(path)?;
        if !report.is_clean() {
            return Err(StoreError::Corrupt {
                path: path.into(),
                detail: "db check finds damage; compacting would rewrite it: run db check".into(),
            });
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
            Ok(Err(err)) => return Err(store.redb(err)),
            Err(said) => return Err(stopped(path, said)),
        }
        drop(store);
        Ok(Compacted {
            before,
            after: file_size(path)?,
        })
    }

    /// A writer on an existing file: refuses a missing or foreign one, and a locked one.
    fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing { path: path.into() });
        }
        refuse_foreign_file(path)?;
        Store::open(path)
    }

    /// Reads every sample and entry, noting what is damaged; stops early only when redb
    /// cannot go on.
    fn walk(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        let txn = self.begin_read()?;
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
                                sample_time(Timestamp::from_millis(before))
                            ),
                            _ => "it says no sample comes before it, but one does".into(),
                        };
                        report
                            .damaged_samples
                            .push((sample_time(Timestamp::from_millis(key)), said));
                    }
                }
                Err(StoreError::Decode { cause, .. }) => report
                    .damaged_samples
                    .push((sample_time(Timestamp::from_millis(key)), cause.to_string())),
                Err(other) => report
                    .damaged_samples
                    .push((sample_time(Timestamp::from_millis(key)), other.to_string())),
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

/// redb's own check of its pages (checksums, allocator state), run on a temporary copy
/// because it repairs what it checks. `Some` describes the damage found.
fn redb_integrity(path: &Path) -> Result<Option<String>, StoreError> {
    let copy = TempCopy::of(path)?;
    let checked = guard::engine(|| {
        let mut db = open_writer(&copy.0)?;
        db.check_integrity()
            .map_err(|err| super::open_error(&copy.0, err))
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

/// A copy of the database in the temporary directory, removed when dropped.
struct TempCopy(PathBuf);

impl TempCopy {
    fn of(path: &Path) -> Result<Self, StoreError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let copy = std::env::temp_dir().join(format!(
            "internet-monitor-check-{}-{nanos}.redb",
            std::process::id()
        ));
        std::fs::copy(path, &copy).map_err(|cause| StoreError::Open {
            path: copy.clone(),
            cause,
        })?;
        Ok(TempCopy(copy))
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file_size(path: &Path) -> Result<u64, StoreError> {
    std::fs::metadata(path)
        .map(|meta| meta.len())
        .map_err(|cause| StoreError::Open {
            path: path.into(),
            cause,
        })
}
