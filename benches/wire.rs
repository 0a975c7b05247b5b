//! Wire-layer hot paths: checksum, frame parse, frame emit.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xdp_tcp::wire::checksum::internet_checksum;
use xdp_tcp::wire::{
    emit_tcp_frame, parse_tcp_frame, tcp_frame_len, EtherType, EthernetRepr, Ipv4Repr, MacAddr,
    SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps, IP_PROTO_TCP,
};

/// Payload of a full-sized segment behind IPv4 + TCP with timestamps on a
/// 1500-byte MTU: 1500 − 20 − 32.
const MSS_WITH_TS: usize = 1448;

fn reprs() -> (EthernetRepr, Ipv4Repr, TcpRepr) {
    let eth = EthernetRepr {
        src_addr: MacAddr([0x02, 0, 0, 0, 0, 1]),
        dst_addr: MacAddr([0x02, 0, 0, 0, 0, 2]),
        ethertype: EtherType::Ipv4,
    };
    let ip = Ipv4Repr {
        src_addr: Ipv4Addr::new(10, 0, 0, 1),
        dst_addr: Ipv4Addr::new(10, 0, 0, 2),
        protocol: IP_PROTO_TCP,
        payload_len: 0,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
    };
    let tcp = TcpRepr {
        src_port: 40000,
        dst_port: 5201,
        seq: SeqNum(0x1234_5678),
        ack: SeqNum(0x9abc_def0),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 502,
        urgent: 0,
        options: TcpOptions {
            timestamps: Some(Timestamps {
                tsval: 0x0102_0304,
                tsecr: 0x0506_0708,
            }),
            ..Default::default()
        },
    };
    (eth, ip, tcp)
}

fn payload() -> Vec<u8> {
    (0..MSS_WITH_TS).map(|i| (i * 7 + 3) as u8).collect()
}

fn checksum(c: &mut Criterion) {
    let data: Vec<u8> = (0..1500).map(|i| (i * 13 + 1) as u8).collect();
    let mut g = c.benchmark_group("checksum");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("1500", |b| b.iter(|| internet_checksum(black_box(&data))));
    g.finish();
}

fn parse(c: &mut Criterion) {
    let (eth, ip, tcp) = reprs();
    let payload = payload();
    let mut frame = vec![0u8; tcp_frame_len(&tcp, payload.len())];
    let n = emit_tcp_frame(&mut frame, &eth, &ip, &tcp, &payload, &[]);
    assert_eq!(n, 1514);
    let mut g = c.benchmark_group("parse/data_segment");
    g.throughput(Throughput::Bytes(n as u64));
    g.bench_function("verify", |b| {
        b.iter(|| parse_tcp_frame(black_box(&frame), true).map(|f| f.payload.len()))
    });
    g.bench_function("no_verify", |b| {
        b.iter(|| parse_tcp_frame(black_box(&frame), false).map(|f| f.payload.len()))
    });
    g.finish();
}

fn emit(c: &mut Criterion) {
    let (eth, ip, tcp) = reprs();
    let payload = payload();
    let mut buf = vec![0u8; 2048];
    let mut g = c.benchmark_group("emit");
    g.throughput(Throughput::Bytes(tcp_frame_len(&tcp, payload.len()) as u64));
    g.bench_function("data_segment", |b| {
        b.iter(|| {
            emit_tcp_frame(
                black_box(&mut buf),
                black_box(&eth),
                black_box(&ip),
                black_box(&tcp),
                black_box(&payload),
                &[],
            )
        })
    });
    g.finish();
}

criterion_group!(benches, checksum, parse, emit);
criterion_main!(benches);
