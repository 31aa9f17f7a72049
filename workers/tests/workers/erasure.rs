//! A conversation erased while a worker has one of its messages in hand: the message is
//! acknowledged without a turn (nothing is stored after the erasure), whether it is the
//! thread's first message or one that waits for a previous turn the erasure deleted.

use std::sync::atomic::Ordering;

use async_nats::HeaderMap;
use common::erasure::{self, Eraser};
use common::events::{Envelope, ThreadId};
use workers::consumer::{Delivery, Outcome, step};

use crate::fixture::{store, turn_events};
use crate::redelivery::{Two, two_workers};

fn delivery<'a>(seq: u64, payload: &'a [u8], headers: Option<&'a HeaderMap>) -> Delivery<'a> {
    Delivery {
        subject: "unused",
        seq,
        delivered: 1,
        payload,
        headers,
        ignore_order: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_hand_when_its_conversation_is_erased_is_acknowledged_without_a_turn() {
    let two: Two = two_workers().await;
    let (js, stream, hits) = (&two.js, &two.stream, &two.hits);

    // A thread answered once, whose next message (naming the first) is in flight.
    let thread = ThreadId::generate();
    let earlier = Envelope::user_message(&thread, "how are things?");
    let earlier_seq = store(js, &earlier, HeaderMap::new()).await;
    let outcome = step(&two.first, delivery(earlier_seq, &earlier.to_json(), None)).await;
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let next = Envelope::user_message(&thread, "and now?");
    let mut headers = HeaderMap::new();
    headers.insert(
        common::subjects::PREVIOUS_SEQ_HEADER,
        earlier_seq.to_string().as_str(),
    );
    let next_seq = store(js, &next, headers.clone()).await;
    // A new thread whose first message is in flight.
    let fresh = ThreadId::generate();
    let first_message = Envelope::user_message(&fresh, "hello?");
    let first_seq = store(js, &first_message, HeaderMap::new()).await;

    for erased in [&thread, &fresh] {
        erasure::erase(js, erased, &Eraser::Cli, false)
            .await
            .unwrap()
            .expect("there was something to erase");
    }

    // Without the tombstone check the next message would wait for good for a turn the
    // erasure deleted, and the first one would be answered after the erasure.
    let outcome = step(
        &two.second,
        delivery(next_seq, &next.to_json(), Some(&headers)),
    )
    .await;
    assert_eq!(outcome, Outcome::Done);
    let outcome = step(
        &two.second,
        delivery(first_seq, &first_message.to_json(), None),
    )
    .await;
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "no tool was called");
    assert_eq!(turn_events(stream, &thread).await, Vec::<Envelope>::new());
    assert_eq!(turn_events(stream, &fresh).await, Vec::<Envelope>::new());
}
