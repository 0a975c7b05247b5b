//! RFC-rule tests for opening, closing and resetting connections:
//! RFC 9293 §3.10.7 event processing for CLOSED (no TCB), LISTEN,
//! SYN-SENT, SYN-RECEIVED and the close path (FIN-WAIT-1, FIN-WAIT-2,
//! CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT), with the RFC 5961 hardening
//! of RST, SYN and ACK processing, option negotiation (RFC 7323, RFC 2018)
//! and ISN selection (RFC 6528).
//!
//! Each test drives the engine with hand-built peer segments on a virtual
//! clock and checks the exact reply. Names state the rule; comments cite it.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::*;
use xdp_tcp::tcp::{
    CloseReason, ConnId, Event, FourTuple, ListenerId, Stack, StackConfig, State, TcpError,
};
use xdp_tcp::wire::{Ipv4Packet, MacAddr, SeqNum, TcpFlags, TcpOptions};

// ---------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------

/// The peer's first sequence number after its SYN.
const P1: SeqNum = SeqNum(PEER_ISS.0 + 1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// `plain_config()` with timestamps, SACK and window scaling on.
fn options_config() -> StackConfig {
    let mut cfg = plain_config();
    cfg.tcp.timestamps = true;
    cfg.tcp.sack = true;
    cfg.tcp.window_scaling = true;
    cfg.tcp.recv_buffer = 256 * 1024;
    // Auto-tuning may grow the buffer to 4 MiB: the announced window
    // scale covers the largest buffer (RFC 7323 §2.3), a shift of 7.
    cfg.tcp.recv_buffer_max = 4 * 1024 * 1024;
    cfg
}

/// Sets the peer's source port (independent of the harness's builder names).
trait SrcPort {
    fn src(self, port: u16) -> Seg;
}

impl SrcPort for Seg {
    fn src(mut self, port: u16) -> Seg {
        self.src_port = port;
        self
    }
}

fn peer_at(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(PEER_IP, port)
}

fn tuple_from(port: u16) -> FourTuple {
    FourTuple {
        local: us(),
        remote: peer_at(port),
    }
}

/// A reply to an unacceptable segment: `<SEQ=seq><CTL=RST>` and nothing else.
#[track_caller]
fn assert_rst_seq(out: &Out, seq: SeqNum) {
    assert_eq!(out.flags(), TcpFlags::RST, "expected a bare RST: {out:#?}");
    assert_eq!(out.tcp.seq, seq, "RST sequence number: {out:#?}");
    assert!(out.payload.is_empty());
    assert_eq!(out.dst_mac, PEER_MAC);
}

/// `<SEQ=0><ACK=ack><CTL=RST,ACK>`.
#[track_caller]
fn assert_rst_ack(out: &Out, ack: SeqNum) {
    assert_eq!(
        out.flags(),
        TcpFlags::RST | TcpFlags::ACK,
        "expected RST+ACK: {out:#?}"
    );
    assert_eq!(out.tcp.seq, SeqNum(0), "RST+ACK sequence number: {out:#?}");
    assert_eq!(out.tcp.ack, ack, "RST+ACK acknowledgment: {out:#?}");
    assert!(out.payload.is_empty());
    assert_eq!(out.dst_mac, PEER_MAC);
}

/// `<SEQ=seq><ACK=ack><CTL=ACK>` with no data.
#[track_caller]
fn assert_ack(out: &Out, seq: SeqNum, ack: SeqNum) {
    assert!(out.is_pure_ack(), "expected a pure ACK: {out:#?}");
    assert_eq!(out.tcp.seq, seq, "ACK sequence number: {out:#?}");
    assert_eq!(out.tcp.ack, ack, "ACK acknowledgment: {out:#?}");
}

/// Any RST (our own abort: `<SEQ=SND.NXT><CTL=RST>`, the ACK bit optional).
#[track_caller]
fn assert_own_rst(out: &Out, seq: SeqNum) {
    assert!(out.is_rst(), "expected a RST: {out:#?}");
    assert!(!out.flags().fin() && !out.flags().syn(), "{out:#?}");
    assert_eq!(out.tcp.seq, seq, "RST sequence number: {out:#?}");
    assert!(out.payload.is_empty());
}

fn recv_vec(h: &mut Harness, c: ConnId) -> Result<Vec<u8>, TcpError> {
    let mut buf = [0u8; 4096];
    let n = h.stack.recv(c, &mut buf)?;
    Ok(buf[..n].to_vec())
}

fn closed_events(events: &[Event]) -> Vec<(ConnId, CloseReason)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Closed { conn, reason } => Some((conn, reason)),
            _ => None,
        })
        .collect()
}

/// `connect` to the peer and take the SYN; returns the handle and our ISS.
fn connect(h: &mut Harness) -> (ConnId, SeqNum) {
    let c = h
        .stack
        .connect(h.now, us(), peer(), PEER_MAC)
        .expect("connect");
    h.poll();
    let syn = h.take_one();
    assert_eq!(syn.flags(), TcpFlags::SYN);
    (c, syn.tcp.seq)
}

/// Completes a passive handshake that starts with `syn`; returns the
/// accepted connection, our ISS and our SYN-ACK.
fn handshake(h: &mut Harness, l: ListenerId, syn: Seg) -> (ConnId, SeqNum, Out) {
    let port = syn.src_port;
    let irs = syn.seq;
    let peer_ts = syn.options.timestamps;
    h.send(syn);
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.tcp.ack, irs + 1);
    let iss = synack.tcp.seq;
    let mut ack = Seg::ack(irs + 1, iss + 1).src(port);
    if let (Some(p), Some(o)) = (peer_ts, synack.tcp.options.timestamps) {
        ack.options.timestamps = timestamps(p.tsval.wrapping_add(1), o.tsval);
    }
    h.send(ack);
    h.expect_silence();
    let c = h.stack.accept(l).expect("accept");
    h.events();
    (c, iss, synack)
}

/// A connection (passively opened, handle kept) driven into `state` with
/// `shutdown_write` and peer segments. Returns the handle, the listener,
/// and the engine's SND.NXT and RCV.NXT in that state.
fn drive_to(h: &mut Harness, state: State) -> (ConnId, ListenerId, SeqNum, SeqNum) {
    let (c, l, iss) = h.passive_open();
    let (snd, rcv) = match state {
        State::Established => (iss + 1, P1),
        State::FinWait1 | State::FinWait2 | State::Closing | State::TimeWait => {
            h.stack.shutdown_write(c).unwrap();
            h.poll();
            let fin = h.take_one();
            assert_eq!(fin.flags(), TcpFlags::FIN | TcpFlags::ACK);
            assert_eq!(fin.tcp.seq, iss + 1);
            match state {
                State::FinWait1 => (iss + 2, P1),
                State::FinWait2 => {
                    h.send(Seg::ack(P1, iss + 2));
                    h.expect_silence();
                    (iss + 2, P1)
                }
                State::Closing => {
                    h.send(Seg::fin(P1, iss + 1));
                    assert_ack(&h.take_one(), iss + 2, P1 + 1);
                    (iss + 2, P1 + 1)
                }
                _ => {
                    h.send(Seg::fin(P1, iss + 2));
                    assert_ack(&h.take_one(), iss + 2, P1 + 1);
                    (iss + 2, P1 + 1)
                }
            }
        }
        State::CloseWait | State::LastAck => {
            h.send(Seg::fin(P1, iss + 1));
            assert_ack(&h.take_one(), iss + 1, P1 + 1);
            if state == State::LastAck {
                h.stack.shutdown_write(c).unwrap();
                h.poll();
                let fin = h.take_one();
                assert_eq!(fin.flags(), TcpFlags::FIN | TcpFlags::ACK);
                assert_eq!(fin.tcp.seq, iss + 1);
                (iss + 2, P1 + 1)
            } else {
                (iss + 1, P1 + 1)
            }
        }
        other => panic!("drive_to({other}) is not supported"),
    };
    assert_eq!(h.state(), Some(state));
    h.events();
    (c, l, snd, rcv)
}

/// The synchronized states of the close path (plus ESTABLISHED).
const CLOSE_PATH: [State; 7] = [
    State::Established,
    State::FinWait1,
    State::FinWait2,
    State::CloseWait,
    State::Closing,
    State::LastAck,
    State::TimeWait,
];

// ---------------------------------------------------------------------
// No connection: RFC 9293 §3.10.7.1 (CLOSED)
// ---------------------------------------------------------------------

// RFC 9293 §3.10.7.1: "If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>".
#[test]
fn segment_with_ack_to_closed_port_gets_rst_with_seq_of_seg_ack() {
    let mut h = Harness::plain();
    let cases = [
        Seg::ack(SeqNum(5000), SeqNum(777)),
        Seg::data(SeqNum(5000), SeqNum(888), b"hello"),
        Seg::fin(SeqNum(5000), SeqNum(999)),
        Seg::syn(SeqNum(5000)).with_ack(SeqNum(1234)),
    ];
    for seg in cases {
        let ack = seg.ack;
        h.send(seg);
        let rst = h.take_one();
        assert_rst_seq(&rst, ack);
        assert_eq!(rst.tcp.src_port, US_PORT);
        assert_eq!(rst.tcp.dst_port, PEER_PORT);
    }
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.stats().rx_no_connection, 4);
    assert_eq!(h.stack.stats().tx_rst, 4);
}

// RFC 9293 §3.10.7.1: "If the ACK bit is off, sequence number zero is used,
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>"; a SYN counts one.
#[test]
fn syn_to_closed_port_gets_rst_ack_with_ack_of_seq_plus_one() {
    let mut h = Harness::plain();
    h.send(Seg::syn(SeqNum(4242)));
    assert_rst_ack(&h.take_one(), SeqNum(4243));
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.state(), None);
}

// RFC 9293 §3.10.7.1: SEG.LEN counts the data octets plus one for SYN and
// one for FIN (§3.4 "SEG.LEN = the number of octets occupied by the data in
// the segment (counting SYN and FIN)").
#[test]
fn rst_ack_to_closed_port_acknowledges_seg_len_counting_data_syn_and_fin() {
    let mut h = Harness::plain();
    let s = SeqNum(70_000);
    let cases: [(Seg, usize); 5] = [
        (Seg::new(s, TcpFlags::PSH).with_payload(b"0123456789"), 10),
        (Seg::new(s, TcpFlags::FIN), 1),
        (Seg::new(s, TcpFlags::FIN).with_payload(b"0123456789"), 11),
        (Seg::syn(s).with_payload(b"abc"), 4),
        (
            Seg::syn(s)
                .with_flags(TcpFlags::FIN)
                .with_payload(b"abcdef"),
            8,
        ),
    ];
    for (seg, len) in cases {
        let what = format!("{:?} with {} data octets", seg.flags, seg.payload.len());
        h.send(seg);
        let out = h.take();
        assert_eq!(out.len(), 1, "{what}: {out:#?}");
        assert!(out[0].is_rst(), "{what}");
        assert_eq!(
            out[0].tcp.ack,
            s + len,
            "{what}: ACK must be SEG.SEQ+SEG.LEN"
        );
        assert_rst_ack(&out[0], s + len);
    }
}

// RFC 9293 §3.10.7.1: a SYN to a port with no listener is answered with
// RST+ACK even when the host listens elsewhere (another port, another address).
#[test]
fn syn_to_port_without_listener_gets_rst_ack_while_other_ports_listen() {
    let mut h = Harness::plain();
    h.stack
        .listen(SocketAddrV4::new(US_IP, US_PORT + 1), 16)
        .unwrap();
    h.stack
        .listen(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), US_PORT), 16)
        .unwrap();
    h.send(Seg::syn(PEER_ISS));
    assert_rst_ack(&h.take_one(), PEER_ISS + 1);
    assert_eq!(h.stack.connection_count(), 0);
}

