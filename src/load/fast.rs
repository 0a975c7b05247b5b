//! The load generator on the fast path: a [`LoadApp`] on every worker of
//! an [`AppRuntime`](crate::runtime::AppRuntime) opens its share of the
//! connections and runs the [`LoadSpec`] with the shared core
//! ([`RequestStream`], [`Pacer`], [`LoadRecorder`]), exactly as the
//! kernel client does; the per-worker recorders merge into one
//! [`LoadReport`] with stack `"fast"`.
//!
//! Phases, on one clock shared by all workers (ns since the run began):
//! idle connections first (all established → the control side prints
//! `idle-ready N`), then the workload starts everywhere at once: warm-up,
//! then the measured window; at its end each worker hands its recorder
//! over and stops issuing requests.
//!
//! No allocation per request in steady state: connection slots, their
//! response framing and the receive path are reused; requests are sent
//! from one buffer per worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ahash::RandomState;

use crate::app::source::pattern_byte;
use crate::app::{App, Ctx};
use crate::load::{LoadRecorder, LoadReport, LoadSpec, Pacer, RequestStream, Workload};
use crate::runtime::{start_app_runtime, ClientConfig, FastPathConfig, ServeError};
use crate::tcp::{CloseReason, ConnId, TcpError};

/// Handshakes in progress per worker at most: bursts of SYNs beyond the
/// rings would only be dropped and retried a second later.
const MAX_HANDSHAKES: usize = 128;
/// Bytes written per `send` call in bulk-send.
const BULK_CHUNK: usize = 64 * 1024;
/// The workload starts this long after the last idle connection is up,
/// so every worker sees the same start time.
const START_DELAY_NS: u64 = 20_000_000;
/// After the run, connections are closed `CLOSE_BATCH` per
/// `CLOSE_INTERVAL_NS` (64 per 0.5 ms: 128k/s).
const CLOSE_BATCH: usize = 64;
const CLOSE_INTERVAL_NS: u64 = 500_000;
/// How long the control side waits for the workers to close everything.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// With no connection established this long after the start, the target
/// is unreachable.
const UNREACHABLE_AFTER: Duration = Duration::from_secs(10);
/// How often the control side looks at the workers while the measured
/// run goes on. Under `taskset` (as the bench runs the client) it shares
/// the worker's core, and each look preempts the worker: looking every
/// 5 ms was 200 stalls a second in the measurement, on a VM whose own
/// floor is about 300 (docs/PERFORMANCE.md, "Session 13").
const RUN_TICK: Duration = Duration::from_millis(100);

/// State shared by the control side and every worker's [`LoadApp`].
struct Shared {
    /// The run's clock: wall time since this instant (a runtime's workers
    /// share it), or None for the engine's clock (`Ctx::now`, virtual
    /// time in a simulator) of a standalone app.
    origin: Option<Instant>,
    /// When the workload starts (ns); `u64::MAX` until the idle
    /// connections are up.
    start_ns: AtomicU64,
    idle_established: AtomicUsize,
    established_ever: AtomicU64,
    failed_ever: AtomicU64,
    /// A response that did not match the request (echo) or the pattern
    /// (source).
    integrity_errors: AtomicU64,
    /// Each worker's recorder once its measured window ended.
    recorders: Mutex<Vec<Option<LoadRecorder>>>,
    /// Workers that closed all their connections after the run.
    workers_closed: AtomicUsize,
}

impl Shared {
    /// Now on the run's clock (ns); `ctx` is the caller's context.
    fn now_ns(&self, ctx: &Ctx<'_>) -> u64 {
        match self.origin {
            Some(origin) => origin.elapsed().as_nanos() as u64,
            None => ctx.now.total_micros() * 1000,
        }
    }

    /// Now on the wall clock of a runtime's run (the control side).
    fn wall_ns(&self) -> u64 {
        self.origin.map_or(0, |o| o.elapsed().as_nanos() as u64)
    }
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Idle,
    Load,
}

