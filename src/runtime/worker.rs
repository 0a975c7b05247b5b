//! One worker: a pinned thread that owns one queue's frame I/O, one engine
//! stack and one application instance, and runs them to completion.
//!
//! Loop: receive a batch → hand foreign frames to their owner → run the
//! application on the stack's events → timers and output (`poll`) → flush
//! (kick) → control commands. When idle it keeps polling for
//! [`Worker::idle_spin`] (50 us by default; forever when busy-polling),
//! then sleeps in `poll(2)` on the socket, never longer than the next
//! engine deadline; threads that hand the application work ring its
//! [`Doorbell`] to wake it.
//!
//! The spin is measured in time rather than iterations: what it buys is
//! not waking up for a frame that comes a few microseconds later. A
//! sleeping worker is woken by whoever delivers its frame (on veth, the
//! sending core pays the wake-up and its IPI), and its reply waits for
//! the scheduler: measured on the testbed at half the kernel server's
//! rpc rate, the fast server's p50 went from 14 to 6 us and its p90 from
//! 26-32 to 6-7 us with the 50 us spin (docs/PERFORMANCE.md, "Session
//! 12").

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender};

use crate::app::{App, Ctx};
use crate::runtime::active_open::{Connector, NextHopUpdate};
use crate::runtime::clock::Clock;
use crate::runtime::doorbell::Doorbell;
use crate::runtime::handoff::Handoff;
use crate::runtime::io::FrameIo;
use crate::tcp::{Event, Instant, ListenerId, Stack, StackStats, TcpError};
use crate::xdp::KernelRxDrops;

/// Requests from the control side. Answers go back on the given channel.
pub enum Command {
    Listen {
        addr: SocketAddrV4,
        backlog: usize,
        reply: Sender<Result<(), TcpError>>,
    },
    /// Graceful stop: close listeners, FIN every connection, wait up to
    /// `drain` for them to finish, then RST the rest and exit.
    Shutdown {
        drain: Duration,
    },
    Report(Sender<WorkerReport>),
    /// A next hop changed its MAC or became unreachable (from the
    /// neighbour monitor): connections and the connector follow it.
    NextHop(Arc<NextHopUpdate>),
}

/// What a worker did, for the stats summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerReport {
    pub id: usize,
    pub stack: StackStats,
    pub connections: usize,
    pub accepted: u64,
    pub rx_frames: u64,
    pub handed_off: u64,
    pub handoff_drops: u64,
    /// Connections still open when the drain time ran out (then reset).
    pub reset_at_shutdown: usize,
    /// Connections in TIME-WAIT (held by our side) at shutdown.
    pub time_wait: usize,
    /// Loop iterations, and those that received a frame or ran an event:
    /// frames per busy iteration is the batch the fixed costs of an
    /// iteration (clock read, flush, kick) are spread over.
    pub iterations: u64,
    pub busy_iterations: u64,
    /// Sleeps in poll(2) (or the I/O's equivalent).
    pub sleeps: u64,
    /// Transmit wake-ups of the I/O (`sendto` kicks on AF_XDP).
    pub tx_kicks: u64,
    /// Turns of the loop that began more than [`LOOP_STALL`] after the
    /// previous turn began, sleeps excepted: the thread was preempted or
    /// interrupted, or a turn's own work took that long. A frame that
    /// arrived meanwhile waited; at 76 000 requests/s (one every 13 us)
    /// each stall holds up one or more requests, so stalls per second
    /// against the request rate bound how far down the latency tail they
    /// reach (docs/PERFORMANCE.md, "Session 13").
    pub stalls: u64,
    /// The longest such gap.
    pub longest_stall: Duration,
    /// Frames dropped below us (AF_XDP: RX ring full, no fill-ring frame):
    /// a sender sees them as loss, so they explain retransmissions that
    /// none of our counters shows.
    pub kernel_drops: KernelRxDrops,
}

pub struct Worker<Io: FrameIo> {
    pub id: usize,
    pub io: Io,
    pub stack: Stack,
    pub app: Box<dyn App>,
    pub commands: Receiver<Command>,
    pub handoff: Arc<Handoff>,
    pub clock: Clock,
    /// Rung by threads that hand the application work (see [`Doorbell`]);
    /// make it with the I/O's [`FrameIo::doorbell`] so the worker can
    /// sleep on it.
    pub doorbell: Arc<Doorbell>,
    /// Core to pin to; None leaves placement to the scheduler.
    pub core: Option<core_affinity::CoreId>,
    /// Longest idle sleep in poll(2) before looking at commands again.
    pub max_sleep: Duration,
    /// How long the loop keeps polling with nothing to do before it
    /// sleeps ([`DEFAULT_IDLE_SPIN`]; `Duration::MAX`: never sleeps, a
    /// busy-polling worker that owns its core).
    pub idle_spin: Duration,
    /// Client ports and next hops for active opens (None: server only).
    pub connector: Option<Connector>,
}

