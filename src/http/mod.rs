//! The HTTP server: `/metrics`, the original app's JSON endpoints, health, and the dashboard at `/`.

mod access;
mod api;
pub(crate) mod assets;
mod cache;
mod compat;
mod connections;
mod connectivity;
mod cross_site;
mod dashboard;
pub(crate) mod encoding;
/// A request target's path and query with the values of secret-named query parameters
/// (`?token=`) replaced by `REDACTED`, as the access log writes it.
pub(crate) use access::redacted as query_redacted;
pub use cross_site::AllowedHosts;
pub mod query;
pub(crate) mod response;
pub(crate) mod stream;
mod timed;
pub(crate) mod web_config;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;

use crate::daemon::state::{AppState, READER_WAIT};
use crate::logging::{Throttle, clip};
use crate::metrics;
use crate::time::Timestamp;
use cache::Cached;
use compat::Measurement;
use connections::{Connections, Tracked};
use query::Query;
use response::{Body, HttpError, json, json_body, overloaded, to_json, with_body};
use timed::WriteTimeout;
use web_config::{Check, WebConfig, WebConfigSource};

/// A client gets this long to send a request's headers, and an idle keep-alive connection
/// this long before it is closed, so slow or silent clients cannot pin connections.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that reads nothing of its answer for this long is disconnected (hyper has no
/// write timeout of its own; [`WriteTimeout`] adds it).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a connection buffers of a request's headers (and of a response before it waits
/// for the client): hyper's minimum. Longer headers get 431.
pub(crate) const MAX_BUFFER_BYTES: usize = 8 * 1024;
/// What the kernel may buffer of a response for a client that does not read (it doubles the
/// figure for its bookkeeping). Loopback and LAN sockets otherwise grow to megabytes, which a
/// client that never reads makes the server fill before the write timeout can start.
const SEND_BUFFER_BYTES: libc::c_int = 64 * 1024;
/// Log lines a minute for each kind of event a client can cause at will (refusals, busy
/// readers, damage met per request); more are counted in the next line's `left_out`.
pub(crate) const LOG_LINES_PER_MINUTE: u32 = 10;
/// The most of a client's header value that goes into a log line.
const LOG_FIELD_BYTES: usize = 200;

/// The most of a user name (from a failed login) that goes into a log line.
const LOG_USER_BYTES: usize = 64;
/// Seconds a client is asked to wait (`Retry-After`) when every credential check is busy.
const AUTH_RETRY_AFTER_SECONDS: &str = "1";
/// The realm of the basic-auth challenge.
const AUTH_CHALLENGE: &str = "Basic realm=\"internet-monitor\", charset=\"UTF-8\"";
/// What a client that speaks plain HTTP to the HTTPS port is told before it is closed.
const PLAIN_HTTP_TO_TLS: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\
Connection: close\r\n\r\nThis port speaks HTTPS: use https:// (the server's --web.config.file \
has tls_server_config).\n";
/// The first byte of a TLS record carrying a handshake message (a ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How long in-flight requests may take to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// What every request handler shares: the application state and the cached answers.
pub(crate) struct Handler {
    state: Arc<AppState>,
    /// The names a browser may reach the history and `/api/v1/run` by (DNS rebinding).
    allowed_hosts: AllowedHosts,
    graph: Cached,
    last_day: Cached,
    /// The column cache and the store's part of `/api/v1/status`.
    dashboard: dashboard::Dashboard,
    /// `--web.healthz-unauthenticated`: `/healthz` needs no credentials.
    healthz_unauthenticated: bool,
}

impl Handler {
    pub(crate) fn new(state: Arc<AppState>, allowed_hosts: AllowedHosts) -> Self {
        Handler {
            state,
            allowed_hosts,
            graph: Cached::default(),
            last_day: Cached::default(),
            dashboard: dashboard::Dashboard::default(),
            healthz_unauthenticated: false,
        }
    }

