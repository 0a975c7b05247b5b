//! RFC-rule tests for the receiver side: delayed ACKs (RFC 1122 §4.2.3.2,
//! RFC 9293 §3.8.6.3, RFC 5681 §4.2), batched ACKs (one ACK per
//! connection per flush), SACK and D-SACK generation (RFC 2018 §4, RFC
//! 2883 §4), timestamps with TS.Recent and PAWS (RFC 7323 §4.3, §5.3).
//!
//! Every test drives the engine from a scripted peer on a virtual clock
//! (see `common`). Unless a test says otherwise the configuration is
//! `delayed_ack_config()`: the real delayed-ACK defaults (40 ms), no
//! timestamps, SACK or window scaling, MSS 1460, a 65535-byte buffer.
mod common;

use std::time::Duration;

use common::*;
use xdp_tcp::tcp::{ConnId, StackConfig, TcpConfig};
use xdp_tcp::wire::{SeqNum, TcpOptions, Timestamps};

const MSS: usize = 1460;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The peer's sequence number for byte `off` of its stream.
fn p(off: usize) -> SeqNum {
    PEER_ISS + 1 + off
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

fn config(f: impl FnOnce(&mut TcpConfig)) -> StackConfig {
    let mut c = delayed_ack_config();
    f(&mut c.tcp);
    c
}

/// Delayed ACKs on, quick-ACK phase off: the steady-state policy.
fn no_quick_acks() -> StackConfig {
    config(|t| t.quick_ack_segments = 0)
}

/// A passive open whose SYN carries `options`; returns our ISS.
fn open_with(cfg: StackConfig, options: TcpOptions) -> (Harness, ConnId, SeqNum) {
    let mut h = Harness::new(cfg);
    let l = h.stack.listen(us(), 16).expect("listen");
    h.send(Seg::syn(PEER_ISS).with_options(TcpOptions {
        mss: Some(1460),
        ..options
    }));
    let synack = h.take_one();
    let iss = synack.tcp.seq;
    let mut ack = Seg::ack(p(0), iss + 1);
    ack.options.timestamps = options.timestamps;
    h.send(ack);
    h.expect_silence();
    let c = h.stack.accept(l).expect("accept");
    h.events();
    (h, c, iss)
}

fn open(cfg: StackConfig) -> (Harness, ConnId, SeqNum) {
    open_with(cfg, TcpOptions::default())
}

fn sack_options() -> TcpOptions {
    TcpOptions {
        sack_permitted: true,
        ..TcpOptions::default()
    }
}

fn sack_config() -> StackConfig {
    config(|t| t.sack = true)
}

fn blocks(o: &Out) -> Vec<(SeqNum, SeqNum)> {
    o.tcp.options.sack_blocks.iter().collect()
}

fn data(iss: SeqNum, off: usize, len: usize) -> Seg {
    Seg::data(p(off), iss + 1, &bytes(len, off as u8))
}

// ---- Delayed ACK ----

// RFC 1122 §4.2.3.2 / RFC 9293 §3.8.6.3: an ACK may be delayed, but by
// less than 0.5 s; ours waits `delayed_ack` (40 ms). A PSH alone is no
// reason to ACK early. The isolated segment is acknowledged by the timer:
// not before it, not after the bound.
#[test]
fn isolated_small_segment_is_acknowledged_by_the_delayed_ack_timer_rfc1122_4_2_3_2() {
    let (mut h, c, iss) = open(no_quick_acks());
    let t0 = h.now;
    h.send(data(iss, 0, 100)); // carries PSH
    h.expect_silence();
    h.advance(ms(39));
    h.expect_silence();
    h.advance(ms(100));
    let ack = h.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(ack.tcp.ack, p(100));
    assert_eq!(
        ack.at - t0,
        ms(40),
        "ACKed exactly when the 40 ms timer expired"
    );
    assert!(ack.at - t0 <= ms(500), "RFC 1122 bound");
    let s = h.stack.info(c).unwrap().stats;
    assert_eq!((s.delayed_acks, s.acks_sent, s.data_segs_in), (1, 1, 1));
}

// RFC 1122 §4.2.3.2, RFC 5681 §4.2: "an ACK SHOULD be generated for at
// least every second full-sized segment".
#[test]
fn every_second_full_sized_segment_is_acknowledged_at_once_rfc5681_4_2() {
    let (mut h, _c, iss) = open(no_quick_acks());
    for pair in 0..3 {
        h.send(data(iss, 2 * pair * MSS, MSS));
        h.expect_silence();
        h.send(data(iss, (2 * pair + 1) * MSS, MSS));
        let ack = h.take_one();
        assert!(ack.is_pure_ack());
        assert_eq!(ack.tcp.ack, p((2 * pair + 2) * MSS));
    }
    // An odd one out waits for the timer.
    h.send(data(iss, 6 * MSS, MSS));
    h.expect_silence();
    h.advance(ms(40));
    assert_eq!(h.take_one().tcp.ack, p(7 * MSS));
}

// The deadline is armed once per pending ACK: later segments do not push
// it back, so the 40 ms bound holds for the first of them.
#[test]
fn delayed_ack_deadline_is_not_pushed_back_by_later_segments() {
    let (mut h, _c, iss) = open(no_quick_acks());
    let t0 = h.now;
    h.send(data(iss, 0, 100));
    h.advance(ms(30));
    h.send(data(iss, 100, 100));
    h.expect_silence();
    h.advance(ms(50));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(200));
    assert_eq!(ack.at - t0, ms(40));
}

