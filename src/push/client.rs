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
use super::proto;

/// The most of an answer's body read (for the error message), in bytes.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The most of an answer's body a log line shows, in bytes.
pub(crate) const LOGGED_ANSWER_BYTES: usize = 512;
/// The pusher's `User-Agent`.
pub(crate) const USER_AGENT: &str = concat!("internet-monitor/", env!("CARGO_PKG_VERSION"));

/// What became of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
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
    pub(crate) fn new(config: RemoteWriteConfig) -> Result<Client, String> {
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
    pub(crate) fn config(&self) -> &RemoteWriteConfig {
        &self.config
    }

    /// POSTs `body` (a snappy-compressed `WriteRequest`) and says what became of it.
    pub(crate) async fn push(&self, body: Bytes) -> Answer {
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
            .header(header::CONTENT_TYPE, proto::CONTENT_TYPE)
            .header(header::CONTENT_ENCODING, proto::CONTENT_ENCODING)
            .header(proto::VERSION_HEADER, proto::VERSION)
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
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
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
mod tests;
