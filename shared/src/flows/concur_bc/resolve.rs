//! Concur documents resolved for Business Central by the integration's mapping rules.
//!
//! Codings (`systems::concur::convert`): segment 1 is the account code (the journal's
//! `accountCode` / `journalAccountCode`, else `allocationAccountCode`), segments 2…21 are
//! `allocationCustom1Code`…`allocationCustom20Code`. Dimensions come from the allocation,
//! never from the employee section (§2.7.2: "should NEVER be picked up from the Employee
//! Entry section").
//!
//! G/L account of a row: the account-code table, else the `gl_account` segment rule (through
//! the G/L table when it translates); a row without an account code takes its expense type's
//! account from the expense-type table.
//!
//! Invoice payment request → one BC purchase invoice, one line per allocation, against the
//! vendor mapped from `vendorCode` (the supplier table, else the code itself: vendors are sent
//! to Concur from BC, so their codes are BC vendor numbers).
//!
//! Expense report → one BC purchase invoice against the employee's vendor (the employee table,
//! else the `employeeId`, §2.7.1 "often also serves as the employee's Vendor ID") holding the
//! rows the company owes the employee, credits netted (§2.7.1's strict rule: payee `EMPL` rows
//! plus payer `EMPL` rows, which are negative); and, per card payee code configured in
//! `card_vendors`, one BC purchase invoice against that issuer's vendor with the rows owed to
//! it (`amountGrossCard` when given). Personal entries' `EMPL`-payee rows, `COPD`, and codes we
//! do not know are never billed to the employee: they are named in `left_out`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::{IntegrationConfig, tables};
use crate::model::{
    AccountCoding, ExpenseReport, Invoice, InvoiceKind, Money, ResolvedInvoice, ResolvedLine,
};
use crate::ports::{Mappings, StoreError};
use crate::systems::concur::convert::segment_name;

/// BC "Vendor Invoice No." is Code[35].
const MAX_VENDOR_INVOICE_NUMBER: usize = 35;
/// BC line `description` is Text[100].
const MAX_DESCRIPTION: usize = 100;
/// Who the company owes on an employee's purchase invoice.
pub const EMPLOYEE: &str = "EMPL";

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A person has to add a mapping or fix the document; the text says which.
    #[error("{0}")]
    Unresolved(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn unresolved(s: String) -> ResolveError {
    ResolveError::Unresolved(s)
}

/// One BC purchase invoice of an expense report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDoc {
    /// `EMPL` for the employee's invoice, else the card payee code (`IBCP`, `CBCP`).
    pub payee: String,
    pub invoice: ResolvedInvoice,
}

/// An expense report resolved: its BC documents, and the rows not posted (with why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedReport {
    pub docs: Vec<ReportDoc>,
    pub left_out: Vec<String>,
}

async fn gl_of<M: Mappings>(
    account: &AccountCoding,
    expense_type: Option<&str>,
    integration: &IntegrationConfig,
    mappings: &M,
    what: &str,
) -> Result<String, ResolveError> {
    let name = &integration.name;
    if let Some(code) = account.code.as_deref()
        && let Some(gl) = mappings.mapping(&tables::account_code(name), code).await?
    {
        return Ok(gl);
    }
    let rule = &integration.mapping.gl_account;
    if let Some(value) = account.segment(rule.segment) {
        if !rule.translate {
            return Ok(value.to_string());
        }
        return mappings
            .mapping(&tables::gl_account(name), value)
            .await?
            .ok_or_else(|| {
                unresolved(format!(
                    "{what}: no Business Central G/L account mapped for {} '{value}'",
                    segment_name(rule.segment)
                ))
            });
    }
    match expense_type.filter(|t| !t.is_empty()) {
        Some(t) => mappings
            .mapping(&tables::expense_type(name), t)
            .await?
            .ok_or_else(|| {
                unresolved(format!(
                    "{what}: no account code, and no Business Central G/L account mapped for expense type '{t}'"
                ))
            }),
        None => Err(unresolved(format!(
            "{what}: no {} and no expense type to take the G/L account from",
            segment_name(rule.segment)
        ))),
    }
}

