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
//! The demo's operators (`scripts/demo.sh` adds them; read from PostgreSQL by email) take
//! over the escalated conversations, as the desk's commands store it: `conversation.assigned`,
//! `operator.replied`, sometimes a `note.added` and a customer message held for them
//! (`turn.held`), then `conversation.released` (the agents answer the customer's next
//! question) or `conversation.resolved`. The latest `--unassigned` escalated conversations
//! are left waiting, so the desk's inbox is not empty on a first start.
//!
//! The conversations are spread over the last `--days` days (a fifth of them in the last 24
//! hours, so every range of the dashboard has traffic): each message carries `backdated_ms`,
//! and the workers date the events of its turn back by as much, so a turn keeps its real
//! duration. The ingress never backdates; only this command does.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_nats::jetstream::Context;
use clap::Args;
use common::config::{DatabaseArgs, NatsArgs};
use common::events::{
    ConversationAssigned, ConversationReleased, ConversationResolved, Envelope, MessageReceived,
    NoteAdded, OperatorRef, OperatorReplied, Payload, ThreadId, TurnId,
};
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
    /// Escalated conversations left waiting for a person in the desk's inbox (the latest
    /// ones); the demo's operators take over the others.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub unassigned: u64,
    /// PostgreSQL URL where the demo's operators (agent@demo.example, admin@demo.example)
    /// are read, to name them in the events of the conversations they take over. Without it,
    /// or without them, every escalated conversation is left waiting. It may hold a
    /// password, so `--help` names the variable without its value.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
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
    /// Seed of what a person does with the conversation, when the agents escalate it.
    person: u64,
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
        person: rng.next(),
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

/// The demo's operators, by the email they sign in with (`scripts/demo.sh` adds them); the
/// first takes over most conversations.
const DEMO_OPERATORS: [&str; 2] = ["agent@demo.example", "admin@demo.example"];

/// How one conversation went with the agents.
#[derive(Debug, Clone)]
struct Held {
    thread: ThreadId,
    /// Messages stored so far (the next one's number).
    messages: u64,
    turns: u64,
    replies: u64,
    escalated: bool,
    resolved: bool,
    /// When the conversation's next step happens.
    at: OffsetDateTime,
    /// Seed of what a person does with it, when it is escalated.
    person: u64,
}

