//! Dead lettering: a message the worker gives up on is stored in `DEAD_LETTERS`, and the
//! user is told with a `turn.failed` (docs/dead-letters.md).

use common::dead_letters::{self, Failure, Source};
use common::events::{
    Envelope, ErrorCategory, ThreadId, TurnFailed, TurnId, publish_of, step_event_id,
};
use common::subjects;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Delivery, Worker};

/// What the user is told when their message cannot be answered.
const APOLOGY: &str = "Sorry, I could not process your message. It has been passed to our support team, who will get back to you here.";

/// Dead-letters a message, tells the user with `turn.failed`, and returns the dead
/// letter's id. Both publishes are de-duplicated, so doing it again after a crash stores
/// nothing twice.
pub async fn dead_letter(
    worker: &Worker,
    delivery: Delivery<'_>,
    category: ErrorCategory,
    error: &str,
) -> anyhow::Result<u64> {
    let failure = Failure {
        category,
        error: error.to_owned(),
        attempts: delivery.delivered,
    };
    let source = Source {
        subject: delivery.subject,
        seq: delivery.seq,
        payload: delivery.payload,
        headers: delivery.headers,
    };
    let id = dead_letters::publish(&worker.js, source, &failure).await?;
    fail_point(FAIL_AFTER_DEAD_LETTER);
    let parsed = Envelope::from_json(delivery.payload).ok();
    let backdating = parsed
        .as_ref()
        .map_or(time::Duration::ZERO, Envelope::backdating);
    let (thread, turn) = match parsed {
        Some(event) => (Some(event.thread_id), event.turn_id),
        None => (
            subjects::thread_of(delivery.subject).and_then(|t| ThreadId::parse(t).ok()),
            // A message that does not parse has no turn id: derive one from its place.
            TurnId::from_uuid(Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("chat-seq-{}", delivery.seq).as_bytes(),
            )),
        ),
    };
    if let Some(thread) = thread {
        let failed = Envelope::new(
            step_event_id(&turn, &format!("failed-{}", delivery.seq)),
            thread,
            turn,
            OffsetDateTime::now_utc() - backdating,
            TurnFailed {
                message_seq: delivery.seq,
                category,
                error: error.to_owned(),
                attempts: delivery.delivered,
                text: APOLOGY.into(),
                dead_letter_id: Some(id),
            },
        );
        let (subject, publish) = publish_of(&failed);
        worker.js.send_publish(subject, publish).await?.await?;
    }
    Ok(id)
}

/// Fail point (environment `SMART_SUPPORT_FAIL_POINT`) of the reliability suite: the worker
/// dies right after a dead letter is stored, before the `turn.failed` and the message's
/// termination, as a `kill -9` landing in that window would (`chaos/`, docs/reliability.md).
pub const FAIL_AFTER_DEAD_LETTER: &str = "after-dead-letter";

/// Aborts the process (no clean-up, like SIGKILL) when `SMART_SUPPORT_FAIL_POINT` names this
/// point. Unset in production: then it is one comparison.
fn fail_point(name: &str) {
    static FAIL_POINT: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| std::env::var("SMART_SUPPORT_FAIL_POINT").ok());
    if FAIL_POINT.as_deref() == Some(name) {
        eprintln!("fail point {name}: aborting");
        std::process::abort();
    }
}
