//! Client frames, parsed at the edge: nothing past this module sees a raw string from the
//! socket. Every way a frame can be wrong has a named [`ErrorCode`] (the list in
//! docs/websocket.md). The frames themselves are in [`super::wire`].

use serde_json::Value;

pub use super::wire::{ClientFrame, ErrorCode};

/// Most characters a message may have (counted in characters, not bytes).
pub const MAX_CONTENT_CHARS: usize = 10_000;
/// Longest `client_msg_id`.
pub const MAX_CLIENT_MSG_ID_LEN: usize = 128;

/// Chat text: non-empty after trimming, at most [`MAX_CONTENT_CHARS`] characters, without
/// the NUL character (U+0000): PostgreSQL cannot store NUL in `text` or `jsonb`, so a
/// message with one could be stored in the stream but never in the read models.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageContent(String);

impl MessageContent {
    pub fn parse(raw: String) -> Result<MessageContent, FrameError> {
        if raw.trim().is_empty() {
            return Err(FrameError::new(ErrorCode::EmptyContent, "content is empty"));
        }
        let chars = raw.chars().count();
        if chars > MAX_CONTENT_CHARS {
            return Err(FrameError::new(
                ErrorCode::ContentTooLong,
                format!("content has {chars} characters; the limit is {MAX_CONTENT_CHARS}"),
            ));
        }
        if raw.contains('\0') {
            return Err(FrameError::new(
                ErrorCode::ContentContainsNul,
                "content contains the NUL character (U+0000), which cannot be stored",
            ));
        }
        Ok(MessageContent(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The client's id for a message: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`. It
/// becomes part of a `Nats-Msg-Id` header, so nothing else is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub fn parse(raw: String) -> Result<ClientMsgId, FrameError> {
        let valid = (1..=MAX_CLIENT_MSG_ID_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if valid {
            Ok(ClientMsgId(raw))
        } else {
            Err(FrameError::new(
                ErrorCode::InvalidClientMsgId,
                "client_msg_id must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A rejected frame: its code and a sentence for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
    /// For `rate_limited`: how long until a message would be accepted.
    pub retry_after_ms: Option<u64>,
}

impl FrameError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> FrameError {
        FrameError {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

/// Parses one text frame of at most `max_bytes` bytes.
pub fn parse(text: &str, max_bytes: usize) -> Result<ClientFrame, FrameError> {
    if text.len() > max_bytes {
        return Err(FrameError::new(
            ErrorCode::FrameTooLarge,
            format!("frame has {} bytes; the limit is {max_bytes}", text.len()),
        ));
    }
    parse_well_formed(text).unwrap_or_else(|| parse_tree(text))
}

/// [`parse`] by way of a JSON tree: every frame, well-formed or not, each fault named.
fn parse_tree(text: &str) -> Result<ClientFrame, FrameError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|err| FrameError::new(ErrorCode::InvalidJson, format!("not JSON: {err}")))?;
    let Value::Object(mut object) = value else {
        return Err(FrameError::new(
            ErrorCode::NotAnObject,
            "a frame is a JSON object with a \"type\"",
        ));
    };
    match object.get("type").and_then(Value::as_str) {
        Some("message") => {
            let content = match object.remove("content") {
                Some(Value::String(content)) => MessageContent::parse(content)?,
                None | Some(Value::Null) => {
                    return Err(FrameError::new(
                        ErrorCode::EmptyContent,
                        "content is missing",
                    ));
                }
                Some(_) => {
                    return Err(FrameError::new(
                        ErrorCode::EmptyContent,
                        "content must be a string",
                    ));
                }
            };
            let client_msg_id = match object.remove("client_msg_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) => Some(ClientMsgId::parse(id)?),
                Some(_) => {
                    return Err(FrameError::new(
                        ErrorCode::InvalidClientMsgId,
                        "client_msg_id must be a string",
                    ));
                }
            };
            Ok(ClientFrame::Message {
                content,
                client_msg_id,
            })
        }
        Some("ping") => Ok(ClientFrame::Ping),
        Some(other) => Err(FrameError::new(
            ErrorCode::UnknownType,
            format!("unknown frame type {other:?}; expected \"message\" or \"ping\""),
        )),
        None => Err(FrameError::new(
            ErrorCode::UnknownType,
            "a frame needs a string \"type\"",
        )),
    }
}

/// The shape of a well-formed frame, read without building a JSON tree (the hot path: one
/// allocation for the content instead of a map, its keys and values). Only these members:
/// a frame with others goes the tree's way, which ignores them but also checks their
/// values (a number out of range is `invalid_json` there).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WellFormed<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    client_msg_id: Option<std::borrow::Cow<'a, str>>,
}

/// [`parse`]'s answer for a frame of the common shapes — `ping`, or `message` with a string
/// `content` and a string or absent `client_msg_id` — or `None` for any other text, which
/// [`parse`] then reads as a JSON tree to name what is wrong (so both paths answer alike; a
/// duplicate member, for one, is left to the tree).
fn parse_well_formed(text: &str) -> Option<Result<ClientFrame, FrameError>> {
    // An object, not an array: serde reads a struct from either.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return None;
    }
    let frame: WellFormed = serde_json::from_str(text).ok()?;
    match (&*frame.kind, frame.content) {
        ("message", Some(content)) => Some(MessageContent::parse(content.into_owned()).and_then(
            |content| {
                let client_msg_id = frame
                    .client_msg_id
                    .map(|id| ClientMsgId::parse(id.into_owned()))
                    .transpose()?;
                Ok(ClientFrame::Message {
                    content,
                    client_msg_id,
                })
            },
        )),
        ("ping", _) => Some(Ok(ClientFrame::Ping)),
        _ => None,
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 64 * 1024;

    fn code_of(text: &str) -> ErrorCode {
        parse(text, CAP).unwrap_err().code
    }

    #[test]
    fn a_message_frame_is_parsed_with_its_id() {
        let frame = parse(
            r#"{"type":"message","content":"hi","client_msg_id":"c-1"}"#,
            CAP,
        );
        assert_eq!(
            frame,
            Ok(ClientFrame::Message {
                content: MessageContent("hi".into()),
                client_msg_id: Some(ClientMsgId("c-1".into())),
            })
        );
    }

    #[test]
    fn a_ping_frame_is_parsed() {
        assert_eq!(parse(r#"{"type":"ping"}"#, CAP), Ok(ClientFrame::Ping));
    }

    #[test]
    fn text_that_is_not_json_is_rejected() {
        assert_eq!(code_of("hello"), ErrorCode::InvalidJson);
    }

    #[test]
    fn json_that_is_not_an_object_is_rejected() {
        assert_eq!(code_of("[1,2]"), ErrorCode::NotAnObject);
        assert_eq!(code_of("\"message\""), ErrorCode::NotAnObject);
        assert_eq!(code_of("42"), ErrorCode::NotAnObject);
    }

    #[test]
    fn an_unknown_or_missing_type_is_rejected() {
        assert_eq!(code_of(r#"{"type":"shout"}"#), ErrorCode::UnknownType);
        assert_eq!(code_of(r#"{"content":"hi"}"#), ErrorCode::UnknownType);
    }

    #[test]
    fn missing_empty_or_whitespace_only_content_is_rejected() {
        assert_eq!(code_of(r#"{"type":"message"}"#), ErrorCode::EmptyContent);
        assert_eq!(
            code_of(r#"{"type":"message","content":""}"#),
            ErrorCode::EmptyContent
        );
        assert_eq!(
            code_of(r#"{"type":"message","content":" \n\t "}"#),
            ErrorCode::EmptyContent
        );
    }

    #[test]
    fn content_over_10000_characters_is_rejected() {
        let frame = format!(r#"{{"type":"message","content":"{}"}}"#, "a".repeat(10_001));
        assert_eq!(code_of(&frame), ErrorCode::ContentTooLong);
    }

    #[test]
    fn content_is_counted_in_characters_not_bytes() {
        // 10000 three-byte characters are 30000 bytes but exactly at the limit.
        let frame = format!(r#"{{"type":"message","content":"{}"}}"#, "€".repeat(10_000));
        assert!(parse(&frame, CAP).is_ok());
    }

    #[test]
    fn content_with_a_nul_character_is_rejected() {
        assert_eq!(
            code_of(r#"{"type":"message","content":"a\u0000b"}"#),
            ErrorCode::ContentContainsNul
        );
    }

    #[test]
    fn a_lone_surrogate_escape_is_not_json() {
        assert_eq!(
            code_of(r#"{"type":"message","content":"a\ud800b"}"#),
            ErrorCode::InvalidJson
        );
        assert_eq!(
            code_of(r#"{"type":"message","content":"\udc00"}"#),
            ErrorCode::InvalidJson
        );
    }

    #[test]
    fn a_frame_over_the_byte_cap_is_rejected() {
        let frame = format!(r#"{{"type":"message","content":"{}"}}"#, "a".repeat(100));
        assert_eq!(
            parse(&frame, 50).unwrap_err().code,
            ErrorCode::FrameTooLarge
        );
    }

    #[test]
    fn a_client_msg_id_that_could_not_be_a_header_is_rejected() {
        assert_eq!(
            code_of(r#"{"type":"message","content":"hi","client_msg_id":"a\r\nb"}"#),
            ErrorCode::InvalidClientMsgId
        );
        assert_eq!(
            code_of(r#"{"type":"message","content":"hi","client_msg_id":7}"#),
            ErrorCode::InvalidClientMsgId
        );
    }

    #[test]
    fn frames_off_the_fast_path_are_named_as_before() {
        let code = |text: &str| parse(text, 1 << 16).map_err(|e| e.code);
        // serde would read a struct from an array; the tree says it is not an object.
        assert_eq!(code(r#"["message","hi"]"#), Err(ErrorCode::NotAnObject));
        // Members the fast path does not know go the tree's way, which checks them.
        assert_eq!(
            code(r#"{"type":"ping","x":1e999}"#),
            Err(ErrorCode::InvalidJson)
        );
        assert_eq!(code(r#"{"type":"ping","x":1}"#), Ok(ClientFrame::Ping));
        // A repeated member: the last one counts, as in the tree.
        assert_eq!(
            code(r#"{"type":"ping","type":"message","content":"hi"}"#),
            parse_tree(r#"{"type":"ping","type":"message","content":"hi"}"#).map_err(|e| e.code)
        );
        assert_eq!(
            code(r#"{"type":"message","content":null}"#),
            Err(ErrorCode::EmptyContent)
        );
        assert_eq!(
            code(r#"{"type":"message","content":"hi","client_msg_id":7}"#),
            Err(ErrorCode::InvalidClientMsgId)
        );
    }
}
