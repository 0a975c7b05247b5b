//! Next-hop MAC resolution for active opens, from the kernel's tables.
//!
//! The stack never answers ARP itself: the kernel keeps the address and
//! its neighbour table. To open a connection we find the next hop (the
//! destination if it is on the interface's subnet, else the route's
//! gateway, from the route table) and its MAC in the kernel's IPv4
//! neighbour table (the table netlink's RTM_GETNEIGH reads). Both are read
//! through `/proc/thread-self/net`, so the answer is for the calling
//! thread's network namespace. A missing entry is resolved by the kernel: a datagram sent
//! through a kernel UDP socket makes it ARP for the next hop. A configured
//! gateway MAC overrides all of this.
//!
//! Entries are not trusted forever: [`kernel_neighbors`] reads the
//! kernel's table with its NUD state and confirmation age (netlink
//! RTM_GETNEIGH, which `/proc/net/arp` lacks), so the control side can
//! tell a freshly confirmed entry from a stale one and follow a changed
//! MAC (see [`crate::runtime::neighbor_table`] and
//! [`crate::runtime::neighbor_monitor`]). [`nudge`] makes the kernel run
//! its own verification (Linux: STALE → DELAY → unicast PROBE, or a new
//! broadcast request from FAILED).

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;

use crate::wire::MacAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeighborError {
    #[error("no route to {0} via interface {1}: add one (ip route add ...) or give --gateway-mac")]
    NoRoute(Ipv4Addr, String),
    #[error("next hop {0} did not answer ARP within {1:?}: check it is up, or give --gateway-mac")]
    Unresolved(Ipv4Addr, Duration),
    #[error("next hop {0} stopped answering ARP (unverified for more than {1:?}): check it is up")]
    Unreachable(Ipv4Addr, Duration),
}

/// One interface's IPv4 routes (from `/proc/net/route`): enough to say
/// which next hop a destination goes through. Workers get a snapshot to
/// tell which connections a changed next hop carries, without a syscall.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// (destination, mask, gateway; unspecified for on-link routes).
    routes: Vec<(u32, u32, Ipv4Addr)>,
}

impl Routes {
    /// The routes of `iface` in the calling thread's namespace (none when
    /// the table cannot be read).
    pub fn read(iface: &str) -> Routes {
        let table = fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default();
        Routes::parse(&table, iface)
    }

    /// Parses the text of `/proc/net/route`, keeping `iface`'s routes.
    /// Lines that do not parse are skipped.
    pub fn parse(table: &str, iface: &str) -> Routes {
        let hex = |s: &str| {
            u32::from_str_radix(s, 16)
                .ok()
                .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
        };
        let routes = table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 8 || f[0] != iface {
                    return None;
                }
                let (dest, gw, mask) = (hex(f[1])?, hex(f[2])?, hex(f[7])?);
                let m = u32::from(mask);
                Some((u32::from(dest) & m, m, gw))
            })
            .collect();
        Routes { routes }
    }

    /// The next hop towards `dst`: the most specific route's gateway, or
    /// `dst` itself for an on-link route. None without a route.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        let d = u32::from(dst);
        self.routes
            .iter()
            .filter(|&&(dest, mask, _)| d & mask == dest)
            .max_by_key(|&&(_, mask, _)| mask.count_ones())
            .map(|&(_, _, gw)| if gw.is_unspecified() { dst } else { gw })
    }
}

/// The IPv4 next hop for `dst` out of `iface`: the most specific route of
/// that interface in `/proc/net/route` (its gateway, or `dst` itself for
/// an on-link route).
pub fn next_hop(iface: &str, dst: Ipv4Addr) -> Result<Ipv4Addr, NeighborError> {
    Routes::read(iface)
        .next_hop(dst)
        .ok_or_else(|| NeighborError::NoRoute(dst, iface.to_owned()))
}

