//! Out-of-order bookkeeping for reassembly: which byte ranges beyond the
//! contiguous prefix of the receive stream have arrived.
//!
//! Offsets are relative to the contiguous end (offset 0 = the first missing
//! byte = RCV.NXT), so the type never sees sequence numbers. The set is kept
//! as at most [`Assembler::MAX_RANGES`] sorted, disjoint, non-adjacent
//! `[start, end)` ranges in a fixed inline array: no heap allocation, and a
//! peer cannot make the receiver spend unbounded memory or time by sending a
//! confetti of tiny segments. A segment that would need one more range is
//! refused ([`TooManyRanges`]) and the caller drops it; the peer retransmits.
//!
//! The same ranges are what SACK blocks (RFC 2018) report.

use core::fmt;

/// An insertion would have needed more than [`Assembler::MAX_RANGES`]
/// ranges. The assembler is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRanges;

impl fmt::Display for TooManyRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "out-of-order data would need more than {} ranges",
            Assembler::MAX_RANGES
        )
    }
}

impl std::error::Error for TooManyRanges {}

/// Set of received byte ranges beyond the contiguous end. See the module docs.
///
/// Invariant: `ranges[..count]` is sorted ascending, every range is
/// non-empty, and consecutive ranges are separated by at least one missing
/// byte (`ranges[i].1 < ranges[i + 1].0`).
#[derive(Clone, PartialEq, Eq)]
pub struct Assembler {
    ranges: [(usize, usize); Assembler::MAX_RANGES],
    count: usize,
}

impl Default for Assembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Assembler {
    /// Upper bound on the number of disjoint ranges tracked.
    pub const MAX_RANGES: usize = 32;

    /// An empty assembler (nothing beyond the contiguous end).
    pub const fn new() -> Self {
        Assembler {
            ranges: [(0, 0); Assembler::MAX_RANGES],
            count: 0,
        }
    }

    /// Records that bytes `[offset, offset + len)` arrived, merging with any
    /// overlapping or adjacent ranges. `len == 0` is a no-op. The end is
    /// saturated at `usize::MAX` rather than overflowing.
    ///
    /// Fails, leaving the set unchanged, when the bytes touch no existing
    /// range and [`Assembler::MAX_RANGES`] ranges are already held.
    pub fn add(&mut self, offset: usize, len: usize) -> Result<(), TooManyRanges> {
        if len == 0 {
            return Ok(());
        }
        let start = offset;
        let end = offset.saturating_add(len);
        let n = self.count;
        // First range that ends at or after `start` (overlaps or touches on
        // its right), then one past the last range that starts at or before
        // `end`. Ranges `first..last` are the ones to merge with; a linear
        // scan over at most 32 entries beats a binary search here.
        let first = self.ranges[..n]
            .iter()
            .position(|&(_, e)| e >= start)
            .unwrap_or(n);
        let last = first
            + self.ranges[first..n]
                .iter()
                .position(|&(s, _)| s > end)
                .unwrap_or(n - first);
        if first == last {
            if n == Self::MAX_RANGES {
                return Err(TooManyRanges);
            }
            self.ranges.copy_within(first..n, first + 1);
            self.ranges[first] = (start, end);
            self.count += 1;
        } else {
            let merged = (
                start.min(self.ranges[first].0),
                end.max(self.ranges[last - 1].1),
            );
            self.ranges[first] = merged;
            self.ranges.copy_within(last..n, first + 1);
            self.count -= last - first - 1;
        }
        Ok(())
    }

    /// If a range starts at offset 0 (the gap at the contiguous end has
    /// been filled), removes it, moves the contiguous end past it (shifting
    /// the remaining ranges down) and returns its length; otherwise 0.
    pub fn pop_contiguous(&mut self) -> usize {
        if self.count == 0 || self.ranges[0].0 != 0 {
            return 0;
        }
        let n = self.ranges[0].1;
        self.ranges.copy_within(1..self.count, 0);
        self.count -= 1;
        for r in &mut self.ranges[..self.count] {
            r.0 -= n;
            r.1 -= n;
        }
        n
    }

