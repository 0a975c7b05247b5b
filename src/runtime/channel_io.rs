//! Frame I/O over in-memory channels: lets workers run against a peer
//! stack in tests (and in examples) without AF_XDP or privileges.

use std::io;
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender};

use crate::runtime::doorbell::Doorbell;
use crate::runtime::io::FrameIo;
use crate::tcp::Transmit;

/// One end of an in-memory link: frames received on `rx`, sent on `tx`.
pub struct ChannelIo {
    rx: Receiver<Vec<u8>>,
    tx: Sender<Vec<u8>>,
    pending: Vec<Vec<u8>>,
    batch: usize,
    /// Flushes that handed at least one frame to the link.
    kicks: u64,
}

impl ChannelIo {
    pub fn new(rx: Receiver<Vec<u8>>, tx: Sender<Vec<u8>>, batch: usize) -> ChannelIo {
        ChannelIo {
            rx,
            tx,
            pending: Vec::new(),
            batch: batch.max(1),
            kicks: 0,
        }
    }
}

impl Transmit for ChannelIo {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, len: usize, fill: F) -> bool {
        if self.pending.len() >= self.batch {
            self.flush();
        }
        let mut buf = vec![0u8; len];
        let n = fill(&mut buf);
        buf.truncate(n);
        self.pending.push(buf);
        true
    }
}

impl FrameIo for ChannelIo {
    fn receive_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < self.batch {
            match self.rx.try_recv() {
                Ok(frame) => {
                    f(&frame);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.kicks += 1;
        }
        for frame in self.pending.drain(..) {
            // A closed peer is a link that went down: frames are lost.
            let _ = self.tx.send(frame);
        }
    }

    fn wait_readable(&self, timeout: Duration, doorbell: &Doorbell) {
        // Wait for readiness without consuming: the next receive_batch
        // takes the frame; the doorbell's token is drained by the worker.
        let mut sel = crossbeam::channel::Select::new();
        sel.recv(&self.rx);
        if let Some(bell) = doorbell.channel() {
            sel.recv(bell);
        }
        let _ = sel.ready_timeout(timeout);
    }

    fn doorbell(&self) -> io::Result<Doorbell> {
        Ok(Doorbell::with_channel())
    }

    fn tx_kicks(&self) -> u64 {
        self.kicks
    }
}
