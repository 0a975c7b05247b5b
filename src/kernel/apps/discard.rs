//! `discard` on kernel sockets: the twin of [`crate::app::discard`].
//! Reads and drops everything; closes after the peer's FIN.

use crate::kernel::handler::{read_some, Io, KernelApp, KernelReport, Next, ReadOutcome};

pub struct Discard {
    scratch: Vec<u8>,
}

impl Discard {
    pub fn new() -> Discard {
        Discard {
            scratch: vec![0; 64 * 1024],
        }
    }
}

impl Default for Discard {
    fn default() -> Self {
        Discard::new()
    }
}

impl KernelApp for Discard {
    type Conn = ();

    fn accept(&mut self) {}

    fn drive(&mut self, _conn: &mut (), io: &mut impl Io, stats: &mut KernelReport) -> Next {
        loop {
            match read_some(io, &mut self.scratch, stats) {
                ReadOutcome::Data(_) => {}
                ReadOutcome::WouldBlock => return Next::Keep,
                ReadOutcome::Eof | ReadOutcome::Failed => return Next::Close,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::handler::testing::Pipe;

    #[test]
    fn reads_everything_and_closes_on_fin() {
        let mut app = Discard::new();
        let mut io = Pipe::with_room(0);
        let mut stats = KernelReport::default();
        io.input.push_back(vec![7; 100_000]);
        assert_eq!(app.drive(&mut (), &mut io, &mut stats), Next::Keep);
        io.input.push_back(Vec::new());
        assert_eq!(app.drive(&mut (), &mut io, &mut stats), Next::Close);
        assert_eq!(stats.bytes_received, 100_000);
        assert!(io.output.is_empty());
    }
}
