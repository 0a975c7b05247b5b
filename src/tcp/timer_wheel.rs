//! A hashed hierarchical timing wheel for the per-core engine.
//!
//! The engine arms at most one entry per connection (it keeps the
//! connection's individual deadlines itself and re-arms for the earliest),
//! so with millions of connections the wheel must never scan its timers:
//!
//! * insert and cancel are O(1): an entry is pushed on / unlinked from an
//!   intrusive doubly-linked list (slab indices, not pointers) hanging off
//!   one slot;
//! * advance costs the non-empty slots it passes (found through occupancy
//!   bitmaps, so empty stretches — even hours — are skipped in a few word
//!   operations) plus the timers fired, plus amortised cascading: an entry
//!   moves down at most once per level.
//!
//! # Layout
//!
//! Time is counted in ticks since `start`. Level 0 has 256 slots of one
//! tick; levels 1, 2 and 3 have 64 slots each of 256, 256·64 and 256·64²
//! ticks, so the wheel spans 2^26 ticks (about 18.6 hours at 1 ms). An entry
//! due at tick `w` is filed at the level of the most significant bit in
//! which `w` differs from the wheel's current tick, in the slot given by
//! `w`'s digit at that level (the classic "hashed hierarchical" scheme, as
//! in tokio and Linux). When the wheel reaches a coarse slot, its entries
//! are re-filed from their exact deadline, each landing at a lower level.
//! Deadlines beyond the top level's span are filed in the top level by
//! their digit, processed on a later rotation and simply re-filed there
//! until they come within range (one re-file per rotation waited, e.g. per
//! 18.6 h). An advance that jumps more than a whole rotation ahead does not
//! walk the rotations one by one: it re-files the (then only) top-level
//! entries once, straight to the earliest due tick.
//!
//! # Exactness
//!
//! Slots are coarse but firing is exact: each entry keeps its exact
//! deadline, an entry is due at tick `ceil(deadline / tick)`, and the tick
//! containing `now` is scanned entry by entry, so [`TimerWheel::advance`]
//! fires precisely the timers with `deadline <= now`: never early, and never
//! later than the first advance at or after the deadline. When `now` is on a
//! tick boundary (e.g. the engine slept until [`TimerWheel::next_expiry`])
//! no per-entry comparison is needed at all.

use core::fmt;
use std::time::Duration;

use slab::Slab;

use super::Instant;

/// Handle to an armed timer: a slab index plus a generation number unique
/// to that insertion, so a handle kept after its timer fired or was
/// cancelled never matches a later timer that reuses the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u64,
}

/// "No entry" in the intrusive lists.
const NIL: u32 = u32::MAX;
const L0_BITS: u32 = 8;
const LN_BITS: u32 = 6;
const LEVELS: usize = 4;
const L0_SLOTS: usize = 1 << L0_BITS;
const LN_SLOTS: usize = 1 << LN_BITS;
const NUM_SLOTS: usize = L0_SLOTS + (LEVELS - 1) * LN_SLOTS;
/// Ticks covered by the whole wheel (one rotation of the top level).
const TOP_SPAN: u64 = 1 << (L0_BITS + LN_BITS * (LEVELS as u32 - 1));
/// Ticks are clamped here so slot arithmetic can never overflow `u64`
/// (2^62 ticks of 1 µs is ~146,000 years).
const MAX_TICK: u64 = 1 << 62;

/// Bit position of a level's digit within a tick number.
#[inline]
const fn shift(level: usize) -> u32 {
    if level == 0 {
        0
    } else {
        L0_BITS + LN_BITS * (level as u32 - 1)
    }
}

/// Index of a level's first slot in `heads`.
#[inline]
const fn slot_base(level: usize) -> usize {
    if level == 0 {
        0
    } else {
        L0_SLOTS + LN_SLOTS * (level - 1)
    }
}

