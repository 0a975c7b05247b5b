//! The runtime's own view of its next hops: how long a resolved MAC is
//! trusted, when it must be verified again, and when a next hop that no
//! longer answers stops taking new connections.
//!
//! A pure state machine on a passed-in clock, fed with what the kernel's
//! neighbour table says ([`KernelNeighbor`], read by the control side).
//! It follows the neighbour unreachability detection of RFC 4861 §7.3
//! (the model Linux uses for ARP too), which RFC 1122 §2.3.2.1 asks of an
//! ARP cache ("a mechanism to prevent ARP flooding" and to "flush stale
//! entries"):
//!
//! * REACHABLE (§7.3.2): the kernel confirmed the MAC less than the
//!   entry's reachable time ago. The reachable time is
//!   [`NeighborConfig::base_reachable_time`] times a random factor in
//!   [0.5, 1.5), drawn per entry and again at every confirmation
//!   (§6.3.2), so entries learnt together do not expire together.
//! * STALE: older than that. Still used (§7.3.3: a stale entry is sent
//!   to, and sending starts verification), and observations ask for a
//!   nudge: the control side makes the kernel verify the entry (Linux:
//!   DELAY, then unicast probes, §7.3.3) until it confirms again. Not
//!   while the kernel verifies already (DELAY, PROBE, INCOMPLETE) or
//!   still holds it REACHABLE by its own clock, which would ignore the
//!   nudge: verification then starts when the kernel's reachable time
//!   (`net.ipv4.neigh.IFACE.base_reachable_time_ms`) runs out too.
//! * A new MAC from the kernel replaces the old one at once, confirmed or
//!   not (§7.2.5: an override advertisement updates the cached address;
//!   RFC 826's merge does the same for ARP): the result is a
//!   [`NextHopChange`] for the workers, which re-point their connections.
//! * When a stale entry cannot be verified (the kernel's entry FAILED,
//!   is INCOMPLETE or is gone) the last MAC is still used for
//!   [`NeighborConfig::failure_grace`]: a replacement host may take that
//!   long to answer, and connections opened meanwhile are re-pointed when
//!   it does. After the grace the next hop is unreachable: new connects
//!   fail with EHOSTUNREACH (as Linux's after a failed resolution) until
//!   the kernel resolves it again.
//! * Entries no connect has used for [`NeighborConfig::unused_time`] are
//!   forgotten (Linux's `gc_stale_time`, 60 s), and an unused entry is
//!   never verified: verifying next hops nobody sends to would be the
//!   ARP traffic RFC 1122 §2.3.2.1 asks a cache to avoid, forever, and
//!   the table would only grow. The next hops the runtime was started
//!   with are pinned (its workers connect through them without asking).
//!   An unreachable entry is kept, unverified, while the workers refuse
//!   it: forgetting it would leave them refusing a next hop the table no
//!   longer knows; it leaves once the kernel resolves it again and it
//!   then goes unused.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::runtime::neighbor::{nud, KernelNeighbor};
use crate::wire::MacAddr;

/// How long next hops are trusted and how they are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborConfig {
    /// A confirmed MAC is trusted for this long times a random factor in
    /// [0.5, 1.5) (RFC 4861 §6.3.2 BaseReachableTime; Linux
    /// `base_reachable_time_ms`, 30 s), then verified again.
    pub base_reachable_time: Duration,
    /// How long a next hop that failed verification keeps its last MAC
    /// before new connects to it fail with EHOSTUNREACH.
    pub failure_grace: Duration,
    /// How often the control side reads the kernel's table, to verify
    /// stale entries and notice changed MACs.
    pub check_interval: Duration,
    /// A next hop no connect has used for this long is no longer verified
    /// and is forgotten (Linux `gc_stale_time`, 60 s); the next connect
    /// through it resolves it again.
    pub unused_time: Duration,
}

impl Default for NeighborConfig {
    fn default() -> NeighborConfig {
        NeighborConfig {
            base_reachable_time: Duration::from_secs(30),
            failure_grace: Duration::from_secs(5),
            check_interval: Duration::from_secs(1),
            unused_time: Duration::from_secs(60),
        }
    }
}

