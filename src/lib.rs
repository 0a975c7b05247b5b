//! xdp-tcp: a userspace TCP stack for an AF_XDP kernel-bypass fast path.
//!
//! Layers (dependencies point down): `sim` → `tcp` → `wire`; `xdp` (AF_XDP
//! I/O, the only module with `unsafe`) → `tcp`.
//! See `docs/ARCHITECTURE.md`.
#![deny(unsafe_code)]

pub mod affinity;
pub mod app;
pub mod bench;
pub mod cli;
pub mod impair;
pub mod kernel;
pub mod load;
pub mod runtime;
pub mod sim;
pub mod tcp;
pub mod wire;
#[allow(unsafe_code)]
pub mod xdp;
