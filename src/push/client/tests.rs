//! The remote_write client against loopback receivers: TLS, auth, retries and refusals.

use super::*;

/// A receiver over TLS with a private CA that requires a client certificate: the push
/// with the CA file, the client certificate and basic auth is accepted, with the
/// protocol's headers; without the client certificate it is retried, not rejected.
#[tokio::test]
async fn https_with_a_private_ca_a_client_certificate_and_basic_auth() {
    use super::super::config::{ClientIdentity, Endpoint};
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let mut authority = CertificateParams::new(Vec::<String>::new()).unwrap();
    authority.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(authority, KeyPair::generate().unwrap()).unwrap();
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        (params.signed_by(&key, &ca).unwrap(), key)
    };
    let (server_cert, server_key) = leaf("127.0.0.1");
    let (client_cert, client_key) = leaf("site-berlin");
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("client.pem"), client_cert.pem()).unwrap();
    std::fs::write(path("client.key"), client_key.serialize_pem()).unwrap();
    std::fs::write(path("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(path("password"), "s3cret\n").unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (heard, mut hear) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, heard) = (acceptor.clone(), heard.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let _ = heard.send(request.headers().clone());
                    async {
                        let mut answer = hyper::Response::new(Full::new(Bytes::new()));
                        *answer.status_mut() = StatusCode::NO_CONTENT;
                        Ok::<_, std::convert::Infallible>(answer)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });

    let config = RemoteWriteConfig {
        endpoint: Endpoint::parse(&format!("https://127.0.0.1:{port}/api/v1/write")).unwrap(),
        labels: Vec::new(),
        auth: Auth::Basic {
            username: "berlin".into(),
            password_file: path("password"),
        },
        ca_file: Some(path("ca.pem")),
        identity: Some(ClientIdentity {
            cert_file: path("client.pem"),
            key_file: path("client.key"),
        }),
        timeout: Duration::from_secs(10),
    };
    let client = Client::new(config.clone()).unwrap();
    assert_eq!(
        client.push(Bytes::from_static(b"body")).await,
        Answer::Accepted
    );
    let headers = hear.recv().await.unwrap();
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("authorization"), "Basic YmVybGluOnMzY3JldA==");
    assert_eq!(header("content-encoding"), "snappy");
    assert_eq!(header("content-type"), "application/x-protobuf");
    assert_eq!(header("x-prometheus-remote-write-version"), "0.1.0");
    assert_eq!(header("user-agent"), USER_AGENT);
    // The password file is read again for each push: a rotated password applies at once.
    std::fs::write(path("password"), "n3w").unwrap();
    assert_eq!(
        client.push(Bytes::from_static(b"body")).await,
        Answer::Accepted
    );
    let headers = hear.recv().await.unwrap();
    assert_eq!(
        headers.get("authorization").unwrap(),
        "Basic YmVybGluOm4zdw=="
    );

    let anonymous = Client::new(RemoteWriteConfig {
        identity: None,
        ..config.clone()
    })
    .unwrap();
    match anonymous.push(Bytes::from_static(b"body")).await {
        Answer::Retry { why, .. } => {
            assert!(why.contains("--remote-write.tls-cert-file"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // Without the private CA the server's certificate is not trusted.
    let untrusting = Client::new(RemoteWriteConfig {
        ca_file: None,
        ..config.clone()
    })
    .unwrap();
    match untrusting.push(Bytes::from_static(b"body")).await {
        Answer::Retry { why, .. } => {
            assert!(why.contains("TLS"), "{why}");
            assert!(why.contains("--remote-write.tls-ca-file"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // A key that is not the certificate's is refused at start, naming both flags.
    let err = Client::new(RemoteWriteConfig {
        identity: Some(ClientIdentity {
            cert_file: path("client.pem"),
            key_file: path("server.key"),
        }),
        ..config.clone()
    })
    .unwrap_err();
    assert!(
        err.contains("--remote-write.tls-key-file") && err.contains("does not match"),
        "{err}"
    );
    // An encrypted key says so (rustls said "no items found").
    std::fs::write(
        path("encrypted.key"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = Client::new(RemoteWriteConfig {
        identity: Some(ClientIdentity {
            cert_file: path("client.pem"),
            key_file: path("encrypted.key"),
        }),
        ..config.clone()
    })
    .unwrap_err();
    assert!(
        err.contains("--remote-write.tls-key-file") && err.contains("encrypted"),
        "{err}"
    );
    // An empty password file is refused at start, as a push would refuse it.
    std::fs::write(path("password"), "\n").unwrap();
    let err = Client::new(config.clone()).unwrap_err();
    assert!(
        err.contains("--remote-write.basic-auth-password-file") && err.contains("empty"),
        "{err}"
    );
}

#[test]
fn retry_after_reads_seconds_and_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
    let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
    assert_eq!(retry_after(&later, now), Some(Duration::from_secs(90)));
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
    assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
    assert_eq!(retry_after("soon", now), None);
}

#[test]
fn plain_http_to_an_https_port_is_told_apart_from_a_refused_sample() {
    for body in [
        "Client sent an HTTP request to an HTTPS server.\n",
        "<html><head><title>400 The plain HTTP request was sent to HTTPS port</title>",
        "This port speaks HTTPS: use https:// (the server's --web.config.file has \
         tls_server_config).",
    ] {
        let hint = refuses_every_request(StatusCode::BAD_REQUEST, body).unwrap_or_default();
        assert!(hint.contains("https://"), "{body}: {hint}");
    }
    // VictoriaMetrics's wrong path.
    let hint = refuses_every_request(
        StatusCode::BAD_REQUEST,
        "remoteAddr: \"127.0.0.1:5\"; requestURI: /api/v1/writ; unsupported path \
         requested: \"/api/v1/writ\"",
    )
    .unwrap_or_default();
    assert!(hint.contains("--remote-write.url"), "{hint}");
    // A refused sample is the samples' fault.
    assert_eq!(
        refuses_every_request(StatusCode::BAD_REQUEST, "out of bounds"),
        None
    );
}

/// An `http://` URL for a TLS receiver: every answer is a 400, and the samples stay
/// queued (retried) with the fix in the reason, rather than being dropped as refused.
#[tokio::test]
async fn plain_http_to_an_https_port_is_retried_with_the_fix() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // What Go's net/http writes to a client that speaks plain HTTP to its TLS port.
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buffer = [0; 1024];
        let _ = tcp.read(&mut buffer).await;
        tcp.write_all(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )
        .await
        .unwrap();
    });
    let client = Client::new(RemoteWriteConfig {
        endpoint: super::super::config::Endpoint::parse(&format!(
            "http://127.0.0.1:{port}/api/v1/write"
        ))
        .unwrap(),
        labels: Vec::new(),
        auth: Auth::None,
        ca_file: None,
        identity: None,
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    match client.push(Bytes::from_static(b"body")).await {
        Answer::Retry { why, .. } => assert!(why.contains("https://"), "{why}"),
        other => panic!("dropped as refused: {other:?}"),
    }
    server.await.unwrap();
}

#[test]
fn answers_that_refuse_every_push_name_the_flag_to_fix() {
    for (status, flag) in [
        (
            StatusCode::UNAUTHORIZED,
            "--remote-write.basic-auth-password-file",
        ),
        (StatusCode::FORBIDDEN, "--remote-write.bearer-token-file"),
        (StatusCode::NOT_FOUND, "--remote-write.url"),
        (StatusCode::METHOD_NOT_ALLOWED, "--remote-write.url"),
        (StatusCode::MOVED_PERMANENTLY, "--remote-write.url"),
        (
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "--remote-write.url",
        ),
    ] {
        let hint = status_hint(status).unwrap_or_default();
        assert!(hint.contains(flag), "{status}: {hint}");
    }
    // A refused sample or a receiver's own trouble: its body says it.
    assert_eq!(status_hint(StatusCode::BAD_REQUEST), None);
    // A sample too old for the receiver's window: the setting that takes it.
    for body in ["out of bounds", "too old sample", "out of order sample"] {
        let hint = refusal_hint(StatusCode::BAD_REQUEST, body).unwrap_or_default();
        assert!(hint.contains("out_of_order_time_window"), "{body}: {hint}");
    }
    assert_eq!(
        refusal_hint(StatusCode::BAD_REQUEST, "invalid label name"),
        None
    );
    assert_eq!(status_hint(StatusCode::SERVICE_UNAVAILABLE), None);
}

#[test]
fn statuses_are_retried_or_rejected() {
    let why = || "x".to_owned();
    for status in [
        StatusCode::BAD_REQUEST,
        StatusCode::CONFLICT,
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNPROCESSABLE_ENTITY,
    ] {
        assert!(
            matches!(classify(status, None, "", why()), Answer::Rejected { .. }),
            "{status}"
        );
    }
    // A wrong password or URL refuses every request: retried, never dropped.
    for status in [
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
        StatusCode::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::MOVED_PERMANENTLY,
    ] {
        assert!(
            matches!(classify(status, None, "", why()), Answer::Retry { .. }),
            "{status}"
        );
    }
}

#[test]
fn prometheus_s_500_for_a_too_old_sample_is_a_refusal() {
    let why = || "x".to_owned();
    let old = classify(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        "too old sample",
        why(),
    );
    assert!(
        matches!(old, Answer::Rejected { status: 500, .. }),
        "{old:?}"
    );
    // Any other 500 is the receiver's trouble: tried again.
    for body in ["", "too old sample?", "out of memory"] {
        assert!(matches!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, None, body, why()),
            Answer::Retry { .. }
        ));
    }
    assert!(matches!(
        classify(StatusCode::BAD_GATEWAY, None, "too old sample", why()),
        Answer::Retry { .. }
    ));
}

#[test]
fn a_bearer_token_is_read_for_each_push() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "first\n").unwrap();
    let client = Client::new(RemoteWriteConfig {
        endpoint: super::super::config::Endpoint::parse("http://127.0.0.1:9/").unwrap(),
        labels: Vec::new(),
        auth: Auth::Bearer {
            token_file: token_file.clone(),
        },
        ca_file: None,
        identity: None,
        timeout: Duration::from_secs(1),
    })
    .unwrap();
    assert_eq!(
        client.authorization().unwrap().as_deref(),
        Some("Bearer first")
    );
    std::fs::write(&token_file, "second").unwrap();
    assert_eq!(
        client.authorization().unwrap().as_deref(),
        Some("Bearer second")
    );
    std::fs::remove_file(&token_file).unwrap();
    let err = client.authorization().unwrap_err();
    assert!(err.contains("--remote-write.bearer-token-file"), "{err}");
}

/// A receiver (or a proxy before it) whose error page echoes the request's headers: the
/// answer's message, which is logged, holds neither the password or token nor the header.
#[tokio::test]
async fn a_receiver_echoing_the_credentials_does_not_get_them_logged() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let Ok(read) = socket.read(&mut chunk).await else {
                    break;
                };
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&chunk[..read]);
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let echoed: String = text
                .lines()
                .filter(|line| line.to_ascii_lowercase().starts_with("authorization"))
                .collect();
            let body = format!("bad request; you sent {echoed}; token {}", "t0ken-s3cret");
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "t0ken-s3cret\n").unwrap();
    let url = format!("http://{address}/api/v1/write");
    for auth in [
        Auth::Bearer {
            token_file: secret_file.clone(),
        },
        Auth::Basic {
            username: "site-berlin".into(),
            password_file: secret_file.clone(),
        },
    ] {
        let client = Client::new(RemoteWriteConfig {
            endpoint: super::super::config::Endpoint::parse(&url).unwrap(),
            labels: Vec::new(),
            auth,
            ca_file: None,
            identity: None,
            timeout: Duration::from_secs(20),
        })
        .unwrap();
        let header = client.authorization().unwrap().unwrap();
        let encoded = header.split_once(' ').unwrap().1.to_owned();
        let Answer::Rejected { status: 400, why } = client.push(Bytes::from_static(b"x")).await
        else {
            panic!("a 400 is a rejection");
        };
        assert!(why.contains("you sent"), "{why}");
        for secret in ["t0ken-s3cret", encoded.as_str()] {
            assert!(!why.contains(secret), "{secret} in {why}");
        }
    }
}