// RFC 9293 §3.10.7.1: "An incoming segment containing a RST is discarded."
#[test]
fn rst_to_closed_port_is_never_answered() {
    let mut h = Harness::plain();
    h.send(Seg::rst(SeqNum(1)));
    h.send(Seg::rst(SeqNum(2)).with_ack(SeqNum(3)));
    h.send(Seg::rst(SeqNum(4)).with_flags(TcpFlags::SYN));
    h.send(
        Seg::rst(SeqNum(5))
            .with_flags(TcpFlags::FIN)
            .with_payload(b"x"),
    );
    h.expect_silence();
    assert_eq!(h.stack.stats().tx_frames, 0);
    assert_eq!(h.stack.stats().tx_rst, 0);
}

// A unicast frame for another MAC address is not ours to answer (the NIC
// filter's job, done in software here); RFC 1122 §4.2.3.10: "A TCP
// implementation MUST silently discard an incoming SYN segment that is
// addressed to a broadcast or multicast address."
#[test]
fn frame_for_another_mac_is_dropped_and_counted_without_reply() {
    let mut h = Harness::plain();
    h.stack.listen(us(), 16).unwrap();
    let other = MacAddr([2, 0, 0, 0, 0, 0x99]);
    h.send_raw(&build_frame_to(&Seg::syn(PEER_ISS), other, US_IP));
    h.send_raw(&build_frame_to(&Seg::ack(P1, SeqNum(9)), other, US_IP));
    h.expect_silence();
    assert_eq!(h.stack.stats().rx_wrong_mac, 2);
    assert_eq!(h.stack.connection_count(), 0);
    // Broadcast (link or IP) SYNs are never answered either.
    h.send_raw(&build_frame_to(
        &Seg::syn(PEER_ISS),
        MacAddr::BROADCAST,
        US_IP,
    ));
    h.send_raw(&build_frame_to(
        &Seg::syn(PEER_ISS),
        US_MAC,
        Ipv4Addr::BROADCAST,
    ));
    h.expect_silence();
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.stats().tx_frames, 0);
    // The listener is intact.
    h.send(Seg::syn(PEER_ISS));
    assert_eq!(h.take_one().flags(), TcpFlags::SYN | TcpFlags::ACK);
}

// RFC 1122 §4.2.2.7 (the receiver MUST check the TCP checksum) and
// §3.2.1.2 (a host MUST "silently discard every datagram that has a bad
// [IP header] checksum"): nothing is answered, the drop is counted.
#[test]
fn bad_checksums_are_dropped_and_counted_without_reply() {
    let mut h = Harness::plain();
    h.stack.listen(us(), 16).unwrap();
    let good = build_frame(&Seg::syn(PEER_ISS).with_payload(b"payload"));
    let mut bad_tcp = good.clone();
    bad_tcp[14 + 20 + 16] ^= 0xff; // TCP checksum field
    let mut bad_payload = good.clone();
    let last = bad_payload.len() - 1;
    bad_payload[last] ^= 0x01; // a payload bit
    let mut bad_ip = good.clone();
    bad_ip[14 + 10] ^= 0xff; // IPv4 header checksum
    h.send_raw(&bad_tcp);
    h.send_raw(&bad_payload);
    h.send_raw(&bad_ip);
    let mut bad_ack = build_frame(&Seg::ack(P1, SeqNum(77)));
    bad_ack[14 + 20 + 16] ^= 0x55;
    h.send_raw(&bad_ack);
    h.expect_silence();
    assert_eq!(h.stack.stats().rx_bad_checksum, 4);
    assert_eq!(h.stack.stats().rx_frames, 4);
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.stats().tx_frames, 0);
}

// RFC 791 §3.1 (Total Length) / RFC 1122 §3.2.1: a datagram shorter than
// its headers or its IPv4 total length claim is malformed and silently
// discarded; the drop is counted.
#[test]
fn truncated_frames_are_dropped_and_counted_without_reply() {
    let mut h = Harness::plain();
    h.stack.listen(us(), 16).unwrap();
    let good = build_frame(&Seg::syn(PEER_ISS).with_payload(b"0123456789"));
    let cuts = [0, 10, 14, 20, 33, 40, 14 + 20 + 19, good.len() - 1];
    for &cut in &cuts {
        h.send_raw(&good[..cut]);
    }
    // Claimed IPv4 length larger than what arrived.
    let mut long_claim = good.clone();
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut long_claim[14..]);
        let total = ip.total_len();
        ip.set_total_len(total + 8);
        ip.fill_checksum();
    }
    h.send_raw(&long_claim);
    h.expect_silence();
    assert_eq!(
        h.stack.stats().rx_malformed,
        cuts.len() as u64 + 1,
        "{:?}",
        h.stack.stats()
    );
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.stats().tx_frames, 0);
}

// This host does not reassemble (a documented deviation from RFC 1122
// §3.3.2; TCP sizes segments by MSS and sends with DF, RFC 9293 §3.7), so
// fragments — more-fragments set, or a non-zero offset — are dropped and
// counted, never answered.
#[test]
fn ipv4_fragments_are_dropped_and_counted_without_reply() {
    let mut h = Harness::plain();
    h.stack.listen(us(), 16).unwrap();
    let mut first = build_frame(&Seg::syn(PEER_ISS).with_payload(b"0123456789"));
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut first[14..]);
        ip.set_more_frags(true);
        ip.fill_checksum();
    }
    let mut later = build_frame(&Seg::ack(P1, SeqNum(5)).with_payload(b"abcdefgh"));
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut later[14..]);
        ip.set_frag_offset(8);
        ip.fill_checksum();
    }
    h.send_raw(&first);
    h.send_raw(&later);
    h.expect_silence();
    assert_eq!(h.stack.stats().rx_fragments, 2);
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.stats().tx_frames, 0);
}

// ---------------------------------------------------------------------
// LISTEN: RFC 9293 §3.10.7.2
// ---------------------------------------------------------------------

// RFC 9293 §3.10.7.2 first: "An incoming RST segment could not be valid
// since it could not have been sent in response to anything sent by this
// incarnation of the connection. An incoming RST should be ignored."
#[test]
fn listen_ignores_rst() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::rst(P1));
    h.send(Seg::rst(P1).with_ack(SeqNum(99)));
    h.send(Seg::rst(PEER_ISS).with_flags(TcpFlags::SYN));
    h.expect_silence();
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
    // Still listening.
    h.send(Seg::syn(PEER_ISS));
    assert_eq!(h.take_one().flags(), TcpFlags::SYN | TcpFlags::ACK);
}

// RFC 9293 §3.10.7.2 second: "Any acknowledgment is bad if it arrives on a
// connection still in the LISTEN state. An acceptable reset segment should
// be formed for any arriving ACK-bearing segment. The RST should be
// formatted as follows: <SEQ=SEG.ACK><CTL=RST>" — including a SYN+ACK.
#[test]
fn listen_answers_any_ack_with_rst_seq_seg_ack() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    let cases = [
        Seg::ack(P1, SeqNum(777)),
        Seg::data(P1, SeqNum(888), b"data"),
        Seg::fin(P1, SeqNum(999)),
        Seg::syn(PEER_ISS).with_ack(SeqNum(31337)),
    ];
    for seg in cases {
        let ack = seg.ack;
        h.send(seg);
        assert_rst_seq(&h.take_one(), ack);
    }
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
}

// RFC 9293 §3.10.7.2 third: a SYN is answered with
// <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>, RCV.NXT = SEG.SEQ+1; §3.7.1: our MSS
// option is the MTU less the fixed IP and TCP headers (1500 − 40 = 1460).
#[test]
fn listen_answers_syn_with_synack_acking_seq_plus_one_and_mss_1460() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.tcp.ack, PEER_ISS + 1);
    assert_eq!(synack.tcp.options.mss, Some(1460));
    assert_eq!(synack.tcp.src_port, US_PORT);
    assert_eq!(synack.tcp.dst_port, PEER_PORT);
    assert_eq!(synack.dst_mac, PEER_MAC);
    assert!(synack.payload.is_empty());
    assert!(synack.tcp.window > 0);
    assert_eq!(h.state(), Some(State::SynReceived));
    // Not accepted before the handshake completes.
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
    assert!(h.events().is_empty());
}

// RFC 9293 §3.7.1: the sender uses the MSS the peer announced (bounded by
// its own MTU); with no MSS option, 536 (RFC 9293 §3.7.1, RFC 1122 §4.2.2.6).
#[test]
fn listen_honours_peer_mss_and_assumes_536_without_option() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    let mut small = Seg::syn(PEER_ISS).src(41000);
    small.options.mss = Some(1000);
    let (c, _, _) = handshake(&mut h, l, small);
    assert_eq!(h.stack.info(c).unwrap().snd_mss, 1000);

    let mut none = Seg::syn(PEER_ISS).src(41001);
    none.options.mss = None;
    let (c, _, synack) = handshake(&mut h, l, none);
    assert_eq!(synack.tcp.options.mss, Some(1460), "we still announce ours");
    assert_eq!(h.stack.info(c).unwrap().snd_mss, 536);

    let mut jumbo = Seg::syn(PEER_ISS).src(41002);
    jumbo.options.mss = Some(9000);
    let (c, _, _) = handshake(&mut h, l, jumbo);
    assert_eq!(
        h.stack.info(c).unwrap().snd_mss,
        1460,
        "bounded by our own MTU"
    );
}

// RFC 9293 §3.10.7.2 fourth: "Any other control or text-bearing segment
// (not containing SYN) must have an ACK and thus would have been discarded
// by the ACK processing ... drop the segment and return."
#[test]
fn listen_drops_data_and_fin_without_syn_silently() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::new(P1, TcpFlags::PSH).with_payload(b"no syn, no ack"));
    h.send(Seg::new(P1, TcpFlags::FIN));
    h.send(Seg::new(P1, TcpFlags::FIN).with_payload(b"data+fin"));
    h.send(Seg::new(P1, TcpFlags::empty()));
    h.expect_silence();
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
    assert!(h.events().is_empty());
}

// Listen backlog (RFC 9293 §3.10.1 leaves queueing to the implementation;
// Linux drops the SYN and lets the client retry): with backlog N, the
// N+1th embryonic connection's SYN is dropped and counted.
#[test]
fn syn_backlog_of_n_drops_syn_n_plus_one_and_counts_listen_drops() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 2).unwrap();
    h.send(Seg::syn(PEER_ISS).src(41001));
    assert_eq!(h.take_one().flags(), TcpFlags::SYN | TcpFlags::ACK);
    h.send(Seg::syn(PEER_ISS).src(41002));
    assert_eq!(h.take_one().flags(), TcpFlags::SYN | TcpFlags::ACK);
    h.send(Seg::syn(PEER_ISS).src(41003));
    h.expect_silence();
    assert_eq!(h.stack.stats().listen_drops, 1);
    assert_eq!(h.stack.connection_count(), 2);
    assert_eq!(h.stack.state_of_tuple(&tuple_from(41003)), None);
    // Completing one handshake moves it to the accept queue; accepting it
    // frees the room, and the retried SYN is answered.
    let synack_port = 41001;
    let iss = {
        h.send(Seg::syn(PEER_ISS).src(synack_port));
        h.take_one().tcp.seq
    };
    h.send(Seg::ack(P1, iss + 1).src(synack_port));
    h.stack.accept(l).expect("accept");
    h.send(Seg::syn(PEER_ISS).src(41003));
    assert_eq!(h.take_one().flags(), TcpFlags::SYN | TcpFlags::ACK);
}

// Accept queue limit: with backlog N and N established connections waiting
// for accept(), a new SYN is dropped (and counted) until accept() makes room.
#[test]
fn full_accept_queue_drops_new_syn_until_accept() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 1).unwrap();
    h.send(Seg::syn(PEER_ISS).src(41001));
    let iss = h.take_one().tcp.seq;
    h.send(Seg::ack(P1, iss + 1).src(41001));
    h.expect_silence();
    // Accept queue full (1 of 1).
    h.send(Seg::syn(PEER_ISS).src(41002));
    h.expect_silence();
    assert_eq!(h.stack.stats().listen_drops, 1);
    assert_eq!(h.stack.state_of_tuple(&tuple_from(41002)), None);
    h.stack.accept(l).expect("accept");
    h.send(Seg::syn(PEER_ISS).src(41002));
    assert_eq!(h.take_one().flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(h.stack.stats().listen_drops, 1);
}

