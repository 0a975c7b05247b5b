//! The bridge allocates nothing in steady state: after warm-up, a worker
//! running `BridgeApp` and an application thread echoing through a
//! `Stream` move megabytes without a single allocation. A counting global
//! allocator counts only on those two threads (the worker marks itself
//! from inside its frame I/O, which uses fixed frame pools like an AF_XDP
//! ring); the client engine on the test thread is not counted.
//!
//! Some things are allocated once, the first time they are needed: a
//! connection's bridge buffers (lazily, up to fixed bounds) and a
//! channel's list of waiting threads (the first time a thread blocks on
//! it). Warm-up therefore makes the application block in `read`, then
//! stalls it (every inbound buffer gets used), then stalls the client's
//! reading (every outbound buffer gets used and `write` blocks), so that
//! what is measured afterwards is the steady state.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam::channel::{bounded, Receiver, Sender};
use xdp_tcp::app::bridge::BridgeConfig;
use xdp_tcp::runtime::worker::{DEFAULT_IDLE_SLEEP, DEFAULT_IDLE_SPIN};
use xdp_tcp::runtime::{start_bridged, BridgedOptions, Clock, Doorbell, FrameIo};
use xdp_tcp::tcp::{Stack, StackConfig, State, TcpConfig, TcpError, Transmit};
use xdp_tcp::wire::MacAddr;

struct CountingAllocator;

static MEASURING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's allocations count (the worker and the app thread).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if MEASURING.load(Ordering::Relaxed) && COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: delegates to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const FRAME: usize = 2048;
const POOL: usize = 1024;

struct Frame {
    len: usize,
    buf: Box<[u8; FRAME]>,
}

fn pool(n: usize) -> (Sender<Frame>, Receiver<Frame>) {
    let (tx, rx) = bounded(n);
    for _ in 0..n {
        tx.send(Frame {
            len: 0,
            buf: Box::new([0u8; FRAME]),
        })
        .unwrap();
    }
    (tx, rx)
}

/// Takes a free frame, fills it and sends it; false when none is free.
fn transmit_into(
    free: &Receiver<Frame>,
    to: &Sender<Frame>,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> usize,
) -> bool {
    if len > FRAME {
        return false;
    }
    let Ok(mut f) = free.try_recv() else {
        return false;
    };
    f.len = fill(&mut f.buf[..len]);
    to.try_send(f).is_ok()
}

/// The worker's I/O: frames circulate between fixed pools, like UMEM
/// frames between the rings of an AF_XDP socket.
struct PoolIo {
    rx: Receiver<Frame>,
    rx_done: Sender<Frame>,
    tx: Sender<Frame>,
    tx_free: Receiver<Frame>,
}

impl Transmit for PoolIo {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        transmit_into(&self.tx_free, &self.tx, len, fill)
    }
}

impl FrameIo for PoolIo {
    fn receive_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        // Runs on the worker thread: from now on its allocations count.
        COUNTED.with(|c| c.set(true));
        let mut n = 0;
        while n < 64 {
            let Ok(frame) = self.rx.try_recv() else {
                break;
            };
            f(&frame.buf[..frame.len]);
            let _ = self.rx_done.try_send(frame);
            n += 1;
        }
        n
    }

    fn flush(&mut self) {}

    fn wait_readable(&self, timeout: Duration, _doorbell: &Doorbell) {
        // A short nap instead of a select (which allocates its handle list).
        std::thread::sleep(timeout.min(Duration::from_micros(50)));
    }

    fn doorbell(&self) -> std::io::Result<Doorbell> {
        Ok(Doorbell::with_channel())
    }
}

/// The client's transmit side into the worker's receive pool.
struct ClientTx<'a> {
    free: &'a Receiver<Frame>,
    to: &'a Sender<Frame>,
}

impl Transmit for ClientTx<'_> {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        transmit_into(self.free, self.to, len, fill)
    }
}

fn byte_at(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8
}

