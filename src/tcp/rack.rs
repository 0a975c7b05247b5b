//! RACK-TLP (RFC 8985): time-based loss detection and tail-loss probes.
//!
//! [`Rack`] keeps what RACK learns from ACKs: the send time and end of the
//! most recently sent segment known delivered, its RTT, the minimum RTT,
//! whether the path reorders, and the adaptive reordering window. The
//! scan itself (which segments are lost) runs over the scoreboard, see
//! [`SackScoreboard::rack_detect_loss`](crate::tcp::sack_scoreboard::SackScoreboard::rack_detect_loss).
//!
//! [`TailLossProbe`] is the TLP half: when to probe and how to read the
//! ACK of a probe.

use std::time::Duration;

use crate::tcp::sack_scoreboard::Delivered;
use crate::tcp::Instant;
use crate::wire::SeqNum;

/// RFC 8985 §6.2: the classic duplicate threshold RACK falls back to while
/// it has seen no reordering.
pub const DUP_THRESH: usize = 3;

/// RFC 8985 §6.2 step 4: recoveries a widened reordering window persists for.
const REO_WND_PERSIST: u32 = 16;

/// RFC 8985 §7.2: the worst-case delayed-ACK time added to the PTO when a
/// single segment is in flight (the receiver may hold its ACK that long).
pub const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// RACK state of one connection (RFC 8985 §6.1).
#[derive(Debug, Clone, Default)]
pub struct Rack {
    /// RACK.xmit_ts / RACK.end_seq: the delivered segment sent last.
    newest: Option<(Instant, SeqNum)>,
    /// RACK.rtt: the RTT of that segment.
    rtt: Duration,
    /// RACK.min_RTT.
    min_rtt: Option<Duration>,
    /// RACK.reordering_seen.
    reordering_seen: bool,
    /// RACK.reo_wnd_mult, starting at 1.
    reo_wnd_mult: u32,
    reo_wnd_persist: u32,
    /// RACK.dsack_round: the reordering window grows at most once per round.
    dsack_round: Option<SeqNum>,
}

impl Rack {
    pub fn new() -> Self {
        Rack {
            reo_wnd_mult: 1,
            ..Default::default()
        }
    }

    /// RACK.xmit_ts and RACK.end_seq, once something was delivered.
    pub fn newest(&self) -> Option<(Instant, SeqNum)> {
        self.newest
    }

    pub fn rtt(&self) -> Duration {
        self.rtt
    }

    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    pub fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    /// Tracks RACK.min_RTT from every RTT sample the connection takes.
    pub fn on_rtt_sample(&mut self, rtt: Duration) {
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
    }

    /// RFC 8985 §6.2 step 2 (RACK_update) for the delivered segment sent
    /// last. For a retransmitted segment it is ambiguous which copy was
    /// delivered; a sample clearly shorter than the minimum RTT must be
    /// the original's, so it is ignored. (The RFC's other test, TSecr older than
    /// the retransmission, cannot work for SACKed data: RFC 7323 §4.3 keeps
    /// TS.Recent from in-order segments only, so the ACK of an out-of-order
    /// retransmission always echoes an older TSval. Linux skips it too.)
    pub fn on_delivered(&mut self, d: Delivered, now: Instant) {
        let rtt = now.saturating_since(d.xmit);
        // An eighth of slack: delay jitter makes a genuine retransmission's
        // round trip come in a little under the minimum seen so far.
        if d.retransmitted && self.min_rtt.is_some_and(|m| rtt < m - m / 8) {
            return;
        }
        self.rtt = rtt;
        let after = match self.newest {
            None => true,
            Some((xmit, end)) => d.xmit > xmit || (d.xmit == xmit && d.end > end),
        };
        if after {
            self.newest = Some((d.xmit, d.end));
        }
    }

    /// RFC 8985 §6.2 step 3: a segment sent once arrived below the highest
    /// SACKed sequence.
    pub fn on_reordering(&mut self) {
        self.reordering_seen = true;
    }

