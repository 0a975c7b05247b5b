//! One client connection of a load run: what it writes and reads for each
//! workload, with the shared [`RequestStream`] framing responses and
//! timing them. Every buffer is per thread or per connection and reused,
//! so steady state allocates nothing per request.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use mio::net::TcpStream;

use super::plan::Plan;
use crate::load::{LoadRecorder, Pacer, RequestStream, Workload};

/// Requests written with one `write` call at most (pipelines and an open
/// loop's backlog go out together).
pub const BATCH: usize = 64;

/// What the worker must do with a connection after it was driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Wait for the next readiness event or timer.
    Wait,
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
    pub fn reset_stream(&mut self, plan: &Plan) {
        self.session = RequestStream::new(plan.spec.framing());
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
    pub fn drive(&mut self, stream: &mut TcpStream, ctx: &mut Ctx<'_>) -> Outcome {
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

    fn write_requests(&mut self, stream: &mut TcpStream, ctx: &mut Ctx<'_>) -> io::Result<()> {
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

    fn read_responses(&mut self, stream: &mut TcpStream, ctx: &mut Ctx<'_>) -> Outcome {
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

    fn write_pattern(&mut self, stream: &mut TcpStream, ctx: &mut Ctx<'_>) -> Outcome {
        let pattern = &ctx.plan.pattern;
        loop {
            let off = (self.tx_off % 251) as usize;
            let chunk = &pattern[off..off + 64 * 1024];
            match stream.write(chunk) {
                Ok(n) => {
                    ctx.recorder.sent(ctx.now, n);
                    self.tx_off += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return fail(ctx),
            }
        }
        // The discard server sends nothing; a readable stream means it
        // closed or reset.
        match stream.read(ctx.rx) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Outcome::Wait,
            _ => fail(ctx),
        }
    }

    fn read_pattern(&mut self, stream: &mut TcpStream, ctx: &mut Ctx<'_>) -> Outcome {
        loop {
            match stream.read(ctx.rx) {
                // The source sent its --bytes: start a new stream.
                Ok(0) => return Outcome::Done,
                Ok(n) => {
                    ctx.recorder.received(ctx.now, n);
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
}
