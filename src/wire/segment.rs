//! A received Ethernet/IPv4/TCP frame, validated once and then read in
//! place: the receive path's parser.
//!
//! [`TcpSegment::parse`] makes every check a receiver must make (the same,
//! in the same order and with the same errors, as the layered parsers:
//! [`EthernetFrame::check_len`](super::EthernetFrame::check_len), the
//! IPv4 and TCP `check_len`, both checksums, fragments, the protocol, zero
//! ports and the option syntax) but builds no decoded header: the result
//! holds fixed-size references into the frame, and each field is read from
//! the bytes when asked for. Header prediction on an established
//! connection reads half a dozen fields; building a [`TcpRepr`] (with room
//! for four SACK blocks) and an Ethernet and an IPv4 repr for every segment
//! cost more than reading them. [`TcpSegment::repr`] builds the full header
//! for the general path.
//!
//! The option bytes of nearly every segment after the handshake are either
//! nothing or `NOP NOP TS` (RFC 7323 Appendix A's layout); those are
//! recognised directly. Anything else is checked by [`TcpOptions::parse`]
//! during `parse`, so a segment with malformed options is refused here and
//! never reaches a connection.

use std::net::Ipv4Addr;

use super::ethernet::{MacAddr, ETHERNET_HEADER_LEN};
use super::ipv4::{Ipv4Packet, Ipv4Repr, IPV4_HEADER_LEN, IP_PROTO_TCP};
use super::seq::SeqNum;
use super::tcp::{TcpFlags, TcpOptions, TcpPacket, TcpRepr, Timestamps, TCP_HEADER_LEN};
use super::{Result, WireError};

/// EtherType of IPv4, as on the wire.
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];

/// Option kinds of the aligned timestamp layout: NOP, NOP, TS, length 10
/// (RFC 7323 §3.2 and Appendix A).
const ALIGNED_TS_HEAD: [u8; 4] = [1, 1, 8, 10];

/// A validated received frame: views of its headers and payload. See the
/// module docs.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    eth: &'a [u8; ETHERNET_HEADER_LEN],
    /// The fixed part of the IPv4 header (options, if any, are skipped:
    /// RFC 1122 §3.2.1.8).
    ip: &'a [u8; IPV4_HEADER_LEN],
    /// The fixed part of the TCP header.
    tcp: &'a [u8; TCP_HEADER_LEN],
    /// The TCP option bytes.
    options: &'a [u8],
    /// The TCP payload (Ethernet padding after the IPv4 total length excluded).
    payload: &'a [u8],
    timestamps: Option<Timestamps>,
    /// The options are empty or exactly the aligned timestamp option.
    plain_options: bool,
}

impl<'a> TcpSegment<'a> {
    /// Validates `frame` as an Ethernet/IPv4/TCP frame.
    ///
    /// Errors, checked in this order: [`WireError::Truncated`] for fewer
    /// than 14 bytes; [`WireError::Unsupported`] for an EtherType other
    /// than IPv4; the IPv4 length checks of [`Ipv4Packet::check_len`];
    /// [`WireError::BadChecksum`] for the IPv4 header checksum (RFC 791
    /// §3.1) when `verify_checksums`; [`WireError::Fragmented`] for a
    /// fragment (RFC 791 §3.2: this stack does not reassemble);
    /// `Unsupported` for a protocol other than TCP; the TCP length checks
    /// of [`TcpPacket::check_len`]; `BadChecksum` for the TCP checksum over
    /// the pseudo-header and the segment (RFC 9293 §3.1) when
    /// `verify_checksums`; [`WireError::Malformed`] for a zero port or
    /// malformed options ([`TcpOptions::parse`]).
    pub fn parse(frame: &'a [u8], verify_checksums: bool) -> Result<Self> {
        let Some((eth, ip_bytes)) = frame.split_first_chunk::<ETHERNET_HEADER_LEN>() else {
            return Err(WireError::Truncated);
        };
        if eth[12..14] != ETHERTYPE_IPV4 {
            return Err(WireError::Unsupported);
        }
        let ip_packet = Ipv4Packet::new_checked(ip_bytes)?;
        if verify_checksums && !ip_packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if ip_packet.more_frags() || ip_packet.frag_offset() != 0 {
            return Err(WireError::Fragmented);
        }
        if ip_packet.next_header() != IP_PROTO_TCP {
            return Err(WireError::Unsupported);
        }
        // In bounds: check_len established 20 <= header_len <= total_len <= len.
        let ip_header_len = ip_packet.header_len();
        let total = usize::from(ip_packet.total_len());
        let Some((ip, _)) = ip_bytes.split_first_chunk::<IPV4_HEADER_LEN>() else {
            return Err(WireError::Truncated);
        };
        let segment = &ip_bytes[ip_header_len..total];
        let tcp_packet = TcpPacket::new_checked(segment)?;
        if verify_checksums && !tcp_packet.verify_checksum(addr(ip, 12), addr(ip, 16)) {
            return Err(WireError::BadChecksum);
        }
        if tcp_packet.src_port() == 0 || tcp_packet.dst_port() == 0 {
            // Port 0 is reserved and never valid on the wire.
            return Err(WireError::Malformed);
        }
        // In bounds: check_len established 20 <= header_len <= segment length.
        let (header, payload) = segment.split_at(tcp_packet.header_len());
        let Some((tcp, options)) = header.split_first_chunk::<TCP_HEADER_LEN>() else {
            return Err(WireError::Truncated);
        };
        let (timestamps, plain_options) = match options {
            [] => (None, true),
            [h0, h1, h2, h3, t @ ..] if [*h0, *h1, *h2, *h3] == ALIGNED_TS_HEAD && t.len() == 8 => {
                (
                    Some(Timestamps {
                        tsval: u32::from_be_bytes([t[0], t[1], t[2], t[3]]),
                        tsecr: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                    }),
                    true,
                )
            }
            _ => (TcpOptions::parse(options)?.timestamps, false),
        };
        Ok(TcpSegment {
            eth,
            ip,
            tcp,
            options,
            payload,
            timestamps,
            plain_options,
        })
    }

