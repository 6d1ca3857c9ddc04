//! The accuracy lab: the HTTP engine (`run-once --engine http`) against `internet-monitor
//! target` on a link shaped by the kernel's token bucket (`tc … tbf`) between two network
//! namespaces, checked against Debian's `iperf3` on the same link in the same test, its
//! `downloaded_bytes` / `uploaded_bytes` against the bytes the client's interface counted, and
//! its latency against a relay that adds a known delay (this kernel has no `netem`).
//!
//! Every test needs root, iproute2 and iperf3, so each is `#[ignore]`d with that said; `.ci/run`
//! installs the tools and runs the ignored tests, where a missing tool fails the test with the
//! fix ([`netns::preflight`]). The cases run one at a time ([`one_at_a_time`]): two speed tests
//! sharing two cores would measure each other. Each throughput test prints its table (what
//! iperf3 and the engine measured) on stderr; `cargo test --test accuracy_lab -- --ignored
//! --nocapture` shows them.

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use netns::{Contention, Direction, Lab, Relay, Spawned};

/// How long each direction of a test runs: both iperf3's `-t` and the engine's
/// `--http-duration` (whose first fifth is ramp-up, left out of its figure).
const SECONDS: u32 = 4;
/// The largest error allowed against iperf3, as a share of iperf3's figure.
const TOLERANCE: f64 = 0.05;

static SEQUENTIAL: Mutex<()> = Mutex::new(());

/// Holds the lab for one test: tests run on parallel threads, measurements must not.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    SEQUENTIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `internet-monitor target` in the lab's target namespace, on a port it chooses; ready once
/// it logged "listening on http://ADDR".
fn start_target(lab: &Lab) -> (Spawned, SocketAddr) {
    let listen = format!("{}:0", netns::TARGET_IP);
    let mut target = lab.spawn(
        &lab.target,
        &common::command(&["target", "--listen", &listen]),
    );
    let line = target.wait_for_line("listening on http://", common::PATIENCE);
    let address = netns::listening_address(&line);
    let address = address
        .parse()
        .unwrap_or_else(|err| panic!("target's address {address:?} ({err}) in {line:?}"));
    (target, address)
}

/// One `run-once --engine http` in the client's namespace against `server`; its sample, which
/// must be a success.
fn run_once(lab: &Lab, server: &str, streams: u32, duration: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("samples.redb");
    let streams = streams.to_string();
    let command = common::command(&[
        "run-once",
        "--engine",
        "http",
        "--http-server",
        server,
        "--http-protocol",
        "cloudflare",
        "--http-streams",
        &streams,
        "--http-duration",
        duration,
        "--timeout",
        "60s",
        "--db",
        db.to_str().expect("a UTF-8 temporary path"),
    ]);
    // The engine's own account of each direction (bytes and seconds after the ramp-up), shown
    // with the test's output when a figure misses: what to look at first.
    let mut command = command;
    command.env("RUST_LOG", "internet_monitor::speedtest=debug");
    let output = lab.output(&lab.client, &command, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines().filter(|line| line.contains(" finished: ")) {
        eprintln!("--http-streams {streams}: {line}");
    }
    assert_eq!(
        output.status.code(),
        Some(0),
        "run-once --http-streams {streams} against {server} failed:\n{stdout}\n{stderr}"
    );
    let sample: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|err| panic!("run-once printed no JSON sample ({err}):\n{stdout}"));
    assert_eq!(sample["outcome"], "success", "{sample:#}");
    sample
}

/// A figure of `sample`, a number.
fn figure(sample: &serde_json::Value, key: &str) -> f64 {
    sample[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {sample:#}"))
}

/// What a sample says moved in one direction, against the interface's count.
struct Moved {
    direction: Direction,
    streams: u32,
    reported: f64,
    /// Bytes the client's veth end received (download) or sent (upload) during the run.
    wire: f64,
}

/// One comparison: the engine's goodput against iperf3's, on the same link.
struct Row {
    mbit: u32,
    direction: Direction,
    streams: u32,
    /// Bytes per second.
    iperf3: f64,
    /// Bytes per second.
    ours: f64,
    /// Cores other processes kept busy while iperf3 measured (both directions).
    others_iperf3: f64,
    /// The same while the engine measured.
    others_ours: f64,
}

impl Row {
    fn error(&self) -> f64 {
        (self.ours - self.iperf3) / self.iperf3
    }
}

fn table(rows: &[Row]) -> String {
    let mut text = String::from(
        "| shaped | direction | streams | iperf3 Mbit/s | ours Mbit/s | error | other processes' cores: iperf3, ours |\n|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        text.push_str(&format!(
            "| {} Mbit/s | {:?} | {} | {:.1} | {:.1} | {:+.1} % | {:.2}, {:.2} |\n",
            row.mbit,
            row.direction,
            row.streams,
            row.iperf3 * 8.0 / 1e6,
            row.ours * 8.0 / 1e6,
            row.error() * 100.0,
            row.others_iperf3,
            row.others_ours
        ));
    }
    text
}

