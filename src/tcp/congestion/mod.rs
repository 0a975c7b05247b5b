//! Congestion control: the seam between the connection's loss-recovery
//! state machine and the window-growth algorithm.
//!
//! The split of responsibilities:
//!
//! - **The connection** owns everything about *which* event happened:
//!   duplicate-ACK counting, the RFC 6582 `recover` point, whether it is in
//!   fast recovery, RTO expiry, idle detection and Karn's rule. It calls
//!   exactly one hook per event, as described on [`CongestionControl`].
//! - **The algorithm** owns `cwnd` and `ssthresh` and decides *how* they
//!   move in response.
//!
//! Algorithms are dispatched statically through the [`Congestion`] enum so
//! the per-ACK path stays a jump table, not a virtual call. NewReno
//! (RFC 5681 + RFC 6582) is the only algorithm today; CUBIC (RFC 9438),
//! HyStart++ (RFC 9406) and PRR (RFC 6937) plug into the same hooks.
//!
//! All window quantities are in bytes.

pub mod newreno;

pub use newreno::NewReno;

use std::time::Duration;

use crate::tcp::Instant;

/// A congestion-control algorithm, driven by the connection.
///
/// # Caller protocol
///
/// Let `SMSS` be the sender MSS, `FlightSize` = `SND.NXT − SND.UNA` in
/// bytes (RFC 5681 §2), and `recover` the RFC 6582 §3.2 variable
/// (initialised to the ISS). The connection must:
///
/// 1. After the handshake, call [`set_mss`](Self::set_mss) with the
///    effective send MSS before sending data.
/// 2. Before sending after an idle period longer than the current RTO
///    (no data sent for that long, RFC 5681 §4.1), call
///    [`on_idle_restart`](Self::on_idle_restart).
/// 3. On an ACK that advances `SND.UNA` while **not** in fast recovery,
///    call [`on_ack`](Self::on_ack) with the number of newly acknowledged
///    bytes and an RTT sample if it has an unambiguous one (Karn, RFC 6298
///    §3). Reset the duplicate-ACK count.
/// 4. Count duplicate ACKs as defined in RFC 5681 §2 (ACK == `SND.UNA`,
///    data outstanding, no payload, no SYN/FIN, unchanged window). The first
///    two change nothing here (limited transmit, RFC 3042, is the
///    connection's business). On the third, if not already in recovery
///    **and** the cumulative ACK covers more than `recover` (RFC 6582 §3.2
///    step 2; otherwise do not enter recovery): set `recover = SND.NXT − 1`
///    (the highest sequence number sent), call
///    [`on_enter_recovery`](Self::on_enter_recovery) with the current
///    `FlightSize`, and retransmit the first unacknowledged segment
///    (RFC 5681 §3.2 steps 2–3).
/// 5. On each further duplicate ACK while in recovery, call
///    [`on_recovery_dup_ack`](Self::on_recovery_dup_ack), then send new
///    data if `cwnd` allows (RFC 5681 §3.2 steps 4–5).
/// 6. On an ACK that advances `SND.UNA` while in recovery:
///    - if it acknowledges everything up to and including `recover`
///      (a *full* ACK), leave recovery and call
///      [`on_exit_recovery`](Self::on_exit_recovery) with the `FlightSize`
///      remaining *after* this ACK (RFC 6582 §3.2 step 3, "Full
///      acknowledgments");
///    - otherwise (a *partial* ACK) retransmit the first unacknowledged
///      segment, call [`on_partial_ack`](Self::on_partial_ack) with the
///      newly acknowledged bytes, and reset the retransmission timer on the
///      first partial ACK (RFC 6582 §3.2 step 3, "Partial
///      acknowledgments"). Stay in recovery.
/// 7. When the retransmission timer expires: leave fast recovery if in it,
///    set `recover = SND.NXT − 1` (RFC 6582 §3.2 step 4), and call
///    [`on_rto`](Self::on_rto) with the `FlightSize` before anything is
///    marked lost. Call it on *every* expiry: the algorithm itself holds
///    `ssthresh` constant across consecutive timeouts of the same segment
///    (RFC 5681 §3.1).
pub trait CongestionControl {
    /// `SND.UNA` advanced by `acked` bytes outside loss recovery; `rtt` is
    /// a fresh RTT sample if the caller has one.
    ///
    /// Slow start while `cwnd < ssthresh` (RFC 5681 §3.1, with RFC 3465
    /// Appropriate Byte Counting and limit `L = 2·SMSS` per ACK), else
    /// congestion avoidance (NewReno: RFC 3465 §2.1 byte counting, +1 SMSS
    /// per `cwnd` bytes acknowledged). See the implementation for details.
    fn on_ack(&mut self, now: Instant, acked: usize, rtt: Option<Duration>);

