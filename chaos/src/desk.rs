//! The operator desk beside the load: one operator who signs in as a person does
//! (`POST /api/auth/login`, then `Authorization: Bearer`) and, while the customers of
//! [`crate::load`] keep sending, takes their conversations over one after the other — assign,
//! reply, note, then release or resolve, with short pauses — so that the workers close the
//! customer messages that arrive meanwhile with `turn.held`. Every attempt of a command is
//! recorded with what became of it: accepted (202, at the `seq` the answer named), refused (a
//! 4xx: nothing stored) or unknown (a 5xx or no answer: stored at most once), for I8
//! ([`crate::invariants`]). A fault makes commands fail for a while: the desk tries each again
//! until its deadline, then moves on to the next step or conversation; it never panics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::load::Threads;
use crate::system::{OPERATOR_EMAIL, OPERATOR_PASSWORD};

/// How long one request may take (the API's own time-outs are shorter).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before trying a command (or the sign-in) again.
const RETRY_DELAY: Duration = Duration::from_millis(200);
/// How long the command in hand may still be tried once the desk is asked to stop.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A desk command, named by the event it stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    Assign,
    Reply,
    Note,
    Release,
    Resolve,
}

impl Command {
    /// The `kind` of the event it stores.
    pub fn kind(self) -> &'static str {
        match self {
            Command::Assign => "conversation.assigned",
            Command::Reply => "operator.replied",
            Command::Note => "note.added",
            Command::Release => "conversation.released",
            Command::Resolve => "conversation.resolved",
        }
    }

    /// Its path under `/api/conversations/{thread_id}/`.
    fn path(self) -> &'static str {
        match self {
            Command::Assign => "assign",
            Command::Reply => "messages",
            Command::Note => "notes",
            Command::Release => "release",
            Command::Resolve => "resolve",
        }
    }
}

/// What became of one attempt of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 202: stored at this stream sequence.
    Accepted(u64),
    /// A 4xx with this code: nothing was stored.
    Refused(String),
    /// A 5xx, or no answer: stored at most once.
    Unknown,
}

/// One attempt of a desk command.
#[derive(Debug, Clone)]
pub struct DeskOp {
    pub thread_id: String,
    pub command: Command,
    /// A reply's `client_msg_id`: the same on every attempt of one reply.
    pub client_msg_id: Option<String>,
    pub answer: Answer,
}

/// What the desk did.
#[derive(Debug, Clone, Default)]
pub struct DeskRecord {
    /// The operator's id, once signed in.
    pub operator_id: Option<String>,
    /// Every attempt, in order.
    pub ops: Vec<DeskOp>,
}

