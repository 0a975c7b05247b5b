//! `source`: on accept sends `bytes` of a deterministic pattern, then
//! closes. The pattern lets a client verify every byte.

use std::collections::HashMap;

use super::{App, Ctx};
use crate::tcp::{ConnId, TcpError};

/// Byte `i` of the stream `source` sends.
pub fn pattern_byte(i: u64) -> u8 {
    // A byte sequence with period 251 (prime): offsets, drops and
    // duplications all show up as mismatches.
    ((i % 251) as u8).wrapping_mul(7).wrapping_add(3)
}

pub struct Source {
    bytes: usize,
    /// Bytes already queued per connection.
    sent: HashMap<ConnId, usize>,
    chunk: Vec<u8>,
}

impl Source {
    pub fn new(bytes: usize) -> Source {
        // 251 × 256 bytes: every chunk starts at pattern offset 0.
        let chunk = (0..251u64 * 256).map(pattern_byte).collect();
        Source {
            bytes,
            sent: HashMap::new(),
            chunk,
        }
    }

    fn pump(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(sent) = self.sent.get_mut(&conn) else {
            return;
        };
        while *sent < self.bytes {
            let off = *sent % self.chunk.len();
            let want = (self.bytes - *sent).min(self.chunk.len() - off);
            match ctx.stack.send(conn, &self.chunk[off..off + want]) {
                Ok(n) => *sent += n,
                Err(TcpError::WouldBlock) => return,
                Err(_) => break,
            }
        }
        self.sent.remove(&conn);
        let _ = ctx.stack.close(conn);
    }
}

impl App for Source {
    fn on_accepted(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.sent.insert(conn, 0);
        self.pump(ctx, conn);
    }

    fn on_writable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.pump(ctx, conn);
    }

    fn on_readable(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        // Whatever the client sends is not part of the exchange.
        while let Ok(n) = ctx.stack.recv_with(conn, |a, b| a.len() + b.len()) {
            if n == 0 {
                break;
            }
        }
    }

    fn on_closed(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _reason: crate::tcp::CloseReason) {
        self.sent.remove(&conn);
        let _ = ctx.stack.close(conn);
    }
}
