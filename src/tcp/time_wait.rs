//! TIME-WAIT without a connection: the few fields RFC 9293 §3.10.7.4
//! still reads in that state, kept in a table of their own.
//!
//! A connection that reaches TIME-WAIT with nobody holding it (the user
//! closed it) has sent everything and will accept nothing: for 2·MSL it
//! only acknowledges a retransmitted FIN, answers what is out of window,
//! and dies on an exact RST. Keeping its whole [`Connection`] for that
//! (about 1.5 KiB, and a slot counted against `max_connections`) made a
//! server that closes first hold 60 s of connections at full size: at
//! more than `max_connections / 60 s` closes a second it refused new
//! SYNs. A [`TimeWaitRecord`] is what Linux's `inet_timewait_sock` is:
//! the tuple, the sequence numbers, the timestamps state and the
//! deadline, in under a tenth of the size, in a [`TimeWaitTable`] with
//! its own bound (`StackConfig::max_time_wait`, Linux's
//! `tcp_max_tw_buckets`).
//!
//! An orphaned FIN-WAIT-2 (our FIN acknowledged, the peer's still to
//! come, for up to `fin_wait2_timeout`) is in the same position and takes
//! a record too, in a FIN-WAIT-2 substate (as Linux's timewait sock): the
//! peer's FIN moves it on to TIME-WAIT, the timeout ends it with a RST.
//!
//! Processing mirrors the connection's own in these states step for step,
//! for a connection its user closed; `tests/time_wait_compact.rs` drives
//! both with the same segments and compares every reply.

use std::time::Duration;

use slab::Slab;

use crate::tcp::conn::{Connection, ControlSegment};
use crate::tcp::flow_table::FourTuple;
use crate::tcp::receive_window::{self, ReceiveRoom};
use crate::tcp::segment_checks::{self, TsRecent};
use crate::tcp::stack::StackStats;
use crate::tcp::state::State;
use crate::tcp::timer_wheel::TimerId;
use crate::tcp::Instant;
use crate::wire::{MacAddr, SeqNum, TcpFlags, TcpRepr, Timestamps};

/// What an arriving segment asks of a TIME-WAIT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeWaitReply {
    /// Drop it.
    Nothing,
    /// Acknowledge, with a D-SACK block for duplicate text (RFC 2883 §4).
    Ack { dsack: Option<(SeqNum, SeqNum)> },
    /// A challenge ACK (RFC 5961), within the stack's rate limit.
    ChallengeAck,
    /// An exact RST: delete the record (RFC 9293 §3.10.7.4, second).
    Close,
    /// New text nobody will read: RST and delete (RFC 9293 §3.10.4).
    Reset,
}

/// One connection in TIME-WAIT (or an orphaned FIN-WAIT-2), without its
/// buffers and sender state.
#[derive(Debug, Clone)]
pub(crate) struct TimeWaitRecord {
    pub(crate) tuple: FourTuple,
    pub(crate) remote_mac: MacAddr,
    /// Distinguishes this record's timer-wheel entries from those of an
    /// earlier record in the same slot.
    pub(crate) generation: u32,
    /// SND.NXT, which is also SND.UNA: our FIN has been acknowledged.
    pub(crate) snd_nxt: SeqNum,
    /// RCV.NXT, past the peer's FIN in TIME-WAIT.
    pub(crate) rcv_nxt: SeqNum,
    /// FIN-WAIT-2: the peer's FIN is still to come.
    pub(crate) fin_wait2: bool,
    /// FIN-WAIT-2: a FIN seen beyond RCV.NXT, waiting for the text before it.
    peer_fin: Option<SeqNum>,
    /// What the receive buffer offered, for the window of our ACKs (and
    /// in FIN-WAIT-2 how far past RCV.NXT a FIN may lie and count).
    room: ReceiveRoom,
    /// Right edge of the window last advertised.
    rcv_adv: SeqNum,
    last_ack_sent: SeqNum,
    /// For RFC 5961 §5.2's check of SEG.ACK.
    max_snd_wnd: u32,
    sack_permitted: bool,
    pub(crate) timestamps: bool,
    ts_offset: u32,
    ts_recent: TsRecent,
    /// 2·MSL, in milliseconds (49 days at most).
    lifetime_ms: u32,
    /// When TIME-WAIT ends: 2·MSL after it began or last restarted; in
    /// FIN-WAIT-2, when the orphan gives up on the peer's FIN.
    pub(crate) deadline: Instant,
    /// Timer-wheel entry (armed at `deadline`, or at an earlier one
    /// the deadline moved on from).
    pub(crate) timer: Option<TimerId>,
}

