//! Active opens on a worker: local port ownership, next hops, and which
//! worker a frame for a client port belongs to.
//!
//! The runtime owns a range of local ports on each of its local
//! addresses ([`ClientPorts`]). The range is split among the workers by
//! `port % workers == worker id`, so the worker that opens a connection
//! can tell from the destination port of every reply which worker owns
//! it. The XDP program steers the whole range to the AF_XDP sockets
//! (`client_ports` in `bpf/steer.bpf.c`); a reply that arrives on another
//! worker's queue is handed straight to its owner (one hop) instead of
//! travelling round the workers.
//!
//! Where the NIC reports its RSS hash (Toeplitz key and indirection
//! table, `ethtool -x`; see [`RssTable`]), the split is by queue instead:
//! a connection belongs to the worker of the queue its *replies* hash to,
//! and each worker picks only local ports whose replies come to it, so
//! none needs handing over. On veth the receive queue is the one the
//! *peer* transmitted on (its XPS choice, per sending CPU), which no port
//! choice controls, so the port split with hand-off is the mechanism
//! there.
//!
//! Next hops of the configured targets are resolved at start-up
//! ([`resolve_next_hops`], which may ARP through the kernel), others by
//! the connecting thread ([`NextHopCache`]); a worker only looks them up
//! in its copy of the table, with no syscall on its path. They are not
//! trusted forever: the neighbour monitor
//! ([`crate::runtime::neighbor_monitor`]) re-verifies them through the
//! kernel and sends a [`NextHopUpdate`] to every worker when one changes
//! MAC or stops answering, which re-points the existing connections
//! ([`Stack::update_next_hop`]) and the worker's table.

use std::collections::HashMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::runtime::neighbor::{self, KernelNeighbor, NeighborError, Routes};
use crate::runtime::neighbor_table::{Lookup, NeighborConfig, NeighborTable, NextHopChange};
use crate::runtime::rss::RssTable;
use crate::tcp::{ConnId, Instant, Stack, TcpError};
use crate::wire::MacAddr;

/// An inclusive range of local ports, `LO-HI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }

    pub fn len(self) -> usize {
        usize::from(self.hi - self.lo) + 1
    }

    pub fn is_empty(self) -> bool {
        false
    }

    pub fn overlaps(self, other: PortRange) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }

    /// The kernel's own ephemeral range in this network namespace
    /// (`net.ipv4.ip_local_port_range`).
    pub fn kernel_ephemeral() -> Option<PortRange> {
        let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
        let mut it = text.split_whitespace().map(|v| v.parse::<u16>().ok());
        Some(PortRange {
            lo: it.next()??,
            hi: it.next()??,
        })
    }

    /// The default client range: the larger gap outside the kernel's
    /// ephemeral range, above the privileged ports, so neither stack
    /// picks a port the other uses (1024-32767 with Linux's default
    /// 32768-60999).
    pub fn default_client(kernel: Option<PortRange>) -> PortRange {
        let kernel = kernel.unwrap_or(PortRange {
            lo: 32768,
            hi: 60999,
        });
        let below = (kernel.lo > 1025).then(|| PortRange {
            lo: 1024,
            hi: kernel.lo - 1,
        });
        let above = (kernel.hi < 65535).then(|| PortRange {
            lo: kernel.hi + 1,
            hi: 65535,
        });
        match (below, above) {
            (Some(b), Some(a)) => {
                if b.len() >= a.len() {
                    b
                } else {
                    a
                }
            }
            (Some(r), None) | (None, Some(r)) => r,
            // The kernel claims everything: share its top half's end.
            (None, None) => PortRange {
                lo: 61000,
                hi: 65535,
            },
        }
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<PortRange, String> {
        let bad = || format!("'{s}' is not a port range: write LO-HI, e.g. 20000-29999");
        let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
        let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
        if lo == 0 || lo > hi {
            return Err(format!(
                "port range {s} is empty or starts at 0: give 1 <= LO <= HI <= 65535"
            ));
        }
        Ok(PortRange { lo, hi })
    }
}

/// The local addresses and the port range the runtime opens connections
/// from, and how the range is split among `workers`.
#[derive(Debug, Clone)]
pub struct ClientPorts {
    pub addrs: Vec<Ipv4Addr>,
    pub range: PortRange,
    pub workers: usize,
    /// The NIC's RSS table, when it reports one that reaches every
    /// worker's queue: connections then belong to the worker whose queue
    /// their replies hash to. None: split by `port % workers`.
    pub rss: Option<Arc<RssTable>>,
}

impl ClientPorts {
    /// The worker owning the connection from `local` to `remote`: the
    /// queue its replies hash to with RSS, else by the local port.
    pub fn owner_of(&self, local: SocketAddrV4, remote: SocketAddrV4) -> usize {
        if let Some(rss) = &self.rss {
            let queue = rss.queue_of(remote, local) as usize;
            if queue < self.workers {
                return queue;
            }
        }
        self.owner_of_port(local.port())
    }

