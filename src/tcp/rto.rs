//! Retransmission timeout estimation (RFC 6298).
//!
//! [`RtoEstimator`] turns round-trip-time samples into the retransmission
//! timeout (RTO) and applies exponential backoff when the timer fires. It
//! owns no timer: the connection arms and cancels its timer with
//! [`RtoEstimator::rto`] as the duration.

use std::time::Duration;

/// Tuning for [`RtoEstimator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtoConfig {
    /// RTO before the first RTT sample. RFC 6298 §2.1: 1 second.
    pub initial: Duration,
    /// Lower bound on the RTO. RFC 6298 §2.4 says 1 s ("SHOULD"); the
    /// default is Linux's 200 ms (`TCP_RTO_MIN`), which the RFC's own
    /// rationale allows for on low-latency paths and which every mainstream
    /// stack deploys.
    pub min: Duration,
    /// Upper bound on the RTO, including backoff. RFC 6298 §2.5 allows a
    /// maximum provided it is at least 60 s; the default is Linux's 120 s
    /// (`TCP_RTO_MAX`).
    pub max: Duration,
    /// Clock granularity `G` of RFC 6298 §2: the timer cannot resolve
    /// anything finer, so the variance term is never allowed below it.
    pub granularity: Duration,
}

impl Default for RtoConfig {
    fn default() -> Self {
        RtoConfig {
            initial: Duration::from_secs(1),
            min: Duration::from_millis(200),
            max: Duration::from_secs(120),
            granularity: Duration::from_millis(1),
        }
    }
}

/// RFC 6298 §2 constant K: RTO = SRTT + max(G, K·RTTVAR).
const K: u32 = 4;

/// The RFC 6298 retransmission-timer state of one connection: smoothed RTT,
/// RTT variance, the resulting RTO and the exponential-backoff count.
///
/// Every RTO this type reports is clamped to `[config.min, config.max]`
/// (if `min > max`, `max` wins).
///
/// **Karn's algorithm is the caller's job** (RFC 6298 §3): only feed
/// [`on_rtt_sample`](Self::on_rtt_sample) unambiguous samples, i.e. never
/// one measured from a segment that was retransmitted (unless the sample
/// comes from a TCP timestamp echo, RFC 7323 §4, which is unambiguous).
#[derive(Debug, Clone)]
pub struct RtoEstimator {
    config: RtoConfig,
    /// `None` until the first sample (RFC 6298 §2.1).
    srtt: Option<Duration>,
    /// Only meaningful once `srtt` is `Some`.
    rttvar: Duration,
    /// The RTO before backoff, already clamped.
    base: Duration,
    /// Number of [`backoff`](Self::backoff) calls since the last reset.
    backoff: u32,
}

impl RtoEstimator {
    /// A fresh estimator: no samples, RTO = `config.initial` (clamped),
    /// no backoff.
    pub fn new(config: RtoConfig) -> Self {
        RtoEstimator {
            config,
            srtt: None,
            rttvar: Duration::ZERO,
            base: clamp(config.initial, &config),
            backoff: 0,
        }
    }

