//! The store against real redb files in a temporary directory.

use std::sync::Arc;

use super::*;
use crate::sample::{Engine, FailureReason, Server, Trigger};

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
        engine: Some(Arc::new(http_engine())),
        ..Sample::empty(Timestamp::from_millis(millis), Trigger::Schedule)
    }
}

fn http_engine() -> Engine {
    Engine {
        ramp_up_seconds: Some(1.5),
        ..Engine::cloudflare_example()
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
fn server_isp_and_engine_are_stored_once() {
    let (_dir, store) = temp_store();
    for millis in 0..50 {
        store.append(&success(millis, 1.0)).unwrap();
    }
    let txn = store.begin_read().unwrap();
    assert_eq!(txn.open_table(DICTIONARY).unwrap().len().unwrap(), 3);
}

#[test]
fn engines_round_trip_and_no_engine_stays_none() {
    let (dir, store) = temp_store();
    let ookla = Sample {
        engine: Some(Arc::new(Engine::ookla())),
        ..success(2, 2.0)
    };
    let none = Sample {
        engine: None,
        ..success(3, 3.0)
    };
    let samples = [success(1, 1.0), ookla, none];
    for sample in &samples {
        store.append(sample).unwrap();
    }
    let txn = store.begin_read().unwrap();
    assert_eq!(txn.open_table(DICTIONARY).unwrap().len().unwrap(), 4);
    drop(txn);
    drop(store);
    let store = Store::open(&dir.path().join("samples.redb")).unwrap();
    let back: Vec<Sample> = store
        .range(Timestamp::from_millis(0), Timestamp::from_millis(10))
        .unwrap();
    assert_eq!(back, samples);
}

#[test]
fn a_changed_engine_entry_is_reported_with_the_sample_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.redb");
    let store = Store::open(&path).unwrap();
    store.append(&success(1_795_546_073_292, 1.0)).unwrap();
    // Entry 2 is the engine: 4 streams become 5.
    tamper(&store, DICTIONARY, 2, |bytes| {
        let at = bytes.iter().position(|&b| b == 4).unwrap();
        bytes[at] = 5;
    });
    drop(store);
    let store = Store::open(&path).unwrap();
    let err = store.latest().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Decode {
                cause: DecodeError::Checksum,
                ..
            }
        ),
        "{err}"
    );
    drop(store);
    let report = Store::check(&path).unwrap();
    assert_eq!(
        report.damaged_samples,
        [(
            "2026-11-24T18:47:53.292Z".to_owned(),
            DecodeError::Checksum.to_string()
        )]
    );
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
fn import_tells_times_stored_before_from_times_repeated_in_the_batch() {
    let (_dir, store) = temp_store();
    store.append(&success(1, 1.0)).unwrap();
    // Into a store holding time 1: the batch's own time 2 comes twice (different figures),
    // and time 1 once more inside the batch: stored before, not repeated.
    let batch = [
        success(1, 9.0),
        success(2, 2.0),
        success(2, 7.0),
        success(1, 8.0),
    ];
    let mut repeats = Vec::new();
    let imported = store
        .import_noting(batch.iter().cloned().map(Ok::<_, StoreError>), |sample| {
            repeats.push(sample.clone());
        })
        .unwrap();
    assert_eq!(
        imported,
        Imported {
            added: 1,
            already_stored: 2,
            repeated: 1
        }
    );
    assert_eq!(repeats, vec![success(2, 7.0)]);
    // Into an empty store, nothing is "stored before".
    let (_dir, empty) = temp_store();
    let imported = empty
        .import_noting(batch.iter().cloned().map(Ok::<_, StoreError>), |_| {})
        .unwrap();
    assert_eq!(
        imported,
        Imported {
            added: 2,
            already_stored: 0,
            repeated: 2
        }
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
fn times_newest_first_reads_the_keys_before_the_end_until_told_to_stop() {
    let (_dir, store) = temp_store();
    for millis in [1_000, 2_000, 3_000, 9_000] {
        store.append(&success(millis, 1.0)).unwrap();
    }
    let mut seen = Vec::new();
    store
        .times_newest_first(Timestamp::from_millis(9_000), |time| {
            seen.push(time.as_millis());
            if seen.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(seen, [3_000, 2_000]);
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

/// Rewrites one value of a table behind the store's back, as a flipped byte on disk would.
fn tamper(
    store: &Store,
    table: TableDefinition<u64, &[u8]>,
    key: u64,
    change: impl Fn(&mut Vec<u8>),
) {
    store
        .write(|txn| {
            let mut table = txn.open_table(table).map_err(|e| store.redb(e))?;
            let mut bytes = table
                .get(key)
                .map_err(|e| store.redb(e))?
                .map(|v| v.value().to_vec())
                .unwrap();
            change(&mut bytes);
            table
                .insert(key, bytes.as_slice())
                .map_err(|e| store.redb(e))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[test]
fn a_changed_server_name_is_reported_with_the_sample_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.redb");
    let store = Store::open(&path).unwrap();
    store.append(&success(1_795_546_073_292, 1.0)).unwrap();
    // Entry 0 is the server: "Zzoomm Plc" becomes "Zzoomn Plc".
    tamper(&store, DICTIONARY, 0, |bytes| {
        let at = bytes.windows(6).position(|w| w == b"Zzoomm").unwrap();
        bytes[at + 5] = b'n';
    });
    drop(store);
    let store = Store::open(&path).unwrap();
    let err = store.latest().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Decode {
                cause: DecodeError::Checksum,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "database {} is damaged (the sample at 2026-11-24T18:47:53.292Z: its checksum does not match its time, record and server/ISP/engine entries: something changed it after it was written); it was left as it is: restore it from a backup or an export, or pass another --db",
            path.display()
        )
    );
}

#[test]
fn a_changed_figure_is_detected() {
    let (_dir, store) = temp_store();
    store.append(&success(5, 1_000_000.0)).unwrap();
    tamper(&store, SAMPLES, 5, |bytes| bytes[3] ^= 0x04);
    let err = store
        .range(Timestamp::from_millis(0), Timestamp::from_millis(10))
        .unwrap_err();
    assert!(matches!(err, StoreError::Decode { .. }), "{err}");
}

#[test]
fn a_damaged_dictionary_index_never_redirects_a_new_sample() {
    let (_dir, store) = temp_store();
    store.append(&success(1, 1.0)).unwrap();
    // The index now says the server's bytes are entry 1, which is the ISP.
    store
        .write(|txn| {
            let mut index = txn
                .open_table(DICTIONARY_INDEX)
                .map_err(|e| store.redb(e))?;
            let keys: Vec<Vec<u8>> = index
                .iter()
                .map_err(|e| store.redb(e))?
                .map(|entry| entry.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|e| store.redb(e))?;
            for key in keys {
                index.insert(key.as_slice(), 1).map_err(|e| store.redb(e))?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    store.append(&success(2, 2.0)).unwrap();
    assert_eq!(store.latest().unwrap(), Some(success(2, 2.0)));
}

/// Deletes a sample behind the store's back, as a damaged index that skips it would hide it.
fn hide(store: &Store, millis: u64) {
    store
        .write(|txn| {
            let mut samples = txn.open_table(SAMPLES).map_err(|e| store.redb(e))?;
            samples.remove(millis).map_err(|e| store.redb(e))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[test]
fn a_sample_the_index_skips_is_reported_in_every_direction() {
    // (The newest sample cannot be hidden this way: nothing names it, and an index that
    // skipped it would still lead to it as the table's last.)
    for hidden in [10, 50] {
        let (_dir, store) = temp_store();
        for millis in (10..=90).step_by(10) {
            store.append(&success(millis, 1.0)).unwrap();
        }
        hide(&store, hidden);
        let all = (Timestamp::from_millis(0), Timestamp::from_millis(1_000));
        let around = (
            Timestamp::from_millis(hidden.saturating_sub(15)),
            Timestamp::from_millis(hidden + 15),
        );
        for (from, to) in [all, around] {
            let err = store.range(from, to).unwrap_err();
            assert!(
                err.to_string().contains("its index skips the sample at")
                    || err
                        .to_string()
                        .contains("its index does not lead to its newest sample"),
                "{hidden}: {err}"
            );
            assert!(
                store.newest_first(from, to, 100).is_err(),
                "{hidden}, newest first"
            );
        }
        // A window that ends just before the hidden sample sees the sample after it say so.
        let before = store.range(Timestamp::from_millis(0), Timestamp::from_millis(hidden));
        assert!(before.is_err(), "{hidden}: {before:?}");
    }
}

#[test]
fn retention_and_imports_keep_the_links_right() {
    let (_dir, store) = temp_store();
    for millis in [50, 10, 30, 20, 40] {
        store.append(&success(millis, 1.0)).unwrap();
    }
    let batch = [success(25, 1.0), success(5, 1.0), success(60, 1.0)];
    store
        .import(batch.iter().cloned().map(Ok::<_, StoreError>))
        .unwrap();
    assert_eq!(
        store
            .delete_before(Timestamp::from_millis(15), 100)
            .unwrap(),
        2
    );
    let times: Vec<u64> = store
        .range(Timestamp::from_millis(0), Timestamp::from_millis(100))
        .unwrap()
        .iter()
        .map(|s| s.time.as_millis())
        .collect();
    assert_eq!(times, vec![20, 25, 30, 40, 50, 60]);
    for from in 0..70 {
        for to in from..70 {
            let window = (Timestamp::from_millis(from), Timestamp::from_millis(to));
            store.range(window.0, window.1).unwrap();
            store.newest_first(window.0, window.1, 3).unwrap();
        }
    }
}

#[test]
fn an_error_names_its_cause_as_its_source_and_the_exit_line_says_it_once() {
    let cause = || io::Error::from(io::ErrorKind::PermissionDenied);
    let err = StoreError::Open {
        path: PathBuf::from("/x/im.redb"),
        cause: cause(),
    };
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source, Some(cause().to_string()));
    let line = crate::logging::error_chain(&anyhow::Error::new(err));
    assert_eq!(line.matches(&cause().to_string()).count(), 1, "{line}");
}

#[test]
fn an_sqlite_database_is_named_with_the_command_that_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("internet-monitor.db");
    let mut content = b"SQLite format 3\0".to_vec();
    content.extend_from_slice(&[0; 4080]);
    std::fs::write(&path, &content).unwrap();
    let errors = [
        Store::open(&path).err(),
        Store::open_read_only(&path).err(),
        Store::check(&path).err(),
    ];
    for err in errors {
        let err = err.expect("must be refused");
        assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("bring its history over with `internet-monitor import --from-original"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

/// The command the SQLite refusal suggests is pasted into a shell: its path is one word there.
#[test]
fn the_suggested_command_quotes_its_path_for_a_shell() {
    for (path, word) in [
        ("internet-monitor.db", "internet-monitor.db"),
        ("/data/old app.db", "'/data/old app.db'"),
        ("$(touch PWNED).db", "'$(touch PWNED).db'"),
        ("it's.db", "'it'\\''s.db'"),
        ("-rf.db", "./-rf.db"),
        ("a;b\n.db", "'a;b\\n.db'"),
    ] {
        assert_eq!(
            super::shell_word(std::path::Path::new(path)),
            word,
            "{path}"
        );
    }
}
