//! The per-core engine: many connections, listeners, a flow table, a
//! timer wheel, a ready list of connections with output, and an event queue.
//!
//! Nothing here scans all connections: arrivals are looked up in the flow
//! table, timers fire from the wheel, and only connections on the ready
//! list are polled for output.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use crate::tcp::config::{KeepaliveConfig, StackConfig, TcpConfig};
use crate::tcp::conn::{Connection, ControlSegment, Effects, NewConnection, OutputEnv, TcpInfo};
use crate::tcp::error::TcpError;
use crate::tcp::event::{ConnId, Event, ListenerId};
use crate::tcp::exhausted_ports::{ExhaustedPorts, ScanScope};
use crate::tcp::flow_table::{Flow, FlowTable, FourTuple};
use crate::tcp::isn::IsnGenerator;
use crate::tcp::state::State;
use crate::tcp::storage_pool::StoragePool;
use crate::tcp::time_wait::{syn_reopens_time_wait, TimeWaitRecord, TimeWaitReply, TimeWaitTable};
use crate::tcp::timer_wheel::TimerWheel;
use crate::tcp::{Instant, Transmit};
use crate::wire::{
    emit_tcp_frame, tcp_frame_len, MacAddr, SackBlocks, SeqNum, TcpFlags, TcpOptions, TcpRepr,
    TcpSegment, WireError,
};

/// Stack-wide counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StackStats {
    pub rx_frames: u64,
    /// Frames that failed to parse (truncated, malformed options, ...).
    pub rx_malformed: u64,
    pub rx_bad_checksum: u64,
    /// Not IPv4/TCP (ARP, IPv6, UDP, ...): not ours to handle.
    pub rx_not_tcp: u64,
    pub rx_fragments: u64,
    /// Unicast frames for another MAC address.
    pub rx_wrong_mac: u64,
    /// Segments for no connection and no listener (answered with RST).
    pub rx_no_connection: u64,
    pub tx_frames: u64,
    pub tx_rst: u64,
    /// SYNs dropped because a backlog or the connection table was full.
    pub listen_drops: u64,
    pub challenge_acks: u64,
    pub challenge_acks_suppressed: u64,
    /// Control replies dropped because the control queue was full.
    pub control_drops: u64,
    pub active_opens: u64,
    pub passive_opens: u64,
    pub connections_closed: u64,
    /// TIME-WAIT connections replaced by a new SYN (RFC 6191).
    pub time_wait_recycled: u64,
    /// TIME-WAIT tuples taken over by our own active open (tcp_tw_reuse).
    pub time_wait_reused: u64,
    /// Connections that closed without TIME-WAIT because `max_time_wait`
    /// records were held (Linux's TCPTimeWaitOverflow).
    pub time_wait_overflow: u64,
    /// Active opens that walked every candidate local tuple and found all
    /// held (the client's port space towards a destination exhausted).
    /// Retries fail without a walk until one can succeed and are not
    /// counted here.
    pub exhausted_port_scans: u64,
    /// Arriving segments that carried data, over all connections.
    pub rx_data_segments: u64,
    /// Data segments taken by header prediction, the fused fast path of
    /// [`Stack::receive`] (Linux's TCPHPHits); the rest of
    /// `rx_data_segments` took the full RFC 9293 §3.10.7.4 processing.
    pub rx_predicted: u64,
    /// Pure ACKs sent, over all connections. With delayed and batched
    /// ACKs, `tx_pure_acks / rx_data_segments` is about 0.5 or less for
    /// bulk receivers.
    pub tx_pure_acks: u64,
    /// Segments sent again, summed over connections (see
    /// [`ConnStats::retransmits`](crate::tcp::ConnStats::retransmits)). In
    /// [`Stack::stats`] only closed connections count; [`Stack::totals`]
    /// adds the live ones.
    pub retransmits: u64,
    /// Fast retransmits (RFC 5681 §3.2), summed like `retransmits`.
    pub fast_retransmits: u64,
    /// Retransmission timeouts (RFC 6298), summed like `retransmits`.
    pub rto_timeouts: u64,
    /// Retransmissions a D-SACK showed were unnecessary, summed like `retransmits`.
    pub spurious_retransmits: u64,
    /// Tail-loss probes (RFC 8985 §7), summed like `retransmits`.
    pub tlp_probes: u64,
    /// Arriving segments outside the receive window, summed like `retransmits`.
    pub out_of_window: u64,
    /// D-SACK blocks sent (duplicates received), summed like `retransmits`.
    pub dsacks_sent: u64,
}

impl StackStats {
    /// Adds one connection's counters to the per-connection sums.
    fn add_connection(&mut self, c: &crate::tcp::ConnStats) {
        self.retransmits += c.retransmits;
        self.fast_retransmits += c.fast_retransmits;
        self.rto_timeouts += c.rto_timeouts;
        self.spurious_retransmits += c.spurious_retransmits;
        self.tlp_probes += c.tlp_probes;
        self.out_of_window += c.out_of_window;
        self.dsacks_sent += c.dsacks_sent;
    }
}

struct Listener {
    generation: u32,
    addr: SocketAddrV4,
    backlog: usize,
    syn_backlog: usize,
    accept_queue: VecDeque<u32>,
    config: Arc<TcpConfig>,
}

/// One worker's TCP engine. See the module docs for the contract.
pub struct Stack {
    config: StackConfig,
    tcp_config: Arc<TcpConfig>,
    conns: Slab<Connection>,
    /// TIME-WAIT (and orphaned FIN-WAIT-2) connections nobody holds, as
    /// compact records.
    time_wait: TimeWaitTable,
    /// Move such connections to `time_wait` (see
    /// [`Stack::set_compact_time_wait`]).
    compact_time_wait: bool,
    flows: FlowTable,
    listeners: Slab<Listener>,
    /// Listeners by local address. Looked up for every SYN, but only we
    /// insert keys (a handful of listeners), so a peer cannot make it
    /// collide: ahash, not SipHash (the flow table, which peers fill, is
    /// keyed from `entropy`).
    listen_addrs: HashMap<SocketAddrV4, u32, ahash::RandomState>,
    timers: TimerWheel,
    ready: VecDeque<u32>,
    control: VecDeque<ControlSegment>,
    events: VecDeque<Event>,
    isn: IsnGenerator,
    stats: StackStats,
    next_generation: u32,
    fired: Vec<u64>,
    challenge_window: (Instant, u32),
    next_ephemeral: u16,
    now: Instant,
    /// Header prediction on (see [`Stack::set_header_prediction`]).
    header_prediction: bool,
    /// The flow the last arrival matched, and its slot: a bulk receiver's
    /// segments come in runs for one connection, and comparing the tuple
    /// is cheaper than hashing it. Cleared whenever a flow is removed, so
    /// it never names a slot the table no longer maps the tuple to.
    last_flow: Option<(FourTuple, Flow)>,
    /// Storage of ended connections, for the next ones (see `storage_pool`).
    storage: StoragePool,
    /// Connect scans that found every candidate tuple held, so retries
    /// fail at once until one can succeed.
    exhausted: ExhaustedPorts,
}

/// How long a TIME-WAIT tuple must rest before our own active open may
/// reuse it (Linux tcp_tw_reuse_delay: 1 s).
pub const TIME_WAIT_REUSE_AFTER: Duration = Duration::from_secs(1);

/// Marks a timer key's slot as a TIME-WAIT record's index (slab indices
/// stay far below: tables hold at most 2^20 connections).
const TIME_WAIT_TIMER: u32 = 1 << 31;

fn timer_key(slot: u32, generation: u32) -> u64 {
    ((generation as u64) << 32) | slot as u64
}

