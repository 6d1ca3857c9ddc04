//! The redb store under realistic data: one sample a minute, every minute, for years.
//!
//! Run with `cargo bench --bench store`. The big stores are built once (deterministically) and
//! kept under `target/bench-stores/`; a later run reuses a file when it holds the expected
//! number of samples, so only the first run pays for building them.
//!
//! Targets: a 24 h window from a 5-year store in ≤ 100 µs and no slower than from a 1-year
//! store; ≤ 100 file bytes per sample at 1 000 000 samples. `append` is one fsync'd commit and
//! is reported as measured.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use internet_monitor::sample::{FailureReason, Sample, Trigger};
use internet_monitor::speedtest::ookla::{Exit, ParseOptions, RunOutput, parse};
use internet_monitor::store::{Store, StoreError};
use internet_monitor::time::Timestamp;
use redb::ReadableDatabase;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// The result every generated sample is a variation of.
const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/ok-1.2-with-loaded-latency.stdout");

const MINUTE_MS: u64 = 60_000;
/// 2024-01-01T00:00:00Z: the first generated sample's minute.
const FIRST_MINUTE: u64 = 1_704_067_200_000;
const SAMPLES_PER_DAY: u64 = 24 * 60;
const ONE_YEAR: u64 = 365 * SAMPLES_PER_DAY;
const FIVE_YEARS: u64 = 5 * ONE_YEAR;
const ONE_MILLION: u64 = 1_000_000;
/// Samples per `import` transaction while building a store.
const CHUNK: u64 = 50_000;
/// Bumped whenever the generator or the sample format changes, so stale cached stores are not
/// reused (2: format version 2, with checksums and links).
const GENERATOR_VERSION: u32 = 2;

const NO_DNS: &str = "Configuration - Couldn't resolve host name (HostNotFoundException)";

