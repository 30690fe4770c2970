//! Business Central records and the business rules the API enforces on them
//! (business-central.md A6.1–A6.6 and gotchas 2–4). Purchase invoices, orders and credit
//! memos share one record type, [`Doc`], told apart by [`Kind`]: the AL pages differ in
//! field names and a few rules, not in how they behave.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::errors::{ApiError, ApiResult};
use super::schema::{self, Access, Entity, Ty};
use super::values::{coerce, datetime, decimal_of, etag, num};

/// Identity, version and modification time shared by every record.
#[derive(Clone)]
pub(crate) struct Meta {
    pub id: Uuid,
    pub version: u64,
    pub modified: DateTime<Utc>,
}

impl Meta {
    fn new() -> Self {
        Meta {
            id: Uuid::new_v4(),
            version: 1,
            modified: Utc::now(),
        }
    }

    /// Every modification changes the ETag and `lastModifiedDateTime`.
    pub(crate) fn bump(&mut self) {
        self.version += 1;
        self.modified = Utc::now();
    }

    pub(crate) fn etag(&self) -> String {
        etag(self.id, self.version)
    }
}

#[derive(Clone)]
pub(crate) struct Vendor {
    pub meta: Meta,
    /// Writable fields, normalised (see `schema::VENDOR`).
    pub fields: Map<String, Value>,
}

#[derive(Clone)]
pub(crate) struct Account {
    pub meta: Meta,
    pub number: String,
    pub name: String,
}

#[derive(Clone)]
pub(crate) struct DimValue {
    pub meta: Meta,
    pub code: String,
    pub name: String,
}

#[derive(Clone)]
pub(crate) struct Dimension {
    pub meta: Meta,
    pub code: String,
    pub name: String,
    pub values: Vec<DimValue>,
}

#[derive(Clone)]
pub(crate) struct Currency {
    pub id: Uuid,
    pub code: String,
}

/// One dimension on a document or line; keyed by the dimension (A6.6: `id` = dimension id).
#[derive(Clone)]
pub(crate) struct DimLine {
    pub dim_id: Uuid,
    pub value_id: Uuid,
    pub version: u64,
}

#[derive(Clone)]
pub(crate) struct Line {
    pub meta: Meta,
    pub fields: Map<String, Value>,
    pub dims: Vec<DimLine>,
}

/// Which purchase document an entity set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Invoice,
    Order,
    CreditMemo,
}

impl Kind {
    pub(crate) const ALL: [Kind; 3] = [Kind::Invoice, Kind::Order, Kind::CreditMemo];

    pub(crate) fn header(self) -> &'static Entity {
        match self {
            Kind::Invoice => &schema::INVOICE,
            Kind::Order => &schema::ORDER,
            Kind::CreditMemo => &schema::CREDIT_MEMO,
        }
    }

    pub(crate) fn line(self) -> &'static Entity {
        match self {
            Kind::Invoice => &schema::LINE,
            Kind::Order => &schema::ORDER_LINE,
            Kind::CreditMemo => &schema::CREDIT_MEMO_LINE,
        }
    }

    pub(crate) fn set_name(self) -> &'static str {
        match self {
            Kind::Invoice => "purchaseInvoices",
            Kind::Order => "purchaseOrders",
            Kind::CreditMemo => "purchaseCreditMemos",
        }
    }

    pub(crate) fn lines_name(self) -> &'static str {
        match self {
            Kind::Invoice => "purchaseInvoiceLines",
            Kind::Order => "purchaseOrderLines",
            Kind::CreditMemo => "purchaseCreditMemoLines",
        }
    }

    pub(crate) fn from_set(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.set_name() == name)
    }

    pub(crate) fn from_lines(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.lines_name() == name)
    }

    /// The kind whose header EDM type is `type_name`.
    pub(crate) fn from_header_type(type_name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.header().type_name == type_name)
    }

    pub(crate) fn from_line_type(type_name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.line().type_name == type_name)
    }

    /// `parentType` of dimension set lines on the header and on a line (A6.6).
    pub(crate) fn parent_types(self) -> (&'static str, &'static str) {
        match self {
            Kind::Invoice => ("Purchase Invoice", "Purchase Invoice Line"),
            Kind::Order => ("Purchase Order", "Purchase Order Line"),
            Kind::CreditMemo => ("Purchase Credit Memo", "Purchase Credit Memo Line"),
        }
    }

    /// The vendor's own document number: with the vendor, the natural key.
    pub(crate) fn ext_field(self) -> Option<&'static str> {
        match self {
            Kind::Invoice => Some("vendorInvoiceNumber"),
            Kind::Order => None,
            Kind::CreditMemo => Some("vendorCreditMemoNumber"),
        }
    }

    /// The document date field (AL "Document Date").
    fn date_field(self) -> &'static str {
        match self {
            Kind::Invoice => "invoiceDate",
            Kind::Order => "orderDate",
            Kind::CreditMemo => "creditMemoDate",
        }
    }

    /// A6.4: order lines carry `directUnitCost`; invoice and credit memo lines `unitCost`.
    pub(crate) fn cost_field(self) -> &'static str {
        match self {
            Kind::Order => "directUnitCost",
            _ => "unitCost",
        }
    }

    /// `Microsoft.NAV.post` exists on invoices and credit memos; orders have
    /// `receiveAndInvoice`, which is not simulated.
    pub(crate) fn postable(self) -> bool {
        self != Kind::Order
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Invoice => "invoice",
            Kind::Order => "order",
            Kind::CreditMemo => "credit memo",
        }
    }

    /// AL table named in duplicate-line errors.
    fn line_table(self) -> &'static str {
        match self {
            Kind::Invoice => "Purch. Inv. Line Aggregate",
            Kind::Order => "Purchase Line",
            Kind::CreditMemo => "Purch. Cr. Memo Line Aggregate",
        }
    }
}

/// What happened to a record, for webhook notifications (A8 `changeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Created,
    Updated,
    Deleted,
}

impl ChangeType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
            ChangeType::Deleted => "deleted",
        }
    }
}

/// One change of a record in a webhook-visible entity set, waiting for the notifier.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub set: &'static str,
    pub id: Uuid,
    pub change: ChangeType,
    pub at: DateTime<Utc>,
}

/// A purchase invoice, order or credit memo (draft or posted).
#[derive(Clone)]
pub(crate) struct Doc {
    pub kind: Kind,
    pub meta: Meta,
    pub number: String,
    pub posted: bool,
    pub paid: bool,
    /// What posted credit memos applied to this invoice have taken off its open amount.
    pub applied: Decimal,
    pub post_count: u32,
    pub vendor_id: Uuid,
    pub fields: Map<String, Value>,
    pub lines: Vec<Line>,
    pub dims: Vec<DimLine>,
}

pub(crate) const LCY: &str = "USD";
const ZERO: Uuid = Uuid::nil();

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn d(m: &Map<String, Value>, k: &str) -> Decimal {
    m.get(k).and_then(decimal_of).unwrap_or_default()
}

impl Line {
    pub(crate) fn quantity(&self) -> Decimal {
        d(&self.fields, "quantity")
    }
    /// `unitCost`, or `directUnitCost` on order lines.
    pub(crate) fn unit_cost(&self) -> Decimal {
        if self.fields.contains_key("directUnitCost") {
            d(&self.fields, "directUnitCost")
        } else {
            d(&self.fields, "unitCost")
        }
    }
    pub(crate) fn description2(&self) -> &str {
        s(&self.fields, "description2")
    }
    pub(crate) fn sequence(&self) -> i64 {
        self.fields
            .get("sequence")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }
    pub(crate) fn line_type(&self) -> &str {
        s(&self.fields, "lineType")
    }
    pub(crate) fn object_number(&self) -> &str {
        s(&self.fields, "lineObjectNumber")
    }
    pub(crate) fn description(&self) -> &str {
        s(&self.fields, "description")
    }

