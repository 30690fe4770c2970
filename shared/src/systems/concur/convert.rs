//! Concur financial documents → the canonical model. Invoice payment requests become
//! [`Invoice`]s (one line per `lineItem`, one coding row per allocation); expense reports
//! become [`ExpenseReport`]s with their journal rows (§2.7.1). Account codings carry the
//! account as segment 1 and `allocationCustom1Code`…`allocationCustom20Code` as segments
//! 2…21 ([`SEGMENTS`]), which the integration's mapping rules read.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::wire::{self, ALLOCATION_CUSTOM_FIELDS, code, custom_code, date_of};
use crate::model::{
    AccountCoding, CodingRow, Currency, ExpenseEntry, ExpenseReport, ExpenseType, Invoice,
    InvoiceKind, InvoiceLine, JournalRow, LineKind, Money, PaidBy, Party, PartyRole, PaymentType,
    Readiness, Supplier,
};

/// Segment names, for messages: 1 the account, 2…21 the allocation custom fields.
pub fn segment_name(n: usize) -> String {
    match n {
        1 => "account code".into(),
        n if (2..=ALLOCATION_CUSTOM_FIELDS + 1).contains(&n) => {
            format!("allocationCustom{}Code", n - 1)
        }
        _ => "(no such coding field)".into(),
    }
}

fn coding(
    account: Option<String>,
    rest: &std::collections::BTreeMap<String, Value>,
) -> AccountCoding {
    let mut segments = vec![account.clone()];
    segments.extend((1..=ALLOCATION_CUSTOM_FIELDS).map(|n| custom_code(rest, n)));
    AccountCoding {
        code: account,
        segments,
    }
}

fn currency(code_text: Option<&str>, what: &str) -> Result<Currency, String> {
    let c = code(code_text).ok_or_else(|| format!("no {what} currency"))?;
    Currency::new(&c).map_err(|e| format!("{what} currency: {}", e.0))
}

/// Whether FIS releases the document for posting: READY, or ACKNOWLEDGED (by us: a document
/// re-read after its acknowledgement, §2.7.3). Anything else (confirmed, recalled, paid…) is
/// not posted again.
pub fn readiness(status: Option<&str>) -> Readiness {
    match status.map(str::trim) {
        Some("READY") | Some("ACKNOWLEDGED") => Readiness::Ready,
        Some(other) => Readiness::NotReady(format!("Concur document status is {other}")),
        None => Readiness::NotReady("Concur gave no document status".into()),
    }
}