    /// Feed one RTT measurement `rtt` and recompute the RTO.
    ///
    /// - First sample (RFC 6298 §2.2): SRTT = R, RTTVAR = R/2.
    /// - Later samples (RFC 6298 §2.3), RTTVAR first because it uses the
    ///   old SRTT: RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|, then
    ///   SRTT = 7/8·SRTT + 1/8·R.
    /// - Either way RTO = SRTT + max(G, 4·RTTVAR), clamped to
    ///   `[min, max]` (§2.4, §2.5).
    ///
    /// A new sample also clears the exponential backoff: RFC 6298 §5 (the
    /// note after rule 5.7) says a fresh measurement recomputes the RTO and
    /// may "collapse" it back down after backoff.
    ///
    /// The caller must apply Karn's algorithm (RFC 6298 §3): no samples
    /// from retransmitted segments.
    pub fn on_rtt_sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                // RFC 6298 §2.2.
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                // RFC 6298 §2.3, alpha = 1/8, beta = 1/4. Integer
                // arithmetic on nanoseconds: exact to 1 ns, no drift.
                let (rttvar, srtt) = smooth(self.rttvar, srtt, rtt);
                self.rttvar = rttvar;
                self.srtt = Some(srtt);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        // RFC 6298 §2.2/§2.3: RTO = SRTT + max(G, K·RTTVAR).
        let var = self.config.granularity.max(self.rttvar.saturating_mul(K));
        self.base = clamp(srtt.saturating_add(var), &self.config);
        // RFC 6298 §5, note after rule 5.7: a new sample undoes backoff.
        self.backoff = 0;
    }

    /// The current RTO: the estimate doubled once per
    /// [`backoff`](Self::backoff) since the last reset (RFC 6298 §5.5),
    /// clamped to `config.max` (§2.5).
    pub fn rto(&self) -> Duration {
        // 2^backoff as a u32 factor; past 2^31 any non-zero base exceeds
        // every representable maximum anyway.
        match 1u32.checked_shl(self.backoff) {
            Some(factor) => self
                .base
                .checked_mul(factor)
                .map_or(self.config.max, |d| d.min(self.config.max)),
            None if self.base.is_zero() => Duration::ZERO,
            None => self.config.max,
        }
    }

    /// The retransmission timer expired: double the RTO (RFC 6298 §5.5,
    /// "back off the timer"). The effective RTO saturates at `config.max`;
    /// the count keeps increasing (saturating at `u32::MAX`) so the caller
    /// can use [`backoff_count`](Self::backoff_count) for its give-up
    /// thresholds (RFC 9293 §3.8.3, R1/R2).
    pub fn backoff(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// Forget the backoff and return to the estimated RTO, e.g. when an ACK
    /// for new data arrives but yields no RTT sample (Karn).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// Number of [`backoff`](Self::backoff) calls since the last reset or
    /// RTT sample.
    pub fn backoff_count(&self) -> u32 {
        self.backoff
    }

    /// Smoothed RTT, `None` before the first sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTT variance, `None` before the first sample.
    pub fn rttvar(&self) -> Option<Duration> {
        self.srtt.map(|_| self.rttvar)
    }

    /// The configuration this estimator was built with.
    pub fn config(&self) -> &RtoConfig {
        &self.config
    }
}

/// Clamp to `[min, max]` (RFC 6298 §2.4 lower bound, §2.5 upper bound);
/// `max` wins on a misconfigured `min > max` instead of panicking.
fn clamp(d: Duration, config: &RtoConfig) -> Duration {
    d.max(config.min).min(config.max)
}

/// RFC 6298 §2.3 with alpha = 1/8 and beta = 1/4: the new
/// `(RTTVAR, SRTT)` from the old ones and the sample `rtt`.
///
/// Runs once per acknowledged RTT sample, so the common case (all three
/// below 2^60 ns, 36 years) is done on plain `u64` nanoseconds, where
/// nothing can saturate; it equals the `Duration` arithmetic exactly
/// (`Duration` division by 4 or 8 is the floor of the nanoseconds, as
/// 10^9 is a multiple of 8), which [`smooth_durations`] keeps for the rest.
#[inline]
fn smooth(rttvar: Duration, srtt: Duration, rtt: Duration) -> (Duration, Duration) {
    const SMALL: u128 = 1 << 60;
    let (v, s, r) = (rttvar.as_nanos(), srtt.as_nanos(), rtt.as_nanos());
    if v < SMALL && s < SMALL && r < SMALL {
        let (v, s, r) = (v as u64, s as u64, r as u64);
        let err = s.abs_diff(r);
        return (
            Duration::from_nanos((3 * v + err) / 4),
            Duration::from_nanos((7 * s + r) / 8),
        );
    }
    smooth_durations(rttvar, srtt, rtt)
}

