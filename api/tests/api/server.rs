//! The REST API on a bound port over a real PostgreSQL (and a real NATS, which the state
//! needs), with events applied straight through `apply_batch`: the read endpoints' answers
//! for a stream the test writes itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::{ApiState, router};
use common::events::{Envelope, Payload, ThreadId, TurnId};
use projections::projector::{Delivered, apply_batch};
use serde_json::Value;
use testkit::{NatsServer, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

pub const TOKEN: &str = "operator-secret";

pub struct Server {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub pool: sqlx::PgPool,
    pub nats: NatsServer,
    pub js: async_nats::jetstream::Context,
    _postgres: Postgres,
}

impl Server {
    /// Starts the API; a read with `min_seq` waits at most `projection_wait`.
    pub async fn start(projection_wait: Duration) -> Server {
        let super::Infra {
            nats,
            postgres,
            pool,
            client,
            js,
            stream,
            ..
        } = super::infra().await;
        let state = ApiState {
            pool: pool.clone(),
            client,
            stream,
            api_token: Some(Arc::new(TOKEN.into())),
            projection_wait,
            imports: Arc::new(import_settings()),
            throttle: std::sync::Arc::default(),
            session_lifetime: std::time::Duration::from_secs(3600),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Server {
            addr,
            http: testkit::http_client(),
            pool,
            nats,
            js,
            _postgres: postgres,
        }
    }

    /// GET `/api{path}` with the token: the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_with(path, Some(TOKEN)).await
    }

    pub async fn get_with(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("http://{}/api{path}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// `method` `/api{path}` with the token and a raw body: the status and the JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: String) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("http://{}/api{path}", self.addr))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// POST `/api{path}` with the token and `body` (none: an empty body).
    pub async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("http://{}/api{path}", self.addr))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// Stores `events` in the chat stream (as the services would, before any projection of
    /// them); returns their stream sequences. [`Server::apply`] projects them.
    pub async fn store(&self, events: &[Envelope]) -> Vec<u64> {
        let mut seqs = Vec::with_capacity(events.len());
        for event in events {
            let ack = self
                .js
                .publish(event.subject(), event.to_json().into())
                .await
                .unwrap();
            seqs.push(ack.await.unwrap().sequence);
        }
        seqs
    }

    /// Applies `events` as one batch, numbered from `first_seq`, with the checkpoint at
    /// `first_seq - 1`; returns the last sequence.
    pub async fn apply(&self, first_seq: u64, events: &[Envelope]) -> u64 {
        let batch: Vec<Delivered> = events
            .iter()
            .enumerate()
            .map(|(i, event)| Delivered {
                seq: first_seq + i as u64,
                event: Envelope::from_json(&event.to_json()),
            })
            .collect();
        apply_batch(&self.pool, first_seq - 1, &batch)
            .await
            .unwrap()
    }
}

/// The demo's agents; imports may fetch from loopback (where the tests serve documents).
fn import_settings() -> api::imports::ImportSettings {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/agents.yaml");
    let config = tools::agents_config::AgentsConfig::load(&path).unwrap();
    api::imports::ImportSettings {
        agents: tools::import::AgentHint::from_config(&config),
        allow_hosts: vec!["127.0.0.1".into()],
    }
}

/// One event of `thread`'s turn `turn` at `at`.
pub fn event(
    thread: &ThreadId,
    turn: TurnId,
    at: OffsetDateTime,
    payload: impl Into<Payload>,
) -> Envelope {
    Envelope::new(Uuid::new_v4(), thread.clone(), turn, at, payload)
}
