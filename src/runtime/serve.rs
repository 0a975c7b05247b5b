//! `serve`: the control side of a server on the fast path.
//!
//! Checks everything a user can get wrong before touching the interface,
//! attaches the steering program, opens one AF_XDP socket per worker
//! queue, starts pinned workers, publishes the owned ports, and prints
//! `ready`. On SIGINT/SIGTERM: workers stop accepting, FIN their
//! connections, wait up to the drain time, RST the rest; then the ports
//! are withdrawn and the program detached (dropping the bpf_link).

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{bounded, unbounded, Sender};

use crate::app::{App, BuiltinApp};
use crate::runtime::active_open::{Connector, PortRange};
use crate::runtime::clock::Clock;
use crate::runtime::doorbell::Doorbell;
use crate::runtime::handoff::Handoff;
use crate::runtime::io::FrameIo;
use crate::runtime::neighbor_monitor::NeighborMonitor;
use crate::runtime::neighbor_table::NeighborConfig;
use crate::runtime::worker::{
    Command, Worker, WorkerReport, DEFAULT_IDLE_SLEEP, DEFAULT_IDLE_SPIN,
};
use crate::tcp::{Stack, StackConfig};
use crate::wire::MacAddr;
use crate::xdp::{self, BindMode, SteerCounters, SteerProgram, XdpMode, XskConfig, XskSocket};

/// A server running one of the built-in applications on the fast path.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub fast_path: FastPathConfig,
    pub app: BuiltinApp,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Privilege(String),
    #[error(transparent)]
    Xdp(#[from] xdp::XdpError),
    #[error("{0}")]
    Runtime(String),
}

/// What a finished `serve` did.
#[derive(Debug, Clone)]
pub struct ServeReport {
    pub workers: Vec<WorkerReport>,
    pub steering: SteerCounters,
    pub bind_mode: BindMode,
}

/// Euid 0, or CAP_NET_ADMIN plus CAP_BPF (or CAP_SYS_ADMIN) effective.
fn check_privileges() -> Result<(), ServeError> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| {
                l[name.len()..]
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    if field("Uid:").get(1).map(String::as_str) == Some("0") {
        return Ok(());
    }
    let caps = field("CapEff:")
        .first()
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    if has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        return Ok(());
    }
    Err(ServeError::Privilege(
        "AF_XDP and XDP need privileges: run as root, or grant CAP_NET_ADMIN and CAP_BPF (setcap cap_net_admin,cap_bpf+ep xdp-tcp)".into(),
    ))
}

fn sysfs(iface: &str, file: &str) -> Result<String, ServeError> {
    fs::read_to_string(format!("/sys/class/net/{iface}/{file}"))
        .map(|s| s.trim().to_owned())
        .map_err(|_| {
            ServeError::Config(format!(
                "interface '{iface}' not found: check `ip link` for its name"
            ))
        })
}

/// Receive queues of the interface.
fn rx_queues(iface: &str) -> Result<usize, ServeError> {
    let dir = fs::read_dir(format!("/sys/class/net/{iface}/queues")).map_err(|_| {
        ServeError::Config(format!(
            "interface '{iface}' not found: check `ip link` for its name"
        ))
    })?;
    Ok(dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count())
}

/// The kernel already listening on `port` (any address, or ours) would
/// silently lose its traffic to us: refuse instead.
fn kernel_listener(addr: Ipv4Addr, port: u16) -> bool {
    kernel_listening_ports(addr).contains(&port)
}

/// Ports the kernel listens on for `addr` (on it, or on any address).
fn kernel_listening_ports(addr: Ipv4Addr) -> Vec<u16> {
    let listening = |path: &str, v6: bool| -> Vec<u16> {
        let text = fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                if cols.len() < 4 || cols[3] != "0A" {
                    return None; // not LISTEN
                }
                let (ip_hex, port_hex) = cols[1].split_once(':')?;
                let port = u16::from_str_radix(port_hex, 16).ok()?;
                let ours = if v6 {
                    // A dual-stack [::] listener also takes IPv4 connections.
                    ip_hex.chars().all(|c| c == '0')
                } else {
                    let raw = u32::from_str_radix(ip_hex, 16).unwrap_or(u32::MAX);
                    // /proc prints the network-order address as a host-order
                    // integer: its native-endian bytes are the address.
                    let ip = Ipv4Addr::from(raw.to_ne_bytes());
                    ip.is_unspecified() || ip == addr
                };
                ours.then_some(port)
            })
            .collect()
    };
    let mut ports = listening("/proc/net/tcp", false);
    ports.extend(listening("/proc/net/tcp6", true));
    ports
}

