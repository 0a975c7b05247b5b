//! Reusable simulator scenarios with byte-stream integrity checks.
//!
//! [`run_transfer`] opens N connections from a client host to a server
//! host, pushes a seeded pseudo-random byte stream through each, and checks
//! that the SHA-256 of everything the receiver read equals that of
//! everything the sender wrote (exactly once, in order), that both sides
//! saw a clean close, and that it all happened within a virtual time limit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::sim::link::{Impairments, LinkStats};
use crate::sim::network::Network;
use crate::tcp::{
    CloseReason, ConnId, ConnStats, Event, Instant, StackConfig, StackStats, TcpConfig, TcpError,
};
use crate::wire::{parse_tcp_frame, MacAddr, SeqNum};

/// Addresses from the benchmarking range (RFC 2544), as every test uses.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const SERVER_PORT: u16 = 5001;

/// What to transfer and over what kind of path.
#[derive(Debug, Clone)]
pub struct TransferSpec {
    /// Bytes per connection, client to server.
    pub bytes: usize,
    pub connections: usize,
    pub seed: u64,
    /// Impairments on client → server and server → client.
    pub forward: Impairments,
    pub reverse: Impairments,
    pub client_tcp: TcpConfig,
    pub server_tcp: TcpConfig,
    /// Slow reader: the server reads at most this many bytes per period.
    pub reader_rate: Option<(usize, Duration)>,
    /// Virtual-time budget; exceeding it fails the run.
    pub time_limit: Duration,
    /// Print every delivered segment (see [`Network::trace`]).
    pub trace: bool,
    /// Drop the first transmission of the client's data segment that starts
    /// at each of these stream offsets (bytes from the start of the data),
    /// on connection 0.
    pub drop_client_data_at: Vec<usize>,
}

impl TransferSpec {
    pub fn new(bytes: usize, seed: u64) -> TransferSpec {
        let delay = Impairments {
            delay: Duration::from_millis(1),
            ..Impairments::default()
        };
        TransferSpec {
            bytes,
            connections: 1,
            seed,
            forward: delay.clone(),
            reverse: delay,
            client_tcp: TcpConfig::default(),
            server_tcp: TcpConfig::default(),
            reader_rate: None,
            time_limit: Duration::from_secs(3600),
            trace: false,
            drop_client_data_at: Vec::new(),
        }
    }
}

/// What a successful transfer measured.
#[derive(Debug, Clone)]
pub struct TransferReport {
    /// Virtual time from start until every connection closed on both sides.
    pub elapsed: Duration,
    pub bytes: usize,
    pub client: ConnStats,
    pub server: ConnStats,
    pub client_stack: StackStats,
    pub server_stack: StackStats,
    pub forward_link: LinkStats,
    pub reverse_link: LinkStats,
    pub digest: [u8; 32],
    /// Client data segments of connection 0: the most times any one
    /// segment (by starting offset) was sent.
    pub max_sends_of_a_segment: u32,
    /// For each offset in [`TransferSpec::drop_client_data_at`], the times
    /// that segment was sent (the first one dropped).
    pub sends_of_dropped: Vec<(usize, Vec<Instant>)>,
}

impl TransferReport {
    /// Goodput in bits per second of virtual time.
    pub fn goodput_bps(&self, connections: usize) -> f64 {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        (self.bytes * connections) as f64 * 8.0 / secs
    }
}

struct Sender {
    id: ConnId,
    rng: ChaCha8Rng,
    hash: Sha256,
    chunk: Vec<u8>,
    chunk_off: usize,
    written: usize,
    connected: bool,
    shut: bool,
    eof: bool,
    closed: bool,
}

struct Receiver {
    id: ConnId,
    hash: Sha256,
    read: usize,
    eof: bool,
    closed: bool,
}

