//! Business Central records and the business rules the API enforces on them
//! (business-central.md A6.1–A6.6 and gotchas 2–4).

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::errors::{ApiError, ApiResult};
use super::schema::{self, Access, Entity, Ty};
use super::values::{coerce, datetime, decimal_of, etag, num};

/// Identity, version and modification time shared by every record.
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

pub(crate) struct Vendor {
    pub meta: Meta,
    /// Writable fields, normalised (see `schema::VENDOR`).
    pub fields: Map<String, Value>,
}

pub(crate) struct Account {
    pub meta: Meta,
    pub number: String,
    pub name: String,
}

pub(crate) struct DimValue {
    pub meta: Meta,
    pub code: String,
    pub name: String,
}

pub(crate) struct Dimension {
    pub meta: Meta,
    pub code: String,
    pub name: String,
    pub values: Vec<DimValue>,
}

pub(crate) struct Currency {
    pub id: Uuid,
    pub code: String,
}

/// One dimension on a document or line; keyed by the dimension (A6.6: `id` = dimension id).
pub(crate) struct DimLine {
    pub dim_id: Uuid,
    pub value_id: Uuid,
    pub version: u64,
}

pub(crate) struct Line {
    pub meta: Meta,
    pub fields: Map<String, Value>,
    pub dims: Vec<DimLine>,
}

