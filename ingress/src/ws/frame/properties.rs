//! Property tests of [`parse`]: whatever text a client sends, the answer is a frame or one
//! of the named parse errors, never a panic; a frame built from generated fields gets
//! exactly the answer the documented checks give (the oracle [`expected`]); a valid
//! frame survives being written and read again. `PROPTEST_CASES` runs more cases than the
//! few hundred `make test` runs.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

const CAP: usize = 64 * 1024;

/// The codes [`parse`] may answer: the others are decided later (in the session).
const PARSE_CODES: [ErrorCode; 8] = [
    ErrorCode::FrameTooLarge,
    ErrorCode::InvalidJson,
    ErrorCode::NotAnObject,
    ErrorCode::UnknownType,
    ErrorCode::EmptyContent,
    ErrorCode::ContentTooLong,
    ErrorCode::ContentContainsNul,
    ErrorCode::InvalidClientMsgId,
];

/// Characters that exercise the content rules and the JSON escapes: whitespace, NUL and
/// other controls, quotes and backslashes, an RTL override, a combining mark, a zero-width
/// joiner, emoji, a BOM, and any other character.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => prop::sample::select(vec![
            ' ', '\t', '\n', '\r', '\u{a0}', '\u{3000}', '\0', '\u{1}', '\u{1f}', '\u{7f}', '"',
            '\\', '/', '\u{202e}', '\u{202d}', '\u{301}', '\u{200d}', '\u{200b}', '\u{feff}',
            '\u{fffd}', '\u{ffff}', '😀', '👩', '🏽', 'é', 'a', 'Z', '0', '.', '_', ':', '-',
        ]),
    ]
}

fn text_of(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..max_chars).prop_map(String::from_iter)
}

/// Content: short tricky text, or text around the 10000-character limit.
fn content() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => text_of(24),
        1 => (MAX_CONTENT_CHARS - 2..MAX_CONTENT_CHARS + 3, text_of(3)).prop_map(|(n, tail)| {
            let mut text = "é".repeat(n.saturating_sub(tail.chars().count()));
            text.push_str(&tail);
            text
        }),
    ]
}

/// A `client_msg_id`: mostly from the allowed alphabet, at or around its length limit.
fn client_msg_id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9._:-]{1,128}",
        1 => "[A-Za-z0-9._:-]{127,130}",
        1 => text_of(8),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text_of(8).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text_of(4), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A member of a generated frame: absent, a string, or any other JSON value.
fn member(string: impl Strategy<Value = String>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        6 => string.prop_map(|s| Some(Value::String(s))),
        1 => json_value().prop_map(Some),
    ]
}

/// A frame object from generated members, plus members the server ignores.
fn frame_object() -> impl Strategy<Value = Map<String, Value>> {
    let kind = member(prop_oneof![
        4 => Just("message".to_owned()),
        1 => Just("ping".to_owned()),
        1 => text_of(8),
    ]);
    let extra = prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..3);
    (kind, member(content()), member(client_msg_id()), extra).prop_map(
        |(kind, content, id, extra)| {
            let mut object: Map<String, Value> = extra.into_iter().collect();
            for (name, value) in [("type", kind), ("content", content), ("client_msg_id", id)] {
                match value {
                    Some(value) => object.insert(name.to_owned(), value),
                    None => object.remove(name),
                };
            }
            object
        },
    )
}

/// The answer the documented checks give to a frame object (websocket.md, "Error codes"):
/// worked out from the members, without the parser.
fn expected(object: &Map<String, Value>) -> Result<ClientFrame, ErrorCode> {
    match object.get("type").and_then(Value::as_str) {
        Some("ping") => return Ok(ClientFrame::Ping),
        Some("message") => {}
        _ => return Err(ErrorCode::UnknownType),
    }
    let content = match object.get("content") {
        Some(Value::String(content)) => content,
        _ => return Err(ErrorCode::EmptyContent),
    };
    if content.chars().all(char::is_whitespace) {
        return Err(ErrorCode::EmptyContent);
    }
    if content.chars().count() > 10_000 {
        return Err(ErrorCode::ContentTooLong);
    }
    if content.contains('\0') {
        return Err(ErrorCode::ContentContainsNul);
    }
    let client_msg_id = match object.get("client_msg_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id))
            if (1..=128).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".:_-".contains(c)) =>
        {
            Some(ClientMsgId(id.clone()))
        }
        Some(_) => return Err(ErrorCode::InvalidClientMsgId),
    };
    Ok(ClientFrame::Message {
        content: MessageContent(content.clone()),
        client_msg_id,
    })
}

/// The text a client would send for a parsed frame.
fn write(frame: &ClientFrame) -> String {
    match frame {
        ClientFrame::Ping => json!({"type": "ping"}).to_string(),
        ClientFrame::Message {
            content,
            client_msg_id,
        } => json!({
            "type": "message",
            "content": content.as_str(),
            "client_msg_id": client_msg_id.as_ref().map(ClientMsgId::as_str),
        })
        .to_string(),
    }
}