// Linux quick-ACK mode: the first segments of a connection are ACKed at
// once (at most 16, and at most half a window of full segments), so slow
// start is not slowed by delayed ACKs; afterwards every second segment.
#[test]
fn quick_ack_phase_acknowledges_the_first_segments_at_once() {
    let (mut h, _c, iss) = open(delayed_ack_config());
    for i in 0..16 {
        h.send(data(iss, i * MSS, MSS));
        assert_eq!(h.take_one().tcp.ack, p((i + 1) * MSS), "segment {i}");
    }
    h.send(data(iss, 16 * MSS, MSS));
    h.expect_silence();
    h.send(data(iss, 17 * MSS, MSS));
    assert_eq!(h.take_one().tcp.ack, p(18 * MSS));
}

// RFC 5681 §4.2: "A TCP receiver SHOULD send an immediate duplicate ACK
// when an out-of-order segment arrives".
#[test]
fn out_of_order_segment_is_acknowledged_at_once_rfc5681_4_2() {
    let (mut h, _c, iss) = open(no_quick_acks());
    h.send(data(iss, MSS, MSS));
    let ack = h.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(ack.tcp.ack, p(0));
}

// RFC 5681 §4.2: "A TCP receiver SHOULD send an immediate ACK when the
// incoming segment fills in all or part of a gap in the sequence space."
#[test]
fn segment_filling_a_hole_is_acknowledged_at_once_rfc5681_4_2() {
    let (mut h, _c, iss) = open(no_quick_acks());
    h.send(data(iss, 2 * MSS, 100));
    h.take_one();
    // Part of the gap: immediate.
    h.send(data(iss, 0, 100));
    assert_eq!(h.take_one().tcp.ack, p(100));
    // The rest of it: immediate, and RCV.NXT jumps over the held range.
    h.send(data(iss, 100, 2 * MSS - 100));
    assert_eq!(h.take_one().tcp.ack, p(2 * MSS + 100));
}

// A duplicate segment usually means our ACK was lost: ACK it at once
// (RFC 9293 §3.10.7.4 "send an acknowledgment" for an unacceptable
// segment; RFC 2883 wants the D-SACK promptly).
#[test]
fn duplicate_segment_is_acknowledged_at_once() {
    let (mut h, c, iss) = open(no_quick_acks());
    h.send(data(iss, 0, 100));
    h.advance(ms(40));
    h.take_one();
    h.send(data(iss, 0, 100));
    assert_eq!(h.take_one().tcp.ack, p(100));
    assert_eq!(h.stack.info(c).unwrap().stats.data_segs_in, 2);
}

// The peer's FIN is acknowledged at once (nothing more will come to
// piggyback on, and the peer's close waits for it).
#[test]
fn fin_is_acknowledged_at_once() {
    let (mut h, _c, iss) = open(no_quick_acks());
    h.send(data(iss, 0, 100).with_flags(xdp_tcp::wire::TcpFlags::FIN));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(101));
}

