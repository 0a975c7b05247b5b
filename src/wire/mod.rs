//! Packet formats: zero-copy views over byte slices, plus emit.
pub mod seq;
pub use seq::SeqNum;
