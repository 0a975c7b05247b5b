//! The send buffer: bytes the application has written that the peer has not
//! yet acknowledged.
//!
//! Offset 0 is always the byte at SND.UNA. The bytes `[0, SND.NXT - SND.UNA)`
//! are in flight, the rest are queued but not yet sent. The connection keeps
//! the sequence numbers; this type only knows offsets, which keeps sequence
//! arithmetic (and its wrap-around) out of the storage code.
//!
//! Storage is a ring allocated on the first write (an idle connection that
//! never sent holds no ring), so the steady state (write / transmit /
//! acknowledge) never allocates; send-buffer auto-tuning may [`grow`] it a
//! few times (doubling up to a bound) while a bulk sender ramps up.
//! Segments
//! are built from [`SendBuffer::slices_at`], a zero-copy view that is at most
//! two slices (the second only when the range crosses the end of the ring).

use core::fmt;

/// Fixed-capacity ring of unacknowledged bytes. See the module docs.
pub struct SendBuffer {
    /// The ring: empty until the first write, then `capacity` long.
    buf: Box<[u8]>,
    capacity: usize,
    /// Ring index of offset 0 (the byte at SND.UNA). Always `< capacity`,
    /// or 0 when the capacity is 0.
    head: usize,
    /// Bytes held, `<= capacity`.
    len: usize,
}

impl SendBuffer {
    /// A buffer that holds at most `capacity` bytes. Its only allocation
    /// is made by the first write.
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
        if self.buf.is_empty() {
            self.buf = vec![0; self.capacity].into_boxed_slice();
        }
        let tail = self.ring_index(self.len);
        let first = n.min(self.capacity() - tail);
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
        let first = len.min(self.capacity() - start);
        (&self.buf[start..start + first], &self.buf[..len - first])
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

    /// Raises the capacity to `capacity` (a smaller value changes nothing),
    /// keeping the bytes held in order. An allocated ring is replaced by a
    /// larger one (one allocation and a copy of what is held); otherwise
    /// the first write allocates the new size.
    pub fn grow(&mut self, capacity: usize) {
        if capacity <= self.capacity {
            return;
        }
        if !self.buf.is_empty() {
            let mut ring = vec![0; capacity].into_boxed_slice();
            let (a, b) = self.slices_at(0, self.len);
            ring[..a.len()].copy_from_slice(a);
            ring[a.len()..a.len() + b.len()].copy_from_slice(b);
            self.buf = ring;
        }
        self.head = 0;
        self.capacity = capacity;
    }

    /// Drops everything (connection reset / reuse). Keeps the allocation.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Ring index of byte `offset`, for `offset <= capacity`.
    ///
    /// `head < capacity` and `offset <= capacity`, so one conditional
    /// subtraction replaces a modulo (and is safe for capacity 0).
    #[inline]
    fn ring_index(&self, offset: usize) -> usize {
        let i = self.head + offset;
        if i >= self.capacity() {
            i - self.capacity()
        } else {
            i
        }
    }
}

impl fmt::Debug for SendBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendBuffer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    use proptest::prelude::*;
    use std::collections::VecDeque;

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
        (0usize..40).prop_flat_map(|cap| (Just(cap), proptest::collection::vec(op(cap), 0..200)))
    }

    proptest! {
        /// The ring behaves exactly like an unbounded queue truncated to the
        /// capacity.
        #[test]
        fn model((cap, ops) in ops()) {
            let mut b = SendBuffer::with_capacity(cap);
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
                            prop_assert_eq!(b.ring_index(o) + s1.len(), cap);
                        }
                    }
                }
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(b.free(), cap - model.len());
                prop_assert_eq!(concat(b.slices_at(0, usize::MAX)), model.iter().copied().collect::<Vec<_>>());
            }
        }
    }
}
