//! Header prediction (the fused fast path of `Stack::receive`) against the
//! full RFC 9293 §3.10.7.4 processing.
//!
//! Two identical worlds — a server stack with one established connection,
//! fed segments built here as its peer — run the same operations, one with
//! header prediction on and one with it off
//! (`Stack::set_header_prediction`). After every operation the server's
//! connection (`TcpInfo`: RCV.NXT-relative window, buffers, every counter,
//! the receiver's RTT estimate), the stack's counters, the events, the
//! bytes the application reads, every frame `poll` emits (so every ACK
//! decision, byte for byte) and the next timer deadline must be the same.
//!
//! The property test mixes in-order data with every kind of segment
//! prediction must refuse; the unit tests check that each of those really
//! takes the full path (`rx_predicted` does not move) and that ordinary
//! in-order data really takes the fast one.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use xdp_tcp::tcp::{
    ConnId, Event, Instant, KeepaliveConfig, Stack, StackConfig, StackStats, TcpConfig, TcpInfo,
};
use xdp_tcp::wire::{
    emit_tcp_frame, parse_tcp_frame, tcp_frame_len, EthernetRepr, Ipv4Repr, MacAddr, SeqNum,
    TcpFlags, TcpOptions, TcpRepr, Timestamps,
};

const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

/// The connection's configuration knobs that change what prediction sees.
#[derive(Debug, Clone, Copy)]
struct Variant {
    timestamps: bool,
    sack: bool,
    delayed_ack: bool,
    keepalive: bool,
    /// A receive buffer small enough for the window to fill.
    small_buffer: bool,
}

/// A server stack with one established connection, and what it takes to
/// write segments as its peer.
struct World {
    server: Stack,
    conn: ConnId,
    now: Instant,
    eth: EthernetRepr,
    ip: Ipv4Repr,
    /// The peer's first data segment, never delivered: ports, window and
    /// the timestamps the rest are built from.
    base: TcpRepr,
}

fn tcp_config(v: Variant) -> TcpConfig {
    TcpConfig {
        timestamps: v.timestamps,
        sack: v.sack,
        delayed_ack: if v.delayed_ack {
            Duration::from_millis(40)
        } else {
            Duration::ZERO
        },
        keepalive: v.keepalive.then(|| KeepaliveConfig {
            idle: Duration::from_secs(2),
            ..KeepaliveConfig::default()
        }),
        recv_buffer: if v.small_buffer { 8 * 1024 } else { 256 * 1024 },
        recv_buffer_max: if v.small_buffer {
            8 * 1024
        } else {
            4 * 1024 * 1024
        },
        ..TcpConfig::default()
    }
}

fn world(v: Variant, prediction: bool) -> World {
    let now = Instant::from_secs(10);
    let config = |mac| StackConfig {
        mac,
        tcp: tcp_config(v),
        max_connections: 16,
        ..StackConfig::default()
    };
    let mut client = Stack::new(config(CLIENT_MAC), [1; 32], now).unwrap();
    let mut server = Stack::new(config(SERVER_MAC), [2; 32], now).unwrap();
    server.set_header_prediction(prediction);
    let server_addr = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80);
    let listener = server.listen(server_addr, 16).unwrap();
    let c = client
        .connect(
            now,
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40_000),
            server_addr,
            SERVER_MAC,
        )
        .unwrap();
    for _ in 0..4 {
        let mut out: Vec<Vec<u8>> = Vec::new();
        client.poll(now, &mut out);
        for f in &out {
            server.receive(now, f);
        }
        let mut back: Vec<Vec<u8>> = Vec::new();
        server.poll(now, &mut back);
        for f in &back {
            client.receive(now, f);
        }
    }
    let conn = server.accept(listener).unwrap();
    while server.next_event().is_some() {}
    client.set_nodelay(c, true).unwrap();
    client.send(c, b"x").unwrap();
    let mut out: Vec<Vec<u8>> = Vec::new();
    client.poll(now, &mut out);
    let first = out.last().expect("the client's first data segment");
    let parsed = parse_tcp_frame(first, true).unwrap();
    World {
        server,
        conn,
        now,
        eth: parsed.eth,
        ip: parsed.ip,
        base: parsed.tcp,
    }
}

