//! The TCP header (RFC 9293 §3.1) and the options this stack speaks: MSS
//! (RFC 9293 §3.7.1), window scale and timestamps (RFC 7323), SACK-permitted
//! and SACK (RFC 2018).

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};
use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::IP_PROTO_TCP;
use super::seq::SeqNum;
use super::{Result, WireError};

/// Length of a TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;

/// Most option bytes a header can carry: data offset ≤ 15 words, minus the
/// fixed 5 (RFC 9293 §3.1).
const MAX_OPTIONS_LEN: usize = 40;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    /// Data offset (high nibble) and reserved bits.
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// The eight control bits of byte 13 (RFC 9293 §3.1; ECE and CWR from
/// RFC 3168 §6.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// No flags.
    pub const fn empty() -> Self {
        TcpFlags(0)
    }

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag in `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags in `other`.
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags in `other`.
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }

    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    pub const fn urg(self) -> bool {
        self.contains(Self::URG)
    }
    pub const fn ece(self) -> bool {
        self.contains(Self::ECE)
    }
    pub const fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    /// `TcpFlags(SYN | ACK)`, `TcpFlags(empty)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        f.write_str("TcpFlags(")?;
        if self.0 == 0 {
            f.write_str("empty")?;
        }
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// A zero-copy view of a TCP segment (header, options, payload) in a byte
/// buffer. The buffer is exactly the segment: its length is the TCP length
/// the checksum covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it; fixed-field accessors panic on a
    /// buffer shorter than 20 bytes. See [`check_len`](Self::check_len).
    pub fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor of the
    /// result can panic.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// At least 20 bytes ([`WireError::Truncated`]), a data offset of at
    /// least 5 words (RFC 9293 §3.1; else [`WireError::Malformed`]), and the
    /// header it declares within the buffer (else `Truncated`).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < TCP_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = self.header_len();
        if hl < TCP_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if hl > len {
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

    fn u32_at(&self, r: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> SeqNum {
        SeqNum(self.u32_at(field::SEQ))
    }

    /// Acknowledgment number (meaningful only with ACK set).
    pub fn ack_number(&self) -> SeqNum {
        SeqNum(self.u32_at(field::ACK))
    }

    /// Header length in bytes (data offset × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The window field, unscaled.
    pub fn window_len(&self) -> u16 {
        self.u16_at(field::WINDOW)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// The urgent pointer field.
    pub fn urgent_at(&self) -> u16 {
        self.u16_at(field::URGENT)
    }

    /// Header end, clamped to the buffer so a view with an inconsistent data
    /// offset still cannot make the slicing accessors panic.
    fn header_end(&self) -> usize {
        self.header_len().min(self.buffer.as_ref().len())
    }

    /// The raw option bytes (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = self.header_end();
        &b[TCP_HEADER_LEN.min(end)..end]
    }

    /// The payload: everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_end()..]
    }

    /// Whether the checksum verifies over the pseudo-header (RFC 9293 §3.1)
    /// and the whole buffer, whose length is the TCP length. A buffer longer
    /// than 65535 bytes cannot be a TCP segment and never verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u16::try_from(b.len()) else {
            return false;
        };
        let mut c = checksum::ipv4_pseudo_header(src, dst, IP_PROTO_TCP, len);
        c.add_bytes(b);
        c.finish() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn set_u16_at(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    fn set_u32_at(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        self.set_u16_at(field::SRC_PORT, port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        self.set_u16_at(field::DST_PORT, port);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: SeqNum) {
        self.set_u32_at(field::SEQ, seq.0);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, ack: SeqNum) {
        self.set_u32_at(field::ACK, ack.0);
    }

    /// Sets the header length in bytes (a multiple of 4 in 20..=60; lower
    /// bits are dropped) and clears the reserved bits, which RFC 9293 §3.1
    /// says "must be zero in generated segments".
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = (((len / 4) as u8) & 0x0f) << 4;
    }

    /// Sets the control bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window field.
    pub fn set_window_len(&mut self, window: u16) {
        self.set_u16_at(field::WINDOW, window);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.set_u16_at(field::CHECKSUM, checksum);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, urgent: u16) {
        self.set_u16_at(field::URGENT, urgent);
    }

    /// The option bytes, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_end();
        &mut self.buffer.as_mut()[TCP_HEADER_LEN.min(end)..end]
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_end();
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes the checksum over the pseudo-header and the whole buffer and
    /// stores it. The buffer must be at most 65535 bytes; a longer one is
    /// left with checksum 0 (it is not a valid segment anyway).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let Ok(len) = u16::try_from(b.len()) else {
            return;
        };
        let mut c = checksum::ipv4_pseudo_header(src, dst, IP_PROTO_TCP, len);
        c.add_bytes(b);
        let sum = c.finish();
        self.set_checksum(sum);
    }
}

