//! The remote_write client: one `POST` per push on a new HTTP/1.1 connection (TLS for
//! `https://`), everything from the DNS lookup to the end of the answer within
//! `--remote-write.timeout`, at most [`MAX_ANSWER_BYTES`] of the answer read. The credentials
//! and TLS files are read again for each push, so rotated ones apply without a restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use super::config::{Auth, MAX_SECRET_BYTES, MAX_TLS_FILE_BYTES, RemoteWriteConfig};

/// The most of an answer's body read (for the error message), in bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The most of an answer's body a log line shows, in bytes.
pub const LOGGED_ANSWER_BYTES: usize = 512;
/// The pusher's `User-Agent`.
pub const USER_AGENT: &str = concat!("internet-monitor/", env!("CARGO_PKG_VERSION"));
/// The protocol version header's value: remote write 1.0.
pub const PROTOCOL_VERSION: &str = "0.1.0";

/// What became of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx: the receiver has the samples.
    Accepted,
    /// Worth trying again later: a 5xx, a 429, a 3xx, a 401, 403, 404, 405, 407 or 408 (no
    /// request would be taken: a wrong password or URL), no connection, no answer in time, or
    /// a credentials or TLS file that cannot be read; `retry_after` when the receiver said.
    Retry {
        retry_after: Option<Duration>,
        why: String,
    },
    /// Another 4xx (400 above all): the receiver refuses what was sent, and will again.
    Rejected { status: u16, why: String },
}

/// Sends write requests to `--remote-write.url`.
#[derive(Clone, Debug)]
pub struct Client {
    config: Arc<RemoteWriteConfig>,
}

impl Client {
    /// The client for `config`; fails, saying which flag, when its TLS files do not make a
    /// TLS configuration (checked once here, read again at each push).
    pub fn new(config: RemoteWriteConfig) -> Result<Client, String> {
        let client = Client {
            config: Arc::new(config),
        };
        if client.config.endpoint.tls {
            client.tls()?;
        }
        // The password or token as a push reads it: an empty file fails here, not at each push.
        client.credentials()?;
        Ok(client)
    }

    /// The settings pushed with.
    pub fn config(&self) -> &RemoteWriteConfig {
        &self.config
    }

