//! What a load run measured: counters and a latency histogram per client
//! thread ([`LoadRecorder`]), merged into one [`LoadReport`].

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::spec::{LoadSpec, Workload};

/// Latencies up to a minute, three significant digits.
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Width of one bucket of the response timeline.
pub const TIMELINE_BUCKET_NS: u64 = 100_000_000;

/// Counts what happens inside the measurement window `[start, end)` (ns
/// on the client's clock); what happens during warm-up or after the end
/// is ignored.
#[derive(Debug, Clone)]
pub struct LoadRecorder {
    start_ns: u64,
    end_ns: u64,
    latency: Histogram<u64>,
    requests: u64,
    bytes_sent: u64,
    bytes_received: u64,
    connects: u64,
    connect_errors: u64,
    port_waits: u64,
    errors: u64,
    /// Where the timeline starts (ns): the workload's start when set with
    /// [`with_timeline_from`](Self::with_timeline_from), else `start_ns`.
    timeline_origin_ns: u64,
    /// Responses completed per [`TIMELINE_BUCKET_NS`] from
    /// `timeline_origin_ns` to `end_ns`, warm-up included: shows a
    /// start-up transient the window's mean would hide.
    timeline: Vec<u64>,
}

impl LoadRecorder {
    pub fn new(start_ns: u64, end_ns: u64) -> LoadRecorder {
        LoadRecorder {
            start_ns,
            end_ns,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("constant histogram bounds are valid"),
            requests: 0,
            bytes_sent: 0,
            bytes_received: 0,
            connects: 0,
            connect_errors: 0,
            port_waits: 0,
            errors: 0,
            timeline_origin_ns: start_ns,
            timeline: Vec::new(),
        }
    }

    /// Also keeps the response timeline from `origin_ns` (the workload's
    /// start, before the warm-up) to the window's end; its buckets are
    /// allocated here, none while recording.
    pub fn with_timeline_from(mut self, origin_ns: u64) -> LoadRecorder {
        let origin_ns = origin_ns.min(self.start_ns);
        self.timeline_origin_ns = origin_ns;
        let buckets = self
            .end_ns
            .saturating_sub(origin_ns)
            .div_ceil(TIMELINE_BUCKET_NS);
        // A window without an end (tests) keeps no timeline.
        if buckets <= 1 << 20 {
            self.timeline = vec![0; buckets as usize];
        }
        self
    }

    fn measuring(&self, now_ns: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&now_ns)
    }

    /// Whether `now_ns` is past the measurement window.
    pub fn finished(&self, now_ns: u64) -> bool {
        now_ns >= self.end_ns
    }

    /// A response completed at `now_ns` for a request intended at
    /// `intended_ns`.
    pub fn response(&mut self, now_ns: u64, intended_ns: u64) {
        if let Some(since) = now_ns.checked_sub(self.timeline_origin_ns) {
            if let Some(b) = self.timeline.get_mut((since / TIMELINE_BUCKET_NS) as usize) {
                *b += 1;
            }
        }
        if self.measuring(now_ns) {
            self.requests += 1;
            let latency = now_ns.saturating_sub(intended_ns).clamp(1, MAX_LATENCY_NS);
            self.latency.saturating_record(latency);
        }
    }

    pub fn sent(&mut self, now_ns: u64, bytes: usize) {
        if self.measuring(now_ns) {
            self.bytes_sent += bytes as u64;
        }
    }

    pub fn received(&mut self, now_ns: u64, bytes: usize) {
        if self.measuring(now_ns) {
            self.bytes_received += bytes as u64;
        }
    }

    /// A connection finished its handshake.
    pub fn connected(&mut self, now_ns: u64) {
        if self.measuring(now_ns) {
            self.connects += 1;
        }
    }

    /// A connect failed (refused, timed out, no port free).
    pub fn connect_failed(&mut self, now_ns: u64) {
        if self.measuring(now_ns) {
            self.connect_errors += 1;
        }
    }

    /// A connect found every local port to the target busy (each held
    /// by a connection, or by a TIME-WAIT too recent to reuse) and waits
    /// for one: count it once per wait, not per retry. The client's own
    /// port space, not the server, held this exchange back.
    pub fn port_wait(&mut self, now_ns: u64) {
        if self.measuring(now_ns) {
            self.port_waits += 1;
        }
    }

    /// A connection failed after it was established (reset, protocol
    /// error from the server).
    pub fn error(&mut self, now_ns: u64) {
        if self.measuring(now_ns) {
            self.errors += 1;
        }
    }

    /// Adds another thread's counts (same window).
    pub fn merge(&mut self, other: &LoadRecorder) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.requests += other.requests;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.connects += other.connects;
        self.connect_errors += other.connect_errors;
        self.port_waits += other.port_waits;
        self.errors += other.errors;
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), 0);
        }
        for (a, b) in self.timeline.iter_mut().zip(&other.timeline) {
            *a += b;
        }
    }

    /// The report of a finished run carried by `stack`.
    pub fn report(&self, spec: &LoadSpec, stack: &str) -> LoadReport {
        let secs = (self.end_ns - self.start_ns) as f64 / 1e9;
        let latency = (!self.latency.is_empty()).then(|| {
            let us = |q: f64| self.latency.value_at_quantile(q) as f64 / 1e3;
            LatencySummary {
                p50: us(0.50),
                p90: us(0.90),
                p99: us(0.99),
                p999: us(0.999),
                max: self.latency.max() as f64 / 1e3,
                mean: self.latency.mean() / 1e3,
            }
        });
        LoadReport {
            stack: stack.to_owned(),
            workload: spec.workload,
            connections: spec.connections,
            pipeline: spec.pipeline,
            rate: spec.rate,
            idle_connections: spec.idle_connections,
            duration_s: secs,
            requests: self.requests,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            connects: self.connects,
            connect_errors: self.connect_errors,
            port_waits: self.port_waits,
            errors: self.errors,
            requests_per_sec: self.requests as f64 / secs,
            gbit_per_sec: (self.bytes_sent + self.bytes_received) as f64 * 8.0 / secs / 1e9,
            connections_per_sec: self.connects as f64 / secs,
            latency_us: latency,
            timeline_100ms: self.timeline.clone(),
        }
    }
}

