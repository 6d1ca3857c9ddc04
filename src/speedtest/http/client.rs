//! The HTTP engine's client: the server's URL, DNS, TCP and TLS connections (rustls with the
//! `ring` provider and the webpki roots), and HTTP/1.1 requests on hyper, every step bounded.

use std::convert::Infallible;
use std::error::Error as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::error::EngineError;
use super::headers;
use super::tcp_info::Acked;
use crate::time::Timestamp;

/// The longest a DNS lookup, a TCP connect or a TLS handshake may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a small request (a latency or detection probe, `getIP`) may take, answer
/// included.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a small answer's body the engine reads, in bytes.
pub(crate) const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// The engine's `User-Agent`.
const USER_AGENT: &str = concat!("internet-monitor/", env!("CARGO_PKG_VERSION"));

/// The server a run measures, from `--http-server`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// `https://`.
    pub(crate) tls: bool,
    /// The host name or address, without IPv6 brackets.
    pub(crate) host: String,
    /// The TCP port: the URL's, else 443 for `https://` and 80 for `http://`.
    pub(crate) port: u16,
    /// `host[:port]` as given, for the `Host` header.
    pub(crate) authority: String,
    /// The base URL's path without a trailing slash ("" for none); API paths follow it.
    pub(crate) base_path: String,
}

impl Target {
    /// Reads an `http://` or `https://` base URL.
    pub(crate) fn parse(url: &str) -> Result<Target, EngineError> {
        let bad = |why: &str| EngineError::Internal(format!("bad --http-server {url:?}: {why}"));
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("not http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let (host, port) = host_and_port(authority, tls).map_err(bad)?;
        Ok(Target {
            tls,
            port,
            authority: authority.as_str().to_owned(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
            host,
        })
    }

    /// The request line's target for an API path: the base path joined with it.
    pub(crate) fn path(&self, api_path: &str) -> String {
        super::api::request_target(&self.base_path, api_path)
    }
}

/// Why a URL's authority names no place to connect to.
pub(crate) const NO_HOST: &str = "no host";

/// The host (without IPv6 brackets) and the TCP port a URL's authority names: the port given,
/// else 443 with `tls` and 80 without. Errors: [`NO_HOST`], or [`explicit_port`]'s.
pub(crate) fn host_and_port(
    authority: &hyper::http::uri::Authority,
    tls: bool,
) -> Result<(String, u16), &'static str> {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(NO_HOST);
    }
    let port = explicit_port(authority)?.unwrap_or(if tls { 443 } else { 80 });
    Ok((host, port))
}

/// The port a URL's authority names: `None` when it names none (`host`, `host:`), an error
/// when what follows the host's colon is no TCP port (`host:99999`, `host:0`), which must not
/// fall back to the scheme's default port and so measure some other server.
pub(crate) fn explicit_port(
    authority: &hyper::http::uri::Authority,
) -> Result<Option<u16>, &'static str> {
    let text = authority.as_str();
    let after_user = text.rsplit_once('@').map_or(text, |(_, rest)| rest);
    let digits = after_user
        .strip_prefix(authority.host())
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or("");
    if digits.is_empty() {
        return Ok(None);
    }
    match digits.parse::<u16>() {
        Ok(port) if port > 0 => Ok(Some(port)),
        _ => Err("the port must be a number from 1 to 65535"),
    }
}

/// Opens connections to one server: its addresses looked up once per run.
#[derive(Clone)]
pub(crate) struct Connector {
    /// The server connected to.
    pub(crate) target: Arc<Target>,
    addresses: Arc<[SocketAddr]>,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Looks the host up (a name under `.invalid` never: RFC 6761 reserves it to fail, so it
    /// fails here without a query leaving the machine) and prepares TLS for `https://`.
    pub(crate) async fn resolve(target: Target) -> Result<Connector, EngineError> {
        let host = target.host.clone();
        let lower = host.to_ascii_lowercase();
        let lower = lower.trim_end_matches('.');
        if lower == "invalid" || lower.ends_with(".invalid") {
            return Err(EngineError::Resolve {
                host,
                cause: "names under .invalid never resolve (RFC 6761)".into(),
            });
        }
        let lookup = tokio::net::lookup_host((target.host.clone(), target.port));
        let addresses: Vec<SocketAddr> = match tokio::time::timeout(CONNECT_TIMEOUT, lookup).await {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(err)) => {
                return Err(EngineError::Resolve {
                    host,
                    cause: err.to_string(),
                });
            }
            Err(_) => {
                return Err(EngineError::Resolve {
                    host,
                    cause: no_answer(),
                });
            }
        };
        if addresses.is_empty() {
            return Err(EngineError::Resolve {
                host,
                cause: "no address found".into(),
            });
        }
        let tls = if target.tls {
            Some(tls_connector()?)
        } else {
            None
        };
        Ok(Connector {
            target: Arc::new(target),
            addresses: addresses.into(),
            tls,
        })
    }

