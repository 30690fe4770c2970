use std::future::Future;
use std::time::Duration;

/// A FIFO queue with SQS FIFO semantics: per-group order, a deduplication id remembered for
/// five minutes, a visibility timeout, a receive count, and a dead-letter queue after N
/// receives. Message group = one document, so documents run in parallel but each in order.
pub trait Queue: Send + Sync {
    /// Sends in order. A message whose dedup id was sent to the same queue in the last five
    /// minutes is accepted and dropped, as SQS FIFO does.
    fn send(
        &self,
        queue: QueueName,
        messages: Vec<OutgoingMessage>,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Up to `max` visible messages, never two of one group at once, never a group whose
    /// earlier message is in flight. Each received message is hidden for the visibility timeout
    /// and its receive count goes up.
    fn receive(
        &self,
        queue: QueueName,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Message>, QueueError>> + Send;

    /// Done with it: delete.
    fn ack(
        &self,
        queue: QueueName,
        receipt: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Failed: make it visible again after `delay` (a retry). After the queue's maximum number
    /// of receives the next receive moves it to the dead-letter queue instead.
    fn retry_later(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Keeps a received message hidden for `by` from now (a heartbeat while its step runs),
    /// keeping its receipt valid; a step that outlives the visibility timeout must never run on
    /// two workers at once.
    fn extend(
        &self,
        queue: QueueName,
        receipt: &str,
        by: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Moves a received message to the dead-letter queue now: no retry can make it succeed (an
    /// undecodable body, a document the source does not have), so it must not spend its
    /// remaining deliveries first.
    fn dead_letter(
        &self,
        queue: QueueName,
        message: &Message,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Makes a received message visible again after `delay` WITHOUT spending one of its
    /// deliveries: the failure was the integration's (credentials refused, the target down),
    /// not the message's, and a long outage must not dead-letter every document in flight.
    fn defer(
        &self,
        queue: QueueName,
        message: &Message,
        delay: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Messages waiting (visible or in flight), for "until idle" loops and progress.
    fn depth(&self, queue: QueueName) -> impl Future<Output = Result<u64, QueueError>> + Send;

    /// Messages visible now or becoming visible within `horizon` (a retry due soon, an
    /// in-flight message whose lease ends by then): what an "until idle" loop waits for; a
    /// message due later (a retry an hour away) is left for a later run. An adapter that
    /// cannot tell counts every message, as [`Queue::depth`] does.
    fn due_within(
        &self,
        queue: QueueName,
        horizon: Duration,
    ) -> impl Future<Output = Result<u64, QueueError>> + Send {
        let _ = horizon;
        self.depth(queue)
    }

    /// Waits, for a worker that found nothing to receive, until there may be work: a message
    /// sent, settled or made visible again, or a delay running out; at most `longest`. An
    /// adapter that cannot tell waits a short fixed time (or `longest`, if shorter).
    fn idle(&self, longest: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(longest.min(Duration::from_millis(50)))
    }

    /// What is in the dead-letter queue of `queue`.
    fn dead_letters(
        &self,
        queue: QueueName,
    ) -> impl Future<Output = Result<Vec<Message>, QueueError>> + Send;
}

/// The pipeline's queues (`ingest.fifo`, `post.fifo` in the design).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueName {
    /// References to source documents to fetch and map.
    Ingest,
    /// Resolved documents to post to the target.
    Post,
}

impl QueueName {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Ingest => "ingest",
            QueueName::Post => "post",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub group_id: String,
    pub dedup_id: String,
    pub body: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Handle for ack/retry of this delivery.
    pub receipt: String,
    pub group_id: String,
    pub dedup_id: String,
    pub body: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue {queue}: {message}")]
    Backend {
        queue: &'static str,
        message: String,
    },
    #[error(
        "queue {queue}: receipt '{receipt}' is not in flight (expired or already acknowledged)"
    )]
    UnknownReceipt {
        queue: &'static str,
        receipt: String,
    },
}

/// A dedup id from the parts that identify a document version: colon-free (SQS FIFO allows
/// `[A-Za-z0-9!"#$%&'()*+,-./;<=>?@[\]^_`{|}~]`, we keep to a safe subset) and at most 128
/// characters; a longer one is shortened with a hash so two long ids stay distinct.
pub fn dedup_id(parts: &[&str]) -> String {
    let raw = parts.join("-");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() <= 128 {
        return clean;
    }
    format!(
        "{}-{}",
        &clean[..63],
        crate::digest::short_hex(raw.as_bytes(), 64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_id_has_no_colons_and_fits_sqs() {
        let id = dedup_id(&["coupa-bc", "invoice", "92010", "2024-04-01T02:19:09+03:00"]);
        assert!(!id.contains(':'));
        assert!(id.len() <= 128);
        assert_eq!(id, "coupa-bc-invoice-92010-2024-04-01T02_19_09_03_00");
    }

    #[test]
    fn long_dedup_ids_stay_distinct_and_short() {
        let a = dedup_id(&[&"x".repeat(200), "1"]);
        let b = dedup_id(&[&"x".repeat(200), "2"]);
        assert_ne!(a, b);
        assert!(a.len() <= 128 && b.len() <= 128);
    }
}
