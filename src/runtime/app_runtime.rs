//! A fast-path runtime for any [`App`], listening or not: the entry point
//! of clients (the load generator) and of applications that both serve
//! and connect.
//!
//! Start-up order: preflight (every mistake a one-line error), next hops
//! of the connect targets resolved (the only time the kernel is asked),
//! steering program attached, sockets opened, workers started, then the
//! served ports and the client port ranges published to the program.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::runtime::active_open::{resolve_next_hops, ClientPorts, ClientSide, NextHopCache};
use crate::runtime::neighbor_monitor::NeighborMonitor;
use crate::runtime::rss::RssTable;
use crate::runtime::serve::{
    listen_everywhere, spawn_workers, stop_workers, FastPathConfig, ServeError, ServeReport,
    WorkerHandle,
};
use crate::runtime::worker::DEFAULT_IDLE_SLEEP;
use crate::runtime::Doorbell;
use crate::xdp::{BindMode, SteerProgram};

/// How long start-up waits for the kernel to ARP a connect target.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A running fast-path runtime; [`AppRuntime::stop`] drains and detaches.
pub struct AppRuntime {
    config: FastPathConfig,
    program: SteerProgram,
    handles: Vec<WorkerHandle>,
    bind_mode: BindMode,
    client: Option<ClientSide>,
    client_steering: String,
    /// Next hops of active opens, re-verified by `monitor`.
    next_hops: Option<Arc<NextHopCache>>,
    monitor: Option<NeighborMonitor>,
}

/// The NIC's RSS table for placing active opens, when there is more than
/// one worker to place them on; the error says why the port split with
/// hand-off is used instead.
fn client_rss(iface: &str, workers: usize) -> Result<Option<RssTable>, String> {
    if workers == 1 {
        return Ok(None);
    }
    let table = RssTable::read(iface)?;
    if !table.covers(workers) {
        return Err(format!(
            "the RSS indirection table does not reach all {workers} queues"
        ));
    }
    Ok(Some(table))
}

/// Starts one worker per queue of `config.iface`, each running the app
/// `make_app(worker id)` returns. Listens on `config.ports` (may be
/// empty) and, with `config.client`, owns the client port range on every
/// local address so the apps can [`connect`](crate::app::Ctx::connect).
pub fn start_app_runtime(
    config: FastPathConfig,
    mut make_app: impl FnMut(usize) -> Box<dyn App>,
) -> Result<AppRuntime, ServeError> {
    start_runtime(config, |id, _| make_app(id))
}

/// As [`start_app_runtime`], for apps that also need their worker's
/// doorbell (to be woken by other threads, as the bridge is).
pub(crate) fn start_runtime(
    config: FastPathConfig,
    mut make_app: impl FnMut(usize, &Arc<Doorbell>) -> Box<dyn App>,
) -> Result<AppRuntime, ServeError> {
    let mut plan = config;
    let ifindex = plan.preflight()?;
    let mut steering = String::new();
    let client = match &plan.client {
        Some(c) => {
            let hops = resolve_next_hops(&plan.iface, &c.targets, c.gateway_mac, RESOLVE_TIMEOUT)
                .map_err(|e| ServeError::Config(e.to_string()))?;
            let range = c
                .local_ports
                .expect("preflight fixed the client port range");
            let rss = match client_rss(&plan.iface, plan.workers) {
                Ok(None) => None,
                Ok(Some(table)) => {
                    steering = "rss".to_owned();
                    Some(Arc::new(table))
                }
                Err(why) => {
                    steering = format!("hand-off ({why})");
                    None
                }
            };
            Some(ClientSide {
                ports: Arc::new(ClientPorts {
                    addrs: plan.client_addrs(),
                    range,
                    workers: plan.workers,
                    rss,
                }),
                next_hops: Arc::new(hops),
                gateway_mac: c.gateway_mac,
            })
        }
        None => None,
    };
    let (program, sockets, bind_mode) = plan.attach(ifindex)?;
    let mut next_id = 0;
    let handles = spawn_workers(
        sockets,
        &plan.stack,
        &plan.core_ids(),
        DEFAULT_IDLE_SLEEP,
        plan.idle_spin,
        |doorbell| {
            let app = make_app(next_id, doorbell);
            next_id += 1;
            app
        },
        |id| client.as_ref().map(|c| c.connector(id)),
    )?;
    let next_hops = client.as_ref().map(|side| {
        Arc::new(NextHopCache::new(
            &plan.iface,
            Some(ifindex),
            side,
            plan.neighbor,
            RESOLVE_TIMEOUT,
        ))
    });
    let mut runtime = AppRuntime {
        config: plan,
        program,
        handles,
        bind_mode,
        client,
        client_steering: steering,
        next_hops,
        monitor: None,
    };
    // A configured gateway MAC is pinned (like a permanent entry):
    // nothing to verify or follow.
    let pinned = runtime
        .client
        .as_ref()
        .is_some_and(|c| c.gateway_mac.is_some());
    if !pinned {
        match NeighborMonitor::spawn(
            &runtime.config.iface,
            ifindex,
            runtime.next_hops.clone(),
            runtime.handles.iter().map(|h| h.commands.clone()).collect(),
            runtime.config.neighbor,
        ) {
            Ok(m) => runtime.monitor = Some(m),
            Err(e) => {
                let _ = runtime.stop();
                return Err(ServeError::Runtime(format!(
                    "cannot start the neighbour monitor: {e}"
                )));
            }
        }
    }
    if let Err(e) = runtime.publish() {
        let _ = runtime.stop();
        return Err(e);
    }
    Ok(runtime)
}

