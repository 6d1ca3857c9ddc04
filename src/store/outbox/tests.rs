//! The remote_write outbox against real redb files in a temporary directory: queuing with
//! `append` (and never with `import`), reading, removing, retention, damage, old files.

use std::path::Path;

use super::*;
use crate::sample::{FailureReason, Sample, Trigger};

/// 2026-11-30T12:00:00Z.
const NOON: u64 = 1_796_040_000_000;

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_millis(NOON + seconds * 1000)
}

fn success(time: Timestamp) -> Sample {
    Sample {
        download_bytes_per_second: Some(92_727_670.0),
        ..Sample::empty(time, Trigger::Schedule)
    }
}

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("outbox.redb")).unwrap();
    (dir, store)
}

fn has_outbox_table(store: &Store) -> bool {
    let txn = store.begin_read().unwrap();
    store.outbox_table(&txn).unwrap().is_some()
}

/// Writes `bytes` at `key` of the outbox table as they are (damage).
fn put_raw(store: &Store, key: u64, bytes: &[u8]) {
    store
        .write(|txn| {
            let mut table = txn.open_table(OUTBOX).map_err(|e| store.redb(e))?;
            table.insert(key, bytes).map_err(|e| store.redb(e))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[test]
fn a_record_reads_back_and_any_changed_byte_or_key_is_detected() {
    let entry = OutboxEntry {
        time: Timestamp::from_millis(1_795_546_073_292),
        queued: Timestamp::from_millis(1_795_546_100_000),
    };
    let key = entry.time.as_millis();
    let bytes = encode_outbox_record(&entry);
    assert_eq!(decode_outbox_record(key, &bytes), Ok(entry));
    for at in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut changed = bytes.clone();
            changed[at] ^= flip;
            assert!(
                decode_outbox_record(key, &changed).is_err(),
                "byte {at} ^ {flip:#x}"
            );
        }
    }
    for cut in 0..bytes.len() {
        assert!(
            decode_outbox_record(key, &bytes[..cut]).is_err(),
            "cut {cut}"
        );
    }
    assert_eq!(
        decode_outbox_record(key + 1, &bytes),
        Err(DecodeError::RecordChecksum),
        "moved to another key"
    );
    let mut newer = bytes.clone();
    newer[0] = 2;
    assert_eq!(
        decode_outbox_record(key, &newer),
        Err(DecodeError::UnknownVersion(2))
    );
    // A key at or past the end of time is refused, checksum or not.
    let far = Timestamp::MAX.as_millis();
    let sealed = seal(far, {
        let mut record = vec![OUTBOX_RECORD_VERSION];
        put_varint(&mut record, 1);
        record
    });
    assert_eq!(
        decode_outbox_record(far, &sealed),
        Err(DecodeError::Malformed)
    );
}

#[test]
fn append_queues_only_while_on_and_import_never() {
    let (_dir, store) = temp_store();
    store.append(&success(at(0))).unwrap();
    assert!(!has_outbox_table(&store), "off by default: nothing created");
    assert_eq!(store.outbox_stats().unwrap(), OutboxStats::default());

    store.set_outbox(true);
    assert!(store.outbox_on());
    let first = store.append(&success(at(10))).unwrap();
    // The same millisecond again: stored (and queued) at the next free one.
    let moved = store.append(&success(at(10))).unwrap();
    assert_eq!(moved.time, Timestamp::from_millis(at(10).as_millis() + 1));
    let failure = Sample::failure(at(5), Trigger::Manual, FailureReason::Timeout, "slow");
    store.append(&failure).unwrap();
    store
        .import([at(20), at(1)].map(|time| Ok::<_, StoreError>(success(time))))
        .unwrap();
    assert_eq!(
        store.outbox_pending(100).unwrap(),
        vec![at(5), first.time, moved.time],
        "oldest first; imported samples and the one stored while off are not queued"
    );
    assert_eq!(
        store.outbox_stats().unwrap(),
        OutboxStats {
            pending: 3,
            oldest: Some(at(5)),
        }
    );
    store.set_outbox(false);
    store.append(&success(at(30))).unwrap();
    assert_eq!(store.outbox_stats().unwrap().pending, 3);
}

#[test]
fn a_failed_append_queues_nothing() {
    let (_dir, store) = temp_store();
    store.set_outbox(true);
    let beyond = success(Timestamp::MAX);
    assert!(matches!(
        store.append(&beyond),
        Err(StoreError::OutOfRange { .. })
    ));
    assert_eq!(store.outbox_stats().unwrap(), OutboxStats::default());
    assert_eq!(store.len().unwrap(), 0);
}

#[test]
fn pending_is_bounded_and_remove_counts_what_was_there() {
    let (dir, store) = temp_store();
    store.set_outbox(true);
    let times: Vec<Timestamp> = (0..5)
        .map(|i| store.append(&success(at(i))).unwrap().time)
        .collect();
    assert_eq!(store.outbox_pending(0).unwrap(), Vec::<Timestamp>::new());
    assert_eq!(store.outbox_pending(2).unwrap(), times[..2].to_vec());
    // Two queued, one never queued, one twice.
    assert_eq!(
        store
            .outbox_remove(&[times[0], times[3], at(99), times[3]])
            .unwrap(),
        2
    );
    assert_eq!(store.outbox_remove(&[times[0]]).unwrap(), 0);
    assert_eq!(store.outbox_remove(&[]).unwrap(), 0);
    assert_eq!(
        store.outbox_pending(100).unwrap(),
        vec![times[1], times[2], times[4]]
    );
    // Durable: a reopened file says the same.
    drop(store);
    let store = Store::open(&dir.path().join("outbox.redb")).unwrap();
    assert!(!store.outbox_on(), "off again after opening");
    assert_eq!(
        store.outbox_stats().unwrap(),
        OutboxStats {
            pending: 3,
            oldest: Some(times[1]),
        }
    );
    assert_eq!(
        store
            .outbox_remove(&[times[1], times[2], times[4]])
            .unwrap(),
        3
    );
    assert_eq!(store.outbox_stats().unwrap(), OutboxStats::default());
}

#[test]
fn remove_on_a_file_without_the_table_creates_nothing() {
    let (_dir, store) = temp_store();
    store.append(&success(at(0))).unwrap();
    assert_eq!(store.outbox_remove(&[at(0)]).unwrap(), 0);
    assert_eq!(store.outbox_pending(10).unwrap(), Vec::<Timestamp>::new());
    assert!(!has_outbox_table(&store));
}

#[test]
fn retention_leaves_the_entries_for_the_pusher_to_expire() {
    let (_dir, store) = temp_store();
    store.set_outbox(true);
    for i in 0..4 {
        store.append(&success(at(i))).unwrap();
    }
    assert_eq!(store.delete_before(at(2), 100).unwrap(), 2);
    assert_eq!(store.range(Timestamp::EPOCH, at(2)).unwrap(), Vec::new());
    // Still queued: the pusher finds no sample there, removes the entry, counts it expired.
    assert_eq!(
        store.outbox_pending(100).unwrap(),
        vec![at(0), at(1), at(2), at(3)]
    );
}

#[test]
fn a_damaged_entry_is_left_out_of_pending_and_db_check_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.redb");
    let store = Store::open(&path).unwrap();
    store.set_outbox(true);
    for i in 0..3 {
        store.append(&success(at(i))).unwrap();
    }
    drop(store);
    let report = Store::check(&path).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.outbox_pending, 3);

    let store = Store::open(&path).unwrap();
    let mut damaged = encode_outbox_record(&OutboxEntry {
        time: at(1),
        queued: at(1),
    });
    damaged[1] ^= 0x01;
    put_raw(&store, at(1).as_millis(), &damaged);
    // A record moved to another key (its checksum covers the key).
    put_raw(
        &store,
        at(7).as_millis(),
        &encode_outbox_record(&OutboxEntry {
            time: at(8),
            queued: at(8),
        }),
    );
    assert_eq!(
        store.outbox_pending(100).unwrap(),
        vec![at(0), at(2)],
        "damage is never pushed on its word"
    );
    assert_eq!(store.outbox_pending(1).unwrap(), vec![at(0)]);
    let stats = store.outbox_stats().unwrap();
    assert_eq!(
        stats.pending, 4,
        "damaged entries stay counted until restored"
    );
    assert_eq!(stats.oldest, Some(at(0)));
    drop(store);

    let report = Store::check(&path).unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.outbox_pending, 4);
    let findings: Vec<&String> = report
        .structure
        .iter()
        .filter(|f| f.contains("remote_write outbox entry"))
        .collect();
    assert_eq!(findings.len(), 2, "{:?}", report.structure);
    assert!(
        findings[0].contains(&at(1).to_string()) && findings[0].contains("checksum"),
        "{}",
        findings[0]
    );
    assert!(findings[1].contains(&at(7).to_string()), "{}", findings[1]);
}

