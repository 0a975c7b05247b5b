//! CUBIC (RFC 9438): window growth as a cubic function of the time since
//! the last congestion event, with a Reno-friendly lower bound.
//!
//! Only the window arithmetic lives here; see the caller protocol on
//! [`CongestionControl`]. Windows are in bytes; the RFC's formulas, which
//! count segments, are scaled by SMSS. The cubic function itself is
//! evaluated in `f64` (deterministic IEEE arithmetic, so simulator runs
//! replay exactly); the per-ACK increments and the Reno estimate use exact
//! integer byte counting, so growth never stalls by rounding at large
//! windows.

use std::time::Duration;

use super::{
    initial_window, newreno_exit_cwnd, newreno_partial_ack, slow_start, AckSample,
    CongestionControl, HyStartPlusPlus, INITIAL_SSTHRESH,
};
use crate::tcp::Instant;

/// RFC 9438 §5: C = 0.4 (segments / s³).
pub const C: f64 = 0.4;
/// RFC 9438 §4.6: β_cubic = 0.7, as the fraction `BETA_NUM / BETA_DEN`.
const BETA_NUM: u128 = 7;
const BETA_DEN: u128 = 10;
/// RFC 9438 §4.3: α_cubic = 3·(1 − β_cubic)/(1 + β_cubic) = 0.9/1.7 = 9/17,
/// as `ALPHA_NUM / ALPHA_DEN`; α = 1 is `ALPHA_DEN / ALPHA_DEN`.
const ALPHA_NUM: u128 = 9;
const ALPHA_DEN: u128 = 17;

/// State of the current congestion-avoidance stage (RFC 9438 §4.2:
/// from `t_epoch` on).
#[derive(Debug, Clone, Copy)]
struct Epoch {
    /// `t_epoch` (moved forward by time spent not cwnd-limited, §5.8).
    start: Instant,
    /// K in seconds (§4.2, eq. 2); may be negative when the stage starts
    /// above W_max.
    k: f64,
    /// The W_max the curve is anchored at, in bytes.
    origin: usize,
    /// W_est, the Reno-friendly estimate (§4.3), in bytes.
    w_est: usize,
    /// W_est byte counting: acknowledged bytes × α numerator not yet turned
    /// into a whole SMSS of W_est (one SMSS per `ALPHA_DEN·cwnd`).
    w_est_credit: u128,
}

