//! A prebuilt Ethernet/IPv4/TCP header for the segments of one flow.
//!
//! After the handshake nearly every segment a connection sends has the
//! same shape: the same addresses, ports and TTL, the ACK flag, and either
//! no options or exactly the timestamps option (`NOP NOP TS`, RFC 7323
//! Appendix A). [`SegmentTemplate`] keeps those header bytes ready, with
//! the ones'-complement sums of their constant words, so a segment is one
//! copy of the header, a few stores for the fields that change (sequence
//! and acknowledgment numbers, flags, window, TSval and TSecr, the IPv4
//! total length) and checksums that add only those fields to the cached
//! sums (RFC 1071 §2(C), the same arithmetic as RFC 1624's incremental
//! update), instead of the general [`emit_tcp_frame`](super::emit_tcp_frame).
//!
//! The output is byte for byte what `emit_tcp_frame` writes for the same
//! fields (the property tests below compare them): both checksums are
//! ones'-complement sums of the same words, which are never all zero (the
//! IPv4 version byte and the TCP protocol number are in them), so the
//! folded results agree exactly, not just up to the two encodings of zero.
//!
//! Segments with other options (SYN options, SACK blocks) are built by
//! `emit_tcp_frame`.

use std::net::Ipv4Addr;

use super::checksum::{ipv4_pseudo_header, Checksum};
use super::ethernet::{EtherType, EthernetFrame, EthernetRepr, ETHERNET_HEADER_LEN};
use super::ipv4::{Ipv4Packet, Ipv4Repr, IPV4_HEADER_LEN, IP_PROTO_TCP};
use super::seq::SeqNum;
use super::tcp::{TcpFlags, TcpOptions, TcpPacket, TcpRepr, Timestamps, TCP_HEADER_LEN};
use super::MacAddr;

/// Bytes of the timestamps option as the template lays it out: NOP NOP TS.
const TIMESTAMPS_LEN: usize = 12;
/// Ethernet + IPv4 + TCP with the timestamps option.
const MAX_HEADER_LEN: usize =
    ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + TCP_HEADER_LEN + TIMESTAMPS_LEN;

/// Offsets in the frame of the fields [`SegmentTemplate::emit`] writes.
mod at {
    use super::{ETHERNET_HEADER_LEN as ETH, IPV4_HEADER_LEN as IP};
    pub const IP_TOTAL_LEN: usize = ETH + 2;
    pub const IP_CHECKSUM: usize = ETH + 10;
    const TCP: usize = ETH + IP;
    pub const SEQ: usize = TCP + 4;
    pub const ACK: usize = TCP + 8;
    pub const FLAGS: usize = TCP + 13;
    pub const WINDOW: usize = TCP + 14;
    pub const TCP_CHECKSUM: usize = TCP + 16;
    /// TSval, after NOP NOP kind length.
    pub const TSVAL: usize = TCP + 20 + 4;
    pub const TSECR: usize = TSVAL + 4;
}

/// The fixed header of one flow's segments, with the ones'-complement sums
/// of its constant parts. See the module docs.
#[derive(Clone, Debug)]
pub struct SegmentTemplate {
    /// Ethernet, IPv4 and TCP headers with every varying field zero.
    header: [u8; MAX_HEADER_LEN],
    /// 54, or 66 with the timestamps option.
    header_len: u8,
    /// Sum of the IPv4 header words without the total length.
    ip_sum: Checksum,
    /// Sum of the pseudo-header (without the TCP length) and the TCP
    /// header's constant words.
    tcp_sum: Checksum,
}

