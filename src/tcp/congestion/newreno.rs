//! NewReno: RFC 5681 slow start and congestion avoidance, RFC 3465
//! Appropriate Byte Counting, and RFC 6582 NewReno fast recovery window
//! arithmetic.
//!
//! Only the window arithmetic lives here. Duplicate-ACK counting, the
//! `recover` point and the choice of hook belong to the connection; see the
//! caller protocol on [`CongestionControl`].

use super::{
    initial_window, newreno_exit_cwnd, newreno_partial_ack, slow_start, AckSample,
    CongestionControl, HyStartPlusPlus, INITIAL_SSTHRESH,
};
use crate::tcp::Instant;

/// NewReno congestion control state for one connection.
///
/// # Growth rules
///
/// - **Slow start** (`cwnd < ssthresh`, RFC 5681 §3.1, RFC 3465 §2.2):
///   `cwnd += min(acked, 2·SMSS)` per ACK, never past `ssthresh`. Bytes of
///   that ACK not used to reach `ssthresh` are carried into congestion
///   avoidance's byte counter (as Linux's `tcp_slow_start` does).
/// - **Congestion avoidance** (`cwnd >= ssthresh`): RFC 5681 §3.1 /
///   RFC 3465 §2.1 *byte counting*: acknowledged bytes accumulate in
///   `bytes_acked`; once it reaches `cwnd`, `cwnd += SMSS` and
///   `bytes_acked -= cwnd` (at most one increment per ACK). Pure integer
///   arithmetic, so it is exact at any window size, and it grows by one
///   SMSS per window of data regardless of ACK frequency (delayed or
///   stretch ACKs do not slow it down, unlike `SMSS·SMSS/cwnd` per ACK,
///   which also rounds to zero once `cwnd > SMSS²`).
/// - **HyStart++** (RFC 9406) may end the initial slow start early, with
///   `ssthresh = cwnd`; see [`HyStartPlusPlus`].
/// - Neither grows when the ACK reports the sender was not cwnd-limited.
///
/// All arithmetic saturates; `cwnd` never drops below one SMSS.
#[derive(Debug, Clone)]
pub struct NewReno {
    /// Sender MSS in bytes, at least 1.
    mss: usize,
    /// Configured initial window in segments (0 = RFC 3390 formula).
    iw_segments: usize,
    cwnd: usize,
    ssthresh: usize,
    /// RFC 3465 §2.1 `bytes_acked` for congestion avoidance; always
    /// `< cwnd` between calls.
    bytes_acked: usize,
    /// No ACK or loss event processed yet: [`set_mss`] may re-size the
    /// initial window.
    ///
    /// [`set_mss`]: CongestionControl::set_mss
    pristine: bool,
    /// The last event was a retransmission timeout and no ACK has advanced
    /// `SND.UNA` since, so another timeout is the *same* segment timing out
    /// again (RFC 5681 §3.1: ssthresh is only reduced the first time).
    in_rto_loss: bool,
    /// RFC 9406 HyStart++ for the initial slow start.
    hystart: HyStartPlusPlus,
}

impl NewReno {
    /// A fresh controller: `cwnd` = [`initial_window`]`(mss,
    /// initial_window_segments)`, `ssthresh` arbitrarily high (RFC 5681
    /// §3.1). An `mss` of 0 is treated as 1 so the window can never stall at
    /// zero. `hystart` enables HyStart++ (RFC 9406) in the initial slow start.
    pub fn new(mss: usize, initial_window_segments: usize, hystart: bool) -> Self {
        let mss = mss.max(1);
        NewReno {
            mss,
            iw_segments: initial_window_segments,
            cwnd: initial_window(mss, initial_window_segments).max(mss),
            ssthresh: INITIAL_SSTHRESH,
            bytes_acked: 0,
            pristine: true,
            in_rto_loss: false,
            hystart: HyStartPlusPlus::new(hystart),
        }
    }

