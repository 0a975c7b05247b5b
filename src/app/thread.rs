//! The thread side of the bridge: blocking, `std::net`-like listeners and
//! streams for ordinary application threads.
//!
//! A [`Listener`] hands out the connections every worker accepted on its
//! port; a [`Stream`] reads and writes like a `std::net::TcpStream`:
//!
//! * `read` blocks until data arrives; `Ok(0)` after the peer's FIN (and
//!   forever after); `ConnectionReset` once after a RST, `TimedOut` once
//!   when retransmissions gave up, then `Ok(0)`; `ConnectionAborted` when
//!   the runtime shut down; `WouldBlock` when a read timeout expires (as
//!   `SO_RCVTIMEO` does on Linux).
//! * `write` blocks until at least one byte could be queued for the
//!   worker, queues as much as the stream's outbound budget allows and
//!   returns how much that was; `BrokenPipe` after `shutdown(Write)`,
//!   after the connection failed, or once the runtime shut down.
//! * Dropping the last handle closes the connection: a FIN after the
//!   written data, or a RST when received data was never read (as Linux
//!   does).
//!
//! Like `std::net::TcpStream`, `&Stream` implements `Read` and `Write`, so
//! one thread can read while another writes (e.g. through
//! [`try_clone`](Stream::try_clone) or scoped threads).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam::channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::bridge::{BridgeCommand, ConnectRequest, Inbound, Shared, WorkerLink};
use crate::runtime::active_open::NextHopCache;
use crate::tcp::ConnId;

fn stopped() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the xdp-tcp runtime has stopped",
    )
}

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "broken pipe")
}

fn timed_out_wait() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "timeout expired")
}

/// Accepts the connections of one bridged port, from every worker.
/// Clones share the queue: several threads may accept concurrently.
#[derive(Clone)]
pub struct Listener {
    addr: SocketAddrV4,
    queue: Receiver<Stream>,
    dropped: Arc<AtomicU64>,
}

impl Listener {
    pub(crate) fn new(
        addr: SocketAddrV4,
        queue: Receiver<Stream>,
        dropped: Arc<AtomicU64>,
    ) -> Listener {
        Listener {
            addr,
            queue,
            dropped,
        }
    }

    /// Waits for the next established connection. Fails with
    /// `ConnectionAborted` once the runtime has stopped.
    pub fn accept(&self) -> io::Result<Stream> {
        self.queue.recv().map_err(|_| stopped())
    }

    /// As [`accept`](Self::accept), giving up with `WouldBlock` after
    /// `timeout`.
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<Stream> {
        self.queue.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => timed_out_wait(),
            RecvTimeoutError::Disconnected => stopped(),
        })
    }

    /// The address the listener serves.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.addr))
    }

    /// Connections reset because the accept queue was full (the
    /// application did not accept fast enough) or nobody listened.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.addr)
            .field("queued", &self.queue.len())
            .finish()
    }
}

/// Opens connections on the fast path from any thread, as
/// `std::net::TcpStream::connect` does: the calls block until the
/// handshake completed. Each connection is opened by the next worker in
/// turn, from a local port that worker owns. Clones share the workers.
///
/// From a [`ThreadedServer`](crate::runtime::ThreadedServer), a
/// destination's next hop is resolved on the calling thread the first
/// time (ARP through the kernel, up to 3 s), so any destination the
/// interface reaches may be connected to.
///
/// Errors: `ConnectionRefused` (the peer answered with RST), `TimedOut`
/// (the SYN retries went unanswered, or `connect_timeout` expired),
/// `HostUnreachable` (no route, or the next hop did not answer ARP),
/// `AddrNotAvailable` (every client port towards the destination is in
/// use), `InvalidInput` (the runtime has no client ports, the destination
/// has no known next hop (bridged workers without an interface), or
/// `connect_from` names an address that is not the runtime's), `ConnectionAborted` (the runtime stopped).
#[derive(Clone)]
pub struct StreamConnector {
    links: Arc<[Arc<WorkerLink>]>,
    next: Arc<AtomicUsize>,
    ids: Arc<AtomicU64>,
    /// Resolves next hops the workers were not given at start-up, on the
    /// connecting thread (workers make no syscalls).
    next_hops: Option<Arc<NextHopCache>>,
}

impl StreamConnector {
    pub(crate) fn new(links: Vec<Arc<WorkerLink>>) -> StreamConnector {
        StreamConnector {
            links: links.into(),
            next: Arc::new(AtomicUsize::new(0)),
            ids: Arc::new(AtomicU64::new(0)),
            next_hops: None,
        }
    }

