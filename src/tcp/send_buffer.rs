//! The send buffer: bytes the application has written that the peer has not
//! yet acknowledged.
//!
//! Offset 0 is always the byte at SND.UNA. The bytes `[0, SND.NXT - SND.UNA)`
//! are in flight, the rest are queued but not yet sent. The connection keeps
//! the sequence numbers; this type only knows offsets, which keeps sequence
//! arithmetic (and its wrap-around) out of the storage code.
//!
//! Storage is a ring that grows with what the connection holds, up to the
//! capacity: nothing until the first write (an idle connection that never
//! sent holds no ring), then the next power of two that fits (at least
//! [`MIN_RING`]), doubling when more is queued. A connection that writes
//! 64 bytes and closes (issue 5's `short` workload) thus allocates and
//! zeroes 2 KiB instead of the whole capacity (256 KiB by default: its
//! `memset` was most of a short connection's cost), and a bulk sender
//! reaches its full ring after a few doublings and keeps it, so the
//! steady state (write / transmit / acknowledge) never allocates.
//! Send-buffer auto-tuning may [`grow`](SendBuffer::grow) the capacity
//! while a bulk sender ramps up; the ring then follows by doubling.
//! Segments
//! are built from [`SendBuffer::slices_at`], a zero-copy view that is at most
//! two slices (the second only when the range crosses the end of the ring).

use core::fmt;

/// Smallest ring allocated: one MSS-sized segment fits.
pub const MIN_RING: usize = 2048;

/// A buffer's `adopt_ring` (this one's and `ReceiveBuffer`'s): `ring`
/// becomes the storage in `buf` (read position `head` reset) when none is
/// allocated and it fits `capacity`; otherwise it is handed back.
pub(super) fn adopt_into(
    buf: &mut Box<[u8]>,
    head: &mut usize,
    capacity: usize,
    ring: Box<[u8]>,
) -> Option<Box<[u8]>> {
    if buf.is_empty() && ring.len() <= capacity {
        *buf = ring;
        *head = 0;
        None
    } else {
        Some(ring)
    }
}

/// Bounded ring of unacknowledged bytes. See the module docs.
pub struct SendBuffer {
    /// The ring: empty until the first write, then a power of two (or
    /// `capacity`) long, grown by [`SendBuffer::reserve`].
    buf: Box<[u8]>,
    /// Most bytes the buffer may hold (SO_SNDBUF).
    capacity: usize,
    /// Ring index of offset 0 (the byte at SND.UNA). Always `< buf.len()`,
    /// or 0 when the ring is empty.
    head: usize,
    /// Bytes held, `<= capacity`.
    len: usize,
}

impl SendBuffer {
    /// A buffer that holds at most `capacity` bytes. Nothing is allocated
    /// before the first write.
    pub fn with_capacity(capacity: usize) -> Self {
        SendBuffer {
            buf: Box::default(),
            capacity,
            head: 0,
            len: 0,
        }
    }

    /// Maximum number of bytes the buffer can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held: in flight plus not yet sent. Offset 0 is SND.UNA's byte.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left for [`SendBuffer::write`].
    #[inline]
    pub fn free(&self) -> usize {
        self.capacity() - self.len
    }

    /// Appends as much of `data` as fits and returns how many bytes were
    /// taken (a prefix of `data`; 0 when the buffer is full).
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        if self.len + n > self.buf.len() {
            self.reserve(self.len + n);
        }
        let tail = self.ring_index(self.len);
        let first = n.min(self.buf.len() - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        self.len += n;
        n
    }

    /// Zero-copy view of the bytes at offsets `[offset, offset + len)`,
    /// clamped to what is held (an out-of-range request yields shorter or
    /// empty slices, never a panic). The second slice is non-empty only when
    /// the range crosses the end of the ring; concatenated, the two slices
    /// are the requested bytes in order.
    pub fn slices_at(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        if offset >= self.len {
            return (&[], &[]);
        }
        let len = len.min(self.len - offset);
        let start = self.ring_index(offset);
        let first = len.min(self.buf.len() - start);
        (&self.buf[start..start + first], &self.buf[..len - first])
    }

