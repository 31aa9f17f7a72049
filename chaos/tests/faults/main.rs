//! Every fault of the reliability suite at a small scale, each on a fresh system from the
//! real binaries, with an operator at the desk taking conversations over; after each, the
//! promises I1–I8 (`chaos::invariants`) must hold. The long runs are `make chaos`;
//! docs/reliability.md has both.

use chaos::{Fault, Report, Scale};

async fn holds(fault: Fault) -> Report {
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
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fault() {
    let report = holds(Fault::None).await;
    // The checks saw operator events among the customers' messages, not an idle desk.
    assert!(
        report.operator_events > 0,
        "the desk got no operator event accepted: {report:?}"
    );
    assert!(
        report.held > 0,
        "no customer message was held for the operator: {report:?}"
    );
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

// Failed in about half the runs from when the desk joined the load until a turn's events
// became one atomic batch (docs/reliability.md, "A frozen worker's turn").
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
/// duplicate window would), a turn event of no message, an operator's note accepted once and
/// stored twice, and a reply accepted at a seq that holds something else are caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_catch_messages_and_operator_events_stored_twice_and_an_orphan_turn_event() {
    use chaos::desk::{Answer, Command, DeskOp, DeskRecord};
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

    // An operator's note, accepted once but in the stream twice.
    let operator = uuid::Uuid::new_v4();
    let mut notes = Vec::new();
    for _ in 0..2 {
        let note = serde_json::json!({
            "event_id": uuid::Uuid::new_v4(), "schema_version": 1, "thread_id": thread,
            "turn_id": uuid::Uuid::new_v4(), "occurred_at": "2026-11-25T00:00:00Z",
            "kind": "note.added", "text": "checked", "operator_id": operator, "name": "Checker"
        });
        let ack = js
            .publish(format!("chat.{thread}.note"), note.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
        notes.push(ack.sequence);
    }
    let accepted = |command, seq, client_msg_id: Option<&str>| DeskOp {
        thread_id: thread.clone(),
        command,
        client_msg_id: client_msg_id.map(str::to_owned),
        answer: Answer::Accepted(seq),
    };
    let desk = DeskRecord {
        operator_id: Some(operator.to_string()),
        ops: vec![
            accepted(Command::Note, notes[0], None),
            // The customer's message is at that seq, not a reply.
            accepted(Command::Reply, acked, Some("desk-1")),
        ],
    };

    let violations = chaos::invariants::check(
        &system,
        &ops,
        &desk,
        &Default::default(),
        &Default::default(),
    )
    .await
    .unwrap()
    .violations;
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
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("I8:") && v.contains(&format!("{notes:?}"))),
        "{violations:#?}"
    );
    assert!(
        violations.iter().any(|v| v.starts_with("I8:")
            && v.contains(&format!(
                "operator.replied in {thread} accepted at seq {acked}"
            ))),
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
