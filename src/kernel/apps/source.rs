//! `source` on kernel sockets: the twin of [`crate::app::source`]. Sends
//! `bytes` of [`pattern_byte`]'s pattern, then FIN; reads and drops what
//! the client sends, and closes once the client has closed too.

use crate::app::source::pattern_byte;
use crate::kernel::handler::{
    read_some, write_some, Io, KernelApp, KernelReport, Next, ReadOutcome,
};

pub struct Source {
    bytes: usize,
    /// 251 × 264 bytes of the pattern (period 251): any offset modulo 251
    /// starts a run of at least 64 KiB.
    chunk: Vec<u8>,
    scratch: Vec<u8>,
}

#[derive(Default)]
pub struct SourceConn {
    sent: usize,
    fin_sent: bool,
}

impl Source {
    pub fn new(bytes: usize) -> Source {
        Source {
            bytes,
            chunk: (0..251u64 * 264).map(pattern_byte).collect(),
            scratch: vec![0; 16 * 1024],
        }
    }
}

impl KernelApp for Source {
    type Conn = SourceConn;

    fn accept(&mut self) -> SourceConn {
        SourceConn::default()
    }

    fn drive(&mut self, conn: &mut SourceConn, io: &mut impl Io, stats: &mut KernelReport) -> Next {
        while conn.sent < self.bytes {
            let off = conn.sent % 251;
            let want = (self.bytes - conn.sent).min(self.chunk.len() - off);
            match write_some(io, &self.chunk[off..off + want], stats) {
                Ok(n) => {
                    conn.sent += n;
                    if n < want {
                        break; // would block: read below, then wait for writable
                    }
                }
                Err(_) => return Next::Close,
            }
        }
        if conn.sent == self.bytes && !conn.fin_sent {
            if io.shutdown_write().is_err() {
                return Next::Close;
            }
            conn.fin_sent = true;
        }
        // Client bytes are not part of the exchange, but they are read:
        // closing a kernel socket with unread data would send RST and
        // could destroy the tail of the stream in flight (RFC 2525 §2.17).
        loop {
            match read_some(io, &mut self.scratch, stats) {
                ReadOutcome::Data(_) => {}
                // The client half-closed: keep sending until done; after
                // our FIN, both directions are finished.
                ReadOutcome::Eof if conn.fin_sent => return Next::Close,
                ReadOutcome::Eof | ReadOutcome::WouldBlock => return Next::Keep,
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
    fn sends_the_pattern_then_fin_and_waits_for_the_peer() {
        let mut app = Source::new(200_000);
        let mut conn = app.accept();
        let mut io = Pipe::with_room(70_001);
        let mut stats = KernelReport::default();
        assert_eq!(app.drive(&mut conn, &mut io, &mut stats), Next::Keep);
        assert_eq!(io.output.len(), 70_001);
        assert!(!io.fin_sent);
        io.room = 1_000_000;
        assert_eq!(app.drive(&mut conn, &mut io, &mut stats), Next::Keep);
        assert!(io.fin_sent);
        let expect: Vec<u8> = (0..200_000u64).map(pattern_byte).collect();
        assert!(io.output == expect, "the pattern is intact");
        io.input.push_back(b"ignored".to_vec());
        io.input.push_back(Vec::new());
        assert_eq!(app.drive(&mut conn, &mut io, &mut stats), Next::Close);
        assert_eq!(stats.bytes_sent, 200_000);
    }
}
