//! The receive buffer: in-order bytes the application has not read yet,
//! plus out-of-order bytes already stored at their final place.
//!
//! Layout of the fixed-capacity ring, starting at the read position:
//!
//! ```text
//! | contiguous (readable) | gap | ooo | gap | ooo | ... free ... |
//! ^ head                  ^ contiguous end = RCV.NXT (offset 0 of write_at)
//! ```
//!
//! Out-of-order segments are copied once, straight to where they belong,
//! and tracked by an [`Assembler`]. When the gap in front of them fills, the
//! contiguous end just moves over them: reassembly needs no second copy and
//! no per-segment allocation. Everything is addressed by offsets from the
//! contiguous end; the connection owns the sequence numbers.
//!
//! Nothing is allocated until data arrives: the ring on the first stored
//! byte, the out-of-order tracker on the first out-of-order segment. An idle
//! connection (most of them, on a server with many) costs only this struct.
//! The ring then grows with the data it holds, like the send buffer's
//! (the next power of two, at least [`MIN_RING`], doubling), up to the
//! capacity that the advertised window promises: a connection that
//! receives 64 bytes zeroes 2 KiB, not the whole capacity, and auto-tuning
//! ([`ReceiveBuffer::grow`]) raises the capacity without copying.

use core::fmt;

use super::assembler::Assembler;
use super::send_buffer::{adopt_into, MIN_RING};

/// Fixed-capacity reassembly ring. See the module docs.
pub struct ReceiveBuffer {
    /// The ring: empty until the first byte is stored, then grown to hold
    /// what is stored, up to `capacity` (see [`ReceiveBuffer::reserve`]).
    buf: Box<[u8]>,
    /// Bytes the window may promise: readable plus storable.
    capacity: usize,
    /// Ring index of the first unread byte. `< buf.len()`, or 0 when the
    /// ring is not allocated yet.
    head: usize,
    /// Contiguous readable bytes from `head`.
    len: usize,
    /// Out-of-order ranges, as offsets from the contiguous end. Invariant:
    /// every range ends at or below `window()`, and none starts at 0 (it
    /// would have been merged into the contiguous part). `None` until the
    /// first out-of-order segment (then kept, so reordering in steady state
    /// does not allocate).
    ooo: Option<Box<Assembler>>,
}

/// What [`ReceiveBuffer::out_of_order`] shows before anything arrived out of order.
static NO_RANGES: Assembler = Assembler::new();

impl ReceiveBuffer {
    /// A buffer of `capacity` bytes, allocated when the first byte is stored.
    pub fn with_capacity(capacity: usize) -> Self {
        ReceiveBuffer {
            buf: Box::default(),
            capacity,
            head: 0,
            len: 0,
            ooo: None,
        }
    }

    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Contiguous bytes ready for the application.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `capacity - len`: how far beyond the contiguous end data may be
    /// stored. This is the receive window to advertise, before window
    /// scaling and silly-window-syndrome avoidance are applied.
    #[inline]
    pub fn window(&self) -> usize {
        self.capacity() - self.len
    }

