//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The checksum is the 16-bit ones'-complement of the ones'-complement sum
//! of the data taken as big-endian 16-bit words. Two properties from
//! RFC 1071 §2 make it fast to compute:
//!
//! * (B) byte-order independence: summing the words in the machine's native
//!   byte order and swapping the folded result once gives the same answer as
//!   summing big-endian words;
//! * (C) parallel summation: wider words may be summed (carries out of bit 15
//!   are not lost, only deferred) and folded down to 16 bits at the end.
//!
//! So [`Checksum::add_bytes`] sums native-endian 64-bit words into a 128-bit
//! accumulator (an add and an add-with-carry per word) and folds once per call.

use std::net::Ipv4Addr;

/// A running ones'-complement sum of 16-bit big-endian words.
///
/// The accumulator holds the sum of the values added so far with the carries
/// not yet folded back in; [`fold`](Self::fold) and
/// [`finish`](Self::finish) reduce it. Adding in any order gives the same
/// result (ones'-complement addition is commutative and associative).
#[derive(Clone, Copy, Default, Debug)]
pub struct Checksum {
    acc: u64,
}

/// Folds a wide ones'-complement sum to 16 bits by adding the carries back in
/// (end-around carry), RFC 1071 §2(C).
#[inline]
fn fold64(mut sum: u64) -> u16 {
    // Two steps bring any u64 below 2^17 + 2^16; two more settle the last
    // carries. A fixed number of steps keeps this branch-free.
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Folded ones'-complement sum of `data` read as native-endian 16-bit words,
/// an odd trailing byte padded with a zero byte (in stream order).
///
/// Native 64-bit words are summed into a `u128`: each add is an `add` plus
/// an `adc` into the high half, which counts the carries out of bit 63.
/// Those carries have weight 2^64 ≡ 1 (mod 2^16 − 1), so the high half is
/// simply added back at the end (RFC 1071 §2(C)). A `u128` cannot overflow
/// for any slice that fits in memory. This is about 0.37 instructions per
/// byte, against 0.6 for summing zero-extended 32-bit words into a `u64`
/// (callgrind, docs/PERFORMANCE.md), and faster in wall time too.
#[inline]
fn sum_native_scalar(data: &[u8]) -> u16 {
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        u128::from(u64::from_ne_bytes(w))
    };
    // Two accumulators: each `adc` waits for the previous one's carry, so
    // one chain is bound to a word per cycle; two chains halve that
    // latency for the same instruction count.
    let (mut even, mut odd): (u128, u128) = (0, 0);
    let mut blocks = data.chunks_exact(32);
    for b in blocks.by_ref() {
        even += word(&b[0..8]) + word(&b[16..24]);
        odd += word(&b[8..16]) + word(&b[24..32]);
    }
    let mut acc = even + odd;
    let mut words = blocks.remainder().chunks_exact(8);
    for w in words.by_ref() {
        acc += word(w);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        // Pad the 1..=7 trailing bytes with zeros *after* them, which is
        // exactly RFC 1071's zero padding of an odd final byte.
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        acc += word(&tail);
    }
    let (sum, carry) = (acc as u64).overflowing_add((acc >> 64) as u64);
    fold64(u64::from(fold64(sum)) + u64::from(carry))
}

/// Slices shorter than this are summed by the scalar code: below it the
/// vector path's set-up (feature check, lane fold) costs more than it saves.
#[cfg(target_arch = "x86_64")]
const VECTOR_MIN_LEN: usize = 256;

/// Folded ones'-complement sum of `data` read as native-endian 16-bit
/// words, as [`sum_native_scalar`]: whole 64-byte blocks with AVX2 when the
/// CPU has it (`checksum_avx2`), the rest (and everything on other CPUs)
/// with the scalar code. The blocks end at an even offset, so the two
/// sums add up to the sum of the whole (RFC 1071 §2(A), (C)).
#[inline]
fn sum_native(data: &[u8]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= VECTOR_MIN_LEN {
        let split = data.len() - data.len() % super::checksum_avx2::BLOCK;
        if let Some(wide) = super::checksum_avx2::sum_words(&data[..split]) {
            let rest = sum_native_scalar(&data[split..]);
            return fold64(u64::from(fold64(wide)) + u64::from(rest));
        }
    }
    sum_native_scalar(data)
}

