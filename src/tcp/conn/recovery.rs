//! The sender's half of ACK processing: the SACK scoreboard, loss
//! detection (RACK, RFC 8985 §6; or the RFC 6675 §4 IsLost rule),
//! SACK-based loss recovery (RFC 6675 §5) with Proportional Rate Reduction
//! (RFC 6937), tail-loss probes (RFC 8985 §7), NewReno recovery for peers
//! without SACK (RFC 5681 §3.2, RFC 6582), RTT measurement (RFC 6298 with
//! per-segment send times, RFC 7323 §4 from TSecr), and undoing spurious
//! congestion responses (D-SACK, RFC 3708; timestamps, RFC 3522).
//!
//! Recovery states, as Linux names them:
//! - **open**: no loss known; TLP armed while data is in flight;
//! - **recovery** (`in_recovery`): fast recovery until SND.UNA passes
//!   `recover`; PRR paces the sending rate down to ssthresh;
//! - **loss** (`in_loss`): after an RTO, until everything outstanding at
//!   the timeout is acknowledged; everything not SACKed was marked lost and
//!   is retransmitted in sequence order as slow start allows.

use std::time::Duration;

use super::{Connection, Effects};
use crate::tcp::congestion::{AckSample, Congestion, CongestionControl};
use crate::tcp::rack::{ProbeOutcome, TailLossProbe, DUP_THRESH};
use crate::tcp::Instant;
use crate::wire::{SeqNum, TcpRepr};

/// RFC 6937 state for one recovery episode.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Prr {
    /// prr_delivered: bytes the receiver got since recovery began.
    pub delivered: usize,
    /// prr_out: bytes sent since recovery began.
    pub out: usize,
    /// RecoverFS: the flight size when recovery began.
    pub recover_fs: usize,
}

/// What undoing a congestion response needs (RFC 3708 §2, RFC 3522 §2).
#[derive(Debug, Clone)]
pub(crate) struct Undo {
    /// The congestion state before the response; `None` once undone (the
    /// episode's retransmissions are still tracked for D-SACK accounting).
    pub snapshot: Option<Congestion>,
    /// Retransmissions of the episode not yet shown spurious by a D-SACK.
    pub retransmits: u32,
    /// The sequence range the episode retransmitted in: a D-SACK outside
    /// it is a network duplicate, not evidence about our retransmissions.
    pub range: Option<(SeqNum, SeqNum)>,
    /// When the episode's first retransmission left.
    pub first_retransmit: Option<Instant>,
}

