//! Composable start-up, the same for every service: a service's `service(…)` connects and
//! starts its background tasks and returns a [`Service`] (its HTTP routes, those tasks, and
//! what to drain after the listener stops), not yet bound; `build(…)` binds it into an
//! [`App`], whose [`App::addr`] is the bound address (port 0 becomes a real port, for
//! tests) and whose [`App::run_until_stopped`] waits until the shutdown token is cancelled
//! and everything has finished. `smart-support up` merges several services into one
//! [`Service`] and binds them on one listener; the separate binaries bind one each.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Something to await once the listener has stopped (e.g. open WebSocket sessions closing).
type Drain = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A service built and started, but not yet listening.
pub struct Service {
    router: Router,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    drains: Vec<Drain>,
}

impl Service {
    /// A service that answers `router` (empty: nothing to serve).
    pub fn new(router: Router) -> Service {
        Service {
            router,
            tasks: Vec::new(),
            drains: Vec::new(),
        }
    }

    /// A task running beside the routes (a consumer loop); [`App::run_until_stopped`]
    /// waits for it and reports its error.
    pub fn with_task(mut self, task: JoinHandle<anyhow::Result<()>>) -> Service {
        self.tasks.push(task);
        self
    }

    /// Awaited after the listener has stopped.
    pub fn with_drain(mut self, drain: impl Future<Output = ()> + Send + 'static) -> Service {
        self.drains.push(Box::pin(drain));
        self
    }

    /// Both services on one listener (routes merged: no path may be served twice).
    pub fn merge(mut self, other: Service) -> Service {
        self.router = self.router.merge(other.router);
        self.tasks.extend(other.tasks);
        self.drains.extend(other.drains);
        self
    }

    /// Adds routes (the web pages, `/metrics`).
    pub fn route(mut self, router: Router) -> Service {
        self.router = self.router.merge(router);
        self
    }

    /// Binds `listen` (none: the service serves no HTTP) and starts serving until
    /// `shutdown` is cancelled.
    pub async fn bind(
        self,
        listen: Option<SocketAddr>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<App> {
        let Service {
            router,
            tasks,
            drains,
        } = self;
        let (addr, server) = match listen {
            Some(listen) => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|err| anyhow::anyhow!("cannot listen on {listen}: {err}"))?;
                let addr = listener.local_addr()?;
                let server = tokio::spawn(async move {
                    // The peer's address reaches handlers that ask for it (the API's sign-in
                    // throttle).
                    axum::serve(
                        listener,
                        router.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await?;
                    for drain in drains {
                        drain.await;
                    }
                    Ok(())
                });
                (Some(addr), Some(server))
            }
            None => (None, None),
        };
        Ok(App {
            addr,
            server,
            tasks,
        })
    }
}

/// A running service: bound, serving, its tasks running.
pub struct App {
    addr: Option<SocketAddr>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl App {
    /// The bound address (`None` for a service without HTTP).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Waits until the server and every task have stopped (after the shutdown token is
    /// cancelled); the first error of any of them is returned.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut first_error = None;
        for handle in self.server.into_iter().chain(self.tasks) {
            let result = handle
                .await
                .map_err(|err| anyhow::anyhow!("a task panicked: {err}"))
                .and_then(|r| r);
            if let Err(err) = result
                && first_error.is_none()
            {
                first_error = Some(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
