//! The connectivity monitor's records and tables: codecs, damage, downsampling, retention and
//! the overlap queries, against real redb files in a temporary directory.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

/// 2026-11-30T12:00:00Z, a whole 10 minutes.
const NOON: u64 = 1_796_040_000_000;

fn at(minutes: u64) -> Timestamp {
    Timestamp::from_millis(NOON + minutes * MINUTE_MS)
}

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("probes.redb")).unwrap();
    (dir, store)
}

fn target(kind: TargetKind, address: &str, method: ProbeMethod) -> Target {
    Target {
        kind,
        address: address.parse::<IpAddr>().unwrap(),
        method,
    }
}

fn defaults() -> Vec<Target> {
    vec![
        target(
            TargetKind::Gateway,
            "192.168.1.1",
            ProbeMethod::IcmpUnprivileged,
        ),
        target(TargetKind::Public, "1.1.1.1", ProbeMethod::IcmpUnprivileged),
        target(TargetKind::Public, "8.8.8.8", ProbeMethod::IcmpRaw),
        target(
            TargetKind::Public,
            "2620:fe::fe",
            ProbeMethod::TcpConnect { port: 443 },
        ),
    ]
}

fn answered(target: TargetId, sent: u32, lost: u32, rtt: (u64, u64, u64)) -> ProbeStats {
    ProbeStats {
        target,
        sent,
        lost,
        rtt_min_us: Some(rtt.0),
        rtt_median_us: Some(rtt.1),
        rtt_max_us: Some(rtt.2),
        under_load_minutes: 0,
    }
}

fn all_lost(target: TargetId, sent: u32) -> ProbeStats {
    ProbeStats {
        target,
        sent,
        lost: sent,
        rtt_min_us: None,
        rtt_median_us: None,
        rtt_max_us: None,
        under_load_minutes: 0,
    }
}

fn minute(minutes: u64, stats: Vec<ProbeStats>) -> ProbeRow {
    ProbeRow {
        start: at(minutes),
        minutes: 1,
        stats,
    }
}

fn sample_minute() -> ProbeRow {
    minute(
        3,
        vec![
            ProbeStats {
                under_load_minutes: 1,
                ..answered(0, 6, 0, (812, 1_004, 3_950))
            },
            answered(1, 6, 1, (9_870, 11_200, 48_001)),
            all_lost(2, 6),
            answered(7, 600, 0, (0, 0, 0)),
        ],
    )
}

fn outage(start: Timestamp, end: Option<Timestamp>, kind: OutageKind) -> Outage {
    Outage {
        start,
        end,
        kind,
        unmonitored: Duration::ZERO,
        restarts: 0,
    }
}

/// A monitor run from minute `start` to minute `end` (`None`: stopped before its first
/// heartbeat, or still running).
fn run(start: u64, end: Option<u64>) -> Run {
    Run {
        start: at(start),
        end: end.map(at),
    }
}

/// Writes `row` alone (no outages, no run).
fn write_minute(store: &Store, row: ProbeRow) {
    store
        .write_probes(&ProbeWrite {
            minute: Some(row),
            ..ProbeWrite::default()
        })
        .unwrap();
}

/// Every stored minute row and bucket, oldest first.
fn all_rows(store: &Store) -> Vec<ProbeRow> {
    let mut rows = Vec::new();
    store
        .probe_rows(Timestamp::EPOCH, Timestamp::MAX, &mut |row| {
            rows.push(row.clone())
        })
        .unwrap();
    rows
}

/// Every stored outage, oldest first.
fn all_outages(store: &Store) -> Vec<Outage> {
    store.outages(Timestamp::EPOCH, Timestamp::MAX).unwrap()
}

/// Every stored monitor run, oldest first.
fn all_runs(store: &Store) -> Vec<Run> {
    store
        .monitor_runs(Timestamp::EPOCH, Timestamp::MAX)
        .unwrap()
}

/// Every kind of record this module writes, with its key and a name for seeds and messages.
fn every_record() -> Vec<(&'static str, u64, Vec<u8>)> {
    let gateway = StoredTarget {
        id: 0,
        target: defaults()[0],
    };
    let v6 = StoredTarget {
        id: 3,
        target: defaults()[3],
    };
    let bucket = fold(at(0), &[sample_minute()]);
    let resumed = Outage {
        unmonitored: Duration::from_millis(93_250),
        restarts: 2,
        ..outage(at(4), None, OutageKind::Local)
    };
    let closed = outage(at(1), Some(plus(at(1), 35_127)), OutageKind::Isp);
    vec![
        ("target-gateway", 0, encode_target(&gateway)),
        ("target-v6-tcp", 3, encode_target(&v6)),
        ("minute", at(3).as_millis(), encode_row(&sample_minute())),
        ("bucket", at(0).as_millis(), encode_row(&bucket)),
        ("outage-ongoing", at(4).as_millis(), encode_outage(&resumed)),
        ("outage-closed", at(1).as_millis(), encode_outage(&closed)),
        ("run", at(0).as_millis(), encode_run(&run(0, Some(90)))),
    ]
}