    /// Resolves each destination's next hop through `cache` before asking
    /// a worker to connect, so destinations need not be listed at
    /// start-up.
    pub(crate) fn with_next_hops(mut self, cache: Arc<NextHopCache>) -> StreamConnector {
        self.next_hops = Some(cache);
        self
    }

    /// Connects to `remote` from any of the runtime's local addresses.
    pub fn connect(&self, remote: SocketAddrV4) -> io::Result<Stream> {
        self.open(None, remote, None)
    }

    /// Connects to `remote` from `local_ip`, one of the runtime's local
    /// addresses.
    pub fn connect_from(&self, local_ip: Ipv4Addr, remote: SocketAddrV4) -> io::Result<Stream> {
        self.open(Some(local_ip), remote, None)
    }

    /// As [`connect`](Self::connect), giving up with `TimedOut` after
    /// `timeout`. The half-open connection is then aborted: no more SYN
    /// retries, and (RFC 9293 §3.10.4, ABORT in SYN-SENT) no RST.
    pub fn connect_timeout(&self, remote: SocketAddrV4, timeout: Duration) -> io::Result<Stream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        self.open(None, remote, Some(timeout))
    }

    fn open(
        &self,
        from: Option<Ipv4Addr>,
        remote: SocketAddrV4,
        timeout: Option<Duration>,
    ) -> io::Result<Stream> {
        if self.links.is_empty() {
            return Err(stopped());
        }
        let next_hop = match &self.next_hops {
            Some(cache) => Some(
                cache
                    .next_hop(*remote.ip())
                    .map_err(|e| io::Error::new(io::ErrorKind::HostUnreachable, e))?,
            ),
            None => None,
        };
        let link = &self.links[self.next.fetch_add(1, Ordering::Relaxed) % self.links.len()];
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        // Room for the one answer, so the worker never waits to give it.
        let (reply, answer) = bounded(1);
        link.send(BridgeCommand::Connect(ConnectRequest {
            id,
            from,
            remote,
            next_hop,
            reply,
        }))
        .map_err(|_| stopped())?;
        let Some(timeout) = timeout else {
            return answer.recv().unwrap_or_else(|_| Err(stopped()));
        };
        match answer.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Disconnected) => Err(stopped()),
            Err(RecvTimeoutError::Timeout) => {
                // Wait for the worker to act on the cancel: it either drops
                // the request (the channel closes) or had already answered
                // (the answer is here). Either way the stream, if any,
                // ends up with this thread, never dropped by the worker.
                if link.send(BridgeCommand::CancelConnect { id }).is_err() {
                    return Err(stopped());
                }
                answer.recv().unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection timed out",
                    ))
                })
            }
        }
    }
}

impl fmt::Debug for StreamConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamConnector")
            .field("workers", &self.links.len())
            .finish()
    }
}

/// Everything a worker hands over to make the thread side of a stream.
pub(crate) struct StreamParts {
    pub conn: ConnId,
    pub link: Arc<WorkerLink>,
    pub shared: Arc<Shared>,
    pub local: SocketAddrV4,
    pub peer: SocketAddrV4,
    pub inbound: Receiver<Inbound>,
    pub in_pool: Sender<Vec<u8>>,
    pub out_pool: Receiver<Vec<u8>>,
    pub chunk_size: usize,
    pub outbound_chunks: usize,
}

/// A connection served by a worker, used from any thread. See the module
/// documentation for the error conventions.
pub struct Stream {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnId,
    link: Arc<WorkerLink>,
    shared: Arc<Shared>,
    local: SocketAddrV4,
    peer: SocketAddrV4,
    read: Mutex<ReadHalf>,
    write: Mutex<WriteHalf>,
    /// shutdown(Read) was called: reads return 0.
    read_shut: AtomicBool,
    /// Timeouts in nanoseconds, 0 for none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// Never handed to the application: dropping sends no close (the
    /// worker reset the connection itself).
    detached: AtomicBool,
}

struct ReadHalf {
    inbound: Receiver<Inbound>,
    in_pool: Sender<Vec<u8>>,
    /// The chunk being read and how much of it was read.
    current: Option<Vec<u8>>,
    pos: usize,
    /// Data chunks taken off the channel (see `BridgeCommand::Close`).
    taken: u64,
    /// An error to report on the next read (data came first).
    pending: Option<io::Error>,
    /// EOF or an error was delivered: reads return 0.
    done: bool,
}

struct WriteHalf {
    out_pool: Receiver<Vec<u8>>,
    /// Outbound buffers created so far, at most `max`.
    allocated: usize,
    max: usize,
    chunk_size: usize,
    /// shutdown(Write) was called.
    shut: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another thread's read or write leaves the halves
    // consistent (every update is a single assignment), so go on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn to_nanos(d: Option<Duration>) -> io::Result<u64> {
    match d {
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        )),
        Some(d) => Ok(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        None => Ok(0),
    }
}

