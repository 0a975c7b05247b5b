//! The retransmission queue and its SACK scoreboard (RFC 6675 §3, RFC 2018,
//! RFC 8985 §5).
//!
//! One record per segment in flight, in sequence order from SND.UNA to
//! SND.MAX: where it starts, how long it is (FIN counts one), when it was
//! last transmitted, and whether it is SACKed, lost, or a retransmission
//! still in flight. Beside the records, the SACKed ranges are kept merged
//! and sorted, so an ACK touches only what it changes:
//!
//! - a cumulative ACK pops records from the front (amortised O(1) each);
//! - a SACK block costs a binary search plus one step per *newly* covered
//!   segment, however often the receiver repeats the block (receivers
//!   re-send their blocks on every ACK, growing them as data arrives);
//! - loss marking and NextSeg walk only the holes, never the SACKed runs.
//!
//! Nothing here allocates once the queue has grown to the largest flight
//! the connection reaches. The byte counters give RFC 6675 `pipe` in O(1):
//! `pipe = outstanding − SACKed − lost + retransmitted-in-flight`, the same
//! accounting as Linux's `packets_out − (sacked_out + lost_out) + retrans_out`.
//!
//! A segment counts as SACKed only when SACK blocks cover all of it: a
//! receiver reports the segments it got, so blocks normally fall on our
//! segment boundaries, and treating a partly covered segment as not
//! delivered is the conservative choice (it may be retransmitted, never
//! forgotten).

use std::collections::VecDeque;
use std::time::Duration;

use crate::tcp::Instant;
use crate::wire::SeqNum;

const SACKED: u8 = 1;
/// Deemed lost (by RACK, the RFC 6675 rules, or a timeout) and not SACKed.
const LOST: u8 = 2;
/// A retransmission of this segment is in flight.
const RETRANS: u8 = 4;
/// Retransmitted at least once: its RTT is ambiguous (Karn, RFC 6298 §3).
const EVER_RETRANS: u8 = 8;
/// Carries our FIN as its last sequence number.
const FIN: u8 = 16;

/// A scoreboard's allocated (empty) record storage, moved between
/// connections by [`SackScoreboard::take_storage`] and
/// [`SackScoreboard::adopt_storage`].
#[derive(Debug)]
pub struct ScoreboardStorage {
    segs: VecDeque<SentSegment>,
    ranges: Vec<(SeqNum, SeqNum)>,
}

impl ScoreboardStorage {
    /// Records the storage holds without reallocating.
    pub fn records(&self) -> usize {
        self.segs.capacity()
    }
}

/// One segment in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentSegment {
    pub start: SeqNum,
    /// Sequence space: payload bytes, plus one for a FIN.
    pub len: u32,
    /// Time of the last (re)transmission.
    pub xmit: Instant,
    flags: u8,
}

impl SentSegment {
    pub fn end(&self) -> SeqNum {
        self.start + self.len as usize
    }
    pub fn is_sacked(&self) -> bool {
        self.flags & SACKED != 0
    }
    pub fn is_lost(&self) -> bool {
        self.flags & LOST != 0
    }
    /// A retransmission of this segment is in flight.
    pub fn is_retransmit_in_flight(&self) -> bool {
        self.flags & RETRANS != 0
    }
    /// Sent more than once.
    pub fn was_retransmitted(&self) -> bool {
        self.flags & EVER_RETRANS != 0
    }
    /// Whether SACKed data `[l, r)` covers this segment. A receiver's
    /// blocks hold data only (RFC 2018 §3), so a FIN riding on data counts
    /// as covered with its data; a bare FIN is only ever cumulatively ACKed.
    fn covered_by(&self, l: SeqNum, r: SeqNum) -> bool {
        let fin = self.flags & FIN != 0;
        if fin && self.len == 1 {
            return false;
        }
        let data_end = self.end() - fin as usize;
        self.start >= l && data_end <= r
    }
}

/// The most recently *sent* segment among those an ACK newly delivered
/// (RFC 8985 §6.2 step 2 input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub xmit: Instant,
    pub end: SeqNum,
    pub retransmitted: bool,
}

/// What one ACK changed on the scoreboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// Bytes newly acknowledged cumulatively that had not been SACKed.
    pub cum_acked: usize,
    /// Bytes newly SACKed.
    pub newly_sacked: usize,
    /// Segments newly SACKed.
    pub newly_sacked_segments: usize,
    /// RFC 6937 DeliveredData: `cum_acked + newly_sacked`.
    pub delivered: usize,
    /// The delivered segment sent last (for RACK).
    pub newest: Option<Delivered>,
    /// An RTT sample (Karn-safe, RFC 6298 §3): from the oldest newly
    /// cumulatively acknowledged segment if none of the cumulatively
    /// acknowledged data was retransmitted (otherwise segments behind a
    /// repaired hole would report the repair time as their RTT, as Linux
    /// also avoids); else from the newest newly SACKed segment sent once.
    pub rtt: Option<Duration>,
    /// A segment sent only once was delivered below the highest SACKed
    /// sequence seen before this ACK: the path reorders (RFC 8985 §6.2 step 3).
    pub reordering: bool,
    /// The first block was a D-SACK (RFC 2883 §4): a duplicate arrived.
    pub dsack: Option<(SeqNum, SeqNum)>,
    /// Number of (non-D-SACK) blocks the ACK carried.
    pub sack_blocks: usize,
    /// Retransmissions in flight that this ACK delivered.
    pub retransmits_delivered: usize,
}

