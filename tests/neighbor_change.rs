//! A next hop that changes its MAC (a host replaced, a failover without a
//! virtual MAC) on a real link: the fast path in the client namespace
//! talks to the Linux kernel in the server namespace, the server's
//! interface gets a new MAC (`ip link set dev X address ...`), and both a
//! connection that existed before and new connects keep working once the
//! runtime's neighbour monitor has re-verified the next hop (RFC 1122
//! §2.3.2.1, RFC 4861 §7.3). Frames to the old MAC are dropped by the
//! server (PACKET_OTHERHOST), so nothing works without the re-verification.
//!
//! The times are short by configuration: the runtime's reachable time
//! (1 s), check interval (100 ms) and grace, and the client namespace's
//! kernel neighbour timings (DELAY 1 s, probes every 200 ms). No timing
//! is asserted: every wait is bounded by a generous timeout.
//!
//! Needs root; without it every test says loudly that it was skipped.

#[path = "support/fastpath.rs"]
mod fastpath;
#[path = "support/netns.rs"]
mod netns;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::time::Duration;

use fastpath::kernel_echo;
use netns::{Child, Offloads, Testbed, TestbedOptions};
use xdp_tcp::app::Stream;
use xdp_tcp::runtime::{start_threaded, ClientConfig, NeighborConfig, ThreadedConfig};
use xdp_tcp::xdp::XdpMode;

const ECHO_PORT: u16 = 7000;
/// The fast path's own listener in the passive test.
const FAST_PORT: u16 = 7100;
/// What the server's interface is changed to (differs from the
/// testbed's, which the script takes from the kernel: checked below).
const NEW_MAC: &str = "02:5e:1b:00:00:77";

/// How the change happens (the child's first argument).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The server announces its new MAC (arp_notify: gratuitous ARP).
    ActiveAnnounced,
    /// It does not: only the kernel's verification finds it.
    ActiveSilent,
    /// The fast path is the server; the kernel client changes its MAC.
    Passive,
    /// No change: a next hop resolved for a connect, then left unused,
    /// stops being verified and is forgotten.
    Unused,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::ActiveAnnounced => "announced",
            Mode::ActiveSilent => "silent",
            Mode::Passive => "passive",
            Mode::Unused => "unused",
        }
    }

    fn parse(s: &str) -> Mode {
        match s {
            "announced" => Mode::ActiveAnnounced,
            "silent" => Mode::ActiveSilent,
            "passive" => Mode::Passive,
            "unused" => Mode::Unused,
            other => panic!("unknown mode {other}"),
        }
    }
}