/// `time` plus `millis` ms.
fn plus(time: Timestamp, millis: u64) -> Timestamp {
    Timestamp::from_millis(time.as_millis() + millis)
}

/// Decodes `bytes` at `key` with each of the five decoders: `Ok` if one accepts it.
fn decode_any(key: u64, bytes: &[u8]) -> Result<(), DecodeError> {
    decode_target(key, bytes)
        .map(drop)
        .or_else(|_| decode_minute(key, bytes).map(drop))
        .or_else(|_| decode_bucket(key, bytes).map(drop))
        .or_else(|_| decode_outage(key, bytes).map(drop))
        .or_else(|_| decode_run(key, bytes).map(drop))
}

/// Which decoder reads which seed, to check each record reads back as written.
fn decodes_as_written(name: &str, key: u64, bytes: &[u8]) -> bool {
    match name {
        n if n.starts_with("target") => {
            decode_target(key, bytes).map(|t| encode_target(&t)) == Ok(bytes.to_vec())
        }
        "minute" => decode_minute(key, bytes).map(|r| encode_row(&r)) == Ok(bytes.to_vec()),
        "bucket" => decode_bucket(key, bytes).map(|r| encode_row(&r)) == Ok(bytes.to_vec()),
        n if n.starts_with("outage") => {
            decode_outage(key, bytes).map(|o| encode_outage(&o)) == Ok(bytes.to_vec())
        }
        _ => decode_run(key, bytes).map(|r| encode_run(&r)) == Ok(bytes.to_vec()),
    }
}

/// The fuzz target `probe_record`'s seeds: the key (u64 little-endian) then a record of any
/// of the five tables. Each must decode, so that the fuzzer starts from records this program
/// writes; `UPDATE_FUZZ_SEEDS=1` rewrites them from [`every_record`].
#[test]
fn fuzz_seeds_decode() {
    super::super::keyed::check_fuzz_seeds("probe_record", every_record, decode_any);
}

#[test]
fn every_record_round_trips() {
    for (name, key, bytes) in every_record() {
        assert_eq!(bytes[0], PROBE_RECORD_VERSION, "{name}");
        assert!(decodes_as_written(name, key, &bytes), "{name}");
    }
    assert_eq!(
        decode_minute(at(3).as_millis(), &encode_row(&sample_minute())),
        Ok(sample_minute())
    );
    let v6 = StoredTarget {
        id: 3,
        target: defaults()[3],
    };
    assert_eq!(decode_target(3, &encode_target(&v6)), Ok(v6));
    let ongoing = Outage {
        unmonitored: Duration::from_millis(93_250),
        restarts: 2,
        ..outage(at(4), None, OutageKind::Local)
    };
    assert_eq!(
        decode_outage(at(4).as_millis(), &encode_outage(&ongoing)),
        Ok(ongoing)
    );
    // An end equal to the start is a known end (delta 1), not "ongoing" (delta 0).
    let instant = outage(at(4), Some(at(4)), OutageKind::Isp);
    assert_eq!(
        decode_outage(at(4).as_millis(), &encode_outage(&instant)),
        Ok(instant)
    );
    let running = run(2, None);
    assert_eq!(
        decode_run(at(2).as_millis(), &encode_run(&running)),
        Ok(running)
    );
}

#[test]
fn every_changed_byte_and_every_truncation_is_detected() {
    for (name, key, bytes) in every_record() {
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                assert!(
                    decode_any(key, &damaged).is_err(),
                    "{name}: byte {i} ^ {flip:#x} went unnoticed"
                );
            }
        }
        for len in 0..bytes.len() {
            assert!(
                decode_any(key, &bytes[..len]).is_err(),
                "{name}: truncated to {len} bytes went unnoticed"
            );
        }
    }
}

