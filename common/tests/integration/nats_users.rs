//! The NATS users of `nats/users.conf` (which every test server loads): each service connects
//! as itself, may do what it does and is refused the rest; a client without credentials is
//! refused; over TLS a client connects when it trusts the test's own certificate authority.
//!
//! A refusal is seen twice: the server reports a permissions violation for exactly that
//! subject, and (for a publish to a stream) the stream holds nothing on it. Each test also does
//! something its user may do, so a server that silently dropped everything would not pass.

use std::time::Duration;

use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use common::config::NatsArgs;
use common::events::{Envelope, ThreadId};
use common::subjects;
use testkit::{NatsOptions, NatsServer, TestCa};
use tokio::sync::mpsc;

/// How long a refusal may take to be reported (it comes within milliseconds).
const REFUSAL_WAIT: Duration = Duration::from_secs(5);

fn args(server_url: String, user: Option<&str>) -> NatsArgs {
    let args = NatsArgs::at(server_url);
    match user {
        Some(user) => args.as_user(user, &testkit::nats_password(user)),
        None => args,
    }
}

/// A server with the streams set up (as `smart-support nats-setup` does), and its admin's
/// JetStream context.
async fn server() -> (NatsServer, Context) {
    let server = NatsServer::start();
    let admin = args(server.url(), Some("admin"));
    let js = common::jetstream::connect_once(&admin).await.unwrap();
    common::jetstream::setup(&js, &admin).await.unwrap();
    (server, js)
}

/// A connection as `user`, as the services connect, and the errors the server reports to it.
struct Connection {
    client: async_nats::Client,
    js: Context,
    errors: mpsc::UnboundedReceiver<String>,
}

impl Connection {
    async fn open(server: &NatsServer, user: &str) -> Connection {
        let (tx, errors) = mpsc::unbounded_channel();
        let client = common::jetstream::options(&args(server.url(), Some(user)))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(err) = event {
                        let _ = tx.send(err.to_string());
                    }
                }
            })
            .connect(server.url())
            .await
            .unwrap_or_else(|err| panic!("{user} connects: {err}"));
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        Connection { client, js, errors }
    }

    /// Waits for the server's permissions violation naming `subject`.
    async fn refused(&mut self, what: &str, subject: &str) {
        let deadline = tokio::time::Instant::now() + REFUSAL_WAIT;
        loop {
            let error = tokio::time::timeout_at(deadline, self.errors.recv())
                .await
                .unwrap_or_else(|_| panic!("{what} ({subject}) was not refused"))
                .expect("the connection is open");
            let lower = error.to_lowercase();
            if lower.contains("permissions violation") && error.contains(&format!("\"{subject}\""))
            {
                return;
            }
        }
    }

    /// Publishes `payload` on `subject` (no reply awaited) and expects the server to refuse it.
    async fn publish_refused(&mut self, subject: &str, payload: Bytes) {
        self.client
            .publish(subject.to_owned(), payload)
            .await
            .unwrap();
        self.client.flush().await.unwrap();
        self.refused("a publish", subject).await;
    }

    /// Subscribes to `subject` and expects the server to refuse it.
    async fn subscribe_refused(&mut self, subject: &str) {
        let _subscription = self.client.subscribe(subject.to_owned()).await.unwrap();
        self.client.flush().await.unwrap();
        self.refused("a subscription", subject).await;
    }

    /// Publishes a message on `subject` (a stream's) and waits for the PubAck.
    async fn stores(&self, subject: String) {
        let ack = self
            .js
            .publish(subject.clone(), "{}".into())
            .await
            .unwrap()
            .await;
        assert!(ack.is_ok(), "{subject} is stored: {ack:?}");
    }

    /// Stores `event` on its subject and waits for the PubAck.
    async fn store(&self, event: &Envelope) -> u64 {
        let (subject, message) = common::events::publish_of(event);
        self.js
            .send_publish(subject, message)
            .await
            .unwrap()
            .await
            .unwrap_or_else(|err| panic!("{} is stored: {err}", event.subject()))
            .sequence
    }
}

fn message(thread: &ThreadId) -> Envelope {
    Envelope::user_message(thread, "where is my order?")
}

/// Whether the chat or dead-letter stream holds anything on `subject` (asked as the admin).
async fn stored(admin: &Context, subject: &str) -> bool {
    let stream = if subject.starts_with("dead.") {
        subjects::DEAD_LETTER_STREAM.to_owned()
    } else if subject.starts_with("$KV.") {
        format!("KV_{}", subjects::TOOLS_BUCKET)
    } else {
        subjects::CHAT_STREAM.to_owned()
    };
    admin
        .get_stream(stream)
        .await
        .unwrap()
        .direct_get_last_for_subject(subject)
        .await
        .is_ok()
}

