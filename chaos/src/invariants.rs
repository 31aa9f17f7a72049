//! The promises, checked on the stream, the dead letters, the read models and the processes
//! after a run, with the operator desk's events ([`crate::desk`]) among the customers':
//!
//! - I1 every acknowledged message is in the stream exactly once, at the `seq` its ack
//!   named; an unknown one at most once; a refused one not at all;
//! - I2 every stored user message has exactly one terminal outcome: `turn.completed` with
//!   one `agent.replied`, `turn.failed` with one dead letter, or `turn.held` and nothing else
//!   (a person has the conversation: an operator holds it, or it escalated);
//! - I3 no turn event refers to a missing message (an operator's events are no turn's: each
//!   has a turn id of its own);
//! - I4 per conversation, events are in order: a turn's events come after its message,
//!   a thread's turns one after the other, and an operator's reply only while that operator
//!   holds the conversation (after a take-over, before the release or resolve);
//! - I5 every projection table equals a fresh replay of the stream (`smart-support verify`),
//!   the desk's (`handoff`, `desk_hourly`, `desk_first_reply`) included;
//! - I6 dead letters are unique per source message;
//! - I7 no process panicked, and the long-running ones are back near their memory baseline;
//! - I8 every operator event the desk got a 202 for is in the stream exactly once, at the
//!   `seq` the answer named (of its kind, thread and operator; a reply with its
//!   `client_msg_id`); beyond those, no more of the operator's events of a kind in a thread
//!   than its attempts that got no answer (each stored at most once).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{consumer, stream::Stream};
use common::events::{Envelope, OperatorRef, Payload};
use futures::StreamExt;

use crate::desk::{Answer, DeskRecord};
use crate::load::{Op, Outcome};
use crate::system::{Service, System};

/// One message of a stream.
struct Raw {
    seq: u64,
    subject: String,
    headers: Option<async_nats::HeaderMap>,
    payload: Vec<u8>,
}

/// Every message of a stream, in order.
async fn read_all(stream: &mut Stream) -> anyhow::Result<Vec<Raw>> {
    let last = stream.info().await?.state.last_sequence;
    let mut all = Vec::new();
    if last == 0 {
        return Ok(all);
    }
    let mut messages = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await?
        .messages()
        .await?;
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .context("reading the stream stalled")?
    {
        let message = message?;
        let seq = message
            .info()
            .map_err(|err| anyhow::anyhow!("{err}"))?
            .stream_sequence;
        all.push(Raw {
            seq,
            subject: message.subject.to_string(),
            headers: message.headers.clone(),
            payload: message.payload.to_vec(),
        });
        if seq >= last {
            break;
        }
    }
    Ok(all)
}

/// The chat stream, decoded, and what the checks need of it.
struct Chat {
    /// Each event by sequence (`None`: bytes that are not an event).
    events: BTreeMap<u64, Option<Envelope>>,
    /// Sequences of user messages that are not events (they are dead-lettered).
    unreadable: Vec<u64>,
}

impl Chat {
    async fn read(stream: &mut Stream) -> anyhow::Result<Chat> {
        let mut unreadable = Vec::new();
        let mut events = BTreeMap::new();
        for raw in read_all(stream).await? {
            let event = Envelope::from_json(&raw.payload).ok();
            if event.is_none() && raw.subject.ends_with(".user") {
                unreadable.push(raw.seq);
            }
            events.insert(raw.seq, event);
        }
        Ok(Chat { events, unreadable })
    }

    fn user_messages(&self) -> impl Iterator<Item = (u64, &Envelope)> {
        self.events.iter().filter_map(|(seq, event)| {
            let event = event.as_ref()?;
            event.payload.is_user_message().then_some((*seq, event))
        })
    }

    /// The events of each turn, by turn id, in stream order (user messages excluded).
    fn turns(&self) -> HashMap<common::events::TurnId, Vec<(u64, &Envelope)>> {
        let mut turns: HashMap<_, Vec<_>> = HashMap::new();
        for (seq, event) in &self.events {
            if let Some(event) = event
                && !event.payload.is_user_message()
                && !by_operator(&event.payload)
            {
                turns.entry(event.turn_id).or_default().push((*seq, event));
            }
        }
        turns
    }

