//! OpenAPI imports through the real router over real PostgreSQL: 202 then `ready` with
//! classified operations, reviews with named errors, refusals that store only the failed job.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::server::Server;

const SHOP: &str = include_str!("../../../fixtures/shop-openapi.yaml");
const VENDOR: &str = include_str!("../../../fixtures/openapi/vendor-missing-ref-3.0.yaml");

/// Posts `body` and polls the job until it is no longer pending.
async fn import(server: &Server, body: String) -> Value {
    let (status, accepted) = server.send(Method::POST, "/openapi/imports", body).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "pending");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, job) = server.get(&format!("/openapi/imports/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if job["status"] != "pending" {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "still pending: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn operation<'a>(job: &'a Value, id: &str) -> &'a Value {
    job["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation_id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {job}"))
}

#[tokio::test]
async fn the_shop_document_imports_classified_and_its_review_is_stored() {
    let server = Server::start(Duration::from_secs(1)).await;
    let job = import(&server, SHOP.to_owned()).await;
    assert_eq!(job["status"], "ready", "{job}");
    assert_eq!(job["version"], "3.0.3");
    // Times are RFC 3339 strings, as the OpenAPI document says (not arrays of numbers).
    for time in ["created_at", "finished_at"] {
        let text = job[time]
            .as_str()
            .unwrap_or_else(|| panic!("{time}: {job}"));
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{time} {text:?}: {e}"));
    }
    let refund = operation(&job, "refundOrder");
    assert_eq!(refund["class"], "write");
    assert_eq!(refund["suggested_agent"], "billing");
    assert!(refund["reasons"][0].as_str().unwrap().contains("/refund"));
    let delete = operation(&job, "deleteOrder");
    assert_eq!(delete["class"], "destructive");
    assert_eq!(
        delete["enabled"], false,
        "destructive operations start disabled"
    );
    assert_eq!(operation(&job, "getOrder")["enabled"], true);

    let id = job["id"].as_str().unwrap();
    let path = format!("/openapi/imports/{id}/operations/refundOrder");
    let (status, edited) = server
        .send(
            Method::PATCH,
            &path,
            json!({"class": "destructive", "agent": "orders", "enabled": false}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    let refund = operation(&edited, "refundOrder");
    assert_eq!(
        (refund["class"].as_str(), refund["suggested_class"].as_str()),
        (Some("destructive"), Some("write"))
    );
    assert_eq!(refund["agent"], "orders");
    assert_eq!(refund["enabled"], false);
    let (_, again) = server.get(&format!("/openapi/imports/{id}")).await;
    assert_eq!(operation(&again, "refundOrder")["agent"], "orders");
    let (status, cleared) = server
        .send(Method::PATCH, &path, r#"{"agent": null}"#.into())
        .await;
    assert_eq!(status, 200);
    assert_eq!(operation(&cleared, "refundOrder")["agent"], Value::Null);

    for (body, status, code) in [
        (r#"{"class": "harmless"}"#, 400, "unknown_class"),
        (r#"{"agent": "nobody"}"#, 400, "unknown_agent"),
        (r#"{"colour": "red"}"#, 400, "invalid_body"),
        ("{}", 400, "invalid_body"),
    ] {
        let (got, answer) = server.send(Method::PATCH, &path, body.into()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (got, answer) = server
        .send(
            Method::PATCH,
            &format!("/openapi/imports/{id}/operations/nope"),
            r#"{"enabled": true}"#.into(),
        )
        .await;
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (404, Some("operation_not_found"))
    );
    let (got, answer) = server
        .get(&format!("/openapi/imports/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (404, Some("import_not_found"))
    );
}

#[tokio::test]
async fn a_refused_document_stores_only_the_failed_job_with_its_named_error() {
    let server = Server::start(Duration::from_secs(1)).await;
    let job = import(
        &server,
        "swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\n".into(),
    )
    .await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "swagger_2_not_supported");
    assert_eq!(job["operations"], json!([]));
    let id: uuid::Uuid = job["id"].as_str().unwrap().parse().unwrap();
    let stored: (Option<String>, i64) = sqlx::query_as(
        "select document, (select count(*) from public.openapi_operation where openapi_import_id = $1)
         from public.openapi_import where openapi_import_id = $1",
    )
    .bind(id)
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(stored, (None, 0));
    let path = format!("/openapi/imports/{id}/operations/x");
    let (got, answer) = server
        .send(Method::PATCH, &path, r#"{"enabled": true}"#.into())
        .await;
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (409, Some("import_not_ready"))
    );
}

#[tokio::test]
async fn an_operation_with_a_ref_to_nothing_is_listed_unusable_and_the_rest_import() {
    let server = Server::start(Duration::from_secs(1)).await;
    let job = import(&server, VENDOR.to_owned()).await;
    assert_eq!(job["status"], "ready", "{job}");
    assert_eq!(job["operations"].as_array().unwrap().len(), 4, "{job}");
    let broken = operation(&job, "createShipment");
    assert_eq!(
        (&broken["usable"], &broken["enabled"]),
        (&json!(false), &json!(false)),
        "{broken}"
    );
    assert_eq!(
        broken["unusable_reason"],
        "`#/components/schemas/DoesNotExist` does not exist (at /paths/~1shipments/post/requestBody/content/application~1json/schema)"
    );
    for id in ["listShipments", "getShipment", "getRates"] {
        let op = operation(&job, id);
        assert_eq!(
            (&op["usable"], &op["unusable_reason"], &op["enabled"]),
            (&json!(true), &Value::Null, &json!(true)),
            "{op}"
        );
    }

    // The review refuses enabling it, by name; other edits of it are fine.
    let id = job["id"].as_str().unwrap();
    let path = format!("/openapi/imports/{id}/operations/createShipment");
    let (status, answer) = server
        .send(Method::PATCH, &path, r#"{"enabled": true}"#.into())
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("operation_unusable")),
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("#/components/schemas/DoesNotExist"),
        "{answer}"
    );
    let (status, edited) = server
        .send(Method::PATCH, &path, r#"{"agent": "general"}"#.into())
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(operation(&edited, "createShipment")["enabled"], false);

    // Publish skips it even if its row says enabled (e.g. written by hand).
    for other in ["listShipments", "getRates"] {
        let path = format!("/openapi/imports/{id}/operations/{other}");
        let (status, edited) = server
            .send(Method::PATCH, &path, r#"{"enabled": false}"#.into())
            .await;
        assert_eq!(status, 200, "{edited}");
    }
    let path = format!("/openapi/imports/{id}/operations/getShipment");
    let (status, edited) = server
        .send(Method::PATCH, &path, r#"{"agent": "general"}"#.into())
        .await;
    assert_eq!(status, 200, "{edited}");
    sqlx::query(
        "update public.openapi_operation set enabled = true
           where openapi_import_id = $1 and operation_id = 'createShipment'",
    )
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .execute(&server.pool)
    .await
    .unwrap();
    let (status, published) = server
        .send(
            Method::POST,
            &format!("/openapi/imports/{id}/publish"),
            String::new(),
        )
        .await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["operations"], 1, "{published}");
}

/// How many import jobs are stored.
async fn jobs(server: &Server) -> i64 {
    sqlx::query_scalar("select count(*) from public.openapi_import")
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_with_413_and_stores_no_job() {
    let server = Server::start(Duration::from_secs(1)).await;
    let huge = format!("{SHOP}\n#{}", " ".repeat(tools::import::MAX_DOCUMENT_BYTES));
    let (status, answer) = server.send(Method::POST, "/openapi/imports", huge).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (413, Some("document_too_large")),
        "{answer}"
    );
    assert_eq!(jobs(&server).await, 0);
}

#[tokio::test]
async fn a_content_length_over_the_cap_is_answered_413_before_the_body_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(Duration::from_secs(1)).await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let declared = 100 * 1024 * 1024;
    let head = format!(
        "POST /api/openapi/imports HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: application/yaml\r\ncontent-length: {declared}\r\n\r\nopenapi: 3.0.3\n",
        server.addr,
        crate::server::TOKEN
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // Only the head and one line are sent: the answer comes without the other 100 MiB.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n{") {
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk))
            .await
            .expect("answered within 10 s without the rest of the body")
            .unwrap();
        assert!(read > 0, "closed without an answer");
        answer.extend_from_slice(&chunk[..read]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains("document_too_large"), "{answer}");
    assert_eq!(jobs(&server).await, 0);
}

#[tokio::test]
async fn an_import_without_a_body_is_a_named_400() {
    let server = Server::start(Duration::from_secs(1)).await;
    for body in ["", " \n"] {
        let (status, answer) = server
            .send(Method::POST, "/openapi/imports", body.into())
            .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("empty_body")),
            "{answer}"
        );
    }
    assert_eq!(jobs(&server).await, 0);
    let (_, document) = server.get("/openapi.json").await;
    let create = &document["paths"]["/api/openapi/imports"]["post"];
    assert_eq!(create["requestBody"]["required"], true, "{create}");
    for status in ["400", "413"] {
        assert!(create["responses"][status].is_object(), "{create}");
    }
}

#[tokio::test]
async fn a_url_import_fetches_through_the_ssrf_guard() {
    let server = Server::start(Duration::from_secs(1)).await;
    let app = axum::Router::new().route("/shop.yaml", axum::routing::get(|| async { SHOP }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let url = format!("http://127.0.0.1:{port}/shop.yaml");
    let job = import(&server, json!({ "url": url }).to_string()).await;
    assert_eq!(job["status"], "ready", "{job}");
    assert_eq!(job["url"], url);
    assert_eq!(operation(&job, "cancelOrder")["class"], "write");

    let job = import(
        &server,
        json!({ "url": "http://169.254.169.254/latest/meta-data" }).to_string(),
    )
    .await;
    assert_eq!(job["error"]["code"], "url_refused", "{job}");
    let job = import(
        &server,
        json!({ "url": format!("http://127.0.0.1:{port}/missing") }).to_string(),
    )
    .await;
    assert_eq!(job["error"]["code"], "fetch_failed", "{job}");
}

#[tokio::test]
async fn a_url_import_aimed_at_a_private_address_in_any_encoding_is_refused_before_connecting() {
    // The server allow-lists 127.0.0.1 (where tests serve documents); 127.0.0.2 is not
    // allow-listed, nor is the name `localhost`. Each tripwire counts TCP connections.
    let server = Server::start(Duration::from_secs(1)).await;
    let private = testkit::Tripwire::start("127.0.0.2".parse().unwrap()).await;
    let loopback = testkit::Tripwire::start("127.0.0.1".parse().unwrap()).await;
    let port = private.port();
    let mut urls: Vec<String> = [
        "2130706434",
        "0x7f000002",
        "0177.0.0.2",
        "127.2",
        "[::ffff:127.0.0.2]",
        "[::ffff:7f00:2]",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/openapi.yaml"))
    .collect();
    urls.push(format!("http://localhost:{}/openapi.yaml", loopback.port()));
    // A redirect from the allow-listed host to the private address.
    let target = format!("http://0x7f000002:{port}/openapi.yaml");
    let app = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { axum::response::Redirect::temporary(&target) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    urls.push(format!("http://{}/moved", listener.local_addr().unwrap()));
    tokio::spawn(async move { axum::serve(listener, app).await });

    for url in urls {
        let job = import(&server, json!({ "url": url }).to_string()).await;
        assert_eq!(job["status"], "failed", "{url}: {job}");
        assert_eq!(job["error"]["code"], "url_refused", "{url}: {job}");
    }
    assert_eq!(private.connections(), 0);
    assert_eq!(loopback.connections(), 0);
}
