//! The queue contract: SQS FIFO semantics (per-group order, deduplication, visibility timeout,
//! receive count, dead-letter queue after five receives), whatever the adapter.
//!
//! A group's messages are received one at a time (`receive(_, 1)`) where the order of a group
//! is the point: SQS may hand several messages of one group in one batch, the embedded queue
//! one; both keep the order.

use std::time::Duration;

use mlc_shared::ports::{Message, OutgoingMessage, Queue, QueueError, QueueName};

use crate::QueueFixture;

const Q: QueueName = QueueName::Ingest;
/// Long enough that nothing reappears by itself while a test runs.
const LONG: Duration = Duration::from_secs(30);
/// For the behaviours that wait a timeout out: short, since on SQS the wait is real.
const SHORT: Duration = Duration::from_secs(2);
/// A little more, so a real clock is surely past a timeout (SQS counts whole seconds).
const MARGIN: Duration = Duration::from_millis(500);
/// Receives before the dead-letter queue (the contract's redrive policy).
const MAX_RECEIVES: u32 = 5;

fn msg(group: &str, dedup: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage {
        group_id: group.into(),
        dedup_id: dedup.into(),
        body: body.into(),
    }
}

fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

/// Receives and acknowledges until nothing is visible; what came, in the order it came.
async fn drain(q: &impl Queue, queue: QueueName) -> Vec<Message> {
    let mut seen = Vec::new();
    loop {
        let got = q.receive(queue, 10).await.unwrap();
        if got.is_empty() {
            return seen;
        }
        for m in got {
            q.ack(queue, &m.receipt).await.unwrap();
            seen.push(m);
        }
    }
}

/// Sends `body` (group `g`) and fails it until the queue dead-letters it.
async fn dead_letter<F: QueueFixture>(f: &F, body: &str) {
    let q = f.queue();
    q.send(Q, vec![msg("g", "p", body)]).await.unwrap();
    for n in 1..=MAX_RECEIVES {
        let got = q.receive(Q, 1).await.unwrap();
        assert_eq!(bodies(&got), [body], "receive {n}");
        q.retry_later(Q, &got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    assert!(q.receive(Q, 1).await.unwrap().is_empty());
}

pub async fn dedup_within_window_is_dropped<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    q.send(Q, vec![msg("doc-1", "doc-1-v1", "first")])
        .await
        .unwrap();
    q.send(
        Q,
        vec![
            msg("doc-1", "doc-1-v1", "again"),
            msg("doc-1", "doc-1-v2", "other"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        q.depth(Q).await.unwrap(),
        2,
        "the repeat is accepted and dropped"
    );
    let got = drain(q, Q).await;
    assert_eq!(bodies(&got), ["first", "other"]);
    assert_eq!(got[0].group_id, "doc-1");
    assert_eq!(got[0].dedup_id, "doc-1-v1");
    assert_eq!(got[0].receive_count, 1);
}

pub async fn dedup_is_per_queue<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    q.send(QueueName::Ingest, vec![msg("g", "d1", "a")])
        .await
        .unwrap();
    q.send(QueueName::Post, vec![msg("g", "d1", "b")])
        .await
        .unwrap();
    assert_eq!(q.depth(QueueName::Ingest).await.unwrap(), 1);
    assert_eq!(q.depth(QueueName::Post).await.unwrap(), 1);
    assert_eq!(bodies(&drain(q, QueueName::Post).await), ["b"]);
}

pub async fn group_order_is_held_while_a_message_is_in_flight<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    q.send(
        Q,
        vec![
            msg("doc-1", "d1", "doc-1 #1"),
            msg("doc-1", "d2", "doc-1 #2"),
        ],
    )
    .await
    .unwrap();
    let first = q.receive(Q, 1).await.unwrap();
    assert_eq!(bodies(&first), ["doc-1 #1"]);
    assert!(
        q.receive(Q, 10).await.unwrap().is_empty(),
        "the second message of a group must wait for the first"
    );
    q.ack(Q, &first[0].receipt).await.unwrap();
    assert_eq!(bodies(&q.receive(Q, 10).await.unwrap()), ["doc-1 #2"]);
}

pub async fn other_groups_are_delivered_while_one_is_in_flight<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    q.send(
        Q,
        vec![
            msg("doc-1", "d1", "doc-1 #1"),
            msg("doc-1", "d2", "doc-1 #2"),
        ],
    )
    .await
    .unwrap();
    let first = q.receive(Q, 1).await.unwrap();
    assert_eq!(bodies(&first), ["doc-1 #1"]);
    q.send(Q, vec![msg("doc-2", "d3", "doc-2 #1")])
        .await
        .unwrap();
    assert_eq!(bodies(&q.receive(Q, 10).await.unwrap()), ["doc-2 #1"]);
}

