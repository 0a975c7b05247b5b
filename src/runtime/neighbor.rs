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

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use crate::wire::MacAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeighborError {
    #[error("no route to {0} via interface {1}: add one (ip route add ...) or give --gateway-mac")]
    NoRoute(Ipv4Addr, String),
    #[error("next hop {0} did not answer ARP within {1:?}: check it is up, or give --gateway-mac")]
    Unresolved(Ipv4Addr, Duration),
}

/// The IPv4 next hop for `dst` out of `iface`: the most specific route of
/// that interface in `/proc/net/route` (its gateway, or `dst` itself for
/// an on-link route).
pub fn next_hop(iface: &str, dst: Ipv4Addr) -> Result<Ipv4Addr, NeighborError> {
    let table = fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default();
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
    };
    let mut best: Option<(u32, Ipv4Addr)> = None;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || f[0] != iface {
            continue;
        }
        let (Some(dest), Some(gw), Some(mask)) = (hex(f[1]), hex(f[2]), hex(f[7])) else {
            continue;
        };
        let m = u32::from(mask);
        if u32::from(dst) & m != u32::from(dest) & m {
            continue;
        }
        let hop = if gw.is_unspecified() { dst } else { gw };
        if best.is_none_or(|(bm, _)| m.count_ones() > bm.count_ones()) {
            best = Some((m, hop));
        }
    }
    best.map(|(_, hop)| hop)
        .ok_or_else(|| NeighborError::NoRoute(dst, iface.to_owned()))
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
    // Any datagram towards the next hop makes the kernel resolve it; the
    // discard port (9) keeps it harmless.
    if let Ok(sock) = UdpSocket::bind("0.0.0.0:0") {
        let _ = sock.send_to(&[], SocketAddrV4::new(hop, 9));
    }
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

    #[test]
    fn an_unknown_interface_has_no_route() {
        let dst = Ipv4Addr::new(198, 18, 0, 9);
        assert_eq!(
            resolve("nosuch0", dst, None, Duration::ZERO),
            Err(NeighborError::NoRoute(dst, "nosuch0".into()))
        );
    }
}