    /// The worker owning local `port` of the range without RSS.
    pub fn owner_of_port(&self, port: u16) -> usize {
        usize::from(port) % self.workers
    }

    /// The worker owning the connection a frame is addressed to, when its
    /// destination is one of our client (address, port) pairs. Reads only
    /// the fixed header fields; anything else is None.
    pub fn owner_of_frame(&self, frame: &[u8]) -> Option<usize> {
        // Ethernet II (14), IPv4 (IHL words), TCP destination port at +2.
        if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        if frame[23] != 6 || frame.len() < 14 + ihl + 4 {
            return None;
        }
        let src = Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
        let dst = Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
        let tcp = &frame[14 + ihl..];
        let src_port = u16::from_be_bytes([tcp[0], tcp[1]]);
        let port = u16::from_be_bytes([tcp[2], tcp[3]]);
        (self.range.contains(port) && self.addrs.contains(&dst)).then(|| {
            self.owner_of(
                SocketAddrV4::new(dst, port),
                SocketAddrV4::new(src, src_port),
            )
        })
    }

    /// Local ports owned by each worker on each address (on average,
    /// with RSS).
    pub fn per_worker(&self) -> usize {
        self.range.len() / self.workers
    }
}

/// Resolves the MAC of the next hop towards each of `targets` on `iface`
/// (see [`neighbor::resolve`]); call at start-up, never on a worker.
pub fn resolve_next_hops(
    iface: &str,
    targets: &[Ipv4Addr],
    gateway_mac: Option<MacAddr>,
    timeout: Duration,
) -> Result<HashMap<Ipv4Addr, MacAddr>, NeighborError> {
    targets
        .iter()
        .map(|&t| neighbor::resolve(iface, t, gateway_mac, timeout).map(|mac| (t, mac)))
        .collect()
}

/// What every worker's [`Connector`] shares: the client ports and the
/// next hops resolved at start-up.
#[derive(Debug, Clone)]
pub struct ClientSide {
    pub ports: Arc<ClientPorts>,
    pub next_hops: Arc<HashMap<Ipv4Addr, MacAddr>>,
    /// Next hop for destinations missing from `next_hops`, if any.
    pub gateway_mac: Option<MacAddr>,
}

impl ClientSide {
    /// The connector of worker `worker`.
    pub fn connector(&self, worker: usize) -> Connector {
        Connector::new(
            self.ports.clone(),
            worker,
            self.next_hops.clone(),
            self.gateway_mac,
        )
    }
}

/// Next hops for active opens, kept true to the kernel's neighbour table:
/// resolved on demand by application threads (which may block on ARP),
/// seeded with the start-up table, and re-verified by the runtime's
/// neighbour monitor ([`crate::runtime::neighbor_monitor`]) with the
/// state machine of [`NeighborTable`]: a stale entry is still used while
/// the kernel verifies it, a changed MAC replaces the old one, and a next
/// hop that failed verification for longer than the grace refuses new
/// connects (EHOSTUNREACH).
#[derive(Debug)]
pub struct NextHopCache {
    iface: String,
    gateway_mac: Option<MacAddr>,
    ifindex: Option<u32>,
    state: Mutex<CacheState>,
    timeout: Duration,
}

#[derive(Debug)]
struct CacheState {
    table: NeighborTable,
    routes: Arc<Routes>,
    /// Start-up destinations whose next hop could not be told from the
    /// routes (none were readable): their MAC as resolved.
    pinned: HashMap<Ipv4Addr, MacAddr>,
}

impl NextHopCache {
    /// A cache for `iface` (interface index `ifindex`, None when it has
    /// none: then entries are trusted as resolved), seeded with the
    /// next hops `side` was started with.
    pub fn new(
        iface: &str,
        ifindex: Option<u32>,
        side: &ClientSide,
        config: NeighborConfig,
        timeout: Duration,
    ) -> NextHopCache {
        let routes = Routes::read(iface);
        let now = std::time::Instant::now();
        NextHopCache::with_routes(iface, ifindex, side, config, timeout, routes, now)
    }

