//! `serve --web.config.file`: HTTPS with a test CA, basic auth on every endpoint, the file's
//! headers, certificates and users changed on disk without a restart, a file broken after
//! start, mutual TLS, clients that stall the handshake or stop reading, more credential checks
//! than the server takes at once (503), the image's health check over HTTPS, curl, and a real
//! Prometheus scraping over TLS with basic auth. Certificates and bcrypt hashes (cost 4; 8 for
//! the busy test) are made at test time; everything talks to loopback only.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, HttpResponse, PATIENCE, Server};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The challenge every 401 carries.
const CHALLENGE: &str = "Basic realm=\"internet-monitor\", charset=\"UTF-8\"";
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
/// A Content-Security-Policy set by the file (the page's own, with `img-src` narrowed).
const POLICY: &str = "default-src 'self'; img-src 'self'; frame-ancestors 'none'";

/// A test CA that signs server and client certificates.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM, and the certificate's DER (to compare with what a server
/// presents).
struct Issued {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "internet-monitor test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { ca }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate for 127.0.0.1 and localhost with this serial number.
    fn server(&self, serial: u64) -> Issued {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "internet-monitor test server");
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(&params)
    }

    /// A client certificate (for mutual TLS).
    fn client(&self) -> Issued {
        let mut params = CertificateParams::new(vec!["scraper.example".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "test scraper");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(&params)
    }

    fn issue(&self, params: &CertificateParams) -> Issued {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// A bcrypt hash of `password` at cost 4 (the least bcrypt allows: fast tests).
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

/// A test directory with a CA, a server certificate (`server.crt`, `server.key`), the CA
/// (`ca.crt`) and a web configuration file (`web.yml`) that names them by relative paths.
struct Site {
    env: Env,
    pki: Pki,
    server: Issued,
}

impl Site {
    fn new() -> Site {
        let env = Env::new();
        let pki = Pki::new();
        let server = pki.server(1001);
        std::fs::write(env.path("ca.crt"), pki.ca_pem()).unwrap();
        let site = Site { env, pki, server };
        site.install_server_cert();
        site
    }

    fn install_server_cert(&self) {
        std::fs::write(self.env.path("server.crt"), &self.server.cert_pem).unwrap();
        std::fs::write(self.env.path("server.key"), &self.server.key_pem).unwrap();
    }

    fn config_path(&self) -> PathBuf {
        self.env.path("web.yml")
    }

    fn write_config(&self, yaml: &str) {
        std::fs::write(self.config_path(), yaml).unwrap();
    }

    /// TLS with the server certificate, `alice` with [`PASSWORD`], and two extra headers.
    fn write_standard_config(&self) {
        self.write_config(&format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  {USER}: {}\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n    \
             Strict-Transport-Security: max-age=31536000\n",
            hash(PASSWORD)
        ));
    }

    /// `serve` with `--web.config.file web.yml` plus `extra`, started.
    fn serve(&self, extra: &[&str]) -> Server {
        let config = self.config_path();
        let mut args = vec!["--web.config.file", config.to_str().unwrap()];
        args.extend_from_slice(extra);
        Server::start(common::serve_command(
            &self.env.db(),
            "ok-1.2-with-loaded-latency",
            &args,
        ))
    }

    /// A TLS client trusting the test CA, with a client certificate when given.
    fn client(&self, certificate: Option<&Issued>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.pki.ca.der().clone()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let config = match certificate {
            Some(issued) => builder
                .with_client_auth_cert(
                    vec![issued.der.clone()],
                    PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `address` (an IPv4 loopback address), its handshake done.
fn connect(address: &str, config: &Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let mut tcp = TcpStream::connect(address)?;
    tcp.set_read_timeout(Some(PATIENCE))?;
    let ip: std::net::SocketAddr = address.parse().map_err(std::io::Error::other)?;
    let name = ServerName::IpAddress(ip.ip().into());
    let mut connection =
        rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    while connection.is_handshaking() {
        connection.complete_io(&mut tcp)?;
    }
    Ok(rustls::StreamOwned::new(connection, tcp))
}

/// The certificate the server at `address` presents to a new connection.
fn served_certificate(
    address: &str,
    config: &Arc<rustls::ClientConfig>,
) -> CertificateDer<'static> {
    let stream = connect(address, config).expect("a TLS connection");
    stream.conn.peer_certificates().expect("a certificate")[0].clone()
}

/// `Authorization: Basic …` for `user:password`.
fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// One request over a fresh TLS connection (`Connection: close`), with these header lines.
fn https(
    address: &str,
    config: &Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let mut stream = connect(address, config)?;
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Connection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closed without close_notify after a whole answer.
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(err) => return Err(err),
    }
    common::parse_response(raw)
}

/// A GET as `alice`.
fn get_as_alice(address: &str, config: &Arc<rustls::ClientConfig>, path: &str) -> HttpResponse {
    let authorization = basic(USER, PASSWORD);
    https(
        address,
        config,
        "GET",
        path,
        &[("Authorization", &authorization)],
    )
    .unwrap_or_else(|err| panic!("GET {path}: {err}"))
}

fn assert_challenged(response: &HttpResponse, what: &str) {
    assert_eq!(response.status, 401, "{what}: {response:?}");
    assert_eq!(
        response.header("WWW-Authenticate"),
        Some(CHALLENGE),
        "{what}"
    );
    assert!(
        response.json()["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{what}: {}",
        response.body
    );
}

/// How many times the answer carries the header `name`.
fn count(response: &HttpResponse, name: &str) -> usize {
    response
        .headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .count()
}

#[test]
fn https_and_basic_auth_guard_every_endpoint_and_the_files_headers_are_on_every_answer() {
    let site = Site::new();
    site.write_standard_config();
    let mut server = site.serve(&[]);
    let line = server.wait_for_log("listening on https://");
    assert!(line.split_whitespace().any(|f| f == "auth=basic"), "{line}");
    let address = server.address.clone();
    let tls = site.client(None);

    for path in [
        "/metrics",
        "/",
        "/api/v1/status",
        "/healthz",
        "/assets/app.js",
    ] {
        let response = get_as_alice(&address, &tls, path);
        assert_eq!(response.status, 200, "{path} as alice: {response:?}");
        assert_eq!(response.header("X-Frame-Options"), Some("deny"), "{path}");
        assert_eq!(
            response.header("Strict-Transport-Security"),
            Some("max-age=31536000"),
            "{path}"
        );
        assert_eq!(count(&response, "X-Content-Type-Options"), 1, "{path}");
    }
    // The page keeps its own Content-Security-Policy (the file sets none), once.
    let page = get_as_alice(&address, &tls, "/");
    assert_eq!(count(&page, "Content-Security-Policy"), 1);

    // Wrong credentials of every kind (first: failed logins are logged, 10 lines a minute).
    let wrong = basic(USER, "wrong password");
    let unknown = basic("mallory", PASSWORD);
    let garbage = "Basic !!!not-base64!!!";
    for (what, authorization) in [
        ("a wrong password", wrong.as_str()),
        ("an unknown user", unknown.as_str()),
        ("malformed credentials", garbage),
        ("another scheme", "Bearer abc"),
    ] {
        let response = https(
            &address,
            &tls,
            "GET",
            "/metrics",
            &[("Authorization", authorization)],
        )
        .unwrap();
        assert_challenged(&response, what);
    }
    // Without credentials, every route is refused before routing: an unknown path too, so
    // that the route list does not leak, and /healthz without --web.healthz-unauthenticated.
    for (method, path) in [
        ("GET", "/metrics"),
        ("GET", "/"),
        ("GET", "/assets/app.js"),
        ("GET", "/api/v1/status"),
        ("GET", "/healthz"),
        ("GET", "/no/such/endpoint"),
        ("OPTIONS", "/api/v1/samples"),
        ("POST", "/api/v1/run"),
    ] {
        let response = https(&address, &tls, method, path, &[]).unwrap();
        assert_challenged(&response, &format!("{method} {path} without credentials"));
        assert_eq!(
            response.header("X-Frame-Options"),
            Some("deny"),
            "the file's headers on a 401 too"
        );
        assert_eq!(count(&response, "X-Content-Type-Options"), 1);
    }
    // With credentials, an unknown path is an honest 404, still with the file's headers.
    let missing = get_as_alice(&address, &tls, "/no/such/endpoint");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("X-Frame-Options"), Some("deny"));

    // A failed login is logged with the user name, never the password.
    let refused = server.wait_for_log("user=\"mallory\"");
    assert!(
        refused.contains("refused a request without valid credentials")
            && refused.contains("path=\"/metrics\""),
        "{refused}"
    );

    // Plain HTTP to the HTTPS port is told so and closed; the server keeps serving.
    let plain = common::try_request(&address, "GET", "/metrics").expect("an answer");
    assert_eq!(plain.status, 400, "{plain:?}");
    assert!(plain.body.contains("https://"), "{}", plain.body);
    assert_eq!(get_as_alice(&address, &tls, "/metrics").status, 200);

    let log = server.assert_clean_exit();
    assert!(
        !log.iter().any(|line| line.contains(PASSWORD)),
        "a password reached the log"
    );
}

#[test]
fn healthz_is_open_only_with_its_flag() {
    let site = Site::new();
    site.write_standard_config();
    let mut server = site.serve(&["--web.healthz-unauthenticated"]);
    let line = server.wait_for_log("listening on https://");
    assert!(line.contains("auth=basic-except-healthz"), "{line}");
    // Which file is in force: a user with several checks the one they edit.
    assert!(
        line.contains(&format!("web_config=\"{}\"", site.config_path().display())),
        "{line}"
    );
    let tls = site.client(None);
    let health = https(&server.address, &tls, "GET", "/healthz", &[]).unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.header("X-Frame-Options"), Some("deny"));
    // Only /healthz: the rest still needs credentials.
    for path in ["/metrics", "/", "/healthz/", "/api/v1/status"] {
        let response = https(&server.address, &tls, "GET", path, &[]).unwrap();
        assert_challenged(&response, path);
    }
    server.assert_clean_exit();
}

#[test]
fn basic_auth_without_tls_the_environment_twins_and_headers_that_replace_the_servers() {
    let site = Site::new();
    site.write_config(&format!(
        "basic_auth_users:\n  {USER}: {}\nhttp_server_config:\n  headers:\n    \
         Content-Security-Policy: {POLICY}\n    X-Content-Type-Options: nosniff\n",
        hash(PASSWORD)
    ));
    let mut command = common::serve_command(&site.env.db(), "ok-1.2-with-loaded-latency", &[]);
    command
        .env("INTERNET_MONITOR_WEB_CONFIG_FILE", site.config_path())
        .env("INTERNET_MONITOR_WEB_HEALTHZ_UNAUTHENTICATED", "true")
        .env("INTERNET_MONITOR_LOG_REQUESTS", "true")
        .env("INTERNET_MONITOR_ENABLE_RUN_ENDPOINT", "true")
        .env("INTERNET_MONITOR_START_DELAY", "1h");
    let mut server = Server::start(command);
    let line = server.wait_for_log("listening on http://");
    assert!(
        line.split_whitespace()
            .any(|f| f == "auth=basic-except-healthz"),
        "{line}"
    );
    let authorization = basic(USER, PASSWORD);
    // --log-requests: who started a manual test, and never their credentials.
    let started = common::try_request_with(
        &server.address,
        "POST",
        "/api/v1/run",
        &[
            ("Authorization", &authorization),
            ("Content-Type", "application/json"),
        ],
    )
    .unwrap();
    assert_eq!(started.status, 202);
    let access = server.wait_for_log("POST /api/v1/run 202");
    for field in [
        format!("user=\"{USER}\""),
        "path=\"/api/v1/run\"".to_owned(),
        "method=POST".to_owned(),
        "status=202".to_owned(),
        "peer=127.0.0.1:".to_owned(),
        "duration_ms=".to_owned(),
        "bytes=".to_owned(),
    ] {
        assert!(access.contains(&field), "{field} in {access}");
    }
    let test = server.wait_for_log("manual test started");
    assert!(test.contains("run=manual"), "{test}");
    let refused = common::try_request_with(&server.address, "GET", "/metrics?x=1", &[]).unwrap();
    assert_eq!(refused.status, 401);
    let access = server.wait_for_log("GET /metrics?x=1 401");
    // Text that can hold spaces or `=` is quoted (logfmt), a token bare.
    let fields = common::log_fields(&access);
    assert_eq!(fields["user"], "-", "{access}");
    assert_eq!(fields["path"], "/metrics?x=1", "{access}");
    assert!(access.contains(" path=\"/metrics?x=1\" "), "{access}");
    // A secret in the query is left out, and a request the service never saw (hyper could
    // not read it) has its line too.
    let secret =
        common::try_request_with(&server.address, "GET", "/metrics?token=s3cret", &[]).unwrap();
    assert_eq!(secret.status, 401);
    let access = server.wait_for_log("GET /metrics?token=REDACTED 401");
    assert!(!access.contains("s3cret"), "{access}");
    {
        use std::io::{Read, Write};
        let mut raw = std::net::TcpStream::connect(&server.address).unwrap();
        raw.write_all(b"GET /a\xff HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer);
        assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
    }
    let unread = server.wait_for_log("request not read: malformed, answered 400");
    assert!(unread.contains("peer=127.0.0.1:"), "{unread}");
    let ok = common::try_request_with(
        &server.address,
        "GET",
        "/metrics",
        &[("Authorization", &authorization)],
    )
    .unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("Content-Security-Policy"), Some(POLICY));
    // A HEAD answer sends no body by protocol: complete, not cut short (uptime checkers and
    // load balancers send HEAD).
    {
        use std::io::{Read, Write};
        let mut raw = std::net::TcpStream::connect(&server.address).unwrap();
        raw.write_all(b"HEAD /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer);
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    }
    let head = server.wait_for_log("HEAD /healthz 200");
    assert_eq!(common::log_fields(&head)["complete"], "true", "{head}");
    // The page's own policy is replaced by the file's, never sent beside it.
    let page = common::try_request_with(
        &server.address,
        "GET",
        "/",
        &[("Authorization", &authorization)],
    )
    .unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(count(&page, "Content-Security-Policy"), 1);
    assert_eq!(page.header("Content-Security-Policy"), Some(POLICY));
    assert_eq!(count(&page, "X-Content-Type-Options"), 1);
    assert_eq!(page.header("X-Content-Type-Options"), Some("nosniff"));
    assert_challenged(&server.get("/metrics"), "plain HTTP without credentials");
    assert_eq!(server.get("/healthz").status, 200);
    let log = server.assert_clean_exit();
    let secret = authorization.trim_start_matches("Basic ");
    assert!(
        !log.iter()
            .any(|line| line.contains(PASSWORD) || line.contains(secret)),
        "credentials in the log:\n{}",
        log.join("\n")
    );
}

#[test]
fn a_bad_file_stops_serve_before_it_creates_the_database() {
    let site = Site::new();
    for (what, yaml) in [
        (
            "an unknown key",
            "basic_auth_user:\n  alice: x\n".to_owned(),
        ),
        (
            "a missing certificate",
            "tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n".to_owned(),
        ),
    ] {
        site.write_config(&yaml);
        let config = site.config_path();
        let output = common::serve_command(
            &site.env.db(),
            "ok-1.2-with-loaded-latency",
            &[
                "--listen",
                "127.0.0.1:0",
                "--web.config.file",
                config.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains("web config"), "{what}: {stderr}");
        // The OS's words once: an error that quotes its cause is not followed by it again.
        assert!(
            stderr.matches("No such file").count() <= 1,
            "{what}: the cause twice: {stderr}"
        );
        assert!(!site.env.db().exists(), "{what}: a database was created");
    }
    // A file that is not there at all.
    let output = common::serve_command(
        &site.env.db(),
        "ok-1.2-with-loaded-latency",
        &[
            "--listen",
            "127.0.0.1:0",
            "--web.config.file",
            "/nonexistent/web.yml",
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/web.yml"), "{stderr}");
    // The reason once, not again as the error's cause.
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(!site.env.db().exists());
}

#[test]
fn certificates_and_users_change_on_disk_without_a_restart_and_a_broken_file_keeps_the_last_good() {
    let mut site = Site::new();
    site.write_standard_config();
    let mut server = site.serve(&[]);
    let address = server.address.clone();
    let tls = site.client(None);
    assert_eq!(served_certificate(&address, &tls), site.server.der);

    // A renewed certificate (another serial) is what the next connection gets.
    site.server = site.pki.server(1002);
    site.install_server_cert();
    let served = served_certificate(&address, &tls);
    assert_eq!(served, site.server.der, "the renewed certificate");
    assert_eq!(get_as_alice(&address, &tls, "/metrics").status, 200);

    // A new user list: bob in, alice out.
    let bobs = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         basic_auth_users:\n  bob: {}\n",
        hash("bob's password")
    );
    site.write_config(&bobs);
    let bob = basic("bob", "bob's password");
    let as_bob = https(
        &address,
        &tls,
        "GET",
        "/metrics",
        &[("Authorization", &bob)],
    )
    .unwrap();
    assert_eq!(as_bob.status, 200);
    assert_challenged(
        &get_as_alice(&address, &tls, "/metrics"),
        "alice after removal",
    );

    // A file broken after start: the last good configuration stays, and the log says so.
    site.write_config("tls_server_config: [this is not\n");
    let as_bob = https(
        &address,
        &tls,
        "GET",
        "/metrics",
        &[("Authorization", &bob)],
    )
    .unwrap();
    assert_eq!(as_bob.status, 200, "the last good configuration");
    assert_eq!(served_certificate(&address, &tls), site.server.der);
    let line = server.wait_for_log("the last good one stays in force");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("web.yml"), "the file is named: {line}");
    // The edit undone: the log says the warning is over, not only when the file changes.
    site.write_config(&bobs);
    let as_bob = https(
        &address,
        &tls,
        "GET",
        "/metrics",
        &[("Authorization", &bob)],
    )
    .unwrap();
    assert_eq!(as_bob.status, 200);
    let line = server.wait_for_log("as it was when last good again");
    assert!(line.contains("INFO") && line.contains("web.yml"), "{line}");
    server.assert_clean_exit();
}

#[test]
fn mutual_tls_needs_a_client_certificate_signed_by_the_client_ca() {
    let site = Site::new();
    site.write_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    );
    let mut server = site.serve(&[]);
    let certificate = site.pki.client();
    let with = site.client(Some(&certificate));
    let response = https(&server.address, &with, "GET", "/metrics", &[]).unwrap();
    assert_eq!(response.status, 200);
    // Without one the handshake (TLS 1.3: the first read after it) fails: no answer.
    let without = site.client(None);
    let refused = https(&server.address, &without, "GET", "/metrics", &[]);
    assert!(refused.is_err(), "{refused:?}");
    // Nor with one from another CA.
    let stranger = Pki::new().client();
    let other = site.client(Some(&stranger));
    let refused = https(&server.address, &other, "GET", "/metrics", &[]);
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        https(&server.address, &with, "GET", "/healthz", &[])
            .unwrap()
            .status,
        200
    );
    server.assert_clean_exit();
}

/// A TCP connection to `address` with a 2 KiB receive buffer, set before it connects, so that
/// a client that reads nothing holds the server's writes at once.
fn small_window_connect(address: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let address: std::net::SocketAddr = address.parse().unwrap();
    socket.connect(&address.into()).unwrap();
    socket.into()
}

/// Blocks until the peer has closed or reset `stream` (poll says hang-up or error), up to
/// `limit`; reads nothing. Returns whether it did.
fn wait_for_hang_up(stream: &TcpStream, limit: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + limit;
    loop {
        let mut poll = libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll reads and writes the one pollfd passed, for the call's duration.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready > 0 && poll.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLRDHUP) != 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

#[test]
fn stalled_handshakes_and_clients_that_stop_reading_are_cut_off_and_hold_up_no_one() {
    let site = Site::new();
    site.write_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let mut server = site.serve(&[]);
    let address = server.address.clone();
    let tls = site.client(None);

    // One client starts a TLS record and says no more: the handshake waits in its own task.
    let mut stalled = TcpStream::connect(&address).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();

    // Another completes the handshake, asks for the page script 400 times, pipelined (60 KB
    // of requests: more than the server reads ahead, less than the socket buffers take), and
    // reads nothing: the answers (megabytes) stall on its 2 KiB window. When the server drops
    // the connection, the requests it never read make the kernel reset it, which the client
    // sees without reading.
    let tcp = small_window_connect(&address);
    let ip: std::net::SocketAddr = address.parse().unwrap();
    let mut connection =
        rustls::ClientConnection::new(tls.clone(), ServerName::IpAddress(ip.ip().into())).unwrap();
    let mut raw = tcp.try_clone().unwrap();
    while connection.is_handshaking() {
        connection.complete_io(&mut raw).unwrap();
    }
    let request = format!(
        "GET /assets/app.js HTTP/1.1\r\nHost: {address}\r\nX-Padding: {}\r\n\r\n",
        "x".repeat(100)
    );
    let mut reader = rustls::Stream::new(&mut connection, &mut raw);
    for _ in 0..400 {
        reader.write_all(request.as_bytes()).unwrap();
    }
    reader.flush().unwrap();

    // Meanwhile others are served at once.
    for _ in 0..3 {
        assert_eq!(
            https(&address, &tls, "GET", "/healthz", &[])
                .unwrap()
                .status,
            200
        );
    }
    // Both are closed by the server: the stalled handshake at the header timeout, the
    // non-reader at the write timeout (10 s each).
    assert!(
        wait_for_hang_up(&stalled, PATIENCE),
        "a stalled TLS handshake was not closed"
    );
    assert!(
        wait_for_hang_up(&tcp, PATIENCE),
        "a client that stopped reading was not cut off"
    );
    assert_eq!(
        https(&address, &tls, "GET", "/healthz", &[])
            .unwrap()
            .status,
        200
    );
    drop((stalled, tcp));
    server.assert_clean_exit();
}

/// curl, which must be installed (.ci/run installs it).
fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run curl ({err}): apt-get install curl (Debian package curl); .ci/run does"
            )
        })
}

