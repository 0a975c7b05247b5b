//! The bridge between workers and ordinary application threads.
//!
//! [`BridgeApp`] is an [`App`] that runs on each worker. For every
//! connection it accepts it makes a [`Stream`] and hands it to the
//! listener's accept queue, where a thread blocked in
//! [`Listener::accept`] picks it up. From then on bytes cross between the
//! worker and the thread in chunks of reusable buffers:
//!
//! ```text
//!   worker (BridgeApp)                           application thread (Stream)
//!   stack.recv_with ─► chunk ─► inbound channel ─► read()
//!          ▲                                          │ buffer returned
//!          └──────── inbound buffer pool ◄────────────┘ (+ Resume if stalled)
//!   stack.send ◄── outbound queue ◄── command channel ◄── write()
//!          │ buffer returned once copied into the send buffer
//!          └────────► outbound buffer pool ─► write() takes the next one
//! ```
//!
//! Flow control is the buffers themselves. Inbound, a connection owns at
//! most `inbound_chunks` buffers: when the thread holds them all the worker
//! stops reading from the engine, the receive buffer fills, and the
//! advertised window closes — the peer is flow-controlled by how fast the
//! thread reads. Outbound, a thread may have at most `outbound_chunks`
//! buffers in flight; `write` blocks until the worker has copied one into
//! the engine's send buffer and given it back, so a peer that stops
//! reading stops the writer. Buffers are allocated lazily up to those
//! bounds when a connection starts and then circulate, so the steady state
//! allocates nothing; the channels are bounded (no allocation per message)
//! and the worker never blocks on any of them.
//!
//! Active opens go the other way: [`StreamConnector::connect`] queues a
//! `Connect` for a worker (in turn), the worker opens the connection from
//! one of its client ports (`Ctx::connect`) and answers on the request's
//! own reply channel once the handshake completed (a [`Stream`]) or failed
//! (`ConnectionRefused`, `TimedOut`, ...).
//!
//! End of stream and errors travel on the inbound channel after the data,
//! so a thread sees them in order. The worker reacts to commands
//! (`Write`, `ShutdownWrite`, `Close`, `Resume`) in `on_tick`; threads ring
//! the worker's [`Doorbell`] after queueing one, so a sleeping worker
//! wakes at once.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::channel::{bounded, Receiver, Sender, TryRecvError, TrySendError};

use super::thread::{Listener, Stream, StreamConnector, StreamParts};
use super::{App, Ctx};
use crate::runtime::Doorbell;
use crate::tcp::{CloseReason, ConnId, Stack, TcpError};
use crate::wire::MacAddr;

/// Sizes of the bridge's queues and buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Bytes per buffer moved between a worker and a thread.
    pub chunk_size: usize,
    /// Received chunks a connection may have waiting for (or held by) its
    /// thread before the worker stops reading and the window closes.
    pub inbound_chunks: usize,
    /// Written chunks a connection may have on their way to the engine's
    /// send buffer before `write` blocks. With the default chunk size,
    /// 16 chunks match the engine's default 256 KiB send buffer.
    pub outbound_chunks: usize,
    /// Commands (writes, closes, ...) queued for one worker from all its
    /// threads; a thread sending into a full queue waits.
    pub command_queue: usize,
    /// Accepted connections waiting for `accept` per listening port. A
    /// connection that finds the queue full is reset.
    pub accept_backlog: usize,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            chunk_size: 16 * 1024,
            inbound_chunks: 8,
            outbound_chunks: 16,
            command_queue: 4096,
            accept_backlog: 1024,
        }
    }
}

impl BridgeConfig {
    /// Checks the sizes; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_size == 0
            || self.inbound_chunks == 0
            || self.outbound_chunks == 0
            || self.command_queue == 0
            || self.accept_backlog == 0
        {
            return Err("bridge chunk size, chunk counts, command queue and accept backlog must all be at least 1".into());
        }
        Ok(())
    }
}