// RFC 9293 §3.8.6.2.2 / RFC 1122 §4.2.3.3: a window update that reopens a
// closed window is sent at once, not delayed.
#[test]
fn window_update_reopening_a_zero_window_is_sent_at_once() {
    let (mut h, c, iss) = open(config(|t| {
        t.quick_ack_segments = 0;
        t.recv_buffer = 4096;
        t.recv_buffer_max = 4096;
    }));
    h.send(data(iss, 0, MSS));
    h.send(data(iss, MSS, MSS));
    h.send(data(iss, 2 * MSS, 4096 - 2 * MSS));
    h.advance(ms(40));
    let last = h.take().pop().expect("ACKs");
    assert_eq!((last.tcp.ack, last.tcp.window), (p(4096), 0));
    let mut buf = [0u8; 4096];
    assert_eq!(h.stack.recv(c, &mut buf).unwrap(), 4096);
    h.poll();
    let update = h.take_one();
    assert!(update.is_pure_ack());
    assert_eq!(update.tcp.window, 4096);
}

// RFC 9293 §3.8.6.3 / RFC 1122 §4.2.3.2: the ACK rides on data we send
// before the timer expires; no pure ACK follows.
#[test]
fn ack_piggybacks_on_outgoing_data() {
    let (mut h, c, iss) = open(no_quick_acks());
    h.send(data(iss, 0, 100));
    h.expect_silence();
    h.advance(ms(5));
    assert_eq!(h.stack.send(c, b"response").unwrap(), 8);
    h.poll();
    let out = h.take_one();
    assert_eq!(out.payload, b"response");
    assert_eq!(out.tcp.ack, p(100));
    h.advance(ms(100));
    h.expect_silence();
    assert_eq!(h.stack.info(c).unwrap().stats.acks_sent, 0);
}

// RFC 2018 §4: SACK blocks go on every ACK while holes exist, and most
// ACKs of a busy connection ride on data. A full-sized data segment has no
// room for them, so while we hold out-of-order data new segments shrink by
// the option's size (Linux's tcp_current_mss does the same); without that
// the peer learns nothing from our data segments and resends what we hold.
#[test]
fn data_segments_make_room_for_sack_blocks_while_holes_exist_rfc2018_4() {
    let (mut h, c, iss) = open_with(sack_config(), sack_options());
    h.send(data(iss, MSS, MSS));
    let ack = h.take_one();
    assert_eq!(blocks(&ack), [(p(MSS), p(2 * MSS))]);
    assert_eq!(h.stack.send(c, &bytes(3 * MSS, 9)).unwrap(), 3 * MSS);
    h.poll();
    let out = h.take();
    assert!(!out.is_empty());
    for seg in &out {
        assert_eq!(seg.tcp.ack, p(0));
        assert_eq!(
            blocks(seg),
            [(p(MSS), p(2 * MSS))],
            "SACK on the data segment"
        );
        // One block: 2 NOPs, kind, length, 8 bytes.
        assert!(
            seg.payload.len() <= MSS - 12,
            "payload {}",
            seg.payload.len()
        );
    }
    // Once the hole is filled, segments are full-sized again.
    h.send(data(iss, 0, MSS));
    h.take();
    assert_eq!(h.stack.send(c, &bytes(3 * MSS, 9)).unwrap(), 3 * MSS);
    h.poll();
    assert!(h
        .take()
        .iter()
        .any(|s| s.payload.len() == MSS && blocks(s).is_empty()));
}

// Responding within the delayed-ACK time marks the exchange as
// interactive: the quick-ACK phase ends and later requests are ACKed by
// their responses.
#[test]
fn prompt_response_ends_the_quick_ack_phase() {
    let (mut h, c, iss) = open(delayed_ack_config());
    h.send(data(iss, 0, 100));
    assert!(
        h.take_one().is_pure_ack(),
        "quick ACK for the first request"
    );
    assert_eq!(h.stack.send(c, b"r1").unwrap(), 2);
    h.poll();
    h.take_one();
    h.send(Seg::data(p(100), iss + 3, b"request 2"));
    h.expect_silence();
    assert_eq!(h.stack.send(c, b"r2").unwrap(), 2);
    h.poll();
    assert_eq!(h.take_one().tcp.ack, p(109));
}

// ---- Batched ACKs ----

