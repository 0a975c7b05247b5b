//! One connection's transmission control block and its user operations.
//!
//! The connection never does I/O: arrivals come in through
//! [`Connection::on_segment`], timers through [`Connection::on_timer`], and
//! segments go out through [`Connection::poll_output`] into a
//! [`Transmit`](crate::tcp::Transmit). What the stack must do as a result
//! (events, RSTs, freeing the slot) is reported in [`Effects`].

mod input;
mod output;
mod recovery;
mod splice;
pub use output::OutputEnv;
mod timers;

use std::sync::Arc;

use crate::tcp::ack_policy::DelayedAck;
use crate::tcp::config::{KeepaliveConfig, TcpConfig};
use crate::tcp::congestion::{Congestion, CongestionAlgorithm, CongestionControl};
use crate::tcp::error::TcpError;
use crate::tcp::event::{CloseReason, ListenerId};
use crate::tcp::flow_table::FourTuple;
use crate::tcp::rack::{Rack, TailLossProbe};
use crate::tcp::recv_autotune::RecvAutotune;
use crate::tcp::recv_buffer::ReceiveBuffer;
use crate::tcp::rto::RtoEstimator;
use crate::tcp::sack_blocks::SackReporter;
use crate::tcp::sack_scoreboard::SackScoreboard;
use crate::tcp::segment_checks::TsRecent;
use crate::tcp::send_buffer::SendBuffer;
use crate::tcp::state::State;
use crate::tcp::storage_pool::StoragePool;
use crate::tcp::timer_wheel::TimerId;
use crate::tcp::Instant;
use crate::wire::{MacAddr, SegmentTemplate, SeqNum, TcpFlags, TcpOptions, Timestamps};
use recovery::{Prr, Undo};

/// RFC 9293 §3.7.1: the MSS assumed when the peer sends none.
pub const DEFAULT_PEER_MSS: u16 = 536;

/// Bytes the timestamp option takes in every segment (RFC 7323 §3.2, with 2 NOPs).
const TIMESTAMP_OPTION_LEN: usize = 12;

/// A segment the stack must send on the connection's behalf without going
/// through the connection's output (RSTs, mostly): it may outlive the TCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlSegment {
    pub tuple: FourTuple,
    pub remote_mac: MacAddr,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    /// The window field (0 on a RST).
    pub window: u16,
    /// Timestamps option, for a TIME-WAIT record's ACK.
    pub timestamps: Option<Timestamps>,
    /// One D-SACK block (RFC 2883), for a TIME-WAIT record's ACK.
    pub dsack: Option<(SeqNum, SeqNum)>,
}

impl ControlSegment {
    /// `<SEQ=snd_nxt><ACK=rcv_nxt><CTL=RST,ACK>`: a synchronized end's
    /// own reset (RFC 9293 §3.10.4 ABORT, §3.10.7.4 text nobody reads).
    pub fn reset(
        tuple: FourTuple,
        remote_mac: MacAddr,
        snd_nxt: SeqNum,
        rcv_nxt: SeqNum,
    ) -> ControlSegment {
        ControlSegment::bare(
            tuple,
            remote_mac,
            snd_nxt,
            rcv_nxt,
            TcpFlags::RST | TcpFlags::ACK,
        )
    }

    /// A segment with no window and no options: a RST.
    pub fn bare(
        tuple: FourTuple,
        remote_mac: MacAddr,
        seq: SeqNum,
        ack: SeqNum,
        flags: TcpFlags,
    ) -> ControlSegment {
        ControlSegment {
            tuple,
            remote_mac,
            seq,
            ack,
            flags,
            window: 0,
            timestamps: None,
            dsack: None,
        }
    }
}

/// What processing an arrival, a timer or a user call asks the stack to do.
#[derive(Debug, Default, Clone, Copy)]
pub struct Effects {
    /// The connection has segments to send: put it on the ready list.
    pub output: bool,
    pub readable: bool,
    pub writable: bool,
    /// Active open (or simultaneous open) reached ESTABLISHED.
    pub connected: bool,
    /// Passive open reached ESTABLISHED: move to the accept queue.
    pub accepted: bool,
    /// RFC 5961 challenge ACK wanted; the stack applies the rate limit.
    pub challenge_ack: bool,
    /// A RST to send (reply to a segment, or our own abort).
    pub rst: Option<ControlSegment>,
    /// The connection reached CLOSED for this reason.
    pub closed: Option<CloseReason>,
    /// Delete the TCB without telling the user (RFC 9293 §3.10.7.4: a
    /// passive SYN-RECEIVED connection "returns to LISTEN").
    pub drop_silently: bool,
    /// The connection entered TIME-WAIT: it needs its rings no more
    /// ([`Connection::recycle_storage`]).
    pub time_wait: bool,
    /// An orphan's FIN was acknowledged: in FIN-WAIT-2 with nobody
    /// holding it, it may leave for a record (`Connection::retirable`).
    pub orphan_fin_wait2: bool,
}

