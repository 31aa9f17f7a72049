//! Starts the stack and talks to it like a client would.

use std::net::SocketAddr;
use std::time::Duration;

use cli::up::{self, UpArgs};
use common::{
    config::{DatabaseArgs, NatsArgs, NatsUser, ServicePasswords},
    shutdown::CancellationToken,
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use testkit::{NatsCluster, NatsServer, Postgres};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A running system on real servers; everything stops when it is dropped.
pub struct Stack {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub args: UpArgs,
    pub shutdown: CancellationToken,
    /// The stack's own NATS server; `None` on a cluster the test owns ([`Stack::start_on_cluster`]).
    pub nats: Option<NatsServer>,
    /// Where the demo shop API the agents call runs (in-process, fresh seed data).
    pub shop: SocketAddr,
    /// Where `/metrics` is served (its own listener, `METRICS_ADDR`).
    pub metrics_addr: SocketAddr,
    _postgres: Postgres,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(|_| {}).await
    }

    /// Starts the stack with settings changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut UpArgs)) -> Stack {
        let nats = NatsServer::start();
        Stack::start_on(nats.url(), Some(nats), false, tweak).await
    }

    /// Starts the stack on a chat stream that already holds the stream version 1 of the
    /// events recorded (`testkit::v1_fixture`), stored before any service reads it, as an
    /// upgrade finds it.
    pub async fn start_on_v1_stream() -> Stack {
        let nats = NatsServer::start();
        Stack::start_on(nats.url(), Some(nats), true, |_| {}).await
    }

    /// Starts the stack on every node of `cluster` (a comma-separated `NATS_URL`) with the
    /// chat stream replicated three times, then with settings changed by `tweak`.
    pub async fn start_on_cluster(cluster: &NatsCluster, tweak: impl FnOnce(&mut UpArgs)) -> Stack {
        Stack::start_on(cluster.urls(), None, false, |args| {
            args.nats.stream_replicas = 3;
            tweak(args);
        })
        .await
    }

    async fn start_on(
        nats_url: String,
        nats: Option<NatsServer>,
        v1_stream: bool,
        tweak: impl FnOnce(&mut UpArgs),
    ) -> Stack {
        // Quiet unless asked: RUST_LOG=debug cargo nextest run … shows the services' logs.
        if std::env::var_os("RUST_LOG").is_some() {
            // Kept for the whole test process (its spans, when exported, are not cut short).
            std::mem::forget(common::telemetry::init());
        }
        let postgres = Postgres::start();
        let shutdown = CancellationToken::new();
        let shop_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shop = shop_listener.local_addr().unwrap();
        tokio::spawn(shop::serve(
            shop_listener,
            shutdown.clone().cancelled_owned(),
        ));
        let database_url = postgres.create_database();
        let mut args = UpArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            web_dir: "does-not-exist".into(),
            nats: NatsArgs {
                nats_url,
                stream_replicas: 1,
                duplicate_window: Duration::from_secs(600),
                client_name: "e2e".into(),
                nats_user: Some("admin".into()),
                nats_password: Some(testkit::nats_password("admin")),
                nats_tls_ca: None,
            },
            // Each service as its own user (nats/users.conf), as `make demo` runs them.
            nats_users: ServicePasswords {
                ingress_nats_password: Some(testkit::nats_password("ingress")),
                worker_nats_password: Some(testkit::nats_password("worker")),
                projector_nats_password: Some(testkit::nats_password("projector")),
                api_nats_password: Some(testkit::nats_password("api")),
            },
            database: DatabaseArgs {
                database_url,
                database_max_connections: 5,
            },
            ingress: ingress::IngressArgs {
                thread_token_secret: "test-secret".into(),
                max_frame_bytes: 64 * 1024,
                outbound_buffer: 256,
                idle_timeout: Duration::from_secs(60),
                allowed_origins: vec![],
                rate_limit_messages: 10,
                rate_limit_window: Duration::from_secs(10),
                max_backlog: 0,
            },
            worker: workers::WorkerArgs::from_flags([
                "--worker-batch",
                "64",
                "--agents-config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/agents.yaml"),
                "--tools-base-url",
                &format!("http://{shop}"),
                "--tools-allow-hosts",
                &shop.to_string(),
                "--tools-retry-delay",
                "20ms",
                "--worker-retry-delay",
                "50ms",
            ])
            .expect("valid worker flags"),
            projection: projections::ProjectionArgs {
                projector_batch: 100,
                projector_standby_poll: std::time::Duration::from_secs(1),
            },
            api: api::ApiArgs {
                api_token: None,
                projection_wait: Duration::from_secs(2),
                import_agents_config: None,
                import_allow_hosts: Vec::new(),
                operator_session_ttl: Duration::from_secs(3600),
                conversation_retention: None,
            },
            metrics: common::config::MetricsArgs::at("127.0.0.1:0".parse().unwrap()),
        };
        tweak(&mut args);
        if v1_stream {
            let js = common::jetstream::connect_once(&args.nats).await.unwrap();
            common::jetstream::setup(&js, &args.nats).await.unwrap();
            testkit::v1_fixture::load(&js).await;
        }
        let running = up::start(args.clone(), shutdown.clone())
            .await
            .expect("the stack starts");
        Stack {
            addr: running.addr,
            metrics_addr: running.metrics_addr.expect("/metrics is served"),
            http: testkit::http_client(),
            args,
            shutdown,
            nats,
            shop,
            _postgres: postgres,
        }
    }

    /// Starts one more ingress instance on the same NATS server (as a second process
    /// would be); returns its address.
    pub async fn start_ingress(&self) -> SocketAddr {
        ingress::startup::build(
            "127.0.0.1:0".parse().unwrap(),
            &self
                .args
                .nats
                .for_service(NatsUser::Ingress, &self.args.nats_users),
            self.args.ingress.clone(),
            self.shutdown.clone(),
        )
        .await
        .expect("a second ingress starts")
        .addr()
        .expect("bound")
    }

    /// Starts one more instance of every service (ingress, worker, projector and REST on
    /// one listener), as a second `smart-support up` process on the same NATS and database
    /// would be; returns its address.
    pub async fn start_instance(&self) -> SocketAddr {
        up::start(self.args.clone(), self.shutdown.clone())
            .await
            .expect("a second instance starts")
            .addr
    }

    /// A NATS connection to the stack's server(s) as the admin user (to act on the stream
    /// directly).
    pub async fn nats_client(&self) -> async_nats::Client {
        common::jetstream::options(&self.args.nats)
            .connect(common::jetstream::server_addrs(&self.args.nats.nats_url).unwrap())
            .await
            .unwrap()
    }

    /// The stack's own NATS server, for tests that kill and restart it.
    pub fn nats_server(&mut self) -> &mut NatsServer {
        self.nats
            .as_mut()
            .expect("the stack runs its own NATS server")
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws{query}", self.addr)
    }

    pub async fn connect(&self, query: &str) -> Socket {
        connect_to(self.addr, query).await
    }

    /// A new conversation: the socket, past its session frame, and the thread's id.
    pub async fn open_thread(&self) -> (Socket, String) {
        let mut socket = self.connect("").await;
        let session = next_frame(&mut socket).await;
        let thread_id = session["thread_id"].as_str().unwrap().to_owned();
        (socket, thread_id)
    }

    /// The value of a counter or gauge in `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(format!("http://{}/metrics", self.metrics_addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .filter_map(|value| value.trim().parse::<f64>().ok())
            .sum()
    }

    /// The replay steps of a thread once the projector has applied the event at `seq`.
    pub async fn replay_through(&self, thread: &str, seq: u64) -> Vec<Value> {
        let replay = self
            .get_until(&format!("/api/conversations/{thread}/replay"), |r| {
                r["steps"]
                    .as_array()
                    .is_some_and(|steps| steps.iter().any(|s| s["seq"] == seq))
            })
            .await;
        replay["steps"].as_array().unwrap().clone()
    }

    /// Waits until a metric of `/metrics` has the value `expected`, or fails after 15 s.
    pub async fn metric_until(&self, name: &str, expected: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let value = self.metric(name).await;
            if value == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} is {value}, not {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GET a path, returning the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// `method` `/api{path}` with `body` (none: empty): the status and the JSON body.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("http://{}/api{path}", self.addr));
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// `method` `/api{path}` with `token` (none: no `Authorization`) and a JSON `body`: the
    /// status and the body (`null` when it is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("http://{}/api{path}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Imports an OpenAPI `document` through `POST /api/openapi/imports` and waits until
    /// the job is no longer pending: its id and the job.
    pub async fn import(&self, document: &str) -> (String, Value) {
        let (status, accepted) = self
            .api(
                reqwest::Method::POST,
                "/openapi/imports",
                Some(document.into()),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        let id = accepted["id"].as_str().unwrap().to_owned();
        let job = self
            .get_until(&format!("/api/openapi/imports/{id}"), |job| {
                job["status"] != "pending"
            })
            .await;
        (id, job)
    }

    /// An order as the demo shop has it now: the status and the JSON body.
    pub async fn shop_order(&self, order: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("http://{}/orders/{order}", self.shop))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// GETs `path` until `done` holds for the body, or fails after 15 s.
    pub async fn get_until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET {path} never satisfied the condition; last answer {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Opens a WebSocket to `/ws` at `addr`.
pub async fn connect_to(addr: SocketAddr, query: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws{query}"))
        .await
        .expect("the WebSocket handshake succeeds");
    socket
}

/// The query that resumes the thread of a session frame.
pub fn resume_query(session: &Value, after_seq: Option<u64>) -> String {
    let mut query = format!(
        "?thread_id={}&token={}",
        session["thread_id"].as_str().unwrap(),
        session["token"].as_str().unwrap()
    );
    if let Some(seq) = after_seq {
        query.push_str(&format!("&after_seq={seq}"));
    }
    query
}

/// Reads until the server closes; returns the close code.
pub async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("the server closes within 30 s");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(err)) => panic!("socket error before a close frame: {err}"),
        }
    }
}