/// One operation of a test run.
#[derive(Debug, Clone)]
enum Op {
    /// The next in-order data segment, of `len` bytes.
    Data { len: usize, psh: bool },
    /// A data segment prediction must refuse.
    Odd(Odd, usize),
    /// The peer's timestamp clock ticks.
    Tick(u32),
    /// Virtual time passes.
    Advance(u64),
    /// The application reads up to this many bytes.
    Read(usize),
    /// The application writes this many bytes (the server then has data
    /// in flight, which prediction refuses until the peer acknowledges it).
    Write(usize),
    /// The peer's next segments acknowledge everything the server wrote.
    AckAll,
    /// The server flushes.
    Poll,
}

/// What makes a segment unpredictable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Odd {
    /// Sequence number past RCV.NXT.
    OutOfOrder,
    /// Already received.
    Duplicate,
    /// Starts far beyond the window.
    BeyondWindow,
    /// Carries a SACK block.
    Sack,
    Fin,
    Urg,
    Rst,
    Syn,
    /// A different window field.
    WindowChange,
    /// TSval older than TS.Recent (RFC 7323 §5.3 R1, PAWS).
    OldTimestamp,
    /// No timestamps option on a connection that negotiated them.
    NoTimestamp,
    /// No ACK flag.
    NoAck,
}

/// The peer's side of the conversation: what it has sent and acknowledged.
#[derive(Debug, Clone)]
struct Peer {
    next: SeqNum,
    ack: SeqNum,
    window: u16,
    tsval: u32,
    /// Bytes the server's application wrote (for `AckAll`).
    written: usize,
    /// The byte pattern: each segment's bytes are a function of their
    /// sequence number, so reads can be checked against the stream.
    base_seq: SeqNum,
}

impl Peer {
    fn new(w: &World) -> Peer {
        Peer {
            next: w.base.seq,
            ack: w.base.ack,
            window: w.base.window,
            tsval: w.base.options.timestamps.map_or(0, |t| t.tsval),
            written: 0,
            base_seq: w.base.seq,
        }
    }

    fn payload(&self, seq: SeqNum, len: usize) -> Vec<u8> {
        let off = seq.0.wrapping_sub(self.base_seq.0) as usize;
        (0..len).map(|i| ((off + i) % 251) as u8).collect()
    }
}