impl Connection {
    /// RFC 9293 §3.10.7.4 fifth step for an acceptable ACK
    /// (SND.UNA − MAX.SND.WND ≤ SEG.ACK ≤ SND.NXT), sender side.
    /// `duplicate` is RFC 5681 §2's duplicate-ACK definition.
    pub(super) fn on_ack_for_sender(
        &mut self,
        now: Instant,
        tcp: &TcpRepr,
        duplicate: bool,
        fx: &mut Effects,
    ) {
        let ack = tcp.ack;
        if ack < self.snd_una {
            return; // an old ACK: nothing left to learn from it
        }
        let advanced = ack > self.snd_una;
        let was_cwnd_limited = self.cwnd_limited_until.is_some_and(|s| self.snd_una <= s);
        let blocks = if self.sack_permitted {
            tcp.options.sack_blocks.as_slice()
        } else {
            &[]
        };
        let out = self.scoreboard.on_ack(ack, blocks, now);
        self.stats.sack_blocks_received += out.sack_blocks as u64;

        if advanced {
            let acked = ack.since(self.snd_una);
            // The FIN takes a sequence number but no buffer space.
            let data_acked = acked.min(self.send_buf.len());
            // The application wanted to write more and every byte it could
            // buffer was in flight: the send buffer bounded the flight.
            let buffer_limited = self.want_writable
                && data_acked > 0
                && self.snd_nxt.since(self.snd_una) >= self.send_buf.len();
            self.send_buf.consume(data_acked);
            if buffer_limited {
                self.expand_send_buffer();
            }
            self.snd_una = ack;
            self.stats.bytes_acked += data_acked as u64;
            self.retries = 0;
            if self.want_writable && self.send_buf.free() > 0 && data_acked > 0 {
                self.want_writable = false;
                fx.writable = true;
            }
        }

        // RTT: per-segment send times give a Karn-safe sample (RFC 6298
        // §3) on every ACK that acknowledges a segment sent once; after a
        // retransmission, the timestamp echo still gives one (RFC 7323 §4.1).
        let rtt = out
            .rtt
            .or_else(|| advanced.then(|| self.rtt_from_echo(now, tcp)).flatten());
        if let Some(rtt) = rtt {
            self.rto.on_rtt_sample(rtt);
            self.rack.on_rtt_sample(rtt);
        }

        if let Some((l, r)) = out.dsack {
            self.on_dsack(l, r);
        }
        if let Some(d) = out.newest {
            self.rack.on_delivered(d, now);
        }
        if out.reordering {
            self.rack.on_reordering();
        }
        let reneged = advanced && self.scoreboard.head_is_sacked();
        if reneged {
            // RFC 2018 §8, RFC 6675 §5.1: the receiver dropped data it had
            // SACKed. Forget the SACK state; the timer below resends.
            self.scoreboard.clear_sacks();
            self.stats.sack_reneging += 1;
        }
        if self.tlp.on_ack(ack, advanced, out.dsack) == ProbeOutcome::RepairedLoss {
            self.on_tail_loss_repaired(now);
        }
        if advanced {
            self.maybe_undo_by_timestamp(tcp);
        }

        // Loss detection.
        let mut delivered = out.delivered;
        if self.sack_permitted {
            if duplicate {
                self.stats.dup_acks_received += 1;
                self.dup_acks += 1;
                if out.delivered == 0 && out.sack_blocks == 0 {
                    // RFC 6937 §3: without SACK information each duplicate
                    // ACK stands for one segment delivered.
                    delivered = self.snd_mss;
                }
            }
            self.detect_losses(now);
            if !self.in_recovery
                && !self.in_loss
                && self.dup_acks >= DUP_THRESH as u32
                && self.snd_una > self.recover
            {
                // RFC 6675 §5 step (4): DupAcks ≥ DupThresh also starts
                // recovery, retransmitting HighACK + 1 (4.3) even if the
                // ACKs carried no SACK blocks.
                self.scoreboard.mark_head_lost();
                self.enter_sack_recovery(now);
            }
        } else if duplicate {
            self.on_duplicate_ack_without_sack(now);
        }
        if advanced {
            self.dup_acks = 0;
        }

        // Recovery progress and window growth.
        if self.in_recovery {
            if advanced && ack > self.recover {
                self.exit_recovery();
            } else if self.sack_permitted {
                if advanced && self.scoreboard.sacked_bytes() == 0 {
                    // A peer that negotiated SACK but sends no blocks: fall
                    // back to RFC 6582's partial-ACK rule for the next hole.
                    self.scoreboard.mark_head_lost();
                }
                self.prr_on_ack(delivered);
            } else if advanced {
                // RFC 6582 §3.2 step 3, partial acknowledgment: retransmit
                // the next hole now, deflate, and restart the timer.
                self.scoreboard.mark_head_lost();
                self.retransmit_pending = true;
                self.cc.on_partial_ack(out.cum_acked);
            }
        } else if advanced {
            self.cc.on_ack(&AckSample {
                now,
                acked: out.delivered,
                rtt,
                snd_una: self.snd_una,
                snd_nxt: self.snd_nxt,
                in_flight: self.scoreboard.pipe(),
                cwnd_limited: was_cwnd_limited,
            });
        }
        if self.in_loss && advanced && ack > self.recover {
            self.in_loss = false;
        }

        // RFC 6298 §5.2 / §5.3.
        if self.snd_una == self.snd_nxt {
            self.rto_deadline = None;
            self.reorder_deadline = None;
        } else if reneged {
            // As Linux (tcp_check_sack_reneging): give the receiver a
            // moment, max(SRTT/2, 10 ms), then time out and resend from SND.UNA.
            let wait = self
                .rto
                .srtt()
                .map_or(Duration::ZERO, |s| s / 2)
                .max(Duration::from_millis(10));
            self.rto_deadline = Some(now + wait);
        } else if advanced {
            self.rto_deadline = Some(now + self.rto.rto());
        }
        self.arm_tail_loss_probe(now);
        fx.output = true;
    }