// RFC 6528 §3 (RFC 9293 §3.4.1): ISN = M + F(4-tuple, secret) — different
// per 4-tuple, dependent on the secret, and moving with a 4 µs clock.
#[test]
fn isns_differ_per_four_tuple_and_are_not_a_fixed_value() {
    let mut h = Harness::plain();
    h.stack.listen(us(), 64).unwrap();
    let mut isns = Vec::new();
    for port in 41000..41010 {
        h.send(Seg::syn(PEER_ISS).src(port));
        isns.push(h.take_one().tcp.seq);
    }
    let mut distinct = isns.clone();
    distinct.sort_by_key(|s| s.0);
    distinct.dedup();
    assert_eq!(distinct.len(), isns.len(), "ISNs collide: {isns:?}");
    assert!(isns.iter().all(|s| *s != SeqNum(0)));

    // Another secret gives another ISN for the same tuple at the same time.
    let now = h.now;
    let mut other = Harness::plain();
    other.stack = Stack::new(plain_config(), [9; 32], now).unwrap();
    other.stack.listen(us(), 16).unwrap();
    other.send(Seg::syn(PEER_ISS).src(41000));
    assert_ne!(other.take_one().tcp.seq, isns[0]);

    // The same tuple later gets a later ISN: the clock component (4 µs).
    let mut later = Harness::plain();
    later.stack.listen(us(), 16).unwrap();
    later.advance(secs(1));
    later.send(Seg::syn(PEER_ISS).src(41000));
    let isn_later = later.take_one().tcp.seq;
    assert_eq!(isn_later.wrapping_diff(isns[0]), 250_000, "1 s / 4 µs");
}

// ---------------------------------------------------------------------
// Option negotiation: RFC 7323 §1.3, §2.2, §2.3, §3.2; RFC 2018 §2
// ---------------------------------------------------------------------

fn all_options(tsval: u32) -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: timestamps(tsval, 0),
        ..TcpOptions::default()
    }
}

// RFC 7323 §1.3/§2.2/§3.2 and RFC 2018 §2: the SYN-ACK carries window
// scale, SACK-permitted and timestamps when the SYN offered them; the SYN's
// and SYN-ACK's windows are never scaled; TSecr echoes the SYN's TSval;
// the sender MSS leaves room for the 12 timestamp bytes (RFC 9293 §3.7.1).
#[test]
fn synack_carries_wscale_sack_and_timestamps_when_syn_offered_them() {
    let mut h = Harness::new(options_config());
    let l = h.stack.listen(us(), 16).unwrap();
    let syn = Seg::syn(PEER_ISS).with_options(all_options(12345));
    let (c, _, synack) = handshake(&mut h, l, syn);
    let o = synack.tcp.options;
    assert_eq!(o.mss, Some(1460));
    assert_eq!(
        o.window_scale,
        Some(7),
        "4 MiB (recv_buffer_max) needs a shift of 7"
    );
    assert!(o.sack_permitted);
    let ts = o.timestamps.expect("timestamps on the SYN-ACK");
    assert_eq!(ts.tsecr, 12345, "TSecr echoes the SYN's TSval");
    assert_eq!(synack.tcp.window, 65535, "a SYN-ACK window is unscaled");
    let info = h.stack.info(c).unwrap();
    assert!(info.sack_permitted);
    assert!(info.timestamps);
    assert_eq!(info.snd_wscale, 7);
    assert_eq!(info.rcv_wscale, 7);
    assert_eq!(info.snd_mss, 1460 - 12);
}

// RFC 7323 §1.3 ("a TCP MAY send [these options] in a <SYN,ACK> only if it
// received them in the initial <SYN>") and RFC 2018 §2: each option is on
// the SYN-ACK exactly when the SYN carried it.
#[test]
fn synack_omits_each_option_the_syn_did_not_offer() {
    let mut h = Harness::new(options_config());
    let l = h.stack.listen(us(), 16).unwrap();

    let (c, _, synack) = handshake(&mut h, l, Seg::syn(PEER_ISS).src(41000));
    let o = synack.tcp.options;
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, None);
    assert!(!o.sack_permitted);
    assert_eq!(o.timestamps, None);
    let info = h.stack.info(c).unwrap();
    assert!(!info.sack_permitted && !info.timestamps);
    assert_eq!((info.snd_wscale, info.rcv_wscale), (0, 0));
    assert_eq!(info.snd_mss, 1460);

    let mut only_ws = Seg::syn(PEER_ISS).src(41001);
    only_ws.options.window_scale = Some(2);
    let (c, _, synack) = handshake(&mut h, l, only_ws);
    let o = synack.tcp.options;
    assert_eq!(o.window_scale, Some(7));
    assert!(!o.sack_permitted);
    assert_eq!(o.timestamps, None);
    let info = h.stack.info(c).unwrap();
    assert_eq!((info.snd_wscale, info.rcv_wscale), (2, 7));
    assert!(!info.sack_permitted && !info.timestamps);

    let mut only_sack = Seg::syn(PEER_ISS).src(41002);
    only_sack.options.sack_permitted = true;
    let (c, _, synack) = handshake(&mut h, l, only_sack);
    let o = synack.tcp.options;
    assert!(o.sack_permitted);
    assert_eq!(o.window_scale, None);
    assert_eq!(o.timestamps, None);
    let info = h.stack.info(c).unwrap();
    assert!(info.sack_permitted && !info.timestamps);
    assert_eq!((info.snd_wscale, info.rcv_wscale), (0, 0));

    let mut only_ts = Seg::syn(PEER_ISS).src(41003);
    only_ts.options.timestamps = timestamps(555, 0);
    let (c, _, synack) = handshake(&mut h, l, only_ts);
    let o = synack.tcp.options;
    assert_eq!(o.timestamps.map(|t| t.tsecr), Some(555));
    assert_eq!(o.window_scale, None);
    assert!(!o.sack_permitted);
    let info = h.stack.info(c).unwrap();
    assert!(info.timestamps && !info.sack_permitted);
    assert_eq!(info.snd_mss, 1460 - 12);
}

// RFC 7323 §1.3 / RFC 2018 §2: options disabled locally are not sent even
// when the SYN offered them, and are not used.
#[test]
fn synack_omits_options_disabled_in_config_even_if_offered() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    let syn = Seg::syn(PEER_ISS).with_options(all_options(777));
    let (c, _, synack) = handshake(&mut h, l, syn);
    let o = synack.tcp.options;
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, None);
    assert!(!o.sack_permitted);
    assert_eq!(o.timestamps, None);
    let info = h.stack.info(c).unwrap();
    assert!(!info.sack_permitted && !info.timestamps);
    assert_eq!((info.snd_wscale, info.rcv_wscale), (0, 0));
    assert_eq!(info.snd_mss, 1460);
}

// RFC 7323 §2.3: "If a Window Scale option is received with a shift.cnt
// value larger than 14, the TCP SHOULD log the error but MUST use 14".
#[test]
fn window_scale_shift_above_14_is_used_as_14() {
    let mut h = Harness::new(options_config());
    let l = h.stack.listen(us(), 16).unwrap();
    let mut syn = Seg::syn(PEER_ISS);
    syn.options.window_scale = Some(15);
    let (c, _, _) = handshake(&mut h, l, syn);
    assert_eq!(h.stack.info(c).unwrap().snd_wscale, 14);
}

// RFC 7323 §1.3/§2.2 and RFC 2018 §2 on the active side: our SYN offers
// every enabled option (TSecr 0); only those the SYN-ACK returns are used.
#[test]
fn active_open_offers_enabled_options_and_uses_only_those_returned() {
    let mut h = Harness::new(options_config());
    let c = h
        .stack
        .connect(h.now, us(), peer(), PEER_MAC)
        .expect("connect");
    h.poll();
    let syn = h.take_one();
    assert_eq!(syn.flags(), TcpFlags::SYN);
    let o = syn.tcp.options;
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, Some(7));
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps.map(|t| t.tsecr), Some(0));
    let iss = syn.tcp.seq;
    let mut synack = Seg::syn(PEER_ISS).with_ack(iss + 1);
    synack.options.mss = Some(1000);
    h.send(synack);
    let ack = h.take_one();
    assert_ack(&ack, iss + 1, P1);
    assert_eq!(
        ack.tcp.options.timestamps, None,
        "timestamps not negotiated"
    );
    let info = h.stack.info(c).unwrap();
    assert!(!info.sack_permitted && !info.timestamps);
    assert_eq!((info.snd_wscale, info.rcv_wscale), (0, 0));
    assert_eq!(info.snd_mss, 1000);
}

// ---------------------------------------------------------------------
// SYN-SENT: RFC 9293 §3.10.7.3
// ---------------------------------------------------------------------

// RFC 9293 §3.10.7.3 first: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a
// reset (unless the RST bit is set ...) <SEQ=SEG.ACK><CTL=RST>, discard the
// segment, and return." The connection stays in SYN-SENT.
#[test]
fn syn_sent_unacceptable_ack_gets_rst_seq_seg_ack() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    let bad = [
        Seg::ack(PEER_ISS, iss),
        Seg::ack(PEER_ISS, iss - 1000),
        Seg::ack(PEER_ISS, iss + 2),
        Seg::syn(PEER_ISS).with_ack(iss + 100),
        Seg::syn(PEER_ISS).with_ack(iss),
    ];
    for seg in bad {
        let ack = seg.ack;
        h.send(seg);
        assert_rst_seq(&h.take_one(), ack);
        assert_eq!(h.stack.state(c), Ok(State::SynSent));
    }
    assert!(h.events().is_empty());
    // The right SYN-ACK still completes the handshake.
    h.send(Seg::syn(PEER_ISS).with_ack(iss + 1));
    assert_ack(&h.take_one(), iss + 1, P1);
    assert_eq!(h.stack.state(c), Ok(State::Established));
}

// RFC 9293 §3.10.7.3 first: an unacceptable ACK on a RST is dropped, not
// answered ("unless the RST bit is set, if so drop the segment and return").
#[test]
fn syn_sent_rst_with_unacceptable_ack_is_dropped_silently() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    h.send(Seg::rst(SeqNum(0)).with_ack(iss));
    h.send(Seg::rst(SeqNum(0)).with_ack(iss + 5));
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::SynSent));
    assert!(h.events().is_empty());
}

// RFC 9293 §3.10.7.3 second: "If the ACK was acceptable, then signal to the
// user 'error: connection reset', drop the segment, enter CLOSED state" —
// ECONNREFUSED, reported by recv (and the Closed{Refused} event).
#[test]
fn syn_sent_rst_with_acceptable_ack_refuses_connection_on_recv() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    h.send(Seg::rst(SeqNum(0)).with_ack(iss + 1));
    h.expect_silence();
    let events = h.events();
    assert_eq!(closed_events(&events), vec![(c, CloseReason::Refused)]);
    assert_eq!(h.stack.state(c), Ok(State::Closed));
    assert_eq!(recv_vec(&mut h, c), Err(TcpError::ConnectionRefused));
    // Once reported, later calls see a dead connection.
    assert_eq!(h.stack.send(c, b"x"), Err(TcpError::BrokenPipe));
    h.stack.close(c).unwrap();
    assert_eq!(h.state(), None);
}

// RFC 9293 §3.10.7.3 second, seen through send: ECONNREFUSED.
#[test]
fn syn_sent_rst_with_acceptable_ack_refuses_connection_on_send() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    h.send(Seg::rst(PEER_ISS).with_ack(iss + 1));
    h.expect_silence();
    assert_eq!(closed_events(&h.events()), vec![(c, CloseReason::Refused)]);
    assert_eq!(h.stack.send(c, b"x"), Err(TcpError::ConnectionRefused));
}