impl Stack {
    /// Creates a stack. `entropy` seeds the ISN key and the flow-table hash
    /// (RFC 6528 wants a secret the peer cannot guess: pass real randomness).
    pub fn new(config: StackConfig, entropy: [u8; 32], now: Instant) -> Result<Stack, String> {
        config.tcp.validate()?;
        if config.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if config.ephemeral_ports.0 == 0 || config.ephemeral_ports.0 > config.ephemeral_ports.1 {
            return Err("ephemeral_ports must be a non-empty range of non-zero ports".into());
        }
        // Bytes 0..16 key the ISN hash; 16..32 seed the flow-table hasher.
        let mut isn_key = [0u8; 16];
        isn_key.copy_from_slice(&entropy[..16]);
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&entropy[16 + 8 * i..24 + 8 * i]);
            u64::from_le_bytes(b)
        };
        let (w0, w1) = (word(0), word(1));
        let seeds = [w0, w1, w0.rotate_left(32) ^ w1, w1.rotate_left(17) ^ !w0];
        let capacity = config.max_connections.min(1 << 20);
        let span = (config.ephemeral_ports.1 - config.ephemeral_ports.0) as u64 + 1;
        let first_port = config.ephemeral_ports.0 + (seeds[0] % span) as u16;
        Ok(Stack {
            tcp_config: Arc::new(config.tcp.clone()),
            conns: Slab::with_capacity(capacity),
            time_wait: TimeWaitTable::new(config.max_time_wait),
            compact_time_wait: true,
            flows: FlowTable::with_capacity(capacity, seeds),
            listeners: Slab::new(),
            listen_addrs: HashMap::with_hasher(ahash::RandomState::new()),
            timers: TimerWheel::new(now, Duration::from_millis(1), capacity),
            ready: VecDeque::with_capacity(capacity.min(65536)),
            control: VecDeque::with_capacity(config.control_queue),
            events: VecDeque::with_capacity(1024),
            isn: IsnGenerator::new(isn_key),
            stats: StackStats::default(),
            next_generation: 1,
            fired: Vec::with_capacity(1024),
            challenge_window: (now, 0),
            next_ephemeral: first_port,
            now,
            header_prediction: true,
            last_flow: None,
            storage: StoragePool::new(config.storage_pool),
            exhausted: ExhaustedPorts::default(),
            config,
        })
    }

    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    pub fn stats(&self) -> &StackStats {
        &self.stats
    }

    /// [`Self::stats`] with the per-connection counters of the live
    /// connections added, so retransmissions of connections that are
    /// still open (or in TIME-WAIT) count too.
    pub fn totals(&self) -> StackStats {
        let mut t = self.stats;
        for (_, conn) in &self.conns {
            t.add_connection(&conn.stats);
        }
        t
    }

    /// Live connections, including TIME-WAIT and embryonic ones.
    pub fn connection_count(&self) -> usize {
        self.conns.len() + self.time_wait.len()
    }

    /// Connections held as compact records (see
    /// [`StackConfig::max_time_wait`]): TIME-WAIT ones, and orphans in
    /// FIN-WAIT-2 waiting for the peer's FIN; those the user still holds
    /// are not among them.
    pub fn time_wait_records(&self) -> usize {
        self.time_wait.len()
    }

    /// Moves TIME-WAIT (and orphaned FIN-WAIT-2) connections nobody holds
    /// to compact records (on by default). Off, they stay whole
    /// connections until they end and count against `max_connections`: the behaviour is the same (the
    /// records mirror the connection's processing), for tests that
    /// compare the two.
    pub fn set_compact_time_wait(&mut self, on: bool) {
        self.compact_time_wait = on;
    }

    fn generation(&mut self) -> u32 {
        let g = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        g
    }

    // ---------------------------------------------------------------
    // Arrivals
    // ---------------------------------------------------------------

    /// Parses one Ethernet frame and processes the TCP segment in it.
    /// Anything malformed is dropped and counted; nothing here panics.
    pub fn receive(&mut self, now: Instant, frame: &[u8]) {
        self.receive_inner(now, frame, false);
    }

    /// As [`receive`](Self::receive), except that a segment matching none
    /// of this stack's connections — and not a SYN for one of its
    /// listeners — is left untouched and `false` returned. A multi-core
    /// runtime then hands the frame to the worker that owns the flow
    /// instead of answering it with a RST. Malformed frames are consumed
    /// (dropped and counted) and return `true`.
    pub fn receive_owned(&mut self, now: Instant, frame: &[u8]) -> bool {
        self.receive_inner(now, frame, true)
    }

    fn receive_inner(&mut self, now: Instant, frame: &[u8], defer_unowned: bool) -> bool {
        self.now = now;
        self.stats.rx_frames += 1;
        let segment = match TcpSegment::parse(frame, self.config.verify_checksums) {
            Ok(s) => s,
            Err(e) => {
                match e {
                    WireError::BadChecksum => self.stats.rx_bad_checksum += 1,
                    WireError::Unsupported => self.stats.rx_not_tcp += 1,
                    WireError::Fragmented => self.stats.rx_fragments += 1,
                    WireError::Truncated | WireError::Malformed => self.stats.rx_malformed += 1,
                }
                return true;
            }
        };
        let dst = segment.dst_mac();
        if dst != self.config.mac && !dst.is_broadcast() {
            self.stats.rx_wrong_mac += 1;
            return true;
        }
        let dst_addr = segment.dst_addr();
        if dst.is_broadcast() || dst_addr.is_broadcast() || dst_addr.is_multicast() {
            // RFC 9293 §3.10.7.1: never answer a broadcast/multicast segment.
            self.stats.rx_malformed += 1;
            return true;
        }
        let tuple = FourTuple {
            local: SocketAddrV4::new(dst_addr, segment.dst_port()),
            remote: SocketAddrV4::new(segment.src_addr(), segment.src_port()),
        };
        let flow = self.lookup_arrival_flow(&tuple);
        if let Some(Flow::Conn(slot)) = flow {
            if self.header_prediction && self.receive_predicted(now, slot, &segment) {
                return true;
            }
        }
        let tcp = segment.repr();
        let payload = segment.payload();
        let remote_mac = segment.src_mac();
        if let Some(flow) = flow {
            if let Some(old_snd_nxt) = self.try_recycle_time_wait(flow, &tcp) {
                // As Linux's tcp_timewait_state_process: the new ISS lies
                // above the old incarnation's sequence space (plus a
                // maximum unscaled window), as for our own reuse below.
                let iss = old_snd_nxt + 65535 + 2;
                self.on_listen_segment(now, tuple, remote_mac, &tcp, payload.len(), Some(iss));
                return true;
            }
        }
        if let Some(Flow::TimeWait(index)) = flow {
            self.on_time_wait_segment(now, index, &tcp, payload.len());
            return true;
        }
        if let Some(Flow::Conn(slot)) = flow {
            let mut fx = Effects::default();
            // A segment never changes the reply MAC: the Ethernet source is
            // not authenticated by anything TCP checks, and on asymmetric
            // paths it is the wrong router. Only the neighbour monitor moves
            // it (`Stack::update_next_hop`).
            let conn = &mut self.conns[slot as usize];
            if !payload.is_empty() {
                // A short connection's first text comes this way: a
                // request with the handshake's ACK (SYN-RECEIVED), a
                // response while the request is unacknowledged. (First
                // text that is predicted allocates as before: the check
                // stays off the predicted path.)
                conn.adopt_recv_storage(&mut self.storage);
            }
            let data_before = conn.stats.data_segs_in;
            conn.on_segment(now, &tcp, payload, &mut fx);
            self.stats.rx_data_segments += conn.stats.data_segs_in - data_before;
            self.apply(slot, fx);
            return true;
        }
        let for_listener =
            tcp.flags.syn() && !tcp.flags.ack() && self.find_listener(tuple.local).is_some();
        if defer_unowned && !for_listener {
            return false;
        }
        self.on_listen_segment(now, tuple, remote_mac, &tcp, payload.len(), None);
        true
    }

    /// The connection slot of an arrival's tuple, through the one-entry
    /// cache of the last match.
    #[inline]
    fn lookup_arrival_flow(&mut self, tuple: &FourTuple) -> Option<Flow> {
        if let Some((cached, flow)) = self.last_flow {
            if cached == *tuple {
                debug_assert_eq!(self.flows.get(tuple), Some(flow), "stale flow cache");
                return Some(flow);
            }
        }
        let flow = self.flows.get(tuple);
        if let Some(flow) = flow {
            self.last_flow = Some((*tuple, flow));
        }
        flow
    }

    /// The fused fast path of an arrival (as Linux's `tcp_rcv_established`
    /// with header prediction): the segment is the predicted in-order data
    /// of an established connection ([`Connection::receive_predicted`]),
    /// its text went straight into the receive ring and the ACK decision
    /// was made; what is left here is the stack's share of
    /// [`apply`](Self::apply) for the only effects such a segment can have
    /// (an ACK due, a `Readable` event, a timer deadline). Returns false,
    /// with nothing changed, for any other segment.
    #[inline]
    fn receive_predicted(&mut self, now: Instant, slot: u32, segment: &TcpSegment<'_>) -> bool {
        let mut fx = Effects::default();
        let conn = &mut self.conns[slot as usize];
        let Some(receipt) = conn.receive_predicted(now, segment, &mut fx) else {
            return false;
        };
        debug_assert!(fx.is_events_only() && !fx.writable);
        self.stats.rx_data_segments += 1;
        self.stats.rx_predicted += 1;
        if fx.readable && (conn.user_owned || conn.in_accept_queue) {
            self.events.push_back(Event::Readable(ConnId {
                slot,
                generation: conn.generation,
            }));
        }
        // Every other deadline is where it was, and the wheel entry is at or
        // before the earliest of them (what `rearm` keeps): only a deadline
        // this segment set before the entry can need a new one.
        let stale = match (receipt.rearm_by, conn.timer) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(by), Some((_, armed))) => by < armed,
        };
        if fx.output {
            self.mark_ready(slot);
        }
        if stale {
            self.rearm(slot);
        }
        #[cfg(debug_assertions)]
        {
            let conn = &self.conns[slot as usize];
            if let Some(deadline) = conn.next_deadline() {
                debug_assert!(
                    conn.timer.is_some_and(|(_, armed)| armed <= deadline),
                    "predicted path left the timer after the connection's deadline"
                );
            }
        }
        true
    }

    /// Turns header prediction (the fused path of [`receive`](Self::receive))
    /// on or off; on by default. Off, every segment takes the full RFC 9293
    /// §3.10.7.4 processing, with the same result: for tests that compare
    /// the two and for measuring what the fast path saves.
    pub fn set_header_prediction(&mut self, on: bool) {
        self.header_prediction = on;
    }

    /// RFC 9293 §3.10.7.4 note / RFC 6191 §2: a SYN that is provably of
    /// a new incarnation (see [`syn_reopens_time_wait`]) reopens a
    /// TIME-WAIT connection when a listener exists. Returns the old
    /// incarnation's SND.NXT if it did; the TIME-WAIT is then gone.
    fn try_recycle_time_wait(&mut self, flow: Flow, tcp: &TcpRepr) -> Option<SeqNum> {
        if !tcp.flags.syn() || tcp.flags.ack() || tcp.flags.rst() {
            return None;
        }
        let (rcv_nxt, snd_nxt, local, ts_recent) = match flow {
            Flow::Conn(slot) => {
                let conn = &self.conns[slot as usize];
                if conn.state != State::TimeWait {
                    return None;
                }
                let recent = conn.timestamps.then_some(conn.ts_recent.value);
                (conn.rcv_nxt, conn.snd_nxt, conn.tuple.local, recent)
            }
            Flow::TimeWait(index) => {
                let record = self.time_wait.get(index)?;
                if record.fin_wait2 {
                    return None;
                }
                (
                    record.rcv_nxt,
                    record.snd_nxt,
                    record.tuple.local,
                    record.ts_recent(),
                )
            }
        };
        let listener = self.find_listener(local)?;
        // The new incarnation uses timestamps if the SYN offers them and
        // the listener's configuration accepts them.
        let tsval = tcp
            .options
            .timestamps
            .filter(|_| self.listeners[listener as usize].config.timestamps)
            .map(|ts| ts.tsval);
        if !syn_reopens_time_wait(tcp.seq, tsval, rcv_nxt, ts_recent) {
            return None;
        }
        self.stats.time_wait_recycled += 1;
        match flow {
            Flow::Conn(slot) => self.free(slot),
            Flow::TimeWait(index) => self.remove_time_wait(index, true),
        }
        Some(snd_nxt)
    }

    /// A segment for a TIME-WAIT record: the record decides
    /// ([`TimeWaitRecord::on_segment`]), the stack sends and deletes.
    fn on_time_wait_segment(
        &mut self,
        now: Instant,
        index: u32,
        tcp: &TcpRepr,
        payload_len: usize,
    ) {
        let Some(record) = self.time_wait.get_mut(index) else {
            return;
        };
        let was_fin_wait2 = record.fin_wait2;
        let reply = match record.on_segment(now, tcp, payload_len, &mut self.stats) {
            TimeWaitReply::Nothing => None,
            TimeWaitReply::Ack { dsack } => {
                if dsack.is_some() {
                    self.stats.dsacks_sent += 1;
                }
                Some(record.ack(now, dsack))
            }
            TimeWaitReply::ChallengeAck => {
                if self.allow_challenge_ack() {
                    self.stats.challenge_acks += 1;
                    self.time_wait.get_mut(index).map(|r| r.ack(now, None))
                } else {
                    self.stats.challenge_acks_suppressed += 1;
                    None
                }
            }
            TimeWaitReply::Close => {
                self.remove_time_wait(index, true);
                None
            }
            TimeWaitReply::Reset => {
                let rst = record.reset();
                self.remove_time_wait(index, true);
                Some(rst)
            }
        };
        let Some(segment) = reply else {
            return;
        };
        let finished = was_fin_wait2 && self.time_wait.get(index).is_some_and(|r| !r.fin_wait2);
        if !finished {
            // A restarted 2·MSL leaves the wheel entry at the old deadline:
            // it fires, finds the record not yet due and re-arms (as
            // `rearm`).
            self.push_control(segment);
            return;
        }
        // The peer's FIN ended FIN-WAIT-2: its ACK is owed once per
        // connection, like the one `retire_time_wait` sends, so it is not
        // bounded by `control_queue`; and 2·MSL may end before the
        // FIN-WAIT-2 timeout the wheel entry waits for.
        self.control.push_back(segment);
        if let Some(id) = self.time_wait.get_mut(index).and_then(|r| r.timer.take()) {
            self.timers.cancel(id);
        }
        self.arm_time_wait(index);
    }

    fn find_listener(&self, local: SocketAddrV4) -> Option<u32> {
        self.listen_addrs
            .get(&local)
            .or_else(|| {
                self.listen_addrs
                    .get(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port()))
            })
            .copied()
    }

    /// LISTEN (RFC 9293 §3.10.7.2) or CLOSED (§3.10.7.1) processing.
    /// `iss` is given for a SYN that reopened a TIME-WAIT; otherwise the
    /// ISN generator picks it.
    fn on_listen_segment(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        mac: MacAddr,
        tcp: &TcpRepr,
        payload_len: usize,
        iss: Option<SeqNum>,
    ) {
        let flags = tcp.flags;
        let Some(lslot) = self.find_listener(tuple.local) else {
            self.stats.rx_no_connection += 1;
            self.reset_for_no_connection(tuple, mac, tcp, payload_len);
            return;
        };
        if flags.rst() {
            return; // first: an incoming RST is ignored
        }
        if flags.ack() {
            // Second: any ACK in LISTEN is bad: <SEQ=SEG.ACK><CTL=RST>.
            self.push_control(ControlSegment::bare(
                tuple,
                mac,
                tcp.ack,
                SeqNum(0),
                TcpFlags::RST,
            ));
            return;
        }
        if !flags.syn() {
            return; // fourth: other text or control, drop
        }
        let listener = &self.listeners[lslot as usize];
        if listener.syn_backlog >= listener.backlog
            || listener.accept_queue.len() >= listener.backlog
            || self.conns.len() >= self.config.max_connections
        {
            // Like Linux: drop the SYN, the client retries.
            self.stats.listen_drops += 1;
            return;
        }
        let lid = ListenerId {
            slot: lslot,
            generation: listener.generation,
        };
        let config = listener.config.clone();
        let generation = self.generation();
        let params = NewConnection {
            generation,
            tuple,
            remote_mac: mac,
            iss: iss.unwrap_or_else(|| self.isn.isn(now, tuple.local, tuple.remote)),
            ts_offset: self.isn.timestamp_offset(tuple.local, tuple.remote),
            config,
        };
        let conn = Connection::new_passive(now, params, lid, tcp.seq, tcp.window, &tcp.options);
        let slot = self.conns.insert(conn) as u32;
        self.flows.insert(tuple, Flow::Conn(slot));
        self.listeners[lslot as usize].syn_backlog += 1;
        self.stats.passive_opens += 1;
        let fx = Effects {
            output: true,
            ..Effects::default()
        };
        self.apply(slot, fx);
    }

    /// RFC 9293 §3.10.7.1: a RST for a segment that matches nothing.
    fn reset_for_no_connection(
        &mut self,
        tuple: FourTuple,
        mac: MacAddr,
        tcp: &TcpRepr,
        payload_len: usize,
    ) {
        if tcp.flags.rst() {
            return; // a RST is never answered
        }
        let segment = if tcp.flags.ack() {
            ControlSegment::bare(tuple, mac, tcp.ack, SeqNum(0), TcpFlags::RST)
        } else {
            let seg_len = payload_len + tcp.flags.syn() as usize + tcp.flags.fin() as usize;
            ControlSegment::bare(
                tuple,
                mac,
                SeqNum(0),
                tcp.seq + seg_len,
                TcpFlags::RST | TcpFlags::ACK,
            )
        };
        self.push_control(segment);
    }

    fn push_control(&mut self, segment: ControlSegment) {
        if self.control.len() >= self.config.control_queue {
            self.stats.control_drops += 1;
            return;
        }
        self.control.push_back(segment);
    }

    /// Carries out what a connection asked for, then re-arms its timer.
    fn apply(&mut self, slot: u32, mut fx: Effects) {
        if fx.is_output_only() {
            // The common case (data in, an ACK to schedule, a read): no
            // events, nothing to free.
            if fx.output {
                self.mark_ready(slot);
            }
            self.rearm(slot);
            return;
        }
        if fx.is_events_only() {
            // Data for the application or room for more (every data
            // segment after a read): an event, no state change to act on.
            let conn = &self.conns[slot as usize];
            if conn.user_owned || conn.in_accept_queue {
                let id = ConnId {
                    slot,
                    generation: conn.generation,
                };
                if fx.readable {
                    self.events.push_back(Event::Readable(id));
                }
                if fx.writable {
                    self.events.push_back(Event::Writable(id));
                }
            }
            if fx.output {
                self.mark_ready(slot);
            }
            self.rearm(slot);
            return;
        }
        if let Some(rst) = fx.rst.take() {
            self.push_control(rst);
        }
        if fx.challenge_ack {
            if self.allow_challenge_ack() {
                self.stats.challenge_acks += 1;
                self.conns[slot as usize].ack_pending = true;
                fx.output = true;
            } else {
                self.stats.challenge_acks_suppressed += 1;
            }
        }
        let (generation, listener, user_owned) = {
            let c = &self.conns[slot as usize];
            (c.generation, c.listener, c.user_owned)
        };
        let id = ConnId { slot, generation };
        if fx.drop_silently {
            self.free(slot);
            return;
        }
        if fx.time_wait {
            self.conns[slot as usize].recycle_storage(&mut self.storage);
        }
        if fx.accepted {
            if let Some(l) = listener {
                let conn = &mut self.conns[slot as usize];
                conn.in_syn_backlog = false;
                conn.in_accept_queue = true;
                if let Some(listener) = self.listeners.get_mut(l.slot as usize) {
                    listener.syn_backlog = listener.syn_backlog.saturating_sub(1);
                    listener.accept_queue.push_back(slot);
                }
                self.events.push_back(Event::Accepted {
                    listener: l,
                    conn: id,
                });
            }
        }
        if fx.connected && user_owned {
            // A connection the user closed during its handshake finishes
            // as an orphan: its handle is gone, so nobody is told.
            self.events.push_back(Event::Connected(id));
        }
        let visible = user_owned || self.conns[slot as usize].in_accept_queue;
        if visible && fx.readable {
            self.events.push_back(Event::Readable(id));
        }
        if visible && fx.writable {
            self.events.push_back(Event::Writable(id));
        }
        if let Some(reason) = fx.closed {
            let conn = &mut self.conns[slot as usize];
            if visible && !conn.close_reported {
                conn.close_reported = true;
                self.events.push_back(Event::Closed { conn: id, reason });
            }
            if conn.state == State::Closed {
                if !visible {
                    self.free(slot);
                    return;
                }
                // RFC 9293 §3.10.8: the TCB is deleted; only the user's
                // handle remains. Later segments for the 4-tuple are
                // handled as for no connection (or by a listener).
                let tuple = conn.tuple;
                self.remove_flow(slot, &tuple);
            }
        }
        if self.retire_time_wait(slot) {
            return;
        }
        if fx.output {
            self.mark_ready(slot);
        }
        self.rearm(slot);
    }

    /// Moves the connection in `slot` to a compact TIME-WAIT record if
    /// nobody holds it and it is in TIME-WAIT, or in FIN-WAIT-2 with only
    /// the peer's FIN to wait for (see `tcp::time_wait`), sending an ACK
    /// if one is still owed. With every record taken (`max_time_wait`) a
    /// TIME-WAIT closes at once instead, as Linux's does on time-wait
    /// bucket overflow, and a FIN-WAIT-2 stays a connection. Returns
    /// whether the connection left its slot.
    fn retire_time_wait(&mut self, slot: u32) -> bool {
        let conn = &self.conns[slot as usize];
        if !self.compact_time_wait
            || conn.user_owned
            || conn.in_accept_queue
            || !conn.retirable()
            || (conn.state == State::FinWait2 && self.time_wait.is_full())
        {
            return false;
        }
        let now = self.now;
        let generation = self.generation();
        let (mut record, ack_owed) =
            TimeWaitRecord::from_connection(&self.conns[slot as usize], generation, now);
        if ack_owed {
            // Not bounded by `control_queue` as replies to arrivals are
            // (those a peer can provoke at will): one per connection
            // finishing, which the connection's own output would have
            // carried. Dropping it would cost the peer a FIN timeout.
            self.control.push_back(record.ack(now, None));
        }
        if self.time_wait.is_full() {
            self.stats.time_wait_overflow += 1;
            self.free(slot);
            return true;
        }
        let tuple = record.tuple;
        self.take_connection(slot);
        let index = self.time_wait.insert(record);
        self.last_flow = None;
        if !self
            .flows
            .replace(&tuple, Flow::Conn(slot), Flow::TimeWait(index))
        {
            // The tuple is no longer this connection's: nothing would
            // ever reach the record.
            self.remove_time_wait(index, false);
            return true;
        }
        self.arm_time_wait(index);
        true
    }

    /// Puts a wheel entry at the record's deadline.
    fn arm_time_wait(&mut self, index: u32) {
        let Some(record) = self.time_wait.get_mut(index) else {
            return;
        };
        let key = timer_key(index | TIME_WAIT_TIMER, record.generation);
        record.timer = Some(self.timers.insert(record.deadline, key));
    }

    /// A record's wheel entry fired: 2·MSL is over (RFC 9293 §3.10.8:
    /// delete), or an orphaned FIN-WAIT-2 waited long enough for the
    /// peer's FIN (Linux's tcp_fin_timeout: reset and delete, as the
    /// connection does), or the deadline moved and the entry moves on.
    fn on_time_wait_timer(&mut self, now: Instant, index: u32, generation: u32) {
        let Some(record) = self.time_wait.get_mut(index) else {
            return;
        };
        if record.generation != generation {
            return;
        }
        record.timer = None;
        if record.deadline > now {
            self.arm_time_wait(index);
            return;
        }
        if record.fin_wait2 {
            let rst = record.reset();
            self.push_control(rst);
        }
        self.remove_time_wait(index, true);
    }

    /// Deletes a TIME-WAIT record: flow entry, timer. `release` frees
    /// its tuple for active opens (not when one is taking it over).
    fn remove_time_wait(&mut self, index: u32, release: bool) {
        let Some(record) = self.time_wait.remove(index) else {
            return;
        };
        if let Some(id) = record.timer {
            self.timers.cancel(id);
        }
        self.last_flow = None;
        if self.flows.get(&record.tuple) == Some(Flow::TimeWait(index)) {
            self.flows.remove(&record.tuple);
        }
        self.stats.connections_closed += 1;
        if release {
            self.exhausted.tuple_released(record.tuple.remote);
        }
    }

    /// RFC 5961 §7: at most `challenge_ack_limit` challenge ACKs per
    /// second, stack-wide, so they cannot be used as an amplifier.
    fn allow_challenge_ack(&mut self) -> bool {
        let (start, count) = self.challenge_window;
        if self.now.saturating_since(start) >= Duration::from_secs(1) {
            self.challenge_window = (self.now, 0);
        } else if count >= self.config.challenge_ack_limit {
            return false;
        }
        self.challenge_window.1 += 1;
        true
    }

    fn mark_ready(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        if !conn.in_ready {
            conn.in_ready = true;
            self.ready.push_back(slot);
        }
    }

    /// Keeps one wheel entry per connection at (or before) its earliest
    /// deadline. A later deadline leaves the earlier entry in place: it
    /// fires, finds nothing due and re-arms — cheaper than a cancel per ACK.
    fn rearm(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        let Some(deadline) = conn.next_deadline() else {
            return;
        };
        if let Some((id, armed)) = conn.timer {
            if armed <= deadline {
                return;
            }
            self.timers.cancel(id);
        }
        let id = self
            .timers
            .insert(deadline, timer_key(slot, conn.generation));
        conn.timer = Some((id, deadline));
    }

    /// Drops the flow-table entry of `slot`, unless the tuple already
    /// belongs to a newer connection.
    fn remove_flow(&mut self, slot: u32, tuple: &FourTuple) {
        self.last_flow = None;
        if self.flows.get(tuple) == Some(Flow::Conn(slot)) {
            self.flows.remove(tuple);
        }
    }

    /// Drops events still queued for a handle the user just gave up, so no
    /// event ever names a closed or aborted handle.
    fn forget_events(&mut self, id: ConnId) {
        self.events.retain(|e| e.conn() != id);
    }

    /// Removes a connection entirely: flow entry, timer, backlog slot. Its
    /// tuple is free for active opens again.
    fn free(&mut self, slot: u32) {
        if let Some(remote) = self.discard(slot) {
            self.exhausted.tuple_released(remote);
        }
    }

    /// As [`free`](Self::free), for a tuple about to be taken over by a
    /// new connection (a reused TIME-WAIT): no tuple becomes free, so
    /// failed connect scans stay valid. Returns the remote address.
    fn discard(&mut self, slot: u32) -> Option<SocketAddrV4> {
        let tuple = self.take_connection(slot)?;
        self.remove_flow(slot, &tuple);
        self.stats.connections_closed += 1;
        // A stale slot on the ready list is skipped by generation/flag check.
        Some(tuple.remote)
    }

    /// Takes a connection out of its slot: its storage to the pool, its
    /// timer cancelled, its listener's counts updated, its counters added
    /// to the stack's. The flow entry is the caller's. Returns its tuple:
    /// the work is done where the connection lies, and only the leftovers
    /// (its storage already in the pool) leave the slab, once (a
    /// `Connection` is 1.5 KiB, and returning it by value copied it two or
    /// three times per connection closed).
    fn take_connection(&mut self, slot: u32) -> Option<FourTuple> {
        let conn = self.conns.get_mut(slot as usize)?;
        conn.recycle_storage(&mut self.storage);
        if let Some((id, _)) = conn.timer {
            self.timers.cancel(id);
        }
        if let Some(l) = conn.listener {
            if let Some(listener) = self.listeners.get_mut(l.slot as usize) {
                if listener.generation == l.generation {
                    if conn.in_syn_backlog {
                        listener.syn_backlog = listener.syn_backlog.saturating_sub(1);
                    }
                    if conn.in_accept_queue {
                        listener.accept_queue.retain(|&s| s != slot);
                    }
                }
            }
        }
        self.stats.add_connection(&conn.stats);
        let tuple = conn.tuple;
        drop(self.conns.remove(slot as usize));
        Some(tuple)
    }

    // ---------------------------------------------------------------
    // Output and timers
    // ---------------------------------------------------------------

    /// Runs due timers and sends everything pending, until `tx` is full.
    pub fn poll<T: Transmit>(&mut self, now: Instant, tx: &mut T) {
        self.now = now;
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.timers.advance(now, &mut |key| fired.push(key));
        for &key in &fired {
            let slot = key as u32;
            let generation = (key >> 32) as u32;
            if slot & TIME_WAIT_TIMER != 0 {
                self.on_time_wait_timer(now, slot & !TIME_WAIT_TIMER, generation);
                continue;
            }
            let Some(conn) = self.conns.get_mut(slot as usize) else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            conn.timer = None;
            let mut fx = Effects::default();
            conn.on_timer(now, &mut fx);
            self.apply(slot, fx);
        }
        self.fired = fired;

        while let Some(seg) = self.control.front().copied() {
            if !self.emit_control(tx, &seg) {
                return;
            }
            self.control.pop_front();
        }

        let env = OutputEnv {
            mac: self.config.mac,
        };
        while let Some(slot) = self.ready.pop_front() {
            let Some(conn) = self.conns.get_mut(slot as usize) else {
                continue;
            };
            if !conn.in_ready {
                continue;
            }
            conn.in_ready = false;
            let before = conn.stats.segs_out;
            let acks_before = conn.stats.acks_sent;
            let complete = conn.poll_output(now, &env, tx);
            let sent = conn.stats.segs_out - before;
            self.stats.tx_frames += sent;
            self.stats.tx_pure_acks += conn.stats.acks_sent - acks_before;
            if !complete {
                conn.in_ready = true;
                self.ready.push_front(slot);
                self.rearm(slot);
                return;
            }
            self.rearm(slot);
        }
    }

    fn emit_control<T: Transmit>(&mut self, tx: &mut T, seg: &ControlSegment) -> bool {
        let mut sack_blocks = SackBlocks::new();
        if let Some((left, right)) = seg.dsack {
            sack_blocks.push(left, right);
        }
        let repr = TcpRepr {
            src_port: seg.tuple.local.port(),
            dst_port: seg.tuple.remote.port(),
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window: seg.window,
            urgent: 0,
            options: TcpOptions {
                timestamps: seg.timestamps,
                sack_blocks,
                ..TcpOptions::default()
            },
        };
        let (eth, ip) =
            seg.tuple
                .outgoing_headers(self.config.mac, seg.remote_mac, self.config.tcp.ttl);
        let len = tcp_frame_len(&repr, 0);
        if !tx.transmit(len, |buf| emit_tcp_frame(buf, &eth, &ip, &repr, &[], &[])) {
            return false;
        }
        self.stats.tx_frames += 1;
        if seg.flags.rst() {
            self.stats.tx_rst += 1;
        }
        true
    }

    /// When `poll` must be called next: now if output is pending, else
    /// the timer wheel's next expiry (a lower bound), or `None` when idle.
    pub fn poll_at(&self) -> Option<Instant> {
        if !self.ready.is_empty() || !self.control.is_empty() {
            return Some(self.now);
        }
        self.timers.next_expiry()
    }

    /// Takes the next event, oldest first.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------------
    // User operations
    // ---------------------------------------------------------------

    /// Opens a listener on `addr` (0.0.0.0 listens on every address) with
    /// `backlog` bounding both the SYN backlog and the accept queue.
    pub fn listen(&mut self, addr: SocketAddrV4, backlog: usize) -> Result<ListenerId, TcpError> {
        self.listen_with(addr, backlog, self.tcp_config.as_ref().clone())
    }

    /// As [`listen`](Self::listen), with per-listener TCP settings.
    pub fn listen_with(
        &mut self,
        addr: SocketAddrV4,
        backlog: usize,
        config: TcpConfig,
    ) -> Result<ListenerId, TcpError> {
        if addr.port() == 0 {
            return Err(TcpError::InvalidInput("cannot listen on port 0"));
        }
        if backlog == 0 {
            return Err(TcpError::InvalidInput("backlog must be at least 1"));
        }
        if config.validate().is_err() {
            return Err(TcpError::InvalidInput("invalid TCP configuration"));
        }
        if self.listen_addrs.contains_key(&addr) {
            return Err(TcpError::AddrInUse);
        }
        let generation = self.generation();
        let slot = self.listeners.insert(Listener {
            generation,
            addr,
            backlog,
            syn_backlog: 0,
            accept_queue: VecDeque::with_capacity(backlog.min(4096)),
            config: Arc::new(config),
        }) as u32;
        self.listen_addrs.insert(addr, slot);
        Ok(ListenerId { slot, generation })
    }

    fn listener_slot(&self, id: ListenerId) -> Result<u32, TcpError> {
        match self.listeners.get(id.slot as usize) {
            Some(l) if l.generation == id.generation => Ok(id.slot),
            _ => Err(TcpError::InvalidHandle),
        }
    }

    /// Takes the oldest established connection from the accept queue.
    pub fn accept(&mut self, id: ListenerId) -> Result<ConnId, TcpError> {
        let lslot = self.listener_slot(id)?;
        let slot = self.listeners[lslot as usize]
            .accept_queue
            .pop_front()
            .ok_or(TcpError::WouldBlock)?;
        let conn = &mut self.conns[slot as usize];
        conn.in_accept_queue = false;
        conn.user_owned = true;
        Ok(ConnId {
            slot,
            generation: conn.generation,
        })
    }

    /// Closes a listener; connections still in its SYN backlog or accept
    /// queue are reset (as Linux does on close of a listening socket).
    pub fn close_listener(&mut self, id: ListenerId) -> Result<(), TcpError> {
        let lslot = self.listener_slot(id)?;
        let listener = self.listeners.remove(lslot as usize);
        self.listen_addrs.remove(&listener.addr);
        self.exhausted.listener_closed();
        let orphans: Vec<u32> = self
            .conns
            .iter()
            // Only what waits in its queues: accepted connections are the
            // user's, and orphans finishing a close must run their course.
            .filter(|(_, c)| c.listener == Some(id) && (c.in_accept_queue || c.in_syn_backlog))
            .map(|(s, _)| s as u32)
            .collect();
        for slot in orphans {
            let mut fx = Effects::default();
            self.conns[slot as usize].abort(&mut fx);
            if let Some(rst) = fx.rst {
                self.push_control(rst);
            }
            self.free(slot);
        }
        Ok(())
    }

    /// Active open (RFC 9293 §3.10.1). A local port of 0 picks an
    /// ephemeral port. `next_hop` is the MAC the SYN goes to.
    pub fn connect(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        next_hop: MacAddr,
    ) -> Result<ConnId, TcpError> {
        self.connect_with(now, local, remote, next_hop, self.tcp_config.clone())
    }

    /// A next hop changed its MAC to `new`: every connection (active or
    /// passive) for which `sends_via(remote address, current MAC)` holds
    /// sends to `new` from now on, its prebuilt segment header (which
    /// caches the MAC) rebuilt, and so do control segments still queued.
    /// The runtime calls it when its neighbour verification (RFC 1122
    /// §2.3.2.1, RFC 4861 §7.3) sees the kernel's table change, with a
    /// predicate naming the connections behind that next hop. A connection
    /// with data (or a SYN) outstanding retransmits at the next poll
    /// instead of at its possibly backed-off timeout
    /// ([`Connection::on_next_hop_changed`], RFC 6069 §4). Scans every
    /// connection: rare, never per packet. Returns how many changed.
    pub fn update_next_hop(
        &mut self,
        new: MacAddr,
        mut sends_via: impl FnMut(Ipv4Addr, MacAddr) -> bool,
    ) -> usize {
        let now = self.now;
        let mut retransmit_now = Vec::new();
        let mut changed = 0;
        for (slot, conn) in self.conns.iter_mut() {
            if conn.remote_mac != new && sends_via(*conn.tuple.remote.ip(), conn.remote_mac) {
                conn.remote_mac = new;
                conn.segment_template = None;
                if conn.on_next_hop_changed(now) {
                    retransmit_now.push(slot as u32);
                }
                changed += 1;
            }
        }
        for slot in retransmit_now {
            self.rearm(slot);
        }
        for seg in self.control.iter_mut() {
            if seg.remote_mac != new && sends_via(*seg.tuple.remote.ip(), seg.remote_mac) {
                seg.remote_mac = new;
            }
        }
        changed
    }

    /// As [`connect`](Self::connect), with per-connection TCP settings.
    pub fn connect_with(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        next_hop: MacAddr,
        config: Arc<TcpConfig>,
    ) -> Result<ConnId, TcpError> {
        self.now = now;
        if remote.port() == 0 || remote.ip().is_unspecified() || local.ip().is_unspecified() {
            return Err(TcpError::InvalidInput(
                "connect needs a remote port and concrete addresses",
            ));
        }
        if self.conns.len() >= self.config.max_connections {
            return Err(TcpError::TooManyConnections);
        }
        let local = if local.port() == 0 {
            self.pick_ephemeral(*local.ip(), remote)?
        } else {
            local
        };
        let tuple = FourTuple { local, remote };
        // The tuple is looked up before the ISN is hashed: a caller
        // scanning for a free tuple meets mostly busy ones.
        let iss = match self.flows.get(&tuple) {
            None => self.isn.isn(now, local, remote),
            Some(flow) => {
                let Some(old_snd_nxt) = self.reusable_time_wait(flow, now) else {
                    return Err(TcpError::AddrInUse);
                };
                self.stats.time_wait_reused += 1;
                match flow {
                    Flow::Conn(slot) => {
                        self.discard(slot);
                    }
                    Flow::TimeWait(index) => self.remove_time_wait(index, false),
                }
                // As Linux's tcp_twsk_unique: start above the old
                // incarnation's sequence space (plus a maximum unscaled
                // window), so no old segment still in flight can be taken
                // for new data.
                old_snd_nxt + 65535 + 2
            }
        };
        let generation = self.generation();
        let params = NewConnection {
            generation,
            tuple,
            remote_mac: next_hop,
            iss,
            ts_offset: self.isn.timestamp_offset(local, remote),
            config,
        };
        let conn = Connection::new_active(now, params);
        let slot = self.conns.insert(conn) as u32;
        self.flows.insert(tuple, Flow::Conn(slot));
        self.stats.active_opens += 1;
        self.mark_ready(slot);
        Ok(ConnId { slot, generation })
    }

    /// Connects to `remote` from the first of `candidates` (local
    /// addresses, in the caller's order) whose tuple is free or a
    /// TIME-WAIT that may be reused (see [`connect`](Self::connect)).
    /// `scope` names the candidate list: calls with the same scope and
    /// remote must offer the same set. When every candidate is held the
    /// call fails with `AddrNotAvailable`, and repeats fail at once,
    /// without walking the list again, until a tuple towards `remote` is
    /// released or a held TIME-WAIT becomes reusable.
    pub fn connect_first_free(
        &mut self,
        now: Instant,
        scope: u64,
        candidates: impl IntoIterator<Item = SocketAddrV4>,
        remote: SocketAddrV4,
        next_hop: MacAddr,
    ) -> Result<ConnId, TcpError> {
        self.now = now;
        if self.conns.len() >= self.config.max_connections {
            return Err(TcpError::TooManyConnections);
        }
        let local = self.first_free(ScanScope::Caller(scope), remote, |stack| {
            stack.scan_for_free(candidates, remote)
        })?;
        self.connect(now, local, remote, next_hop)
    }

    fn pick_ephemeral(
        &mut self,
        ip: Ipv4Addr,
        remote: SocketAddrV4,
    ) -> Result<SocketAddrV4, TcpError> {
        let (lo, hi) = self.config.ephemeral_ports;
        let span = u32::from(hi - lo) + 1;
        let start = u32::from(self.next_ephemeral.saturating_sub(lo)) % span;
        let local = self.first_free(ScanScope::Ephemeral(ip), remote, |stack| {
            let candidates = (0..span)
                .map(|i| SocketAddrV4::new(ip, lo + ((start + i) % span) as u16))
                .filter(|local| !stack.listen_addrs.contains_key(local));
            stack.scan_for_free(candidates, remote)
        })?;
        self.next_ephemeral = if local.port() >= hi {
            lo
        } else {
            local.port() + 1
        };
        Ok(local)
    }

    /// Runs `scan` (a walk over `scope`'s candidates towards `remote`,
    /// see [`scan_for_free`](Self::scan_for_free)) unless an earlier walk
    /// is known to fail still, and remembers a walk that found nothing
    /// (see [`ExhaustedPorts`]).
    fn first_free(
        &mut self,
        scope: ScanScope,
        remote: SocketAddrV4,
        scan: impl FnOnce(&Self) -> Result<SocketAddrV4, Instant>,
    ) -> Result<SocketAddrV4, TcpError> {
        if self.exhausted.known_exhausted(scope, remote, self.now) {
            return Err(TcpError::AddrNotAvailable);
        }
        scan(self).map_err(|retry_at| {
            self.stats.exhausted_port_scans += 1;
            self.exhausted.record(scope, remote, retry_at);
            TcpError::AddrNotAvailable
        })
    }

    /// The first of `candidates` whose tuple towards `remote` is free or a
    /// reusable TIME-WAIT at `self.now`; or, when every one is held, the
    /// earliest time one of them may become reusable without being
    /// released.
    fn scan_for_free(
        &self,
        candidates: impl IntoIterator<Item = SocketAddrV4>,
        remote: SocketAddrV4,
    ) -> Result<SocketAddrV4, Instant> {
        let now = self.now;
        // A tuple entering TIME-WAIT from now on is reusable no sooner
        // than this.
        let mut retry_at = now + TIME_WAIT_REUSE_AFTER;
        for local in candidates {
            let Some(flow) = self.flows.get(&FourTuple { local, remote }) else {
                return Ok(local);
            };
            match self.time_wait_reuse(flow) {
                Some((at, _)) if at <= now => return Ok(local),
                Some((at, _)) => retry_at = retry_at.min(at),
                None => {}
            }
        }
        Err(retry_at)
    }

    /// Whether an active open may take over the tuple of the connection
    /// in `slot`: it sits in TIME-WAIT (ours, no longer the user's),
    /// timestamps were negotiated, and it has been there at least
    /// [`TIME_WAIT_REUSE_AFTER`]. This is Linux's `tcp_tw_reuse = 1` rule,
    /// safe by RFC 6191 §2 / RFC 7323 §5.5: our timestamps on the tuple
    /// keep increasing (one offset per tuple, RFC 7323 §5.4), so the peer's
    /// PAWS discards old duplicates of the previous incarnation, and ours
    /// take `ts_recent` from the new SYN-ACK. Returns the old SND.NXT.
    fn reusable_time_wait(&self, flow: Flow, now: Instant) -> Option<SeqNum> {
        self.time_wait_reuse(flow)
            .and_then(|(at, snd_nxt)| (at <= now).then_some(snd_nxt))
    }

    /// For a connection whose tuple an active open may take over once it
    /// has rested (see [`reusable_time_wait`](Self::reusable_time_wait)):
    /// from when, and its SND.NXT. None for any other connection.
    fn time_wait_reuse(&self, flow: Flow) -> Option<(Instant, SeqNum)> {
        let slot = match flow {
            Flow::Conn(slot) => slot,
            Flow::TimeWait(index) => {
                let record = self.time_wait.get(index)?;
                return (record.timestamps && !record.fin_wait2)
                    .then(|| (record.entered() + TIME_WAIT_REUSE_AFTER, record.snd_nxt));
            }
        };
        let conn = &self.conns[slot as usize];
        if conn.state != State::TimeWait || conn.user_owned || !conn.timestamps {
            return None;
        }
        // TIME-WAIT lasts 2·MSL from its (last) start: close_deadline.
        let deadline = conn.close_deadline?;
        let entered = Instant::from_micros(
            deadline
                .total_micros()
                .saturating_sub(conn.config.msl.as_micros() as u64 * 2),
        );
        Some((entered + TIME_WAIT_REUSE_AFTER, conn.snd_nxt))
    }

    fn slot_of(&self, id: ConnId) -> Result<u32, TcpError> {
        match self.conns.get(id.slot as usize) {
            Some(c) if c.generation == id.generation && c.user_owned => Ok(id.slot),
            _ => Err(TcpError::InvalidHandle),
        }
    }

    /// Runs a user operation on a connection and applies its effects.
    fn with_conn<R>(
        &mut self,
        id: ConnId,
        f: impl FnOnce(&mut Connection, &mut Effects) -> R,
    ) -> Result<R, TcpError> {
        let slot = self.slot_of(id)?;
        let mut fx = Effects::default();
        let r = f(&mut self.conns[slot as usize], &mut fx);
        self.apply(slot, fx);
        Ok(r)
    }

    /// [`with_conn`](Self::with_conn) for the calls that only move bytes
    /// between the application and the connection's buffers (`send`,
    /// `recv`, `echo_received`): they change no timer deadline (data is
    /// timed when `poll` sends it, and `poll` re-arms), so the common
    /// outcome, output at most, costs a ready-list check instead of a
    /// full [`apply`](Self::apply) with its timer re-arm. This runs on
    /// every application read and write.
    fn with_conn_buffers<R>(
        &mut self,
        id: ConnId,
        f: impl FnOnce(&mut Connection, &mut Effects) -> R,
    ) -> Result<R, TcpError> {
        let slot = self.slot_of(id)?;
        let mut fx = Effects::default();
        let conn = &mut self.conns[slot as usize];
        #[cfg(debug_assertions)]
        let deadline_before = conn.next_deadline();
        let r = f(conn, &mut fx);
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            conn.next_deadline(),
            deadline_before,
            "a buffer-only call moved a timer"
        );
        if fx.is_output_only() {
            if fx.output {
                self.mark_ready(slot);
            }
        } else {
            self.apply(slot, fx);
        }
        Ok(r)
    }

    /// Queues bytes to send; see [`Connection::send`].
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, TcpError> {
        if !data.is_empty() {
            self.adopt_send_storage(id);
        }
        self.with_conn_buffers(id, |c, fx| c.send(data, fx))?
    }

    /// Gives the connection pooled send storage before a write, if it
    /// has none yet.
    #[inline]
    fn adopt_send_storage(&mut self, id: ConnId) {
        if let Ok(slot) = self.slot_of(id) {
            self.conns[slot as usize].adopt_send_storage(&mut self.storage);
        }
    }

    /// Reads bytes; `Ok(0)` is end of stream. See [`Connection::recv`].
    pub fn recv(&mut self, id: ConnId, out: &mut [u8]) -> Result<usize, TcpError> {
        self.with_conn_buffers(id, |c, fx| c.recv(out, fx))?
    }

    /// Zero-copy read: `f` gets the readable bytes as two slices and
    /// returns how many it consumed.
    pub fn recv_with(
        &mut self,
        id: ConnId,
        f: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<usize, TcpError> {
        self.with_conn_buffers(id, |c, fx| c.recv_with(fx, f))?
    }

    /// Echoes: moves up to `max` received bytes, in order, straight into
    /// the same connection's send buffer (one copy, one call), as `recv`
    /// then `send` of what was read would. `Ok(n > 0)`: bytes moved;
    /// `Ok(0)`: end of stream; `WouldBlock`: nothing readable, or no send
    /// room (a `Writable` event follows); send-side errors leave the
    /// bytes unread. The contract is [`Connection::splice_received`]'s.
    pub fn echo_received(&mut self, id: ConnId, max: usize) -> Result<usize, TcpError> {
        self.adopt_send_storage(id);
        self.with_conn_buffers(id, |c, fx| c.splice_received(max, fx))?
    }

    /// shutdown(SHUT_WR): FIN after the queued data; reads continue.
    pub fn shutdown_write(&mut self, id: ConnId) -> Result<(), TcpError> {
        self.with_conn(id, |c, fx| c.shutdown_write(fx))?
    }

    /// close(): graceful, or RST when unread data is discarded. The handle
    /// is invalid afterwards; the connection finishes on its own.
    pub fn close(&mut self, id: ConnId) -> Result<(), TcpError> {
        let slot = self.slot_of(id)?;
        self.forget_events(id);
        let now = self.now;
        let mut fx = Effects::default();
        let done = self.conns[slot as usize].close(now, &mut fx);
        fx.closed = None; // the user is gone: no Closed event for this handle
        let conn = &self.conns[slot as usize];
        if !done && conn.state == State::TimeWait {
            // A TIME-WAIT its user held could not be reused until now.
            let remote = conn.tuple.remote;
            self.exhausted.tuple_released(remote);
        }
        if done {
            if let Some(rst) = fx.rst.take() {
                self.push_control(rst);
            }
            self.free(slot);
            return Ok(());
        }
        self.apply(slot, fx);
        if self.conns.contains(slot as usize) {
            // A TIME-WAIT the user held (`apply`'s short paths keep it).
            self.retire_time_wait(slot);
        }
        Ok(())
    }

    /// abort(): RST now, discard both buffers, free the connection.
    pub fn abort(&mut self, id: ConnId) -> Result<(), TcpError> {
        let slot = self.slot_of(id)?;
        self.forget_events(id);
        let mut fx = Effects::default();
        self.conns[slot as usize].abort(&mut fx);
        if let Some(rst) = fx.rst {
            self.push_control(rst);
        }
        self.free(slot);
        Ok(())
    }

    pub fn state(&self, id: ConnId) -> Result<State, TcpError> {
        Ok(self.conns[self.slot_of(id)? as usize].state)
    }

    pub fn info(&self, id: ConnId) -> Result<TcpInfo, TcpError> {
        Ok(self.conns[self.slot_of(id)? as usize].info())
    }

    pub fn local_addr(&self, id: ConnId) -> Result<SocketAddrV4, TcpError> {
        Ok(self.conns[self.slot_of(id)? as usize].tuple.local)
    }

    pub fn remote_addr(&self, id: ConnId) -> Result<SocketAddrV4, TcpError> {
        Ok(self.conns[self.slot_of(id)? as usize].tuple.remote)
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&mut self, id: ConnId, nodelay: bool) -> Result<(), TcpError> {
        self.with_conn(id, |c, fx| c.set_nodelay(nodelay, fx))
    }

    /// SO_KEEPALIVE with its idle / interval / count.
    pub fn set_keepalive(
        &mut self,
        id: ConnId,
        keepalive: Option<KeepaliveConfig>,
    ) -> Result<(), TcpError> {
        let now = self.now;
        self.with_conn(id, |c, _| c.set_keepalive(now, keepalive))
    }

    /// Bytes that can be written without blocking. An answer of 0 arms a
    /// `Writable` event for when space opens, as a short `send` does, so
    /// an application that checks before writing is woken up too.
    pub fn send_capacity(&mut self, id: ConnId) -> Result<usize, TcpError> {
        let slot = self.slot_of(id)?;
        let conn = &mut self.conns[slot as usize];
        let free = conn.send_buf.free();
        if free == 0 {
            conn.want_writable = true;
        }
        Ok(free)
    }

    /// The state of whatever connection holds `tuple`, for tests and
    /// diagnostics (it sees orphaned and TIME-WAIT connections too).
    pub fn state_of_tuple(&self, tuple: &FourTuple) -> Option<State> {
        self.flows.get(tuple).map(|flow| match flow {
            Flow::Conn(slot) => self.conns[slot as usize].state,
            Flow::TimeWait(index) => self
                .time_wait
                .get(index)
                .map_or(State::TimeWait, |r| r.state()),
        })
    }

    /// Graceful shutdown: every listener is closed (connections waiting in
    /// accept queues are reset) and every connection the user holds is
    /// closed as by [`close`](Self::close): FIN, or RST with unread data.
    pub fn close_all(&mut self) {
        let listeners: Vec<ListenerId> = self
            .listeners
            .iter()
            .map(|(s, l)| ListenerId {
                slot: s as u32,
                generation: l.generation,
            })
            .collect();
        for l in listeners {
            let _ = self.close_listener(l);
        }
        let held: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.user_owned)
            .map(|(s, c)| ConnId {
                slot: s as u32,
                generation: c.generation,
            })
            .collect();
        for id in held {
            let _ = self.close(id);
        }
    }

    /// Connections still exchanging segments: everything but TIME-WAIT
    /// and connections already CLOSED (kept only for a user's handle).
    pub fn busy_connections(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, c)| !matches!(c.state, State::TimeWait | State::Closed))
            .count()
            + self.time_wait.fin_wait2_count()
    }

    /// Aborts every connection (RST to each synchronized peer, sent at the
    /// next poll), e.g. when a graceful shutdown ran out of time; returns
    /// how many were dropped.
    pub fn reset_all(&mut self) -> usize {
        // RFC 9293 §3.10.5: ABORT in TIME-WAIT deletes without a RST, in
        // FIN-WAIT-2 with one.
        let records = self.time_wait.indices();
        for &index in &records {
            if let Some(rst) = self
                .time_wait
                .get(index)
                .filter(|r| r.fin_wait2)
                .map(|r| r.reset())
            {
                self.push_control(rst);
            }
            self.remove_time_wait(index, true);
        }
        let slots: Vec<u32> = self.conns.iter().map(|(s, _)| s as u32).collect();
        let n = slots.len() + records.len();
        for slot in slots {
            let mut fx = Effects::default();
            self.conns[slot as usize].abort(&mut fx);
            if let Some(rst) = fx.rst {
                self.push_control(rst);
            }
            self.free(slot);
        }
        n
    }
}

/// Used by tests and the simulator: each frame into its own `Vec`.
impl Transmit for Vec<Vec<u8>> {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        let mut buf = vec![0u8; len];
        let n = fill(&mut buf);
        buf.truncate(n);
        self.push(buf);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_can_move_to_a_worker_thread() {
        fn is_send<T: Send>() {}
        is_send::<Stack>();
    }
}
