//! One client connection of a load run: what it writes and reads for each
//! workload, with the shared [`RequestStream`] framing responses and
//! timing them. Every buffer is per thread or per connection and reused,
//! so steady state allocates nothing per request.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use super::plan::Plan;
use crate::load::{LoadRecorder, Pacer, RequestStream, Workload};

/// Requests written with one `write` call at most (pipelines and an open
/// loop's backlog go out together).
pub const BATCH: usize = 64;

/// Bytes a bulk stream asks for per `write`/`read` call.
pub const BULK_CHUNK: usize = 64 * 1024;

/// `write`/`read` calls a bulk stream makes per turn before it yields to
/// the thread's other streams, its timers and the end of the window. On
/// veth a sender's write runs the receiver's whole receive path inline, so
/// a fast peer can keep a socket writable (or readable) indefinitely: an
/// unbounded loop would never return to the event loop, stamp every byte
/// with the time the loop started, and run past the end of the window.
pub const BULK_CALLS_PER_TURN: usize = 16;

/// What the worker must do with a connection after it was driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Wait for the next readiness event or timer.
    Wait,
    /// The stream used up its turn while it could still make progress:
    /// drive it again soon without waiting for an event (with
    /// edge-triggered readiness none would come).
    Ready,
    /// A `short` exchange completed: close normally, start the next.
    Done,
    /// The server closed, reset, or answered wrongly: counted as an
    /// error; close and reconnect after a pause.
    Failed,
}

/// The per-thread pieces a connection works with.
pub struct Ctx<'a> {
    pub plan: &'a Plan,
    pub recorder: &'a mut LoadRecorder,
    /// Scratch for reads, reused by every connection of the thread.
    pub rx: &'a mut [u8],
    pub now: u64,
}

/// A measured connection (the idle ones need none of this).
pub struct ClientConn {
    pub session: RequestStream,
    pub pacer: Option<Pacer>,
    /// Intended send times of requests due but not completely written.
    due: VecDeque<u64>,
    /// `short`, open loop: intended times of exchanges not started yet.
    pub starts: VecDeque<u64>,
    /// Bytes of the first due request already written.
    out_off: usize,
    /// Bytes received on the current stream (pattern position).
    rx_off: u64,
    /// Bytes sent on the current stream (bulk-send pattern position).
    tx_off: u64,
    /// `short`: the intended time of the exchange on the current stream.
    pub exchange_intended: u64,
}

impl ClientConn {
    pub fn new(plan: &Plan, pacer: Option<Pacer>) -> ClientConn {
        let depth = plan.spec.pipeline.max(1);
        ClientConn {
            session: RequestStream::new(plan.spec.framing()),
            pacer,
            due: VecDeque::with_capacity(depth.max(BATCH)),
            starts: VecDeque::new(),
            out_off: 0,
            rx_off: 0,
            tx_off: 0,
            exchange_intended: 0,
        }
    }

    /// A new stream replaces a closed one: per-stream state starts over
    /// (requests that were in flight are lost with the old stream).
    pub fn reset_stream(&mut self) {
        self.session.clear();
        self.due.clear();
        self.out_off = 0;
        self.rx_off = 0;
        self.tx_off = 0;
    }

    /// Adds the requests the schedule says are due: closed loop keeps the
    /// pipeline full, open loop takes what the pacer has due.
    pub fn schedule(&mut self, ctx: &Ctx<'_>) {
        match &mut self.pacer {
            Some(pacer) => {
                let queue = if ctx.plan.spec.workload == Workload::Short {
                    &mut self.starts
                } else {
                    &mut self.due
                };
                while let Some(t) = pacer.due(ctx.now) {
                    queue.push_back(t);
                }
            }
            None if ctx.plan.spec.workload != Workload::Short => {
                let depth = ctx.plan.spec.pipeline;
                while self.session.in_flight() + self.due.len() < depth {
                    self.due.push_back(ctx.now);
                }
            }
            None => {}
        }
    }

    /// `short`: the exchange's single request is due.
    pub fn queue_exchange(&mut self) {
        self.due.push_back(self.exchange_intended);
    }

    /// Drives an established stream for the workload.
    pub fn drive(&mut self, stream: &mut (impl Read + Write), ctx: &mut Ctx<'_>) -> Outcome {
        match ctx.plan.spec.workload {
            Workload::Rpc | Workload::Http | Workload::Short => {
                if self.write_requests(stream, ctx).is_err() {
                    return fail(ctx);
                }
                self.read_responses(stream, ctx)
            }
            Workload::BulkSend => self.write_pattern(stream, ctx),
            Workload::BulkRecv => self.read_pattern(stream, ctx),
        }
    }

