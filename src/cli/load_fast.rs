//! The fast-path arm of `xdp-tcp load` (`--stack fast`): its own flags
//! and the run through [`run_fast_load`].

use std::io::Write;
use std::net::Ipv4Addr;

use clap::Args;

use super::serve::{CoreList, Mode};
use crate::load::{run_fast_load, FastLoadConfig, LoadReport, LoadSpec};
use crate::runtime::{ClientConfig, FastPathConfig, PortRange};

/// Flags only the fast-path client takes.
#[derive(Args, Debug, Clone)]
pub struct FastLoadArgs {
    /// Fast path: interface the client runs on (one worker per receive queue used).
    #[arg(long)]
    pub iface: Option<String>,
    /// Fast path: the interface's IPv4 address to connect from.
    #[arg(long)]
    pub addr: Option<Ipv4Addr>,
    /// Fast path: XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Native)]
    pub xdp_mode: Mode,
    /// Fast path: local ports owned for connections, LO-HI (default: the
    /// larger range outside the kernel's ip_local_port_range).
    #[arg(long)]
    pub local_ports: Option<PortRange>,
}

/// Runs `spec` on the fast path with `workers` workers; `source_addrs`
/// are extra local addresses. Prints `idle-ready N` when the idle
/// connections are up.
pub fn run(
    spec: &LoadSpec,
    fast: &FastLoadArgs,
    workers: usize,
    cores: Option<&CoreList>,
    source_addrs: &[Ipv4Addr],
) -> Result<LoadReport, String> {
    let iface = fast
        .iface
        .clone()
        .ok_or("--stack fast needs --iface (the interface to run the client on)")?;
    let addr = fast
        .addr
        .ok_or("--stack fast needs --addr (the interface's IPv4 address to connect from)")?;
    let mut config = FastPathConfig::new(iface, addr, &[]);
    config.workers = workers;
    config.cores = cores.map(|c| c.0.clone());
    config.xdp_mode = fast.xdp_mode.into();
    // Connections close with FINs at the end; the drain ends as soon as
    // none is left but TIME-WAIT, so a long bound costs nothing.
    config.drain = std::time::Duration::from_secs(3);
    // Enough for idle scale: every connection, plus TIME-WAIT of short ones.
    config.stack.max_connections = (spec.connections + spec.idle_connections)
        .div_ceil(workers.max(1))
        .max(1)
        * 2
        + 65536;
    config.client = Some(ClientConfig {
        local_ports: fast.local_ports,
        extra_addrs: source_addrs.to_vec(),
        targets: vec![*spec.target.ip()],
        gateway_mac: None,
    });
    run_fast_load(
        FastLoadConfig {
            spec: spec.clone(),
            fast_path: config,
        },
        |n| {
            println!("idle-ready {n}");
            let _ = std::io::stdout().flush();
        },
    )
    .map(|run| {
        if run.ports_exhausted > 0 {
            eprintln!(
                "xdp-tcp: warning: {} connect attempt(s) found every local port to {} busy; add --source-addr or widen --local-ports",
                run.ports_exhausted, spec.target
            );
        }
        run.report
    })
    .map_err(|e| e.to_string())
}
