//! In-memory stdin, stdout and stderr for one attempt.
//!
//! stdin is the input document in parts ([`ChunkedInput`]): a dependent's document shares each
//! upstream output's bytes instead of copying them, so fifty dependents of a 16 MiB output hold
//! one copy of it, not fifty.
//!
//! stdout is the task's output: going over `max_output` traps the plugin at that write, so a
//! flood is never buffered. stderr is the attempt's log: going over `max_logs` drops the rest
//! and the attempt goes on.

use bytes::Bytes;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError};

/// stdin read from shared parts, in order. Clones share the read position.
#[derive(Debug, Clone)]
pub struct ChunkedInput(Arc<Mutex<VecDeque<Bytes>>>);

impl ChunkedInput {
    /// The input made of `parts`, read one after the other.
    pub fn new(parts: Vec<Bytes>) -> Self {
        ChunkedInput(Arc::new(Mutex::new(
            parts.into_iter().filter(|p| !p.is_empty()).collect(),
        )))
    }

    /// Up to `max` bytes from the front; empty at the end.
    fn take(&self, max: usize) -> Bytes {
        let mut parts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(front) = parts.front_mut() else {
            return Bytes::new();
        };
        let read = front.split_to(max.min(front.len()));
        if front.is_empty() {
            parts.pop_front();
        }
        read
    }
}

impl IsTerminal for ChunkedInput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for ChunkedInput {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ChunkedInput {
    async fn ready(&mut self) {}
}

impl InputStream for ChunkedInput {
    fn read(&mut self, size: usize) -> Result<Bytes, StreamError> {
        match self.take(size) {
            read if read.is_empty() && size > 0 => Err(StreamError::Closed),
            read => Ok(read),
        }
    }
}

impl tokio::io::AsyncRead for ChunkedInput {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let read = self.take(buf.remaining());
        buf.put_slice(&read);
        Poll::Ready(Ok(()))
    }
}

/// What happens to bytes written past the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Trap the plugin (stdout).
    Trap,
    /// Drop them and remember that we did (stderr).
    Truncate,
}

#[derive(Debug)]
struct Captured {
    bytes: Vec<u8>,
    limit: usize,
    overflow: Overflow,
    overflowed: bool,
}

/// A capped in-memory pipe. Clones share the same buffer.
#[derive(Debug, Clone)]
pub struct CappedPipe(Arc<Mutex<Captured>>);

/// The largest write permit handed out at once.
const PERMIT: usize = 64 << 10;

impl CappedPipe {
    /// A pipe that holds at most `limit` bytes.
    pub fn new(limit: u64, overflow: Overflow) -> Self {
        CappedPipe(Arc::new(Mutex::new(Captured {
            bytes: Vec::new(),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            overflow,
            overflowed: false,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        // A poisoned lock only means a writer panicked; the bytes are still sound.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of what has been captured so far (the pipe keeps it).
    pub fn peek(&self) -> Vec<u8> {
        self.lock().bytes.clone()
    }

    /// Takes the captured bytes and whether any were refused.
    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut c = self.lock();
        (std::mem::take(&mut c.bytes), c.overflowed)
    }

    /// Appends what fits; returns false if anything did not.
    pub fn append(&self, buf: &[u8]) -> bool {
        let mut c = self.lock();
        if c.overflowed && c.overflow == Overflow::Trap {
            return false;
        }
        let room = c.limit.saturating_sub(c.bytes.len());
        let fits = buf.len().min(room);
        c.bytes.extend_from_slice(&buf[..fits]);
        if fits < buf.len() {
            c.overflowed = true;
            return c.overflow == Overflow::Truncate;
        }
        true
    }

    fn refused() -> StreamError {
        StreamError::trap("output went over max_output")
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        if self.append(&bytes) {
            Ok(())
        } else {
            Err(Self::refused())
        }
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let c = self.lock();
        if c.overflowed && c.overflow == Overflow::Trap {
            return Err(Self::refused());
        }
        Ok(PERMIT)
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(if self.append(buf) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::other("output went over max_output"))
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_reads_its_parts_in_order_across_their_edges() {
        let shared = Bytes::from_static(b"0123456789");
        let mut input = ChunkedInput::new(vec![
            Bytes::from_static(b"{\"a\":"),
            shared.clone(),
            Bytes::new(),
            Bytes::from_static(b"}"),
        ]);
        let mut all = Vec::new();
        loop {
            match input.read(4) {
                Ok(b) => {
                    assert!(b.len() <= 4);
                    all.extend_from_slice(&b);
                }
                Err(StreamError::Closed) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(all, b"{\"a\":0123456789}");
        // The shared part was read through, not consumed: it is still whole for others.
        assert_eq!(shared.len(), 10);
    }

    #[test]
    fn stdout_refuses_past_the_cap() {
        let mut p = CappedPipe::new(4, Overflow::Trap);
        assert!(p.write(Bytes::from_static(b"abc")).is_ok());
        assert!(p.write(Bytes::from_static(b"de")).is_err());
        assert!(p.check_write().is_err());
        assert_eq!(p.take(), (b"abcd".to_vec(), true));
    }

    #[test]
    fn stderr_truncates_and_goes_on() {
        let mut p = CappedPipe::new(4, Overflow::Truncate);
        assert!(p.write(Bytes::from_static(b"abcdef")).is_ok());
        assert!(p.write(Bytes::from_static(b"gh")).is_ok());
        assert_eq!(p.check_write().ok(), Some(PERMIT));
        assert_eq!(p.take(), (b"abcd".to_vec(), true));
    }
}

/// A window onto the log of an attempt while it runs: the attempt hands it its log pipe when it
/// starts, and a reader (`bulkhead serve`'s API) copies what has been written so far. Once the
/// attempt ends the pipe is emptied (its log goes into the outcome), so a reader looks here only
/// while the attempt runs.
#[derive(Debug, Clone, Default)]
pub struct LogTap(Arc<Mutex<Option<CappedPipe>>>);

impl LogTap {
    /// An empty tap, for one attempt.
    pub fn new() -> Self {
        LogTap::default()
    }

    pub(crate) fn attach(&self, pipe: &CappedPipe) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(pipe.clone());
    }

    /// Whether `other` is this tap (a clone of it).
    pub fn is(&self, other: &LogTap) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The log written so far; `None` before the attempt has started.
    pub fn read(&self) -> Option<Vec<u8>> {
        let pipe = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        pipe.map(|p| p.peek())
    }
}