    /// Send-buffer auto-tuning, as Linux's `tcp_sndbuf_expand`
    /// (net/ipv4/tcp_input.c; no RFC covers buffer sizing): called when an
    /// ACK arrives while every buffered byte was in flight and the
    /// application had more to write, it doubles the send buffer up to
    /// `send_buffer_max`. A fixed buffer caps the flight at its size: a
    /// receiver that pauses its ACKs for longer than the buffer lasts
    /// (a descheduled reader that owns its socket) stalls the sender,
    /// where the kernel's sender has grown its buffer to tcp_wmem[2].
    fn expand_send_buffer(&mut self) {
        let capacity = self.send_buf.capacity();
        let max = self.config.send_buffer_max;
        if capacity < max {
            self.send_buf.grow(capacity.saturating_mul(2).min(max));
        }
    }

    /// Our clock reading when the segment whose TSval the peer echoes was
    /// sent, in TSval milliseconds (RFC 7323 §4.1).
    fn echoed_millis(&self, tcp: &TcpRepr) -> Option<u32> {
        if !self.timestamps {
            return None;
        }
        let ts = tcp.options.timestamps?;
        Some(ts.tsecr.wrapping_sub(self.ts_offset))
    }

    /// RFC 7323 §4.1: RTT = now − TSecr, for an ACK of new data.
    fn rtt_from_echo(&self, now: Instant, tcp: &TcpRepr) -> Option<Duration> {
        let sent = self.echoed_millis(tcp)?;
        let elapsed = (now.total_millis() as u32).wrapping_sub(sent);
        // An echo from the future or older than a minute is not ours to trust.
        if elapsed as i32 >= 0 && elapsed <= 60_000 {
            Some(Duration::from_millis(elapsed as u64))
        } else {
            None
        }
    }

    /// The ACK echoes a TSval sent before `xmit` (RFC 3522 §2: it was
    /// triggered by an earlier transmission).
    fn echo_predates(&self, tcp: &TcpRepr, xmit: Instant) -> bool {
        self.echoed_millis(tcp)
            .is_some_and(|e| (e.wrapping_sub(xmit.total_millis() as u32) as i32) < 0)
    }

    /// A D-SACK (RFC 2883): a segment arrived twice.
    fn on_dsack(&mut self, l: SeqNum, r: SeqNum) {
        self.stats.dsacks_received += 1;
        self.rack.on_dsack(self.snd_una, self.snd_nxt);
        let Some(undo) = self.undo.as_mut() else {
            return;
        };
        let Some((lo, hi)) = undo.range else {
            return;
        };
        if l < lo || r > hi {
            return;
        }
        // RFC 3708 §2: each D-SACK for a retransmitted segment shows that
        // retransmission was unnecessary.
        let segments = r.since(l).div_ceil(self.snd_mss.max(1)) as u32;
        self.stats.spurious_retransmits += segments as u64;
        undo.retransmits = undo.retransmits.saturating_sub(segments);
        if undo.retransmits == 0 && undo.first_retransmit.is_some() && undo.snapshot.is_some() {
            self.undo_congestion_response();
        }
    }

    /// RFC 3522 §2 (Eifel detection): an ACK covering the first
    /// retransmitted sequence that echoes a timestamp older than that
    /// retransmission was caused by the original: the response was spurious.
    fn maybe_undo_by_timestamp(&mut self, tcp: &TcpRepr) {
        let Some(undo) = self.undo.as_ref() else {
            return;
        };
        let (Some(first), Some((lo, _)), true) =
            (undo.first_retransmit, undo.range, undo.snapshot.is_some())
        else {
            return;
        };
        if tcp.ack > lo && (self.in_recovery || self.in_loss) && self.echo_predates(tcp, first) {
            self.undo_congestion_response();
        }
    }

    /// Restores the congestion state saved when the response began and
    /// forgets the loss marks (RFC 3708 §5, RFC 4015 spirit).
    fn undo_congestion_response(&mut self) {
        let Some(snapshot) = self.undo.as_mut().and_then(|u| u.snapshot.take()) else {
            return;
        };
        if snapshot.cwnd() >= self.cc.cwnd() {
            self.cc = snapshot;
        }
        self.scoreboard.clear_lost();
        self.retransmit_pending = false;
        if self.in_recovery {
            self.in_recovery = false;
            self.rack.on_recovery_end();
        }
        self.in_loss = false;
        self.stats.congestion_undos += 1;
    }