#[test]
fn bridged_echo_allocates_nothing_in_steady_state() {
    let server_mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let client_mac = MacAddr([2, 0, 0, 0, 0, 2]);
    let server = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7);
    // Client → worker frames and their return path, and the reverse.
    let (up_free_tx, up_free) = pool(POOL);
    let (up_tx, up_rx) = bounded(POOL);
    let (down_free_tx, down_free) = pool(POOL);
    let (down_tx, down_rx) = bounded(POOL);
    let io = PoolIo {
        rx: up_rx,
        rx_done: up_free_tx,
        tx: down_tx,
        tx_free: down_free,
    };
    let options = BridgedOptions {
        addr: *server.ip(),
        ports: vec![server.port()],
        backlog: 8,
        drain: Duration::from_millis(100),
        stack: StackConfig {
            mac: server_mac,
            // Receive auto-tuning reallocates the buffer while it ramps up,
            // at moments that depend on RTT samples (its own tests cover
            // that); this test is about the steady state, so the buffer
            // size is fixed.
            tcp: TcpConfig {
                recv_buffer_max: TcpConfig::default().recv_buffer,
                ..TcpConfig::default()
            },
            ..StackConfig::default()
        },
        bridge: BridgeConfig::default(),
        cores: Vec::new(),
        idle_sleep: DEFAULT_IDLE_SLEEP,
        idle_spin: DEFAULT_IDLE_SPIN,
        client: None,
    };
    let workers = start_bridged(vec![io], options).unwrap();
    let listener = workers.listener(server.port()).unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let app = std::thread::spawn(move || {
        COUNTED.with(|c| c.set(true));
        let mut s = listener.accept().unwrap();
        let mut buf = vec![0u8; 32 * 1024];
        // The client sends nothing yet: this read blocks.
        let n = s.read(&mut buf).unwrap();
        s.write_all(&buf[..n]).unwrap();
        go_rx.recv().unwrap();
        loop {
            match s.read(&mut buf).unwrap() {
                0 => break,
                n => s.write_all(&buf[..n]).unwrap(),
            }
        }
    });

    let clock = Clock::new();
    let mut client = Stack::new(
        StackConfig {
            mac: client_mac,
            ..StackConfig::default()
        },
        [7; 32],
        clock.now(),
    )
    .unwrap();
    let c = client
        .connect(
            clock.now(),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 0),
            server,
            server_mac,
        )
        .unwrap();
    let warm_up = 4u64 << 20;
    let measured = 16u64 << 20;
    let total = warm_up + measured;
    let (mut sent, mut echoed) = (0u64, 0u64);
    let mut out = vec![0u8; 64 * 1024];
    let mut inb = vec![0u8; 64 * 1024];
    let mut before = None;
    // Warm-up phases of STALL each, from the end of the handshake: the
    // client does not send; the app does not read (after its first read);
    // the client does not read.
    const STALL: Duration = Duration::from_millis(300);
    let mut established: Option<std::time::Instant> = None;
    let mut go = Some(go_tx);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while echoed < total {
        assert!(
            std::time::Instant::now() < deadline,
            "stalled: sent {sent}, echoed {echoed}"
        );
        let now = clock.now();
        client.poll(
            now,
            &mut ClientTx {
                free: &up_free,
                to: &up_tx,
            },
        );
        if let Ok(f) = down_rx.recv_timeout(Duration::from_micros(200)) {
            client.receive(now, &f.buf[..f.len]);
            let _ = down_free_tx.try_send(f);
            while let Ok(f) = down_rx.try_recv() {
                client.receive(now, &f.buf[..f.len]);
                let _ = down_free_tx.try_send(f);
            }
        }
        while client.next_event().is_some() {}
        if client.state(c) == Ok(State::SynSent) {
            continue;
        }
        let since = established
            .get_or_insert_with(std::time::Instant::now)
            .elapsed();
        if since >= 2 * STALL {
            if let Some(go) = go.take() {
                go.send(()).unwrap();
            }
        }
        let client_reads = since >= 3 * STALL;
        if sent < total && since >= STALL {
            let n = (total - sent).min(out.len() as u64) as usize;
            for (i, b) in out[..n].iter_mut().enumerate() {
                *b = byte_at(sent + i as u64);
            }
            match client.send(c, &out[..n]) {
                Ok(k) => sent += k as u64,
                Err(TcpError::WouldBlock) => {}
                Err(e) => panic!("client send: {e}"),
            }
        }
        if client_reads {
            loop {
                match client.recv(c, &mut inb) {
                    Ok(0) => panic!("early EOF"),
                    Ok(n) => {
                        for (i, &b) in inb[..n].iter().enumerate() {
                            assert_eq!(
                                b,
                                byte_at(echoed + i as u64),
                                "echo differs at {}",
                                echoed + i as u64
                            );
                        }
                        echoed += n as u64;
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("client recv: {e}"),
                }
            }
        }
        if before.is_none() && client_reads && echoed >= warm_up {
            before = Some(echoed);
            MEASURING.store(true, Ordering::SeqCst);
        }
    }
    MEASURING.store(false, Ordering::SeqCst);
    let moved = echoed - before.unwrap();
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    client.shutdown_write(c).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !app.is_finished() {
        assert!(std::time::Instant::now() < deadline, "app did not see EOF");
        client.poll(
            clock.now(),
            &mut ClientTx {
                free: &up_free,
                to: &up_tx,
            },
        );
        while let Ok(f) = down_rx.try_recv() {
            client.receive(clock.now(), &f.buf[..f.len]);
            let _ = down_free_tx.try_send(f);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    app.join().unwrap();
    workers.shutdown().unwrap();
    assert!(moved >= 8 << 20, "measured only {moved} bytes");
    assert_eq!(
        allocations, 0,
        "{allocations} allocations on the worker and app threads while echoing {moved} bytes"
    );
}
