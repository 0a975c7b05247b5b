//! `hold`: accepts and never reads. With `hold_ms`, closes each connection
//! that long after accepting it; with unread data that close is a RST.

use std::collections::VecDeque;
use std::time::Duration;

use super::{App, Ctx};
use crate::tcp::{ConnId, Instant};

pub struct Hold {
    hold: Option<Duration>,
    /// Close deadlines in accept order (all share one hold time, so this
    /// queue is sorted).
    deadlines: VecDeque<(Instant, ConnId)>,
}

impl Hold {
    pub fn new(hold_ms: Option<u64>) -> Hold {
        Hold {
            hold: hold_ms.map(Duration::from_millis),
            deadlines: VecDeque::new(),
        }
    }
}

impl App for Hold {
    fn on_accepted(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        if let Some(h) = self.hold {
            self.deadlines.push_back((ctx.now + h, conn));
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(&(at, conn)) = self.deadlines.front() {
            if at > ctx.now {
                break;
            }
            self.deadlines.pop_front();
            let _ = ctx.stack.close(conn);
        }
    }
}
