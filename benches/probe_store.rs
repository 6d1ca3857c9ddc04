//! The connectivity monitor's store over a synthetic year at the defaults: the gateway and 3
//! public targets, one minute row a minute (6 probes per target at the 10 s interval) with
//! realistic RTTs, loss, speed-test minutes under load and a few outages.
//!
//! Run with `cargo bench --bench probe_store` (release). It builds a new store under
//! `target/bench-stores/probes-year.redb` each run (about a minute), the way the service
//! would fill it, except for the batching: the monitor commits each minute with
//! `write_probes` (one fsync each), while this writes the year a day at a time with
//! `write_probes_batch` (the same records, keys and tables; one transaction per day).
//! `PER_MINUTE=1` writes it a minute per commit as the service does (some minutes more);
//! `YEARS=N` (1 to 10) writes N years, to see what each further year adds.
//! What per-minute commits cost, in time and in file size, is also measured on two days of
//! minutes in every run. After each simulated day it downsamples
//! as the service does once a day: minute rows older than [`MINUTE_DAYS`] days become
//! 10-minute buckets, [`DAY_BUCKETS`] buckets per call until none is left.
//!
//! Prints a markdown table: the file's size before and after `db compact` (`Store::compact`),
//! bytes per day, the rows kept, and the time to read the whole year with `probe_rows`
//! (median of 9). Goal: ≤ 25 MB for a year.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use internet_monitor::probe::outage::{Outage, OutageKind, Run};
use internet_monitor::probe::{ProbeMethod, Target, TargetKind};
use internet_monitor::store::Store;
use internet_monitor::store::probes::{MINUTE_DAYS, ProbeRow, ProbeStats, ProbeWrite};
use internet_monitor::time::Timestamp;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

const MINUTE_MS: u64 = 60_000;
const DAY_MINUTES: u64 = 24 * 60;
const YEAR_DAYS: u64 = 365;
/// 2024-01-01T00:00:00Z.
const FIRST_MINUTE: u64 = 1_704_067_200_000;
/// Buckets per downsampling call: one day's worth, as the service's daily call.
const DAY_BUCKETS: usize = 144;
/// Probes per target per minute at the default 10 s interval.
const PROBES: u32 = 6;

/// One target's baseline RTT in µs: the gateway on the LAN, three anycast resolvers.
const BASE_US: [f64; 4] = [650.0, 9_500.0, 13_000.0, 21_000.0];

/// One target's figures for minute `m` (minutes since the first), given whether the public
/// side is down (an ISP outage) and whether a speed test runs.
fn stats(rng: &mut Rng, target: u32, m: u64, isp_down: bool, under_load: bool) -> ProbeStats {
    let public = target > 0;
    let loss = if public { 0.004 } else { 0.001 };
    let lost = if public && isp_down {
        PROBES
    } else {
        (0..PROBES).filter(|_| rng.unit() < loss).count() as u32
    };
    let hour = (m / 60) % 24;
    // Evenings are busier: up to +40 % from 19:00 to 23:00 UTC.
    let evening = if (19..23).contains(&hour) { 1.4 } else { 1.0 };
    let load = if under_load { 3.0 } else { 1.0 };
    let base = BASE_US[target as usize] * evening;
    let (min, median, max) = if lost == PROBES {
        (None, None, None)
    } else {
        let min = base * (1.0 + 0.05 * rng.unit());
        let median = min + base * (0.02 + 0.3 * rng.unit()) * load;
        let spike = if rng.unit() < 0.01 { 5.0 } else { 1.0 };
        let max = median + base * (0.05 + 1.5 * rng.unit()) * load * spike;
        (Some(min as u64), Some(median as u64), Some(max as u64))
    };
    ProbeStats {
        target,
        sent: PROBES,
        lost,
        rtt_min_us: min,
        rtt_median_us: median,
        rtt_max_us: max,
        under_load_minutes: u32::from(under_load),
    }
}

