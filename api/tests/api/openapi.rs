//! `GET /api/openapi.json` as a client fetches it.

use std::time::Duration;

use crate::server::Server;

#[tokio::test]
async fn the_openapi_document_is_served_without_a_token() {
    let server = Server::start(Duration::from_secs(2)).await;
    let (status, doc) = server.get_with("/openapi.json", None).await;
    assert_eq!(status, 200, "{doc}");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"]["/api/conversations/{thread_id}/resolve"]["post"].is_object());
    assert!(doc["paths"]["/api/analytics"]["get"].is_object());
    // Parameters state the rules the handlers apply, so a generated client (or schemathesis)
    // sends ids that get past the 400s to the handlers' own logic.
    let parameter = |path: &str, method: &str, name: &str| {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no {name}"))
            .clone()
    };
    let thread = parameter("/api/conversations/{thread_id}/replay", "get", "thread_id");
    assert_eq!(thread["schema"]["pattern"], "^[A-Za-z0-9_-]{1,64}$");
    let id = parameter("/api/dead-letters/{id}", "get", "id");
    assert_eq!(id["schema"]["minimum"], 1);
    // The operator endpoints it describes still need the token.
    let (status, body) = server.get_with("/analytics", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
}