    /// Answers `/healthz` without credentials even when users are configured.
    pub(crate) fn with_healthz_unauthenticated(mut self, open: bool) -> Self {
        self.healthz_unauthenticated = open;
        self
    }
}

/// `serve --web.config.file` and its companion flag.
#[derive(Clone)]
pub struct WebServing {
    /// The file, re-read for each new connection.
    pub(crate) source: Arc<WebConfigSource>,
    /// `--web.healthz-unauthenticated`.
    pub(crate) healthz_unauthenticated: bool,
}

impl std::fmt::Debug for WebServing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebServing")
            .field("healthz_unauthenticated", &self.healthz_unauthenticated)
            .finish_non_exhaustive()
    }
}

/// What a request's handler learns of its connection: the client's address, and the web
/// configuration in force when the request arrived (`None` without `--web.config.file`),
/// whose users and headers apply to it.
#[derive(Clone)]
pub(crate) struct Peer {
    pub(crate) address: std::net::SocketAddr,
    pub(crate) web: Option<Arc<WebConfig>>,
}

/// Accepts connections until `stop` turns true, then lets in-flight requests finish. At most
/// `max_connections` are served at once. When all are taken, a new client is still accepted
/// and the connection idle longest (silent, trickling its headers, or idle keep-alive) is
/// closed to make room; only when every connection has a request in flight do new clients
/// wait in the listen backlog. With `web`, each connection's TLS follows the web configuration
/// file as it was when the connection began, and each request's basic auth and extra headers
/// the file as it is when the request arrives.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    max_connections: usize,
    allowed_hosts: AllowedHosts,
    web: Option<WebServing>,
    log_requests: bool,
    stop: watch::Receiver<bool>,
) {
    let healthz_unauthenticated = web.as_ref().is_some_and(|web| web.healthz_unauthenticated);
    let handler = Arc::new(
        Handler::new(state, allowed_hosts).with_healthz_unauthenticated(healthz_unauthenticated),
    );
    let limits = Limits {
        max_connections,
        max_buffer_bytes: MAX_BUFFER_BYTES,
        send_buffer_bytes: Some(SEND_BUFFER_BYTES),
        min_write_progress: 1,
        log_unread: log_requests,
    };
    let source = web.map(|web| web.source);
    serve_connections(listener, limits, source, stop, move |request, peer| {
        let handler = handler.clone();
        async move {
            let started = Instant::now();
            let (response, user) = handle(&handler, &request, &peer).await;
            if !log_requests {
                return response;
            }
            // The path and query only: credentials travel in headers, which are not logged.
            let target = access::request_target(request.uri());
            let entry = access::Entry::new(
                peer.address,
                request.method(),
                &target,
                response.status(),
                user.as_deref(),
                started,
            );
            response.map(|body| access::logged(body, entry))
        }
    })
    .await;
}

/// The access-log line of a request the service never saw, because hyper could not read it
/// (its own 400 or 431, or silence past the header timeout, or a client that closed the
/// connection mid-request); nothing for a connection that ended cleanly or failed otherwise
/// (an answer the client stopped reading is logged by its request's own line), nor for a
/// header timeout once a request of the connection was `reached` (a keep-alive connection
/// left idle times out so too).
fn log_unread(error: Option<&hyper::Error>, peer: std::net::SocketAddr, reached: bool) {
    let Some(error) = error else { return };
    if reached && error.is_timeout() {
        return;
    }
    let why = if error.is_parse_too_large() {
        "headers too large, answered 431"
    } else if error.is_parse() {
        "malformed, answered 400"
    } else if error.is_timeout() {
        "the connection's first request not complete within the header timeout, connection closed"
    } else if error.is_incomplete_message() {
        "the client closed the connection before the request was complete"
    } else {
        return;
    };
    tracing::info!(
        target: "internet_monitor::access",
        %peer,
        %error,
        "request not read: {why}"
    );
}