/// One connection of a worker.
struct Slot {
    conn: Option<ConnId>,
    role: Role,
    established: bool,
    stream: RequestStream,
    /// Bytes of the request being written not yet accepted by the stack.
    tail: usize,
    tail_intended: u64,
    /// Offset in the response stream (echo / source verification).
    received: u64,
    pacer: Option<Pacer>,
    /// `short`: when the current exchange was meant to start (ns), and
    /// what its latency is measured from, handshake included, as the
    /// kernel client measures it: the connect (closed loop) or the
    /// exchange's scheduled time (open loop: the connect is made then,
    /// so a late start counts against the latency, as in wrk2).
    exchange_intended: u64,
    /// Open-loop `short`: a scheduled exchange whose connect could not
    /// start yet (handshake cap, every port busy): it starts first, late.
    start_due: Option<u64>,
    /// The last connect found every local port busy; the wait is counted
    /// once ([`LoadRecorder::port_wait`]), not per retry.
    waiting_for_port: bool,
}

/// What an attempt to open a connection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Started,
    /// No handshake may start now (cap reached, every port busy): retry.
    NotNow,
    /// The connect failed (counted).
    Failed,
}

/// The per-worker load application.
pub struct LoadApp {
    spec: LoadSpec,
    shared: Arc<Shared>,
    worker: usize,
    /// This worker's share of idle and load connections, and the global
    /// index of its first load connection.
    idle_share: usize,
    load_share: usize,
    first_index: usize,
    request: Vec<u8>,
    bulk: Vec<u8>,
    slots: Vec<Slot>,
    /// Slot of each open connection. The keys are our own handles, never
    /// a peer's choice: ahash, since SipHash's flooding resistance buys
    /// nothing here and cost 2-4 % of a short connection's client time.
    by_conn: HashMap<ConnId, usize, RandomState>,
    free: Vec<usize>,
    handshakes: usize,
    idle_opened: usize,
    load_opened: bool,
    recorder: Option<LoadRecorder>,
    finished: bool,
    /// Slots waiting for a new connection (short workload, failures).
    reopen: Vec<usize>,
    /// After the run: slots below this index may still need closing.
    close_cursor: usize,
    next_close_ns: u64,
    closed_all: bool,
}

impl LoadApp {
    fn new(spec: &LoadSpec, shared: Arc<Shared>, worker: usize, workers: usize) -> LoadApp {
        let share = |total: usize| total / workers + usize::from(worker < total % workers);
        let first_index = (0..worker)
            .map(|w| spec.connections / workers + usize::from(w < spec.connections % workers))
            .sum();
        let load_share = share(spec.connections);
        let idle_share = share(spec.idle_connections);
        let capacity = load_share + idle_share;
        let by_conn = HashMap::with_capacity_and_hasher(capacity * 2, RandomState::new());
        LoadApp {
            request: spec.request(),
            bulk: (0..BULK_CHUNK).map(|i| b'a' + (i % 26) as u8).collect(),
            spec: spec.clone(),
            shared,
            worker,
            idle_share,
            load_share,
            first_index,
            slots: Vec::with_capacity(capacity),
            by_conn,
            free: Vec::with_capacity(capacity),
            handshakes: 0,
            idle_opened: 0,
            load_opened: false,
            recorder: None,
            finished: false,
            reopen: Vec::with_capacity(capacity),
            close_cursor: 0,
            next_close_ns: 0,
            closed_all: false,
        }
    }

    fn new_slot(&mut self, role: Role) -> usize {
        let slot = Slot {
            conn: None,
            role,
            established: false,
            stream: RequestStream::new(self.spec.framing()),
            tail: 0,
            tail_intended: 0,
            received: 0,
            pacer: None,
            exchange_intended: 0,
            start_due: None,
            waiting_for_port: false,
        };
        self.slots.push(slot);
        self.slots.len() - 1
    }

    /// Opens a connection for slot `i`; false when no handshake may start
    /// now (try again next tick) or the connect failed (counted).
    fn open(&mut self, ctx: &mut Ctx<'_>, i: usize) -> bool {
        self.try_open(ctx, i) == Open::Started
    }