    /// As [`new`](Self::new), with the routes given and the start-up next
    /// hops resolved at `resolved_at`.
    fn with_routes(
        iface: &str,
        ifindex: Option<u32>,
        side: &ClientSide,
        config: NeighborConfig,
        timeout: Duration,
        routes: Routes,
        resolved_at: std::time::Instant,
    ) -> NextHopCache {
        let now = resolved_at;
        let mut table = NeighborTable::new(config, u64::from_ne_bytes(entropy_seed()));
        let mut pinned = HashMap::new();
        for (&dst, &mac) in side.next_hops.iter() {
            match routes.next_hop(dst) {
                Some(hop) => {
                    table.insert_resolved(hop, mac, now);
                    // The workers connect through it without asking.
                    table.pin(hop);
                }
                None => {
                    pinned.insert(dst, mac);
                }
            }
        }
        NextHopCache {
            iface: iface.to_owned(),
            gateway_mac: side.gateway_mac,
            ifindex,
            state: Mutex::new(CacheState {
                table,
                routes: Arc::new(routes),
                pinned,
            }),
            timeout,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The MAC to send to for `dst`, resolving it (ARP through the kernel,
    /// up to the timeout) the first time. A stale entry is returned while
    /// the monitor verifies it; one that failed verification for longer
    /// than the grace is `Unreachable`. Call only off the workers.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Result<MacAddr, NeighborError> {
        if let Some(mac) = self.gateway_mac {
            return Ok(mac);
        }
        let mut hop = {
            let state = self.state();
            if let Some(&mac) = state.pinned.get(&dst) {
                return Ok(mac);
            }
            state.routes.next_hop(dst)
        };
        if hop.is_none() {
            // A route added since the last look.
            let routes = Routes::read(&self.iface);
            hop = routes.next_hop(dst);
            self.state().routes = Arc::new(routes);
        }
        let hop = hop.ok_or_else(|| NeighborError::NoRoute(dst, self.iface.clone()))?;
        let (found, grace) = {
            let mut state = self.state();
            let found = state.table.lookup_and_use(hop, std::time::Instant::now());
            (found, state.table.config().failure_grace)
        };
        match found {
            Lookup::Reachable(mac) | Lookup::Stale(mac) => return Ok(mac),
            Lookup::Unreachable => return Err(NeighborError::Unreachable(hop, grace)),
            Lookup::Unknown => {}
        }
        // Resolved without the lock held: other threads go on meanwhile.
        let mac = neighbor::resolve(&self.iface, hop, None, self.timeout)?;
        let now = std::time::Instant::now();
        let kernel = self
            .ifindex
            .and_then(|i| neighbor::kernel_neighbors(i).ok())
            .and_then(|all| all.into_iter().find(|k| k.ip == hop && k.mac == Some(mac)));
        let mut state = self.state();
        match kernel {
            // The kernel may have had the entry already, unconfirmed.
            Some(k) => state.table.observe(hop, Some(&k), now),
            None => state.table.insert_resolved(hop, mac, now),
        };
        Ok(mac)
    }

    /// One verification round: forgets the next hops no connect used for
    /// the unused time, then feeds the kernel's table (`kernel`, all
    /// entries of the interface) to every one still tracked. Returns what
    /// changed and which next hops the kernel should verify
    /// ([`neighbor::nudge`]).
    pub fn revalidate(
        &self,
        now: std::time::Instant,
        kernel: &[KernelNeighbor],
        routes: Arc<Routes>,
    ) -> Revalidation {
        let mut state = self.state();
        state.routes = routes;
        let mut round = Revalidation {
            forgotten: state.table.forget_unused(now),
            ..Revalidation::default()
        };
        let hops: Vec<Ipv4Addr> = state.table.hops().collect();
        for hop in hops {
            let k = kernel.iter().find(|k| k.ip == hop);
            let o = state.table.observe(hop, k, now);
            round.changes.extend(o.change);
            if o.nudge {
                round.nudges.push(hop);
            }
        }
        round
    }

    /// How many next hops are tracked (verified and followed).
    pub fn tracked(&self) -> usize {
        self.state().table.hops().count()
    }

    /// Whether `hop` is one of the next hops this cache verifies.
    pub fn tracks(&self, hop: Ipv4Addr) -> bool {
        self.state().table.contains(hop)
    }

    /// The configured gateway MAC, if any (then nothing is verified).
    pub fn gateway_mac(&self) -> Option<MacAddr> {
        self.gateway_mac
    }
}

/// What one [`NextHopCache::revalidate`] round found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Revalidation {
    /// Changes for the workers.
    pub changes: Vec<NextHopChange>,
    /// Next hops the kernel should verify.
    pub nudges: Vec<Ipv4Addr>,
    /// Next hops forgotten for going unused.
    pub forgotten: usize,
}

/// A seed for the reachable-time randomization (not a secret).
fn entropy_seed() -> [u8; 8] {
    let e = crate::runtime::serve::entropy();
    let mut s = [0u8; 8];
    s.copy_from_slice(&e[..8]);
    s
}

/// A next-hop change as the workers get it: the change and the routes it
/// was seen with, which tell the connections going through `hop`.
#[derive(Debug, Clone)]
pub struct NextHopUpdate {
    pub change: NextHopChange,
    pub routes: Arc<Routes>,
}

impl NextHopUpdate {
    /// Applies the change on a worker: connections sending to the old MAC
    /// through the next hop send to the new one (their prebuilt headers
    /// rebuilt), and the worker's connector uses it for new connections;
    /// `new == None` makes the connector refuse the next hop. Returns
    /// how many connections were re-pointed.
    pub fn apply(&self, stack: &mut Stack, connector: Option<&mut Connector>) -> usize {
        let NextHopChange { hop, old, new } = self.change;
        if let Some(c) = connector {
            c.apply_next_hop(self);
        }
        match new {
            Some(new) if Some(new) != old => {
                let routes = &self.routes;
                stack.update_next_hop(new, |remote, mac| {
                    old.is_none_or(|o| o == mac) && routes.next_hop(remote) == Some(hop)
                })
            }
            _ => 0,
        }
    }
}

/// What a worker's connector knows of a next hop that changed.
#[derive(Debug, Clone)]
struct HopStatus {
    hop: Ipv4Addr,
    /// Its MAC now; None: unreachable.
    current: Option<MacAddr>,
    /// MACs it had before, which connects may still carry.
    superseded: Vec<MacAddr>,
}

/// One worker's side of active opens: its share of the client ports and
/// the next-hop table resolved at start-up.
#[derive(Debug, Clone)]
pub struct Connector {
    ports: Arc<ClientPorts>,
    worker: usize,
    next_hops: Arc<HashMap<Ipv4Addr, MacAddr>>,
    /// Used for destinations missing from `next_hops` (a configured
    /// gateway MAC), if any.
    gateway_mac: Option<MacAddr>,
    /// Round-robin position over (address, port) pairs of this worker.
    cursor: usize,
    /// Next hops that changed MAC or became unreachable, and the routes
    /// that tell which destinations go through them: a connect carrying a
    /// MAC resolved before a change (a thread's request crossing the
    /// update) is sent to the new one.
    changed: Vec<HopStatus>,
    routes: Option<Arc<Routes>>,
}

impl Connector {
    pub fn new(
        ports: Arc<ClientPorts>,
        worker: usize,
        next_hops: Arc<HashMap<Ipv4Addr, MacAddr>>,
        gateway_mac: Option<MacAddr>,
    ) -> Connector {
        Connector {
            ports,
            worker,
            next_hops,
            gateway_mac,
            cursor: 0,
            changed: Vec::new(),
            routes: None,
        }
    }

