//! 2,000 hostile connections against a real `serve` over a big store: clients that never read
//! large answers (JSON pages and CSV), clients that trickle headers, idle clients and clients
//! looping on the heaviest summary. Meanwhile the process stays within 64 MiB, `/metrics` and
//! `/healthz` answer within 100 ms, every scheduled test runs in its slot and is stored at once, and the
//! server drops every hostile connection by itself (header and write timeouts).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Env, Server, try_request};

/// Hostile connections held at once, of five kinds.
const HOSTILE: usize = 2000;
/// Of which loop on the heaviest summary (each on its own thread, a connection at a time).
const LOOPERS: usize = 8;
/// Samples in the store: one a minute, ending an hour ago.
const STORED: u64 = 50_000;
/// The goal of issue 11.
const MAX_RSS_KIB: u64 = 64 * 1024;
/// For `/metrics` (the goal) and `/healthz` (which eight summary loopers used to push to 5-9 s):
/// the bound of 95 % of the probes. One probe in twenty may meet a scheduling hiccup of the
/// shared 2-core machine (136 ms once in CI, with the file's other test running beside it).
const MAX_METRICS_LATENCY: Duration = Duration::from_millis(100);
/// The bound of every probe: starvation, as the loopers caused, takes seconds.
const MAX_WORST_LATENCY: Duration = Duration::from_secs(1);
/// Scheduled tests run every this many seconds, so several fall in the abuse.
const INTERVAL_SECONDS: u64 = 2;
/// How long the abuse is held while /metrics and the schedule are watched.
const ABUSE: Duration = Duration::from_secs(10);
/// A scheduled sample must start this close to its slot and be stored this soon after.
const SLOT_TOLERANCE_MS: u64 = 500;
const STORED_WITHIN_MS: u64 = 1_000;

/// Lowers the calling thread's priority (nice 10). The hostile clients run on the test's
/// machine, where they would otherwise take CPU from the server under test: in the field they
/// run on other machines. The probes keep the normal priority.
fn lower_priority() {
    // SAFETY: setpriority only changes this thread's (the tid's) scheduling priority.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

/// RFC 3339 UTC (`2026-11-24T18:00:00.123Z`, as the log writes times; any number of
/// fraction digits, or none) to ms since the epoch.
fn parse_millis(text: &str) -> u64 {
    let number = |range: std::ops::Range<usize>| -> i64 {
        text.get(range)
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("not an RFC 3339 time: {text:?}"))
    };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));
    let fraction = text
        .get(19..)
        .and_then(|rest| rest.strip_suffix('Z'))
        .unwrap_or_else(|| panic!("not a UTC time: {text:?}"));
    let millis = match fraction.strip_prefix('.') {
        Some(digits) => format!("{digits:0<3}")[..3]
            .parse::<i64>()
            .expect("fraction digits"),
        None => 0,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    u64::try_from(seconds * 1_000 + millis).expect("a time after 1970")
}

fn format_millis(millis: u64) -> String {
    // The inverse of parse_millis, for the import file.
    let days = i64::try_from(millis / 86_400_000).expect("fits");
    let rest = millis % 86_400_000;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1_000 % 60,
        rest % 1_000
    )
}

fn now_millis() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

/// `STORED` one-minute successes with a server and an ISP (so pages are as large as real ones),
/// ending an hour ago.
fn seed(env: &Env) {
    let end = now_millis() - 3_600_000;
    let lines: Vec<serde_json::Value> = (0..STORED)
        .map(|i| {
            serde_json::json!({
                "time": format_millis(end - (STORED - i) * 60_000),
                "outcome": "success",
                "trigger": "schedule",
                "download_bytes_per_second": 100_000_000 + i * 7 % 9_999_991,
                "upload_bytes_per_second": 30_000_000 + i * 13 % 999_983,
                "ping_seconds": 0.005 + (i % 4) as f64 / 1_000.0,
                "server": {"id": 57318, "name": "Zzoomm Plc", "location": "Slough",
                           "country": "United Kingdom", "host": "speedtest.zzoomm.com"},
                "isp": "Giganet Limited",
                "result_url": format!("https://www.speedtest.net/result/c/{i:08}-aaaa-bbbb-cccc-dddddddddddd"),
            })
        })
        .collect();
    env.import(&lines);
}

