//! Open-loop `short` on the fast-path load client, in the simulator on
//! virtual time: the client's [`LoadApp`] against the `echo` app over a
//! link of 1 ms each way.
//!
//! What it shows: each exchange's connect goes out at the exchange's
//! scheduled time, not earlier (a connection opened ahead of its time
//! would hide the handshake from the latency), and the latency is timed
//! from the scheduled time, so it is two round trips (SYN/SYN-ACK, then
//! request/response) when the client keeps up, and includes any delay
//! in starting when it does not (coordinated omission, as wrk2 and the
//! kernel client count it).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use xdp_tcp::app::echo::Echo;
use xdp_tcp::load::{LoadApp, LoadReport, LoadSpec, Pacer, Workload};
use xdp_tcp::runtime::{ClientPorts, Connector};
use xdp_tcp::sim::link::Impairments;
use xdp_tcp::sim::network::{HostId, Network};
use xdp_tcp::tcp::{Instant, StackConfig};
use xdp_tcp::wire::MacAddr;

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const ONE_WAY: Duration = Duration::from_millis(1);
/// The applications run every `STEP` of virtual time, as a worker's loop.
const STEP: Duration = Duration::from_micros(50);
/// 8 loops, 100 exchanges/s each: one every 10 ms, staggered by 1.25 ms;
/// an exchange takes two round trips (4 ms), so the client keeps up.
const LOOPS: usize = 8;
const RATE: f64 = 800.0;

#[path = "support/app_events.rs"]
mod app_events;
use app_events::dispatch;

struct Bench {
    net: Network,
    client: HostId,
    server: HostId,
    connector: Connector,
    load: LoadApp,
    echo: Echo,
}

impl Bench {
    fn new(spec: &LoadSpec) -> Bench {
        let mut net = Network::new(Instant::from_secs(1));
        let (client_mac, server_mac) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let config = |mac| StackConfig {
            mac,
            ..StackConfig::default()
        };
        let client = net
            .add_host(CLIENT_IP, config(client_mac), [7; 32])
            .unwrap();
        let server = net
            .add_host(SERVER_IP, config(server_mac), [9; 32])
            .unwrap();
        let link = Impairments {
            delay: ONE_WAY,
            ..Impairments::default()
        };
        net.connect(client, server, link.clone(), link, 3);
        net.stack(server).listen(spec.target, 1024).unwrap();
        let connector = Connector::new(
            Arc::new(ClientPorts {
                addrs: vec![CLIENT_IP],
                range: "20000-29999".parse().unwrap(),
                workers: 1,
                rss: None,
            }),
            0,
            Arc::new(HashMap::from([(SERVER_IP, server_mac)])),
            None,
        );
        Bench {
            net,
            client,
            server,
            connector,
            load: LoadApp::standalone(spec),
            echo: Echo::new(),
        }
    }

    /// One step of virtual time: deliveries, the applications (the
    /// client's only when `client_runs`), then what the stacks send.
    fn step(&mut self, client_runs: bool) {
        let now = self.net.now() + STEP;
        self.net.deliver_to(now);
        dispatch(self.net.stack(self.server), &mut self.echo, now, None);
        if client_runs {
            dispatch(
                self.net.stack(self.client),
                &mut self.load,
                now,
                Some(&mut self.connector),
            );
        }
        self.net.flush();
    }

    fn report(&self) -> LoadReport {
        let (report, integrity_errors) = self.load.report().expect("the workload started");
        assert_eq!(integrity_errors, 0);
        report
    }
}

fn spec(duration: Duration) -> LoadSpec {
    let mut spec = LoadSpec::new(Workload::Short, SocketAddrV4::new(SERVER_IP, 7));
    spec.connections = LOOPS;
    spec.rate = Some(RATE);
    spec.warmup = Duration::ZERO;
    spec.duration = duration;
    spec
}

/// The client's schedule, computed as the load client computes it (one
/// pacer per loop, staggered by its index): how many exchanges are due
/// by `now_ns` (ns on the engine's clock).
struct Schedule {
    pacers: Vec<Pacer>,
    due: u64,
}

