//! Conformance tests of the web configuration file, one per behaviour the exporter-toolkit
//! documents (valid files, each refusal pinned to its message), TLS handshakes in memory,
//! basic authentication and the re-reading source. Certificates are made at test time.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use hyper::header::HeaderValue;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::auth::test_support;
use super::{Check, WebConfig, WebConfigError, WebConfigSource};

/// A directory with a server certificate and key, a second unrelated key, and a client CA
/// with a client certificate signed by it.
struct Fixture {
    dir: tempfile::TempDir,
    /// The server certificate (PEM), for clients to trust.
    server_cert: String,
    /// The client CA certificate (PEM).
    client_ca: String,
    /// A client certificate signed by the CA (SANs `client.example`, `ops@example.com`), and its key.
    client_cert: String,
    client_key: String,
}

fn server_pair(names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (server_cert, server_key) = server_pair(&["localhost"]);
        let (_, other_key) = server_pair(&["other"]);

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(vec!["client.example".to_owned()]).unwrap();
        client_params
            .subject_alt_names
            .push(SanType::Rfc822Name("ops@example.com".try_into().unwrap()));
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

        std::fs::write(dir.path().join("server.crt"), &server_cert).unwrap();
        std::fs::write(dir.path().join("server.key"), &server_key).unwrap();
        std::fs::write(dir.path().join("other.key"), other_key).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
        Fixture {
            dir,
            server_cert,
            client_ca: ca_cert.pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `yaml` as `web.yml` and loads it.
    fn load(&self, yaml: &str) -> Result<WebConfig, WebConfigError> {
        let path = self.path("web.yml");
        std::fs::write(&path, yaml).unwrap();
        WebConfig::load(&path)
    }

    /// The message of loading `yaml`, which must fail, without the `web config FILE: ` prefix
    /// (checked here).
    fn refusal(&self, yaml: &str) -> String {
        let error = self.load(yaml).expect_err("the file must be refused");
        let message = error.to_string();
        let prefix = format!("web config {}: ", self.path("web.yml").display());
        message
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{message:?} does not start with {prefix:?}"))
            .to_owned()
    }
}

const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

fn tls_with(extra: &str) -> String {
    format!("{TLS}{extra}")
}

/// A bcrypt hash of `password` at cost 4 (fast).
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

fn basic(user: &str, password: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
}

// ---- valid files ----

#[test]
fn an_empty_file_means_plain_http_without_users() {
    let fixture = Fixture::new();
    for yaml in ["", "# nothing\n", "tls_server_config:\nbasic_auth_users:\n"] {
        let config = fixture.load(yaml).unwrap();
        assert!(config.tls.is_none(), "{yaml:?}");
        assert!(config.users.is_empty(), "{yaml:?}");
        assert!(config.headers.is_empty(), "{yaml:?}");
    }
}

#[test]
fn minimal_tls_offers_http1_and_prefers_the_servers_order() {
    let fixture = Fixture::new();
    let config = fixture.load(TLS).unwrap();
    let tls = config.tls.expect("TLS is on");
    assert_eq!(tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert!(tls.ignore_client_order);
    assert!(config.users.is_empty());
    handshake(&tls, client_config(&fixture, None, None)).unwrap();
}

#[test]
fn prefer_server_cipher_suites_false_follows_the_client() {
    let fixture = Fixture::new();
    let config = fixture
        .load(&tls_with("  prefer_server_cipher_suites: false\n"))
        .unwrap();
    assert!(!config.tls.unwrap().ignore_client_order);
}

#[test]
fn inline_cert_and_key_are_accepted() {
    let fixture = Fixture::new();
    let key = std::fs::read_to_string(fixture.path("server.key")).unwrap();
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let yaml = format!(
        "tls_server_config:\n  cert: |\n{}  key: |\n{}",
        indent(&fixture.server_cert),
        indent(&key)
    );
    let config = fixture.load(&yaml).unwrap();
    handshake(&config.tls.unwrap(), client_config(&fixture, None, None)).unwrap();
}

#[tokio::test]
async fn tls_and_users() {
    let fixture = Fixture::new();
    let yaml = tls_with(&format!(
        "basic_auth_users:\n  alice: {}\n  bob: {}\n",
        hash("wonderland"),
        hash("builder")
    ));
    let config = fixture.load(&yaml).unwrap();
    assert!(config.tls.is_some());
    assert_eq!(config.users.len(), 2);
    let users = &config.users;
    assert_eq!(
        users.check(Some(&basic("alice", "wonderland"))).await,
        Check::Allowed
    );
    assert_eq!(
        users.check(Some(&basic("bob", "builder"))).await,
        Check::Allowed
    );
    assert_eq!(
        users.check(Some(&basic("alice", "builder"))).await,
        Check::Denied
    );
    assert_eq!(
        users.check(Some(&basic("carol", "wonderland"))).await,
        Check::Denied
    );
    assert_eq!(users.check(None).await, Check::Denied);
}

#[tokio::test]
async fn users_without_tls_are_accepted() {
    let fixture = Fixture::new();
    let yaml = format!("basic_auth_users:\n  alice: {}\n", hash("secret"));
    let config = fixture.load(&yaml).unwrap();
    assert!(config.tls.is_none());
    assert_eq!(
        config.users.check(Some(&basic("alice", "secret"))).await,
        Check::Allowed
    );
}

#[test]
fn every_bcrypt_prefix_is_accepted() {
    let fixture = Fixture::new();
    let b = hash("pw");
    let a = b.replacen("$2b$", "$2a$", 1);
    let y = b.replacen("$2b$", "$2y$", 1);
    let yaml = format!("basic_auth_users:\n  a: '{a}'\n  b: '{b}'\n  y: \"{y}\"\n");
    let config = fixture.load(&yaml).unwrap();
    assert_eq!(config.users.len(), 3);
}

#[test]
fn headers_are_taken_and_blank_ones_skipped() {
    let fixture = Fixture::new();
    let config = fixture
        .load(
            "http_server_config:\n  headers:\n    Content-Security-Policy: \"default-src 'self'\"\n    \
             X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n    \
             X-XSS-Protection: \"1; mode=block\"\n    Strict-Transport-Security: \"\"\n",
        )
        .unwrap();
    let headers: Vec<(String, String)> = config
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        headers,
        [
            (
                "content-security-policy".to_owned(),
                "default-src 'self'".to_owned()
            ),
            ("x-content-type-options".to_owned(), "nosniff".to_owned()),
            ("x-frame-options".to_owned(), "deny".to_owned()),
            ("x-xss-protection".to_owned(), "1; mode=block".to_owned()),
        ]
    );
}

#[test]
fn header_values_from_a_list_are_case_insensitive() {
    // RFC 7034: X-Frame-Options' DENY is the spelling most guides use.
    let fixture = Fixture::new();
    let config = fixture
        .load("http_server_config:\n  headers:\n    X-Frame-Options: DENY\n    X-Content-Type-Options: NoSniff\n")
        .unwrap();
    let values: Vec<&str> = config
        .headers
        .iter()
        .map(|(_, v)| v.to_str().unwrap())
        .collect();
    assert_eq!(values, ["NoSniff", "DENY"]);
}

#[test]
fn http2_is_accepted_and_ignored() {
    let fixture = Fixture::new();
    for value in ["true", "false"] {
        let config = fixture
            .load(&tls_with(&format!(
                "http_server_config:\n  http2: {value}\n"
            )))
            .unwrap();
        assert_eq!(
            config.tls.unwrap().alpn_protocols,
            vec![b"http/1.1".to_vec()]
        );
    }
}

#[test]
fn relative_paths_resolve_against_the_files_directory() {
    let fixture = Fixture::new();
    let sub = fixture.path("conf");
    std::fs::create_dir_all(sub.join("certs")).unwrap();
    std::fs::copy(fixture.path("server.crt"), sub.join("certs/server.crt")).unwrap();
    std::fs::copy(fixture.path("server.key"), sub.join("certs/server.key")).unwrap();
    let path = sub.join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/../certs/server.key\n",
    )
    .unwrap();
    assert!(WebConfig::load(&path).unwrap().tls.is_some());
    // parse() resolves against the directory it is given.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(WebConfig::parse(&text, &sub).unwrap().tls.is_some());
    let error = WebConfig::parse(&text, fixture.dir.path()).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "web config (text): tls_server_config.cert_file: cannot read {}: ",
            fixture.path("certs/server.crt").display()
        )),
        "{error}"
    );
}

