//! The replay buffer of a retried request body.
//!
//! The downstream body streams to the first attempt while a copy of every chunk is kept, up to
//! the route's buffer limit (`per_request_buffer_limit_bytes`, else the listener's
//! `per_connection_buffer_limit_bytes`). A retry gets a new [`ReplayBody`] that replays the
//! kept chunks and then continues with whatever the client has not sent yet. Past the limit
//! the copy is dropped and the request can no longer be retried (Envoy counts
//! `retry_or_shadow_abandoned`); the attempt in flight keeps streaming.
//!
//! Invariants:
//! - only the newest attempt reads the downstream body: an older attempt's body (which hyper
//!   may still hold) ends with an error once a newer one exists;
//! - while the copy is kept, `chunks` holds every data frame read from the client, in order,
//!   and `kept` is the sum of their lengths (≤ the limit).

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use legate_stats::Counter;
use legate_upstream::{BoxError, RequestBody};

/// What all attempts of one request share.
struct Shared {
    /// The downstream body; `None` once it has ended.
    downstream: Option<RequestBody>,
    /// Every data chunk read so far, while the copy is kept.
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    kept: usize,
    /// The buffer limit.
    limit: usize,
    /// The copy was dropped: the body went past the limit.
    overflowed: bool,
    /// The trailers, once read.
    trailers: Option<HeaderMap>,
    /// The downstream body has ended.
    ended: bool,
    /// The attempt allowed to read the downstream body.
    current: u32,
    /// The cluster's `retry_or_shadow_abandoned`, counted when the copy is dropped.
    abandoned: Counter,
}

/// A handle on one request body that can be replayed to further attempts.
#[derive(Clone)]
pub struct Replay {
    shared: Arc<Mutex<Shared>>,
}

/// The body of one attempt.
pub struct ReplayBody {
    shared: Arc<Mutex<Shared>>,
    /// This attempt's number (the one that may read downstream while it is `current`).
    attempt: u32,
    /// The next kept chunk to replay.
    next: usize,
    /// Whether this attempt has sent the trailers or the end.
    done: bool,
}

/// Raised by the body of an attempt that a newer attempt replaced.
#[derive(Debug, thiserror::Error)]
#[error("request body taken over by a retry")]
pub struct Superseded;

// === impl Replay ===

impl Replay {
    /// Wraps `body`, keeping up to `limit` bytes for retries (past it, `abandoned` is counted);
    /// returns the handle and the first attempt's body.
    pub fn new(body: RequestBody, limit: usize, abandoned: Counter) -> (Self, ReplayBody) {
        let shared = Arc::new(Mutex::new(Shared {
            downstream: Some(body),
            chunks: Vec::new(),
            kept: 0,
            limit,
            overflowed: false,
            trailers: None,
            ended: false,
            current: 0,
            abandoned,
        }));
        let first = ReplayBody { shared: shared.clone(), attempt: 0, next: 0, done: false };
        (Self { shared }, first)
    }

    /// Whether the body can still be sent again (it has not gone past the limit).
    pub fn replayable(&self) -> bool {
        !lock(&self.shared).overflowed
    }

