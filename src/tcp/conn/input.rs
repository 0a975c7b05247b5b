//! Segment arrival: RFC 9293 §3.10.7.3 (SYN-SENT) and §3.10.7.4 (the
//! synchronized states), with the RFC 5961 hardening of RST, SYN and ACK
//! processing. LISTEN and CLOSED arrivals are the stack's (no TCB).

use super::{Connection, ControlSegment, Effects, PredictedReceipt};
use crate::tcp::ack_policy::ImmediateReason;
use crate::tcp::event::CloseReason;
use crate::tcp::rto::{RtoConfig, RtoEstimator};
use crate::tcp::segment_checks;
use crate::tcp::state::State;
use crate::tcp::Instant;
use crate::wire::{SeqNum, TcpFlags, TcpRepr, TcpSegment, Timestamps};
use std::time::Duration;

impl Connection {
    /// Processes one arriving segment for this connection.
    pub fn on_segment(&mut self, now: Instant, tcp: &TcpRepr, payload: &[u8], fx: &mut Effects) {
        self.stats.segs_in += 1;
        self.last_rx = now;
        match self.state {
            State::Closed | State::Listen => {}
            State::SynSent => self.on_segment_syn_sent(now, tcp, payload, fx),
            _ => self.on_segment_synchronized(now, tcp, payload, fx),
        }
    }

    /// A reply RST for an unacceptable segment: `<SEQ=SEG.ACK><CTL=RST>`.
    fn reply_rst(&self, tcp: &TcpRepr) -> ControlSegment {
        ControlSegment::bare(
            self.tuple,
            self.remote_mac,
            tcp.ack,
            SeqNum(0),
            TcpFlags::RST,
        )
    }

    /// RFC 9293 §3.10.7.3, SYN-SENT.
    fn on_segment_syn_sent(
        &mut self,
        now: Instant,
        tcp: &TcpRepr,
        payload: &[u8],
        fx: &mut Effects,
    ) {
        let flags = tcp.flags;
        let mut ack_ok = false;
        // First: the ACK bit.
        if flags.ack() {
            if tcp.ack <= self.iss || tcp.ack > self.snd_nxt {
                if !flags.rst() {
                    fx.rst = Some(self.reply_rst(tcp));
                }
                return;
            }
            ack_ok = self.snd_una < tcp.ack;
        }
        // Second: the RST bit. RFC 5961 §3.2: in SYN-SENT a RST is
        // acceptable only if its ACK acknowledges our SYN.
        if flags.rst() {
            if ack_ok {
                self.enter_closed(CloseReason::Refused, fx);
            }
            return;
        }
        // Fourth: the SYN bit.
        if !flags.syn() {
            return;
        }
        self.irs = tcp.seq;
        self.rcv_nxt = tcp.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.negotiate_options(&tcp.options);
        if let Some(ts) = tcp.options.timestamps {
            // RFC 7323 §4.3: TS.Recent starts from the SYN's TSval.
            self.ts_recent.set(ts.tsval, now);
        }
        // RFC 7323 §2.2: the window in a <SYN,ACK> is not scaled.
        self.snd_wnd = tcp.window as usize;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = tcp.seq;
        self.snd_wl2 = tcp.ack;
        if ack_ok {
            self.snd_una = tcp.ack;
            self.take_rtt_sample(now, tcp.ack);
        }
        if self.snd_una > self.iss {
            self.state = State::Established;
            self.handshake_complete(now);
            self.ack_pending = true;
            fx.output = true;
            fx.connected = true;
            if !payload.is_empty() || flags.fin() {
                // Data on a SYN-ACK: continue with the text and FIN steps.
                self.process_text_and_fin(now, tcp, payload, fx);
            }
        } else {
            // Simultaneous open (RFC 9293 §3.5, Figure 8).
            self.state = State::SynReceived;
            self.syn_pending = true;
            self.retries = 0;
            self.rto_deadline = None;
            fx.output = true;
        }
    }