impl World {
    fn frame(&self, repr: &TcpRepr, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; tcp_frame_len(repr, payload.len())];
        let n = emit_tcp_frame(&mut buf, &self.eth, &self.ip, repr, payload, &[]);
        buf.truncate(n);
        buf
    }

    fn segment(&self, peer: &Peer, seq: SeqNum, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
        self.frame(&self.repr_at(peer, seq, flags), payload)
    }

    /// The frame `op` delivers, and the peer state after it.
    fn frame_for(&self, peer: &mut Peer, op: &Op) -> Option<Vec<u8>> {
        let ack_psh = TcpFlags::ACK | TcpFlags::PSH;
        match *op {
            Op::Data { len, psh } => {
                let flags = if psh { ack_psh } else { TcpFlags::ACK };
                let payload = peer.payload(peer.next, len);
                let f = self.segment(peer, peer.next, flags, &payload);
                peer.next += len;
                Some(f)
            }
            Op::Odd(odd, len) => Some(self.odd_frame(peer, odd, len)),
            _ => None,
        }
    }

    fn odd_frame(&self, peer: &mut Peer, odd: Odd, len: usize) -> Vec<u8> {
        let next = peer.next;
        let flags = TcpFlags::ACK | TcpFlags::PSH;
        let pattern = peer.clone();
        let payload = |seq: SeqNum| pattern.payload(seq, len);
        match odd {
            Odd::OutOfOrder => {
                let seq = next + (len + 1);
                self.segment(peer, seq, flags, &payload(seq))
            }
            Odd::Duplicate => {
                let seq = SeqNum(next.0.wrapping_sub(len as u32));
                self.segment(peer, seq, flags, &payload(seq))
            }
            Odd::BeyondWindow => {
                let seq = next + (1usize << 30);
                self.segment(peer, seq, flags, &payload(seq))
            }
            Odd::Sack => {
                let mut repr = self.repr_at(peer, next, flags);
                repr.options
                    .sack_blocks
                    .push(SeqNum(peer.ack.0.wrapping_sub(100)), peer.ack);
                let f = self.frame(&repr, &payload(next));
                peer.next = next + len;
                f
            }
            Odd::Fin => {
                let f = self.segment(peer, next, flags | TcpFlags::FIN, &payload(next));
                peer.next = next + (len + 1);
                f
            }
            Odd::Urg => {
                let mut repr = self.repr_at(peer, next, flags | TcpFlags::URG);
                repr.urgent = 1;
                let f = self.frame(&repr, &payload(next));
                peer.next = next + len;
                f
            }
            Odd::Rst => self.segment(peer, next, TcpFlags::RST, &[]),
            Odd::Syn => self.segment(peer, next, TcpFlags::SYN, &[]),
            Odd::WindowChange => {
                peer.window = peer.window.wrapping_add(1).max(1);
                let f = self.segment(peer, next, flags, &payload(next));
                peer.next = next + len;
                f
            }
            Odd::OldTimestamp => {
                let mut repr = self.repr_at(peer, next, flags);
                if let Some(ts) = repr.options.timestamps.as_mut() {
                    ts.tsval = ts.tsval.wrapping_sub(1000);
                }
                let f = self.frame(&repr, &payload(next));
                if self.base.options.timestamps.is_none() {
                    // Without timestamps there is nothing to reject.
                    peer.next = next + len;
                }
                f
            }
            Odd::NoTimestamp => {
                let mut repr = self.repr_at(peer, next, flags);
                repr.options.timestamps = None;
                let f = self.frame(&repr, &payload(next));
                peer.next = next + len;
                f
            }
            Odd::NoAck => self.segment(peer, next, TcpFlags::PSH, &payload(next)),
        }
    }

    fn repr_at(&self, peer: &Peer, seq: SeqNum, flags: TcpFlags) -> TcpRepr {
        TcpRepr {
            seq,
            ack: peer.ack,
            flags,
            window: peer.window,
            urgent: 0,
            options: TcpOptions {
                timestamps: self.base.options.timestamps.map(|t| Timestamps {
                    tsval: peer.tsval,
                    tsecr: t.tsecr,
                }),
                ..TcpOptions::default()
            },
            ..self.base
        }
    }

    /// Runs one operation; returns what it observably produced.
    fn run(&mut self, peer: &mut Peer, op: &Op) -> Observed {
        let mut observed = Observed::default();
        if let Some(f) = self.frame_for(peer, op) {
            self.server.receive(self.now, &f);
        }
        match *op {
            Op::Tick(n) => peer.tsval = peer.tsval.wrapping_add(n),
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                let mut out: Vec<Vec<u8>> = Vec::new();
                self.server.poll(self.now, &mut out);
                observed.frames = out;
            }
            Op::Read(max) => {
                let mut buf = vec![0u8; max];
                observed.read = Some(self.server.recv(self.conn, &mut buf).map(|n| {
                    buf.truncate(n);
                    buf
                }));
            }
            Op::Write(n) => {
                let r = self.server.send(self.conn, &vec![0x77; n]);
                if let Ok(n) = r {
                    peer.written += n;
                }
                observed.write = Some(r);
            }
            Op::AckAll => {
                peer.ack = self.base.ack + peer.written;
            }
            Op::Poll => {
                let mut out: Vec<Vec<u8>> = Vec::new();
                self.server.poll(self.now, &mut out);
                observed.frames = out;
                observed.poll_at = Some(self.server.poll_at());
            }
            _ => {}
        }
        while let Some(e) = self.server.next_event() {
            observed.events.push(e);
        }
        observed.info = self.server.info(self.conn).ok();
        observed.stats = StackStats {
            rx_predicted: 0,
            ..*self.server.stats()
        };
        observed
    }
}

