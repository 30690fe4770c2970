//! Resolving a canonical invoice against the mapping rules and tables: vendor, G/L account and
//! dimension values per line. What cannot be resolved is named exactly, for the parked reason.

use rust_decimal::Decimal;

use crate::config::{IntegrationConfig, SupplierKey, tables};
use crate::model::{Invoice, ResolvedInvoice, ResolvedLine};
use crate::ports::{Mappings, StoreError};

/// BC "Vendor Invoice No." is Code[35]; a longer one would be refused at create.
pub const MAX_VENDOR_INVOICE_NUMBER: usize = 35;
/// BC line `description` is Text[100].
const MAX_DESCRIPTION: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A person has to add a mapping or fix the document; the text says which.
    #[error("{0}")]
    Unresolved(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn invoice<M: Mappings>(
    inv: &Invoice,
    integration: &IntegrationConfig,
    mappings: &M,
) -> Result<ResolvedInvoice, ResolveError> {
    let name = &integration.name;
    let rules = &integration.mapping;
    let unresolved = |s: String| ResolveError::Unresolved(s);

    if inv.number.chars().count() > MAX_VENDOR_INVOICE_NUMBER {
        return Err(unresolved(format!(
            "invoice number '{}' is longer than {MAX_VENDOR_INVOICE_NUMBER} characters, the limit of Business Central's vendor invoice number",
            inv.number
        )));
    }

    let s = &inv.supplier;
    let (key_name, key) = match rules.supplier_key {
        SupplierKey::Number => ("number", s.number.clone()),
        SupplierKey::Id => ("id", Some(s.source_id.clone())),
        SupplierKey::TaxId => ("tax id", s.tax_id.clone()),
    };
    let key = key.ok_or_else(|| {
        unresolved(format!(
            "Coupa supplier '{}' (id {}) has no {key_name}, which the supplier mapping is keyed by",
            s.name, s.source_id
        ))
    })?;
    let vendor_number = mappings
        .mapping(&tables::supplier(name), &key)
        .await?
        .ok_or_else(|| {
            unresolved(format!(
                "no Business Central vendor mapped for Coupa supplier '{}' ({key_name} {key})",
                s.name
            ))
        })?;

    let mut lines = Vec::with_capacity(inv.lines.len());
    for l in &inv.lines {
        let n = l.line_num;
        // An exact account-code mapping wins over the segment rule.
        let exact = match l.account.code.as_deref() {
            Some(code) => mappings.mapping(&tables::account_code(name), code).await?,
            None => None,
        };
        let gl_account = match exact {
            Some(gl) => gl,
            None => segment_gl(mappings, integration, l, n).await?,
        };
        let mut dimensions = Vec::new();
        for rule in &rules.dimensions {
            let Some(value) = l.account.segment(rule.segment) else {
                continue;
            };
            let value = if rule.translate {
                mappings.mapping(&tables::dimension(name, &rule.dimension), value).await?.ok_or_else(|| {
                    unresolved(format!(
                        "line {n}: no Business Central value of dimension {} mapped for account segment-{} '{value}'",
                        rule.dimension, rule.segment
                    ))
                })?
            } else {
                value.to_string()
            };
            dimensions.push((rule.dimension.clone(), value));
        }
        // An amount-only line becomes one unit at its amount: BC posts only lines with a quantity.
        let (quantity, unit_cost) = match l.quantity {
            Some(q) if q != Decimal::ZERO => (q, l.unit_price),
            _ => (Decimal::ONE, l.amount),
        };
        lines.push(ResolvedLine {
            description: l.description.chars().take(MAX_DESCRIPTION).collect(),
            gl_account,
            quantity,
            unit_cost,
            dimensions,
        });
    }

    Ok(ResolvedInvoice {
        source_id: inv.source_id.clone(),
        version: inv.version,
        kind: inv.kind,
        vendor_number,
        vendor_invoice_number: inv.number.clone(),
        supplier_name: s.name.clone(),
        invoice_date: inv.invoice_date,
        total: inv.total.clone(),
        lines,
    })
}

async fn segment_gl<M: Mappings>(
    mappings: &M,
    integration: &IntegrationConfig,
    l: &crate::model::InvoiceLine,
    n: u32,
) -> Result<String, ResolveError> {
    let rule = &integration.mapping.gl_account;
    let value = l.account.segment(rule.segment).ok_or_else(|| {
        ResolveError::Unresolved(format!(
            "line {n}: account '{}' has no segment-{} to take the G/L account from",
            l.account.code.as_deref().unwrap_or("(no code)"),
            rule.segment
        ))
    })?;
    if !rule.translate {
        return Ok(value.to_string());
    }
    mappings
        .mapping(&tables::gl_account(&integration.name), value)
        .await?
        .ok_or_else(|| {
            ResolveError::Unresolved(format!(
                "line {n}: no Business Central G/L account mapped for account segment-{} '{value}'",
                rule.segment
            ))
        })
}
