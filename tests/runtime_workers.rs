//! Workers without AF_XDP: a worker thread with a built-in app on one end
//! of an in-memory link, a client engine driven by the test on the other.
//! Covers the worker loop, application dispatch, cross-worker hand-off
//! and graceful shutdown.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{bounded, unbounded, Receiver, Sender};
use xdp_tcp::app::BuiltinApp;
use xdp_tcp::runtime::worker::{DEFAULT_IDLE_SLEEP, DEFAULT_IDLE_SPIN};
use xdp_tcp::runtime::{
    ChannelIo, Clock, Command, FrameIo, Handoff, LoopState, Worker, WorkerReport,
};
use xdp_tcp::tcp::{ConnId, Stack, StackConfig, State, TcpError};
use xdp_tcp::wire::MacAddr;

const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn server_addr() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7)
}

struct Server {
    commands: Vec<Sender<Command>>,
    handles: Vec<JoinHandle<WorkerReport>>,
    /// Frames the client sends go into worker `route(frame_index)`'s inbox.
    inboxes: Vec<Sender<Vec<u8>>>,
    /// Frames every worker sends.
    outbox: Receiver<Vec<u8>>,
}

fn start(workers: usize, app: BuiltinApp, clock: Clock) -> Server {
    let handoff = Arc::new(Handoff::new(workers, 64));
    let (out_tx, out_rx) = unbounded();
    let mut server = Server {
        commands: Vec::new(),
        handles: Vec::new(),
        inboxes: Vec::new(),
        outbox: out_rx,
    };
    for id in 0..workers {
        let (in_tx, in_rx) = unbounded();
        let (cmd_tx, cmd_rx) = unbounded();
        let cfg = StackConfig {
            mac: SERVER_MAC,
            ..StackConfig::default()
        };
        let io = ChannelIo::new(in_rx, out_tx.clone(), 64);
        let worker = Worker {
            id,
            doorbell: Arc::new(io.doorbell().unwrap()),
            io,
            stack: Stack::new(cfg, [id as u8 + 1; 32], clock.now()).unwrap(),
            app: app.instantiate(),
            commands: cmd_rx,
            handoff: handoff.clone(),
            clock,
            core: None,
            max_sleep: DEFAULT_IDLE_SLEEP,
            idle_spin: DEFAULT_IDLE_SPIN,
            connector: None,
        };
        server
            .handles
            .push(std::thread::spawn(move || worker.run()));
        let (rtx, rrx) = bounded(1);
        cmd_tx
            .send(Command::Listen {
                addr: server_addr(),
                backlog: 64,
                reply: rtx,
            })
            .unwrap();
        rrx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        server.commands.push(cmd_tx);
        server.inboxes.push(in_tx);
    }
    server
}

impl Server {
    fn begin_stop(&self, drain: Duration) {
        for c in &self.commands {
            c.send(Command::Shutdown { drain }).unwrap();
        }
    }

    fn join(self) -> Vec<WorkerReport> {
        self.handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    }

    fn stop(self, drain: Duration) -> Vec<WorkerReport> {
        self.begin_stop(drain);
        self.join()
    }
}

struct Client {
    stack: Stack,
    clock: Clock,
    sent_frames: usize,
}

impl Client {
    fn new(clock: Clock) -> Client {
        let cfg = StackConfig {
            mac: CLIENT_MAC,
            ..StackConfig::default()
        };
        Client {
            stack: Stack::new(cfg, [99; 32], clock.now()).unwrap(),
            clock,
            sent_frames: 0,
        }
    }

