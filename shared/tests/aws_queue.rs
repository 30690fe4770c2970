//! `SqsQueue` against the moto server, over the real SQS SDK.
#![cfg(feature = "aws")]

mod common;

use std::time::Duration;

use common::moto::Stack;
use mlc_shared::ports::{OutgoingMessage, Queue, QueueError, QueueName};

const Q: QueueName = QueueName::Ingest;

fn msg(group: &str, dedup: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage {
        group_id: group.into(),
        dedup_id: dedup.into(),
        body: body.into(),
    }
}

fn bodies(messages: &[mlc_shared::ports::Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

#[tokio::test]
async fn a_repeated_dedup_id_within_the_window_is_dropped() {
    let stack = Stack::new(Duration::from_secs(30)).await;
    let q = stack.queue();
    q.send(Q, vec![msg("doc-1", "doc-1-v1", "first")])
        .await
        .unwrap();
    q.send(Q, vec![msg("doc-1", "doc-1-v1", "again")])
        .await
        .unwrap();
    assert_eq!(q.depth(Q).await.unwrap(), 1);
    let got = q.receive(Q, 10).await.unwrap();
    assert_eq!(bodies(&got), ["first"]);
    assert_eq!(got[0].group_id, "doc-1");
    assert_eq!(got[0].dedup_id, "doc-1-v1");
    assert_eq!(got[0].receive_count, 1);
}

#[tokio::test]
async fn group_order_is_held_while_a_message_is_in_flight() {
    let stack = Stack::new(Duration::from_secs(30)).await;
    let q = stack.queue();
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
    let second = q.receive(Q, 10).await.unwrap();
    assert_eq!(bodies(&second), ["doc-1 #2"]);
}

#[tokio::test]
async fn other_groups_are_delivered_while_one_is_in_flight() {
    let stack = Stack::new(Duration::from_secs(30)).await;
    let q = stack.queue();
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

#[tokio::test]
async fn receive_count_rises_and_the_sixth_receive_dead_letters() {
    let stack = Stack::new(Duration::from_secs(2)).await;
    let q = stack.queue();
    q.send(Q, vec![msg("doc-1", "d1", "poison")]).await.unwrap();
    for n in 1..=5 {
        let got = q.receive(Q, 1).await.unwrap();
        assert_eq!(bodies(&got), ["poison"], "receive {n}");
        assert_eq!(got[0].receive_count, n);
        q.retry_later(Q, &got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    assert!(q.receive(Q, 1).await.unwrap().is_empty());
    let dead = q.dead_letters(Q).await.unwrap();
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(dead[0].group_id, "doc-1");
    assert_eq!(q.depth(Q).await.unwrap(), 0);
    // Peeking leaves the dead letter where it is.
    assert_eq!(bodies(&q.dead_letters(Q).await.unwrap()), ["poison"]);
    assert!(q.dead_letters(QueueName::Post).await.unwrap().is_empty());
}

#[tokio::test]
async fn depth_counts_visible_and_in_flight_and_ack_deletes() {
    let stack = Stack::new(Duration::from_secs(30)).await;
    let q = stack.queue();
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

#[tokio::test]
async fn more_than_ten_messages_are_sent_in_batches_in_order() {
    let stack = Stack::new(Duration::from_secs(30)).await;
    let q = stack.queue();
    let messages: Vec<_> = (0..25)
        .map(|i| msg("doc-1", &format!("d{i}"), &format!("m{i:02}")))
        .collect();
    q.send(QueueName::Post, messages).await.unwrap();
    assert_eq!(q.depth(QueueName::Post).await.unwrap(), 25);
    let mut seen = Vec::new();
    while seen.len() < 25 {
        let got = q.receive(QueueName::Post, 10).await.unwrap();
        assert!(!got.is_empty(), "ran dry after {}", seen.len());
        for m in got {
            q.ack(QueueName::Post, &m.receipt).await.unwrap();
            seen.push(m.body);
        }
    }
    let want: Vec<_> = (0..25).map(|i| format!("m{i:02}")).collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn a_failed_send_is_an_error_naming_the_queue() {
    let stack = Stack::new(Duration::from_secs(30)).await;
    let q = stack.queue();
    // A FIFO queue refuses a message without a group id.
    match q.send(Q, vec![msg("", "d1", "x")]).await {
        Err(QueueError::Backend { queue, message }) => {
            assert_eq!(queue, "ingest");
            assert!(message.contains("SendMessageBatch"), "{message}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_made_up_receipt_is_an_unknown_receipt() {
    let stack = Stack::new(Duration::from_secs(30)).await;
    let q = stack.queue();
    assert!(matches!(
        q.ack(Q, "no-such-receipt").await,
        Err(QueueError::UnknownReceipt {
            queue: "ingest",
            ..
        })
    ));
    assert!(matches!(
        q.retry_later(Q, "no-such-receipt", Duration::ZERO).await,
        Err(QueueError::UnknownReceipt {
            queue: "ingest",
            ..
        })
    ));
}
