//! The REST service under `/api`, over the read models the projector writes: one module
//! per resource, each with its routes, and one
//! error type ([`error::ApiError`]) that maps to status codes and `{"error":{…}}` bodies.
//! [`consistency`] lets a read wait for the projection to reach a stream sequence (read
//! your writes); [`openapi`] is the OpenAPI document of all of it, generated from the
//! handlers' annotations.

pub mod analytics;
pub mod auth;
pub mod config;
pub mod consistency;
pub mod conversations;
pub mod dead_letters;
pub mod error;
pub mod health;
pub mod imports;
pub mod openapi;
pub mod startup;

pub use config::ApiArgs;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use axum::{
    Router,
    handler::Handler,
    middleware,
    routing::{MethodFilter, on},
};
use sqlx::PgPool;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub pool: PgPool,
    pub client: async_nats::Client,
    pub stream: Stream,
    pub api_token: Option<Arc<str>>,
    /// How long a read with `min_seq` waits for the projection (`PROJECTION_WAIT`).
    pub projection_wait: Duration,
    /// The agents and allow-list of OpenAPI imports.
    pub imports: Arc<imports::ImportSettings>,
}

/// One route the API serves: what the OpenAPI document must describe.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// `get`, `post`, `delete`, … (lowercase, as in an OpenAPI path item).
    pub method: &'static str,
    /// The full path, `{name}` for a path parameter (as in OpenAPI).
    pub path: String,
    /// Whether the bearer token is required.
    pub operator: bool,
}

/// A resource's routes, remembering each (method, path) as it is added, so the list the
/// OpenAPI test checks is the router itself and cannot drift from it.
#[derive(Default)]
pub struct Routes {
    router: Router<ApiState>,
    served: Vec<Route>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    pub fn get<H, T>(self, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.on("get", MethodFilter::GET, path, handler)
    }

    pub fn post<H, T>(self, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.on("post", MethodFilter::POST, path, handler)
    }

    pub fn patch<H, T>(self, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.on("patch", MethodFilter::PATCH, path, handler)
    }

    pub fn delete<H, T>(self, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.on("delete", MethodFilter::DELETE, path, handler)
    }

    fn on<H, T>(
        mut self,
        method: &'static str,
        filter: MethodFilter,
        path: &'static str,
        handler: H,
    ) -> Routes
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        // axum merges the methods of one path added in several calls.
        self.router = self.router.route(path, on(filter, handler));
        self.served.push(Route {
            method,
            path: format!("/api{path}"),
            operator: false,
        });
        self
    }

    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.served.extend(other.served);
        self
    }
}

/// The routes that need no token, and the operator routes (token checked in [`router`]).
fn routes() -> (Routes, Routes) {
    let public = health::routes().merge(openapi::routes());
    let operator = conversations::routes()
        .merge(analytics::routes())
        .merge(dead_letters::routes())
        .merge(imports::routes());
    (public, operator)
}

/// Every route [`router`] serves, sorted.
pub fn served_routes() -> Vec<Route> {
    let (public, operator) = routes();
    let mut served = public.served;
    served.extend(operator.served.into_iter().map(|route| Route {
        operator: true,
        ..route
    }));
    served.sort();
    served
}

/// Every `/api` route (nested, so unknown `/api/…` paths get a JSON 404). Operator routes require the bearer token when one is set.
pub fn router(state: ApiState) -> Router {
    let (public, operator) = routes();
    let operator = operator.router.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    let api = Router::new()
        .merge(public.router)
        .merge(operator)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    Router::new().nest("/api", api).with_state(state)
}
