//! The XDP steering program (`bpf/steer.bpf.c`) and its maps.
//!
//! The program is attached as a bpf_link (`BPF_LINK_CREATE`), never through
//! netlink: the link belongs to this process's file descriptor, so the
//! program leaves the interface when the [`SteerProgram`] is dropped *and*
//! when the process dies in any way (a `kill -9` included). A netlink
//! attach would outlive the process and make the next start fail with
//! EBUSY.

use std::ffi::{CStr, CString};
use std::fmt;
use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

use super::{is_permission_error, XdpError};

/// The skeleton libbpf-cargo generates from `bpf/steer.bpf.c` (build.rs).
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    unreachable_pub,
    unused_qualifications
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/steer.skel.rs"));
}

use skel::{SteerSkel, SteerSkelBuilder};

/// Indices of the `counters` per-CPU array (see `bpf/steer.bpf.c`).
const COUNTER_REDIRECTED: u32 = 0;
const COUNTER_PASSED: u32 = 1;
const COUNTER_MALFORMED: u32 = 2;

/// How the XDP program runs on the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver, before an skb exists (`XDP_FLAGS_DRV_MODE`). Fails
    /// when the driver has no XDP support. veth supports it.
    Native,
    /// After the skb is built (`XDP_FLAGS_SKB_MODE`): works on any
    /// interface, slower. AF_XDP sockets are then always in copy mode.
    Generic,
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            XdpMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
        }
    }
}

/// The program's packet counters, summed over all CPUs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SteerCounters {
    /// Frames handed to an AF_XDP socket.
    pub redirected: u64,
    /// Frames left to the kernel: not IPv4/TCP, not an owned
    /// (address, port), a fragment, or no socket on the receive queue.
    pub passed: u64,
    /// Frames with truncated or invalid Ethernet/IPv4/TCP headers (also
    /// passed to the kernel, which drops them).
    pub malformed: u64,
}

/// The heap slot the skeleton's object lives in.
///
/// libbpf-rs skeletons borrow their object storage (`&'obj mut
/// MaybeUninit<OpenObject>`). To keep the skeleton and its storage in one
/// owned value, the storage is a leaked `Box` turned back into one here
/// on drop, after the skeleton that borrowed it is gone (field order in
/// [`SteerProgram`]).
struct ObjectStorage(NonNull<MaybeUninit<OpenObject>>);

impl ObjectStorage {
    fn new() -> Self {
        let boxed = Box::new(MaybeUninit::<OpenObject>::uninit());
        ObjectStorage(NonNull::from(Box::leak(boxed)))
    }

    /// The storage as the `'static` borrow the skeleton builder wants.
    ///
    /// # Safety
    ///
    /// Call at most once, and drop everything holding the returned
    /// reference before this `ObjectStorage`.
    unsafe fn borrow_static(&mut self) -> &'static mut MaybeUninit<OpenObject> {
        // SAFETY: the pointer came from `Box::leak`, so it is valid, aligned
        // and lives until `drop` below; the caller guarantees this is the
        // only reference and that it is gone before `drop` runs.
        unsafe { self.0.as_mut() }
    }
}

impl Drop for ObjectStorage {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is freed
        // only here; every borrow handed out by `borrow_static` is gone
        // (its holder was dropped first). `MaybeUninit` has no drop glue, so
        // whatever state the skeleton left the slot in, freeing is sound.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

// SAFETY: `ObjectStorage` owns a heap allocation exactly like a `Box` and
// never reads or writes it itself (only frees it on drop), so moving it to
// another thread or sharing it is as safe as for `Box<MaybeUninit<_>>`;
// `OpenObject` is itself `Send + Sync`.
unsafe impl Send for ObjectStorage {}
// SAFETY: see above: no access through `&ObjectStorage` exists.
unsafe impl Sync for ObjectStorage {}

/// The loaded and attached steering program.
///
/// Dropping it detaches the program (closes the bpf_link) and unloads it;
/// sockets registered in its XSKMAP stop receiving.
pub struct SteerProgram {
    // Drop order matters: the link goes first (detach), then the skeleton
    // (unload, closes the map fds), then the storage it borrowed.
    link: OwnedFd,
    skel: SteerSkel<'static>,
    _storage: ObjectStorage,
    ifindex: u32,
    mode: XdpMode,
}

impl fmt::Debug for SteerProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SteerProgram")
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .field("link_fd", &self.link.as_raw_fd())
            .finish()
    }
}

