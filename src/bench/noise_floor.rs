//! The machine's own noise floor on the cores a bench uses: a thread that
//! only spins on a core, reading the clock, and counts the gaps between
//! two readings, i.e. the times the core was taken from it (interrupts,
//! the timer tick, other threads, the hypervisor).
//!
//! Why: a latency percentile cannot be lower than what such gaps do to
//! the requests they hold up. On the VMs this project is measured on, a
//! spinning thread loses the core for more than 10 us about 360 times a
//! second (HZ=250 ticks and IPIs in a Firecracker guest); at the rpc p99
//! row's 76 000 requests/s that touches about 1 % of the requests, for
//! either server (docs/PERFORMANCE.md, "Session 13"). The bench measures
//! it before its runs and prints it with the results.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Gaps a spinning thread saw on one core.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CoreNoise {
    pub core: usize,
    /// How long it spun, in seconds.
    pub seconds: f64,
    /// Gaps longer than 10, 20 and 50 us, per second.
    pub over_10us_per_s: f64,
    pub over_20us_per_s: f64,
    pub over_50us_per_s: f64,
    /// The longest gap, in microseconds.
    pub longest_us: f64,
}

impl CoreNoise {
    /// One line for the table's header.
    pub fn describe(&self) -> String {
        format!(
            "core {}: {:.0}/s over 10 us, {:.0}/s over 20 us, {:.0}/s over 50 us, longest {:.0} us",
            self.core,
            self.over_10us_per_s,
            self.over_20us_per_s,
            self.over_50us_per_s,
            self.longest_us
        )
    }
}

/// Spins on `core` for `duration` in a thread of its own; None when the
/// thread cannot be pinned there.
pub fn measure(core: usize, duration: Duration) -> Option<CoreNoise> {
    // Only cores this process may run on: `core_affinity` aborts on ids
    // past the size of a `cpu_set_t`.
    crate::affinity::pinnable(&[core], &crate::affinity::allowed_cores()).ok()?;
    std::thread::spawn(move || {
        core_affinity::set_for_current(core_affinity::CoreId { id: core })
            .then(|| spin(core, duration))
    })
    .join()
    .ok()
    .flatten()
}

/// The spin itself, on whatever core the calling thread runs.
fn spin(core: usize, duration: Duration) -> CoreNoise {
    spin_on(core, duration, Instant::now)
}

/// Reads `clock` until `duration` has passed on it, counting the gaps
/// between consecutive readings.
fn spin_on(core: usize, duration: Duration, mut clock: impl FnMut() -> Instant) -> CoreNoise {
    const THRESHOLDS: [Duration; 3] = [
        Duration::from_micros(10),
        Duration::from_micros(20),
        Duration::from_micros(50),
    ];
    let start = clock();
    let mut last = start;
    let mut over = [0u64; 3];
    let mut longest = Duration::ZERO;
    loop {
        let now = clock();
        let gap = now - last;
        last = now;
        if gap > THRESHOLDS[0] {
            for (count, limit) in over.iter_mut().zip(THRESHOLDS) {
                *count += u64::from(gap > limit);
            }
            longest = longest.max(gap);
        }
        if now - start >= duration {
            break;
        }
    }
    let seconds = (last - start).as_secs_f64();
    let rate = |n: u64| n as f64 / seconds;
    CoreNoise {
        core,
        seconds,
        over_10us_per_s: rate(over[0]),
        over_20us_per_s: rate(over[1]),
        over_50us_per_s: rate(over[2]),
        longest_us: longest.as_secs_f64() * 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_between_readings_are_counted_by_length() {
        // A clock read every microsecond, except that the core is taken
        // away for 15 us, 35 us and 120 us once each: 1 ms in all.
        let base = Instant::now();
        let mut t = 0u64;
        let clock = move || {
            let now = base + Duration::from_micros(t);
            t += match t {
                100 => 15,
                300 => 35,
                600 => 120,
                _ => 1,
            };
            now
        };
        let n = spin_on(3, Duration::from_millis(1), clock);
        assert_eq!(n.core, 3);
        assert!((n.seconds - 0.001).abs() < 1e-9, "{n:?}");
        // Per second of a 1 ms spin: one gap is a rate of 1000/s.
        assert_eq!(
            (n.over_10us_per_s, n.over_20us_per_s, n.over_50us_per_s),
            (3000.0, 2000.0, 1000.0)
        );
        assert_eq!(n.longest_us, 120.0);
    }

    #[test]
    fn a_real_spin_lasts_its_time_and_nests_its_counts() {
        let n = std::thread::spawn(|| spin(0, Duration::from_millis(50)))
            .join()
            .unwrap();
        assert!(n.seconds >= 0.05, "{n:?}");
        assert!(n.over_10us_per_s >= n.over_20us_per_s, "{n:?}");
        assert!(n.over_20us_per_s >= n.over_50us_per_s, "{n:?}");
    }

    #[test]
    fn pinning_to_a_core_that_does_not_exist_is_refused() {
        assert_eq!(measure(100_000, Duration::from_millis(10)), None);
    }

    #[test]
    fn the_description_names_the_core_and_the_rates() {
        let n = CoreNoise {
            core: 1,
            seconds: 1.0,
            over_10us_per_s: 364.2,
            over_20us_per_s: 141.0,
            over_50us_per_s: 6.7,
            longest_us: 79.7,
        };
        assert_eq!(
            n.describe(),
            "core 1: 364/s over 10 us, 141/s over 20 us, 7/s over 50 us, longest 80 us"
        );
    }
}