impl NeighborConfig {
    /// Refuses settings that make no sense, saying what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.base_reachable_time < Duration::from_millis(10) {
            return Err(format!(
                "neighbour reachable time {:?} (--neighbor-reachable-ms) is too short: give at least 10 ms (Linux uses 30 s)",
                self.base_reachable_time
            ));
        }
        if self.check_interval.is_zero() || self.check_interval > self.base_reachable_time {
            return Err(format!(
                "neighbour check interval {:?} must be above 0 and at most the reachable time {:?}",
                self.check_interval, self.base_reachable_time
            ));
        }
        if self.unused_time < self.check_interval {
            return Err(format!(
                "neighbour unused time {:?} (--neighbor-unused-ms) is shorter than the check interval {:?}: give at least that (Linux forgets unused entries after 60 s)",
                self.unused_time, self.check_interval
            ));
        }
        Ok(())
    }
}

/// What a lookup of a next hop finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Confirmed within its reachable time.
    Reachable(MacAddr),
    /// Not confirmed lately (or failing, within the grace): use it, the
    /// control side is verifying it.
    Stale(MacAddr),
    /// Failed verification for longer than the grace.
    Unreachable,
    /// Never resolved.
    Unknown,
}

/// A next hop's MAC changed, or it became unreachable (`new` None), or
/// reachable again (`new == old`). Connections sending to `old` through
/// `hop` follow it; `old` None (a next hop the kernel newly learnt, whose
/// previous MAC nobody recorded): every connection through `hop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHopChange {
    pub hop: Ipv4Addr,
    pub old: Option<MacAddr>,
    pub new: Option<MacAddr>,
}

/// The result of one observation: what the workers must learn, and
/// whether the kernel should be made to verify the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observation {
    pub change: Option<NextHopChange>,
    pub nudge: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    mac: MacAddr,
    /// When the kernel last confirmed `mac`; None: never (learnt stale).
    confirmed: Option<Instant>,
    reachable_for: Duration,
    /// Since when verification has failed.
    failing_since: Option<Instant>,
    /// Workers were told it is unreachable.
    unreachable: bool,
    /// When a connect last went through it.
    last_used: Instant,
    /// A next hop the runtime was started with: never forgotten.
    pinned: bool,
}

/// The next hops in use and their state. See the module docs.
#[derive(Debug)]
pub struct NeighborTable {
    config: NeighborConfig,
    entries: HashMap<Ipv4Addr, Entry>,
    rng: ChaCha8Rng,
}