/// What a thread asks of the worker that owns its connection.
pub(crate) enum BridgeCommand {
    /// Bytes to send (the buffer's whole length).
    Write { conn: ConnId, chunk: Vec<u8> },
    /// The thread gave back an inbound buffer while the worker was
    /// waiting for one: read from the engine again.
    Resume { conn: ConnId },
    /// FIN after everything written so far.
    ShutdownWrite { conn: ConnId },
    /// The thread dropped its stream. `taken` counts the data chunks it
    /// took off the inbound channel and `unread` says whether any of them
    /// was not read entirely; together they tell the worker whether data
    /// was discarded, which makes the close a reset (as in Linux).
    Close {
        conn: ConnId,
        taken: u64,
        unread: bool,
    },
    /// Open a connection and answer on the request's reply channel.
    Connect(ConnectRequest),
    /// The thread stopped waiting for connect request `id`: abort it if
    /// it is still opening (RFC 9293 §3.10.4: the TCB is deleted, no RST
    /// in SYN-SENT). The thread waits for the reply channel to
    /// close (or for a reply that crossed this command), so a stream is
    /// never left to the worker to drop (see `detach_queued`).
    CancelConnect { id: u64 },
}

/// A thread's active open.
pub(crate) struct ConnectRequest {
    /// Unique per connector, to cancel it.
    pub(crate) id: u64,
    /// The local address to connect from; None: any of the runtime's.
    pub(crate) from: Option<Ipv4Addr>,
    pub(crate) remote: SocketAddrV4,
    /// The next hop, when the thread resolved it; None: the worker's
    /// start-up table.
    pub(crate) next_hop: Option<MacAddr>,
    pub(crate) reply: Sender<io::Result<Stream>>,
}

/// What a worker delivers to a thread, in stream order.
pub(crate) enum Inbound {
    Data(Vec<u8>),
    /// The peer's FIN: reads return 0 from now on.
    Eof,
    /// The connection failed (reset, timed out, ...): one read reports it.
    Error(TcpError),
}

/// A thread's way to its connection's worker.
pub(crate) struct WorkerLink {
    commands: Sender<BridgeCommand>,
    doorbell: Arc<Doorbell>,
}

impl WorkerLink {
    /// Queues a command and wakes the worker; waits while the queue is
    /// full. Fails only when the worker has exited.
    pub(crate) fn send(&self, cmd: BridgeCommand) -> Result<(), ()> {
        self.commands.send(cmd).map_err(|_| ())?;
        self.doorbell.ring();
        Ok(())
    }
}

/// State both sides of one connection look at.
#[derive(Default)]
pub(crate) struct Shared {
    /// Set by the worker when it needs an inbound buffer back before it
    /// can read on; the thread that returns one sends `Resume`.
    pub(crate) want_resume: AtomicBool,
    /// The connection can carry no more writes (reset, timed out, closed
    /// by the runtime): `write` fails with `BrokenPipe`.
    pub(crate) write_dead: AtomicBool,
}

/// Per-port accept queue and counters, shared by every worker.
struct Port {
    port: u16,
    accept: Sender<Stream>,
    /// Lets a shutting-down worker empty the queue itself (see `detach_queued`).
    drain: Receiver<Stream>,
    dropped: Arc<AtomicU64>,
}

impl Clone for Port {
    fn clone(&self) -> Port {
        Port {
            port: self.port,
            accept: self.accept.clone(),
            drain: self.drain.clone(),
            dropped: self.dropped.clone(),
        }
    }
}

/// The control side's table of bridged listening ports: one accept queue
/// per port, shared by all workers, so a [`Listener`] sees connections
/// from every worker.
pub struct ListenerRegistry {
    ports: Vec<(SocketAddrV4, Port)>,
    config: BridgeConfig,
    /// Every worker's command link, in worker order, for connectors.
    links: Vec<Arc<WorkerLink>>,
}

impl ListenerRegistry {
    /// Accept queues for `addrs` (one per port), sized by `config`.
    pub fn new(addrs: &[SocketAddrV4], config: BridgeConfig) -> ListenerRegistry {
        let ports = addrs
            .iter()
            .map(|&addr| {
                let (accept, drain) = bounded(config.accept_backlog.max(1));
                let port = Port {
                    port: addr.port(),
                    accept,
                    drain,
                    dropped: Arc::new(AtomicU64::new(0)),
                };
                (addr, port)
            })
            .collect();
        ListenerRegistry {
            ports,
            config,
            links: Vec::new(),
        }
    }

    /// The bridge for one worker. `doorbell` must be the one the worker
    /// sleeps on ([`Worker::doorbell`](crate::runtime::Worker::doorbell)).
    pub fn app(&mut self, doorbell: Arc<Doorbell>) -> BridgeApp {
        let (tx, rx) = bounded(self.config.command_queue.max(1));
        let link = Arc::new(WorkerLink {
            commands: tx,
            doorbell,
        });
        self.links.push(link.clone());
        BridgeApp {
            link,
            commands: rx,
            ports: self.ports.iter().map(|(_, p)| p.clone()).collect(),
            streams: HashMap::new(),
            pending: HashMap::new(),
            config: self.config.clone(),
        }
    }