/// CUBIC congestion control state for one connection (RFC 9438).
///
/// # Rules
///
/// - **Slow start** (`cwnd < ssthresh`, §4.10): as NewReno (RFC 5681 §3.1
///   with RFC 3465 ABC), with HyStart++ (RFC 9406) in the initial slow
///   start.
/// - **Congestion avoidance** (§4.2–§4.5): at the first ACK of a stage,
///   `t_epoch = now`, `cwnd_epoch = cwnd`, `W_est = cwnd_epoch`, and
///   `K = ∛((W_max − cwnd_epoch)/C)`. If W_max is undefined (no loss yet,
///   HyStart++ left slow start, §4.10) or the stage follows a timeout
///   (§4.8), `K = 0` and `W_max = cwnd_epoch`. On each ACK, with
///   `t = now − t_epoch`:
///   - W_est grows by `α·SMSS` per `cwnd` bytes acknowledged, α = 9/17
///     until W_est reaches `cwnd_prior`, then 1 (§4.3);
///   - if `W_cubic(t) < W_est`, the Reno-friendly region: `cwnd = W_est`
///     (never lowered);
///   - otherwise (concave §4.4 / convex §4.5): `target = W_cubic(t + RTT)`
///     clamped to `[cwnd, 1.5·cwnd]` (§4.2), and cwnd grows by
///     `(target − cwnd)/cwnd` per SMSS acknowledged, counted exactly in
///     integers and applied in whole segments.
///     RTT is the smoothed RTT of the samples the ACKs carried.
/// - **Not cwnd-limited** (§5.8): no growth, and `t_epoch` moves forward
///   by the time spent so, so the curve does not run ahead while the
///   window is unused.
/// - **Congestion event** (fast recovery entry, SACK loss detection, first
///   RTO; §4.6, §4.7): fast convergence `W_max = cwnd·(1 + β)/2` if
///   `cwnd < W_max` else `W_max = cwnd`; `cwnd_prior = cwnd`;
///   `ssthresh = max(β·flight, 2·SMSS)`; the epoch ends.
/// - **Timeout** (§4.8): the congestion event above (once per run of
///   consecutive timeouts, RFC 5681 §3.1), `cwnd = 1·SMSS`.
/// - **Spurious congestion event** (§4.9): the connection restores a clone
///   taken before the response (see the caller protocol); all state,
///   including the epoch, is inline for that.
#[derive(Debug, Clone)]
pub struct Cubic {
    /// Sender MSS in bytes, at least 1.
    mss: usize,
    /// Configured initial window in segments (0 = RFC 3390 formula).
    iw_segments: usize,
    cwnd: usize,
    ssthresh: usize,
    /// W_max in bytes; 0 while undefined (no congestion event yet).
    w_max: usize,
    /// `cwnd_prior` (§4.6): cwnd at the last congestion event.
    cwnd_prior: usize,
    /// The next stage anchors the curve at its own start (K = 0,
    /// W_max = cwnd_epoch): after a timeout (§4.8).
    anchor_at_epoch: bool,
    /// The current congestion-avoidance stage, if one started.
    epoch: Option<Epoch>,
    /// Cubic-region byte counting: Σ acked·(target − cwnd) not yet turned
    /// into whole segments of growth (one SMSS per `cwnd·SMSS`).
    growth_credit: u128,
    /// Smoothed RTT of the samples seen (RFC 6298 gain 1/8), microseconds.
    srtt_us: Option<u64>,
    /// When the last ACK was processed (for §5.8's epoch shift).
    last_ack: Option<Instant>,
    /// No ACK or loss event processed yet: `set_mss` may re-size the
    /// initial window.
    pristine: bool,
    /// The last event was a timeout and no ACK advanced since (RFC 5681
    /// §3.1: ssthresh is reduced only on the first).
    in_rto_loss: bool,
    /// RFC 9406 HyStart++ for the initial slow start.
    hystart: HyStartPlusPlus,
}

impl Cubic {
    /// A fresh controller: `cwnd` = [`initial_window`]`(mss,
    /// initial_window_segments)`, `ssthresh` arbitrarily high, W_max
    /// undefined. An `mss` of 0 is treated as 1. `hystart` enables
    /// HyStart++ (RFC 9406) in the initial slow start.
    pub fn new(mss: usize, initial_window_segments: usize, hystart: bool) -> Self {
        let mss = mss.max(1);
        Cubic {
            mss,
            iw_segments: initial_window_segments,
            cwnd: initial_window(mss, initial_window_segments).max(mss),
            ssthresh: INITIAL_SSTHRESH,
            w_max: 0,
            cwnd_prior: 0,
            anchor_at_epoch: false,
            epoch: None,
            growth_credit: 0,
            srtt_us: None,
            last_ack: None,
            pristine: true,
            in_rto_loss: false,
            hystart: HyStartPlusPlus::new(hystart),
        }
    }

    /// The sender MSS this controller sizes its window with.
    pub fn mss(&self) -> usize {
        self.mss
    }

    /// W_max in bytes (0 while undefined).
    pub fn w_max(&self) -> usize {
        self.w_max
    }

    /// K of the current congestion-avoidance stage, in seconds.
    pub fn k(&self) -> Option<f64> {
        self.epoch.map(|e| e.k)
    }

