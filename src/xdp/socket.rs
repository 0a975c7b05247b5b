//! One AF_XDP socket with its own UMEM, on one (interface, queue).
//!
//! UMEM layout: `frame_count` frames of `frame_size` bytes. The first half
//! circulates between the fill ring and the RX ring (pre-filled at open);
//! the second half is for transmit: a free list, then the TX ring, then
//! the completion ring, then the free list again. Frames never move
//! between the halves, so RX can never starve TX or the other way round.
//!
//! Every descriptor vector is allocated once in [`XskSocket::open`]; the
//! per-packet paths (`receive`, `transmit`, `flush`) do not allocate.
//!
//! Copy mode (veth, generic XDP, drivers without zero-copy) transmits only
//! inside a syscall, and each `sendto` sends at most 32 frames (the
//! kernel's `TX_BATCH_SIZE`, returning EAGAIN after it): [`XskSocket::flush`]
//! kicks until the TX ring is drained or the kernel stops making progress.

use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::str::FromStr;
use std::time::{Duration, Instant};

use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use super::{is_permission_error, program, XdpError};
use crate::tcp::Transmit;

/// `XDP_PACKET_HEADROOM`: the kernel reserves this much at the start of
/// every frame, so a frame carries `frame_size - 256` bytes of packet.
const XDP_PACKET_HEADROOM: u32 = 256;

/// How long `open` retries a bind that fails with EBUSY (see
/// `open_retrying`).
const BUSY_RETRY_FOR: Duration = Duration::from_secs(2);

/// Frames the kernel sends per `sendto` in copy mode (`TX_BATCH_SIZE`).
const COPY_MODE_TX_PER_KICK: u32 = 32;

/// Sizes of the UMEM and the rings. Ring sizes must be powers of two.
#[derive(Debug, Clone)]
pub struct XskConfig {
    /// UMEM frames; half for RX, half for TX. Even, at least 2.
    pub frame_count: u32,
    /// Bytes per frame: a power of two from 2048 to the page size (4096).
    /// 256 bytes of each are the kernel's headroom.
    pub frame_size: u32,
    /// RX ring descriptors.
    pub rx_ring: u32,
    /// TX ring descriptors.
    pub tx_ring: u32,
    /// Fill ring descriptors; at least `frame_count / 2`.
    pub fill_ring: u32,
    /// Completion ring descriptors.
    pub comp_ring: u32,
    /// Frames per `receive` call and per `flush` (TX batch).
    pub batch: usize,
    /// Ask for zero-copy; falls back to copy mode where the driver refuses.
    pub zero_copy: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_count: 4096,
            frame_size: 2048,
            rx_ring: 2048,
            tx_ring: 2048,
            fill_ring: 2048,
            comp_ring: 2048,
            batch: 64,
            zero_copy: false,
        }
    }
}

impl XskConfig {
    fn validate(&self) -> Result<(), XdpError> {
        let bad = |msg: String| Err(XdpError::Socket(format!("invalid XskConfig: {msg}")));
        if self.frame_count < 2 || self.frame_count % 2 != 0 {
            return bad(format!(
                "frame_count {} must be even and at least 2",
                self.frame_count
            ));
        }
        if !self.frame_size.is_power_of_two() || !(2048..=4096).contains(&self.frame_size) {
            return bad(format!(
                "frame_size {} must be a power of two from 2048 to 4096",
                self.frame_size
            ));
        }
        for (name, size) in [
            ("rx_ring", self.rx_ring),
            ("tx_ring", self.tx_ring),
            ("fill_ring", self.fill_ring),
            ("comp_ring", self.comp_ring),
        ] {
            if !size.is_power_of_two() {
                return bad(format!("{name} {size} must be a power of two"));
            }
        }
        if self.fill_ring < self.frame_count / 2 {
            return bad(format!(
                "fill_ring {} must hold the {} RX frames (frame_count / 2)",
                self.fill_ring,
                self.frame_count / 2
            ));
        }
        if self.batch == 0 {
            return bad("batch must be at least 1".to_string());
        }
        Ok(())
    }
}

