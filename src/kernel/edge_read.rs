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
//! flags that case (`EPOLLRDHUP`, mio's `is_read_closed`); then, and on a
//! turn of a ready list (no event at all), every read goes to the kernel.
//!
//! For the same reason an event that does not say readable (a connect
//! that completed, room to write) needs no read at all: epoll fills in an
//! event's mask by polling the socket when it hands the event over
//! (`ep_item_poll`, `tcp_poll`), so a mask without `EPOLLIN` means the
//! receive queue was empty then, and data arriving later reports the
//! socket again. nginx likewise reads only when `EPOLLIN` (or an error)
//! was reported.

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
    /// The event was not readable, or a short read emptied the socket.
    drained: bool,
}

/// What a readiness event said about reading its socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadReadiness {
    /// Whether the event can mean something to read: data, the peer's
    /// FIN, or an error (which a read reports).
    pub readable: bool,
    /// The peer's FIN, or an error, came before the event (mio's
    /// `is_read_closed`).
    pub read_closed: bool,
}

impl From<&mio::event::Event> for ReadReadiness {
    fn from(ev: &mio::event::Event) -> Self {
        ReadReadiness {
            readable: ev.is_readable() || ev.is_read_closed() || ev.is_error(),
            read_closed: ev.is_read_closed(),
        }
    }
}

impl<'a, S> EdgeRead<'a, S> {
    /// For an event on `stream` that said `readiness`. An event that was
    /// not readable found nothing to read: its reads answer `WouldBlock`
    /// without a system call (see the module docs).
    pub fn for_event(stream: &'a mut S, readiness: ReadReadiness) -> Self {
        EdgeRead {
            stream,
            trust_short: !readiness.read_closed,
            drained: !readiness.readable,
        }
    }

    /// For a stream just registered for readable and writable events,
    /// before its first event: reads answer `WouldBlock` without a system
    /// call, writes go out. Registering a socket with epoll polls it and
    /// queues an event when any interest is ready (`ep_insert`), and a new
    /// TCP socket is writable, so that first event comes and says whether
    /// there is anything to read; reading now could only find the same or
    /// EAGAIN (nginx and tokio also wait for it before a first read).
    pub fn registered(stream: &'a mut S) -> Self {
        EdgeRead {
            stream,
            trust_short: true,
            drained: true,
        }
    }

    /// Without an event (a turn of a ready list): every read goes to the
    /// kernel.
    pub fn without_event(stream: &'a mut S) -> Self {
        EdgeRead {
            stream,
            trust_short: false,
            drained: false,
        }
    }

    /// Whether the reading for this event is over (the tests' view; the
    /// callers only see `WouldBlock`).
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

    const READABLE: ReadReadiness = ReadReadiness {
        readable: true,
        read_closed: false,
    };
    const FIN: ReadReadiness = ReadReadiness {
        readable: true,
        read_closed: true,
    };

    fn read(r: &mut impl Read, len: usize) -> io::Result<usize> {
        r.read(&mut vec![0; len])
    }

    #[test]
    fn a_short_read_ends_the_events_reading() {
        let mut pipe = Pipe::with_room(100);
        pipe.input.push_back(b"hello".to_vec());
        pipe.input.push_back(b"later".to_vec());
        let mut r = EdgeRead::for_event(&mut pipe, READABLE);
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
        let mut r = EdgeRead::for_event(&mut pipe, READABLE);
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
                EdgeRead::for_event(&mut pipe, FIN)
            } else {
                EdgeRead::without_event(&mut pipe)
            };
            assert_eq!(read(&mut r, 64).unwrap(), 3);
            assert!(!r.drained());
            assert_eq!(read(&mut r, 64).unwrap(), 0, "the end of the stream");
        }
    }

    /// A writable-only event (a connect completed, room to write), and a
    /// stream just registered, read nothing, but their writes go out; the
    /// next readable event reads.
    #[test]
    fn an_event_that_was_not_readable_reads_nothing() {
        let writable = ReadReadiness {
            readable: false,
            read_closed: false,
        };
        for registered in [false, true] {
            let mut pipe = Pipe::with_room(100);
            pipe.input.push_back(b"early".to_vec());
            let mut r = if registered {
                EdgeRead::registered(&mut pipe)
            } else {
                EdgeRead::for_event(&mut pipe, writable)
            };
            assert!(r.drained());
            assert_eq!(
                read(&mut r, 64).unwrap_err().kind(),
                io::ErrorKind::WouldBlock
            );
            assert_eq!(r.write(b"request").unwrap(), 7);
            let mut r = EdgeRead::for_event(&mut pipe, READABLE);
            assert_eq!(read(&mut r, 64).unwrap(), 5);
            assert_eq!(pipe.output, b"request");
        }
    }

    #[test]
    fn writes_pass_through() {
        let mut pipe = Pipe::with_room(100);
        let mut r = EdgeRead::for_event(&mut pipe, READABLE);
        assert_eq!(r.write(b"abc").unwrap(), 3);
        r.shutdown_write().unwrap();
        assert_eq!(pipe.output, b"abc");
    }
}