    /// RFC 9438 §4.2 eq. (2), in bytes: `K = ∛((W_max − cwnd_epoch)/C)`
    /// with the windows counted in segments of `mss`.
    pub fn k_for(w_max: usize, cwnd_epoch: usize, mss: usize) -> f64 {
        ((w_max as f64 - cwnd_epoch as f64) / (C * mss as f64)).cbrt()
    }

    /// RFC 9438 §4.2 eq. (1), in bytes: `W_cubic(t) = C·(t − K)³ + W_max`
    /// (segments scaled by `mss`), saturated into `[0, usize::MAX / 2]`.
    pub fn w_cubic(t: f64, k: f64, origin: usize, mss: usize) -> usize {
        let d = t - k;
        let w = C * mss as f64 * d * d * d + origin as f64;
        // `as` saturates (negative and NaN become 0).
        (w as usize).min(INITIAL_SSTHRESH)
    }

    /// §4.6 `ssthresh = β_cubic·flight`, floored at 2·SMSS as in RFC 5681.
    fn beta_of(&self, flight: usize) -> usize {
        let reduced = (flight as u128 * BETA_NUM / BETA_DEN) as usize;
        reduced.max(self.mss.saturating_mul(2))
    }

    /// A congestion event (§4.6 multiplicative decrease, §4.7 fast
    /// convergence): everything but cwnd.
    fn congestion_event(&mut self, flight: usize) {
        if self.w_max != 0 && self.cwnd < self.w_max {
            // §4.7: the flow lost before reaching its previous W_max —
            // release bandwidth for newer flows: W_max = cwnd·(1 + β)/2.
            self.w_max = (self.cwnd as u128 * (BETA_DEN + BETA_NUM) / (2 * BETA_DEN)) as usize;
        } else {
            self.w_max = self.cwnd;
        }
        self.cwnd_prior = self.cwnd;
        self.ssthresh = self.beta_of(flight);
        self.epoch = None;
        self.growth_credit = 0;
        self.anchor_at_epoch = false;
        self.pristine = false;
        // RFC 9406 §4.2: a loss ends HyStart++; ssthresh is CUBIC's.
        self.hystart.on_congestion();
    }

    fn initial_window(&self) -> usize {
        initial_window(self.mss, self.iw_segments).max(self.mss)
    }

    fn rtt_term(&self) -> f64 {
        self.srtt_us.map_or(0.0, |us| us as f64 / 1e6)
    }

    /// RFC 6298 §2.3-style smoothing (gain 1/8) of the RTT samples.
    fn on_rtt_sample(&mut self, rtt: Duration) {
        let r = rtt.as_micros().min(u64::MAX as u128) as u64;
        self.srtt_us = Some(match self.srtt_us {
            None => r,
            Some(s) => s - s / 8 + r / 8,
        });
    }

    /// Begins a congestion-avoidance stage at `now` (§4.2, §4.3, §4.8,
    /// §4.10).
    fn start_epoch(&mut self, now: Instant) -> Epoch {
        let cwnd_epoch = self.cwnd;
        let (k, origin) = if self.w_max == 0 || self.anchor_at_epoch {
            // §4.10 (slow start left without loss: W_max undefined) and
            // §4.8 (first stage after a timeout): K = 0, W_max = cwnd_epoch.
            if self.w_max == 0 {
                self.cwnd_prior = cwnd_epoch;
            }
            self.w_max = cwnd_epoch;
            self.anchor_at_epoch = false;
            (0.0, cwnd_epoch)
        } else {
            (Self::k_for(self.w_max, cwnd_epoch, self.mss), self.w_max)
        };
        self.growth_credit = 0;
        Epoch {
            start: now,
            k,
            origin,
            // §4.3: "W_est is set equal to cwnd_epoch at the start of the
            // congestion avoidance stage."
            w_est: cwnd_epoch,
            w_est_credit: 0,
        }
    }

