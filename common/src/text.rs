//! The rules for chat text and client message ids, the same for a customer's message (the
//! ingress) and an operator's reply or note (the REST API), with the same named errors.

/// Longest chat text, in characters.
pub const MAX_CONTENT_CHARS: usize = 10_000;
/// Longest client message id, in bytes (ASCII).
pub const MAX_CLIENT_MSG_ID_LEN: usize = 128;

/// Why a text is refused; [`TextError::code`] is its name in the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("content is empty")]
    Empty,
    #[error("content has {0} characters; the limit is {MAX_CONTENT_CHARS}")]
    TooLong(usize),
    #[error("content contains the NUL character (U+0000), which cannot be stored")]
    ContainsNul,
    #[error("client_msg_id must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'")]
    InvalidClientMsgId,
}

impl TextError {
    /// The error code (`empty_content`, `content_too_long`, `content_contains_nul`,
    /// `invalid_client_msg_id`), as the WebSocket names them.
    pub fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "empty_content",
            TextError::TooLong(_) => "content_too_long",
            TextError::ContainsNul => "content_contains_nul",
            TextError::InvalidClientMsgId => "invalid_client_msg_id",
        }
    }
}

/// Checks chat text: non-empty after trimming, at most [`MAX_CONTENT_CHARS`] characters,
/// no NUL (PostgreSQL cannot store it).
pub fn check_content(raw: &str) -> Result<(), TextError> {
    if raw.trim().is_empty() {
        return Err(TextError::Empty);
    }
    let chars = raw.chars().count();
    if chars > MAX_CONTENT_CHARS {
        return Err(TextError::TooLong(chars));
    }
    if raw.contains('\0') {
        return Err(TextError::ContainsNul);
    }
    Ok(())
}

/// Checks a client message id: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
pub fn check_client_msg_id(raw: &str) -> Result<(), TextError> {
    let valid = (1..=MAX_CLIENT_MSG_ID_LEN).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(TextError::InvalidClientMsgId)
    }
}

/// `message` (an error's text) with whatever it quotes left out, for a log line at `info` or
/// above: chat text must never reach the logs (issue 21 item 7), and an error about an event
/// or a model's answer may quote it — serde quotes a value of the wrong type
/// (`invalid type: string "…", expected u16`) and an unknown name in backticks, a model
/// server's error body is JSON with its strings in quotes. Everything between double quotes
/// (JSON escapes understood) or backticks becomes `…`; the rest (the kind of error, numbers,
/// positions, status codes) stays. The whole text may still be logged at `debug`, which is
/// documented to include chat content.
pub fn log_safe(message: &str) -> std::borrow::Cow<'_, str> {
    if !message.contains(['"', '`']) {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push_str("\"…\"");
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => escaped = false,
                    }
                }
            }
            '`' => {
                out.push_str("`…`");
                for c in chars.by_ref() {
                    if c == '`' {
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_only_content_is_empty() {
        assert_eq!(check_content(" \n\t"), Err(TextError::Empty));
    }

    #[test]
    fn content_over_10000_characters_is_rejected_at_10001() {
        assert_eq!(check_content(&"€".repeat(10_000)), Ok(()));
        assert_eq!(
            check_content(&"a".repeat(10_001)),
            Err(TextError::TooLong(10_001))
        );
    }

    #[test]
    fn content_with_nul_is_rejected() {
        assert_eq!(check_content("a\0b"), Err(TextError::ContainsNul));
    }

    #[test]
    fn client_msg_ids_take_the_documented_characters_only() {
        assert_eq!(check_client_msg_id("m-1.2_3:4"), Ok(()));
        for bad in ["", "a b", "ü", &"a".repeat(129)] {
            assert_eq!(
                check_client_msg_id(bad),
                Err(TextError::InvalidClientMsgId),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_logged_error_keeps_its_kind_and_position_but_not_what_it_quotes() {
        assert_eq!(
            log_safe(
                r#"not a valid event: invalid type: string "my card is 4111", expected u16 at line 1 column 42"#
            ),
            r#"not a valid event: invalid type: string "…", expected u16 at line 1 column 42"#
        );
        assert_eq!(
            log_safe("unknown variant `hello there`, expected one of `a`, `b`"),
            "unknown variant `…`, expected one of `…`, `…`"
        );
        assert_eq!(
            log_safe(r#"model server answered 400: {"error":{"message":"you said \"secret\""}}"#),
            r#"model server answered 400: {"…":{"…":"…"}}"#
        );
    }

    #[test]
    fn an_error_without_quotes_is_logged_as_it_is() {
        assert!(matches!(
            log_safe("model server timed out after 30 s"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn an_unclosed_quote_hides_the_rest() {
        assert_eq!(log_safe(r#"cut: "my address is"#), r#"cut: "…""#);
    }
}
