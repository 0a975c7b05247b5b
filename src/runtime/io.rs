//! What a worker needs from its frame I/O. AF_XDP sockets implement it;
//! so can an in-memory pipe in tests.

use std::io;
use std::time::Duration;

use crate::runtime::doorbell::Doorbell;
use crate::tcp::Transmit;
use crate::xdp::KernelRxDrops;

pub trait FrameIo: Transmit + Send {
    /// Calls `f` for each received frame of one batch; returns how many.
    fn receive_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> usize;
    /// Sends what `Transmit` produced since the last flush.
    fn flush(&mut self);
    /// Sleeps until a frame may be readable, `doorbell` is rung (when it
    /// is of the kind [`doorbell`](Self::doorbell) makes), or `timeout`
    /// passes.
    fn wait_readable(&self, timeout: Duration, doorbell: &Doorbell);
    /// A doorbell this I/O can sleep on, for the worker that owns it.
    fn doorbell(&self) -> io::Result<Doorbell>;
    /// Transmit wake-ups (system calls, or hand-overs of a batch to the
    /// link) made so far; 0 for an I/O that does not count them.
    fn tx_kicks(&self) -> u64 {
        0
    }
    /// Frames the layer below dropped before this I/O could receive them
    /// (a system call on AF_XDP: for reports, not the fast path); zeros
    /// for an I/O that cannot drop.
    fn kernel_rx_drops(&self) -> KernelRxDrops {
        KernelRxDrops::default()
    }
}

impl FrameIo for crate::xdp::XskSocket {
    fn receive_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        self.receive(f)
    }

    fn flush(&mut self) {
        crate::xdp::XskSocket::flush(self)
    }

    fn wait_readable(&self, timeout: Duration, doorbell: &Doorbell) {
        self.wait_readable_or(timeout, doorbell.fd())
    }

    fn doorbell(&self) -> io::Result<Doorbell> {
        Doorbell::with_fd()
    }

    fn tx_kicks(&self) -> u64 {
        self.counters().kicks
    }

    fn kernel_rx_drops(&self) -> KernelRxDrops {
        self.stats().kernel_drops
    }
}