impl Effects {
    /// Nothing but (possibly) output: no event, control segment or state
    /// change for the stack to act on.
    #[inline]
    pub fn is_output_only(&self) -> bool {
        !(self.readable
            || self.writable
            || self.connected
            || self.accepted
            || self.challenge_ack
            || self.drop_silently
            || self.time_wait
            || self.orphan_fin_wait2)
            && self.rst.is_none()
            && self.closed.is_none()
    }

    /// Nothing but output and the `readable` / `writable` events.
    #[inline]
    pub fn is_events_only(&self) -> bool {
        !(self.connected
            || self.accepted
            || self.challenge_ack
            || self.drop_silently
            || self.time_wait
            || self.orphan_fin_wait2)
            && self.rst.is_none()
            && self.closed.is_none()
    }
}

/// What the stack must know after `Connection::receive_predicted` took a
/// segment, beyond the output and `Readable` flags in its [`Effects`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PredictedReceipt {
    /// The earliest timer deadline the segment set (a delayed ACK armed,
    /// keepalive restarted); no other deadline moved. The connection's
    /// wheel entry needs re-arming only if it is later than this.
    pub(crate) rearm_by: Option<Instant>,
}

/// Counters and gauges of one connection: what `tcp_info` reports on Linux.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ConnStats {
    pub segs_in: u64,
    pub segs_out: u64,
    pub bytes_received: u64,
    pub bytes_acked: u64,
    /// Segments sent again (RTO, fast retransmit, loss recovery or a tail-loss probe).
    pub retransmits: u64,
    pub fast_retransmits: u64,
    pub rto_timeouts: u64,
    pub dup_acks_received: u64,
    /// Arriving segments that failed the acceptability test.
    pub out_of_window: u64,
    /// Arriving out-of-order data segments.
    pub out_of_order: u64,
    pub zero_window_probes: u64,
    /// Times the peer's advertised window dropped to zero.
    pub zero_windows_received: u64,
    pub keepalive_probes: u64,
    /// Pure ACKs sent: segments with no data, SYN or FIN (including
    /// duplicate ACKs, window updates and probes).
    pub acks_sent: u64,
    /// SACK blocks received (D-SACK blocks not included).
    pub sack_blocks_received: u64,
    /// D-SACK blocks received (RFC 2883): a segment reached the peer twice.
    pub dsacks_received: u64,
    /// Retransmissions a D-SACK showed were unnecessary (RFC 3708).
    pub spurious_retransmits: u64,
    /// Congestion responses undone as spurious (D-SACK or timestamps).
    pub congestion_undos: u64,
    /// Fast-recovery episodes entered.
    pub recoveries: u64,
    /// Segments marked lost by RACK or the RFC 6675 rule.
    pub lost_segments: u64,
    /// Tail-loss probes sent (RFC 8985 §7).
    pub tlp_probes: u64,
    /// Tail losses a probe repaired.
    pub tlp_repairs: u64,
    /// Times the peer discarded data it had SACKed (RFC 2018 §8).
    pub sack_reneging: u64,
    /// Arriving segments that carried data (in order, out of order or duplicate).
    pub data_segs_in: u64,
    /// Pure ACKs sent because the delayed-ACK timer expired.
    pub delayed_acks: u64,
    /// ACKs that carried a D-SACK block (RFC 2883).
    pub dsacks_sent: u64,
    /// Segments dropped by PAWS (RFC 7323 §5.3): an old TSval.
    pub paws_rejected: u64,
    /// Segments without the timestamps option on a connection that
    /// negotiated it (RFC 7323 §3.2 says drop; accepted, as Linux does).
    pub missing_timestamps: u64,
    /// Times receive-buffer auto-tuning grew the buffer.
    pub recv_buffer_grown: u64,
    /// Largest receive buffer the connection had (a gauge).
    pub recv_buffer_peak: u64,
}

/// A snapshot for users, like Linux's `struct tcp_info`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpInfo {
    pub state: State,
    pub snd_mss: usize,
    pub rcv_mss: usize,
    pub cwnd: usize,
    pub ssthresh: usize,
    /// The congestion-control algorithm the connection runs.
    pub congestion: CongestionAlgorithm,
    pub srtt: Option<std::time::Duration>,
    pub rttvar: Option<std::time::Duration>,
    pub rto: std::time::Duration,
    pub snd_wnd: usize,
    pub rcv_wnd: usize,
    pub bytes_in_flight: usize,
    pub send_buffered: usize,
    pub recv_buffered: usize,
    pub sack_permitted: bool,
    pub timestamps: bool,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub stats: ConnStats,
    /// Current receive buffer size (grows with auto-tuning).
    pub recv_buffer_capacity: usize,
    /// Receiver-side RTT estimate used by auto-tuning.
    pub rcv_rtt: Option<std::time::Duration>,
}

