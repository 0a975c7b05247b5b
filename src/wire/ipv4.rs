//! IPv4 (RFC 791), as an end host that neither fragments nor reassembles.
//!
//! Received options are skipped, fragments are refused, and emitted packets
//! carry no options and set Don't Fragment: TCP sizes its segments to the
//! path (RFC 9293 §3.7), so fragmentation is never needed on send.

use std::net::Ipv4Addr;

use super::checksum;
use super::{Result, WireError};

/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// IP protocol number of TCP.
pub const IP_PROTO_TCP: u8 = 6;

/// Largest `total_len`, hence largest payload behind a 20-byte header.
const MAX_TOTAL_LEN: usize = u16::MAX as usize;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Flag bits of the flags/fragment-offset word (RFC 791 §3.1).
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 packet in a byte buffer.
///
/// The buffer may extend past the packet (Ethernet pads short frames to 60
/// bytes); `total_len` marks the packet's end and [`payload`](Self::payload)
/// stops there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it; fixed-field accessors panic on a
    /// buffer shorter than 20 bytes. See [`check_len`](Self::check_len).
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the
    /// result can panic.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds a structurally sound IPv4 packet:
    ///
    /// * at least 20 bytes, else [`WireError::Truncated`];
    /// * version 4 and IHL ≥ 5 (RFC 791 §3.1: "the minimum value for a
    ///   correct header is 5"), else [`WireError::Malformed`];
    /// * the header, by IHL, fits in the buffer, else `Truncated`;
    /// * `total_len` ≥ header length, else `Malformed`, and ≤ the buffer
    ///   length, else `Truncated`.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < IPV4_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 || self.header_len() < IPV4_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if self.header_len() > len {
            return Err(WireError::Truncated);
        }
        let total = usize::from(self.total_len());
        if total < self.header_len() {
            return Err(WireError::Malformed);
        }
        if total > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn addr_at(&self, r: core::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[r];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The version field (4 for any packet that passed `check_len`).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The DSCP (high 6 bits) and ECN (low 2 bits) byte, formerly TOS.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length of the packet, header included, in bytes.
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT)
    }

    /// The Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLG_OFF) & FLAG_DF != 0
    }

    /// The More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in *bytes* (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.u16_at(field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// Time to live.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Time to live (alias of [`hop_limit`](Self::hop_limit)).
    pub fn ttl(&self) -> u8 {
        self.hop_limit()
    }

    /// The protocol field: the IP protocol number of the payload.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        self.addr_at(field::SRC)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        self.addr_at(field::DST)
    }

    /// The header bytes (options included), clamped to the buffer.
    fn header(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..self.header_len().min(b.len())]
    }

    /// Whether the header checksum verifies (RFC 791 §3.1: the checksum
    /// covers the header only, options included).
    pub fn verify_checksum(&self) -> bool {
        header_checksum(self.header()) == 0
    }

    /// Options bytes between the fixed header and the payload.
    pub fn options(&self) -> &[u8] {
        let h = self.header();
        &h[IPV4_HEADER_LEN.min(h.len())..]
    }

    /// The payload: bytes `header_len..total_len`, excluding any link-layer
    /// padding after `total_len`. (Clamped to the buffer, so even a view
    /// whose fields were set inconsistently cannot make this panic.)
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        let start = self.header_len().min(end);
        &b[start..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn set_u16_at(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the version field.
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the header length in bytes; it must be a multiple of 4 in 20..=60
    /// (lower bits are dropped).
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | (((len / 4) as u8) & 0x0f);
    }

    /// Sets the DSCP/ECN byte.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, len: u16) {
        self.set_u16_at(field::LENGTH, len);
    }

    /// Sets the identification field.
    pub fn set_ident(&mut self, ident: u16) {
        self.set_u16_at(field::IDENT, ident);
    }

    /// Sets or clears Don't Fragment.
    pub fn set_dont_frag(&mut self, df: bool) {
        let w = self.u16_at(field::FLG_OFF) & !FLAG_DF;
        self.set_u16_at(field::FLG_OFF, w | if df { FLAG_DF } else { 0 });
    }

    /// Sets or clears More Fragments.
    pub fn set_more_frags(&mut self, mf: bool) {
        let w = self.u16_at(field::FLG_OFF) & !FLAG_MF;
        self.set_u16_at(field::FLG_OFF, w | if mf { FLAG_MF } else { 0 });
    }

    /// Sets the fragment offset, in bytes (rounded down to a multiple of 8).
    pub fn set_frag_offset(&mut self, offset: u16) {
        let w = self.u16_at(field::FLG_OFF) & !OFFSET_MASK;
        self.set_u16_at(field::FLG_OFF, w | (offset >> 3));
    }

    /// Sets the time to live.
    pub fn set_hop_limit(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol field.
    pub fn set_next_header(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.set_u16_at(field::CHECKSUM, checksum);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }

    /// Computes the header checksum over the current header (IHL bytes) and
    /// stores it. Call after every other header field is final.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = header_checksum(self.header());
        self.set_checksum(c);
    }

    /// The payload (`header_len..total_len`, clamped to the buffer), writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.buffer.as_ref().len();
        let end = usize::from(self.total_len()).min(len);
        let start = self.header_len().min(end);
        &mut self.buffer.as_mut()[start..end]
    }
}

