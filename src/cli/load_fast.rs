//! The fast-path arm of `xdp-tcp load` (`--stack fast`): its own flags
//! and the run through [`run_fast_load`].

use std::io::Write;
use std::net::Ipv4Addr;

use clap::Args;

use super::serve::{CoreList, Mode};
use crate::load::{run_fast_load, FastLoadConfig, LoadReport, LoadSpec};
use crate::runtime::{ClientConfig, FastPathConfig, PortRange};
use crate::tcp::StackConfig;

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
    #[command(flatten)]
    pub neighbor: super::neighbor_args::NeighborArgs,
    #[command(flatten)]
    pub idle: super::idle_args::IdleArgs,
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
    fast.neighbor.apply(&mut config.neighbor);
    fast.idle.apply(&mut config);
    // Connections close with FINs at the end; the drain ends as soon as
    // none is left but TIME-WAIT, so a long bound costs nothing.
    config.drain = std::time::Duration::from_secs(3);
    let range = fast
        .local_ports
        .unwrap_or_else(|| PortRange::default_client(PortRange::kernel_ephemeral()));
    (config.stack.max_connections, config.stack.max_time_wait) =
        client_table_sizes(spec, workers, range, source_addrs.len());
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
    .map_err(|e| e.to_string())
}

/// Table sizes per worker of the fast client: `(max_connections,
/// max_time_wait)`. Connection slots for every live connection (twice,
/// for those closing); TIME-WAIT records for the short ones, at most one
/// per local (address, port) the worker owns, because reusing a tuple
/// replaces its TIME-WAIT (RFC 6191). (A fixed 64 Ki slots, when
/// TIME-WAITs still took connection slots, filled up at 30 000
/// connections/s over four addresses, and every later connect failed with
/// TooManyConnections.) Records never overflow, so no tuple is reused
/// without its TIME-WAIT having rested.
fn client_table_sizes(
    spec: &LoadSpec,
    workers: usize,
    range: PortRange,
    extra_addrs: usize,
) -> (usize, usize) {
    let workers = workers.max(1);
    let live = (spec.connections + spec.idle_connections)
        .div_ceil(workers)
        .max(1);
    let tuples = range.len().div_ceil(workers) * (1 + extra_addrs);
    (live * 2, tuples.max(StackConfig::default().max_time_wait))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Workload;

    #[test]
    fn tables_cover_every_live_connection_and_one_time_wait_per_owned_tuple() {
        let mut spec = LoadSpec::new(Workload::Short, "198.18.0.1:7".parse().unwrap());
        spec.connections = 64;
        let range: PortRange = "1024-32767".parse().unwrap();
        let floor = StackConfig::default().max_time_wait;
        // One worker, four addresses: 4 × 31 744 tuples (under the
        // default bound), 2 × 64 slots.
        assert_eq!(client_table_sizes(&spec, 1, range, 3), (128, floor));
        // Two workers own half the ports (and half the connections) each.
        assert_eq!(client_table_sizes(&spec, 2, range, 0), (64, floor));
        spec.idle_connections = 100_000;
        // Sixteen addresses: more tuples than the default bound.
        assert_eq!(
            client_table_sizes(&spec, 1, range, 15),
            (2 * 100_064, 16 * 31_744)
        );
    }
}
