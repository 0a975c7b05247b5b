//! The built-in applications and the load generator on kernel sockets,
//! for side-by-side comparisons with the fast path: same responses, same
//! client logic, stacks swapped. Epoll through mio, one thread per core,
//! SO_REUSEPORT so the kernel spreads connections over server threads.
//!
//! * [`server`]: the event loop shared by every app; [`handler`]: the
//!   per-app connection contract ([`KernelApp`]); [`apps`]: echo,
//!   discard, source, http; [`edge_read`]: no read that can only return
//!   EAGAIN (as tokio and nginx read).
//! * [`load`]: the load client on kernel sockets.
//! * [`limits`]: RLIMIT_NOFILE (a socket is a descriptor).
pub mod apps;
pub mod edge_read;
pub mod handler;
pub mod limits;
pub mod load;
pub mod server;

pub use handler::{KernelApp, KernelReport, Next};
pub use limits::{raise_nofile_limit, NofileLimit};
pub use load::{KernelLoadError, KernelLoadOptions};
pub use server::{serve, serve_app, KernelAppKind, KernelServerConfig};

/// Closes a stream registered with an epoll instance, without
/// deregistering it first: closing a socket's last descriptor removes it
/// from every epoll interest list (epoll(7), "Will closing a file
/// descriptor cause it to be removed from all epoll interest lists?"),
/// and these streams are never duplicated. nginx closes its connections
/// this way (its epoll module skips `EPOLL_CTL_DEL` for `NGX_CLOSE_EVENT`);
/// deregistering first, as mio advises for portability, costs an
/// `epoll_ctl` per connection that Linux does not need.
pub(crate) fn close_registered(stream: mio::net::TcpStream) {
    drop(stream);
}

/// The core ids to pin threads to: `wanted` in order, or every core; an
/// error names a wanted core this process may not run on.
pub(crate) fn cores_for(wanted: Option<&[usize]>) -> Result<Vec<core_affinity::CoreId>, String> {
    match wanted {
        Some(ids) => crate::affinity::pinnable(ids, &crate::affinity::allowed_cores()),
        None => Ok(core_affinity::get_core_ids().unwrap_or_default()),
    }
}