    fn try_open(&mut self, ctx: &mut Ctx<'_>, i: usize) -> Open {
        if self.handshakes >= MAX_HANDSHAKES {
            return Open::NotNow;
        }
        match ctx.connect(self.spec.target) {
            Ok(conn) => {
                let opened_ns = self.shared.now_ns(ctx);
                let s = &mut self.slots[i];
                s.conn = Some(conn);
                s.exchange_intended = opened_ns;
                s.established = false;
                s.tail = 0;
                s.received = 0;
                s.waiting_for_port = false;
                if s.stream.in_flight() > 0 {
                    // Left over from a connection that failed mid-response.
                    s.stream = RequestStream::new(self.spec.framing());
                }
                self.by_conn.insert(conn, i);
                self.handshakes += 1;
                Open::Started
            }
            Err(TcpError::AddrNotAvailable) => {
                // Every owned port to the target is busy (TIME-WAIT tuples
                // free up after 1 s): the client's own limit, not the
                // server's failure; retried next tick, counted apart.
                if !std::mem::replace(&mut self.slots[i].waiting_for_port, true) {
                    let now = self.shared.now_ns(ctx);
                    if let Some(r) = &mut self.recorder {
                        r.port_wait(now);
                    }
                }
                Open::NotNow
            }
            Err(_) => {
                let now = self.shared.now_ns(ctx);
                self.connect_failed(now);
                Open::Failed
            }
        }
    }

    /// Open-loop `short`: starts slot `i`'s next scheduled exchange if it
    /// has none running and one is due: the connect goes out at the
    /// intended time (or, when late, now), and the exchange is timed from
    /// the intended time, as the kernel client does. A slot runs one
    /// exchange at a time; those due meanwhile wait on its pacer, each
    /// keeping its own intended time.
    fn start_scheduled(&mut self, ctx: &mut Ctx<'_>, i: usize, now: u64) {
        let s = &mut self.slots[i];
        if s.role != Role::Load || s.conn.is_some() {
            return;
        }
        let Some(intended) = s.start_due.take().or_else(|| s.pacer.as_mut()?.due(now)) else {
            return;
        };
        match self.try_open(ctx, i) {
            Open::Started => self.slots[i].exchange_intended = intended,
            Open::NotNow => self.slots[i].start_due = Some(intended),
            // Counted as a connect error; the exchange is dropped, as the
            // next one is already scheduled.
            Open::Failed => {}
        }
    }

    /// Open-loop `short` starts its connections from the schedule
    /// ([`start_scheduled`](Self::start_scheduled)), not when a slot frees.
    fn paced_short(&self) -> bool {
        self.spec.workload == Workload::Short && self.spec.rate.is_some()
    }

    fn connect_failed(&mut self, now: u64) {
        self.shared.failed_ever.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = &mut self.recorder {
            r.connect_failed(now);
        }
    }

    fn start_ns(&self) -> Option<u64> {
        match self.shared.start_ns.load(Ordering::Acquire) {
            u64::MAX => None,
            t => Some(t),
        }
    }

    /// Writes requests (or bulk data) on slot `i` while the workload and
    /// the send buffer allow.
    fn pump(&mut self, ctx: &mut Ctx<'_>, i: usize, now: u64) {
        if self.finished {
            return;
        }
        let s = &mut self.slots[i];
        let (Some(conn), true, Role::Load) = (s.conn, s.established, s.role) else {
            return;
        };
        let recorder = self.recorder.as_mut();
        match self.spec.workload {
            Workload::BulkRecv => {}
            Workload::BulkSend => {
                let mut sent = 0;
                while let Ok(n) = ctx.stack.send(conn, &self.bulk) {
                    if n == 0 {
                        break;
                    }
                    sent += n;
                    if n < self.bulk.len() {
                        break;
                    }
                }
                if let Some(r) = recorder {
                    r.sent(now, sent);
                }
            }
            Workload::Rpc | Workload::Http | Workload::Short => {
                let mut sent = 0;
                loop {
                    if s.tail > 0 {
                        let off = self.request.len() - s.tail;
                        match ctx.stack.send(conn, &self.request[off..]) {
                            Ok(n) => {
                                s.tail -= n;
                                sent += n;
                                if s.tail > 0 {
                                    break;
                                }
                                s.stream.sent(s.tail_intended);
                            }
                            Err(_) => break,
                        }
                    }
                    // Short: one request per connection.
                    if self.spec.workload == Workload::Short
                        && (s.stream.in_flight() > 0 || s.received > 0)
                    {
                        break;
                    }
                    // The next request: due on the pacer (open loop), or
                    // while the pipeline has room (closed loop).
                    let intended = match &mut s.pacer {
                        _ if self.spec.workload == Workload::Short => s.exchange_intended,
                        Some(p) => match p.due(now) {
                            Some(t) => t,
                            None => break,
                        },
                        None if s.stream.in_flight() >= self.spec.pipeline => break,
                        None => now,
                    };
                    s.tail = self.request.len();
                    s.tail_intended = intended;
                }
                if let Some(r) = recorder {
                    r.sent(now, sent);
                }
            }
        }
    }

