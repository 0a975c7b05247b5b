//! ACK efficiency in the simulator: delayed ACKs on a bulk transfer
//! (RFC 9293 §3.8.6.3, RFC 5681 §4.2), piggybacked ACKs in a
//! request/response exchange, and receive-window auto-tuning on a long
//! fat path. Byte-stream integrity is checked by `run_transfer` (SHA-256)
//! or, for the exchange, by comparing every response with its request.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use xdp_tcp::sim::{run_transfer, Impairments, Network, TransferSpec};
use xdp_tcp::tcp::{Event, Instant, StackConfig, TcpConfig, TcpError};
use xdp_tcp::wire::MacAddr;

fn seeds(default: u64) -> u64 {
    std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// RFC 5681 §4.2 / RFC 1122 §4.2.3.2: a receiver ACKs at least every
/// second full-sized segment and otherwise delays. On a bulk transfer
/// through a 100 Mbit/s bottleneck (segments arrive spaced, not in one
/// batch) that is about one pure ACK per two data segments.
#[test]
fn bulk_transfer_sends_about_one_ack_per_two_segments() {
    let (mut acks, mut segs) = (0, 0);
    for seed in 0..seeds(20) {
        let mut spec = TransferSpec::new(5_000_000, seed);
        spec.forward = Impairments {
            delay: Duration::from_millis(5),
            rate_bps: Some(100_000_000),
            ..Impairments::default()
        };
        spec.reverse = Impairments {
            delay: Duration::from_millis(5),
            ..Impairments::default()
        };
        let r = run_transfer(&spec).unwrap_or_else(|e| panic!("{e}"));
        let s = &r.server;
        let ratio = s.acks_sent as f64 / s.data_segs_in as f64;
        assert!(
            (0.4..=0.6).contains(&ratio),
            "seed {seed}: {} pure ACKs for {} data segments ({ratio:.3})",
            s.acks_sent,
            s.data_segs_in
        );
        acks += s.acks_sent;
        segs += s.data_segs_in;
    }
    eprintln!(
        "bulk: {acks} pure ACKs for {segs} data segments ({:.3} per segment)",
        acks as f64 / segs as f64
    );
}

/// Receive-window auto-tuning: on a 20 ms, 1 Gbit/s path (BDP 2.5 MB) the
/// receive buffer grows from its initial 256 KiB towards twice the BDP,
/// within the configured maximum.
#[test]
fn receive_buffer_grows_on_a_long_fat_path() {
    let mut spec = TransferSpec::new(40_000_000, 1);
    let path = Impairments {
        delay: Duration::from_millis(10),
        rate_bps: Some(1_000_000_000),
        ..Impairments::default()
    };
    spec.forward = path.clone();
    spec.reverse = path;
    spec.client_tcp.send_buffer = 8 << 20;
    let initial = spec.server_tcp.recv_buffer;
    let max = spec.server_tcp.recv_buffer_max;
    let r = run_transfer(&spec).unwrap_or_else(|e| panic!("{e}"));
    let peak = r.server.recv_buffer_peak as usize;
    eprintln!(
        "auto-tuning: receive buffer {initial} -> {peak} bytes (max {max}), goodput {:.0} Mbit/s",
        r.goodput_bps(1) / 1e6
    );
    assert!(r.server.recv_buffer_grown > 0, "never grew: {:?}", r.server);
    assert!(peak > 4 * initial, "grew only to {peak}");
    assert!(peak <= max + 4096, "grew past the maximum: {peak}");
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// A request/response exchange where each side answers in the same batch
/// it received in (as a worker runs its application before the flush):
/// every ACK rides on the next request or response, so no pure ACK is
/// sent while the exchange runs.
#[test]
fn request_response_exchange_sends_no_pure_acks() {
    for seed in 0..seeds(20) {
        let start = Instant::from_secs(1);
        let mut net = Network::new(start);
        let cfg = |last: u8| StackConfig {
            mac: MacAddr([2, 0, 0, 0, 0, last]),
            tcp: TcpConfig::default(),
            ..StackConfig::default()
        };
        let mut entropy = [0u8; 32];
        entropy[..8].copy_from_slice(&seed.to_le_bytes());
        let client = net.add_host(CLIENT, cfg(1), entropy).unwrap();
        entropy[31] = 1;
        let server = net.add_host(SERVER, cfg(2), entropy).unwrap();
        let link = Impairments {
            delay: Duration::from_millis(2),
            ..Impairments::default()
        };
        net.connect(client, server, link.clone(), link, seed);
        let addr = SocketAddrV4::new(SERVER, 7000);
        let listener = net.stack(server).listen(addr, 4).unwrap();
        let server_mac = net.host(server).mac;
        let c = net
            .stack(client)
            .connect(start, SocketAddrV4::new(CLIENT, 0), addr, server_mac)
            .unwrap();

        let rounds = 200;
        let mut buf = [0u8; 512];
        let mut s = None;
        let mut sent = 0;
        let mut answered = 0;
        let mut baseline = None;
        let mut t = start;
        while answered < rounds {
            t += Duration::from_micros(250);
            assert!(
                t < start + Duration::from_secs(30),
                "seed {seed}: stalled at {answered}"
            );
            net.deliver_to(t);
            while let Some(ev) = net.stack(client).next_event() {
                if let Event::Connected(_) = ev {
                    // Count from the moment both sides are established.
                    baseline = Some(());
                }
            }
            if s.is_none() {
                s = net.stack(server).accept(listener).ok();
            }
            // Server: answer every complete request in this batch.
            if let Some(sid) = s {
                match net.stack(server).recv(sid, &mut buf) {
                    Ok(n) if n > 0 => {
                        let reply: Vec<u8> = buf[..n].iter().map(|b| b ^ 0xff).collect();
                        assert_eq!(net.stack(server).send(sid, &reply), Ok(n));
                    }
                    Ok(_) | Err(TcpError::WouldBlock) => {}
                    Err(e) => panic!("server recv: {e}"),
                }
            }
            // Client: check the response, then send the next request.
            if baseline.is_some() {
                match net.stack(client).recv(c, &mut buf) {
                    Ok(n) if n > 0 => {
                        assert_eq!(n, 100, "seed {seed}: partial response");
                        assert!(buf[..n].iter().all(|&b| b == (answered as u8) ^ 0xff));
                        answered += 1;
                    }
                    Ok(_) | Err(TcpError::WouldBlock) => {}
                    Err(e) => panic!("client recv: {e}"),
                }
                if sent == answered && sent < rounds {
                    let request = [sent as u8; 100];
                    assert_eq!(net.stack(client).send(c, &request), Ok(100));
                    sent += 1;
                }
            }
            net.flush();
        }
        let client_acks = net.stack(client).info(c).unwrap().stats.acks_sent;
        let server_acks = net.stack(server).info(s.unwrap()).unwrap().stats.acks_sent;
        // Even the handshake's third segment rode on the first request.
        assert_eq!(client_acks, 0, "seed {seed}: client sent pure ACKs");
        assert_eq!(server_acks, 0, "seed {seed}: server sent pure ACKs");
    }
}
