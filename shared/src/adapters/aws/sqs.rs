//! The queues over SQS FIFO.
//!
//! SQS does the semantics the port asks for: per-group order, the five-minute dedup window,
//! the visibility timeout, the receive count and the redrive to the dead-letter queue after
//! `maxReceiveCount` receives (5, set on the queue). One thing differs from the embedded queue:
//! SQS may hand several messages of one group in one `receive` batch (in order); a caller that
//! receives more than one message at a time must handle a group's messages in order.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

use super::AwsSettings;
use crate::ports::{Message, OutgoingMessage, Queue, QueueError, QueueName};

/// SQS's limit on entries in a batch call and messages in one receive.
const BATCH: usize = 10;
/// The payload of one SendMessageBatch call (SQS: 256 KiB for the batch).
const BATCH_BYTES: usize = 256 * 1024;
/// SQS's maximum visibility timeout (12 hours).
const MAX_VISIBILITY: u64 = 12 * 60 * 60;
/// How many receive rounds `dead_letters` makes at most.
const PEEK_ROUNDS: usize = 10;

/// The two FIFO queues and their dead-letter queues. Clones share the SDK client.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    ingest: String,
    post: String,
    ingest_dlq: String,
    post_dlq: String,
    wait_time: Duration,
}

impl fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsQueue")
            .field("ingest", &self.ingest)
            .field("post", &self.post)
            .field("ingest_dlq", &self.ingest_dlq)
            .field("post_dlq", &self.post_dlq)
            .field("wait_time", &self.wait_time)
            .finish()
    }
}

impl SqsQueue {
    /// The queues of `settings`, with a one-second long poll on `receive`.
    pub fn new(client: Client, settings: &AwsSettings) -> Self {
        Self {
            client,
            ingest: settings.ingest_queue_url.clone(),
            post: settings.post_queue_url.clone(),
            ingest_dlq: settings.ingest_dlq_url.clone(),
            post_dlq: settings.post_dlq_url.clone(),
            wait_time: Duration::from_secs(1),
        }
    }

    /// From an SDK configuration (see [`super::sdk_config`]).
    pub fn from_conf(conf: &aws_config::SdkConfig, settings: &AwsSettings) -> Self {
        Self::new(Client::new(conf), settings)
    }