#[test]
fn versions_suites_and_curves_as_configured() {
    let fixture = Fixture::new();
    let config = fixture
        .load(&tls_with(
            "  min_version: TLS12\n  max_version: TLS13\n  cipher_suites:\n    \
             - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n    \
             - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n  curve_preferences: [CurveP384, X25519]\n",
        ))
        .unwrap();
    let tls = config.tls.unwrap();
    let suites: Vec<String> = tls
        .crypto_provider()
        .cipher_suites
        .iter()
        .map(|s| format!("{:?}", s.suite()))
        .collect();
    // The TLS 1.3 suites all stay (none named), then the TLS 1.2 ones in the order named.
    assert_eq!(
        suites,
        [
            "TLS13_AES_256_GCM_SHA384",
            "TLS13_AES_128_GCM_SHA256",
            "TLS13_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ]
    );
    let groups: Vec<String> = tls
        .crypto_provider()
        .kx_groups
        .iter()
        .map(|g| format!("{:?}", g.name()))
        .collect();
    assert_eq!(groups, ["secp384r1", "X25519"]);
}

// ---- refusals, each pinned to its message ----

#[test]
fn unknown_key_at_top_level() {
    assert_eq!(
        Fixture::new().refusal("tls_server_config:\nbasic_auth_user:\n  a: b\n"),
        "basic_auth_user: unknown key (accepted: tls_server_config, http_server_config, basic_auth_users)"
    );
}

#[test]
fn unknown_key_nested() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal("tls_server_config:\n  cert_filse: server.crt\n"),
        "tls_server_config.cert_filse: unknown key (accepted: cert_file, key_file, cert, key, \
         client_auth_type, client_ca_file, client_ca, client_allowed_sans, min_version, \
         max_version, cipher_suites, curve_preferences, prefer_server_cipher_suites)"
    );
    assert_eq!(
        fixture.refusal("http_server_config:\n  header:\n    X-Frame-Options: deny\n"),
        "http_server_config.header: unknown key (accepted: headers, http2)"
    );
}

#[test]
fn rate_limit_is_refused() {
    assert_eq!(
        Fixture::new().refusal("rate_limit:\n  interval: 1s\n  burst: 5\n"),
        "rate_limit: not supported (the server bounds its connections and readers itself; \
         accepted: tls_server_config, http_server_config, basic_auth_users)"
    );
}

