//! Fuzzes the stored plan version's record decoder: any bytes at any key are refused with a
//! `DecodeError` or give a version that passes the bounds a stored plan must keep, is keyed
//! by its own effective-from time, and reads back the same when written again.
//!
//! Input layout: the key (ms since the epoch) as u64 little-endian, then the record's bytes.
//! Seeds in fuzz/seeds/plan_record/ (written by `encode_plan_record`, checked by the unit test
//! `store::plans::tests::fuzz_seeds_decode`).

#![no_main]

use internet_monitor::store::{decode_plan_record, encode_plan_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((key, record)) = data.split_first_chunk::<8>() else {
        return;
    };
    let millis = u64::from_le_bytes(*key);
    let Ok(version) = decode_plan_record(millis, record) else {
        return;
    };
    assert!(version.validate().is_ok(), "decoded out of bounds: {version:?}");
    assert_eq!(version.from.as_millis(), millis, "keyed elsewhere: {version:?}");
    let again = encode_plan_record(&version);
    assert_eq!(
        decode_plan_record(millis, &again).as_ref(),
        Ok(&version),
        "does not read back the same"
    );
});
