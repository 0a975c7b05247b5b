//! Memory of connect scans that found every candidate local tuple busy.
//!
//! An active open picks its local (address, port) by scanning candidates
//! until one is free or holds a reusable TIME-WAIT (RFC 6191 §2, Linux's
//! `tcp_tw_reuse`). When every candidate is held the scan visits all of
//! them: tens of thousands of flow-table lookups. A client that retries
//! such a connect on every loop turn (a load generator's closed loops, a
//! proxy's upstream connects) would spend its core rescanning and stop
//! draining its receive ring. The answer cannot change until one of the
//! held tuples to that destination is released (freed, or a TIME-WAIT
//! given up by its user) or the earliest TIME-WAIT among them becomes
//! reusable; a tuple that enters TIME-WAIT after the scan becomes
//! reusable no sooner than a full reuse delay later. So a failed scan is
//! remembered until then and repeats fail at once.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::time::Instant;

/// Which candidate list a scan walked: with the destination, it names a
/// set of tuples that is the same on every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanScope {
    /// The stack's own ephemeral range from one local address.
    Ephemeral(Ipv4Addr),
    /// A caller's list (e.g. a worker's share of the client ports), named
    /// by the caller.
    Caller(u64),
}

#[derive(Debug, Clone, Copy)]
struct FailedScan {
    scope: ScanScope,
    remote: SocketAddrV4,
    /// The earliest time a held tuple may become reusable by time alone.
    retry_at: Instant,
}

/// At most this many destinations are remembered: a client exhausting its
/// ports towards more destinations at once than this rescans the oldest.
const CAPACITY: usize = 16;

/// Failed scans, per (scope, destination), until they may succeed.
#[derive(Debug, Default, Clone)]
pub struct ExhaustedPorts {
    scans: Vec<FailedScan>,
}

impl ExhaustedPorts {
    /// Whether a scan of `scope` towards `remote` is known to fail at `now`.
    pub fn known_exhausted(&self, scope: ScanScope, remote: SocketAddrV4, now: Instant) -> bool {
        self.scans
            .iter()
            .any(|s| s.scope == scope && s.remote == remote && now < s.retry_at)
    }

    /// Records that a scan of `scope` towards `remote` found every
    /// candidate held, and that none can become reusable by time alone
    /// before `retry_at`.
    pub fn record(&mut self, scope: ScanScope, remote: SocketAddrV4, retry_at: Instant) {
        self.scans
            .retain(|s| !(s.scope == scope && s.remote == remote));
        if self.scans.len() == CAPACITY {
            self.scans.remove(0);
        }
        self.scans.push(FailedScan {
            scope,
            remote,
            retry_at,
        });
    }

    /// A tuple towards `remote` was released (its connection freed, or a
    /// TIME-WAIT given up by its user): scans towards `remote` may now
    /// succeed. Cheap when nothing is remembered, as it is called on every
    /// connection's end.
    pub fn tuple_released(&mut self, remote: SocketAddrV4) {
        if !self.scans.is_empty() {
            self.scans.retain(|s| s.remote != remote);
        }
    }

    /// A local address stopped listening: its ports may serve ephemeral
    /// scans again.
    pub fn listener_closed(&mut self) {
        self.scans.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn dst(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), port)
    }

    #[test]
    fn a_failed_scan_holds_until_its_retry_time() {
        let mut m = ExhaustedPorts::default();
        let scope = ScanScope::Ephemeral(A);
        assert!(!m.known_exhausted(scope, dst(80), Instant::ZERO));
        m.record(scope, dst(80), Instant::from_millis(5));
        assert!(m.known_exhausted(scope, dst(80), Instant::from_millis(4)));
        assert!(!m.known_exhausted(scope, dst(80), Instant::from_millis(5)));
        // Other destinations and scopes are not affected.
        assert!(!m.known_exhausted(scope, dst(81), Instant::ZERO));
        assert!(!m.known_exhausted(ScanScope::Caller(0), dst(80), Instant::ZERO));
    }

    #[test]
    fn a_release_towards_the_destination_ends_it() {
        let mut m = ExhaustedPorts::default();
        m.record(ScanScope::Caller(1), dst(80), Instant::from_secs(1));
        m.record(ScanScope::Caller(1), dst(81), Instant::from_secs(1));
        m.tuple_released(dst(80));
        assert!(!m.known_exhausted(ScanScope::Caller(1), dst(80), Instant::ZERO));
        assert!(m.known_exhausted(ScanScope::Caller(1), dst(81), Instant::ZERO));
        m.listener_closed();
        assert!(!m.known_exhausted(ScanScope::Caller(1), dst(81), Instant::ZERO));
    }

    #[test]
    fn a_new_record_replaces_the_old_and_the_oldest_makes_room() {
        let mut m = ExhaustedPorts::default();
        let s = ScanScope::Caller(7);
        m.record(s, dst(80), Instant::from_secs(9));
        m.record(s, dst(80), Instant::from_millis(1));
        assert!(!m.known_exhausted(s, dst(80), Instant::from_millis(1)));
        for p in 0..CAPACITY as u16 {
            m.record(s, dst(1000 + p), Instant::from_secs(1));
        }
        assert_eq!(m.scans.len(), CAPACITY);
        // dst(80) was the oldest and is forgotten (a rescan, never a wrong
        // answer); the newest are kept.
        assert!(!m.known_exhausted(s, dst(80), Instant::ZERO));
        assert!(m.known_exhausted(s, dst(1000 + CAPACITY as u16 - 1), Instant::ZERO));
    }
}
