//! The access log writes a CONNECT's target (authority-form, `host:port`) as it was sent.

mod common;

use std::io::{Read, Write};

use common::{Env, Server};

#[test]
fn a_connect_request_is_logged_with_its_authority() {
    let env = Env::new();
    let mut server = Server::start(env.serve(
        "ok-1.2-pretty",
        "replay",
        &["--start-delay", "1h", "--log-requests"],
    ));
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    stream
        .write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    let line = server.wait_for_log("CONNECT example.com:443 ");
    assert!(line.contains("path=\"example.com:443\""), "{line}");
    server.assert_clean_exit();
}
