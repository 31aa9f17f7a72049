//! The load: conversations over real WebSockets, each sending one message after the other
//! with a `client_msg_id`, as a careful client does: on no answer or `unavailable` it
//! reconnects (resuming with `thread_id`, `token`, `after_seq`) and sends the same id again,
//! until an ack or its deadline. Every message ends up recorded as ok (acked, with its
//! `seq`), failed (refused with a named code: it was not stored) or unknown (no answer: it
//! may or may not be stored). Each conversation's thread id, once it has one, goes into the
//! load's [`Threads`], where the operator desk ([`crate::desk`]) picks conversations to take
//! over.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acked: stored at this stream sequence.
    Ok(u64),
    /// Refused with this code: not stored.
    Failed(String),
    /// No answer before the deadline: stored at most once.
    Unknown,
}

/// One message the load sent.
#[derive(Debug, Clone)]
pub struct Op {
    pub thread_id: String,
    pub client_msg_id: String,
    pub outcome: Outcome,
    /// `unavailable` answers it got on the way (each followed by a resend).
    pub unavailable: u32,
}

/// How hard to push.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub conversations: usize,
    /// Pause between a conversation's acked message and its next one.
    pub pause: Duration,
    /// How long one message may take, resends included, before it is recorded unknown.
    pub message_deadline: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            conversations: 12,
            pause: Duration::from_millis(100),
            message_deadline: Duration::from_secs(60),
        }
    }
}

/// Questions the demo's agents answer, with the shop API's tools for most.
const QUESTIONS: [&str; 5] = [
    "Where is my order ORD-1001?",
    "Can you check ORD-1002 for me?",
    "What products do you sell?",
    "Where is my order ORD-1003?",
    "Hi there",
];

/// The thread ids of the load's conversations, in the order they got them.
#[derive(Debug, Clone, Default)]
pub struct Threads(Arc<Mutex<Vec<String>>>);

impl Threads {
    fn push(&self, thread_id: String) {
        self.0.lock().expect("not poisoned").push(thread_id);
    }

    /// The `n`th thread (wrapping around), if any conversation has one yet.
    pub fn nth(&self, n: usize) -> Option<String> {
        let threads = self.0.lock().expect("not poisoned");
        (!threads.is_empty()).then(|| threads[n % threads.len()].clone())
    }
}

/// A running load; [`Load::stop`] ends it and returns the record.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Op>>>,
    threads: Threads,
}

impl Load {
    pub fn start(ingresses: Vec<SocketAddr>, options: LoadOptions) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = Threads::default();
        let tasks = (0..options.conversations)
            .map(|n| {
                let addr = ingresses[n % ingresses.len()];
                let stop = stop.clone();
                let options = options.clone();
                let threads = threads.clone();
                tokio::spawn(async move { converse(addr, n, options, stop, threads).await })
            })
            .collect();
        Load {
            stop,
            tasks,
            threads,
        }
    }

    /// The conversations' thread ids, filled in as they get them.
    pub fn threads(&self) -> Threads {
        self.threads.clone()
    }

    /// Asks every conversation to finish the message in hand, and collects what they sent.
    pub async fn stop(self) -> Vec<Op> {
        self.stop.store(true, Ordering::SeqCst);
        let mut ops = Vec::new();
        for task in self.tasks {
            ops.extend(task.await.expect("a conversation task panicked"));
        }
        ops
    }
}

/// One conversation's connection state.
struct Conversation {
    addr: SocketAddr,
    socket: Option<Socket>,
    thread_id: Option<String>,
    token: Option<String>,
    last_seq: u64,
}

