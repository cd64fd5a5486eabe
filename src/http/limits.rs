//! What one client may hold of the listener: a bounded number of connections, each closed at
//! a deadline whatever it does. Without them a client that opens connections and sends its
//! headers a byte at a time (or never) would hold the daemon's file descriptors, which its
//! feeds need, for as long as it liked.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Connections open at once; more wait in the kernel's queue until one closes. A scraper, a
/// feed reader and a browser need a handful.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection may stay open, keep-alive included: a request is answered in
/// milliseconds, and a client whose connection was closed opens another.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// A TCP listener that accepts at most `limit` connections at a time, each for `lifetime`.
pub struct Bounded {
    inner: TcpListener,
    open: Arc<Semaphore>,
    lifetime: Duration,
}

impl Bounded {
    pub fn new(inner: TcpListener, limit: usize, lifetime: Duration) -> Bounded {
        Bounded {
            inner,
            open: Arc::new(Semaphore::new(limit)),
            lifetime,
        }
    }
}

impl Listener for Bounded {
    type Io = Deadline;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Deadline, std::net::SocketAddr) {
        // The semaphore is never closed, so a permit always comes.
        let permit = Arc::clone(&self.open).acquire_owned().await.ok();
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let io = Deadline {
            stream,
            deadline: Box::pin(tokio::time::sleep(self.lifetime)),
            _permit: permit,
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection that fails every read and write once its deadline has passed, which ends it,
/// and gives its place back when it is dropped.
pub struct Deadline {
    stream: TcpStream,
    deadline: Pin<Box<Sleep>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Deadline {
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the connection outlived its time")
}

impl AsyncRead for Deadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Deadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listener answering one line per connection, over [`Bounded`].
    async fn echo(limit: usize, lifetime: Duration) -> std::net::SocketAddr {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let mut listener = Bounded::new(inner, limit, lifetime);
        tokio::spawn(async move {
            loop {
                let (mut io, _) = Listener::accept(&mut listener).await;
                tokio::spawn(async move {
                    let mut byte = [0; 1];
                    while let Ok(1) = io.read(&mut byte).await {
                        if io.write_all(&byte).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_at_its_deadline() {
        let addr = echo(4, Duration::from_millis(300)).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "closed: {closed:?}"
        );
    }

    #[tokio::test]
    async fn connections_past_the_limit_wait_for_a_place() {
        let addr = echo(2, Duration::from_millis(500)).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"x").await.unwrap();
            let mut b = [0; 1];
            c.read_exact(&mut b).await.unwrap();
            held.push(c);
        }
        // The third is queued by the kernel and not served while two are open...
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(b"y").await.unwrap();
        let mut b = [0; 1];
        let early =
            tokio::time::timeout(Duration::from_millis(200), third.read_exact(&mut b)).await;
        assert!(early.is_err(), "served past the limit");
        // ...and is once the first two reach their deadline.
        let later = tokio::time::timeout(Duration::from_secs(5), third.read_exact(&mut b)).await;
        assert!(matches!(later, Ok(Ok(_))), "{later:?}");
        assert_eq!(&b, b"y");
    }
}
