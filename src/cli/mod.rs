//! The `xdp-tcp` command line (clap). Every bad flag exits non-zero with a
//! message that says what to fix.

mod bench;
mod idle_args;
mod impair;
mod kernel_serve;
mod load;
mod load_fast;
mod neighbor_args;
mod recovery_args;
mod serve;
mod sim;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "xdp-tcp",
    version,
    about = "A userspace TCP stack on an AF_XDP fast path"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a built-in application on the AF_XDP fast path until SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Serve the same application on kernel sockets (epoll, SO_REUSEPORT),
    /// for side-by-side comparisons.
    KernelServe(kernel_serve::KernelServeArgs),
    /// Generate load against a server (rpc, http, short connections, bulk
    /// either way, idle scale), closed or open loop, and report requests/s,
    /// Gbit/s, connections/s and latency percentiles.
    Load(load::LoadArgs),
    /// Run a bulk transfer through the TCP engine in the deterministic
    /// network simulator and print what happened.
    Sim(sim::SimArgs),
    /// Bridge two interfaces through the simulator's impairment model
    /// (delay, jitter, rate, loss, reordering, duplication, corruption):
    /// a link emulator for kernels without netem. Runs until SIGINT/SIGTERM,
    /// then prints per-direction statistics.
    Impair(impair::ImpairArgs),
    /// Compare the fast path with the kernel stack on the veth testbed:
    /// every workload × client × server cell, repeated, stacks
    /// alternating; prints a table of medians with the fast/kernel ratio
    /// and writes JSON, CSV and an SVG chart. Needs root.
    Bench(bench::BenchArgs),
    /// A one-minute kernel-vs-fast-path comparison for a newcomer: builds
    /// the testbed, serves http on both stacks, prints the table and where
    /// the chart is, tears everything down. Needs root.
    Demo(bench::DemoArgs),
}

/// Parses arguments and runs the chosen command.
pub fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Bench(args) => {
            let defaults = matches
                .subcommand_matches("bench")
                .map_or(bench::Defaults::all(), bench::Defaults::from_matches);
            bench::run_bench(&args, &defaults)
        }
        Command::Demo(args) => bench::run_demo(&args),
        Command::Serve(args) => serve::run(&args),
        Command::KernelServe(args) => kernel_serve::run(&args),
        Command::Load(args) => load::run(&args),
        Command::Sim(args) => sim::run(&args),
        Command::Impair(args) => impair::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xdp-tcp: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// A flag that SIGINT and SIGTERM set.
pub(crate) fn stop_on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    Ok(stop)
}

/// Parses sizes like `1500`, `64K`, `10M`, `1G` (powers of 1000; `Ki`,
/// `Mi`, `Gi` for powers of 1024).
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| {
        format!("'{s}' is not a size: use digits with an optional K, M, G, Ki, Mi or Gi")
    })?;
    let mult: usize = match unit {
        "" => 1,
        "K" | "k" => 1_000,
        "M" | "m" => 1_000_000,
        "G" | "g" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => {
            return Err(format!(
                "'{s}': unknown unit '{unit}' (use K, M, G, Ki, Mi or Gi)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_serve_flag_parses() {
        let cli = Cli::try_parse_from([
            "xdp-tcp",
            "serve",
            "--iface",
            "eth9",
            "--addr",
            "198.18.0.1",
            "--port",
            "80",
            "--port",
            "81",
            "--app",
            "http",
            "--workers",
            "2",
            "--cores",
            "0,1",
            "--xdp-mode",
            "generic",
            "--zero-copy",
            "--body-bytes",
            "10",
            "--bytes",
            "1M",
            "--hold-ms",
            "5",
            "--backlog",
            "8",
            "--drain-ms",
            "10",
            "--batch",
            "32",
            "--nodelay",
            "--congestion",
            "newreno",
            "--no-hystart",
        ]);
        assert!(cli.is_ok(), "{:?}", cli.err());
        let cli = Cli::try_parse_from([
            "xdp-tcp",
            "kernel-serve",
            "--addr",
            "198.18.0.1",
            "--port",
            "80",
            "--threads",
            "2",
            "--app",
            "source",
            "--bytes",
            "1G",
            "--cores",
            "0,1",
            "--body-bytes",
            "10",
            "--backlog",
            "128",
        ]);
        assert!(cli.is_ok(), "{:?}", cli.err());
        let cli = Cli::try_parse_from([
            "xdp-tcp", "sim", "--burst", "0.01,0.3", "--trace", "--bytes", "1M",
        ]);
        assert!(cli.is_ok(), "{:?}", cli.err());
        let cli = Cli::try_parse_from(["xdp-tcp", "sim", "--congestion", "cubic", "--no-hystart"]);
        assert!(cli.is_ok(), "{:?}", cli.err());
        let cli = Cli::try_parse_from(["xdp-tcp", "sim", "--no-sack", "--no-rack"]);
        assert!(cli.is_ok(), "{:?}", cli.err());
        // An unknown algorithm is refused with a message naming the choices.
        let err = Cli::try_parse_from(["xdp-tcp", "sim", "--congestion", "bbr"])
            .expect_err("bbr is refused")
            .to_string();
        assert!(err.contains("use one of newreno, cubic"), "{err}");
    }

    #[test]
    fn clap_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("10M"), Ok(10_000_000));
        assert_eq!(parse_size("64Ki"), Ok(65536));
        assert!(parse_size("10X").is_err());
        assert!(parse_size("M").is_err());
    }
}
