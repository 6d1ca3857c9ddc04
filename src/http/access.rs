//! `serve --log-requests`: one access-log line per request, said when its answer's body has
//! been sent (or the client went away): the client's address, the method, the path and query
//! (never a header: credentials travel in `Authorization`, which is not logged; nor the value
//! of a query parameter whose name reads like a secret, `?password=`, `?token=`), the status,
//! the body bytes sent, how long it took in ms, and the user name when basic auth admitted it.
//! Every part a client chooses is clipped, so a line stays short whatever the request.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Instant;

use super::response::Body;
use crate::logging::clip;

/// The most of a path and query that goes into an access-log line.
const LOGGED_TARGET_BYTES: usize = 512;
/// The most of a user name that goes into an access-log line.
const LOGGED_USER_BYTES: usize = 64;
/// The most of a method that goes into an access-log line (a client may send any token:
/// `PROPPATCH` is 9 bytes, a made-up one kilobytes).
const LOGGED_METHOD_BYTES: usize = 16;
/// What a secret's value is logged as.
const REDACTED: &str = "REDACTED";
/// Words that mark a query parameter's value as a secret when its name holds one (in any
/// case): none of the service's own parameters does.
const SECRET_WORDS: [&str; 8] = [
    "pass", "pwd", "secret", "token", "key", "auth", "session", "cred",
];

/// What the access log says of a request, known once its answer's head is ready.
#[derive(Debug)]
pub(super) struct Entry {
    pub peer: std::net::SocketAddr,
    pub method: String,
    /// The path and query as the client sent them, clipped.
    pub target: String,
    pub status: u16,
    /// The basic-auth user the request was admitted as; `None` when no login was needed or
    /// the request was refused.
    pub user: Option<String>,
    pub started: Instant,
}

impl Entry {
    /// The entry of a request answered with `status`: `target` is its path and query,
    /// its secrets' values left out and clipped here, as is the method.
    pub(super) fn new(
        peer: std::net::SocketAddr,
        method: &hyper::Method,
        target: &str,
        status: hyper::StatusCode,
        user: Option<&str>,
        started: Instant,
    ) -> Self {
        Entry {
            peer,
            method: clip(method.as_str(), LOGGED_METHOD_BYTES).to_owned(),
            target: clip(&redacted(target), LOGGED_TARGET_BYTES).to_owned(),
            status: status.as_u16(),
            user: user.map(|user| clip(user, LOGGED_USER_BYTES).to_owned()),
            started,
        }
    }
}

/// The request target to log: the path and query of an origin- or absolute-form target, and
/// a CONNECT's authority (`example.com:443`) as it was sent, which has neither (its path
/// would read as empty, or as `/`). The log escapes what it writes.
pub(super) fn request_target(uri: &hyper::Uri) -> std::borrow::Cow<'_, str> {
    match (uri.path_and_query(), uri.authority()) {
        (Some(target), _) => target.as_str().into(),
        // `user:pw@host:443`: a CONNECT's credentials are not logged.
        (None, Some(authority)) => crate::cli::secrets_redacted(authority.as_str()),
        (None, None) => uri.to_string().into(),
    }
}