// All segments of one connection in one receive batch produce at most one
// ACK, sent when the batch is flushed — even in the quick-ACK phase,
// where each of them asks for an immediate ACK.
#[test]
fn thirty_two_in_order_segments_in_one_batch_produce_exactly_one_ack() {
    let (mut h, c, iss) = open(delayed_ack_config());
    for i in 0..32 {
        let frame = build_frame(&data(iss, i * MSS, MSS));
        h.stack.receive(h.now, &frame);
    }
    h.poll();
    let ack = h.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(ack.tcp.ack, p(32 * MSS));
    let info = h.stack.info(c).unwrap();
    assert_eq!((info.stats.data_segs_in, info.stats.acks_sent), (32, 1));
    assert_eq!(info.acks_per_data_segment(), 1.0 / 32.0);
    let s = h.stack.stats();
    assert_eq!((s.rx_data_segments, s.tx_pure_acks), (32, 1));
}

// RFC 5681 §4.2 without SACK: a sender counts duplicate ACKs, so each
// out-of-order segment of a batch still gets its own.
#[test]
fn without_sack_each_out_of_order_segment_of_a_batch_gets_a_dup_ack_rfc5681_4_2() {
    let (mut h, _c, iss) = open(no_quick_acks());
    for i in 1..4 {
        let frame = build_frame(&data(iss, i * MSS, MSS));
        h.stack.receive(h.now, &frame);
    }
    h.poll();
    let acks = h.take();
    assert_eq!(acks.len(), 3);
    assert!(acks.iter().all(|a| a.is_pure_ack() && a.tcp.ack == p(0)));
}

// With SACK, out-of-order segments of one batch produce one ACK carrying
// the blocks of the flush: the sender counts SACKed segments (RFC 6675),
// not duplicate ACKs; see `schedule_ack`.
#[test]
fn with_sack_the_acks_of_a_batch_carry_its_block() {
    let (mut h, _c, iss) = open_with(sack_config(), sack_options());
    for i in 1..4 {
        let frame = build_frame(&data(iss, i * MSS, MSS));
        h.stack.receive(h.now, &frame);
    }
    h.poll();
    // One ACK for the batch, with the SACK blocks of that moment.
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(0));
    assert_eq!(blocks(&ack), [(p(MSS), p(4 * MSS))]);
}

// ---- SACK (RFC 2018) ----

// RFC 2018 §4: the first block holds the most recently received segment;
// the others repeat the most recently reported blocks; blocks are sent on
// every ACK while holes exist; merged ranges are reported whole.
#[test]
fn first_sack_block_holds_the_most_recent_segment_rfc2018_4() {
    let (mut h, _c, iss) = open_with(sack_config(), sack_options());
    h.send(data(iss, 2 * MSS, MSS));
    assert_eq!(blocks(&h.take_one()), [(p(2 * MSS), p(3 * MSS))]);
    h.send(data(iss, 6 * MSS, MSS));
    assert_eq!(
        blocks(&h.take_one()),
        [(p(6 * MSS), p(7 * MSS)), (p(2 * MSS), p(3 * MSS))]
    );
    h.send(data(iss, 4 * MSS, MSS));
    assert_eq!(
        blocks(&h.take_one()),
        [
            (p(4 * MSS), p(5 * MSS)),
            (p(6 * MSS), p(7 * MSS)),
            (p(2 * MSS), p(3 * MSS))
        ]
    );
    // Bridges 2..3 and 4..5: one block, first.
    h.send(data(iss, 3 * MSS, MSS));
    assert_eq!(
        blocks(&h.take_one()),
        [(p(2 * MSS), p(5 * MSS)), (p(6 * MSS), p(7 * MSS))]
    );
    // In-order data that leaves the holes: the blocks are still sent.
    h.send(data(iss, 0, MSS));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(MSS));
    assert_eq!(
        blocks(&ack),
        [(p(2 * MSS), p(5 * MSS)), (p(6 * MSS), p(7 * MSS))]
    );
    // All holes filled: no blocks.
    h.send(data(iss, MSS, MSS));
    assert_eq!(h.take_one().tcp.ack, p(5 * MSS));
    h.send(data(iss, 5 * MSS, MSS));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(7 * MSS));
    assert!(blocks(&ack).is_empty());
}

/// Timestamps for the peer's segment number `n` (always newer).
fn ts(n: u32) -> Option<Timestamps> {
    timestamps(1000 + n, 0)
}

