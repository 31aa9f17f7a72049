//! The import on the shipped fixtures (`fixtures/openapi/`, the demo shop), and every
//! limit and refusal with its named error.

mod properties;

use std::path::Path;

use common::events::Permission;
use serde_json::json;

use super::*;
use crate::agents_config::AgentsConfig;

const SHOP: &str = include_str!("../../../fixtures/shop-openapi.yaml");
const PETSTORE: &str = include_str!("../../../fixtures/openapi/petstore-3.0.yaml");
const BILLING: &str = include_str!("../../../fixtures/openapi/billing-3.1.yaml");
const WEBHOOKS: &str = include_str!("../../../fixtures/openapi/webhooks-only-3.1.yaml");
const DESK: &str = include_str!("../../../fixtures/openapi/desk-refs-3.0.json");
const VENDOR: &str = include_str!("../../../fixtures/openapi/vendor-missing-ref-3.0.yaml");

fn agents() -> Vec<AgentHint> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/agents.yaml");
    AgentHint::from_config(&AgentsConfig::load(&path).unwrap())
}

fn ok(text: &str) -> Imported {
    import(text, &agents()).unwrap_or_else(|e| panic!("{}: {e}", e.code()))
}

fn code(text: &str) -> &'static str {
    match import(text, &agents()) {
        Ok(imported) => panic!("imported: {imported:?}"),
        Err(e) => e.code(),
    }
}

fn op<'a>(imported: &'a Imported, id: &str) -> &'a ImportedOperation {
    imported
        .operations
        .iter()
        .find(|o| o.operation_id == id)
        .unwrap_or_else(|| panic!("no operation {id}"))
}

#[track_caller]
fn class(imported: &Imported, id: &str, expected: Permission, reason: &str) {
    let op = op(imported, id);
    assert_eq!(op.class, expected, "{id}: {:?}", op.reasons);
    assert!(
        op.reasons.iter().any(|r| r.contains(reason)),
        "{id}: {:?} lacks {reason:?}",
        op.reasons
    );
}

/// A 3.0 document with `n` operations: list, get, create, cancel and delete per resource.
pub fn many_operations(n: usize) -> String {
    let mut paths = String::new();
    for i in 0..n.div_ceil(5) {
        paths.push_str(&format!(
            "  /resources{i}:\n    get: {{ operationId: list{i}, responses: {{ '200': {{ description: ok }} }} }}\n    post: {{ operationId: create{i}, responses: {{ '201': {{ description: ok }} }} }}\n  /resources{i}/{{id}}:\n    parameters: [{{ name: id, in: path, required: true, schema: {{ $ref: '#/components/schemas/Id' }} }}]\n    get: {{ operationId: get{i}, responses: {{ '200': {{ description: ok }} }} }}\n    delete: {{ operationId: delete{i}, responses: {{ '204': {{ description: ok }} }} }}\n  /resources{i}/{{id}}/cancel:\n    post: {{ operationId: cancel{i}, parameters: [{{ name: id, in: path, required: true, schema: {{ type: string }} }}], responses: {{ '200': {{ description: ok }} }} }}\n"
        ));
    }
    format!(
        "openapi: 3.0.3\ninfo: {{ title: many, version: '1' }}\nservers: [{{ url: 'https://many.example' }}]\npaths:\n{paths}components:\n  schemas:\n    Id: {{ type: string }}\n"
    )
}

#[test]
fn the_demo_shop_is_classified_like_its_hand_written_agents_config() {
    let shop = ok(SHOP);
    assert_eq!(shop.version, "3.0.3");
    class(&shop, "getOrder", Permission::Read, "GET only reads");
    class(&shop, "listProducts", Permission::Read, "GET only reads");
    class(
        &shop,
        "cancelOrder",
        Permission::Write,
        "path ends in /cancel",
    );
    class(
        &shop,
        "refundOrder",
        Permission::Write,
        "path ends in /refund",
    );
    class(
        &shop,
        "deleteOrder",
        Permission::Destructive,
        "DELETE removes data",
    );
    assert_eq!(
        op(&shop, "refundOrder").suggested_agent.as_deref(),
        Some("billing")
    );
    assert_eq!(
        op(&shop, "cancelOrder").suggested_agent.as_deref(),
        Some("orders")
    );
    assert_eq!(
        op(&shop, "getOrder").suggested_agent.as_deref(),
        Some("orders")
    );
    assert_eq!(
        op(&shop, "listProducts").suggested_agent.as_deref(),
        Some("general")
    );
    let refund = op(&shop, "refundOrder");
    assert_eq!(refund.servers, ["http://127.0.0.1:8090"]);
    assert!(
        refund
            .parameters
            .iter()
            .any(|p| p.name == "order_id" && p.location == "path" && p.required)
    );
    assert!(refund.agent_reason.as_deref().unwrap().contains("refund"));
}