/// The timestamps option (RFC 7323 §3.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Timestamps {
    /// TSval: the sender's timestamp clock.
    pub tsval: u32,
    /// TSecr: the TSval echoed back (valid only with ACK set).
    pub tsecr: u32,
}

/// Up to four SACK blocks (RFC 2018 §3), each the left edge and the right
/// edge (one past the last byte) of a received block.
///
/// Unused slots are kept at their default value, which is what makes the
/// derived equality compare only the blocks that are present.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SackBlocks {
    blocks: [(SeqNum, SeqNum); SackBlocks::MAX],
    len: u8,
}

impl SackBlocks {
    /// Most blocks one option can carry: (40 − 2) / 8.
    pub const MAX: usize = 4;

    /// No blocks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a block; false (and no change) when already full.
    pub fn push(&mut self, left: SeqNum, right: SeqNum) -> bool {
        let n = self.len();
        if n == Self::MAX {
            return false;
        }
        self.blocks[n] = (left, right);
        self.len += 1;
        true
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blocks in order.
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        &self.blocks[..self.len()]
    }

    /// Iterates over the (left, right) edges in order.
    pub fn iter(&self) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        self.as_slice().iter().copied()
    }

    /// Removes every block.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// The TCP options this stack understands; others are skipped on parse.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpOptions {
    /// Maximum segment size (RFC 9293 §3.7.1; only meaningful on SYN).
    pub mss: Option<u16>,
    /// Window scale shift count (RFC 7323 §2; only meaningful on SYN).
    pub window_scale: Option<u8>,
    /// SACK-permitted (RFC 2018 §2; only meaningful on SYN).
    pub sack_permitted: bool,
    /// SACK blocks (RFC 2018 §3).
    pub sack_blocks: SackBlocks,
    /// Timestamps (RFC 7323 §3).
    pub timestamps: Option<Timestamps>,
}

/// Bytes of the fixed part of each option as [`TcpOptions::emit`] lays it
/// out, NOP padding included.
mod layout {
    pub const MSS: usize = 4; // MSS(4)
    pub const SACK_PERM_TS: usize = 12; // SACKPERM(2) TS(10), or NOP NOP TS(10)
    pub const SACK_PERM_ALONE: usize = 4; // NOP NOP SACKPERM(2)
    pub const WINDOW_SCALE: usize = 4; // NOP WS(3)
    pub const SACK_HEAD: usize = 4; // NOP NOP kind len
    pub const SACK_BLOCK: usize = 8;
}

