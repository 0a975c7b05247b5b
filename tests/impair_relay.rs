//! `xdp-tcp impair` on its own: a bridge testbed (client and server
//! namespaces on one subnet, the relay in the router namespace between
//! them) carrying UDP datagrams from kernel sockets, with the relay's
//! counters checked against what the receiver got. No fast path, no
//! timing assertions: only counts. The model's own properties (seeded
//! reproducibility, rates, bursts) are tested in `src/sim/link.rs`.
//!
//! Needs root for the namespaces, except the flag checks at the end.

#[path = "support/netns.rs"]
mod netns;

use std::time::Duration;

use netns::{Child, Testbed, TestbedOptions};

const BIN: &str = env!("CARGO_BIN_EXE_xdp-tcp");
const DATAGRAMS: u64 = 200;
const PORT: &str = "5005";

/// Counts UDP datagrams until none arrives for 2 s (after `ready`).
const RECEIVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
s.settimeout(8.0)
n = 0
try:
    while True:
        s.recv(2048)
        n += 1
        s.settimeout(2.0)
except socket.timeout:
    pass
print("received", n, flush=True)
"#;

/// Sends N datagrams of 100 bytes, 1 ms apart.
const SENDER: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(i.to_bytes(4, "big") * 25, (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.001)
print("sent", flush=True)
"#;

fn bridge(name: &str) -> Option<Testbed> {
    Testbed::up(
        name,
        TestbedOptions {
            bridge: true,
            ..TestbedOptions::default()
        },
    )
}

/// Runs the relay with `args`, sends [`DATAGRAMS`] from the client to the
/// server, stops the relay; returns (datagrams received, relay stdout).
fn udp_through_relay(tb: &Testbed, args: &[&str]) -> (u64, String) {
    let rc = tb.fact("router_client_if").expect("router_client_if");
    let rs = tb.fact("router_server_if").expect("router_server_if");
    let mut cmd = tb.in_router(BIN);
    cmd.args(["impair", "--a", rc, "--b", rs]).args(args);
    let mut relay = Child::spawn(cmd).expect("spawn the relay");
    relay
        .wait_for_line("ready", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("relay not ready: {e}"));

    let server_ip = tb.server_ip.to_string();
    let mut rx = tb.in_server("python3");
    rx.args(["-c", RECEIVER, &server_ip, PORT]);
    let mut receiver = Child::spawn(rx).expect("spawn the receiver");
    receiver
        .wait_for_line("ready", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("receiver not ready: {e}"));
    let out = tb.run_client(&[
        "python3",
        "-c",
        SENDER,
        &server_ip,
        PORT,
        &DATAGRAMS.to_string(),
    ]);
    assert!(
        out.status.success(),
        "sender: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = receiver
        .wait_for_line("received", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("receiver: {e}"));
    let received = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a count");

    relay.signal(15);
    let status = relay
        .wait_exit(Duration::from_secs(10))
        .expect("the relay exits on SIGTERM");
    assert!(status.success(), "relay: {}", relay.stderr_so_far());
    (received, relay.stdout_so_far())
}

/// A counter of one direction's `stats dir=...` line.
fn stat(out: &str, dir: &str, key: &str) -> u64 {
    out.lines()
        .find(|l| l.starts_with(&format!("stats dir={dir} ")))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} for {dir} in:\n{out}"))
}

#[test]
fn total_loss_delivers_nothing_but_arp_still_passes() {
    let Some(tb) = bridge("ls") else { return };
    let (received, out) = udp_through_relay(&tb, &["--loss", "100%"]);
    assert_eq!(received, 0, "{out}");
    // a = the client side: every datagram offered and dropped.
    assert_eq!(stat(&out, "a->b", "offered"), DATAGRAMS, "{out}");
    assert_eq!(stat(&out, "a->b", "dropped_random"), DATAGRAMS, "{out}");
    assert_eq!(stat(&out, "a->b", "delivered"), 0, "{out}");
    // The client resolved the server's MAC: ARP is not impaired.
    assert!(stat(&out, "a->b", "passed_unimpaired") >= 1, "{out}");
    assert!(stat(&out, "b->a", "passed_unimpaired") >= 1, "{out}");
    assert_eq!(stat(&out, "b->a", "offered"), 0, "{out}");
}

#[test]
fn total_duplication_doubles_every_datagram_after_the_delay() {
    let Some(tb) = bridge("dup") else { return };
    let (received, out) = udp_through_relay(&tb, &["--duplicate", "100%", "--delay", "50ms"]);
    assert_eq!(received, 2 * DATAGRAMS, "{out}");
    assert_eq!(stat(&out, "a->b", "offered"), DATAGRAMS, "{out}");
    assert_eq!(stat(&out, "a->b", "duplicated"), DATAGRAMS, "{out}");
    assert_eq!(stat(&out, "a->b", "delivered"), 2 * DATAGRAMS, "{out}");
    assert_eq!(stat(&out, "a->b", "dropped"), 0, "{out}");
    assert_eq!(stat(&out, "a->b", "pending_at_exit"), 0, "{out}");
}

#[test]
fn partial_loss_accounts_for_every_datagram() {
    let Some(tb) = bridge("pl") else { return };
    let (received, out) = udp_through_relay(&tb, &["--loss", "30%", "--seed", "7"]);
    let dropped = stat(&out, "a->b", "dropped_random");
    assert_eq!(stat(&out, "a->b", "offered"), DATAGRAMS, "{out}");
    assert_eq!(received + dropped, DATAGRAMS, "{out}");
    // 30 % of 200: the odds of fewer than 20 or more than 100 are nil.
    assert!((20..=100).contains(&dropped), "{dropped} dropped:\n{out}");
}

#[test]
fn bad_flags_exit_non_zero_and_say_what_to_fix() {
    let cases: &[(&[&str], &str)] = &[
        (&["--loss", "5"], "% sign"),
        (&["--loss", "150%"], "from 0% to 100%"),
        (&["--delay", "20"], "unit"),
        (&["--rate", "100mb"], "unknown unit"),
        (&["--queue", "64K"], "give --rate"),
        (&["--burst-loss", "1%"], "P,R"),
    ];
    for (args, want) in cases {
        let out = std::process::Command::new(BIN)
            .args(["impair", "--a", "x0", "--b", "x1"])
            .args(*args)
            .output()
            .expect("run xdp-tcp");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(want), "{args:?}: wanted {want:?} in:\n{err}");
    }
    // An interface that does not exist is named.
    let out = std::process::Command::new(BIN)
        .args(["impair", "--a", "nosuch-if0", "--b", "nosuch-if1"])
        .output()
        .expect("run xdp-tcp");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("nosuch-if0") && err.contains("ip link"),
        "{err}"
    );
    let out = std::process::Command::new(BIN)
        .args(["impair", "--a", "lo", "--b", "lo"])
        .output()
        .expect("run xdp-tcp");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("two different interfaces"));
}
