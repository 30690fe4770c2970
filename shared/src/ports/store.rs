use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::audit::{AuditFilter, AuditItem};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(String),
    /// The ledger claim on this document was taken over by another worker (our lease ran out).
    #[error("ledger: the claim on {0} is no longer ours")]
    LostClaim(String),
}

/// A high-water mark with a version for compare-and-set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watermark {
    pub value: String,
    pub version: u64,
}

pub trait Watermarks: Send + Sync {
    fn watermark(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Watermark>, StoreError>> + Send;
    /// Sets `value` if the stored version is still `expected` (`None`: none stored yet).
    /// Returns false when someone else moved it first.
    fn set_watermark(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The posting ledger key: (integration, document kind, source id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LedgerKey {
    pub integration: String,
    pub kind: String,
    pub source_id: String,
}

impl std::fmt::Display for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.integration, self.kind, self.source_id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerState {
    Claimed,
    Done,
}

impl LedgerEntry {
    /// "claimed" or "done", for messages.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            LedgerState::Claimed => "claimed",
            LedgerState::Done => "done",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub key: LedgerKey,
    pub state: LedgerState,
    pub owner: String,
    pub lease_until: DateTime<Utc>,
    /// The target's stable id once a draft exists (BC: the invoice GUID, which survives posting).
    pub target_id: Option<String>,
    pub target_number: Option<String>,
    pub attempts: u32,
    /// When a create was sent whose outcome is unknown (a timeout, a 5xx): the target may still
    /// commit it. Cleared once the target's id is recorded.
    pub unsettled_create_at: Option<DateTime<Utc>>,
    /// Where the entry's work went: the target's identity (system type, tenant/environment,
    /// company or legal entity; see `Writer::target`). `None` for entries recorded before the
    /// ledger kept it.
    pub target: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours until `lease_until`; `entry.target_id` tells whether an earlier attempt got as far
    /// as a draft.
    Acquired(LedgerEntry),
    /// Posted already; do nothing.
    Done(LedgerEntry),
    /// Another worker holds an unexpired claim; try again after it.
    Busy(LedgerEntry),
}

/// The posting ledger: the conditional claim that makes a post exactly once.
pub trait Ledger: Send + Sync {
    /// Claims `key` for `owner`, writing into `target`, until `now + lease`: creates the entry if
    /// absent, takes it over if the previous claim's lease ran out (a crashed worker), re-enters
    /// if `owner` holds it. An entry recorded for another target is not done here (the database
    /// was pointed at another company or environment): unless another worker's claim on it is
    /// live, it is reopened for `target`, with the other target's id and number forgotten and
    /// its attempts counted on (an earlier attempt existed, so the writer looks before it
    /// creates). An entry without a recorded target is taken to be for `target`.
    fn claim(
        &self,
        key: &LedgerKey,
        owner: &str,
        target: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Remembers the target's id while still holding the claim (and forgets an unsettled create:
    /// it is settled).
    fn record_target(
        &self,
        key: &LedgerKey,
        owner: &str,
        target_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Remembers, while holding the claim, that a create was sent at `at` whose outcome is
    /// unknown, so no attempt creates again before the target has had time to commit it.
    fn record_unsettled_create(
        &self,
        key: &LedgerKey,
        owner: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Marks it done, for good.
    fn complete(
        &self,
        key: &LedgerKey,
        owner: &str,
        target_id: &str,
        target_number: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives the claim up after a failure so a retry need not wait for the lease.
    fn release(
        &self,
        key: &LedgerKey,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn ledger_entry(
        &self,
        key: &LedgerKey,
    ) -> impl Future<Output = Result<Option<LedgerEntry>, StoreError>> + Send;
    /// Deletes the entry so the document is written again (an operator's explicit re-post),
    /// unless a live claim holds it (`LostClaim`). Returns what was forgotten.
    fn forget(
        &self,
        key: &LedgerKey,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<LedgerEntry>, StoreError>> + Send;
    /// The targets an integration's entries were written for, with how many each (`None`:
    /// recorded before the ledger kept targets), for `mlc check`.
    fn ledger_targets(
        &self,
        integration: &str,
    ) -> impl Future<Output = Result<Vec<(Option<String>, u64)>, StoreError>> + Send;
}

/// Mapping tables: `table` names what is mapped ("supplier", "gl_account", "dimension:DEPARTMENT").
pub trait Mappings: Send + Sync {
    fn mapping(
        &self,
        table: &str,
        source: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn put_mapping(
        &self,
        table: &str,
        source: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn remove_mapping(
        &self,
        table: &str,
        source: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// (table, source, target) rows, of one table or all.
    fn list_mappings(
        &self,
        table: Option<&str>,
    ) -> impl Future<Output = Result<Vec<(String, String, String)>, StoreError>> + Send;
}

/// A document that cannot go on until someone acts, with what to re-enqueue when they have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedDoc {
    pub integration: String,
    pub kind: String,
    pub source_id: String,
    pub source_document_number: Option<String>,
    pub reason: String,
    /// The ingest message body that brought it, re-sent on retry.
    pub message: String,
    pub at: DateTime<Utc>,
}

pub trait Parking: Send + Sync {
    /// Parks (or re-parks, replacing the reason) a document.
    fn park(&self, doc: &ParkedDoc) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn parked(&self) -> impl Future<Output = Result<Vec<ParkedDoc>, StoreError>> + Send;
    fn unpark(
        &self,
        integration: &str,
        kind: &str,
        source_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The audit trail, queryable by document and by status + date.
pub trait Audit: Send + Sync {
    fn append_audit(&self, item: &AuditItem)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Appends `item` unless an item with the same `once` key was appended before, in which
    /// case only that item's `repeats` goes up by one: a repeat is counted, not logged as a
    /// row. Atomic: of two concurrent calls with one key, one appends. `true`: appended.
    fn append_audit_once(
        &self,
        item: &AuditItem,
        once: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Newest last.
    fn query_audit(
        &self,
        filter: &AuditFilter,
    ) -> impl Future<Output = Result<Vec<AuditItem>, StoreError>> + Send;
}

/// Everything a runtime's store provides.
pub trait Store: Watermarks + Ledger + Mappings + Parking + Audit {}
impl<T: Watermarks + Ledger + Mappings + Parking + Audit> Store for T {}
