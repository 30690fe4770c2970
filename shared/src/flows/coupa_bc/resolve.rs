//! Resolving a canonical invoice against the mapping rules and tables: vendor, G/L account and
//! dimension values per line. What cannot be resolved is named exactly, for the parked reason.

use std::time::Duration;

use rust_decimal::Decimal;

use crate::config::{IntegrationConfig, SupplierKey, SupplierSync, tables};
use crate::model::{
    AccountCoding, Invoice, InvoiceKind, OrderState, PurchaseOrder, ResolvedInvoice, ResolvedLine,
    ResolvedOrderLine, ResolvedPurchaseOrder, Supplier,
};
use crate::ports::{Mappings, StoreError};
use crate::systems::business_central::{BcClient, BcError, MasterData};

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
    /// The target could not be asked (retry later).
    #[error("reading Business Central: {0}")]
    Target(#[from] BcError),
}

impl ResolveError {
    /// A failure to resolve that is not a missing mapping, as a step error: a target that
    /// could not be asked is classified like any system failure.
    pub fn into_step(self, context: &str) -> crate::steps::StepError {
        match self {
            ResolveError::Target(e) => crate::steps::StepError::system(context, e),
            e => crate::steps::StepError::new(context, e),
        }
    }
}

/// How long a snapshot of BC's master data serves before it is read again. A value missing
/// from a snapshot older than [`RECHECK_AFTER`] is looked for once more in a fresh one, so a
/// value just added in BC is found without waiting this long.
pub const MASTER_DATA_TTL: Duration = Duration::from_secs(300);
pub const RECHECK_AFTER: Duration = Duration::from_secs(10);

/// A line as the master-data check sees it: number, G/L account, dimension values.
type CodedLine<'a> = (u32, &'a str, &'a [(String, String)]);

/// When the integration checks master data and BC can be asked: every problem of `lines`
/// against BC's master data, as one unresolved reason.
async fn ensure_master_data(
    lookups: Option<&Lookups<'_>>,
    integration: &IntegrationConfig,
    lines: &[CodedLine<'_>],
) -> Result<(), ResolveError> {
    let Some(l) = lookups.filter(|_| integration.sync.check_master_data) else {
        return Ok(());
    };
    let problems = check_master_data(l.bc, lines).await?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ResolveError::Unresolved(problems.join("; ")))
    }
}

/// Every problem of `lines` against BC's master data; empty when all is well.
async fn check_master_data(bc: &BcClient, lines: &[CodedLine<'_>]) -> Result<Vec<String>, BcError> {
    let problems = |md: &MasterData| {
        let mut out = Vec::new();
        for (n, gl, dims) in lines {
            if let Err(e) = md.check_account(gl) {
                out.push(format!("line {n}: {e}"));
            }
            for (code, value) in dims.iter() {
                if let Err(e) = md.check_dimension(code, value) {
                    out.push(format!("line {n}: {e}"));
                }
            }
        }
        out
    };
    let found = problems(&*bc.master_data_cached(MASTER_DATA_TTL).await?);
    if found.is_empty() {
        return Ok(found);
    }
    Ok(problems(&*bc.master_data_cached(RECHECK_AFTER).await?))
}

/// What resolution may ask the target: BC for vendors, orders and master data.
pub struct Lookups<'a> {
    pub bc: &'a BcClient,
}