#[test]
fn a_moved_or_foreign_version_record_is_refused() {
    for (name, key, bytes) in every_record() {
        // Moved to the next key, or to the next minute / bucket / target.
        for moved in [key + 1, key + MINUTE_MS, key + BUCKET_MS, key ^ 1] {
            assert!(
                decode_any(moved, &bytes).is_err(),
                "{name} moved to {moved}"
            );
        }
        // A newer version's record, its checksum intact: refused, not read as version 1.
        let mut newer = bytes[..bytes.len() - 4].to_vec();
        newer[0] = 2;
        let newer = seal(key, newer);
        assert_eq!(
            decode_run(key, &newer),
            Err(DecodeError::UnknownVersion(2)),
            "{name}"
        );
        assert_eq!(
            decode_minute(key, &newer),
            Err(DecodeError::UnknownVersion(2)),
            "{name}"
        );
        assert_eq!(
            decode_target(key, &newer),
            Err(DecodeError::UnknownVersion(2)),
            "{name}"
        );
    }
    let minute = sample_minute();
    let bytes = encode_row(&minute);
    assert_eq!(
        decode_minute(minute.start.as_millis() + MINUTE_MS, &bytes),
        Err(DecodeError::RecordChecksum)
    );
    // Sealed at a key that is not a whole minute: refused even with a good checksum.
    assert_eq!(
        decode_minute(
            minute.start.as_millis() + 1,
            &seal(
                minute.start.as_millis() + 1,
                bytes[..bytes.len() - 4].to_vec()
            )
        ),
        Err(DecodeError::Malformed)
    );
}

#[test]
fn records_breaking_their_bounds_are_malformed_even_with_a_good_checksum() {
    let key = at(0).as_millis();
    let sealed = |fields: &[u8]| {
        let mut record = vec![PROBE_RECORD_VERSION];
        record.extend_from_slice(fields);
        seal(key, record)
    };
    // One target: id 0, flags, sent 2, lost 3 (more lost than sent).
    assert_eq!(
        decode_minute(key, &sealed(&[1, 0, 0, 2, 3])),
        Err(DecodeError::Malformed)
    );
    // Two targets with the same id.
    assert_eq!(
        decode_minute(key, &sealed(&[2, 5, 0, 1, 1, 5, 0, 1, 1])),
        Err(DecodeError::Malformed)
    );
    // An unknown flag bit.
    assert_eq!(
        decode_minute(key, &sealed(&[1, 0, 4, 1, 1])),
        Err(DecodeError::Malformed)
    );
    // A bucket with 11 minutes under load.
    assert_eq!(
        decode_bucket(key, &sealed(&[1, 0, 0, 1, 1, 11])),
        Err(DecodeError::Malformed)
    );
    // A bucket with flag bit 0 (a minute's "under load").
    assert_eq!(
        decode_bucket(key, &sealed(&[1, 0, 1, 1, 1, 0])),
        Err(DecodeError::Malformed)
    );
    // Trailing bytes.
    assert_eq!(
        decode_minute(key, &sealed(&[1, 0, 0, 1, 1, 9])),
        Err(DecodeError::Malformed)
    );
    // An outage of kind 2; an ICMP target with a port; an address of 5 bytes.
    assert_eq!(
        decode_outage(key, &sealed(&[2, 0, 0, 0])),
        Err(DecodeError::Malformed)
    );
    let target = |fields: &[u8]| {
        let mut record = vec![PROBE_RECORD_VERSION];
        record.extend_from_slice(fields);
        decode_target(1, &seal(1, record))
    };
    assert_eq!(
        target(&[0, 0, 53, 4, 10, 0, 0, 1]),
        Err(DecodeError::Malformed)
    );
    assert_eq!(
        target(&[0, 2, 53, 5, 10, 0, 0, 1, 1]),
        Err(DecodeError::Malformed)
    );
    assert!(target(&[0, 2, 53, 4, 10, 0, 0, 1]).is_ok());
}

