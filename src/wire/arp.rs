//! ARP (RFC 826), as far as needed to recognise and answer ARP for IPv4 over
//! Ethernet.
//!
//! The packet layout is generic over the hardware and protocol address
//! lengths; [`ArpPacket`] follows those lengths, while [`ArpRepr`] only
//! accepts the Ethernet/IPv4 combination.

use std::net::Ipv4Addr;

use super::ethernet::MacAddr;
use super::{Result, WireError};

/// Hardware type for Ethernet (RFC 826 "ar$hrd"; IANA ARP parameters).
pub const HARDWARE_ETHERNET: u16 = 1;
/// Protocol type for IPv4: its EtherType.
pub const PROTOCOL_IPV4: u16 = 0x0800;

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    /// Start of the variable-length address section.
    pub const ADDRS: usize = 8;
}

/// The ARP opcode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArpOperation {
    /// 1 (ares_op$REQUEST).
    Request,
    /// 2 (ares_op$REPLY).
    Reply,
    /// Anything else (e.g. RARP opcodes).
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(op: ArpOperation) -> u16 {
        match op {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(v) => v,
        }
    }
}

/// A zero-copy view of an ARP packet (the Ethernet payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without checking it; the accessors panic on a buffer
    /// too short for the fixed part or for the address lengths it declares.
    pub fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps `buffer`, failing with [`WireError::Truncated`] unless it holds
    /// the fixed 8 bytes and the four addresses their length fields declare.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Ok` when every accessor is in bounds.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < field::ADDRS {
            return Err(WireError::Truncated);
        }
        let addrs = 2 * (usize::from(b[field::HLEN]) + usize::from(b[field::PLEN]));
        if b.len() < field::ADDRS + addrs {
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

    /// Hardware address space (1 = Ethernet).
    pub fn hardware_type(&self) -> u16 {
        self.u16_at(field::HTYPE)
    }

    /// Protocol address space (0x0800 = IPv4).
    pub fn protocol_type(&self) -> u16 {
        self.u16_at(field::PTYPE)
    }

    /// Length of a hardware address in bytes.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Length of a protocol address in bytes.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The opcode.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(self.u16_at(field::OPER))
    }

    /// Offsets of the four addresses: sha, spa, tha, tpa.
    fn addr_offsets(&self) -> [usize; 4] {
        let h = usize::from(self.hardware_len());
        let p = usize::from(self.protocol_len());
        let sha = field::ADDRS;
        [sha, sha + h, sha + h + p, sha + 2 * h + p]
    }

    /// Sender hardware address (`hardware_len` bytes).
    pub fn sender_hardware_addr(&self) -> &[u8] {
        let o = self.addr_offsets();
        &self.buffer.as_ref()[o[0]..o[1]]
    }

    /// Sender protocol address (`protocol_len` bytes).
    pub fn sender_protocol_addr(&self) -> &[u8] {
        let o = self.addr_offsets();
        &self.buffer.as_ref()[o[1]..o[2]]
    }

    /// Target hardware address (`hardware_len` bytes).
    pub fn target_hardware_addr(&self) -> &[u8] {
        let o = self.addr_offsets();
        &self.buffer.as_ref()[o[2]..o[3]]
    }

    /// Target protocol address (`protocol_len` bytes).
    pub fn target_protocol_addr(&self) -> &[u8] {
        let o = self.addr_offsets();
        let end = o[3] + usize::from(self.protocol_len());
        &self.buffer.as_ref()[o[3]..end]
    }
}

/// A decoded ARP packet for IPv4 over Ethernet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub source_hardware_addr: MacAddr,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: MacAddr,
    pub target_protocol_addr: Ipv4Addr,
}

/// Array from a slice whose length the caller has already checked.
fn array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

impl ArpRepr {
    /// Length of an Ethernet/IPv4 ARP packet: 8 + 2 × (6 + 4).
    pub const BUFFER_LEN: usize = 28;

