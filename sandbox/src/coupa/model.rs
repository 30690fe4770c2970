//! Coupa records as the simulator stores them, and their JSON rendering.
//!
//! coupa.md §1.4: hyphenated keys, no root wrapper, money/quantities as decimal strings,
//! ids as integers, datetimes with the instance's local offset, and fields that are null
//! are DROPPED (clients must treat every field as optional).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};

pub(crate) struct Supplier {
    pub id: i64,
    pub name: String,
    pub number: Option<String>,
    pub tax_id: Option<String>,
    /// Custom (flexible) fields by hyphenated name.
    pub custom_fields: std::collections::BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) struct Invoice {
    pub id: i64,
    pub supplier_id: i64,
    pub invoice_number: String,
    pub invoice_date: NaiveDate,
    pub currency: String,
    pub status: String,
    pub document_type: String,
    pub lines: Vec<Line>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub exported: bool,
    pub last_exported_at: Option<DateTime<Utc>>,
    pub paid: bool,
    pub payment_date: Option<String>,
    pub payment_notes: Option<String>,
    pub payments: Vec<Payment>,
}

pub(crate) struct Line {
    pub id: i64,
    pub line_num: i64,
    pub description: String,
    pub quantity: Option<Decimal>,
    pub price: Decimal,
    pub account_segments: Vec<String>,
    pub po_number: Option<String>,
    /// The PO line this invoice line bills (`order-line-num`, coupa.md §1.6 line fields).
    pub order_line_num: Option<u32>,
    /// `tax-amount` of the line, as an API create gave it (writes.rs); None renders "0.00".
    pub tax_amount: Option<Decimal>,
}

/// A purchase order (coupa.md §1.8).
pub(crate) struct PurchaseOrder {
    pub id: i64,
    pub po_number: String,
    pub status: String,
    /// Coupa's `version` is a number (§1.4: "version and similar values use number").
    /// Doubt: whether Coupa bumps it on status changes or only on change orders is not
    /// documented; the simulator bumps it on every change (the stricter case for a client
    /// that must not key anything on it).
    pub version: i64,
    pub supplier_id: i64,
    pub currency: String,
    pub lines: Vec<OrderLine>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub exported: bool,
    /// Created through the API as an external PO (`type: ExternalOrderHeader`, §1.13.2).
    pub external: bool,
    /// Test knob: top-level keys replaced in the rendered JSON (`Null` removes the key).
    pub overrides: Vec<(String, Value)>,
}

pub(crate) struct OrderLine {
    pub id: i64,
    pub line_num: u32,
    pub description: String,
    pub quantity: Decimal,
    pub price: Decimal,
    pub account_segments: Vec<String>,
    pub uom: String,
}

impl PurchaseOrder {
    fn line_total(l: &OrderLine) -> Decimal {
        round2(l.price * l.quantity)
    }

    pub(crate) fn total(&self) -> Decimal {
        self.lines.iter().map(Self::line_total).sum()
    }
}

pub(crate) struct Payment {
    pub id: i64,
    pub amount_paid: Option<Decimal>,
    pub notes: Option<String>,
    pub check_number: Option<String>,
    pub payment_date: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Invoice {
    pub(crate) fn is_credit_note(&self) -> bool {
        self.document_type.eq_ignore_ascii_case("Credit Note")
    }

    /// A credit note's amounts are negative whatever sign the test data used.
    fn signed(&self, d: Decimal) -> Decimal {
        if self.is_credit_note() { -d.abs() } else { d }
    }

    fn line_total(&self, l: &Line) -> Decimal {
        let price = self.signed(l.price);
        match l.quantity {
            Some(q) => round2(price * q),
            None => round2(price),
        }
    }

    pub(crate) fn total(&self) -> Decimal {
        self.lines.iter().map(|l| self.line_total(l)).sum()
    }

    pub(crate) fn tax(&self) -> Decimal {
        self.lines
            .iter()
            .filter_map(|l| l.tax_amount)
            .map(|t| self.signed(t))
            .sum()
    }
}

/// Coupa timestamps are whole seconds (so several records can share an `updated-at`).
pub(crate) fn now_secs() -> DateTime<Utc> {
    trunc_secs(Utc::now())
}

pub(crate) fn trunc_secs(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("in range")
}

pub(crate) fn render_time(t: DateTime<Utc>, offset: FixedOffset) -> String {
    t.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Totals: always exactly 2 decimals (coupa.md §1.6 examples: "100.00").
pub(crate) fn money2(d: Decimal) -> String {
    let mut r = round2(d);
    r.rescale(2);
    r.to_string()
}

/// Prices and quantities: as given, at most 4 decimals (Coupa stores decimal(32,4)).
fn dec4(d: Decimal) -> String {
    d.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
        .to_string()
}

/// Ids Coupa would have given to the currency records.
fn currency_json(code: &str) -> Value {
    let (id, decimals) = match code {
        "USD" => (1, 2),
        "EUR" => (2, 2),
        "GBP" => (3, 2),
        "CAD" => (4, 2),
        "JPY" => (5, 0),
        _ => (100 + code.bytes().map(i64::from).sum::<i64>(), 2),
    };
    json!({ "id": id, "code": code, "decimals": decimals })
}

/// Removes nulls recursively (coupa.md §1.4 / §1.12.7: fields may disappear when null).
pub(crate) fn drop_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(drop_nulls).collect()),
        other => other,
    }
}

