//! The `/ws` endpoint: frames, tokens, one session per connection, resume.

pub mod frame;
pub mod resume;
pub mod session;
pub mod token;