/// curl's status code for `url` (`-w %{http_code}`), its body discarded.
fn curl_status(args: &[&str], url: &str) -> String {
    let mut all = vec!["--output", "/dev/null", "--write-out", "%{http_code}"];
    all.extend_from_slice(args);
    all.push(url);
    let output = curl(&all);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
#[ignore = "needs curl (Debian package curl); .ci/run installs it and runs the ignored tests"]
fn curl_over_https_with_the_test_ca_and_a_user() {
    let site = Site::new();
    site.write_standard_config();
    let mut server = site.serve(&[]);
    let ca = site.env.path("ca.crt");
    let ca = ca.to_str().unwrap();
    let port = server.address.rsplit_once(':').unwrap().1.to_owned();
    let user = format!("{USER}:{PASSWORD}");
    for path in ["/metrics", "/", "/api/v1/status"] {
        // By name (localhost) as a user types it; the certificate names both.
        let url = format!("https://localhost:{port}{path}");
        assert_eq!(
            curl_status(&["--cacert", ca, "--user", &user], &url),
            "200",
            "{url}"
        );
    }
    let url = format!("https://127.0.0.1:{port}/metrics");
    let headers = curl(&["--cacert", ca, "--include", "--output", "-", &url]);
    let text = String::from_utf8_lossy(&headers.stdout);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains(&format!(
            "www-authenticate: {}",
            CHALLENGE.to_ascii_lowercase()
        )),
        "{text}"
    );
    assert_eq!(
        curl_status(&["--cacert", ca, "--user", &format!("{USER}:wrong")], &url),
        "401"
    );
    // Without the CA, curl refuses the server (exit 60: the peer's certificate is not trusted).
    let untrusted = curl(&["--output", "/dev/null", &url]);
    assert_eq!(untrusted.status.code(), Some(60), "{untrusted:?}");
    server.assert_clean_exit();

    // Mutual TLS: curl --cert/--key.
    let client = site.pki.client();
    std::fs::write(site.env.path("client.crt"), &client.cert_pem).unwrap();
    std::fs::write(site.env.path("client.key"), &client.key_pem).unwrap();
    site.write_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    );
    let mut server = site.serve(&[]);
    let url = format!(
        "https://127.0.0.1:{}/metrics",
        server.address.rsplit_once(':').unwrap().1
    );
    let (cert, key) = (site.env.path("client.crt"), site.env.path("client.key"));
    let mtls = [
        "--cacert",
        ca,
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    assert_eq!(curl_status(&mtls, &url), "200");
    let refused = curl(&["--cacert", ca, "--output", "/dev/null", &url]);
    assert!(
        !refused.status.success(),
        "no client certificate: {refused:?}"
    );
    server.assert_clean_exit();
}