/// The mode the socket is bound in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// The kernel copies frames between the driver and the UMEM.
    Copy,
    /// The NIC DMAs straight into the UMEM.
    ZeroCopy,
}

/// Counters of one socket.
#[derive(Debug, Default, Clone, Copy)]
pub struct XskStats {
    /// Frames consumed from the RX ring.
    pub rx_frames: u64,
    /// Frames placed on the TX ring.
    pub tx_frames: u64,
    /// Flushes that found the TX ring full (frames stayed queued).
    pub tx_ring_full: u64,
    /// Wake-up syscalls (`sendto`) made for transmit.
    pub kicks: u64,
    /// Frames the kernel dropped for this socket, by cause (all 0 when
    /// the kernel cannot report them, and in [`XskSocket::counters`]).
    pub kernel_drops: KernelRxDrops,
}

/// The kernel's receive drop counters of one AF_XDP socket
/// (`getsockopt(XDP_STATISTICS)` with the extended struct, Linux 5.9+),
/// split by what the owner can do about them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KernelRxDrops {
    /// Frames dropped because the RX ring was full: the thread that owns
    /// the socket did not drain it in time, or a burst exceeded the ring.
    pub rx_ring_full: u64,
    /// Frames dropped for other reasons: in copy mode, no free frame on
    /// the fill ring to copy into (also counted in `fill_ring_empty`);
    /// a frame larger than a UMEM frame.
    pub rx_dropped: u64,
    /// Times the kernel found the fill ring empty: in copy mode one per
    /// frame dropped for it; zero-copy drivers count failed refills.
    pub fill_ring_empty: u64,
}

impl KernelRxDrops {
    /// Every frame dropped, whatever the cause (`fill_ring_empty` is
    /// not added: its copy-mode drops are in `rx_dropped` already).
    pub fn total(&self) -> u64 {
        self.rx_ring_full.saturating_add(self.rx_dropped)
    }
}

/// An AF_XDP socket on one (interface, queue) with its own UMEM.
///
/// `Send`: every part (xsk-rs rings, UMEM handle, descriptor vectors) is
/// `Send`, so it moves to the worker thread that owns it; it is not `Sync`
/// and is driven by that one thread.
#[derive(Debug)]
pub struct XskSocket {
    rx: RxQueue,
    tx: TxQueue,
    fill: FillQueue,
    comp: CompQueue,
    umem: Umem,
    mode: BindMode,
    batch: usize,
    /// Packet bytes a frame holds (`frame_size - XDP_PACKET_HEADROOM`).
    frame_capacity: usize,
    tx_ring_size: u32,
    /// Scratch for descriptors read from the RX ring (`batch` long).
    rx_descs: Vec<FrameDesc>,
    /// RX frames the fill ring had no room for (never in practice, as the
    /// fill ring holds every RX frame); handed back first on the next call.
    rx_spare: Vec<FrameDesc>,
    /// Scratch for descriptors read from the completion ring.
    comp_descs: Vec<FrameDesc>,
    /// TX frames owned by userspace and free to write.
    free: Vec<FrameDesc>,
    /// Written TX frames waiting for the next flush.
    pending: Vec<FrameDesc>,
    stats: XskStats,
}

impl XskSocket {
    /// Opens an AF_XDP socket on (ifname, queue), libxdp program load
    /// inhibited, fill ring pre-filled.
    ///
    /// With zero_copy requested and refused by the driver: falls back to
    /// copy mode and logs one clear line (eprintln) saying so; returns the
    /// mode used.
    ///
    /// The socket receives nothing until its fd is put into the steering
    /// program's XSKMAP ([`super::SteerProgram::register_socket`]).
    pub fn open(
        ifname: &str,
        queue: u32,
        config: &XskConfig,
    ) -> Result<(XskSocket, BindMode), XdpError> {
        config.validate()?;
        // A clean "not found" before libxdp turns it into something vaguer.
        program::ifindex(ifname)?;
        if config.zero_copy {
            match Self::open_retrying(ifname, queue, config, BindMode::ZeroCopy) {
                Ok(socket) => return Ok((socket, BindMode::ZeroCopy)),
                Err(XdpError::ZeroCopyUnsupported) => eprintln!(
                    "xdp-tcp: {ifname} queue {queue}: the driver does not support zero-copy \
                     AF_XDP; falling back to copy mode"
                ),
                Err(err) => return Err(err),
            }
        }
        let socket = Self::open_retrying(ifname, queue, config, BindMode::Copy)?;
        Ok((socket, BindMode::Copy))
    }

