//! RFC-rule tests for the data phase and the timers of the TCP engine:
//! ESTABLISHED / CLOSE-WAIT / FIN-WAIT data handling (RFC 9293 §3.10.7.4,
//! §3.8.6), sending (segmentation, Nagle, SWS avoidance, RFC 6928 initial
//! window), the retransmission timer (RFC 6298), fast retransmit and
//! NewReno (RFC 5681, RFC 6582), the persist timer (RFC 9293 §3.8.6.1,
//! RFC 1122 §4.2.2.17) and keepalive (RFC 1122 §4.2.3.6).
//!
//! Each test drives the engine from a scripted peer on a virtual clock
//! (see `common`). Unless a test says otherwise the configuration is
//! `plain_config()`: no timestamps, SACK or window scaling, MSS 1460 on
//! both sides, a 65535-byte receive buffer, Nagle on.
mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use xdp_tcp::tcp::congestion::CongestionAlgorithm;
use xdp_tcp::tcp::{
    CloseReason, ConnId, Event, KeepaliveConfig, StackConfig, State, TcpConfig, TcpError,
};
use xdp_tcp::wire::{SeqNum, TcpFlags};

const MSS: usize = 1460;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The peer's sequence number for byte `off` of its stream.
fn p(off: usize) -> SeqNum {
    PEER_ISS + 1 + off
}

/// Deterministic, position-dependent test bytes (so a misplaced or
/// duplicated byte shows up in a comparison).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(31)
                .wrapping_add(seed as u32 * 7 + (i as u32 >> 8)) as u8
        })
        .collect()
}

fn config(f: impl FnOnce(&mut TcpConfig)) -> StackConfig {
    let mut c = plain_config();
    f(&mut c.tcp);
    c
}

/// The plain configuration with NewReno: tests that check RFC 5681's
/// window arithmetic (ssthresh = FlightSize/2) pin the algorithm it
/// specifies, since the default is CUBIC (β = 0.7, RFC 9438).
fn newreno_config() -> StackConfig {
    config(|t| t.congestion = CongestionAlgorithm::NewReno)
}

/// A passively opened ESTABLISHED connection (handshake RTT 0).
fn open(cfg: StackConfig) -> (Harness, ConnId, SeqNum) {
    let mut h = Harness::new(cfg);
    let (c, _, iss) = h.passive_open();
    (h, c, iss)
}

/// A passive open whose handshake ACK arrives `rtt` after the SYN-ACK, so
/// the engine's first RTT sample is `rtt`.
fn open_with_rtt(cfg: StackConfig, rtt: Duration) -> (Harness, ConnId, SeqNum) {
    let mut h = Harness::new(cfg);
    let l = h.stack.listen(us(), 16).expect("listen");
    h.send(Seg::syn(PEER_ISS));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    h.advance(rtt);
    h.expect_silence();
    let iss = synack.tcp.seq;
    h.send(Seg::ack(p(0), iss + 1));
    h.expect_silence();
    let c = h.stack.accept(l).expect("accept");
    h.events();
    (h, c, iss)
}

/// A passive open whose SYN-ACK times out once (RFC 6298 §5.7): the SYN
/// arrives, the SYN-ACK is "lost", the engine retransmits it after its
/// initial RTO and the peer's ACK then completes the handshake. No RTT
/// sample can come from this handshake (Karn).
fn open_after_synack_timeout(cfg: StackConfig) -> (Harness, ConnId, SeqNum) {
    let mut h = Harness::new(cfg);
    let l = h.stack.listen(us(), 16).expect("listen");
    h.send(Seg::syn(PEER_ISS));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    let iss = synack.tcp.seq;
    let again = next_output(&mut h, secs(5));
    assert_eq!(again.len(), 1, "one SYN-ACK retransmission: {again:#?}");
    assert_eq!(again[0].flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(again[0].tcp.seq, iss);
    h.send(Seg::ack(p(0), iss + 1));
    h.expect_silence();
    let c = h.stack.accept(l).expect("accept");
    h.events();
    (h, c, iss)
}

/// Advances the clock from one engine deadline to the next (as
/// `Harness::advance` does) and stops at the first instant at which the
/// engine sends something, returning what it sent; returns an empty vector
/// if nothing is sent within `limit` (the clock is then `limit` later).
fn next_output(h: &mut Harness, limit: Duration) -> Vec<Out> {
    assert!(h.sent.is_empty(), "untaken output: {:#?}", h.sent);
    let end = h.now + limit;
    while let Some(t) = h.stack.poll_at() {
        if t > end {
            break;
        }
        h.now = t.max(h.now);
        h.poll();
        if !h.sent.is_empty() {
            return h.take();
        }
    }
    h.now = end;
    h.poll();
    h.take()
}

/// Reads up to `n` bytes (fewer if fewer are readable).
fn read_n(h: &mut Harness, c: ConnId, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match h.stack.recv(c, &mut out[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(TcpError::WouldBlock) => break,
            Err(e) => panic!("recv failed: {e:?}"),
        }
    }
    out.truncate(got);
    out
}

fn read_all(h: &mut Harness, c: ConnId) -> Vec<u8> {
    read_n(h, c, 1 << 24)
}

/// Compares byte streams without printing them whole.
fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {:?}",
            got.len(),
            want.len(),
            first
        );
    }
}

fn data_segments(v: &[Out]) -> Vec<&Out> {
    v.iter().filter(|o| !o.payload.is_empty()).collect()
}

/// Fills the engine's receive buffer from offset `from` with `len` bytes of
/// `data` in segments of at most MSS, taking the engine's ACKs; returns the
/// last ACK.
fn feed(h: &mut Harness, iss: SeqNum, data: &[u8], from: usize, len: usize) -> Out {
    let mut last = None;
    let mut off = from;
    while off < from + len {
        let n = MSS.min(from + len - off);
        h.send(Seg::data(p(off), iss + 1, &data[off..off + n]));
        let ack = h.take_one();
        assert!(ack.is_pure_ack(), "{ack:#?}");
        last = Some(ack);
        off += n;
    }
    last.expect("fed at least one segment")
}

// =====================================================================
// Receiving
// =====================================================================

/// RFC 9293 §3.10.7.4 (seventh, "process the segment text"): in-order
/// text is delivered to the user, RCV.NXT advances over it and an
/// acknowledgment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> is sent whose window
/// is the free receive-buffer space (§3.8.6).
#[test]
fn in_order_data_is_delivered_and_acked_with_rcv_nxt_and_free_buffer_window() {
    let (mut h, c, iss) = open(plain_config());
    let data = pattern(100, 1);
    h.send(Seg::data(p(0), iss + 1, &data));
    let ack = h.take_one();
    assert!(ack.is_pure_ack(), "{ack:#?}");
    assert_eq!(ack.tcp.seq, iss + 1, "SEQ=SND.NXT");
    assert_eq!(ack.tcp.ack, p(100), "ACK=RCV.NXT");
    assert_eq!(ack.tcp.window as usize, 65535 - 100, "window = free space");
    assert!(h.events().contains(&Event::Readable(c)));
    assert_bytes(&read_all(&mut h, c), &data, "delivered");

    // Reading 100 bytes frees less than the receiver-SWS threshold
    // (§3.8.6.2.2), so the right edge stays where it was.
    h.poll();
    h.expect_silence();
    let more = pattern(1000, 2);
    h.send(Seg::data(p(100), iss + 1, &more));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(1100));
    assert_eq!(ack.tcp.ack + ack.tcp.window as usize, p(65535));
    assert_bytes(&read_all(&mut h, c), &more, "delivered");
}

/// RFC 9293 §3.10.7.4 (segments beyond RCV.NXT "should be held for later
/// processing") and RFC 5681 §4.2 ("A TCP receiver SHOULD send an
/// immediate duplicate ACK when an out-of-order segment arrives"; "an
/// immediate ACK ... when the incoming segment fills in all or part of a
/// gap"): out-of-order text is held, each such segment is answered by a
/// duplicate ACK for RCV.NXT, and everything is delivered in order once
/// the hole is filled.
#[test]
fn out_of_order_data_is_held_dup_acked_and_delivered_when_the_hole_fills() {
    let (mut h, c, iss) = open(plain_config());
    let data = pattern(300, 3);
    h.send(Seg::data(p(100), iss + 1, &data[100..200]));
    let dup = h.take_one();
    assert!(dup.is_pure_ack());
    assert_eq!(dup.tcp.ack, p(0), "duplicate ACK for the hole");
    h.send(Seg::data(p(200), iss + 1, &data[200..300]));
    let dup = h.take_one();
    assert!(dup.is_pure_ack());
    assert_eq!(dup.tcp.ack, p(0), "duplicate ACK for the hole");
    assert!(!h.events().contains(&Event::Readable(c)));
    assert_eq!(h.stack.recv(c, &mut [0u8; 64]), Err(TcpError::WouldBlock));

    h.send(Seg::data(p(0), iss + 1, &data[..100]));
    let ack = h.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(
        ack.tcp.ack,
        p(300),
        "the filled hole acknowledges all held data"
    );
    assert!(h.events().contains(&Event::Readable(c)));
    assert_bytes(&read_all(&mut h, c), &data, "delivered");
}

