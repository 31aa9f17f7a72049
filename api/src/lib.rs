//! The REST service under `/api`, over the read models the projector writes: one module
//! per resource, each with its routes, and one
//! error type ([`error::ApiError`]) that maps to status codes and `{"error":{…}}` bodies.
//! [`consistency`] lets a read wait for the projection to reach a stream sequence (read
//! your writes); [`regress`] runs a changed agents config on the recorded turns through a
//! runner the composition root injects; [`openapi`] is the OpenAPI document of all of it,
//! generated from the handlers' annotations.

pub mod analytics;
pub mod auth;
pub mod config;
pub mod consistency;
pub mod conversations;
pub mod dead_letters;
pub mod desk;
pub mod erasure;
pub mod error;
pub mod health;
pub mod imports;
pub mod openapi;
pub mod operators;
pub mod regress;
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
    /// `API_TOKEN`: every one of them opens the API as the bootstrap admin.
    pub api_token: Option<Arc<common::secrets::Secrets>>,
    /// How long a read with `min_seq` waits for the projection (`PROJECTION_WAIT`).
    pub projection_wait: Duration,
    /// The agents and allow-list of OpenAPI imports.
    pub imports: Arc<imports::ImportSettings>,
    /// Failed sign-ins, per email and per client address.
    pub throttle: Arc<auth::Throttle>,
    /// How long an operator's session lasts (`OPERATOR_SESSION_TTL`).
    pub session_lifetime: Duration,
    /// Runs `regress` for `POST /api/regress`; `None`: 503 `regress_unavailable`.
    pub regress: Option<Arc<dyn regress::RegressRunner>>,
}

/// One route the API serves: what the OpenAPI document must describe.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// `get`, `post`, `delete`, … (lowercase, as in an OpenAPI path item).
    pub method: &'static str,
    /// The full path, `{name}` for a path parameter (as in OpenAPI).
    pub path: String,
    /// Whether credentials are required (an operator's session or the API token).
    pub operator: bool,
    /// Whether only the `admin` role may use it.
    pub admin: bool,
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
            admin: false,
        });
        self
    }

    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.served.extend(other.served);
        self
    }
}

/// The routes that need no credentials, those every operator may use, and the admin's.
fn routes() -> (Routes, Routes, Routes) {
    let public = health::routes()
        .merge(openapi::routes())
        .merge(auth::public_routes());
    let agent = conversations::routes()
        .merge(analytics::routes())
        .merge(desk::routes())
        .merge(auth::agent_routes());
    let admin = dead_letters::routes()
        .merge(erasure::routes())
        .merge(imports::routes())
        .merge(regress::routes())
        .merge(auth::admin_routes());
    (public, agent, admin)
}

/// Every route [`router`] serves, sorted.
pub fn served_routes() -> Vec<Route> {
    let (public, agent, admin) = routes();
    let mut served = public.served;
    served.extend(agent.served.into_iter().map(|route| Route {
        operator: true,
        ..route
    }));
    served.extend(admin.served.into_iter().map(|route| Route {
        operator: true,
        admin: true,
        ..route
    }));
    served.sort();
    served
}

/// Every `/api` route (nested, so unknown `/api/…` paths get a JSON 404), and `GET /metrics`.
/// Operator routes require credentials ([`auth::authenticate`]); admin routes and
/// `/metrics` the admin role.
pub fn router(state: ApiState) -> Router {
    let (public, agent, admin) = routes();
    let admin = admin
        .router
        .route_layer(middleware::from_fn(auth::require_admin));
    let operator = agent
        .router
        .merge(admin)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    let api = Router::new()
        .merge(public.router)
        .merge(operator)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    // `GET /metrics` of the contract on the public port too, but for admins only (the API
    // token or an admin's session); its own listener (METRICS_ADDR) needs no token.
    let metrics = Router::new()
        .route("/metrics", axum::routing::get(common::metrics::handler))
        .route_layer(middleware::from_fn(auth::require_admin))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .nest("/api", api)
        .merge(metrics)
        .with_state(state)
}
