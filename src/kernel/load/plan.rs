//! What every client thread of a run shares, read-only: the spec, the
//! request bytes, the bulk pattern, the source addresses and the clock.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::conn::BATCH;
use crate::app::source::pattern_byte;
use crate::load::LoadSpec;

pub struct Plan {
    pub spec: LoadSpec,
    /// One request repeated (up to [`BATCH`] times, at least twice): the
    /// bytes of a batch of requests, and the reference an echo must match.
    pub batch: Vec<u8>,
    request_len: usize,
    /// The `source` app's pattern, 251 × 264 bytes: from any offset modulo
    /// its period of 251 there are 64 KiB of it.
    pub pattern: Vec<u8>,
    /// Source addresses, connection `i` uses `sources[i % len]`; `None`
    /// leaves the choice to the kernel's routing.
    pub sources: Vec<Option<Ipv4Addr>>,
    start: Instant,
}

impl Plan {
    pub fn new(spec: &LoadSpec, sources: Vec<Option<Ipv4Addr>>) -> Plan {
        let request = spec.request();
        let copies = (1 << 20) / request.len().max(1);
        let copies = copies.clamp(2, BATCH);
        Plan {
            spec: spec.clone(),
            batch: request.repeat(copies),
            request_len: request.len(),
            pattern: (0..251u64 * 264).map(pattern_byte).collect(),
            sources: if sources.is_empty() {
                vec![None]
            } else {
                sources
            },
            start: Instant::now(),
        }
    }

    pub fn request_len(&self) -> usize {
        self.request_len
    }

    /// Requests one write may carry.
    pub fn batch_requests(&self) -> usize {
        self.batch.len() / self.request_len
    }

    /// Nanoseconds since the run started: the clock of the recorders.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn source(&self, index: usize) -> Option<Ipv4Addr> {
        self.sources[index % self.sources.len()]
    }
}
