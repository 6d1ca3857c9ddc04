//! Fuzzes the stored campaign's record decoder: any bytes at any key are refused with a
//! `DecodeError` or give a campaign of a rule set that has one, keyed by its own start, not
//! finished before it began, that reads back the same when written again.
//!
//! Input layout: the key (ms since the epoch) as u64 little-endian, then the record's bytes.
//! Seeds in fuzz/seeds/campaign_record/ (written by `encode_campaign_record`, checked by the
//! unit test `store::campaigns::tests::fuzz_seeds_decode`).

#![no_main]

use internet_monitor::store::{decode_campaign_record, encode_campaign_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((key, record)) = data.split_first_chunk::<8>() else {
        return;
    };
    let millis = u64::from_le_bytes(*key);
    let Ok(campaign) = decode_campaign_record(millis, record) else {
        return;
    };
    assert!(campaign.rules.has_campaign(), "no such campaign: {campaign:?}");
    assert_eq!(campaign.start.as_millis(), millis, "keyed elsewhere: {campaign:?}");
    assert!(
        campaign.finished.is_none_or(|end| end >= campaign.start),
        "finished before it began: {campaign:?}"
    );
    let again = encode_campaign_record(&campaign);
    assert_eq!(
        decode_campaign_record(millis, &again).as_ref(),
        Ok(&campaign),
        "does not read back the same"
    );
});
