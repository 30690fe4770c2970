//! The target-writer port: how the one exactly-once writer (`steps::write`) reaches any system
//! it writes into (an ERP document, a vendor, a purchase order, a payment back to a source).
//! Each system implements it for each kind of record it takes; the writer step alone decides
//! claim, look-up, unsettled creates, parking and the audit trail.

use std::future::Future;
use std::time::Duration;

use super::SystemError;

/// What the target should do about a document it does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Absent {
    Create,
    /// Nothing to create (e.g. an order closed before it reached the target): done, with why.
    LeaveAlone(String),
}

/// What the write did to the target's record, for the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Created (or a draft left by an earlier attempt finished): the document is in the target
    /// now because of this write.
    Created,
    /// An existing record was changed to match the source.
    Updated,
    /// It matched already.
    Unchanged,
    /// The target had it, final, before this attempt (an earlier attempt, a repeat delivery).
    AlreadyDone,
    /// Removed from the target (e.g. cancelled in the source), with why.
    Removed(String),
    /// Left as it is, with why.
    LeftAlone(String),
}

/// The target's record after a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The target's stable id ("" when nothing was created).
    pub id: String,
    /// The number a person sees in the target (a posted invoice's number).
    pub number: String,
    pub change: Change,
}

/// One kind of record a target system takes. Every method is idempotent or guarded by the
/// writer step: `find` before `create`, `finish` resumable after a crash at any point.
pub trait Writer: Send + Sync {
    /// What the step asks the target to hold.
    type Doc: Send + Sync;
    /// What the target holds of it.
    type Record: Send + Sync;

    /// Names the record for messages: "the Business Central purchase invoice".
    fn what(&self, doc: &Self::Doc) -> String;

    /// Which target this writer writes into: system type, tenant or host, environment, company
    /// or legal entity ("business_central:<tenant>/<environment>/<company>"). The ledger keeps
    /// it with each entry, so a database pointed at another company never takes what was
    /// written in one for done in the other.
    fn target(&self) -> String;

    /// How long a create whose answer was lost (timeout, gateway error) may still commit in
    /// the target. Until it has passed, the document is only looked up, never created again.
    fn settle_window(&self) -> Duration;

    /// The target's stable id of a record (recorded in the ledger as soon as it exists).
    fn id_of(&self, doc: &Self::Doc, record: &Self::Record) -> String;

    /// The document in the target: by `known_id` (recorded by an earlier attempt) when given,
    /// else by the natural key the target chooses (vendor + invoice number, a reference).
    fn find(
        &self,
        doc: &Self::Doc,
        known_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<Self::Record>, SystemError>> + Send;

    /// Whether the writer step looks for the document before a first create. `false` lets a
    /// first attempt whose ledger entry records no earlier create (no target id, no unsettled
    /// create, no earlier attempt, no take-over) create without looking, one request less per
    /// document; every other attempt still looks. Only for targets whose records are written
    /// by this ledger alone (an ERP invoice keyed by its source document): a writer whose find
    /// also matches records made elsewhere (a vendor someone created by hand, an order updated
    /// under a new ledger key) keeps the default.
    fn look_before_first_create(&self, doc: &Self::Doc) -> bool {
        let _ = doc;
        true
    }

    /// Whether a document the target does not have is created.
    fn when_absent(&self, doc: &Self::Doc) -> Absent {
        let _ = doc;
        Absent::Create
    }

    fn create(
        &self,
        doc: &Self::Doc,
    ) -> impl Future<Output = Result<Self::Record, SystemError>> + Send;

    /// Brings a found or just-created record to its final state (BC: dimensions and
    /// `Microsoft.NAV.post`; F&O: the lines after the header; an order: its changed lines).
    /// Resumable: a crash anywhere inside leaves what a second call completes. `created`: the
    /// record was created by this attempt (nothing of it exists yet beyond the create).
    fn finish(
        &self,
        doc: &Self::Doc,
        record: Self::Record,
        created: bool,
    ) -> impl Future<Output = Result<Written, SystemError>> + Send;
}

/// What a bulk look-up found of one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found<R> {
    /// The document is in the target in its final state (it needs nothing more).
    Final(Written),
    /// Part of it is there (a header without all its lines): `Writer::finish` completes it.
    Partial(R),
}

/// Where a bulk batch the target runs on its own (an F&O data package import) stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchState {
    /// The target knows no batch by this id: never started (or not yet registered).
    Unknown,
    /// Queued or executing, in the target's words ("NotRun", "Executing").
    Running(String),
    /// Ended ("Succeeded", "PartiallySucceeded", "Failed", "Canceled"): nothing more of it
    /// will land.
    Ended(String),
}

/// A target that takes many documents in one batch it runs asynchronously (F&O's Data
/// Management package API), on top of its per-record [`Writer`]. The exactly-once rules stay
/// the bulk step's (`steps::bulk`): each document is claimed in the ledger before it goes into
/// a batch, a batch's id is recorded before it is sent, and nothing is sent again until the
/// batch it went in has ended and a look-up shows it did not land.
pub trait BulkWriter: Writer {
    /// The key the target reports a document's refusal under (F&O: the HeaderReference).
    fn batch_key(&self, doc: &Self::Doc) -> String;

    /// Every document of `docs`, looked up with as few requests as the target allows (F&O:
    /// one request per page of references), in the order given.
    fn find_many(
        &self,
        docs: &[&Self::Doc],
    ) -> impl Future<Output = Result<Vec<Option<Found<Self::Record>>>, SystemError>> + Send;

    /// Builds and uploads the batch of `docs`; returns where it is (the package URL). Sending
    /// nothing to run yet: a crash after it lands nothing.
    fn upload(
        &self,
        batch_id: &str,
        docs: &[&Self::Doc],
    ) -> impl Future<Output = Result<String, SystemError>> + Send;

    /// Starts the uploaded batch under `batch_id` (the caller's id, recorded before); returns
    /// the id the target runs it under (the same, unless the target chose its own).
    fn start(
        &self,
        batch_id: &str,
        package: &str,
    ) -> impl Future<Output = Result<String, SystemError>> + Send;

    fn batch_state(
        &self,
        batch_id: &str,
    ) -> impl Future<Output = Result<BatchState, SystemError>> + Send;

    /// The documents an ended batch refused: (batch key, the target's words).
    fn refusals(
        &self,
        batch_id: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, SystemError>> + Send;
}