fn instant(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An invoice payment request (§2.3).
pub fn invoice_from_wire(fi: &wire::FiDocument, doc: &Value) -> Result<Invoice, String> {
    let d: wire::InvoiceDocument =
        serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let h = &d.request_header;
    let number =
        code(h.vendor_invoice_number.as_deref()).ok_or("the request has no vendorInvoiceNumber")?;
    let vendor = d.vendor.clone().unwrap_or_default();
    let vendor_code =
        code(vendor.vendor_code.as_deref()).ok_or("the request names no vendorCode")?;
    let cur = currency(h.currency_alpha_code.as_deref(), "request")?;
    let invoice_date = h
        .invoice_date
        .as_deref()
        .and_then(date_of)
        .ok_or("the request has no readable invoiceDate")?;
    let mut lines = Vec::new();
    for (i, l) in d.line_item.iter().enumerate() {
        let line_num = l.line_item_sequence_order.unwrap_or(i as u32 + 1);
        let quantity = l.line_item_quantity;
        let unit_price = l.line_item_unit_price.unwrap_or_default();
        let rows: Vec<CodingRow> = l
            .allocation
            .iter()
            .map(|a| {
                let journal = a.journal.clone().unwrap_or_default();
                let account = code(journal.account_code.as_deref())
                    .or_else(|| code(a.allocation_account_code.as_deref()));
                CodingRow {
                    source_id: a.allocation_key.clone(),
                    account: coding(account, &a.rest),
                    dimensions: Vec::new(),
                    amount: journal.amount_net.or(journal.amount_gross),
                    percent: a.allocation_percentage,
                    tax: Vec::new(),
                }
            })
            .collect();
        let from_rows: Option<Decimal> = rows.iter().map(|r| r.amount).sum();
        let amount = from_rows
            .unwrap_or_else(|| (quantity.unwrap_or(Decimal::ONE) * unit_price).round_dp(2));
        lines.push(InvoiceLine {
            line_num,
            description: l
                .line_item_description
                .clone()
                .or_else(|| l.expense_type_name.clone())
                .unwrap_or_default(),
            quantity,
            unit_price,
            amount,
            account: AccountCoding {
                code: code(l.expense_type_code.as_deref()),
                segments: Vec::new(),
            },
            po_number: None,
            po_line_num: None,
            kind: LineKind::Account,
            tax: Vec::new(),
            coding: rows,
        });
    }
    let total = h
        .request_total
        .or(h.amount_net_invoice)
        .ok_or("the request has no requestTotal")?;
    Ok(Invoice {
        source_id: fi.id.clone(),
        version: instant(h.submit_date.as_deref()).unwrap_or(DateTime::UNIX_EPOCH),
        kind: InvoiceKind::Invoice,
        status: fi.doc_status.clone().unwrap_or_default(),
        number,
        supplier: Supplier {
            source_id: vendor_code.clone(),
            number: Some(vendor_code),
            name: vendor.vendor_name.clone().unwrap_or_default(),
            tax_id: None,
        },
        invoice_date,
        total: Money {
            amount: total,
            currency: cur,
        },
        lines,
        readiness: readiness(fi.doc_status.as_deref()),
        company: None,
        amounts_include_tax: false,
        tax: Vec::new(),
        due_date: h.payment_due_date.as_deref().and_then(date_of),
        payment_terms: None,
        bank_account: None,
    })
}

/// Who paid an entry, from its payment type key (§2.7.1): an unknown key is `Unknown`, which
/// the flow never pays to the employee.
pub fn paid_by(pat_key: &str) -> PaidBy {
    match pat_key {
        "CASH" => PaidBy::Employee,
        "IBCP" | "CBCP" => PaidBy::CompanyCard,
        "COPD" => PaidBy::Company,
        _ => PaidBy::Unknown,
    }
}

/// An expense report (§2.7.1), with its journal rows.
pub fn expense_from_wire(fi: &wire::FiDocument, doc: &Value) -> Result<ExpenseReport, String> {
    let d: wire::ExpenseDocument =
        serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let r = &d.report;
    let report_id = code(r.report_id.as_deref()).ok_or("the report has no reportId")?;
    let employee_id =
        code(d.employee.employee_id.as_deref()).ok_or("the report's employee has no employeeId")?;
    let cur = currency(r.employee_currency_alpha_code.as_deref(), "report")?;
    let submitted = instant(r.report_submit_date.as_deref());
    let report_date = r.report_submit_date.as_deref().and_then(date_of);
    let mut entries = Vec::new();
    for (i, e) in d.expense_entry.iter().enumerate() {
        let n = i + 1;
        let date = e
            .entry_date
            .as_deref()
            .and_then(date_of)
            .or(report_date)
            .ok_or_else(|| format!("entry {n} has no readable entryDate"))?;
        let pat = code(e.report_entry_pat_key.as_deref()).unwrap_or_default();
        let mut allocations = Vec::new();
        let mut journal = Vec::new();
        for a in &e.allocation {
            allocations.push(CodingRow {
                source_id: a.allocation_id.clone(),
                account: coding(None, &a.rest),
                dimensions: Vec::new(),
                amount: None,
                percent: a.allocation_percentage,
                tax: Vec::new(),
            });
            for j in &a.journal {
                let amount = j
                    .amount_gross
                    .ok_or_else(|| format!("entry {n}: a journal row has no amountGross"))?;
                journal.push(JournalRow {
                    payer: code(j.journal_payer.as_deref()).unwrap_or_default(),
                    payee: code(j.journal_payee.as_deref()).unwrap_or_default(),
                    coding: CodingRow {
                        source_id: a.allocation_id.clone(),
                        account: coding(code(j.journal_account_code.as_deref()), &a.rest),
                        dimensions: Vec::new(),
                        amount: Some(amount),
                        percent: a.allocation_percentage,
                        tax: Vec::new(),
                    },
                    card_amount: j.amount_gross_card,
                });
            }
        }
        entries.push(ExpenseEntry {
            source_id: code(e.entry_id.as_deref()),
            date,
            expense_type: ExpenseType {
                code: code(e.expense_type_code.as_deref()).unwrap_or_default(),
                name: e.expense_type_name.clone(),
            },
            description: code(e.entry_description.as_deref()),
            merchant: code(e.entry_vendor_description.as_deref()),
            amount: Money {
                amount: e.entry_approved_amount.unwrap_or_default(),
                currency: cur.clone(),
            },
            transaction_amount: None,
            amounts_include_tax: true,
            tax: Vec::new(),
            allocations,
            payment_type: PaymentType {
                paid_by: paid_by(&pat),
                code: pat,
            },
            personal: code(e.entry_is_personal.as_deref()).as_deref() == Some("Y"),
            journal,
        });
    }
    let name = [
        d.employee.employee_first_name.as_deref(),
        d.employee.employee_last_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    Ok(ExpenseReport {
        source_id: fi.id.clone(),
        version: submitted,
        report_id,
        name: code(r.report_name.as_deref()),
        company: None,
        employee: Party {
            source_id: employee_id.clone(),
            role: PartyRole::Employee,
            number: Some(employee_id),
            name,
            ..Party::default()
        },
        readiness: readiness(fi.doc_status.as_deref()),
        status: fi.doc_status.clone().unwrap_or_default(),
        report_date,
        total: Money {
            amount: r.total_approved_amount.unwrap_or_default(),
            currency: cur,
        },
        entries,
    })
}
