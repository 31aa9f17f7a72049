//! Every frame of the `/ws` protocol as it is on the wire (docs/websocket.md, v1): what the
//! client sends ([`ClientFrame`]; read by [`super::frame::parse`], which holds the rules),
//! what the server sends ([`ServerFrame`]: `session`, `ack`, `error`, `pong`; and the
//! `event` frame, built once per stored event by [`event_frame`]), and the error codes
//! ([`ErrorCode`]), and the close frames ([`close`]). A change here is a change of the contract clients see.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use serde::Serialize;

use super::frame::{ClientMsgId, FrameError, MessageContent};

/// A frame the client may send.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// `{"type":"message","content":"…","client_msg_id":"…"}`
    Message {
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
    },
    /// `{"type":"ping"}`
    Ping,
}

/// The `code` of an error frame. The names are part of the v1 contract (API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidJson,
    NotAnObject,
    UnknownType,
    EmptyContent,
    ContentTooLong,
    ContentContainsNul,
    InvalidClientMsgId,
    FrameTooLarge,
    RateLimited,
    BinaryNotSupported,
    Unauthorized,
    Unavailable,
    /// A resume's `after_seq` is beyond the stream's last sequence (added 2026-12-06): the
    /// stream was replaced (its store deleted) or the number is wrong. Closes.
    InvalidAfterSeq,
    /// The conversation was erased (added 2026-12-07): a message on it is not stored. The
    /// connection stays open; a new conversation is the way on.
    ConversationErased,
}

impl ErrorCode {
    /// The code as written in error frames.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::NotAnObject => "not_an_object",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::EmptyContent => "empty_content",
            ErrorCode::ContentTooLong => "content_too_long",
            ErrorCode::ContentContainsNul => "content_contains_nul",
            ErrorCode::InvalidClientMsgId => "invalid_client_msg_id",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InvalidAfterSeq => "invalid_after_seq",
            ErrorCode::ConversationErased => "conversation_erased",
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Frames the server sends, but the event frame ([`event_frame`]).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Session {
        thread_id: &'a str,
        token: &'a str,
    },
    Ack {
        /// The client's id for the message; `null` when it sent none.
        client_msg_id: Option<&'a str>,
        seq: u64,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        /// The message the error is about, when the frame named one.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
        /// For `rate_limited`: milliseconds until a message would be accepted.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong,
}

impl ServerFrame<'_> {
    /// The frame as a WebSocket text message.
    pub fn to_message(&self) -> Message {
        Message::Text(
            serde_json::to_string(self)
                .expect("server frames always serialize")
                .into(),
        )
    }
}

/// The error frame of a rejected frame, naming its message when it got that far.
pub fn error_frame(error: &FrameError, client_msg_id: Option<&str>) -> Message {
    ServerFrame::Error {
        code: error.code,
        message: &error.message,
        client_msg_id,
        retry_after_ms: error.retry_after_ms,
    }
    .to_message()
}

/// The `event` frame of a stored event: `{"type":"event","seq":N,"event":<the event as
/// stored>}`. `event` must be JSON (the stored bytes, checked by the caller); it is copied in
/// as it is, not parsed and written again.
pub fn event_frame(seq: u64, event: &str) -> Utf8Bytes {
    format!(r#"{{"type":"event","seq":{seq},"event":{event}}}"#).into()
}

/// Close code for a client dropped because it read too slowly (RFC 6455 "try again later").
pub const CLOSE_SLOW_CLIENT: u16 = 1013;

/// A close frame with its code and reason.
pub fn close(code: u16, reason: impl Into<Utf8Bytes>) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_serialize_as_the_contract_names() {
        let names: Vec<String> = [
            ErrorCode::InvalidJson,
            ErrorCode::NotAnObject,
            ErrorCode::UnknownType,
            ErrorCode::EmptyContent,
            ErrorCode::ContentTooLong,
            ErrorCode::ContentContainsNul,
            ErrorCode::FrameTooLarge,
            ErrorCode::RateLimited,
            ErrorCode::BinaryNotSupported,
            ErrorCode::Unauthorized,
            ErrorCode::Unavailable,
            ErrorCode::InvalidAfterSeq,
            ErrorCode::ConversationErased,
        ]
        .iter()
        .map(|code| {
            serde_json::to_value(code)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
        assert_eq!(
            names,
            [
                "invalid_json",
                "not_an_object",
                "unknown_type",
                "empty_content",
                "content_too_long",
                "content_contains_nul",
                "frame_too_large",
                "rate_limited",
                "binary_not_supported",
                "unauthorized",
                "unavailable",
                "invalid_after_seq",
                "conversation_erased"
            ]
        );
    }
}
