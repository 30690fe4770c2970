//! An accounting document → the canonical invoice or credit note: one line per coding row
//! (invoice lines are off by default on a tenant, §3.5, so the coding rows are what is
//! posted), each carrying its G/L account, its dimension codes and its tax; amounts exact and
//! with the sign Basware gives them.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::wire::{AccountingDocument, CodingRow as WireRow};
use crate::model::{
    AccountCoding, CodingRow, Company, Currency, Invoice, InvoiceKind, InvoiceLine, LineKind,
    Money, Readiness, Supplier, TaxLine,
};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConvertError(pub String);

fn required<'a>(v: &'a Option<String>, field: &str) -> Result<&'a str, ConvertError> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConvertError(format!("'{field}' is missing")))
}

fn day(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// A credit note when the document says so (`documentType`, present only on some tenants),
/// when its gross sum is negative, or when its `invoiceTypeCode` is one the configuration
/// names (§3.11.8: no flag on the exported entity). Never from the invoice number.
pub fn is_credit_note(doc: &AccountingDocument, credit_note_types: &[String]) -> bool {
    doc.document_type.as_deref() == Some("CreditNote")
        || doc.gross_sum.is_some_and(|g| g < Decimal::ZERO)
        || doc
            .invoice_type_code
            .as_deref()
            .is_some_and(|t| credit_note_types.iter().any(|c| c == t))
}

fn row_tax(row: &WireRow) -> Vec<TaxLine> {
    match row.tax_sum {
        Some(amount) if !amount.is_zero() || row.tax_code.is_some() => vec![TaxLine {
            code: row.tax_code.clone().filter(|c| !c.is_empty()),
            rate: row.tax_percent,
            amount,
            base: row.net_total,
        }],
        _ => Vec::new(),
    }
}

/// Segment n of a Basware coding, for the integration's mapping rules (`gl_account`,
/// `dimensions` by segment): 1 `accountCode`, 2 `costCenterCode`, 3 `projectCode`,
/// 4–8 `dimCode1`–`dimCode5`; an empty field is an empty segment.
pub const SEGMENTS: [&str; 8] = [
    "accountCode",
    "costCenterCode",
    "projectCode",
    "dimCode1",
    "dimCode2",
    "dimCode3",
    "dimCode4",
    "dimCode5",
];

fn coding_of(account: &str, row: &WireRow) -> AccountCoding {
    let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    AccountCoding {
        code: Some(account.to_string()),
        segments: vec![
            Some(account.to_string()),
            text(&row.cost_center_code),
            text(&row.project_code),
            text(&row.dim_code1),
            text(&row.dim_code2),
            text(&row.dim_code3),
            text(&row.dim_code4),
            text(&row.dim_code5),
        ],
    }
}

fn line(i: usize, doc: &AccountingDocument, row: &WireRow) -> Result<InvoiceLine, ConvertError> {
    let n = row.row_index.map_or(i as i64 + 1, |r| r);
    let account = required(&row.account_code, &format!("codingRows[{n}].accountCode"))?;
    let net = row
        .net_total
        .ok_or_else(|| ConvertError(format!("'codingRows[{n}].netTotal' is missing")))?;
    let coding = coding_of(account, row);
    let tax = row_tax(row);
    Ok(InvoiceLine {
        line_num: u32::try_from(n).unwrap_or(i as u32 + 1),
        description: row
            .account_name
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| doc.description.clone())
            .unwrap_or_else(|| format!("Account {account}")),
        quantity: None,
        unit_price: net,
        amount: net,
        account: coding.clone(),
        po_number: row.order_number.clone().filter(|s| !s.is_empty()),
        po_line_num: None,
        kind: LineKind::Account,
        tax: tax.clone(),
        coding: vec![CodingRow {
            source_id: row.external_code.clone(),
            account: coding,
            dimensions: row.dimension_codes(),
            amount: Some(net),
            percent: None,
            tax,
        }],
    })
}

