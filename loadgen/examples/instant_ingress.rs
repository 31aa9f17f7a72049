//! A stand-in for the ingress that answers at once and stores nothing: a session frame on
//! connect, then for every message an ack and the four events of a turn. It measures
//! loadgen's own ceiling, without NATS, PostgreSQL or workers in the way.
//!
//! ```text
//! cargo run --release -p loadgen --example instant_ingress -- 127.0.0.1:8090
//! cargo run --release -p loadgen -- --url ws://127.0.0.1:8090/ws -c 200 --in-flight 4
//! ```

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let listener = TcpListener::bind(&address).await?;
    eprintln!("instant ingress on ws://{}/ws", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream));
    }
}

async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let thread = uuid::Uuid::new_v4().simple().to_string();
    let session = format!(r#"{{"type":"session","thread_id":"{thread}","token":"t"}}"#);
    if socket.send(Message::Text(session.into())).await.is_err() {
        return;
    }
    let mut seq = 0_u64;
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let id = frame["client_msg_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let turn = uuid::Uuid::new_v4();
        seq += 1;
        let mut replies = vec![format!(
            r#"{{"type":"ack","client_msg_id":"{id}","seq":{seq}}}"#
        )];
        for (kind, extra) in [
            (
                "message.received",
                format!(r#","content":"…","client_msg_id":"{id}""#),
            ),
            ("turn.started", String::new()),
            (
                "agent.replied",
                r#","agent":"orders","text":"On its way.","outcome":"replied","latency_ms":1,"message_seq":1"#.to_owned(),
            ),
        ] {
            replies.push(format!(
                r#"{{"type":"event","seq":{seq},"event":{{"event_id":"{}","schema_version":2,"kind":"{kind}","thread_id":"{thread}","turn_id":"{turn}","occurred_at":"2026-01-01T00:00:00Z"{extra}}}}}"#,
                uuid::Uuid::new_v4()
            ));
            seq += 1;
        }
        for reply in replies {
            if socket.feed(Message::Text(reply.into())).await.is_err() {
                return;
            }
        }
        if socket.flush().await.is_err() {
            return;
        }
    }
}