    /// Moves frames both ways once; `route` picks the worker for each
    /// client frame (by index in the client's frame sequence).
    fn pump(&mut self, server: &Server, route: &dyn Fn(usize) -> usize) {
        let now = self.clock.now();
        let mut out: Vec<Vec<u8>> = Vec::new();
        self.stack.poll(now, &mut out);
        for f in out {
            let w = route(self.sent_frames) % server.inboxes.len();
            self.sent_frames += 1;
            server.inboxes[w].send(f).unwrap();
        }
        if let Ok(f) = server.outbox.recv_timeout(Duration::from_micros(200)) {
            self.stack.receive(now, &f);
            while let Ok(f) = server.outbox.try_recv() {
                self.stack.receive(now, &f);
            }
        }
    }

    fn connect(&mut self) -> ConnId {
        self.stack
            .connect(
                self.clock.now(),
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 0),
                server_addr(),
                SERVER_MAC,
            )
            .unwrap()
    }
}

/// Sends `data` through an echo server and reads it all back.
fn echo_round_trip(
    client: &mut Client,
    server: &Server,
    data: &[u8],
    route: &dyn Fn(usize) -> usize,
) -> Vec<u8> {
    let c = client.connect();
    let (mut sent, mut back) = (0usize, Vec::new());
    let mut buf = vec![0u8; 65536];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut shut = false;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "echo stalled: sent {sent}, got {}",
            back.len()
        );
        client.pump(server, route);
        while client.stack.next_event().is_some() {}
        if client.stack.state(c) == Ok(State::SynSent) {
            continue;
        }
        if sent < data.len() {
            match client.stack.send(c, &data[sent..]) {
                Ok(n) => sent += n,
                Err(TcpError::WouldBlock) => {}
                Err(e) => panic!("send: {e}"),
            }
        } else if !shut {
            client.stack.shutdown_write(c).unwrap();
            shut = true;
        }
        match client.stack.recv(c, &mut buf) {
            Ok(0) => break,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(TcpError::WouldBlock) => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    client.stack.close(c).unwrap();
    back
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn one_worker_echoes_a_megabyte_and_shuts_down() {
    let clock = Clock::new();
    let server = start(1, BuiltinApp::Echo, clock);
    let mut client = Client::new(clock);
    let data = pattern(1 << 20);
    let back = echo_round_trip(&mut client, &server, &data, &|_| 0);
    assert!(back == data, "echoed bytes differ");
    let reports = server.stop(Duration::from_millis(200));
    assert_eq!(reports[0].accepted, 1);
    assert!(reports[0].rx_frames > 100);
    // The loop counters: every busy iteration is an iteration, and every
    // kick hands the link at least one frame.
    let w = &reports[0];
    assert!(w.busy_iterations > 0 && w.busy_iterations <= w.iterations);
    assert!(w.tx_kicks > 0 && w.tx_kicks <= w.stack.tx_frames, "{w:?}");
}

#[test]
fn echo_answers_a_request_whose_segment_carries_the_fin_then_closes() {
    let clock = Clock::new();
    let server = start(1, BuiltinApp::Echo, clock);
    let mut client = Client::new(clock);
    let c = client.connect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client.stack.state(c) != Ok(State::Established) {
        assert!(std::time::Instant::now() < deadline, "no handshake");
        client.pump(&server, &|_| 0);
    }
    client.pump(&server, &|_| 0); // sends the ACK completing the handshake
                                  // Let the worker accept first: data arriving with the accept would be
                                  // read by `on_accepted`'s read and then again by its own event.
    std::thread::sleep(Duration::from_millis(20));
    // Data and FIN queued together leave in one segment: the echo sees
    // the request and the end of the stream in the same readable event.
    let request = pattern(64);
    assert_eq!(client.stack.send(c, &request), Ok(64));
    client.stack.shutdown_write(c).unwrap();
    let (mut back, mut buf) = (Vec::new(), [0u8; 256]);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "echo did not close: got {} bytes",
            back.len()
        );
        client.pump(&server, &|_| 0);
        match client.stack.recv(c, &mut buf) {
            Ok(0) => break,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(TcpError::WouldBlock) => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    assert_eq!(back, request);
    client.stack.close(c).unwrap();
    let reports = server.stop(Duration::from_millis(200));
    assert_eq!(reports[0].reset_at_shutdown, 0);
}

#[test]
fn frames_landing_on_the_wrong_worker_are_handed_to_the_owner() {
    let clock = Clock::new();
    let server = start(2, BuiltinApp::Echo, clock);
    let mut client = Client::new(clock);
    let data = pattern(256 * 1024);
    // The SYN goes to worker 1, which then owns the connection; every
    // other frame alternates between the workers.
    let back = echo_round_trip(&mut client, &server, &data, &|i| if i == 0 { 1 } else { i });
    assert!(back == data, "echoed bytes differ");
    let reports = server.stop(Duration::from_millis(200));
    assert_eq!(reports[0].accepted, 0, "worker 0 must not own the flow");
    assert_eq!(reports[1].accepted, 1);
    assert!(
        reports[0].handed_off > 10,
        "worker 0 handed off {} frames",
        reports[0].handed_off
    );
    assert_eq!(reports[0].handoff_drops + reports[1].handoff_drops, 0);
}

#[test]
fn graceful_shutdown_sends_fin_to_open_connections() {
    let clock = Clock::new();
    let server = start(2, BuiltinApp::Discard, clock);
    let mut client = Client::new(clock);
    let c = client.connect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client.stack.state(c) != Ok(State::Established) {
        assert!(std::time::Instant::now() < deadline);
        client.pump(&server, &|_| 0);
    }
    client.pump(&server, &|_| 0); // sends the ACK completing the handshake
    std::thread::sleep(Duration::from_millis(20));
    // Nothing unread on the server: shutdown closes with FIN, not RST,
    // and the worker exits once the client has acknowledged it.
    server.begin_stop(Duration::from_secs(10));
    let mut buf = [0u8; 16];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no FIN from the server"
        );
        client.pump(&server, &|_| 0);
        match client.stack.recv(c, &mut buf) {
            Ok(0) => break,
            Err(TcpError::WouldBlock) => {}
            other => panic!("expected end of stream, got {other:?}"),
        }
    }
    client.stack.close(c).unwrap();
    for _ in 0..20 {
        client.pump(&server, &|_| 0);
    }
    let reports = server.join();
    assert_eq!(reports[0].accepted, 1);
    assert_eq!(
        reports[0].reset_at_shutdown, 0,
        "the connection had to be reset"
    );
}