pub async fn invoice<M: Mappings>(
    inv: &Invoice,
    integration: &IntegrationConfig,
    mappings: &M,
    lookups: Option<&Lookups<'_>>,
) -> Result<ResolvedInvoice, ResolveError> {
    let unresolved = |s: String| ResolveError::Unresolved(s);

    if inv.number.chars().count() > MAX_VENDOR_INVOICE_NUMBER {
        return Err(unresolved(format!(
            "invoice number '{}' is longer than {MAX_VENDOR_INVOICE_NUMBER} characters, the limit of Business Central's vendor invoice number",
            inv.number
        )));
    }

    let order = match lookups {
        Some(l) => order_of(inv, integration, mappings, l).await?,
        None => None,
    };
    // An invoice against an order is the order's vendor's, whatever the supplier maps to.
    let vendor_number = match order.as_ref().and_then(|o| o.vendor_number.clone()) {
        Some(v) => v,
        None => vendor_of(&inv.supplier, integration, mappings, lookups).await?,
    };
    let s = &inv.supplier;

    let mut lines = Vec::with_capacity(inv.lines.len());
    for l in &inv.lines {
        let n = l.line_num;
        let from_order = order.as_ref().and_then(|o| {
            let seq = l.po_line_num? as i32 * 10000;
            o.purchase_order_lines
                .as_deref()?
                .iter()
                .find(|ol| ol.sequence == Some(seq))?
                .line_object_number
                .clone()
        });
        let gl_account = match from_order {
            Some(gl) => gl,
            None => gl_of(&l.account, integration, mappings, n).await?,
        };
        let dimensions = dimensions_of(&l.account, integration, mappings, n).await?;
        // An amount-only line becomes one unit at its amount: BC posts only lines with a quantity.
        let (quantity, unit_cost) = match l.quantity {
            Some(q) if q != Decimal::ZERO => (q, l.unit_price),
            _ => (Decimal::ONE, l.amount),
        };
        // A credit note's amounts are negative in Coupa; a BC credit memo's are positive (its
        // kind is what makes it a credit).
        let (quantity, unit_cost) = match inv.kind {
            InvoiceKind::Invoice => (quantity, unit_cost),
            InvoiceKind::CreditNote if l.amount > Decimal::ZERO => {
                return Err(unresolved(format!(
                    "line {n}: a credit note line with a positive amount ({}) cannot be part of a Business Central credit memo",
                    l.amount
                )));
            }
            InvoiceKind::CreditNote => (quantity.abs(), unit_cost.abs()),
        };
        lines.push(ResolvedLine {
            description: l.description.chars().take(MAX_DESCRIPTION).collect(),
            gl_account,
            quantity,
            unit_cost,
            dimensions,
        });
    }

    let coded: Vec<CodedLine<'_>> = lines
        .iter()
        .zip(&inv.lines)
        .map(|(r, l)| (l.line_num, r.gl_account.as_str(), r.dimensions.as_slice()))
        .collect();
    ensure_master_data(lookups, integration, &coded).await?;

    let total = match inv.kind {
        InvoiceKind::Invoice => inv.total.clone(),
        InvoiceKind::CreditNote => crate::model::Money {
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
        supplier_name: s.name.clone(),
        invoice_date: inv.invoice_date,
        total,
        lines,
    })
}

/// The supplier-mapping key of a supplier under the integration's rules: (what it is, value).
pub fn supplier_key(
    s: &Supplier,
    integration: &IntegrationConfig,
) -> Result<(&'static str, String), ResolveError> {
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
    Ok((key_name, key))
}

/// Finds the BC vendor of a supplier by the supplier key: the vendor with that number, or with
/// that tax registration number. `Ok(None)` when BC has none; an `Unresolved` error when more
/// than one vendor matches (a person must choose).
pub async fn find_vendor(
    bc: &BcClient,
    integration: &IntegrationConfig,
    s: &Supplier,
    key: &str,
) -> Result<Option<String>, ResolveError> {
    let found: Vec<String> = match integration.mapping.supplier_key {
        SupplierKey::Number => bc.vendor_by_number(key).await?.into_iter().collect(),
        SupplierKey::TaxId => bc.vendor_by_tax_id(key).await?,
        SupplierKey::Id => Vec::new(),
    }
    .into_iter()
    .filter_map(|v| v.number)
    .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(ResolveError::Unresolved(format!(
            "Coupa supplier '{}' matches {} Business Central vendors ({}); map it by hand",
            s.name,
            many.len(),
            many.join(", ")
        ))),
    }
}

