//! Threads of our own for store work, so that no pool HTTP clients can fill stands between the
//! scheduler and the store: one thread records (appends, retention, the data budget), a few
//! others read for requests, each behind a bounded queue.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::store::Store;

type Job = Box<dyn FnOnce(&Store) + Send>;

/// How a group of store threads is set up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkerConfig {
    /// Thread name (shown by `top -H`, in panics and in logs).
    pub(crate) name: &'static str,
    /// Threads, each running one job at a time: the group's concurrency.
    pub(crate) threads: usize,
    /// Jobs waiting for a thread; a full queue refuses ([`WorkerError::Busy`]) or waits,
    /// as the caller chooses.
    pub(crate) queue: usize,
    /// A job that waited this long for a thread is dropped unrun ([`WorkerError::Busy`]):
    /// its client has been kept waiting long enough. `None` runs every job.
    pub(crate) max_wait: Option<Duration>,
    /// The threads' nice value (0 normal, up to 19 the lowest priority): readers give way to
    /// the recorder and to the threads that answer `/metrics`.
    pub(crate) nice: i32,
}

/// Why a job did not run to completion.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum WorkerError {
    #[error("the {0} threads are busy; try again shortly")]
    Busy(&'static str),
    #[error("the {0} threads have stopped")]
    Stopped(&'static str),
    #[error("a {0} job panicked")]
    Panicked(&'static str),
}

/// A group of threads that run closures over the store, in order of submission.
pub(crate) struct Workers {
    config: WorkerConfig,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Starts `config.threads` threads sharing `store`; fails only if the system refuses a
    /// thread.
    pub(crate) fn start(store: Arc<Store>, config: WorkerConfig) -> io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>(config.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let mut threads = Vec::new();
        for _ in 0..config.threads.max(1) {
            let (store, receiver) = (store.clone(), receiver.clone());
            let thread = std::thread::Builder::new()
                .name(config.name.into())
                .spawn(move || work(&store, &receiver, config.nice))?;
            threads.push(thread);
        }
        Ok(Workers {
            config,
            jobs: Mutex::new(Some(sender)),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `job` on one of the threads once the queue has room, and returns its result.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, WorkerError> {
        let (job, result) = self.wrap(job);
        let sender = self.sender()?;
        sender
            .send(job)
            .await
            .map_err(|_| WorkerError::Stopped(self.config.name))?;
        self.outcome(result).await
    }

    /// Like [`run`](Self::run), but a queue that stays full for `wait` is
    /// [`WorkerError::Busy`]: a request waits a bounded time for a turn, then gets a 503.
    pub(crate) async fn run_within<T: Send + 'static>(
        &self,
        wait: Duration,
        job: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, WorkerError> {
        let (job, result) = self.wrap(job);
        let sender = self.sender()?;
        match tokio::time::timeout(wait, sender.send(job)).await {
            Ok(Ok(())) => self.outcome(result).await,
            Ok(Err(_)) => Err(WorkerError::Stopped(self.config.name)),
            Err(_) => Err(WorkerError::Busy(self.config.name)),
        }
    }

    /// Lets the queued jobs finish, then stops the threads and waits for them.
    pub(crate) fn stop(&self) {
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!(name = self.config.name, "a store thread panicked");
            }
        }
    }

    fn sender(&self) -> Result<mpsc::Sender<Job>, WorkerError> {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(WorkerError::Stopped(self.config.name))
    }

    /// The job as the threads run it (skipped when its caller is gone or it waited too long,
    /// panics caught) and the receiver of its result.
    fn wrap<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> (Job, oneshot::Receiver<Result<T, WorkerError>>) {
        let (reply, result) = oneshot::channel();
        let queued = Instant::now();
        let WorkerConfig { name, max_wait, .. } = self.config;
        let job: Job = Box::new(move |store| {
            if reply.is_closed() {
                return;
            }
            if max_wait.is_some_and(|max| queued.elapsed() > max) {
                let _ = reply.send(Err(WorkerError::Busy(name)));
                return;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| job(store))).map_err(|_| {
                tracing::error!(name, "a store job panicked");
                WorkerError::Panicked(name)
            });
            let _ = reply.send(outcome);
        });
        (job, result)
    }

    async fn outcome<T>(
        &self,
        result: oneshot::Receiver<Result<T, WorkerError>>,
    ) -> Result<T, WorkerError> {
        result
            .await
            .unwrap_or(Err(WorkerError::Stopped(self.config.name)))
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One thread's life: take the next job, run it, until the queue is closed and empty.
fn work(store: &Store, jobs: &Mutex<mpsc::Receiver<Job>>, nice: i32) {
    if nice != 0 {
        // SAFETY: setpriority only changes this thread's (the tid's) scheduling priority.
        let failed = unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) != 0
        };
        if failed {
            tracing::debug!(nice, "cannot lower the priority of a store thread");
        }
    }
    loop {
        let job = jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        match job {
            Some(job) => job(store),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        (dir, Arc::new(store))
    }

    fn config(threads: usize, queue: usize, max_wait: Option<Duration>) -> WorkerConfig {
        WorkerConfig {
            name: "test",
            threads,
            queue,
            max_wait,
            nice: 0,
        }
    }

    #[tokio::test]
    async fn runs_jobs_and_returns_their_results() {
        let (_dir, store) = store();
        let workers = Workers::start(store, config(2, 4, None)).unwrap();
        let len = workers.run(|store| store.len().unwrap()).await;
        assert_eq!(len, Ok(0));
        assert_eq!(workers.run_within(Duration::ZERO, |_| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_is_busy_and_a_panic_is_caught() {
        let (_dir, store) = store();
        let workers = Arc::new(Workers::start(store, config(1, 1, None)).unwrap());
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let blocked = tokio::spawn({
            let workers = workers.clone();
            async move {
                let job = move |_: &Store| {
                    started.send(()).unwrap();
                    held.recv().ok();
                };
                workers.run(job).await
            }
        });
        running.recv().unwrap();
        // The thread is busy; one job fits in the queue, the next is refused.
        let queued = tokio::spawn({
            let workers = workers.clone();
            async move { workers.run(|_| 1).await }
        });
        while workers.sender().unwrap().capacity() != 0 {
            tokio::task::yield_now().await;
        }
        let refused = workers.run_within(Duration::from_millis(1), |_| 2).await;
        assert_eq!(refused, Err(WorkerError::Busy("test")));
        hold.send(()).unwrap();
        assert_eq!(blocked.await.unwrap(), Ok(()));
        assert_eq!(queued.await.unwrap(), Ok(1));
        let panicked = workers.run(|_| -> u8 { panic!("boom") }).await;
        assert_eq!(panicked, Err(WorkerError::Panicked("test")));
        assert_eq!(
            workers.run(|_| 3).await,
            Ok(3),
            "the thread survives a panic"
        );
    }

    #[tokio::test]
    async fn a_job_that_waited_too_long_is_busy_unrun() {
        let (_dir, store) = store();
        let workers = Workers::start(store, config(1, 4, Some(Duration::ZERO))).unwrap();
        assert_eq!(workers.run(|_| 1).await, Err(WorkerError::Busy("test")));
    }

    #[tokio::test]
    async fn stop_finishes_queued_jobs_then_refuses() {
        let (_dir, store) = store();
        let workers = Workers::start(store, config(1, 4, None)).unwrap();
        assert_eq!(workers.run(|_| 1).await, Ok(1));
        workers.stop();
        assert_eq!(workers.run(|_| 1).await, Err(WorkerError::Stopped("test")));
    }
}