    /// (discount, net amount) in LCY precision. Tax is not simulated (no tax setup): 0.
    pub(crate) fn amounts(&self) -> (Decimal, Decimal) {
        let gross = round2(self.quantity() * self.unit_cost());
        let pct = d(&self.fields, "discountPercent");
        let discount = if pct.is_zero() {
            d(&self.fields, "discountAmount")
        } else {
            round2(gross * pct / Decimal::ONE_HUNDRED)
        };
        (discount, gross - discount)
    }

    /// A line with a `No.` takes part in posting; blank and comment lines do not.
    fn posts(&self) -> bool {
        self.line_type() != "Comment" && !self.object_number().is_empty()
    }
}

impl Doc {
    pub(crate) fn status(&self) -> &'static str {
        match (self.kind, self.posted, self.paid) {
            // A6.4: new orders are "Draft" (Purchase Header status Open). Doubt: release
            // ("Open") and approval ("In Review") are not simulated, so orders stay Draft.
            (Kind::Order, ..) => "Draft",
            (_, false, _) => "Draft",
            (_, true, false) => "Open",
            (_, true, true) => "Paid",
        }
    }

    pub(crate) fn total(&self) -> Decimal {
        self.lines.iter().map(|l| l.amounts().1).sum::<Decimal>()
            - d(&self.fields, "discountAmount")
    }

    /// `vendorInvoiceNumber` / `vendorCreditMemoNumber` ("" for orders).
    pub(crate) fn vendor_invoice_number(&self) -> &str {
        self.kind.ext_field().map_or("", |k| s(&self.fields, k))
    }

    /// The document date (`invoiceDate`, `orderDate`, `creditMemoDate`).
    pub(crate) fn document_date(&self) -> &str {
        s(&self.fields, self.kind.date_field())
    }

    /// Doubt: the exact text BC uses for edits of a posted document is not in the fact sheet.
    fn ensure_draft(&self) -> ApiResult<()> {
        if self.posted {
            return Err(ApiError::dialog(format!(
                "The {} has been posted and can no longer be modified.",
                self.kind.noun()
            )));
        }
        Ok(())
    }
}

/// Validates a request body against an entity's field table: unknown field → 400
/// `BadRequest` "Invalid Request Body"; read-only field → 400 `BadRequest_InvalidOperation`
/// (gotcha 2). `also` names extra keys the caller handles itself. OData instance
/// annotations (`@odata.etag` …) are ignored, so a GET body can be sent back.
pub(crate) fn validate(
    entity: &Entity,
    body: &Value,
    also: &[&str],
) -> ApiResult<Map<String, Value>> {
    let Value::Object(obj) = body else {
        return Err(ApiError::invalid_body());
    };
    let mut out = Map::new();
    for (k, v) in obj {
        if k.starts_with('@') {
            continue;
        }
        if also.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
            continue;
        }
        match entity.field(k) {
            None => return Err(ApiError::invalid_body()),
            Some((_, _, Access::ReadOnly)) => return Err(ApiError::read_only(k)),
            Some((_, ty, Access::Writable)) => {
                out.insert(k.clone(), coerce(*ty, v)?);
            }
        }
    }
    Ok(out)
}

/// Which dimension and value a dimension-set-line body names (by code or id).
fn resolve_dim(dims: &[Dimension], body: &Map<String, Value>) -> ApiResult<(Uuid, Uuid)> {
    let dim = if let Some(code) = body.get("code").and_then(Value::as_str) {
        dims.iter().find(|d| d.code == code).ok_or_else(|| {
            ApiError::table_relation(
                "Dimension Code",
                "Dimension Set Entry Buffer",
                code,
                "Dimension",
            )
        })?
    } else if let Some(id) = body.get("id").and_then(Value::as_str) {
        dims.iter()
            .find(|d| d.meta.id.to_string() == id)
            .ok_or_else(|| {
                ApiError::table_relation(
                    "Dimension Id",
                    "Dimension Set Entry Buffer",
                    id,
                    "Dimension",
                )
            })?
    } else {
        // Doubt: BC's exact text for a body naming no dimension is not documented.
        return Err(ApiError::dialog(
            "The dimension code or id must be specified.",
        ));
    };
    let value = if let Some(code) = body.get("valueCode").and_then(Value::as_str) {
        dim.values.iter().find(|v| v.code == code).ok_or_else(|| {
            ApiError::table_relation(
                "Dimension Value Code",
                "Dimension Set Entry Buffer",
                code,
                "Dimension Value",
            )
        })?
    } else if let Some(id) = body.get("valueId").and_then(Value::as_str) {
        dim.values
            .iter()
            .find(|v| v.meta.id.to_string() == id)
            .ok_or_else(|| {
                ApiError::table_relation(
                    "Dimension Value Id",
                    "Dimension Set Entry Buffer",
                    id,
                    "Dimension Value",
                )
            })?
    } else {
        return Err(ApiError::dialog(
            "The dimension value code or id must be specified.",
        ));
    };
    Ok((dim.meta.id, value.meta.id))
}

#[derive(Clone)]
pub(crate) struct Store {
    pub company_id: Uuid,
    pub company_name: String,
    pub vendors: Vec<Vendor>,
    pub accounts: Vec<Account>,
    pub dimensions: Vec<Dimension>,
    pub currencies: Vec<Currency>,
    pub invoices: Vec<Doc>,
    pub orders: Vec<Doc>,
    pub credit_memos: Vec<Doc>,
    /// Changes not yet seen by the webhook notifier (drained every window).
    pub changes: Vec<Change>,
    next_draft_no: u64,
    next_posted_no: u64,
    next_order_no: u64,
    next_cm_draft_no: u64,
    next_cm_posted_no: u64,
    next_vendor_no: u64,
    /// Test knob: answer a deep-inserted line carrying `dimensionSetLines` with 400, as a BC
    /// build would that does not take the multi-level deep insert (`BcSim::refuse_nested_dimensions`).
    pub refuse_nested_dims: bool,
}

impl Store {
    pub(crate) fn new() -> Self {
        // CRONUS USA has these currencies among others; LCY is USD (blank code).
        let currencies = [
            "EUR", "GBP", "CAD", "MXN", "JPY", "AUD", "CHF", "DKK", "NOK", "SEK",
        ]
        .iter()
        .map(|c| Currency {
            id: Uuid::new_v4(),
            code: (*c).into(),
        })
        .collect();
        Store {
            company_id: Uuid::new_v4(),
            company_name: "CRONUS USA, Inc.".into(),
            vendors: Vec::new(),
            accounts: Vec::new(),
            dimensions: Vec::new(),
            currencies,
            invoices: Vec::new(),
            orders: Vec::new(),
            credit_memos: Vec::new(),
            changes: Vec::new(),
            next_draft_no: 1001,
            next_posted_no: 108001,
            // Doubt: CRONUS number series starts; any unused codes will do.
            next_order_no: 106001,
            next_cm_draft_no: 1001,
            next_cm_posted_no: 109001,
            next_vendor_no: 10,
            refuse_nested_dims: false,
        }
    }

    // ---------- lookups ----------

    pub(crate) fn vendor(&self, id: Uuid) -> Option<&Vendor> {
        self.vendors.iter().find(|v| v.meta.id == id)
    }

    pub(crate) fn docs(&self, kind: Kind) -> &Vec<Doc> {
        match kind {
            Kind::Invoice => &self.invoices,
            Kind::Order => &self.orders,
            Kind::CreditMemo => &self.credit_memos,
        }
    }

