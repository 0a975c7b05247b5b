//! Waking a sleeping worker from another thread.
//!
//! A worker sleeps in its frame I/O (`poll(2)` on the AF_XDP socket, or a
//! channel select for in-memory I/O) when it has nothing to do. Threads
//! that hand it work through channels (the bridge to application threads)
//! ring its doorbell afterwards, so the worker does not wait out its sleep
//! before noticing. Ringing an awake worker costs one atomic store and one
//! load; only ringing a sleeping worker makes a system call (or a channel
//! send), and only the first ring of a sleep does.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam::channel::{bounded, Receiver, Sender};

/// How a sleeping worker is signalled; the frame I/O picks the kind it
/// can wait on (see [`FrameIo::doorbell`](crate::runtime::FrameIo::doorbell)).
enum Signal {
    /// A datagram socket pair: the worker polls the receiving end next to
    /// its AF_XDP socket.
    Socket { tx: UnixDatagram, rx: UnixDatagram },
    /// A one-slot channel the worker selects on next to its frame channel.
    Channel { tx: Sender<()>, rx: Receiver<()> },
}

pub struct Doorbell {
    /// Work was handed over since the worker last got ready to sleep.
    rung: AtomicBool,
    /// The worker is (about to be) asleep in its frame I/O.
    sleeping: AtomicBool,
    /// A signal was sent during the current sleep; later rings skip it.
    signalled: AtomicBool,
    signal: Signal,
}

impl Doorbell {
    /// A doorbell backed by a socket pair, for I/O that sleeps in poll(2).
    pub fn with_fd() -> io::Result<Doorbell> {
        let (tx, rx) = UnixDatagram::pair()?;
        // Neither end may ever block: a full socket buffer means a wake-up
        // is already pending, and draining stops when it is empty.
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Doorbell::new(Signal::Socket { tx, rx }))
    }

    /// A doorbell backed by a channel, for in-memory I/O.
    pub fn with_channel() -> Doorbell {
        let (tx, rx) = bounded(1);
        Doorbell::new(Signal::Channel { tx, rx })
    }

    fn new(signal: Signal) -> Doorbell {
        Doorbell {
            rung: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            signalled: AtomicBool::new(false),
            signal,
        }
    }

    /// Tells the worker that work is waiting for it. Call after the work
    /// is visible to the worker (e.g. after the channel send).
    pub fn ring(&self) {
        // Store-buffering handshake with `begin_sleep`: all four accesses
        // are SeqCst, so either this load sees `sleeping` or the worker's
        // swap sees `rung` and it does not go to sleep.
        self.rung.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) && !self.signalled.swap(true, Ordering::AcqRel) {
            match &self.signal {
                // WouldBlock: the buffer is full of wake-ups already.
                Signal::Socket { tx, .. } => {
                    let _ = tx.send(&[1]);
                }
                Signal::Channel { tx, .. } => {
                    let _ = tx.try_send(());
                }
            }
        }
    }

    /// Worker side, before sleeping: returns false when work was handed
    /// over since the last call, in which case the worker must not sleep.
    pub fn begin_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.rung.swap(false, Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Worker side, after waking: consumes pending signals so the next
    /// sleep is not cut short by a stale one.
    pub fn end_sleep(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        match &self.signal {
            Signal::Socket { rx, .. } => {
                let mut byte = [0u8; 16];
                while rx.recv(&mut byte).is_ok() {}
            }
            Signal::Channel { rx, .. } => while rx.try_recv().is_ok() {},
        }
        self.signalled.store(false, Ordering::Release);
    }

    /// The descriptor to poll for readability, for a socket doorbell.
    pub fn fd(&self) -> Option<RawFd> {
        match &self.signal {
            Signal::Socket { rx, .. } => Some(rx.as_raw_fd()),
            Signal::Channel { .. } => None,
        }
    }

    /// The channel to select on, for a channel doorbell.
    pub fn channel(&self) -> Option<&Receiver<()>> {
        match &self.signal {
            Signal::Socket { .. } => None,
            Signal::Channel { rx, .. } => Some(rx),
        }
    }
}

impl std::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell")
            .field("rung", &self.rung.load(Ordering::Relaxed))
            .field("sleeping", &self.sleeping.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_ring_before_sleeping_cancels_the_sleep() {
        let bell = Doorbell::with_channel();
        bell.ring();
        assert!(!bell.begin_sleep());
        assert!(bell.begin_sleep());
        bell.end_sleep();
    }

    #[test]
    fn a_ring_during_sleep_wakes_the_channel_waiter() {
        let bell = Arc::new(Doorbell::with_channel());
        assert!(bell.begin_sleep());
        let b = bell.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            b.ring();
        });
        let start = Instant::now();
        let rx = bell.channel().unwrap();
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
        assert!(start.elapsed() < Duration::from_secs(5));
        bell.end_sleep();
        t.join().unwrap();
        // The wake-up was consumed; the ring left `rung` set once.
        assert!(!bell.begin_sleep());
        assert!(bell.begin_sleep());
        bell.end_sleep();
    }

    #[test]
    fn socket_doorbell_signals_and_drains() {
        let bell = Doorbell::with_fd().unwrap();
        assert!(bell.fd().is_some());
        assert!(bell.begin_sleep());
        bell.ring();
        bell.ring(); // only the first ring of a sleep sends
        bell.end_sleep();
        assert!(!bell.begin_sleep());
    }
}