    /// User messages without a terminal event yet.
    fn unanswered(&self) -> usize {
        let turns = self.turns();
        let failed = self.failed_by_message();
        self.user_messages()
            .filter(|(_, message)| {
                !turns
                    .get(&message.turn_id)
                    .is_some_and(|events| events.iter().any(|(_, e)| e.payload.is_terminal()))
            })
            .count()
            + self
                .unreadable
                .iter()
                .filter(|seq| !failed.contains_key(seq))
                .count()
    }

    /// `turn.failed` events by the sequence of the message they end.
    fn failed_by_message(&self) -> HashMap<u64, usize> {
        let mut failed = HashMap::new();
        for event in self.events.values().flatten() {
            if let Payload::TurnFailed(f) = &event.payload {
                *failed.entry(f.message_seq).or_default() += 1;
            }
        }
        failed
    }
}

/// Whether an operator stored this event (a desk command or a resolve): it belongs to no
/// turn (its turn id is its own).
fn by_operator(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::ConversationAssigned(_)
            | Payload::OperatorReplied(_)
            | Payload::NoteAdded(_)
            | Payload::ConversationReleased(_)
            | Payload::ConversationResolved(_)
    )
}

/// The operator an operator's event names (a resolve from before operators signed in
/// names none).
fn operator_of(payload: &Payload) -> Option<&OperatorRef> {
    match payload {
        Payload::ConversationAssigned(e) => Some(&e.operator),
        Payload::OperatorReplied(e) => Some(&e.operator),
        Payload::NoteAdded(e) => Some(&e.operator),
        Payload::ConversationReleased(e) => Some(&e.operator),
        Payload::ConversationResolved(e) => e.operator.as_ref(),
        _ => None,
    }
}

/// Memory of the long-running processes after the warm-up: (pid, KiB) by service name.
pub type Baseline = HashMap<String, (u32, u64)>;

pub fn memory(system: &System) -> Baseline {
    system
        .services()
        .filter_map(|s| Some((s.name.clone(), (s.pid()?, s.rss_kib()?))))
        .collect()
}

/// What a run may relax.
#[derive(Debug, Clone)]
pub struct Expect {
    /// I2: every stored message gets its terminal outcome (not when the store is full: then
    /// a turn may stop short of its terminal event, its reply stored or not).
    pub every_message_answered: bool,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            every_message_answered: true,
        }
    }
}

/// What the checks found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Every promise that did not hold (empty: all held).
    pub violations: Vec<String>,
    /// User messages closed by `turn.held` (a person had the conversation).
    pub held: usize,
}

