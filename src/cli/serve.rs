//! `xdp-tcp serve`: a built-in application on the AF_XDP fast path.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::app::bridge::BridgeConfig;
use crate::app::{BuiltinApp, Stream};
use crate::runtime::{
    serve, start_threaded, ClientConfig, FastPathConfig, ServeConfig, ServeReport, ThreadedConfig,
};
use crate::tcp::StackConfig;
use crate::xdp::{BindMode, XdpMode};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AppName {
    Echo,
    Discard,
    Http,
    Source,
    Hold,
    /// Echo written with blocking threads over the bridge (the threaded
    /// API's interop test); hidden: it exists to exercise that API.
    #[value(hide = true)]
    ThreadEcho,
    /// A TCP proxy written with blocking threads: each accepted
    /// connection is relayed to `--backend`, connected through the fast
    /// path (the threaded API's active-open interop test); hidden.
    #[value(hide = true)]
    ThreadProxy,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Mode {
    Native,
    Generic,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Interface to serve on (its receive queues get one worker each).
    #[arg(long)]
    iface: String,
    /// IPv4 address of the interface to serve.
    #[arg(long)]
    addr: Ipv4Addr,
    /// TCP port to own (repeat for several).
    #[arg(long = "port", required = true)]
    ports: Vec<u16>,
    /// Application to run.
    #[arg(long, value_enum)]
    app: AppName,
    /// Workers, one per receive queue starting at queue 0.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Cores to pin the workers to, e.g. "0,1" or "2-5".
    #[arg(long, value_parser = parse_cores)]
    cores: Option<CoreList>,
    /// XDP attach mode: native (driver) or generic (skb).
    #[arg(long, value_enum, default_value_t = Mode::Native)]
    xdp_mode: Mode,
    /// Ask for zero-copy AF_XDP; falls back to copy mode with a log line when refused.
    #[arg(long)]
    zero_copy: bool,
    /// `http`: response body size in bytes.
    #[arg(long, default_value_t = 64)]
    body_bytes: usize,
    /// `source`: bytes to send on each connection.
    #[arg(long, default_value = "1M", value_parser = super::parse_size)]
    bytes: usize,
    /// `hold`: close each connection this many milliseconds after accepting it.
    #[arg(long)]
    hold_ms: Option<u64>,
    /// Accept backlog per listener and worker.
    #[arg(long, default_value_t = 1024)]
    backlog: usize,
    /// Graceful shutdown: how long open connections may take to finish.
    #[arg(long, default_value_t = 2000)]
    drain_ms: u64,
    /// Frames per receive batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    batch: u16,
    /// `thread-proxy`: where to relay each accepted connection.
    #[arg(long, hide = true)]
    backend: Option<SocketAddrV4>,
    /// Disable Nagle's algorithm on every connection.
    #[arg(long)]
    nodelay: bool,
    /// TIME-WAIT connections kept per worker (records of ~120 bytes, as
    /// Linux's tcp_max_tw_buckets); beyond, a connection we close first
    /// ends without TIME-WAIT (`time_wait_overflow=` in the stats). 0
    /// keeps none.
    #[arg(long, default_value_t = StackConfig::default().max_time_wait)]
    max_time_wait: usize,
    #[command(flatten)]
    neighbor: super::neighbor_args::NeighborArgs,
    #[command(flatten)]
    idle: super::idle_args::IdleArgs,
    #[command(flatten)]
    recovery: super::recovery_args::RecoveryArgs,
}

/// A list of core numbers (one clap value: "0,1" or "2-5").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreList(pub Vec<usize>);

pub(crate) fn parse_cores(s: &str) -> Result<CoreList, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("'{part}' in --cores is not a core number or range like 2-5");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err("--cores needs at least one core".into());
    }
    Ok(CoreList(out))
}

impl From<Mode> for XdpMode {
    fn from(m: Mode) -> XdpMode {
        match m {
            Mode::Native => XdpMode::Native,
            Mode::Generic => XdpMode::Generic,
        }
    }
}

