//! The record codec: round trips, versions, sizes and awkward values.

use std::sync::Arc;

use super::*;

fn round_trip(sample: &Sample) -> Sample {
    let bytes = encode(sample, None, DictionaryRefs::default(), &[]);
    decode(sample.time, &bytes).unwrap().sample
}

#[test]
fn only_a_campaign_run_is_written_as_version_4() {
    let campaign = Sample {
        download_bytes_per_second: Some(12_500_000.0),
        ..Sample::empty(Timestamp::from_millis(1_795_546_073_292), Trigger::Campaign)
    };
    let bytes = encode(&campaign, None, DictionaryRefs::default(), &[]);
    assert_eq!(bytes[0], VERSION_CAMPAIGN);
    assert_eq!(round_trip(&campaign), campaign);
    let scheduled = Sample {
        trigger: Trigger::Schedule,
        ..campaign.clone()
    };
    let bytes = encode(&scheduled, None, DictionaryRefs::default(), &[]);
    assert_eq!(bytes[0], VERSION);
    // A version 3 record with trigger code 3 is what a version 3 reader (0.x before
    // campaigns) would meet without the version bump: it calls it malformed, as this
    // reader does; and a version 4 record without the campaign trigger is damage too.
    let mut as_v3 = encode(&campaign, None, DictionaryRefs::default(), &[]);
    as_v3[0] = VERSION;
    assert_eq!(
        decode(campaign.time, &as_v3).err(),
        Some(DecodeError::Malformed)
    );
    let mut as_v4 = encode(&scheduled, None, DictionaryRefs::default(), &[]);
    as_v4[0] = VERSION_CAMPAIGN;
    assert_eq!(
        decode(campaign.time, &as_v4).err(),
        Some(DecodeError::Malformed)
    );
    // What a version 3 reader says of a version 4 record.
    assert!(
        DecodeError::UnknownVersion(VERSION_CAMPAIGN)
            .to_string()
            .contains("a newer internet-monitor wrote it")
    );
}

#[test]
fn typical_success_is_small_and_exact() {
    let sample = Sample {
        duration_seconds: Some(21.347),
        download_bytes_per_second: Some(92_727_670.0),
        upload_bytes_per_second: Some(31_664_073.0),
        ping_seconds: Some(0.005631),
        jitter_seconds: Some(0.00048),
        packet_loss_ratio: Some(0.0),
        download_latency_seconds: Some(0.008052),
        upload_latency_seconds: Some(0.007308),
        downloaded_bytes: Some(1_170_034_775),
        uploaded_bytes: Some(416_603_849),
        result_url: Some(format!(
            "{OOKLA_RESULT_PREFIX}52186b28-ae1e-406d-a8b8-2a4ffd80f9e5"
        )),
        ..Sample::empty(Timestamp::from_millis(1), Trigger::Schedule)
    };
    let refs = DictionaryRefs {
        server: Some(3),
        isp: Some(4),
        engine: Some(5),
    };
    let bytes = encode(&sample, Some(0), refs, &[b"server", b"isp", b"engine"]);
    assert!(bytes.len() <= 68, "{} bytes", bytes.len());
    let decoded = decode(sample.time, &bytes).unwrap();
    assert_eq!(decoded.sample, sample);
    assert_eq!(decoded.refs, refs);
}

#[test]
fn awkward_floats_fall_back_to_raw_bytes() {
    let sample = Sample {
        download_bytes_per_second: Some(0.1),
        upload_bytes_per_second: Some(-0.0),
        ping_seconds: Some(f64::NAN),
        jitter_seconds: Some(1e300),
        ..Sample::empty(Timestamp::from_millis(1), Trigger::Manual)
    };
    let back = round_trip(&sample);
    assert_eq!(back.download_bytes_per_second, Some(0.1));
    assert_eq!(
        back.upload_bytes_per_second.map(f64::to_bits),
        Some((-0.0f64).to_bits())
    );
    assert!(back.ping_seconds.is_some_and(f64::is_nan));
    assert_eq!(back.jitter_seconds, Some(1e300));
}

