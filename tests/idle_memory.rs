//! Memory of idle established connections: 100 000 connections between two
//! in-memory stacks, then a counting global allocator's live heap bytes
//! per connection on each side. Buffers are allocated lazily, so an idle
//! connection that never carried data costs its slab slot, its flow-table
//! entry and its timer-wheel slot, not its send and receive rings.
//!
//! A second test closes 50 000 such connections from the client's side and
//! measures what their TIME-WAIT adds: a compact record each
//! (`tcp::time_wait`), not a connection.
//!
//! These are deterministic memory assertions (allocator bookkeeping, no
//! timing); the two tests take turns, since the count is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use xdp_tcp::tcp::{ConnId, Instant, ListenerId, Stack, StackConfig, Transmit};
use xdp_tcp::wire::MacAddr;

struct CountingAllocator;

/// Heap bytes allocated and not yet freed, process-wide.
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: delegates to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn live() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Held by each test while it measures.
static MEASURING: Mutex<()> = Mutex::new(());

/// The target: at most 2 KiB of heap per idle established connection.
const BUDGET_PER_CONNECTION: i64 = 2048;

const CONNECTIONS: usize = 100_000;
/// Client addresses: one address's port space holds fewer than 100 000 ports.
const CLIENT_ADDRS: usize = 4;
const PORTS_PER_ADDR: usize = CONNECTIONS / CLIENT_ADDRS;
const FIRST_PORT: u16 = 20_000;

/// Frames one poll emits, collected into reused buffers so the test's own
/// frame storage stays out of the stacks' numbers.
struct Frames {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    used: usize,
}

impl Frames {
    fn new(capacity: usize) -> Frames {
        Frames {
            bufs: (0..capacity).map(|_| vec![0u8; 128]).collect(),
            lens: vec![0; capacity],
            used: 0,
        }
    }

    fn deliver(&mut self, to: &mut Stack, now: Instant) {
        for i in 0..self.used {
            to.receive(now, &self.bufs[i][..self.lens[i]]);
        }
        self.used = 0;
    }
}

impl Transmit for Frames {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        if self.used == self.bufs.len() || len > self.bufs[self.used].len() {
            return false;
        }
        self.lens[self.used] = fill(&mut self.bufs[self.used][..len]);
        self.used += 1;
        true
    }
}

fn config(last: u8) -> StackConfig {
    StackConfig {
        mac: MacAddr([2, 0, 0, 0, 0, last]),
        max_connections: CONNECTIONS,
        ..StackConfig::default()
    }
}

/// The handles of opened connections, each side's, in storage reserved
/// before anything is measured.
struct Handles {
    client: Vec<ConnId>,
    server: Vec<ConnId>,
}

impl Handles {
    fn with_capacity(n: usize) -> Handles {
        Handles {
            client: Vec::with_capacity(n),
            server: Vec::with_capacity(n),
        }
    }
}

/// Opens `n` connections from `client` to `server`, accepting each, and
/// keeps their handles in `handles`; returns how many were accepted.
fn open_all(
    client: &mut Stack,
    server: &mut Stack,
    listener: ListenerId,
    now: Instant,
    n: usize,
    handles: &mut Handles,
) -> usize {
    const BATCH: usize = 1000;
    let server_addr = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7);
    let mut out = Frames::new(BATCH * 2);
    let mut back = Frames::new(BATCH * 2);
    let mut accepted = 0;
    for start in (0..n).step_by(BATCH) {
        for i in start..(start + BATCH).min(n) {
            let addr = Ipv4Addr::new(198, 18, 0, 2 + (i / PORTS_PER_ADDR) as u8);
            let port = FIRST_PORT + (i % PORTS_PER_ADDR) as u16;
            let id = client
                .connect(
                    now,
                    SocketAddrV4::new(addr, port),
                    server_addr,
                    MacAddr([2, 0, 0, 0, 0, 1]),
                )
                .unwrap();
            if handles.client.len() < handles.client.capacity() {
                handles.client.push(id);
            }
        }
        // SYN, SYN-ACK, ACK.
        client.poll(now, &mut out);
        out.deliver(server, now);
        server.poll(now, &mut back);
        back.deliver(client, now);
        client.poll(now, &mut out);
        out.deliver(server, now);
        while let Ok(id) = server.accept(listener) {
            accepted += 1;
            if handles.server.len() < handles.server.capacity() {
                handles.server.push(id);
            }
        }
        while client.next_event().is_some() {}
        while server.next_event().is_some() {}
    }
    accepted
}

