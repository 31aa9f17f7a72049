//! Erasure (`DELETE /api/conversations/{thread_id}`, `CONVERSATION_RETENTION`): a
//! conversation with a unique marker in a customer message, an operator's note and a dead
//! letter is erased, and the marker is then found nowhere: not over REST, not in a resume of
//! its thread, not in any PostgreSQL table, not in any message of any stream, not in the NATS
//! store's files; `verify` finds the live tables equal to a replay; a new message on the
//! thread is refused. Retention erases an inactive conversation and keeps an active one.

use std::path::Path;
use std::time::Duration;

use cli::rebuild::{RebuildArgs, ReplayArgs, VerifyArgs};
use futures::StreamExt;
use projections::projector::rebuild::Reader;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Stack, frames_until, is_event, next_frame, resume_query, send_json, turn};

const TOKEN: &str = "erasure-admin-token";

/// A word of letters only (so search reads it as one word), unique to this run.
fn marker() -> String {
    let letters: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .bytes()
        .map(|b| char::from(b'a' + b % 26))
        .take(16)
        .collect();
    format!("zorblax{letters}")
}

/// `method` `/api{path}` with `token` (none: no `Authorization`): the status and the body.
async fn call(
    stack: &Stack,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    stack.call(method, path, token, body).await
}

async fn get(stack: &Stack, path: &str) -> (u16, Value) {
    call(stack, Method::GET, path, Some(TOKEN), None).await
}

/// GETs `path` until `done` holds, or fails after 15 s.
async fn get_until(stack: &Stack, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(stack, path).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rows of every table of every schema (but PostgreSQL's own) that hold `needle`, as
/// `schema.table`.
async fn tables_holding(pool: &sqlx::PgPool, needle: &str) -> Vec<String> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "select table_schema::text, table_name::text from information_schema.tables
         where table_type = 'BASE TABLE'
           and table_schema not in ('pg_catalog', 'information_schema')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() >= 12, "{tables:?}");
    let mut holding = Vec::new();
    for (schema, table) in tables {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from \"{schema}\".\"{table}\" t where t::text like '%' || $1 || '%'"
        )))
        .bind(needle)
        .fetch_one(pool)
        .await
        .unwrap();
        if count > 0 {
            holding.push(format!("{schema}.{table}"));
        }
    }
    holding
}

/// Every message of every stream (payload and headers), read one sequence at a time, that
/// holds `needle`: `stream/seq`.
async fn stream_messages_holding(stack: &Stack, needle: &str) -> Vec<String> {
    let js = async_nats::jetstream::new(stack.nats_client().await);
    let names: Vec<String> = js.stream_names().map(|name| name.unwrap()).collect().await;
    assert!(names.len() >= 2, "{names:?}");
    let mut holding = Vec::new();
    for name in names {
        let mut stream = js.get_stream(&name).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        for seq in state.first_sequence..=state.last_sequence {
            let Ok(message) = stream.get_raw_message(seq).await else {
                continue; // deleted
            };
            let headers = format!("{:?}", message.headers);
            if String::from_utf8_lossy(&message.payload).contains(needle)
                || headers.contains(needle)
            {
                holding.push(format!("{name}/{seq}"));
            }
        }
    }
    holding
}

/// The files under `dir` whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &str, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_holding(&path, needle, found);
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
}

