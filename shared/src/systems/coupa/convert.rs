//! Coupa wire documents → canonical [`Invoice`], [`PurchaseOrder`], [`Supplier`]. Every missing
//! or unreadable field is reported by its Coupa name, so a parked document tells finance exactly
//! what to fix.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::wire;
use crate::model::{
    AccountCoding, Currency, Invoice, InvoiceKind, InvoiceLine, LineKind, Money, PurchaseOrder,
    PurchaseOrderLine, Readiness, Supplier,
};

/// Why a Coupa document cannot be converted: "Coupa purchase order 12: field 'po-number' is
/// missing".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Coupa {kind} {id}: {problem}")]
pub struct ConversionError {
    /// "invoice", "purchase order" or "supplier".
    pub kind: &'static str,
    pub id: i64,
    pub problem: String,
}

pub type ConvertError = ConversionError;

/// Reads a document's required header fields, naming the document and field in every error.
struct Header {
    kind: &'static str,
    id: i64,
}

impl Header {
    fn err(&self, problem: String) -> ConversionError {
        ConversionError {
            kind: self.kind,
            id: self.id,
            problem,
        }
    }

    fn missing(&self, field: &str) -> ConversionError {
        self.err(format!("field '{field}' is missing"))
    }

    /// A non-blank text field, trimmed.
    fn text(&self, value: Option<&str>, field: &str) -> Result<String, ConversionError> {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| self.missing(field))
    }

    /// `updated-at`: the document's version.
    fn version(&self, updated_at: Option<&str>) -> Result<DateTime<Utc>, ConversionError> {
        instant(updated_at.ok_or_else(|| self.missing("updated-at"))?)
            .map_err(|e| self.err(format!("field 'updated-at': {e}")))
    }

    fn currency(&self, c: Option<&wire::CurrencyRef>) -> Result<Currency, ConversionError> {
        let code = c
            .and_then(|c| c.code.as_deref())
            .ok_or_else(|| self.missing("currency.code"))?;
        Currency::new(code).map_err(|e| self.err(format!("field 'currency.code': {e}")))
    }
}

pub fn invoice_from_wire(w: &wire::Invoice) -> Result<Invoice, ConversionError> {
    let h = Header {
        kind: "invoice",
        id: w.id,
    };
    let err = |problem: String| h.err(problem);
    let missing = |field: &str| h.missing(field);

    let version = h.version(w.updated_at.as_deref())?;
    let number = h.text(w.invoice_number.as_deref(), "invoice-number")?;
    let invoice_date = date(
        w.invoice_date
            .as_deref()
            .ok_or_else(|| missing("invoice-date"))?,
    )
    .map_err(|e| err(format!("field 'invoice-date': {e}")))?;
    let currency = h.currency(w.currency.as_ref())?;
    let supplier = supplier_ref(w.supplier.as_ref()).map_err(missing)?;
    // coupa.md §1.6: a credit note is document-type "Credit Note" and/or is-credit-note.
    let credit = w.is_credit_note == Some(true)
        || w.document_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("credit note"));
    let kind = if credit {
        InvoiceKind::CreditNote
    } else {
        InvoiceKind::Invoice
    };

    if w.invoice_lines.is_empty() {
        return Err(missing("invoice-lines"));
    }
    let lines = w
        .invoice_lines
        .iter()
        .enumerate()
        .map(|(i, l)| line(l, i).map_err(&err))
        .collect::<Result<Vec<_>, _>>()?;
    let total = match w.total_with_taxes.or(w.gross_total) {
        Some(t) => t,
        // Checked: amounts near Decimal's limit must park the document, not panic.
        None => lines
            .iter()
            .try_fold(Decimal::ZERO, |sum, l| sum.checked_add(l.amount))
            .ok_or_else(|| {
                err(
                    "field 'total-with-taxes' is missing and the sum of the lines is too large"
                        .to_string(),
                )
            })?,
    };

    let status = w.status.clone().unwrap_or_default();
    // coupa.md §1.6: only an approved invoice is released for posting.
    let readiness = if status == "approved" {
        Readiness::Ready
    } else {
        Readiness::NotReady(format!("status is '{status}', not approved"))
    };

    Ok(Invoice {
        source_id: w.id.to_string(),
        version,
        kind,
        status,
        number,
        supplier,
        invoice_date,
        total: Money {
            amount: total,
            currency,
        },
        lines,
        readiness,
        // One Coupa instance is one set of books; the integration names the target company.
        company: None,
        // Coupa line prices are net; `total-with-taxes` is the gross total.
        amounts_include_tax: false,
        tax: Vec::new(),
        due_date: None,
        payment_terms: None,
        bank_account: None,
    })
}

