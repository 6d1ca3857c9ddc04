//! `serve --log-requests`: one access-log line per request, said when its answer's body has
//! been sent (or the client went away): the client's address, the method, the path and query
//! (never a header: credentials travel in `Authorization`, which is not logged), the status,
//! the body bytes sent, how long it took in ms, and the user name when basic auth admitted it.

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

/// What the access log says of a request, known once its answer's head is ready.
#[derive(Debug)]
pub struct Entry {
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
    /// clipped here.
    pub fn new(
        peer: std::net::SocketAddr,
        method: &hyper::Method,
        target: &str,
        status: hyper::StatusCode,
        user: Option<&str>,
        started: Instant,
    ) -> Self {
        Entry {
            peer,
            method: method.as_str().to_owned(),
            target: clip(target, LOGGED_TARGET_BYTES).to_owned(),
            status: status.as_u16(),
            user: user.map(|user| clip(user, LOGGED_USER_BYTES).to_owned()),
            started,
        }
    }
}

/// `body`, logged with `entry` once it has been sent or dropped.
pub fn logged(body: Body, entry: Entry) -> Body {
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
            path = %entry.target,
            status = entry.status,
            bytes = self.bytes,
            duration_ms,
            user = %entry.user.as_deref().unwrap_or("-"),
            complete = self.complete,
            "{} {} {} {}",
            entry.method,
            entry.target,
            entry.status,
            entry.user.as_deref().unwrap_or("-")
        );
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        // A body hyper never polled to its end (HEAD, 204, 304, a client that left): said now.
        if self.body.is_end_stream() {
            self.complete = true;
        }
        self.say();
    }
}
