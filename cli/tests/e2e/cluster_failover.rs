//! Scale-out on a 3-node NATS cluster: the chat stream replicated three times (R3), two
//! instances of every service (ingress, worker, projector, REST) against it, many
//! conversations chatting over WebSockets, and the node leading the stream killed with
//! SIGKILL mid-load and restarted later. Every acknowledged message is stored and answered
//! exactly once, its reply reaches the client's socket, and the projections equal a replay
//! of the stream.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{
    consumer::{AckPolicy, DeliverPolicy, pull},
    stream::Stream,
};
use common::subjects::CHAT_STREAM;
use futures::StreamExt;
use projections::projector::{CONVERSATIONS as PROJECTION, rebuild};
use serde_json::{Value, json};
use testkit::NatsCluster;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Socket, Stack, connect_to, next_frame, resume_query, send_json};

/// Conversations chatting at once, half on each instance's ingress.
const CONVERSATIONS: usize = 24;
/// Each conversation sends its next message this long after the previous one was acked.
const PACE: Duration = Duration::from_millis(250);
/// Acks seen before the kill, after it (the cluster serves again) and after the restart.
const ACKS_BEFORE_KILL: usize = 100;
const ACKS_AFTER_KILL: usize = 150;
const ACKS_AFTER_RESTART: usize = 100;
/// Generous: a debug build on a loaded 2-core machine, and a leader election in between.
const PHASE_TIMEOUT: Duration = Duration::from_secs(45);
/// What the conversations ask: the rule engine answers each with one reply, no tool call.
const QUESTIONS: [&str; 2] = ["Where is my order?", "Hello"];

/// What the clients saw, shared by their tasks.
#[derive(Default)]
struct Seen {
    /// client_msg_id → (thread, seq) of every ack.
    acked: BTreeMap<String, (String, u64)>,
    /// When each ack came, in order.
    ack_times: Vec<Instant>,
    /// When a send was answered `unavailable` (it is then resent with the same id).
    unavailable: Vec<Instant>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_stream_leader_under_load_loses_no_acked_message_and_answers_each_once() {
    let started = Instant::now();
    let mut cluster = tokio::task::block_in_place(NatsCluster::start);
    let stack = Stack::start_on_cluster(&cluster, |args| {
        args.ingress.rate_limit_messages = 10_000;
    })
    .await;
    let addrs = [stack.addr, stack.start_instance().await];

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CONVERSATIONS)
        .map(|n| tokio::spawn(chat(addrs[n % 2], n, seen.clone(), stop.clone())))
        .collect();
    let acks = || seen.lock().unwrap().acked.len();

