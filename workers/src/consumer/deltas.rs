//! A reply's pieces on their way to the customer: published on core NATS
//! (`delta.<thread>`, outside every stream, so never stored) as the WebSocket `delta` frame
//! itself; the ingress forwards them to the thread's sockets. Best effort: a publish that
//! fails is dropped (the stored `agent.replied` holds the whole text).

use common::events::{ThreadId, TurnId};
use serde_json::json;

use crate::agents::{BoxFuture, Deltas};

#[derive(Debug)]
pub(super) struct NatsDeltas {
    client: async_nats::Client,
    subject: String,
    turn_id: String,
}

impl NatsDeltas {
    pub(super) fn new(client: async_nats::Client, thread: &ThreadId, turn: TurnId) -> NatsDeltas {
        NatsDeltas {
            client,
            subject: common::subjects::reply_delta(thread),
            turn_id: turn.to_string(),
        }
    }
}

impl Deltas for NatsDeltas {
    fn send<'a>(&'a self, text: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let frame = json!({"type": "delta", "turn_id": self.turn_id, "text": text});
            if let Err(error) = self
                .client
                .publish(self.subject.clone(), frame.to_string().into())
                .await
            {
                tracing::debug!(%error, "a reply delta was not sent");
            }
        })
    }
}