    /// Bytes of ring storage allocated (at most the capacity).
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Grows the ring to hold `needed <= capacity` bytes: the next power of
    /// two, at least [`MIN_RING`] and twice the old ring, at most the
    /// capacity. The held bytes move to the start of the new ring.
    #[cold]
    fn reserve(&mut self, needed: usize) {
        let size = needed
            .next_power_of_two()
            .max(MIN_RING)
            .max(2 * self.buf.len())
            .min(self.capacity);
        let mut ring = Vec::with_capacity(size);
        let (a, b) = self.slices_at(0, self.len);
        ring.extend_from_slice(a);
        ring.extend_from_slice(b);
        ring.resize(size, 0);
        self.buf = ring.into_boxed_slice();
        self.head = 0;
    }

    /// Drops `n` bytes from the front (they were acknowledged: SND.UNA moved
    /// by `n`). `n` is clamped to [`SendBuffer::len`].
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        if self.len == 0 {
            // Restarting at the beginning of the ring keeps the next writes
            // contiguous, so segments are more often a single slice.
            self.head = 0;
        } else {
            self.head = self.ring_index(n);
        }
    }

    /// Raises the capacity to `capacity` (a smaller value changes
    /// nothing). The ring follows as writes need the room (it doubles,
    /// keeping the bytes held in order), so nothing is copied here.
    pub fn grow(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }

    /// Drops everything (connection reset / reuse). Keeps the allocation.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Returns the ring's storage to the allocator when nothing is held
    /// (a connection entering TIME-WAIT: it never sends data again). A
    /// later write allocates afresh. Keeps the capacity.
    pub fn release_storage(&mut self) {
        drop(self.take_ring());
    }

    /// As [`release_storage`](Self::release_storage), but hands the ring
    /// to the caller (for a [`StoragePool`](super::storage_pool::StoragePool))
    /// instead of freeing it; `None` when nothing is allocated or bytes
    /// are held.
    pub fn take_ring(&mut self) -> Option<Box<[u8]>> {
        if self.len == 0 && !self.buf.is_empty() {
            self.head = 0;
            Some(std::mem::take(&mut self.buf))
        } else {
            None
        }
    }

    /// Takes `ring` as this buffer's storage, instead of allocating at the
    /// first write, when none is allocated yet and the ring is within the
    /// capacity; otherwise hands it back. The ring's old bytes are never
    /// read: only queued bytes are.
    pub fn adopt_ring(&mut self, ring: Box<[u8]>) -> Option<Box<[u8]>> {
        debug_assert!(!self.buf.is_empty() || self.len == 0);
        adopt_into(&mut self.buf, &mut self.head, self.capacity, ring)
    }

    /// Ring index of byte `offset`, for `offset <= buf.len()`.
    ///
    /// `head < buf.len()` and `offset <= buf.len()`, so one conditional
    /// subtraction replaces a modulo (and is safe for an empty ring).
    #[inline]
    fn ring_index(&self, offset: usize) -> usize {
        let i = self.head + offset;
        if i >= self.buf.len() {
            i - self.buf.len()
        } else {
            i
        }
    }
}

