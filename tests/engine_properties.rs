//! Property tests of the whole engine (proptest, virtual time).
//!
//! 1. Arbitrary frames — random bytes, random raw TCP headers with valid
//!    or broken checksums, mutated valid frames — and 2. arbitrary
//!    well-formed TCP segments (random sequence and acknowledgment numbers
//!    near and far from the connection's, random flags, payloads and
//!    options) are thrown at a stack holding a listener, a passively and an
//!    actively opened connection driven into one of several states,
//!    interleaved with random user calls and time advances. Throughout:
//!    nothing panics; every emitted frame parses with valid checksums; no
//!    RST ever answers a RST (RFC 9293 §3.10.7.1, §3.10.7.4: "a reset is
//!    never sent in response to a reset"); every segment but a SYN or RST
//!    carries ACK; per connection the ACK field never moves back and
//!    (unscaled) the right window edge never moves left (§3.8.6); every
//!    data byte sent at sequence S is the byte the application wrote at
//!    offset S − ISS − 1 (§3.4), nothing unwritten is sent; at most one
//!    `Closed` event per connection and no event for a released handle;
//!    the `stats()` counters agree with what was seen. Finally, once every
//!    handle is closed and time has passed every timeout,
//!    `connection_count()` is 0 and no timer is left armed.
//! 3. Sequence space: an engine fed an arbitrary permutation / duplication /
//!    subset (with overlaps) of a stream's bytes, then the rest in order,
//!    delivers exactly the stream, and RCV.NXT never moves backwards (RFC
//!    9293 §3.10.7.4 seventh step; §3.4 modulo-2^32 arithmetic: the peer's
//!    ISN is arbitrary, so the stream often wraps).
//!
//! `PROPTEST_CASES` sets the number of cases (default 256).
mod common;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use xdp_tcp::tcp::{
    ConnId, Event, KeepaliveConfig, ListenerId, StackConfig, State, TcpConfig, TcpError,
};
use xdp_tcp::wire::{
    emit_tcp_frame, parse_tcp_frame, tcp_frame_len, EtherType, EthernetRepr, Ipv4Repr, SeqNum,
    TcpFlags, TcpOptions, TcpRepr, Timestamps, IP_PROTO_TCP,
};

/// Local ports: the listener, the active open's, and one nobody uses.
const LISTEN_PORT: u16 = US_PORT;
const ACTIVE_PORT: u16 = 5000;
const CLOSED_PORT: u16 = 81;
/// Peer ports: the passive connection's, the active one's, fresh ones.
const PASSIVE_PEER: u16 = 40000;
const ACTIVE_PEER: u16 = 40001;

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        // Engine bugs are reported with the shrunk input; no regression
        // files are written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// =====================================================================
// Frames
// =====================================================================

/// An Ethernet/IPv4/TCP frame from the peer to us, well formed.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    peer_port: u16,
    local_port: u16,
    seq: SeqNum,
    ack: SeqNum,
    flags: u8,
    window: u16,
    options: TcpOptions,
    payload: &[u8],
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: peer_port,
        dst_port: local_port,
        seq,
        ack,
        flags: TcpFlags(flags),
        window,
        urgent: 0,
        options,
    };
    let eth = EthernetRepr {
        src_addr: PEER_MAC,
        dst_addr: US_MAC,
        ethertype: EtherType::Ipv4,
    };
    let ip = Ipv4Repr {
        src_addr: PEER_IP,
        dst_addr: US_IP,
        protocol: IP_PROTO_TCP,
        payload_len: 0,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
    };
    let mut buf = vec![0u8; tcp_frame_len(&repr, payload.len())];
    let n = emit_tcp_frame(&mut buf, &eth, &ip, &repr, payload, &[]);
    assert!(n > 0, "test frame fits");
    buf.truncate(n);
    buf
}