    /// Common bookkeeping when the handshake finishes.
    fn handshake_complete(&mut self, now: Instant) {
        if self.retries > 0 && self.rto.srtt().is_none() {
            // RFC 6298 §5.7: a SYN (or SYN-ACK) timed out and no RTT is
            // known: data transmission starts with an RTO of 3 s.
            let base = self.config.rto;
            self.rto = RtoEstimator::new(RtoConfig {
                initial: base.initial.max(Duration::from_secs(3)),
                ..base
            });
        }
        self.retries = 0;
        self.rto.reset_backoff();
        self.rto_deadline = None;
        self.syn_pending = false;
        self.last_data_sent = now;
        self.restart_keepalive(now);
        if self.fin_queued && self.state == State::Established {
            // A shutdown requested during SYN-SENT takes effect now.
            self.state = State::FinWait1;
        }
    }

    /// A SYN,ACK in SYN-RECEIVED of an active open whose SYN is the one we
    /// have (SEQ+1 = RCV.NXT) and which acknowledges exactly our SYN.
    fn is_crossing_syn_ack(&self, tcp: &TcpRepr, payload: &[u8]) -> bool {
        self.state == State::SynReceived
            && self.listener.is_none()
            && tcp.flags.syn()
            && tcp.flags.ack()
            && !tcp.flags.rst()
            && payload.is_empty()
            && tcp.seq + 1 == self.rcv_nxt
            && tcp.ack == self.snd_nxt
    }

    /// The acceptability test of RFC 9293 §3.10.7.4, first step.
    fn acceptable(&self, seq: SeqNum, seg_len: usize) -> bool {
        segment_checks::acceptable(self.rcv_nxt, self.rcv_adv, seq, seg_len)
    }

    fn on_segment_synchronized(
        &mut self,
        now: Instant,
        tcp: &TcpRepr,
        payload: &[u8],
        fx: &mut Effects,
    ) {
        if self.is_crossing_syn_ack(tcp, payload) {
            // Simultaneous open (RFC 9293 §3.5, Figure 8): the peer's
            // SYN,ACK crossed ours. Its SYN is the one we already hold, so
            // take it as the ACK completing the handshake (as Linux does).
            let mut ack_only = *tcp;
            ack_only.flags.remove(TcpFlags::SYN);
            ack_only.seq = tcp.seq + 1;
            return self.on_segment_synchronized(now, &ack_only, payload, fx);
        }
        let flags = tcp.flags;
        let seg_len = payload.len() + flags.syn() as usize + flags.fin() as usize;

        if self.timestamps && !flags.rst() && !self.timestamp_check(now, tcp, fx) {
            return;
        }

        // First: sequence number check.
        if !self.acceptable(tcp.seq, seg_len) {
            // RFC 9293 §3.10.7.4: "special allowance should be made to
            // accept valid ACKs, URGs, and RSTs" with a zero window: a
            // segment exactly at RCV.NXT is processed with its text dropped.
            let zero_window_at_edge = tcp.seq == self.rcv_nxt && !flags.syn();
            if !zero_window_at_edge {
                self.stats.out_of_window += 1;
                if self.state == State::SynReceived
                    && flags.syn()
                    && !flags.ack()
                    && tcp.seq == self.irs
                {
                    // The peer retransmitted its SYN: our SYN-ACK was lost.
                    self.syn_pending = true;
                    fx.output = true;
                    return;
                }
                if self.state == State::TimeWait && flags.fin() {
                    // A retransmitted FIN: our ACK was lost; restart 2·MSL.
                    self.close_deadline = Some(now + self.config.msl * 2);
                }
                if !flags.rst() && !payload.is_empty() && tcp.seq + payload.len() <= self.rcv_nxt {
                    // An old duplicate: our ACK was probably lost. RFC 2883
                    // §4: report it as a D-SACK in the ACK below. (A RST
                    // gets no ACK, and its text is not stream data: a
                    // D-SACK for it would ride on some later ACK.)
                    self.stats.data_segs_in += 1;
                    self.note_duplicate(tcp.seq, tcp.seq + payload.len());
                }
                // "If an incoming segment is not acceptable, an
                // acknowledgment should be sent in reply (unless the RST bit is set)".
                if !flags.rst() {
                    self.ack_pending = true;
                    fx.output = true;
                }
                return;
            }
        }

        // Second: the RST bit (RFC 5961 §3.2).
        if flags.rst() {
            if tcp.seq != self.rcv_nxt {
                // In the window but not exact: challenge ACK, drop.
                fx.challenge_ack = true;
                return;
            }
            match self.state {
                State::SynReceived if self.listener.is_some() => {
                    // Passive open returns to LISTEN; the user never knew.
                    fx.drop_silently = true;
                    self.state = State::Closed;
                }
                State::SynReceived => self.enter_closed(CloseReason::Refused, fx),
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    self.enter_closed(CloseReason::Reset, fx)
                }
                _ => {
                    // CLOSING, LAST-ACK, TIME-WAIT: close and delete.
                    self.enter_closed(CloseReason::Normal, fx)
                }
            }
            return;
        }