// RFC 9293 §3.10.7.3 second: "Otherwise (no ACK), drop the segment and return."
#[test]
fn syn_sent_rst_without_ack_is_ignored() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    h.send(Seg::rst(PEER_ISS));
    h.send(Seg::rst(iss + 1));
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::SynSent));
    assert!(h.events().is_empty());
    h.send(Seg::syn(PEER_ISS).with_ack(iss + 1));
    assert_ack(&h.take_one(), iss + 1, P1);
    assert_eq!(h.events(), vec![Event::Connected(c)]);
}

// RFC 9293 §3.10.7.3 fourth/fifth: neither SYN nor RST — drop. A FIN is not
// processed in SYN-SENT (§3.10.7.4 eighth: "SEG.SEQ cannot be validated").
#[test]
fn syn_sent_drops_fin_and_data_without_syn_silently() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    h.send(Seg::new(PEER_ISS, TcpFlags::FIN));
    h.send(Seg::fin(P1, iss + 1));
    h.send(Seg::data(P1, iss + 1, b"early"));
    h.send(Seg::new(P1, TcpFlags::PSH).with_payload(b"early"));
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::SynSent));
    assert!(h.events().is_empty());
    assert_eq!(recv_vec(&mut h, c), Err(TcpError::WouldBlock));
}

// RFC 9293 §3.10.7.3 fourth: a SYN whose ACK acknowledges our SYN moves to
// ESTABLISHED and sends <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>; the user is
// told (Event::Connected).
#[test]
fn syn_sent_synack_establishes_sends_ack_and_reports_connected() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    assert!(h.events().is_empty());
    h.send(Seg::syn(PEER_ISS).with_ack(iss + 1));
    let ack = h.take_one();
    assert_ack(&ack, iss + 1, P1);
    assert_eq!(ack.flags(), TcpFlags::ACK);
    assert_eq!(h.stack.state(c), Ok(State::Established));
    assert_eq!(h.events(), vec![Event::Connected(c)]);
    let info = h.stack.info(c).unwrap();
    assert_eq!(info.snd_mss, 1460);
    assert_eq!(h.stack.send(c, b"hi"), Ok(2));
}

// RFC 9293 §3.5 Figure 8 / §3.10.7.3 fourth: a bare SYN in SYN-SENT is a
// simultaneous open: "enter SYN-RECEIVED, form a SYN,ACK segment
// <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it"; the ACK of our SYN then
// completes the handshake.
#[test]
fn syn_sent_bare_syn_is_simultaneous_open_through_syn_received() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    h.send(Seg::syn(PEER_ISS));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.tcp.seq, iss);
    assert_eq!(synack.tcp.ack, P1);
    assert_eq!(h.stack.state(c), Ok(State::SynReceived));
    assert!(h.events().is_empty());
    h.send(Seg::ack(P1, iss + 1));
    assert_eq!(h.stack.state(c), Ok(State::Established));
    assert_eq!(h.events(), vec![Event::Connected(c)]);
    assert!(h.take().iter().all(|o| !o.is_rst()));
}

// RFC 9293 §3.5 Figure 8, lines 5–7: in a simultaneous open the peer's
// SYN,ACK <SEQ=IRS><ACK=ISS+1> crosses ours and must complete the
// handshake. Figure 8 moves SYN-RECEIVED to ESTABLISHED on it (line 6, as
// Linux does); a strict reading of §3.10.7.4 ("If an incoming segment is not
// acceptable, an acknowledgment should be sent in reply: <SEQ=SND.NXT>
// <ACK=RCV.NXT><CTL=ACK>") instead answers it with an ACK, and the peer,
// treating our crossing SYN,ACK alike, sends the ACK that completes ours.
// Either way the handshake completes; silently dropping it cannot.
#[test]
fn simultaneous_open_crossing_synacks_complete_the_handshake() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    h.send(Seg::syn(PEER_ISS));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    // Figure 8 line 6: the peer's SYN,ACK.
    h.send(Seg::syn(PEER_ISS).with_ack(iss + 1));
    let out = h.take();
    assert!(out.iter().all(|o| !o.is_rst()), "{out:#?}");
    if h.stack.state(c) != Ok(State::Established) {
        assert_eq!(h.stack.state(c), Ok(State::SynReceived));
        let acked = out
            .iter()
            .any(|o| o.is_pure_ack() && o.tcp.seq == iss + 1 && o.tcp.ack == P1);
        assert!(
            acked,
            "the crossing SYN,ACK neither established the connection (Figure 8) \
             nor was answered with <SEQ=ISS+1><ACK=IRS+1><CTL=ACK> (§3.10.7.4); sent {out:#?}"
        );
        // The peer's own ACK of our crossing SYN,ACK.
        h.send(Seg::ack(P1, iss + 1));
    }
    assert_eq!(h.stack.state(c), Ok(State::Established));
    assert_eq!(h.events(), vec![Event::Connected(c)]);
}

// RFC 6298 §2.1/§5.5 and RFC 1122 §4.2.3.5 (Linux tcp_syn_retries = 6): the
// SYN is retransmitted after 1, 2, 4, 8, 16, 32 s (at 1, 3, 7, 15, 31,
// 63 s) and the open fails with ETIMEDOUT 64 s after the last, at 127 s.
#[test]
fn syn_retries_back_off_1_2_4_8_16_32_s_then_time_out_at_127_s() {
    let mut h = Harness::plain();
    let t0 = h.now;
    let (c, iss) = connect(&mut h);
    h.advance(secs(127) - ms(1));
    let sent = h.take();
    let times: Vec<Duration> = sent.iter().map(|o| o.at - t0).collect();
    let want: Vec<Duration> = [1, 3, 7, 15, 31, 63].into_iter().map(secs).collect();
    assert_eq!(times, want, "SYN retransmission times");
    for o in &sent {
        assert_eq!(o.flags(), TcpFlags::SYN);
        assert_eq!(o.tcp.seq, iss);
    }
    assert_eq!(h.stack.state(c), Ok(State::SynSent));
    assert!(h.events().is_empty());
    h.advance(ms(1));
    h.expect_silence();
    assert_eq!(closed_events(&h.events()), vec![(c, CloseReason::TimedOut)]);
    assert_eq!(recv_vec(&mut h, c), Err(TcpError::TimedOut));
    assert_eq!(h.stack.state(c), Ok(State::Closed));
    // Nothing more is ever sent.
    h.advance(secs(300));
    h.expect_silence();
}

// RFC 9293 §3.10.4 (CLOSE in SYN-SENT): "Delete the TCB" — nothing is sent;
// a SYN-ACK arriving afterwards finds no connection (§3.10.7.1).
#[test]
fn close_in_syn_sent_deletes_tcb_without_sending() {
    let mut h = Harness::plain();
    let (c, iss) = connect(&mut h);
    h.stack.close(c).unwrap();
    h.poll();
    h.expect_silence();
    assert_eq!(h.state(), None);
    assert_eq!(h.stack.state(c), Err(TcpError::InvalidHandle));
    h.advance(secs(10));
    h.expect_silence();
    h.send(Seg::syn(PEER_ISS).with_ack(iss + 1));
    assert_rst_seq(&h.take_one(), iss + 1);
    assert!(h.events().is_empty());
}

// ---------------------------------------------------------------------
// SYN-RECEIVED: RFC 9293 §3.10.7.4 (and §3.8.1 timeouts)
// ---------------------------------------------------------------------

// RFC 9293 §3.10.7.4 first step answers an unacceptable segment; when it
// is a duplicate of the SYN that opened this connection, our SYN-ACK was
// lost and the answer the peer needs is the SYN-ACK <SEQ=ISS><ACK=RCV.NXT>
// again (Linux tcp_check_req). No second connection is created.
#[test]
fn syn_received_retransmitted_syn_gets_the_synack_again() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let first = h.take_one();
    let iss = first.tcp.seq;
    h.send(Seg::syn(PEER_ISS));
    let again = h.take_one();
    assert_eq!(again.flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(again.tcp.seq, iss);
    assert_eq!(again.tcp.ack, P1);
    assert_eq!(again.tcp.options.mss, Some(1460));
    assert_eq!(h.stack.connection_count(), 1);
    assert_eq!(h.state(), Some(State::SynReceived));
    h.send(Seg::ack(P1, iss + 1));
    assert!(h.stack.accept(l).is_ok());
}

// RFC 6298 §5.5 / RFC 1122 §4.2.3.5 with Linux tcp_synack_retries = 5: the
// SYN-ACK is retransmitted after 1, 2, 4, 8, 16 s (at 1, 3, 7, 15, 31 s),
// and the embryonic connection is dropped 32 s later (63 s), silently;
// afterwards the peer's ACK finds only the listener: RST <SEQ=SEG.ACK>.
#[test]
fn synack_retries_then_give_up() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 1).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let t0 = h.now;
    let iss = h.take_one().tcp.seq;
    h.advance(secs(63) - ms(1));
    let sent = h.take();
    let times: Vec<Duration> = sent.iter().map(|o| o.at - t0).collect();
    let want: Vec<Duration> = [1, 3, 7, 15, 31].into_iter().map(secs).collect();
    assert_eq!(times, want, "SYN-ACK retransmission times");
    for o in &sent {
        assert_eq!(o.flags(), TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!((o.tcp.seq, o.tcp.ack), (iss, P1));
    }
    assert_eq!(h.state(), Some(State::SynReceived));
    h.advance(ms(1));
    h.expect_silence();
    assert_eq!(h.state(), None, "dropped after the last SYN-ACK timed out");
    assert!(h.events().is_empty());
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
    // The peer's late ACK: no connection, the listener answers with RST.
    h.send(Seg::ack(P1, iss + 1));
    assert_rst_seq(&h.take_one(), iss + 1);
    // The backlog slot was released (backlog 1): a new SYN is served.
    h.send(Seg::syn(PEER_ISS + 100_000));
    assert_eq!(h.take_one().flags(), TcpFlags::SYN | TcpFlags::ACK);
}

// RFC 9293 §3.10.7.4 second, SYN-RECEIVED: "If this connection was
// initiated with a passive OPEN (i.e., came from the LISTEN state), then
// return this connection to LISTEN state and return. The user need not be
// informed." With RFC 5961 §3.2, the RST must be exactly at RCV.NXT.
#[test]
fn rst_in_syn_received_returns_to_listen_silently() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let iss = h.take_one().tcp.seq;
    h.send(Seg::rst(P1));
    h.expect_silence();
    assert_eq!(h.state(), None);
    assert!(h.events().is_empty());
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
    // No retransmission of the dead SYN-ACK.
    h.advance(secs(5));
    h.expect_silence();
    // The listener accepts a new handshake from the same peer.
    h.send(Seg::syn(PEER_ISS + 50_000));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.tcp.ack, PEER_ISS + 50_001);
    let iss2 = synack.tcp.seq;
    assert_ne!(iss2, iss);
    h.send(Seg::ack(PEER_ISS + 50_001, iss2 + 1));
    let c = h.stack.accept(l).expect("accept");
    assert_eq!(
        h.events(),
        vec![Event::Accepted {
            listener: l,
            conn: c
        }]
    );
}

// RFC 5961 §3.2 (all states but SYN-SENT): a RST in the window but not
// exactly at RCV.NXT gets a challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
// and is dropped; in SYN-RECEIVED the embryonic connection survives.
#[test]
fn syn_received_in_window_rst_not_at_rcv_nxt_gets_challenge_ack() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let iss = h.take_one().tcp.seq;
    h.send(Seg::rst(P1 + 100));
    let out = h.take();
    assert_eq!(out.len(), 1, "one challenge ACK expected, got {out:#?}");
    assert_ack(&out[0], iss + 1, P1);
    assert_eq!(h.state(), Some(State::SynReceived));
    h.send(Seg::ack(P1, iss + 1));
    assert!(h.stack.accept(l).is_ok());
}