fn from_nanos(n: u64) -> Option<Duration> {
    (n != 0).then(|| Duration::from_nanos(n))
}

impl Stream {
    pub(crate) fn new(p: StreamParts) -> Stream {
        Stream {
            inner: Arc::new(Inner {
                conn: p.conn,
                link: p.link,
                shared: p.shared,
                local: p.local,
                peer: p.peer,
                read: Mutex::new(ReadHalf {
                    inbound: p.inbound,
                    in_pool: p.in_pool,
                    current: None,
                    pos: 0,
                    taken: 0,
                    pending: None,
                    done: false,
                }),
                write: Mutex::new(WriteHalf {
                    out_pool: p.out_pool,
                    allocated: 0,
                    max: p.outbound_chunks.max(1),
                    chunk_size: p.chunk_size.max(1),
                    shut: false,
                }),
                read_shut: AtomicBool::new(false),
                read_timeout: AtomicU64::new(0),
                write_timeout: AtomicU64::new(0),
                detached: AtomicBool::new(false),
            }),
        }
    }

    /// The worker resets the connection itself (accept queue full, or
    /// the runtime stopping): dropping this stream must not send a close,
    /// because the worker may be the thread dropping it.
    pub(crate) fn detach(self) {
        self.inner.detached.store(true, Ordering::Relaxed);
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.peer))
    }

    /// Our address of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.local))
    }

    /// `Write`: no more writes (they fail with `BrokenPipe`); the worker
    /// sends a FIN after everything written before. `Read`: reads return
    /// `Ok(0)` from now on (a read already blocked keeps waiting for
    /// data); data that arrives is not read, so closing later resets the
    /// connection. Fails with `NotConnected` when the connection already
    /// failed.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.inner.read_shut.store(true, Ordering::Release);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let mut w = lock(&self.inner.write);
            if !w.shut {
                if self.inner.shared.write_dead.load(Ordering::Acquire) {
                    return Err(io::ErrorKind::NotConnected.into());
                }
                w.shut = true;
                let conn = self.inner.conn;
                self.inner
                    .link
                    .send(BridgeCommand::ShutdownWrite { conn })
                    .map_err(|()| stopped())?;
            }
        }
        Ok(())
    }

    /// How long `read` waits for data before failing with `WouldBlock`;
    /// `None` waits forever. A zero duration is refused, as by std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner
            .read_timeout
            .store(to_nanos(timeout)?, Ordering::Relaxed);
        Ok(())
    }

    /// How long `write` waits for buffer space before failing with
    /// `WouldBlock`; `None` waits forever.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner
            .write_timeout
            .store(to_nanos(timeout)?, Ordering::Relaxed);
        Ok(())
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(from_nanos(self.inner.read_timeout.load(Ordering::Relaxed)))
    }

    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(from_nanos(self.inner.write_timeout.load(Ordering::Relaxed)))
    }

    /// Another handle to the same connection; the connection closes when
    /// the last handle is dropped.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(Stream {
            inner: self.inner.clone(),
        })
    }

    /// Closes this handle, as dropping it does (the connection closes
    /// with the last handle). Closing never waits for the peer: the
    /// worker finishes the close in the background.
    pub fn close(self) {
        drop(self);
    }
}

