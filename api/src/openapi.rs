//! `GET /api/openapi.json`: the OpenAPI document of this REST API, generated from the
//! handlers' `#[utoipa::path]` annotations and the answer types' `ToSchema` derives, so it
//! changes with the code. A test checks it lists exactly the routes [`super::router`]
//! serves, with the bearer scheme on the operator ones.

use std::sync::LazyLock;

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    Routes, analytics, auth, conversations, dead_letters, desk, erasure, error, health, imports,
    operators, regress,
};
use projections::read_models;

/// Name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "smart-support REST API",
        description = "Read models of the chat pipeline (conversations, replay, analytics) and \
                       operator actions (sign-in, the desk, resolve, dead letters). Everything under \
                       `/api` but health, this document and the sign-in requires credentials: \
                       `Authorization: Bearer <token>` (an operator's session or the API token) \
                       or the session cookie the sign-in sets. Errors are `{\"error\":{\"code\":…,\"message\":…}}`."
    ),
    paths(
        health::health,
        document,
        conversations::list,
        conversations::show,
        conversations::replay,
        conversations::resolve,
        erasure::erase,
        analytics::report,
        dead_letters::list,
        dead_letters::show,
        dead_letters::discard,
        dead_letters::redrive,
        dead_letters::redrive_matching,
        imports::create,
        imports::show,
        imports::edit,
        imports::publish,
        regress::create,
        regress::show,
        auth::login,
        auth::logout,
        auth::me,
        auth::list_operators,
        auth::add_operator,
        auth::patch_operator,
        desk::inbox,
        desk::events,
        desk::assign,
        desk::reply,
        desk::note,
        desk::release,
    ),
    components(schemas(
        error::ErrorBody,
        error::ErrorDetail,
        read_models::conversation::Summary,
        read_models::turn::Row,
        read_models::analytics::Report,
        erasure::ErasedAnswer,
        imports::Accepted,
        imports::ImportView,
        imports::OperationView,
        imports::OperationEdit,
        imports::Published,
        regress::RegressRequest,
        regress::Accepted,
        regress::RunView,
        operators::Operator,
        operators::Role,
        auth::LoginRequest,
        auth::LoginAnswer,
        auth::Me,
        auth::OperatorList,
        auth::NewOperator,
        auth::OperatorPatch,
        desk::Inbox,
        desk::Stored,
        desk::AssignRequest,
        desk::ReplyRequest,
        desk::NoteRequest,
        read_models::handoff::InboxItem,
        read_models::handoff::Assignee,
        read_models::handoff::Counts,
        read_models::desk::DeskSummary,
        read_models::desk::OperatorSummary,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "The service and its dependencies"),
        (name = "conversations", description = "Conversations as the projector folded them, resolving one, and (admin) erasing one"),
        (name = "analytics", description = "Counters per hour and agent, summed over a window"),
        (name = "dead-letters", description = "User messages the workers gave up on (read from JetStream)"),
        (name = "openapi-imports", description = "OpenAPI documents imported for review: operations classified read, write or destructive"),
        (name = "regress", description = "A changed agents config tried on the recorded turns (admin): what it would answer differently"),
        (name = "openapi", description = "This document"),
        (name = "auth", description = "Operators: sign-in, sessions, and (admin) managing operators"),
        (name = "desk", description = "The desk: the inbox, taking a conversation over, replies, notes, the live feed"),
    ),
)]
pub struct ApiDoc;

/// Adds the `bearer` HTTP security scheme the operator endpoints name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The API_TOKEN the service was started with"))
                    .build(),
            ),
        );
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

pub fn routes() -> Routes {
    Routes::new().get("/openapi.json", document)
}

