//! `http`: a minimal HTTP/1.1 server for tests and benchmarks.
//!
//! Any GET (or HEAD) gets `200 OK` with a body of `body_bytes`; keep-alive
//! by default in HTTP/1.1 (RFC 9112 §9.3), `Connection: close` closes
//! after the response (so our side does the active close and holds
//! TIME-WAIT); HTTP/1.0 closes unless it asks for keep-alive. Pipelined
//! requests are answered in order. A malformed request gets `400` and a
//! close; other methods get `405`.

use std::collections::HashMap;

use super::{App, Ctx};
use crate::tcp::{CloseReason, ConnId, TcpError};

/// Longest request head we accept (request line + headers).
pub(crate) const MAX_HEAD: usize = 16 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reply {
    Ok,
    OkHead,
    MethodNotAllowed,
    BadRequest,
}

#[derive(Default)]
struct Conn {
    requests: RequestStream,
    /// The response being written and how much of it is queued.
    output: Option<(Reply, bool, usize)>,
    /// The peer finished sending.
    peer_done: bool,
}

/// A parsed request head: what to answer and whether to keep the connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) reply: Reply,
    pub(crate) keep_alive: bool,
    /// Request-body bytes that follow the head (Content-Length).
    pub(crate) body_len: usize,
}

/// The request side of one HTTP/1.1 connection: buffered input, framed
/// into requests (RFC 9112 §2: a head, then Content-Length body bytes,
/// which this server skips). Shared by the fast-path app and its
/// kernel-socket twin so both frame requests identically.
#[derive(Default)]
pub(crate) struct RequestStream {
    /// Received bytes not yet framed.
    pub(crate) input: Vec<u8>,
    /// Request-body bytes still to skip.
    skip: usize,
}

impl RequestStream {
    /// The answer to the next complete request, consuming it; `None` when
    /// more input is needed. An over-long head is a bad request.
    pub(crate) fn next_reply(&mut self) -> Option<(Reply, bool)> {
        let n = self.skip.min(self.input.len());
        self.input.drain(..n);
        self.skip -= n;
        if self.skip > 0 {
            return None;
        }
        if let Some(end) = find_head_end(&self.input) {
            let req = parse_head(&self.input[..end]);
            self.input.drain(..end);
            self.skip = req.body_len;
            return Some((req.reply, req.keep_alive));
        }
        if self.input.len() > MAX_HEAD {
            self.input.clear();
            return Some((Reply::BadRequest, false));
        }
        None
    }
}

/// Every response the server can give, built once: the fast-path app and
/// its kernel-socket twin send byte-identical answers.
pub(crate) struct Responses {
    responses: [[Vec<u8>; 2]; 4],
}

impl Responses {
    pub(crate) fn new(body_bytes: usize) -> Responses {
        let make = |status: &str, len: usize, body: bool| {
            [
                response(status, len, body, false),
                response(status, len, body, true),
            ]
        };
        Responses {
            responses: [
                make("200 OK", body_bytes, true),
                make("200 OK", body_bytes, false),
                make("405 Method Not Allowed", 0, true),
                make("400 Bad Request", 0, true),
            ],
        }
    }

    pub(crate) fn bytes(&self, reply: Reply, keep_alive: bool) -> &[u8] {
        let i = match reply {
            Reply::Ok => 0,
            Reply::OkHead => 1,
            Reply::MethodNotAllowed => 2,
            Reply::BadRequest => 3,
        };
        &self.responses[i][keep_alive as usize]
    }
}

pub struct Http {
    responses: Responses,
    conns: HashMap<ConnId, Conn>,
}

fn response(status: &str, body_len: usize, with_body: bool, keep_alive: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\nConnection: {}\r\n\r\n",
        if keep_alive { "keep-alive" } else { "close" }
    )
    .into_bytes();
    if with_body {
        r.extend((0..body_len).map(|i| b'a' + (i % 26) as u8));
    }
    r
}

impl Http {
    pub fn new(body_bytes: usize) -> Http {
        Http {
            responses: Responses::new(body_bytes),
            conns: HashMap::new(),
        }
    }

    fn bytes(&self, reply: Reply, keep_alive: bool) -> &[u8] {
        self.responses.bytes(reply, keep_alive)
    }

    /// Reads, answers complete requests, writes pending output; closes
    /// when a response says so or the peer is done and nothing is pending.
    fn drive(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        let keep = self.drive_conn(ctx, id, &mut conn);
        if keep {
            self.conns.insert(id, conn);
        } else {
            let _ = ctx.stack.close(id);
        }
    }

