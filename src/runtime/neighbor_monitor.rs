//! The neighbour monitor: a control-side thread that keeps the workers'
//! next hops true to the kernel's neighbour table.
//!
//! Workers make no syscalls, so they cannot notice that a next hop
//! changed its MAC (a host replaced, a failover without a virtual MAC).
//! Every [`NeighborConfig::check_interval`] this thread reads the
//! kernel's table once (netlink, [`neighbor::kernel_neighbors`]) and:
//!
//! * feeds it to the [`NextHopCache`] of active opens, whose
//!   [`NeighborTable`](crate::runtime::neighbor_table::NeighborTable)
//!   decides which next hops are stale (then the kernel is made to verify
//!   them, [`neighbor::nudge`]), which changed MAC and which stopped
//!   answering (RFC 1122 §2.3.2.1, RFC 4861 §7.3), and forgets those no
//!   connect used lately (they fall back to the passive comparison
//!   below while the kernel keeps them);
//! * compares every other entry with the previous round: a next hop of
//!   passive connections whose MAC the kernel replaced (the new host's
//!   ARP request or gratuitous ARP, RFC 826's merge / RFC 5227 §2.4
//!   announcements) is a change too, and so is one the kernel newly
//!   learnt (a peer that had our MAC cached only ARPs for us once its
//!   own changed and flushed its table);
//! * sends each change to every worker ([`Command::NextHop`]), which
//!   re-points the connections sending to the old MAC through that next
//!   hop ([`Stack::update_next_hop`](crate::tcp::Stack::update_next_hop)).
//!
//! Passive connections keep replying to the MAC their SYN came from (the
//! worker cannot ask the kernel) and follow the kernel's table when it
//! changes, rather than the source MAC of later segments: the Ethernet
//! source is not authenticated by anything TCP checks, and with
//! asymmetric paths (ECMP, two routers) the router a segment came through
//! is not the one the route table sends replies to. Linux likewise
//! replies through the neighbour table. They are not probed: the kernel
//! learns a replaced peer's MAC when it ARPs for us.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{bounded, RecvTimeoutError, Sender};

use crate::runtime::active_open::{NextHopCache, NextHopUpdate, Revalidation};
use crate::runtime::neighbor::{self, KernelNeighbor, Routes};
use crate::runtime::neighbor_table::{NeighborConfig, NextHopChange};
use crate::runtime::worker::Command;
use crate::wire::MacAddr;

/// What the monitor has done, for tests and stats.
#[derive(Debug, Default)]
pub struct MonitorCounters {
    pub rounds: AtomicU64,
    /// Next-hop changes sent to the workers (MAC changes, unreachable,
    /// reachable again).
    pub changes: AtomicU64,
    /// Rounds whose kernel table could not be read.
    pub read_errors: AtomicU64,
    /// Verifications asked of the kernel ([`neighbor::nudge`]).
    pub nudges: AtomicU64,
    /// Next hops of active opens forgotten for going unused
    /// ([`NeighborConfig::unused_time`]).
    pub forgotten: AtomicU64,
}

/// A running monitor; [`stop`](Self::stop) (or dropping it) ends it.
pub struct NeighborMonitor {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<MonitorCounters>,
}