    pub fn ports(&self) -> &ClientPorts {
        &self.ports
    }

    /// The local addresses connections are opened from.
    pub fn local_addrs(&self) -> &[Ipv4Addr] {
        &self.ports.addrs
    }

    fn next_hop(&self, remote: Ipv4Addr) -> Result<MacAddr, TcpError> {
        let mac = self
            .next_hops
            .get(&remote)
            .copied()
            .or(self.gateway_mac)
            .ok_or(TcpError::InvalidInput(
                "no next hop for this destination: list it among the runtime's connect targets",
            ))?;
        self.current_mac(remote, mac)
    }

    /// `mac` for `remote`, or what it changed to (see `changed`); an
    /// unreachable next hop is refused.
    fn current_mac(&self, remote: Ipv4Addr, mac: MacAddr) -> Result<MacAddr, TcpError> {
        if self.changed.is_empty() {
            return Ok(mac);
        }
        let hop = self.routes.as_ref().and_then(|r| r.next_hop(remote));
        match self.changed.iter().find(|s| Some(s.hop) == hop) {
            Some(s) => match s.current {
                None => Err(TcpError::HostUnreachable),
                Some(current) if s.superseded.contains(&mac) => Ok(current),
                Some(_) => Ok(mac),
            },
            None => Ok(mac),
        }
    }

    /// Follows a next-hop change (see [`NextHopUpdate::apply`]).
    pub fn apply_next_hop(&mut self, update: &NextHopUpdate) {
        let NextHopChange { hop, old, new } = update.change;
        self.routes = Some(update.routes.clone());
        if let Some(new) = new.filter(|&n| Some(n) != old) {
            let routes = &update.routes;
            for (dst, mac) in Arc::make_mut(&mut self.next_hops).iter_mut() {
                if old.is_none_or(|o| o == *mac) && routes.next_hop(*dst) == Some(hop) {
                    *mac = new;
                }
            }
        }
        let i = match self.changed.iter().position(|s| s.hop == hop) {
            Some(i) => i,
            None => {
                self.changed.push(HopStatus {
                    hop,
                    current: old,
                    superseded: Vec::new(),
                });
                self.changed.len() - 1
            }
        };
        let status = &mut self.changed[i];
        if let Some(old) = old.filter(|&o| new != Some(o)) {
            if !status.superseded.contains(&old) {
                status.superseded.push(old);
            }
        }
        if let Some(n) = new {
            status.superseded.retain(|&m| m != n);
        }
        status.current = new;
        // Reachable with nothing superseded (back with its old MAC, or a
        // next hop first learnt): connects need no rewriting for it.
        if status.current.is_some() && status.superseded.is_empty() {
            self.changed.swap_remove(i);
        }
    }

