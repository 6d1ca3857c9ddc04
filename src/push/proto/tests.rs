//! The remote write codec: the protobuf bytes of a tiny request checked against a hand
//! computation, round trips, bounds, and damaged bodies refused without a panic.

use super::*;

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.into(),
        value: value.into(),
    }
}

/// One series `{a="b"}` with the point (1.0, 2 ms).
fn tiny() -> WriteRequest {
    WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![label("a", "b")],
            samples: vec![ProtoSample {
                value: 1.0,
                timestamp: 2,
            }],
        }],
    }
}

/// `tiny()` in protobuf, computed by hand from the schema (tag = field << 3 | wire type).
const TINY_PROTOBUF: [u8; 23] = [
    0x0a, 21, // WriteRequest.timeseries (1, length-delimited), 21 bytes
    0x0a, 6, // TimeSeries.labels (1, length-delimited), 6 bytes
    0x0a, 1, b'a', // Label.name (1) "a"
    0x12, 1, b'b', // Label.value (2) "b"
    0x12, 11, // TimeSeries.samples (2, length-delimited), 11 bytes
    0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // Sample.value (1, 64-bit) 1.0 little-endian
    0x10, 2, // Sample.timestamp (2, varint) 2
];

#[test]
fn the_protobuf_of_a_tiny_request_is_the_hand_computed_one() {
    assert_eq!(tiny().encode_to_vec(), TINY_PROTOBUF);
    let body = encode(&tiny());
    // Snappy raw: the uncompressed length as a varint first, then the compressed elements.
    assert_eq!(body[0], 23);
    assert_eq!(
        snap::raw::Decoder::new().decompress_vec(&body).unwrap(),
        TINY_PROTOBUF
    );
}

#[test]
fn a_hand_made_snappy_body_decodes() {
    // Snappy raw, by hand: length 23, then one literal of 23 bytes (tag (23 - 1) << 2).
    let mut body = vec![23, (23 - 1) << 2];
    body.extend_from_slice(&TINY_PROTOBUF);
    assert_eq!(decode(&body).unwrap(), tiny());
}

#[test]
fn requests_round_trip() {
    let big = WriteRequest {
        timeseries: (0..50)
            .map(|i| TimeSeries {
                labels: vec![
                    label("__name__", "speedtest_download_bytes_per_second"),
                    label("job", "internet-monitor"),
                    label("site", &format!("site-{i}")),
                ],
                samples: (0..20)
                    .map(|j| ProtoSample {
                        value: 92_727_670.5 + f64::from(j),
                        timestamp: 1_795_546_073_292 + i64::from(j) * 3_600_000,
                    })
                    .collect(),
            })
            .collect(),
    };
    for request in [WriteRequest::default(), tiny(), big] {
        assert_eq!(decode(&encode(&request)).unwrap(), request);
    }
    // Negative times and odd floats survive too.
    let odd = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![label("x", "ü")],
            samples: vec![
                ProtoSample {
                    value: -0.0,
                    timestamp: -1,
                },
                ProtoSample {
                    value: f64::INFINITY,
                    timestamp: i64::MAX,
                },
            ],
        }],
    };
    assert_eq!(decode(&encode(&odd)).unwrap(), odd);
}

#[test]
fn truncated_bodies_are_errors() {
    let body = encode(&tiny());
    for cut in 0..body.len() {
        assert!(decode(&body[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    // Not snappy: a length varint that never ends.
    assert!(matches!(decode(&[0xff; 12]), Err(ProtoError::Snappy(_))));
    // Snappy, but not a WriteRequest (a field with wire type 7, which does not exist).
    let not_protobuf = snap::raw::Encoder::new()
        .compress_vec(&[0x0f, 0x01])
        .unwrap();
    assert!(matches!(
        decode(&not_protobuf),
        Err(ProtoError::Protobuf(_))
    ));
    // Snappy whose length header does not match its contents.
    let mut lying = encode(&tiny());
    lying[0] = 40;
    assert!(decode(&lying).is_err());
    // Every single-byte change either decodes or is refused; none panics.
    let body = encode(&tiny());
    for at in 0..body.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut changed = body.clone();
            changed[at] ^= flip;
            let _ = decode(&changed);
        }
    }
}

#[test]
fn a_body_that_says_it_is_too_large_is_refused_before_decompressing() {
    // The length varint of 32 MiB + 1, then nothing at all.
    let len = MAX_DECODED_BYTES as u64 + 1;
    let mut body = Vec::new();
    let mut rest = len;
    while rest >= 0x80 {
        body.push((rest as u8) | 0x80);
        rest >>= 7;
    }
    body.push(rest as u8);
    match decode(&body) {
        Err(err @ ProtoError::TooLarge { .. }) => {
            assert!(err.to_string().contains("33554433 bytes"), "{err}");
        }
        other => panic!("{other:?}"),
    }
}

/// The fuzz target `remote_write_decode` starts from bodies this module writes: each seed in
/// fuzz/seeds/remote_write_decode decodes. `UPDATE_FUZZ_SEEDS=1` rewrites them first.
#[test]
fn fuzz_seeds_decode() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/remote_write_decode");
    if std::env::var_os("UPDATE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tiny"), encode(&tiny())).unwrap();
        let pushed = crate::push::series::request_of(crate::push::series::series_of(
            &crate::sample::Sample {
                download_bytes_per_second: Some(92_727_670.0),
                upload_bytes_per_second: Some(11_612_345.0),
                ping_seconds: Some(0.01234),
                duration_seconds: Some(21.5),
                ..crate::sample::Sample::empty(
                    crate::time::Timestamp::from_millis(1_795_546_073_292),
                    crate::sample::Trigger::Schedule,
                )
            },
            &crate::plan::Plan::NONE,
            &[("site".into(), "berlin".into())],
        ));
        std::fs::write(dir.join("success"), encode(&pushed)).unwrap();
    }
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!decode(&bytes).unwrap().timeseries.is_empty());
        seeds += 1;
    }
    assert!(seeds >= 2, "seeds in {}", dir.display());
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    /// What the fuzz target `remote_write_decode` asserts, for any bytes.
    fn holds(body: &[u8]) {
        if let Ok(request) = decode(body) {
            let again = encode(&request);
            assert_eq!(encode(&decode(&again).unwrap()), again);
        }
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_are_refused(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            holds(&body);
        }

        #[test]
        fn any_changed_valid_body_decodes_or_is_refused(
            changes in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let mut body = encode(&tiny());
            let len = body.len();
            for (at, byte) in changes {
                body[at % len] = byte;
            }
            holds(&body);
        }
    }
}
