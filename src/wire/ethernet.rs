//! Ethernet II frames (IEEE 802.3 with an EtherType), without VLAN tags.
//!
//! The frame as the NIC hands it over: destination MAC, source MAC,
//! EtherType, payload. Preamble, FCS and inter-frame gap are the hardware's
//! business and never appear in the buffer.

use core::fmt;
use core::str::FromStr;

use super::{Result, WireError};

/// Length of the Ethernet header: two addresses and the EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;

mod field {
    use core::ops::{Range, RangeFrom};
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the I/G (group) bit, the least significant bit of the first
    /// octet, is set; true for broadcast too.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The six octets.
    pub fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// An address from the first six bytes of `bytes` (which must hold at
    /// least six; used by the views after their length check).
    fn from_slice(bytes: &[u8]) -> MacAddr {
        let mut a = [0u8; 6];
        a.copy_from_slice(&bytes[..6]);
        MacAddr(a)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            a[0], a[1], a[2], a[3], a[4], a[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error from parsing a [`MacAddr`] that is not six `:`-separated pairs of
/// hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address (expected aa:bb:cc:dd:ee:ff)")]
pub struct ParseMacAddrError;

impl FromStr for MacAddr {
    type Err = ParseMacAddrError;

    /// Parses `aa:bb:cc:dd:ee:ff`: exactly six groups of exactly two hex
    /// digits (either case), separated by colons.
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut groups = s.split(':');
        for octet in out.iter_mut() {
            let g = groups.next().ok_or(ParseMacAddrError)?;
            // from_str_radix alone would accept "+f" and single digits.
            if g.len() != 2 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseMacAddrError);
            }
            *octet = u8::from_str_radix(g, 16).map_err(|_| ParseMacAddrError)?;
        }
        if groups.next().is_some() {
            return Err(ParseMacAddrError);
        }
        Ok(MacAddr(out))
    }
}

/// The EtherType field: which protocol the payload carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x0806.
    Arp,
    /// 0x86DD.
    Ipv6,
    /// Anything else, including 802.1Q tags (0x8100), which are not parsed,
    /// and IEEE 802.3 length values (< 0x0600).
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(v) => v,
        }
    }
}

/// A zero-copy view of an Ethernet II frame in a byte buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking its length: the accessors panic if it
    /// is shorter than [`ETHERNET_HEADER_LEN`]. See [`check_len`](Self::check_len).
    pub fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer`, failing with [`WireError::Truncated`] if it cannot hold
    /// the header. No accessor of the result can panic.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// `Ok` when the buffer holds at least the 14-byte header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < ETHERNET_HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr::from_slice(&self.buffer.as_ref()[field::DST])
    }

    /// Source MAC address.
    pub fn src_addr(&self) -> MacAddr {
        MacAddr::from_slice(&self.buffer.as_ref()[field::SRC])
    }

    /// The EtherType.
    pub fn ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        EtherType::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Everything after the header. On receive this may include padding
    /// up to the 60-byte minimum frame; the payload's own length field
    /// (e.g. IPv4 total length) says where the real data ends.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(ethertype).to_be_bytes());
    }

    /// Everything after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// A decoded Ethernet header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EthernetRepr {
    pub src_addr: MacAddr,
    pub dst_addr: MacAddr,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Bytes [`emit`](Self::emit) writes.
    pub const HEADER_LEN: usize = ETHERNET_HEADER_LEN;

    /// Decodes the header of `frame` (which may have been built unchecked:
    /// the length is checked here). Any addresses and EtherType are
    /// accepted; filtering is the caller's policy.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &EthernetFrame<&T>) -> Result<Self> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// Writes the header into the first 14 bytes of `frame`, leaving the
    /// payload untouched. The buffer must hold at least
    /// [`HEADER_LEN`](Self::HEADER_LEN) bytes (else this panics).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME: [u8; 18] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // dst
        0x02, 0x00, 0x5e, 0xab, 0xcd, 0xef, // src
        0x08, 0x00, // IPv4
        0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn parse_fields() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        assert_eq!(f.src_addr().to_string(), "02:00:5e:ab:cd:ef");
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(r.ethertype, EtherType::Ipv4);
        assert_eq!(r.src_addr, f.src_addr());
    }

    #[test]
    fn too_short() {
        assert_eq!(
            EthernetFrame::new_checked(&FRAME[..13]).unwrap_err(),
            WireError::Truncated
        );
        assert!(EthernetFrame::new_checked(&FRAME[..14])
            .unwrap()
            .payload()
            .is_empty());
        let unchecked = EthernetFrame::new_unchecked(&FRAME[..5]);
        assert_eq!(EthernetRepr::parse(&unchecked), Err(WireError::Truncated));
    }

    #[test]
    fn vlan_is_unknown() {
        let mut buf = FRAME;
        buf[12] = 0x81;
        buf[13] = 0x00;
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::Unknown(0x8100));
    }

    #[test]
    fn emit_round_trip() {
        let repr = EthernetRepr {
            src_addr: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_addr: MacAddr::BROADCAST,
            ethertype: EtherType::Arp,
        };
        let mut buf = [0u8; 20];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        repr.emit(&mut f);
        f.payload_mut()[0] = 0x77;
        assert_eq!(
            &buf[..14],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06]
        );
        assert_eq!(buf[14], 0x77);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&f).unwrap(), repr);
    }

    #[test]
    fn ethertype_conversions() {
        for (v, t) in [
            (0x0800, EtherType::Ipv4),
            (0x0806, EtherType::Arp),
            (0x86dd, EtherType::Ipv6),
            (0x8100, EtherType::Unknown(0x8100)),
        ] {
            assert_eq!(EtherType::from(v), t);
            assert_eq!(u16::from(t), v);
        }
    }

    #[test]
    fn mac_classes() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!MacAddr([0x02, 0, 0, 0, 0, 1]).is_multicast());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_unicast());
        assert!(!MacAddr::default().is_broadcast());
    }

    #[test]
    fn mac_text() {
        let m: MacAddr = "52:54:00:AB:cd:0f".parse().unwrap();
        assert_eq!(m, MacAddr([0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f]));
        assert_eq!(format!("{m}"), "52:54:00:ab:cd:0f");
        assert_eq!(format!("{m:?}"), "52:54:00:ab:cd:0f");
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:0f:00",
            "52:54:00:ab:cd:f",
            "52:54:00:ab:cd:+f",
            "52-54-00-ab-cd-0f",
            "52:54:00:ab:cd:0g",
            "52:54:00:ab:cd:0f:",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(ParseMacAddrError), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(f) = EthernetFrame::new_checked(&buf[..]) {
                let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload().len());
                let r = EthernetRepr::parse(&f).unwrap();
                prop_assert_eq!(u16::from(r.ethertype), u16::from_be_bytes([buf[12], buf[13]]));
            } else {
                prop_assert!(buf.len() < ETHERNET_HEADER_LEN);
            }
        }

        #[test]
        fn mac_display_parse_round_trip(a in any::<[u8; 6]>()) {
            let m = MacAddr(a);
            prop_assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
        }

        #[test]
        fn mac_parse_arbitrary_text_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<MacAddr>();
        }

        #[test]
        fn repr_round_trip(src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(), et in any::<u16>()) {
            let repr = EthernetRepr { src_addr: MacAddr(src), dst_addr: MacAddr(dst), ethertype: EtherType::from(et) };
            let mut buf = [0u8; ETHERNET_HEADER_LEN];
            repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
            prop_assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).unwrap()), Ok(repr));
        }
    }
}