impl TcpOptions {
    /// Decodes the option bytes of a header (RFC 9293 §3.1 "Options"):
    ///
    /// * End of Option List stops parsing (whatever follows is padding);
    /// * No-Operation is skipped;
    /// * every other kind has a length byte counting kind and length: a
    ///   length below 2, or one running past the end, is
    ///   [`WireError::Malformed`], and unknown kinds are skipped by it
    ///   (RFC 9293 §3.1: "must be prepared to handle an illegal option
    ///   length"; RFC 1122 §4.2.2.5: ignore options not implemented);
    /// * known kinds must have their fixed length (MSS 4, window scale 3,
    ///   SACK-permitted 2, timestamps 10) and SACK 2 + 8n with n in 1..=4,
    ///   else `Malformed`.
    ///
    /// A window scale above 14 is reduced to 14, as RFC 7323 §2.3 requires
    /// ("MUST use 14 instead of the specified value"). When an option
    /// appears twice, the last one wins.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut opts = TcpOptions::default();
        if let [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10, t @ ..] = bytes {
            if let Ok(t) = <[u8; 8]>::try_from(t) {
                // The options of nearly every segment on a connection with
                // timestamps: NOP, NOP, TS (RFC 7323 Appendix A's layout,
                // which Linux predicts the same way in
                // tcp_parse_aligned_timestamp). Same result as the loop.
                opts.timestamps = Some(Timestamps {
                    tsval: u32::from_be_bytes([t[0], t[1], t[2], t[3]]),
                    tsecr: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                });
                return Ok(opts);
            }
        }
        let mut i = 0;
        while i < bytes.len() {
            let k = bytes[i];
            match k {
                kind::EOL => break,
                kind::NOP => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*bytes.get(i + 1).ok_or(WireError::Malformed)?);
            if len < 2 || len > bytes.len() - i {
                return Err(WireError::Malformed);
            }
            let data = &bytes[i + 2..i + len];
            match k {
                kind::MSS => {
                    let [a, b] = fixed::<2>(data)?;
                    opts.mss = Some(u16::from_be_bytes([a, b]));
                }
                kind::WINDOW_SCALE => {
                    let [shift] = fixed::<1>(data)?;
                    // RFC 7323 §2.3: shift counts above 14 are treated as 14.
                    opts.window_scale = Some(shift.min(14));
                }
                kind::SACK_PERMITTED => {
                    fixed::<0>(data)?;
                    opts.sack_permitted = true;
                }
                kind::TIMESTAMPS => {
                    let t = fixed::<8>(data)?;
                    opts.timestamps = Some(Timestamps {
                        tsval: u32::from_be_bytes([t[0], t[1], t[2], t[3]]),
                        tsecr: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                    });
                }
                kind::SACK => {
                    // RFC 2018 §3: length 2 + 8n; 40 option bytes bound n by 4.
                    let n = data.len() / layout::SACK_BLOCK;
                    if data.len() % layout::SACK_BLOCK != 0 || !(1..=SackBlocks::MAX).contains(&n) {
                        return Err(WireError::Malformed);
                    }
                    opts.sack_blocks.clear();
                    for b in data.chunks_exact(layout::SACK_BLOCK) {
                        let left = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        let right = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                        opts.sack_blocks.push(SeqNum(left), SeqNum(right));
                    }
                }
                _ => {} // unknown kind: skipped by its length
            }
            i += len;
        }
        Ok(opts)
    }

    /// Bytes of the fixed options (everything but SACK blocks).
    fn fixed_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += layout::MSS;
        }
        if self.timestamps.is_some() {
            n += layout::SACK_PERM_TS;
        } else if self.sack_permitted {
            n += layout::SACK_PERM_ALONE;
        }
        if self.window_scale.is_some() {
            n += layout::WINDOW_SCALE;
        }
        n
    }

    /// How many SACK blocks [`emit`](Self::emit) writes: all of them, or as
    /// many as fit in the 40 option bytes left over by the other options.
    fn sack_blocks_emitted(&self) -> usize {
        let room = (MAX_OPTIONS_LEN - self.fixed_len()).saturating_sub(layout::SACK_HEAD);
        self.sack_blocks.len().min(room / layout::SACK_BLOCK)
    }

    /// Bytes [`emit`](Self::emit) writes: a multiple of 4, at most 40.
    pub fn emitted_len(&self) -> usize {
        let n = self.sack_blocks_emitted();
        let sack = if n == 0 {
            0
        } else {
            layout::SACK_HEAD + n * layout::SACK_BLOCK
        };
        self.fixed_len() + sack
    }

    /// Writes the options into the start of `buf` and returns
    /// [`emitted_len`](Self::emitted_len); writes nothing and returns 0 if
    /// `buf` is shorter than that.
    ///
    /// Order and padding follow Linux, so every 4- and 8-byte field sits on a
    /// 4-byte boundary (RFC 7323 Appendix A suggests this layout):
    /// `MSS`, `SACKPERM TS` (or `NOP NOP TS`, or `NOP NOP SACKPERM`),
    /// `NOP WS`, `NOP NOP SACK`. Every item is a whole number of words, so no
    /// trailing padding is ever needed. SACK blocks that do not fit in the
    /// 40-byte limit are dropped from the end (3 fit next to timestamps).
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let total = self.emitted_len();
        let Some(out) = buf.get_mut(..total) else {
            return 0;
        };
        let mut w = Writer { out, pos: 0 };
        if let Some(mss) = self.mss {
            w.put(&[kind::MSS, 4]);
            w.put(&mss.to_be_bytes());
        }
        match (self.timestamps, self.sack_permitted) {
            (Some(ts), sack_permitted) => {
                if sack_permitted {
                    w.put(&[kind::SACK_PERMITTED, 2]);
                } else {
                    w.put(&[kind::NOP, kind::NOP]);
                }
                w.put(&[kind::TIMESTAMPS, 10]);
                w.put(&ts.tsval.to_be_bytes());
                w.put(&ts.tsecr.to_be_bytes());
            }
            (None, true) => w.put(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]),
            (None, false) => {}
        }
        if let Some(shift) = self.window_scale {
            w.put(&[kind::NOP, kind::WINDOW_SCALE, 3, shift]);
        }
        let n = self.sack_blocks_emitted();
        if n > 0 {
            let len = (2 + n * layout::SACK_BLOCK) as u8;
            w.put(&[kind::NOP, kind::NOP, kind::SACK, len]);
            for (left, right) in self.sack_blocks.iter().take(n) {
                w.put(&left.0.to_be_bytes());
                w.put(&right.0.to_be_bytes());
            }
        }
        debug_assert_eq!(w.pos, total);
        total
    }
}

