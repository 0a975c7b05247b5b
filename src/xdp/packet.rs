//! A raw AF_PACKET socket on one interface, for the impairment relay
//! (`xdp-tcp impair`): whole Ethernet frames in and out, in batches
//! (`recvmmsg`/`sendmmsg`), with a safe interface over the few system
//! calls that need `unsafe`.
//!
//! The socket sees every frame the interface receives (`ETH_P_ALL`, the
//! interface in promiscuous mode for as long as the socket lives) but not
//! what the host transmits on it: `PACKET_IGNORE_OUTGOING` where the
//! kernel has it (Linux 4.20), and in any case frames whose
//! `sll_pkttype` is `PACKET_OUTGOING` are skipped, so a relay never reads
//! back what it wrote.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::program;

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// `sll_pkttype` of a frame this host sent (`<linux/if_packet.h>`).
const PACKET_OUTGOING: u8 = 4;
/// Socket options of `SOL_PACKET` (`<linux/if_packet.h>`).
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_MR_PROMISC: libc::c_ushort = 1;

/// Most frames one `recv_batch` or `send_batch` system call moves.
pub const MAX_BATCH: usize = 64;

/// `struct packet_mreq`.
#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

/// `struct tpacket_stats`.
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    tp_packets: libc::c_uint,
    tp_drops: libc::c_uint,
}

/// One interface's raw frames.
#[derive(Debug)]
pub struct PacketSocket {
    socket: Socket,
    ifindex: u32,
    /// Whether the kernel filters our own transmissions for us.
    ignores_outgoing: bool,
}

/// Frames received by one [`PacketSocket::recv_batch`]: fixed buffers
/// allocated once, reused on every call.
#[derive(Debug)]
pub struct RecvBatch {
    data: Vec<u8>,
    slot_size: usize,
    /// (slot, length) of every accepted frame of the last call.
    frames: Vec<(usize, usize)>,
}

/// What one [`PacketSocket::recv_batch`] call did besides accepting frames.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecvOutcome {
    /// Frames accepted into the batch.
    pub frames: usize,
    /// Frames longer than a slot (GRO on, or an MTU above the slot size):
    /// dropped.
    pub oversize: u64,
    /// Frames this host transmitted, seen despite `PACKET_IGNORE_OUTGOING`:
    /// skipped.
    pub outgoing: u64,
}

impl RecvBatch {
    /// Room for `count` frames (at most [`MAX_BATCH`]) of up to
    /// `slot_size` bytes each.
    pub fn new(count: usize, slot_size: usize) -> RecvBatch {
        let count = count.clamp(1, MAX_BATCH);
        RecvBatch {
            data: vec![0; count * slot_size],
            slot_size,
            frames: Vec::with_capacity(count),
        }
    }

    fn slots(&self) -> usize {
        self.data.len() / self.slot_size
    }

    /// The frames of the last call, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.frames
            .iter()
            .map(|&(slot, len)| &self.data[slot * self.slot_size..][..len])
    }
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// `setsockopt` of a plain-old-data value.
fn set_option<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised `T` of exactly the
    // length passed; the kernel only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