#[test]
fn not_yaml_or_not_a_mapping() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal("tls_server_config: [\n"),
        "(file): not valid YAML: line 1 column 20: unclosed bracket '['"
    );
    // As with the toolkit's strict parsing, a key given twice is an error.
    assert_eq!(
        fixture.refusal("basic_auth_users:\n  a: x\n  a: y\n"),
        "(file): not valid YAML: line 3 column 3: duplicate mapping key: a"
    );
    assert_eq!(
        fixture.refusal("- a\n- b\n"),
        "(file): expected a mapping of tls_server_config, http_server_config, basic_auth_users, found a list"
    );
    assert_eq!(
        fixture.refusal("tls_server_config: yes please\n"),
        "tls_server_config: expected a mapping, found a string"
    );
}

#[test]
fn a_value_of_the_wrong_type() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal(&tls_with("  cipher_suites: TLS_AES_128_GCM_SHA256\n")),
        "tls_server_config.cipher_suites: expected a list of strings, found a string"
    );
    assert_eq!(
        fixture.refusal(&tls_with("  prefer_server_cipher_suites: sometimes\n")),
        "tls_server_config.prefer_server_cipher_suites: expected true or false, found a string"
    );
}

#[test]
fn an_unknown_tls_version() {
    assert_eq!(
        Fixture::new().refusal(&tls_with("  min_version: TLS14\n")),
        "tls_server_config.min_version: unknown TLS version \"TLS14\" (accepted: TLS12, TLS13)"
    );
}

#[test]
fn tls10_and_tls11_are_refused() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal(&tls_with("  min_version: TLS10\n")),
        "tls_server_config.min_version: TLS10 is not supported (rustls speaks TLS12 and TLS13)"
    );
    assert_eq!(
        fixture.refusal(&tls_with("  max_version: TLS11\n")),
        "tls_server_config.max_version: TLS11 is not supported (rustls speaks TLS12 and TLS13)"
    );
}

#[test]
fn min_version_above_max_version() {
    assert_eq!(
        Fixture::new().refusal(&tls_with("  min_version: TLS13\n  max_version: TLS12\n")),
        "tls_server_config.min_version: TLS13 is above max_version TLS12"
    );
}

const SUITES: &str = "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, \
    TLS_CHACHA20_POLY1305_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, \
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, \
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, \
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

#[test]
fn an_unknown_cipher_suite() {
    assert_eq!(
        Fixture::new().refusal(&tls_with("  cipher_suites: [TLS_INVENTED_CIPHER]\n")),
        format!(
            "tls_server_config.cipher_suites: unknown cipher suite \"TLS_INVENTED_CIPHER\" (accepted: {SUITES})"
        )
    );
}

#[test]
fn a_cipher_suite_rustls_lacks() {
    assert_eq!(
        Fixture::new().refusal(&tls_with(
            "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n"
        )),
        format!(
            "tls_server_config.cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is not supported by rustls (accepted: {SUITES})"
        )
    );
}

#[test]
fn cipher_suites_without_a_tls12_suite_while_tls12_is_allowed() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal(&tls_with("  cipher_suites: [TLS_AES_128_GCM_SHA256]\n")),
        "tls_server_config.cipher_suites: names no TLS 1.2 suite, but min_version allows TLS12 \
         (name one, or set min_version: TLS13)"
    );
    let config = fixture
        .load(&tls_with(
            "  min_version: TLS13\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
        ))
        .unwrap();
    let tls = config.tls.unwrap();
    assert_eq!(tls.crypto_provider().cipher_suites.len(), 1);
}

#[test]
fn cipher_suites_that_do_not_fit_the_certificates_key() {
    // The fixture's keys are ECDSA (P-256).
    assert_eq!(
        Fixture::new().refusal(&tls_with(
            "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
        )),
        "tls_server_config.cipher_suites: no TLS 1.2 suite named can be used with the \
         certificate's ECDSA key, so TLS 1.2 clients could not connect (name a \
         TLS_ECDHE_ECDSA_… suite, or set min_version: TLS13)"
    );
}

#[test]
fn a_tls12_client_gets_only_the_suites_named() {
    let fixture = Fixture::new();
    let tls = fixture
        .load(&tls_with(
            "  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n",
        ))
        .unwrap()
        .tls
        .unwrap();
    let offering = |suite: rustls::SupportedCipherSuite| {
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![suite];
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(fixture.server_cert.as_bytes()).unwrap())
            .unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    };
    use rustls::crypto::ring::cipher_suite as cs;
    handshake(&tls, offering(cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)).unwrap();
    assert!(handshake(&tls, offering(cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)).is_err());
}

#[test]
fn unsupported_and_unknown_curves() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal(&tls_with("  curve_preferences: [X25519, CurveP521]\n")),
        "tls_server_config.curve_preferences: CurveP521 is not supported by rustls (accepted: X25519, CurveP256, CurveP384)"
    );
    assert_eq!(
        fixture.refusal(&tls_with("  curve_preferences: [CurveP999]\n")),
        "tls_server_config.curve_preferences: unknown curve \"CurveP999\" (accepted: X25519, CurveP256, CurveP384)"
    );
}

#[test]
fn an_unknown_client_auth_type() {
    assert_eq!(
        Fixture::new().refusal(&tls_with("  client_auth_type: x\n")),
        "tls_server_config.client_auth_type: unknown client auth type \"x\" (accepted: \
         NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, \
         RequireAndVerifyClientCert)"
    );
}

#[test]
fn verification_without_a_client_ca() {
    let fixture = Fixture::new();
    for kind in ["RequireAndVerifyClientCert", "VerifyClientCertIfGiven"] {
        assert_eq!(
            fixture.refusal(&tls_with(&format!("  client_auth_type: {kind}\n"))),
            format!(
                "tls_server_config.client_ca_file: missing: client_auth_type {kind} verifies \
                 client certificates against the CA certificates in client_ca_file (or inline \
                 client_ca)"
            )
        );
    }
}