    /// The body of the next attempt, which replays everything read so far; `None` when the
    /// copy was dropped.
    pub fn next_attempt(&self) -> Option<ReplayBody> {
        let mut s = lock(&self.shared);
        if s.overflowed {
            return None;
        }
        s.current += 1;
        Some(ReplayBody { shared: self.shared.clone(), attempt: s.current, next: 0, done: false })
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A poisoned lock only means another attempt panicked mid-poll; the state stays consistent
    // because every update is a single assignment.
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// === impl ReplayBody ===

impl ReplayBody {
    /// Boxes this body as an upstream request body.
    pub fn boxed(self) -> RequestBody {
        RequestBody::new(self)
    }
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let mut s = lock(&this.shared);
        if s.current != this.attempt {
            return Poll::Ready(Some(Err(Box::new(Superseded))));
        }
        debug_assert!(s.overflowed || s.kept == s.chunks.iter().map(Bytes::len).sum::<usize>());
        if !s.overflowed {
            if let Some(chunk) = s.chunks.get(this.next) {
                this.next += 1;
                return Poll::Ready(Some(Ok(Frame::data(chunk.clone()))));
            }
        }
        if s.ended {
            this.done = true;
            return Poll::Ready(s.trailers.clone().map(|t| Ok(Frame::trailers(t))));
        }
        let Some(downstream) = s.downstream.as_mut() else {
            this.done = true;
            return Poll::Ready(None);
        };
        match Pin::new(downstream).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                s.ended = true;
                s.downstream = None;
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        if !s.overflowed {
                            if s.kept + data.len() > s.limit {
                                s.overflowed = true;
                                s.chunks = Vec::new();
                                s.kept = 0;
                                s.abandoned.inc();
                            } else {
                                s.kept += data.len();
                                s.chunks.push(data.clone());
                                this.next += 1;
                            }
                        }
                        Frame::data(data)
                    }
                    Err(frame) => {
                        if let Some(trailers) = frame.trailers_ref() {
                            s.trailers = Some(trailers.clone());
                            s.ended = true;
                            s.downstream = None;
                            this.done = true;
                        }
                        frame
                    }
                };
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.done {
            return true;
        }
        let s = lock(&self.shared);
        s.ended && s.trailers.is_none() && (s.overflowed || self.next >= s.chunks.len())
    }

    fn size_hint(&self) -> SizeHint {
        let s = lock(&self.shared);
        let kept_left: usize = if s.overflowed { 0 } else { s.chunks.iter().skip(self.next).map(Bytes::len).sum() };
        let rest = match &s.downstream {
            Some(d) => d.size_hint(),
            None => SizeHint::with_exact(0),
        };
        let left = kept_left as u64;
        let mut hint = SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + left);
        }
        hint.set_lower(rest.lower() + left);
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn body(chunks: &[&'static str]) -> RequestBody {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> =
            chunks.iter().map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes())))).collect();
        StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    fn counter() -> Counter {
        legate_stats::Store::default().counter("retry_or_shadow_abandoned")
    }

    async fn collect(b: ReplayBody) -> Result<Bytes, BoxError> {
        Ok(b.collect().await?.to_bytes())
    }

    #[tokio::test]
    async fn a_retry_replays_what_the_first_attempt_read() {
        let (replay, first) = Replay::new(body(&["ab", "cd", "ef"]), 100, counter());
        assert_eq!(collect(first).await.unwrap(), "abcdef");
        let second = replay.next_attempt().unwrap();
        assert_eq!(second.size_hint().exact(), Some(6));
        assert_eq!(collect(second).await.unwrap(), "abcdef");
    }

    #[tokio::test]
    async fn a_retry_continues_a_body_the_first_attempt_did_not_finish() {
        let (replay, mut first) = Replay::new(body(&["ab", "cd", "ef"]), 100, counter());
        let f = first.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), "ab");
        let second = replay.next_attempt().unwrap();
        assert!(matches!(first.frame().await, Some(Err(e)) if e.is::<Superseded>()));
        assert_eq!(collect(second).await.unwrap(), "abcdef");
    }

    #[tokio::test]
    async fn past_the_limit_the_body_streams_but_cannot_be_replayed() {
        let abandoned = counter();
        let (replay, first) = Replay::new(body(&["abc", "def", "ghi"]), 5, abandoned.clone());
        assert_eq!(collect(first).await.unwrap(), "abcdefghi");
        assert!(!replay.replayable());
        assert_eq!(abandoned.value(), 1);
        assert!(replay.next_attempt().is_none());
    }

    #[tokio::test]
    async fn trailers_are_replayed() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let frames: Vec<Result<Frame<Bytes>, BoxError>> =
            vec![Ok(Frame::data(Bytes::from_static(b"x"))), Ok(Frame::trailers(trailers))];
        let (replay, first) = Replay::new(StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync(), 10, counter());
        let got = first.collect().await.unwrap();
        assert_eq!(got.trailers().unwrap()["grpc-status"], "0");
        let again = replay.next_attempt().unwrap().collect().await.unwrap();
        assert_eq!(again.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(again.to_bytes(), "x");
    }
}
