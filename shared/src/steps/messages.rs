use serde::{Deserialize, Serialize};

use crate::model::{
    DocumentKind, PaymentBack, ResolvedInvoice, ResolvedPurchaseOrder, VendorToCreate,
};
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

/// "Post this resolved document to the target".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessage {
    pub integration: String,
    pub invoice: ResolvedInvoice,
}

impl PostMessage {
    /// The dedup id is unique per map run, not (document, version): a re-mapped document (a
    /// retry of a parked one, a replay, a second poll past the ingest dedup window) must reach
    /// the post step even within five minutes of its first post message, or the map step would
    /// unpark a document whose message the queue silently dropped. The ledger, not the queue,
    /// keeps the post exactly once; a repeat only costs one claim read.
    pub fn to_outgoing(&self) -> OutgoingMessage {
        let kind = crate::model::DocumentKind::Invoice;
        let run = uuid::Uuid::new_v4().simple().to_string();
        OutgoingMessage {
            group_id: group_id(&self.integration, kind, &self.invoice.source_id),
            dedup_id: dedup_id(&[
                &self.integration,
                "post",
                &self.invoice.source_id,
                &self.invoice.version.timestamp().to_string(),
                &run,
            ]),
            body: serde_json::to_string(self).expect("serialisable"),
        }
    }
}

/// "Make the target match this": the post queue's other documents (purchase orders, vendors
/// to create, payments to report back). Told apart from a [`PostMessage`] by its `task` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMessage {
    pub integration: String,
    #[serde(flatten)]
    pub task: SyncTask,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum SyncTask {
    PurchaseOrder { order: ResolvedPurchaseOrder },
    Vendor { vendor: VendorToCreate },
    Payment { payment: PaymentBack },
}

impl SyncTask {
    pub fn kind(&self) -> DocumentKind {
        match self {
            SyncTask::PurchaseOrder { .. } => DocumentKind::PurchaseOrder,
            SyncTask::Vendor { .. } => DocumentKind::Supplier,
            SyncTask::Payment { .. } => DocumentKind::Payment,
        }
    }

    pub fn source_id(&self) -> &str {
        match self {
            SyncTask::PurchaseOrder { order } => &order.source_id,
            SyncTask::Vendor { vendor } => &vendor.supplier_source_id,
            SyncTask::Payment { payment } => &payment.source_id,
        }
    }
}

impl SyncMessage {
    /// Orders: per (order, version) and map run, like post messages (the ledger keeps each
    /// version once). Vendors and payments: per document, so a repeat within five minutes is
    /// dropped by the queue before it costs a ledger read.
    pub fn to_outgoing(&self) -> OutgoingMessage {
        let kind = self.task.kind();
        let id = self.task.source_id();
        let dedup = match &self.task {
            SyncTask::PurchaseOrder { order } => dedup_id(&[
                &self.integration,
                "sync",
                id,
                &order.version.timestamp().to_string(),
                &uuid::Uuid::new_v4().simple().to_string(),
            ]),
            SyncTask::Vendor { .. } => dedup_id(&[&self.integration, "vendor", id]),
            SyncTask::Payment { payment } => {
                dedup_id(&[&self.integration, "payment", id, &payment.target_id])
            }
        };
        OutgoingMessage {
            group_id: group_id(&self.integration, kind, id),
            dedup_id: dedup,
            body: serde_json::to_string(self).expect("serialisable"),
        }
    }
}

/// One message group per document: documents run in parallel, each one in order.
fn group_id(integration: &str, kind: DocumentKind, source_id: &str) -> String {
    dedup_id(&[integration, kind.as_str(), source_id])
}
