//! `xdp-tcp kernel-serve`: the built-in apps on kernel sockets (the twins
//! the fast path is compared against), with the same app flags as
//! `xdp-tcp serve`.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

use clap::{Args, ValueEnum};

use super::serve::{parse_cores, CoreList};
use crate::kernel::{raise_nofile_limit, serve, KernelAppKind, KernelServerConfig};

/// Descriptors the idle-scale experiment needs on the server: 100k idle
/// connections plus the measured ones and some slack.
const WANTED_NOFILE: u64 = 100_000 + 4_096;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AppName {
    Echo,
    Discard,
    Source,
    Http,
}

#[derive(Args, Debug)]
pub struct KernelServeArgs {
    /// Address to listen on.
    #[arg(long)]
    addr: Ipv4Addr,
    #[arg(long)]
    port: u16,
    /// Application to run.
    #[arg(long, value_enum, default_value_t = AppName::Http)]
    app: AppName,
    /// Server threads, one SO_REUSEPORT listener each (default: one per
    /// --cores entry, else one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Cores to pin the threads to, e.g. "0,1" or "2-5" (thread i on the
    /// i-th core, round robin).
    #[arg(long, value_parser = parse_cores)]
    cores: Option<CoreList>,
    /// `http`: response body size in bytes.
    #[arg(long, default_value_t = 64)]
    body_bytes: usize,
    /// `source`: bytes to send on each connection.
    #[arg(long, default_value = "1M", value_parser = super::parse_size)]
    bytes: usize,
    /// Accept backlog per thread (the kernel caps it at net.core.somaxconn).
    #[arg(long, default_value_t = 4096)]
    backlog: u32,
    /// Never sleep in epoll (zero-timeout waits in a loop, each thread's
    /// core fully busy): to compare with the fast path's `--busy-poll`.
    #[arg(long)]
    busy_poll: bool,
}

pub fn run(a: &KernelServeArgs) -> Result<(), String> {
    if a.port == 0 {
        return Err("--port 0 is not a port to serve on".into());
    }
    if a.threads == Some(0) {
        return Err("--threads must be at least 1".into());
    }
    // One thread per listed core, else one per core of the machine.
    let threads = a.threads.unwrap_or_else(|| match &a.cores {
        Some(cores) => cores.0.len(),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    let app = match a.app {
        AppName::Echo => KernelAppKind::Echo,
        AppName::Discard => KernelAppKind::Discard,
        AppName::Source => KernelAppKind::Source { bytes: a.bytes },
        AppName::Http => KernelAppKind::Http {
            body_bytes: a.body_bytes,
        },
    };
    let nofile = raise_nofile_limit(WANTED_NOFILE)
        .map_err(|e| format!("cannot read or raise RLIMIT_NOFILE: {e}"))?;
    if nofile.soft < WANTED_NOFILE {
        eprintln!(
            "xdp-tcp: warning: RLIMIT_NOFILE is {} (hard limit): at most about {} connections \
             fit, fewer than the 100k of the idle-scale experiment; raise the hard limit \
             (ulimit -Hn, LimitNOFILE=, /etc/security/limits.conf; raising it in-process needs CAP_SYS_RESOURCE)",
            nofile.soft,
            nofile.soft.saturating_sub(64)
        );
    }
    let stop = super::stop_on_signals()?;
    let config = KernelServerConfig {
        addr: SocketAddrV4::new(a.addr, a.port),
        threads,
        cores: a.cores.as_ref().map(|c| c.0.clone()),
        backlog: a.backlog.min(i32::MAX as u32) as i32,
        busy_poll: a.busy_poll,
    };
    let app_name = format!("{:?}", a.app).to_lowercase();
    let report = serve(&config, app, &stop, |bound| {
        println!(
            "ready kernel addr={bound} threads={threads} app={app_name} nofile={}",
            nofile.soft
        );
        let _ = std::io::stdout().flush();
    })
    .map_err(|e| format!("cannot serve on {}: {e}", config.addr))?;
    println!(
        "stats kernel accepted={} requests={} bytes_received={} bytes_sent={} accept_errors={} empty_polls={}",
        report.accepted,
        report.requests,
        report.bytes_received,
        report.bytes_sent,
        report.accept_errors,
        report.empty_polls
    );
    Ok(())
}
