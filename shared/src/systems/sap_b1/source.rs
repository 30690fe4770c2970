//! B1 behind the source port: purchase orders, A/P invoices and supplier business partners,
//! each a feed on day-granular `UpdateDate` (sap-b1.md §4.4), paged by the server's relative
//! next link, versioned by stamp and content (see [`super::client::version_of`]).
//!
//! The window's lower bound is cut to its day, one day earlier (B1 dates are the company's
//! local days, whose offset the client does not know: a day earlier covers any offset). So
//! every poll lists everything changed since that day, again: the queue's dedup id and the
//! ledger absorb the repeats, and a second change on the same day, whatever its `UpdateTime`,
//! has a new version and is never skipped.

use std::time::Duration;

use super::client::{B1Client, EntitySet};
use super::convert;
use crate::model::DocumentKind;
use crate::ports::{DocRef, Feed, FeedMode, FeedPage, Source, SourceDocument, SystemError, Window};

/// Versions are instants (with the content digest below the second): whole seconds are the
/// window's step.
const MODE: FeedMode = FeedMode::Window {
    resolution: Duration::from_secs(1),
};

pub const PURCHASE_ORDERS: Feed = Feed {
    name: "purchase_orders",
    kind: DocumentKind::PurchaseOrder,
    mode: MODE,
};
pub const INVOICES: Feed = Feed {
    name: "invoices",
    kind: DocumentKind::Invoice,
    mode: MODE,
};
pub const SUPPLIERS: Feed = Feed {
    name: "suppliers",
    kind: DocumentKind::Supplier,
    mode: MODE,
};

/// Outgoing payments, by `DocDate` (they have no change stamp, §4.8.6). Doubt: a payment
/// entered with a `DocDate` more than [`PAYMENT_LOOKBACK_DAYS`] before the poll is not seen;
/// B1 gives no way to list "new since" but `DocEntry gt`, which this windowed port cannot carry.
pub const PAYMENTS: Feed = Feed {
    name: "payments",
    kind: DocumentKind::Payment,
    mode: MODE,
};

/// How far back a payment's own date may lie and still be found.
pub const PAYMENT_LOOKBACK_DAYS: i64 = 7;

fn set_of(kind: DocumentKind) -> Result<EntitySet, SystemError> {
    match kind {
        DocumentKind::PurchaseOrder => Ok(EntitySet::PurchaseOrders),
        DocumentKind::Invoice => Ok(EntitySet::PurchaseInvoices),
        DocumentKind::Supplier => Ok(EntitySet::BusinessPartners),
        DocumentKind::Payment => Ok(EntitySet::VendorPayments),
        other => Err(SystemError::Rejected {
            status: None,
            message: format!("B1 documents of kind {} are not read", other.as_str()),
        }),
    }
}

/// The key of a listed entity: `DocEntry`, or `CardCode` for a business partner.
fn key_of(set: EntitySet, raw: &serde_json::Value) -> Option<String> {
    match set {
        EntitySet::BusinessPartners => raw.get("CardCode")?.as_str().map(str::to_string),
        _ => raw.get("DocEntry")?.as_i64().map(|n| n.to_string()),
    }
}

impl Source for B1Client {
    async fn page(
        &self,
        feed: &Feed,
        window: Option<Window>,
        cursor: Option<&str>,
    ) -> Result<FeedPage, SystemError> {
        let set = set_of(feed.kind)?;
        let Some(w) = window else {
            return Err(SystemError::Rejected {
                status: None,
                message: format!("B1 feed '{}' is read by time window", feed.name),
            });
        };
        let back = match set {
            EntitySet::VendorPayments => PAYMENT_LOOKBACK_DAYS,
            _ => 1,
        };
        let since = (w.lower - chrono::Duration::days(back)).date_naive();
        let page = self.changed_page(set, since, cursor).await?;
        let mut out = FeedPage {
            next: page.next_link().map(str::to_string),
            ..FeedPage::default()
        };
        for raw in &page.value {
            match key_of(set, raw) {
                Some(id) => out.refs.push(DocRef {
                    id,
                    version: Some(convert::version_of_listed(raw)),
                    // Carrying the listed document is open to every source (issue #16 item
                    // 5); this one is read by the map step as before.
                    document: None,
                }),
                None => out
                    .unreadable
                    .push(format!("a B1 {} entry without its key", set.name())),
            }
        }
        Ok(out)
    }

    async fn fetch(&self, kind: DocumentKind, id: &str) -> Result<SourceDocument, SystemError> {
        let set = set_of(kind)?;
        if set == EntitySet::VendorPayments {
            // A payment is no canonical source document: the flow reads it itself.
            return Err(SystemError::Rejected {
                status: None,
                message: "B1 payments are read by the flow, not fetched as documents".into(),
            });
        }
        let raw = self.entity(set, id).await?;
        let iso = |c: &str| self.iso_currency(c);
        let converted = match kind {
            DocumentKind::PurchaseOrder => {
                convert::purchase_order_from_wire(&raw, &iso).map(SourceDocument::PurchaseOrder)
            }
            DocumentKind::Invoice => {
                let mut numbers = Vec::new();
                for base in convert::base_purchase_orders(&raw) {
                    numbers.push((base, self.purchase_order_number(base).await?.to_string()));
                }
                let lookup = |entry: i64| {
                    numbers
                        .iter()
                        .find(|(e, _)| *e == entry)
                        .map(|(_, n)| n.clone())
                };
                convert::invoice_from_wire(&raw, &iso, &lookup).map(SourceDocument::Invoice)
            }
            _ => convert::supplier_from_wire(&raw).map(SourceDocument::Supplier),
        };
        Ok(converted.unwrap_or_else(|e| SourceDocument::Unreadable {
            number: raw.get("DocNum").map(|n| n.to_string()).or_else(|| {
                raw.get("CardCode")
                    .and_then(|c| c.as_str())
                    .map(str::to_string)
            }),
            reason: e.to_string(),
        }))
    }
}