/// Everything the simulator stores, behind one lock.
#[derive(Default)]
pub(crate) struct Data {
    pub suppliers: BTreeMap<i64, Supplier>,
    pub invoices: BTreeMap<i64, Invoice>,
    pub purchase_orders: BTreeMap<i64, PurchaseOrder>,
    /// Account code → id, so the same code always renders with the same account id.
    pub accounts: HashMap<String, i64>,
    pub next_supplier_id: i64,
    pub next_invoice_id: i64,
    pub next_line_id: i64,
    pub next_payment_id: i64,
    pub next_po_id: i64,
    pub next_order_line_id: i64,
}

impl Data {
    pub(crate) fn account_id(&mut self, code: &str) -> i64 {
        let next = 5000 + self.accounts.len() as i64 + 1;
        *self.accounts.entry(code.to_owned()).or_insert(next)
    }

    pub(crate) fn render_supplier(&self, s: &Supplier, offset: FixedOffset) -> Value {
        drop_nulls(json!({
            "id": s.id,
            "created-at": render_time(s.created_at, offset),
            "updated-at": render_time(s.updated_at, offset),
            "name": s.name,
            "display-name": s.name,
            "number": s.number,
            "status": "active",
            "tax-id": s.tax_id,
            "custom-fields": s.custom_fields,
        }))
    }

