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
    consumer::{DeliverPolicy, push::OrderedConfig},
    stream::Stream,
};
use axum::extract::ws::Utf8Bytes;
use common::{events::ThreadId, shutdown::CancellationToken, subjects};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::ws::wire::event_frame;

/// One stored event on its way to sockets, with its frame built once for every socket
/// of the thread: `{"type":"event","seq":N,"event":<the event as stored>}`.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// Stream sequence.
    pub seq: u64,
    /// The event frame (cheap to clone: reference-counted).
    pub frame: Utf8Bytes,
    /// A `delta` frame (a piece of a reply while a model writes it): sent live only, never
    /// stored, so it has no sequence (`seq` 0) and is not counted as sent.
    pub live_only: bool,
}

impl LiveEvent {
    /// The frame of a stored event, or `None` for bytes that are not JSON: those never
    /// reach a client.
    pub fn from_stored(seq: u64, payload: &[u8]) -> Option<LiveEvent> {
        serde_json::from_slice::<serde::de::IgnoredAny>(payload).ok()?;
        let event = std::str::from_utf8(payload).ok()?;
        Some(LiveEvent {
            seq,
            frame: event_frame(seq, event),
            live_only: false,
        })
    }

    /// The `delta` frame a worker published on core NATS (`delta.<thread>`), forwarded as
    /// it is; `None` for anything that is not a JSON object of type `delta`.
    pub fn delta(payload: &[u8]) -> Option<LiveEvent> {
        #[derive(serde::Deserialize)]
        struct Delta<'a> {
            #[serde(rename = "type", borrow)]
            kind: &'a str,
        }
        let delta: Delta<'_> = serde_json::from_slice(payload).ok()?;
        if delta.kind != "delta" {
            return None;
        }
        Some(LiveEvent {
            seq: 0,
            frame: std::str::from_utf8(payload).ok()?.to_owned().into(),
            live_only: true,
        })
    }
}

/// Each connection's queue holds `Arc`s: a slot is a pointer, not the event, so the block of
/// slots tokio allocates per channel up front stays small (10,000 idle connections), and one
/// event sent to several connections is one allocation.
type Registry = HashMap<String, Vec<(u64, mpsc::Sender<Arc<LiveEvent>>)>>;

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
    pub events: mpsc::Receiver<Arc<LiveEvent>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.tail.unregister(&self.thread, self.id);
    }
}

impl LiveTail {
    /// Starts tailing the events stored from now on, until `shutdown`.
    pub async fn start(
        client: async_nats::Client,
        mut stream: Stream,
        shutdown: CancellationToken,
    ) -> anyhow::Result<LiveTail> {
        let tail = LiveTail::default();
        let position = stream.info().await?.state.last_sequence;
        // One task carries every connection's events. Unconstrained: tokio's cooperative
        // budget would make it yield after 128 events, to the back of a run queue of a
        // thousand sessions, and the tail fell behind its ~20,000 events/s in bursts (the
        // load runs' long p99, docs/benchmarks.md A17). It only ever handles what the
        // subscription has buffered, then waits.
        // The pieces of streamed replies, on core NATS beside the stream.
        let deltas = client.subscribe(subjects::REPLY_DELTAS).await?;
        tokio::spawn(tail.clone().run_deltas(deltas, shutdown.clone()));
        tokio::spawn(tokio::task::unconstrained(
            tail.clone().run(client, stream, position, shutdown),
        ));
        Ok(tail)
    }

    /// Forwards each reply piece to its thread's connections until `shutdown`. A piece is
    /// worth less than a connection: a full buffer skips it (the stored `agent.replied`
    /// follows with the whole text) instead of dropping the client.
    async fn run_deltas(self, mut deltas: async_nats::Subscriber, shutdown: CancellationToken) {
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = deltas.next() => match next {
                    Some(message) => message,
                    None => return,
                },
            };
            if let Some(thread) = subjects::thread_of_delta(&message.subject)
                && let Some(delta) = LiveEvent::delta(&message.payload)
            {
                self.dispatch_live_only(thread, delta);
            }
        }
    }

    fn dispatch_live_only(&self, thread: &str, event: LiveEvent) {
        let registry = self.registry.lock().expect("registry lock");
        let Some(subscribers) = registry.get(thread) else {
            return;
        };
        let event = Arc::new(event);
        for (_, tx) in subscribers {
            let _ = tx.try_send(event.clone());
        }
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
        let event = Arc::new(event);
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

    async fn run(
        self,
        client: async_nats::Client,
        stream: Stream,
        position: u64,
        shutdown: CancellationToken,
    ) {
        // The tail starts at the stream's end and, when recreated, resumes right after
        // the last event it saw, so a reconnect to NATS loses nothing.
        let mut last_seq = position;
        while !shutdown.is_cancelled() {
            let deliver_policy = DeliverPolicy::ByStartSequence {
                start_sequence: last_seq + 1,
            };
            // A push consumer: the server sends events as they are stored. The pull kind
            // asks for 500 at a time and waits a round trip for the next 500, which at
            // ~20,000 events/s left the tail starved for tens of milliseconds whenever a
            // request was slow (docs/benchmarks.md A20).
            let config = OrderedConfig {
                deliver_subject: client.new_inbox(),
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
            // An ordered consumer lives in the server's memory: after NATS restarts it is
            // gone, and waiting for missed heartbeats would take many seconds. Watching the
            // connection recreates it as soon as the client is back.
            let connects = || client.statistics().connects.load(Ordering::Relaxed);
            let connects_at_start = connects();
            let mut watch = tokio::time::interval(Duration::from_millis(200));
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = watch.tick() => {
                        if connects() != connects_at_start {
                            tracing::info!("NATS reconnected; recreating the live tail");
                            break;
                        }
                        continue;
                    }
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        let Ok(info) = message.info() else { continue };
                        let delay = time::OffsetDateTime::now_utc() - info.published;
                        crate::metrics::METRICS
                            .live_delay_seconds
                            .observe(delay.as_seconds_f64().max(0.0));
                        let seq = info.stream_sequence;
                        last_seq = seq;
                        if let Some(thread) = subjects::thread_of(&message.subject)
                            && subjects::reaches_customer(&message.subject)
                            && let Some(event) = LiveEvent::from_stored(seq, &message.payload)
                        {
                            self.dispatch(thread, event);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_event_becomes_its_frame_with_the_event_as_stored() {
        let event = LiveEvent::from_stored(7, br#"{"kind":"agent.replied","text":"hi"}"#).unwrap();
        let frame: serde_json::Value = serde_json::from_str(event.frame.as_str()).unwrap();
        assert_eq!(frame["type"], "event");
        assert_eq!(frame["seq"], 7);
        assert_eq!(frame["event"]["text"], "hi");
    }

    #[test]
    fn a_delta_is_forwarded_as_published_and_anything_else_on_its_subject_is_not() {
        let payload = br#"{"type":"delta","turn_id":"t","text":"Hel"}"#;
        let delta = LiveEvent::delta(payload).unwrap();
        assert!(delta.live_only);
        assert_eq!(delta.frame.as_str().as_bytes(), payload);
        for other in [&br#"{"type":"event","seq":3}"#[..], b"[1]", b"not json"] {
            assert!(LiveEvent::delta(other).is_none());
        }
    }

    #[test]
    fn stored_bytes_that_are_not_json_never_become_a_frame() {
        for garbage in [&b"not json"[..], b"{\"a\":", b"\xff\xfe", b""] {
            assert!(LiveEvent::from_stored(1, garbage).is_none());
        }
    }
}