// RFC 9293 §3.10.7.4 first: "If an incoming segment is not acceptable, an
// acknowledgment should be sent in reply (unless the RST bit is set ...)
// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" — SYN-RECEIVED included.
#[test]
fn syn_received_out_of_window_segment_gets_ack() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let iss = h.take_one().tcp.seq;
    h.send(Seg::data(P1 + 70_000, iss + 1, b"far ahead"));
    let out = h.take();
    assert_eq!(out.len(), 1, "one ACK expected, got {out:#?}");
    assert_ack(&out[0], iss + 1, P1);
    assert_eq!(h.state(), Some(State::SynReceived));
    // An out-of-window RST is dropped silently.
    h.send(Seg::rst(P1 + 70_000));
    h.expect_silence();
    h.send(Seg::ack(P1, iss + 1));
    assert!(h.stack.accept(l).is_ok());
}

// RFC 9293 §3.10.7.4 fifth, SYN-RECEIVED: "If SND.UNA < SEG.ACK =< SND.NXT,
// then enter ESTABLISHED ... If the segment acknowledgment is not
// acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
#[test]
fn syn_received_unacceptable_ack_gets_rst_seq_seg_ack() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let iss = h.take_one().tcp.seq;
    for ack in [iss + 5, iss, iss - 1000] {
        h.send(Seg::ack(P1, ack));
        assert_rst_seq(&h.take_one(), ack);
        assert_eq!(h.state(), Some(State::SynReceived));
        assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
    }
    assert!(h.events().is_empty());
    h.send(Seg::ack(P1, iss + 1));
    assert!(h.stack.accept(l).is_ok());
}

// RFC 9293 §3.10.7.4 fifth: the ACK of our SYN moves SYN-RECEIVED to
// ESTABLISHED; the application learns of it (Event::Accepted, accept()).
#[test]
fn handshake_completing_ack_produces_accepted_event_and_accept_returns_it() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let iss = h.take_one().tcp.seq;
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
    assert!(h.events().is_empty());
    h.send(Seg::ack(P1, iss + 1));
    h.expect_silence();
    let events = h.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let Event::Accepted { listener, conn } = events[0] else {
        panic!("expected Accepted, got {events:?}");
    };
    assert_eq!(listener, l);
    assert_eq!(h.stack.accept(l), Ok(conn));
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
    assert_eq!(h.stack.state(conn), Ok(State::Established));
    assert_eq!(h.stack.remote_addr(conn), Ok(peer()));
    assert_eq!(h.stack.local_addr(conn), Ok(us()));
}

// RFC 9293 §3.10.7.4 fourth, SYN-RECEIVED: "If the connection was initiated
// with a passive OPEN, then return this connection to the LISTEN state and
// return." — a new in-window SYN silently ends the embryonic connection.
#[test]
fn syn_received_new_in_window_syn_returns_passive_open_to_listen() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    h.take_one();
    h.send(Seg::syn(P1 + 10));
    h.expect_silence();
    assert_eq!(h.state(), None);
    assert!(h.events().is_empty());
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
}

// RFC 9293 §3.10.7.4 fifth: "if the ACK bit is off, drop the segment and
// return" — in SYN-RECEIVED a FIN or data without ACK does nothing.
#[test]
fn syn_received_segment_without_ack_is_dropped() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let iss = h.take_one().tcp.seq;
    h.send(Seg::new(P1, TcpFlags::FIN));
    h.send(Seg::new(P1, TcpFlags::PSH).with_payload(b"no ack"));
    h.expect_silence();
    assert_eq!(h.state(), Some(State::SynReceived));
    assert_eq!(h.stack.accept(l), Err(TcpError::WouldBlock));
    h.send(Seg::ack(P1, iss + 1));
    let c = h.stack.accept(l).expect("accept");
    assert_eq!(
        recv_vec(&mut h, c),
        Err(TcpError::WouldBlock),
        "the data was dropped"
    );
    assert_eq!(h.stack.state(c), Ok(State::Established));
}

// RFC 9293 §3.10.7.4 fifth then seventh and eighth: the handshake-completing
// ACK may carry data and a FIN: ESTABLISHED, the text is delivered, the FIN
// moves the connection to CLOSE-WAIT and is acknowledged.
#[test]
fn syn_received_handshake_ack_with_data_and_fin_delivers_both() {
    let mut h = Harness::plain();
    let l = h.stack.listen(us(), 16).unwrap();
    h.send(Seg::syn(PEER_ISS));
    let iss = h.take_one().tcp.seq;
    h.send(Seg::data(P1, iss + 1, b"GET /").with_flags(TcpFlags::FIN));
    assert_ack(&h.take_one(), iss + 1, P1 + 6);
    let c = h.stack.accept(l).expect("accept");
    assert!(h.events().contains(&Event::Accepted {
        listener: l,
        conn: c
    }));
    assert_eq!(h.stack.state(c), Ok(State::CloseWait));
    assert_eq!(recv_vec(&mut h, c), Ok(b"GET /".to_vec()));
    assert_eq!(recv_vec(&mut h, c), Ok(Vec::new()));
}

// ---------------------------------------------------------------------
// RFC 5961 in the synchronized states
// ---------------------------------------------------------------------

// RFC 5961 §3.2: "If the RST bit is set and the sequence number exactly
// matches the next expected sequence number (RCV.NXT), then TCP MUST reset
// the connection"; RFC 9293 §3.10.7.4: the user gets "connection reset"
// (ECONNRESET on the next recv), the peer gets no reply.
#[test]
fn rst_exactly_at_rcv_nxt_resets_with_econnreset() {
    let mut h = Harness::plain();
    let (c, _, _) = h.passive_open();
    h.send(Seg::rst(P1));
    h.expect_silence();
    let events = h.events();
    assert_eq!(closed_events(&events), vec![(c, CloseReason::Reset)]);
    assert_eq!(h.stack.state(c), Ok(State::Closed));
    assert_eq!(recv_vec(&mut h, c), Err(TcpError::ConnectionReset));
}

// RFC 9293 §3.10.7.4 second (ESTABLISHED: "any outstanding RECEIVEs and
// SEND should receive 'reset' responses"); after the reset is reported,
// writing is EPIPE (POSIX write() on a connection-mode socket that is no
// longer connected).
#[test]
fn write_after_rst_is_epipe() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::data(P1, iss + 1, b"abc"));
    h.take();
    h.send(Seg::rst(P1 + 3).with_ack(iss + 1));
    h.expect_silence();
    assert_eq!(closed_events(&h.events()), vec![(c, CloseReason::Reset)]);
    assert_eq!(recv_vec(&mut h, c), Err(TcpError::ConnectionReset));
    assert_eq!(h.stack.send(c, b"after"), Err(TcpError::BrokenPipe));
    assert_eq!(h.stack.send(c, b"again"), Err(TcpError::BrokenPipe));
    h.poll();
    h.expect_silence();
}

// RFC 9293 §3.10.7.4 second (ESTABLISHED: on an acceptable RST "enter the
// CLOSED state, delete the TCB") and §3.10.7.2: once the TCB is deleted a
// new SYN from the same peer address and port meets the listener and opens
// a new connection — without waiting for the application to close() the
// handle of the reset one.
#[test]
fn syn_after_peer_reset_opens_new_connection_before_user_closes_old_handle() {
    let mut h = Harness::plain();
    let (c, _, _) = h.passive_open();
    h.send(Seg::rst(P1));
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::Closed));
    h.send(Seg::syn(PEER_ISS + 500_000));
    let out = h.take();
    assert_eq!(
        out.len(),
        1,
        "the listener must answer the new SYN: {out:#?}"
    );
    assert_eq!(out[0].flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(out[0].tcp.ack, PEER_ISS + 500_001);
}

// RFC 5961 §3.2: "If the RST bit is set and the sequence number does not
// exactly match the next expected sequence value, yet is within the current
// receive window, TCP MUST send an acknowledgment (challenge ACK):
// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" and the connection stays.
#[test]
fn rst_in_window_not_at_rcv_nxt_gets_challenge_ack_and_connection_stays() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    for seq in [P1 + 1, P1 + 1000, P1 + 65_534] {
        h.send(Seg::rst(seq));
        assert_ack(&h.take_one(), iss + 1, P1);
    }
    assert_eq!(h.stack.state(c), Ok(State::Established));
    assert!(h.events().is_empty());
    assert_eq!(h.stack.stats().challenge_acks, 3);
    // Still works.
    h.send(Seg::data(P1, iss + 1, b"ok"));
    assert_ack(&h.take_one(), iss + 1, P1 + 2);
    assert_eq!(recv_vec(&mut h, c), Ok(b"ok".to_vec()));
}

// RFC 5961 §3.2 / RFC 9293 §3.10.7.4 first: "If the RST bit is set and the
// sequence number is outside the current receive window, silently drop the
// segment."
#[test]
fn rst_out_of_window_is_dropped_silently() {
    let mut h = Harness::plain();
    let (c, _, _) = h.passive_open();
    for seq in [P1 + 65_535, P1 + 200_000, P1 - 1, PEER_ISS - 5000] {
        h.send(Seg::rst(seq));
        h.send(Seg::rst(seq).with_ack(SeqNum(1)));
    }
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::Established));
    assert!(h.events().is_empty());
    assert_eq!(h.stack.stats().challenge_acks, 0);
}

// RFC 5961 §4.2 (RFC 9293 §3.10.7.4 fourth): a SYN in a synchronized state,
// "regardless of the sequence number", gets a challenge ACK
// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>; the connection stays.
#[test]
fn syn_in_established_gets_challenge_ack_and_connection_stays() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::syn(P1 + 10));
    assert_ack(&h.take_one(), iss + 1, P1);
    h.send(Seg::syn(PEER_ISS)); // the original SYN, duplicated
    assert_ack(&h.take_one(), iss + 1, P1);
    h.send(Seg::syn(P1 + 200_000));
    assert_ack(&h.take_one(), iss + 1, P1);
    assert_eq!(h.stack.state(c), Ok(State::Established));
    assert!(h.events().is_empty());
    assert_eq!(h.stack.connection_count(), 1);
}

// RFC 9293 §3.10.7.4 fifth (ESTABLISHED): "If the ACK acknowledges something
// not yet sent (SEG.ACK > SND.NXT), then send an ACK, drop the segment, and
// return." The data on it is not accepted.
#[test]
fn ack_for_data_never_sent_is_answered_with_ack_and_dropped() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::data(P1, iss + 1 + 1000, b"hello"));
    assert_ack(&h.take_one(), iss + 1, P1);
    assert_eq!(recv_vec(&mut h, c), Err(TcpError::WouldBlock));
    assert_eq!(h.stack.state(c), Ok(State::Established));
    // The same data with a sane ACK is accepted.
    h.send(Seg::data(P1, iss + 1, b"hello"));
    assert_ack(&h.take_one(), iss + 1, P1 + 5);
    assert_eq!(recv_vec(&mut h, c), Ok(b"hello".to_vec()));
}

// RFC 5961 §5.2: an ACK is acceptable only if SND.UNA − MAX.SND.WND ≤
// SEG.ACK ≤ SND.NXT; an older one gets a (challenge) ACK and the segment
// is discarded.
#[test]
fn ack_older_than_max_snd_wnd_gets_challenge_ack_and_is_dropped() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::data(P1, iss + 1 - 70_000, b"hello"));
    assert_ack(&h.take_one(), iss + 1, P1);
    assert_eq!(recv_vec(&mut h, c), Err(TcpError::WouldBlock));
    assert_eq!(h.stack.state(c), Ok(State::Established));
}

// RFC 5961 §7: challenge ACKs are rate limited
// (StackConfig::challenge_ack_limit per second).
#[test]
fn challenge_acks_are_rate_limited_per_second() {
    let mut cfg = plain_config();
    cfg.challenge_ack_limit = 2;
    let mut h = Harness::new(cfg);
    let (c, _, iss) = h.passive_open();
    for i in 0..5 {
        h.send(Seg::rst(P1 + 10 + i));
    }
    let acks = h.take();
    assert_eq!(acks.len(), 2, "{acks:#?}");
    for a in &acks {
        assert_ack(a, iss + 1, P1);
    }
    assert_eq!(h.stack.stats().challenge_acks, 2);
    assert_eq!(h.stack.stats().challenge_acks_suppressed, 3);
    h.advance(secs(1));
    h.send(Seg::syn(P1 + 50));
    assert_ack(&h.take_one(), iss + 1, P1);
    assert_eq!(h.stack.stats().challenge_acks, 3);
    assert_eq!(h.stack.state(c), Ok(State::Established));
}