/// The level at which an entry due at tick `when` is filed while the
/// wheel is at tick `elapsed` (`when >= elapsed`): the level holding the
/// most significant differing bit, clamped to the top level.
#[inline]
fn level_for(elapsed: u64, when: u64) -> usize {
    let x = elapsed ^ when;
    if x < L0_SLOTS as u64 {
        return 0;
    }
    let msb = 63 - x.leading_zeros();
    (1 + ((msb - L0_BITS) / LN_BITS) as usize).min(LEVELS - 1)
}

/// Global slot index (into `heads`) for an entry due at `when` filed at
/// `level`.
#[inline]
fn slot_for(level: usize, when: u64) -> usize {
    let mask = if level == 0 {
        L0_SLOTS - 1
    } else {
        LN_SLOTS - 1
    };
    slot_base(level) + ((when >> shift(level)) as usize & mask)
}

/// First set bit of the 256-bit map at or after `from`.
#[inline]
fn first_set_from(words: &[u64; 4], from: usize) -> Option<usize> {
    let mut w = from / 64;
    let mut bits = words[w] & (!0u64 << (from % 64));
    loop {
        if bits != 0 {
            return Some(w * 64 + bits.trailing_zeros() as usize);
        }
        w += 1;
        if w == words.len() {
            return None;
        }
        bits = words[w];
    }
}

struct Entry {
    deadline: Instant,
    key: u64,
    generation: u64,
    prev: u32,
    next: u32,
    /// Global slot index whose list holds this entry.
    slot: u16,
}

/// Hashed hierarchical timing wheel. See the module docs.
pub struct TimerWheel {
    entries: Slab<Entry>,
    /// List head per slot: level 0's 256 slots, then 64 per higher level.
    heads: [u32; NUM_SLOTS],
    /// Occupancy bitmap of level 0.
    occupied0: [u64; 4],
    /// Occupancy bitmaps of levels 1.. (index `level - 1`).
    occupied: [u64; LEVELS - 1],
    start: Instant,
    tick_us: u64,
    /// Time of the last advance (or `start`).
    now: Instant,
    /// The wheel's tick: `ceil((now - start) / tick)`, clamped to
    /// `MAX_TICK`. Invariant: every entry is due at a tick `>= elapsed`,
    /// and entries due at `elapsed` itself are in level 0; those whose
    /// deadline is `<= now` exist only when `due_pending` is set.
    elapsed: u64,
    next_generation: u64,
    /// A timer inserted with a deadline `<= now` awaits the next advance.
    due_pending: bool,
}

impl TimerWheel {
    /// An empty wheel whose current time is `start`, counting in ticks of
    /// `tick` (the engine uses 1 ms; clamped to at least 1 µs), with room
    /// for `capacity` timers before its entry storage grows.
    pub fn new(start: Instant, tick: Duration, capacity: usize) -> Self {
        TimerWheel {
            entries: Slab::with_capacity(capacity),
            heads: [NIL; NUM_SLOTS],
            occupied0: [0; 4],
            occupied: [0; LEVELS - 1],
            start,
            tick_us: tick.as_micros().clamp(1, u128::from(u64::MAX)) as u64,
            now: start,
            elapsed: 0,
            next_generation: 0,
            due_pending: false,
        }
    }

