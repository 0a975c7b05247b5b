//! What a load run does: the workload, how many connections, closed or
//! open loop, how long.

use std::fmt;
use std::net::SocketAddrV4;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The workloads of the benchmark matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Fixed-size request, fixed-size response (64 B / 64 B by default) on
    /// persistent connections; the server is `echo`.
    Rpc,
    /// HTTP/1.1 keep-alive GETs; the server is `http`.
    Http,
    /// Connect, one request/response, close; the server is `echo`.
    /// Reported as connections per second.
    Short,
    /// The client writes as fast as it can; the server is `discard`.
    BulkSend,
    /// The client reads as fast as it can; the server is `source`.
    BulkRecv,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::Rpc,
        Workload::Http,
        Workload::Short,
        Workload::BulkSend,
        Workload::BulkRecv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Rpc => "rpc",
            Workload::Http => "http",
            Workload::Short => "short",
            Workload::BulkSend => "bulk-send",
            Workload::BulkRecv => "bulk-recv",
        }
    }

    /// Request/response workloads have latencies and a request rate.
    pub fn has_requests(self) -> bool {
        matches!(self, Workload::Rpc | Workload::Http | Workload::Short)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Workload, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                format!("unknown workload '{s}': use rpc, http, short, bulk-send or bulk-recv")
            })
    }
}

/// A load run, independent of the stack that carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSpec {
    pub workload: Workload,
    pub target: SocketAddrV4,
    /// Connections kept open (closed loop and open loop); for `short`,
    /// how many connect/request/close loops run concurrently.
    pub connections: usize,
    /// Requests in flight per connection in closed loop (≥ 1).
    pub pipeline: usize,
    /// Open loop: total requests per second over all connections. None is
    /// closed loop.
    pub rate: Option<f64>,
    /// Measured time, after the warm-up.
    pub duration: Duration,
    /// Time run before measuring (connections open, caches warm).
    pub warmup: Duration,
    pub request_bytes: usize,
    pub response_bytes: usize,
    /// Connections opened (and left idle) before the measured workload
    /// starts, for the idle-scale experiment.
    pub idle_connections: usize,
}

/// A spec that cannot run, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl LoadSpec {
    /// 64 B RPC, one connection, closed loop, 5 s after 1 s of warm-up.
    pub fn new(workload: Workload, target: SocketAddrV4) -> LoadSpec {
        LoadSpec {
            workload,
            target,
            connections: 1,
            pipeline: 1,
            rate: None,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            request_bytes: 64,
            response_bytes: 64,
            idle_connections: 0,
        }
    }

    /// Checks the combination; every error says what to change.
    pub fn validate(&self) -> Result<(), SpecError> {
        let err = |m: String| Err(SpecError(m));
        if self.connections == 0 {
            return err("--connections must be at least 1".into());
        }
        if self.pipeline == 0 {
            return err("--pipeline must be at least 1".into());
        }
        if self.duration.is_zero() {
            return err("--duration must be longer than zero".into());
        }
        if self.pipeline > 1 && !matches!(self.workload, Workload::Rpc | Workload::Http) {
            return err(format!(
                "--pipeline applies to rpc and http, not {}: drop it",
                self.workload
            ));
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return err(format!("--rate {rate} is not a positive request rate"));
            }
            if !self.workload.has_requests() {
                return err(format!(
                    "--rate applies to request workloads, not {}: drop it",
                    self.workload
                ));
            }
        }
        if self.workload == Workload::Rpc || self.workload == Workload::Short {
            if self.request_bytes == 0 || self.response_bytes == 0 {
                return err("--request-bytes and --response-bytes must be at least 1".into());
            }
            if self.request_bytes != self.response_bytes {
                return err(format!(
                    "the rpc server is an echo: --response-bytes ({}) must equal --request-bytes ({})",
                    self.response_bytes, self.request_bytes
                ));
            }
        }
        if self.target.port() == 0 || self.target.ip().is_unspecified() {
            return err(format!(
                "--target {} needs a concrete address and port",
                self.target
            ));
        }
        Ok(())
    }

    /// The response framing the workload's server produces.
    pub fn framing(&self) -> super::ResponseFraming {
        match self.workload {
            Workload::Http => super::ResponseFraming::Http,
            _ => super::ResponseFraming::Fixed(self.response_bytes),
        }
    }

    /// The bytes of one request.
    pub fn request(&self) -> Vec<u8> {
        match self.workload {
            Workload::Http => format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nUser-Agent: xdp-tcp-load\r\n\r\n",
                self.target
            )
            .into_bytes(),
            // A recognisable, position-dependent pattern: an echo that
            // reorders or drops bytes shows in a mismatch.
            _ => (0..self.request_bytes)
                .map(|i| b'a' + (i % 26) as u8)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SocketAddrV4 {
        "198.18.0.1:7".parse().unwrap()
    }

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>(), Ok(w));
        }
        assert!("bulk"
            .parse::<Workload>()
            .unwrap_err()
            .contains("bulk-send"));
    }

    #[test]
    fn validate_names_the_flag_to_fix() {
        let mut s = LoadSpec::new(Workload::Rpc, target());
        assert!(s.validate().is_ok());
        s.connections = 0;
        assert!(s.validate().unwrap_err().0.contains("--connections"));
        s.connections = 4;
        s.rate = Some(-1.0);
        assert!(s.validate().unwrap_err().0.contains("--rate"));
        s.rate = None;
        s.response_bytes = 10;
        assert!(s.validate().unwrap_err().0.contains("--response-bytes"));
        let mut b = LoadSpec::new(Workload::BulkSend, target());
        b.rate = Some(10.0);
        assert!(b.validate().unwrap_err().0.contains("drop it"));
        let mut short = LoadSpec::new(Workload::Short, target());
        short.pipeline = 4;
        assert!(short.validate().unwrap_err().0.contains("--pipeline"));
    }

    #[test]
    fn requests_have_the_asked_size() {
        let mut s = LoadSpec::new(Workload::Rpc, target());
        s.request_bytes = 100;
        s.response_bytes = 100;
        assert_eq!(s.request().len(), 100);
        let h = LoadSpec::new(Workload::Http, target()).request();
        assert!(h.starts_with(b"GET / HTTP/1.1\r\n") && h.ends_with(b"\r\n\r\n"));
    }
}