    /// Reads what arrived on slot `i`: frames responses, verifies bytes.
    fn drain(&mut self, ctx: &mut Ctx<'_>, i: usize, now: u64) -> Result<bool, ()> {
        let Some(conn) = self.slots[i].conn else {
            return Ok(false);
        };
        let workload = self.spec.workload;
        let mut eof = false;
        let mut bad = false;
        loop {
            let s = &mut self.slots[i];
            let request = &self.request;
            let recorder = &mut self.recorder;
            let r = ctx.stack.recv_with(conn, |a, b| {
                for part in [a, b] {
                    if part.is_empty() || bad {
                        continue;
                    }
                    match workload {
                        // The echo returns the request pattern.
                        Workload::Rpc | Workload::Short => {
                            let len = request.len() as u64;
                            let mut off = (s.received % len) as usize;
                            let mut rest = part;
                            while !rest.is_empty() {
                                let take = (request.len() - off).min(rest.len());
                                if rest[..take] != request[off..off + take] {
                                    bad = true;
                                    break;
                                }
                                rest = &rest[take..];
                                off = 0;
                            }
                        }
                        Workload::BulkRecv => {
                            bad = part
                                .iter()
                                .enumerate()
                                .any(|(k, &byte)| byte != pattern_byte(s.received + k as u64));
                        }
                        _ => {}
                    }
                    s.received += part.len() as u64;
                    if let Some(rec) = recorder.as_mut() {
                        rec.received(now, part.len());
                    }
                    if workload.has_requests()
                        && s.stream
                            .received(part, |t| {
                                if let Some(rec) = recorder.as_mut() {
                                    rec.response(now, t);
                                }
                            })
                            .is_err()
                    {
                        bad = true;
                    }
                }
                a.len() + b.len()
            });
            match r {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(TcpError::WouldBlock) => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
            if bad {
                break;
            }
        }
        if bad {
            self.shared.integrity_errors.fetch_add(1, Ordering::Relaxed);
            return Err(());
        }
        Ok(eof)
    }

    /// Frees slot `i`'s connection handle and, for load connections
    /// while the run goes on, schedules a new connection.
    fn retire(&mut self, ctx: &mut Ctx<'_>, i: usize, abort: bool) {
        if let Some(conn) = self.slots[i].conn.take() {
            self.by_conn.remove(&conn);
            if !self.slots[i].established {
                self.handshakes = self.handshakes.saturating_sub(1);
            }
            let _ = if abort {
                ctx.stack.abort(conn)
            } else {
                ctx.stack.close(conn)
            };
        }
        self.slots[i].established = false;
        if self.slots[i].role == Role::Load && !self.finished {
            if !self.paced_short() {
                self.reopen.push(i);
            }
        } else {
            self.free.push(i);
        }
    }

    fn start_load(&mut self, ctx: &mut Ctx<'_>, start: u64) {
        self.load_opened = true;
        let warm_end = start + self.spec.warmup.as_nanos() as u64;
        let end = warm_end + self.spec.duration.as_nanos() as u64;
        self.recorder = Some(LoadRecorder::new(warm_end, end).with_timeline_from(start));
        for k in 0..self.load_share {
            let index = self.first_index + k;
            let i = self.new_slot(Role::Load);
            if let Some(rate) = self.spec.rate {
                let per_conn = rate / self.spec.connections as f64;
                let phase = index as f64 / self.spec.connections as f64;
                self.slots[i].pacer = Some(Pacer::new(per_conn, start, phase));
            }
            if !self.paced_short() {
                self.reopen.push(i);
            }
        }
        self.open_pending(ctx);
    }

    fn open_pending(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(&i) = self.reopen.last() {
            if !self.open(ctx, i) {
                return;
            }
            self.reopen.pop();
        }
    }

    /// After the run: closes connections a few at a time, so the FINs of
    /// tens of thousands of connections do not leave in one burst the
    /// rings would drop (the server would be left holding them); marks
    /// the worker closed when none is left.
    fn close_some(&mut self, ctx: &mut Ctx<'_>, now: u64) {
        if self.closed_all || now < self.next_close_ns {
            return;
        }
        self.next_close_ns = now + CLOSE_INTERVAL_NS;
        let mut budget = CLOSE_BATCH;
        while budget > 0 {
            let Some(i) = self.close_cursor.checked_sub(1) else {
                self.closed_all = true;
                self.shared.workers_closed.fetch_add(1, Ordering::Release);
                return;
            };
            self.close_cursor = i;
            if self.slots[i].conn.is_some() {
                self.retire(ctx, i, false);
                budget -= 1;
            }
        }
    }

    fn finish(&mut self) {
        self.finished = true;
        self.close_cursor = self.slots.len();
        if let Some(r) = self.recorder.take() {
            self.shared.recorders.lock().expect("recorders")[self.worker] = Some(r);
        }
    }
}

impl LoadApp {
    /// A load app driven outside a runtime (tests, custom loops): one
    /// worker, the workload starts at the first tick, on the engine's clock
    /// (`Ctx::now`: virtual time in a simulator); read it with
    /// [`report`](Self::report).
    pub fn standalone(spec: &LoadSpec) -> LoadApp {
        let shared = Arc::new(Shared {
            origin: None,
            start_ns: AtomicU64::new(u64::MAX),
            idle_established: AtomicUsize::new(0),
            established_ever: AtomicU64::new(0),
            failed_ever: AtomicU64::new(0),
            integrity_errors: AtomicU64::new(0),
            recorders: Mutex::new(vec![None]),
            workers_closed: AtomicUsize::new(0),
        });
        LoadApp::new(spec, shared, 0, 1)
    }