/// Linux neighbour (NUD) states, `ndm_state` bits (include/uapi/linux/neighbour.h).
pub mod nud {
    pub const INCOMPLETE: u16 = 0x01;
    pub const REACHABLE: u16 = 0x02;
    pub const STALE: u16 = 0x04;
    pub const DELAY: u16 = 0x08;
    pub const PROBE: u16 = 0x10;
    pub const FAILED: u16 = 0x20;
    pub const NOARP: u16 = 0x40;
    pub const PERMANENT: u16 = 0x80;
}

/// One IPv4 entry of the kernel's neighbour table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelNeighbor {
    pub ip: Ipv4Addr,
    pub ifindex: u32,
    /// NUD state bits (see [`nud`]).
    pub state: u16,
    /// The link-layer address, when the entry has one.
    pub mac: Option<MacAddr>,
    /// How long ago the kernel last confirmed the entry (an ARP reply, or
    /// forward progress of its own connections), when it says.
    pub confirmed_ago: Option<Duration>,
}

impl KernelNeighbor {
    /// The kernel confirmed this MAC recently (REACHABLE, RFC 4861
    /// §7.3.2), or it is configured (PERMANENT, NOARP).
    pub fn is_confirmed(&self) -> bool {
        self.mac.is_some() && self.state & (nud::REACHABLE | nud::PERMANENT | nud::NOARP) != 0
    }

    /// The kernel holds a MAC it still sends to (confirmed or not: STALE,
    /// DELAY, PROBE).
    pub fn is_usable(&self) -> bool {
        self.mac.is_some()
            && self.state
                & (nud::REACHABLE
                    | nud::PERMANENT
                    | nud::NOARP
                    | nud::STALE
                    | nud::DELAY
                    | nud::PROBE)
                != 0
    }
}

/// `clock_t` ticks per second in what the kernel exports (USER_HZ).
const USER_HZ: u64 = 100;

/// The kernel's IPv4 neighbour entries on interface `ifindex`, read in the
/// calling thread's network namespace (one netlink RTM_GETNEIGH dump).
pub fn kernel_neighbors(ifindex: u32) -> io::Result<Vec<KernelNeighbor>> {
    let mut socket = netlink_sys::Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
    // The kernel answers a dump at once; a bound keeps the caller (the
    // monitor, which a runtime's stop waits for) from ever hanging.
    socket2::SockRef::from(&socket).set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut query = NeighbourMessage::default();
    query.header.family = AddressFamily::Inet;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetNeighbour(query)),
    );
    request.finalize();
    let mut bytes = vec![0u8; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = socket.recv(&mut &mut buf[..], 0)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink: the neighbour dump ended early",
            ));
        }
        if parse_neighbor_dump(&buf[..n.min(buf.len())], ifindex, &mut out)? {
            return Ok(out);
        }
    }
}

/// Parses one datagram of an RTM_GETNEIGH dump, appending the IPv4
/// entries of `ifindex` to `out`. Returns whether the dump is complete
/// (NLMSG_DONE seen). A message that does not decode is skipped, a
/// truncated one ends the parse of the datagram; a netlink error is
/// returned as one.
pub fn parse_neighbor_dump(
    buf: &[u8],
    ifindex: u32,
    out: &mut Vec<KernelNeighbor>,
) -> io::Result<bool> {
    let mut off = 0;
    while off < buf.len() {
        let rest = &buf[off..];
        let Ok(frame) = NetlinkBuffer::new_checked(rest) else {
            break;
        };
        // Messages are 4-byte aligned within a datagram (NLMSG_ALIGN).
        off += (frame.length() as usize + 3) & !3;
        let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest) else {
            continue;
        };
        let entry = match message.payload {
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::Error(e) => match e.code {
                Some(code) => return Err(io::Error::from_raw_os_error(-code.get())),
                None => continue,
            },
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(entry)) => entry,
            _ => continue,
        };
        if entry.header.family != AddressFamily::Inet || entry.header.ifindex != ifindex {
            continue;
        }
        let (mut ip, mut mac, mut confirmed_ago) = (None, None, None);
        for attribute in &entry.attributes {
            match attribute {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(*a),
                NeighbourAttribute::LinkLayerAddress(l) => {
                    mac = <[u8; 6]>::try_from(l.as_slice()).ok().map(MacAddr)
                }
                NeighbourAttribute::CacheInfo(info) => {
                    let ticks = u64::from(info.confirmed);
                    confirmed_ago = Some(Duration::from_millis(ticks * 1000 / USER_HZ));
                }
                _ => {}
            }
        }
        if let Some(ip) = ip {
            out.push(KernelNeighbor {
                ip,
                ifindex: entry.header.ifindex,
                state: u16::from(entry.header.state),
                mac,
                confirmed_ago,
            });
        }
    }
    Ok(false)
}