impl SegmentTemplate {
    /// The template for segments from `eth.src_addr`/`ip.src_addr`:`src_port`
    /// to `eth.dst_addr`/`ip.dst_addr`:`dst_port` with `ip.ttl`,
    /// `ip.dscp_ecn` and `ip.ident` as given (as [`Ipv4Repr::emit`] writes
    /// them), carrying the timestamps option iff `timestamps`.
    pub fn new(
        eth: &EthernetRepr,
        ip: &Ipv4Repr,
        src_port: u16,
        dst_port: u16,
        timestamps: bool,
    ) -> SegmentTemplate {
        let tcp = TcpRepr {
            src_port,
            dst_port,
            seq: SeqNum(0),
            ack: SeqNum(0),
            flags: TcpFlags::empty(),
            window: 0,
            urgent: 0,
            options: TcpOptions {
                timestamps: timestamps.then_some(Timestamps::default()),
                ..TcpOptions::default()
            },
        };
        let tcp_len = tcp.header_len();
        let header_len = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + tcp_len;
        let mut header = [0u8; MAX_HEADER_LEN];
        let (eth_buf, rest) = header.split_at_mut(ETHERNET_HEADER_LEN);
        EthernetRepr {
            ethertype: EtherType::Ipv4,
            ..*eth
        }
        .emit(&mut EthernetFrame::new_unchecked(eth_buf));
        let (ip_buf, tcp_buf) = rest.split_at_mut(IPV4_HEADER_LEN);
        let ip = Ipv4Repr {
            protocol: IP_PROTO_TCP,
            payload_len: 0,
            ..*ip
        };
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut *ip_buf));
        tcp.emit(&mut TcpPacket::new_unchecked(&mut tcp_buf[..tcp_len]));
        // Zero what `emit` fills per segment, then sum what is left.
        header[at::IP_TOTAL_LEN..at::IP_TOTAL_LEN + 2].fill(0);
        header[at::IP_CHECKSUM..at::IP_CHECKSUM + 2].fill(0);
        let mut ip_sum = Checksum::new();
        ip_sum.add_bytes(&header[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + IPV4_HEADER_LEN]);
        let mut tcp_sum = pseudo_header_without_length(ip.src_addr, ip.dst_addr);
        tcp_sum.add_bytes(&header[ETHERNET_HEADER_LEN + IPV4_HEADER_LEN..header_len]);
        SegmentTemplate {
            header,
            header_len: header_len as u8,
            ip_sum,
            tcp_sum,
        }
    }

    /// Whether the segments carry the timestamps option.
    pub fn has_timestamps(&self) -> bool {
        usize::from(self.header_len) == MAX_HEADER_LEN
    }

    /// The source MAC address the template was built with.
    pub fn src_mac(&self) -> MacAddr {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&self.header[6..12]);
        MacAddr(mac)
    }

    /// Frame length for `payload_len` bytes of payload.
    #[inline]
    pub fn frame_len(&self, payload_len: usize) -> usize {
        usize::from(self.header_len) + payload_len
    }

    /// Writes a whole frame into `buf`: the template's headers with `seq`,
    /// `ack`, `flags`, `window` and, on a template with timestamps, `ts`
    /// (ignored without), then `payload_a` followed by `payload_b`, both
    /// checksums filled. The same bytes as
    /// [`emit_tcp_frame`](super::emit_tcp_frame) with the template's
    /// headers and these fields. Returns the frame length, or 0 (nothing
    /// written) if `buf` is shorter than [`frame_len`](Self::frame_len) or
    /// the IPv4 total length would exceed 65535. Never panics.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn emit(
        &self,
        buf: &mut [u8],
        seq: SeqNum,
        ack: SeqNum,
        flags: TcpFlags,
        window: u16,
        ts: Timestamps,
        payload_a: &[u8],
        payload_b: &[u8],
    ) -> usize {
        let fields = Fields {
            seq,
            ack,
            flags,
            window,
            ts,
        };
        // One copy of the code per header length, so every header offset
        // and length below is a constant.
        if self.has_timestamps() {
            self.emit_sized::<MAX_HEADER_LEN>(buf, &fields, payload_a, payload_b)
        } else {
            self.emit_sized::<{ MAX_HEADER_LEN - TIMESTAMPS_LEN }>(
                buf, &fields, payload_a, payload_b,
            )
        }
    }

    /// [`emit`](Self::emit) for a header of `H` bytes (`H` is the
    /// template's `header_len`).
    #[inline(always)]
    fn emit_sized<const H: usize>(
        &self,
        buf: &mut [u8],
        f: &Fields,
        payload_a: &[u8],
        payload_b: &[u8],
    ) -> usize {
        let payload_len = payload_a.len() + payload_b.len();
        let segment_len = H - ETHERNET_HEADER_LEN - IPV4_HEADER_LEN + payload_len;
        let ip_total = IPV4_HEADER_LEN + segment_len;
        if ip_total > usize::from(u16::MAX) {
            return 0;
        }
        let frame_len = ETHERNET_HEADER_LEN + ip_total;
        let Some(out) = buf.get_mut(..frame_len) else {
            return 0;
        };
        let (header, payload) = out.split_at_mut(H);
        let Ok(header) = <&mut [u8; H]>::try_from(header) else {
            return 0;
        };
        header.copy_from_slice(&self.header[..H]);

        let ip_total = ip_total as u16;
        let mut ip_sum = self.ip_sum;
        ip_sum.add_u16(ip_total);
        put16(header, at::IP_TOTAL_LEN, ip_total);
        put16(header, at::IP_CHECKSUM, ip_sum.finish());

        put32(header, at::SEQ, f.seq.0);
        put32(header, at::ACK, f.ack.0);
        header[at::FLAGS] = f.flags.bits();
        put16(header, at::WINDOW, f.window);
        let mut sum = self.tcp_sum;
        sum.add_u16(segment_len as u16);
        sum.add_u32(f.seq.0);
        sum.add_u32(f.ack.0);
        // The low byte of the data-offset word; the offset is in the template.
        sum.add_u16(u16::from(f.flags.bits()));
        sum.add_u16(f.window);
        if H == MAX_HEADER_LEN {
            put32(header, at::TSVAL, f.ts.tsval);
            put32(header, at::TSECR, f.ts.tsecr);
            sum.add_u32(f.ts.tsval);
            sum.add_u32(f.ts.tsecr);
        }
        if payload_len > 0 {
            let (data_a, data_b) = payload.split_at_mut(payload_a.len());
            data_a.copy_from_slice(payload_a);
            data_b.copy_from_slice(payload_b);
            // The payload starts at an even offset of the segment (the
            // header is a whole number of 32-bit words), as `add_bytes`
            // requires.
            sum.add_bytes(payload);
        }
        put16(header, at::TCP_CHECKSUM, sum.finish());
        frame_len
    }
}