/// The canonical document, or why it cannot be read.
pub fn invoice_from_wire(
    doc: &AccountingDocument,
    credit_note_types: &[String],
) -> Result<Invoice, ConvertError> {
    let number = required(&doc.invoice_number, "invoiceNumber")?;
    let supplier = required(&doc.supplier_code, "supplierCode")?;
    let currency = Currency::new(required(&doc.currency_code, "currencyCode")?)
        .map_err(|e| ConvertError(format!("'currencyCode': {}", e.0)))?;
    let invoice_date = doc
        .invoice_date
        .map(day)
        .ok_or_else(|| ConvertError("'invoiceDate' is missing".into()))?;
    if doc.coding_rows.is_empty() {
        return Err(ConvertError("the document has no coding rows".into()));
    }
    let lines = doc
        .coding_rows
        .iter()
        .enumerate()
        .map(|(i, r)| line(i, doc, r))
        .collect::<Result<Vec<_>, _>>()?;
    let net: Decimal = lines.iter().map(|l| l.amount).sum();
    let tax: Vec<TaxLine> = match doc.tax_sum1 {
        Some(amount) => vec![TaxLine {
            code: doc.tax_code.clone().filter(|c| !c.is_empty()),
            rate: doc.tax_percent1,
            amount,
            base: doc.net_sum,
        }],
        None => Vec::new(),
    };
    let gross = doc.gross_sum.unwrap_or_else(|| {
        net + lines
            .iter()
            .flat_map(|l| &l.tax)
            .map(|t| t.amount)
            .sum::<Decimal>()
    });
    let status = doc.processing_status.clone().unwrap_or_default();
    // Ready while waiting, and after our own acknowledge (a retried map step reads it again).
    let readiness = match status.as_str() {
        "WaitingForTransfer" | "TransferInProgress" => Readiness::Ready,
        other => Readiness::NotReady(format!(
            "processing status is '{other}', not WaitingForTransfer"
        )),
    };
    Ok(Invoice {
        source_id: doc.invoice_id.clone(),
        version: doc
            .last_updated
            .unwrap_or_else(|| invoice_date.and_time(chrono::NaiveTime::MIN).and_utc()),
        kind: if is_credit_note(doc, credit_note_types) {
            InvoiceKind::CreditNote
        } else {
            InvoiceKind::Invoice
        },
        status,
        number: number.to_string(),
        supplier: Supplier {
            source_id: supplier.to_string(),
            number: Some(supplier.to_string()),
            name: doc
                .supplier_name
                .clone()
                .unwrap_or_else(|| supplier.to_string()),
            tax_id: None,
        },
        invoice_date,
        total: Money {
            amount: gross,
            currency,
        },
        lines,
        readiness,
        company: doc
            .company_code
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(Company::new),
        amounts_include_tax: false,
        tax,
        due_date: doc.due_date.map(day),
        payment_terms: None,
        bank_account: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: serde_json::Value) -> AccountingDocument {
        serde_json::from_value(json).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "invoiceId": "a1", "invoiceNumber": "INV-1", "companyCode": "BW00",
            "supplierCode": "V1", "currencyCode": "EUR", "processingStatus": "WaitingForTransfer",
            "invoiceDate": "2026-12-01T00:00:00.000Z", "grossSum": 124.02, "netSum": 100.01,
            "unknownNewField": {"x": 1},
            "codingRows": [
                {"externalCode": "r1", "rowIndex": 1, "accountCode": "6100", "costCenterCode": "CC1",
                 "netTotal": 60.005, "taxSum": 14.40, "taxCode": "T24", "taxPercent": 24, "dimCode1": ""},
                {"externalCode": "r2", "rowIndex": 2, "accountCode": "6100", "costCenterCode": "CC2",
                 "netTotal": 40.005, "taxSum": 9.61, "taxCode": "T24", "taxPercent": 24}
            ]
        })
    }

    #[test]
    fn each_coding_row_becomes_a_line_with_its_dimensions_and_exact_amount() {
        let inv = invoice_from_wire(&doc(base()), &[]).unwrap();
        assert_eq!(inv.kind, InvoiceKind::Invoice);
        assert_eq!(inv.lines.len(), 2);
        assert_eq!(inv.lines[0].amount, "60.005".parse::<Decimal>().unwrap());
        assert_eq!(
            inv.lines[1].coding[0].dimensions,
            vec![("costCenterCode".to_string(), "CC2".to_string())]
        );
        assert_eq!(inv.total.amount, "124.02".parse::<Decimal>().unwrap());
        assert_eq!(inv.lines[0].account.segment(2), Some("CC1"));
        assert_eq!(inv.lines[0].account.segment(4), None, "an empty dimCode1");
        assert!(inv.readiness.is_ready());
    }

    #[test]
    fn a_negative_gross_sum_or_a_configured_type_code_is_a_credit_note() {
        let mut v = base();
        v["grossSum"] = serde_json::json!(-124.02);
        assert_eq!(
            invoice_from_wire(&doc(v), &[]).unwrap().kind,
            InvoiceKind::CreditNote
        );
        let mut v = base();
        v["invoiceTypeCode"] = serde_json::json!("KG");
        assert_eq!(
            invoice_from_wire(&doc(v), &["KG".into()]).unwrap().kind,
            InvoiceKind::CreditNote
        );
    }

    #[test]
    fn a_row_without_an_account_cannot_be_read() {
        let mut v = base();
        v["codingRows"][1]["accountCode"] = serde_json::json!("");
        let e = invoice_from_wire(&doc(v), &[]).unwrap_err();
        assert!(e.0.contains("accountCode"), "{e}");
    }
}
