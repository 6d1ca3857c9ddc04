//! Unit tests of the outbox table.

use super::*;

#[test]
fn a_record_reads_back() {
    let entry = OutboxEntry {
        time: Timestamp::from_millis(1_795_546_073_292),
        queued: Timestamp::from_millis(1_795_546_100_000),
    };
    let bytes = encode_outbox_record(&entry);
    assert_eq!(
        decode_outbox_record(entry.time.as_millis(), &bytes),
        Ok(entry)
    );
}
