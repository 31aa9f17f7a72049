//! The sink of a turn: its events published pipelined, each acknowledged by JetStream
//! before the turn counts as done.

use async_nats::jetstream::{Context, context::PublishAckFuture};
use common::events::{Envelope, publish_of};

use crate::agents::BoxFuture;
use crate::turn::{Sink, TurnError};

/// Publishes a turn's events pipelined, each with its event id as `Nats-Msg-Id`; `flush`
/// returns once every PubAck is in.
pub(super) struct JetStreamSink<'a> {
    js: &'a Context,
    acks: Vec<PublishAckFuture>,
    /// The event that ended the turn, once emitted (stored once `flush` returned), and the
    /// index of its ack.
    terminal: Option<(Envelope, usize)>,
    /// Its stream sequence, once `flush` returned.
    terminal_seq: Option<u64>,
    /// The stream sequence the thread's last turn event must still have when the first
    /// event is stored (`Nats-Expected-Last-Subject-Sequence`, 0: none): set where a
    /// second ending must be refused rather than de-duplicated.
    expect_last: Option<u64>,
}

impl<'a> JetStreamSink<'a> {
    pub(super) fn new(js: &'a Context) -> Self {
        JetStreamSink {
            js,
            acks: Vec::new(),
            terminal: None,
            terminal_seq: None,
            expect_last: None,
        }
    }

    /// The first event is stored only if the thread's last turn event is still at `seq`.
    pub(super) fn expecting_last_turn_event(mut self, seq: Option<u64>) -> Self {
        self.expect_last = seq;
        self
    }

    /// The event that ended the turn and its stream sequence, once flushed.
    pub(super) fn stored_terminal(self) -> Option<(Envelope, u64)> {
        Some((self.terminal?.0, self.terminal_seq?))
    }
}

impl Sink for JetStreamSink<'_> {
    fn emit(&mut self, event: Envelope) -> BoxFuture<'_, Result<(), TurnError>> {
        Box::pin(async move {
            let (subject, mut publish) = publish_of(&event);
            if let Some(seq) = self.expect_last.take() {
                publish = publish.expected_last_subject_sequence(seq);
            }
            let ack = self
                .js
                .send_publish(subject, publish)
                .await
                .map_err(|err| TurnError::Publish(err.to_string()))?;
            self.acks.push(ack);
            if event.payload.is_terminal() {
                self.terminal = Some((event, self.acks.len() - 1));
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), TurnError>> {
        Box::pin(async move {
            let terminal = self.terminal.as_ref().map(|(_, index)| *index);
            for (index, ack) in self.acks.drain(..).enumerate() {
                let stored = ack
                    .await
                    .map_err(|err| TurnError::Publish(err.to_string()))?;
                if Some(index) == terminal {
                    self.terminal_seq = Some(stored.sequence);
                }
            }
            Ok(())
        })
    }
}
