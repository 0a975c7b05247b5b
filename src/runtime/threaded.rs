//! Starting a runtime whose connections are used from ordinary threads.
//!
//! [`start_threaded`] does what `serve` does — the same checks, the same
//! steering program, AF_XDP sockets and pinned workers — but runs the
//! [`BridgeApp`](crate::app::bridge::BridgeApp) on every worker and hands
//! back a [`ThreadedServer`] whose [`Listener`]s the application's own
//! threads accept from. [`start_bridged`] is the I/O-independent core of
//! it: the same workers and bridge over any [`FrameIo`] (in-memory
//! [`ChannelIo`](crate::runtime::ChannelIo) for tests without privileges).
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use xdp_tcp::runtime::{start_threaded, ThreadedConfig};
//!
//! let config = ThreadedConfig::new("eth0", "192.0.2.10".parse().unwrap(), &[7]);
//! let server = start_threaded(config).unwrap();
//! let listener = server.listener(7).unwrap();
//! std::thread::spawn(move || {
//!     while let Ok(mut stream) = listener.accept() {
//!         std::thread::spawn(move || {
//!             let mut buf = [0u8; 16384];
//!             while let Ok(n @ 1..) = stream.read(&mut buf) {
//!                 if stream.write_all(&buf[..n]).is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//! });
//! // ... later:
//! let report = server.shutdown().unwrap();
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::app::bridge::{BridgeConfig, ListenerRegistry};
use crate::app::{Listener, StreamConnector};
use crate::runtime::active_open::ClientSide;
use crate::runtime::app_runtime::{start_runtime, AppRuntime};
use crate::runtime::io::FrameIo;
use crate::runtime::serve::{
    listen_everywhere, spawn_workers, stop_workers, FastPathConfig, ServeError, ServeReport,
    WorkerHandle,
};
use crate::runtime::worker::WorkerReport;
use crate::tcp::StackConfig;
use crate::xdp::BindMode;

/// A threaded server on the fast path: where and how it runs, plus the
/// bridge's sizes.
#[derive(Debug, Clone)]
pub struct ThreadedConfig {
    /// The engine's accept backlog (`fast_path.backlog`) is per listener
    /// and worker; the bridge takes connections off it at once and
    /// `bridge.accept_backlog` bounds how many wait for the application.
    pub fast_path: FastPathConfig,
    pub bridge: BridgeConfig,
}

impl ThreadedConfig {
    /// [`FastPathConfig::new`]'s defaults and the default bridge.
    pub fn new(iface: impl Into<String>, addr: Ipv4Addr, ports: &[u16]) -> ThreadedConfig {
        ThreadedConfig {
            fast_path: FastPathConfig::new(iface, addr, ports),
            bridge: BridgeConfig::default(),
        }
    }
}

/// What [`start_bridged`] needs besides the workers' I/O.
#[derive(Debug, Clone)]
pub struct BridgedOptions {
    /// Address to listen on (0.0.0.0: every address).
    pub addr: Ipv4Addr,
    pub ports: Vec<u16>,
    /// Engine accept backlog per listener and worker.
    pub backlog: usize,
    /// How long a shutdown waits for connections to finish.
    pub drain: Duration,
    pub stack: StackConfig,
    pub bridge: BridgeConfig,
    /// Core per worker; missing entries leave placement to the scheduler.
    pub cores: Vec<Option<core_affinity::CoreId>>,
    /// Longest idle sleep of a worker (`worker::DEFAULT_IDLE_SLEEP`);
    /// application threads wake workers through the doorbell regardless.
    pub idle_sleep: Duration,
    /// How long an idle worker keeps polling before it sleeps
    /// (`worker::DEFAULT_IDLE_SPIN`; `Duration::MAX`: never).
    pub idle_spin: Duration,
    /// Client ports and next hops, for [`BridgedWorkers::connector`];
    /// None: connecting fails with `InvalidInput`.
    pub client: Option<ClientSide>,
}

/// The listener of `port` among `listeners`.
fn listener_for(listeners: &[Listener], port: u16) -> Option<Listener> {
    listeners
        .iter()
        .find(|l| l.local_addr().is_ok_and(|a| a.port() == port))
        .cloned()
}

/// Running bridged workers with their listeners. Dropping it stops the
/// workers as [`shutdown`](Self::shutdown) does.
pub struct BridgedWorkers {
    workers: Vec<WorkerHandle>,
    listeners: Vec<Listener>,
    connector: StreamConnector,
    drain: Duration,
}

/// Starts one worker per I/O, each running the bridge, listening on
/// every port of `options` (may be none, for a runtime that only
/// connects) — and returns once they all listen.
pub fn start_bridged<Io: FrameIo + 'static>(
    ios: Vec<Io>,
    options: BridgedOptions,
) -> Result<BridgedWorkers, ServeError> {
    options
        .bridge
        .validate()
        .map_err(|e| ServeError::Config(format!("bridge settings: {e}")))?;
    if ios.is_empty() {
        return Err(ServeError::Config("at least one worker is needed".into()));
    }
    if options.ports.contains(&0) {
        return Err(ServeError::Config("port 0 cannot be served".into()));
    }
    let addrs: Vec<SocketAddrV4> = options
        .ports
        .iter()
        .map(|&p| SocketAddrV4::new(options.addr, p))
        .collect();
    let mut registry = ListenerRegistry::new(&addrs, options.bridge.clone());
    let client = options.client.clone();
    let workers = spawn_workers(
        ios,
        &options.stack,
        &options.cores,
        options.idle_sleep,
        options.idle_spin,
        |doorbell| Box::new(registry.app(doorbell.clone())),
        |id| client.as_ref().map(|c| c.connector(id)),
    )?;
    let connector = registry.connector();
    let running = BridgedWorkers {
        workers,
        listeners: registry.into_listeners(),
        connector,
        drain: options.drain,
    };
    for &addr in &addrs {
        // On failure `running` is dropped, which stops the workers.
        listen_everywhere(&running.workers, addr, options.backlog)?;
    }
    Ok(running)
}