    /// The sender MSS this controller sizes its window with.
    pub fn mss(&self) -> usize {
        self.mss
    }

    fn initial_window(&self) -> usize {
        initial_window(self.mss, self.iw_segments).max(self.mss)
    }

    /// RFC 5681 §3.1 equation (4): `ssthresh = max(FlightSize/2, 2·SMSS)`.
    fn halve(&self, flight: usize) -> usize {
        (flight / 2).max(self.mss.saturating_mul(2))
    }

    /// RFC 3465 §2.1 byte counting: one SMSS per `cwnd` bytes acknowledged.
    fn congestion_avoidance(&mut self, acked: usize) {
        self.bytes_acked = self.bytes_acked.saturating_add(acked);
        if self.bytes_acked >= self.cwnd {
            self.bytes_acked -= self.cwnd;
            self.cwnd = self.cwnd.saturating_add(self.mss);
            // One increment per ACK (RFC 3465 §2.1), and RFC 5681 §3.1's
            // "MUST NOT increment cwnd by more than SMSS bytes" per round
            // trip: an ACK covering several windows (e.g. after a stall)
            // keeps less than one window of credit; the rest is dropped
            // rather than banked for a later burst of growth.
            self.bytes_acked = self.bytes_acked.min(self.cwnd - 1);
        }
    }

    /// Forget progress towards the next congestion-avoidance increment:
    /// bytes counted against the old, larger window must not buy an
    /// increment of the reduced one.
    fn on_window_reduction(&mut self) {
        self.bytes_acked = 0;
        self.pristine = false;
    }

    /// The multiplicative decrease of a loss event (RFC 5681 §3.1 eq. (4)),
    /// ending HyStart++ (RFC 9406 §4.2).
    fn reduce_ssthresh(&mut self, flight: usize) {
        self.ssthresh = self.halve(flight);
        self.hystart.on_congestion();
    }
}