/// Converts a folded native-order sum to the big-endian domain (RFC 1071
/// §2(B): the sum of byte-swapped words is the byte-swapped sum).
#[inline]
fn native_to_be(sum: u16) -> u16 {
    u16::from_be_bytes(sum.to_ne_bytes())
}

impl Checksum {
    /// An empty sum.
    #[inline]
    pub fn new() -> Self {
        Checksum { acc: 0 }
    }

    /// Adds `data` to the sum.
    ///
    /// `data` is taken to start at an even offset of the summed stream, and
    /// an odd-length `data` is padded with one zero byte (RFC 1071 §4.1). So
    /// a stream may be fed in several calls, but every slice except the last
    /// must have even length; otherwise the next slice's bytes land in the
    /// wrong half of their words. (To continue at an odd offset, checksum the
    /// continuation on its own and add the byte-swapped
    /// [`fold`](Self::fold): see [`add_bytes_at_odd_offset`](Self::add_bytes_at_odd_offset).)
    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) {
        self.acc += u64::from(native_to_be(sum_native(data)));
    }

    /// Adds `data` as if it began at an *odd* offset of the summed stream,
    /// i.e. directly after an odd-length slice passed to
    /// [`add_bytes`](Self::add_bytes) (whose zero padding byte is where
    /// `data`'s first byte belongs).
    ///
    /// Each byte's weight in the sum swaps between 2^8 and 1 when the offset
    /// shifts by one; because 2^8 · 2^8 ≡ 1 (mod 2^16 − 1), that is the same
    /// as multiplying the whole sum by 2^8, which is a byte swap of the folded
    /// value.
    #[inline]
    pub fn add_bytes_at_odd_offset(&mut self, data: &[u8]) {
        self.acc += u64::from(native_to_be(sum_native(data)).swap_bytes());
    }

    /// Adds one 16-bit word (host value, summed as its big-endian encoding).
    #[inline]
    pub fn add_u16(&mut self, v: u16) {
        self.acc += u64::from(v);
    }

    /// Adds a 32-bit value as its two big-endian 16-bit words.
    #[inline]
    pub fn add_u32(&mut self, v: u32) {
        self.acc += u64::from(v >> 16) + u64::from(v & 0xffff);
    }

    /// Adds another running sum into this one.
    #[inline]
    pub fn add_checksum(&mut self, other: &Checksum) {
        self.acc += u64::from(other.fold());
    }

    /// The folded 16-bit ones'-complement sum (not complemented).
    #[inline]
    pub fn fold(&self) -> u16 {
        fold64(self.acc)
    }

    /// `!fold()`: the value to write into a checksum field that was zero
    /// while summing. Summing a packet *including* a correct checksum field
    /// gives `finish() == 0`, which is how a receiver verifies.
    #[inline]
    pub fn finish(&self) -> u16 {
        !self.fold()
    }
}

/// The Internet checksum of `data` (RFC 1071): the value to store in a
/// zeroed checksum field, or 0 when `data` includes a correct one.
#[inline]
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(data);
    c.finish()
}

/// [`internet_checksum`] of a 20-byte IPv4 header without options, the
/// header of nearly every packet: five native 32-bit words summed into a
/// `u64` (each is two 16-bit words, and 2^16 ≡ 1 modulo 2^16 − 1, RFC 1071
/// §2(C)), with none of the general loop's set-up.
#[inline]
pub fn internet_checksum_20(data: &[u8; 20]) -> u16 {
    let word = |i: usize| {
        u64::from(u32::from_ne_bytes([
            data[i],
            data[i + 1],
            data[i + 2],
            data[i + 3],
        ]))
    };
    let sum = word(0) + word(4) + word(8) + word(12) + word(16);
    !native_to_be(fold64(sum))
}

/// The running sum of the IPv4 pseudo-header that TCP and UDP checksums
/// cover (RFC 9293 §3.1, "Checksum"): source and destination address, a
/// zero byte, the protocol number, and the transport length (header plus
/// data) in bytes.
#[inline]
pub fn ipv4_pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> Checksum {
    let mut c = Checksum::new();
    c.add_u32(u32::from(src));
    c.add_u32(u32::from(dst));
    c.add_u16(u16::from(protocol));
    c.add_u16(length);
    c
}