    /// RFC 8985 §6.2 step 4: a D-SACK widens the reordering window by one
    /// `min_RTT/4` step, at most once per round trip, for the next 16
    /// recoveries. A duplicate also proves the path can reorder.
    pub fn on_dsack(&mut self, snd_una: SeqNum, snd_max: SeqNum) {
        self.reordering_seen = true;
        if self.dsack_round.is_none_or(|r| snd_una >= r) {
            self.dsack_round = Some(snd_max);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    /// RFC 8985 §6.2 step 4: after each recovery the widened window
    /// decays back to one step once `reo_wnd_persist` runs out.
    pub fn on_recovery_end(&mut self) {
        self.reo_wnd_persist = self.reo_wnd_persist.saturating_sub(1);
        if self.reo_wnd_persist == 0 {
            self.reo_wnd_mult = 1;
        }
    }

    /// RFC 8985 §6.2 step 4, RACK.reo_wnd. While no reordering was seen,
    /// zero during recovery or once `DupThresh` segments are SACKed (the
    /// classic rule, so a burst of losses is repaired at once); otherwise
    /// `min_RTT/4 · reo_wnd_mult`, at most SRTT.
    pub fn reo_wnd(
        &self,
        in_recovery: bool,
        sacked_segments: usize,
        srtt: Option<Duration>,
    ) -> Duration {
        if !self.reordering_seen && (in_recovery || sacked_segments >= DUP_THRESH) {
            return Duration::ZERO;
        }
        let Some(min_rtt) = self.min_rtt else {
            return Duration::ZERO;
        };
        let wnd = (min_rtt / 4).saturating_mul(self.reo_wnd_mult);
        srtt.map_or(wnd, |s| wnd.min(s))
    }
}

/// Tail loss probe state (RFC 8985 §7).
#[derive(Debug, Clone, Copy, Default)]
pub struct TailLossProbe {
    /// TLP.end_seq: SND.NXT when the probe was sent, while its outcome is open.
    pub end_seq: Option<SeqNum>,
    /// TLP.is_retrans: the probe retransmitted old data.
    pub is_retrans: bool,
    /// A D-SACK arrived for the probe: both copies got through.
    pub dsacked: bool,
}

/// What the ACK of an outstanding probe means (RFC 8985 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// No probe outstanding, or the ACK does not settle it yet.
    Open,
    /// Settled with nothing to do: new data was probed, or the D-SACK shows
    /// the original was not lost.
    NoLoss,
    /// The probe repaired a lost tail segment: respond as to a loss.
    RepairedLoss,
}

impl TailLossProbe {
    /// RFC 8985 §7.2 (TLP_calc_PTO): 2·SRTT, plus the worst-case delayed
    /// ACK when one segment is in flight; 1 s without an RTT sample; never
    /// later than the pending RTO would fire.
    pub fn timeout(
        srtt: Option<Duration>,
        one_segment_in_flight: bool,
        rto_left: Option<Duration>,
    ) -> Duration {
        let mut pto = match srtt {
            Some(srtt) => {
                let mut p = srtt * 2;
                if one_segment_in_flight {
                    p += WORST_CASE_DELAYED_ACK;
                }
                p
            }
            None => Duration::from_secs(1),
        };
        // The clock granularity: a probe sooner than this is noise.
        pto = pto.max(Duration::from_millis(1));
        match rto_left {
            Some(left) => pto.min(left),
            None => pto,
        }
    }

    /// A probe left: `end_seq` is SND.NXT after it.
    pub fn on_probe_sent(&mut self, end_seq: SeqNum, is_retrans: bool) {
        *self = TailLossProbe {
            end_seq: Some(end_seq),
            is_retrans,
            dsacked: false,
        };
    }

