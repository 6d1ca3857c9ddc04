//! A thousand idle or trickling connections neither lock others out nor stay open for ever,
//! and more of them than the server serves at once cannot keep a scrape waiting.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::channel;
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

/// `serve` runs with this open-files limit, soft and hard, so it serves at most 136
/// connections at once (the limit less the 64 descriptors it keeps back).
const OPEN_FILES: u64 = 200;
const CAP: usize = 136;
/// Trickling connections held open, re-opened whenever the server closes one.
const TRICKLERS: usize = 3 * CAP;
/// Each sends the next byte of headers that never end this often.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);
/// At most this many closed tricklers re-open per 10 ms round (about 1,000 a second).
const REOPEN_PER_ROUND: usize = 10;
/// A scrape must be answered this soon while they are held. Issue 11's goal is 100 ms and
/// about 1 ms is usual (the first, behind the tricklers' own backlog, up to about 75 ms when
/// other tests share the machine); the margin keeps a debug build on a busy machine from
/// failing. Before the fix a scrape waited in the listen backlog behind them for 10 s or more.
const MAX_SCRAPE_LATENCY: Duration = Duration::from_millis(500);
const SCRAPES: usize = 5;

/// A connection that has sent `sent` bytes of a request whose headers never end.
struct Trickler {
    stream: TcpStream,
    sent: usize,
}

impl Trickler {
    const HEAD: &[u8] = b"GET /metrics HTTP/1.1\r\nX-Trickle: ";

    fn open(address: &str) -> std::io::Result<Trickler> {
        let stream = TcpStream::connect(address)?;
        let mut trickler = Trickler { stream, sent: 0 };
        trickler.trickle();
        trickler.stream.set_nonblocking(true)?;
        Ok(trickler)
    }

    /// Sends one more byte; a failure shows up as a closed socket.
    fn trickle(&mut self) {
        let byte = Self::HEAD.get(self.sent).copied().unwrap_or(b'a');
        if self.stream.write_all(&[byte]).is_ok() {
            self.sent += 1;
        }
    }

    /// Whether the server has closed the connection (or answered it, as with a 408).
    fn closed(&mut self) -> bool {
        let mut buffer = [0u8; 512];
        !matches!(self.stream.read(&mut buffer), Err(err) if err.kind() == ErrorKind::WouldBlock)
    }
}

/// Scrapes `/metrics` on a new connection, as Prometheus does: its status and how long the
/// answer took. Gives up (status 0) after five times the allowed latency.
fn scrape(address: &str) -> (u16, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).expect("connect the scrape");
    stream
        .set_read_timeout(Some(5 * MAX_SCRAPE_LATENCY))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the scrape");
    let mut answer = Vec::new();
    let status = match stream.read_to_end(&mut answer) {
        Ok(_) => String::from_utf8_lossy(&answer)
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0),
        Err(_) => 0,
    };
    (status, started.elapsed())
}

/// `serve` on `env`'s database with its open-files limit at [`OPEN_FILES`], so its connection
/// cap is [`CAP`]: enough clients to pass it are cheap.
fn serve_with_a_cap_of_136(env: &Env) -> Server {
    let mut command: Command = env.serve("ok-1.2-with-loaded-latency", "replay", &[]);
    // SAFETY: setrlimit is async-signal-safe and changes only the child's own limit.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: OPEN_FILES,
                rlim_max: OPEN_FILES,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Server::start(command)
}