impl TcpInfo {
    /// Pure ACKs sent per data segment received: about 0.5 for a bulk
    /// receiver with delayed ACKs, 1 when every segment is acknowledged,
    /// lower when ACKs ride on data or batches coalesce them. 0 before
    /// any data arrived.
    pub fn acks_per_data_segment(&self) -> f64 {
        if self.stats.data_segs_in == 0 {
            0.0
        } else {
            self.stats.acks_sent as f64 / self.stats.data_segs_in as f64
        }
    }
}

/// The transmission control block (RFC 9293 §3.3.1).
pub struct Connection {
    pub(crate) generation: u32,
    pub(crate) state: State,
    pub(crate) tuple: FourTuple,
    pub(crate) remote_mac: MacAddr,
    pub(crate) config: Arc<TcpConfig>,
    /// The listener that created this connection (passive open).
    pub(crate) listener: Option<ListenerId>,
    /// The user holds a handle (active open, or accepted).
    pub(crate) user_owned: bool,
    /// Waiting in a listener's accept queue.
    pub(crate) in_accept_queue: bool,
    /// Counted in the listener's SYN backlog (passive, not yet established).
    pub(crate) in_syn_backlog: bool,
    /// On the stack's ready list.
    pub(crate) in_ready: bool,
    /// Timer-wheel entry and the deadline it was armed for.
    pub(crate) timer: Option<(TimerId, Instant)>,

    // Send sequence space (RFC 9293 §3.3.1, Figure 4).
    pub(crate) iss: SeqNum,
    pub(crate) snd_una: SeqNum,
    /// Highest sequence number sent plus one. It never moves back:
    /// retransmissions resend recorded segments (the scoreboard) instead
    /// of rewinding, so SND.NXT is also the highest sequence sent.
    pub(crate) snd_nxt: SeqNum,
    pub(crate) snd_wnd: usize,
    pub(crate) max_snd_wnd: usize,
    pub(crate) snd_wl1: SeqNum,
    pub(crate) snd_wl2: SeqNum,
    pub(crate) snd_wscale: u8,
    pub(crate) send_buf: SendBuffer,
    /// The application shut down its write side: a FIN follows the data.
    pub(crate) fin_queued: bool,
    /// Sequence number of our FIN once it has been sent.
    pub(crate) fin_seq: Option<SeqNum>,

    // Receive sequence space.
    pub(crate) irs: SeqNum,
    pub(crate) rcv_nxt: SeqNum,
    /// Right edge of the window last advertised; never moves left (§3.8.6).
    pub(crate) rcv_adv: SeqNum,
    pub(crate) rcv_wscale: u8,
    pub(crate) recv_buf: ReceiveBuffer,
    /// Sequence number of the peer's FIN, once seen (possibly out of order).
    pub(crate) peer_fin: Option<SeqNum>,
    /// The peer's FIN has been consumed: RCV.NXT is past it.
    pub(crate) fin_received: bool,
    /// The user called `close`: no more reads; new data is answered with RST.
    pub(crate) read_closed: bool,

    // Negotiated options.
    pub(crate) snd_mss: usize,
    pub(crate) local_mss: u16,
    pub(crate) sack_permitted: bool,
    pub(crate) timestamps: bool,
    pub(crate) ts_offset: u32,
    pub(crate) ts_recent: TsRecent,
    pub(crate) last_ack_sent: SeqNum,

    // Retransmission, congestion and probing.
    pub(crate) rto: RtoEstimator,
    pub(crate) rto_deadline: Option<Instant>,
    /// Consecutive timeouts without progress (SYN retries in the handshake).
    pub(crate) retries: u32,
    /// The SYN being timed for an RTT sample: (end sequence, send time).
    /// Data segments are timed through the scoreboard.
    pub(crate) rtt_probe: Option<(SeqNum, Instant)>,
    pub(crate) cc: Congestion,
    pub(crate) dup_acks: u32,
    pub(crate) in_recovery: bool,
    /// RFC 6582 `recover`: the highest sequence number sent (SND.NXT − 1)
    /// when recovery or the last timeout began; initially ISS (§3.2 step 1).
    pub(crate) recover: SeqNum,
    pub(crate) persist_deadline: Option<Instant>,
    pub(crate) persist_backoff: u32,

