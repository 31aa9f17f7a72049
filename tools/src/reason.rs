//! Why a tool call failed, in words a customer can read. The technical error (`HTTP 409:
//! {"error":…}`) stays in `tool.failed` for operators; the reply quotes only this: the
//! API's own message when its JSON body has one, otherwise a phrase for the kind of
//! failure. Never a status code, never JSON.

use common::events::ErrorCategory;
use serde_json::Value;

/// Characters of an API's message quoted to the customer; a longer one is cut.
const MAX_MESSAGE_CHARS: usize = 300;

/// The reason a refused call (a tool the agent may not use, invalid arguments) gives.
pub const REFUSED: &str = "that is not something I can do here";

/// The message of a JSON error body, in the common shapes: `{"error":{"message":…}}`,
/// `{"message":…}`, `{"error":"…"}`, `{"detail":"…"}`. `None` when there is none, or it is
/// empty, or it is not text.
pub fn api_message(body: &Value) -> Option<String> {
    let candidates = [
        body.pointer("/error/message"),
        body.get("message"),
        body.get("error"),
        body.get("detail"),
        body.pointer("/error/detail"),
    ];
    let text = candidates.into_iter().flatten().find_map(Value::as_str)?;
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return None;
    }
    if one_line.chars().count() <= MAX_MESSAGE_CHARS {
        return Some(one_line);
    }
    let mut cut: String = one_line.chars().take(MAX_MESSAGE_CHARS).collect();
    cut.push('…');
    Some(cut)
}

/// The reason told to the customer: the API's message when there is one, otherwise a
/// phrase for the status (or, without an answer, the category).
pub fn in_words(api_message: Option<&str>, status: Option<u16>, category: ErrorCategory) -> String {
    if let Some(message) = api_message.filter(|m| !m.trim().is_empty()) {
        return message.to_owned();
    }
    let phrase = match (status, category) {
        (Some(404 | 410), _) => "it was not found",
        (Some(401 | 403), _) => "I am not allowed to do that",
        (Some(400 | 422), _) => "the request was not accepted",
        (Some(409 | 412 | 423), _) => "that is not possible right now",
        (Some(408 | 429 | 500..=599), _) | (None, ErrorCategory::Retryable) => {
            "the service is not available right now; please try again in a little while"
        }
        _ => "something went wrong on our side",
    };
    phrase.to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_message_is_found_in_every_common_shape() {
        for body in [
            json!({"error": {"code": "not_cancellable", "message": "order is shipped"}}),
            json!({"message": "order is shipped"}),
            json!({"error": "order is shipped"}),
            json!({"detail": "order is shipped"}),
        ] {
            assert_eq!(
                api_message(&body).as_deref(),
                Some("order is shipped"),
                "{body}"
            );
        }
    }

    #[test]
    fn a_body_without_a_text_message_has_none() {
        for body in [
            json!({"detail": [{"loc": ["body"], "msg": "field required"}]}),
            json!({"error": {"code": "x"}}),
            json!({"message": "  "}),
            json!("plain text"),
            Value::Null,
        ] {
            assert_eq!(api_message(&body), None, "{body}");
        }
    }

    #[test]
    fn a_long_message_is_cut_and_kept_on_one_line() {
        let body = json!({"message": format!("a\nb {}", "x".repeat(400))});
        let message = api_message(&body).unwrap();
        assert!(message.starts_with("a b x"), "{message}");
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
    }

    #[test]
    fn the_apis_message_wins_over_the_status() {
        let reason = in_words(
            Some("order is shipped"),
            Some(409),
            ErrorCategory::NotRetryable,
        );
        assert_eq!(reason, "order is shipped");
    }

    #[test]
    fn without_a_message_the_status_gives_a_phrase_without_numbers() {
        let phrases = [
            (Some(404), ErrorCategory::NotRetryable, "it was not found"),
            (
                Some(409),
                ErrorCategory::NotRetryable,
                "that is not possible right now",
            ),
            (
                Some(503),
                ErrorCategory::Retryable,
                "not available right now",
            ),
            (None, ErrorCategory::Retryable, "not available right now"),
            (None, ErrorCategory::NotRetryable, "something went wrong"),
        ];
        for (status, category, phrase) in phrases {
            let reason = in_words(None, status, category);
            assert!(reason.contains(phrase), "{status:?}: {reason}");
            assert!(!reason.chars().any(|c| c.is_ascii_digit()), "{reason}");
        }
    }
}