impl Rng {
    fn for_sample(index: u64) -> Self {
        Rng(index ^ 0x5EED_1DEA_F00D_CAFE)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// `value` scaled by a factor uniform in `1 ± spread`, rounded to a whole number.
    fn around(&mut self, value: f64, spread: f64) -> u64 {
        let unit = self.unit();
        (value * (1.0 + spread * (2.0 * unit - 1.0))).round() as u64
    }

    /// A random (version 4) UUID, lower-case and hyphenated, as Ookla prints result ids.
    fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        bytes[6] = bytes[6] & 0x0f | 0x40;
        bytes[8] = bytes[8] & 0x3f | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

/// Generates sample `index` of a one-a-minute series; the same index always gives the same
/// sample, so stores built in any number of chunks are identical.
struct Series {
    template: Sample,
}

impl Series {
    fn new() -> Self {
        let output = RunOutput {
            stdout: FIXTURE.to_vec(),
            stderr: Vec::new(),
            exit: Exit::Code(0),
        };
        let options = ParseOptions {
            store_ip: false,
            max_bytes_per_second: 12.5e9,
        };
        let template = parse(
            &output,
            Sample::empty(Timestamp::from_millis(FIRST_MINUTE), Trigger::Schedule),
            &options,
        );
        assert!(template.is_success(), "fixture did not parse: {template:?}");
        assert!(template.server.is_some() && template.isp.is_some());
        Series { template }
    }

    /// When sample `index` started: its minute plus up to a second of scheduling delay. The
    /// first draw of the sample's generator, so it agrees with `sample(index).time`.
    fn start(rng: &mut Rng, index: u64) -> Timestamp {
        Timestamp::from_millis(FIRST_MINUTE + index * MINUTE_MS + rng.between(0, 999))
    }

    fn time(&self, index: u64) -> Timestamp {
        Self::start(&mut Rng::for_sample(index), index)
    }

    fn sample(&self, index: u64) -> Sample {
        let mut rng = Rng::for_sample(index);
        let time = Self::start(&mut rng, index);
        if rng.between(0, 49) == 0 {
            return Sample::failure(
                time,
                Trigger::Schedule,
                FailureReason::NoConnectivity,
                NO_DNS,
            );
        }
        // Figures in the units the CLI reports them, converted the way the parser does.
        let micros =
            |rng: &mut Rng, value: f64, spread: f64| rng.around(value * 1e6, spread) as f64 / 1e6;
        let download = rng.around(92_727_670.0, 0.04);
        let upload = rng.around(31_664_073.0, 0.04);
        let download_ms = rng.between(12_500, 13_800);
        let upload_ms = rng.between(12_500, 13_800);
        Sample {
            duration_seconds: Some(rng.between(20_500, 23_500) as f64 / 1e3),
            download_bytes_per_second: Some(download as f64),
            upload_bytes_per_second: Some(upload as f64),
            ping_seconds: Some(micros(&mut rng, 0.005631, 0.15)),
            jitter_seconds: Some(micros(&mut rng, 0.000480, 0.5)),
            packet_loss_ratio: Some(0.0),
            download_latency_seconds: Some(micros(&mut rng, 0.008052, 0.3)),
            upload_latency_seconds: Some(micros(&mut rng, 0.007308, 0.3)),
            downloaded_bytes: Some(download * download_ms / 1000),
            uploaded_bytes: Some(upload * upload_ms / 1000),
            server: self.template.server.clone(),
            isp: self.template.isp.clone(),
            result_url: Some(format!("https://www.speedtest.net/result/c/{}", rng.uuid())),
            ..Sample::empty(time, Trigger::Schedule)
        }
    }
}

fn stores_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-stores")
}

/// A store holding samples `0..count` of the series, built on first use and then reused.
fn cached_store(series: &Series, name: &str, count: u64) -> PathBuf {
    let dir = stores_dir();
    fs::create_dir_all(&dir).expect("create target/bench-stores");
    let path = dir.join(format!("{name}-v{GENERATOR_VERSION}.redb"));
    if path.exists() {
        let reusable = Store::open_read_only(&path)
            .and_then(|store| store.len())
            .is_ok_and(|len| len == count);
        if reusable {
            return path;
        }
        fs::remove_file(&path).expect("remove stale bench store");
    }
    let started = Instant::now();
    let store = Store::open(&path).expect("create bench store");
    let mut next = 0;
    while next < count {
        let end = (next + CHUNK).min(count);
        let added = store
            .import((next..end).map(|index| Ok::<_, StoreError>(series.sample(index))))
            .expect("import chunk");
        assert_eq!(added, end - next, "generated times must be unique");
        next = end;
    }
    assert_eq!(store.len().expect("len"), count);
    drop(store);
    println!(
        "built {} ({count} samples) in {:.1?}",
        path.display(),
        started.elapsed()
    );
    path
}

fn open(path: &Path) -> Store {
    Store::open_read_only(path).expect("open bench store")
}

/// How many bytes of file each sample costs at a million samples (and at 1 and 5 years).
/// Printed, not timed.
fn bytes_per_sample(_: &mut Criterion) {
    let series = Series::new();
    for (name, count) in [
        ("million", ONE_MILLION),
        ("year-1", ONE_YEAR),
        ("year-5", FIVE_YEARS),
    ] {
        let path = cached_store(&series, name, count);
        let size = fs::metadata(&path).expect("stat bench store").len();
        println!(
            "store/bytes_per_sample/{name}: {size} bytes / {count} samples = {} bytes per sample \
             ({:.2}){}",
            size / count,
            size as f64 / count as f64,
            if count == ONE_MILLION {
                " [target <= 100]"
            } else {
                ""
            }
        );
    }
}

/// One durable append (an fsync'd commit per call), to an empty store and to a 1-year one.
fn append(c: &mut Criterion) {
    let series = Series::new();
    let year = cached_store(&series, "year-1", ONE_YEAR);
    let scratch = tempfile::tempdir().expect("temp dir");

    let mut group = c.benchmark_group("store/append");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    let fresh = Store::open(&scratch.path().join("fresh.redb")).expect("open fresh store");
    let mut index = 0;
    group.bench_function("empty_store", |b| {
        b.iter_batched(
            || {
                index += 1;
                series.sample(index)
            },
            |sample| fresh.append(&sample).expect("append"),
            BatchSize::SmallInput,
        )
    });
    drop(fresh);

    let copy = scratch.path().join("year-1.redb");
    fs::copy(&year, &copy).expect("copy 1-year store");
    let grown = Store::open(&copy).expect("open 1-year copy");
    let mut index = ONE_YEAR;
    group.bench_function("1y_store", |b| {
        b.iter_batched(
            || {
                index += 1;
                series.sample(index)
            },
            |sample| grown.append(&sample).expect("append"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The newest sample, and the last 24 hours, from 1- and 5-year stores.
fn read(c: &mut Criterion) {
    let series = Series::new();
    let stores = [
        (
            "1y",
            ONE_YEAR,
            open(&cached_store(&series, "year-1", ONE_YEAR)),
        ),
        (
            "5y",
            FIVE_YEARS,
            open(&cached_store(&series, "year-5", FIVE_YEARS)),
        ),
    ];

    let mut group = c.benchmark_group("store/latest");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, count, store) in &stores {
        let newest = store.latest().expect("latest").expect("store is not empty");
        assert_eq!(newest, series.sample(count - 1));
        group.bench_function(*name, |b| b.iter(|| store.latest().expect("latest")));
    }
    group.finish();

    let mut group = c.benchmark_group("store/range_24h");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(SAMPLES_PER_DAY));
    for (name, count, store) in &stores {
        // The 1440 samples ending with the newest: from the 1440th-newest's time, inclusive, to
        // just after the newest's.
        let from = series.time(count - SAMPLES_PER_DAY);
        let to = Timestamp::from_millis(series.time(count - 1).as_millis() + 1);
        let window = store.range(from, to).expect("range");
        assert_eq!(window.len() as u64, SAMPLES_PER_DAY);
        assert_eq!(window.last(), Some(&series.sample(count - 1)));
        group.bench_function(*name, |b| {
            b.iter(|| store.range(black_box(from), black_box(to)).expect("range"))
        });
    }
    group.finish();
}

/// Where the time of a 24 h `range` goes, for when the target above is missed: the same 1440
/// samples through `for_each` (no `Vec`), through redb alone (no decoding: the floor any
/// decoder sits on), and from small stores with and without their result URLs.
fn range_breakdown(c: &mut Criterion) {
    let series = Series::new();
    let path = cached_store(&series, "year-5", FIVE_YEARS);
    let from = series.time(FIVE_YEARS - SAMPLES_PER_DAY);
    let to = Timestamp::from_millis(series.time(FIVE_YEARS - 1).as_millis() + 1);

    let mut group = c.benchmark_group("store/range_24h_breakdown");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(SAMPLES_PER_DAY));

    let store = open(&path);
    group.bench_function("5y/for_each_no_op", |b| {
        b.iter(|| {
            let mut seen = 0u64;
            store
                .for_each(black_box(from), black_box(to), |sample| {
                    black_box(sample);
                    seen += 1;
                    Ok::<_, StoreError>(())
                })
                .expect("for_each");
            seen
        })
    });
    drop(store);

    // The store's private table name: if it changes, this part says so instead of failing.
    const SAMPLES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("samples_v1");
    let db = redb::Builder::new()
        .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
        .open_read_only(&path)
        .expect("open bench store with redb");
    let raw_window = || -> Result<usize, redb::Error> {
        let txn = db.begin_read()?;
        let table = txn.open_table(SAMPLES)?;
        let mut bytes = 0;
        for entry in table.range(from.as_millis()..to.as_millis())? {
            bytes += entry?.1.value().len();
        }
        Ok(bytes)
    };
    match raw_window() {
        Ok(_) => group.bench_function("5y/redb_only_no_decode", |b| {
            b.iter(|| raw_window().expect("raw range"))
        }),
        Err(err) => {
            println!("store/range_24h_breakdown: raw redb read skipped: {err}");
            &mut group
        }
    };

    // The same window written to small stores, as generated and without result URLs.
    let scratch = tempfile::tempdir().expect("temp dir");
    for (name, keep_url) in [
        ("window_as_generated", true),
        ("window_without_result_url", false),
    ] {
        let small = scratch.path().join(format!("{name}.redb"));
        let store = Store::open(&small).expect("open small store");
        let window = (FIVE_YEARS - SAMPLES_PER_DAY..FIVE_YEARS).map(|index| {
            let mut sample = series.sample(index);
            if !keep_url {
                sample.result_url = None;
            }
            Ok::<_, StoreError>(sample)
        });
        store.import(window).expect("import window");
        assert_eq!(
            store.range(from, to).expect("range").len() as u64,
            SAMPLES_PER_DAY
        );
        group.bench_function(name, |b| {
            b.iter(|| store.range(black_box(from), black_box(to)).expect("range"))
        });
    }
    group.finish();

    // What every read pays before it reads anything: redb's read transaction, which in the
    // store's multi-process (`SingleWriter`) mode re-checks the file for another process's
    // commits.
    let mut group = c.benchmark_group("store/latest_breakdown");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("5y/redb_begin_read_only", |b| {
        b.iter(|| db.begin_read().expect("begin_read"))
    });
    group.finish();
}

criterion_group!(benches, bytes_per_sample, append, read, range_breakdown);
criterion_main!(benches);
