//! The Internet checksum's word sum with AVX2, chosen at run time.
//!
//! The function is compiled twice by the `multiversion` crate, once with
//! AVX2 enabled, and the first call picks the version the CPU can run
//! (detected once, then an atomic load per call). That crate owns the
//! `unsafe` of calling a `#[target_feature]` function; this file has none.
//! The body is plain safe Rust that the compiler vectorizes (no
//! intrinsics); on a CPU without AVX2 it answers `None` and the caller
//! uses the scalar sum, which is faster there.
//!
//! Why: verifying the checksum of a full-sized segment was a third of the
//! engine's in-order receive path. The scalar sum in `checksum.rs` adds
//! 8 bytes per `add`/`adc` pair in two dependent carry chains; with AVX2
//! 16 bytes are one zero-extending load into eight 32-bit lanes and one
//! vector add, with no chain between blocks (docs/PERFORMANCE.md has the
//! instruction counts). The scalar sum stays as the fallback, and the tests in `checksum.rs`
//! compare the two (and a textbook reference) on random data.

use multiversion::multiversion;
use multiversion::target::target_cfg_f;

/// Bytes per vectorized block: 32 native-endian 16-bit words, each added
/// to its own 32-bit lane.
pub(super) const BLOCK: usize = 64;

/// Blocks summed before the lanes are folded into a `u64`: each lane gains
/// at most 0xFFFF per block, and 65 536 × 0xFFFF < 2^32, so no lane can
/// overflow in between.
const BLOCKS_PER_FOLD: usize = 1 << 16;

/// The sum, as a plain integer (carries not folded), of the native-endian
/// 16-bit words of `data`, whose length must be a multiple of [`BLOCK`];
/// `None` when the CPU lacks AVX2 (use the scalar sum then).
#[multiversion(targets("x86_64+avx2"))]
pub(super) fn sum_words(data: &[u8]) -> Option<u64> {
    debug_assert_eq!(data.len() % BLOCK, 0);
    if !target_cfg_f!(target_feature = "avx2") {
        return None;
    }
    let mut total = 0u64;
    for run in data.chunks(BLOCK * BLOCKS_PER_FOLD) {
        // The compiler turns this into a zero-extending load (`vpmovzxwd`,
        // 8 words to 8 lanes) and a vector add per 16 bytes, unrolled.
        // (Summing `(x & 0xffff) + (x >> 16)` of 32-bit words instead came
        // out at 13 instructions per block against 8 here.) Bytes past the
        // last whole block are ignored.
        let mut lanes = [0u32; BLOCK / 2];
        for block in run.chunks_exact(BLOCK) {
            for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(2)) {
                *lane += u32::from(u16::from_ne_bytes([word[0], word[1]]));
            }
        }
        total += lanes.iter().map(|&l| u64::from(l)).sum::<u64>();
    }
    Some(total)
}
