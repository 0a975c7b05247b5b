//! `Stack::echo_received`: received bytes moved straight into the same
//! connection's send buffer. Each test drives the engine from a scripted
//! peer on a virtual clock (see `common`) and checks the contract: every
//! byte moved exactly once and in order, partial moves bounded by the
//! send buffer with `Writable` after, the receive window announced by the
//! SWS-avoidance rules (RFC 9293 §3.8.6.2.2, RFC 1122 §4.2.3.3), and the
//! errors of a closed, half-closed or reset connection.
mod common;

use common::*;
use xdp_tcp::tcp::{Event, StackConfig, TcpError};
use xdp_tcp::wire::{SeqNum, TcpFlags};

const MSS: usize = 1460;

/// The peer's sequence number for byte `off` of its stream.
fn p(off: usize) -> SeqNum {
    PEER_ISS + 1 + off
}

/// Position-dependent bytes, so a lost, repeated or misplaced byte shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Fixed buffer sizes: auto-tuning off, so sizes and windows are exact.
fn fixed_config(send_buffer: usize) -> StackConfig {
    let mut c = plain_config();
    c.tcp.send_buffer = send_buffer;
    c.tcp.send_buffer_max = send_buffer;
    c.tcp.recv_buffer_max = c.tcp.recv_buffer;
    c
}

/// Sends `data` from the peer in MSS-sized segments starting at stream
/// offset `from`; returns the engine's segments (its ACKs).
fn peer_sends(h: &mut Harness, from: usize, data: &[u8], ack: SeqNum) -> Vec<Out> {
    for (i, chunk) in data.chunks(MSS).enumerate() {
        h.send(Seg::data(p(from + i * MSS), ack, chunk));
    }
    h.take()
}

/// Payload bytes of `segs`, in the order sent, checking they are
/// contiguous from `expect_seq`; returns them and the next sequence number.
fn payload_from(segs: &[Out], mut expect_seq: SeqNum) -> (Vec<u8>, SeqNum) {
    let mut bytes = Vec::new();
    for s in segs.iter().filter(|s| !s.payload.is_empty()) {
        assert_eq!(
            s.tcp.seq, expect_seq,
            "data segments out of order or repeated"
        );
        bytes.extend_from_slice(&s.payload);
        expect_seq += s.payload.len();
    }
    (bytes, expect_seq)
}

#[test]
fn every_byte_is_moved_once_and_in_order() {
    let mut h = Harness::new(fixed_config(65536));
    let (c, _, iss) = h.passive_open();
    let data = pattern(5000);
    peer_sends(&mut h, 0, &data, iss + 1);

    // Uneven pieces, each moved exactly: the limit is honoured.
    let mut moved = 0;
    for max in [1, 7, 1000, 1] {
        assert_eq!(h.stack.echo_received(c, max), Ok(max));
        moved += max;
    }
    assert_eq!(h.stack.echo_received(c, usize::MAX), Ok(5000 - moved));
    assert_eq!(
        h.stack.echo_received(c, usize::MAX),
        Err(TcpError::WouldBlock)
    );
    // Nothing is left to read: the bytes left the receive buffer.
    let mut buf = [0u8; 16];
    assert_eq!(h.stack.recv(c, &mut buf), Err(TcpError::WouldBlock));
    assert_eq!(h.stack.info(c).unwrap().recv_buffered, 0);
    assert_eq!(h.stack.info(c).unwrap().send_buffered, 5000);

    // What goes out is the input, once, in order (ACKing as it comes).
    let mut echoed = Vec::new();
    let mut next = iss + 1;
    for _ in 0..20 {
        h.poll();
        let segs = h.take();
        let (bytes, n) = payload_from(&segs, next);
        echoed.extend_from_slice(&bytes);
        next = n;
        if echoed.len() == data.len() {
            break;
        }
        h.send(Seg::ack(p(5000), next));
    }
    assert_eq!(echoed, data);
}