#[test]
fn non_canonical_urls_are_kept_verbatim() {
    for url in [
        "REMOVED",
        "https://www.speedtest.net/result/c/52186B28-AE1E-406D-A8B8-2A4FFD80F9E5",
        "https://www.speedtest.net/result/c/52186b28ae1e406da8b82a4ffd80f9e5xxxx",
    ] {
        let sample = Sample {
            result_url: Some(url.into()),
            ..Sample::empty(Timestamp::from_millis(1), Trigger::Manual)
        };
        assert_eq!(round_trip(&sample).result_url.as_deref(), Some(url));
    }
}

#[test]
fn failure_with_client_round_trips() {
    let sample = Sample {
        client: Some(Client {
            internal_ip: Some("192.0.2.1".into()),
            external_ip: None,
            mac: Some("00:00:5E:00:53:01".into()),
        }),
        ..Sample::failure(
            Timestamp::from_millis(5),
            Trigger::Retest,
            FailureReason::OutputTooLarge,
            "too much",
        )
    };
    assert_eq!(round_trip(&sample), sample);
}

#[test]
fn rejects_unknown_versions_and_truncation() {
    assert_eq!(
        decode(Timestamp::from_millis(0), &[9, 0, 0]).err(),
        Some(DecodeError::UnknownVersion(9))
    );
    let sample = Sample::failure(
        Timestamp::from_millis(0),
        Trigger::Manual,
        FailureReason::Exit,
        "x",
    );
    let bytes = encode(&sample, None, DictionaryRefs::default(), &[]);
    for cut in 0..bytes.len() {
        let verified =
            decode(sample.time, &bytes[..cut]).and_then(|d| verify(sample.time, &d, &[]));
        assert!(verified.is_err(), "cut at {cut}");
    }
}

/// What the store does with a decoded record: recompute the checksum with the entries.
fn verify(time: Timestamp, decoded: &Decoded<'_>, entries: &[&[u8]]) -> Result<(), DecodeError> {
    match decoded.seal {
        Some((body, sum)) if checksum(time.as_millis(), body, entries.iter().copied()) != sum => {
            Err(DecodeError::Checksum)
        }
        _ => Ok(()),
    }
}

#[test]
fn any_changed_byte_of_time_record_or_entries_is_detected() {
    let sample = Sample {
        download_bytes_per_second: Some(92_727_670.0),
        ping_seconds: Some(0.005631),
        message: Some("slow".into()),
        ..Sample::empty(Timestamp::from_millis(1_795_546_073_292), Trigger::Schedule)
    };
    let refs = DictionaryRefs {
        server: Some(3),
        isp: Some(4),
        engine: Some(5),
    };
    let (server, isp) = (b"server bytes".to_vec(), b"isp".to_vec());
    let engine = b"engine".to_vec();
    let bytes = encode(
        &sample,
        Some(1_795_546_000_000),
        refs,
        &[&server, &isp, &engine],
    );
    let read = |time: Timestamp, bytes: &[u8], server: &[u8], isp: &[u8]| {
        decode(time, bytes)
            .and_then(|d| verify(time, &d, &[server, isp, &engine]).map(|()| d.sample))
    };
    assert_eq!(read(sample.time, &bytes, &server, &isp), Ok(sample.clone()));
    for at in 0..bytes.len() {
        for flip in [0x01, 0x03, 0x80, 0xff] {
            let mut changed = bytes.clone();
            changed[at] ^= flip;
            assert!(
                read(sample.time, &changed, &server, &isp).is_err(),
                "byte {at} ^ {flip:#x}"
            );
        }
    }
    for bit in 0..64 {
        let time = Timestamp::from_millis(sample.time.as_millis() ^ 1 << bit);
        assert_eq!(
            read(time, &bytes, &server, &isp),
            Err(DecodeError::Checksum),
            "time bit {bit}"
        );
    }
    for at in 0..server.len() {
        let mut changed = server.clone();
        changed[at] ^= 0x20;
        assert_eq!(
            read(sample.time, &bytes, &changed, &isp),
            Err(DecodeError::Checksum)
        );
    }
    assert_eq!(
        read(sample.time, &bytes, &server, b"isq"),
        Err(DecodeError::Checksum)
    );
    let decoded = decode(sample.time, &bytes).unwrap();
    assert_eq!(
        verify(sample.time, &decoded, &[&server, &isp, b"enginf"]),
        Err(DecodeError::Checksum),
        "the engine entry is covered too"
    );
}