proptest! {
    #[test]
    fn any_valid_row_round_trips(
        start in 0u64..40_000_000,
        bucket in any::<bool>(),
        stats in proptest::collection::vec(
            (0u32..5, 0u32..700, 0u32..700, proptest::option::of((0u64..1 << 40, 0u64..1 << 30, 0u64..1 << 30)), 0u32..=10),
            0..6,
        ),
    ) {
        let minutes = if bucket { BUCKET_MINUTES } else { 1 };
        let mut id = 0;
        let stats: Vec<ProbeStats> = stats
            .into_iter()
            .map(|(gap, sent, lost, rtt, under)| {
                id += gap + 1;
                ProbeStats {
                    target: id,
                    sent: sent.max(lost),
                    lost: lost.min(sent),
                    rtt_min_us: rtt.map(|(min, _, _)| min),
                    rtt_median_us: rtt.map(|(min, d, _)| min + d),
                    rtt_max_us: rtt.map(|(min, d, e)| min + d + e),
                    under_load_minutes: under.min(minutes),
                }
            })
            .collect();
        let row = ProbeRow {
            start: Timestamp::from_millis(start * u64::from(minutes) * MINUTE_MS),
            minutes,
            stats,
        };
        let bytes = encode_row(&row);
        let key = row.start.as_millis();
        let decoded = if bucket { decode_bucket(key, &bytes) } else { decode_minute(key, &bytes) };
        prop_assert_eq!(decoded, Ok(row));
    }

    #[test]
    fn any_outage_round_trips(
        start in 0u64..250_000_000_000_000,
        length in proptest::option::of(0u64..1 << 40),
        unmonitored in 0u64..1 << 40,
        restarts in any::<u32>(),
        local in any::<bool>(),
    ) {
        let outage = Outage {
            start: Timestamp::from_millis(start),
            end: length.map(|l| Timestamp::from_millis(start + l)),
            kind: if local { OutageKind::Local } else { OutageKind::Isp },
            unmonitored: Duration::from_millis(unmonitored),
            restarts,
        };
        prop_assert_eq!(decode_outage(start, &encode_outage(&outage)), Ok(outage));
    }
}

/// The names of the tables in the file.
fn tables(store: &Store) -> Vec<String> {
    let txn = store.begin_read().unwrap();
    txn.list_tables()
        .unwrap()
        .map(|t| t.name().to_string())
        .collect()
}

#[test]
fn a_store_without_the_tables_reads_as_no_probe_data_and_is_not_changed() {
    let (_dir, store) = temp_store();
    let before = tables(&store);
    assert!(
        !before.iter().any(|name| name.contains("probe")),
        "{before:?}"
    );
    assert_eq!(store.probe_targets().unwrap(), vec![]);
    assert_eq!(all_outages(&store), vec![]);
    assert_eq!(all_runs(&store), vec![]);
    assert_eq!(store.last_monitor_run().unwrap(), None);
    assert_eq!(store.open_outage().unwrap(), None);
    let mut rows = 0;
    store
        .probe_rows(Timestamp::EPOCH, Timestamp::MAX, &mut |_| rows += 1)
        .unwrap();
    assert_eq!(rows, 0);
    // Nothing to fold, nothing to delete, an empty write: no transaction, no table created.
    assert_eq!(store.downsample_probes(Timestamp::MAX, 100).unwrap(), 0);
    assert_eq!(store.delete_probes_before(Timestamp::MAX, 100).unwrap(), 0);
    store.write_probes(&ProbeWrite::default()).unwrap();
    assert_eq!(tables(&store), before);
    // A read-only handle on such a file reads the same.
    let path = store.path().to_path_buf();
    drop(store);
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.probe_targets().unwrap(), vec![]);
    assert_eq!(reader.open_outage().unwrap(), None);
}

#[test]
fn targets_get_dense_ids_are_found_again_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probes.redb");
    let store = Store::open(&path).unwrap();
    let targets = defaults();
    let first = store.register_probe_targets(&targets[..2]).unwrap();
    assert_eq!(first.iter().map(|t| t.id).collect::<Vec<_>>(), [0, 1]);
    // Found again in any order, new ones get the next ids, a repeated one its one id.
    let again = store
        .register_probe_targets(&[targets[3], targets[1], targets[0], targets[2], targets[3]])
        .unwrap();
    assert_eq!(
        again.iter().map(|t| t.id).collect::<Vec<_>>(),
        [2, 1, 0, 3, 2]
    );
    assert_eq!(again[0].target, targets[3]);
    // Another method or kind is another target.
    let tcp = Target {
        method: ProbeMethod::TcpConnect { port: 53 },
        ..targets[1]
    };
    assert_eq!(store.register_probe_targets(&[tcp]).unwrap()[0].id, 4);
    drop(store);
    let store = Store::open(&path).unwrap();
    let stored = store.probe_targets().unwrap();
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[2].target, targets[3]);
    assert_eq!(store.register_probe_targets(&targets).unwrap()[3].id, 2);
    // Up to the bound, then refused, with nothing added.
    let many: Vec<Target> = (0..MAX_PROBE_TARGETS as u32 - 5)
        .map(|i| Target {
            address: IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
            ..targets[1]
        })
        .collect();
    let added = store.register_probe_targets(&many).unwrap();
    assert_eq!(added.last().unwrap().id, MAX_PROBE_TARGETS as u32 - 1);
    let one_more = Target {
        address: "10.255.255.255".parse().unwrap(),
        ..targets[1]
    };
    let refused = store
        .register_probe_targets(&[targets[0], one_more])
        .unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::ProbeLimit {
                max: MAX_PROBE_TARGETS,
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("10000 probe targets"),
        "{refused}"
    );
    assert_eq!(
        store.probe_targets().unwrap().len() as u64,
        MAX_PROBE_TARGETS
    );
    // Known ones are still found.
    assert_eq!(
        store.register_probe_targets(&[targets[2]]).unwrap()[0].id,
        3
    );
}

