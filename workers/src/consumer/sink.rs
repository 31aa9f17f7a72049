//! The sink of a turn: its events published pipelined, each acknowledged by JetStream
//! before the turn counts as done.

use async_nats::jetstream::{Context, context::PublishAckFuture};
use common::events::{Envelope, publish_of};

use crate::agents::BoxFuture;
use crate::turn::{Sink, TurnError};

/// Publishes a turn's events pipelined, each with its event id as `Nats-Msg-Id`; `flush`
/// returns once every PubAck is in.
pub(super) struct JetStreamSink<'a> {
    pub(super) js: &'a Context,
    pub(super) acks: Vec<PublishAckFuture>,
    /// The event that ended the turn, once emitted (stored once `flush` returned).
    pub(super) terminal: Option<Envelope>,
}

impl Sink for JetStreamSink<'_> {
    fn emit(&mut self, event: Envelope) -> BoxFuture<'_, Result<(), TurnError>> {
        Box::pin(async move {
            let (subject, publish) = publish_of(&event);
            let ack = self
                .js
                .send_publish(subject, publish)
                .await
                .map_err(|err| TurnError::Publish(err.to_string()))?;
            self.acks.push(ack);
            if event.payload.is_terminal() {
                self.terminal = Some(event);
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), TurnError>> {
        Box::pin(async move {
            for ack in self.acks.drain(..) {
                ack.await
                    .map_err(|err| TurnError::Publish(err.to_string()))?;
            }
            Ok(())
        })
    }
}
