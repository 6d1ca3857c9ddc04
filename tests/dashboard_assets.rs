//! The page at `/` and its files, served by a real `serve` on loopback: security headers,
//! content types, gzip, revalidation, and the page's byte budget.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{Env, PATIENCE, Server};

/// The page's total transfer, every file gzipped, must stay within this (bytes).
const PAGE_BUDGET_BYTES: usize = 150 * 1024;

/// The policy the page is served with (the contract between the helpers of issue 13).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An answer with its body as bytes (gzip is not text).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }
}

/// One GET with these header lines on a fresh connection; the body read to the end, as sent
/// (a streamed answer's chunks are left as they are: only the files' bodies are compared).
fn get(address: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(raw[..split].to_vec()).expect("ASCII headers");
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let answer = Answer {
        status,
        headers,
        body,
    };
    if let Some(length) = answer.header("content-length") {
        assert_eq!(
            length.parse::<usize>().unwrap(),
            answer.body.len(),
            "{path}"
        );
    }
    answer
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("a valid gzip stream");
    out
}

/// A server on an empty store that will not test while the test runs.
fn start() -> (Env, Server) {
    let env = Env::new();
    let server = Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    (env, server)
}

/// Every `src="…"` and `href="…"` under `/assets/` in the page.
fn referenced_assets(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in page.split(attribute).skip(1) {
            let value = part.split('"').next().unwrap_or_default();
            if value.starts_with("/assets/") && !found.iter().any(|seen| seen == value) {
                found.push(value.to_owned());
            }
        }
    }
    found
}

fn expected_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ if path.ends_with("/LICENSE") => "text/plain; charset=utf-8",
        _ => panic!("{path}: add its type to this test"),
    }
}

