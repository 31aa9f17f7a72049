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
    // The operator endpoints it describes still need the token.
    let (status, body) = server.get_with("/analytics", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
}
