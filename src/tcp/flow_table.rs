//! The per-core flow table: 4-tuple → connection slot or TIME-WAIT
//! record, O(1) expected.
//!
//! Keyed with a secret (aHash seeded from the stack's entropy) so a peer
//! cannot choose 4-tuples that collide and turn lookups linear.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddrV4;

use ahash::RandomState;

use crate::wire::{EtherType, EthernetRepr, Ipv4Repr, MacAddr, IP_PROTO_TCP};

/// A connection's identity as seen from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FourTuple {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
}

impl Hash for FourTuple {
    /// The 96 bits of the tuple as one integer: one hasher round per
    /// lookup instead of one per address octet and port (the derived
    /// `Hash` of `SocketAddrV4`). Equal tuples still hash equally, which is
    /// all `HashMap` needs; the hasher's secret seed keeps collisions
    /// unpredictable to peers.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let packed = u128::from(u32::from(*self.local.ip())) << 64
            | u128::from(u32::from(*self.remote.ip())) << 32
            | u128::from(self.local.port()) << 16
            | u128::from(self.remote.port());
        state.write_u128(packed);
    }
}

impl FourTuple {
    /// The Ethernet and IPv4 headers of a segment we send on this flow
    /// (IPv4 payload length is filled in by `emit_tcp_frame`).
    pub(crate) fn outgoing_headers(
        &self,
        src_mac: MacAddr,
        dst_mac: MacAddr,
        ttl: u8,
    ) -> (EthernetRepr, Ipv4Repr) {
        let eth = EthernetRepr {
            src_addr: src_mac,
            dst_addr: dst_mac,
            ethertype: EtherType::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: *self.local.ip(),
            dst_addr: *self.remote.ip(),
            protocol: IP_PROTO_TCP,
            payload_len: 0,
            ttl,
            dscp_ecn: 0,
            ident: 0,
        };
        (eth, ip)
    }
}

/// What holds a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// A connection, by its slot in the stack's connection slab.
    Conn(u32),
    /// A TIME-WAIT record, by its index in the stack's `TimeWaitTable`.
    TimeWait(u32),
}

/// Maps a [`FourTuple`] to what holds it.
pub struct FlowTable {
    map: HashMap<FourTuple, Flow, RandomState>,
}

impl FlowTable {
    /// Pre-sizes for `capacity` flows so steady state never rehashes.
    pub fn with_capacity(capacity: usize, seeds: [u64; 4]) -> Self {
        let state = RandomState::with_seeds(seeds[0], seeds[1], seeds[2], seeds[3]);
        FlowTable {
            map: HashMap::with_capacity_and_hasher(capacity, state),
        }
    }

    #[inline]
    pub fn get(&self, tuple: &FourTuple) -> Option<Flow> {
        self.map.get(tuple).copied()
    }

    /// Inserts; returns false (and changes nothing) if the tuple is taken.
    pub fn insert(&mut self, tuple: FourTuple, flow: Flow) -> bool {
        match self.map.entry(tuple) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(flow);
                true
            }
        }
    }

    /// Hands a taken tuple from `from` to `to`; false (and nothing
    /// changed) unless `from` held it.
    pub fn replace(&mut self, tuple: &FourTuple, from: Flow, to: Flow) -> bool {
        match self.map.get_mut(tuple) {
            Some(held) if *held == from => {
                *held = to;
                true
            }
            _ => false,
        }
    }

    pub fn remove(&mut self, tuple: &FourTuple) -> Option<Flow> {
        self.map.remove(tuple)
    }

    pub fn contains(&self, tuple: &FourTuple) -> bool {
        self.map.contains_key(tuple)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn insert_lookup_remove() {
        let mut t = FlowTable::with_capacity(16, [1, 2, 3, 4]);
        let a = FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            remote: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 1234),
        };
        assert!(t.insert(a, Flow::Conn(7)));
        assert!(!t.insert(a, Flow::Conn(8)));
        assert_eq!(t.get(&a), Some(Flow::Conn(7)));
        assert!(!t.replace(&a, Flow::Conn(8), Flow::TimeWait(3)));
        assert!(t.replace(&a, Flow::Conn(7), Flow::TimeWait(3)));
        assert_eq!(t.get(&a), Some(Flow::TimeWait(3)));
        assert_eq!(t.remove(&a), Some(Flow::TimeWait(3)));
        assert_eq!(t.get(&a), None);
        assert!(t.is_empty());
    }
}