#[test]
fn a_write_is_one_transaction_and_reads_back() {
    let (_dir, store) = temp_store();
    let run = run(0, Some(4));
    let open = outage(at(2), None, OutageKind::Isp);
    store
        .write_probes(&ProbeWrite {
            minute: Some(sample_minute()),
            outages: vec![open],
            run: Some(run),
        })
        .unwrap();
    let rows = all_rows(&store);
    assert_eq!(rows, vec![sample_minute()]);
    assert_eq!(store.open_outage().unwrap(), Some(open));
    assert_eq!(store.last_monitor_run().unwrap(), Some(run));
    // The heartbeat moves the run's end; closing the outage replaces its record.
    let closed = Outage {
        end: Some(at(5)),
        ..open
    };
    let later = Run {
        end: Some(at(6)),
        ..run
    };
    store
        .write_probes(&ProbeWrite {
            minute: None,
            outages: vec![closed],
            run: Some(later),
        })
        .unwrap();
    assert_eq!(store.open_outage().unwrap(), None);
    assert_eq!(all_outages(&store), vec![closed]);
    assert_eq!(all_runs(&store), vec![later]);
    // A write with one bad part stores nothing of it.
    let bad_rows = [
        ProbeRow {
            stats: vec![ProbeStats {
                lost: 7,
                ..all_lost(0, 6)
            }],
            ..minute(9, vec![])
        },
        ProbeRow {
            start: plus(at(9), 1),
            ..minute(9, vec![])
        },
        minute(9, vec![all_lost(3, 6), all_lost(1, 6)]),
        minute(
            9,
            vec![ProbeStats {
                rtt_median_us: None,
                ..answered(0, 6, 0, (1, 2, 3))
            }],
        ),
        minute(9, vec![answered(0, 6, 0, (5, 2, 9))]),
        ProbeRow {
            minutes: BUCKET_MINUTES,
            ..minute(10, vec![])
        },
    ];
    for bad in bad_rows {
        let refused = store
            .write_probes(&ProbeWrite {
                minute: Some(bad.clone()),
                outages: vec![outage(at(20), None, OutageKind::Local)],
                run: None,
            })
            .unwrap_err();
        assert!(
            matches!(refused, StoreError::ProbeInvalid { .. }),
            "{bad:?}: {refused}"
        );
    }
    let backwards = store
        .write_probes(&ProbeWrite {
            outages: vec![outage(at(20), Some(at(19)), OutageKind::Local)],
            ..ProbeWrite::default()
        })
        .unwrap_err();
    assert!(
        matches!(backwards, StoreError::ProbeInvalid { .. }),
        "{backwards}"
    );
    assert_eq!(store.open_outage().unwrap(), None);
    let mut count = 0;
    store
        .probe_rows(Timestamp::EPOCH, Timestamp::MAX, &mut |_| count += 1)
        .unwrap();
    assert_eq!(count, 1);
}

#[test]
fn outages_and_runs_overlapping_a_window_include_those_that_started_before_it() {
    let (_dir, store) = temp_store();
    let a = outage(at(0), Some(at(10)), OutageKind::Isp);
    let b = outage(at(20), Some(at(30)), OutageKind::Local);
    // A kind switch: b' closes where c opens.
    let c = outage(at(30), None, OutageKind::Isp);
    let runs = [run(0, Some(25)), run(28, Some(100))];
    store
        .write_probes(&ProbeWrite {
            outages: vec![a, b, c],
            run: Some(runs[0]),
            ..ProbeWrite::default()
        })
        .unwrap();
    store
        .write_probes(&ProbeWrite {
            run: Some(runs[1]),
            ..ProbeWrite::default()
        })
        .unwrap();
    let window = |from: u64, to: u64| store.outages(at(from), at(to)).unwrap();
    assert_eq!(window(5, 25), vec![a, b]);
    assert_eq!(window(25, 29), vec![b]);
    // An outage ending at `from` does not overlap (ends are exclusive).
    assert_eq!(window(10, 20), vec![]);
    assert_eq!(window(12, 18), vec![]);
    // The ongoing one overlaps everything after its start, however far.
    assert_eq!(window(500, 600), vec![c]);
    assert_eq!(window(25, 31), vec![b, c]);
    assert_eq!(window(0, 1), vec![a]);
    assert_eq!(window(7, 7), vec![]);
    let runs_in = |from: u64, to: u64| store.monitor_runs(at(from), at(to)).unwrap();
    assert_eq!(runs_in(26, 27), vec![]);
    assert_eq!(runs_in(24, 29), runs.to_vec());
    assert_eq!(runs_in(50, 60), vec![runs[1]]);
    assert_eq!(runs_in(100, 200), vec![]);
    assert_eq!(store.open_outage().unwrap(), Some(c));
}

