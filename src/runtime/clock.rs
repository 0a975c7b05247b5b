//! The runtime's monotonic clock, in the engine's [`Instant`] units.

use crate::tcp::Instant;

/// Microseconds since the clock was created; all workers share one origin
/// so their instants are comparable.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Instant {
        let elapsed = self.origin.elapsed();
        // Whole seconds and sub-second micros in u64: `as_micros` is u128
        // and costs a 128-bit division (`__udivti3`) per loop iteration.
        // Offset by one second so that "zero" never appears as a real time.
        let micros = elapsed.as_secs() * 1_000_000 + u64::from(elapsed.subsec_micros());
        Instant::from_micros(micros + 1_000_000)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_one_second_after_zero_and_never_goes_back() {
        let clock = Clock::new();
        let first = clock.now();
        assert!(first >= Instant::from_micros(1_000_000));
        let mut last = first;
        for _ in 0..1000 {
            let t = clock.now();
            assert!(t >= last);
            last = t;
        }
    }

    #[test]
    fn copies_share_the_origin() {
        let a = Clock::new();
        let b = a;
        let (ta, tb) = (a.now(), b.now());
        assert!(tb >= ta);
        std::thread::sleep(std::time::Duration::from_millis(2));
        // The sleep lasts at least 2 ms, and truncating both ends to whole
        // microseconds cannot shorten a span below its whole microseconds.
        assert!(a.now().saturating_since(ta) >= std::time::Duration::from_millis(2));
    }
}