    fn write_requests(&mut self, stream: &mut impl Write, ctx: &mut Ctx<'_>) -> io::Result<()> {
        let len = ctx.plan.request_len();
        while !self.due.is_empty() {
            let count = self.due.len().min(ctx.plan.batch_requests());
            let bytes = &ctx.plan.batch[self.out_off..count * len];
            let n = match stream.write(bytes) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            ctx.recorder.sent(ctx.now, n);
            let total = self.out_off + n;
            for _ in 0..total / len {
                if let Some(t) = self.due.pop_front() {
                    self.session.sent(t);
                }
            }
            self.out_off = total % len;
            if n < bytes.len() {
                return Ok(()); // the send buffer is full
            }
        }
        Ok(())
    }

    fn read_responses(&mut self, stream: &mut (impl Read + Write), ctx: &mut Ctx<'_>) -> Outcome {
        loop {
            let n = match stream.read(ctx.rx) {
                Ok(0) => return fail(ctx), // the server closed on us
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return fail(ctx),
            };
            let now = ctx.now;
            ctx.recorder.received(now, n);
            let data = &ctx.rx[..n];
            if ctx.plan.spec.workload != Workload::Http
                && !matches_cyclic(data, &ctx.plan.batch, ctx.plan.request_len(), self.rx_off)
            {
                return fail(ctx); // the echo changed a byte
            }
            self.rx_off += n as u64;
            let recorder = &mut *ctx.recorder;
            if self
                .session
                .received(data, |t| recorder.response(now, t))
                .is_err()
            {
                return fail(ctx);
            }
        }
        if ctx.plan.spec.workload == Workload::Short
            && self.due.is_empty()
            && self.session.in_flight() == 0
        {
            return Outcome::Done;
        }
        // Closed loop: answered requests make room in the pipeline.
        self.schedule(ctx);
        if !self.due.is_empty() && self.write_requests(stream, ctx).is_err() {
            return fail(ctx);
        }
        Outcome::Wait
    }

