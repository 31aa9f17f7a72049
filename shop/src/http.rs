//! The shop's routes: each handler extracts, calls one function of [`Shop`], and maps
//! the result to JSON. POST and DELETE go through [`Shop::idempotent`], so a retried
//! call with the same `Idempotency-Key` gets the first answer (with
//! `Idempotent-Replayed: true`) instead of a second effect.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::state::{Reply, Shop};

type Shared = Arc<Mutex<Shop>>;

/// The shop's routes over fresh seeded state.
pub fn router() -> Router {
    let state: Shared = Arc::new(Mutex::new(Shop::seeded()));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/products", get(list_products))
        .route("/products/{product_id}", get(get_product))
        .route("/orders/{order_id}", get(get_order).delete(delete_order))
        .route("/orders/{order_id}/cancel", post(cancel_order))
        .route("/orders/{order_id}/refund", post(refund_order))
        .fallback(not_found)
        .with_state(state)
}

fn lock(state: &Shared) -> MutexGuard<'_, Shop> {
    // A panic while holding the lock leaves plain data behind, still consistent enough
    // for a demo: keep serving.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn json_reply(reply: Reply, replayed: bool) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(reply.body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("Idempotent-Replayed", HeaderValue::from_static("true"));
    }
    response
}

fn idempotency_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .filter(|key| !key.is_empty())
}

async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({ "status": "ok" }))
}

async fn list_products(State(state): State<Shared>) -> Response {
    json_reply(Ok(lock(&state).products()).into(), false)
}

async fn get_product(State(state): State<Shared>, Path(product_id): Path<String>) -> Response {
    json_reply(lock(&state).product(&product_id).into(), false)
}

async fn get_order(State(state): State<Shared>, Path(order_id): Path<String>) -> Response {
    json_reply(lock(&state).order(&order_id).into(), false)
}

async fn cancel_order(
    State(state): State<Shared>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/orders/{order_id}/cancel");
    let (reply, replayed) = lock(&state).idempotent(
        idempotency_key(&headers),
        Method::POST.as_str(),
        &path,
        |shop| shop.cancel(&order_id).into(),
    );
    json_reply(reply, replayed)
}

async fn refund_order(
    State(state): State<Shared>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The body is optional, so it is read as bytes: axum's `Json` would refuse an empty
    // body or one without a JSON content type.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(fields)) => match fields.get("reason") {
                None | Some(Value::Null) => None,
                Some(Value::String(reason)) => Some(reason.clone()),
                Some(_) => return bad_request("`reason` must be a string"),
            },
            _ => return bad_request("the body must be a JSON object"),
        }
    };
    let path = format!("/orders/{order_id}/refund");
    let (reply, replayed) = lock(&state).idempotent(
        idempotency_key(&headers),
        Method::POST.as_str(),
        &path,
        |shop| shop.refund(&order_id, reason).into(),
    );
    json_reply(reply, replayed)
}

async fn delete_order(
    State(state): State<Shared>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/orders/{order_id}");
    let (reply, replayed) = lock(&state).idempotent(
        idempotency_key(&headers),
        Method::DELETE.as_str(),
        &path,
        |shop| shop.delete(&order_id).into(),
    );
    json_reply(reply, replayed)
}

fn bad_request(message: &str) -> Response {
    let body = json!({ "error": { "code": "bad_request", "message": message } });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    let body = json!({ "error": { "code": "not_found", "message": "no such route" } });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