    /// Arms a timer that fires with `key` at the first
    /// [`TimerWheel::advance`] to a time `>= deadline`. A deadline at or
    /// before [`TimerWheel::now`] fires at the next advance.
    ///
    /// # Panics
    ///
    /// If more than `u32::MAX - 1` timers are armed at once (tens of GiB of
    /// entries; the engine's connection limit is far below).
    pub fn insert(&mut self, deadline: Instant, key: u64) -> TimerId {
        let when = if deadline <= self.now {
            self.due_pending = true;
            self.elapsed
        } else {
            self.tick_ceil(deadline).max(self.elapsed)
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        let index = self.entries.insert(Entry {
            deadline,
            key,
            generation,
            prev: NIL,
            next: NIL,
            slot: 0,
        });
        let index = match u32::try_from(index) {
            Ok(i) if i != NIL => i,
            _ => panic!("timer wheel: more than u32::MAX - 1 timers armed"),
        };
        self.link(index, slot_for(level_for(self.elapsed, when), when));
        TimerId { index, generation }
    }

    /// Disarms a timer. Returns false (and does nothing) if `id` is stale:
    /// the timer already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        if !self.is_live(id) {
            return false;
        }
        self.unlink(id.index);
        self.entries.remove(id.index as usize);
        true
    }

    /// The exact deadline `id` was inserted with; `None` if `id` is stale.
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.is_live(id)
            .then(|| self.entries[id.index as usize].deadline)
    }

    /// Moves time forward to `now` (an earlier `now` is treated as the
    /// current time) and calls `fire(key)` for every timer whose deadline is
    /// `<= now`, removing it. All due timers fire in this call, none early;
    /// the order among them is unspecified. `fire` cannot reach the wheel:
    /// the engine collects keys and re-arms afterwards.
    #[inline]
    pub fn advance(&mut self, now: Instant, fire: &mut impl FnMut(u64)) {
        let now = now.max(self.now);
        // Most polls come within the tick of the previous one: `target`
        // below would equal `elapsed`, and with that tick's level-0 slot
        // empty there is nothing to do. Checking that against the tick's
        // end skips the two divisions.
        let tick_end = self
            .start
            .total_micros()
            .saturating_add(self.elapsed.saturating_mul(self.tick_us));
        let now_us = now.total_micros();
        if now_us <= tick_end
            && now_us.saturating_add(self.tick_us) > tick_end
            && self.heads[slot_for(0, self.elapsed)] == NIL
        {
            self.now = now;
            self.due_pending = false;
            return;
        }
        self.advance_ticks(now, fire);
    }

    /// [`advance`](Self::advance) past the current tick, or with entries
    /// in its slot: out of line, so the common case above stays small.
    #[inline(never)]
    fn advance_ticks(&mut self, now: Instant, fire: &mut impl FnMut(u64)) {
        let delta = now.total_micros() - self.start.total_micros();
        let mut target = delta / self.tick_us + u64::from(delta % self.tick_us != 0);
        let mut on_boundary = delta % self.tick_us == 0;
        if target > MAX_TICK {
            target = MAX_TICK;
            on_boundary = false;
        }
        // Every slot processed before `target` is entirely due; the level-0
        // slot of `target` itself holds entries due within the tick that
        // contains `now`, which need a per-entry check (below). Coarse slots
        // starting at `target` are cascaded first (ties prefer higher
        // levels in `next_slot`) so their entries reach that check.
        // Within the current tick (most polls) the loop has nothing to do:
        // every slot `next_slot` can return starts at `elapsed` or later
        // (higher levels strictly later), so it would stop at once.
        while target > self.elapsed {
            let Some((level, slot, at)) = self.next_slot() else {
                break;
            };
            if at > target || (level == 0 && at == target) {
                break;
            }
            if level == LEVELS - 1 && at.saturating_add(TOP_SPAN) <= target {
                // A jump of more than a whole rotation with only far
                // timers left: skip the empty rotations in one pass.
                self.sweep_top(target);
                continue;
            }
            self.elapsed = at;
            let mut cur = self.take_slot(slot);
            while cur != NIL {
                let next = self.entries[cur as usize].next;
                if level == 0 {
                    fire(self.entries.remove(cur as usize).key);
                } else {
                    self.refile(cur);
                }
                cur = next;
            }
        }
        self.elapsed = target;
        let slot = slot_for(0, target);
        if self.heads[slot] != NIL {
            let mut cur = self.take_slot(slot);
            while cur != NIL {
                let next = self.entries[cur as usize].next;
                if on_boundary || self.entries[cur as usize].deadline <= now {
                    fire(self.entries.remove(cur as usize).key);
                } else {
                    self.link(cur, slot);
                }
                cur = next;
            }
        }
        self.now = now;
        self.due_pending = false;
    }

    /// When to wake up next: `None` if no timer is armed. Otherwise an
    /// instant `t > now()` no later than the earliest deadline rounded up to
    /// the tick, so sleeping until `t` and advancing never misses a timer
    /// and always makes progress. It may be earlier than needed (a coarse
    /// slot must be cascaded first); the engine then simply sleeps again.
    /// If a timer was inserted with a deadline already `<= now()`, returns
    /// `now() + 1 µs`: advance right away.
    ///
    /// Cost: a handful of bitmap operations, independent of the number of
    /// timers.
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.entries.is_empty() {
            return None;
        }
        let soonest = self.now + Duration::from_micros(1);
        if self.due_pending {
            return Some(soonest);
        }
        let (_, _, at) = self.next_slot()?;
        let t = self.start + Duration::from_micros(at.saturating_mul(self.tick_us));
        Some(t.max(soonest))
    }

    /// Number of armed timers.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The time of the last advance (initially `start`).
    #[inline]
    pub fn now(&self) -> Instant {
        self.now
    }

    fn is_live(&self, id: TimerId) -> bool {
        self.entries
            .get(id.index as usize)
            .is_some_and(|e| e.generation == id.generation)
    }

    /// The tick at which `deadline` is due: `ceil((deadline - start) /
    /// tick)`, clamped to `MAX_TICK`.
    #[inline]
    fn tick_ceil(&self, deadline: Instant) -> u64 {
        let delta = deadline
            .total_micros()
            .saturating_sub(self.start.total_micros());
        (delta / self.tick_us + u64::from(delta % self.tick_us != 0)).min(MAX_TICK)
    }

    /// The earliest non-empty slot: `(level, global slot index, tick at
    /// which it is processed)`. Ties go to the higher level, whose entries
    /// must be cascaded before a level-0 slot of the same tick is examined.
    ///
    /// Level 0 only ever holds entries of the current 256-tick block at or
    /// after `elapsed`. A higher level's slots are processed at their first
    /// start after `elapsed`; only the top level uses the wrap-around (for
    /// deadlines beyond its span), the others never hold a digit at or
    /// below `elapsed`'s.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        let e = self.elapsed;
        let mut best = first_set_from(&self.occupied0, (e as usize) & (L0_SLOTS - 1))
            .map(|d| (0, d, (e & !(L0_SLOTS as u64 - 1)) + d as u64));
        for level in 1..LEVELS {
            let bits = self.occupied[level - 1];
            if bits == 0 {
                continue;
            }
            let s = shift(level);
            let range = 1u64 << s;
            let span = range << LN_BITS;
            let digit_mask = LN_SLOTS as u64 - 1;
            let current = (e >> s) & digit_mask;
            let from = (current + 1) & digit_mask;
            let d =
                (from + u64::from(bits.rotate_right(from as u32).trailing_zeros())) & digit_mask;
            let mut at = (e & !(span - 1)) + d * range;
            if d <= current {
                at += span;
            }
            if best.is_none_or(|(_, _, b)| at <= b) {
                best = Some((level, slot_base(level) + d as usize, at));
            }
        }
        best
    }

    /// Called when the earliest slot is in the top level and `target` lies
    /// more than a full rotation beyond it. Then every entry is in the top
    /// level (lower levels only hold ticks before the next top-level slot),
    /// and cascading rotation by rotation would cost one pass over them per
    /// rotation (unbounded for huge jumps). Instead, move `elapsed` straight
    /// to the earliest due tick (or `target`) and re-file everything once:
    /// the earliest entries then land in level 0 and fire, so each sweep
    /// makes progress.
    fn sweep_top(&mut self, target: u64) {
        let base = slot_base(LEVELS - 1);
        let mut lists = [NIL; LN_SLOTS];
        let mut earliest = u64::MAX;
        for (i, list) in lists.iter_mut().enumerate() {
            *list = self.take_slot(base + i);
            let mut cur = *list;
            while cur != NIL {
                let e = &self.entries[cur as usize];
                earliest = earliest.min(self.tick_ceil(e.deadline));
                cur = e.next;
            }
        }
        self.elapsed = earliest.min(target).max(self.elapsed);
        for list in lists {
            let mut cur = list;
            while cur != NIL {
                let next = self.entries[cur as usize].next;
                self.refile(cur);
                cur = next;
            }
        }
    }

    /// Files entry `index` (currently in no list) again from its exact
    /// deadline, relative to the current `elapsed`.
    fn refile(&mut self, index: u32) {
        let when = self
            .tick_ceil(self.entries[index as usize].deadline)
            .max(self.elapsed);
        self.link(index, slot_for(level_for(self.elapsed, when), when));
    }

    /// Pushes entry `index` on the front of `slot`'s list.
    fn link(&mut self, index: u32, slot: usize) {
        let head = self.heads[slot];
        {
            let e = &mut self.entries[index as usize];
            e.prev = NIL;
            e.next = head;
            e.slot = slot as u16;
        }
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[slot] = index;
        self.set_occupied(slot, true);
    }

    /// Removes entry `index` from its slot's list.
    fn unlink(&mut self, index: u32) {
        let (prev, next, slot) = {
            let e = &self.entries[index as usize];
            (e.prev, e.next, e.slot as usize)
        };
        if prev == NIL {
            self.heads[slot] = next;
            if next == NIL {
                self.set_occupied(slot, false);
            }
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }

    /// Detaches `slot`'s whole list and returns its head (walk it through
    /// `next`; the entries' links are rewritten when they are re-filed).
    fn take_slot(&mut self, slot: usize) -> u32 {
        let head = self.heads[slot];
        self.heads[slot] = NIL;
        self.set_occupied(slot, false);
        head
    }

    #[inline]
    fn set_occupied(&mut self, slot: usize, on: bool) {
        let (word, bit) = if slot < L0_SLOTS {
            (&mut self.occupied0[slot / 64], slot % 64)
        } else {
            let i = slot - L0_SLOTS;
            (&mut self.occupied[i / LN_SLOTS], i % LN_SLOTS)
        };
        if on {
            *word |= 1 << bit;
        } else {
            *word &= !(1 << bit);
        }
    }
}

