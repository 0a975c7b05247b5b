//! The per-packet path allocates nothing in steady state: a counting global
//! allocator watches an established connection receive, acknowledge, read,
//! send and process ACKs for thousands of segments after warm-up.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use xdp_tcp::tcp::{Event, Instant, Stack, StackConfig};
use xdp_tcp::wire::MacAddr;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, CountingAllocator};

#[path = "support/frame_ring.rs"]
mod frame_ring;
use frame_ring::FrameRing;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn bulk_transfer_path_does_not_allocate_per_packet() {
    let mut now = Instant::from_secs(1);
    let cfg = |last: u8| StackConfig {
        mac: MacAddr([2, 0, 0, 0, 0, last]),
        max_connections: 16,
        ..StackConfig::default()
    };
    let mut client = Stack::new(cfg(1), [1; 32], now).unwrap();
    let mut server = Stack::new(cfg(2), [2; 32], now).unwrap();
    let server_addr = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80);
    let listener = server.listen(server_addr, 8).unwrap();
    let c = client
        .connect(
            now,
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 0),
            server_addr,
            MacAddr([2, 0, 0, 0, 0, 2]),
        )
        .unwrap();
    let (mut to_server, mut to_client) = (FrameRing::new(256), FrameRing::new(256));
    let chunk = vec![0xa5u8; 16 * 1024];
    let mut sink = vec![0u8; 64 * 1024];
    let mut s = None;
    let mut received = 0usize;

    let mut round = |client: &mut Stack, server: &mut Stack, now: Instant, s: &mut Option<_>| {
        client.poll(now, &mut to_server);
        to_server.deliver(server, now);
        server.poll(now, &mut to_client);
        to_client.deliver(client, now);
        while let Some(ev) = server.next_event() {
            if let Event::Accepted { .. } = ev {
                *s = server.accept(listener).ok();
            }
        }
        while client.next_event().is_some() {}
        let _ = client.send(c, &chunk);
        let mut got = 0;
        if let Some(id) = *s {
            while let Ok(n) = server.recv(id, &mut sink) {
                if n == 0 {
                    break;
                }
                got += n;
            }
        }
        got
    };

    // Warm-up: handshake, slow start, buffers and queues reach their size.
    for _ in 0..2000 {
        now += Duration::from_micros(100);
        received += round(&mut client, &mut server, now, &mut s);
    }
    assert!(received > 1_000_000, "warm-up moved only {received} bytes");

    let before = allocations();
    let mut measured = 0usize;
    for _ in 0..2000 {
        now += Duration::from_micros(100);
        measured += round(&mut client, &mut server, now, &mut s);
    }
    let allocations = allocations() - before;
    assert!(
        measured > 1_000_000,
        "measured phase moved only {measured} bytes"
    );
    assert_eq!(
        allocations, 0,
        "{allocations} allocations while transferring {measured} bytes in steady state"
    );
}