fn line(l: &wire::InvoiceLine, index: usize) -> Result<InvoiceLine, String> {
    let n = l.line_num.unwrap_or(index as u32 + 1);
    let field = |f: &str| format!("line {n}: field '{f}' is missing");
    let account = l.account.as_ref().ok_or_else(|| field("account"))?;
    let amount_line = l.line_type.as_deref() == Some("InvoiceAmountLine");
    let quantity = if amount_line { None } else { l.quantity };
    let unit_price = match (l.price, l.total) {
        (Some(p), _) => p,
        (None, Some(t)) if quantity.is_none() => t,
        _ => return Err(field("price")),
    };
    let amount = match (l.total, quantity) {
        (Some(t), _) => t,
        (None, Some(q)) => q
            .checked_mul(unit_price)
            .ok_or_else(|| format!("line {n}: field 'quantity' times field 'price' is too large"))?
            .round_dp(2),
        (None, None) => unit_price,
    };
    Ok(InvoiceLine {
        line_num: n,
        description: l.description.clone().unwrap_or_default(),
        quantity,
        unit_price,
        amount,
        account: AccountCoding {
            code: account.code(),
            segments: account.segments(),
        },
        // §1.6: the PO is named by `po-number`, and again by `order-header-num`.
        po_number: l
            .po_number
            .clone()
            .filter(|p| !p.trim().is_empty())
            .or_else(|| l.order_header_num.clone().filter(|p| !p.trim().is_empty())),
        po_line_num: match l.order_line_num.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(t.parse::<u32>().map_err(|_| {
                format!("line {n}: field 'order-line-num': '{t}' is not a line number")
            })?),
        },
        kind: LineKind::Account,
        tax: Vec::new(),
        coding: Vec::new(),
    })
}

/// The supplier a document names (`supplier{id,name,number}`); `Err` is the missing field.
fn supplier_ref(s: Option<&wire::SupplierRef>) -> Result<Supplier, &'static str> {
    let s = s.ok_or("supplier")?;
    Ok(Supplier {
        source_id: s.id.map(|i| i.to_string()).ok_or("supplier.id")?,
        number: s.number.clone().filter(|n| !n.is_empty()),
        name: s.name.clone().unwrap_or_default(),
        tax_id: s.tax_id.clone().filter(|t| !t.is_empty()),
    })
}

/// coupa.md §1.8 purchase order → canonical [`PurchaseOrder`]. Every status converts (the
/// target decides what a cancelled or closed PO means); drafts are not polled.
pub fn purchase_order_from_wire(w: &wire::PurchaseOrder) -> Result<PurchaseOrder, ConvertError> {
    let h = Header {
        kind: "purchase order",
        id: w.id,
    };
    let err = |problem: String| h.err(problem);
    let missing = |field: &str| h.missing(field);

    let version = h.version(w.updated_at.as_deref())?;
    let number = h.text(w.po_number.as_deref(), "po-number")?;
    let status = h.text(w.status.as_deref(), "status")?;
    let currency = h.currency(w.currency.as_ref())?;
    let supplier = supplier_ref(w.supplier.as_ref()).map_err(missing)?;
    // `order-date` is not in §1.8's list; without it the PO's creation date stands in, as the
    // calendar date in the instance's own offset (like `invoice-date`).
    let order_date = match (w.order_date.as_deref(), w.created_at.as_deref()) {
        (Some(d), _) => Some(date(d).map_err(|e| err(format!("field 'order-date': {e}")))?),
        (None, Some(c)) => Some(date(c).map_err(|e| err(format!("field 'created-at': {e}")))?),
        (None, None) => None,
    };
    if w.order_lines.is_empty() {
        return Err(missing("order-lines"));
    }
    let lines = w
        .order_lines
        .iter()
        .enumerate()
        .map(|(i, l)| order_line(l, i).map_err(&err))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PurchaseOrder {
        source_id: w.id.to_string(),
        version,
        revision: w.version,
        number,
        status,
        supplier,
        order_date,
        currency,
        lines,
        company: None,
        amounts_include_tax: false,
        payment_terms: None,
    })
}