/// VmRSS or VmHWM of `pid`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    try_status_kib(pid, field).unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// `None` once the process is gone.
fn try_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Opens one hostile connection of kind `i % 4`: a JSON page of 10,000 samples or a CSV
/// export, asked for and never read; headers that never end (60 KB, as in issue 11, or just
/// under the 8 KiB the server buffers, which it must hold until the header timeout); or
/// nothing at all.
fn hostile(address: &str, i: usize) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("connect a hostile client");
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let request = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    // The server may close a connection it refuses; a failed write is part of the test.
    let _ = match i % 4 {
        0 => stream.write_all(request("/api/v1/samples?limit=10000").as_bytes()),
        1 => stream.write_all(request("/api/v1/samples.csv").as_bytes()),
        2 => {
            let padding = "a".repeat(if i % 8 == 2 { 60_000 } else { 8_000 });
            stream.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {padding}").as_bytes())
        }
        _ => Ok(()),
    };
    stream
}

#[test]
fn hostile_clients_neither_exhaust_memory_nor_starve_the_recorder() {
    common::raise_open_files_limit(HOSTILE as u64 + 500);
    let env = Env::new();
    seed(&env);
    let interval = format!("{INTERVAL_SECONDS}s");
    let mut server = Server::start(env.serve(
        "ok-1.2-with-loaded-latency",
        "replay",
        &["--interval", &interval],
    ));
    let pid = server.pid();
    // The first scheduled test fixes the grid: every slot is its time plus k intervals.
    let first = server.wait_for_log("test succeeded");
    let grid = log_time(&first);
    let idle_files = open_files(pid);
    let idle_rss = status_kib(pid, "VmRSS");

    // RSS, sampled throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                let Some(rss) = try_status_kib(pid, "VmRSS") else {
                    break;
                };
                peak = peak.max(rss);
                // The sampler's period, not synchronisation.
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };

    let abuse_started = now_millis();
    // Opened from a thread of their own, so that /metrics and the schedule are watched from
    // the first connection on.
    let opener = {
        let address = server.address.clone();
        std::thread::spawn(move || {
            lower_priority();
            (0..HOSTILE - LOOPERS)
                .map(|i| hostile(&address, i))
                .collect::<Vec<TcpStream>>()
        })
    };
    let summaries = Arc::new(AtomicUsize::new(0));
    let loopers: Vec<_> = (0..LOOPERS)
        .map(|_| {
            let (stop, summaries, address) =
                (stop.clone(), summaries.clone(), server.address.clone());
            std::thread::spawn(move || {
                lower_priority();
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match try_request(&address, "GET", "/api/v1/summary?window=3650d") {
                        Ok(response) => {
                            statuses.push(response.status);
                            summaries.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => panic!("a summary request failed: {err}"),
                    }
                }
                statuses
            })
        })
        .collect();
    let opened = Instant::now();

    // /metrics and /healthz, every 100 ms of the abuse, on a new connection each time.
    let mut latencies = Vec::new();
    let mut stored = Vec::new();
    while opened.elapsed() < ABUSE {
        for path in ["/metrics", "/healthz"] {
            let started = Instant::now();
            let response = try_request(&server.address, "GET", path).expect("an answer");
            latencies.push((started.elapsed(), path));
            assert_eq!(response.status, 200, "{path} under abuse");
        }
        while let Some(line) = server.next_log_within("test succeeded", Duration::ZERO) {
            stored.push((log_time(&line), now_millis()));
        }
        // The probes' period, not synchronisation.
        std::thread::sleep(Duration::from_millis(100));
    }
    let abuse_ended = now_millis();
    let mut clients = opener.join().expect("the opener panicked");
    eprintln!("{} hostile connections were open", clients.len() + LOOPERS);

    // Every hostile connection is closed by the server itself, while the clients still hold
    // them: idle and trickling ones by the header timeout, those that never read by the write
    // timeout. (The loopers stop first: theirs are well-behaved connections.)
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<u16> = loopers
        .into_iter()
        .flat_map(|looper| looper.join().expect("a looper panicked"))
        .collect();
    let peak_rss = sampler.join().expect("the RSS sampler");
    // Asserted below, with the figures.
    let _ = common::poll_within(Duration::from_secs(30), || {
        (open_files(pid) <= idle_files + 10).then_some(())
    });
    let files_left = open_files(pid);
    let peak_hwm = status_kib(pid, "VmHWM");
    let rss_after = status_kib(pid, "VmRSS");
    for stream in &mut clients {
        let _ = stream.flush();
    }
    drop(clients);

    latencies.sort();
    let (worst, worst_path) = *latencies.last().expect("probes");
    let median = latencies[latencies.len() / 2].0;
    let p95 = latencies[latencies.len() * 95 / 100].0;
    eprintln!(
        "RSS {idle_rss} KiB idle, peak {peak_rss} KiB sampled, VmHWM {peak_hwm} KiB, {rss_after} KiB after; \
         /metrics and /healthz median {median:?}, 95 % {p95:?}, worst {worst:?} ({worst_path}) of {} probes; {} summaries answered ({} with 200); \
         scheduled samples (time, stored at): {stored:?}; files open {idle_files} idle, {files_left} after",
        latencies.len(),
        statuses.len(),
        statuses.iter().filter(|&&s| s == 200).count()
    );
    assert!(
        peak_hwm <= MAX_RSS_KIB,
        "peak RSS {peak_hwm} KiB exceeds {MAX_RSS_KIB} KiB"
    );
    assert!(
        p95 <= MAX_METRICS_LATENCY,
        "95 % of the probes took up to {p95:?} (median {median:?}) under abuse"
    );
    assert!(
        worst <= MAX_WORST_LATENCY,
        "{worst_path} took {worst:?} (median {median:?}, 95 % up to {p95:?}) under abuse"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 503),
        "summaries answer 200, or 503 when the readers are busy"
    );
    assert!(
        statuses.contains(&200),
        "summaries are still answered under abuse"
    );

    // Every slot that fell in the abuse has its sample, started in the slot, stored at once.
    let interval_ms = INTERVAL_SECONDS * 1_000;
    let first_slot = (abuse_started - grid).div_ceil(interval_ms);
    let last_slot = (abuse_ended.saturating_sub(STORED_WITHIN_MS) - grid) / interval_ms;
    for slot in first_slot..=last_slot {
        let due = grid + slot * interval_ms;
        let sample = stored
            .iter()
            .find(|(time, _)| time.abs_diff(due) <= SLOT_TOLERANCE_MS);
        let Some(&(time, logged)) = sample else {
            panic!("no scheduled sample for the slot at {due} ms; stored: {stored:?}");
        };
        assert!(
            logged.saturating_sub(time) <= STORED_WITHIN_MS,
            "the sample of the slot at {due} ms was stored {} ms after it started",
            logged - time
        );
    }
    assert!(
        files_left <= idle_files + 10,
        "the server still holds {files_left} files ({idle_files} when idle) 30 s after the abuse"
    );
    assert_eq!(server.get("/healthz").status, 200);
    server.assert_clean_exit();
}

/// The `time=` field of a text log line, in ms since the epoch.
fn log_time(line: &str) -> u64 {
    let time = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("time="))
        .unwrap_or_else(|| panic!("no time= in {line:?}"));
    parse_millis(time)
}

#[test]
fn time_formats_round_trip() {
    for millis in [0, 951_782_400_123, 1_764_460_800_000, 4_102_444_799_999] {
        assert_eq!(parse_millis(&format_millis(millis)), millis);
    }
    assert_eq!(format_millis(1_764_460_800_000), "2025-11-30T00:00:00.000Z");
    assert_eq!(parse_millis("2025-11-30T00:00:00Z"), 1_764_460_800_000);
    assert_eq!(parse_millis("2025-11-30T00:00:00.5Z"), 1_764_460_800_500);
    assert_eq!(
        parse_millis("2025-11-30T00:00:00.123456Z"),
        1_764_460_800_123
    );
}
