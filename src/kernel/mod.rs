//! The built-in applications on kernel sockets, for side-by-side
//! comparisons with the fast path: same responses, same client, stacks
//! swapped. Epoll through mio, one thread per core, SO_REUSEPORT so the
//! kernel spreads connections over the threads.
pub mod http;

pub use http::{serve_http, KernelReport};
