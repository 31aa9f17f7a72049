//! Operators and the desk over HTTP: sign-in, sessions, roles, and the commands on a
//! conversation with who may do what (who holds it is read from the stream).

use std::time::{Duration, Instant};

use api::operators::{self, Role};
use common::events::{MessageReceived, ThreadId, TurnId};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::server::{Server, event};

const PASSWORD: &str = "a long enough password";

/// The API over a stream with one conversation (`t-desk`), two agents and an admin.
struct Desk {
    server: Server,
    thread: ThreadId,
}

impl Desk {
    async fn start() -> Desk {
        let server = Server::start(Duration::from_secs(2)).await;
        let thread = ThreadId::parse("t-desk").unwrap();
        let message = event(
            &thread,
            TurnId::from_uuid(Uuid::new_v4()),
            OffsetDateTime::now_utc(),
            MessageReceived {
                content: "I need help".into(),
                client_msg_id: None,
                backdated_ms: None,
            },
        );
        let seqs = server.store(std::slice::from_ref(&message)).await;
        server.apply(seqs[0], &[message]).await;
        for (email, name, role) in [
            ("anna@example.com", "Anna", Role::Agent),
            ("ben@example.com", "Ben", Role::Agent),
            ("root@example.com", "Root", Role::Admin),
        ] {
            operators::add(&server.pool, email, name, role, PASSWORD)
                .await
                .unwrap();
        }
        Desk { server, thread }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/api{path}", self.server.addr)
    }

