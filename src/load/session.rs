//! One client connection's request/response bookkeeping, sans-IO.
//!
//! The driver writes whole requests (it keeps the unsent tail of a
//! request itself) and calls [`RequestStream::sent`] with the request's
//! intended send time; it feeds every byte read to
//! [`RequestStream::received`], which frames the responses and reports
//! the intended send time of each complete one, oldest first (responses
//! on one connection come back in request order).

use std::collections::VecDeque;

/// How the server delimits one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// Exactly this many bytes (the echo server).
    Fixed(usize),
    /// An HTTP/1.1 response with a `Content-Length` body.
    Http,
}

/// The server sent something the workload does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the server sent {0} byte(s) no request asked for")]
    Unsolicited(usize),
    #[error("malformed HTTP response: {0}")]
    BadHttp(&'static str),
    #[error("HTTP status {0}")]
    HttpStatus(u16),
}

/// Longest HTTP response head accepted.
const MAX_HEAD: usize = 8192;

/// The requests in flight on one connection and the response being read.
#[derive(Debug)]
pub struct RequestStream {
    framing: ResponseFraming,
    /// Intended send times (ns) of requests not yet answered, oldest first.
    in_flight: VecDeque<u64>,
    /// Fixed: bytes of the current response seen; Http: body bytes left.
    progress: usize,
    /// Http: the response head read so far (None while in a body).
    head: Vec<u8>,
    in_body: bool,
}

impl RequestStream {
    pub fn new(framing: ResponseFraming) -> RequestStream {
        RequestStream {
            framing,
            in_flight: VecDeque::new(),
            progress: 0,
            head: Vec::new(),
            in_body: false,
        }
    }

    /// A whole request was handed to the stack; `intended_ns` is when it
    /// was meant to go (closed loop: when it went).
    pub fn sent(&mut self, intended_ns: u64) {
        self.in_flight.push_back(intended_ns);
    }