/// RFC 9293 §3.10.7.4 (eighth, the FIN bit, is processed only for a
/// segment in sequence; text and FIN beyond RCV.NXT are held): a FIN that
/// arrives ahead of missing data is acknowledged only once the hole fills,
/// and end of stream follows the data.
#[test]
fn out_of_order_fin_takes_effect_when_the_hole_fills() {
    let (mut h, c, iss) = open(plain_config());
    let data = pattern(200, 36);
    h.send(Seg::data(p(100), iss + 1, &data[100..]).with_flags(TcpFlags::FIN));
    let dup = h.take_one();
    assert_eq!(
        dup.tcp.ack,
        p(0),
        "neither the data nor the FIN is in sequence"
    );
    assert_eq!(h.stack.state(c), Ok(State::Established));
    h.send(Seg::data(p(0), iss + 1, &data[..100]));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(201), "data and FIN acknowledged");
    assert_eq!(h.stack.state(c), Ok(State::CloseWait));
    assert_bytes(&read_all(&mut h, c), &data, "delivered");
    assert_eq!(h.stack.recv(c, &mut [0u8; 8]), Ok(0), "then end of stream");
}

/// RFC 5681 §4.2: one immediate duplicate ACK per out-of-order segment,
/// even when several arrive before the engine is polled (the sender's
/// fast retransmit counts them).
#[test]
fn each_out_of_order_segment_gets_its_own_duplicate_ack_when_batched() {
    let (mut h, _c, iss) = open(plain_config());
    let data = pattern(400, 4);
    for k in 1..4 {
        let seg = Seg::data(p(k * 100), iss + 1, &data[k * 100..k * 100 + 100]);
        h.stack.receive(h.now, &build_frame(&seg));
    }
    h.poll();
    let acks = h.take();
    assert_eq!(acks.len(), 3, "one duplicate ACK per segment: {acks:#?}");
    for a in &acks {
        assert!(a.is_pure_ack());
        assert_eq!(a.tcp.ack, p(0));
    }
}

/// RFC 9293 §3.10.7.4: "If a segment's contents straddle the boundary
/// between old and new, only the new parts are processed": overlapping
/// retransmissions (in order and out of order) deliver each byte once.
#[test]
fn overlapping_retransmissions_deliver_each_byte_exactly_once() {
    let (mut h, c, iss) = open(plain_config());
    let data = pattern(400, 5);
    // Out of order, overlapping each other: [200,300) then [250,350).
    h.send(Seg::data(p(200), iss + 1, &data[200..300]));
    assert_eq!(h.take_one().tcp.ack, p(0));
    h.send(Seg::data(p(250), iss + 1, &data[250..350]));
    assert_eq!(h.take_one().tcp.ack, p(0));
    // In order: [0,120), then [50,220) overlaps both the delivered data
    // and the held data.
    h.send(Seg::data(p(0), iss + 1, &data[0..120]));
    assert_eq!(h.take_one().tcp.ack, p(120));
    h.send(Seg::data(p(50), iss + 1, &data[50..220]));
    assert_eq!(h.take_one().tcp.ack, p(350));
    // A retransmission of everything plus 50 new bytes.
    h.send(Seg::data(p(0), iss + 1, &data[0..400]));
    assert_eq!(h.take_one().tcp.ack, p(400));
    assert_bytes(&read_all(&mut h, c), &data, "delivered");
    assert_eq!(h.stack.recv(c, &mut [0u8; 16]), Err(TcpError::WouldBlock));
}

/// RFC 9293 §3.10.7.4 (first): a segment wholly before RCV.NXT is not
/// acceptable: it is answered with an ACK for RCV.NXT and its text is not
/// delivered again.
#[test]
fn wholly_duplicate_segment_is_acked_and_not_delivered_again() {
    let (mut h, c, iss) = open(plain_config());
    let data = pattern(200, 6);
    h.send(Seg::data(p(0), iss + 1, &data));
    h.take_one();
    assert_bytes(&read_all(&mut h, c), &data, "delivered");
    h.send(Seg::data(p(0), iss + 1, &data[..150]));
    let ack = h.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(ack.tcp.ack, p(200));
    assert_eq!(h.stack.recv(c, &mut [0u8; 16]), Err(TcpError::WouldBlock));
}

/// RFC 9293 §3.10.7.4 (first): a segment entirely beyond the receive
/// window is not acceptable: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> is sent
/// and the segment dropped. Its bytes are never delivered.
#[test]
fn data_beyond_the_window_is_dropped_with_an_ack_and_never_delivered() {
    let (mut h, c, iss) = open(config(|t| t.recv_buffer = 4096));
    let data = pattern(4200, 7);
    // At the right edge of the 4096-byte window: entirely outside it. The
    // payload differs from the real stream so a stored copy would show.
    h.send(Seg::data(p(4096), iss + 1, &[0xEE; 10]));
    let ack = h.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(ack.tcp.ack, p(0));
    assert_eq!(ack.tcp.window, 4096);
    assert_eq!(h.stack.recv(c, &mut [0u8; 16]), Err(TcpError::WouldBlock));

    let last = feed(&mut h, iss, &data, 0, 4096);
    assert_eq!(last.tcp.ack, p(4096));
    assert_eq!(last.tcp.window, 0);
    assert_bytes(&read_all(&mut h, c), &data[..4096], "delivered");
    h.poll();
    let update = h.take_one();
    assert_eq!(update.tcp.window, 4096, "window update after the read");
    assert_eq!(
        h.stack.recv(c, &mut [0u8; 16]),
        Err(TcpError::WouldBlock),
        "the beyond-window bytes were not kept"
    );
    h.send(Seg::data(p(4096), iss + 1, &data[4096..4106]));
    assert_eq!(h.take_one().tcp.ack, p(4106));
    assert_bytes(&read_all(&mut h, c), &data[4096..4106], "delivered");
}

/// RFC 9293 §3.10.7.4: a segment that starts inside the window and ends
/// beyond it is acceptable, but only the part inside the window is kept
/// ("trim any portion that lies outside the window").
#[test]
fn segment_straddling_the_right_window_edge_is_trimmed_to_the_window() {
    let (mut h, c, iss) = open(config(|t| t.recv_buffer = 4096));
    let data = pattern(4200, 8);
    let ack = feed(&mut h, iss, &data, 0, 4000);
    assert_eq!(ack.tcp.window, 96);
    h.send(Seg::data(p(4000), iss + 1, &data[4000..4200]));
    let ack = h.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(
        ack.tcp.ack,
        p(4096),
        "only the 96 in-window bytes are accepted"
    );
    assert_eq!(ack.tcp.window, 0);
    assert_bytes(&read_all(&mut h, c), &data[..4096], "delivered");
}

/// RFC 9293 §3.10.7.4: "If the RCV.WND is zero, no segments will be
/// acceptable, but special allowance should be made to accept valid ACKs,
/// URGs, and RSTs." A data segment at RCV.NXT into a zero window still has
/// its ACK (and window) processed; its text is dropped and acknowledged.
#[test]
fn zero_window_segment_carrying_an_acceptable_ack_is_still_processed() {
    let (mut h, c, iss) = open(config(|t| t.recv_buffer = 4096));
    let ours = pattern(100, 9);
    assert_eq!(h.stack.send(c, &ours), Ok(100));
    h.poll();
    let seg = h.take_one();
    assert_eq!(seg.payload, ours);
    let data = pattern(4200, 10);
    let last = feed(&mut h, iss, &data, 0, 4096);
    assert_eq!(last.tcp.window, 0);
    assert_eq!(h.stack.info(c).unwrap().bytes_in_flight, 100);

    // Peer data at RCV.NXT (unacceptable: zero window) acknowledging ours.
    h.send(Seg::data(p(4096), iss + 101, &data[4096..4146]).with_window(30000));
    let ack = h.take_one();
    assert!(ack.is_pure_ack(), "{ack:#?}");
    assert_eq!(ack.tcp.ack, p(4096), "the text was not accepted");
    assert_eq!(ack.tcp.window, 0);
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.bytes_in_flight, 0, "the ACK was processed");
    assert_eq!(info.snd_wnd, 30000, "the window update was processed");
    assert_bytes(&read_all(&mut h, c), &data[..4096], "delivered");
}

/// RFC 9293 §3.8.6: the window advertised is the free receive-buffer
/// space, and "the mechanisms ... should not shrink the window (move its
/// right edge to the left)": as the buffer fills and is partly read, the
/// right edge SEG.ACK + SEG.WND never decreases and the window never
/// offers more than the buffer can hold.
#[test]
fn advertised_window_is_free_space_and_its_right_edge_never_moves_left() {
    let cap = 8192;
    let (mut h, c, iss) = open(config(|t| t.recv_buffer = cap));
    let data = pattern(20_000, 11);
    let mut right_edge = p(cap);
    let mut received = 0usize;
    let mut unread = 0usize;
    let check = |ack: &Out, unread: usize, right_edge: &mut SeqNum| {
        let win = ack.tcp.window as usize;
        assert!(
            win <= cap - unread,
            "window {win} exceeds free space {}",
            cap - unread
        );
        let edge = ack.tcp.ack + win;
        assert!(
            edge >= *right_edge,
            "right edge moved left: {edge:?} < {right_edge:?}"
        );
        *right_edge = edge;
    };
    for _ in 0..5 {
        h.send(Seg::data(
            p(received),
            iss + 1,
            &data[received..received + 1000],
        ));
        received += 1000;
        unread += 1000;
        let ack = h.take_one();
        assert_eq!(ack.tcp.window as usize, cap - unread, "window = free space");
        check(&ack, unread, &mut right_edge);
    }
    assert_eq!(read_n(&mut h, c, 500).len(), 500);
    unread -= 500;
    h.poll();
    for a in h.take() {
        check(&a, unread, &mut right_edge);
    }
    for _ in 0..2 {
        let n = 1000.min(right_edge.since(p(received)));
        h.send(Seg::data(
            p(received),
            iss + 1,
            &data[received..received + n],
        ));
        received += n;
        unread += n;
        let ack = h.take_one();
        check(&ack, unread, &mut right_edge);
    }
    let _ = read_all(&mut h, c);
    h.poll();
    let update = h.take_one();
    check(&update, 0, &mut right_edge);
    assert_eq!(update.tcp.window as usize, cap, "all space free again");
}

