//! Two `projections` processes on the same NATS and database: one projects, the other
//! stands by, serving REST, and takes over when the active one is killed with SIGKILL.
//! What they project together equals a fresh projection of the stream.

use std::time::Duration;

use common::events::ThreadId;

use crate::process::{Stack, eventually, publish_turn};

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
