//! `xdp-tcp sim`: one simulated transfer, reported as a user would want it.

use std::time::Duration;

use clap::Args;

use crate::sim::{run_transfer, GilbertElliott, Impairments, TransferSpec};

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Bytes per connection (K, M, G suffixes: powers of 1000).
    #[arg(long, default_value = "10M", value_parser = super::parse_size)]
    bytes: usize,
    /// Parallel connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Seed of every random choice; the same seed replays the run exactly.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One-way delay in milliseconds, each direction.
    #[arg(long, default_value_t = 1.0)]
    delay_ms: f64,
    /// Extra uniform delay up to this many milliseconds (order kept).
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
    /// Link rate in Mbit/s (0: unlimited).
    #[arg(long, default_value_t = 0.0)]
    rate_mbps: f64,
    /// Random loss probability per frame, each direction (0..1).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Bursty loss: Gilbert-Elliott p (good→bad) and r (bad→good), e.g. 0.01,0.3.
    #[arg(long, value_name = "P,R", value_delimiter = ',', num_args = 1)]
    burst: Option<Vec<f64>>,
    /// Probability a frame is held back by --reorder-ms (0..1).
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    #[arg(long, default_value_t = 3.0)]
    reorder_ms: f64,
    /// Probability a frame is delivered twice (0..1).
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Probability one bit of a frame is flipped (0..1).
    #[arg(long, default_value_t = 0.0)]
    corrupt: f64,
    /// Receiver reads at most this many bytes per millisecond (slow reader).
    #[arg(long, value_parser = super::parse_size)]
    reader_bytes_per_ms: Option<usize>,
    /// Receive buffer of both ends.
    #[arg(long, default_value = "256Ki", value_parser = super::parse_size)]
    recv_buffer: usize,
    /// Disable Nagle's algorithm (TCP_NODELAY).
    #[arg(long)]
    nodelay: bool,
    #[command(flatten)]
    recovery: super::recovery_args::RecoveryArgs,
    /// Print every delivered segment to stderr (time, hosts, flags, seq, ack, length, window).
    #[arg(long)]
    trace: bool,
    /// Virtual-time limit in seconds.
    #[arg(long, default_value_t = 3600)]
    time_limit_s: u64,
}

fn probability(name: &str, p: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!(
            "--{name} {p} is not a probability: give a value from 0 to 1"
        ))
    }
}

fn millis(name: &str, ms: f64) -> Result<Duration, String> {
    if ms.is_finite() && ms >= 0.0 {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(format!(
            "--{name} {ms} must be a non-negative number of milliseconds"
        ))
    }
}

fn impairments(a: &SimArgs) -> Result<Impairments, String> {
    let burst_loss = match &a.burst {
        None => None,
        Some(v) if v.len() != 2 => {
            return Err("--burst takes two probabilities, p,r (e.g. 0.005,0.3)".into())
        }
        Some(v) => Some(GilbertElliott {
            p: probability("burst p", v[0])?,
            r: probability("burst r", v[1])?,
            h: 1.0,
            k: 0.0,
        }),
    };
    if a.rate_mbps < 0.0 || !a.rate_mbps.is_finite() {
        return Err("--rate-mbps must be a non-negative number (0 means unlimited)".into());
    }
    Ok(Impairments {
        delay: millis("delay-ms", a.delay_ms)?,
        jitter: millis("jitter-ms", a.jitter_ms)?,
        rate_bps: (a.rate_mbps > 0.0).then_some((a.rate_mbps * 1e6) as u64),
        loss: probability("loss", a.loss)?,
        burst_loss,
        reorder: probability("reorder", a.reorder)?,
        reorder_delay: millis("reorder-ms", a.reorder_ms)?,
        duplicate: probability("duplicate", a.duplicate)?,
        corrupt: probability("corrupt", a.corrupt)?,
        ..Impairments::default()
    })
}

pub fn run(a: &SimArgs) -> Result<(), String> {
    let imp = impairments(a)?;
    let mut spec = TransferSpec::new(a.bytes, a.seed);
    spec.connections = a.connections as usize;
    spec.forward = imp.clone();
    spec.reverse = imp;
    spec.time_limit = Duration::from_secs(a.time_limit_s);
    spec.trace = a.trace;
    for tcp in [&mut spec.client_tcp, &mut spec.server_tcp] {
        tcp.recv_buffer = a.recv_buffer;
        tcp.nagle = !a.nodelay;
        a.recovery.apply(tcp);
        tcp.validate().map_err(|e| format!("TCP settings: {e}"))?;
    }
    spec.reader_rate = a
        .reader_bytes_per_ms
        .map(|b| (b.max(1), Duration::from_millis(1)));
    let wall = std::time::Instant::now();
    let r = run_transfer(&spec)?;
    println!(
        "transferred {} bytes x {} connections, integrity OK (sha256 {})",
        r.bytes,
        spec.connections,
        r.digest
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    println!("congestion control {}", a.recovery.describe());
    println!(
        "virtual time {:.3} s, goodput {:.1} Mbit/s; simulated in {:.2} s wall",
        r.elapsed.as_secs_f64(),
        r.goodput_bps(spec.connections) / 1e6,
        wall.elapsed().as_secs_f64()
    );
    let c = &r.client;
    println!(
        "sender: {} segments, {} retransmits ({} fast, {} RTO), {} dup ACKs received",
        c.segs_out, c.retransmits, c.fast_retransmits, c.rto_timeouts, c.dup_acks_received
    );
    let s = &r.server;
    println!(
        "receiver: {} segments in, {} out of order, {} ACKs sent",
        s.segs_in, s.out_of_order, s.acks_sent
    );
    let f = &r.forward_link;
    println!(
        "forward link: {} offered, {} delivered, {} lost, {} burst-lost, {} queue drops, {} reordered, {} duplicated, {} corrupted",
        f.offered, f.delivered, f.dropped_random, f.dropped_burst, f.dropped_queue, f.reordered, f.duplicated, f.corrupted
    );
    println!(
        "receiver stack: {} bad checksums dropped, {} malformed dropped",
        r.server_stack.rx_bad_checksum, r.server_stack.rx_malformed
    );
    Ok(())
}