impl SteerProgram {
    /// Loads bpf/steer.bpf.c's object and attaches it to `ifindex` as a
    /// bpf_link in `mode`.
    pub fn attach(ifindex: u32, mode: XdpMode) -> Result<SteerProgram, XdpError> {
        let name = interface_name(ifindex)
            .ok_or_else(|| XdpError::InterfaceNotFound(format!("ifindex {ifindex}")))?;

        let mut storage = ObjectStorage::new();
        // SAFETY: the only borrow of `storage`; the skeleton holding it is
        // dropped before `storage`: on the error paths below it is a local
        // declared after `storage`, and in `SteerProgram` the `skel` field
        // comes before `_storage`.
        let object = unsafe { storage.borrow_static() };
        let open = SteerSkelBuilder::default()
            .open(object)
            .map_err(|e| libbpf_error(e, "opening the BPF object", XdpError::Load))?;
        let skel = open
            .load()
            .map_err(|e| libbpf_error(e, "loading xdp_steer", XdpError::Load))?;

        let link = create_xdp_link(skel.progs.xdp_steer.as_fd().as_raw_fd(), ifindex, mode)
            .map_err(|err| attach_error(err, &name, ifindex, mode))?;

        Ok(SteerProgram {
            link,
            skel,
            _storage: storage,
            ifindex,
            mode,
        })
    }

    /// Steers TCP segments to `addr:port` into the AF_XDP sockets.
    /// Adding a pair that is already present is not an error.
    pub fn add_port(&self, addr: Ipv4Addr, port: u16) -> Result<(), XdpError> {
        self.skel
            .maps
            .ports
            .update(&port_key(addr, port), &[1u8], MapFlags::ANY)
            .map_err(|e| {
                libbpf_error(
                    e,
                    &format!("adding {addr}:{port} to `ports`"),
                    XdpError::Map,
                )
            })
    }

    /// Stops steering `addr:port`; its segments go to the kernel again.
    /// Removing a pair that was never added is an error.
    pub fn remove_port(&self, addr: Ipv4Addr, port: u16) -> Result<(), XdpError> {
        self.skel
            .maps
            .ports
            .delete(&port_key(addr, port))
            .map_err(|e| {
                libbpf_error(
                    e,
                    &format!("removing {addr}:{port} from `ports` (was it added?)"),
                    XdpError::Map,
                )
            })
    }

    /// Steers TCP segments to `addr` with a destination port in
    /// `lo..=hi` (the local ports of our active opens). One range per
    /// address; setting it again replaces it.
    pub fn add_client_range(&self, addr: Ipv4Addr, lo: u16, hi: u16) -> Result<(), XdpError> {
        self.skel
            .maps
            .client_ports
            .update(&addr.octets(), &client_range_value(lo, hi), MapFlags::ANY)
            .map_err(|e| {
                libbpf_error(
                    e,
                    &format!("adding {addr} ports {lo}-{hi} to `client_ports`"),
                    XdpError::Map,
                )
            })
    }

    /// Stops steering the client range of `addr`.
    pub fn remove_client_range(&self, addr: Ipv4Addr) -> Result<(), XdpError> {
        self.skel
            .maps
            .client_ports
            .delete(&addr.octets())
            .map_err(|e| {
                libbpf_error(
                    e,
                    &format!("removing {addr} from `client_ports` (was it added?)"),
                    XdpError::Map,
                )
            })
    }

    /// Puts an AF_XDP socket's fd into XSKMAP[queue].
    ///
    /// The socket must be bound to the same interface and `queue`
    /// (the kernel drops redirected frames otherwise). Registering again
    /// replaces the previous socket.
    pub fn register_socket(&self, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        let max = self.skel.maps.xsks.max_entries();
        if queue >= max {
            return Err(XdpError::Map(format!(
                "queue {queue} is out of range: the XSKMAP has {max} entries \
                 (raise max_entries of `xsks` in bpf/steer.bpf.c)"
            )));
        }
        let fd = u32::try_from(fd).map_err(|_| XdpError::Map(format!("invalid socket fd {fd}")))?;
        self.skel
            .maps
            .xsks
            .update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| {
                libbpf_error(
                    e,
                    &format!("putting AF_XDP socket fd {fd} into XSKMAP[{queue}]"),
                    XdpError::Map,
                )
            })
    }

    /// Reads the packet counters, summed over CPUs.
    pub fn counters(&self) -> Result<SteerCounters, XdpError> {
        Ok(SteerCounters {
            redirected: self.counter(COUNTER_REDIRECTED)?,
            passed: self.counter(COUNTER_PASSED)?,
            malformed: self.counter(COUNTER_MALFORMED)?,
        })
    }

    fn counter(&self, index: u32) -> Result<u64, XdpError> {
        let per_cpu = self
            .skel
            .maps
            .counters
            .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| libbpf_error(e, &format!("reading counter {index}"), XdpError::Map))?
            .ok_or_else(|| XdpError::Map(format!("counter {index} is missing")))?;
        let mut sum = 0u64;
        for value in per_cpu {
            let bytes: [u8; 8] = value
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| XdpError::Map(format!("counter {index}: short per-CPU value")))?;
            sum = sum.wrapping_add(u64::from_ne_bytes(bytes));
        }
        Ok(sum)
    }
}