impl TimeWaitRecord {
    /// The record of `conn`, a connection in TIME-WAIT or an orphan in
    /// FIN-WAIT-2 with nothing but its close deadline pending (see
    /// [`Connection::retirable`]), and whether an ACK is still owed (send
    /// [`ack`](Self::ack) now).
    pub(crate) fn from_connection(
        conn: &Connection,
        generation: u32,
        now: Instant,
    ) -> (TimeWaitRecord, bool) {
        let lifetime = conn.config.msl * 2;
        let record = TimeWaitRecord {
            tuple: conn.tuple,
            remote_mac: conn.remote_mac,
            generation,
            snd_nxt: conn.snd_nxt,
            rcv_nxt: conn.rcv_nxt,
            fin_wait2: conn.state == State::FinWait2,
            peer_fin: conn.peer_fin.filter(|_| !conn.fin_received),
            room: conn.receive_room(),
            rcv_adv: conn.rcv_adv,
            last_ack_sent: conn.last_ack_sent,
            max_snd_wnd: conn.max_snd_wnd.min(u32::MAX as usize) as u32,
            sack_permitted: conn.sack_permitted,
            timestamps: conn.timestamps,
            ts_offset: conn.ts_offset,
            ts_recent: conn.ts_recent,
            lifetime_ms: lifetime.as_millis().min(u32::MAX as u128) as u32,
            deadline: conn.close_deadline.unwrap_or(now + lifetime),
            timer: None,
        };
        (record, conn.ack_pending)
    }

    /// The RFC 9293 state the record stands for.
    pub(crate) fn state(&self) -> State {
        if self.fin_wait2 {
            State::FinWait2
        } else {
            State::TimeWait
        }
    }

    /// TS.Recent, if the connection used timestamps.
    pub(crate) fn ts_recent(&self) -> Option<u32> {
        self.timestamps.then_some(self.ts_recent.value)
    }

    /// When TIME-WAIT began (or last restarted): 2·MSL before the deadline.
    pub(crate) fn entered(&self) -> Instant {
        Instant::from_micros(
            self.deadline
                .total_micros()
                .saturating_sub(u64::from(self.lifetime_ms) * 1000),
        )
    }

    /// 2·MSL from `now`: on entering TIME-WAIT from FIN-WAIT-2, and when a
    /// retransmitted FIN restarts it (RFC 9293 §3.10.7.4, TIME-WAIT).
    fn restart(&mut self, now: Instant) {
        self.deadline = now + Duration::from_millis(u64::from(self.lifetime_ms));
    }