#[test]
fn a_client_ca_without_verification() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal(&tls_with("  client_ca_file: ca.crt\n")),
        "tls_server_config.client_ca_file: is set, but client_auth_type is NoClientCert, so no \
         client certificate is asked for: set client_auth_type: RequireAndVerifyClientCert (or \
         VerifyClientCertIfGiven)"
    );
    assert_eq!(
        fixture.refusal(&tls_with(
            "  client_auth_type: RequireAnyClientCert\n  client_ca_file: ca.crt\n"
        )),
        "tls_server_config.client_ca_file: is not used with client_auth_type \
         RequireAnyClientCert, which accepts any client certificate unverified: use \
         RequireAndVerifyClientCert (or VerifyClientCertIfGiven) to verify against it"
    );
}

#[test]
fn client_allowed_sans_needs_a_required_certificate() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal(&tls_with(
            "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n  \
             client_allowed_sans: [client.example]\n"
        )),
        "tls_server_config.client_allowed_sans: needs client_auth_type \
         RequireAndVerifyClientCert (and client_ca_file): VerifyClientCertIfGiven lets a \
         client connect without a certificate, leaving no name to check"
    );
    // Unverified, the names are whatever the client wrote into a certificate it made.
    assert_eq!(
        fixture.refusal(&tls_with(
            "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [client.example]\n"
        )),
        "tls_server_config.client_allowed_sans: needs client_auth_type \
         RequireAndVerifyClientCert (and client_ca_file): RequireAnyClientCert takes any \
         certificate unverified, so a client can write an allowed name into a certificate it \
         makes itself"
    );
    assert_eq!(
        fixture.refusal(&tls_with(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
             client_allowed_sans: []\n"
        )),
        "tls_server_config.client_allowed_sans: an empty list would refuse every client: name \
         the allowed DNS names, IP addresses, e-mail addresses or URIs, or remove the key"
    );
}

#[test]
fn a_missing_cert_or_key() {
    let fixture = Fixture::new();
    // As in the toolkit, an empty file name counts as none.
    assert_eq!(
        fixture.refusal("tls_server_config:\n  cert_file: \"\"\n  key_file: server.key\n"),
        "tls_server_config.cert_file: missing: TLS needs cert_file and key_file (or inline cert \
         and key); set one of cert_file or cert"
    );
    assert_eq!(
        fixture.refusal("tls_server_config:\n  cert_file: server.crt\n"),
        "tls_server_config.key_file: missing: TLS needs cert_file and key_file (or inline cert \
         and key); set one of key_file or key"
    );
    // Any TLS key turns TLS on, and then the certificate is needed.
    assert_eq!(
        fixture.refusal("tls_server_config:\n  min_version: TLS13\n"),
        "tls_server_config.cert_file: missing: TLS needs cert_file and key_file (or inline cert \
         and key); set one of cert_file or cert"
    );
    assert_eq!(
        fixture.refusal(&tls_with("  cert: inline\n")),
        "tls_server_config.cert: set either cert_file or cert, not both"
    );
}

#[test]
fn an_unreadable_cert_file() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal("tls_server_config:\n  cert_file: nowhere.crt\n  key_file: server.key\n"),
        format!(
            "tls_server_config.cert_file: cannot read {}: No such file or directory (os error 2)",
            fixture.path("nowhere.crt").display()
        )
    );
}

#[test]
fn a_cert_file_without_a_certificate() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal("tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n"),
        "tls_server_config.cert_file: no certificate in it (expected PEM CERTIFICATE blocks)"
    );
    assert_eq!(
        fixture.refusal("tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n"),
        "tls_server_config.key_file: no private key in it (expected a PEM PRIVATE KEY, RSA \
         PRIVATE KEY or EC PRIVATE KEY)"
    );
}

#[test]
fn a_key_that_does_not_match_the_cert() {
    assert_eq!(
        Fixture::new()
            .refusal("tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n"),
        "tls_server_config.key_file: the key does not match the certificate of \
         tls_server_config.cert_file"
    );
}

/// A name with a colon could never log in (the header's first colon ends the name): refused
/// at load, not left to fail every login.
#[test]
fn a_user_name_with_a_colon() {
    let fixture = Fixture::new();
    let refusal = fixture.refusal(&format!(
        "basic_auth_users:\n  'site:berlin': '{}'\n",
        hash("pw")
    ));
    assert!(
        refusal.starts_with("basic_auth_users.site:berlin: a user name cannot hold a colon"),
        "{refusal}"
    );
}