/// Control commands are looked at every this many loop iterations (and
/// before every sleep): a channel poll per iteration costs about as much
/// as the rest of an empty iteration, and commands are rare.
const COMMAND_POLL_INTERVAL: u32 = 64;
/// TX batches flushed per loop iteration at most.
const MAX_TX_ROUNDS: usize = 16;
/// Default longest idle sleep, so control commands are noticed promptly
/// (application threads ring the doorbell and need no timeout).
pub const DEFAULT_IDLE_SLEEP: Duration = Duration::from_millis(5);
/// A gap between two turns of the loop longer than this is a stall
/// ([`WorkerReport::stalls`]): about the gap between requests at the rpc
/// p99 row's rate. A worker below saturation turns in a few microseconds;
/// a saturated one can take this long over a large batch itself, so its
/// stalls count those turns too.
pub const LOOP_STALL: Duration = Duration::from_micros(20);
/// Default idle spin: about the gap between requests at a few tens of
/// thousands per second per worker, Linux's suggested `busy_poll`
/// (50 us); an idle worker's core is free again that soon.
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(50);

/// What the worker loop carries from one iteration to the next.
#[derive(Debug)]
pub struct LoopState {
    listeners: Vec<ListenerId>,
    /// When the drain of a graceful shutdown ends.
    shutdown: Option<Instant>,
    /// Since when the loop has had nothing to do (None: it had work in
    /// the last iteration).
    idle_since: Option<Instant>,
    iteration: u32,
    /// When the previous turn began (None after a sleep: a sleep is not a
    /// stall).
    last_turn: Option<Instant>,
    report: WorkerReport,
}

impl LoopState {
    /// The state of a worker that has not run yet.
    pub fn new(id: usize) -> LoopState {
        LoopState {
            listeners: Vec::new(),
            shutdown: None,
            idle_since: None,
            iteration: 0,
            last_turn: None,
            report: WorkerReport {
                id,
                ..WorkerReport::default()
            },
        }
    }
}

impl<Io: FrameIo> Worker<Io> {
    /// Runs until a `Shutdown` command completes; returns the final report.
    pub fn run(mut self) -> WorkerReport {
        if let Some(core) = self.core {
            if !core_affinity::set_for_current(core) {
                eprintln!(
                    "xdp-tcp: worker {}: could not pin to core {}",
                    self.id, core.id
                );
            }
        }
        let mut state = LoopState::new(self.id);
        loop {
            if let Some(report) = self.step(&mut state) {
                return report;
            }
        }
    }

    /// One iteration of the loop: receive a batch, run the application on
    /// the events, look at commands when due, flush output, and sleep when
    /// idle long enough. Returns the final report once a shutdown has
    /// finished. [`run`](Self::run) calls it forever; benches and tests may
    /// drive a worker one iteration at a time.
    pub fn step(&mut self, state: &mut LoopState) -> Option<WorkerReport> {
        let report = &mut state.report;
        state.iteration = state.iteration.wrapping_add(1);
        report.iterations += 1;
        let now = self.clock.now();
        if let Some(last) = state.last_turn.replace(now) {
            let gap = now.saturating_since(last);
            if gap > LOOP_STALL {
                report.stalls += 1;
                report.longest_stall = report.longest_stall.max(gap);
            }
        }
        // Idle for the whole spin: this iteration sleeps if it finds
        // nothing either.
        let spun_out = state
            .idle_since
            .is_some_and(|t| now.saturating_since(t) >= self.idle_spin);
        let received = self.receive(now, report);
        let events = self.dispatch(now, &state.listeners, report);
        {
            let mut ctx = Ctx {
                stack: &mut self.stack,
                now,
                connector: self.connector.as_mut(),
            };
            self.app.on_tick(&mut ctx);
        }
        // Commands are rare: look every COMMAND_POLL_INTERVAL iterations,
        // and always before sleeping.
        if state.iteration % COMMAND_POLL_INTERVAL == 0 || spun_out {
            self.handle_commands(now, &mut state.listeners, &mut state.shutdown, report);
        }
        self.flush_output(now);

        if let Some(deadline) = state.shutdown {
            let busy = self.stack.busy_connections();
            if busy == 0 || now >= deadline {
                report.reset_at_shutdown = busy;
                report.time_wait = self.stack.connection_count() - busy;
                self.stack.reset_all();
                self.flush_output(now);
                self.fill_report(report);
                return Some(*report);
            }
        }

        if received == 0 && events == 0 {
            state.idle_since.get_or_insert(now);
            if spun_out {
                let wait = match self.stack.poll_at() {
                    Some(t) => t.saturating_since(now).min(self.max_sleep),
                    None => self.max_sleep,
                };
                // A ring since the last look means the application has
                // work from another thread: loop instead of sleeping.
                if !wait.is_zero() && self.doorbell.begin_sleep() {
                    report.sleeps += 1;
                    self.io.wait_readable(wait, &self.doorbell);
                    self.doorbell.end_sleep();
                    state.last_turn = None;
                }
            }
        } else {
            state.idle_since = None;
            report.busy_iterations += 1;
        }
        None
    }