    /// Opens connections through the workers made so far by
    /// [`app`](Self::app), taking them in turn. Call it after every
    /// worker's app was made.
    pub fn connector(&self) -> StreamConnector {
        StreamConnector::new(self.links.clone())
    }

    /// The listeners, one per port. Consuming the registry drops its
    /// handles on the accept queues, so once every worker has stopped,
    /// `accept` reports that the runtime is gone instead of blocking.
    pub fn into_listeners(self) -> Vec<Listener> {
        self.ports
            .into_iter()
            .map(|(addr, p)| Listener::new(addr, p.drain, p.dropped))
            .collect()
    }
}

/// Commands handled per worker loop iteration at most, so a flood of
/// writes from threads cannot starve packet processing.
const MAX_COMMANDS_PER_TICK: usize = 1024;

/// The worker side of the bridge; make one per worker with
/// [`ListenerRegistry::app`].
pub struct BridgeApp {
    link: Arc<WorkerLink>,
    commands: Receiver<BridgeCommand>,
    ports: Vec<Port>,
    streams: HashMap<ConnId, WorkerStream>,
    /// Active opens in progress, answered when they complete or fail.
    pending: HashMap<ConnId, ConnectRequest>,
    config: BridgeConfig,
}

/// The error a thread's `connect` reports when the connection closed
/// before it was established.
fn connect_error(reason: CloseReason) -> io::Error {
    match reason {
        CloseReason::Refused => {
            io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused")
        }
        CloseReason::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timed out: no answer to the SYN retries",
        ),
        CloseReason::Reset => io::Error::new(io::ErrorKind::ConnectionReset, "connection reset"),
        CloseReason::Normal | CloseReason::Aborted => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the connection was aborted while opening",
        ),
    }
}

/// The worker's half of one connection.
struct WorkerStream {
    shared: Arc<Shared>,
    /// Data, then EOF or an error, to the thread.
    inbound: Sender<Inbound>,
    /// Inbound buffers the thread gave back.
    in_pool: Receiver<Vec<u8>>,
    /// Inbound buffers created so far (at most `inbound_chunks`).
    in_allocated: usize,
    /// A buffer taken but not filled (the engine had nothing to read).
    spare: Option<Vec<u8>>,
    /// A message the inbound channel had no room for; goes first.
    held: Option<Inbound>,
    /// Data chunks delivered to the inbound channel.
    sent_chunks: u64,
    /// Outbound buffers go back here once copied into the send buffer;
    /// `None` once the write side is dead, which wakes a blocked writer.
    out_pool: Option<Sender<Vec<u8>>>,
    /// Written chunks not yet (entirely) in the engine's send buffer,
    /// with how much of the front one is already there.
    outbound: VecDeque<Vec<u8>>,
    out_offset: usize,
    /// EOF or an error has not been delivered yet.
    reading: bool,
    /// The thread wants a FIN once `outbound` is empty.
    shutdown_pending: bool,
    /// The thread dropped its stream: close once `outbound` is empty.
    thread_gone: bool,
    /// The engine reported the connection CLOSED.
    dead: bool,
    /// We still hold the engine handle.
    open: bool,
}

impl BridgeApp {
    fn port(&self, port: u16) -> Option<&Port> {
        self.ports.iter().find(|p| p.port == port)
    }

    /// Lets go of the accept queues, first emptying them of streams nobody
    /// accepted. Those are detached, not dropped normally: a dropped
    /// stream sends `Close` to its worker, and this may be that worker's
    /// own thread, which must never wait on its own (possibly full)
    /// command queue. Their connections are closed by their workers'
    /// shutdown (every worker stops together), like all others.
    fn detach_queued(&mut self) {
        for p in self.ports.drain(..) {
            drop(p.accept);
            while let Ok(stream) = p.drain.try_recv() {
                stream.detach();
            }
        }
    }

