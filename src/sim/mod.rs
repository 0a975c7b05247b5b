//! Deterministic network simulator: engines joined by impaired links on a
//! virtual clock. Every random choice comes from seeded generators, so a
//! failing run prints a seed that replays it exactly.
pub mod link;
pub mod network;
pub mod scenario;

pub use link::{GilbertElliott, Impairments, Link, LinkStats};
pub use network::{HostId, Network};
pub use scenario::{run_transfer, TransferReport, TransferSpec};