    /// What was measured so far (None before the workload started), and
    /// how many responses failed verification.
    pub fn report(&self) -> Option<(LoadReport, u64)> {
        let recorders = self.shared.recorders.lock().expect("recorders");
        let r = self.recorder.as_ref().or(recorders[self.worker].as_ref())?;
        Some((
            r.report(&self.spec, "fast"),
            self.shared.integrity_errors.load(Ordering::Relaxed),
        ))
    }
}

impl App for LoadApp {
    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = self.shared.now_ns(ctx);
        // Idle connections first, at most MAX_HANDSHAKES at a time.
        while self.idle_opened < self.idle_share && self.handshakes < MAX_HANDSHAKES {
            let i = self.new_slot(Role::Idle);
            if !self.open(ctx, i) {
                self.slots.pop();
                break;
            }
            self.idle_opened += 1;
        }
        if self.shared.origin.is_none() && self.start_ns().is_none() {
            // Standalone: the workload starts at the first tick.
            self.shared.start_ns.store(now, Ordering::Release);
        }
        let Some(start) = self.start_ns() else {
            return;
        };
        if self.finished {
            self.close_some(ctx, now);
            return;
        }
        if now < start {
            return;
        }
        if !self.load_opened {
            self.start_load(ctx, start);
        }
        if !self.reopen.is_empty() {
            self.open_pending(ctx);
        }
        if self.recorder.as_ref().is_some_and(|r| r.finished(now)) {
            self.finish();
            return;
        }
        if self.spec.rate.is_some() {
            let paced_short = self.paced_short();
            for i in 0..self.slots.len() {
                if paced_short {
                    self.start_scheduled(ctx, i, now);
                }
                self.pump(ctx, i, now);
            }
        }
    }

