//! Purchase invoices and purchase credit memos: the same shape in BC (header, lines, line
//! dimensions, a bound `Microsoft.NAV.post` that renumbers and keeps the id), under different
//! entity-set and field names. One set of calls, parameterised by [`DocSet`].

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::client::{BcClient, BcError};
use super::wire::{DimensionSetLine, PurchaseInvoice, PurchaseInvoiceLine};
use crate::systems::http::ApiRequest;
use crate::systems::http::odata;
use crate::systems::wire::decimal_json;

/// Which kind of purchase document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocSet {
    Invoice,
    CreditMemo,
}

impl DocSet {
    pub fn entity_set(self) -> &'static str {
        match self {
            DocSet::Invoice => "purchaseInvoices",
            DocSet::CreditMemo => "purchaseCreditMemos",
        }
    }

    fn line_set(self) -> &'static str {
        match self {
            DocSet::Invoice => "purchaseInvoiceLines",
            DocSet::CreditMemo => "purchaseCreditMemoLines",
        }
    }

    /// The vendor's own document number: `vendorInvoiceNumber` (A6.2) or
    /// `vendorCreditMemoNumber` (v2.0 purchaseCreditMemo resource).
    fn external_number_field(self) -> &'static str {
        match self {
            DocSet::Invoice => "vendorInvoiceNumber",
            DocSet::CreditMemo => "vendorCreditMemoNumber",
        }
    }

    fn date_field(self) -> &'static str {
        match self {
            DocSet::Invoice => "invoiceDate",
            DocSet::CreditMemo => "creditMemoDate",
        }
    }

    /// For messages: "purchase invoice", "purchase credit memo".
    pub fn noun(self) -> &'static str {
        match self {
            DocSet::Invoice => "purchase invoice",
            DocSet::CreditMemo => "purchase credit memo",
        }
    }
}

/// A draft document with its G/L-account lines, created in one deep insert. Only writable
/// fields are sent (gotcha 2).
#[derive(Clone, Debug)]
pub struct NewPurchaseDocument {
    pub vendor_number: String,
    pub external_number: String,
    pub date: NaiveDate,
    pub currency_code: String,
    pub lines: Vec<NewDocumentLine>,
}

#[derive(Clone, Debug)]
pub struct NewDocumentLine {
    pub sequence: i32,
    pub gl_account: String,
    pub description: String,
    pub quantity: Decimal,
    pub unit_cost: Decimal,
}

impl NewPurchaseDocument {
    pub fn to_json(&self, set: DocSet) -> Value {
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                json!({
                    "sequence": l.sequence,
                    "lineType": "Account",
                    "lineObjectNumber": l.gl_account,
                    "description": l.description,
                    "quantity": decimal_json(l.quantity),
                    "unitCost": decimal_json(l.unit_cost),
                })
            })
            .collect();
        let mut body = serde_json::Map::new();
        body.insert("vendorNumber".into(), json!(self.vendor_number));
        body.insert(
            set.external_number_field().into(),
            json!(self.external_number),
        );
        body.insert(set.date_field().into(), json!(self.date));
        body.insert("currencyCode".into(), json!(self.currency_code));
        body.insert(set.line_set().into(), Value::Array(lines));
        Value::Object(body)
    }
}

impl BcClient {
    /// Documents (drafts and posted) of a vendor with this vendor document number: the natural
    /// key checked before any create.
    pub async fn documents_by_natural_key(
        &self,
        set: DocSet,
        vendor_number: &str,
        external_number: &str,
    ) -> Result<Vec<PurchaseInvoice>, BcError> {
        let filter = format!(
            "vendorNumber eq {} and {} eq {}",
            odata::string_literal(vendor_number),
            set.external_number_field(),
            odata::string_literal(external_number)
        );
        let url = odata::with_filter(&self.url(set.entity_set()), &filter);
        Ok(odata::get_all(&self.api, &url, self.page_size).await?)
    }

    /// By id (stable across posting); `None` if BC no longer has it.
    pub async fn document(
        &self,
        set: DocSet,
        id: &str,
    ) -> Result<Option<PurchaseInvoice>, BcError> {
        self.get_opt(self.url(&format!("{}({id})", set.entity_set())))
            .await
    }

    /// Creates a draft with all its lines in one deep insert (atomic: all lines or nothing).
    pub async fn create_document(
        &self,
        set: DocSet,
        draft: &NewPurchaseDocument,
    ) -> Result<PurchaseInvoice, BcError> {
        let resp = self
            .api
            .send(&ApiRequest::post_json(
                self.url(set.entity_set()),
                &draft.to_json(set),
            ))
            .await?;
        Ok(resp.json()?)
    }

    pub async fn document_lines(
        &self,
        set: DocSet,
        document_id: &str,
    ) -> Result<Vec<PurchaseInvoiceLine>, BcError> {
        let url = self.url(&format!(
            "{}({document_id})/{}",
            set.entity_set(),
            set.line_set()
        ));
        Ok(odata::get_all(&self.api, &url, self.page_size).await?)
    }

    pub async fn document_line_dimensions(
        &self,
        set: DocSet,
        line_id: &str,
    ) -> Result<Vec<DimensionSetLine>, BcError> {
        self.line_dimensions_in(set.line_set(), line_id).await
    }

    pub async fn add_document_line_dimension(
        &self,
        set: DocSet,
        line_id: &str,
        code: &str,
        value_code: &str,
    ) -> Result<(), BcError> {
        self.add_line_dimension_in(set.line_set(), line_id, code, value_code)
            .await
    }

    /// The bound action `Microsoft.NAV.post` (204, no body). The number changes; the id stays.
    pub async fn post_document(&self, set: DocSet, id: &str) -> Result<(), BcError> {
        let url = self.url(&format!("{}({id})/Microsoft.NAV.post", set.entity_set()));
        self.api.send(&ApiRequest::post_empty(url)).await?;
        Ok(())
    }
}

impl BcClient {
    /// Paid purchase invoices modified in `[lower, upper)`, following `@odata.nextLink` to the
    /// end. `ge` on the lower bound: a strict `gt` drops invoices that share the watermark's
    /// instant. The DateTimeOffset literals are unquoted (A3).
    pub async fn paid_invoices_modified(
        &self,
        lower: chrono::DateTime<chrono::Utc>,
        upper: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<PurchaseInvoice>, BcError> {
        let fmt = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let filter = format!(
            "status eq 'Paid' and lastModifiedDateTime ge {} and lastModifiedDateTime lt {}",
            fmt(lower),
            fmt(upper)
        );
        let url = odata::with_filter(&self.url(DocSet::Invoice.entity_set()), &filter);
        Ok(odata::get_all(&self.api, &url, self.page_size).await?)
    }
}