/// RFC 1071 one's-complement sum.
fn ones_sum(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Recomputes the IPv4 header and TCP checksums of a (possibly mutated)
/// frame wherever its length fields make that possible, so that mutations
/// reach the parsers and the engine instead of dying at the checksum.
fn fix_checksums(frame: &mut [u8]) {
    if frame.len() < 34 {
        return;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    if ihl < 20 || frame.len() < 14 + ihl {
        return;
    }
    frame[24] = 0;
    frame[25] = 0;
    let c = fold(ones_sum(&frame[14..14 + ihl], 0));
    frame[24..26].copy_from_slice(&c.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    if total < ihl + 20 || frame.len() < 14 + total {
        return;
    }
    let seg = 14 + ihl..14 + total;
    frame[seg.start + 16] = 0;
    frame[seg.start + 17] = 0;
    let mut acc = ones_sum(&frame[26..34], 0); // source and destination
    acc += u32::from(frame[23]); // protocol
    acc += (total - ihl) as u32;
    let c = fold(ones_sum(&frame[seg.clone()], acc));
    frame[seg.start + 16..seg.start + 18].copy_from_slice(&c.to_be_bytes());
}

/// A TCP header built byte by byte: any data offset, any option bytes.
#[derive(Debug, Clone)]
struct RawSeg {
    target: usize,
    seq: Pick,
    ack: Pick,
    flags: u8,
    window: u16,
    urgent: u16,
    /// Data offset in words; `None` = the right one.
    data_offset: Option<u8>,
    options: Vec<u8>,
    payload: Vec<u8>,
    fix: bool,
}

// =====================================================================
// The world: engine + a peer that remembers each connection's numbers
// =====================================================================

/// What the peer last learned from the engine on one 4-tuple.
#[derive(Debug, Clone, Copy)]
struct View {
    /// The engine's RCV.NXT as last acknowledged.
    rcv: SeqNum,
    /// The engine's highest sequence number sent, plus one.
    snd: SeqNum,
    /// ACK field and right window edge of the last ACK the engine sent
    /// in the current incarnation of the connection (since its SYN).
    last_ack: Option<SeqNum>,
    edge: Option<SeqNum>,
}

/// A segment the engine sent, parsed (with its IPv4 addresses, which the
/// harness's `Out` does not keep: mutated frames reach other addresses).
#[derive(Debug)]
struct Sent {
    local_ip: Ipv4Addr,
    remote_ip: Ipv4Addr,
    tcp: TcpRepr,
    payload: Vec<u8>,
}

impl Sent {
    fn flags(&self) -> TcpFlags {
        self.tcp.flags
    }
    fn is_rst(&self) -> bool {
        self.tcp.flags.rst()
    }
}

type Key = (Ipv4Addr, u16, Ipv4Addr, u16);

fn key(peer_port: u16, local_port: u16) -> Key {
    (PEER_IP, peer_port, US_IP, local_port)
}

struct World {
    h: Harness,
    listener: Option<ListenerId>,
    handles: Vec<ConnId>,
    /// (peer port, local port) pairs segments are aimed at.
    tuples: Vec<(u16, u16)>,
    views: HashMap<Key, View>,
    rx_calls: u64,
    tx_seen: u64,
    rst_seen: u64,
    next_peer_port: u16,
    /// Window scaling may be in use: window edges cannot be compared.
    scaled: bool,
    /// Per 4-tuple, the current incarnation's ISS and the bytes the
    /// application wrote to it.
    streams: HashMap<Key, (SeqNum, usize)>,
    /// Connections that reported `Closed`, and handles the user closed.
    closed: HashSet<ConnId>,
    released: HashSet<ConnId>,
}

impl World {
    /// Polls the engine and parses what it sends: every frame must parse
    /// with valid checksums and come from our MAC address.
    fn poll_sent(&mut self) -> Vec<Sent> {
        let mut frames: Vec<Vec<u8>> = Vec::new();
        self.h.stack.poll(self.h.now, &mut frames);
        frames
            .iter()
            .map(|f| {
                let p = parse_tcp_frame(f, true)
                    .unwrap_or_else(|e| panic!("emitted frame does not parse: {e:?}: {f:02x?}"));
                assert_eq!(p.eth.src_addr, US_MAC);
                Sent {
                    local_ip: p.ip.src_addr,
                    remote_ip: p.ip.dst_addr,
                    tcp: p.tcp,
                    payload: p.payload.to_vec(),
                }
            })
            .collect()
    }

    fn observe(&mut self, out: Vec<Sent>) {
        for o in out {
            self.tx_seen += 1;
            if o.is_rst() {
                self.rst_seen += 1;
                assert!(o.payload.is_empty(), "a RST carries no data: {o:?}");
            }
            // RFC 9293 §3.10.7.4: every segment but the initial SYN (and
            // a RST answering a segment without ACK) carries an ACK.
            assert!(
                o.flags().ack() || o.flags().syn() || o.is_rst(),
                "a segment without ACK: {o:?}"
            );
            let key = (o.remote_ip, o.tcp.dst_port, o.local_ip, o.tcp.src_port);
            let len = o.payload.len() + o.flags().syn() as usize + o.flags().fin() as usize;
            if o.flags().syn() && self.streams.get(&key).map(|s| s.0) != Some(o.tcp.seq) {
                // A new incarnation of the 4-tuple (a SYN-ACK retransmission
                // or simultaneous open keeps the old one).
                self.streams.insert(key, (o.tcp.seq, 0));
            }
            if !o.payload.is_empty() {
                // Every data byte sent at sequence number S is the byte the
                // application wrote at offset S - ISS - 1: retransmissions
                // and go-back-N resend the same bytes, nothing unwritten
                // goes out.
                let (iss, written) = *self.streams.get(&key).expect("data after a SYN");
                let off = o.tcp.seq.wrapping_diff(iss + 1);
                assert!(off >= 0, "data before ISS+1: {o:?}");
                let off = off as usize;
                assert!(
                    off + o.payload.len() <= written,
                    "sent bytes {off}..{} but only {written} written",
                    off + o.payload.len()
                );
                assert!(
                    o.payload == stream_bytes(off, o.payload.len()),
                    "wrong bytes at offset {off}"
                );
            }
            let end = o.tcp.seq + len;
            let scaled = self.scaled;
            let v = self.views.entry(key).or_insert(View {
                rcv: o.tcp.ack,
                snd: end,
                last_ack: None,
                edge: None,
            });
            if o.flags().syn() {
                v.last_ack = None;
                v.edge = None;
            }
            if o.flags().ack() && !o.is_rst() {
                // RCV.NXT never moves back (§3.10.7.4), and the right edge
                // of the offered window never moves left (§3.8.6).
                if let Some(prev) = v.last_ack {
                    assert!(o.tcp.ack >= prev, "ACK went back from {prev:?}: {o:?}");
                }
                v.last_ack = Some(o.tcp.ack);
                if !scaled {
                    let edge = o.tcp.ack + usize::from(o.tcp.window);
                    if let Some(prev) = v.edge {
                        assert!(edge >= prev, "window edge moved left from {prev:?}: {o:?}");
                    }
                    v.edge = Some(edge);
                }
                v.rcv = o.tcp.ack;
            }
            if end > v.snd || o.flags().syn() {
                v.snd = end;
            }
        }
    }

    fn poll(&mut self) {
        let out = self.poll_sent();
        self.observe(out);
    }

    /// Advances the clock, polling at every deadline on the way.
    fn advance(&mut self, d: Duration) {
        let end = self.h.now + d;
        while let Some(t) = self.h.stack.poll_at() {
            if t > end {
                break;
            }
            self.h.now = t.max(self.h.now);
            self.poll();
            if self.h.stack.poll_at() == Some(self.h.now) {
                break;
            }
        }
        self.h.now = end;
        self.poll();
    }

    /// Delivers a frame and checks the RST rule on the reply.
    fn receive(&mut self, frame: &[u8]) {
        let input_rst = parse_tcp_frame(frame, false).is_ok_and(|f| f.tcp.flags.rst());
        self.h.stack.receive(self.h.now, frame);
        self.rx_calls += 1;
        let out = self.poll_sent();
        if input_rst {
            assert!(
                out.iter().all(|o| !o.is_rst()),
                "a RST was answered with a RST: {out:#?}"
            );
        }
        self.observe(out);
    }

    fn view(&self, t: (u16, u16)) -> View {
        self.views.get(&key(t.0, t.1)).copied().unwrap_or(View {
            rcv: SeqNum(0x1234_5678),
            snd: SeqNum(0x8765_4321),
            last_ack: None,
            edge: None,
        })
    }

    /// An in-sequence segment on tuple `t` (the peer's idea of it).
    fn exact(&mut self, t: (u16, u16), flags: u8, window: u16, payload: &[u8]) {
        let v = self.view(t);
        let f = tcp_frame(
            t.0,
            t.1,
            v.rcv,
            v.snd,
            flags,
            window,
            TcpOptions::default(),
            payload,
        );
        self.receive(&f);
    }

    fn key_of(&self, c: ConnId) -> Option<Key> {
        let local = self.h.stack.local_addr(c).ok()?;
        let remote = self.h.stack.remote_addr(c).ok()?;
        Some((*remote.ip(), remote.port(), *local.ip(), local.port()))
    }

    /// Takes a new handle. Its connection owns the 4-tuple now (an older
    /// one on the same tuple is gone), so its stream starts empty — even if
    /// its ISS happens to equal the old one's.
    fn adopt(&mut self, c: ConnId) {
        if let Some(key) = self.key_of(c) {
            if let Some(s) = self.streams.get_mut(&key) {
                s.1 = 0;
            }
        }
        self.handles.push(c);
    }

    /// The application writes the next `n` bytes of its stream to `c`.
    fn write(&mut self, c: ConnId, n: usize) -> Result<usize, TcpError> {
        let Some(key) = self.key_of(c) else {
            return Err(TcpError::InvalidHandle);
        };
        let off = self.streams.get(&key).map_or(0, |s| s.1);
        let r = self.h.stack.send(c, &stream_bytes(off, n));
        if let Ok(k) = r {
            self.streams.get_mut(&key).expect("a SYN was sent").1 += k;
        }
        r
    }

    /// Events: at most one `Closed` per connection, and none at all for a
    /// handle after the user closed or aborted it (the handle is gone).
    fn drain_events(&mut self) {
        while let Some(e) = self.h.stack.next_event() {
            let id = match e {
                Event::Accepted { conn, .. } | Event::Closed { conn, .. } => conn,
                Event::Connected(c) | Event::Readable(c) | Event::Writable(c) => c,
            };
            assert!(!self.released.contains(&id), "{e:?} after close/abort");
            if let Event::Closed { conn, .. } = e {
                assert!(self.closed.insert(conn), "a second Closed: {e:?}");
            }
        }
    }

    fn check_stats(&self) {
        let s = *self.h.stack.stats();
        assert_eq!(s.rx_frames, self.rx_calls, "{s:?}");
        assert_eq!(s.tx_frames, self.tx_seen, "{s:?}");
        assert_eq!(s.tx_rst, self.rst_seen, "{s:?}");
        let dropped = s.rx_malformed
            + s.rx_bad_checksum
            + s.rx_not_tcp
            + s.rx_fragments
            + s.rx_wrong_mac
            + s.rx_no_connection;
        assert!(dropped <= s.rx_frames, "{s:?}");
        assert!(
            s.challenge_acks + s.challenge_acks_suppressed <= s.rx_frames,
            "{s:?}"
        );
        assert_eq!(
            self.h.stack.connection_count() as u64 + s.connections_closed,
            s.active_opens + s.passive_opens,
            "live = opened - closed: {s:?}"
        );
    }
}

/// The state the passive connection is driven into before the fuzzing.
#[derive(Debug, Clone, Copy)]
enum Setup {
    Established,
    DataInFlight,
    PeerDataUnread,
    CloseWait,
    LastAck,
    FinWait1,
    FinWait2,
    Closing,
    TimeWait,
    ZeroWindow,
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    prop_oneof![
        Just(Setup::Established),
        Just(Setup::DataInFlight),
        Just(Setup::PeerDataUnread),
        Just(Setup::CloseWait),
        Just(Setup::LastAck),
        Just(Setup::FinWait1),
        Just(Setup::FinWait2),
        Just(Setup::Closing),
        Just(Setup::TimeWait),
        Just(Setup::ZeroWindow),
    ]
}

fn stack_config(features: bool, small_buffers: bool) -> StackConfig {
    let mut cfg = if features {
        StackConfig {
            mac: US_MAC,
            tcp: TcpConfig::default(),
            ..StackConfig::default()
        }
    } else {
        plain_config()
    };
    if small_buffers {
        cfg.tcp.recv_buffer = 2048;
        cfg.tcp.send_buffer = 4096;
    }
    cfg
}

fn syn_options(features: bool) -> TcpOptions {
    let mut o = TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    };
    if features {
        o.window_scale = Some(7);
        o.sack_permitted = true;
        o.timestamps = Some(Timestamps {
            tsval: 1000,
            tsecr: 0,
        });
    }
    o
}

fn build_world(features: bool, small: bool, peer_iss: u32, setup: Setup) -> World {
    let mut w = World {
        h: Harness::new(stack_config(features, small)),
        listener: None,
        handles: Vec::new(),
        tuples: vec![
            (PASSIVE_PEER, LISTEN_PORT),
            (ACTIVE_PEER, ACTIVE_PORT),
            (40002, LISTEN_PORT),
            (40003, LISTEN_PORT),
            (40004, CLOSED_PORT),
        ],
        views: HashMap::new(),
        rx_calls: 0,
        tx_seen: 0,
        rst_seen: 0,
        next_peer_port: 41000,
        scaled: features,
        closed: HashSet::new(),
        released: HashSet::new(),
        streams: HashMap::new(),
    };
    let l = w.h.stack.listen(us(), 8).expect("listen");
    w.listener = Some(l);
    let iss = SeqNum(peer_iss);

    // Passive open from PASSIVE_PEER.
    let t = (PASSIVE_PEER, LISTEN_PORT);
    let syn = tcp_frame(
        t.0,
        t.1,
        iss,
        SeqNum(0),
        TcpFlags::SYN.bits(),
        65535,
        syn_options(features),
        &[],
    );
    w.receive(&syn);
    w.views.get_mut(&key(t.0, t.1)).expect("SYN-ACK").rcv = iss + 1;
    w.exact(t, TcpFlags::ACK.bits(), 65535, &[]);
    let passive = w.h.stack.accept(l).expect("accept");
    w.adopt(passive);

    // Active open to ACTIVE_PEER.
    let active =
        w.h.stack
            .connect(
                w.h.now,
                SocketAddrV4::new(US_IP, ACTIVE_PORT),
                SocketAddrV4::new(PEER_IP, ACTIVE_PEER),
                PEER_MAC,
            )
            .expect("connect");
    w.poll();
    let t2 = (ACTIVE_PEER, ACTIVE_PORT);
    let v = w.view(t2);
    let synack = tcp_frame(
        t2.0,
        t2.1,
        iss + 0x4000_0000,
        v.snd,
        (TcpFlags::SYN | TcpFlags::ACK).bits(),
        65535,
        syn_options(features),
        &[],
    );
    w.receive(&synack);
    w.adopt(active);
    assert_eq!(w.h.stack.state(active), Ok(State::Established));

    let ack = TcpFlags::ACK.bits();
    let fin = (TcpFlags::ACK | TcpFlags::FIN).bits();
    let expected = match setup {
        Setup::Established => State::Established,
        Setup::DataInFlight => {
            w.write(passive, 3000).expect("send");
            w.poll();
            State::Established
        }
        Setup::PeerDataUnread => {
            w.exact(t, ack, 65535, &[0xa5; 1000]);
            State::Established
        }
        Setup::CloseWait => {
            w.exact(t, fin, 65535, &[]);
            State::CloseWait
        }
        Setup::LastAck => {
            w.exact(t, fin, 65535, &[]);
            w.h.stack.shutdown_write(passive).expect("shutdown");
            w.poll();
            State::LastAck
        }
        Setup::FinWait1 => {
            w.h.stack.shutdown_write(passive).expect("shutdown");
            w.poll();
            State::FinWait1
        }
        Setup::FinWait2 => {
            w.h.stack.shutdown_write(passive).expect("shutdown");
            w.poll();
            w.exact(t, ack, 65535, &[]);
            State::FinWait2
        }
        Setup::Closing => {
            w.h.stack.shutdown_write(passive).expect("shutdown");
            w.poll();
            // The peer's FIN acknowledges everything but our FIN.
            let v = w.view(t);
            let f = tcp_frame(
                t.0,
                t.1,
                v.rcv,
                v.snd - 1,
                fin,
                65535,
                TcpOptions::default(),
                &[],
            );
            w.receive(&f);
            State::Closing
        }
        Setup::TimeWait => {
            w.h.stack.shutdown_write(passive).expect("shutdown");
            w.poll();
            w.exact(t, ack, 65535, &[]);
            w.exact(t, fin, 65535, &[]);
            State::TimeWait
        }
        Setup::ZeroWindow => {
            w.exact(t, ack, 0, &[]);
            w.write(passive, 3000).expect("send");
            w.poll();
            State::Established
        }
    };
    assert_eq!(w.h.stack.state(passive), Ok(expected), "setup {setup:?}");
    w.drain_events();
    w.check_stats();
    w
}

// =====================================================================
// Operations
// =====================================================================

/// A sequence or acknowledgment number relative to what the peer knows.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Exact,
    Near(i32),
    Far(u32),
}

fn pick_strategy() -> impl Strategy<Value = Pick> {
    prop_oneof![
        5 => Just(Pick::Exact),
        3 => (-3000i32..3000).prop_map(Pick::Near),
        2 => (-140_000i32..140_000).prop_map(Pick::Near),
        1 => any::<u32>().prop_map(Pick::Far),
    ]
}

fn resolve(base: SeqNum, p: Pick) -> SeqNum {
    match p {
        Pick::Exact => base,
        Pick::Near(d) => SeqNum(base.0.wrapping_add(d as u32)),
        Pick::Far(x) => SeqNum(x),
    }
}

#[derive(Debug, Clone)]
struct OptSpec {
    mss: Option<u16>,
    window_scale: Option<u8>,
    sack_permitted: bool,
    timestamps: Option<(u32, u32)>,
    sack: Vec<(Pick, u16)>,
}

fn opt_strategy() -> impl Strategy<Value = OptSpec> {
    let mss = prop_oneof![3 => Just(None), 1 => any::<u16>().prop_map(Some)];
    let ws = prop_oneof![3 => Just(None), 1 => (0u8..20).prop_map(Some)];
    let ts = prop_oneof![2 => Just(None), 1 => any::<(u32, u32)>().prop_map(Some)];
    let sack = prop::collection::vec((pick_strategy(), any::<u16>()), 0..4);
    (mss, ws, any::<bool>(), ts, sack).prop_map(|(mss, window_scale, sp, timestamps, sack)| {
        OptSpec {
            mss,
            window_scale,
            sack_permitted: sp,
            timestamps,
            sack,
        }
    })
}

fn flags_strategy() -> impl Strategy<Value = u8> {
    let f = |x: TcpFlags| x.bits();
    prop_oneof![
        6 => Just(f(TcpFlags::ACK)),
        3 => Just(f(TcpFlags::ACK | TcpFlags::PSH)),
        2 => Just(f(TcpFlags::ACK | TcpFlags::FIN)),
        2 => Just(f(TcpFlags::RST)),
        1 => Just(f(TcpFlags::RST | TcpFlags::ACK)),
        2 => Just(f(TcpFlags::SYN)),
        1 => Just(f(TcpFlags::SYN | TcpFlags::ACK)),
        1 => Just(f(TcpFlags::FIN)),
        1 => Just(0u8),
        2 => any::<u8>(),
    ]
}

#[derive(Debug, Clone)]
struct SegSpec {
    target: usize,
    seq: Pick,
    ack: Pick,
    flags: u8,
    window: u16,
    payload_len: usize,
    fill: u8,
    options: OptSpec,
}

fn seg_strategy() -> impl Strategy<Value = SegSpec> {
    let window = prop_oneof![3 => Just(65535u16), 1 => Just(0u16), 2 => any::<u16>()];
    let len = prop_oneof![4 => Just(0usize), 3 => 1usize..200, 2 => 200usize..1600];
    (
        0usize..16,
        pick_strategy(),
        pick_strategy(),
        flags_strategy(),
        window,
        len,
        any::<u8>(),
        opt_strategy(),
    )
        .prop_map(
            |(target, seq, ack, flags, window, payload_len, fill, options)| SegSpec {
                target,
                seq,
                ack,
                flags,
                window,
                payload_len,
                fill,
                options,
            },
        )
}

fn raw_strategy() -> impl Strategy<Value = RawSeg> {
    (
        0usize..16,
        pick_strategy(),
        pick_strategy(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        prop_oneof![3 => Just(None), 1 => (0u8..16).prop_map(Some)],
        prop::collection::vec(any::<u8>(), 0..44),
        prop::collection::vec(any::<u8>(), 0..64),
        prop_oneof![4 => Just(true), 1 => Just(false)],
    )
        .prop_map(
            |(target, seq, ack, flags, window, urgent, data_offset, options, payload, fix)| {
                RawSeg {
                    target,
                    seq,
                    ack,
                    flags,
                    window,
                    urgent,
                    data_offset,
                    options,
                    payload,
                    fix,
                }
            },
        )
}

#[derive(Debug, Clone)]
enum UserOp {
    Send(usize),
    Recv(usize),
    Shutdown,
    Close,
    Abort,
    Nodelay(bool),
    Keepalive(Option<(u8, u8, u8)>),
}

fn user_strategy() -> impl Strategy<Value = UserOp> {
    prop_oneof![
        4 => (1usize..6000).prop_map(UserOp::Send),
        4 => (1usize..6000).prop_map(UserOp::Recv),
        1 => Just(UserOp::Shutdown),
        1 => Just(UserOp::Close),
        1 => Just(UserOp::Abort),
        1 => any::<bool>().prop_map(UserOp::Nodelay),
        1 => prop::option::of((1u8..30, 1u8..10, 1u8..4)).prop_map(UserOp::Keepalive),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    /// Arbitrary bytes, optionally behind a valid Ethernet+IPv4 prefix.
    Bytes {
        prefix: bool,
        bytes: Vec<u8>,
    },
    /// A raw TCP header with arbitrary fields and option bytes.
    Raw(RawSeg),
    /// A well-formed segment whose bytes are then flipped / truncated.
    Mutated {
        seg: SegSpec,
        flips: Vec<(u16, u8)>,
        truncate: Option<u16>,
        fix: bool,
    },
    /// A well-formed segment.
    Seg(SegSpec),
    User {
        conn: usize,
        op: UserOp,
    },
    Accept,
    Connect,
    Advance(u32),
}

fn advance_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..1500).prop_map(Op::Advance),
        2 => (1500u32..30_000).prop_map(Op::Advance),
        1 => (30_000u32..400_000).prop_map(Op::Advance),
    ]
}

