//! `xdp-tcp load`: the load generator (flags as in the issue 5 contract).
//! This file carries the fast-path arm; the kernel arm is added with the
//! kernel client (`src/kernel/load.rs`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::load_fast::{self, FastLoadArgs};
use super::serve::CoreList;
use crate::load::{LoadReport, LoadSpec, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StackName {
    /// The AF_XDP fast path (this crate's stack).
    Fast,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Which TCP stack carries the client's connections.
    #[arg(long, value_enum)]
    stack: StackName,
    /// Server to load, IP:PORT.
    #[arg(long)]
    target: SocketAddrV4,
    #[arg(long, value_parser = parse_workload)]
    workload: Workload,
    /// Concurrent connections (short: concurrent connect/request/close loops).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Requests in flight per connection (closed loop).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Open loop: total requests per second (latency from the intended send time).
    #[arg(long)]
    rate: Option<f64>,
    /// Measured time, e.g. 5s or 500ms.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Time run before measuring.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    #[arg(long, default_value_t = 64)]
    request_bytes: usize,
    #[arg(long, default_value_t = 64)]
    response_bytes: usize,
    /// Connections opened and left idle before the workload (prints `idle-ready N`).
    #[arg(long, default_value_t = 0)]
    idle_connections: usize,
    /// Extra local addresses to connect from (repeat); connections spread over them.
    #[arg(long = "source-addr")]
    source_addrs: Vec<Ipv4Addr>,
    /// Client threads (kernel) or workers (fast).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Cores to pin threads/workers to, e.g. "1,0".
    #[arg(long, value_parser = super::serve::parse_cores)]
    cores: Option<CoreList>,
    /// Write the LoadReport as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    fast: FastLoadArgs,
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse()
}

pub fn run(a: &LoadArgs) -> Result<(), String> {
    if a.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let spec = LoadSpec {
        connections: a.connections,
        pipeline: a.pipeline,
        rate: a.rate,
        duration: a.duration,
        warmup: a.warmup,
        request_bytes: a.request_bytes,
        response_bytes: a.response_bytes,
        idle_connections: a.idle_connections,
        ..LoadSpec::new(a.workload, a.target)
    };
    spec.validate().map_err(|e| e.0)?;
    let report = match a.stack {
        StackName::Fast => {
            load_fast::run(&spec, &a.fast, a.threads, a.cores.as_ref(), &a.source_addrs)?
        }
    };
    print_summary(&report);
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write --json {}: {e}", path.display()))?;
    }
    Ok(())
}

fn print_summary(r: &LoadReport) {
    println!(
        "load stack={} workload={} connections={} pipeline={} duration_s={:.2}",
        r.stack, r.workload, r.connections, r.pipeline, r.duration_s
    );
    println!(
        "result requests={} requests_per_sec={:.0} connects={} connections_per_sec={:.0} gbit_per_sec={:.3} bytes_sent={} bytes_received={} connect_errors={} errors={}",
        r.requests,
        r.requests_per_sec,
        r.connects,
        r.connections_per_sec,
        r.gbit_per_sec,
        r.bytes_sent,
        r.bytes_received,
        r.connect_errors,
        r.errors
    );
    if let Some(l) = &r.latency_us {
        println!(
            "latency_us p50={:.1} p90={:.1} p99={:.1} p999={:.1} max={:.1} mean={:.1}",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        );
    }
}
