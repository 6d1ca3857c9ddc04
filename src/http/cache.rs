//! Answers that are costly to compute and change slowly, reused for a moment.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::response::HttpError;

/// How long an answer may be reused: a rolling window may move this far before a reader sees
/// it move, which nobody can tell in half-hourly measurements. A newly stored (or deleted)
/// sample ends the reuse at once.
const MAX_AGE: Duration = Duration::from_secs(1);

/// One cached JSON body.
#[derive(Default)]
pub struct Cached(Mutex<Option<Entry>>);

struct Entry {
    generation: u64,
    made: Instant,
    body: Bytes,
}

impl Cached {
    /// The body made at `generation` of the store less than `MAX_AGE` ago, or a new one from
    /// `make`. Errors are not cached.
    pub fn get_or_make(
        &self,
        generation: u64,
        make: impl FnOnce() -> Result<Bytes, HttpError>,
    ) -> Result<Bytes, HttpError> {
        if let Ok(entry) = self.0.lock()
            && let Some(entry) = entry.as_ref()
            && entry.generation == generation
            && entry.made.elapsed() < MAX_AGE
        {
            return Ok(entry.body.clone());
        }
        let body = make()?;
        if let Ok(mut entry) = self.0.lock() {
            *entry = Some(Entry {
                generation,
                made: Instant::now(),
                body: body.clone(),
            });
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_within_a_generation_and_remade_after_a_change() {
        let cached = Cached::default();
        let made = std::cell::Cell::new(0);
        let make = || {
            made.set(made.get() + 1);
            Ok(Bytes::from(made.get().to_string()))
        };
        assert_eq!(cached.get_or_make(1, make).unwrap(), "1");
        assert_eq!(cached.get_or_make(1, make).unwrap(), "1", "reused");
        assert_eq!(cached.get_or_make(2, make).unwrap(), "2", "a new sample");
    }

    #[test]
    fn errors_are_not_cached() {
        let cached = Cached::default();
        let failed = cached.get_or_make(1, || Err(HttpError::not_found("none yet")));
        assert!(failed.is_err());
        assert_eq!(cached.get_or_make(1, || Ok(Bytes::from("x"))).unwrap(), "x");
    }
}
