//! TCP sequence numbers: 32-bit values compared modulo 2^32.
//!
//! RFC 9293 §3.4: "all arithmetic dealing with sequence numbers must be
//! performed modulo 2**32" and comparisons use the signed distance, so a
//! number is "less than" another when it lies less than 2^31 behind it.
//! Every sequence-number computation in the crate goes through this type;
//! no other module does raw `u32` arithmetic on sequence numbers.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence (or acknowledgment) number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Signed distance from `other` to `self`: positive when `self` is ahead.
    #[inline]
    pub fn wrapping_diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Bytes from `earlier` up to `self`; 0 when `self` is not after `earlier`.
    ///
    /// Used where a negative distance means "nothing" (e.g. newly acked bytes).
    #[inline]
    pub fn since(self, earlier: SeqNum) -> usize {
        let d = self.wrapping_diff(earlier);
        if d > 0 {
            d as usize
        } else {
            0
        }
    }

    #[inline]
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self > other {
            self
        } else {
            other
        }
    }

    #[inline]
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self < other {
            self
        } else {
            other
        }
    }

    /// `start <= self < start + len` in sequence space (RFC 9293 §3.4 window test).
    #[inline]
    pub fn in_window(self, start: SeqNum, len: usize) -> bool {
        let off = self.0.wrapping_sub(start.0) as usize;
        off < len
    }

    /// `low <= self <= high` in sequence space.
    #[inline]
    pub fn between_inclusive(self, low: SeqNum, high: SeqNum) -> bool {
        low <= self && self <= high
    }
}

impl Add<usize> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn add(self, rhs: usize) -> SeqNum {
        // Lengths added to sequence numbers are window- or buffer-sized,
        // always far below 2^31; truncation keeps modulo semantics.
        SeqNum(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<usize> for SeqNum {
    #[inline]
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<usize> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn sub(self, rhs: usize) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs as u32))
    }
}

impl PartialOrd for SeqNum {
    #[inline]
    fn partial_cmp(&self, other: &SeqNum) -> Option<Ordering> {
        Some(self.wrapping_diff(*other).cmp(&0))
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_around_zero() {
        let a = SeqNum(u32::MAX - 10);
        let b = a + 20;
        assert_eq!(b, SeqNum(9));
        assert!(a < b);
        assert_eq!(b.since(a), 20);
        assert_eq!(a.since(b), 0);
        assert!(SeqNum(5).in_window(a, 20));
        assert!(!SeqNum(9).in_window(a, 20));
    }

    proptest! {
        #[test]
        fn add_then_since_round_trips(x in any::<u32>(), n in 0usize..(1 << 31) - 1) {
            let a = SeqNum(x);
            prop_assert_eq!((a + n).since(a), n);
            prop_assert_eq!((a + n) - n, a);
        }

        #[test]
        fn order_is_antisymmetric(x in any::<u32>(), y in any::<u32>()) {
            let (a, b) = (SeqNum(x), SeqNum(y));
            if a.wrapping_diff(b) != i32::MIN {
                prop_assert_eq!(a < b, b > a);
                prop_assert_eq!(a == b, a.partial_cmp(&b) == Some(core::cmp::Ordering::Equal));
            }
        }

        #[test]
        fn window_membership_matches_offsets(start in any::<u32>(), len in 0usize..1 << 30, off in 0usize..1 << 31) {
            let s = SeqNum(start);
            prop_assert_eq!((s + off).in_window(s, len), off < len);
        }

        #[test]
        fn max_min_agree_with_order(x in any::<u32>(), d in 0usize..(1 << 31) - 1) {
            let (a, b) = (SeqNum(x), SeqNum(x) + d);
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(a.min(b), a);
        }
    }
}