#[test]
fn a_bad_bcrypt_hash() {
    let fixture = Fixture::new();
    let want = "expected a bcrypt hash: $2a$, $2b$ or $2y$, a cost of 4 to 31, 60 characters \
                (htpasswd -nBC 10 \"\" | tr -d ':\\n' makes one)";
    assert_eq!(
        fixture.refusal("basic_auth_users:\n  john: doe\n"),
        format!("basic_auth_users.john: not a bcrypt hash ({want})")
    );
    let x = hash("pw").replacen("$2b$", "$2x$", 1);
    assert_eq!(
        fixture.refusal(&format!("basic_auth_users:\n  john: '{x}'\n")),
        format!("basic_auth_users.john: not a bcrypt hash ({want})")
    );
    let short = &hash("pw")[..50];
    assert_eq!(
        fixture.refusal(&format!("basic_auth_users:\n  john: '{short}'\n")),
        format!(
            "basic_auth_users.john: not a valid bcrypt hash: Invalid hash: the hash format is \
             malformed; expected 60 ASCII bytes ({want})"
        )
    );
    // The whole line `htpasswd -nB john` prints, pasted as the value.
    let line = format!("john:{}", hash("pw"));
    assert_eq!(
        fixture.refusal(&format!("basic_auth_users:\n  john: '{line}'\n")),
        format!(
            "basic_auth_users.john: not a bcrypt hash: it starts with \"john:\", the user name \
             htpasswd prints before the hash: keep only what follows the colon ({want})"
        )
    );
    // htpasswd's default (MD5) and its other kinds.
    for (value, kind) in [
        (
            "$apr1$Zb2x1b8N$2Eq3M0eS4z0yXHcX0nV2v/",
            "an Apache MD5 hash",
        ),
        ("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "a SHA-1 hash"),
    ] {
        assert_eq!(
            fixture.refusal(&format!("basic_auth_users:\n  john: '{value}'\n")),
            format!(
                "basic_auth_users.john: not a bcrypt hash: this is {kind} (htpasswd makes one \
                 without -B); only bcrypt is accepted ({want})"
            )
        );
    }
    assert_eq!(
        fixture.refusal("basic_auth_users:\n  john: 12\n"),
        "basic_auth_users.john: expected a bcrypt hash, found a number"
    );
}

#[test]
fn a_header_that_cannot_be_set() {
    assert_eq!(
        Fixture::new().refusal("http_server_config:\n  headers:\n    Content-Type: foo\n"),
        "http_server_config.headers.Content-Type: this header cannot be set (accepted: \
         Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, X-XSS-Protection, \
         Strict-Transport-Security)"
    );
}

#[test]
fn a_header_value_outside_its_list() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal("http_server_config:\n  headers:\n    X-Frame-Options: allow\n"),
        "http_server_config.headers.X-Frame-Options: \"allow\" is not accepted (accepted: deny, sameorigin)"
    );
    assert_eq!(
        fixture.refusal("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n"),
        "http_server_config.headers.X-Content-Type-Options: \"sniff\" is not accepted (accepted: nosniff)"
    );
    assert_eq!(
        fixture
            .refusal("http_server_config:\n  headers:\n    Content-Security-Policy: \"a\\nb\"\n"),
        "http_server_config.headers.Content-Security-Policy: not a valid header value (visible \
         ASCII characters, spaces and tabs only)"
    );
}

#[test]
fn a_missing_file() {
    let fixture = Fixture::new();
    let path = fixture.path("absent.yml");
    assert_eq!(
        WebConfig::load(&path).unwrap_err().to_string(),
        format!(
            "web config {0}: (file): cannot read {0}: No such file or directory (os error 2)",
            path.display()
        )
    );
}

// ---- TLS behaviour, in memory ----

/// A client trusting the fixture's server certificate, offering `versions` (all when `None`)
/// and presenting `client` (certificate PEM, key PEM) when given.
fn client_config(
    fixture: &Fixture,
    versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
    client: Option<(&str, &str)>,
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(fixture.server_cert.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions.unwrap_or(rustls::ALL_VERSIONS))
        .unwrap()
        .with_root_certificates(roots);
    match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    }
}

/// Runs a handshake between `server` and `client` in memory, to `localhost`.
fn handshake(
    server: &Arc<rustls::ServerConfig>,
    client: rustls::ClientConfig,
) -> Result<(), rustls::Error> {
    let mut client =
        rustls::ClientConnection::new(Arc::new(client), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut server = rustls::ServerConnection::new(server.clone()).unwrap();
    for _ in 0..20 {
        let mut buffer = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buffer).unwrap();
        }
        let mut slice = buffer.as_slice();
        while !slice.is_empty() {
            server.read_tls(&mut slice).unwrap();
        }
        let server_state = server.process_new_packets();
        let mut buffer = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buffer).unwrap();
        }
        server_state?;
        let mut slice = buffer.as_slice();
        while !slice.is_empty() {
            client.read_tls(&mut slice).unwrap();
        }
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("the handshake did not finish");
}

#[test]
fn min_version_tls13_refuses_a_tls12_client() {
    let fixture = Fixture::new();
    let tls = fixture
        .load(&tls_with("  min_version: TLS13\n"))
        .unwrap()
        .tls
        .unwrap();
    let tls12 = client_config(&fixture, Some(&[&rustls::version::TLS12]), None);
    assert!(handshake(&tls, tls12).is_err());
    let tls13 = client_config(&fixture, Some(&[&rustls::version::TLS13]), None);
    handshake(&tls, tls13).unwrap();
}

#[test]
fn require_and_verify_client_cert() {
    let fixture = Fixture::new();
    let tls = fixture
        .load(&tls_with(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
        ))
        .unwrap()
        .tls
        .unwrap();
    let client = Some((fixture.client_cert.as_str(), fixture.client_key.as_str()));
    handshake(&tls, client_config(&fixture, None, client)).unwrap();
    assert!(handshake(&tls, client_config(&fixture, None, None)).is_err());
    // A certificate the CA did not sign.
    let (stranger, stranger_key) = server_pair(&["client.example"]);
    let stranger = Some((stranger.as_str(), stranger_key.as_str()));
    assert!(handshake(&tls, client_config(&fixture, None, stranger)).is_err());
}