/// Ten minutes of two targets folded by hand: every rule of the bucket checked against
/// figures worked out on paper.
#[test]
fn downsampling_folds_whole_buckets_as_computed_by_hand() {
    let (_dir, store) = temp_store();
    // Target 0: six probes a minute; minute 3 lost everything, minute 5 lost one, minutes 2
    // and 3 under load. Target 1 probed in minutes 0..4 only.
    let medians = [
        1_100, 1_300, 9_000, 0, 1_050, 1_200, 1_000, 1_400, 1_250, 1_150,
    ];
    for m in 0..10u64 {
        let mut stats = vec![if m == 3 {
            all_lost(0, 6)
        } else {
            let median = medians[m as usize];
            answered(
                0,
                6,
                u32::from(m == 5),
                (median - 100 - m, median, median + 500 + 10 * m),
            )
        }];
        if m == 2 || m == 3 {
            stats[0].under_load_minutes = 1;
        }
        if m < 4 {
            stats.push(answered(
                1,
                6,
                0,
                (20_000 + m, 21_000 + m * 100, 30_000 - m),
            ));
        }
        write_minute(&store, minute(m, stats));
    }
    // Minutes 10 and 11 belong to the next bucket, which is not over before minute 15.
    for m in [10, 11] {
        write_minute(
            &store,
            minute(m, vec![answered(0, 6, 0, (900, 1_000, 1_100))]),
        );
    }
    assert_eq!(store.downsample_probes(at(15), 100).unwrap(), 1);
    let rows = all_rows(&store);
    // Target 0 medians of the 9 answered minutes, sorted: 1000 1050 1100 1150 1200 1250 1300
    // 1400 9000 → the 5th, 1200. Min: minute 6's 1000 − 100 − 6 = 894. Max: minute 2's
    // 9000 + 500 + 20 = 9520. Sent 60, lost 6 + 1 = 7, under load 2 minutes.
    // Target 1 medians 21000 21100 21200 21300 → the lower middle, 21100; min 20000; max
    // 30000; sent 24.
    let bucket = ProbeRow {
        start: at(0),
        minutes: BUCKET_MINUTES,
        stats: vec![
            ProbeStats {
                under_load_minutes: 2,
                ..answered(0, 60, 7, (894, 1_200, 9_520))
            },
            answered(1, 24, 0, (20_000, 21_100, 30_000)),
        ],
    };
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0], bucket);
    assert_eq!(rows[1].start, at(10));
    assert_eq!(rows[2].start, at(11));
    assert_eq!(rows[0].span(), Duration::from_secs(600));
    // Idempotent: nothing left to fold, and the rows are as they were.
    assert_eq!(store.downsample_probes(at(15), 100).unwrap(), 0);
    let again = all_rows(&store);
    assert_eq!(again, rows);
    // A window inside the bucket's span but after its start does not include it.
    let mut inside = 0;
    store
        .probe_rows(at(1), at(10), &mut |_| inside += 1)
        .unwrap();
    assert_eq!(inside, 0);
}

#[test]
fn downsampling_is_bounded_per_call_and_merges_a_minute_written_late() {
    let (_dir, store) = temp_store();
    let write = |m: u64, median: u64| {
        write_minute(
            &store,
            minute(m, vec![answered(0, 6, 1, (median, median, median))]),
        );
    };
    for m in [0, 1, 12, 25, 26, 27] {
        write(m, 100 + m);
    }
    assert_eq!(store.downsample_probes(at(30), 2).unwrap(), 2);
    assert_eq!(store.downsample_probes(at(30), 2).unwrap(), 1);
    assert_eq!(store.downsample_probes(at(30), 2).unwrap(), 0);
    // A minute of the first bucket written after it was folded joins it.
    write(5, 400);
    assert_eq!(store.downsample_probes(at(30), 2).unwrap(), 1);
    let rows = all_rows(&store);
    assert_eq!(
        rows.iter()
            .map(|r| (r.start, r.minutes))
            .collect::<Vec<_>>(),
        [(at(0), 10), (at(10), 10), (at(20), 10)]
    );
    // The stored bucket's median (100, the lower of 100 and 101) and the late 400: lower
    // middle 100; sent 12 + 6.
    assert_eq!(rows[0].stats, vec![answered(0, 18, 3, (100, 100, 400))]);
    assert_eq!(rows[2].stats, vec![answered(0, 18, 3, (125, 126, 127))]);
}

