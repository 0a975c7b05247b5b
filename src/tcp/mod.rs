//! The TCP engine, sans-IO: no clock reads, no syscalls, no threads, no
//! randomness of its own. Time and entropy are passed in.
pub mod assembler;
pub mod recv_buffer;
pub mod send_buffer;
pub mod time;
pub mod timer_wheel;
pub use time::Instant;
