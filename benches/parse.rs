//! How long it takes to turn one Ookla CLI result into a sample (target: ≤ 20 µs).
//!
//! Run with `cargo bench --bench parse`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use internet_monitor::sample::{Sample, Trigger};
use internet_monitor::speedtest::ookla::{Exit, ParseOptions, RunOutput, parse};
use internet_monitor::time::Timestamp;

/// A real `speedtest --format=json` result with loaded latencies (CLI 1.2).
const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/ok-1.2-with-loaded-latency.stdout");

/// 2023-09-18T11:30:07Z, the fixture's own timestamp.
const STARTED: Timestamp = Timestamp::from_millis(1_695_036_607_000);

fn parse_one_result(c: &mut Criterion) {
    let output = RunOutput {
        stdout: FIXTURE.to_vec(),
        stderr: Vec::new(),
        exit: Exit::Code(0),
    };
    let options = ParseOptions {
        store_ip: false,
        max_bytes_per_second: 12.5e9,
    };
    let base = || Sample::empty(STARTED, Trigger::Schedule);

    // Measure the path that matters: a fixture that does not parse would time the error path.
    let parsed = parse(&output, base(), &options);
    assert!(parsed.is_success(), "fixture did not parse: {parsed:?}");
    assert_eq!(parsed.download_bytes_per_second, Some(92_727_670.0));

    let mut group = c.benchmark_group("parse");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(FIXTURE.len() as u64));
    group.bench_function("ookla_result", |b| {
        b.iter(|| parse(black_box(&output), base(), black_box(&options)))
    });
    group.finish();
}

criterion_group!(benches, parse_one_result);
criterion_main!(benches);