    /// Remembers the congestion state before a response so it can be undone.
    ///
    /// The record is boxed (most connections never need one: it would
    /// make every idle connection larger) and its box is reused by later
    /// episodes.
    pub(super) fn start_undo_episode(&mut self) {
        let undo = Undo {
            snapshot: Some(self.cc.clone()),
            retransmits: 0,
            range: None,
            first_retransmit: None,
        };
        match self.undo.as_deref_mut() {
            Some(slot) => *slot = undo,
            None => self.undo = Some(Box::new(undo)),
        }
    }

    /// Runs RACK (or, with RACK off, the RFC 6675 IsLost rule) and enters
    /// recovery when it finds a loss.
    pub(super) fn detect_losses(&mut self, now: Instant) {
        if !self.sack_permitted || self.snd_una == self.snd_nxt {
            self.reorder_deadline = None;
            return;
        }
        let marked = if self.config.rack {
            self.rack_detect_loss(now)
        } else {
            self.scoreboard
                .mark_lost_by_dupthresh(DUP_THRESH, self.snd_mss)
        };
        if marked > 0 {
            self.stats.lost_segments += marked.div_ceil(self.snd_mss.max(1)) as u64;
            if !self.in_recovery && !self.in_loss {
                self.enter_sack_recovery(now);
            }
        }
    }

    fn rack_detect_loss(&mut self, now: Instant) -> usize {
        let Some((xmit, end)) = self.rack.newest() else {
            return 0;
        };
        let reo_wnd = self.rack.reo_wnd(
            self.in_recovery,
            self.scoreboard.sacked_segments(),
            self.rto.srtt(),
        );
        let (marked, wait) =
            self.scoreboard
                .rack_detect_loss(xmit, end, self.rack.rtt(), reo_wnd, now);
        // RFC 8985 §6.3: the reordering timer fires when the first
        // candidate not yet old enough would be.
        self.reorder_deadline = wait.map(|w| now + w);
        marked
    }

    /// RFC 6675 §5 step (4) with RFC 6937 initialisation.
    fn enter_sack_recovery(&mut self, now: Instant) {
        self.in_recovery = true;
        // RFC 6675 §5 (4.1): RecoveryPoint = HighData.
        self.recover = self.snd_nxt - 1;
        self.start_undo_episode();
        let flight = self.snd_nxt.since(self.snd_una);
        // RFC 6675 §5 (4.2) / RFC 6937: ssthresh from the algorithm;
        // cwnd follows PRR from here.
        self.cc.on_loss_detected(now, flight);
        self.prr = Prr {
            delivered: 0,
            out: 0,
            recover_fs: flight.max(1),
        };
        // RFC 6675 §5 (4.3): retransmit the first lost segment now.
        self.retransmit_pending = true;
        self.stats.recoveries += 1;
        self.pto_deadline = None;
        self.tlp_pending = false;
    }

    /// RFC 6937 §3, on every ACK during recovery.
    fn prr_on_ack(&mut self, delivered: usize) {
        self.prr.delivered += delivered;
        let pipe = self.scoreboard.pipe();
        let ssthresh = self.cc.ssthresh();
        let sndcnt = if pipe > ssthresh {
            // Proportional part: sndcnt = CEIL(prr_delivered · ssthresh / RecoverFS) − prr_out.
            let target = (self.prr.delivered as u128 * ssthresh as u128)
                .div_ceil(self.prr.recover_fs as u128) as usize;
            target.saturating_sub(self.prr.out)
        } else {
            // Slow-start reduction bound (PRR-SSRB).
            let limit = self
                .prr
                .delivered
                .saturating_sub(self.prr.out)
                .max(delivered)
                + self.snd_mss;
            (ssthresh - pipe).min(limit)
        };
        self.cc.set_cwnd(pipe + sndcnt);
    }

    /// Recovery ends when SND.UNA passes RecoveryPoint (RFC 6675 §5,
    /// RFC 6582 §3.2 step 3 "full acknowledgment").
    fn exit_recovery(&mut self) {
        self.in_recovery = false;
        self.retransmit_pending = false;
        self.rack.on_recovery_end();
        if self.sack_permitted {
            // RFC 6937 §3: at the end of recovery, cwnd = ssthresh.
            let ssthresh = self.cc.ssthresh();
            self.cc.set_cwnd(ssthresh);
        } else {
            self.cc.on_exit_recovery(self.flight_size());
        }
    }