impl NeighborMonitor {
    /// Starts the monitor for interface `iface` (`ifindex`) in the calling
    /// thread's network namespace. `cache` holds the next hops of active
    /// opens (None: only passive next hops are followed); `workers` get
    /// the changes.
    pub fn spawn(
        iface: &str,
        ifindex: u32,
        cache: Option<Arc<NextHopCache>>,
        workers: Vec<Sender<Command>>,
        config: NeighborConfig,
    ) -> std::io::Result<NeighborMonitor> {
        let (stop, stopped) = bounded::<()>(1);
        let counters = Arc::new(MonitorCounters::default());
        let mut round = Round {
            iface: iface.to_owned(),
            ifindex,
            cache,
            workers,
            last_seen: None,
            counters: counters.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("xdp-tcp-neigh".into())
            .spawn(move || loop {
                round.run(Instant::now());
                match stopped.recv_timeout(config.check_interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            })?;
        Ok(NeighborMonitor {
            stop: Some(stop),
            thread: Some(thread),
            counters,
        })
    }

    pub fn counters(&self) -> &MonitorCounters {
        &self.counters
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NeighborMonitor {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Round {
    iface: String,
    ifindex: u32,
    cache: Option<Arc<NextHopCache>>,
    workers: Vec<Sender<Command>>,
    /// Usable kernel entries of the previous round (None before the first).
    last_seen: Option<HashMap<Ipv4Addr, MacAddr>>,
    counters: Arc<MonitorCounters>,
}

impl Round {
    fn run(&mut self, now: Instant) {
        self.counters.rounds.fetch_add(1, Ordering::Relaxed);
        let kernel = match neighbor::kernel_neighbors(self.ifindex) {
            Ok(k) => k,
            Err(_) => {
                self.counters.read_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let routes = Arc::new(Routes::read(&self.iface));
        let round = match &self.cache {
            Some(cache) => cache.revalidate(now, &kernel, routes.clone()),
            None => Revalidation::default(),
        };
        let Revalidation {
            mut changes,
            nudges,
            forgotten,
        } = round;
        self.counters
            .forgotten
            .fetch_add(forgotten as u64, Ordering::Relaxed);
        let cache = self.cache.as_deref();
        changes.extend(passive_changes(self.last_seen.as_ref(), &kernel, |hop| {
            cache.is_some_and(|c| c.tracks(hop))
        }));
        self.last_seen = Some(usable(&kernel));
        for change in changes {
            self.counters.changes.fetch_add(1, Ordering::Relaxed);
            let update = Arc::new(NextHopUpdate {
                change,
                routes: routes.clone(),
            });
            for w in &self.workers {
                let _ = w.send(Command::NextHop(update.clone()));
            }
        }
        for hop in nudges {
            self.counters.nudges.fetch_add(1, Ordering::Relaxed);
            neighbor::nudge(hop);
        }
    }
}

fn usable(kernel: &[KernelNeighbor]) -> HashMap<Ipv4Addr, MacAddr> {
    kernel
        .iter()
        .filter(|k| k.is_usable())
        .filter_map(|k| Some((k.ip, k.mac?)))
        .collect()
}

/// Entries not tracked by the cache whose MAC the kernel replaced since
/// the previous round (`previous`; None: the first round, nothing to
/// compare), or that it learnt since: a peer that had our MAC cached
/// needs no ARP until it changes its own, so the kernel may first hear
/// of it with the new MAC; then every connection through it follows the
/// kernel's table (`old` None), as Linux's replies would.
fn passive_changes(
    previous: Option<&HashMap<Ipv4Addr, MacAddr>>,
    kernel: &[KernelNeighbor],
    tracked: impl Fn(Ipv4Addr) -> bool,
) -> Vec<NextHopChange> {
    let Some(previous) = previous else {
        return Vec::new();
    };
    usable(kernel)
        .into_iter()
        .filter_map(|(ip, mac)| {
            let old = previous.get(&ip).copied();
            (old != Some(mac) && !tracked(ip)).then_some(NextHopChange {
                hop: ip,
                old,
                new: Some(mac),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::neighbor::nud;

    fn entry(ip: [u8; 4], state: u16, mac: u8) -> KernelNeighbor {
        KernelNeighbor {
            ip: Ipv4Addr::from(ip),
            ifindex: 1,
            state,
            mac: Some(MacAddr([2, 0, 0, 0, 0, mac])),
            confirmed_ago: None,
        }
    }

    #[test]
    fn untracked_entries_whose_mac_the_kernel_replaced_are_changes() {
        let before = vec![
            entry([198, 18, 0, 1], nud::REACHABLE, 1),
            entry([198, 18, 0, 2], nud::STALE, 2),
            entry([198, 18, 0, 3], nud::STALE, 3),
        ];
        let after = vec![
            entry([198, 18, 0, 1], nud::STALE, 9),
            entry([198, 18, 0, 2], nud::STALE, 2),
            entry([198, 18, 0, 3], nud::STALE, 8),
            entry([198, 18, 0, 4], nud::REACHABLE, 4),
            entry([198, 18, 0, 5], nud::FAILED, 5),
        ];
        assert!(passive_changes(None, &after, |_| false).is_empty());
        let seen = usable(&before);
        let tracked = Ipv4Addr::new(198, 18, 0, 3);
        let mut changes = passive_changes(Some(&seen), &after, |ip| ip == tracked);
        changes.sort_by_key(|c| c.hop);
        assert_eq!(
            changes,
            vec![
                NextHopChange {
                    hop: Ipv4Addr::new(198, 18, 0, 1),
                    old: Some(MacAddr([2, 0, 0, 0, 0, 1])),
                    new: Some(MacAddr([2, 0, 0, 0, 0, 9])),
                },
                // Newly learnt: every connection through it follows.
                NextHopChange {
                    hop: Ipv4Addr::new(198, 18, 0, 4),
                    old: None,
                    new: Some(MacAddr([2, 0, 0, 0, 0, 4])),
                },
            ]
        );
        // A FAILED entry keeps no MAC to compare.
        assert!(!usable(&after).contains_key(&Ipv4Addr::new(198, 18, 0, 5)));
    }
}
