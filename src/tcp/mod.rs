//! The TCP engine, sans-IO: no clock reads, no syscalls, no threads, no
//! randomness of its own. Time and entropy are passed in.
pub mod time;
pub use time::Instant;
pub mod congestion;
pub mod rto;
