//! The event loop every kernel-socket app runs in: one thread per core,
//! each with its own SO_REUSEPORT listener (the kernel spreads incoming
//! connections over them), epoll through mio, edge-triggered.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use super::apps::{Discard, Echo, Http, Source};
use super::edge_read::EdgeRead;
use super::handler::{KernelApp, KernelReport, Next};

/// Which application a kernel server runs, with its options (the same
/// options as [`crate::app::BuiltinApp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelAppKind {
    Echo,
    Discard,
    Source { bytes: usize },
    Http { body_bytes: usize },
}

/// How a kernel server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelServerConfig {
    /// Port 0 picks a free port (one thread only: SO_REUSEPORT listeners
    /// must share a port); `ready` is told which.
    pub addr: SocketAddrV4,
    pub threads: usize,
    /// Cores to pin thread `i` to (`cores[i % len]`); None pins to all
    /// cores in order.
    pub cores: Option<Vec<usize>>,
    /// Listen backlog of each thread's listener (capped by somaxconn).
    pub backlog: i32,
    /// Never sleep in epoll: wait with a zero timeout in a loop, as the
    /// fast path's `--busy-poll` does, for comparing polling with
    /// polling (each thread keeps its core fully busy).
    pub busy_poll: bool,
}

impl KernelServerConfig {
    pub fn new(addr: SocketAddrV4, threads: usize) -> KernelServerConfig {
        KernelServerConfig {
            addr,
            threads,
            cores: None,
            backlog: 4096,
            busy_poll: false,
        }
    }
}

const LISTENER: Token = Token(usize::MAX);

fn listener(addr: SocketAddrV4, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Serves `app` until `stop` is set; `ready` runs with the bound address
/// once every thread listens. Returns the threads' counters added up.
pub fn serve(
    config: &KernelServerConfig,
    app: KernelAppKind,
    stop: &AtomicBool,
    ready: impl FnOnce(SocketAddrV4),
) -> io::Result<KernelReport> {
    match app {
        KernelAppKind::Echo => serve_app(config, Echo::new, stop, ready),
        KernelAppKind::Discard => serve_app(config, Discard::new, stop, ready),
        KernelAppKind::Source { bytes } => serve_app(config, || Source::new(bytes), stop, ready),
        KernelAppKind::Http { body_bytes } => {
            serve_app(config, || Http::new(body_bytes), stop, ready)
        }
    }
}

/// [`serve`] for any [`KernelApp`]: `make_app` builds one per thread.
pub fn serve_app<A: KernelApp>(
    config: &KernelServerConfig,
    make_app: impl Fn() -> A + Sync,
    stop: &AtomicBool,
    ready: impl FnOnce(SocketAddrV4),
) -> io::Result<KernelReport> {
    let threads = config.threads.max(1);
    if threads > 1 && config.addr.port() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "several threads need a fixed port (SO_REUSEPORT listeners share it)",
        ));
    }
    let cores = super::cores_for(config.cores.as_deref())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut listeners = Vec::with_capacity(threads);
    for _ in 0..threads {
        listeners.push(listener(config.addr, config.backlog)?);
    }
    let bound = match listeners[0].local_addr()? {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!("bound to an IPv4 address"),
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = listeners
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
                let make_app = &make_app;
                std::thread::Builder::new()
                    .name(format!("kernel-serve-{i}"))
                    .spawn_scoped(scope, move || {
                        if let Some(c) = core {
                            core_affinity::set_for_current(c);
                        }
                        run_thread(l, make_app(), stop, config.busy_poll)
                    })
            })
            .collect::<io::Result<_>>()?;
        ready(bound);
        let mut report = KernelReport::default();
        for h in handles {
            let r = h
                .join()
                .map_err(|_| io::Error::other("a server thread panicked"))??;
            report.add(&r);
        }
        Ok(report)
    })
}

struct Conn<C> {
    stream: TcpStream,
    state: C,
}

fn run_thread<A: KernelApp>(
    mut listener: TcpListener,
    mut app: A,
    stop: &AtomicBool,
    busy_poll: bool,
) -> io::Result<KernelReport> {
    // Sleeping: wake at least every 50 ms to notice `stop`.
    let timeout = if busy_poll {
        Duration::ZERO
    } else {
        Duration::from_millis(50)
    };
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn<A::Conn>> = Slab::new();
    let mut report = KernelReport::default();
    while !stop.load(Ordering::Relaxed) {
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if events.is_empty() {
            report.empty_polls += 1;
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept_all(&listener, &poll, &mut app, &mut conns, &mut report)?;
                continue;
            }
            let key = ev.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let mut io = EdgeRead::for_event(&mut conn.stream, ev.into());
            if app.drive(&mut conn.state, &mut io, &mut report) == Next::Close {
                super::close_registered(conns.remove(key).stream);
            }
        }
    }
    Ok(report)
}

