//! Panics of the storage engine, caught and turned into "damaged" errors.
//!
//! redb trusts the bytes of its own pages: a damaged file can make it panic (an unreachable
//! branch, an index out of bounds) instead of returning an error. Every call into redb runs
//! inside [`engine`], which catches such a panic and keeps the default hook from printing it
//! (the error that replaces it names the file and the way out). Code of the caller that runs
//! inside, such as a scan's visitor, runs in [`caller`]: its panics are printed and propagate as
//! they would have, never mistaken for damage.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// Greater than zero while this thread runs engine code: its panics are caught, not shown.
    static ENGINE_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// What the hook saw of the last engine panic on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// The payload of a caller's panic, carried through [`engine`] to be resumed outside it.
struct CallerPanic(Box<dyn Any + Send>);

/// Runs `work`, which calls into the storage engine; `Err` carries what the engine's panic
/// said (message and source location), for the "damaged" error that replaces it.
pub(super) fn engine<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    ENGINE_DEPTH.with(|depth| depth.set(depth.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(work));
    ENGINE_DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
    match result {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<CallerPanic>() {
            Ok(caller) => panic::resume_unwind(caller.0),
            Err(payload) => Err(LAST_PANIC
                .with(|last| last.borrow_mut().take())
                .unwrap_or_else(|| message(payload.as_ref()))),
        },
    }
}

/// Runs the caller's `work` from inside [`engine`]: a panic in it is shown by the usual hook
/// and continues past the engine's catch, as if the store were not there.
pub(super) fn caller<T>(work: impl FnOnce() -> T) -> T {
    let depth = ENGINE_DEPTH.with(|depth| depth.replace(0));
    let result = panic::catch_unwind(AssertUnwindSafe(work));
    ENGINE_DEPTH.with(|outer| outer.set(depth));
    match result {
        Ok(value) => value,
        Err(payload) if depth > 0 => panic::resume_unwind(Box::new(CallerPanic(payload))),
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Chains a hook in front of the current one that stays silent for engine panics.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if ENGINE_DEPTH.with(Cell::get) == 0 {
                return previous(info);
            }
            let place = info
                .location()
                .map(|at| format!(" ({}:{})", short_path(at.file()), at.line()))
                .unwrap_or_default();
            let said = format!("{}{place}", message(info.payload()));
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(said));
        }));
    });
}

/// A panic's message, when it has one.
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "the storage engine stopped".to_owned()
    }
}

/// A source path from the crate's directory on (`redb-4.6.0/src/…`), not the build machine's.
fn short_path(file: &str) -> &str {
    file.rfind("/redb-")
        .and_then(|at| file.get(at + 1..))
        .unwrap_or(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_panic_becomes_its_message() {
        let caught = engine(|| -> u32 { panic!("entered unreachable code") });
        let said = caught.unwrap_err();
        assert!(said.starts_with("entered unreachable code ("), "{said}");
        assert_eq!(engine(|| 7), Ok(7));
    }

    #[test]
    fn a_callers_panic_is_not_taken_for_damage() {
        let outcome = panic::catch_unwind(|| engine(|| caller(|| panic!("the caller's bug"))));
        let payload = outcome.expect_err("the caller's panic goes on");
        assert_eq!(message(payload.as_ref()), "the caller's bug");
    }
}
