//! `internet-monitor target`: both speed-test APIs over real TCP on loopback, their bounds, and
//! clients that do not read or stop sending.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{PATIENCE, Server, command, request};

fn target(extra: &[&str]) -> Server {
    let mut command = command(&["target"]);
    command.args(extra);
    Server::start(command)
}

/// Sends `head` (and `body`) and reads the whole answer: status, headers, body bytes.
fn exchange(address: &str, head: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let headers = String::from_utf8(raw[..end].to_vec()).unwrap();
    let status = headers.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, headers, raw[end + 4..].to_vec())
}

fn get(address: &str, path: &str) -> (u16, String, Vec<u8>) {
    exchange(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        &[],
    )
}

fn post(address: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    exchange(
        address,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ),
        body,
    )
}

#[test]
fn both_apis_answer_with_random_bytes_and_server_timing() {
    let server = target(&[]);
    let address = &server.address;
    let (status, headers, body) = get(address, "/__down?bytes=3000000");
    assert_eq!(status, 200, "{headers}");
    assert_eq!(body.len(), 3_000_000);
    assert!(headers.contains("content-length: 3000000"), "{headers}");
    assert!(headers.contains("server-timing: app;dur="), "{headers}");
    assert!(headers.contains("cache-control: no-store"), "{headers}");
    // Random, not zeros or a short repeated pattern: no 64-byte window repeats within 64 KiB.
    let window = &body[..64];
    assert!(
        !body[64..65536].windows(64).any(|w| w == window),
        "the data repeats"
    );
    assert!(body.iter().filter(|&&b| b == 0).count() < 3_000_000 / 100);

    for path in ["/garbage?ckSize=2", "/garbage.php?ckSize=2"] {
        let (status, _, body) = get(address, path);
        assert_eq!((status, body.len()), (200, 2 << 20), "{path}");
    }
    assert_eq!(
        get(address, "/garbage").2.len(),
        4 << 20,
        "ckSize defaults to 4"
    );
    for path in ["/empty", "/empty.php"] {
        let (status, headers, body) = get(address, path);
        assert_eq!((status, body.len()), (200, 0), "{path}");
        assert!(headers.contains("server-timing: app;dur="), "{headers}");
    }
    let (status, _, body) = get(address, "/getIP.php");
    assert_eq!(status, 200);
    let ip: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ip["processedString"], "127.0.0.1");

    let upload = vec![7u8; 5_000_000];
    for path in ["/__up", "/empty.php", "/empty"] {
        let (status, headers, _) = post(address, path, &upload);
        assert_eq!(status, 200, "{path}: {headers}");
    }
    let index = request(address, "GET", "/").json();
    assert_eq!(
        index["protocols"],
        serde_json::json!(["cloudflare", "librespeed"])
    );
}