/// `target` (a path and query) with the value of each query parameter whose name holds one
/// of [`SECRET_WORDS`] replaced by [`REDACTED`]. The name is judged as a server decodes it
/// (`p%61ssword` and `pass+word` hold `pass`), and `;` separates parameters as `&` does (some
/// servers and proxies read `?a=1;token=x` so), so no spelling of a secret's name gets its value
/// logged.
pub(crate) fn redacted(target: &str) -> std::borrow::Cow<'_, str> {
    let Some((path, query)) = target.split_once('?') else {
        return target.into();
    };
    let secret = |name: &str| {
        let name = decoded(name).to_ascii_lowercase();
        SECRET_WORDS.iter().any(|word| name.contains(word))
    };
    let pairs = query.split(['&', ';']);
    if !pairs
        .clone()
        .any(|pair| pair.split_once('=').is_some_and(|(name, _)| secret(name)))
    {
        return target.into();
    }
    let mut out = String::with_capacity(target.len());
    out.push_str(path);
    out.push('?');
    let mut rest = query;
    for pair in pairs {
        match pair.split_once('=') {
            Some((name, _)) if secret(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
        rest = &rest[pair.len()..];
        // The separator after the pair, `&` or `;`, as the client wrote it.
        if let Some(separator) = rest.chars().next() {
            out.push(separator);
            rest = &rest[separator.len_utf8()..];
        }
    }
    out.into()
}

/// A query parameter's name as a server reads it: `%XX` escapes decoded (a malformed one kept
/// as it is), `+` a space, bytes that are not UTF-8 replaced.
fn decoded(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                at += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                at += 1;
            }
            (other, None) => {
                out.push(other);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `body`, logged with `entry` once it has been sent or dropped.
pub(super) fn logged(body: Body, entry: Entry) -> Body {
    Logged {
        body,
        entry: Some(entry),
        bytes: 0,
        complete: false,
    }
    .boxed_unsync()
}

/// A body that counts what it sends and says the request's line when it ends.
struct Logged {
    body: Body,
    entry: Option<Entry>,
    bytes: u64,
    /// The whole body was sent (not cut short by the client going away or an error).
    complete: bool,
}

impl HttpBody for Logged {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes = self.bytes.saturating_add(data.len() as u64);
                }
            }
            Poll::Ready(None) => {
                self.complete = true;
                self.say();
            }
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Logged {
    /// Logs the line, once.
    fn say(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        let took = entry.started.elapsed();
        let duration_ms = (took.as_secs_f64() * 1e4).round() / 10.0;
        tracing::info!(
            target: "internet_monitor::access",
            peer = %entry.peer,
            method = %entry.method,
            path = entry.target.as_str(),
            status = entry.status,
            bytes = self.bytes,
            duration_ms,
            user = entry.user.as_deref().unwrap_or("-"),
            complete = self.complete,
            "{} {} {} {}",
            entry.method,
            bare_or_quoted(&entry.target),
            entry.status,
            bare_or_quoted(entry.user.as_deref().unwrap_or("-"))
        );
    }
}

/// `text` for the line's words: as it is when it holds no blank, quote or backslash, else
/// quoted and escaped, so that a user name or path cannot pass for a field (`x" status=500`)
/// or split into words where a reader of the words expects one.
fn bare_or_quoted(text: &str) -> String {
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        crate::logging::quoted(text).to_string()
    } else {
        text.to_owned()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        // A body hyper never polled to its end is said now: complete when there was nothing
        // to send, or when the answer sends none (HEAD, 1xx, 204, 304: hyper writes the head
        // and drops the body), cut short otherwise (a client that left).
        let sends_no_body = self.entry.as_ref().is_some_and(Entry::sends_no_body);
        if self.body.is_end_stream() || sends_no_body {
            self.complete = true;
        }
        self.say();
    }
}

