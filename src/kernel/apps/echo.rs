//! `echo` on kernel sockets: the twin of [`crate::app::echo`]. Writes
//! back every byte it reads; after the peer's FIN it finishes echoing
//! what is left, then closes.

use crate::kernel::handler::{
    read_some, write_some, Io, KernelApp, KernelReport, Next, ReadOutcome,
};

pub struct Echo {
    /// Reused for every read on this thread.
    scratch: Vec<u8>,
}

#[derive(Default)]
pub struct EchoConn {
    /// Read but not yet written back (the socket's send buffer was
    /// full); its capacity is kept for the next time.
    pending: Vec<u8>,
    written: usize,
    peer_done: bool,
}

impl Echo {
    pub fn new() -> Echo {
        Echo {
            scratch: vec![0; 64 * 1024],
        }
    }
}

impl Default for Echo {
    fn default() -> Self {
        Echo::new()
    }
}

impl KernelApp for Echo {
    type Conn = EchoConn;

    fn accept(&mut self) -> EchoConn {
        EchoConn::default()
    }

    fn drive(&mut self, conn: &mut EchoConn, io: &mut impl Io, stats: &mut KernelReport) -> Next {
        loop {
            // Nothing more is read while a backlog waits: the kernel's
            // receive window then flow-controls the peer, as the fast
            // path's echo does by leaving data in its receive buffer.
            if conn.written < conn.pending.len() {
                match write_some(io, &conn.pending[conn.written..], stats) {
                    Ok(n) => conn.written += n,
                    Err(_) => return Next::Close,
                }
                if conn.written < conn.pending.len() {
                    return Next::Keep;
                }
                conn.pending.clear();
                conn.written = 0;
            }
            if conn.peer_done {
                // Everything was echoed; closing sends our FIN.
                return Next::Close;
            }
            match read_some(io, &mut self.scratch, stats) {
                ReadOutcome::Data(n) => match write_some(io, &self.scratch[..n], stats) {
                    Ok(w) if w < n => conn.pending.extend_from_slice(&self.scratch[w..n]),
                    Ok(_) => {}
                    Err(_) => return Next::Close,
                },
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
    fn a_full_send_buffer_holds_the_rest_until_writable() {
        let mut app = Echo::new();
        let mut conn = app.accept();
        let mut io = Pipe::with_room(5);
        let mut stats = KernelReport::default();
        io.input.push_back(b"hello world".to_vec());
        io.input.push_back(b"!".to_vec());
        assert_eq!(app.drive(&mut conn, &mut io, &mut stats), Next::Keep);
        assert_eq!(io.output, b"hello");
        // The backlog stops further reads.
        assert_eq!(io.input.len(), 1);
        io.room = 100;
        io.input.push_back(Vec::new()); // FIN
        assert_eq!(app.drive(&mut conn, &mut io, &mut stats), Next::Close);
        assert_eq!(io.output, b"hello world!");
        assert_eq!(stats.bytes_received, 12);
        assert_eq!(stats.bytes_sent, 12);
    }
}
