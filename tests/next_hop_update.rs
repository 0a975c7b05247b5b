//! `Stack::update_next_hop`: when the runtime's neighbour verification
//! sees a next hop change its MAC (RFC 1122 §2.3.2.1, RFC 4861 §7.3),
//! existing connections send to the new MAC: data from the prebuilt
//! segment template, retransmissions and pure ACKs alike, for active and
//! passive connections; connections through other next hops keep theirs.

mod common;

use std::time::Duration;

use common::*;
use xdp_tcp::tcp::StackConfig;
use xdp_tcp::wire::{MacAddr, TcpOptions};

const NEW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x22]);

/// Timestamps on, so the template carries options too.
fn config() -> StackConfig {
    let mut c = plain_config();
    c.tcp.timestamps = true;
    c
}

fn dst_macs(h: &mut Harness) -> Vec<MacAddr> {
    h.take().iter().map(|o| o.dst_mac).collect()
}

#[test]
fn an_active_connection_sends_everything_to_the_new_mac() {
    let mut h = Harness::plain();
    let (c, iss) = h.active_open();
    // Established-shape segments come from the template: it now caches
    // PEER_MAC.
    h.stack.send(c, b"before").unwrap();
    h.poll();
    let before = h.take();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].dst_mac, PEER_MAC);

    // Routed through another next hop: untouched.
    assert_eq!(h.stack.update_next_hop(NEW_MAC, |_, _| false), 0);
    // Sending to another MAC: untouched.
    let other = MacAddr([2, 0, 0, 0, 0, 0x99]);
    assert_eq!(h.stack.update_next_hop(NEW_MAC, |_, mac| mac == other), 0);
    assert_eq!(
        h.stack
            .update_next_hop(NEW_MAC, |ip, mac| ip == PEER_IP && mac == PEER_MAC),
        1
    );
    // Already there: nothing to change.
    assert_eq!(h.stack.update_next_hop(NEW_MAC, |_, _| true), 0);

    // The unacknowledged segment is retransmitted to the new MAC.
    h.advance(Duration::from_secs(2));
    let rtx = h.take();
    assert!(!rtx.is_empty(), "the RTO resent the data");
    assert!(rtx.iter().all(|o| o.dst_mac == NEW_MAC), "{rtx:#?}");
    assert_eq!(rtx[0].payload, b"before");

    // The peer acknowledges and sends data: new data and the ACK go to
    // the new MAC.
    h.send(Seg::data(PEER_ISS + 1, iss + 1 + 6, b"reply"));
    h.stack.send(c, b"after").unwrap();
    h.poll();
    let after = h.take();
    assert!(after.iter().any(|o| o.payload == b"after"), "{after:#?}");
    assert!(after.iter().all(|o| o.dst_mac == NEW_MAC), "{after:#?}");
}

fn ts_options(tsval: u32, tsecr: u32) -> TcpOptions {
    TcpOptions {
        timestamps: timestamps(tsval, tsecr),
        ..TcpOptions::default()
    }
}