impl BridgedWorkers {
    /// A listener for `port` (clones share one accept queue), or None if
    /// the port is not served.
    pub fn listener(&self, port: u16) -> Option<Listener> {
        listener_for(&self.listeners, port)
    }

    /// Opens connections through the workers (see [`StreamConnector`]).
    pub fn connector(&self) -> StreamConnector {
        self.connector.clone()
    }

    /// False once a worker has exited on its own (it panicked).
    pub fn is_running(&self) -> bool {
        !self.workers.iter().any(|w| w.thread.is_finished())
    }

    /// Graceful stop: workers stop accepting, streams still open see
    /// `ConnectionAborted` (reads, after the data already received) and
    /// `BrokenPipe` (writes), connections get a FIN (RST with unread
    /// data), and workers wait up to the drain time for them to finish.
    pub fn shutdown(mut self) -> Result<Vec<WorkerReport>, ServeError> {
        stop_workers(std::mem::take(&mut self.workers), self.drain)
    }
}

impl Drop for BridgedWorkers {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            let _ = stop_workers(std::mem::take(&mut self.workers), self.drain);
        }
    }
}

/// A running threaded server on the fast path; see [`start_threaded`].
/// Dropping it shuts it down as [`shutdown`](Self::shutdown) does.
pub struct ThreadedServer {
    runtime: Option<AppRuntime>,
    listeners: Vec<Listener>,
    connector: StreamConnector,
}

/// Checks, attaches and starts a fast-path runtime like `xdp-tcp serve`,
/// with the bridge on every worker; returns once every port is steered to
/// the workers and, with `config.fast_path.client`, the client port range
/// too (then [`connector`](ThreadedServer::connector) opens connections).
/// Needs the privileges `serve` needs.
pub fn start_threaded(config: ThreadedConfig) -> Result<ThreadedServer, ServeError> {
    config
        .bridge
        .validate()
        .map_err(|e| ServeError::Config(format!("bridge settings: {e}")))?;
    // Ports and client ports are checked by the runtime's preflight.
    let fast = &config.fast_path;
    let addrs: Vec<SocketAddrV4> = fast
        .ports
        .iter()
        .map(|&p| SocketAddrV4::new(fast.addr, p))
        .collect();
    let mut registry = ListenerRegistry::new(&addrs, config.bridge.clone());
    // The runtime listens on every port before steering it to us.
    let runtime = start_runtime(config.fast_path.clone(), |_, doorbell| {
        Box::new(registry.app(doorbell.clone()))
    })?;
    let mut connector = registry.connector();
    if let Some(cache) = runtime.next_hop_cache() {
        connector = connector.with_next_hops(cache.clone());
    }
    Ok(ThreadedServer {
        runtime: Some(runtime),
        listeners: registry.into_listeners(),
        connector,
    })
}

impl ThreadedServer {
    /// A listener for `port` (clones share one accept queue), or None if
    /// the port is not served.
    pub fn listener(&self, port: u16) -> Option<Listener> {
        listener_for(&self.listeners, port)
    }

    /// Opens connections through the workers (see [`StreamConnector`]);
    /// without client ports in the configuration they fail with
    /// `InvalidInput`.
    pub fn connector(&self) -> StreamConnector {
        self.connector.clone()
    }

    /// Whether the AF_XDP sockets are bound in copy or zero-copy mode.
    pub fn bind_mode(&self) -> BindMode {
        self.runtime
            .as_ref()
            .map_or(BindMode::Copy, AppRuntime::bind_mode)
    }

    /// False once a worker has exited on its own (it panicked).
    pub fn is_running(&self) -> bool {
        self.runtime.as_ref().is_some_and(|r| !r.worker_stopped())
    }

    /// Next-hop changes (a MAC replaced, unreachable, reachable again)
    /// the neighbour monitor passed to the workers so far (see
    /// [`crate::runtime::neighbor_monitor`]).
    pub fn next_hop_changes(&self) -> u64 {
        self.runtime
            .as_ref()
            .and_then(AppRuntime::neighbor_monitor)
            .map_or(0, |m| m.changes.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The neighbour monitor's counters (None with a configured gateway
    /// MAC, or once stopped).
    pub fn neighbor_monitor(&self) -> Option<&crate::runtime::neighbor_monitor::MonitorCounters> {
        self.runtime.as_ref().and_then(AppRuntime::neighbor_monitor)
    }

    /// How many next hops of active opens are verified and followed now
    /// (0 without client ports).
    pub fn next_hops_tracked(&self) -> usize {
        self.runtime
            .as_ref()
            .and_then(AppRuntime::next_hop_cache)
            .map_or(0, |c| c.tracked())
    }

    /// Stops as `serve` does on SIGTERM: workers drain (see
    /// [`BridgedWorkers::shutdown`]), then the ports and client ranges are
    /// withdrawn and the steering program detached.
    pub fn shutdown(mut self) -> Result<ServeReport, ServeError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<ServeReport, ServeError> {
        match self.runtime.take() {
            Some(runtime) => runtime.stop(),
            None => Err(ServeError::Runtime("the server was already stopped".into())),
        }
    }
}

impl Drop for ThreadedServer {
    fn drop(&mut self) {
        if self.runtime.is_some() {
            let _ = self.stop();
        }
    }
}