impl PacketSocket {
    /// A raw socket bound to interface `iface` (root or CAP_NET_RAW), with
    /// the interface in promiscuous mode while the socket is open and a
    /// receive buffer of `rcvbuf` bytes (forced past `rmem_max` when
    /// privileged).
    pub fn open(iface: &str, rcvbuf: usize) -> io::Result<PacketSocket> {
        let ifindex = program::ifindex(iface)
            .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))?;
        let proto = Protocol::from(i32::from(ETH_P_ALL.to_be()));
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(proto))?;
        socket.set_nonblocking(true)?;

        // Bind before anything else, so frames of other interfaces never
        // queue on the socket.
        // SAFETY: an all-zero `sockaddr_ll` is a valid value of this plain C
        // struct.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: `addr` is a live, initialised sockaddr_ll and the length
        // passed is its size; the kernel only reads it during the call.
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(last_error());
        }

        let fd = socket.as_fd();
        let ignores_outgoing = set_option(
            fd,
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            &1 as &libc::c_int,
        )
        .is_ok();
        let mreq = PacketMreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: PACKET_MR_PROMISC,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        set_option(fd, libc::SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)?;
        let size = libc::c_int::try_from(rcvbuf).unwrap_or(libc::c_int::MAX);
        if set_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
            socket.set_recv_buffer_size(rcvbuf)?;
        }
        let sock = PacketSocket {
            socket,
            ifindex,
            ignores_outgoing,
        };
        // Frames queued between socket() and bind() may be of any
        // interface: discard them, and their statistics.
        let mut scratch = RecvBatch::new(MAX_BATCH, 64);
        for _ in 0..64 {
            let o = sock.recv_batch(&mut scratch)?;
            if o.frames == 0 && o.oversize == 0 && o.outgoing == 0 {
                break;
            }
        }
        let _ = sock.take_drops();
        Ok(sock)
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether the kernel filters this host's transmissions
    /// (`PACKET_IGNORE_OUTGOING`); if not, [`Self::recv_batch`] does.
    pub fn ignores_outgoing(&self) -> bool {
        self.ignores_outgoing
    }

    /// Receives the frames waiting (up to the batch's size) without
    /// blocking; `frames == 0` when none is waiting.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<RecvOutcome> {
        batch.frames.clear();
        let count = batch.slots();
        let slot_size = batch.slot_size;
        let base = batch.data.as_mut_ptr();
        // SAFETY: all-zero iovec, sockaddr_ll and mmsghdr are valid values
        // of these plain C structs (null pointers, zero lengths).
        let mut iov: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
        let mut names: [libc::sockaddr_ll; MAX_BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
        for i in 0..count {
            // SAFETY: slot i lies inside `batch.data` (count·slot_size bytes).
            iov[i].iov_base = unsafe { base.add(i * slot_size) }.cast();
            iov[i].iov_len = slot_size;
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_ll).cast();
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        }
        // SAFETY: `msgs[..count]` point to iovecs and names that live on
        // this stack frame, and the iovecs to disjoint slots of
        // `batch.data`, which is borrowed mutably for the whole call; the
        // kernel writes at most `iov_len`/`msg_namelen` bytes into each.
        // MSG_TRUNC makes `msg_len` the frame's real length.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        let mut outcome = RecvOutcome::default();
        if n < 0 {
            let err = last_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(outcome),
                _ => Err(err),
            };
        }
        for (i, (msg, name)) in msgs.iter().zip(&names).take(n as usize).enumerate() {
            let len = msg.msg_len as usize;
            if name.sll_pkttype == PACKET_OUTGOING {
                outcome.outgoing += 1;
            } else if len > slot_size || msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                outcome.oversize += 1;
            } else {
                batch.frames.push((i, len));
            }
        }
        outcome.frames = batch.frames.len();
        Ok(outcome)
    }

    /// Sends `frames` (each a whole Ethernet frame) on the interface, up to
    /// [`MAX_BATCH`] per system call. Returns how many the kernel took; a
    /// frame it refuses (e.g. the interface is down) is skipped and
    /// counted in the second value.
    pub fn send_batch<F: AsRef<[u8]>>(&self, frames: &[F]) -> (usize, u64) {
        let mut sent = 0;
        let mut failed = 0u64;
        let mut rest = frames;
        while !rest.is_empty() {
            let count = rest.len().min(MAX_BATCH);
            // SAFETY: all-zero iovec and mmsghdr are valid values of these
            // plain C structs.
            let mut iov: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
            let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
            for (i, frame) in rest[..count].iter().enumerate() {
                let frame = frame.as_ref();
                // The kernel only reads through this pointer (sendmmsg).
                iov[i].iov_base = frame.as_ptr() as *mut libc::c_void;
                iov[i].iov_len = frame.len();
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: `msgs[..count]` point to iovecs on this stack frame
            // that describe the borrowed `frames`, all alive for the call;
            // sendmmsg only reads them. No address: the socket is bound.
            let n = unsafe {
                libc::sendmmsg(
                    self.socket.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    count as libc::c_uint,
                    0,
                )
            };
            if n > 0 {
                sent += n as usize;
                rest = &rest[n as usize..];
                continue;
            }
            let err = last_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if err.kind() == io::ErrorKind::WouldBlock {
                // The socket's send buffer is full: wait for room.
                let _ = wait_writable(self, Duration::from_millis(10));
                continue;
            }
            // The first frame was refused: skip it, keep the rest.
            failed += 1;
            rest = &rest[1..];
        }
        (sent, failed)
    }

    /// Frames the kernel dropped because the socket's receive buffer was
    /// full, since the last call (`PACKET_STATISTICS`, which resets).
    pub fn take_drops(&self) -> io::Result<u64> {
        let mut stats = TpacketStats::default();
        let mut len = size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: `stats` and `len` are live and writable; the kernel writes
        // at most `len` bytes into `stats` and the actual length into `len`.
        let rc = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                (&mut stats as *mut TpacketStats).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            Ok(u64::from(stats.tp_drops))
        } else {
            Err(last_error())
        }
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

fn poll_fds(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `fds` is a live, writable array of `fds.len()` pollfds and
    // `ts` a live timespec; no signal mask is passed.
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let err = last_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// Sleeps until one of `sockets` has a frame to read or `timeout` passes
/// (µs resolution; a signal ends the wait early too). Returns which are
/// readable, in order (at most four sockets).
pub fn wait_readable(sockets: &[&PacketSocket], timeout: Duration) -> io::Result<[bool; 4]> {
    assert!(
        sockets.len() <= 4,
        "wait_readable takes at most four sockets"
    );
    let mut fds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 4];
    for (pfd, s) in fds.iter_mut().zip(sockets) {
        pfd.fd = s.as_fd().as_raw_fd();
        pfd.events = libc::POLLIN;
    }
    poll_fds(&mut fds[..sockets.len()], timeout)?;
    let mut ready = [false; 4];
    for (r, pfd) in ready.iter_mut().zip(&fds) {
        *r = pfd.revents & libc::POLLIN != 0;
    }
    Ok(ready)
}

fn wait_writable(socket: &PacketSocket, timeout: Duration) -> io::Result<()> {
    let mut fds = [libc::pollfd {
        fd: socket.as_fd().as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    }];
    poll_fds(&mut fds, timeout)
}