/// Every subject a service could store an event of `thread` on.
fn stream_subjects(thread: &ThreadId) -> Vec<String> {
    vec![
        subjects::user_message(thread),
        subjects::turn_event(thread),
        subjects::operator_event(thread),
        subjects::note(thread),
        format!("chat.{thread}.erased"),
        subjects::dead_letter(Some(thread.as_str())),
    ]
}

/// `user` publishing on each of `subjects` is refused, and nothing is stored.
async fn cannot_store(server: &NatsServer, admin: &Context, user: &str, subjects: &[String]) {
    let mut connection = Connection::open(server, user).await;
    for subject in subjects {
        connection
            .publish_refused(subject, Bytes::from_static(b"{}"))
            .await;
        assert!(
            !stored(admin, subject).await,
            "{user} stored a message on {subject}"
        );
    }
}

#[tokio::test]
async fn a_client_without_credentials_or_with_a_wrong_password_is_refused() {
    let (server, _admin) = server().await;
    let anonymous = async_nats::ConnectOptions::new()
        .connect(server.url())
        .await;
    assert!(anonymous.is_err(), "a client without credentials connected");
    let wrong = async_nats::ConnectOptions::with_user_and_password(
        "ingress".into(),
        "not-the-password".into(),
    )
    .connect(server.url())
    .await;
    assert!(wrong.is_err(), "a client with a wrong password connected");
    // The right password is let in.
    Connection::open(&server, "ingress").await;
}

#[tokio::test]
async fn the_ingress_stores_user_messages_and_cannot_store_turn_operator_or_note_events_or_dead_letters()
 {
    let (server, admin) = server().await;
    let thread = ThreadId::generate();
    let ingress = Connection::open(&server, "ingress").await;
    ingress.store(&message(&thread)).await;
    let mut forbidden = stream_subjects(&thread);
    forbidden.retain(|subject| *subject != subjects::user_message(&thread));
    cannot_store(&server, &admin, "ingress", &forbidden).await;
}

#[tokio::test]
async fn the_workers_store_turn_events_and_dead_letters_and_cannot_store_user_messages_operator_or_note_events()
 {
    let (server, admin) = server().await;
    let thread = ThreadId::generate();
    let worker = Connection::open(&server, "worker").await;
    worker.stores(subjects::turn_event(&thread)).await;
    worker
        .stores(subjects::dead_letter(Some(thread.as_str())))
        .await;
    let forbidden = vec![
        subjects::user_message(&thread),
        subjects::operator_event(&thread),
        subjects::note(&thread),
        format!("chat.{thread}.erased"),
    ];
    cannot_store(&server, &admin, "worker", &forbidden).await;
}

#[tokio::test]
async fn the_projector_cannot_publish_to_any_stream_subject() {
    let (server, admin) = server().await;
    let thread = ThreadId::generate();
    let mut forbidden = stream_subjects(&thread);
    forbidden.push(format!("$KV.{}.published", subjects::TOOLS_BUCKET));
    cannot_store(&server, &admin, "projector", &forbidden).await;
    // It reads the stream, which is its job.
    let projector = Connection::open(&server, "projector").await;
    common::jetstream::chat_stream(&projector.js).await.unwrap();
}

#[tokio::test]
async fn the_api_stores_operator_events_and_cannot_store_turn_events_or_dead_letters() {
    let (server, admin) = server().await;
    let thread = ThreadId::generate();
    let api = Connection::open(&server, "api").await;
    api.stores(subjects::operator_event(&thread)).await;
    api.stores(subjects::note(&thread)).await;
    let forbidden = vec![
        subjects::turn_event(&thread),
        subjects::dead_letter(Some(thread.as_str())),
    ];
    cannot_store(&server, &admin, "api", &forbidden).await;
}