/// The bounds of a server run by [`serve_connections`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Connections served at once (at least 1).
    pub(crate) max_connections: usize,
    /// The most a connection buffers of a request's headers, and of a response before it
    /// waits for the client (hyper's `max_buf_size`, at least 8 KiB).
    pub(crate) max_buffer_bytes: usize,
    /// Caps each socket's send buffer (bytes; the kernel doubles it), or leaves the kernel's
    /// autotuning alone (`None`: a speed-test target needs a full window).
    pub(crate) send_buffer_bytes: Option<libc::c_int>,
    /// Bytes a stalled answer must move within the write timeout ([`WRITE_TIMEOUT`]) for its
    /// connection to be kept: 1 for any progress at all.
    pub(crate) min_write_progress: usize,
    /// `serve --log-requests`: a request never answered by the service because it could not
    /// be read (malformed, headers too large, not complete within the header timeout, cut off
    /// by the client) gets an access-log line too.
    pub(crate) log_unread: bool,
}

/// Serves HTTP/1.1 with `respond` until `stop` turns true, within `limits`: connection cap
/// with eviction of the connection idle longest, header read timeout, write timeout; then
/// lets in-flight requests finish for [`DRAIN_TIMEOUT`]. `respond` gets each request and its
/// [`Peer`]. With `web`, each connection takes the file's configuration of the moment its
/// first byte arrives, for all its requests; when that has TLS, the handshake runs in the
/// connection's task within the header timeout, and HTTP runs over TLS over the write-timed
/// TCP stream (so the write timeout watches the socket itself, not the TLS layer's buffer).
pub(crate) async fn serve_connections<R, F, B>(
    listener: TcpListener,
    limits: Limits,
    web: Option<Arc<WebConfigSource>>,
    mut stop: watch::Receiver<bool>,
    respond: R,
) where
    R: Fn(Request<Incoming>, Peer) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = Arc::new(Connections::default());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(limits.max_buffer_bytes.max(MAX_BUFFER_BYTES));
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            accepted = accept(&listener, &slots, &connections) => accepted,
        };
        let (stream, address, slot) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: say so, give the system a moment.
                tracing::warn!(%err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (registration, evicted) = connections.register();
        let registration = Arc::new(registration);
        let (respond, web) = (respond.clone(), web.clone());
        let (http, watcher) = (http.clone(), graceful.watcher());
        tokio::spawn(async move {
            let served = async {
                // Until its first byte arrives a connection costs a socket and this task, not
                // hyper's buffers; silence past the header timeout closes it, and so does a
                // TLS handshake not done by then.
                let deadline = Instant::now() + HEADER_READ_TIMEOUT;
                if !matches!(timeout_at(deadline, stream.readable()).await, Ok(Ok(()))) {
                    return;
                }
                if let Some(size) = limits.send_buffer_bytes {
                    limit_send_buffer(&stream, size);
                }
                // The file's TLS as it is now applies to the whole connection; read here, not
                // in the accept loop, so that only clients that say something cost a look.
                let began_with = web.as_ref().and_then(|source| source.current().tls.clone());
                let tls = began_with.clone().map(TlsAcceptor::from);
                // Whether a request of this connection reached the service: a header timeout
                // after one is a keep-alive connection left idle, not a request cut off.
                let reached = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let service = {
                    let registration = registration.clone();
                    let web = web.clone();
                    let reached = reached.clone();
                    service_fn(move |request| {
                        reached.store(true, std::sync::atomic::Ordering::Relaxed);
                        let respond = respond.clone();
                        // Users and headers as the file says now, for each request: a user
                        // removed (or a password changed) is out at their next request, not
                        // when their keep-alive connection ends. TLS stays what the connection
                        // began with (`current` never turns it on or off); when the
                        // configuration was rebuilt since (the file or a file it names changed:
                        // a client CA replaced to shut a certificate out, a renewed
                        // certificate), this answer closes the connection, so the client's next
                        // request makes a new handshake under the settings of the moment.
                        let web = web.as_ref().map(|source| source.current());
                        let tls_changed =
                            match (&began_with, web.as_ref().and_then(|w| w.tls.as_ref())) {
                                (Some(began), Some(now)) => !Arc::ptr_eq(began, now),
                                _ => false,
                            };
                        let peer = Peer { address, web };
                        // In flight from its headers until its answer's body has been sent.
                        let busy = registration.busy();
                        async move {
                            let mut response = respond(request, peer).await;
                            if tls_changed {
                                response
                                    .headers_mut()
                                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                            }
                            Ok::<_, Infallible>(response.map(|body| Tracked::new(body, busy)))
                        }
                    })
                };
                let Some(acceptor) = tls else {
                    let io = WriteTimeout::new(stream, WRITE_TIMEOUT)
                        .with_min_progress(limits.min_write_progress);
                    // A client that vanished mid-request is its own business; said only in
                    // the access log.
                    let served = watcher
                        .watch(http.serve_connection(TokioIo::new(io), service))
                        .await;
                    if limits.log_unread {
                        log_unread(
                            served.err().as_ref(),
                            address,
                            reached.load(std::sync::atomic::Ordering::Relaxed),
                        );
                    }
                    return;
                };
                if speaks_plain_http(&stream).await {
                    refuse_plain_http(stream, address, deadline).await;
                    return;
                }
                let io = WriteTimeout::new(stream, WRITE_TIMEOUT)
                    .with_min_progress(limits.min_write_progress);
                let tls = match timeout_at(deadline, acceptor.accept(io)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => {
                        // Any client can fail a handshake at will: debug only.
                        tracing::debug!(%err, peer = %address, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %address, "TLS handshake not done in time");
                        return;
                    }
                };
                let served = watcher
                    .watch(http.serve_connection(TokioIo::new(tls), service))
                    .await;
                if limits.log_unread {
                    log_unread(
                        served.err().as_ref(),
                        address,
                        reached.load(std::sync::atomic::Ordering::Relaxed),
                    );
                }
            };
            // Eviction drops the connection, which closes its socket.
            tokio::select! {
                () = served => {}
                _ = evicted => {}
            }
            drop(registration);
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open when the drain timeout ran out");
    }
}

/// The next connection and a connection slot for it: a free slot, or else the slot of the
/// connection idle longest, which is closed for it. While no slot is free and no connection
/// is idle, new clients wait in the listen backlog.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    connections: &Connections,
) -> std::io::Result<(TcpStream, std::net::SocketAddr, OwnedSemaphorePermit)> {
    loop {
        tokio::select! {
            biased;
            slot = slots.clone().acquire_owned() => {
                let slot = slot.map_err(std::io::Error::other)?;
                let (stream, peer) = listener.accept().await?;
                return Ok((stream, peer, slot));
            }
            accepted = listener.accept(), if connections.has_idle() => {
                let (stream, peer) = accepted?;
                // Debug only: a flood of clients must not flood the log as well.
                if connections.evict_oldest() {
                    tracing::debug!("all connection slots taken: closed the connection idle longest");
                }
                // The evicted connection's task frees its slot as soon as it runs; if the
                // idle one turned busy meanwhile, this waits for a slot as any client would.
                let slot = slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(std::io::Error::other)?;
                return Ok((stream, peer, slot));
            }
            () = connections.idle_notified() => {}
        }
    }
}

