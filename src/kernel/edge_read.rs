//! Reading an edge-triggered socket without the read that only says
//! EAGAIN.
//!
//! Epoll in edge-triggered mode (mio's) reports a socket once per change,
//! so a reader must empty it before waiting again; mio's guide says to
//! read until `WouldBlock`. But a TCP read that returns fewer bytes than
//! asked for has already emptied the receive queue: `tcp_recvmsg` copies
//! until the queue and the socket's backlog are empty or the buffer is
//! full. Anything that arrives afterwards wakes the socket's wait queue,
//! and epoll reports the socket again. The read after a short one can
//! only return EAGAIN: a system call per request that tokio (it clears
//! readiness after a short read) and nginx (`rev->ready = 0` when
//! `recv` returns less than its buffer) do not make. [`EdgeRead`] does
//! the same for the kernel twins, so their costs per request are those
//! of such a server, not of a naive one.
//!
//! The exception is a FIN that arrived before the event was taken: the
//! short read returns the data before it, no later change will report the
//! socket again, and the end of the stream would never be read. Epoll
//! flags that case (`EPOLLRDHUP`, mio's `is_read_closed`); then, and when
//! there was no event at all, every read goes to the kernel.

use std::io::{self, Read, Write};

use super::handler::Io;

/// A stream whose reads stop at the first short one (see the module
/// docs): after it, reads return `WouldBlock` without a system call.
/// One per readiness event; writes pass through.
#[derive(Debug)]
pub struct EdgeRead<'a, S> {
    stream: &'a mut S,
    /// Whether a short read proves the socket empty until its next event.
    trust_short: bool,
    drained: bool,
}

impl<'a, S> EdgeRead<'a, S> {
    /// For an event on `stream`; `read_closed` is the event's
    /// `is_read_closed()` (the peer's FIN, or an error, came before it).
    pub fn for_event(stream: &'a mut S, read_closed: bool) -> Self {
        EdgeRead {
            stream,
            trust_short: !read_closed,
            drained: false,
        }
    }

    /// Without an event (a new connection, a turn of a ready list): every
    /// read goes to the kernel.
    pub fn without_event(stream: &'a mut S) -> Self {
        EdgeRead {
            stream,
            trust_short: false,
            drained: false,
        }
    }

    /// Whether a short read ended the reading for this event (the tests'
    /// view; the callers only see `WouldBlock`).
    #[cfg(test)]
    fn drained(&self) -> bool {
        self.drained
    }
}

impl<S: Read> Read for EdgeRead<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.stream.read(buf)?;
        if self.trust_short && n > 0 && n < buf.len() {
            self.drained = true;
        }
        Ok(n)
    }
}

impl<S: Write> Write for EdgeRead<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl<S: Io> Io for EdgeRead<'_, S> {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.stream.shutdown_write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::handler::testing::Pipe;

    fn read(r: &mut impl Read, len: usize) -> io::Result<usize> {
        r.read(&mut vec![0; len])
    }

    #[test]
    fn a_short_read_ends_the_events_reading() {
        let mut pipe = Pipe::with_room(100);
        pipe.input.push_back(b"hello".to_vec());
        pipe.input.push_back(b"later".to_vec());
        let mut r = EdgeRead::for_event(&mut pipe, false);
        assert_eq!(read(&mut r, 64).unwrap(), 5);
        assert!(r.drained());
        // The pipe still holds "later", as a socket would once more data
        // came: the next event reads it, not this one.
        assert_eq!(
            read(&mut r, 64).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(pipe.input.len(), 1);
    }

    #[test]
    fn a_full_read_reads_on() {
        let mut pipe = Pipe::with_room(100);
        pipe.input.push_back(b"0123456789".to_vec());
        let mut r = EdgeRead::for_event(&mut pipe, false);
        assert_eq!(read(&mut r, 4).unwrap(), 4);
        assert!(!r.drained());
        assert_eq!(read(&mut r, 4).unwrap(), 4);
        assert_eq!(read(&mut r, 4).unwrap(), 2);
        assert!(r.drained());
    }

    #[test]
    fn after_a_fin_or_without_an_event_every_read_goes_to_the_stream() {
        for closed in [true, false] {
            let mut pipe = Pipe::with_room(100);
            pipe.input.push_back(b"bye".to_vec());
            pipe.input.push_back(Vec::new()); // FIN
            let mut r = if closed {
                EdgeRead::for_event(&mut pipe, true)
            } else {
                EdgeRead::without_event(&mut pipe)
            };
            assert_eq!(read(&mut r, 64).unwrap(), 3);
            assert!(!r.drained());
            assert_eq!(read(&mut r, 64).unwrap(), 0, "the end of the stream");
        }
    }

    #[test]
    fn writes_pass_through() {
        let mut pipe = Pipe::with_room(100);
        let mut r = EdgeRead::for_event(&mut pipe, false);
        assert_eq!(r.write(b"abc").unwrap(), 3);
        r.shutdown_write().unwrap();
        assert_eq!(pipe.output, b"abc");
    }
}
