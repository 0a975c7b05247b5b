//! Reads what `wrk --latency` prints, so `wrk` can be the external
//! kernel client of the HTTP row.

use super::results::Measurement;

/// A value with wrk's time unit (`us`, `ms`, `s`, `m`, `h`) in µs.
fn micros(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let mult = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(v * mult)
}

/// A value with wrk's binary size unit (`B`, `KB`, `MB`, `GB`, `TB`;
/// powers of 1024) in bytes.
fn bytes(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let exp = ["B", "KB", "MB", "GB", "TB"]
        .iter()
        .position(|u| *u == unit)?;
    Some(v * 1024f64.powi(exp as i32))
}

/// The measurement in wrk's output, or what is missing. Latency
/// quantiles come from `--latency`'s distribution (50/75/90/99 %; wrk
/// prints no 99.9 %, so that stays empty); errors add up socket errors and
/// non-2xx/3xx responses.
pub fn parse(out: &str) -> Result<Measurement, String> {
    let mut m = Measurement::default();
    let mut seconds = None;
    let mut read_bytes = None;
    let mut errors = 0u64;
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => m.requests_per_sec = v.parse().ok(),
            ["50%", v] => m.p50_us = micros(v),
            ["90%", v] => m.p90_us = micros(v),
            ["99%", v] => m.p99_us = micros(v),
            // "120000 requests in 2.00s, 15.00MB read"
            [n, "requests", "in", t, size, "read"] => {
                m.requests = n.parse().ok();
                seconds = micros(t.trim_end_matches(',')).map(|us| us / 1e6);
                read_bytes = bytes(size);
            }
            // "Socket errors: connect 0, read 0, write 0, timeout 0"
            ["Socket", "errors:", rest @ ..] => {
                errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                errors += n.parse::<u64>().unwrap_or(0);
            }
            _ => {}
        }
    }
    if m.requests_per_sec.is_none() {
        return Err("no 'Requests/sec:' line in wrk's output".into());
    }
    if let (Some(s), Some(b)) = (seconds, read_bytes) {
        if s > 0.0 {
            m.gbit_per_sec = Some(b * 8.0 / s / 1e9);
        }
    }
    m.errors = Some(errors);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running 2s test @ http://198.18.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   510.12us  100.23us   3.21ms   90.00%
    Req/Sec    60.12k     2.31k   65.00k    80.00%
  Latency Distribution
     50%  490.00us
     75%  550.00us
     90%  620.00us
     99%    1.10ms
  120000 requests in 2.00s, 15.00MB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:  60000.00
Transfer/sec:      7.50MB
";

    #[test]
    fn reads_rate_latency_volume_and_errors() {
        let m = parse(OUT).unwrap();
        assert_eq!(m.requests_per_sec, Some(60000.0));
        assert_eq!(m.requests, Some(120_000));
        assert_eq!(m.p50_us, Some(490.0));
        assert_eq!(m.p90_us, Some(620.0));
        assert_eq!(m.p99_us, Some(1100.0));
        assert_eq!(m.p999_us, None);
        assert_eq!(m.errors, Some(11));
        let gbit = m.gbit_per_sec.unwrap();
        assert!(
            (gbit - 15.0 * 1048576.0 * 8.0 / 2.0 / 1e9).abs() < 1e-9,
            "{gbit}"
        );
    }

    #[test]
    fn a_clean_run_has_zero_errors_and_units_scale() {
        let out = "  10 requests in 1.00m, 1.00KB read\nRequests/sec:      0.17\n";
        let m = parse(out).unwrap();
        assert_eq!(m.errors, Some(0));
        assert_eq!(m.requests, Some(10));
        assert!((m.gbit_per_sec.unwrap() - 1024.0 * 8.0 / 60.0 / 1e9).abs() < 1e-15);
        assert_eq!(micros("2.5s"), Some(2.5e6));
        assert_eq!(micros("7x"), None);
        assert_eq!(bytes("1.5GB"), Some(1.5 * 1024f64.powi(3)));
    }

    #[test]
    fn output_without_a_rate_is_an_error() {
        let err = parse("unable to connect to 198.18.0.1:8080 Connection refused\n").unwrap_err();
        assert!(err.contains("Requests/sec"), "{err}");
    }
}
