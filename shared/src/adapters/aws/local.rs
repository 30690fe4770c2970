//! Creating the queues and tables of the contract, for tests and local runs against an
//! emulator. A deployment gets them from the SAM template (`infra/template.yaml`), never from
//! here.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::{AwsSettings, TableNames};

/// Receives before SQS moves a message to the dead-letter queue (the contract's redrive policy).
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// The queue name in a queue URL (its last path segment; a bare name is its own name).
fn queue_name(url: &str) -> Result<&str, String> {
    let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or(url);
    if !name.ends_with(".fifo") {
        return Err(format!(
            "queue '{url}' is not a FIFO queue (name must end in .fifo)"
        ));
    }
    Ok(name)
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    mut attributes: HashMap<QueueAttributeName, String>,
) -> Result<String, String> {
    attributes.insert(QueueAttributeName::FifoQueue, "true".into());
    attributes.insert(
        QueueAttributeName::ContentBasedDeduplication,
        "false".into(),
    );
    let out = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| {
            format!(
                "CreateQueue {name}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            )
        })?;
    out.queue_url
        .ok_or_else(|| format!("CreateQueue {name}: no queue URL in the answer"))
}

/// A FIFO queue with its FIFO dead-letter queue; returns (queue URL, DLQ URL).
async fn ensure_queue_pair(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    dlq_url: &str,
    visibility_timeout: Duration,
) -> Result<(String, String), String> {
    let dlq = create_queue(sqs, queue_name(dlq_url)?, HashMap::new()).await?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetQueueAttributes {dlq}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            )
        })?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| format!("GetQueueAttributes {dlq}: no QueueArn"))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
    });
    let queue = create_queue(
        sqs,
        queue_name(queue_url)?,
        HashMap::from([
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.as_secs().to_string(),
            ),
        ]),
    )
    .await?;
    Ok((queue, dlq))
}

fn attr(name: &str) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, String> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| e.to_string())
}

fn index(name: &str, hash: &str, range: &str) -> Result<GlobalSecondaryIndex, String> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash)?)
        .key_schema(key(range, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())
}

/// Creates `table` (on demand) unless it exists, and waits until it is active.
async fn ensure_table(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    hash: &str,
    range: Option<&str>,
    indexes: &[(&str, &str, &str)],
) -> Result<(), String> {
    let ctx = |e: &dyn std::fmt::Display| format!("CreateTable {table}: {e}");
    let mut names: Vec<&str> = vec![hash];
    names.extend(range);
    for (_, h, r) in indexes {
        names.extend([*h, *r]);
    }
    names.sort_unstable();
    names.dedup();
    let mut req = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(hash, KeyType::Hash).map_err(|e| ctx(&e))?);
    if let Some(range) = range {
        req = req.key_schema(key(range, KeyType::Range).map_err(|e| ctx(&e))?);
    }
    for name in names {
        req = req.attribute_definitions(attr(name).map_err(|e| ctx(&e))?);
    }
    for (name, h, r) in indexes {
        req = req.global_secondary_indexes(index(name, h, r).map_err(|e| ctx(&e))?);
    }
    if let Err(e) = req.send().await {
        let exists = e
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        if !exists {
            return Err(ctx(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)));
        }
    }
    for _ in 0..120 {
        let status = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "DescribeTable {table}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?
            .table
            .and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("table {table} did not become active"))
}

/// FOR TESTS AND LOCAL RUNS ONLY: creates, where absent, the two FIFO queues with their FIFO
/// dead-letter queues (redrive after [`MAX_RECEIVE_COUNT`] receives; `visibility_timeout` on
/// the main queues) and the five tables with the contract's keys and audit indexes. Queue names
/// are the last segments of the settings' queue URLs. Returns the settings with the queue URLs
/// SQS gave.
pub async fn ensure_resources(
    sqs: &aws_sdk_sqs::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    settings: &AwsSettings,
    visibility_timeout: Duration,
) -> Result<AwsSettings, String> {
    let (ingest, ingest_dlq) = ensure_queue_pair(
        sqs,
        &settings.ingest_queue_url,
        &settings.ingest_dlq_url,
        visibility_timeout,
    )
    .await?;
    let (post, post_dlq) = ensure_queue_pair(
        sqs,
        &settings.post_queue_url,
        &settings.post_dlq_url,
        visibility_timeout,
    )
    .await?;
    let TableNames {
        ledger,
        watermarks,
        mappings,
        parked,
        audit,
    } = &settings.tables;
    ensure_table(dynamodb, ledger, "ledger_key", None, &[]).await?;
    ensure_table(dynamodb, watermarks, "watermark_key", None, &[]).await?;
    ensure_table(
        dynamodb,
        mappings,
        "mapping_table",
        Some("source_value"),
        &[],
    )
    .await?;
    ensure_table(dynamodb, parked, "document_key", None, &[]).await?;
    ensure_table(
        dynamodb,
        audit,
        "audit_id",
        None,
        &[
            ("by_document", "document", "at"),
            ("by_status_date", "status", "at"),
            ("by_document_number", "source_document_number", "at"),
        ],
    )
    .await?;
    Ok(AwsSettings {
        ingest_queue_url: ingest,
        post_queue_url: post,
        ingest_dlq_url: ingest_dlq,
        post_dlq_url: post_dlq,
        ..settings.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_come_from_urls_or_bare_names() {
        assert_eq!(
            queue_name("https://sqs.eu-west-1.amazonaws.com/1234/mlc-ingest.fifo").unwrap(),
            "mlc-ingest.fifo"
        );
        assert_eq!(queue_name("x-post.fifo").unwrap(), "x-post.fifo");
        assert!(queue_name("https://sqs/1234/standard").is_err());
    }
}