/// A decoded IPv4 header, as far as an end host needs it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    /// IP protocol number of the payload.
    pub protocol: u8,
    /// Payload bytes after the header (`total_len - header_len`).
    pub payload_len: usize,
    pub ttl: u8,
    pub dscp_ecn: u8,
    pub ident: u16,
}

impl Ipv4Repr {
    /// Decodes `packet` (lengths are re-checked here, so it may have been
    /// built unchecked).
    ///
    /// * The header checksum is verified when `verify_checksum` is set (turn
    ///   it off when the NIC already did); failure is
    ///   [`WireError::BadChecksum`]. It is checked before anything else in
    ///   the header is trusted.
    /// * A fragment (More Fragments set or a non-zero offset, RFC 791 §3.2)
    ///   is [`WireError::Fragmented`]: this stack does not reassemble, and
    ///   sends with DF so a well-behaved peer's segments arrive whole.
    /// * Options are skipped: RFC 1122 §3.2.1.8 lets a host ignore options
    ///   it does not implement, and `payload_len` is measured from the end
    ///   of the options.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Ipv4Packet<&T>,
        verify_checksum: bool,
    ) -> Result<Self> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if packet.more_frags() || packet.frag_offset() != 0 {
            return Err(WireError::Fragmented);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.next_header(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.hop_limit(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
        })
    }

    /// Header plus payload: what [`emit`](Self::emit) expects the buffer to
    /// hold.
    pub fn buffer_len(&self) -> usize {
        IPV4_HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header without options into `packet`: DF set, MF
    /// clear, offset 0, `total_len = 20 + payload_len`, checksum filled.
    /// The payload bytes are not touched.
    ///
    /// The buffer must hold at least 20 bytes (else this panics), and
    /// `payload_len` must be at most 65515 so the total fits its 16-bit
    /// field; a larger value is clamped to 65535 (callers such as
    /// [`emit_tcp_frame`](super::emit_tcp_frame) refuse such sizes first).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        let total = self.buffer_len().min(MAX_TOTAL_LEN) as u16;
        packet.set_version(4);
        packet.set_header_len(IPV4_HEADER_LEN);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        // One write for flags and offset: DF only.
        packet.set_u16_at(field::FLG_OFF, FLAG_DF);
        packet.set_hop_limit(self.ttl);
        packet.set_next_header(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

/// The Internet checksum of a header: the 20-byte case (no options) by
/// the short fixed-size sum.
#[inline]
fn header_checksum(header: &[u8]) -> u16 {
    match <&[u8; IPV4_HEADER_LEN]>::try_from(header) {
        Ok(fixed) => checksum::internet_checksum_20(fixed),
        Err(_) => checksum::internet_checksum(header),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A UDP packet header (checksum b861) followed by 4 payload bytes; total
    /// length patched to 24 below.
    fn sample() -> Vec<u8> {
        let mut p = vec![
            0x45, 0x00, 0x00, 0x18, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7, 1, 2, 3, 4,
        ];
        let c = checksum::internet_checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn parse_fields() {
        let buf = sample();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert!(p.options().is_empty());
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(r.payload_len, 4);
        assert_eq!(r.protocol, 17);
        assert_eq!(r.ttl, 64);
    }

    #[test]
    fn wikipedia_header_checksum() {
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let mut buf = hdr.to_vec();
        buf.resize(0x73, 0);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.checksum(), 0xb861);
        assert!(p.verify_checksum());
    }

    #[test]
    fn length_checks() {
        let buf = sample();
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..19]),
            Err(WireError::Truncated)
        );
        // total_len 24 > 23 available.
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..23]),
            Err(WireError::Truncated)
        );

        let mut v6 = buf.clone();
        v6[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&v6[..]), Err(WireError::Malformed));

        let mut short_ihl = buf.clone();
        short_ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&short_ihl[..]),
            Err(WireError::Malformed)
        );

        // IHL 15 = 60 bytes > 24 available.
        let mut long_ihl = buf.clone();
        long_ihl[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&long_ihl[..]),
            Err(WireError::Truncated)
        );

        let mut small_total = buf.clone();
        small_total[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&small_total[..]),
            Err(WireError::Malformed)
        );

        let unchecked = Ipv4Packet::new_unchecked(&buf[..10]);
        assert_eq!(
            Ipv4Repr::parse(&unchecked, false),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn bad_checksum() {
        let mut buf = sample();
        buf[8] = 63; // TTL changed without fixing the checksum
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p, true), Err(WireError::BadChecksum));
        assert!(Ipv4Repr::parse(&p, false).is_ok());
    }

    #[test]
    fn fragments_refused() {
        // First fragment: MF set, offset 0.
        let mut first = sample();
        first[6] = 0x20;
        let mut p = Ipv4Packet::new_unchecked(&mut first[..]);
        p.fill_checksum();
        let p = Ipv4Packet::new_checked(&first[..]).unwrap();
        assert!(p.more_frags());
        assert_eq!(Ipv4Repr::parse(&p, true), Err(WireError::Fragmented));

        // Last fragment: MF clear, offset 1480 bytes (185 units).
        let mut last = sample();
        let mut p = Ipv4Packet::new_unchecked(&mut last[..]);
        p.set_dont_frag(false);
        p.set_frag_offset(1480);
        p.fill_checksum();
        assert_eq!(&last[6..8], &[0x00, 185]);
        let p = Ipv4Packet::new_checked(&last[..]).unwrap();
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(Ipv4Repr::parse(&p, true), Err(WireError::Fragmented));
    }

    #[test]
    fn options_skipped() {
        // IHL 6: a 4-byte option (NOP NOP NOP EOL) between header and payload.
        let mut buf = vec![
            0x46, 0x00, 0x00, 28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0, 0, 10, 0, 0, 1, 10, 0, 0,
            2, 1, 1, 1, 0, 0xaa, 0xbb, 0xcc, 0xdd,
        ];
        Ipv4Packet::new_unchecked(&mut buf[..]).fill_checksum();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(r.payload_len, 4);
        assert_eq!(r.protocol, IP_PROTO_TCP);
        assert_eq!(r.ident, 0x1234);
    }

    #[test]
    fn ethernet_padding_excluded() {
        let mut buf = sample();
        buf.extend_from_slice(&[0u8; 22]); // padded out to a 60-byte frame
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap().payload_len, 4);
    }

    #[test]
    fn emit_layout() {
        let r = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IP_PROTO_TCP,
            payload_len: 8,
            ttl: 64,
            dscp_ecn: 0x02,
            ident: 0xbeef,
        };
        let mut buf = vec![0xffu8; r.buffer_len()];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(
            &buf[..10],
            &[0x45, 0x02, 0x00, 28, 0xbe, 0xef, 0x40, 0x00, 64, 6]
        );
        assert_eq!(&buf[12..20], &[10, 0, 0, 1, 10, 0, 0, 2]);
        assert_eq!(&buf[20..], &[0xff; 8]); // payload untouched
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p, true), Ok(r));
    }

    #[test]
    fn inconsistent_setters_do_not_panic_payload() {
        let mut buf = sample();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_header_len(60);
        p.set_total_len(1000);
        assert!(p.payload().is_empty());
        assert!(p.payload_mut().is_empty());
        let _ = p.verify_checksum();
        let _ = p.options();
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            0usize..64,
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
        )
            .prop_map(
                |(s, d, protocol, payload_len, ttl, dscp_ecn, ident)| Ipv4Repr {
                    src_addr: Ipv4Addr::from(s),
                    dst_addr: Ipv4Addr::from(d),
                    protocol,
                    payload_len,
                    ttl,
                    dscp_ecn,
                    ident,
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..100), v4 in any::<bool>()) {
            let mut buf = buf;
            if v4 && !buf.is_empty() {
                // Bias toward plausible headers so the deeper checks run.
                buf[0] = 0x40 | (buf[0] & 0x0f);
            }
            if let Ok(p) = Ipv4Packet::new_checked(&buf[..]) {
                let _ = (p.version(), p.dscp_ecn(), p.ident(), p.dont_frag(), p.more_frags());
                let _ = (p.frag_offset(), p.ttl(), p.next_header(), p.checksum());
                let _ = (p.src_addr(), p.dst_addr(), p.options(), p.verify_checksum());
                prop_assert!(p.header_len() + p.payload().len() == usize::from(p.total_len()));
                for verify in [false, true] {
                    if let Ok(r) = Ipv4Repr::parse(&p, verify) {
                        prop_assert_eq!(r.payload_len, p.payload().len());
                    }
                }
            }
            let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&buf[..]), true);
        }

        #[test]
        fn repr_round_trip(r in arb_repr(), pad in 0usize..30) {
            let mut buf = vec![0u8; r.buffer_len() + pad];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
            let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&p, true), Ok(r));
            prop_assert_eq!(p.payload().len(), r.payload_len);
        }

        #[test]
        fn header_bit_flips_detected(r in arb_repr(), bit in 0usize..160) {
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
            buf[bit / 8] ^= 1 << (bit % 8);
            let parsed = Ipv4Packet::new_checked(&buf[..]).and_then(|p| Ipv4Repr::parse(&p, true));
            prop_assert!(parsed.is_err());
        }
    }
}