    // Loss recovery (conn/recovery.rs).
    /// Segments in flight and what the peer SACKed (RFC 6675 §3).
    pub(crate) scoreboard: SackScoreboard,
    pub(crate) rack: Rack,
    pub(crate) tlp: TailLossProbe,
    /// RACK-TLP probe timeout (RFC 8985 §7.2).
    pub(crate) pto_deadline: Option<Instant>,
    /// RACK reordering timer (RFC 8985 §6.3).
    pub(crate) reorder_deadline: Option<Instant>,
    /// A tail-loss probe is due at the next output.
    pub(crate) tlp_pending: bool,
    /// After an RTO until SND.UNA passes `recover`.
    pub(crate) in_loss: bool,
    pub(crate) prr: Prr,
    /// Boxed: only connections that had a congestion response need it.
    pub(crate) undo: Option<Box<Undo>>,
    /// SND.NXT when sending last filled or was stopped by cwnd (not by the
    /// application or the peer's window); the window counts as used until
    /// SND.UNA passes it (as Linux's is_cwnd_limited / cwnd_usage_seq).
    pub(crate) cwnd_limited_until: Option<SeqNum>,
    /// Zero-window probes sent since the peer last acknowledged anything.
    pub(crate) probes_unanswered: u32,
    pub(crate) keepalive: Option<KeepaliveConfig>,
    pub(crate) keepalive_deadline: Option<Instant>,
    pub(crate) keepalive_probes: u32,
    /// TIME-WAIT expiry or the orphan FIN-WAIT-2 timeout.
    pub(crate) close_deadline: Option<Instant>,
    pub(crate) nagle: bool,
    /// When data was last sent, for the restart window after idle.
    pub(crate) last_data_sent: Instant,

    // Things the next poll_output must send.
    pub(crate) syn_pending: bool,
    pub(crate) ack_pending: bool,
    /// Duplicate ACKs owed for out-of-order arrivals, beyond the one
    /// `ack_pending` sends: RFC 5681 §4.2 wants one per such segment, and
    /// a sender without SACK counts them, so the per-flush ACK coalescing
    /// must not merge them. Only without SACK: with it, one ACK per flush
    /// carrying the blocks is enough.
    pub(crate) dup_acks_owed: u16,
    /// The first lost segment goes out even if cwnd is full: the fast
    /// retransmit (RFC 5681 §3.2 step 3), a partial ACK (RFC 6582 §3.2),
    /// or the first retransmission after an RTO.
    pub(crate) retransmit_pending: bool,
    /// A probe (zero-window or keepalive) with this sequence number.
    pub(crate) probe_pending: Option<SeqNum>,
    /// Persist-timer override of sender SWS avoidance (RFC 9293 §3.8.6.2.1).
    pub(crate) force_send: bool,

    // What the user is told.
    pub(crate) pending_error: Option<TcpError>,
    /// Reset or timed out: writes fail with EPIPE, reads return 0.
    pub(crate) failed: bool,
    pub(crate) close_reported: bool,
    pub(crate) want_writable: bool,
    pub(crate) readable_signalled: bool,
    pub(crate) last_rx: Instant,
    pub(crate) stats: ConnStats,

    // Receiver side: ACK policy, SACK reporting, PAWS and auto-tuning.
    pub(crate) delayed_ack: DelayedAck,
    pub(crate) sack_report: SackReporter,
    pub(crate) autotune: RecvAutotune,
    /// Bytes of the receive ring beyond the buffer size, never offered as
    /// window on their own: a scaled window that keeps its right edge
    /// (RFC 9293 §3.8.6) is rounded up to 2^scale bytes, and what we
    /// advertise must fit (RFC 7323 §2.3).
    pub(crate) rcv_slack: usize,
    /// The prebuilt header of our established segments (see
    /// `transmit_from_template`), built at the first one and kept; boxed so
    /// connections that never get that far stay small.
    pub(crate) segment_template: Option<Box<SegmentTemplate>>,
}

/// Parameters of a new connection that come from the stack.
pub struct NewConnection {
    pub generation: u32,
    pub tuple: FourTuple,
    pub remote_mac: MacAddr,
    pub config: Arc<TcpConfig>,
    pub iss: SeqNum,
    pub ts_offset: u32,
}