/// RFC 9293 §3.8.6 with window scaling (RFC 7323 §2.3): the shifted field
/// can only express multiples of 2^shift, so keeping the right edge
/// SEG.ACK + (SEG.WND << Rcv.Wind.Shift) in place means rounding up. Each
/// odd-sized arrival re-rounds from the new SEG.ACK, so a sender of small
/// segments could walk the edge past the buffer for ever; once rounding up
/// would promise space the buffer does not have, the edge retreats by less
/// than one scale unit instead (the shrink RFC 7323 §2.4 warns senders of).
/// It never retreats by a whole unit, and every byte inside an advertised
/// window is accepted.
#[test]
fn scaled_window_right_edge_retreats_by_less_than_one_scale_unit() {
    let mut cfg = config(|t| {
        t.window_scaling = true;
        t.recv_buffer = 256 * 1024;
    });
    cfg.tcp.send_buffer = 65536;
    let mut h = Harness::new(cfg);
    let l = h.stack.listen(us(), 16).unwrap();
    let mut syn = Seg::syn(PEER_ISS);
    syn.options.window_scale = Some(7);
    h.send(syn);
    let synack = h.take_one();
    let shift = synack
        .tcp
        .options
        .window_scale
        .expect("window scale offered back");
    let iss = synack.tcp.seq;
    h.send(Seg::ack(p(0), iss + 1));
    let c = h.stack.accept(l).unwrap();
    let cap = 256 * 1024;
    let data = pattern(cap, 37);
    let mut edge = p(0) + usize::from(synack.tcp.window);
    let mut received = 0;
    let mut step = 0;
    while received < cap {
        let n = [1460, 1000, 7, 1460, 333][step % 5].min(cap - received);
        step += 1;
        if (p(received) + n) > edge {
            // The window is full: read some and let the engine update it.
            read_n(&mut h, c, 5000);
            h.poll();
            for a in h.take() {
                let e = a.tcp.ack + (usize::from(a.tcp.window) << shift);
                assert!(
                    e + (1 << shift) > edge,
                    "right edge moved left a unit: {e:?} < {edge:?}"
                );
                edge = e;
            }
            if (p(received) + n) > edge {
                continue;
            }
        }
        h.send(Seg::data(
            p(received),
            iss + 1,
            &data[received..received + n],
        ));
        received += n;
        let ack = h.take_one();
        assert_eq!(ack.tcp.ack, p(received));
        let wnd = usize::from(ack.tcp.window) << shift;
        let e = ack.tcp.ack + wnd;
        assert!(
            e + (1 << shift) > edge,
            "right edge moved left a unit: {e:?} < {edge:?}"
        );
        edge = e;
    }
}

/// RFC 9293 §3.8.6.2.2 (receiver SWS avoidance) with MSS < RCV.BUFF/2:
/// after the application reads from a full buffer, no window increase is
/// advertised (not even in reply to a probe) until
/// min(RCV.BUFF/2, Eff.snd.MSS) = 1460 bytes are free; then an update is
/// sent.
#[test]
fn receiver_sws_avoidance_withholds_window_updates_below_one_mss() {
    receiver_sws_avoidance(8192, MSS);
}

/// RFC 9293 §3.8.6.2.2 with RCV.BUFF/2 < MSS: the threshold is
/// min(RCV.BUFF/2, Eff.snd.MSS) = 1024 bytes for a 2048-byte buffer.
#[test]
fn receiver_sws_avoidance_threshold_is_half_the_buffer_when_below_one_mss() {
    receiver_sws_avoidance(2048, 1024);
}

fn receiver_sws_avoidance(cap: usize, threshold: usize) {
    let (mut h, c, iss) = open(config(|t| t.recv_buffer = cap));
    let data = pattern(cap, 12);
    let last = feed(&mut h, iss, &data, 0, cap);
    assert_eq!(last.tcp.window, 0);
    assert_eq!(read_n(&mut h, c, 100).len(), 100);
    h.poll();
    h.expect_silence();
    assert_eq!(read_n(&mut h, c, threshold - 101).len(), threshold - 101);
    h.poll();
    h.expect_silence();
    // A zero-window probe (an old sequence number) is answered with the
    // unchanged zero window, not the small one.
    h.send(Seg::ack(p(cap) - 1, iss + 1));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(cap));
    assert_eq!(ack.tcp.window, 0, "no window below the SWS threshold");
    assert_eq!(read_n(&mut h, c, 1).len(), 1);
    h.poll();
    let update = h.take_one();
    assert!(update.is_pure_ack());
    assert_eq!(update.tcp.ack, p(cap));
    assert_eq!(
        update.tcp.window as usize, threshold,
        "window update at the threshold"
    );
}

/// RFC 9293 §3.10.7.4 (seventh) in CLOSE-WAIT: "This should not occur
/// since a FIN has been received from the remote side. Ignore the segment
/// text." The text is not delivered and RCV.NXT does not move; the engine
/// acknowledges with ACK=RCV.NXT.
#[test]
fn segment_text_in_close_wait_is_ignored_but_acked() {
    let (mut h, c, iss) = open(plain_config());
    h.send(Seg::fin(p(0), iss + 1));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(1));
    assert_eq!(h.stack.state(c), Ok(State::CloseWait));
    h.send(Seg::data(p(1), iss + 1, b"after the FIN"));
    let ack = h.take_one();
    assert!(ack.is_pure_ack());
    assert_eq!(ack.tcp.ack, p(1), "RCV.NXT unchanged");
    assert_eq!(
        h.stack.recv(c, &mut [0u8; 64]),
        Ok(0),
        "end of stream, no data"
    );
    assert_eq!(h.stack.state(c), Ok(State::CloseWait));
}

/// RFC 9293 §3.10.7.4 (seventh): in FIN-WAIT-1 and FIN-WAIT-2 segment text
/// is delivered and acknowledged as in ESTABLISHED (our FIN only closes our
/// direction).
#[test]
fn data_is_delivered_and_acked_in_fin_wait_1_and_fin_wait_2() {
    let (mut h, c, iss) = open(plain_config());
    h.stack.shutdown_write(c).unwrap();
    h.poll();
    let fin = h.take_one();
    assert!(fin.flags().fin());
    assert_eq!(fin.tcp.seq, iss + 1);
    assert_eq!(h.stack.state(c), Ok(State::FinWait1));
    let data = pattern(200, 13);
    h.send(Seg::data(p(0), iss + 1, &data[..100]));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(100));
    assert_eq!(h.stack.state(c), Ok(State::FinWait1));
    h.send(Seg::data(p(100), iss + 2, &data[100..]));
    let ack = h.take_one();
    assert_eq!(ack.tcp.ack, p(200));
    assert!(!ack.flags().fin(), "our FIN was acknowledged, not resent");
    assert_eq!(h.stack.state(c), Ok(State::FinWait2));
    assert_bytes(&read_all(&mut h, c), &data, "delivered");
}

// =====================================================================
// Sending
// =====================================================================

/// RFC 9293 §3.7.1: segments carry at most Eff.snd.MSS bytes, from the
/// MSS option of the peer's SYN (1460 here).
#[test]
fn data_is_segmented_at_the_peer_mss() {
    let (mut h, c, iss) = open(plain_config());
    h.stack.set_nodelay(c, true).unwrap();
    let data = pattern(4000, 14);
    assert_eq!(h.stack.send(c, &data), Ok(4000));
    h.poll();
    let segs = h.take();
    let sizes: Vec<usize> = segs.iter().map(|s| s.payload.len()).collect();
    assert_eq!(sizes, vec![1460, 1460, 1080]);
    let mut seq = iss + 1;
    let mut got = Vec::new();
    for s in &segs {
        assert_eq!(s.tcp.seq, seq);
        assert_eq!(s.tcp.ack, p(0));
        seq += s.payload.len();
        got.extend_from_slice(&s.payload);
    }
    assert_bytes(&got, &data, "segments carry the stream");
}

/// RFC 9293 §3.7.1 / RFC 1122 §4.2.2.6: "If an MSS Option is not received
/// at connection setup, TCP implementations MUST assume a default send MSS
/// of 536".
#[test]
fn data_is_segmented_at_536_when_the_peer_syn_has_no_mss_option() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::new(PEER_ISS, TcpFlags::SYN));
    let synack = h.take_one();
    let iss = synack.tcp.seq;
    h.send(Seg::ack(p(0), iss + 1));
    let c = h.stack.accept(l).unwrap();
    h.stack.set_nodelay(c, true).unwrap();
    assert_eq!(h.stack.info(c).unwrap().snd_mss, 536);
    assert_eq!(h.stack.send(c, &pattern(2000, 15)), Ok(2000));
    h.poll();
    let sizes: Vec<usize> = h.take().iter().map(|s| s.payload.len()).collect();
    assert_eq!(sizes, vec![536, 536, 536, 392]);
}