#[test]
fn a_damaged_oldest_entry_does_not_hide_the_next() {
    let (_dir, store) = temp_store();
    store.set_outbox(true);
    store.append(&success(at(3))).unwrap();
    put_raw(&store, at(1).as_millis(), &[OUTBOX_RECORD_VERSION]);
    assert_eq!(
        store.outbox_stats().unwrap(),
        OutboxStats {
            pending: 2,
            oldest: Some(at(3)),
        }
    );
}

/// The committed file of the last version before engines (no outbox table) opens as before,
/// queues nothing until asked, and takes the table on its first queued sample.
#[test]
fn a_file_written_before_the_outbox_works_and_gets_the_table_on_first_use() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stores/format-v2.redb");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    std::fs::copy(&fixture, &path).unwrap();
    let store = Store::open(&path).unwrap();
    let before = store.len().unwrap();
    assert_eq!(before, 6);
    assert!(!has_outbox_table(&store));
    assert_eq!(store.outbox_stats().unwrap(), OutboxStats::default());
    assert_eq!(store.outbox_pending(10).unwrap(), Vec::<Timestamp>::new());
    store.set_outbox(true);
    let stored = store.append(&success(at(0))).unwrap();
    assert_eq!(store.outbox_pending(10).unwrap(), vec![stored.time]);
    assert_eq!(store.len().unwrap(), before + 1);
    drop(store);
    let report = Store::check(&path).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.outbox_pending, 1);
    assert_eq!(report.samples, before + 1);
}
