//! `xdp-tcp kernel-serve`: the `http` app on kernel sockets (the twin the
//! fast path is compared against).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KernelApp {
    Http,
}

#[derive(Args, Debug)]
pub struct KernelServeArgs {
    /// Address to listen on.
    #[arg(long)]
    addr: Ipv4Addr,
    #[arg(long)]
    port: u16,
    #[arg(long, value_enum, default_value_t = KernelApp::Http)]
    app: KernelApp,
    /// Server threads (one per core by default), SO_REUSEPORT.
    #[arg(long)]
    threads: Option<usize>,
    /// `http`: response body size in bytes.
    #[arg(long, default_value_t = 64)]
    body_bytes: usize,
}

pub fn run(a: &KernelServeArgs) -> Result<(), String> {
    if a.port == 0 {
        return Err("--port 0 is not a port to serve on".into());
    }
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let addr = SocketAddrV4::new(a.addr, a.port);
    let KernelApp::Http = a.app;
    let report = crate::kernel::serve_http(addr, threads, a.body_bytes, stop, || {
        println!("ready kernel addr={addr} threads={threads} app=http");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    })
    .map_err(|e| format!("cannot serve on {addr}: {e}"))?;
    println!(
        "stats kernel accepted={} requests={}",
        report.accepted, report.requests
    );
    Ok(())
}
