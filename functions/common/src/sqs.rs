//! SQS FIFO batches (mapper, poster): one step per record, in order, reporting partial batch
//! failures. When a record fails, it and every later record of its MESSAGE GROUP are reported,
//! so a document's messages never run out of order (AWS: "Implementing partial batch
//! responses" for FIFO event sources). Records of other groups go on: order is only promised
//! within a group, and stopping them would spend their deliveries on a neighbour's failure
//! (after five, they would be dead-lettered without ever having run). A record without a
//! group id stops the rest of the batch, the safe reading.

use std::collections::HashSet;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use mlc_shared::ports::{Queue, QueueName};
use mlc_shared::runtime::{Delivery, DrainStats};

use crate::Context;

pub async fn handle_batch(ctx: &Context, queue: QueueName, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    // Groups with a failed record in this batch; `None`: a record without a group failed.
    let mut stopped: HashSet<Option<String>> = HashSet::new();
    let mut stats = DrainStats::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record.attributes.get("MessageGroupId").cloned();
        if stopped.contains(&None) || stopped.contains(&group) {
            failures.push(failure(id));
            continue;
        }
        let body = record.body.as_deref().unwrap_or_default();
        let delivery = ctx
            .pipeline
            .run_message(queue, body, receive_count(&record), &mut stats)
            .await;
        match delivery {
            Delivery::Done => {}
            Delivery::RetryIn(wait) => {
                // Held by another worker's claim: come back when its lease ends, not after the
                // queue's visibility timeout.
                if let Some(receipt) = &record.receipt_handle
                    && let Err(e) = ctx
                        .pipeline
                        .env
                        .queue
                        .retry_later(queue, receipt, wait)
                        .await
                {
                    tracing::warn!(error = %e, "could not delay the message; it returns after the visibility timeout");
                }
                stopped.insert(group);
                failures.push(failure(id));
            }
            Delivery::Failed {
                error,
                dead_lettered,
            } => {
                tracing::warn!(message_id = %id, %error, dead_lettered, "record failed");
                stopped.insert(group);
                failures.push(failure(id));
            }
        }
    }
    tracing::info!(?stats, failed = failures.len(), "batch done");
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

fn failure(id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id;
    f
}

/// `ApproximateReceiveCount`: 1 on the first delivery.
fn receive_count(m: &SqsMessage) -> u32 {
    m.attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}