/// RFC 9293 §3.10.4, CLOSE in SYN-RECEIVED: "If no SENDs have been issued
/// and there is no pending data to send, then form a FIN segment and send
/// it, and enter FIN-WAIT-1 state; otherwise, queue for processing after
/// entering ESTABLISHED state" — and §3.4: the first data octet is ISS+1,
/// the FIN follows the last one. In a simultaneous open, data written
/// before the handshake completes plus a shutdown go out, once our SYN is
/// acknowledged, as the data from ISS+1 and then the FIN.
#[test]
fn data_queued_in_syn_received_goes_out_from_iss_plus_one_before_the_fin() {
    let mut h = Harness::plain();
    let c = h.stack.connect(h.now, us(), peer(), PEER_MAC).unwrap();
    h.poll();
    let syn = h.take_one();
    assert_eq!(syn.flags(), TcpFlags::SYN);
    let iss = syn.tcp.seq;
    assert_eq!(h.stack.send(c, b"hello"), Ok(5));
    h.poll();
    h.expect_silence();
    // The peer's SYN crosses ours (RFC 9293 §3.5, Figure 8).
    h.send(Seg::syn(PEER_ISS));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.tcp.seq, iss);
    h.stack.shutdown_write(c).unwrap();
    h.poll();
    for o in h.take() {
        assert!(
            o.payload.is_empty() && !o.flags().fin(),
            "data or FIN before our SYN is acknowledged: {o:#?}"
        );
    }
    // The peer acknowledges our SYN.
    h.send(Seg::ack(p(0), iss + 1));
    let out = h.take();
    let mut next = iss + 1;
    let mut got = Vec::new();
    let mut fin_at = None;
    for o in &out {
        if !o.payload.is_empty() {
            assert_eq!(o.tcp.seq, next, "data in sequence from ISS+1: {out:#?}");
            assert!(fin_at.is_none(), "data after the FIN: {out:#?}");
            next += o.payload.len();
            got.extend_from_slice(&o.payload);
        }
        if o.flags().fin() {
            fin_at = Some(o.tcp.seq + o.payload.len());
        }
    }
    assert_eq!(got, b"hello");
    assert_eq!(fin_at, Some(iss + 6), "the FIN follows the data: {out:#?}");
    assert_eq!(h.stack.state(c), Ok(State::FinWait1));
}

/// RFC 9293 §3.7.4 (Nagle, RFC 1122 §4.2.3.4): with unacknowledged data
/// outstanding, a small write is held until that data is acknowledged (or
/// a full segment accumulates); then the queued bytes go as one segment.
#[test]
fn nagle_holds_a_second_small_write_until_the_first_is_acked() {
    let (mut h, c, iss) = open(plain_config());
    assert_eq!(h.stack.send(c, b"0123456789"), Ok(10));
    h.poll();
    let first = h.take_one();
    assert_eq!(first.payload, b"0123456789");
    assert_eq!(h.stack.send(c, b"abcdefghij"), Ok(10));
    h.poll();
    h.expect_silence();
    assert_eq!(h.stack.send(c, b"ABCDEFGHIJ"), Ok(10));
    h.poll();
    h.expect_silence();
    h.send(Seg::ack(p(0), iss + 11));
    let second = h.take_one();
    assert_eq!(second.tcp.seq, iss + 11);
    assert_eq!(second.payload, b"abcdefghijABCDEFGHIJ");
}

/// RFC 9293 §3.7.4: "a TCP implementation MUST provide a way for a user to
/// disable the Nagle algorithm" — with TCP_NODELAY a small write is sent at
/// once although data is outstanding.
#[test]
fn nodelay_sends_a_second_small_write_immediately() {
    let (mut h, c, iss) = open(plain_config());
    h.stack.set_nodelay(c, true).unwrap();
    assert_eq!(h.stack.send(c, b"0123456789"), Ok(10));
    h.poll();
    assert_eq!(h.take_one().payload, b"0123456789");
    assert_eq!(h.stack.send(c, b"abcdefghij"), Ok(10));
    h.poll();
    let second = h.take_one();
    assert_eq!(second.tcp.seq, iss + 11);
    assert_eq!(second.payload, b"abcdefghij");
}

/// RFC 9293 §3.8.6.2.1 (sender SWS avoidance): with more data queued than
/// fits, data is sent only when a full segment fits, or at least
/// Fs·max(SND.WND) = half the largest window offered fits, or when the
/// override timeout (0.1–1 s) expires. A 100-byte usable window (the peer
/// offered 65535 before) must not be filled at once.
#[test]
fn sender_sws_avoidance_does_not_send_a_tiny_segment_into_a_small_window() {
    let (mut h, c, iss) = open(plain_config());
    h.stack.set_nodelay(c, true).unwrap();
    h.send(Seg::ack(p(0), iss + 1).with_window(100));
    h.expect_silence();
    assert_eq!(h.stack.info(c).unwrap().snd_wnd, 100);
    let t0 = h.now;
    assert_eq!(h.stack.send(c, &pattern(2000, 16)), Ok(2000));
    h.poll();
    h.expect_silence();
    let out = next_output(&mut h, secs(2));
    assert_eq!(out.len(), 1, "{out:#?}");
    let at = out[0].at - t0;
    assert!(
        at >= ms(100) && at <= secs(1),
        "override timeout {at:?} outside 0.1-1 s"
    );
    assert_eq!(out[0].tcp.seq, iss + 1);
    assert_eq!(
        out[0].payload.len(),
        100,
        "the override fills the usable window"
    );
}

/// RFC 9293 §3.8.6.2.1, condition (3): data is sent when at least half the
/// largest window the peer ever offered can go, even if that is less than
/// a full segment.
#[test]
fn sender_sends_when_half_the_largest_offered_window_is_usable() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS).with_window(1000));
    let iss = h.take_one().tcp.seq;
    h.send(Seg::ack(p(0), iss + 1).with_window(1000));
    let c = h.stack.accept(l).unwrap();
    h.stack.set_nodelay(c, true).unwrap();
    // 1000 go (the whole window); the window then reopens by 600 only.
    assert_eq!(h.stack.send(c, &pattern(3000, 17)), Ok(3000));
    h.poll();
    let segs = h.take();
    assert_eq!(segs.iter().map(|s| s.payload.len()).sum::<usize>(), 1000);
    h.send(Seg::ack(p(0), iss + 601).with_window(1000));
    let segs = h.take();
    assert_eq!(data_segments(&segs).len(), 1, "{segs:#?}");
    assert_eq!(segs[0].tcp.seq, iss + 1001);
    assert_eq!(segs[0].payload.len(), 600, "600 >= 1000/2: sent at once");
}

/// RFC 9293 §3.8.6 / §3.10.7.4: the sender never sends beyond
/// SND.UNA + SND.WND; more goes as the peer acknowledges and opens it.
#[test]
fn sending_is_limited_by_the_peer_window() {
    let (mut h, c, iss) = open(plain_config());
    h.stack.set_nodelay(c, true).unwrap();
    h.send(Seg::ack(p(0), iss + 1).with_window(3000));
    let data = pattern(10_000, 18);
    assert_eq!(h.stack.send(c, &data), Ok(10_000));
    h.poll();
    let mut acked = 0usize;
    let mut highest = 0usize;
    for _ in 0..3 {
        let segs = h.take();
        assert!(!segs.is_empty(), "progress while the window allows");
        for s in &segs {
            let start = s.tcp.seq.since(iss + 1);
            let end = start + s.payload.len();
            assert!(
                end <= acked + 3000,
                "sent up to {end}, beyond SND.UNA {acked} + SND.WND 3000"
            );
            assert_eq!(s.payload, &data[start..end]);
            highest = highest.max(end);
        }
        assert!(highest >= acked + 2 * MSS, "full segments fill the window");
        acked = highest;
        h.send(Seg::ack(p(0), iss + 1 + acked).with_window(3000));
    }
}

/// RFC 6928 (and RFC 5681 §3.1): the initial congestion window is
/// min(10·MSS, max(2·MSS, 14600)) = 10 segments of 1460 bytes: no more is
/// sent before an acknowledgment, however much is queued and however large
/// the peer's window.
#[test]
fn initial_congestion_window_is_ten_segments() {
    let (mut h, c, _iss) = open(plain_config());
    assert_eq!(h.stack.info(c).unwrap().cwnd, 10 * MSS);
    assert_eq!(h.stack.send(c, &pattern(65536, 19)), Ok(65536));
    h.poll();
    let segs = h.take();
    assert_eq!(segs.len(), 10, "{} segments", segs.len());
    assert!(segs.iter().all(|s| s.payload.len() == MSS));
    assert_eq!(h.stack.info(c).unwrap().bytes_in_flight, 10 * MSS);
    h.advance(ms(100));
    h.expect_silence();
}

/// The same contract for an application that asks before writing (as
/// `echo` does): `send_capacity` answering 0 arms the `Writable` event even
/// though no `send` ever came up short — otherwise such an application
/// would wait forever (this deadlocked a 100 MB echo against Linux).
#[test]
fn zero_send_capacity_arms_a_writable_event() {
    let (mut h, c, iss) = open(plain_config());
    let data = pattern(65536, 21);
    assert_eq!(
        h.stack.send(c, &data),
        Ok(65536),
        "exactly fills the buffer"
    );
    h.poll();
    h.take();
    h.send(Seg::ack(p(0), iss + 1 + MSS));
    assert!(
        !h.events().iter().any(|e| matches!(e, Event::Writable(_))),
        "nobody asked for space yet"
    );
    assert_eq!(h.stack.send_capacity(c), Ok(MSS));
    assert_eq!(h.stack.send(c, &data[..MSS]), Ok(MSS));
    assert_eq!(h.stack.send_capacity(c), Ok(0));
    h.poll();
    h.take();
    h.send(Seg::ack(p(0), iss + 1 + 2 * MSS));
    assert!(h.events().contains(&Event::Writable(c)));
}