fn frame_ops() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), prop::collection::vec(any::<u8>(), 0..120))
            .prop_map(|(prefix, bytes)| Op::Bytes { prefix, bytes }),
        4 => raw_strategy().prop_map(Op::Raw),
        4 => (
            seg_strategy(),
            prop::collection::vec((any::<u16>(), 1u8..=255), 1..4),
            prop::option::of(any::<u16>()),
            any::<bool>(),
        )
            .prop_map(|(seg, flips, truncate, fix)| Op::Mutated { seg, flips, truncate, fix }),
        2 => seg_strategy().prop_map(Op::Seg),
        2 => (0usize..8, user_strategy()).prop_map(|(conn, op)| Op::User { conn, op }),
        2 => advance_strategy(),
    ]
}

fn segment_ops() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => seg_strategy().prop_map(Op::Seg),
        4 => (0usize..8, user_strategy()).prop_map(|(conn, op)| Op::User { conn, op }),
        1 => Just(Op::Accept),
        1 => Just(Op::Connect),
        3 => advance_strategy(),
    ]
}

impl World {
    fn target(&self, i: usize) -> (u16, u16) {
        self.tuples[i % self.tuples.len()]
    }

    fn seg_frame(&self, s: &SegSpec) -> Vec<u8> {
        let t = self.target(s.target);
        let v = self.view(t);
        let mut options = TcpOptions {
            mss: s.options.mss,
            window_scale: s.options.window_scale,
            sack_permitted: s.options.sack_permitted,
            timestamps: s
                .options
                .timestamps
                .map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
            ..TcpOptions::default()
        };
        for &(left, len) in &s.options.sack {
            let l = resolve(v.snd, left);
            options.sack_blocks.push(l, l + usize::from(len));
        }
        let payload: Vec<u8> = (0..s.payload_len)
            .map(|i| s.fill.wrapping_add(i as u8))
            .collect();
        tcp_frame(
            t.0,
            t.1,
            resolve(v.rcv, s.seq),
            resolve(v.snd, s.ack),
            s.flags,
            s.window,
            options,
            &payload,
        )
    }

