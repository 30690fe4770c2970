//! Purchase invoices and purchase credit memos: the same shape in BC (header, lines, line
//! dimensions, a bound `Microsoft.NAV.post` that renumbers and keeps the id), under different
//! entity-set and field names. One set of calls, parameterised by [`DocSet`].

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::batch::{BatchOp, MAX_BATCH_OPERATIONS};
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
    /// A credit memo's `invoiceId`: the posted purchase invoice (BC id) it is applied to, which
    /// it closes when its amount covers the invoice's. BC refuses an id that is not a posted
    /// invoice ('The "invoiceId" does not match to an Invoice.': ALAppExtensions
    /// `Apps/W1/APIV2/app/src/pages/APIV2PurchaseCreditMemos.Page.al`, field `invoiceId`, which
    /// sets "Applies-to Doc. Type"/"Applies-to Doc. No."). Invoices have no such field.
    pub applies_to_invoice_id: Option<String>,
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
        self.to_json_with_dimensions(set, &[])
    }

    /// The deep-insert body with each line's dimension values nested in the line
    /// (`dimensions[i]` = (code, value code) pairs of line `i`; missing = none), so header,
    /// lines and line dimensions are created in one atomic request. See [`BcClient::create_document`]
    /// for why BC takes this.
    pub fn to_json_with_dimensions(
        &self,
        set: DocSet,
        dimensions: &[Vec<(String, String)>],
    ) -> Value {
        let lines: Vec<Value> = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut line = json!({
                    "sequence": l.sequence,
                    "lineType": "Account",
                    "lineObjectNumber": l.gl_account,
                    "description": l.description,
                    "quantity": decimal_json(l.quantity),
                    "unitCost": decimal_json(l.unit_cost),
                });
                if let Some(dims) = dimensions.get(i).filter(|d| !d.is_empty()) {
                    line["dimensionSetLines"] = dimension_set_lines(dims);
                }
                line
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
        if let (DocSet::CreditMemo, Some(id)) = (set, &self.applies_to_invoice_id) {
            body.insert("invoiceId".into(), json!(id));
        }
        body.insert(set.line_set().into(), Value::Array(lines));
        Value::Object(body)
    }
}