pub(crate) fn entropy() -> [u8; 32] {
    let mut e = [0u8; 32];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut e);
    }
    e
}

/// Where and how a fast-path server runs: interface, address and ports,
/// workers and their cores, XDP and AF_XDP settings, and the engine's
/// configuration. Shared by [`serve`] and
/// [`start_threaded`](crate::runtime::start_threaded), which check, attach
/// and start in the same way.
#[derive(Debug, Clone)]
pub struct FastPathConfig {
    pub iface: String,
    pub addr: Ipv4Addr,
    pub ports: Vec<u16>,
    pub workers: usize,
    /// Cores to pin workers to, in worker order; None: cores 0, 1, ...
    pub cores: Option<Vec<usize>>,
    pub xdp_mode: XdpMode,
    pub zero_copy: bool,
    /// Engine accept backlog per listener and worker.
    pub backlog: usize,
    /// How long a graceful shutdown waits for connections to finish.
    pub drain: Duration,
    pub stack: StackConfig,
    pub xsk: XskConfig,
    /// Active opens: client ports and next hops. None: server only.
    pub client: Option<ClientConfig>,
    /// How next hops are re-verified and followed when their MAC changes
    /// (see [`crate::runtime::neighbor_monitor`]).
    pub neighbor: NeighborConfig,
    /// How long an idle worker keeps polling before it sleeps
    /// ([`Worker::idle_spin`]; `Duration::MAX`: busy-polling).
    pub idle_spin: Duration,
}

/// What a runtime that opens connections needs (see
/// [`active_open`](crate::runtime::active_open)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// Local ports owned for active opens on every local address; None:
    /// [`PortRange::default_client`] for this namespace's kernel range.
    pub local_ports: Option<PortRange>,
    /// Local addresses besides [`FastPathConfig::addr`] to connect from
    /// (each adds a port range's worth of connections per destination).
    pub extra_addrs: Vec<Ipv4Addr>,
    /// Destinations whose next-hop MAC is resolved at start-up.
    pub targets: Vec<Ipv4Addr>,
    /// Next-hop MAC for every destination (skips resolution).
    pub gateway_mac: Option<MacAddr>,
}

impl FastPathConfig {
    /// One worker on queue 0, native XDP in copy mode, and the defaults
    /// of `xdp-tcp serve` for everything else.
    pub fn new(iface: impl Into<String>, addr: Ipv4Addr, ports: &[u16]) -> FastPathConfig {
        FastPathConfig {
            iface: iface.into(),
            addr,
            ports: ports.to_vec(),
            workers: 1,
            cores: None,
            xdp_mode: XdpMode::Native,
            zero_copy: false,
            backlog: 1024,
            drain: Duration::from_millis(2000),
            stack: StackConfig::default(),
            xsk: XskConfig::default(),
            client: None,
            neighbor: NeighborConfig::default(),
            idle_spin: DEFAULT_IDLE_SPIN,
        }
    }
}

