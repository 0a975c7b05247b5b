//! AF_XDP I/O: the XDP steering program and its maps ([`SteerProgram`]),
//! and AF_XDP sockets with their UMEM and rings ([`XskSocket`]); plus the
//! raw AF_PACKET socket of the impairment relay ([`PacketSocket`]).
//!
//! This is the only module of the crate with `unsafe` code; every block
//! carries a `// SAFETY:` comment.
//!
//! Bring-up order on an interface (root or CAP_NET_ADMIN + CAP_BPF):
//!
//! 1. [`SteerProgram::attach`] loads `bpf/steer.bpf.c` and attaches it as a
//!    bpf_link, so it goes away with the process (even after `kill -9`).
//! 2. [`XskSocket::open`] per receive queue: a UMEM, the four rings, the
//!    fill ring pre-filled. libxdp's own program load is inhibited.
//! 3. [`SteerProgram::register_socket`] puts each socket into `XSKMAP[queue]`:
//!    from then on owned traffic on that queue reaches the socket.
//! 4. [`SteerProgram::add_port`] for every (address, port) the stack owns.
//!
//! Every queue that can receive owned traffic needs a registered socket;
//! owned frames on a queue without one fall back to the kernel.
pub mod packet;
pub mod program;
pub mod socket;

pub use packet::{wait_readable, PacketSocket, RecvBatch, RecvOutcome};
pub use program::{ifindex, SteerCounters, SteerProgram, XdpMode};
pub use socket::{BindMode, KernelRxDrops, XskConfig, XskSocket, XskStats};

/// What went wrong setting up or driving AF_XDP, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// The kernel refused for lack of privileges.
    #[error(
        "not permitted: {0}; run as root or with CAP_NET_ADMIN and CAP_BPF \
         (plus CAP_NET_RAW for AF_XDP sockets; CAP_SYS_ADMIN before Linux 5.8)"
    )]
    NotPermitted(String),
    /// No network interface of that name (or index) in this network namespace.
    #[error(
        "network interface {0:?} not found in this network namespace; \
         check the name with `ip link show`"
    )]
    InterfaceNotFound(String),
    /// Opening or loading (verifying) the BPF object failed.
    #[error(
        "loading the XDP program failed: {0}; the kernel needs CONFIG_BPF_SYSCALL and \
         CONFIG_XDP_SOCKETS (5.10 or newer)"
    )]
    Load(String),
    /// Attaching the XDP program to the interface failed.
    #[error("attaching the XDP program failed: {0}")]
    Attach(String),
    /// Reading or updating one of the program's maps failed.
    #[error("BPF map operation failed: {0}")]
    Map(String),
    /// Creating, binding or configuring the AF_XDP socket failed.
    #[error("AF_XDP socket: {0}")]
    Socket(String),
    /// The driver does not support zero-copy AF_XDP on this queue.
    /// [`XskSocket::open`] answers it by falling back to copy mode.
    #[error(
        "the driver does not support zero-copy AF_XDP (EOPNOTSUPP); \
         use copy mode (XskConfig::zero_copy = false)"
    )]
    ZeroCopyUnsupported,
}

/// Whether an OS error means "not allowed" (EPERM or EACCES).
fn is_permission_error(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
        || err.kind() == std::io::ErrorKind::PermissionDenied
}
