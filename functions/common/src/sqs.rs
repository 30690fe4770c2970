//! SQS FIFO batches (mapper, poster): one step per record, in order, reporting partial batch
//! failures. When a record fails, it and every later record of its MESSAGE GROUP are reported,
//! so a document's messages never run out of order (AWS: "Implementing partial batch
//! responses" for FIFO event sources). Records of other groups go on: order is only promised
//! within a group, and stopping them would spend their deliveries on a neighbour's failure
//! (after five, they would be dead-lettered without ever having run). A record without a
//! group id stops the rest of the batch, the safe reading.

use std::collections::HashSet;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use mlc_shared::ports::{Message, QueueName};
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
        let message = Message {
            receipt: record.receipt_handle.clone().unwrap_or_default(),
            group_id: group.clone().unwrap_or_default(),
            dedup_id: record
                .attributes
                .get("MessageDeduplicationId")
                .cloned()
                .unwrap_or_else(|| id.clone()),
            body: record.body.clone().unwrap_or_default(),
            receive_count: receive_count(&record),
        };
        let delivery = ctx.pipeline.run_leased(queue, &message, &mut stats).await;
        // Delays (a busy claim's lease, the backoff or the server's Retry-After, a backed-off
        // integration) are set on the message itself, so it does not come back after the
        // queue's visibility timeout instead; a poison message goes to the dead-letter queue now.
        let settled = match ctx.pipeline.settle(queue, &message, &delivery, false).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "could not settle the message on the queue; it returns after the visibility timeout");
                false
            }
        };
        match delivery {
            Delivery::Done => {}
            // In the dead-letter queue already: let the event source delete it. If it could not
            // be moved there, it must not be deleted: report it failed, it comes back.
            Delivery::DeadLetterNow { .. } if settled => {}
            Delivery::DeadLetterNow { error } => {
                tracing::warn!(message_id = %id, %error, "poison message not yet dead-lettered");
                stopped.insert(group);
                failures.push(failure(id));
            }
            Delivery::RetryIn(_) => {
                stopped.insert(group);
                failures.push(failure(id));
            }
            Delivery::Failed {
                error,
                dead_lettered,
                ..
            } => {
                tracing::warn!(message_id = %id, %error, dead_lettered, "record failed");
                stopped.insert(group);
                failures.push(failure(id));
            }
            Delivery::Deferred { error, wait } => {
                tracing::warn!(message_id = %id, %error, ?wait, "integration backed off");
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