/// The per-segment fields of [`SegmentTemplate::emit`].
struct Fields {
    seq: SeqNum,
    ack: SeqNum,
    flags: TcpFlags,
    window: u16,
    ts: Timestamps,
}

/// The pseudo-header sum (RFC 9293 §3.1) without the TCP length, which
/// differs per segment.
fn pseudo_header_without_length(src: Ipv4Addr, dst: Ipv4Addr) -> Checksum {
    ipv4_pseudo_header(src, dst, IP_PROTO_TCP, 0)
}

#[inline(always)]
fn put16<const H: usize>(buf: &mut [u8; H], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
fn put32<const H: usize>(buf: &mut [u8; H], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{emit_tcp_frame, parse_tcp_frame, tcp_frame_len};
    use proptest::prelude::*;

    fn reprs(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: u32,
        dst: u32,
        ttl: u8,
    ) -> (EthernetRepr, Ipv4Repr) {
        let eth = EthernetRepr {
            src_addr: MacAddr(src_mac),
            dst_addr: MacAddr(dst_mac),
            ethertype: EtherType::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Addr::from(src),
            dst_addr: Ipv4Addr::from(dst),
            protocol: IP_PROTO_TCP,
            payload_len: 0,
            ttl,
            dscp_ecn: 0,
            ident: 0,
        };
        (eth, ip)
    }

    #[test]
    fn pure_ack_with_timestamps() {
        let (eth, ip) = reprs(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            0xc612_0001,
            0xc612_0002,
            64,
        );
        let t = SegmentTemplate::new(&eth, &ip, 80, 40000, true);
        assert!(t.has_timestamps());
        assert_eq!(t.src_mac(), eth.src_addr);
        assert_eq!(t.frame_len(0), 66);
        let ts = Timestamps { tsval: 7, tsecr: 9 };
        let mut buf = [0u8; 80];
        let n = t.emit(
            &mut buf,
            SeqNum(1),
            SeqNum(2),
            TcpFlags::ACK,
            100,
            ts,
            &[],
            &[],
        );
        assert_eq!(n, 66);
        let f = parse_tcp_frame(&buf[..n], true).unwrap();
        assert_eq!(f.tcp.seq, SeqNum(1));
        assert_eq!(f.tcp.ack, SeqNum(2));
        assert_eq!(f.tcp.window, 100);
        assert_eq!(f.tcp.options.timestamps, Some(ts));
        // Too short a buffer: nothing written.
        let mut short = [0xaau8; 65];
        assert_eq!(
            t.emit(
                &mut short,
                SeqNum(1),
                SeqNum(2),
                TcpFlags::ACK,
                1,
                ts,
                &[],
                &[]
            ),
            0
        );
        assert!(short.iter().all(|&b| b == 0xaa));
    }

    proptest! {
        /// The template's frame equals the general builder's, byte for
        /// byte, over random addresses, ports, fields and payloads (split
        /// anywhere, odd lengths included).
        #[test]
        fn same_bytes_as_the_full_builder(
            macs in any::<([u8; 6], [u8; 6])>(),
            addrs in any::<(u32, u32)>(),
            ttl in any::<u8>(),
            ports in (1u16.., 1u16..),
            seq in any::<u32>(),
            ack in any::<u32>(),
            flags in any::<u8>(),
            window in any::<u16>(),
            ts in any::<(u32, u32)>(),
            with_ts in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..1600),
            split in any::<usize>(),
        ) {
            let (eth, ip) = reprs(macs.0, macs.1, addrs.0, addrs.1, ttl);
            let t = SegmentTemplate::new(&eth, &ip, ports.0, ports.1, with_ts);
            prop_assert_eq!(t.has_timestamps(), with_ts);
            let ts = Timestamps { tsval: ts.0, tsecr: ts.1 };
            let tcp = TcpRepr {
                src_port: ports.0,
                dst_port: ports.1,
                seq: SeqNum(seq),
                ack: SeqNum(ack),
                flags: TcpFlags(flags),
                window,
                urgent: 0,
                options: TcpOptions {
                    timestamps: with_ts.then_some(ts),
                    ..TcpOptions::default()
                },
            };
            let split = split % (payload.len() + 1);
            let (a, b) = payload.split_at(split);
            let len = tcp_frame_len(&tcp, payload.len());
            prop_assert_eq!(t.frame_len(payload.len()), len);
            let mut full = vec![0u8; len];
            prop_assert_eq!(emit_tcp_frame(&mut full, &eth, &ip, &tcp, a, b), len);
            let mut fast = vec![0x5au8; len + 3];
            let n = t.emit(&mut fast, SeqNum(seq), SeqNum(ack), TcpFlags(flags), window, ts, a, b);
            prop_assert_eq!(n, len);
            prop_assert_eq!(&fast[..n], &full[..]);
            prop_assert_eq!(&fast[n..], &[0x5a; 3]);
        }
    }
}