    /// Opens a connection to `remote` from the next free (address, port)
    /// of this worker, addresses taken in turn. `from` restricts it to one
    /// local address. Tuples in TIME-WAIT are reused where the engine
    /// allows it (see `Stack::connect`).
    pub fn connect(
        &mut self,
        stack: &mut Stack,
        now: Instant,
        from: Option<Ipv4Addr>,
        remote: SocketAddrV4,
    ) -> Result<ConnId, TcpError> {
        let mac = self.next_hop(*remote.ip())?;
        self.connect_via(stack, now, from, remote, mac)
    }

    /// As [`connect`](Self::connect), sending to the next hop `mac`
    /// (resolved by the caller, e.g. with a [`NextHopCache`]).
    pub fn connect_via(
        &mut self,
        stack: &mut Stack,
        now: Instant,
        from: Option<Ipv4Addr>,
        remote: SocketAddrV4,
        mac: MacAddr,
    ) -> Result<ConnId, TcpError> {
        let mac = self.current_mac(*remote.ip(), mac)?;
        let addrs: &[Ipv4Addr] = match from {
            Some(ip) => std::slice::from_ref(self.ports.addrs.iter().find(|&&a| a == ip).ok_or(
                TcpError::InvalidInput(
                    "connect_from: the address is not one of the runtime's local addresses",
                ),
            )?),
            None => &self.ports.addrs,
        };
        let lo = usize::from(self.ports.range.lo);
        // Without RSS the worker's ports are every `workers`-th from the
        // lowest p >= lo with p % workers == id; with RSS any port may be
        // ours, depending on where its replies hash.
        let (first, stride, count) = if self.ports.rss.is_some() {
            (lo, 1, self.ports.range.len())
        } else {
            let workers = self.ports.workers;
            let first = lo + (self.worker + workers - lo % workers) % workers;
            (first, workers, self.ports.per_worker())
        };
        // The candidate list depends on `from` alone (the worker is fixed
        // per stack): that names it for the stack's memory of exhausted
        // scans.
        let scope = from.map_or(1 << 32, |ip| u64::from(u32::from(ip)));
        let n_addrs = addrs.len();
        let ports = &self.ports;
        let worker = self.worker;
        let cursor = &mut self.cursor;
        let candidates = (0..count * n_addrs).filter_map(|_| {
            let k = *cursor;
            *cursor = cursor.wrapping_add(1);
            let ip = addrs[k % n_addrs];
            let port = u16::try_from(first + ((k / n_addrs) % count) * stride).ok()?;
            let local = SocketAddrV4::new(ip, port);
            (ports.range.contains(port) && ports.owner_of(local, remote) == worker).then_some(local)
        });
        stack.connect_first_free(now, scope, candidates, remote, mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::StackConfig;

    fn range(s: &str) -> PortRange {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_refuse_nonsense() {
        assert_eq!(range("2000-2999"), PortRange { lo: 2000, hi: 2999 });
        assert!("2000".parse::<PortRange>().unwrap_err().contains("LO-HI"));
        assert!("0-10".parse::<PortRange>().is_err());
        assert!("10-5".parse::<PortRange>().is_err());
        assert!(range("10-20").overlaps(range("20-30")));
        assert!(!range("10-19").overlaps(range("20-30")));
    }

    #[test]
    fn the_default_stays_out_of_the_kernel_range() {
        let linux = range("32768-60999");
        assert_eq!(PortRange::default_client(Some(linux)), range("1024-32767"));
        let high = range("1024-50000");
        assert_eq!(PortRange::default_client(Some(high)), range("50001-65535"));
        for k in [linux, high] {
            assert!(!PortRange::default_client(Some(k)).overlaps(k));
        }
    }

    fn frame(dst: Ipv4Addr, dst_port: u16) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12] = 0x08;
        f[14] = 0x45;
        f[23] = 6;
        f[30..34].copy_from_slice(&dst.octets());
        f[36..38].copy_from_slice(&dst_port.to_be_bytes());
        f
    }

    #[test]
    fn frames_for_client_ports_name_their_owner() {
        let a = Ipv4Addr::new(198, 18, 0, 2);
        let ports = ClientPorts {
            addrs: vec![a],
            range: range("20000-20999"),
            workers: 2,
            rss: None,
        };
        assert_eq!(ports.owner_of_frame(&frame(a, 20001)), Some(1));
        assert_eq!(ports.owner_of_frame(&frame(a, 20002)), Some(0));
        assert_eq!(ports.owner_of_frame(&frame(a, 80)), None);
        let other = Ipv4Addr::new(198, 18, 0, 9);
        assert_eq!(ports.owner_of_frame(&frame(other, 20001)), None);
        assert_eq!(ports.owner_of_frame(&frame(a, 20001)[..30]), None);
    }

    /// The server the connector tests connect to, and its next hop.
    fn echo_target() -> (SocketAddrV4, Arc<HashMap<Ipv4Addr, MacAddr>>) {
        let remote: SocketAddrV4 = "198.18.0.1:7".parse().unwrap();
        let hops = Arc::new(HashMap::from([(*remote.ip(), MacAddr([2, 0, 0, 0, 0, 1]))]));
        (remote, hops)
    }

    fn two_addrs() -> Vec<Ipv4Addr> {
        vec![Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 3)]
    }