    /// Destination MAC address.
    pub fn dst_mac(&self) -> MacAddr {
        MacAddr(mac(self.eth, 0))
    }

    /// Source MAC address.
    pub fn src_mac(&self) -> MacAddr {
        MacAddr(mac(self.eth, 6))
    }

    /// IPv4 source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        addr(self.ip, 12)
    }

    /// IPv4 destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(self.ip, 16)
    }

    /// The decoded IPv4 header, as [`Ipv4Repr::parse`] would give it.
    pub fn ip_repr(&self) -> Ipv4Repr {
        let ip = self.ip;
        let header_len = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        Ipv4Repr {
            src_addr: self.src_addr(),
            dst_addr: self.dst_addr(),
            protocol: ip[9],
            payload_len: total - header_len,
            ttl: ip[8],
            dscp_ecn: ip[1],
            ident: u16::from_be_bytes([ip[4], ip[5]]),
        }
    }

    /// TCP source port.
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.tcp[0], self.tcp[1]])
    }

    /// TCP destination port.
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.tcp[2], self.tcp[3]])
    }

    /// SEG.SEQ.
    pub fn seq(&self) -> SeqNum {
        SeqNum(u32::from_be_bytes([
            self.tcp[4],
            self.tcp[5],
            self.tcp[6],
            self.tcp[7],
        ]))
    }

    /// SEG.ACK, as on the wire (meaningful only with ACK set).
    pub fn ack(&self) -> SeqNum {
        SeqNum(u32::from_be_bytes([
            self.tcp[8],
            self.tcp[9],
            self.tcp[10],
            self.tcp[11],
        ]))
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.tcp[13])
    }

    /// SEG.WND as on the wire, unscaled.
    pub fn window(&self) -> u16 {
        u16::from_be_bytes([self.tcp[14], self.tcp[15]])
    }

    /// The urgent pointer field.
    pub fn urgent(&self) -> u16 {
        u16::from_be_bytes([self.tcp[18], self.tcp[19]])
    }

    /// The timestamps option (RFC 7323 §3.2), if present.
    pub fn timestamps(&self) -> Option<Timestamps> {
        self.timestamps
    }

    /// The options are nothing or the timestamps option alone in its
    /// aligned layout: in particular no SACK blocks, no SYN options.
    pub fn has_plain_options(&self) -> bool {
        self.plain_options
    }

    /// The TCP payload.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The decoded TCP header, equal to what [`TcpRepr::parse`] returns for
    /// the same segment.
    pub fn repr(&self) -> TcpRepr {
        let options = if self.plain_options {
            TcpOptions {
                timestamps: self.timestamps,
                ..TcpOptions::default()
            }
        } else {
            // `parse` already accepted these bytes, so this cannot fail;
            // the default only keeps the path free of panics.
            TcpOptions::parse(self.options).unwrap_or_default()
        };
        TcpRepr {
            src_port: self.src_port(),
            dst_port: self.dst_port(),
            seq: self.seq(),
            ack: self.ack(),
            flags: self.flags(),
            window: self.window(),
            urgent: self.urgent(),
            options,
        }
    }
}

fn mac(b: &[u8; ETHERNET_HEADER_LEN], at: usize) -> [u8; 6] {
    [b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]]
}