    fn docs_mut(&mut self, kind: Kind) -> &mut Vec<Doc> {
        match kind {
            Kind::Invoice => &mut self.invoices,
            Kind::Order => &mut self.orders,
            Kind::CreditMemo => &mut self.credit_memos,
        }
    }

    pub(crate) fn invoice(&self, id: Uuid) -> ApiResult<&Doc> {
        self.doc(Kind::Invoice, id)
    }

    pub(crate) fn doc(&self, kind: Kind, id: Uuid) -> ApiResult<&Doc> {
        self.docs(kind)
            .iter()
            .find(|i| i.meta.id == id)
            .ok_or_else(ApiError::not_found)
    }

    fn doc_mut(&mut self, kind: Kind, id: Uuid) -> ApiResult<&mut Doc> {
        self.docs_mut(kind)
            .iter_mut()
            .find(|i| i.meta.id == id)
            .ok_or_else(ApiError::not_found)
    }

    /// The document holding a line, by the line id alone (flat `purchaseInvoiceLines(id)`).
    pub(crate) fn doc_of_line(&self, kind: Kind, line_id: Uuid) -> ApiResult<Uuid> {
        self.docs(kind)
            .iter()
            .find(|i| i.lines.iter().any(|l| l.meta.id == line_id))
            .map(|i| i.meta.id)
            .ok_or_else(ApiError::not_found)
    }

    /// Records a change for the webhook notifier (A8).
    pub(crate) fn changed(&mut self, set: &'static str, id: Uuid, change: ChangeType) {
        self.changes.push(Change {
            set,
            id,
            change,
            at: Utc::now(),
        });
    }

    fn dim_names(&self, dl: &DimLine) -> (&Dimension, Option<&DimValue>) {
        let dim = self
            .dimensions
            .iter()
            .find(|d| d.meta.id == dl.dim_id)
            .expect("dimension exists");
        (dim, dim.values.iter().find(|v| v.meta.id == dl.value_id))
    }

    /// (code, valueCode) pairs, for the inspection views.
    pub(crate) fn dim_codes(&self, dims: &[DimLine]) -> Vec<(String, String)> {
        dims.iter()
            .map(|dl| {
                let (d, v) = self.dim_names(dl);
                (
                    d.code.clone(),
                    v.map(|v| v.code.clone()).unwrap_or_default(),
                )
            })
            .collect()
    }

    // ---------- seeding ----------

    pub(crate) fn add_vendor(&mut self, number: &str, name: &str) -> Uuid {
        let body = json!({ "number": number, "displayName": name });
        self.create_vendor(&body).expect("valid seed vendor")
    }

    pub(crate) fn add_account(&mut self, number: &str, name: &str) -> Uuid {
        let meta = Meta::new();
        let id = meta.id;
        self.accounts.push(Account {
            meta,
            number: number.to_uppercase(),
            name: name.into(),
        });
        self.changed("accounts", id, ChangeType::Created);
        id
    }

    pub(crate) fn add_dimension(&mut self, code: &str, values: &[&str]) -> Uuid {
        let meta = Meta::new();
        let id = meta.id;
        let mut name = code.to_lowercase();
        if let Some(f) = name.get_mut(..1) {
            f.make_ascii_uppercase();
        }
        let values = values
            .iter()
            .map(|v| DimValue {
                meta: Meta::new(),
                code: v.to_uppercase(),
                name: (*v).into(),
            })
            .collect();
        self.dimensions.push(Dimension {
            meta,
            code: code.to_uppercase(),
            name,
            values,
        });
        self.changed("dimensions", id, ChangeType::Created);
        id
    }

    // ---------- rendering ----------

    pub(crate) fn render_company(&self) -> Map<String, Value> {
        obj(json!({
            "id": self.company_id,
            "systemVersion": "26.0.30643.32481",
            "name": self.company_name,
            "displayName": self.company_name,
            "businessProfileId": "",
        }))
    }

    pub(crate) fn render_vendor(&self, v: &Vendor) -> Map<String, Value> {
        // Open posted invoices raise the balance, open posted credit memos lower it.
        let open = |docs: &Vec<Doc>| -> Decimal {
            docs.iter()
                .filter(|i| i.vendor_id == v.meta.id && i.posted && !i.paid)
                .map(Doc::total)
                .sum()
        };
        let balance = open(&self.invoices) - open(&self.credit_memos);
        let mut m = Map::new();
        m.insert("@odata.etag".into(), json!(v.meta.etag()));
        m.insert("id".into(), json!(v.meta.id));
        for (name, _, access) in schema::VENDOR.fields {
            if *access == Access::Writable {
                m.insert(
                    (*name).into(),
                    v.fields.get(*name).cloned().unwrap_or(json!("")),
                );
            }
        }
        if s(&v.fields, "currencyCode").is_empty() {
            m.insert("currencyCode".into(), json!(LCY));
        }
        m.insert("balance".into(), num(balance));
        m.insert(
            "lastModifiedDateTime".into(),
            json!(datetime(v.meta.modified)),
        );
        m
    }

    pub(crate) fn render_account(&self, a: &Account) -> Map<String, Value> {
        obj(json!({
            "@odata.etag": a.meta.etag(),
            "id": a.meta.id,
            "number": a.number,
            "displayName": a.name,
            "category": "Expense",
            "subCategory": "",
            "blocked": false,
            "accountType": "Posting",
            "directPosting": true,
            "netChange": 0,
            "lastModifiedDateTime": datetime(a.meta.modified),
        }))
    }

    pub(crate) fn render_dimension(&self, dim: &Dimension) -> Map<String, Value> {
        obj(json!({
            "@odata.etag": dim.meta.etag(),
            "id": dim.meta.id,
            "code": dim.code,
            "displayName": dim.name,
            "consolidationCode": "",
            "lastModifiedDateTime": datetime(dim.meta.modified),
        }))
    }

    pub(crate) fn render_dim_value(&self, dim: &Dimension, v: &DimValue) -> Map<String, Value> {
        obj(json!({
            "@odata.etag": v.meta.etag(),
            "id": v.meta.id,
            "code": v.code,
            "dimensionId": dim.meta.id,
            "displayName": v.name,
            "consolidationCode": "",
            "lastModifiedDateTime": datetime(v.meta.modified),
        }))
    }

    pub(crate) fn render_dim_line(
        &self,
        parent_id: Uuid,
        parent_type: &str,
        dl: &DimLine,
    ) -> Map<String, Value> {
        let (dim, value) = self.dim_names(dl);
        obj(json!({
            "@odata.etag": dim_line_etag_of(parent_id, dl),
            "id": dim.meta.id,
            "code": dim.code,
            "consolidationCode": "",
            "parentId": parent_id,
            "parentType": parent_type,
            "displayName": dim.name,
            "valueId": dl.value_id,
            "valueCode": value.map(|v| v.code.as_str()).unwrap_or(""),
            "valueConsolidationCode": "",
            "valueDisplayName": value.map(|v| v.name.as_str()).unwrap_or(""),
        }))
    }

    /// The fields of [`Self::render_doc`] that filters commonly use, rendered the same way,
    /// so a filter on them can pick rows before the (much dearer) full rendering.
    pub(crate) fn doc_key_row(&self, doc: &Doc) -> Map<String, Value> {
        let vendor_number = self
            .vendor(doc.vendor_id)
            .map(|v| s(&v.fields, "number").to_owned())
            .unwrap_or_default();
        let mut m = Map::new();
        m.insert("id".into(), json!(doc.meta.id));
        m.insert("number".into(), json!(doc.number));
        if let Some(k) = doc.kind.ext_field() {
            m.insert(k.into(), doc.fields.get(k).cloned().unwrap_or(json!("")));
        }
        m.insert("vendorNumber".into(), json!(vendor_number));
        m.insert("status".into(), json!(doc.status()));
        m.insert(
            "lastModifiedDateTime".into(),
            json!(datetime(doc.meta.modified)),
        );
        m
    }