/// iperf3 and then the engine, download and upload with `streams` streams: the two rows to
/// compare; what the sample says moved, against the interface, is added to `moved`.
fn compare(
    lab: &Lab,
    target: &Spawned,
    server: &str,
    mbit: u32,
    streams: u32,
    duration: &str,
    moved: &mut Vec<Moved>,
) -> Vec<Row> {
    let busy = Contention::start(Some(target.pid()));
    let down = lab.iperf3(Direction::Download, streams, SECONDS) / 8.0;
    let up = lab.iperf3(Direction::Upload, streams, SECONDS) / 8.0;
    let others_iperf3 = busy.cores();
    let busy = Contention::start(Some(target.pid()));
    let (rx, tx) = lab.wire_bytes(&lab.client);
    let sample = run_once(lab, server, streams, duration);
    let others_ours = busy.cores();
    let (rx_after, tx_after) = lab.wire_bytes(&lab.client);
    for (direction, key, wire) in [
        (Direction::Download, "downloaded_bytes", rx_after - rx),
        (Direction::Upload, "uploaded_bytes", tx_after - tx),
    ] {
        moved.push(Moved {
            direction,
            streams,
            reported: figure(&sample, key),
            wire: wire as f64,
        });
    }
    [
        (Direction::Download, down, "download_bytes_per_second"),
        (Direction::Upload, up, "upload_bytes_per_second"),
    ]
    .into_iter()
    .map(|(direction, iperf3, key)| Row {
        mbit,
        direction,
        streams,
        iperf3,
        ours: figure(&sample, key),
        others_iperf3,
        others_ours,
    })
    .collect()
}

/// Download and upload with 1 and 4 streams on a link shaped to `mbit` Mbit/s: the engine
/// within [`TOLERANCE`] of iperf3 with as many streams, each measured right after the other.
///
/// A streams count with a figure out of tolerance is measured once more, both tools again,
/// and the repeat is what counts (the first attempt is printed): one 4 s reading of either
/// tool strays now and then on this shared 2-core machine with nothing else busy (CI, stop
/// 26: iperf3 read 18.0 Mbit/s uploading once on a 20 Mbit/s link where its three other
/// readings and all four of the engine's were 19.1–19.5). An error of the engine's own
/// misses in both attempts.
fn throughput_matches_iperf3(mbit: u32) {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let lab = Lab::new();
    lab.shape(mbit, Duration::from_millis(50));
    let (mut target, address) = start_target(&lab);
    let server = format!("http://{address}");
    let duration = format!("{SECONDS}s");
    let mut rows = Vec::new();
    let mut moved = Vec::new();
    for streams in [1, 4] {
        let mut attempt = compare(&lab, &target, &server, mbit, streams, &duration, &mut moved);
        if attempt.iter().any(|row| row.error().abs() > TOLERANCE) {
            eprintln!(
                "{}{streams} stream(s) missed on the first attempt: measuring both again",
                table(&attempt)
            );
            attempt = compare(&lab, &target, &server, mbit, streams, &duration, &mut moved);
        }
        rows.extend(attempt);
    }
    assert!(target.is_running(), "the target died: {:?}", target.drain());
    let table = table(&rows);
    eprintln!("{table}(lab time {:.1} s)", started.elapsed().as_secs_f64());
    let mut moved_table = String::from(
        "| direction | streams | bytes the sample reports | bytes on the client's interface | share |\n|---|---|---|---|---|\n",
    );
    for row in &moved {
        moved_table.push_str(&format!(
            "| {:?} | {} | {:.0} | {:.0} | {:.1} % |\n",
            row.direction,
            row.streams,
            row.reported,
            row.wire,
            row.reported / row.wire * 100.0
        ));
    }
    eprintln!("{moved_table}");
    // What the sample says moved (`--data-budget` adds it up) is the payload of what crossed
    // the interface: never more, and no less than 90 % of it (headers are 1–5 %, depending
    // on how large the segments the veth counts are).
    let miscounted = moved
        .iter()
        .filter(|row| row.reported > row.wire || row.reported < row.wire * 0.9)
        .count();
    assert_eq!(
        miscounted, 0,
        "downloaded_bytes / uploaded_bytes not 90–100 % of the bytes the client's interface \
         received / sent (headers included):\n{moved_table}"
    );
    let wrong: Vec<&Row> = rows
        .iter()
        .filter(|row| row.error().abs() > TOLERANCE)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} figures more than {} % from iperf3's on the same {mbit} Mbit/s link:\n{table}\
         (other processes busy on this machine's {} cores during a measurement make it \
         unreliable: run the lab on a quiet machine, as .ci/run does)",
        wrong.len(),
        rows.len(),
        TOLERANCE * 100.0,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
}