#[test]
fn the_petstore_operations_get_their_classes_servers_and_a_generated_id() {
    let pets = ok(PETSTORE);
    assert_eq!(pets.operations.len(), 8);
    class(&pets, "listPets", Permission::Read, "GET only reads");
    class(
        &pets,
        "createPet",
        Permission::Write,
        "POST creates or changes data",
    );
    class(&pets, "updatePet", Permission::Write, "PUT replaces data");
    class(
        &pets,
        "deletePet",
        Permission::Destructive,
        "DELETE removes data",
    );
    class(&pets, "placeOrder", Permission::Write, "POST");
    let inventory = op(&pets, "get_store_inventory");
    assert!(inventory.generated_id);
    assert_eq!(inventory.class, Permission::Read);
    assert_eq!(inventory.servers, ["https://eu.petstore.example/v1"]);
    // The path-level parameter is merged into every operation of the path.
    assert_eq!(op(&pets, "deletePet").parameters[0].name, "petId");
    // `placeOrder` on /store/orders is the orders agent's by its path word.
    assert_eq!(
        op(&pets, "placeOrder").suggested_agent.as_deref(),
        Some("orders")
    );
    assert_eq!(op(&pets, "listPets").suggested_agent, None);
    let body = op(&pets, "createPet").request_body.as_ref().unwrap();
    assert!(body.required);
    assert_eq!(body.schema["required"], json!(["name"]));
}