pub async fn receive_honours_max<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    q.send(
        Q,
        vec![msg("a", "a", "a"), msg("b", "b", "b"), msg("c", "c", "c")],
    )
    .await
    .unwrap();
    assert_eq!(q.receive(Q, 2).await.unwrap().len(), 2);
    assert_eq!(q.receive(Q, 2).await.unwrap().len(), 1);
    assert!(q.receive(Q, 0).await.unwrap().is_empty());
}

pub async fn a_received_message_is_hidden_until_its_visibility_timeout_passes<F: QueueFixture>() {
    let f = F::new(SHORT).await;
    let q = f.queue();
    q.send(Q, vec![msg("g", "1", "one")]).await.unwrap();
    let first = q.receive(Q, 1).await.unwrap();
    assert_eq!(first[0].receive_count, 1);
    assert!(q.receive(Q, 1).await.unwrap().is_empty(), "hidden");
    f.pass(SHORT + MARGIN).await;
    let again = q.receive(Q, 1).await.unwrap();
    assert_eq!(bodies(&again), ["one"]);
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(
        again[0].receipt, first[0].receipt,
        "a new delivery, a new receipt"
    );
    q.ack(Q, &again[0].receipt).await.unwrap();
    assert_eq!(q.depth(Q).await.unwrap(), 0);
}

pub async fn retry_later_delays_redelivery_and_holds_the_group<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    q.send(Q, vec![msg("g", "1", "one"), msg("g", "2", "two")])
        .await
        .unwrap();
    let got = q.receive(Q, 1).await.unwrap();
    q.retry_later(Q, &got[0].receipt, SHORT).await.unwrap();
    assert!(
        q.receive(Q, 10).await.unwrap().is_empty(),
        "neither it nor the rest of its group before the delay"
    );
    f.pass(SHORT + MARGIN).await;
    let again = q.receive(Q, 1).await.unwrap();
    assert_eq!(bodies(&again), ["one"]);
    assert_eq!(again[0].receive_count, 2);
}

pub async fn dead_letter_after_max_receives_and_the_group_goes_on<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    q.send(Q, vec![msg("g", "1", "poison"), msg("g", "2", "next")])
        .await
        .unwrap();
    for n in 1..=MAX_RECEIVES {
        let got = q.receive(Q, 1).await.unwrap();
        assert_eq!(bodies(&got), ["poison"], "receive {n}");
        assert_eq!(got[0].receive_count, n);
        q.retry_later(Q, &got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    // The sixth receive moves it to the dead-letter queue; its group goes on.
    let got = q.receive(Q, 1).await.unwrap();
    assert_eq!(bodies(&got), ["next"]);
    assert_eq!(got[0].receive_count, 1);
    let dead = q.dead_letters(Q).await.unwrap();
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(
        (dead[0].group_id.as_str(), dead[0].dedup_id.as_str()),
        ("g", "1")
    );
}

pub async fn dead_letters_are_peeked_not_taken_and_not_counted<F: QueueFixture>() {
    let f = F::new(LONG).await;
    dead_letter(&f, "poison").await;
    let q = f.queue();
    assert_eq!(bodies(&q.dead_letters(Q).await.unwrap()), ["poison"]);
    assert_eq!(
        bodies(&q.dead_letters(Q).await.unwrap()),
        ["poison"],
        "looking leaves it where it is"
    );
    assert_eq!(q.depth(Q).await.unwrap(), 0, "dead letters are not waiting");
    assert!(q.dead_letters(QueueName::Post).await.unwrap().is_empty());
}

pub async fn depth_counts_visible_and_in_flight_and_ack_deletes<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    assert_eq!(q.depth(Q).await.unwrap(), 0);
    q.send(
        Q,
        vec![
            msg("a", "a1", "a"),
            msg("b", "b1", "b"),
            msg("c", "c1", "c"),
        ],
    )
    .await
    .unwrap();
    let got = q.receive(Q, 1).await.unwrap();
    assert_eq!(q.depth(Q).await.unwrap(), 3);
    q.ack(Q, &got[0].receipt).await.unwrap();
    assert_eq!(q.depth(Q).await.unwrap(), 2);
    assert_eq!(q.depth(QueueName::Post).await.unwrap(), 0);
}