    /// Forgets every request and partial response (the connection was
    /// replaced), keeping the buffers' capacity: a client reconnecting for
    /// every exchange allocates nothing for it.
    pub fn clear(&mut self) {
        self.in_flight.clear();
        self.progress = 0;
        self.head.clear();
        self.in_body = false;
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Frames `data`; calls `done(intended_ns)` for every response that
    /// completes. An error leaves the stream unusable: close the
    /// connection and count it.
    pub fn received(
        &mut self,
        mut data: &[u8],
        mut done: impl FnMut(u64),
    ) -> Result<(), SessionError> {
        while !data.is_empty() {
            if self.in_flight.is_empty() {
                return Err(SessionError::Unsolicited(data.len()));
            }
            let used = match self.framing {
                ResponseFraming::Fixed(size) => {
                    let take = (size - self.progress).min(data.len());
                    self.progress += take;
                    if self.progress == size {
                        self.progress = 0;
                        self.complete(&mut done);
                    }
                    take
                }
                ResponseFraming::Http => self.http(data, &mut done)?,
            };
            data = &data[used..];
        }
        Ok(())
    }

    fn complete(&mut self, done: &mut impl FnMut(u64)) {
        if let Some(t) = self.in_flight.pop_front() {
            done(t);
        }
    }

    /// Consumes part of `data` for the HTTP response in progress.
    fn http(&mut self, data: &[u8], done: &mut impl FnMut(u64)) -> Result<usize, SessionError> {
        if self.in_body {
            let take = self.progress.min(data.len());
            self.progress -= take;
            if self.progress == 0 {
                self.in_body = false;
                self.complete(done);
            }
            return Ok(take);
        }
        // Look for the end of the head across what came before.
        let before = self.head.len();
        let search_from = before.saturating_sub(3);
        self.head.extend_from_slice(data);
        let Some(end) = self.head[search_from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| search_from + p + 4)
        else {
            if self.head.len() > MAX_HEAD {
                return Err(SessionError::BadHttp("response head longer than 8 KiB"));
            }
            return Ok(data.len());
        };
        let body = parse_head(&self.head[..end])?;
        self.head.clear();
        let used = end - before;
        if body == 0 {
            self.complete(done);
        } else {
            self.in_body = true;
            self.progress = body;
        }
        Ok(used)
    }
}

/// The body length of a response head (status line and headers); a
/// status other than 2xx is an error.
fn parse_head(head: &[u8]) -> Result<usize, SessionError> {
    let text = std::str::from_utf8(head).map_err(|_| SessionError::BadHttp("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split(' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(SessionError::BadHttp("status line is not HTTP/1.x"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(SessionError::BadHttp("no status code"))?;
    if !(200..300).contains(&status) {
        return Err(SessionError::HttpStatus(status));
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                return value
                    .trim()
                    .parse()
                    .map_err(|_| SessionError::BadHttp("bad Content-Length"));
            }
            if name.trim().eq_ignore_ascii_case("transfer-encoding") {
                return Err(SessionError::BadHttp("chunked bodies are not supported"));
            }
        }
    }
    Err(SessionError::BadHttp("no Content-Length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(s: &mut RequestStream, chunks: &[&[u8]]) -> Result<Vec<u64>, SessionError> {
        let mut out = Vec::new();
        for c in chunks {
            s.received(c, |t| out.push(t))?;
        }
        Ok(out)
    }

    #[test]
    fn fixed_responses_complete_in_order_across_splits() {
        let mut s = RequestStream::new(ResponseFraming::Fixed(4));
        s.sent(10);
        s.sent(20);
        s.sent(30);
        let done = feed(&mut s, &[b"ab", b"cdef", b"ghijk"]).unwrap();
        assert_eq!(done, vec![10, 20]);
        assert_eq!(s.in_flight(), 1);
        assert_eq!(feed(&mut s, &[b"l"]).unwrap(), vec![30]);
        assert_eq!(s.in_flight(), 0);
        // A replaced connection starts over mid-response.
        s.sent(40);
        feed(&mut s, &[b"xy"]).unwrap();
        s.clear();
        assert_eq!(s.in_flight(), 0);
        s.sent(50);
        assert_eq!(feed(&mut s, &[b"abcd"]).unwrap(), vec![50]);
    }

    #[test]
    fn bytes_nobody_asked_for_are_an_error() {
        let mut s = RequestStream::new(ResponseFraming::Fixed(4));
        s.sent(1);
        assert_eq!(feed(&mut s, &[b"abcdX"]), Err(SessionError::Unsolicited(1)));
    }

    #[test]
    fn http_responses_are_framed_by_content_length() {
        let mut s = RequestStream::new(ResponseFraming::Http);
        s.sent(1);
        s.sent(2);
        s.sent(3);
        let r1 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let r2 = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        let mut all = Vec::new();
        all.extend_from_slice(r1);
        all.extend_from_slice(r2);
        all.extend_from_slice(r1);
        // Every split point, byte by byte.
        let chunks: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(feed(&mut s, &chunks).unwrap(), vec![1, 2, 3]);
        let mut whole = RequestStream::new(ResponseFraming::Http);
        whole.sent(7);
        whole.sent(8);
        whole.sent(9);
        assert_eq!(feed(&mut whole, &[&all]).unwrap(), vec![7, 8, 9]);
    }

    #[test]
    fn http_errors_are_reported() {
        let mut s = RequestStream::new(ResponseFraming::Http);
        s.sent(1);
        assert_eq!(
            feed(
                &mut s,
                &[b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"]
            ),
            Err(SessionError::HttpStatus(400))
        );
        let mut s = RequestStream::new(ResponseFraming::Http);
        s.sent(1);
        assert!(matches!(
            feed(&mut s, &[b"SSH-2.0\r\n\r\n"]),
            Err(SessionError::BadHttp(_))
        ));
        let mut s = RequestStream::new(ResponseFraming::Http);
        s.sent(1);
        let long = vec![b'x'; MAX_HEAD + 10];
        assert!(matches!(
            feed(&mut s, &[&long]),
            Err(SessionError::BadHttp(_))
        ));
    }
}