/// The value of an instant query's first sample, once Prometheus has one.
fn query(prometheus: &str, expr: &str) -> Option<String> {
    let response =
        common::try_request(prometheus, "GET", &format!("/api/v1/query?query={expr}")).ok()?;
    let body: serde_json::Value = serde_json::from_str(&response.body).ok()?;
    body["data"]["result"][0]["value"][1]
        .as_str()
        .map(str::to_owned)
}

#[test]
#[ignore = "needs a Prometheus server (Debian package prometheus); .ci/run installs it and runs the ignored tests"]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    let site = Site::new();
    site.write_config(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         basic_auth_users:\n  prometheus: {}\n",
        hash("scrape secret")
    ));
    let mut server = site.serve(&[]);
    server.wait_for_log("test succeeded");
    let password = site.env.path("password");
    std::fs::write(&password, "scrape secret").unwrap();
    let config = site.env.path("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: internet-monitor\n    scheme: https\n    \
             tls_config: {{ca_file: '{}'}}\n    \
             basic_auth: {{username: prometheus, password_file: '{}'}}\n    \
             static_configs: [{{targets: ['{}']}}]\n",
            site.env.path("ca.crt").display(),
            password.display(),
            server.address
        ),
    )
    .unwrap();
    let data = site.env.path("prometheus");
    let mut prometheus = common::Prometheus::start(&config, &data);
    prometheus.wait_ready();
    let scraped = common::poll_within(Duration::from_secs(30), || {
        (query(&prometheus.address, "up").as_deref() == Some("1")
            && query(&prometheus.address, "speedtest_up").as_deref() == Some("1"))
        .then_some(())
    });
    assert!(
        scraped.is_some(),
        "Prometheus never scraped up == 1 over TLS with basic auth: up = {:?}",
        query(&prometheus.address, "up")
    );
    drop(prometheus);
    server.assert_clean_exit();
}