/// More than one SQS batch (ten) in one send, in order.
pub async fn many_messages_keep_their_order<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    let messages: Vec<_> = (0..25)
        .map(|i| msg("doc-1", &format!("d{i}"), &format!("m{i:02}")))
        .collect();
    q.send(QueueName::Post, messages).await.unwrap();
    assert_eq!(q.depth(QueueName::Post).await.unwrap(), 25);
    let seen = drain(q, QueueName::Post).await;
    let want: Vec<_> = (0..25).map(|i| format!("m{i:02}")).collect();
    assert_eq!(bodies(&seen), want);
}

pub async fn a_refused_send_is_an_error_naming_the_queue<F: QueueFixture>() {
    let f = F::new(LONG).await;
    // A FIFO queue refuses a message without a group id.
    match f.queue().send(Q, vec![msg("", "d1", "x")]).await {
        Err(QueueError::Backend { queue, .. }) => assert_eq!(queue, "ingest"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

pub async fn a_made_up_receipt_is_an_unknown_receipt<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    match q.ack(Q, "no-such-receipt").await {
        Err(QueueError::UnknownReceipt { queue, receipt }) => {
            assert_eq!((queue, receipt.as_str()), ("ingest", "no-such-receipt"));
        }
        other => panic!("expected UnknownReceipt, got {other:?}"),
    }
    assert!(matches!(
        q.retry_later(Q, "no-such-receipt", Duration::ZERO).await,
        Err(QueueError::UnknownReceipt {
            queue: "ingest",
            ..
        })
    ));
}

pub async fn dead_letter_moves_a_received_message_now_and_the_group_goes_on<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    q.send(Q, vec![msg("g", "g1", "poison"), msg("g", "g2", "next")])
        .await
        .unwrap();
    let got = q.receive(Q, 1).await.unwrap();
    assert_eq!(bodies(&got), ["poison"]);
    q.dead_letter(Q, &got[0]).await.unwrap();
    let dead = q.dead_letters(Q).await.unwrap();
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(dead[0].group_id, "g");
    assert_eq!(bodies(&drain(q, Q).await), ["next"]);
}

/// The embedded queue gives the delivery back (the receive count stays); SQS cannot lower
/// `ApproximateReceiveCount` (see `SqsQueue::defer`), so only "no more than one spent" holds
/// for both.
pub async fn defer_hides_a_message_and_keeps_its_place_in_its_group<F: QueueFixture>() {
    let f = F::new(LONG).await;
    let q = f.queue();
    q.send(Q, vec![msg("g", "g1", "first"), msg("g", "g2", "second")])
        .await
        .unwrap();
    let got = q.receive(Q, 1).await.unwrap();
    q.defer(Q, &got[0], SHORT).await.unwrap();
    assert!(
        q.receive(Q, 1).await.unwrap().is_empty(),
        "hidden, and the group waits behind it"
    );
    f.pass(SHORT + MARGIN).await;
    let again = q.receive(Q, 1).await.unwrap();
    assert_eq!(bodies(&again), ["first"]);
    assert!(again[0].receive_count <= 2, "{}", again[0].receive_count);
    q.ack(Q, &again[0].receipt).await.unwrap();
    assert_eq!(bodies(&drain(q, Q).await), ["second"]);
}

pub async fn extend_keeps_a_received_message_hidden_and_its_receipt_valid<F: QueueFixture>() {
    let f = F::new(SHORT).await;
    let q = f.queue();
    q.send(Q, vec![msg("g", "g1", "slow")]).await.unwrap();
    let got = q.receive(Q, 1).await.unwrap();
    f.pass(SHORT / 2).await;
    // A heartbeat: hidden for a whole timeout from now.
    q.extend(Q, &got[0].receipt, SHORT).await.unwrap();
    f.pass(SHORT / 2 + MARGIN).await;
    assert!(
        q.receive(Q, 1).await.unwrap().is_empty(),
        "past its first timeout, still hidden"
    );
    q.ack(Q, &got[0].receipt).await.unwrap();
    assert_eq!(q.depth(Q).await.unwrap(), 0);
}
