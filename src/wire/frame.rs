//! Whole Ethernet/IPv4/TCP frames: the unit the engine receives and sends.
//!
//! Parsing walks the three layers with the checks each one requires and
//! hands back borrowed payload; emitting writes all three headers and the
//! payload in one go, with both checksums filled.

use super::checksum;
use super::ethernet::{EtherType, EthernetFrame, EthernetRepr, ETHERNET_HEADER_LEN};
use super::ipv4::{Ipv4Packet, Ipv4Repr, IPV4_HEADER_LEN, IP_PROTO_TCP};
use super::segment::TcpSegment;
use super::tcp::{TcpPacket, TcpRepr};
use super::Result;

/// Offset of the TCP checksum field within the TCP header (RFC 9293 §3.1).
const TCP_CHECKSUM_AT: usize = 16;

/// A parsed Ethernet/IPv4/TCP frame.
#[derive(Debug)]
pub struct TcpFrame<'a> {
    pub eth: EthernetRepr,
    /// `ip.payload_len` is the TCP segment length (header + payload).
    pub ip: Ipv4Repr,
    pub tcp: TcpRepr,
    /// The TCP payload, borrowed from the frame (Ethernet padding excluded).
    pub payload: &'a [u8],
}

/// Parses a received frame down to the TCP payload, into decoded headers
/// ([`TcpSegment`] is the same validation without them).
///
/// Errors: [`WireError::Unsupported`] for a non-IPv4 EtherType (ARP, IPv6,
/// VLAN-tagged, ...) or a non-TCP protocol; otherwise whatever the layer
/// parsers report ([`EthernetRepr::parse`], [`Ipv4Repr::parse`] — including
/// `Fragmented` — and [`TcpRepr::parse`]). With `verify_checksums` off (the
/// NIC verified them), both the IPv4 header and the TCP checksums are
/// skipped.
///
/// Bytes after the IPv4 total length (Ethernet minimum-size padding) are
/// ignored.
pub fn parse_tcp_frame(frame: &[u8], verify_checksums: bool) -> Result<TcpFrame<'_>> {
    // One validator for both parsers: the receive path reads the view.
    let segment = TcpSegment::parse(frame, verify_checksums)?;
    Ok(TcpFrame {
        eth: EthernetRepr {
            src_addr: segment.src_mac(),
            dst_addr: segment.dst_mac(),
            ethertype: EtherType::Ipv4,
        },
        ip: segment.ip_repr(),
        tcp: segment.repr(),
        payload: segment.payload(),
    })
}

/// Length of the frame [`emit_tcp_frame`] writes for `tcp` and
/// `payload_len` bytes of payload: 14 + 20 + `tcp.header_len()` +
/// `payload_len`.
pub fn tcp_frame_len(tcp: &TcpRepr, payload_len: usize) -> usize {
    ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + tcp.header_len() + payload_len
}