/// The image's HEALTHCHECK script against `address`: its exit status and stderr.
fn healthcheck(address: &str) -> (bool, String) {
    let port = address.rsplit_once(':').unwrap().1;
    let output = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/docker/healthcheck.sh"
        ))
        .env("INTERNET_MONITOR_LISTEN", format!("0.0.0.0:{port}"))
        .output()
        .expect("run bash");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs openssl (Debian package openssl); .ci/run installs it and runs the ignored tests"]
fn the_images_health_check_speaks_https_and_needs_the_flag_with_users() {
    assert!(
        Command::new("openssl").arg("version").output().is_ok(),
        "openssl is not installed: apt-get install openssl (Debian package openssl); .ci/run does"
    );
    let site = Site::new();
    site.write_standard_config();
    let mut server = site.serve(&[]);
    let (healthy, stderr) = healthcheck(&server.address);
    assert!(!healthy, "users set, no flag: unhealthy");
    assert!(stderr.contains("--web.healthz-unauthenticated"), "{stderr}");
    server.assert_clean_exit();

    let mut server = site.serve(&["--web.healthz-unauthenticated"]);
    let (healthy, stderr) = healthcheck(&server.address);
    assert!(healthy, "over TLS with the flag: {stderr}");
    server.assert_clean_exit();
}