// ---------------------------------------------------------------------
// The close path: RFC 9293 §3.10.4, §3.10.7.4, §3.6
// ---------------------------------------------------------------------

// RFC 9293 §3.10.4 / RFC 1122 §4.2.2.13 / RFC 2525 §2.17: closing with
// unread received data discards it and resets the connection (RST, not
// FIN, <SEQ=SND.NXT>); the connection is gone.
#[test]
fn close_with_unread_data_sends_rst() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::data(P1, iss + 1, b"unread"));
    assert_ack(&h.take_one(), iss + 1, P1 + 6);
    h.events();
    h.stack.close(c).unwrap();
    h.poll();
    let rst = h.take_one();
    assert_own_rst(&rst, iss + 1);
    assert_eq!(h.state(), None);
    assert_eq!(h.stack.state(c), Err(TcpError::InvalidHandle));
    assert!(closed_events(&h.events()).is_empty());
    // Nothing follows (no FIN, no retransmission).
    h.advance(secs(120));
    h.expect_silence();
}

// RFC 9293 §3.10.5 ABORT (ESTABLISHED, FIN-WAIT-x, CLOSE-WAIT): "a reset
// segment should be sent: <SEQ=SND.NXT><CTL=RST>", queues flushed, TCB
// deleted.
#[test]
fn abort_sends_rst_and_frees_the_connection() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.send(c, b"queued").unwrap();
    h.poll();
    let data = h.take_one();
    assert_eq!(data.payload, b"queued");
    h.stack.abort(c).unwrap();
    h.poll();
    assert_own_rst(&h.take_one(), iss + 1 + 6);
    assert_eq!(h.state(), None);
    assert_eq!(h.stack.send(c, b"x"), Err(TcpError::InvalidHandle));
    h.advance(secs(120));
    h.expect_silence();
}

// RFC 9293 §3.10.7.4 eighth: on FIN, "signal the user 'connection closing'
// and return any pending RECEIVEs"; §3.10.3 RECEIVE in CLOSE-WAIT returns
// the remaining data, then end of stream (Ok(0)), and keeps doing so.
#[test]
fn read_after_fin_returns_zero() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::data(P1, iss + 1, b"abc").with_flags(TcpFlags::FIN));
    assert_ack(&h.take_one(), iss + 1, P1 + 4);
    assert_eq!(h.stack.state(c), Ok(State::CloseWait));
    assert!(h.events().contains(&Event::Readable(c)));
    assert_eq!(recv_vec(&mut h, c), Ok(b"abc".to_vec()));
    assert_eq!(recv_vec(&mut h, c), Ok(Vec::new()));
    assert_eq!(recv_vec(&mut h, c), Ok(Vec::new()));
    // Our side may still send in CLOSE-WAIT (§3.10.2).
    assert_eq!(h.stack.send(c, b"reply"), Ok(5));
}

// RFC 9293 §3.6 and §3.10.7.4 seventh: after our FIN (shutdown write) the
// connection still receives: FIN-WAIT-1 and FIN-WAIT-2 deliver segment
// text; the peer's FIN then moves FIN-WAIT-2 to TIME-WAIT.
#[test]
fn half_close_keeps_receiving() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.shutdown_write(c).unwrap();
    h.poll();
    let fin = h.take_one();
    assert_eq!(fin.flags(), TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!((fin.tcp.seq, fin.tcp.ack), (iss + 1, P1));
    assert_eq!(h.stack.state(c), Ok(State::FinWait1));
    assert_eq!(h.stack.send(c, b"x"), Err(TcpError::BrokenPipe));
    // Data in FIN-WAIT-1 (our FIN not yet acknowledged).
    h.send(Seg::data(P1, iss + 1, b"one "));
    assert_ack(&h.take_one(), iss + 2, P1 + 4);
    assert_eq!(recv_vec(&mut h, c), Ok(b"one ".to_vec()));
    // The peer acknowledges our FIN: FIN-WAIT-2.
    h.send(Seg::ack(P1 + 4, iss + 2));
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::FinWait2));
    h.send(Seg::data(P1 + 4, iss + 2, b"two"));
    assert_ack(&h.take_one(), iss + 2, P1 + 7);
    assert_eq!(recv_vec(&mut h, c), Ok(b"two".to_vec()));
    assert!(closed_events(&h.events()).is_empty());
    // The peer's FIN: TIME-WAIT, ACK of the FIN, end of stream.
    h.send(Seg::fin(P1 + 7, iss + 2));
    assert_ack(&h.take_one(), iss + 2, P1 + 8);
    assert_eq!(h.state(), Some(State::TimeWait));
    assert_eq!(recv_vec(&mut h, c), Ok(Vec::new()));
    assert_eq!(closed_events(&h.events()), vec![(c, CloseReason::Normal)]);
}

// RFC 9293 §3.6 case 2 and §3.10.7.4 eighth/fifth: the peer's FIN moves
// ESTABLISHED to CLOSE-WAIT (ACKed); our CLOSE sends FIN and enters
// LAST-ACK; the ACK of our FIN enters CLOSED and deletes the TCB.
#[test]
fn passive_close_goes_close_wait_last_ack_closed() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::fin(P1, iss + 1));
    assert_ack(&h.take_one(), iss + 1, P1 + 1);
    assert_eq!(h.state(), Some(State::CloseWait));
    assert_eq!(recv_vec(&mut h, c), Ok(Vec::new()));
    h.stack.close(c).unwrap();
    h.poll();
    let fin = h.take_one();
    assert_eq!(fin.flags(), TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!((fin.tcp.seq, fin.tcp.ack), (iss + 1, P1 + 1));
    assert_eq!(h.state(), Some(State::LastAck));
    h.send(Seg::ack(P1 + 1, iss + 2));
    h.expect_silence();
    assert_eq!(h.state(), None);
    assert_eq!(h.stack.state(c), Err(TcpError::InvalidHandle));
    assert!(
        closed_events(&h.events()).is_empty(),
        "the handle was closed"
    );
}

// RFC 9293 §3.10.7.4 fifth, LAST-ACK: "The only thing that can arrive in
// this state is an acknowledgment of our FIN. If our FIN is now
// acknowledged, delete the TCB, enter the CLOSED state" — the user who
// still holds the handle (shutdown_write) sees Closed{Normal} then, not
// earlier.
#[test]
fn last_ack_reports_closed_normal_when_our_fin_is_acked() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::fin(P1, iss + 1));
    h.take();
    h.stack.shutdown_write(c).unwrap();
    h.poll();
    assert_eq!(h.take_one().flags(), TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(h.stack.state(c), Ok(State::LastAck));
    assert!(closed_events(&h.events()).is_empty());
    // An ACK that does not cover our FIN changes nothing.
    h.send(Seg::ack(P1 + 1, iss + 1));
    assert_eq!(h.stack.state(c), Ok(State::LastAck));
    assert!(closed_events(&h.events()).is_empty());
    h.send(Seg::ack(P1 + 1, iss + 2));
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::Closed));
    assert_eq!(closed_events(&h.events()), vec![(c, CloseReason::Normal)]);
}

// RFC 9293 §3.10.7.4 fifth (LAST-ACK: "delete the TCB, enter the CLOSED
// state") and §3.10.7.1: once CLOSED there is no TCB, so a segment for the
// old connection is answered with <SEQ=SEG.ACK><CTL=RST> — even while the
// application has not yet released its handle.
#[test]
fn segment_after_last_ack_completes_gets_rst_while_user_holds_handle() {
    let mut h = Harness::plain();
    let (c, l, snd, rcv) = drive_to(&mut h, State::LastAck);
    h.stack.close_listener(l).unwrap();
    h.send(Seg::ack(rcv, snd));
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::Closed));
    // The peer's FIN again (our ACK of it was lost): no TCB, RST.
    h.send(Seg::fin(rcv - 1, snd));
    let out = h.take();
    assert_eq!(out.len(), 1, "CLOSED answers with a RST, got {out:#?}");
    assert_rst_seq(&out[0], snd);
    assert_eq!(h.state(), None, "the TCB is deleted (§3.10.7.4 LAST-ACK)");
}

// RFC 9293 §3.5 Figure 13 (simultaneous close) and §3.10.7.4 eighth: in
// FIN-WAIT-1 a FIN that does not acknowledge ours moves to CLOSING (ACKed);
// the ACK of our FIN then moves CLOSING to TIME-WAIT.
#[test]
fn simultaneous_close_goes_through_closing() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.shutdown_write(c).unwrap();
    h.poll();
    let fin = h.take_one();
    assert_eq!(fin.flags(), TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(fin.tcp.seq, iss + 1);
    // The peer's FIN crosses ours.
    h.send(Seg::fin(P1, iss + 1));
    assert_ack(&h.take_one(), iss + 2, P1 + 1);
    assert_eq!(h.stack.state(c), Ok(State::Closing));
    assert!(closed_events(&h.events()).is_empty());
    // The peer's ACK of our FIN.
    h.send(Seg::ack(P1 + 1, iss + 2));
    h.expect_silence();
    assert_eq!(h.state(), Some(State::TimeWait));
    assert_eq!(closed_events(&h.events()), vec![(c, CloseReason::Normal)]);
    assert_eq!(recv_vec(&mut h, c), Ok(Vec::new()));
    h.stack.close(c).unwrap();
    h.advance(secs(60));
    assert_eq!(h.state(), None);
    h.expect_silence();
}

// RFC 9293 §3.10.7.4 eighth, FIN-WAIT-1: "If our FIN has been ACKed
// (perhaps in this segment), then enter TIME-WAIT, start the time-wait
// timer, turn off the other timers".
#[test]
fn fin_wait_1_fin_that_acks_our_fin_goes_straight_to_time_wait() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.close(c).unwrap();
    h.poll();
    assert_eq!(h.take_one().flags(), TcpFlags::FIN | TcpFlags::ACK);
    h.send(Seg::fin(P1, iss + 2));
    assert_ack(&h.take_one(), iss + 2, P1 + 1);
    assert_eq!(h.state(), Some(State::TimeWait));
    // "turn off the other timers": no FIN retransmission follows.
    h.advance(secs(59));
    h.expect_silence();
}

// RFC 9293 §3.10.7.4 seventh, CLOSE-WAIT/CLOSING/LAST-ACK/TIME-WAIT: "This
// should not occur since a FIN has been received from the remote side.
// Ignore the segment text."
#[test]
fn close_wait_ignores_segment_text_after_fin() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::fin(P1, iss + 1));
    assert_ack(&h.take_one(), iss + 1, P1 + 1);
    h.send(Seg::data(P1 + 1, iss + 1, b"after fin"));
    assert_ack(&h.take_one(), iss + 1, P1 + 1);
    assert_eq!(recv_vec(&mut h, c), Ok(Vec::new()));
    assert_eq!(h.stack.state(c), Ok(State::CloseWait));
}

// RFC 9293 §3.10.7.4 (LAST-ACK: "Remain in the LAST-ACK state" on a FIN)
// and first step: the peer's retransmitted FIN (our ACK was lost) is old,
// so it is acknowledged again <SEQ=SND.NXT><ACK=RCV.NXT>; LAST-ACK stays.
#[test]
fn last_ack_answers_retransmitted_fin_with_ack() {
    let mut h = Harness::plain();
    let (c, _, snd, rcv) = drive_to(&mut h, State::LastAck);
    h.send(Seg::fin(rcv - 1, snd - 1));
    let out = h.take();
    assert!(
        !out.is_empty(),
        "the retransmitted FIN must be acknowledged"
    );
    assert!(
        out.iter()
            .any(|o| o.tcp.ack == rcv && o.flags().ack() && !o.is_rst()),
        "{out:#?}"
    );
    assert_eq!(h.stack.state(c), Ok(State::LastAck));
    assert!(closed_events(&h.events()).is_empty());
}