    fn raw_frame(&self, r: &RawSeg) -> Vec<u8> {
        let t = self.target(r.target);
        let v = self.view(t);
        let opt_len = r.options.len().min(40) / 4 * 4;
        let mut tcp = Vec::with_capacity(20 + opt_len + r.payload.len());
        tcp.extend_from_slice(&t.0.to_be_bytes());
        tcp.extend_from_slice(&t.1.to_be_bytes());
        tcp.extend_from_slice(&resolve(v.rcv, r.seq).0.to_be_bytes());
        tcp.extend_from_slice(&resolve(v.snd, r.ack).0.to_be_bytes());
        let words = r.data_offset.unwrap_or(((20 + opt_len) / 4) as u8);
        tcp.push(words << 4);
        tcp.push(r.flags);
        tcp.extend_from_slice(&r.window.to_be_bytes());
        tcp.extend_from_slice(&[0, 0]);
        tcp.extend_from_slice(&r.urgent.to_be_bytes());
        tcp.extend_from_slice(&r.options[..opt_len]);
        tcp.extend_from_slice(&r.payload);
        let mut frame = ip_prefix(tcp.len());
        frame.extend_from_slice(&tcp);
        if r.fix {
            fix_checksums(&mut frame);
        }
        frame
    }

    fn conn(&self, i: usize) -> Option<ConnId> {
        if self.handles.is_empty() {
            None
        } else {
            Some(self.handles[i % self.handles.len()])
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Bytes { prefix, bytes } => {
                let mut frame = if *prefix {
                    ip_prefix(bytes.len())
                } else {
                    Vec::new()
                };
                frame.extend_from_slice(bytes);
                if *prefix {
                    fix_checksums(&mut frame);
                }
                self.receive(&frame);
            }
            Op::Raw(r) => {
                let f = self.raw_frame(r);
                self.receive(&f);
            }
            Op::Mutated {
                seg,
                flips,
                truncate,
                fix,
            } => {
                let mut f = self.seg_frame(seg);
                for &(at, x) in flips {
                    let i = usize::from(at) % f.len();
                    f[i] ^= x;
                }
                if let Some(n) = truncate {
                    f.truncate(usize::from(*n) % (f.len() + 1));
                }
                if *fix {
                    fix_checksums(&mut f);
                }
                self.receive(&f);
            }
            Op::Seg(s) => {
                let f = self.seg_frame(s);
                self.receive(&f);
            }
            Op::User { conn, op } => {
                let Some(c) = self.conn(*conn) else { return };
                self.user(c, op);
                self.poll();
            }
            Op::Accept => {
                if let Some(l) = self.listener {
                    while let Ok(c) = self.h.stack.accept(l) {
                        self.adopt(c);
                    }
                }
            }
            Op::Connect => {
                let port = self.next_peer_port;
                self.next_peer_port += 1;
                let r = self.h.stack.connect(
                    self.h.now,
                    SocketAddrV4::new(US_IP, 0),
                    SocketAddrV4::new(PEER_IP, port),
                    PEER_MAC,
                );
                self.poll();
                if let Ok(c) = r {
                    let local = self.h.stack.local_addr(c).expect("local address");
                    self.tuples.push((port, local.port()));
                    self.adopt(c);
                }
            }
            Op::Advance(ms) => self.advance(Duration::from_millis(u64::from(*ms))),
        }
        self.drain_events();
        self.check_stats();
    }