#[test]
fn http_app_answers_and_honours_connection_close() {
    let clock = Clock::new();
    let server = start(1, BuiltinApp::Http { body_bytes: 10 }, clock);
    let mut client = Client::new(clock);
    let c = client.connect();
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /again HTTP/1.1\r\nConnection: close\r\n\r\n";
    let mut sent = false;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "got so far: {}",
            String::from_utf8_lossy(&got)
        );
        client.pump(&server, &|_| 0);
        while client.stack.next_event().is_some() {}
        if !sent && client.stack.state(c) == Ok(State::Established) {
            client.stack.send(c, req).unwrap();
            sent = true;
        }
        match client.stack.recv(c, &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8(got).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert!(
        text.ends_with("Connection: close\r\n\r\nabcdefghij"),
        "{text}"
    );
    // The server closed first: it holds TIME-WAIT, we are in CLOSE-WAIT.
    assert_eq!(client.stack.state(c), Ok(State::CloseWait));
    server.stop(Duration::from_millis(100));
}

/// A lone worker with nothing to do, driven step by step; the senders
/// keep its inbox and command channel open.
struct IdleWorker {
    worker: Worker<ChannelIo>,
    state: LoopState,
    commands: Sender<Command>,
    _inbox: Sender<Vec<u8>>,
    _outbox: Receiver<Vec<u8>>,
}