#[test]
#[ignore = "needs root, iproute2 and iperf3 (Debian packages iproute2, iperf3); .ci/run installs them and runs the ignored tests"]
fn throughput_matches_iperf3_at_20_mbit() {
    throughput_matches_iperf3(20);
}

#[test]
#[ignore = "needs root, iproute2 and iperf3 (Debian packages iproute2, iperf3); .ci/run installs them and runs the ignored tests"]
fn throughput_matches_iperf3_at_100_mbit() {
    throughput_matches_iperf3(100);
}

#[test]
#[ignore = "needs root, iproute2 and iperf3 (Debian packages iproute2, iperf3); .ci/run installs them and runs the ignored tests"]
fn throughput_matches_iperf3_at_500_mbit() {
    throughput_matches_iperf3(500);
}

/// The one-way delay the relay adds: 40 ms more round trip.
const DELAY: Duration = Duration::from_millis(20);
/// What the latency figures are allowed to miss the truth by: 1 ms + 5 % of it.
fn latency_tolerance(truth: Duration) -> Duration {
    Duration::from_millis(1) + truth.mul_f64(0.05)
}

/// The round trip of a small request on a warm connection, less the server's time: the
/// median of 20, measured by this test's own client.
fn round_trip(lab: &Lab, to: SocketAddr) -> Duration {
    let mut times = netns::http_round_trips(lab, &lab.client, to, "/__down?bytes=0", 20);
    netns::median(&mut times)
}

#[test]
#[ignore = "needs root, iproute2 and iperf3 (Debian packages iproute2, iperf3); .ci/run installs them and runs the ignored tests"]
fn idle_latency_is_the_round_trip_through_a_delaying_relay() {
    let _serial = one_at_a_time();
    let lab = Lab::new();
    lab.shape(100, Duration::from_millis(50));
    let (_target, address) = start_target(&lab);
    let base = round_trip(&lab, address);
    let relay = Relay::start(&lab, address, DELAY);
    let truth = DELAY * 2 + base;
    let tolerance = latency_tolerance(truth);
    // The relay itself, measured by this test's own client: if this fails, the harness is
    // wrong (or the machine too busy to wake a thread on time), not the engine.
    let relayed = round_trip(&lab, relay.address);
    assert!(
        relayed.abs_diff(truth) <= tolerance,
        "the relay adds {:?} to a round trip of {base:?}, not 2 × {DELAY:?}",
        relayed.saturating_sub(base)
    );
    let sample = run_once(&lab, &format!("http://{}", relay.address), 1, "2s");
    let ping = Duration::from_secs_f64(figure(&sample, "ping_seconds"));
    eprintln!(
        "idle latency {ping:?}, truth {truth:?} (base {base:?} + 2 × {DELAY:?}), this test's \
         client through the relay {relayed:?}, jitter {:.3} ms",
        figure(&sample, "jitter_seconds") * 1e3
    );
    assert!(
        ping.abs_diff(truth) <= tolerance,
        "idle latency {ping:?}, the truth {truth:?} (base round trip {base:?} + 2 × {DELAY:?}; \
         this test's client measured {relayed:?} through the relay): more than {tolerance:?} \
         apart\n{sample:#}"
    );
}

#[test]
#[ignore = "needs root, iproute2 and iperf3 (Debian packages iproute2, iperf3); .ci/run installs them and runs the ignored tests"]
fn loaded_latency_exceeds_idle_when_the_queue_fills() {
    let _serial = one_at_a_time();
    let lab = Lab::new();
    // 20 Mbit/s with room for 200 ms of packets in tbf's queue: TCP fills it.
    lab.shape(20, Duration::from_millis(200));
    let (_target, address) = start_target(&lab);
    let sample = run_once(&lab, &format!("http://{address}"), 4, "4s");
    let idle = figure(&sample, "ping_seconds");
    eprintln!(
        "idle {:.2} ms, loaded: download {:.2} ms, upload {:.2} ms",
        idle * 1e3,
        figure(&sample, "download_latency_seconds") * 1e3,
        figure(&sample, "upload_latency_seconds") * 1e3
    );
    for key in ["download_latency_seconds", "upload_latency_seconds"] {
        let loaded = figure(&sample, key);
        // A queue that fills at 20 Mbit/s holds tens of milliseconds; idle is well under one.
        assert!(
            loaded >= idle + 0.020,
            "{key} {:.2} ms is not above the idle {:.2} ms by 20 ms on a link whose queue \
             fills\n{sample:#}",
            loaded * 1e3,
            idle * 1e3
        );
    }
}