    fn user(&mut self, c: ConnId, op: &UserOp) {
        if let UserOp::Send(n) = op {
            let _ = self.write(c, *n);
            return;
        }
        let s = &mut self.h.stack;
        match op {
            UserOp::Send(_) => unreachable!(),
            UserOp::Recv(n) => {
                let mut buf = vec![0u8; *n];
                let r = s.recv(c, &mut buf);
                if let Ok(k) = r {
                    assert!(k <= *n);
                }
            }
            UserOp::Shutdown => {
                let _ = s.shutdown_write(c);
            }
            UserOp::Close => {
                if s.close(c).is_ok() {
                    self.released.insert(c);
                }
            }
            UserOp::Abort => {
                if s.abort(c).is_ok() {
                    self.released.insert(c);
                }
            }
            UserOp::Nodelay(on) => {
                let _ = s.set_nodelay(c, *on);
            }
            UserOp::Keepalive(k) => {
                let k = k.map(|(idle, intvl, count)| KeepaliveConfig {
                    idle: Duration::from_secs(u64::from(idle)),
                    interval: Duration::from_secs(u64::from(intvl)),
                    count: u32::from(count),
                });
                let _ = s.set_keepalive(c, k);
            }
        }
    }

    /// Closes everything and lets time run past every timer; the engine
    /// must end empty.
    fn finish(mut self) {
        if let Some(l) = self.listener {
            while let Ok(c) = self.h.stack.accept(l) {
                self.handles.push(c);
            }
        }
        self.drain_events();
        for c in std::mem::take(&mut self.handles) {
            match self.h.stack.close(c) {
                Ok(()) => {
                    self.released.insert(c);
                }
                Err(TcpError::InvalidHandle) => {}
                Err(e) => panic!("close failed: {e:?}"),
            }
            self.poll();
            self.drain_events();
        }
        if let Some(l) = self.listener.take() {
            self.h.stack.close_listener(l).expect("close listener");
        }
        self.poll();
        self.check_stats();
        // Longer than any retransmission give-up (15 backed-off RTOs capped
        // at 120 s), persist give-up, FIN-WAIT-2 timeout and 2·MSL.
        self.advance(Duration::from_secs(4 * 3600));
        self.drain_events();
        self.check_stats();
        let states: Vec<_> = self
            .tuples
            .iter()
            .filter_map(|&(p, l)| {
                let t = xdp_tcp::tcp::FourTuple {
                    local: SocketAddrV4::new(US_IP, l),
                    remote: SocketAddrV4::new(PEER_IP, p),
                };
                self.h.stack.state_of_tuple(&t).map(|s| (p, l, s))
            })
            .collect();
        assert_eq!(
            self.h.stack.connection_count(),
            0,
            "connections left after close and 4 h: {states:?}"
        );
        assert_eq!(self.h.stack.poll_at(), None, "a timer is left armed");
    }
}

