//! Workers, the control side, cross-core hand-off and shutdown.
//!
//! One worker per NIC queue, pinned to a core, owns its frame I/O (an
//! AF_XDP socket in production), its engine [`Stack`](crate::tcp::Stack)
//! and its application instance: run to completion, no locks and no
//! allocation on the per-packet path. The control side starts and stops
//! workers and talks to them only through channels. [`serve()`] runs a
//! built-in application; [`start_threaded`] bridges connections to
//! ordinary threads (see [`crate::app::bridge`]); [`start_app_runtime`]
//! runs any [`App`](crate::app::App), listening or not, and with client
//! ports lets it open connections (see [`active_open`]).
pub mod active_open;
pub mod app_runtime;
pub mod channel_io;
pub mod clock;
pub mod doorbell;
pub mod handoff;
pub mod io;
pub mod neighbor;
pub mod neighbor_monitor;
pub mod neighbor_table;
pub mod rss;
pub mod serve;
pub mod threaded;
pub mod worker;

pub use active_open::{ClientPorts, ClientSide, Connector, NextHopCache, PortRange};
pub use app_runtime::{start_app_runtime, AppRuntime};
pub use channel_io::ChannelIo;
pub use clock::Clock;
pub use doorbell::Doorbell;
pub use handoff::Handoff;
pub use io::FrameIo;
pub use neighbor_table::NeighborConfig;
pub use serve::{serve, ClientConfig, FastPathConfig, ServeConfig, ServeError, ServeReport};
pub use threaded::{
    start_bridged, start_threaded, BridgedOptions, BridgedWorkers, ThreadedConfig, ThreadedServer,
};
pub use worker::{Command, LoopState, Worker, WorkerReport};