impl Connection {
    fn new(now: Instant, p: NewConnection, state: State) -> Connection {
        let cfg = p.config.clone();
        let local_mss = cfg.local_mss();
        let rcv_slack = if cfg.window_scaling {
            (1usize << cfg.local_window_scale()) - 1
        } else {
            0
        };
        Connection {
            generation: p.generation,
            state,
            tuple: p.tuple,
            remote_mac: p.remote_mac,
            listener: None,
            user_owned: false,
            in_accept_queue: false,
            in_syn_backlog: false,
            in_ready: false,
            timer: None,
            iss: p.iss,
            snd_una: p.iss,
            snd_nxt: p.iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: p.iss,
            snd_wscale: 0,
            send_buf: SendBuffer::with_capacity(cfg.send_buffer),
            fin_queued: false,
            fin_seq: None,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            rcv_wscale: 0,
            recv_buf: ReceiveBuffer::with_capacity(cfg.recv_buffer + rcv_slack),
            peer_fin: None,
            fin_received: false,
            read_closed: false,
            snd_mss: DEFAULT_PEER_MSS as usize,
            local_mss,
            sack_permitted: false,
            timestamps: false,
            ts_offset: p.ts_offset,
            ts_recent: TsRecent::new(0, now),
            last_ack_sent: SeqNum(0),
            rto: RtoEstimator::new(cfg.rto),
            rto_deadline: None,
            retries: 0,
            rtt_probe: None,
            cc: Congestion::from_config(&cfg, DEFAULT_PEER_MSS as usize),
            dup_acks: 0,
            in_recovery: false,
            recover: p.iss,
            persist_deadline: None,
            persist_backoff: 0,
            scoreboard: SackScoreboard::new(),
            rack: Rack::new(),
            tlp: TailLossProbe::default(),
            pto_deadline: None,
            reorder_deadline: None,
            tlp_pending: false,
            in_loss: false,
            prr: Prr::default(),
            undo: None,
            cwnd_limited_until: None,
            probes_unanswered: 0,
            keepalive: cfg.keepalive,
            keepalive_deadline: None,
            keepalive_probes: 0,
            close_deadline: None,
            nagle: cfg.nagle,
            last_data_sent: now,
            syn_pending: false,
            ack_pending: false,
            dup_acks_owed: 0,
            retransmit_pending: false,
            probe_pending: None,
            force_send: false,
            pending_error: None,
            failed: false,
            close_reported: false,
            want_writable: false,
            readable_signalled: false,
            last_rx: now,
            stats: ConnStats {
                recv_buffer_peak: cfg.recv_buffer as u64,
                ..ConnStats::default()
            },
            delayed_ack: DelayedAck::new(cfg.quick_ack_segments, local_mss as usize),
            sack_report: SackReporter::new(),
            autotune: RecvAutotune::new(now),
            rcv_slack,
            segment_template: None,
            config: cfg,
        }
    }

    /// Active open (RFC 9293 §3.10.1, OPEN call in CLOSED): SYN-SENT with a SYN to send.
    pub fn new_active(now: Instant, p: NewConnection) -> Connection {
        let mut c = Connection::new(now, p, State::SynSent);
        c.user_owned = true;
        c.syn_pending = true;
        c
    }

    /// Passive open: a listener received an acceptable SYN (RFC 9293
    /// §3.10.7.2, third check). The connection enters SYN-RECEIVED with a
    /// SYN-ACK to send.
    pub fn new_passive(
        now: Instant,
        p: NewConnection,
        listener: ListenerId,
        syn_seq: SeqNum,
        syn_window: u16,
        options: &TcpOptions,
    ) -> Connection {
        let mut c = Connection::new(now, p, State::SynReceived);
        c.listener = Some(listener);
        c.in_syn_backlog = true;
        c.irs = syn_seq;
        c.rcv_nxt = syn_seq + 1;
        c.rcv_adv = c.rcv_nxt;
        c.negotiate_options(options);
        if let (true, Some(ts)) = (c.timestamps, options.timestamps) {
            // RFC 7323 §4.3: TS.Recent starts from the SYN's TSval.
            c.ts_recent.set(ts.tsval, now);
        }
        // RFC 7323 §2.2: the window of a SYN is never scaled.
        c.snd_wnd = syn_window as usize;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = syn_seq;
        c.snd_wl2 = c.iss;
        c.syn_pending = true;
        c
    }