    fn handle(&mut self, ctx: &mut Ctx<'_>, cmd: BridgeCommand) {
        let conn = match &cmd {
            BridgeCommand::Write { conn, .. }
            | BridgeCommand::Resume { conn }
            | BridgeCommand::ShutdownWrite { conn }
            | BridgeCommand::Close { conn, .. } => *conn,
            BridgeCommand::Connect(_) | BridgeCommand::CancelConnect { .. } => {
                return self.handle_connect(ctx, cmd);
            }
        };
        let stack = &mut *ctx.stack;
        let Some(s) = self.streams.get_mut(&conn) else {
            // Closed and forgotten already; a written buffer is freed here.
            return;
        };
        match cmd {
            BridgeCommand::Write { chunk, .. } => {
                if s.out_pool.is_some() {
                    s.outbound.push_back(chunk);
                    if s.outbound.len() == 1 {
                        s.pump_out(stack, conn);
                    }
                }
            }
            BridgeCommand::Resume { .. } => {
                s.pump_in(stack, conn, &self.config);
            }
            BridgeCommand::ShutdownWrite { .. } => {
                s.shutdown_pending = true;
                s.pump_out(stack, conn);
            }
            BridgeCommand::Close { taken, unread, .. } => {
                s.thread_gone = true;
                // Chunks sent after the thread emptied its channel were
                // discarded with it: unread data, just as `unread` is.
                if (unread || s.sent_chunks > taken) && s.open {
                    // Linux resets a connection closed with unread data
                    // and drops what was still queued for sending.
                    let _ = stack.abort(conn);
                    s.open = false;
                    s.kill_writes();
                }
            }
            BridgeCommand::Connect(_) | BridgeCommand::CancelConnect { .. } => {
                unreachable!("handled above")
            }
        }
        self.settle(stack, conn);
    }

    fn handle_connect(&mut self, ctx: &mut Ctx<'_>, cmd: BridgeCommand) {
        match cmd {
            BridgeCommand::Connect(req) => {
                let opened = match (req.next_hop, req.from) {
                    (Some(mac), from) => ctx.connect_via(from, req.remote, mac),
                    (None, Some(ip)) => ctx.connect_from(ip, req.remote),
                    (None, None) => ctx.connect(req.remote),
                };
                match opened {
                    Ok(conn) => {
                        self.pending.insert(conn, req);
                    }
                    // The thread waits on the channel, which has room.
                    Err(e) => {
                        let _ = req.reply.try_send(Err(e.into()));
                    }
                }
            }
            BridgeCommand::CancelConnect { id } => {
                let conn = self
                    .pending
                    .iter()
                    .find_map(|(&conn, req)| (req.id == id).then_some(conn));
                if let Some(conn) = conn {
                    // Dropping the request closes its reply channel, which
                    // tells the waiting thread that nothing will come.
                    self.pending.remove(&conn);
                    let _ = ctx.stack.abort(conn);
                }
            }
            _ => {}
        }
    }

    /// The two halves of a new connection's bridge.
    fn new_stream(
        &self,
        conn: ConnId,
        local: SocketAddrV4,
        peer: SocketAddrV4,
    ) -> (Stream, WorkerStream) {
        let config = &self.config;
        let (in_tx, in_rx) = bounded(config.inbound_chunks + 1);
        let (in_pool_tx, in_pool_rx) = bounded(config.inbound_chunks);
        let (out_pool_tx, out_pool_rx) = bounded(config.outbound_chunks);
        let shared = Arc::new(Shared::default());
        let stream = Stream::new(StreamParts {
            conn,
            link: self.link.clone(),
            shared: shared.clone(),
            local,
            peer,
            inbound: in_rx,
            in_pool: in_pool_tx,
            out_pool: out_pool_rx,
            chunk_size: config.chunk_size,
            outbound_chunks: config.outbound_chunks,
        });
        let worker = WorkerStream {
            shared,
            inbound: in_tx,
            in_pool: in_pool_rx,
            in_allocated: 0,
            spare: None,
            held: None,
            sent_chunks: 0,
            out_pool: Some(out_pool_tx),
            outbound: VecDeque::with_capacity(config.outbound_chunks),
            out_offset: 0,
            reading: true,
            shutdown_pending: false,
            thread_gone: false,
            dead: false,
            open: true,
        };
        (stream, worker)
    }

    /// Closes the engine handle and forgets the stream once nothing more
    /// can happen on it.
    fn settle(&mut self, stack: &mut Stack, conn: ConnId) {
        let Some(s) = self.streams.get_mut(&conn) else {
            return;
        };
        if s.open {
            let finished_dead = s.dead && (!s.reading || s.thread_gone);
            let finished_closing = s.thread_gone && s.outbound.is_empty();
            if finished_dead || finished_closing {
                // A dead connection is freed; a live one sends its FIN
                // after the queued data (or a RST if data arrived that
                // nobody will read) and finishes on its own.
                let _ = stack.close(conn);
                s.open = false;
                s.kill_writes();
            }
        }
        if !s.open && s.thread_gone {
            self.streams.remove(&conn);
        }
    }
}

