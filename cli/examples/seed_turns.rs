//! Seeds the chat stream with recorded turns as the demo's workers would have written them,
//! fast, for `smart-support regress` benchmarks (docs/benchmarks.md#regress): demo-like
//! conversations (the scripts of `seed-demo`), each turn run by the workers' own turn
//! ([`workers::turn::run`]) with the agents config given and the demo shop's state
//! in-process as its tools, then the user message and the turn's events published
//! pipelined straight to JetStream. No ingress, no workers (stop them first), no HTTP.
//!
//! ```sh
//! cargo run --release -p cli --example seed_turns -- --turns 100000
//! ```

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use common::config::NatsArgs;
use common::events::{
    Envelope, ErrorCategory, MessageReceived, Payload, PendingAction, ThreadId, TurnId, publish_of,
};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use serde_json::Value;
use shop::state::{Shop, ShopError};
use time::OffsetDateTime;
use tools::{CallReport, ToolError, ToolResponse};
use uuid::Uuid;
use workers::agents::{BoxFuture, ToolDef};
use workers::turn::{Agents, Incoming, Prior, Tools};

/// Seeds recorded turns for `regress` benchmarks.
#[derive(Debug, Parser)]
struct Args {
    /// Turns to record (customer messages, each answered).
    #[arg(long, default_value_t = 100_000)]
    turns: u64,
    /// The agents config that answers them.
    #[arg(long, default_value = "fixtures/agents.yaml")]
    agents_config: std::path::PathBuf,
    /// Publishes awaiting their PubAck at once.
    #[arg(long, default_value_t = 512)]
    in_flight: usize,
    /// Seed of the scripts' choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    nats: NatsArgs,
}

/// The demo shop's state as the tools, called in-process.
struct ShopTools(Mutex<Shop>);

impl Tools for ShopTools {
    fn call<'a>(
        &'a self,
        name: &'a str,
        params: &'a Value,
        _: &'a str,
    ) -> BoxFuture<'a, CallReport> {
        let order = params["order_id"].as_str().unwrap_or_default();
        let mut shop = self.0.lock().unwrap();
        let result = match name {
            "getOrder" => shop.order(order),
            "cancelOrder" => shop.cancel(order),
            "refundOrder" => shop.refund(order, None),
            "deleteOrder" => shop.delete(order),
            "listProducts" => Ok(shop.products()),
            _ => Err(ShopError {
                status: 404,
                code: "not_found",
                message: format!("no operation {name}"),
            }),
        };
        let report = CallReport {
            result: result
                .map(|body| ToolResponse { status: 200, body })
                .map_err(|err| ToolError {
                    category: ErrorCategory::NotRetryable,
                    status: Some(err.status),
                    message: format!("HTTP {}: {}", err.status, err.body()),
                    api_message: Some(err.message.clone()),
                }),
            attempts: 1,
            elapsed: Duration::from_millis(3),
        };
        Box::pin(async move { report })
    }

    fn def(&self, _: &str) -> Option<ToolDef> {
        None
    }
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// The customer's messages of one conversation: the scripts of `seed-demo`.
fn script(rng: &mut Rng) -> Vec<String> {
    let o = format!("ORD-{}", rng.range(1001, 1013));
    let lines: &[&str] = match rng.range(0, 12) {
        0 | 1 => &["Where is my order {o}?"],
        2 => &["Hi there", "Can you check {o} for me?"],
        3 => &["Please cancel {o}", "yes"],
        4 => &["I'd like to cancel order {o}", "no"],
        5 => &["I want a refund for {o}", "yes"],
        6 => &["What products do you sell?"],
        7 => &["Where is my order?", "It is {o}"],
        8 => &["I want to talk to a human"],
        9 => &["This charge on {o} looks like fraud"],
        10 => &["Please delete order {o}"],
        _ => &["Do you have gift cards?"],
    };
    lines.iter().map(|l| l.replace("{o}", &o)).collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let worker = workers::WorkerArgs::from_flags([
        std::ffi::OsString::from("--agents-config"),
        args.agents_config.clone().into_os_string(),
    ])?;
    let loaded = workers::startup::load_agents(&worker)?;
    let agents = Agents {
        config: loaded.config,
        engine: loaded.engine,
        tools: Arc::new(ShopTools(Mutex::new(Shop::seeded()))),
        others: loaded.others,
    };
    let (_client, js) = common::jetstream::connect(&args.nats).await?;
    let mut stream = common::jetstream::ensure_chat_stream(&js, &args.nats).await?;
    let mut seq = stream
        .info()
        .await
        .context("stream info")?
        .state
        .last_sequence;
    let mut rng = Rng(args.seed);
    let mut in_flight = FuturesOrdered::new();
    let mut queue: VecDeque<Envelope> = VecDeque::new();
    let started = Instant::now();
    let (mut turns, mut events) = (0u64, 0u64);
    let now = OffsetDateTime::now_utc();
    while turns < args.turns || !queue.is_empty() || !in_flight.is_empty() {
        if queue.is_empty() && turns < args.turns {
            // One conversation, its turns one after the other.
            let thread = ThreadId::parse(
                &Uuid::from_u64_pair(rng.next(), rng.next())
                    .simple()
                    .to_string(),
            )?;
            let mut pending: Option<PendingAction> = None;
            for (n, content) in script(&mut rng).into_iter().enumerate() {
                let event_id =
                    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{thread}/{n}").as_bytes());
                let at = now - time::Duration::seconds(rng.range(0, 30 * 86_400) as i64);
                let message = Envelope::new(
                    event_id,
                    thread.clone(),
                    TurnId::from_uuid(Uuid::new_v5(&event_id, b"turn")),
                    at,
                    MessageReceived {
                        content,
                        client_msg_id: None,
                        backdated_ms: None,
                    },
                );
                // The stream stores them in publish order on this one connection.
                let message_seq = seq + queue.len() as u64 + in_flight.len() as u64 + 1;
                let incoming = Incoming {
                    event: message.clone(),
                    seq: message_seq,
                };
                let prior = Prior {
                    pending: pending.take(),
                    recorded: Vec::new(),
                    history: None,
                    last_attempt: false,
                    deltas: None,
                };
                let mut sink = Vec::<Envelope>::new();
                workers::turn::run(&agents, &incoming, prior, &mut sink, || at).await?;
                pending = sink.iter().find_map(|e| match &e.payload {
                    Payload::TurnCompleted(done) => done.pending.clone(),
                    _ => None,
                });
                queue.push_back(message);
                queue.extend(sink);
                turns += 1;
            }
            continue;
        }
        if in_flight.len() < args.in_flight
            && let Some(event) = queue.pop_front()
        {
            let (subject, message) = publish_of(&event);
            in_flight.push_back(js.send_publish(subject, message).await?.into_future());
            continue;
        }
        let ack = in_flight
            .next()
            .await
            .expect("a publish is in flight")
            .context("a publish was not acknowledged")?;
        seq = ack.sequence;
        events += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("published {turns} turns ({events} events, up to sequence {seq}) in {seconds:.1}s");
    Ok(())
}
