//! F&O behind the writer port (`ports::Writer`): a vendor invoice is a pending header, then its
//! lines one by one (F&O has no deep insert, B4.1/B4.2). The exactly-once rules (ledger claim,
//! look before create, unsettled creates) are the writer step's; here is only what F&O needs:
//!
//! - `find` looks in one request for the header by its reference (derived from the source id)
//!   or by the natural key (invoice account + vendor invoice number) in the legal entity, then
//!   among posted invoices (a posted invoice leaves the pending entities, B4.1);
//! - `finish` adds the lines that are missing, by `InvoiceLineNumber`, never deleting or
//!   re-creating one; a refused line parks the document with F&O's words while the header
//!   and the lines before it stay, and the next attempt adds the rest;
//! - a posted invoice is left alone.

use std::time::Duration;

use super::client::{FoClient, FoError};
use super::convert::FoInvoice;
use super::invoices::HEADERS;
use super::wire::{InvoiceHeader, NewInvoiceHeader, NewInvoiceLine, PostedInvoice};
use crate::ports::{Change, SystemError, Writer, Written};
use crate::systems::http::odata::string_literal;

/// How long a create whose answer was lost may still commit in F&O. No operation timeout is
/// published for F&O OData (d365-fo.md is silent); we take BC's 10 minutes, the longer of the
/// two gateways' limits we know, so a create is never repeated while it may still land.
pub const CREATE_SETTLE: Duration = Duration::from_secs(600);

/// What F&O holds of an invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoInvoiceRecord {
    /// Pending: header (lines may be missing).
    Pending(InvoiceHeader),
    /// Posted: read-only from here on.
    Posted(PostedInvoice),
}

/// Vendor invoices into one legal entity of one environment. Built per document: the legal
/// entity is the document's (the integration's rule chooses it), and with it the ledger's
/// target identity.
#[derive(Clone)]
pub struct InvoiceWriter {
    pub fo: FoClient,
    pub legal_entity: String,
}

fn refused(what: &str, e: FoError) -> SystemError {
    match SystemError::from(e) {
        SystemError::Rejected { status, message } => SystemError::Rejected {
            status,
            message: format!("F&O refused {what}: {message}"),
        },
        other => other,
    }
}

impl InvoiceWriter {
    pub fn new(fo: FoClient, legal_entity: &str) -> Self {
        Self {
            fo,
            legal_entity: legal_entity.to_lowercase(),
        }
    }

    /// Pending headers with this reference or this natural key: one request.
    async fn pending(
        &self,
        inv: &FoInvoice,
        reference: &str,
    ) -> Result<Option<InvoiceHeader>, FoError> {
        let filter = format!(
            "HeaderReference eq {} or (InvoiceAccount eq {} and InvoiceNumber eq {})",
            string_literal(reference),
            string_literal(&inv.vendor_account),
            string_literal(&inv.invoice_number)
        );
        let found: Vec<InvoiceHeader> = self.fo.list(HEADERS, &self.legal_entity, &filter).await?;
        // Ours first; else the same vendor invoice entered by other means. `eq` on strings is a
        // wildcard match in F&O (B2), so matches are checked exactly here.
        let ours = found
            .iter()
            .find(|h| h.header_reference == reference)
            .cloned();
        // The reference names another invoice (another source numbering into the same legal
        // entity, or a person's entry): never add our lines to it.
        if let Some(h) = &ours
            && !(h.invoice_account.eq_ignore_ascii_case(&inv.vendor_account)
                && h.invoice_number.eq_ignore_ascii_case(&inv.invoice_number))
        {
            return Err(FoError::Invalid(format!(
                "header reference {reference} in legal entity {} is taken by invoice {} of vendor {}, not {} of {}",
                self.legal_entity.to_uppercase(),
                h.invoice_number,
                h.invoice_account,
                inv.invoice_number,
                inv.vendor_account
            )));
        }
        Ok(ours.or_else(|| {
            found.into_iter().find(|h| {
                h.invoice_account.eq_ignore_ascii_case(&inv.vendor_account)
                    && h.invoice_number.eq_ignore_ascii_case(&inv.invoice_number)
            })
        }))
    }

