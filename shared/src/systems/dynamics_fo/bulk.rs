//! Vendor invoices into one legal entity through the Data Management package API (B6), behind
//! the bulk-writer port (`ports::BulkWriter`). The exactly-once rules are the bulk step's
//! (`steps::bulk`); here is what F&O needs:
//!
//! - look-ups: one cross-company request per page of header references (plus the natural keys,
//!   as the per-record `find` does), one for their lines, and one among posted invoices for
//!   what was not pending — never one request per invoice;
//! - a batch is a package (`dmf.rs`) uploaded to the URL F&O hands out, then imported under
//!   the batch id as execution id, so a run after a crash asks F&O about the same import;
//! - refusals come from the import's error keys file, keyed by HeaderReference.

use std::collections::HashMap;

use super::client::FoError;
use super::convert::FoInvoice;
use super::dmf;
use super::invoices::{HEADERS, LINES, POSTED};
use super::wire::{InvoiceHeader, InvoiceLine, PostedInvoice};
use super::writers::{FoInvoiceRecord, InvoiceWriter};
use crate::ports::{BatchState, BulkWriter, Change, Found, SystemError, Written};
use crate::systems::http::odata::string_literal;

/// Invoices per look-up request: each adds a reference and a natural key to the filter (about
/// 150 characters percent-encoded). F&O publishes no URL limit (d365-fo.md is silent); the
/// query string is kept under 2,048 characters, IIS's default `maxQueryString` (IIS hosts the
/// AOS on F&O's development environments), the strictest limit we know of.
const LOOKUP_PAGE: usize = 10;

impl InvoiceWriter {
    async fn lookup_page(
        &self,
        docs: &[&FoInvoice],
    ) -> Result<Vec<Option<Found<FoInvoiceRecord>>>, FoError> {
        let le = &self.legal_entity;
        let filter = docs
            .iter()
            .map(|d| {
                format!(
                    "HeaderReference eq {} or (InvoiceAccount eq {} and InvoiceNumber eq {})",
                    string_literal(&d.header_reference),
                    string_literal(&d.vendor_account),
                    string_literal(&d.invoice_number)
                )
            })
            .collect::<Vec<_>>()
            .join(" or ");
        let headers: Vec<InvoiceHeader> = self.fo.list(HEADERS, le, &filter).await?;
        let refs = docs
            .iter()
            .map(|d| format!("HeaderReference eq {}", string_literal(&d.header_reference)))
            .collect::<Vec<_>>()
            .join(" or ");
        let lines: Vec<InvoiceLine> = if headers.is_empty() {
            Vec::new()
        } else {
            self.fo.list(LINES, le, &refs).await?
        };
        let mut have: HashMap<&str, Vec<i64>> = HashMap::new();
        for l in &lines {
            have.entry(l.header_reference.as_str())
                .or_default()
                .push(l.invoice_line_number);
        }
        let same = |h: &InvoiceHeader, d: &FoInvoice| {
            h.invoice_account.eq_ignore_ascii_case(&d.vendor_account)
                && h.invoice_number.eq_ignore_ascii_case(&d.invoice_number)
        };
        let mut out: Vec<Option<Found<FoInvoiceRecord>>> = docs
            .iter()
            .map(|d| {
                // `eq` on strings is a wildcard match in F&O (B2): matches are checked exactly.
                // A reference taken by another invoice is not ours: left to the import, which
                // F&O refuses as a duplicate key (parked with its words).
                let ours = headers
                    .iter()
                    .find(|h| h.header_reference == d.header_reference && same(h, d));
                let theirs = headers.iter().find(|h| same(h, d));
                match ours.or(theirs) {
                    Some(h) => {
                        let got = have.get(h.header_reference.as_str());
                        let complete = h.header_reference == d.header_reference
                            && d.lines
                                .iter()
                                .all(|l| got.is_some_and(|g| g.contains(&l.number)));
                        Some(if complete {
                            Found::Final(Written {
                                id: h.header_reference.clone(),
                                number: h.header_reference.clone(),
                                change: Change::Created,
                            })
                        } else {
                            Found::Partial(FoInvoiceRecord::Pending(h.clone()))
                        })
                    }
                    None => None,
                }
            })
            .collect();
        // Not pending: maybe posted since (B4.1: a posted invoice leaves the pending entities).
        let missing: Vec<usize> = (0..docs.len()).filter(|i| out[*i].is_none()).collect();
        if !missing.is_empty() {
            let filter = missing
                .iter()
                .map(|i| {
                    format!(
                        "(InvoiceAccount eq {} and InvoiceId eq {})",
                        string_literal(&docs[*i].vendor_account),
                        string_literal(&docs[*i].invoice_number)
                    )
                })
                .collect::<Vec<_>>()
                .join(" or ");
            let posted: Vec<PostedInvoice> = self.fo.list(POSTED, le, &filter).await?;
            for i in missing {
                let d = docs[i];
                if let Some(p) = posted.iter().find(|p| {
                    p.invoice_account.eq_ignore_ascii_case(&d.vendor_account)
                        && p.invoice_id.eq_ignore_ascii_case(&d.invoice_number)
                }) {
                    out[i] = Some(Found::Final(Written {
                        id: d.header_reference.clone(),
                        number: p.ledger_voucher.clone(),
                        change: Change::AlreadyDone,
                    }));
                }
            }
        }
        Ok(out)
    }
}

impl BulkWriter for InvoiceWriter {
    fn batch_key(&self, inv: &FoInvoice) -> String {
        inv.header_reference.clone()
    }

    async fn find_many(
        &self,
        docs: &[&FoInvoice],
    ) -> Result<Vec<Option<Found<FoInvoiceRecord>>>, SystemError> {
        let mut out = Vec::with_capacity(docs.len());
        for page in docs.chunks(LOOKUP_PAGE) {
            out.extend(self.lookup_page(page).await?);
        }
        Ok(out)
    }

    async fn upload(&self, batch_id: &str, docs: &[&FoInvoice]) -> Result<String, SystemError> {
        let package = dmf::package(docs)?;
        let url = self.fo.dmf_write_url(&format!("{batch_id}.zip")).await?;
        self.fo.dmf_upload(&url, package).await?;
        Ok(url)
    }

    async fn start(&self, batch_id: &str, package: &str) -> Result<String, SystemError> {
        Ok(self
            .fo
            .dmf_import(package, batch_id, &self.legal_entity)
            .await?)
    }

    async fn batch_state(&self, batch_id: &str) -> Result<BatchState, SystemError> {
        let status = self.fo.dmf_status(batch_id).await?;
        Ok(if status == "Unknown" {
            BatchState::Unknown
        } else if dmf::is_final(&status) {
            BatchState::Ended(status)
        } else {
            BatchState::Running(status)
        })
    }

    async fn refusals(&self, batch_id: &str) -> Result<Vec<(String, String)>, SystemError> {
        Ok(self.fo.dmf_refusals(batch_id).await?)
    }
}
