//! Segment output: SYN / SYN-ACK, data with sender SWS avoidance and
//! Nagle, FIN, retransmissions, probes and pure ACKs.

use super::Connection;
use crate::tcp::congestion::CongestionControl;
use crate::tcp::receive_window::{self, ReceiveRoom};
use crate::tcp::state::State;
use crate::tcp::{Instant, Transmit};
use crate::wire::{
    emit_tcp_frame, tcp_frame_len, MacAddr, SackBlocks, SegmentTemplate, SeqNum, TcpFlags,
    TcpOptions, TcpRepr, Timestamps,
};

/// Scoreboard records reserved at a connection's first send.
const FIRST_SCOREBOARD_RECORDS: usize = 16;

/// Stack-wide facts the connection needs to build frames.
#[derive(Debug, Clone, Copy)]
pub struct OutputEnv {
    pub mac: MacAddr,
}

/// One segment to build: data is `data_len` bytes at `data_off` in the send buffer.
#[derive(Debug, Clone, Copy)]
struct Segment {
    seq: SeqNum,
    flags: TcpFlags,
    data_off: usize,
    data_len: usize,
}

impl Connection {
    /// Sends whatever is due. Returns false when `tx` ran out of room; the
    /// caller polls again later and nothing is lost.
    pub fn poll_output<T: Transmit>(&mut self, now: Instant, env: &OutputEnv, tx: &mut T) -> bool {
        match self.state {
            State::Closed | State::Listen => return true,
            State::SynSent | State::SynReceived => return self.output_handshake(now, env, tx),
            _ => {}
        }
        if self.ack_pending && self.owes_only_an_ack() {
            // The receiver's common flush: everything below would find
            // nothing to do but this ACK (RFC 9293 §3.10.7.4:
            // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>).
            let ack = Segment {
                seq: self.snd_nxt,
                flags: TcpFlags::ACK,
                data_off: 0,
                data_len: 0,
            };
            return self.transmit(now, env, tx, ack);
        }
        if !self.output_lost(now, env, tx) {
            return false;
        }
        if self.tlp_pending {
            if !self.output_tail_loss_probe(now, env, tx) {
                return false;
            }
            self.tlp_pending = false;
        }
        if let Some(seq) = self.probe_pending {
            let seg = Segment {
                seq,
                flags: TcpFlags::ACK,
                data_off: 0,
                data_len: 0,
            };
            if !self.transmit(now, env, tx, seg) {
                return false;
            }
            self.probe_pending = None;
        }
        if !self.output_data(now, env, tx) {
            return false;
        }
        let ack = Segment {
            seq: self.snd_nxt,
            flags: TcpFlags::ACK,
            data_off: 0,
            data_len: 0,
        };
        // One ACK per flush (unless data above carried it): every segment
        // of a receive batch that wanted an immediate ACK shares it, with
        // the SACK blocks of this moment.
        if self.ack_pending && !self.transmit(now, env, tx, ack) {
            return false;
        }
        while self.dup_acks_owed > 0 {
            if !self.transmit(now, env, tx, ack) {
                return false;
            }
            self.dup_acks_owed -= 1;
        }
        true
    }

    /// Nothing of ours is in flight, queued, lost or due to be probed, and
    /// no duplicate ACKs are owed: the only segment a flush can send now
    /// is one ACK. (Every step `poll_output` skips for it would have done
    /// nothing: no lost segment, no tail-loss probe, no probe, no data or
    /// FIN to send, and the idle restart needs queued data.)
    #[inline]
    fn owes_only_an_ack(&self) -> bool {
        self.state == State::Established
            && self.snd_una == self.snd_nxt
            && self.send_buf.is_empty()
            && !self.fin_queued
            && self.scoreboard.is_empty()
            && !self.tlp_pending
            && !self.retransmit_pending
            && self.probe_pending.is_none()
            && self.dup_acks_owed == 0
    }

