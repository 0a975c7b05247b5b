//! Lock-free hand-off of frames between workers.
//!
//! A frame that reaches a worker which owns neither its connection nor a
//! listener for its SYN may belong to another worker (the NIC's queue
//! choice changed, or hashing differs per direction). It travels round
//! the workers, each checking its own flow table; if it comes back to
//! where it started, nobody owns it and it is answered like any segment
//! for no connection. Buffers come from fixed per-worker pools: no
//! allocation and no lock on the way.

use crossbeam::queue::ArrayQueue;

/// Largest frame handed over (an Ethernet frame at MTU 1500 is 1514 bytes;
/// jumbo frames never reach AF_XDP in copy mode with 2 KiB UMEM frames).
pub const HANDOFF_FRAME: usize = 2048;

/// A frame in transit between workers.
pub struct HandoffFrame {
    /// The worker that received it from the NIC (and owns the buffer).
    pub origin: usize,
    /// Workers that have refused it so far.
    pub hops: usize,
    pub len: usize,
    pub buf: Box<[u8; HANDOFF_FRAME]>,
}

impl HandoffFrame {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Inboxes and buffer pools of all workers.
pub struct Handoff {
    inboxes: Vec<ArrayQueue<HandoffFrame>>,
    pools: Vec<ArrayQueue<Box<[u8; HANDOFF_FRAME]>>>,
}

impl Handoff {
    /// `depth` frames may be in flight from each worker at once.
    pub fn new(workers: usize, depth: usize) -> Handoff {
        let depth = depth.max(1);
        let pools = (0..workers)
            .map(|_| {
                let q = ArrayQueue::new(depth);
                for _ in 0..depth {
                    let _ = q.push(Box::new([0u8; HANDOFF_FRAME]));
                }
                q
            })
            .collect();
        let inboxes = (0..workers)
            .map(|_| ArrayQueue::new(depth * workers))
            .collect();
        Handoff { inboxes, pools }
    }

    pub fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Sends a copy of `frame`, first received by `origin`, to worker `to`.
    /// Returns false (the frame is dropped; TCP retransmits) when the pool
    /// or the inbox is exhausted or the frame is too large.
    pub fn forward(&self, origin: usize, hops: usize, to: usize, frame: &[u8]) -> bool {
        if frame.len() > HANDOFF_FRAME {
            return false;
        }
        let Some(mut buf) = self.pools[origin].pop() else {
            return false;
        };
        buf[..frame.len()].copy_from_slice(frame);
        let item = HandoffFrame {
            origin,
            hops,
            len: frame.len(),
            buf,
        };
        match self.inboxes[to].push(item) {
            Ok(()) => true,
            Err(item) => {
                let _ = self.pools[origin].push(item.buf);
                false
            }
        }
    }

    /// Passes the frame on to the next worker, keeping its buffer.
    pub fn pass_on(&self, me: usize, mut item: HandoffFrame) -> bool {
        item.hops += 1;
        let to = (me + 1) % self.workers();
        match self.inboxes[to].push(item) {
            Ok(()) => true,
            Err(item) => {
                self.release(item);
                false
            }
        }
    }

    /// Takes the next frame waiting for worker `me`.
    pub fn pop(&self, me: usize) -> Option<HandoffFrame> {
        self.inboxes[me].pop()
    }

    /// Returns a frame's buffer to its origin's pool.
    pub fn release(&self, item: HandoffFrame) {
        let _ = self.pools[item.origin].push(item.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_travel_and_buffers_return() {
        let h = Handoff::new(3, 2);
        assert!(h.forward(0, 1, 1, b"abc"));
        assert!(h.forward(0, 1, 1, b"def"));
        // Worker 0's pool is empty now: a third forward is refused.
        assert!(!h.forward(0, 1, 2, b"ghi"));
        let item = h.pop(1).unwrap();
        assert_eq!(item.bytes(), b"abc");
        assert!(h.pass_on(1, item));
        let item = h.pop(2).unwrap();
        assert_eq!(item.hops, 2);
        h.release(item);
        assert!(h.forward(0, 1, 2, b"ghi"));
        assert!(h.pop(0).is_none());
    }

    #[test]
    fn oversized_frames_are_refused() {
        let h = Handoff::new(2, 1);
        assert!(!h.forward(0, 1, 1, &[0u8; HANDOFF_FRAME + 1]));
        assert!(h.forward(0, 1, 1, &[0u8; HANDOFF_FRAME]));
    }
}