    async fn login_raw(&self, email: &str, password: &str) -> reqwest::Response {
        self.server
            .http
            .post(self.url("/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Signs in; the session token.
    async fn login(&self, email: &str) -> String {
        let response = self.login_raw(email, PASSWORD).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .server
            .http
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn conversation(&self, what: &str) -> String {
        format!("/conversations/{}/{what}", self.thread)
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn an_operator_signs_in_and_out_and_the_token_stops_working_at_once() {
    let desk = Desk::start().await;
    let response = desk.login_raw("Anna@Example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("smart_support_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http: no Secure flag ({cookie})"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["operator"]["email"], "anna@example.com");
    assert_eq!(body["operator"]["role"], "agent");
    let token = body["token"].as_str().unwrap();

    let (status, me) = desk.call(token, Method::GET, "/me", None).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("Anna")));
    // The browser's way: the cookie alone.
    let session = cookie.split(';').next().unwrap();
    let by_cookie = desk
        .server
        .http
        .get(desk.url("/me"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);

    let (status, _) = desk.call(token, Method::POST, "/auth/logout", None).await;
    assert_eq!(status, 204);
    let (status, body) = desk.call(token, Method::GET, "/me", None).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let by_cookie = desk
        .server
        .http
        .get(desk.url("/me"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 401);
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_401_in_about_the_same_time() {
    let desk = Desk::start().await;
    let mut timings = Vec::new();
    // An email with NUL (which PostgreSQL cannot hold) is an unknown one, not a 500.
    let response = desk.login_raw("anna\u{0}@example.com", PASSWORD).await;
    assert_eq!(response.status(), 401);
    for (email, password) in [
        ("nobody@example.com", PASSWORD),
        ("anna@example.com", "a wrong password!!"),
        ("nobody@example.com", PASSWORD),
        ("anna@example.com", "a wrong password!!"),
    ] {
        let started = Instant::now();
        let response = desk.login_raw(email, password).await;
        timings.push(started.elapsed());
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), "invalid_credentials");
        assert_eq!(
            body["error"]["message"],
            "the email or the password is wrong"
        );
    }
    // Both check a password hash (a decoy for the unknown email): neither answers in a
    // fraction of the other's time.
    let unknown = timings[0].min(timings[2]);
    let wrong = timings[1].min(timings[3]);
    assert!(
        unknown * 4 > wrong && wrong * 4 > unknown,
        "unknown email {unknown:?}, wrong password {wrong:?}"
    );
}

#[tokio::test]
async fn repeated_failed_sign_ins_for_an_email_are_refused_with_429_even_with_the_right_password() {
    let desk = Desk::start().await;
    for _ in 0..api::auth::MAX_FAILURES_PER_EMAIL {
        assert_eq!(
            desk.login_raw("ben@example.com", "not the password")
                .await
                .status(),
            401
        );
    }
    let response = desk.login_raw("ben@example.com", PASSWORD).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "rate_limited");
    assert!(body["error"]["retry_after_ms"].as_u64().unwrap() > 0);
    // Another operator is not held back.
    assert_eq!(
        desk.login_raw("anna@example.com", PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn an_agent_gets_403_on_admin_endpoints_and_an_admin_manages_operators() {
    let desk = Desk::start().await;
    let agent = desk.login("anna@example.com").await;
    for (method, path) in [
        (Method::GET, "/operators"),
        (Method::GET, "/dead-letters"),
        (
            Method::GET,
            "/openapi/imports/00000000-0000-0000-0000-000000000001",
        ),
    ] {
        let (status, body) = desk.call(&agent, method.clone(), path, None).await;
        assert_eq!((status, code(&body)), (403, "forbidden"), "{method} {path}");
    }
    let (status, _) = desk.call(&agent, Method::GET, "/conversations", None).await;
    assert_eq!(status, 200, "an agent reads conversations");

    let admin = desk.login("root@example.com").await;
    let (status, added) = desk
        .call(
            &admin,
            Method::POST,
            "/operators",
            Some(json!({"email": "cleo@example.com", "name": "Cleo", "role": "agent", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert!(added.get("password_hash").is_none());
    let (status, body) = desk
        .call(
            &admin,
            Method::POST,
            "/operators",
            Some(json!({"email": "cleo@example.com", "name": "Cleo", "role": "agent", "password": PASSWORD})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "email_taken"));
    let (status, body) = desk
        .call(
            &admin,
            Method::POST,
            "/operators",
            Some(json!({"email": "dan@example.com", "name": "Dan", "role": "agent", "password": "short"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_password"));
    let (status, list) = desk.call(&admin, Method::GET, "/operators", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_disabled_operators_token_is_refused_on_its_next_request() {
    let desk = Desk::start().await;
    let agent = desk.login("ben@example.com").await;
    let (status, me) = desk.call(&agent, Method::GET, "/me", None).await;
    assert_eq!(status, 200);
    let admin = desk.login("root@example.com").await;
    let (status, disabled) = desk
        .call(
            &admin,
            Method::PATCH,
            &format!("/operators/{}", me["id"].as_str().unwrap()),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(disabled["disabled_at"].is_string());
    let (status, body) = desk.call(&agent, Method::GET, "/me", None).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let response = desk.login_raw("ben@example.com", PASSWORD).await;
    assert_eq!(
        response.status(),
        401,
        "a disabled operator cannot sign in again"
    );
}

#[tokio::test]
async fn only_the_operator_who_holds_a_conversation_answers_it_and_releases_it() {
    let desk = Desk::start().await;
    let anna = desk.login("anna@example.com").await;
    let ben = desk.login("ben@example.com").await;

    let (status, body) = desk
        .call(
            &ben,
            Method::POST,
            &desk.conversation("messages"),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "not_assigned"),
        "nobody holds it yet"
    );

    let (status, taken) = desk
        .call(&anna, Method::POST, &desk.conversation("assign"), None)
        .await;
    assert_eq!(status, 202, "{taken}");
    let (status, again) = desk
        .call(&anna, Method::POST, &desk.conversation("assign"), None)
        .await;
    assert_eq!(
        (status, &again["seq"]),
        (202, &taken["seq"]),
        "taking it again stores nothing"
    );
    let (status, body) = desk
        .call(&ben, Method::POST, &desk.conversation("assign"), None)
        .await;
    assert_eq!((status, code(&body)), (409, "already_assigned"));
    assert!(body["error"]["message"].as_str().unwrap().contains("Anna"));
    let (status, body) = desk
        .call(
            &ben,
            Method::POST,
            &desk.conversation("assign"),
            Some(json!({"operator_id": Uuid::new_v4()})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "forbidden"),
        "an agent assigns only themselves"
    );

    let (status, body) = desk
        .call(
            &ben,
            Method::POST,
            &desk.conversation("messages"),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "not_assigned"));
    for (text, expected) in [
        ("   ".to_owned(), "empty_content"),
        ("x".repeat(10_001), "content_too_long"),
    ] {
        let (status, body) = desk
            .call(
                &anna,
                Method::POST,
                &desk.conversation("messages"),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!((status, code(&body)), (400, expected));
    }
    let reply = json!({"text": "Hello, this is Anna.", "client_msg_id": "r-1"});
    let (status, first) = desk
        .call(
            &anna,
            Method::POST,
            &desk.conversation("messages"),
            Some(reply.clone()),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    let (status, resent) = desk
        .call(
            &anna,
            Method::POST,
            &desk.conversation("messages"),
            Some(reply),
        )
        .await;
    assert_eq!(
        (status, &resent["seq"]),
        (202, &first["seq"]),
        "a resend stores nothing new"
    );

    let (status, _) = desk
        .call(
            &ben,
            Method::POST,
            &desk.conversation("notes"),
            Some(json!({"text": "VIP customer"})),
        )
        .await;
    assert_eq!(status, 202, "any agent may add a note");

    let (status, body) = desk
        .call(&ben, Method::POST, &desk.conversation("release"), None)
        .await;
    assert_eq!((status, code(&body)), (409, "not_assigned"));
    let (status, _) = desk
        .call(&anna, Method::POST, &desk.conversation("release"), None)
        .await;
    assert_eq!(status, 202);
    let (status, _) = desk
        .call(&ben, Method::POST, &desk.conversation("assign"), None)
        .await;
    assert_eq!(
        status, 202,
        "after the release another operator may take it"
    );

    // Every operator event names its operator, never by email.
    let stream = desk.server.js.get_stream("CHAT").await.unwrap();
    let last = stream
        .direct_get_last_for_subject(format!("chat.{}.operator", desk.thread))
        .await
        .unwrap();
    let stored: Value = serde_json::from_slice(&last.payload).unwrap();
    assert_eq!(stored["kind"], "conversation.assigned");
    assert_eq!(stored["name"], "Ben");
    assert!(!String::from_utf8_lossy(&last.payload).contains("@example.com"));
}

#[tokio::test]
async fn the_inbox_lists_escalated_and_held_conversations_oldest_first_with_counts() {
    use common::events::{
        ConversationAssigned, ConversationEscalated, EscalationReason, OperatorRef,
    };
    let desk = Desk::start().await;
    let anna = desk.login("anna@example.com").await;
    let (_, me) = desk.call(&anna, Method::GET, "/me", None).await;
    let anna_id = Uuid::parse_str(me["id"].as_str().unwrap()).unwrap();
    let at = OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let mut events = Vec::new();
    for (n, thread) in ["t-old", "t-new"].iter().enumerate() {
        let thread = ThreadId::parse(thread).unwrap();
        let turn = TurnId::from_uuid(Uuid::new_v4());
        let at = at + time::Duration::minutes(n as i64);
        events.push(event(
            &thread,
            turn,
            at,
            MessageReceived {
                content: format!("first words of {thread}"),
                client_msg_id: None,
                backdated_ms: None,
            },
        ));
        events.push(event(
            &thread,
            turn,
            at,
            ConversationEscalated {
                reason: EscalationReason::UserRequest,
                detail: String::new(),
                agent: "general".into(),
            },
        ));
    }
    events.push(event(
        &ThreadId::parse("t-new").unwrap(),
        TurnId::from_uuid(Uuid::new_v4()),
        at + time::Duration::minutes(5),
        ConversationAssigned {
            operator: OperatorRef {
                operator_id: anna_id,
                name: "Anna".into(),
            },
            assigned_by: None,
        },
    ));
    let seqs = desk.server.store(&events).await;
    desk.server.apply(seqs[0], &events).await;

    let (status, all) = desk.call(&anna, Method::GET, "/inbox", None).await;
    assert_eq!(status, 200, "{all}");
    let threads: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["thread_id"].as_str().unwrap())
        .collect();
    assert_eq!(threads, ["t-old", "t-new"], "oldest waiting first");
    assert_eq!(all["items"][0]["title"], "first words of t-old");
    assert_eq!(all["items"][0]["status"], "escalated");
    assert_eq!(all["items"][1]["assignee"]["name"], "Anna");
    assert_eq!(all["counts"], json!({"unassigned": 1, "mine": 1, "all": 2}));
    let (_, mine) = desk
        .call(&anna, Method::GET, "/inbox?view=mine", None)
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["thread_id"], "t-new");
    let (_, unassigned) = desk
        .call(&anna, Method::GET, "/inbox?view=unassigned", None)
        .await;
    assert_eq!(unassigned["items"][0]["thread_id"], "t-old");
    let (status, body) = desk
        .call(&anna, Method::GET, "/inbox?view=bogus", None)
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_view"));
}

#[tokio::test]
async fn analytics_show_the_handoffs_the_wait_to_the_first_human_reply_and_each_operator() {
    use common::events::{
        ConversationAssigned, ConversationEscalated, ConversationResolved, EscalationReason,
        OperatorRef, OperatorReplied,
    };
    let desk = Desk::start().await;
    let anna = OperatorRef {
        operator_id: Uuid::from_u128(1),
        name: "Anna".into(),
    };
    let at = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let mut events = Vec::new();
    // Two waits: 30 s and 90 s to the first reply; Anna takes both, answers three times and
    // resolves one.
    for (n, wait) in [30, 90].into_iter().enumerate() {
        let thread = ThreadId::parse(&format!("t-a{n}")).unwrap();
        let turn = || TurnId::from_uuid(Uuid::new_v4());
        let start = at + time::Duration::minutes(10 * n as i64);
        events.push(event(
            &thread,
            turn(),
            start,
            MessageReceived {
                content: "a person please".into(),
                client_msg_id: None,
                backdated_ms: None,
            },
        ));
        events.push(event(
            &thread,
            turn(),
            start,
            ConversationEscalated {
                reason: EscalationReason::UserRequest,
                detail: String::new(),
                agent: "general".into(),
            },
        ));
        events.push(event(
            &thread,
            turn(),
            start + time::Duration::seconds(5),
            ConversationAssigned {
                operator: anna.clone(),
                assigned_by: None,
            },
        ));
        for extra in 0..(2 - n) {
            events.push(event(
                &thread,
                turn(),
                start + time::Duration::seconds(wait + extra as i64),
                OperatorReplied {
                    text: "hello".into(),
                    operator: anna.clone(),
                    client_msg_id: None,
                },
            ));
        }
    }
    events.push(event(
        &ThreadId::parse("t-a0").unwrap(),
        TurnId::from_uuid(Uuid::new_v4()),
        at + time::Duration::minutes(5),
        ConversationResolved {
            resolved_by: "operator".into(),
            operator: Some(anna.clone()),
            note: None,
        },
    ));
    let seqs = desk.server.store(&events).await;
    desk.server.apply(seqs[0], &events).await;
    let (status, report) = desk.server.get("/analytics?range=24h").await;
    assert_eq!(status, 200, "{report}");
    let desk_report = &report["desk"];
    assert_eq!(desk_report["handoffs"], 2);
    assert_eq!(desk_report["first_replies"], 2);
    // Nearest rank of {30, 90}: p50 is the 1st, p95 the 2nd.
    assert_eq!(desk_report["first_reply_p50_s"], 30);
    assert_eq!(desk_report["first_reply_p95_s"], 90);
    assert_eq!(
        desk_report["operators"],
        json!([{"id": Uuid::from_u128(1), "name": "Anna", "taken": 2, "replies": 3, "resolved": 1}])
    );
}

#[tokio::test]
async fn only_an_admin_erases_a_conversation_and_the_tombstone_names_them() {
    let desk = Desk::start().await;
    let path = format!("/conversations/{}", desk.thread);
    let stream = desk.server.js.get_stream("CHAT").await.unwrap();
    let message = format!("chat.{}.user", desk.thread);
    let agent = desk.login("anna@example.com").await;
    let (status, body) = desk.call(&agent, Method::DELETE, &path, None).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let response = desk
        .server
        .http
        .delete(desk.url(&path))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        stream.direct_get_last_for_subject(&message).await.is_ok(),
        "refused: the message is still stored"
    );

    let admin = desk.login("root@example.com").await;
    let (status, erased) = desk.call(&admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 202, "{erased}");
    assert_eq!(erased["events"], 1);
    assert!(stream.direct_get_last_for_subject(&message).await.is_err());
    let tombstone = stream
        .direct_get_last_for_subject(format!("chat.{}.erased", desk.thread))
        .await
        .unwrap();
    assert_eq!(tombstone.sequence, erased["seq"].as_u64().unwrap());
    let tombstone: Value = serde_json::from_slice(&tombstone.payload).unwrap();
    assert_eq!(tombstone["kind"], "conversation.erased");
    assert_eq!(tombstone["erased_by"], "operator");
    assert_eq!(tombstone["name"], "Root");
    // The projector folds it: the rows go, the erasure stays.
    let applied = desk
        .server
        .apply(
            erased["seq"].as_u64().unwrap(),
            &[
                common::events::Envelope::from_json(&serde_json::to_vec(&tombstone).unwrap())
                    .unwrap(),
            ],
        )
        .await;
    let (status, _) = desk
        .call(
            &admin,
            Method::GET,
            &format!("{path}?min_seq={applied}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = desk.call(&admin, Method::DELETE, &path, None).await;
    assert_eq!(
        (status, code(&body)),
        (404, "conversation_not_found"),
        "nothing left"
    );
    let (status, body) = desk
        .call(&admin, Method::DELETE, "/conversations/no.such", None)
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_thread_id"));
}