    fn output_handshake<T: Transmit>(&mut self, now: Instant, env: &OutputEnv, tx: &mut T) -> bool {
        if !self.syn_pending {
            if self.ack_pending && self.state == State::SynReceived {
                // An unacceptable segment or a challenge in SYN-RECEIVED:
                // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (RFC 9293 §3.10.7.4).
                let seg = Segment {
                    seq: self.snd_nxt,
                    flags: TcpFlags::ACK,
                    data_off: 0,
                    data_len: 0,
                };
                return self.transmit(now, env, tx, seg);
            }
            return true;
        }
        let flags = if self.state == State::SynSent {
            TcpFlags::SYN
        } else {
            TcpFlags::SYN | TcpFlags::ACK
        };
        let seg = Segment {
            seq: self.iss,
            flags,
            data_off: 0,
            data_len: 0,
        };
        if !self.transmit(now, env, tx, seg) {
            return false;
        }
        self.syn_pending = false;
        if self.snd_nxt == self.iss {
            self.snd_nxt = self.iss + 1;
        }
        if self.retries == 0 {
            // Karn: only a SYN sent once can be timed.
            self.rtt_probe = Some((self.iss + 1, now));
        } else {
            self.rtt_probe = None;
        }
        if self.rto_deadline.is_none() {
            // RFC 6298 §2.1 / §5.5: 1 s initial, doubled per retry
            // (Linux: 1, 2, 4, 8, 16, 32 s).
            let backoff = self.config.syn_rto * (1u32 << self.retries.min(16));
            self.rto_deadline = Some(now + backoff.min(self.config.rto.max));
        }
        true
    }

    /// RFC 6675 §5 step (C) with NextSeg rule (1): retransmit segments
    /// deemed lost, in sequence order, while cwnd − pipe allows (PRR sets
    /// cwnd during recovery). `retransmit_pending` lets the first one out
    /// regardless (the fast retransmit, RFC 5681 §3.2 step 3).
    fn output_lost<T: Transmit>(&mut self, now: Instant, env: &OutputEnv, tx: &mut T) -> bool {
        while let Some((start, len)) = self.scoreboard.next_lost() {
            let room = self.cc.cwnd().saturating_sub(self.scoreboard.pipe());
            if room < len.min(self.snd_mss) && !self.retransmit_pending {
                return true;
            }
            if !self.send_recorded(now, env, tx, start, len) {
                return false;
            }
            self.retransmit_pending = false;
            self.note_retransmission(now, start, len);
        }
        self.retransmit_pending = false;
        true
    }

    /// RFC 8985 §7.3: the probe is one new segment if the peer's window
    /// allows, else the last segment sent again.
    fn output_tail_loss_probe<T: Transmit>(
        &mut self,
        now: Instant,
        env: &OutputEnv,
        tx: &mut T,
    ) -> bool {
        let sent = self.snd_nxt.since(self.snd_una);
        let unsent = self.send_buf.len().saturating_sub(sent);
        let room = self.snd_wnd.saturating_sub(sent);
        if unsent > 0 && room > 0 && self.fin_seq.is_none() {
            let len = unsent.min(room).min(self.data_room());
            let seg = self.new_data_segment(sent, len, unsent);
            if !self.transmit(now, env, tx, seg) {
                return false;
            }
            // Open the probe before the bookkeeping re-arms the timer, so
            // no second probe is armed while this one is outstanding.
            let end = seg.seq + len + seg.flags.fin() as usize;
            self.tlp.on_probe_sent(end, false);
            self.after_send(now, seg);
            return true;
        }
        let Some(last) = self.scoreboard.last().copied() else {
            return true;
        };
        if !self.send_recorded(now, env, tx, last.start, last.len as usize) {
            return false;
        }
        self.stats.retransmits += 1;
        self.tlp.on_probe_sent(self.snd_nxt, true);
        true
    }

