//! The `/ws` endpoint: the wire frames, parsing a client frame, tokens, one session per
//! connection, resume.

pub mod frame;
pub mod resume;
pub mod session;
pub mod token;
pub mod wire;