#[test]
fn verify_client_cert_if_given_lets_clients_without_one_in() {
    let fixture = Fixture::new();
    let yaml = format!(
        "{TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca: |\n{}",
        fixture
            .client_ca
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let tls = fixture.load(&yaml).unwrap().tls.unwrap();
    handshake(&tls, client_config(&fixture, None, None)).unwrap();
    let client = Some((fixture.client_cert.as_str(), fixture.client_key.as_str()));
    handshake(&tls, client_config(&fixture, None, client)).unwrap();
    let (stranger, stranger_key) = server_pair(&["client.example"]);
    let stranger = Some((stranger.as_str(), stranger_key.as_str()));
    assert!(handshake(&tls, client_config(&fixture, None, stranger)).is_err());
}

#[test]
fn require_any_client_cert_takes_an_unverified_certificate() {
    let fixture = Fixture::new();
    let tls = fixture
        .load(&tls_with("  client_auth_type: RequireAnyClientCert\n"))
        .unwrap()
        .tls
        .unwrap();
    let (stranger, stranger_key) = server_pair(&["anyone"]);
    let stranger = Some((stranger.as_str(), stranger_key.as_str()));
    handshake(&tls, client_config(&fixture, None, stranger)).unwrap();
    assert!(handshake(&tls, client_config(&fixture, None, None)).is_err());
    // RequestClientCert asks but does not require.
    let tls = fixture
        .load(&tls_with("  client_auth_type: RequestClientCert\n"))
        .unwrap()
        .tls
        .unwrap();
    handshake(&tls, client_config(&fixture, None, None)).unwrap();
}

#[test]
fn client_allowed_sans_checks_the_names() {
    let fixture = Fixture::new();
    let load = |sans: &str| {
        fixture
            .load(&tls_with(&format!(
                "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
                 client_allowed_sans: {sans}\n"
            )))
            .unwrap()
            .tls
            .unwrap()
    };
    let client = || {
        client_config(
            &fixture,
            None,
            Some((fixture.client_cert.as_str(), fixture.client_key.as_str())),
        )
    };
    handshake(&load("[client.example]"), client()).unwrap();
    handshake(&load("[other, ops@example.com]"), client()).unwrap();
    assert!(handshake(&load("[bad]"), client()).is_err());
    // Exact match only: no wildcard or case folding.
    assert!(handshake(&load("[Client.Example]"), client()).is_err());
}

#[test]
fn subject_alt_names_lists_every_kind() {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
    params.subject_alt_names.extend([
        SanType::IpAddress("192.0.2.7".parse().unwrap()),
        SanType::IpAddress("2001:db8::1".parse().unwrap()),
        SanType::Rfc822Name("ops@example.com".try_into().unwrap()),
        SanType::URI("spiffe://example/agent".try_into().unwrap()),
    ]);
    let cert = params.self_signed(&key).unwrap();
    assert_eq!(
        super::tls::subject_alt_names(cert.der()).unwrap(),
        [
            "a.example",
            "192.0.2.7",
            "2001:db8::1",
            "ops@example.com",
            "spiffe://example/agent"
        ]
    );
    assert_eq!(super::tls::subject_alt_names(b"not a certificate"), None);
}

// ---- basic authentication ----

fn users_of(pairs: &[(&str, &str)]) -> Arc<super::Users> {
    let fixture = Fixture::new();
    let mut yaml = "basic_auth_users:\n".to_owned();
    for (user, password) in pairs {
        yaml.push_str(&format!("  {user}: '{}'\n", hash(password)));
    }
    fixture.load(&yaml).unwrap().users
}

#[tokio::test]
async fn malformed_authorization_headers_are_denied() {
    let users = users_of(&[("alice", "secret")]);
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let headers: Vec<HeaderValue> = vec![
        HeaderValue::from_static("Bearer abc"),
        HeaderValue::from_static("Basic"),
        HeaderValue::from_static("Basic !!!not base64!!!"),
        HeaderValue::from_str(&format!("Basic {}", b64(b"alice"))).unwrap(),
        HeaderValue::from_str(&format!("Basic {}", b64(b"alice:\xff\xfe"))).unwrap(),
        HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap(),
        HeaderValue::from_static(""),
        HeaderValue::from_str(&format!("Basic {}", "A".repeat(10_000))).unwrap(),
    ];
    for header in &headers {
        assert_eq!(users.check(Some(header)).await, Check::Denied, "{header:?}");
    }
    // The scheme is case-insensitive.
    let encoded = b64(b"alice:secret");
    let lower = HeaderValue::from_str(&format!("basic {encoded}")).unwrap();
    assert_eq!(users.check(Some(&lower)).await, Check::Allowed);
    // A password may contain colons: the user name ends at the first.
    let users = users_of(&[("bob", "a:b")]);
    assert_eq!(
        users.check(Some(&basic("bob", "a:b"))).await,
        Check::Allowed
    );
}

#[tokio::test]
async fn successes_are_cached_failures_are_not() {
    let users = users_of(&[("alice", "secret")]);
    assert_eq!(
        users.check(Some(&basic("alice", "wrong"))).await,
        Check::Denied
    );
    assert_eq!(test_support::cache_len(&users), 0);
    assert_eq!(
        users.check(Some(&basic("alice", "secret"))).await,
        Check::Allowed
    );
    assert!(test_support::cached(&users, "alice", "secret"));
    assert_eq!(test_support::cache_len(&users), 1);
    // A cached success answers without a turn, even when all turns are taken.
    let held = test_support::hold_all_turns().await;
    assert_eq!(
        users.check(Some(&basic("alice", "secret"))).await,
        Check::Allowed
    );
    drop(held);
}

#[test]
fn the_cache_is_bounded() {
    let users = users_of(&[("alice", "secret")]);
    test_support::fill_cache(&users, test_support::cache_bound() + 10);
    assert_eq!(test_support::cache_len(&users), test_support::cache_bound());
}

#[tokio::test(start_paused = true)]
async fn waiting_too_long_for_a_turn_is_busy() {
    let users = users_of(&[("alice", "secret")]);
    assert_eq!(test_support::concurrent_checks(), 2);
    let held = test_support::hold_all_turns().await;
    assert_eq!(
        users.check(Some(&basic("alice", "secret"))).await,
        Check::Busy
    );
    // Unknown users wait for a turn too.
    assert_eq!(users.check(Some(&basic("mallory", "x"))).await, Check::Busy);
    drop(held);
}

/// Users whose hashes have different costs: every check, of a known name or an unknown one,
/// verifies one hash at each cost (its own among them when the name is known), so the time a
/// wrong password takes does not tell a cost-4 user from a name that does not exist.
#[tokio::test]
async fn every_check_costs_the_same_whatever_the_name_and_its_hashs_cost() {
    let fixture = Fixture::new();
    let low = bcrypt::hash("a", 4).unwrap();
    let high = bcrypt::hash("b", 5).unwrap();
    let also_low = bcrypt::hash("c", 4).unwrap();
    let users = fixture
        .load(&format!(
            "basic_auth_users:\n  a: '{low}'\n  b: '{high}'\n  c: '{also_low}'\n"
        ))
        .unwrap()
        .users;
    for (name, known) in [("a", true), ("b", true), ("c", true), ("mallory", false)] {
        assert_eq!(
            test_support::rounds_for(&users, name),
            (vec![4, 5], known),
            "{name}"
        );
    }
    assert_eq!(users.check(Some(&basic("a", "a"))).await, Check::Allowed);
    assert_eq!(users.check(Some(&basic("b", "b"))).await, Check::Allowed);
    assert_eq!(users.check(Some(&basic("a", "b"))).await, Check::Denied);
    assert_eq!(users.check(Some(&basic("b", "a"))).await, Check::Denied);
    assert_eq!(
        users.check(Some(&basic("mallory", "a"))).await,
        Check::Denied
    );
    let same = users_of(&[("alice", "secret"), ("bob", "other")]);
    assert_eq!(test_support::rounds_for(&same, "mallory").0.len(), 1);
}

#[test]
fn user_names_compare_exactly() {
    use super::auth::test_support::same;
    assert!(same(b"alice", b"alice"));
    assert!(!same(b"alice", b"alicE"));
    assert!(!same(b"alice", b"alice2"));
    assert!(!same(b"alice2", b"alice"));
    assert!(!same(b"", b"a"));
    assert!(same(b"", b""));
}

// ---- the re-reading source ----

#[test]
fn the_source_reuses_keeps_the_last_good_and_picks_up_rotation() {
    let fixture = Fixture::new();
    let path = fixture.path("web.yml");
    std::fs::write(&path, TLS).unwrap();
    let source = WebConfigSource::open(path.clone()).unwrap();
    let first = source.current();
    // Nothing changed: the same Arc.
    assert!(Arc::ptr_eq(&first, &source.current()));

    // A broken file: the last good one stays.
    std::fs::write(&path, "tls_server_config:\n  nonsense: 1\n").unwrap();
    assert!(Arc::ptr_eq(&first, &source.current()));
    assert!(Arc::ptr_eq(&first, &source.current()));

    // Fixed again, with a rotated certificate: picked up.
    std::fs::write(&path, TLS).unwrap();
    let (cert, key) = server_pair(&["localhost"]);
    std::fs::write(fixture.path("server.crt"), &cert).unwrap();
    std::fs::write(fixture.path("server.key"), &key).unwrap();
    let rotated = source.current();
    assert!(!Arc::ptr_eq(&first, &rotated));
    let served = served_certificate(rotated.tls.as_ref().unwrap());
    assert_eq!(
        served,
        CertificateDer::from_pem_slice(cert.as_bytes())
            .unwrap()
            .as_ref()
    );

    // Only the key rotated, to one that does not match: the last good one stays.
    let (_, other_key) = server_pair(&["localhost"]);
    std::fs::write(fixture.path("server.key"), other_key).unwrap();
    assert!(Arc::ptr_eq(&rotated, &source.current()));
    // The matching key back: the files are as the last good configuration read them.
    std::fs::write(fixture.path("server.key"), &key).unwrap();
    assert!(Arc::ptr_eq(&rotated, &source.current()));
    // A new pair in place: a new configuration serving the new certificate.
    let (cert2, key2) = server_pair(&["localhost"]);
    std::fs::write(fixture.path("server.key"), &key2).unwrap();
    std::fs::write(fixture.path("server.crt"), &cert2).unwrap();
    let again = source.current();
    assert!(!Arc::ptr_eq(&rotated, &again));
    assert_eq!(
        served_certificate(again.tls.as_ref().unwrap()),
        CertificateDer::from_pem_slice(cert2.as_bytes())
            .unwrap()
            .as_ref()
    );
}

#[test]
fn the_source_does_not_turn_tls_on_or_off() {
    let fixture = Fixture::new();
    let path = fixture.path("web.yml");
    let users = format!("basic_auth_users:\n  alice: '{}'\n", hash("secret"));
    std::fs::write(&path, format!("{TLS}{users}")).unwrap();
    let source = WebConfigSource::open(path.clone()).unwrap();
    let first = source.current();
    // Dropping the TLS section is refused: the last good one, with TLS, stays.
    std::fs::write(&path, &users).unwrap();
    let now = source.current();
    assert!(Arc::ptr_eq(&first, &now));
    assert!(now.tls.is_some());

    std::fs::write(&path, &users).unwrap();
    let plain = WebConfigSource::open(path.clone()).unwrap();
    std::fs::write(&path, format!("{TLS}{users}")).unwrap();
    assert!(plain.current().tls.is_none());
    // Other changes still apply.
    std::fs::write(
        &path,
        format!("basic_auth_users:\n  bob: '{}'\n", hash("b")),
    )
    .unwrap();
    let bob = plain.current();
    assert_eq!(bob.users.len(), 1);
    assert!(!Arc::ptr_eq(&bob, &first));
    // Removing every user (authentication off) is refused like TLS off: the users stay.
    for no_users in ["basic_auth_users:\n", "basic_auth_users: {}\n", ""] {
        std::fs::write(&path, no_users).unwrap();
        assert!(Arc::ptr_eq(&plain.current(), &bob), "{no_users:?}");
    }
}

#[test]
fn the_source_refuses_to_open_a_bad_file() {
    let fixture = Fixture::new();
    let path = fixture.path("web.yml");
    std::fs::write(&path, "tls_server_config:\n  min_version: TLS10\n").unwrap();
    assert!(WebConfigSource::open(path).is_err());
}

/// The end-entity certificate a server configuration presents, from an in-memory handshake.
fn served_certificate(server: &Arc<rustls::ServerConfig>) -> Vec<u8> {
    let fixture_free_client = {
        #[derive(Debug)]
        struct TakeAny(Arc<rustls::crypto::CryptoProvider>);
        impl rustls::client::danger::ServerCertVerifier for TakeAny {
            fn verify_server_cert(
                &self,
                _: &CertificateDer<'_>,
                _: &[CertificateDer<'_>],
                _: &ServerName<'_>,
                _: &[u8],
                _: rustls::pki_types::UnixTime,
            ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            fn verify_tls12_signature(
                &self,
                m: &[u8],
                c: &CertificateDer<'_>,
                d: &rustls::DigitallySignedStruct,
            ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error>
            {
                rustls::crypto::verify_tls12_signature(
                    m,
                    c,
                    d,
                    &self.0.signature_verification_algorithms,
                )
            }
            fn verify_tls13_signature(
                &self,
                m: &[u8],
                c: &CertificateDer<'_>,
                d: &rustls::DigitallySignedStruct,
            ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error>
            {
                rustls::crypto::verify_tls13_signature(
                    m,
                    c,
                    d,
                    &self.0.signature_verification_algorithms,
                )
            }
            fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
                self.0.signature_verification_algorithms.supported_schemes()
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TakeAny(provider)))
            .with_no_client_auth()
    };
    let mut client = rustls::ClientConnection::new(
        Arc::new(fixture_free_client),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut server_conn = rustls::ServerConnection::new(server.clone()).unwrap();
    for _ in 0..20 {
        let mut buffer = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buffer).unwrap();
        }
        let mut slice = buffer.as_slice();
        while !slice.is_empty() {
            server_conn.read_tls(&mut slice).unwrap();
        }
        server_conn.process_new_packets().unwrap();
        let mut buffer = Vec::new();
        while server_conn.wants_write() {
            server_conn.write_tls(&mut buffer).unwrap();
        }
        let mut slice = buffer.as_slice();
        while !slice.is_empty() {
            client.read_tls(&mut slice).unwrap();
        }
        client.process_new_packets().unwrap();
        if !client.is_handshaking() {
            break;
        }
    }
    client.peer_certificates().unwrap()[0].as_ref().to_vec()
}

// ---- no input panics ----

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any text, YAML-like or not, is parsed or refused; never a panic.
    #[test]
    fn any_text_is_parsed_or_refused(
        text in "(tls_server_config|http_server_config|basic_auth_users|headers|cert_file|min_version|[a-z:_ \\[\\]{}\n\t-]){0,40}"
    ) {
        let dir = tempfile::tempdir().unwrap();
        let _ = WebConfig::parse(&text, dir.path());
    }

    /// Any Authorization header bytes are Denied (no user matches), never a panic.
    #[test]
    fn any_authorization_header_is_denied(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
        let Ok(header) = HeaderValue::from_bytes(&bytes) else { return Ok(()); };
        let users = super::Users::new(Vec::new()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        proptest::prop_assert_eq!(runtime.block_on(users.check(Some(&header))), Check::Denied);
    }
}

#[test]
fn a_cipher_suite_of_a_version_the_server_never_speaks() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.refusal(&tls_with(
            "  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"
        )),
        "tls_server_config.cipher_suites: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 is a TLS 1.2 \
         suite, which min_version TLS13 never uses: drop it (TLS 1.3 suites are \
         TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256), or set \
         min_version: TLS12"
    );
    assert_eq!(
        fixture.refusal(&tls_with(
            "  max_version: TLS12\n  cipher_suites: [TLS_AES_128_GCM_SHA256, \
             TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"
        )),
        "tls_server_config.cipher_suites: TLS_AES_128_GCM_SHA256 is a TLS 1.3 suite, which \
         max_version TLS12 never uses: drop it, or drop max_version"
    );
    // Each version's own suites are fine.
    fixture
        .load(&tls_with(
            "  min_version: TLS13\n  cipher_suites: [TLS_AES_256_GCM_SHA384]\n",
        ))
        .unwrap();
}

#[test]
fn an_encrypted_key_file() {
    let fixture = Fixture::new();
    std::fs::write(
        fixture.path("encrypted.key"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let refusal =
        fixture.refusal("tls_server_config:\n  cert_file: server.crt\n  key_file: encrypted.key\n");
    assert!(
        refusal.starts_with("tls_server_config.key_file: the key is encrypted with a passphrase")
            && refusal.contains("openssl pkey"),
        "{refusal}"
    );
}
