//! The operator token on every route the router serves (the list is the router's own,
//! `served_routes`, so a new route cannot be left out): without it, with a wrong one, or
//! with it sent any way but `Authorization: Bearer <token>`, every operator route answers
//! 401 `unauthorized` before its handler runs, and the answer repeats neither the token
//! sent nor the right one. Health and the OpenAPI document need none.

use std::time::Duration;

use api::served_routes;
use reqwest::Method;

use crate::server::{Server, TOKEN};

/// A concrete path for a route's template (`{id}` and the like filled in).
fn concrete(path: &str) -> String {
    path.replace("{thread_id}", "t1")
        .replace("{id}", "00000000-0000-0000-0000-000000000001")
        .replace("{operation_id}", "getOrder")
}

/// A header: its name and value.
type Header = (&'static str, String);

/// Ways of not presenting the right token: what it is, the header sent (if any) and a
/// query string appended to the path.
fn wrong_credentials() -> Vec<(&'static str, Option<Header>, String)> {
    let auth = |value: String| Some(("authorization", value));
    let cut = &TOKEN[..TOKEN.len() - 1];
    vec![
        ("no header", None, String::new()),
        (
            "a wrong token",
            auth("Bearer wrong-token".into()),
            String::new(),
        ),
        (
            "the token and one more character",
            auth(format!("Bearer {TOKEN}x")),
            String::new(),
        ),
        (
            "the token without its last character",
            auth(format!("Bearer {cut}")),
            String::new(),
        ),
        (
            "the token with its last character changed",
            auth(format!("Bearer {cut}T")),
            String::new(),
        ),
        (
            "an empty bearer token",
            auth("Bearer ".into()),
            String::new(),
        ),
        (
            "a lower-case scheme",
            auth(format!("bearer {TOKEN}")),
            String::new(),
        ),
        (
            "another scheme",
            auth(format!("Basic {TOKEN}")),
            String::new(),
        ),
        ("the bare token", auth(TOKEN.into()), String::new()),
        (
            "a cookie",
            Some(("cookie", format!("token={TOKEN}"))),
            String::new(),
        ),
        (
            "a query parameter",
            None,
            format!("?token={TOKEN}&access_token={TOKEN}"),
        ),
    ]
}

#[tokio::test]
async fn every_operator_route_refuses_a_missing_or_wrong_token_and_echoes_none() {
    let server = Server::start(Duration::from_secs(1)).await;
    let routes = served_routes();
    assert!(
        routes.iter().filter(|r| r.operator).count() >= 10,
        "{routes:?}"
    );
    for route in routes.iter().filter(|r| r.operator) {
        let method = Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
        let url = format!("http://{}{}", server.addr, concrete(&route.path));
        for (how, header, query) in wrong_credentials() {
            let mut request = server.http.request(method.clone(), format!("{url}{query}"));
            if let Some((name, value)) = header {
                request = request.header(name, value);
            }
            let response = request.body("{}").send().await.unwrap();
            let status = response.status().as_u16();
            let challenge = response.headers().get("www-authenticate").cloned();
            let body = response.text().await.unwrap();
            let what = format!("{} {} with {how}", route.method, route.path);
            assert_eq!(status, 401, "{what}: {body}");
            assert_eq!(
                challenge.as_ref().map(|v| v.to_str().unwrap()),
                Some("Bearer"),
                "{what}"
            );
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"]["code"], "unauthorized", "{what}: {body}");
            assert!(
                !body.contains(TOKEN) && !body.contains("wrong-token"),
                "{what}: {body}"
            );
        }
        // The right token gets past the check (whatever the handler then says).
        let response = server
            .http
            .request(method.clone(), &url)
            .bearer_auth(TOKEN)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status().as_u16(),
            401,
            "{} {}",
            route.method,
            route.path
        );
    }
    for route in routes.iter().filter(|r| !r.operator) {
        let url = format!("http://{}{}", server.addr, concrete(&route.path));
        let method = Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
        let response = server
            .http
            .request(method.clone(), &url)
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if method == Method::GET {
            assert_eq!(
                status, 200,
                "{} {} needs no token",
                route.method, route.path
            );
        } else {
            // The sign-in: no token needed, so the handler answers (here: the empty
            // object is not a sign-in).
            assert_eq!(
                status, 400,
                "{} {} needs no token",
                route.method, route.path
            );
        }
    }
}
