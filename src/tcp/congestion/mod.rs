//! Congestion control: the seam between the connection's loss-recovery
//! state machine and the window-growth algorithm.
//!
//! The split of responsibilities:
//!
//! - **The connection** owns everything about *which* event happened:
//!   duplicate-ACK counting, the RFC 6582 `recover` point, SACK loss
//!   detection (RFC 6675 / RACK), PRR (RFC 6937), RTO expiry, idle
//!   detection, Karn's rule and undo of spurious responses. It calls exactly
//!   one hook per event, as described on [`CongestionControl`].
//! - **The algorithm** owns `cwnd` and `ssthresh` and decides *how* they
//!   move in response: [`NewReno`] (RFC 5681 + RFC 6582) or [`Cubic`]
//!   (RFC 9438), both with [`HyStartPlusPlus`] (RFC 9406) in their initial
//!   slow start.
//!
//! Algorithms are dispatched statically through the [`Congestion`] enum so
//! the per-ACK path stays a jump table, not a virtual call. Every
//! algorithm's state lives inline (no heap), so [`Congestion`] is a cheap
//! `Clone`: the connection snapshots it when a congestion response starts
//! and restores the snapshot to undo a spurious one.
//!
//! All window quantities are in bytes.

pub mod cubic;
pub mod hystart;
pub mod newreno;

pub use cubic::Cubic;
pub use hystart::HyStartPlusPlus;
pub use newreno::NewReno;

use core::fmt;
use core::str::FromStr;
use std::time::Duration;

use crate::tcp::config::TcpConfig;
use crate::tcp::Instant;
use crate::wire::SeqNum;

/// One ACK that advanced SND.UNA (or SACKed new data) outside loss recovery.
#[derive(Debug, Clone, Copy)]
pub struct AckSample {
    pub now: Instant,
    /// Bytes newly delivered by this ACK (cumulatively acknowledged or newly SACKed).
    pub acked: usize,
    /// A fresh RTT sample from this ACK, if any (Karn-safe or from TSecr).
    pub rtt: Option<Duration>,
    /// SND.UNA after this ACK.
    pub snd_una: SeqNum,
    /// SND.NXT (highest sequence sent + 1) when the ACK arrived: HyStart++ rounds end when
    /// SND.UNA passes the SND.NXT recorded at the round's start (RFC 9406 §4.2 windowEnd).
    pub snd_nxt: SeqNum,
    /// Bytes still in flight after this ACK.
    pub in_flight: usize,
    /// Sending was limited by cwnd (not by the application or the peer's window) since the
    /// previous ACK. When false the window must not grow (RFC 7661 spirit; RFC 9438 §5.8 /
    /// Linux tcp_is_cwnd_limited).
    pub cwnd_limited: bool,
}

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
/// 3. On an ACK that advances `SND.UNA` (or SACKs new data) while **not**
///    in loss recovery, call [`on_ack`](Self::on_ack) with an
///    [`AckSample`]: the bytes newly delivered, an RTT sample if it has an
///    unambiguous one (Karn, RFC 6298 §3, or RFC 7323 TSecr), `SND.UNA`,
///    the highest `SND.NXT` sent, the bytes still in flight and whether
///    sending was cwnd-limited since the previous ACK (if not, the window
///    does not grow). Reset the duplicate-ACK count.
///
/// Then, for loss recovery, **one** of two modes per episode:
///
/// **A. NewReno fast recovery, for peers without SACK** (RFC 5681 §3.2,
/// RFC 6582):
///
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
///
/// **B. SACK-based recovery (RFC 6675) with PRR (RFC 6937)**, where the
/// connection drives `cwnd`:
///
/// 4. When loss is detected (RFC 6675 §5 / RACK) and not already in
///    recovery, call [`on_loss_detected`](Self::on_loss_detected) once with
///    the current `FlightSize`: it applies the multiplicative decrease to
///    [`ssthresh`](Self::ssthresh) and leaves `cwnd` alone. Further losses
///    in the same episode (before `recover` is acknowledged) call nothing.
/// 5. During recovery, on every ACK, compute PRR's `sndcnt` (RFC 6937 §3.1,
///    with `RecoverFS` = pipe at the start and `ssthresh()` as the target)
///    and set the window with [`set_cwnd`](Self::set_cwnd)`(pipe +
///    sndcnt)`. Do not call [`on_ack`](Self::on_ack) or the mode-A hooks.
/// 6. When recovery ends, call [`set_cwnd`](Self::set_cwnd)`(ssthresh())`
///    (RFC 6937 §3.1: "cwnd = ssthresh" on exiting recovery).
///
/// In both modes:
///
/// 7. When the retransmission timer expires: leave recovery if in it,
///    set `recover = SND.NXT − 1` (RFC 6582 §3.2 step 4), and call
///    [`on_rto`](Self::on_rto) with the `FlightSize` before anything is
///    marked lost. Call it on *every* expiry: the algorithm itself holds
///    `ssthresh` constant across consecutive timeouts of the same segment
///    (RFC 5681 §3.1).
/// 8. Undo: before calling `on_enter_recovery`, `on_loss_detected` or
///    `on_rto`, the connection may clone the [`Congestion`]; if the response
///    later proves spurious (D-SACK, RFC 3708; Eifel, RFC 3522), it restores
///    that clone. This is RFC 9438 §4.9's "restore the state saved before
///    the congestion event" (cwnd, ssthresh, W_max, cwnd_prior, K, the
///    epoch) and RFC 5681's undo for NewReno: every algorithm keeps all of
///    its state inline so the clone is complete.
pub trait CongestionControl {
    /// New data delivered outside loss recovery (protocol step 3).
    ///
    /// Slow start while `cwnd < ssthresh` (RFC 5681 §3.1, with RFC 3465
    /// Appropriate Byte Counting and limit `L = 2·SMSS` per ACK, and
    /// HyStart++ (RFC 9406) in the initial slow start when enabled), else
    /// the algorithm's congestion avoidance. Nothing grows when
    /// `!ack.cwnd_limited`.
    fn on_ack(&mut self, ack: &AckSample);

