//! Answers that are costly to compute and change slowly, reused for a moment.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::response::HttpError;

/// How long an answer may be reused: a rolling window may move this far before a reader sees
/// it move, which nobody can tell in half-hourly measurements. A newly stored (or deleted)
/// sample ends the reuse at once. Clients that read slowly hold the answer they were given
/// until they have read it, one copy per remaking: ten seconds keep those copies few (a
/// 4 MB `/graph` and 80 slow readers a second held 64 MB at one second).
const MAX_AGE: Duration = Duration::from_secs(10);

/// The core of [`Cached`] and [`Memo`]: one value, made by one request at a time; the others
/// that arrive meanwhile wait for it and share it, so a burst of requests makes it once, not
/// once each. Errors are not kept. A value is never replaced by one made at an earlier store
/// generation. What counts as fresh is the caller's rule.
struct Slot<T> {
    entry: Mutex<Option<Entry<T>>>,
    making: tokio::sync::Mutex<()>,
}

struct Entry<T> {
    /// The store generation the value was made at.
    generation: u64,
    made: Instant,
    value: T,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            entry: Mutex::new(None),
            making: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T: Clone> Slot<T> {
    /// The kept value when `fresh` says it may serve, else a new one from `make`, kept when
    /// no value of a later generation is.
    async fn get_or_make<F: Future<Output = Result<T, HttpError>>>(
        &self,
        generation: u64,
        fresh: impl Fn(&Entry<T>) -> bool,
        make: impl FnOnce() -> F,
    ) -> Result<T, HttpError> {
        if let Some(value) = self.get(&fresh) {
            return Ok(value);
        }
        let _turn = self.making.lock().await;
        // Made by the request that had the turn before this one?
        if let Some(value) = self.get(&fresh) {
            return Ok(value);
        }
        let value = make().await?;
        if let Ok(mut entry) = self.entry.lock()
            && entry
                .as_ref()
                .is_none_or(|kept| kept.generation <= generation)
        {
            *entry = Some(Entry {
                generation,
                made: Instant::now(),
                value: value.clone(),
            });
        }
        Ok(value)
    }

    fn get(&self, fresh: impl Fn(&Entry<T>) -> bool) -> Option<T> {
        let entry = self.entry.lock().ok()?;
        let entry = entry.as_ref()?;
        fresh(entry).then(|| entry.value.clone())
    }

    fn last(&self) -> Option<T> {
        let entry = self.entry.lock().ok()?;
        entry.as_ref().map(|entry| entry.value.clone())
    }
}

/// One cached JSON body, reused while the store's generation is the one it was made at and
/// for at most [`MAX_AGE`] (a rolling window moves with the clock). Made once per burst (a
/// 30-day `/graph` of one-minute samples is megabytes).
#[derive(Default)]
pub(super) struct Cached(Slot<Bytes>);

impl Cached {
    /// The body made at `generation` of the store less than `MAX_AGE` ago, or a new one from
    /// `make`. Errors are not cached.
    pub(super) async fn get_or_make<F: Future<Output = Result<Bytes, HttpError>>>(
        &self,
        generation: u64,
        make: impl FnOnce() -> F,
    ) -> Result<Bytes, HttpError> {
        self.0
            .get_or_make(
                generation,
                |kept| kept.generation == generation && kept.made.elapsed() < MAX_AGE,
                make,
            )
            .await
    }
}

/// One value computed from the store (the column cache, the store's part of the status),
/// kept until the store's generation changes. Made once per burst; errors are not kept. A
/// value made at a later generation serves a request that read an earlier one (it was made
/// from the store after the request began), so a request that read the generation just
/// before a run landed neither remakes the value nor replaces the newer one with its own.
pub(super) struct Memo<T>(Slot<Arc<T>>);

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo(Slot::default())
    }
}

impl<T> Memo<T> {
    /// The value made at `generation` (or later), or a new one from `make`.
    pub(super) async fn get_or_make<F: Future<Output = Result<T, HttpError>>>(
        &self,
        generation: u64,
        make: impl FnOnce() -> F,
    ) -> Result<Arc<T>, HttpError> {
        self.0
            .get_or_make(
                generation,
                |kept| kept.generation >= generation,
                || async { make().await.map(Arc::new) },
            )
            .await
    }