/// An HTTP/1.1 server for the harness's own check, in the target namespace: answers every
/// request on `connections` connections with an empty 200, then ends.
fn empty_server(lab: &Lab, connections: usize) -> SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let (ready, address) = std::sync::mpsc::channel();
    netns::spawn_in_netns(&lab.target, move || {
        let listener = std::net::TcpListener::bind(format!("{}:0", netns::TARGET_IP))
            .expect("bind the harness's server");
        ready
            .send(listener.local_addr().expect("its address"))
            .expect("the test waits");
        for stream in listener.incoming().take(connections) {
            let stream = stream.expect("accept");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let mut writer = stream.try_clone().expect("clone");
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                    if writer.write_all(answer.as_bytes()).is_err() {
                        break;
                    }
                }
                line.clear();
            }
        }
    });
    address
        .recv_timeout(common::PATIENCE)
        .expect("the harness's server listens")
}

/// The harness checked without the engine: tbf limits what iperf3 measures, the relay adds its
/// delay and nothing else, and a lab left by a panicking test is gone.
#[test]
#[ignore = "needs root, iproute2 and iperf3 (Debian packages iproute2, iperf3); .ci/run installs them and runs the ignored tests"]
fn the_lab_shapes_delays_and_cleans_up() {
    let _serial = one_at_a_time();
    let lab = Lab::new();
    lab.shape(100, Duration::from_millis(50));
    for direction in [Direction::Download, Direction::Upload] {
        let mbit = lab.iperf3(direction, 1, 2) / 1e6;
        eprintln!("iperf3 {direction:?} at 100 Mbit/s: {mbit:.1}");
        // Through tbf at 100 Mbit/s iperf3 measured 95.7 (TCP/IP headers take ~4.5 %).
        assert!(
            (90.0..100.0).contains(&mbit),
            "iperf3 {direction:?} measured {mbit:.1} Mbit/s on a link shaped to 100"
        );
    }
    let server = empty_server(&lab, 2);
    let mut direct = netns::http_round_trips(&lab, &lab.client, server, "/", 20);
    let base = netns::median(&mut direct);
    let relay = Relay::start(&lab, server, DELAY);
    let mut relayed = netns::http_round_trips(&lab, &lab.client, relay.address, "/", 20);
    let relayed = netns::median(&mut relayed);
    let truth = DELAY * 2 + base;
    eprintln!("round trip direct {base:?}, through the relay {relayed:?}");
    assert!(
        relayed >= truth && relayed - truth <= latency_tolerance(truth),
        "through the relay {relayed:?}, direct {base:?}: it should add 2 × {DELAY:?} and at \
         most {:?} more",
        latency_tolerance(truth)
    );
    drop(relay);

    // A panic with a lab and a process in it: both are gone once it unwound.
    let (client, target, pid) = {
        let mut sleeper = Command::new("sh");
        sleeper.args(["-c", "echo inside; exec sleep 600"]);
        let (sender, receiver) = std::sync::mpsc::channel();
        let unwound = std::thread::spawn(move || {
            let doomed = Lab::new();
            let mut sleeping = doomed.spawn(&doomed.target, &sleeper);
            sleeping.wait_for_line("inside", common::PATIENCE);
            sender
                .send((doomed.client.clone(), doomed.target.clone(), sleeping.pid()))
                .expect("send");
            std::mem::forget(sleeping); // only the lab's guard is left to kill it
            panic!("a deliberately failing test: its lab must be cleaned up all the same");
        });
        assert!(unwound.join().is_err(), "the doomed test panicked");
        receiver.recv().expect("the doomed lab's names")
    };
    let left = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let left = String::from_utf8_lossy(&left.stdout);
    for ns in [&client, &target] {
        assert!(
            !left
                .lines()
                .any(|line| line.split_whitespace().next() == Some(ns.as_str())),
            "namespace {ns} outlived its panicking test:\n{left}"
        );
    }
    common::assert_gone(&[pid]);
    drop(lab);
}