#[test]
fn credential_checks_beyond_what_the_server_can_take_get_503_with_retry_after() {
    // A hash whose check takes a while in this build, timed here: enough clients at once that
    // their checks, two at a time, would take four times the few seconds one waits for a turn.
    let started = Instant::now();
    let slow = bcrypt::hash(PASSWORD, 8).unwrap();
    let one_check = started.elapsed().max(Duration::from_millis(1));
    let clients = usize::try_from(2 * 12_000 / one_check.as_millis().max(1))
        .unwrap_or(usize::MAX)
        .clamp(8, 400);
    let site = Site::new();
    site.write_config(&format!("basic_auth_users:\n  {USER}: {slow}\n"));
    let config = site.config_path();
    let mut server = Server::start(common::serve_command(
        &site.env.db(),
        "ok-1.2-with-loaded-latency",
        &["--web.config.file", config.to_str().unwrap()],
    ));
    common::raise_open_files_limit(2 * clients as u64 + 64);
    let wrong = basic(USER, "not the password");
    let answers: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let response = common::try_request_with(
                        &server.address,
                        "GET",
                        "/metrics",
                        &[("Authorization", &wrong)],
                    )
                    .expect("an answer");
                    let retry = response.header("Retry-After").map(str::to_owned);
                    (response.status, retry)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let busy = answers.iter().filter(|(status, _)| *status == 503).count();
    eprintln!(
        "one cost-8 check took {one_check:?}; {clients} clients: {busy} answered 503, {} 401",
        answers.iter().filter(|(status, _)| *status == 401).count()
    );
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 401 || *status == 503),
        "{answers:?}"
    );
    assert!(busy > 0, "no client was turned away: {answers:?}");
    assert!(
        answers
            .iter()
            .filter(|(status, _)| *status == 503)
            .all(|(_, retry)| retry.as_deref() == Some("1")),
        "{answers:?}"
    );
    // Once the queue is gone, the right password gets in.
    let right = basic(USER, PASSWORD);
    let ok = common::try_request_with(
        &server.address,
        "GET",
        "/metrics",
        &[("Authorization", &right)],
    )
    .unwrap();
    assert_eq!(ok.status, 200);
    server.wait_for_log("every credential check was busy");
    server.assert_clean_exit();
}

