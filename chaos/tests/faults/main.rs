//! Every fault of the reliability suite at a small scale, each on a fresh system from the
//! real binaries; after each, the promises I1–I7 (`chaos::invariants`) must hold. The long
//! runs are `make chaos`; docs/reliability.md has both.

use chaos::{Fault, Scale};

async fn holds(fault: Fault) {
    let report = chaos::run(fault, &Scale::small())
        .await
        .unwrap_or_else(|err| panic!("{fault:?}: the run failed: {err:#}"));
    eprintln!("{report:?}");
    assert!(
        report.acked > 20,
        "{fault:?}: too little load to say anything: {report:?}"
    );
    assert!(
        report.violations.is_empty(),
        "{fault:?} broke a promise:\n{}",
        report.violations.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fault() {
    holds(Fault::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_under_load() {
    holds(Fault::KillWorker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_killed_three_times() {
    holds(Fault::KillProjector).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingress_killed_and_restarted() {
    holds(Fault::KillIngress).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_killed_and_restarted() {
    holds(Fault::KillNats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_and_restarted() {
    holds(Fault::KillPostgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_frozen_beyond_the_ack_wait() {
    holds(Fault::StopWorker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_frozen() {
    holds(Fault::StopNats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_frozen() {
    holds(Fault::StopPostgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_terminated_and_started_again() {
    holds(Fault::TerminateAll).await;
}

/// The checks are not vacuous: a message stored twice (as a client that bypasses the
/// duplicate window would) and a turn event of no message are caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_catch_a_message_stored_twice_and_an_orphan_turn_event() {
    use chaos::load::{Load, LoadOptions, Outcome};
    use chaos::system::{Options, System};

    let system = System::start(Options::default()).await.unwrap();
    let load = Load::start(
        system.ingress_addrs(),
        LoadOptions {
            conversations: 2,
            ..LoadOptions::default()
        },
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let ops = load.stop().await;
    let Outcome::Ok(acked) = ops[0].outcome else {
        panic!("the first message was not acked: {ops:?}")
    };

    let js = &system.js;
    let stream = js.get_stream(common::subjects::CHAT_STREAM).await.unwrap();
    let stored = stream.get_raw_message(acked).await.unwrap();
    // The same message again under another event id: a second copy in the stream.
    let mut copy: serde_json::Value = serde_json::from_slice(&stored.payload).unwrap();
    copy["event_id"] = uuid::Uuid::new_v4().to_string().into();
    copy["turn_id"] = uuid::Uuid::new_v4().to_string().into();
    js.publish(stored.subject.to_string(), copy.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // A reply of a turn that has no message.
    let thread = ops[0].thread_id.clone();
    let orphan = serde_json::json!({
        "event_id": uuid::Uuid::new_v4(), "schema_version": 1, "thread_id": thread,
        "turn_id": uuid::Uuid::new_v4(), "occurred_at": "2026-11-25T00:00:00Z",
        "kind": "agent.replied", "agent": "orders", "engine": "rules", "text": "hello"
    });
    js.publish(format!("chat.{thread}.turn"), orphan.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();

    let violations =
        chaos::invariants::check(&system, &ops, &Default::default(), &Default::default())
            .await
            .unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("I1:") && v.contains(&ops[0].client_msg_id)),
        "{violations:#?}"
    );
    assert!(
        violations.iter().any(|v| v.starts_with("I3:")),
        "{violations:#?}"
    );
    eprintln!("{violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jetstream_store_full() {
    let report = chaos::run(Fault::FullStore, &Scale::small())
        .await
        .unwrap_or_else(|err| panic!("the run failed: {err:#}"));
    eprintln!("{report:?}");
    assert!(report.acked > 20, "{report:?}");
    // Once full, the store refuses: the clients see it (unknown after their resends).
    assert!(report.unavailable > 0, "no refusal seen: {report:?}");
    assert!(
        report.violations.is_empty(),
        "a full store broke a promise:\n{}",
        report.violations.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_a_dead_letter_and_its_termination() {
    holds(Fault::KillAfterDeadLetter).await;
}
