//! Timer wheel costs at engine scale: one timer per connection, 1 M armed.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use xdp_tcp::tcp::timer_wheel::TimerWheel;
use xdp_tcp::tcp::Instant;

const ARMED: u64 = 1_000_000;
const SPREAD_US: u64 = 10_000_000;
const TICK: Duration = Duration::from_millis(1);

/// xorshift64*: deterministic, dependency-free deadlines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A wheel at `t0` with `ARMED` timers uniformly spread over the next 10 s
/// (microsecond deadlines, as RTO/delayed-ACK deadlines are).
fn armed_wheel(t0: Instant, rng: &mut Rng) -> TimerWheel {
    let mut w = TimerWheel::new(t0, TICK, ARMED as usize + 1024);
    for key in 0..ARMED {
        w.insert(t0 + Duration::from_micros(1 + rng.next() % SPREAD_US), key);
    }
    w
}

fn timer(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer_wheel");
    let t0 = Instant::from_secs(1000);

    {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut w = armed_wheel(t0, &mut rng);
        g.bench_function("insert_cancel_1M_armed", |b| {
            b.iter(|| {
                let d = t0 + Duration::from_micros(1 + rng.next() % SPREAD_US);
                let id = w.insert(d, u64::MAX);
                black_box(w.cancel(black_box(id)))
            })
        });
        g.bench_function("next_expiry_1M_armed", |b| {
            b.iter(|| black_box(w.next_expiry()))
        });
    }

    {
        // Advance by 1 ms per iteration, at mid-tick instants (an engine's
        // clock is not tick-aligned), re-arming every fired timer 10 s
        // ahead so 1 M stay armed, spread over 10 s, in steady state.
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let mut w = armed_wheel(t0, &mut rng);
        let mut now = t0 + Duration::from_micros(500);
        let mut fired: Vec<u64> = Vec::with_capacity(4096);
        g.bench_function("advance_1ms_rearm_1M_armed", |b| {
            b.iter(|| {
                now += TICK;
                fired.clear();
                w.advance(now, &mut |k| fired.push(k));
                for &k in &fired {
                    let jitter = Duration::from_micros(rng.next() % 1000);
                    w.insert(now + Duration::from_micros(SPREAD_US) + jitter, k);
                }
                black_box(fired.len())
            })
        });
        assert_eq!(w.len() as u64, ARMED);
    }

    g.finish();
}

criterion_group!(benches, timer);
criterion_main!(benches);