/// What a seeding did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seeded {
    pub conversations: u64,
    pub failed_conversations: u64,
    pub turns: u64,
    pub replies: u64,
    /// Conversations the agents escalated (taken over or waiting).
    pub escalated: u64,
    /// Resolved ones, by the seeding or by an operator who took it over.
    pub resolved: u64,
    /// Escalated conversations a demo operator took over and answered.
    pub taken_over: u64,
    /// Of those, the ones handed back to the agents (the others are resolved).
    pub released: u64,
    /// Escalated conversations left waiting in the desk's inbox.
    pub waiting: u64,
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
    let operators = match &args.database_url {
        Some(url) => demo_operators(url).await?,
        None => Vec::new(),
    };
    if operators.is_empty() {
        eprintln!(
            "no demo operator found (DATABASE_URL unset, or no {}): every escalated conversation is left waiting",
            DEMO_OPERATORS.join(", ")
        );
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
    let mut escalated = Vec::new();
    while let Some(result) = held.next().await {
        match result {
            Ok(conversation) => {
                seeded.conversations += 1;
                seeded.turns += conversation.turns;
                seeded.replies += conversation.replies;
                seeded.resolved += u64::from(conversation.resolved);
                if conversation.escalated {
                    seeded.escalated += 1;
                    escalated.push(conversation);
                }
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

    // The latest escalations wait in the inbox; people took over the older ones.
    escalated.sort_by_key(|c| std::cmp::Reverse(c.at));
    let waiting = if operators.is_empty() {
        escalated.len()
    } else {
        (args.unassigned as usize).min(escalated.len())
    };
    seeded.waiting = waiting as u64;
    let mut taken = futures::stream::iter(escalated.into_iter().skip(waiting))
        .map(|conversation| take_over(&client, &js, conversation, &operators))
        .buffer_unordered(args.concurrency as usize);
    while let Some(result) = taken.next().await {
        match result {
            Ok(person) => {
                seeded.taken_over += 1;
                seeded.turns += person.turns;
                seeded.replies += person.replies;
                seeded.released += u64::from(person.released);
                seeded.resolved += u64::from(!person.released);
            }
            Err(err) => {
                seeded.failed_conversations += 1;
                tracing::warn!(error = %format!("{err:#}"), "a demo take-over failed");
            }
        }
    }
    drop(taken);

    seeded.dead_letters = publish_unreadable(&js, args.dead_letters).await?;
    eprintln!(
        "seeded {} conversations over the last {} days ({} turns, {} replies, {} escalated: \
         {} taken over by the demo operators, {} waiting in the inbox; {} resolved; {} failed) \
         and {} unreadable messages for the dead letters, in {:.1}s",
        seeded.conversations,
        args.days,
        seeded.turns,
        seeded.replies,
        seeded.escalated,
        seeded.taken_over,
        seeded.waiting,
        seeded.resolved,
        seeded.failed_conversations,
        seeded.dead_letters,
        started.elapsed().as_secs_f64()
    );
    Ok(seeded)
}

/// The demo's operators that exist and are not disabled, as their events name them.
async fn demo_operators(database_url: &str) -> anyhow::Result<Vec<OperatorRef>> {
    let pool = projections::connect(&DatabaseArgs {
        database_url: database_url.to_owned(),
        database_max_connections: 1,
    })
    .await?;
    let mut found = Vec::new();
    for email in DEMO_OPERATORS {
        let operator = api::operators::find_by_email(&pool, email)
            .await
            .with_context(|| format!("cannot read the operator {email}"))?;
        if let Some(operator) = operator.filter(|o| o.disabled_at.is_none()) {
            found.push(OperatorRef {
                operator_id: operator.id,
                name: operator.name,
            });
        }
    }
    pool.close().await;
    Ok(found)
}

/// How one turn ended.
#[derive(Debug, Default)]
struct Turn {
    replies: u64,
    escalated: bool,
}

/// Stores customer message number `n` of `thread`, dated `at`, and waits for the workers
/// to end its turn (`turn.completed`, `turn.failed`, or `turn.held` while a person has the
/// conversation); answers the turn and the time of its last event.
async fn say(
    js: &Context,
    turn_events: &mut async_nats::Subscriber,
    thread: &ThreadId,
    n: u64,
    content: &str,
    at: OffsetDateTime,
) -> anyhow::Result<(Turn, OffsetDateTime)> {
    let client_msg_id = format!("seed-{n}");
    let event_id = Uuid::new_v5(
        &SEED_NAMESPACE,
        format!("{thread}/{client_msg_id}").as_bytes(),
    );
    let now = OffsetDateTime::now_utc();
    let at = at.min(now);
    let message = Envelope::new(
        event_id,
        thread.clone(),
        TurnId::from_uuid(Uuid::new_v5(&event_id, b"turn")),
        at,
        MessageReceived {
            content: content.to_owned(),
            client_msg_id: Some(client_msg_id),
            backdated_ms: Some((now - at).whole_milliseconds().max(0) as u64),
        },
    );
    common::user_messages::store(js, &message).await?;
    let mut turn = Turn::default();
    loop {
        let delivered = tokio::time::timeout(TURN_TIMEOUT, turn_events.next())
            .await
            .with_context(|| format!("no end of turn within {TURN_TIMEOUT:?}"))?
            .context("the NATS connection closed")?;
        let event = Envelope::from_json(&delivered.payload)?;
        if event.turn_id != message.turn_id {
            continue;
        }
        if matches!(event.payload, Payload::AgentReplied(_)) {
            turn.replies += 1;
        }
        if event.payload.escalation().is_some() {
            turn.escalated = true;
        }
        if event.payload.is_terminal() {
            return Ok((turn, event.occurred_at));
        }
    }
}

/// Subscribes to a thread's turn events: done before its message is stored, so none is
/// missed.
async fn subscribe_turns(
    client: &async_nats::Client,
    thread: &ThreadId,
) -> anyhow::Result<async_nats::Subscriber> {
    client
        .subscribe(common::subjects::turn_event(thread))
        .await
        .context("cannot subscribe to the thread's turn events")
}

/// Holds one conversation on a new thread: stores each message, dated as the script says,
/// and waits for the workers to end its turn before the next.
async fn converse(
    client: &async_nats::Client,
    js: &Context,
    script: Script,
) -> anyhow::Result<Held> {
    let thread = ThreadId::generate();
    let mut turn_events = subscribe_turns(client, &thread).await?;
    let mut held = Held {
        thread: thread.clone(),
        messages: 0,
        turns: 0,
        replies: 0,
        escalated: false,
        resolved: false,
        at: script.start,
        person: script.person,
    };
    for (content, pause) in script.messages.iter().zip(&script.pauses) {
        let (turn, ended) = say(
            js,
            &mut turn_events,
            &thread,
            held.messages,
            content,
            held.at,
        )
        .await?;
        held.messages += 1;
        held.turns += 1;
        held.replies += turn.replies;
        held.escalated |= turn.escalated;
        held.at = ended + time::Duration::seconds(*pause as i64);
    }
    if script.resolve && !held.escalated {
        let at = held.at.min(OffsetDateTime::now_utc());
        let resolved = ConversationResolved {
            resolved_by: "operator".into(),
            operator: None,
            note: Some("Resolved by the demo seeding.".into()),
        };
        publish(js, &thread, at, resolved).await?;
        held.resolved = true;
    }
    Ok(held)
}

/// What a person did with an escalated conversation.
#[derive(Debug, Default)]
struct TakenOver {
    turns: u64,
    replies: u64,
    /// Handed back to the agents (else resolved).
    released: bool,
}

const OPERATOR_REPLIES: [&str; 3] = [
    "Hi, this is {name} from the support team. I have looked into it and sorted it out; \
     you will get an email with the details shortly.",
    "Hello, {name} here, thanks for waiting. I checked your account and everything is in order now.",
    "Hi! {name} from support. I have taken care of this for you; sorry for the trouble.",
];

const NOTES: [&str; 3] = [
    "Checked with billing: nothing else to do on our side.",
    "Customer asked for a person straight away; answered by hand, no follow-up needed.",
    "Looked at the order history: a one-off, keep an eye on further messages.",
];

/// A demo operator takes over an escalated conversation, as the desk's commands store it,
/// some minutes after its last event: assigned, maybe a customer message the agents hold,
/// a reply, maybe a note, then handed back (and the agents answer the next question) or
/// resolved.
async fn take_over(
    client: &async_nats::Client,
    js: &Context,
    held: Held,
    operators: &[OperatorRef],
) -> anyhow::Result<TakenOver> {
    let mut rng = Rng(held.person);
    // The first operator (the agent) takes most conversations.
    let operator = if rng.chance(75) {
        &operators[0]
    } else {
        &operators[operators.len() - 1]
    };
    let thread = &held.thread;
    let mut turn_events = subscribe_turns(client, thread).await?;
    let mut taken = TakenOver::default();
    let mut messages = held.messages;
    let mut at = held.at + time::Duration::minutes(rng.range(2, 30) as i64);
    let later = |at: OffsetDateTime, rng: &mut Rng| {
        (at + time::Duration::seconds(rng.range(20, 240) as i64)).min(OffsetDateTime::now_utc())
    };
    at = at.min(OffsetDateTime::now_utc());
    let assigned = ConversationAssigned {
        operator: operator.clone(),
        assigned_by: None,
    };
    publish(js, thread, at, assigned).await?;
    if rng.chance(50) {
        // The customer writes before the operator answers: held for the person.
        let content = "Hello? Is anyone there?";
        let (_, ended) = say(
            js,
            &mut turn_events,
            thread,
            messages,
            content,
            later(at, &mut rng),
        )
        .await?;
        messages += 1;
        taken.turns += 1;
        at = ended;
    }
    at = later(at, &mut rng);
    // A person introduces themselves by first name ("Dana", not "Dana (admin)").
    let first_name = operator.name.split_whitespace().next().unwrap_or("");
    let text = rng.pick(&OPERATOR_REPLIES).replace("{name}", first_name);
    let replied = OperatorReplied {
        text,
        operator: operator.clone(),
        client_msg_id: Some("seed-reply-0".into()),
    };
    publish(js, thread, at, replied).await?;
    if rng.chance(50) {
        at = later(at, &mut rng);
        let note = NoteAdded {
            text: rng.pick(&NOTES).to_owned(),
            operator: operator.clone(),
        };
        publish(js, thread, at, note).await?;
    }
    at = later(at, &mut rng);
    if rng.chance(50) {
        let released = ConversationReleased {
            operator: operator.clone(),
        };
        publish(js, thread, at, released).await?;
        taken.released = true;
        // Back with the agents: they answer the customer's next question. ORD-1001 to
        // ORD-1006 are only looked up (see `script`).
        let content = format!(
            "Thanks! And where is my order ORD-{}?",
            rng.range(1001, 1007)
        );
        let (turn, _) = say(
            js,
            &mut turn_events,
            thread,
            messages,
            &content,
            later(at, &mut rng),
        )
        .await?;
        taken.turns += 1;
        taken.replies += turn.replies;
    } else {
        let resolved = ConversationResolved {
            resolved_by: "operator".into(),
            operator: Some(operator.clone()),
            note: None,
        };
        publish(js, thread, at, resolved).await?;
    }
    Ok(taken)
}

/// Stores an event of `thread` dated `at` (not part of a turn: an id of its own), as the
/// REST API publishes it, and waits for the PubAck.
async fn publish(
    js: &Context,
    thread: &ThreadId,
    at: OffsetDateTime,
    payload: impl Into<Payload>,
) -> anyhow::Result<()> {
    let event = Envelope::new(
        Uuid::new_v4(),
        thread.clone(),
        TurnId::from_uuid(Uuid::new_v4()),
        at,
        payload,
    );
    let kind = event.payload.kind();
    let (subject, message) = common::events::publish_of(&event);
    js.send_publish(subject, message)
        .await
        .context("cannot publish to JetStream")?
        .await
        .with_context(|| format!("JetStream did not store the {kind}"))?;
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