impl fmt::Debug for SendBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendBuffer")
            .field("capacity", &self.capacity())
            .field("allocated", &self.buf.len())
            .field("head", &self.head)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[test]
    fn growing_keeps_the_bytes_in_order_across_the_wrap() {
        let mut b = SendBuffer::with_capacity(8);
        assert_eq!(b.write(b"abcdefgh"), 8);
        b.consume(5);
        assert_eq!(b.write(b"ijkl"), 4); // wraps: "fgh" then "ijkl"
        b.grow(16);
        assert_eq!(b.capacity(), 16);
        let (x, y) = b.slices_at(0, 16);
        assert_eq!([x, y].concat(), b"fghijkl");
        assert_eq!(b.write(b"mnopqrstu"), 9);
        let (x, y) = b.slices_at(0, 16);
        assert_eq!([x, y].concat(), b"fghijklmnopqrstu");
        b.grow(4); // never shrinks
        assert_eq!(b.capacity(), 16);
    }

    #[test]
    fn growing_before_the_first_write_only_raises_the_capacity() {
        let mut b = SendBuffer::with_capacity(8);
        b.grow(32);
        assert_eq!(b.write(&[1; 40]), 32);
    }

    fn concat(s: (&[u8], &[u8])) -> Vec<u8> {
        let mut v = s.0.to_vec();
        v.extend_from_slice(s.1);
        v
    }

    #[test]
    fn write_consume_wrap() {
        let mut b = SendBuffer::with_capacity(8);
        assert!(b.is_empty());
        assert_eq!(b.write(b"abcdef"), 6);
        assert_eq!(b.free(), 2);
        assert_eq!(b.write(b"ghijk"), 2);
        assert_eq!(b.free(), 0);
        assert_eq!(b.write(b"x"), 0);
        b.consume(5);
        assert_eq!(b.len(), 3);
        assert_eq!(b.write(b"lmno"), 4);
        // Held: "fgh" at ring 5..8, then "lmno" at ring 0..4.
        let (a, c) = b.slices_at(0, 100);
        assert_eq!(a, b"fgh");
        assert_eq!(c, b"lmno");
        assert_eq!(concat(b.slices_at(2, 3)), b"hlm");
        let (a, c) = b.slices_at(3, 2);
        assert_eq!(a, b"lm");
        assert!(c.is_empty());
    }

    #[test]
    fn slices_at_clamps() {
        let mut b = SendBuffer::with_capacity(4);
        b.write(b"abc");
        assert_eq!(b.slices_at(3, 1), (&[][..], &[][..]));
        assert_eq!(b.slices_at(usize::MAX, usize::MAX), (&[][..], &[][..]));
        assert_eq!(concat(b.slices_at(1, usize::MAX)), b"bc");
        assert_eq!(concat(b.slices_at(0, 0)), b"");
    }

    #[test]
    fn consume_clamps_and_resets() {
        let mut b = SendBuffer::with_capacity(4);
        b.write(b"abc");
        b.consume(2);
        b.consume(usize::MAX);
        assert!(b.is_empty());
        // Head went back to 0: a full write is one contiguous slice.
        assert_eq!(b.write(b"wxyz"), 4);
        let (a, c) = b.slices_at(0, 4);
        assert_eq!(a, b"wxyz");
        assert!(c.is_empty());
        b.clear();
        assert_eq!(b.len(), 0);
        assert_eq!(b.free(), 4);
    }

    #[test]
    fn the_ring_grows_with_what_is_held() {
        let cap = 256 * 1024;
        let mut b = SendBuffer::with_capacity(cap);
        assert_eq!(b.allocated(), 0);
        // A short connection's request: the smallest ring, not 256 KiB.
        assert_eq!(b.write(&[7; 64]), 64);
        assert_eq!(b.allocated(), MIN_RING);
        // Wrap the small ring, then grow it: bytes stay in order.
        b.consume(60);
        let data: Vec<u8> = (0..MIN_RING as u32).map(|i| i as u8).collect();
        assert_eq!(b.write(&data[..MIN_RING - 10]), MIN_RING - 10);
        assert_eq!(b.allocated(), MIN_RING);
        assert_eq!(b.write(&data[MIN_RING - 10..]), 10);
        assert_eq!(b.allocated(), 2 * MIN_RING);
        let mut expect = vec![7; 4];
        expect.extend_from_slice(&data);
        assert_eq!(concat(b.slices_at(0, usize::MAX)), expect);
        // Filling it up reaches exactly the capacity, never more.
        let big = vec![1u8; cap];
        let room = b.free();
        assert_eq!(b.write(&big), room);
        assert_eq!(b.allocated(), cap);
        assert_eq!(b.free(), 0);
    }

    #[test]
    fn released_storage_comes_back_on_the_next_write() {
        let mut b = SendBuffer::with_capacity(8192);
        assert_eq!(b.write(&[1; 100]), 100);
        b.release_storage();
        assert_eq!(b.allocated(), MIN_RING, "bytes held: storage kept");
        b.consume(100);
        b.release_storage();
        assert_eq!(b.allocated(), 0);
        assert_eq!(b.capacity(), 8192);
        assert_eq!(b.write(&[2; 3000]), 3000);
        assert_eq!(b.allocated(), 4096);
        assert_eq!(concat(b.slices_at(0, 3000)), vec![2; 3000]);
    }

    #[test]
    fn zero_capacity() {
        let mut b = SendBuffer::with_capacity(0);
        assert_eq!(b.write(b"abc"), 0);
        assert_eq!(b.slices_at(0, 10), (&[][..], &[][..]));
        b.consume(3);
        assert!(b.is_empty());
        assert_eq!(b.free(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(usize),
        Consume(usize),
        View(usize, usize),
    }

    fn op(cap: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..=cap + 2).prop_map(Op::Write),
            (0..=cap + 2).prop_map(Op::Consume),
            (0..=cap + 2, 0..=cap + 2).prop_map(|(o, l)| Op::View(o, l)),
        ]
    }

    fn ops() -> impl Strategy<Value = (usize, Vec<Op>)> {
        // Small capacities wrap often; large ones grow the ring (MIN_RING,
        // doubling, a capacity that is not a power of two) while it wraps.
        prop_oneof![0usize..40, MIN_RING - 8..3 * MIN_RING + 100]
            .prop_flat_map(|cap| (Just(cap), proptest::collection::vec(op(cap), 0..200)))
    }

    proptest! {
        /// The ring behaves exactly like an unbounded queue truncated to the
        /// capacity.
        #[test]
        fn model((cap, ops) in ops(), recycled in any::<bool>()) {
            let mut b = SendBuffer::with_capacity(cap);
            if recycled {
                // A pooled ring holds another connection's bytes: none of
                // them may ever show (a ring too big for the capacity is
                // refused).
                let refused = b.adopt_ring(vec![0xee; MIN_RING].into_boxed_slice());
                prop_assert_eq!(refused.is_some(), cap < MIN_RING);
            }
            let mut model: VecDeque<u8> = VecDeque::new();
            let mut next = 0u8;
            for op in ops {
                match op {
                    Op::Write(n) => {
                        let data: Vec<u8> = (0..n).map(|i| next.wrapping_add(i as u8)).collect();
                        let took = b.write(&data);
                        let expect = n.min(cap - model.len());
                        prop_assert_eq!(took, expect);
                        model.extend(&data[..took]);
                        next = next.wrapping_add(took as u8);
                    }
                    Op::Consume(n) => {
                        b.consume(n);
                        let n = n.min(model.len());
                        model.drain(..n);
                    }
                    Op::View(o, l) => {
                        let (s1, s2) = b.slices_at(o, l);
                        let expect: Vec<u8> = model.iter().skip(o).take(l).copied().collect();
                        prop_assert_eq!(concat((s1, s2)), expect);
                        // The second slice is used only across the wrap: the
                        // first then runs to the end of the ring.
                        if !s2.is_empty() {
                            prop_assert_eq!(b.ring_index(o) + s1.len(), b.allocated());
                        }
                    }
                }
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(b.free(), cap - model.len());
                prop_assert!(b.allocated() <= cap);
                prop_assert_eq!(concat(b.slices_at(0, usize::MAX)), model.iter().copied().collect::<Vec<_>>());
            }
        }
    }
}