/// Makes the kernel use its neighbour entry for `hop`, which starts its
/// own verification: a STALE entry goes to DELAY and then unicast PROBE
/// (RFC 1122 §2.3.2.1 validation, RFC 4861 §7.3.3), a FAILED or missing
/// one is resolved anew by broadcast. A datagram to the discard port (9)
/// is the use; it is harmless to the peer.
pub fn nudge(hop: Ipv4Addr) {
    if let Ok(sock) = UdpSocket::bind("0.0.0.0:0") {
        let _ = sock.send_to(&[], SocketAddrV4::new(hop, 9));
    }
}

/// The MAC of `ip` on `iface` in the kernel's neighbour table, if complete.
pub fn lookup(iface: &str, ip: Ipv4Addr) -> Option<MacAddr> {
    let table = fs::read_to_string("/proc/thread-self/net/arp").unwrap_or_default();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // IP address, HW type, Flags, HW address, Mask, Device; flag 0x2 = complete.
        if f.len() < 6 || f[5] != iface || f[0].parse::<Ipv4Addr>().ok()? != ip {
            return None;
        }
        let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?;
        if flags & 0x2 == 0 {
            return None;
        }
        f[3].parse::<MacAddr>().ok()
    })
}

/// Resolves the MAC to send to for `dst`: `gateway_mac` when configured,
/// else the neighbour table, asking the kernel to ARP when needed.
pub fn resolve(
    iface: &str,
    dst: Ipv4Addr,
    gateway_mac: Option<MacAddr>,
    timeout: Duration,
) -> Result<MacAddr, NeighborError> {
    if let Some(mac) = gateway_mac {
        return Ok(mac);
    }
    let hop = next_hop(iface, dst)?;
    if let Some(mac) = lookup(iface, hop) {
        return Ok(mac);
    }
    // Any datagram towards the next hop makes the kernel resolve it.
    nudge(hop);
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(mac) = lookup(iface, hop) {
            return Ok(mac);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(NeighborError::Unresolved(hop, timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The kernel's wire format (include/uapi/linux/netlink.h, rtnetlink.h,
    // neighbour.h), written out by hand so the parse is checked against
    // what the kernel sends rather than against the crate's own encoder.
    const NLMSG_HDR: usize = 16;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const RTM_NEWNEIGH: u16 = 28;
    const NDMSG_LEN: usize = 12;
    const NDA_DST: u16 = 1;
    const NDA_LLADDR: u16 = 2;
    const NDA_CACHEINFO: u16 = 3;
    const AF_INET: u8 = 2;

    #[test]
    fn a_configured_gateway_mac_wins() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let got = resolve(
            "nosuch0",
            Ipv4Addr::new(198, 18, 0, 9),
            Some(mac),
            Duration::ZERO,
        );
        assert_eq!(got, Ok(mac));
    }

    const ROUTE_TABLE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
veth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
veth0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
veth0\t000013C6\t020012C6\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0
eth9\t000012C6\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
garbage line
";

    #[test]
    fn routes_pick_the_most_specific_route_of_the_interface() {
        let r = Routes::parse(ROUTE_TABLE, "veth0");
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        // On-link /24: the destination itself.
        assert_eq!(r.next_hop(ip("198.18.0.7")), Some(ip("198.18.0.7")));
        // 198.19.0.0/16 via 198.18.0.2 beats the default route.
        assert_eq!(r.next_hop(ip("198.19.5.5")), Some(ip("198.18.0.2")));
        // Default route via 198.18.0.1.
        assert_eq!(r.next_hop(ip("203.0.113.9")), Some(ip("198.18.0.1")));
        assert_eq!(
            Routes::parse(ROUTE_TABLE, "nosuch").next_hop(ip("198.18.0.7")),
            None
        );
        assert_eq!(
            Routes::parse(ROUTE_TABLE, "eth9").next_hop(ip("198.18.1.1")),
            Some(ip("198.18.1.1"))
        );
    }

    /// One RTM_NEWNEIGH message as the kernel writes it.
    fn neigh_msg(ifindex: u32, state: u16, ip: [u8; 4], mac: Option<[u8; 6]>) -> Vec<u8> {
        let mut attrs = Vec::new();
        let mut attr = |ty: u16, payload: &[u8]| {
            attrs.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
            attrs.extend_from_slice(&ty.to_ne_bytes());
            attrs.extend_from_slice(payload);
            while attrs.len() % 4 != 0 {
                attrs.push(0);
            }
        };
        attr(NDA_DST, &ip);
        if let Some(m) = mac {
            attr(NDA_LLADDR, &m);
        }
        let mut ci = Vec::new();
        for v in [250u32, 10, 20, 1] {
            ci.extend_from_slice(&v.to_ne_bytes());
        }
        attr(NDA_CACHEINFO, &ci);
        let mut m = Vec::new();
        let len = (NLMSG_HDR + NDMSG_LEN + attrs.len()) as u32;
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&RTM_NEWNEIGH.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[AF_INET, 0, 0, 0]);
        m.extend_from_slice(&ifindex.to_ne_bytes());
        m.extend_from_slice(&state.to_ne_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&attrs);
        m
    }

    fn done_msg() -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&20u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&[0; 14]);
        m
    }

    #[test]
    fn a_neighbour_dump_parses_into_entries_of_the_interface() {
        let mac = [2, 0, 0, 0, 0, 7];
        let mut dgram = neigh_msg(3, nud::REACHABLE, [198, 18, 0, 7], Some(mac));
        dgram.extend(neigh_msg(4, nud::STALE, [198, 18, 0, 8], Some(mac)));
        dgram.extend(neigh_msg(3, nud::FAILED, [198, 18, 0, 9], None));
        let mut out = Vec::new();
        assert!(!parse_neighbor_dump(&dgram, 3, &mut out).unwrap());
        assert_eq!(
            out,
            vec![
                KernelNeighbor {
                    ip: Ipv4Addr::new(198, 18, 0, 7),
                    ifindex: 3,
                    state: nud::REACHABLE,
                    mac: Some(MacAddr(mac)),
                    confirmed_ago: Some(Duration::from_millis(2500)),
                },
                KernelNeighbor {
                    ip: Ipv4Addr::new(198, 18, 0, 9),
                    ifindex: 3,
                    state: nud::FAILED,
                    mac: None,
                    confirmed_ago: Some(Duration::from_millis(2500)),
                },
            ]
        );
        assert!(out[0].is_confirmed() && out[0].is_usable());
        assert!(!out[1].is_usable());
        assert!(parse_neighbor_dump(&done_msg(), 3, &mut out).unwrap());
        // Truncated input ends the parse without a panic.
        let mut cut = Vec::new();
        let whole = neigh_msg(3, nud::STALE, [198, 18, 0, 7], Some(mac));
        for n in 0..whole.len() {
            cut.clear();
            let _ = parse_neighbor_dump(&whole[..n], 3, &mut cut);
        }
        // A netlink error is reported.
        let mut err = done_msg();
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-1i32).to_ne_bytes());
        assert!(parse_neighbor_dump(&err, 3, &mut out).is_err());
    }

    #[test]
    fn an_unknown_interface_has_no_route() {
        let dst = Ipv4Addr::new(198, 18, 0, 9);
        assert_eq!(
            resolve("nosuch0", dst, None, Duration::ZERO),
            Err(NeighborError::NoRoute(dst, "nosuch0".into()))
        );
    }
}