    #[test]
    fn each_worker_connects_from_its_own_ports_over_all_addresses() {
        let addrs = two_addrs();
        let ports = Arc::new(ClientPorts {
            addrs: addrs.clone(),
            range: range("20001-20010"),
            workers: 3,
            rss: None,
        });
        let (remote, hops) = echo_target();
        for worker in 0..3 {
            let mut c = Connector::new(ports.clone(), worker, hops.clone(), None);
            let mut stack = Stack::new(StackConfig::default(), [1; 32], Instant::ZERO).unwrap();
            let mut seen = Vec::new();
            loop {
                match c.connect(&mut stack, Instant::ZERO, None, remote) {
                    Ok(id) => seen.push(stack.local_addr(id).unwrap()),
                    Err(e) => {
                        assert_eq!(e, TcpError::AddrNotAvailable);
                        break;
                    }
                }
            }
            // 20001..=20010 holds three ports of each residue class mod 3
            // (four of one); every one of them, on both addresses.
            let mine: Vec<u16> = (20001..=20010).filter(|p| p % 3 == worker as u16).collect();
            assert_eq!(seen.len(), mine.len().min(ports.per_worker()) * 2);
            for a in &seen {
                assert_eq!(ports.owner_of_port(a.port()), worker);
                assert!(addrs.contains(a.ip()));
            }
        }
    }

    #[test]
    fn an_exhausted_worker_fails_fast_until_a_port_is_released() {
        let addrs = two_addrs();
        let ports = Arc::new(ClientPorts {
            addrs: addrs.clone(),
            range: range("20000-20003"),
            workers: 1,
            rss: None,
        });
        let (remote, hops) = echo_target();
        let mut c = Connector::new(ports, 0, hops, None);
        let mut stack = Stack::new(StackConfig::default(), [1; 32], Instant::ZERO).unwrap();
        let held: Vec<ConnId> = (0..8)
            .map(|_| c.connect(&mut stack, Instant::ZERO, None, remote).unwrap())
            .collect();
        for _ in 0..5 {
            assert_eq!(
                c.connect(&mut stack, Instant::ZERO, None, remote),
                Err(TcpError::AddrNotAvailable)
            );
        }
        // One walk over the 8 tuples; the retries did not walk again.
        assert_eq!(stack.stats().exhausted_port_scans, 1);
        // From one address the candidate list differs: its own walk.
        assert_eq!(
            c.connect(&mut stack, Instant::ZERO, Some(addrs[1]), remote),
            Err(TcpError::AddrNotAvailable)
        );
        assert_eq!(stack.stats().exhausted_port_scans, 2);
        let freed = stack.local_addr(held[5]).unwrap();
        stack.abort(held[5]).unwrap();
        let id = c.connect(&mut stack, Instant::ZERO, None, remote).unwrap();
        assert_eq!(stack.local_addr(id).unwrap(), freed);
    }

    /// A reply frame from `remote` to `local`.
    fn reply(remote: SocketAddrV4, local: SocketAddrV4) -> Vec<u8> {
        let mut f = frame(*local.ip(), local.port());
        f[26..30].copy_from_slice(&remote.ip().octets());
        f[34..36].copy_from_slice(&remote.port().to_be_bytes());
        f
    }

    #[test]
    fn with_rss_each_worker_picks_ports_whose_replies_hash_to_its_queue() {
        // Microsoft's RSS verification key, 128 buckets over 4 queues.
        let key: Vec<u8> = (0..40)
            .map(|i| {
                u8::from_str_radix(
                    &"6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
                        [2 * i..2 * i + 2],
                    16,
                )
                .unwrap()
            })
            .collect();
        let rss = Arc::new(RssTable::new(&key, (0..128).map(|i| i % 4).collect()).unwrap());
        let addrs = two_addrs();
        let ports = Arc::new(ClientPorts {
            addrs: addrs.clone(),
            range: range("20000-20199"),
            workers: 4,
            rss: Some(rss.clone()),
        });
        let (remote, hops) = echo_target();
        let mut all = Vec::new();
        for worker in 0..4 {
            let mut c = Connector::new(ports.clone(), worker, hops.clone(), None);
            let mut stack = Stack::new(StackConfig::default(), [1; 32], Instant::ZERO).unwrap();
            let mut seen = Vec::new();
            while let Ok(id) = c.connect(&mut stack, Instant::ZERO, None, remote) {
                seen.push(stack.local_addr(id).unwrap());
            }
            assert!(!seen.is_empty(), "worker {worker} found no port");
            for &local in &seen {
                assert_eq!(rss.queue_of(remote, local) as usize, worker);
                assert_eq!(ports.owner_of_frame(&reply(remote, local)), Some(worker));
            }
            all.extend(seen);
        }
        // Every (address, port) pair belongs to exactly one worker.
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert_eq!(n, 200 * addrs.len(), "every pair is used by some worker");
    }

