//! TIME-WAIT connections nobody holds live on as compact records
//! (`tcp::time_wait`), outside the connection table.
//!
//! 1. The record behaves as the connection did: two stacks, one keeping
//!    whole connections in TIME-WAIT (`set_compact_time_wait(false)`),
//!    are driven into TIME-WAIT identically and then fed the same
//!    arbitrary segments (every flag mix, sequence and acknowledgment
//!    numbers at, near and far from the edges, text, stale, current and
//!    newer timestamps, SYNs that may reopen the tuple) and time steps
//!    past 2·MSL; every reply, byte for byte in its TCP header and
//!    options, and the tuple's state must agree (RFC 9293 §3.10.7.4, RFC
//!    5961, RFC 7323 §5, RFC 6191).
//! 2. A server that closes first keeps accepting beyond
//!    `max_connections` closes per 2·MSL: its TIME-WAITs no longer take
//!    connection slots (they did: the control run shows the SYNs dropped).
//! 3. `max_time_wait` bounds the records; beyond it a connection closes
//!    without TIME-WAIT, counted, as Linux's time-wait bucket overflow.
//! 4. Expiry after 2·MSL, restarted by a retransmitted FIN.
//! 5. RFC 6191: a SYN with a newer timestamp reopens the tuple whatever
//!    its sequence number; one with an older timestamp does not.
//!
//! An orphaned FIN-WAIT-2 (the peer has not sent its FIN yet) takes a
//! record too; (1) and (2) cover it as well.
mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use xdp_tcp::tcp::{ConnId, StackConfig, State};
use xdp_tcp::wire::{SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps};

const MSL: Duration = Duration::from_secs(2);
/// How long an orphan waits in FIN-WAIT-2 for the peer's FIN: longer
/// than 2·MSL, so a FIN that ends FIN-WAIT-2 moves the deadline earlier.
const FIN_WAIT2: Duration = Duration::from_secs(6);
/// The peer's timestamp clock at the start (ticks of 1 ms from here).
const PEER_TS: u32 = 7_000;

fn config(features: bool) -> StackConfig {
    let mut c = plain_config();
    c.tcp.msl = MSL;
    c.tcp.fin_wait2_timeout = FIN_WAIT2;
    if features {
        c.tcp.timestamps = true;
        c.tcp.sack = true;
        c.tcp.window_scaling = true;
    }
    c
}

/// One side of the comparison: a stack with a passively opened
/// connection that the user closed and the peer acknowledged, now in
/// FIN-WAIT-2, or that the peer finished too, now in TIME-WAIT.
struct Side {
    h: Harness,
    /// Our SND.NXT and RCV.NXT.
    snd_nxt: SeqNum,
    rcv_nxt: SeqNum,
    /// TS.Recent as the peer last sent it.
    peer_tsval: u32,
    /// Our last TSval seen, for the peer's TSecr.
    our_tsval: u32,
}

impl Side {
    fn peer_options(&self, features: bool, tsval: u32) -> TcpOptions {
        TcpOptions {
            timestamps: features.then_some(Timestamps {
                tsval,
                tsecr: self.our_tsval,
            }),
            ..TcpOptions::default()
        }
    }

    fn into_time_wait(features: bool, compact: bool, text: usize) -> Side {
        let mut side = Side::into_fin_wait2(features, compact, text);
        let opts = side.peer_options(features, PEER_TS + 4);
        side.h
            .send(Seg::fin(side.rcv_nxt, side.snd_nxt).with_options(opts));
        side.peer_tsval = PEER_TS + 4;
        side.rcv_nxt += 1;
        let ack = side.h.take_one();
        assert!(ack.is_pure_ack());
        assert_eq!(ack.tcp.ack, side.rcv_nxt);
        side.see(&ack);
        assert_eq!(side.h.state(), Some(State::TimeWait));
        assert_eq!(side.h.stack.time_wait_records(), usize::from(compact));
        side
    }

