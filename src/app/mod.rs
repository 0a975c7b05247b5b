//! The application API and the built-in applications.
//!
//! An [`App`] runs on a worker, one instance per worker, to completion:
//! the worker calls it for each event of its stack and it reads and writes
//! through the [`Ctx`] it is given (zero-copy reads with
//! [`Stack::recv_with`](crate::tcp::Stack::recv_with)).
//!
//! Ordinary threads use connections through the [`bridge`] instead: a
//! [`BridgeApp`](bridge::BridgeApp) on each worker hands accepted
//! connections to a blocking, `std::net`-like [`Listener`] / [`Stream`].
pub mod bridge;
pub mod discard;
pub mod echo;
pub mod hold;
pub mod http;
pub mod source;
pub mod thread;

pub use thread::{Listener, Stream};

use crate::tcp::{CloseReason, ConnId, Instant, Stack};

/// What an application sees of its worker during a callback.
pub struct Ctx<'a> {
    pub stack: &'a mut Stack,
    pub now: Instant,
}

/// Per-core application callbacks. Every method has a default that does
/// nothing, so an application implements only what it needs.
pub trait App: Send {
    /// A connection was accepted; the app owns `conn` from now on.
    fn on_accepted(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}
    /// Data, end of stream or an error is waiting in `recv`.
    fn on_readable(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}
    /// Send-buffer space opened after a write could not complete.
    fn on_writable(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}
    /// The connection reached CLOSED without the app closing it (reset,
    /// timeout) or finished normally; the app should `close` the handle.
    fn on_closed(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _reason: CloseReason) {
        let _ = ctx.stack.close(conn);
    }
    /// Called once per worker loop iteration, for application timers and
    /// work handed over by other threads.
    fn on_tick(&mut self, _ctx: &mut Ctx<'_>) {}
    /// The worker begins a graceful shutdown: right after this call it
    /// closes its listeners and every connection the application holds
    /// (FIN, or RST with unread data). The application keeps receiving
    /// callbacks until the drain ends.
    fn on_shutdown(&mut self, _ctx: &mut Ctx<'_>) {}
}

/// The built-in applications, by name, with their options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuiltinApp {
    Echo,
    Discard,
    Http { body_bytes: usize },
    Source { bytes: usize },
    Hold { hold_ms: Option<u64> },
}

impl BuiltinApp {
    /// A fresh instance for one worker.
    pub fn instantiate(&self) -> Box<dyn App> {
        match *self {
            BuiltinApp::Echo => Box::new(echo::Echo::new()),
            BuiltinApp::Discard => Box::new(discard::Discard),
            BuiltinApp::Http { body_bytes } => Box::new(http::Http::new(body_bytes)),
            BuiltinApp::Source { bytes } => Box::new(source::Source::new(bytes)),
            BuiltinApp::Hold { hold_ms } => Box::new(hold::Hold::new(hold_ms)),
        }
    }
}
