//! Properties: any sample survives encode → store (a real redb file) → read, unchanged; any
//! sample the recorder could write survives `import` → `export --format jsonl`, unchanged.

mod common;

use std::sync::{Arc, OnceLock};

use internet_monitor::sample::{
    Client, Engine, EngineName, FailureReason, HttpProtocol, Outcome, Sample, Server, Trigger,
};
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

/// Any engine the store must keep, plausible or not.
fn engine() -> impl Strategy<Value = Engine> {
    (
        prop_oneof![Just(EngineName::Ookla), Just(EngineName::Http)],
        proptest::option::of(prop_oneof![
            Just(HttpProtocol::Cloudflare),
            Just(HttpProtocol::Librespeed)
        ]),
        proptest::option::of(text()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(float()),
        proptest::option::of(float()),
    )
        .prop_map(
            |(name, protocol, url, streams, duration_seconds, ramp_up_seconds)| Engine {
                name,
                protocol,
                url,
                streams,
                duration_seconds,
                ramp_up_seconds,
            },
        )
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
            Just(Trigger::Retest),
            Just(Trigger::Campaign)
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
        proptest::option::of(engine()),
    );
    (head, figures, rest).prop_map(
        |(
            (time, outcome, reason, message, trigger),
            f,
            (down, up, server, isp, url, client, engine),
        )| {
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
                engine: engine.map(Arc::new),
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

/// A figure within `0..=max`, often a round decimal.
fn figure(max: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        (0.0..=max),
        (0u64..=(max * 1e3) as u64).prop_map(|n| n as f64 / 1e3),
    ]
}

/// An engine the recorder could have written: `ookla` alone, or `http` with parameters
/// within the rules `import` checks.
fn plausible_engine() -> impl Strategy<Value = Engine> {
    let http = (
        proptest::option::of(prop_oneof![
            Just(HttpProtocol::Cloudflare),
            Just(HttpProtocol::Librespeed)
        ]),
        proptest::option::of(
            ("https?", "[a-z0-9.-]{1,30}(:[0-9]{1,5})?(/[a-z]{0,10})?")
                .prop_map(|(scheme, rest)| format!("{scheme}://{rest}")),
        ),
        proptest::option::of(1u32..=64),
        proptest::option::of((figure(3600.0), 0.0..1.0f64)),
    )
        .prop_map(|(protocol, url, streams, timing)| {
            let (duration_seconds, ramp_up_seconds) = match timing {
                Some((duration, share)) if duration * share < duration => {
                    (Some(duration), Some(duration * share))
                }
                Some((duration, _)) => (Some(duration), None),
                None => (None, None),
            };
            Engine {
                name: EngineName::Http,
                protocol,
                url,
                streams,
                duration_seconds,
                ramp_up_seconds,
            }
        });
    prop_oneof![Just(Engine::ookla()), http]
}

/// A sample the recorder could have written (so `import` takes it), at `time`.
fn plausible_sample(time: Timestamp) -> impl Strategy<Value = Sample> {
    let bandwidth = || figure(1.25e10);
    let latency = || proptest::option::of(figure(60.0));
    let success = (
        (bandwidth(), bandwidth(), figure(60.0), latency(), latency()),
        (
            proptest::option::of(figure(1.0)),
            proptest::option::of(0u64..=45_000_000_000_000),
            proptest::option::of(server()),
            proptest::option::of("[a-zA-Z ]{1,12}"),
            proptest::option::of(plausible_engine()),
            proptest::option::of(figure(86_400.0)),
        ),
    )
        .prop_filter("not both bandwidths 0", |((down, up, ..), _)| {
            (*down, *up) != (0.0, 0.0)
        })
        .prop_map(
            move |(
                (down, up, ping, jitter, loaded),
                (loss, bytes, server, isp, engine, duration),
            )| {
                Sample {
                    download_bytes_per_second: Some(down),
                    upload_bytes_per_second: Some(up),
                    ping_seconds: Some(ping),
                    jitter_seconds: jitter,
                    download_latency_seconds: loaded,
                    packet_loss_ratio: loss,
                    downloaded_bytes: bytes,
                    server: server.map(Arc::new),
                    isp: isp.map(Arc::from),
                    engine: engine.map(Arc::new),
                    duration_seconds: duration,
                    ..Sample::empty(time, Trigger::Schedule)
                }
            },
        );
    let failure = (
        proptest::sample::select(
            FailureReason::ALL
                .into_iter()
                .filter(|reason| reason.is_failure())
                .collect::<Vec<_>>(),
        ),
        text(),
        proptest::option::of(plausible_engine()),
        proptest::option::of(figure(86_400.0)),
        // What a failed run moved before it failed (the HTTP engine counts it).
        proptest::option::of(0u64..=45_000_000_000_000),
        proptest::option::of(0u64..=45_000_000_000_000),
    )
        .prop_map(
            move |(reason, message, engine, duration, down, up)| Sample {
                engine: engine.map(Arc::new),
                duration_seconds: duration,
                downloaded_bytes: down,
                uploaded_bytes: up,
                ..Sample::failure(time, Trigger::Manual, reason, message)
            },
        );
    let skipped = text().prop_map(move |message| Sample {
        outcome: Outcome::Skipped,
        ..Sample::failure(time, Trigger::Retest, FailureReason::DataBudget, message)
    });
    prop_oneof![success, failure, skipped]
}

/// Up to 12 plausible samples, oldest first, a second or more apart.
fn plausible_history() -> impl Strategy<Value = Vec<Sample>> {
    proptest::collection::vec(1u64..86_400_000, 1..12).prop_flat_map(|gaps| {
        let mut time = 1_700_000_000_000;
        let times: Vec<Timestamp> = gaps
            .into_iter()
            .map(|gap| {
                time += gap;
                Timestamp::from_millis(time)
            })
            .collect();
        times.into_iter().map(plausible_sample).collect::<Vec<_>>()
    })
}

proptest! {
    // Each case runs the binary twice.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_plausible_history_survives_import_and_export_made_visible(history in plausible_history()) {
        let env = common::Env::new();
        let lines: Vec<serde_json::Value> = history
            .iter()
            .map(|sample| serde_json::to_value(sample).unwrap())
            .collect();
        env.import(&lines);
        let db = env.db();
        let output = common::command(&["export", "--db", db.to_str().unwrap()])
            .output()
            .unwrap();
        prop_assert_eq!(output.status.code(), Some(0));
        let exported: Vec<Sample> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        // Import stores what it read, except that characters changing how text is shown
        // (controls, bidirectional overrides) are made spaces, as on every way in.
        let visible: Vec<Sample> = history.into_iter().map(Sample::visible).collect();
        prop_assert_eq!(exported, visible);
    }
}
