//! Resolving a Coupa invoice for F&O under the integration's mapping rules: the legal entity
//! (an account segment looked up in `mapping.legal_entities`, else the integration's company),
//! the vendor account (the supplier mapping table), and per line the main account and the
//! dimension values (account segments), rendered later as F&O's ledger display string. What
//! cannot be resolved is named exactly, for the parked reason.

use rust_decimal::Decimal;

use crate::config::{IntegrationConfig, SupplierKey, tables};
use crate::model::{AccountCoding, Invoice, InvoiceKind, ResolvedInvoice, ResolvedLine, Supplier};
use crate::ports::{Mappings, StoreError};

/// B9.3: no documented maximum; the strict assumption is 20 characters. Refused before
/// sending, never cut (a cut number would be another invoice).
pub const MAX_INVOICE_NUMBER: usize = 20;
/// `LineDescription`: no length in the fact sheet; 60 is F&O's usual description length
/// [assumption], the rest is cut (a description identifies nothing).
pub(super) const MAX_DESCRIPTION: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A person has to add a mapping or fix the document; the text says which.
    #[error("{0}")]
    Unresolved(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The legal entity (`dataAreaId`, lower-case) an invoice goes to.
pub fn legal_entity(
    inv: &Invoice,
    integration: &IntegrationConfig,
    default: Option<&str>,
) -> Result<String, ResolveError> {
    legal_entity_of(inv.lines.first().map(|l| &l.account), integration, default)
}

/// The legal entity a document goes to, by the account of its first line.
pub fn legal_entity_of(
    first_account: Option<&AccountCoding>,
    integration: &IntegrationConfig,
    default: Option<&str>,
) -> Result<String, ResolveError> {
    let m = &integration.mapping;
    if let Some(seg) = m.legal_entity_segment {
        let value = first_account.and_then(|a| a.segment(seg)).ok_or_else(|| {
            ResolveError::Unresolved(format!(
                "the first line's account has no segment-{seg}, which names the F&O legal entity"
            ))
        })?;
        return m
            .legal_entities
            .get(value)
            .map(|le| le.to_lowercase())
            .ok_or_else(|| {
                ResolveError::Unresolved(format!(
                    "no F&O legal entity mapped for account segment-{seg} '{value}' (mapping.legal_entities)"
                ))
            });
    }
    default.map(str::to_lowercase).ok_or_else(|| {
        ResolveError::Unresolved(
            "no F&O legal entity: set the integration's `company`, the system's \
             `default_legal_entity`, or `mapping.legal_entity_segment`"
                .into(),
        )
    })
}

pub async fn invoice<M: Mappings>(
    inv: &Invoice,
    integration: &IntegrationConfig,
    mappings: &M,
) -> Result<ResolvedInvoice, ResolveError> {
    let unresolved = ResolveError::Unresolved;
    if inv.number.chars().count() > MAX_INVOICE_NUMBER {
        return Err(unresolved(format!(
            "invoice number '{}' is longer than {MAX_INVOICE_NUMBER} characters, the limit assumed for F&O's vendor invoice number",
            inv.number
        )));
    }
    let vendor_number = vendor_of(&inv.supplier, integration, mappings).await?;
    let mut lines = Vec::with_capacity(inv.lines.len());
    for l in &inv.lines {
        let n = l.line_num;
        if inv.kind == InvoiceKind::CreditNote && l.amount > Decimal::ZERO {
            return Err(unresolved(format!(
                "line {n}: a credit note line with a positive amount ({}) cannot be a negative F&O invoice line",
                l.amount
            )));
        }
        let main_account = main_account_of(&l.account, integration, mappings, n).await?;
        let dimensions = dimensions_of(&l.account, integration, mappings, n).await?;
        // F&O takes a non-stock line's net amount: one unit at the source's line total, so no
        // rounding of quantity × price happens here (credit notes: the sign is the writer's).
        lines.push(ResolvedLine {
            description: l.description.chars().take(MAX_DESCRIPTION).collect(),
            gl_account: main_account,
            quantity: Decimal::ONE,
            unit_cost: l.amount.abs(),
            dimensions,
        });
    }
    Ok(ResolvedInvoice {
        source_id: inv.source_id.clone(),
        version: inv.version,
        kind: inv.kind,
        vendor_number,
        vendor_invoice_number: inv.number.clone(),
        supplier_name: inv.supplier.name.clone(),
        invoice_date: inv.invoice_date,
        total: crate::model::Money {
            amount: inv.total.amount.abs(),
            currency: inv.total.currency.clone(),
        },
        lines,
    })
}

/// The F&O vendor account of the supplier, from the supplier mapping table (the same vendor
/// account is used in every legal entity; F&O refuses it where the vendor does not exist, and
/// the document parks with its words).
pub(super) async fn vendor_of<M: Mappings>(
    s: &Supplier,
    integration: &IntegrationConfig,
    mappings: &M,
) -> Result<String, ResolveError> {
    let (key_name, key) = match integration.mapping.supplier_key {
        SupplierKey::Number => ("number", s.number.clone()),
        SupplierKey::Id => ("id", Some(s.source_id.clone())),
        SupplierKey::TaxId => ("tax id", s.tax_id.clone()),
    };
    let key = key.filter(|k| !k.trim().is_empty()).ok_or_else(|| {
        ResolveError::Unresolved(format!(
            "Coupa supplier '{}' (id {}) has no {key_name}, which the supplier mapping is keyed by",
            s.name, s.source_id
        ))
    })?;
    mappings
        .mapping(&tables::supplier(&integration.name), &key)
        .await?
        .ok_or_else(|| {
            ResolveError::Unresolved(format!(
                "no F&O vendor account mapped for Coupa supplier '{}' ({key_name} {key})",
                s.name
            ))
        })
}

pub(super) async fn main_account_of<M: Mappings>(
    account: &AccountCoding,
    integration: &IntegrationConfig,
    mappings: &M,
    n: u32,
) -> Result<String, ResolveError> {
    if let Some(code) = account.code.as_deref()
        && let Some(main) = mappings
            .mapping(&tables::account_code(&integration.name), code)
            .await?
    {
        return Ok(main);
    }
    let rule = &integration.mapping.gl_account;
    let value = account.segment(rule.segment).ok_or_else(|| {
        ResolveError::Unresolved(format!(
            "line {n}: account '{}' has no segment-{} to take the main account from",
            account.code.as_deref().unwrap_or("(no code)"),
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
                "line {n}: no F&O main account mapped for account segment-{} '{value}'",
                rule.segment
            ))
        })
}

pub(super) async fn dimensions_of<M: Mappings>(
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
                    ResolveError::Unresolved(format!(
                        "line {n}: no F&O value of dimension {} mapped for account segment-{} '{value}'",
                        rule.dimension, rule.segment
                    ))
                })?
        } else {
            value.to_string()
        };
        out.push((rule.dimension.clone(), value));
    }
    Ok(out)
}