/// The application's byte stream: byte `i` depends on `i`, so misplaced
/// or invented bytes are noticed.
fn stream_bytes(from: usize, n: usize) -> Vec<u8> {
    (from..from + n)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 8)) as u8)
        .collect()
}

/// Ethernet + IPv4 headers (checksum filled) for `tcp_len` bytes of TCP.
fn ip_prefix(tcp_len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + tcp_len);
    f.extend_from_slice(&US_MAC.0);
    f.extend_from_slice(&PEER_MAC.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + tcp_len).min(65535) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, IP_PROTO_TCP, 0, 0]);
    f.extend_from_slice(&PEER_IP.octets());
    f.extend_from_slice(&US_IP.octets());
    let c = fold(ones_sum(&f[14..34], 0));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

fn peer_iss_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => any::<u32>(),
        1 => (0u32..200_000).prop_map(|d| u32::MAX - d),
    ]
}

proptest! {
    #![proptest_config(proptest_config())]

    /// (1) Arbitrary frames: random bytes, raw headers, mutated segments.
    #[test]
    fn arbitrary_frames_never_panic_and_keep_invariants(
        features in any::<bool>(),
        small in any::<bool>(),
        peer_iss in peer_iss_strategy(),
        setup in setup_strategy(),
        ops in prop::collection::vec(frame_ops(), 1..60),
    ) {
        let mut w = build_world(features, small, peer_iss, setup);
        for op in &ops {
            w.run(op);
        }
        w.finish();
    }

    /// (2) Well-formed segments with random numbers, flags, payloads and
    /// options, user calls and time advances.
    #[test]
    fn arbitrary_segments_and_user_calls_never_panic_and_keep_invariants(
        features in any::<bool>(),
        small in any::<bool>(),
        peer_iss in peer_iss_strategy(),
        setup in setup_strategy(),
        ops in prop::collection::vec(segment_ops(), 1..80),
    ) {
        let mut w = build_world(features, small, peer_iss, setup);
        for op in &ops {
            w.run(op);
        }
        w.finish();
    }

    /// (3) Any permutation / duplication / subset of a stream's bytes
    /// (overlapping ranges, beyond-window ranges included), then the rest
    /// in order, delivers exactly the stream; RCV.NXT never decreases and
    /// never passes what was sent.
    #[test]
    fn reassembly_delivers_exactly_the_stream(
        peer_iss in peer_iss_strategy(),
        stream_len in 1usize..20_000,
        recv_buffer in prop_oneof![Just(1024usize), Just(4096), Just(65535)],
        pieces in prop::collection::vec((any::<u16>(), 1usize..=1460, any::<bool>()), 0..60),
        fin in any::<bool>(),
    ) {
        reassembly(peer_iss, stream_len, recv_buffer, &pieces, fin);
    }
}

