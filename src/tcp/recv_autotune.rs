//! Receive-buffer auto-tuning, after Linux's dynamic right-sizing
//! (`tcp_rcv_space_adjust`, from Fisher's DRS): once per receiver-side
//! RTT, look at how many bytes the application consumed in that RTT; if
//! twice that (the window a sender needs to keep the pipe full and still
//! grow) exceeds the buffer, grow the buffer to it, up to a configured
//! maximum. A reader slower than the network consumes little per RTT and
//! never grows its buffer.
//!
//! The receiver-side RTT comes from the timestamps option when it is in
//! use (the peer's data echoes the TSval of our ACK: RFC 7323 §4) and
//! otherwise from the time it takes to receive one window of data (Linux
//! `tcp_rcv_rtt_measure`), which is an upper bound on the RTT for a
//! window-limited sender.

use std::time::Duration;

use crate::tcp::Instant;
use crate::wire::SeqNum;

/// Granularity of the new buffer sizes.
const GROW_STEP: usize = 4096;

/// Auto-tuning state of one connection. See the module docs.
#[derive(Debug, Clone)]
pub struct RecvAutotune {
    /// Smoothed receiver-side RTT (Linux `rcv_rtt_est`).
    rtt: Option<Duration>,
    /// Without timestamps: receiving up to this sequence number, started
    /// at this time, is one window's worth.
    window_probe: Option<(SeqNum, Instant)>,
    /// Start of the current measurement period.
    period_start: Instant,
    /// Bytes the application had consumed at `period_start`.
    consumed_at_start: u64,
    /// Bytes the application has consumed in all.
    consumed: u64,
    /// The last echoed timestamp taken as an RTT sample.
    last_echo: u32,
}

impl RecvAutotune {
    pub fn new(now: Instant) -> RecvAutotune {
        RecvAutotune {
            rtt: None,
            window_probe: None,
            period_start: now,
            consumed_at_start: 0,
            consumed: 0,
            last_echo: 0,
        }
    }

    /// The receiver-side RTT estimate, once there is one.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Whether a segment echoing `tsecr` (RFC 7323 §4) is an RTT sample:
    /// only the first segment to echo a given TSval is. The ones after it
    /// echo the same ACK of ours and only add the time the sender took to
    /// send them, which would inflate the estimate (Linux
    /// `tcp_rcv_rtt_measure_ts` keeps `rcv_rtt_last_tsecr` for this). It
    /// also keeps the sample off the per-segment path of a bulk transfer.
    pub fn is_new_echo(&mut self, tsecr: u32) -> bool {
        if tsecr == 0 || tsecr == self.last_echo {
            return false;
        }
        self.last_echo = tsecr;
        true
    }

    /// The application consumed `n` bytes.
    pub fn on_consumed(&mut self, n: usize) {
        self.consumed += n as u64;
    }

    /// Folds in an RTT sample: a lower sample is taken at once (queues
    /// only add delay), a higher one with gain 1/8 (Linux `tcp_rcv_rtt_update`).
    pub fn on_rtt_sample(&mut self, sample: Duration) {
        let sample = sample.max(Duration::from_micros(100));
        self.rtt = Some(match self.rtt {
            Some(rtt) if sample >= rtt => rtt - rtt / 8 + sample / 8,
            _ => sample,
        });
    }

    /// In-order data advanced RCV.NXT to `rcv_nxt` while `window` bytes
    /// were advertised: the no-timestamps RTT estimate (time to receive
    /// one window).
    pub fn on_in_order_data(&mut self, now: Instant, rcv_nxt: SeqNum, window: usize) {
        match self.window_probe {
            Some((end, start)) if rcv_nxt >= end => {
                self.on_rtt_sample(now.saturating_since(start));
                self.window_probe = Some((rcv_nxt + window.max(1), now));
            }
            Some(_) => {}
            None => self.window_probe = Some((rcv_nxt + window.max(1), now)),
        }
    }