/// Latency quantiles in microseconds, from the intended send time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// One load run, as `xdp-tcp load --json` writes it and `xdp-tcp bench`
/// reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// "kernel" or "fast".
    pub stack: String,
    pub workload: Workload,
    pub connections: usize,
    pub pipeline: usize,
    /// Open-loop target rate (requests/s), None for closed loop.
    pub rate: Option<f64>,
    pub idle_connections: usize,
    /// Length of the measurement window.
    pub duration_s: f64,
    pub requests: u64,
    /// Application payload bytes written and read in the window.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub connects: u64,
    pub connect_errors: u64,
    /// Connects that had to wait because every local port to the target
    /// was busy (see [`LoadRecorder::port_wait`]); not errors. Above zero,
    /// the run measured the client's port space as much as the server:
    /// more source addresses (or a wider port range) lift it.
    #[serde(default)]
    pub port_waits: u64,
    pub errors: u64,
    pub requests_per_sec: f64,
    /// Payload bytes in both directions, in Gbit/s.
    pub gbit_per_sec: f64,
    pub connections_per_sec: f64,
    pub latency_us: Option<LatencySummary>,
    /// Responses completed per 100 ms from the workload's start, warm-up
    /// included (empty when the client keeps none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline_100ms: Vec<u64>,
}

impl LoadReport {
    /// The headline number of the workload and its unit.
    pub fn headline(&self) -> (f64, &'static str) {
        match self.workload {
            Workload::Rpc | Workload::Http => (self.requests_per_sec, "req/s"),
            Workload::Short => (self.connections_per_sec, "conn/s"),
            Workload::BulkSend | Workload::BulkRecv => (self.gbit_per_sec, "Gbit/s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_window_counts_and_threads_merge() {
        let spec = LoadSpec::new(Workload::Rpc, "198.18.0.1:7".parse().unwrap());
        let (start, end) = (1_000_000_000, 3_000_000_000);
        let mut a = LoadRecorder::new(start, end);
        a.response(500_000_000, 400_000_000); // warm-up: ignored
        a.response(1_500_000_000, 1_499_990_000); // 10 µs
        a.sent(1_500_000_000, 64);
        a.received(1_500_000_000, 64);
        a.response(3_000_000_000, 2_999_000_000); // after the end: ignored
        let mut b = LoadRecorder::new(start, end);
        b.response(2_000_000_000, 1_999_000_000); // 1 ms
        b.connected(2_000_000_000);
        b.port_wait(2_000_000_000);
        b.port_wait(3_000_000_000); // after the end: ignored
        a.merge(&b);
        let r = a.report(&spec, "kernel");
        assert_eq!(r.requests, 2);
        assert_eq!(r.duration_s, 2.0);
        assert_eq!(r.requests_per_sec, 1.0);
        assert_eq!(r.connects, 1);
        assert_eq!(r.port_waits, 1);
        assert_eq!(r.bytes_sent + r.bytes_received, 128);
        let l = r.latency_us.unwrap();
        assert!((l.p50 - 10.0).abs() < 0.1, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
        assert_eq!(r.headline(), (1.0, "req/s"));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"workload\":\"rpc\""));
        assert_eq!(serde_json::from_str::<LoadReport>(&json).unwrap(), r);
    }

    #[test]
    fn the_timeline_counts_responses_per_100ms_from_the_start_warm_up_included() {
        let spec = LoadSpec::new(Workload::Short, "198.18.0.1:7".parse().unwrap());
        // Workload starts at 1 s, warm-up 0.5 s, window 0.3 s.
        let mut a =
            LoadRecorder::new(1_500_000_000, 1_800_000_000).with_timeline_from(1_000_000_000);
        a.response(900_000_000, 0); // before the start: not in the timeline
        a.response(1_050_000_000, 0);
        a.response(1_650_000_000, 0);
        a.response(1_799_999_999, 0);
        a.response(1_800_000_000, 0); // after the end
        let mut b =
            LoadRecorder::new(1_500_000_000, 1_800_000_000).with_timeline_from(1_000_000_000);
        b.response(1_050_000_000, 0);
        a.merge(&b);
        let r = a.report(&spec, "fast");
        assert_eq!(r.timeline_100ms, vec![2, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(r.requests, 2);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<LoadReport>(&json).unwrap(), r);
    }

    #[test]
    fn no_responses_means_no_latency() {
        let spec = LoadSpec::new(Workload::BulkSend, "198.18.0.1:9".parse().unwrap());
        let mut r = LoadRecorder::new(0, 1_000_000_000);
        r.sent(10, 125_000_000);
        let rep = r.report(&spec, "fast");
        assert!(rep.latency_us.is_none());
        assert_eq!(rep.headline(), (1.0, "Gbit/s"));
    }
}