    /// Congestion avoidance for `acked` bytes (§4.2–§4.5).
    fn congestion_avoidance(&mut self, now: Instant, acked: usize) {
        let mut epoch = match self.epoch {
            Some(e) => e,
            None => self.start_epoch(now),
        };
        let cwnd = self.cwnd.max(1) as u128;
        let mss = self.mss as u128;

        // §4.3: W_est += α·(segments acked)/cwnd, with α = 1 once W_est
        // reached cwnd_prior.
        let alpha_num = if epoch.w_est >= self.cwnd_prior {
            ALPHA_DEN
        } else {
            ALPHA_NUM
        };
        epoch.w_est_credit += acked as u128 * alpha_num;
        let per_segment = ALPHA_DEN * cwnd;
        let segments = epoch.w_est_credit / per_segment;
        epoch.w_est_credit -= segments * per_segment;
        let w_est_growth = (segments * mss).min(INITIAL_SSTHRESH as u128) as usize;
        epoch.w_est = epoch.w_est.saturating_add(w_est_growth);

        let t = now.saturating_since(epoch.start).as_secs_f64();
        if Self::w_cubic(t, epoch.k, epoch.origin, self.mss) < epoch.w_est {
            // §4.3 Reno-friendly region: cwnd = W_est.
            self.cwnd = self.cwnd.max(epoch.w_est);
            self.growth_credit = 0;
        } else {
            // §4.4 concave / §4.5 convex region, §4.2 target.
            let w_next = Self::w_cubic(t + self.rtt_term(), epoch.k, epoch.origin, self.mss);
            let upper = self.cwnd.saturating_add(self.cwnd / 2);
            let target = w_next.clamp(self.cwnd, upper);
            let room = (target - self.cwnd) as u128;
            self.growth_credit += acked as u128 * room;
            // cwnd += (target − cwnd)/cwnd per SMSS acked: one SMSS per
            // cwnd·SMSS of credit.
            let per_step = cwnd * mss;
            let steps = self.growth_credit / per_step;
            if steps > 0 {
                let max_steps = room.div_ceil(mss).max(1);
                if steps > max_steps {
                    // A stretch ACK covering more than the target allows:
                    // stop at the target (rounded up to a segment).
                    self.growth_credit = 0;
                } else {
                    self.growth_credit -= steps * per_step;
                }
                let grow = (steps.min(max_steps) * mss).min(INITIAL_SSTHRESH as u128) as usize;
                self.cwnd = self.cwnd.saturating_add(grow);
            }
        }
        self.epoch = Some(epoch);
    }
}