/// The OpenAPI document of this REST API (no token needed).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "openapi",
    responses((status = 200, description = "An OpenAPI 3 document", content_type = "application/json")),
)]
pub async fn document() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&*DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::{Route, served_routes};

    fn spec() -> Value {
        serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap()
    }

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    #[test]
    fn the_document_is_openapi_3() {
        let doc = spec();
        let version = doc["openapi"].as_str().unwrap();
        assert!(version.starts_with("3."), "{version}");
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn every_route_the_router_serves_is_in_the_document_and_nothing_else() {
        let doc = spec();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| (m.to_string(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = served_routes()
            .into_iter()
            .map(|Route { method, path, .. }| (method.to_owned(), path))
            .collect();
        assert_eq!(documented, served);
        assert!(served.len() >= 12, "{served:?}");
    }

    #[test]
    fn operator_routes_name_the_bearer_scheme_and_public_ones_do_not() {
        let doc = spec();
        for route in served_routes() {
            let operation = &doc["paths"][&route.path][route.method];
            let security = operation["security"].as_array();
            let bearer =
                security.is_some_and(|schemes| schemes.iter().any(|s| s.get(BEARER).is_some()));
            assert_eq!(bearer, route.operator, "{route:?}: {operation}");
        }
    }

    #[test]
    fn every_operation_documents_its_error_body() {
        let doc = spec();
        for route in served_routes() {
            let responses = &doc["paths"][&route.path][route.method]["responses"];
            for (status, response) in responses.as_object().unwrap() {
                let error = status.starts_with('4') || status.starts_with('5');
                if error && route.path != "/api/health" {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{} {} {status}",
                        route.method, route.path
                    );
                }
            }
        }
    }

    #[test]
    fn path_parameters_are_documented() {
        let doc = spec();
        for route in served_routes() {
            let declared: BTreeSet<String> = route
                .path
                .split('/')
                .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_owned)
                .collect();
            let documented: BTreeSet<String> =
                doc["paths"][&route.path][route.method]["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect();
            assert_eq!(declared, documented, "{route:?}");
        }
    }

    #[test]
    fn the_dead_letter_schema_has_the_fields_of_a_dead_letter() {
        let letter = common::dead_letters::DeadLetter {
            id: 1,
            thread_id: None,
            source_subject: "chat.t.user".into(),
            source_seq: 2,
            category: common::events::ErrorCategory::Fatal,
            error: "e".into(),
            attempts: 1,
            failed_at: time::OffsetDateTime::UNIX_EPOCH,
            original: Value::Null,
            headers: Default::default(),
        };
        let json = serde_json::to_value(&letter).unwrap();
        let fields: BTreeSet<&String> = json.as_object().unwrap().keys().collect();
        let doc = spec();
        let properties: BTreeSet<&String> =
            doc["components"]["schemas"]["DeadLetter"]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .collect();
        assert_eq!(fields, properties);
    }

    /// Every character, as the document's pattern (read as a client's regex engine reads it)
    /// and as the server judge a text holding it, gets the same answer: what the document
    /// allows is accepted and what it forbids refused (schemathesis found an email the
    /// pattern allowed refused with `invalid_email`).
    #[test]
    fn the_text_patterns_say_what_the_server_checks_for_every_character() {
        let doc = spec();
        let pattern = |schema: &str, field: &str| {
            let text = doc["components"]["schemas"][schema]["properties"][field]["pattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{schema}.{field} has no pattern"));
            regex::Regex::new(text).unwrap()
        };
        let email = pattern("NewOperator", "email");
        let name = pattern("NewOperator", "name");
        let reply = pattern("ReplyRequest", "text");
        let note = pattern("NoteRequest", "text");
        let samples = (0..0x3100u32)
            .chain([0xfeff, 0x1f600, 0x10ffff])
            .filter_map(char::from_u32);
        for c in samples {
            for text in [
                format!("a{c}b@c.d"),
                format!("ab@c{c}.d"),
                format!("{c}@c.d"),
            ] {
                assert_eq!(
                    email.is_match(&text),
                    crate::operators::normal_email(&text).is_ok(),
                    "email {text:?} (U+{:04X})",
                    c as u32
                );
            }
            for text in [c.to_string(), format!("{c}a{c}")] {
                let server = common::text::check_content(&text).is_ok();
                assert_eq!(
                    reply.is_match(&text),
                    server,
                    "text {text:?} (U+{:04X})",
                    c as u32
                );
                assert_eq!(note.is_match(&text), server, "text {text:?}");
                let name_ok = crate::operators::display_name(&text).is_ok();
                assert_eq!(name.is_match(&text), name_ok, "name {text:?}");
            }
        }
    }
}
