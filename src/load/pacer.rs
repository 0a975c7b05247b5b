//! Intended send times for an open-loop connection.
//!
//! Requests are due at fixed intervals from a start time, whatever
//! happened to earlier ones; a request sent late is still timed from when
//! it was due, so a stall shows up in the latency of every request it
//! delayed (the correction for coordinated omission, as in wrk2).

/// One connection's schedule: `rate` requests per second, starting at
/// `start_ns + phase × interval`.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval_ns: f64,
    next_ns: f64,
}

impl Pacer {
    /// `rate_per_sec` > 0; `phase` in [0, 1) staggers connections so they
    /// do not all fire at once.
    pub fn new(rate_per_sec: f64, start_ns: u64, phase: f64) -> Pacer {
        let interval_ns = 1e9 / rate_per_sec;
        Pacer {
            interval_ns,
            next_ns: start_ns as f64 + phase.clamp(0.0, 1.0) * interval_ns,
        }
    }

    /// The intended time of the next request if it is due at `now_ns`,
    /// advancing the schedule; call until None.
    pub fn due(&mut self, now_ns: u64) -> Option<u64> {
        if self.next_ns <= now_ns as f64 {
            let t = self.next_ns as u64;
            self.next_ns += self.interval_ns;
            Some(t)
        } else {
            None
        }
    }

    /// When the next request is due (ns).
    pub fn next_at(&self) -> u64 {
        self.next_ns.ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_due_at_fixed_intervals_even_when_late() {
        // 1000/s: one every 1 ms, starting at 0.5 ms.
        let mut p = Pacer::new(1000.0, 0, 0.5);
        assert_eq!(p.due(400_000), None);
        assert_eq!(p.next_at(), 500_000);
        // The driver stalled until 3.2 ms: three requests are due, each
        // with its own intended time.
        let due: Vec<u64> = std::iter::from_fn(|| p.due(3_200_000)).collect();
        assert_eq!(due, vec![500_000, 1_500_000, 2_500_000]);
        assert_eq!(p.next_at(), 3_500_000);
    }
}