#[test]
fn stalled_handshakes_beyond_the_connection_cap_make_room_for_new_clients() {
    use std::os::unix::process::CommandExt;
    // An open-files limit of 200 makes the connection cap 136 (64 are kept back).
    const OPEN_FILES: u64 = 200;
    const STALLED: usize = 160;
    common::raise_open_files_limit(2 * STALLED as u64 + 64);
    let site = Site::new();
    site.write_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let config = site.config_path();
    let mut command = common::serve_command(
        &site.env.db(),
        "ok-1.2-with-loaded-latency",
        &["--web.config.file", config.to_str().unwrap()],
    );
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
    let mut server = Server::start(command);
    // More clients than the cap, each stuck after the first bytes of a TLS record.
    let stalled: Vec<TcpStream> = (0..STALLED)
        .map(|_| {
            let mut stream = TcpStream::connect(&server.address).unwrap();
            stream.write_all(&[0x16, 0x03, 0x01]).unwrap();
            stream
        })
        .collect();
    // New clients are served at once, each in the place of a stalled one evicted for it: long
    // before the header timeout would have closed them all together.
    let tls = site.client(None);
    for _ in 0..3 {
        let health = https(&server.address, &tls, "GET", "/healthz", &[]).unwrap();
        assert_eq!(health.status, 200);
    }
    let open = stalled
        .iter()
        .filter(|stream| !wait_for_hang_up(stream, Duration::ZERO))
        .count();
    assert!(
        open >= STALLED / 2,
        "the new clients were served only once most stalled ones were closed: {open} open"
    );
    assert!(open < STALLED, "no stalled connection was evicted");
    drop(stalled);
    server.assert_clean_exit();
}

