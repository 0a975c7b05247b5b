//! When to acknowledge received data: the delayed-ACK policy of RFC 1122
//! §4.2.3.2 / RFC 9293 §3.8.6.3 / RFC 5681 §4.2, with Linux's quick-ACK
//! phase at connection start and its interactive ("ping-pong") detection.
//!
//! The policy only decides between "ACK at the next flush" and "ACK by a
//! deadline"; the connection owns the flag that makes the next flush send
//! an ACK, and any segment it sends carries the ACK and calls
//! [`DelayedAck::on_ack_sent`]. Because a connection's output is flushed
//! once per receive batch, every segment of a batch that wants an
//! immediate ACK still produces one ACK for the whole batch.

use std::time::Duration;

use crate::tcp::Instant;

/// Why a data segment must be acknowledged without delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImmediateReason {
    /// Nothing special: in-order data that may wait.
    None,
    /// Out-of-order data (RFC 5681 §4.2: "SHOULD send an immediate duplicate ACK").
    OutOfOrder,
    /// Data that fills all or part of a hole (RFC 5681 §4.2: "SHOULD send an immediate ACK").
    FillsHole,
    /// Data we already had: our ACK was probably lost (RFC 2883 wants the
    /// D-SACK reported promptly).
    Duplicate,
}

/// Delayed-ACK state of one connection. See the module docs.
#[derive(Debug, Clone)]
pub struct DelayedAck {
    /// When the pending delayed ACK must go out. Armed once per pending
    /// ACK and never pushed back by later segments, so the bound holds.
    deadline: Option<Instant>,
    /// Data segments still acknowledged at once (quick-ACK phase).
    quick_acks_left: u32,
    /// The receive MSS estimate: the largest segment seen, at most our
    /// announced MSS (Linux `icsk_ack.rcv_mss`). "Full-sized" is relative to it.
    rcv_mss: usize,
    /// When data last arrived, for the interactive-connection test.
    last_data_rx: Option<Instant>,
    /// The MSS we announced: the receive MSS estimate never exceeds it.
    local_mss: usize,
}

impl DelayedAck {
    /// State for a new connection: `quick_acks` segments of quick-ACK
    /// phase, bounded later by the window; `mss` is the MSS we announce.
    pub fn new(quick_acks: u32, mss: usize) -> DelayedAck {
        DelayedAck {
            deadline: None,
            quick_acks_left: quick_acks,
            // Linux tcp_initialize_rcv_mss: start from the RFC 9293 default.
            rcv_mss: mss.min(536),
            last_data_rx: None,
            local_mss: mss.max(1),
        }
    }