    /// The report's snapshot fields: engine totals, connections, kicks.
    fn fill_report(&self, report: &mut WorkerReport) {
        report.stack = self.stack.totals();
        report.connections = self.stack.connection_count();
        report.tx_kicks = self.io.tx_kicks();
        report.kernel_drops = self.io.kernel_rx_drops();
    }

    /// Serves every queued control command.
    fn handle_commands(
        &mut self,
        now: Instant,
        listeners: &mut Vec<ListenerId>,
        shutdown: &mut Option<Instant>,
        report: &mut WorkerReport,
    ) {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Listen {
                    addr,
                    backlog,
                    reply,
                } => {
                    let r = self.stack.listen(addr, backlog).map(|l| listeners.push(l));
                    let _ = reply.send(r);
                }
                Command::Shutdown { drain } => {
                    let mut ctx = Ctx {
                        stack: &mut self.stack,
                        now,
                        connector: self.connector.as_mut(),
                    };
                    self.app.on_shutdown(&mut ctx);
                    listeners.clear();
                    self.stack.close_all();
                    *shutdown = Some(now + drain);
                }
                Command::Report(reply) => {
                    self.fill_report(report);
                    let _ = reply.send(*report);
                }
                Command::NextHop(update) => {
                    update.apply(&mut self.stack, self.connector.as_mut());
                }
            }
        }
    }

    /// Emits everything the stack has to send. A TX batch holds a
    /// limited number of frames, so poll and flush again while output is
    /// pending — bounded, so receiving is never starved.
    fn flush_output(&mut self, now: Instant) {
        for _ in 0..MAX_TX_ROUNDS {
            self.stack.poll(now, &mut self.io);
            self.io.flush();
            if self.stack.poll_at().is_none_or(|t| t > now) {
                break;
            }
        }
    }

    /// One receive batch plus frames other workers handed over.
    fn receive(&mut self, now: Instant, report: &mut WorkerReport) -> usize {
        let workers = self.handoff.workers();
        let id = self.id;
        let stack = &mut self.stack;
        let handoff = &self.handoff;
        let client_ports = self.connector.as_ref().map(|c| c.ports());
        let mut n = self.io.receive_batch(&mut |frame: &[u8]| {
            report.rx_frames += 1;
            if workers == 1 {
                stack.receive(now, frame);
            } else if !stack.receive_owned(now, frame) {
                // A reply to one of our client ports names its owner: one
                // hop, marked as the last (the owner answers it if it has
                // no such connection).
                match client_ports.and_then(|p| p.owner_of_frame(frame)) {
                    Some(owner) if owner == id => {
                        stack.receive(now, frame);
                        return;
                    }
                    Some(owner) => {
                        if handoff.forward(id, workers - 1, owner, frame) {
                            report.handed_off += 1;
                        } else {
                            report.handoff_drops += 1;
                        }
                        return;
                    }
                    None => {}
                }
                // Not ours: let the next worker look (see handoff.rs).
                if handoff.forward(id, 1, (id + 1) % workers, frame) {
                    report.handed_off += 1;
                } else {
                    report.handoff_drops += 1;
                }
            }
        });
        // A lone worker is never handed anything: skip its inbox.
        if workers > 1 {
            n += self.receive_handed_off(now, report);
        }
        n
    }

    /// Frames other workers handed over; returns how many.
    fn receive_handed_off(&mut self, now: Instant, report: &mut WorkerReport) -> usize {
        let workers = self.handoff.workers();
        let mut n = 0;
        while let Some(item) = self.handoff.pop(self.id) {
            n += 1;
            if self.stack.receive_owned(now, item.bytes()) {
                self.handoff.release(item);
            } else if item.hops + 1 >= workers {
                // Every worker refused it: it belongs to no connection.
                self.stack.receive(now, item.bytes());
                self.handoff.release(item);
            } else if !self.handoff.pass_on(self.id, item) {
                report.handoff_drops += 1;
            }
        }
        n
    }

    /// Runs the application on every pending event; returns how many.
    fn dispatch(
        &mut self,
        now: Instant,
        listeners: &[ListenerId],
        report: &mut WorkerReport,
    ) -> usize {
        let mut count = 0;
        while let Some(ev) = self.stack.next_event() {
            count += 1;
            let mut ctx = Ctx {
                stack: &mut self.stack,
                now,
                connector: self.connector.as_mut(),
            };
            match ev {
                Event::Accepted { listener, .. } => {
                    if !listeners.contains(&listener) {
                        continue;
                    }
                    if let Ok(conn) = ctx.stack.accept(listener) {
                        report.accepted += 1;
                        self.app.on_accepted(&mut ctx, conn);
                        // Data may have come with the handshake's last ACK.
                        self.app.on_readable(&mut ctx, conn);
                    }
                }
                Event::Connected(conn) => self.app.on_connected(&mut ctx, conn),
                Event::Readable(conn) => self.app.on_readable(&mut ctx, conn),
                Event::Writable(conn) => self.app.on_writable(&mut ctx, conn),
                Event::Closed { conn, reason } => self.app.on_closed(&mut ctx, conn, reason),
            }
        }
        count
    }
}