#[test]
fn an_openapi_3_1_document_keeps_type_arrays_and_notes_its_webhooks() {
    let billing = ok(BILLING);
    assert_eq!(billing.version, "3.1.0");
    class(&billing, "listInvoices", Permission::Read, "GET only reads");
    class(
        &billing,
        "voidInvoice",
        Permission::Write,
        "path ends in /void",
    );
    class(
        &billing,
        "refundPayment",
        Permission::Write,
        "path ends in /refund",
    );
    class(
        &billing,
        "updateCustomer",
        Permission::Write,
        "PATCH changes data",
    );
    class(
        &billing,
        "searchEverything",
        Permission::Read,
        "sends a query",
    );
    assert_eq!(
        op(&billing, "listInvoices").parameters[0].schema,
        json!({"type": ["string", "null"]})
    );
    let refund = op(&billing, "refundPayment");
    assert_eq!(refund.suggested_agent.as_deref(), Some("billing"));
    let body = refund.request_body.as_ref().unwrap();
    assert_eq!(body.schema["description"], "How much to give back");
    assert_eq!(
        body.schema["properties"]["reason"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(
        op(&billing, "updateCustomer")
            .request_body
            .as_ref()
            .unwrap()
            .content_type,
        "application/merge-patch+json"
    );
    assert!(
        billing.notes.iter().any(|n| n.contains("1 webhooks")),
        "{:?}",
        billing.notes
    );
}

#[test]
fn a_webhooks_only_document_imports_with_zero_operations_and_a_note() {
    let events = ok(WEBHOOKS);
    assert!(events.operations.is_empty());
    assert!(
        events.notes[0].contains("only webhooks"),
        "{:?}",
        events.notes
    );
}

#[test]
fn heavy_refs_and_all_of_are_inlined_and_a_recursive_schema_stops_at_itself() {
    let desk = ok(DESK);
    class(
        &desk,
        "deleteTicket",
        Permission::Destructive,
        "DELETE removes data",
    );
    class(
        &desk,
        "purgeUserData",
        Permission::Destructive,
        "path ends in /purge",
    );
    class(
        &desk,
        "closeTicket",
        Permission::Write,
        "path ends in /close",
    );
    class(&desk, "getTicket", Permission::Read, "GET only reads");
    let list = op(&desk, "listTickets");
    assert_eq!(list.parameters[1].name, "page_size");
    assert_eq!(
        list.parameters[1].schema,
        json!({"allOf": [{"type": "integer", "minimum": 1}, {"maximum": 200}]})
    );
    let create = op(&desk, "createTicket").request_body.as_ref().unwrap();
    assert_eq!(
        create.schema["properties"]["requester"]["allOf"][0]["allOf"][0]["properties"]["created_at"]
            ["format"],
        "date-time"
    );
    let categories = &op(&desk, "replaceCategories")
        .request_body
        .as_ref()
        .unwrap()
        .schema;
    assert_eq!(
        categories["properties"]["children"]["items"]["$ref"],
        "#/components/schemas/Category"
    );
    // The path item reached through `$ref` carries its own parameters.
    assert_eq!(op(&desk, "closeTicket").parameters[0].name, "ticket_id");
    assert!(
        !serde_json::to_string(&create.schema)
            .unwrap()
            .contains("$ref")
    );
}

#[test]
fn two_hundred_operations_import_and_classify() {
    let many = ok(&many_operations(200));
    assert_eq!(many.operations.len(), 200);
    class(&many, "list7", Permission::Read, "GET only reads");
    class(&many, "cancel39", Permission::Write, "path ends in /cancel");
    class(
        &many,
        "delete0",
        Permission::Destructive,
        "DELETE removes data",
    );
}

#[test]
fn more_operations_than_the_cap_are_refused() {
    assert_eq!(
        code(&many_operations(MAX_OPERATIONS + 5)),
        "too_many_operations"
    );
}

#[test]
fn a_document_over_the_size_cap_is_refused() {
    let text = format!("{}\n#{}", SHOP, " ".repeat(MAX_DOCUMENT_BYTES));
    assert_eq!(code(&text), "document_too_large");
}

#[test]
fn swagger_2_is_refused_by_name() {
    assert_eq!(
        code("swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}"),
        "swagger_2_not_supported"
    );
}

#[test]
fn other_versions_are_refused_by_name() {
    assert_eq!(
        code("openapi: 4.0.0\ninfo: {title: t, version: '1'}\npaths: {}"),
        "unsupported_version"
    );
}

#[test]
fn invalid_syntax_is_refused_with_its_line() {
    let err = import("{\n  \"openapi\": \"3.0.0\",\n  oops\n}", &[]).unwrap_err();
    assert_eq!(err.code(), "invalid_document");
    assert!(err.to_string().contains("line 3"), "{err}");
    let err = import("openapi: 3.0.0\ninfo: [\n", &[]).unwrap_err();
    assert_eq!(err.code(), "invalid_document");
    assert!(err.to_string().contains("line"), "{err}");
}

#[test]
fn a_nul_character_in_any_string_is_refused_as_invalid() {
    for text in [
        // JSON's escape, in a value and in a key; YAML's escape; a raw NUL.
        r#"{"openapi":"3.0.0","info":{"title":"a\u0000b","version":"1"},"paths":{}}"#,
        r#"{"openapi":"3.0.0","info":{"title":"t","version":"1"},"paths":{"/a\u0000":{}}}"#,
        "openapi: 3.0.0\ninfo: {title: \"a\\0b\", version: '1'}\npaths: {}\n",
        "openapi: 3.0.0\ninfo: {title: a\0b, version: '1'}\npaths: {}\n",
    ] {
        let err = import(text, &[]).unwrap_err();
        assert_eq!(err.code(), "invalid_document", "{text:?}");
        assert!(!err.to_string().contains('\0'), "{err}");
    }
}

#[test]
fn an_invalid_operation_is_refused_with_its_json_pointer() {
    let text = BILLING.replace(
        "- { name: invoice_id, in: path",
        "- { nom: invoice_id, in: path",
    );
    let err = import(&text, &[]).unwrap_err();
    assert_eq!(err.code(), "invalid_document");
    assert!(
        err.to_string()
            .contains("/paths/~1invoices~1{invoice_id}~1void/post/parameters/0"),
        "{err}"
    );
}

#[test]
fn a_yaml_alias_bomb_is_refused_while_it_expands() {
    let mut text = String::from(
        "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\nx-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut previous = 'a';
    for name in 'b'..='i' {
        text.push_str(&format!(
            "x-{name}: &{name} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"
        ));
        previous = name;
    }
    let started = std::time::Instant::now();
    assert_eq!(code(&text), "yaml_alias_bomb");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_few_yaml_aliases_are_fine() {
    let text = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get: &op { responses: { '200': { description: ok } } }\n  /b:\n    get: *op\n";
    assert_eq!(ok(text).operations.len(), 2);
}

#[test]
fn external_refs_are_refused() {
    let text = PETSTORE.replace(
        "\"#/components/schemas/NewPet\" }\n      responses:\n        \"201\"",
        "\"https://evil.example/pet.json\" }\n      responses:\n        \"201\"",
    );
    assert_eq!(code(&text), "external_ref_not_supported");
    let text = PETSTORE.replace("#/components/schemas/Order", "common.yaml#/Order");
    assert_eq!(code(&text), "external_ref_not_supported");
}

#[test]
fn a_ref_to_nothing_in_one_operation_marks_that_operation_unusable_and_imports_the_rest() {
    let imported = ok(VENDOR);
    let ids: Vec<&str> = imported
        .operations
        .iter()
        .map(|o| o.operation_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["listShipments", "createShipment", "getShipment", "getRates"]
    );
    let broken = op(&imported, "createShipment");
    assert!(!broken.is_usable());
    assert_eq!(
        broken.unusable.as_deref(),
        Some(
            "`#/components/schemas/DoesNotExist` does not exist (at /paths/~1shipments/post/requestBody/content/application~1json/schema)"
        )
    );
    assert_eq!(broken.request_body, None);
    // Still classified, so the reviewer sees what it would have been.
    assert_eq!(broken.class, Permission::Write);
    for id in ["listShipments", "getShipment", "getRates"] {
        assert!(op(&imported, id).is_usable(), "{id}");
    }
    // The bad `$ref`s of a response and of an unused component are never read.
    assert_eq!(
        op(&imported, "getRates").parameters[0].schema["pattern"],
        json!("^[A-Z]{2}$")
    );
    assert!(imported.notes.is_empty(), "{:?}", imported.notes);
}

#[test]
fn the_petstore_with_a_ref_to_nothing_keeps_its_other_operations() {
    let text = PETSTORE.replace("#/components/schemas/Order", "#/components/schemas/Nope");
    let imported = ok(&text);
    let broken: Vec<_> = imported
        .operations
        .iter()
        .filter(|o| !o.is_usable())
        .collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    let reason = broken[0].unusable.as_deref().unwrap();
    assert!(
        reason.starts_with("`#/components/schemas/Nope` does not exist (at /paths/")
            && reason.contains("/requestBody/"),
        "{reason}"
    );
    assert!(
        imported.operations.len() > 1 && broken[0].parameters.is_empty(),
        "{imported:?}"
    );
}

#[test]
fn a_shared_parameter_ref_to_nothing_marks_every_operation_of_its_path() {
    let text = PETSTORE.replacen(
        "    parameters:\n      - name: petId\n        in: path\n        required: true\n        schema: { type: string }",
        "    parameters:\n      - $ref: \"#/components/parameters/Gone\"",
        1,
    );
    assert_ne!(text, PETSTORE);
    let imported = ok(&text);
    let broken: Vec<_> = imported
        .operations
        .iter()
        .filter(|o| !o.is_usable())
        .map(|o| o.path.as_str())
        .collect();
    assert!(!broken.is_empty());
    assert!(
        broken.iter().all(|path| *path == "/pets/{petId}"),
        "{broken:?}"
    );
    assert!(imported.operations.iter().any(|o| o.is_usable()));
}

#[test]
fn a_path_item_ref_to_nothing_leaves_that_path_out_with_a_note() {
    let text = one_query_parameter_of("S", "    S: { type: string }\n").replace(
        "paths:\n",
        "paths:\n  /gone: { $ref: '#/components/pathItems/Gone' }\n",
    );
    let imported = ok(&text);
    assert_eq!(imported.operations.len(), 1);
    assert_eq!(
        imported.notes,
        ["/gone: not imported: `#/components/pathItems/Gone` does not exist (at /paths/~1gone)"]
    );
}

#[test]
fn limits_inside_one_operation_still_refuse_the_whole_document() {
    // Attacks, not vendor mistakes: the cycle, depth and fan-out tests below, and this.
    let text = PETSTORE.replace("#/components/schemas/Order", "https://evil.example/o.json");
    assert_eq!(code(&text), "external_ref_not_supported");
}

#[test]
fn a_ref_cycle_without_structure_is_refused() {
    let text = PETSTORE.replace(
        "    Order:\n",
        "    Loop1: { $ref: \"#/components/schemas/Loop2\" }\n    Loop2: { $ref: \"#/components/schemas/Loop1\" }\n    Order:\n",
    ).replace("#/components/schemas/Order\" }", "#/components/schemas/Loop1\" }");
    assert_eq!(code(&text), "ref_cycle");
}

/// A document with one operation whose query parameter's schema is `schema`, among `schemas`
/// (lines of `components.schemas`).
fn one_query_parameter_of(schema: &str, schemas: &str) -> String {
    format!(
        "openapi: 3.0.0\ninfo: {{ title: t, version: '1' }}\npaths:\n  /x:\n    get:\n      parameters: [{{ name: q, in: query, schema: {{ $ref: '#/components/schemas/{schema}' }} }}]\n      responses: {{ '200': {{ description: ok }} }}\ncomponents:\n  schemas:\n{schemas}"
    )
}

#[test]
fn a_ref_chain_deeper_than_the_limit_is_refused() {
    let mut schemas = String::from("    S0: { type: string }\n");
    for i in 1..=MAX_REF_DEPTH + 2 {
        schemas.push_str(&format!("    S{i}: {{ type: object, properties: {{ a: {{ $ref: '#/components/schemas/S{}' }} }} }}\n", i - 1));
    }
    let text = one_query_parameter_of(&format!("S{}", MAX_REF_DEPTH + 2), &schemas);
    assert_eq!(code(&text), "ref_too_deep");
}

#[test]
fn an_exponential_ref_fan_out_is_cut_off() {
    let mut schemas = String::from("    S0: { type: string }\n");
    for i in 1..30 {
        let p = i - 1;
        schemas.push_str(&format!("    S{i}: {{ type: object, properties: {{ a: {{ $ref: '#/components/schemas/S{p}' }}, b: {{ $ref: '#/components/schemas/S{p}' }} }} }}\n"));
    }
    let text = one_query_parameter_of("S29", &schemas);
    // Without the cut-off this would inline 2^29 schemas and never finish (nextest's
    // time-out fails it); the work is bounded by MAX_INLINED_VALUES, not timed here: a
    // wall-clock limit failed on a loaded machine.
    assert_eq!(code(&text), "ref_expansion_limit");
}

#[test]
fn a_duplicate_operation_id_is_refused() {
    let text = PETSTORE.replace("operationId: updatePet", "operationId: showPetById");
    assert_eq!(code(&text), "duplicate_operation_id");
}

#[test]
fn operation_id_words_split_on_case_and_separators() {
    assert_eq!(classify::words("cancelOrder"), ["cancel", "order"]);
    assert_eq!(
        classify::words("purge_user-data"),
        ["purge", "user", "data"]
    );
    assert_eq!(classify::words("getHTTPStatus"), ["get", "httpstatus"]);
}

#[test]
fn a_get_with_an_action_word_is_not_a_read() {
    let text = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /subscriptions/{id}/cancel:\n    get: { operationId: cancelViaLink, parameters: [{name: id, in: path, required: true, schema: {type: string}}], responses: { '200': { description: ok } } }\n  /cache/purge:\n    get: { responses: { '200': { description: ok } } }\n";
    let imported = ok(text);
    class(
        &imported,
        "cancelViaLink",
        Permission::Write,
        "not a harmless read",
    );
    class(
        &imported,
        "get_cache_purge",
        Permission::Destructive,
        "path ends in /purge",
    );
}

#[test]
fn every_error_code_is_listed_and_documented() {
    let docs = include_str!("../../../docs/openapi-import.md");
    for code in ImportError::CODES {
        assert!(
            docs.contains(&format!("`{code}`")),
            "{code} is not in docs/openapi-import.md"
        );
    }
}

#[test]
fn generated_names_are_stable_and_alphanumeric() {
    assert_eq!(
        extract::generated_name("get", "/orders/{order_id}"),
        "get_orders_order_id"
    );
    assert_eq!(
        extract::generated_name("delete", "/a-b/c.d/"),
        "delete_a_b_c_d"
    );
}