    /// Renders a document header from its kind's field table: stored values for what the
    /// client wrote, computed ones for the rest.
    pub(crate) fn render_doc(&self, doc: &Doc) -> Map<String, Value> {
        let vendor = self.vendor(doc.vendor_id);
        let vf = |k: &str| {
            vendor
                .map(|v| s(&v.fields, k).to_owned())
                .unwrap_or_default()
        };
        let currency = s(&doc.fields, "currencyCode");
        let total = doc.total();
        let mut m = Map::new();
        m.insert("@odata.etag".into(), json!(doc.meta.etag()));
        for (name, ty, _) in doc.kind.header().fields {
            let name = *name;
            let v = match name {
                "id" => json!(doc.meta.id),
                "number" => json!(doc.number),
                "vendorId" | "payToVendorId" => json!(doc.vendor_id),
                "vendorNumber" | "payToVendorNumber" => json!(vf("number")),
                "vendorName" | "payToName" => json!(vf("displayName")),
                "payToContact" => json!(""),
                "payToAddressLine1" | "payToAddressLine2" | "payToCity" | "payToCountry"
                | "payToState" | "payToPostCode"
                    if !doc.fields.contains_key(name) =>
                {
                    let vendor_field = match name {
                        "payToAddressLine1" => "addressLine1",
                        "payToAddressLine2" => "addressLine2",
                        "payToCity" => "city",
                        "payToCountry" => "country",
                        "payToState" => "state",
                        _ => "postalCode",
                    };
                    json!(vf(vendor_field))
                }
                "currencyId" => json!(
                    self.currencies
                        .iter()
                        .find(|c| c.code == currency)
                        .map(|c| c.id)
                        .unwrap_or(ZERO)
                ),
                // A6.1 note: blank currency = LCY, shown as the LCY code.
                "currencyCode" => json!(if currency.is_empty() { LCY } else { currency }),
                "discountAmount" => num(d(&doc.fields, "discountAmount")),
                "discountAppliedBeforeTax" => json!(false),
                "totalAmountExcludingTax" | "totalAmountIncludingTax" => num(total),
                // Tax is not simulated (no tax setup).
                "totalTaxAmount" => num(Decimal::ZERO),
                "status" => json!(doc.status()),
                "lastModifiedDateTime" => json!(datetime(doc.meta.modified)),
                _ => doc.fields.get(name).cloned().unwrap_or_else(|| match ty {
                    Ty::Guid => json!(ZERO),
                    Ty::Bool => json!(false),
                    Ty::Decimal | Ty::Int => json!(0),
                    // BC renders a blank date as 0001-01-01.
                    Ty::Date => json!("0001-01-01"),
                    _ => json!(""),
                }),
            };
            m.insert(name.into(), v);
        }
        m
    }