/// Whether the client's first byte (it has arrived: the stream is readable) says it speaks
/// plain HTTP rather than TLS: a TLS client opens with a handshake record.
async fn speaks_plain_http(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    let peeked = stream.peek(&mut first).await;
    matches!(peeked, Ok(1)) && first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_alphabetic()
}

/// Tells a plain-HTTP client on the HTTPS port what to do, then closes: the write side first,
/// then what it sent is read (bounded, until the deadline), so that the close does not reset
/// the connection and lose the answer.
async fn refuse_plain_http(mut stream: TcpStream, peer: std::net::SocketAddr, deadline: Instant) {
    static PLAIN: Throttle = Throttle::new(LOG_LINES_PER_MINUTE);
    if let Some(left_out) = PLAIN.admit() {
        tracing::info!(
            %peer,
            left_out,
            "a client spoke plain HTTP to the HTTPS port"
        );
    }
    let answered = async {
        stream.write_all(PLAIN_HTTP_TO_TLS).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        let mut left = MAX_BUFFER_BYTES;
        while left > 0 {
            let read = stream.read(&mut sink).await?;
            if read == 0 {
                break;
            }
            left = left.saturating_sub(read);
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = timeout_at(deadline, answered).await;
}

/// Caps the socket's send buffer at `size` bytes; a refusal only costs memory.
fn limit_send_buffer(stream: &TcpStream, size: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt reads `size` (an int, as SO_SNDBUF takes) for the length given; the
    // socket is open for the duration of the call.
    let failed = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) != 0
    };
    if failed {
        tracing::debug!(err = %std::io::Error::last_os_error(), "cannot limit a socket's send buffer");
    }
}