    /// Sends the recorded segment `[start, start + len)` again, FIN
    /// included if it carries ours, and tells the scoreboard.
    fn send_recorded<T: Transmit>(
        &mut self,
        now: Instant,
        env: &OutputEnv,
        tx: &mut T,
        start: SeqNum,
        len: usize,
    ) -> bool {
        let fin = self.fin_seq.is_some_and(|f| f >= start && f < start + len);
        let data_len = len - fin as usize;
        let mut flags = TcpFlags::ACK;
        if fin {
            flags.insert(TcpFlags::FIN);
        }
        let seg = Segment {
            seq: start,
            flags,
            data_off: start.since(self.snd_una),
            data_len,
        };
        if !self.transmit(now, env, tx, seg) {
            return false;
        }
        self.scoreboard.on_retransmit(start, now);
        self.rtt_probe = None;
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now + self.rto.rto());
        }
        true
    }

    /// New data, then the FIN.
    fn output_data<T: Transmit>(&mut self, now: Instant, env: &OutputEnv, tx: &mut T) -> bool {
        if !self.state.sends_data() {
            return true;
        }
        let idle = self.snd_nxt == self.snd_una && !self.send_buf.is_empty();
        if idle && now.saturating_since(self.last_data_sent) > self.rto.rto() {
            // RFC 5681 §4.1: after an idle period longer than the RTO the
            // ACK clock is gone: restart from the initial window.
            self.cc.on_idle_restart();
            self.last_data_sent = now;
        }
        loop {
            let sent = self.snd_nxt.since(self.snd_una);
            let buffered = self.send_buf.len();
            if sent > buffered {
                return true; // the FIN is out; nothing follows it
            }
            let unsent = buffered - sent;
            let fin_due = self.fin_queued;
            if unsent == 0 {
                if fin_due {
                    // A bare FIN; it needs no window (RFC 9293 §3.8.6.1 counts data only).
                    let seg = Segment {
                        seq: self.snd_nxt,
                        flags: TcpFlags::ACK | TcpFlags::FIN,
                        data_off: sent,
                        data_len: 0,
                    };
                    if !self.transmit(now, env, tx, seg) {
                        return false;
                    }
                    self.after_send(now, seg);
                }
                return true;
            }
            // The peer's window counts sequence space in flight; cwnd counts
            // the RFC 6675 pipe (what is believed still in the network).
            let window_room = self.snd_wnd.saturating_sub(sent);
            let cwnd_room = self.cc.cwnd().saturating_sub(self.scoreboard.pipe());
            let seg_max = self.data_room();
            let wanted = unsent.min(window_room).min(seg_max);
            if cwnd_room < wanted {
                self.cwnd_limited_until = Some(self.snd_nxt);
            }
            let len = wanted.min(cwnd_room);
            let unacked = self.snd_nxt > self.snd_una;
            if len == 0 {
                // Window closed: the persist timer probes it (RFC 9293 §3.8.6.1).
                self.arm_persist(now, unacked);
                return true;
            }
            let is_last = len == unsent;
            let nagle_ok = !self.nagle || !unacked;
            // RFC 9293 §3.8.6.2.1 sender SWS avoidance with Nagle (§3.7.4):
            // send a full segment, or everything queued when Nagle allows,
            // or at least half the largest window the peer offered, or on
            // the persist-timer override.
            let send_now = len == seg_max
                || (is_last && nagle_ok)
                || (nagle_ok && len >= self.max_snd_wnd / 2)
                || self.force_send;
            if !send_now {
                if !unacked {
                    self.arm_persist(now, unacked);
                }
                return true;
            }
            let seg = self.new_data_segment(sent, len, unsent);
            if !self.transmit(now, env, tx, seg) {
                return false;
            }
            self.force_send = false;
            self.after_send(now, seg);
        }
    }

    /// The next new-data segment: `len` bytes at SND.NXT (`sent` bytes past
    /// SND.UNA) of the `unsent` queued; the last one carries PSH, and our
    /// FIN if the application shut down its write side.
    fn new_data_segment(&self, sent: usize, len: usize, unsent: usize) -> Segment {
        let mut flags = TcpFlags::ACK;
        if len == unsent {
            flags.insert(TcpFlags::PSH);
            if self.fin_queued {
                flags.insert(TcpFlags::FIN);
            }
        }
        Segment {
            seq: self.snd_nxt,
            flags,
            data_off: sent,
            data_len: len,
        }
    }

    /// Sequence-space bookkeeping after a data or FIN segment left.
    fn after_send(&mut self, now: Instant, seg: Segment) {
        let fin = seg.flags.fin() as usize;
        if seg.data_len > 0 {
            self.last_data_sent = now;
        }
        // Only new data comes here; retransmissions go through `send_recorded`.
        // A few records are reserved at the first send (idle connections
        // stay small); once the flight outgrows them, a full flight of the
        // send buffer at once, so a bulk sender's steady state does not
        // allocate. Reserving the full flight (4.4 KiB for a 256 KiB send
        // buffer) at the first send cost every short connection a
        // malloc/free beyond the allocator's per-thread cache, and was
        // most of what a TIME-WAIT connection held.
        let full_flight = self.send_buf.capacity() / self.snd_mss.max(536) + 2;
        let records = if self.scoreboard.len() < FIRST_SCOREBOARD_RECORDS {
            full_flight.min(FIRST_SCOREBOARD_RECORDS)
        } else {
            full_flight
        };
        self.scoreboard.reserve(records);
        self.scoreboard
            .on_send(seg.seq, seg.data_len + fin, fin == 1, now);
        if self.scoreboard.pipe() >= self.cc.cwnd() {
            self.cwnd_limited_until = Some(seg.seq + seg.data_len + fin);
        }
        if self.in_recovery {
            self.prr.out += seg.data_len + fin;
        }
        if seg.flags.fin() {
            self.fin_seq = Some(seg.seq + seg.data_len);
        }
        self.snd_nxt = seg.seq + seg.data_len + fin;
        // RFC 6298 §5.1: start the timer if it is not running.
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now + self.rto.rto());
        }
        self.persist_deadline = None;
        // RFC 8985 §7.2: (re)arm the probe timer after new data.
        self.arm_tail_loss_probe(now);
    }

    /// Starts the persist timer when nothing is in flight to elicit the
    /// ACK that would reopen the window (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17).
    fn arm_persist(&mut self, now: Instant, unacked: bool) {
        if unacked || self.persist_deadline.is_some() {
            return;
        }
        let base = self.rto.rto();
        let backoff = base
            .checked_mul(1u32 << self.persist_backoff.min(16))
            .unwrap_or(self.config.rto.max);
        self.persist_deadline = Some(now + backoff.min(self.config.rto.max));
    }

    /// The window to put in a segment, honouring receiver SWS avoidance
    /// (RFC 9293 §3.8.6.2.2) and never moving the right edge left (§3.8.6).
    /// Returns (header field, bytes advertised).
    pub(crate) fn window_to_advertise(&self, syn: bool) -> (u16, usize) {
        let room = self.receive_room();
        if syn {
            // RFC 7323 §2.2: SYN windows are unscaled.
            let w = room.free.min(u16::MAX as u32) as u16;
            return (w, usize::from(w));
        }
        receive_window::window_to_advertise(room, self.rcv_adv.since(self.rcv_nxt))
    }

    /// What the receive buffer may offer (see [`receive_window`]).
    pub(crate) fn receive_room(&self) -> ReceiveRoom {
        ReceiveRoom::new(
            self.rcv_space(),
            self.recv_buf.window(),
            (self.rcv_capacity() / 2).min(self.local_mss as usize),
            self.rcv_wscale,
        )
    }

    /// Options of an outgoing segment: on a SYN what we offer (or accept),
    /// otherwise timestamps and `sack_blocks`.
    fn segment_options(&self, now: Instant, syn: bool, sack_blocks: SackBlocks) -> TcpOptions {
        let mut options = TcpOptions::default();
        let cfg = &self.config;
        if syn {
            options.mss = Some(self.local_mss);
            let offering = self.state == State::SynSent;
            // On a SYN-ACK, only what the peer offered (RFC 7323 §1.3, RFC 2018 §2).
            if cfg.window_scaling && (offering || self.rcv_wscale > 0 || self.snd_wscale > 0) {
                options.window_scale = Some(cfg.local_window_scale());
            }
            if cfg.sack && (offering || self.sack_permitted) {
                options.sack_permitted = true;
            }
            if cfg.timestamps && (offering || self.timestamps) {
                options.timestamps = Some(Timestamps {
                    tsval: self.ts_now(now),
                    tsecr: if offering { 0 } else { self.ts_recent.value },
                });
            }
        } else {
            if self.timestamps {
                options.timestamps = Some(self.timestamps_to_send(now));
            }
            options.sack_blocks = sack_blocks;
        }
        options
    }

    /// TSval and TSecr of a non-SYN segment (RFC 7323 §3.2, §4.3).
    #[inline]
    fn timestamps_to_send(&self, now: Instant) -> Timestamps {
        Timestamps {
            tsval: self.ts_now(now),
            tsecr: self.ts_recent.value,
        }
    }

    /// RFC 2018 §4 / RFC 2883 §4: the SACK blocks for an ACK, while holes
    /// exist or a D-SACK is pending. At most 4 blocks, 3 next to the
    /// timestamps option (40 bytes of option space). On a data segment
    /// only as many as fit beside the payload: the peer's MSS bounds
    /// payload plus options (RFC 6691), and `snd_mss` already leaves room
    /// for the timestamps.
    /// Payload bytes a new data segment may carry: the MSS less the room
    /// the SACK option needs while we hold out-of-order data or owe a
    /// D-SACK (as Linux's tcp_current_mss). RFC 2018 §4: SACK blocks go on
    /// every ACK while holes exist, and most of our ACKs ride on data, so
    /// a full-sized segment without them would leave the sender blind.
    pub(super) fn data_room(&self) -> usize {
        let ooo = self.recv_buf.out_of_order();
        if !self.sack_permitted || (ooo.is_empty() && !self.sack_report.dsack_pending()) {
            return self.snd_mss;
        }
        let by_space = if self.timestamps { 3 } else { 4 };
        let blocks = (ooo.len() + self.sack_report.dsack_pending() as usize).min(by_space);
        // Kind and length plus two NOPs of alignment, then 8 per block.
        self.snd_mss.saturating_sub(4 + 8 * blocks).max(1)
    }

    fn sack_blocks_to_send(&self, data_len: usize) -> SackBlocks {
        let ooo = self.recv_buf.out_of_order();
        if ooo.is_empty() && !self.sack_report.dsack_pending() {
            return SackBlocks::new();
        }
        // Kind and length (2 bytes) plus 2 NOPs of alignment, 8 per block.
        const SACK_OVERHEAD: usize = 4;
        const SACK_BLOCK: usize = 8;
        let by_space = if self.timestamps { 3 } else { 4 };
        let room = self.snd_mss.saturating_sub(data_len);
        let by_room = if data_len == 0 {
            by_space
        } else {
            room.saturating_sub(SACK_OVERHEAD) / SACK_BLOCK
        };
        self.sack_report
            .blocks(self.rcv_nxt, ooo, by_space.min(by_room))
    }

    /// Builds and hands one segment to `tx`; updates what the peer now knows.
    fn transmit<T: Transmit>(
        &mut self,
        now: Instant,
        env: &OutputEnv,
        tx: &mut T,
        seg: Segment,
    ) -> bool {
        let syn = seg.flags.syn();
        let (window, advertised) = self.window_to_advertise(syn);
        let ack = if seg.flags.ack() {
            self.rcv_nxt
        } else {
            SeqNum(0)
        };
        let sack_blocks = if syn || !self.sack_permitted {
            SackBlocks::new()
        } else {
            self.sack_blocks_to_send(seg.data_len)
        };
        // After the handshake, segments without SACK blocks all have one
        // shape: the connection's prebuilt header does them.
        let sent = if !syn && seg.flags.ack() && sack_blocks.is_empty() {
            self.transmit_from_template(now, env, tx, seg, ack, window)
        } else {
            self.transmit_built(now, env, tx, seg, ack, window, sack_blocks)
        };
        if !sent {
            return false;
        }
        self.stats.segs_out += 1;
        if seg.flags.ack() {
            self.rcv_adv = self.rcv_nxt + advertised;
            self.last_ack_sent = self.rcv_nxt;
            self.ack_pending = false;
            if seg.data_len == 0 && !seg.flags.fin() && !syn {
                self.stats.acks_sent += 1;
            }
            self.after_ack_sent(now, &sack_blocks, seg.data_len);
        }
        true
    }

    /// The general builder: any flags and options.
    #[allow(clippy::too_many_arguments)]
    fn transmit_built<T: Transmit>(
        &mut self,
        now: Instant,
        env: &OutputEnv,
        tx: &mut T,
        seg: Segment,
        ack: SeqNum,
        window: u16,
        sack_blocks: SackBlocks,
    ) -> bool {
        let repr = TcpRepr {
            src_port: self.tuple.local.port(),
            dst_port: self.tuple.remote.port(),
            seq: seg.seq,
            ack,
            flags: seg.flags,
            window,
            urgent: 0,
            options: self.segment_options(now, seg.flags.syn(), sack_blocks),
        };
        let (eth, ip) = self
            .tuple
            .outgoing_headers(env.mac, self.remote_mac, self.config.ttl);
        let (a, b) = self.send_buf.slices_at(seg.data_off, seg.data_len);
        let len = tcp_frame_len(&repr, a.len() + b.len());
        tx.transmit(len, |buf| emit_tcp_frame(buf, &eth, &ip, &repr, a, b))
    }

    /// A segment of the established shape (ACK, no SYN, no SACK blocks)
    /// from the connection's [`SegmentTemplate`], built at the first such
    /// segment. The template caches the addresses, ports, MACs, TTL and
    /// whether timestamps are on; all but our own MAC and the timestamps
    /// are fixed for the connection's life, and those two are checked, so
    /// a stale template is never used.
    fn transmit_from_template<T: Transmit>(
        &mut self,
        now: Instant,
        env: &OutputEnv,
        tx: &mut T,
        seg: Segment,
        ack: SeqNum,
        window: u16,
    ) -> bool {
        if self
            .segment_template
            .as_ref()
            .is_some_and(|t| t.has_timestamps() != self.timestamps || t.src_mac() != env.mac)
        {
            self.segment_template = None;
        }
        let ts = if self.timestamps {
            self.timestamps_to_send(now)
        } else {
            Timestamps::default()
        };
        let (tuple, remote_mac, ttl, timestamps) = (
            self.tuple,
            self.remote_mac,
            self.config.ttl,
            self.timestamps,
        );
        let template: &SegmentTemplate = self.segment_template.get_or_insert_with(|| {
            let (eth, ip) = tuple.outgoing_headers(env.mac, remote_mac, ttl);
            Box::new(SegmentTemplate::new(
                &eth,
                &ip,
                tuple.local.port(),
                tuple.remote.port(),
                timestamps,
            ))
        });
        let (a, b) = if seg.data_len == 0 {
            (&[][..], &[][..])
        } else {
            self.send_buf.slices_at(seg.data_off, seg.data_len)
        };
        let len = template.frame_len(a.len() + b.len());
        tx.transmit(len, |buf| {
            let n = template.emit(buf, seg.seq, ack, seg.flags, window, ts, a, b);
            #[cfg(debug_assertions)]
            same_as_full_builder(
                &buf[..n],
                env.mac,
                remote_mac,
                &tuple,
                ttl,
                ts,
                timestamps,
                a,
                b,
            );
            n
        })
    }

    /// Receiver-side bookkeeping once a segment carrying an ACK left: the
    /// delayed ACK (if any) rode on it, a D-SACK it carried is done, and
    /// data sent soon after data arrived marks an interactive exchange.
    fn after_ack_sent(&mut self, now: Instant, blocks: &SackBlocks, data_len: usize) {
        self.delayed_ack.on_ack_sent();
        if !blocks.is_empty() && self.sack_report.dsack_pending() {
            self.sack_report.on_sent(blocks);
            if !self.sack_report.dsack_pending() {
                self.stats.dsacks_sent += 1;
            }
        }
        if data_len > 0 {
            self.delayed_ack.on_data_sent(now, self.config.delayed_ack);
        }
    }
}