fn addr(ip: &[u8; IPV4_HEADER_LEN], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr};
    use crate::wire::frame::emit_tcp_frame;
    use crate::wire::tcp::tests::arb_repr;
    use proptest::prelude::*;

    /// Source and destination MAC, the IPv4 and TCP headers, the payload.
    type Parsed<'a> = (MacAddr, MacAddr, Ipv4Repr, TcpRepr, &'a [u8]);

    /// The layered parse the view replaces (each layer's repr, then the
    /// TCP repr with its options), kept here as the reference the view
    /// must agree with: same errors, same header, same payload.
    fn layered(frame: &[u8], verify: bool) -> Result<Parsed<'_>> {
        let eth = EthernetRepr::parse(&EthernetFrame::new_checked(frame)?)?;
        if eth.ethertype != EtherType::Ipv4 {
            return Err(WireError::Unsupported);
        }
        let ip_bytes = &frame[ETHERNET_HEADER_LEN..];
        let ip_packet = Ipv4Packet::new_checked(ip_bytes)?;
        let ip = Ipv4Repr::parse(&ip_packet, verify)?;
        if ip.protocol != IP_PROTO_TCP {
            return Err(WireError::Unsupported);
        }
        let start = ip_packet.header_len();
        let segment = &ip_bytes[start..start + ip.payload_len];
        let tcp_packet = TcpPacket::new_checked(segment)?;
        let (tcp, payload) = TcpRepr::parse(&tcp_packet, ip.src_addr, ip.dst_addr, verify)?;
        Ok((eth.src_addr, eth.dst_addr, ip, tcp, payload))
    }

    fn viewed(frame: &[u8], verify: bool) -> Result<Parsed<'_>> {
        let s = TcpSegment::parse(frame, verify)?;
        let tcp = s.repr();
        // The direct accessors agree with the repr.
        assert_eq!(
            (s.seq(), s.ack(), s.flags(), s.window(), s.timestamps()),
            (
                tcp.seq,
                tcp.ack,
                tcp.flags,
                tcp.window,
                tcp.options.timestamps
            )
        );
        if s.has_plain_options() {
            assert!(tcp.options.sack_blocks.is_empty() && tcp.options.mss.is_none());
        }
        Ok((s.src_mac(), s.dst_mac(), s.ip_repr(), tcp, s.payload()))
    }

    fn frame_of(tcp: &TcpRepr, payload: &[u8]) -> Vec<u8> {
        let eth = EthernetRepr {
            src_addr: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_addr: MacAddr([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 1),
            dst_addr: Ipv4Addr::new(198, 18, 0, 2),
            protocol: IP_PROTO_TCP,
            payload_len: 0,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
        };
        let mut buf = vec![0u8; 14 + 20 + 60 + payload.len()];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, tcp, payload, &[]);
        buf.truncate(n);
        buf
    }

    /// An ACK carrying only the timestamps option (TSval 5, TSecr 6).
    fn ack_with_timestamps() -> TcpRepr {
        TcpRepr {
            src_port: 1000,
            dst_port: 80,
            seq: SeqNum(1),
            ack: SeqNum(2),
            flags: TcpFlags::ACK,
            window: 100,
            urgent: 0,
            options: TcpOptions {
                timestamps: Some(Timestamps { tsval: 5, tsecr: 6 }),
                ..TcpOptions::default()
            },
        }
    }

    #[test]
    fn aligned_timestamps_are_plain_and_others_are_not() {
        let mut tcp = ack_with_timestamps();
        let f = frame_of(&tcp, b"abc");
        let s = TcpSegment::parse(&f, true).unwrap();
        assert!(s.has_plain_options());
        assert_eq!(s.timestamps(), Some(Timestamps { tsval: 5, tsecr: 6 }));
        assert_eq!(s.payload(), b"abc");
        assert_eq!(s.repr(), tcp);

        tcp.options.sack_blocks.push(SeqNum(10), SeqNum(20));
        let f = frame_of(&tcp, b"");
        let s = TcpSegment::parse(&f, true).unwrap();
        assert!(!s.has_plain_options());
        assert_eq!(s.repr(), tcp);
    }

    #[test]
    fn malformed_options_are_refused() {
        let tcp = ack_with_timestamps();
        let mut f = frame_of(&tcp, b"");
        // The TS option's length byte (NOP NOP TS len): 10 → 11 runs past the end.
        f[14 + 20 + 20 + 3] = 11;
        assert_eq!(
            TcpSegment::parse(&f, false).unwrap_err(),
            WireError::Malformed
        );
        assert_eq!(
            TcpSegment::parse(&f, true).unwrap_err(),
            WireError::BadChecksum
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_agree_with_the_layered_parse(
            bytes in proptest::collection::vec(any::<u8>(), 0..160),
            verify in any::<bool>(),
        ) {
            prop_assert_eq!(viewed(&bytes, verify), layered(&bytes, verify));
        }

        /// Well-formed frames (random header, options and payload), then
        /// up to three random bytes overwritten: the view and the layered
        /// parse accept and refuse the same frames, with the same results.
        #[test]
        fn mutated_frames_agree_with_the_layered_parse(
            tcp in arb_repr(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            pad in 0usize..8,
            verify in any::<bool>(),
        ) {
            let mut f = frame_of(&tcp, &payload);
            f.resize(f.len() + pad, 0);
            for (at, byte) in edits {
                let i = at.index(f.len());
                f[i] = byte;
            }
            prop_assert_eq!(viewed(&f, verify), layered(&f, verify));
        }
    }
}