    /// How long `receive` waits for a message when none is visible (SQS long polling, at most
    /// 20 s; 0 = return at once).
    pub fn with_wait_time(mut self, wait: Duration) -> Self {
        self.wait_time = wait.min(Duration::from_secs(20));
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The URL of `queue`.
    pub fn url(&self, queue: QueueName) -> &str {
        match queue {
            QueueName::Ingest => &self.ingest,
            QueueName::Post => &self.post,
        }
    }

    /// The URL of the dead-letter queue of `queue`.
    pub fn dlq_url(&self, queue: QueueName) -> &str {
        match queue {
            QueueName::Ingest => &self.ingest_dlq,
            QueueName::Post => &self.post_dlq,
        }
    }
}

fn backend(queue: QueueName, message: String) -> QueueError {
    QueueError::Backend {
        queue: queue.as_str(),
        message,
    }
}

/// SQS's answer to a receipt handle that is spent, expired or made up.
fn is_bad_receipt(code: Option<&str>, message: Option<&str>) -> bool {
    match code {
        Some("ReceiptHandleIsInvalid")
        | Some("AWS.SimpleQueueService.MessageNotInflight")
        | Some("MessageNotInflight") => true,
        Some("InvalidParameterValue") => message.is_some_and(|m| m.contains("ReceiptHandle")),
        _ => false,
    }
}

/// Whole seconds, rounded up, clamped to what SQS accepts.
fn visibility_secs(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.min(MAX_VISIBILITY) as i32
}

/// Consecutive runs of at most ten messages and (unless one message alone is bigger) at most
/// [`BATCH_BYTES`] of payload.
fn batches(messages: &[OutgoingMessage]) -> Vec<&[OutgoingMessage]> {
    let size = |m: &OutgoingMessage| m.body.len() + m.group_id.len() + m.dedup_id.len();
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        let full = i - start == BATCH || (i > start && bytes + size(m) > BATCH_BYTES);
        if full {
            out.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size(m);
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

fn to_message(queue: QueueName, m: &aws_sdk_sqs::types::Message) -> Result<Message, QueueError> {
    let attr = |name: MessageSystemAttributeName| {
        m.attributes()
            .and_then(|a| a.get(&name))
            .cloned()
            .unwrap_or_default()
    };
    let receipt = m
        .receipt_handle()
        .ok_or_else(|| backend(queue, "a received message has no receipt handle".into()))?;
    let count = attr(MessageSystemAttributeName::ApproximateReceiveCount);
    Ok(Message {
        receipt: receipt.to_string(),
        group_id: attr(MessageSystemAttributeName::MessageGroupId),
        dedup_id: attr(MessageSystemAttributeName::MessageDeduplicationId),
        body: m.body().unwrap_or_default().to_string(),
        receive_count: count.parse().map_err(|_| {
            backend(
                queue,
                format!("a received message has a bad ApproximateReceiveCount '{count}'"),
            )
        })?,
    })
}

impl SqsQueue {
    async fn receive_from(
        &self,
        queue: QueueName,
        url: &str,
        max: usize,
        wait: Duration,
        visibility: Option<i32>,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, BATCH) as i32)
            .wait_time_seconds(wait.as_secs() as i32)
            .set_visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .message_system_attribute_names(MessageSystemAttributeName::MessageDeduplicationId)
            .send()
            .await
            .map_err(|e| {
                backend(
                    queue,
                    format!("ReceiveMessage from {url}: {}", DisplayErrorContext(&e)),
                )
            })?;
        Ok(out.messages.unwrap_or_default())
    }
}

impl Queue for SqsQueue {
    async fn send(
        &self,
        queue: QueueName,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), QueueError> {
        let url = self.url(queue);
        // In order, one batch after the other: a later batch is only sent once the earlier one
        // is in the queue, so a group's messages keep their order.
        for chunk in batches(&messages) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&m.body)
                        .message_group_id(&m.group_id)
                        .message_deduplication_id(&m.dedup_id)
                        .build()
                        .map_err(|e| backend(queue, format!("SendMessageBatch entry: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    backend(
                        queue,
                        format!("SendMessageBatch to {url}: {}", DisplayErrorContext(&e)),
                    )
                })?;
            if let Some(first) = out.failed().first() {
                let which = first
                    .id()
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| chunk.get(i))
                    .map(|m| format!("group '{}', dedup id '{}'", m.group_id, m.dedup_id))
                    .unwrap_or_else(|| format!("entry {}", first.id()));
                return Err(backend(
                    queue,
                    format!(
                        "SendMessageBatch to {url}: {} of {} messages failed; first: {which}: \
                         {} {}",
                        out.failed().len(),
                        chunk.len(),
                        first.code(),
                        first.message().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn receive(&self, queue: QueueName, max: usize) -> Result<Vec<Message>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let url = self.url(queue);
        self.receive_from(queue, url, max, self.wait_time, None)
            .await?
            .iter()
            .map(|m| to_message(queue, m))
            .collect()
    }

    async fn ack(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        let url = self.url(queue);
        match self
            .client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_bad_receipt(e.code(), e.message()) => Err(QueueError::UnknownReceipt {
                queue: queue.as_str(),
                receipt: receipt.to_string(),
            }),
            Err(e) => Err(backend(
                queue,
                format!("DeleteMessage on {url}: {}", DisplayErrorContext(&e)),
            )),
        }
    }

    async fn retry_later(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let url = self.url(queue);
        match self
            .client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(visibility_secs(delay))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_bad_receipt(e.code(), e.message()) => Err(QueueError::UnknownReceipt {
                queue: queue.as_str(),
                receipt: receipt.to_string(),
            }),
            Err(e) => Err(backend(
                queue,
                format!(
                    "ChangeMessageVisibility on {url}: {}",
                    DisplayErrorContext(&e)
                ),
            )),
        }
    }

    /// `ChangeMessageVisibility` counts from now, which is what a heartbeat needs.
    async fn extend(
        &self,
        queue: QueueName,
        receipt: &str,
        by: Duration,
    ) -> Result<(), QueueError> {
        self.retry_later(queue, receipt, by).await
    }

    async fn dead_letter(&self, queue: QueueName, message: &Message) -> Result<(), QueueError> {
        let dlq = self.dlq_url(queue);
        // A dedup id of its own: the same message dead-lettered twice within five minutes (after
        // a redrive) must not be dropped by the dead-letter queue.
        let dedup = crate::ports::dedup_id(&[
            &message.dedup_id,
            "dl",
            &uuid::Uuid::new_v4().simple().to_string()[..12],
        ]);
        self.client
            .send_message()
            .queue_url(dlq)
            .message_body(&message.body)
            .message_group_id(&message.group_id)
            .message_deduplication_id(dedup)
            .send()
            .await
            .map_err(|e| {
                backend(
                    queue,
                    format!("SendMessage to {dlq}: {}", DisplayErrorContext(&e)),
                )
            })?;
        // In the dead-letter queue first, then gone from the queue: a crash in between leaves a
        // copy in both, which the ledger makes harmless; the other order could lose it.
        self.ack(queue, &message.receipt).await
    }