/// The BC vendor number of a supplier: from the mapping table, else (when supplier sync is on)
/// by looking BC up with the supplier key and recording what was found.
async fn vendor_of<M: Mappings>(
    s: &Supplier,
    integration: &IntegrationConfig,
    mappings: &M,
    lookups: Option<&Lookups<'_>>,
) -> Result<String, ResolveError> {
    let (key_name, key) = supplier_key(s, integration)?;
    let table = tables::supplier(&integration.name);
    if let Some(v) = mappings.mapping(&table, &key).await? {
        return Ok(v);
    }
    if let Some(l) = lookups
        && integration.sync.suppliers != SupplierSync::Off
        && let Some(v) = find_vendor(l.bc, integration, s, &key).await?
    {
        mappings.put_mapping(&table, &key, &v).await?;
        return Ok(v);
    }
    let hint = match integration.sync.suppliers {
        SupplierSync::Create => " yet (it is created when the supplier syncs)",
        _ => "",
    };
    Err(ResolveError::Unresolved(format!(
        "no Business Central vendor mapped for Coupa supplier '{}' ({key_name} {key}){hint}",
        s.name
    )))
}

/// The BC order an invoice was raised against (its lines' `po-number`), when purchase orders
/// are synced. The order must be in BC already: an invoice never creates one.
async fn order_of<M: Mappings>(
    inv: &Invoice,
    integration: &IntegrationConfig,
    mappings: &M,
    l: &Lookups<'_>,
) -> Result<Option<crate::systems::business_central::wire::PurchaseOrder>, ResolveError> {
    if !integration.sync.purchase_orders {
        return Ok(None);
    }
    let Some(po) = inv.lines.iter().find_map(|l| l.po_number.clone()) else {
        return Ok(None);
    };
    let not_there = || {
        ResolveError::Unresolved(format!(
            "purchase order {po} is not in Business Central yet (it is created when Coupa's order syncs)"
        ))
    };
    let id = mappings
        .mapping(&tables::purchase_order(&integration.name), &po)
        .await?
        .ok_or_else(not_there)?;
    let order = l.bc.purchase_order(&id).await?.ok_or_else(not_there)?;
    Ok(Some(order))
}

/// The dimension values of an account coding under the integration's rules.
async fn dimensions_of<M: Mappings>(
    account: &AccountCoding,
    integration: &IntegrationConfig,
    mappings: &M,
    n: u32,
) -> Result<Vec<(String, String)>, ResolveError> {
    let mut dimensions = Vec::new();
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
                        "line {n}: no Business Central value of dimension {} mapped for account segment-{} '{value}'",
                        rule.dimension, rule.segment
                    ))
                })?
        } else {
            value.to_string()
        };
        dimensions.push((rule.dimension.clone(), value));
    }
    Ok(dimensions)
}

/// Resolves a Coupa purchase order for BC: vendor, and per line the G/L account and dimension
/// values, checked against BC's master data.
pub async fn purchase_order<M: Mappings>(
    po: &PurchaseOrder,
    integration: &IntegrationConfig,
    mappings: &M,
    lookups: Option<&Lookups<'_>>,
) -> Result<ResolvedPurchaseOrder, ResolveError> {
    let state = match po.status.as_str() {
        "issued" => OrderState::Active,
        "closed" => OrderState::Closed,
        "cancelled" => OrderState::Cancelled,
        other => {
            return Err(ResolveError::Unresolved(format!(
                "purchase order status '{other}' is not synced (only issued, closed and cancelled)"
            )));
        }
    };
    let vendor_number = vendor_of(&po.supplier, integration, mappings, lookups).await?;
    let mut lines = Vec::with_capacity(po.lines.len());
    for l in &po.lines {
        let n = l.line_num;
        lines.push(ResolvedOrderLine {
            line_num: n,
            description: l.description.chars().take(MAX_DESCRIPTION).collect(),
            gl_account: gl_of(&l.account, integration, mappings, n).await?,
            quantity: l.quantity,
            unit_cost: l.unit_price,
            dimensions: dimensions_of(&l.account, integration, mappings, n).await?,
        });
    }
    // A closed or cancelled order writes no lines: nothing to check.
    if state == OrderState::Active {
        let coded: Vec<CodedLine<'_>> = lines
            .iter()
            .map(|r| (r.line_num, r.gl_account.as_str(), r.dimensions.as_slice()))
            .collect();
        ensure_master_data(lookups, integration, &coded).await?;
    }
    Ok(ResolvedPurchaseOrder {
        source_id: po.source_id.clone(),
        version: po.version,
        number: po.number.clone(),
        state,
        source_status: po.status.clone(),
        vendor_number,
        supplier_name: po.supplier.name.clone(),
        currency: po.currency.clone(),
        order_date: po.order_date,
        lines,
    })
}