    /// Entering NewReno fast recovery after the third duplicate ACK
    /// (RFC 5681 §3.2 step 2, RFC 6582 §3.2 step 2): `ssthresh` = the
    /// algorithm's multiplicative decrease of `flight` (NewReno:
    /// `max(flight/2, 2·SMSS)`; CUBIC: `max(β_cubic·flight, 2·SMSS)` with
    /// its W_max / fast-convergence update), then `cwnd = ssthresh + 3·SMSS`.
    fn on_enter_recovery(&mut self, now: Instant, flight: usize);

    /// Each further duplicate ACK during NewReno recovery: `cwnd += SMSS`
    /// (RFC 5681 §3.2 step 4, window inflation).
    fn on_recovery_dup_ack(&mut self);

    /// Partial ACK during NewReno recovery (RFC 6582 §3.2 step 3, "Partial
    /// acknowledgments"): deflate `cwnd` by `acked` bytes; if
    /// `acked >= SMSS`, add back `SMSS`. Never below 1 SMSS.
    fn on_partial_ack(&mut self, acked: usize);

    /// Full ACK ends NewReno recovery (RFC 6582 §3.2 step 3, "Full
    /// acknowledgments", option (1)):
    /// `cwnd = min(ssthresh, max(flight, SMSS) + SMSS)` where `flight` is
    /// what remains outstanding after the ACK.
    fn on_exit_recovery(&mut self, flight: usize);

    /// Loss detected (first loss of a recovery episode): apply the multiplicative decrease to
    /// ssthresh (and the algorithm's own state: CUBIC W_max, K, epoch reset); leave cwnd alone —
    /// PRR sets it via set_cwnd during recovery and sets cwnd = ssthresh when recovery ends.
    fn on_loss_detected(&mut self, now: Instant, flight: usize);

    /// Set cwnd (PRR during recovery, ssthresh at its end, undo). Clamped to at least 1 SMSS.
    fn set_cwnd(&mut self, cwnd: usize);

