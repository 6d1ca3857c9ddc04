//! Fuzzes the remote write body decoder (snappy raw, then protobuf `WriteRequest`): any bytes
//! are refused with a `ProtoError` or give a request whose encoding decodes to a request that
//! encodes to the same bytes again (NaN values make `==` useless, so bytes are compared).
//!
//! Input layout: the body as received. Seeds in fuzz/seeds/remote_write_decode/ (written by
//! `proto::encode`, checked by the unit test `push::proto::tests::fuzz_seeds_decode`).

#![no_main]

use internet_monitor::push::proto::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = decode(data) else {
        return;
    };
    let body = encode(&request);
    let again = decode(&body).expect("an encoded request decodes");
    assert_eq!(encode(&again), body, "does not read back the same");
});
