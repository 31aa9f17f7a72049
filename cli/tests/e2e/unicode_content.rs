//! Chat content beyond plain text, through the real WebSocket: right-to-left overrides,
//! emoji and their joiner sequences, combining marks, other control characters and
//! padding are stored and come back exactly — in the socket's echo, in a resume's
//! history and in the replay of the REST API. What cannot be stored exactly is refused by
//! name: NUL (`content_contains_nul`: PostgreSQL cannot hold it) and lone UTF-16
//! surrogates (`invalid_json`: they are not Unicode text); the connection stays open.

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{
    Socket, Stack, frames_until, message_contents, next_frame, resume_query, send_json,
};

/// Content that must come back byte for byte.
const STORED: [&str; 8] = [
    // An RTL override that flips how the rest is displayed, and an isolate.
    "refund \u{202e}txt.exe\u{202c} and \u{2067}אבג\u{2069}",
    // Emoji with skin tones, ZWJ sequences (a family, a rainbow flag) and a keycap.
    "👍🏽 👩\u{200d}👩\u{200d}👧\u{200d}👦 🏳\u{fe0f}\u{200d}🌈 1\u{fe0f}\u{20e3}",
    // Combining marks, precomposed beside decomposed, and stacked ones.
    "e\u{301} é Z\u{35f}\u{36e}a\u{300}\u{301}\u{302}\u{303}l\u{334}g\u{335}o\u{336}",
    // Scripts in both directions, zero-width characters, a BOM.
    "שלום مرحبا 你好 नमस्ते \u{200b}\u{200c}\u{2060}\u{feff}",
    // Controls other than NUL, an ANSI escape, and text that looks like escapes.
    "bell\u{7} esc\u{1b}[31mred\u{1b}[0m del\u{7f} \\u0000 \\ud800 %00",
    // Non-characters and the last code point.
    "\u{fffe}\u{ffff}\u{1fffe}\u{10ffff}",
    // Whitespace around the text is kept, not trimmed.
    "  \t padded \r\n ",
    // The largest content: 10000 characters of four bytes each.
    "",
];

fn stored_content(i: usize) -> String {
    if STORED[i].is_empty() {
        "𝄞".repeat(10_000)
    } else {
        STORED[i].to_owned()
    }
}

/// Sends raw text and returns the error frame it gets.
async fn refused(socket: &mut Socket, text: &str) -> Value {
    socket.send(Message::Text(text.into())).await.unwrap();
    let frame = frames_until(socket, |f| f["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert!(frame.get("client_msg_id").is_none(), "{frame}");
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_content_is_stored_exactly_or_refused_by_name() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let thread = session["thread_id"].as_str().unwrap().to_owned();

    for (text, code) in [
        (
            r#"{"type":"message","content":"a\u0000b"}"#,
            "content_contains_nul",
        ),
        (
            r#"{"type":"message","content":"\u0000"}"#,
            "content_contains_nul",
        ),
        (r#"{"type":"message","content":"a\ud800b"}"#, "invalid_json"),
        (r#"{"type":"message","content":"a\udc00"}"#, "invalid_json"),
        (r#"{"type":"message","content":"\ud83d"}"#, "invalid_json"),
        (
            r#"{"type":"message","content":"\ud83d\u0041"}"#,
            "invalid_json",
        ),
    ] {
        let error = refused(&mut socket, text).await;
        assert_eq!(error["code"], code, "{text}: {error}");
    }

    // Each stored message: its ack, then the echo of exactly what was sent.
    let mut seqs = Vec::new();
    for i in 0..STORED.len() {
        let content = stored_content(i);
        let id = format!("u-{i}");
        send_json(
            &mut socket,
            json!({"type": "message", "content": content, "client_msg_id": id}),
        )
        .await;
        let frames = frames_until(&mut socket, |f| {
            f["type"] == "ack" && f["client_msg_id"] == id.as_str()
        })
        .await;
        let seq = frames.last().unwrap()["seq"].as_u64().unwrap();
        let echo = match frames
            .iter()
            .find(|f| f["seq"] == seq && f["type"] == "event")
        {
            Some(echo) => echo.clone(),
            None => frames_until(&mut socket, |f| f["type"] == "event" && f["seq"] == seq)
                .await
                .pop()
                .unwrap(),
        };
        assert_eq!(echo["event"]["kind"], "message.received");
        assert_eq!(
            echo["event"]["content"].as_str(),
            Some(content.as_str()),
            "echo of {i}"
        );
        seqs.push(seq);
    }

    // A resume's history has them as sent.
    let mut resumed = stack.connect(&resume_query(&session, Some(0))).await;
    next_frame(&mut resumed).await;
    let last = *seqs.last().unwrap();
    let history = frames_until(&mut resumed, |f| f["seq"] == last).await;
    let events: Vec<Value> = history.iter().map(|f| f["event"].clone()).collect();
    let expected: Vec<String> = (0..STORED.len()).map(stored_content).collect();
    assert_eq!(message_contents(&events), expected, "history");

    // So does the replay, once projected; nothing refused was stored.
    let steps = stack.replay_through(&thread, last).await;
    assert_eq!(message_contents(&steps), expected, "replay");

    // The socket stayed open throughout.
    send_json(&mut socket, json!({"type": "ping"})).await;
    frames_until(&mut socket, |f| f["type"] == "pong").await;
}