    /// The contiguous end moved by `n` bytes that arrived in order: shifts
    /// every range down by `n`, trimming the part of a range that is now
    /// below the contiguous end and dropping ranges entirely below it. A
    /// range may then start at 0; [`Assembler::pop_contiguous`] takes it.
    pub fn advance(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let drop = self.ranges[..self.count]
            .iter()
            .position(|&(_, e)| e > n)
            .unwrap_or(self.count);
        self.ranges.copy_within(drop..self.count, 0);
        self.count -= drop;
        for r in &mut self.ranges[..self.count] {
            r.0 = r.0.saturating_sub(n);
            r.1 -= n;
        }
    }

    /// No out-of-order data is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of disjoint ranges held (at most [`Assembler::MAX_RANGES`]).
    #[inline]
    pub fn len(&self) -> usize {
        self.count
    }

    /// The ranges as `(start, end)` offsets, ascending, `end` exclusive.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (usize, usize)> + ExactSizeIterator + '_ {
        self.ranges[..self.count].iter().copied()
    }

    /// One past the highest received offset; 0 when empty.
    #[inline]
    pub fn highest_end(&self) -> usize {
        if self.count == 0 {
            0
        } else {
            self.ranges[self.count - 1].1
        }
    }

    /// Forgets all ranges.
    pub fn clear(&mut self) {
        self.count = 0;
    }
}