/// Sums the counters of `b` into `a` (gauges take the maximum). The
/// destructuring is exhaustive so a new `ConnStats` field cannot be missed.
fn add(a: &mut ConnStats, b: &ConnStats) {
    let ConnStats {
        segs_in,
        segs_out,
        bytes_received,
        bytes_acked,
        retransmits,
        fast_retransmits,
        rto_timeouts,
        dup_acks_received,
        out_of_window,
        out_of_order,
        zero_window_probes,
        zero_windows_received,
        keepalive_probes,
        acks_sent,
        sack_blocks_received,
        dsacks_received,
        spurious_retransmits,
        congestion_undos,
        recoveries,
        lost_segments,
        tlp_probes,
        tlp_repairs,
        sack_reneging,
        data_segs_in,
        delayed_acks,
        dsacks_sent,
        paws_rejected,
        missing_timestamps,
        recv_buffer_grown,
        recv_buffer_peak,
    } = *b;
    a.segs_in += segs_in;
    a.segs_out += segs_out;
    a.bytes_received += bytes_received;
    a.bytes_acked += bytes_acked;
    a.retransmits += retransmits;
    a.fast_retransmits += fast_retransmits;
    a.rto_timeouts += rto_timeouts;
    a.dup_acks_received += dup_acks_received;
    a.out_of_window += out_of_window;
    a.out_of_order += out_of_order;
    a.zero_window_probes += zero_window_probes;
    a.zero_windows_received += zero_windows_received;
    a.keepalive_probes += keepalive_probes;
    a.acks_sent += acks_sent;
    a.sack_blocks_received += sack_blocks_received;
    a.dsacks_received += dsacks_received;
    a.spurious_retransmits += spurious_retransmits;
    a.congestion_undos += congestion_undos;
    a.recoveries += recoveries;
    a.lost_segments += lost_segments;
    a.tlp_probes += tlp_probes;
    a.tlp_repairs += tlp_repairs;
    a.sack_reneging += sack_reneging;
    a.data_segs_in += data_segs_in;
    a.delayed_acks += delayed_acks;
    a.dsacks_sent += dsacks_sent;
    a.paws_rejected += paws_rejected;
    a.missing_timestamps += missing_timestamps;
    a.recv_buffer_grown += recv_buffer_grown;
    a.recv_buffer_peak = a.recv_buffer_peak.max(recv_buffer_peak);
}

fn entropy(seed: u64, host: u8) -> [u8; 32] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (host as u64) << 56);
    let mut e = [0u8; 32];
    rng.fill_bytes(&mut e);
    e
}