/// The socket contract the engine documents (EAGAIN / writable
/// notification, RFC 9293 §3.10.2 "if there is insufficient space ... the
/// SEND call may be ... rejected"): a full send buffer makes `send` return
/// `WouldBlock`, and `Event::Writable` follows once an ACK frees space.
#[test]
fn send_would_block_on_a_full_buffer_and_writable_follows_acks() {
    let (mut h, c, iss) = open(plain_config());
    let data = pattern(70_000, 20);
    assert_eq!(h.stack.send(c, &data), Ok(65536), "the buffer takes 65536");
    assert_eq!(h.stack.send(c, &data[65536..]), Err(TcpError::WouldBlock));
    assert_eq!(h.stack.send_capacity(c), Ok(0));
    h.poll();
    h.take();
    assert!(!h.events().iter().any(|e| matches!(e, Event::Writable(_))));
    h.send(Seg::ack(p(0), iss + 1 + MSS));
    assert!(h.events().contains(&Event::Writable(c)));
    assert_eq!(h.stack.send_capacity(c), Ok(MSS));
    assert_eq!(h.stack.send(c, &data[65536..]), Ok(MSS));
}

/// RFC 5681 §4.1 (restarting idle connections): "a TCP SHOULD set cwnd to
/// no more than RW before beginning transmission if the TCP has not sent
/// data in an interval exceeding the retransmission timeout", RW =
/// min(IW, cwnd). After slow start grew cwnd to 20 segments and the
/// connection idled for 5 s (RTO 200 ms), at most 10 segments go at once.
#[test]
fn idle_connection_restarts_from_the_initial_window() {
    let (mut h, c, iss) = open(plain_config());
    assert_eq!(h.stack.send(c, &pattern(10 * MSS, 21)), Ok(10 * MSS));
    h.poll();
    assert_eq!(h.take().len(), 10);
    for k in 1..=10 {
        h.send(Seg::ack(p(0), iss + 1 + k * MSS));
    }
    h.take();
    assert_eq!(h.stack.info(c).unwrap().cwnd, 20 * MSS);
    h.advance(secs(5));
    h.expect_silence();
    assert_eq!(h.stack.send(c, &pattern(30 * MSS, 22)), Ok(30 * MSS));
    h.poll();
    let n = h.take().len();
    assert!(
        n <= 10,
        "{n} segments sent after an idle period; RW allows 10"
    );
}

// =====================================================================
// Retransmission timer (RFC 6298)
// =====================================================================

/// RFC 6298 §2.2 (first sample: SRTT = R, RTTVAR = R/2, RTO = SRTT +
/// max(G, 4·RTTVAR)), §5.1/§5.4 (retransmit the earliest unacknowledged
/// segment when the timer expires) and §5.5 (back off: RTO doubles at each
/// expiry). Handshake RTT 100 ms → RTO 300 ms: retransmissions 300, 600,
/// 1200, 2400 ms apart.
#[test]
fn rto_follows_the_first_sample_and_backs_off_exponentially() {
    let (mut h, c, iss) = open_with_rtt(plain_config(), ms(100));
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.srtt, Some(ms(100)));
    assert_eq!(info.rttvar, Some(ms(50)));
    assert_eq!(info.rto, ms(300));
    let data = pattern(100, 23);
    assert_eq!(h.stack.send(c, &data), Ok(100));
    h.poll();
    let t0 = h.take_one().at;
    let mut last = t0;
    for expected in [300, 600, 1200, 2400] {
        let out = next_output(&mut h, secs(10));
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(
            out[0].tcp.seq,
            iss + 1,
            "the earliest unacknowledged segment"
        );
        assert_eq!(out[0].payload, data);
        assert_eq!(out[0].at - last, ms(expected));
        last = out[0].at;
    }
}

/// RFC 6298 §2.4 as configured (`rto.min` = 200 ms, Linux's floor): a
/// near-zero RTT sample gives an RTO of exactly the minimum, and the
/// retransmission does not happen earlier.
#[test]
fn rto_is_never_below_rto_min_after_samples() {
    let (mut h, c, iss) = open(plain_config());
    let info = h.stack.info(c).unwrap();
    assert_eq!(
        info.srtt,
        Some(Duration::ZERO),
        "the handshake RTT sample is 0"
    );
    assert_eq!(info.rto, ms(200));
    assert_eq!(h.stack.send(c, b"x"), Ok(1));
    h.poll();
    let t0 = h.take_one().at;
    let out = next_output(&mut h, secs(1));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tcp.seq, iss + 1);
    assert_eq!(out[0].at - t0, ms(200));
}

/// RFC 6298 §2.1 ("Until a round-trip time (RTT) measurement has been
/// made for a segment sent between the sender and receiver, the sender
/// SHOULD set RTO <- 1 second") and §5.5 (double it at each expiry). The
/// one segment sent before any sample in a passive open is the SYN-ACK:
/// retransmitted 1 s, then 2 s, then 4 s after the previous copy.
#[test]
fn initial_rto_is_one_second_before_any_rtt_sample_then_doubles() {
    let mut h = Harness::plain();
    h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    let mut last = synack.at;
    for expected in [1, 2, 4] {
        let out = next_output(&mut h, secs(10));
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].flags(), TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(out[0].tcp.seq, synack.tcp.seq);
        assert_eq!(out[0].at - last, secs(expected));
        last = out[0].at;
    }
}

/// RFC 6298 §2.5 ("A maximum value MAY be placed on RTO provided it is at
/// least 60 seconds") with §5.5: the backed-off RTO doubles up to the
/// configured maximum (`rto.max` = 120 s) and stays there.
#[test]
fn rto_backoff_is_capped_at_rto_max() {
    let (mut h, c, iss) = open(config(|t| t.max_retransmits = 15));
    assert_eq!(h.stack.send(c, b"x"), Ok(1));
    h.poll();
    let mut last = h.take_one().at;
    let mut intervals = Vec::new();
    for _ in 0..12 {
        let out = next_output(&mut h, secs(300));
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].tcp.seq, iss + 1);
        intervals.push(out[0].at - last);
        last = out[0].at;
    }
    let expected: Vec<Duration> = [
        200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 51_200, 102_400,
    ]
    .iter()
    .map(|&m| ms(m))
    .chain([secs(120), secs(120)])
    .collect();
    assert_eq!(intervals, expected);
}

/// RFC 6298 §5 (note after rule 5.7: the RTO is recomputed, possibly
/// "collapsing" after back-off, only "once a new RTT measurement is
/// obtained (which can only happen when new data has been sent and
/// acknowledged)") with Karn's algorithm: the ACK of a retransmitted
/// segment gives no sample, so the next segment is timed with the
/// backed-off RTO; a fresh sample then collapses it.
#[test]
fn backed_off_rto_is_kept_until_a_new_rtt_sample() {
    let (mut h, c, iss) = open_with_rtt(plain_config(), ms(100));
    assert_eq!(h.stack.send(c, b"a"), Ok(1));
    h.poll();
    h.take_one();
    let rtx = next_output(&mut h, secs(1));
    assert_eq!(rtx.len(), 1, "retransmitted after 300 ms");
    h.send(Seg::ack(p(0), iss + 2));
    h.expect_silence();
    assert_eq!(h.stack.info(c).unwrap().rto, ms(600), "still backed off");
    assert_eq!(h.stack.send(c, b"b"), Ok(1));
    h.poll();
    let t0 = h.take_one().at;
    let rtx = next_output(&mut h, secs(2));
    assert_eq!(rtx.len(), 1);
    assert_eq!(rtx[0].at - t0, ms(600), "timed with the backed-off RTO");
    // A segment sent once and acknowledged gives a sample: RTO collapses.
    h.send(Seg::ack(p(0), iss + 3));
    assert_eq!(h.stack.send(c, b"c"), Ok(1));
    h.poll();
    h.take_one();
    h.advance(ms(100));
    h.send(Seg::ack(p(0), iss + 4));
    let info = h.stack.info(c).unwrap();
    assert!(
        info.rto < ms(600),
        "RTO collapsed after a new sample: {:?}",
        info.rto
    );
}

/// RFC 6298 §5.2: "When all outstanding data has been acknowledged, turn
/// off the retransmission timer."
#[test]
fn retransmission_timer_stops_when_everything_is_acked() {
    let (mut h, c, iss) = open(plain_config());
    assert_eq!(h.stack.send(c, &pattern(2 * MSS, 35)), Ok(2 * MSS));
    h.poll();
    assert_eq!(h.take().len(), 2);
    h.send(Seg::ack(p(0), iss + 1 + 2 * MSS));
    h.expect_silence();
    h.advance(secs(600));
    h.expect_silence();
    assert_eq!(h.stack.info(c).unwrap().stats.retransmits, 0);
}

/// RFC 6298 §5.7: "If the timer expires awaiting the ACK of a SYN segment
/// and the TCP implementation is using an RTO less than 3 seconds, the RTO
/// MUST be re-initialized to 3 seconds when data transmission begins".
/// After a SYN-ACK retransmission (and thus no RTT sample), the first data
/// retransmission comes 3 s after the data was sent, the next 6 s later.
#[test]
fn rto_is_three_seconds_after_the_syn_ack_timed_out() {
    let (mut h, c, iss) = open_after_synack_timeout(plain_config());
    assert_eq!(h.stack.info(c).unwrap().srtt, None, "Karn: no sample");
    assert_eq!(h.stack.send(c, b"hello"), Ok(5));
    h.poll();
    let t0 = h.take_one().at;
    let first = next_output(&mut h, secs(10));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].tcp.seq, iss + 1);
    assert_eq!(first[0].at - t0, secs(3), "RTO re-initialised to 3 s");
    let second = next_output(&mut h, secs(20));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].at - first[0].at, secs(6));
}

