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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{Db, SqliteStore};
    use crate::config::{DimensionRule, IntegrationKind, MappingConfig, SegmentRule};
    use crate::model::{AccountCoding, Currency, InvoiceKind, InvoiceLine, Money, Supplier};

    fn integration(mapping: MappingConfig) -> IntegrationConfig {
        IntegrationConfig {
            name: "t".into(),
            kind: IntegrationKind::CoupaToBusinessCentral,
            start_from: None,
            poll_overlap_secs: 0,
            mapping,
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
            }],
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
        super::invoice(inv, i, s).await
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