/// Runs [`neighbor_child`] in the client namespace and waits for its
/// verdict.
fn run(name: &str, mode: Mode) {
    let Some(tb) = Testbed::up(name, TestbedOptions::default()) else {
        return;
    };
    assert_ne!(tb.server_mac, NEW_MAC, "pick another NEW_MAC");
    // The fast path verifies checksums: the kernel end sends them whole.
    tb.set_offloads(None, Some(Offloads::Off));
    let _echo = (mode != Mode::Passive).then(|| kernel_echo(&tb, ECHO_PORT));
    let spec = format!(
        "{} {} {} {} {} {}",
        mode.name(),
        tb.client_if,
        tb.client_ip,
        tb.server_ns,
        tb.server_if,
        tb.server_ip
    );
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = tb.in_client(exe.to_str().expect("utf-8 path"));
    cmd.args([
        "neighbor_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("XDP_TCP_NEIGH", spec);
    let mut child = Child::spawn(cmd).expect("spawn the child");
    let line = child
        .wait_for_line("neighbor-result ", Duration::from_secs(240))
        .unwrap_or_else(|e| {
            panic!(
                "the fast path did not follow the MAC change: {e}\nstdout: {}\nstderr: {}",
                child.stdout_so_far(),
                child.stderr_so_far()
            )
        });
    let changes: u64 = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("changes="))
        .and_then(|v| v.parse().ok())
        .expect("changes=N in the result");
    if mode == Mode::Unused {
        assert_eq!(changes, 0, "nothing changed: {line}");
    } else {
        assert!(changes >= 1, "the monitor reported no change: {line}");
    }
}

#[test]
fn an_announced_mac_change_is_followed_by_existing_and_new_connections() {
    run("nba", Mode::ActiveAnnounced);
}

#[test]
fn a_silent_mac_change_is_found_by_verification() {
    run("nbs", Mode::ActiveSilent);
}

#[test]
fn a_passive_connection_follows_its_peer_to_a_new_mac() {
    run("nbp", Mode::Passive);
}

#[test]
fn a_next_hop_left_unused_is_no_longer_verified_and_is_forgotten() {
    run("nbu", Mode::Unused);
}

/// Writes `msg` and reads the same bytes back.
fn echo(stream: &mut Stream, msg: &[u8]) {
    stream.write_all(msg).expect("write");
    read_back(stream, msg);
}

fn read_back(stream: &mut Stream, msg: &[u8]) {
    let mut got = vec![0u8; msg.len()];
    stream.read_exact(&mut got).expect("read the echo back");
    assert_eq!(got, msg);
}

/// Short kernel neighbour timings on `iface` in this namespace, so the
/// kernel's own verification (DELAY, then unicast probes, then a new
/// broadcast request) takes about two seconds instead of about nine.
fn quick_kernel_neighbour_timings(iface: &str) {
    for (knob, value) in [
        ("base_reachable_time_ms", "1000"),
        ("delay_first_probe_time", "1"),
        ("retrans_time_ms", "200"),
    ] {
        let path = format!("/proc/sys/net/ipv4/neigh/{iface}/{knob}");
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// Gives the server namespace's interface a new MAC, announced by a
/// gratuitous ARP (arp_notify) when `announce`.
fn change_mac(ns: &str, iface: &str, announce: bool) {
    let notify = if announce { "1" } else { "0" };
    let sysctl = format!("net.ipv4.conf.{iface}.arp_notify={notify}");
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    };
    ip(&["netns", "exec", ns, "sysctl", "-qw", &sysctl]);
    ip(&["-n", ns, "link", "set", "dev", iface, "address", NEW_MAC]);
}

/// The child side of [`run`], in the client namespace; does nothing
/// unless started by it.
#[test]
#[ignore = "helper run by the other tests inside the client namespace"]
fn neighbor_child() {
    let Ok(spec) = std::env::var("XDP_TCP_NEIGH") else {
        return;
    };
    let f: Vec<&str> = spec.split(' ').collect();
    let mode = Mode::parse(f[0]);
    let (client_if, client_ip) = (f[1], f[2].parse::<Ipv4Addr>().unwrap());
    let (server_ns, server_if) = (f[3], f[4]);
    let server_ip: Ipv4Addr = f[5].parse().unwrap();
    quick_kernel_neighbour_timings(client_if);

    let ports: &[u16] = if mode == Mode::Passive {
        &[FAST_PORT]
    } else {
        &[]
    };
    let mut config = ThreadedConfig::new(client_if, client_ip, ports);
    config.fast_path.xdp_mode = XdpMode::Native;
    config.fast_path.drain = Duration::from_millis(200);
    config.fast_path.neighbor = NeighborConfig {
        base_reachable_time: Duration::from_secs(1),
        failure_grace: Duration::from_secs(3),
        check_interval: Duration::from_millis(100),
        unused_time: Duration::from_secs(2),
    };
    if mode != Mode::Passive {
        config.fast_path.client = Some(ClientConfig {
            local_ports: Some("20000-29999".parse().unwrap()),
            // Unused: resolved on demand, as a proxy's backends are.
            targets: if mode == Mode::Unused {
                Vec::new()
            } else {
                vec![server_ip]
            },
            ..ClientConfig::default()
        });
    }
    let server = start_threaded(config).expect("start the fast path");
    match mode {
        Mode::Passive => passive(&server, client_ip, server_ns, server_if),
        Mode::Unused => unused(&server, SocketAddrV4::new(server_ip, ECHO_PORT)),
        _ => active(
            &server,
            SocketAddrV4::new(server_ip, ECHO_PORT),
            server_ns,
            server_if,
            mode == Mode::ActiveAnnounced,
        ),
    }
    let changes = server.next_hop_changes();
    server.shutdown().expect("stop the fast path");
    println!("\nneighbor-result ok changes={changes}");
}

fn active(
    server: &xdp_tcp::runtime::ThreadedServer,
    target: SocketAddrV4,
    server_ns: &str,
    server_if: &str,
    announce: bool,
) {
    let connector = server.connector();
    let connect = || {
        let s = connector
            .connect_timeout(target, Duration::from_secs(60))
            .expect("connect to the kernel echo server");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s
    };
    let mut existing = connect();
    echo(&mut existing, b"before the change");

    change_mac(server_ns, server_if, announce);
    // Sent at once, most likely to the old MAC: it arrives by a
    // retransmission to the new one.
    let pending = b"sent by the existing connection right after the change";
    existing.write_all(pending).expect("write");
    // A new connect whose SYN may go to the old MAC too.
    let mut early = connect();
    echo(&mut early, b"a connection opened right after the change");
    read_back(&mut existing, pending);
    echo(&mut existing, b"and the existing connection goes on");
    // Connects after the change was learnt.
    for i in 0..3 {
        let mut s = connect();
        echo(&mut s, format!("fresh connection {i}").as_bytes());
    }
}

/// A next hop resolved for connects is verified while they go on, no
/// longer once they stop, and forgotten after the unused time (2 s);
/// a later connect resolves it again.
fn unused(server: &xdp_tcp::runtime::ThreadedServer, target: SocketAddrV4) {
    let monitor = server.neighbor_monitor().expect("a neighbour monitor");
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let connector = server.connector();
    let connect = || {
        let mut s = connector
            .connect_timeout(target, Duration::from_secs(60))
            .expect("connect to the kernel echo server");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        echo(&mut s, b"through the next hop");
    };
    assert_eq!(server.next_hops_tracked(), 0);
    connect();
    assert_eq!(server.next_hops_tracked(), 1);
    // Connects for 3 s, longer than the unused time: the entry stays.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        connect();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count(&monitor.forgotten), 0, "forgotten while in use");
    assert_eq!(server.next_hops_tracked(), 1);
    // Then none: forgotten within the unused time plus a few rounds.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count(&monitor.forgotten) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "an unused next hop was never forgotten"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.next_hops_tracked(), 0);
    // Nothing verifies it any more: the kernel is not made to probe a
    // next hop nobody sends to.
    let nudges = count(&monitor.nudges);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count(&monitor.nudges),
        nudges,
        "an unused next hop is still verified"
    );
    // A new connect resolves it again.
    connect();
    assert_eq!(server.next_hops_tracked(), 1);
    assert_eq!(count(&monitor.forgotten), 1);
}

/// A kernel client in the server namespace: connects, then echoes each
/// stdin line over TCP and prints what came back.
const PEER_PY: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
print("connected", flush=True)
for line in sys.stdin:
    data = line.strip().encode()
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            print("eof", flush=True)
            sys.exit(1)
        got += chunk
    print("echo " + got.decode(), flush=True)
"#;

/// Kills the peer process however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn passive(
    server: &xdp_tcp::runtime::ThreadedServer,
    client_ip: Ipv4Addr,
    server_ns: &str,
    server_if: &str,
) {
    let listener = server.listener(FAST_PORT).expect("listener");
    let echo_thread = std::thread::spawn(move || {
        let mut s = listener.accept().expect("accept");
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => s.write_all(&buf[..n]).expect("echo"),
            }
        }
    });
    let mut peer = KillOnDrop(
        Command::new("ip")
            .args(["netns", "exec", server_ns, "python3", "-c", PEER_PY])
            .args([&client_ip.to_string(), &FAST_PORT.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the kernel peer"),
    );
    let mut stdin = peer.0.stdin.take().unwrap();
    let mut lines = BufReader::new(peer.0.stdout.take().unwrap()).lines();
    let mut next_line = || {
        let line = lines.next().and_then(Result::ok);
        eprintln!(
            "peer: {line:?}; next-hop changes so far: {}",
            server.next_hop_changes()
        );
        line.unwrap_or_default()
    };
    assert_eq!(next_line(), "connected");
    writeln!(stdin, "before").unwrap();
    assert_eq!(next_line(), "echo before");
    // The peer moves to a new MAC without announcing it; it learns ours
    // again by ARP, which tells our kernel its new MAC.
    change_mac(server_ns, server_if, false);
    eprintln!("changed the peer's MAC");
    writeln!(stdin, "after").unwrap();
    assert_eq!(next_line(), "echo after");
    writeln!(stdin, "again").unwrap();
    assert_eq!(next_line(), "echo again");
    drop(stdin);
    drop(peer);
    let _ = echo_thread.join();
}