impl CongestionControl for NewReno {
    fn on_ack(&mut self, ack: &AckSample) {
        self.pristine = false;
        self.in_rto_loss = false;
        let acked = if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 slow start with RFC 3465 §2.2 ABC, L = 2·SMSS,
            // and RFC 9406 HyStart++.
            slow_start(
                &mut self.cwnd,
                &mut self.ssthresh,
                self.mss,
                &mut self.hystart,
                ack,
            )
        } else {
            ack.acked
        };
        // RFC 7661 spirit: an application- or receiver-limited sender has
        // not tested the window, so it does not grow.
        if acked > 0 && ack.cwnd_limited {
            self.congestion_avoidance(acked);
        }
    }

    fn on_enter_recovery(&mut self, _now: Instant, flight: usize) {
        // RFC 5681 §3.2 step 2 / RFC 6582 §3.2 step 2: eq. (4).
        self.reduce_ssthresh(flight);
        // RFC 5681 §3.2 step 3: inflate by the three segments that left the
        // network (the duplicate ACKs).
        self.cwnd = self.ssthresh.saturating_add(self.mss.saturating_mul(3));
        self.in_rto_loss = false;
        self.on_window_reduction();
    }

    fn on_recovery_dup_ack(&mut self) {
        // RFC 5681 §3.2 step 4: each duplicate ACK means another segment
        // left the network.
        self.cwnd = self.cwnd.saturating_add(self.mss);
        self.pristine = false;
    }

    fn on_partial_ack(&mut self, acked: usize) {
        // Window deflation, so that about ssthresh bytes are outstanding
        // when recovery ends.
        self.cwnd = newreno_partial_ack(self.cwnd, acked, self.mss);
        self.in_rto_loss = false;
        self.pristine = false;
    }

    fn on_exit_recovery(&mut self, flight: usize) {
        self.cwnd = newreno_exit_cwnd(self.ssthresh, flight, self.mss);
        self.in_rto_loss = false;
        self.on_window_reduction();
    }

    fn on_rto(&mut self, _now: Instant, flight: usize) {
        // RFC 5681 §3.1: ssthresh is set by eq. (4) only when "the given
        // segment has not yet been resent by way of the retransmission
        // timer"; consecutive timeouts without an ACK in between are the
        // same segment, so hold ssthresh.
        if !self.in_rto_loss {
            self.reduce_ssthresh(flight);
            self.in_rto_loss = true;
        }
        // RFC 5681 §3.1: cwnd = loss window LW = 1 full-sized segment.
        self.cwnd = self.mss;
        self.on_window_reduction();
    }

    fn on_idle_restart(&mut self) {
        // RFC 5681 §4.1: cwnd = min(RW, cwnd) with RW = min(IW, cwnd).
        self.cwnd = self.cwnd.min(self.initial_window());
        self.bytes_acked = 0;
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
        if self.pristine {
            // Nothing acknowledged or lost yet: size the initial window
            // (RFC 6928 §2 / RFC 3390) for the real MSS.
            self.cwnd = self.initial_window();
        } else {
            // Mid-connection (e.g. path MTU change): keep the byte
            // quantities but respect the per-segment floors of RFC 5681
            // (LW = 1·SMSS, eq. (4) = 2·SMSS).
            self.cwnd = self.cwnd.max(self.mss);
            self.ssthresh = self.ssthresh.max(self.mss.saturating_mul(2));
            self.bytes_acked = self.bytes_acked.min(self.cwnd - 1);
        }
    }

    fn on_loss_detected(&mut self, _now: Instant, flight: usize) {
        // RFC 6675 §5 step 4.2 / RFC 6937: ssthresh by eq. (4); PRR moves
        // cwnd from here.
        self.reduce_ssthresh(flight);
        self.in_rto_loss = false;
        self.on_window_reduction();
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd.max(self.mss);
        self.bytes_acked = self.bytes_acked.min(self.cwnd - 1);
        self.pristine = false;
    }

    fn cwnd(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;
    const T: Instant = Instant::ZERO;

    /// An ACK of `n` bytes, cwnd-limited, without an RTT sample.
    fn acked(n: usize) -> AckSample {
        crate::tcp::congestion::tests::acked(T, n)
    }

    fn reno() -> NewReno {
        NewReno::new(MSS, 10, false)
    }

    /// A controller in congestion avoidance with cwnd == ssthresh == `w`.
    fn in_avoidance(w: usize) -> NewReno {
        let mut cc = reno();
        cc.on_rto(T, 2 * w); // ssthresh = w, cwnd = 1 SMSS
        while cc.cwnd() < cc.ssthresh() {
            cc.on_ack(&acked(MSS));
        }
        assert_eq!((cc.cwnd(), cc.ssthresh()), (w, w));
        assert_eq!(cc.bytes_acked, 0);
        cc
    }

    #[test]
    fn initial_state() {
        let cc = reno();
        assert_eq!(cc.cwnd(), 10 * MSS);
        assert_eq!(cc.ssthresh(), usize::MAX / 2);
        assert!(cc.in_slow_start());
        assert_eq!(NewReno::new(1460, 0, false).cwnd(), 4380);
    }

    #[test]
    fn zero_mss_is_treated_as_one() {
        let cc = NewReno::new(0, 10, false);
        assert_eq!(cc.mss(), 1);
        assert_eq!(cc.cwnd(), 10);
    }

    #[test]
    fn slow_start_grows_by_acked_bytes() {
        let mut cc = reno();
        cc.on_ack(&acked(MSS));
        assert_eq!(cc.cwnd(), 11 * MSS);
        cc.on_ack(&acked(500));
        assert_eq!(cc.cwnd(), 11 * MSS + 500);
        cc.on_ack(&acked(2 * MSS)); // a delayed ACK: full credit
        assert_eq!(cc.cwnd(), 13 * MSS + 500);
    }

    #[test]
    fn slow_start_doubles_per_round_trip() {
        let mut cc = reno();
        let w = cc.cwnd();
        // One ACK per segment for a whole window.
        for _ in 0..w / MSS {
            cc.on_ack(&acked(MSS));
        }
        assert_eq!(cc.cwnd(), 2 * w);
        // Delayed ACKs (one per two segments) also double it, thanks to ABC.
        let w = cc.cwnd();
        for _ in 0..w / (2 * MSS) {
            cc.on_ack(&acked(2 * MSS));
        }
        assert_eq!(cc.cwnd(), 2 * w);
    }

    #[test]
    fn slow_start_abc_limit() {
        let mut cc = reno();
        // A stretch ACK for 10 segments only earns L = 2·SMSS (RFC 3465).
        cc.on_ack(&acked(10 * MSS));
        assert_eq!(cc.cwnd(), 12 * MSS);
    }

    #[test]
    fn slow_start_stops_at_ssthresh_and_carries_the_rest() {
        let mut cc = reno();
        cc.on_rto(T, 11 * MSS); // ssthresh 5500, cwnd 1000
        assert_eq!(cc.ssthresh(), 5500);
        for _ in 0..4 {
            cc.on_ack(&acked(MSS));
        }
        assert_eq!(cc.cwnd(), 5000);
        cc.on_ack(&acked(2 * MSS));
        // 500 bytes of growth reach ssthresh; the other 1500 count towards
        // congestion avoidance.
        assert_eq!(cc.cwnd(), 5500);
        assert!(!cc.in_slow_start());
        assert_eq!(cc.bytes_acked, 1500);
    }

    #[test]
    fn zero_byte_ack_changes_nothing() {
        let mut cc = reno();
        cc.on_ack(&acked(0));
        assert_eq!(cc.cwnd(), 10 * MSS);
    }

    #[test]
    fn congestion_avoidance_one_smss_per_rtt() {
        let w = 50 * MSS;
        let mut cc = in_avoidance(w);
        // One window's worth of per-segment ACKs: exactly +1 SMSS.
        for _ in 0..w / MSS {
            cc.on_ack(&acked(MSS));
        }
        assert_eq!(cc.cwnd(), w + MSS);
        // Ten more round trips, each ACKing the then-current window.
        for _ in 0..10 {
            let w = cc.cwnd();
            for _ in 0..w / MSS {
                cc.on_ack(&acked(MSS));
            }
            assert_eq!(cc.cwnd(), w + MSS);
        }
    }

    #[test]
    fn congestion_avoidance_independent_of_ack_frequency() {
        let w = 40 * MSS;
        let mut cc = in_avoidance(w);
        // Delayed ACKs, one per two segments: still +1 SMSS per window.
        for _ in 0..w / (2 * MSS) {
            cc.on_ack(&acked(2 * MSS));
        }
        assert_eq!(cc.cwnd(), w + MSS);
    }

    #[test]
    fn congestion_avoidance_sub_mss_acks_accumulate() {
        let w = 10 * MSS;
        let mut cc = in_avoidance(w);
        for _ in 0..(w / 100) - 1 {
            cc.on_ack(&acked(100));
        }
        assert_eq!(cc.cwnd(), w);
        cc.on_ack(&acked(100));
        assert_eq!(cc.cwnd(), w + MSS);
    }

    #[test]
    fn congestion_avoidance_at_most_one_smss_per_ack() {
        let w = 10 * MSS;
        let mut cc = in_avoidance(w);
        cc.on_ack(&acked(100 * w));
        assert_eq!(cc.cwnd(), w + MSS);
        assert!(cc.bytes_acked < cc.cwnd());
    }

    #[test]
    fn congestion_avoidance_exact_at_huge_windows() {
        // cwnd far above SMSS², where SMSS·SMSS/cwnd would round to zero.
        let w = 4_000_000_000usize.min(usize::MAX / 4) / MSS * MSS;
        let mut cc = in_avoidance_direct(w);
        let mut total = 0;
        while total < w {
            cc.on_ack(&acked(64 * MSS));
            total += 64 * MSS;
        }
        assert_eq!(cc.cwnd(), w + MSS);
    }

    /// Like [`in_avoidance`] but without walking slow start segment by
    /// segment, for huge windows.
    fn in_avoidance_direct(w: usize) -> NewReno {
        let mut cc = reno();
        cc.on_enter_recovery(T, 2 * w);
        cc.on_exit_recovery(usize::MAX / 4);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (w, w));
        cc
    }

    #[test]
    fn enter_recovery() {
        let mut cc = reno();
        cc.on_enter_recovery(T, 20 * MSS);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        assert_eq!(cc.cwnd(), 13 * MSS);
    }

    #[test]
    fn enter_recovery_small_flight_floors_at_two_segments() {
        let mut cc = reno();
        cc.on_enter_recovery(T, 3 * MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), 5 * MSS);
    }

    #[test]
    fn recovery_inflation() {
        let mut cc = reno();
        cc.on_enter_recovery(T, 20 * MSS);
        for _ in 0..5 {
            cc.on_recovery_dup_ack();
        }
        assert_eq!(cc.cwnd(), 18 * MSS);
        assert_eq!(cc.ssthresh(), 10 * MSS);
    }

    #[test]
    fn partial_ack_deflation() {
        let mut cc = reno();
        cc.on_enter_recovery(T, 20 * MSS); // cwnd 13 SMSS
                                           // At least one SMSS acknowledged: deflate by it, add one SMSS back.
        cc.on_partial_ack(3 * MSS);
        assert_eq!(cc.cwnd(), 11 * MSS);
        // Less than one SMSS: deflate only.
        cc.on_partial_ack(400);
        assert_eq!(cc.cwnd(), 11 * MSS - 400);
        assert_eq!(cc.ssthresh(), 10 * MSS);
    }

    #[test]
    fn partial_ack_never_deflates_below_one_segment() {
        let mut cc = reno();
        cc.on_enter_recovery(T, 4 * MSS); // cwnd 5 SMSS
        cc.on_partial_ack(100 * MSS);
        assert_eq!(cc.cwnd(), MSS);
    }

    #[test]
    fn exit_recovery() {
        let mut cc = reno();
        cc.on_enter_recovery(T, 20 * MSS);
        cc.on_recovery_dup_ack();
        // Plenty outstanding: cwnd = ssthresh.
        cc.on_exit_recovery(15 * MSS);
        assert_eq!(cc.cwnd(), 10 * MSS);
        assert!(!cc.in_slow_start());
    }

    #[test]
    fn exit_recovery_with_little_outstanding_avoids_burst() {
        let mut cc = reno();
        cc.on_enter_recovery(T, 20 * MSS);
        cc.on_exit_recovery(3 * MSS);
        assert_eq!(cc.cwnd(), 4 * MSS);
        // Nothing outstanding: max(0, SMSS) + SMSS.
        let mut cc = reno();
        cc.on_enter_recovery(T, 20 * MSS);
        cc.on_exit_recovery(0);
        assert_eq!(cc.cwnd(), 2 * MSS);
        // Back in slow start towards ssthresh.
        assert!(cc.in_slow_start());
    }

    #[test]
    fn rto_collapses_window() {
        let mut cc = reno();
        cc.on_rto(T, 30 * MSS);
        assert_eq!(cc.ssthresh(), 15 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        // Small flight: ssthresh floors at 2 SMSS.
        let mut cc = reno();
        cc.on_rto(T, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
    }

    #[test]
    fn repeated_rto_holds_ssthresh() {
        let mut cc = reno();
        cc.on_rto(T, 30 * MSS);
        // The same segment times out again: the flight is now tiny, but
        // ssthresh must not collapse further (RFC 5681 §3.1).
        cc.on_rto(T, MSS);
        assert_eq!(cc.ssthresh(), 15 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        // After forward progress a new timeout is a new loss event.
        cc.on_ack(&acked(MSS));
        cc.on_rto(T, 8 * MSS);
        assert_eq!(cc.ssthresh(), 4 * MSS);
    }

    #[test]
    fn rto_during_recovery() {
        let mut cc = reno();
        cc.on_enter_recovery(T, 40 * MSS);
        cc.on_rto(T, 40 * MSS);
        assert_eq!(cc.ssthresh(), 20 * MSS);
        assert_eq!(cc.cwnd(), MSS);
    }

    #[test]
    fn idle_restart() {
        let mut cc = reno();
        for _ in 0..40 {
            cc.on_ack(&acked(MSS));
        }
        assert_eq!(cc.cwnd(), 50 * MSS);
        cc.on_idle_restart();
        assert_eq!(cc.cwnd(), 10 * MSS);
        // Never increases a window smaller than the restart window.
        cc.on_rto(T, 40 * MSS);
        cc.on_idle_restart();
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 20 * MSS);
    }

    #[test]
    fn set_mss_before_traffic_resizes_initial_window() {
        let mut cc = NewReno::new(536, 10, false);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14_600);
        cc.set_mss(8960);
        assert_eq!(cc.cwnd(), 89_600);
        // Idle restart uses the new MSS too.
        cc.on_idle_restart();
        assert_eq!(cc.cwnd(), 89_600);
    }

    #[test]
    fn set_mss_after_traffic_keeps_window() {
        let mut cc = reno();
        cc.on_ack(&acked(MSS));
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 11 * MSS);
        // Floors: cwnd >= 1 SMSS, ssthresh >= 2 SMSS.
        cc.on_rto(T, 0);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (1460, 2920));
        cc.set_mss(9000);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (9000, 18_000));
        // Idle restart never grows the window.
        cc.on_idle_restart();
        assert_eq!(cc.cwnd(), 9000);
    }

    #[test]
    fn no_overflow_at_huge_windows() {
        let mss = 65_535;
        let mut cc = NewReno::new(mss, 10, false);
        // Slow start all the way up to the initial ssthresh.
        let mut prev = cc.cwnd();
        for _ in 0..64 {
            cc.on_ack(&acked(usize::MAX));
            cc.cwnd = cc.cwnd.max(cc.ssthresh() - mss); // fast-forward
            assert!(cc.cwnd() >= prev);
            prev = cc.cwnd();
        }
        assert!(cc.cwnd() > usize::MAX / 2);
        assert!(!cc.in_slow_start());
        // Congestion avoidance at the top, with huge ACKs.
        for _ in 0..10 {
            cc.on_ack(&acked(usize::MAX));
            assert!(cc.cwnd() >= prev);
            prev = cc.cwnd();
        }
        for _ in 0..10 {
            cc.on_recovery_dup_ack();
        }
        assert!(cc.cwnd() >= prev);
        // Loss events with absurd flight sizes.
        cc.on_enter_recovery(T, usize::MAX);
        assert_eq!(cc.ssthresh(), usize::MAX / 2);
        assert_eq!(cc.cwnd(), usize::MAX / 2 + 3 * mss);
        for _ in 0..100 {
            cc.on_recovery_dup_ack();
        }
        cc.on_partial_ack(usize::MAX);
        assert_eq!(cc.cwnd(), mss);
        cc.on_exit_recovery(usize::MAX);
        assert_eq!(cc.cwnd(), usize::MAX / 2);
        cc.on_rto(T, usize::MAX);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (mss, usize::MAX / 2));
        // cwnd saturates rather than wrapping.
        cc.cwnd = usize::MAX - 1;
        cc.ssthresh = usize::MAX;
        cc.on_ack(&acked(usize::MAX));
        assert_eq!(cc.cwnd(), usize::MAX);
        cc.on_recovery_dup_ack();
        assert_eq!(cc.cwnd(), usize::MAX);
        cc.set_mss(usize::MAX);
        cc.on_enter_recovery(T, usize::MAX);
        assert_eq!(cc.cwnd(), usize::MAX);
    }
}