impl NeighborTable {
    /// An empty table; `seed` drives the reachable-time randomization.
    pub fn new(config: NeighborConfig, seed: u64) -> NeighborTable {
        NeighborTable {
            config,
            entries: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn config(&self) -> &NeighborConfig {
        &self.config
    }

    /// The next hops tracked.
    pub fn hops(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.entries.keys().copied()
    }

    pub fn contains(&self, hop: Ipv4Addr) -> bool {
        self.entries.contains_key(&hop)
    }

    /// RFC 4861 §6.3.2: uniformly between 0.5 and 1.5 times the base.
    fn reachable_time(&mut self) -> Duration {
        self.config
            .base_reachable_time
            .mul_f64(self.rng.gen_range(0.5..1.5))
    }

    fn is_reachable(e: &Entry, now: Instant) -> bool {
        e.confirmed
            .is_some_and(|t| now.saturating_duration_since(t) < e.reachable_for)
    }

    /// What `hop`'s entry says at `now`.
    pub fn lookup(&self, hop: Ipv4Addr, now: Instant) -> Lookup {
        let Some(e) = self.entries.get(&hop) else {
            return Lookup::Unknown;
        };
        if e.failing_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.config.failure_grace)
        {
            Lookup::Unreachable
        } else if Self::is_reachable(e, now) {
            Lookup::Reachable(e.mac)
        } else {
            Lookup::Stale(e.mac)
        }
    }

    /// [`lookup`](Self::lookup) for a connect through `hop`: the entry, if
    /// any, counts as used at `now`.
    pub fn lookup_and_use(&mut self, hop: Ipv4Addr, now: Instant) -> Lookup {
        if let Some(e) = self.entries.get_mut(&hop) {
            e.last_used = e.last_used.max(now);
        }
        self.lookup(hop, now)
    }

    /// Keeps `hop`'s entry however long it goes unused (a next hop the
    /// workers connect through without asking the table).
    pub fn pin(&mut self, hop: Ipv4Addr) {
        if let Some(e) = self.entries.get_mut(&hop) {
            e.pinned = true;
        }
    }

    fn in_use(&self, e: &Entry, now: Instant) -> bool {
        e.pinned || now.saturating_duration_since(e.last_used) < self.config.unused_time
    }

    /// Forgets the entries no connect used for the unused time, except
    /// pinned ones and the unreachable ones the workers refuse (see the
    /// module docs). Returns how many were forgotten.
    pub fn forget_unused(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        let unused_time = self.config.unused_time;
        self.entries.retain(|_, e| {
            e.pinned || e.unreachable || now.saturating_duration_since(e.last_used) < unused_time
        });
        before - self.entries.len()
    }

    /// Records a MAC the kernel just resolved for `hop` (an ARP reply to
    /// a request made for us, for a connect): confirmed and used now.
    pub fn insert_resolved(&mut self, hop: Ipv4Addr, mac: MacAddr, now: Instant) -> Observation {
        self.observe_usable(hop, mac, Some(now), now)
    }

    /// Feeds what the kernel's table holds for `hop` (None: no entry) at
    /// `now`. Untracked hops become tracked once the kernel has a MAC.
    pub fn observe(
        &mut self,
        hop: Ipv4Addr,
        kernel: Option<&KernelNeighbor>,
        now: Instant,
    ) -> Observation {
        // A nudge only helps an entry the kernel is not verifying or
        // trusting already: REACHABLE ignores it until its own timer runs
        // out, DELAY/PROBE/INCOMPLETE are verifying (RFC 4861 §7.3.3).
        let busy = nud::REACHABLE
            | nud::DELAY
            | nud::PROBE
            | nud::INCOMPLETE
            | nud::PERMANENT
            | nud::NOARP;
        let mut o = self.observe_state(hop, kernel, now);
        o.nudge &= kernel.is_none_or(|k| k.state & busy == 0);
        // RFC 1122 §2.3.2.1: no verification traffic for a next hop
        // nobody sends to.
        o.nudge &= self.entries.get(&hop).is_none_or(|e| self.in_use(e, now));
        o
    }

    fn observe_state(
        &mut self,
        hop: Ipv4Addr,
        kernel: Option<&KernelNeighbor>,
        now: Instant,
    ) -> Observation {
        match kernel {
            Some(k) if k.is_usable() => {
                let mac = k.mac.expect("a usable entry has a MAC");
                // The kernel's confirmation time, never in the future.
                let confirmed = k
                    .is_confirmed()
                    .then(|| now.checked_sub(k.confirmed_ago.unwrap_or_default()))
                    .map(|t| t.unwrap_or(now));
                self.observe_usable(hop, mac, confirmed, now)
            }
            _ => self.observe_failed(hop, now),
        }
    }

    fn observe_usable(
        &mut self,
        hop: Ipv4Addr,
        mac: MacAddr,
        confirmed: Option<Instant>,
        now: Instant,
    ) -> Observation {
        let reachable_for = self.reachable_time();
        let Some(e) = self.entries.get_mut(&hop) else {
            let entry = Entry {
                mac,
                confirmed,
                reachable_for,
                failing_since: None,
                unreachable: false,
                last_used: now,
                pinned: false,
            };
            self.entries.insert(hop, entry);
            return Observation {
                change: None,
                nudge: !Self::is_reachable(&entry, now),
            };
        };
        let old = e.mac;
        let change = (old != mac || e.unreachable).then_some(NextHopChange {
            hop,
            old: Some(old),
            new: Some(mac),
        });
        if old != mac {
            // RFC 4861 §7.2.5: the new address replaces the old one; only
            // a confirmation of the new one makes it reachable.
            e.mac = mac;
            e.confirmed = confirmed;
            e.reachable_for = reachable_for;
        } else if let Some(t) = confirmed {
            if e.confirmed.is_none_or(|c| t > c) {
                e.confirmed = Some(t);
                e.reachable_for = reachable_for;
            }
        }
        // The kernel holds an address it sends to: not failing (its own
        // probes decide; a failure shows as FAILED).
        e.failing_since = None;
        e.unreachable = false;
        Observation {
            change,
            nudge: !Self::is_reachable(e, now),
        }
    }

    fn observe_failed(&mut self, hop: Ipv4Addr, now: Instant) -> Observation {
        let grace = self.config.failure_grace;
        let Some(e) = self.entries.get_mut(&hop) else {
            return Observation {
                change: None,
                nudge: true,
            };
        };
        // Within its reachable time the entry stands (the kernel may just
        // have dropped an entry it did not use); only a stale one fails.
        if Self::is_reachable(e, now) {
            return Observation {
                change: None,
                nudge: true,
            };
        }
        let since = *e.failing_since.get_or_insert(now);
        let mut change = None;
        if now.saturating_duration_since(since) >= grace && !e.unreachable {
            e.unreachable = true;
            change = Some(NextHopChange {
                hop,
                old: Some(e.mac),
                new: None,
            });
        }
        Observation {
            change,
            nudge: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const OLD: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const NEW: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn config() -> NeighborConfig {
        NeighborConfig {
            base_reachable_time: Duration::from_secs(30),
            failure_grace: Duration::from_secs(5),
            check_interval: Duration::from_secs(1),
            unused_time: Duration::from_secs(60),
        }
    }

    fn kernel(state: u16, mac: Option<MacAddr>, confirmed_ago: u64) -> KernelNeighbor {
        KernelNeighbor {
            ip: HOP,
            ifindex: 1,
            state,
            mac,
            confirmed_ago: Some(Duration::from_secs(confirmed_ago)),
        }
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn a_confirmed_entry_is_reachable_then_stale_within_the_randomized_time() {
        let t0 = Instant::now();
        for seed in 0..50 {
            let mut t = NeighborTable::new(config(), seed);
            assert_eq!(t.lookup(HOP, t0), Lookup::Unknown);
            let o = t.insert_resolved(HOP, OLD, t0);
            assert_eq!(o, Observation::default());
            // 0.5 x 30 s = 15 s at least, 1.5 x 30 s = 45 s at most.
            assert_eq!(t.lookup(HOP, secs(t0, 14)), Lookup::Reachable(OLD));
            assert_eq!(t.lookup(HOP, secs(t0, 45)), Lookup::Stale(OLD));
        }
        // The factor differs between entries.
        let mut t = NeighborTable::new(config(), 7);
        let hops: Vec<Ipv4Addr> = (1..=20).map(|i| Ipv4Addr::new(198, 18, 0, i)).collect();
        for &h in &hops {
            t.insert_resolved(h, OLD, t0);
        }
        let stale_at_30 = hops
            .iter()
            .filter(|&&h| t.lookup(h, secs(t0, 30)) == Lookup::Stale(OLD))
            .count();
        assert!(stale_at_30 > 0 && stale_at_30 < hops.len(), "{stale_at_30}");
    }

    #[test]
    fn a_stale_entry_asks_for_verification_and_a_kernel_confirmation_renews_it() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(config(), 1);
        t.insert_resolved(HOP, OLD, t0);
        // Still reachable: the kernel's STALE entry changes nothing.
        let o = t.observe(HOP, Some(&kernel(nud::STALE, Some(OLD), 10)), secs(t0, 10));
        assert_eq!(o, Observation::default());
        // Stale by our clock: the kernel is asked to verify.
        let at = secs(t0, 50);
        let o = t.observe(HOP, Some(&kernel(nud::STALE, Some(OLD), 50)), at);
        assert_eq!(
            o,
            Observation {
                change: None,
                nudge: true
            }
        );
        assert_eq!(t.lookup(HOP, at), Lookup::Stale(OLD));
        // The kernel's probe was answered 1 s ago: reachable again.
        let o = t.observe(HOP, Some(&kernel(nud::REACHABLE, Some(OLD), 1)), at);
        assert_eq!(o, Observation::default());
        assert_eq!(t.lookup(HOP, secs(t0, 60)), Lookup::Reachable(OLD));
        // An old confirmation does not make it reachable (pinned: in use
        // however long this takes).
        let mut t = NeighborTable::new(config(), 1);
        t.insert_resolved(HOP, OLD, t0);
        t.pin(HOP);
        let o = t.observe(
            HOP,
            Some(&kernel(nud::REACHABLE, Some(OLD), 100)),
            secs(t0, 100),
        );
        assert_eq!(t.lookup(HOP, secs(t0, 100)), Lookup::Stale(OLD));
        // But the kernel, trusting it still, would ignore a nudge; so it
        // is while it verifies (DELAY, PROBE) or resolves (INCOMPLETE).
        assert!(!o.nudge);
        for state in [nud::DELAY, nud::PROBE] {
            let o = t.observe(HOP, Some(&kernel(state, Some(OLD), 100)), secs(t0, 100));
            assert!(!o.nudge);
        }
        let o = t.observe(HOP, Some(&kernel(nud::INCOMPLETE, None, 0)), secs(t0, 100));
        assert!(!o.nudge);
        // STALE, FAILED and no entry are nudged.
        let o = t.observe(
            HOP,
            Some(&kernel(nud::STALE, Some(OLD), 100)),
            secs(t0, 100),
        );
        assert!(o.nudge);
        assert!(
            t.observe(HOP, Some(&kernel(nud::FAILED, None, 0)), secs(t0, 100))
                .nudge
        );
        assert!(t.observe(HOP, None, secs(t0, 100)).nudge);
    }

    #[test]
    fn a_new_mac_replaces_the_old_one_at_once_confirmed_or_not() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(config(), 2);
        t.insert_resolved(HOP, OLD, t0);
        // A gratuitous ARP updated the kernel's entry (STALE, new MAC)
        // while ours was still reachable.
        let o = t.observe(HOP, Some(&kernel(nud::STALE, Some(NEW), 0)), secs(t0, 2));
        assert_eq!(
            o,
            Observation {
                change: Some(NextHopChange {
                    hop: HOP,
                    old: Some(OLD),
                    new: Some(NEW)
                }),
                nudge: true
            }
        );
        assert_eq!(t.lookup(HOP, secs(t0, 2)), Lookup::Stale(NEW));
        // Seen again: no second change; confirmed: reachable.
        let o = t.observe(
            HOP,
            Some(&kernel(nud::REACHABLE, Some(NEW), 0)),
            secs(t0, 3),
        );
        assert_eq!(o, Observation::default());
        assert_eq!(t.lookup(HOP, secs(t0, 3)), Lookup::Reachable(NEW));
    }

    #[test]
    fn a_failed_verification_keeps_the_mac_for_the_grace_then_is_unreachable() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(config(), 3);
        t.insert_resolved(HOP, OLD, t0);
        // The kernel lost an entry we confirmed recently: no failure.
        let o = t.observe(HOP, None, secs(t0, 5));
        assert_eq!(
            o,
            Observation {
                change: None,
                nudge: true
            }
        );
        assert_eq!(t.lookup(HOP, secs(t0, 5)), Lookup::Reachable(OLD));
        // Stale and FAILED in the kernel: the grace starts at 50 s.
        let failed = kernel(nud::FAILED, None, 0);
        let o = t.observe(HOP, Some(&failed), secs(t0, 50));
        assert_eq!(o.change, None);
        assert_eq!(t.lookup(HOP, secs(t0, 54)), Lookup::Stale(OLD));
        let o = t.observe(HOP, Some(&kernel(nud::INCOMPLETE, None, 0)), secs(t0, 54));
        assert_eq!(o.change, None);
        assert_eq!(t.lookup(HOP, secs(t0, 55)), Lookup::Unreachable);
        let o = t.observe(HOP, Some(&failed), secs(t0, 55));
        assert_eq!(
            o.change,
            Some(NextHopChange {
                hop: HOP,
                old: Some(OLD),
                new: None
            })
        );
        // Reported once.
        assert_eq!(t.observe(HOP, Some(&failed), secs(t0, 56)).change, None);
        // The host comes back with a new MAC: reachable through it.
        let o = t.observe(
            HOP,
            Some(&kernel(nud::REACHABLE, Some(NEW), 0)),
            secs(t0, 60),
        );
        assert_eq!(
            o.change,
            Some(NextHopChange {
                hop: HOP,
                old: Some(OLD),
                new: Some(NEW)
            })
        );
        assert_eq!(t.lookup(HOP, secs(t0, 60)), Lookup::Reachable(NEW));
    }

    #[test]
    fn an_unused_entry_is_no_longer_verified_and_is_forgotten() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(config(), 5);
        t.insert_resolved(HOP, OLD, t0);
        // The kernel last confirmed it at t0: stale from 45 s at the latest.
        let stale_at = |s| (kernel(nud::STALE, Some(OLD), s), secs(t0, s));
        // Used by a connect at 30 s: verified when stale.
        assert_ne!(t.lookup_and_use(HOP, secs(t0, 30)), Lookup::Unknown);
        let (k, at) = stale_at(80);
        assert!(t.observe(HOP, Some(&k), at).nudge);
        assert_eq!(t.forget_unused(secs(t0, 89)), 0);
        // 60 s after that connect: neither verified nor kept.
        let (k, at) = stale_at(90);
        assert!(!t.observe(HOP, Some(&k), at).nudge);
        assert_eq!(t.forget_unused(secs(t0, 90)), 1);
        assert!(!t.contains(HOP));
        assert_eq!(t.lookup(HOP, secs(t0, 90)), Lookup::Unknown);
    }

