//! Errors a user of the engine sees, named after the socket errors they
//! mirror so that code written against BSD sockets maps one to one.

use std::io;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TcpError {
    /// EAGAIN: nothing to read yet, or no room to write; an event follows.
    #[error("operation would block")]
    WouldBlock,
    /// ECONNRESET: the peer reset the connection.
    #[error("connection reset by peer")]
    ConnectionReset,
    /// EPIPE: writing after our shutdown, or after the connection was reset.
    #[error("broken pipe")]
    BrokenPipe,
    /// ECONNREFUSED: our SYN was answered with a RST.
    #[error("connection refused")]
    ConnectionRefused,
    /// ETIMEDOUT: retransmissions or keepalive probes went unanswered.
    #[error("connection timed out")]
    TimedOut,
    /// ENOTCONN: the operation needs a synchronized connection.
    #[error("socket is not connected")]
    NotConnected,
    /// EBADF: the handle does not name a live connection or listener.
    #[error("invalid connection handle")]
    InvalidHandle,
    /// EADDRINUSE: the 4-tuple or listening address is taken.
    #[error("address already in use")]
    AddrInUse,
    /// EADDRNOTAVAIL: no free ephemeral port.
    #[error("no free local port")]
    AddrNotAvailable,
    /// EHOSTUNREACH: the next hop towards the destination stopped
    /// answering ARP (the runtime's neighbour verification failed).
    #[error("no route to host: the next hop does not answer")]
    HostUnreachable,
    /// The connection table is full (max_connections).
    #[error("connection table full")]
    TooManyConnections,
    /// EINVAL: an argument makes no sense (port 0 to listen on, etc.).
    #[error("invalid argument: {0}")]
    InvalidInput(&'static str),
}

impl From<TcpError> for io::Error {
    fn from(e: TcpError) -> io::Error {
        let kind = match e {
            TcpError::WouldBlock => io::ErrorKind::WouldBlock,
            TcpError::ConnectionReset => io::ErrorKind::ConnectionReset,
            TcpError::BrokenPipe => io::ErrorKind::BrokenPipe,
            TcpError::ConnectionRefused => io::ErrorKind::ConnectionRefused,
            TcpError::TimedOut => io::ErrorKind::TimedOut,
            TcpError::NotConnected => io::ErrorKind::NotConnected,
            TcpError::InvalidHandle | TcpError::InvalidInput(_) => io::ErrorKind::InvalidInput,
            TcpError::AddrInUse => io::ErrorKind::AddrInUse,
            TcpError::AddrNotAvailable => io::ErrorKind::AddrNotAvailable,
            TcpError::TooManyConnections => io::ErrorKind::OutOfMemory,
            TcpError::HostUnreachable => io::ErrorKind::HostUnreachable,
        };
        io::Error::new(kind, e)
    }
}