impl AppRuntime {
    fn publish(&mut self) -> Result<(), ServeError> {
        for &port in &self.config.ports {
            listen_everywhere(
                &self.handles,
                SocketAddrV4::new(self.config.addr, port),
                self.config.backlog,
            )?;
            self.program.add_port(self.config.addr, port)?;
        }
        if let Some(ports) = self.client_ports() {
            for &addr in &ports.addrs {
                self.program
                    .add_client_range(addr, ports.range.lo, ports.range.hi)?;
            }
        }
        Ok(())
    }

    /// The configuration after preflight (MAC, MTU and client range
    /// filled in).
    pub fn config(&self) -> &FastPathConfig {
        &self.config
    }

    pub fn bind_mode(&self) -> BindMode {
        self.bind_mode
    }

    /// How replies to active opens reach their worker: `rss` (ports are
    /// chosen so the NIC's hash puts replies on the opener's queue) or
    /// `hand-off (why)`; empty without client ports or with one worker.
    pub fn client_steering(&self) -> &str {
        &self.client_steering
    }

    /// The client ports and their split among workers, if any.
    pub fn client_ports(&self) -> Option<&ClientPorts> {
        self.client.as_ref().map(|c| &*c.ports)
    }

    /// The client ports and the next hops resolved at start-up, if any.
    pub fn client_side(&self) -> Option<&ClientSide> {
        self.client.as_ref()
    }

    /// The next hops of active opens, verified and followed while the
    /// runtime runs (None without client ports). Application threads
    /// resolve destinations through it before [`Ctx::connect_via`](crate::app::Ctx::connect_via).
    pub fn next_hop_cache(&self) -> Option<&Arc<NextHopCache>> {
        self.next_hops.as_ref()
    }

    /// The neighbour monitor's counters (None with a pinned gateway MAC).
    pub fn neighbor_monitor(&self) -> Option<&crate::runtime::neighbor_monitor::MonitorCounters> {
        self.monitor.as_ref().map(NeighborMonitor::counters)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.handles.len()
    }

    /// Whether a worker thread has ended (it only does on a panic before
    /// [`stop`](Self::stop)).
    pub fn worker_stopped(&self) -> bool {
        self.handles.iter().any(|h| h.thread.is_finished())
    }

    /// Graceful stop: apps see `on_shutdown`, connections get FINs, the
    /// drain time passes at most, then ports and ranges are withdrawn and
    /// the program detached.
    pub fn stop(mut self) -> Result<ServeReport, ServeError> {
        if let Some(m) = self.monitor.take() {
            m.stop();
        }
        let reports = stop_workers(self.handles, self.config.drain);
        for &port in &self.config.ports {
            let _ = self.program.remove_port(self.config.addr, port);
        }
        if let Some(client) = &self.client {
            for &addr in &client.ports.addrs {
                let _ = self.program.remove_client_range(addr);
            }
        }
        let steering = self.program.counters().unwrap_or_default();
        drop(self.program);
        Ok(ServeReport {
            workers: reports?,
            steering,
            bind_mode: self.bind_mode,
        })
    }
}