/// Everything an operation shows from outside.
#[derive(Debug, Default, PartialEq)]
struct Observed {
    frames: Vec<Vec<u8>>,
    read: Option<Result<Vec<u8>, xdp_tcp::tcp::TcpError>>,
    write: Option<Result<usize, xdp_tcp::tcp::TcpError>>,
    poll_at: Option<Option<Instant>>,
    events: Vec<Event>,
    info: Option<TcpInfo>,
    stats: StackStats,
}

/// Runs `ops` with prediction on and off; every step must look the same.
/// Returns the predicted world's `rx_predicted`.
fn same_with_and_without(v: Variant, ops: &[Op]) -> Result<u64, TestCaseError> {
    let mut fast = world(v, true);
    let mut full = world(v, false);
    let mut fast_peer = Peer::new(&fast);
    let mut full_peer = Peer::new(&full);
    for (i, op) in ops.iter().enumerate() {
        let a = fast.run(&mut fast_peer, op);
        let b = full.run(&mut full_peer, op);
        prop_assert_eq!(a, b, "step {}: {:?}", i, op);
    }
    prop_assert_eq!(full.server.stats().rx_predicted, 0);
    Ok(fast.server.stats().rx_predicted)
}

fn variant_strategy() -> impl Strategy<Value = Variant> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(timestamps, sack, delayed_ack, keepalive, small_buffer)| Variant {
                timestamps,
                sack,
                delayed_ack,
                keepalive,
                small_buffer,
            },
        )
}

/// Every kind of segment header prediction must refuse.
const EVERY_ODD: [Odd; 12] = [
    Odd::OutOfOrder,
    Odd::Duplicate,
    Odd::BeyondWindow,
    Odd::Sack,
    Odd::Fin,
    Odd::Urg,
    Odd::Rst,
    Odd::Syn,
    Odd::WindowChange,
    Odd::OldTimestamp,
    Odd::NoTimestamp,
    Odd::NoAck,
];

fn odd_strategy() -> impl Strategy<Value = Odd> {
    prop::sample::select(EVERY_ODD.to_vec())
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (1usize..=1448, any::<bool>()).prop_map(|(len, psh)| Op::Data { len, psh }),
        2 => (odd_strategy(), 1usize..=1448).prop_map(|(o, len)| Op::Odd(o, len)),
        2 => (0u32..3).prop_map(Op::Tick),
        2 => (0u64..100).prop_map(Op::Advance),
        3 => (0usize..20_000).prop_map(Op::Read),
        1 => (1usize..3000).prop_map(Op::Write),
        1 => Just(Op::AckAll),
        4 => Just(Op::Poll),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random operations, mostly in-order data: the fast path and the full
    /// path leave the same state and send the same frames.
    #[test]
    fn fast_path_matches_full_path(
        v in variant_strategy(),
        ops in proptest::collection::vec(op_strategy(), 1..80),
    ) {
        same_with_and_without(v, &ops)?;
    }

    /// Only in-order data, reads and flushes: the common case of a bulk
    /// receiver, every segment of it predicted.
    #[test]
    fn in_order_stream_is_predicted_and_matches(
        v in variant_strategy(),
        lens in proptest::collection::vec((1usize..=1448, any::<bool>(), 0usize..4), 1..60),
    ) {
        let v = Variant { small_buffer: false, ..v };
        let mut ops = Vec::new();
        for (len, psh, then) in &lens {
            ops.push(Op::Data { len: *len, psh: *psh });
            match then {
                0 => ops.push(Op::Poll),
                1 => ops.push(Op::Read(4096)),
                2 => ops.push(Op::Tick(1)),
                _ => {}
            }
        }
        let predicted = same_with_and_without(v, &ops)?;
        prop_assert_eq!(predicted, lens.len() as u64);
    }
}