async fn dimensions_of<M: Mappings>(
    account: &AccountCoding,
    integration: &IntegrationConfig,
    mappings: &M,
    what: &str,
) -> Result<Vec<(String, String)>, ResolveError> {
    let mut out = Vec::new();
    for rule in &integration.mapping.dimensions {
        let Some(value) = account.segment(rule.segment) else {
            continue;
        };
        let value =
            if rule.translate {
                mappings
                .mapping(&tables::dimension(&integration.name, &rule.dimension), value)
                .await?
                .ok_or_else(|| {
                    unresolved(format!(
                        "{what}: no Business Central value of dimension {} mapped for {} '{value}'",
                        rule.dimension,
                        segment_name(rule.segment)
                    ))
                })?
            } else {
                value.to_string()
            };
        out.push((rule.dimension.clone(), value));
    }
    Ok(out)
}

fn check_number(number: &str) -> Result<(), ResolveError> {
    if number.chars().count() > MAX_VENDOR_INVOICE_NUMBER {
        return Err(unresolved(format!(
            "document number '{number}' is longer than {MAX_VENDOR_INVOICE_NUMBER} characters, the limit of Business Central's vendor invoice number"
        )));
    }
    Ok(())
}

/// An invoice payment request: one BC line per allocation.
pub async fn invoice<M: Mappings>(
    inv: &Invoice,
    integration: &IntegrationConfig,
    mappings: &M,
) -> Result<ResolvedInvoice, ResolveError> {
    check_number(&inv.number)?;
    let code = inv
        .supplier
        .number
        .clone()
        .unwrap_or_else(|| inv.supplier.source_id.clone());
    let vendor_number = mappings
        .mapping(&tables::supplier(&integration.name), &code)
        .await?
        .unwrap_or(code);
    let mut lines = Vec::new();
    for l in &inv.lines {
        let n = l.line_num;
        let expense_type = l.account.code.as_deref();
        let description: String = l.description.chars().take(MAX_DESCRIPTION).collect();
        if l.coding.is_empty() {
            let what = format!("line {n}");
            lines.push(ResolvedLine {
                description,
                gl_account: gl_of(
                    &AccountCoding::default(),
                    expense_type,
                    integration,
                    mappings,
                    &what,
                )
                .await?,
                quantity: Decimal::ONE,
                unit_cost: l.amount,
                dimensions: Vec::new(),
            });
            continue;
        }
        for (k, row) in l.coding.iter().enumerate() {
            let what = format!("line {n} allocation {}", k + 1);
            let amount = match (row.amount, row.percent) {
                (Some(a), _) => a,
                (None, Some(p)) => (l.amount * p / Decimal::ONE_HUNDRED).round_dp(2),
                (None, None) => l.amount,
            };
            lines.push(ResolvedLine {
                description: description.clone(),
                gl_account: gl_of(&row.account, expense_type, integration, mappings, &what).await?,
                quantity: Decimal::ONE,
                unit_cost: amount,
                dimensions: dimensions_of(&row.account, integration, mappings, &what).await?,
            });
        }
    }
    let sum: Decimal = lines.iter().map(|l| l.unit_cost).sum();
    if sum != inv.total.amount {
        return Err(unresolved(format!(
            "the allocations add up to {sum}, the request total is {} {}",
            inv.total.amount, inv.total.currency
        )));
    }
    Ok(ResolvedInvoice {
        source_id: inv.source_id.clone(),
        version: inv.version,
        kind: InvoiceKind::Invoice,
        vendor_number,
        vendor_invoice_number: inv.number.clone(),
        supplier_name: inv.supplier.name.clone(),
        invoice_date: inv.invoice_date,
        total: inv.total.clone(),
        lines,
    })
}