fn minute_time(m: u64) -> Timestamp {
    Timestamp::from_millis(FIRST_MINUTE + m * MINUTE_MS)
}

/// The writes of day `day`: 1440 minutes, the outages that open and close in it (one every
/// ~10 days, 2 to 6 minutes), and the run (restarted each week, its end the last minute).
fn day(rng: &mut Rng, day: u64) -> Vec<ProbeWrite> {
    let first = day * DAY_MINUTES;
    let outage_at = rng
        .next()
        .is_multiple_of(10)
        .then(|| first + rng.next() % (DAY_MINUTES - 10));
    let outage_len = 2 + rng.next() % 5;
    let run_start = minute_time(first - first % (7 * DAY_MINUTES));
    (first..first + DAY_MINUTES)
        .map(|m| {
            let isp_down = outage_at.is_some_and(|at| (at..at + outage_len).contains(&m));
            let under_load = m % 30 < 1;
            let row = ProbeRow {
                start: minute_time(m),
                minutes: 1,
                stats: (0..4)
                    .map(|t| stats(rng, t, m, isp_down, under_load))
                    .collect(),
            };
            let mut outages = Vec::new();
            if let Some(at) = outage_at {
                let outage = Outage {
                    start: minute_time(at),
                    end: None,
                    kind: OutageKind::Isp,
                    unmonitored: Duration::ZERO,
                    restarts: 0,
                };
                if m == at {
                    outages.push(outage);
                } else if m == at + outage_len {
                    outages.push(Outage {
                        end: Some(minute_time(m)),
                        ..outage
                    });
                }
            }
            ProbeWrite {
                minute: Some(row),
                outages,
                run: Some(Run {
                    start: run_start,
                    end: Some(minute_time(m + 1)),
                }),
            }
        })
        .collect()
}

fn targets() -> Vec<Target> {
    let address = |text: &str| text.parse::<IpAddr>().expect("a literal address");
    let public = |text| Target {
        kind: TargetKind::Public,
        address: address(text),
        method: ProbeMethod::IcmpUnprivileged,
    };
    vec![
        Target {
            kind: TargetKind::Gateway,
            address: address("192.168.178.1"),
            method: ProbeMethod::IcmpUnprivileged,
        },
        public("1.1.1.1"),
        public("8.8.8.8"),
        public("9.9.9.9"),
    ]
}

