//! The kernel load client allocates nothing per request in steady state:
//! a counting global allocator watches a loopback rpc run (kernel client
//! against the kernel echo, in this process) of one length and of three
//! times that length. Setup allocates the same in both; a per-request
//! allocation would make the difference grow with the extra requests.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use xdp_tcp::kernel::load::{run, KernelLoadOptions};
use xdp_tcp::kernel::{serve, KernelAppKind, KernelServerConfig};
use xdp_tcp::load::{LoadSpec, Workload};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// (allocations during the run, requests answered) for a `workload` run
/// of `duration` (no warm-up: every request counts).
fn measured_run(target: SocketAddrV4, workload: Workload, duration: Duration) -> (u64, u64) {
    let spec = LoadSpec {
        connections: 4,
        pipeline: if workload == Workload::Rpc { 2 } else { 1 },
        duration,
        warmup: Duration::ZERO,
        ..LoadSpec::new(workload, target)
    };
    let before = allocations();
    let report = run(
        &spec,
        &KernelLoadOptions::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let allocations = allocations() - before;
    assert_eq!(report.errors + report.connect_errors, 0, "{report:?}");
    (allocations, report.requests)
}

#[test]
fn requests_and_short_connections_allocate_nothing_in_steady_state() {
    let stop = AtomicBool::new(false);
    let config = KernelServerConfig::new(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), 1);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            serve(&config, KernelAppKind::Echo, &stop, move |a| {
                tx.send(a).unwrap()
            })
        });
        let target = rx.recv().unwrap();
        for workload in [Workload::Rpc, Workload::Short] {
            let (short_allocs, short_requests) =
                measured_run(target, workload, Duration::from_millis(200));
            let (long_allocs, long_requests) =
                measured_run(target, workload, Duration::from_millis(600));
            let extra_requests = long_requests.saturating_sub(short_requests);
            let extra_allocs = long_allocs.saturating_sub(short_allocs);
            eprintln!(
                "{workload}: {short_allocs} allocations for {short_requests} requests, \
                 {long_allocs} for {long_requests}"
            );
            assert!(
                extra_requests > 100,
                "the longer run must answer more requests"
            );
            assert!(
                extra_allocs < 50 + extra_requests / 100,
                "{workload}: {extra_allocs} more allocations for {extra_requests} more requests"
            );
        }
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
    });
}
