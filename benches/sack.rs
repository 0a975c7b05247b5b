//! The SACK scoreboard's cost per ACK (RFC 6675 §3 bookkeeping) with 1000
//! segments in flight and 3 holes, against the cumulative-only path a
//! peer without SACK takes, and RACK's loss scan (RFC 8985 §6.2) on top.
//!
//! Each iteration processes one ACK on a fresh copy of the same
//! scoreboard (the copy is made outside the timed part), so every sample
//! measures the steady state of recovery: the receiver's blocks, repeated
//! and grown by one segment, as Linux receivers send them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use xdp_tcp::tcp::sack_scoreboard::SackScoreboard;
use xdp_tcp::tcp::Instant;
use xdp_tcp::wire::SeqNum;

const MSS: usize = 1448;
const IN_FLIGHT: usize = 1000;
const HOLES: [usize; 3] = [100, 400, 700];

fn seq(segment: usize) -> SeqNum {
    SeqNum((segment * MSS) as u32)
}

fn t(micros: u64) -> Instant {
    Instant::from_micros(micros)
}

/// 1000 segments in flight; everything above the first hole up to segment
/// 998 SACKed except the three holes.
fn board_with_holes() -> SackScoreboard {
    let mut b = SackScoreboard::new();
    for i in 0..IN_FLIGHT {
        b.on_send(seq(i), MSS, false, t(i as u64));
    }
    let blocks = [
        (seq(HOLES[2] + 1), seq(998)),
        (seq(HOLES[1] + 1), seq(HOLES[2])),
        (seq(HOLES[0] + 1), seq(HOLES[1])),
    ];
    b.on_ack(seq(0), &blocks, t(20_000));
    b
}

fn plain_board() -> SackScoreboard {
    let mut b = SackScoreboard::new();
    for i in 0..IN_FLIGHT {
        b.on_send(seq(i), MSS, false, t(i as u64));
    }
    b
}

fn per_ack(c: &mut Criterion) {
    let mut g = c.benchmark_group("ack_1000_in_flight");
    let holes = board_with_holes();
    // The next ACK: same cumulative point, the top block grown by one.
    let blocks = [
        (seq(HOLES[2] + 1), seq(999)),
        (seq(HOLES[1] + 1), seq(HOLES[2])),
        (seq(HOLES[0] + 1), seq(HOLES[1])),
    ];
    g.bench_function("sack_3_holes", |bench| {
        bench.iter_batched(
            || holes.clone(),
            |mut b| black_box(b.on_ack(seq(0), black_box(&blocks), t(21_000))),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("sack_3_holes_plus_rack_scan", |bench| {
        bench.iter_batched(
            || holes.clone(),
            |mut b| {
                let out = b.on_ack(seq(0), black_box(&blocks), t(21_000));
                let newest = out.newest.expect("a segment was SACKed");
                black_box(b.rack_detect_loss(
                    newest.xmit,
                    newest.end,
                    Duration::from_millis(20),
                    Duration::ZERO,
                    t(21_000),
                ))
            },
            BatchSize::SmallInput,
        )
    });
    let plain = plain_board();
    g.bench_function("cumulative_only", |bench| {
        bench.iter_batched(
            || plain.clone(),
            |mut b| black_box(b.on_ack(seq(1), &[], t(21_000))),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, per_ack);
criterion_main!(benches);
