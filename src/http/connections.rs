//! The live connections and which of them wait idle, so that when every connection slot is
//! taken a new client takes the place of the connection idle longest instead of queueing in
//! the listen backlog behind clients that hold slots by trickling or saying nothing.
//!
//! A connection is idle from its accept until a request's headers are complete, and again
//! from the moment its answer's body has been handed to the socket (or dropped) until the next
//! request: silent clients, trickled headers and idle keep-alive all count; a request being
//! answered, its body streamed included, does not. The registry holds one entry per live
//! connection, so it is bounded by the connection cap.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{Notify, oneshot};

/// Every live connection, and the idle ones oldest first.
#[derive(Default)]
pub(super) struct Connections {
    inner: Mutex<Inner>,
    /// Wakes the accept loop when a connection has become idle (and so can be evicted).
    became_idle: Notify,
}

#[derive(Default)]
struct Inner {
    /// Connection ids and idle stamps come from this one counter: a higher number is later.
    next: u64,
    live: HashMap<u64, Live>,
    /// Idle stamp → connection id, oldest first.
    idle: BTreeMap<u64, u64>,
}

struct Live {
    /// Requests in flight; hyper's HTTP/1 answers one at a time.
    requests: usize,
    /// This connection's key in `idle` while `requests` is 0.
    idle_since: u64,
    /// Closes the connection.
    evict: oneshot::Sender<()>,
}

impl Inner {
    fn stamp(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while the lock is held; a poisoned lock still holds a valid registry.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a connection just accepted, idle since now. It is closed when the receiver
    /// returned fires; the connection leaves the registry when the [`Registration`] drops.
    pub(super) fn register(self: &Arc<Self>) -> (Registration, oneshot::Receiver<()>) {
        let (evict, evicted) = oneshot::channel();
        let mut inner = self.lock();
        let id = inner.stamp();
        inner.live.insert(
            id,
            Live {
                requests: 0,
                idle_since: id,
                evict,
            },
        );
        inner.idle.insert(id, id);
        let registration = Registration {
            connections: self.clone(),
            id,
        };
        (registration, evicted)
    }

    /// Whether some connection is idle (and could be evicted).
    pub(super) fn has_idle(&self) -> bool {
        !self.lock().idle.is_empty()
    }

    /// Resolves once a connection may have become idle since the last call.
    pub(super) async fn idle_notified(&self) {
        self.became_idle.notified().await;
    }

    /// Closes the connection idle longest, if any is idle; returns whether one was.
    pub(super) fn evict_oldest(&self) -> bool {
        let mut inner = self.lock();
        let Some((_, id)) = inner.idle.pop_first() else {
            return false;
        };
        match inner.live.remove(&id) {
            Some(live) => {
                // A connection task that has ended already dropped its receiver: nothing to do.
                let _ = live.evict.send(());
                true
            }
            None => false,
        }
    }

    fn request_ended(&self, id: u64) {
        let mut inner = self.lock();
        let stamp = inner.stamp();
        let Some(live) = inner.live.get_mut(&id) else {
            return;
        };
        live.requests = live.requests.saturating_sub(1);
        if live.requests == 0 {
            live.idle_since = stamp;
            inner.idle.insert(stamp, id);
            drop(inner);
            self.became_idle.notify_one();
        }
    }
}

/// A connection's place in [`Connections`], which it leaves when this drops.
pub(super) struct Registration {
    connections: Arc<Connections>,
    id: u64,
}

impl Registration {
    /// Marks a request in flight until the returned guard drops (with the answer's body).
    pub(super) fn busy(&self) -> Busy {
        let mut inner = self.connections.lock();
        if let Some(live) = inner.live.get_mut(&self.id) {
            live.requests += 1;
            if live.requests == 1 {
                let since = live.idle_since;
                inner.idle.remove(&since);
            }
        }
        Busy {
            connections: self.connections.clone(),
            id: self.id,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.connections.lock();
        if let Some(live) = inner.live.remove(&self.id)
            && live.requests == 0
        {
            inner.idle.remove(&live.idle_since);
        }
    }
}

/// A request in flight on a connection; dropping it makes the connection idle again.
pub(super) struct Busy {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connections.request_ended(self.id);
    }
}

/// An answer's body that keeps its connection busy until hyper has sent it or dropped it.
pub(super) struct Tracked<B> {
    body: B,
    _busy: Busy,
}

impl<B> Tracked<B> {
    pub(super) fn new(body: B, busy: Busy) -> Self {
        Tracked { body, _busy: busy }
    }
}

impl<B: HttpBody + Unpin> HttpBody for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_idle_longest_is_evicted_and_a_busy_one_never() {
        let connections = Arc::new(Connections::default());
        let (first, mut first_evicted) = connections.register();
        let (second, mut second_evicted) = connections.register();
        let (third, mut third_evicted) = connections.register();

        // The first is answering a request; the second went idle before the third did.
        let busy = first.busy();
        drop(third.busy());
        assert!(connections.evict_oldest());
        assert!(
            second_evicted.try_recv().is_ok(),
            "the second idled longest"
        );
        assert!(connections.evict_oldest());
        assert!(third_evicted.try_recv().is_ok());
        assert!(
            !connections.evict_oldest(),
            "a busy connection is not evicted"
        );
        assert!(first_evicted.try_recv().is_err());

        // Idle again once its answer is sent; gone from the registry once it ends.
        drop(busy);
        assert!(connections.has_idle());
        drop(first);
        assert!(!connections.has_idle());
        drop((second, third));
        let inner = connections.lock();
        assert!(inner.live.is_empty() && inner.idle.is_empty());
    }
}