    pub(crate) fn render_line(&self, doc: &Doc, l: &Line) -> Map<String, Value> {
        let (discount, net) = l.amounts();
        let mut m = Map::new();
        m.insert("@odata.etag".into(), json!(l.meta.etag()));
        m.insert("id".into(), json!(l.meta.id));
        m.insert("documentId".into(), json!(doc.meta.id));
        for (name, ty, access) in doc.kind.line().fields {
            let name = *name;
            let v = match name {
                "id" | "documentId" => continue,
                "discountAmount" => num(discount),
                "discountAppliedBeforeTax" => json!(false),
                "amountExcludingTax"
                | "amountIncludingTax"
                | "netAmount"
                | "netAmountIncludingTax" => num(net),
                "taxPercent" | "totalTaxAmount" | "invoiceDiscountAllocation" | "netTaxAmount" => {
                    json!(0)
                }
                // Receiving and invoicing orders is not simulated.
                "receivedQuantity" | "invoicedQuantity" => json!(0),
                // BC sets Qty. to Receive / to Invoice to the quantity when it is validated.
                "receiveQuantity" | "invoiceQuantity" => l
                    .fields
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| num(l.quantity())),
                _ if *access == Access::Writable => {
                    l.fields.get(name).cloned().unwrap_or_else(|| match ty {
                        Ty::Guid => json!(ZERO),
                        Ty::Decimal | Ty::Int => json!(0),
                        _ => json!(""),
                    })
                }
                _ => continue,
            };
            m.insert(name.into(), v);
        }
        m
    }

    // ---------- vendors ----------

    fn vendor_number_taken(&self, number: &str, except: Option<Uuid>) -> bool {
        self.vendors
            .iter()
            .any(|v| s(&v.fields, "number") == number && Some(v.meta.id) != except)
    }

    fn check_vendor_fields(&self, f: &Map<String, Value>) -> ApiResult<()> {
        let code = s(f, "currencyCode");
        if !code.is_empty() && code != LCY && !self.currencies.iter().any(|c| c.code == code) {
            return Err(ApiError::table_relation(
                "Currency Code",
                "Vendor",
                code,
                "Currency",
            ));
        }
        Ok(())
    }

    pub(crate) fn create_vendor(&mut self, body: &Value) -> ApiResult<Uuid> {
        let given = validate(&schema::VENDOR, body, &[])?;
        let mut fields = Map::new();
        for (name, ty, access) in schema::VENDOR.fields {
            if *access == Access::Writable {
                let default = match ty {
                    Ty::Guid => json!(ZERO),
                    Ty::Bool => json!(false),
                    Ty::Enum(_) => json!(" "),
                    _ => json!(""),
                };
                fields.insert((*name).into(), default);
            }
        }
        fields.extend(given);
        if s(&fields, "number").is_empty() {
            // Doubt: CRONUS's vendor number series format; any unused code will do.
            loop {
                let n = format!("V{:05}", self.next_vendor_no * 10);
                self.next_vendor_no += 1;
                if !self.vendor_number_taken(&n, None) {
                    fields.insert("number".into(), json!(n));
                    break;
                }
            }
        }
        let number = s(&fields, "number").to_owned();
        if self.vendor_number_taken(&number, None) {
            return Err(ApiError::bad(
                "Internal_EntityWithSameKeyExists",
                format!(
                    "The record in table Vendor already exists. Identification fields and values: No.='{number}'"
                ),
            ));
        }
        self.check_vendor_fields(&fields)?;
        let meta = Meta::new();
        let id = meta.id;
        self.vendors.push(Vendor { meta, fields });
        self.changed("vendors", id, ChangeType::Created);
        Ok(id)
    }

    pub(crate) fn patch_vendor(&mut self, id: Uuid, body: &Value) -> ApiResult<()> {
        let given = validate(&schema::VENDOR, body, &[])?;
        if let Some(n) = given.get("number").and_then(Value::as_str)
            && self.vendor_number_taken(n, Some(id))
        {
            return Err(ApiError::bad(
                "Internal_EntityWithSameKeyExists",
                format!(
                    "The record in table Vendor already exists. Identification fields and values: No.='{n}'"
                ),
            ));
        }
        let mut merged = self
            .vendors
            .iter()
            .find(|v| v.meta.id == id)
            .ok_or_else(ApiError::not_found)?
            .fields
            .clone();
        merged.extend(given);
        self.check_vendor_fields(&merged)?;
        let v = self
            .vendors
            .iter_mut()
            .find(|v| v.meta.id == id)
            .expect("checked");
        v.fields = merged;
        v.meta.bump();
        self.changed("vendors", id, ChangeType::Updated);
        Ok(())
    }

    pub(crate) fn delete_vendor(&mut self, id: Uuid) -> ApiResult<()> {
        let v = self.vendor(id).ok_or_else(ApiError::not_found)?;
        for kind in Kind::ALL {
            if self
                .docs(kind)
                .iter()
                .any(|i| i.vendor_id == id && !i.posted)
            {
                let what = match kind {
                    Kind::Invoice => "Invoices",
                    Kind::Order => "Orders",
                    Kind::CreditMemo => "Credit Memos",
                };
                return Err(ApiError::dialog(format!(
                    "You cannot delete Vendor {} because there are one or more outstanding purchase {what} for this vendor.",
                    s(&v.fields, "number")
                )));
            }
        }
        self.vendors.retain(|v| v.meta.id != id);
        self.changed("vendors", id, ChangeType::Deleted);
        Ok(())
    }

    // ---------- purchase invoices ----------

    /// Vendor named by `vendorId` and/or `vendorNumber` (A6.2 create validation; the order
    /// and credit memo pages say "buy-from vendor").
    fn resolve_vendor(&self, kind: Kind, f: &Map<String, Value>) -> ApiResult<Option<Uuid>> {
        let by_id = f.get("vendorId").and_then(Value::as_str);
        let by_no = f.get("vendorNumber").and_then(Value::as_str);
        let not_found = || {
            ApiError::dialog(match kind {
                Kind::Invoice => "The vendor cannot be found.",
                _ => "The buy-from vendor cannot be found.",
            })
        };
        let vendor = match (by_id, by_no) {
            (None, None) => return Ok(None),
            (Some(id), _) => self
                .vendors
                .iter()
                .find(|v| v.meta.id.to_string() == id)
                .ok_or_else(not_found)?,
            (None, Some(no)) => self
                .vendors
                .iter()
                .find(|v| s(&v.fields, "number") == no)
                .ok_or_else(not_found)?,
        };
        if let (Some(_), Some(no)) = (by_id, by_no)
            && s(&vendor.fields, "number") != no
        {
            // Doubt: invoice wording modelled on the documented currency mismatch message;
            // the order and credit memo texts are from their AL pages.
            return Err(ApiError::dialog(match kind {
                Kind::Invoice => "The vendor values do not match to a specific Vendor.",
                Kind::Order => "The buy-from vendor values do not match to a specific Vendor.",
                Kind::CreditMemo => "The buy-from vendor values do not match to a Vendor.",
            }));
        }
        if s(&vendor.fields, "blocked") == "All" {
            return Err(ApiError::dialog(format!(
                "You cannot create this type of document when Vendor {} is blocked with type All",
                s(&vendor.fields, "number")
            )));
        }
        Ok(Some(vendor.meta.id))
    }

    /// Normalises `currencyCode`/`currencyId` to a stored code ("" = LCY).
    fn resolve_currency(&self, f: &mut Map<String, Value>) -> ApiResult<()> {
        let code = f
            .get("currencyCode")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = f
            .get("currencyId")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        let by_code = match code.as_deref() {
            None => None,
            Some("") | Some(LCY) => Some(String::new()),
            Some(c) => match self.currencies.iter().find(|x| x.code == c) {
                Some(x) => Some(x.code.clone()),
                None => {
                    return Err(ApiError::table_relation(
                        "Currency Code",
                        "Purchase Header",
                        c,
                        "Currency",
                    ));
                }
            },
        };
        let by_id = match id {
            None => None,
            Some(i) if i.is_nil() => Some(String::new()),
            Some(i) => match self.currencies.iter().find(|x| x.id == i) {
                Some(x) => Some(x.code.clone()),
                None => {
                    return Err(ApiError::table_relation(
                        "Currency Id",
                        "Purchase Header",
                        &i.to_string(),
                        "Currency",
                    ));
                }
            },
        };
        if let (Some(a), Some(b)) = (&by_code, &by_id)
            && a != b
        {
            return Err(ApiError::dialog(
                "The currency values do not match to a specific Currency.",
            ));
        }
        f.remove("currencyId");
        if let Some(c) = by_code.or(by_id) {
            f.insert("currencyCode".into(), json!(c));
        }
        Ok(())
    }

    /// Builds (without storing) a line from a request body, validating it against the
    /// document's other lines. `flat` allows `documentId` (flat `purchaseInvoiceLines` POST).
    fn build_line(&self, kind: Kind, others: &[Line], body: &Value, flat: bool) -> ApiResult<Line> {
        // A line of a deep insert may carry its own `dimensionSetLines` (the line page's
        // `part(dimensionSetLines; "APIV2 - Dimension Set Lines")`, SubPageLink Parent Id =
        // the line's SystemId: ALAppExtensions APIV2PurchaseInvoiceLines.Page.al; nested
        // dimensions on lines in a deep insert: ALAppExtensions PR #11158). A line added on
        // its own takes dimensions only through its `dimensionSetLines` collection.
        let also: &[&str] = if flat {
            &["documentId"]
        } else {
            &["dimensionSetLines"]
        };
        let mut f = validate(kind.line(), body, also)?;
        f.remove("documentId");
        let dims = match f.remove("dimensionSetLines") {
            None => Vec::new(),
            Some(_) if self.refuse_nested_dims => return Err(ApiError::invalid_body()),
            Some(Value::Array(raw)) => self.nested_dims(&raw)?,
            Some(_) => return Err(ApiError::invalid_body()),
        };
        let taken: Vec<i64> = others.iter().map(Line::sequence).collect();
        self.complete_line(kind, &taken, &mut f)?;
        Ok(Line {
            meta: Meta::new(),
            fields: f,
            dims,
        })
    }

    /// The dimension set lines nested in a deep-inserted line: each names a dimension and a
    /// value (by code or id), each dimension once, as when posted one by one.
    fn nested_dims(&self, raw: &[Value]) -> ApiResult<Vec<DimLine>> {
        let mut out: Vec<DimLine> = Vec::new();
        for d in raw {
            let b = validate(&schema::DIMENSION_SET_LINE, d, &[])?;
            let (dim_id, value_id) = resolve_dim(&self.dimensions, &b)?;
            if out.iter().any(|x| x.dim_id == dim_id) {
                return Err(ApiError::bad(
                    "Internal_EntityWithSameKeyExists",
                    "The Dimension Set Entry Buffer already exists.",
                ));
            }
            out.push(DimLine {
                dim_id,
                value_id,
                version: 1,
            });
        }
        Ok(out)
    }

    /// Fills defaults and checks relations of a line's fields.
    fn complete_line(
        &self,
        kind: Kind,
        taken: &[i64],
        f: &mut Map<String, Value>,
    ) -> ApiResult<()> {
        match f.get("sequence").and_then(Value::as_i64) {
            Some(seq) => {
                if taken.contains(&seq) {
                    return Err(ApiError::bad(
                        "Internal_EntityWithSameKeyExists",
                        format!(
                            "The {} already exists. Identification fields and values: Line No.='{seq}'",
                            kind.line_table()
                        ),
                    ));
                }
            }
            None => {
                let next = taken.iter().copied().max().unwrap_or(0) + 10000;
                f.insert("sequence".into(), json!(next));
            }
        }
        let account_id = f
            .get("accountId")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        let object_no = f
            .get("lineObjectNumber")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        // Doubt: the API's default type when none is given; "Account" is implied by an
        // accountId, an object number alone means an Item (BC's default line type).
        let line_type = match f.get("lineType").and_then(Value::as_str) {
            Some(t) => t.to_owned(),
            None if account_id.is_some_and(|a| !a.is_nil()) => "Account".into(),
            None if !object_no.is_empty() => "Item".into(),
            None => "Comment".into(),
        };
        f.insert("lineType".into(), json!(line_type));
        match line_type.as_str() {
            "Account" => {
                let account = match account_id.filter(|a| !a.is_nil()) {
                    Some(a) => self
                        .accounts
                        .iter()
                        .find(|x| x.meta.id == a)
                        .ok_or_else(|| {
                            ApiError::table_relation(
                                "No.",
                                "Purchase Line",
                                &a.to_string(),
                                "G/L Account",
                            )
                        })?,
                    None if object_no.is_empty() => {
                        f.insert("accountId".into(), json!(ZERO));
                        return self.finish_line(kind, f, None);
                    }
                    None => self
                        .accounts
                        .iter()
                        .find(|x| x.number == object_no)
                        .ok_or_else(|| {
                            ApiError::table_relation(
                                "No.",
                                "Purchase Line",
                                &object_no,
                                "G/L Account",
                            )
                        })?,
                };
                if !object_no.is_empty() && object_no != account.number {
                    return Err(ApiError::dialog(
                        "The account values do not match to a specific Account.",
                    ));
                }
                f.insert("lineObjectNumber".into(), json!(account.number));
                f.insert("accountId".into(), json!(account.meta.id));
                let name = account.name.clone();
                self.finish_line(kind, f, Some(name))
            }
            "Comment" => {
                if !object_no.is_empty() {
                    return Err(ApiError::dialog(
                        "A comment line cannot have a value in the No. field.",
                    ));
                }
                self.finish_line(kind, f, None)
            }
            other => {
                // Items, resources, fixed assets and charges are not simulated: any number is unknown.
                if !object_no.is_empty() {
                    let table = match other {
                        "Item" => "Item",
                        "Resource" => "Resource",
                        "Fixed Asset" => "Fixed Asset",
                        _ => "Item Charge",
                    };
                    return Err(ApiError::table_relation(
                        "No.",
                        "Purchase Line",
                        &object_no,
                        table,
                    ));
                }
                self.finish_line(kind, f, None)
            }
        }
    }

    fn finish_line(
        &self,
        kind: Kind,
        f: &mut Map<String, Value>,
        account_name: Option<String>,
    ) -> ApiResult<()> {
        // BC fills the description from the account when the client gives none.
        if s(f, "description").is_empty()
            && let Some(n) = account_name
        {
            f.insert("description".into(), json!(n));
        }
        // Quantities and unit costs carry 5 decimals in BC (rounding precision 0.00001).
        for k in ["quantity", kind.cost_field()] {
            let v = d(f, k).round_dp_with_strategy(5, RoundingStrategy::MidpointAwayFromZero);
            f.insert(k.into(), num(v));
        }
        Ok(())
    }

    pub(crate) fn create_doc(&mut self, kind: Kind, body: &Value) -> ApiResult<Uuid> {
        let mut f = validate(kind.header(), body, &[kind.lines_name()])?;
        let raw_lines = match f.remove(kind.lines_name()) {
            None => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(ApiError::invalid_body()),
        };
        let vendor_id = self.resolve_vendor(kind, &f)?.ok_or_else(|| {
            ApiError::dialog(match kind {
                Kind::Invoice => "A \"vendorNumber\" or a \"vendorID\" must be provided.",
                _ => "A \"vendorNumber\" or a \"vendorId\" must be provided.",
            })
        })?;
        if kind == Kind::CreditMemo {
            self.resolve_invoice_link(&mut f)?;
        }
        let vendor = self.vendor(vendor_id).expect("resolved");
        if !f.contains_key("currencyCode") && !f.contains_key("currencyId") {
            f.insert(
                "currencyCode".into(),
                json!(s(&vendor.fields, "currencyCode")),
            );
        }
        self.resolve_currency(&mut f)?;
        let today = super::values::date(Utc::now().date_naive());
        let mut fields = Map::new();
        for (k, v) in [
            ("postingDate", today.clone()),
            (kind.date_field(), today),
            ("shipToName", self.company_name.clone()),
            (
                "buyFromAddressLine1",
                s(&vendor.fields, "addressLine1").into(),
            ),
            (
                "buyFromAddressLine2",
                s(&vendor.fields, "addressLine2").into(),
            ),
            ("buyFromCity", s(&vendor.fields, "city").into()),
            ("buyFromCountry", s(&vendor.fields, "country").into()),
            ("buyFromState", s(&vendor.fields, "state").into()),
            ("buyFromPostCode", s(&vendor.fields, "postalCode").into()),
        ] {
            if kind.header().field(k).is_some() {
                fields.insert(k.into(), json!(v));
            }
        }
        if let Some(k) = kind.ext_field() {
            fields.insert(k.into(), json!(""));
        }
        fields.extend(f);
        if kind.header().field("dueDate").is_some() && !fields.contains_key("dueDate") {
            fields.insert("dueDate".into(), fields[kind.date_field()].clone());
        }
        for k in [
            "vendorId",
            "vendorNumber",
            "payToVendorId",
            "payToVendorNumber",
        ] {
            fields.remove(k);
        }
        // Deep insert: every line must be valid or nothing is created (atomic).
        let mut lines: Vec<Line> = Vec::new();
        for raw in &raw_lines {
            let line = self.build_line(kind, &lines, raw, false)?;
            lines.push(line);
        }
        let meta = Meta::new();
        let id = meta.id;
        // `number` is Editable = false and comes from the kind's number series.
        let counter = match kind {
            Kind::Invoice => &mut self.next_draft_no,
            Kind::Order => &mut self.next_order_no,
            Kind::CreditMemo => &mut self.next_cm_draft_no,
        };
        let number = counter.to_string();
        *counter += 1;
        self.docs_mut(kind).push(Doc {
            kind,
            meta,
            number,
            posted: false,
            paid: false,
            applied: Decimal::ZERO,
            post_count: 0,
            vendor_id,
            fields,
            lines,
            dims: Vec::new(),
        });
        self.changed(kind.set_name(), id, ChangeType::Created);
        Ok(id)
    }

    pub(crate) fn patch_doc(&mut self, kind: Kind, id: Uuid, body: &Value) -> ApiResult<()> {
        let mut f = validate(kind.header(), body, &[])?;
        self.doc(kind, id)?.ensure_draft()?;
        if kind == Kind::CreditMemo {
            self.resolve_invoice_link(&mut f)?;
        }
        let vendor = self.resolve_vendor(kind, &f)?;
        self.resolve_currency(&mut f)?;
        for k in [
            "vendorId",
            "vendorNumber",
            "payToVendorId",
            "payToVendorNumber",
        ] {
            f.remove(k);
        }
        let doc = self.doc_mut(kind, id)?;
        if let Some(v) = vendor {
            doc.vendor_id = v;
        }
        doc.fields.extend(f);
        doc.meta.bump();
        self.changed(kind.set_name(), id, ChangeType::Updated);
        Ok(())
    }

    pub(crate) fn delete_doc(&mut self, kind: Kind, id: Uuid) -> ApiResult<()> {
        self.doc(kind, id)?.ensure_draft()?;
        self.docs_mut(kind).retain(|i| i.meta.id != id);
        self.changed(kind.set_name(), id, ChangeType::Deleted);
        Ok(())
    }

    pub(crate) fn add_line(
        &mut self,
        kind: Kind,
        doc_id: Uuid,
        body: &Value,
        flat: bool,
    ) -> ApiResult<Uuid> {
        let doc = self.doc(kind, doc_id)?;
        doc.ensure_draft()?;
        let line = self.build_line(kind, &doc.lines, body, flat)?;
        let line_id = line.meta.id;
        let doc = self.doc_mut(kind, doc_id)?;
        doc.lines.push(line);
        doc.lines.sort_by_key(Line::sequence);
        // Totals live on the header, so adding a line modifies it too (and A8: a line
        // change notifies the header's subscription).
        doc.meta.bump();
        self.changed(kind.set_name(), doc_id, ChangeType::Updated);
        Ok(line_id)
    }

    pub(crate) fn patch_line(
        &mut self,
        kind: Kind,
        doc_id: Uuid,
        line_id: Uuid,
        body: &Value,
    ) -> ApiResult<()> {
        let given = validate(kind.line(), body, &[])?;
        let doc = self.doc(kind, doc_id)?;
        doc.ensure_draft()?;
        let line = doc
            .lines
            .iter()
            .find(|l| l.meta.id == line_id)
            .ok_or_else(ApiError::not_found)?;
        let mut merged = line.fields.clone();
        let relinks = ["lineType", "lineObjectNumber", "accountId"]
            .iter()
            .any(|k| given.contains_key(*k));
        if relinks {
            // A new No. brings a new description and account, as in BC's OnValidate.
            for k in ["description", "accountId", "lineObjectNumber"] {
                merged.remove(k);
            }
        }
        let keeps_sequence = given.get("sequence").is_none();
        merged.extend(given);
        if keeps_sequence {
            merged.remove("sequence");
            merged.insert("sequence".into(), json!(line.sequence()));
        }
        let taken: Vec<i64> = doc
            .lines
            .iter()
            .filter(|l| l.meta.id != line_id)
            .map(Line::sequence)
            .collect();
        self.complete_line(kind, &taken, &mut merged)?;
        let doc = self.doc_mut(kind, doc_id)?;
        let line = doc
            .lines
            .iter_mut()
            .find(|l| l.meta.id == line_id)
            .expect("checked");
        line.fields = merged;
        line.meta.bump();
        doc.lines.sort_by_key(Line::sequence);
        doc.meta.bump();
        self.changed(kind.set_name(), doc_id, ChangeType::Updated);
        Ok(())
    }

    pub(crate) fn delete_line(&mut self, kind: Kind, doc_id: Uuid, line_id: Uuid) -> ApiResult<()> {
        let doc = self.doc_mut(kind, doc_id)?;
        doc.ensure_draft()?;
        let before = doc.lines.len();
        doc.lines.retain(|l| l.meta.id != line_id);
        if doc.lines.len() == before {
            return Err(ApiError::not_found());
        }
        doc.meta.bump();
        self.changed(kind.set_name(), doc_id, ChangeType::Updated);
        Ok(())
    }

    /// `Microsoft.NAV.post` on invoices and credit memos (A6.2 "Bound action post",
    /// gotchas 3–4): renumbers from the posted series, keeps `id`, Draft → Open.
    pub(crate) fn post_doc(&mut self, kind: Kind, id: Uuid) -> ApiResult<()> {
        let doc = self.doc(kind, id)?;
        if doc.posted {
            // Texts from the AL pages (`GetDraftInvoice`, DraftCreditMemoActionErr).
            return Err(ApiError::dialog(format!(
                "The action can be applied to a draft {} only.",
                kind.noun()
            )));
        }
        let posting: Vec<&Line> = doc.lines.iter().filter(|l| l.posts()).collect();
        if posting.iter().any(|l| l.quantity().is_zero()) {
            return Err(ApiError::dialog(
                "One or more document lines with a value in the No. field do not have a quantity specified.",
            ));
        }
        if posting.is_empty() {
            return Err(ApiError::dialog("There is nothing to post."));
        }
        let vendor = self
            .vendor(doc.vendor_id)
            .ok_or_else(|| ApiError::dialog("The vendor cannot be found."))?;
        let vendor_no = s(&vendor.fields, "number");
        if s(&vendor.fields, "blocked") == "All" {
            return Err(ApiError::dialog(format!(
                "You cannot post this type of document when Vendor {vendor_no} is blocked with type All"
            )));
        }
        // CRONUS has "Ext. Doc. No. Mandatory" on: the vendor's document number must be set
        // and unique per vendor among posted documents of the kind.
        let ext = doc.vendor_invoice_number();
        let (field_caption, doc_type, title) = match kind {
            Kind::CreditMemo => ("Vendor Cr. Memo No.", "Credit Memo", "Purchase Credit Memo"),
            _ => ("Vendor Invoice No.", "Invoice", "Purchase Invoice"),
        };
        if ext.is_empty() {
            return Err(ApiError::bad(
                "Application_FieldValidationException",
                format!(
                    "{field_caption} must have a value in Purchase Header: Document Type={doc_type}, No.={}. It cannot be zero or empty.",
                    doc.number
                ),
            ));
        }
        if self
            .docs(kind)
            .iter()
            .any(|o| o.posted && o.vendor_id == doc.vendor_id && o.vendor_invoice_number() == ext)
        {
            return Err(ApiError::dialog(format!(
                "{title} {ext} already exists for this vendor."
            )));
        }
        if doc.total() < Decimal::ZERO {
            return Err(ApiError::dialog(format!(
                "The total amount for the {} must be 0 or greater.",
                kind.noun()
            )));
        }
        let applies_to = match kind {
            Kind::CreditMemo => self.check_applies_to(doc)?,
            _ => None,
        };
        let memo_total = doc.total();
        let counter = match kind {
            Kind::CreditMemo => &mut self.next_cm_posted_no,
            _ => &mut self.next_posted_no,
        };
        let number = counter.to_string();
        *counter += 1;
        let doc = self.doc_mut(kind, id)?;
        doc.number = number;
        doc.posted = true;
        doc.post_count += 1;
        doc.meta.bump();
        self.changed(kind.set_name(), id, ChangeType::Updated);
        if let Some(inv_id) = applies_to {
            let inv = self.doc_mut(Kind::Invoice, inv_id)?;
            inv.applied += memo_total;
            if inv.applied >= inv.total() {
                inv.paid = true;
            }
            inv.meta.bump();
            self.changed(Kind::Invoice.set_name(), inv_id, ChangeType::Updated);
        }
        Ok(())
    }

    pub(crate) fn mark_paid(&mut self, id: Uuid) -> ApiResult<()> {
        let inv = self.doc_mut(Kind::Invoice, id)?;
        if !inv.posted {
            return Err(ApiError::dialog("Only a posted invoice can be paid."));
        }
        inv.paid = true;
        inv.meta.bump();
        self.changed(Kind::Invoice.set_name(), id, ChangeType::Updated);
        Ok(())
    }

    // ---------- dimension set lines ----------

    fn dims_of(&mut self, parent: Parent) -> ApiResult<&mut Vec<DimLine>> {
        match parent {
            Parent::Doc(k, i) => {
                let doc = self.doc_mut(k, i)?;
                doc.ensure_draft()?;
                Ok(&mut doc.dims)
            }
            Parent::Line(k, i, l) => {
                let doc = self.doc_mut(k, i)?;
                doc.ensure_draft()?;
                let line = doc
                    .lines
                    .iter_mut()
                    .find(|x| x.meta.id == l)
                    .ok_or_else(ApiError::not_found)?;
                Ok(&mut line.dims)
            }
        }
    }

    pub(crate) fn dims_ref(&self, parent: Parent) -> ApiResult<&Vec<DimLine>> {
        match parent {
            Parent::Doc(k, i) => Ok(&self.doc(k, i)?.dims),
            Parent::Line(k, i, l) => Ok(&self
                .doc(k, i)?
                .lines
                .iter()
                .find(|x| x.meta.id == l)
                .ok_or_else(ApiError::not_found)?
                .dims),
        }
    }

    fn dim_body(&self, parent: Parent, body: &Value) -> ApiResult<(Uuid, Uuid)> {
        let f = validate(&schema::DIMENSION_SET_LINE, body, &[])?;
        if let Some(p) = f.get("parentId").and_then(Value::as_str)
            && p != parent.id().to_string()
        {
            return Err(ApiError::dialog(
                "The parentId does not match the parent in the URL.",
            ));
        }
        resolve_dim(&self.dimensions, &f)
    }

    pub(crate) fn add_dim_line(&mut self, parent: Parent, body: &Value) -> ApiResult<Uuid> {
        let (dim_id, value_id) = self.dim_body(parent, body)?;
        let code = self
            .dimensions
            .iter()
            .find(|d| d.meta.id == dim_id)
            .map(|d| d.code.clone())
            .unwrap_or_default();
        let dims = self.dims_of(parent)?;
        if dims.iter().any(|x| x.dim_id == dim_id) {
            return Err(ApiError::bad(
                "Internal_EntityWithSameKeyExists",
                format!(
                    "The Dimension Set Entry Buffer already exists. Identification fields and values: Dimension Code='{code}'"
                ),
            ));
        }
        dims.push(DimLine {
            dim_id,
            value_id,
            version: 1,
        });
        self.touch(parent);
        Ok(dim_id)
    }

    pub(crate) fn patch_dim_line(
        &mut self,
        parent: Parent,
        dim_id: Uuid,
        body: &Value,
    ) -> ApiResult<()> {
        let mut b = body
            .as_object()
            .cloned()
            .ok_or_else(ApiError::invalid_body)?;
        b.entry("id").or_insert(json!(dim_id));
        let (new_dim, value_id) = self.dim_body(parent, &Value::Object(b))?;
        if new_dim != dim_id {
            return Err(ApiError::dialog(
                "The dimension of a dimension set line cannot be changed.",
            ));
        }
        let dims = self.dims_of(parent)?;
        let dl = dims
            .iter_mut()
            .find(|x| x.dim_id == dim_id)
            .ok_or_else(ApiError::not_found)?;
        dl.value_id = value_id;
        dl.version += 1;
        self.touch(parent);
        Ok(())
    }

    pub(crate) fn delete_dim_line(&mut self, parent: Parent, dim_id: Uuid) -> ApiResult<()> {
        let dims = self.dims_of(parent)?;
        let before = dims.len();
        dims.retain(|x| x.dim_id != dim_id);
        if dims.len() == before {
            return Err(ApiError::not_found());
        }
        self.touch(parent);
        Ok(())
    }

    /// A dimension change rewrites the parent's Dimension Set ID: its ETag changes. A8: a
    /// line change notifies the header's subscription.
    fn touch(&mut self, parent: Parent) {
        let (kind, doc_id) = match parent {
            Parent::Doc(k, i) | Parent::Line(k, i, _) => (k, i),
        };
        if let Ok(doc) = self.doc_mut(kind, doc_id) {
            match parent {
                Parent::Doc(..) => doc.meta.bump(),
                Parent::Line(_, _, l) => {
                    if let Some(line) = doc.lines.iter_mut().find(|x| x.meta.id == l) {
                        line.meta.bump();
                    }
                }
            }
            self.changed(kind.set_name(), doc_id, ChangeType::Updated);
        }
    }
}

