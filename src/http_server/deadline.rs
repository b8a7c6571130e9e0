//! A socket whose writes give up when the peer stops reading: a client that
//! pipelines requests and never reads the answers would otherwise hold its
//! connection for ever once the kernel's send buffer is full. Reads are not
//! bounded here: hyper times out headers, the serving core times out bodies,
//! and a connection waiting for its handler must not be cut while it waits.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// A TCP stream whose writes fail with `TimedOut` after `timeout` without
/// progress.
pub struct WriteDeadline {
    stream: TcpStream,
    timeout: Duration,
    /// Armed when a write first finds the socket full; cleared on progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteDeadline {
    /// Wraps `stream`.
    pub fn new(stream: TcpStream, timeout: Duration) -> WriteDeadline {
        WriteDeadline {
            stream,
            timeout,
            stalled: None,
        }
    }

    /// Passes `result` on, arming the deadline while it is pending and
    /// failing once the deadline has passed.
    fn bounded<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client has read nothing for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.bounded(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.bounded(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        self.bounded(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.bounded(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_to_a_peer_that_never_reads_time_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let mut stream = WriteDeadline::new(accepted, Duration::from_millis(200));
        let chunk = vec![b'x'; 64 * 1024];
        let mut written = 0usize;
        let error = loop {
            // Bounded: loopback buffers hold a few MB, far below this.
            assert!(written < 1 << 30, "the writes never stalled");
            let write = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_write(cx, &chunk));
            // Bounded: without the deadline, a write would wait for ever.
            match tokio::time::timeout(Duration::from_secs(5), write).await {
                Ok(Ok(count)) => written += count,
                Ok(Err(error)) => break error,
                Err(_) => panic!("a write stalled past the deadline without failing"),
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        drop(peer);
    }
}
