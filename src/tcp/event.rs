//! Events the engine reports to the application, and the handles it hands out.

/// A connection handle: a slab slot plus a generation, so a handle to a
/// freed connection can never reach the slot's next occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// A listening socket's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// Why a connection reached CLOSED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both directions finished with FINs (or our side left TIME-WAIT).
    Normal,
    /// The peer sent an acceptable RST (ECONNRESET).
    Reset,
    /// Our SYN was answered with RST (ECONNREFUSED).
    Refused,
    /// Retransmissions, SYN retries or keepalive probes exhausted (ETIMEDOUT).
    TimedOut,
    /// We aborted it (abort(), close with unread data, orphan timeouts).
    Aborted,
}

/// Edge-triggered notifications; the application then calls recv/send/accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A passively opened connection completed its handshake and waits in
    /// the listener's accept queue.
    Accepted { listener: ListenerId, conn: ConnId },
    /// An active open completed: the connection is ESTABLISHED.
    Connected(ConnId),
    /// Data, end of stream or an error is ready for `recv`.
    Readable(ConnId),
    /// Send-buffer space opened up after a write could not complete.
    Writable(ConnId),
    /// The connection reached CLOSED; the handle stays valid until `close`.
    Closed { conn: ConnId, reason: CloseReason },
}

impl Event {
    /// The connection the event is about.
    pub fn conn(&self) -> ConnId {
        match *self {
            Event::Accepted { conn, .. } | Event::Closed { conn, .. } => conn,
            Event::Connected(c) | Event::Readable(c) | Event::Writable(c) => c,
        }
    }
}