// RFC 9293 §3.4 / §3.8.1: a FIN occupies sequence space and is
// retransmitted like data until acknowledged (FIN-WAIT-1 does not stall).
#[test]
fn fin_wait_1_retransmits_unacknowledged_fin() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.shutdown_write(c).unwrap();
    h.poll();
    let fin = h.take_one();
    assert_eq!(
        (fin.flags(), fin.tcp.seq),
        (TcpFlags::FIN | TcpFlags::ACK, iss + 1)
    );
    h.advance(secs(10));
    let again = h.take();
    assert!(!again.is_empty(), "the FIN was never retransmitted");
    for o in &again {
        assert!(o.flags().fin(), "{o:#?}");
        assert_eq!(o.tcp.seq, iss + 1);
        assert!(o.payload.is_empty());
    }
    assert_eq!(h.stack.state(c), Ok(State::FinWait1));
    h.send(Seg::ack(P1, iss + 2));
    assert_eq!(h.stack.state(c), Ok(State::FinWait2));
}

// RFC 9293 §3.3.2/§3.4.2: TIME-WAIT lasts 2·MSL (MSL = 30 s by default,
// so 60 s), then the TCB is deleted (§3.10.8 "Time-Wait Timeout").
#[test]
fn time_wait_lasts_exactly_two_msl_then_the_connection_is_gone() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.close(c).unwrap();
    h.poll();
    h.take_one();
    h.send(Seg::ack(P1, iss + 2));
    assert_eq!(h.state(), Some(State::FinWait2));
    h.advance(secs(3));
    h.send(Seg::fin(P1, iss + 2));
    assert_ack(&h.take_one(), iss + 2, P1 + 1);
    assert_eq!(h.state(), Some(State::TimeWait));
    h.advance(secs(60) - ms(1));
    assert_eq!(h.state(), Some(State::TimeWait));
    h.expect_silence();
    h.advance(ms(1));
    assert_eq!(h.state(), None);
    h.expect_silence();
    assert_eq!(h.stack.connection_count(), 0);
    // The tuple is free: the old peer's ACK now meets only the listener.
    h.send(Seg::ack(P1 + 1, iss + 2));
    assert_rst_seq(&h.take_one(), iss + 2);
}

// RFC 9293 §3.10.8 Time-Wait Timeout ("delete the TCB, enter the CLOSED
// state") and §3.10.7.1: after 2·MSL the tuple no longer has a TCB even if
// the application has not released its handle; a segment for it gets
// <SEQ=SEG.ACK><CTL=RST>.
#[test]
fn time_wait_expiry_frees_the_tuple_even_while_the_user_holds_the_handle() {
    let mut h = Harness::plain();
    let (c, l, snd, rcv) = drive_to(&mut h, State::TimeWait);
    h.stack.close_listener(l).unwrap();
    h.advance(secs(60));
    h.expect_silence();
    assert!(
        closed_events(&h.events()).is_empty(),
        "Closed was reported once, at TIME-WAIT entry"
    );
    assert_eq!(h.stack.state(c), Ok(State::Closed));
    assert_eq!(h.state(), None, "TIME-WAIT over: the TCB is deleted");
    h.send(Seg::ack(rcv, snd));
    let out = h.take();
    assert_eq!(out.len(), 1, "no TCB: RST expected, got {out:#?}");
    assert_rst_seq(&out[0], snd);
}

// RFC 9293 §3.10.7.4 eighth, TIME-WAIT: "Remain in the TIME-WAIT state.
// Restart the 2 MSL time-wait timeout." — and the retransmitted FIN is
// acknowledged (its ACK was lost).
#[test]
fn time_wait_answers_retransmitted_fin() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.close(c).unwrap();
    h.poll();
    h.take_one();
    h.send(Seg::fin(P1, iss + 2));
    assert_ack(&h.take_one(), iss + 2, P1 + 1);
    assert_eq!(h.state(), Some(State::TimeWait));
    h.advance(secs(30));
    h.send(Seg::fin(P1, iss + 2));
    assert_ack(&h.take_one(), iss + 2, P1 + 1);
    assert_eq!(h.state(), Some(State::TimeWait));
    // 2·MSL restarted at the retransmission: still there at 30 + 60 − ε.
    h.advance(secs(60) - ms(1));
    assert_eq!(h.state(), Some(State::TimeWait));
    h.expect_silence();
    h.advance(ms(1));
    assert_eq!(h.state(), None);
}

// RFC 9293 §3.10.7.4 (TIME-WAIT note) / RFC 6191 / RFC 1122 §4.2.2.13: a new
// SYN with a sequence number above RCV.NXT may reopen a TIME-WAIT
// connection when a listener exists; the new ISS is the old SND.NXT plus
// a maximum unscaled window plus 2 (as Linux), above the old sequence space.
#[test]
fn time_wait_new_syn_with_higher_seq_starts_new_connection_when_listener_exists() {
    let mut h = Harness::plain();
    let (c, l, iss) = h.passive_open();
    h.stack.close(c).unwrap();
    h.poll();
    h.take_one();
    h.send(Seg::fin(P1, iss + 2));
    h.take_one();
    assert_eq!(h.state(), Some(State::TimeWait));
    h.advance(secs(5));
    let new_irs = P1 + 1 + 100_000;
    h.send(Seg::syn(new_irs));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.tcp.ack, new_irs + 1);
    let iss2 = synack.tcp.seq;
    assert_eq!(
        iss2,
        iss + 2 + 65537,
        "new ISS above the old SND.NXT {}",
        iss + 2
    );
    assert_eq!(h.state(), Some(State::SynReceived));
    h.send(Seg::ack(new_irs + 1, iss2 + 1));
    h.expect_silence();
    let c2 = h.stack.accept(l).expect("accept the new incarnation");
    assert!(h.events().contains(&Event::Accepted {
        listener: l,
        conn: c2
    }));
    assert_eq!(h.stack.state(c2), Ok(State::Established));
    assert_eq!(h.stack.stats().time_wait_recycled, 1);
}

// RFC 9293 §3.10.7.4 / RFC 5961 §4: a SYN at or below RCV.NXT in TIME-WAIT is
// not a new incarnation: it gets an ACK <SEQ=SND.NXT><ACK=RCV.NXT> and
// TIME-WAIT continues.
#[test]
fn time_wait_syn_with_old_seq_gets_ack_and_no_new_connection() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.close(c).unwrap();
    h.poll();
    h.take_one();
    h.send(Seg::fin(P1, iss + 2));
    h.take_one();
    h.send(Seg::syn(PEER_ISS));
    assert_ack(&h.take_one(), iss + 2, P1 + 1);
    assert_eq!(h.state(), Some(State::TimeWait));
    assert_eq!(h.stack.stats().time_wait_recycled, 0);
}

// Linux tcp_fin_timeout (RFC 9293 §3.10.7.4 gives FIN-WAIT-2 no limit; an
// orphan — the user called close() — would otherwise wait forever): after
// `fin_wait2_timeout` (60 s) in FIN-WAIT-2 the connection is reset
// (<SEQ=SND.NXT><CTL=RST>) and deleted.
#[test]
fn orphaned_fin_wait2_is_dropped_after_fin_wait2_timeout_with_rst() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.close(c).unwrap();
    h.poll();
    h.take_one();
    h.send(Seg::ack(P1, iss + 2));
    h.expect_silence();
    assert_eq!(h.state(), Some(State::FinWait2));
    h.advance(secs(60) - ms(1));
    h.expect_silence();
    assert_eq!(h.state(), Some(State::FinWait2));
    h.advance(ms(1));
    assert_own_rst(&h.take_one(), iss + 2);
    assert_eq!(h.state(), None);
    assert!(h.events().is_empty());
}

// A FIN-WAIT-2 connection whose user still holds the handle (half-close)
// is not an orphan: it is not timed out (RFC 9293 §3.6: the receive side
// stays open until the peer closes).
#[test]
fn half_closed_fin_wait2_with_user_handle_is_not_timed_out() {
    let mut h = Harness::plain();
    let (c, _, _, _) = drive_to(&mut h, State::FinWait2);
    h.advance(secs(600));
    h.expect_silence();
    assert_eq!(h.stack.state(c), Ok(State::FinWait2));
}

// RFC 9293 §3.10.4 (CLOSE: no more RECEIVEs) with RFC 2525 §2.17 and Linux
// TCPAbortOnData: new data arriving for a connection the user closed is
// answered with RST <SEQ=SND.NXT> and the connection deleted — FIN-WAIT-1.
#[test]
fn data_after_close_in_fin_wait_1_is_answered_with_rst() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.close(c).unwrap();
    h.poll();
    assert_eq!(h.take_one().flags(), TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(h.state(), Some(State::FinWait1));
    h.send(Seg::data(P1, iss + 1, b"too late"));
    let out = h.take();
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_own_rst(&out[0], iss + 2);
    assert_eq!(h.state(), None);
}

// As above, in FIN-WAIT-2.
#[test]
fn data_after_close_in_fin_wait_2_is_answered_with_rst() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.close(c).unwrap();
    h.poll();
    h.take_one();
    h.send(Seg::ack(P1, iss + 2));
    assert_eq!(h.state(), Some(State::FinWait2));
    h.send(Seg::data(P1, iss + 2, b"too late"));
    let out = h.take();
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_own_rst(&out[0], iss + 2);
    assert_eq!(h.state(), None);
}

// The user's handle is released by close(): every later call on it is
// rejected (EBADF), never reaching another connection.
#[test]
fn handles_are_invalid_after_close() {
    let mut h = Harness::plain();
    let (c, _, _) = h.passive_open();
    h.stack.close(c).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.send(c, b"x"), Err(TcpError::InvalidHandle));
    assert_eq!(h.stack.recv(c, &mut buf), Err(TcpError::InvalidHandle));
    assert_eq!(
        h.stack.recv_with(c, |a, _| a.len()),
        Err(TcpError::InvalidHandle)
    );
    assert_eq!(h.stack.shutdown_write(c), Err(TcpError::InvalidHandle));
    assert_eq!(h.stack.state(c), Err(TcpError::InvalidHandle));
    assert!(matches!(h.stack.info(c), Err(TcpError::InvalidHandle)));
    assert_eq!(h.stack.close(c), Err(TcpError::InvalidHandle));
    assert_eq!(h.stack.abort(c), Err(TcpError::InvalidHandle));
    // The connection itself continues as an orphan (FIN-WAIT-1).
    assert_eq!(h.state(), Some(State::FinWait1));
    // Once it is gone and its slot reused, the stale handle still names
    // nothing (the generation differs).
    h.send(Seg::rst(P1));
    assert_eq!(h.state(), None);
    h.send(Seg::syn(PEER_ISS).src(41000));
    let iss2 = h.take_one().tcp.seq;
    h.send(Seg::ack(P1, iss2 + 1).src(41000));
    let l = h.events().iter().find_map(|e| match *e {
        Event::Accepted { listener, .. } => Some(listener),
        _ => None,
    });
    let c2 = h.stack.accept(l.expect("Accepted event")).expect("accept");
    assert_ne!(c2, c);
    assert_eq!(h.stack.send(c, b"x"), Err(TcpError::InvalidHandle));
    assert_eq!(h.stack.state(c), Err(TcpError::InvalidHandle));
    assert_eq!(h.stack.send(c2, b"x"), Ok(1));
}