    /// The host as named in messages.
    pub(crate) fn host(&self) -> &str {
        &self.target.host
    }

    /// A new connection, HTTP/1.1 ready: the first address that accepts, then TLS.
    pub(crate) async fn connect(&self) -> Result<Conn, EngineError> {
        let host = self.host();
        let mut last = None;
        let mut stream = None;
        for address in self.addresses.iter() {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(tcp)) => {
                    stream = Some(tcp);
                    break;
                }
                Ok(Err(err)) => last = Some((address, err.to_string())),
                Err(_) => last = Some((address, no_answer())),
            }
        }
        let Some(tcp) = stream else {
            let (address, cause) = last
                .map_or(("?".to_owned(), "no address".to_owned()), |(a, c)| {
                    (a.to_string(), c)
                });
            return Err(EngineError::Connect {
                host: host.to_owned(),
                address,
                cause,
            });
        };
        // Latency probes are single small writes: do not hold them back.
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().ok();
        let acked = Acked::of(&tcp);
        let builder = http1::Builder::new();
        let (sender, driver) = match &self.tls {
            None => {
                let (sender, conn) = handshake(&builder, TokioIo::new(tcp), host).await?;
                (
                    sender,
                    tokio::spawn(async move {
                        let _ = conn.await;
                    }),
                )
            }
            Some(tls) => {
                let name =
                    rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|err| {
                        EngineError::Tls {
                            host: host.to_owned(),
                            cause: err.to_string(),
                        }
                    })?;
                let stream =
                    match tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(err)) => {
                            return Err(EngineError::Tls {
                                host: host.to_owned(),
                                cause: err.to_string(),
                            });
                        }
                        Err(_) => {
                            return Err(EngineError::Tls {
                                host: host.to_owned(),
                                cause: no_answer(),
                            });
                        }
                    };
                let (sender, conn) = handshake(&builder, TokioIo::new(stream), host).await?;
                (
                    sender,
                    tokio::spawn(async move {
                        let _ = conn.await;
                    }),
                )
            }
        };
        Ok(Conn {
            sender,
            driver: AbortOnDrop(driver),
            acked,
            local,
            connector: self.clone(),
            closing: false,
        })
    }
}

/// The cause of a connection step that outlived [`CONNECT_TIMEOUT`].
fn no_answer() -> String {
    format!(
        "no answer within {}",
        humantime::format_duration(CONNECT_TIMEOUT)
    )
}

