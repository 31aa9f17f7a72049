//! The shop over HTTP, served in-process on a free port.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

struct Server {
    base: String,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(shop::serve(listener, async move {
        let _ = stopped.await;
    }));
    Server {
        base,
        client: testkit::http_client(),
        _stop: stop,
    }
}

impl Server {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let replayed = response
            .headers()
            .get("Idempotent-Replayed")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status(), replayed, response.json().await.unwrap())
    }
}

#[tokio::test]
async fn a_cancel_works_once_and_a_replay_with_the_same_key_answers_the_same() {
    let shop = start().await;
    let post = reqwest::Method::POST;
    let (status, replayed, first) = shop
        .send(post.clone(), "/orders/ORD-1001/cancel", Some("k-1"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed, None);
    assert_eq!(first["status"], "cancelled");

    let (status, replayed, again) = shop
        .send(post.clone(), "/orders/ORD-1001/cancel", Some("k-1"))
        .await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::OK, Some("true"))
    );
    assert_eq!(again, first);

    // A new key is a new request: the order is no longer cancellable.
    let (status, _, body) = shop
        .send(post, "/orders/ORD-1001/cancel", Some("k-2"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "not_cancellable");
}

#[tokio::test]
async fn a_refund_of_a_processing_order_is_a_conflict() {
    let shop = start().await;
    let (status, _, body) = shop
        .send(reqwest::Method::POST, "/orders/ORD-1006/refund", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "not_refundable");
}

#[tokio::test]
async fn a_refund_takes_an_optional_reason() {
    let shop = start().await;
    let response = shop
        .client
        .post(format!("{}/orders/ORD-1003/refund", shop.base))
        .json(&json!({ "reason": "arrived broken" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["refund_reason"].as_str()),
        (Some("refunded"), Some("arrived broken"))
    );
}

#[tokio::test]
async fn an_unknown_order_or_product_is_not_found() {
    let shop = start().await;
    let (status, _, body) = shop
        .send(reqwest::Method::GET, "/orders/ORD-9999", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _, _) = shop
        .send(reqwest::Method::GET, "/products/PRD-9", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deleted_order_is_gone_and_a_replayed_delete_still_answers_ok() {
    let shop = start().await;
    let delete = reqwest::Method::DELETE;
    let (status, _, _) = shop
        .send(delete.clone(), "/orders/ORD-1012", Some("d-1"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, replayed, _) = shop.send(delete, "/orders/ORD-1012", Some("d-1")).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::OK, Some("true"))
    );
    let (status, _, _) = shop
        .send(reqwest::Method::GET, "/orders/ORD-1012", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn products_are_listed_with_price_and_stock() {
    let shop = start().await;
    let (status, _, body) = shop.send(reqwest::Method::GET, "/products", None).await;
    assert_eq!(status, StatusCode::OK);
    let products = body["products"].as_array().unwrap();
    assert_eq!(products.len(), 5);
    assert_eq!(
        products[0],
        json!({ "product_id": "PRD-1", "name": "Trail running shoes", "price_cents": 12900, "in_stock": true })
    );
}
