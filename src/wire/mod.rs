//! Packet formats: zero-copy views over byte slices, plus emit.
//!
//! Each format comes in two halves:
//!
//! * a *view* (`EthernetFrame<T>`, `Ipv4Packet<T>`, `TcpPacket<T>`, ...)
//!   wrapping any `T: AsRef<[u8]>`, with field accessors that read straight
//!   out of the buffer and, for `T: AsMut<[u8]>`, setters that write into it.
//!   `new_checked` validates the lengths once, after which no accessor can
//!   panic; `new_unchecked` skips the validation and leaves the accessors free
//!   to panic on a short buffer (use it only on buffers you sized yourself);
//! * a *repr* (`EthernetRepr`, `Ipv4Repr`, `TcpRepr`, ...), a plain value
//!   holding the decoded header, with `parse` (view → repr, applying the
//!   semantic checks a receiver must make) and `emit` (repr → view).
//!
//! [`frame`] composes the layers into the unit the TCP engine deals in: one
//! whole Ethernet/IPv4/TCP frame; [`segment`] validates a received one and
//! reads its fields in place (the receive path's parser); [`template`] is the fast way to build the
//! common ones (an established flow's segments without SACK blocks).

pub mod arp;
pub mod checksum;
#[cfg(target_arch = "x86_64")]
mod checksum_avx2;
pub mod ethernet;
pub mod frame;
pub mod ipv4;
pub mod segment;
pub mod seq;
pub mod tcp;
pub mod template;

pub use ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr, ETHERNET_HEADER_LEN};
pub use frame::{emit_tcp_frame, parse_tcp_frame, tcp_frame_len, TcpFrame};
pub use ipv4::{Ipv4Packet, Ipv4Repr, IPV4_HEADER_LEN, IP_PROTO_TCP};
pub use segment::TcpSegment;
pub use seq::SeqNum;
pub use tcp::{SackBlocks, TcpFlags, TcpOptions, TcpPacket, TcpRepr, Timestamps, TCP_HEADER_LEN};
pub use template::SegmentTemplate;

/// Why a buffer could not be parsed as the requested format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the format (or a length field) requires.
    #[error("packet truncated")]
    Truncated,
    /// A field holds a value the format does not allow.
    #[error("malformed packet")]
    Malformed,
    /// The Internet checksum does not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// An IPv4 fragment: this stack does not reassemble.
    #[error("IPv4 fragment (reassembly not supported)")]
    Fragmented,
    /// Well-formed, but a protocol or variant this stack does not handle.
    #[error("unsupported protocol")]
    Unsupported,
}

/// Result of the wire layer's parsers.
pub type Result<T> = core::result::Result<T, WireError>;