#[test]
fn a_passive_connection_with_timestamps_follows_its_next_hop() {
    let mut h = Harness::new(config());
    let l = h.stack.listen(us(), 16).unwrap();
    let mut syn = Seg::syn(PEER_ISS);
    syn.options.timestamps = timestamps(1000, 0);
    h.send(syn);
    let synack = h.take_one();
    assert_eq!(synack.dst_mac, PEER_MAC);
    let iss = synack.tcp.seq;
    let our_ts = synack
        .tcp
        .options
        .timestamps
        .expect("timestamps negotiated")
        .tsval;
    h.send(Seg::ack(PEER_ISS + 1, iss + 1).with_options(ts_options(1001, our_ts)));
    let c = h.stack.accept(l).unwrap();
    h.events();
    assert!(h.stack.info(c).unwrap().timestamps);

    h.stack.send(c, b"one").unwrap();
    h.poll();
    assert_eq!(dst_macs(&mut h), vec![PEER_MAC]);
    // Acknowledged, so Nagle lets the next small write go at once.
    h.send(Seg::ack(PEER_ISS + 1, iss + 1 + 3).with_options(ts_options(1002, our_ts)));
    h.take();
    assert_eq!(
        h.stack.update_next_hop(NEW_MAC, |_, mac| mac == PEER_MAC),
        1
    );
    h.stack.send(c, b"two").unwrap();
    h.poll();
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dst_mac, NEW_MAC);
    assert_eq!(out[0].payload, b"two");
    assert!(out[0].tcp.options.timestamps.is_some());
    // The peer's data is acknowledged to the new MAC too.
    h.send(Seg::data(PEER_ISS + 1, iss + 1 + 6, b"req").with_options(ts_options(1003, our_ts)));
    h.advance(Duration::from_millis(300));
    let acks = h.take();
    assert!(!acks.is_empty());
    assert!(acks.iter().all(|o| o.dst_mac == NEW_MAC), "{acks:#?}");
    // Moving it back works the same way.
    assert_eq!(h.stack.update_next_hop(PEER_MAC, |_, _| true), 1);
    h.stack.send(c, b"three").unwrap();
    h.poll();
    let out = h.take();
    assert!(out.iter().any(|o| o.payload == b"three"));
    assert!(out.iter().all(|o| o.dst_mac == PEER_MAC), "{out:#?}");
}

/// The old host went away with data in flight, and the retransmission
/// timer backed off through the outage. Once the next hop has a new MAC
/// the data goes again at once (RFC 6069 §4: connectivity is back, so the
/// backoff is reverted), not at the backed-off timeout, and the timer
/// restarts from the un-backed-off RTO.
#[test]
fn data_lost_to_the_old_mac_goes_again_at_once_after_the_change() {
    let mut h = Harness::plain();
    let (c, _) = h.active_open();
    h.stack.send(c, b"lost").unwrap();
    h.poll();
    assert_eq!(h.take_one().dst_mac, PEER_MAC);
    // Three timeouts to the old MAC, each interval twice the last.
    let mut at = Vec::new();
    while at.len() < 3 {
        h.advance(Duration::from_millis(50));
        for o in h.take() {
            assert_eq!((o.payload.as_slice(), o.dst_mac), (&b"lost"[..], PEER_MAC));
            at.push(o.at);
        }
    }
    let backed_off = at[2].saturating_since(at[1]);
    assert!(backed_off > at[1].saturating_since(at[0]));
    // Half way to the next (doubled again) timeout, the change: the data
    // goes at once, to the new MAC.
    h.advance(backed_off / 2);
    h.expect_silence();
    assert_eq!(
        h.stack.update_next_hop(NEW_MAC, |_, mac| mac == PEER_MAC),
        1
    );
    h.poll();
    let again = h.take_one();
    assert_eq!(
        (again.payload.as_slice(), again.dst_mac),
        (&b"lost"[..], NEW_MAC)
    );
    // Still unanswered: the next timeout comes within the last backed-off
    // interval (the backed-off one would be twice as far).
    h.advance(backed_off);
    let next = h.take();
    assert!(!next.is_empty(), "no retransmission within {backed_off:?}");
    assert!(next
        .iter()
        .all(|o| o.dst_mac == NEW_MAC && o.payload == b"lost"));
}

/// A SYN sent to the old MAC goes again at once after the change, rather
/// than after the initial RTO (1 s).
#[test]
fn a_syn_lost_to_the_old_mac_goes_again_at_once_after_the_change() {
    let mut h = Harness::plain();
    h.stack
        .connect(h.now, us(), peer(), PEER_MAC)
        .expect("connect");
    h.poll();
    let syn = h.take_one();
    assert_eq!(syn.dst_mac, PEER_MAC);
    h.advance(Duration::from_millis(100));
    h.expect_silence();
    assert_eq!(h.stack.update_next_hop(NEW_MAC, |_, _| true), 1);
    h.poll();
    let again = h.take_one();
    assert!(again.tcp.flags.syn() && !again.tcp.flags.ack());
    assert_eq!((again.tcp.seq, again.dst_mac), (syn.tcp.seq, NEW_MAC));
}