    fn on_connected(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(&i) = self.by_conn.get(&conn) else {
            return;
        };
        let now = self.shared.now_ns(ctx);
        self.handshakes = self.handshakes.saturating_sub(1);
        self.slots[i].established = true;
        self.shared.established_ever.fetch_add(1, Ordering::Relaxed);
        match self.slots[i].role {
            Role::Idle => {
                self.shared.idle_established.fetch_add(1, Ordering::Release);
            }
            Role::Load => {
                if let Some(r) = &mut self.recorder {
                    r.connected(now);
                }
                let _ = ctx.stack.set_nodelay(conn, true);
                self.pump(ctx, i, now);
            }
        }
    }

    fn on_readable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(&i) = self.by_conn.get(&conn) else {
            return;
        };
        if !self.slots[i].established {
            // A failed handshake (refused, timed out): `on_closed` follows.
            return;
        }
        let now = self.shared.now_ns(ctx);
        match self.drain(ctx, i, now) {
            Err(()) => {
                if let Some(r) = &mut self.recorder {
                    r.error(now);
                }
                self.retire(ctx, i, true);
            }
            Ok(eof) => {
                let s = &self.slots[i];
                let short_done = self.spec.workload == Workload::Short
                    && s.received >= self.request.len() as u64
                    && s.stream.in_flight() == 0;
                if short_done {
                    // Client closes first: its tuple waits in TIME-WAIT,
                    // reused after 1 s (tcp_tw_reuse).
                    self.retire(ctx, i, false);
                    if self.paced_short() {
                        // The slot's next exchange may be due already.
                        self.start_scheduled(ctx, i, now);
                    } else {
                        self.open_pending(ctx);
                    }
                } else if eof {
                    if s.role == Role::Load && !self.finished {
                        if let Some(r) = &mut self.recorder {
                            r.error(now);
                        }
                    }
                    self.retire(ctx, i, false);
                } else {
                    self.pump(ctx, i, now);
                }
            }
        }
    }

    fn on_writable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        if let Some(&i) = self.by_conn.get(&conn) {
            let now = self.shared.now_ns(ctx);
            self.pump(ctx, i, now);
        }
    }

    fn on_closed(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, reason: CloseReason) {
        let Some(&i) = self.by_conn.get(&conn) else {
            let _ = ctx.stack.close(conn);
            return;
        };
        let now = self.shared.now_ns(ctx);
        if self.slots[i].established {
            if reason != CloseReason::Normal && !self.finished {
                if let Some(r) = &mut self.recorder {
                    r.error(now);
                }
            }
        } else {
            self.connect_failed(now);
        }
        self.retire(ctx, i, false);
    }
}

/// A load run on the fast path: where the client runs and what it runs.
#[derive(Debug, Clone)]
pub struct FastLoadConfig {
    pub spec: LoadSpec,
    /// Interface, local address, workers and cores; `client` is filled in
    /// from the spec when None (the target becomes a connect target).
    pub fast_path: FastPathConfig,
}

