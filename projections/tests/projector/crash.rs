//! `kill -9` of the projector, again and again, while events keep arriving: after each
//! restart it goes on from its checkpoint, and when it has caught up every table equals a
//! fresh projection of the whole stream. Exactly-once effects on an at-least-once log.

use std::time::Duration;

use common::events::ThreadId;
use uuid::Uuid;

use crate::process::{Stack, eventually, publish_turn};

/// Turns published (five events each), one every `PACE`: about eight seconds of traffic.
const TURNS: usize = 800;
const PACE: Duration = Duration::from_millis(10);
/// Conversations they are spread over.
const THREADS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_repeatedly_under_load_ends_with_exactly_the_fresh_projection() {
    let stack = Stack::start().await;
    // Small batches: many commits, so the kills land before, inside and after them.
    let mut projector = stack.spawn("projector", 50);

    let js = stack.js.clone();
    // Paced, so the kills below land while events keep arriving: at least TURNS turns, and
    // on until the last kill, however slowly a loaded machine restarts the projector.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publishing = stop.clone();
    let publisher = tokio::spawn(async move {
        let threads: Vec<ThreadId> = (0..THREADS).map(|_| ThreadId::generate()).collect();
        let mut pace = tokio::time::interval(PACE);
        let mut n = 0;
        while n < TURNS || !publishing.load(std::sync::atomic::Ordering::Relaxed) {
            pace.tick().await;
            publish_turn(&js, &threads[n % THREADS], n).await;
            n += 1;
        }
        n
    });

    // Kill points: random checkpoints spread over the stream (a seed from the OS, shown
    // on failure), each followed by a random few milliseconds so a kill lands anywhere
    // in the projector's cycle, not only just after a commit.
    let seed = Uuid::new_v4().as_u128() as u64;
    let mut random = seed | 1;
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let kills = 3 + next() % 3;
    // Kill points within the first TURNS turns, which are published before the last kill.
    let first = (TURNS * 5) as u64;
    let mut points: Vec<u64> = (0..kills)
        .map(|_| first / 10 + next() % (first * 7 / 10))
        .collect();
    points.sort_unstable();
    let mut under_load = 0;

    for (k, point) in points.iter().enumerate() {
        eventually(
            &format!("the checkpoint passes {point} (kill {k}, seed {seed})"),
            Duration::from_secs(30),
            || async { stack.checkpoint().await >= *point },
        )
        .await;
        let jitter = Duration::from_millis(next() % 40);
        tokio::time::sleep(jitter).await;
        if !publisher.is_finished() {
            under_load += 1;
        }
        projector.kill();
        projector = stack.spawn("projector", 50);
    }

    assert!(
        under_load > 0,
        "every kill came after the publisher had finished"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let turns = tokio::time::timeout(Duration::from_secs(60), publisher)
        .await
        .expect("the publisher finishes")
        .unwrap();
    assert_eq!(stack.last_seq().await, (turns * 5) as u64);
    stack.caught_up(Duration::from_secs(30)).await;
    assert_eq!(projector.active().await, Some(true), "{}", projector.log());

    let diff = stack.diff_with_a_fresh_projection().await;
    assert!(
        diff.is_empty(),
        "{kills} kills ({under_load} while publishing) at {points:?} (seed {seed}):\n{}",
        diff.join("\n")
    );
}
