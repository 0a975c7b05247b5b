//! Send-buffer auto-tuning (as Linux's tcp_sndbuf_expand): the buffer
//! doubles, up to `send_buffer_max`, when an ACK arrives while every byte
//! it held was in flight and the application had more to write; it stays
//! put when the network (the peer's window) bounded the flight, or when
//! `send_buffer_max` equals `send_buffer`. Virtual time only.

mod common;

use common::*;
use xdp_tcp::tcp::{ConnId, TcpError};

/// Writes as much as the connection takes; returns the byte count.
fn fill(h: &mut Harness, c: ConnId) -> usize {
    let chunk = [0x5au8; 4096];
    let mut total = 0;
    loop {
        match h.stack.send(c, &chunk) {
            Ok(n) => total += n,
            Err(TcpError::WouldBlock) => return total,
            Err(e) => panic!("send failed: {e:?}"),
        }
    }
}

/// An established passive connection whose send buffer starts at
/// `initial` bytes and may grow to `max`.
fn connection(initial: usize, max: usize) -> (Harness, ConnId, xdp_tcp::wire::SeqNum) {
    let mut config = plain_config();
    config.tcp.send_buffer = initial;
    config.tcp.send_buffer_max = max;
    let mut h = Harness::new(config);
    let (c, _, iss) = h.passive_open();
    (h, c, iss)
}

/// Bytes of data the engine sent (taken).
fn sent_bytes(h: &mut Harness) -> usize {
    h.take().iter().map(|o| o.payload.len()).sum()
}

#[test]
fn a_buffer_limited_sender_doubles_its_buffer_up_to_the_maximum() {
    // Whole segments (MSS 1460), so Nagle holds nothing back: two
    // segments at first, all inside the initial window.
    let (mut h, c, iss) = connection(2920, 11680);
    let mut acked = iss + 1;
    let mut capacities = Vec::new();
    for _ in 0..4 {
        let written = fill(&mut h, c);
        h.poll();
        assert_eq!(sent_bytes(&mut h), written, "the whole buffer is in flight");
        acked += written;
        h.send(Seg::ack(PEER_ISS + 1, acked));
        capacities.push(written);
    }
    // The first fill took the initial two segments; each ACK of a full
    // flight doubled the room, until the maximum.
    assert_eq!(capacities, [2920, 5840, 11680, 11680]);
}

#[test]
fn a_sender_bounded_by_the_peer_window_keeps_its_buffer() {
    let (mut h, c, iss) = connection(8760, 65536);
    // The peer opens only two segments: most of the buffer waits unsent.
    h.send(Seg::ack(PEER_ISS + 1, iss + 1).with_window(2920));
    assert_eq!(fill(&mut h, c), 8760);
    h.poll();
    assert_eq!(sent_bytes(&mut h), 2920);
    h.send(Seg::ack(PEER_ISS + 1, iss + 1 + 2920).with_window(2920));
    // Only the acknowledged bytes made room.
    assert_eq!(fill(&mut h, c), 2920);
}

#[test]
fn auto_tuning_is_off_when_the_maximum_is_the_initial_size() {
    let (mut h, c, iss) = connection(2920, 2920);
    assert_eq!(fill(&mut h, c), 2920);
    h.poll();
    assert_eq!(sent_bytes(&mut h), 2920);
    h.send(Seg::ack(PEER_ISS + 1, iss + 1 + 2920));
    assert_eq!(fill(&mut h, c), 2920);
}
