//! The minimum rate a request body must arrive at, on both planes.
//!
//! A client that sends its header and then one byte every few seconds (or
//! nothing at all) would otherwise hold a connection, a handler and, for an
//! upload, a session for as long as it likes. The rule: a body may keep the
//! server waiting for `--body-timeout` seconds, plus one second for every
//! `--min-body-rate` bytes it has delivered. Only time spent *waiting* for
//! the client counts: while a handler works between reads (hashing a layer,
//! writing to disk) the clock is stopped, so slow storage never cuts a
//! client off. A 10 GB docker push over loopback earns hours of allowance
//! within its first second; a client dripping a byte every two seconds is
//! cut off shortly after the grace period.
//!
//! When the allowance runs out the body ends with [`TooSlow`]; the handler
//! reading it answers as it answers any broken body (the control plane
//! with a `SerializationException`, the registry as for a dropped upload)
//! and the connection closes, since the rest of the body was never read.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The rule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRate {
    /// Waiting every body is allowed before it has sent anything.
    pub grace: Duration,
    /// Bytes that buy one more second of waiting.
    pub bytes_per_second: u64,
}

impl BodyRate {
    /// How long a body that has delivered `bytes` may have kept the server
    /// waiting in all.
    fn allowance(&self, bytes: u64) -> Duration {
        let earned = if self.bytes_per_second == 0 {
            Duration::MAX
        } else {
            Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64)
        };
        self.grace.saturating_add(earned)
    }
}

/// The error a body too slow for the rule ends with.
#[derive(Debug, Clone, Copy)]
pub struct TooSlow {
    rule: BodyRate,
    bytes: u64,
    waited: Duration,
}

impl fmt::Display for TooSlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request body arrived too slowly: {} bytes in {:.0} s of waiting; after the first {} s a body must average at least {} bytes per second",
            self.bytes,
            self.waited.as_secs_f64(),
            self.rule.grace.as_secs(),
            self.rule.bytes_per_second
        )
    }
}

impl std::error::Error for TooSlow {}

/// A request body held to a [`BodyRate`].
pub struct Paced<B> {
    inner: Pin<Box<B>>,
    rule: BodyRate,
    bytes: u64,
    /// Waiting already spent, not counting the wait in progress.
    waited: Duration,
    /// When the wait in progress began.
    waiting_since: Option<Instant>,
    /// Fires when the wait in progress exhausts the allowance.
    deadline: Pin<Box<Sleep>>,
}

impl<B> Paced<B> {
    pub fn new(inner: B, rule: BodyRate) -> Self {
        Paced {
            inner: Box::pin(inner),
            rule,
            bytes: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            deadline: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    fn too_slow(&self, waited: Duration) -> TooSlow {
        TooSlow {
            rule: self.rule,
            bytes: self.bytes,
            waited,
        }
    }
}

impl<B> Body for Paced<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited = this.waited.saturating_add(since.elapsed());
                }
                // A frame that arrives after the allowance ran out (between
                // two timer checks) is still too late.
                if this.waited > this.rule.allowance(this.bytes) {
                    return Poll::Ready(Some(Err(Box::new(this.too_slow(this.waited)))));
                }
                if let Some(Ok(frame)) = &frame {
                    if let Some(data) = frame.data_ref() {
                        this.bytes = this.bytes.saturating_add(data.len() as u64);
                    }
                }
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let now = Instant::now();
                let since = *this.waiting_since.get_or_insert_with(|| {
                    let left = this.rule.allowance(this.bytes).saturating_sub(this.waited);
                    // Deadlines beyond what the timer can hold mean "never".
                    let at = now
                        .checked_add(left)
                        .unwrap_or(now + Duration::from_secs(86_400 * 365));
                    this.deadline.as_mut().reset(at);
                    now
                });
                if this.deadline.as_mut().poll(cx).is_ready() {
                    let waited = this.waited.saturating_add(since.elapsed());
                    return Poll::Ready(Some(Err(Box::new(this.too_slow(waited)))));
                }
                Poll::Pending
            }
        }
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
    use http_body_util::BodyExt;

    fn rule() -> BodyRate {
        BodyRate {
            grace: Duration::from_millis(300),
            bytes_per_second: 1000,
        }
    }

    #[test]
    fn allowance_grows_with_bytes() {
        assert_eq!(rule().allowance(0), Duration::from_millis(300));
        assert_eq!(rule().allowance(500), Duration::from_millis(800));
        let unlimited = BodyRate {
            bytes_per_second: 0,
            ..rule()
        };
        assert_eq!(unlimited.allowance(0), Duration::MAX);
    }

    #[tokio::test]
    async fn a_silent_body_ends_after_the_grace() {
        let (_tx, body) = channel();
        let started = Instant::now();
        let err = Paced::new(body, rule())
            .collect()
            .await
            .err()
            .map(|e| e.to_string());
        let waited = started.elapsed();
        // Real time, so only loosely bounded above.
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(5));
        assert!(err.unwrap_or_default().contains("too slowly"));
    }

    #[tokio::test]
    async fn a_steady_body_is_never_cut() {
        let (tx, body) = channel();
        tokio::spawn(async move {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if tx.send_data(Bytes::from(vec![0; 150])).await.is_err() {
                    return;
                }
            }
        });
        let collected = Paced::new(body, rule()).collect().await;
        assert_eq!(collected.map(|c| c.to_bytes().len()).ok(), Some(3_000));
    }

    #[tokio::test]
    async fn a_dripping_body_is_cut_soon_after_the_grace() {
        let (tx, body) = channel();
        tokio::spawn(async move {
            for _ in 0..200 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if tx.send_data(Bytes::from_static(b"x")).await.is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let result = Paced::new(body, rule()).collect().await;
        assert!(result.is_err());
        // 200 drips would take 10 s; the rule ends it soon after 0.3 s.
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn time_spent_by_the_reader_does_not_count() {
        let (tx, body) = channel();
        for _ in 0..3 {
            tx.send_data(Bytes::from_static(b"x"))
                .await
                .map_err(|_| "send")
                .unwrap();
        }
        drop(tx);
        let mut paced = Paced::new(body, rule());
        let mut bytes = 0;
        while let Some(frame) = paced.frame().await {
            bytes += frame.unwrap().into_data().map(|d| d.len()).unwrap_or(0);
            // The handler is slow; the client is not.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(bytes, 3);
    }

    /// A sender and the body that yields what it sends, ending when the
    /// sender is dropped.
    struct Sender(tokio::sync::mpsc::Sender<Bytes>);

    impl Sender {
        async fn send_data(&self, data: Bytes) -> Result<(), ()> {
            self.0.send(data).await.map_err(|_| ())
        }
    }

    type Sent = Result<Frame<Bytes>, std::io::Error>;

    fn channel() -> (
        Sender,
        http_body_util::StreamBody<impl futures_util::Stream<Item = Sent>>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|data| (Ok(Frame::data(data)), rx))
        });
        (Sender(tx), http_body_util::StreamBody::new(stream))
    }
}
