//! Moving received bytes straight into the same connection's send buffer:
//! what an echo (or any reflector) does, without copying the bytes out to
//! the application and back. See [`Connection::splice_received`].

use super::{Connection, Effects};
use crate::tcp::error::TcpError;

impl Connection {
    /// Moves up to `max` in-order received bytes, oldest first, from the
    /// receive buffer to the end of the send buffer, as a `recv` into a
    /// buffer followed by a `send` of what was read would, with one copy.
    ///
    /// - `Ok(n)`, `n > 0`: `n` bytes moved. `n` is the smallest of `max`,
    ///   the bytes readable and the send buffer's free space. When the
    ///   send buffer was the limit, a `Writable` event follows once room
    ///   opens (as after a short `send`).
    /// - `Ok(0)`: end of stream (the peer's FIN with nothing left to read,
    ///   or a connection that failed and already reported its error), as
    ///   `recv` says it; also when `max` is 0.
    /// - `Err(WouldBlock)`: nothing to read yet, or the send buffer is
    ///   full (then `Writable` is armed); nothing moved.
    /// - Any error `send` would give (`BrokenPipe` after our FIN or a
    ///   reset, a pending error) while bytes are readable: nothing moved,
    ///   the bytes stay readable. `NotConnected` after `close`.
    ///
    /// The read side follows `recv`: the freed receive space is announced
    /// by the receiver's SWS-avoidance rule (RFC 9293 §3.8.6.2.2, RFC 1122
    /// §4.2.3.3), in a pure window update only when the peer may be
    /// starved, otherwise on the next segment (here, the data just queued).
    pub fn splice_received(&mut self, max: usize, fx: &mut Effects) -> Result<usize, TcpError> {
        self.readable_signalled = false;
        if self.read_closed {
            return Err(TcpError::NotConnected);
        }
        let readable = self.recv_buf.len();
        if readable == 0 {
            return self.nothing_readable();
        }
        if max == 0 {
            return Ok(0);
        }
        self.check_can_send()?;
        let wanted = max.min(readable);
        let room = self.send_buf.free();
        if room < wanted {
            self.want_writable = true;
        }
        let n = wanted.min(room);
        if n == 0 {
            return Err(TcpError::WouldBlock);
        }
        let (a, b) = self.recv_buf.peek();
        let first = n.min(a.len());
        let mut queued = self.send_buf.write(&a[..first]);
        if first < n {
            // The readable bytes wrap around the end of the receive ring.
            queued += self.send_buf.write(&b[..n - first]);
        }
        debug_assert_eq!(queued, n, "the send buffer had room for {n} bytes");
        self.consume_received(n, fx);
        if self.state.is_synchronized() {
            fx.output = true;
        }
        Ok(n)
    }
}
