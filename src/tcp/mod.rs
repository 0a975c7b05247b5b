//! The TCP engine, sans-IO: no clock reads, no syscalls, no threads, no
//! randomness of its own. Time and entropy are passed in.
//!
//! One [`Stack`] per worker core owns many connections. The driver feeds
//! it frames with [`Stack::receive`], calls [`Stack::poll`] to run timers
//! and emit segments into a [`Transmit`], and drains [`Stack::next_event`].
pub mod ack_policy;
pub mod assembler;
pub mod config;
pub mod congestion;
pub mod conn;
pub mod error;
pub mod event;
pub mod exhausted_ports;
pub mod flow_table;
pub mod isn;
pub mod rack;
pub(crate) mod receive_window;
pub mod recv_autotune;
pub mod recv_buffer;
pub mod rto;
pub mod sack_blocks;
pub mod sack_scoreboard;
pub(crate) mod segment_checks;
pub mod send_buffer;
pub mod stack;
pub mod state;
pub mod storage_pool;
pub mod time;
pub(crate) mod time_wait;
pub mod timer_wheel;

pub use config::{KeepaliveConfig, StackConfig, TcpConfig};
pub use conn::{ConnStats, TcpInfo};
pub use error::TcpError;
pub use event::{CloseReason, ConnId, Event, ListenerId};
pub use flow_table::FourTuple;
pub use stack::{Stack, StackStats};
pub use state::State;
pub use time::Instant;

/// Where the engine puts frames it sends: a TX ring, a simulator link, a
/// test vector. Implementations hand out a buffer of at least `len` bytes
/// and call `fill`, which writes the frame and returns its length.
pub trait Transmit {
    /// Returns false, without calling `fill`, when there is no room; the
    /// engine keeps the segment pending and tries again at the next poll.
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool;
}
