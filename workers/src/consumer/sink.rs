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
    /// number of its ack among all the sink awaits.
    terminal: Option<(Envelope, usize)>,
    /// Acks awaited so far.
    flushed: usize,
    /// Its stream sequence, once `flush` returned.
    terminal_seq: Option<u64>,
    /// The stream sequence the thread's last turn event must still have when the first
    /// event is stored (`Nats-Expected-Last-Subject-Sequence`, 0: none). The others follow
    /// it pipelined: a delivery that another worker may have too (this process froze past
    /// the ack wait, with its events perhaps still in its connection) decides as the other
    /// one does (`desk::mode` reads only what was stored before the message), so its events
    /// have the same ids, and JetStream drops whichever copy comes second.
    expect_last: Option<u64>,
    /// Whether nothing else of the turn is sent before the first event's ack is back: for a
    /// delivery that may run beside another turn of its thread (a redelivery, or one that
    /// stopped waiting for its thread's previous message), whose events would not be
    /// duplicates, so a refused first event must stop the rest.
    wait_for_first: bool,
}

impl<'a> JetStreamSink<'a> {
    pub(super) fn new(js: &'a Context) -> Self {
        JetStreamSink {
            js,
            acks: Vec::new(),
            terminal: None,
            flushed: 0,
            terminal_seq: None,
            expect_last: None,
            wait_for_first: false,
        }
    }

    /// The first event is stored only if the thread's last turn event is still at `seq`
    /// (`None`: unknown, no check); with `wait`, the rest of the turn waits for it.
    pub(super) fn expecting_last_turn_event(mut self, seq: Option<u64>, wait: bool) -> Self {
        self.expect_last = seq;
        self.wait_for_first = wait;
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
            let expect = self.expect_last.take();
            if let Some(seq) = expect {
                publish = publish.expected_last_subject_sequence(seq);
            }
            let ack = self
                .js
                .send_publish(subject, publish)
                .await
                .map_err(|err| TurnError::Publish(err.to_string()))?;
            self.acks.push(ack);
            if expect.is_some() && self.wait_for_first {
                self.flush().await?;
            }
            if event.payload.is_terminal() {
                // Its ack is the n-th the sink awaits, counting from 1.
                self.terminal = Some((event, self.flushed + self.acks.len()));
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), TurnError>> {
        Box::pin(async move {
            for ack in self.acks.drain(..) {
                let stored = ack
                    .await
                    .map_err(|err| TurnError::Publish(err.to_string()))?;
                self.flushed += 1;
                if Some(self.flushed) == self.terminal.as_ref().map(|(_, n)| *n) {
                    self.terminal_seq = Some(stored.sequence);
                }
            }
            Ok(())
        })
    }
}
