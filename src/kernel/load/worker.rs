//! One client thread: its share of the idle connections, then its share
//! of the measured connections, on its own mio `Poll` and its own
//! [`LoadRecorder`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::conn::{ClientConn, Ctx, Outcome, BULK_CHUNK};
use super::plan::Plan;
use super::socket::{connect, connect_state, ConnectState};
use crate::kernel::close_registered;
use crate::kernel::edge_read::{EdgeRead, ReadReadiness};
use crate::load::{LoadRecorder, Pacer, Workload};

/// Connects in progress per thread while opening idle connections: the
/// server's accept queue and SYN backlog stay far from overflowing.
const MAX_CONNECTING: usize = 256;
/// Pause before a failed connection is replaced.
const RECONNECT_PAUSE_NS: u64 = 10_000_000;
/// Longest sleep in `poll`, so `stop` is noticed.
const MAX_POLL: Duration = Duration::from_millis(10);

/// What the client threads and the coordinating thread share.
pub struct Shared {
    pub idle_established: AtomicUsize,
    /// A thread failed: the others give up.
    pub abort: AtomicBool,
    /// Start of the measured phase (warm-up first), ns; `u64::MAX` until
    /// every idle connection is up.
    pub go_ns: AtomicU64,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            idle_established: AtomicUsize::new(0),
            abort: AtomicBool::new(false),
            go_ns: AtomicU64::new(u64::MAX),
        }
    }
}

#[derive(Debug)]
pub enum WorkerError {
    /// Opening the idle connections failed; the message says why and what
    /// to change.
    Idle(String),
    Io(io::Error),
    Interrupted,
    /// Another thread failed first.
    Aborted,
    Panicked,
}

impl From<io::Error> for WorkerError {
    fn from(e: io::Error) -> WorkerError {
        WorkerError::Io(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The connection's pacer has a request (or `short` exchange) due.
    Pace,
    /// A failed connection is replaced.
    Reconnect,
}

struct Slot {
    /// The connection's number (picks its source address).
    index: usize,
    stream: Option<TcpStream>,
    connecting: bool,
    /// None for an idle connection.
    conn: Option<ClientConn>,
    /// On the worker's `ready` list.
    queued: bool,
    /// The last connect found every local port busy (EADDRNOTAVAIL); the
    /// wait is counted once ([`LoadRecorder::port_wait`]), not per retry.
    waiting_for_port: bool,
}

struct Worker<'a> {
    plan: &'a Plan,
    poll: Poll,
    slots: Slab<Slot>,
    timers: BinaryHeap<Reverse<(u64, usize, Timer)>>,
    recorder: LoadRecorder,
    rx: Vec<u8>,
    /// Reused by every `poll` of the measured phase.
    events: Option<Events>,
    /// Streams that used up their turn while still able to make
    /// progress ([`Outcome::Ready`]): driven again after the next
    /// non-blocking `poll`, in order, so streams share the thread fairly.
    ready: VecDeque<usize>,
}

/// Runs thread `index` of `threads` to the end of the measurement window.
pub fn run_worker(
    plan: &Plan,
    index: usize,
    threads: usize,
    shared: &Shared,
    stop: &AtomicBool,
) -> Result<LoadRecorder, WorkerError> {
    let mut w = Worker {
        plan,
        poll: Poll::new()?,
        slots: Slab::new(),
        timers: BinaryHeap::new(),
        // Replaced once the window is known.
        recorder: LoadRecorder::new(0, 0),
        rx: vec![0; BULK_CHUNK],
        events: Some(Events::with_capacity(1024)),
        ready: VecDeque::new(),
    };
    let result = w.run(index, threads, shared, stop);
    if result.is_err() {
        shared.abort.store(true, Ordering::Relaxed);
    }
    result.map(|()| w.recorder)
}

impl Worker<'_> {
    fn run(
        &mut self,
        index: usize,
        threads: usize,
        shared: &Shared,
        stop: &AtomicBool,
    ) -> Result<(), WorkerError> {
        let plan = self.plan;
        let spec = &plan.spec;
        let mine: Vec<usize> = (index..spec.idle_connections).step_by(threads).collect();
        self.open_idle(&mine, shared, stop)?;
        let start = loop {
            let go = shared.go_ns.load(Ordering::Acquire);
            if go != u64::MAX {
                break go;
            }
            self.check(shared, stop)?;
            self.poll_once(Duration::from_millis(5))?;
        };
        let warm_end = start + spec.warmup.as_nanos() as u64;
        let end = warm_end + spec.duration.as_nanos() as u64;
        self.recorder = LoadRecorder::new(warm_end, end).with_timeline_from(start);
        let total = spec.connections;
        // Every measured stream can be on the ready list at once.
        self.ready.reserve(total.div_ceil(threads));
        for k in (index..total).step_by(threads) {
            let pacer = spec
                .rate
                .map(|rate| Pacer::new(rate / total as f64, start, k as f64 / total as f64));
            let key = self.slots.insert(Slot {
                index: k,
                stream: None,
                connecting: false,
                conn: Some(ClientConn::new(self.plan, pacer)),
                queued: false,
                waiting_for_port: false,
            });
            if let Some(pacer) = &self.slots[key].conn.as_ref().and_then(|c| c.pacer.clone()) {
                self.timers
                    .push(Reverse((pacer.next_at(), key, Timer::Pace)));
            }
            self.start_stream(key, start);
        }
        loop {
            let now = self.plan.now_ns();
            if now >= end {
                return Ok(());
            }
            if stop.load(Ordering::Relaxed) {
                return Err(WorkerError::Interrupted);
            }
            self.fire_timers(now);
            let next = self.timers.peek().map_or(end, |t| t.0 .0).min(end);
            let wait = Duration::from_nanos(next.saturating_sub(self.plan.now_ns()));
            // epoll sleeps in whole milliseconds: a timer closer than that
            // is busy-polled, or open-loop requests would go out late.
            // Streams with work left never wait for an event.
            let wait = if wait < Duration::from_millis(1) || !self.ready.is_empty() {
                Duration::ZERO
            } else {
                wait.min(MAX_POLL)
            };
            self.poll_once(wait)?;
            self.drive_ready();
        }
    }

