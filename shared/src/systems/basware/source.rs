//! Basware behind the source port: accounting documents `WaitingForTransfer` are a state queue
//! (no watermark: a document is listed until it is acknowledged), paged by the continuation
//! header, fetched and converted; acknowledged with 405 read as "acknowledged before".

use super::{BaswareClient, BaswareError, convert};
use crate::model::DocumentKind;
use crate::ports::{DocRef, Feed, FeedMode, FeedPage, Source, SourceDocument, SystemError, Window};

pub const ACCOUNTING_DOCUMENTS: Feed = Feed {
    name: "accounting_documents",
    kind: DocumentKind::Invoice,
    mode: FeedMode::StateQueue,
};

/// A Basware source: the client and the tenant's credit-note type codes (§3.11.8).
#[derive(Clone)]
pub struct BaswareSource {
    pub client: BaswareClient,
    pub credit_note_types: Vec<String>,
}

fn not_a_feed(name: &str) -> SystemError {
    SystemError::Rejected {
        status: None,
        message: format!("Basware has no feed '{name}'"),
    }
}

impl Source for BaswareSource {
    async fn page(
        &self,
        feed: &Feed,
        _window: Option<Window>,
        cursor: Option<&str>,
    ) -> Result<FeedPage, SystemError> {
        if feed.name != ACCOUNTING_DOCUMENTS.name {
            return Err(not_a_feed(feed.name));
        }
        let page = self.client.waiting_page(cursor).await?;
        let mut out = FeedPage {
            next: page.continuation,
            ..FeedPage::default()
        };
        for d in page.documents {
            match d {
                Ok(stub) => out.refs.push(DocRef {
                    id: stub.invoice_id,
                    version: stub.last_updated,
                    // Carrying the listed document is open to every source (issue #16 item
                    // 5); this one is read by the map step as before.
                    document: None,
                }),
                Err(why) => out.unreadable.push(why),
            }
        }
        Ok(out)
    }

    async fn fetch(&self, kind: DocumentKind, id: &str) -> Result<SourceDocument, SystemError> {
        if !matches!(kind, DocumentKind::Invoice | DocumentKind::CreditNote) {
            return Err(SystemError::Rejected {
                status: None,
                message: format!("Basware {} are not read", kind.as_str()),
            });
        }
        let wire = match self.client.document(id).await {
            Ok(w) => w,
            Err(e @ BaswareError::Malformed { .. }) => {
                return Ok(SourceDocument::Unreadable {
                    number: None,
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        Ok(
            match convert::invoice_from_wire(&wire, &self.credit_note_types) {
                Ok(inv) => SourceDocument::Invoice(inv),
                Err(e) => SourceDocument::Unreadable {
                    number: wire.invoice_number.clone(),
                    reason: format!("Basware accounting document {id} cannot be read: {e}"),
                },
            },
        )
    }

    async fn acknowledge(&self, _kind: DocumentKind, id: &str) -> Result<(), SystemError> {
        // 405 (acknowledged before) is success: `Acknowledged::Already`.
        self.client.acknowledge(id).await?;
        Ok(())
    }
}