    /// Applies the options of the peer's SYN or SYN-ACK. Options are only
    /// used when both sides offered them (RFC 7323 §1.3, RFC 2018 §2); a
    /// SYN-ACK of ours only carries what the peer's SYN offered.
    pub(crate) fn negotiate_options(&mut self, options: &TcpOptions) {
        let cfg = &self.config;
        let peer_mss = options.mss.unwrap_or(DEFAULT_PEER_MSS).max(64);
        self.timestamps = cfg.timestamps && options.timestamps.is_some();
        self.sack_permitted = cfg.sack && options.sack_permitted;
        match (cfg.window_scaling, options.window_scale) {
            (true, Some(shift)) => {
                // RFC 7323 §2.3: a shift above 14 is logged and treated as 14.
                self.snd_wscale = shift.min(14);
                self.rcv_wscale = cfg.local_window_scale();
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        // RFC 9293 §3.7.1: Eff.snd.MSS = min(SendMSS, our MTU) minus option bytes.
        let mss = (peer_mss.min(self.local_mss)) as usize;
        let overhead = if self.timestamps {
            TIMESTAMP_OPTION_LEN
        } else {
            0
        };
        self.snd_mss = mss.saturating_sub(overhead).max(32);
        self.cc.set_mss(self.snd_mss);
    }

    /// RFC 7323 §5.3 R3 (and §4.3 (2)): take SEG.TSval into TS.Recent
    /// when it is not older and the segment covers Last.ACK.sent:
    /// SEG.SEQ ≤ Last.ACK.sent < SEG.SEQ + SEG.LEN (`seg_len` counts SYN
    /// and FIN; an empty segment must start at Last.ACK.sent). With
    /// delayed ACKs this keeps the TSval of the earliest unacknowledged
    /// segment, which is what TSecr must echo (§4.3 (3)); out-of-order
    /// segments never qualify, the one that fills the hole does.
    pub(crate) fn update_ts_recent(
        &mut self,
        now: Instant,
        options: &TcpOptions,
        seq: SeqNum,
        seg_len: usize,
    ) {
        self.update_ts_recent_from(now, options.timestamps, seq, seg_len);
    }

    /// [`update_ts_recent`](Self::update_ts_recent) given the segment's
    /// timestamps option, if any.
    #[inline]
    pub(crate) fn update_ts_recent_from(
        &mut self,
        now: Instant,
        timestamps: Option<crate::wire::Timestamps>,
        seq: SeqNum,
        seg_len: usize,
    ) {
        self.ts_recent
            .update(now, timestamps, seq, seg_len, self.last_ack_sent);
    }

    /// SEG.TSval < TS.Recent in 32-bit timestamp arithmetic (RFC 7323 §5.2).
    pub(crate) fn ts_older_than_recent(&self, tsval: u32) -> bool {
        self.ts_recent.older(tsval)
    }

    /// RFC 7323 §5.5: TS.Recent idle for more than 24 days orders nothing.
    pub(crate) fn ts_recent_expired(&self, now: Instant) -> bool {
        self.ts_recent.expired(now)
    }

    /// The receive buffer size (without the scaling slack).
    pub(crate) fn rcv_capacity(&self) -> usize {
        self.recv_buf.capacity() - self.rcv_slack
    }

    /// Free receive space we may offer: the window before scaling and SWS
    /// avoidance.
    pub(crate) fn rcv_space(&self) -> usize {
        self.recv_buf.window().saturating_sub(self.rcv_slack)
    }

    /// Our TSval clock: 1 ms ticks plus the per-connection offset (RFC 7323 §5.4).
    pub(crate) fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }

    /// Bytes sent and not yet acknowledged (the NewReno "FlightSize").
    pub(crate) fn flight_size(&self) -> usize {
        self.snd_nxt.since(self.snd_una)
    }

    pub fn info(&self) -> TcpInfo {
        TcpInfo {
            state: self.state,
            snd_mss: self.snd_mss,
            rcv_mss: self.local_mss as usize,
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            congestion: self.cc.algorithm(),
            srtt: self.rto.srtt(),
            rttvar: self.rto.rttvar(),
            rto: self.rto.rto(),
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_adv.since(self.rcv_nxt),
            bytes_in_flight: self.snd_nxt.since(self.snd_una),
            send_buffered: self.send_buf.len(),
            recv_buffered: self.recv_buf.len(),
            sack_permitted: self.sack_permitted,
            timestamps: self.timestamps,
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            stats: self.stats,
            recv_buffer_capacity: self.rcv_capacity(),
            rcv_rtt: self.autotune.rtt(),
        }
    }

    // ---- user operations (the socket calls) ----

    /// Queues data for sending (RFC 9293 §3.10.2 SEND). Returns how much
    /// was taken; `WouldBlock` when nothing fit.
    pub fn send(&mut self, data: &[u8], fx: &mut Effects) -> Result<usize, TcpError> {
        self.check_can_send()?;
        if data.is_empty() {
            return Ok(0);
        }
        let n = self.send_buf.write(data);
        if n < data.len() {
            self.want_writable = true;
        }
        if n == 0 {
            return Err(TcpError::WouldBlock);
        }
        if self.state.is_synchronized() {
            fx.output = true;
        }
        Ok(n)
    }

    /// Reads in-order data (RFC 9293 §3.10.3 RECEIVE). `Ok(0)` is end of
    /// stream (the peer's FIN, or a connection that already failed and
    /// reported its error).
    pub fn recv(&mut self, out: &mut [u8], fx: &mut Effects) -> Result<usize, TcpError> {
        self.recv_with(fx, |a, b| {
            let n = a.len().min(out.len());
            out[..n].copy_from_slice(&a[..n]);
            let m = b.len().min(out.len() - n);
            out[n..n + m].copy_from_slice(&b[..m]);
            n + m
        })
    }

    /// Zero-copy read: `f` sees the readable bytes as up to two slices and
    /// returns how many it consumed.
    pub fn recv_with(
        &mut self,
        fx: &mut Effects,
        f: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<usize, TcpError> {
        self.readable_signalled = false;
        if self.read_closed {
            return Err(TcpError::NotConnected);
        }
        if !self.recv_buf.is_empty() {
            let (a, b) = self.recv_buf.peek();
            let n = f(a, b).min(a.len() + b.len());
            self.consume_received(n, fx);
            return Ok(n);
        }
        self.nothing_readable()
    }

    /// The send side's refusals, shared by every call that queues bytes:
    /// a pending error first, then `BrokenPipe` (Linux's EPIPE) after
    /// shutdown(SHUT_WR), after a reset, or once closed.
    fn check_can_send(&mut self) -> Result<(), TcpError> {
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        if self.failed || !self.state.can_send() || self.fin_queued {
            return Err(TcpError::BrokenPipe);
        }
        Ok(())
    }

    /// What a read says when the receive buffer is empty: a pending error,
    /// end of stream (`Ok(0)`: the peer's FIN, or a connection that failed
    /// and already reported its error), or `WouldBlock`.
    fn nothing_readable(&mut self) -> Result<usize, TcpError> {
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        if self.fin_received || self.failed || self.state == State::Closed {
            return Ok(0);
        }
        Err(TcpError::WouldBlock)
    }

    /// The application took `n` received bytes: free them, count them for
    /// auto-tuning, and announce the window if it opened enough.
    fn consume_received(&mut self, n: usize, fx: &mut Effects) {
        self.recv_buf.consume(n);
        self.autotune.on_consumed(n);
        self.maybe_window_update(fx);
    }

    /// RFC 1122 §4.2.3.3 / RFC 9293 §3.8.6.2.2: after the application
    /// reads, announce the larger window once it has grown by at least
    /// min(buffer/2, MSS) and the peer may be starved for window; a window
    /// reopening from zero always qualifies.
    fn maybe_window_update(&mut self, fx: &mut Effects) {
        if !self.state.is_synchronized() || self.fin_received {
            return;
        }
        let current = self.rcv_adv.since(self.rcv_nxt);
        let free = self.rcv_space();
        let threshold = (self.rcv_capacity() / 2).min(self.local_mss as usize);
        // A pure window update only when the peer may be starved: the
        // window it knows is at most half the buffer and the new one at
        // least doubles it (Linux's tcp_cleanup_rbuf rule). Otherwise the
        // larger window rides on the next ACK, and a bulk receiver that
        // reads as data arrives keeps to one ACK per two segments.
        let starved = current <= self.rcv_capacity() / 2 && free >= 2 * current;
        if free >= current + threshold && starved {
            self.ack_pending = true;
            fx.output = true;
        }
    }

    fn take_error(&mut self) -> Option<TcpError> {
        self.pending_error.take()
    }

    /// Shuts down the write side (RFC 9293 §3.10.4 CLOSE as half-close):
    /// a FIN follows the queued data; reads continue until the peer's FIN.
    pub fn shutdown_write(&mut self, fx: &mut Effects) -> Result<(), TcpError> {
        if self.failed {
            return Err(TcpError::NotConnected);
        }
        if self.fin_queued {
            return Ok(());
        }
        match self.state {
            State::SynSent | State::SynReceived => {
                // RFC 9293 §3.10.4: queued until ESTABLISHED. Our SYN is
                // unacknowledged: data and the FIN follow the handshake.
                self.fin_queued = true;
            }
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            State::Closed => return Err(TcpError::NotConnected),
            _ => return Ok(()),
        }
        fx.output = true;
        Ok(())
    }

    /// The user's close. Unread data (now or arriving later) makes it an
    /// abort with RST (RFC 2525 §2.17, RFC 9293 §3.10.4 note; Linux does
    /// the same). Otherwise a graceful close that continues as an orphan.
    /// Returns true when the TCB can be freed right away.
    pub fn close(&mut self, now: Instant, fx: &mut Effects) -> bool {
        self.user_owned = false;
        self.read_closed = true;
        match self.state {
            State::Closed => return true,
            State::SynSent => {
                // RFC 9293 §3.10.4: SYN-SENT close deletes the TCB.
                self.state = State::Closed;
                return true;
            }
            _ => {}
        }
        if !self.recv_buf.is_empty() || (self.peer_fin.is_some() && !self.fin_received) {
            self.abort(fx);
            return true;
        }
        let _ = self.shutdown_write(fx);
        if self.state == State::FinWait2 {
            self.close_deadline = Some(now + self.config.fin_wait2_timeout);
        }
        self.state == State::Closed
    }

    /// ABORT (RFC 9293 §3.10.5): RST in the synchronized states (and
    /// SYN-RECEIVED), buffers discarded, CLOSED.
    pub fn abort(&mut self, fx: &mut Effects) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            fx.rst = Some(self.own_rst());
        }
        self.send_buf.clear();
        self.recv_buf.clear();
        self.scoreboard.clear();
        self.enter_closed(CloseReason::Aborted, fx);
    }