impl fmt::Debug for TimerWheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("now", &self.now)
            .field("tick_us", &self.tick_us)
            .field("len", &self.entries.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    const MS: Duration = Duration::from_millis(1);

    fn fired(w: &mut TimerWheel, now: Instant) -> Vec<u64> {
        let mut v = Vec::new();
        w.advance(now, &mut |k| v.push(k));
        v.sort_unstable();
        v
    }

    /// Structural check: every entry is in the list of the slot it records,
    /// lists are well linked, bitmaps match, and every entry's slot is
    /// processed no later than its due tick.
    fn check(w: &TimerWheel) {
        let mut seen = 0;
        for slot in 0..NUM_SLOTS {
            let level = if slot < L0_SLOTS {
                0
            } else {
                1 + (slot - L0_SLOTS) / LN_SLOTS
            };
            let occ = if slot < L0_SLOTS {
                (w.occupied0[slot / 64] >> (slot % 64)) & 1
            } else {
                (w.occupied[(slot - L0_SLOTS) / LN_SLOTS] >> ((slot - L0_SLOTS) % LN_SLOTS)) & 1
            };
            assert_eq!(occ == 1, w.heads[slot] != NIL, "bitmap of slot {slot}");
            let mut prev = NIL;
            let mut cur = w.heads[slot];
            while cur != NIL {
                let e = &w.entries[cur as usize];
                assert_eq!(e.prev, prev);
                assert_eq!(e.slot as usize, slot);
                let when = w.tick_ceil(e.deadline);
                if e.deadline > w.now {
                    assert!(when >= w.elapsed);
                    if when == w.elapsed {
                        assert_eq!(level, 0);
                    }
                }
                if level == 0 {
                    assert_eq!(slot as u64, when.max(w.elapsed) & 255);
                }
                seen += 1;
                prev = cur;
                cur = e.next;
            }
        }
        assert_eq!(seen, w.len());
    }

    #[test]
    fn fires_exactly_at_deadline() {
        let t0 = Instant::from_secs(100);
        let mut w = TimerWheel::new(t0, MS, 16);
        let id = w.insert(t0 + Duration::from_micros(2500), 7);
        assert_eq!(w.deadline(id), Some(t0 + Duration::from_micros(2500)));
        assert_eq!(w.next_expiry(), Some(t0 + 3 * MS));
        assert!(fired(&mut w, t0 + Duration::from_micros(2000)).is_empty());
        assert!(fired(&mut w, t0 + Duration::from_micros(2499)).is_empty());
        assert_eq!(w.len(), 1);
        // Same tick, now due.
        assert_eq!(fired(&mut w, t0 + Duration::from_micros(2500)), [7]);
        assert!(w.is_empty());
        assert_eq!(w.deadline(id), None);
        assert!(!w.cancel(id));
        assert_eq!(w.next_expiry(), None);
    }

    #[test]
    fn deadline_on_tick_boundary_and_between() {
        let t0 = Instant::ZERO;
        let mut w = TimerWheel::new(t0, MS, 16);
        w.insert(t0 + 5 * MS, 1);
        w.insert(t0 + Duration::from_micros(5001), 2);
        assert_eq!(w.next_expiry(), Some(t0 + 5 * MS));
        assert_eq!(fired(&mut w, t0 + 5 * MS), [1]);
        assert_eq!(w.next_expiry(), Some(t0 + 6 * MS));
        // Late advance: fires at the first advance after the deadline.
        assert_eq!(fired(&mut w, t0 + 9 * MS), [2]);
    }

    #[test]
    fn past_deadline_fires_next_advance() {
        let t0 = Instant::from_millis(10);
        let mut w = TimerWheel::new(t0, MS, 4);
        w.insert(Instant::ZERO, 1);
        w.insert(t0, 2);
        assert_eq!(w.next_expiry(), Some(t0 + Duration::from_micros(1)));
        assert_eq!(fired(&mut w, t0), [1, 2]);
        w.advance(t0 + Duration::from_micros(300), &mut |_| {});
        w.insert(t0 + Duration::from_micros(100), 3);
        // Advancing to an earlier time is advancing to now.
        assert_eq!(fired(&mut w, t0), [3]);
        assert_eq!(w.now(), t0 + Duration::from_micros(300));
    }

    #[test]
    fn cancel_and_stale_ids() {
        let t0 = Instant::ZERO;
        let mut w = TimerWheel::new(t0, MS, 4);
        let a = w.insert(t0 + 10 * MS, 1);
        let b = w.insert(t0 + 10 * MS, 2);
        let c = w.insert(t0 + 10 * MS, 3);
        assert!(w.cancel(b));
        assert!(!w.cancel(b));
        check(&w);
        // The freed index is reused; the old handle must not match it.
        let d = w.insert(t0 + 20 * MS, 4);
        assert_ne!(b, d);
        assert!(!w.cancel(b));
        assert_eq!(w.deadline(b), None);
        assert_eq!(w.deadline(d), Some(t0 + 20 * MS));
        assert!(w.cancel(a));
        assert!(w.cancel(c));
        check(&w);
        assert_eq!(fired(&mut w, t0 + 15 * MS), Vec::<u64>::new());
        assert_eq!(fired(&mut w, t0 + 25 * MS), [4]);
        assert!(!w.cancel(d));
    }

    #[test]
    fn long_timers() {
        let t0 = Instant::from_secs(1);
        let mut w = TimerWheel::new(t0, MS, 16);
        let two_h = Duration::from_secs(2 * 3600);
        let day = Duration::from_secs(3 * 86400 + 17);
        w.insert(t0 + two_h, 1);
        w.insert(t0 + day, 2);
        let mut now = t0;
        let mut wakes = 0;
        let mut got = Vec::new();
        // Sleep from expiry to expiry: never early, exact at the end.
        while let Some(t) = w.next_expiry() {
            assert!(t > now);
            now = t;
            wakes += 1;
            let mut f = Vec::new();
            w.advance(now, &mut |k| f.push(k));
            for k in f {
                got.push((k, now));
            }
            check(&w);
        }
        assert_eq!(got, [(1, t0 + two_h), (2, t0 + day)]);
        // Cascading costs a few wake-ups per level, not one per tick.
        assert!(wakes < 40, "{wakes} wake-ups");
    }

    #[test]
    fn many_timers_one_slot() {
        let t0 = Instant::ZERO;
        let mut w = TimerWheel::new(t0, MS, 0);
        for k in 0..10_000u64 {
            w.insert(t0 + Duration::from_micros(400_000 + k % 1000), k);
        }
        check(&w);
        assert!(fired(&mut w, t0 + Duration::from_micros(399_999)).is_empty());
        let f = fired(&mut w, t0 + Duration::from_micros(400_500));
        assert_eq!(f.len(), 5010);
        assert!(f.iter().all(|k| k % 1000 <= 500));
        check(&w);
        assert_eq!(
            fired(&mut w, t0 + Duration::from_micros(401_000)).len(),
            4990
        );
        assert!(w.is_empty());
    }

    #[test]
    fn huge_jump() {
        let t0 = Instant::ZERO;
        let mut w = TimerWheel::new(t0, MS, 0);
        let mut expect = Vec::new();
        for k in 0..1000u64 {
            let d = Duration::from_millis(k * k * 97 + k);
            w.insert(t0 + d, k);
            expect.push(k);
        }
        w.insert(t0 + Duration::from_secs(10 * 365 * 86400), 5000);
        assert_eq!(fired(&mut w, t0 + Duration::from_secs(200 * 86400)), expect);
        assert_eq!(w.len(), 1);
        check(&w);
        assert!(w.next_expiry().unwrap() <= t0 + Duration::from_secs(10 * 365 * 86400));
        assert_eq!(fired(&mut w, Instant::from_micros(u64::MAX)), [5000]);
        // Clamped extremes neither overflow nor panic.
        w.insert(Instant::from_micros(u64::MAX), 1);
        assert!(w.next_expiry().is_some());
        assert_eq!(fired(&mut w, Instant::from_micros(u64::MAX)), [1]);
    }

    #[test]
    fn huge_jump_tiny_tick() {
        // 1 µs ticks: 2^26-tick rotations of 67 s, so reaching these
        // deadlines rotation by rotation would take ~2^37 steps.
        let t0 = Instant::ZERO;
        let mut w = TimerWheel::new(t0, Duration::from_micros(1), 0);
        for k in 0..100u64 {
            w.insert(Instant::from_micros(k << 56), k);
        }
        w.insert(Instant::from_micros(u64::MAX), 1000);
        assert_eq!(fired(&mut w, Instant::from_micros(1 << 60)).len(), 17);
        check(&w);
        assert_eq!(fired(&mut w, Instant::from_micros(u64::MAX)).len(), 84);
        assert!(w.is_empty());
    }

    #[test]
    fn tiny_tick() {
        // A 1 µs tick makes the 2^26-tick span 67 s: exercises the top-level
        // wrap-around with realistic deadlines.
        let t0 = Instant::ZERO;
        let mut w = TimerWheel::new(t0, Duration::from_nanos(10), 0);
        w.insert(t0 + Duration::from_secs(300), 1);
        w.insert(t0 + Duration::from_secs(67), 2);
        assert!(fired(&mut w, t0 + Duration::from_secs(66)).is_empty());
        assert_eq!(fired(&mut w, t0 + Duration::from_secs(100)), [2]);
        assert!(fired(&mut w, t0 + Duration::from_micros(299_999_999)).is_empty());
        assert_eq!(fired(&mut w, t0 + Duration::from_secs(300)), [1]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Deadline relative to now, in µs (may be in the past), and key.
        Insert(i64),
        /// Index into the ids inserted so far.
        Cancel(usize),
        /// Advance by this many µs.
        Advance(u64),
        /// Sleep until `next_expiry()`.
        AdvanceToExpiry,
    }

    fn op(tick: u64, scale: u64) -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => prop_oneof![
                (-2000i64..3 * scale as i64),
                // Within the next couple of ticks: same-tick deadlines.
                (0i64..3 * tick as i64),
                (0i64..(1i64 << 40)),
            ].prop_map(Op::Insert),
            2 => any::<usize>().prop_map(Op::Cancel),
            3 => prop_oneof![0..scale / 4, 0..scale * 4, 0..2 * tick, Just(0u64)].prop_map(Op::Advance),
            2 => Just(Op::AdvanceToExpiry),
        ]
    }

    fn case() -> impl Strategy<Value = (u64, u64, Vec<Op>)> {
        // (tick µs, horizon scale µs): small ticks make the top-level span
        // short enough to exercise wrap-around and re-cascading.
        (
            prop_oneof![Just(1u64), Just(7), Just(1000)],
            prop_oneof![Just(3000u64), Just(1 << 20), Just(1 << 28), Just(1 << 34)],
        )
            .prop_flat_map(|(tick, scale)| {
                (
                    Just(tick),
                    Just(scale),
                    proptest::collection::vec(op(tick, scale), 1..150),
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Against a BTreeMap oracle of armed timers: every advance fires
        /// exactly the due set, cancel/deadline agree on liveness, and
        /// `next_expiry` is a valid, progress-making lower bound.
        #[test]
        fn model((tick, _scale, ops) in case(), start in 0u64..1 << 40) {
            let t0 = Instant::from_micros(start);
            let tick_d = Duration::from_micros(tick);
            let mut w = TimerWheel::new(t0, tick_d, 0);
            // key -> deadline
            let mut oracle: BTreeMap<u64, Instant> = BTreeMap::new();
            let mut ids: Vec<(TimerId, u64)> = Vec::new();
            let mut next_key = 0u64;
            let round_up = |d: Instant| -> Instant {
                let delta = d.total_micros().saturating_sub(start);
                Instant::from_micros(start + delta.div_ceil(tick) * tick)
            };
            for op in ops {
                let now = w.now();
                let advance_to = match op {
                    Op::Insert(rel) => {
                        let d = if rel < 0 {
                            now - Duration::from_micros(rel.unsigned_abs())
                        } else {
                            now + Duration::from_micros(rel as u64)
                        };
                        let id = w.insert(d, next_key);
                        prop_assert_eq!(w.deadline(id), Some(d));
                        oracle.insert(next_key, d);
                        ids.push((id, next_key));
                        next_key += 1;
                        None
                    }
                    Op::Cancel(i) => {
                        if !ids.is_empty() {
                            let (id, key) = ids[i % ids.len()];
                            let live = oracle.remove(&key).is_some();
                            prop_assert_eq!(w.cancel(id), live);
                            prop_assert_eq!(w.deadline(id), None);
                        }
                        None
                    }
                    Op::Advance(us) => Some(now + Duration::from_micros(us)),
                    Op::AdvanceToExpiry => w.next_expiry(),
                };
                if let Some(to) = advance_to {
                    let mut got = BTreeSet::new();
                    w.advance(to, &mut |k| { got.insert(k); });
                    let due: BTreeSet<u64> = oracle
                        .iter()
                        .filter(|&(_, &d)| d <= to)
                        .map(|(&k, _)| k)
                        .collect();
                    prop_assert_eq!(&got, &due, "advance {:?} -> {:?}", now, to);
                    oracle.retain(|k, _| !due.contains(k));
                }
                prop_assert_eq!(w.len(), oracle.len());
                check(&w);
                match w.next_expiry() {
                    None => prop_assert!(oracle.is_empty()),
                    Some(t) => {
                        let earliest = *oracle.values().min().unwrap();
                        prop_assert!(t > w.now());
                        if earliest > w.now() {
                            prop_assert!(t <= round_up(earliest), "{:?} > {:?}", t, earliest);
                        } else {
                            prop_assert_eq!(t, w.now() + Duration::from_micros(1));
                        }
                    }
                }
            }
        }
    }
}