/// The option payload as an array when it has exactly `N` bytes.
fn fixed<const N: usize>(data: &[u8]) -> Result<[u8; N]> {
    <[u8; N]>::try_from(data).map_err(|_| WireError::Malformed)
}

/// Sequential writer into a slice already sized to the exact output.
struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.out[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
}

/// A decoded TCP header. The payload is kept apart: on receive it is a
/// borrowed slice of the frame, on send it comes from the socket's ring
/// buffer (possibly in two pieces).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    /// Acknowledgment number, as on the wire (meaningful only with ACK).
    pub ack: SeqNum,
    pub flags: TcpFlags,
    /// Window field, unscaled.
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
}

impl TcpRepr {
    /// Decodes `packet`, whose buffer is the whole segment (the IPv4 payload),
    /// and returns the header and the payload slice.
    ///
    /// * With `verify_checksum`, the checksum over the pseudo-header of
    ///   `src`/`dst` and the segment must verify (RFC 9293 §3.1), else
    ///   [`WireError::BadChecksum`]; checked before any field is trusted.
    /// * Port 0 is reserved and never valid on the wire, so either port
    ///   being 0 is [`WireError::Malformed`].
    /// * Options as in [`TcpOptions::parse`].
    pub fn parse<'a>(
        packet: &TcpPacket<&'a [u8]>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<(TcpRepr, &'a [u8])> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        if packet.src_port() == 0 || packet.dst_port() == 0 {
            return Err(WireError::Malformed);
        }
        let options = TcpOptions::parse(packet.options())?;
        // Slice the inner `&'a [u8]` rather than call `payload()`, whose
        // result borrows from `packet` itself.
        let buffer: &'a [u8] = packet.buffer;
        let payload = &buffer[packet.header_len()..];
        Ok((
            TcpRepr {
                src_port: packet.src_port(),
                dst_port: packet.dst_port(),
                seq: packet.seq_number(),
                ack: packet.ack_number(),
                flags: packet.flags(),
                window: packet.window_len(),
                urgent: packet.urgent_at(),
                options,
            },
            payload,
        ))
    }

    /// Header length with options: `20 + options.emitted_len()`.
    pub fn header_len(&self) -> usize {
        TCP_HEADER_LEN + self.options.emitted_len()
    }

    /// Writes the header and options into the start of `packet` with a zero
    /// checksum; the payload is not touched. Fill the checksum once the
    /// payload is in place ([`TcpPacket::fill_checksum`], or as
    /// [`emit_tcp_frame`](super::emit_tcp_frame) does). The buffer must hold
    /// at least [`header_len`](Self::header_len) bytes (else this panics).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq);
        packet.set_ack_number(self.ack);
        packet.set_header_len(self.header_len());
        packet.set_flags(self.flags);
        packet.set_window_len(self.window);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent);
        let opts_len = self.options.emitted_len();
        let out = &mut packet.buffer.as_mut()[TCP_HEADER_LEN..TCP_HEADER_LEN + opts_len];
        self.options.emit(out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);

    /// A Linux-style SYN (the TCP part of a captured frame): port 41970 → 80,
    /// MSS 1460, SACK-permitted, TSval 0x009a5b3c, WS 7, window 64240.
    const SYN: [u8; 40] = [
        0xa3, 0xf2, 0x00, 0x50, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x75, 0x2a, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x9a,
        0x5b, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    #[test]
    fn syn_fields() {
        let p = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!(p.src_port(), 41970);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), SeqNum(0x1a2b3c4d));
        assert_eq!(p.ack_number(), SeqNum(0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.checksum(), 0x752a);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.options().len(), 20);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, Ipv4Addr::new(192, 168, 0, 3)));

        let (r, payload) = TcpRepr::parse(&p, SRC, DST, true).unwrap();
        assert!(payload.is_empty());
        assert_eq!(r.options.mss, Some(1460));
        assert!(r.options.sack_permitted);
        assert_eq!(
            r.options.timestamps,
            Some(Timestamps {
                tsval: 0x009a5b3c,
                tsecr: 0
            })
        );
        assert_eq!(r.options.window_scale, Some(7));
        assert!(r.options.sack_blocks.is_empty());
        assert!(r.flags.syn() && !r.flags.ack() && !r.flags.fin() && !r.flags.rst());

        // Re-emitting reproduces the capture byte for byte (same layout as Linux).
        assert_eq!(r.header_len(), 40);
        let mut buf = [0u8; 40];
        let mut out = TcpPacket::new_unchecked(&mut buf[..]);
        r.emit(&mut out);
        out.fill_checksum(SRC, DST);
        assert_eq!(buf, SYN);
    }

    #[test]
    fn checksum_and_ports_rejected() {
        let mut bad = SYN;
        bad[30] ^= 0x01;
        let p = TcpPacket::new_checked(&bad[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, SRC, DST, true),
            Err(WireError::BadChecksum)
        );
        assert!(TcpRepr::parse(&p, SRC, DST, false).is_ok());

        for range in [0..2, 2..4] {
            let mut zero = SYN;
            zero[range].fill(0);
            let mut p = TcpPacket::new_unchecked(&mut zero[..]);
            p.fill_checksum(SRC, DST);
            let p = TcpPacket::new_checked(&zero[..]).unwrap();
            assert_eq!(
                TcpRepr::parse(&p, SRC, DST, true),
                Err(WireError::Malformed)
            );
        }
    }

    #[test]
    fn length_checks() {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..19]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            TcpPacket::new_checked(&SYN[..39]),
            Err(WireError::Truncated)
        );
        let mut small = SYN;
        small[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&small[..]),
            Err(WireError::Malformed)
        );
        let unchecked = TcpPacket::new_unchecked(&SYN[..30]);
        assert_eq!(
            TcpRepr::parse(&unchecked, SRC, DST, false),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn payload_split() {
        let mut seg = SYN.to_vec();
        seg.extend_from_slice(b"hello");
        seg[13] = (TcpFlags::ACK | TcpFlags::PSH).0;
        TcpPacket::new_unchecked(&mut seg[..]).fill_checksum(SRC, DST);
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        let (r, payload) = TcpRepr::parse(&p, SRC, DST, true).unwrap();
        assert_eq!(payload, b"hello");
        assert_eq!(p.payload(), b"hello");
        assert!(r.flags.ack() && r.flags.psh());
    }

    #[test]
    fn inconsistent_header_len_does_not_panic() {
        let mut seg = SYN[..24].to_vec();
        seg[12] = 0xf0; // 60-byte header in a 24-byte buffer, set after checking
        let p = TcpPacket::new_unchecked(&seg[..]);
        assert_eq!(p.options().len(), 4);
        assert!(p.payload().is_empty());
        assert_eq!(p.check_len(), Err(WireError::Truncated));
    }

    #[test]
    fn flags_api() {
        let mut f = TcpFlags::SYN | TcpFlags::ACK;
        assert!(f.contains(TcpFlags::SYN));
        assert!(f.contains(TcpFlags::SYN | TcpFlags::ACK));
        assert!(!f.contains(TcpFlags::SYN | TcpFlags::FIN));
        f.insert(TcpFlags::FIN);
        f.remove(TcpFlags::SYN);
        assert!(f.fin() && f.ack() && !f.syn());
        assert_eq!(format!("{f:?}"), "TcpFlags(FIN | ACK)");
        assert_eq!(format!("{:?}", TcpFlags::default()), "TcpFlags(empty)");
        assert_eq!(
            format!("{:?}", TcpFlags(0xff)),
            "TcpFlags(FIN | SYN | RST | PSH | ACK | URG | ECE | CWR)"
        );
        assert_eq!((f & TcpFlags::ACK), TcpFlags::ACK);
        let mut g = TcpFlags::empty();
        g |= TcpFlags::RST;
        assert!(g.rst() && !g.is_empty() && g.bits() == 0x04);
        assert!(TcpFlags(0xe0).urg() && TcpFlags(0xe0).ece() && TcpFlags(0xe0).cwr());
    }

    #[test]
    fn sack_blocks_api() {
        let mut s = SackBlocks::new();
        assert!(s.is_empty());
        for i in 0..4u32 {
            assert!(s.push(SeqNum(i * 10), SeqNum(i * 10 + 5)));
        }
        assert!(!s.push(SeqNum(1), SeqNum(2)));
        assert_eq!(s.len(), 4);
        assert_eq!(s.iter().nth(2), Some((SeqNum(20), SeqNum(25))));
        s.clear();
        assert_eq!(s, SackBlocks::new());
        s.push(SeqNum(7), SeqNum(9));
        let mut t = SackBlocks::new();
        t.push(SeqNum(7), SeqNum(9));
        assert_eq!(s, t);
    }

    #[test]
    fn option_edge_cases() {
        // Empty and all-padding option areas.
        assert_eq!(TcpOptions::parse(&[]), Ok(TcpOptions::default()));
        assert_eq!(TcpOptions::parse(&[1, 1, 1, 1]), Ok(TcpOptions::default()));
        // EOL ends parsing: the garbage after it is never looked at.
        assert_eq!(
            TcpOptions::parse(&[0, 2, 0, 0xff]),
            Ok(TcpOptions::default())
        );
        let o = TcpOptions::parse(&[2, 4, 0x05, 0xb4, 0, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!(o.mss, Some(1460));
        // Zero and one length: would loop forever or overlap the kind byte.
        assert_eq!(
            TcpOptions::parse(&[0xfe, 0, 1, 1]),
            Err(WireError::Malformed)
        );
        assert_eq!(
            TcpOptions::parse(&[0xfe, 1, 1, 1]),
            Err(WireError::Malformed)
        );
        // Length byte missing, and length past the end.
        assert_eq!(TcpOptions::parse(&[1, 1, 1, 2]), Err(WireError::Malformed));
        assert_eq!(TcpOptions::parse(&[2, 4, 0x05]), Err(WireError::Malformed));
        assert_eq!(
            TcpOptions::parse(&[0xfe, 6, 1, 1]),
            Err(WireError::Malformed)
        );
        // Unknown kinds (here TCP Fast Open cookie, 34, and kind 254) skipped.
        let o = TcpOptions::parse(&[34, 6, 1, 2, 3, 4, 254, 2, 3, 3, 9, 1]).unwrap();
        assert_eq!(o.window_scale, Some(9));
        // Known kinds with the wrong length.
        for bad in [
            &[2, 3, 5][..],
            &[2, 5, 5, 0xb4, 0],
            &[3, 2],
            &[3, 4, 7, 0],
            &[4, 3, 0],
            &[8, 8, 0, 0, 0, 0, 0, 0],
            &[5, 2],
            &[5, 9, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(TcpOptions::parse(bad), Err(WireError::Malformed), "{bad:?}");
        }
        // Five SACK blocks cannot be legal (42 bytes).
        let mut five = vec![5u8, 42];
        five.extend_from_slice(&[0; 40]);
        assert_eq!(TcpOptions::parse(&five), Err(WireError::Malformed));
        // Window scale above 14 is clamped.
        assert_eq!(
            TcpOptions::parse(&[3, 3, 15]).unwrap().window_scale,
            Some(14)
        );
    }

    #[test]
    fn sack_option_parse() {
        let bytes = [
            1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 5,
        ];
        let o = TcpOptions::parse(&bytes).unwrap();
        let blocks: Vec<_> = o.sack_blocks.iter().collect();
        assert_eq!(
            blocks,
            vec![(SeqNum(10), SeqNum(20)), (SeqNum(0xffff_fff0), SeqNum(5))]
        );
        let mut out = [0u8; 40];
        assert_eq!(o.emit(&mut out), 20);
        assert_eq!(&out[..20], &bytes[..]);
    }

    #[test]
    fn emit_layouts() {
        let ts = Some(Timestamps { tsval: 1, tsecr: 2 });
        let mut out = [0u8; 40];

        let o = TcpOptions {
            timestamps: ts,
            ..Default::default()
        };
        assert_eq!(o.emit(&mut out), 12);
        assert_eq!(&out[..12], &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);

        let o = TcpOptions {
            sack_permitted: true,
            ..Default::default()
        };
        assert_eq!(o.emit(&mut out), 4);
        assert_eq!(&out[..4], &[1, 1, 4, 2]);

        let o = TcpOptions {
            window_scale: Some(3),
            mss: Some(536),
            ..Default::default()
        };
        assert_eq!(o.emit(&mut out), 8);
        assert_eq!(&out[..8], &[2, 4, 2, 24, 1, 3, 3, 3]);

        assert_eq!(TcpOptions::default().emitted_len(), 0);
        assert_eq!(TcpOptions::default().emit(&mut []), 0);

        // Buffer too short: nothing written.
        let mut short = [0xaau8; 7];
        assert_eq!(o.emit(&mut short), 0);
        assert_eq!(short, [0xaa; 7]);
    }

    #[test]
    fn sack_blocks_trimmed_to_fit() {
        let mut blocks = SackBlocks::new();
        for i in 0..4 {
            blocks.push(SeqNum(i * 100), SeqNum(i * 100 + 50));
        }
        let alone = TcpOptions {
            sack_blocks: blocks,
            ..Default::default()
        };
        assert_eq!(alone.emitted_len(), 36);
        let with_ts = TcpOptions {
            sack_blocks: blocks,
            timestamps: Some(Timestamps::default()),
            ..Default::default()
        };
        assert_eq!(with_ts.emitted_len(), 40);
        let mut out = [0u8; 40];
        assert_eq!(with_ts.emit(&mut out), 40);
        let back = TcpOptions::parse(&out).unwrap();
        assert_eq!(back.sack_blocks.len(), 3);
        assert!(back.sack_blocks.iter().eq(blocks.iter().take(3)));
        let everything = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ..with_ts
        };
        assert_eq!(everything.emitted_len(), 20 + 4 + 2 * 8);
    }

    /// Options as they come back from emit → parse: the SACK blocks that did
    /// not fit are gone. Computed independently of the emit code.
    pub(crate) fn expected_after_emit(o: &TcpOptions) -> TcpOptions {
        let mut used: usize = 0;
        used += if o.mss.is_some() { 4 } else { 0 };
        used += match (o.timestamps.is_some(), o.sack_permitted) {
            (true, _) => 12,
            (false, true) => 4,
            (false, false) => 0,
        };
        used += if o.window_scale.is_some() { 4 } else { 0 };
        let fit = (40 - used).saturating_sub(4) / 8;
        let mut blocks = SackBlocks::new();
        for (l, r) in o.sack_blocks.iter().take(fit) {
            blocks.push(l, r);
        }
        TcpOptions {
            sack_blocks: blocks,
            ..*o
        }
    }

    pub(crate) fn arb_options() -> impl Strategy<Value = TcpOptions> {
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..=14),
            any::<bool>(),
            proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
            proptest::option::of((any::<u32>(), any::<u32>())),
        )
            .prop_map(|(mss, window_scale, sack_permitted, blocks, ts)| {
                let mut sack_blocks = SackBlocks::new();
                for (l, r) in blocks {
                    sack_blocks.push(SeqNum(l), SeqNum(r));
                }
                TcpOptions {
                    mss,
                    window_scale,
                    sack_permitted,
                    sack_blocks,
                    timestamps: ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
                }
            })
    }

    pub(crate) fn arb_repr() -> impl Strategy<Value = TcpRepr> {
        (
            1u16..=u16::MAX,
            1u16..=u16::MAX,
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            arb_options(),
        )
            .prop_map(
                |(src_port, dst_port, seq, ack, flags, window, urgent, options)| TcpRepr {
                    src_port,
                    dst_port,
                    seq: SeqNum(seq),
                    ack: SeqNum(ack),
                    flags: TcpFlags(flags),
                    window,
                    urgent,
                    options,
                },
            )
    }

    proptest! {
        #[test]
        fn options_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            if let Ok(o) = TcpOptions::parse(&bytes) {
                prop_assert!(o.sack_blocks.len() <= SackBlocks::MAX);
                prop_assert!(o.window_scale.unwrap_or(0) <= 14);
            }
        }

        #[test]
        fn options_parse_never_panics_structured(
            items in proptest::collection::vec((0u8..12, 0u8..14, any::<u8>()), 0..12),
        ) {
            // Kind/length pairs drawn from a small range hit the known kinds
            // with right and wrong lengths far more often than random bytes.
            let mut bytes = Vec::new();
            for (k, len, fill) in items {
                bytes.push(k);
                bytes.push(len);
                bytes.resize(bytes.len() + usize::from(len.saturating_sub(2)), fill);
            }
            let _ = TcpOptions::parse(&bytes);
        }

        #[test]
        fn aligned_timestamps_parse_as_any_other_layout(tsval in any::<u32>(), tsecr in any::<u32>()) {
            // The NOP NOP TS shortcut against the general loop (TS NOP NOP).
            let mut ts = vec![8, 10];
            ts.extend_from_slice(&tsval.to_be_bytes());
            ts.extend_from_slice(&tsecr.to_be_bytes());
            let aligned: Vec<u8> = [1, 1].iter().chain(&ts).copied().collect();
            let trailing: Vec<u8> = ts.iter().chain(&[1, 1]).copied().collect();
            let parsed = TcpOptions::parse(&aligned).unwrap();
            prop_assert_eq!(parsed.timestamps, Some(Timestamps { tsval, tsecr }));
            prop_assert_eq!(parsed, TcpOptions::parse(&trailing).unwrap());
        }

        #[test]
        fn options_round_trip(o in arb_options()) {
            let mut buf = [0u8; 40];
            let n = o.emit(&mut buf);
            prop_assert_eq!(n, o.emitted_len());
            prop_assert!(n <= 40 && n % 4 == 0);
            prop_assert_eq!(TcpOptions::parse(&buf[..n]), Ok(expected_after_emit(&o)));
        }

        #[test]
        fn packet_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100), src in any::<u32>(), dst in any::<u32>()) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
                let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags());
                let _ = (p.window_len(), p.checksum(), p.urgent_at(), p.options(), p.payload());
                prop_assert_eq!(p.header_len() + p.payload().len(), bytes.len());
                let _ = p.verify_checksum(src, dst);
                for verify in [false, true] {
                    if let Ok((_, payload)) = TcpRepr::parse(&p, src, dst, verify) {
                        prop_assert_eq!(payload, p.payload());
                    }
                }
            }
            let _ = TcpRepr::parse(&TcpPacket::new_unchecked(&bytes[..]), src, dst, true);
        }

        #[test]
        fn repr_round_trip(r in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let hl = r.header_len();
            let mut buf = vec![0u8; hl + payload.len()];
            buf[hl..].copy_from_slice(&payload);
            let mut p = TcpPacket::new_unchecked(&mut buf[..]);
            r.emit(&mut p);
            p.fill_checksum(SRC, DST);
            let p = TcpPacket::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(SRC, DST));
            let (back, pl) = TcpRepr::parse(&p, SRC, DST, true).unwrap();
            prop_assert_eq!(back, TcpRepr { options: expected_after_emit(&r.options), ..r });
            prop_assert_eq!(pl, &payload[..]);
        }
    }
}
