//! The store against real redb files in a temporary directory.

use std::sync::Arc;

use super::*;
use crate::sample::{FailureReason, Server, Trigger};

fn success(millis: u64, download: f64) -> Sample {
    Sample {
        duration_seconds: Some(20.5),
        download_bytes_per_second: Some(download),
        upload_bytes_per_second: Some(2_000_000.0),
        ping_seconds: Some(0.0125),
        server: Some(Arc::new(Server {
            id: Some(57318),
            name: Some("Zzoomm Plc".into()),
            location: Some("Slough".into()),
            country: Some("United Kingdom".into()),
            host: Some("speedtest.zzoomm.com".into()),
        })),
        isp: Some(Arc::from("Giganet Limited")),
        ..Sample::empty(Timestamp::from_millis(millis), Trigger::Schedule)
    }
}

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("samples.redb")).unwrap();
    (dir, store)
}

#[test]
fn appended_samples_come_back_in_time_order() {
    let (_dir, store) = temp_store();
    assert!(store.is_empty().unwrap());
    assert_eq!(store.latest().unwrap(), None);
    let failure = Sample::failure(
        Timestamp::from_millis(2_000),
        Trigger::Manual,
        FailureReason::Timeout,
        "killed",
    );
    store.append(&success(3_000, 3.0)).unwrap();
    store.append(&failure).unwrap();
    store.append(&success(1_000, 1.0)).unwrap();
    assert_eq!(store.len().unwrap(), 3);
    let all = store
        .range(Timestamp::from_millis(0), Timestamp::from_millis(u64::MAX))
        .unwrap();
    assert_eq!(all, vec![success(1_000, 1.0), failure, success(3_000, 3.0)]);
    assert_eq!(store.latest().unwrap(), Some(success(3_000, 3.0)));
}

#[test]
fn range_includes_from_and_excludes_to() {
    let (_dir, store) = temp_store();
    for millis in [10, 20, 30] {
        store.append(&success(millis, 1.0)).unwrap();
    }
    let times: Vec<u64> = store
        .range(Timestamp::from_millis(10), Timestamp::from_millis(30))
        .unwrap()
        .iter()
        .map(|s| s.time.as_millis())
        .collect();
    assert_eq!(times, vec![10, 20]);
}

#[test]
fn a_taken_millisecond_moves_the_new_sample_on() {
    let (_dir, store) = temp_store();
    store.append(&success(5, 1.0)).unwrap();
    let moved = store.append(&success(5, 2.0)).unwrap();
    assert_eq!(moved.time, Timestamp::from_millis(6));
    assert_eq!(store.len().unwrap(), 2);
}

#[test]
fn server_and_isp_are_stored_once() {
    let (_dir, store) = temp_store();
    for millis in 0..50 {
        store.append(&success(millis, 1.0)).unwrap();
    }
    let txn = store.begin_read().unwrap();
    assert_eq!(txn.open_table(DICTIONARY).unwrap().len().unwrap(), 2);
}

#[test]
fn import_skips_times_already_stored() {
    let (_dir, store) = temp_store();
    store.append(&success(1, 1.0)).unwrap();
    let batch = [success(1, 9.0), success(2, 2.0)];
    let added = store
        .import(batch.iter().cloned().map(Ok::<_, StoreError>))
        .unwrap();
    assert_eq!(added, 1);
    let again = store
        .import(batch.iter().cloned().map(Ok::<_, StoreError>))
        .unwrap();
    assert_eq!(again, 0);
    let all = store
        .range(Timestamp::from_millis(0), Timestamp::from_millis(10))
        .unwrap();
    assert_eq!(
        all,
        vec![success(1, 1.0), success(2, 2.0)],
        "first one wins"
    );
}

#[test]
fn an_error_in_the_batch_stores_nothing_of_it() {
    let (_dir, store) = temp_store();
    let batch = vec![
        Ok(success(1, 1.0)),
        Err(StoreError::Missing {
            path: "line 2".into(),
        }),
    ];
    assert!(store.import(batch).is_err());
    assert_eq!(store.len().unwrap(), 0);
}

#[test]
fn a_foreign_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let content = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    for result in [Store::open(&path).err(), Store::open_read_only(&path).err()] {
        let err = result.expect("must be refused");
        assert!(matches!(err, StoreError::NotRedb { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not an internet-monitor database (not a redb file); it was left untouched: pass another --db",
                path.display()
            )
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

#[test]
fn a_second_writer_is_told_the_file_is_locked() {
    let (dir, _store) = temp_store();
    let err = Store::open(&dir.path().join("samples.redb")).err().unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
}

#[test]
fn a_reader_sees_what_the_writer_committed() {
    let (dir, store) = temp_store();
    store.append(&success(1, 1.0)).unwrap();
    let reader = Store::open_read_only(&dir.path().join("samples.redb")).unwrap();
    assert_eq!(reader.latest().unwrap(), Some(success(1, 1.0)));
    let err = reader.append(&success(2, 1.0)).unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
}

#[test]
fn reading_a_missing_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.redb");
    let err = Store::open_read_only(&path).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("database {} does not exist: check --db", path.display())
    );
    assert!(!path.exists(), "reading must not create the file");
}

#[test]
fn a_missing_directory_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(&dir.path().join("absent/samples.redb"))
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is its directory there and writable?")
    );
}

#[test]
fn samples_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.redb");
    Store::open(&path)
        .unwrap()
        .append(&success(7, 7.0))
        .unwrap();
    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.latest().unwrap(), Some(success(7, 7.0)));
}

