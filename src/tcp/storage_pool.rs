//! Recycled connection storage: the first ring of a connection's send and
//! receive buffers ([`MIN_RING`] bytes each) and its SACK scoreboard's
//! first records, kept by the stack when a connection ends or enters
//! TIME-WAIT and handed to the next connection that needs them.
//!
//! A short connection (connect, one request, one response, close) stores
//! a few dozen bytes each way, yet each side used to allocate, zero and
//! free two 2 KiB rings and its scoreboard's records per connection; the
//! rings are beyond glibc's per-thread cache (1 KiB), so every one went
//! through the shared bins. A pool per stack (one stack per worker
//! thread, shared-nothing) turns each into a push and a pop.
//!
//! A recycled ring is not zeroed. Its bytes are the last owner's, and
//! they are never exposed: a buffer only ever reads ring bytes it wrote
//! itself (the readable and out-of-order bytes of `ReceiveBuffer`, the
//! queued bytes of `SendBuffer`); both buffers' model tests check that
//! on recycled rings full of another connection's bytes too.

use super::sack_scoreboard::ScoreboardStorage;
use super::send_buffer::MIN_RING;

/// Rings (and as many scoreboards) kept per stack by default: enough for
/// a thousand short connections in flight; at most 2 MiB of rings held.
pub const DEFAULT_STORAGE_POOL_LIMIT: usize = 1024;

/// Scoreboard storage larger than this many records is a bulk sender's
/// and is freed rather than kept: the next connection most likely needs
/// only the first few (`FIRST_SCOREBOARD_RECORDS` in `conn::output`).
const MAX_POOLED_RECORDS: usize = 64;

/// A stack's free lists of connection storage. See the module docs.
#[derive(Debug)]
pub struct StoragePool {
    rings: Vec<Box<[u8]>>,
    scoreboards: Vec<ScoreboardStorage>,
    limit: usize,
}

impl StoragePool {
    /// An empty pool that keeps at most `limit` rings and `limit`
    /// scoreboards (0: keeps nothing).
    pub fn new(limit: usize) -> Self {
        StoragePool {
            rings: Vec::new(),
            scoreboards: Vec::new(),
            limit,
        }
    }

    /// A recycled ring of [`MIN_RING`] bytes, if one is kept.
    #[inline]
    pub fn take_ring(&mut self) -> Option<Box<[u8]>> {
        self.rings.pop()
    }

    /// Keeps `ring` for the next connection if it is a [`MIN_RING`]-byte
    /// ring and the pool has room; frees it otherwise (a grown ring is a
    /// bulk connection's, a smaller one a tiny buffer's).
    #[inline]
    pub fn put_ring(&mut self, ring: Box<[u8]>) {
        if ring.len() == MIN_RING {
            keep(&mut self.rings, ring, self.limit);
        }
    }

    /// Recycled (empty) scoreboard storage, if some is kept.
    #[inline]
    pub fn take_scoreboard(&mut self) -> Option<ScoreboardStorage> {
        self.scoreboards.pop()
    }

    /// Keeps `storage` for the next connection if it is small and the
    /// pool has room; frees it otherwise.
    #[inline]
    pub fn put_scoreboard(&mut self, storage: ScoreboardStorage) {
        if storage.records() <= MAX_POOLED_RECORDS {
            keep(&mut self.scoreboards, storage, self.limit);
        }
    }

    /// Offers a kept ring to `adopt`, which returns it if it does not
    /// take it (the ring then stays kept).
    #[inline]
    pub fn lend_ring(&mut self, adopt: impl FnOnce(Box<[u8]>) -> Option<Box<[u8]>>) {
        if let Some(refused) = self.take_ring().and_then(adopt) {
            self.put_ring(refused);
        }
    }

    /// [`lend_ring`](Self::lend_ring) for scoreboard storage.
    #[inline]
    pub fn lend_scoreboard(
        &mut self,
        adopt: impl FnOnce(ScoreboardStorage) -> Option<ScoreboardStorage>,
    ) {
        if let Some(refused) = self.take_scoreboard().and_then(adopt) {
            self.put_scoreboard(refused);
        }
    }

    /// Rings kept now.
    pub fn rings(&self) -> usize {
        self.rings.len()
    }

    /// Scoreboards kept now.
    pub fn scoreboards(&self) -> usize {
        self.scoreboards.len()
    }
}

/// Pushes `item` onto `list` below `limit`, growing the list ahead (to
/// the limit at most) rather than one entry at a time.
#[inline]
fn keep<T>(list: &mut Vec<T>, item: T, limit: usize) {
    if list.len() >= limit {
        return;
    }
    if list.capacity() == list.len() {
        list.reserve(limit.min(64.max(list.len())));
    }
    list.push(item);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::sack_scoreboard::SackScoreboard;
    use crate::tcp::Instant;
    use crate::wire::SeqNum;

    #[test]
    fn keeps_only_smallest_rings_up_to_the_limit() {
        let mut pool = StoragePool::new(2);
        assert!(pool.take_ring().is_none());
        pool.put_ring(vec![1u8; 2 * MIN_RING].into_boxed_slice());
        assert_eq!(pool.rings(), 0, "a grown ring is freed");
        pool.put_ring(vec![0u8; 100].into_boxed_slice());
        assert_eq!(pool.rings(), 0, "a ring below MIN_RING is freed");
        for _ in 0..3 {
            pool.put_ring(vec![7u8; MIN_RING].into_boxed_slice());
        }
        assert_eq!(pool.rings(), 2, "the limit holds");
        assert_eq!(pool.take_ring().unwrap().len(), MIN_RING);
        assert_eq!(pool.rings(), 1);
        pool.lend_ring(Some);
        assert_eq!(pool.rings(), 1, "a refused ring stays kept");
        pool.lend_ring(|_| None);
        assert_eq!(pool.rings(), 0, "a taken ring leaves the pool");
    }

    #[test]
    fn keeps_small_scoreboards_and_frees_big_ones() {
        let mut pool = StoragePool::new(4);
        let mut small = SackScoreboard::new();
        small.reserve(16);
        let mut big = SackScoreboard::new();
        big.reserve(4 * MAX_POOLED_RECORDS);
        for mut board in [small, big] {
            pool.put_scoreboard(board.take_storage().unwrap());
        }
        assert_eq!(pool.scoreboards(), 1);
        let mut next = SackScoreboard::new();
        assert!(next
            .adopt_storage(pool.take_scoreboard().unwrap())
            .is_none());
        next.on_send(SeqNum(1), 100, false, Instant::from_secs(1));
        assert_eq!(next.len(), 1);
    }

    #[test]
    fn a_zero_limit_keeps_nothing() {
        let mut pool = StoragePool::new(0);
        pool.put_ring(vec![0u8; MIN_RING].into_boxed_slice());
        assert_eq!(pool.rings(), 0);
    }
}
