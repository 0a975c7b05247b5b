//! A fixed pool of frame buffers between two in-memory engines, like a TX
//! ring: no allocation per frame, so the allocation tests can count.

use xdp_tcp::tcp::{Instant, Stack, Transmit};

/// Largest frame a slot holds.
const SLOT: usize = 2048;

pub struct FrameRing {
    frames: Vec<Vec<u8>>,
    lens: Vec<usize>,
    used: usize,
}

impl FrameRing {
    /// A ring of `slots` frames, allocated now.
    pub fn new(slots: usize) -> FrameRing {
        FrameRing {
            frames: (0..slots).map(|_| vec![0u8; SLOT]).collect(),
            lens: vec![0; slots],
            used: 0,
        }
    }

    /// Moves every frame into `to`'s receive path and empties the ring.
    pub fn deliver(&mut self, to: &mut Stack, now: Instant) {
        for i in 0..self.used {
            to.receive(now, &self.frames[i][..self.lens[i]]);
        }
        self.used = 0;
    }
}

impl Transmit for FrameRing {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        if self.used == self.frames.len() || len > SLOT {
            return false;
        }
        self.lens[self.used] = fill(&mut self.frames[self.used][..len]);
        self.used += 1;
        true
    }
}
