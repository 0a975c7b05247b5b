//! Deterministic network simulator.
pub mod link;