    /// POSTs `body` (a snappy-compressed `WriteRequest`) and says what became of it.
    pub async fn push(&self, body: Bytes) -> Answer {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.exchange(body)).await {
            Ok(answer) => answer,
            Err(_) => Answer::Retry {
                retry_after: None,
                why: format!(
                    "no answer within {} (--remote-write.timeout)",
                    humantime::format_duration(timeout)
                ),
            },
        }
    }

    async fn exchange(&self, body: Bytes) -> Answer {
        let retry = |why: String| Answer::Retry {
            retry_after: None,
            why,
        };
        let (authorization, secret) = match self.credentials() {
            Ok(Some((value, secret))) => (Some(value), Some(secret)),
            Ok(None) => (None, None),
            Err(why) => return retry(why),
        };
        // What the receiver says goes to the log: never with the credentials in it (a proxy's
        // error page may echo the request's headers).
        let secrets: Vec<String> = authorization.iter().chain(&secret).cloned().collect();
        scrubbed(self.exchange_with(body, authorization).await, &secrets)
    }

    async fn exchange_with(&self, body: Bytes, authorization: Option<String>) -> Answer {
        let retry = |why: String| Answer::Retry {
            retry_after: None,
            why,
        };
        let endpoint = &self.config.endpoint;
        let mut request = Request::post(endpoint.path_and_query.as_str())
            .header(header::HOST, endpoint.authority.as_str())
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "snappy")
            .header("X-Prometheus-Remote-Write-Version", PROTOCOL_VERSION)
            .header(header::CONTENT_LENGTH, body.len());
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = match request.body(Full::new(body)) {
            Ok(request) => request,
            Err(err) => return retry(format!("cannot make the request: {err}")),
        };
        let tcp = match self.connect().await {
            Ok(tcp) => tcp,
            Err(why) => return retry(why),
        };
        let answer = if endpoint.tls {
            let connector = match self.tls() {
                Ok(config) => tokio_rustls::TlsConnector::from(Arc::new(config)),
                Err(why) => return retry(why),
            };
            let name = match ServerName::try_from(endpoint.host.clone()) {
                Ok(name) => name,
                Err(err) => return retry(format!("bad host name {:?}: {err}", endpoint.host)),
            };
            match connector.connect(name, tcp).await {
                Ok(stream) => send(TokioIo::new(stream), request).await,
                Err(err) => return retry(handshake_error(&endpoint.host, &err)),
            }
        } else {
            send(TokioIo::new(tcp), request).await
        };
        match answer {
            Ok(answer) => answer,
            Err(why) => retry(why),
        }
    }

    /// A TCP connection to the first of the host's addresses that accepts.
    async fn connect(&self) -> Result<TcpStream, String> {
        let endpoint = &self.config.endpoint;
        let addresses: Vec<SocketAddr> =
            tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
                .await
                .map_err(|err| format!("cannot look {} up: {err}", endpoint.host))?
                .collect();
        let mut last = format!("no address found for {}", endpoint.host);
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(err) => last = format!("cannot connect to {address}: {err}"),
            }
        }
        Err(last)
    }

    /// The `Authorization` header's value, from the files as they are now.
    #[cfg(test)]
    fn authorization(&self) -> Result<Option<String>, String> {
        Ok(self.credentials()?.map(|(value, _)| value))
    }

    /// The `Authorization` header's value and the secret in it (the password or the token),
    /// from the files as they are now.
    fn credentials(&self) -> Result<Option<(String, String)>, String> {
        match &self.config.auth {
            Auth::None => Ok(None),
            Auth::Basic {
                username,
                password_file,
            } => {
                let password =
                    read_secret("--remote-write.basic-auth-password-file", password_file)?;
                let pair = format!("{username}:{password}");
                let value = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                );
                Ok(Some((value, password)))
            }
            Auth::Bearer { token_file } => {
                let token = read_secret("--remote-write.bearer-token-file", token_file)?;
                Ok(Some((format!("Bearer {token}"), token)))
            }
        }
    }

    /// The TLS configuration from the files as they are now (each a regular file of at most
    /// [`MAX_TLS_FILE_BYTES`]).
    fn tls(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = Vec::new();
        if let Some(ca_file) = &self.config.ca_file {
            let flag = "--remote-write.tls-ca-file";
            let pem = read_tls_file(flag, ca_file)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots.push(cert.map_err(|err| pem_error(flag, ca_file, &err))?);
            }
            if roots.is_empty() {
                return Err(format!(
                    "{flag} {}: holds no PEM certificate",
                    ca_file.display()
                ));
            }
        }
        let identity = match &self.config.identity {
            None => None,
            Some(identity) => {
                let cert_flag = "--remote-write.tls-cert-file";
                let pem = read_tls_file(cert_flag, &identity.cert_file)?;
                let chain = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|err| pem_error(cert_flag, &identity.cert_file, &err))?;
                if chain.is_empty() {
                    return Err(format!(
                        "{cert_flag} {}: holds no PEM certificate",
                        identity.cert_file.display()
                    ));
                }
                let key_flag = "--remote-write.tls-key-file";
                let pem = read_tls_file(key_flag, &identity.key_file)?;
                let key = crate::tls::private_key(&pem)
                    .map_err(|why| format!("{key_flag} {}: {why}", identity.key_file.display()))?;
                Some((chain, key))
            }
        };
        crate::tls::client_config(roots, identity).map_err(|err| self.setup_error(&err))
    }

    /// What a failed TLS set-up means, naming the flags to fix.
    fn setup_error(&self, err: &rustls::Error) -> String {
        match (err, &self.config.identity) {
            (rustls::Error::InconsistentKeys(_), Some(identity)) => format!(
                "--remote-write.tls-key-file {}: the key does not match the certificate of \
                 --remote-write.tls-cert-file {}: give the key that certificate was made for",
                identity.key_file.display(),
                identity.cert_file.display()
            ),
            _ => format!(
                "--remote-write.tls-ca-file/-cert-file/-key-file: cannot set TLS up with \
                 them: {err}"
            ),
        }
    }
}

