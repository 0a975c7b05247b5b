//! `http` on kernel sockets: the twin of [`crate::app::http`], with the
//! same request framing and byte-identical responses, keep-alive and
//! `Connection: close` alike.

use crate::app::http::{Reply, RequestStream, Responses, MAX_HEAD};
use crate::kernel::handler::{
    read_some, write_some, Io, KernelApp, KernelReport, Next, ReadOutcome,
};

pub struct Http {
    responses: Responses,
    scratch: Vec<u8>,
}

#[derive(Default)]
pub struct HttpConn {
    requests: RequestStream,
    /// The response being written: (reply, keep-alive, bytes written).
    output: Option<(Reply, bool, usize)>,
    peer_done: bool,
}

impl Http {
    pub fn new(body_bytes: usize) -> Http {
        Http {
            responses: Responses::new(body_bytes),
            scratch: vec![0; 16 * 1024],
        }
    }
}

impl KernelApp for Http {
    type Conn = HttpConn;

    fn accept(&mut self) -> HttpConn {
        HttpConn::default()
    }

    fn drive(&mut self, conn: &mut HttpConn, io: &mut impl Io, stats: &mut KernelReport) -> Next {
        loop {
            // 1. Finish the response in progress.
            if let Some((reply, keep_alive, off)) = conn.output {
                let bytes = self.responses.bytes(reply, keep_alive);
                match write_some(io, &bytes[off..], stats) {
                    Ok(n) if off + n == bytes.len() => {
                        conn.output = None;
                        if !keep_alive {
                            // Our FIN follows the response (we close first).
                            let _ = io.shutdown_write();
                            return Next::Close;
                        }
                    }
                    Ok(n) => {
                        conn.output = Some((reply, keep_alive, off + n));
                        return Next::Keep;
                    }
                    Err(_) => return Next::Close,
                }
            }
            // 2. Answer the next complete request already buffered.
            if let Some((reply, keep_alive)) = conn.requests.next_reply() {
                conn.output = Some((reply, keep_alive, 0));
                stats.requests += 1;
                continue;
            }
            // 3. Read more.
            if conn.peer_done {
                // RFC 9112 §9.6: the client is done; nothing more will come.
                return Next::Close;
            }
            let room =
                (MAX_HEAD + 1 - conn.requests.input.len().min(MAX_HEAD)).min(self.scratch.len());
            match read_some(io, &mut self.scratch[..room], stats) {
                ReadOutcome::Data(n) => conn.requests.input.extend_from_slice(&self.scratch[..n]),
                ReadOutcome::Eof => conn.peer_done = true,
                ReadOutcome::WouldBlock => return Next::Keep,
                ReadOutcome::Failed => return Next::Close,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::handler::testing::Pipe;

    #[test]
    fn answers_pipelined_requests_like_the_fast_path_app() {
        let mut app = Http::new(10);
        let mut conn = app.accept();
        let mut io = Pipe::with_room(1 << 20);
        let mut stats = KernelReport::default();
        io.input.push_back(
            b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
        );
        assert_eq!(app.drive(&mut conn, &mut io, &mut stats), Next::Close);
        let responses = Responses::new(10);
        let mut expect = responses.bytes(Reply::Ok, true).to_vec();
        expect.extend_from_slice(responses.bytes(Reply::Ok, false));
        assert_eq!(io.output, expect);
        assert!(io.fin_sent);
        assert_eq!(stats.requests, 2);
    }
}
