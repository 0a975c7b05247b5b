//! Which SACK blocks a receiver reports (RFC 2018 §4, RFC 2883 §4).
//!
//! The out-of-order ranges themselves live in the reassembly queue
//! ([`Assembler`]); this module only remembers the *order* in which they
//! were reported and a pending D-SACK block:
//!
//! * the first block is the range holding the most recently received
//!   segment, the following ones the most recently reported other ranges
//!   (RFC 2018 §4), then, if room is left, the highest ranges never
//!   reported yet;
//! * a duplicate segment is reported once, as the first block of the next
//!   ACK (RFC 2883 §4), followed by the range that contained it, if any.
//!
//! The recency list holds one sequence number inside each reported range
//! (an anchor) rather than the range: ranges merge and RCV.NXT advances
//! over them, and an anchor is re-resolved against the current ranges
//! every time the blocks are built. Fixed arrays, no allocation.

use crate::tcp::assembler::Assembler;
use crate::wire::{SackBlocks, SeqNum};

/// Ranges remembered for recency: as many as one option can carry.
const RECENT: usize = SackBlocks::MAX;

/// Reported-block recency list plus a pending D-SACK. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct SackReporter {
    /// Anchors of recently reported ranges, most recent first.
    recent: [SeqNum; RECENT],
    count: usize,
    /// Duplicate bytes to report once (RFC 2883), `[left, right)`.
    dsack: Option<(SeqNum, SeqNum)>,
}

/// The current range (absolute sequence numbers) holding `anchor`, with its
/// index among the assembler's ranges.
fn resolve(anchor: SeqNum, rcv_nxt: SeqNum, ooo: &Assembler) -> Option<(usize, SeqNum, SeqNum)> {
    if anchor < rcv_nxt {
        return None;
    }
    let off = anchor.since(rcv_nxt);
    ooo.iter()
        .enumerate()
        .find(|&(_, (s, e))| s <= off && off < e)
        .map(|(i, (s, e))| (i, rcv_nxt + s, rcv_nxt + e))
}

impl SackReporter {
    pub fn new() -> SackReporter {
        SackReporter::default()
    }

    /// Out-of-order data starting at `seq` was received (or found already
    /// held): its range becomes the most recent one. Call after the data
    /// is in the reassembly queue.
    pub fn on_received(&mut self, seq: SeqNum, rcv_nxt: SeqNum, ooo: &Assembler) {
        let Some((index, ..)) = resolve(seq, rcv_nxt, ooo) else {
            return;
        };
        // Keep the others that still name a different live range.
        let mut kept = [SeqNum(0); RECENT];
        let mut n = 0;
        kept[n] = seq;
        n += 1;
        for &a in &self.recent[..self.count] {
            if n == RECENT {
                break;
            }
            if let Some((i, ..)) = resolve(a, rcv_nxt, ooo) {
                let duplicate = kept[..n]
                    .iter()
                    .any(|&k| resolve(k, rcv_nxt, ooo).is_some_and(|r| r.0 == i));
                if i != index && !duplicate {
                    kept[n] = a;
                    n += 1;
                }
            }
        }
        self.recent = kept;
        self.count = n;
    }

    /// A duplicate `[left, right)` arrived: report it in the next ACK.
    /// Duplicates of one batch that touch form one contiguous duplicate
    /// sequence, reported as one block (RFC 2883 §4), so a sender undoing
    /// a burst of spurious retransmissions learns of all of them; a
    /// separate later duplicate replaces the pending one (the newest
    /// matters most to the sender's undo logic).
    pub fn on_duplicate(&mut self, left: SeqNum, right: SeqNum) {
        if left >= right {
            return;
        }
        self.dsack = Some(match self.dsack {
            Some((l, r)) if left <= r && right >= l => (l.min(left), r.max(right)),
            _ => (left, right),
        });
    }

    pub fn dsack_pending(&self) -> bool {
        self.dsack.is_some()
    }

    /// The blocks for the next ACK, at most `max` of them.
    pub fn blocks(&self, rcv_nxt: SeqNum, ooo: &Assembler, max: usize) -> SackBlocks {
        let mut out = SackBlocks::new();
        let max = max.min(SackBlocks::MAX);
        if max == 0 {
            return out;
        }
        if let Some((l, r)) = self.dsack {
            out.push(l, r);
        }
        // Assembler indices already reported in this ACK (at most 4).
        let mut used = [usize::MAX; SackBlocks::MAX];
        let mut n_used = 0;
        for &a in &self.recent[..self.count] {
            if out.len() >= max {
                return out;
            }
            if let Some((i, l, r)) = resolve(a, rcv_nxt, ooo) {
                if !used[..n_used].contains(&i) {
                    out.push(l, r);
                    used[n_used] = i;
                    n_used += 1;
                }
            }
        }
        // Room left: ranges never reported (or forgotten), highest first.
        for (i, (s, e)) in ooo.iter().enumerate().rev() {
            if out.len() >= max {
                break;
            }
            if !used[..n_used].contains(&i) {
                out.push(rcv_nxt + s, rcv_nxt + e);
                if n_used < used.len() {
                    used[n_used] = i;
                    n_used += 1;
                }
            }
        }
        out
    }