    /// RFC 5681 §3.2 / RFC 6582 §3.2 for a peer without SACK.
    fn on_duplicate_ack_without_sack(&mut self, now: Instant) {
        self.stats.dup_acks_received += 1;
        self.dup_acks += 1;
        if self.in_recovery {
            // RFC 5681 §3.2 step 4: inflate; new data may go out.
            self.cc.on_recovery_dup_ack();
        } else if self.dup_acks == DUP_THRESH as u32 && self.snd_una > self.recover {
            // RFC 5681 §3.2 step 2 with RFC 6582 §3.2 step 2's check that
            // the cumulative ACK covers more than `recover`.
            self.recover = self.snd_nxt - 1;
            self.in_recovery = true;
            self.start_undo_episode();
            self.cc.on_enter_recovery(now, self.flight_size());
            self.scoreboard.mark_head_lost();
            self.retransmit_pending = true;
            self.stats.recoveries += 1;
        }
    }

    /// RFC 8985 §7.4.2: the probe repaired a lost tail segment; respond to
    /// the loss once, as a congestion event without a recovery episode.
    fn on_tail_loss_repaired(&mut self, now: Instant) {
        self.stats.tlp_repairs += 1;
        if self.in_recovery || self.in_loss {
            return;
        }
        let flight = self.snd_nxt.since(self.snd_una);
        self.cc.on_loss_detected(now, flight);
        let ssthresh = self.cc.ssthresh();
        self.cc.set_cwnd(ssthresh);
    }

    /// RFC 8985 §7.2: arm the probe timeout while data is in flight
    /// outside recovery, SACK and RACK-TLP are on, and no probe is open.
    pub(super) fn arm_tail_loss_probe(&mut self, now: Instant) {
        self.pto_deadline = None;
        if !self.config.rack || !self.sack_permitted || self.in_recovery || self.in_loss {
            return;
        }
        if self.snd_una == self.snd_nxt || !self.state.is_synchronized() {
            return;
        }
        if let Some(end) = self.tlp.end_seq {
            if self.snd_una < end {
                return;
            }
            // The probe's data is all acknowledged and nothing told us
            // more: close it without a response.
            self.tlp.end_seq = None;
        }
        let rto_left = self.rto_deadline.map(|d| d.saturating_since(now));
        let one_segment = self.scoreboard.len() == 1;
        let pto = TailLossProbe::timeout(self.rto.srtt(), one_segment, rto_left);
        self.pto_deadline = Some(now + pto);
    }

    /// The probe timer fired (RFC 8985 §7.3): send a probe at the next
    /// output, and let the RTO follow it.
    pub(super) fn on_probe_timeout(&mut self, now: Instant, fx: &mut Effects) {
        let probe_open = self.tlp.end_seq.is_some_and(|end| self.snd_una < end);
        if self.in_recovery
            || self.in_loss
            || probe_open
            || self.snd_una == self.snd_nxt
            || !self.state.sends_data()
        {
            return;
        }
        self.tlp_pending = true;
        self.stats.tlp_probes += 1;
        self.rto_deadline = Some(now + self.rto.rto());
        fx.output = true;
    }

    /// The RACK reordering timer fired (RFC 8985 §6.3).
    pub(super) fn on_reorder_timeout(&mut self, now: Instant, fx: &mut Effects) {
        self.detect_losses(now);
        fx.output = true;
    }

    /// Bookkeeping for a retransmission that just left.
    pub(super) fn note_retransmission(&mut self, now: Instant, start: SeqNum, len: usize) {
        self.stats.retransmits += 1;
        if self.in_recovery {
            self.stats.fast_retransmits += 1;
            self.prr.out += len;
        }
        if self.in_recovery || self.in_loss {
            if let Some(undo) = self.undo.as_mut() {
                undo.retransmits += 1;
                undo.first_retransmit.get_or_insert(now);
                let end = start + len;
                undo.range = Some(match undo.range {
                    None => (start, end),
                    Some((lo, hi)) => (lo.min(start), hi.max(end)),
                });
            }
        }
    }
}