/// Answers one request. Never panics and never blames the client with a 5xx (a 503 says the
/// server is overloaded or its store unreadable). With users in the connection's web
/// configuration, credentials are checked before anything else (the route list included: an
/// unknown path is a 401 too, not a 404), except for `/healthz` with
/// `--web.healthz-unauthenticated`. The file's headers go on every answer, replacing a header
/// of the same name the server set (so none is sent twice). Also returns the basic-auth user
/// the request was admitted as, for the access log (`None` when no login was needed, or the
/// request was refused).
pub(crate) async fn handle(
    handler: &Handler,
    request: &Request<Incoming>,
    peer: &Peer,
) -> (Response<Body>, Option<String>) {
    let web = peer.web.as_deref();
    let (mut response, user) = match authorize(handler, request, peer, web).await {
        Ok(user) => (route_and_answer(handler, request).await, user),
        Err(refused) => (refused, None),
    };
    // Every answer, errors included: a browser must never guess another type than the one sent.
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(web) = web {
        for (name, value) in &web.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    (response, user)
}

/// `Ok` when the request may go on: no users configured, the open `/healthz` (`Ok(None)`),
/// or valid credentials in the request's only `Authorization` header (two are refused,
/// whatever they hold: `Ok` with the user name); otherwise the answer: 401 with the
/// challenge, or 503 when every credential check is busy.
async fn authorize(
    handler: &Handler,
    request: &Request<Incoming>,
    peer: &Peer,
    web: Option<&WebConfig>,
) -> Result<Option<String>, Response<Body>> {
    let Some(web) = web else { return Ok(None) };
    if web.users.is_empty()
        || (handler.healthz_unauthenticated && request.uri().path() == "/healthz")
    {
        return Ok(None);
    }
    let mut given = request.headers().get_all(header::AUTHORIZATION).iter();
    let authorization = given.next();
    // Two `Authorization` headers are ambiguous (a proxy in front may have judged the other
    // one): refused, whichever of them is right.
    let single = given.next().is_none();
    let checked = if single { authorization } else { None };
    match web.users.check(checked).await {
        Check::Allowed => Ok(checked.and_then(web_config::basic_user)),
        Check::Denied => {
            // No credentials is how a browser's first request goes: only a failed login is
            // worth a line.
            if authorization.is_some() {
                log_failed_login(authorization, request.uri().path(), peer);
            }
            let mut response = HttpError {
                status: StatusCode::UNAUTHORIZED,
                message: if authorization.is_some() {
                    "wrong user name or password".into()
                } else {
                    "this server needs a user name and password (HTTP basic auth)".into()
                },
            }
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(AUTH_CHALLENGE),
            );
            Err(response)
        }
        Check::Busy => {
            static BUSY: Throttle = Throttle::new(LOG_LINES_PER_MINUTE);
            if let Some(left_out) = BUSY.admit() {
                tracing::warn!(
                    left_out,
                    "a request was turned away: every credential check was busy"
                );
            }
            let mut response =
                HttpError::unavailable("the server is busy checking credentials; try again")
                    .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(AUTH_RETRY_AFTER_SECONDS),
            );
            Err(response)
        }
    }
}