    #[test]
    fn pinned_entries_stay_and_are_verified_however_long_unused() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(config(), 6);
        t.insert_resolved(HOP, OLD, t0);
        t.pin(HOP);
        let stale = kernel(nud::STALE, Some(OLD), 3600);
        assert_eq!(t.forget_unused(secs(t0, 3600)), 0);
        assert!(t.observe(HOP, Some(&stale), secs(t0, 3600)).nudge);
        assert_eq!(t.lookup(HOP, secs(t0, 3600)), Lookup::Stale(OLD));
    }

    #[test]
    fn an_unreachable_entry_is_kept_unverified_until_it_answers_again() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(config(), 7);
        t.insert_resolved(HOP, OLD, t0);
        let failed = kernel(nud::FAILED, None, 0);
        t.observe(HOP, Some(&failed), secs(t0, 50));
        let o = t.observe(HOP, Some(&failed), secs(t0, 55));
        assert_eq!(o.change.and_then(|c| c.new), None);
        assert!(o.change.is_some(), "reported unreachable");
        // Unused since t0: kept (the workers refuse it), never verified.
        assert_eq!(t.forget_unused(secs(t0, 600)), 0);
        assert_eq!(t.lookup(HOP, secs(t0, 600)), Lookup::Unreachable);
        assert!(!t.observe(HOP, Some(&failed), secs(t0, 600)).nudge);
        // A connect asks for it: verified again.
        assert_eq!(t.lookup_and_use(HOP, secs(t0, 601)), Lookup::Unreachable);
        assert!(t.observe(HOP, Some(&failed), secs(t0, 602)).nudge);
        // The kernel resolves it (someone else's traffic): announced, and
        // forgotten once unused.
        let back = kernel(nud::REACHABLE, Some(OLD), 0);
        let o = t.observe(HOP, Some(&back), secs(t0, 603));
        assert_eq!(o.change.and_then(|c| c.new), Some(OLD));
        assert_eq!(t.forget_unused(secs(t0, 660)), 0);
        assert_eq!(t.forget_unused(secs(t0, 661)), 1);
    }

    #[test]
    fn an_unreachable_hop_that_answers_again_with_its_old_mac_is_announced() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(config(), 4);
        t.insert_resolved(HOP, OLD, t0);
        t.observe(HOP, None, secs(t0, 50));
        let o = t.observe(HOP, None, secs(t0, 60));
        assert_eq!(o.change.map(|c| c.new), Some(None));
        let o = t.observe(
            HOP,
            Some(&kernel(nud::REACHABLE, Some(OLD), 0)),
            secs(t0, 61),
        );
        assert_eq!(
            o.change,
            Some(NextHopChange {
                hop: HOP,
                old: Some(OLD),
                new: Some(OLD)
            })
        );
        // Recovering before the grace ends needs no announcement.
        let mut t = NeighborTable::new(config(), 4);
        t.insert_resolved(HOP, OLD, t0);
        t.observe(HOP, None, secs(t0, 50));
        let o = t.observe(HOP, Some(&kernel(nud::PROBE, Some(OLD), 9)), secs(t0, 52));
        assert_eq!(o.change, None);
        assert_eq!(t.lookup(HOP, secs(t0, 70)), Lookup::Stale(OLD));
    }

    #[test]
    fn untracked_hops_are_learnt_from_a_usable_kernel_entry_only() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(config(), 5);
        assert!(t.observe(HOP, None, t0).nudge);
        assert!(!t.contains(HOP));
        let o = t.observe(HOP, Some(&kernel(nud::STALE, Some(OLD), 0)), t0);
        assert_eq!(
            o,
            Observation {
                change: None,
                nudge: true
            }
        );
        assert_eq!(t.lookup(HOP, t0), Lookup::Stale(OLD));
    }

    #[test]
    fn nonsense_settings_are_refused() {
        assert!(config().validate().is_ok());
        let mut c = config();
        c.base_reachable_time = Duration::ZERO;
        assert!(c.validate().unwrap_err().contains("at least 10 ms"));
        let mut c = config();
        c.check_interval = Duration::from_secs(60);
        assert!(c.validate().is_err());
    }
}