const PLAIN: Variant = Variant {
    timestamps: true,
    sack: true,
    delayed_ack: true,
    keepalive: false,
    small_buffer: false,
};

/// Two in-order segments, then `odd`: the first two are predicted, `odd`
/// is not, and both paths agree on all three.
fn refused(v: Variant, odd: Odd) {
    let ops = [
        Op::Data {
            len: 1000,
            psh: false,
        },
        Op::Data {
            len: 1448,
            psh: true,
        },
        Op::Odd(odd, 500),
        Op::Poll,
    ];
    let predicted = same_with_and_without(v, &ops).unwrap();
    assert_eq!(predicted, 2, "{odd:?} must take the full path");
}

#[test]
fn each_disqualifying_condition_takes_the_full_path() {
    for odd in EVERY_ODD {
        refused(PLAIN, odd);
    }
}

#[test]
fn paws_rejection_is_counted_once_by_the_full_path() {
    let mut w = world(PLAIN, true);
    let mut peer = Peer::new(&w);
    w.run(&mut peer, &Op::Tick(5));
    w.run(
        &mut peer,
        &Op::Data {
            len: 100,
            psh: true,
        },
    );
    let o = w.run(&mut peer, &Op::Odd(Odd::OldTimestamp, 100));
    let info = o.info.unwrap();
    assert_eq!(info.stats.paws_rejected, 1);
    assert_eq!(info.stats.bytes_received, 100);
    assert_eq!(w.server.stats().rx_predicted, 1);
}

#[test]
fn data_in_flight_disqualifies_until_acknowledged() {
    // The server has unacknowledged data out: the peer's segments
    // acknowledge nothing new (SEG.ACK = SND.UNA < SND.NXT), a case for the
    // sender's machinery. Once acknowledged, prediction resumes.
    let ops = [
        Op::Write(100),
        Op::Poll,
        Op::Data {
            len: 200,
            psh: true,
        },
        Op::AckAll,
        Op::Data {
            len: 200,
            psh: true,
        },
        Op::Data {
            len: 200,
            psh: true,
        },
        Op::Poll,
    ];
    let predicted = same_with_and_without(PLAIN, &ops).unwrap();
    // The ACK of the written data advances SND.UNA (full path); the last is predicted.
    assert_eq!(predicted, 1);
}

#[test]
fn a_full_window_disqualifies() {
    // 8 KiB buffer, nobody reads: the segment that no longer fits takes
    // the full path (which stores what fits and drops the rest).
    let v = Variant {
        small_buffer: true,
        ..PLAIN
    };
    let mut ops = Vec::new();
    for _ in 0..8 {
        ops.push(Op::Data {
            len: 1448,
            psh: false,
        });
        ops.push(Op::Poll);
    }
    let predicted = same_with_and_without(v, &ops).unwrap();
    assert!(predicted < 8, "{predicted} of 8 predicted");
    assert!(predicted >= 4, "{predicted} of 8 predicted");
}

#[test]
fn every_variant_predicts_plain_in_order_data() {
    for bits in 0..16u8 {
        let v = Variant {
            timestamps: bits & 1 != 0,
            sack: bits & 2 != 0,
            delayed_ack: bits & 4 != 0,
            keepalive: bits & 8 != 0,
            small_buffer: false,
        };
        let ops: Vec<Op> = (0..10)
            .flat_map(|i| {
                [
                    Op::Data {
                        len: 1448,
                        psh: i % 3 == 0,
                    },
                    Op::Advance(1),
                    Op::Read(1 << 16),
                ]
            })
            .collect();
        let predicted = same_with_and_without(v, &ops).unwrap();
        assert_eq!(predicted, 10, "{v:?}");
    }
}