    /// Entering fast recovery after the third duplicate ACK (RFC 5681 §3.2
    /// step 2, RFC 6582 §3.2 step 2): `ssthresh = max(flight/2, 2·SMSS)`,
    /// `cwnd = ssthresh + 3·SMSS`. `flight` is `FlightSize` at that moment.
    fn on_enter_recovery(&mut self, now: Instant, flight: usize);

    /// Each further duplicate ACK during recovery: `cwnd += SMSS`
    /// (RFC 5681 §3.2 step 4, window inflation).
    fn on_recovery_dup_ack(&mut self);

    /// Partial ACK during recovery (RFC 6582 §3.2 step 3, "Partial
    /// acknowledgments"): deflate `cwnd` by `acked` bytes; if
    /// `acked >= SMSS`, add back `SMSS`.
    fn on_partial_ack(&mut self, acked: usize);

    /// Full ACK ends recovery (RFC 6582 §3.2 step 3, "Full
    /// acknowledgments", option (1)):
    /// `cwnd = min(ssthresh, max(flight, SMSS) + SMSS)` where `flight` is
    /// what remains outstanding after the ACK.
    fn on_exit_recovery(&mut self, flight: usize);

    /// Retransmission timeout (RFC 5681 §3.1 eq. 4 and loss window):
    /// `ssthresh = max(flight/2, 2·SMSS)`, `cwnd = 1·SMSS`.
    fn on_rto(&mut self, now: Instant, flight: usize);

    /// Loss detected in SACK-based recovery (RFC 6675 §5 step 4.2): reduce
    /// ssthresh; cwnd is then set by the caller's PRR (RFC 6937).
    fn on_loss_detected(&mut self, now: Instant, flight: usize);

    /// Sets cwnd (PRR, end of recovery); at least one SMSS.
    fn set_cwnd(&mut self, cwnd: usize);

    /// True while cwnd < ssthresh.
    fn in_slow_start(&self) -> bool;

    /// Restart after idle longer than the RTO (RFC 5681 §4.1):
    /// `cwnd = min(cwnd, RW)` with the restart window `RW` = the initial
    /// window.
    fn on_idle_restart(&mut self);

    /// The sender MSS became known or changed (after the handshake, or on a
    /// path-MTU change). Re-sizes the initial window if no ACK or loss has
    /// been processed yet.
    fn set_mss(&mut self, mss: usize);

    /// The congestion window, in bytes.
    fn cwnd(&self) -> usize;

    /// The slow-start threshold, in bytes.
    fn ssthresh(&self) -> usize;
}

/// Which congestion-control algorithm a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionAlgorithm {
    /// RFC 5681 slow start / congestion avoidance with RFC 6582 NewReno
    /// fast recovery.
    #[default]
    NewReno,
}

/// Enum dispatch over the algorithms (no `Box<dyn>`); implements
/// [`CongestionControl`] by delegating to the active variant.
#[derive(Debug, Clone)]
pub enum Congestion {
    NewReno(NewReno),
}

impl Congestion {
    /// A controller running `algorithm`, for sender MSS `mss` and an
    /// initial window of `initial_window_segments` segments (see
    /// [`initial_window`]; 0 selects the RFC 3390 formula).
    pub fn new(algorithm: CongestionAlgorithm, mss: usize, initial_window_segments: usize) -> Self {
        match algorithm {
            CongestionAlgorithm::NewReno => {
                Congestion::NewReno(NewReno::new(mss, initial_window_segments))
            }
        }
    }

    /// The algorithm this controller runs.
    pub fn algorithm(&self) -> CongestionAlgorithm {
        match self {
            Congestion::NewReno(_) => CongestionAlgorithm::NewReno,
        }
    }
}

impl CongestionControl for Congestion {
    #[inline]
    fn on_ack(&mut self, now: Instant, acked: usize, rtt: Option<Duration>) {
        match self {
            Congestion::NewReno(cc) => cc.on_ack(now, acked, rtt),
        }
    }

    #[inline]
    fn on_enter_recovery(&mut self, now: Instant, flight: usize) {
        match self {
            Congestion::NewReno(cc) => cc.on_enter_recovery(now, flight),
        }
    }

    #[inline]
    fn on_recovery_dup_ack(&mut self) {
        match self {
            Congestion::NewReno(cc) => cc.on_recovery_dup_ack(),
        }
    }

    #[inline]
    fn on_partial_ack(&mut self, acked: usize) {
        match self {
            Congestion::NewReno(cc) => cc.on_partial_ack(acked),
        }
    }