    pub(crate) fn render_invoice(&self, inv: &Invoice, offset: FixedOffset) -> Value {
        let supplier = self.suppliers.get(&inv.supplier_id);
        let total = money2(inv.total() + inv.tax());
        let lines: Vec<Value> = inv.lines.iter().map(|l| self.render_line(inv, l)).collect();
        let payments: Vec<Value> = inv
            .payments
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "created-at": render_time(p.created_at, offset),
                    "updated-at": render_time(p.created_at, offset),
                    "amount-paid": p.amount_paid.map(dec4),
                    "notes": p.notes,
                    "check-number": p.check_number,
                    "payment-date": p.payment_date,
                    "payable-id": inv.id,
                    "payable-type": "InvoiceHeader",
                })
            })
            .collect();
        let mut m = Map::new();
        m.insert("id".into(), json!(inv.id));
        m.insert(
            "created-at".into(),
            json!(render_time(inv.created_at, offset)),
        );
        m.insert(
            "updated-at".into(),
            json!(render_time(inv.updated_at, offset)),
        );
        m.insert("invoice-number".into(), json!(inv.invoice_number));
        m.insert(
            "invoice-date".into(),
            json!(inv.invoice_date.format("%Y-%m-%d").to_string()),
        );
        m.insert("status".into(), json!(inv.status));
        m.insert("document-type".into(), json!(inv.document_type));
        m.insert("is-credit-note".into(), json!(inv.is_credit_note()));
        m.insert("currency".into(), currency_json(&inv.currency));
        m.insert(
            "supplier".into(),
            match supplier {
                Some(s) => json!({ "id": s.id, "name": s.name, "display-name": s.name, "number": s.number }),
                None => json!({ "id": inv.supplier_id }),
            },
        );
        m.insert("total-with-taxes".into(), json!(total));
        m.insert("gross-total".into(), json!(total));
        m.insert("tax-amount".into(), json!(money2(inv.tax())));
        m.insert("line-count".into(), json!(inv.lines.len()));
        m.insert("exported".into(), json!(inv.exported));
        m.insert(
            "last-exported-at".into(),
            json!(inv.last_exported_at.map(|t| render_time(t, offset))),
        );
        m.insert("paid".into(), json!(inv.paid));
        m.insert("payment-date".into(), json!(inv.payment_date));
        m.insert("payment-notes".into(), json!(inv.payment_notes));
        m.insert("payments".into(), Value::Array(payments));
        m.insert("invoice-lines".into(), Value::Array(lines));
        drop_nulls(Value::Object(m))
    }

    /// `account{id,name,code,active,segment-1..N}` (coupa.md §1.6), or null without segments.
    fn render_account(&self, segments: &[String]) -> Value {
        if segments.is_empty() {
            return Value::Null;
        }
        let code = segments.join("-");
        let mut account = Map::new();
        account.insert("id".into(), json!(self.accounts.get(&code).copied()));
        account.insert("name".into(), json!(code));
        account.insert("code".into(), json!(code));
        account.insert("active".into(), json!(true));
        for (i, seg) in segments.iter().enumerate() {
            account.insert(format!("segment-{}", i + 1), json!(seg));
        }
        Value::Object(account)
    }

    /// The id of line `line_num` of the PO numbered `po_number`, if both exist.
    fn order_line_id(&self, po_number: &str, line_num: u32) -> Option<i64> {
        self.purchase_orders
            .values()
            .find(|po| po.po_number == po_number)?
            .lines
            .iter()
            .find(|l| l.line_num == line_num)
            .map(|l| l.id)
    }

    fn render_line(&self, inv: &Invoice, l: &Line) -> Value {
        let order_line_id = match (&l.po_number, l.order_line_num) {
            (Some(po), Some(n)) => self.order_line_id(po, n),
            _ => None,
        };
        let kind = if l.quantity.is_some() {
            "InvoiceQuantityLine"
        } else {
            "InvoiceAmountLine"
        };
        json!({
            "id": l.id,
            "line-num": l.line_num,
            "type": kind,
            "description": l.description,
            "price": dec4(inv.signed(l.price)),
            "quantity": l.quantity.map(dec4),
            "total": money2(inv.line_total(l)),
            "tax-amount": money2(l.tax_amount.map_or(Decimal::ZERO, |t| inv.signed(t))),
            // §1.6 line fields: the PO is named by `po-number` and `order-header-num`, the
            // PO line by `order-line-num` (and `order-line-id` when that line exists here).
            "po-number": l.po_number,
            "order-header-num": l.po_number,
            // Doubt: the type of `order-line-num` is shown in no sample (null in Example A);
            // rendered as a string, the less convenient case for a client.
            "order-line-num": l.order_line_num.map(|n| n.to_string()),
            "order-line-id": order_line_id,
            "account": self.render_account(&l.account_segments),
        })
    }

    /// coupa.md §1.8 fields. No verbatim JSON PO was found (§1.8), so the shape follows the
    /// invoice conventions of §1.4: hyphenated keys, money as strings, nulls dropped.
    pub(crate) fn render_purchase_order(&self, po: &PurchaseOrder, offset: FixedOffset) -> Value {
        let supplier = self.suppliers.get(&po.supplier_id);
        let lines: Vec<Value> = po
            .lines
            .iter()
            .map(|l| {
                json!({
                    "id": l.id,
                    "line-num": l.line_num,
                    "type": "OrderQuantityLine",
                    "description": l.description,
                    "quantity": dec4(l.quantity),
                    "price": dec4(l.price),
                    "total": money2(PurchaseOrder::line_total(l)),
                    "uom": { "code": l.uom },
                    "currency": currency_json(&po.currency),
                    "account": self.render_account(&l.account_segments),
                })
            })
            .collect();
        let mut v = drop_nulls(json!({
            "id": po.id,
            "created-at": render_time(po.created_at, offset),
            "updated-at": render_time(po.updated_at, offset),
            "po-number": po.po_number,
            "status": po.status,
            "version": po.version,
            "type": if po.external { "ExternalOrderHeader" } else { "OrderHeader" },
            "total": money2(po.total()),
            "currency": currency_json(&po.currency),
            "supplier": match supplier {
                Some(s) => json!({ "id": s.id, "name": s.name, "number": s.number }),
                None => json!({ "id": po.supplier_id }),
            },
            "exported": po.exported,
            "order-lines": lines,
        }));
        if let Value::Object(m) = &mut v {
            for (k, val) in &po.overrides {
                match val {
                    Value::Null => m.remove(k),
                    other => m.insert(k.clone(), other.clone()),
                };
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_renders_with_two_decimals_and_prices_as_given() {
        assert_eq!(money2(Decimal::new(1005, 1)), "100.50");
        assert_eq!(money2(Decimal::new(123456, 4)), "12.35");
        assert_eq!(dec4(Decimal::new(123456, 4)), "12.3456");
        assert_eq!(dec4(Decimal::new(3, 0)), "3");
    }

    #[test]
    fn nulls_are_dropped_recursively() {
        let v = drop_nulls(json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]}));
        assert_eq!(v, json!({"b": {"d": 1}, "e": [{}]}));
    }
}
