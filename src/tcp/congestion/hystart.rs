//! HyStart++ (RFC 9406): leaving the initial slow start on a rise in
//! delay, before the queue overflows, through a phase of conservative
//! slow start (CSS) that guards against exiting on a spurious delay rise.
//!
//! This component only *decides*; the algorithm that owns it ([`NewReno`]
//! or [`Cubic`]) applies the decision to its window through
//! [`slow_start`](super::slow_start).
//!
//! Rounds are delimited with sequence numbers (RFC 9406 §4.2): a round
//! starts with `windowEnd = SND.NXT` and ends when `SND.UNA` reaches
//! `windowEnd`. We do not pace, so RFC 9406 §4.3 allows `L = 8`; the
//! per-ACK increase is instead limited by RFC 3465 ABC (`L = 2`), which the
//! shared slow start applies before [`HyStartPlusPlus::scale_increase`].
//!
//! [`NewReno`]: super::NewReno
//! [`Cubic`]: super::Cubic

use std::time::Duration;

use super::AckSample;
use crate::wire::SeqNum;

/// RFC 9406 §4.3: lower bound of the RTT-increase threshold.
pub const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// RFC 9406 §4.3: upper bound of the RTT-increase threshold.
pub const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// RFC 9406 §4.3: the threshold is `lastRoundMinRTT / MIN_RTT_DIVISOR`, clamped.
pub const MIN_RTT_DIVISOR: u32 = 8;
/// RFC 9406 §4.3: RTT samples a round needs before its minimum is trusted.
pub const N_RTT_SAMPLE: u32 = 8;
/// RFC 9406 §4.3: CSS grows the window this many times slower than slow start.
pub const CSS_GROWTH_DIVISOR: usize = 4;
/// RFC 9406 §4.3: rounds of CSS before congestion avoidance.
pub const CSS_ROUNDS: u32 = 5;

/// What the slow start should do with one ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Standard slow start (also when HyStart++ is disabled or finished).
    SlowStart,
    /// Conservative slow start: growth divided by [`CSS_GROWTH_DIVISOR`].
    Conservative,
    /// CSS lasted [`CSS_ROUNDS`] rounds: set `ssthresh = cwnd` and enter
    /// congestion avoidance (RFC 9406 §4.2). Reported once.
    ExitToAvoidance,
}

/// HyStart++ state for one connection's initial slow start. All inline
/// (`Copy`), so congestion snapshots include it.
#[derive(Debug, Clone, Copy)]
pub struct HyStartPlusPlus {
    /// Still watching: enabled in the configuration, and neither a loss nor
    /// the end of CSS has ended the initial slow start. RFC 9406 §4.2:
    /// HyStart++ is used only in the initial slow start; later slow starts
    /// (after an RTO) stop at the ssthresh the loss established.
    active: bool,
    /// `windowEnd`: the round ends when SND.UNA reaches it.
    window_end: Option<SeqNum>,
    /// `lastRoundMinRTT` (None = infinity).
    last_round_min_rtt: Option<Duration>,
    /// `currentRoundMinRTT` (None = infinity).
    current_round_min_rtt: Option<Duration>,
    /// `rttSampleCount` of the current round.
    rtt_sample_count: u32,
    /// `cssBaselineMinRtt`; `Some` exactly while in CSS.
    css_baseline_min_rtt: Option<Duration>,
    /// Rounds that ended while in CSS (the one CSS started in included).
    css_rounds: u32,
    /// Bytes of CSS growth not yet applied (below CSS_GROWTH_DIVISOR), so
    /// the division loses nothing over many small ACKs.
    css_growth_remainder: usize,
}

impl HyStartPlusPlus {
    /// A fresh detector; `enabled = false` makes it inert (standard slow
    /// start throughout).
    pub fn new(enabled: bool) -> Self {
        HyStartPlusPlus {
            active: enabled,
            window_end: None,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            rtt_sample_count: 0,
            css_baseline_min_rtt: None,
            css_rounds: 0,
            css_growth_remainder: 0,
        }
    }

    /// True while HyStart++ still governs slow start.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// True while in conservative slow start.
    pub fn in_css(&self) -> bool {
        self.active && self.css_baseline_min_rtt.is_some()
    }

    /// Loss, ECN or RTO: RFC 9406 §4.2, "if loss or ECN-marking is observed
    /// anytime during standard slow start or CSS, ... exit"; the algorithm
    /// sets ssthresh by its own multiplicative decrease (NewReno halving,
    /// CUBIC β_cubic), and HyStart++ is not used again.
    pub fn on_congestion(&mut self) {
        self.active = false;
        self.css_baseline_min_rtt = None;
        self.css_growth_remainder = 0;
    }

