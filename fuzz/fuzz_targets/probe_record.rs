//! Fuzzes the connectivity monitor's record decoders (`probe_targets_v1`, `probe_minutes_v1`,
//! `probe_buckets_v1`, `outages_v1`, `monitor_runs_v1`): any bytes at any key are refused by
//! each decoder with a `DecodeError`, or give a value that keeps its bounds and reads back the
//! same when written again.
//!
//! Input layout: the key (a target id, or a start in ms) as u64 little-endian, then the
//! record's bytes; every decoder is tried on every input as it is, and on the input with a
//! valid checksum appended (`seal_record`), so that the checks behind the checksum are
//! fuzzed too. Seeds in fuzz/seeds/probe_record/
//! (written by the encoders, checked by the unit test `store::probes::tests::fuzz_seeds_decode`).

#![no_main]

use internet_monitor::store::probes::{
    BUCKET_MINUTES, decode_bucket, decode_minute, decode_outage, decode_run, decode_target,
    encode_outage, encode_row, encode_run, encode_target, seal_record,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((key, record)) = data.split_first_chunk::<8>() else {
        return;
    };
    let key = u64::from_le_bytes(*key);
    check(key, record);
    check(key, &seal_record(key, record.to_vec()));
});

fn check(key: u64, record: &[u8]) {
    if let Ok(target) = decode_target(key, record) {
        assert_eq!(u64::from(target.id), key, "keyed elsewhere: {target:?}");
        assert_eq!(decode_target(key, &encode_target(&target)), Ok(target));
    }
    for (decoded, minutes) in [
        (decode_minute(key, record), 1),
        (decode_bucket(key, record), BUCKET_MINUTES),
    ] {
        let Ok(row) = decoded else { continue };
        assert_eq!(row.start.as_millis(), key, "keyed elsewhere: {row:?}");
        assert_eq!(row.minutes, minutes);
        assert!(
            row.stats.windows(2).all(|w| w[0].target < w[1].target),
            "{row:?}"
        );
        for stats in &row.stats {
            assert!(stats.lost <= stats.sent, "{row:?}");
            assert!(stats.under_load_minutes <= minutes, "{row:?}");
            match (stats.rtt_min_us, stats.rtt_median_us, stats.rtt_max_us) {
                (None, None, None) => {}
                (Some(min), Some(median), Some(max)) => assert!(min <= median && median <= max),
                _ => panic!("RTTs partly present: {row:?}"),
            }
        }
        let again = encode_row(&row);
        let back = if minutes == 1 {
            decode_minute(key, &again)
        } else {
            decode_bucket(key, &again)
        };
        assert_eq!(back.as_ref(), Ok(&row), "does not read back the same");
    }
    if let Ok(outage) = decode_outage(key, record) {
        assert_eq!(outage.start.as_millis(), key, "keyed elsewhere: {outage:?}");
        assert!(
            outage.end.is_none_or(|end| end >= outage.start),
            "{outage:?}"
        );
        assert_eq!(decode_outage(key, &encode_outage(&outage)), Ok(outage));
    }
    if let Ok(run) = decode_run(key, record) {
        assert_eq!(run.start.as_millis(), key, "keyed elsewhere: {run:?}");
        assert!(run.end.is_none_or(|end| end >= run.start), "{run:?}");
        assert_eq!(decode_run(key, &encode_run(&run)), Ok(run));
    }
}
