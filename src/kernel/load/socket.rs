//! Client sockets: non-blocking connect from a chosen source address, and
//! how to tell when a non-blocking connect has finished.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

use mio::net::TcpStream;
use nix::sys::socket::{setsockopt, sockopt::IpBindAddressNoPort};
use socket2::{Domain, Protocol, Socket, Type};

/// Starts a non-blocking connect to `target` with TCP_NODELAY. With a
/// `source` address the socket is bound to it before connecting, with
/// IP_BIND_ADDRESS_NO_PORT so the port is picked at connect time per
/// 4-tuple: each source address then brings its own ephemeral port space
/// (bind(addr, 0) alone would reserve a port per socket across all
/// destinations and run out much sooner).
pub fn connect(target: SocketAddrV4, source: Option<Ipv4Addr>) -> io::Result<TcpStream> {
    // Non-blocking from socket(2) on (SOCK_NONBLOCK): two fcntl calls
    // fewer per connection than setting it afterwards.
    let socket = Socket::new(
        Domain::IPV4,
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    socket.set_nodelay(true)?;
    if let Some(addr) = source {
        setsockopt(&socket, IpBindAddressNoPort, &true).map_err(io::Error::from)?;
        socket.bind(&SocketAddr::V4(SocketAddrV4::new(addr, 0)).into())?;
    }
    match socket.connect(&SocketAddr::V4(target).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Where a non-blocking connect stands after a readiness event.
#[derive(Debug)]
pub enum ConnectState {
    InProgress,
    Connected,
    Failed(io::Error),
}

/// Checks a connecting stream after an event: connected when it has a
/// peer address (getpeername(2) answers ENOTCONN in SYN-SENT and after a
/// failure, `inet_getname`), else failed when a socket error is pending
/// (SO_ERROR, connect(2)'s way to report a non-blocking connect's
/// failure), else still in progress. mio's guide reads SO_ERROR first and
/// then the peer; asking for the peer first gives the same answers with
/// one system call on the common path, a connect that succeeded.
pub fn connect_state(stream: &TcpStream) -> ConnectState {
    match stream.peer_addr() {
        Ok(_) => ConnectState::Connected,
        Err(e) if e.kind() == io::ErrorKind::NotConnected => match stream.take_error() {
            Ok(Some(e)) | Err(e) => ConnectState::Failed(e),
            Ok(None) => ConnectState::InProgress,
        },
        Err(e) => ConnectState::Failed(e),
    }
}

/// The address the kernel's routing picks as source toward `target` (a
/// connected UDP socket sends nothing).
pub fn route_source(target: SocketAddrV4) -> io::Result<Ipv4Addr> {
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    probe.connect(target)?;
    match probe.local_addr()? {
        SocketAddr::V4(a) => Ok(*a.ip()),
        SocketAddr::V6(_) => Err(io::Error::other("IPv6 source for an IPv4 target")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The socket is non-blocking from its creation (O_NONBLOCK set, the
    /// connect in progress, not waited for), bound to the source address,
    /// and connects in the background.
    #[test]
    fn connects_without_blocking_from_the_source_address() {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let std::net::SocketAddr::V4(target) = listener.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        let stream = connect(target, Some(Ipv4Addr::LOCALHOST)).unwrap();
        assert!(socket2::SockRef::from(&stream).nonblocking().unwrap());
        let (_peer, _) = listener.accept().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !matches!(connect_state(&stream), ConnectState::Connected) {
            assert!(std::time::Instant::now() < deadline, "never connected");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(
            stream.local_addr().unwrap().ip(),
            std::net::Ipv4Addr::LOCALHOST
        );
    }

    fn settled(stream: &TcpStream) -> ConnectState {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match connect_state(stream) {
                ConnectState::InProgress => {
                    assert!(std::time::Instant::now() < deadline, "never settled");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                settled => return settled,
            }
        }
    }

    /// A refused connect is a failure with the connect's error (read from
    /// SO_ERROR once getpeername says ENOTCONN), and a SYN the listener
    /// dropped leaves the connect in progress, not failed.
    #[test]
    fn tells_refused_and_unanswered_connects_apart() {
        let closed = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let std::net::SocketAddr::V4(nobody) = closed.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        drop(closed);
        let refused = connect(nobody, None).unwrap();
        match settled(&refused) {
            ConnectState::Failed(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            other => panic!("a closed port: {other:?}"),
        }

        // Backlog 0 holds one connection; while it waits to be accepted
        // the listener drops the next SYN (`sk_acceptq_is_full`), and the
        // client retransmits it only after its 1 s initial RTO.
        let listener = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        listener
            .bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        listener.listen(0).unwrap();
        let Some(SocketAddr::V4(full)) = listener.local_addr().unwrap().as_socket() else {
            unreachable!("bound to an IPv4 address")
        };
        let first = connect(full, None).unwrap();
        assert!(matches!(settled(&first), ConnectState::Connected));
        let second = connect(full, None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            matches!(connect_state(&second), ConnectState::InProgress),
            "{:?}",
            connect_state(&second)
        );
    }
}