/// A failed TLS handshake with the receiver, with what it means when [`tls_hint`] knows.
fn handshake_error(host: &str, err: &std::io::Error) -> String {
    match tls_hint(err, host) {
        Some(hint) => format!("TLS with {host}: {err}: {hint}"),
        None => format!("TLS with {host}: {err}"),
    }
}

/// The TLS error somewhere in `err`'s causes (inside an `io::Error` too, whose `source()`
/// skips the error it wraps).
fn tls_cause<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let wrapped = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if wrapped.is_some() {
            return wrapped;
        }
        next = cause.source();
    }
    None
}

/// What a TLS failure with the receiver means, and the flag that fixes it when one can: an
/// untrusted CA, a name the certificate does not carry, an expired certificate, a client
/// certificate asked for or refused (TLS 1.3 says the last two only after the handshake, so
/// they come with the request). `None` for other errors.
fn tls_hint(err: &(dyn std::error::Error + 'static), host: &str) -> Option<String> {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error as Tls};
    Some(match tls_cause(err)? {
        Tls::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature) => {
            "the receiver's certificate is not signed by a CA this monitor trusts: give the CA \
             certificate that signed it with --remote-write.tls-ca-file"
                .to_owned()
        }
        Tls::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => {
            format!(
                "the receiver's certificate is not made out to {host:?}: use a name it carries \
                 in --remote-write.url"
            )
        }
        Tls::InvalidCertificate(
            Cert::Expired
            | Cert::ExpiredContext { .. }
            | Cert::NotValidYet
            | Cert::NotValidYetContext { .. },
        ) => "the receiver's certificate is expired or not yet valid (or this machine's clock \
              is wrong): renew it on the receiver"
            .to_owned(),
        Tls::InvalidMessage(_) => "the receiver did not answer in TLS; if its port speaks \
                                   plain HTTP, use http:// in --remote-write.url"
            .to_owned(),
        Tls::AlertReceived(Alert::CertificateRequired | Alert::HandshakeFailure) => {
            "the receiver wants a client certificate: give --remote-write.tls-cert-file and \
             --remote-write.tls-key-file"
                .to_owned()
        }
        Tls::AlertReceived(
            Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateUnknown,
        ) => "the receiver refused this monitor's client certificate \
             (--remote-write.tls-cert-file): give one signed by a CA it trusts"
            .to_owned(),
        _ => return None,
    })
}

fn pem_error(flag: &str, path: &std::path::Path, err: &rustls::pki_types::pem::Error) -> String {
    format!("{flag} {}: {err}", path.display())
}

/// A TLS file's bytes: a regular file (a FIFO or a device there must not hang the pusher or
/// fill memory) of at most [`MAX_TLS_FILE_BYTES`].
fn read_tls_file(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    crate::files::read_regular(path, MAX_TLS_FILE_BYTES)
        .map_err(|err| format!("{flag} {}: cannot read it: {err}", path.display()))
}

/// A password or token file's content without surrounding white space (a trailing newline
/// is what editors leave); a regular file of at most [`MAX_SECRET_BYTES`].
fn read_secret(flag: &str, path: &std::path::Path) -> Result<String, String> {
    let cannot =
        |err: &dyn std::fmt::Display| format!("{flag} {}: cannot read it: {err}", path.display());
    let bytes = crate::files::read_regular(path, MAX_SECRET_BYTES).map_err(|err| cannot(&err))?;
    let text = String::from_utf8(bytes).map_err(|_| cannot(&"it is not UTF-8 text"))?;
    let secret = text.trim();
    let wrong = |what: &str| {
        format!(
            "{flag} {}: {what}: write the password or token alone on one line",
            path.display()
        )
    };
    if secret.is_empty() {
        return Err(wrong("it is empty (or white space only)"));
    }
    if secret.bytes().any(|b| b.is_ascii_control()) {
        return Err(wrong("it holds a control character (a second line?)"));
    }
    Ok(secret.to_owned())
}

