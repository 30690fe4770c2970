//! Coupa as a TARGET (integration 4): external purchase orders (`POST /api/purchase_orders`,
//! `type: ExternalOrderHeader`, coupa.md §1.8, §1.13.2) and invoices (`POST /api/invoices`,
//! §1.6, §1.13.4), each behind the writer port. Coupa has no idempotency key, so each record
//! is found again by its natural key: the PO number (unique in Coupa, ≤ 20 characters), and
//! the supplier + invoice number (Coupa itself refuses a second invoice with the same number
//! for a supplier).

use std::time::Duration;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{CoupaClient, CoupaError};
use crate::ports::{Absent, Change, SystemError, Writer, Written};
use crate::systems::http::{ApiRequest, HttpError};

/// How long a create whose answer was lost may still land in Coupa. Coupa publishes no limit;
/// the stricter reading, as for payments: ten minutes.
pub const CREATE_SETTLE: Duration = Duration::from_secs(600);

/// An external purchase order as Coupa should hold it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalOrder {
    /// The natural key: the source's document number with the configured prefix.
    pub po_number: String,
    /// The Coupa supplier's `number` (the B1 `CardCode`).
    pub supplier_number: String,
    pub currency: String,
    pub lines: Vec<ExternalLine>,
    /// Cancelled in the source: cancelled in Coupa too, never created.
    pub cancelled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalLine {
    pub line_num: u32,
    pub description: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// Account segments 1..N (positions kept; empty positions are "").
    pub segments: Vec<String>,
}

/// An invoice as Coupa should hold it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceToCreate {
    pub supplier_number: String,
    pub invoice_number: String,
    pub invoice_date: NaiveDate,
    pub currency: String,
    pub lines: Vec<InvoiceLineToCreate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLineToCreate {
    pub line_num: u32,
    pub description: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub tax_amount: Decimal,
    pub segments: Vec<String>,
    /// The Coupa PO this line bills (`po-number` + `order-line-num`), when the source line was
    /// copied from a purchase order.
    pub po_number: Option<String>,
    pub order_line_num: Option<u32>,
}

fn money(d: Decimal) -> String {
    let mut d = d.normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d.to_string()
}

fn account(segments: &[String]) -> Option<Value> {
    if segments.iter().all(|s| s.is_empty()) {
        return None;
    }
    let mut a = Map::new();
    for (i, s) in segments.iter().enumerate() {
        a.insert(format!("segment-{}", i + 1), json!(s));
    }
    Some(Value::Object(a))
}

fn order_lines(lines: &[ExternalLine]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let mut v = json!({
                "line-num": l.line_num,
                "description": l.description,
                "quantity": l.quantity.normalize().to_string(),
                "price": l.price.normalize().to_string(),
            });
            if let Some(a) = account(&l.segments) {
                v["account"] = a;
            }
            v
        })
        .collect()
}