/// The record `encode` writes, rewritten as an older version wrote it: version 2 (no
/// engine) or version 1 (no link and no checksum either).
fn as_older_version(sample: &Sample, version: u8) -> Vec<u8> {
    let without_engine = Sample {
        engine: None,
        ..sample.clone()
    };
    let mut bytes = encode(&without_engine, None, DictionaryRefs::default(), &[]);
    bytes.truncate(bytes.len() - CHECKSUM_BYTES);
    bytes[0] = version;
    if version == VERSION_UNCHECKED {
        bytes.remove(2); // the link
    } else {
        let sum = checksum(sample.time.as_millis(), &bytes, []);
        bytes.extend_from_slice(&sum.to_le_bytes());
    }
    bytes
}

#[test]
fn version_1_records_read_without_a_checksum() {
    let sample = Sample {
        engine: Some(Arc::new(Engine::ookla())),
        ..Sample::failure(
            Timestamp::from_millis(7),
            Trigger::Manual,
            FailureReason::Exit,
            "x",
        )
    };
    let bytes = as_older_version(&sample, VERSION_UNCHECKED);
    let decoded = decode(sample.time, &bytes).unwrap();
    assert_eq!(decoded.seal, None);
    assert_eq!(decoded.link, Link::Unknown);
    assert_eq!(decoded.sample, sample);
}

#[test]
fn older_records_measured_with_ookla_unless_skipped() {
    let measured = [
        Sample::failure(
            Timestamp::from_millis(7),
            Trigger::Schedule,
            FailureReason::Timeout,
            "x",
        ),
        Sample {
            download_bytes_per_second: Some(1e6),
            ..Sample::empty(Timestamp::from_millis(8), Trigger::Manual)
        },
    ];
    let skipped = Sample {
        outcome: Outcome::Skipped,
        reason: Some(FailureReason::DataBudget),
        ..Sample::empty(Timestamp::from_millis(9), Trigger::Schedule)
    };
    for version in [VERSION_UNCHECKED, VERSION_WITHOUT_ENGINE] {
        for sample in &measured {
            let bytes = as_older_version(sample, version);
            let decoded = decode(sample.time, &bytes).unwrap();
            assert_eq!(
                decoded.sample.engine.as_deref(),
                Some(&Engine::ookla()),
                "version {version}"
            );
            assert_eq!(decoded.refs.engine, None);
        }
        let bytes = as_older_version(&skipped, version);
        let decoded = decode(skipped.time, &bytes).unwrap();
        assert_eq!(decoded.sample, skipped, "version {version}");
    }
    // A version 3 record says what it has, even no engine at all.
    assert_eq!(round_trip(&measured[0]).engine, None);
}

#[test]
fn only_version_3_refers_to_an_engine() {
    let sample = Sample::empty(Timestamp::from_millis(7), Trigger::Manual);
    let refs = DictionaryRefs {
        engine: Some(2),
        ..DictionaryRefs::default()
    };
    let mut bytes = encode(&sample, None, refs, &[b"engine"]);
    assert_eq!(decode(sample.time, &bytes).unwrap().refs, refs);
    bytes[0] = VERSION_WITHOUT_ENGINE;
    assert_eq!(
        decode(sample.time, &bytes).err(),
        Some(DecodeError::Malformed)
    );
}

#[test]
fn relinking_keeps_the_fields_and_reseals() {
    let sample = Sample::failure(
        Timestamp::from_millis(1_000),
        Trigger::Manual,
        FailureReason::Exit,
        "x",
    );
    let bytes = encode(&sample, Some(400), DictionaryRefs::default(), &[]);
    assert_eq!(decode(sample.time, &bytes).unwrap().link, Link::After(400));
    let moved = relink(1_000, &bytes, Some(900), &[]).unwrap().unwrap();
    let decoded = decode(sample.time, &moved).unwrap();
    assert_eq!(decoded.link, Link::After(900));
    assert_eq!(decoded.sample, sample);
    assert_eq!(verify(sample.time, &decoded, &[]), Ok(()));
    let first = relink(1_000, &moved, None, &[]).unwrap().unwrap();
    assert_eq!(decode(sample.time, &first).unwrap().link, Link::First);
    let mut damaged = bytes.clone();
    damaged[4] ^= 1;
    assert!(
        relink(1_000, &damaged, None, &[]).is_err(),
        "damage is never resealed"
    );
}