    /// An ACK carrying `blocks` went out: a D-SACK it carried is done.
    pub fn on_sent(&mut self, blocks: &SackBlocks) {
        if let Some(d) = self.dsack {
            if blocks.as_slice().first() == Some(&d) {
                self.dsack = None;
            }
        }
    }

    /// Forgets everything (RCV.NXT passed every range, or the connection reset).
    pub fn clear(&mut self) {
        self.count = 0;
        self.dsack = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NXT: SeqNum = SeqNum(1000);

    fn blocks(r: &SackReporter, ooo: &Assembler, max: usize) -> Vec<(u32, u32)> {
        r.blocks(NXT, ooo, max)
            .iter()
            .map(|(l, r)| (l.0, r.0))
            .collect()
    }

    /// Receives `[off, off + len)` out of order.
    fn receive(r: &mut SackReporter, ooo: &mut Assembler, off: usize, len: usize) {
        ooo.add(off, len).unwrap();
        r.on_received(NXT + off, NXT, ooo);
    }

    #[test]
    fn most_recent_block_first_then_recently_reported() {
        let mut r = SackReporter::new();
        let mut ooo = Assembler::new();
        receive(&mut r, &mut ooo, 100, 10);
        receive(&mut r, &mut ooo, 300, 10);
        receive(&mut r, &mut ooo, 200, 10);
        assert_eq!(
            blocks(&r, &ooo, 4),
            [(1200, 1210), (1300, 1310), (1100, 1110)]
        );
        // Extending the oldest range makes it the first block; the merged
        // range is reported whole.
        receive(&mut r, &mut ooo, 110, 5);
        assert_eq!(
            blocks(&r, &ooo, 4),
            [(1100, 1115), (1200, 1210), (1300, 1310)]
        );
        // Three blocks when timestamps take option space.
        assert_eq!(blocks(&r, &ooo, 3).len(), 3);
        assert_eq!(blocks(&r, &ooo, 2), [(1100, 1115), (1200, 1210)]);
    }

    #[test]
    fn merged_ranges_are_reported_once() {
        let mut r = SackReporter::new();
        let mut ooo = Assembler::new();
        receive(&mut r, &mut ooo, 100, 10);
        receive(&mut r, &mut ooo, 120, 10);
        receive(&mut r, &mut ooo, 110, 10); // bridges both
        assert_eq!(blocks(&r, &ooo, 4), [(1100, 1130)]);
    }

    #[test]
    fn ranges_below_rcv_nxt_disappear() {
        let mut r = SackReporter::new();
        let mut ooo = Assembler::new();
        receive(&mut r, &mut ooo, 100, 10);
        receive(&mut r, &mut ooo, 200, 10);
        // RCV.NXT moves to 1110: the first range was joined.
        ooo.advance(110);
        let nxt = NXT + 110;
        let b: Vec<_> = r.blocks(nxt, &ooo, 4).iter().collect();
        assert_eq!(b, [(SeqNum(1200), SeqNum(1210))]);
    }

    #[test]
    fn more_ranges_than_blocks_fill_with_unreported_highest() {
        let mut r = SackReporter::new();
        let mut ooo = Assembler::new();
        for i in 0..6 {
            ooo.add(100 + 20 * i, 10).unwrap();
        }
        receive(&mut r, &mut ooo, 140, 2);
        assert_eq!(
            blocks(&r, &ooo, 4),
            [(1140, 1150), (1200, 1210), (1180, 1190), (1160, 1170)]
        );
    }

    #[test]
    fn touching_duplicates_of_a_batch_form_one_dsack_block() {
        let mut r = SackReporter::default();
        r.on_duplicate(SeqNum(100), SeqNum(200));
        r.on_duplicate(SeqNum(200), SeqNum(300));
        r.on_duplicate(SeqNum(50), SeqNum(100));
        assert_eq!(r.dsack, Some((SeqNum(50), SeqNum(300))));
        // A separate duplicate replaces it.
        r.on_duplicate(SeqNum(1000), SeqNum(1100));
        assert_eq!(r.dsack, Some((SeqNum(1000), SeqNum(1100))));
    }

    #[test]
    fn dsack_first_then_containing_range_exactly_once() {
        let mut r = SackReporter::new();
        let mut ooo = Assembler::new();
        receive(&mut r, &mut ooo, 100, 50);
        receive(&mut r, &mut ooo, 300, 10);
        // A duplicate inside the first range.
        r.on_duplicate(NXT + 110, NXT + 120);
        r.on_received(NXT + 110, NXT, &ooo);
        let b = r.blocks(NXT, &ooo, 4);
        assert_eq!(
            b.iter().map(|(l, r)| (l.0, r.0)).collect::<Vec<_>>(),
            [(1110, 1120), (1100, 1150), (1300, 1310)]
        );
        r.on_sent(&b);
        assert!(!r.dsack_pending());
        assert_eq!(blocks(&r, &ooo, 4), [(1100, 1150), (1300, 1310)]);
        // Below RCV.NXT, with no holes: the D-SACK block alone.
        let mut r = SackReporter::new();
        let empty = Assembler::new();
        r.on_duplicate(SeqNum(900), SeqNum(950));
        assert_eq!(blocks(&r, &empty, 3), [(900, 950)]);
        // An ACK that could not carry it leaves it pending.
        r.on_sent(&SackBlocks::new());
        assert!(r.dsack_pending());
    }
}