    fn check(&self, shared: &Shared, stop: &AtomicBool) -> Result<(), WorkerError> {
        if stop.load(Ordering::Relaxed) {
            Err(WorkerError::Interrupted)
        } else if shared.abort.load(Ordering::Relaxed) {
            Err(WorkerError::Aborted)
        } else {
            Ok(())
        }
    }

    /// Opens this thread's idle connections, a window of them at a time.
    fn open_idle(
        &mut self,
        mine: &[usize],
        shared: &Shared,
        stop: &AtomicBool,
    ) -> Result<(), WorkerError> {
        let mut events = Events::with_capacity(1024);
        let (mut next, mut connecting, mut done) = (0, 0, 0);
        while done < mine.len() {
            self.check(shared, stop)?;
            while connecting < MAX_CONNECTING && next < mine.len() {
                let index = mine[next];
                let source = self.plan.source(index);
                let mut stream = connect(self.plan.spec.target, source)
                    .map_err(|e| idle_error(self.plan, index, source, &e))?;
                let entry = self.slots.vacant_entry();
                self.poll.registry().register(
                    &mut stream,
                    Token(entry.key()),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                entry.insert(Slot {
                    index,
                    stream: Some(stream),
                    connecting: true,
                    conn: None,
                    queued: false,
                    waiting_for_port: false,
                });
                next += 1;
                connecting += 1;
            }
            poll(&mut self.poll, &mut events, MAX_POLL)?;
            for ev in events.iter() {
                let key = ev.token().0;
                if self.slots.get(key).is_some_and(|s| !s.connecting) {
                    // An established idle connection woke: closed or reset.
                    self.on_event(key, Some(ev.into()));
                    continue;
                }
                let Some(slot) = self.slots.get_mut(key) else {
                    continue;
                };
                let Some(stream) = slot.stream.as_mut() else {
                    continue;
                };
                match connect_state(stream) {
                    ConnectState::InProgress => {}
                    ConnectState::Connected => {
                        slot.connecting = false;
                        // Idle from now on: only a close or reset wakes us.
                        self.poll
                            .registry()
                            .reregister(stream, ev.token(), Interest::READABLE)?;
                        connecting -= 1;
                        done += 1;
                        shared.idle_established.fetch_add(1, Ordering::Relaxed);
                    }
                    ConnectState::Failed(e) => {
                        let source = self.plan.source(slot.index);
                        return Err(idle_error(self.plan, slot.index, source, &e));
                    }
                }
            }
        }
        Ok(())
    }

    fn poll_once(&mut self, wait: Duration) -> Result<(), WorkerError> {
        // Taken out while its events are handled (they borrow `self`).
        let mut events = self.events.take().expect("events are put back");
        let polled = poll(&mut self.poll, &mut events, wait);
        if polled.is_ok() {
            for ev in events.iter() {
                self.on_event(ev.token().0, Some(ev.into()));
            }
        }
        self.events = Some(events);
        Ok(polled?)
    }

    /// Drives stream `key` after an event (what it said about reading,
    /// see [`EdgeRead`]) or, with None, a turn of the ready list.
    fn on_event(&mut self, key: usize, readiness: Option<ReadReadiness>) {
        let now = self.plan.now_ns();
        let Worker {
            plan,
            slots,
            recorder,
            rx,
            ..
        } = self;
        let Some(slot) = slots.get_mut(key) else {
            return;
        };
        let Some(stream) = slot.stream.as_mut() else {
            return;
        };
        let Some(conn) = slot.conn.as_mut() else {
            // An idle connection woke: the server closed or reset it.
            if !matches!(stream.read(rx), Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                recorder.error(now);
                if let Some(stream) = slots.remove(key).stream {
                    close_registered(stream);
                }
            }
            return;
        };
        let mut ctx = Ctx {
            plan,
            recorder,
            rx,
            now,
        };
        if slot.connecting {
            match connect_state(stream) {
                ConnectState::InProgress => return,
                ConnectState::Failed(_) => {
                    ctx.recorder.connect_failed(now);
                    self.replace_later(key, now);
                    return;
                }
                ConnectState::Connected => {
                    slot.connecting = false;
                    ctx.recorder.connected(now);
                    if plan.spec.workload == Workload::Short {
                        conn.queue_exchange();
                    } else {
                        conn.schedule(&ctx);
                    }
                }
            }
        }
        let mut io = match readiness {
            Some(readiness) => EdgeRead::for_event(stream, readiness),
            None => EdgeRead::without_event(stream),
        };
        match conn.drive(&mut io, &mut ctx) {
            Outcome::Wait => {}
            Outcome::Ready => self.mark_ready(key),
            Outcome::Done => {
                self.close_stream(key);
                self.start_stream(key, now);
            }
            Outcome::Failed => self.replace_later(key, now),
        }
    }

    /// Puts stream `key` on the ready list (once).
    fn mark_ready(&mut self, key: usize) {
        if let Some(slot) = self.slots.get_mut(key) {
            if !slot.queued {
                slot.queued = true;
                self.ready.push_back(key);
            }
        }
    }

    /// Gives each stream that was on the ready list one more turn; those
    /// that use it up again go to the back of the list.
    fn drive_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(key) = self.ready.pop_front() else {
                return;
            };
            let Some(slot) = self.slots.get_mut(key) else {
                continue;
            };
            slot.queued = false;
            // A stream closed or replaced since it was queued is skipped
            // by `on_event` (no stream, or still connecting).
            self.on_event(key, None);
        }
    }

    fn fire_timers(&mut self, now: u64) {
        while let Some(&Reverse((at, key, timer))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            match timer {
                Timer::Reconnect => self.start_stream(key, now),
                Timer::Pace => self.pace(key, now),
            }
        }
    }

    /// Takes what the pacer has due and sends it (or starts a `short`
    /// exchange), then re-arms the pacer's timer.
    fn pace(&mut self, key: usize, now: u64) {
        let Worker {
            plan,
            slots,
            recorder,
            rx,
            timers,
            ..
        } = self;
        let Some(slot) = slots.get_mut(key) else {
            return;
        };
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        let mut ctx = Ctx {
            plan,
            recorder,
            rx,
            now,
        };
        conn.schedule(&ctx);
        if let Some(p) = &conn.pacer {
            timers.push(Reverse((p.next_at(), key, Timer::Pace)));
        }
        let short = plan.spec.workload == Workload::Short;
        let established = slot.stream.is_some() && !slot.connecting;
        let outcome = match slot.stream.as_mut() {
            Some(stream) if established && !short => conn.drive(stream, &mut ctx),
            _ => Outcome::Wait,
        };
        if outcome == Outcome::Failed {
            self.replace_later(key, now);
        } else if outcome == Outcome::Ready {
            self.mark_ready(key);
        } else if short && !established {
            // Starts an exchange if none is running (else a no-op).
            self.start_stream(key, now);
        }
    }

    /// Opens a new stream in slot `key` (for `short`, when an exchange is
    /// due); a connect that fails at once is retried after a pause.
    fn start_stream(&mut self, key: usize, now: u64) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        if slot.stream.is_some() {
            return;
        }
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        conn.reset_stream();
        if self.plan.spec.workload == Workload::Short {
            conn.exchange_intended = match conn.pacer {
                None => now,
                Some(_) => match conn.starts.pop_front() {
                    Some(t) => t,
                    None => return, // the pacer's timer starts the next
                },
            };
        }
        let opened =
            connect(self.plan.spec.target, self.plan.source(slot.index)).and_then(|mut stream| {
                self.poll.registry().register(
                    &mut stream,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(stream)
            });
        match opened {
            Ok(stream) => {
                slot.stream = Some(stream);
                slot.connecting = true;
                slot.waiting_for_port = false;
            }
            Err(e) => {
                if e.raw_os_error() != Some(libc::EADDRNOTAVAIL) {
                    self.recorder.connect_failed(now);
                } else if !std::mem::replace(&mut slot.waiting_for_port, true) {
                    // Every port busy: the client's own limit, not the
                    // server's failure (as the fast client counts it).
                    self.recorder.port_wait(now);
                }
                if self.plan.spec.workload == Workload::Short && conn.pacer.is_some() {
                    // The exchange is still due at its intended time.
                    conn.starts.push_front(conn.exchange_intended);
                }
                self.timers
                    .push(Reverse((now + RECONNECT_PAUSE_NS, key, Timer::Reconnect)));
            }
        }
    }

    fn close_stream(&mut self, key: usize) {
        if let Some(slot) = self.slots.get_mut(key) {
            if let Some(stream) = slot.stream.take() {
                close_registered(stream);
            }
            slot.connecting = false;
        }
    }

    /// Closes a failed stream and opens a new one after a pause.
    fn replace_later(&mut self, key: usize, now: u64) {
        self.close_stream(key);
        self.timers
            .push(Reverse((now + RECONNECT_PAUSE_NS, key, Timer::Reconnect)));
    }
}

fn poll(poll: &mut Poll, events: &mut Events, wait: Duration) -> io::Result<()> {
    match poll.poll(events, Some(wait)) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        other => other,
    }
}

/// Why idle connection `index` failed, and what to change.
fn idle_error(
    plan: &Plan,
    index: usize,
    source: Option<std::net::Ipv4Addr>,
    e: &io::Error,
) -> WorkerError {
    let from = source.map_or_else(|| "the default address".to_owned(), |a| a.to_string());
    let hint = match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => {
            " (out of local ports: add --source-addr addresses, each brings its own \
             net.ipv4.ip_local_port_range of ports toward the target)"
        }
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            " (out of file descriptors: raise the hard RLIMIT_NOFILE)"
        }
        _ => "",
    };
    WorkerError::Idle(format!(
        "idle connection {index} from {from} to {} failed: {e}{hint}",
        plan.spec.target
    ))
}