    fn into_fin_wait2(features: bool, compact: bool, text: usize) -> Side {
        let mut h = Harness::new(config(features));
        h.stack.set_compact_time_wait(compact);
        let l = h.stack.listen(us(), 16).expect("listen");
        let syn_options = TcpOptions {
            mss: Some(1460),
            window_scale: features.then_some(7),
            sack_permitted: features,
            timestamps: features.then_some(Timestamps {
                tsval: PEER_TS,
                tsecr: 0,
            }),
            ..TcpOptions::default()
        };
        h.send(Seg::syn(PEER_ISS).with_options(syn_options));
        let synack = h.take_one();
        let iss = synack.tcp.seq;
        let mut side = Side {
            h,
            snd_nxt: iss + 1,
            rcv_nxt: PEER_ISS + 1,
            peer_tsval: PEER_TS,
            our_tsval: synack.tcp.options.timestamps.map_or(0, |t| t.tsval),
        };
        let opts = side.peer_options(features, PEER_TS + 1);
        side.h
            .send(Seg::ack(side.rcv_nxt, side.snd_nxt).with_options(opts));
        let c = side.h.stack.accept(l).expect("accept");
        if text > 0 {
            let opts = side.peer_options(features, PEER_TS + 2);
            let data = vec![0x5a; text];
            side.h
                .send(Seg::data(side.rcv_nxt, side.snd_nxt, &data).with_options(opts));
            side.rcv_nxt += text;
            let mut buf = vec![0; text];
            assert_eq!(side.h.stack.recv(c, &mut buf), Ok(text));
        }
        side.h.take();
        // Our FIN, its ACK, then the peer's FIN.
        side.h.stack.close(c).expect("close");
        side.h.poll();
        let fin = side.h.take_one();
        assert!(fin.flags().fin());
        side.see(&fin);
        side.snd_nxt += 1;
        let opts = side.peer_options(features, PEER_TS + 3);
        side.h
            .send(Seg::ack(side.rcv_nxt, side.snd_nxt).with_options(opts));
        side.peer_tsval = PEER_TS + 3;
        side.h.expect_silence();
        assert_eq!(side.h.state(), Some(State::FinWait2));
        assert_eq!(side.h.stack.time_wait_records(), usize::from(compact));
        side
    }

    fn see(&mut self, out: &Out) {
        if let Some(ts) = out.tcp.options.timestamps {
            self.our_tsval = ts.tsval;
        }
    }
}

/// A number relative to an edge.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Exact,
    Near(i16),
    Far(u32),
}

fn pick(base: SeqNum, p: Pick) -> SeqNum {
    match p {
        Pick::Exact => base,
        Pick::Near(d) => SeqNum(base.0.wrapping_add(d as i32 as u32)),
        Pick::Far(x) => SeqNum(base.0.wrapping_add(x)),
    }
}

fn pick_strategy() -> impl Strategy<Value = Pick> {
    prop_oneof![
        4 => Just(Pick::Exact),
        4 => (-3i16..=3).prop_map(Pick::Near),
        2 => any::<i16>().prop_map(Pick::Near),
        1 => any::<u32>().prop_map(Pick::Far),
    ]
}

/// A segment from the peer, relative to the TIME-WAIT's edges.
#[derive(Debug, Clone)]
struct SegSpec {
    seq: Pick,
    ack: Pick,
    flags: u8,
    window: u16,
    text: usize,
    /// TSval relative to the peer's last: stale, same, newer; None: no option.
    tsval: Option<i32>,
}

#[derive(Debug, Clone)]
enum Op {
    Segment(SegSpec),
    Advance(Duration),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        3 => Just(TcpFlags::ACK.bits()),
        2 => Just((TcpFlags::ACK | TcpFlags::FIN).bits()),
        1 => Just(TcpFlags::RST.bits()),
        1 => Just((TcpFlags::RST | TcpFlags::ACK).bits()),
        1 => Just(TcpFlags::SYN.bits()),
        1 => Just((TcpFlags::SYN | TcpFlags::ACK).bits()),
        1 => Just(TcpFlags::FIN.bits()),
        1 => any::<u8>(),
    ];
    let segment = (
        pick_strategy(),
        pick_strategy(),
        flags,
        prop_oneof![Just(65535u16), any::<u16>()],
        prop_oneof![3 => Just(0usize), 1 => 1usize..40],
        prop_oneof![
            Just(None),
            Just(Some(0i32)),
            (-5i32..=5).prop_map(Some),
            any::<i32>().prop_map(Some),
        ],
    )
        .prop_map(|(seq, ack, flags, window, text, tsval)| {
            Op::Segment(SegSpec {
                seq,
                ack,
                flags,
                window,
                text,
                tsval,
            })
        });
    prop_oneof![
        6 => segment,
        1 => (0u64..7_000).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
    ]
}

