//! The contract between the kernel-socket event loop ([`super::server`])
//! and an application: the loop owns sockets and readiness, a
//! [`KernelApp`] owns what is read and written.

use std::io::{self, Read, Write};
use std::net::Shutdown;

/// The byte stream a handler reads and writes: a non-blocking mio
/// `TcpStream` in the server, an in-memory pipe in unit tests.
pub trait Io: Read + Write {
    /// Sends FIN after everything written so far (`shutdown(SHUT_WR)`).
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Io for mio::net::TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// What the event loop does with a connection after a handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep it; the handler stopped because the socket would block.
    Keep,
    /// Close it (the handler finished, the peer went away, or an error).
    Close,
}

/// What one server thread did; threads' counters add up to the server's.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KernelReport {
    pub accepted: u64,
    /// Requests answered (the `http` app; the byte-stream apps have none).
    pub requests: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// `accept` failures other than "nothing pending" (e.g. EMFILE).
    pub accept_errors: u64,
    /// epoll waits that returned no event (a busy-polling server makes
    /// many; a sleeping one about one per timeout).
    pub empty_polls: u64,
}

impl KernelReport {
    pub fn add(&mut self, other: &KernelReport) {
        self.accepted += other.accepted;
        self.requests += other.requests;
        self.bytes_received += other.bytes_received;
        self.bytes_sent += other.bytes_sent;
        self.accept_errors += other.accept_errors;
        self.empty_polls += other.empty_polls;
    }
}

/// One application on kernel sockets; one instance per server thread, so
/// per-thread scratch buffers and prebuilt responses live in `self`.
///
/// Readiness is edge-triggered: [`KernelApp::drive`] must read and write
/// until the socket would block (or the connection is finished), or it
/// will not be called again for that connection.
pub trait KernelApp: Send + 'static {
    /// Per-connection state.
    type Conn: Send;

    /// A connection was accepted; `drive` runs right after, its reads
    /// answering `WouldBlock` until the connection's first event.
    fn accept(&mut self) -> Self::Conn;

    /// Moves bytes on a readable or writable connection.
    fn drive(&mut self, conn: &mut Self::Conn, io: &mut impl Io, stats: &mut KernelReport) -> Next;
}

/// The result of one non-blocking read, with the error cases folded into
/// what a handler does about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    Data(usize),
    /// The peer sent FIN.
    Eof,
    WouldBlock,
    /// Reset or another error: the connection is finished.
    Failed,
}

/// Reads once into `buf`, retrying on EINTR; counts received bytes.
pub fn read_some(io: &mut impl Io, buf: &mut [u8], stats: &mut KernelReport) -> ReadOutcome {
    loop {
        return match io.read(buf) {
            Ok(0) => ReadOutcome::Eof,
            Ok(n) => {
                stats.bytes_received += n as u64;
                ReadOutcome::Data(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            Err(_) => ReadOutcome::Failed,
        };
    }
}

/// A write failed (reset, broken pipe): the connection is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionFailed;

/// Writes as much of `data` as the socket takes: `Ok(n)` with `n <
/// data.len()` means it would block.
pub fn write_some(
    io: &mut impl Io,
    data: &[u8],
    stats: &mut KernelReport,
) -> Result<usize, ConnectionFailed> {
    let mut off = 0;
    while off < data.len() {
        match io.write(&data[off..]) {
            Ok(0) => return Err(ConnectionFailed),
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return Err(ConnectionFailed),
        }
    }
    stats.bytes_sent += off as u64;
    Ok(off)
}

#[cfg(test)]
pub(crate) mod testing {
    //! An in-memory [`Io`] for handler tests: scripted input, a send
    //! buffer of limited room.
    use super::*;
    use std::collections::VecDeque;

    #[derive(Default)]
    pub(crate) struct Pipe {
        /// What reads return, in order; an empty chunk is EOF.
        pub input: VecDeque<Vec<u8>>,
        /// Everything written.
        pub output: Vec<u8>,
        /// Bytes writes may still take before they would block.
        pub room: usize,
        pub fin_sent: bool,
    }

    impl Pipe {
        pub(crate) fn with_room(room: usize) -> Pipe {
            Pipe {
                room,
                ..Pipe::default()
            }
        }
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(chunk) = self.input.front_mut() else {
                return Err(io::ErrorKind::WouldBlock.into());
            };
            if chunk.is_empty() {
                return Ok(0); // EOF stays EOF
            }
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.input.pop_front();
            }
            Ok(n)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            assert!(!self.fin_sent, "write after FIN");
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.output.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Io for Pipe {
        fn shutdown_write(&mut self) -> io::Result<()> {
            self.fin_sent = true;
            Ok(())
        }
    }
}
