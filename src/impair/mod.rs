//! The impairment relay behind `xdp-tcp impair`: a link emulator for
//! kernels without netem.
//!
//! It bridges two interfaces at layer 2 (AF_PACKET sockets, both
//! interfaces promiscuous, see [`crate::xdp::PacketSocket`]) and sends
//! every IP frame through the simulator's own impairment model,
//! [`crate::sim::Link`], one instance per direction: what the simulator
//! does to a frame, the relay does to a real one. Time is the runtime's
//! monotonic [`Clock`] mapped onto the model's [`Instant`]; the model
//! itself stays pure and deterministic (the simulator keeps using it on
//! virtual time).
//!
//! ```text
//!   A ──recvmmsg──► Link a→b (seed·2)   ──at delivery time──sendmmsg──► B
//!   A ◄─sendmmsg─── Link b→a (seed·2+1) ◄──────────────────recvmmsg──── B
//! ```
//!
//! One thread per direction: it drains its input socket in batches, offers
//! each frame to its `Link`, writes out whatever is due, and sleeps in
//! `ppoll` until the next frame arrives or the next delivery is due.
//! Buffers circulate between the batch, the model's pool and the output
//! slots, so the steady state does not allocate.
//!
//! Only IPv4 and IPv6 frames are impaired. Everything else (ARP, LLDP, ...)
//! is forwarded at once, unimpaired, so neighbour resolution keeps
//! working even at 100 % loss; those frames are counted as
//! `passed_unimpaired`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::Clock;
use crate::sim::{Impairments, Link, LinkStats};
use crate::tcp::Instant;
use crate::xdp::packet::MAX_BATCH;
use crate::xdp::{wait_readable, PacketSocket, RecvBatch};

/// Longest sleep without looking at the stop flag.
const MAX_SLEEP: Duration = Duration::from_millis(20);
/// Receive batches drained per loop iteration before writing out what is
/// due, so a flood on the input cannot delay deliveries.
const RX_ROUNDS: usize = 8;
/// Kernel receive buffer of each socket: room for bursts while the relay
/// is busy writing.
const SOCKET_RCVBUF: usize = 8 << 20;
/// Room in a receive slot beyond the MTU: Ethernet header and a VLAN tag.
const L2_OVERHEAD: usize = 18;

/// What to relay and how.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// First interface (`--a`).
    pub a: String,
    /// Second interface (`--b`).
    pub b: String,
    /// Applied in each direction, by independent instances of the model.
    pub impairments: Impairments,
    /// Seed of the model's randomness: direction a→b uses `seed·2`, b→a
    /// `seed·2+1`, so the same seed replays the same decisions for the
    /// same sequence of frames.
    pub seed: u64,
}

/// One direction's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DirectionStats {
    /// The model's decisions on the impaired (IP) frames.
    pub link: LinkStats,
    /// Non-IP frames forwarded without impairment.
    pub passed_unimpaired: u64,
    /// Frames larger than the receive slot (GRO/LRO on the interface, or an
    /// MTU change after start): dropped.
    pub oversize: u64,
    /// Frames the kernel dropped because the relay did not read fast
    /// enough (socket receive buffer full).
    pub socket_drops: u64,
    /// Frames the output interface refused (e.g. it is down).
    pub tx_errors: u64,
    /// Frames still scheduled when the relay stopped (not delivered).
    pub pending_at_exit: u64,
}

/// What a finished relay did, per direction.
#[derive(Debug, Clone)]
pub struct RelayReport {
    pub a_to_b: DirectionStats,
    pub b_to_a: DirectionStats,
}

/// An opened relay: both sockets bound, both interfaces promiscuous.
pub struct Relay {
    config: RelayConfig,
    a: Arc<PacketSocket>,
    b: Arc<PacketSocket>,
    slot_size: usize,
}

fn mtu(iface: &str) -> usize {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/mtu"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1500)
}

/// Whether the frame carries IPv4 or IPv6 (after at most one VLAN tag).
fn is_ip(frame: &[u8]) -> bool {
    let ethertype = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    match ethertype(12) {
        Some(0x0800 | 0x86DD) => true,
        Some(0x8100 | 0x88A8) => matches!(ethertype(16), Some(0x0800 | 0x86DD)),
        _ => false,
    }
}