/// `answer` with every one of `secrets` in its message replaced by `…`; the whole header value
/// first, then the bare secret (and, for basic auth, its base64 form within the value).
fn scrubbed(answer: Answer, secrets: &[String]) -> Answer {
    let scrub = |mut why: String| {
        for secret in secrets {
            if !secret.is_empty() {
                why = why.replace(secret.as_str(), "…");
            }
            if let Some((_, encoded)) = secret.split_once(' ')
                && !encoded.is_empty()
            {
                why = why.replace(encoded, "…");
            }
        }
        why
    };
    match answer {
        Answer::Accepted => Answer::Accepted,
        Answer::Retry { retry_after, why } => Answer::Retry {
            retry_after,
            why: scrub(why),
        },
        Answer::Rejected { status, why } => Answer::Rejected {
            status,
            why: scrub(why),
        },
    }
}

/// Sends `request` on a new HTTP/1.1 connection over `io` and reads the answer.
async fn send<T>(io: T, request: Request<Full<Bytes>>) -> Result<Answer, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = http1::handshake(io)
        .await
        .map_err(|err| format!("HTTP handshake: {err}"))?;
    // Ends with the connection, or when this push is dropped (the task is aborted).
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response =
        sender
            .send_request(request)
            .await
            .map_err(|err| match tls_hint(&err, "the receiver") {
                Some(hint) => format!("the request failed: {}: {hint}", causes(&err)),
                None => format!("the request failed: {}", causes(&err)),
            })?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| retry_after(value, SystemTime::now()));
    let answer = if status.is_success() {
        // The body is not needed; the connection is closed with the driver.
        Answer::Accepted
    } else {
        let text = read_capped(response.into_body()).await;
        let mut why = format!(
            "{status}: {}",
            crate::logging::clip(text.trim(), LOGGED_ANSWER_BYTES)
        );
        if let Some(hint) = refuses_every_request(status, &text) {
            // Not about the samples: every push gets it, so none may be dropped for it.
            why.push_str(": ");
            why.push_str(hint);
            Answer::Retry { retry_after, why }
        } else {
            if let Some(hint) = status_hint(status).or_else(|| refusal_hint(status, &text)) {
                why.push_str(": ");
                why.push_str(hint);
            }
            classify(status, retry_after, text.trim(), why)
        }
    };
    drop(driver);
    Ok(answer)
}

/// The 4xx answers that say the receiver takes no request at all as configured (credentials,
/// URL, method, a proxy, its own timeout), whatever the samples: retried like a 5xx, so that
/// a wrong password or URL never empties the outbox (the files are read again for each push,
/// so a fixed password applies at the next try).
const RETRIED_CLIENT_ERRORS: [StatusCode; 7] = [
    StatusCode::UNAUTHORIZED,
    StatusCode::FORBIDDEN,
    StatusCode::NOT_FOUND,
    StatusCode::METHOD_NOT_ALLOWED,
    StatusCode::PROXY_AUTHENTICATION_REQUIRED,
    StatusCode::REQUEST_TIMEOUT,
    StatusCode::TOO_MANY_REQUESTS,
];

/// What Prometheus 2.39–2.48 answer, with a 500, for a sample older than their out-of-order
/// window allows: a refusal of that sample for good, which later versions answer with a 400
/// (prometheus/prometheus issue 13334, fixed by pull request 13335). Retried as the 5xx it
/// claims to be, one such sample would hold every later one back for ever.
const TOO_OLD_SAMPLE: &str = "too old sample";

