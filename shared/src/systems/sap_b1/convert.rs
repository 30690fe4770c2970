//! B1 documents and business partners → the canonical model.
//!
//! Amounts are in the document's currency: for a foreign-currency document the FC fields
//! (`DocTotalFc`, `RowTotalFC`, `NetTaxAmountFC`), else the local ones (sap-b1.md §4.8.2; a
//! local document has its FC fields 0). Line numbers are B1's 0-based `LineNum` + 1, so the
//! first line is 1 on both sides. A line's `AccountCode` is its account code and its
//! `CostingCode` … `CostingCode5` (distribution rules, lines of business) are the account's
//! segments 1–5, positions kept, for the flow to map to the target's segments.

use chrono::{NaiveDate, NaiveTime};
use rust_decimal::Decimal;
use serde_json::Value;

use super::client::version_of;
use super::wire::{self, BusinessPartner, Document, DocumentLine};
use crate::model::{
    AccountCoding, Currency, Invoice, InvoiceKind, InvoiceLine, LineKind, Money, PurchaseOrder,
    PurchaseOrderLine, Readiness, Supplier, TaxLine,
};

/// Why a B1 record cannot become a canonical document, naming it.
#[derive(Debug, thiserror::Error)]
#[error("B1 {what}: {problem}")]
pub struct ConvertError {
    pub what: String,
    pub problem: String,
}

fn err(what: &str, problem: impl Into<String>) -> ConvertError {
    ConvertError {
        what: what.to_string(),
        problem: problem.into(),
    }
}

/// The status a person reads: cancelled (§4.8.3), closed or open.
fn status(doc: &Document) -> String {
    if doc.is_cancelled() {
        "cancelled".into()
    } else if doc.document_status.as_deref() == Some("bost_Close") {
        "closed".into()
    } else {
        "open".into()
    }
}

fn supplier_of(doc: &Document, what: &str) -> Result<Supplier, ConvertError> {
    let code = doc
        .card_code
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| err(what, "no CardCode"))?;
    Ok(Supplier {
        source_id: code.clone(),
        number: Some(code.clone()),
        name: doc.card_name.clone().unwrap_or(code),
        tax_id: None,
    })
}

fn currency_of(
    doc: &Document,
    what: &str,
    iso: &dyn Fn(&str) -> String,
) -> Result<Currency, ConvertError> {
    let b1 = doc
        .doc_currency
        .as_deref()
        .ok_or_else(|| err(what, "no DocCurrency"))?;
    Currency::new(&iso(b1)).map_err(|_| {
        err(
            what,
            format!("currency '{b1}' is not an ISO code: map it under the system's `currencies`"),
        )
    })
}

fn account(l: &DocumentLine) -> AccountCoding {
    let segments: Vec<Option<String>> = [
        &l.costing_code,
        &l.costing_code2,
        &l.costing_code3,
        &l.costing_code4,
        &l.costing_code5,
    ]
    .iter()
    .map(|c| (*c).clone().filter(|c| !c.trim().is_empty()))
    .collect();
    // Trailing empty positions carry nothing; inner ones keep the positions right.
    let keep = segments
        .iter()
        .rposition(Option::is_some)
        .map_or(0, |i| i + 1);
    AccountCoding {
        code: l.account_code.clone().filter(|c| !c.trim().is_empty()),
        segments: segments.into_iter().take(keep).collect(),
    }
}

/// One line's (number, description, quantity, unit price, amount, tax, kind, account).
struct Line {
    num: u32,
    description: String,
    quantity: Decimal,
    unit_price: Decimal,
    amount: Decimal,
    tax: Vec<TaxLine>,
    kind: LineKind,
    account: AccountCoding,
}

fn line(doc: &Document, l: &DocumentLine, what: &str) -> Result<Line, ConvertError> {
    let num = l
        .line_num
        .ok_or_else(|| err(what, "a line without LineNum"))?;
    let num = u32::try_from(num + 1).map_err(|_| err(what, format!("LineNum {num}")))?;
    let quantity = l
        .quantity
        .ok_or_else(|| err(what, format!("line {num} has no Quantity")))?;
    let unit_price = l
        .unit_price
        .or(l.price)
        .ok_or_else(|| err(what, format!("line {num} has no UnitPrice")))?;
    let foreign = doc.is_foreign();
    let amount = if foreign {
        l.row_total_fc
    } else {
        l.line_total
    }
    .unwrap_or_else(|| (quantity * unit_price).round_dp(2));
    let tax_amount = if foreign {
        l.net_tax_amount_fc
    } else {
        l.tax_total
    };
    let tax = match (tax_amount, &l.tax_code) {
        (Some(t), code) if !t.is_zero() || code.is_some() => vec![TaxLine {
            code: code.clone(),
            rate: None,
            amount: t,
            base: Some(amount),
        }],
        _ => Vec::new(),
    };
    let kind = match l.item_code.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(item) => LineKind::Item {
            item_number: item.to_string(),
            unit_of_measure: None,
        },
        None => LineKind::Account,
    };
    Ok(Line {
        num,
        description: l
            .item_description
            .clone()
            .or_else(|| l.item_code.clone())
            .unwrap_or_default(),
        quantity,
        unit_price,
        amount,
        tax,
        kind,
        account: account(l),
    })
}

fn stamps(doc: &Document) -> (Option<NaiveDate>, Option<NaiveTime>) {
    (doc.update_date, doc.update_time)
}