#[tokio::test]
async fn no_service_can_delete_or_change_the_streams() {
    let (server, admin) = server().await;
    for user in ["ingress", "worker", "projector", "api"] {
        let mut connection = Connection::open(&server, user).await;
        for stream in [subjects::CHAT_STREAM, subjects::DEAD_LETTER_STREAM] {
            for action in ["DELETE", "UPDATE", "CREATE"] {
                let subject = format!("$JS.API.STREAM.{action}.{stream}");
                connection.publish_refused(&subject, Bytes::new()).await;
            }
        }
    }
    // Nor purge one (an erasure deletes message by message, which overwrites them).
    for user in ["ingress", "worker", "projector", "api"] {
        let mut connection = Connection::open(&server, user).await;
        let subject = format!("$JS.API.STREAM.PURGE.{}", subjects::CHAT_STREAM);
        connection.publish_refused(&subject, Bytes::new()).await;
    }
    admin.get_stream(subjects::CHAT_STREAM).await.unwrap();
    admin
        .get_stream(subjects::DEAD_LETTER_STREAM)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_service_cannot_take_messages_from_another_services_consumer() {
    let (server, admin) = server().await;
    common::jetstream::ensure_workers_consumer(
        &admin.get_stream(subjects::CHAT_STREAM).await.unwrap(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let workers = format!(
        "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
        subjects::CHAT_STREAM,
        subjects::WORKERS_CONSUMER
    );
    let projector = format!(
        "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
        subjects::CHAT_STREAM,
        subjects::PROJECTOR_CONSUMER
    );
    for (user, subject) in [
        ("ingress", &workers),
        ("api", &workers),
        ("projector", &workers),
        ("ingress", &projector),
        ("api", &projector),
        ("worker", &projector),
    ] {
        let mut connection = Connection::open(&server, user).await;
        connection.publish_refused(subject, Bytes::new()).await;
    }
    // Nor change the workers' consumer.
    let mut ingress = Connection::open(&server, "ingress").await;
    let subject = format!(
        "$JS.API.CONSUMER.CREATE.{}.{}.{}",
        subjects::CHAT_STREAM,
        subjects::WORKERS_CONSUMER,
        subjects::USER_MESSAGES
    );
    ingress.publish_refused(&subject, Bytes::new()).await;
}

#[tokio::test]
async fn a_service_cannot_listen_to_stream_subjects_or_to_another_services_replies() {
    let (server, _admin) = server().await;
    let mut ingress = Connection::open(&server, "ingress").await;
    for subject in ["chat.>", "_INBOX.>", "_INBOX_api.>", ">"] {
        ingress.subscribe_refused(subject).await;
    }
    let mut projector = Connection::open(&server, "projector").await;
    projector.subscribe_refused("chat.*.operator").await;
}

#[tokio::test]
async fn over_tls_a_service_connects_when_it_trusts_the_test_authority_and_not_otherwise() {
    let ca = TestCa::new();
    let server = NatsServer::start_with(NatsOptions {
        tls: Some(ca.server()),
        ..NatsOptions::default()
    });
    let mut admin = args(server.url(), Some("admin"));
    admin.nats_tls_ca = Some(ca.ca_cert());
    let js = common::jetstream::connect_once(&admin).await.unwrap();
    common::jetstream::setup(&js, &admin).await.unwrap();

    let mut ingress = args(server.url(), Some("ingress"));
    ingress.nats_tls_ca = Some(ca.ca_cert());
    let (_client, js) = common::jetstream::connect(&ingress).await.unwrap();
    common::jetstream::chat_stream(&js).await.unwrap();
    let thread = ThreadId::generate();
    let (subject, message) = common::events::publish_of(&message(&thread));
    js.send_publish(subject, message)
        .await
        .unwrap()
        .await
        .unwrap();

    // Without the authority the server's certificate is not trusted.
    let untrusted = args(server.url(), Some("ingress"));
    assert!(
        common::jetstream::connect_once(&untrusted).await.is_err(),
        "a client that does not trust the test authority connected"
    );
}

#[tokio::test]
async fn the_workers_send_reply_pieces_the_ingress_hears_them_and_no_other_service_may_send_them() {
    let (server, _admin) = server().await;
    let worker = Connection::open(&server, "worker").await;
    let ingress = Connection::open(&server, "ingress").await;
    let thread = ThreadId::generate();
    let subject = common::subjects::reply_delta(&thread);
    let mut heard = ingress
        .client
        .subscribe(common::subjects::REPLY_DELTAS)
        .await
        .unwrap();
    ingress.client.flush().await.unwrap();
    // Core NATS delivers at most once, and a piece may be dropped (websocket.md: a client
    // that misses one loses nothing): send pieces until the ingress hears one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let piece = loop {
        worker
            .client
            .publish(subject.clone(), "{\"type\":\"delta\"}".into())
            .await
            .unwrap();
        worker.client.flush().await.unwrap();
        let wait = Duration::from_millis(200);
        if let Ok(piece) = tokio::time::timeout(wait, futures::StreamExt::next(&mut heard)).await {
            break piece.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ingress hears no piece"
        );
    };
    assert_eq!(piece.subject.as_str(), subject);
    for user in ["ingress", "api", "projector"] {
        let mut other = Connection::open(&server, user).await;
        other.publish_refused(&subject, Bytes::new()).await;
    }
    let mut projector = Connection::open(&server, "projector").await;
    projector.subscribe_refused("delta.*").await;
}