#[test]
fn a_full_send_buffer_bounds_the_move_and_writable_resumes_it() {
    // The smallest send buffer the engine allows.
    let mut h = Harness::new(fixed_config(1024));
    let (c, _, iss) = h.passive_open();
    let data = pattern(3000);
    peer_sends(&mut h, 0, &data, iss + 1);

    assert_eq!(h.stack.echo_received(c, usize::MAX), Ok(1024));
    assert_eq!(
        h.stack.echo_received(c, usize::MAX),
        Err(TcpError::WouldBlock)
    );
    let info = h.stack.info(c).unwrap();
    assert_eq!((info.send_buffered, info.recv_buffered), (1024, 1976));
    h.events();

    let mut echoed = Vec::new();
    let mut next = iss + 1;
    while echoed.len() < data.len() {
        h.poll();
        let (bytes, n) = payload_from(&h.take(), next);
        assert!(!bytes.is_empty(), "the queued bytes go out");
        echoed.extend_from_slice(&bytes);
        next = n;
        // The peer's ACK frees the buffer: Writable, and the next move.
        h.send(Seg::ack(p(3000), next));
        if echoed.len() < data.len() {
            assert!(h.events().contains(&Event::Writable(c)));
            // Everything sent was acknowledged: the buffer is empty, and
            // the move takes a full buffer or what is left.
            assert_eq!(h.stack.info(c).unwrap().send_buffered, 0);
            let left = data.len() - echoed.len();
            assert_eq!(h.stack.echo_received(c, usize::MAX), Ok(1024.min(left)));
        }
    }
    assert_eq!(echoed, data);
}

#[test]
fn freed_window_follows_receiver_sws_avoidance() {
    let mut h = Harness::new(fixed_config(65536));
    let (c, _, iss) = h.passive_open();
    // Fill the 65535-byte receive buffer: the last ACK closes the window.
    let data = pattern(65535);
    let acks = peer_sends(&mut h, 0, &data, iss + 1);
    assert_eq!(acks.last().unwrap().tcp.window, 0);

    // 100 bytes freed are less than an MSS: the right edge stays put
    // (RFC 9293 §3.8.6.2.2), and no pure window update is sent; the
    // echoed bytes go out with window 0.
    assert_eq!(h.stack.echo_received(c, 100), Ok(100));
    h.poll();
    let out = h.take_one();
    assert_eq!(out.payload.len(), 100);
    assert_eq!(out.tcp.window, 0);

    // 2100 bytes freed pass the threshold (min(MSS, buffer / 2)): the
    // next segment opens the window to all of it.
    assert_eq!(h.stack.echo_received(c, 2000), Ok(2000));
    h.poll();
    let segs = h.take();
    assert!(!segs.is_empty());
    assert!(segs.iter().all(|s| s.tcp.flags.ack()));
    assert_eq!(segs[0].tcp.window, 2100);
    assert_eq!(segs[0].tcp.ack, p(65535));
}

#[test]
fn end_of_stream_is_ok_zero_after_the_last_byte() {
    let mut h = Harness::new(fixed_config(65536));
    let (c, _, iss) = h.passive_open();
    let data = pattern(300);
    h.send(Seg::data(p(0), iss + 1, &data).with_flags(TcpFlags::FIN | TcpFlags::ACK));
    h.take();
    assert_eq!(h.stack.echo_received(c, usize::MAX), Ok(300));
    assert_eq!(h.stack.echo_received(c, usize::MAX), Ok(0));
}

#[test]
fn after_our_fin_the_bytes_stay_unread_and_the_move_fails() {
    let mut h = Harness::new(fixed_config(65536));
    let (c, _, iss) = h.passive_open();
    let data = pattern(300);
    h.send(Seg::data(p(0), iss + 1, &data));
    h.take();
    h.stack.shutdown_write(c).unwrap();
    assert_eq!(
        h.stack.echo_received(c, usize::MAX),
        Err(TcpError::BrokenPipe)
    );
    let mut buf = vec![0u8; 1000];
    assert_eq!(h.stack.recv(c, &mut buf), Ok(300));
    assert_eq!(&buf[..300], &data[..]);
}

#[test]
fn a_reset_is_reported_once_then_end_of_stream() {
    let mut h = Harness::new(fixed_config(65536));
    let (c, _, iss) = h.passive_open();
    h.send(Seg::data(p(0), iss + 1, &pattern(100)));
    h.send(Seg::rst(p(100)));
    h.take();
    assert_eq!(
        h.stack.echo_received(c, usize::MAX),
        Err(TcpError::ConnectionReset)
    );
    assert_eq!(h.stack.echo_received(c, usize::MAX), Ok(0));
}

#[test]
fn a_closed_handle_is_invalid() {
    let mut h = Harness::new(fixed_config(65536));
    let (c, _, _) = h.passive_open();
    h.stack.close(c).unwrap();
    assert_eq!(
        h.stack.echo_received(c, usize::MAX),
        Err(TcpError::InvalidHandle)
    );
}

#[test]
fn nothing_received_would_block() {
    let mut h = Harness::new(fixed_config(65536));
    let (c, _, _) = h.passive_open();
    assert_eq!(
        h.stack.echo_received(c, usize::MAX),
        Err(TcpError::WouldBlock)
    );
}
