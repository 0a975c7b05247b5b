//! Sender-side loss recovery, one RFC rule per test, against a hand-driven
//! peer: SACK-based recovery (RFC 6675) with RACK (RFC 8985), PRR
//! (RFC 6937), D-SACK undo (RFC 2883, RFC 3708), Eifel detection with
//! timestamps (RFC 3522), RTT measurement from TSecr (RFC 7323 §4), and
//! reneging (RFC 2018 §8).

mod common;

use std::time::Duration;

use common::*;
use xdp_tcp::tcp::congestion::CongestionAlgorithm;
use xdp_tcp::tcp::{ConnId, StackConfig, TcpConfig};
use xdp_tcp::wire::{SackBlocks, SeqNum, TcpOptions, Timestamps};

const MSS: usize = 1460;

fn config(f: impl FnOnce(&mut TcpConfig)) -> StackConfig {
    let mut c = plain_config();
    c.tcp.sack = true;
    // NewReno's halving keeps the arithmetic in the assertions plain.
    c.tcp.congestion = CongestionAlgorithm::NewReno;
    c.tcp.send_buffer = 1 << 20;
    f(&mut c.tcp);
    c
}

/// An active open with SACK (and timestamps if `ts`) negotiated.
fn open(cfg: StackConfig, ts: bool) -> (Harness, ConnId, SeqNum) {
    let mut h = Harness::new(cfg);
    let c = h
        .stack
        .connect(h.now, us(), peer(), PEER_MAC)
        .expect("connect");
    h.poll();
    let syn = h.take_one();
    let iss = syn.tcp.seq;
    // A 10 ms round trip: the first RTT sample and RACK's min RTT.
    h.advance(Duration::from_millis(10));
    let mut synack = Seg::syn(PEER_ISS).with_ack(iss + 1);
    synack.options.sack_permitted = true;
    if ts {
        synack.options.timestamps = Some(Timestamps {
            tsval: 1,
            tsecr: syn.tcp.options.timestamps.expect("TS offered").tsval,
        });
    }
    h.send(synack);
    h.take();
    h.events();
    (h, c, iss)
}

/// Our sequence number of byte `off` of our stream.
fn s(iss: SeqNum, off: usize) -> SeqNum {
    iss + 1 + off
}

fn peer_seq() -> SeqNum {
    PEER_ISS + 1
}

/// An ACK from the peer with SACK blocks (segment indices, end exclusive).
fn sack(iss: SeqNum, ack_seg: usize, blocks: &[(usize, usize)]) -> Seg {
    let mut seg = Seg::ack(peer_seq(), s(iss, ack_seg * MSS));
    let mut b = SackBlocks::new();
    for &(l, r) in blocks {
        b.push(s(iss, l * MSS), s(iss, r * MSS));
    }
    seg.options = TcpOptions {
        sack_blocks: b,
        ..TcpOptions::default()
    };
    seg
}

/// Sends `n` full segments and returns them as sent.
fn send_segments(h: &mut Harness, c: ConnId, n: usize) -> Vec<Out> {
    assert_eq!(h.stack.send(c, &vec![7u8; n * MSS]), Ok(n * MSS));
    h.poll();
    let out = h.take();
    assert_eq!(out.len(), n);
    out
}

// RFC 6675 §5 with RACK (RFC 8985 §6.2): once three segments above a hole
// are SACKed (DupThresh, no reordering seen), the hole is lost and is
// retransmitted at once, before any timer.
#[test]
fn three_sacked_segments_above_a_hole_retransmit_it_rfc6675_5() {
    let (mut h, c, iss) = open(config(|_| {}), false);
    send_segments(&mut h, c, 10);
    h.advance(Duration::from_millis(10));
    h.send(sack(iss, 0, &[(1, 2)]));
    h.send(sack(iss, 0, &[(1, 3)]));
    assert!(
        h.take().iter().all(|o| o.payload.is_empty()),
        "no retransmission yet"
    );
    h.send(sack(iss, 0, &[(1, 4)]));
    let out = h.take();
    let rtx: Vec<_> = out.iter().filter(|o| !o.payload.is_empty()).collect();
    assert_eq!(rtx[0].tcp.seq, s(iss, 0), "the hole goes first");
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.stats.recoveries, 1);
    assert_eq!(info.stats.sack_blocks_received, 3);
    assert_eq!(info.stats.rto_timeouts, 0);
}

// RFC 6937 §3: during recovery, PRR sends in proportion to what is
// delivered, so that about ssthresh is in flight when recovery ends; with
// 20 segments in flight and NewReno (ssthresh = 10), one hole and every
// other segment SACKed one at a time, about one new segment goes out per
// two delivered.
#[test]
fn prr_sends_in_proportion_to_deliveries_rfc6937_3() {
    let (mut h, c, iss) = open(config(|t| t.initial_window_segments = 20), false);
    send_segments(&mut h, c, 20);
    // Queue more data so PRR has something new to send.
    assert_eq!(h.stack.send(c, &vec![1u8; 20 * MSS]), Ok(20 * MSS));
    h.advance(Duration::from_millis(10));
    let mut sent = 0;
    for k in 2..=20 {
        h.send(sack(iss, 0, &[(1, k)]));
        sent += h.take().iter().filter(|o| !o.payload.is_empty()).count();
    }
    let info = h.stack.info(c).unwrap();
    // NewReno: ssthresh is half the flight when the loss was found (20
    // segments, or a little more if SACKs let new data out before).
    assert!(
        (10 * MSS..=11 * MSS).contains(&info.ssthresh),
        "ssthresh {}",
        info.ssthresh
    );
    // 19 segments delivered: the retransmission plus about 19 · ½ new.
    assert!(
        (9..=11).contains(&sent),
        "PRR sent {sent} segments for 19 delivered"
    );
}