/// The fast-path settings every `serve` mode takes from its flags.
fn fast_path(a: &ServeArgs) -> FastPathConfig {
    let mut config = FastPathConfig::new(a.iface.clone(), a.addr, &a.ports);
    config.workers = a.workers;
    config.cores = a.cores.as_ref().map(|c| c.0.clone());
    config.xdp_mode = a.xdp_mode.into();
    config.zero_copy = a.zero_copy;
    config.backlog = a.backlog.max(1);
    config.drain = Duration::from_millis(a.drain_ms);
    config.stack.tcp.nagle = !a.nodelay;
    config.stack.max_time_wait = a.max_time_wait;
    a.neighbor.apply(&mut config.neighbor);
    a.idle.apply(&mut config);
    a.recovery.apply(&mut config.stack.tcp);
    config.xsk.batch = a.batch as usize;
    config
}

pub fn run(a: &ServeArgs) -> Result<(), String> {
    let app = match a.app {
        AppName::Echo => BuiltinApp::Echo,
        AppName::Discard => BuiltinApp::Discard,
        AppName::Http => BuiltinApp::Http {
            body_bytes: a.body_bytes,
        },
        AppName::Source => BuiltinApp::Source { bytes: a.bytes },
        AppName::Hold => BuiltinApp::Hold { hold_ms: a.hold_ms },
        AppName::ThreadEcho => return run_threaded(a, None),
        AppName::ThreadProxy => {
            let backend = a
                .backend
                .ok_or("--app thread-proxy needs --backend IP:PORT (where to relay to)")?;
            return run_threaded(a, Some(backend));
        }
    };
    let config = ServeConfig {
        fast_path: fast_path(a),
        app,
    };
    let stop = super::stop_on_signals()?;
    let report = serve(config, stop, |c, mode| {
        print_ready(a, c.fast_path.xdp_mode, mode);
    })
    .map_err(|e| e.to_string())?;
    print_summary(&report);
    Ok(())
}

fn print_ready(a: &ServeArgs, xdp_mode: XdpMode, bind: BindMode) {
    let ports: Vec<String> = a.ports.iter().map(u16::to_string).collect();
    println!(
        "ready iface={} addr={} ports={} workers={} app={:?} xdp={:?} bind={}",
        a.iface,
        a.addr,
        ports.join(","),
        a.workers,
        a.app,
        xdp_mode,
        match bind {
            BindMode::Copy => "copy",
            BindMode::ZeroCopy => "zero-copy",
        }
    );
    let _ = std::io::stdout().flush();
}

