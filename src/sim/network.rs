//! Hosts (one [`Stack`] each) joined by directed [`Link`]s, on a virtual clock.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::sim::link::{Impairments, Link, LinkStats};
use crate::tcp::{Instant, Stack, StackConfig, Transmit};
use crate::wire::{EthernetFrame, MacAddr};

/// Index of a host in its [`Network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostId(pub usize);

/// One simulated machine.
pub struct Host {
    pub stack: Stack,
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
}

/// Collects frames a stack emits during one poll, reusing buffers.
#[derive(Default)]
struct FrameSink {
    frames: Vec<Vec<u8>>,
    pool: Vec<Vec<u8>>,
}

impl Transmit for FrameSink {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.resize(len, 0);
        let n = fill(&mut buf);
        buf.truncate(n);
        self.frames.push(buf);
        true
    }
}

/// The simulated network. Frames are routed by destination MAC to the
/// directed link from their sender to that host.
pub struct Network {
    now: Instant,
    hosts: Vec<Host>,
    links: Vec<(usize, usize, Link)>,
    link_index: HashMap<(usize, usize), usize>,
    by_mac: HashMap<MacAddr, usize>,
    sink: FrameSink,
    scratch: Vec<u8>,
    /// Frames with no route (unknown MAC or no link).
    pub unroutable: u64,
    /// Print every delivered segment to stderr, tcpdump style.
    pub trace: bool,
    /// Sees every frame a host sends, `(now, from, to, frame)`, before its
    /// link does; returning true drops it. For scenarios that must lose
    /// exactly chosen segments.
    pub filter: Option<FrameFilter>,
    /// Frames the filter dropped.
    pub filtered: u64,
}

/// See [`Network::filter`].
pub type FrameFilter = Box<dyn FnMut(Instant, usize, usize, &[u8]) -> bool>;

impl Network {
    pub fn new(start: Instant) -> Network {
        Network {
            now: start,
            hosts: Vec::new(),
            links: Vec::new(),
            link_index: HashMap::new(),
            by_mac: HashMap::new(),
            sink: FrameSink::default(),
            scratch: Vec::with_capacity(2048),
            unroutable: 0,
            trace: false,
            filter: None,
            filtered: 0,
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Adds a host with a stack built from `config` (its MAC is `config.mac`).
    pub fn add_host(
        &mut self,
        ip: Ipv4Addr,
        config: StackConfig,
        entropy: [u8; 32],
    ) -> Result<HostId, String> {
        let mac = config.mac;
        if self.by_mac.contains_key(&mac) {
            return Err(format!("duplicate MAC {mac}"));
        }
        let stack = Stack::new(config, entropy, self.now)?;
        self.hosts.push(Host { stack, mac, ip });
        let id = self.hosts.len() - 1;
        self.by_mac.insert(mac, id);
        Ok(HostId(id))
    }

    /// Joins two hosts with a link in each direction.
    pub fn connect(
        &mut self,
        a: HostId,
        b: HostId,
        a_to_b: Impairments,
        b_to_a: Impairments,
        seed: u64,
    ) {
        self.add_link(a, b, a_to_b, seed);
        self.add_link(b, a, b_to_a, seed ^ 0x5bd1_e995_7f4a_7c15);
    }

    fn add_link(&mut self, from: HostId, to: HostId, imp: Impairments, seed: u64) {
        self.link_index.insert((from.0, to.0), self.links.len());
        self.links.push((from.0, to.0, Link::new(imp, seed)));
    }

    pub fn host(&self, id: HostId) -> &Host {
        &self.hosts[id.0]
    }

    pub fn host_mut(&mut self, id: HostId) -> &mut Host {
        &mut self.hosts[id.0]
    }

    pub fn stack(&mut self, id: HostId) -> &mut Stack {
        &mut self.hosts[id.0].stack
    }

    pub fn link_stats(&self, from: HostId, to: HostId) -> Option<LinkStats> {
        self.link_index
            .get(&(from.0, to.0))
            .map(|&i| self.links[i].2.stats())
    }

    /// The earliest time anything is scheduled: a delivery or a stack's poll.
    pub fn next_event_time(&self) -> Option<Instant> {
        let links = self.links.iter().filter_map(|(_, _, l)| l.next_delivery());
        let stacks = self.hosts.iter().filter_map(|h| h.stack.poll_at());
        links.chain(stacks).min().map(|t| t.max(self.now))
    }

    /// Moves the clock to `t` (never backwards), delivers every frame due,
    /// then polls every stack and puts what they send on the links.
    pub fn advance_to(&mut self, t: Instant) {
        self.deliver_to(t);
        self.flush();
    }

    /// The first half of [`advance_to`](Self::advance_to): moves the clock
    /// to `t` (never backwards) and delivers every frame due, without
    /// polling. Applications then run on what arrived before
    /// [`flush`](Self::flush) sends — the order of a worker's loop (receive
    /// batch, application handlers, one flush), in which a response rides
    /// on the ACK of its request.
    pub fn deliver_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
        let now = self.now;
        for i in 0..self.links.len() {
            let to = self.links[i].1;
            while self.links[i].2.deliver(now, &mut self.scratch) {
                if self.trace {
                    trace_frame(now, self.links[i].0, to, &self.scratch);
                }
                self.hosts[to].stack.receive(now, &self.scratch);
            }
        }
    }

    /// The second half of [`advance_to`](Self::advance_to): polls every
    /// stack at the current time and puts what they send on the links.
    pub fn flush(&mut self) {
        let now = self.now;
        for from in 0..self.hosts.len() {
            self.hosts[from].stack.poll(now, &mut self.sink);
            let frames = std::mem::take(&mut self.sink.frames);
            for frame in frames {
                self.route(from, &frame);
                self.sink.pool.push(frame);
            }
        }
    }

    fn route(&mut self, from: usize, frame: &[u8]) {
        let dst = match EthernetFrame::new_checked(frame) {
            Ok(f) => f.dst_addr(),
            Err(_) => {
                self.unroutable += 1;
                return;
            }
        };
        let Some(&to) = self.by_mac.get(&dst) else {
            self.unroutable += 1;
            return;
        };
        if let Some(filter) = self.filter.as_mut() {
            if filter(self.now, from, to, frame) {
                self.filtered += 1;
                return;
            }
        }
        match self.link_index.get(&(from, to)) {
            Some(&i) => self.links[i].2.send(self.now, frame),
            None => self.unroutable += 1,
        }
    }

    /// Injects a raw frame on the link from `from` to `to`, as if `from` sent it.
    pub fn inject(&mut self, from: HostId, to: HostId, frame: &[u8]) {
        if let Some(&i) = self.link_index.get(&(from.0, to.0)) {
            self.links[i].2.send(self.now, frame);
        }
    }
}

/// One line per delivered frame: time, hosts, flags, seq, ack, length, window.
fn trace_frame(now: Instant, from: usize, to: usize, frame: &[u8]) {
    match crate::wire::parse_tcp_frame(frame, true) {
        Ok(f) => eprintln!(
            "{now} h{from}>h{to} {:?} seq {} ack {} len {} win {}",
            f.tcp.flags,
            f.tcp.seq,
            f.tcp.ack,
            f.payload.len(),
            f.tcp.window
        ),
        Err(e) => eprintln!("{now} h{from}>h{to} undecodable frame ({e})"),
    }
}