fn replay() -> ReplayArgs {
    ReplayArgs {
        batch: 5,
        reader: Reader::Pull,
        quiet: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_conversation_leaves_its_marker_nowhere_and_a_replay_stays_equal() {
    let mut stack = Stack::start_with(|args| args.api.api_token = Some(TOKEN.into())).await;
    let marker = marker();

    // The conversation to erase: a customer message, an operator's note and a dead letter,
    // each with the marker.
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let thread = session["thread_id"].as_str().unwrap().to_owned();
    turn(&mut socket, &format!("Where is my order? {marker}")).await;
    get_until(&stack, &format!("/conversations/{thread}"), |_| true).await;
    let (status, body) = call(
        &stack,
        Method::POST,
        &format!("/conversations/{thread}/notes"),
        Some(TOKEN),
        Some(json!({"text": format!("note about {marker}")})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let js = async_nats::jetstream::new(stack.nats_client().await);
    js.publish(
        format!("chat.{thread}.user"),
        format!("{{\"kind\":\"message.received\",\"content\":\"{marker}").into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    get_until(&stack, &format!("/dead-letters?thread_id={thread}"), |b| {
        b["items"].as_array().is_some_and(|items| items.len() == 1)
    })
    .await;
    // A regress run whose changed routing quotes the conversation (`public.regress_turn`).
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/agents.yaml"
    ))
    .unwrap();
    let rerouted = fixture.replace("keywords: [order, delivery,", "keywords: [delivery,");
    assert_ne!(rerouted, fixture);
    let (status, accepted) = call(
        &stack,
        Method::POST,
        "/regress",
        Some(TOKEN),
        Some(json!({"config": rerouted, "thread_ids": [thread]})),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let run = get_until(
        &stack,
        &format!("/regress/{}", accepted["id"].as_str().unwrap()),
        |run| run["status"] != "running",
    )
    .await;
    assert!(run["changed"].to_string().contains(&marker), "{run}");
    // Another conversation, which stays.
    let (mut other, other_thread) = stack.open_thread().await;
    turn(&mut other, "Hello, I have a question").await;
    // Before: the marker is found (so the checks below can fail).
    let found = get_until(&stack, &format!("/conversations?q={marker}"), |b| {
        b["items"].as_array().is_some_and(|items| items.len() == 1)
    })
    .await;
    assert_eq!(found["items"][0]["thread_id"], thread.as_str());
    let pool = projections::connect(&stack.args.database).await.unwrap();
    assert!(!tables_holding(&pool, &marker).await.is_empty());
    assert!(!stream_messages_holding(&stack, &marker).await.is_empty());
    let mut files = Vec::new();
    files_holding(stack.nats_server().store_dir(), &marker, &mut files);
    assert!(!files.is_empty(), "the store's files hold the marker");

    // A customer's thread token is no operator's credential.
    let token = session["token"].as_str().unwrap();
    let (status, body) = call(
        &stack,
        Method::DELETE,
        &format!("/conversations/{thread}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    let (status, _) = call(
        &stack,
        Method::DELETE,
        &format!("/conversations/{thread}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);

    let (status, erased) = call(
        &stack,
        Method::DELETE,
        &format!("/conversations/{thread}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 202, "{erased}");
    let seq = erased["seq"].as_u64().unwrap();
    assert!(erased["events"].as_u64().unwrap() >= 6, "{erased}");
    assert_eq!(erased["dead_letters"], 1, "{erased}");

    // REST: nothing of it, anywhere; the other conversation is still there.
    let (status, list) = get(&stack, &format!("/conversations?limit=100&min_seq={seq}")).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["thread_id"], other_thread.as_str());
    for path in [
        format!("/conversations?q={marker}&min_seq={seq}"),
        format!("/conversations/{thread}?min_seq={seq}"),
        format!("/conversations/{thread}/replay?min_seq={seq}"),
        "/analytics?range=24h".to_owned(),
        "/inbox?view=all".to_owned(),
        "/dead-letters".to_owned(),
        format!("/dead-letters?thread_id={thread}"),
    ] {
        let (status, body) = get(&stack, &path).await;
        assert!(
            !body.to_string().contains(&marker),
            "GET {path}: {status} {body}"
        );
    }
    let (status, body) = get(&stack, &format!("/conversations/{thread}")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("conversation_not_found"))
    );
    let (status, _) = get(&stack, &format!("/conversations/{thread}/replay")).await;
    assert_eq!(status, 404);
    let (_, search) = get(&stack, &format!("/conversations?q={marker}")).await;
    assert_eq!(search["items"], json!([]));
    let (_, analytics) = get(&stack, "/analytics?range=24h").await;
    assert_eq!(analytics["totals"]["conversations"], 1, "{analytics}");
    let (status, again) = call(
        &stack,
        Method::DELETE,
        &format!("/conversations/{thread}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(
        (status, &again["error"]["code"]),
        (404, &json!("conversation_not_found")),
        "erased already"
    );

    // A resume of the thread with its token gets the tombstone and nothing else; a new
    // message is refused and stored nowhere.
    let mut resumed = stack.connect(&resume_query(&session, None)).await;
    let frames = frames_until(&mut resumed, |f| is_event(f, "conversation.erased")).await;
    assert!(
        !Value::Array(frames.clone()).to_string().contains(&marker),
        "{frames:?}"
    );
    let events: Vec<&Value> = frames.iter().filter(|f| f["type"] == "event").collect();
    assert_eq!(events.len(), 1, "{frames:?}");
    assert_eq!(events[0]["event"]["erased_by"], "operator");
    send_json(
        &mut resumed,
        json!({"type": "message", "content": format!("again {marker}"), "client_msg_id": "after"}),
    )
    .await;
    let refused = frames_until(&mut resumed, |f| f["type"] == "error").await;
    assert_eq!(
        refused.last().unwrap()["code"],
        "conversation_erased",
        "{refused:?}"
    );
    // The socket open during the erasure is refused too.
    send_json(
        &mut socket,
        json!({"type": "message", "content": format!("still here {marker}")}),
    )
    .await;
    let refused = frames_until(&mut socket, |f| f["type"] == "error").await;
    assert_eq!(refused.last().unwrap()["code"], "conversation_erased");

    // PostgreSQL: no table of any schema holds it; the erasure is recorded, without it.
    assert_eq!(tables_holding(&pool, &marker).await, Vec::<String>::new());
    let (by, name): (String, Option<String>) = sqlx::query_as(
        "select erased_by, operator_name from read_model.erasure where thread_id = $1",
    )
    .bind(&thread)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(by, "operator");
    assert!(name.is_some());
    // No stream message holds it, nor any file of the NATS store.
    assert_eq!(
        stream_messages_holding(&stack, &marker).await,
        Vec::<String>::new()
    );
    let mut files = Vec::new();
    files_holding(stack.nats_server().store_dir(), &marker, &mut files);
    assert_eq!(files, Vec::<String>::new());

    // The live tables equal a replay of the stream, and a rebuild keeps it erased.
    let verify = VerifyArgs {
        limit: 5,
        replay: replay(),
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
    };
    assert!(cli::rebuild::verify(&verify).await.unwrap(), "equal");
    cli::rebuild::rebuild(&RebuildArgs {
        dry_run: false,
        replay: replay(),
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
    })
    .await
    .unwrap();
    assert_eq!(tables_holding(&pool, &marker).await, Vec::<String>::new());
    let (status, _) = get(&stack, &format!("/conversations/{other_thread}")).await;
    assert_eq!(status, 200);
    let (status, _) = get(&stack, &format!("/conversations/{thread}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_erases_an_inactive_conversation_and_keeps_an_active_one() {
    let stack = Stack::start_with(|args| {
        args.api.api_token = Some(TOKEN.into());
        args.api.conversation_retention = Some(Duration::from_secs(3));
    })
    .await;
    let (mut idle, idle_thread) = stack.open_thread().await;
    turn(&mut idle, "A question, then silence").await;
    let (mut active, active_thread) = stack.open_thread().await;
    turn(&mut active, "First question").await;
    // Projected first: a 404 below must mean erased, not not yet there.
    get_until(&stack, &format!("/conversations/{idle_thread}"), |c| {
        c["thread_id"] == idle_thread.as_str()
    })
    .await;
    // The active conversation writes every 600 ms (within the rate limit) until the idle
    // one is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut asked = 0;
    loop {
        let (status, _) = get(&stack, &format!("/conversations/{idle_thread}")).await;
        if status == 404 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle conversation was not erased"
        );
        asked += 1;
        turn(&mut active, &format!("Question {asked}")).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(asked >= 3, "erased too early: after {asked} questions");
    let (status, conversation) = get(&stack, &format!("/conversations/{active_thread}")).await;
    assert_eq!(status, 200, "{conversation}");
    let pool = projections::connect(&stack.args.database).await.unwrap();
    let erased: Vec<(String, String)> =
        sqlx::query_as("select thread_id, erased_by from read_model.erasure")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(erased, [(idle_thread, "retention".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_support_erase_erases_a_conversation_and_exits_1_for_an_unknown_one() {
    let stack = Stack::start().await;
    let (mut socket, thread) = stack.open_thread().await;
    turn(&mut socket, "Please forget me").await;
    stack
        .get_until(&format!("/api/conversations/{thread}"), |_| true)
        .await;
    let args = |thread: &str| cli::erase::EraseArgs {
        thread: thread.to_owned(),
        wait: Duration::from_secs(10),
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
    };
    let code = cli::erase::run(&args(&thread)).await.unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    // It waited for the projector: the rows are gone already.
    let (status, _) = stack.get(&format!("/api/conversations/{thread}")).await;
    assert_eq!(status, 404);
    let pool = projections::connect(&stack.args.database).await.unwrap();
    let by: String =
        sqlx::query_scalar("select erased_by from read_model.erasure where thread_id = $1")
            .bind(&thread)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(by, "cli");
    let code = cli::erase::run(&args(&thread)).await.unwrap();
    assert_eq!(
        code,
        std::process::ExitCode::FAILURE,
        "nothing left to erase"
    );
    let code = cli::erase::run(&args("never-was")).await.unwrap();
    assert_eq!(code, std::process::ExitCode::FAILURE);
}