/// [`smooth`] in saturating `Duration` arithmetic, for any magnitude.
fn smooth_durations(rttvar: Duration, srtt: Duration, rtt: Duration) -> (Duration, Duration) {
    let err = srtt.abs_diff(rtt);
    (
        rttvar.saturating_mul(3).saturating_add(err) / 4,
        srtt.saturating_mul(7).saturating_add(rtt) / 8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The nanosecond fast path gives exactly the `Duration` result,
        /// across the 2^60 ns boundary too.
        #[test]
        fn smoothing_fast_path_is_exact(
            v in any::<u64>(), s in any::<u64>(), r in any::<u64>(),
            vn in 0u32..1_000_000_000, sn in 0u32..1_000_000_000, rn in 0u32..1_000_000_000,
            shift in 0u32..64,
        ) {
            let d = |secs: u64, nanos: u32| Duration::new(secs >> shift, nanos);
            let (rttvar, srtt, rtt) = (d(v, vn), d(s, sn), d(r, rn));
            prop_assert_eq!(smooth(rttvar, srtt, rtt), smooth_durations(rttvar, srtt, rtt));
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn unclamped() -> RtoConfig {
        RtoConfig {
            initial: Duration::from_secs(1),
            min: Duration::ZERO,
            max: Duration::from_secs(1000),
            granularity: ms(1),
        }
    }

    #[test]
    fn default_config() {
        let c = RtoConfig::default();
        assert_eq!(c.initial, Duration::from_secs(1));
        assert_eq!(c.min, ms(200));
        assert_eq!(c.max, Duration::from_secs(120));
        assert_eq!(c.granularity, ms(1));
    }

    #[test]
    fn initial_rto_before_any_sample() {
        let e = RtoEstimator::new(RtoConfig::default());
        assert_eq!(e.rto(), Duration::from_secs(1));
        assert_eq!(e.srtt(), None);
        assert_eq!(e.rttvar(), None);
        assert_eq!(e.backoff_count(), 0);
    }

    #[test]
    fn first_sample_sets_srtt_rttvar_and_rto() {
        // RTO = R + max(G, 4·R/2) = R + max(G, 2R).
        let mut e = RtoEstimator::new(RtoConfig::default());
        e.on_rtt_sample(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), Some(ms(50)));
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn first_sample_rto_is_clamped_to_min() {
        // 10 ms + max(1 ms, 20 ms) = 30 ms, below the 200 ms floor.
        let mut e = RtoEstimator::new(RtoConfig::default());
        e.on_rtt_sample(ms(10));
        assert_eq!(e.srtt(), Some(ms(10)));
        assert_eq!(e.rto(), ms(200));
    }

    #[test]
    fn first_sample_rto_is_clamped_to_max() {
        // 60 s + 120 s = 180 s, above the 120 s ceiling.
        let mut e = RtoEstimator::new(RtoConfig::default());
        e.on_rtt_sample(Duration::from_secs(60));
        assert_eq!(e.rto(), Duration::from_secs(120));
    }

    #[test]
    fn granularity_floors_the_variance_term() {
        // A zero-variance path: RTO = SRTT + G, not SRTT.
        let config = RtoConfig {
            granularity: ms(10),
            ..unclamped()
        };
        let mut e = RtoEstimator::new(config);
        e.on_rtt_sample(Duration::from_micros(400));
        // 4·RTTVAR = 800 µs < G = 10 ms.
        assert_eq!(e.rto(), Duration::from_micros(400) + ms(10));
        // Drive RTTVAR towards zero with identical samples.
        for _ in 0..100 {
            e.on_rtt_sample(Duration::from_micros(400));
        }
        assert_eq!(e.srtt(), Some(Duration::from_micros(400)));
        assert_eq!(e.rto(), Duration::from_micros(400) + ms(10));
    }

    #[test]
    fn second_sample_updates_rttvar_before_srtt() {
        let mut e = RtoEstimator::new(unclamped());
        e.on_rtt_sample(ms(100));
        e.on_rtt_sample(ms(200));
        // RTTVAR = 3/4·50 + 1/4·|100 − 200| = 37.5 + 25 = 62.5 ms (uses old SRTT).
        assert_eq!(e.rttvar(), Some(Duration::from_micros(62_500)));
        // SRTT = 7/8·100 + 1/8·200 = 112.5 ms.
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        // RTO = 112.5 + 4·62.5 = 362.5 ms.
        assert_eq!(e.rto(), Duration::from_micros(362_500));
    }

    #[test]
    fn sample_below_srtt_uses_absolute_difference() {
        let mut e = RtoEstimator::new(unclamped());
        e.on_rtt_sample(ms(200));
        e.on_rtt_sample(ms(100));
        // RTTVAR = 3/4·100 + 1/4·100 = 100 ms; SRTT = 175 + 12.5 = 187.5 ms.
        assert_eq!(e.rttvar(), Some(ms(100)));
        assert_eq!(e.srtt(), Some(Duration::from_micros(187_500)));
        assert_eq!(e.rto(), Duration::from_micros(587_500));
    }

    #[test]
    fn converges_to_a_steady_rtt() {
        let mut e = RtoEstimator::new(unclamped());
        e.on_rtt_sample(ms(500));
        for _ in 0..200 {
            e.on_rtt_sample(ms(50));
        }
        let srtt = e.srtt().unwrap();
        assert!(srtt >= ms(50) && srtt < ms(51), "{srtt:?}");
        assert!(e.rttvar().unwrap() < ms(1));
    }

    #[test]
    fn backoff_doubles() {
        let mut e = RtoEstimator::new(RtoConfig::default());
        e.on_rtt_sample(ms(100)); // RTO 300 ms
        e.backoff();
        assert_eq!(e.rto(), ms(600));
        e.backoff();
        assert_eq!(e.rto(), ms(1200));
        e.backoff();
        assert_eq!(e.rto(), ms(2400));
        assert_eq!(e.backoff_count(), 3);
    }

    #[test]
    fn backoff_before_first_sample_doubles_initial() {
        let mut e = RtoEstimator::new(RtoConfig::default());
        e.backoff();
        assert_eq!(e.rto(), Duration::from_secs(2));
    }

    #[test]
    fn backoff_saturates_at_max() {
        let mut e = RtoEstimator::new(RtoConfig::default());
        for _ in 0..6 {
            e.backoff();
        }
        // 1 s · 64 = 64 s, still below 120 s.
        assert_eq!(e.rto(), Duration::from_secs(64));
        e.backoff();
        assert_eq!(e.rto(), Duration::from_secs(120));
        // Far past any shift width: still the max, no overflow or panic.
        for _ in 0..1000 {
            e.backoff();
        }
        assert_eq!(e.backoff_count(), 1007);
        assert_eq!(e.rto(), Duration::from_secs(120));
    }

    #[test]
    fn backoff_count_saturates() {
        let mut e = RtoEstimator::new(RtoConfig::default());
        e.backoff = u32::MAX - 1;
        e.backoff();
        e.backoff();
        assert_eq!(e.backoff_count(), u32::MAX);
        assert_eq!(e.rto(), Duration::from_secs(120));
    }

    #[test]
    fn reset_backoff_restores_estimate() {
        let mut e = RtoEstimator::new(RtoConfig::default());
        e.on_rtt_sample(ms(100));
        e.backoff();
        e.backoff();
        e.reset_backoff();
        assert_eq!(e.backoff_count(), 0);
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn new_sample_resets_backoff() {
        let mut e = RtoEstimator::new(RtoConfig::default());
        e.on_rtt_sample(ms(100));
        e.backoff();
        e.backoff();
        e.on_rtt_sample(ms(100));
        assert_eq!(e.backoff_count(), 0);
        // RTTVAR = 3/4·50 = 37.5 ms, SRTT = 100 ms: RTO = 250 ms.
        assert_eq!(e.rto(), ms(250));
    }

    #[test]
    fn misconfigured_min_above_max_uses_max() {
        let config = RtoConfig {
            min: Duration::from_secs(10),
            max: Duration::from_secs(5),
            ..RtoConfig::default()
        };
        let mut e = RtoEstimator::new(config);
        assert_eq!(e.rto(), Duration::from_secs(5));
        e.on_rtt_sample(ms(1));
        assert_eq!(e.rto(), Duration::from_secs(5));
    }

    #[test]
    fn huge_samples_do_not_overflow() {
        let config = RtoConfig {
            max: Duration::MAX,
            ..RtoConfig::default()
        };
        let mut e = RtoEstimator::new(config);
        e.on_rtt_sample(Duration::MAX);
        e.on_rtt_sample(Duration::MAX);
        e.on_rtt_sample(Duration::ZERO);
        e.backoff();
        assert!(e.rto() > Duration::from_secs(1));
    }
}