/// Accepts until nothing is pending (edge-triggered), driving each new
/// connection at once (a `source` starts sending without being asked).
fn accept_all<A: KernelApp>(
    listener: &TcpListener,
    poll: &Poll,
    app: &mut A,
    conns: &mut Slab<Conn<A::Conn>>,
    report: &mut KernelReport,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nodelay(true);
                let entry = conns.vacant_entry();
                let token = Token(entry.key());
                poll.registry().register(
                    &mut stream,
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                report.accepted += 1;
                let conn = entry.insert(Conn {
                    stream,
                    state: app.accept(),
                });
                // Writes only: the registration's first event reports
                // what there is to read (see `EdgeRead::registered`).
                let mut io = EdgeRead::registered(&mut conn.stream);
                if app.drive(&mut conn.state, &mut io, report) == Next::Close {
                    super::close_registered(conns.remove(token.0).stream);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // The connection died in the queue, or a signal: try the next.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                // EMFILE / ENFILE / ENOBUFS: the connection stays queued;
                // the next arrival wakes the listener again.
                report.accept_errors += 1;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::Ipv4Addr;
    use std::sync::mpsc;

    /// Runs `app` on a loopback port for `client`, then stops the server.
    fn with_server(app: KernelAppKind, client: impl FnOnce(SocketAddrV4)) -> KernelReport {
        with_config(app, false, client)
    }

    fn with_config(
        app: KernelAppKind,
        busy_poll: bool,
        client: impl FnOnce(SocketAddrV4),
    ) -> KernelReport {
        let stop = AtomicBool::new(false);
        let mut config = KernelServerConfig::new(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), 1);
        config.busy_poll = busy_poll;
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let server = s.spawn(|| serve(&config, app, &stop, move |a| tx.send(a).unwrap()));
            let addr = rx.recv().unwrap();
            // A failing client still stops the server (else the scope
            // would wait for it forever), then fails the test.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client(addr)));
            stop.store(true, Ordering::Relaxed);
            let report = server.join().unwrap().unwrap();
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
            report
        })
    }

    #[test]
    fn echo_and_source_over_loopback() {
        let report = with_server(KernelAppKind::Echo, |addr| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
            let writer = {
                let mut w = s.try_clone().unwrap();
                let data = data.clone();
                std::thread::spawn(move || {
                    w.write_all(&data).unwrap();
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                })
            };
            let mut back = Vec::new();
            s.read_to_end(&mut back).unwrap();
            writer.join().unwrap();
            assert!(back == data, "echoed bytes differ");
        });
        assert_eq!(report.accepted, 1);
        assert_eq!(report.bytes_sent, 300_000);
        let report = with_server(KernelAppKind::Source { bytes: 100_000 }, |addr| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            let expect: Vec<u8> = (0..100_000u64)
                .map(crate::app::source::pattern_byte)
                .collect();
            assert!(got == expect, "source pattern differs");
        });
        assert_eq!(report.bytes_sent, 100_000);
    }

    /// A request and the client's FIN sent back to back often reach the
    /// server in one event, whose short read returns the data and not yet
    /// the end; with nothing written back (discard), no later event comes
    /// to read it. [`EdgeRead`] trusts no short read after `EPOLLRDHUP`,
    /// so the server sees every FIN and closes: the client's read ends
    /// (trusting the short read there too, a connection of the 300 hung
    /// within the first seconds: checked). Every other connection sends
    /// at once, so the request and FIN often wait in the socket before it
    /// is accepted: the server reads nothing at the accept
    /// ([`EdgeRead::registered`]) and must find them through the event
    /// the registration queues. Then echoes in pieces with pauses between
    /// them: each piece is read at its own event.
    #[test]
    fn requests_ending_in_a_fin_and_requests_in_pieces_are_all_served() {
        let report = with_server(KernelAppKind::Discard, |addr| {
            for i in 0..300u32 {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                if i % 2 == 1 {
                    // Accepted meanwhile: what follows arrives as events.
                    std::thread::sleep(Duration::from_millis(1));
                }
                s.write_all(format!("request {i}").as_bytes()).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut back = Vec::new();
                s.read_to_end(&mut back)
                    .unwrap_or_else(|e| panic!("connection {i}: the server did not close: {e}"));
                assert!(back.is_empty());
            }
        });
        assert_eq!(report.accepted, 300);
        assert_eq!(
            report.bytes_received,
            (0..300)
                .map(|i| format!("request {i}").len() as u64)
                .sum::<u64>()
        );
        let report = with_server(KernelAppKind::Echo, |addr| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            let mut back = [0u8; 4];
            for piece in [b"abcd", b"efgh", b"ijkl"] {
                s.write_all(piece).unwrap();
                s.read_exact(&mut back).unwrap();
                assert_eq!(&back, piece);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        assert_eq!(report.bytes_sent, 12);
    }

    /// An echo round trip, then `idle` with nothing to do.
    fn echo_then_idle(addr: SocketAddrV4, idle: Duration) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping");
        std::thread::sleep(idle);
    }

    #[test]
    fn a_busy_polling_server_never_sleeps_in_epoll_and_still_serves() {
        let idle = Duration::from_millis(200);
        let busy = with_config(KernelAppKind::Echo, true, |a| echo_then_idle(a, idle));
        assert_eq!((busy.accepted, busy.bytes_sent), (1, 4));
        // Zero-timeout waits in a loop: thousands in 200 ms.
        assert!(busy.empty_polls > 100, "{busy:?}");
        // A sleeping server waits 50 ms at a time: a handful.
        let sleeping = with_config(KernelAppKind::Echo, false, |a| echo_then_idle(a, idle));
        assert_eq!((sleeping.accepted, sleeping.bytes_sent), (1, 4));
        assert!(sleeping.empty_polls <= 10, "{sleeping:?}");
    }
}
