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
        // Offset by one second so that "zero" never appears as a real time.
        Instant::from_micros(self.origin.elapsed().as_micros() as u64 + 1_000_000)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
