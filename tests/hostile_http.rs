//! Hostile and malformed HTTP against a real `serve`: never a 5xx, never a crash, and every
//! 4xx the application answers carries a JSON error.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Env, Server};

/// Sends raw bytes and returns every status line in the reply (several when pipelined).
fn exchange(address: &str, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // The server may close early on garbage; a failed write is part of the test, not an error.
    let _ = stream.write_all(raw);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

fn requests() -> Vec<(String, Vec<u8>)> {
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: String, raw: Vec<u8>| cases.push((name, raw));
    let paths = [
        "/",
        "/latest",
        "/last-day",
        "/graph",
        "/metrics",
        "/healthz",
        "/api/v1/samples",
        "/api/v1/samples.csv",
        "/api/v1/summary",
        "/api/v1/run",
    ];
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "get",
    ] {
        for path in paths {
            add(
                format!("{method} {path}"),
                format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes(),
            );
        }
    }
    let long = "a".repeat(20_000);
    for path in [
        "/../../etc/passwd".to_owned(),
        "/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "//latest".to_owned(),
        "/latest/".to_owned(),
        "/LATEST".to_owned(),
        "/latest%00".to_owned(),
        "/api/v1/samples/../samples".to_owned(),
        format!("/{long}"),
        "/%ff%fe".to_owned(),
        "/api/v1/".to_owned(),
    ] {
        add(format!("path {}", &path[..path.len().min(40)]), get(&path));
    }
    let queries = [
        "limit=-1",
        "limit=1e9",
        "limit=",
        "limit=0x10",
        "limit=18446744073709551616",
        "from=",
        "to=",
        "from=99999999999999d",
        "from=0001-01-01T00:00:00Z",
        "to=9999-12-31T23:59:59Z",
        "from=2026-02-30T00:00:00Z",
        "from=2026-11-01T25:00:00Z",
        "from=now",
        "cursor=18446744073709551615",
        "cursor=-1",
        "cursor=",
        "cursor=1.5",
        "from=1d&from=2d",
        "limit=1&&&&limit=2",
        "%ff=1",
        "a=%",
        "a=%g0",
        "=",
        "&",
        "==&==",
        "from=%E2%82%AC",
        "limit=%00",
        "window=1d",
    ];
    for query in queries {
        for path in ["/api/v1/samples", "/api/v1/samples.csv", "/latest"] {
            add(format!("{path}?{query}"), get(&format!("{path}?{query}")));
        }
    }
    for window in [
        "0s",
        "-1d",
        "1000000000d",
        "18446744073709551615s",
        "1y",
        "1 fortnight",
        "",
        "30d&window=1d",
        "%ff",
    ] {
        add(
            format!("summary {window}"),
            get(&format!("/api/v1/summary?window={window}")),
        );
    }
    add(
        "huge query".into(),
        get(&format!("/api/v1/samples?limit={}", "9".repeat(50_000))),
    );
    add(
        "long header".into(),
        format!(
            "GET /latest HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
            "b".repeat(100_000)
        )
        .into_bytes(),
    );
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    add(
        "many headers".into(),
        format!("GET /latest HTTP/1.1\r\nHost: x\r\n{many}\r\n").into_bytes(),
    );
    add("HTTP/1.0".into(), b"GET /healthz HTTP/1.0\r\n\r\n".to_vec());
    add("HTTP/0.9".into(), b"GET /healthz\r\n\r\n".to_vec());
    add(
        "HTTP/2 preface".into(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
    );
    add(
        "garbage".into(),
        vec![0xff, 0x00, 0x13, 0x37, b'\r', b'\n', b'\r', b'\n'],
    );
    add(
        "bare newlines".into(),
        b"GET /latest HTTP/1.1\nHost: x\n\n".to_vec(),
    );
    add("no host".into(), b"GET /latest HTTP/1.1\r\n\r\n".to_vec());
    add(
        "absolute URI".into(),
        b"GET http://example.com/latest HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    );
    add(
        "asterisk".into(),
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    );
    add(
        "invalid UTF-8 path".into(),
        b"GET /lat\xffest HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    );
    add(
        "body on GET".into(),
        b"GET /latest HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
    );
    add(
        "short body".into(),
        b"POST /api/v1/run HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nabc".to_vec(),
    );
    add(
        "bad chunked".into(),
        b"POST /api/v1/run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
            .to_vec(),
    );
    add(
        "both lengths".into(),
        b"POST /api/v1/run HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
    );
    let pipelined: Vec<u8> = (0..20)
        .flat_map(|_| b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec())
        .chain(
            b"GET /latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                .iter()
                .copied(),
        )
        .collect();
    add("pipelined".into(), pipelined);
    cases
}

#[test]
fn hostile_requests_never_get_a_5xx_and_4xx_errors_are_json() {
    let env = Env::new();
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    let cases = requests();
    assert!(cases.len() >= 200, "{} cases", cases.len());
    let mut statuses = std::collections::BTreeMap::new();
    let mut rejected_by_hyper = Vec::new();
    for (name, raw) in &cases {
        let reply = exchange(&server.address, raw);
        for response in reply.split("HTTP/1.1 ").skip(1) {
            let status: u16 = response.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
            *statuses.entry(status).or_insert(0) += 1;
            assert!(status < 500, "{name}: {status}\n{reply}");
            let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
            // hyper answers requests it cannot parse itself, with an empty body; everything
            // that reaches the application must explain itself in JSON.
            if (400..500).contains(&status) && head.contains("content-type") {
                let first = body.split("\r\n").next().unwrap_or_default();
                let json: serde_json::Value =
                    serde_json::from_str(first.trim()).unwrap_or_else(|e| {
                        panic!("{name}: {status} body is not JSON ({e}): {body:?}")
                    });
                assert!(json["error"].is_string(), "{name}: {json}");
            } else if (400..500).contains(&status) {
                rejected_by_hyper.push(format!("{name}: {status}"));
            }
        }
        assert!(server.is_running(), "the server died on {name}");
    }
    assert!(server.is_running());
    assert_eq!(
        server.get("/healthz").status,
        200,
        "still serving: {statuses:?}"
    );
    server.assert_clean_exit();
    // The replies were really read: each kind of answer shows up.
    for status in [200, 400, 404, 405] {
        assert!(
            statuses.get(&status).is_some_and(|n| *n > 0),
            "{status}: {statuses:?}"
        );
    }
    eprintln!(
        "statuses over {} requests: {statuses:?}; answered by hyper before routing, without a \
         body: {rejected_by_hyper:?}",
        cases.len()
    );
}

/// What a request sent (a path, a method, a header's value) is echoed in an error's body
/// escaped and cut: a 3000-character one cannot make the answer as long, nor forge its lines.
#[test]
fn echoed_request_parts_are_cut_in_error_bodies() {
    let env = Env::new();
    let server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "1h", "--enable-run-endpoint"],
    ));
    let long = "A".repeat(3000);
    let post = |headers: &str| {
        format!(
            "POST /api/v1/run HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    };
    for (what, raw, status) in [
        ("a path", get(&format!("/{long}")), "404"),
        (
            "a method",
            format!("DEL{long} /api/v1/run HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .into_bytes(),
            "405",
        ),
        (
            "Content-Type",
            post(&format!("Content-Type: {long}\r\n")),
            "415",
        ),
        ("Origin", post(&format!("Origin: http://{long}\r\n")), "403"),
        (
            "Sec-Fetch-Site",
            post(&format!("Sec-Fetch-Site: {long}\r\n")),
            "403",
        ),
    ] {
        // Without a half-close (which hyper may answer by closing before it replies): the
        // server closes after its answer (Connection: close).
        let mut stream = TcpStream::connect(&server.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream.write_all(&raw).unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {reply:.200}"
        );
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
        assert!(
            body.len() < 600,
            "{what}: {} bytes: {body:.300}",
            body.len()
        );
        assert!(
            body.contains("more characters left out"),
            "{what}: {body:.300}"
        );
    }
}