    /// RFC 8985 §7.4.2 (TLP_process_ack). `ack` is SEG.ACK, `advanced`
    /// whether it moved SND.UNA, `dsack` a D-SACK block the ACK carried.
    pub fn on_ack(
        &mut self,
        ack: SeqNum,
        advanced: bool,
        dsack: Option<(SeqNum, SeqNum)>,
    ) -> ProbeOutcome {
        let Some(end) = self.end_seq else {
            return ProbeOutcome::Open;
        };
        if let Some((_, r)) = dsack {
            if self.is_retrans && r == end {
                self.dsacked = true;
            }
        }
        if ack < end {
            return ProbeOutcome::Open;
        }
        if !self.is_retrans || self.dsacked {
            self.end_seq = None;
            return ProbeOutcome::NoLoss;
        }
        if ack > end || !advanced {
            // Data beyond the probe was acknowledged without a D-SACK for
            // it, or a duplicate ACK at end_seq without one: only one copy
            // arrived, so the original was lost and the probe repaired it.
            self.end_seq = None;
            return ProbeOutcome::RepairedLoss;
        }
        // The ACK that reaches end_seq may be for the original; wait for
        // the next one to tell (it carries the D-SACK if both arrived).
        ProbeOutcome::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn reo_wnd_is_zero_until_reordering_then_quarter_min_rtt() {
        let mut r = Rack::new();
        r.on_rtt_sample(ms(40));
        // RFC 8985 §6.2 step 4: no reordering seen, DupThresh SACKed → 0.
        assert_eq!(r.reo_wnd(false, 3, Some(ms(50))), Duration::ZERO);
        assert_eq!(r.reo_wnd(true, 0, Some(ms(50))), Duration::ZERO);
        assert_eq!(r.reo_wnd(false, 1, Some(ms(50))), ms(10));
        r.on_reordering();
        assert_eq!(r.reo_wnd(true, 10, Some(ms(50))), ms(10));
        // Bounded by SRTT.
        assert_eq!(r.reo_wnd(true, 10, Some(ms(5))), ms(5));
    }

    #[test]
    fn dsack_widens_once_per_round_and_decays_after_16_recoveries() {
        let mut r = Rack::new();
        r.on_rtt_sample(ms(40));
        r.on_dsack(SeqNum(0), SeqNum(1000));
        assert_eq!(r.reo_wnd(false, 0, None), ms(20));
        // Same round: no further widening.
        r.on_dsack(SeqNum(500), SeqNum(1500));
        assert_eq!(r.reo_wnd(false, 0, None), ms(20));
        r.on_dsack(SeqNum(1000), SeqNum(2000));
        assert_eq!(r.reo_wnd(false, 0, None), ms(30));
        for _ in 0..15 {
            r.on_recovery_end();
        }
        assert_eq!(r.reo_wnd(false, 0, None), ms(30));
        r.on_recovery_end();
        assert_eq!(r.reo_wnd(false, 0, None), ms(10));
    }

    #[test]
    fn update_keeps_the_segment_sent_last_and_skips_ambiguous_retransmissions() {
        let mut r = Rack::new();
        let at = Instant::from_millis;
        r.on_delivered(
            Delivered {
                xmit: at(10),
                end: SeqNum(2000),
                retransmitted: false,
            },
            at(30),
        );
        assert_eq!(r.newest(), Some((at(10), SeqNum(2000))));
        assert_eq!(r.rtt(), ms(20));
        r.on_rtt_sample(ms(20));
        // An older segment does not move RACK.xmit_ts back.
        r.on_delivered(
            Delivered {
                xmit: at(5),
                end: SeqNum(1000),
                retransmitted: false,
            },
            at(31),
        );
        assert_eq!(r.newest(), Some((at(10), SeqNum(2000))));
        // A retransmission acknowledged faster than the minimum RTT was
        // the original's delivery (RFC 8985 §6.2 step 2).
        r.on_delivered(
            Delivered {
                xmit: at(40),
                end: SeqNum(3000),
                retransmitted: true,
            },
            at(45),
        );
        assert_eq!(r.newest(), Some((at(10), SeqNum(2000))));
        r.on_delivered(
            Delivered {
                xmit: at(40),
                end: SeqNum(3000),
                retransmitted: true,
            },
            at(65),
        );
        assert_eq!(r.newest(), Some((at(40), SeqNum(3000))));
    }

    #[test]
    fn pto_is_two_srtt_plus_delack_for_one_segment_capped_by_rto() {
        assert_eq!(TailLossProbe::timeout(Some(ms(10)), false, None), ms(20));
        assert_eq!(TailLossProbe::timeout(Some(ms(10)), true, None), ms(220));
        assert_eq!(TailLossProbe::timeout(None, false, None), ms(1000));
        assert_eq!(
            TailLossProbe::timeout(Some(ms(10)), true, Some(ms(100))),
            ms(100)
        );
    }

    #[test]
    fn probe_outcomes_follow_rfc8985_7_4() {
        let end = SeqNum(5000);
        let mut p = TailLossProbe::default();
        assert_eq!(p.on_ack(end, true, None), ProbeOutcome::Open);
        // New-data probe: delivered, nothing to infer.
        p.on_probe_sent(end, false);
        assert_eq!(p.on_ack(end, true, None), ProbeOutcome::NoLoss);
        // Retransmission probe, then a D-SACK for it: original not lost.
        p.on_probe_sent(end, true);
        assert_eq!(p.on_ack(end, true, None), ProbeOutcome::Open);
        assert_eq!(
            p.on_ack(end, false, Some((SeqNum(4000), end))),
            ProbeOutcome::NoLoss
        );
        // Retransmission probe and a duplicate ACK without a D-SACK: repaired.
        p.on_probe_sent(end, true);
        assert_eq!(p.on_ack(end, true, None), ProbeOutcome::Open);
        assert_eq!(p.on_ack(end, false, None), ProbeOutcome::RepairedLoss);
        // Or an ACK beyond it.
        p.on_probe_sent(end, true);
        assert_eq!(p.on_ack(end + 100, true, None), ProbeOutcome::RepairedLoss);
        assert_eq!(p.end_seq, None);
    }
}
