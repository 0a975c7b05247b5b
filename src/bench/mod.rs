//! `xdp-tcp bench` and `xdp-tcp demo`: the side-by-side comparison of the
//! fast path and the kernel stack on the veth testbed, after the method of
//! "Opening Up Kernel-Bypass TCP Stacks" (USENIX ATC '25): same machine,
//! same workload, same client, server stacks swapped, offloads stated.
//!
//! * [`plan`]: what runs: workload cases (rows), clients, the two servers,
//!   offload modes, and the order of the runs (stacks alternate A B A B so
//!   drift hits both).
//! * [`results`]: one record per run, medians and fast/kernel ratios per
//!   cell, the text table, JSON and CSV.
//! * [`wrk`]: reads `wrk --latency` output (the external HTTP client).
//! * [`chart`]: the SVG chart of the ratios.
//! * [`testbed`], [`process`], [`runner`]: the testbed (the embedded
//!   `deploy/testbed.sh`, always torn down), servers and clients as child
//!   processes in their namespaces, pinned to separate cores, and the loop
//!   that runs everything.
//! * [`background`]: the machine's own background work that shows in
//!   latency tails (DAMON's `kdamond`), stated in the header.
//! * [`noise_floor`]: how often a thread spinning on each core used loses
//!   it, measured before the runs and stated in the header.
pub mod background;
pub mod chart;
pub mod noise_floor;
pub mod plan;
pub mod process;
pub mod results;
pub mod runner;
pub mod testbed;
pub mod wrk;
