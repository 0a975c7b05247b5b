//! `discard`: reads and drops everything; closes after the peer's FIN.

use super::{App, Ctx};
use crate::tcp::{ConnId, TcpError};

pub struct Discard;

impl App for Discard {
    fn on_readable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        loop {
            // Zero-copy: consume straight out of the receive buffer.
            match ctx.stack.recv_with(conn, |a, b| a.len() + b.len()) {
                Ok(0) => {
                    let _ = ctx.stack.close(conn);
                    return;
                }
                Ok(_) => {}
                Err(TcpError::WouldBlock) => return,
                Err(_) => {
                    let _ = ctx.stack.close(conn);
                    return;
                }
            }
        }
    }
}