    /// Stores `data` whose first byte is `offset` bytes past the contiguous
    /// end (offset 0 = RCV.NXT).
    ///
    /// Bytes at or beyond [`ReceiveBuffer::window`] are dropped. Returns how
    /// many bytes the contiguous end advanced, i.e. how far RCV.NXT moves:
    /// the in-order bytes plus any out-of-order data they joined up with.
    /// Out-of-order data (`offset > 0`) therefore returns 0.
    ///
    /// If out-of-order data would need more ranges than the [`Assembler`]
    /// tracks, it is not stored at all (returns 0, nothing changes); the
    /// peer will retransmit it. Overlapping bytes (retransmissions) are
    /// written again: a conforming peer sends the same bytes, and either
    /// copy is the peer's data.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let window = self.window();
        if offset >= window || data.is_empty() {
            return 0;
        }
        let data = &data[..data.len().min(window - offset)];
        // RFC 9293 §3.8.6: the window offered is never taken back, so data
        // may arrive anywhere in it: the ring grows to take it.
        let end = self.len + offset + data.len();
        if end > self.buf.len() {
            self.reserve(end);
        }
        if offset == 0 {
            self.copy_in(self.len, data);
            self.len += data.len();
            let mut joined = 0;
            if let Some(ooo) = self.ooo.as_deref_mut().filter(|o| !o.is_empty()) {
                // Out-of-order ranges the new bytes overlapped are trimmed;
                // one that now starts at the contiguous end joins it.
                ooo.advance(data.len());
                joined = ooo.pop_contiguous();
            }
            self.len += joined;
            data.len() + joined
        } else {
            // Track first, copy second: if the range cannot be tracked the
            // ring is left untouched.
            let ooo = self.ooo.get_or_insert_with(|| Box::new(Assembler::new()));
            if ooo.add(offset, data.len()).is_err() {
                return 0;
            }
            self.copy_in(self.len + offset, data);
            0
        }
    }

    /// Copies up to `out.len()` contiguous bytes into `out`, consumes them
    /// and returns how many were copied.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let (a, b) = self.peek();
        let n1 = a.len().min(out.len());
        out[..n1].copy_from_slice(&a[..n1]);
        let n2 = b.len().min(out.len() - n1);
        out[n1..n1 + n2].copy_from_slice(&b[..n2]);
        self.consume(n1 + n2);
        n1 + n2
    }

    /// The contiguous bytes, in order, as up to two slices (the second is
    /// non-empty only when they cross the end of the ring).
    pub fn peek(&self) -> (&[u8], &[u8]) {
        let first = self.len.min(self.buf.len() - self.head);
        (
            &self.buf[self.head..self.head + first],
            &self.buf[..self.len - first],
        )
    }

    /// Releases `n` contiguous bytes (after [`ReceiveBuffer::peek`]); `n` is
    /// clamped to [`ReceiveBuffer::len`]. The window grows by `n`.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        if self.len == 0 && !self.has_out_of_order() {
            // Nothing is positioned relative to the head: restart at the
            // beginning so future data is more often one contiguous slice.
            self.head = 0;
        } else {
            self.head = self.ring_index(n);
        }
    }

    /// The out-of-order ranges, as offsets from the contiguous end (for SACK).
    #[inline]
    pub fn out_of_order(&self) -> &Assembler {
        self.ooo.as_deref().unwrap_or(&NO_RANGES)
    }

    #[inline]
    pub fn has_out_of_order(&self) -> bool {
        self.ooo.as_ref().is_some_and(|o| !o.is_empty())
    }

    /// Raises the capacity to `capacity` bytes (receive-window
    /// auto-tuning). The ring itself grows when data needs the room
    /// ([`ReceiveBuffer::reserve`]). A smaller `capacity` is ignored (the
    /// advertised window must never shrink).
    pub fn grow(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }

    /// Bytes of ring storage allocated (at most the capacity).
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Grows the ring so positions `[0, needed)` from the read position
    /// fit, `needed <= capacity`: the next power of two, at least
    /// [`MIN_RING`] and twice the old ring, at most the capacity. Every
    /// byte, readable and out-of-order, keeps its offset from the read
    /// position. This reallocates while a connection ramps up, never in
    /// steady state.
    #[cold]
    fn reserve(&mut self, needed: usize) {
        let old = self.buf.len();
        let size = needed
            .next_power_of_two()
            .max(MIN_RING)
            .max(2 * old)
            .min(self.capacity);
        let mut ring = Vec::with_capacity(size);
        ring.extend_from_slice(&self.buf[self.head..]);
        ring.extend_from_slice(&self.buf[..self.head]);
        ring.resize(size, 0);
        self.buf = ring.into_boxed_slice();
        self.head = 0;
    }

    /// Drops all data, readable and out-of-order. Keeps the allocation.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        if let Some(ooo) = self.ooo.as_deref_mut() {
            ooo.clear();
        }
    }

    /// Returns the ring's storage (and the out-of-order ranges' box) to
    /// the allocator when nothing is held (a connection entering
    /// TIME-WAIT: it accepts no more data). A later arrival allocates
    /// afresh. Keeps the capacity, so the advertised window is unchanged.
    pub fn release_storage(&mut self) {
        drop(self.take_ring());
    }

    /// As [`release_storage`](Self::release_storage), but hands the ring
    /// to the caller (for a [`StoragePool`](super::storage_pool::StoragePool))
    /// instead of freeing it; `None` when nothing is allocated or bytes
    /// are held. The out-of-order tracker is freed either way.
    pub fn take_ring(&mut self) -> Option<Box<[u8]>> {
        if self.len == 0 && !self.has_out_of_order() {
            self.head = 0;
            self.ooo = None;
            (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
        } else {
            None
        }
    }

    /// Takes `ring` as this buffer's storage, instead of allocating at the
    /// first arrival, when none is allocated yet and the ring is within
    /// the capacity; otherwise hands it back. The ring's old bytes are
    /// never read: only bytes stored since are.
    pub fn adopt_ring(&mut self, ring: Box<[u8]>) -> Option<Box<[u8]>> {
        debug_assert!(!self.buf.is_empty() || self.len == 0);
        adopt_into(&mut self.buf, &mut self.head, self.capacity, ring)
    }

    /// Ring index of the byte `pos` bytes after the head, `pos <= buf.len()`.
    #[inline]
    fn ring_index(&self, pos: usize) -> usize {
        let i = self.head + pos;
        if i >= self.buf.len() {
            i - self.buf.len()
        } else {
            i
        }
    }

    /// Copies `data` to the ring starting `pos` bytes after the head.
    /// Callers guarantee `pos + data.len() <= buf.len()`.
    fn copy_in(&mut self, pos: usize, data: &[u8]) {
        let start = self.ring_index(pos);
        let first = data.len().min(self.buf.len() - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
    }
}

impl fmt::Debug for ReceiveBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiveBuffer")
            .field("capacity", &self.capacity())
            .field("allocated", &self.buf.len())
            .field("head", &self.head)
            .field("len", &self.len)
            .field("out_of_order", self.out_of_order())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::assembler::tests::check_invariants;
    use proptest::prelude::*;

    fn contents(b: &ReceiveBuffer) -> Vec<u8> {
        let (x, y) = b.peek();
        let mut v = x.to_vec();
        v.extend_from_slice(y);
        v
    }

    #[test]
    fn in_order() {
        let mut b = ReceiveBuffer::with_capacity(8);
        assert_eq!(b.window(), 8);
        assert_eq!(b.write_at(0, b"hello"), 5);
        assert_eq!(b.len(), 5);
        assert_eq!(b.window(), 3);
        let mut out = [0u8; 3];
        assert_eq!(b.read(&mut out), 3);
        assert_eq!(&out, b"hel");
        // Wraps around the ring end.
        assert_eq!(b.write_at(0, b"world!"), 6);
        assert_eq!(contents(&b), b"loworld!");
        let (x, y) = b.peek();
        assert!(!y.is_empty());
        assert_eq!(x.len() + y.len(), 8);
        assert_eq!(b.window(), 0);
        assert_eq!(b.write_at(0, b"x"), 0);
    }

    #[test]
    fn released_storage_comes_back_on_the_next_arrival() {
        let mut b = ReceiveBuffer::with_capacity(8192);
        assert_eq!(b.write_at(0, b"abc"), 3);
        b.release_storage();
        assert_eq!(b.allocated(), MIN_RING, "unread bytes: storage kept");
        let mut out = [0u8; 3];
        assert_eq!(b.read(&mut out), 3);
        assert_eq!(b.write_at(5, b"zz"), 0);
        b.release_storage();
        assert_eq!(b.allocated(), MIN_RING, "out-of-order bytes: storage kept");
        let mut c = ReceiveBuffer::with_capacity(8192);
        assert_eq!(c.write_at(0, b"abc"), 3);
        assert_eq!(c.read(&mut out), 3);
        c.release_storage();
        assert_eq!(c.allocated(), 0);
        assert_eq!(c.window(), 8192);
        assert_eq!(c.write_at(0, b"hello"), 5);
        assert_eq!(contents(&c), b"hello");
    }

    #[test]
    fn a_ring_moves_to_another_buffer() {
        let mut a = ReceiveBuffer::with_capacity(8192);
        assert_eq!(a.write_at(0, b"secret"), 6);
        assert!(a.take_ring().is_none(), "unread bytes: the ring stays");
        let mut out = [0u8; 6];
        assert_eq!(a.read(&mut out), 6);
        let ring = a.take_ring().unwrap();
        assert_eq!((ring.len(), a.allocated()), (MIN_RING, 0));
        let mut b = ReceiveBuffer::with_capacity(8192);
        assert!(b.adopt_ring(ring).is_none());
        assert_eq!(b.allocated(), MIN_RING);
        assert_eq!(b.write_at(2, b"cd"), 0);
        assert_eq!(b.write_at(0, b"ab"), 4);
        assert_eq!(contents(&b), b"abcd");
        let spare = vec![0; MIN_RING].into_boxed_slice();
        assert!(b.adopt_ring(spare).is_some(), "already allocated: refused");
        let mut small = ReceiveBuffer::with_capacity(100);
        let big = vec![0; MIN_RING].into_boxed_slice();
        assert!(
            small.adopt_ring(big).is_some(),
            "beyond the capacity: refused"
        );
    }

    #[test]
    fn out_of_order_then_fill() {
        let mut b = ReceiveBuffer::with_capacity(16);
        assert_eq!(b.write_at(4, b"efgh"), 0);
        assert_eq!(b.write_at(10, b"kl"), 0);
        assert!(b.has_out_of_order());
        assert_eq!(b.len(), 0);
        assert_eq!(
            b.out_of_order().iter().collect::<Vec<_>>(),
            [(4, 8), (10, 12)]
        );
        // Fills 0..5, overlapping the first range: joins through offset 8.
        assert_eq!(b.write_at(0, b"abcde"), 8);
        assert_eq!(contents(&b), b"abcdefgh");
        assert_eq!(b.out_of_order().iter().collect::<Vec<_>>(), [(2, 4)]);
        assert_eq!(b.write_at(0, b"ij"), 4);
        assert_eq!(contents(&b), b"abcdefghijkl");
        assert!(!b.has_out_of_order());
    }

    #[test]
    fn window_trims() {
        let mut b = ReceiveBuffer::with_capacity(8);
        assert_eq!(b.write_at(6, b"xyz"), 0);
        assert_eq!(b.out_of_order().iter().collect::<Vec<_>>(), [(6, 8)]);
        assert_eq!(b.write_at(8, b"q"), 0);
        assert_eq!(b.write_at(usize::MAX, b"q"), 0);
        // Overlapping bytes are rewritten: the later copy wins (a
        // conforming peer sends the same bytes anyway).
        assert_eq!(b.write_at(0, b"abcdefghij"), 8);
        assert_eq!(contents(&b), b"abcdefgh");
        b.consume(usize::MAX);
        assert!(b.is_empty());
        assert_eq!(b.window(), 8);
    }

    #[test]
    fn too_many_ranges_stores_nothing() {
        let cap = 4 * Assembler::MAX_RANGES + 16;
        let mut b = ReceiveBuffer::with_capacity(cap);
        for i in 0..Assembler::MAX_RANGES {
            assert_eq!(b.write_at(2 + 2 * i, &[b'A' + i as u8]), 0);
        }
        let far = 2 + 2 * Assembler::MAX_RANGES + 5;
        assert_eq!(b.write_at(far, b"zz"), 0);
        assert_eq!(b.out_of_order().len(), Assembler::MAX_RANGES);
        assert_eq!(
            b.out_of_order().highest_end(),
            2 * Assembler::MAX_RANGES + 1
        );
        // In-order data still flows and joins the first range.
        assert_eq!(b.write_at(0, b"01"), 3);
        assert_eq!(contents(&b), b"01A");
        b.clear();
        assert!(b.is_empty() && !b.has_out_of_order());
    }

    #[test]
    fn grow_keeps_readable_and_out_of_order_bytes() {
        let mut b = ReceiveBuffer::with_capacity(8);
        assert_eq!(b.write_at(0, b"abcdef"), 6);
        b.consume(4);
        // Wraps: "ef" + "ghi" in order, "k" out of order at offset 1.
        assert_eq!(b.write_at(0, b"ghi"), 3);
        assert_eq!(b.write_at(1, b"k"), 0);
        b.grow(16);
        assert_eq!(b.capacity(), 16);
        assert_eq!(contents(&b), b"efghi");
        assert_eq!(b.window(), 11);
        assert_eq!(b.write_at(0, b"j"), 2);
        assert_eq!(contents(&b), b"efghijk");
        assert_eq!(b.write_at(0, b"lmnopqrstu"), 9);
        assert_eq!(b.window(), 0);
        b.grow(4);
        assert_eq!(b.capacity(), 16);
    }

    #[test]
    fn the_ring_grows_with_what_is_stored() {
        let cap = 256 * 1024;
        let mut b = ReceiveBuffer::with_capacity(cap);
        assert_eq!(b.allocated(), 0);
        // A short connection's request: the smallest ring, the full window.
        assert_eq!(b.write_at(0, &[7; 64]), 64);
        assert_eq!(b.allocated(), MIN_RING);
        assert_eq!(b.window(), cap - 64);
        // Wrap the small ring, then store out of order far beyond it.
        b.consume(60);
        let data: Vec<u8> = (0..MIN_RING as u32).map(|i| i as u8).collect();
        assert_eq!(b.write_at(0, &data[..MIN_RING - 10]), MIN_RING - 10);
        assert_eq!(b.allocated(), MIN_RING);
        assert_eq!(b.write_at(20_000, b"far"), 0);
        assert_eq!(b.allocated(), 32 * 1024);
        let mut expect = vec![7; 4];
        expect.extend_from_slice(&data[..MIN_RING - 10]);
        assert_eq!(contents(&b), expect);
        // The gap fills: everything up to the far bytes joins, in order.
        let gap: Vec<u8> = vec![9; 20_000];
        assert_eq!(b.write_at(0, &gap), 20_003);
        let all = contents(&b);
        assert_eq!(&all[..expect.len()], &expect[..]);
        assert_eq!(&all[all.len() - 3..], b"far");
        // Auto-tuning raises the capacity without touching the ring.
        b.grow(4 * cap);
        assert_eq!(b.allocated(), 32 * 1024);
        assert_eq!(b.window(), 4 * cap - all.len());
    }

    #[test]
    fn zero_capacity() {
        let mut b = ReceiveBuffer::with_capacity(0);
        assert_eq!(b.write_at(0, b"abc"), 0);
        assert_eq!(b.write_at(1, b"abc"), 0);
        assert_eq!(b.read(&mut [0; 4]), 0);
        assert_eq!(b.peek(), (&[][..], &[][..]));
        b.consume(1);
    }

    /// The byte at absolute stream position `p`: a conforming peer always
    /// sends the same byte for the same position.
    fn byte_at(p: usize) -> u8 {
        (p.wrapping_mul(31) ^ (p >> 8)) as u8
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// (offset from RCV.NXT, length)
        Write(usize, usize),
        Read(usize),
        PeekConsume(usize),
    }

    fn op(cap: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..cap + cap / 2 + 2, 0..=cap / 3 + 2).prop_map(|(o, l)| Op::Write(o, l)),
            3 => (1..cap + 2, 0..3usize).prop_map(|(o, l)| Op::Write(o, l)),
            2 => (0..=cap + 1).prop_map(Op::Read),
            1 => (0..=cap + 1).prop_map(Op::PeekConsume),
        ]
    }

    /// Mostly tiny scattered segments: drives the assembler to its range
    /// limit, with occasional in-order data and reads.
    fn confetti_op(cap: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            12 => (1..cap + 2, 1..3usize).prop_map(|(o, l)| Op::Write(o, l)),
            1 => (0..cap / 8 + 2).prop_map(|l| Op::Write(0, l)),
            1 => (0..=cap / 4).prop_map(Op::Read),
        ]
    }

    fn ops() -> impl Strategy<Value = (usize, Vec<Op>)> {
        prop_oneof![
            // The last range grows the ring (MIN_RING, doubling, a
            // capacity that is not a power of two) with data in it.
            prop_oneof![
                Just(0usize),
                1..20usize,
                64..300usize,
                3 * MIN_RING..5 * MIN_RING
            ]
            .prop_flat_map(|cap| { (Just(cap), proptest::collection::vec(op(cap), 0..300)) }),
            (100..400usize).prop_flat_map(|cap| {
                (
                    Just(cap),
                    proptest::collection::vec(confetti_op(cap), 0..300),
                )
            }),
        ]
    }

    /// Oracle: the set of received absolute positions beyond RCV.NXT
    /// (`Vec<Option<u8>>` indexed from RCV.NXT), RCV.NXT and the read
    /// position, all as absolute stream offsets.
    struct Oracle {
        cap: usize,
        read_pos: usize,
        nxt: usize,
        ahead: Vec<Option<u8>>,
    }

    impl Oracle {
        fn runs(ahead: &[Option<u8>]) -> Vec<(usize, usize)> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < ahead.len() {
                if ahead[i].is_some() {
                    let s = i;
                    while i < ahead.len() && ahead[i].is_some() {
                        i += 1;
                    }
                    out.push((s, i));
                } else {
                    i += 1;
                }
            }
            out
        }

        fn write(&mut self, offset: usize, len: usize) -> usize {
            let window = self.cap - (self.nxt - self.read_pos);
            let end = (offset + len).min(window);
            if offset >= end {
                return 0;
            }
            let mut next = self.ahead.clone();
            if next.len() < end {
                next.resize(end, None);
            }
            for (i, slot) in next.iter_mut().enumerate().take(end).skip(offset) {
                *slot = Some(byte_at(self.nxt + i));
            }
            if offset > 0 && Self::runs(&next).len() > Assembler::MAX_RANGES {
                return 0;
            }
            let advanced = next.iter().take_while(|b| b.is_some()).count();
            next.drain(..advanced);
            self.ahead = next;
            self.nxt += advanced;
            advanced
        }
    }

    proptest! {
        /// Random writes (in order, out of order, overlapping, duplicate,
        /// beyond the window), reads and consumes deliver exactly the
        /// oracle's in-order stream, and the out-of-order ranges are exactly
        /// the oracle's runs, within the assembler's bounds.
        #[test]
        fn model((cap, ops) in ops(), recycled in any::<bool>()) {
            let mut b = ReceiveBuffer::with_capacity(cap);
            if recycled {
                // A pooled ring holds another connection's bytes: none of
                // them may ever show (a ring too big for the capacity is
                // refused).
                let refused = b.adopt_ring(vec![0xee; MIN_RING].into_boxed_slice());
                prop_assert_eq!(refused.is_some(), cap < MIN_RING);
            }
            let mut o = Oracle { cap, read_pos: 0, nxt: 0, ahead: Vec::new() };
            for op in ops {
                match op {
                    Op::Write(off, len) => {
                        let data: Vec<u8> = (0..len).map(|i| byte_at(o.nxt + off + i)).collect();
                        let got = b.write_at(off, &data);
                        let expect = o.write(off, len);
                        prop_assert_eq!(got, expect);
                    }
                    Op::Read(n) => {
                        let mut out = vec![0u8; n];
                        let got = b.read(&mut out);
                        let expect = n.min(o.nxt - o.read_pos);
                        prop_assert_eq!(got, expect);
                        for (i, &x) in out[..got].iter().enumerate() {
                            prop_assert_eq!(x, byte_at(o.read_pos + i));
                        }
                        o.read_pos += got;
                    }
                    Op::PeekConsume(n) => {
                        let all = contents(&b);
                        prop_assert_eq!(all.len(), o.nxt - o.read_pos);
                        for (i, &x) in all.iter().enumerate() {
                            prop_assert_eq!(x, byte_at(o.read_pos + i));
                        }
                        b.consume(n);
                        o.read_pos += n.min(all.len());
                    }
                }
                prop_assert_eq!(b.len(), o.nxt - o.read_pos);
                prop_assert_eq!(b.window(), cap - b.len());
                check_invariants(b.out_of_order()).map_err(TestCaseError::fail)?;
                prop_assert_eq!(
                    b.out_of_order().iter().collect::<Vec<_>>(),
                    Oracle::runs(&o.ahead)
                );
                prop_assert!(b.out_of_order().highest_end() <= b.window());
                prop_assert!(b.allocated() <= cap);
                // Every out-of-order byte stored is the right one.
                for (s, e) in b.out_of_order().iter() {
                    for off in s..e {
                        let idx = b.ring_index(b.len() + off);
                        prop_assert_eq!(b.buf[idx], byte_at(o.nxt + off));
                    }
                }
            }
            // Drain: the full stream comes out in order.
            let mut rest = vec![0u8; cap];
            let n = b.read(&mut rest);
            prop_assert_eq!(n, o.nxt - o.read_pos);
            for (i, &x) in rest[..n].iter().enumerate() {
                prop_assert_eq!(x, byte_at(o.read_pos + i));
            }
        }
    }
}
