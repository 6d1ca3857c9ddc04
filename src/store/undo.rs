//! A writer's open that fails leaves the file byte for byte as it was.
//!
//! Opening a redb file for writing writes to it before the open can fail: it marks the header,
//! and on a file it finds damaged it may start a repair that rewrites pages and grows the file,
//! then gives up ("Primary is corrupted despite 2-phase commit"). The file is then neither what
//! it was nor repaired, and what still read before no longer does. [`UndoBackend`] is redb's own
//! [`FileBackend`] with an undo log: while the open is under way, each write and resize first
//! keeps the bytes and length it replaces. An open that succeeds disarms it ([`Undo::disarm`]);
//! one that fails (an error, or a panic of the engine) puts every byte back before the backend
//! closes, that is before redb's locks on the file are released: the bytes put back are the
//! ones this open replaced under the writer's lock, so no other process's commit can be
//! overwritten.

use std::fmt;
use std::io;
use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// One change made during the open, with what it replaced.
#[derive(Debug)]
enum Change {
    /// Bytes written at an offset: the bytes that were there (up to the file's end then).
    Wrote { offset: u64, before: Vec<u8> },
    /// The length changed: the length before.
    Resized { before: u64 },
}

/// The undo log shared between the backend (inside redb) and the code that opens the file.
#[derive(Debug, Default)]
pub(super) struct Undo {
    /// `None` once disarmed: the open succeeded, what it wrote stays.
    log: Mutex<Option<Vec<Change>>>,
}

impl Undo {
    /// The open succeeded: keep what it wrote, and stop keeping bytes.
    pub(super) fn disarm(&self) {
        *self.log.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Whether a failed open wrote anything (before it was put back).
    fn is_armed(&self) -> bool {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// redb's file backend, keeping what the open replaces until [`Undo::disarm`].
pub(super) struct UndoBackend {
    inner: FileBackend,
    undo: Arc<Undo>,
}

impl fmt::Debug for UndoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UndoBackend")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl UndoBackend {
    /// Wraps `inner`, armed: every change is kept until the returned [`Undo`] is disarmed.
    pub(super) fn new(inner: FileBackend) -> (Self, Arc<Undo>) {
        let undo = Arc::new(Undo {
            log: Mutex::new(Some(Vec::new())),
        });
        (
            UndoBackend {
                inner,
                undo: undo.clone(),
            },
            undo,
        )
    }

    /// Keeps the bytes `offset..offset + len` as they are now (those inside the file).
    fn keep_bytes(&self, log: &mut Vec<Change>, offset: u64, len: u64) -> io::Result<()> {
        let file_len = self.inner.len()?;
        let end = offset.saturating_add(len).min(file_len);
        if end <= offset {
            return Ok(());
        }
        let size = usize::try_from(end - offset).map_err(io::Error::other)?;
        let mut before = vec![0; size];
        self.inner.read(offset, &mut before)?;
        log.push(Change::Wrote { offset, before });
        Ok(())
    }

    /// Undoes every kept change, newest first, so that each byte gets the value it had before
    /// the first change, and makes that durable. Runs at most once.
    fn put_back(&self) {
        let Some(log) = self
            .undo
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        if log.is_empty() {
            return;
        }
        let result = log
            .iter()
            .rev()
            .try_for_each(|change| match change {
                Change::Wrote { offset, before } => self.inner.write(*offset, before),
                Change::Resized { before } => self.inner.set_len(*before),
            })
            .and_then(|()| self.inner.sync_data());
        if let Err(err) = result {
            tracing::error!(%err, "a failed open of the database changed it, and putting it back failed");
        }
    }
}

impl StorageBackend for UndoBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        {
            let mut log = self.undo.log.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(log) = log.as_mut() {
                let before = self.inner.len()?;
                log.push(Change::Resized { before });
                if len < before {
                    self.keep_bytes(log, len, before - len)?;
                }
            }
        }
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        {
            let mut log = self.undo.log.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(log) = log.as_mut() {
                self.keep_bytes(log, offset, data.len() as u64)?;
            }
        }
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        // redb closes the backend when the open fails, before the locks go with it.
        self.put_back();
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

impl Drop for UndoBackend {
    /// An open that panicked may drop the backend without closing it: the file is put back
    /// here, while `inner` (and so the lock) is still held.
    fn drop(&mut self) {
        if self.undo.is_armed() {
            self.put_back();
        }
    }
}
