//! The `http` application on kernel sockets: byte-identical responses to
//! [`crate::app::http`], keep-alive and `Connection: close` alike.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use crate::app::http::{Reply, RequestStream, Responses};

/// What the kernel-socket server did.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelReport {
    pub accepted: u64,
    pub requests: u64,
}

struct Conn {
    stream: TcpStream,
    requests: RequestStream,
    /// Response being written: (reply, keep-alive, bytes written).
    output: Option<(Reply, bool, usize)>,
}

const LISTENER: Token = Token(usize::MAX);

fn listener(addr: SocketAddrV4) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    socket.listen(1024)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Serves until `stop` is set; `ready` runs once every thread listens.
pub fn serve_http(
    addr: SocketAddrV4,
    threads: usize,
    body_bytes: usize,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(),
) -> io::Result<KernelReport> {
    let mut listeners = Vec::with_capacity(threads.max(1));
    for _ in 0..threads.max(1) {
        listeners.push(listener(addr)?);
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let handles: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let stop = stop.clone();
            let core = cores.get(i % cores.len().max(1)).copied();
            std::thread::Builder::new()
                .name(format!("kernel-http-{i}"))
                .spawn(move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(c);
                    }
                    run_thread(l, body_bytes, &stop)
                })
        })
        .collect::<io::Result<_>>()?;
    ready();
    let mut report = KernelReport::default();
    for h in handles {
        let r = h
            .join()
            .map_err(|_| io::Error::other("a server thread panicked"))??;
        report.accepted += r.accepted;
        report.requests += r.requests;
    }
    Ok(report)
}

fn run_thread(
    mut listener: TcpListener,
    body_bytes: usize,
    stop: &AtomicBool,
) -> io::Result<KernelReport> {
    let responses = Responses::new(body_bytes);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    let mut report = KernelReport::default();
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            if ev.token() == LISTENER {
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
                            entry.insert(Conn {
                                stream,
                                requests: RequestStream::default(),
                                output: None,
                            });
                            report.accepted += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            if !drive(conn, &responses, &mut report.requests) {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
    Ok(report)
}

/// Reads, answers, writes; false when the connection is finished.
fn drive(conn: &mut Conn, responses: &Responses, requests: &mut u64) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some((reply, keep_alive, off)) = conn.output {
            let bytes = responses.bytes(reply, keep_alive);
            match conn.stream.write(&bytes[off..]) {
                Ok(n) if off + n == bytes.len() => {
                    conn.output = None;
                    if !keep_alive {
                        let _ = conn.stream.shutdown(Shutdown::Write);
                        return false;
                    }
                }
                Ok(n) => {
                    conn.output = Some((reply, keep_alive, off + n));
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        if let Some((reply, keep_alive)) = conn.requests.next_reply() {
            conn.output = Some((reply, keep_alive, 0));
            *requests += 1;
            continue;
        }
        match conn.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => conn.requests.input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}