    fn drive_conn(&mut self, ctx: &mut Ctx<'_>, id: ConnId, conn: &mut Conn) -> bool {
        loop {
            // 1. Finish the response in progress.
            if let Some((reply, keep_alive, off)) = conn.output {
                let bytes = self.bytes(reply, keep_alive);
                match ctx.stack.send(id, &bytes[off..]) {
                    Ok(n) if off + n == bytes.len() => {
                        conn.output = None;
                        if !keep_alive {
                            return false;
                        }
                    }
                    Ok(n) => {
                        conn.output = Some((reply, keep_alive, off + n));
                        return true;
                    }
                    Err(TcpError::WouldBlock) => return true,
                    Err(_) => return false,
                }
            }
            // 2. Answer the next complete request already buffered.
            if let Some((reply, keep_alive)) = conn.requests.next_reply() {
                conn.output = Some((reply, keep_alive, 0));
                continue;
            }
            // 3. Read more.
            if conn.peer_done {
                // RFC 9112 §9.6: the client is done; nothing more will come.
                return false;
            }
            let room = MAX_HEAD + 1 - conn.requests.input.len().min(MAX_HEAD);
            let input = &mut conn.requests.input;
            match ctx.stack.recv_with(id, |a, b| {
                let n = (a.len() + b.len()).min(room);
                let from_a = n.min(a.len());
                input.extend_from_slice(&a[..from_a]);
                input.extend_from_slice(&b[..n - from_a]);
                n
            }) {
                Ok(0) => conn.peer_done = true,
                Ok(_) => {}
                Err(TcpError::WouldBlock) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Offset just past the blank line ending a request head, if complete.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Parses a request head (RFC 9112 §3 request line, §5 fields).
pub(crate) fn parse_head(head: &[u8]) -> Request {
    let bad = Request {
        reply: Reply::BadRequest,
        keep_alive: false,
        body_len: 0,
    };
    let Ok(text) = std::str::from_utf8(head) else {
        return bad;
    };
    let mut lines = text.split("\r\n");
    let Some(request_line) = lines.next() else {
        return bad;
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad;
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return bad,
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || target.is_empty() {
        return bad;
    }
    let mut keep_alive = http11;
    let mut body_len = 0usize;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return bad;
        };
        if name.is_empty() || name.ends_with(' ') {
            return bad; // RFC 9112 §5.1: no whitespace before the colon
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) => body_len = n,
                Err(_) => return bad,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked request bodies are not supported by this test server.
            return bad;
        }
    }
    let reply = match method {
        "GET" => Reply::Ok,
        "HEAD" => Reply::OkHead,
        _ => Reply::MethodNotAllowed,
    };
    Request {
        reply,
        keep_alive,
        body_len,
    }
}

impl App for Http {
    fn on_accepted(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.conns.insert(conn, Conn::default());
    }

    fn on_readable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.drive(ctx, conn);
    }

    fn on_writable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.drive(ctx, conn);
    }

    fn on_closed(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _reason: CloseReason) {
        self.conns.remove(&conn);
        let _ = ctx.stack.close(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_is_ok_and_keeps_alive_in_http11() {
        let r = parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            r,
            Request {
                reply: Reply::Ok,
                keep_alive: true,
                body_len: 0
            }
        );
    }

    #[test]
    fn connection_close_and_http10() {
        assert!(!parse_head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!parse_head(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(parse_head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn malformed_requests_are_bad() {
        for head in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(head).reply,
                Reply::BadRequest,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn other_methods_are_not_allowed_and_bodies_skipped() {
        let r = parse_head(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(r.reply, Reply::MethodNotAllowed);
        assert_eq!(r.body_len, 5);
    }

    #[test]
    fn request_stream_frames_pipelined_requests_and_skips_bodies() {
        let mut rs = RequestStream::default();
        rs.input
            .extend_from_slice(b"POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\nab");
        assert_eq!(rs.next_reply(), Some((Reply::MethodNotAllowed, true)));
        assert_eq!(rs.next_reply(), None, "4 body bytes still missing");
        rs.input
            .extend_from_slice(b"cdefGET / HTTP/1.1\r\nConnection: close\r\n\r\nGET");
        assert_eq!(rs.next_reply(), Some((Reply::Ok, false)));
        assert_eq!(rs.next_reply(), None);
        assert_eq!(rs.input, b"GET");
        rs.input.extend_from_slice(&vec![b'x'; MAX_HEAD + 1]);
        assert_eq!(rs.next_reply(), Some((Reply::BadRequest, false)));
        assert!(rs.input.is_empty());
    }

    #[test]
    fn responses_carry_the_body_length() {
        let h = Http::new(64);
        let r = String::from_utf8(h.bytes(Reply::Ok, true).to_vec()).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 64\r\n"));
        assert!(r.ends_with(&"abcdefghijklmnopqrstuvwxyz".repeat(3)[..64]));
        assert!(String::from_utf8_lossy(h.bytes(Reply::Ok, false)).contains("Connection: close"));
    }
}