/// What to fix for the answers that refuse every request as configured (retried until the
/// flag or the receiver is fixed); `None` for the others, whose body says enough.
fn status_hint(status: StatusCode) -> Option<&'static str> {
    Some(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            "the receiver refused the credentials: check --remote-write.basic-auth-username and \
             the password in --remote-write.basic-auth-password-file (or the token in \
             --remote-write.bearer-token-file) against the receiver's users"
        }
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            "the receiver takes no writes at this path: check --remote-write.url (Prometheus: \
             /api/v1/write, started with --web.enable-remote-write-receiver; Mimir: \
             /api/v1/push; Thanos Receive: /api/v1/receive)"
        }
        StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
            "a proxy between here and the receiver wants credentials: this monitor connects \
             directly; point --remote-write.url past the proxy"
        }
        status if status.is_redirection() => {
            "the receiver redirects: put the URL it redirects to in --remote-write.url"
        }
        _ => return None,
    })
}

/// What to fix when a 400 is about the request as configured rather than the samples, so
/// that every push gets it: a TLS port's answer to plain HTTP (an `http://` URL for an
/// `https://` receiver; Go's servers such as Prometheus, Mimir and Thanos say "Client sent an
/// HTTP request to an HTTPS server", nginx "The plain HTTP request was sent to HTTPS port",
/// this program "This port speaks HTTPS"), or VictoriaMetrics's answer to a wrong path
/// ("unsupported path requested"). Retried, never counted against the samples.
fn refuses_every_request(status: StatusCode, body: &str) -> Option<&'static str> {
    if status != StatusCode::BAD_REQUEST {
        return None;
    }
    let body = body.to_ascii_lowercase();
    let said = |phrases: &[&str]| phrases.iter().any(|words| body.contains(words));
    if said(&[
        "http request to an https server",
        "plain http request was sent to https port",
        "this port speaks https",
    ]) {
        return Some("the receiver's port speaks HTTPS: use https:// in --remote-write.url");
    }
    if said(&["unsupported path requested"]) {
        return Some(
            "the receiver takes no writes at this path: check --remote-write.url \
             (VictoriaMetrics: /api/v1/write)",
        );
    }
    None
}

/// What to change on the receiver when it refuses samples for their age (a site's backlog
/// after an outage): the words Prometheus's TSDB (and Mimir, Thanos Receive) answer with.
fn refusal_hint(status: StatusCode, body: &str) -> Option<&'static str> {
    let body = body.to_ascii_lowercase();
    let too_old = ["out of bounds", "too old", "out of order"]
        .iter()
        .any(|words| body.contains(words));
    let refused = status == StatusCode::BAD_REQUEST || status == StatusCode::INTERNAL_SERVER_ERROR;
    (refused && too_old).then_some(
        "the receiver refuses samples this old: widen its out-of-order window to cover the \
         outage (Prometheus: storage.tsdb.out_of_order_time_window; Mimir: \
         out_of_order_time_window; README \"What the receiver needs\")",
    )
}

/// What a non-2xx status means for the push: a 4xx refuses the samples sent, except those
/// of [`RETRIED_CLIENT_ERRORS`], and so does a 500 whose `body` is [`TOO_OLD_SAMPLE`];
/// everything else is tried again. `why` is what the log says.
fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str, why: String) -> Answer {
    let refused = status.is_client_error() && !RETRIED_CLIENT_ERRORS.contains(&status);
    let too_old = status == StatusCode::INTERNAL_SERVER_ERROR && body == TOO_OLD_SAMPLE;
    if refused || too_old {
        Answer::Rejected {
            status: status.as_u16(),
            why,
        }
    } else {
        Answer::Retry { retry_after, why }
    }
}

/// `Retry-After` as a wait: seconds, or an HTTP date (a date passed is no wait).
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The answer's body as text, at most [`MAX_ANSWER_BYTES`] of it.
async fn read_capped(mut body: hyper::body::Incoming) -> String {
    let mut read = Vec::new();
    while read.len() < MAX_ANSWER_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = MAX_ANSWER_BYTES - read.len();
                    read.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    String::from_utf8_lossy(&read).into_owned()
}

/// An error and its causes, on one line.
fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
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
}
