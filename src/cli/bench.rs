//! `xdp-tcp bench` (the full kernel-vs-fast-path matrix) and `xdp-tcp
//! demo` (a short comparison for a newcomer). Both need root: they build
//! the veth testbed and attach XDP.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::bench::plan::{CaseKind, CaseParams, Client, OffloadChoice, Qdisc};
use crate::bench::process::is_root;
use crate::bench::runner::{self, BenchConfig, BenchOutcome};

/// The testbed's qdisc unless `--qdisc` says otherwise (see [`Qdisc`]).
const DEFAULT_QDISC: Qdisc = Qdisc::PfifoFast;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Rows to run (comma-separated): rpc, rpc-p99 (open-loop p99 at half
    /// the kernel server's rpc rate; implies rpc), http, short, bulk-send,
    /// bulk-recv, idle. Default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<CaseKind>,
    /// Clients to run (comma-separated): kernel, fast, wrk (http only).
    /// Default: every client a row has.
    #[arg(long, value_enum, value_delimiter = ',')]
    clients: Vec<ClientArg>,
    /// Connections of the http, short and idle rows, and of the rpc rows
    /// unless --rpc-connections is given (1 to 1024).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    connections: u16,
    /// Connection counts of the rpc and rpc-p99 rows, one row each, e.g.
    /// 1,64,1024.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=1024))]
    rpc_connections: Vec<u16>,
    /// Streams of the several-streams bulk rows (1: only the single-stream rows).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    streams: u16,
    /// Idle connections of the idle-scale row.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Repetitions per cell (each runs the kernel server, then the fast one).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Measured time per run, e.g. 5s, 500ms (wrk measures whole seconds,
    /// at least one). The short rows measure at least 3 s, so their
    /// window crosses the clients' TIME-WAIT reuse (1 s in) and ends in
    /// the steady state that follows it.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up per run before measuring (wrk: whole seconds, none below 1s).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Kernel offloads: off, on, both, or auto (off everywhere, both for
    /// the bulk rows, where they change the answer).
    #[arg(long, value_enum, default_value_t = OffloadChoice::Auto)]
    offloads: OffloadChoice,
    /// Root qdisc of both testbed veths. Without one (noqueue) a veth
    /// drops what it sends while the peer's XDP receive ring (256 frames)
    /// is full; with one it stops its queue and the qdisc holds the
    /// frames (Linux 6.17+), as a NIC's transmit queue does.
    #[arg(long, value_enum, default_value_t = DEFAULT_QDISC)]
    qdisc: Qdisc,
    /// Directory for table.txt, runs.json/csv, medians.json/csv, chart.svg
    /// and raw/ (every client's report and every server's output).
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// Core of the server.
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Core of the client.
    #[arg(long, default_value_t = 1)]
    client_core: usize,
    /// Both servers poll without sleeping: the fast server's worker
    /// (`serve --busy-poll`) and the kernel server's thread, waiting in
    /// epoll with a zero timeout (`kernel-serve --busy-poll`): polling
    /// against polling. By default each server runs as deployed: the fast
    /// worker polls 50 us before it sleeps, the kernel server sleeps in
    /// epoll.
    #[arg(long)]
    busy_poll: bool,
    /// A small, fast run for CI: one repetition of 1 s after 0.2 s, 16
    /// connections, 2 bulk streams, 1000 idle connections, offloads off
    /// (explicit flags still win).
    #[arg(long)]
    quick: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ClientArg {
    Kernel,
    Fast,
    Wrk,
}

impl From<ClientArg> for Client {
    fn from(c: ClientArg) -> Client {
        match c {
            ClientArg::Kernel => Client::Kernel,
            ClientArg::Fast => Client::Fast,
            ClientArg::Wrk => Client::Wrk,
        }
    }
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for the table, the JSON/CSV results and the chart.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
}

fn need_root(what: &str) -> Result<(), String> {
    if is_root() {
        Ok(())
    } else {
        Err(format!(
            "xdp-tcp {what} needs root: it builds network namespaces and veths and attaches \
             an XDP program (run it with sudo, or use scripts/demo.sh)"
        ))
    }
}

/// The configuration `bench` runs with, from its flags (the `--quick`
/// values apply where a flag was left at its default).
fn bench_config(a: &BenchArgs, matches: &Defaults) -> Result<BenchConfig, String> {
    let mut kinds = if a.workloads.is_empty() {
        CaseKind::ALL.to_vec()
    } else {
        a.workloads.clone()
    };
    if kinds.contains(&CaseKind::RpcP99) && !kinds.contains(&CaseKind::Rpc) {
        kinds.push(CaseKind::Rpc);
    }
    let quick = |default: bool| a.quick && default;
    if a.client_core == a.server_core {
        return Err(format!(
            "--server-core and --client-core are both {}: give them separate cores",
            a.client_core
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (flag, core) in [
        ("--server-core", a.server_core),
        ("--client-core", a.client_core),
    ] {
        if core >= cpus {
            return Err(format!(
                "{flag} {core}: this machine has cores 0 to {}",
                cpus - 1
            ));
        }
    }
    let connections = if quick(matches.connections) {
        16
    } else {
        usize::from(a.connections)
    };
    Ok(BenchConfig {
        kinds,
        params: CaseParams {
            connections,
            rpc_connections: if a.rpc_connections.is_empty() {
                vec![connections]
            } else {
                a.rpc_connections.iter().map(|&c| usize::from(c)).collect()
            },
            streams: if quick(matches.streams) {
                2
            } else {
                usize::from(a.streams)
            },
            idle: if quick(matches.idle) { 1000 } else { a.idle },
            clients: a.clients.iter().map(|&c| c.into()).collect(),
        },
        reps: if quick(matches.reps) { 1 } else { a.reps },
        duration: if quick(matches.duration) {
            Duration::from_secs(1)
        } else {
            a.duration
        },
        warmup: if quick(matches.warmup) {
            Duration::from_millis(200)
        } else {
            a.warmup
        },
        offloads: if quick(matches.offloads) {
            OffloadChoice::Off
        } else {
            a.offloads
        },
        qdisc: a.qdisc,
        busy_poll: a.busy_poll,
        out_dir: a.out.clone(),
        server_core: a.server_core,
        client_core: a.client_core,
        title: "xdp-tcp bench: kernel vs fast path, same client".into(),
    })
}

/// Which flags were left at their defaults (so `--quick` may change them).
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    connections: bool,
    streams: bool,
    idle: bool,
    reps: bool,
    duration: bool,
    warmup: bool,
    offloads: bool,
}

impl Defaults {
    /// From clap's matches of the `bench` subcommand.
    pub fn from_matches(m: &clap::ArgMatches) -> Defaults {
        let d = |id: &str| {
            !matches!(
                m.value_source(id),
                Some(clap::parser::ValueSource::CommandLine)
            )
        };
        Defaults {
            connections: d("connections"),
            streams: d("streams"),
            idle: d("idle"),
            reps: d("reps"),
            duration: d("duration"),
            warmup: d("warmup"),
            offloads: d("offloads"),
        }
    }

    /// Every flag at its default.
    pub fn all() -> Defaults {
        Defaults {
            connections: true,
            streams: true,
            idle: true,
            reps: true,
            duration: true,
            warmup: true,
            offloads: true,
        }
    }
}

fn report(outcome: &BenchOutcome) {
    println!("{}", outcome.table);
    for f in &outcome.files {
        if f != &outcome.chart {
            println!("wrote {}", f.display());
        }
    }
    println!("chart: {}", outcome.chart.display());
}

pub fn run_bench(a: &BenchArgs, defaults: &Defaults) -> Result<(), String> {
    let cfg = bench_config(a, defaults)?;
    need_root("bench")?;
    let stop = super::stop_on_signals()?;
    let outcome = runner::run(&cfg, &stop)?;
    report(&outcome);
    Ok(())
}

/// The demo: `http` served on the fast path and on kernel sockets, `wrk`
/// and the fast-path client as clients, two short repetitions each;
/// under a minute.
pub fn run_demo(a: &DemoArgs) -> Result<(), String> {
    need_root("demo")?;
    let cfg = BenchConfig {
        kinds: vec![CaseKind::Http],
        params: CaseParams {
            connections: 64,
            rpc_connections: vec![64],
            streams: 1,
            idle: 0,
            clients: vec![Client::Wrk, Client::Fast],
        },
        reps: 2,
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
        offloads: OffloadChoice::Off,
        qdisc: DEFAULT_QDISC,
        busy_poll: false,
        out_dir: a.out.clone(),
        server_core: 0,
        client_core: 1.min(
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .saturating_sub(1),
        ),
        title: "xdp-tcp demo: HTTP keep-alive, kernel server vs fast-path server".into(),
    };
    if cfg.client_core == cfg.server_core {
        return Err("the demo needs two cores (server and client are pinned apart)".into());
    }
    println!("xdp-tcp demo: building the veth testbed, serving http on the fast path and on kernel sockets, comparing them with the same clients (about a minute)...");
    let stop = super::stop_on_signals()?;
    let outcome = runner::run(&cfg, &stop)?;
    report(&outcome);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: BenchArgs,
    }

    #[test]
    fn quick_changes_only_what_was_left_at_its_default() {
        let t = T::parse_from(["t", "--quick", "--reps", "2", "--workloads", "rpc-p99,http"]);
        let mut d = Defaults::all();
        d.reps = false;
        let cfg = bench_config(&t.a, &d).unwrap();
        assert_eq!(cfg.reps, 2);
        assert_eq!(cfg.duration, Duration::from_secs(1));
        assert_eq!(cfg.params.connections, 16);
        assert_eq!(cfg.params.rpc_connections, [16]);
        assert_eq!(cfg.offloads, OffloadChoice::Off);
        // rpc-p99 needs the rpc row's kernel rate.
        assert!(cfg.kinds.contains(&CaseKind::Rpc));
        let t = T::parse_from(["t", "--rpc-connections", "1,64,1024"]);
        let cfg = bench_config(&t.a, &Defaults::all()).unwrap();
        assert_eq!(cfg.params.rpc_connections, [1, 64, 1024]);
        assert_eq!(cfg.params.connections, 64);
    }

    #[test]
    fn the_testbed_gets_a_qdisc_unless_told_noqueue() {
        let t = T::parse_from(["t"]);
        let cfg = bench_config(&t.a, &Defaults::all()).unwrap();
        assert_eq!(cfg.qdisc, Qdisc::PfifoFast);
        assert_eq!(cfg.qdisc.name(), "pfifo_fast");
        let t = T::parse_from(["t", "--qdisc", "noqueue"]);
        let cfg = bench_config(&t.a, &Defaults::all()).unwrap();
        assert_eq!(cfg.qdisc.name(), "noqueue");
        let bad = T::try_parse_from(["t", "--qdisc", "fq_codel"]);
        let err = bad.err().expect("fq_codel is not offered").to_string();
        assert!(err.contains("pfifo_fast"), "{err}");
    }

    #[test]
    fn the_same_core_twice_is_refused() {
        let t = T::parse_from(["t", "--server-core", "1", "--client-core", "1"]);
        let err = bench_config(&t.a, &Defaults::all()).unwrap_err();
        assert!(err.contains("separate cores"), "{err}");
    }
}
