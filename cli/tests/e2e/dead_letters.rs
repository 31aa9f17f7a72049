//! `smart-support dead-letters …` as an operator runs it: the real binary against a real
//! `nats-server`.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use async_nats::jetstream::Context;
use common::config::NatsArgs;
use common::dead_letters::{self, Failure, Source};
use common::events::{Envelope, ErrorCategory, MessageReceived, ThreadId, TurnId};
use serde_json::Value;
use testkit::NatsServer;
use time::OffsetDateTime;
use uuid::Uuid;

/// Runs the binary with `args` against `nats`, stdin closed (not a terminal).
fn smart_support(nats: &NatsServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smart-support"))
        .args(args)
        .env("NATS_URL", nats.url())
        .envs(testkit::nats_env("admin"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("smart-support runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn dead_letter(
    js: &Context,
    thread: &ThreadId,
    payload: Vec<u8>,
    category: ErrorCategory,
) -> u64 {
    let subject = common::subjects::user_message(thread);
    let seq = js
        .publish(subject.clone(), payload.clone().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let source = Source {
        subject: &subject,
        seq,
        payload: &payload,
        headers: None,
    };
    let failure = Failure {
        category,
        error: "the engine timed out".into(),
        attempts: 5,
    };
    dead_letters::publish(js, source, &failure).await.unwrap()
}

#[tokio::test]
async fn an_operator_lists_shows_and_redrives_dead_letters_from_the_command_line() {
    let nats = NatsServer::start();
    let args = NatsArgs {
        nats_url: nats.url(),
        stream_replicas: 1,
        duplicate_window: Duration::from_secs(600),
        client_name: "e2e".into(),
        nats_user: Some("admin".into()),
        nats_password: Some(testkit::nats_password("admin")),
        nats_tls_ca: None,
    };
    let (_, js) = common::jetstream::connect(&args).await.unwrap();
    let chat = common::jetstream::setup(&js, &args).await.unwrap();
    dead_letters::ensure_stream(&js, &args).await.unwrap();
    let thread = ThreadId::generate();
    let message = Envelope::new(
        Uuid::new_v4(),
        thread.clone(),
        TurnId::from_uuid(Uuid::new_v4()),
        OffsetDateTime::now_utc(),
        MessageReceived {
            content: "where is my parcel?".into(),
            client_msg_id: None,
            backdated_ms: None,
        },
    );
    let good = dead_letter(&js, &thread, message.to_json(), ErrorCategory::Retryable).await;
    let poison = dead_letter(&js, &thread, b"not json".to_vec(), ErrorCategory::Fatal).await;

    // list: a table by default, JSON on request, filtered.
    let output = smart_support(&nats, &["dead-letters", "list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(table.starts_with("ID  FAILED AT"), "{table}");
    assert!(
        table.contains("retryable") && table.contains("fatal"),
        "{table}"
    );
    let output = smart_support(
        &nats,
        &["dead-letters", "list", "--category", "fatal", "--json"],
    );
    let page: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], poison);

    // show
    let output = smart_support(&nats, &["dead-letters", "show", &good.to_string()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("the engine timed out"), "{text}");
    assert!(text.contains("where is my parcel?"), "{text}");
    let output = smart_support(&nats, &["dead-letters", "show", "999"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no dead letter 999"),
        "{}",
        stderr(&output)
    );

    // A dry run only counts; without --yes and without a terminal nothing happens.
    let bulk = [
        "dead-letters",
        "redrive",
        "--all",
        "--category",
        "retryable",
    ];
    let output = smart_support(&nats, &[&bulk[..], &["--dry-run"]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "would redrive 1 dead letter");
    let output = smart_support(&nats, &bulk);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    assert!(
        dead_letters::get(&js, good).await.is_ok(),
        "nothing was redriven"
    );

    // --yes redrives and removes the dead letter; the poison one stays.
    let output = smart_support(&nats, &[&bulk[..], &["--yes"]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("redrove dead letter {good}")),
        "{}",
        stdout(&output)
    );
    assert!(dead_letters::get(&js, good).await.is_err());
    assert!(dead_letters::get(&js, poison).await.is_ok());
    let last = chat
        .direct_get_last_for_subject(common::subjects::user_message(&thread))
        .await
        .unwrap();
    let event = Envelope::from_json(&last.payload).unwrap();
    assert_eq!(event.payload.kind(), "message.redriven");

    // A poison message is not redrivable: exit 1 with the reason; discard removes it.
    let output = smart_support(&nats, &["dead-letters", "redrive", &poison.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot be redriven"),
        "{}",
        stderr(&output)
    );
    let output = smart_support(&nats, &["dead-letters", "discard", &poison.to_string()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = smart_support(&nats, &["dead-letters", "list"]);
    assert_eq!(stdout(&output).trim(), "no dead letters");

    // Usage errors exit with 2.
    let output = smart_support(&nats, &["dead-letters", "redrive"]);
    assert_eq!(output.status.code(), Some(2));
}
