//! Congestion control is chosen per listener (`Stack::listen_with`) and per
//! active open (`Stack::connect_with`) through `TcpConfig::congestion`;
//! the stack-wide default is CUBIC (RFC 9438), as on Linux.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use xdp_tcp::sim::{Impairments, Network};
use xdp_tcp::tcp::congestion::CongestionAlgorithm;
use xdp_tcp::tcp::{ConnId, Instant, StackConfig, State, TcpConfig};
use xdp_tcp::wire::MacAddr;

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn tcp(congestion: CongestionAlgorithm) -> TcpConfig {
    TcpConfig {
        congestion,
        ..TcpConfig::default()
    }
}

#[test]
fn listeners_and_connects_run_the_algorithm_they_were_given() {
    let start = Instant::from_secs(1);
    let mut net = Network::new(start);
    let client = net
        .add_host(
            CLIENT_IP,
            StackConfig {
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                ..StackConfig::default()
            },
            [1; 32],
        )
        .unwrap();
    let server = net
        .add_host(
            SERVER_IP,
            StackConfig {
                mac: MacAddr([2, 0, 0, 0, 0, 2]),
                ..StackConfig::default()
            },
            [2; 32],
        )
        .unwrap();
    let link = Impairments {
        delay: Duration::from_millis(5),
        ..Impairments::default()
    };
    net.connect(client, server, link.clone(), link, 7);

    let reno_addr = SocketAddrV4::new(SERVER_IP, 80);
    let cubic_addr = SocketAddrV4::new(SERVER_IP, 81);
    let default_addr = SocketAddrV4::new(SERVER_IP, 82);
    let reno_l = net
        .stack(server)
        .listen_with(reno_addr, 4, tcp(CongestionAlgorithm::NewReno))
        .unwrap();
    let cubic_l = net
        .stack(server)
        .listen_with(cubic_addr, 4, tcp(CongestionAlgorithm::Cubic))
        .unwrap();
    let default_l = net.stack(server).listen(default_addr, 4).unwrap();

    let server_mac = net.host(server).mac;
    let local = SocketAddrV4::new(CLIENT_IP, 0);
    let connect = |net: &mut Network, to, algorithm: Option<CongestionAlgorithm>| -> ConnId {
        let stack = net.stack(client);
        match algorithm {
            Some(a) => stack
                .connect_with(start, local, to, server_mac, Arc::new(tcp(a)))
                .unwrap(),
            None => stack.connect(start, local, to, server_mac).unwrap(),
        }
    };
    // Client side: the opposite algorithm to the listener's, to show each
    // end runs its own.
    let c_reno = connect(&mut net, reno_addr, Some(CongestionAlgorithm::Cubic));
    let c_cubic = connect(&mut net, cubic_addr, Some(CongestionAlgorithm::NewReno));
    let c_default = connect(&mut net, default_addr, None);

    let deadline = start + Duration::from_secs(1);
    while let Some(t) = net.next_event_time() {
        if t > deadline {
            break;
        }
        net.advance_to(t);
    }
    for c in [c_reno, c_cubic, c_default] {
        assert_eq!(net.stack(client).info(c).unwrap().state, State::Established);
    }
    let info = |net: &mut Network, c| net.stack(client).info(c).unwrap().congestion;
    assert_eq!(info(&mut net, c_reno), CongestionAlgorithm::Cubic);
    assert_eq!(info(&mut net, c_cubic), CongestionAlgorithm::NewReno);
    assert_eq!(info(&mut net, c_default), CongestionAlgorithm::Cubic);

    let s = net.stack(server);
    let s_reno = s.accept(reno_l).unwrap();
    let s_cubic = s.accept(cubic_l).unwrap();
    let s_default = s.accept(default_l).unwrap();
    assert_eq!(
        s.info(s_reno).unwrap().congestion,
        CongestionAlgorithm::NewReno
    );
    assert_eq!(
        s.info(s_cubic).unwrap().congestion,
        CongestionAlgorithm::Cubic
    );
    assert_eq!(
        s.info(s_default).unwrap().congestion,
        CongestionAlgorithm::Cubic
    );
}
