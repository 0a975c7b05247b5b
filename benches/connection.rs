//! The engine's cost per short connection (issue 5's `short` workload):
//! one iteration is a whole connection between two in-memory stacks,
//! driven the way `xdp-tcp load --workload short` and the echo server
//! drive theirs:
//!
//! client `connect` → SYN → SYN-ACK → ACK + a 64-byte request → the
//! server accepts, reads and echoes it → the client reads the response
//! and closes (FIN) → the server reads end of stream and closes (FIN) →
//! the client's last ACK; the client keeps the tuple in TIME-WAIT, the
//! server frees its connection.
//!
//! The virtual clock advances 100 µs per connection (10 000 connections
//! per second), so TIME-WAIT tuples pile up and are reused after 1 s as
//! on a real client (`tcp_tw_reuse`), and the ephemeral-port search, the
//! timer wheel and the flow table see their steady-state population.
//! Frames travel through reusable buffers, so the harness allocates
//! nothing per connection: what allocation shows is the engine's.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xdp_tcp::tcp::{ConnId, Event, Instant, Stack, StackConfig, Transmit};
use xdp_tcp::wire::MacAddr;

const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const REQUEST: [u8; 64] = [b'x'; 64];
/// Virtual time per connection.
const STEP: Duration = Duration::from_micros(100);

/// Frames in flight one way: one reusable arena plus frame boundaries.
#[derive(Default)]
struct Wire {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Wire {
    fn deliver(&mut self, to: &mut Stack, now: Instant) -> usize {
        let mut start = 0;
        for &end in &self.ends {
            to.receive(now, &self.bytes[start..end]);
            start = end;
        }
        let n = self.ends.len();
        self.bytes.clear();
        self.ends.clear();
        n
    }
}

impl Transmit for Wire {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        let start = self.bytes.len();
        self.bytes.resize(start + len, 0);
        let n = fill(&mut self.bytes[start..]);
        self.bytes.truncate(start + n);
        self.ends.push(start + n);
        true
    }
}

/// The two stacks and the clock of the short-connection loop.
struct ShortLoop {
    client: Stack,
    server: Stack,
    server_addr: SocketAddrV4,
    now: Instant,
    c2s: Wire,
    s2c: Wire,
    buf: [u8; 256],
    /// Frames exchanged, both ways, over all connections.
    frames: u64,
}

impl ShortLoop {
    fn new() -> ShortLoop {
        let now = Instant::from_secs(1);
        let client_cfg = StackConfig {
            mac: CLIENT_MAC,
            ..StackConfig::default()
        };
        let server_cfg = StackConfig {
            mac: SERVER_MAC,
            ..StackConfig::default()
        };
        let client = Stack::new(client_cfg, [1; 32], now).unwrap();
        let mut server = Stack::new(server_cfg, [2; 32], now).unwrap();
        let server_addr = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7);
        server.listen(server_addr, 1024).unwrap();
        ShortLoop {
            client,
            server,
            server_addr,
            now,
            c2s: Wire::default(),
            s2c: Wire::default(),
            buf: [0; 256],
            frames: 0,
        }
    }

    /// The server's echo application: accept, echo, close after the
    /// peer's FIN.
    fn server_events(&mut self) {
        while let Some(ev) = self.server.next_event() {
            let conn = match ev {
                Event::Accepted { listener, .. } => self.server.accept(listener).unwrap(),
                Event::Readable(c) => c,
                Event::Closed { conn, .. } => {
                    let _ = self.server.close(conn);
                    continue;
                }
                _ => continue,
            };
            loop {
                match self.server.recv(conn, &mut self.buf) {
                    Ok(0) => {
                        self.server.close(conn).unwrap();
                        break;
                    }
                    Ok(n) => {
                        assert_eq!(self.server.send(conn, &self.buf[..n]).unwrap(), n);
                    }
                    Err(_) => break,
                }
            }
        }
    }

    /// The client's side: request on connect, close after the response.
    /// Returns true once the response was read and the connection closed.
    fn client_events(&mut self, conn: ConnId) -> bool {
        let mut done = false;
        while let Some(ev) = self.client.next_event() {
            match ev {
                Event::Connected(c) => {
                    self.client.set_nodelay(c, true).unwrap();
                    assert_eq!(self.client.send(c, &REQUEST).unwrap(), REQUEST.len());
                }
                Event::Readable(c) => {
                    let n = self.client.recv(c, &mut self.buf).unwrap();
                    assert_eq!(&self.buf[..n], &REQUEST[..]);
                    self.client.close(c).unwrap();
                    done = true;
                }
                Event::Closed { conn: c, reason } => panic!("{c:?} closed early: {reason:?}"),
                _ => {}
            }
        }
        done && self.client.state(conn).is_err()
    }

    /// One whole connection; returns its id on the client.
    fn one(&mut self) -> ConnId {
        self.now += STEP;
        let local = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 0);
        let conn = self
            .client
            .connect(self.now, local, self.server_addr, SERVER_MAC)
            .unwrap();
        let mut closed = false;
        loop {
            self.client.poll(self.now, &mut self.c2s);
            let mut moved = self.c2s.deliver(&mut self.server, self.now);
            self.server_events();
            self.server.poll(self.now, &mut self.s2c);
            moved += self.s2c.deliver(&mut self.client, self.now);
            closed |= self.client_events(conn);
            self.frames += moved as u64;
            if moved == 0 {
                break;
            }
        }
        assert!(closed, "the exchange did not finish");
        conn
    }
}

/// The measured call, kept out of line so callgrind can collect exactly
/// it (`--toggle-collect='*timed_exchange*'`), without the warm-up.
#[inline(never)]
fn timed_exchange(lp: &mut ShortLoop) -> ConnId {
    lp.one()
}

fn bench_short(c: &mut Criterion) {
    let mut g = c.benchmark_group("connection");
    g.throughput(Throughput::Elements(1));
    let mut lp = ShortLoop::new();
    // Warm up past one pass over the ephemeral ports (28 232 by
    // default), so every new connection reuses a TIME-WAIT tuple.
    for _ in 0..30_000 {
        lp.one();
    }
    let warm_frames = lp.frames;
    let warm_reused = lp.client.stats().time_wait_reused;
    let mut iterations = 0u64;
    g.bench_function("short_exchange", |b| {
        b.iter(|| {
            iterations += 1;
            black_box(timed_exchange(&mut lp))
        })
    });
    g.finish();
    // What was timed happened: 7 frames per connection (SYN, SYN-ACK,
    // the request with the handshake's ACK, the response, FIN, FIN-ACK,
    // ACK; up to 10 if ACKs went alone), no server
    // connection left behind, TIME-WAIT tuples reused on the client.
    let frames = lp.frames - warm_frames;
    assert!(iterations > 0);
    assert!(
        (7 * iterations..=10 * iterations).contains(&frames),
        "{frames} frames for {iterations} connections"
    );
    assert_eq!(lp.server.connection_count(), 0);
    assert!(lp.client.stats().time_wait_reused > warm_reused);
}

criterion_group!(benches, bench_short);
criterion_main!(benches);
