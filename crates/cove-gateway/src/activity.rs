//! Keep-warm accounting: how many proxied requests a target has in flight, and when the last
//! one ended.
//!
//! Every proxied request holds an [`ActivityGuard`] for its whole life: through the upstream
//! call, while the response body streams (the guard rides inside [`GuardedBody`]) and, for
//! upgraded connections, until the tunnel closes. Dropping the guard is the only way to
//! decrement, so the count stays exact on errors and client disconnects.

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Sentinel for "no request has ended yet".
const NEVER: i64 = i64::MIN;

/// In-flight counter and last-activity timestamp of one target.
#[derive(Debug)]
pub struct Activity {
    active: AtomicUsize,
    last_end_ms: AtomicI64,
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    /// A fresh counter: nothing active, nothing ended yet.
    pub fn new() -> Self {
        Activity {
            active: AtomicUsize::new(0),
            last_end_ms: AtomicI64::new(NEVER),
        }
    }

    /// Number of requests (including open upgraded connections) in flight now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Unix time in milliseconds at which the last request ended, if any has.
    pub fn last_end_ms(&self) -> Option<i64> {
        match self.last_end_ms.load(Ordering::SeqCst) {
            NEVER => None,
            ms => Some(ms),
        }
    }

    /// Counts one request as started; it ends when the returned guard is dropped.
    pub fn start(self: &Arc<Self>) -> ActivityGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        ActivityGuard {
            activity: Arc::clone(self),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Holds one unit of [`Activity::active`]; dropping it ends the request.
#[derive(Debug)]
pub struct ActivityGuard {
    activity: Arc<Activity>,
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        // Timestamp first, so an observer that sees active == 0 also sees the end time.
        self.activity.last_end_ms.store(now_ms(), Ordering::SeqCst);
        self.activity.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as active until the body has been fully
/// sent, has failed, or was dropped (client went away). Frames pass through untouched, so
/// streaming (chunked, SSE) is not buffered.
pub struct GuardedBody<B> {
    inner: B,
    guard: Option<ActivityGuard>,
}

impl<B> GuardedBody<B> {
    pub fn new(inner: B, guard: ActivityGuard) -> Self {
        GuardedBody {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                this.guard.take();
            }
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => {
                this.guard.take();
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    #[test]
    fn guard_counts_and_stamps() {
        let a = Arc::new(Activity::new());
        assert_eq!(a.last_end_ms(), None);
        let g1 = a.start();
        let g2 = a.start();
        assert_eq!(a.active(), 2);
        drop(g1);
        assert_eq!(a.active(), 1);
        assert!(a.last_end_ms().is_some());
        drop(g2);
        assert_eq!(a.active(), 0);
    }

    #[tokio::test]
    async fn body_releases_at_end() {
        let a = Arc::new(Activity::new());
        let body = GuardedBody::new(Full::new(Bytes::from_static(b"hello")), a.start());
        assert_eq!(a.active(), 1);
        let collected = body.collect().await.map(|c| c.to_bytes());
        assert_eq!(collected.ok(), Some(Bytes::from_static(b"hello")));
        assert_eq!(a.active(), 0);
    }

    #[test]
    fn body_releases_on_drop() {
        let a = Arc::new(Activity::new());
        let body = GuardedBody::new(Full::new(Bytes::from_static(b"x")), a.start());
        assert_eq!(a.active(), 1);
        drop(body);
        assert_eq!(a.active(), 0);
    }
}