// RFC 2883 §4 / RFC 3708 §2: when a D-SACK reports that every
// retransmission of a recovery episode arrived twice, the original was
// not lost: the congestion response is undone.
#[test]
fn dsack_for_every_retransmission_undoes_the_response_rfc3708() {
    let (mut h, c, iss) = open(config(|_| {}), false);
    send_segments(&mut h, c, 10);
    h.advance(Duration::from_millis(10));
    let before = h.stack.info(c).unwrap().cwnd;
    for k in 2..=4 {
        h.send(sack(iss, 0, &[(1, k)]));
    }
    h.take();
    assert!(
        h.stack.info(c).unwrap().cwnd < before,
        "recovery reduced cwnd"
    );
    // The original segment 0 was only delayed: the cumulative ACK covers
    // everything, then the retransmission arrives as a duplicate.
    h.send(sack(iss, 10, &[]));
    h.send(sack(iss, 10, &[(0, 1)]));
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.stats.dsacks_received, 1);
    assert_eq!(info.stats.spurious_retransmits, 1);
    assert_eq!(info.stats.congestion_undos, 1);
    assert_eq!(info.cwnd, before, "cwnd restored");
}

// RFC 7323 §4.1 / RFC 6298 §3: after a retransmission, Karn's rule leaves
// no sample from send times, but the timestamp echo is unambiguous: the
// ACK of the retransmission collapses the backed-off RTO.
#[test]
fn tsecr_gives_an_rtt_sample_after_a_retransmission_rfc7323_4() {
    let (mut h, c, iss) = open(config(|t| t.timestamps = true), true);
    assert_eq!(h.stack.send(c, &[9u8; 100]), Ok(100));
    h.poll();
    h.take();
    let base = h.stack.info(c).unwrap().rto;
    // Two timeouts: the RTO doubles twice.
    h.advance(base);
    h.take();
    h.advance(base * 2);
    let rtx = h.take();
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.stats.rto_timeouts, 2);
    assert_eq!(info.rto, base * 4);
    let srtt = info.srtt.unwrap();
    let echoed = rtx.last().unwrap().tcp.options.timestamps.unwrap().tsval;
    h.advance(Duration::from_millis(30));
    let mut ack = Seg::ack(peer_seq(), s(iss, 100));
    ack.options.timestamps = Some(Timestamps {
        tsval: 2,
        tsecr: echoed,
    });
    h.send(ack);
    let info = h.stack.info(c).unwrap();
    assert_ne!(info.srtt.unwrap(), srtt, "a sample was taken");
    assert_eq!(info.rto, base, "the backed-off RTO collapsed");
}

// RFC 3522 §2 (Eifel): an ACK for the timed-out data that echoes a
// timestamp older than the retransmission was triggered by the original:
// the timeout was spurious and its congestion response is undone.
#[test]
fn timestamp_older_than_the_retransmission_undoes_a_spurious_timeout_rfc3522() {
    let (mut h, c, iss) = open(config(|t| t.timestamps = true), true);
    let sent = send_segments(&mut h, c, 10);
    let original = sent[0].tcp.options.timestamps.unwrap().tsval;
    let cwnd = h.stack.info(c).unwrap().cwnd;
    let rto = h.stack.info(c).unwrap().rto;
    // A tail-loss probe first (2·SRTT), then the RTO it re-armed.
    h.advance(rto + Duration::from_millis(50));
    h.take();
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.stats.tlp_probes, 1);
    assert_eq!(info.stats.rto_timeouts, 1);
    assert_eq!(info.cwnd, info.snd_mss, "one segment after the timeout");
    let mut ack = Seg::ack(peer_seq(), s(iss, 10 * MSS));
    ack.options.timestamps = Some(Timestamps {
        tsval: 2,
        tsecr: original,
    });
    h.send(ack);
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.stats.congestion_undos, 1);
    // The window from before the timeout, then grown by this ACK's delivery.
    assert!(
        info.cwnd >= cwnd,
        "cwnd {} below the {cwnd} before the timeout",
        info.cwnd
    );
}

// RFC 2018 §8 / RFC 6675 §5.1: a receiver may discard data it SACKed. A
// cumulative ACK that stops at SACKed data shows it did: the scoreboard is
// cleared and the data is sent again.
#[test]
fn reneging_is_detected_and_the_data_resent_rfc2018_8() {
    let (mut h, c, iss) = open(config(|_| {}), false);
    send_segments(&mut h, c, 4);
    h.advance(Duration::from_millis(10));
    h.send(sack(iss, 0, &[(2, 3)]));
    // The hole at 0..2 fills, but the ACK stops at 2: segment 2, SACKed
    // before, is gone from the receiver.
    h.send(sack(iss, 2, &[]));
    h.take();
    assert_eq!(h.stack.info(c).unwrap().stats.sack_reneging, 1);
    // The timer resends from SND.UNA soon (max(SRTT/2, 10 ms)), not
    // after a full RTO.
    h.advance(Duration::from_millis(20));
    let out = h.take();
    assert!(
        out.iter()
            .any(|o| o.tcp.seq == s(iss, 2 * MSS) && !o.payload.is_empty()),
        "segment 2 resent: {out:?}"
    );
}