    /// SQS cannot give a receive back: `ApproximateReceiveCount` only grows. The message is
    /// hidden for `delay` (keeping its place in its group, so a document's messages stay in
    /// order), and the receive still counts toward the queue's `maxReceiveCount`. The runtime
    /// makes systemic delays long and growing, so the deliveries left span a long outage;
    /// re-sending a fresh copy instead would reset the count but put the copy behind the
    /// group's later messages (an older purchase-order version applied after a newer one).
    async fn defer(
        &self,
        queue: QueueName,
        message: &Message,
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.retry_later(queue, &message.receipt, delay).await
    }

    async fn depth(&self, queue: QueueName) -> Result<u64, QueueError> {
        let url = self.url(queue);
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| {
                backend(
                    queue,
                    format!("GetQueueAttributes of {url}: {}", DisplayErrorContext(&e)),
                )
            })?;
        let attrs = out.attributes();
        let mut total = 0u64;
        for name in &names {
            if let Some(v) = attrs.and_then(|a| a.get(name)) {
                total += v.parse::<u64>().map_err(|_| {
                    backend(
                        queue,
                        format!("GetQueueAttributes of {url}: bad {} '{v}'", name.as_str()),
                    )
                })?;
            }
        }
        Ok(total)
    }

    /// Peeks: receives from the dead-letter queue (hiding what it saw so the next round sees
    /// more), then makes everything it saw visible again. Nothing is deleted. SQS FIFO hands
    /// out at most ten messages of one group this way.
    async fn dead_letters(&self, queue: QueueName) -> Result<Vec<Message>, QueueError> {
        let url = self.dlq_url(queue);
        let mut seen: HashSet<String> = HashSet::new();
        let mut out: Vec<Message> = Vec::new();
        let mut receipts: Vec<String> = Vec::new();
        let mut result = Ok(());
        for _ in 0..PEEK_ROUNDS {
            let batch = match self
                .receive_from(queue, url, BATCH, Duration::ZERO, Some(30))
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let mut fresh = 0;
            for m in &batch {
                if let Some(r) = m.receipt_handle() {
                    receipts.push(r.to_string());
                }
                let id = m.message_id().map(str::to_string);
                if id.as_ref().is_some_and(|id| !seen.insert(id.clone())) {
                    continue;
                }
                fresh += 1;
                match to_message(queue, m) {
                    Ok(m) => out.push(m),
                    Err(e) => result = Err(e),
                }
            }
            if fresh == 0 || result.is_err() {
                break;
            }
        }
        // Visible again at once, whatever happened above.
        for chunk in receipts.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            if let Err(e) = self
                .client
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                result = result.and(Err(backend(
                    queue,
                    format!(
                        "ChangeMessageVisibilityBatch on {url}: {}",
                        DisplayErrorContext(&e)
                    ),
                )));
            }
        }
        result.map(|()| out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_is_rounded_up_and_clamped_to_twelve_hours() {
        assert_eq!(visibility_secs(Duration::ZERO), 0);
        assert_eq!(visibility_secs(Duration::from_millis(1500)), 2);
        assert_eq!(visibility_secs(Duration::from_secs(30)), 30);
        assert_eq!(visibility_secs(Duration::from_secs(100_000)), 43_200);
    }

    #[test]
    fn batches_hold_at_most_ten_messages_and_256_kib() {
        let m = |n: usize| OutgoingMessage {
            group_id: "g".into(),
            dedup_id: "d".into(),
            body: "x".repeat(n),
        };
        let sizes =
            |ms: &[OutgoingMessage]| batches(ms).iter().map(|b| b.len()).collect::<Vec<_>>();
        assert_eq!(sizes(&vec![m(1); 25]), [10, 10, 5]);
        assert_eq!(sizes(&vec![m(100 * 1024); 5]), [2, 2, 1]);
        assert_eq!(sizes(&[m(300 * 1024), m(1)]), [1, 1]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn spent_receipts_are_recognised() {
        assert!(is_bad_receipt(Some("ReceiptHandleIsInvalid"), None));
        assert!(is_bad_receipt(
            Some("InvalidParameterValue"),
            Some("Value x for parameter ReceiptHandle is invalid.")
        ));
        assert!(!is_bad_receipt(Some("InvalidParameterValue"), Some("bad")));
        assert!(!is_bad_receipt(Some("AccessDenied"), None));
    }
}
