//! Reads a thread's stored events after a sequence, for a client that reconnects.

use async_nats::jetstream::{
    consumer::{
        DeliverPolicy,
        pull::{Ordered, OrderedConfig},
    },
    stream::Stream,
};
use common::{events::ThreadId, subjects};
use futures::StreamExt;

use crate::live::LiveEvent;

/// The stored events of one thread after a sequence, read in stream order with an
/// ordered consumer that is deleted when this is dropped.
pub struct History {
    messages: Option<Ordered>,
}

impl History {
    /// Starts reading events of `thread` above `after_seq` (every event when `None`).
    pub async fn after(
        stream: &Stream,
        thread: &ThreadId,
        after_seq: Option<u64>,
    ) -> anyhow::Result<History> {
        let deliver_policy = match after_seq {
            Some(seq) => DeliverPolicy::ByStartSequence {
                start_sequence: seq + 1,
            },
            None => DeliverPolicy::All,
        };
        let mut consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: subjects::thread_events(thread),
                deliver_policy,
                ..Default::default()
            })
            .await?;
        if consumer.info().await?.num_pending == 0 {
            return Ok(History { messages: None });
        }
        Ok(History {
            messages: Some(consumer.messages().await?),
        })
    }

    /// Whether there was nothing to read from the start.
    pub fn is_empty(&self) -> bool {
        self.messages.is_none()
    }

    /// The next stored event, or `None` once the history is exhausted. Stored bytes
    /// that are not JSON are skipped, and so are operators' internal notes
    /// ([`subjects::reaches_customer`]).
    pub async fn next(&mut self) -> anyhow::Result<Option<LiveEvent>> {
        loop {
            let Some(message) = self.next_message().await? else {
                return Ok(None);
            };
            if !message.2 {
                continue;
            }
            if let Some(event) = LiveEvent::from_stored(message.0, &message.1) {
                return Ok(Some(event));
            }
        }
    }

    /// The next stored message: its sequence, its bytes, and whether it may reach the
    /// customer.
    async fn next_message(&mut self) -> anyhow::Result<Option<(u64, bytes::Bytes, bool)>> {
        let Some(messages) = self.messages.as_mut() else {
            return Ok(None);
        };
        let Some(message) = messages.next().await else {
            self.messages = None;
            return Ok(None);
        };
        let message = message?;
        let info = message.info().map_err(|err| anyhow::anyhow!("{err}"))?;
        if info.pending == 0 {
            self.messages = None;
        }
        Ok(Some((
            info.stream_sequence,
            message.payload.clone(),
            subjects::reaches_customer(&message.subject),
        )))
    }
}
