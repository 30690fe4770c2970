//! Coupa wire invoice → canonical [`Invoice`]. Every missing or unreadable field is reported by
//! its Coupa name, so a parked document tells finance exactly what to fix.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::wire;
use crate::model::{AccountCoding, Currency, Invoice, InvoiceKind, InvoiceLine, Money, Supplier};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Coupa invoice {id}: {problem}")]
pub struct ConversionError {
    pub id: i64,
    pub problem: String,
}

pub fn invoice_from_wire(w: &wire::Invoice) -> Result<Invoice, ConversionError> {
    let err = |problem: String| ConversionError { id: w.id, problem };
    let missing = |field: &str| err(format!("field '{field}' is missing"));

    let version = instant(
        w.updated_at
            .as_deref()
            .ok_or_else(|| missing("updated-at"))?,
    )
    .map_err(|e| err(format!("field 'updated-at': {e}")))?;
    let number = w
        .invoice_number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| missing("invoice-number"))?
        .to_string();
    let invoice_date = date(
        w.invoice_date
            .as_deref()
            .ok_or_else(|| missing("invoice-date"))?,
    )
    .map_err(|e| err(format!("field 'invoice-date': {e}")))?;
    let code = w
        .currency
        .as_ref()
        .and_then(|c| c.code.as_deref())
        .ok_or_else(|| missing("currency.code"))?;
    let currency = Currency::new(code).map_err(|e| err(format!("field 'currency.code': {e}")))?;
    let supplier = w.supplier.as_ref().ok_or_else(|| missing("supplier"))?;
    let supplier = Supplier {
        source_id: supplier
            .id
            .map(|i| i.to_string())
            .ok_or_else(|| missing("supplier.id"))?,
        number: supplier.number.clone().filter(|n| !n.is_empty()),
        name: supplier.name.clone().unwrap_or_default(),
        tax_id: supplier.tax_id.clone().filter(|t| !t.is_empty()),
    };
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

    Ok(Invoice {
        source_id: w.id.to_string(),
        version,
        kind,
        status: w.status.clone().unwrap_or_default(),
        number,
        supplier,
        invoice_date,
        total: Money {
            amount: total,
            currency,
        },
        lines,
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
        po_number: l.po_number.clone().filter(|p| !p.is_empty()),
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
}
