//! Identifiers that travel in every envelope.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a string from outside is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a thread id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'")]
    InvalidThreadId,
}

/// A conversation's id. It is one token of a NATS subject, so it is restricted to
/// characters that can never be a subject separator or wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ThreadId(String);

impl ThreadId {
    /// A fresh, unguessable id (122 random bits).
    pub fn generate() -> ThreadId {
        ThreadId(Uuid::new_v4().simple().to_string())
    }

    /// Parses an id received from outside (a query string, a URL path, the stream).
    pub fn parse(raw: &str) -> Result<ThreadId, IdError> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(ThreadId(raw.to_owned()))
        } else {
            Err(IdError::InvalidThreadId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ThreadId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<ThreadId, IdError> {
        ThreadId::parse(&raw)
    }
}

impl From<ThreadId> for String {
    fn from(id: ThreadId) -> String {
        id.0
    }
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of one agent turn: the answer to one user message. The ingress assigns it
/// when it stores the message; every event of the turn carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TurnId(Uuid);

impl TurnId {
    pub fn from_uuid(id: Uuid) -> TurnId {
        TurnId(id)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for TurnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_thread_ids_parse_and_differ() {
        let a = ThreadId::generate();
        assert_eq!(ThreadId::parse(a.as_str()).unwrap(), a);
        assert_ne!(a, ThreadId::generate());
    }

    #[test]
    fn thread_ids_that_would_break_a_subject_are_rejected() {
        for raw in ["", "a.b", "a*", ">", "a b", "é", &"x".repeat(65)] {
            assert_eq!(
                ThreadId::parse(raw),
                Err(IdError::InvalidThreadId),
                "{raw:?}"
            );
        }
    }
}
