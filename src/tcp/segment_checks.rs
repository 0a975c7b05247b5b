//! The tests RFC 9293 §3.10.7.4 and RFC 7323 apply to a segment arriving
//! in a synchronized state, on plain values, so that a connection and a
//! TIME-WAIT record (`tcp::time_wait`) apply the very same rules.

use crate::tcp::Instant;
use crate::wire::{SeqNum, Timestamps};

/// The acceptability test of RFC 9293 §3.10.7.4, first step, for a
/// receive window of `[rcv_nxt, rcv_adv)`.
pub(crate) fn acceptable(rcv_nxt: SeqNum, rcv_adv: SeqNum, seq: SeqNum, seg_len: usize) -> bool {
    let wnd = rcv_adv.since(rcv_nxt);
    match (seg_len, wnd) {
        (0, 0) => seq == rcv_nxt,
        (0, _) => seq.in_window(rcv_nxt, wnd),
        (_, 0) => false,
        (_, _) => seq.in_window(rcv_nxt, wnd) || (seq + (seg_len - 1)).in_window(rcv_nxt, wnd),
    }
}

/// TS.Recent (RFC 7323 §4.3) and when it was last updated (§5.5), in
/// whole seconds: the only question asked of that time is whether 24
/// days have passed, and two `u32`s pack without padding (a TIME-WAIT
/// record holds one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TsRecent {
    pub(crate) value: u32,
    at_secs: u32,
}

/// Seconds of `now`, wrapping after 136 years of uptime.
fn secs(now: Instant) -> u32 {
    (now.total_micros() / 1_000_000) as u32
}

impl TsRecent {
    pub(crate) fn new(value: u32, now: Instant) -> TsRecent {
        TsRecent {
            value,
            at_secs: secs(now),
        }
    }

    pub(crate) fn set(&mut self, value: u32, now: Instant) {
        *self = TsRecent::new(value, now);
    }

    /// SEG.TSval < TS.Recent in 32-bit timestamp arithmetic (RFC 7323 §5.2).
    #[inline]
    pub(crate) fn older(&self, tsval: u32) -> bool {
        (tsval.wrapping_sub(self.value) as i32) < 0
    }

    /// RFC 7323 §5.5: a TS.Recent not updated for more than 24 days may
    /// have wrapped and no longer orders anything.
    pub(crate) fn expired(&self, now: Instant) -> bool {
        secs(now).saturating_sub(self.at_secs) > 24 * 86_400
    }

    /// RFC 7323 §4.3 (2): a segment's TSval becomes TS.Recent if the
    /// segment covers Last.ACK.sent (`seq <= Last.ACK.sent < seq + len`,
    /// or `seq == Last.ACK.sent` for a segment of length 0) and its TSval
    /// is not older, unless TS.Recent has expired.
    #[inline]
    pub(crate) fn update(
        &mut self,
        now: Instant,
        timestamps: Option<Timestamps>,
        seq: SeqNum,
        seg_len: usize,
        last_ack_sent: SeqNum,
    ) {
        let Some(ts) = timestamps else {
            return;
        };
        let covers = if seg_len == 0 {
            seq == last_ack_sent
        } else {
            seq <= last_ack_sent && last_ack_sent < seq + seg_len
        };
        if covers && (!self.older(ts.tsval) || self.expired(now)) {
            self.set(ts.tsval, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_window_accepts_what_overlaps_it() {
        let (nxt, adv) = (SeqNum(1000), SeqNum(1100));
        assert!(acceptable(nxt, adv, SeqNum(1000), 0));
        assert!(acceptable(nxt, adv, SeqNum(1099), 0));
        assert!(!acceptable(nxt, adv, SeqNum(1100), 0));
        // Text starting before RCV.NXT that reaches into the window.
        assert!(acceptable(nxt, adv, SeqNum(990), 11));
        assert!(!acceptable(nxt, adv, SeqNum(990), 10));
        // A zero window takes only an empty segment at RCV.NXT.
        assert!(acceptable(nxt, nxt, SeqNum(1000), 0));
        assert!(!acceptable(nxt, nxt, SeqNum(1000), 1));
    }

    #[test]
    fn ts_recent_follows_segments_covering_the_last_ack_sent() {
        let t0 = Instant::from_secs(1);
        let ts = |tsval| Some(Timestamps { tsval, tsecr: 0 });
        let mut recent = TsRecent::new(100, t0);
        let last_ack = SeqNum(5000);
        // Not covering Last.ACK.sent: ignored.
        recent.update(t0, ts(200), SeqNum(6000), 10, last_ack);
        assert_eq!(recent.value, 100);
        // Covering, newer: taken; older: not, until 24 days have passed.
        recent.update(t0, ts(200), SeqNum(4990), 20, last_ack);
        assert_eq!(recent.value, 200);
        recent.update(t0, ts(150), SeqNum(5000), 0, last_ack);
        assert_eq!(recent.value, 200);
        assert!(recent.older(150) && !recent.older(200));
        let later = t0 + Duration::from_secs(24 * 86_400 + 1);
        assert!(!recent.expired(t0 + Duration::from_secs(24 * 86_400)));
        assert!(recent.expired(later));
        recent.update(later, ts(150), SeqNum(5000), 0, last_ack);
        assert_eq!(recent.value, 150);
        // Across the wrap of the timestamp clock.
        let wrap = TsRecent::new(u32::MAX - 1, t0);
        assert!(!wrap.older(3) && wrap.older(u32::MAX - 2));
    }
}