/// Runs the transfer; `Err` names what failed and the seed that replays it.
pub fn run_transfer(spec: &TransferSpec) -> Result<TransferReport, String> {
    let fail = |what: String| format!("seed {}: {}", spec.seed, what);
    let start = Instant::from_secs(1);
    let mut net = Network::new(start);
    net.trace = spec.trace;
    let client_cfg = StackConfig {
        mac: MacAddr([0x02, 0, 0, 0, 0, 0x01]),
        tcp: spec.client_tcp.clone(),
        ..StackConfig::default()
    };
    let server_cfg = StackConfig {
        mac: MacAddr([0x02, 0, 0, 0, 0, 0x02]),
        tcp: spec.server_tcp.clone(),
        ..StackConfig::default()
    };
    let client = net.add_host(CLIENT_IP, client_cfg, entropy(spec.seed, 1))?;
    let server = net.add_host(SERVER_IP, server_cfg, entropy(spec.seed, 2))?;
    net.connect(
        client,
        server,
        spec.forward.clone(),
        spec.reverse.clone(),
        spec.seed,
    );
    let log = Rc::new(RefCell::new(SegmentLog::default()));
    net.filter = Some(segment_filter(
        client.0,
        spec.drop_client_data_at.clone(),
        log.clone(),
    ));
    let server_addr = SocketAddrV4::new(SERVER_IP, SERVER_PORT);
    let listener = net
        .stack(server)
        .listen(server_addr, spec.connections.max(16))
        .map_err(|e| fail(format!("listen: {e}")))?;
    let server_mac = net.host(server).mac;

    let mut senders = Vec::with_capacity(spec.connections);
    for i in 0..spec.connections {
        let id = net
            .stack(client)
            .connect(
                start,
                SocketAddrV4::new(CLIENT_IP, 0),
                server_addr,
                server_mac,
            )
            .map_err(|e| fail(format!("connect: {e}")))?;
        senders.push(Sender {
            id,
            rng: ChaCha8Rng::seed_from_u64(spec.seed.wrapping_mul(31).wrapping_add(i as u64)),
            hash: Sha256::new(),
            chunk: vec![0; 16 * 1024],
            chunk_off: 16 * 1024,
            written: 0,
            connected: false,
            shut: false,
            eof: false,
            closed: false,
        });
    }
    let mut receivers: Vec<Receiver> = Vec::with_capacity(spec.connections);
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = start + spec.time_limit;
    let mut next_read_slot = start;
    let mut client_stats = ConnStats::default();
    let mut server_stats = ConnStats::default();

    loop {
        let now = net.now();
        // Client side: events, writes, end of stream.
        while let Some(ev) = net.stack(client).next_event() {
            match ev {
                Event::Connected(id) => {
                    if let Some(s) = senders.iter_mut().find(|s| s.id == id) {
                        s.connected = true;
                    }
                }
                Event::Closed { conn, reason } => {
                    // A normal close (TIME-WAIT) may be reported before the
                    // application has read the end of stream; anything else fails.
                    let s = senders.iter().find(|s| s.id == conn);
                    if reason != CloseReason::Normal && s.is_some_and(|s| !s.eof) {
                        return Err(fail(format!("client connection closed early: {reason:?}")));
                    }
                }
                _ => {}
            }
        }
        for s in senders.iter_mut().filter(|s| s.connected && !s.closed) {
            let stack = net.stack(client);
            while s.written < spec.bytes {
                if s.chunk_off == s.chunk.len() {
                    s.rng.fill_bytes(&mut s.chunk);
                    s.chunk_off = 0;
                }
                let want = (spec.bytes - s.written).min(s.chunk.len() - s.chunk_off);
                let piece = &s.chunk[s.chunk_off..s.chunk_off + want];
                match stack.send(s.id, piece) {
                    Ok(n) => {
                        s.hash.update(&piece[..n]);
                        s.chunk_off += n;
                        s.written += n;
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => return Err(fail(format!("client send: {e}"))),
                }
            }
            if s.written == spec.bytes && !s.shut {
                stack
                    .shutdown_write(s.id)
                    .map_err(|e| fail(format!("shutdown: {e}")))?;
                s.shut = true;
            }
            if s.shut && !s.eof {
                match stack.recv(s.id, &mut buf) {
                    Ok(0) => s.eof = true,
                    Ok(n) => return Err(fail(format!("client got {n} unexpected bytes"))),
                    Err(TcpError::WouldBlock) => {}
                    Err(e) => return Err(fail(format!("client recv: {e}"))),
                }
            }
            if s.eof && !s.closed {
                add(
                    &mut client_stats,
                    &stack.info(s.id).map_err(|e| fail(e.to_string()))?.stats,
                );
                stack
                    .close(s.id)
                    .map_err(|e| fail(format!("client close: {e}")))?;
                s.closed = true;
            }
        }

        // Server side: accept, read (possibly rate-limited), close on EOF.
        while let Some(ev) = net.stack(server).next_event() {
            if let Event::Closed { conn, reason } = ev {
                if reason != CloseReason::Normal && receivers.iter().any(|r| r.id == conn && !r.eof)
                {
                    return Err(fail(format!("server connection closed early: {reason:?}")));
                }
            }
        }
        while let Ok(id) = net.stack(server).accept(listener) {
            receivers.push(Receiver {
                id,
                hash: Sha256::new(),
                read: 0,
                eof: false,
                closed: false,
            });
        }
        let mut budget = match spec.reader_rate {
            Some((bytes, period)) => {
                if now >= next_read_slot {
                    next_read_slot = now + period;
                    bytes
                } else {
                    0
                }
            }
            None => usize::MAX,
        };
        for r in receivers.iter_mut().filter(|r| !r.closed) {
            let stack = net.stack(server);
            while !r.eof && budget > 0 {
                let cap = buf.len().min(budget);
                match stack.recv(r.id, &mut buf[..cap]) {
                    Ok(0) => r.eof = true,
                    Ok(n) => {
                        r.hash.update(&buf[..n]);
                        r.read += n;
                        if spec.reader_rate.is_some() {
                            budget -= n;
                        }
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => return Err(fail(format!("server recv: {e}"))),
                }
            }
            if r.eof {
                add(
                    &mut server_stats,
                    &stack.info(r.id).map_err(|e| fail(e.to_string()))?.stats,
                );
                stack
                    .close(r.id)
                    .map_err(|e| fail(format!("server close: {e}")))?;
                r.closed = true;
            }
        }

        let done = receivers.len() == spec.connections
            && receivers.iter().all(|r| r.closed)
            && senders.iter().all(|s| s.closed);
        if done {
            break;
        }
        let app_wake = spec.reader_rate.map(|_| next_read_slot);
        let next = match (net.next_event_time(), app_wake) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a
                .or(b)
                .ok_or_else(|| fail("stalled: nothing scheduled".into()))?,
        };
        if next > deadline {
            let progress: Vec<usize> = receivers.iter().map(|r| r.read).collect();
            return Err(fail(format!(
                "time limit {:?} exceeded; bytes read per connection: {progress:?}",
                spec.time_limit
            )));
        }
        net.advance_to(next);
    }

    let finished = net.now();
    // Integrity: every stream byte-identical, exactly once, in order.
    let mut digest = [0u8; 32];
    for r in receivers.iter() {
        if r.read != spec.bytes {
            return Err(fail(format!(
                "receiver read {} of {} bytes",
                r.read, spec.bytes
            )));
        }
    }
    let mut sent: Vec<[u8; 32]> = senders
        .into_iter()
        .map(|s| s.hash.finalize().into())
        .collect();
    let mut got: Vec<[u8; 32]> = receivers
        .into_iter()
        .map(|r| r.hash.finalize().into())
        .collect();
    sent.sort_unstable();
    got.sort_unstable();
    if sent != got {
        return Err(fail(
            "SHA-256 of received bytes differs from sent bytes".into(),
        ));
    }
    if let Some(d) = got.first() {
        digest = *d;
    }
    // Let TIME-WAIT and the last ACKs drain so both stacks end empty.
    let settle = net.now() + Duration::from_secs(130);
    while let Some(t) = net.next_event_time() {
        if t > settle {
            break;
        }
        net.advance_to(t);
    }
    for (name, host) in [("client", client), ("server", server)] {
        let left = net.stack(host).connection_count();
        if left != 0 {
            return Err(fail(format!(
                "{name} still holds {left} connections after TIME-WAIT"
            )));
        }
    }
    let log = log.borrow();
    Ok(TransferReport {
        elapsed: finished.saturating_since(start),
        bytes: spec.bytes,
        client: client_stats,
        server: server_stats,
        client_stack: net.stack(client).totals(),
        server_stack: net.stack(server).totals(),
        forward_link: net.link_stats(client, server).unwrap_or_default(),
        reverse_link: net.link_stats(server, client).unwrap_or_default(),
        digest,
        max_sends_of_a_segment: log
            .sends
            .values()
            .map(|v| v.len() as u32)
            .max()
            .unwrap_or(0),
        sends_of_dropped: spec
            .drop_client_data_at
            .iter()
            .map(|&o| (o, log.sends.get(&o).cloned().unwrap_or_default()))
            .collect(),
    })
}

/// What [`segment_filter`] saw of connection 0's client data segments.
#[derive(Default)]
struct SegmentLog {
    /// The client's port and ISN, from its first SYN.
    isn: Option<(u16, SeqNum)>,
    /// Send times of each data segment, by stream offset.
    sends: HashMap<usize, Vec<Instant>>,
}

/// Logs the client's data segments of its first connection and drops the
/// first transmission of those starting at `drop_at`.
fn segment_filter(
    client: usize,
    drop_at: Vec<usize>,
    log: Rc<RefCell<SegmentLog>>,
) -> crate::sim::network::FrameFilter {
    Box::new(move |now, from, _to, frame| {
        if from != client {
            return false;
        }
        let Ok(f) = parse_tcp_frame(frame, false) else {
            return false;
        };
        let mut log = log.borrow_mut();
        if f.tcp.flags.syn() && !f.tcp.flags.ack() {
            if log.isn.is_none() {
                log.isn = Some((f.tcp.src_port, f.tcp.seq));
            }
            return false;
        }
        let Some((port, isn)) = log.isn else {
            return false;
        };
        if f.tcp.src_port != port || f.payload.is_empty() || f.tcp.seq < isn + 1 {
            return false;
        }
        let offset = f.tcp.seq.since(isn + 1);
        let sends = log.sends.entry(offset).or_default();
        sends.push(now);
        sends.len() == 1 && drop_at.contains(&offset)
    })
}