/// A line's dimension values as nested `dimensionSetLines` (A6.6: by code and value code).
pub(super) fn dimension_set_lines(dims: &[(String, String)]) -> Value {
    Value::Array(
        dims.iter()
            .map(|(code, value)| json!({ "code": code, "valueCode": value }))
            .collect(),
    )
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
        self.create_document_with_dimensions(set, draft, &[]).await
    }

    /// Creates a draft with its lines and each line's dimension values in one multi-level deep
    /// insert: one request, atomic (all of it or nothing), whatever the number of lines and
    /// dimensions.
    ///
    /// Why BC takes nested `dimensionSetLines` in a deep-inserted line:
    /// - The APIV2 line pages declare the dimension set lines as a part of the line,
    ///   `part(dimensionSetLines; "APIV2 - Dimension Set Lines")` with `SubPageLink = "Parent Id"
    ///   = Field(SystemId), "Parent Type" = const("Purchase Invoice Line")`
    ///   (microsoft/ALAppExtensions `Apps/W1/APIV2/app/src/pages/APIV2PurchaseInvoiceLines.Page.al`;
    ///   `APIV2PurchCrMemoLines.Page.al` and `APIV2PurchaseOrderLines.Page.al` have the same part
    ///   with Parent Type "Purchase Credit Memo Line" / "Purchase Order Line"), and the header
    ///   pages declare the lines as a
    ///   part of the header: a deep insert fills parts level by level, so a line's dimension set
    ///   lines are inserted with the new line as their parent.
    /// - `APIV2DimensionSetLines.Page.al` `OnInsertRecord` needs only the Parent Id / Parent
    ///   Type filter the SubPageLink sets, then saves the set on the parent line.
    /// - microsoft/ALAppExtensions PR #11158 ("Move dimensions before lines", merged 2021, fixed
    ///   in release 18) describes deep inserts of documents with dimensions and lines and names
    ///   "include the dimensions on the individual lines" in the deep insert as the way that
    ///   already worked.
    /// - The docs only show one nesting level (`dynamics_purchaseInvoiceLine_create.md`: a header
    ///   and a line) and recommend `$batch` with `Isolation: snapshot` for several lines
    ///   (business-central.md A6.2 "Deep insert", gotcha 9): multi-level deep insert is read
    ///   from the AL source and the PR, not from a documented example [COMMUNITY]. Should a
    ///   BC build refuse it, the whole insert fails (nothing is created, never half a
    ///   document) and the invoice writer creates the draft without the nested dimensions and
    ///   adds them in one snapshot `$batch` (`InvoiceWriter::create`).
    pub async fn create_document_with_dimensions(
        &self,
        set: DocSet,
        draft: &NewPurchaseDocument,
        dimensions: &[Vec<(String, String)>],
    ) -> Result<PurchaseInvoice, BcError> {
        let resp = self
            .api
            .send(&ApiRequest::post_json(
                self.url(set.entity_set()),
                &draft.to_json_with_dimensions(set, dimensions),
            ))
            .await?;
        Ok(resp.json()?)
    }

    /// The natural-key read and the deep insert in one `$batch` round trip (no isolation: the
    /// read runs first and sees what BC held before the insert). Returns what the read found
    /// (`Err` if the read itself failed) and the insert's outcome; the caller deletes the new
    /// draft when the read found the document already there. An envelope failure is the
    /// error: the insert may have happened (a lost answer), which the next attempt's look-up
    /// settles.
    #[allow(clippy::type_complexity)]
    pub(super) async fn find_and_create_document(
        &self,
        set: DocSet,
        draft: &NewPurchaseDocument,
        dimensions: &[Vec<(String, String)>],
    ) -> Result<
        (
            Result<Vec<PurchaseInvoice>, BcError>,
            Result<PurchaseInvoice, BcError>,
        ),
        BcError,
    > {
        let ops = [
            BatchOp::get(self.natural_key_path(set, &draft.vendor_number, &draft.external_number)),
            BatchOp::post(
                set.entity_set().to_string(),
                Some(draft.to_json_with_dimensions(set, dimensions)),
            ),
        ];
        let answers = self.batch(&ops, false).await?;
        let found = answers[0]
            .json::<odata::Collection<PurchaseInvoice>>()
            .map(|c| c.value);
        let created = answers[1].json::<PurchaseInvoice>();
        Ok((found, created))
    }

    /// The path (below the company) of the natural-key read.
    fn natural_key_path(&self, set: DocSet, vendor_number: &str, external_number: &str) -> String {
        let filter = format!(
            "vendorNumber eq {} and {} eq {}",
            odata::string_literal(vendor_number),
            set.external_number_field(),
            odata::string_literal(external_number)
        );
        odata::with_filter(set.entity_set(), &filter)
    }

    /// Deletes a draft (one already gone counts as deleted).
    pub async fn delete_document(&self, set: DocSet, id: &str, etag: &str) -> Result<(), BcError> {
        self.delete(self.url(&format!("{}({id})", set.entity_set())), etag)
            .await
    }

    /// A document's lines with their dimension set lines, in one read (multi-level `$expand`
    /// works in BC: business-central.md A3).
    pub(super) async fn document_lines_with_dimensions(
        &self,
        set: DocSet,
        document_id: &str,
    ) -> Result<Vec<PurchaseInvoiceLine>, BcError> {
        let url = self.url(&format!(
            "{}({document_id})/{}?$expand=dimensionSetLines",
            set.entity_set(),
            set.line_set()
        ));
        Ok(odata::get_all(&self.api, &url, self.page_size).await?)
    }

    /// Adds dimension values to lines of a draft in one `$batch` with `Isolation: snapshot`
    /// (all or none): `(line id, code, value code)`.
    pub(super) async fn add_document_line_dimensions(
        &self,
        set: DocSet,
        adds: &[(String, String, String)],
    ) -> Result<(), BcError> {
        for chunk in adds.chunks(MAX_BATCH_OPERATIONS) {
            let ops: Vec<BatchOp> = chunk
                .iter()
                .map(|(line, code, value)| {
                    BatchOp::post(
                        format!("{}({line})/dimensionSetLines", set.line_set()),
                        Some(json!({ "code": code, "valueCode": value })),
                    )
                })
                .collect();
            for answer in self.batch(&ops, true).await? {
                if !answer.is_success() && answer.status != 424 {
                    return Err(answer.error());
                }
            }
        }
        Ok(())
    }

    /// `Microsoft.NAV.post` and a read of the document in one `$batch` round trip: the post
    /// renumbers the document (gotcha 3) and answers 204 without a body (gotcha 4), so the
    /// posted number needs the read; in one batch the read runs right after the post.
    ///
    /// No `Isolation: snapshot`: posting commits on its own in BC, and the read must report
    /// the document whether or not the post went through. Returns the post's outcome and the
    /// document as read after it (`None`: BC no longer has it).
    pub async fn post_and_read(
        &self,
        set: DocSet,
        id: &str,
    ) -> Result<(Result<(), BcError>, Option<PurchaseInvoice>), BcError> {
        let ops = [
            BatchOp::post(
                format!("{}({id})/Microsoft.NAV.post", set.entity_set()),
                None,
            ),
            BatchOp::get(format!("{}({id})", set.entity_set())),
        ];
        let answers = self.batch(&ops, false).await?;
        let posted = if answers[0].is_success() {
            Ok(())
        } else {
            Err(answers[0].error())
        };
        let read = match answers[1].status {
            404 => None,
            _ => Some(answers[1].json::<PurchaseInvoice>()?),
        };
        Ok((posted, read))
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
