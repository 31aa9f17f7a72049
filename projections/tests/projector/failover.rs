//! Two `projections` processes on the same NATS and database: one projects, the other
//! stands by, serving REST, and takes over when the active one is killed with SIGKILL.
//! What they project together equals a fresh projection of the stream.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use common::events::ThreadId;
use futures::StreamExt;
use projections::projector::CONVERSATIONS;

use crate::process::{Projections, Stack, eventually, publish_turn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_active_projector_is_killed_and_nothing_is_lost() {
    let stack = Stack::start().await;
    let mut first = stack.spawn("first", 100);
    let mut second = stack.spawn("second", 100);

    eventually(
        "one process is active and the other standby",
        Duration::from_secs(30),
        || async {
            matches!(
                (first.active().await, second.active().await),
                (Some(true), Some(false)) | (Some(false), Some(true))
            )
        },
    )
    .await;

    let threads: Vec<ThreadId> = (0..6).map(|_| ThreadId::generate()).collect();
    for (n, thread) in threads.iter().enumerate() {
        publish_turn(&stack.js, thread, n).await;
    }
    stack.caught_up(Duration::from_secs(20)).await;
    let conversations: i64 = sqlx::query_scalar("select count(*) from conversation")
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert_eq!(conversations, 6);
    // Still one active: the standby never applied anything beside it.
    let roles = (first.active().await, second.active().await);
    assert!(
        matches!(roles, (Some(true), Some(false)) | (Some(false), Some(true))),
        "{roles:?}"
    );

    let (active, standby) = if roles.0 == Some(true) {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    active.kill();
    eventually(
        "the standby becomes active",
        Duration::from_secs(20),
        || async { standby.active().await == Some(true) },
    )
    .await;
    assert!(
        standby.log().contains("projector active"),
        "{}",
        standby.log()
    );

    // Published after the kill: a second turn for every thread and new threads.
    for (n, thread) in threads.iter().enumerate() {
        publish_turn(&stack.js, thread, n + 6).await;
    }
    for n in 0..3 {
        publish_turn(&stack.js, &ThreadId::generate(), n + 12).await;
    }
    stack.caught_up(Duration::from_secs(20)).await;
    let turns: i64 = sqlx::query_scalar("select count(*) from turn")
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert_eq!(turns, 15);

    let diff = stack.diff_with_a_fresh_projection().await;
    assert!(diff.is_empty(), "{}", diff.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_whose_lock_session_ends_steps_down_and_takes_the_lock_again() {
    let (stack, projector, thread) = one_projector_after_one_turn().await;

    // The lock's session ends under it, as a restart of PostgreSQL or a broken network
    // would end it: the lock is gone and so is the connection batches are applied on.
    let ended: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity
         where application_name = 'smart-support projector lock'",
    )
    .fetch_all(&stack.pool)
    .await
    .unwrap();
    assert_eq!(ended, [true]);
    eventually(
        "the projector steps down and takes the lock again",
        Duration::from_secs(20),
        || async {
            let log = projector.log();
            log.contains("projector lost its lock") && log.matches("projector active").count() == 2
        },
    )
    .await;

    publish_turn(&stack.js, &thread, 1).await;
    publish_turn(&stack.js, &ThreadId::generate(), 2).await;
    stack.caught_up(Duration::from_secs(20)).await;
    assert_eq!(projector.active().await, Some(true));
    let diff = stack.diff_with_a_fresh_projection().await;
    assert!(diff.is_empty(), "{}", diff.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_whose_delivery_is_lost_in_flight_are_pulled_again_not_skipped() {
    let (stack, projector, thread) = one_projector_after_one_turn().await;

    // Deliveries lost in flight, as when the consumer's leader changes on a NATS cluster
    // (cli/tests/e2e/cluster_failover.rs found it): another client pulls from the
    // projector's own consumer, so what it gets never reaches the projector, which then
    // sees later events first.
    let consumer: PullConsumer = stack.stream.get_consumer(CONVERSATIONS).await.unwrap();
    let mut thief = consumer
        .fetch()
        .max_messages(3)
        .expires(Duration::from_secs(20))
        .messages()
        .await
        .unwrap();
    let mut stolen = Vec::new();
    for n in 1..=100 {
        publish_turn(&stack.js, &thread, n).await;
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(100), thief.next()).await
        {
            stolen.push(message.unwrap().info().unwrap().stream_sequence);
            break;
        }
    }
    assert!(!stolen.is_empty(), "the other client never got a delivery");
    // Events after the lost ones, so the projector sees the hole.
    for n in 101..104 {
        publish_turn(&stack.js, &thread, n).await;
    }

    stack.caught_up(Duration::from_secs(20)).await;
    let diff = stack.diff_with_a_fresh_projection().await;
    assert!(
        diff.is_empty(),
        "deliveries of {stolen:?} lost:\n{}",
        diff.join("\n")
    );
    assert!(
        projector.log().contains("an event never arrived"),
        "{}",
        projector.log()
    );
}

/// A stack with one active projector that has applied one turn of `thread`.
async fn one_projector_after_one_turn() -> (Stack, Projections, ThreadId) {
    let stack = Stack::start().await;
    let projector = stack.spawn("projector", 100);
    eventually(
        "the projector is active",
        Duration::from_secs(30),
        || async { projector.active().await == Some(true) },
    )
    .await;
    let thread = ThreadId::generate();
    publish_turn(&stack.js, &thread, 0).await;
    stack.caught_up(Duration::from_secs(20)).await;
    (stack, projector, thread)
}