        // Fourth: the SYN bit. RFC 5961 §4.2 / RFC 9293 §3.10.7.4: a SYN in
        // a synchronized state gets a challenge ACK; a passively opened
        // SYN-RECEIVED connection returns to LISTEN.
        if flags.syn() {
            if self.state == State::SynReceived && self.listener.is_some() {
                fx.drop_silently = true;
                self.state = State::Closed;
            } else {
                fx.challenge_ack = true;
            }
            return;
        }

        // Fifth: the ACK field.
        if !flags.ack() {
            return;
        }
        if self.timestamps {
            self.update_ts_recent(now, &tcp.options, tcp.seq, seg_len);
        }
        if self.state == State::SynReceived {
            if self.snd_una < tcp.ack && tcp.ack <= self.snd_nxt {
                self.snd_una = tcp.ack;
                self.take_rtt_sample(now, tcp.ack);
                let passive = self.listener.is_some();
                self.state = if self.fin_queued {
                    State::FinWait1
                } else {
                    State::Established
                };
                self.handshake_complete(now);
                // Not a SYN: the window is scaled from here on (RFC 7323 §2.2).
                self.snd_wnd = (tcp.window as usize) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = tcp.seq;
                self.snd_wl2 = tcp.ack;
                if passive {
                    fx.accepted = true;
                } else {
                    fx.connected = true;
                }
                fx.output = true;
            } else {
                fx.rst = Some(self.reply_rst(tcp));
                return;
            }
        }
        if !self.process_ack(now, tcp, payload, fx) {
            return;
        }
        if self.state == State::Closed {
            return;
        }
        self.process_text_and_fin(now, tcp, payload, fx);
    }

    /// Header prediction (Van Jacobson's, as Linux's tcp_rcv_established
    /// fast path): the common segment of a receiver in ESTABLISHED is the
    /// next in-order data, an ACK that acknowledges nothing new with
    /// nothing of ours in flight, the same window, no control bits and no
    /// options but timestamps. For such a segment every step of RFC 9293
    /// §3.10.7.4 but the timestamp check, the window bookkeeping and the
    /// text is known to be a no-op; anything else (out-of-order data, SACK
    /// blocks, URG, FIN, a window change, timers of the sender side, a FIN
    /// seen, a closed read side, data waiting to be sent) goes through the
    /// full processing.
    #[inline]
    fn is_predicted_data(&self, seg: &TcpSegment<'_>) -> bool {
        let len = seg.payload().len();
        self.state == State::Established
            // ACK, optionally PSH; no SYN, FIN, RST, URG, ECE or CWR.
            && seg.flags().bits() & !TcpFlags::PSH.bits() == TcpFlags::ACK.bits()
            && seg.seq() == self.rcv_nxt
            && seg.ack() == self.snd_una
            && self.snd_una == self.snd_nxt
            && self.send_buf.is_empty()
            && len > 0
            // The whole text fits in the window we advertised and in the ring.
            && len <= self.rcv_adv.since(self.rcv_nxt)
            && len <= self.recv_buf.window()
            && (seg.window() as usize) << self.snd_wscale == self.snd_wnd
            && self.snd_wnd > 0
            && seg.has_plain_options()
            && !self.recv_buf.has_out_of_order()
            && self.peer_fin.is_none()
            && !self.read_closed
            && !self.in_recovery
            && !self.in_loss
            && !self.tlp_pending
            && self.rto_deadline.is_none()
            && self.pto_deadline.is_none()
            && self.reorder_deadline.is_none()
            && self.persist_deadline.is_none()
            && self.probe_pending.is_none()
    }

    /// The fused receive path for a segment that passes
    /// [`is_predicted_data`](Self::is_predicted_data): the same result as
    /// [`on_segment`](Self::on_segment), in fewer steps, straight from the
    /// frame. Returns `None`, having changed nothing, for any other segment
    /// (the caller then takes the full path); otherwise `fx` says whether
    /// an ACK or a `Readable` event is due, and the receipt which timer
    /// deadlines the segment set.
    #[inline]
    pub(crate) fn receive_predicted(
        &mut self,
        now: Instant,
        seg: &TcpSegment<'_>,
        fx: &mut Effects,
    ) -> Option<PredictedReceipt> {
        if !self.is_predicted_data(seg) {
            return None;
        }
        let timestamps = seg.timestamps();
        if self.timestamps {
            // RFC 7323 §3.2 (a segment without TSopt) and §5.3 R1 (PAWS:
            // SEG.TSval < TS.Recent) are the full path's to judge: it
            // counts the first and drops or accepts the second.
            match timestamps {
                Some(ts) if !self.ts_older_than_recent(ts.tsval) => {}
                _ => return None,
            }
        }
        let payload = seg.payload();
        let (seq, len) = (seg.seq(), payload.len());
        self.stats.segs_in += 1;
        self.last_rx = now;
        if self.timestamps {
            // RFC 7323 §5.3 R3: TS.Recent from a segment covering Last.ACK.sent.
            self.update_ts_recent_from(now, timestamps, seq, len);
        }
        // Fifth step (RFC 9293 §3.10.7.4): SEG.ACK = SND.UNA = SND.NXT is
        // acceptable, acknowledges nothing and proves the peer alive; the
        // window is unchanged, but this segment is newer than the one that
        // set it (SND.WL1 < SEG.SEQ), so it records the update.
        self.keepalive_probes = 0;
        self.probes_unanswered = 0;
        self.restart_keepalive(now);
        self.snd_wl1 = seq;
        self.snd_wl2 = seg.ack();
        self.persist_backoff = 0;
        // Seventh step: the text, at RCV.NXT and inside the window, so all
        // of it is taken and RCV.NXT advances over it.
        self.stats.data_segs_in += 1;
        let delayed_before = self.delayed_ack.deadline().is_some();
        let advanced = self.recv_buf.write_at(0, payload);
        debug_assert_eq!(advanced, len, "predicted text must fit the window");
        self.rcv_nxt += advanced;
        self.stats.bytes_received += advanced as u64;
        if !self.readable_signalled {
            self.readable_signalled = true;
            fx.readable = true;
        }
        self.autotune_receive_buffer(now, timestamps, fx);
        // The ACK decision (RFC 9293 §3.8.6.3, RFC 5681 §4.2): in-order
        // data with nothing special about it.
        self.schedule_ack(now, len, ImmediateReason::None, fx);
        let delayed_ack = if delayed_before {
            None
        } else {
            self.delayed_ack.deadline()
        };
        let keepalive = self.keepalive.and(self.keepalive_deadline);
        Some(PredictedReceipt {
            rearm_by: match (delayed_ack, keepalive) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        })
    }

    /// RFC 9293 §3.10.7.4 fifth step for the synchronized states. Returns
    /// false when the segment must be dropped.
    fn process_ack(
        &mut self,
        now: Instant,
        tcp: &TcpRepr,
        payload: &[u8],
        fx: &mut Effects,
    ) -> bool {
        let ack = tcp.ack;
        // RFC 5961 §5.2: acceptable iff SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
        if ack > self.snd_nxt {
            self.ack_pending = true;
            fx.output = true;
            return false;
        }
        let oldest = self.snd_una - self.max_snd_wnd.max(1);
        if ack < oldest {
            fx.challenge_ack = true;
            return false;
        }
        // Any ACK proves the peer is alive: persist and keepalive probing reset.
        self.keepalive_probes = 0;
        self.probes_unanswered = 0;
        self.restart_keepalive(now);

        let window = (tcp.window as usize) << self.snd_wscale;
        // RFC 5681 §2 definition of a duplicate acknowledgment.
        let duplicate = ack == self.snd_una
            && payload.is_empty()
            && !tcp.flags.fin()
            && window == self.snd_wnd
            && self.snd_nxt > self.snd_una;
        self.on_ack_for_sender(now, tcp, duplicate, fx);

        // Window update (RFC 9293 §3.10.7.4): only from a segment newer
        // than the one that last set it.
        if self.snd_wl1 < tcp.seq || (self.snd_wl1 == tcp.seq && self.snd_wl2 <= ack) {
            let opened = self.snd_wnd == 0 && window > 0;
            if window == 0 && self.snd_wnd != 0 {
                self.stats.zero_windows_received += 1;
            }
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = tcp.seq;
            self.snd_wl2 = ack;
            if window > 0 {
                self.persist_deadline = None;
                self.persist_backoff = 0;
            }
            if opened || window > 0 {
                fx.output = true;
            }
        }

        let fin_acked = self.fin_seq.is_some_and(|f| self.snd_una > f);
        match self.state {
            State::FinWait1 if fin_acked => {
                self.state = State::FinWait2;
                if !self.user_owned {
                    // Orphan FIN-WAIT-2 timeout (Linux tcp_fin_timeout).
                    self.close_deadline = Some(now + self.config.fin_wait2_timeout);
                    fx.orphan_fin_wait2 = true;
                }
            }
            State::Closing if fin_acked => self.enter_time_wait(now, fx),
            State::LastAck if fin_acked => {
                self.enter_closed(CloseReason::Normal, fx);
                return false;
            }
            _ => {}
        }
        true
    }

    /// The RTT of our SYN or SYN-ACK, if it was sent only once (Karn,
    /// RFC 6298 §3); data segments are timed by the scoreboard.
    fn take_rtt_sample(&mut self, now: Instant, ack: SeqNum) {
        let Some((end, sent)) = self.rtt_probe else {
            return;
        };
        if ack >= end {
            self.rtt_probe = None;
            let rtt = now.saturating_since(sent);
            self.rto.on_rtt_sample(rtt);
            self.rack.on_rtt_sample(rtt);
        }
    }

    /// RFC 7323 §3.2 and §5.3 R1, before the sequence-number check on a
    /// connection that negotiated timestamps (RST segments skip it).
    /// Returns false when the segment must be dropped.
    fn timestamp_check(&mut self, now: Instant, tcp: &TcpRepr, fx: &mut Effects) -> bool {
        let Some(ts) = tcp.options.timestamps else {
            // RFC 7323 §3.2: "If a non-RST segment is received without a
            // TSopt, a TCP SHOULD silently drop the segment." We accept it,
            // as Linux does (middleboxes strip options mid-connection, and
            // dropping would stall such a connection for good), count it,
            // and it cannot update TS.Recent. PAWS has nothing to check.
            self.stats.missing_timestamps += 1;
            return true;
        };
        // R1 (PAWS): SEG.TSval < TS.Recent, and TS.Recent still valid
        // (§5.5: not idle for more than 24 days): an old duplicate from an
        // earlier wrap of the sequence space. Drop it, ACK in reply.
        if self.ts_older_than_recent(ts.tsval) && !self.ts_recent_expired(now) {
            self.stats.paws_rejected += 1;
            self.ack_pending = true;
            fx.output = true;
            return false;
        }
        true
    }

    /// RFC 9293 §3.10.7.4 seventh (segment text) and eighth (FIN).
    fn process_text_and_fin(
        &mut self,
        now: Instant,
        tcp: &TcpRepr,
        payload: &[u8],
        fx: &mut Effects,
    ) {
        let text_seq = tcp.seq + tcp.flags.syn() as usize;
        let seg_end = text_seq + payload.len();
        if !payload.is_empty() {
            if self.read_closed && seg_end > self.rcv_nxt {
                // New data for a connection the user closed: nobody will
                // read it, so reset (RFC 9293 §3.10.4; Linux TCPAbortOnData).
                fx.rst = Some(self.own_rst());
                self.enter_closed(CloseReason::Aborted, fx);
                return;
            }
            self.stats.data_segs_in += 1;
            let reason = if self.state.accepts_data() {
                self.receive_text(now, tcp, text_seq, payload, fx)
            } else {
                // Text after the peer's FIN can only be a retransmission.
                self.note_duplicate(text_seq, seg_end.min(self.rcv_nxt));
                ImmediateReason::OutOfOrder
            };
            self.schedule_ack(now, payload.len(), reason, fx);
        }

        if tcp.flags.fin() {
            // The FIN counts only if it lies inside the window we accepted.
            let fin_seq = seg_end;
            let wnd_end = self.rcv_nxt + self.recv_buf.window();
            if fin_seq >= self.rcv_nxt && fin_seq <= wnd_end && self.peer_fin.is_none() {
                self.peer_fin = Some(fin_seq);
            }
            // A FIN is acknowledged at once: the peer is waiting for it.
            self.ack_pending = true;
            fx.output = true;
        }
        if let Some(fin_seq) = self.peer_fin {
            if !self.fin_received && self.rcv_nxt == fin_seq {
                self.consume_fin(now, fx);
            }
        }
    }

    /// The ACK policy for a data segment (RFC 9293 §3.8.6.3, RFC 1122
    /// §4.2.3.2, RFC 5681 §4.2): at the next flush when `reason` says so,
    /// for every second full-sized segment, in the quick-ACK phase or with
    /// delayed ACKs off; otherwise by the delayed-ACK deadline. Outgoing
    /// data before then carries the ACK (piggybacking).
    fn schedule_ack(
        &mut self,
        now: Instant,
        len: usize,
        reason: ImmediateReason,
        fx: &mut Effects,
    ) {
        if reason == ImmediateReason::OutOfOrder && self.ack_pending && !self.sack_permitted {
            // RFC 5681 §4.2: without SACK, one immediate duplicate ACK per
            // out-of-order segment, so the once-per-flush ACK must not
            // absorb them: the sender counts duplicate ACKs. With SACK one
            // ACK per batch carrying the blocks is enough: RFC 6675 and
            // Linux senders count the SACKed segments, not the ACKs.
            self.dup_acks_owed = self.dup_acks_owed.saturating_add(1);
        }
        let unacked = if self.rcv_nxt > self.last_ack_sent {
            self.rcv_nxt.since(self.last_ack_sent)
        } else {
            0
        };
        let immediate = self.delayed_ack.on_data(
            now,
            len,
            reason,
            unacked,
            self.rcv_space(),
            self.config.delayed_ack,
        );
        if immediate {
            self.ack_pending = true;
            fx.output = true;
        }
    }

    /// Records duplicate bytes `[left, right)` for a D-SACK (RFC 2883).
    fn note_duplicate(&mut self, left: SeqNum, right: SeqNum) {
        if self.sack_permitted && left < right {
            self.sack_report.on_duplicate(left, right);
        }
    }

    /// Stores segment text (trimmed to RCV.NXT and the window), advances
    /// RCV.NXT over whatever became contiguous, feeds SACK reporting and
    /// auto-tuning, and says whether the ACK must not be delayed.
    fn receive_text(
        &mut self,
        now: Instant,
        tcp: &TcpRepr,
        text_seq: SeqNum,
        payload: &[u8],
        fx: &mut Effects,
    ) -> ImmediateReason {
        let mut data = payload;
        let mut seq = text_seq;
        let mut duplicate = false;
        if seq < self.rcv_nxt {
            // RFC 2883 §4: a partial duplicate reports the duplicated part.
            let end = text_seq + payload.len();
            let dup_end = if end < self.rcv_nxt {
                end
            } else {
                self.rcv_nxt
            };
            self.note_duplicate(seq, dup_end);
            let skip = self.rcv_nxt.since(seq);
            if skip >= data.len() {
                return ImmediateReason::Duplicate;
            }
            data = &data[skip..];
            seq = self.rcv_nxt;
            duplicate = true;
        }
        let offset = seq.since(self.rcv_nxt);
        let had_holes = self.recv_buf.has_out_of_order();
        if had_holes {
            // Bytes already held out of order are a duplicate too (RFC 2883 §4 (b)).
            let (a, b) = (offset, offset + data.len());
            let held = self
                .recv_buf
                .out_of_order()
                .iter()
                .find(|&(s, e)| s < b && a < e);
            if let Some((s, e)) = held {
                let base = self.rcv_nxt;
                self.note_duplicate(base + a.max(s), base + b.min(e));
                duplicate = true;
            }
        }
        if offset > 0 {
            self.stats.out_of_order += 1;
        }
        let advanced = self.recv_buf.write_at(offset, data);
        if offset > 0 && self.sack_permitted {
            // RFC 2018 §4: this segment's range is the first block.
            self.sack_report
                .on_received(seq, self.rcv_nxt, self.recv_buf.out_of_order());
        }
        if advanced > 0 {
            self.rcv_nxt += advanced;
            self.stats.bytes_received += advanced as u64;
            if !self.readable_signalled {
                self.readable_signalled = true;
                fx.readable = true;
            }
            self.autotune_receive_buffer(now, tcp.options.timestamps, fx);
        }
        if offset > 0 {
            ImmediateReason::OutOfOrder
        } else if had_holes {
            ImmediateReason::FillsHole
        } else if duplicate {
            ImmediateReason::Duplicate
        } else {
            ImmediateReason::None
        }
    }

    /// Receive-buffer auto-tuning (see `recv_autotune`): an RTT sample from
    /// the echoed timestamp (RFC 7323 §4: TSecr is the TSval of our ACK
    /// this data answers) or from the time to receive a window, then grow
    /// the buffer if the application drained more than half of it in the
    /// last RTT. The window scale announced in the SYN was computed from
    /// `recv_buffer_max`, so the larger window can be advertised.
    fn autotune_receive_buffer(
        &mut self,
        now: Instant,
        timestamps: Option<Timestamps>,
        fx: &mut Effects,
    ) {
        match timestamps {
            Some(ts) if self.timestamps => {
                if self.autotune.is_new_echo(ts.tsecr) {
                    let elapsed = self.ts_now(now).wrapping_sub(ts.tsecr) as i32;
                    if elapsed >= 0 {
                        self.autotune
                            .on_rtt_sample(Duration::from_millis(elapsed as u64));
                    }
                }
            }
            _ => {
                let advertised = if self.rcv_adv > self.rcv_nxt {
                    self.rcv_adv.since(self.rcv_nxt)
                } else {
                    0
                };
                self.autotune
                    .on_in_order_data(now, self.rcv_nxt, advertised);
            }
        }
        // Never beyond what the negotiated scale can announce.
        let announceable = (u16::MAX as usize) << self.rcv_wscale;
        let limit = self.config.recv_buffer_max.min(announceable);
        if let Some(size) = self.autotune.adjust(now, self.rcv_capacity(), limit) {
            self.recv_buf.grow(size + self.rcv_slack);
            self.stats.recv_buffer_grown += 1;
            self.stats.recv_buffer_peak = self.stats.recv_buffer_peak.max(size as u64);
            // A window grown by at least an MSS is announced at once.
            self.maybe_window_update(fx);
        }
    }

    /// The peer's FIN is next in sequence: consume it (eighth step).
    fn consume_fin(&mut self, now: Instant, fx: &mut Effects) {
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ack_pending = true;
        fx.output = true;
        fx.readable = true;
        self.readable_signalled = true;
        let fin_acked = self.fin_seq.is_some_and(|f| self.snd_una > f);
        match self.state {
            State::SynReceived | State::Established => {
                self.state = State::CloseWait;
                self.keepalive_deadline = None;
                self.restart_keepalive(now);
            }
            State::FinWait1 if fin_acked => self.enter_time_wait(now, fx),
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now, fx),
            State::TimeWait => self.close_deadline = Some(now + self.config.msl * 2),
            _ => {}
        }
    }
}