fn reassembly(
    peer_iss: u32,
    stream_len: usize,
    recv_buffer: usize,
    pieces: &[(u16, usize, bool)],
    fin: bool,
) {
    let mut cfg = plain_config();
    cfg.tcp.recv_buffer = recv_buffer;
    let mut h = Harness::new(cfg);
    let l = h.stack.listen(us(), 4).expect("listen");
    let isn = SeqNum(peer_iss);
    let mut syn = Seg::syn(isn);
    syn.options.mss = Some(1460);
    h.send(syn);
    let iss = h.take_one().tcp.seq;
    h.send(Seg::ack(isn + 1, iss + 1));
    let c = h.stack.accept(l).expect("accept");
    h.take();

    let stream: Vec<u8> = (0..stream_len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_right(13) as u8)
        .collect();
    let base = isn + 1;
    let mut delivered: Vec<u8> = Vec::new();
    let mut acked = 0usize; // RCV.NXT - base, from the engine's ACKs
    let mut window = recv_buffer.min(65535);

    let absorb = |h: &mut Harness, acked: &mut usize, window: &mut usize| {
        for o in h.take() {
            assert!(o.flags().ack(), "{o:?}");
            assert!(!o.is_rst(), "{o:?}");
            let off = o.tcp.ack.wrapping_diff(base);
            assert!(
                off >= 0 && off as usize <= stream_len + 1,
                "ACK {:?} outside the stream",
                o.tcp.ack
            );
            assert!(
                off as usize >= *acked,
                "RCV.NXT moved back: {off} < {acked}"
            );
            *acked = off as usize;
            *window = usize::from(o.tcp.window);
        }
    };
    let read = |h: &mut Harness, delivered: &mut Vec<u8>| {
        let mut buf = [0u8; 8192];
        loop {
            match h.stack.recv(c, &mut buf) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(n) => delivered.extend_from_slice(&buf[..n]),
                Err(e) => panic!("recv: {e:?}"),
            }
        }
        h.poll();
    };

    // Phase 1: arbitrary pieces in arbitrary order.
    for &(start, len, read_now) in pieces {
        let start = usize::from(start) % stream_len;
        let end = (start + len).min(stream_len);
        h.send(Seg::data(base + start, iss + 1, &stream[start..end]));
        absorb(&mut h, &mut acked, &mut window);
        if read_now {
            read(&mut h, &mut delivered);
            absorb(&mut h, &mut acked, &mut window);
        }
        assert!(delivered.len() <= acked, "delivered beyond RCV.NXT");
    }
    // Phase 2: the rest, in order, within the advertised window.
    let mut rounds = 0;
    while acked < stream_len {
        rounds += 1;
        assert!(rounds < 10_000, "no progress at {acked}/{stream_len}");
        if window == 0 {
            read(&mut h, &mut delivered);
            absorb(&mut h, &mut acked, &mut window);
            if window == 0 {
                // Zero-window probe: elicits the current window.
                h.send(Seg::ack(base + acked - 1, iss + 1));
                absorb(&mut h, &mut acked, &mut window);
            }
            continue;
        }
        let end = (acked + window.min(1460)).min(stream_len);
        h.send(Seg::data(base + acked, iss + 1, &stream[acked..end]));
        absorb(&mut h, &mut acked, &mut window);
        read(&mut h, &mut delivered);
        absorb(&mut h, &mut acked, &mut window);
    }
    read(&mut h, &mut delivered);
    absorb(&mut h, &mut acked, &mut window);
    assert_eq!(delivered.len(), stream_len, "every byte once");
    assert!(delivered == stream, "bytes in order and unaltered");
    if fin {
        h.send(Seg::fin(base + stream_len, iss + 1));
        absorb(&mut h, &mut acked, &mut window);
        assert_eq!(acked, stream_len + 1, "the FIN is acknowledged");
        assert_eq!(h.stack.recv(c, &mut [0u8; 16]), Ok(0), "end of stream");
        assert_eq!(h.stack.state(c), Ok(State::CloseWait));
    }
}