impl Store {
    /// A credit memo's link to the posted invoice it is applied to (`invoiceId` and/or
    /// `invoiceNumber`, ALAppExtensions `APIV2PurchaseCreditMemos.Page.al`): resolved to the
    /// invoice, and both fields set as BC shows them. The blank GUID / empty number unlink.
    /// BC's texts: 'The "invoiceId" does not match to an Invoice.', 'The "invoiceId" and
    /// "invoiceNumber" do not match to a specific Invoice.'. Doubt: BC takes an
    /// `invoiceNumber` alone unchecked until posting; this refuses one that names no posted
    /// invoice at once (the stricter reading).
    fn resolve_invoice_link(&self, f: &mut Map<String, Value>) -> ApiResult<()> {
        let by_id = match f.get("invoiceId").and_then(Value::as_str) {
            None => None,
            Some(v) => match Uuid::parse_str(v) {
                Ok(u) if u.is_nil() => Some(None),
                Ok(u) => Some(Some(u)),
                Err(_) => return Err(ApiError::invalid_body()),
            },
        };
        let by_number = f
            .get("invoiceNumber")
            .and_then(Value::as_str)
            .map(str::to_string);
        let no_match = || ApiError::dialog("The \"invoiceId\" does not match to an Invoice.");
        let mismatch = || {
            ApiError::dialog(
                "The \"invoiceId\" and \"invoiceNumber\" do not match to a specific Invoice.",
            )
        };
        let invoice = match (by_id, by_number.as_deref()) {
            (None, None) => return Ok(()),
            (Some(None), _) | (None, Some("")) => None,
            (Some(Some(id)), number) => {
                let inv = self
                    .invoices
                    .iter()
                    .find(|i| i.meta.id == id && i.posted)
                    .ok_or_else(no_match)?;
                if number.is_some_and(|n| !n.is_empty() && n != inv.number) {
                    return Err(mismatch());
                }
                Some(inv)
            }
            (None, Some(number)) => Some(
                self.invoices
                    .iter()
                    .find(|i| i.posted && i.number == number)
                    .ok_or_else(mismatch)?,
            ),
        };
        let (id, number) = match invoice {
            Some(i) => (i.meta.id, i.number.clone()),
            None => (ZERO, String::new()),
        };
        f.insert("invoiceId".into(), json!(id.to_string()));
        f.insert("invoiceNumber".into(), json!(number));
        Ok(())
    }