    eventually("the first acks are in", || acks() >= ACKS_BEFORE_KILL).await;
    let leader = tokio::task::block_in_place(|| {
        testkit::wait_until("CHAT has a leader", PHASE_TIMEOUT, || {
            cluster.stream_leader(CHAT_STREAM).is_some()
        });
        cluster.stream_leader(CHAT_STREAM).unwrap()
    });
    let acked_at_kill = acks();
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| cluster.kill(leader));
    eventually("acks go on after the kill", || {
        acks() >= acked_at_kill + ACKS_AFTER_KILL
    })
    .await;
    let new_leader = cluster.stream_leader(CHAT_STREAM);
    assert!(
        new_leader.is_some_and(|node| node != leader),
        "another node leads CHAT: {new_leader:?}, killed {}",
        cluster.name(leader)
    );

    tokio::task::block_in_place(|| cluster.restart(leader));
    let acked_at_restart = acks();
    eventually("acks go on after the restart", || {
        acks() >= acked_at_restart + ACKS_AFTER_RESTART
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(PHASE_TIMEOUT, client)
            .await
            .expect("a client finishes its last message")
            .unwrap();
    }
    tokio::task::block_in_place(|| {
        testkit::wait_until("the restarted node has caught up", PHASE_TIMEOUT, || {
            cluster.stream_is_current(CHAT_STREAM)
        });
    });

    let (_client, js) = common::jetstream::connect(&stack.args.nats).await.unwrap();
    let stream = js.get_stream(CHAT_STREAM).await.unwrap();
    let turns = eventually_async("every stored message's turn has ended", || async {
        let turns = Turns::read(&stream).await;
        turns.all_ended().then_some(turns)
    })
    .await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());

    // No acked message is missing: each is stored at the seq its ack named, once.
    for (id, (thread, seq)) in &seen.acked {
        let stored = turns.by_client_msg_id.get(id);
        assert_eq!(
            stored,
            Some(&vec![(thread.clone(), *seq)]),
            "acked message {id} (seq {seq}) is stored once at that seq"
        );
    }
    // Exactly one reply, which ends the turn, for every stored message (acked or not).
    let wrong: Vec<String> = turns
        .by_turn
        .iter()
        .filter(|(_, kinds)| {
            count(kinds, "message.received") != 1
                || count(kinds, "agent.replied") != 1
                || count(kinds, "turn.completed") != 0
        })
        .map(|(turn, kinds)| format!("turn {turn}: {kinds:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "turns not answered exactly once:\n{}",
        wrong.join("\n")
    );

    let pool = projections::connect(&stack.args.database).await.unwrap();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    eventually_async("the projector has applied the whole stream", || async {
        let at = projections::read_models::checkpoint::load(&pool, PROJECTION)
            .await
            .unwrap();
        (at == last).then_some(())
    })
    .await;
    // The replay's pull can still meet the election's aftermath ("no responders" while the
    // restarted node catches up): a failed replay is tried again, a difference never is.
    // (The rebuild/verify reader does not resume a broken pull by itself yet.)
    let mut attempts = 0;
    let verified = loop {
        attempts += 1;
        match rebuild::verify(
            &pool,
            &stack.args.database,
            &stream,
            &rebuild::Options::default(),
            10,
        )
        .await
        {
            Ok(verified) => break verified,
            Err(err) if attempts < 5 => {
                eprintln!("verify attempt {attempts} failed, trying again: {err:#}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(err) => panic!("verify failed {attempts} times: {err:#}"),
        }
    };
    assert_eq!(verified.checkpoint, last);
    assert!(
        verified.differences.is_empty(),
        "the projections differ from a replay:\n{}",
        verified.differences.join("\n")
    );

    // What fail-over looked like to the clients (docs/deployment.md quotes these lines).
    let gap = seen
        .ack_times
        .windows(2)
        .filter(|pair| pair[1] > killed_at)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    let unavailable_for = match (seen.unavailable.first(), seen.unavailable.last()) {
        (Some(first), Some(last)) => *last - *first,
        _ => Duration::ZERO,
    };
    eprintln!(
        "cluster fail-over: killed {} (leader of {CHAT_STREAM}), new leader {}; {} messages acked, \
         {} stored, {} sends answered unavailable over {unavailable_for:.1?}; longest pause \
         between acks after the kill {gap:.1?}; whole test {:.1?}",
        cluster.name(leader),
        cluster.name(new_leader.unwrap()),
        seen.acked.len(),
        turns.by_turn.len(),
        seen.unavailable.len(),
        started.elapsed(),
    );
}

/// One conversation: sends a message, waits for its ack (resending it with the same
/// `client_msg_id` after `unavailable` or a broken connection), waits `PACE` while reading
/// its events, until `stop`; then reads on until every acked message's reply has come on
/// the socket.
async fn chat(addr: SocketAddr, n: usize, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>) {
    let mut conversation = Conversation::open(addr).await;
    let thread = conversation.session["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut acked = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let id = format!("c{n}-m{}", acked.len());
        let content = QUESTIONS[acked.len() % QUESTIONS.len()];
        let seq = conversation.send(&id, content, &seen).await;
        {
            let mut seen = seen.lock().unwrap();
            seen.acked.insert(id.clone(), (thread.clone(), seq));
            seen.ack_times.push(Instant::now());
        }
        acked.push(id);
        // Read the thread's events meanwhile, so its outbound buffer never fills.
        let next = tokio::time::Instant::now() + PACE;
        while let Read::Frame(_) | Read::Reconnected = conversation.read(next).await {}
    }
    let deadline = tokio::time::Instant::now() + PHASE_TIMEOUT;
    while !acked.iter().all(|id| conversation.replied_to(id)) {
        if let Read::TimedOut = conversation.read(deadline).await {
            let missing: Vec<&String> = acked
                .iter()
                .filter(|id| !conversation.replied_to(id))
                .collect();
            panic!("no reply on the socket of {thread} to acked messages {missing:?}");
        }
    }
}

/// A conversation's socket and what came on it.
struct Conversation {
    addr: SocketAddr,
    session: Value,
    socket: Socket,
    /// client_msg_id → turn id, from the `message.received` events on the socket.
    turns: BTreeMap<String, String>,
    /// Turns whose `agent.replied` came on the socket.
    replied: BTreeSet<String>,
}

/// What [`Conversation::read`] got.
enum Read {
    Frame(Value),
    TimedOut,
    /// The connection broke and the thread was resumed on a new one (its whole history
    /// comes again); a message waiting for its answer must be sent again.
    Reconnected,
}

impl Conversation {
    async fn open(addr: SocketAddr) -> Conversation {
        let mut socket = connect_to(addr, "").await;
        let session = next_frame(&mut socket).await;
        assert_eq!(session["type"], "session", "{session}");
        Conversation {
            addr,
            session,
            socket,
            turns: BTreeMap::new(),
            replied: BTreeSet::new(),
        }
    }

    /// Sends a message until it is acked; returns its `seq`.
    async fn send(&mut self, id: &str, content: &str, seen: &Mutex<Seen>) -> u64 {
        loop {
            let message = json!({"type": "message", "content": content, "client_msg_id": id});
            send_json(&mut self.socket, message).await;
            // Every message is answered within STORE_TIMEOUT (10 s).
            let deadline = tokio::time::Instant::now() + PHASE_TIMEOUT;
            let answer = loop {
                match self.read(deadline).await {
                    Read::Frame(frame)
                        if matches!(frame["type"].as_str(), Some("ack" | "error"))
                            && frame["client_msg_id"] == id =>
                    {
                        break Some(frame);
                    }
                    Read::Frame(_) => {}
                    Read::Reconnected => break None,
                    Read::TimedOut => panic!("message {id} was not answered"),
                }
            };
            let Some(answer) = answer else { continue };
            if answer["type"] == "ack" {
                return answer["seq"].as_u64().expect("an ack has a seq");
            }
            assert_eq!(answer["code"], "unavailable", "{answer}");
            seen.lock().unwrap().unavailable.push(Instant::now());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The next frame before `until`, with its event recorded.
    async fn read(&mut self, until: tokio::time::Instant) -> Read {
        loop {
            match tokio::time::timeout_at(until, self.socket.next()).await {
                Err(_) => return Read::TimedOut,
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                    self.record(&frame);
                    return Read::Frame(frame);
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(_) => {
                    self.socket = connect_to(self.addr, &resume_query(&self.session, None)).await;
                    return Read::Reconnected;
                }
            }
        }
    }

    fn record(&mut self, frame: &Value) {
        let event = &frame["event"];
        let turn = event["turn_id"].as_str().unwrap_or_default().to_owned();
        match event["kind"].as_str() {
            Some("message.received") => {
                if let Some(id) = event["client_msg_id"].as_str() {
                    self.turns.insert(id.to_owned(), turn);
                }
            }
            Some("agent.replied") => {
                self.replied.insert(turn);
            }
            _ => {}
        }
    }

    fn replied_to(&self, client_msg_id: &str) -> bool {
        self.turns
            .get(client_msg_id)
            .is_some_and(|turn| self.replied.contains(turn))
    }
}

/// The stream, read back whole and grouped.
struct Turns {
    /// turn id → the kinds of its events, in stream order.
    by_turn: BTreeMap<String, Vec<String>>,
    /// client_msg_id → (thread, seq) of each stored `message.received` with that id.
    by_client_msg_id: BTreeMap<String, Vec<(String, u64)>>,
}

impl Turns {
    async fn read(stream: &Stream) -> Turns {
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut turns = Turns {
            by_turn: BTreeMap::new(),
            by_client_msg_id: BTreeMap::new(),
        };
        if last == 0 {
            return turns;
        }
        let consumer = stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        loop {
            let message = tokio::time::timeout(PHASE_TIMEOUT, messages.next())
                .await
                .expect("the stream is read back")
                .expect("the consumer goes on")
                .unwrap();
            let seq = message.info().unwrap().stream_sequence;
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            let kind = event["kind"].as_str().unwrap_or("?").to_owned();
            if let Some(id) = event["client_msg_id"].as_str() {
                let thread = event["thread_id"].as_str().unwrap().to_owned();
                let stored = turns.by_client_msg_id.entry(id.to_owned()).or_default();
                stored.push((thread, seq));
            }
            let turn = event["turn_id"].as_str().unwrap_or("?").to_owned();
            turns.by_turn.entry(turn).or_default().push(kind);
            if seq >= last {
                return turns;
            }
        }
    }

    /// Whether every turn has ended (replied, which ends it, or failed).
    fn all_ended(&self) -> bool {
        self.by_turn.values().all(|kinds| {
            kinds
                .iter()
                .any(|k| k == "agent.replied" || k == "turn.failed")
        })
    }
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

/// Polls `cond` every 50 ms until it holds; panics after `PHASE_TIMEOUT`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    eventually_async(what, || std::future::ready(cond().then_some(()))).await;
}

/// Polls `probe` every 50 ms until it returns `Some`; panics after `PHASE_TIMEOUT`.
async fn eventually_async<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {PHASE_TIMEOUT:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