/// What every answer of [`parse`] must be: a parse error by name, or a frame that keeps
/// the rules of its types and reads back the same from its own text.
fn check_answer(text: &str, answer: Result<ClientFrame, FrameError>) -> Result<(), TestCaseError> {
    match answer {
        Err(error) => {
            prop_assert!(PARSE_CODES.contains(&error.code), "{error:?}");
            prop_assert!(!error.message.is_empty());
            if text.len() > CAP {
                prop_assert_eq!(error.code, ErrorCode::FrameTooLarge);
            }
        }
        Ok(frame) => {
            if let ClientFrame::Message {
                content,
                client_msg_id,
            } = &frame
            {
                let content = content.as_str();
                prop_assert!(!content.trim().is_empty());
                prop_assert!(content.chars().count() <= MAX_CONTENT_CHARS);
                prop_assert!(!content.contains('\0'));
                if let Some(id) = client_msg_id {
                    prop_assert!(ClientMsgId::parse(id.as_str().to_owned()).is_ok());
                }
            }
            prop_assert_eq!(parse(&write(&frame), CAP), Ok(frame));
        }
    }
    Ok(())
}

/// Edits of a frame's text: (where, remove/replace/insert, the character).
type Edits = Vec<(prop::sample::Index, u8, char)>;

/// The frame's text with characters removed, replaced or inserted anywhere, escapes included.
fn edited(object: Map<String, Value>, edits: Edits) -> String {
    let mut chars: Vec<char> = Value::Object(object).to_string().chars().collect();
    for (at, edit, c) in edits {
        let at = at.index(chars.len() + 1);
        match edit {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars[at] = c,
            _ => chars.insert(at, c),
        }
    }
    String::from_iter(chars)
}

proptest! {
    #![proptest_config(testkit::proptest_config(512))]

    #[test]
    fn any_text_is_a_frame_or_a_named_error(text in prop_oneof![
        text_of(64),
        any::<Vec<u8>>().prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]) {
        let answer = parse(&text, CAP);
        check_answer(&text, answer)?;
    }

    #[test]
    fn a_generated_frame_gets_the_documented_answer(object in frame_object()) {
        let text = Value::Object(object.clone()).to_string();
        let answer = parse(&text, CAP);
        match (&answer, expected(&object)) {
            (Err(error), _) if text.len() > CAP => {
                prop_assert_eq!(error.code, ErrorCode::FrameTooLarge);
            }
            (Ok(frame), Ok(expected)) => prop_assert_eq!(frame, &expected),
            (Err(error), Err(code)) => prop_assert_eq!(error.code, code, "{}", error.message),
            (answer, expected) => {
                prop_assert!(false, "parsed {:?}, expected {:?}", answer, expected);
            }
        }
        check_answer(&text, answer)?;
    }

    #[test]
    fn the_fast_path_answers_as_the_json_tree_does(
        object in frame_object(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..4u8, tricky_char()), 0..3),
    ) {
        let text = edited(object, edits);
        let outcome = |answer: Result<ClientFrame, FrameError>| answer.map_err(|e| e.code);
        prop_assert_eq!(outcome(parse(&text, usize::MAX)), outcome(super::parse_tree(&text)), "{}", text);
    }

    #[test]
    fn an_edited_frame_is_a_frame_or_a_named_error(
        object in frame_object(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..4u8, tricky_char()), 1..4),
    ) {
        let text = edited(object, edits);
        let answer = parse(&text, CAP);
        check_answer(&text, answer)?;
    }

    #[test]
    fn a_lone_surrogate_escape_anywhere_in_a_message_is_invalid_json(
        before in text_of(8),
        after in text_of(8),
        surrogate in prop_oneof![0xd800u32..0xdc00, 0xdc00u32..0xe000],
        id in prop::option::of("[a-z0-9]{1,8}"),
    ) {
        // A high surrogate not followed by a low one, or a low one on its own.
        let quoted = |s: &str| serde_json::to_string(s).unwrap();
        let (before, after) = (quoted(&before), quoted(&format!("x{after}")));
        let content = format!(
            "{}\\u{surrogate:04x}{}",
            before.strip_suffix('"').unwrap(),
            after.strip_prefix('"').unwrap(),
        );
        let text = format!(r#"{{"type":"message","content":{content},"client_msg_id":{}}}"#,
            id.map_or("null".to_owned(), |id| quoted(&id)));
        let error = parse(&text, CAP).unwrap_err();
        prop_assert_eq!(error.code, ErrorCode::InvalidJson, "{}", error.message);
    }

    #[test]
    fn a_frame_over_the_byte_cap_is_too_large_whatever_it_holds(
        first in tricky_char(),
        rest in text_of(40),
        cap in any::<prop::sample::Index>(),
    ) {
        let text = format!("{first}{rest}");
        let cap = cap.index(text.len());
        prop_assert_eq!(parse(&text, cap).unwrap_err().code, ErrorCode::FrameTooLarge);
    }
}
