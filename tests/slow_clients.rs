//! A thousand idle or trickling connections neither lock others out nor stay open for ever.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Env, Server};

const SLOW_CLIENTS: usize = 1000;

#[test]
fn idle_and_trickling_clients_do_not_lock_others_out_and_are_closed() {
    common::raise_open_files_limit(2 * SLOW_CLIENTS as u64);
    let env = Env::new();
    let mut server = Server::start(env.serve("ok-1.2-with-loaded-latency", "replay", &[]));
    server.wait_for_log("test succeeded");

    // Half say nothing at all; half start a request and then stall, one byte in.
    let mut slow: Vec<TcpStream> = (0..SLOW_CLIENTS)
        .map(|i| {
            let mut stream = TcpStream::connect(&server.address).expect("connect a slow client");
            if i % 2 == 1 {
                stream.write_all(b"G").expect("one byte");
            }
            stream
        })
        .collect();
    // Trickle another byte into the stalled requests, as a byte-a-second client would.
    for stream in slow.iter_mut().skip(1).step_by(2) {
        let _ = stream.write_all(b"E");
    }

    for path in ["/metrics", "/latest", "/metrics", "/latest"] {
        let started = Instant::now();
        let response = server.get(path);
        // Reported, not asserted: timing belongs to benchmarks (BENCHMARKS.md has the figures).
        eprintln!(
            "{path} answered in {:?} beside {SLOW_CLIENTS} slow clients",
            started.elapsed()
        );
        assert_eq!(
            response.status, 200,
            "{path} with {SLOW_CLIENTS} slow clients connected"
        );
    }

    // The header-read timeout closes every one of them; a closed socket reads 0 bytes (or a
    // 408 that hyper may send first, then 0).
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, stream) in slow.iter_mut().enumerate() {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        stream.set_read_timeout(Some(left)).unwrap();
        let mut sink = Vec::new();
        let read = stream.read_to_end(&mut sink);
        assert!(read.is_ok(), "slow client {i} was not closed: {read:?}");
    }
    assert_eq!(server.get("/healthz").status, 200);
    server.assert_clean_exit();
}