    /// Writes the pattern until the socket would block or the turn's
    /// [`BULK_CALLS_PER_TURN`] calls are used. Every write is recorded at
    /// the time it returned, not when the turn began.
    fn write_pattern(&mut self, stream: &mut (impl Read + Write), ctx: &mut Ctx<'_>) -> Outcome {
        let pattern = &ctx.plan.pattern;
        let mut calls = 0;
        while calls < BULK_CALLS_PER_TURN {
            calls += 1;
            let off = (self.tx_off % 251) as usize;
            let chunk = &pattern[off..off + BULK_CHUNK];
            match stream.write(chunk) {
                Ok(n) => {
                    ctx.recorder.sent(ctx.plan.now_ns(), n);
                    self.tx_off += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The discard server sends nothing; a readable stream
                    // means it closed or reset.
                    return match stream.read(ctx.rx) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Outcome::Wait,
                        _ => fail(ctx),
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return fail(ctx),
            }
        }
        // Still writable: a server that closed shows up as a failed write
        // on a later turn.
        Outcome::Ready
    }

    /// Reads and checks the pattern until the socket would block, the
    /// source's FIN, or the turn's [`BULK_CALLS_PER_TURN`] calls are used.
    /// Every read is recorded at the time it returned.
    fn read_pattern(&mut self, stream: &mut impl Read, ctx: &mut Ctx<'_>) -> Outcome {
        let mut calls = 0;
        while calls < BULK_CALLS_PER_TURN {
            calls += 1;
            let want = ctx.rx.len().min(BULK_CHUNK);
            match stream.read(&mut ctx.rx[..want]) {
                // The source sent its --bytes: start a new stream.
                Ok(0) => return Outcome::Done,
                Ok(n) => {
                    ctx.recorder.received(ctx.plan.now_ns(), n);
                    if !matches_cyclic(&ctx.rx[..n], &ctx.plan.pattern, 251, self.rx_off) {
                        return fail(ctx);
                    }
                    self.rx_off += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return fail(ctx),
            }
        }
        Outcome::Ready
    }
}

fn fail(ctx: &mut Ctx<'_>) -> Outcome {
    ctx.recorder.error(ctx.now);
    Outcome::Failed
}

/// Whether `data`, found at stream offset `offset`, matches a stream that
/// repeats `reference[..period]` (`reference` is that period repeated at
/// least twice over).
pub fn matches_cyclic(mut data: &[u8], reference: &[u8], period: usize, mut offset: u64) -> bool {
    while !data.is_empty() {
        let start = (offset % period as u64) as usize;
        let take = data.len().min(reference.len() - start);
        if data[..take] != reference[start..start + take] {
            return false;
        }
        data = &data[take..];
        offset += take as u64;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclic_comparison_follows_the_offset_across_pieces() {
        let reference = b"abcabcabc";
        assert!(matches_cyclic(b"cabcabcabcabcab", reference, 3, 2));
        assert!(!matches_cyclic(b"cabcabcabXabcab", reference, 3, 2));
        assert!(!matches_cyclic(b"abc", reference, 3, 1));
        assert!(matches_cyclic(b"", reference, 3, 7));
    }

    use crate::app::source::pattern_byte;
    use crate::load::LoadSpec;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    /// A socket that never blocks: takes every write (pausing first, if
    /// asked) and serves the source pattern to reads; `readable` false
    /// makes reads would-block instead (a silent discard server).
    struct EndlessPeer {
        pause: Duration,
        readable: bool,
        writes: usize,
        reads: usize,
        offset: u64,
    }

    impl EndlessPeer {
        fn new(readable: bool) -> EndlessPeer {
            EndlessPeer {
                pause: Duration::ZERO,
                readable,
                writes: 0,
                reads: 0,
                offset: 0,
            }
        }
    }

    impl Write for EndlessPeer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(self.pause);
            self.writes += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Read for EndlessPeer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.readable {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.reads += 1;
            for b in buf.iter_mut() {
                *b = pattern_byte(self.offset);
                self.offset += 1;
            }
            Ok(buf.len())
        }
    }

    fn plan(workload: Workload) -> Plan {
        let target = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        Plan::new(&LoadSpec::new(workload, target), Vec::new())
    }

    #[test]
    fn a_bulk_sender_that_never_blocks_yields_after_its_turn() {
        let plan = plan(Workload::BulkSend);
        let mut recorder = LoadRecorder::new(0, u64::MAX);
        let mut rx = vec![0; BULK_CHUNK];
        let mut conn = ClientConn::new(&plan, None);
        let mut peer = EndlessPeer::new(false);
        for turn in 1..=3 {
            let mut ctx = Ctx {
                plan: &plan,
                recorder: &mut recorder,
                rx: &mut rx,
                now: plan.now_ns(),
            };
            assert_eq!(conn.drive(&mut peer, &mut ctx), Outcome::Ready);
            assert_eq!(peer.writes, turn * BULK_CALLS_PER_TURN);
        }
        let report = recorder.report(&plan.spec, "kernel");
        assert_eq!(
            report.bytes_sent,
            (3 * BULK_CALLS_PER_TURN * BULK_CHUNK) as u64
        );
        assert_eq!(report.errors, 0);
    }

    #[test]
    fn bulk_writes_count_at_the_time_they_return_not_when_the_turn_began() {
        // The window opens 1 ms after the turn began and each write takes
        // at least 2 ms: every write ends inside the window. Stamped with
        // the turn's start, none would count.
        let plan = plan(Workload::BulkSend);
        let began = plan.now_ns();
        let mut recorder = LoadRecorder::new(began + 1_000_000, u64::MAX);
        let mut rx = vec![0; BULK_CHUNK];
        let mut conn = ClientConn::new(&plan, None);
        let mut peer = EndlessPeer::new(false);
        peer.pause = Duration::from_millis(2);
        let mut ctx = Ctx {
            plan: &plan,
            recorder: &mut recorder,
            rx: &mut rx,
            now: began,
        };
        assert_eq!(conn.drive(&mut peer, &mut ctx), Outcome::Ready);
        let report = recorder.report(&plan.spec, "kernel");
        assert_eq!(report.bytes_sent, (BULK_CALLS_PER_TURN * BULK_CHUNK) as u64);
    }

    #[test]
    fn a_bulk_receiver_that_never_blocks_yields_after_its_turn_and_checks_the_pattern() {
        let plan = plan(Workload::BulkRecv);
        let began = plan.now_ns();
        let mut recorder = LoadRecorder::new(began, u64::MAX);
        let mut rx = vec![0; BULK_CHUNK];
        let mut conn = ClientConn::new(&plan, None);
        let mut peer = EndlessPeer::new(true);
        for _ in 0..2 {
            let mut ctx = Ctx {
                plan: &plan,
                recorder: &mut recorder,
                rx: &mut rx,
                now: began,
            };
            assert_eq!(conn.drive(&mut peer, &mut ctx), Outcome::Ready);
        }
        assert_eq!(peer.reads, 2 * BULK_CALLS_PER_TURN);
        let report = recorder.report(&plan.spec, "kernel");
        assert_eq!(report.bytes_received, peer.offset);
        assert_eq!(report.errors, 0);
        // One corrupted byte fails the stream.
        peer.offset += 1;
        let mut ctx = Ctx {
            plan: &plan,
            recorder: &mut recorder,
            rx: &mut rx,
            now: began,
        };
        assert_eq!(conn.drive(&mut peer, &mut ctx), Outcome::Failed);
    }

    #[test]
    fn a_blocked_bulk_sender_waits_for_writable() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::WouldBlock.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl Read for Full {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
        let plan = plan(Workload::BulkSend);
        let mut recorder = LoadRecorder::new(0, u64::MAX);
        let mut rx = vec![0; BULK_CHUNK];
        let mut conn = ClientConn::new(&plan, None);
        let mut ctx = Ctx {
            plan: &plan,
            recorder: &mut recorder,
            rx: &mut rx,
            now: 0,
        };
        assert_eq!(conn.drive(&mut Full, &mut ctx), Outcome::Wait);
    }
}