impl Relay {
    /// Opens both interfaces. Errors say what to fix.
    pub fn open(config: RelayConfig) -> Result<Relay, String> {
        if config.a == config.b {
            return Err(format!(
                "--a and --b are both '{}': give two different interfaces",
                config.a
            ));
        }
        let open = |flag: &str, iface: &str| {
            PacketSocket::open(iface, SOCKET_RCVBUF).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "{flag} {iface}: no such interface in this network namespace (check `ip link`)"
                ),
                std::io::ErrorKind::PermissionDenied => format!(
                    "{flag} {iface}: raw sockets need root or CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode): {e}"
                ),
                _ => format!("{flag} {iface}: cannot open a raw socket: {e}"),
            })
        };
        let a = Arc::new(open("--a", &config.a)?);
        let b = Arc::new(open("--b", &config.b)?);
        let slot_size = mtu(&config.a).max(mtu(&config.b)).max(1500) + L2_OVERHEAD;
        Ok(Relay {
            config,
            a,
            b,
            slot_size,
        })
    }

    /// Relays until `stop` becomes true, then reports. Frames still in the
    /// model at that point are not delivered (counted as pending).
    pub fn run(self, stop: Arc<AtomicBool>) -> Result<RelayReport, String> {
        let clock = Clock::new();
        let seed = self.config.seed.wrapping_mul(2);
        let forward = Direction::new(
            self.a.clone(),
            self.b.clone(),
            Link::new(self.config.impairments.clone(), seed),
            self.slot_size,
        );
        let backward = Direction::new(
            self.b.clone(),
            self.a.clone(),
            Link::new(self.config.impairments.clone(), seed.wrapping_add(1)),
            self.slot_size,
        );
        let spawn = |name: &str, dir: Direction| {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || dir.run(clock, &stop))
                .map_err(|e| format!("cannot start a relay thread: {e}"))
        };
        let ab = spawn("impair-a2b", forward)?;
        let ba = match spawn("impair-b2a", backward) {
            Ok(t) => t,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                let _ = ab.join();
                return Err(e);
            }
        };
        let join = |t: std::thread::JoinHandle<std::io::Result<DirectionStats>>| {
            t.join()
                .map_err(|_| "a relay thread panicked".to_owned())?
                .map_err(|e| format!("relay I/O failed: {e}"))
        };
        let a_to_b = join(ab);
        // Stop the other direction too if one failed.
        stop.store(true, Ordering::Relaxed);
        let b_to_a = join(ba);
        Ok(RelayReport {
            a_to_b: a_to_b?,
            b_to_a: b_to_a?,
        })
    }
}

/// One direction: frames read on `input` go through `link` and out on
/// `output`.
struct Direction {
    input: Arc<PacketSocket>,
    output: Arc<PacketSocket>,
    link: Link,
    batch: RecvBatch,
    /// Output slots: frames due now, swapped out of the model (whose pool
    /// takes the slot's previous buffer), then sent in one batch.
    due: Vec<Vec<u8>>,
    stats: DirectionStats,
}

impl Direction {
    fn new(
        input: Arc<PacketSocket>,
        output: Arc<PacketSocket>,
        link: Link,
        slot_size: usize,
    ) -> Direction {
        Direction {
            input,
            output,
            link,
            batch: RecvBatch::new(MAX_BATCH, slot_size),
            due: (0..MAX_BATCH)
                .map(|_| Vec::with_capacity(slot_size))
                .collect(),
            stats: DirectionStats::default(),
        }
    }

    fn run(mut self, clock: Clock, stop: &AtomicBool) -> std::io::Result<DirectionStats> {
        while !stop.load(Ordering::Relaxed) {
            let received = self.receive(clock.now())?;
            self.deliver(clock.now());
            if received > 0 {
                continue;
            }
            let now = clock.now();
            let sleep = match self.link.next_delivery() {
                Some(at) if at <= now => continue,
                Some(at) => (at - now).min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            wait_readable(&[&self.input], sleep)?;
        }
        self.stats.link = self.link.stats();
        self.stats.pending_at_exit = self.link.in_flight() as u64;
        self.stats.socket_drops += self.input.take_drops().unwrap_or(0);
        Ok(self.stats)
    }

    /// Drains up to [`RX_ROUNDS`] batches from the input into the model;
    /// returns how many frames arrived.
    fn receive(&mut self, now: Instant) -> std::io::Result<usize> {
        let mut total = 0;
        for _ in 0..RX_ROUNDS {
            let outcome = self.input.recv_batch(&mut self.batch)?;
            self.stats.oversize += outcome.oversize;
            total += outcome.frames + outcome.oversize as usize + outcome.outgoing as usize;
            for frame in self.batch.iter() {
                if is_ip(frame) {
                    self.link.send(now, frame);
                } else {
                    let (_, failed) = self.output.send_batch(&[frame]);
                    self.stats.tx_errors += failed;
                    self.stats.passed_unimpaired += 1;
                }
            }
            if outcome.frames < MAX_BATCH {
                break;
            }
        }
        Ok(total)
    }

    /// Writes out every frame due at `now`, in batches.
    fn deliver(&mut self, now: Instant) {
        loop {
            let mut n = 0;
            while n < self.due.len() && self.link.deliver(now, &mut self.due[n]) {
                n += 1;
            }
            if n == 0 {
                return;
            }
            let (_, failed) = self.output.send_batch(&self.due[..n]);
            self.stats.tx_errors += failed;
            if n < self.due.len() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ethertype: u16, inner: Option<u16>) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        if let Some(t) = inner {
            f.extend_from_slice(&[0, 1]);
            f.extend_from_slice(&t.to_be_bytes());
        }
        f.extend_from_slice(&[0x45; 20]);
        f
    }

    #[test]
    fn ip_frames_are_impaired_and_others_pass() {
        assert!(is_ip(&frame(0x0800, None)));
        assert!(is_ip(&frame(0x86DD, None)));
        assert!(is_ip(&frame(0x8100, Some(0x0800))));
        assert!(!is_ip(&frame(0x0806, None)), "ARP passes");
        assert!(!is_ip(&frame(0x8100, Some(0x0806))), "tagged ARP passes");
        assert!(!is_ip(&frame(0x88CC, None)), "LLDP passes");
        assert!(!is_ip(&[0u8; 13]), "a runt is not IP");
        assert!(!is_ip(&[]));
    }
}