async fn handshake<T>(
    builder: &http1::Builder,
    io: T,
    host: &str,
) -> Result<(http1::SendRequest<ReqBody>, http1::Connection<T, ReqBody>), EngineError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    builder
        .handshake(io)
        .await
        .map_err(|err| EngineError::Broken {
            host: host.to_owned(),
            request: "the HTTP/1.1 handshake".into(),
            cause: causes(&err),
        })
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, EngineError> {
    let config = crate::tls::client_config(Vec::new(), None)
        .map_err(|err| EngineError::Internal(format!("TLS set-up: {err}")))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A task aborted when its handle is dropped: a connection's driver ends with the connection.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One HTTP/1.1 connection to the server.
#[derive(Debug)]
pub(crate) struct Conn {
    sender: http1::SendRequest<ReqBody>,
    driver: AbortOnDrop,
    /// The socket's acknowledged byte count, where the kernel reports it.
    pub(crate) acked: Option<Acked>,
    /// This end's address.
    pub(crate) local: Option<SocketAddr>,
    connector: Connector,
    /// The server said it closes the connection after its answer (`Connection: close`).
    closing: bool,
}

/// A response whose status was a success.
pub(crate) type Answer = Response<Incoming>;

impl Conn {
    /// The connector that opened this connection.
    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Whether the server closed the connection (after a complete answer, a new one is needed).
    pub(crate) fn is_closed(&self) -> bool {
        self.closing || self.sender.is_closed() || self.driver.0.is_finished()
    }

    /// Marks the connection as unusable (an answer left unread): the next request opens a
    /// new one.
    pub(crate) fn retire(&mut self) {
        self.closing = true;
    }

    /// Replaces this connection with a new one if the server closed it (or said it would).
    pub(crate) async fn reopen_if_closed(&mut self) -> Result<(), EngineError> {
        if self.is_closed() {
            *self = self.connector.connect().await?;
        }
        Ok(())
    }

    /// Sends `method path` (an API path, joined to the base) with `body` and waits for the
    /// answer's head; an HTTP error status is an error (429 with its `Retry-After`). A
    /// connection the server closed after its last answer is replaced first.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        api_path: &str,
        body: ReqBody,
    ) -> Result<Answer, EngineError> {
        self.reopen_if_closed().await?;
        let target = self.connector.target.clone();
        let path = target.path(api_path);
        let request_name = format!("{method} {path}");
        let broken = |err: hyper::Error| broken(&err, &target.host, &request_name);
        self.sender.ready().await.map_err(broken)?;
        let length = body.size_hint().exact().unwrap_or(0);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(&path)
            .header(header::HOST, &target.authority)
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::ACCEPT_ENCODING, "identity")
            .header(header::CACHE_CONTROL, "no-store");
        if method == Method::POST {
            request = request
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, length);
        }
        let request = request
            .body(body)
            .map_err(|err| EngineError::Internal(format!("{request_name}: {err}")))?;
        let answer = self.sender.send_request(request).await.map_err(broken)?;
        let keep_alive = answer.version() >= hyper::Version::HTTP_11;
        self.closing = match answer.headers().get(header::CONNECTION) {
            Some(value) => {
                let value = value.to_str().unwrap_or("").to_ascii_lowercase();
                value.contains("close") || !keep_alive && !value.contains("keep-alive")
            }
            None => !keep_alive,
        };
        check_status(&answer, &target.host, &request_name)?;
        Ok(answer)
    }

    /// A small request, answer and body, within [`PROBE_TIMEOUT`]: the head, the body (at most
    /// [`SMALL_BODY_LIMIT`] bytes) and the time from sending to the end of the body (a new
    /// connection, when the server closed this one, is made before the clock starts).
    pub(crate) async fn small(
        &mut self,
        api_path: &str,
    ) -> Result<(hyper::http::response::Parts, Bytes, Duration), EngineError> {
        self.reopen_if_closed().await?;
        let started = tokio::time::Instant::now();
        let host = self.connector.host().to_owned();
        let work = async {
            let answer = self.send(Method::GET, api_path, ReqBody::Empty).await?;
            let (parts, body) = answer.into_parts();
            let request = format!("GET {}", self.connector.target.path(api_path));
            let body = read_small(body, &host, &request).await?;
            Ok::<_, EngineError>((parts, body))
        };
        match tokio::time::timeout(PROBE_TIMEOUT, work).await {
            Ok(Ok((parts, body))) => Ok((parts, body, started.elapsed())),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(EngineError::Slow {
                host,
                what: "answering a small request from",
                limit: PROBE_TIMEOUT,
            }),
        }
    }
}

/// A body of at most [`SMALL_BODY_LIMIT`] bytes, all of it or an error.
async fn read_small(body: Incoming, host: &str, request: &str) -> Result<Bytes, EngineError> {
    let limited = http_body_util::Limited::new(body, SMALL_BODY_LIMIT);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => Err(match err.downcast::<hyper::Error>() {
            Ok(err) => body_error(&err, host, request, 0, None),
            Err(err) => EngineError::Broken {
                host: host.to_owned(),
                request: request.to_owned(),
                cause: format!("the answer is over {SMALL_BODY_LIMIT} bytes ({err})"),
            },
        }),
    }
}

/// The `Content-Length` of an answer, if it has a valid one.
pub(crate) fn content_length(headers: &hyper::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The error for a body that failed after `received` bytes: truncated when it had a length
/// and the connection ended early, broken otherwise.
pub(crate) fn body_error(
    err: &hyper::Error,
    host: &str,
    request: &str,
    received: u64,
    expected: Option<u64>,
) -> EngineError {
    let truncated = err.is_incomplete_message() || is_eof(err);
    match expected {
        Some(expected) if truncated && received < expected => EngineError::Truncated {
            host: host.to_owned(),
            request: request.to_owned(),
            received,
            expected,
        },
        _ => broken(err, host, request),
    }
}

/// The error for a request that failed: `Malformed` when the server broke HTTP (an answer
/// hyper cannot parse, headers over its limit, a malformed chunk), `Broken` otherwise (a reset,
/// a closed connection: the path).
pub(crate) fn broken(err: &hyper::Error, host: &str, request: &str) -> EngineError {
    if is_protocol_error(err) {
        EngineError::Malformed {
            host: host.to_owned(),
            request: request.to_owned(),
            cause: causes(err),
        }
    } else {
        EngineError::Broken {
            host: host.to_owned(),
            request: request.to_owned(),
            cause: causes(err),
        }
    }
}

/// Whether the server, not the path, broke the exchange: hyper could not parse its answer, or a
/// body decoder found invalid data (`InvalidData`, as a malformed chunk size is).
fn is_protocol_error(err: &hyper::Error) -> bool {
    if err.is_parse() || err.is_parse_status() || err.is_parse_too_large() {
        return true;
    }
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::InvalidData
        {
            return true;
        }
        source = cause.source();
    }
    false
}