/// Logs a failed login, throttled: the user name (clipped, quoted and escaped; never the
/// password), the path and the client's address.
fn log_failed_login(authorization: Option<&HeaderValue>, path: &str, peer: &Peer) {
    static FAILED: Throttle = Throttle::new(LOG_LINES_PER_MINUTE);
    let Some(left_out) = FAILED.admit() else {
        return;
    };
    let user = authorization.and_then(web_config::basic_user);
    tracing::warn!(
        user = ?clip(user.as_deref().unwrap_or("-"), LOG_USER_BYTES),
        path = clip(path, LOG_FIELD_BYTES),
        peer = %peer.address,
        left_out,
        "refused a request without valid credentials"
    );
}

async fn route_and_answer(handler: &Handler, request: &Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    let Some(route) = Route::find(path) else {
        return HttpError::not_found(format!("no such endpoint: {}", crate::logging::shown(path)))
            .into_response();
    };
    let host = match request.headers().get(header::HOST) {
        Some(host) => Some(String::from_utf8_lossy(host.as_bytes())),
        None => request.uri().authority().map(|a| a.as_str().into()),
    };
    let response = respond(
        handler,
        route,
        path,
        request.method(),
        request.headers(),
        host.as_deref(),
        request.uri().query(),
    )
    .await;
    cross_site::apply_cors(response, route.readable_anywhere())
}

async fn respond(
    handler: &Handler,
    route: Route,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
    host: Option<&str>,
    query: Option<&str>,
) -> Response<Body> {
    let allowed = route.methods();
    if method == Method::OPTIONS {
        return cross_site::preflight(headers, host, allowed)
            .unwrap_or_else(|refused| refuse(path, method, headers, refused));
    }
    if !allowed.contains(method) {
        let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        let mut response = HttpError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!(
                "{} answers {} only, not {}",
                crate::logging::shown(path),
                names.join(" and "),
                crate::logging::shown(method.as_str())
            ),
        }
        .into_response();
        if let Ok(allow) = HeaderValue::from_str(&names.join(", ")) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return response;
    }
    if !method.is_safe()
        && let Err(refused) = cross_site::check_state_change(headers, host)
    {
        return refuse(path, method, headers, refused);
    }
    if route.guarded()
        && let Err(refused) = cross_site::check_host(headers, host, &handler.allowed_hosts)
    {
        return refuse(path, method, headers, refused);
    }
    if route == Route::Asset {
        // The page reads its own query string (the range); the server takes any.
        return assets::serve(path, headers).unwrap_or_else(|| {
            HttpError::not_found(format!("no such endpoint: {}", crate::logging::shown(path)))
                .into_response()
        });
    }
    // For HEAD, hyper sends these headers (the length included) and leaves the body out.
    let response = match route.answer(handler, query).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    if route.gzipped() {
        encoding::maybe_gzip(headers, response)
    } else {
        response
    }
}

