//! `smart-support seed-demo`: demo data made by the real pipeline, so the pages look alive on
//! a first start. Customers are simulated over the ingress's WebSocket, each conversation
//! its own connection and thread, with scripts the demo's agents answer in different ways
//! (order look-ups, cancellations and refunds confirmed or declined, the catalogue, greetings,
//! requests for a person, a destructive request, unknown questions); the workers answer, the
//! tools call the demo shop API, the projector folds it all. Some conversations are then
//! resolved through the REST API, as an operator would, and a few unreadable messages are
//! published straight to the stream, which the workers dead-letter.
//!
//! Everything happens now: the events carry the time they were made (nothing is backdated),
//! so the dashboard's series show the seeding as one busy hour.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use common::config::NatsArgs;
use common::events::ThreadId;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::seed::Rng;

/// `smart-support seed-demo`.
#[derive(Debug, Clone, Args)]
pub struct SeedDemoArgs {
    /// The ingress's WebSocket endpoint.
    #[arg(long, env = "SEED_WS_URL", default_value = "ws://127.0.0.1:8080/ws")]
    pub ws_url: String,
    /// Origin of the REST API (conversations are resolved through it).
    #[arg(long, env = "SEED_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// Bearer token of the operator endpoints, when the API requires one.
    #[arg(long, env = "API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Conversations to hold.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub conversations: u64,
    /// Conversations held at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
    /// Unreadable messages to publish straight to the stream (the workers dead-letter each).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=1_000))]
    pub dead_letters: u64,
    /// Do nothing when the REST API already lists a conversation (a second `make demo` or
    /// `docker compose up` on the same data).
    #[arg(long)]
    pub if_empty: bool,
    /// Seed of the scripts' choice: the same seed holds the same conversations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Longest wait for one turn to end.
const TURN_TIMEOUT: Duration = Duration::from_secs(30);

/// One scripted customer: the messages, and whether an operator resolves the conversation.
#[derive(Debug, Clone)]
struct Script {
    messages: Vec<String>,
    resolve: bool,
}

/// Picks a script. The shop has orders ORD-1001 to ORD-1012; the wording follows the demo's
/// agents config (`fixtures/agents.yaml`). Cancellations and refunds change only ORD-1007
/// to ORD-1012: ORD-1001 to ORD-1006 stay as the shop starts them, for the walkthrough and
/// the browser tests, which look them up.
fn script(rng: &mut Rng) -> Script {
    let any_order = format!("ORD-{}", rng.range(1001, 1013));
    let changed_order = format!("ORD-{}", rng.range(1007, 1013));
    let say = |lines: &[&str]| {
        lines
            .iter()
            .map(|l| l.replace("{o}", &any_order).replace("{c}", &changed_order))
            .collect()
    };
    let messages: Vec<String> = match rng.range(0, 12) {
        0 | 1 => say(&["Where is my order {o}?"]),
        2 => say(&["Hi there", "Can you check {o} for me?"]),
        3 => say(&["Please cancel {c}", "yes"]),
        4 => say(&["I'd like to cancel order {o}", "no"]),
        5 => say(&["I want a refund for {c}", "yes"]),
        6 => say(&["What products do you sell?"]),
        7 => say(&["Where is my order?", "It is {o}"]),
        8 => say(&["I want to talk to a human"]),
        9 => say(&["This charge on {o} looks like fraud"]),
        10 => say(&["Please delete order {o}"]),
        _ => say(&["Do you have gift cards?"]),
    };
    Script {
        messages,
        resolve: rng.chance(40),
    }
}

/// How one conversation went.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    /// Stream sequence of the conversation's latest event.
    last_seq: u64,
    turns: u64,
    replies: u64,
    escalated: bool,
    resolved: bool,
}

/// What a seeding did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seeded {
    pub conversations: u64,
    pub failed_conversations: u64,
    pub turns: u64,
    pub replies: u64,
    pub escalated: u64,
    pub resolved: u64,
    pub dead_letters: u64,
}

pub async fn run(args: &SeedDemoArgs) -> anyhow::Result<Seeded> {
    workers::tls::install_crypto_provider();
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .context("cannot build the HTTP client")?;
    if args.if_empty && has_conversations(args, &http).await? {
        eprintln!("demo data not seeded: there are conversations already");
        return Ok(Seeded::default());
    }
    let mut rng = Rng(args.seed);
    let scripts: Vec<Script> = (0..args.conversations).map(|_| script(&mut rng)).collect();
    let mut held = futures::stream::iter(scripts)
        .map(|script| converse(args, &http, script))
        .buffer_unordered(args.concurrency as usize);
    let mut seeded = Seeded::default();
    while let Some(result) = held.next().await {
        match result {
            Ok(conversation) => {
                seeded.conversations += 1;
                seeded.turns += conversation.turns;
                seeded.replies += conversation.replies;
                seeded.escalated += u64::from(conversation.escalated);
                seeded.resolved += u64::from(conversation.resolved);
            }
            Err(err) => {
                seeded.failed_conversations += 1;
                tracing::warn!(error = %format!("{err:#}"), "a demo conversation failed");
            }
        }
    }
    drop(held);
    if seeded.conversations == 0 {
        bail!(
            "no demo conversation could be held at {}: is the stack running?",
            args.ws_url
        );
    }
    seeded.dead_letters = publish_unreadable(args).await?;
    eprintln!(
        "seeded {} conversations ({} turns, {} replies, {} escalated, {} resolved; {} failed) \
         and {} unreadable messages for the dead letters, in {:.1}s",
        seeded.conversations,
        seeded.turns,
        seeded.replies,
        seeded.escalated,
        seeded.resolved,
        seeded.failed_conversations,
        seeded.dead_letters,
        started.elapsed().as_secs_f64()
    );
    Ok(seeded)
}