    /// Called as data arrives: at the end of each RTT-long period, returns
    /// the buffer size to grow to, if the application consumed more than
    /// half of `capacity` in that period. Never above `limit`.
    pub fn adjust(&mut self, now: Instant, capacity: usize, limit: usize) -> Option<usize> {
        let rtt = self.rtt?;
        let elapsed = now.saturating_since(self.period_start);
        if elapsed < rtt {
            return None;
        }
        let copied = self.consumed - self.consumed_at_start;
        self.period_start = now;
        self.consumed_at_start = self.consumed;
        // Periods end only when data arrives, so one may span many RTTs
        // (a closed window, an idle sender): scale to one RTT's worth.
        let per_rtt = (copied as u128 * rtt.as_nanos() / elapsed.as_nanos().max(1)) as usize;
        let target = per_rtt.saturating_mul(2);
        if target <= capacity || capacity >= limit {
            return None;
        }
        let rounded = target.div_ceil(GROW_STEP).saturating_mul(GROW_STEP);
        Some(rounded.min(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A reader that consumes `per_rtt` bytes every RTT for `rtts` RTTs,
    /// with data arriving every millisecond. Returns the final capacity.
    fn run(per_rtt: usize, rtt: Duration, rtts: u32, start_cap: usize, limit: usize) -> usize {
        let mut t = Instant::from_secs(1);
        let mut a = RecvAutotune::new(t);
        a.on_rtt_sample(rtt);
        let mut cap = start_cap;
        for _ in 0..rtts {
            // The reader can never hold more than the buffer.
            a.on_consumed(per_rtt.min(cap));
            for _ in 0..rtt.as_millis() {
                t += ms(1);
                if let Some(n) = a.adjust(t, cap, limit) {
                    assert!(n > cap && n <= limit);
                    cap = n;
                }
            }
        }
        cap
    }

    #[test]
    fn grows_on_a_long_fat_path() {
        // 1 Gbit/s × 20 ms = 2.5 MB per RTT; a 256 KiB buffer is filled
        // and drained every RTT, so it doubles each RTT up to the limit.
        let cap = run(2_500_000, ms(20), 10, 256 * 1024, 4 << 20);
        assert_eq!(cap, 4 << 20);
        let cap = run(2_500_000, ms(20), 2, 256 * 1024, 4 << 20);
        assert_eq!(cap, 1024 * 1024);
    }

    #[test]
    fn slow_reader_does_not_grow() {
        // 32 KiB per RTT against a 256 KiB buffer.
        let cap = run(32 * 1024, ms(20), 50, 256 * 1024, 4 << 20);
        assert_eq!(cap, 256 * 1024);
        // Exactly half the buffer per RTT is not enough either.
        let cap = run(128 * 1024, ms(20), 50, 256 * 1024, 4 << 20);
        assert_eq!(cap, 256 * 1024);
    }

    #[test]
    fn a_long_period_counts_as_its_rate_per_rtt() {
        // 64 KiB drained over 50 RTTs (the window was closed meanwhile)
        // is a slow reader, not a fast one.
        let t = Instant::from_secs(1);
        let mut a = RecvAutotune::new(t);
        a.on_rtt_sample(ms(2));
        a.on_consumed(64 * 1024);
        assert_eq!(a.adjust(t + ms(100), 64 * 1024, 4 << 20), None);
    }

    #[test]
    fn no_estimate_no_growth() {
        let t = Instant::from_secs(1);
        let mut a = RecvAutotune::new(t);
        a.on_consumed(10 << 20);
        assert_eq!(a.adjust(t + ms(1000), 1024, 4 << 20), None);
    }

    #[test]
    fn only_the_first_segment_echoing_a_timestamp_is_a_sample() {
        let mut a = RecvAutotune::new(Instant::ZERO);
        assert!(!a.is_new_echo(0), "a zero TSecr echoes nothing");
        assert!(a.is_new_echo(7));
        assert!(!a.is_new_echo(7));
        assert!(!a.is_new_echo(7));
        assert!(a.is_new_echo(8));
        assert!(a.is_new_echo(7), "a different echo is a sample again");
    }

    #[test]
    fn window_time_estimates_rtt_without_timestamps() {
        let t = Instant::from_secs(1);
        let mut a = RecvAutotune::new(t);
        a.on_in_order_data(t, SeqNum(0), 1000);
        a.on_in_order_data(t + ms(5), SeqNum(500), 1000);
        assert_eq!(a.rtt(), None);
        a.on_in_order_data(t + ms(10), SeqNum(1000), 1000);
        assert_eq!(a.rtt(), Some(ms(10)));
        // A lower sample replaces, a higher one is smoothed in.
        a.on_rtt_sample(ms(4));
        assert_eq!(a.rtt(), Some(ms(4)));
        a.on_rtt_sample(ms(12));
        assert_eq!(a.rtt(), Some(ms(5)));
    }
}