/// Makes a FIFO at `path` (nothing ever writes to it).
fn mkfifo(path: &std::path::Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The file and the files it names are read again for each connection: swapped after start
/// for a FIFO (whose open would wait for a writer for ever), a link to `/dev/zero`, a huge
/// file or an unreadable one, each is a broken file (the last good configuration serves, at
/// once) rather than a hung server or a megabyte read per connection.
#[test]
fn a_file_swapped_for_a_fifo_a_device_or_a_huge_file_is_broken_not_a_hang() {
    let site = Site::new();
    site.write_standard_config();
    let mut server = site.serve(&[]);
    let address = server.address.clone();
    let tls = site.client(None);
    assert_eq!(get_as_alice(&address, &tls, "/metrics").status, 200);
    let good = std::fs::read(site.config_path()).unwrap();
    let key = site.env.path("server.key");
    let swaps: [(&str, &std::path::Path); 2] =
        [("web.yml", &site.config_path()), ("server.key", &key)];
    for (name, path) in swaps {
        let saved = std::fs::read(path).unwrap();
        for kind in ["fifo", "/dev/zero", "huge", "unreadable directory"] {
            std::fs::remove_file(path).unwrap();
            match kind {
                "fifo" => mkfifo(path),
                "huge" => {
                    let file = std::fs::File::create(path).unwrap();
                    file.set_len(8 << 30).unwrap();
                }
                "unreadable directory" => std::fs::create_dir(path).unwrap(),
                device => std::os::unix::fs::symlink(device, path).unwrap(),
            }
            for _ in 0..3 {
                let response = https(
                    &address,
                    &tls,
                    "GET",
                    "/metrics",
                    &[("Authorization", &basic(USER, PASSWORD))],
                )
                .unwrap_or_else(|err| panic!("{name} as {kind}: {err}"));
                assert_eq!(response.status, 200, "{name} as {kind}");
            }
            assert_eq!(served_certificate(&address, &tls), site.server.der);
            if kind == "unreadable directory" {
                std::fs::remove_dir(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
            std::fs::write(path, &saved).unwrap();
        }
    }
    assert_eq!(std::fs::read(site.config_path()).unwrap(), good);
    let line = server.wait_for_log("not a regular file");
    assert!(line.contains("the last good one stays in force"), "{line}");
    assert_eq!(get_as_alice(&address, &tls, "/metrics").status, 200);
    server.assert_clean_exit();
}

/// Header tricks get in with the right password only: the scheme in any case and extra
/// spaces are the same credentials; a tab for the space, a missing colon, an empty user and
/// password, another user's case, a NUL after the password, another scheme, a list, and a
/// second `Authorization` header (whichever of the two is right: a proxy in front may have
/// judged the other) are refused with the challenge.
#[test]
fn authorization_header_tricks_get_nothing_but_the_right_password_in() {
    let site = Site::new();
    site.write_config(&format!(
        "basic_auth_users:\n  {USER}: {}\n",
        hash(PASSWORD)
    ));
    let server = site.serve(&[]);
    let good = basic(USER, PASSWORD);
    let encoded = good.strip_prefix("Basic ").unwrap();
    let wrong = basic(USER, "wrong");
    let get = |headers: &[(&str, &str)]| {
        common::try_request_with(&server.address, "GET", "/metrics", headers).unwrap()
    };
    for accepted in [
        good.clone(),
        format!("basic {encoded}"),
        format!("BASIC   {encoded}  "),
    ] {
        assert_eq!(
            get(&[("Authorization", &accepted)]).status,
            200,
            "{accepted}"
        );
    }
    let refused = [
        format!("Basic\t{encoded}"),
        // `alice` with no colon and no password.
        "Basic YWxpY2U=".to_owned(),
        basic("", ""),
        basic("Alice", PASSWORD),
        basic(USER, &format!("{PASSWORD}\0")),
        format!("Bearer {encoded}"),
        format!("{good}, {wrong}"),
    ];
    for value in &refused {
        assert_challenged(&get(&[("Authorization", value)]), value);
    }
    for pair in [[&good, &wrong], [&wrong, &good], [&good, &good]] {
        let response = get(&[("Authorization", pair[0]), ("Authorization", pair[1])]);
        assert_challenged(&response, "two Authorization headers");
    }
    assert_eq!(get(&[("Authorization", &good)]).status, 200);
}

/// A file swapped after start for one without users (an edit, or the same file read while
/// half written, its users not there yet) does not open the server: turning authentication
/// off needs a restart, as turning TLS off does. Changing the users still applies at once.
#[test]
fn a_file_without_users_after_start_keeps_authentication_on() {
    let site = Site::new();
    site.write_standard_config();
    let mut server = site.serve(&[]);
    let address = server.address.clone();
    let tls = site.client(None);
    // What `cat > web.yml` leaves for a moment: the TLS section written, the users not yet.
    site.write_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let response = https(&address, &tls, "GET", "/metrics", &[]).unwrap();
    assert_challenged(&response, "a file with no users after start");
    site.write_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users: {}\n");
    let response = https(&address, &tls, "GET", "/api/v1/status", &[]).unwrap();
    assert_challenged(&response, "an empty user list after start");
    let line = server.wait_for_log("turning authentication off needs a restart");
    assert!(line.contains("the last good one stays in force"), "{line}");
    assert_eq!(get_as_alice(&address, &tls, "/metrics").status, 200);
    site.write_config(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         basic_auth_users:\n  bob: {}\n",
        hash("bob's password")
    ));
    assert_challenged(
        &get_as_alice(&address, &tls, "/metrics"),
        "alice replaced by bob",
    );
    server.assert_clean_exit();
}

/// Reads one answer (with a Content-Length) from a keep-alive connection: its status.
fn read_answer(stream: &mut TlsStream) -> u16 {
    read_answer_head(stream).0
}

/// Reads one answer (with a Content-Length): its status and its head.
fn read_answer_head(stream: &mut TlsStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("a Content-Length");
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    (head[9..12].parse().unwrap(), head)
}

/// A user taken out of the file is out at their next request, also on a keep-alive
/// connection that began while they were in (a client asking more often than the idle
/// timeout would otherwise keep the connection, and the access, for ever).
#[test]
fn a_removed_user_is_out_at_the_next_request_on_a_kept_alive_connection() {
    let site = Site::new();
    site.write_standard_config();
    let server = site.serve(&[]);
    let tls = site.client(None);
    let mut stream = connect(&server.address, &tls).unwrap();
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
        server.address,
        basic(USER, PASSWORD)
    );
    stream.write_all(request.as_bytes()).unwrap();
    assert_eq!(read_answer(&mut stream), 200);
    site.write_config(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         basic_auth_users:\n  bob: {}\n",
        hash("bob's password")
    ));
    stream.write_all(request.as_bytes()).unwrap();
    assert_eq!(
        read_answer(&mut stream),
        401,
        "alice, removed, on her old connection"
    );
}