impl IdleWorker {
    fn new(idle_spin: Duration) -> IdleWorker {
        let (in_tx, in_rx) = unbounded();
        let (out_tx, out_rx) = unbounded();
        let (cmd_tx, cmd_rx) = unbounded();
        let clock = Clock::new();
        let io = ChannelIo::new(in_rx, out_tx, 64);
        let worker = Worker {
            id: 0,
            doorbell: Arc::new(io.doorbell().unwrap()),
            io,
            stack: Stack::new(StackConfig::default(), [1; 32], clock.now()).unwrap(),
            app: BuiltinApp::Echo.instantiate(),
            commands: cmd_rx,
            handoff: Arc::new(Handoff::new(1, 64)),
            clock,
            core: None,
            // Short sleeps: the tests step through several.
            max_sleep: Duration::from_millis(1),
            idle_spin,
            connector: None,
        };
        IdleWorker {
            worker,
            state: LoopState::new(0),
            commands: cmd_tx,
            _inbox: in_tx,
            _outbox: out_rx,
        }
    }

    /// Steps until the worker has answered a report request (commands
    /// are looked at every 64 iterations, or before a sleep).
    fn report(&mut self) -> WorkerReport {
        let (tx, rx) = bounded(1);
        self.commands.send(Command::Report(tx)).unwrap();
        loop {
            assert!(self.worker.step(&mut self.state).is_none());
            if let Ok(r) = rx.try_recv() {
                return r;
            }
        }
    }
}

#[test]
fn a_busy_polling_worker_never_sleeps() {
    let mut w = IdleWorker::new(Duration::MAX);
    for _ in 0..5_000 {
        assert!(w.worker.step(&mut w.state).is_none());
    }
    let r = w.report();
    assert!(r.iterations >= 5_000);
    assert_eq!(r.sleeps, 0, "{r:?}");
    assert_eq!(r.busy_iterations, 0, "it had nothing to do");
}

#[test]
fn an_idle_worker_polls_for_its_spin_time_before_it_sleeps() {
    let spin = Duration::from_millis(20);
    let mut w = IdleWorker::new(spin);
    let start = std::time::Instant::now();
    // Every iteration is idle from the first on: no sleep may come before
    // the spin has passed on the worker's clock, which is monotonic.
    let slept_at = loop {
        let r = w.report();
        if r.sleeps > 0 {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never slept: {r:?}"
        );
    };
    assert!(
        slept_at >= spin,
        "slept after {slept_at:?}, before its {spin:?} spin"
    );
    // Once asleep, it does not spin again while nothing comes: the next
    // empty iterations sleep (up to max_sleep each).
    let before = w.report().sleeps;
    for _ in 0..10 {
        assert!(w.worker.step(&mut w.state).is_none());
    }
    assert!(w.report().sleeps >= before + 10);
}

#[test]
fn a_gap_between_turns_of_the_loop_is_counted_as_a_stall() {
    let mut w = IdleWorker::new(Duration::MAX);
    assert!(w.worker.step(&mut w.state).is_none());
    // The thread is away (as if preempted) between two turns.
    std::thread::sleep(Duration::from_millis(5));
    assert!(w.worker.step(&mut w.state).is_none());
    let r = w.report();
    assert!(r.stalls >= 1, "{r:?}");
    assert!(r.longest_stall >= Duration::from_millis(5), "{r:?}");
}

#[test]
fn the_loops_own_sleeps_are_not_stalls() {
    let mut w = IdleWorker::new(Duration::ZERO);
    // Nothing wakes it: every sleep lasts the whole max_sleep.
    w.worker.max_sleep = Duration::from_millis(30);
    let mut r = w.report();
    while r.sleeps < 5 {
        assert!(w.worker.step(&mut w.state).is_none());
        r = w.report();
    }
    // Five sleeps of 30 ms: counted, any of them would be the longest
    // stall. (A stall this long for another reason would need the test
    // thread preempted for 30 ms.)
    assert!(r.longest_stall < Duration::from_millis(30), "{r:?}");
}
