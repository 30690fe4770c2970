//! Coupa behind the source port: approved invoices (and credit notes), purchase orders and
//! suppliers, each a windowed feed on `updated-at` paged by `id[gt]` (see
//! `CoupaClient::approved_invoices_page` for why that loses nothing), fetched and converted to
//! the canonical model.

use std::time::Duration;

use super::{CoupaClient, CoupaError, DocRef as CoupaRef, PollWindow, convert};
use crate::model::DocumentKind;
use crate::ports::{DocRef, Feed, FeedMode, FeedPage, Source, SourceDocument, SystemError, Window};

/// Coupa timestamps have whole seconds.
const RESOLUTION: FeedMode = FeedMode::Window {
    resolution: Duration::from_secs(1),
};

pub const INVOICES: Feed = Feed {
    name: "invoices",
    kind: DocumentKind::Invoice,
    mode: RESOLUTION,
};
pub const PURCHASE_ORDERS: Feed = Feed {
    name: "purchase_orders",
    kind: DocumentKind::PurchaseOrder,
    mode: RESOLUTION,
};
pub const SUPPLIERS: Feed = Feed {
    name: "suppliers",
    kind: DocumentKind::Supplier,
    mode: RESOLUTION,
};

/// A Coupa id is an integer; anything else cannot be a Coupa document.
fn coupa_id(kind: DocumentKind, id: &str) -> Result<i64, SystemError> {
    id.parse().map_err(|_| SystemError::Rejected {
        status: None,
        message: format!(
            "'{id}' is not a Coupa {} id",
            kind.as_str().replace('_', " ")
        ),
    })
}

/// A document Coupa returned that cannot be read: the source has it, a person must look.
fn unreadable(e: CoupaError) -> Result<SourceDocument, SystemError> {
    match e {
        e @ CoupaError::Malformed { .. } => Ok(SourceDocument::Unreadable {
            number: None,
            reason: e.to_string(),
        }),
        e => Err(e.into()),
    }
}

/// A listed element as canonical, the same conversion [`Source::fetch`] makes of a `show`
/// answer. `None` when the element does not even read as its wire type: the map step then
/// reads it with `show` and parks it with that read's words.
fn canonical(kind: DocumentKind, json: serde_json::Value) -> Option<SourceDocument> {
    Some(match kind {
        DocumentKind::Invoice | DocumentKind::CreditNote => {
            let wire: super::wire::Invoice = serde_json::from_value(json).ok()?;
            match convert::invoice_from_wire(&wire) {
                Ok(inv) => SourceDocument::Invoice(inv),
                Err(e) => SourceDocument::Unreadable {
                    number: wire.invoice_number.clone(),
                    reason: e.to_string(),
                },
            }
        }
        DocumentKind::PurchaseOrder => {
            let wire: super::wire::PurchaseOrder = serde_json::from_value(json).ok()?;
            match convert::purchase_order_from_wire(&wire) {
                Ok(po) => SourceDocument::PurchaseOrder(po),
                Err(e) => SourceDocument::Unreadable {
                    number: wire.po_number.clone(),
                    reason: e.to_string(),
                },
            }
        }
        DocumentKind::Supplier => {
            let wire: super::wire::Supplier = serde_json::from_value(json).ok()?;
            match convert::supplier_from_wire(&wire) {
                Ok(s) => SourceDocument::Supplier(s),
                Err(e) => SourceDocument::Unreadable {
                    number: wire.number.clone(),
                    reason: e.to_string(),
                },
            }
        }
        _ => return None,
    })
}

impl Source for CoupaClient {
    async fn page(
        &self,
        feed: &Feed,
        window: Option<Window>,
        cursor: Option<&str>,
    ) -> Result<FeedPage, SystemError> {
        let Some(w) = window else {
            return Err(SystemError::Rejected {
                status: None,
                message: format!("Coupa feed '{}' is read by time window", feed.name),
            });
        };
        let window = PollWindow {
            lower: w.lower,
            upper: w.upper,
        };
        let after = match cursor {
            Some(c) => coupa_id(feed.kind, c)?,
            None => 0,
        };
        let Some(listing) = self.feed_listing(feed.name, window, after).await else {
            return Err(SystemError::Rejected {
                status: None,
                message: format!("Coupa has no feed '{}'", feed.name),
            });
        };
        let (refs, bad) = listing?;
        let full = refs.len() + bad.len() >= super::PAGE_SIZE;
        let next = refs
            .iter()
            .map(|(r, _)| r.id)
            .max()
            .filter(|_| full)
            .map(|id| id.to_string());
        Ok(FeedPage {
            refs: refs
                .into_iter()
                .map(|(CoupaRef { id, updated_at }, json)| DocRef {
                    id: id.to_string(),
                    version: updated_at,
                    // The index answered the whole object: the map step need not read it again.
                    document: canonical(feed.kind, json),
                })
                .collect(),
            unreadable: bad.into_iter().map(|e| e.to_string()).collect(),
            next,
        })
    }

    async fn fetch(&self, kind: DocumentKind, id: &str) -> Result<SourceDocument, SystemError> {
        let n = coupa_id(kind, id)?;
        Ok(match kind {
            DocumentKind::Invoice | DocumentKind::CreditNote => {
                let wire = match self.invoice(n).await {
                    Ok(w) => w,
                    Err(e) => return unreadable(e),
                };
                match convert::invoice_from_wire(&wire) {
                    Ok(inv) => SourceDocument::Invoice(inv),
                    Err(e) => SourceDocument::Unreadable {
                        number: wire.invoice_number.clone(),
                        reason: e.to_string(),
                    },
                }
            }
            DocumentKind::PurchaseOrder => {
                let wire = match self.purchase_order(n).await {
                    Ok(w) => w,
                    Err(e) => return unreadable(e),
                };
                match convert::purchase_order_from_wire(&wire) {
                    Ok(po) => SourceDocument::PurchaseOrder(po),
                    Err(e) => SourceDocument::Unreadable {
                        number: wire.po_number.clone(),
                        reason: e.to_string(),
                    },
                }
            }
            DocumentKind::Supplier => {
                let wire = match self.supplier(n).await {
                    Ok(w) => w,
                    Err(e) => return unreadable(e),
                };
                match convert::supplier_from_wire(&wire) {
                    Ok(s) => SourceDocument::Supplier(s),
                    Err(e) => SourceDocument::Unreadable {
                        number: wire.number.clone(),
                        reason: e.to_string(),
                    },
                }
            }
            DocumentKind::Payment | DocumentKind::ExpenseReport => {
                return Err(SystemError::Rejected {
                    status: None,
                    message: format!("{} are not read from Coupa", kind.as_str()),
                });
            }
        })
    }
}