    /// The value made last, at whatever generation.
    pub(super) fn last(&self) -> Option<Arc<T>> {
        self.0.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reused_within_a_generation_and_remade_after_a_change() {
        let cached = Cached::default();
        let made = std::cell::Cell::new(0);
        let make = || {
            made.set(made.get() + 1);
            std::future::ready(Ok(Bytes::from(made.get().to_string())))
        };
        assert_eq!(cached.get_or_make(1, make).await.unwrap(), "1");
        assert_eq!(cached.get_or_make(1, make).await.unwrap(), "1", "reused");
        assert_eq!(
            cached.get_or_make(2, make).await.unwrap(),
            "2",
            "a new sample"
        );
    }

    #[tokio::test]
    async fn a_burst_of_requests_makes_the_body_once() {
        let cached = Cached::default();
        let made = std::cell::Cell::new(0);
        let make = || async {
            made.set(made.get() + 1);
            // Another request gets its turn to ask while this one is making the body.
            tokio::task::yield_now().await;
            Ok(Bytes::from("graph"))
        };
        let (a, b, c) = tokio::join!(
            cached.get_or_make(1, make),
            cached.get_or_make(1, make),
            cached.get_or_make(1, make)
        );
        assert_eq!(
            (a.unwrap(), b.unwrap(), c.unwrap()),
            ("graph".into(), "graph".into(), "graph".into())
        );
        assert_eq!(made.get(), 1, "made once, shared by all three");
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cached = Cached::default();
        let failed = cached
            .get_or_make(1, || async { Err(HttpError::not_found("none yet")) })
            .await;
        assert!(failed.is_err());
        let made = cached.get_or_make(1, || async { Ok(Bytes::from("x")) });
        assert_eq!(made.await.unwrap(), "x");
    }

    #[tokio::test]
    async fn a_memo_is_made_once_per_generation_and_errors_are_not_kept() {
        let memo: Memo<u32> = Memo::default();
        let made = std::cell::Cell::new(0);
        let make = || async {
            made.set(made.get() + 1);
            tokio::task::yield_now().await;
            Ok(made.get())
        };
        let burst = futures_join(memo.get_or_make(1, make), memo.get_or_make(1, make)).await;
        assert_eq!(
            (*burst.0.unwrap(), *burst.1.unwrap()),
            (1, 1),
            "made once, shared"
        );
        assert_eq!(*memo.get_or_make(1, make).await.unwrap(), 1);
        let failed = memo
            .get_or_make(2, || async { Err(HttpError::not_found("no")) })
            .await;
        assert!(failed.is_err());
        assert_eq!(
            *memo.get_or_make(2, make).await.unwrap(),
            2,
            "remade, not the error"
        );
    }

    #[tokio::test]
    async fn a_request_that_read_an_older_generation_takes_the_newer_value() {
        let memo: Memo<&str> = Memo::default();
        let made = std::cell::Cell::new(0);
        let make = |value: &'static str| {
            let made = &made;
            move || async move {
                made.set(made.get() + 1);
                Ok(value)
            }
        };
        assert_eq!(*memo.get_or_make(6, make("six")).await.unwrap(), "six");
        // A request that read generation 5 before the run of generation 6 landed.
        assert_eq!(*memo.get_or_make(5, make("five")).await.unwrap(), "six");
        assert_eq!(made.get(), 1, "not remade for the older generation");
        assert_eq!(*memo.get_or_make(6, make("again")).await.unwrap(), "six");
        assert_eq!(*memo.get_or_make(7, make("seven")).await.unwrap(), "seven");
        assert_eq!(made.get(), 2);
    }

    #[tokio::test]
    async fn a_body_of_an_older_generation_never_replaces_a_newer_one() {
        let cached = Cached::default();
        let body = |text: &'static str| move || std::future::ready(Ok(Bytes::from(text)));
        assert_eq!(cached.get_or_make(2, body("two")).await.unwrap(), "two");
        // A request that read generation 1 gets its own answer …
        assert_eq!(cached.get_or_make(1, body("one")).await.unwrap(), "one");
        // … and the newer one stays.
        assert_eq!(cached.get_or_make(2, body("again")).await.unwrap(), "two");
    }

    async fn futures_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
        tokio::join!(a, b)
    }
}