impl DeskRecord {
    /// The events the desk got a 202 for (an attempt again after an unknown one may be
    /// answered with the sequence of the first: counted once).
    pub fn accepted(&self) -> usize {
        self.ops
            .iter()
            .filter_map(|op| match op.answer {
                Answer::Accepted(seq) => Some(seq),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// How the operator works.
#[derive(Debug, Clone)]
pub struct DeskOptions {
    /// Pause between the steps of a handoff: the customer messages of it are held.
    pub pause: Duration,
    /// Pause between two handoffs.
    pub between: Duration,
    /// How long a command is tried again after unknown answers before the desk moves on.
    pub command_deadline: Duration,
}

impl Default for DeskOptions {
    fn default() -> Self {
        DeskOptions {
            pause: Duration::from_millis(150),
            between: Duration::from_millis(150),
            command_deadline: Duration::from_secs(10),
        }
    }
}

/// The running desk; [`Desk::stop`] ends it and returns the record.
pub struct Desk {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<DeskRecord>,
}

impl Desk {
    /// Signs the operator in at `api` (the REST API's origin) and starts taking over the
    /// conversations of `threads`.
    pub fn start(api: String, threads: Threads, options: DeskOptions) -> Desk {
        let stop = Arc::new(AtomicBool::new(false));
        let operator = Operator {
            api,
            http: testkit::http_client(),
            token: None,
            threads,
            options,
            stop: stop.clone(),
            grace: None,
            record: DeskRecord::default(),
        };
        Desk {
            stop,
            task: tokio::spawn(operator.work()),
        }
    }

    /// Asks the operator to hand back the conversation in hand (without the pauses), and
    /// returns what the desk did.
    pub async fn stop(self) -> DeskRecord {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the desk task panicked")
    }
}

/// The operator at work.
struct Operator {
    api: String,
    http: reqwest::Client,
    /// The session token (none: sign in first).
    token: Option<String>,
    threads: Threads,
    options: DeskOptions,
    stop: Arc<AtomicBool>,
    /// Until when the command in hand may still be tried, once the stop was asked.
    grace: Option<Instant>,
    record: DeskRecord,
}

impl Operator {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// A pause, cut short when the desk is asked to stop.
    async fn pause(&self, pause: Duration) {
        let until = Instant::now() + pause;
        while !self.stopped() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(25).min(pause)).await;
        }
    }

    async fn work(mut self) -> DeskRecord {
        let mut handoff = 0;
        while !self.stopped() {
            let Some(thread) = self.threads.nth(handoff) else {
                self.pause(Duration::from_millis(50)).await;
                continue;
            };
            handoff += 1;
            self.hand_off(&thread, handoff).await;
            self.pause(self.options.between).await;
        }
        self.record
    }

    /// One handoff of `thread`: take it over, answer, note, hand it back. A step that is not
    /// accepted is left out; once the desk is asked to stop, only the hand-back is left.
    async fn hand_off(&mut self, thread: &str, n: usize) {
        // The projector may not know a brand-new conversation yet (404): the next one, then.
        if self
            .command(thread, Command::Assign, json!({}), None)
            .await
            .is_none()
        {
            return;
        }
        self.pause(self.options.pause).await;
        if !self.stopped() {
            let id = format!("desk-{n}");
            let text = format!("Hello, a person from the desk here (handoff {n}).");
            let body = json!({"text": text, "client_msg_id": id});
            self.command(thread, Command::Reply, body, Some(id)).await;
            self.pause(self.options.pause).await;
        }
        if !self.stopped() {
            let body = json!({"text": format!("Handoff {n}: answered by the desk.")});
            self.command(thread, Command::Note, body, None).await;
            self.pause(self.options.pause).await;
        }
        // Every other one resolved; released when the resolve is refused (the read model
        // says `resolved` already) or was not answered.
        let resolved = n.is_multiple_of(2)
            && self
                .command(
                    thread,
                    Command::Resolve,
                    json!({"note": format!("handoff {n}")}),
                    None,
                )
                .await
                .is_some();
        if !resolved {
            self.command(thread, Command::Release, json!({}), None)
                .await;
        }
    }

    /// Signs in, again and again while a fault keeps the API or PostgreSQL away, until it
    /// is in or the desk is asked to stop.
    async fn sign_in(&mut self) -> bool {
        while !self.stopped() {
            let answer = self
                .http
                .post(format!("{}/api/auth/login", self.api))
                .json(&json!({"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}))
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await;
            let mut wait = RETRY_DELAY;
            if let Ok(response) = answer {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or_default();
                match (status, body["token"].as_str()) {
                    (200, Some(token)) => {
                        self.token = Some(token.to_owned());
                        self.record.operator_id =
                            body["operator"]["id"].as_str().map(str::to_owned);
                        return true;
                    }
                    (429, _) => {
                        let ms = body["retry_after_ms"].as_u64().unwrap_or(1000);
                        wait = Duration::from_millis(ms.min(5000));
                    }
                    _ => {}
                }
            }
            self.pause(wait).await;
        }
        false
    }

    /// Sends the command until it is accepted or refused, or its deadline passes (shorter
    /// once the desk is asked to stop); its sequence when accepted. Signs in again when the
    /// session is refused.
    async fn command(
        &mut self,
        thread: &str,
        command: Command,
        body: Value,
        client_msg_id: Option<String>,
    ) -> Option<u64> {
        let deadline = Instant::now() + self.options.command_deadline;
        let url = format!("{}/api/conversations/{thread}/{}", self.api, command.path());
        loop {
            if self.token.is_none() && !self.sign_in().await {
                return None;
            }
            let token = self.token.as_deref().unwrap_or_default();
            let sent = self
                .http
                .post(&url)
                .bearer_auth(token)
                .json(&body)
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await;
            let answer = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.unwrap_or_default();
                    match (status, body["seq"].as_u64()) {
                        (202, Some(seq)) => Answer::Accepted(seq),
                        (400..=499, _) => {
                            Answer::Refused(body["code"].as_str().unwrap_or("?").to_owned())
                        }
                        _ => Answer::Unknown,
                    }
                }
                Err(_) => Answer::Unknown,
            };
            self.record.ops.push(DeskOp {
                thread_id: thread.to_owned(),
                command,
                client_msg_id: client_msg_id.clone(),
                answer: answer.clone(),
            });
            match answer {
                Answer::Accepted(seq) => return Some(seq),
                // The session is gone (a restored database, say): sign in, send again.
                Answer::Refused(code) if code == "unauthorized" => self.token = None,
                Answer::Refused(_) => return None,
                Answer::Unknown => {}
            }
            let mut until = deadline;
            if self.stopped() {
                until = until.min(
                    *self
                        .grace
                        .get_or_insert_with(|| Instant::now() + STOP_GRACE),
                );
            }
            if Instant::now() > until {
                return None;
            }
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }
}
