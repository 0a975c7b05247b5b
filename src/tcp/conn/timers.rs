//! Timer expiry: retransmission (RFC 6298 §5), persist (RFC 9293
//! §3.8.6.1), keepalive (RFC 1122 §4.2.3.6), TIME-WAIT and the orphan
//! FIN-WAIT-2 timeout, and the delayed ACK (RFC 1122 §4.2.3.2).

use super::{Connection, Effects};
use crate::tcp::congestion::CongestionControl;
use crate::tcp::event::CloseReason;
use crate::tcp::state::State;
use crate::tcp::Instant;

fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}

/// A deadline as microseconds, `None` ("never") as `u64::MAX`, so the
/// earliest of several is a branch-free minimum.
#[inline]
fn micros_or_never(t: Option<Instant>) -> u64 {
    t.map_or(u64::MAX, Instant::total_micros)
}

impl Connection {
    /// The earliest time `on_timer` has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        // Called after every arrival and output: a minimum over plain
        // integers costs a fraction of comparing seven `Option`s.
        let earliest = [
            self.rto_deadline,
            self.pto_deadline,
            self.reorder_deadline,
            self.persist_deadline,
            self.keepalive_deadline,
            self.close_deadline,
            self.delayed_ack.deadline(),
        ]
        .map(micros_or_never)
        .into_iter()
        .fold(u64::MAX, u64::min);
        // An `Instant` of u64::MAX µs is half a million years of uptime.
        (earliest != u64::MAX).then(|| Instant::from_micros(earliest))
    }

    /// Whether all that is left of the connection is what a TIME-WAIT
    /// record does (`tcp::time_wait`): TIME-WAIT, or FIN-WAIT-2 with
    /// nothing to send, no text held and no timer but the close deadline
    /// (an orphan waiting for the peer's FIN).
    pub(crate) fn retirable(&self) -> bool {
        match self.state {
            State::TimeWait => true,
            State::FinWait2 => {
                self.close_deadline.is_some()
                    && self.send_buf.is_empty()
                    && self.recv_buf.is_empty()
                    && !self.recv_buf.has_out_of_order()
                    && self.rto_deadline.is_none()
                    && self.pto_deadline.is_none()
                    && self.reorder_deadline.is_none()
                    && self.persist_deadline.is_none()
                    && self.keepalive_deadline.is_none()
                    && self.delayed_ack.deadline().is_none()
            }
            _ => false,
        }
    }

    /// Runs every timer that is due at `now`.
    pub fn on_timer(&mut self, now: Instant, fx: &mut Effects) {
        if due(self.close_deadline, now) {
            self.close_deadline = None;
            match self.state {
                State::TimeWait => {
                    // 2·MSL passed (RFC 9293 §3.10.8): delete the TCB.
                    self.state = State::Closed;
                    fx.closed = Some(CloseReason::Normal);
                    return;
                }
                State::FinWait2 if !self.user_owned => {
                    // Linux (tcp_fin_timeout ≤ TIME-WAIT length): reset and drop.
                    fx.rst = Some(self.own_rst());
                    self.enter_closed(CloseReason::Aborted, fx);
                    return;
                }
                _ => {}
            }
        }
        if due(self.rto_deadline, now) {
            self.rto_deadline = None;
            self.on_retransmission_timeout(now, fx);
            if self.state == State::Closed {
                return;
            }
        }
        if due(self.reorder_deadline, now) {
            self.reorder_deadline = None;
            self.on_reorder_timeout(now, fx);
        }
        if due(self.pto_deadline, now) {
            self.pto_deadline = None;
            self.on_probe_timeout(now, fx);
        }
        if due(self.persist_deadline, now) {
            self.persist_deadline = None;
            self.on_persist_timeout(fx);
        }
        if due(self.keepalive_deadline, now) {
            self.keepalive_deadline = None;
            self.on_keepalive_timeout(now, fx);
        }
        // RFC 1122 §4.2.3.2: the delayed ACK is due; whatever the next
        // flush sends carries it.
        if self.delayed_ack.on_timer(now) && self.state.is_synchronized() {
            self.ack_pending = true;
            self.stats.delayed_acks += 1;
            fx.output = true;
        }
    }

    fn on_retransmission_timeout(&mut self, now: Instant, fx: &mut Effects) {
        self.rtt_probe = None; // Karn
        match self.state {
            State::SynSent => {
                if self.retries >= self.config.syn_retries {
                    self.enter_closed(CloseReason::TimedOut, fx);
                    return;
                }
                self.retries += 1;
                self.stats.rto_timeouts += 1;
                self.stats.retransmits += 1;
                self.syn_pending = true;
                fx.output = true;
            }
            State::SynReceived => {
                if self.retries >= self.config.synack_retries {
                    if self.listener.is_some() {
                        // Linux drops the request silently; the client times out.
                        fx.drop_silently = true;
                        self.state = State::Closed;
                    } else {
                        self.enter_closed(CloseReason::TimedOut, fx);
                    }
                    return;
                }
                self.retries += 1;
                self.stats.rto_timeouts += 1;
                self.stats.retransmits += 1;
                self.syn_pending = true;
                fx.output = true;
            }
            State::TimeWait | State::Closed | State::Listen => {}
            _ => {
                if self.snd_una == self.snd_nxt {
                    return; // everything was acknowledged meanwhile
                }
                if self.retries >= self.config.max_retransmits {
                    self.enter_closed(CloseReason::TimedOut, fx);
                    return;
                }
                self.retries += 1;
                self.stats.rto_timeouts += 1;
                if !self.in_loss {
                    // Consecutive timeouts are one episode: undo (RFC 3522)
                    // restores the state from before the first.
                    self.start_undo_episode();
                }
                // RFC 5681 §3.1 eq. 4 and the loss window; RFC 6582 §4:
                // after a timeout, `recover` is the highest sequence sent.
                self.cc.on_rto(now, self.snd_nxt.since(self.snd_una));
                self.in_recovery = false;
                self.in_loss = true;
                self.dup_acks = 0;
                self.recover = self.snd_nxt - 1;
                // RFC 6298 §5.4 retransmit the earliest unacknowledged
                // segment, and RFC 6675 §5.1: everything not SACKed is
                // now lost and goes again in order as the window opens.
                self.scoreboard.mark_all_lost();
                self.retransmit_pending = true;
                self.tlp_pending = false;
                self.tlp = Default::default();
                self.pto_deadline = None;
                self.reorder_deadline = None;
                // RFC 6298 §5.5: back off the timer.
                self.rto.backoff();
                self.rto_deadline = Some(now + self.rto.rto());
                fx.output = true;
            }
        }
    }

    /// The next hop's MAC changed under this connection (the runtime's
    /// neighbour verification found a new host there): what it sent
    /// since the old one went away is lost, and its retransmission timer
    /// may have backed off through the outage. RFC 6069 §4 (TCP-LD) lets
    /// a sender that learns connectivity is back revert the backoff and
    /// retransmit at once rather than wait out the backed-off timer; a
    /// new next hop is such news. The timeout then runs as any other
    /// (RFC 6298 §5.4-5.6), from the un-backed-off RTO. Returns whether
    /// the retransmission timer was moved to `now`.
    pub fn on_next_hop_changed(&mut self, now: Instant) -> bool {
        if self.rto_deadline.is_none() {
            return false; // nothing outstanding
        }
        self.rto.reset_backoff();
        self.rto_deadline = Some(now);
        true
    }

    fn on_persist_timeout(&mut self, fx: &mut Effects) {
        let unsent = self.send_buf.len() > self.snd_nxt.since(self.snd_una)
            || (self.fin_queued && self.fin_seq.is_none());
        let nothing_in_flight = self.snd_nxt == self.snd_una;
        if !unsent || !nothing_in_flight || !self.state.is_synchronized() {
            return;
        }
        if self.snd_wnd == 0 {
            // Zero-window probe: an old sequence number with no data
            // elicits an ACK carrying the current window (RFC 1122
            // §4.2.2.17; the Linux form, which every receiver answers per
            // RFC 9293 §3.10.7.4 "unacceptable segment → ACK").
            // RFC 1122 §4.2.2.17: keep probing as long as the peer answers;
            // only a peer that stopped answering altogether times out.
            if self.probes_unanswered >= self.config.max_retransmits {
                self.enter_closed(CloseReason::TimedOut, fx);
                return;
            }
            self.probes_unanswered += 1;
            self.probe_pending = Some(self.snd_una - 1);
            self.stats.zero_window_probes += 1;
        } else {
            // Sender SWS override timeout (RFC 9293 §3.8.6.2.1).
            self.force_send = true;
        }
        self.persist_backoff += 1;
        fx.output = true;
    }

    fn on_keepalive_timeout(&mut self, now: Instant, fx: &mut Effects) {
        let Some(k) = self.keepalive else { return };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if self.snd_nxt != self.snd_una || !self.send_buf.is_empty() {
            // Data in flight: the retransmission timer watches the peer.
            self.keepalive_deadline = Some(now + k.idle);
            return;
        }
        if self.keepalive_probes >= k.count {
            // Linux resets a connection whose keepalives went unanswered.
            fx.rst = Some(self.own_rst());
            self.enter_closed(CloseReason::TimedOut, fx);
            return;
        }
        self.keepalive_probes += 1;
        self.stats.keepalive_probes += 1;
        // RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT-1 with no data.
        self.probe_pending = Some(self.snd_nxt - 1);
        self.keepalive_deadline = Some(now + k.interval);
        fx.output = true;
    }
}