#[test]
fn retention_deletes_what_ended_before_the_cutoff_in_bounded_batches() {
    let (_dir, store) = temp_store();
    for m in 0..25 {
        write_minute(&store, minute(m, vec![all_lost(0, 6)]));
    }
    assert_eq!(store.downsample_probes(at(10), 10).unwrap(), 1);
    let old = outage(at(1), Some(at(3)), OutageKind::Isp);
    let ending_late = outage(at(4), Some(at(31)), OutageKind::Isp);
    let ongoing = outage(at(32), None, OutageKind::Local);
    let runs = [
        run(0, Some(5)),
        // Stopped before its first heartbeat: no end.
        run(6, None),
        run(8, Some(40)),
    ];
    for run in runs {
        store
            .write_probes(&ProbeWrite {
                outages: vec![old, ending_late, ongoing],
                run: Some(run),
                ..ProbeWrite::default()
            })
            .unwrap();
    }
    // Cutoff at minute 20: the bucket [0, 10) and minutes 10..=19 (20 ends at 21), the outage
    // that ended at 3, the runs that ended at 5 and the one without an end (another started
    // at 8). 1 + 10 + 1 + 2 = 14, in batches of 5.
    let cutoff = at(20);
    assert_eq!(store.delete_probes_before(cutoff, 5).unwrap(), 5);
    assert_eq!(store.delete_probes_before(cutoff, 5).unwrap(), 5);
    assert_eq!(store.delete_probes_before(cutoff, 5).unwrap(), 4);
    assert_eq!(store.delete_probes_before(cutoff, 5).unwrap(), 0);
    let mut starts = Vec::new();
    store
        .probe_rows(Timestamp::EPOCH, Timestamp::MAX, &mut |row| {
            starts.push(row.start)
        })
        .unwrap();
    assert_eq!(starts, (20..25).map(at).collect::<Vec<_>>());
    assert_eq!(all_outages(&store), vec![ending_late, ongoing]);
    assert_eq!(all_runs(&store), vec![runs[2]]);
    // Far in the future the ongoing outage still stays.
    while store.delete_probes_before(at(10_000), 100).unwrap() > 0 {}
    assert_eq!(all_outages(&store), vec![ongoing]);
    assert_eq!(all_runs(&store), vec![]);
}

/// Puts `bytes` at `key` of `table` as they are, damage included.
fn put_raw(store: &Store, table: TableDefinition<u64, &[u8]>, key: u64, bytes: &[u8]) {
    store
        .guarded(|| {
            store.write(|txn| {
                let mut table = txn.open_table(table).map_err(|e| store.redb(e))?;
                table.insert(key, bytes).map_err(|e| store.redb(e))?;
                Ok::<_, StoreError>(())
            })
        })
        .unwrap();
}

