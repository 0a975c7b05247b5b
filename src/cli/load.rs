//! `xdp-tcp load`: the load generator. The flags become a [`LoadSpec`]
//! (what to run, the same on every stack) plus the options of the chosen
//! stack, then the run is dispatched on `--stack`.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::load_fast::{self, FastLoadArgs};
use super::serve::{parse_cores, CoreList};
use crate::kernel::load::{run_observed, KernelLoadOptions};
use crate::load::{LoadReport, LoadSpec, Workload};

/// The stack that carries the client's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stack {
    /// Linux kernel sockets (epoll through mio).
    Kernel,
    /// The AF_XDP fast path (this crate's stack; needs --iface and --addr).
    Fast,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Stack the client runs on.
    #[arg(long, value_enum)]
    stack: Stack,
    /// Server address, IP:PORT.
    #[arg(long)]
    target: SocketAddrV4,
    /// rpc (echo server), http (http), short (echo; connect, request,
    /// response, close), bulk-send (discard), bulk-recv (source). short
    /// leaves TIME-WAIT on the client: set net.ipv4.tcp_tw_reuse=1 in its
    /// network namespace or the ports run out.
    #[arg(long, value_parser = parse_workload)]
    workload: Workload,
    /// Connections (for short: concurrent connect/request/close loops).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Requests in flight per connection in closed loop (rpc, http).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Open loop: total requests per second over all connections; latency
    /// is measured from each request's intended send time.
    #[arg(long)]
    rate: Option<f64>,
    /// Measured time, e.g. 5s, 500ms.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Time run before measuring.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    #[arg(long, default_value = "64", value_parser = super::parse_size)]
    request_bytes: usize,
    #[arg(long, default_value = "64", value_parser = super::parse_size)]
    response_bytes: usize,
    /// Connections opened first and left idle through the run (e.g. 100K);
    /// `idle-ready N` is printed once all are established.
    #[arg(long, default_value = "0", value_parser = super::parse_size)]
    idle_connections: usize,
    /// Extra local address (repeat): connections spread over the routed
    /// address and these, each bringing its own ephemeral port space.
    #[arg(long = "source-addr")]
    source_addrs: Vec<Ipv4Addr>,
    /// Client threads (kernel) or workers (fast, one per receive queue).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Cores to pin the client threads or workers to, e.g. "1,0" or "2-5".
    #[arg(long, value_parser = parse_cores)]
    cores: Option<CoreList>,
    /// Write the report as JSON (one LoadReport) to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    fast: FastLoadArgs,
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse()
}

