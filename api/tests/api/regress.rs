//! `POST /api/regress` and `GET /api/regress/{id}` as far as the API alone answers them (the
//! runs themselves need the workers' turn: `cli/tests/e2e/regress_rest.rs`): admins only, a
//! body checked before anything is stored, and 503 `regress_unavailable` from an instance
//! that was given no runner.

use std::time::Duration;

use api::operators::{self, Role};
use reqwest::Method;
use serde_json::{Value, json};

use crate::server::Server;

const PASSWORD: &str = "a long enough password";

async fn runs(server: &Server) -> i64 {
    sqlx::query_scalar("select count(*) from public.regress_run")
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_agent_may_not_start_or_read_a_run() {
    let server = Server::start(Duration::from_secs(1)).await;
    operators::add(
        &server.pool,
        "anna@example.com",
        "Anna",
        Role::Agent,
        PASSWORD,
    )
    .await
    .unwrap();
    let login: Value = server
        .http
        .post(format!("http://{}/api/auth/login", server.addr))
        .json(&json!({"email": "anna@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent = login["token"].as_str().unwrap();
    for (method, path, body) in [
        (Method::POST, "/regress", json!({"config": "agents: []"})),
        (
            Method::GET,
            "/regress/00000000-0000-0000-0000-000000000001",
            Value::Null,
        ),
    ] {
        let response = server
            .http
            .request(method.clone(), format!("http://{}/api{path}", server.addr))
            .bearer_auth(agent)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden", "{method} {path}");
    }
    assert_eq!(runs(&server).await, 0);
}

#[tokio::test]
async fn a_bad_request_is_refused_with_its_code_and_stores_nothing() {
    let server = Server::start(Duration::from_secs(1)).await;
    for (body, code) in [
        (String::new(), "invalid_body"),
        ("agents: []".to_owned(), "invalid_body"),
        (
            json!({"config": "a", "extra": 1}).to_string(),
            "invalid_body",
        ),
        (json!({"config": ""}).to_string(), "empty_config"),
        (
            json!({"config": "a", "name": "../x.yaml"}).to_string(),
            "invalid_name",
        ),
        (
            json!({"config": "a", "since": "7s"}).to_string(),
            "invalid_since",
        ),
        (
            json!({"config": "a", "thread_ids": ["no spaces"]}).to_string(),
            "invalid_thread_id",
        ),
        (
            json!({"config": "a", "limit": 0}).to_string(),
            "invalid_limit",
        ),
    ] {
        let (status, answer) = server.send(Method::POST, "/regress", body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    let huge = json!({"config": "x".repeat(api::regress::MAX_BODY_BYTES)}).to_string();
    let (status, answer) = server.send(Method::POST, "/regress", huge).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (413, &json!("body_too_large"))
    );
    assert_eq!(runs(&server).await, 0);
}

#[tokio::test]
async fn an_instance_without_a_runner_answers_503_and_an_unknown_run_is_404() {
    let server = Server::start(Duration::from_secs(1)).await;
    let (status, answer) = server
        .post(
            "/regress",
            Some(json!({"config": "agents: []", "since": "7d"})),
        )
        .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (503, &json!("regress_unavailable")),
        "{answer}"
    );
    assert_eq!(runs(&server).await, 0);
    for id in ["00000000-0000-0000-0000-000000000001", "not-a-uuid"] {
        let (status, answer) = server.get(&format!("/regress/{id}")).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (404, &json!("regress_not_found")),
            "{id}"
        );
    }
}

#[tokio::test]
async fn a_run_whose_instance_stopped_reads_as_interrupted() {
    let server = Server::start(Duration::from_secs(1)).await;
    let insert = |id: &'static str, silent_for: &'static str| {
        sqlx::query(
            "insert into public.regress_run (regress_run_id, config_name, selection, heartbeat_at)
             values ($1::uuid, 'new.yaml', '{\"thread_ids\":[]}', now() - $2::interval)",
        )
        .bind(id)
        .bind(silent_for)
        .execute(&server.pool)
    };
    let alive = "00000000-0000-0000-0000-00000000000a";
    let stopped = "00000000-0000-0000-0000-00000000000b";
    insert(alive, "5 seconds").await.unwrap();
    insert(stopped, "31 seconds").await.unwrap();
    let (status, run) = server.get(&format!("/regress/{alive}")).await;
    assert_eq!((status, &run["status"]), (200, &json!("running")), "{run}");
    assert!(run["error"].is_null() && run["summary"].is_null(), "{run}");
    let (status, run) = server.get(&format!("/regress/{stopped}")).await;
    assert_eq!((status, &run["status"]), (200, &json!("failed")), "{run}");
    assert_eq!(run["error"]["code"], "interrupted", "{run}");
    assert_eq!(run["config"], "new.yaml");
}
