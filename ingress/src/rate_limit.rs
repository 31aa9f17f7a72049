//! Per-thread rate limit, shared by every ingress instance: at most `limit` messages per
//! `window` for one thread, however many connections or instances it uses.
//!
//! The state is a NATS KV bucket (`RATE_LIMITS`): one key per thread holding the arrival
//! times (ms) of its recent messages, changed with compare-and-set on the key's revision,
//! so two instances cannot both take the last slot. A connection keeps the revision it
//! wrote last, so the common case costs one KV write; a conflict re-reads and retries.
//! Keys expire with the bucket's `max_age` (the window).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{
    Context,
    kv::{self, CreateErrorKind, UpdateErrorKind},
    stream::StorageType,
};
use bytes::Bytes;
use common::{events::ThreadId, subjects};

/// Settings of the limit.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub messages: usize,
    pub window: Duration,
}

/// The verdict for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; a slot frees up after this long.
    Limited {
        retry_after: Duration,
    },
}

/// Why the limit could not be checked (the message is then refused as `unavailable`).
#[derive(Debug, thiserror::Error)]
#[error("rate limit state unavailable: {0}")]
pub struct LimitUnavailable(pub String);

/// Creates (or updates) the bucket. Memory storage: losing it on a restart only forgets
/// recent arrivals, which errs on the side of letting messages through.
pub async fn ensure_bucket(
    js: &Context,
    limit: Limit,
    replicas: usize,
) -> anyhow::Result<kv::Store> {
    js.create_or_update_key_value(kv::Config {
        bucket: subjects::RATE_LIMIT_BUCKET.into(),
        description: "Recent message arrival times per thread (ingress rate limit)".into(),
        history: 1,
        max_age: limit.window,
        storage: StorageType::Memory,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|err| {
        anyhow::anyhow!(
            "cannot create KV bucket {}: {err}",
            subjects::RATE_LIMIT_BUCKET
        )
    })
}

/// One connection's view of its thread's limit.
pub struct ThreadLimiter {
    js: Context,
    replicas: usize,
    store: kv::Store,
    key: String,
    limit: Limit,
    /// Revision and arrivals this connection wrote last; `None` until known.
    cached: Option<(u64, Vec<u64>)>,
}

impl ThreadLimiter {
    pub fn new(
        js: Context,
        replicas: usize,
        store: kv::Store,
        thread: &ThreadId,
        limit: Limit,
    ) -> ThreadLimiter {
        ThreadLimiter {
            js,
            replicas,
            store,
            key: thread.as_str().to_owned(),
            limit,
            cached: None,
        }
    }

    /// Takes a slot for one message, or says how long until one frees up.
    pub async fn check(&mut self) -> Result<Decision, LimitUnavailable> {
        match self.try_check().await {
            Ok(decision) => Ok(decision),
            Err(first) if !connected(&self.js) => Err(first),
            Err(first) => {
                // The bucket lives in memory: a restarted NATS server has lost it.
                // Recreate it once and try again before refusing the message.
                tracing::info!(error = %first, "recreating the rate limit bucket");
                self.cached = None;
                self.store = ensure_bucket(&self.js, self.limit, self.replicas)
                    .await
                    .map_err(|_| first)?;
                self.try_check().await
            }
        }
    }

    async fn try_check(&mut self) -> Result<Decision, LimitUnavailable> {
        let unavailable = |err: &dyn std::fmt::Display| LimitUnavailable(err.to_string());
        for _ in 0..16 {
            let (revision, arrivals) = match self.cached.take() {
                Some(cached) => (Some(cached.0), cached.1),
                None => match self
                    .store
                    .entry(self.key.clone())
                    .await
                    .map_err(|e| unavailable(&e))?
                {
                    Some(entry) if entry.operation == kv::Operation::Put => {
                        (Some(entry.revision), decode(&entry.value))
                    }
                    Some(entry) => (Some(entry.revision), Vec::new()),
                    None => (None, Vec::new()),
                },
            };
            let now = now_ms();
            let (decision, arrivals) = decide(arrivals, now, self.limit);
            if decision != Decision::Allowed {
                self.cached = revision.map(|r| (r, arrivals));
                return Ok(decision);
            }
            let value = encode(&arrivals);
            let written = match revision {
                Some(revision) => match self.store.update(&self.key, value, revision).await {
                    Ok(new) => Some(new),
                    Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => None,
                    Err(err) => return Err(unavailable(&err)),
                },
                None => match self.store.create(&self.key, value).await {
                    Ok(new) => Some(new),
                    Err(err) if err.kind() == CreateErrorKind::AlreadyExists => None,
                    Err(err) => return Err(unavailable(&err)),
                },
            };
            if let Some(new_revision) = written {
                self.cached = Some((new_revision, arrivals));
                return Ok(Decision::Allowed);
            }
            // Another connection or instance wrote first (or the key expired): re-read.
        }
        Err(LimitUnavailable(
            "too much contention on the thread's rate limit key".into(),
        ))
    }
}

/// The pure rule: drop arrivals older than the window, then allow and record `now` if
/// fewer than `limit.messages` remain.
pub fn decide(mut arrivals: Vec<u64>, now: u64, limit: Limit) -> (Decision, Vec<u64>) {
    let window = limit.window.as_millis() as u64;
    arrivals.retain(|&t| t + window > now && t <= now + window);
    if arrivals.len() >= limit.messages {
        let oldest = arrivals.iter().min().copied().unwrap_or(now);
        let retry_after = Duration::from_millis((oldest + window).saturating_sub(now).max(1));
        return (Decision::Limited { retry_after }, arrivals);
    }
    arrivals.push(now);
    (Decision::Allowed, arrivals)
}

fn connected(js: &Context) -> bool {
    js.client().connection_state() == async_nats::connection::State::Connected
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn encode(arrivals: &[u64]) -> Bytes {
    serde_json::to_vec(arrivals)
        .expect("numbers serialize")
        .into()
}

fn decode(bytes: &[u8]) -> Vec<u64> {
    serde_json::from_slice(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        messages: 3,
        window: Duration::from_secs(10),
    };

    #[test]
    fn messages_under_the_limit_are_allowed_and_recorded() {
        let (decision, arrivals) = decide(vec![1_000, 2_000], 3_000, LIMIT);
        assert_eq!(decision, Decision::Allowed);
        assert_eq!(arrivals, [1_000, 2_000, 3_000]);
    }

    #[test]
    fn the_message_over_the_limit_is_refused_with_the_time_until_a_slot_frees() {
        let (decision, arrivals) = decide(vec![1_000, 2_000, 3_000], 4_000, LIMIT);
        assert_eq!(
            decision,
            Decision::Limited {
                retry_after: Duration::from_millis(7_000)
            }
        );
        assert_eq!(arrivals.len(), 3, "a refused message takes no slot");
    }

    #[test]
    fn arrivals_older_than_the_window_no_longer_count() {
        let (decision, arrivals) = decide(vec![1_000, 2_000, 3_000], 11_500, LIMIT);
        assert_eq!(decision, Decision::Allowed);
        assert_eq!(arrivals, [2_000, 3_000, 11_500]);
    }
}