#[test]
fn idle_established_connections_cost_at_most_2_kib_each() {
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::from_secs(1);
    let mut handles = Handles::with_capacity(0);
    let before = live();
    let mut server = Stack::new(config(1), [1; 32], now).unwrap();
    let listener = server
        .listen(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7), 4096)
        .unwrap();
    let server_empty = live() - before;

    let before_client = live();
    let mut client = Stack::new(config(2), [2; 32], now).unwrap();
    let client_empty = live() - before_client;

    let accepted = open_all(
        &mut client,
        &mut server,
        listener,
        now,
        CONNECTIONS,
        &mut handles,
    );
    assert_eq!(accepted, CONNECTIONS);
    assert_eq!(server.connection_count(), CONNECTIONS);
    assert_eq!(client.connection_count(), CONNECTIONS);
    // Idle: neither side has anything left to send.
    let mut rest = Frames::new(16);
    client.poll(now, &mut rest);
    server.poll(now, &mut rest);
    assert_eq!(rest.used, 0, "the connections are idle");
    drop(rest);

    let both = live() - before;
    drop(client);
    let server_total = live() - before;
    let client_total = both - server_total;
    let per_server_conn = server_total / CONNECTIONS as i64;
    let per_client_conn = client_total / CONNECTIONS as i64;
    println!(
        "idle memory: server {server_total} B ({per_server_conn} B per connection; \
         {server_empty} B of it preallocated by Stack::new), client {client_total} B \
         ({per_client_conn} B per connection; {client_empty} B preallocated)"
    );
    assert!(
        per_server_conn <= BUDGET_PER_CONNECTION,
        "a passive idle connection costs {per_server_conn} B of heap"
    );
    assert!(
        per_client_conn <= BUDGET_PER_CONNECTION,
        "an active idle connection costs {per_client_conn} B of heap"
    );
}

/// Polls both stacks and delivers what they send to each other until
/// neither has anything left.
fn exchange(
    client: &mut Stack,
    server: &mut Stack,
    now: Instant,
    out: &mut Frames,
    back: &mut Frames,
) {
    loop {
        client.poll(now, out);
        let sent = out.used;
        out.deliver(server, now);
        server.poll(now, back);
        let answered = back.used;
        back.deliver(client, now);
        if sent == 0 && answered == 0 {
            return;
        }
    }
}

/// At most this much heap per TIME-WAIT, on top of what the connection
/// held while established (its 1.5 KiB slot in the preallocated table is
/// free for another connection once it is in TIME-WAIT).
const BUDGET_PER_TIME_WAIT: i64 = 256;

#[test]
fn a_time_wait_costs_a_compact_record_not_a_connection() {
    const CLOSED: usize = 50_000;
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::from_secs(1);
    let mut server = Stack::new(config(1), [1; 32], now).unwrap();
    let listener = server
        .listen(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7), 4096)
        .unwrap();
    let mut client = Stack::new(config(2), [2; 32], now).unwrap();
    let mut handles = Handles::with_capacity(CLOSED);
    let mut out = Frames::new(2000);
    let mut back = Frames::new(2000);
    assert_eq!(
        open_all(
            &mut client,
            &mut server,
            listener,
            now,
            CLOSED,
            &mut handles
        ),
        CLOSED
    );
    let established = live();

    // The client closes first (FIN, ACK), then the server (FIN, ACK): the
    // client's side of each ends in TIME-WAIT, the server's closed.
    for &id in &handles.client {
        client.close(id).unwrap();
    }
    exchange(&mut client, &mut server, now, &mut out, &mut back);
    for &id in &handles.server {
        server.close(id).unwrap();
    }
    exchange(&mut client, &mut server, now, &mut out, &mut back);
    while client.next_event().is_some() {}
    while server.next_event().is_some() {}
    assert_eq!(client.time_wait_records(), CLOSED);
    assert_eq!(client.connection_count(), CLOSED);
    assert_eq!(client.busy_connections(), 0);
    assert_eq!(server.connection_count(), 0);

    // The server freed everything it could; what the client holds beyond
    // the established state is the records.
    let per_time_wait = (live() - established) / CLOSED as i64;
    println!(
        "TIME-WAIT memory: {per_time_wait} B of heap per TIME-WAIT connection beyond the \
         established state ({CLOSED} records)"
    );
    assert!(
        per_time_wait <= BUDGET_PER_TIME_WAIT,
        "a TIME-WAIT costs {per_time_wait} B of heap"
    );
}