#[test]
fn secrets_are_trimmed_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "abc\n").unwrap();
    assert_eq!(read_secret("--f", &file).unwrap(), "abc");
    std::fs::write(&file, "a\nb\n").unwrap();
    assert!(read_secret("--f", &file).unwrap_err().contains("control"));
    std::fs::write(&file, "\n").unwrap();
    assert!(read_secret("--f", &file).unwrap_err().contains("empty"));
    std::fs::write(&file, vec![b'a'; MAX_SECRET_BYTES as usize + 1]).unwrap();
    assert!(
        read_secret("--f", &file)
            .unwrap_err()
            .contains("larger than")
    );
    std::fs::write(&file, b"\xff\xfe\n").unwrap();
    assert!(read_secret("--f", &file).unwrap_err().contains("not UTF-8"));
}

/// A password, token or TLS file swapped for a FIFO (whose open would wait for a writer
/// for ever, on an async thread), a link to `/dev/zero` (endless, with no line break for
/// the PEM reader) or a huge file is an error at once, naming the flag: the push is
/// retried later instead of the pusher hanging or filling memory.
#[test]
fn fifos_devices_and_huge_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    let (done, outcome) = std::sync::mpsc::channel();
    let work = path.clone();
    std::thread::spawn(move || {
        let mut errors = Vec::new();
        for kind in ["fifo", "device", "huge"] {
            let _ = std::fs::remove_file(&work);
            match kind {
                "fifo" => {
                    let status = std::process::Command::new("mkfifo")
                        .arg(&work)
                        .status()
                        .unwrap();
                    assert!(status.success());
                }
                "device" => std::os::unix::fs::symlink("/dev/zero", &work).unwrap(),
                _ => std::fs::File::create(&work)
                    .unwrap()
                    .set_len(8 << 30)
                    .unwrap(),
            }
            errors.push(read_secret("--remote-write.bearer-token-file", &work).unwrap_err());
            errors.push(read_tls_file("--remote-write.tls-ca-file", &work).unwrap_err());
        }
        let _ = done.send(errors);
    });
    let errors = outcome
        .recv_timeout(Duration::from_secs(20))
        .expect("every read ends at once");
    assert_eq!(errors.len(), 6);
    for (n, error) in errors.iter().enumerate() {
        let want = if n < 4 {
            "not a regular file"
        } else {
            "larger than"
        };
        assert!(error.contains(want), "{n}: {error}");
        assert!(error.contains("--remote-write."), "{error}");
    }
}