fn ts_options() -> TcpOptions {
    TcpOptions {
        timestamps: ts(0),
        ..TcpOptions::default()
    }
}

// RFC 2018 §3 and §4: at most 4 blocks, at most 3 beside the timestamps
// option (40 bytes of option space).
#[test]
fn at_most_four_sack_blocks_three_with_timestamps_rfc2018_3() {
    let (mut h, _c, iss) = open_with(sack_config(), sack_options());
    for i in 0..6 {
        h.send(data(iss, (2 * i + 1) * 100, 50));
    }
    let ack = h.take().pop().unwrap();
    assert_eq!(blocks(&ack).len(), 4);
    assert_eq!(blocks(&ack)[0], (p(1100), p(1150)));

    let cfg = config(|t| {
        t.sack = true;
        t.timestamps = true;
    });
    let options = TcpOptions {
        sack_permitted: true,
        ..ts_options()
    };
    let (mut h, _c, iss) = open_with(cfg, options);
    for i in 0..6 {
        let mut s = data(iss, (2 * i + 1) * 100, 50);
        s.options.timestamps = ts(1 + i as u32);
        h.send(s);
    }
    let ack = h.take().pop().unwrap();
    assert!(ack.tcp.options.timestamps.is_some());
    assert_eq!(blocks(&ack).len(), 3);
    assert_eq!(blocks(&ack)[0], (p(1100), p(1150)));
}

// RFC 2883 §4 (a): a duplicate below RCV.NXT is reported as the first
// block of the next ACK, exactly once.
#[test]
fn dsack_reports_a_duplicate_below_rcv_nxt_once_rfc2883_4() {
    let (mut h, c, iss) = open_with(sack_config(), sack_options());
    h.send(data(iss, 0, MSS));
    h.send(data(iss, MSS, MSS));
    h.take();
    h.send(data(iss, 0, MSS));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(2 * MSS));
    assert_eq!(blocks(&ack), [(p(0), p(MSS))]);
    // The next ACK no longer carries it.
    h.send(data(iss, 3 * MSS, MSS));
    assert_eq!(blocks(&h.take_one()), [(p(3 * MSS), p(4 * MSS))]);
    assert_eq!(h.stack.info(c).unwrap().stats.dsacks_sent, 1);
}

// RFC 2883 §4 (b): a duplicate of out-of-order data: the D-SACK block,
// then the block that contains it, then the others.
#[test]
fn dsack_inside_an_out_of_order_range_is_followed_by_that_range_rfc2883_4() {
    let (mut h, _c, iss) = open_with(sack_config(), sack_options());
    h.send(data(iss, 2 * MSS, MSS));
    h.send(data(iss, 3 * MSS, MSS));
    h.send(data(iss, 6 * MSS, MSS));
    h.take();
    h.send(data(iss, 3 * MSS, MSS));
    let ack = h.take_one();
    assert_eq!(
        blocks(&ack),
        [
            (p(3 * MSS), p(4 * MSS)),
            (p(2 * MSS), p(4 * MSS)),
            (p(6 * MSS), p(7 * MSS))
        ]
    );
}

// RFC 2883 §4: a partly duplicate segment reports the duplicated part.
#[test]
fn partial_duplicate_reports_the_duplicated_part_rfc2883_4() {
    let (mut h, _c, iss) = open_with(sack_config(), sack_options());
    h.send(data(iss, 0, 1000));
    h.advance(ms(40));
    h.take();
    h.send(data(iss, 500, 1000));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(1500));
    assert_eq!(blocks(&ack), [(p(500), p(1000))]);
}

// ---- Timestamps (RFC 7323) ----

fn ts_config() -> StackConfig {
    config(|t| {
        t.timestamps = true;
        t.quick_ack_segments = 0;
    })
}

fn with_ts(mut s: Seg, tsval: u32) -> Seg {
    s.options.timestamps = timestamps(tsval, 0);
    s
}