/// What a reply carries, without what only a frame has (MACs, IP ident).
fn replies(outs: Vec<Out>) -> Vec<(TcpRepr, Vec<u8>)> {
    outs.into_iter().map(|o| (o.tcp, o.payload)).collect()
}

impl Side {
    fn run(&mut self, features: bool, op: &Op) -> Vec<(TcpRepr, Vec<u8>)> {
        match op {
            Op::Segment(s) => {
                let ts = s.tsval.filter(|_| features).map(|d| Timestamps {
                    tsval: self.peer_tsval.wrapping_add(d as u32),
                    tsecr: self.our_tsval,
                });
                let seg = Seg::new(pick(self.rcv_nxt, s.seq), TcpFlags(s.flags))
                    .with_ack(pick(self.snd_nxt, s.ack))
                    .with_window(s.window)
                    .with_options(TcpOptions {
                        timestamps: ts,
                        ..TcpOptions::default()
                    })
                    .with_payload(&vec![0xc3; s.text]);
                self.h.send(seg);
            }
            Op::Advance(d) => self.h.advance(*d),
        }
        let outs = self.h.take();
        for o in &outs {
            self.see(o);
        }
        replies(outs)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// (1) The compact record answers every segment as the whole
    /// connection in TIME-WAIT or orphaned FIN-WAIT-2 does.
    #[test]
    fn a_record_answers_as_the_connection_did(
        features in any::<bool>(),
        fin_wait2 in any::<bool>(),
        text in prop_oneof![Just(0usize), 1usize..2000],
        ops in prop::collection::vec(op_strategy(), 1..40),
    ) {
        let open = if fin_wait2 { Side::into_fin_wait2 } else { Side::into_time_wait };
        let mut compact = open(features, true, text);
        let mut whole = open(features, false, text);
        for (i, op) in ops.iter().enumerate() {
            let a = compact.run(features, op);
            let b = whole.run(features, op);
            prop_assert_eq!(&a, &b, "replies differ at op {} ({:?})", i, op);
            prop_assert_eq!(compact.h.state(), whole.h.state(), "state differs at op {}", i);
            prop_assert_eq!(
                compact.h.stack.connection_count(),
                whole.h.stack.connection_count(),
                "connection count differs at op {}", i
            );
        }
        // Both end, with nothing armed.
        compact.h.advance(MSL * 3);
        whole.h.advance(MSL * 3);
        prop_assert_eq!(replies(compact.h.take()), replies(whole.h.take()));
        prop_assert_eq!(compact.h.stack.time_wait_records(), 0);
    }
}

/// Accepts one connection from `peer_port`, echoes nothing, closes it
/// first and lets the peer finish: the server ends in TIME-WAIT.
/// Returns false if the server did not answer the SYN.
fn serve_and_close_first(h: &mut Harness, l: xdp_tcp::tcp::ListenerId, peer_port: u16) -> bool {
    serve_and_close(h, l, peer_port, true).is_some()
}

/// As [`serve_and_close_first`]; without `peer_fin` the peer only
/// acknowledges our FIN, and the server waits in FIN-WAIT-2. Returns the
/// server's SND.NXT, None if it did not answer the SYN.
fn serve_and_close(
    h: &mut Harness,
    l: xdp_tcp::tcp::ListenerId,
    peer_port: u16,
    peer_fin: bool,
) -> Option<SeqNum> {
    h.send(Seg::syn(PEER_ISS).with_src_port(peer_port));
    let out = h.take();
    let synack = out.first()?;
    let iss = synack.tcp.seq;
    h.send(Seg::ack(PEER_ISS + 1, iss + 1).with_src_port(peer_port));
    let c: ConnId = h.stack.accept(l).expect("accept");
    h.stack.close(c).expect("close");
    h.poll();
    let fin = h.take_one();
    assert!(fin.flags().fin());
    if peer_fin {
        h.send(Seg::fin(PEER_ISS + 1, iss + 2).with_src_port(peer_port));
        let ack = h.take_one();
        assert!(ack.is_pure_ack());
    } else {
        h.send(Seg::ack(PEER_ISS + 1, iss + 2).with_src_port(peer_port));
        h.expect_silence();
    }
    h.events();
    Some(iss + 2)
}

fn closing_server(compact: bool, max_connections: usize, max_time_wait: usize) -> Harness {
    let mut c = config(false);
    c.max_connections = max_connections;
    c.max_time_wait = max_time_wait;
    let mut h = Harness::new(c);
    h.stack.set_compact_time_wait(compact);
    h
}

/// (2) 200 connections closed by the server within one 2·MSL, on a stack
/// that holds 16 connections.
#[test]
fn a_server_that_closes_first_keeps_accepting_beyond_max_connections() {
    const CLOSES: u16 = 200;
    const SLOTS: usize = 16;
    // Control: TIME-WAITs kept whole fill the table and SYNs are dropped.
    let mut whole = closing_server(false, SLOTS, 1000);
    let l = whole.stack.listen(us(), 64).unwrap();
    let served = (0..CLOSES)
        .filter(|&i| serve_and_close_first(&mut whole, l, 20_000 + i))
        .count();
    assert_eq!(served, SLOTS, "the control should fill its table");
    assert_eq!(
        whole.stack.stats().listen_drops,
        u64::from(CLOSES) - SLOTS as u64
    );

    let mut compact = closing_server(true, SLOTS, 1000);
    let l = compact.stack.listen(us(), 64).unwrap();
    for i in 0..CLOSES {
        assert!(
            serve_and_close_first(&mut compact, l, 20_000 + i),
            "SYN {i} dropped"
        );
    }
    assert_eq!(compact.stack.stats().listen_drops, 0);
    assert_eq!(compact.stack.time_wait_records(), usize::from(CLOSES));
    assert_eq!(compact.stack.connection_count(), usize::from(CLOSES));
    assert_eq!(compact.stack.busy_connections(), 0);
    // Each tuple answers as TIME-WAIT: a retransmitted FIN is acknowledged.
    compact.send(Seg::fin(PEER_ISS + 1, SeqNum(0)).with_src_port(20_007));
    let ack = compact.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(ack.tcp.ack, PEER_ISS + 2);
    // 2·MSL later every record is gone, and nothing is left armed.
    compact.advance(MSL * 2 + Duration::from_millis(10));
    assert_eq!(compact.stack.time_wait_records(), 0);
    assert_eq!(compact.stack.connection_count(), 0);
    assert_eq!(compact.stack.poll_at(), None);
    assert_eq!(
        compact.stack.stats().connections_closed,
        u64::from(CLOSES),
        "{:?}",
        compact.stack.stats()
    );
}

/// (2) ... and when the peers do not close at all: the orphans wait in
/// FIN-WAIT-2 as records, count as busy, and reset their peers when they
/// give up (Linux's tcp_fin_timeout).
#[test]
fn a_server_whose_peers_never_close_keeps_accepting_beyond_max_connections() {
    const CLOSES: u16 = 200;
    const SLOTS: usize = 16;
    let mut whole = closing_server(false, SLOTS, 1000);
    let l = whole.stack.listen(us(), 64).unwrap();
    let served = (0..CLOSES)
        .filter(|&i| serve_and_close(&mut whole, l, 20_000 + i, false).is_some())
        .count();
    assert_eq!(served, SLOTS, "the control should fill its table");

    let mut compact = closing_server(true, SLOTS, 1000);
    let l = compact.stack.listen(us(), 64).unwrap();
    let mut snd_nxt = Vec::new();
    for i in 0..CLOSES {
        let nxt = serve_and_close(&mut compact, l, 20_000 + i, false);
        snd_nxt.push(nxt.unwrap_or_else(|| panic!("SYN {i} dropped")));
    }
    assert_eq!(compact.stack.time_wait_records(), usize::from(CLOSES));
    assert_eq!(compact.stack.busy_connections(), usize::from(CLOSES));
    let tuple = |port| xdp_tcp::tcp::FourTuple {
        local: us(),
        remote: std::net::SocketAddrV4::new(PEER_IP, port),
    };
    assert_eq!(
        compact.stack.state_of_tuple(&tuple(20_007)),
        Some(State::FinWait2)
    );
    // One peer finishes late: its tuple moves on to TIME-WAIT.
    compact.send(Seg::fin(PEER_ISS + 1, snd_nxt[7]).with_src_port(20_007));
    assert!(compact.take_one().is_pure_ack());
    assert_eq!(
        compact.stack.state_of_tuple(&tuple(20_007)),
        Some(State::TimeWait)
    );
    // Its TIME-WAIT ends after 2·MSL, before the others' FIN-WAIT-2
    // timeout; then they time out with a RST each.
    compact.advance(MSL * 2 + Duration::from_millis(10));
    assert_eq!(compact.stack.state_of_tuple(&tuple(20_007)), None);
    assert_eq!(compact.stack.time_wait_records(), usize::from(CLOSES) - 1);
    compact.expect_silence();
    compact.advance(FIN_WAIT2);
    let out = compact.take();
    assert_eq!(out.len(), usize::from(CLOSES) - 1);
    assert!(out.iter().all(|o| o.is_rst()), "{out:?}");
    assert_eq!(compact.stack.busy_connections(), 0);
    assert_eq!(compact.stack.connection_count(), 0);
    assert_eq!(compact.stack.poll_at(), None);
}

/// (3) With `max_time_wait` records held, the next connection closes at
/// once (its FIN still acknowledged) and its tuple is free: a late
/// segment for it is answered with a RST.
#[test]
fn beyond_max_time_wait_a_connection_closes_without_time_wait() {
    let mut h = closing_server(true, 64, 3);
    let l = h.stack.listen(us(), 64).unwrap();
    for i in 0..5 {
        assert!(serve_and_close_first(&mut h, l, 30_000 + i));
    }
    assert_eq!(h.stack.time_wait_records(), 3);
    assert_eq!(h.stack.stats().time_wait_overflow, 2);
    assert_eq!(h.stack.connection_count(), 3);
    // The fifth tuple has no TIME-WAIT: its retransmitted FIN finds nothing.
    h.send(Seg::fin(PEER_ISS + 1, SeqNum(12345)).with_src_port(30_004));
    let rst = h.take_one();
    assert!(rst.is_rst(), "{rst:?}");
    // The first is still in TIME-WAIT.
    h.send(Seg::fin(PEER_ISS + 1, SeqNum(12345)).with_src_port(30_000));
    assert!(h.take_one().is_pure_ack());
    // 0 keeps none at all.
    let mut none = closing_server(true, 64, 0);
    let l = none.stack.listen(us(), 64).unwrap();
    assert!(serve_and_close_first(&mut none, l, 30_000));
    assert_eq!(none.stack.connection_count(), 0);
    assert_eq!(none.stack.stats().time_wait_overflow, 1);
}

/// (4) RFC 9293 §3.10.7.4: a retransmitted FIN restarts the 2·MSL
/// timeout of a record, which otherwise ends on time.
#[test]
fn a_retransmitted_fin_restarts_a_records_two_msl() {
    let mut side = Side::into_time_wait(true, true, 0);
    side.h.advance(MSL * 2 - Duration::from_millis(100));
    assert_eq!(side.h.state(), Some(State::TimeWait));
    let fin = Seg::fin(side.rcv_nxt - 1, side.snd_nxt).with_options(TcpOptions {
        timestamps: Some(Timestamps {
            tsval: side.peer_tsval + 1,
            tsecr: side.our_tsval,
        }),
        ..TcpOptions::default()
    });
    side.h.send(fin);
    let ack = side.h.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(ack.tcp.ack, side.rcv_nxt);
    assert!(ack.tcp.options.timestamps.is_some());
    // The old deadline passes: still there.
    side.h.advance(Duration::from_millis(500));
    assert_eq!(side.h.state(), Some(State::TimeWait));
    // 2·MSL after the FIN: gone.
    side.h.advance(MSL * 2);
    assert_eq!(side.h.state(), None);
    assert_eq!(side.h.stack.time_wait_records(), 0);
    assert_eq!(side.h.stack.poll_at(), None);
}

/// A SYN from the peer on the TIME-WAIT tuple with the given sequence
/// number and TSval.
fn syn_with_timestamp(seq: SeqNum, tsval: u32) -> Seg {
    Seg::syn(seq).with_options(TcpOptions {
        mss: Some(1460),
        sack_permitted: true,
        window_scale: Some(7),
        timestamps: Some(Timestamps { tsval, tsecr: 0 }),
        ..TcpOptions::default()
    })
}

/// (5) RFC 6191 §2: with timestamps on both incarnations, a SYN whose
/// TSval is newer than TS.Recent reopens the tuple even below RCV.NXT (a
/// client's ISN is not monotonic per tuple; its timestamps are); the new
/// ISS lies above the old sequence space.
#[test]
fn a_syn_with_a_newer_timestamp_reopens_time_wait_below_rcv_nxt() {
    for compact in [true, false] {
        let mut side = Side::into_time_wait(true, compact, 100);
        side.h.advance(Duration::from_millis(300));
        let seq = side.rcv_nxt - 50_000;
        side.h.send(syn_with_timestamp(seq, side.peer_tsval + 300));
        let synack = side.h.take_one();
        assert_eq!(
            synack.flags(),
            TcpFlags::SYN | TcpFlags::ACK,
            "compact {compact}"
        );
        assert_eq!(synack.tcp.ack, seq + 1);
        assert_eq!(synack.tcp.seq, side.snd_nxt + 65537);
        assert_eq!(side.h.state(), Some(State::SynReceived));
        assert_eq!(side.h.stack.stats().time_wait_recycled, 1);
        assert_eq!(side.h.stack.time_wait_records(), 0);
    }
}

/// ... and one whose TSval is older does not, whatever its sequence
/// number: PAWS answers it with an ACK and TIME-WAIT goes on.
#[test]
fn a_syn_with_an_older_timestamp_leaves_time_wait_alone() {
    for compact in [true, false] {
        let mut side = Side::into_time_wait(true, compact, 0);
        side.h.send(syn_with_timestamp(
            side.rcv_nxt + 1_000_000,
            side.peer_tsval - 1,
        ));
        let ack = side.h.take_one();
        assert!(ack.is_pure_ack(), "compact {compact}: {ack:?}");
        assert_eq!(ack.tcp.ack, side.rcv_nxt);
        assert_eq!(side.h.state(), Some(State::TimeWait));
        assert_eq!(side.h.stack.stats().time_wait_recycled, 0);
    }
}

/// RFC 9293 §3.10.5: ABORT (the runtime's `reset_all` when a shutdown's
/// drain runs out) resets an orphan waiting in FIN-WAIT-2 and deletes a
/// TIME-WAIT silently, records as connections.
#[test]
fn reset_all_resets_fin_wait2_records_and_drops_time_wait_ones() {
    let mut h = closing_server(true, 64, 64);
    let l = h.stack.listen(us(), 64).unwrap();
    for i in 0..3 {
        assert!(serve_and_close(&mut h, l, 30_000 + i, false).is_some());
    }
    assert!(serve_and_close_first(&mut h, l, 30_010));
    assert_eq!(h.stack.time_wait_records(), 4);
    assert_eq!(h.stack.reset_all(), 4);
    h.poll();
    let out = h.take();
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(out.iter().all(|o| o.is_rst() && o.tcp.dst_port < 30_010));
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.poll_at(), None);
}