#[test]
fn a_damaged_record_is_an_error_naming_it_and_db_check_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probes.redb");
    let store = Store::open(&path).unwrap();
    store.register_probe_targets(&defaults()).unwrap();
    store
        .write_probes(&ProbeWrite {
            minute: Some(sample_minute()),
            outages: vec![outage(at(1), Some(at(2)), OutageKind::Isp)],
            run: Some(run(0, Some(4))),
        })
        .unwrap();
    drop(store);
    let report = Store::check(&path).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.probe_records, 4 + 1 + 1 + 1);
    let store = Store::open(&path).unwrap();
    // A flipped byte in the minute row.
    let mut damaged = encode_row(&sample_minute());
    damaged[3] ^= 0x01;
    put_raw(&store, MINUTES, at(3).as_millis(), &damaged);
    let err = store
        .probe_rows(Timestamp::EPOCH, Timestamp::MAX, &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, StoreError::ProbeDecode { .. }), "{err}");
    let said = err.to_string();
    assert!(
        said.contains("the probe minute record at 2026-11-30T12:03:00"),
        "{said}"
    );
    assert!(said.contains("checksum"), "{said}");
    // Downsampling stops on it rather than folding damage into a bucket.
    assert!(matches!(
        store.downsample_probes(Timestamp::MAX, 10),
        Err(StoreError::ProbeDecode { .. })
    ));
    // A newer version's outage, and a target moved to another id.
    let mut newer = encode_outage(&outage(at(7), None, OutageKind::Isp));
    newer[0] = 9;
    put_raw(&store, OUTAGES, at(7).as_millis(), &newer);
    let err = store.open_outage().unwrap_err();
    assert!(
        err.to_string().contains("format version 9 is unknown"),
        "{err}"
    );
    let moved = encode_target(&StoredTarget {
        id: 1,
        target: defaults()[1],
    });
    put_raw(&store, TARGETS, 9, &moved);
    assert!(matches!(
        store.probe_targets(),
        Err(StoreError::ProbeDecode { .. })
    ));
    assert!(matches!(
        store.register_probe_targets(&defaults()),
        Err(StoreError::ProbeDecode { .. })
    ));
    put_raw(&store, RUNS, at(50).as_millis(), &[1, 2, 3]);
    assert!(matches!(
        store.last_monitor_run(),
        Err(StoreError::ProbeDecode { .. })
    ));
    drop(store);
    let report = Store::check(&path).unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.probe_records, 7 + 3);
    let found = report.structure.join("\n");
    for expected in [
        "the probe minute record at 2026-11-30T12:03:00",
        "the outage record from 2026-11-30T12:07:00",
        "the probe target record with id 9",
        "the monitor run record from 2026-11-30T12:50:00",
    ] {
        assert!(found.contains(expected), "{expected} in {found}");
    }
}

/// A restart within a minute: the old run flushed the minute at its stop, the new run writes
/// the same minute when it finishes. Both runs' probes must stay counted (they were replaced).
#[test]
fn a_minute_written_again_by_the_next_run_is_merged_not_replaced() {
    let (_dir, store) = temp_store();
    write_minute(
        &store,
        minute(3, vec![answered(0, 3, 1, (10, 20, 30)), all_lost(1, 3)]),
    );
    write_minute(
        &store,
        minute(
            3,
            vec![
                ProbeStats {
                    under_load_minutes: 1,
                    ..answered(0, 2, 0, (5, 25, 40))
                },
                answered(2, 2, 0, (1, 1, 1)),
            ],
        ),
    );
    let rows = all_rows(&store);
    assert_eq!(
        rows,
        vec![minute(
            3,
            vec![
                ProbeStats {
                    under_load_minutes: 1,
                    ..answered(0, 5, 1, (5, 20, 40))
                },
                all_lost(1, 3),
                answered(2, 2, 0, (1, 1, 1)),
            ],
        )]
    );
}

/// The hourly fold with the clock ten years ahead: by the clock every stored minute is older
/// than 31 days, so the month of minutes just recorded was folded into buckets for good.
/// Measured along the record, only minutes with `keep_rows` rows after them are foldable.
#[test]
fn a_clock_far_ahead_does_not_fold_the_newest_minutes_of_the_record() {
    let (_dir, store) = temp_store();
    let writes: Vec<ProbeWrite> = (0..100)
        .map(|m| ProbeWrite {
            minute: Some(minute(m, vec![answered(0, 6, 0, (1, 2, 3))])),
            ..ProbeWrite::default()
        })
        .collect();
    store.write_probes_batch(&writes).unwrap();
    let ahead = at(100).saturating_add(Duration::from_secs(3650 * 86_400));
    let cut = store.probe_fold_cut(ahead, 30).unwrap();
    assert_eq!(cut, plus(at(69), 1));
    while store.downsample_probes(cut, 100).unwrap() > 0 {}
    let (mut minutes, mut buckets) = (Vec::new(), 0);
    store
        .probe_rows(Timestamp::EPOCH, Timestamp::MAX, &mut |row| {
            if row.minutes == 1 {
                minutes.push(row.start);
            } else {
                buckets += 1;
            }
        })
        .unwrap();
    assert_eq!(buckets, 6);
    assert_eq!(minutes.first(), Some(&at(60)));
    assert_eq!(minutes.len(), 40);
    // With the clock right, the clock's 31 days are the limit.
    let right = at(50).saturating_add(Duration::from_secs(MINUTE_DAYS * 86_400));
    assert_eq!(store.probe_fold_cut(right, 30).unwrap(), at(50));
    // Fewer rows than kept, or none: nothing to fold.
    assert_eq!(store.probe_fold_cut(ahead, 1000).unwrap(), Timestamp::EPOCH);
    let (_dir, empty) = temp_store();
    assert_eq!(empty.probe_fold_cut(ahead, 30).unwrap(), Timestamp::EPOCH);
}