#[test]
fn the_page_carries_its_policy_nosniff_and_the_viewport() {
    let (_env, mut server) = start();
    let page = get(&server.address, "/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("content-security-policy"), Some(CSP));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert!(page.header("content-encoding").is_none());
    let html = page.text();
    assert!(
        html.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#),
        "{html}"
    );
    // The page's own query string (its range) is the page's business, not a 400.
    let with_range = get(&server.address, "/?range=7d", &[]);
    assert_eq!(with_range.status, 200);
    assert_eq!(with_range.body, page.body);
    // The endpoints stay listed on the page.
    for link in ["/metrics", "/api/v1/samples", "/api/v1/summary", "/healthz"] {
        assert!(html.contains(&format!("href=\"{link}")), "{link}");
    }
    server.assert_clean_exit();
}

#[test]
fn every_file_the_page_references_is_served_with_its_type_gzipped_on_request() {
    let (_env, mut server) = start();
    let page = get(&server.address, "/", &[]);
    let assets = referenced_assets(page.text());
    for needed in [
        "/assets/app.js",
        "/assets/app.css",
        "/assets/vendor/uplot/dist/uPlot.iife.min.js",
        "/assets/vendor/uplot/dist/uPlot.min.css",
    ] {
        assert!(assets.iter().any(|path| path == needed), "{needed}");
    }
    for path in &assets {
        let plain = get(&server.address, path, &[]);
        assert_eq!(plain.status, 200, "{path}");
        assert!(
            plain.header("transfer-encoding").is_none(),
            "{path}: sent whole"
        );
        assert_eq!(
            plain.header("content-type"),
            Some(expected_type(path)),
            "{path}"
        );
        assert_eq!(plain.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(plain.header("cache-control"), Some("no-cache"), "{path}");
        assert!(plain.header("content-encoding").is_none(), "{path}");
        let on_disk = std::fs::read(format!("{}{path}", env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|err| panic!("{path}: {err}"));
        assert_eq!(plain.body, on_disk, "{path}: not the file in the tree");

        let zipped = get(
            &server.address,
            path,
            &[("Accept-Encoding", "gzip, deflate, br")],
        );
        assert_eq!(zipped.status, 200);
        if zipped.header("content-encoding") == Some("gzip") {
            assert_eq!(
                gunzip(&zipped.body),
                on_disk,
                "{path}: gzip decodes to the file"
            );
            assert!(zipped.body.len() < on_disk.len());
        } else {
            // Only files too small to gain are sent as they are.
            assert!(on_disk.len() < 1024, "{path} was not gzipped");
        }
        assert_eq!(
            zipped
                .header("vary")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("accept-encoding"),
            "{path}"
        );
    }
    server.assert_clean_exit();
}

#[test]
fn gzip_refused_with_q_zero_gets_identity() {
    let (_env, mut server) = start();
    for refusal in ["gzip;q=0", "identity", "br", "gzip;q=0, *;q=1"] {
        let answer = get(
            &server.address,
            "/assets/app.js",
            &[("Accept-Encoding", refusal)],
        );
        assert_eq!(answer.status, 200);
        assert!(answer.header("content-encoding").is_none(), "{refusal}");
        assert!(answer.text().contains("use strict"), "{refusal}");
    }
    let star = get(&server.address, "/", &[("Accept-Encoding", "*")]);
    assert_eq!(star.header("content-encoding"), Some("gzip"));
    server.assert_clean_exit();
}

#[test]
fn an_unchanged_file_is_answered_304_by_its_entity_tag() {
    let (_env, mut server) = start();
    for encoding in ["identity", "gzip"] {
        let first = get(&server.address, "/", &[("Accept-Encoding", encoding)]);
        let tag = first.header("etag").expect("an ETag").to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
        let again = get(
            &server.address,
            "/",
            &[("Accept-Encoding", encoding), ("If-None-Match", &tag)],
        );
        assert_eq!(again.status, 304, "{encoding}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(tag.as_str()));
        assert_eq!(again.header("x-content-type-options"), Some("nosniff"));
        let weak = get(
            &server.address,
            "/",
            &[
                ("Accept-Encoding", encoding),
                ("If-None-Match", &format!("\"other\", W/{tag}")),
            ],
        );
        assert_eq!(weak.status, 304, "weak comparison, a list");
        // The other encoding's client holding this tag gets the bytes it can use.
        let other = if encoding == "gzip" {
            "identity"
        } else {
            "gzip"
        };
        let switched = get(
            &server.address,
            "/",
            &[("Accept-Encoding", other), ("If-None-Match", &tag)],
        );
        assert_eq!(switched.status, 200, "{encoding} tag, {other} asked");
        assert_ne!(switched.header("etag"), Some(tag.as_str()));
    }
    let stale = get(&server.address, "/", &[("If-None-Match", "\"0-00000000\"")]);
    assert_eq!(stale.status, 200);
    assert!(!stale.body.is_empty());
    server.assert_clean_exit();
}

#[test]
fn nosniff_on_json_on_errors_and_on_unknown_paths() {
    let (_env, mut server) = start();
    for (path, status) in [
        ("/healthz", 200),
        ("/api/v1/samples?limit=1", 200),
        ("/api/v1/samples?bogus=1", 400),
        ("/nowhere", 404),
        ("/assets/nowhere.js", 404),
        ("/assets/", 404),
        ("/assets/../Cargo.toml", 404),
    ] {
        let answer = get(&server.address, path, &[]);
        assert_eq!(answer.status, status, "{path}");
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    server.assert_clean_exit();
}

#[test]
fn the_whole_page_gzipped_fits_its_budget() {
    let (_env, mut server) = start();
    let gzip = [("Accept-Encoding", "gzip")];
    let page = get(&server.address, "/", &gzip);
    let html = gunzip(&page.body);
    let mut total = page.body.len();
    let mut lines = vec![format!("/ {} bytes", page.body.len())];
    for path in referenced_assets(std::str::from_utf8(&html).unwrap()) {
        // The licence is linked, not loaded with the page.
        if path.ends_with("/LICENSE") {
            continue;
        }
        let answer = get(&server.address, &path, &gzip);
        assert_eq!(answer.status, 200, "{path}");
        total += answer.body.len();
        lines.push(format!("{path} {} bytes", answer.body.len()));
    }
    println!("{}\ntotal {total} bytes gzipped", lines.join("\n"));
    assert!(
        total <= PAGE_BUDGET_BYTES,
        "the page transfers {total} bytes gzipped, over its budget of {PAGE_BUDGET_BYTES}:\n{}",
        lines.join("\n")
    );
    server.assert_clean_exit();
}