pub(crate) struct Invoice {
    pub meta: Meta,
    pub number: String,
    pub posted: bool,
    pub paid: bool,
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
    pub(crate) fn unit_cost(&self) -> Decimal {
        d(&self.fields, "unitCost")
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

impl Invoice {
    pub(crate) fn status(&self) -> &'static str {
        match (self.posted, self.paid) {
            (false, _) => "Draft",
            (true, false) => "Open",
            (true, true) => "Paid",
        }
    }

    pub(crate) fn total(&self) -> Decimal {
        self.lines.iter().map(|l| l.amounts().1).sum::<Decimal>()
            - d(&self.fields, "discountAmount")
    }

    pub(crate) fn vendor_invoice_number(&self) -> &str {
        s(&self.fields, "vendorInvoiceNumber")
    }

    /// Doubt: the exact text BC uses for edits of a posted invoice is not in the fact sheet.
    fn ensure_draft(&self) -> ApiResult<()> {
        if self.posted {
            return Err(ApiError::dialog(
                "The invoice has been posted and can no longer be modified.",
            ));
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

pub(crate) struct Store {
    pub company_id: Uuid,
    pub company_name: String,
    pub vendors: Vec<Vendor>,
    pub accounts: Vec<Account>,
    pub dimensions: Vec<Dimension>,
    pub currencies: Vec<Currency>,
    pub invoices: Vec<Invoice>,
    next_draft_no: u64,
    next_posted_no: u64,
    next_vendor_no: u64,
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
            next_draft_no: 1001,
            next_posted_no: 108001,
            next_vendor_no: 10,
        }
    }

    // ---------- lookups ----------

    pub(crate) fn vendor(&self, id: Uuid) -> Option<&Vendor> {
        self.vendors.iter().find(|v| v.meta.id == id)
    }

    pub(crate) fn invoice(&self, id: Uuid) -> ApiResult<&Invoice> {
        self.invoices
            .iter()
            .find(|i| i.meta.id == id)
            .ok_or_else(ApiError::not_found)
    }

    fn invoice_mut(&mut self, id: Uuid) -> ApiResult<&mut Invoice> {
        self.invoices
            .iter_mut()
            .find(|i| i.meta.id == id)
            .ok_or_else(ApiError::not_found)
    }

    /// The invoice holding a line, by the line id alone (flat `purchaseInvoiceLines(id)`).
    pub(crate) fn invoice_of_line(&self, line_id: Uuid) -> ApiResult<Uuid> {
        self.invoices
            .iter()
            .find(|i| i.lines.iter().any(|l| l.meta.id == line_id))
            .map(|i| i.meta.id)
            .ok_or_else(ApiError::not_found)
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
        let balance: Decimal = self
            .invoices
            .iter()
            .filter(|i| i.vendor_id == v.meta.id && i.posted && !i.paid)
            .map(Invoice::total)
            .sum();
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

    /// The fields of [`Self::render_invoice`] that filters commonly use, rendered the same way,
    /// so a filter on them can pick rows before the (much dearer) full rendering.
    pub(crate) fn invoice_key_row(&self, inv: &Invoice) -> Map<String, Value> {
        let vendor_number = self
            .vendor(inv.vendor_id)
            .map(|v| s(&v.fields, "number").to_owned())
            .unwrap_or_default();
        let mut m = Map::new();
        m.insert("id".into(), json!(inv.meta.id));
        m.insert("number".into(), json!(inv.number));
        m.insert(
            "vendorInvoiceNumber".into(),
            inv.fields
                .get("vendorInvoiceNumber")
                .cloned()
                .unwrap_or(json!("")),
        );
        m.insert("vendorNumber".into(), json!(vendor_number));
        m.insert("status".into(), json!(inv.status()));
        m.insert(
            "lastModifiedDateTime".into(),
            json!(datetime(inv.meta.modified)),
        );
        m
    }

    pub(crate) fn render_invoice(&self, inv: &Invoice) -> Map<String, Value> {
        let vendor = self.vendor(inv.vendor_id);
        let vf = |k: &str| {
            vendor
                .map(|v| s(&v.fields, k).to_owned())
                .unwrap_or_default()
        };
        let f = |k: &str| inv.fields.get(k).cloned().unwrap_or(json!(""));
        let currency = s(&inv.fields, "currencyCode");
        let currency_id = self
            .currencies
            .iter()
            .find(|c| c.code == currency)
            .map(|c| c.id)
            .unwrap_or(ZERO);
        let total = inv.total();
        let mut m = Map::new();
        m.insert("@odata.etag".into(), json!(inv.meta.etag()));
        m.insert("id".into(), json!(inv.meta.id));
        m.insert("number".into(), json!(inv.number));
        for k in [
            "postingDate",
            "invoiceDate",
            "dueDate",
            "vendorInvoiceNumber",
        ] {
            m.insert(k.into(), f(k));
        }
        m.insert("vendorId".into(), json!(inv.vendor_id));
        m.insert("vendorNumber".into(), json!(vf("number")));
        m.insert("vendorName".into(), json!(vf("displayName")));
        m.insert("payToName".into(), json!(vf("displayName")));
        m.insert("payToContact".into(), json!(""));
        m.insert("payToVendorId".into(), json!(inv.vendor_id));
        m.insert("payToVendorNumber".into(), json!(vf("number")));
        for k in [
            "shipToName",
            "shipToContact",
            "buyFromAddressLine1",
            "buyFromAddressLine2",
            "buyFromCity",
            "buyFromCountry",
            "buyFromState",
            "buyFromPostCode",
            "shipToAddressLine1",
            "shipToAddressLine2",
            "shipToCity",
            "shipToCountry",
            "shipToState",
            "shipToPostCode",
        ] {
            m.insert(k.into(), f(k));
        }
        m.insert("payToAddressLine1".into(), json!(vf("addressLine1")));
        m.insert("payToAddressLine2".into(), json!(vf("addressLine2")));
        m.insert("payToCity".into(), json!(vf("city")));
        m.insert("payToCountry".into(), json!(vf("country")));
        m.insert("payToState".into(), json!(vf("state")));
        m.insert("payToPostCode".into(), json!(vf("postalCode")));
        m.insert("shortcutDimension1Code".into(), f("shortcutDimension1Code"));
        m.insert("shortcutDimension2Code".into(), f("shortcutDimension2Code"));
        m.insert("currencyId".into(), json!(currency_id));
        // A6.1 note: blank currency = LCY, shown as the LCY code.
        m.insert(
            "currencyCode".into(),
            json!(if currency.is_empty() { LCY } else { currency }),
        );
        m.insert("orderId".into(), json!(ZERO));
        m.insert("orderNumber".into(), json!(""));
        m.insert("purchaser".into(), f("purchaser"));
        m.insert(
            "pricesIncludeTax".into(),
            inv.fields
                .get("pricesIncludeTax")
                .cloned()
                .unwrap_or(json!(false)),
        );
        m.insert(
            "discountAmount".into(),
            num(d(&inv.fields, "discountAmount")),
        );
        m.insert("discountAppliedBeforeTax".into(), json!(false));
        m.insert("totalAmountExcludingTax".into(), num(total));
        m.insert("totalTaxAmount".into(), num(Decimal::ZERO));
        m.insert("totalAmountIncludingTax".into(), num(total));
        m.insert("status".into(), json!(inv.status()));
        m.insert(
            "lastModifiedDateTime".into(),
            json!(datetime(inv.meta.modified)),
        );
        m
    }

    pub(crate) fn render_line(&self, inv: &Invoice, l: &Line) -> Map<String, Value> {
        let (discount, net) = l.amounts();
        let mut m = Map::new();
        m.insert("@odata.etag".into(), json!(l.meta.etag()));
        m.insert("id".into(), json!(l.meta.id));
        m.insert("documentId".into(), json!(inv.meta.id));
        for (name, ty, access) in schema::LINE.fields {
            if *access == Access::Writable {
                let default = match ty {
                    Ty::Guid => json!(ZERO),
                    Ty::Decimal => json!(0),
                    Ty::Int => json!(0),
                    _ => json!(""),
                };
                m.insert(
                    (*name).into(),
                    l.fields.get(*name).cloned().unwrap_or(default),
                );
            }
        }
        m.insert("discountAmount".into(), num(discount));
        m.insert("discountAppliedBeforeTax".into(), json!(false));
        m.insert("amountExcludingTax".into(), num(net));
        m.insert("taxPercent".into(), json!(0));
        m.insert("totalTaxAmount".into(), json!(0));
        m.insert("amountIncludingTax".into(), num(net));
        m.insert("invoiceDiscountAllocation".into(), json!(0));
        m.insert("netAmount".into(), num(net));
        m.insert("netTaxAmount".into(), json!(0));
        m.insert("netAmountIncludingTax".into(), num(net));
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
        Ok(())
    }

    pub(crate) fn delete_vendor(&mut self, id: Uuid) -> ApiResult<()> {
        let v = self.vendor(id).ok_or_else(ApiError::not_found)?;
        if self.invoices.iter().any(|i| i.vendor_id == id && !i.posted) {
            return Err(ApiError::dialog(format!(
                "You cannot delete Vendor {} because there are one or more outstanding purchase Invoices for this vendor.",
                s(&v.fields, "number")
            )));
        }
        self.vendors.retain(|v| v.meta.id != id);
        Ok(())
    }

    // ---------- purchase invoices ----------

    /// Vendor named by `vendorId` and/or `vendorNumber` (A6.2 create validation).
    fn resolve_vendor(&self, f: &Map<String, Value>) -> ApiResult<Option<Uuid>> {
        let by_id = f.get("vendorId").and_then(Value::as_str);
        let by_no = f.get("vendorNumber").and_then(Value::as_str);
        let not_found = || ApiError::dialog("The vendor cannot be found.");
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
            // Doubt: wording modelled on the documented currency mismatch message.
            return Err(ApiError::dialog(
                "The vendor values do not match to a specific Vendor.",
            ));
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
    /// invoice's other lines. `flat` allows `documentId` (flat `purchaseInvoiceLines` POST).
    fn build_line(&self, others: &[Line], body: &Value, flat: bool) -> ApiResult<Line> {
        let also: &[&str] = if flat { &["documentId"] } else { &[] };
        let mut f = validate(&schema::LINE, body, also)?;
        f.remove("documentId");
        let taken: Vec<i64> = others.iter().map(Line::sequence).collect();
        self.complete_line(&taken, &mut f)?;
        Ok(Line {
            meta: Meta::new(),
            fields: f,
            dims: Vec::new(),
        })
    }

    /// Fills defaults and checks relations of a line's fields.
    fn complete_line(&self, taken: &[i64], f: &mut Map<String, Value>) -> ApiResult<()> {
        match f.get("sequence").and_then(Value::as_i64) {
            Some(seq) => {
                if taken.contains(&seq) {
                    return Err(ApiError::bad(
                        "Internal_EntityWithSameKeyExists",
                        format!(
                            "The Purch. Inv. Line Aggregate already exists. Identification fields and values: Line No.='{seq}'"
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
                        return self.finish_line(f, None);
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
                self.finish_line(f, Some(name))
            }
            "Comment" => {
                if !object_no.is_empty() {
                    return Err(ApiError::dialog(
                        "A comment line cannot have a value in the No. field.",
                    ));
                }
                self.finish_line(f, None)
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
                self.finish_line(f, None)
            }
        }
    }

    fn finish_line(
        &self,
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
        for k in ["quantity", "unitCost"] {
            let v = d(f, k).round_dp_with_strategy(5, RoundingStrategy::MidpointAwayFromZero);
            f.insert(k.into(), num(v));
        }
        Ok(())
    }

    pub(crate) fn create_invoice(&mut self, body: &Value) -> ApiResult<Uuid> {
        let mut f = validate(&schema::INVOICE, body, &["purchaseInvoiceLines"])?;
        let raw_lines = match f.remove("purchaseInvoiceLines") {
            None => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(ApiError::invalid_body()),
        };
        let vendor_id = self.resolve_vendor(&f)?.ok_or_else(|| {
            ApiError::dialog("A \"vendorNumber\" or a \"vendorID\" must be provided.")
        })?;
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
            ("invoiceDate", today),
            ("vendorInvoiceNumber", String::new()),
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
            fields.insert(k.into(), json!(v));
        }
        fields.extend(f);
        if !fields.contains_key("dueDate") {
            fields.insert("dueDate".into(), fields["invoiceDate"].clone());
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
            let line = self.build_line(&lines, raw, false)?;
            lines.push(line);
        }
        let meta = Meta::new();
        let id = meta.id;
        let number = self.next_draft_no.to_string();
        self.next_draft_no += 1;
        self.invoices.push(Invoice {
            meta,
            number,
            posted: false,
            paid: false,
            post_count: 0,
            vendor_id,
            fields,
            lines,
            dims: Vec::new(),
        });
        Ok(id)
    }

    pub(crate) fn patch_invoice(&mut self, id: Uuid, body: &Value) -> ApiResult<()> {
        let mut f = validate(&schema::INVOICE, body, &[])?;
        self.invoice(id)?.ensure_draft()?;
        let vendor = self.resolve_vendor(&f)?;
        self.resolve_currency(&mut f)?;
        for k in [
            "vendorId",
            "vendorNumber",
            "payToVendorId",
            "payToVendorNumber",
        ] {
            f.remove(k);
        }
        let inv = self.invoice_mut(id)?;
        if let Some(v) = vendor {
            inv.vendor_id = v;
        }
        inv.fields.extend(f);
        inv.meta.bump();
        Ok(())
    }

    pub(crate) fn delete_invoice(&mut self, id: Uuid) -> ApiResult<()> {
        self.invoice(id)?.ensure_draft()?;
        self.invoices.retain(|i| i.meta.id != id);
        Ok(())
    }

    pub(crate) fn add_line(&mut self, inv_id: Uuid, body: &Value, flat: bool) -> ApiResult<Uuid> {
        let inv = self.invoice(inv_id)?;
        inv.ensure_draft()?;
        let line = self.build_line(&inv.lines, body, flat)?;
        let line_id = line.meta.id;
        let inv = self.invoice_mut(inv_id)?;
        inv.lines.push(line);
        inv.lines.sort_by_key(Line::sequence);
        // Totals live on the header, so adding a line modifies it too.
        inv.meta.bump();
        Ok(line_id)
    }

    pub(crate) fn patch_line(
        &mut self,
        inv_id: Uuid,
        line_id: Uuid,
        body: &Value,
    ) -> ApiResult<()> {
        let given = validate(&schema::LINE, body, &[])?;
        let inv = self.invoice(inv_id)?;
        inv.ensure_draft()?;
        let line = inv
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
        let taken: Vec<i64> = inv
            .lines
            .iter()
            .filter(|l| l.meta.id != line_id)
            .map(Line::sequence)
            .collect();
        self.complete_line(&taken, &mut merged)?;
        let inv = self.invoice_mut(inv_id)?;
        let line = inv
            .lines
            .iter_mut()
            .find(|l| l.meta.id == line_id)
            .expect("checked");
        line.fields = merged;
        line.meta.bump();
        inv.lines.sort_by_key(Line::sequence);
        inv.meta.bump();
        Ok(())
    }

    pub(crate) fn delete_line(&mut self, inv_id: Uuid, line_id: Uuid) -> ApiResult<()> {
        let inv = self.invoice_mut(inv_id)?;
        inv.ensure_draft()?;
        let before = inv.lines.len();
        inv.lines.retain(|l| l.meta.id != line_id);
        if inv.lines.len() == before {
            return Err(ApiError::not_found());
        }
        inv.meta.bump();
        Ok(())
    }

    /// `Microsoft.NAV.post` (A6.2 "Bound action post", gotchas 3–4).
    pub(crate) fn post_invoice(&mut self, id: Uuid) -> ApiResult<()> {
        let inv = self.invoice(id)?;
        if inv.posted {
            return Err(ApiError::dialog(
                "The action can be applied to a draft invoice only.",
            ));
        }
        let posting: Vec<&Line> = inv.lines.iter().filter(|l| l.posts()).collect();
        if posting.iter().any(|l| l.quantity().is_zero()) {
            return Err(ApiError::dialog(
                "One or more document lines with a value in the No. field do not have a quantity specified.",
            ));
        }
        if posting.is_empty() {
            return Err(ApiError::dialog("There is nothing to post."));
        }
        let vendor = self
            .vendor(inv.vendor_id)
            .ok_or_else(|| ApiError::dialog("The vendor cannot be found."))?;
        let vendor_no = s(&vendor.fields, "number");
        if s(&vendor.fields, "blocked") == "All" {
            return Err(ApiError::dialog(format!(
                "You cannot post this type of document when Vendor {vendor_no} is blocked with type All"
            )));
        }
        // CRONUS has "Ext. Doc. No. Mandatory" on: the vendor invoice number must be set
        // and unique per vendor among posted invoices.
        let ext = inv.vendor_invoice_number();
        if ext.is_empty() {
            return Err(ApiError::bad(
                "Application_FieldValidationException",
                format!(
                    "Vendor Invoice No. must have a value in Purchase Header: Document Type=Invoice, No.={}. It cannot be zero or empty.",
                    inv.number
                ),
            ));
        }
        if self
            .invoices
            .iter()
            .any(|o| o.posted && o.vendor_id == inv.vendor_id && o.vendor_invoice_number() == ext)
        {
            return Err(ApiError::dialog(format!(
                "Purchase Invoice {ext} already exists for this vendor."
            )));
        }
        if inv.total() < Decimal::ZERO {
            return Err(ApiError::dialog(
                "The total amount for the invoice must be 0 or greater.",
            ));
        }
        let number = self.next_posted_no.to_string();
        self.next_posted_no += 1;
        let inv = self.invoice_mut(id)?;
        inv.number = number;
        inv.posted = true;
        inv.post_count += 1;
        inv.meta.bump();
        Ok(())
    }

    pub(crate) fn mark_paid(&mut self, id: Uuid) -> ApiResult<()> {
        let inv = self.invoice_mut(id)?;
        if !inv.posted {
            return Err(ApiError::dialog("Only a posted invoice can be paid."));
        }
        inv.paid = true;
        inv.meta.bump();
        Ok(())
    }

    // ---------- dimension set lines ----------

    fn dims_of(&mut self, parent: Parent) -> ApiResult<&mut Vec<DimLine>> {
        match parent {
            Parent::Invoice(i) => {
                let inv = self.invoice_mut(i)?;
                inv.ensure_draft()?;
                Ok(&mut inv.dims)
            }
            Parent::Line(i, l) => {
                let inv = self.invoice_mut(i)?;
                inv.ensure_draft()?;
                let line = inv
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
            Parent::Invoice(i) => Ok(&self.invoice(i)?.dims),
            Parent::Line(i, l) => Ok(&self
                .invoice(i)?
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

    /// A dimension change rewrites the parent's Dimension Set ID: its ETag changes.
    fn touch(&mut self, parent: Parent) {
        if let Some(inv) = self.invoices.iter_mut().find(|i| {
            i.meta.id
                == match parent {
                    Parent::Invoice(i) | Parent::Line(i, _) => i,
                }
        }) {
            match parent {
                Parent::Invoice(_) => inv.meta.bump(),
                Parent::Line(_, l) => {
                    if let Some(line) = inv.lines.iter_mut().find(|x| x.meta.id == l) {
                        line.meta.bump();
                    }
                }
            }
        }
    }
}

/// The record a dimension set line hangs off.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Parent {
    Invoice(Uuid),
    /// (invoice id, line id)
    Line(Uuid, Uuid),
}

impl Parent {
    pub(crate) fn id(&self) -> Uuid {
        match self {
            Parent::Invoice(i) => *i,
            Parent::Line(_, l) => *l,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Parent::Invoice(_) => "Purchase Invoice",
            Parent::Line(..) => "Purchase Invoice Line",
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
