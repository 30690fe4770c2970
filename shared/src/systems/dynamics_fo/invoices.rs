//! Pending vendor invoices (`VendorInvoiceHeaders`, `VendorInvoiceLines`), posted ones
//! (`VendInvoiceJourBiEntities`) and their vendor transactions (`VendTransBiEntities`), each
//! read and written in one legal entity.

use super::client::{FoClient, FoError, Key};
use super::wire::{
    InvoiceHeader, InvoiceLine, NewInvoiceHeader, NewInvoiceLine, PostedInvoice, Vendor,
    VendorTransaction,
};
use crate::systems::http::odata::string_literal;

pub const HEADERS: &str = "VendorInvoiceHeaders";
pub const LINES: &str = "VendorInvoiceLines";
pub const POSTED: &str = "VendInvoiceJourBiEntities";
pub const VEND_TRANS: &str = "VendTransBiEntities";
pub const VENDORS: &str = "VendorsV2";

impl FoClient {
    /// The pending invoice with this header reference; `None` once posted (B4.1: a posted
    /// invoice leaves the pending entities) or never created.
    pub async fn invoice_header(
        &self,
        company: &str,
        header_reference: &str,
    ) -> Result<Option<InvoiceHeader>, FoError> {
        self.get(
            HEADERS,
            &[
                ("dataAreaId", Key::Str(company)),
                ("HeaderReference", Key::Str(header_reference)),
            ],
        )
        .await
    }

    /// Pending invoices of an invoice account with this vendor invoice number: the natural key.
    pub async fn pending_invoices_by_number(
        &self,
        company: &str,
        invoice_account: &str,
        invoice_number: &str,
    ) -> Result<Vec<InvoiceHeader>, FoError> {
        // `eq` on a string is a wildcard match in F&O (B2): a number holding `*` would match
        // others, so only exact matches are kept.
        let found: Vec<InvoiceHeader> = self
            .list(
                HEADERS,
                company,
                &format!(
                    "InvoiceAccount eq {} and InvoiceNumber eq {}",
                    string_literal(invoice_account),
                    string_literal(invoice_number)
                ),
            )
            .await?;
        Ok(found
            .into_iter()
            .filter(|h| h.invoice_number.eq_ignore_ascii_case(invoice_number))
            .collect())
    }

    pub async fn invoice_lines(
        &self,
        company: &str,
        header_reference: &str,
    ) -> Result<Vec<InvoiceLine>, FoError> {
        self.list(
            LINES,
            company,
            &format!("HeaderReference eq {}", string_literal(header_reference)),
        )
        .await
    }

    pub async fn create_invoice_header(
        &self,
        header: &NewInvoiceHeader,
    ) -> Result<InvoiceHeader, FoError> {
        self.create(HEADERS, header).await
    }

    /// Adds one line; its header must exist already (no deep insert in F&O).
    pub async fn create_invoice_line(&self, line: &NewInvoiceLine) -> Result<InvoiceLine, FoError> {
        self.create(LINES, line).await
    }

    /// The posted invoice of an invoice account with this vendor invoice number (B9.7).
    pub async fn posted_invoice(
        &self,
        company: &str,
        invoice_account: &str,
        invoice_number: &str,
    ) -> Result<Option<PostedInvoice>, FoError> {
        let found: Vec<PostedInvoice> = self
            .list(
                POSTED,
                company,
                &format!(
                    "InvoiceAccount eq {} and InvoiceId eq {}",
                    string_literal(invoice_account),
                    string_literal(invoice_number)
                ),
            )
            .await?;
        Ok(found
            .into_iter()
            .find(|p| p.invoice_id.eq_ignore_ascii_case(invoice_number)))
    }

    /// The vendor transactions of a posted invoice (B9.6): say whether it is paid.
    pub async fn vendor_transactions(
        &self,
        company: &str,
        invoice_account: &str,
        invoice_number: &str,
    ) -> Result<Vec<VendorTransaction>, FoError> {
        let found: Vec<VendorTransaction> = self
            .list(
                VEND_TRANS,
                company,
                &format!(
                    "AccountNum eq {} and Invoice eq {}",
                    string_literal(invoice_account),
                    string_literal(invoice_number)
                ),
            )
            .await?;
        Ok(found
            .into_iter()
            .filter(|t| t.invoice.eq_ignore_ascii_case(invoice_number))
            .collect())
    }

    /// A vendor of one legal entity (vendors are per company: B4.4).
    pub async fn vendor(&self, company: &str, account: &str) -> Result<Option<Vendor>, FoError> {
        self.get(
            VENDORS,
            &[
                ("dataAreaId", Key::Str(company)),
                ("VendorAccountNumber", Key::Str(account)),
            ],
        )
        .await
    }
}

impl FoClient {
    /// Vendor transactions of one legal entity modified in `[lower, upper)` (B9.6: this entity,
    /// unlike the invoice entities, has `SysModifiedDateTime`, so a watermark works on it).
    pub async fn vendor_transactions_modified(
        &self,
        company: &str,
        lower: chrono::DateTime<chrono::Utc>,
        upper: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<VendorTransaction>, FoError> {
        let at =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.list(
            VEND_TRANS,
            company,
            &format!(
                "SysModifiedDateTime ge {} and SysModifiedDateTime lt {}",
                at(lower),
                at(upper)
            ),
        )
        .await
    }
}