    /// Decodes `packet`, which must be Ethernet/IPv4 ARP (hardware type 1,
    /// protocol type 0x0800, address lengths 6 and 4); any other combination
    /// is [`WireError::Unsupported`]. Every opcode is accepted: RFC 826 has
    /// the receiver update its table before looking at the opcode.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &ArpPacket<&T>) -> Result<Self> {
        packet.check_len()?;
        if packet.hardware_type() != HARDWARE_ETHERNET
            || packet.protocol_type() != PROTOCOL_IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(WireError::Unsupported);
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: MacAddr(array(packet.sender_hardware_addr())),
            source_protocol_addr: Ipv4Addr::from(array::<4>(packet.sender_protocol_addr())),
            target_hardware_addr: MacAddr(array(packet.target_hardware_addr())),
            target_protocol_addr: Ipv4Addr::from(array::<4>(packet.target_protocol_addr())),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        Self::BUFFER_LEN
    }

    /// Writes the 28-byte Ethernet/IPv4 ARP packet into the start of `buf`.
    /// Returns the bytes written, or 0 (writing nothing) if `buf` is shorter
    /// than [`BUFFER_LEN`](Self::BUFFER_LEN).
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let Some(out) = buf.get_mut(..Self::BUFFER_LEN) else {
            return 0;
        };
        out[field::HTYPE].copy_from_slice(&HARDWARE_ETHERNET.to_be_bytes());
        out[field::PTYPE].copy_from_slice(&PROTOCOL_IPV4.to_be_bytes());
        out[field::HLEN] = 6;
        out[field::PLEN] = 4;
        out[field::OPER].copy_from_slice(&u16::from(self.operation).to_be_bytes());
        out[8..14].copy_from_slice(&self.source_hardware_addr.0);
        out[14..18].copy_from_slice(&self.source_protocol_addr.octets());
        out[18..24].copy_from_slice(&self.target_hardware_addr.0);
        out[24..28].copy_from_slice(&self.target_protocol_addr.octets());
        Self::BUFFER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// "Who has 192.168.1.1? Tell 192.168.1.100", as captured.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // sha
        192, 168, 1, 100, // spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // tha
        192, 168, 1, 1, // tpa
    ];

    #[test]
    fn parse_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.operation(), ArpOperation::Request);
        assert_eq!(p.sender_hardware_addr(), &REQUEST[8..14]);
        assert_eq!(p.target_protocol_addr(), &[192, 168, 1, 1]);
        let r = ArpRepr::parse(&p).unwrap();
        assert_eq!(
            r,
            ArpRepr {
                operation: ArpOperation::Request,
                source_hardware_addr: MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
                source_protocol_addr: Ipv4Addr::new(192, 168, 1, 100),
                target_hardware_addr: MacAddr::default(),
                target_protocol_addr: Ipv4Addr::new(192, 168, 1, 1),
            }
        );
    }

    #[test]
    fn emit_matches_capture() {
        let r = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap()).unwrap();
        let mut buf = [0xaau8; 30];
        assert_eq!(r.emit(&mut buf), 28);
        assert_eq!(&buf[..28], &REQUEST[..]);
        assert_eq!(r.emit(&mut buf[..27]), 0);
    }

    #[test]
    fn truncated_and_unsupported() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..7]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]),
            Err(WireError::Truncated)
        );
        let unchecked = ArpPacket::new_unchecked(&REQUEST[..20]);
        assert_eq!(ArpRepr::parse(&unchecked), Err(WireError::Truncated));

        let mut ipv6ish = REQUEST;
        ipv6ish[2] = 0x86;
        ipv6ish[3] = 0xdd;
        let p = ArpPacket::new_checked(&ipv6ish[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Err(WireError::Unsupported));

        // A shorter declared protocol length is a valid packet, but not ours.
        let mut short = REQUEST;
        short[5] = 2;
        let p = ArpPacket::new_checked(&short[..]).unwrap();
        assert_eq!(p.sender_protocol_addr(), &[192, 168]);
        assert_eq!(ArpRepr::parse(&p), Err(WireError::Unsupported));
    }

    #[test]
    fn opcodes() {
        for (v, op) in [
            (1, ArpOperation::Request),
            (2, ArpOperation::Reply),
            (3, ArpOperation::Unknown(3)),
        ] {
            assert_eq!(ArpOperation::from(v), op);
            assert_eq!(u16::from(op), v);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = ArpPacket::new_checked(&buf[..]) {
                let _ = (p.hardware_type(), p.protocol_type(), p.operation());
                let _ = (p.sender_hardware_addr(), p.sender_protocol_addr());
                let _ = (p.target_hardware_addr(), p.target_protocol_addr());
                let _ = ArpRepr::parse(&p);
            }
            let _ = ArpRepr::parse(&ArpPacket::new_unchecked(&buf[..]));
        }

        #[test]
        fn repr_round_trip(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<u32>(), tha in any::<[u8; 6]>(), tpa in any::<u32>()) {
            let r = ArpRepr {
                operation: ArpOperation::from(op),
                source_hardware_addr: MacAddr(sha),
                source_protocol_addr: Ipv4Addr::from(spa),
                target_hardware_addr: MacAddr(tha),
                target_protocol_addr: Ipv4Addr::from(tpa),
            };
            let mut buf = [0u8; 28];
            prop_assert_eq!(r.emit(&mut buf), r.buffer_len());
            prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()), Ok(r));
        }
    }
}
