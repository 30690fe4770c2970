//! SAP Concur behind the source port: FIS documents READY for integration are a state queue
//! (no watermark: a document is listed until it is acknowledged), one feed per document type,
//! paged by the `next` link; a document is fetched by its FIS id whatever its status (so it is
//! read again after its acknowledgement), converted, and acknowledged.
//!
//! Paging is by page number (the only paging FIS has). Documents acknowledged while a poll
//! pages shift later pages, so one may be missed by that poll: it is still READY, and the next
//! poll lists it (a state queue loses nothing, it may only delay).

use super::client::Acknowledged;
use super::{ConcurClient, ConcurError, convert};
use crate::model::DocumentKind;
use crate::ports::{DocRef, Feed, FeedMode, FeedPage, Source, SourceDocument, SystemError, Window};

/// Invoice payment requests (FIS `invoice`).
pub const INVOICES: Feed = Feed {
    name: "invoice",
    kind: DocumentKind::Invoice,
    mode: FeedMode::StateQueue,
};

/// Expense reports (FIS `expense`).
pub const EXPENSES: Feed = Feed {
    name: "expense",
    kind: DocumentKind::ExpenseReport,
    mode: FeedMode::StateQueue,
};

/// The FIS `docType` of a document kind.
pub fn doc_type(kind: DocumentKind) -> Option<&'static str> {
    match kind {
        DocumentKind::Invoice => Some("invoice"),
        DocumentKind::ExpenseReport => Some("expense"),
        _ => None,
    }
}

#[derive(Clone)]
pub struct ConcurSource {
    pub client: ConcurClient,
}

fn not_read(kind: DocumentKind) -> SystemError {
    SystemError::Rejected {
        status: None,
        message: format!("Concur {} are not read", kind.as_str()),
    }
}

/// What acknowledging found, beyond "taken".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    Taken,
    /// The document was recalled in Concur (code 102): not to be posted.
    Recalled,
}

impl ConcurSource {
    /// Acknowledges, telling a recall apart (the port's `acknowledge` cannot).
    pub async fn take(&self, kind: DocumentKind, id: &str) -> Result<AckOutcome, SystemError> {
        let t = doc_type(kind).ok_or_else(|| not_read(kind))?;
        match self.client.acknowledge(t, id).await? {
            Acknowledged::Now | Acknowledged::Already => Ok(AckOutcome::Taken),
            Acknowledged::Recalled => Ok(AckOutcome::Recalled),
        }
    }
}

impl Source for ConcurSource {
    async fn page(
        &self,
        feed: &Feed,
        _window: Option<Window>,
        cursor: Option<&str>,
    ) -> Result<FeedPage, SystemError> {
        let t = doc_type(feed.kind).ok_or_else(|| not_read(feed.kind))?;
        let page_no = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let page = self.client.page(t, page_no).await?;
        let mut out = FeedPage {
            next: page.next.map(|n| n.to_string()),
            ..FeedPage::default()
        };
        for d in page.documents {
            match d {
                // Not carried: the map step reads it again by id after the acknowledge (the
                // listing is what Concur sends before it; the read is what it holds after).
                Ok(doc) => out.refs.push(DocRef {
                    id: doc.id,
                    version: None,
                    document: None,
                }),
                Err(why) => out.unreadable.push(why),
            }
        }
        Ok(out)
    }

    async fn fetch(&self, kind: DocumentKind, id: &str) -> Result<SourceDocument, SystemError> {
        let t = doc_type(kind).ok_or_else(|| not_read(kind))?;
        let fi = match self.client.document(t, id).await {
            Ok(Some(fi)) => fi,
            Ok(None) => {
                return Err(SystemError::NotFound(format!(
                    "Concur has no {t} document {id}"
                )));
            }
            Err(e @ ConcurError::Malformed(_)) => {
                return Ok(SourceDocument::Unreadable {
                    number: None,
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let unreadable = |why: String| SourceDocument::Unreadable {
            number: None,
            reason: format!("Concur {t} document {id} cannot be read: {why}"),
        };
        let doc = match fi.document_object() {
            Ok(d) => d,
            Err(why) => return Ok(unreadable(why)),
        };
        Ok(match kind {
            DocumentKind::Invoice => match convert::invoice_from_wire(&fi, &doc) {
                Ok(i) => SourceDocument::Invoice(i),
                Err(why) => unreadable(why),
            },
            _ => match convert::expense_from_wire(&fi, &doc) {
                Ok(r) => SourceDocument::ExpenseReport(Box::new(r)),
                Err(why) => unreadable(why),
            },
        })
    }

    async fn acknowledge(&self, kind: DocumentKind, id: &str) -> Result<(), SystemError> {
        match self.take(kind, id).await? {
            AckOutcome::Taken => Ok(()),
            AckOutcome::Recalled => Err(SystemError::Rejected {
                status: Some(200),
                message: format!("Concur document {id} was recalled (code 102)"),
            }),
        }
    }
}