    /// Processes one ACK in slow start (RFC 9406 §4.2) and says how the
    /// window may grow *for this ACK*. As in the RFC's per-ACK steps, the
    /// window update comes first and the RTT checks after it, so a switch
    /// between standard and conservative slow start takes effect from the
    /// next ACK. Rounds and RTT minima are tracked whether or not the ACK
    /// was cwnd-limited.
    pub fn on_slow_start_ack(&mut self, ack: &AckSample) -> Phase {
        if !self.active {
            return Phase::SlowStart;
        }
        match self.window_end {
            None => self.start_round(ack.snd_nxt),
            Some(end) if ack.snd_una >= end => {
                if self.css_baseline_min_rtt.is_some() {
                    self.css_rounds += 1;
                }
                self.start_round(ack.snd_nxt);
            }
            Some(_) => {}
        }
        if self.css_baseline_min_rtt.is_some() && self.css_rounds >= CSS_ROUNDS {
            // RFC 9406 §4.2: "If CSS_ROUNDS rounds are complete, enter
            // congestion avoidance by setting the ssthresh to the current
            // cwnd."
            self.on_congestion();
            return Phase::ExitToAvoidance;
        }
        let growth = if self.css_baseline_min_rtt.is_some() {
            Phase::Conservative
        } else {
            Phase::SlowStart
        };
        if let Some(rtt) = ack.rtt {
            self.current_round_min_rtt =
                Some(self.current_round_min_rtt.map_or(rtt, |m| m.min(rtt)));
            self.rtt_sample_count = self.rtt_sample_count.saturating_add(1);
        }
        if self.rtt_sample_count < N_RTT_SAMPLE {
            return growth;
        }
        match (self.css_baseline_min_rtt, self.current_round_min_rtt) {
            (None, Some(current)) => {
                if let Some(last) = self.last_round_min_rtt {
                    // RFC 9406 §4.2: RttThresh = max(MIN_RTT_THRESH,
                    // min(lastRoundMinRTT / MIN_RTT_DIVISOR, MAX_RTT_THRESH)).
                    let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                    if current >= last + thresh {
                        self.css_baseline_min_rtt = Some(current);
                        self.css_rounds = 0;
                        self.css_growth_remainder = 0;
                    }
                }
            }
            (Some(baseline), Some(current)) if current < baseline => {
                // RFC 9406 §4.2: the delay rise was spurious — resume
                // standard slow start.
                self.css_baseline_min_rtt = None;
                self.css_growth_remainder = 0;
            }
            _ => {}
        }
        growth
    }

    /// The slow-start increase for `increase` bytes of (ABC-limited)
    /// growth in `phase`: unchanged in standard slow start, divided by
    /// [`CSS_GROWTH_DIVISOR`] in CSS (RFC 9406 §4.2), carrying the remainder.
    pub fn scale_increase(&mut self, phase: Phase, increase: usize) -> usize {
        if phase != Phase::Conservative {
            return increase;
        }
        let total = increase.saturating_add(self.css_growth_remainder);
        self.css_growth_remainder = total % CSS_GROWTH_DIVISOR;
        total / CSS_GROWTH_DIVISOR
    }

