//! Property: any sample survives encode → store (a real redb file) → read, unchanged.

use std::sync::{Arc, OnceLock};

use internet_monitor::sample::{Client, FailureReason, Outcome, Sample, Server, Trigger};
use internet_monitor::store::Store;
use internet_monitor::time::Timestamp;
use proptest::prelude::*;

/// Any float but NaN (which equals nothing, itself included; the codec test covers it), with
/// plenty of the decimal values the compact path is for.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("NaN never compares equal", |f| !f.is_nan()),
        (0u64..1 << 40).prop_map(|n| n as f64 / 1e6),
        (0u64..1 << 40).prop_map(|n| n as f64),
        (0u64..1 << 30).prop_map(|n| n as f64 / 1e3),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,40}", "[a-zA-Z ]{0,12}"]
}

fn server() -> impl Strategy<Value = Server> {
    (
        proptest::option::of(any::<u64>()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(id, name, location, country, host)| Server {
            id,
            name,
            location,
            country,
            host,
        })
}

fn client() -> impl Strategy<Value = Client> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(internal_ip, external_ip, mac)| Client {
            internal_ip,
            external_ip,
            mac,
        })
}

fn result_url() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
            .prop_map(|uuid| format!("https://www.speedtest.net/result/c/{uuid}")),
    ]
}

fn sample() -> impl Strategy<Value = Sample> {
    let head = (
        // Every time a sample can have: 1970 to 9999-12-30T22:00:00Z.
        0u64..Timestamp::MAX.as_millis(),
        prop_oneof![
            Just(Outcome::Success),
            Just(Outcome::Failure),
            Just(Outcome::Skipped)
        ],
        proptest::option::of(proptest::sample::select(FailureReason::ALL.to_vec())),
        proptest::option::of(text()),
        prop_oneof![
            Just(Trigger::Schedule),
            Just(Trigger::Manual),
            Just(Trigger::Retest)
        ],
    );
    let figures = proptest::collection::vec(proptest::option::of(float()), 8);
    let rest = (
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(server()),
        proptest::option::of(text()),
        proptest::option::of(result_url()),
        proptest::option::of(client()),
    );
    (head, figures, rest).prop_map(
        |((time, outcome, reason, message, trigger), f, (down, up, server, isp, url, client))| {
            Sample {
                time: Timestamp::from_millis(time),
                outcome,
                reason,
                message,
                trigger,
                duration_seconds: f[0],
                download_bytes_per_second: f[1],
                upload_bytes_per_second: f[2],
                ping_seconds: f[3],
                jitter_seconds: f[4],
                packet_loss_ratio: f[5],
                download_latency_seconds: f[6],
                upload_latency_seconds: f[7],
                downloaded_bytes: down,
                uploaded_bytes: up,
                server: server.map(Arc::new),
                isp: isp.map(Arc::from),
                result_url: url,
                engine: None,
                client,
            }
        },
    )
}

/// One real database for all cases; each case reads back exactly the key it wrote.
fn store() -> &'static Store {
    static STORE: OnceLock<(tempfile::TempDir, Store)> = OnceLock::new();
    let (_, store) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("prop.redb")).unwrap();
        (dir, store)
    });
    store
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_sample_survives_the_store(sample in sample()) {
        let stored = store().append(&sample).unwrap();
        prop_assert_eq!(&stored, &Sample { time: stored.time, ..sample });
        let next = Timestamp::from_millis(stored.time.as_millis() + 1);
        let read = store().range(stored.time, next).unwrap();
        prop_assert_eq!(read, vec![stored]);
    }
}