// RFC 7323 §5.3 R1: with timestamps, a segment whose TSval is older than
// TS.Recent is an old duplicate: dropped (its data is not delivered),
// answered with an ACK, counted.
#[test]
fn paws_drops_an_old_duplicate_with_a_stale_timestamp_rfc7323_5_3() {
    let (mut h, c, iss) = open_with(ts_config(), ts_options());
    h.send(with_ts(data(iss, 0, 100), 2000));
    h.advance(ms(40));
    let ack = h.take_one();
    assert_eq!(ack.tcp.options.timestamps.unwrap().tsecr, 2000);
    // New sequence numbers, but a TSval from before: PAWS rejects it.
    h.send(with_ts(data(iss, 100, 100), 1500));
    let reply = h.take_one();
    assert!(reply.is_pure_ack());
    assert_eq!(reply.tcp.ack, p(100), "the data was not accepted");
    assert_eq!(reply.tcp.options.timestamps.unwrap().tsecr, 2000);
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.stats.paws_rejected, 1);
    assert_eq!(info.recv_buffered, 100);
    assert_eq!(info.stats.data_segs_in, 1, "a PAWS drop is not data");
}

// RFC 7323 §5.5: a TS.Recent idle for more than 24 days is invalid; the
// segment is accepted and TS.Recent restarts from it.
#[test]
fn paws_does_not_reject_after_24_idle_days_rfc7323_5_5() {
    let (mut h, c, iss) = open_with(ts_config(), ts_options());
    h.send(with_ts(data(iss, 0, 100), 2000));
    h.advance(ms(40));
    h.take();
    h.advance(Duration::from_secs(25 * 86_400));
    h.take();
    h.send(with_ts(data(iss, 100, 100), 1500));
    h.advance(ms(40));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(200));
    assert_eq!(ack.tcp.options.timestamps.unwrap().tsecr, 1500);
    assert_eq!(h.stack.info(c).unwrap().stats.paws_rejected, 0);
}

// RFC 7323 §4.3 (2)/(3) and §5.3 R3: TS.Recent is taken only from a
// segment with SEG.SEQ ≤ Last.ACK.sent < SEG.SEQ + SEG.LEN, so a delayed
// ACK echoes the TSval of the earliest unacknowledged segment, an
// out-of-order segment never sets it, and the segment filling the hole does.
#[test]
fn delayed_ack_echoes_the_earliest_unacknowledged_tsval_rfc7323_4_3() {
    let (mut h, _c, iss) = open_with(ts_config(), ts_options());
    h.send(with_ts(data(iss, 0, 100), 2000));
    h.send(with_ts(data(iss, 100, 100), 2010));
    h.expect_silence();
    h.advance(ms(40));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(200));
    assert_eq!(ack.tcp.options.timestamps.unwrap().tsecr, 2000);
    // Out of order: immediate ACK, TSecr unchanged.
    h.send(with_ts(data(iss, 1000, 100), 2100));
    let dup = h.take_one();
    assert_eq!(dup.tcp.ack, p(200));
    assert_eq!(dup.tcp.options.timestamps.unwrap().tsecr, 2000);
    // The hole is filled: its TSval is echoed.
    h.send(with_ts(data(iss, 200, 800), 2200));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(1100));
    assert_eq!(ack.tcp.options.timestamps.unwrap().tsecr, 2200);
}

// RFC 7323 §3.2 says a non-RST segment without TSopt SHOULD be dropped
// once timestamps were negotiated; we accept it as Linux does (see
// `timestamp_check`), count it, and it does not touch TS.Recent.
#[test]
fn segment_without_timestamps_is_accepted_and_counted() {
    let (mut h, c, iss) = open_with(ts_config(), ts_options());
    h.send(data(iss, 0, 100));
    h.advance(ms(40));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(100));
    assert_eq!(ack.tcp.options.timestamps.unwrap().tsecr, 1000);
    assert_eq!(h.stack.info(c).unwrap().stats.missing_timestamps, 1);
}

// ---- Configuration ----

#[test]
fn delayed_ack_above_500_ms_is_rejected_rfc1122_4_2_3_2() {
    let mut t = TcpConfig {
        delayed_ack: ms(501),
        ..TcpConfig::default()
    };
    let e = t.validate().unwrap_err();
    assert!(e.contains("500 ms"), "{e}");
    t.delayed_ack = ms(500);
    assert!(t.validate().is_ok());
    t.recv_buffer_max = t.recv_buffer - 1;
    assert!(t.validate().unwrap_err().contains("recv_buffer_max"));
    t.recv_buffer_max = (1 << 30) + 1;
    assert!(t.validate().is_err());
}
