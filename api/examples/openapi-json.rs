//! Prints the OpenAPI document of the REST API, the one `GET /api/openapi.json` serves,
//! without starting a server: `scripts/web_api_types.sh` generates the web app's REST types
//! (`web/src/api/schema.ts`) from it.
//!
//! ```sh
//! cargo run --quiet -p api --example openapi-json > openapi.json
//! ```

use utoipa::OpenApi;

fn main() {
    let document = api::openapi::ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serializes");
    println!("{document}");
}