impl Inner {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut guard = lock(&self.read);
        let r = &mut *guard;
        if self.read_shut.load(Ordering::Acquire) {
            return Ok(0);
        }
        if let Some(e) = r.pending.take() {
            return Err(e);
        }
        let timeout = from_nanos(self.read_timeout.load(Ordering::Relaxed));
        let mut n = 0;
        loop {
            if let Some(chunk) = &r.current {
                let k = (chunk.len() - r.pos).min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&chunk[r.pos..r.pos + k]);
                r.pos += k;
                n += k;
                if r.pos == chunk.len() {
                    if let Some(chunk) = r.current.take() {
                        self.give_back(&r.in_pool, chunk);
                    }
                }
                if n == buf.len() {
                    return Ok(n);
                }
            }
            if r.done {
                return Ok(n);
            }
            // Block only for the first byte; after that take what is
            // already there and return.
            let msg = if n > 0 {
                match r.inbound.try_recv() {
                    Ok(m) => Ok(m),
                    Err(TryRecvError::Empty) => return Ok(n),
                    Err(TryRecvError::Disconnected) => Err(()),
                }
            } else {
                match timeout {
                    None => r.inbound.recv().map_err(|_| ()),
                    Some(t) => match r.inbound.recv_timeout(t) {
                        Ok(m) => Ok(m),
                        Err(RecvTimeoutError::Timeout) => return Err(timed_out_wait()),
                        Err(RecvTimeoutError::Disconnected) => Err(()),
                    },
                }
            };
            let err = match msg {
                Ok(Inbound::Data(chunk)) => {
                    r.taken += 1;
                    r.current = Some(chunk);
                    r.pos = 0;
                    continue;
                }
                Ok(Inbound::Eof) => {
                    r.done = true;
                    return Ok(n);
                }
                Ok(Inbound::Error(e)) => io::Error::from(e),
                // The worker dropped its end without EOF or error: the
                // runtime shut down.
                Err(()) => stopped(),
            };
            r.done = true;
            if n > 0 {
                r.pending = Some(err);
                return Ok(n);
            }
            return Err(err);
        }
    }

    /// Returns a read buffer to the worker, and resumes the worker if it
    /// ran out of buffers.
    fn give_back(&self, pool: &Sender<Vec<u8>>, chunk: Vec<u8>) {
        // Never full: the pool has room for every inbound buffer.
        let _ = pool.try_send(chunk);
        // Pairs with the worker's fence in `take_buffer`: either it sees
        // this buffer or we see its `want_resume`.
        fence(Ordering::SeqCst);
        if self.shared.want_resume.load(Ordering::SeqCst)
            && self.shared.want_resume.swap(false, Ordering::SeqCst)
        {
            // A worker that has exited needs no resuming.
            let _ = self.link.send(BridgeCommand::Resume { conn: self.conn });
        }
    }

    fn write(&self, data: &[u8]) -> io::Result<usize> {
        let mut guard = lock(&self.write);
        let w = &mut *guard;
        if w.shut || self.shared.write_dead.load(Ordering::Acquire) {
            return Err(broken_pipe());
        }
        if data.is_empty() {
            return Ok(0);
        }
        let timeout = from_nanos(self.write_timeout.load(Ordering::Relaxed));
        let mut n = 0;
        while n < data.len() {
            let buf = match w.out_pool.try_recv() {
                Ok(b) => b,
                Err(TryRecvError::Empty) if w.allocated < w.max => {
                    w.allocated += 1;
                    Vec::with_capacity(w.chunk_size)
                }
                // Budget spent: wait for the worker to give one back, but
                // only for the first byte.
                Err(TryRecvError::Empty) if n == 0 => match timeout {
                    None => w.out_pool.recv().map_err(|_| broken_pipe())?,
                    Some(t) => w.out_pool.recv_timeout(t).map_err(|e| match e {
                        RecvTimeoutError::Timeout => timed_out_wait(),
                        RecvTimeoutError::Disconnected => broken_pipe(),
                    })?,
                },
                Err(TryRecvError::Empty) => break,
                // The worker let go of the write side: the connection died.
                Err(TryRecvError::Disconnected) if n == 0 => return Err(broken_pipe()),
                Err(TryRecvError::Disconnected) => break,
            };
            if self.shared.write_dead.load(Ordering::Acquire) {
                return if n == 0 { Err(broken_pipe()) } else { Ok(n) };
            }
            let mut buf = buf;
            buf.clear();
            let k = (data.len() - n).min(w.chunk_size);
            buf.extend_from_slice(&data[n..n + k]);
            let cmd = BridgeCommand::Write {
                conn: self.conn,
                chunk: buf,
            };
            if self.link.send(cmd).is_err() {
                return if n == 0 { Err(stopped()) } else { Ok(n) };
            }
            n += k;
        }
        Ok(n)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.detached.load(Ordering::Relaxed) {
            return;
        }
        let r = self.read.get_mut().unwrap_or_else(|e| e.into_inner());
        // Whatever is still queued was never read: count it, so the worker
        // can tell a clean close from one that discards data.
        let mut unread = r.current.as_ref().is_some_and(|c| r.pos < c.len());
        while let Ok(msg) = r.inbound.try_recv() {
            if let Inbound::Data(_) = msg {
                r.taken += 1;
                unread = true;
            }
        }
        let cmd = BridgeCommand::Close {
            conn: self.conn,
            taken: r.taken,
            unread,
        };
        // A worker that has exited has closed everything already.
        let _ = self.link.send(cmd);
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    /// A no-op: `write` has handed its bytes to the worker by the time it
    /// returns, and the worker sends them without being asked.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    /// A no-op; see `impl Write for &Stream`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("local", &self.inner.local)
            .field("peer", &self.inner.peer)
            .finish()
    }
}
