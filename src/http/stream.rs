//! Large answers (JSON pages, CSV exports) made chunk by chunk on the reader threads, each
//! chunk only when hyper asks for the next one: a client that reads slowly or not at all holds
//! one chunk, never its whole answer, and no thread waits for it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame};

use super::compat::store_failed;
use super::response::{HttpError, overloaded};
use crate::daemon::state::READER_WAIT;
use crate::daemon::worker::{WorkerError, Workers};
use crate::store::{Store, StoreError};

/// Log lines for streams cut off (by the store or a busy reader), per minute.
static STOPPED: crate::logging::Throttle =
    crate::logging::Throttle::new(super::LOG_LINES_PER_MINUTE);

/// Aim for chunks of about this many bytes (a dozen samples, one short read transaction): with
/// hyper buffering up to [`super::MAX_BUFFER_BYTES`] ahead, a stalled client holds about two.
pub(super) const CHUNK_BYTES: usize = 8 * 1024;

/// What a streamed answer is made of, one chunk at a time.
pub(super) trait Source: Send + Unpin + 'static {
    /// The next chunk (about [`CHUNK_BYTES`]), read in its own transaction; `None` at the end.
    fn next_chunk(&mut self, store: &Store) -> Result<Option<Bytes>, ChunkError>;
}

/// Why a chunk could not be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum ChunkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write a sample as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

type Step<S> = (S, Result<Option<Bytes>, ChunkError>);
type Pending<S> = Pin<Box<dyn Future<Output = Result<Step<S>, WorkerError>> + Send>>;

enum State<S> {
    Ready(S),
    Reading(Pending<S>),
    Done,
}

/// A response body pulled from a [`Source`] on the reader threads.
pub(super) struct Streamed<S> {
    first: Option<Bytes>,
    state: State<S>,
    readers: Arc<Workers>,
    /// One of [`MAX_STREAMS`], held until the body is sent or dropped.
    _turn: tokio::sync::OwnedSemaphorePermit,
}

/// Streamed answers in flight at once. A connection streaming an answer is never evicted to
/// make room for another (its client is being served), so a client that asks for one and reads
/// slowly holds its slot until the write timeout: without this bound, enough of them fill every
/// slot and a scrape waits. Beyond it a request gets 503 at once, and its connection, idle
/// again, can be evicted.
pub(crate) const MAX_STREAMS: usize = 64;

impl<S: Source> Streamed<S> {
    /// Reads the first chunk before the status is sent, so that a busy server or an unreadable
    /// store is still a 503 with a JSON error; later failures can only cut the body short.
    /// `streams` is the server's bound on answers streamed at once (one permit each, held by
    /// the body; none left is a 503 at once).
    pub(super) async fn start(
        mut source: S,
        readers: Arc<Workers>,
        streams: Arc<tokio::sync::Semaphore>,
    ) -> Result<Self, HttpError> {
        let turn = streams.try_acquire_owned().map_err(|_| {
            if let Some(left_out) = STOPPED.admit() {
                tracing::warn!(
                    left_out,
                    "a request was turned away: {MAX_STREAMS} answers are being streamed"
                );
            }
            HttpError::unavailable(format!(
                "the server is busy: {MAX_STREAMS} answers are being streamed; try again shortly"
            ))
        })?;
        let (source, first) = readers
            .run_within(READER_WAIT, move |store| {
                let first = source.next_chunk(store);
                (source, first)
            })
            .await
            .map_err(overloaded)?;
        let first = first.map_err(|err| match err {
            ChunkError::Store(err) => store_failed(err),
            ChunkError::Json(err) => {
                tracing::error!(%err, "cannot serialise a response");
                HttpError {
                    status: hyper::StatusCode::INTERNAL_SERVER_ERROR,
                    message: "internal error while writing the response".into(),
                }
            }
        })?;
        let state = match first {
            Some(_) => State::Ready(source),
            None => State::Done,
        };
        Ok(Streamed {
            first,
            state,
            readers,
            _turn: turn,
        })
    }
}

impl<S: Source> HttpBody for Streamed<S> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Ready(mut source) => {
                    let readers = this.readers.clone();
                    this.state = State::Reading(Box::pin(async move {
                        // Bounded as the first chunk is: under overload a stream is cut
                        // rather than kept waiting without end.
                        readers
                            .run_within(READER_WAIT, move |store| {
                                let chunk = source.next_chunk(store);
                                (source, chunk)
                            })
                            .await
                    }));
                }
                State::Reading(mut reading) => {
                    let step = match reading.as_mut().poll(cx) {
                        Poll::Pending => {
                            this.state = State::Reading(reading);
                            return Poll::Pending;
                        }
                        Poll::Ready(step) => step,
                    };
                    // The status is sent already: an error can only cut the body off, which
                    // the client sees as an incomplete chunked body, never as a complete one.
                    return Poll::Ready(match step {
                        Ok((source, Ok(Some(chunk)))) => {
                            this.state = State::Ready(source);
                            Some(Ok(Frame::data(chunk)))
                        }
                        Ok((_, Ok(None))) => None,
                        Ok((_, Err(err))) => {
                            if let Some(left_out) = STOPPED.admit() {
                                tracing::error!(%err, left_out, "a streamed answer stopped: the store cannot be read");
                            }
                            Some(Err(io::Error::other(err)))
                        }
                        Err(err) => {
                            if let Some(left_out) = STOPPED.admit() {
                                tracing::warn!(%err, left_out, "a streamed answer stopped");
                            }
                            Some(Err(io::Error::other(err)))
                        }
                    });
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && matches!(self.state, State::Done)
    }
}