impl Schedule {
    fn new(start_ns: u64) -> Schedule {
        let pacers = (0..LOOPS)
            .map(|k| Pacer::new(RATE / LOOPS as f64, start_ns, k as f64 / LOOPS as f64))
            .collect();
        Schedule { pacers, due: 0 }
    }

    fn due_by(&mut self, now_ns: u64) -> u64 {
        for p in &mut self.pacers {
            while p.due(now_ns).is_some() {
                self.due += 1;
            }
        }
        self.due
    }
}

fn ns(t: Instant) -> u64 {
    t.total_micros() * 1000
}

#[test]
fn open_loop_short_connects_at_the_scheduled_time_and_times_both_round_trips() {
    let seconds = 2;
    let mut b = Bench::new(&spec(Duration::from_secs(seconds)));
    // The workload starts at the client's first tick.
    let start = ns(b.net.now() + STEP);
    let mut schedule = Schedule::new(start);
    let mut most_ahead = i64::MIN;
    let mut most_behind = i64::MIN;
    // Up to the end of the window, when the client stops starting exchanges.
    let end = b.net.now() + Duration::from_secs(seconds);
    while b.net.now() < end {
        b.step(true);
        let now = ns(b.net.now());
        let due = schedule.due_by(now) as i64;
        let opened = b.net.stack(b.client).stats().active_opens as i64;
        // Never a connect before its exchange is due ...
        most_ahead = most_ahead.max(opened - due);
        // ... and none left waiting: the client keeps up.
        most_behind = most_behind.max(due - opened);
    }
    assert!(
        most_ahead <= 0,
        "{most_ahead} connection(s) opened before their time"
    );
    assert_eq!(most_behind, 0, "exchanges started late");
    let r = b.report();
    let expected = (RATE * seconds as f64) as u64;
    assert_eq!((r.errors, r.connect_errors), (0, 0), "{r:?}");
    assert!(
        r.connects + LOOPS as u64 >= expected && r.connects <= expected,
        "{} connects, {expected} scheduled",
        r.connects
    );
    // Timed from the scheduled time: the handshake's round trip and the
    // request's, within a step or two of the applications' loop.
    let rtt_us = 2.0 * ONE_WAY.as_secs_f64() * 1e6;
    let step_us = STEP.as_secs_f64() * 1e6;
    let l = r.latency_us.expect("latencies");
    assert!(
        l.p50 >= 2.0 * rtt_us && l.max <= 2.0 * rtt_us + 3.0 * step_us,
        "latency {l:?}: expected two round trips ({} us)",
        2.0 * rtt_us
    );
}

#[test]
fn an_exchange_started_late_is_timed_from_its_scheduled_time() {
    let seconds = 1;
    let mut b = Bench::new(&spec(Duration::from_secs(seconds)));
    let stall = Duration::from_millis(50);
    let mut t = Duration::ZERO;
    while t < Duration::from_secs(seconds) + STEP {
        // The client's application stalls for 50 ms after 0.5 s: every
        // exchange due meanwhile starts when it resumes.
        let stalled = t >= Duration::from_millis(500) && t < Duration::from_millis(500) + stall;
        b.step(!stalled);
        t += STEP;
    }
    let r = b.report();
    assert_eq!((r.errors, r.connect_errors), (0, 0), "{r:?}");
    // Nothing was skipped: the exchanges due in the stall ran late.
    let expected = (RATE * seconds as f64) as u64;
    assert!(
        r.connects + LOOPS as u64 >= expected,
        "{} connects",
        r.connects
    );
    let l = r.latency_us.expect("latencies");
    let rtt_us = 2.0 * ONE_WAY.as_secs_f64() * 1e6;
    // The exchange due as the stall began (at 500 ms: a multiple of the
    // 1.25 ms stagger) waited all of it, then ran its two round trips.
    assert!(
        l.max >= stall.as_secs_f64() * 1e6 + 2.0 * rtt_us,
        "max latency {} us hides the stall",
        l.max
    );
    // The rest of the run is on time.
    assert!(
        l.p50 <= 2.0 * rtt_us + 3.0 * STEP.as_secs_f64() * 1e6,
        "{l:?}"
    );
}
