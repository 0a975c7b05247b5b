//! xdp-tcp: a userspace TCP stack for an AF_XDP kernel-bypass fast path.
//!
//! Layers (dependencies point down): `sim` → `tcp` → `wire`.
//! See `docs/ARCHITECTURE.md`.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod runtime;
pub mod sim;
pub mod tcp;
pub mod wire;