/// Logs a request refused as cross-site (the header values are escaped by the log format).
fn refuse(path: &str, method: &Method, headers: &HeaderMap, refused: HttpError) -> Response<Body> {
    let header = |name| {
        headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    static REFUSALS: Throttle = Throttle::new(LOG_LINES_PER_MINUTE);
    if let Some(left_out) = REFUSALS.admit() {
        tracing::warn!(
            method = %clip(method.as_str(), LOG_FIELD_BYTES),
            path = clip(path, LOG_FIELD_BYTES),
            origin = header(header::ORIGIN.as_str()).as_deref().map(|v| clip(v, LOG_FIELD_BYTES)),
            sec_fetch_site = header("sec-fetch-site").as_deref().map(|v| clip(v, LOG_FIELD_BYTES)),
            left_out,
            "refused a request that could come from another site"
        );
    }
    refused.into_response()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    /// The page at `/` and its files under `/assets/`.
    Asset,
    Metrics,
    Latest,
    LastDay,
    Graph,
    Health,
    Samples,
    SamplesCsv,
    Summary,
    Run,
    Status,
    Series,
    Heatmap,
    /// `/api/v1/plan`: the stored contract, read-only.
    Plan,
    /// `/api/v1/campaign`: the `serve --campaign` campaign's progress.
    Campaign,
    /// `/api/v1/outages`: the connectivity monitor's outage log and availability.
    Outages,
    /// `/api/v1/latency`: probe loss and RTT per target in steps.
    Latency,
}

impl Route {
    fn find(path: &str) -> Option<Route> {
        Some(match path {
            "/" => Route::Asset,
            _ if assets::find(path).is_some() => Route::Asset,
            "/metrics" => Route::Metrics,
            "/latest" => Route::Latest,
            "/last-day" => Route::LastDay,
            "/graph" => Route::Graph,
            "/healthz" => Route::Health,
            "/api/v1/samples" => Route::Samples,
            "/api/v1/samples.csv" => Route::SamplesCsv,
            "/api/v1/summary" => Route::Summary,
            "/api/v1/run" => Route::Run,
            "/api/v1/status" => Route::Status,
            "/api/v1/series" => Route::Series,
            "/api/v1/heatmap" => Route::Heatmap,
            "/api/v1/plan" => Route::Plan,
            "/api/v1/campaign" => Route::Campaign,
            "/api/v1/outages" => Route::Outages,
            "/api/v1/latency" => Route::Latency,
            _ => return None,
        })
    }

    /// Whether a page on any origin may read the answer (`Access-Control-Allow-Origin: *`):
    /// the original app's endpoints, as it promised, and the other answers that never carry
    /// an address. Never the history (`client` IP and MAC with `--store-ip`, or imported
    /// with them), nor what changes state.
    fn readable_anywhere(self) -> bool {
        match self {
            Route::Latest | Route::LastDay | Route::Graph | Route::Summary | Route::Health => true,
            Route::Asset
            | Route::Metrics
            | Route::Samples
            | Route::SamplesCsv
            | Route::Run
            | Route::Status
            | Route::Series
            | Route::Heatmap
            | Route::Plan
            | Route::Campaign
            | Route::Outages
            | Route::Latency => false,
        }
    }

    /// Whether a browser must reach the route by an allowed name ([`AllowedHosts`]): the
    /// history, which can carry addresses, and what changes state.
    fn guarded(self) -> bool {
        matches!(
            self,
            Route::Samples
                | Route::SamplesCsv
                | Route::Run
                | Route::Status
                | Route::Series
                | Route::Heatmap
                | Route::Plan
                | Route::Campaign
                | Route::Outages
                | Route::Latency
        )
    }

    /// Whether the answer is gzipped for a client that accepts it (the dashboard's JSON).
    fn gzipped(self) -> bool {
        matches!(
            self,
            Route::Status | Route::Series | Route::Heatmap | Route::Outages | Route::Latency
        )
    }

    fn methods(self) -> &'static [Method] {
        match self {
            Route::Run => &[Method::POST],
            _ => &[Method::GET, Method::HEAD],
        }
    }

    /// The query parameters the route takes; any other is a 400.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Route::Samples | Route::SamplesCsv => api::SAMPLE_PARAMETERS,
            Route::Summary => api::SUMMARY_PARAMETERS,
            Route::Status => dashboard::STATUS_PARAMETERS,
            Route::Series => dashboard::SERIES_PARAMETERS,
            Route::Heatmap => dashboard::HEATMAP_PARAMETERS,
            Route::Outages => connectivity::OUTAGES_PARAMETERS,
            Route::Latency => connectivity::LATENCY_PARAMETERS,
            _ => &[],
        }
    }

    async fn answer(
        self,
        handler: &Handler,
        raw_query: Option<&str>,
    ) -> Result<Response<Body>, HttpError> {
        let query = Query::parse(raw_query, self.parameters())?;
        let now = Timestamp::now();
        let state = &handler.state;
        let generation = state.generation();
        Ok(match self {
            Route::Asset => return Err(HttpError::not_found("no such file")),
            Route::Metrics => {
                state.metrics.show_plan_at(&state.plans, now);
                let body = state.metrics.render().map_err(|err| {
                    tracing::error!(%err, "rendering metrics failed");
                    HttpError::unavailable(format!("metrics cannot be rendered: {err}"))
                })?;
                with_body(StatusCode::OK, metrics::CONTENT_TYPE, body)
            }
            Route::Latest => {
                let latest = state.latest_success();
                let measurement = latest.as_deref().and_then(Measurement::of);
                json(
                    StatusCode::OK,
                    &measurement.ok_or_else(compat::no_measurement)?,
                )
            }
            Route::LastDay => json_body(
                StatusCode::OK,
                handler
                    .last_day
                    .get_or_make(generation, || async {
                        state
                            .readers
                            .run_within(READER_WAIT, move |store| {
                                to_json(&compat::last_day(store, now)?)
                            })
                            .await
                            .map_err(overloaded)?
                    })
                    .await?,
            ),
            Route::Graph => json_body(
                StatusCode::OK,
                handler
                    .graph
                    .get_or_make(generation, || async {
                        state
                            .readers
                            .run_within(READER_WAIT, move |store| {
                                to_json(&compat::graph(store, now)?)
                            })
                            .await
                            .map_err(overloaded)?
                    })
                    .await?,
            ),
            Route::Health => {
                // Not store_failed: the store logs a change of file once, not per request.
                state
                    .store
                    .check_file()
                    .map_err(|err| HttpError::unavailable(err.to_string()))?;
                let samples = state.store.len().map_err(compat::store_failed)?;
                json(
                    StatusCode::OK,
                    &Health {
                        status: "ok",
                        samples,
                    },
                )
            }
            Route::Samples => api::samples(state, &query, now).await?,
            Route::SamplesCsv => api::samples_csv(state, &query, now).await?,
            Route::Summary => api::summary(state, &query, now).await?,
            Route::Run => api::run(state)?,
            Route::Status => dashboard::status(&handler.dashboard, state, generation, now).await?,
            Route::Series => {
                dashboard::series(&handler.dashboard, state, &query, generation, now).await?
            }
            Route::Heatmap => {
                dashboard::heatmap(&handler.dashboard, state, &query, generation, now).await?
            }
            Route::Plan => json(StatusCode::OK, &api::PlanAnswer::of(&state.plans, now)),
            Route::Campaign => json(
                StatusCode::OK,
                &crate::campaign::live::CampaignAnswer {
                    campaign: state.campaign.as_ref().map(|live| live.status()),
                },
            ),
            Route::Outages => connectivity::outages(state, &query, now).await?,
            Route::Latency => connectivity::latency(state, &query, now).await?,
        })
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    samples: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_of_basic_credentials_is_read_for_the_log_and_nothing_else() {
        let user = |value: &str| web_config::basic_user(&HeaderValue::from_str(value).unwrap());
        // "alice:secret:with:colons", standard base64.
        assert_eq!(
            user("Basic YWxpY2U6c2VjcmV0OndpdGg6Y29sb25z").as_deref(),
            Some("alice")
        );
        assert_eq!(user("basic   YWxpY2U6").as_deref(), Some("alice"));
        // No colon: malformed credentials, no name to log.
        assert_eq!(user("Basic Ym9i"), None);
        assert_eq!(user("Bearer YWxpY2U6c2VjcmV0"), None);
        assert_eq!(user("Basic !!!"), None);
        assert_eq!(user("Basic"), None);
    }
}