impl FastPathConfig {
    /// Everything checkable before anything is attached. Fills in the
    /// stack's MAC address and MTU from the interface.
    pub(crate) fn preflight(&mut self) -> Result<u32, ServeError> {
        if self.ports.is_empty() && self.client.is_none() {
            return Err(ServeError::Config("give at least one --port".into()));
        }
        if self.ports.contains(&0) {
            return Err(ServeError::Config(
                "--port 0 is not a port to serve on".into(),
            ));
        }
        if self.workers == 0 {
            return Err(ServeError::Config("--workers must be at least 1".into()));
        }
        self.neighbor.validate().map_err(ServeError::Config)?;
        let ifindex = xdp::program::ifindex(&self.iface).map_err(|_| {
            ServeError::Config(format!(
                "interface '{}' not found: check `ip link` for its name",
                self.iface
            ))
        })?;
        let queues = rx_queues(&self.iface)?;
        if self.workers > queues {
            return Err(ServeError::Config(format!(
                "--workers {} but '{}' has {queues} receive queue(s): use at most {queues} (each queue needs its own worker; `load` calls them --threads)",
                self.workers, self.iface
            )));
        }
        let on_iface = if_addrs::get_if_addrs()
            .map_err(|e| ServeError::Config(format!("cannot list interface addresses: {e}")))?
            .into_iter()
            .any(|a| a.name == self.iface && a.ip() == std::net::IpAddr::V4(self.addr));
        if !on_iface {
            return Err(ServeError::Config(format!(
                "address {} is not on '{}': add it (ip addr add {}/24 dev {}) or pick one from `ip addr show {}`",
                self.addr, self.iface, self.addr, self.iface, self.iface
            )));
        }
        self.preflight_client()?;
        for &port in &self.ports {
            if kernel_listener(self.addr, port) {
                return Err(ServeError::Config(format!(
                    "the kernel already listens on port {port}: stop that server or choose another --port"
                )));
            }
        }
        if let Some(cores) = &self.cores {
            if cores.len() < self.workers {
                return Err(ServeError::Config(format!(
                    "--cores lists {} core(s) for {} workers: give one core per worker",
                    cores.len(),
                    self.workers
                )));
            }
            // A core the process may not run on would leave its worker
            // unpinned without a word.
            crate::affinity::pinnable(&cores[..self.workers], &crate::affinity::allowed_cores())
                .map_err(ServeError::Config)?;
        }
        let mac: MacAddr = sysfs(&self.iface, "address")?
            .parse()
            .map_err(|_| ServeError::Config(format!("'{}' has no Ethernet address", self.iface)))?;
        self.stack.mac = mac;
        if let Ok(mtu) = sysfs(&self.iface, "mtu")?.parse::<usize>() {
            self.stack.tcp.mtu = mtu.min(self.xsk.frame_size as usize - 14);
        }
        self.stack
            .tcp
            .validate()
            .map_err(|e| ServeError::Config(format!("TCP settings: {e}")))?;
        check_privileges()?;
        Ok(ifindex)
    }

