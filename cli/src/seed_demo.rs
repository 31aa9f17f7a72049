//! `smart-support seed-demo`: demo data made by the real pipeline, so the pages look alive on
//! a first start. Customers are simulated on the stream: each conversation a thread of its
//! own, its user messages stored on `chat.<thread>.user` as the ingress stores them, with
//! scripts the demo's agents answer in different ways (order look-ups, cancellations and
//! refunds confirmed or declined, the catalogue, greetings, requests for a person, a
//! destructive request, unknown questions); the workers answer, the tools call the demo shop
//! API, the projector folds it all. Some conversations are then resolved (a
//! `conversation.resolved` event, as the REST API publishes it), and a few unreadable
//! messages are published, which the workers dead-letter.
//!
//! The conversations are spread over the last `--days` days (a fifth of them in the last 24
//! hours, so every range of the dashboard has traffic): each message carries `backdated_ms`,
//! and the workers date the events of its turn back by as much, so a turn keeps its real
//! duration. The ingress never backdates; only this command does.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_nats::jetstream::Context;
use clap::Args;
use common::config::NatsArgs;
use common::events::{ConversationResolved, Envelope, MessageReceived, Payload, ThreadId, TurnId};
use futures::StreamExt;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::seed::Rng;

/// `smart-support seed-demo`.
#[derive(Debug, Clone, Args)]
pub struct SeedDemoArgs {
    /// Conversations to hold.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub conversations: u64,
    /// Conversations held at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
    /// Days back the conversations are spread over (0: all of them now).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=365))]
    pub days: u64,
    /// Unreadable messages to publish straight to the stream (the workers dead-letter each).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=1_000))]
    pub dead_letters: u64,
    /// Do nothing when the chat stream holds events already (a second `make demo` or
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

/// Namespace of the seeded messages' event ids, derived from (thread, message number).
const SEED_NAMESPACE: Uuid = Uuid::from_u128(0x2f6b_0c1d_8e3a_4f57_b9d2_6a1e_7c4f_0d38);

/// One scripted customer: the messages, when the conversation starts, and whether an
/// operator resolves it.
#[derive(Debug, Clone)]
struct Script {
    messages: Vec<String>,
    start: OffsetDateTime,
    /// Seconds the customer takes before each message after the first.
    pauses: Vec<u64>,
    resolve: bool,
}

/// Picks a script. The shop has orders ORD-1001 to ORD-1012; the wording follows the demo's
/// agents config (`fixtures/agents.yaml`). Cancellations and refunds change only ORD-1007
/// to ORD-1012: ORD-1001 to ORD-1006 stay as the shop starts them, for the walkthrough and
/// the browser tests, which look them up.
fn script(rng: &mut Rng, now: OffsetDateTime, days: u64) -> Script {
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
        // Confirmed changes are rarer than declined ones: only six orders can change, and
        // a second cancel or refund of one is refused by the shop (a tool error on the
        // dashboard), as it would be for a real customer.
        3 if rng.chance(25) => say(&["Please cancel {c}", "yes"]),
        5 if rng.chance(25) => say(&["I want a refund for {c}", "yes"]),
        3 | 4 => say(&["I'd like to cancel order {o}", "no"]),
        5 => say(&["I want a refund for {o}", "no"]),
        6 => say(&["What products do you sell?"]),
        7 => say(&["Where is my order?", "It is {o}"]),
        8 => say(&["I want to talk to a human"]),
        9 => say(&["This charge on {o} looks like fraud"]),
        10 => say(&["Please delete order {o}"]),
        _ => say(&["Do you have gift cards?"]),
    };
    Script {
        pauses: messages.iter().map(|_| rng.range(20, 180)).collect(),
        messages,
        start: now - time::Duration::seconds(age_secs(rng, days) as i64),
        resolve: rng.chance(40),
    }
}

/// How long ago a conversation starts: a fifth in the last 24 hours, a third in the rest of
/// the last week, the others in the rest of the `days`.
fn age_secs(rng: &mut Rng, days: u64) -> u64 {
    const DAY: u64 = 86_400;
    let span = days * DAY;
    let (from, to) = match rng.range(0, 100) {
        0..20 => (0, DAY),
        20..53 => (DAY, 7 * DAY),
        _ => (7 * DAY, span),
    };
    let (from, to) = (from.min(span), to.min(span));
    rng.range(from, to.max(from + 1)).min(span)
}