fn is_eof(err: &hyper::Error) -> bool {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::UnexpectedEof;
        }
        source = cause.source();
    }
    false
}

/// An error and its causes, "outer: inner: innermost".
pub(crate) fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn check_status(answer: &Answer, host: &str, request: &str) -> Result<(), EngineError> {
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let until = answer
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| headers::retry_after(value, Timestamp::now()));
        return Err(EngineError::RateLimited {
            host: host.to_owned(),
            request: request.to_owned(),
            until,
        });
    }
    Err(EngineError::Status {
        host: host.to_owned(),
        request: request.to_owned(),
        status: status.to_string(),
    })
}

/// A request's body: none, or `length` bytes of a random block repeated (an upload), sent as
/// slices of the one block, so no byte is copied or generated per request.
#[derive(Debug)]
pub(crate) enum ReqBody {
    /// No body.
    Empty,
    /// `remaining` more bytes (of the block, repeated) to send; `left` mirrors `remaining` for
    /// whoever sent the request ([`ReqBody::left`]).
    Upload {
        block: Bytes,
        remaining: u64,
        left: Arc<std::sync::atomic::AtomicU64>,
    },
}

impl ReqBody {
    /// An upload of `length` bytes taken from `block` (which must not be empty).
    pub(crate) fn upload(block: Bytes, length: u64) -> ReqBody {
        if block.is_empty() {
            return ReqBody::Empty;
        }
        ReqBody::Upload {
            block,
            remaining: length,
            left: Arc::new(std::sync::atomic::AtomicU64::new(length)),
        }
    }

    /// An upload's bytes not yet handed to the connection, readable after the body was moved
    /// into a request: an answer that comes while some are left was sent before the server read
    /// the upload. `None` for no body.
    pub(crate) fn left(&self) -> Option<Arc<std::sync::atomic::AtomicU64>> {
        match self {
            ReqBody::Empty => None,
            ReqBody::Upload { left, .. } => Some(left.clone()),
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Upload {
                block,
                remaining,
                left,
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = usize::try_from(*remaining).map_or(block.len(), |r| r.min(block.len()));
                *remaining -= n as u64;
                left.store(*remaining, std::sync::atomic::Ordering::Relaxed);
                Poll::Ready(Some(Ok(Frame::data(block.slice(..n)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Upload { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Upload { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_base_urls() {
        let cf = Target::parse("https://speed.cloudflare.com").unwrap();
        assert_eq!(
            cf,
            Target {
                tls: true,
                host: "speed.cloudflare.com".into(),
                port: 443,
                authority: "speed.cloudflare.com".into(),
                base_path: String::new(),
            }
        );
        assert_eq!(cf.path("/__up"), "/__up");
        let local = Target::parse("http://[::1]:8080/speed/").unwrap();
        assert_eq!(local.host, "::1");
        assert_eq!(local.port, 8080);
        assert_eq!(local.authority, "[::1]:8080");
        assert_eq!(local.path("/empty.php"), "/speed/empty.php");
        assert_eq!(Target::parse("http://lan").unwrap().port, 80);
        assert!(Target::parse("ftp://x").is_err());
        // A port that is no TCP port is an error, not the scheme's default port.
        assert!(Target::parse("http://lan:99999").is_err());
        assert!(Target::parse("http://lan:0").is_err());
        assert!(Target::parse("http://[::1]:70000").is_err());
        assert_eq!(Target::parse("http://lan:").unwrap().port, 80);
    }

    #[test]
    fn upload_bodies_slice_one_block() {
        let block = Bytes::from(vec![1u8; 10]);
        let mut body = ReqBody::upload(block, 25);
        assert_eq!(body.size_hint().exact(), Some(25));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut sizes = vec![];
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
            sizes.push(frame.into_data().unwrap().len());
        }
        assert_eq!(sizes, [10, 10, 5]);
        assert!(body.is_end_stream());
    }
}