    /// A RST from us carrying our current sequence numbers.
    pub(crate) fn own_rst(&self) -> ControlSegment {
        ControlSegment::reset(self.tuple, self.remote_mac, self.snd_nxt, self.rcv_nxt)
    }

    /// Moves to CLOSED, stops every timer and reports why.
    pub(crate) fn enter_closed(&mut self, reason: CloseReason, fx: &mut Effects) {
        self.state = State::Closed;
        self.rto_deadline = None;
        self.pto_deadline = None;
        self.reorder_deadline = None;
        self.tlp_pending = false;
        self.persist_deadline = None;
        self.keepalive_deadline = None;
        self.close_deadline = None;
        self.syn_pending = false;
        self.ack_pending = false;
        self.delayed_ack.cancel();
        self.retransmit_pending = false;
        self.probe_pending = None;
        match reason {
            CloseReason::Reset => {
                self.pending_error = Some(TcpError::ConnectionReset);
                self.failed = true;
            }
            CloseReason::Refused => {
                self.pending_error = Some(TcpError::ConnectionRefused);
                self.failed = true;
            }
            CloseReason::TimedOut => {
                self.pending_error = Some(TcpError::TimedOut);
                self.failed = true;
            }
            CloseReason::Aborted => self.failed = true,
            CloseReason::Normal => {}
        }
        if matches!(
            reason,
            CloseReason::Reset | CloseReason::Refused | CloseReason::TimedOut
        ) {
            // Buffers go with the connection; the error is what remains.
            self.scoreboard.clear();
            self.send_buf.clear();
            self.recv_buf.clear();
            fx.readable = true;
            fx.writable = true;
        }
        fx.closed = Some(reason);
    }