    #[test]
    fn next_hops_come_from_the_gateway_the_start_up_table_or_a_route() {
        let known = Ipv4Addr::new(198, 18, 0, 1);
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let side = |gateway_mac| ClientSide {
            ports: Arc::new(ClientPorts {
                addrs: vec![Ipv4Addr::new(198, 18, 0, 2)],
                range: range("20000-20009"),
                workers: 1,
                rss: None,
            }),
            next_hops: Arc::new(HashMap::from([(known, mac)])),
            gateway_mac,
        };
        let timeout = Duration::from_millis(10);
        // No interface of this name has a route: nothing is sent anywhere.
        let cache = NextHopCache::new(
            "xt-no-such-if",
            None,
            &side(None),
            NeighborConfig::default(),
            timeout,
        );
        assert_eq!(cache.next_hop(known).unwrap(), mac);
        let unknown = Ipv4Addr::new(198, 19, 9, 9);
        assert!(matches!(
            cache.next_hop(unknown),
            Err(NeighborError::NoRoute(ip, _)) if ip == unknown
        ));
        let gw = MacAddr([2, 0, 0, 0, 0, 9]);
        let cache = NextHopCache::new(
            "xt-no-such-if",
            None,
            &side(Some(gw)),
            NeighborConfig::default(),
            timeout,
        );
        assert_eq!(cache.next_hop(unknown).unwrap(), gw);
    }

    #[test]
    fn a_connector_follows_next_hop_changes_and_refuses_unreachable_ones() {
        let ports = Arc::new(ClientPorts {
            addrs: vec![Ipv4Addr::new(198, 18, 0, 2)],
            range: range("20000-20099"),
            workers: 1,
            rss: None,
        });
        let (a, b, c) = (
            MacAddr([2, 0, 0, 0, 0, 0xa]),
            MacAddr([2, 0, 0, 0, 0, 0xb]),
            MacAddr([2, 0, 0, 0, 0, 0xc]),
        );
        let remote: SocketAddrV4 = "198.18.0.1:7".parse().unwrap();
        let other: SocketAddrV4 = "198.18.0.9:7".parse().unwrap();
        let hops = Arc::new(HashMap::from([(*remote.ip(), a), (*other.ip(), a)]));
        let mut conn = Connector::new(ports, 0, hops, None);
        let mut stack = Stack::new(StackConfig::default(), [1; 32], Instant::ZERO).unwrap();
        let routes = Arc::new(Routes::parse(
            "Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT\n\
             veth0 000012C6 00000000 0001 0 0 0 00FFFFFF 0 0 0\n",
            "veth0",
        ));
        let existing = conn
            .connect(&mut stack, Instant::ZERO, None, remote)
            .unwrap();
        let update = |old, new| NextHopUpdate {
            change: NextHopChange {
                hop: *remote.ip(),
                old: Some(old),
                new,
            },
            routes: routes.clone(),
        };
        // a -> b: the existing connection and the start-up table follow;
        // the other destination (its own next hop) keeps a.
        assert_eq!(update(a, Some(b)).apply(&mut stack, Some(&mut conn)), 1);
        assert_eq!(
            stack.info(existing).unwrap().state,
            crate::tcp::State::SynSent
        );
        assert_eq!(conn.next_hop(*remote.ip()), Ok(b));
        assert_eq!(conn.next_hop(*other.ip()), Ok(a));
        // A thread's connect resolved before the change still carries a.
        let now = Instant::ZERO;
        let late = conn.connect_via(&mut stack, now, None, remote, a).unwrap();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        stack.poll(now, &mut frames);
        let dst = |f: &Vec<u8>| MacAddr(f[0..6].try_into().unwrap());
        assert!(!frames.is_empty());
        assert!(
            frames.iter().all(|f| dst(f) == b),
            "existing and late SYNs go to b"
        );
        let _ = late;
        // b -> unreachable: new connects fail, to either MAC.
        update(b, None).apply(&mut stack, Some(&mut conn));
        assert_eq!(
            conn.connect(&mut stack, now, None, remote),
            Err(TcpError::HostUnreachable)
        );
        assert_eq!(
            conn.connect_via(&mut stack, now, None, remote, b),
            Err(TcpError::HostUnreachable)
        );
        assert!(conn.connect(&mut stack, now, None, other).is_ok());
        // Back through c: a and b both mean c now.
        update(b, Some(c)).apply(&mut stack, Some(&mut conn));
        assert_eq!(conn.current_mac(*remote.ip(), a), Ok(c));
        assert_eq!(conn.current_mac(*remote.ip(), b), Ok(c));
        assert_eq!(conn.next_hop(*remote.ip()), Ok(c));
        // A next hop first learnt (no old MAC) leaves nothing to rewrite.
        let learnt = NextHopUpdate {
            change: NextHopChange {
                hop: *other.ip(),
                old: None,
                new: Some(b),
            },
            routes: routes.clone(),
        };
        learnt.apply(&mut stack, Some(&mut conn));
        assert_eq!(conn.changed.len(), 1);
        assert_eq!(conn.next_hop(*other.ip()), Ok(b));
    }