impl WorkerStream {
    /// A buffer to read into, or `None` when all are with the thread: the
    /// thread then sends `Resume` when it gives one back.
    fn take_buffer(&mut self, config: &BridgeConfig) -> Option<Vec<u8>> {
        if let Some(b) = self.spare.take() {
            return Some(b);
        }
        if let Ok(b) = self.in_pool.try_recv() {
            return Some(b);
        }
        if self.in_allocated < config.inbound_chunks {
            self.in_allocated += 1;
            return Some(Vec::with_capacity(config.chunk_size));
        }
        self.shared.want_resume.store(true, Ordering::SeqCst);
        // Pairs with the fence in the thread's buffer return: either the
        // thread sees `want_resume`, or this look sees its buffer.
        fence(Ordering::SeqCst);
        self.in_pool.try_recv().ok()
    }

    /// Puts `msg` on the inbound channel, or holds it when the channel is
    /// full; false when the thread is gone or the message is held.
    fn deliver(&mut self, msg: Inbound) -> bool {
        let data = matches!(msg, Inbound::Data(_));
        let mut msg = match self.inbound.try_send(msg) {
            Ok(()) => {
                self.sent_chunks += data as u64;
                return true;
            }
            Err(TrySendError::Full(msg)) => msg,
            Err(TrySendError::Disconnected(_)) => {
                // The stream was dropped; its Close is on the way.
                self.reading = false;
                return false;
            }
        };
        // The channel has room for every buffer plus the final message, so
        // this is not expected; should it happen anyway, the channel holds
        // data, and the thread's next buffer return resumes us (the same
        // handshake as in `take_buffer`).
        self.shared.want_resume.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        match self.inbound.try_send(msg) {
            Ok(()) => {
                self.sent_chunks += data as u64;
                return true;
            }
            Err(TrySendError::Full(m)) => msg = m,
            Err(TrySendError::Disconnected(_)) => {
                self.reading = false;
                return false;
            }
        }
        self.held = Some(msg);
        false
    }

    /// Moves received bytes from the engine to the thread until the
    /// engine has none, the thread holds every buffer, or the stream ends.
    fn pump_in(&mut self, stack: &mut Stack, conn: ConnId, config: &BridgeConfig) {
        if let Some(msg) = self.held.take() {
            if !self.deliver(msg) {
                return;
            }
        }
        while self.reading && self.open && !self.thread_gone {
            let Some(mut buf) = self.take_buffer(config) else {
                return;
            };
            buf.clear();
            let cap = config.chunk_size;
            let r = stack.recv_with(conn, |a, b| {
                let n = a.len().min(cap);
                buf.extend_from_slice(&a[..n]);
                let m = b.len().min(cap - n);
                buf.extend_from_slice(&b[..m]);
                n + m
            });
            match r {
                Ok(0) => {
                    self.spare = Some(buf);
                    self.reading = false;
                    self.deliver(Inbound::Eof);
                }
                Ok(_) => {
                    if !self.deliver(Inbound::Data(buf)) {
                        return;
                    }
                }
                Err(TcpError::WouldBlock) => {
                    self.spare = Some(buf);
                    return;
                }
                Err(e) => {
                    self.spare = Some(buf);
                    self.reading = false;
                    // The write side is gone with the connection; marked
                    // before the error is delivered, so a thread that has
                    // read the error sees it.
                    self.kill_writes();
                    self.deliver(Inbound::Error(e));
                }
            }
        }
    }

    /// Copies queued writes into the engine's send buffer until it is
    /// full (a short send arms `Writable`, which resumes us) or the queue
    /// is empty; then carries out a pending shutdown.
    fn pump_out(&mut self, stack: &mut Stack, conn: ConnId) {
        if !self.open {
            return;
        }
        while let Some(front) = self.outbound.front() {
            match stack.send(conn, &front[self.out_offset..]) {
                Ok(n) => {
                    self.out_offset += n;
                    if self.out_offset < front.len() {
                        return;
                    }
                    self.out_offset = 0;
                    if let Some(buf) = self.outbound.pop_front() {
                        if let Some(pool) = &self.out_pool {
                            // Never full: it holds every outbound buffer.
                            let _ = pool.try_send(buf);
                        }
                    }
                }
                Err(TcpError::WouldBlock) => return,
                Err(_) => {
                    // Reset or closed under us: the error reaches the
                    // thread through the read side; writes now fail.
                    self.kill_writes();
                    return;
                }
            }
        }
        if self.shutdown_pending {
            self.shutdown_pending = false;
            let _ = stack.shutdown_write(conn);
        }
    }