/// Checks I1–I8 after a run whose customers sent `ops` and whose desk did `desk`.
pub async fn check(
    system: &System,
    ops: &[Op],
    desk: &DeskRecord,
    baseline: &Baseline,
    expect: &Expect,
) -> anyhow::Result<Findings> {
    let mut violations = Vec::new();
    let js = &system.js;
    let mut chat_stream = js.get_stream(common::subjects::CHAT_STREAM).await?;

    // Quiescence: every stored message answered (bounded: what is left is an I2 violation).
    let wait = if expect.every_message_answered {
        120
    } else {
        10
    };
    let deadline = Instant::now() + Duration::from_secs(wait);
    let chat = loop {
        let chat = Chat::read(&mut chat_stream).await?;
        if chat.unanswered() == 0 || Instant::now() > deadline {
            break chat;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let dead_letters = match js.get_stream(common::subjects::DEAD_LETTER_STREAM).await {
        Ok(mut stream) => read_all(&mut stream).await?,
        Err(_) => Vec::new(),
    };
    let letters_by_source: HashMap<u64, usize> = dead_letters
        .iter()
        .filter_map(|raw| {
            raw.headers
                .as_ref()?
                .get(common::dead_letters::SOURCE_SEQ_HEADER)?
                .as_str()
                .parse()
                .ok()
        })
        .fold(HashMap::new(), |mut counts, seq| {
            *counts.entry(seq).or_default() += 1;
            counts
        });

    // I1.
    let mut stored: HashMap<(String, String), Vec<u64>> = HashMap::new();
    for (seq, message) in chat.user_messages() {
        if let Payload::MessageReceived(received) = &message.payload
            && let Some(id) = &received.client_msg_id
        {
            stored
                .entry((message.thread_id.to_string(), id.clone()))
                .or_default()
                .push(seq);
        }
    }
    for op in ops {
        let seqs = stored
            .get(&(op.thread_id.clone(), op.client_msg_id.clone()))
            .cloned()
            .unwrap_or_default();
        match &op.outcome {
            Outcome::Ok(seq) if seqs != [*seq] => violations.push(format!(
                "I1: {}/{} acked at seq {seq} is stored at {seqs:?}",
                op.thread_id, op.client_msg_id
            )),
            Outcome::Unknown if seqs.len() > 1 => violations.push(format!(
                "I1: {}/{} (unknown) is stored {} times: {seqs:?}",
                op.thread_id,
                op.client_msg_id,
                seqs.len()
            )),
            Outcome::Failed(code) if !seqs.is_empty() => violations.push(format!(
                "I1: {}/{} was refused ({code}) but is stored at {seqs:?}",
                op.thread_id, op.client_msg_id
            )),
            _ => {}
        }
    }

    // I2, I4 (within a turn).
    let turns = chat.turns();
    let mut by_thread: HashMap<String, Vec<(u64, &Envelope)>> = HashMap::new();
    for (seq, message) in chat.user_messages() {
        by_thread
            .entry(message.thread_id.to_string())
            .or_default()
            .push((seq, message));
        let events = turns
            .get(&message.turn_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let count = |kind: &str| {
            events
                .iter()
                .filter(|(_, e)| e.payload.kind() == kind)
                .count()
        };
        // The agents' end of a turn: `turn.completed` (version 1) or the reply that carries
        // it (version 2).
        let completions = events
            .iter()
            .filter(|(_, e)| e.payload.completion().is_some())
            .count();
        let (completed, failed, replies, held) = (
            completions,
            count("turn.failed"),
            count("agent.replied"),
            count("turn.held"),
        );
        let letters = letters_by_source.get(&seq).copied().unwrap_or(0);
        let ok = (completed == 1 && failed == 0 && replies == 1 && held == 0)
            || (failed == 1 && completed == 0 && letters == 1 && held == 0)
            || (held == 1 && completed + failed + replies == 0 && events.len() == 1)
            // A full store may refuse a turn's last events: unfinished, not yet answered twice.
            || (!expect.every_message_answered && completed + failed == 0 && replies <= 1);
        if !ok {
            let stored: Vec<String> = events
                .iter()
                .map(|(at, e)| format!("{at} {}", e.payload.kind()))
                .collect();
            violations.push(format!(
                "I2: message at seq {seq} ({}) has {completed} completions, {failed} turn.failed, \
                 {held} turn.held, {replies} agent.replied, {letters} dead letters; its turn: [{}]",
                message.thread_id,
                stored.join(", ")
            ));
        }
        if let Some((early, event)) = events.iter().find(|(s, _)| *s < seq) {
            violations.push(format!(
                "I4: {} at seq {early} comes before its message at seq {seq}",
                event.payload.kind()
            ));
        }
    }
    // I4 (across turns): a thread's next turn starts after the previous one ended.
    for messages in by_thread.values() {
        for pair in messages.windows(2) {
            let ended = turns
                .get(&pair[0].1.turn_id)
                .and_then(|events| events.iter().find(|(_, e)| e.payload.is_terminal()))
                .map(|(seq, _)| *seq);
            let started = turns
                .get(&pair[1].1.turn_id)
                .and_then(|events| events.first())
                .map(|(seq, _)| *seq);
            if let (Some(ended), Some(started)) = (ended, started)
                && started < ended
            {
                violations.push(format!(
                    "I4: the turn of seq {} started at {started}, before the turn of seq {} ended at {ended}",
                    pair[1].0, pair[0].0
                ));
            }
        }
    }
    // I2 for user messages that are not events: one `turn.failed`, one dead letter.
    let failed_by_message = chat.failed_by_message();
    for seq in &chat.unreadable {
        let failed = failed_by_message.get(seq).copied().unwrap_or(0);
        let letters = letters_by_source.get(seq).copied().unwrap_or(0);
        if failed != 1 || letters != 1 {
            violations.push(format!(
                "I2: the unreadable message at seq {seq} has {failed} turn.failed and {letters} dead letters"
            ));
        }
    }
    // I3 (the turn of an unreadable message is its `turn.failed`, which names its seq).
    let user_turns: std::collections::HashSet<_> =
        chat.user_messages().map(|(_, m)| m.turn_id).collect();
    let ends_unreadable = |event: &Envelope| matches!(&event.payload, Payload::TurnFailed(f) if chat.unreadable.contains(&f.message_seq));
    for (turn, events) in &turns {
        if !user_turns.contains(turn) && !events.iter().all(|(_, e)| ends_unreadable(e)) {
            violations.push(format!(
                "I3: {} event(s) from seq {} refer to turn {turn}, which has no message",
                events.len(),
                events[0].0
            ));
        }
    }
    for (seq, event) in &chat.events {
        if event.is_none() && !chat.unreadable.contains(seq) {
            violations.push(format!("I3: seq {seq} is not an event"));
        }
    }
    // I4 (the desk): an operator's reply only while that operator holds the conversation, as
    // the API reads it (the thread's last event on its operator subject).
    let mut holders: HashMap<String, Option<&OperatorRef>> = HashMap::new();
    for (seq, event) in chat
        .events
        .iter()
        .filter_map(|(s, e)| Some((s, e.as_ref()?)))
    {
        let holder = holders.entry(event.thread_id.to_string()).or_default();
        match &event.payload {
            Payload::ConversationAssigned(a) => *holder = Some(&a.operator),
            Payload::ConversationReleased(_) | Payload::ConversationResolved(_) => *holder = None,
            Payload::OperatorReplied(r)
                if holder.is_none_or(|h| h.operator_id != r.operator.operator_id) =>
            {
                violations.push(format!(
                    "I4: operator.replied at seq {seq} ({}) by {}, who does not hold the conversation",
                    event.thread_id, r.operator.name
                ));
            }
            _ => {}
        }
    }
    // I8.
    violations.extend(desk_events(&chat, desk));
    // I6.
    for (source, count) in &letters_by_source {
        if *count > 1 {
            violations.push(format!(
                "I6: {count} dead letters for the message at seq {source}"
            ));
        }
    }
    // I5.
    if let Err(err) = verify(system, &mut chat_stream).await {
        violations.push(format!("I5: {err:#}"));
    }
    // I7.
    for service in system.services() {
        violations.extend(panics(service));
        if let (Some((pid, before)), Some(now)) = (baseline.get(&service.name), service.rss_kib())
            && service.pid() == Some(*pid)
            && now > (before * 3 / 2).max(before + 48 * 1024)
        {
            violations.push(format!(
                "I7: {} uses {} MiB, up from {} MiB after the warm-up",
                service.name,
                now / 1024,
                before / 1024
            ));
        }
    }
    let held = chat
        .events
        .values()
        .flatten()
        .filter(|e| matches!(e.payload, Payload::TurnHeld(_)))
        .count();
    Ok(Findings { violations, held })
}

/// I8: each event the desk got a 202 for is at the `seq` the answer named, once; and no more
/// of the operator's events of a kind in a thread than the accepted ones and the attempts
/// that got no answer.
fn desk_events(chat: &Chat, desk: &DeskRecord) -> Vec<String> {
    let mut violations = Vec::new();
    let Some(operator) = &desk.operator_id else {
        return violations;
    };
    let ours = |event: &Envelope| {
        operator_of(&event.payload).is_some_and(|o| o.operator_id.to_string() == *operator)
    };
    let reply_id = |event: &Envelope| match &event.payload {
        Payload::OperatorReplied(r) => r.client_msg_id.clone(),
        _ => None,
    };
    // The operator's events in the stream by (thread, kind), and its replies by
    // (thread, client_msg_id).
    let mut stored: HashMap<(String, &str), Vec<u64>> = HashMap::new();
    let mut replies: HashMap<(String, String), usize> = HashMap::new();
    for (seq, event) in chat
        .events
        .iter()
        .filter_map(|(s, e)| Some((*s, e.as_ref()?)))
    {
        if !ours(event) {
            continue;
        }
        let thread = event.thread_id.to_string();
        if let Some(id) = reply_id(event) {
            *replies.entry((thread.clone(), id)).or_default() += 1;
        }
        stored
            .entry((thread, event.payload.kind()))
            .or_default()
            .push(seq);
    }
    let mut accepted: HashMap<(String, &str), BTreeSet<u64>> = HashMap::new();
    let mut unknown: HashMap<(String, &str), usize> = HashMap::new();
    for op in &desk.ops {
        let key = (op.thread_id.clone(), op.command.kind());
        let seq = match op.answer {
            Answer::Accepted(seq) => seq,
            Answer::Unknown => {
                *unknown.entry(key).or_default() += 1;
                continue;
            }
            Answer::Refused(_) => continue,
        };
        // An attempt again may be answered with the first one's sequence: checked once.
        if !accepted.entry(key).or_default().insert(seq) {
            continue;
        }
        let found = chat.events.get(&seq).and_then(Option::as_ref);
        let right = found.is_some_and(|event| {
            event.payload.kind() == op.command.kind()
                && event.thread_id.as_str() == op.thread_id
                && ours(event)
                && reply_id(event) == op.client_msg_id
        });
        if !right {
            let there = found.map_or("no event".to_owned(), |e| {
                format!("{} in {}", e.payload.kind(), e.thread_id)
            });
            violations.push(format!(
                "I8: {} in {} accepted at seq {seq}, where the stream has {there}",
                op.command.kind(),
                op.thread_id,
            ));
        }
        if let Some(id) = &op.client_msg_id {
            let copies = replies
                .get(&(op.thread_id.clone(), id.clone()))
                .copied()
                .unwrap_or(0);
            if copies != 1 {
                violations.push(format!(
                    "I8: the reply {id} in {} (accepted at seq {seq}) is stored {copies} times",
                    op.thread_id
                ));
            }
        }
    }
    for (key, seqs) in &stored {
        let accepted = accepted.get(key).map_or(0, BTreeSet::len);
        let unknown = unknown.get(key).copied().unwrap_or(0);
        if seqs.len() > accepted + unknown {
            violations.push(format!(
                "I8: {} {} by the desk's operator in {} at {seqs:?}, for {accepted} accepted and \
                 {unknown} unanswered attempts",
                seqs.len(),
                key.1,
                key.0,
            ));
        }
    }
    violations
}

fn panics(service: &Service) -> Option<String> {
    let log = service.log_text();
    let line = log.lines().find(|line| line.contains("panicked at"))?;
    Some(format!("I7: {} panicked: {line}", service.name))
}

/// Waits until the projector has applied the whole stream, then runs `smart-support verify`
/// (a replay into a scratch schema compared row by row with the live tables).
async fn verify(system: &System, chat: &mut Stream) -> anyhow::Result<()> {
    let last = chat.info().await?.state.last_sequence;
    let http = testkit::http_client();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let health: serde_json::Value = match http
            .get(format!("{}/api/health", system.api()))
            .send()
            .await
        {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        if health["projection"]["checkpoint"].as_u64() >= Some(last) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the projection did not reach seq {last} within 120 s: {health}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let binary = crate::system::binary("smart-support")?;
    // A replay that fails to read (not a difference) is tried again.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let output = Command::new(&binary)
            .args(["verify", "--quiet"])
            .env("NATS_URL", system.nats.url())
            .envs(testkit::nats_env("admin"))
            .env("DATABASE_URL", &system.database_url)
            .env("RUST_LOG", "warn")
            .output()?;
        match output.status.code() {
            Some(0) => return Ok(()),
            Some(1) => anyhow::bail!(
                "the read models differ from a replay:\n{}",
                String::from_utf8_lossy(&output.stdout)
            ),
            _ if attempt < 3 => tokio::time::sleep(Duration::from_secs(2)).await,
            _ => anyhow::bail!(
                "smart-support verify failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
}