    #[test]
    fn the_cache_serves_stale_entries_and_refuses_unreachable_ones_after_the_grace() {
        let dst = Ipv4Addr::new(198, 18, 0, 1);
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let side = ClientSide {
            ports: Arc::new(ClientPorts {
                addrs: vec![Ipv4Addr::new(198, 18, 0, 2)],
                range: range("20000-20009"),
                workers: 1,
                rss: None,
            }),
            next_hops: Arc::new(HashMap::from([(dst, mac)])),
            gateway_mac: None,
        };
        let routes = Routes::parse(
            "Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT\n\
             xt-no-such-if 000012C6 00000000 0001 0 0 0 00FFFFFF 0 0 0\n",
            "xt-no-such-if",
        );
        // Resolved an hour ago: stale now, still served.
        let now = std::time::Instant::now();
        let hour_ago = now.checked_sub(Duration::from_secs(3600)).unwrap();
        let cache = NextHopCache::with_routes(
            "xt-no-such-if",
            None,
            &side,
            NeighborConfig::default(),
            Duration::from_millis(10),
            routes.clone(),
            hour_ago,
        );
        assert!(cache.tracks(dst));
        assert_eq!(cache.next_hop(dst), Ok(mac));
        // The kernel's entry failed half an hour ago: past the grace.
        let half_hour_ago = now.checked_sub(Duration::from_secs(1800)).unwrap();
        let failed = KernelNeighbor {
            ip: dst,
            ifindex: 1,
            state: neighbor::nud::FAILED,
            mac: None,
            confirmed_ago: None,
        };
        let round = cache.revalidate(half_hour_ago, &[failed], Arc::new(routes.clone()));
        assert!(round.changes.is_empty());
        assert_eq!(round.nudges, vec![dst]);
        assert!(matches!(
            cache.next_hop(dst),
            Err(NeighborError::Unreachable(hop, _)) if hop == dst
        ));
        // Resolved again with a new MAC: served, and announced.
        let new = MacAddr([2, 0, 0, 0, 0, 2]);
        let back = KernelNeighbor {
            state: neighbor::nud::REACHABLE,
            mac: Some(new),
            confirmed_ago: Some(Duration::ZERO),
            ..failed
        };
        let round = cache.revalidate(now, &[back], Arc::new(routes));
        assert_eq!(
            round.changes,
            vec![NextHopChange {
                hop: dst,
                old: Some(mac),
                new: Some(new)
            }]
        );
        assert_eq!(cache.next_hop(dst), Ok(new));
    }

    #[test]
    fn unknown_destinations_and_addresses_are_refused() {
        let ports = Arc::new(ClientPorts {
            addrs: vec![Ipv4Addr::new(198, 18, 0, 2)],
            range: range("20000-20009"),
            workers: 1,
            rss: None,
        });
        let mut c = Connector::new(ports, 0, Arc::new(HashMap::new()), None);
        let mut stack = Stack::new(StackConfig::default(), [1; 32], Instant::ZERO).unwrap();
        let remote: SocketAddrV4 = "198.18.0.1:7".parse().unwrap();
        assert!(matches!(
            c.connect(&mut stack, Instant::ZERO, None, remote),
            Err(TcpError::InvalidInput(_))
        ));
        let mut c = Connector::new(
            c.ports.clone(),
            0,
            Arc::new(HashMap::new()),
            Some(MacAddr([2, 0, 0, 0, 0, 1])),
        );
        assert!(c.connect(&mut stack, Instant::ZERO, None, remote).is_ok());
        assert!(matches!(
            c.connect(
                &mut stack,
                Instant::ZERO,
                Some(Ipv4Addr::new(198, 18, 0, 77)),
                remote
            ),
            Err(TcpError::InvalidInput(_))
        ));
    }
}