/// How a `thread-proxy`'s connections to its backend went.
#[derive(Default)]
struct ProxyCounts {
    connected: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// `--app thread-echo` and `thread-proxy`: the same server, but every
/// connection is served by its own blocking threads through the bridge
/// ([`start_threaded`]), which is what these modes exist to exercise.
/// With a `backend`, each connection is relayed there (connected through
/// the fast path) instead of echoed.
fn run_threaded(a: &ServeArgs, backend: Option<SocketAddrV4>) -> Result<(), String> {
    let mut config = ThreadedConfig {
        fast_path: fast_path(a),
        bridge: BridgeConfig::default(),
    };
    config.bridge.accept_backlog = a.backlog.max(1);
    if backend.is_some() {
        // No targets: the proxy's threads resolve the backend's next hop
        // on their first connect (`StreamConnector`), which this exercises.
        config.fast_path.client = Some(ClientConfig {
            local_ports: None,
            extra_addrs: Vec::new(),
            targets: Vec::new(),
            gateway_mac: None,
        });
    }
    let xdp_mode = config.fast_path.xdp_mode;
    let stop = super::stop_on_signals()?;
    let server = start_threaded(config).map_err(|e| e.to_string())?;
    let counts = Arc::new(ProxyCounts::default());
    let mut acceptors = Vec::new();
    for &port in &a.ports {
        let listener = server
            .listener(port)
            .ok_or_else(|| format!("no listener for port {port}"))?;
        let connector = server.connector();
        let counts = counts.clone();
        // Ends when the server stops: accept then fails.
        acceptors.push(std::thread::spawn(move || {
            while let Ok(stream) = listener.accept() {
                let (connector, counts) = (connector.clone(), counts.clone());
                std::thread::spawn(move || match backend {
                    None => echo_stream(stream),
                    Some(backend) => match connector.connect(backend) {
                        Ok(upstream) => {
                            counts.connected.fetch_add(1, Ordering::Relaxed);
                            relay(stream, upstream);
                        }
                        Err(e) => {
                            let counter = match e.kind() {
                                std::io::ErrorKind::ConnectionRefused => &counts.refused,
                                _ => &counts.failed,
                            };
                            counter.fetch_add(1, Ordering::Relaxed);
                            eprintln!("thread-proxy: cannot connect to {backend}: {e}");
                        }
                    },
                });
            }
        }));
    }
    print_ready(a, xdp_mode, server.bind_mode());
    while !stop.load(Ordering::Relaxed) {
        if !server.is_running() {
            return Err("a worker stopped unexpectedly".into());
        }
        std::thread::sleep(crate::runtime::serve::CONTROL_POLL);
    }
    let report = server.shutdown().map_err(|e| e.to_string())?;
    for t in acceptors {
        let _ = t.join();
    }
    print_summary(&report);
    if backend.is_some() {
        println!(
            "stats proxy connected={} refused={} failed={}",
            counts.connected.load(Ordering::Relaxed),
            counts.refused.load(Ordering::Relaxed),
            counts.failed.load(Ordering::Relaxed)
        );
    }
    Ok(())
}

/// Copies both ways between `a` and `b` until both directions ended,
/// passing each end of stream on as a half-close.
fn relay(a: Stream, b: Stream) {
    std::thread::scope(|s| {
        s.spawn(|| copy_then_shutdown(&a, &b));
        copy_then_shutdown(&b, &a);
    });
}

fn copy_then_shutdown(from: &Stream, to: &Stream) {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut from, mut to) = (from, to);
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Echoes until the peer's FIN, then closes; stops quietly on errors.
fn echo_stream(mut stream: Stream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

fn print_summary(r: &ServeReport) {
    for w in &r.workers {
        println!(
            "stats worker={} rx_frames={} tx_frames={} accepted={} handed_off={} handoff_drops={} rst_sent={} bad_checksum={} malformed={} listen_drops={} time_wait={} time_wait_overflow={} time_wait_recycled={} reset_at_shutdown={} retransmits={} fast_retransmits={} rto_timeouts={} spurious_retransmits={} tlp_probes={} out_of_window={} dsacks_sent={} rx_data_segments={} tx_pure_acks={} iterations={} busy_iterations={} sleeps={} tx_kicks={} xsk_rx_ring_full={} xsk_rx_dropped={} xsk_fill_ring_empty={} stalls={} longest_stall_us={}",
            w.id,
            w.rx_frames,
            w.stack.tx_frames,
            w.accepted,
            w.handed_off,
            w.handoff_drops,
            w.stack.tx_rst,
            w.stack.rx_bad_checksum,
            w.stack.rx_malformed,
            w.stack.listen_drops,
            w.time_wait,
            w.stack.time_wait_overflow,
            w.stack.time_wait_recycled,
            w.reset_at_shutdown,
            w.stack.retransmits,
            w.stack.fast_retransmits,
            w.stack.rto_timeouts,
            w.stack.spurious_retransmits,
            w.stack.tlp_probes,
            w.stack.out_of_window,
            w.stack.dsacks_sent,
            w.stack.rx_data_segments,
            w.stack.tx_pure_acks,
            w.iterations,
            w.busy_iterations,
            w.sleeps,
            w.tx_kicks,
            w.kernel_drops.rx_ring_full,
            w.kernel_drops.rx_dropped,
            w.kernel_drops.fill_ring_empty,
            w.stalls,
            w.longest_stall.as_micros(),
        );
    }
    println!(
        "stats xdp redirected={} passed={} malformed={}",
        r.steering.redirected, r.steering.passed, r.steering.malformed
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_parse() {
        assert_eq!(parse_cores("0,1"), Ok(CoreList(vec![0, 1])));
        assert_eq!(parse_cores("2-4,7"), Ok(CoreList(vec![2, 3, 4, 7])));
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("x").is_err());
        assert!(parse_cores("").is_err());
    }
}