    /// Retransmission timeout: `ssthresh` = the algorithm's multiplicative
    /// decrease of `flight` (RFC 5681 §3.1 eq. 4 for NewReno, RFC 9438 §4.8
    /// for CUBIC), only on the first of consecutive timeouts; `cwnd = 1·SMSS`
    /// (the loss window). Ends HyStart++ (RFC 9406 §4.2).
    fn on_rto(&mut self, now: Instant, flight: usize);

    /// Restart after idle longer than the RTO (RFC 5681 §4.1):
    /// `cwnd = min(cwnd, RW)` with the restart window `RW` = the initial
    /// window.
    fn on_idle_restart(&mut self);

    /// The sender MSS became known or changed (after the handshake, or on a
    /// path-MTU change). Re-sizes the initial window if no ACK or loss has
    /// been processed yet.
    fn set_mss(&mut self, mss: usize);

    /// The congestion window, in bytes (at least 1 SMSS).
    fn cwnd(&self) -> usize;

    /// The slow-start threshold, in bytes.
    fn ssthresh(&self) -> usize;

    /// True while in slow start (`cwnd < ssthresh`), including HyStart++'s
    /// conservative slow start.
    fn in_slow_start(&self) -> bool;
}

/// Which congestion-control algorithm a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionAlgorithm {
    /// RFC 5681 slow start / congestion avoidance with RFC 6582 NewReno
    /// fast recovery.
    NewReno,
    /// RFC 9438 CUBIC (the default, as on Linux).
    #[default]
    Cubic,
}

impl CongestionAlgorithm {
    /// Every algorithm, in the order the CLI lists them.
    pub const ALL: [CongestionAlgorithm; 2] =
        [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic];

    /// The name used on the command line and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            CongestionAlgorithm::NewReno => "newreno",
            CongestionAlgorithm::Cubic => "cubic",
        }
    }
}

