//! The built-in applications on kernel sockets, each the twin of the
//! fast-path app of the same name in [`crate::app`].
pub mod discard;
pub mod echo;
pub mod http;
pub mod source;

pub use discard::Discard;
pub use echo::Echo;
pub use http::Http;
pub use source::Source;