    /// The kernel unbinds a closed AF_XDP socket from its queue only after
    /// an RCU grace period and a workqueue pass, so binding the same queue
    /// right after closing a socket on it (a restart, a test) can fail with
    /// EBUSY for a few milliseconds. Retry for a bounded time.
    fn open_retrying(
        ifname: &str,
        queue: u32,
        config: &XskConfig,
        mode: BindMode,
    ) -> Result<XskSocket, XdpError> {
        let deadline = Instant::now() + BUSY_RETRY_FOR;
        let mut pause = Duration::from_millis(1);
        loop {
            match Self::open_in(ifname, queue, config, mode) {
                Ok(socket) => return Ok(socket),
                Err(failure) if failure.errno == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    fn open_in(
        ifname: &str,
        queue: u32,
        config: &XskConfig,
        mode: BindMode,
    ) -> Result<XskSocket, OpenFailure> {
        let config_error = |e: &dyn std::fmt::Display| XdpError::Socket(format!("{e}"));
        let umem_config = UmemConfig::builder()
            .frame_size(FrameSize::new(config.frame_size).map_err(|e| config_error(&e))?)
            .fill_queue_size(QueueSize::new(config.fill_ring).map_err(|e| config_error(&e))?)
            .comp_queue_size(QueueSize::new(config.comp_ring).map_err(|e| config_error(&e))?)
            .frame_headroom(0)
            .build()
            .map_err(|e| config_error(&e))?;
        let frame_count = NonZeroU32::new(config.frame_count)
            .ok_or_else(|| XdpError::Socket("frame_count must not be 0".to_string()))?;
        let (umem, mut frames) = Umem::new(umem_config, frame_count, false).map_err(|e| {
            let io = source_io_error(&e);
            umem_error(&e, io)
        })?;

        let mode_flag = match mode {
            BindMode::Copy => BindFlags::XDP_COPY,
            BindMode::ZeroCopy => BindFlags::XDP_ZEROCOPY,
        };
        let socket_config = SocketConfig::builder()
            .rx_queue_size(QueueSize::new(config.rx_ring).map_err(|e| config_error(&e))?)
            .tx_queue_size(QueueSize::new(config.tx_ring).map_err(|e| config_error(&e))?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(mode_flag | BindFlags::XDP_USE_NEED_WAKEUP)
            .build();
        let interface = Interface::from_str(ifname)
            .map_err(|_| XdpError::InterfaceNotFound(ifname.to_string()))?;

        // SAFETY: the UMEM was created just above and is not shared with
        // any other socket, so the shared-UMEM double-free hazard of
        // `Socket::new` cannot arise; XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD is
        // set all the same.
        let created = unsafe { Socket::new(socket_config, &umem, &interface, queue) };
        let (tx, rx, rings) = created.map_err(|e| {
            let io = source_io_error(&e);
            OpenFailure {
                error: bind_error(&e, io, ifname, queue, mode),
                errno: io.and_then(io::Error::raw_os_error),
            }
        })?;
        let (mut fill, comp) = rings.ok_or_else(|| {
            XdpError::Socket(format!(
                "{ifname} queue {queue}: libxdp returned no fill/completion rings for a new UMEM"
            ))
        })?;

        let half = frames.len() / 2;
        let tx_frames = frames.split_off(half);
        let rx_frames = frames;
        // SAFETY: the RX frames come from this socket's UMEM and are handed
        // to the kernel here and nowhere else; we keep no copy of them (the
        // vector is dropped below) until the RX ring returns them.
        let filled = unsafe { fill.produce(&rx_frames) };
        if filled != rx_frames.len() {
            return Err(XdpError::Socket(format!(
                "{ifname} queue {queue}: pre-filling the fill ring took {filled} of {} frames",
                rx_frames.len()
            ))
            .into());
        }

        let tx_count = tx_frames.len();
        Ok(XskSocket {
            rx,
            tx,
            fill,
            comp,
            umem,
            mode,
            batch: config.batch,
            frame_capacity: (config.frame_size - XDP_PACKET_HEADROOM) as usize,
            tx_ring_size: config.tx_ring,
            rx_descs: vec![FrameDesc::default(); config.batch],
            rx_spare: Vec::with_capacity(half),
            comp_descs: vec![FrameDesc::default(); tx_count],
            // Every TX frame starts free; the capacity never needs to grow.
            free: tx_frames,
            pending: Vec::with_capacity(config.batch),
            stats: XskStats::default(),
        })
    }

    /// The socket's file descriptor (for the XSKMAP and for polling).
    pub fn fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// Consumes up to `batch` received frames, calling `f` with each
    /// frame's bytes, then returns the frames to the fill ring. Returns the
    /// number of frames.
    pub fn receive(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        self.refill_spare();
        // SAFETY: `rx_descs` are scratch descriptors of this socket; the RX
        // ring only ever carries frames of this socket's UMEM.
        let n = unsafe { self.rx.consume(&mut self.rx_descs) };
        if n == 0 {
            return 0;
        }
        for desc in &self.rx_descs[..n] {
            // SAFETY: `desc` was just taken from this UMEM's RX ring, so it
            // lies inside the UMEM and the kernel has handed the frame to
            // us: nothing writes it until it goes back on the fill ring
            // below, after `f` has returned and the borrow has ended.
            let data = unsafe { self.umem.data(desc) };
            f(data.contents());
        }
        // SAFETY: these frames belong to this UMEM, were just released by
        // the RX ring and are referenced nowhere else any more.
        let refilled = unsafe { self.fill.produce(&self.rx_descs[..n]) };
        if refilled < n {
            self.rx_spare.extend_from_slice(&self.rx_descs[refilled..n]);
        }
        self.wake_fill_ring();
        self.stats.rx_frames += n as u64;
        n
    }

    /// Submits the frames produced through `Transmit` since the last flush
    /// to the TX ring and kicks (sendto) — always in copy mode, when the
    /// ring needs wakeup otherwise. Also reclaims completed TX frames into
    /// the free list.
    ///
    /// Frames the TX ring has no room for stay queued for the next flush
    /// (counted in `tx_ring_full`).
    pub fn flush(&mut self) {
        let mut produced = 0;
        if !self.pending.is_empty() {
            // SAFETY: pending frames belong to this UMEM, were written by
            // `transmit` and are referenced nowhere else; from here the
            // kernel owns them until the completion ring returns them.
            produced = unsafe { self.tx.produce(&self.pending) };
            self.pending.drain(..produced);
            if !self.pending.is_empty() {
                self.stats.tx_ring_full += 1;
            }
            self.stats.tx_frames += produced as u64;
        }
        match self.mode {
            BindMode::Copy => self.kick_copy_mode(),
            BindMode::ZeroCopy => {
                if (produced > 0 || self.tx_in_ring() > 0) && self.tx.needs_wakeup() {
                    self.kick();
                }
            }
        }
        self.reclaim();
    }

    /// Blocks until a frame is readable or `timeout` passes (poll(2) on
    /// the fd). Returns early on a signal.
    pub fn wait_readable(&self, timeout: Duration) {
        self.wait_readable_or(timeout, None)
    }

    /// As [`wait_readable`](Self::wait_readable), and also returns when
    /// `wake` (a worker's doorbell descriptor) becomes readable.
    pub fn wait_readable_or(&self, timeout: Duration, wake: Option<RawFd>) {
        let ms = timeout.as_nanos().div_ceil(1_000_000);
        let ms = libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX);
        let pollfd = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // A negative descriptor is ignored by poll(2): one array serves
        // both cases.
        let mut pfds = [pollfd(self.fd()), pollfd(wake.unwrap_or(-1))];
        // SAFETY: `pfds` is an array of two valid pollfds that outlives
        // the call, and the count passed is its length; poll only writes
        // their `revents`.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    }

    /// The socket's own counters, without asking the kernel (no system
    /// call; `kernel_drops` are 0): cheap enough for any thread that owns it.
    pub fn counters(&self) -> XskStats {
        self.stats
    }

    /// The socket's counters, with the kernel's drop counters.
    pub fn stats(&self) -> XskStats {
        let mut stats = self.stats;
        if let Ok(kernel) = self.rx.fd().xdp_statistics() {
            // With the extended struct the kernel reports a full RX ring
            // only in `rx_ring_full`, not also in `rx_dropped`
            // (net/xdp/xsk.c, xsk_getsockopt).
            stats.kernel_drops = KernelRxDrops {
                rx_ring_full: kernel.rx_ring_full(),
                rx_dropped: kernel.rx_dropped(),
                fill_ring_empty: kernel.rx_fill_ring_empty_descs(),
            };
        }
        stats
    }

    /// The mode the socket is bound in.
    pub fn mode(&self) -> BindMode {
        self.mode
    }

    /// Copy mode: the kernel sends only inside `sendto`, at most 32 frames
    /// each, so kick until the TX ring is empty or a kick makes no progress
    /// (device busy; the next flush tries again).
    fn kick_copy_mode(&mut self) {
        let mut outstanding = self.tx_in_ring();
        let max_kicks = outstanding / COPY_MODE_TX_PER_KICK + 2;
        let mut kicks = 0;
        while outstanding > 0 && kicks < max_kicks {
            if !self.kick() {
                break;
            }
            kicks += 1;
            let now = self.tx_in_ring();
            if now >= outstanding {
                break;
            }
            outstanding = now;
        }
    }

    /// One `sendto` wake-up. False on an error other than the transient
    /// ones (ENOBUFS, EAGAIN, EBUSY, ENETDOWN), which xsk-rs swallows.
    fn kick(&mut self) -> bool {
        self.stats.kicks += 1;
        self.tx.wakeup().is_ok()
    }

    /// Descriptors on the TX ring the kernel has not consumed yet.
    fn tx_in_ring(&mut self) -> u32 {
        self.tx_ring_size - self.tx.nb_free_exact()
    }

    /// Moves completed TX frames to the free list.
    fn reclaim(&mut self) -> usize {
        // SAFETY: `comp_descs` are scratch descriptors; the completion ring
        // only returns frames of this UMEM that we submitted to the TX ring.
        let n = unsafe { self.comp.consume(&mut self.comp_descs) };
        // Never reallocates: at most every TX frame is free at once.
        self.free.extend_from_slice(&self.comp_descs[..n]);
        n
    }

    fn refill_spare(&mut self) {
        if self.rx_spare.is_empty() {
            return;
        }
        // SAFETY: spare frames belong to this UMEM and are referenced
        // nowhere else.
        let n = unsafe { self.fill.produce(&self.rx_spare) };
        self.rx_spare.drain(..n);
    }

    /// Zero-copy drivers may sleep when the fill ring ran dry; a poll wakes
    /// them. Copy mode never needs it.
    fn wake_fill_ring(&mut self) {
        if self.mode == BindMode::ZeroCopy && self.fill.needs_wakeup() {
            // Errors are transient here (EINTR); the next receive retries.
            let _ = self.fill.wakeup(self.rx.fd_mut(), 0);
        }
    }
}

impl Transmit for XskSocket {
    /// Takes a free UMEM frame (reclaiming completions first if none are
    /// free), lets `fill` write the frame into it and queues it for the next
    /// [`XskSocket::flush`]. False, without calling `fill`, when no frame is
    /// free, `batch` frames are already queued, or `len` exceeds a frame's
    /// capacity. A frame `fill` reports as 0 bytes long is not sent.
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        if len > self.frame_capacity || self.pending.len() >= self.batch {
            return false;
        }
        if self.free.is_empty() {
            self.reclaim();
        }
        let Some(mut desc) = self.free.pop() else {
            return false;
        };
        let written = {
            // SAFETY: `desc` is a TX frame of this UMEM taken off the free
            // list, so neither the kernel (not on the TX or completion
            // ring) nor any other reference touches it while we write.
            let mut data = unsafe { self.umem.data_mut(&mut desc) };
            data.cursor().set_pos(len);
            let written = fill(data.contents_mut()).min(len);
            data.cursor().set_pos(written);
            written
        };
        if written == 0 {
            self.free.push(desc);
        } else {
            self.pending.push(desc);
        }
        true
    }
}

/// Why `open_in` failed, with the bind errno for the EBUSY retry.
struct OpenFailure {
    error: XdpError,
    errno: Option<i32>,
}

impl From<XdpError> for OpenFailure {
    fn from(error: XdpError) -> Self {
        OpenFailure { error, errno: None }
    }
}

/// The `io::Error` an xsk-rs error wraps, if any.
fn source_io_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    err.source().and_then(|s| s.downcast_ref::<io::Error>())
}

fn umem_error(err: &dyn std::fmt::Display, io: Option<&io::Error>) -> XdpError {
    match io {
        Some(io) if is_permission_error(io) => {
            XdpError::NotPermitted(format!("creating the UMEM: {err}: {io}"))
        }
        Some(io) if io.raw_os_error() == Some(libc::ENOMEM) => XdpError::Socket(format!(
            "creating the UMEM: {err}: {io}; raise the locked-memory limit (ulimit -l) \
             or shrink frame_count"
        )),
        Some(io) if io.raw_os_error() == Some(libc::EAFNOSUPPORT) => XdpError::Socket(format!(
            "creating the UMEM: {err}: {io}; the kernel lacks CONFIG_XDP_SOCKETS"
        )),
        Some(io) => XdpError::Socket(format!("creating the UMEM: {err}: {io}")),
        None => XdpError::Socket(format!("creating the UMEM: {err}")),
    }
}

fn bind_error(
    err: &dyn std::fmt::Display,
    io: Option<&io::Error>,
    ifname: &str,
    queue: u32,
    mode: BindMode,
) -> XdpError {
    let Some(io) = io else {
        return XdpError::Socket(format!("{ifname} queue {queue}: {err}"));
    };
    if is_permission_error(io) {
        return XdpError::NotPermitted(format!("binding AF_XDP to {ifname} queue {queue}: {io}"));
    }
    match io.raw_os_error() {
        Some(libc::EOPNOTSUPP) if mode == BindMode::ZeroCopy => XdpError::ZeroCopyUnsupported,
        Some(libc::ENODEV) => XdpError::InterfaceNotFound(ifname.to_string()),
        Some(libc::EBUSY) => XdpError::Socket(format!(
            "{ifname} queue {queue} is busy ({io}): another AF_XDP socket is bound to it"
        )),
        Some(libc::EINVAL) => XdpError::Socket(format!(
            "binding to {ifname} queue {queue} failed ({io}): does the queue exist? \
             (`ethtool -l {ifname}`; for veth create it with numrxqueues/numtxqueues)"
        )),
        _ => XdpError::Socket(format!("binding to {ifname} queue {queue}: {err}: {io}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_can_move_to_a_worker_thread() {
        fn is_send<T: Send>() {}
        is_send::<XskSocket>();
    }

    #[test]
    fn default_config_is_valid() {
        XskConfig::default().validate().unwrap();
    }

    #[test]
    fn config_validation_explains_the_problem() {
        let cases = [
            XskConfig {
                frame_count: 3,
                ..XskConfig::default()
            },
            XskConfig {
                frame_size: 3000,
                ..XskConfig::default()
            },
            XskConfig {
                rx_ring: 1000,
                ..XskConfig::default()
            },
            XskConfig {
                fill_ring: 1024,
                ..XskConfig::default()
            },
            XskConfig {
                batch: 0,
                ..XskConfig::default()
            },
        ];
        for config in cases {
            match config.validate() {
                Err(XdpError::Socket(msg)) => assert!(msg.starts_with("invalid XskConfig")),
                other => panic!("{config:?}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn open_reports_a_missing_interface() {
        match XskSocket::open("no-such-if0", 0, &XskConfig::default()) {
            Err(XdpError::InterfaceNotFound(name)) => assert_eq!(name, "no-such-if0"),
            other => panic!("unexpected {:?}", other.map(|(_, m)| m)),
        }
    }
}