/// RFC 6298 §3 (Karn): "RTT samples MUST NOT be made using segments that
/// were retransmitted". With no earlier sample, the ACK of a retransmitted
/// segment leaves SRTT undefined; the first ACK of a segment sent once then
/// gives the first sample (§2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT +
/// max(G, 4·RTTVAR)).
#[test]
fn karn_ack_of_a_retransmitted_segment_gives_no_rtt_sample() {
    let (mut h, c, iss) = open_after_synack_timeout(plain_config());
    assert_eq!(h.stack.info(c).unwrap().srtt, None);
    assert_eq!(h.stack.send(c, b"hello"), Ok(5));
    h.poll();
    h.take_one();
    let rtx = next_output(&mut h, secs(10));
    assert_eq!(rtx.len(), 1);
    assert_eq!(rtx[0].tcp.seq, iss + 1);
    h.advance(ms(100));
    h.send(Seg::ack(p(0), iss + 6));
    h.take();
    let info = h.stack.info(c).unwrap();
    assert_eq!(
        info.srtt, None,
        "Karn: no sample from a retransmitted segment"
    );
    assert_eq!(info.rttvar, None);

    assert_eq!(h.stack.send(c, b"world"), Ok(5));
    h.poll();
    assert_eq!(h.take_one().tcp.seq, iss + 6);
    h.advance(ms(200));
    h.send(Seg::ack(p(0), iss + 11));
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.srtt, Some(ms(200)));
    assert_eq!(info.rttvar, Some(ms(100)));
    assert_eq!(info.rto, ms(600));
}

/// RFC 6298 §3 (Karn) with an earlier sample: the late ACK of a
/// retransmitted segment changes neither SRTT nor RTTVAR.
#[test]
fn karn_ack_of_a_retransmitted_segment_leaves_srtt_unchanged() {
    let (mut h, c, iss) = open_with_rtt(plain_config(), ms(100));
    assert_eq!(h.stack.send(c, b"hello"), Ok(5));
    h.poll();
    h.take_one();
    let rtx = next_output(&mut h, secs(1));
    assert_eq!(rtx.len(), 1, "retransmitted after 300 ms");
    h.advance(ms(50));
    h.send(Seg::ack(p(0), iss + 6));
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.srtt, Some(ms(100)));
    assert_eq!(info.rttvar, Some(ms(50)));
}

/// RFC 6298 §2.3: for each later sample R', RTTVAR = 3/4·RTTVAR +
/// 1/4·|SRTT − R'| (with the old SRTT), then SRTT = 7/8·SRTT + 1/8·R', and
/// RTO = SRTT + max(G, 4·RTTVAR); the retransmission timer uses it.
#[test]
fn srtt_and_rttvar_follow_rfc6298_on_later_samples() {
    let (mut h, c, iss) = open_with_rtt(plain_config(), ms(100));
    // Sample 200 ms: RTTVAR = 37.5 + 25 = 62.5, SRTT = 87.5 + 25 = 112.5.
    assert_eq!(h.stack.send(c, b"a"), Ok(1));
    h.poll();
    h.take_one();
    h.advance(ms(200));
    h.send(Seg::ack(p(0), iss + 2));
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.rttvar, Some(Duration::from_micros(62_500)));
    assert_eq!(info.srtt, Some(Duration::from_micros(112_500)));
    assert_eq!(info.rto, Duration::from_micros(362_500));
    // Sample 100 ms: RTTVAR = 46.875 + 3.125 = 50, SRTT = 98.4375 + 12.5.
    assert_eq!(h.stack.send(c, b"b"), Ok(1));
    h.poll();
    h.take_one();
    h.advance(ms(100));
    h.send(Seg::ack(p(0), iss + 3));
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.rttvar, Some(ms(50)));
    assert_eq!(info.srtt, Some(Duration::from_nanos(110_937_500)));
    assert_eq!(info.rto, Duration::from_nanos(310_937_500));
    // The timer uses it (to the 1 ms clock granularity G).
    assert_eq!(h.stack.send(c, b"c"), Ok(1));
    h.poll();
    let t0 = h.take_one().at;
    let rtx = next_output(&mut h, secs(2));
    assert_eq!(rtx.len(), 1);
    let at = rtx[0].at - t0;
    assert!(
        at >= info.rto && at <= info.rto + ms(1),
        "retransmitted after {at:?}"
    );
}

/// RFC 6298 §5.3: "When an ACK is received that acknowledges new data,
/// restart the retransmission timer so that it will expire after RTO
/// seconds (for the current value of RTO)."
#[test]
fn ack_of_new_data_restarts_the_retransmission_timer() {
    let (mut h, c, iss) = open_with_rtt(plain_config(), ms(100));
    assert_eq!(h.stack.send(c, &pattern(2 * MSS, 24)), Ok(2 * MSS));
    h.poll();
    let segs = h.take();
    assert_eq!(segs.len(), 2);
    let t0 = segs[0].at;
    h.advance(ms(100));
    h.send(Seg::ack(p(0), iss + 1 + MSS));
    h.take();
    // Sample 100 ms: RTTVAR 37.5 ms, SRTT 100 ms, RTO 250 ms.
    assert_eq!(h.stack.info(c).unwrap().rto, ms(250));
    let rtx = next_output(&mut h, secs(2));
    assert_eq!(rtx.len(), 1);
    assert_eq!(rtx[0].tcp.seq, iss + 1 + MSS);
    assert_eq!(
        rtx[0].at - t0,
        ms(350),
        "timer restarted at the ACK (100 + 250 ms)"
    );
}

/// RFC 6298 §5.4 (retransmit the earliest unacknowledged segment) with
/// RFC 5681 §3.1: on a timeout ssthresh = max(FlightSize/2, 2·SMSS)
/// (equation 4) and cwnd = LW = 1 SMSS, so exactly one segment is
/// retransmitted.
#[test]
fn retransmission_timeout_resends_one_segment_and_collapses_cwnd() {
    let (mut h, c, iss) = open(newreno_config());
    assert_eq!(h.stack.send(c, &pattern(10 * MSS, 25)), Ok(10 * MSS));
    h.poll();
    assert_eq!(h.take().len(), 10);
    let rtx = next_output(&mut h, secs(1));
    assert_eq!(rtx.len(), 1, "cwnd = 1 segment: {rtx:#?}");
    assert_eq!(rtx[0].tcp.seq, iss + 1);
    assert_eq!(rtx[0].payload.len(), MSS);
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.cwnd, MSS, "loss window");
    assert_eq!(info.ssthresh, 5 * MSS, "max(FlightSize/2, 2 SMSS)");
}

/// RFC 9293 §3.8.3 (R2) / RFC 1122 §4.2.3.5: after `max_retransmits`
/// retransmissions without progress the next expiry closes the
/// connection; the user sees `TimedOut` and `Closed{TimedOut}`.
#[test]
fn connection_times_out_after_max_retransmits() {
    let (mut h, c, iss) = open(config(|t| t.max_retransmits = 3));
    assert_eq!(h.stack.send(c, b"lost"), Ok(4));
    h.poll();
    h.take_one();
    h.advance(secs(60));
    let out = h.take();
    let rtx: Vec<_> = out.iter().filter(|o| o.payload == b"lost").collect();
    assert_eq!(rtx.len(), 3, "{out:#?}");
    assert!(rtx.iter().all(|o| o.tcp.seq == iss + 1));
    let events = h.events();
    assert!(
        events.contains(&Event::Closed {
            conn: c,
            reason: CloseReason::TimedOut
        }),
        "{events:?}"
    );
    assert_eq!(h.stack.recv(c, &mut [0u8; 8]), Err(TcpError::TimedOut));
    assert_eq!(h.stack.state(c), Ok(State::Closed));
}

// =====================================================================
// Fast retransmit, NewReno, slow start
// =====================================================================

/// Sequence number of the start of segment `k` of a stream of full
/// segments sent from `iss + 1`.
fn seg_start(iss: SeqNum, k: usize) -> SeqNum {
    iss + 1 + k * MSS
}