/// The next text frame as JSON, failing after 15 s.
pub async fn next_frame(socket: &mut Socket) -> Value {
    let deadline = Duration::from_secs(15);
    loop {
        let message = tokio::time::timeout(deadline, socket.next())
            .await
            .expect("a frame arrives within 15 s")
            .expect("the socket is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("frames are JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads frames until one satisfies `done`; returns every frame read, that one last.
pub async fn frames_until(socket: &mut Socket, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = next_frame(socket).await;
        let stop = done(&frame);
        frames.push(frame);
        if stop {
            return frames;
        }
    }
}

/// Reads frames until one is an `ack` and one satisfies `done`, in either order: a message's
/// ack and its turn's events travel separately (websocket.md), so the reply may come first.
pub async fn frames_until_acked_and(
    socket: &mut Socket,
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut frames = Vec::new();
    let (mut acked, mut finished) = (false, false);
    while !(acked && finished) {
        let frame = next_frame(socket).await;
        acked |= frame["type"] == "ack";
        finished |= done(&frame);
        frames.push(frame);
    }
    frames
}

pub async fn send_json(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .expect("the frame is sent");
}

/// The kinds of `events`, in order.
pub fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

/// The first event of this kind; fails when there is none.
pub fn find<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(events)))
}

/// The `content` of each `message.received` among replay steps or events, in order.
pub fn message_contents(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"] == "message.received")
        .map(|e| e["content"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether a frame is the event of this kind.
pub fn is_event(frame: &Value, kind: &str) -> bool {
    frame["type"] == "event" && frame["event"]["kind"] == kind
}

/// Whether an event (the `event` of a frame) is the agents' end of a turn: the
/// `agent.replied` that carries the turn's `outcome` (version 2), or a `turn.completed`
/// (version 1).
pub fn is_completion(event: &Value) -> bool {
    event["kind"] == "turn.completed"
        || (event["kind"] == "agent.replied" && event["outcome"].is_string())
}

/// Whether a frame is an event that ends the agents' turn ([`is_completion`]).
pub fn completes(frame: &Value) -> bool {
    frame["type"] == "event" && is_completion(&frame["event"])
}

/// Sends a message and returns the events of its turn (from its `message.received` or
/// `message.redriven` on), up to the turn's end.
pub async fn turn(socket: &mut Socket, content: &str) -> Vec<Value> {
    send_json(socket, json!({"type": "message", "content": content})).await;
    turn_events(socket).await
}

/// Reads frames until a turn ends; returns the events read.
pub async fn turn_events(socket: &mut Socket) -> Vec<Value> {
    frames_until(socket, |f| {
        let kind = &f["event"]["kind"];
        completes(f) || (f["type"] == "event" && (kind == "turn.failed" || kind == "turn.held"))
    })
    .await
    .into_iter()
    .filter(|f| f["type"] == "event")
    .map(|f| f["event"].clone())
    .collect()
}
