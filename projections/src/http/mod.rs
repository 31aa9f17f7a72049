//! The REST API under `/api`: one module per resource, each with its routes, and one
//! error type ([`error::ApiError`]) that maps to status codes and `{"error":{…}}` bodies.

pub mod auth;
pub mod conversations;
pub mod dead_letters;
pub mod error;
pub mod health;

use std::sync::Arc;

use async_nats::jetstream::stream::Stream;
use axum::{Router, middleware};
use sqlx::PgPool;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub pool: PgPool,
    pub client: async_nats::Client,
    pub stream: Stream,
    pub api_token: Option<Arc<str>>,
}

/// Every `/api` route (nested, so unknown `/api/…` paths get a JSON 404). Operator routes require the bearer token when one is set.
pub fn router(state: ApiState) -> Router {
    let operator = conversations::routes()
        .merge(dead_letters::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let api = Router::new()
        .merge(health::routes())
        .merge(operator)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    Router::new().nest("/api", api).with_state(state)
}
