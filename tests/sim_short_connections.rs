//! Issue 5's `short` workload in the simulator, on virtual time: closed
//! loops that connect, send one 64-byte request, read the echo and close
//! (the client closes first and keeps TIME-WAIT), against an echo server.
//!
//! What it shows: no loop ever waits for anything but round trips. Each
//! exchange costs exactly two round trips (SYN/SYN-ACK, then request/
//! response; the FINs overlap the next handshake), no SYN waits for a
//! retransmission, the client's TIME-WAIT tuples are reused after 1 s
//! (RFC 6191 with timestamps, as Linux's tcp_tw_reuse) so a small port
//! range sustains the rate, and the server holds no TIME-WAIT. With more
//! loops than the port range can feed, the loops run at the range's rate
//! and their retries do not walk the range again and again.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use xdp_tcp::sim::link::Impairments;
use xdp_tcp::sim::network::{HostId, Network};
use xdp_tcp::tcp::{ConnId, Event, Instant, StackConfig, TcpError};
use xdp_tcp::wire::MacAddr;

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const ONE_WAY: Duration = Duration::from_millis(1);
const REQUEST: [u8; 64] = [b'r'; 64];

struct Loops {
    net: Network,
    client: HostId,
    server: HostId,
    server_addr: SocketAddrV4,
    /// The connection each loop runs now.
    conns: Vec<Option<ConnId>>,
    exchanges: Vec<u64>,
    /// Loops whose connect found every local port busy, to retry.
    waiting: Vec<usize>,
    /// Connects that failed so.
    port_waits: u64,
    buf: [u8; 256],
}

impl Loops {
    fn new(loops: usize, ports: (u16, u16)) -> Loops {
        let start = Instant::from_secs(1);
        let mut net = Network::new(start);
        let client_cfg = StackConfig {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ephemeral_ports: ports,
            ..StackConfig::default()
        };
        let server_cfg = StackConfig {
            mac: MacAddr([2, 0, 0, 0, 0, 2]),
            ..StackConfig::default()
        };
        let client = net.add_host(CLIENT_IP, client_cfg, [7; 32]).unwrap();
        let server = net.add_host(SERVER_IP, server_cfg, [9; 32]).unwrap();
        let link = Impairments {
            delay: ONE_WAY,
            ..Impairments::default()
        };
        net.connect(client, server, link.clone(), link, 5);
        let server_addr = SocketAddrV4::new(SERVER_IP, 7);
        net.stack(server).listen(server_addr, 1024).unwrap();
        Loops {
            net,
            client,
            server,
            server_addr,
            conns: vec![None; loops],
            exchanges: vec![0; loops],
            waiting: Vec::new(),
            port_waits: 0,
            buf: [0; 256],
        }
    }

    fn connect(&mut self, i: usize) {
        let now = self.net.now();
        let mac = self.net.host(self.server).mac;
        let local = SocketAddrV4::new(CLIENT_IP, 0);
        match self
            .net
            .stack(self.client)
            .connect(now, local, self.server_addr, mac)
        {
            Ok(id) => self.conns[i] = Some(id),
            Err(TcpError::AddrNotAvailable) => {
                self.port_waits += 1;
                self.conns[i] = None;
                self.waiting.push(i);
            }
            Err(e) => panic!("connect: {e:?}"),
        }
    }

    /// Loops waiting for a port try again.
    fn retry_waiting(&mut self) {
        for i in std::mem::take(&mut self.waiting) {
            self.connect(i);
        }
    }

    /// The echo server and the client loops, on what was delivered.
    fn applications(&mut self) {
        let server = self.net.stack(self.server);
        while let Some(ev) = server.next_event() {
            let conn = match ev {
                Event::Accepted { listener, .. } => server.accept(listener).unwrap(),
                Event::Readable(c) => c,
                Event::Closed { conn, reason } => panic!("server: {conn:?} closed: {reason:?}"),
                _ => continue,
            };
            loop {
                match server.recv(conn, &mut self.buf) {
                    Ok(0) => {
                        server.close(conn).unwrap();
                        break;
                    }
                    Ok(n) => assert_eq!(server.send(conn, &self.buf[..n]).unwrap(), n),
                    Err(_) => break,
                }
            }
        }
        let mut reopen = Vec::new();
        let client = self.net.stack(self.client);
        while let Some(ev) = client.next_event() {
            match ev {
                Event::Connected(c) => {
                    client.set_nodelay(c, true).unwrap();
                    assert_eq!(client.send(c, &REQUEST).unwrap(), REQUEST.len());
                }
                Event::Readable(c) => {
                    let n = client.recv(c, &mut self.buf).unwrap();
                    assert_eq!(&self.buf[..n], &REQUEST[..], "the echo is the request");
                    client.close(c).unwrap();
                    let i = self.conns.iter().position(|&x| x == Some(c)).unwrap();
                    self.exchanges[i] += 1;
                    reopen.push(i);
                }
                Event::Closed { conn, reason } => panic!("client: {conn:?} closed: {reason:?}"),
                _ => {}
            }
        }
        // Closed loop: the next connection starts at once.
        for i in reopen {
            self.connect(i);
        }
    }