// RFC 9293 §3.10.7.4 second (CLOSING, LAST-ACK, TIME-WAIT): "If the RST bit
// is set, then enter the CLOSED state, delete the TCB, and return."
#[test]
fn rst_at_rcv_nxt_in_time_wait_or_last_ack_deletes_the_tcb() {
    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.stack.close(c).unwrap();
    h.poll();
    h.take_one();
    h.send(Seg::fin(P1, iss + 2));
    h.take_one();
    assert_eq!(h.state(), Some(State::TimeWait));
    h.send(Seg::rst(P1 + 1));
    h.expect_silence();
    assert_eq!(h.state(), None);

    let mut h = Harness::plain();
    let (c, _, iss) = h.passive_open();
    h.send(Seg::fin(P1, iss + 1));
    h.take();
    h.stack.close(c).unwrap();
    h.poll();
    h.take_one();
    assert_eq!(h.state(), Some(State::LastAck));
    h.send(Seg::rst(P1 + 1));
    h.expect_silence();
    assert_eq!(h.state(), None);
}

// RFC 9293 §3.10.7.4 second (ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2,
// CLOSE-WAIT): an acceptable RST (exactly RCV.NXT, RFC 5961 §3.2) means
// "connection reset": the user holding the handle gets Closed{Reset}.
#[test]
fn rst_at_rcv_nxt_in_fin_wait_or_close_wait_reports_reset() {
    for state in [State::FinWait1, State::FinWait2, State::CloseWait] {
        let mut h = Harness::plain();
        let (c, _, _, rcv) = drive_to(&mut h, state);
        h.send(Seg::rst(rcv));
        h.expect_silence();
        assert_eq!(
            closed_events(&h.events()),
            vec![(c, CloseReason::Reset)],
            "{state}"
        );
        assert_eq!(h.stack.state(c), Ok(State::Closed), "{state}");
    }
}

// RFC 5961 §3.2 in every synchronized state of the close path: an in-window
// RST not at RCV.NXT gets <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, state kept.
#[test]
fn in_window_rst_not_at_rcv_nxt_gets_challenge_ack_in_every_close_path_state() {
    for state in CLOSE_PATH {
        let mut h = Harness::plain();
        let (c, _, snd, rcv) = drive_to(&mut h, state);
        h.send(Seg::rst(rcv + 100));
        let out = h.take();
        assert_eq!(out.len(), 1, "{state}: {out:#?}");
        assert_ack(&out[0], snd, rcv);
        assert_eq!(h.state(), Some(state), "{state}");
        assert!(closed_events(&h.events()).is_empty(), "{state}");
        assert_eq!(h.stack.state(c), Ok(state));
    }
}

// RFC 9293 §3.10.7.4 first / RFC 5961 §3.2: an out-of-window RST is dropped
// silently in every synchronized state of the close path.
#[test]
fn out_of_window_rst_is_dropped_silently_in_every_close_path_state() {
    for state in CLOSE_PATH {
        let mut h = Harness::plain();
        let (_, _, _, rcv) = drive_to(&mut h, state);
        h.send(Seg::rst(rcv + 100_000));
        h.send(Seg::rst(rcv - 2));
        h.expect_silence();
        assert_eq!(h.state(), Some(state), "{state}");
    }
}

// RFC 5961 §4.2: a SYN in any synchronized state gets a challenge ACK and
// the connection stays (with no listener, so TIME-WAIT cannot be reopened).
#[test]
fn syn_gets_challenge_ack_in_every_close_path_state() {
    for state in CLOSE_PATH {
        let mut h = Harness::plain();
        let (_, l, snd, rcv) = drive_to(&mut h, state);
        h.stack.close_listener(l).unwrap();
        h.send(Seg::syn(rcv + 10));
        let out = h.take();
        assert_eq!(out.len(), 1, "{state}: {out:#?}");
        assert_ack(&out[0], snd, rcv);
        assert_eq!(h.state(), Some(state), "{state}");
    }
}

// RFC 9293 §3.10.7.4 first: an unacceptable (out-of-window) segment is
// answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and dropped, in every
// synchronized state of the close path.
#[test]
fn out_of_window_data_gets_ack_in_every_close_path_state() {
    for state in CLOSE_PATH {
        let mut h = Harness::plain();
        let (c, _, snd, rcv) = drive_to(&mut h, state);
        h.send(Seg::data(rcv + 70_000, snd, b"far away"));
        let out = h.take();
        assert_eq!(out.len(), 1, "{state}: {out:#?}");
        assert_ack(&out[0], snd, rcv);
        assert_eq!(h.state(), Some(state), "{state}");
        // A duplicate of old data (left of the window) too.
        h.send(Seg::data(rcv - 5, snd, b"old"));
        let out = h.take();
        assert_eq!(out.len(), 1, "{state}: {out:#?}");
        assert_ack(&out[0], snd, rcv);
        assert_eq!(h.stack.state(c), Ok(state));
    }
}

/// A handle the user closed is gone (socket semantics): a simultaneous
/// open closed in SYN-RECEIVED finishes its handshake as an orphan, and
/// neither `Connected` nor any other event names the closed handle.
#[test]
fn closed_handle_gets_no_events_when_its_handshake_completes() {
    let mut h = Harness::plain();
    let c = h
        .stack
        .connect(h.now, us(), peer(), PEER_MAC)
        .expect("connect");
    h.poll();
    let syn = h.take_one();
    let iss = syn.tcp.seq;
    // The peer's own SYN crosses ours: SYN-RECEIVED, SYN-ACK sent.
    h.send(Seg::syn(PEER_ISS));
    let synack = h.take_one();
    assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    h.stack.close(c).expect("close");
    // The peer acknowledges our SYN: the handshake completes.
    h.send(Seg::ack(PEER_ISS + 1, iss + 1));
    let events = h.events();
    assert!(
        events.iter().all(|e| e.conn() != c),
        "events for a closed handle: {events:?}"
    );
    // The orphan then closes gracefully with a FIN.
    assert!(
        h.take().iter().any(|o| o.flags().fin()),
        "the orphan sends its FIN"
    );
}

// ---------------------------------------------------------------------
// TIME-WAIT reuse by our own active open (Linux tcp_tw_reuse; RFC 6191 §2,
// RFC 7323 §5.5): a client that closes first holds its tuples in
// TIME-WAIT for 2·MSL; with timestamps a tuple may be reused after 1 s.
// ---------------------------------------------------------------------

/// Active open to `peer()` from `us()`, then our close first: returns the
/// old SND.NXT once the connection sits in TIME-WAIT.
fn client_into_time_wait(h: &mut Harness, with_timestamps: bool) -> SeqNum {
    into_time_wait(h, with_timestamps, false).0
}

/// As `client_into_time_wait`; with `hold` the user shuts the connection
/// down for writing instead of closing it, so it still holds the handle
/// (returned) in TIME-WAIT.
fn into_time_wait(h: &mut Harness, with_timestamps: bool, hold: bool) -> (SeqNum, ConnId) {
    let c = h.stack.connect(h.now, us(), peer(), PEER_MAC).unwrap();
    h.poll();
    let syn = h.take_one();
    let iss = syn.tcp.seq;
    let ts = |tsval: u32, echo: &Out| {
        if with_timestamps {
            timestamps(tsval, echo.tcp.options.timestamps.expect("TSval").tsval)
        } else {
            None
        }
    };
    let mut synack = Seg::syn(PEER_ISS).with_ack(iss + 1);
    synack.options.timestamps = ts(1000, &syn);
    h.send(synack);
    let ack = h.take_one();
    assert!(ack.is_pure_ack());
    if hold {
        h.stack.shutdown_write(c).unwrap();
    } else {
        h.stack.close(c).unwrap();
    }
    h.poll();
    let fin = h.take_one();
    assert!(fin.flags().fin());
    let mut peer_fin = Seg::fin(PEER_ISS + 1, iss + 2);
    peer_fin.options.timestamps = ts(1001, &fin);
    h.send(peer_fin);
    h.take_one();
    assert_eq!(h.state(), Some(State::TimeWait));
    h.events();
    (iss + 2, c)
}

#[test]
fn time_wait_tuple_is_reused_after_one_second_with_timestamps() {
    let mut config = plain_config();
    config.tcp.timestamps = true;
    let mut h = Harness::new(config);
    let old_snd_nxt = client_into_time_wait(&mut h, true);
    // Too early: the tuple is still taken.
    h.advance(ms(999));
    assert_eq!(
        h.stack.connect(h.now, us(), peer(), PEER_MAC),
        Err(TcpError::AddrInUse)
    );
    assert_eq!(h.state(), Some(State::TimeWait));
    h.advance(ms(1));
    let c = h.stack.connect(h.now, us(), peer(), PEER_MAC).unwrap();
    h.poll();
    let syn = h.take_one();
    assert_eq!(syn.flags(), TcpFlags::SYN);
    // The new incarnation starts above the old sequence space.
    assert_eq!(syn.tcp.seq, old_snd_nxt + 65537);
    assert_eq!(h.stack.state(c), Ok(State::SynSent));
    assert_eq!(h.stack.stats().time_wait_reused, 1);
}

/// A harness whose only ephemeral port is `us()`'s.
fn one_port_harness(timestamps: bool) -> Harness {
    let mut config = plain_config();
    config.tcp.timestamps = timestamps;
    config.ephemeral_ports = (US_PORT, US_PORT);
    Harness::new(config)
}

/// An active open to `peer()` from an ephemeral port.
fn connect_any(h: &mut Harness) -> Result<ConnId, TcpError> {
    let any = SocketAddrV4::new(US_IP, 0);
    h.stack.connect(h.now, any, peer(), PEER_MAC)
}

#[test]
fn time_wait_reuse_lets_ephemeral_ports_cycle_through_a_small_range() {
    // The only ephemeral port is held in TIME-WAIT.
    let mut h = one_port_harness(true);
    client_into_time_wait(&mut h, true);
    assert_eq!(connect_any(&mut h), Err(TcpError::AddrNotAvailable));
    h.advance(secs(1));
    let c = connect_any(&mut h).unwrap();
    assert_eq!(h.stack.local_addr(c).unwrap(), us());
    assert_eq!(h.stack.stats().time_wait_reused, 1);
}

#[test]
fn an_exhausted_port_range_is_walked_once_until_a_tuple_can_be_reused() {
    let mut h = one_port_harness(true);
    client_into_time_wait(&mut h, true);
    // Every retry before the TIME-WAIT may be reused fails without walking
    // the range again.
    for _ in 0..10 {
        assert_eq!(connect_any(&mut h), Err(TcpError::AddrNotAvailable));
        h.advance(ms(99));
    }
    assert_eq!(h.stack.stats().exhausted_port_scans, 1);
    h.advance(ms(10));
    assert!(connect_any(&mut h).is_ok());
    assert_eq!(h.stack.stats().time_wait_reused, 1);
}

#[test]
fn a_released_tuple_ends_an_exhausted_scan_at_once() {
    let mut h = one_port_harness(false);
    // A connection in SYN-SENT holds the only port.
    let c = connect_any(&mut h).unwrap();
    assert_eq!(connect_any(&mut h), Err(TcpError::AddrNotAvailable));
    h.advance(ms(1));
    h.stack.abort(c).unwrap();
    let again = connect_any(&mut h).unwrap();
    assert_eq!(h.stack.local_addr(again).unwrap(), us());
    assert_eq!(h.stack.stats().exhausted_port_scans, 1);
}

#[test]
fn a_time_wait_its_user_still_holds_is_reused_once_closed() {
    let mut h = one_port_harness(true);
    let (_, c) = into_time_wait(&mut h, true, true);
    // Rested long enough, but the user has not let go of it.
    h.advance(secs(2));
    assert_eq!(connect_any(&mut h), Err(TcpError::AddrNotAvailable));
    h.stack.close(c).unwrap();
    let again = connect_any(&mut h).unwrap();
    assert_eq!(h.stack.local_addr(again).unwrap(), us());
    assert_eq!(h.stack.stats().time_wait_reused, 1);
}

#[test]
fn time_wait_tuple_is_not_reused_without_timestamps() {
    let mut h = Harness::plain();
    client_into_time_wait(&mut h, false);
    h.advance(secs(5));
    assert_eq!(
        h.stack.connect(h.now, us(), peer(), PEER_MAC),
        Err(TcpError::AddrInUse)
    );
    assert_eq!(h.state(), Some(State::TimeWait));
}