impl fmt::Display for CongestionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A congestion-control name that is not one of [`CongestionAlgorithm::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCongestionAlgorithm(pub String);

impl fmt::Display for UnknownCongestionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown congestion control {:?}: use one of newreno, cubic",
            self.0
        )
    }
}

impl std::error::Error for UnknownCongestionAlgorithm {}

impl FromStr for CongestionAlgorithm {
    type Err = UnknownCongestionAlgorithm;

    /// Parses `newreno` / `reno` or `cubic`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "newreno" | "reno" => Ok(CongestionAlgorithm::NewReno),
            "cubic" => Ok(CongestionAlgorithm::Cubic),
            _ => Err(UnknownCongestionAlgorithm(s.to_owned())),
        }
    }
}

/// Enum dispatch over the algorithms (no `Box<dyn>`); implements
/// [`CongestionControl`] by delegating to the active variant. `Clone` is a
/// complete snapshot (see protocol step 8).
#[derive(Debug, Clone)]
pub enum Congestion {
    NewReno(NewReno),
    Cubic(Cubic),
}

impl Congestion {
    /// A controller running `algorithm`, for sender MSS `mss` and an
    /// initial window of `initial_window_segments` segments (see
    /// [`initial_window`]; 0 selects the RFC 3390 formula), with HyStart++
    /// in the initial slow start when `hystart`.
    pub fn new(
        algorithm: CongestionAlgorithm,
        mss: usize,
        initial_window_segments: usize,
        hystart: bool,
    ) -> Self {
        match algorithm {
            CongestionAlgorithm::NewReno => {
                Congestion::NewReno(NewReno::new(mss, initial_window_segments, hystart))
            }
            CongestionAlgorithm::Cubic => {
                Congestion::Cubic(Cubic::new(mss, initial_window_segments, hystart))
            }
        }
    }

    /// The controller a connection with configuration `cfg` starts with,
    /// for sender MSS `mss`.
    pub fn from_config(cfg: &TcpConfig, mss: usize) -> Self {
        Self::new(
            cfg.congestion,
            mss,
            cfg.initial_window_segments,
            cfg.hystart,
        )
    }

    /// The algorithm this controller runs.
    pub fn algorithm(&self) -> CongestionAlgorithm {
        match self {
            Congestion::NewReno(_) => CongestionAlgorithm::NewReno,
            Congestion::Cubic(_) => CongestionAlgorithm::Cubic,
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $cc:ident => $call:expr) => {
        match $self {
            Congestion::NewReno($cc) => $call,
            Congestion::Cubic($cc) => $call,
        }
    };
}

impl CongestionControl for Congestion {
    #[inline]
    fn on_ack(&mut self, ack: &AckSample) {
        dispatch!(self, cc => cc.on_ack(ack))
    }

    #[inline]
    fn on_enter_recovery(&mut self, now: Instant, flight: usize) {
        dispatch!(self, cc => cc.on_enter_recovery(now, flight))
    }

    #[inline]
    fn on_recovery_dup_ack(&mut self) {
        dispatch!(self, cc => cc.on_recovery_dup_ack())
    }

    #[inline]
    fn on_partial_ack(&mut self, acked: usize) {
        dispatch!(self, cc => cc.on_partial_ack(acked))
    }

    #[inline]
    fn on_exit_recovery(&mut self, flight: usize) {
        dispatch!(self, cc => cc.on_exit_recovery(flight))
    }

    #[inline]
    fn on_loss_detected(&mut self, now: Instant, flight: usize) {
        dispatch!(self, cc => cc.on_loss_detected(now, flight))
    }

    #[inline]
    fn set_cwnd(&mut self, cwnd: usize) {
        dispatch!(self, cc => cc.set_cwnd(cwnd))
    }

    #[inline]
    fn on_rto(&mut self, now: Instant, flight: usize) {
        dispatch!(self, cc => cc.on_rto(now, flight))
    }

    #[inline]
    fn on_idle_restart(&mut self) {
        dispatch!(self, cc => cc.on_idle_restart())
    }

    #[inline]
    fn set_mss(&mut self, mss: usize) {
        dispatch!(self, cc => cc.set_mss(mss))
    }

    #[inline]
    fn cwnd(&self) -> usize {
        dispatch!(self, cc => cc.cwnd())
    }

    #[inline]
    fn ssthresh(&self) -> usize {
        dispatch!(self, cc => cc.ssthresh())
    }

    #[inline]
    fn in_slow_start(&self) -> bool {
        dispatch!(self, cc => cc.in_slow_start())
    }
}

/// RFC 5681 §3.1: "the initial value of ssthresh SHOULD be set arbitrarily
/// high (e.g., to the size of the largest possible advertised window)". Half
/// of `usize::MAX` leaves headroom so `ssthresh + k·SMSS` cannot overflow.
pub(crate) const INITIAL_SSTHRESH: usize = usize::MAX / 2;

/// RFC 3465 §2.2: the slow-start increase per ACK is capped at `L·SMSS`,
/// with `L = 2` recommended (it covers a delayed ACK of two segments).
/// RFC 9406 §4.3 allows up to 8 for unpaced senders; the stricter ABC
/// limit is kept for both algorithms.
pub(crate) const ABC_LIMIT_SEGMENTS: usize = 2;

/// The slow-start part of an ACK, shared by every algorithm: RFC 5681 §3.1
/// with RFC 3465 §2.2 ABC, and HyStart++ (RFC 9406) when it is active.
///
/// Grows `*cwnd` (never past `*ssthresh`) and returns how many of the
/// ACK's bytes were not needed to reach `ssthresh`, for the caller's
/// congestion avoidance (as Linux's `tcp_slow_start` does). Returns 0 and
/// leaves the window alone when the ACK is not cwnd-limited. When
/// HyStart++ ends slow start it sets `*ssthresh = *cwnd` and the whole ACK
/// is returned to congestion avoidance.
pub(crate) fn slow_start(
    cwnd: &mut usize,
    ssthresh: &mut usize,
    mss: usize,
    hystart: &mut HyStartPlusPlus,
    ack: &AckSample,
) -> usize {
    let phase = hystart.on_slow_start_ack(ack);
    if phase == hystart::Phase::ExitToAvoidance {
        // RFC 9406 §4.2: after CSS_ROUNDS rounds of CSS, "set ssthresh =
        // cwnd" and enter congestion avoidance.
        *ssthresh = (*cwnd).max(mss.saturating_mul(2));
        if *cwnd >= *ssthresh {
            return ack.acked;
        }
    }
    if !ack.cwnd_limited || ack.acked == 0 {
        return 0;
    }
    let limited = ack.acked.min(mss.saturating_mul(ABC_LIMIT_SEGMENTS));
    let increase = hystart.scale_increase(phase, limited);
    let room = ssthresh.saturating_sub(*cwnd);
    if increase < room {
        *cwnd += increase;
        0
    } else {
        // Reaching ssthresh: stop there and let the rest of this ACK count
        // towards congestion avoidance (RFC 5681 §3.1 allows either
        // algorithm at cwnd == ssthresh).
        *cwnd = *ssthresh;
        ack.acked - room.min(ack.acked)
    }
}

/// RFC 6582 §3.2 step 3, "Partial acknowledgments", shared by every
/// algorithm's SACK-less fast recovery: deflate cwnd by the bytes `acked`,
/// add back one SMSS if at least that much was acknowledged, and never go
/// below one SMSS (the partial ACK's retransmission must fit).
pub(crate) fn newreno_partial_ack(cwnd: usize, acked: usize, mss: usize) -> usize {
    let mut cwnd = cwnd.saturating_sub(acked);
    if acked >= mss {
        cwnd = cwnd.saturating_add(mss);
    }
    cwnd.max(mss)
}

/// RFC 6582 §3.2 step 3, "Full acknowledgments", option (1), shared by
/// every algorithm: deflate to at most ssthresh, but to no more than one
/// SMSS above what is still outstanding, so leaving recovery causes no burst.
pub(crate) fn newreno_exit_cwnd(ssthresh: usize, flight: usize, mss: usize) -> usize {
    let burst_limited = flight.max(mss).saturating_add(mss);
    ssthresh.min(burst_limited).max(mss)
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

    /// An ACK of `n` bytes, cwnd-limited, without an RTT sample.
    pub(crate) fn acked(now: Instant, n: usize) -> AckSample {
        AckSample {
            now,
            acked: n,
            rtt: None,
            snd_una: SeqNum(0),
            snd_nxt: SeqNum(0),
            in_flight: 0,
            cwnd_limited: true,
        }
    }

    #[test]
    fn enum_dispatch_delegates() {
        let mut cc = Congestion::new(CongestionAlgorithm::NewReno, 1000, 10, true);
        assert_eq!(cc.algorithm(), CongestionAlgorithm::NewReno);
        assert_eq!(cc.cwnd(), 10_000);
        cc.on_ack(&acked(Instant::ZERO, 1000));
        assert_eq!(cc.cwnd(), 11_000);
        assert!(cc.in_slow_start());
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
        cc.on_loss_detected(Instant::ZERO, 8000);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (1000, 4000));
        cc.set_cwnd(0);
        assert_eq!(cc.cwnd(), 500, "clamped to 1 SMSS");
        cc.set_cwnd(4000);
        assert_eq!(cc.cwnd(), 4000);

        let mut cc = Congestion::new(CongestionAlgorithm::Cubic, 1000, 10, true);
        assert_eq!(cc.algorithm(), CongestionAlgorithm::Cubic);
        cc.on_loss_detected(Instant::ZERO, 20_000);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (10_000, 14_000));
    }

    #[test]
    fn default_is_cubic_with_hystart() {
        assert_eq!(CongestionAlgorithm::default(), CongestionAlgorithm::Cubic);
        let cfg = TcpConfig::default();
        assert_eq!(cfg.congestion, CongestionAlgorithm::Cubic);
        assert!(cfg.hystart);
        assert_eq!(
            Congestion::from_config(&cfg, 1460).algorithm(),
            CongestionAlgorithm::Cubic
        );
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in CongestionAlgorithm::ALL {
            assert_eq!(a.to_string().parse::<CongestionAlgorithm>(), Ok(a));
        }
        assert_eq!("NewReno".parse(), Ok(CongestionAlgorithm::NewReno));
        assert_eq!(" CUBIC ".parse(), Ok(CongestionAlgorithm::Cubic));
        let err = "bbr".parse::<CongestionAlgorithm>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown congestion control \"bbr\": use one of newreno, cubic"
        );
    }

    /// The snapshot the connection takes for undo is small and complete.
    #[test]
    fn snapshot_restores_everything() {
        assert!(std::mem::size_of::<Congestion>() <= 256);
        let mut cc = Congestion::new(CongestionAlgorithm::Cubic, 1000, 10, true);
        cc.on_loss_detected(Instant::ZERO, 40_000);
        cc.set_cwnd(cc.ssthresh());
        for i in 0..200 {
            cc.on_ack(&acked(Instant::from_millis(10 * i), 1000));
        }
        let saved = cc.clone();
        let mut replay = saved.clone();
        cc.on_loss_detected(Instant::from_secs(2), 60_000);
        cc.set_cwnd(cc.ssthresh());
        // Undo, then both continue identically.
        cc = saved;
        for i in 0..100 {
            let a = acked(Instant::from_secs(2) + Duration::from_millis(10 * i), 1000);
            cc.on_ack(&a);
            replay.on_ack(&a);
            assert_eq!(
                (cc.cwnd(), cc.ssthresh()),
                (replay.cwnd(), replay.ssthresh())
            );
        }
    }

    /// RFC 9406 in both algorithms: a delay rise ends the initial slow
    /// start through CSS (growth divided by 4) with ssthresh = cwnd after
    /// CSS_ROUNDS rounds; a steady RTT keeps slow start going; with
    /// HyStart++ disabled the delay rise changes nothing.
    #[test]
    fn hystart_ends_slow_start_in_both_algorithms() {
        use hystart::tests::Rounds;
        for algorithm in CongestionAlgorithm::ALL {
            let mut cc = Congestion::new(algorithm, 1000, 10, true);
            let mut r = Rounds::new();
            for a in r.round(10, 50) {
                cc.on_ack(&a);
            }
            assert_eq!(cc.cwnd(), 20_000);
            // Delay rises by 10 ms (> 50/8 → 6.25 ms): CSS from the 8th ACK.
            for a in r.round(10, 60) {
                cc.on_ack(&a);
            }
            assert_eq!(cc.cwnd(), 20_000 + 8 * 1000 + 2 * 250, "{algorithm}");
            assert!(cc.in_slow_start());
            let mut rounds = 1;
            while cc.in_slow_start() {
                let acks = r.round(10, 60);
                for a in acks {
                    cc.on_ack(&a);
                }
                rounds += 1;
                assert!(rounds <= hystart::CSS_ROUNDS + 1, "{algorithm}");
            }
            assert_eq!(rounds, hystart::CSS_ROUNDS + 1, "{algorithm}");
            assert_eq!(
                cc.ssthresh(),
                28_500 + 4 * 2500,
                "{algorithm}: ssthresh = cwnd at exit"
            );

            // Without HyStart++, the same rise keeps doubling.
            let mut cc = Congestion::new(algorithm, 1000, 10, false);
            let mut r = Rounds::new();
            for rtt in [50, 60, 60] {
                for a in r.round(10, rtt) {
                    cc.on_ack(&a);
                }
            }
            assert_eq!(cc.cwnd(), 40_000);
            assert!(cc.in_slow_start());
        }
    }

    /// RFC 9406 §4.2 last paragraph: a loss in CSS sets ssthresh by the
    /// algorithm's own decrease, not to cwnd.
    #[test]
    fn loss_in_css_uses_the_algorithms_decrease() {
        use hystart::tests::Rounds;
        for (algorithm, expected) in [
            (CongestionAlgorithm::NewReno, 15_000),
            (CongestionAlgorithm::Cubic, 21_000),
        ] {
            let mut cc = Congestion::new(algorithm, 1000, 10, true);
            let mut r = Rounds::new();
            for rtt in [50, 60] {
                for a in r.round(10, rtt) {
                    cc.on_ack(&a);
                }
            }
            cc.on_loss_detected(Instant::ZERO, 30_000);
            assert_eq!(cc.ssthresh(), expected, "{algorithm}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Event {
            Ack {
                dt_us: u64,
                acked: usize,
                rtt_us: Option<u64>,
                advance: u32,
                limited: bool,
            },
            EnterRecovery(usize),
            DupAck,
            PartialAck(usize),
            ExitRecovery(usize),
            LossDetected(usize),
            SetCwnd(usize),
            Rto(usize),
            IdleRestart,
            SetMss(usize),
        }

        fn bytes() -> impl Strategy<Value = usize> {
            prop_oneof![0usize..100_000, Just(0), Just(usize::MAX), any::<usize>()]
        }

        fn event() -> impl Strategy<Value = Event> {
            prop_oneof![
                6 => (
                    prop_oneof![0u64..200_000, any::<u64>().prop_map(|t| t >> 8)],
                    bytes(),
                    proptest::option::of(prop_oneof![0u64..500_000, any::<u64>().prop_map(|t| t >> 8)]),
                    0u32..100_000,
                    any::<bool>()
                )
                    .prop_map(|(dt_us, acked, rtt_us, advance, limited)| Event::Ack {
                        dt_us,
                        acked,
                        rtt_us,
                        advance,
                        limited
                    }),
                1 => bytes().prop_map(Event::EnterRecovery),
                1 => Just(Event::DupAck),
                1 => bytes().prop_map(Event::PartialAck),
                1 => bytes().prop_map(Event::ExitRecovery),
                1 => bytes().prop_map(Event::LossDetected),
                1 => bytes().prop_map(Event::SetCwnd),
                1 => bytes().prop_map(Event::Rto),
                1 => Just(Event::IdleRestart),
                1 => prop_oneof![0usize..10_000, Just(usize::MAX), Just(65_535)].prop_map(Event::SetMss),
            ]
        }

        proptest! {
            /// For arbitrary event sequences, neither algorithm panics
            /// (debug builds check overflow), and cwnd stays at least one
            /// SMSS and ssthresh at least 2·SMSS once a loss set it.
            #[test]
            fn cwnd_never_below_one_smss(
                algorithm in prop_oneof![Just(CongestionAlgorithm::NewReno), Just(CongestionAlgorithm::Cubic)],
                hystart in any::<bool>(),
                mss in 1usize..9000,
                events in proptest::collection::vec(event(), 1..200),
            ) {
                let mut cc = Congestion::new(algorithm, mss, 10, hystart);
                let mut mss = mss;
                let mut now = Instant::ZERO;
                let mut una = SeqNum(7);
                for e in events {
                    match e {
                        Event::Ack { dt_us, acked, rtt_us, advance, limited } => {
                            now += Duration::from_micros(dt_us);
                            una += advance as usize;
                            cc.on_ack(&AckSample {
                                now,
                                acked,
                                rtt: rtt_us.map(Duration::from_micros),
                                snd_una: una,
                                snd_nxt: una + (advance as usize) * 2,
                                in_flight: acked,
                                cwnd_limited: limited,
                            });
                        }
                        Event::EnterRecovery(f) => cc.on_enter_recovery(now, f),
                        Event::DupAck => cc.on_recovery_dup_ack(),
                        Event::PartialAck(a) => cc.on_partial_ack(a),
                        Event::ExitRecovery(f) => cc.on_exit_recovery(f),
                        Event::LossDetected(f) => {
                            cc.on_loss_detected(now, f);
                            prop_assert!(cc.ssthresh() >= mss.saturating_mul(2));
                        }
                        Event::SetCwnd(c) => cc.set_cwnd(c),
                        Event::Rto(f) => {
                            cc.on_rto(now, f);
                            prop_assert_eq!(cc.cwnd(), mss);
                        }
                        Event::IdleRestart => cc.on_idle_restart(),
                        Event::SetMss(m) => {
                            cc.set_mss(m);
                            mss = m.max(1);
                        }
                    }
                    prop_assert!(cc.cwnd() >= mss, "cwnd {} < mss {} after {:?}", cc.cwnd(), mss, cc);
                    prop_assert!(cc.ssthresh() >= 1);
                }
            }
        }
    }
}
