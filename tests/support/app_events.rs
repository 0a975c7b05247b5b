//! Runs an [`App`] on a stack's pending events the way a worker does, for
//! tests that drive engines in memory or on the simulator.

use xdp_tcp::app::{App, Ctx};
use xdp_tcp::runtime::Connector;
use xdp_tcp::tcp::{Event, Instant, Stack};

/// Runs `app` on every pending event of `stack`, then its tick, as a
/// worker does: an accepted connection is also offered as readable, since
/// data may have come with the handshake's last ACK.
pub fn dispatch(
    stack: &mut Stack,
    app: &mut dyn App,
    now: Instant,
    mut connector: Option<&mut Connector>,
) {
    while let Some(ev) = stack.next_event() {
        let mut ctx = Ctx::new(stack, now, connector.as_deref_mut());
        match ev {
            Event::Accepted { listener, .. } => {
                if let Ok(conn) = ctx.stack.accept(listener) {
                    app.on_accepted(&mut ctx, conn);
                    app.on_readable(&mut ctx, conn);
                }
            }
            Event::Connected(c) => app.on_connected(&mut ctx, c),
            Event::Readable(c) => app.on_readable(&mut ctx, c),
            Event::Writable(c) => app.on_writable(&mut ctx, c),
            Event::Closed { conn, reason } => app.on_closed(&mut ctx, conn, reason),
        }
    }
    app.on_tick(&mut Ctx::new(stack, now, connector));
}
