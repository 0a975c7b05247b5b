//! The fast-path load client allocates nothing per request in steady
//! state: a [`LoadApp`] runs RPC against the `echo` app on a second engine
//! (frames passed in memory), and a counting global allocator watches
//! thousands of requests after warm-up.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use xdp_tcp::app::echo::Echo;
use xdp_tcp::load::{LoadApp, LoadSpec, Workload};
use xdp_tcp::runtime::{ClientPorts, Connector};
use xdp_tcp::tcp::{Instant, Stack, StackConfig};
use xdp_tcp::wire::MacAddr;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, CountingAllocator};

#[path = "support/frame_ring.rs"]
mod frame_ring;
use frame_ring::FrameRing;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[path = "support/app_events.rs"]
mod app_events;
use app_events::dispatch;

#[test]
fn rpc_requests_do_not_allocate_in_steady_state() {
    let client_ip = Ipv4Addr::new(198, 18, 0, 2);
    let server = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7);
    let (client_mac, server_mac) = (MacAddr([2, 0, 0, 0, 0, 2]), MacAddr([2, 0, 0, 0, 0, 1]));
    let mut now = Instant::from_secs(1);
    let config = |mac| StackConfig {
        mac,
        ..StackConfig::default()
    };
    let mut client = Stack::new(config(client_mac), [1; 32], now).unwrap();
    let mut srv = Stack::new(config(server_mac), [2; 32], now).unwrap();
    srv.listen(server, 64).unwrap();
    let mut connector = Connector::new(
        Arc::new(ClientPorts {
            addrs: vec![client_ip],
            range: "20000-20999".parse().unwrap(),
            workers: 1,
            rss: None,
        }),
        0,
        Arc::new(HashMap::from([(*server.ip(), server_mac)])),
        None,
    );
    let mut spec = LoadSpec::new(Workload::Rpc, server);
    spec.connections = 4;
    spec.pipeline = 2;
    spec.warmup = Duration::ZERO;
    spec.duration = Duration::from_secs(3600);
    let mut load = LoadApp::standalone(&spec);
    let mut echo = Echo::new();
    let (mut c2s, mut s2c) = (FrameRing::new(512), FrameRing::new(512));
    let mut step = |now: Instant| {
        client.poll(now, &mut c2s);
        c2s.deliver(&mut srv, now);
        dispatch(&mut srv, &mut echo, now, None);
        srv.poll(now, &mut s2c);
        s2c.deliver(&mut client, now);
        dispatch(&mut client, &mut load, now, Some(&mut connector));
    };
    for _ in 0..3000 {
        now += Duration::from_micros(20);
        step(now);
    }
    let before = allocations();
    for _ in 0..5000 {
        now += Duration::from_micros(20);
        step(now);
    }
    let allocations = allocations() - before;
    let (report, integrity_errors) = load.report().expect("the workload runs");
    assert_eq!(integrity_errors, 0);
    assert_eq!((report.errors, report.connect_errors), (0, 0), "{report:?}");
    // 4 connections × 2 in flight, one round trip per step or two.
    assert!(report.requests > 10_000, "{report:?}");
    assert_eq!(allocations, 0, "allocations during 5000 steps of RPC");
}