#[test]
fn more_trickling_clients_than_the_cap_cannot_keep_a_scrape_waiting() {
    common::raise_open_files_limit(2 * TRICKLERS as u64);
    let env = Env::new();
    let mut server = serve_with_a_cap_of_136(&env);

    // Every trickler connects before any scrape, so that before the fix all of them are ahead
    // of the scrape: in a slot or in the listen backlog.
    let stop = Arc::new(AtomicBool::new(false));
    let reopened = Arc::new(AtomicUsize::new(0));
    let (ready, connected) = channel();
    let clients = {
        let (address, stop, reopened) = (server.address.clone(), stop.clone(), reopened.clone());
        std::thread::spawn(move || {
            let mut tricklers: Vec<Trickler> = (0..TRICKLERS)
                .map(|_| Trickler::open(&address).expect("connect a trickling client"))
                .collect();
            ready.send(()).expect("the test waits");
            let mut next_byte = Instant::now() + TRICKLE_EVERY;
            while !stop.load(Ordering::Relaxed) {
                let mut reopen = REOPEN_PER_ROUND;
                for trickler in &mut tricklers {
                    // A failed test leaves no server to re-open to: then this retries until
                    // it is told to stop.
                    if reopen > 0
                        && trickler.closed()
                        && let Ok(fresh) = Trickler::open(&address)
                    {
                        *trickler = fresh;
                        reopened.fetch_add(1, Ordering::Relaxed);
                        reopen -= 1;
                    }
                }
                if Instant::now() >= next_byte {
                    tricklers.iter_mut().for_each(Trickler::trickle);
                    next_byte += TRICKLE_EVERY;
                }
                // Pacing, not synchronisation: about a hundred rounds a second.
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    connected
        .recv_timeout(common::PATIENCE)
        .expect("the tricklers connected");

    for _ in 0..SCRAPES {
        let (status, took) = scrape(&server.address);
        eprintln!("/metrics answered {status} in {took:?} beside {TRICKLERS} tricklers");
        assert_eq!(
            status, 200,
            "/metrics with {TRICKLERS} trickling clients against a cap of {CAP} (after {took:?})"
        );
        assert!(
            took <= MAX_SCRAPE_LATENCY,
            "/metrics took {took:?} beside {TRICKLERS} tricklers"
        );
        // Between scrapes the tricklers keep trickling, re-opening what the server closes.
        std::thread::sleep(TRICKLE_EVERY / 2);
    }
    stop.store(true, Ordering::Relaxed);
    clients.join().expect("the trickling clients");
    eprintln!(
        "{} trickling connections re-opened after the server closed them",
        reopened.load(Ordering::Relaxed)
    );

    assert!(server.is_running(), "the server is still up");
    assert_eq!(server.get("/healthz").status, 200);
    let log = server.assert_clean_exit();
    let warnings = log.iter().filter(|line| line.contains("WARN")).count();
    assert_eq!(
        warnings, 0,
        "evictions are not logged as warnings: {log:#?}"
    );
}

/// A connection to `address` with a receive buffer of 2 KiB, set before it connects so that
/// the window the server sees stays small: a client that does not read then holds a streamed
/// answer mid-way.
fn small_window_connect(address: &str) -> TcpStream {
    use std::os::fd::FromRawFd;
    let address: std::net::SocketAddrV4 = address.parse().expect("an IPv4 address");
    // SAFETY: a fresh socket, options and connect on it, then owned by the TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let size: libc::c_int = 2048;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sockaddr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: address.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*address.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let connected = libc::connect(
            fd,
            (&raw const sockaddr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let stream = TcpStream::from_raw_fd(fd);
        assert_eq!(connected, 0, "connect: {}", std::io::Error::last_os_error());
        stream
    }
}

#[test]
fn clients_that_never_read_streamed_answers_cannot_keep_a_scrape_waiting() {
    // A streamed answer in flight is never evicted; without a bound on them, clients that ask
    // for exports and read nothing hold every slot until the write timeout.
    common::raise_open_files_limit(2 * TRICKLERS as u64);
    let env = Env::new();
    let start = 1_780_000_000_000u64;
    let history: Vec<serde_json::Value> = (0..4000u64)
        .map(|i| {
            let time = humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + Duration::from_millis(start + i * 60_000),
            )
            .to_string();
            serde_json::json!({
                "time": time, "outcome": "success", "reason": null, "message": null,
                "trigger": "schedule", "duration_seconds": 20.0,
                "download_bytes_per_second": 12_500_000.0, "upload_bytes_per_second": 2_500_000.0,
                "ping_seconds": 0.012, "jitter_seconds": 0.001, "packet_loss_ratio": 0.0,
                "download_latency_seconds": 0.02, "upload_latency_seconds": 0.03,
                "downloaded_bytes": 150_000_000, "uploaded_bytes": 40_000_000,
                "server": {"id": 1, "name": "Example", "location": "Example City",
                           "country": "Example", "host": "speedtest.example.com"},
                "isp": "Example ISP", "result_url": null
            })
        })
        .collect();
    env.import(&history);
    let mut server = serve_with_a_cap_of_136(&env);
    let holders: Vec<TcpStream> = (0..CAP + 20)
        .map(|_| {
            let mut stream = small_window_connect(&server.address);
            stream
                .write_all(b"GET /api/v1/samples.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .expect("send a request");
            stream
        })
        .collect();
    for _ in 0..SCRAPES {
        let (status, took) = scrape(&server.address);
        eprintln!(
            "/metrics answered {status} in {took:?} beside {} export holders",
            holders.len()
        );
        assert_eq!(
            status, 200,
            "/metrics beside clients holding exports (after {took:?})"
        );
        assert!(took <= MAX_SCRAPE_LATENCY, "/metrics took {took:?}");
    }
    drop(holders);
    assert_eq!(server.get("/healthz").status, 200);
    server.assert_clean_exit();
}
