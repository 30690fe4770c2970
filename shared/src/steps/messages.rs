use serde::{Deserialize, Serialize};

use crate::model::DocumentKind;
use crate::ports::{OutgoingMessage, dedup_id};

/// "Fetch and map this source document": what webhooks and polls enqueue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestMessage {
    pub integration: String,
    pub kind: DocumentKind,
    pub source_id: String,
    /// The source's version when it was seen (Coupa `updated-at`), for the dedup id.
    pub version: Option<String>,
    /// "webhook", "poll", "retry", "replay" (for the audit trail).
    pub via: String,
    /// The document as the poll already read it (issue #16 item 5): the map step uses it
    /// instead of reading the source again while it is fresh ([`CARRIED_DOCUMENT_MAX_AGE`]).
    /// Only a poll fills it, and only when the message stays within the queue's size limit
    /// ([`MAX_CARRIED_MESSAGE_BYTES`]); a webhook stub, a parked document's retry and a replay
    /// carry none, so they read the source as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<CarriedDocument>,
}

/// A document a poll read, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedDocument {
    pub read_at: chrono::DateTime<chrono::Utc>,
    pub document: crate::ports::SourceDocument,
}

/// How long a carried document stands for the source's current one. The map step re-reading
/// the source used to be a last look at the document (an invoice put on hold or un-approved
/// after the poll saw it is skipped); carrying the poll's reading moves that look back to the
/// listing. Within this age the difference is the poll-to-map latency of a queue that keeps
/// up; a message that waited longer (a backlog behind a throttled ERP) reads the source again,
/// so a change made while it waited is seen as before.
pub const CARRIED_DOCUMENT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// The largest ingest message that carries its document. SQS takes 256 KiB per message (and
/// per SendMessageBatch call, which the SQS adapter splits by size); the margin leaves room for
/// the message's attributes and the JSON escaping of a body sent inside another JSON document.
pub const MAX_CARRIED_MESSAGE_BYTES: usize = 200 * 1024;

impl IngestMessage {
    /// `self` carrying `document` when the message stays within
    /// [`MAX_CARRIED_MESSAGE_BYTES`]; else without it (the map step reads the source).
    pub fn carrying(
        mut self,
        document: Option<crate::ports::SourceDocument>,
        read_at: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        self.document = document.map(|document| CarriedDocument { read_at, document });
        if self.document.is_some()
            && serde_json::to_string(&self).map_or(true, |b| b.len() > MAX_CARRIED_MESSAGE_BYTES)
        {
            self.document = None;
        }
        self
    }
}

impl IngestMessage {
    pub fn to_outgoing(&self) -> OutgoingMessage {
        let version = self.version.as_deref().unwrap_or("unversioned");
        let via_retry = matches!(self.via.as_str(), "retry" | "replay");
        // A retry of a parked document must not be swallowed as a duplicate of its first
        // delivery; the ledger keeps it exactly once downstream.
        let suffix = if via_retry {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            String::new()
        };
        OutgoingMessage {
            group_id: group_id(&self.integration, self.kind, &self.source_id),
            dedup_id: dedup_id(&[
                &self.integration,
                self.kind.as_str(),
                &self.source_id,
                version,
                &suffix,
            ]),
            body: serde_json::to_string(self).expect("serialisable"),
        }
    }
}

/// "Make the target hold this": the one message type of the post queue, whatever the
/// integration and the document. `payload` is what the flow resolved (an invoice for the ERP,
/// an order, a vendor to create, a payment to report back); only the flow reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostEnvelope {
    pub integration: String,
    pub kind: DocumentKind,
    pub source_id: String,
    /// The source version it was resolved from (or what makes it distinct: a payment's ERP
    /// invoice), for the dedup id.
    pub version: Option<String>,
    /// Unique per map run: a re-mapped document (a retry of a parked one, a replay, a second
    /// poll past the ingest dedup window) must reach the post step even within five minutes
    /// of its first post message, or the map step would unpark a document whose message the
    /// queue silently dropped. The ledger, not the queue, keeps the post exactly once.
    /// Otherwise (vendors, payments) a repeat within five minutes is dropped by the queue
    /// before it costs a ledger read.
    pub per_run: bool,
    pub payload: serde_json::Value,
}

