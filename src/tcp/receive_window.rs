//! The window a receiver advertises (RFC 9293 §3.8.6): receiver SWS
//! avoidance, a right edge that never moves left, scaled (RFC 7323 §2.3).
//! Shared by connections and TIME-WAIT records (`tcp::time_wait`).

/// What a receiver may offer. In `u32`s (a scaled window is below 2^30),
/// so a TIME-WAIT record keeps it in 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReceiveRoom {
    /// Free receive space we may offer (the buffer's room less its slack).
    pub(crate) free: u32,
    /// The room of the buffer itself, slack included: no window beyond it.
    pub(crate) room: u32,
    /// RFC 9293 §3.8.6.2.2: a window grows only by at least this much
    /// (min(buffer / 2, MSS)).
    pub(crate) sws_threshold: u32,
    /// Our window scale shift.
    pub(crate) scale: u8,
}

impl ReceiveRoom {
    /// From the buffer's numbers (each saturating at `u32::MAX`).
    pub(crate) fn new(free: usize, room: usize, sws_threshold: usize, scale: u8) -> ReceiveRoom {
        let narrow = |n: usize| n.min(u32::MAX as usize) as u32;
        ReceiveRoom {
            free: narrow(free),
            room: narrow(room),
            sws_threshold: narrow(sws_threshold),
            scale,
        }
    }
}

/// The window field and the bytes it advertises for a non-SYN segment,
/// `current` being what the last advertisement still offers beyond
/// RCV.NXT.
pub(crate) fn window_to_advertise(room: ReceiveRoom, current: usize) -> (u16, usize) {
    let (free, buffer_room) = (room.free as usize, room.room as usize);
    let mut wnd = free;
    if wnd > current && wnd - current < room.sws_threshold as usize {
        wnd = current;
    }
    wnd = wnd.max(current);
    let scale = room.scale;
    let mut field = wnd >> scale;
    if (field << scale) < current {
        field += 1;
    }
    // Rounding up keeps the right edge from moving left (§3.8.6), and
    // the ring's slack of 2^scale − 1 bytes covers one rounding. But
    // each small arrival re-rounds from a new RCV.NXT; when the edge
    // would pass what the buffer can really hold, shrink by less than
    // one scale unit instead (RFC 7323 §2.4 allows it): a window the
    // receiver cannot honour would drop in-window data for ever.
    if (field << scale) > buffer_room {
        field = buffer_room >> scale;
    }
    let field = field.min(u16::MAX as usize);
    (field as u16, field << scale)
}