    /// Posting a credit memo applied to an invoice applies its amount to the invoice's open
    /// entry; an invoice whose entry it closes shows "Paid" (Purch. Inv. Aggregator: Closed →
    /// "Paid"). Doubt: BC's exact texts when the invoice is another vendor's or already closed
    /// are not documented; both are refused here (the stricter reading).
    fn check_applies_to(&self, memo: &Doc) -> ApiResult<Option<Uuid>> {
        let Some(id) = memo
            .fields
            .get("invoiceId")
            .and_then(Value::as_str)
            .and_then(|v| Uuid::parse_str(v).ok())
            .filter(|u| !u.is_nil())
        else {
            return Ok(None);
        };
        let inv = self.doc(Kind::Invoice, id)?;
        if inv.vendor_id != memo.vendor_id {
            return Err(ApiError::dialog(format!(
                "Purchase Invoice {} is not an open entry of the credit memo's vendor.",
                inv.number
            )));
        }
        if inv.paid {
            return Err(ApiError::dialog(format!(
                "Purchase Invoice {} is closed: there is nothing open to apply the credit memo to.",
                inv.number
            )));
        }
        Ok(Some(id))
    }
}

/// The record a dimension set line hangs off.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Parent {
    Doc(Kind, Uuid),
    /// (kind, document id, line id)
    Line(Kind, Uuid, Uuid),
}

impl Parent {
    pub(crate) fn id(&self) -> Uuid {
        match self {
            Parent::Doc(_, i) => *i,
            Parent::Line(_, _, l) => *l,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Parent::Doc(k, _) => k.parent_types().0,
            Parent::Line(k, ..) => k.parent_types().1,
        }
    }
}

/// A dimension set line has no record of its own; its ETag derives from parent, dimension and version.
pub(crate) fn dim_line_etag_of(parent_id: Uuid, dl: &DimLine) -> String {
    etag(
        Uuid::from_u128(dl.dim_id.as_u128() ^ parent_id.as_u128()),
        dl.version,
    )
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! object literal"),
    }
}