impl Entry {
    /// Whether the answer carries no body by HTTP's rules (RFC 9110 §6.4.1): an answer to
    /// HEAD, and a 1xx, 204 or 304, whatever body the handler gave.
    fn sends_no_body(&self) -> bool {
        self.method == "HEAD"
            || (100..200).contains(&self.status)
            || matches!(self.status, 204 | 304)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_target_is_logged_as_sent() {
        let uri: hyper::Uri = "example.com:443".parse().unwrap();
        assert_eq!(request_target(&uri), "example.com:443");
        let uri: hyper::Uri = "/api/v1/samples?limit=1".parse().unwrap();
        assert_eq!(request_target(&uri), "/api/v1/samples?limit=1");
        let uri: hyper::Uri = "http://example.com/x?y=1".parse().unwrap();
        assert_eq!(request_target(&uri), "/x?y=1");
    }

    #[test]
    fn a_connect_target_is_logged_without_its_credentials() {
        let uri: hyper::Uri = "user:pw@127.0.0.1:443".parse().unwrap();
        assert_eq!(request_target(&uri), "…@127.0.0.1:443");
        let logged = entry(b"CONNECT", &request_target(&uri)).target;
        assert!(!logged.contains("pw"), "{logged}");
    }

    fn entry(method: &[u8], target: &str) -> Entry {
        Entry::new(
            "127.0.0.1:1".parse().unwrap(),
            &hyper::Method::from_bytes(method).unwrap(),
            target,
            hyper::StatusCode::BAD_REQUEST,
            None,
            Instant::now(),
        )
    }

    #[test]
    fn a_secret_in_the_query_is_never_logged() {
        let logged = entry(
            b"GET",
            "/latest?password=hunter2&from=2026-11-01&API_KEY=k1&x&access_token=t=2",
        );
        assert_eq!(
            logged.target,
            "/latest?password=REDACTED&from=2026-11-01&API_KEY=REDACTED&x&access_token=REDACTED"
        );
        assert_eq!(
            entry(b"GET", "/api/v1/summary?rules=de-bnetza&tz=Europe/Berlin").target,
            "/api/v1/summary?rules=de-bnetza&tz=Europe/Berlin"
        );
    }

    #[test]
    fn a_secret_name_however_spelt_is_never_logged_with_its_value() {
        for (target, logged) in [
            (
                "/latest?p%61ssword=hunter2&from=1d",
                "/latest?p%61ssword=REDACTED&from=1d",
            ),
            ("/latest?%54OKEN=t", "/latest?%54OKEN=REDACTED"),
            ("/latest?api+key=k&x=1", "/latest?api+key=REDACTED&x=1"),
            (
                "/latest?x=1;password=hunter2;y=2",
                "/latest?x=1;password=REDACTED;y=2",
            ),
            ("/latest?a=1&;token=t;", "/latest?a=1&;token=REDACTED;"),
            (
                "/latest?p%zzass=1&%ZZpass=2",
                "/latest?p%zzass=1&%ZZpass=REDACTED",
            ),
            (
                "/latest?%E2%82%AC=1&pwd%FF=2",
                "/latest?%E2%82%AC=1&pwd%FF=REDACTED",
            ),
        ] {
            assert_eq!(entry(b"GET", target).target, logged, "{target}");
        }
    }

    /// The line's words quote a user name or path that could pass for a field or split.
    #[test]
    fn a_word_that_could_pass_for_a_field_is_quoted() {
        assert_eq!(bare_or_quoted("alice"), "alice");
        assert_eq!(bare_or_quoted("/metrics?x=1"), "/metrics?x=1");
        assert_eq!(
            bare_or_quoted("x\" status=500 y=\""),
            "\"x\\\" status=500 y=\\\"\""
        );
        assert_eq!(bare_or_quoted("ad min"), "\"ad min\"");
    }

    /// A HEAD answer (or a 204/304) sends its head only: complete, not cut short.
    #[test]
    fn an_answer_without_a_body_by_protocol_is_complete() {
        let with_status = |method: &[u8], status: u16| Entry {
            status,
            ..entry(method, "/metrics")
        };
        assert!(with_status(b"HEAD", 200).sends_no_body());
        assert!(with_status(b"GET", 204).sends_no_body());
        assert!(with_status(b"GET", 304).sends_no_body());
        assert!(!with_status(b"GET", 200).sends_no_body());
        assert!(!with_status(b"POST", 202).sends_no_body());
    }

    #[test]
    fn a_made_up_method_is_clipped_as_the_path_is() {
        let long = vec![b'M'; 7000];
        let logged = entry(&long, &format!("/{}", "a".repeat(7000)));
        assert_eq!(logged.method.len(), LOGGED_METHOD_BYTES);
        assert_eq!(logged.target.len(), LOGGED_TARGET_BYTES);
    }
}