    /// Runs every loop for `duration` of virtual time; a loop that finds
    /// no free port retries every `RETRY` (a client's poll loop).
    fn run(&mut self, duration: Duration) {
        const RETRY: Duration = Duration::from_micros(100);
        for i in 0..self.conns.len() {
            self.connect(i);
        }
        let end = self.net.now() + duration;
        loop {
            let mut t = self.net.next_event_time().unwrap_or(end);
            if !self.waiting.is_empty() {
                t = t.min(self.net.now() + RETRY);
            }
            if t > end {
                break;
            }
            self.net.deliver_to(t);
            self.applications();
            self.retry_waiting();
            self.net.flush();
        }
    }
}

#[test]
fn closed_short_loops_wait_only_for_round_trips() {
    let loops = 16;
    // 16 loops at 2 round trips of 2 ms: 4000 connections/s. 5000 ports
    // cycle every 1.25 s: every tuple comes back after its 1 s of
    // TIME-WAIT, so each reuse succeeds at the first port tried.
    let mut l = Loops::new(loops, (20_000, 24_999));
    let seconds = 5;
    l.run(Duration::from_secs(seconds));
    let rtt = 2 * ONE_WAY;
    let ideal = (Duration::from_secs(seconds).as_micros() / (2 * rtt).as_micros()) as u64;
    for (i, &n) in l.exchanges.iter().enumerate() {
        // Every loop ran back to back (the last exchange may be cut off).
        assert!(
            n + 1 >= ideal,
            "loop {i}: {n} exchanges in {seconds} s, {ideal} at two round trips each"
        );
    }
    let client = *l.net.stack(l.client).stats();
    let server = *l.net.stack(l.server).stats();
    let total: u64 = l.exchanges.iter().sum();
    // No SYN (or anything else) was retransmitted: nothing waited for a timer.
    let totals = l.net.stack(l.client).totals();
    assert_eq!(totals.retransmits, 0, "client: {totals:?}");
    assert_eq!(l.net.stack(l.server).totals().retransmits, 0);
    assert_eq!(server.listen_drops, 0);
    // The port range was cycled and TIME-WAIT tuples reused.
    assert!(total > 5000, "{total} connections");
    assert!(client.time_wait_reused > total - 5000 - loops as u64);
    // The client closes first: the server's connections all finished and
    // none waits in TIME-WAIT.
    assert!(l.net.stack(l.server).connection_count() <= loops);
    assert_eq!(server.time_wait_recycled, 0);
    assert_eq!(l.port_waits, 0);
}

#[test]
fn loops_beyond_the_port_space_run_at_its_rate_without_rescanning_it() {
    // 16 loops would open 4000 connections/s; 1000 ports, each reusable
    // 1 s after its connection entered TIME-WAIT, supply 1000/s once the
    // first pass is spent.
    let loops = 16;
    let ports = 1000;
    let mut l = Loops::new(loops, (20_000, 20_000 + ports - 1));
    let seconds = 5;
    l.run(Duration::from_secs(seconds));
    let total: u64 = l.exchanges.iter().sum();
    let client = *l.net.stack(l.client).stats();
    // Every tuple is used once in the first ~0.25 s, then each comes back
    // after its second of rest: about `ports` per second from t = 1 s on.
    let supply = ports as u64 * seconds;
    assert!(
        total + 2 * loops as u64 >= supply && total <= supply + ports as u64,
        "{total} connections in {seconds} s from {ports} ports"
    );
    assert!(client.time_wait_reused >= total - ports as u64 - loops as u64);
    // Loops waited for ports over and over (every 100 us), but a walk over
    // the whole range happened only when a tuple could have become free:
    // at most once per connection reusing one.
    assert!(l.port_waits > 10 * total, "{} waits", l.port_waits);
    assert!(
        client.exhausted_port_scans <= client.time_wait_reused + 1,
        "{} walks of the range for {} reuses",
        client.exhausted_port_scans,
        client.time_wait_reused
    );
    assert_eq!(l.net.stack(l.client).totals().retransmits, 0);
}