impl LoadArgs {
    /// The stack-independent part of the flags, checked.
    pub fn spec(&self) -> Result<LoadSpec, String> {
        let spec = LoadSpec {
            workload: self.workload,
            target: self.target,
            connections: self.connections,
            pipeline: self.pipeline,
            rate: self.rate,
            duration: self.duration,
            warmup: self.warmup,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            idle_connections: self.idle_connections,
        };
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    fn kernel_options(&self) -> Result<KernelLoadOptions, String> {
        if self.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        Ok(KernelLoadOptions {
            threads: self.threads,
            cores: self.cores.as_ref().map(|c| c.0.clone()),
            source_addrs: self.source_addrs.clone(),
        })
    }
}

pub fn run(a: &LoadArgs) -> Result<(), String> {
    let spec = a.spec()?;
    if let Some(path) = &a.json {
        // Refuse before a long run, not after it.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            return Err(format!(
                "--json {}: directory {} does not exist",
                path.display(),
                dir.display()
            ));
        }
    }
    let stop = super::stop_on_signals()?;
    let report = match a.stack {
        Stack::Kernel => {
            let options = a.kernel_options()?;
            run_observed(&spec, &options, &stop, print_idle_ready).map_err(|e| e.to_string())?
        }
        Stack::Fast => {
            if a.threads == 0 {
                return Err("--threads must be at least 1".into());
            }
            load_fast::run(&spec, &a.fast, a.threads, a.cores.as_ref(), &a.source_addrs)?
        }
    };
    print_summary(&spec, &report);
    if let Some(path) = &a.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n")
            .map_err(|e| format!("cannot write --json {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The line scripts wait for before they measure the idle set's cost.
fn print_idle_ready(n: usize) {
    println!("idle-ready {n}");
    let _ = std::io::stdout().flush();
}

fn print_summary(spec: &LoadSpec, r: &LoadReport) {
    let mode = match r.rate {
        Some(rate) => format!("open loop at {rate} req/s"),
        None => format!("closed loop, pipeline {}", r.pipeline),
    };
    println!(
        "load stack={} workload={} target={} connections={} idle={} ({mode}), {:.2} s measured after {:?} warm-up",
        r.stack, r.workload, spec.target, r.connections, r.idle_connections, r.duration_s, spec.warmup
    );
    println!(
        "  requests     {} ({:.0} req/s)",
        r.requests, r.requests_per_sec
    );
    println!(
        "  throughput   {:.3} Gbit/s ({} bytes sent, {} received)",
        r.gbit_per_sec, r.bytes_sent, r.bytes_received
    );
    println!(
        "  connections  {} connects ({:.0} conn/s), {} connect errors, {} waited for a local port",
        r.connects, r.connections_per_sec, r.connect_errors, r.port_waits
    );
    if r.port_waits > 0 {
        eprintln!(
            "xdp-tcp: warning: {} connect(s) found every local port to {} busy and waited: \
             the client's port space, not the server, bounded this run; add --source-addr \
             addresses (each brings its own port range)",
            r.port_waits, spec.target
        );
    }
    match &r.latency_us {
        Some(l) => println!(
            "  latency us   p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        ),
        None => println!("  latency us   -"),
    }
    println!("  errors       {}", r.errors);
    if !r.timeline_100ms.is_empty() {
        // Per 100 ms from the workload's start, warm-up included, as
        // responses per second: a start-up transient shows here.
        let per_s: Vec<String> = r
            .timeline_100ms
            .iter()
            .map(|n| format!("{:.1}k", *n as f64 * 10.0 / 1e3))
            .collect();
        println!(
            "  per 100 ms   {} (responses/s, from the start)",
            per_s.join(" ")
        );
    }
    let (value, unit) = r.headline();
    println!("  headline     {value:.3} {unit}");
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;

    fn parse(extra: &[&str]) -> Result<LoadArgs, String> {
        parse_on("kernel", extra)
    }

    fn parse_on(stack: &str, extra: &[&str]) -> Result<LoadArgs, String> {
        let mut args = vec![
            "xdp-tcp",
            "load",
            "--stack",
            stack,
            "--target",
            "198.18.0.1:7",
        ];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Load(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn every_flag_parses_into_the_spec() {
        let a = parse(&[
            "--workload",
            "rpc",
            "--connections",
            "64",
            "--pipeline",
            "4",
            "--rate",
            "50000",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--request-bytes",
            "128",
            "--response-bytes",
            "128",
            "--idle-connections",
            "100K",
            "--source-addr",
            "198.18.0.3",
            "--source-addr",
            "198.18.0.4",
            "--threads",
            "2",
            "--cores",
            "1,0",
            "--json",
            "/tmp/x.json",
        ])
        .unwrap();
        let spec = a.spec().unwrap();
        assert_eq!(spec.workload, Workload::Rpc);
        assert_eq!((spec.connections, spec.pipeline), (64, 4));
        assert_eq!(spec.rate, Some(50000.0));
        assert_eq!(spec.duration, Duration::from_secs(2));
        assert_eq!(spec.warmup, Duration::from_millis(500));
        assert_eq!(spec.idle_connections, 100_000);
        let o = a.kernel_options().unwrap();
        assert_eq!(o.threads, 2);
        assert_eq!(o.cores, Some(vec![1, 0]));
        assert_eq!(o.source_addrs.len(), 2);
    }

    #[test]
    fn fast_stack_flags_parse() {
        let a = parse_on(
            "fast",
            &[
                "--workload",
                "short",
                "--connections",
                "64",
                "--source-addr",
                "198.18.0.3",
                "--threads",
                "2",
                "--iface",
                "eth9",
                "--addr",
                "198.18.0.2",
                "--xdp-mode",
                "generic",
                "--local-ports",
                "20000-29999",
            ],
        )
        .unwrap();
        assert_eq!(a.stack, Stack::Fast);
        assert_eq!(a.spec().unwrap().workload, Workload::Short);
        assert_eq!(a.fast.iface.as_deref(), Some("eth9"));
        assert_eq!(a.fast.addr, Some(Ipv4Addr::new(198, 18, 0, 2)));
        assert_eq!(a.fast.local_ports, "20000-29999".parse().ok());
        assert_eq!(a.source_addrs, vec![Ipv4Addr::new(198, 18, 0, 3)]);
        let err = parse_on("fast", &["--workload", "rpc", "--local-ports", "9-1"]).unwrap_err();
        assert!(err.contains("LO <= HI"), "{err}");
    }

    #[test]
    fn bad_flags_say_what_to_fix() {
        let spec_err = |extra: &[&str]| parse(extra).unwrap().spec().unwrap_err();
        assert!(spec_err(&["--workload", "rpc", "--connections", "0"]).contains("--connections"));
        assert!(
            spec_err(&["--workload", "rpc", "--response-bytes", "10"]).contains("--response-bytes")
        );
        assert!(spec_err(&["--workload", "bulk-send", "--rate", "10"]).contains("--rate"));
        assert!(spec_err(&["--workload", "short", "--pipeline", "2"]).contains("--pipeline"));
        assert!(spec_err(&["--workload", "rpc", "--duration", "0s"]).contains("--duration"));
        let threads = parse(&["--workload", "rpc", "--threads", "0"]).unwrap();
        assert!(threads.kernel_options().unwrap_err().contains("--threads"));
        assert!(parse(&["--workload", "bulk"])
            .unwrap_err()
            .contains("bulk-send"));
        assert!(parse(&["--workload", "rpc", "--duration", "fast"]).is_err());
        assert!(parse(&["--workload", "rpc", "--stack", "dpdk"]).is_err());
    }
}
