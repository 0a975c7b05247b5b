//! `echo`: writes back every byte it reads; after the peer's FIN it
//! finishes echoing what is left, then closes.

use super::{App, Ctx};
use crate::tcp::{ConnId, State, TcpError};

pub struct Echo {
    /// Reusable copy buffer: data moves recv buffer → here → send buffer.
    scratch: Vec<u8>,
}

impl Echo {
    pub fn new() -> Echo {
        Echo {
            scratch: vec![0; 64 * 1024],
        }
    }

    /// Moves as much as the send buffer takes; unread data stays in the
    /// receive buffer, so the peer is flow-controlled by our window.
    ///
    /// The end of the peer's stream (`recv` → 0) is seen only once every
    /// byte before it was read and queued, so it closes at once: no state
    /// outlives the call (a per-connection set cost a hash per request).
    fn pump(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        loop {
            let room = match ctx.stack.send_capacity(conn) {
                Ok(r) => r.min(self.scratch.len()),
                Err(_) => return,
            };
            if room == 0 {
                return; // on_writable resumes
            }
            match ctx.stack.recv(conn, &mut self.scratch[..room]) {
                Ok(0) => {
                    // Everything read was queued; the FIN follows it.
                    let _ = ctx.stack.close(conn);
                    return;
                }
                Ok(n) => {
                    // `room` bytes fit by construction.
                    let _ = ctx.stack.send(conn, &self.scratch[..n]);
                    // Fewer than asked for: the receive buffer is empty.
                    // In ESTABLISHED no FIN has arrived (RFC 9293 §3.10.7.4:
                    // a FIN moves the connection to CLOSE-WAIT) and no error
                    // is pending (errors close the connection), so the next
                    // read could only say WouldBlock: skip it, one buffer
                    // check and one read per request less. Other states go
                    // round the loop to see the end of the stream.
                    if n < room && ctx.stack.state(conn) == Ok(State::Established) {
                        return;
                    }
                }
                Err(TcpError::WouldBlock) => return,
                Err(_) => {
                    let _ = ctx.stack.close(conn);
                    return;
                }
            }
        }
    }
}

impl Default for Echo {
    fn default() -> Self {
        Echo::new()
    }
}

impl App for Echo {
    fn on_readable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.pump(ctx, conn);
    }

    fn on_writable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.pump(ctx, conn);
    }
}