/// Debug builds check every templated frame against the general builder
/// (frames up to 2 KiB, built on the stack: no allocation, so the
/// allocation-counting tests still hold). Release builds rely on the
/// property test in `wire::template`.
#[cfg(debug_assertions)]
#[allow(clippy::too_many_arguments)]
fn same_as_full_builder(
    frame: &[u8],
    mac: MacAddr,
    remote_mac: MacAddr,
    tuple: &crate::tcp::FourTuple,
    ttl: u8,
    ts: Timestamps,
    timestamps: bool,
    a: &[u8],
    b: &[u8],
) {
    const MAX: usize = 2048;
    if frame.len() > MAX || frame.len() < 54 {
        return;
    }
    let tcp = crate::wire::TcpPacket::new_unchecked(&frame[34..]);
    let repr = TcpRepr {
        src_port: tuple.local.port(),
        dst_port: tuple.remote.port(),
        seq: tcp.seq_number(),
        ack: tcp.ack_number(),
        flags: tcp.flags(),
        window: tcp.window_len(),
        urgent: 0,
        options: TcpOptions {
            timestamps: timestamps.then_some(ts),
            ..TcpOptions::default()
        },
    };
    let (eth, ip) = tuple.outgoing_headers(mac, remote_mac, ttl);
    let mut full = [0u8; MAX];
    let n = emit_tcp_frame(&mut full, &eth, &ip, &repr, a, b);
    assert_eq!(
        frame,
        &full[..n],
        "templated frame differs from the full builder's"
    );
}