/// An expense report: one BC document per party the company owes (see the module doc).
pub async fn expense<M: Mappings>(
    report: &ExpenseReport,
    integration: &IntegrationConfig,
    card_vendors: &BTreeMap<String, String>,
    mappings: &M,
) -> Result<ResolvedReport, ResolveError> {
    let employee_id = report
        .employee
        .number
        .clone()
        .unwrap_or_else(|| report.employee.source_id.clone());
    let employee_vendor = mappings
        .mapping(&tables::employee(&integration.name), &employee_id)
        .await?
        .unwrap_or_else(|| employee_id.clone());
    let date = report
        .report_date
        .or_else(|| report.entries.iter().map(|e| e.date).max())
        .ok_or_else(|| unresolved("the report has no date".into()))?;
    // payee → lines, in the order first seen (the employee first).
    let mut by_payee: Vec<(String, Vec<ResolvedLine>)> = vec![(EMPLOYEE.into(), Vec::new())];
    let mut left_out = Vec::new();
    for (i, e) in report.entries.iter().enumerate() {
        let n = i + 1;
        let label = [
            e.expense_type
                .name
                .as_deref()
                .unwrap_or(&e.expense_type.code),
            &e.date.to_string(),
            e.merchant.as_deref().unwrap_or(""),
        ]
        .join(" ");
        for (k, row) in e.journal.iter().enumerate() {
            let what = format!("entry {n} journal row {}", k + 1);
            let amount = row.coding.amount.unwrap_or_default();
            let (payee, amount) = match (row.payer.as_str(), row.payee.as_str()) {
                (_, EMPLOYEE) if e.personal => {
                    left_out.push(format!(
                        "{what}: a personal expense ({} {amount}) is not reimbursed",
                        row.payer
                    ));
                    continue;
                }
                // Owed to the employee, or (payer EMPL) owed back by the employee: netted.
                (_, EMPLOYEE) | (EMPLOYEE, _) => (EMPLOYEE.to_string(), amount),
                (_, card @ ("IBCP" | "CBCP")) => {
                    if !card_vendors.contains_key(card) {
                        left_out.push(format!(
                            "{what}: {amount} owed to the {card} card issuer, which has no vendor configured (card_vendors)"
                        ));
                        continue;
                    }
                    (card.to_string(), row.card_amount.unwrap_or(amount))
                }
                (payer, payee) => {
                    // COPD (company paid) and codes not documented (§2.7.1 [U]): nobody is
                    // owed here, never the employee.
                    left_out.push(format!(
                        "{what}: {payer} → {payee} {amount} is not owed to the employee or a configured card issuer"
                    ));
                    continue;
                }
            };
            if amount.is_zero() {
                continue;
            }
            let line = ResolvedLine {
                description: label.chars().take(MAX_DESCRIPTION).collect(),
                gl_account: gl_of(
                    &row.coding.account,
                    Some(e.expense_type.code.as_str()),
                    integration,
                    mappings,
                    &what,
                )
                .await?,
                quantity: Decimal::ONE,
                unit_cost: amount,
                dimensions: dimensions_of(&row.coding.account, integration, mappings, &what)
                    .await?,
            };
            match by_payee.iter_mut().find(|(p, _)| *p == payee) {
                Some((_, lines)) => lines.push(line),
                None => by_payee.push((payee, vec![line])),
            }
        }
    }
    let mut docs = Vec::new();
    for (payee, lines) in by_payee {
        let total: Decimal = lines.iter().map(|l| l.unit_cost).sum();
        if lines.is_empty() || total.is_zero() {
            continue;
        }
        if total < Decimal::ZERO {
            return Err(unresolved(format!(
                "{} owes the company {} {} on this report: a purchase invoice cannot carry that",
                if payee == EMPLOYEE {
                    "the employee".to_string()
                } else {
                    format!("the {payee} card issuer")
                },
                -total,
                report.total.currency
            )));
        }
        let (vendor_number, number, name) = if payee == EMPLOYEE {
            (
                employee_vendor.clone(),
                report.report_id.clone(),
                report.employee.name.clone(),
            )
        } else {
            (
                card_vendors[&payee].clone(),
                format!("{}-{payee}", report.report_id),
                format!("{payee} card issuer"),
            )
        };
        check_number(&number)?;
        docs.push(ReportDoc {
            invoice: ResolvedInvoice {
                // The ledger's id of this BC document: one per report and payee.
                source_id: format!("{}-{payee}", report.source_id),
                version: report.version.unwrap_or(chrono::DateTime::UNIX_EPOCH),
                kind: InvoiceKind::Invoice,
                vendor_number,
                vendor_invoice_number: number,
                supplier_name: name,
                invoice_date: date,
                total: Money {
                    amount: total,
                    currency: report.total.currency.clone(),
                },
                lines,
            },
            payee,
        });
    }
    if docs.is_empty() {
        return Err(unresolved(format!(
            "nothing on this report is owed to the employee or a configured card issuer{}",
            if left_out.is_empty() {
                String::new()
            } else {
                format!(" ({})", left_out.join("; "))
            }
        )));
    }
    Ok(ResolvedReport { docs, left_out })
}
