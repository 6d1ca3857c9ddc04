//! The dashboard's server time: `/api/v1/series` and `/api/v1/heatmap` computed from the column
//! cache over five years of half-hourly runs (87,600, 2 % failures), and the cache's rebuild
//! from the store (in full, and after one new run).
//!
//! Run with `cargo bench --bench series`. Target: ≤ 10 ms for series and heatmap. The store is
//! built once under `target/bench-stores/` and reused while it holds the expected runs.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use internet_monitor::history::{self, Columns, DEFAULT_POINTS, Metric};
use internet_monitor::plan::{Plan, PlanHistory};
use internet_monitor::sample::{Engine, FailureReason, Sample, Server, Trigger};
use internet_monitor::store::{Store, StoreError};
use internet_monitor::time::Timestamp;

const HALF_HOUR_MS: u64 = 30 * 60 * 1000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// 2021-12-01T00:00:00Z: the first run.
const FIRST: u64 = 1_638_316_800_000;
const RUNS: u64 = 5 * 365 * 48;
/// Bumped whenever the generator changes, so a stale cached store is not reused.
const GENERATOR_VERSION: u32 = 1;

/// Run `index`: a success with all six figures, or (every 50th) a failure with its own message.
fn sample(index: u64, server: &Arc<Server>, engine: &Arc<Engine>) -> Sample {
    let time = Timestamp::from_millis(FIRST + index * HALF_HOUR_MS);
    if index % 50 == 7 {
        let reason = FailureReason::ALL[(index % 8) as usize];
        return Sample {
            engine: Some(engine.clone()),
            ..Sample::failure(
                time,
                Trigger::Schedule,
                reason,
                format!("run {index} failed: {}", "x".repeat(100)),
            )
        };
    }
    let wobble = (index.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64;
    Sample {
        duration_seconds: Some(20.0),
        download_bytes_per_second: Some(100e6 * (0.5 + wobble)),
        upload_bytes_per_second: Some(10e6 * (0.5 + wobble)),
        ping_seconds: Some(0.010 + wobble / 100.0),
        jitter_seconds: Some(0.001 + wobble / 1000.0),
        packet_loss_ratio: Some(0.0),
        download_latency_seconds: Some(0.030 + wobble / 50.0),
        upload_latency_seconds: Some(0.040 + wobble / 50.0),
        downloaded_bytes: Some(200_000_000),
        uploaded_bytes: Some(20_000_000),
        server: Some(server.clone()),
        isp: Some("Example ISP".into()),
        engine: Some(engine.clone()),
        ..Sample::empty(time, Trigger::Schedule)
    }
}

fn samples() -> Vec<Sample> {
    let server = Arc::new(Server {
        id: Some(7),
        name: Some("Example".into()),
        location: Some("Here".into()),
        country: Some("There".into()),
        host: Some("st.example.net".into()),
    });
    let engine = Arc::new(Engine::ookla());
    (0..RUNS).map(|i| sample(i, &server, &engine)).collect()
}

/// The five-year store, built on first use.
fn store(samples: &[Sample]) -> Store {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench-stores");
    std::fs::create_dir_all(&dir).expect("create the bench store directory");
    let path = dir.join(format!("series-5y-v{GENERATOR_VERSION}.redb"));
    let store = Store::open(&path).expect("open the bench store");
    if store.len().expect("count") != RUNS {
        store
            .import(samples.iter().cloned().map(Ok::<_, StoreError>))
            .expect("import");
    }
    store
}

fn bench(c: &mut Criterion) {
    let samples = samples();
    let columns = Columns::from_samples(&samples);
    println!(
        "column cache: {} runs, {} bytes ({:.1} MB)",
        columns.len(),
        columns.memory_bytes(),
        columns.memory_bytes() as f64 / 1e6
    );
    let end = FIRST + RUNS * HALF_HOUR_MS;
    let at = Timestamp::from_millis;
    let plans = PlanHistory::constant(Plan {
        download: Some("100Mbit/s".parse().expect("a rate")),
        upload: Some("10Mbit/s".parse().expect("a rate")),
        threshold: 0.8,
    });
    let five_years = history::series(&columns, at(FIRST), at(end), DEFAULT_POINTS, &plans);
    println!(
        "series 5 y: {} entries, {} failure markers, {} bytes of JSON",
        five_years.time.len(),
        five_years.failures.len(),
        serde_json::to_vec(&five_years).map_or(0, |json| json.len())
    );
    let zone = jiff::tz::db().get("Europe/Berlin").expect("Europe/Berlin");

    let mut group = c.benchmark_group("dashboard");
    group.bench_function("series 5 y, default points, as JSON", |b| {
        b.iter(|| {
            let series = history::series(&columns, at(FIRST), at(end), DEFAULT_POINTS, &plans);
            black_box(serde_json::to_vec(&series).map(|json| json.len()))
        })
    });
    group.bench_function("series 24 h of 5 y, default points, as JSON", |b| {
        b.iter(|| {
            let series =
                history::series(&columns, at(end - DAY_MS), at(end), DEFAULT_POINTS, &plans);
            black_box(serde_json::to_vec(&series).map(|json| json.len()))
        })
    });
    group.bench_function("heatmap 1 y Europe/Berlin, as JSON", |b| {
        b.iter(|| {
            let map = history::heatmap(
                &columns,
                at(end - 365 * DAY_MS),
                at(end),
                &zone,
                "Europe/Berlin",
                Metric::Download,
                &plans,
            );
            black_box(serde_json::to_vec(&map).map(|json| json.len()))
        })
    });
    group.bench_function("heatmap 5 y Europe/Berlin, as JSON", |b| {
        b.iter(|| {
            let map = history::heatmap(
                &columns,
                at(FIRST),
                at(end),
                &zone,
                "Europe/Berlin",
                Metric::Download,
                &plans,
            );
            black_box(serde_json::to_vec(&map).map(|json| json.len()))
        })
    });
    let store = store(&samples);
    group.sample_size(10);
    group.bench_function("column cache rebuild from the 5 y store", |b| {
        b.iter(|| black_box(Columns::build(&store).map(|columns| columns.len())))
    });
    let before_last = Columns::from_samples(&samples[..samples.len() - 1]);
    group.bench_function("column cache refresh after one new run, 5 y store", |b| {
        b.iter(|| black_box(Columns::refresh(&before_last, &store).map(|columns| columns.len())))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