#[test]
fn bad_requests_get_json_errors_that_name_the_fix() {
    let server = target(&["--max-request-bytes", "10MB"]);
    let address = &server.address;
    let cases: [(&str, u16, &str); 5] = [
        (
            "/__down",
            400,
            "missing bytes: ask for /__down?bytes=N with N the bytes to send",
        ),
        (
            "/__down?bytes=lots",
            400,
            "bytes must be a whole number from 0 to 10000000, not \"lots\"",
        ),
        (
            "/__down?bytes=10000001",
            413,
            "10000001 bytes is more than this target sends or reads in one request (10000000; --max-request-bytes)",
        ),
        (
            "/garbage?ckSize=-3",
            400,
            "ckSize must be a whole number of MiB from 0 to 9, not \"-3\"",
        ),
        (
            "/nothing-here",
            404,
            "no such endpoint: /nothing-here; this is an internet-monitor speed-test target",
        ),
    ];
    for (path, status, message) in cases {
        let response = request(address, "GET", path);
        assert_eq!(response.status, status, "{path}");
        assert_eq!(response.json()["error"], message, "{path}");
    }
    let wrong = request(address, "GET", "/__up");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("POST"));

    // An upload declared too large is refused before a byte of it is read; one that turns out
    // too large as it streams is cut off at the cap.
    let (status, _, body) = exchange(
        address,
        "POST /__up HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 20000000\r\n\r\n",
        &[],
    );
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    let mut stream = TcpStream::connect(address.as_str()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"POST /__up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![1u8; 1 << 20];
    let mut answer = Vec::new();
    for _ in 0..12 {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

/// A download nobody reads holds its connection only until the write timeout, and meanwhile
/// every other client is served at once.
#[test]
fn a_client_that_never_reads_is_cut_off_and_stalls_nobody() {
    let server = target(&["--max-connections", "4"]);
    let address = server.address.clone();
    let mut stuck = TcpStream::connect(&address).unwrap();
    stuck
        .write_all(b"GET /__down?bytes=900000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        let (status, _, body) = get(&address, "/__down?bytes=100000");
        assert_eq!((status, body.len()), (200, 100_000));
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "others were held up"
    );
    // Now read: what the kernel buffered arrives, then the connection ends long before the
    // 900 MB it asked for.
    stuck.set_read_timeout(Some(PATIENCE * 2)).unwrap();
    let mut total = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    std::thread::sleep(Duration::from_secs(12)); // the write timeout (10 s) must pass unread
    loop {
        match stuck.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert!(
        total < 100_000_000,
        "read {total} bytes from an abandoned download"
    );
}

/// An upload that stops sending, or trickles, is given up after the stall timeout (10 s), and
/// so are downloads read a trickle at a time: neither can hold a connection slot for long.
#[test]
fn an_upload_that_stops_sending_is_given_up() {
    let server = target(&[]);
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"POST /__up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\nabc")
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the upload sent 3 bytes in the last 10s (3 in all), less than the 65536 this target needs in that time to keep a connection for it"),
        "{answer}"
    );
    assert!(took >= Duration::from_secs(9), "gave up after {took:?}");

    // 16 clients of a 16-connection target, each sending an upload at 100 bytes a second:
    // every one is cut off within two stall timeouts, and a normal client is then served.
    let server = target(&["--max-connections", "16"]);
    let trickles: Vec<_> = (0..16)
        .map(|_| {
            let address = server.address.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&address).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                stream
                    .write_all(b"POST /__up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
                    .unwrap();
                let started = Instant::now();
                let mut answer = Vec::new();
                while started.elapsed() < PATIENCE * 2 {
                    if stream.write_all(&[b'x'; 10]).is_err() {
                        break;
                    }
                    let mut buffer = [0u8; 4096];
                    match stream.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => answer.extend_from_slice(&buffer[..n]),
                        Err(_) => {}
                    }
                }
                (
                    started.elapsed(),
                    String::from_utf8_lossy(&answer).into_owned(),
                )
            })
        })
        .collect();
    for trickle in trickles {
        let (took, answer) = trickle.join().unwrap();
        assert!(took < Duration::from_secs(25), "held on for {took:?}");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let (status, _, body) = get(&server.address, "/__down?bytes=5");
    assert_eq!((status, body.len()), (200, 5));
}

#[test]
fn bad_flags_name_the_flag() {
    let output = command(&["target", "--max-connections", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "invalid value '0' for '--max-connections <N>': must be a whole number from 1 to 4096"
        ),
        "{stderr}"
    );
    let output = command(&["target", "--max-request-bytes", "1kB"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("must be from 1MiB (one LibreSpeed chunk) to 100GB"),
        "{stderr}"
    );
}

/// A download read a trickle at a time (5 KiB/s, below the 64 KiB per 10 s of waiting a
/// connection must move) loses its connection slot once the socket buffers between are full,
/// instead of holding it for the request timeout of two minutes: with one slot, the next
/// client is served within seconds. (The kernel may go on delivering what it had buffered for
/// the closed socket; that is the kernel's memory, bounded by its own orphan limits.)
#[test]
fn a_download_read_a_trickle_at_a_time_gives_up_its_slot() {
    let server = target(&["--max-connections", "1"]);
    let address = server.address.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (reading_tx, reading_rx) = std::sync::mpsc::channel::<()>();
    let trickle = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
            .write_all(b"GET /__down?bytes=900000000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buffer = [0u8; 1024];
        while done_rx.try_recv().is_err() {
            if matches!(stream.read(&mut buffer), Ok(0) | Err(_)) {
                break;
            }
            let _ = reading_tx.send(());
            // Pacing the reader is the point of the test, not synchronisation.
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // The trickle holds the only slot first: its download has begun.
    reading_rx.recv_timeout(PATIENCE).unwrap();
    let started = Instant::now();
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(b"GET /__down?bytes=5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let waited = started.elapsed();
    let _ = done_tx.send(());
    let _ = trickle.join();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "no answer after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(40),
        "the slot was held for {waited:?}"
    );
}