#[test]
fn latest_success_skips_newer_failures() {
    let (_dir, store) = temp_store();
    assert_eq!(store.latest_success().unwrap(), None);
    store.append(&success(1, 1.0)).unwrap();
    store.append(&success(2, 2.0)).unwrap();
    for millis in 3..10 {
        store
            .append(&Sample::failure(
                Timestamp::from_millis(millis),
                Trigger::Schedule,
                FailureReason::NoConnectivity,
                "down",
            ))
            .unwrap();
    }
    assert_eq!(store.latest_success().unwrap(), Some(success(2, 2.0)));
    assert_eq!(store.latest().unwrap().map(|s| s.time.as_millis()), Some(9));
}

#[test]
fn delete_before_removes_the_oldest_in_batches() {
    let (_dir, store) = temp_store();
    for millis in 0..25 {
        store.append(&success(millis, 1.0)).unwrap();
    }
    let cutoff = Timestamp::from_millis(20);
    assert_eq!(store.delete_before(cutoff, 8).unwrap(), 8);
    assert_eq!(store.delete_before(cutoff, 8).unwrap(), 8);
    assert_eq!(store.delete_before(cutoff, 8).unwrap(), 4);
    assert_eq!(store.delete_before(cutoff, 8).unwrap(), 0);
    let left: Vec<u64> = store
        .range(Timestamp::from_millis(0), Timestamp::from_millis(100))
        .unwrap()
        .iter()
        .map(|s| s.time.as_millis())
        .collect();
    assert_eq!(left, (20..25).collect::<Vec<_>>());
    assert_eq!(store.len().unwrap(), 5);
}

#[test]
fn newest_first_stops_at_the_limit_and_respects_the_window() {
    let (_dir, store) = temp_store();
    for millis in 1..=10 {
        store.append(&success(millis, 1.0)).unwrap();
    }
    let times = |samples: Vec<Sample>| {
        samples
            .iter()
            .map(|s| s.time.as_millis())
            .collect::<Vec<_>>()
    };
    let window = (Timestamp::from_millis(3), Timestamp::from_millis(9));
    assert_eq!(
        times(store.newest_first(window.0, window.1, 4).unwrap()),
        vec![8, 7, 6, 5]
    );
    assert_eq!(
        times(store.newest_first(window.0, window.1, 100).unwrap()),
        vec![8, 7, 6, 5, 4, 3]
    );
    assert!(
        store
            .newest_first(window.0, window.1, 0)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .newest_first(window.1, window.0, 5)
            .unwrap()
            .is_empty(),
        "from after to is empty"
    );
}

/// Stores a copy of the sample at `from` under the raw `key`, as an older version could have.
fn copy_to_raw_key(store: &Store, from: u64, key: u64) {
    store
        .write(|txn| {
            let mut samples = txn.open_table(SAMPLES).map_err(|e| store.redb(e))?;
            let value = samples
                .get(from)
                .map_err(|e| store.redb(e))?
                .map(|value| value.value().to_vec())
                .unwrap();
            samples
                .insert(key, value.as_slice())
                .map_err(|e| store.redb(e))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[test]
fn samples_after_now_are_kept_but_are_not_the_latest() {
    let (_dir, store) = temp_store();
    store.append(&success(1_000, 1.0)).unwrap();
    store
        .append(&Sample::failure(
            Timestamp::from_millis(2_000),
            Trigger::Schedule,
            FailureReason::NoConnectivity,
            "down",
        ))
        .unwrap();
    store.append(&success(9_000, 9.0)).unwrap();
    let now = Timestamp::from_millis(5_000);
    assert_eq!(
        store.latest_success_at(now).unwrap(),
        Some(success(1_000, 1.0))
    );
    assert_eq!(
        store.latest_at(now).unwrap().map(|s| s.time.as_millis()),
        Some(2_000)
    );
    assert_eq!(
        store.latest_at(Timestamp::from_millis(9_000)).unwrap(),
        Some(success(9_000, 9.0))
    );
    assert_eq!(
        store.count_after(now).unwrap(),
        (1, Some(Timestamp::from_millis(9_000)))
    );
    assert_eq!(store.len().unwrap(), 3, "kept");
}

#[test]
fn keys_from_the_latest_time_on_are_counted_never_shown_and_never_a_panic() {
    let (_dir, store) = temp_store();
    let last = Timestamp::MAX.as_millis() - 1;
    store.append(&success(1_000, 1.0)).unwrap();
    store.append(&success(last, 2.0)).unwrap();
    for key in [
        Timestamp::MAX.as_millis(),
        Timestamp::MAX.as_millis() + 1,
        u64::MAX,
    ] {
        copy_to_raw_key(&store, 1_000, key);
    }
    assert_eq!(store.unrepresentable().unwrap(), 3);
    assert_eq!(store.len().unwrap(), 5);
    // Everything that can be shown, and nothing from MAX on.
    let all = store.range(Timestamp::EPOCH, Timestamp::MAX).unwrap();
    assert_eq!(all, vec![success(1_000, 1.0), success(last, 2.0)]);
    assert_eq!(store.latest().unwrap(), Some(success(last, 2.0)));
    assert_eq!(
        store
            .newest_first(Timestamp::EPOCH, Timestamp::MAX, 10)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store.count_after(Timestamp::from_millis(1_000)).unwrap(),
        (1, Some(Timestamp::from_millis(last)))
    );
    // MAX is the end of every range, never a sample's time: a new sample there, or one that
    // would move there because the last millisecond is taken, is refused.
    for time in [last, Timestamp::MAX.as_millis()] {
        let err = store.append(&success(time, 3.0)).unwrap_err();
        assert!(matches!(err, StoreError::OutOfRange { .. }), "{err}");
    }
}