fn order_line(l: &wire::OrderLine, index: usize) -> Result<PurchaseOrderLine, String> {
    let n = match l.line_num {
        None => index as u32 + 1,
        Some(v) => u32::try_from(v).map_err(|_| {
            format!(
                "line {}: field 'line-num': {v} is not a line number",
                index + 1
            )
        })?,
    };
    let field = |f: &str| format!("line {n}: field '{f}' is missing");
    let account = l.account.as_ref().ok_or_else(|| field("account"))?;
    let amount_line = l.line_type.as_deref() == Some("OrderAmountLine");
    // An amount line has no quantity (by analogy with `InvoiceAmountLine`, §1.6): one unit at
    // the line amount.
    let (quantity, unit_price) = match (l.quantity, l.price) {
        (Some(q), Some(p)) if !amount_line => (q, p),
        (None, Some(p)) if amount_line => (Decimal::ONE, p),
        (None, None) if amount_line => (Decimal::ONE, l.total.ok_or_else(|| field("price"))?),
        (_, None) => return Err(field("price")),
        (None, Some(_)) => return Err(field("quantity")),
        (Some(_), Some(p)) => (Decimal::ONE, p),
    };
    let amount = match l.total {
        Some(t) => t,
        None => quantity
            .checked_mul(unit_price)
            .ok_or_else(|| format!("line {n}: field 'quantity' times field 'price' is too large"))?
            .round_dp(2),
    };
    Ok(PurchaseOrderLine {
        line_num: n,
        description: l.description.clone().unwrap_or_default(),
        quantity,
        unit_price,
        amount,
        uom: l
            .uom
            .as_ref()
            .and_then(|u| u.code.clone())
            .filter(|c| !c.trim().is_empty()),
        account: AccountCoding {
            code: account.code(),
            segments: account.segments(),
        },
        kind: LineKind::Account,
        tax: Vec::new(),
        coding: Vec::new(),
    })
}

/// coupa.md §1.9 supplier → canonical [`Supplier`]. The name is required (the ERP's vendor
/// needs one); `display-name` stands in when `name` is blank.
pub fn supplier_from_wire(w: &wire::Supplier) -> Result<Supplier, ConvertError> {
    let h = Header {
        kind: "supplier",
        id: w.id,
    };
    let name = h
        .text(w.name.as_deref(), "name")
        .or_else(|_| h.text(w.display_name.as_deref(), "name"))?;
    Ok(Supplier {
        source_id: w.id.to_string(),
        number: w.number.clone().filter(|n| !n.trim().is_empty()),
        name,
        // §1.9 sample: `"tax-id": ""` means none.
        tax_id: w.tax_id.clone().filter(|t| !t.trim().is_empty()),
    })
}

/// Coupa timestamps carry the instance's UTC offset (`2024-04-01T02:19:09+03:00`): compare
/// instants, never strings.
pub(crate) fn instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("'{s}' is not an RFC 3339 timestamp ({e})"))
}