impl PostEnvelope {
    pub fn new<T: Serialize>(
        integration: &str,
        kind: DocumentKind,
        source_id: &str,
        version: Option<String>,
        per_run: bool,
        payload: &T,
    ) -> Self {
        Self {
            integration: integration.to_string(),
            kind,
            source_id: source_id.to_string(),
            version,
            per_run,
            payload: serde_json::to_value(payload).expect("serialisable payload"),
        }
    }

    pub fn to_outgoing(&self) -> OutgoingMessage {
        let run = if self.per_run {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            String::new()
        };
        OutgoingMessage {
            group_id: group_id(&self.integration, self.kind, &self.source_id),
            dedup_id: dedup_id(&[
                &self.integration,
                "post",
                self.kind.as_str(),
                &self.source_id,
                self.version.as_deref().unwrap_or(""),
                &run,
            ]),
            body: serde_json::to_string(self).expect("serialisable"),
        }
    }

    /// The payload as what the flow put in it.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(self.payload.clone()).map_err(|e| {
            format!(
                "the {} payload of {} is not readable: {e}",
                self.kind.as_str(),
                self.source_id
            )
        })
    }

    /// A post-queue body: an envelope, or one of the two message types queued before it
    /// existed (a deployment upgraded with messages in flight must lose none).
    pub fn decode(body: &str) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
        if v.get("payload").is_some() {
            return serde_json::from_value(v).map_err(|e| e.to_string());
        }
        let integration = v["integration"]
            .as_str()
            .ok_or("no integration")?
            .to_string();
        if let Some(task) = v.get("task").and_then(|t| t.as_str()) {
            let (kind, field, id_field) = match task {
                "purchase_order" => (DocumentKind::PurchaseOrder, "order", "source_id"),
                "vendor" => (DocumentKind::Supplier, "vendor", "supplier_source_id"),
                "payment" => (DocumentKind::Payment, "payment", "source_id"),
                other => return Err(format!("unknown task '{other}'")),
            };
            let payload = v.get(field).cloned().ok_or("no payload")?;
            let source_id = payload[id_field]
                .as_str()
                .ok_or("no source id")?
                .to_string();
            return Ok(Self {
                integration,
                kind,
                source_id,
                version: None,
                per_run: false,
                payload,
            });
        }
        let payload = v
            .get("invoice")
            .cloned()
            .ok_or("neither an envelope nor an invoice")?;
        let source_id = payload["source_id"]
            .as_str()
            .ok_or("no source id")?
            .to_string();
        Ok(Self {
            integration,
            kind: DocumentKind::Invoice,
            source_id,
            version: None,
            per_run: true,
            payload,
        })
    }
}

/// One message group per document: documents run in parallel, each one in order.
fn group_id(integration: &str, kind: DocumentKind, source_id: &str) -> String {
    dedup_id(&[integration, kind.as_str(), source_id])
}

#[cfg(test)]
mod carrying_tests {
    use super::*;
    use crate::ports::SourceDocument;

    fn msg() -> IngestMessage {
        IngestMessage {
            integration: "coupa-bc".into(),
            kind: DocumentKind::Invoice,
            source_id: "42".into(),
            version: Some("2026-12-04T10:00:00+00:00".into()),
            via: "poll".into(),
            document: None,
        }
    }

    fn doc(reason_len: usize) -> SourceDocument {
        SourceDocument::Unreadable {
            number: Some("INV-1".into()),
            reason: "x".repeat(reason_len),
        }
    }

    #[test]
    fn a_document_that_fits_travels_and_survives_the_queue() {
        let m = msg().carrying(Some(doc(1000)), chrono::Utc::now());
        assert_eq!(m.document.as_ref().map(|c| &c.document), Some(&doc(1000)));
        let back: IngestMessage = serde_json::from_str(&m.to_outgoing().body).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn a_document_too_large_for_the_queue_is_left_to_the_map_step() {
        let m = msg().carrying(Some(doc(MAX_CARRIED_MESSAGE_BYTES)), chrono::Utc::now());
        assert_eq!(m.document, None);
    }

    #[test]
    fn a_message_queued_before_documents_travelled_still_reads() {
        let old = r#"{"integration":"coupa-bc","kind":"invoice","source_id":"42","version":null,"via":"poll"}"#;
        let m: IngestMessage = serde_json::from_str(old).unwrap();
        assert_eq!(m.document, None);
        assert!(
            !msg().to_outgoing().body.contains("document"),
            "absent, not null"
        );
    }
}