/// How one conversation went.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
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
    let started = Instant::now();
    let (client, js) = common::jetstream::connect(&args.nats).await?;
    let mut stream = common::jetstream::ensure_chat_stream(&js, &args.nats).await?;
    let events = stream
        .info()
        .await
        .context("cannot read the chat stream's state")?
        .state
        .messages;
    if args.if_empty && events > 0 {
        eprintln!("demo data not seeded: the chat stream holds {events} events already");
        return Ok(Seeded::default());
    }
    let mut rng = Rng(args.seed);
    let now = OffsetDateTime::now_utc();
    let scripts: Vec<Script> = (0..args.conversations)
        .map(|_| script(&mut rng, now, args.days))
        .collect();
    let mut held = futures::stream::iter(scripts)
        .map(|script| converse(&client, &js, script))
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
            "no demo conversation could be held at {}: are the workers running?",
            args.nats.nats_url
        );
    }
    seeded.dead_letters = publish_unreadable(&js, args.dead_letters).await?;
    eprintln!(
        "seeded {} conversations over the last {} days ({} turns, {} replies, {} escalated, \
         {} resolved; {} failed) and {} unreadable messages for the dead letters, in {:.1}s",
        seeded.conversations,
        args.days,
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

/// Holds one conversation on a new thread: stores each message, dated as the script says,
/// and waits for the workers to end its turn before the next.
async fn converse(
    client: &async_nats::Client,
    js: &Context,
    script: Script,
) -> anyhow::Result<Held> {
    let thread = ThreadId::generate();
    // Subscribed before the first message is stored: the turn events cannot be missed.
    let mut turn_events = client
        .subscribe(common::subjects::turn_event(&thread))
        .await
        .context("cannot subscribe to the thread's turn events")?;
    let mut held = Held::default();
    let mut at = script.start;
    for (n, (content, pause)) in script.messages.iter().zip(&script.pauses).enumerate() {
        let client_msg_id = format!("seed-{n}");
        let event_id = Uuid::new_v5(
            &SEED_NAMESPACE,
            format!("{thread}/{client_msg_id}").as_bytes(),
        );
        let now = OffsetDateTime::now_utc();
        at = at.min(now);
        let message = Envelope::new(
            event_id,
            thread.clone(),
            TurnId::from_uuid(Uuid::new_v5(&event_id, b"turn")),
            at,
            MessageReceived {
                content: content.clone(),
                client_msg_id: Some(client_msg_id),
                backdated_ms: Some((now - at).whole_milliseconds().max(0) as u64),
            },
        );
        common::user_messages::store(js, &message).await?;
        // The turn ends with `turn.completed` or `turn.failed`.
        loop {
            let delivered = tokio::time::timeout(TURN_TIMEOUT, turn_events.next())
                .await
                .with_context(|| format!("no end of turn within {TURN_TIMEOUT:?}"))?
                .context("the NATS connection closed")?;
            let event = Envelope::from_json(&delivered.payload)?;
            if event.turn_id != message.turn_id {
                continue;
            }
            at = event.occurred_at;
            match event.payload {
                Payload::AgentReplied(_) => held.replies += 1,
                Payload::ConversationEscalated(_) => held.escalated = true,
                Payload::TurnCompleted(_) | Payload::TurnFailed(_) => {
                    held.turns += 1;
                    break;
                }
                _ => {}
            }
        }
        at += time::Duration::seconds(*pause as i64);
    }
    if script.resolve && !held.escalated {
        resolve(js, &thread, at.min(OffsetDateTime::now_utc())).await?;
        held.resolved = true;
    }
    Ok(held)
}

/// Marks a conversation resolved, with the event the REST API's resolve publishes, dated
/// `at`.
async fn resolve(js: &Context, thread: &ThreadId, at: OffsetDateTime) -> anyhow::Result<()> {
    let event = Envelope::new(
        Uuid::new_v4(),
        thread.clone(),
        TurnId::from_uuid(Uuid::new_v4()),
        at,
        ConversationResolved {
            resolved_by: "operator".into(),
            operator: None,
            note: Some("Resolved by the demo seeding.".into()),
        },
    );
    let (subject, message) = common::events::publish_of(&event);
    js.send_publish(subject, message)
        .await
        .context("cannot publish to JetStream")?
        .await
        .context("JetStream did not store the resolve")?;
    Ok(())
}

/// Publishes messages that are not events onto new threads' user subjects, where the
/// workers take them, fail to read them and dead-letter them (at once: they never will be).
async fn publish_unreadable(js: &Context, count: u64) -> anyhow::Result<u64> {
    for n in 0..count {
        let subject = common::subjects::user_message(&ThreadId::generate());
        let payload = format!("{{not json: a garbled message from an old client, #{n}");
        js.publish(subject, payload.into())
            .await
            .context("cannot publish to JetStream")?
            .await
            .context("JetStream did not store the message")?;
    }
    Ok(count)
}