    /// No more writes: queued ones are dropped and a writer blocked for a
    /// buffer wakes up to `BrokenPipe`.
    fn kill_writes(&mut self) {
        self.shared.write_dead.store(true, Ordering::Release);
        self.out_pool = None;
        self.outbound.clear();
        self.out_offset = 0;
        self.shutdown_pending = false;
    }
}

impl App for BridgeApp {
    fn on_accepted(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let (Ok(local), Ok(peer)) = (ctx.stack.local_addr(conn), ctx.stack.remote_addr(conn))
        else {
            return;
        };
        let Some(port) = self.port(local.port()) else {
            // A listener the bridge was not told about: nobody to serve it.
            let _ = ctx.stack.abort(conn);
            return;
        };
        let (stream, worker) = self.new_stream(conn, local, peer);
        if let Err(e) = port.accept.try_send(stream) {
            // Accept queue full (the application is not keeping up) or
            // no listener left: reset, as a full backlog would refuse.
            port.dropped.fetch_add(1, Ordering::Relaxed);
            e.into_inner().detach();
            let _ = ctx.stack.abort(conn);
            return;
        }
        self.streams.insert(conn, worker);
    }

    fn on_connected(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(req) = self.pending.remove(&conn) else {
            // Not ours (cancelled requests are aborted, never connect).
            let _ = ctx.stack.abort(conn);
            return;
        };
        let (Ok(local), Ok(peer)) = (ctx.stack.local_addr(conn), ctx.stack.remote_addr(conn))
        else {
            return;
        };
        let (stream, worker) = self.new_stream(conn, local, peer);
        match req.reply.try_send(Ok(stream)) {
            Ok(()) => {
                self.streams.insert(conn, worker);
                // Data that came with the handshake's end goes out at once.
                self.on_readable(ctx, conn);
            }
            Err(e) => {
                // The thread is gone without cancelling (it panicked).
                if let Ok(stream) = e.into_inner() {
                    stream.detach();
                }
                let _ = ctx.stack.abort(conn);
            }
        }
    }

    fn on_readable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        if let Some(s) = self.streams.get_mut(&conn) {
            s.pump_in(ctx.stack, conn, &self.config);
        }
        self.settle(ctx.stack, conn);
    }

    fn on_writable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        if let Some(s) = self.streams.get_mut(&conn) {
            s.pump_out(ctx.stack, conn);
        }
        self.settle(ctx.stack, conn);
    }

    fn on_closed(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, reason: CloseReason) {
        if let Some(req) = self.pending.remove(&conn) {
            let _ = req.reply.try_send(Err(connect_error(reason)));
            let _ = ctx.stack.close(conn);
            return;
        }
        let Some(s) = self.streams.get_mut(&conn) else {
            let _ = ctx.stack.close(conn);
            return;
        };
        s.dead = true;
        // Whatever is still readable goes to the thread first, then the
        // end of stream or the error (the engine reports it in `recv`).
        s.pump_in(ctx.stack, conn, &self.config);
        s.kill_writes();
        self.settle(ctx.stack, conn);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        for _ in 0..MAX_COMMANDS_PER_TICK {
            match self.commands.try_recv() {
                Ok(cmd) => self.handle(ctx, cmd),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
        // More are waiting: keep the worker from sleeping.
        self.link.doorbell.ring();
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        self.detach_queued();
        // Threads waiting in connect see the runtime stop; the worker
        // closes the half-open connections with all the others.
        self.pending.clear();
        for (&conn, s) in self.streams.iter_mut() {
            // What the thread wrote goes out before the FIN if it fits;
            // what arrived is passed on before the channel disconnects.
            s.pump_out(ctx.stack, conn);
            s.pump_in(ctx.stack, conn, &self.config);
            s.kill_writes();
        }
        // Dropping our ends disconnects the threads: reads end with
        // ConnectionAborted after the data, writes fail with BrokenPipe.
        // The worker then closes the engine handles itself.
        self.streams.clear();
    }
}

impl Drop for BridgeApp {
    fn drop(&mut self) {
        // Stops before (or without) a Shutdown command still must not
        // leave streams queued whose close would target this worker.
        self.detach_queued();
    }
}