    /// The local addresses of active opens: `addr`, then the extra ones.
    pub fn client_addrs(&self) -> Vec<Ipv4Addr> {
        let mut addrs = vec![self.addr];
        if let Some(c) = &self.client {
            for &a in &c.extra_addrs {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
        addrs
    }

    /// Checks the client side and fixes its port range (the default one
    /// when none was given).
    fn preflight_client(&mut self) -> Result<(), ServeError> {
        let addrs = self.client_addrs();
        let iface = self.iface.clone();
        let Some(client) = self.client.as_mut() else {
            return Ok(());
        };
        // Replies to our ports arrive on whatever queue the peer's
        // transmit side picked; a queue without a socket passes them to
        // the kernel, which answers with a RST.
        let queues = rx_queues(&iface)?;
        if self.workers < queues {
            return Err(ServeError::Config(format!(
                "'{iface}' has {queues} receive queues but {} worker(s): replies arriving on a queue without a worker would go to the kernel; use {queues} workers (--threads {queues}) or fewer queues (ethtool -L {iface} rx {})",
                self.workers, self.workers
            )));
        }
        let kernel = PortRange::kernel_ephemeral();
        let range = *client
            .local_ports
            .get_or_insert_with(|| PortRange::default_client(kernel));
        if range.len() < self.workers {
            return Err(ServeError::Config(format!(
                "--local-ports {}-{} has fewer ports than workers ({})",
                range.lo, range.hi, self.workers
            )));
        }
        if let Some(k) = kernel {
            if range.overlaps(k) {
                return Err(ServeError::Config(format!(
                    "--local-ports {}-{} overlaps the kernel's ephemeral ports {}-{} (net.ipv4.ip_local_port_range): pick a range outside it",
                    range.lo, range.hi, k.lo, k.hi
                )));
            }
        }
        if let Some(&p) = self.ports.iter().find(|&&p| range.contains(p)) {
            return Err(ServeError::Config(format!(
                "--local-ports {}-{} contains the served port {p}: pick a range without it",
                range.lo, range.hi
            )));
        }
        // The `client_ports` map of bpf/steer.bpf.c holds 64 addresses.
        if addrs.len() > 64 {
            return Err(ServeError::Config(format!(
                "{} local addresses given: at most 64 (--source-addr)",
                addrs.len()
            )));
        }
        let listed = if_addrs::get_if_addrs()
            .map_err(|e| ServeError::Config(format!("cannot list interface addresses: {e}")))?;
        for &a in &addrs {
            if !listed
                .iter()
                .any(|i| i.name == iface && i.ip() == std::net::IpAddr::V4(a))
            {
                return Err(ServeError::Config(format!(
                    "source address {a} is not on '{iface}': add it (ip addr add {a}/24 dev {iface})"
                )));
            }
            if let Some(p) = kernel_listening_ports(a)
                .into_iter()
                .find(|&p| range.contains(p))
            {
                return Err(ServeError::Config(format!(
                    "the kernel listens on port {p} of {a}, inside --local-ports {}-{}: pick a range without it",
                    range.lo, range.hi
                )));
            }
        }
        Ok(())
    }

    /// Attaches the steering program and opens one AF_XDP socket per
    /// worker queue. Dropping the program detaches it again.
    pub(crate) fn attach(
        &self,
        ifindex: u32,
    ) -> Result<(SteerProgram, Vec<XskSocket>, BindMode), ServeError> {
        let program = SteerProgram::attach(ifindex, self.xdp_mode)?;
        let mut sockets = Vec::with_capacity(self.workers);
        let mut bind_mode = BindMode::Copy;
        let xsk = XskConfig {
            zero_copy: self.zero_copy,
            ..self.xsk.clone()
        };
        for q in 0..self.workers {
            let (socket, mode) = XskSocket::open(&self.iface, q as u32, &xsk)?;
            program.register_socket(q as u32, socket.fd())?;
            bind_mode = mode;
            sockets.push(socket);
        }
        Ok((program, sockets, bind_mode))
    }

    /// The core each worker is pinned to (None: left to the scheduler).
    pub(crate) fn core_ids(&self) -> Vec<Option<core_affinity::CoreId>> {
        let available = core_affinity::get_core_ids().unwrap_or_default();
        (0..self.workers)
            .map(|i| {
                let want = self
                    .cores
                    .as_ref()
                    .map_or(i % available.len().max(1), |c| c[i]);
                available.iter().copied().find(|c| c.id == want)
            })
            .collect()
    }
}

/// A running worker as the control side sees it.
pub(crate) struct WorkerHandle {
    pub commands: Sender<Command>,
    pub thread: JoinHandle<WorkerReport>,
}

/// Starts one worker per I/O (worker `i` on `cores[i]`, when given), each
/// with its own stack and the application `make_app` returns for it; the
/// app gets the doorbell its worker sleeps on. If a worker cannot be
/// started, the ones already running are stopped.
pub(crate) fn spawn_workers<Io: FrameIo + 'static>(
    ios: Vec<Io>,
    stack: &StackConfig,
    cores: &[Option<core_affinity::CoreId>],
    max_sleep: Duration,
    idle_spin: Duration,
    mut make_app: impl FnMut(&Arc<Doorbell>) -> Box<dyn App>,
    mut make_connector: impl FnMut(usize) -> Option<Connector>,
) -> Result<Vec<WorkerHandle>, ServeError> {
    // 1024 frames (2 MiB) in flight per worker: with active opens about
    // half the replies land on another worker's queue (on veth the peer's
    // XPS picks it), and the owner may be descheduled for a while.
    let handoff = Arc::new(Handoff::new(ios.len(), 1024));
    let clock = Clock::new();
    let mut handles: Vec<WorkerHandle> = Vec::new();
    for (id, io) in ios.into_iter().enumerate() {
        let started = (|| {
            let (tx, rx) = unbounded();
            let stack =
                Stack::new(stack.clone(), entropy(), clock.now()).map_err(ServeError::Config)?;
            let doorbell =
                Arc::new(io.doorbell().map_err(|e| {
                    ServeError::Runtime(format!("cannot make a worker doorbell: {e}"))
                })?);
            let worker = Worker {
                id,
                io,
                stack,
                app: make_app(&doorbell),
                commands: rx,
                handoff: handoff.clone(),
                clock,
                doorbell,
                core: cores.get(id).copied().flatten(),
                max_sleep,
                idle_spin,
                connector: make_connector(id),
            };
            let thread = std::thread::Builder::new()
                .name(format!("xdp-tcp-w{id}"))
                .spawn(move || worker.run())
                .map_err(|e| ServeError::Runtime(format!("cannot start worker thread: {e}")))?;
            Ok(WorkerHandle {
                commands: tx,
                thread,
            })
        })();
        match started {
            Ok(h) => handles.push(h),
            Err(e) => {
                let _ = stop_workers(handles, Duration::ZERO);
                return Err(e);
            }
        }
    }
    Ok(handles)
}

/// Makes every worker listen on `addr`; each answers before the next is
/// asked, so a failure names the address.
pub(crate) fn listen_everywhere(
    workers: &[WorkerHandle],
    addr: SocketAddrV4,
    backlog: usize,
) -> Result<(), ServeError> {
    for w in workers {
        let (rtx, rrx) = bounded(1);
        w.commands
            .send(Command::Listen {
                addr,
                backlog,
                reply: rtx,
            })
            .map_err(|_| ServeError::Runtime("a worker exited during start-up".into()))?;
        // Generous: only a hung worker should fail this, not a loaded
        // machine (tests start many workers at once on two cores).
        rrx.recv_timeout(Duration::from_secs(30))
            .map_err(|_| ServeError::Runtime("a worker did not answer during start-up".into()))?
            .map_err(|e| ServeError::Config(format!("cannot listen on {addr}: {e}")))?;
    }
    Ok(())
}

/// Graceful stop: every worker drains for up to `drain`, then exits.
pub(crate) fn stop_workers(
    workers: Vec<WorkerHandle>,
    drain: Duration,
) -> Result<Vec<WorkerReport>, ServeError> {
    for w in &workers {
        let _ = w.commands.send(Command::Shutdown { drain });
    }
    let mut reports = Vec::new();
    let mut panicked = false;
    for w in workers {
        // Join them all, even after a panic, so none outlives the stop.
        match w.thread.join() {
            Ok(r) => reports.push(r),
            Err(_) => panicked = true,
        }
    }
    if panicked {
        return Err(ServeError::Runtime("a worker thread panicked".into()));
    }
    Ok(reports)
}

/// Runs a server until `stop` becomes true (the CLI wires it to
/// SIGINT/SIGTERM). `ready` is called once traffic is being served.
pub fn serve(
    config: ServeConfig,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(&ServeConfig, BindMode),
) -> Result<ServeReport, ServeError> {
    let mut plan = config.fast_path.clone();
    let ifindex = plan.preflight()?;
    let (program, sockets, bind_mode) = plan.attach(ifindex)?;
    let handles = spawn_workers(
        sockets,
        &plan.stack,
        &plan.core_ids(),
        DEFAULT_IDLE_SLEEP,
        plan.idle_spin,
        |_| config.app.instantiate(),
        |_| None,
    )?;
    // Passive connections follow their peers' MAC changes.
    let monitor = NeighborMonitor::spawn(
        &plan.iface,
        ifindex,
        None,
        handles.iter().map(|h| h.commands.clone()).collect(),
        plan.neighbor,
    )
    .map_err(|e| ServeError::Runtime(format!("cannot start the neighbour monitor: {e}")));
    let monitor = match monitor {
        Ok(m) => m,
        Err(e) => {
            let _ = stop_workers(handles, Duration::ZERO);
            return Err(e);
        }
    };

    let result = run_until_stopped(&config, &program, &handles, &stop, bind_mode, ready);
    monitor.stop();
    // Graceful stop whatever happened: workers drain, then ports go.
    let reports = stop_workers(handles, config.fast_path.drain)?;
    for &port in &config.fast_path.ports {
        let _ = program.remove_port(config.fast_path.addr, port);
    }
    let steering = program.counters().unwrap_or_default();
    drop(program); // detaches: the bpf_link goes with it
    result?;
    Ok(ServeReport {
        workers: reports,
        steering,
        bind_mode,
    })
}

fn run_until_stopped(
    config: &ServeConfig,
    program: &SteerProgram,
    handles: &[WorkerHandle],
    stop: &AtomicBool,
    bind_mode: BindMode,
    ready: impl FnOnce(&ServeConfig, BindMode),
) -> Result<(), ServeError> {
    for &port in &config.fast_path.ports {
        listen_everywhere(
            handles,
            SocketAddrV4::new(config.fast_path.addr, port),
            config.fast_path.backlog,
        )?;
        // Only now does the program steer the port to us.
        program.add_port(config.fast_path.addr, port)?;
    }
    ready(config, bind_mode);
    while !stop.load(Ordering::Relaxed) {
        if handles.iter().any(|h| h.thread.is_finished()) {
            return Err(ServeError::Runtime("a worker stopped unexpectedly".into()));
        }
        std::thread::sleep(CONTROL_POLL);
    }
    Ok(())
}

/// How often the control thread of a running server looks for a stop
/// request or a dead worker: a stop is noticed within this, and the
/// thread, which may share a worker's core, preempts it this rarely (it
/// looked every 20 ms, 50 of a worker's ~300 stalls a second on the
/// bench's VM; docs/PERFORMANCE.md, "Session 13").
pub const CONTROL_POLL: Duration = Duration::from_millis(100);
