//! An accounting document resolved for Business Central: the vendor, and per coding row its
//! G/L account and dimension values, by the integration's mapping rules. One BC line per coding
//! row (a line split across cost centres is several rows, so several BC lines), one unit at the
//! row's net amount: exact, and positive on a credit memo.
//!
//! The mapping rules are the integration's `[integrations.mapping]`, read against the Basware
//! coding as segments (`systems::basware::SEGMENTS`): segment 1 `accountCode`, 2
//! `costCenterCode`, 3 `projectCode`, 4–8 `dimCode1`–`dimCode5`.

use rust_decimal::Decimal;

use crate::config::{IntegrationConfig, tables};
use crate::model::{AccountCoding, Invoice, InvoiceKind, Money, ResolvedInvoice, ResolvedLine};
use crate::ports::{Mappings, StoreError};

/// BC "Vendor Invoice No." is Code[35].
const MAX_VENDOR_INVOICE_NUMBER: usize = 35;
/// BC line `description` is Text[100].
const MAX_DESCRIPTION: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A person has to add a mapping or fix the coding; the text says which.
    #[error("{0}")]
    Unresolved(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn unresolved(s: String) -> ResolveError {
    ResolveError::Unresolved(s)
}

/// The BC vendor of a Basware supplier code: the supplier mapping table, else the code itself
/// (Basware's vendor list is imported from BC, so its codes are BC vendor numbers; one BC
/// does not have is refused by BC and parked with BC's words).
async fn vendor_of<M: Mappings>(
    inv: &Invoice,
    integration: &IntegrationConfig,
    mappings: &M,
) -> Result<String, ResolveError> {
    let code = inv
        .supplier
        .number
        .clone()
        .unwrap_or_else(|| inv.supplier.source_id.clone());
    Ok(mappings
        .mapping(&tables::supplier(&integration.name), &code)
        .await?
        .unwrap_or(code))
}

/// The G/L account of a coding: the account-code table, else the `gl_account` segment rule
/// (looked up in the G/L table when it translates).
async fn gl_of<M: Mappings>(
    account: &AccountCoding,
    integration: &IntegrationConfig,
    mappings: &M,
    n: u32,
) -> Result<String, ResolveError> {
    if let Some(code) = account.code.as_deref()
        && let Some(gl) = mappings
            .mapping(&tables::account_code(&integration.name), code)
            .await?
    {
        return Ok(gl);
    }
    let rule = &integration.mapping.gl_account;
    let value = account.segment(rule.segment).ok_or_else(|| {
        unresolved(format!(
            "coding row {n}: no {} to take the G/L account from",
            segment_name(rule.segment)
        ))
    })?;
    if !rule.translate {
        return Ok(value.to_string());
    }
    mappings
        .mapping(&tables::gl_account(&integration.name), value)
        .await?
        .ok_or_else(|| {
            unresolved(format!(
                "coding row {n}: no Business Central G/L account mapped for {} '{value}'",
                segment_name(rule.segment)
            ))
        })
}

fn segment_name(segment: usize) -> &'static str {
    segment
        .checked_sub(1)
        .and_then(|i| crate::systems::basware::SEGMENTS.get(i))
        .copied()
        .unwrap_or("(no such coding field)")
}

async fn dimensions_of<M: Mappings>(
    account: &AccountCoding,
    integration: &IntegrationConfig,
    mappings: &M,
    n: u32,
) -> Result<Vec<(String, String)>, ResolveError> {
    let mut out = Vec::new();
    for rule in &integration.mapping.dimensions {
        let Some(value) = account.segment(rule.segment) else {
            continue;
        };
        let value = if rule.translate {
            mappings
                .mapping(&tables::dimension(&integration.name, &rule.dimension), value)
                .await?
                .ok_or_else(|| {
                    unresolved(format!(
                        "coding row {n}: no Business Central value of dimension {} mapped for {} '{value}'",
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

/// Resolves `inv` (one line per coding row, as `systems::basware` converts it).
pub async fn invoice<M: Mappings>(
    inv: &Invoice,
    integration: &IntegrationConfig,
    mappings: &M,
) -> Result<ResolvedInvoice, ResolveError> {
    if inv.number.chars().count() > MAX_VENDOR_INVOICE_NUMBER {
        return Err(unresolved(format!(
            "invoice number '{}' is longer than {MAX_VENDOR_INVOICE_NUMBER} characters, the limit of Business Central's vendor invoice number",
            inv.number
        )));
    }
    let vendor_number = vendor_of(inv, integration, mappings).await?;
    let mixed_signs = inv.lines.iter().any(|l| l.amount > Decimal::ZERO)
        && inv.lines.iter().any(|l| l.amount < Decimal::ZERO);
    let mut lines = Vec::with_capacity(inv.lines.len());
    for l in &inv.lines {
        let n = l.line_num;
        let gl_account = gl_of(&l.account, integration, mappings, n).await?;
        let dimensions = dimensions_of(&l.account, integration, mappings, n).await?;
        // The sign of a credit note's amounts is not documented (basware.md §3.11.8): negative
        // (the simulator's strict reading) and positive (a tenant that marks credit notes by
        // `invoiceTypeCode` only) are both read; a BC credit memo's lines are positive. Rows of
        // both signs on one credit note cannot be told apart from a mistake.
        let unit_cost = match inv.kind {
            InvoiceKind::Invoice => l.amount,
            InvoiceKind::CreditNote if mixed_signs => {
                return Err(unresolved(format!(
                    "coding row {n}: the credit note has rows of both signs ({}); a Business Central credit memo cannot tell which are credits",
                    l.amount
                )));
            }
            InvoiceKind::CreditNote => l.amount.abs(),
        };
        lines.push(ResolvedLine {
            description: l.description.chars().take(MAX_DESCRIPTION).collect(),
            gl_account,
            quantity: Decimal::ONE,
            unit_cost,
            dimensions,
        });
    }
    let total = match inv.kind {
        InvoiceKind::Invoice => inv.total.clone(),
        InvoiceKind::CreditNote => Money {
            amount: inv.total.amount.abs(),
            currency: inv.total.currency.clone(),
        },
    };
    Ok(ResolvedInvoice {
        source_id: inv.source_id.clone(),
        version: inv.version,
        kind: inv.kind,
        vendor_number,
        vendor_invoice_number: inv.number.clone(),
        supplier_name: inv.supplier.name.clone(),
        invoice_date: inv.invoice_date,
        total,
        lines,
    })
}
