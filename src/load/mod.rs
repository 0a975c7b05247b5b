//! The load generator's sans-IO core, shared by the client on kernel
//! sockets (`kernel::load`) and the client on the fast path
//! (`load::fast`), so both stacks run exactly the same workload logic.
//!
//! * [`LoadSpec`] / [`Workload`]: what to run (RPC, HTTP, short
//!   connections, bulk, idle scale), closed loop (connections × pipeline
//!   depth) or open loop (a fixed request rate).
//! * [`RequestStream`]: one connection's requests and responses: what to
//!   send, how to frame what comes back, the latency of each response.
//! * [`Pacer`]: the intended send times of an open-loop connection.
//!   Latency is measured from the *intended* send time, so a stalled
//!   server shows in the tail instead of being hidden by the client
//!   waiting (coordinated omission).
//! * [`LoadRecorder`] / [`LoadReport`]: counters and an HDR histogram per
//!   client thread, merged into one report (JSON for `xdp-tcp bench`).
//!
//! Time is passed in as nanoseconds since the client's start, so each
//! driver uses its own clock.
pub mod fast;
pub mod pacer;
pub mod report;
pub mod session;
pub mod spec;

pub use fast::{run_fast_load, FastLoadConfig, FastLoadError, LoadApp};
pub use pacer::Pacer;
pub use report::{LatencySummary, LoadRecorder, LoadReport};
pub use session::{RequestStream, ResponseFraming, SessionError};
pub use spec::{LoadSpec, SpecError, Workload};
