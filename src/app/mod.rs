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

pub use thread::{Listener, Stream, StreamConnector};

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::runtime::active_open::Connector;
use crate::tcp::{CloseReason, ConnId, Instant, Stack, TcpError};
use crate::wire::MacAddr;

/// The worker's connector, or why there is none.
fn connector<'c>(c: &'c mut Option<&mut Connector>) -> Result<&'c mut Connector, TcpError> {
    c.as_deref_mut().ok_or(TcpError::InvalidInput(
        "this runtime has no client ports: start it with local client ports to connect",
    ))
}

/// What an application sees of its worker during a callback.
pub struct Ctx<'a> {
    pub stack: &'a mut Stack,
    pub now: Instant,
    /// The worker's client ports and next hops; None when the runtime
    /// was started without client ports (a pure server).
    pub(crate) connector: Option<&'a mut Connector>,
}

impl<'a> Ctx<'a> {
    /// A context for driving an [`App`] outside a worker (tests, custom
    /// loops); `connector` enables [`connect`](Self::connect).
    pub fn new(stack: &'a mut Stack, now: Instant, connector: Option<&'a mut Connector>) -> Self {
        Ctx {
            stack,
            now,
            connector,
        }
    }

    /// Opens a connection to `remote` (RFC 9293 §3.10.1) from one of the
    /// runtime's local addresses and a local port this worker owns, so
    /// every reply reaches this worker. Completion arrives as
    /// [`App::on_connected`]; failure as [`App::on_closed`] with
    /// [`CloseReason::Refused`] (ECONNREFUSED) or
    /// [`CloseReason::TimedOut`] (ETIMEDOUT after the SYN retries).
    /// `AddrNotAvailable` when every owned port to `remote` is taken.
    pub fn connect(&mut self, remote: SocketAddrV4) -> Result<ConnId, TcpError> {
        self.connect_inner(None, remote)
    }

    /// As [`connect`](Self::connect), from the local address `local_ip`
    /// (one of the runtime's local addresses).
    pub fn connect_from(
        &mut self,
        local_ip: Ipv4Addr,
        remote: SocketAddrV4,
    ) -> Result<ConnId, TcpError> {
        self.connect_inner(Some(local_ip), remote)
    }

    /// As [`connect`](Self::connect) (from `from`, if given), sending to
    /// the next hop `mac`: for destinations whose next hop was not
    /// resolved at start-up, resolved by a thread that may block (see
    /// [`NextHopCache`](crate::runtime::active_open::NextHopCache)).
    pub fn connect_via(
        &mut self,
        from: Option<Ipv4Addr>,
        remote: SocketAddrV4,
        mac: MacAddr,
    ) -> Result<ConnId, TcpError> {
        connector(&mut self.connector)?.connect_via(self.stack, self.now, from, remote, mac)
    }

    fn connect_inner(
        &mut self,
        from: Option<Ipv4Addr>,
        remote: SocketAddrV4,
    ) -> Result<ConnId, TcpError> {
        connector(&mut self.connector)?.connect(self.stack, self.now, from, remote)
    }

    /// The local addresses connections are opened from (empty without
    /// client ports).
    pub fn local_addrs(&self) -> &[Ipv4Addr] {
        self.connector.as_deref().map_or(&[], |c| c.local_addrs())
    }
}

/// Per-core application callbacks. Every method has a default that does
/// nothing, so an application implements only what it needs.
pub trait App: Send {
    /// A connection was accepted; the app owns `conn` from now on.
    fn on_accepted(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}
    /// An active open ([`Ctx::connect`]) completed: `conn` is ESTABLISHED.
    fn on_connected(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}
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