/// Downsamples everything older than `MINUTE_DAYS` before `now`, as the daily call does.
fn downsample(store: &Store, now: Timestamp) -> usize {
    let before = now.saturating_sub(Duration::from_secs(MINUTE_DAYS * 86_400));
    let mut written = 0;
    loop {
        let n = store
            .downsample_probes(before, DAY_BUCKETS)
            .expect("downsampling");
        written += n;
        if n < DAY_BUCKETS {
            return written;
        }
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-stores");
    std::fs::create_dir_all(&dir).expect("target/bench-stores");

    // Per-minute commits, as the monitor makes them, on two days: their time and the file
    // they leave, against the same two days in two batched commits.
    let single = dir.join("probes-2d-per-minute.redb");
    let batched = dir.join("probes-2d-batched.redb");
    let _ = std::fs::remove_file(&single);
    let _ = std::fs::remove_file(&batched);
    let mut commit_times = Vec::new();
    {
        let store = Store::open(&single).expect("store");
        store.register_probe_targets(&targets()).expect("targets");
        let mut rng = Rng(15);
        for d in 0..2 {
            for write in day(&mut rng, d) {
                let started = Instant::now();
                store.write_probes(&write).expect("write");
                commit_times.push(started.elapsed());
            }
        }
        let store = Store::open(&batched).expect("store");
        store.register_probe_targets(&targets()).expect("targets");
        let mut rng = Rng(15);
        for d in 0..2 {
            store.write_probes_batch(&day(&mut rng, d)).expect("write");
        }
    }
    let commit = median(commit_times);

    // The year.
    let path = dir.join("probes-year.redb");
    let _ = std::fs::remove_file(&path);
    let store = Store::open(&path).expect("store");
    store.register_probe_targets(&targets()).expect("targets");
    let mut rng = Rng(2024);
    let started = Instant::now();
    let mut downsample_time = Duration::ZERO;
    let mut buckets = 0;
    let mut live_at_31_days = 0;
    let per_minute = std::env::var_os("PER_MINUTE").is_some();
    let years: u64 = std::env::var("YEARS")
        .ok()
        .and_then(|text| text.parse().ok())
        .filter(|years| (1..=10).contains(years))
        .unwrap_or(1);
    let days = years * YEAR_DAYS;
    let mut year_ends = Vec::new();
    for d in 0..days {
        if per_minute {
            for write in day(&mut rng, d) {
                store.write_probes(&write).expect("write");
            }
        } else {
            store.write_probes_batch(&day(&mut rng, d)).expect("write");
        }
        let now = minute_time((d + 1) * DAY_MINUTES);
        let t = Instant::now();
        buckets += downsample(&store, now);
        downsample_time += t.elapsed();
        if d + 1 == MINUTE_DAYS {
            live_at_31_days = file_size(&path);
        }
        if (d + 1) % YEAR_DAYS == 0 {
            year_ends.push(file_size(&path));
        }
    }
    let build = started.elapsed();
    // The last year: what `/api/v1/latency` reads for a year's window.
    let (from, to) = (
        minute_time((days - YEAR_DAYS) * DAY_MINUTES),
        minute_time(days * DAY_MINUTES),
    );
    let mut minutes = 0u64;
    let mut bucket_rows = 0u64;
    store
        .probe_rows(Timestamp::EPOCH, to, &mut |row| {
            if row.minutes == 1 {
                minutes += 1;
            } else {
                bucket_rows += 1;
            }
        })
        .expect("read");
    let outages = store.outages(Timestamp::EPOCH, to).expect("outages").len();
    let mut reads = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        let mut sent = 0u64;
        store
            .probe_rows(from, to, &mut |row| {
                sent += row.stats.iter().map(|s| u64::from(s.sent)).sum::<u64>();
            })
            .expect("read");
        black_box(sent);
        reads.push(t.elapsed());
    }
    let read = median(reads);
    drop(store);
    let before = file_size(&path);
    let compacted = Store::compact(&path).expect("compact");

    println!("| figure | value |");
    println!("|---|--:|");
    println!(
        "| one `write_probes` commit (a minute, fsync'd; median of {}) | {:.2} ms |",
        2 * DAY_MINUTES,
        commit.as_secs_f64() * 1e3
    );
    println!(
        "| 2 days, per-minute commits: file | {} |",
        mb(file_size(&single))
    );
    println!(
        "| 2 days, 2 batched commits: file | {} |",
        mb(file_size(&batched))
    );
    println!(
        "| {years} year(s) built ({}, daily downsampling) | {:.1} s |",
        if per_minute {
            "a commit per minute"
        } else {
            "365 daily batches"
        },
        build.as_secs_f64()
    );
    println!(
        "| downsampling, every call ({buckets} buckets) | {:.2} s |",
        downsample_time.as_secs_f64()
    );
    println!(
        "| file after 31 days (minutes only) | {} |",
        mb(live_at_31_days)
    );
    println!(
        "| rows kept: minutes / 10-min buckets / outages | {minutes} / {bucket_rows} / {outages} |"
    );
    for (year, size) in year_ends.iter().enumerate() {
        println!(
            "| file after year {}, as written | {} |",
            year + 1,
            mb(*size)
        );
    }
    println!("| file at the end, before `db compact` | {} |", mb(before));
    println!(
        "| file at the end, after `db compact` | {} ({:.1} KB/day) |",
        mb(compacted.after),
        compacted.after as f64 / 1e3 / days as f64
    );
    println!(
        "| read the last year with `probe_rows` (median of 9) | {:.2} ms |",
        read.as_secs_f64() * 1e3
    );
}