/// Holds one conversation over its own WebSocket: each message waits for its turn to end.
async fn converse(
    args: &SeedDemoArgs,
    http: &reqwest::Client,
    script: Script,
) -> anyhow::Result<Held> {
    let (mut socket, _) = tokio_tungstenite::connect_async(args.ws_url.as_str())
        .await
        .with_context(|| format!("cannot open {}", args.ws_url))?;
    let session = next_frame(&mut socket).await?;
    let thread_id = session["thread_id"]
        .as_str()
        .filter(|_| session["type"] == "session")
        .with_context(|| format!("expected the session frame, got {session}"))?
        .to_owned();
    let mut held = Held::default();
    for (n, content) in script.messages.iter().enumerate() {
        let frame =
            json!({"type": "message", "content": content, "client_msg_id": format!("seed-{n}")});
        socket.send(Message::text(frame.to_string())).await?;
        // The turn ends with `turn.completed` or `turn.failed`; an error frame ends it too.
        loop {
            let frame = tokio::time::timeout(TURN_TIMEOUT, next_frame(&mut socket))
                .await
                .with_context(|| format!("no end of turn within {TURN_TIMEOUT:?}"))??;
            if let Some(seq) = frame["seq"].as_u64() {
                held.last_seq = held.last_seq.max(seq);
            }
            match (frame["type"].as_str(), frame["event"]["kind"].as_str()) {
                (Some("error"), _) => bail!("the ingress refused {content:?}: {frame}"),
                (Some("event"), Some("agent.replied")) => held.replies += 1,
                (Some("event"), Some("conversation.escalated")) => held.escalated = true,
                (Some("event"), Some("turn.completed" | "turn.failed")) => {
                    held.turns += 1;
                    break;
                }
                _ => {}
            }
        }
    }
    let _ = socket.close(None).await;
    if script.resolve && !held.escalated {
        resolve(args, http, &thread_id, held.last_seq).await?;
        held.resolved = true;
    }
    Ok(held)
}

async fn next_frame<S>(socket: &mut S) -> anyhow::Result<Value>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
            Some(Ok(Message::Close(close))) => bail!("the ingress closed the socket: {close:?}"),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.into()),
            None => bail!("the ingress closed the socket"),
        }
    }
}

/// Marks a conversation resolved through the REST API, as an operator would: first a read
/// with `min_seq` (it waits until the projection has the conversation's last event), then
/// the resolve.
async fn resolve(
    args: &SeedDemoArgs,
    http: &reqwest::Client,
    thread_id: &str,
    last_seq: u64,
) -> anyhow::Result<()> {
    let conversation = format!(
        "{}/api/conversations/{thread_id}",
        args.api_url.trim_end_matches('/')
    );
    operator(args, http.get(format!("{conversation}?min_seq={last_seq}"))).await?;
    operator(
        args,
        http.post(format!("{conversation}/resolve"))
            .json(&json!({"note": "Resolved by the demo seeding."})),
    )
    .await?;
    Ok(())
}

async fn has_conversations(args: &SeedDemoArgs, http: &reqwest::Client) -> anyhow::Result<bool> {
    let url = format!(
        "{}/api/conversations?limit=1",
        args.api_url.trim_end_matches('/')
    );
    let page: Value = operator(args, http.get(url)).await?.json().await?;
    Ok(page["items"]
        .as_array()
        .is_some_and(|items| !items.is_empty()))
}

/// Sends an operator request (with the token, when there is one); an error unless 2xx.
async fn operator(
    args: &SeedDemoArgs,
    request: reqwest::RequestBuilder,
) -> anyhow::Result<reqwest::Response> {
    let request = match &args.api_token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.context("cannot reach the REST API")?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "the REST API answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(response)
}

/// Publishes messages that are not events onto new threads' user subjects, where the
/// workers take them, fail to read them and dead-letter them (at once: they never will be).
async fn publish_unreadable(args: &SeedDemoArgs) -> anyhow::Result<u64> {
    if args.dead_letters == 0 {
        return Ok(0);
    }
    let (_client, js) = common::jetstream::connect(&args.nats).await?;
    for n in 0..args.dead_letters {
        let subject = common::subjects::user_message(&ThreadId::generate());
        let payload = format!("{{not json: a garbled message from an old client, #{n}");
        js.publish(subject, payload.into())
            .await
            .context("cannot publish to JetStream")?
            .await
            .context("JetStream did not store the message")?;
    }
    Ok(args.dead_letters)
}