/// What went wrong in a fast-path load run.
#[derive(Debug, thiserror::Error)]
pub enum FastLoadError {
    #[error("{0}")]
    Spec(String),
    #[error(transparent)]
    Runtime(#[from] ServeError),
    #[error("cannot connect to {0}: no connection was established within {1:?} ({2} attempt(s) refused or unanswered)")]
    Unreachable(std::net::SocketAddrV4, Duration, u64),
    #[error("{0} response(s) did not match what was sent: the server corrupts the stream")]
    Integrity(u64),
}

/// Runs the load, calls `idle_ready(N)` once the idle connections are up
/// (when there are any), and returns the merged report.
pub fn run_fast_load(
    config: FastLoadConfig,
    idle_ready: impl FnOnce(usize),
) -> Result<LoadReport, FastLoadError> {
    let spec = config.spec.clone();
    spec.validate().map_err(|e| FastLoadError::Spec(e.0))?;
    let mut fast_path = config.fast_path;
    let client = fast_path.client.get_or_insert_with(ClientConfig::default);
    if !client.targets.contains(spec.target.ip()) {
        client.targets.push(*spec.target.ip());
    }
    let workers = fast_path.workers.max(1);
    let shared = Arc::new(Shared {
        origin: Some(Instant::now()),
        start_ns: AtomicU64::new(u64::MAX),
        idle_established: AtomicUsize::new(0),
        established_ever: AtomicU64::new(0),
        failed_ever: AtomicU64::new(0),
        integrity_errors: AtomicU64::new(0),
        recorders: Mutex::new(vec![None; workers]),
        workers_closed: AtomicUsize::new(0),
    });
    let runtime = {
        let shared = shared.clone();
        let spec = spec.clone();
        start_app_runtime(fast_path, move |w| {
            Box::new(LoadApp::new(&spec, shared.clone(), w, workers))
        })?
    };
    let result = drive(&spec, &shared, &runtime, idle_ready);
    let stopped = runtime.stop();
    result?;
    stopped?;
    if shared.established_ever.load(Ordering::Relaxed) == 0 {
        return Err(FastLoadError::Unreachable(
            spec.target,
            spec.warmup + spec.duration,
            shared.failed_ever.load(Ordering::Relaxed),
        ));
    }
    let integrity = shared.integrity_errors.load(Ordering::Relaxed);
    if integrity > 0 {
        return Err(FastLoadError::Integrity(integrity));
    }
    let recorders = shared.recorders.lock().expect("recorders");
    let mut merged: Option<LoadRecorder> = None;
    for r in recorders.iter().flatten() {
        match &mut merged {
            Some(m) => m.merge(r),
            None => merged = Some(r.clone()),
        }
    }
    let merged = merged.ok_or_else(|| {
        FastLoadError::Runtime(ServeError::Runtime("no worker finished its run".into()))
    })?;
    Ok(merged.report(&spec, "fast"))
}

/// The control side: waits for the idle connections, starts the
/// workload, waits for every worker's recorder.
fn drive(
    spec: &LoadSpec,
    shared: &Shared,
    runtime: &crate::runtime::AppRuntime,
    idle_ready: impl FnOnce(usize),
) -> Result<(), FastLoadError> {
    let began = Instant::now();
    let tick = Duration::from_millis(5);
    let unreachable = |shared: &Shared| {
        began.elapsed() > UNREACHABLE_AFTER
            && shared.established_ever.load(Ordering::Relaxed) == 0
            && shared.failed_ever.load(Ordering::Relaxed) > 0
    };
    if spec.idle_connections > 0 {
        while shared.idle_established.load(Ordering::Acquire) < spec.idle_connections {
            if runtime.worker_stopped() {
                return Err(ServeError::Runtime("a worker stopped unexpectedly".into()).into());
            }
            if unreachable(shared) {
                return Err(FastLoadError::Unreachable(
                    spec.target,
                    UNREACHABLE_AFTER,
                    shared.failed_ever.load(Ordering::Relaxed),
                ));
            }
            std::thread::sleep(tick);
        }
        idle_ready(spec.idle_connections);
    }
    shared
        .start_ns
        .store(shared.wall_ns() + START_DELAY_NS, Ordering::Release);
    let total = spec.warmup + spec.duration;
    // When the workers' windows end: until then there is nothing to
    // collect, so the control side looks rarely; after it, often.
    let ends = Instant::now() + Duration::from_nanos(START_DELAY_NS) + total;
    loop {
        let done = shared
            .recorders
            .lock()
            .expect("recorders")
            .iter()
            .all(Option::is_some);
        if done {
            break;
        }
        if runtime.worker_stopped() {
            return Err(ServeError::Runtime("a worker stopped unexpectedly".into()).into());
        }
        if unreachable(shared) {
            return Err(FastLoadError::Unreachable(
                spec.target,
                UNREACHABLE_AFTER,
                shared.failed_ever.load(Ordering::Relaxed),
            ));
        }
        if began.elapsed() > total + Duration::from_secs(30) {
            return Err(ServeError::Runtime("the workers did not finish the run".into()).into());
        }
        let left = ends.saturating_duration_since(Instant::now());
        std::thread::sleep(if left.is_zero() {
            tick
        } else {
            left.min(RUN_TICK)
        });
    }
    // Let the workers close their connections at their pace (bounded):
    // the stop would otherwise FIN them all at once.
    let closing = Instant::now();
    while shared.workers_closed.load(Ordering::Acquire) < runtime.workers()
        && closing.elapsed() < CLOSE_WAIT
        && !runtime.worker_stopped()
    {
        std::thread::sleep(tick);
    }
    Ok(())
}