    /// Enters TIME-WAIT for 2·MSL (RFC 9293 §3.10.7.4, eighth).
    pub(crate) fn enter_time_wait(&mut self, now: Instant, fx: &mut Effects) {
        self.state = State::TimeWait;
        self.rto_deadline = None;
        self.pto_deadline = None;
        self.reorder_deadline = None;
        self.tlp_pending = false;
        self.persist_deadline = None;
        self.keepalive_deadline = None;
        self.retransmit_pending = false;
        self.close_deadline = Some(now + self.config.msl * 2);
        // TIME-WAIT sends no data and accepts none (only ACKs a
        // retransmitted FIN): the rings go back now rather than after the
        // 2·MSL it lasts. A client closing first at 100k conn/s holds
        // 100k+ of these, and kept rings grew its heap page by page. The
        // stack takes them, and the scoreboard's records, for its storage
        // pool (`Effects::time_wait`).
        fx.time_wait = true;
        if !self.close_reported {
            // From the user's side the connection is finished.
            fx.closed = Some(CloseReason::Normal);
        }
    }

    /// Hands the rings and the scoreboard's storage to `pool` where they
    /// hold nothing (a connection in TIME-WAIT or being freed); whatever
    /// still holds bytes or records stays.
    pub(crate) fn recycle_storage(&mut self, pool: &mut StoragePool) {
        if let Some(ring) = self.send_buf.take_ring() {
            pool.put_ring(ring);
        }
        if let Some(ring) = self.recv_buf.take_ring() {
            pool.put_ring(ring);
        }
        if let Some(storage) = self.scoreboard.take_storage() {
            pool.put_scoreboard(storage);
        }
    }

    /// Gives the receive buffer a pooled ring if it has none yet: called
    /// before text arrives, so the first arrival does not allocate.
    #[inline]
    pub(crate) fn adopt_recv_storage(&mut self, pool: &mut StoragePool) {
        if self.recv_buf.allocated() == 0 {
            pool.lend_ring(|ring| self.recv_buf.adopt_ring(ring));
        }
    }

    /// Gives the send buffer a pooled ring and the scoreboard pooled
    /// records if they have none yet: called before the application
    /// writes, so the first write and the first send do not allocate.
    #[inline]
    pub(crate) fn adopt_send_storage(&mut self, pool: &mut StoragePool) {
        if self.send_buf.allocated() == 0 {
            pool.lend_ring(|ring| self.send_buf.adopt_ring(ring));
            pool.lend_scoreboard(|storage| self.scoreboard.adopt_storage(storage));
        }
    }

    pub fn set_nodelay(&mut self, nodelay: bool, fx: &mut Effects) {
        self.nagle = !nodelay;
        if nodelay {
            fx.output = true;
        }
    }

    pub fn set_keepalive(&mut self, now: Instant, keepalive: Option<KeepaliveConfig>) {
        self.keepalive = keepalive;
        self.keepalive_probes = 0;
        self.keepalive_deadline = None;
        self.restart_keepalive(now);
    }

    /// Arms keepalive from the last arrival (RFC 1122 §4.2.3.6).
    pub(crate) fn restart_keepalive(&mut self, now: Instant) {
        if let Some(k) = self.keepalive {
            if matches!(self.state, State::Established | State::CloseWait) {
                self.keepalive_deadline = Some(now + k.idle);
            }
        }
    }
}
#[cfg(test)]
mod size_tests {
    /// Every connection slot of a stack is this big, idle or not (the
    /// slab preallocates `max_connections` of them): 100 000 idle
    /// connections must fit in 2 KiB each with the flow-table and
    /// timer-wheel entries (tests/idle_memory.rs measures the whole).
    /// Rarely used state (the undo snapshot, the out-of-order tracker,
    /// the buffers) lives behind pointers, allocated when first needed.
    #[test]
    fn connection_struct_leaves_room_in_a_2_kib_budget() {
        let size = std::mem::size_of::<super::Connection>();
        assert!(size <= 1600, "Connection is {size} bytes");
    }
}