    #[inline]
    fn on_exit_recovery(&mut self, flight: usize) {
        match self {
            Congestion::NewReno(cc) => cc.on_exit_recovery(flight),
        }
    }

    #[inline]
    fn on_rto(&mut self, now: Instant, flight: usize) {
        match self {
            Congestion::NewReno(cc) => cc.on_rto(now, flight),
        }
    }

    #[inline]
    fn on_loss_detected(&mut self, now: Instant, flight: usize) {
        match self {
            Congestion::NewReno(cc) => cc.on_loss_detected(now, flight),
        }
    }

    #[inline]
    fn set_cwnd(&mut self, cwnd: usize) {
        match self {
            Congestion::NewReno(cc) => cc.set_cwnd(cwnd),
        }
    }

    #[inline]
    fn in_slow_start(&self) -> bool {
        match self {
            Congestion::NewReno(cc) => CongestionControl::in_slow_start(cc),
        }
    }

    #[inline]
    fn on_idle_restart(&mut self) {
        match self {
            Congestion::NewReno(cc) => cc.on_idle_restart(),
        }
    }

    #[inline]
    fn set_mss(&mut self, mss: usize) {
        match self {
            Congestion::NewReno(cc) => cc.set_mss(mss),
        }
    }

    #[inline]
    fn cwnd(&self) -> usize {
        match self {
            Congestion::NewReno(cc) => cc.cwnd(),
        }
    }

    #[inline]
    fn ssthresh(&self) -> usize {
        match self {
            Congestion::NewReno(cc) => cc.ssthresh(),
        }
    }
}

/// The initial congestion window in bytes.
///
/// - `segments > 0`: `segments·mss` (RFC 6928 §2 with the default of 10
///   segments). Like Linux, which counts the window in packets, this does
///   not apply RFC 6928's additional byte cap of `max(2·MSS, 14600)`, so
///   jumbo-frame paths get ten full segments.
/// - `segments == 0`: the older RFC 3390 §1 formula,
///   `min(4·MSS, max(2·MSS, 4380))`, for deployments configured to be
///   conservative.
///
/// Saturates instead of overflowing.
pub fn initial_window(mss: usize, segments: usize) -> usize {
    if segments == 0 {
        // RFC 3390 §1.
        mss.saturating_mul(4).min(mss.saturating_mul(2).max(4380))
    } else {
        // RFC 6928 §2.
        mss.saturating_mul(segments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_rfc6928() {
        assert_eq!(initial_window(1460, 10), 14_600);
        assert_eq!(initial_window(8960, 10), 89_600);
        assert_eq!(initial_window(536, 1), 536);
    }

    #[test]
    fn initial_window_rfc3390() {
        // MSS <= 1095: 4 segments.
        assert_eq!(initial_window(536, 0), 2144);
        assert_eq!(initial_window(1095, 0), 4380);
        // 1095 < MSS <= 2190: 4380 bytes (3 segments at 1460).
        assert_eq!(initial_window(1460, 0), 4380);
        assert_eq!(initial_window(2190, 0), 4380);
        // MSS > 2190: 2 segments.
        assert_eq!(initial_window(8960, 0), 17_920);
    }

    #[test]
    fn initial_window_saturates() {
        assert_eq!(initial_window(usize::MAX, 10), usize::MAX);
        assert_eq!(initial_window(usize::MAX, 0), usize::MAX);
    }

    #[test]
    fn enum_dispatch_delegates() {
        let mut cc = Congestion::new(CongestionAlgorithm::default(), 1000, 10);
        assert_eq!(cc.algorithm(), CongestionAlgorithm::NewReno);
        assert_eq!(cc.cwnd(), 10_000);
        cc.on_ack(Instant::ZERO, 1000, None);
        assert_eq!(cc.cwnd(), 11_000);
        cc.on_enter_recovery(Instant::ZERO, 20_000);
        assert_eq!(cc.ssthresh(), 10_000);
        assert_eq!(cc.cwnd(), 13_000);
        cc.on_recovery_dup_ack();
        assert_eq!(cc.cwnd(), 14_000);
        cc.on_partial_ack(2000);
        assert_eq!(cc.cwnd(), 13_000);
        cc.on_exit_recovery(5000);
        assert_eq!(cc.cwnd(), 6000);
        cc.on_rto(Instant::ZERO, 6000);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (1000, 3000));
        cc.set_mss(500);
        assert_eq!(cc.cwnd(), 1000);
        cc.on_idle_restart();
        assert_eq!(cc.cwnd(), 1000);
    }
}