/// The checksum after one 16-bit word covered by it changes from `old_word`
/// to `new_word`, without touching the rest of the data.
///
/// RFC 1624 §3, eqn. 3: `HC' = ~(~HC + ~m + m')` (RFC 1141's `HC + m + ~m'`,
/// eqn. 2, can yield a 0xFFFF that recomputation never does). Given a correct
/// `old_checksum`, the result equals recomputing from scratch, except when
/// the new data is all zeros: then recomputation gives 0xFFFF and this gives
/// 0x0000, two encodings of zero that verify identically.
#[inline]
pub fn incremental_update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    let sum = u64::from(!old_checksum) + u64::from(!old_word) + u64::from(new_word);
    !fold64(sum)
}

/// [`incremental_update`] for a 32-bit field (e.g. an IPv4 address or a TCP
/// sequence number), treated as its two big-endian 16-bit words.
#[inline]
pub fn incremental_update_u32(old_checksum: u16, old: u32, new: u32) -> u16 {
    // RFC 1624 eqn. 3 with two words changed: ~HC + ~m1 + ~m2 + m1' + m2'.
    let sum = u64::from(!old_checksum)
        + u64::from(!(old >> 16) as u16)
        + u64::from(!(old as u16))
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold64(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook algorithm: big-endian byte pairs, end-around carry per
    /// addition, odd final byte padded with zero.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let word = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
            sum += word;
            if sum > 0xffff {
                sum = (sum & 0xffff) + 1;
            }
        }
        sum as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut c = Checksum::new();
        c.add_bytes(&data);
        assert_eq!(c.fold(), 0xddf2);
        assert_eq!(c.finish(), !0xddf2);
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A widely quoted IPv4 header whose checksum field is b861.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&hdr), 0);
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(internet_checksum(&hdr), 0xb861);
    }

    #[test]
    fn empty_and_odd() {
        assert_eq!(Checksum::new().fold(), 0);
        assert_eq!(internet_checksum(&[]), 0xffff);
        // A lone byte is the high half of a zero-padded word.
        let mut c = Checksum::new();
        c.add_bytes(&[0xab]);
        assert_eq!(c.fold(), 0xab00);
        // Three bytes: one word plus a padded one.
        let mut c = Checksum::new();
        c.add_bytes(&[0x12, 0x34, 0x56]);
        assert_eq!(c.fold(), 0x1234 + 0x5600);
    }

    #[test]
    fn words_and_bytes_agree() {
        let mut a = Checksum::new();
        a.add_u32(0xc0a8_0001);
        a.add_u16(0x0006);
        let mut b = Checksum::new();
        b.add_bytes(&[0xc0, 0xa8, 0x00, 0x01, 0x00, 0x06]);
        assert_eq!(a.fold(), b.fold());
    }

    #[test]
    fn pseudo_header_layout() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(10, 0, 0, 2);
        let c = ipv4_pseudo_header(src, dst, 6, 40);
        let bytes = [10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 40];
        assert_eq!(c.fold(), reference_sum(&bytes));
    }

    #[test]
    fn all_ones_folds_to_negative_zero() {
        let data = [0xffu8; 64];
        assert_eq!(reference_sum(&data), 0xffff);
        let mut c = Checksum::new();
        c.add_bytes(&data);
        assert_eq!(c.fold(), 0xffff);
    }

    #[test]
    fn incremental_examples() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 → m' = 0x3285 gives 0x0000.
        assert_eq!(incremental_update(0xdd2f, 0x5555, 0x3285), 0x0000);
        // A no-op change leaves a non-zero checksum alone.
        assert_eq!(incremental_update(0x1234, 0xabcd, 0xabcd), 0x1234);
    }

    /// Whether two checksums verify alike: equal, or both encodings of zero.
    fn same_checksum(a: u16, b: u16) -> bool {
        a == b || (a | b == 0xffff && (a == 0 || b == 0))
    }

    /// The vector sum against the scalar one, and both against the
    /// reference, on the lengths where the paths split.
    #[cfg(target_arch = "x86_64")]
    fn check_vector_and_scalar(data: &[u8]) {
        assert_eq!(sum_native_scalar(data), native_reference(data));
        assert_eq!(sum_native(data), native_reference(data));
        let whole = data.len() - data.len() % crate::wire::checksum_avx2::BLOCK;
        if let Some(wide) = crate::wire::checksum_avx2::sum_words(&data[..whole]) {
            assert_eq!(fold64(wide), sum_native_scalar(&data[..whole]));
        }
    }

    /// `reference_sum` in the native byte order `sum_native` works in.
    #[cfg(target_arch = "x86_64")]
    fn native_reference(data: &[u8]) -> u16 {
        native_to_be(reference_sum(data))
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn vector_sum_edges() {
        for len in [
            0, 1, 63, 64, 65, 255, 256, 257, 319, 320, 1448, 1468, 1500, 9000,
        ] {
            let ones = vec![0xffu8; len];
            check_vector_and_scalar(&ones);
            let ramp: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            check_vector_and_scalar(&ramp);
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn vector_sum_does_not_overflow_its_lanes() {
        // More than one run of 65 536 blocks of all-ones words: a lane
        // that overflowed would lose 2^32 and change the sum.
        let big = vec![0xffu8; 64 * 65_536 * 2 + 64 * 3 + 5];
        check_vector_and_scalar(&big);
        let mut c = Checksum::new();
        c.add_bytes(&big);
        assert_eq!(c.fold(), reference_sum(&big));
    }

    proptest! {
        #[test]
        #[cfg(target_arch = "x86_64")]
        fn vector_and_scalar_sums_agree(
            buf in proptest::collection::vec(any::<u8>(), 0..4200),
            start in 0usize..64,
        ) {
            check_vector_and_scalar(&buf[start.min(buf.len())..]);
        }

        #[test]
        fn twenty_byte_checksum_matches_general(data in any::<[u8; 20]>()) {
            prop_assert_eq!(internet_checksum_20(&data), internet_checksum(&data));
        }

        #[test]
        fn word_at_a_time_matches_reference(
            buf in proptest::collection::vec(any::<u8>(), 0..2100),
            start in 0usize..8,
        ) {
            // Slicing at `start` exercises unaligned starting addresses.
            let data = &buf[start.min(buf.len())..];
            let mut c = Checksum::new();
            c.add_bytes(data);
            prop_assert_eq!(c.fold(), reference_sum(data));
            prop_assert_eq!(internet_checksum(data), !reference_sum(data));
        }

        #[test]
        fn split_at_even_offsets_is_invariant(
            data in proptest::collection::vec(any::<u8>(), 0..1600),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| (c % (data.len() + 1)) & !1).collect();
            points.sort_unstable();
            let mut c = Checksum::new();
            let mut prev = 0;
            for p in points {
                c.add_bytes(&data[prev..p]);
                prev = p;
            }
            c.add_bytes(&data[prev..]);
            prop_assert_eq!(c.fold(), reference_sum(&data));
        }

        #[test]
        fn odd_offset_continuation(
            a in proptest::collection::vec(any::<u8>(), 0..300),
            b in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut whole = a.clone();
            whole.extend_from_slice(&b);
            let mut c = Checksum::new();
            c.add_bytes(&a);
            if a.len() % 2 == 1 {
                c.add_bytes_at_odd_offset(&b);
            } else {
                c.add_bytes(&b);
            }
            prop_assert_eq!(c.fold(), reference_sum(&whole));
        }

        #[test]
        fn incremental_matches_recomputation(
            words in proptest::collection::vec(any::<u16>(), 1..200),
            index in any::<usize>(),
            new_word in any::<u16>(),
        ) {
            let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
            let i = index % words.len();
            let old_ck = internet_checksum(&bytes(&words));
            let mut changed = words.clone();
            changed[i] = new_word;
            let recomputed = internet_checksum(&bytes(&changed));
            let updated = incremental_update(old_ck, words[i], new_word);
            if changed.iter().any(|&w| w != 0) {
                prop_assert_eq!(updated, recomputed);
            } else {
                prop_assert!(same_checksum(updated, recomputed));
            }
        }

        #[test]
        fn incremental_u32_matches_recomputation(
            words in proptest::collection::vec(any::<u16>(), 2..200),
            index in any::<usize>(),
            new in any::<u32>(),
        ) {
            let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
            let i = index % (words.len() - 1);
            let old = u32::from(words[i]) << 16 | u32::from(words[i + 1]);
            let old_ck = internet_checksum(&bytes(&words));
            let mut changed = words.clone();
            changed[i] = (new >> 16) as u16;
            changed[i + 1] = new as u16;
            let recomputed = internet_checksum(&bytes(&changed));
            let updated = incremental_update_u32(old_ck, old, new);
            if changed.iter().any(|&w| w != 0) {
                prop_assert_eq!(updated, recomputed);
            } else {
                prop_assert!(same_checksum(updated, recomputed));
            }
        }
    }
}