/// RFC 5681 §3.2 and RFC 6582 §3.2. 14 segments in flight, S2 and S5
/// lost. The third duplicate ACK (not the first two) retransmits S2 once,
/// ssthresh = max(FlightSize/2, 2·SMSS), cwnd = ssthresh + 3·SMSS; each
/// further duplicate ACK inflates cwnd by SMSS; the partial ACK up to S5
/// retransmits S5 at once and deflates cwnd by the amount acknowledged
/// less one SMSS; the full ACK ends recovery with cwnd =
/// min(ssthresh, max(FlightSize, SMSS) + SMSS) or ssthresh. No RTO fires.
#[test]
fn three_duplicate_acks_fast_retransmit_and_newreno_repairs_each_hole() {
    let (mut h, c, iss) = open(newreno_config());
    assert_eq!(h.stack.send(c, &pattern(14 * MSS, 26)), Ok(14 * MSS));
    h.poll();
    assert_eq!(h.take().len(), 10);
    h.send(Seg::ack(p(0), seg_start(iss, 1)));
    assert_eq!(h.take().len(), 2, "slow start: 2 segments per ACK");
    h.send(Seg::ack(p(0), seg_start(iss, 2)));
    let segs = h.take();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[1].tcp.seq, seg_start(iss, 13));
    let flight = 12 * MSS;
    assert_eq!(h.stack.info(c).unwrap().bytes_in_flight, flight);

    // S3, S4 arrive: two duplicate ACKs, nothing retransmitted.
    for _ in 0..2 {
        h.send(Seg::ack(p(0), seg_start(iss, 2)));
        h.expect_silence();
    }
    // S6: the third duplicate ACK.
    h.send(Seg::ack(p(0), seg_start(iss, 2)));
    let rtx = h.take_one();
    assert_eq!(rtx.tcp.seq, seg_start(iss, 2));
    assert_eq!(rtx.payload.len(), MSS);
    let ssthresh = flight / 2;
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.ssthresh, ssthresh);
    assert_eq!(info.cwnd, ssthresh + 3 * MSS);
    // S7..S13: seven more duplicate ACKs, each inflating cwnd by SMSS.
    for _ in 0..7 {
        h.send(Seg::ack(p(0), seg_start(iss, 2)));
        h.expect_silence();
    }
    assert_eq!(h.stack.info(c).unwrap().cwnd, ssthresh + 10 * MSS);

    // The retransmitted S2 fills the first hole: partial ACK up to S5.
    h.send(Seg::ack(p(0), seg_start(iss, 5)));
    let rtx = h.take_one();
    assert_eq!(rtx.tcp.seq, seg_start(iss, 5), "the next hole");
    assert_eq!(rtx.payload.len(), MSS);
    assert_eq!(
        h.stack.info(c).unwrap().cwnd,
        ssthresh + 10 * MSS - 3 * MSS + MSS,
        "deflated by the amount acked, plus one SMSS"
    );
    // Full ACK.
    h.send(Seg::ack(p(0), seg_start(iss, 14)));
    h.take();
    let info = h.stack.info(c).unwrap();
    let flight_now = info.bytes_in_flight;
    let option1 = ssthresh.min(flight_now.max(MSS) + MSS);
    assert!(
        info.cwnd == option1 || info.cwnd == ssthresh,
        "cwnd {} after recovery; expected {option1} or {ssthresh}",
        info.cwnd
    );
    assert_eq!(info.ssthresh, ssthresh);
    // One recovery episode; two segments retransmitted in it (S2 and S5),
    // counted like Linux's TCPFastRetrans.
    assert_eq!(info.stats.recoveries, 1);
    assert_eq!(info.stats.fast_retransmits, 2);
    assert_eq!(info.stats.rto_timeouts, 0);
}

/// RFC 6582 §3.2: `recover` is initialised to the ISS and fast retransmit
/// is entered when the third duplicate ACK's cumulative ACK "covers more
/// than recover". If the very first data segment is lost, the duplicate
/// ACKs carry ACK = ISS + 1 > ISS: fast retransmit of that segment, before
/// any RTO.
#[test]
fn fast_retransmit_when_the_first_data_segment_is_lost() {
    let (mut h, c, iss) = open(newreno_config());
    assert_eq!(h.stack.send(c, &pattern(4 * MSS, 27)), Ok(4 * MSS));
    h.poll();
    assert_eq!(h.take().len(), 4);
    for _ in 0..2 {
        h.send(Seg::ack(p(0), iss + 1));
        h.expect_silence();
    }
    h.send(Seg::ack(p(0), iss + 1));
    let out = h.take();
    assert_eq!(out.len(), 1, "one fast retransmission: {out:#?}");
    assert_eq!(out[0].tcp.seq, iss + 1);
    assert_eq!(out[0].payload.len(), MSS);
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.ssthresh, 2 * MSS, "max(FlightSize/2 = 2920, 2 SMSS)");
    assert_eq!(info.cwnd, 5 * MSS);
}

/// RFC 6582 §3.2: on entering recovery `recover` = the highest sequence
/// number sent; after the full ACK, a loss of the very next segment
/// (sent during recovery, beyond `recover`) produces duplicate ACKs with
/// ACK = recover + 1, which "covers more than recover": fast retransmit
/// again, before any RTO.
#[test]
fn fast_retransmit_for_a_loss_right_after_recovery() {
    let (mut h, c, iss) = open(plain_config());
    assert_eq!(h.stack.send(c, &pattern(20 * MSS, 28)), Ok(20 * MSS));
    h.poll();
    assert_eq!(h.take().len(), 10);
    h.send(Seg::ack(p(0), seg_start(iss, 1)));
    assert_eq!(h.take().len(), 2, "S10, S11");
    // S1 lost; S2..S11 arrive: ten duplicate ACKs.
    for k in 0..10 {
        h.send(Seg::ack(p(0), seg_start(iss, 1)));
        let out = h.take();
        let rtx: Vec<_> = out
            .iter()
            .filter(|o| o.tcp.seq < seg_start(iss, 12))
            .collect();
        if k == 2 {
            assert_eq!(rtx.len(), 1, "{out:#?}");
            assert_eq!(rtx[0].tcp.seq, seg_start(iss, 1));
        } else {
            assert!(rtx.is_empty(), "{out:#?}");
        }
    }
    // Recovery point: the highest sequence number sent at its start is
    // the end of S11. The full ACK covers it.
    h.send(Seg::ack(p(0), seg_start(iss, 12)));
    h.take();
    let info = h.stack.info(c).unwrap();
    assert!(
        info.bytes_in_flight >= 4 * MSS,
        "new data went out during recovery: {info:#?}"
    );
    // S12 (starting right at recover + 1) is lost; three duplicate ACKs.
    for _ in 0..2 {
        h.send(Seg::ack(p(0), seg_start(iss, 12)));
        let out = h.take();
        assert!(
            out.iter().all(|o| o.tcp.seq > seg_start(iss, 12)),
            "{out:#?}"
        );
    }
    h.send(Seg::ack(p(0), seg_start(iss, 12)));
    let out = h.take();
    let rtx: Vec<_> = out
        .iter()
        .filter(|o| o.tcp.seq == seg_start(iss, 12))
        .collect();
    assert_eq!(rtx.len(), 1, "one fast retransmission of S12: {out:#?}");
    assert_eq!(h.stack.info(c).unwrap().stats.fast_retransmits, 2);
}

/// RFC 5681 §3.1, equation (2): in slow start cwnd += min(N, SMSS) per ACK
/// of new data: one SMSS for an ACK of a full segment, N bytes for an ACK
/// of N < SMSS bytes ("ACK division" gains nothing).
#[test]
fn slow_start_grows_cwnd_by_min_acked_smss_per_ack() {
    let (mut h, c, iss) = open(plain_config());
    assert_eq!(h.stack.send(c, &pattern(30 * MSS, 30)), Ok(30 * MSS));
    h.poll();
    h.take();
    let mut cwnd = h.stack.info(c).unwrap().cwnd;
    assert_eq!(cwnd, 10 * MSS);
    for k in 1..=3 {
        h.send(Seg::ack(p(0), seg_start(iss, k)));
        let sent = h.take();
        assert_eq!(
            sent.len(),
            2,
            "one segment replaced, one more for the growth"
        );
        let now = h.stack.info(c).unwrap().cwnd;
        assert_eq!(now, cwnd + MSS);
        cwnd = now;
    }
    h.send(Seg::ack(p(0), seg_start(iss, 3) + 100));
    h.take();
    assert_eq!(h.stack.info(c).unwrap().cwnd, cwnd + 100);
}

/// RFC 5681 §3.1 limits slow-start growth to SMSS per ACK; this engine
/// deliberately uses RFC 3465 §2.2 Appropriate Byte Counting with
/// L = 2·SMSS (Linux grows by all acked segments), so stretch and batched
/// ACKs do not slow the window's growth: an ACK covering two segments
/// grows cwnd by 2·SMSS, one covering five by no more than that.
#[test]
fn slow_start_grows_cwnd_by_acked_bytes_up_to_two_smss_per_ack() {
    let (mut h, c, iss) = open(plain_config());
    assert_eq!(h.stack.send(c, &pattern(30 * MSS, 31)), Ok(30 * MSS));
    h.poll();
    h.take();
    let before = h.stack.info(c).unwrap().cwnd;
    h.send(Seg::ack(p(0), seg_start(iss, 2)));
    h.take();
    assert_eq!(h.stack.info(c).unwrap().cwnd, before + 2 * MSS);
    h.send(Seg::ack(p(0), seg_start(iss, 7)));
    h.take();
    assert_eq!(h.stack.info(c).unwrap().cwnd, before + 4 * MSS);
}

// =====================================================================
// Persist timer and zero windows
// =====================================================================

fn from_port(mut seg: Seg, port: u16) -> Seg {
    seg.src_port = port;
    seg
}

/// An answer to a zero-window probe: the peer's current state.
fn window_ack(iss: SeqNum, acked: usize, window: u16) -> Seg {
    Seg::ack(p(0), iss + 1 + acked).with_window(window)
}

/// A zero-window probe: something sent into a zero window to elicit an
/// ACK — either a zero-length segment with an old sequence number (the
/// BSD/Linux form) or at most one octet of new data (RFC 9293 §3.8.6.1).
fn assert_probe(o: &Out, iss: SeqNum) {
    assert!(
        !o.flags().syn() && !o.flags().rst() && !o.flags().fin(),
        "{o:#?}"
    );
    if o.payload.is_empty() {
        assert!(
            o.tcp.seq < iss + 1,
            "an empty probe must be unacceptable: {o:#?}"
        );
    } else {
        assert_eq!(
            o.payload.len(),
            1,
            "a probe carries at most one octet: {o:#?}"
        );
        assert_eq!(o.tcp.seq, iss + 1);
    }
}

