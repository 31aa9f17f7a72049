//! Every bad frame gets its named error code, the connection stays open, and nothing
//! invalid reaches the stream.

use serde_json::json;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::support::{
    Stack, frames_until_acked_and, is_event, message_contents, next_frame, send_json,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_frame_is_named_and_the_next_good_message_is_answered() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let thread_id = session["thread_id"].as_str().unwrap().to_owned();

    let too_long = "x".repeat(10_001);
    let too_large = format!(r#"{{"type":"message","content":"{}"}}"#, "y".repeat(70_000));
    let cases: Vec<(Message, &str)> = vec![
        (Message::Text("not json".into()), "invalid_json"),
        (
            Message::Text(r#"{"type":"message","content":"\ud800"}"#.into()),
            "invalid_json",
        ),
        (Message::Text("[1,2,3]".into()), "not_an_object"),
        (Message::Text("42".into()), "not_an_object"),
        (Message::Text(r#"{"type":"dance"}"#.into()), "unknown_type"),
        (
            Message::Text(r#"{"type":"message"}"#.into()),
            "empty_content",
        ),
        (
            Message::Text(r#"{"type":"message","content":"   \n "}"#.into()),
            "empty_content",
        ),
        (
            Message::Text(
                json!({"type": "message", "content": too_long})
                    .to_string()
                    .into(),
            ),
            "content_too_long",
        ),
        (
            Message::Text(r#"{"type":"message","content":"a\u0000b"}"#.into()),
            "content_contains_nul",
        ),
        (Message::Text(too_large.into()), "frame_too_large"),
        (
            Message::Text(r#"{"type":"message","content":"hi","client_msg_id":"a b"}"#.into()),
            "invalid_client_msg_id",
        ),
        (
            Message::Binary(vec![1, 2, 3].into()),
            "binary_not_supported",
        ),
    ];
    for (frame, code) in cases {
        use futures::SinkExt;
        socket.send(frame).await.unwrap();
        let error = next_frame(&mut socket).await;
        assert_eq!(error["type"], "error", "for {code}");
        assert_eq!(error["code"], code);
        assert!(!error["message"].as_str().unwrap().is_empty());
    }

    send_json(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_frame(&mut socket).await["type"], "pong");
    send_json(
        &mut socket,
        json!({"type": "message", "content": "hello after all that"}),
    )
    .await;
    let frames = frames_until_acked_and(&mut socket, |f| is_event(f, "agent.replied")).await;
    let replied = frames
        .iter()
        .find(|f| is_event(f, "agent.replied"))
        .unwrap()["seq"]
        .as_u64()
        .unwrap();

    let steps = stack.replay_through(&thread_id, replied).await;
    assert_eq!(
        message_contents(&steps),
        ["hello after all that"],
        "no invalid frame was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_transport_cap_is_closed_with_1009_after_the_earlier_answers() {
    use futures::{SinkExt, StreamExt};
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    next_frame(&mut socket).await;

    send_json(
        &mut socket,
        json!({"type": "message", "content": "before the big one", "client_msg_id": "m-1"}),
    )
    .await;
    // Over 4 × WS_MAX_FRAME_BYTES (64 KiB): the transport does not read it.
    let huge = format!(
        r#"{{"type":"message","content":"{}"}}"#,
        "z".repeat(4 * 65_536 + 1_000)
    );
    socket.send(Message::Text(huge.into())).await.unwrap();

    let mut acked = false;
    let close = loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(15), socket.next())
            .await
            .expect("an answer within 15 s")
            .expect("a close frame before the connection ends")
            .expect("a valid frame, not a dropped connection");
        match message {
            Message::Text(text) => {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                acked |= frame["type"] == "ack" && frame["client_msg_id"] == "m-1";
            }
            Message::Close(close) => break close.expect("a close code"),
            _ => {}
        }
    };
    assert!(
        acked,
        "the message read before the big frame is acked first"
    );
    assert_eq!(u16::from(close.code), 1009);
    assert_eq!(
        close.reason.as_str(),
        "message too big: the limit is 65536 bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_from_another_origin_cannot_open_a_socket() {
    let stack = Stack::start().await;
    let mut request = stack.ws_url("").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected an HTTP 403, got {other}"),
    }

    let mut same_origin = stack.ws_url("").into_client_request().unwrap();
    let origin = format!("http://{}", stack.addr);
    same_origin
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(same_origin).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rest_requests_get_a_named_json_error() {
    let stack = Stack::start().await;
    let url = |path: &str| format!("http://{}{path}", stack.addr);
    let long_id = "a".repeat(65);
    for (path, status, code) in [
        ("/api/conversations?limit=0", 400, "invalid_limit"),
        ("/api/conversations?limit=101", 400, "invalid_limit"),
        ("/api/conversations?limit=1e2", 400, "invalid_limit"),
        ("/api/conversations?cursor=forged", 400, "invalid_cursor"),
        ("/api/conversations?cursor=%00%FF", 400, "invalid_cursor"),
        ("/api/conversations?status=sleeping", 400, "invalid_status"),
        ("/api/conversations?min_seq=-1", 400, "invalid_min_seq"),
        ("/api/conversations/a.b", 400, "invalid_thread_id"),
        ("/api/conversations/a%00b", 400, "invalid_thread_id"),
        ("/api/conversations/%E2%80%AEab", 400, "invalid_thread_id"),
        (
            &format!("/api/conversations/{long_id}"),
            400,
            "invalid_thread_id",
        ),
        (
            "/api/conversations/nobody?min_seq=x",
            400,
            "invalid_min_seq",
        ),
        (
            "/api/conversations/nobody/replay",
            404,
            "conversation_not_found",
        ),
        ("/api/analytics?range=1y", 400, "invalid_range"),
        (
            "/api/analytics?range=24h&from=2026-01-01T00:00:00Z",
            400,
            "range_and_dates",
        ),
        (
            "/api/analytics?from=2026-01-01T00:00:00Z",
            400,
            "missing_to",
        ),
        (
            "/api/analytics?from=noon&to=2026-01-01T00:00:00Z",
            400,
            "invalid_from",
        ),
        (
            "/api/analytics?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "from_not_before_to",
        ),
        (
            "/api/analytics?from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z",
            400,
            "range_too_long",
        ),
        (
            "/api/analytics?from=-9999-01-01T00:00:00Z&to=9999-12-31T23:59:59Z",
            400,
            "invalid_from",
        ),
        ("/api/dead-letters?limit=500", 400, "invalid_limit"),
        ("/api/dead-letters?category=sad", 400, "invalid_category"),
        ("/api/dead-letters?since=yesterday", 400, "invalid_since"),
        (
            "/api/dead-letters?thread_id=a%20b",
            400,
            "invalid_thread_id",
        ),
        ("/api/dead-letters/abc", 400, "invalid_id"),
        ("/api/dead-letters/0", 400, "invalid_id"),
        (
            "/api/dead-letters/99999999999999999999999",
            400,
            "invalid_id",
        ),
        ("/api/dead-letters/42", 404, "not_found"),
        ("/api/openapi/imports/not-a-uuid", 404, "import_not_found"),
        ("/api/nothing-here", 404, "not_found"),
    ] {
        let response = stack.http.get(url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}");
    }
    // Bodies: JSON that is not the request, a note or a document with NUL.
    for (path, body, status, code) in [
        (
            "/api/conversations/nobody/resolve",
            "[1]",
            400,
            "invalid_body",
        ),
        (
            "/api/conversations/nobody/resolve",
            r#"{"note":"a\u0000"}"#,
            400,
            "note_contains_nul",
        ),
        (
            "/api/conversations/nobody/resolve",
            r#"{"note":"ok"}"#,
            404,
            "conversation_not_found",
        ),
        (
            "/api/dead-letters/redrive",
            r#"{"dry_run":"yes"}"#,
            400,
            "invalid_body",
        ),
        (
            "/api/dead-letters/redrive",
            "{}",
            400,
            "confirmation_required",
        ),
    ] {
        let response = stack.http.post(url(path)).body(body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path} {body}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{path} {body}");
    }
    for document in [
        "openapi: 3.0.0\ninfo: {title: \"a\\0\", version: '1'}\npaths: {}\n",
        "openapi: 3.0.0\0",
        r#"{"url":"https://example.com/\u0000"}"#,
    ] {
        let response = stack
            .http
            .post(url("/api/openapi/imports"))
            .body(document)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202, "{document:?}");
        let id = response.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let job = stack
            .get_until(&format!("/api/openapi/imports/{id}"), |j| {
                j["status"] != "pending"
            })
            .await;
        assert_eq!(job["status"], "failed", "{document:?}: {job}");
        assert_eq!(
            job["error"]["code"], "invalid_document",
            "{document:?}: {job}"
        );
    }

    let response = stack
        .http
        .delete(url("/api/conversations"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