impl CongestionControl for Cubic {
    fn on_ack(&mut self, ack: &AckSample) {
        self.pristine = false;
        self.in_rto_loss = false;
        if let Some(rtt) = ack.rtt {
            self.on_rtt_sample(rtt);
        }
        let previous_ack = self.last_ack.replace(ack.now);
        let acked = if self.cwnd < self.ssthresh {
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
        if !ack.cwnd_limited {
            // §5.8: an unused window is not grown, and the time the sender
            // spent not using it does not advance the curve (Linux shifts
            // epoch_start the same way after idle).
            if let (Some(epoch), Some(prev)) = (self.epoch.as_mut(), previous_ack) {
                epoch.start = (epoch.start + ack.now.saturating_since(prev)).min(ack.now);
            }
            return;
        }
        if acked > 0 && self.cwnd >= self.ssthresh {
            self.congestion_avoidance(ack.now, acked);
        }
    }

    fn on_enter_recovery(&mut self, _now: Instant, flight: usize) {
        // §4.6 with RFC 5681 §3.2 step 3's inflation by the three
        // segments the duplicate ACKs reported.
        self.congestion_event(flight);
        self.cwnd = self.ssthresh.saturating_add(self.mss.saturating_mul(3));
        self.in_rto_loss = false;
    }

    fn on_recovery_dup_ack(&mut self) {
        // RFC 5681 §3.2 step 4.
        self.cwnd = self.cwnd.saturating_add(self.mss);
        self.pristine = false;
    }

    fn on_partial_ack(&mut self, acked: usize) {
        self.cwnd = newreno_partial_ack(self.cwnd, acked, self.mss);
        self.in_rto_loss = false;
        self.pristine = false;
    }

    fn on_exit_recovery(&mut self, flight: usize) {
        self.cwnd = newreno_exit_cwnd(self.ssthresh, flight, self.mss);
        self.in_rto_loss = false;
        self.growth_credit = 0;
    }

    fn on_loss_detected(&mut self, _now: Instant, flight: usize) {
        // §4.6 / §4.7; PRR (RFC 6937) moves cwnd towards ssthresh.
        self.congestion_event(flight);
        self.in_rto_loss = false;
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd.max(self.mss);
        self.growth_credit = 0;
        self.pristine = false;
    }

    fn on_rto(&mut self, _now: Instant, flight: usize) {
        // §4.8: ssthresh as in §4.6 (only on the first of consecutive
        // timeouts, RFC 5681 §3.1), cwnd = 1 SMSS, and the next stage
        // starts with K = 0 and W_max = cwnd_epoch.
        if !self.in_rto_loss {
            self.congestion_event(flight);
            self.in_rto_loss = true;
        }
        self.cwnd = self.mss;
        self.epoch = None;
        self.growth_credit = 0;
        self.anchor_at_epoch = true;
        self.pristine = false;
    }

    fn on_idle_restart(&mut self) {
        // RFC 5681 §4.1: cwnd = min(RW, cwnd). A new stage starts from the
        // restarted window when avoidance resumes.
        self.cwnd = self.cwnd.min(self.initial_window());
        self.epoch = None;
        self.growth_credit = 0;
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
        if self.pristine {
            self.cwnd = self.initial_window();
        } else {
            self.cwnd = self.cwnd.max(self.mss);
            self.ssthresh = self.ssthresh.max(self.mss.saturating_mul(2));
            self.growth_credit = 0;
        }
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
    use crate::wire::SeqNum;

    const MSS: usize = 1000;
    const T0: Instant = Instant::ZERO;

    fn ack_at(now: Instant, acked: usize, rtt: Option<Duration>, limited: bool) -> AckSample {
        AckSample {
            now,
            acked,
            rtt,
            snd_una: SeqNum(0),
            snd_nxt: SeqNum(0),
            in_flight: 0,
            cwnd_limited: limited,
        }
    }

    /// A controller that lost at cwnd = `w_max` (flight = cwnd) and
    /// finished recovery at cwnd = ssthresh = β·w_max.
    fn after_loss(w_max: usize) -> Cubic {
        let mut cc = Cubic::new(MSS, 10, false);
        cc.set_cwnd(w_max);
        cc.on_loss_detected(T0, w_max);
        cc.set_cwnd(cc.ssthresh());
        cc
    }

    /// Acknowledges one window per RTT in per-segment ACKs spread over the
    /// RTT, from `start` for `rounds` round trips; returns cwnd after each.
    fn run_rounds(cc: &mut Cubic, start: Instant, rtt: Duration, rounds: usize) -> Vec<usize> {
        let mut now = start;
        let mut out = Vec::new();
        for _ in 0..rounds {
            let n = (cc.cwnd() / MSS).max(1);
            let gap = rtt / n as u32;
            for _ in 0..n {
                now += gap;
                cc.on_ack(&ack_at(now, MSS, Some(rtt), true));
            }
            out.push(cc.cwnd());
        }
        out
    }

    /// RFC 9438 §4.2 eq. (1)/(2) against hand-computed figures: W_max = 100
    /// segments, cwnd_epoch = 70: K = ∛(30/0.4) = ∛75 = 4.2172 s;
    /// W(0) = 70, W(K) = 100, W(K ± 1) = 100 ± 0.4, W(K + 2) = 103.2.
    #[test]
    fn k_and_w_cubic_hand_computed() {
        let k = Cubic::k_for(100 * MSS, 70 * MSS, MSS);
        assert!((k - 4.217_163).abs() < 1e-5, "K = {k}");
        assert!((69_999..=70_000).contains(&Cubic::w_cubic(0.0, k, 100 * MSS, MSS)));
        assert_eq!(Cubic::w_cubic(k, k, 100 * MSS, MSS), 100_000);
        assert_eq!(Cubic::w_cubic(k + 1.0, k, 100 * MSS, MSS), 100_400);
        assert_eq!(Cubic::w_cubic(k - 1.0, k, 100 * MSS, MSS), 99_600);
        assert_eq!(Cubic::w_cubic(k + 2.0, k, 100 * MSS, MSS), 103_200);
        // Negative values saturate at 0; huge ones at usize::MAX / 2.
        assert_eq!(Cubic::w_cubic(0.0, 1e6, 0, MSS), 0);
        assert_eq!(Cubic::w_cubic(1e12, 0.0, 0, MSS), usize::MAX / 2);
    }

    /// RFC 9438 §4.6: ssthresh = β_cubic·flight, W_max = cwnd, cwnd left to
    /// PRR; the first CA ACK starts an epoch with §4.2's K.
    #[test]
    fn multiplicative_decrease_and_epoch_start() {
        let mut cc = Cubic::new(MSS, 10, true);
        cc.set_cwnd(100 * MSS);
        cc.on_loss_detected(T0, 90 * MSS);
        assert_eq!(cc.ssthresh(), 63 * MSS);
        assert_eq!(cc.w_max(), 100 * MSS);
        assert_eq!(cc.cwnd(), 100 * MSS, "PRR owns cwnd");
        cc.set_cwnd(70 * MSS);
        assert!(cc.k().is_none());
        cc.on_ack(&ack_at(Instant::from_secs(1), MSS, None, true));
        let k = cc.k().unwrap();
        assert!((k - 4.217_163).abs() < 1e-5);
        // Floor: 2·SMSS.
        cc.on_loss_detected(T0, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        // NewReno-style entry: ssthresh + 3·SMSS.
        let mut cc = Cubic::new(MSS, 10, true);
        cc.on_enter_recovery(T0, 20 * MSS);
        assert_eq!((cc.ssthresh(), cc.cwnd()), (14 * MSS, 17 * MSS));
    }

    /// RFC 9438 §4.4/§4.5: growth per RTT shrinks while approaching W_max
    /// (concave), plateaus around t = K, and speeds up beyond (convex).
    #[test]
    fn concave_then_convex() {
        let rtt = Duration::from_millis(100);
        let mut cc = after_loss(100 * MSS);
        let start = Instant::from_secs(10);
        let w = run_rounds(&mut cc, start, rtt, 80); // 8 s; K = 4.2 s
        let growth = |i: usize| w[i] - w[i - 1];
        let early: usize = (1..6).map(growth).sum();
        let plateau: usize = (40..45).map(growth).sum();
        let late: usize = (75..80).map(growth).sum();
        assert!(early > plateau, "{w:?}");
        assert!(late > plateau, "{w:?}");
        // Concave region never overshoots W_max much before K, and the
        // window sits near W_max at t ≈ K.
        assert!(w[..38].iter().all(|&c| c <= 100 * MSS), "{w:?}");
        assert!((98 * MSS..=102 * MSS).contains(&w[42]), "{w:?}");
        assert!(w[79] > 105 * MSS, "{w:?}");
        // Monotone throughout.
        assert!(w.windows(2).all(|p| p[0] <= p[1]));
    }

    /// RFC 9438 §4.3: at a short RTT the Reno estimate outgrows the cubic
    /// curve and sets cwnd: about α = 9/17 SMSS per RTT, far above
    /// W_cubic(t).
    #[test]
    fn reno_friendly_region_dominates_at_small_rtt() {
        let rtt = Duration::from_millis(1);
        let mut cc = after_loss(100 * MSS);
        let start = Instant::from_secs(10);
        let w = run_rounds(&mut cc, start, rtt, 17);
        let t = 17.0 * 0.001;
        let k = Cubic::k_for(100 * MSS, 70 * MSS, MSS);
        let cubic = Cubic::w_cubic(t, k, 100 * MSS, MSS);
        assert!(cubic < 71 * MSS, "W_cubic({t}) = {cubic}");
        // 17 RTTs at α = 9/17 segment per window: ≈ 9 segments.
        assert!((78 * MSS..=80 * MSS).contains(&w[16]), "{w:?}");
    }

    /// RFC 9438 §4.3: α becomes 1 once W_est reaches cwnd_prior.
    #[test]
    fn reno_friendly_alpha_becomes_one_at_cwnd_prior() {
        let rtt = Duration::from_millis(1);
        let mut cc = after_loss(20 * MSS); // cwnd 14 segments, prior 20
        let w = run_rounds(&mut cc, Instant::from_secs(1), rtt, 40);
        let i = w.iter().position(|&c| c >= 20 * MSS).unwrap();
        // From there on, one segment per RTT (cubic still far below).
        assert_eq!(w[i + 10] - w[i], 10 * MSS, "{w:?}");
    }

    /// RFC 9438 §4.7: a loss before reaching the previous W_max lowers
    /// W_max to cwnd·(1 + β)/2; one at or above it sets W_max = cwnd.
    #[test]
    fn fast_convergence_lowers_w_max() {
        let mut cc = after_loss(100 * MSS);
        assert_eq!(cc.w_max(), 100 * MSS);
        cc.set_cwnd(80 * MSS);
        cc.on_loss_detected(T0, 80 * MSS);
        assert_eq!(cc.w_max(), 68 * MSS);
        assert_eq!(cc.ssthresh(), 56 * MSS);
        cc.set_cwnd(90 * MSS);
        cc.on_loss_detected(T0, 90 * MSS);
        assert_eq!(cc.w_max(), 90 * MSS);
    }

    /// RFC 9438 §4.2: the target is at most 1.5·cwnd, however far the
    /// curve has run.
    #[test]
    fn target_clamped_to_one_and_a_half_cwnd() {
        let mut cc = after_loss(100 * MSS);
        cc.on_ack(&ack_at(Instant::from_secs(1), 1, None, true)); // epoch starts
        assert_eq!(cc.cwnd(), 70 * MSS);
        // 100 s later the curve is at millions of segments; one ACK for
        // the whole window earns exactly (1.5·cwnd − cwnd).
        cc.on_ack(&ack_at(Instant::from_secs(101), 70 * MSS, None, true));
        assert_eq!(cc.cwnd(), 105 * MSS);
        cc.on_ack(&ack_at(Instant::from_secs(102), 1_000 * MSS, None, true));
        assert!(cc.cwnd() <= 158 * MSS, "{}", cc.cwnd());
    }

    /// RFC 9438 §4.8: timeout → ssthresh = β·flight (once per run of
    /// timeouts), cwnd = 1 SMSS; the next avoidance stage has K = 0 and
    /// W_max = cwnd_epoch.
    #[test]
    fn timeout() {
        let mut cc = Cubic::new(MSS, 10, true);
        cc.set_cwnd(100 * MSS);
        cc.on_rto(T0, 100 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 70 * MSS));
        cc.on_rto(T0, MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 70 * MSS), "held");
        let mut now = Instant::from_secs(1);
        while cc.in_slow_start() {
            now += Duration::from_millis(1);
            cc.on_ack(&ack_at(now, 2 * MSS, None, true));
        }
        assert_eq!(cc.cwnd(), 70 * MSS);
        cc.on_ack(&ack_at(now, MSS, None, true));
        assert_eq!(cc.k(), Some(0.0));
        assert_eq!(cc.w_max(), 70 * MSS);
        // A new timeout after progress is a new congestion event.
        cc.on_rto(now, 40 * MSS);
        assert_eq!(cc.ssthresh(), 28 * MSS);
    }

    /// RFC 9438 §5.8 / RFC 7661: no growth when not cwnd-limited, in slow
    /// start or avoidance, and the curve's clock stops meanwhile.
    #[test]
    fn no_growth_when_not_cwnd_limited() {
        let mut cc = Cubic::new(MSS, 10, true);
        for i in 0..50 {
            cc.on_ack(&ack_at(Instant::from_millis(i), MSS, None, false));
        }
        assert_eq!(cc.cwnd(), 10 * MSS);

        let mut a = after_loss(100 * MSS);
        a.on_ack(&ack_at(Instant::from_secs(1), 1, None, true));
        let mut b = a.clone();
        for s in 2..=11 {
            a.on_ack(&ack_at(Instant::from_secs(s), 10 * MSS, None, false));
        }
        assert_eq!(a.cwnd(), 70 * MSS);
        // Ten idle-ish seconds later `a` grows exactly as `b` does right away.
        a.on_ack(&ack_at(Instant::from_secs(12), 70 * MSS, None, true));
        b.on_ack(&ack_at(Instant::from_secs(2), 70 * MSS, None, true));
        assert_eq!(a.cwnd(), b.cwnd());
        assert!(b.cwnd() > 70 * MSS);
    }

    /// Byte counting is exact at windows where per-ACK rounding of
    /// (target − cwnd)·SMSS/cwnd would be zero: the first segment of growth
    /// arrives exactly after ⌈cwnd/(target − cwnd)⌉ full-segment ACKs.
    #[test]
    fn byte_counting_exact_at_large_windows() {
        let w_max = 5_000_000 * MSS; // 5 GB
        let mut cc = after_loss(w_max);
        let cwnd = cc.cwnd();
        assert_eq!(cwnd, 3_500_000 * MSS);
        let t1 = Instant::from_secs(100);
        cc.on_ack(&ack_at(t1, 1, None, true));
        assert_eq!(cc.cwnd(), cwnd);
        let now = t1 + Duration::from_millis(100);
        let k = Cubic::k_for(w_max, cwnd, MSS);
        let d = Cubic::w_cubic(0.1, k, w_max, MSS) - cwnd;
        assert!(d * MSS < cwnd, "naive per-ACK growth would round to 0");
        let n = cwnd.div_ceil(d);
        for _ in 0..n - 1 {
            cc.on_ack(&ack_at(now, MSS, None, true));
        }
        assert_eq!(cc.cwnd(), cwnd);
        cc.on_ack(&ack_at(now, MSS, None, true));
        assert_eq!(cc.cwnd(), cwnd + MSS);
    }

    #[test]
    fn idle_restart_and_set_mss() {
        let mut cc = Cubic::new(536, 10, true);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14_600);
        cc.set_cwnd(100_000);
        cc.on_idle_restart();
        assert_eq!(cc.cwnd(), 14_600);
        cc.set_mss(9000);
        assert_eq!(cc.cwnd(), 14_600);
        cc.on_rto(T0, 0);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (9000, 18_000));
    }

    #[test]
    fn newreno_recovery_hooks() {
        let mut cc = Cubic::new(MSS, 10, true);
        cc.on_enter_recovery(T0, 20 * MSS); // ssthresh 14, cwnd 17
        cc.on_recovery_dup_ack();
        assert_eq!(cc.cwnd(), 18 * MSS);
        cc.on_partial_ack(3 * MSS);
        assert_eq!(cc.cwnd(), 16 * MSS);
        cc.on_partial_ack(100 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        cc.on_exit_recovery(30 * MSS);
        assert_eq!(cc.cwnd(), 14 * MSS);
    }
}