impl fmt::Debug for Assembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(s, e)| s..e))
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks the structural invariant; shared with the receive buffer tests.
    pub(crate) fn check_invariants(a: &Assembler) -> Result<(), String> {
        let v: Vec<_> = a.iter().collect();
        if v.len() > Assembler::MAX_RANGES {
            return Err(format!("{} ranges", v.len()));
        }
        for &(s, e) in &v {
            if s >= e {
                return Err(format!("empty range {s}..{e} in {a:?}"));
            }
        }
        for w in v.windows(2) {
            if w[0].1 >= w[1].0 {
                return Err(format!("unsorted/overlapping/adjacent: {a:?}"));
            }
        }
        Ok(())
    }

    fn ranges(a: &Assembler) -> Vec<(usize, usize)> {
        a.iter().collect()
    }

    #[test]
    fn add_merges() {
        let mut a = Assembler::new();
        assert!(a.is_empty());
        a.add(10, 5).unwrap();
        a.add(20, 5).unwrap();
        assert_eq!(ranges(&a), [(10, 15), (20, 25)]);
        // Adjacent on the right of the first range.
        a.add(15, 2).unwrap();
        assert_eq!(ranges(&a), [(10, 17), (20, 25)]);
        // Bridges both.
        a.add(16, 4).unwrap();
        assert_eq!(ranges(&a), [(10, 25)]);
        // Contained: no change.
        a.add(12, 3).unwrap();
        assert_eq!(ranges(&a), [(10, 25)]);
        // Covers everything and more.
        a.add(5, 30).unwrap();
        assert_eq!(ranges(&a), [(5, 35)]);
        // Adjacent on the left.
        a.add(3, 2).unwrap();
        assert_eq!(ranges(&a), [(3, 35)]);
        a.add(0, 1).unwrap();
        assert_eq!(ranges(&a), [(0, 1), (3, 35)]);
        assert_eq!(a.highest_end(), 35);
        // Zero length is a no-op, even where it would be a new range.
        a.add(100, 0).unwrap();
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn add_bridges_many() {
        let mut a = Assembler::new();
        for i in 0..10 {
            a.add(i * 10, 5).unwrap();
        }
        assert_eq!(a.len(), 10);
        a.add(3, 80).unwrap();
        assert_eq!(ranges(&a), [(0, 85), (90, 95)]);
    }

    #[test]
    fn add_saturates() {
        let mut a = Assembler::new();
        a.add(usize::MAX - 2, 10).unwrap();
        assert_eq!(ranges(&a), [(usize::MAX - 2, usize::MAX)]);
        a.add(usize::MAX, 10).unwrap();
        assert_eq!(ranges(&a), [(usize::MAX - 2, usize::MAX)]);
    }

    #[test]
    fn too_many_ranges() {
        let mut a = Assembler::new();
        for i in 0..Assembler::MAX_RANGES {
            a.add(1 + i * 3, 1).unwrap();
        }
        let before = a.clone();
        assert_eq!(a.add(1000, 1), Err(TooManyRanges));
        assert_eq!(a.add(0, 0), Ok(()));
        assert_eq!(a, before);
        // Joining existing ranges still works when full.
        a.add(2, 1).unwrap();
        assert_eq!(a.len(), Assembler::MAX_RANGES);
        a.add(3, 1).unwrap();
        assert_eq!(a.len(), Assembler::MAX_RANGES - 1);
        a.add(1000, 1).unwrap();
        check_invariants(&a).unwrap();
    }

    #[test]
    fn pop_and_advance() {
        let mut a = Assembler::new();
        a.add(4, 4).unwrap();
        a.add(10, 2).unwrap();
        assert_eq!(a.pop_contiguous(), 0);
        // In-order bytes 0..5 arrived: the first range is trimmed to 0..3.
        a.advance(5);
        assert_eq!(ranges(&a), [(0, 3), (5, 7)]);
        assert_eq!(a.pop_contiguous(), 3);
        assert_eq!(ranges(&a), [(2, 4)]);
        assert_eq!(a.pop_contiguous(), 0);
        // Past everything.
        a.advance(100);
        assert!(a.is_empty());
        assert_eq!(a.highest_end(), 0);
        a.add(1, 1).unwrap();
        a.advance(1);
        assert_eq!(ranges(&a), [(0, 1)]);
        a.advance(1);
        assert!(a.is_empty());
        a.add(3, 1).unwrap();
        a.clear();
        assert!(a.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(usize, usize),
        Pop,
        Advance(usize),
    }

    fn op(span: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..span, 0..8usize).prop_map(|(o, l)| Op::Add(o, l)),
            1 => Just(Op::Pop),
            1 => (0..12usize).prop_map(Op::Advance),
        ]
    }

    /// Maximal runs of `true` in `bits`, as `[start, end)`.
    fn runs(bits: &[bool]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < bits.len() {
            if bits[i] {
                let s = i;
                while i < bits.len() && bits[i] {
                    i += 1;
                }
                out.push((s, i));
            } else {
                i += 1;
            }
        }
        out
    }

    proptest! {
        /// Against a bitmap of received offsets: the ranges are always its
        /// maximal runs, and an add is refused exactly when the result would
        /// have more than MAX_RANGES runs.
        #[test]
        fn model(span in prop_oneof![Just(40usize), Just(200), Just(1000)],
                 ops in proptest::collection::vec(op(1000), 0..300)) {
            let mut a = Assembler::new();
            let mut bits: Vec<bool> = Vec::new();
            for op in ops {
                match op {
                    Op::Add(o, l) => {
                        let o = o % span;
                        let mut next = bits.clone();
                        if next.len() < o + l {
                            next.resize(o + l, false);
                        }
                        next[o..o + l].iter_mut().for_each(|b| *b = true);
                        let res = a.add(o, l);
                        if runs(&next).len() > Assembler::MAX_RANGES {
                            prop_assert_eq!(res, Err(TooManyRanges));
                        } else {
                            prop_assert_eq!(res, Ok(()));
                            bits = next;
                        }
                    }
                    Op::Pop => {
                        let n = bits.iter().take_while(|b| **b).count();
                        prop_assert_eq!(a.pop_contiguous(), n);
                        bits.drain(..n);
                    }
                    Op::Advance(n) => {
                        a.advance(n);
                        bits.drain(..n.min(bits.len()));
                    }
                }
                check_invariants(&a).map_err(TestCaseError::fail)?;
                let r = runs(&bits);
                prop_assert_eq!(ranges(&a), r.clone());
                prop_assert_eq!(a.highest_end(), r.last().map_or(0, |x| x.1));
            }
        }
    }
}
