use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The pipeline step that wrote an audit item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Webhook,
    Poll,
    Map,
    Post,
    Confirm,
    Replay,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Webhook => "webhook",
            Step::Poll => "poll",
            Step::Map => "map",
            Step::Post => "post",
            Step::Confirm => "confirm",
            Step::Replay => "replay",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Step::Webhook,
            Step::Poll,
            Step::Map,
            Step::Post,
            Step::Confirm,
            Step::Replay,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// Outcome of a step for one document, in words a finance user reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditStatus {
    /// Accepted from the source (webhook or poll) and queued.
    Received,
    /// Vendor, accounts and dimensions resolved; queued for posting.
    Mapped,
    /// Cannot go on until someone acts (a missing mapping, a document kind not supported yet);
    /// retried when the mapping exists.
    Parked,
    /// Posted in the target.
    Posted,
    /// Already posted earlier: nothing was done (the exactly-once guard at work).
    AlreadyPosted,
    /// Changed in the target to match a changed source document (a purchase order).
    Updated,
    /// A retryable failure; the message will be retried.
    Failed,
    /// Gave up after the maximum number of attempts; in the dead-letter queue, replayable.
    DeadLettered,
    /// Refused before any work (bad document, bad signature).
    Rejected,
    /// A dead letter a person closed without writing the document, with why.
    Discarded,
    /// Changed on both sides of a two-way sync since the last sync: resolved by the configured
    /// rule (the error says both versions and which won), never silently.
    Conflict,
    /// Posted, then reversed in the target (a credit memo applied to it) because the rest of
    /// its source document could not be posted (a Concur report is all or nothing).
    BackedOut,
}

impl AuditStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditStatus::Received => "received",
            AuditStatus::Mapped => "mapped",
            AuditStatus::Parked => "parked",
            AuditStatus::Posted => "posted",
            AuditStatus::AlreadyPosted => "already_posted",
            AuditStatus::Updated => "updated",
            AuditStatus::Failed => "failed",
            AuditStatus::DeadLettered => "dead_lettered",
            AuditStatus::Rejected => "rejected",
            AuditStatus::Discarded => "discarded",
            AuditStatus::Conflict => "conflict",
            AuditStatus::BackedOut => "backed_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            AuditStatus::Received,
            AuditStatus::Mapped,
            AuditStatus::Parked,
            AuditStatus::Posted,
            AuditStatus::AlreadyPosted,
            AuditStatus::Updated,
            AuditStatus::Failed,
            AuditStatus::DeadLettered,
            AuditStatus::Rejected,
            AuditStatus::Discarded,
            AuditStatus::Conflict,
            AuditStatus::BackedOut,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One item per document per step outcome, with plain attribute names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditItem {
    pub at: DateTime<Utc>,
    pub integration: String,
    pub document_kind: String,
    /// The source system's id of the document.
    pub source_id: String,
    /// The number a person sees (the supplier's invoice number).
    pub source_document_number: Option<String>,
    pub vendor: Option<String>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub step: Step,
    pub status: AuditStatus,
    pub target_document_number: Option<String>,
    pub target_id: Option<String>,
    pub error: Option<String>,
    /// How many times the same outcome was seen again afterwards (a replayed webhook, a poll
    /// re-reading its overlap, a redelivered message stopped by the ledger): counted here
    /// instead of logged as rows ([`Audit::append_audit_once`](super::Audit::append_audit_once)).
    #[serde(default)]
    pub repeats: u64,
}

/// Filters for the audit trail; every field optional, all given ones must match.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub integration: Option<String>,
    pub status: Option<AuditStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub vendor: Option<String>,
    /// Matches the source id or the source document number.
    pub document: Option<String>,
    pub limit: Option<usize>,
}