    /// The deadline of the pending delayed ACK, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn rcv_mss(&self) -> usize {
        self.rcv_mss
    }

    pub fn in_quick_ack_phase(&self) -> bool {
        self.quick_acks_left > 0
    }

    /// A data segment of `len` bytes arrived. `unacked` is how many bytes
    /// are now received but not yet acknowledged (RCV.NXT − Last.ACK.sent),
    /// `window` our receive window and `delay` the configured timeout. Returns true when the ACK must go
    /// out at the next flush; otherwise the delayed-ACK timer is running.
    pub fn on_data(
        &mut self,
        now: Instant,
        len: usize,
        reason: ImmediateReason,
        unacked: usize,
        window: usize,
        delay: Duration,
    ) -> bool {
        self.last_data_rx = Some(now);
        if len >= self.rcv_mss {
            self.rcv_mss = len.min(self.local_mss);
        }
        // Linux tcp_incr_quickack: never more quick ACKs than half a
        // window of full-sized segments.
        let bound = (window / (2 * self.rcv_mss.max(1))).min(u32::MAX as usize) as u32;
        self.quick_acks_left = self.quick_acks_left.min(bound);
        let quick = self.quick_acks_left > 0;
        if quick {
            self.quick_acks_left -= 1;
        }
        // RFC 1122 §4.2.3.2 / RFC 5681 §4.2: an ACK for at least every
        // second full-sized segment; as Linux, "more than one receive MSS
        // unacknowledged".
        let second_full_segment = unacked > self.rcv_mss;
        let immediate =
            reason != ImmediateReason::None || quick || second_full_segment || delay.is_zero();
        if !immediate && self.deadline.is_none() {
            self.deadline = Some(now + delay);
        }
        immediate
    }

    /// We sent a segment with data `delay` after data last arrived: a
    /// request/response exchange. Like Linux's ping-pong mode, leave the
    /// quick-ACK phase so requests are acknowledged by the responses.
    pub fn on_data_sent(&mut self, now: Instant, delay: Duration) {
        if let Some(rx) = self.last_data_rx {
            if now.saturating_since(rx) < delay {
                self.quick_acks_left = 0;
            }
        }
    }

    /// An ACK went out (pure, or piggybacked on data or a FIN): nothing
    /// is owed any more.
    pub fn on_ack_sent(&mut self) {
        self.deadline = None;
    }

    /// The delayed-ACK timer is due at `now`: returns true (and disarms
    /// it) when an ACK must be sent.
    pub fn on_timer(&mut self, now: Instant) -> bool {
        match self.deadline {
            Some(d) if d <= now => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }

    /// Forgets a pending ACK (the connection closed).
    pub fn cancel(&mut self) {
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1460;
    const WINDOW: usize = 256 * 1024;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn quick_ack_phase_then_every_second_full_segment() {
        let t = Instant::from_secs(1);
        let mut d = DelayedAck::new(2, MSS);
        let none = ImmediateReason::None;
        // Quick-ACK phase: both segments immediate.
        assert!(d.on_data(t, MSS, none, MSS, WINDOW, ms(40)));
        d.on_ack_sent();
        assert!(d.on_data(t, MSS, none, MSS, WINDOW, ms(40)));
        d.on_ack_sent();
        assert!(!d.in_quick_ack_phase());
        // First full segment waits, the second is acknowledged.
        assert!(!d.on_data(t, MSS, none, MSS, WINDOW, ms(40)));
        assert_eq!(d.deadline(), Some(t + ms(40)));
        assert!(d.on_data(t, MSS, none, 2 * MSS, WINDOW, ms(40)));
        d.on_ack_sent();
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn deadline_is_not_pushed_back() {
        let t = Instant::from_secs(1);
        let mut d = DelayedAck::new(0, MSS);
        assert!(!d.on_data(t, 10, ImmediateReason::None, 10, WINDOW, ms(40)));
        let later = t + ms(30);
        assert!(!d.on_data(later, 10, ImmediateReason::None, 20, WINDOW, ms(40)));
        assert_eq!(d.deadline(), Some(t + ms(40)));
        assert!(!d.on_timer(t + ms(39)));
        assert!(d.on_timer(t + ms(40)));
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn reasons_and_zero_delay_are_immediate() {
        let t = Instant::from_secs(1);
        let mut d = DelayedAck::new(0, MSS);
        for r in [
            ImmediateReason::OutOfOrder,
            ImmediateReason::FillsHole,
            ImmediateReason::Duplicate,
        ] {
            assert!(d.on_data(t, 10, r, 10, WINDOW, ms(40)));
        }
        assert!(d.on_data(t, 10, ImmediateReason::None, 10, WINDOW, Duration::ZERO));
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn quick_acks_bounded_by_half_the_window() {
        let t = Instant::from_secs(1);
        // 4 full segments of window: at most 2 quick ACKs.
        let mut d = DelayedAck::new(16, MSS);
        let none = ImmediateReason::None;
        assert!(d.on_data(t, MSS, none, MSS, 4 * MSS, ms(40)));
        d.on_ack_sent();
        assert!(d.on_data(t, MSS, none, MSS, 4 * MSS, ms(40)));
        d.on_ack_sent();
        assert!(!d.on_data(t, MSS, none, MSS, 4 * MSS, ms(40)));
    }

    #[test]
    fn responding_promptly_ends_the_quick_ack_phase() {
        let t = Instant::from_secs(1);
        let mut d = DelayedAck::new(16, MSS);
        assert!(d.on_data(t, 100, ImmediateReason::None, 100, WINDOW, ms(40)));
        d.on_data_sent(t + ms(1), ms(40));
        assert!(!d.in_quick_ack_phase());
        assert!(!d.on_data(t + ms(5), 100, ImmediateReason::None, 100, WINDOW, ms(40)));
    }
}