    /// RFC 9406 §4.2, at the start of each round.
    fn start_round(&mut self, snd_nxt: SeqNum) {
        self.window_end = Some(snd_nxt);
        self.last_round_min_rtt = self.current_round_min_rtt;
        self.current_round_min_rtt = None;
        self.rtt_sample_count = 0;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tcp::Instant;

    /// Drives a detector through whole rounds of `acks` ACKs each, one RTT
    /// sample per ACK, sequence numbers advancing by one unit per ACK.
    pub(crate) struct Rounds {
        pub una: SeqNum,
        pub nxt: SeqNum,
    }

    impl Rounds {
        pub fn new() -> Self {
            Rounds {
                una: SeqNum(1000),
                nxt: SeqNum(1000),
            }
        }

        /// The ACKs of one round: the sender has `acks` units outstanding at
        /// the round's start and keeps as many in flight.
        pub fn round(&mut self, acks: usize, rtt_ms: u64) -> Vec<AckSample> {
            self.nxt = self.una + acks;
            (0..acks)
                .map(|_| {
                    self.una += 1;
                    self.nxt += 1;
                    ack(self.una, self.nxt, Some(Duration::from_millis(rtt_ms)))
                })
                .collect()
        }
    }

    pub(crate) fn ack(una: SeqNum, nxt: SeqNum, rtt: Option<Duration>) -> AckSample {
        AckSample {
            now: Instant::ZERO,
            acked: 1000,
            rtt,
            snd_una: una,
            snd_nxt: nxt,
            in_flight: 0,
            cwnd_limited: true,
        }
    }

    fn run(h: &mut HyStartPlusPlus, acks: &[AckSample]) -> Vec<Phase> {
        acks.iter().map(|a| h.on_slow_start_ack(a)).collect()
    }

    #[test]
    fn constants_match_rfc9406_section_4_3() {
        assert_eq!(MIN_RTT_THRESH, Duration::from_millis(4));
        assert_eq!(MAX_RTT_THRESH, Duration::from_millis(16));
        assert_eq!((MIN_RTT_DIVISOR, N_RTT_SAMPLE), (8, 8));
        assert_eq!((CSS_GROWTH_DIVISOR, CSS_ROUNDS), (4, 5));
    }

    /// RFC 9406 §4.2: a round whose minimum RTT exceeds the previous
    /// round's by at least RttThresh (here 100 ms / 8 = 12.5 ms) enters
    /// CSS once N_RTT_SAMPLE samples were seen.
    #[test]
    fn rtt_increase_enters_css() {
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        for _ in 0..3 {
            assert!(run(&mut h, &r.round(10, 100))
                .iter()
                .all(|p| *p == Phase::SlowStart));
        }
        let acks = r.round(10, 113);
        // Not before the eighth sample of the round.
        assert!(run(&mut h, &acks[..7])
            .iter()
            .all(|p| *p == Phase::SlowStart));
        assert!(!h.in_css());
        // The eighth still grows fully (the update precedes the check) ...
        assert_eq!(run(&mut h, &acks[7..8]), [Phase::SlowStart]);
        assert!(h.in_css());
        // ... the ACKs after it are conservative.
        assert_eq!(run(&mut h, &acks[8..]), [Phase::Conservative; 2]);
    }

    /// RFC 9406 §4.2: jitter below RttThresh is noise, not a queue.
    #[test]
    fn rtt_noise_below_threshold_stays_in_slow_start() {
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        for i in 0..20 {
            // 100 ms ± 6 ms (threshold 12.5 ms).
            let rtt = if i % 2 == 0 { 106 } else { 100 };
            assert!(run(&mut h, &r.round(16, rtt))
                .iter()
                .all(|p| *p == Phase::SlowStart));
        }
        // Fewer than N_RTT_SAMPLE samples per round never decide anything,
        // however large the increase.
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        run(&mut h, &r.round(7, 10));
        assert!(run(&mut h, &r.round(7, 500))
            .iter()
            .all(|p| *p == Phase::SlowStart));
    }

    /// RFC 9406 §4.2: RttThresh is clamped to [4 ms, 16 ms].
    #[test]
    fn threshold_is_clamped() {
        // 10 ms / 8 = 1.25 ms → 4 ms: +3 ms is noise, +4 ms is not.
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        run(&mut h, &r.round(8, 10));
        run(&mut h, &r.round(8, 13));
        assert!(!h.in_css());
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        run(&mut h, &r.round(8, 10));
        run(&mut h, &r.round(8, 14));
        assert!(h.in_css());
        // 400 ms / 8 = 50 ms → 16 ms.
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        run(&mut h, &r.round(8, 400));
        run(&mut h, &r.round(8, 415));
        assert!(!h.in_css());
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        run(&mut h, &r.round(8, 400));
        run(&mut h, &r.round(8, 416));
        assert!(h.in_css());
    }

    /// RFC 9406 §4.2: in CSS, a round whose minimum RTT falls below the
    /// baseline returns to standard slow start.
    #[test]
    fn css_returns_to_slow_start_when_rtt_drops() {
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        run(&mut h, &r.round(10, 40));
        run(&mut h, &r.round(10, 50)); // 40 + 5 ms → CSS, baseline 50
        assert!(h.in_css());
        let phases = run(&mut h, &r.round(10, 45));
        assert!(phases[..8].iter().all(|p| *p == Phase::Conservative));
        assert!(phases[8..].iter().all(|p| *p == Phase::SlowStart));
        assert!(!h.in_css());
        assert!(h.is_active());
    }

    /// RFC 9406 §4.2: after CSS_ROUNDS rounds in CSS, congestion avoidance.
    #[test]
    fn css_exits_to_avoidance_after_css_rounds() {
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        run(&mut h, &r.round(10, 40));
        run(&mut h, &r.round(10, 50)); // CSS from its eighth ACK: round 1
        for _ in 1..CSS_ROUNDS {
            assert!(run(&mut h, &r.round(10, 50))
                .iter()
                .all(|p| *p == Phase::Conservative));
        }
        let phases = run(&mut h, &r.round(10, 50));
        assert_eq!(phases[0], Phase::ExitToAvoidance);
        assert!(phases[1..].iter().all(|p| *p == Phase::SlowStart));
        assert!(!h.is_active());
    }

    #[test]
    fn css_growth_is_divided_exactly() {
        let mut h = HyStartPlusPlus::new(true);
        assert_eq!(h.scale_increase(Phase::SlowStart, 1000), 1000);
        let total: usize = (0..8)
            .map(|_| h.scale_increase(Phase::Conservative, 1001))
            .sum();
        assert_eq!(total, 2002);
    }

    #[test]
    fn disabled_or_after_loss_is_standard_slow_start() {
        let mut h = HyStartPlusPlus::new(false);
        let mut r = Rounds::new();
        run(&mut h, &r.round(10, 10));
        assert!(run(&mut h, &r.round(10, 500))
            .iter()
            .all(|p| *p == Phase::SlowStart));
        let mut h = HyStartPlusPlus::new(true);
        let mut r = Rounds::new();
        run(&mut h, &r.round(10, 10));
        h.on_congestion();
        assert!(run(&mut h, &r.round(10, 500))
            .iter()
            .all(|p| *p == Phase::SlowStart));
    }
}