impl Conversation {
    async fn connect(&mut self) -> Option<()> {
        let query = match (&self.thread_id, &self.token) {
            (Some(thread), Some(token)) => {
                format!(
                    "?thread_id={thread}&token={token}&after_seq={}",
                    self.last_seq
                )
            }
            _ => String::new(),
        };
        let url = format!("ws://{}/ws{query}", self.addr);
        let (mut socket, _) = tokio::time::timeout(Duration::from_secs(5), connect_async(&url))
            .await
            .ok()?
            .ok()?;
        // The first frame is the session (a new thread, or the resumed one).
        let session = read_frame(&mut socket, Duration::from_secs(5)).await?;
        if session["type"] != "session" {
            return None;
        }
        if self.thread_id.is_none() {
            self.thread_id = session["thread_id"].as_str().map(str::to_owned);
            self.token = session["token"].as_str().map(str::to_owned);
        }
        self.socket = Some(socket);
        Some(())
    }

    /// Sends the message once; its answer: `Some(Ok(seq))`, `Some(Err(code))`, or `None` when
    /// none came (the connection is then dropped).
    async fn send_once(&mut self, id: &str, content: &str) -> Option<Result<u64, String>> {
        if self.socket.is_none() {
            self.connect().await?;
        }
        let socket = self.socket.as_mut()?;
        let frame = json!({"type": "message", "content": content, "client_msg_id": id});
        if socket.send(Message::text(frame.to_string())).await.is_err() {
            self.socket = None;
            return None;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = read_frame(socket, left).await else {
                self.socket = None;
                return None;
            };
            if let Some(seq) = frame["seq"].as_u64().filter(|_| frame["type"] == "event") {
                self.last_seq = self.last_seq.max(seq);
            }
            match frame["type"].as_str() {
                Some("ack") if frame["client_msg_id"] == id => {
                    return Some(Ok(frame["seq"].as_u64().unwrap_or_default()));
                }
                Some("error") if frame["client_msg_id"] == id => {
                    return Some(Err(frame["code"].as_str().unwrap_or("?").to_owned()));
                }
                Some("error") if frame["client_msg_id"].is_null() => {
                    // Sent before a close (a resume that cannot read the history).
                    self.socket = None;
                    return None;
                }
                _ => {}
            }
        }
    }
}

async fn read_frame(socket: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.next()).await.ok()?? {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn converse(
    addr: SocketAddr,
    n: usize,
    options: LoadOptions,
    stop: Arc<AtomicBool>,
    threads: Threads,
) -> Vec<Op> {
    let mut conversation = Conversation {
        addr,
        socket: None,
        thread_id: None,
        token: None,
        last_seq: 0,
    };
    let mut ops = Vec::new();
    let mut m = 0;
    // A conversation that never got a thread (the ingress was down the whole time) sends
    // nothing: there is no message to record.
    while !stop.load(Ordering::SeqCst) {
        let id = format!("c{n}-m{m}");
        let content = QUESTIONS[(n + m) % QUESTIONS.len()];
        let deadline = Instant::now() + options.message_deadline;
        let mut unavailable = 0;
        let outcome = loop {
            let had_thread = conversation.thread_id.is_some();
            let answer = conversation.send_once(&id, content).await;
            if let (false, Some(thread_id)) = (had_thread, &conversation.thread_id) {
                threads.push(thread_id.clone());
            }
            match answer {
                Some(Ok(seq)) => break Outcome::Ok(seq),
                Some(Err(code)) if code == "unavailable" => unavailable += 1,
                Some(Err(code)) => break Outcome::Failed(code),
                None => {}
            }
            if Instant::now() > deadline {
                // Unanswered or `unavailable` to the end: the last try may still be stored.
                break Outcome::Unknown;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if let Some(thread_id) = &conversation.thread_id {
            ops.push(Op {
                thread_id: thread_id.clone(),
                client_msg_id: id,
                outcome,
                unavailable,
            });
        } else if stop.load(Ordering::SeqCst) {
            break;
        }
        m += 1;
        tokio::time::sleep(options.pause).await;
    }
    if let Some(mut socket) = conversation.socket.take() {
        let _ = socket.close(None).await;
    }
    ops
}
