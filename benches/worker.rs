//! The worker loop on the RPC workload, without the kernel: one echo
//! worker (`Worker::step`, the same iteration `Worker::run` loops over)
//! serving 64 established connections, each sending one 64-byte request
//! per iteration, over an in-memory frame I/O that recycles its buffers as
//! UMEM frames circulate. Measures what one request costs in user space on
//! the server: receive batch, engine, echo application, output and flush.
//!
//! For instruction counts per request, run it under callgrind collecting
//! only inside `Rig::serve_requests` (one `Worker::step`; see
//! docs/PERFORMANCE.md, "RPC"), and divide by the requests served (the
//! call count of `Echo::pump`).

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam::channel::{bounded, unbounded};
use xdp_tcp::app::BuiltinApp;
use xdp_tcp::runtime::worker::{DEFAULT_IDLE_SLEEP, DEFAULT_IDLE_SPIN};
use xdp_tcp::runtime::{Clock, Command, Doorbell, FrameIo, Handoff, LoopState, Worker};
use xdp_tcp::tcp::{ConnId, Stack, StackConfig, State, Transmit};
use xdp_tcp::wire::MacAddr;

const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const CONNECTIONS: usize = 64;
const REQUEST: usize = 64;

/// Frames as buffers that circulate through a pool, like UMEM frames:
/// `inbound` is the RX ring, `outbound` what flushes handed to the link.
#[derive(Default)]
struct PoolIo {
    inbound: VecDeque<Vec<u8>>,
    pending: Vec<Vec<u8>>,
    outbound: Vec<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    kicks: u64,
}

impl PoolIo {
    fn buffer(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_else(|| Vec::with_capacity(2048))
    }
}

impl Transmit for PoolIo {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        if self.pending.len() >= 64 {
            return false;
        }
        let mut buf = self.buffer();
        buf.resize(len, 0);
        let n = fill(&mut buf);
        buf.truncate(n);
        self.pending.push(buf);
        true
    }
}

impl FrameIo for PoolIo {
    fn receive_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < 64 {
            let Some(frame) = self.inbound.pop_front() else {
                break;
            };
            f(&frame);
            self.pool.push(frame);
            n += 1;
        }
        n
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.kicks += 1;
            self.outbound.append(&mut self.pending);
        }
    }

    fn wait_readable(&self, _timeout: Duration, _doorbell: &Doorbell) {}

    fn doorbell(&self) -> io::Result<Doorbell> {
        Ok(Doorbell::with_channel())
    }

    fn tx_kicks(&self) -> u64 {
        self.kicks
    }
}

/// The client's output, straight into the worker's RX queue.
struct IntoWorker<'a>(&'a mut PoolIo);

impl Transmit for IntoWorker<'_> {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        let mut buf = self.0.buffer();
        buf.resize(len, 0);
        let n = fill(&mut buf);
        buf.truncate(n);
        self.0.inbound.push_back(buf);
        true
    }
}

struct Rig {
    worker: Worker<PoolIo>,
    state: LoopState,
    client: Stack,
    conns: Vec<ConnId>,
    clock: Clock,
    scratch: Vec<u8>,
}

impl Rig {
    fn new() -> Rig {
        let clock = Clock::new();
        let (cmd_tx, cmd_rx) = unbounded();
        let io = PoolIo::default();
        let mut worker = Worker {
            id: 0,
            doorbell: Arc::new(io.doorbell().unwrap()),
            io,
            stack: Stack::new(
                StackConfig {
                    mac: SERVER_MAC,
                    ..StackConfig::default()
                },
                [1; 32],
                clock.now(),
            )
            .unwrap(),
            app: BuiltinApp::Echo.instantiate(),
            commands: cmd_rx,
            handoff: Arc::new(Handoff::new(1, 64)),
            clock,
            core: None,
            max_sleep: DEFAULT_IDLE_SLEEP,
            idle_spin: DEFAULT_IDLE_SPIN,
            connector: None,
        };
        let mut state = LoopState::new(0);
        let server = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7);
        let (reply_tx, reply_rx) = bounded(1);
        cmd_tx
            .send(Command::Listen {
                addr: server,
                backlog: 1024,
                reply: reply_tx,
            })
            .unwrap();
        // Commands are looked at before the worker would sleep.
        while reply_rx.try_recv().map(|r| r.unwrap()).is_err() {
            worker.step(&mut state);
        }

        let mut client = Stack::new(
            StackConfig {
                mac: CLIENT_MAC,
                ..StackConfig::default()
            },
            [2; 32],
            clock.now(),
        )
        .unwrap();
        let local = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 0);
        let conns: Vec<ConnId> = (0..CONNECTIONS)
            .map(|_| {
                client
                    .connect(clock.now(), local, server, SERVER_MAC)
                    .unwrap()
            })
            .collect();
        let mut rig = Rig {
            worker,
            state,
            client,
            conns,
            clock,
            scratch: vec![0; 4096],
        };
        for _ in 0..200 {
            rig.exchange(false);
            let established = rig
                .conns
                .iter()
                .all(|&c| rig.client.state(c) == Ok(State::Established));
            if established && rig.worker.stack.connection_count() == CONNECTIONS {
                break;
            }
        }
        assert_eq!(rig.worker.stack.connection_count(), CONNECTIONS);
        // Warm up: buffers allocated on first use, pools filled.
        for _ in 0..100 {
            rig.round();
        }
        rig
    }

    /// Client output to the worker, one worker iteration, its output
    /// back; `requests` says whether the iteration serves a round (and is
    /// collected) or is part of the set-up.
    fn exchange(&mut self, requests: bool) {
        let now = self.clock.now();
        self.client.poll(now, &mut IntoWorker(&mut self.worker.io));
        if requests {
            self.serve_requests();
        } else {
            self.worker.step(&mut self.state);
        }
        let now = self.clock.now();
        let mut frames = std::mem::take(&mut self.worker.io.outbound);
        for frame in frames.drain(..) {
            self.client.receive(now, &frame);
            self.worker.io.pool.push(frame);
        }
        self.worker.io.outbound = frames;
        while self.client.next_event().is_some() {}
    }

    /// The worker's iteration of a round, apart from the set-up's
    /// iterations: what callgrind collects (`--toggle-collect`).
    #[inline(never)]
    fn serve_requests(&mut self) {
        self.worker.step(&mut self.state);
    }

    /// One request on every connection and every response read back.
    fn round(&mut self) {
        let request = [0x5a; REQUEST];
        for &c in &self.conns {
            assert_eq!(self.client.send(c, &request), Ok(REQUEST));
        }
        self.exchange(true);
        for &c in &self.conns {
            assert_eq!(self.client.recv(c, &mut self.scratch), Ok(REQUEST));
        }
    }
}

fn rpc_echo(c: &mut Criterion) {
    let mut rig = Rig::new();
    let mut group = c.benchmark_group("worker");
    group.throughput(Throughput::Elements(CONNECTIONS as u64));
    group.bench_function("rpc_echo_64B_64_connections", |b| b.iter(|| rig.round()));
    group.finish();
}

criterion_group!(benches, rpc_echo);
criterion_main!(benches);