    /// Processes one arriving segment (`payload_len` bytes of text), as
    /// RFC 9293 §3.10.7.4 does for a TIME-WAIT or FIN-WAIT-2 connection
    /// its user has closed. Counts out-of-window segments in `stats`.
    pub(crate) fn on_segment(
        &mut self,
        now: Instant,
        tcp: &TcpRepr,
        payload_len: usize,
        stats: &mut StackStats,
    ) -> TimeWaitReply {
        let flags = tcp.flags;
        let seg_len = payload_len + flags.syn() as usize + flags.fin() as usize;
        if self.timestamps && !flags.rst() {
            // RFC 7323 §5.3 R1 (PAWS); a segment without the option is
            // accepted, as the connection does (see its timestamp_check).
            if let Some(ts) = tcp.options.timestamps {
                if self.ts_recent.older(ts.tsval) && !self.ts_recent.expired(now) {
                    return TimeWaitReply::Ack { dsack: None };
                }
            }
        }

        // First: the sequence number.
        // RFC 9293 §3.10.7.4 allows valid ACKs, URGs and RSTs with a zero
        // window: a segment exactly at RCV.NXT goes on to the next steps.
        let zero_window_at_edge = tcp.seq == self.rcv_nxt && !flags.syn();
        if !self.acceptable(tcp.seq, seg_len) && !zero_window_at_edge {
            stats.out_of_window += 1;
            if flags.fin() && !self.fin_wait2 {
                // A retransmitted FIN: our ACK was lost; restart 2·MSL.
                self.restart(now);
            }
            if flags.rst() {
                return TimeWaitReply::Nothing;
            }
            let end = tcp.seq + payload_len;
            let dsack = (self.sack_permitted && payload_len > 0 && end <= self.rcv_nxt)
                .then_some((tcp.seq, end));
            return TimeWaitReply::Ack { dsack };
        }

        // Second: the RST bit (RFC 5961 §3.2).
        if flags.rst() {
            return if tcp.seq == self.rcv_nxt {
                TimeWaitReply::Close
            } else {
                TimeWaitReply::ChallengeAck
            };
        }
        // Fourth: a SYN in a synchronized state (RFC 5961 §4.2). A SYN that
        // may reopen the tuple (RFC 6191) was taken by the stack before.
        if flags.syn() {
            return TimeWaitReply::ChallengeAck;
        }
        // Fifth: the ACK field.
        if !flags.ack() {
            return TimeWaitReply::Nothing;
        }
        if self.timestamps {
            self.ts_recent.update(
                now,
                tcp.options.timestamps,
                tcp.seq,
                seg_len,
                self.last_ack_sent,
            );
        }
        // RFC 5961 §5.2: SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
        if tcp.ack > self.snd_nxt {
            return TimeWaitReply::Ack { dsack: None };
        }
        if tcp.ack < self.snd_nxt - (self.max_snd_wnd.max(1) as usize) {
            return TimeWaitReply::ChallengeAck;
        }
        // Seventh: text. New text is for a connection nobody reads any
        // more (RFC 9293 §3.10.4; Linux's TCPAbortOnData); old text is
        // acknowledged with a D-SACK.
        let end = tcp.seq + payload_len;
        let mut reply = TimeWaitReply::Nothing;
        if payload_len > 0 {
            if end > self.rcv_nxt {
                return TimeWaitReply::Reset;
            }
            let dsack = self.sack_permitted.then_some((tcp.seq, end));
            reply = TimeWaitReply::Ack { dsack };
        }
        // Eighth: a FIN is acknowledged at once. In FIN-WAIT-2 it counts
        // if it lies within the room of the receive buffer, and at RCV.NXT
        // it moves the connection on to TIME-WAIT for 2·MSL.
        if flags.fin() {
            let wnd_end = self.rcv_nxt + self.room.room as usize;
            if self.fin_wait2 && end >= self.rcv_nxt && end <= wnd_end && self.peer_fin.is_none() {
                self.peer_fin = Some(end);
            }
            if !matches!(reply, TimeWaitReply::Ack { .. }) {
                reply = TimeWaitReply::Ack { dsack: None };
            }
        }
        if self.fin_wait2 && self.peer_fin == Some(self.rcv_nxt) {
            self.rcv_nxt += 1;
            self.fin_wait2 = false;
            self.peer_fin = None;
            self.restart(now);
        }
        reply
    }

    /// The acceptability test of RFC 9293 §3.10.7.4, first step.
    fn acceptable(&self, seq: SeqNum, seg_len: usize) -> bool {
        segment_checks::acceptable(self.rcv_nxt, self.rcv_adv, seq, seg_len)
    }

    /// Our ACK: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`, the window the
    /// connection would advertise, timestamps if negotiated (TSval from
    /// the connection's clock, RFC 7323 §5.4) and a D-SACK block if given.
    /// Records it as sent (the advertised edge, Last.ACK.sent).
    pub(crate) fn ack(&mut self, now: Instant, dsack: Option<(SeqNum, SeqNum)>) -> ControlSegment {
        let (window, advertised) =
            receive_window::window_to_advertise(self.room, self.rcv_adv.since(self.rcv_nxt));
        self.rcv_adv = self.rcv_nxt + advertised;
        self.last_ack_sent = self.rcv_nxt;
        ControlSegment {
            tuple: self.tuple,
            remote_mac: self.remote_mac,
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: TcpFlags::ACK,
            window,
            timestamps: self.timestamps.then(|| Timestamps {
                tsval: (now.total_millis() as u32).wrapping_add(self.ts_offset),
                tsecr: self.ts_recent.value,
            }),
            dsack,
        }
    }

    /// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>`, as the connection's own reset.
    pub(crate) fn reset(&self) -> ControlSegment {
        ControlSegment::reset(self.tuple, self.remote_mac, self.snd_nxt, self.rcv_nxt)
    }
}

