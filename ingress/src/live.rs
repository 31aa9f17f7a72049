//! One tail of the chat stream per ingress process, fanned out to the sockets of each
//! thread. A connection registers before it replays history, so every event reaches it
//! either from the replay or from here (the session drops what it already sent).
//!
//! Each connection has a bounded buffer. A client that reads too slowly to keep up is
//! unregistered when its buffer is full; its session then closes the socket with code
//! 1013 and the client resumes with `after_seq` — server memory never grows with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{
    consumer::{DeliverPolicy, pull::OrderedConfig},
    stream::Stream,
};
use bytes::Bytes;
use common::{events::ThreadId, shutdown::CancellationToken, subjects};
use futures::StreamExt;
use tokio::sync::mpsc;

/// One stored event on its way to a socket.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// Stream sequence.
    pub seq: u64,
    /// The event as stored (JSON).
    pub payload: Bytes,
}

type Registry = HashMap<String, Vec<(u64, mpsc::Sender<LiveEvent>)>>;

/// The process-wide tail of the chat stream.
#[derive(Clone, Default)]
pub struct LiveTail {
    registry: Arc<Mutex<Registry>>,
    next_id: Arc<AtomicU64>,
}

/// A connection's registration; dropping it unregisters.
pub struct Subscription {
    tail: LiveTail,
    thread: String,
    id: u64,
    /// Events of the thread, in stream order. `None` once the connection was dropped for
    /// being too slow.
    pub events: mpsc::Receiver<LiveEvent>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.tail.unregister(&self.thread, self.id);
    }
}

impl LiveTail {
    /// Starts tailing new events of the stream until `shutdown`.
    pub fn start(stream: Stream, shutdown: CancellationToken) -> LiveTail {
        let tail = LiveTail::default();
        tokio::spawn(tail.clone().run(stream, shutdown));
        tail
    }

    /// Registers a connection for the events of `thread`.
    pub fn subscribe(&self, thread: &ThreadId, capacity: usize) -> Subscription {
        let (tx, events) = mpsc::channel(capacity.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.registry
            .lock()
            .expect("registry lock")
            .entry(thread.as_str().to_owned())
            .or_default()
            .push((id, tx));
        Subscription {
            tail: self.clone(),
            thread: thread.as_str().to_owned(),
            id,
            events,
        }
    }

    fn unregister(&self, thread: &str, id: u64) {
        let mut registry = self.registry.lock().expect("registry lock");
        if let Some(subscribers) = registry.get_mut(thread) {
            subscribers.retain(|(sub_id, _)| *sub_id != id);
            if subscribers.is_empty() {
                registry.remove(thread);
            }
        }
    }

    fn dispatch(&self, thread: &str, event: LiveEvent) {
        let mut registry = self.registry.lock().expect("registry lock");
        let Some(subscribers) = registry.get_mut(thread) else {
            return;
        };
        subscribers.retain(|(id, tx)| match tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(thread_id = thread, connection = id, "slow client dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if subscribers.is_empty() {
            registry.remove(thread);
        }
    }

    async fn run(self, stream: Stream, shutdown: CancellationToken) {
        // After the first event, a restarted tail resumes right after the last one seen.
        let mut last_seq: Option<u64> = None;
        while !shutdown.is_cancelled() {
            let deliver_policy = match last_seq {
                Some(seq) => DeliverPolicy::ByStartSequence {
                    start_sequence: seq + 1,
                },
                None => DeliverPolicy::New,
            };
            let config = OrderedConfig {
                filter_subject: subjects::CHAT_SUBJECTS.into(),
                deliver_policy,
                ..Default::default()
            };
            let messages = match stream.create_consumer(config).await {
                Ok(consumer) => consumer.messages().await,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot create the live tail consumer; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut messages = match messages {
                Ok(messages) => messages,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the live tail; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        let Ok(info) = message.info() else { continue };
                        let seq = info.stream_sequence;
                        last_seq = Some(seq);
                        if let Some(thread) = subjects::thread_of(&message.subject) {
                            let payload = message.payload.clone();
                            self.dispatch(thread, LiveEvent { seq, payload });
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "live tail error; recreating");
                        break;
                    }
                    None => break,
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