/// The G/L account of an account coding: an exact account-code mapping wins over the segment
/// rule.
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
    segment_gl(mappings, integration, account, n).await
}

async fn segment_gl<M: Mappings>(
    mappings: &M,
    integration: &IntegrationConfig,
    account: &AccountCoding,
    n: u32,
) -> Result<String, ResolveError> {
    let rule = &integration.mapping.gl_account;
    let value = account.segment(rule.segment).ok_or_else(|| {
        ResolveError::Unresolved(format!(
            "line {n}: account '{}' has no segment-{} to take the G/L account from",
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
                "line {n}: no Business Central G/L account mapped for account segment-{} '{value}'",
                rule.segment
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{Db, SqliteStore};
    use crate::config::{DimensionRule, IntegrationKind, MappingConfig, SegmentRule};
    use crate::model::{AccountCoding, Currency, InvoiceKind, InvoiceLine, Money, Supplier};

    fn integration(mapping: MappingConfig) -> IntegrationConfig {
        IntegrationConfig {
            name: "t".into(),
            kind: Some(IntegrationKind::CoupaToBusinessCentral),
            source: None,
            target: None,
            company: None,
            start_from: None,
            poll_overlap_secs: 0,
            mapping,
            sync: crate::config::SyncConfig::default(),
        }
    }

    fn rules() -> MappingConfig {
        MappingConfig {
            dimensions: vec![DimensionRule {
                segment: 2,
                dimension: "DEPARTMENT".into(),
                translate: false,
            }],
            ..MappingConfig::default()
        }
    }

    fn sample(segments: &[&str], quantity: Option<&str>) -> Invoice {
        Invoice {
            source_id: "1".into(),
            version: chrono::Utc::now(),
            kind: InvoiceKind::Invoice,
            status: "approved".into(),
            number: "INV-1".into(),
            supplier: Supplier {
                source_id: "9".into(),
                number: Some("SUP-1".into()),
                name: "Acme".into(),
                tax_id: None,
            },
            invoice_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            total: Money {
                amount: "30.00".parse().unwrap(),
                currency: Currency::new("USD").unwrap(),
            },
            lines: vec![InvoiceLine {
                line_num: 1,
                description: "d".into(),
                quantity: quantity.map(|q| q.parse().unwrap()),
                unit_price: "10.0000".parse().unwrap(),
                amount: "30.00".parse().unwrap(),
                account: AccountCoding {
                    code: Some(segments.join("-")),
                    segments: segments.iter().map(|s| Some(s.to_string())).collect(),
                },
                po_number: None,
                po_line_num: None,
                kind: crate::model::LineKind::Account,
                tax: vec![],
                coding: vec![],
            }],
            readiness: crate::model::Readiness::Ready,
            company: None,
            amounts_include_tax: false,
            tax: vec![],
            due_date: None,
            payment_terms: None,
            bank_account: None,
        }
    }

    async fn store() -> SqliteStore {
        let s = SqliteStore::new(Db::open_in_memory().unwrap());
        s.put_mapping("t/supplier", "SUP-1", "V1").await.unwrap();
        s
    }

    async fn unresolved(inv: &Invoice, i: &IntegrationConfig, s: &SqliteStore) -> String {
        match invoice_resolve(inv, i, s).await {
            Err(ResolveError::Unresolved(why)) => why,
            other => panic!("expected unresolved, got {other:?}"),
        }
    }

    async fn invoice_resolve(
        inv: &Invoice,
        i: &IntegrationConfig,
        s: &SqliteStore,
    ) -> Result<ResolvedInvoice, ResolveError> {
        super::invoice(inv, i, s, None).await
    }

    #[tokio::test]
    async fn vendor_gl_and_dimensions_resolve_from_segments() {
        let s = store().await;
        let r = invoice_resolve(
            &sample(&["6100", "ADM"], Some("3")),
            &integration(rules()),
            &s,
        )
        .await
        .unwrap();
        assert_eq!(r.vendor_number, "V1");
        assert_eq!(r.lines[0].gl_account, "6100");
        assert_eq!(
            r.lines[0].dimensions,
            vec![("DEPARTMENT".to_string(), "ADM".to_string())]
        );
        assert_eq!(r.lines[0].unit_cost.to_string(), "10.0000");
    }

    #[tokio::test]
    async fn an_exact_account_code_mapping_wins_over_the_segment_rule() {
        let s = store().await;
        s.put_mapping("t/account_code", "6100-ADM", "7000")
            .await
            .unwrap();
        let r = invoice_resolve(
            &sample(&["6100", "ADM"], Some("3")),
            &integration(rules()),
            &s,
        )
        .await
        .unwrap();
        assert_eq!(r.lines[0].gl_account, "7000");
    }

    #[tokio::test]
    async fn an_untranslatable_gl_segment_is_named() {
        let s = store().await;
        let mut m = rules();
        m.gl_account = SegmentRule {
            segment: 1,
            translate: true,
        };
        let why = unresolved(&sample(&["6100", "ADM"], Some("3")), &integration(m), &s).await;
        assert_eq!(
            why,
            "line 1: no Business Central G/L account mapped for account segment-1 '6100'"
        );
    }

    #[tokio::test]
    async fn an_untranslatable_dimension_value_is_named() {
        let s = store().await;
        let mut m = rules();
        m.dimensions[0].translate = true;
        let why = unresolved(&sample(&["6100", "XYZ"], Some("3")), &integration(m), &s).await;
        assert_eq!(
            why,
            "line 1: no Business Central value of dimension DEPARTMENT mapped for account segment-2 'XYZ'"
        );
    }

    #[tokio::test]
    async fn an_unmapped_supplier_is_named() {
        let s = SqliteStore::new(Db::open_in_memory().unwrap());
        let why = unresolved(
            &sample(&["6100", "ADM"], Some("3")),
            &integration(rules()),
            &s,
        )
        .await;
        assert_eq!(
            why,
            "no Business Central vendor mapped for Coupa supplier 'Acme' (number SUP-1)"
        );
    }

    #[tokio::test]
    async fn an_amount_line_becomes_one_unit_at_its_amount() {
        let s = store().await;
        let r = invoice_resolve(&sample(&["6100", "ADM"], None), &integration(rules()), &s)
            .await
            .unwrap();
        assert_eq!(r.lines[0].quantity, Decimal::ONE);
        assert_eq!(r.lines[0].unit_cost.to_string(), "30.00");
    }

    #[tokio::test]
    async fn an_invoice_number_too_long_for_bc_is_parked() {
        let s = store().await;
        let mut inv = sample(&["6100", "ADM"], Some("1"));
        inv.number = "X".repeat(36);
        let why = unresolved(&inv, &integration(rules()), &s).await;
        assert!(why.contains("longer than 35 characters"), "{why}");
    }
}