fn decimal_of(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

fn not_found_is_none(e: CoupaError) -> Result<Option<Value>, SystemError> {
    match e {
        CoupaError::Http(HttpError::Status { status: 404, .. }) => Ok(None),
        e => Err(e.into()),
    }
}

impl CoupaClient {
    async fn send_json(&self, req: ApiRequest) -> Result<Value, CoupaError> {
        let resp = self.api.send(&req).await?;
        resp.json::<Value>().map_err(CoupaError::Http)
    }

    async fn show_json(&self, resource: &str, id: &str) -> Result<Option<Value>, SystemError> {
        let id: i64 = id.parse().map_err(|_| SystemError::Rejected {
            status: None,
            message: format!("'{id}' is not a Coupa id"),
        })?;
        let url = format!("{}/api/{resource}/{id}", self.base);
        match self.send_json(ApiRequest::get(url)).await {
            Ok(v) => Ok(Some(v)),
            Err(e) => not_found_is_none(e),
        }
    }

    /// The supplier that holds `code` in its `number`, or in the custom field `field` when
    /// given, as canonical with that code as its number (one GET), if Coupa has one.
    pub async fn supplier_by_code(
        &self,
        field: Option<&str>,
        code: &str,
    ) -> Result<Option<crate::model::Supplier>, SystemError> {
        let key = code_key(field);
        let Some(v) = self.first("suppliers", &[(key.as_str(), code)]).await? else {
            return Ok(None);
        };
        supplier_with_code(v, field).map(Some)
    }

    /// Supplier `id` with the code kept in `field` (a custom field) as its number; `None`: Coupa
    /// has no such supplier.
    pub async fn supplier_by_id_with_code(
        &self,
        id: &str,
        field: &str,
    ) -> Result<Option<crate::model::Supplier>, SystemError> {
        match self.show_json("suppliers", id).await? {
            Some(v) => supplier_with_code(v, Some(field)).map(Some),
            None => Ok(None),
        }
    }

    /// The first record a query finds (`resource?query`), if any.
    async fn first(
        &self,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Value>, SystemError> {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        let url = format!("{}/api/{resource}?{}&limit=1", self.base, q.join("&"));
        let found = self.send_json(ApiRequest::get(url)).await?;
        Ok(found.as_array().and_then(|a| a.first()).cloned())
    }
}

/// External purchase orders, exactly once per content.
#[derive(Clone)]
pub struct ExternalOrderWriter {
    pub coupa: CoupaClient,
}

impl Writer for ExternalOrderWriter {
    type Doc = ExternalOrder;
    /// The Coupa purchase order as Coupa shows it.
    type Record = Value;

    fn what(&self, o: &ExternalOrder) -> String {
        format!("the Coupa purchase order {}", o.po_number)
    }

    fn target(&self) -> String {
        self.coupa.target_identity()
    }

    fn settle_window(&self) -> Duration {
        CREATE_SETTLE
    }

    fn id_of(&self, _o: &ExternalOrder, record: &Value) -> String {
        record["id"].to_string()
    }

    async fn find(
        &self,
        o: &ExternalOrder,
        known_id: Option<&str>,
    ) -> Result<Option<Value>, SystemError> {
        if let Some(id) = known_id {
            return self.coupa.show_json("purchase_orders", id).await;
        }
        self.coupa
            .first("purchase_orders", &[("po-number", &o.po_number)])
            .await
    }

    fn when_absent(&self, o: &ExternalOrder) -> Absent {
        if o.cancelled {
            Absent::LeaveAlone("cancelled in the source before it reached Coupa".into())
        } else {
            Absent::Create
        }
    }

    async fn create(&self, o: &ExternalOrder) -> Result<Value, SystemError> {
        let body = json!({
            "type": "ExternalOrderHeader",
            "po-number": o.po_number,
            "version": 1,
            "currency": {"code": o.currency},
            "supplier": {"number": o.supplier_number},
            "order-lines": order_lines(&o.lines),
        });
        let url = format!("{}/api/purchase_orders", self.coupa.base);
        Ok(self
            .coupa
            .send_json(ApiRequest::post_json(url, &body))
            .await?)
    }

    /// A found order is brought to the source's content: cancelled when the source cancelled
    /// it; else its lines updated (matched by line number, new ones added; a line the source
    /// no longer has gets quantity 0, since an omitted line stays in Coupa, §1.13.2). Resumable:
    /// each PUT leaves a state the next call compares against again.
    async fn finish(
        &self,
        o: &ExternalOrder,
        record: Value,
        created: bool,
    ) -> Result<Written, SystemError> {
        let id = record["id"].to_string();
        let written = |change| Written {
            id: id.clone(),
            number: o.po_number.clone(),
            change,
        };
        if created {
            return Ok(written(Change::Created));
        }
        let status = record["status"].as_str().unwrap_or_default();
        if o.cancelled {
            if status == "cancelled" {
                return Ok(written(Change::AlreadyDone));
            }
            let url = format!("{}/api/purchase_orders/{id}/cancel", self.coupa.base);
            self.coupa
                .send_json(ApiRequest::put_json(url, &json!({})))
                .await?;
            return Ok(written(Change::Removed("cancelled in the source".into())));
        }
        if matches!(status, "cancelled" | "closed") {
            return Ok(written(Change::LeftAlone(format!(
                "the Coupa order is {status}; it is not changed any more"
            ))));
        }
        let existing: Vec<&Value> = record["order-lines"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let same = |l: &ExternalLine, c: &Value| {
            decimal_of(&c["quantity"]) == Some(l.quantity)
                && decimal_of(&c["price"]) == Some(l.price)
                && c["description"].as_str() == Some(l.description.as_str())
        };
        let line_num = |c: &Value| c["line-num"].as_u64().map(|n| n as u32);
        let mut lines: Vec<ExternalLine> = Vec::new();
        let mut changed = false;
        for l in &o.lines {
            match existing.iter().find(|c| line_num(c) == Some(l.line_num)) {
                Some(c) if same(l, c) => {}
                _ => changed = true,
            }
            lines.push(l.clone());
        }
        for c in &existing {
            let gone = line_num(c).is_some_and(|n| !o.lines.iter().any(|l| l.line_num == n));
            if gone && decimal_of(&c["quantity"]) != Some(Decimal::ZERO) {
                changed = true;
                lines.push(ExternalLine {
                    line_num: line_num(c).unwrap_or_default(),
                    description: c["description"].as_str().unwrap_or_default().to_string(),
                    quantity: Decimal::ZERO,
                    price: decimal_of(&c["price"]).unwrap_or_default(),
                    segments: Vec::new(),
                });
            }
        }
        if !changed {
            return Ok(written(Change::Unchanged));
        }
        let body = json!({
            "version": record["version"].as_i64().unwrap_or(1),
            "order-lines": order_lines(&lines),
        });
        let url = format!("{}/api/purchase_orders/{id}", self.coupa.base);
        self.coupa
            .send_json(ApiRequest::put_json(url, &body))
            .await?;
        Ok(written(Change::Updated))
    }
}

/// Invoices, exactly once per (supplier, invoice number).
#[derive(Clone)]
pub struct InvoiceWriter {
    pub coupa: CoupaClient,
}

impl InvoiceWriter {
    async fn by_natural_key(&self, i: &InvoiceToCreate) -> Result<Option<Value>, SystemError> {
        self.coupa
            .first(
                "invoices",
                &[
                    ("invoice-number", &i.invoice_number),
                    ("supplier[number]", &i.supplier_number),
                ],
            )
            .await
    }
}

impl Writer for InvoiceWriter {
    type Doc = InvoiceToCreate;
    type Record = Value;

    fn what(&self, i: &InvoiceToCreate) -> String {
        format!(
            "the Coupa invoice {} of supplier {}",
            i.invoice_number, i.supplier_number
        )
    }

    fn target(&self) -> String {
        self.coupa.target_identity()
    }

    fn settle_window(&self) -> Duration {
        CREATE_SETTLE
    }

    fn id_of(&self, _i: &InvoiceToCreate, record: &Value) -> String {
        record["id"].to_string()
    }

    async fn find(
        &self,
        i: &InvoiceToCreate,
        known_id: Option<&str>,
    ) -> Result<Option<Value>, SystemError> {
        match known_id {
            Some(id) => self.coupa.show_json("invoices", id).await,
            None => self.by_natural_key(i).await,
        }
    }

    /// A refusal saying the number is already used for this supplier (§1.13.4) means it is
    /// there (a create whose answer was lost, or made by someone else): found, not an error.
    async fn create(&self, i: &InvoiceToCreate) -> Result<Value, SystemError> {
        let lines: Vec<Value> = i
            .lines
            .iter()
            .map(|l| {
                let mut v = json!({
                    "line-num": l.line_num,
                    "type": "InvoiceQuantityLine",
                    "description": l.description,
                    "quantity": l.quantity.normalize().to_string(),
                    "price": l.price.normalize().to_string(),
                    "tax-amount": money(l.tax_amount),
                });
                if let Some(a) = account(&l.segments) {
                    v["account"] = a;
                }
                if let Some(po) = &l.po_number {
                    v["po-number"] = json!(po);
                    if let Some(n) = l.order_line_num {
                        v["order-line-num"] = json!(n);
                    }
                }
                v
            })
            .collect();
        let body = json!({
            "invoice-number": i.invoice_number,
            "invoice-date": i.invoice_date.format("%Y-%m-%d").to_string(),
            "currency": {"code": i.currency},
            "supplier": {"number": i.supplier_number},
            "invoice-lines": lines,
        });
        let url = format!("{}/api/invoices", self.coupa.base);
        match self.coupa.send_json(ApiRequest::post_json(url, &body)).await {
            Ok(v) => Ok(v),
            Err(CoupaError::Http(HttpError::Status { status: 400, body, .. }))
                if body.to_ascii_lowercase().contains("already been used") =>
            {
                self.by_natural_key(i).await?.ok_or_else(|| SystemError::Rejected {
                    status: Some(400),
                    message: format!(
                        "Coupa says invoice {} is already used for supplier {}, but it cannot be found",
                        i.invoice_number, i.supplier_number
                    ),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn finish(
        &self,
        i: &InvoiceToCreate,
        record: Value,
        created: bool,
    ) -> Result<Written, SystemError> {
        Ok(Written {
            id: record["id"].to_string(),
            number: i.invoice_number.clone(),
            change: if created {
                Change::Created
            } else {
                Change::AlreadyDone
            },
        })
    }
}

/// The query key of a supplier's code: `number`, or `custom-fields[<field>]` (coupa.md §1.3:
/// nested filters; flexible fields are queryable like standard ones).
fn code_key(field: Option<&str>) -> String {
    match field {
        Some(f) => format!("custom-fields[{f}]"),
        None => "number".into(),
    }
}

/// A supplier's JSON as canonical, its number taken from the custom field `field` when given.
fn supplier_with_code(
    v: Value,
    field: Option<&str>,
) -> Result<crate::model::Supplier, SystemError> {
    let wire: super::wire::Supplier = serde_json::from_value(v)
        .map_err(|e| SystemError::Malformed(format!("a Coupa supplier: {e}")))?;
    let mut s = super::convert::supplier_from_wire(&wire)
        .map_err(|e| SystemError::Malformed(e.to_string()))?;
    if let Some(f) = field {
        s.number = wire
            .custom_fields
            .as_ref()
            .and_then(|c| c.get(f))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
    }
    Ok(s)
}

/// A supplier as Coupa should hold it, matched by `number` (the B1 `CardCode`), or by the
/// custom field `code_field` when given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplierToWrite {
    pub number: String,
    pub name: String,
    pub tax_id: Option<String>,
    /// Write only over this (name, tax id), what the supplier held when the write was decided:
    /// a supplier changed since (by a person) is refused, not overwritten. `None`: write over
    /// whatever it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless_changed_from: Option<(String, Option<String>)>,
    /// The custom field holding `number` (the supplier's own `number` is then not touched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_field: Option<String>,
}

/// A name and tax id as compared: trimmed, an empty tax id none.
fn content(name: Option<&str>, tax_id: Option<&str>) -> (String, Option<String>) {
    (
        name.unwrap_or_default().trim().to_string(),
        tax_id
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    )
}

/// Suppliers created or updated in Coupa, once per content.
#[derive(Clone)]
pub struct SupplierWriter {
    pub coupa: CoupaClient,
}

impl Writer for SupplierWriter {
    type Doc = SupplierToWrite;
    type Record = Value;

    fn what(&self, s: &SupplierToWrite) -> String {
        format!("the Coupa supplier {}", s.number)
    }

    fn target(&self) -> String {
        self.coupa.target_identity()
    }

    fn settle_window(&self) -> Duration {
        CREATE_SETTLE
    }

    fn id_of(&self, _s: &SupplierToWrite, record: &Value) -> String {
        record["id"].to_string()
    }

    async fn find(
        &self,
        s: &SupplierToWrite,
        known_id: Option<&str>,
    ) -> Result<Option<Value>, SystemError> {
        match known_id {
            Some(id) => self.coupa.show_json("suppliers", id).await,
            None => {
                let key = code_key(s.code_field.as_deref());
                self.coupa
                    .first("suppliers", &[(key.as_str(), &s.number)])
                    .await
            }
        }
    }

    async fn create(&self, s: &SupplierToWrite) -> Result<Value, SystemError> {
        let mut body = match &s.code_field {
            Some(f) => json!({
                "name": s.name, "status": "active", "custom-fields": { f.as_str(): s.number },
            }),
            None => json!({ "name": s.name, "number": s.number, "status": "active" }),
        };
        if let Some(t) = &s.tax_id {
            body["tax-id"] = json!(t);
        }
        let url = format!("{}/api/suppliers", self.coupa.base);
        Ok(self
            .coupa
            .send_json(ApiRequest::post_json(url, &body))
            .await?)
    }

    /// A found supplier gets the source's name and tax id when they differ (a partial PUT,
    /// coupa.md §1.13.1); nothing else of it is touched.
    async fn finish(
        &self,
        s: &SupplierToWrite,
        record: Value,
        created: bool,
    ) -> Result<Written, SystemError> {
        let id = record["id"].to_string();
        let written = |change| Written {
            id: id.clone(),
            number: s.number.clone(),
            change,
        };
        if created {
            return Ok(written(Change::Created));
        }
        if let Some(base) = &s.unless_changed_from {
            let now = content(record["name"].as_str(), record["tax-id"].as_str());
            if &now != base && now != content(Some(&s.name), s.tax_id.as_deref()) {
                return Err(SystemError::Rejected {
                    status: None,
                    message: format!(
                        "the Coupa supplier {} changed after this write was decided (it is now \
                         '{}'): not overwritten; decided again on the next cycle",
                        s.number, now.0
                    ),
                });
            }
        }
        let mut change = Map::new();
        if record["name"].as_str() != Some(s.name.as_str()) {
            change.insert("name".into(), json!(s.name));
        }
        if record["tax-id"].as_str() != s.tax_id.as_deref() {
            change.insert("tax-id".into(), json!(s.tax_id));
        }
        if change.is_empty() {
            return Ok(written(Change::Unchanged));
        }
        let url = format!("{}/api/suppliers/{id}", self.coupa.base);
        self.coupa
            .send_json(ApiRequest::put_json(url, &Value::Object(change)))
            .await?;
        Ok(written(Change::Updated))
    }
}