/// RFC 6191 §2: whether a SYN (sequence number `seq`) for a tuple in
/// TIME-WAIT is provably of a new incarnation, so the TIME-WAIT may end.
/// `tsval` is the SYN's TSval if the new incarnation would use timestamps;
/// `ts_recent` the old incarnation's TS.Recent if it used them. Timestamps
/// decide where both have them (a newer TSval, or the same with a higher
/// sequence number); a new incarnation with timestamps after an old one
/// without is accepted; otherwise the sequence number must lie above the
/// old RCV.NXT (RFC 9293 §3.10.7.4's note, RFC 1122 §4.2.2.13).
pub(crate) fn syn_reopens_time_wait(
    seq: SeqNum,
    tsval: Option<u32>,
    rcv_nxt: SeqNum,
    ts_recent: Option<u32>,
) -> bool {
    match (ts_recent, tsval) {
        (Some(recent), Some(tsval)) => {
            let ahead = tsval.wrapping_sub(recent) as i32;
            ahead > 0 || (ahead == 0 && seq > rcv_nxt)
        }
        (None, Some(_)) => true,
        (_, None) => seq > rcv_nxt,
    }
}

/// The TIME-WAIT records of one stack, at most `capacity` of them.
pub(crate) struct TimeWaitTable {
    records: Slab<TimeWaitRecord>,
    capacity: usize,
}

impl TimeWaitTable {
    /// An empty table that grows as records arrive, up to `capacity`:
    /// a stack that never closes first never pays for one.
    pub(crate) fn new(capacity: usize) -> TimeWaitTable {
        TimeWaitTable {
            records: Slab::new(),
            capacity,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.records.len() >= self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn insert(&mut self, record: TimeWaitRecord) -> u32 {
        self.records.insert(record) as u32
    }

    pub(crate) fn get(&self, index: u32) -> Option<&TimeWaitRecord> {
        self.records.get(index as usize)
    }

    pub(crate) fn get_mut(&mut self, index: u32) -> Option<&mut TimeWaitRecord> {
        self.records.get_mut(index as usize)
    }

    pub(crate) fn remove(&mut self, index: u32) -> Option<TimeWaitRecord> {
        self.records.try_remove(index as usize)
    }

    /// Records still in FIN-WAIT-2 (the peer has not finished).
    pub(crate) fn fin_wait2_count(&self) -> usize {
        self.records.iter().filter(|(_, r)| r.fin_wait2).count()
    }

    /// Every record's index, for removing them all.
    pub(crate) fn indices(&self) -> Vec<u32> {
        self.records.iter().map(|(i, _)| i as u32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syn_reopens_time_wait_as_rfc_6191_says() {
        let nxt = SeqNum(1000);
        let (below, above) = (SeqNum(10), SeqNum(2000));
        // Both with timestamps: the TSval decides; equal ones defer to the
        // sequence number.
        assert!(syn_reopens_time_wait(below, Some(501), nxt, Some(500)));
        assert!(!syn_reopens_time_wait(above, Some(499), nxt, Some(500)));
        assert!(syn_reopens_time_wait(above, Some(500), nxt, Some(500)));
        assert!(!syn_reopens_time_wait(below, Some(500), nxt, Some(500)));
        // Newer across the wrap of the timestamp clock.
        assert!(syn_reopens_time_wait(
            below,
            Some(3),
            nxt,
            Some(u32::MAX - 3)
        ));
        // The old one without, the new one with: accepted.
        assert!(syn_reopens_time_wait(below, Some(1), nxt, None));
        // The new one without: the sequence number alone.
        assert!(syn_reopens_time_wait(above, None, nxt, Some(500)));
        assert!(!syn_reopens_time_wait(below, None, nxt, Some(500)));
        assert!(!syn_reopens_time_wait(nxt, None, nxt, None));
        assert!(syn_reopens_time_wait(nxt + 1, None, nxt, None));
    }

    #[test]
    fn a_record_is_a_tenth_of_a_connection() {
        let record = std::mem::size_of::<TimeWaitRecord>();
        let conn = std::mem::size_of::<Connection>();
        assert!(record <= 128, "TimeWaitRecord grew to {record} bytes");
        assert!(
            record * 10 <= conn,
            "{record} B against a {conn} B connection"
        );
    }
}