/// TLS is settled at the handshake: when the file's TLS changes under a kept-alive
/// connection (a client CA replaced to shut a certificate out, a renewed certificate), the
/// next answer on it closes it, so the client's next request makes a new handshake under the
/// new settings instead of going on under the old ones for ever.
#[test]
fn a_changed_tls_configuration_closes_kept_alive_connections_after_their_next_answer() {
    let mut site = Site::new();
    site.write_standard_config();
    let server = site.serve(&[]);
    let tls = site.client(None);
    let mut stream = connect(&server.address, &tls).unwrap();
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
        server.address,
        basic(USER, PASSWORD)
    );
    stream.write_all(request.as_bytes()).unwrap();
    let (status, head) = read_answer_head(&mut stream);
    assert_eq!(status, 200);
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    site.server = site.pki.server(1003);
    site.install_server_cert();
    stream.write_all(request.as_bytes()).unwrap();
    let (status, head) = read_answer_head(&mut stream);
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the connection ends after that answer");
    assert_eq!(served_certificate(&server.address, &tls), site.server.der);
}

/// The README's OpenSSL recipe for a CA of one's own (the `sh` block under "Security" that
/// makes `ca.crt`), run as written in `dir`.
fn run_readme_openssl_recipe(dir: &std::path::Path) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("  ```sh\n  openssl req -x509")
        .expect("the README's OpenSSL recipe under Security");
    let body = &readme[start + "  ```sh\n".len()..];
    let end = body.find("  ```").expect("the recipe's closing fence");
    // The block is indented under a list item; the shell does not mind, but strip it anyway.
    let script: String = body[..end]
        .lines()
        .map(|line| line.strip_prefix("  ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let output = Command::new("sh")
        .arg("-ec")
        .arg(&script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the README's recipe failed (needs openssl 3: apt-get install openssl; .ci/run does): \
         {}\n{script}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[ignore = "needs openssl and curl (Debian packages openssl, curl); .ci/run installs them and runs the ignored tests"]
fn the_readmes_openssl_recipe_makes_a_certificate_curl_and_the_server_accept() {
    let env = Env::new();
    run_readme_openssl_recipe(&env.path(""));
    std::fs::write(
        env.path("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: monitor.crt\n  key_file: monitor.key\n\
             basic_auth_users:\n  {USER}: {}\n",
            hash(PASSWORD)
        ),
    )
    .unwrap();
    let config = env.path("web.yml");
    let mut server = Server::start(common::serve_command(
        &env.db(),
        "ok-1.2-with-loaded-latency",
        &["--web.config.file", config.to_str().unwrap()],
    ));
    let ca = env.path("ca.crt");
    let port = server.address.rsplit_once(':').unwrap().1.to_owned();
    let user = format!("{USER}:{PASSWORD}");
    // By each name the recipe puts in the certificate that resolves here.
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{port}/metrics");
        assert_eq!(
            curl_status(&["--cacert", ca.to_str().unwrap(), "--user", &user], &url),
            "200",
            "{url}"
        );
    }
    server.assert_clean_exit();
}

#[test]
fn an_empty_environment_twin_is_named_beside_the_flags_error() {
    let env = Env::new();
    let db = env.db();
    for key in [
        "INTERNET_MONITOR_WEB_CONFIG_FILE",
        "INTERNET_MONITOR_REMOTE_WRITE_URL",
    ] {
        // `KEY: ${UNSET}` in a compose file: the flag's message names the flag only.
        let output = common::command(&["serve", "--db", db.to_str().unwrap()])
            .env(key, "")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{key}: {stderr}");
        assert!(
            stderr.contains(&format!("environment variable {key} (the twin of --"))
                && stderr.contains("is set but empty"),
            "{key}: {stderr}"
        );
    }
    assert!(!env.db().exists(), "a refused start creates no database");
}

/// `internet-monitor hash-password`, as the README says: the password piped in, the hash it
/// prints let that password in and no other; a terminal-less empty input is refused.
#[test]
fn hash_password_prints_a_hash_the_server_takes() {
    let hashed = |input: &str, extra: &[&str]| {
        let mut args = vec!["hash-password"];
        args.extend_from_slice(extra);
        let mut child = common::command(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let output = hashed(&format!("{PASSWORD}\n"), &["--cost", "4"]);
    assert!(output.status.success(), "{output:?}");
    let hash = String::from_utf8(output.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$2b$04$") && hash.len() == 60, "{hash}");

    let site = Site::new();
    site.write_config(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         basic_auth_users:\n  {USER}: '{hash}'\n"
    ));
    let server = site.serve(&[]);
    let tls = site.client(None);
    assert_eq!(get_as_alice(&server.address, &tls, "/metrics").status, 200);
    let wrong = https(
        &server.address,
        &tls,
        "GET",
        "/metrics",
        &[("Authorization", &basic(USER, "not it"))],
    )
    .unwrap();
    assert_challenged(&wrong, "a wrong password");

    let empty = hashed("", &[]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains("the password is empty"),
        "{empty:?}"
    );
}