/// `invoice-date` is a datetime at local midnight (`2024-04-01T00:00:00+03:00`) or a plain
/// date: the calendar date is the one in the instance's own offset.
fn date(s: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.date_naive());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("'{s}' is not a date"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        // coupa.md §1.6 Example A, abridged.
        serde_json::json!({
          "id": 92010, "created-at": "2024-04-01T02:16:48+03:00", "updated-at": "2024-04-01T02:19:09+03:00",
          "invoice-date": "2024-04-01T00:00:00+03:00", "invoice-number": "Test 10", "status": "approved",
          "total-with-taxes": "100.00", "document-type": "Invoice", "is-credit-note": false,
          "currency": { "id": 1, "code": "USD" },
          "supplier": { "id": 8819, "name": "SAP Test Case - Leases", "number": null },
          "invoice-lines": [{ "id": 350285, "description": "Test", "line-num": 1, "quantity": null,
            "tax-amount": "0.00", "total": "100.00", "type": "InvoiceAmountLine",
            "tax-code": { "id": 1, "code": "test", "percentage": 0.0 },
            "account": { "id": 23586, "code": "3004-T006493004-1072033010-1", "active": true,
              "segment-1": "3004", "segment-2": "T006493004", "segment-3": "1072033010", "segment-4": "1" } }]
        })
    }

    fn convert(v: serde_json::Value) -> Result<Invoice, ConversionError> {
        let w: wire::Invoice = serde_json::from_value(v).unwrap();
        invoice_from_wire(&w)
    }

    #[test]
    fn documented_example_converts() {
        let inv = convert(sample()).unwrap();
        assert_eq!(inv.number, "Test 10");
        assert_eq!(inv.total.amount.to_string(), "100.00");
        assert_eq!(
            inv.invoice_date,
            NaiveDate::from_ymd_opt(2024, 4, 1).unwrap()
        );
        assert_eq!(inv.version.to_rfc3339(), "2024-03-31T23:19:09+00:00");
        assert_eq!(inv.lines[0].account.segment(2), Some("T006493004"));
        assert_eq!(inv.lines[0].quantity, None);
        assert_eq!(inv.lines[0].unit_price.to_string(), "100.00");
        assert_eq!(inv.supplier.number, None);
    }

    #[test]
    fn unit_prices_keep_four_decimals() {
        let mut v = sample();
        v["invoice-lines"][0]["type"] = "InvoiceQuantityLine".into();
        v["invoice-lines"][0]["price"] = "12.3456".into();
        v["invoice-lines"][0]["quantity"] = "3".into();
        let inv = convert(v).unwrap();
        assert_eq!(inv.lines[0].unit_price.to_string(), "12.3456");
    }

    #[test]
    fn amounts_too_large_for_a_decimal_are_an_error_not_a_panic() {
        let max = "79228162514264337593543950335";
        let mut v = sample();
        v["invoice-lines"][0]["type"] = "InvoiceQuantityLine".into();
        v["invoice-lines"][0]["price"] = max.into();
        v["invoice-lines"][0]["quantity"] = "2".into();
        v["invoice-lines"][0]["total"] = serde_json::Value::Null;
        let e = convert(v).unwrap_err().to_string();
        assert!(
            e.contains("line 1: field 'quantity' times field 'price' is too large"),
            "{e}"
        );

        let mut v = sample();
        v["total-with-taxes"] = serde_json::Value::Null;
        v["invoice-lines"][0]["total"] = max.into();
        let second = v["invoice-lines"][0].clone();
        v["invoice-lines"].as_array_mut().unwrap().push(second);
        let e = convert(v).unwrap_err().to_string();
        assert!(e.contains("the sum of the lines is too large"), "{e}");
    }

    #[test]
    fn approved_invoice_is_ready_and_any_other_status_is_not() {
        let inv = convert(sample()).unwrap();
        assert_eq!(inv.status, "approved");
        assert_eq!(inv.readiness, Readiness::Ready);

        let mut v = sample();
        v["status"] = "pending_approval".into();
        let inv = convert(v).unwrap();
        assert_eq!(inv.status, "pending_approval");
        assert_eq!(
            inv.readiness,
            Readiness::NotReady("status is 'pending_approval', not approved".into())
        );

        let mut v = sample();
        v.as_object_mut().unwrap().remove("status");
        assert!(!convert(v).unwrap().readiness.is_ready());
    }

    #[test]
    fn credit_note_is_recognised() {
        let mut v = sample();
        v["document-type"] = "Credit Note".into();
        assert_eq!(convert(v).unwrap().kind, InvoiceKind::CreditNote);
    }

    #[test]
    fn missing_invoice_number_is_named() {
        let mut v = sample();
        v.as_object_mut().unwrap().remove("invoice-number");
        assert_eq!(
            convert(v).unwrap_err().to_string(),
            "Coupa invoice 92010: field 'invoice-number' is missing"
        );
    }

    #[test]
    fn bad_currency_is_named() {
        let mut v = sample();
        v["currency"]["code"] = "US".into();
        let e = convert(v).unwrap_err().to_string();
        assert!(e.contains("'currency.code'"), "{e}");
    }

    #[test]
    fn line_without_account_is_named() {
        let mut v = sample();
        v["invoice-lines"][0]
            .as_object_mut()
            .unwrap()
            .remove("account");
        assert_eq!(
            convert(v).unwrap_err().problem,
            "line 1: field 'account' is missing"
        );
    }

    fn po_sample() -> serde_json::Value {
        // The simulator's rendering of a coupa.md §1.8 PO.
        serde_json::json!({
          "id": 12, "created-at": "2025-01-31T22:10:00-07:00", "updated-at": "2025-02-01T09:00:05-07:00",
          "po-number": "PO-1001", "status": "issued", "version": 3, "total": "61.72",
          "currency": { "id": 1, "code": "USD", "decimals": 2 },
          "supplier": { "id": 4, "name": "Fabrikam, Inc.", "number": "SUP-001" },
          "order-lines": [{ "id": 7, "line-num": 1, "type": "OrderQuantityLine", "description": "Paper",
            "quantity": "5", "price": "12.3456", "total": "61.73", "uom": { "code": "EA" },
            "account": { "code": "6100-ADM", "segment-1": "6100", "segment-2": "ADM" } }]
        })
    }

    fn convert_po(v: serde_json::Value) -> Result<PurchaseOrder, ConversionError> {
        let w: wire::PurchaseOrder = serde_json::from_value(v).unwrap();
        purchase_order_from_wire(&w)
    }

    #[test]
    fn purchase_order_converts_with_version_date_and_lines() {
        let po = convert_po(po_sample()).unwrap();
        assert_eq!(po.number, "PO-1001");
        assert_eq!(po.status, "issued");
        assert_eq!(po.revision, Some(3));
        assert_eq!(po.version.to_rfc3339(), "2025-02-01T16:00:05+00:00");
        // created-at's calendar date in the instance offset, not UTC's (Feb 1).
        assert_eq!(po.order_date, NaiveDate::from_ymd_opt(2025, 1, 31));
        assert_eq!(po.supplier.number.as_deref(), Some("SUP-001"));
        let l = &po.lines[0];
        assert_eq!((l.line_num, l.quantity.to_string()), (1, "5".to_string()));
        assert_eq!(l.unit_price.to_string(), "12.3456");
        assert_eq!(l.amount.to_string(), "61.73");
        assert_eq!(l.uom.as_deref(), Some("EA"));
        assert_eq!(l.account.segment(2), Some("ADM"));
    }

    #[test]
    fn purchase_order_order_date_wins_over_created_at() {
        let mut v = po_sample();
        v["order-date"] = "2025-01-15".into();
        assert_eq!(
            convert_po(v).unwrap().order_date,
            NaiveDate::from_ymd_opt(2025, 1, 15)
        );
    }

    #[test]
    fn purchase_order_without_po_number_is_named() {
        let mut v = po_sample();
        v.as_object_mut().unwrap().remove("po-number");
        assert_eq!(
            convert_po(v).unwrap_err().to_string(),
            "Coupa purchase order 12: field 'po-number' is missing"
        );
    }

    #[test]
    fn purchase_order_line_without_quantity_is_named() {
        let mut v = po_sample();
        v["order-lines"][0]
            .as_object_mut()
            .unwrap()
            .remove("quantity");
        assert_eq!(
            convert_po(v).unwrap_err().to_string(),
            "Coupa purchase order 12: line 1: field 'quantity' is missing"
        );
    }

    #[test]
    fn purchase_order_amount_line_is_one_unit_at_the_price() {
        let mut v = po_sample();
        v["order-lines"][0]["type"] = "OrderAmountLine".into();
        v["order-lines"][0]["quantity"] = serde_json::Value::Null;
        v["order-lines"][0]["price"] = "250.00".into();
        v["order-lines"][0]["total"] = "250.00".into();
        let l = &convert_po(v).unwrap().lines[0];
        assert_eq!(
            (l.quantity, l.unit_price.to_string()),
            (Decimal::ONE, "250.00".into())
        );
    }

    #[test]
    fn purchase_order_version_as_text_is_read() {
        let mut v = po_sample();
        v["version"] = "4".into();
        assert_eq!(convert_po(v).unwrap().revision, Some(4));
    }

    #[test]
    fn invoice_line_reads_the_po_line_as_number_or_text() {
        for n in [serde_json::json!(2), serde_json::json!("2")] {
            let mut v = sample();
            v["invoice-lines"][0]["po-number"] = "PO-1001".into();
            v["invoice-lines"][0]["order-line-num"] = n;
            let inv = convert(v).unwrap();
            assert_eq!(inv.lines[0].po_number.as_deref(), Some("PO-1001"));
            assert_eq!(inv.lines[0].po_line_num, Some(2));
        }
    }

    #[test]
    fn invoice_line_po_number_falls_back_to_order_header_num() {
        let mut v = sample();
        v["invoice-lines"][0]["order-header-num"] = "PO-7".into();
        assert_eq!(
            convert(v).unwrap().lines[0].po_number.as_deref(),
            Some("PO-7")
        );
    }

    #[test]
    fn invoice_line_with_a_bad_po_line_is_named() {
        let mut v = sample();
        v["invoice-lines"][0]["order-line-num"] = "two".into();
        assert_eq!(
            convert(v).unwrap_err().problem,
            "line 1: field 'order-line-num': 'two' is not a line number"
        );
    }

    #[test]
    fn credit_note_amounts_keep_their_negative_sign() {
        let mut v = sample();
        v["document-type"] = "Credit Note".into();
        v["is-credit-note"] = true.into();
        v["total-with-taxes"] = "-37.04".into();
        v["invoice-lines"][0]["type"] = "InvoiceQuantityLine".into();
        v["invoice-lines"][0]["quantity"] = "3".into();
        v["invoice-lines"][0]["price"] = "-12.3456".into();
        v["invoice-lines"][0]["total"] = "-37.04".into();
        let inv = convert(v).unwrap();
        assert_eq!(inv.kind, InvoiceKind::CreditNote);
        assert_eq!(inv.total.amount.to_string(), "-37.04");
        assert_eq!(inv.lines[0].unit_price.to_string(), "-12.3456");
        assert_eq!(inv.lines[0].amount.to_string(), "-37.04");
    }

    #[test]
    fn supplier_converts_and_blank_tax_id_is_none() {
        // coupa.md §1.9 sample, trimmed.
        let w: wire::Supplier = serde_json::from_value(serde_json::json!({
            "id": 1, "created-at": "2008-10-27T12:56:38-07:00", "updated-at": "2021-02-19T04:31:18-08:00",
            "name": "Dell_1 (USA)", "display-name": "Dell (USA)", "number": "125844-0",
            "status": "active", "tax-id": ""
        }))
        .unwrap();
        let s = supplier_from_wire(&w).unwrap();
        assert_eq!(s.source_id, "1");
        assert_eq!(s.name, "Dell_1 (USA)");
        assert_eq!(s.number.as_deref(), Some("125844-0"));
        assert_eq!(s.tax_id, None);
    }

    #[test]
    fn supplier_without_a_name_is_named() {
        let w: wire::Supplier = serde_json::from_value(serde_json::json!({"id": 5})).unwrap();
        assert_eq!(
            supplier_from_wire(&w).unwrap_err().to_string(),
            "Coupa supplier 5: field 'name' is missing"
        );
    }

    #[test]
    fn payment_reference_is_found_in_payment_notes() {
        let mut v = sample();
        v["payments"] = serde_json::json!([
            { "id": 1, "amount-paid": "10.00", "notes": "BC-PAY-1 ", "payment-date": "2025-01-20" }
        ]);
        let w: wire::Invoice = serde_json::from_value(v).unwrap();
        assert!(w.has_payment_reference("BC-PAY-1"));
        assert!(!w.has_payment_reference("BC-PAY-2"));
        assert!(!w.has_payment_reference(""));
        let none: wire::Invoice = serde_json::from_value(sample()).unwrap();
        assert!(!none.has_payment_reference("BC-PAY-1"));
    }
}
