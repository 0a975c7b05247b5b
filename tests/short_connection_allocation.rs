//! Short connections reuse the storage of the ones before them: with the
//! stack's storage pool (`StackConfig::storage_pool`), a new connection
//! takes the rings and the SACK scoreboard records an ended connection
//! (freed, or in TIME-WAIT) handed back, instead of allocating them. A
//! counting global allocator measures allocations per connection, in
//! steady state, with the pool and without it (`storage_pool: 0`), over
//! the same exchanges; the byte streams are checked too.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use xdp_tcp::tcp::{ConnId, Event, Instant, ListenerId, Stack, StackConfig};
use xdp_tcp::wire::MacAddr;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, CountingAllocator};

#[path = "support/frame_ring.rs"]
mod frame_ring;
use frame_ring::FrameRing;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

/// A client and an echo server, one connection at a time: connect, a
/// 64-byte request, the echoed response, the client closes, the server
/// closes when it reads end of stream.
struct ShortLoop {
    now: Instant,
    client: Stack,
    server: Stack,
    listener: ListenerId,
    to_server: FrameRing,
    to_client: FrameRing,
    accepted: Vec<ConnId>,
}

impl ShortLoop {
    fn new(storage_pool: usize) -> ShortLoop {
        let now = Instant::from_secs(1);
        let cfg = |last: u8| StackConfig {
            mac: MacAddr([2, 0, 0, 0, 0, last]),
            max_connections: 4096,
            storage_pool,
            ..StackConfig::default()
        };
        let client = Stack::new(cfg(1), [1; 32], now).unwrap();
        let mut server = Stack::new(cfg(2), [2; 32], now).unwrap();
        let listener = server
            .listen(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80), 64)
            .unwrap();
        ShortLoop {
            now,
            client,
            server,
            listener,
            to_server: FrameRing::new(64),
            to_client: FrameRing::new(64),
            accepted: Vec::with_capacity(16),
        }
    }

    /// One whole connection; checks the echoed bytes.
    fn one(&mut self, n: u64) {
        self.now += Duration::from_millis(1);
        let request = [(n % 251) as u8; 64];
        let c = self
            .client
            .connect(
                self.now,
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 0),
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80),
                SERVER_MAC,
            )
            .unwrap();
        let mut sent = false;
        let mut response = [0u8; 128];
        let mut got = 0;
        let mut client_closed = false;
        for _ in 0..32 {
            self.client.poll(self.now, &mut self.to_server);
            self.to_server.deliver(&mut self.server, self.now);
            while let Some(ev) = self.server.next_event() {
                match ev {
                    Event::Accepted { .. } => {
                        let s = self.server.accept(self.listener).unwrap();
                        self.accepted.push(s);
                    }
                    Event::Readable(s) => {
                        let mut buf = [0u8; 128];
                        match self.server.recv(s, &mut buf) {
                            Ok(0) => self.server.close(s).unwrap(),
                            Ok(k) => assert_eq!(self.server.send(s, &buf[..k]), Ok(k)),
                            Err(_) => {}
                        }
                    }
                    _ => {}
                }
            }
            self.server.poll(self.now, &mut self.to_client);
            self.to_client.deliver(&mut self.client, self.now);
            while let Some(ev) = self.client.next_event() {
                match ev {
                    Event::Connected(_) if !sent => {
                        assert_eq!(self.client.send(c, &request), Ok(64));
                        sent = true;
                    }
                    Event::Readable(_) if !client_closed => {
                        got += self.client.recv(c, &mut response[got..]).unwrap();
                        if got == 64 {
                            assert_eq!(response[..64], request, "connection {n}");
                            self.client.close(c).unwrap();
                            client_closed = true;
                        }
                    }
                    _ => {}
                }
            }
            self.accepted.clear();
        }
        assert!(client_closed, "connection {n} did not finish");
    }
}

/// Allocations per connection over `measured` connections after `warm`.
fn allocations_per_connection(storage_pool: usize, warm: u64, measured: u64) -> f64 {
    let mut lp = ShortLoop::new(storage_pool);
    for n in 0..warm {
        lp.one(n);
    }
    let before = allocations();
    for n in warm..warm + measured {
        lp.one(n);
    }
    (allocations() - before) as f64 / measured as f64
}

#[test]
fn pooled_storage_saves_the_per_connection_allocations() {
    let without = allocations_per_connection(0, 200, 500);
    let with = allocations_per_connection(
        xdp_tcp::tcp::storage_pool::DEFAULT_STORAGE_POOL_LIMIT,
        200,
        500,
    );
    eprintln!("allocations per short connection: {without:.2} without the pool, {with:.2} with it");
    // Each side's two rings and its scoreboard's two vectors come from
    // the pool once warm: eight allocations fewer per connection.
    assert!(
        with <= without - 7.5,
        "pool saved too little: {without:.2} -> {with:.2}"
    );
}