/// The interface index of `name` in this thread's network namespace
/// (`if_nametoindex`).
pub fn ifindex(name: &str) -> Result<u32, XdpError> {
    let cname = CString::new(name).map_err(|_| XdpError::InterfaceNotFound(name.to_string()))?;
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        Err(XdpError::InterfaceNotFound(name.to_string()))
    } else {
        Ok(index)
    }
}

/// The name of interface `ifindex` (`if_indextoname`), if it exists.
fn interface_name(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    let ret = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if ret.is_null() {
        return None;
    }
    // SAFETY: on success if_indextoname wrote a NUL-terminated name into `buf`.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// The `ports` map key: `struct port_key { __u32 addr; __u16 port; __u16 pad; }`
/// with address and port in network byte order.
fn port_key(addr: Ipv4Addr, port: u16) -> [u8; 8] {
    let a = addr.octets();
    let p = port.to_be_bytes();
    [a[0], a[1], a[2], a[3], p[0], p[1], 0, 0]
}

/// The `client_ports` map value: `struct client_range { __u16 lo; __u16 hi; }`
/// in host order (the key is the address in network order).
fn client_range_value(lo: u16, hi: u16) -> [u8; 4] {
    let (l, h) = (lo.to_ne_bytes(), hi.to_ne_bytes());
    [l[0], l[1], h[0], h[1]]
}

/// `BPF_LINK_CREATE` of an XDP link with the mode flag (libbpf's
/// `bpf_program__attach_xdp` takes no flags, so it cannot ask for
/// generic mode nor insist on native mode).
fn create_xdp_link(prog_fd: RawFd, ifindex: u32, mode: XdpMode) -> std::io::Result<OwnedFd> {
    let target =
        i32::try_from(ifindex).map_err(|_| std::io::Error::from_raw_os_error(libc::ENODEV))?;
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as libbpf_sys::size_t,
        flags: mode.flags(),
        ..Default::default()
    };
    // SAFETY: `prog_fd` is the loaded program's fd (kept open by the
    // skeleton for the duration of the call), `opts` is a fully
    // initialised opts struct whose `sz` is its own size, and it outlives
    // the call.
    let fd = unsafe { libbpf_sys::bpf_link_create(prog_fd, target, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: `fd` is a new link fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn attach_error(err: std::io::Error, name: &str, ifindex: u32, mode: XdpMode) -> XdpError {
    if is_permission_error(&err) {
        return XdpError::NotPermitted(format!("attaching XDP to {name}: {err}"));
    }
    match err.raw_os_error() {
        Some(libc::ENODEV) => XdpError::InterfaceNotFound(format!("{name} (ifindex {ifindex})")),
        Some(libc::EBUSY) | Some(libc::EEXIST) => XdpError::Attach(format!(
            "{name} already has an XDP program ({err}); if it is a leftover netlink attach, \
             remove it with `ip link set dev {name} xdp off`"
        )),
        Some(libc::EOPNOTSUPP) if mode == XdpMode::Native => XdpError::Attach(format!(
            "the driver of {name} has no native XDP support ({err}); use XdpMode::Generic"
        )),
        Some(libc::EINVAL) => XdpError::Attach(format!(
            "{name} rejected the program in {mode:?} mode ({err}); XDP links need Linux 5.9 \
             or newer, and native mode has driver limits (MTU, queue count): try \
             XdpMode::Generic to tell them apart"
        )),
        _ => XdpError::Attach(format!("{name} in {mode:?} mode: {err}")),
    }
}

fn libbpf_error(err: libbpf_rs::Error, what: &str, make: fn(String) -> XdpError) -> XdpError {
    if err.kind() == libbpf_rs::ErrorKind::PermissionDenied {
        XdpError::NotPermitted(format!("{what}: {err:#}"))
    } else {
        make(format!("{what}: {err:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_key_is_network_order() {
        assert_eq!(
            port_key(Ipv4Addr::new(198, 18, 0, 1), 9000),
            [198, 18, 0, 1, 0x23, 0x28, 0, 0]
        );
    }

    #[test]
    fn missing_interface_is_reported_by_name() {
        match ifindex("no-such-if0") {
            Err(XdpError::InterfaceNotFound(name)) => assert_eq!(name, "no-such-if0"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            ifindex("a\0b"),
            Err(XdpError::InterfaceNotFound(_))
        ));
    }

    #[test]
    fn steer_program_can_move_to_the_control_thread() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<SteerProgram>();
    }
}
