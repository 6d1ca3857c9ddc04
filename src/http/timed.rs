//! A connection whose writes time out: hyper 1 has no write timeout, so a client that stops
//! reading would hold its connection, and the response buffered for it, for ever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `inner`, but writes that wait for the client for `limit` in all while moving fewer than
/// `min_progress` bytes (by default 1: no progress at all) fail with
/// [`io::ErrorKind::TimedOut`], which ends the connection and frees what it held. Only time
/// spent waiting on a full socket counts, so an idle keep-alive connection is never timed out
/// here (hyper's header timeout covers it), and a client that reads a trickle cannot hold its
/// connection by moving a few bytes now and then.
pub(super) struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    /// Bytes that, once written, clear the time waited so far.
    min_progress: usize,
    /// Bytes written since the time waited was last cleared.
    progress: usize,
    /// Time spent waiting on the client since it was last cleared, not counting the wait in
    /// progress now.
    waited: Duration,
    /// The wait in progress: when it began, and when it fails.
    waiting: Option<(Instant, Pin<Box<Sleep>>)>,
}

impl<S> WriteTimeout<S> {
    /// Wraps `inner`; `limit` is how long writes may wait without progress before they fail.
    pub(super) fn new(inner: S, limit: Duration) -> Self {
        WriteTimeout {
            inner,
            limit,
            min_progress: 1,
            progress: 0,
            waited: Duration::ZERO,
            waiting: None,
        }
    }

    /// Writes must move `bytes` within `limit` of waiting, not just any byte: a client reading
    /// a trickle cannot hold its connection (and what it was sent) for long.
    pub(super) fn with_min_progress(mut self, bytes: usize) -> Self {
        self.min_progress = bytes.max(1);
        self
    }

    /// Ends the wait in progress, if any, adding its time to the time waited.
    fn stop_waiting(&mut self) {
        if let Some((since, _)) = self.waiting.take() {
            self.waited = self.waited.saturating_add(since.elapsed());
        }
    }

    /// Counts a write's progress; enough of it clears the time waited.
    fn check_write(
        &mut self,
        poll: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(written)) = &poll {
            self.progress = self.progress.saturating_add(*written);
            if self.progress >= self.min_progress {
                self.progress = 0;
                self.waited = Duration::ZERO;
                self.waiting = None;
            }
        }
        self.check(poll, cx)
    }

    /// Passes on a finished operation, ending the wait; a pending one starts the wait (or
    /// checks it) and fails once the time waited reaches the limit.
    fn check<T>(&mut self, poll: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stop_waiting();
            return poll;
        }
        let left = self.limit.saturating_sub(self.waited);
        let (_, timer) = self
            .waiting
            .get_or_insert_with(|| (Instant::now(), Box::pin(tokio::time::sleep(left))));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read too little for the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check_write(poll, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check_write(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.check(poll, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.check(poll, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_reading_times_the_writer_out() {
        let (client, server) = tokio::io::duplex(1024);
        let mut server = WriteTimeout::new(server, Duration::from_secs(10));
        // The pipe takes 1 KiB; the client reads nothing, so the rest stalls, then times out.
        let err = server.write_all(&[0; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_below_the_minimum_progress_times_out() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut server = WriteTimeout::new(server, Duration::from_secs(10)).with_min_progress(4096);
        let reader = tokio::spawn(async move {
            let mut buf = [0; 512];
            let mut total = 0;
            // 512 bytes every 2 s: always some progress, but 2.5 KiB per 10 s.
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                match tokio::io::AsyncReadExt::read(&mut client, &mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        let started = tokio::time::Instant::now();
        let err = server.write_all(&[0; 65536]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() <= Duration::from_secs(12),
            "{:?}",
            started.elapsed()
        );
        drop(server);
        assert!(reader.await.unwrap() < 8192);
    }

    #[tokio::test(start_paused = true)]
    async fn progress_resets_the_timer() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut server = WriteTimeout::new(server, Duration::from_secs(10));
        let reader = tokio::spawn(async move {
            let mut buf = [0; 512];
            let mut total = 0;
            // A slow reader: 512 bytes every 5 s, well within the timeout each time.
            while total < 8192 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                total += tokio::io::AsyncReadExt::read(&mut client, &mut buf)
                    .await
                    .unwrap();
            }
            total
        });
        server.write_all(&[0; 8192]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 8192);
    }
}
