//! The source port: how the poll and map steps read any system documents come from. A source
//! offers feeds (what changed in a time window, or what waits in a state queue such as "ready
//! for integration"), fetches one document as canonical, and acknowledges one where it asks to
//! be told (Concur, Basware).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::SystemError;
use crate::model::{DocumentKind, ExpenseReport, Invoice, PurchaseOrder, Supplier};

/// The instants a windowed poll covers: `[lower, upper)`, fixed when the poll starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub lower: DateTime<Utc>,
    pub upper: DateTime<Utc>,
}

/// How a feed is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedMode {
    /// What changed in a window, under a stored watermark. `resolution`: the finest time the
    /// source's timestamps carry (Coupa: whole seconds), which the window's bounds are cut to.
    Window { resolution: Duration },
    /// What waits until acknowledged (no watermark: it is read again until it is).
    StateQueue,
}

/// One feed of a source: its name (part of the watermark key), the kind of document it lists,
/// and how it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feed {
    pub name: &'static str,
    pub kind: DocumentKind,
    pub mode: FeedMode,
}

/// A listed document: its source id (opaque) and, when the source gives one, its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocRef {
    pub id: String,
    pub version: Option<DateTime<Utc>>,
    /// The document itself, as canonical, when the listing already carried all of it (Coupa's
    /// index answers full objects): the poll hands it to the map step in the ingest message,
    /// which then does not read it again (issue #16 item 5). `None`: the map step fetches it.
    pub document: Option<SourceDocument>,
}

/// One page of a feed. Elements the source listed but that cannot be read are named in
/// `unreadable`, so one bad element neither stops the poll nor vanishes. `next`: the opaque
/// cursor of the next page (`None`: this was the last).
#[derive(Clone, Debug, Default)]
pub struct FeedPage {
    pub refs: Vec<DocRef>,
    pub unreadable: Vec<String>,
    pub next: Option<String>,
}

/// A fetched source document, in the canonical model.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceDocument {
    Invoice(Invoice),
    PurchaseOrder(PurchaseOrder),
    Supplier(Supplier),
    /// Boxed: much larger than the other variants.
    ExpenseReport(Box<ExpenseReport>),
    /// The source has it but it cannot be read as a document of its kind: parked with why,
    /// and with the number a person knows it by when that much could be read.
    Unreadable {
        number: Option<String>,
        reason: String,
    },
}

pub trait Source: Send + Sync {
    /// One page of `feed`: within `window` (windowed feeds; `None` for a state queue), from
    /// `cursor` (`None`: the first page).
    fn page(
        &self,
        feed: &Feed,
        window: Option<Window>,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<FeedPage, SystemError>> + Send;

    /// One document by its source id, as canonical.
    fn fetch(
        &self,
        kind: DocumentKind,
        id: &str,
    ) -> impl Future<Output = Result<SourceDocument, SystemError>> + Send;

    /// Tells the source the document was taken (where the source asks for it). Idempotent by
    /// the source's own rule.
    fn acknowledge(
        &self,
        kind: DocumentKind,
        id: &str,
    ) -> impl Future<Output = Result<(), SystemError>> + Send {
        let _ = (kind, id);
        async { Ok(()) }
    }
}

/// A second system's feed in one integration, its ids kept apart from the source's. The
/// pipeline knows a document by (integration, kind, source id) — in its queue's message
/// groups and dedup ids, the ledger, parking and the audit trail — which assumed one system
/// per kind. A two-way sync also polls a feed of its target (Coupa suppliers beside SAP B1
/// business partners, both `Supplier`s), whose ids may look like the source's (`17` is a
/// Coupa id and could be a `CardCode`). Wrapped, the target's ids carry `prefix` (`coupa:17`)
/// everywhere in the pipeline; `fetch` and `acknowledge` take it off again, and the flow
/// tells the two apart with [`Namespaced::strip`]. Any flow polling a second system uses it.
pub struct Namespaced<'a, S> {
    /// Ends in a character the other system's ids never start with (`coupa:`).
    pub prefix: &'static str,
    pub inner: &'a S,
}

impl<S> Namespaced<'_, S> {
    /// The inner system's id of a pipeline id of this namespace; `None`: not of it.
    pub fn strip<'i>(prefix: &str, id: &'i str) -> Option<&'i str> {
        id.strip_prefix(prefix).filter(|rest| !rest.is_empty())
    }

    fn inner_id<'i>(&self, id: &'i str) -> Result<&'i str, SystemError> {
        Self::strip(self.prefix, id).ok_or_else(|| SystemError::Rejected {
            status: None,
            message: format!("'{id}' is not an id of {}…", self.prefix),
        })
    }
}

impl<S: Source> Source for Namespaced<'_, S> {
    async fn page(
        &self,
        feed: &Feed,
        window: Option<Window>,
        cursor: Option<&str>,
    ) -> Result<FeedPage, SystemError> {
        let mut page = self.inner.page(feed, window, cursor).await?;
        for r in &mut page.refs {
            r.id = format!("{}{}", self.prefix, r.id);
        }
        Ok(page)
    }

    async fn fetch(&self, kind: DocumentKind, id: &str) -> Result<SourceDocument, SystemError> {
        let id = self.inner_id(id)?;
        self.inner.fetch(kind, id).await
    }

    async fn acknowledge(&self, kind: DocumentKind, id: &str) -> Result<(), SystemError> {
        let id = self.inner_id(id)?;
        self.inner.acknowledge(kind, id).await
    }
}