/// A purchase order. Its number is B1's `DocNum`, the one people know it by.
pub fn purchase_order_from_wire(
    raw: &Value,
    iso: &dyn Fn(&str) -> String,
) -> Result<PurchaseOrder, ConvertError> {
    let doc: Document =
        serde_json::from_value(raw.clone()).map_err(|e| err("purchase order", e.to_string()))?;
    let entry = doc
        .doc_entry
        .ok_or_else(|| err("purchase order", "no DocEntry"))?;
    let what = format!("purchase order {entry}");
    let number = doc
        .doc_num
        .ok_or_else(|| err(&what, "no DocNum"))?
        .to_string();
    let (date, time) = stamps(&doc);
    let mut lines = Vec::new();
    for l in &doc.document_lines {
        let l = line(&doc, l, &what)?;
        lines.push(PurchaseOrderLine {
            line_num: l.num,
            description: l.description,
            quantity: l.quantity,
            unit_price: l.unit_price,
            amount: l.amount,
            uom: None,
            account: l.account,
            kind: l.kind,
            tax: l.tax,
            coding: Vec::new(),
        });
    }
    Ok(PurchaseOrder {
        source_id: entry.to_string(),
        version: version_of(raw, date, time),
        revision: None,
        number,
        status: status(&doc),
        supplier: supplier_of(&doc, &what)?,
        order_date: doc.doc_date,
        currency: currency_of(&doc, &what, iso)?,
        lines,
        company: None,
        amounts_include_tax: false,
        payment_terms: None,
    })
}

/// A supplier invoice. Its number is the supplier's own (`NumAtCard`): with the supplier it is
/// the natural key in the target, so a document without it cannot be sent. `po_numbers` gives
/// the `DocNum` of each base purchase order (`BaseEntry` of lines with `BaseType` 22).
pub fn invoice_from_wire(
    raw: &Value,
    iso: &dyn Fn(&str) -> String,
    po_numbers: &dyn Fn(i64) -> Option<String>,
) -> Result<Invoice, ConvertError> {
    let doc: Document =
        serde_json::from_value(raw.clone()).map_err(|e| err("invoice", e.to_string()))?;
    let entry = doc.doc_entry.ok_or_else(|| err("invoice", "no DocEntry"))?;
    let what = format!("A/P invoice {entry}");
    let number = doc
        .num_at_card
        .clone()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| err(&what, "no supplier invoice number (NumAtCard)"))?;
    let currency = currency_of(&doc, &what, iso)?;
    let foreign = doc.is_foreign();
    let total = if foreign {
        doc.doc_total_fc
    } else {
        doc.doc_total
    }
    .ok_or_else(|| err(&what, "no DocTotal"))?;
    let (date, time) = stamps(&doc);
    let mut lines = Vec::new();
    for l in &doc.document_lines {
        let (po_number, po_line_num) = match (l.base_type, l.base_entry) {
            (Some(22), Some(base)) => {
                let n = po_numbers(base)
                    .ok_or_else(|| err(&what, format!("base purchase order {base} not read")))?;
                let line = l.base_line.and_then(|b| u32::try_from(b + 1).ok());
                (Some(n), line)
            }
            _ => (None, None),
        };
        let c = line(&doc, l, &what)?;
        lines.push(InvoiceLine {
            line_num: c.num,
            description: c.description,
            quantity: Some(c.quantity),
            unit_price: c.unit_price,
            amount: c.amount,
            account: c.account,
            po_number,
            po_line_num,
            kind: c.kind,
            tax: c.tax,
            coding: Vec::new(),
        });
    }
    let readiness = if doc.is_cancelled() {
        Readiness::NotReady(match doc.cancel_status.as_deref() {
            Some("csCancellation") => "a cancellation document in B1".into(),
            _ => "cancelled in B1".into(),
        })
    } else {
        Readiness::Ready
    };
    Ok(Invoice {
        source_id: entry.to_string(),
        version: version_of(raw, date, time),
        kind: InvoiceKind::Invoice,
        status: status(&doc),
        number,
        supplier: supplier_of(&doc, &what)?,
        invoice_date: doc.doc_date.ok_or_else(|| err(&what, "no DocDate"))?,
        total: Money {
            amount: total,
            currency,
        },
        lines,
        readiness,
        company: None,
        amounts_include_tax: false,
        tax: Vec::new(),
        due_date: doc.doc_due_date,
        payment_terms: None,
        bank_account: None,
    })
}

/// The DocEntries of the purchase orders an invoice's lines were copied from (`BaseType` 22).
pub fn base_purchase_orders(raw: &Value) -> Vec<i64> {
    let lines: Vec<DocumentLine> = raw
        .get("DocumentLines")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let mut out: Vec<i64> = lines
        .iter()
        .filter(|l| l.base_type == Some(22))
        .filter_map(|l| l.base_entry)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A business partner as a supplier, matched by `CardCode`.
pub fn supplier_from_wire(raw: &Value) -> Result<Supplier, ConvertError> {
    let bp: BusinessPartner =
        serde_json::from_value(raw.clone()).map_err(|e| err("business partner", e.to_string()))?;
    let code = bp
        .card_code
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| err("business partner", "no CardCode"))?;
    Ok(Supplier {
        source_id: code.clone(),
        number: Some(code.clone()),
        name: bp.card_name.unwrap_or(code),
        tax_id: bp.federal_tax_id.filter(|t| !t.trim().is_empty()),
    })
}

/// The version of a listed entity (see [`version_of`]).
pub fn version_of_listed(raw: &Value) -> chrono::DateTime<chrono::Utc> {
    // Payments have no UpdateDate (§4.8.6): their own date stands in.
    let date = raw
        .get("UpdateDate")
        .or_else(|| raw.get("DocDate"))
        .and_then(Value::as_str)
        .and_then(wire::parse_date);
    let time = match raw.get("UpdateTime") {
        Some(Value::String(s)) => wire::parse_time(s),
        Some(Value::Number(n)) => wire::parse_time(&n.to_string()),
        _ => None,
    };
    version_of(raw, date, time)
}
