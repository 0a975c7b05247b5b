//! `echo`: writes back every byte it reads; after the peer's FIN it
//! finishes echoing what is left, then closes.

use super::{App, Ctx};
use crate::tcp::{ConnId, State, TcpError};

pub struct Echo;

impl Echo {
    pub fn new() -> Echo {
        Echo
    }

    /// Moves what was received into the send buffer, inside the engine
    /// (`Stack::echo_received`: one copy, no buffer of ours); unmoved data
    /// stays in the receive buffer, so the peer is flow-controlled by our
    /// window, and a full send buffer arms `on_writable`.
    ///
    /// The end of the peer's stream (`Ok(0)`) is seen only once every
    /// byte before it was queued, so it closes at once: no state outlives
    /// the call (a per-connection set cost a hash per request).
    fn pump(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        loop {
            match ctx.stack.echo_received(conn, usize::MAX) {
                Ok(0) => {
                    // Everything received was queued; the FIN follows it.
                    let _ = ctx.stack.close(conn);
                    return;
                }
                Ok(_) => {
                    // One call moved all it could: the receive buffer is
                    // empty, or the send buffer full (`on_writable`
                    // resumes). In ESTABLISHED no FIN has arrived (RFC 9293
                    // §3.10.7.4: a FIN moves the connection to CLOSE-WAIT)
                    // and no error is pending (errors close the
                    // connection), so another call could only say
                    // WouldBlock: skip it. Other states go round the loop
                    // to see the end of the stream.
                    if ctx.stack.state(conn) == Ok(State::Established) {
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