/// The retransmission queue with SACK state. See the module docs.
#[derive(Debug, Default, Clone)]
pub struct SackScoreboard {
    segs: VecDeque<SentSegment>,
    /// SACKed ranges above the front of the queue: sorted, disjoint, merged.
    ranges: Vec<(SeqNum, SeqNum)>,
    outstanding: usize,
    sacked_bytes: usize,
    sacked_segments: usize,
    lost_bytes: usize,
    retrans_bytes: usize,
    /// Lost, not SACKed, and no retransmission in flight: what NextSeg
    /// rule (1) still has to send.
    lost_unsent_bytes: usize,
    /// No segment starting below this is lost-and-not-retransmitted:
    /// where [`next_lost`](Self::next_lost) starts looking.
    lost_hint: Option<SeqNum>,
    /// Holes below this were already judged by the RFC 6675 rule.
    dupthresh_marked_to: Option<SeqNum>,
}

impl SackScoreboard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for `segments` records in all (and a few SACKed
    /// ranges) ahead of need, so a connection's steady state does not
    /// allocate when its flight or its first holes appear later. One
    /// comparison when the room is there.
    pub fn reserve(&mut self, segments: usize) {
        if self.segs.capacity() < segments {
            self.segs.reserve(segments - self.segs.len());
            let ranges = (segments / 2).clamp(1, 16);
            self.ranges
                .reserve(ranges.saturating_sub(self.ranges.len()));
        }
    }

    /// Returns the records' storage to the allocator when nothing is
    /// outstanding (a connection entering TIME-WAIT sends nothing more);
    /// the next send reserves again.
    pub fn release_storage(&mut self) {
        drop(self.take_storage());
    }

    /// As [`release_storage`](Self::release_storage), but hands the
    /// storage to the caller (for a
    /// [`StoragePool`](super::storage_pool::StoragePool)); `None` when
    /// records are outstanding or nothing is allocated.
    pub fn take_storage(&mut self) -> Option<ScoreboardStorage> {
        if !self.segs.is_empty() || (self.segs.capacity() == 0 && self.ranges.capacity() == 0) {
            return None;
        }
        self.clear();
        Some(ScoreboardStorage {
            segs: std::mem::take(&mut self.segs),
            ranges: std::mem::take(&mut self.ranges),
        })
    }

    /// Takes `storage` (empty, from another connection) instead of
    /// allocating at the first send, when nothing is allocated yet;
    /// otherwise hands it back.
    pub fn adopt_storage(&mut self, storage: ScoreboardStorage) -> Option<ScoreboardStorage> {
        if self.segs.capacity() == 0 && self.ranges.capacity() == 0 {
            debug_assert!(storage.segs.is_empty() && storage.ranges.is_empty());
            self.segs = storage.segs;
            self.ranges = storage.ranges;
            None
        } else {
            Some(storage)
        }
    }

    /// Records in the queue.
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Sequence space held (SND.MAX − SND.UNA when the connection keeps
    /// the scoreboard in step).
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    pub fn sacked_bytes(&self) -> usize {
        self.sacked_bytes
    }

    pub fn sacked_segments(&self) -> usize {
        self.sacked_segments
    }

    pub fn lost_bytes(&self) -> usize {
        self.lost_bytes
    }

    pub fn retransmitted_in_flight(&self) -> usize {
        self.retrans_bytes
    }

    /// RFC 6675 §4 SetPipe(): bytes believed to be in the network.
    pub fn pipe(&self) -> usize {
        (self.outstanding + self.retrans_bytes).saturating_sub(self.sacked_bytes + self.lost_bytes)
    }

    /// The highest SACKed sequence number plus one (RFC 8985 RACK.fack).
    pub fn highest_sacked(&self) -> Option<SeqNum> {
        self.ranges.last().map(|r| r.1)
    }

    /// The SACKed ranges, lowest first.
    pub fn sacked_ranges(&self) -> &[(SeqNum, SeqNum)] {
        &self.ranges
    }

    pub fn iter(&self) -> impl Iterator<Item = &SentSegment> {
        self.segs.iter()
    }

    /// The last segment sent in sequence order (the TLP retransmission
    /// candidate, RFC 8985 §7.3).
    pub fn last(&self) -> Option<&SentSegment> {
        self.segs.back()
    }

    /// The segment at SND.UNA is SACKed: the receiver discarded data it
    /// had selectively acknowledged (reneging, RFC 2018 §8, RFC 6675 §5.1).
    pub fn head_is_sacked(&self) -> bool {
        self.segs.front().is_some_and(|s| s.is_sacked())
    }

    /// Forgets every record (the connection closed or was reset).
    pub fn clear(&mut self) {
        self.segs.clear();
        self.ranges.clear();
        self.outstanding = 0;
        self.sacked_bytes = 0;
        self.sacked_segments = 0;
        self.lost_bytes = 0;
        self.retrans_bytes = 0;
        self.lost_unsent_bytes = 0;
        self.lost_hint = None;
        self.dupthresh_marked_to = None;
    }

    /// Adds (`add` true) or removes a segment's share of the counters,
    /// as its flags say. Every flag change goes remove → change → add, so
    /// the counters cannot drift from the records.
    fn weigh(&mut self, s: &SentSegment, add: bool) {
        let len = s.len as usize;
        let f = s.flags;
        let apply = |counter: &mut usize, amount: usize| {
            if add {
                *counter += amount;
            } else {
                *counter -= amount;
            }
        };
        apply(&mut self.outstanding, len);
        if f & SACKED != 0 {
            apply(&mut self.sacked_bytes, len);
            apply(&mut self.sacked_segments, 1);
            return;
        }
        if f & LOST != 0 {
            apply(&mut self.lost_bytes, len);
            if f & RETRANS == 0 {
                apply(&mut self.lost_unsent_bytes, len);
            }
        }
        if f & RETRANS != 0 {
            apply(&mut self.retrans_bytes, len);
        }
    }

    /// Replaces the flags of record `i`, keeping the counters in step.
    fn set_flags(&mut self, i: usize, flags: u8) {
        let old = self.segs[i];
        self.weigh(&old, false);
        self.segs[i].flags = flags;
        let new = self.segs[i];
        self.weigh(&new, true);
    }

    /// New data left: `len` sequence numbers at `start` (the last one our
    /// FIN if `fin`), which must follow the last record.
    pub fn on_send(&mut self, start: SeqNum, len: usize, fin: bool, now: Instant) {
        if len == 0 {
            return;
        }
        debug_assert!(self.segs.back().is_none_or(|s| s.end() == start));
        let seg = SentSegment {
            start,
            len: len as u32,
            xmit: now,
            flags: if fin { FIN } else { 0 },
        };
        self.segs.push_back(seg);
        self.weigh(&seg, true);
    }

    /// The segment starting at `start` was sent again at `now`.
    /// Returns false when no record starts there.
    pub fn on_retransmit(&mut self, start: SeqNum, now: Instant) -> bool {
        let Some(i) = self.index_of(start) else {
            return false;
        };
        let flags = self.segs[i].flags;
        if flags & SACKED == 0 {
            self.set_flags(i, flags | RETRANS | EVER_RETRANS);
        }
        self.segs[i].xmit = now;
        true
    }

    fn index_of(&self, start: SeqNum) -> Option<usize> {
        let i = self.segs.partition_point(|s| s.start < start);
        (i < self.segs.len() && self.segs[i].start == start).then_some(i)
    }

    /// Index of the first record that ends after `seq`.
    fn first_ending_after(&self, seq: SeqNum) -> usize {
        self.segs.partition_point(|s| s.end() <= seq)
    }

    /// RFC 6675 §4 NextSeg() rule (1): the first segment deemed lost that
    /// is neither SACKed nor already retransmitted. (start, length).
    pub fn next_lost(&mut self) -> Option<(SeqNum, usize)> {
        if self.lost_unsent_bytes == 0 {
            return None;
        }
        let from = match self.lost_hint {
            Some(h) => self.segs.partition_point(|s| s.start < h),
            None => 0,
        };
        for s in self.segs.range(from..) {
            if s.flags & (LOST | RETRANS | SACKED) == LOST {
                self.lost_hint = Some(s.start);
                return Some((s.start, s.len as usize));
            }
        }
        self.lost_hint = None;
        None
    }

    /// Marks record `i` lost; a lost retransmission stops counting as in
    /// flight (RFC 8985 §6.2 applies to retransmissions too). Returns
    /// whether anything changed.
    fn mark_lost_at(&mut self, i: usize) -> bool {
        let s = self.segs[i];
        if s.flags & SACKED != 0 || s.flags & (LOST | RETRANS) == LOST {
            return false;
        }
        self.set_flags(i, (s.flags | LOST) & !RETRANS);
        if self.lost_hint.is_none_or(|h| s.start < h) {
            self.lost_hint = Some(s.start);
        }
        true
    }

    /// Marks the segment at the front lost: the NewReno fast retransmit
    /// and partial-ACK rule without SACK (RFC 6582 §3.2). Returns whether
    /// anything changed.
    pub fn mark_head_lost(&mut self) -> bool {
        if self.segs.is_empty() {
            return false;
        }
        self.mark_lost_at(0)
    }

    /// Retransmission timeout (RFC 6675 §5.1, as Linux's tcp_enter_loss):
    /// every segment not SACKed is lost, and no retransmission is
    /// considered in flight any more. Returns the bytes marked.
    pub fn mark_all_lost(&mut self) -> usize {
        let mut marked = 0;
        for i in 0..self.segs.len() {
            if self.mark_lost_at(i) {
                marked += self.segs[i].len as usize;
            }
        }
        self.lost_hint = self.segs.front().map(|s| s.start);
        marked
    }

    /// Forget every SACK mark (reneging, RFC 2018 §8): the data must be
    /// treated as not received.
    pub fn clear_sacks(&mut self) {
        for i in 0..self.segs.len() {
            let flags = self.segs[i].flags;
            if flags & SACKED != 0 {
                self.set_flags(i, flags & !SACKED);
            }
        }
        self.ranges.clear();
        self.dupthresh_marked_to = None;
    }

    /// Forget every loss mark: a spurious congestion response was undone
    /// (RFC 3708 / RFC 3522). Retransmissions in flight stay counted.
    pub fn clear_lost(&mut self) {
        for i in 0..self.segs.len() {
            let flags = self.segs[i].flags;
            if flags & LOST != 0 {
                self.set_flags(i, flags & !LOST);
            }
        }
        self.lost_hint = None;
        self.dupthresh_marked_to = None;
    }

    /// Processes an ACK: the cumulative acknowledgment `ack` (the new
    /// SND.UNA) and its SACK blocks. Blocks outside (SND.UNA, SND.MAX] are
    /// ignored, except that a first block below `ack`, or inside the
    /// second block, is a D-SACK (RFC 2883 §4).
    pub fn on_ack(&mut self, ack: SeqNum, blocks: &[(SeqNum, SeqNum)], now: Instant) -> AckOutcome {
        let mut out = AckOutcome::default();
        let fack_before = self.highest_sacked();

        if let Some(&(l, r)) = blocks.first() {
            let below_ack = r <= ack;
            let inside_second = blocks
                .get(1)
                .is_some_and(|&(l2, r2)| l >= l2 && r <= r2 && l < r);
            if l < r && (below_ack || inside_second) {
                out.dsack = Some((l, r));
            }
        }

        // Cumulative part.
        let mut cum_rtt = None;
        let mut cum_retransmitted = false;
        while let Some(&front) = self.segs.front() {
            if front.start >= ack {
                break;
            }
            if front.end() > ack {
                // The peer acknowledged part of a segment: keep the rest.
                let cut = ack.since(front.start);
                if !front.is_sacked() {
                    out.cum_acked += cut;
                }
                self.weigh(&front, false);
                let rest = &mut self.segs[0];
                rest.start = ack;
                rest.len -= cut as u32;
                let rest = *rest;
                self.weigh(&rest, true);
                break;
            }
            self.segs.pop_front();
            self.weigh(&front, false);
            if front.is_sacked() {
                continue;
            }
            out.cum_acked += front.len as usize;
            if front.is_retransmit_in_flight() {
                out.retransmits_delivered += 1;
            }
            let ever = front.was_retransmitted();
            if ever {
                cum_retransmitted = true;
            } else if cum_rtt.is_none() {
                cum_rtt = Some(now.saturating_since(front.xmit));
            }
            if !ever && fack_before.is_some_and(|f| front.end() < f) {
                out.reordering = true;
            }
            note_delivered(&mut out, &front);
        }
        // SACKed ranges now below SND.UNA are gone.
        let keep_from = self.ranges.partition_point(|r| r.1 <= ack);
        self.ranges.drain(..keep_from);
        if let Some(first) = self.ranges.first_mut() {
            if first.0 < ack {
                first.0 = ack;
            }
        }
        // A segment cut by a mid-segment ACK may now lie inside a SACKed range.
        if let (Some(&front), Some(&(l, r))) = (self.segs.front(), self.ranges.first()) {
            if !front.is_sacked() && front.covered_by(l, r) {
                self.set_flags(0, (front.flags | SACKED) & !(LOST | RETRANS));
                out.newly_sacked += front.len as usize;
                out.newly_sacked_segments += 1;
            }
        }

        // Selective part.
        let snd_max = self.segs.back().map_or(ack, |s| s.end());
        let skip = out.dsack.is_some() as usize;
        let newest_before_sack = out.newest;
        for &(l, r) in &blocks[skip.min(blocks.len())..] {
            out.sack_blocks += 1;
            let l = l.max(ack);
            let r = r.min(snd_max);
            if l >= r {
                continue;
            }
            self.add_sack_range(l, r, fack_before, &mut out);
        }
        let sack_rtt = match out.newest {
            Some(n) if out.newest != newest_before_sack && !n.retransmitted => {
                Some(now.saturating_since(n.xmit))
            }
            _ => None,
        };
        out.delivered = out.cum_acked + out.newly_sacked;
        out.rtt = if cum_retransmitted { None } else { cum_rtt }.or(sack_rtt);
        if self.segs.is_empty() {
            self.lost_hint = None;
        }
        out
    }

    /// Merges `[l, r)` into the SACKed ranges and marks every segment the
    /// merged range now covers completely.
    fn add_sack_range(
        &mut self,
        l: SeqNum,
        r: SeqNum,
        fack_before: Option<SeqNum>,
        out: &mut AckOutcome,
    ) {
        // Ranges touching or overlapping [l, r) merge with it.
        let first = self.ranges.partition_point(|x| x.1 < l);
        let mut last = first;
        while last < self.ranges.len() && self.ranges[last].0 <= r {
            last += 1;
        }
        let (ml, mr) = if first < last {
            (self.ranges[first].0.min(l), self.ranges[last - 1].1.max(r))
        } else {
            (l, r)
        };
        // The parts of [l, r) not covered before: the gaps between the
        // overlapped ranges. Only segments reaching into a gap can change.
        let mut cursor = l;
        for k in first..=last {
            let gap_end = if k < last {
                self.ranges[k].0.max(cursor).min(r)
            } else {
                r
            };
            if cursor < gap_end {
                self.mark_sacked_in(cursor, gap_end, ml, mr, fack_before, out);
            }
            if k < last {
                cursor = cursor.max(self.ranges[k].1);
            }
        }
        if first < last {
            self.ranges[first] = (ml, mr);
            self.ranges.drain(first + 1..last);
        } else {
            self.ranges.insert(first, (ml, mr));
        }
    }

    /// Marks the segments overlapping the newly covered `[gl, gr)` that lie
    /// entirely inside the merged SACKed range `[ml, mr)`.
    fn mark_sacked_in(
        &mut self,
        gl: SeqNum,
        gr: SeqNum,
        ml: SeqNum,
        mr: SeqNum,
        fack_before: Option<SeqNum>,
        out: &mut AckOutcome,
    ) {
        let mut i = self.first_ending_after(gl);
        while i < self.segs.len() && self.segs[i].start < gr {
            let s = self.segs[i];
            i += 1;
            if s.flags & SACKED != 0 || !s.covered_by(ml, mr) {
                continue;
            }
            let len = s.len as usize;
            if s.is_retransmit_in_flight() {
                out.retransmits_delivered += 1;
            }
            self.set_flags(i - 1, (s.flags | SACKED) & !(LOST | RETRANS));
            out.newly_sacked += len;
            out.newly_sacked_segments += 1;
            if s.flags & EVER_RETRANS == 0 && fack_before.is_some_and(|f| s.end() < f) {
                out.reordering = true;
            }
            note_delivered(out, &s);
        }
    }

    /// RACK loss detection (RFC 8985 §6.2 step 5, RACK_detect_loss): every
    /// segment neither SACKed nor already known lost (or whose
    /// retransmission is in flight) that was sent before the RACK segment
    /// `(rack_xmit, rack_end)` and has been outstanding longer than
    /// `rack_rtt + reo_wnd` is lost. Returns the bytes newly marked and,
    /// if some candidates are not yet old enough, how long until the
    /// first of them is (the reordering timer).
    pub fn rack_detect_loss(
        &mut self,
        rack_xmit: Instant,
        rack_end: SeqNum,
        rack_rtt: Duration,
        reo_wnd: Duration,
        now: Instant,
    ) -> (usize, Option<Duration>) {
        let mut marked = 0;
        let mut wait: Option<Duration> = None;
        let sent_before =
            |s: &SentSegment| s.xmit < rack_xmit || (s.xmit == rack_xmit && s.end() < rack_end);
        // Holes: the unSACKed stretches between SACKed ranges, then the
        // tail above the highest SACK.
        let mut hole_start = self.segs.front().map(|s| s.start);
        let mut k = 0;
        while let Some(from) = hole_start {
            let to = self.ranges.get(k).map(|r| r.0);
            let mut i = self.first_ending_after(from);
            while i < self.segs.len() && to.is_none_or(|t| self.segs[i].start < t) {
                let s = self.segs[i];
                let candidate =
                    s.flags & SACKED == 0 && (s.flags & LOST == 0 || s.flags & RETRANS != 0);
                if candidate {
                    if sent_before(&s) {
                        let deadline = s.xmit + rack_rtt + reo_wnd;
                        if deadline <= now {
                            if self.mark_lost_at(i) {
                                marked += s.len as usize;
                            }
                        } else {
                            let left = deadline.saturating_since(now);
                            wait = Some(wait.map_or(left, |w| w.max(left)));
                        }
                    } else if to.is_none() && !s.was_retransmitted() {
                        // In the tail, segments sent once are in send
                        // order: everything after this was sent later still.
                        break;
                    }
                }
                i += 1;
            }
            hole_start = self.ranges.get(k).map(|r| r.1);
            k += 1;
            if hole_start.is_some_and(|h| self.segs.back().is_none_or(|b| h >= b.end())) {
                break;
            }
        }
        (marked, wait)
    }

    /// RFC 6675 §4 IsLost() for every hole: a segment is lost when more
    /// than `(dupthresh − 1)·mss` bytes, or at least `dupthresh` segments'
    /// worth, above it are SACKed. Retransmissions are not re-marked (that
    /// takes RACK or a timeout). Returns the bytes newly marked.
    pub fn mark_lost_by_dupthresh(&mut self, dupthresh: usize, mss: usize) -> usize {
        let byte_limit = dupthresh.saturating_sub(1) * mss;
        let mss = mss.max(1);
        // The rule is monotone in sequence: if a hole qualifies, every hole
        // below it does. Find the highest qualifying hole from the top.
        let mut above_bytes = 0;
        let mut above_segs = 0;
        let mut limit = None;
        for &(l, r) in self.ranges.iter().rev() {
            let len = r.since(l);
            above_bytes += len;
            above_segs += len.div_ceil(mss);
            if above_bytes > byte_limit || above_segs >= dupthresh {
                limit = Some(l);
                break;
            }
        }
        let Some(limit) = limit else { return 0 };
        let from = self
            .dupthresh_marked_to
            .map_or(0, |m| self.first_ending_after(m));
        let mut marked = 0;
        let mut i = from;
        while i < self.segs.len() && self.segs[i].start < limit {
            let s = self.segs[i];
            if s.flags & (SACKED | LOST) == 0 && s.end() <= limit && self.mark_lost_at(i) {
                marked += s.len as usize;
            }
            i += 1;
        }
        self.dupthresh_marked_to = Some(limit);
        marked
    }
}

/// Keeps the delivered segment sent last (RFC 8985 RACK_sent_after).
fn note_delivered(out: &mut AckOutcome, s: &SentSegment) {
    let d = Delivered {
        xmit: s.xmit,
        end: s.end(),
        retransmitted: s.was_retransmitted(),
    };
    match out.newest {
        Some(n) if n.xmit > d.xmit || (n.xmit == d.xmit && n.end >= d.end) => {}
        _ => out.newest = Some(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MSS: usize = 1000;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// `n` segments of MSS bytes from sequence 0, sent 1 ms apart.
    fn board(n: usize) -> SackScoreboard {
        let mut b = SackScoreboard::new();
        for i in 0..n {
            b.on_send(SeqNum((i * MSS) as u32), MSS, false, t(i as u64));
        }
        b
    }

    fn seq(i: usize) -> SeqNum {
        SeqNum((i * MSS) as u32)
    }

    /// The counters recomputed from the records, the oracle for `weigh`.
    fn check_counters(b: &SackScoreboard) {
        let mut o = (0, 0, 0, 0, 0, 0);
        for s in b.iter() {
            let len = s.len as usize;
            o.0 += len;
            if s.is_sacked() {
                o.1 += len;
                o.2 += 1;
                assert!(!s.is_lost() && !s.is_retransmit_in_flight());
                continue;
            }
            if s.is_lost() {
                o.3 += len;
                if !s.is_retransmit_in_flight() {
                    o.5 += len;
                }
            }
            if s.is_retransmit_in_flight() {
                o.4 += len;
            }
        }
        assert_eq!(
            (
                b.outstanding,
                b.sacked_bytes,
                b.sacked_segments,
                b.lost_bytes,
                b.retrans_bytes,
                b.lost_unsent_bytes
            ),
            o
        );
    }

    #[test]
    fn cumulative_ack_pops_and_samples_rtt_from_oldest() {
        let mut b = board(4);
        let out = b.on_ack(seq(2), &[], t(10));
        assert_eq!(out.cum_acked, 2 * MSS);
        assert_eq!(out.delivered, 2 * MSS);
        // Karn-safe sample from the oldest newly acknowledged segment.
        assert_eq!(out.rtt, Some(Duration::from_millis(10)));
        assert_eq!(b.len(), 2);
        assert_eq!(b.outstanding(), 2 * MSS);
        check_counters(&b);
    }

    #[test]
    fn partial_segment_ack_keeps_the_rest() {
        let mut b = board(2);
        let out = b.on_ack(SeqNum(500), &[], t(5));
        assert_eq!(out.cum_acked, 500);
        assert_eq!(b.iter().next().unwrap().start, SeqNum(500));
        assert_eq!(b.outstanding(), 1500);
        check_counters(&b);
    }

    #[test]
    fn sack_blocks_mark_whole_segments_only() {
        let mut b = board(10);
        // RFC 2018 §4: blocks name received data; [2.5, 5) covers 3 and 4 fully.
        let out = b.on_ack(seq(0), &[(SeqNum(2500), seq(5))], t(20));
        assert_eq!(out.newly_sacked_segments, 2);
        assert_eq!(out.newly_sacked, 2 * MSS);
        assert_eq!(out.sack_blocks, 1);
        // Extending the block to 2.0 completes segment 2.
        let out = b.on_ack(seq(0), &[(seq(2), seq(5))], t(21));
        assert_eq!(out.newly_sacked_segments, 1);
        assert_eq!(b.sacked_ranges(), &[(seq(2), seq(5))]);
        assert_eq!(b.highest_sacked(), Some(seq(5)));
        check_counters(&b);
    }

    #[test]
    fn repeated_blocks_cost_only_new_coverage() {
        let mut b = board(100);
        let out = b.on_ack(seq(0), &[(seq(1), seq(50))], t(200));
        assert_eq!(out.newly_sacked_segments, 49);
        let out = b.on_ack(seq(0), &[(seq(1), seq(51))], t(201));
        assert_eq!(out.newly_sacked_segments, 1);
        let out = b.on_ack(seq(0), &[(seq(1), seq(51))], t(202));
        assert_eq!(out.newly_sacked_segments, 0);
        assert_eq!(out.delivered, 0);
        check_counters(&b);
    }

    #[test]
    fn blocks_merge_and_bridge() {
        let mut b = board(10);
        b.on_ack(seq(0), &[(seq(6), seq(7)), (seq(2), seq(3))], t(20));
        assert_eq!(b.sacked_ranges(), &[(seq(2), seq(3)), (seq(6), seq(7))]);
        b.on_ack(seq(0), &[(seq(3), seq(6))], t(21));
        assert_eq!(b.sacked_ranges(), &[(seq(2), seq(7))]);
        assert_eq!(b.sacked_segments(), 5);
        // A cumulative ACK into the range trims it.
        b.on_ack(seq(4), &[], t(22));
        assert_eq!(b.sacked_ranges(), &[(seq(4), seq(7))]);
        assert_eq!(b.sacked_segments(), 3);
        check_counters(&b);
    }

    #[test]
    fn dsack_below_ack_or_inside_second_block() {
        let mut b = board(10);
        // RFC 2883 §4.1: first block below the cumulative ACK.
        let out = b.on_ack(seq(3), &[(seq(1), seq(2))], t(20));
        assert_eq!(out.dsack, Some((seq(1), seq(2))));
        assert_eq!(out.sack_blocks, 0);
        // RFC 2883 §4.2: first block inside the second.
        let out = b.on_ack(seq(3), &[(seq(6), seq(7)), (seq(5), seq(8))], t(21));
        assert_eq!(out.dsack, Some((seq(6), seq(7))));
        assert_eq!(out.newly_sacked_segments, 3);
        // An ordinary pair of blocks is not a D-SACK.
        let out = b.on_ack(seq(3), &[(seq(9), seq(10)), (seq(5), seq(8))], t(22));
        assert_eq!(out.dsack, None);
        check_counters(&b);
    }

    #[test]
    fn pipe_follows_rfc6675_setpipe() {
        let mut b = board(10);
        assert_eq!(b.pipe(), 10 * MSS);
        b.on_ack(seq(0), &[(seq(3), seq(6))], t(20));
        assert_eq!(b.pipe(), 7 * MSS);
        // Segments 0..3 lost: not in the network any more.
        assert_eq!(b.mark_lost_by_dupthresh(3, MSS), 3 * MSS);
        assert_eq!(b.pipe(), 4 * MSS);
        // Their retransmissions are.
        let (s, len) = b.next_lost().unwrap();
        assert_eq!((s, len), (seq(0), MSS));
        b.on_retransmit(s, t(21));
        assert_eq!(b.pipe(), 5 * MSS);
        assert_eq!(b.next_lost(), Some((seq(1), MSS)));
        check_counters(&b);
    }

    #[test]
    fn dupthresh_rule_needs_three_segments_above() {
        let mut b = board(10);
        b.on_ack(seq(0), &[(seq(1), seq(3))], t(20));
        // Two SACKed segments (2·MSS bytes, not more than (3−1)·MSS): not lost.
        assert_eq!(b.mark_lost_by_dupthresh(3, MSS), 0);
        b.on_ack(seq(0), &[(seq(1), seq(4))], t(21));
        assert_eq!(b.mark_lost_by_dupthresh(3, MSS), MSS);
        // Segments above the highest SACK are never lost by this rule.
        assert!(b.iter().skip(4).all(|s| !s.is_lost()));
        check_counters(&b);
    }

    #[test]
    fn rack_marks_segments_sent_before_the_delivered_one_after_rtt_plus_window() {
        let mut b = board(10);
        // Segment 5 (sent at 5 ms) is SACKed at 25 ms: RACK.rtt = 20 ms.
        let out = b.on_ack(seq(0), &[(seq(5), seq(6))], t(25));
        let n = out.newest.unwrap();
        assert_eq!((n.xmit, n.end), (t(5), seq(6)));
        // With a 4 ms window, segments sent at 0..=4 ms expire at 24..=28 ms.
        let (marked, wait) = b.rack_detect_loss(
            n.xmit,
            n.end,
            Duration::from_millis(20),
            Duration::from_millis(4),
            t(26),
        );
        assert_eq!(marked, 3 * MSS); // sent at 0, 1, 2 ms
        assert_eq!(wait, Some(Duration::from_millis(2))); // the one sent at 4 ms
                                                          // Segments sent after the delivered one are not candidates.
        assert!(b.iter().skip(6).all(|s| !s.is_lost()));
        check_counters(&b);
    }

    #[test]
    fn rack_detects_a_lost_retransmission() {
        let mut b = board(4);
        b.on_ack(seq(0), &[(seq(1), seq(4))], t(20));
        b.mark_lost_by_dupthresh(3, MSS);
        b.on_retransmit(seq(0), t(20));
        assert_eq!(b.retransmitted_in_flight(), MSS);
        // Later data delivered (a new segment sent at 21 ms, SACKed at 41 ms)
        // while the retransmission (sent at 20 ms) is still missing.
        b.on_send(seq(4), MSS, false, t(21));
        let out = b.on_ack(seq(0), &[(seq(1), seq(5))], t(41));
        let n = out.newest.unwrap();
        let (marked, _) = b.rack_detect_loss(
            n.xmit,
            n.end,
            Duration::from_millis(20),
            Duration::ZERO,
            t(41),
        );
        assert_eq!(marked, MSS);
        assert_eq!(b.retransmitted_in_flight(), 0);
        assert_eq!(b.next_lost(), Some((seq(0), MSS)));
        check_counters(&b);
    }

    #[test]
    fn timeout_marks_everything_not_sacked() {
        let mut b = board(6);
        b.on_ack(seq(0), &[(seq(2), seq(3))], t(10));
        assert_eq!(b.mark_all_lost(), 5 * MSS);
        assert_eq!(b.pipe(), 0);
        assert_eq!(b.next_lost(), Some((seq(0), MSS)));
        b.on_retransmit(seq(0), t(11));
        b.on_retransmit(seq(1), t(11));
        assert_eq!(b.next_lost(), Some((seq(3), MSS)));
        check_counters(&b);
    }

    #[test]
    fn a_fin_on_data_is_covered_by_a_block_of_the_data() {
        let mut b = SackScoreboard::new();
        b.on_send(seq(0), MSS, false, t(0));
        b.on_send(seq(1), MSS + 1, true, t(0));
        let out = b.on_ack(seq(0), &[(seq(1), seq(2))], t(5));
        assert_eq!(out.newly_sacked_segments, 1);
        // A bare FIN is never SACKed.
        let mut b = SackScoreboard::new();
        b.on_send(seq(0), MSS, false, t(0));
        b.on_send(seq(1), MSS, false, t(0));
        b.on_send(seq(2), 1, true, t(0));
        let out = b.on_ack(seq(0), &[(seq(1), seq(2) + 1)], t(5));
        assert_eq!(out.newly_sacked_segments, 1);
        check_counters(&b);
    }

    #[test]
    fn reneging_is_visible_and_clearable() {
        let mut b = board(4);
        b.on_ack(seq(0), &[(seq(1), seq(2))], t(10));
        // The receiver acknowledges up to 1 but then "forgets" 1..2: a
        // cumulative ACK to 1 leaves a SACKed segment at the head.
        b.on_ack(seq(1), &[], t(11));
        assert!(b.head_is_sacked());
        b.clear_sacks();
        assert!(!b.head_is_sacked());
        assert_eq!(b.sacked_bytes(), 0);
        check_counters(&b);
    }

    #[test]
    fn reordering_is_reported_for_once_sent_segments_below_fack() {
        let mut b = board(6);
        b.on_ack(seq(0), &[(seq(4), seq(5))], t(10));
        // Segment 1 arrives late (SACKed), below the earlier highest SACK.
        let out = b.on_ack(seq(0), &[(seq(1), seq(2)), (seq(4), seq(5))], t(11));
        assert!(out.reordering);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Send(u8),
        Ack(u8, Vec<(u8, u8)>),
        Retransmit,
        MarkDupthresh,
        Rack(u8),
        Timeout,
        Renege,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1u8..5).prop_map(Op::Send),
            (0u8..8, proptest::collection::vec((0u8..40, 1u8..8), 0..4))
                .prop_map(|(a, v)| Op::Ack(a, v)),
            Just(Op::Retransmit),
            Just(Op::MarkDupthresh),
            (0u8..30).prop_map(Op::Rack),
            Just(Op::Timeout),
            Just(Op::Renege),
        ]
    }

    proptest! {
        /// The scoreboard against an oracle: counters always equal a
        /// recount of the records; a segment is SACKed exactly when the
        /// union of the blocks received (since it was last un-SACKed by
        /// reneging) covers it; the queue stays contiguous from SND.UNA.
        #[test]
        fn scoreboard_matches_oracle(ops in proptest::collection::vec(op(), 1..60)) {
            let mut b = SackScoreboard::new();
            let mut una = 0usize;
            let mut max = 0usize;
            let mut covered: Vec<bool> = Vec::new(); // per byte/100 unit
            let unit = 100usize;
            let mut now = 0u64;
            for op in ops {
                now += 1;
                match op {
                    Op::Send(n) => {
                        let len = n as usize * unit;
                        b.on_send(SeqNum(max as u32), len, false, t(now));
                        max += len;
                        covered.resize(max / unit, false);
                    }
                    Op::Ack(a, blocks) => {
                        let ack = (una + a as usize * unit).min(max);
                        let blocks: Vec<(SeqNum, SeqNum)> = blocks.iter().map(|&(l, n)| {
                            let l = una + l as usize * unit;
                            (SeqNum(l as u32), SeqNum((l + n as usize * unit) as u32))
                        }).collect();
                        let out = b.on_ack(SeqNum(ack as u32), &blocks, t(now));
                        let skip = out.dsack.is_some() as usize;
                        for &(l, r) in &blocks[skip.min(blocks.len())..] {
                            let l = (l.0 as usize).max(ack);
                            let r = (r.0 as usize).min(max);
                            for u in (l / unit)..(r / unit).max(l / unit) {
                                if u < covered.len() { covered[u] = true; }
                            }
                        }
                        una = ack;
                    }
                    Op::Retransmit => {
                        if let Some((s, _)) = b.next_lost() {
                            prop_assert!(b.on_retransmit(s, t(now)));
                        }
                    }
                    Op::MarkDupthresh => { b.mark_lost_by_dupthresh(3, 2 * unit); }
                    Op::Rack(ms) => {
                        b.rack_detect_loss(t(now), SeqNum(max as u32), Duration::from_millis(ms as u64), Duration::ZERO, t(now + 5));
                    }
                    Op::Timeout => { b.mark_all_lost(); }
                    Op::Renege => {
                        b.clear_sacks();
                        for c in covered.iter_mut() { *c = false; }
                    }
                }
                check_counters(&b);
                prop_assert_eq!(b.outstanding(), max - una);
                let mut expect = SeqNum(una as u32);
                for s in b.iter() {
                    prop_assert_eq!(s.start, expect);
                    expect = s.end();
                    let first = s.start.0 as usize / unit;
                    let last = s.end().0 as usize / unit;
                    let all = (first..last).all(|u| covered[u]);
                    prop_assert_eq!(s.is_sacked(), all, "segment {:?}", s);
                }
                prop_assert_eq!(expect, SeqNum(max as u32));
            }
        }
    }
}