/// RFC 9293 §3.8.6.1 and RFC 1122 §4.2.2.17: when the peer's window is
/// zero no data is sent; the sender probes the window, the first probe
/// after one RTO, and "SHOULD increase exponentially the interval between
/// successive probes".
#[test]
fn zero_window_stops_sending_and_probes_with_exponential_backoff() {
    let (mut h, c, iss) = open(plain_config());
    h.send(window_ack(iss, 0, 0));
    h.expect_silence();
    let t0 = h.now;
    assert_eq!(h.stack.send(c, &pattern(1000, 32)), Ok(1000));
    h.poll();
    h.expect_silence();
    let mut times = vec![t0];
    for _ in 0..8 {
        let out = next_output(&mut h, secs(300));
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_probe(&out[0], iss);
        times.push(out[0].at);
        h.send(window_ack(iss, 0, 0));
        h.expect_silence();
    }
    assert_eq!(times[1] - times[0], ms(200), "first probe after one RTO");
    for w in times.windows(3) {
        assert_eq!(w[2] - w[1], (w[1] - w[0]) * 2, "backoff doubles: {times:?}");
    }
}

/// RFC 1122 §4.2.2.17: "A TCP MAY keep its offered receive window closed
/// indefinitely. As long as the receiving TCP continues to send
/// acknowledgments in response to the probe segments, the sending TCP MUST
/// allow the connection to stay open." Two hours of answered probes (far
/// more than `max_retransmits`) and the connection is still there; the
/// interval is bounded (by `rto.max`, 120 s); data flows once the window
/// opens.
#[test]
fn zero_window_probing_continues_while_the_peer_answers() {
    let (mut h, c, iss) = open(plain_config());
    h.send(window_ack(iss, 0, 0));
    let data = pattern(1000, 33);
    assert_eq!(h.stack.send(c, &data), Ok(1000));
    h.poll();
    h.expect_silence();
    let end = h.now + secs(2 * 3600);
    let mut probes = 0;
    let mut last = h.now;
    while h.now < end {
        let out = next_output(&mut h, secs(600));
        assert_eq!(out.len(), 1, "a probe within 10 minutes: {out:#?}");
        assert_probe(&out[0], iss);
        assert!(
            out[0].at - last <= secs(120),
            "probe interval above rto.max"
        );
        last = out[0].at;
        probes += 1;
        h.send(window_ack(iss, 0, 0));
        h.expect_silence();
    }
    assert!(probes > 20, "{probes} probes");
    assert_eq!(h.stack.state(c), Ok(State::Established));
    assert!(h.events().is_empty());
    h.send(window_ack(iss, 0, 65535));
    let segs = h.take();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].payload, data);
}

/// RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17 (the reason for probing: "to
/// guarantee that when either TCP has a zero window the re-opening of the
/// window will be reliably reported"): the peer's window opens but the
/// ACK announcing it is lost; the engine's next probe elicits the current
/// window and the transfer resumes without any help from the peer.
#[test]
fn persist_timer_breaks_lost_window_update_deadlock() {
    let (mut h, c, iss) = open(plain_config());
    h.send(window_ack(iss, 0, 0));
    let data = pattern(2 * MSS, 34);
    assert_eq!(h.stack.send(c, &data), Ok(2 * MSS));
    h.poll();
    h.expect_silence();
    let probe = next_output(&mut h, secs(5));
    assert_eq!(probe.len(), 1);
    assert_probe(&probe[0], iss);
    h.send(window_ack(iss, 0, 0));
    h.expect_silence();
    // The peer's application reads; its window update is lost (not sent).
    // The next probe is answered with the open window.
    let probe = next_output(&mut h, secs(5));
    assert_eq!(probe.len(), 1, "the engine keeps probing");
    assert_probe(&probe[0], iss);
    let probed_one_octet = probe[0].payload.len();
    h.send(window_ack(iss, probed_one_octet, 65535));
    let segs = h.take();
    let mut got: Vec<u8> = probe[0].payload.clone();
    for s in data_segments(&segs) {
        assert_eq!(s.tcp.seq, iss + 1 + got.len());
        got.extend_from_slice(&s.payload);
    }
    assert_bytes(&got, &data, "the transfer resumed");
}

// =====================================================================
// Keepalive (RFC 1122 §4.2.3.6)
// =====================================================================

fn keepalive(idle: u64, interval: u64, count: u32) -> Option<KeepaliveConfig> {
    Some(KeepaliveConfig {
        idle: secs(idle),
        interval: secs(interval),
        count,
    })
}

fn assert_keepalive_probe(o: &Out, iss: SeqNum) {
    assert!(o.is_pure_ack(), "{o:#?}");
    assert_eq!(o.tcp.seq, iss, "SEG.SEQ = SND.NXT - 1");
    assert_eq!(o.tcp.ack, p(0));
}

/// RFC 1122 §4.2.3.6: keep-alives "MUST default to off": hours of idle
/// send nothing.
#[test]
fn keepalive_is_off_by_default() {
    let (mut h, c, _iss) = open(plain_config());
    h.advance(secs(3 * 3600));
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::Established));
    assert!(h.events().is_empty());
}

/// RFC 1122 §4.2.3.6: after `idle` without anything received, a probe
/// <SEQ=SND.NXT-1> with no data, then one per `interval` while unanswered.
#[test]
fn keepalive_probes_after_idle_then_every_interval() {
    let (mut h, c, iss) = open(plain_config());
    h.stack.set_keepalive(c, keepalive(60, 10, 5)).unwrap();
    let t0 = h.now;
    let mut times = Vec::new();
    for _ in 0..3 {
        let out = next_output(&mut h, secs(100));
        assert_eq!(out.len(), 1);
        assert_keepalive_probe(&out[0], iss);
        times.push(out[0].at - t0);
    }
    assert_eq!(times, vec![secs(60), secs(70), secs(80)]);
}

/// RFC 1122 §4.2.3.6: probes are sent only when nothing was received for
/// `idle`; an answer (or any segment) restarts the idle period.
#[test]
fn keepalive_answer_or_data_resets_the_idle_timer() {
    let (mut h, c, iss) = open(plain_config());
    h.stack.set_keepalive(c, keepalive(60, 10, 3)).unwrap();
    let t0 = h.now;
    h.advance(secs(30));
    h.send(Seg::data(p(0), iss + 1, b"ping"));
    h.take_one();
    let out = next_output(&mut h, secs(100));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].at - t0, secs(90), "idle counted from the data");
    assert_eq!(out[0].tcp.seq, iss);
    h.send(Seg::ack(p(4), iss + 1));
    h.expect_silence();
    let out = next_output(&mut h, secs(100));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].at - t0, secs(150), "idle counted from the answer");
    assert_eq!(h.stack.state(c), Ok(State::Established));
}

/// RFC 1122 §4.2.3.6 with Linux's TCP_KEEPCNT: after `count` unanswered
/// probes the connection is dropped with ETIMEDOUT and (as Linux does) a
/// RST <SEQ=SND.NXT>.
#[test]
fn keepalive_count_unanswered_probes_time_out_with_a_rst() {
    let (mut h, c, iss) = open(plain_config());
    h.stack.set_keepalive(c, keepalive(60, 10, 3)).unwrap();
    let t0 = h.now;
    h.advance(secs(200));
    let out = h.take();
    assert_eq!(out.len(), 4, "{out:#?}");
    for o in &out[..3] {
        assert_keepalive_probe(o, iss);
    }
    let rst = &out[3];
    assert!(rst.is_rst());
    assert_eq!(rst.tcp.seq, iss + 1);
    assert_eq!(rst.at - t0, secs(90));
    assert!(h.events().contains(&Event::Closed {
        conn: c,
        reason: CloseReason::TimedOut
    }));
    assert_eq!(h.stack.recv(c, &mut [0u8; 8]), Err(TcpError::TimedOut));
}

/// Keepalive at scale (the engine's design rule: "nothing here scans all
/// connections"): 10 000 idle connections with a 2-hour keepalive cost a
/// handful of wakeups in those two hours — `poll_at()` jumps towards the
/// one deadline they share instead of ticking — and nothing is sent before
/// it; at the deadline every connection probes once.
#[test]
fn ten_thousand_idle_keepalive_connections_cost_no_work_per_tick() {
    const N: u16 = 10_000;
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 64).unwrap();
    let mut iss_of = HashMap::new();
    let mut conns = Vec::new();
    for i in 0..N {
        let port = 10_000 + i;
        h.send(from_port(Seg::syn(PEER_ISS), port));
        let synack = h.take_one();
        let iss = synack.tcp.seq;
        h.send(from_port(Seg::ack(p(0), iss + 1), port));
        h.expect_silence();
        conns.push(h.stack.accept(l).unwrap());
        iss_of.insert(port, iss);
    }
    h.events();
    for &c in &conns {
        h.stack
            .set_keepalive(
                c,
                Some(KeepaliveConfig {
                    idle: secs(7200),
                    interval: secs(75),
                    count: 9,
                }),
            )
            .unwrap();
    }
    assert_eq!(h.stack.connection_count(), N as usize);

    let mut deadline = h.now + secs(7200);
    for round in 0..2 {
        let mut wakeups = 0;
        while let Some(t) = h.stack.poll_at() {
            assert!(t > h.now || wakeups == 0, "poll_at does not progress");
            if t >= deadline {
                break;
            }
            h.now = t;
            h.poll();
            wakeups += 1;
            assert!(
                wakeups <= 16,
                "round {round}: {wakeups} wakeups before the deadline"
            );
            assert!(h.sent.is_empty(), "sent before the deadline at {t:?}");
        }
        assert_eq!(
            h.stack.poll_at(),
            Some(deadline),
            "poll_at lands on the deadline"
        );
        h.now = deadline;
        h.poll();
        let probes = h.take();
        assert_eq!(probes.len(), N as usize, "one probe per connection");
        for o in &probes {
            let iss = iss_of[&o.tcp.dst_port];
            assert!(o.is_pure_ack());
            assert_eq!(o.tcp.seq, iss, "SEG.SEQ = SND.NXT - 1");
        }
        deadline += secs(75);
    }
}