/// Writes the whole frame into `buf`, which must be at least
/// [`tcp_frame_len`] long (if it is too short, or the IPv4 total length would
/// exceed 65535, nothing is written and 0 is returned; this never panics).
///
/// * Ethernet header from `eth`, EtherType forced to IPv4;
/// * IPv4 header from `ip` ([`Ipv4Repr::emit`]: no options, DF), with its
///   `payload_len` ignored and recomputed and its protocol forced to TCP;
/// * TCP header from `tcp`, then `payload_a` followed by `payload_b` (the
///   two pieces of a wrapped ring buffer);
/// * IPv4 header checksum and TCP checksum filled.
///
/// Returns the frame length. Bytes of `buf` past it are untouched.
pub fn emit_tcp_frame(
    buf: &mut [u8],
    eth: &EthernetRepr,
    ip: &Ipv4Repr,
    tcp: &TcpRepr,
    payload_a: &[u8],
    payload_b: &[u8],
) -> usize {
    let header_len = tcp.header_len();
    let segment_len = header_len + payload_a.len() + payload_b.len();
    // The TCP length in the pseudo-header and the IPv4 total length are both
    // 16-bit; the latter is the tighter bound.
    let Ok(segment_len16) = u16::try_from(segment_len) else {
        return 0;
    };
    if IPV4_HEADER_LEN + segment_len > usize::from(u16::MAX) {
        return 0;
    }
    let frame_len = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + segment_len;
    let Some(out) = buf.get_mut(..frame_len) else {
        return 0;
    };

    let (eth_buf, rest) = out.split_at_mut(ETHERNET_HEADER_LEN);
    let eth = EthernetRepr {
        ethertype: EtherType::Ipv4,
        ..*eth
    };
    eth.emit(&mut EthernetFrame::new_unchecked(eth_buf));

    let (ip_buf, segment) = rest.split_at_mut(IPV4_HEADER_LEN);
    let ip = Ipv4Repr {
        protocol: IP_PROTO_TCP,
        payload_len: segment_len,
        ..*ip
    };
    // The view covers only the 20 header bytes: emit writes nothing else,
    // and the header checksum covers only the header.
    ip.emit(&mut Ipv4Packet::new_unchecked(ip_buf));

    let (header, data) = segment.split_at_mut(header_len);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut *header));
    let (data_a, data_b) = data.split_at_mut(payload_a.len());
    data_a.copy_from_slice(payload_a);
    data_b.copy_from_slice(payload_b);

    // One checksum pass over the segment as written, while it is still hot
    // in cache. Summing the contiguous output (rather than the two source
    // slices) sidesteps payload_b starting at an odd offset when payload_a
    // has odd length. The header is a whole number of words, so the segment
    // starts at an even offset of the summed stream, after the pseudo-header
    // (RFC 9293 §3.1).
    let mut sum =
        checksum::ipv4_pseudo_header(ip.src_addr, ip.dst_addr, IP_PROTO_TCP, segment_len16);
    sum.add_bytes(segment);
    segment[TCP_CHECKSUM_AT..TCP_CHECKSUM_AT + 2].copy_from_slice(&sum.finish().to_be_bytes());
    frame_len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::tests::{arb_repr as arb_tcp, expected_after_emit};
    use crate::wire::{MacAddr, SeqNum, TcpFlags, TcpOptions, Timestamps, WireError};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// The Linux-style SYN of the tcp tests, as a whole captured frame.
    const SYN_FRAME: [u8; 74] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0x00, 0x5e, 0xab, 0xcd, 0xef, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x9d, 0x22, 0xc0, 0xa8, 0x00, 0x02,
        0xc0, 0xa8, 0x00, 0x01, 0xa3, 0xf2, 0x00, 0x50, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x00, 0x00,
        0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x75, 0x2a, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02,
        0x08, 0x0a, 0x00, 0x9a, 0x5b, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    #[test]
    fn captured_syn() {
        let f = parse_tcp_frame(&SYN_FRAME, true).unwrap();
        assert_eq!(
            f.eth.dst_addr,
            "52:54:00:12:34:56".parse::<MacAddr>().unwrap()
        );
        assert_eq!(
            f.eth.src_addr,
            "02:00:5e:ab:cd:ef".parse::<MacAddr>().unwrap()
        );
        assert_eq!(f.eth.ethertype, EtherType::Ipv4);
        assert_eq!(
            f.ip,
            Ipv4Repr {
                src_addr: Ipv4Addr::new(192, 168, 0, 2),
                dst_addr: Ipv4Addr::new(192, 168, 0, 1),
                protocol: IP_PROTO_TCP,
                payload_len: 40,
                ttl: 64,
                dscp_ecn: 0,
                ident: 0x1c46,
            }
        );
        let mut sack_syn = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps {
                tsval: 0x009a_5b3c,
                tsecr: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            f.tcp,
            TcpRepr {
                src_port: 41970,
                dst_port: 80,
                seq: SeqNum(0x1a2b_3c4d),
                ack: SeqNum(0),
                flags: TcpFlags::SYN,
                window: 64240,
                urgent: 0,
                options: sack_syn,
            }
        );
        assert!(f.payload.is_empty());

        // Emitting the parsed reprs reproduces the capture exactly.
        let mut buf = [0u8; 100];
        let n = emit_tcp_frame(&mut buf, &f.eth, &f.ip, &f.tcp, &[], &[]);
        assert_eq!(n, SYN_FRAME.len());
        assert_eq!(n, tcp_frame_len(&f.tcp, 0));
        assert_eq!(&buf[..n], &SYN_FRAME[..]);

        // Sanity: a different option set changes the length accordingly.
        sack_syn.window_scale = None;
        let tcp = TcpRepr {
            options: sack_syn,
            ..f.tcp
        };
        assert_eq!(tcp_frame_len(&tcp, 10), 14 + 20 + 36 + 10);
    }

    #[test]
    fn checksums_in_capture_are_checked() {
        let mut bad_ip = SYN_FRAME;
        bad_ip[24] ^= 0x80; // IPv4 checksum field
        assert_eq!(
            parse_tcp_frame(&bad_ip, true).unwrap_err(),
            WireError::BadChecksum
        );
        assert!(parse_tcp_frame(&bad_ip, false).is_ok());
        let mut bad_tcp = SYN_FRAME;
        bad_tcp[70] ^= 0x01; // window-scale NOP → EOL, caught by the checksum
        assert_eq!(
            parse_tcp_frame(&bad_tcp, true).unwrap_err(),
            WireError::BadChecksum
        );
    }

    fn sample_reprs() -> (EthernetRepr, Ipv4Repr, TcpRepr) {
        let eth = EthernetRepr {
            src_addr: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_addr: MacAddr([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IP_PROTO_TCP,
            payload_len: 0,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
        };
        let tcp = TcpRepr {
            src_port: 5000,
            dst_port: 80,
            seq: SeqNum(1000),
            ack: SeqNum(2000),
            flags: TcpFlags::ACK,
            window: 512,
            urgent: 0,
            options: TcpOptions::default(),
        };
        (eth, ip, tcp)
    }

    #[test]
    fn ethernet_padding_ignored() {
        // A pure ACK is 54 bytes; Ethernet pads it to 60 with junk.
        let (eth, ip, tcp) = sample_reprs();
        let mut buf = [0xeeu8; 60];
        assert_eq!(emit_tcp_frame(&mut buf, &eth, &ip, &tcp, &[], &[]), 54);
        assert_eq!(&buf[54..], &[0xee; 6]);
        let f = parse_tcp_frame(&buf, true).unwrap();
        assert!(f.payload.is_empty());
        assert_eq!(f.ip.payload_len, 20);
        assert_eq!(f.tcp, tcp);
    }

    #[test]
    fn unsupported_and_short() {
        let (eth, ip, tcp) = sample_reprs();
        let mut buf = [0u8; 64];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, b"data", &[]);
        assert!(parse_tcp_frame(&buf[..n], true).is_ok());

        let mut arp = buf;
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(
            parse_tcp_frame(&arp[..n], true).unwrap_err(),
            WireError::Unsupported
        );

        let mut udp = buf;
        let mut p = Ipv4Packet::new_unchecked(&mut udp[14..n]);
        p.set_next_header(17);
        p.fill_checksum();
        assert_eq!(
            parse_tcp_frame(&udp[..n], true).unwrap_err(),
            WireError::Unsupported
        );

        assert_eq!(
            parse_tcp_frame(&buf[..10], true).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            parse_tcp_frame(&buf[..30], true).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            parse_tcp_frame(&buf[..n - 1], true).unwrap_err(),
            WireError::Truncated
        );

        // IPv4 total length too small for a TCP header.
        let mut tiny = buf;
        let mut p = Ipv4Packet::new_unchecked(&mut tiny[14..n]);
        p.set_total_len(30);
        p.fill_checksum();
        assert_eq!(
            parse_tcp_frame(&tiny[..n], true).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn fragment_refused() {
        let (eth, ip, tcp) = sample_reprs();
        let mut buf = [0u8; 64];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, b"data", &[]);
        let mut p = Ipv4Packet::new_unchecked(&mut buf[14..n]);
        p.set_more_frags(true);
        p.fill_checksum();
        assert_eq!(
            parse_tcp_frame(&buf[..n], true).unwrap_err(),
            WireError::Fragmented
        );
    }

    #[test]
    fn emit_refuses_short_or_oversized() {
        let (eth, ip, tcp) = sample_reprs();
        let payload = [1u8; 100];
        let need = tcp_frame_len(&tcp, payload.len());
        let mut buf = vec![0x55u8; need];
        assert_eq!(
            emit_tcp_frame(&mut buf[..need - 1], &eth, &ip, &tcp, &payload, &[]),
            0
        );
        assert!(buf.iter().all(|&b| b == 0x55));
        assert_eq!(
            emit_tcp_frame(&mut buf, &eth, &ip, &tcp, &payload[..50], &payload[50..]),
            need
        );

        // 65535 − 20 − 20 = 65495 payload bytes is the most an IPv4 packet holds.
        let big = vec![0u8; 65_496];
        let mut huge = vec![0u8; 70_000];
        assert_eq!(emit_tcp_frame(&mut huge, &eth, &ip, &tcp, &big, &[]), 0);
        let n = emit_tcp_frame(&mut huge, &eth, &ip, &tcp, &big[1..], &[]);
        assert_eq!(n, 14 + 65_535);
        assert!(parse_tcp_frame(&huge[..n], true).is_ok());
    }

    #[test]
    fn forced_fields() {
        let (mut eth, mut ip, tcp) = sample_reprs();
        eth.ethertype = EtherType::Arp;
        ip.protocol = 17;
        ip.payload_len = 9999;
        let mut buf = [0u8; 64];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, b"xyz", &[]);
        let f = parse_tcp_frame(&buf[..n], true).unwrap();
        assert_eq!(f.eth.ethertype, EtherType::Ipv4);
        assert_eq!(f.ip.protocol, IP_PROTO_TCP);
        assert_eq!(f.ip.payload_len, 23);
        assert_eq!(f.payload, b"xyz");
    }

    #[test]
    fn odd_split_payload_checksums() {
        let (eth, ip, tcp) = sample_reprs();
        let data: Vec<u8> = (0..=255u8).cycle().take(301).collect();
        let mut whole = [0u8; 400];
        let n = emit_tcp_frame(&mut whole, &eth, &ip, &tcp, &data, &[]);
        for split in [0, 1, 2, 3, 150, 151, 299, 300, 301] {
            let mut buf = [0u8; 400];
            let m = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, &data[..split], &data[split..]);
            assert_eq!(&buf[..m], &whole[..n], "split at {split}");
        }
    }

    fn arb_eth() -> impl Strategy<Value = EthernetRepr> {
        (any::<[u8; 6]>(), any::<[u8; 6]>()).prop_map(|(s, d)| EthernetRepr {
            src_addr: MacAddr(s),
            dst_addr: MacAddr(d),
            ethertype: EtherType::Ipv4,
        })
    }

    fn arb_ip() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
        )
            .prop_map(|(s, d, ttl, dscp_ecn, ident)| Ipv4Repr {
                src_addr: Ipv4Addr::from(s),
                dst_addr: Ipv4Addr::from(d),
                protocol: IP_PROTO_TCP,
                payload_len: 0,
                ttl,
                dscp_ecn,
                ident,
            })
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), verify in any::<bool>()) {
            let _ = parse_tcp_frame(&bytes, verify);
        }

        #[test]
        fn plausible_frames_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 34..200),
            ihl in 5u8..=15,
            verify in any::<bool>(),
        ) {
            // Force a valid-looking prefix so the inner layers get exercised.
            let mut bytes = bytes;
            bytes[12] = 0x08;
            bytes[13] = 0x00;
            bytes[14] = 0x40 | ihl;
            bytes[23] = IP_PROTO_TCP;
            let total = (bytes.len() - 14) as u16;
            bytes[16..18].copy_from_slice(&total.to_be_bytes());
            bytes[20] &= 0x40; // no MF, zero offset
            bytes[21] = 0;
            if let Ok(f) = parse_tcp_frame(&bytes, verify) {
                prop_assert!(f.payload.len() <= bytes.len());
            }
        }

        #[test]
        fn round_trip(
            eth in arb_eth(),
            ip in arb_ip(),
            tcp in arb_tcp(),
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
            split in any::<usize>(),
            slack in 0usize..8,
        ) {
            let split = split % (payload.len() + 1);
            let len = tcp_frame_len(&tcp, payload.len());
            let mut buf = vec![0xa5u8; len + slack];
            let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, &payload[..split], &payload[split..]);
            prop_assert_eq!(n, len);
            prop_assert!(buf[n..].iter().all(|&b| b == 0xa5));
            let f = parse_tcp_frame(&buf[..n], true).unwrap();
            prop_assert_eq!(f.eth, eth);
            prop_assert_eq!(f.ip, Ipv4Repr { payload_len: tcp.header_len() + payload.len(), ..ip });
            prop_assert_eq!(f.tcp, TcpRepr { options: expected_after_emit(&tcp.options), ..tcp });
            prop_assert_eq!(f.payload, &payload[..]);
            // Each layer's checksum verifies on its own too.
            let ip_packet = Ipv4Packet::new_checked(&buf[14..n]).unwrap();
            prop_assert!(ip_packet.verify_checksum());
            let segment = TcpPacket::new_checked(ip_packet.payload()).unwrap();
            prop_assert!(segment.verify_checksum(ip.src_addr, ip.dst_addr));
        }

        #[test]
        fn single_bit_flips_are_caught(
            eth in arb_eth(),
            ip in arb_ip(),
            tcp in arb_tcp(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut buf = vec![0u8; tcp_frame_len(&tcp, payload.len())];
            let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, &payload, &[]);
            let original = parse_tcp_frame(&buf[..n], true).unwrap();
            let (ip0, tcp0) = (original.ip, original.tcp);
            for bit in 0..n * 8 {
                let mut corrupt = buf.clone();
                corrupt[bit / 8] ^= 1 << (bit % 8);
                match parse_tcp_frame(&corrupt, true) {
                    Err(_) => {}
                    Ok(f) => {
                        // Only the MAC addresses are unprotected by a checksum.
                        prop_assert!(bit < 12 * 8, "bit {} flipped undetected", bit);
                        prop_assert_eq!(f.ip, ip0);
                        prop_assert_eq!(f.tcp, tcp0);
                        prop_assert_eq!(f.payload, &payload[..]);
                    }
                }
            }
        }
    }
}