    fn new_line(&self, inv: &FoInvoice, reference: &str, n: usize) -> NewInvoiceLine {
        let l = &inv.lines[n];
        NewInvoiceLine {
            data_area_id: self.legal_entity.clone(),
            header_reference: reference.to_string(),
            invoice_line_number: l.number,
            currency: inv.currency.clone(),
            description: l.description.clone(),
            main_account_display_value: l.main_account_display.clone(),
            net_amount: l.net_amount,
        }
    }
}

impl Writer for InvoiceWriter {
    type Doc = FoInvoice;
    type Record = FoInvoiceRecord;

    fn what(&self, _inv: &FoInvoice) -> String {
        format!(
            "the F&O vendor invoice in legal entity {}",
            self.legal_entity.to_uppercase()
        )
    }

    fn target(&self) -> String {
        self.fo.target_identity(&self.legal_entity)
    }

    fn settle_window(&self) -> Duration {
        CREATE_SETTLE
    }

    fn id_of(&self, inv: &FoInvoice, record: &FoInvoiceRecord) -> String {
        match record {
            FoInvoiceRecord::Pending(h) => h.header_reference.clone(),
            FoInvoiceRecord::Posted(_) => inv.header_reference.clone(),
        }
    }

    async fn find(
        &self,
        inv: &FoInvoice,
        known_id: Option<&str>,
    ) -> Result<Option<FoInvoiceRecord>, SystemError> {
        let reference = known_id.unwrap_or(&inv.header_reference);
        if let Some(h) = self.pending(inv, reference).await? {
            return Ok(Some(FoInvoiceRecord::Pending(h)));
        }
        if reference != inv.header_reference
            && let Some(h) = self.pending(inv, &inv.header_reference).await?
        {
            return Ok(Some(FoInvoiceRecord::Pending(h)));
        }
        Ok(self
            .fo
            .posted_invoice(&self.legal_entity, &inv.vendor_account, &inv.invoice_number)
            .await?
            .map(FoInvoiceRecord::Posted))
    }

    async fn create(&self, inv: &FoInvoice) -> Result<FoInvoiceRecord, SystemError> {
        let header = NewInvoiceHeader {
            data_area_id: self.legal_entity.clone(),
            header_reference: inv.header_reference.clone(),
            invoice_number: inv.invoice_number.clone(),
            vendor_account: inv.vendor_account.clone(),
            invoice_account: inv.vendor_account.clone(),
            invoice_date: format!("{}T12:00:00Z", inv.invoice_date),
            currency: inv.currency.clone(),
            description: inv.description.clone(),
        };
        self.fo
            .create_invoice_header(&header)
            .await
            .map(FoInvoiceRecord::Pending)
            .map_err(|e| refused(&format!("invoice {}", inv.invoice_number), e))
    }

    async fn finish(
        &self,
        inv: &FoInvoice,
        record: FoInvoiceRecord,
        created: bool,
    ) -> Result<Written, SystemError> {
        let header = match record {
            FoInvoiceRecord::Posted(p) => {
                return Ok(Written {
                    id: inv.header_reference.clone(),
                    number: p.ledger_voucher,
                    change: Change::AlreadyDone,
                });
            }
            FoInvoiceRecord::Pending(h) => h,
        };
        let reference = header.header_reference.clone();
        // A header just created has no lines yet: no need to ask.
        let mut have: Vec<i64> = if created {
            Vec::new()
        } else {
            self.fo
                .invoice_lines(&self.legal_entity, &reference)
                .await?
                .into_iter()
                .map(|l| l.invoice_line_number)
                .collect()
        };
        let mut added = 0;
        for (n, line) in inv.lines.iter().enumerate() {
            if have.contains(&line.number) {
                continue;
            }
            let what = format!(
                "line {} ({}) of invoice {}",
                line.number, line.main_account_display, inv.invoice_number
            );
            match self
                .fo
                .create_invoice_line(&self.new_line(inv, &reference, n))
                .await
            {
                Ok(_) => {}
                // Already there (an earlier attempt's answer was lost): nothing to add.
                Err(FoError::WriteRefused {
                    duplicate: true, ..
                }) => {}
                // Refused: parked with F&O's words, the header and earlier lines kept. Lost
                // or throttled: the next attempt reads the lines and adds only what is missing.
                Err(e) => return Err(refused(&what, e)),
            }
            have.push(line.number);
            added += 1;
        }
        Ok(Written {
            id: reference.clone(),
            number: reference,
            change: if created || added > 0 {
                Change::Created
            } else {
                Change::Unchanged
            },
        })
    }
}
